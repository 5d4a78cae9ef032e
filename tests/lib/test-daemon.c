/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon under test as a subprocess of the bus harness: spawned with its log file and a notify socket read
 * by a thread, waited for on the bus, signalled, reaped and its exit status decoded (see bus-harness.h). */
#define G_LOG_DOMAIN "bus-harness"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <glib-unix.h>

#include "bus-harness.h"
#include "bus-harness-private.h"

struct TestDaemon {
        TestBus *bus;
        char *dir;
        char *log_path;
        char *notify_path;
        GPid pid;
        gboolean reaped;
        int status;             /* raw wait status once reaped */
        int log_slot;

        int notify_fd;
        int wake_fds[2];        /* tells the notify thread to quit */
        GThread *notify_thread;

        GMutex lock;            /* protects the fields below, written by the notify thread */
        GCond cond;
        GPtrArray *notify_msgs;
        guint notify_cursor;    /* test_daemon_wait_notify() consumes up to here */
        gboolean ready;
};

/* A thread drains the socket so that a daemon pinging the watchdog never blocks on a full queue while the
 * test sits in a synchronous D-Bus call. */
static gpointer notify_thread_main(gpointer data) {
        TestDaemon *d = data;
        char buf[16 * 1024 + 1];

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = d->notify_fd, .events = POLLIN },
                        { .fd = d->wake_fds[0], .events = POLLIN },
                };
                g_auto(GStrv) lines = NULL;
                ssize_t n;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                n = recv(d->notify_fd, buf, sizeof buf - 1, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        break;
                }
                buf[n] = '\0';
                lines = g_strsplit(buf, "\n", -1);
                g_mutex_lock(&d->lock);
                for (char **l = lines; *l; l++) {
                        if (!**l)
                                continue;
                        g_ptr_array_add(d->notify_msgs, g_strdup(*l));
                        if (g_str_equal(*l, "READY=1"))
                                d->ready = TRUE;
                }
                g_cond_broadcast(&d->cond);
                g_mutex_unlock(&d->lock);
        }
        return NULL;
}

static void notify_socket_open(TestDaemon *d) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        d->notify_path = g_build_filename(d->dir, "notify", NULL);
        if (strlen(d->notify_path) >= sizeof sa.sun_path)
                harness_fail("notify socket path %s too long; use a shorter TMPDIR", d->notify_path);
        memcpy(sa.sun_path, d->notify_path, strlen(d->notify_path));
        d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        g_assert_cmpint(d->notify_fd, >=, 0);
        if (bind(d->notify_fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                harness_fail("bind(%s): %s", d->notify_path, g_strerror(errno));
        g_assert_true(g_unix_open_pipe(d->wake_fds, FD_CLOEXEC, NULL));
        d->notify_msgs = g_ptr_array_new_with_free_func(g_free);
        d->notify_thread = g_thread_new("notify-socket", notify_thread_main, d);
}

char *test_daemon_binary(void) {
        const char *bin = g_getenv("HUGEPAGED_BIN");
        char *path;

        if (bin && *bin)
                path = g_strdup(bin);
        else
                path = g_build_filename(harness_require_env("HUGEPAGED_BUILD_ROOT"), "src", "hugepaged", "hugepaged",
                                        NULL);
        if (!g_file_test(path, G_FILE_TEST_IS_EXECUTABLE))
                harness_fail("daemon binary %s is missing (set HUGEPAGED_BUILD_ROOT or HUGEPAGED_BIN)",
                             path);
        return path;
}

static gboolean daemon_check_exit(TestDaemon *d, guint timeout_ms) {
        int status;

        if (d->reaped)
                return TRUE;
        if (!harness_reap(d->pid, &status, timeout_ms))
                return FALSE;
        g_mutex_lock(&d->lock);
        d->status = status;
        d->reaped = TRUE;
        g_cond_broadcast(&d->cond);
        g_mutex_unlock(&d->lock);
        return TRUE;
}

static void daemon_wait_for_name(TestDaemon *d) {
        gint64 deadline = g_get_monotonic_time() + (gint64) START_TIMEOUT_MS * 1000;

        for (;;) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) reply = NULL;
                gboolean has_owner = FALSE;

                reply = g_dbus_connection_call_sync(d->bus->conn, "org.freedesktop.DBus",
                                                    "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                                    "NameHasOwner", g_variant_new("(s)", TEST_BUS_NAME),
                                                    G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE, 5000,
                                                    NULL, &error);
                g_assert_no_error(error);
                if (reply)
                        g_variant_get(reply, "(b)", &has_owner);
                if (has_owner)
                        return;
                if (daemon_check_exit(d, 0)) {
                        harness_dump_log_once(d->log_slot);
                        harness_fail("daemon (pid %d) exited with status %d before owning %s; log: %s",
                                     (int) d->pid, harness_decode_status(d->status), TEST_BUS_NAME, d->log_path);
                        return;
                }
                if (g_get_monotonic_time() >= deadline) {
                        harness_dump_log_once(d->log_slot);
                        harness_fail("daemon (pid %d) did not own %s within %d s; log: %s", (int) d->pid,
                                     TEST_BUS_NAME, START_TIMEOUT_MS / 1000, d->log_path);
                        return;
                }
                g_usleep(10000);
        }
}

