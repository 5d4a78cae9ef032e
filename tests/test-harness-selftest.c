/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Self-test of the bus harness: the private bus enforces the real policy, the daemon mechanics work (with
 * fake-daemon-stub standing in for hugepaged), logs are dumped on failure and nothing is left running. */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "bus-harness.h"

#define NOBODY 65534

static char *stub_path(void) {
        const char *env = g_getenv("HUGEPAGED_STUB_BIN");
        char *path;

        if (env && *env)
                path = g_strdup(env);
        else
                path = g_build_filename(g_getenv("HUGEPAGED_BUILD_ROOT") ?: ".", "tests", "fake-daemon-stub",
                                        NULL);
        g_assert_true(g_file_test(path, G_FILE_TEST_IS_EXECUTABLE));
        return path;
}

/* The stub, like hugepaged, may only own org.hugepaged1 as root (dbus/org.hugepaged1.conf). */
static gboolean skip_unless_root(void) {
        if (getuid() == 0)
                return FALSE;
        g_test_skip("only root may own org.hugepaged1");
        return TRUE;
}

static void use_stub(void) {
        g_autofree char *stub = stub_path();

        setenv("HUGEPAGED_BIN", stub, 1);
}

/* True once pid is reaped; a zombie would still answer kill(0). */
static gboolean pid_gone(pid_t pid) {
        return kill(pid, 0) < 0 && errno == ESRCH;
}

static GVariant *bus_call(GDBusConnection *c, const char *method, GVariant *args, const char *reply_type,
                          GError **error) {
        return g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus", method, args, G_VARIANT_TYPE(reply_type),
                                           G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
}

static GVariant *ping(GDBusConnection *c, const char *dest, GError **error) {
        return g_dbus_connection_call_sync(c, dest, "/", "org.freedesktop.DBus.Peer", "Ping", NULL, NULL,
                                           G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
}

/* ---- the bus ---- */

static void test_bus_basics(void) {
        g_autofree char *before = g_strdup(g_getenv("DBUS_SYSTEM_BUS_ADDRESS"));
        g_autoptr(GDBusConnection) c = NULL;
        g_autoptr(GVariant) names = NULL;
        g_autoptr(GVariant) uid = NULL;
        g_autofree const char **v = NULL;
        TestBus *b;
        pid_t bus_pid;

        b = test_bus_start();
        bus_pid = test_bus_pid(b);
        g_assert_true(g_str_has_prefix(test_bus_address(b), "unix:path="));
        g_assert_cmpstr(g_getenv("DBUS_SYSTEM_BUS_ADDRESS"), ==, test_bus_address(b));

        c = test_bus_connect(b);
        g_assert_nonnull(g_dbus_connection_get_unique_name(c));
        names = bus_call(c, "ListNames", NULL, "(as)", NULL);
        g_assert_nonnull(names);
        g_variant_get(names, "(^a&s)", &v);
        g_assert_true(g_strv_contains(v, "org.freedesktop.DBus"));
        g_assert_true(g_strv_contains(v, g_dbus_connection_get_unique_name(c)));

        uid = bus_call(c, "GetConnectionUnixUser",
                       g_variant_new("(s)", g_dbus_connection_get_unique_name(c)), "(u)", NULL);
        g_assert_nonnull(uid);

        g_dbus_connection_close_sync(c, NULL, NULL);
        test_bus_stop(b);
        g_assert_true(pid_gone(bus_pid));
        g_assert_cmpstr(g_getenv("DBUS_SYSTEM_BUS_ADDRESS"), ==, before);
}

/* hugepaged itself talks sd-bus, not GDBus: make sure sd-bus accepts the address (it carries a guid=) and
 * the generated policy. */
static void test_bus_sd_bus_client(void) {
        g_autofree char *busctl = g_find_program_in_path("busctl");
        g_autofree char *out = NULL, *err = NULL;
        char *argv[] = {
                busctl, (char *) "--system", (char *) "call", (char *) "org.freedesktop.DBus",
                (char *) "/org/freedesktop/DBus", (char *) "org.freedesktop.DBus", (char *) "ListNames",
                NULL,
        };
        int status;
        TestBus *b;

        if (!busctl) {
                g_test_skip("busctl not installed");
                return;
        }
        b = test_bus_start();
        /* Inherits our environment, where test_bus_start() put DBUS_SYSTEM_BUS_ADDRESS. */
        g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                                   NULL));
        g_test_message("busctl: %s%s", out, err);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        g_assert_nonnull(strstr(out, "\"org.freedesktop.DBus\""));
        test_bus_stop(b);
}

