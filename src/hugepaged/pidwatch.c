/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* LIFETIME_PID: a reservation released when its process exits, watched with a pidfd. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "manager-internal.h"
#include "proc.h"
#include "util.h"

static int on_pid_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Reservation *r = userdata;
        Manager *m = r->manager;
        HpError error = {};

        log_info("process %" PRIu32 " of reservation %s exited, releasing it", r->pid, r->name);
        if (manager_release_async(m, r, NULL, NULL, &error) < 0)
                log_error("releasing reservation %s failed: %s", r->name, error.message);
        return 0;
}

/* Watches the reservation's process with a pidfd: it cannot be fooled by a reused pid. */
int reservation_watch_pid(Reservation *r) {
        _cleanup_close_ int fd = -EBADF;
        uint64_t starttime;
        int k;

        fd = (int) syscall(SYS_pidfd_open, (pid_t) r->pid, 0);
        if (fd < 0)
                return negative_errno();
        /* The pidfd pins the process; only now is the start time a reliable identity check. */
        k = proc_pid_starttime(r->pid, &starttime);
        if (k < 0)
                return k;
        if (r->pid_starttime != 0 && starttime != r->pid_starttime)
                return -ESRCH;
        r->pid_starttime = starttime;

        sd_event_source_disable_unref(r->pid_source);
        r->pid_source = NULL;
        k = sd_event_add_io(r->manager->event, &r->pid_source, fd, EPOLLIN, on_pid_exit, r);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(r->pid_source, "reservation-pid");
        safe_close(r->pidfd);
        r->pidfd = TAKE_FD(fd);
        return 0;
}

/* Ties r to process pid (lifetime "pid"), as if it had been reserved with that lifetime; persisted before it
 * returns. Binding again to the same live process is a no-op, so a hook may repeat it. */
int manager_bind_process(Manager *m, Reservation *r, uint32_t pid, HpError *error) {
        Lifetime old_lifetime = r->lifetime;
        uint32_t old_pid = r->pid;
        uint64_t old_starttime = r->pid_starttime;
        int k;

        if (pid == 0)
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "pid must not be 0");
        /* Already watched: if that process had exited, its pidfd's event would release r before this call. */
        if (r->lifetime == LIFETIME_PID && r->pid == pid && r->pidfd >= 0)
                return 0;

        r->pid = pid;
        r->pid_starttime = 0;
        k = reservation_watch_pid(r);
        if (k < 0) {
                r->pid = old_pid;
                r->pid_starttime = old_starttime;
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "cannot watch process %" PRIu32 ": %s", pid,
                                    k == -ESRCH ? "no such process" : strerror(-k));
        }
        r->lifetime = LIFETIME_PID;

        /* The binding is a promise that the pages come back when the process goes: on disk before the reply. */
        k = manager_save_state(m);
        if (k < 0) {
                r->lifetime = old_lifetime;
                r->pid = old_pid;
                r->pid_starttime = old_starttime;
                r->pid_source = sd_event_source_disable_unref(r->pid_source);
                r->pidfd = safe_close(r->pidfd);
                if (old_lifetime == LIFETIME_PID && reservation_watch_pid(r) < 0)
                        log_warning("reservation %s: its previous process %" PRIu32 " is gone too", r->name, old_pid);
                return hp_error_set(error, HP_ERROR_FAILED, "cannot write the state file: %s", strerror(-k));
        }

        /* The process owns the pages now; the bus connection that reserved them no longer matters (the bus layer
         * stops tracking it). */
        free(r->caller);
        r->caller = NULL;
        log_info("reservation %s bound to process %" PRIu32 " (was %s)", r->name, pid,
                 lifetime_to_string(old_lifetime));
        return 0;
}