TestDaemon *test_daemon_start_full(TestBus *b, const char *root, const char *state_dir, const char *config,
                                   const char *const *extra_args, const char *const *extra_env,
                                   gboolean wait_for_name) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *cmdline = NULL;
        g_auto(GStrv) env = NULL;
        TestDaemon *d = g_new0(TestDaemon, 1);
        int log_fd, log_fd2;

        g_assert_nonnull(b);
        g_assert_nonnull(b->conn);
        d->bus = b;
        d->log_slot = -1;
        d->notify_fd = d->wake_fds[0] = d->wake_fds[1] = -1;
        g_mutex_init(&d->lock);
        g_cond_init(&d->cond);
        d->dir = test_tmpdir("hugepaged-daemon-XXXXXX");
        d->log_path = g_build_filename(d->dir, "hugepaged.log", NULL);
        notify_socket_open(d);

        /* $HUGEPAGED_DAEMON_WRAPPER (e.g. "valgrind --error-exitcode=99 ...", set by the valgrind test setup)
         * runs the daemon under a tool; its exit status then reaches the tests' exit-status checks. Only the
         * daemon built here: a $HUGEPAGED_BIN stand-in (the selftest's stub) runs as it is. */
        {
                const char *w = g_getenv("HUGEPAGED_BIN") ? NULL : g_getenv("HUGEPAGED_DAEMON_WRAPPER");
                g_auto(GStrv) wrapper = NULL;
                g_autoptr(GError) error = NULL;

                if (w && *w) {
                        if (!g_shell_parse_argv(w, NULL, &wrapper, &error))
                                harness_fail("cannot parse HUGEPAGED_DAEMON_WRAPPER: %s", error->message);
                        for (char **a = wrapper; a && *a; a++)
                                g_ptr_array_add(argv, g_strdup(*a));
                }
        }
        g_ptr_array_add(argv, test_daemon_binary());
        if (root)
                g_ptr_array_add(argv, g_strconcat("--root=", root, NULL));
        if (!state_dir) {
                g_autofree char *s = g_build_filename(d->dir, "state", NULL);

                g_assert_cmpint(g_mkdir(s, 0755), ==, 0);
                g_ptr_array_add(argv, g_strconcat("--state-dir=", s, NULL));
        } else {
                g_ptr_array_add(argv, g_strconcat("--state-dir=", state_dir, NULL));
        }
        if (!config) {
                /* An explicit empty file: the daemon must never fall back to the host's /etc config. */
                g_autofree char *c = g_build_filename(d->dir, "hugepaged.conf", NULL);

                g_assert_true(g_file_set_contents(c, "", 0, NULL));
                g_ptr_array_add(argv, g_strconcat("--config=", c, NULL));
        } else {
                g_ptr_array_add(argv, g_strconcat("--config=", config, NULL));
        }
        g_ptr_array_add(argv, g_strdup("--log-level=debug"));
        for (const char *const *a = extra_args; a && *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);

        env = harness_child_environ();
        env = g_environ_setenv(env, "DBUS_SYSTEM_BUS_ADDRESS", b->address, TRUE);
        env = g_environ_setenv(env, "NOTIFY_SOCKET", d->notify_path, TRUE);
        for (const char *const *e = extra_env; e && *e; e++) {
                const char *eq = strchr(*e, '=');

                if (eq) {
                        g_autofree char *key = g_strndup(*e, (gsize) (eq - *e));

                        env = g_environ_setenv(env, key, eq + 1, TRUE);
                } else {
                        env = g_environ_unsetenv(env, *e);
                }
        }

        log_fd = harness_open_log(d->log_path);
        /* Two descriptors of one O_APPEND open file: stdout and stderr interleave in order, and GLib's fd
         * shuffling in the child never sees the same fd as both targets' source. */
        log_fd2 = fcntl(log_fd, F_DUPFD_CLOEXEC, 3);
        g_assert_cmpint(log_fd2, >=, 0);
        d->pid = harness_spawn_child((char **) argv->pdata, env, log_fd, log_fd2);
        close(log_fd);
        close(log_fd2);
        d->log_slot = harness_log_register("hugepaged", d->pid, d->log_path);

        cmdline = g_strjoinv(" ", (char **) argv->pdata);
        g_test_message("bus-harness: started pid %d: %s (log %s)", (int) d->pid, cmdline, d->log_path);

        if (wait_for_name)
                daemon_wait_for_name(d);
        return d;
}