static guint32 request_name(GDBusConnection *c, const char *name, GError **error) {
        g_autoptr(GVariant) r = bus_call(c, "RequestName", g_variant_new("(su)", name, 4 /* DO_NOT_QUEUE */),
                                         "(u)", error);
        guint32 code = 0;

        if (r)
                g_variant_get(r, "(u)", &code);
        return code;
}

static void test_bus_policy_root(void) {
        g_autoptr(GDBusConnection) c1 = NULL, c2 = NULL, c3 = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        TestBus *b;

        if (skip_unless_root())
                return;
        b = test_bus_start();
        c1 = test_bus_connect(b);
        c2 = test_bus_connect(b);
        c3 = test_bus_connect(b);

        /* A system bus denies owning by default, even to root: uid 0 gets no exemption in dbus-daemon. */
        g_assert_cmpuint(request_name(c1, "org.example.Forbidden", &error), ==, 0);
        g_assert_error(error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED);
        g_clear_error(&error);

        /* The project's policy file was included: root may own the daemon's name. */
        g_assert_cmpuint(request_name(c1, HP_BUS_NAME, &error), ==, 1);
        g_assert_no_error(error);
        /* And a polkit mock could run. */
        g_assert_cmpuint(request_name(c2, "org.freedesktop.PolicyKit1", &error), ==, 1);
        g_assert_no_error(error);

        /* Method calls are denied by default (c3 owns no name: send_destination rules match every name the
         * recipient owns, so calls to c1's unique name would be allowed via org.hugepaged1)... */
        r = ping(c2, g_dbus_connection_get_unique_name(c3), &error);
        g_assert_error(error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED);
        g_assert_null(r);
        g_clear_error(&error);
        /* ...except to org.hugepaged1 (project policy) and the polkit name (harness). */
        r = ping(c2, HP_BUS_NAME, &error);
        g_assert_no_error(error);
        g_clear_pointer(&r, g_variant_unref);
        r = ping(c3, "org.freedesktop.PolicyKit1", &error);
        g_assert_no_error(error);
        g_clear_pointer(&r, g_variant_unref);
        r = ping(c3, g_dbus_connection_get_unique_name(c1), &error);
        g_assert_no_error(error);
        g_clear_pointer(&r, g_variant_unref);

        g_dbus_connection_close_sync(c1, NULL, NULL);
        g_dbus_connection_close_sync(c2, NULL, NULL);
        g_dbus_connection_close_sync(c3, NULL, NULL);
        test_bus_stop(b);
}

static void drop_to_nobody(gpointer unused) {
        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                _exit(126);
}

