/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl run NAME SIZE -- COMMAND: a reservation for the life of one command, for launchers without libvirt.
 * The child is forked first and waits on a pipe; the reservation is made with lifetime pid bound to the child, so
 * the daemon's pidfd ends it whenever the child exits, even if hugepagectl is killed; only then does the child
 * exec COMMAND. COMMAND never runs without its pages. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-client.h"
#include "hugepagectl.h"
#include "macro.h"
#include "proxy.h"

char **arg_command = NULL;

static int loop_write(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* In the child: waits for the go byte, then execs COMMAND. EOF instead (hugepagectl died or gave up) ends it
 * without running anything. After the go byte comes the mount path of a held reservation, if any, up to EOF. */
_noreturn_ static void child_run(int go_fd, const sigset_t *old_mask, const char *name) {
        char buf[PATH_MAX + 1];
        size_t n = 0;
        ssize_t k;

        for (;;) {
                k = read(go_fd, buf + n, sizeof(buf) - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        _exit(EXIT_FAIL);
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n >= sizeof(buf) - 1)
                        _exit(EXIT_FAIL); /* no path is that long */
        }
        if (n < 1 || buf[0] != '1')
                _exit(EXIT_FAIL);
        buf[n] = '\0';
        (void) sigprocmask(SIG_SETMASK, old_mask, NULL);
        if (setenv("HUGEPAGED_RESERVATION", name, 1) < 0 ||
            (n > 1 && setenv("HUGEPAGED_MOUNT_PATH", buf + 1, 1) < 0))
                _exit(EXIT_FAIL);
        execvp(arg_command[0], arg_command);
        /* As shells do: 127 for a command not found, 126 for one that cannot be run. */
        fprintf(stderr, "hugepagectl: run: cannot run %s: %s\n", arg_command[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
}

/* Waits for the child, forwarding SIGINT, SIGTERM and SIGHUP sent to hugepagectl. Those the terminal sent reach
 * the child by themselves (same process group) and are not sent twice. Returns the child's wait status. */
static int wait_child(pid_t pid, const sigset_t *mask) {
        for (;;) {
                siginfo_t si;
                int status;
                pid_t k = waitpid(pid, &status, WNOHANG);

                if (k == pid)
                        return status;
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (sigwaitinfo(mask, &si) < 0 || si.si_signo == SIGCHLD)
                        continue;
                if (si.si_code != SI_KERNEL)
                        (void) kill(pid, si.si_signo);
        }
}

/* The daemon ends the reservation when the child exits, but asynchronously: release it now so that the pages
 * are back when hugepagectl exits. Only if it is still bound to our child: the name may have been reserved
 * anew since. */
static void release_now(sd_bus *bus, const char *path, pid_t pid) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t bound = 0;
        int r;

        r = sd_bus_get_property_trivial(bus, HP_BUS_NAME, path, HP_BUS_IFACE_RESERVATION, "PID", &error, 'u',
                                        &bound);
        if (r < 0 || bound != (uint32_t) pid)
                return;
        r = sd_bus_call_method(bus, HP_BUS_NAME, path, HP_BUS_IFACE_RESERVATION, "Release", &error, NULL, NULL);
        if (r < 0 && bus_error_kind(&error, r) != BUS_ERROR_NOT_FOUND &&
            !sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT))
                (void) report_bus_error("warning: cannot release at once (hugepaged releases it when the command's "
                                        "process is gone)", &error, r);
}

int verb_run(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *what = NULL, *path = NULL, *mount_path = NULL;
        static const int sigs[] = { SIGCHLD, SIGINT, SIGTERM, SIGHUP };
        const char *name = args[0], *p;
        sigset_t mask, chld, old_mask;
        uint64_t bytes = 0;
        int go[2], r, status;
        pid_t pid;

        if (asprintf(&what, "cannot reserve %s", name) < 0)
                return report_bus_error("cannot reserve", NULL, -ENOMEM);
        r = parse_reserve_size("run", what, name, args[1], &bytes);
        if (r != EXIT_OK)
                return r;

        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaddset(&mask, sigs[i]);
        /* SIGCHLD only, for now: Ctrl-C while Reserve waits for pages still ends hugepagectl at once (the child
         * then reads EOF, and a reservation made meanwhile ends with it). */
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        /* A child that died before the go byte makes write() fail with EPIPE, rather than kill us. */
        sigaddset(&chld, SIGPIPE);
        if (sigprocmask(SIG_BLOCK, &chld, &old_mask) < 0 || pipe2(go, O_CLOEXEC) < 0)
                return report_bus_error("run", NULL, negative_errno());
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                safe_close(go[0]);
                safe_close(go[1]);
                return report_bus_error("run: cannot fork", NULL, r);
        }
        if (pid == 0) {
                safe_close(go[1]);
                child_run(go[0], &old_mask, name);
        }
        safe_close(go[0]);

        const ReserveOptions opts = {
                .nodes = arg_nodes, .n_nodes = arg_n_nodes,
                .node_bytes = arg_node_sizes, .n_node_bytes = arg_n_node_sizes,
                .lifetime = "pid", .pid = (uint32_t) pid,
                .hold = arg_hold,
        };
        r = bus_call_reserve(bus, name, arg_page_size, bytes, &opts, &error, &reply);
        if (r >= 0 && (r = sd_bus_message_read(reply, "o", &p)) >= 0 && !(path = strdup(p)))
                r = -ENOMEM;
        if (r < 0) {
                /* COMMAND must not run: the child dies before it reads the go byte. */
                (void) kill(pid, SIGKILL);
                safe_close(go[1]);
                (void) waitpid(pid, NULL, 0);
                r = report_bus_error(what, &error, r);
                print_reserve_advice(bus, &error);
                return r;
        }
        if (arg_hold) {
                r = sd_bus_get_property_string(bus, HP_BUS_NAME, path, HP_BUS_IFACE_RESERVATION, "MountPath", &error,
                                               &mount_path);
                if (r < 0) {
                        (void) kill(pid, SIGKILL);
                        safe_close(go[1]);
                        (void) waitpid(pid, NULL, 0);
                        release_now(bus, path, pid);
                        return report_bus_error(what, &error, r);
                }
        }
        /* From here on COMMAND runs with its pages, and signals to hugepagectl are for COMMAND. */
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        if (write(go[1], "1", 1) != 1 ||
            (mount_path && loop_write(go[1], mount_path, strlen(mount_path)) < 0)) {
                r = negative_errno();
                (void) kill(pid, SIGKILL);
                safe_close(go[1]);
                (void) waitpid(pid, NULL, 0);
                return report_bus_error("run: cannot start the command", NULL, r);
        }
        safe_close(go[1]);

        status = wait_child(pid, &mask);
        release_now(bus, path, pid);
        if (status < 0)
                return report_bus_error("run: cannot wait for the command", NULL, status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return WEXITSTATUS(status);
}
