/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus-test harness: private system-type dbus-daemon with the project's policy, the daemon under test as a
 * subprocess with a notify socket, and dumping their logs when a test fails (see bus-harness.h). */
#define G_LOG_DOMAIN "bus-harness"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <glib-unix.h>

#include "bus-harness.h"

#define START_TIMEOUT_MS 15000
#define STOP_TIMEOUT_MS 10000
#define READY_GRACE_MS 5000

/* Reports through GTest rather than g_error(): honours g_test_set_nonfatal_assertions() and dies by SIGABRT
 * (which our handler catches) instead of SIGTRAP. */
#define harness_fail(...)                                                                               \
        G_STMT_START {                                                                                  \
                g_autofree char *_msg = g_strdup_printf(__VA_ARGS__);                                   \
                g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, _msg);                 \
        } G_STMT_END

/* ---- log registry, readable from a signal handler ---- */

/* Fixed storage so the fatal-signal handler needs no allocation or locks: a slot is filled completely before
 * `used` is set, and `used` is cleared before the slot is reused. */
#define MAX_LOGS 64

typedef struct {
        volatile sig_atomic_t used;
        volatile sig_atomic_t dumped;
        char label[96];
        char path[PATH_MAX];
} LogSlot;

static LogSlot log_slots[MAX_LOGS];
static GMutex log_slots_lock;

static int log_register(const char *what, pid_t pid, const char *path) {
        g_mutex_lock(&log_slots_lock);
        for (int i = 0; i < MAX_LOGS; i++) {
                LogSlot *s = &log_slots[i];

                if (__atomic_load_n(&s->used, __ATOMIC_SEQ_CST))
                        continue;
                g_snprintf(s->label, sizeof s->label, "%s (pid %d)", what, (int) pid);
                g_strlcpy(s->path, path, sizeof s->path);
                s->dumped = 0;
                __atomic_store_n(&s->used, 1, __ATOMIC_SEQ_CST);
                g_mutex_unlock(&log_slots_lock);
                return i;
        }
        g_mutex_unlock(&log_slots_lock);
        g_test_message("bus-harness: more than %d live logs, %s will not be dumped on failure",
                       MAX_LOGS, path);
        return -1;
}

static void log_unregister(int slot) {
        if (slot < 0)
                return;
        __atomic_store_n(&log_slots[slot].used, 0, __ATOMIC_SEQ_CST);
}

/* Everything below up to dump_slot() is async-signal-safe. */
static void write_all(const char *buf, size_t len) {
        while (len > 0) {
                ssize_t n = write(STDERR_FILENO, buf, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                buf += n;
                len -= (size_t) n;
        }
}

static void write_str(const char *s) {
        write_all(s, strlen(s));
}

static void write_int(long v) {
        char buf[24];
        size_t i = sizeof buf;
        gboolean neg = v < 0;
        unsigned long u = neg ? 0UL - (unsigned long) v : (unsigned long) v;

        do {
                buf[--i] = (char) ('0' + u % 10);
                u /= 10;
        } while (u > 0);
        if (neg)
                buf[--i] = '-';
        write_all(buf + i, sizeof buf - i);
}

static void dump_slot(LogSlot *s) {
        char buf[4096];
        char last = '\n';
        int fd;

        s->dumped = 1;
        write_str("\n===== ");
        write_str(s->label);
        write_str(" log: ");
        write_str(s->path);
        write_str(" =====\n");
        fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                write_str("(cannot open log)\n");
        } else {
                for (;;) {
                        ssize_t n = read(fd, buf, sizeof buf);

                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                break;
                        write_all(buf, (size_t) n);
                        last = buf[n - 1];
                }
                close(fd);
        }
        if (last != '\n')
                write_str("\n");
        write_str("===== end of ");
        write_str(s->label);
        write_str(" log =====\n");
}

static void dump_all_logs(gboolean skip_dumped) {
        for (int i = 0; i < MAX_LOGS; i++) {
                LogSlot *s = &log_slots[i];

                if (!__atomic_load_n(&s->used, __ATOMIC_SEQ_CST))
                        continue;
                if (skip_dumped && s->dumped)
                        continue;
                dump_slot(s);
        }
}

static volatile sig_atomic_t in_fatal_signal;