/* Runs `fake-daemon-stub --stub-try-own=NAME`, as nobody if asked: its exit code says 0 owned, 3 denied. */
static int try_own(const char *name, gboolean as_nobody) {
        g_autofree char *stub = stub_path();
        g_autofree char *arg = g_strconcat("--stub-try-own=", name, NULL);
        g_autofree char *out = NULL, *err = NULL;
        g_autoptr(GError) error = NULL;
        char *argv[] = { stub, arg, NULL };
        int status;

        if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, as_nobody ? drop_to_nobody : NULL, NULL,
                          &out, &err, &status, &error)) {
                g_test_message("cannot run %s: %s", stub, error->message);
                return -1;
        }
        g_test_message("try-own %s%s: %s%s", name, as_nobody ? " as nobody" : "", out, err);
        g_assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void test_bus_policy_unprivileged(void) {
        TestBus *b;
        int r;

        if (getuid() != 0) {
                g_test_skip("needs root to switch to nobody");
                return;
        }
        b = test_bus_start();
        r = try_own(HP_BUS_NAME, TRUE);
        if (r == -1 || r == 126) {
                /* e.g. the build tree is under a directory nobody cannot enter */
                g_test_skip("cannot run the stub as nobody");
                test_bus_stop(b);
                return;
        }
        g_assert_cmpint(r, ==, 3);
        g_assert_cmpint(try_own("org.freedesktop.PolicyKit1", TRUE), ==, 3);
        g_assert_cmpint(try_own(HP_BUS_NAME, FALSE), ==, 0);
        test_bus_stop(b);
}

/* ---- the daemon ---- */

static void test_daemon_lifecycle(void) {
        const char *const extra[] = { "--stub-watchdog-ms=20", "--stub-notify=STATUS=stub is up", NULL };
        g_autoptr(GDBusConnection) c = NULL;
        g_autoptr(GVariant) owner = NULL, owner_pid = NULL;
        g_autofree char *state = NULL, *log = NULL, *expect = NULL;
        g_auto(GStrv) msgs = NULL;
        const char *unique;
        guint32 opid;
        TestBus *b;
        TestDaemon *d;
        pid_t pid;

        if (skip_unless_root())
                return;
        use_stub();
        b = test_bus_start();
        state = test_tmpdir("hugepaged-state-XXXXXX");
        d = test_daemon_start(b, NULL, state, NULL, extra);
        pid = test_daemon_pid(d);
        g_assert_cmpint(pid, >, 0);
        g_assert_true(test_daemon_is_running(d));
        g_assert_cmpint(test_daemon_exit_status(d), ==, -1);
        g_assert_true(test_daemon_got_ready(d));

        g_assert_true(test_daemon_wait_notify(d, "STATUS=stub is up", 5000));
        /* Consumed in order: two pings need two distinct messages. */
        g_assert_true(test_daemon_wait_notify(d, "WATCHDOG=1", 5000));
        g_assert_true(test_daemon_wait_notify(d, "WATCHDOG=1", 5000));
        g_assert_false(test_daemon_wait_notify(d, "NEVER-SENT", 100));
        msgs = test_daemon_notify_messages(d);
        g_assert_cmpstr(msgs[0], ==, "READY=1");

        /* The name belongs to the process we spawned. */
        c = test_bus_connect(b);
        owner = bus_call(c, "GetNameOwner", g_variant_new("(s)", HP_BUS_NAME), "(s)", NULL);
        g_assert_nonnull(owner);
        g_variant_get(owner, "(&s)", &unique);
        owner_pid = bus_call(c, "GetConnectionUnixProcessID", g_variant_new("(s)", unique), "(u)", NULL);
        g_assert_nonnull(owner_pid);
        g_variant_get(owner_pid, "(u)", &opid);
        g_assert_cmpint((pid_t) opid, ==, pid);

        /* Arguments, environment and both output streams. */
        log = test_daemon_log(d);
        g_assert_null(strstr(log, "--root="));
        expect = g_strdup_printf("stub: arg --state-dir=%s\n", state);
        g_assert_nonnull(strstr(log, expect));
        g_assert_nonnull(strstr(log, "stub: arg --log-level=debug\n"));
        /* No config given: a fresh empty file in our tmpdir, never the host's /etc one. */
        g_clear_pointer(&expect, g_free);
        expect = g_strdup_printf("stub: arg --config=%s/hugepaged-daemon-", g_get_tmp_dir());
        g_assert_nonnull(strstr(log, expect));
        g_assert_nonnull(strstr(log, "stub: config size=0\n"));
        g_clear_pointer(&expect, g_free);
        expect = g_strdup_printf("DBUS_SYSTEM_BUS_ADDRESS=%s\n", test_bus_address(b));
        g_assert_nonnull(strstr(log, expect));
        g_assert_nonnull(strstr(log, "stub: this line went to stderr\n"));
        g_assert_nonnull(strstr(log, "stub: WATCHDOG_USEC=(unset)\n"));

        g_assert_cmpint(test_daemon_stop(d), ==, 0);
        g_assert_false(test_daemon_is_running(d));
        g_assert_true(pid_gone(pid));
        g_assert_true(test_daemon_wait_log(d, "stub: SIGTERM, exiting with 0", 1000));
        g_assert_true(test_daemon_wait_notify(d, "STOPPING=1", 1000));

        g_dbus_connection_close_sync(c, NULL, NULL);
        test_daemon_free(d);
        test_bus_stop(b);
        test_rm_rf(state);
        g_assert_false(g_file_test(state, G_FILE_TEST_EXISTS));
}

