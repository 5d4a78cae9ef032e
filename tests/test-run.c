/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl run against the real daemon over the FUSE fake kernel: the pages are there, bound to the command,
 * while it runs and gone after; its exit status passes through; a request that can't be granted exits 4 without
 * running it; signals are forwarded; and the pages go when the command exits even after hugepagectl was killed. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hp-client.h"
#include "hp-ctl.h"
#include "hp-fixture.h"

#define PS2M (2ULL * 1024 * 1024)

typedef HpFixture Fixture;

static const HpTestParams params_default = {
        .config = "[Allocation]\nMaxAttempts=2\nTimeoutSec=10\n",
        .daemon_end = HP_DAEMON_END_CLEAN,
};

/* run binds the reservation with lifetime pid: the daemon needs pidfd_open(), which valgrind 3.19 (Debian 12)
 * does not emulate. */
static gboolean pidfd_or_skip(void) {
        if (test_pidfd_supported())
                return TRUE;
        test_skip("pidfd_open() is not available here (valgrind 3.19 does not emulate it)");
        return FALSE;
}

static GPid ctl_spawn(Fixture *f, const char *const *args) {
        g_auto(GStrv) argv = hp_ctl_argv(args);
        g_auto(GStrv) env = hp_ctl_env(test_bus_address(f->bus), NULL);
        g_autoptr(GError) error = NULL;
        GPid pid;

        g_spawn_async(NULL, argv, env, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, &error);
        g_assert_no_error(error);
        return pid;
}