static void fatal_signal_handler(int sig) {
        if (!in_fatal_signal) {
                in_fatal_signal = 1;
                write_str("\nbus-harness: caught signal ");
                write_int(sig);
                write_str(", dumping the logs of live daemons\n");
                /* Logs the harness already printed before failing are not repeated. */
                dump_all_logs(TRUE);
        }
        /* Installed with SA_RESETHAND|SA_NODEFER: this now takes the default action (abort() also
         * re-raises by itself if we returned). */
        raise(sig);
}

void test_harness_dump_logs(void) {
        dump_all_logs(FALSE);
}

static void dump_log_once(int slot) {
        if (slot >= 0 && !log_slots[slot].dumped)
                dump_slot(&log_slots[slot]);
}

void test_harness_init(int *argc, char ***argv) {
        static const int sigs[] = { SIGABRT, SIGTERM, SIGSEGV, SIGBUS, SIGTRAP };
        static gboolean installed;

        g_test_init(argc, argv, NULL);
        if (installed)
                return;
        installed = TRUE;
        for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++) {
                struct sigaction sa = {
                        .sa_handler = fatal_signal_handler,
                        .sa_flags = SA_RESETHAND | SA_NODEFER,
                };

                sigemptyset(&sa.sa_mask);
                g_assert_cmpint(sigaction(sigs[i], &sa, NULL), ==, 0);
        }
}

/* ---- processes ---- */

/* Runs in the forked child before exec. PDEATHSIG fires when the forking *thread* exits, so spawn from the
 * test's main thread. The getppid() check closes the race of the parent dying before prctl(). */
static void child_setup(gpointer user_data) {
        pid_t parent = (pid_t) GPOINTER_TO_INT(user_data);

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(127);
}

/* Variables a service manager may have given the test run: they belong to the test runner, not to the
 * processes we spawn, and STATE_DIRECTORY & co. could redirect the daemon away from our tmpdirs. */
static const char *const scrubbed_env[] = {
        "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
        "JOURNAL_STREAM", "INVOCATION_ID", "RUNTIME_DIRECTORY", "STATE_DIRECTORY", "CACHE_DIRECTORY",
        "LOGS_DIRECTORY", "CONFIGURATION_DIRECTORY", "CREDENTIALS_DIRECTORY",
};

static char **child_environ(void) {
        char **env = g_get_environ();

        for (size_t i = 0; i < G_N_ELEMENTS(scrubbed_env); i++)
                env = g_environ_unsetenv(env, scrubbed_env[i]);
        return env;
}

static GPid spawn_child(char **argv, char **envp, int stdout_fd, int stderr_fd) {
        g_autoptr(GError) error = NULL;
        GPid pid = 0;

        if (!g_spawn_async_with_fds(NULL, argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, child_setup,
                                    GINT_TO_POINTER((int) getpid()), &pid, -1, stdout_fd, stderr_fd, &error))
                harness_fail("cannot spawn %s: %s", argv[0], error->message);
        return pid;
}

/* Reaps pid within timeout_ms (0: just check). TRUE and *status filled if it exited. */
static gboolean reap(pid_t pid, int *status, guint timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        for (;;) {
                pid_t r = waitpid(pid, status, WNOHANG);

                if (r == pid)
                        return TRUE;
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        /* Someone else (a GChildWatch?) reaped it: the status is lost. */
                        harness_fail("waitpid(%d): %s", (int) pid, g_strerror(errno));
                        *status = W_EXITCODE(255, 0);
                        return TRUE;
                }
                if (g_get_monotonic_time() >= deadline)
                        return FALSE;
                g_usleep(5000);
        }
}

static int decode_status(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return -1;
}

static int open_log(const char *path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);

        if (fd < 0)
                harness_fail("cannot create %s: %s", path, g_strerror(errno));
        return fd;
}

static const char *require_env(const char *name) {
        const char *v = g_getenv(name);

        if (!v || !*v)
                harness_fail("%s is not set; run the bus tests through `meson test`", name);
        return v;
}

/* ---- the bus ---- */

struct TestBus {
        char *dir;
        char *log_path;
        char *address;
        char *saved_address;    /* DBUS_SYSTEM_BUS_ADDRESS before us, restored on stop */
        GPid pid;
        int log_slot;
        int address_fd;         /* read end of --print-address; kept open so the daemon never gets EPIPE */
        GDBusConnection *conn;  /* the harness' own, for watching name owners */
};

/* Mirrors the default policy of Debian's /usr/share/dbus-1/system.conf, then includes only the project's
 * policy file: neither the host's system.d nor any service activation. */