static void test_daemon_root_config_exit_code(void) {
        const char *const extra[] = { "--stub-exit-code=7", NULL };
        g_autofree char *dir = NULL, *conf = NULL, *log = NULL, *expect = NULL;
        TestBus *b;
        TestDaemon *d;

        if (skip_unless_root())
                return;
        use_stub();
        dir = test_tmpdir("hugepaged-conf-XXXXXX");
        conf = g_build_filename(dir, "my.conf", NULL);
        g_assert_true(g_file_set_contents(conf, "[pools]\n", -1, NULL));
        b = test_bus_start();
        d = test_daemon_start(b, "/nonexistent-root", NULL, conf, extra);
        log = test_daemon_log(d);
        g_assert_nonnull(strstr(log, "stub: arg --root=/nonexistent-root\n"));
        expect = g_strdup_printf("stub: arg --config=%s\nstub: config size=8\n", conf);
        g_assert_nonnull(strstr(log, expect));
        g_assert_cmpint(test_daemon_stop(d), ==, 7);
        g_assert_cmpint(test_daemon_exit_status(d), ==, 7);
        test_daemon_free(d);
        test_bus_stop(b);
        test_rm_rf(dir);
}

static void test_daemon_kill_signal(void) {
        TestBus *b;
        TestDaemon *d;
        pid_t pid;

        if (skip_unless_root())
                return;
        use_stub();
        b = test_bus_start();
        d = test_daemon_start(b, NULL, NULL, NULL, NULL);
        pid = test_daemon_pid(d);
        test_daemon_kill(d, SIGKILL);
        g_assert_false(test_daemon_is_running(d));
        g_assert_cmpint(test_daemon_exit_status(d), ==, 128 + SIGKILL);
        g_assert_true(pid_gone(pid));
        /* Stopping an already dead daemon just reports how it died. */
        g_assert_cmpint(test_daemon_stop(d), ==, 128 + SIGKILL);
        test_daemon_free(d);
        test_bus_stop(b);
}

static void test_daemon_no_wait_env(void) {
        const char *const extra[] = { "--stub-exit-early=2", NULL };
        const char *const env[] = { "WATCHDOG_USEC=1000000", "HUGEPAGED_TEST_UNSET_ME", NULL };
        g_autofree char *log = NULL;
        TestBus *b;
        TestDaemon *d;

        if (skip_unless_root())
                return;
        use_stub();
        /* The harness scrubs the runner's WATCHDOG_USEC; extra_env puts it back. */
        setenv("WATCHDOG_USEC", "5", 1);
        setenv("HUGEPAGED_TEST_UNSET_ME", "x", 1);
        b = test_bus_start();
        d = test_daemon_start_full(b, NULL, NULL, NULL, extra, env, FALSE);
        g_assert_cmpint(test_daemon_wait_exit(d, 5000), ==, 2);
        g_assert_false(test_daemon_got_ready(d));
        log = test_daemon_log(d);
        g_assert_nonnull(strstr(log, "stub: WATCHDOG_USEC=1000000\n"));
        g_assert_nonnull(strstr(log, "stub: exiting early with 2\n"));
        g_assert_cmpint(test_daemon_stop(d), ==, 2);
        test_daemon_free(d);
        test_bus_stop(b);
        unsetenv("WATCHDOG_USEC");
        unsetenv("HUGEPAGED_TEST_UNSET_ME");
}