static int wait_status(GPid pid) {
        int status;

        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static guint64 pool_total(Fixture *f, guint64 *ret_reserved) {
        guint64 total, reserved, floor_;

        g_assert_true(hp_pool_row(f->c, PS2M, -1, &total, &reserved, &floor_));
        if (ret_reserved)
                *ret_reserved = reserved;
        return total;
}

static gboolean reservation_exists(Fixture *f, const char *name) {
        g_autoptr(GVariant) reply = test_call(f->c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "GetReservation",
                                              g_variant_new("(s)", name), G_VARIANT_TYPE("(o)"), NULL);
        return reply != NULL;
}

/* The command's line in dir/started: "$HUGEPAGED_RESERVATION $$", written once it runs. */
static char *started_path(Fixture *f) {
        return g_build_filename(f->dir, "started", NULL);
}

static char *read_started(Fixture *f, guint32 *ret_pid) {
        g_autofree char *path = started_path(f), *text = NULL;
        g_auto(GStrv) words = NULL;

        HP_WAIT_FOR(g_file_get_contents(path, &text, NULL, NULL) && strchr(text, '\n'), 10000);
        g_strstrip(text);
        words = g_strsplit(text, " ", 2);
        g_assert_cmpuint(g_strv_length(words), ==, 2);
        *ret_pid = (guint32) g_ascii_strtoull(words[1], NULL, 10);
        g_assert_cmpuint(*ret_pid, >, 1);
        return g_strdup(words[0]);
}

/* `hugepagectl run NAME SIZE -- sh` that writes dir/started and sleeps; returns hugepagectl's pid once the command
 * runs, and the command's pid. */
static GPid spawn_sleeper(Fixture *f, const char *name, const char *size, guint32 *ret_cmd_pid) {
        g_autofree char *started = started_path(f);
        g_autofree char *script = g_strdup_printf("echo \"$HUGEPAGED_RESERVATION $$\" >%s; exec sleep 60", started);
        g_autofree char *env_name = NULL;
        GPid pid;

        pid = ctl_spawn(f, (const char *const[]) { "run", name, size, "--", "sh", "-c", script, NULL });
        env_name = read_started(f, ret_cmd_pid);
        g_assert_cmpstr(env_name, ==, name);
        return pid;
}

/* The example: run r2 64M -- a command that exits 7. */
static void test_run_lifetime(Fixture *f, gconstpointer data) {
        g_autofree char *started = started_path(f), *go = g_build_filename(f->dir, "go", NULL);
        g_autofree char *script = g_strdup_printf("echo \"$HUGEPAGED_RESERVATION $$\" >%s; "
                                                  "while [ ! -e %s ]; do sleep 0.05; done; exit 7", started, go);
        g_autofree char *env_name = NULL, *path = NULL;
        guint64 reserved0, reserved1, reserved2;
        guint64 total0 = pool_total(f, &reserved0);
        guint32 cmd_pid;
        GPid pid;

        if (!pidfd_or_skip())
                return;

        pid = ctl_spawn(f, (const char *const[]) { "run", "r2", "64M", "--", "sh", "-c", script, NULL });
        env_name = read_started(f, &cmd_pid);
        g_assert_cmpstr(env_name, ==, "r2");

        /* During the run: the reservation exists, bound to the command's process, and the pool is 32 up. */
        path = hp_get_reservation(f->c, "r2");
        g_assert_nonnull(path);
        g_assert_cmpuint(hp_prop_u64(f->c, path, HP_BUS_IFACE_RESERVATION, "Pages"), ==, 32);
        g_autofree char *lifetime = hp_prop_str(f->c, path, HP_BUS_IFACE_RESERVATION, "Lifetime");
        g_assert_cmpstr(lifetime, ==, "'pid'");
        g_autofree char *bound = hp_prop_str(f->c, path, HP_BUS_IFACE_RESERVATION, "PID");
        g_assert_cmpuint((guint32) g_ascii_strtoull(bound, NULL, 10), ==, cmd_pid);
        g_assert_cmpuint(pool_total(f, &reserved1), ==, total0 + 32);
        g_assert_cmpuint(reserved1, ==, reserved0 + 32);

        g_assert_true(g_file_set_contents(go, "", 0, NULL));
        g_assert_cmpint(wait_status(pid), ==, 7);

        /* After it: the reservation is gone at once (hugepagectl released it before it exited, if the daemon's
         * pidfd had not yet), and the pool shrinks back. */
        g_assert_false(reservation_exists(f, "r2"));
        HP_WAIT_FOR(pool_total(f, &reserved2) == total0, 10000);
        g_assert_cmpuint(reserved2, ==, reserved0);
}

/* run --hold: the command sees its reservation's mount in HUGEPAGED_MOUNT_PATH, the reservation is held, and
 * both are gone when it exits. (On the fake kernel the daemon simulates the mount: the real one is checked by the
 * kernel suite.) */
static void test_run_hold(Fixture *f, gconstpointer data) {
        g_autofree char *seen = g_build_filename(f->dir, "seen", NULL), *go = g_build_filename(f->dir, "go", NULL);
        g_autofree char *script = g_strdup_printf("printf '%%s' \"$HUGEPAGED_MOUNT_PATH\" >%s.tmp; mv %s.tmp %s; "
                                                  "while [ ! -e %s ]; do sleep 0.05; done; exit 3",
                                                  seen, seen, seen, go);
        g_autofree char *text = NULL, *path = NULL, *mount_path = NULL, *held = NULL;
        GPid pid;

        if (!pidfd_or_skip())
                return;
        pid = ctl_spawn(f, (const char *const[]) { "run", "--hold", "r3", "64M", "--", "sh", "-c", script, NULL });
        HP_WAIT_FOR(g_file_get_contents(seen, &text, NULL, NULL), 10000);
        path = hp_get_reservation(f->c, "r3");
        g_assert_nonnull(path);
        held = hp_prop_str(f->c, path, HP_BUS_IFACE_RESERVATION, "Held");
        g_assert_cmpstr(held, ==, "true");
        mount_path = hp_prop_str(f->c, path, HP_BUS_IFACE_RESERVATION, "MountPath");
        g_autofree char *quoted = g_strdup_printf("'%s'", text);
        g_assert_cmpstr(text, !=, "");
        g_assert_cmpstr(mount_path, ==, quoted);
        g_assert_true(g_file_set_contents(go, "", 0, NULL));
        g_assert_cmpint(wait_status(pid), ==, 3);
        g_assert_false(reservation_exists(f, "r3"));
}

static void test_run_too_big(Fixture *f, gconstpointer data) {
        g_autofree char *ran = g_build_filename(f->dir, "ran", NULL);
        g_autofree char *script = g_strdup_printf("touch %s", ran);
        g_autofree char *err = NULL;
        guint64 total0;

        if (!pidfd_or_skip())
                return;

        /* The kernel gives at most 100 pages of 2 MiB per node: 1 GiB (512) can't be had. */
        fake_kernel_control(f->fk, "capacity 0 2048 100");
        fake_kernel_control(f->fk, "capacity 1 2048 100");
        total0 = pool_total(f, NULL);
        g_assert_cmpint(hp_ctl_run(test_bus_address(f->bus), NULL, NULL, &err,
                                   (const char *const[]) { "run", "huge", "1G", "--", "sh", "-c", script, NULL }),
                        ==, 4);
        g_assert_nonnull(strstr(err, "cannot reserve huge"));
        g_assert_false(g_file_test(ran, G_FILE_TEST_EXISTS));
        g_assert_false(reservation_exists(f, "huge"));
        HP_WAIT_FOR(pool_total(f, NULL) == total0, 10000);

        /* A command that exits 4 itself is told apart by nothing but its stderr: documented. The command that
         * can't be run: 127, as a shell says, and the pages are gone. */
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(hp_ctl_run(test_bus_address(f->bus), NULL, NULL, &err,
                                   (const char *const[]) { "run", "nocmd", "2M", "--", "/nonexistent/cmd", NULL }),
                        ==, 127);
        g_assert_nonnull(strstr(err, "cannot run /nonexistent/cmd"));
        g_assert_false(reservation_exists(f, "nocmd"));
}

static void test_run_signals(Fixture *f, gconstpointer data) {
        guint64 total0 = pool_total(f, NULL);
        guint32 cmd_pid;
        GPid pid;

        if (!pidfd_or_skip())
                return;

        /* A command killed by a signal: 128 + its number. */
        g_assert_cmpint(hp_ctl_run(test_bus_address(f->bus), NULL, NULL, NULL,
                                   (const char *const[]) { "run", "s1", "2M", "--", "sh", "-c", "kill -TERM $$", NULL }),
                        ==, 128 + SIGTERM);

        /* SIGTERM to hugepagectl reaches the command. */
        pid = spawn_sleeper(f, "s2", "2M", &cmd_pid);
        g_assert_cmpint(kill(pid, SIGTERM), ==, 0);
        g_assert_cmpint(wait_status(pid), ==, 128 + SIGTERM);
        g_assert_false(reservation_exists(f, "s2"));
        HP_WAIT_FOR(pool_total(f, NULL) == total0, 10000);
}

/* hugepagectl SIGKILLed: the command goes on with its pages, and they go when it exits. */
static void test_run_killed(Fixture *f, gconstpointer data) {
        guint64 total0 = pool_total(f, NULL);
        guint32 cmd_pid;
        int status;
        GPid pid;

        if (!pidfd_or_skip())
                return;

        pid = spawn_sleeper(f, "k1", "8M", &cmd_pid);
        g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFSIGNALED(status));

        g_assert_true(reservation_exists(f, "k1"));
        g_assert_cmpuint(pool_total(f, NULL), ==, total0 + 4);
        g_assert_cmpint(kill((pid_t) cmd_pid, SIGKILL), ==, 0);
        HP_WAIT_FOR(!reservation_exists(f, "k1"), 10000);
        HP_WAIT_FOR(pool_total(f, NULL) == total0, 10000);
}