static const char bus_config_fmt[] =
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<!-- Generated by tests/bus-harness.c for one test bus. -->\n"
        "<busconfig>\n"
        "  <type>system</type>\n"
        "  <listen>unix:path=%s</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        "  <policy context=\"default\">\n"
        "    <allow user=\"*\"/>\n"
        "    <deny own=\"*\"/>\n"
        "    <deny send_type=\"method_call\"/>\n"
        "    <allow send_type=\"signal\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
        "    <allow receive_type=\"method_call\"/>\n"
        "    <allow receive_type=\"method_return\"/>\n"
        "    <allow receive_type=\"error\"/>\n"
        "    <allow receive_type=\"signal\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\"\n"
        "           send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\"\n"
        "           send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\"\n"
        "           send_interface=\"org.freedesktop.DBus.Containers1\"/>\n"
        "    <deny send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"\n"
        "          send_member=\"UpdateActivationEnvironment\"/>\n"
        "    <deny send_destination=\"org.freedesktop.DBus\"\n"
        "          send_interface=\"org.freedesktop.DBus.Debug.Stats\"/>\n"
        "    <deny send_destination=\"org.freedesktop.DBus\"\n"
        "          send_interface=\"org.freedesktop.systemd1.Activator\"/>\n"
        "  </policy>\n"
        "  <policy user=\"root\">\n"
        "    <allow send_destination=\"org.freedesktop.DBus\"\n"
        "           send_interface=\"org.freedesktop.DBus.Monitoring\"/>\n"
        "  </policy>\n"
        "  <!-- Test-only: the soak benchmark (as root) counts the daemon's match rules with\n"
        "       GetConnectionStats. -->\n"
        "  <policy user=\"root\">\n"
        "    <allow send_destination=\"org.freedesktop.DBus\"\n"
        "           send_interface=\"org.freedesktop.DBus.Debug.Stats\"/>\n"
        "  </policy>\n"
        "  <!-- Test-only: lets a polkit mock (python-dbusmock, as root) stand in for polkitd, and lets\n"
        "       anyone call it as the real polkit policy does. -->\n"
        "  <policy user=\"root\">\n"
        "    <allow own=\"org.freedesktop.PolicyKit1\"/>\n"
        "  </policy>\n"
        "  <policy context=\"default\">\n"
        "    <allow send_destination=\"org.freedesktop.PolicyKit1\"/>\n"
        "  </policy>\n"
        "  <include>%s</include>\n"
        "</busconfig>\n";

static char *read_address(int fd) {
        g_autoptr(GString) s = g_string_new(NULL);
        gint64 deadline = g_get_monotonic_time() + (gint64) START_TIMEOUT_MS * 1000;

        while (!strchr(s->str, '\n')) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
                char buf[256];
                ssize_t n;
                int r;

                if (left_ms <= 0)
                        return NULL;
                r = poll(&p, 1, (int) left_ms);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return NULL;
                n = read(fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return NULL;    /* dbus-daemon died before listening */
                g_string_append_len(s, buf, n);
        }
        *strchr(s->str, '\n') = '\0';
        return g_strdup(s->str);
}