/* ---- failure reporting, run in subprocesses ---- */

/* Each scenario runs in a g_test_trap_subprocess() child whose TMPDIR is ours, and which writes the pids of
 * its bus and daemon to a file. We are a child subreaper, so when the child dies its orphans come to us:
 * reaping them proves PDEATHSIG killed them. */
static void record_pids(TestBus *b, TestDaemon *d) {
        g_autofree char *s = g_strdup_printf("%d %d", (int) test_bus_pid(b),
                                             d ? (int) test_daemon_pid(d) : 0);

        g_assert_true(g_file_set_contents(g_getenv("SELFTEST_PIDFILE"), s, -1, NULL));
}

static void scenario_abort(void) {
        const char *const extra[] = { "--stub-notify=STATUS=marker-abort", NULL };
        TestBus *b = test_bus_start();
        TestDaemon *d = test_daemon_start(b, NULL, NULL, NULL, extra);

        record_pids(b, d);
        /* What a failed g_assert() does outside of a trap subprocess (inside one, GLib uses _exit(1)). */
        abort();
}

static void scenario_sigterm(void) {
        TestBus *b = test_bus_start();
        TestDaemon *d = test_daemon_start(b, NULL, NULL, NULL, NULL);

        record_pids(b, d);
        /* What meson does on a test timeout. */
        raise(SIGTERM);
}

static void scenario_early_exit(void) {
        const char *const extra[] = { "--stub-exit-early=3", NULL };
        TestBus *b = test_bus_start();

        record_pids(b, NULL);
        test_daemon_start(b, NULL, NULL, NULL, extra);
        g_assert_not_reached();
}

static void scenario_nonfatal(void) {
        TestBus *b;
        TestDaemon *d;

        g_test_set_nonfatal_assertions();
        b = test_bus_start();
        d = test_daemon_start(b, NULL, NULL, NULL, NULL);
        record_pids(b, d);
        g_assert_cmpint(1, ==, 2);
        /* Teardown still runs: the log is printed because the test failed, and nothing is left behind. */
        g_assert_cmpint(test_daemon_stop(d), ==, 0);
        test_daemon_free(d);
        test_bus_stop(b);
}

static void reap_orphans(const char *pidfile) {
        g_autofree char *s = NULL;
        int pids[2] = { 0, 0 };

        g_assert_true(g_file_get_contents(pidfile, &s, NULL, NULL));
        g_assert_cmpint(sscanf(s, "%d %d", &pids[0], &pids[1]), ==, 2);
        for (int i = 0; i < 2; i++) {
                gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
                int status;

                if (pids[i] <= 0)
                        continue;
                /* Already reaped by the child itself (a stopped daemon), or an orphan we must reap now. */
                while (waitpid(pids[i], &status, WNOHANG) == 0 && g_get_monotonic_time() < deadline)
                        g_usleep(10000);
                g_assert_true(pid_gone(pids[i]));
        }
}

