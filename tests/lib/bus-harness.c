/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus-test harness: the private system-type dbus-daemon with the project's policy, the log registry dumped when
 * a test fails, child processes, and the small helpers (see bus-harness.h). The daemon is in test-daemon.c. */
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
#include "bus-harness-private.h"

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

int harness_log_register(const char *what, pid_t pid, const char *path) {
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

void harness_log_unregister(int slot) {
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

void harness_dump_log_once(int slot) {
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

char **harness_child_environ(void) {
        char **env = g_get_environ();

        for (size_t i = 0; i < G_N_ELEMENTS(scrubbed_env); i++)
                env = g_environ_unsetenv(env, scrubbed_env[i]);
        return env;
}

GPid harness_spawn_child(char **argv, char **envp, int stdout_fd, int stderr_fd) {
        g_autoptr(GError) error = NULL;
        GPid pid = 0;

        if (!g_spawn_async_with_fds(NULL, argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, child_setup,
                                    GINT_TO_POINTER((int) getpid()), &pid, -1, stdout_fd, stderr_fd, &error))
                harness_fail("cannot spawn %s: %s", argv[0], error->message);
        return pid;
}

/* Reaps pid within timeout_ms (0: just check). TRUE and *status filled if it exited. */
gboolean harness_reap(pid_t pid, int *status, guint timeout_ms) {
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

int harness_decode_status(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return -1;
}

int harness_open_log(const char *path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);

        if (fd < 0)
                harness_fail("cannot create %s: %s", path, g_strerror(errno));
        return fd;
}

const char *harness_require_env(const char *name) {
        const char *v = g_getenv(name);

        if (!v || !*v)
                harness_fail("%s is not set; run the bus tests through `meson test`", name);
        return v;
}

/* ---- the bus ---- */

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
        const char *src = harness_require_env("HUGEPAGED_SOURCE_ROOT");
        g_autofree char *policy = g_build_filename(src, "dbus", HP_BUS_NAME ".conf", NULL);
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
        log_fd = harness_open_log(b->log_path);
        config_arg = g_strconcat("--config-file=", config_path, NULL);
        {
                char *argv[] = {
                        dbus_daemon, config_arg, (char *) "--nofork", (char *) "--nopidfile",
                        (char *) "--nosyslog", (char *) "--print-address=1", NULL,
                };

                env = harness_child_environ();
                /* The address goes to stdout, which is the pipe; diagnostics to stderr, the log. */
                b->pid = harness_spawn_child(argv, env, pipe_fds[1], log_fd);
        }
        close(pipe_fds[1]);
        close(log_fd);
        b->address_fd = pipe_fds[0];
        b->log_slot = harness_log_register("dbus-daemon", b->pid, b->log_path);

        b->address = read_address(b->address_fd);
        if (!b->address) {
                harness_dump_log_once(b->log_slot);
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
                if (!harness_reap(b->pid, &status, STOP_TIMEOUT_MS)) {
                        kill(b->pid, SIGKILL);
                        harness_reap(b->pid, &status, G_MAXUINT);
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
                harness_dump_log_once(b->log_slot);
                g_test_message("bus-harness: test failed, keeping %s", b->dir);
        } else {
                test_rm_rf(b->dir);
        }
        harness_log_unregister(b->log_slot);
        g_free(b->dir);
        g_free(b->log_path);
        g_free(b->address);
        g_free(b->saved_address);
        g_free(b);
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