TestBus *test_bus_start(void) {
        const char *src = require_env("HUGEPAGED_SOURCE_ROOT");
        g_autofree char *policy = g_build_filename(src, "dbus", "org.hugepaged1.conf", NULL);
        g_autofree char *config_path = NULL, *socket_path = NULL, *esc_socket = NULL, *esc_policy = NULL;
        g_autofree char *config = NULL, *config_arg = NULL;
        g_autofree char *dbus_daemon = g_find_program_in_path("dbus-daemon");
        g_auto(GStrv) env = NULL;
        g_autoptr(GError) error = NULL;
        TestBus *b = g_new0(TestBus, 1);
        int pipe_fds[2], log_fd;

        b->log_slot = -1;
        b->address_fd = -1;
        if (!dbus_daemon)
                harness_fail("dbus-daemon is not in PATH");
        if (!g_file_test(policy, G_FILE_TEST_IS_REGULAR))
                harness_fail("bus policy %s does not exist", policy);

        b->dir = test_tmpdir("hugepaged-bus-XXXXXX");
        /* Reachable by every uid, so tests may connect as an unprivileged user (dbus-daemon makes the
         * socket itself 0777). */
        g_assert_cmpint(g_chmod(b->dir, 0755), ==, 0);
        socket_path = g_build_filename(b->dir, "system_bus_socket", NULL);
        config_path = g_build_filename(b->dir, "system.conf", NULL);
        b->log_path = g_build_filename(b->dir, "dbus-daemon.log", NULL);
        if (strlen(socket_path) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                harness_fail("socket path %s too long; use a shorter TMPDIR", socket_path);

        esc_socket = g_markup_escape_text(socket_path, -1);
        esc_policy = g_markup_escape_text(policy, -1);
        config = g_strdup_printf(bus_config_fmt, esc_socket, esc_policy);
        if (!g_file_set_contents(config_path, config, -1, &error))
                harness_fail("cannot write %s: %s", config_path, error->message);

        g_assert_true(g_unix_open_pipe(pipe_fds, FD_CLOEXEC, NULL));
        log_fd = open_log(b->log_path);
        config_arg = g_strconcat("--config-file=", config_path, NULL);
        {
                char *argv[] = {
                        dbus_daemon, config_arg, (char *) "--nofork", (char *) "--nopidfile",
                        (char *) "--nosyslog", (char *) "--print-address=1", NULL,
                };

                env = child_environ();
                /* The address goes to stdout, which is the pipe; diagnostics to stderr, the log. */
                b->pid = spawn_child(argv, env, pipe_fds[1], log_fd);
        }
        close(pipe_fds[1]);
        close(log_fd);
        b->address_fd = pipe_fds[0];
        b->log_slot = log_register("dbus-daemon", b->pid, b->log_path);

        b->address = read_address(b->address_fd);
        if (!b->address) {
                dump_log_once(b->log_slot);
                harness_fail("dbus-daemon (pid %d) did not print its address within %d s",
                             (int) b->pid, START_TIMEOUT_MS / 1000);
                return b;
        }
        g_test_message("bus-harness: test bus %s (pid %d)", b->address, (int) b->pid);

        /* libc rather than g_setenv(), which logs a thread-safety debug message on every call once GDBus'
         * worker runs; the hazard is the same and accepted: tests start buses before racing on getenv(). */
        b->saved_address = g_strdup(g_getenv("DBUS_SYSTEM_BUS_ADDRESS"));
        setenv("DBUS_SYSTEM_BUS_ADDRESS", b->address, 1);
        b->conn = test_bus_connect(b);
        return b;
}

const char *test_bus_address(TestBus *b) {
        return b->address;
}

pid_t test_bus_pid(TestBus *b) {
        return b->pid;
}

GDBusConnection *test_bus_connect(TestBus *b) {
        g_autoptr(GError) error = NULL;
        GDBusConnection *c;

        c = g_dbus_connection_new_for_address_sync(b->address,
                                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                   NULL, NULL, &error);
        g_assert_no_error(error);
        return c;
}

void test_bus_stop(TestBus *b) {
        int status;

        if (!b)
                return;
        if (b->conn) {
                g_dbus_connection_close_sync(b->conn, NULL, NULL);
                g_clear_object(&b->conn);
        }
        if (b->pid > 0) {
                kill(b->pid, SIGTERM);
                if (!reap(b->pid, &status, STOP_TIMEOUT_MS)) {
                        kill(b->pid, SIGKILL);
                        reap(b->pid, &status, G_MAXUINT);
                        harness_fail("dbus-daemon (pid %d) ignored SIGTERM", (int) b->pid);
                }
        }
        if (b->address) {
                if (b->saved_address)
                        setenv("DBUS_SYSTEM_BUS_ADDRESS", b->saved_address, 1);
                else
                        unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
        }
        if (b->address_fd >= 0)
                close(b->address_fd);
        if (test_failed()) {
                dump_log_once(b->log_slot);
                g_test_message("bus-harness: test failed, keeping %s", b->dir);
        } else {
                test_rm_rf(b->dir);
        }
        log_unregister(b->log_slot);
        g_free(b->dir);
        g_free(b->log_path);
        g_free(b->address);
        g_free(b->saved_address);
        g_free(b);
}

/* ---- the daemon ---- */

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
                path = g_build_filename(require_env("HUGEPAGED_BUILD_ROOT"), "src", "hugepaged", "hugepaged",
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
        if (!reap(d->pid, &status, timeout_ms))
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
                        dump_log_once(d->log_slot);
                        harness_fail("daemon (pid %d) exited with status %d before owning %s; log: %s",
                                     (int) d->pid, decode_status(d->status), TEST_BUS_NAME, d->log_path);
                        return;
                }
                if (g_get_monotonic_time() >= deadline) {
                        dump_log_once(d->log_slot);
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

        env = child_environ();
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

        log_fd = open_log(d->log_path);
        /* Two descriptors of one O_APPEND open file: stdout and stderr interleave in order, and GLib's fd
         * shuffling in the child never sees the same fd as both targets' source. */
        log_fd2 = fcntl(log_fd, F_DUPFD_CLOEXEC, 3);
        g_assert_cmpint(log_fd2, >=, 0);
        d->pid = spawn_child((char **) argv->pdata, env, log_fd, log_fd2);
        close(log_fd);
        close(log_fd2);
        d->log_slot = log_register("hugepaged", d->pid, d->log_path);

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
                        dump_log_once(d->log_slot);
                        harness_fail("daemon (pid %d) did not exit within %d s of SIGTERM", (int) d->pid,
                                     STOP_TIMEOUT_MS / 1000);
                }
        }
        if (test_failed())
                dump_log_once(d->log_slot);
        return decode_status(d->status);
}