static void run_scenario(void (*scenario)(void), const char *const *stderr_patterns) {
        g_autofree char *tmp = NULL, *pidfile = NULL;
        g_autofree char *old_tmp = g_strdup(g_getenv("TMPDIR"));

        if (g_test_subprocess()) {
                scenario();
                return;
        }
        if (skip_unless_root())
                return;
        use_stub();
        tmp = test_tmpdir("hugepaged-selftest-XXXXXX");
        pidfile = g_build_filename(tmp, "pids", NULL);
        g_assert_cmpint(prctl(PR_SET_CHILD_SUBREAPER, 1), ==, 0);
        setenv("TMPDIR", tmp, 1);
        setenv("SELFTEST_PIDFILE", pidfile, 1);
        g_test_trap_subprocess(NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
        if (old_tmp)
                setenv("TMPDIR", old_tmp, 1);
        else
                unsetenv("TMPDIR");
        unsetenv("SELFTEST_PIDFILE");

        g_test_trap_assert_failed();
        for (const char *const *p = stderr_patterns; *p; p++)
                g_test_trap_assert_stderr(*p);
        reap_orphans(pidfile);
        test_rm_rf(tmp);
}

static void test_fail_abort(void) {
        /* The stub prints its arguments, so the dumped log shows --stub-notify's marker. */
        const char *const pat[] = {
                "*caught signal 6*===== hugepaged (pid *) log: *marker-abort*===== end of hugepaged*",
                "*===== dbus-daemon (pid *) log:*",
                NULL,
        };

        run_scenario(scenario_abort, pat);
}

static void test_fail_sigterm(void) {
        const char *const pat[] = {
                "*caught signal 15*===== hugepaged (pid *) log: *stub: RequestName*",
                NULL,
        };

        run_scenario(scenario_sigterm, pat);
}

static void test_fail_early_exit(void) {
        const char *const pat[] = {
                "*===== hugepaged (pid *) log: *stub: exiting early with 3*"
                "exited with status 3 before owning org.hugepaged1*",
                NULL,
        };

        run_scenario(scenario_early_exit, pat);
}

static void test_fail_nonfatal(void) {
        const char *const pat[] = { "*===== hugepaged (pid *) log: *stub: SIGTERM, exiting with 0*", NULL };

        run_scenario(scenario_nonfatal, pat);
}

/* ---- helpers ---- */

static void test_rm_rf_helper(void) {
        g_autofree char *dir = test_tmpdir("hugepaged-rmrf-XXXXXX");
        g_autofree char *sub = g_build_filename(dir, "a", "b", NULL);
        g_autofree char *file = g_build_filename(sub, "f", NULL);
        g_autofree char *link = g_build_filename(dir, "link", NULL);
        g_autofree char *outside = test_tmpdir("hugepaged-outside-XXXXXX");
        g_autofree char *keep = g_build_filename(outside, "keep", NULL);

        g_assert_cmpint(g_mkdir_with_parents(sub, 0755), ==, 0);
        g_assert_true(g_file_set_contents(file, "x", -1, NULL));
        g_assert_true(g_file_set_contents(keep, "x", -1, NULL));
        g_assert_cmpint(symlink(outside, link), ==, 0);
        test_rm_rf(dir);
        g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
        /* Symlinks are removed, not followed. */
        g_assert_true(g_file_test(keep, G_FILE_TEST_IS_REGULAR));
        test_rm_rf(outside);
        test_rm_rf(outside);    /* missing: no-op */
}

int main(int argc, char **argv) {
        test_harness_init(&argc, &argv);

        g_test_add_func("/harness/bus/basics", test_bus_basics);
        g_test_add_func("/harness/bus/sd-bus-client", test_bus_sd_bus_client);
        g_test_add_func("/harness/bus/policy-root", test_bus_policy_root);
        g_test_add_func("/harness/bus/policy-unprivileged", test_bus_policy_unprivileged);
        g_test_add_func("/harness/daemon/lifecycle", test_daemon_lifecycle);
        g_test_add_func("/harness/daemon/root-config-exit-code", test_daemon_root_config_exit_code);
        g_test_add_func("/harness/daemon/kill", test_daemon_kill_signal);
        g_test_add_func("/harness/daemon/no-wait-env", test_daemon_no_wait_env);
        g_test_add_func("/harness/failure/abort", test_fail_abort);
        g_test_add_func("/harness/failure/sigterm", test_fail_sigterm);
        g_test_add_func("/harness/failure/early-exit", test_fail_early_exit);
        g_test_add_func("/harness/failure/nonfatal", test_fail_nonfatal);
        g_test_add_func("/harness/rm-rf", test_rm_rf_helper);
        return g_test_run();
}