static void assert_usage(Fixture *f, const char *expected, const char *const *args) {
        g_autofree char *out = NULL, *err = NULL;

        g_assert_cmpint(hp_ctl_run(test_bus_address(f->bus), NULL, &out, &err, args), ==, 2);
        g_assert_cmpstr(out, ==, "");
        g_assert_nonnull(strstr(err, expected));
}

static void test_run_usage(Fixture *f, gconstpointer data) {
        g_autofree char *help = NULL;

        assert_usage(f, "run: missing '-- COMMAND'", (const char *const[]) { "run", "r", "2M", NULL });
        assert_usage(f, "run: missing '-- COMMAND'", (const char *const[]) { "run", "r", "2M", "--", NULL });
        assert_usage(f, "go with 'reserve' only", (const char *const[]) { "run", "--lifetime=caller", "r", "2M", "--",
                                                                           "true", NULL });
        assert_usage(f, "invalid reservation name", (const char *const[]) { "run", "a/b", "2M", "--", "true", NULL });
        assert_usage(f, "run: missing SIZE", (const char *const[]) { "run", "r", "--", "true", NULL });
        /* Words after "--" are still arguments for other verbs. */
        g_assert_cmpint(hp_ctl_run(test_bus_address(f->bus), NULL, NULL, NULL,
                                   (const char *const[]) { "show", "--", "-x", NULL }), ==, 3);

        g_assert_cmpint(hp_ctl_run(test_bus_address(f->bus), NULL, &help, NULL,
                                   (const char *const[]) { "--help", NULL }), ==, 0);
        g_assert_nonnull(strstr(help, "  run NAME SIZE -- COMMAND [ARGS...]\n"));
        g_assert_nonnull(strstr(help, "  metrics "));

        /* COMMAND's options are COMMAND's. */
        if (!pidfd_or_skip())
                return;
        g_assert_cmpint(hp_ctl_run(test_bus_address(f->bus), NULL, NULL, NULL,
                                   (const char *const[]) { "run", "--page-size=2M", "o", "2M", "--", "sh", "-c",
                                                           "exit 3", "--page-size=1G", NULL }), ==, 3);
}

int main(int argc, char *argv[]) {
        hp_test_init(&argc, &argv);
#define ADD(name, fn) g_test_add("/run/" name, Fixture, &params_default, hp_fixture_setup, fn, hp_fixture_teardown)
        ADD("lifetime", test_run_lifetime);
        ADD("too-big", test_run_too_big);
        ADD("hold", test_run_hold);
        ADD("signals", test_run_signals);
        ADD("killed", test_run_killed);
        ADD("usage", test_run_usage);
        return g_test_run();
}