int test_daemon_wait_exit(TestDaemon *d, guint timeout_ms) {
        if (!daemon_check_exit(d, timeout_ms))
                return -1;
        return decode_status(d->status);
}

int test_daemon_exit_status(TestDaemon *d) {
        return d->reaped ? decode_status(d->status) : -1;
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
                dump_log_once(d->log_slot);
                g_test_message("bus-harness: test failed, keeping %s", d->dir);
        } else {
                test_rm_rf(d->dir);
        }
        log_unregister(d->log_slot);
        g_clear_pointer(&d->notify_msgs, g_ptr_array_unref);
        g_mutex_clear(&d->lock);
        g_cond_clear(&d->cond);
        g_free(d->dir);
        g_free(d->log_path);
        g_free(d->notify_path);
        g_free(d);
}

/* ---- helpers ---- */

GVariant *test_call(GDBusConnection *c, const char *path, const char *iface, const char *method,
                    GVariant *args, const GVariantType *reply_type, GError **error) {
        return g_dbus_connection_call_sync(c, TEST_BUS_NAME, path, iface, method, args, reply_type,
                                           G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS, NULL, error);
}

GVariant *test_get_property(GDBusConnection *c, const char *path, const char *iface, const char *prop) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        GVariant *value = NULL;

        reply = test_call(c, path, "org.freedesktop.DBus.Properties", "Get",
                          g_variant_new("(ss)", iface, prop), G_VARIANT_TYPE("(v)"), &error);
        g_assert_no_error(error);
        if (reply)
                g_variant_get(reply, "(v)", &value);
        return value;
}

gboolean test_pidfd_supported(void) {
        int fd = (int) syscall(SYS_pidfd_open, getpid(), 0);

        if (fd < 0)
                return errno != ENOSYS;
        close(fd);
        return TRUE;
}

char *test_tmpdir(const char *tmpl) {
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp(tmpl, &error);

        g_assert_no_error(error);
        return dir;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        int r = type == FTW_DP ? rmdir(path) : unlink(path);

        if (r < 0 && errno != ENOENT)
                g_test_message("bus-harness: cannot remove %s: %s", path, g_strerror(errno));
        return 0;
}

void test_rm_rf(const char *path) {
        if (!path)
                return;
        /* FTW_MOUNT: a still-mounted FUSE root is left alone (and reported) rather than emptied through. */
        if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
                g_test_message("bus-harness: cannot remove %s: %s", path, g_strerror(errno));
}

static char *skipped_test;       /* g_test_get_path() of the last test_skip() */

void test_skip(const char *why) {
        g_free(skipped_test);
        skipped_test = g_strdup(g_test_get_path());
        g_test_skip(why);
}

gboolean test_failed(void) {
        if (!g_test_failed())
                return FALSE;
        return !(skipped_test && g_str_equal(skipped_test, g_test_get_path()));
}

GVariant *test_opts(const char *text) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) v = g_variant_parse(G_VARIANT_TYPE("a{sv}"), text, NULL, NULL, &e);
        GVariantBuilder b;
        GVariantIter it;
        GVariant *child;

        g_assert_no_error(e);
        /* g_variant_parse() returns a full reference, which "@a{sv}" would only add to: hand out a floating
         * copy instead, so the call that takes it owns it (valgrind counted the difference as leaks). */
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_iter_init(&it, v);
        while ((child = g_variant_iter_next_value(&it))) {
                g_variant_builder_add_value(&b, child);
                g_variant_unref(child);
        }
        return g_variant_builder_end(&b);
}