TestDaemon *test_daemon_start(TestBus *b, const char *root, const char *state_dir, const char *config,
                              const char *const *extra_args) {
        return test_daemon_start_full(b, root, state_dir, config, extra_args, NULL, TRUE);
}

gboolean test_daemon_got_ready(TestDaemon *d) {
        gint64 deadline = g_get_monotonic_time() + (gint64) READY_GRACE_MS * 1000;

        for (;;) {
                gboolean exited = daemon_check_exit(d, 0), ready;

                if (exited)     /* what it sent before exiting is queued: give the thread a moment */
                        deadline = MIN(deadline, g_get_monotonic_time() + 50000);
                g_mutex_lock(&d->lock);
                if (!d->ready)
                        g_cond_wait_until(&d->cond, &d->lock, MIN(deadline, g_get_monotonic_time() + 20000));
                ready = d->ready;
                g_mutex_unlock(&d->lock);
                if (ready || g_get_monotonic_time() >= deadline)
                        return ready;
        }
}

gboolean test_daemon_wait_notify(TestDaemon *d, const char *needle, guint timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;
        gboolean found = FALSE;

        g_mutex_lock(&d->lock);
        for (;;) {
                for (guint i = d->notify_cursor; i < d->notify_msgs->len; i++) {
                        if (strstr(g_ptr_array_index(d->notify_msgs, i), needle)) {
                                d->notify_cursor = i + 1;
                                found = TRUE;
                                break;
                        }
                }
                if (found || g_get_monotonic_time() >= deadline)
                        break;
                g_cond_wait_until(&d->cond, &d->lock, deadline);
        }
        g_mutex_unlock(&d->lock);
        return found;
}

char **test_daemon_notify_messages(TestDaemon *d) {
        GPtrArray *a = g_ptr_array_new();

        g_mutex_lock(&d->lock);
        for (guint i = 0; i < d->notify_msgs->len; i++)
                g_ptr_array_add(a, g_strdup(g_ptr_array_index(d->notify_msgs, i)));
        g_mutex_unlock(&d->lock);
        g_ptr_array_add(a, NULL);
        return (char **) g_ptr_array_free(a, FALSE);
}

pid_t test_daemon_pid(TestDaemon *d) {
        return d->pid;
}

const char *test_daemon_log_path(TestDaemon *d) {
        return d->log_path;
}

char *test_daemon_log(TestDaemon *d) {
        g_autoptr(GError) error = NULL;
        char *contents = NULL;

        if (!g_file_get_contents(d->log_path, &contents, NULL, &error))
                harness_fail("cannot read %s: %s", d->log_path, error->message);
        return contents;
}

gboolean test_daemon_wait_log(TestDaemon *d, const char *needle, guint timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        for (;;) {
                g_autofree char *log = test_daemon_log(d);

                if (log && strstr(log, needle))
                        return TRUE;
                if (g_get_monotonic_time() >= deadline)
                        return FALSE;
                g_usleep(10000);
        }
}

void test_daemon_kill(TestDaemon *d, int sig) {
        if (d->reaped)
                return;
        kill(d->pid, sig);
        if (!daemon_check_exit(d, STOP_TIMEOUT_MS)) {
                kill(d->pid, SIGKILL);
                daemon_check_exit(d, G_MAXUINT);
                harness_fail("daemon (pid %d) survived signal %d for %d s", (int) d->pid, sig,
                             STOP_TIMEOUT_MS / 1000);
        }
}

int test_daemon_stop(TestDaemon *d) {
        if (!d->reaped) {
                kill(d->pid, SIGTERM);
                if (!daemon_check_exit(d, STOP_TIMEOUT_MS)) {
                        kill(d->pid, SIGKILL);
                        daemon_check_exit(d, G_MAXUINT);
                        harness_dump_log_once(d->log_slot);
                        harness_fail("daemon (pid %d) did not exit within %d s of SIGTERM", (int) d->pid,
                                     STOP_TIMEOUT_MS / 1000);
                }
        }
        if (test_failed())
                harness_dump_log_once(d->log_slot);
        return harness_decode_status(d->status);
}

int test_daemon_wait_exit(TestDaemon *d, guint timeout_ms) {
        if (!daemon_check_exit(d, timeout_ms))
                return -1;
        return harness_decode_status(d->status);
}

int test_daemon_exit_status(TestDaemon *d) {
        return d->reaped ? harness_decode_status(d->status) : -1;
}

/* From /proc/PID/fdinfo/FD: whether the descriptor was opened O_WRONLY. */
static gboolean fd_is_write_only(pid_t pid, const char *fd) {
        g_autofree char *path = g_strdup_printf("/proc/%d/fdinfo/%s", (int) pid, fd);
        g_autofree char *text = NULL;
        const char *flags;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return FALSE;
        flags = strstr(text, "flags:");
        return flags && (g_ascii_strtoull(flags + strlen("flags:"), NULL, 8) & O_ACCMODE) == O_WRONLY;
}

gboolean test_daemon_wait_open_for_write(TestDaemon *d, const char *suffix, guint timeout_ms) {
        g_autofree char *dir = g_strdup_printf("/proc/%d/fd", (int) d->pid);
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        do {
                g_autoptr(GDir) fds = g_dir_open(dir, 0, NULL);
                const char *name;
                while (fds && (name = g_dir_read_name(fds))) {
                        g_autofree char *link = g_build_filename(dir, name, NULL);
                        g_autofree char *target = g_file_read_link(link, NULL);
                        if (target && g_str_has_suffix(target, suffix) && fd_is_write_only(d->pid, name))
                                return TRUE;
                }
                g_usleep(5000);
        } while (g_get_monotonic_time() < deadline);
        return FALSE;
}

gboolean test_daemon_is_running(TestDaemon *d) {
        return !daemon_check_exit(d, 0);
}

void test_daemon_free(TestDaemon *d) {
        if (!d)
                return;
        if (d->pid > 0 && !d->reaped) {
                kill(d->pid, SIGKILL);
                daemon_check_exit(d, G_MAXUINT);
        }
        if (d->notify_thread) {
                char c = 0;

                while (write(d->wake_fds[1], &c, 1) < 0 && errno == EINTR)
                        ;
                g_thread_join(d->notify_thread);
        }
        if (d->notify_fd >= 0)
                close(d->notify_fd);
        if (d->wake_fds[0] >= 0)
                close(d->wake_fds[0]);
        if (d->wake_fds[1] >= 0)
                close(d->wake_fds[1]);
        if (test_failed()) {
                harness_dump_log_once(d->log_slot);
                g_test_message("bus-harness: test failed, keeping %s", d->dir);
        } else {
                test_rm_rf(d->dir);
        }
        harness_log_unregister(d->log_slot);
        g_clear_pointer(&d->notify_msgs, g_ptr_array_unref);
        g_mutex_clear(&d->lock);
        g_cond_clear(&d->cond);
        g_free(d->dir);
        g_free(d->log_path);
        g_free(d->notify_path);
        g_free(d);
}
