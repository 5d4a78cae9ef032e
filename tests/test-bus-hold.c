/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus tests (see test-bus.h), held reservations over the fake kernel, where the daemon's simulated mount
 * operations stand for hugetlbfs (a marker file in the mount's directory): the option and its checks, Held and
 * MountPath, retries, the state file, and the reconciliation of the mounts after a SIGKILL. The real mounts are
 * test-kernel's (/kernel/hold). */
#include "test-bus.h"

#define MARKER ".hugepaged-simulated-hold"

static char *mount_dir(Fixture *f, const char *encoded) {
        return g_build_filename(f->state_dir, "mounts", encoded, NULL);
}

static gboolean mount_dir_exists(Fixture *f, const char *encoded) {
        g_autofree char *d = mount_dir(f, encoded);
        return g_file_test(d, G_FILE_TEST_EXISTS);
}

static gboolean is_held_mount(Fixture *f, const char *encoded) {
        g_autofree char *marker = g_build_filename(f->state_dir, "mounts", encoded, MARKER, NULL);
        return g_file_test(marker, G_FILE_TEST_IS_REGULAR);
}

static void test_hold_option(Fixture *f, gconstpointer data) {
        g_autofree char *path = NULL, *retry = NULL, *held = NULL, *mp = NULL, *expected = NULL, *unheld = NULL;
        g_autofree char *state = NULL, *state_path = NULL, *marker = NULL, *marker_text = NULL, *dots = NULL;
        g_autoptr(GError) e = NULL;

        path = hp_reserve_ok(f->c, "vm1", PS2M, 4 * PS2M, test_opts("{'nodes': <[uint32 0]>, 'hold': <true>}"));
        held = hp_prop_str(f->c, path, RES_IFACE, "Held");
        g_assert_cmpstr(held, ==, "true");
        expected = g_strdup_printf("'%s/mounts/vm1'", f->state_dir);
        mp = hp_prop_str(f->c, path, RES_IFACE, "MountPath");
        g_assert_cmpstr(mp, ==, expected);
        g_assert_true(is_held_mount(f, "vm1"));
        marker = g_build_filename(f->state_dir, "mounts", "vm1", MARKER, NULL);
        g_assert_true(g_file_get_contents(marker, &marker_text, NULL, NULL));
        g_assert_cmpstr(marker_text, ==, "pagesize=2097152,size=8388608,min_size=8388608,uid=0,gid=0,mode=0700\n");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 4);
        state_path = g_build_filename(f->state_dir, "state", NULL);
        g_assert_true(g_file_get_contents(state_path, &state, NULL, NULL));
        g_assert_nonnull(strstr(state, "Held=yes"));

        /* The identical request (hold included) is a retry: the same path, no second grant. */
        retry = hp_reserve_ok(f->c, "vm1", PS2M, 4 * PS2M, test_opts("{'nodes': <[uint32 0]>, 'hold': <true>}"));
        g_assert_cmpstr(retry, ==, path);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 4);
        e = hp_reserve_fails(f->c, "vm1", PS2M, 4 * PS2M, test_opts("{'nodes': <[uint32 0]>}"), E_EXISTS);
        g_clear_error(&e);
        e = hp_reserve_fails(f->c, "vm1", PS2M, 4 * PS2M, test_opts("{'nodes': <[uint32 0]>, 'hold': <false>}"),
                             E_EXISTS);
        g_clear_error(&e);

        /* Bad input: the wrong type, given twice. Nothing changes. */
        e = hp_reserve_fails(f->c, "x", PS2M, PS2M, test_opts("{'hold': <'yes'>}"), E_INVALID);
        g_assert_nonnull(strstr(e->message, "hold"));
        g_clear_error(&e);
        e = hp_reserve_fails(f->c, "x", PS2M, PS2M, test_opts("{'hold': <uint32 1>}"), E_INVALID);
        g_clear_error(&e);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 1);
        hp_ping(f->c);

        /* Unheld: as before, no mount. */
        unheld = hp_reserve_ok(f->c, "plain", PS2M, PS2M, test_opts("{'nodes': <[uint32 1]>, 'hold': <false>}"));
        g_clear_pointer(&held, g_free);
        held = hp_prop_str(f->c, unheld, RES_IFACE, "Held");
        g_assert_cmpstr(held, ==, "false");
        g_clear_pointer(&mp, g_free);
        mp = hp_prop_str(f->c, unheld, RES_IFACE, "MountPath");
        g_assert_cmpstr(mp, ==, "''");
        g_assert_false(mount_dir_exists(f, "plain"));

        /* "..": a valid name, encoded in the path. */
        dots = hp_reserve_ok(f->c, "..", PS2M, PS2M, test_opts("{'nodes': <[uint32 1]>, 'hold': <true>}"));
        g_clear_pointer(&mp, g_free);
        mp = hp_prop_str(f->c, dots, RES_IFACE, "MountPath");
        g_clear_pointer(&expected, g_free);
        expected = g_strdup_printf("'%s/mounts/%%2e%%2e'", f->state_dir);
        g_assert_cmpstr(mp, ==, expected);
        g_assert_true(is_held_mount(f, "%2e%2e"));

        hp_release_ok(f->c, "vm1");
        hp_release_ok(f->c, "..");
        hp_release_ok(f->c, "plain");
        g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
        g_assert_false(mount_dir_exists(f, "vm1"));
        g_assert_false(mount_dir_exists(f, "%2e%2e"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
}

static void test_hold_restart(Fixture *f, gconstpointer data) {
        g_autofree char *path = NULL, *kernel = NULL, *s = NULL, *stray = NULL, *stray_marker = NULL;
        g_autofree char *state = NULL, *lost = NULL, *held = NULL, *mp = NULL;
        g_autoptr(GVariant) props = NULL, props2 = NULL;

        path = hp_reserve_ok(f->c, "vm1", PS2M, 4 * PS2M, test_opts("{'nodes': <[uint32 0]>, 'hold': <true>}"));
        g_free(hp_reserve_ok(f->c, "lost", PS2M, 2 * PS2M, test_opts("{'nodes': <[uint32 1]>, 'hold': <true>}")));
        props = hp_get_all(f->c, path, RES_IFACE);
        kernel = kernel_snapshot(f);

        hp_fixture_daemon_end(f, SIGKILL);
        /* While it was down: a mount no reservation holds (a crash mid-Reserve), and "lost" lost its mount. */
        stray = mount_dir(f, "stray");
        g_assert_cmpint(g_mkdir(stray, 0755), ==, 0);
        stray_marker = g_build_filename(stray, MARKER, NULL);
        g_assert_true(g_file_set_contents(stray_marker, "", -1, NULL));
        lost = g_build_filename(f->state_dir, "mounts", "lost", MARKER, NULL);
        g_assert_cmpint(g_unlink(lost), ==, 0);
        hp_fixture_daemon_start(f);

        props2 = hp_get_all(f->c, path, RES_IFACE);
        g_assert_cmpvariant(props2, props);
        g_assert_true(is_held_mount(f, "vm1"));
        g_assert_false(g_file_test(stray, G_FILE_TEST_EXISTS));
        g_assert_true(g_file_test(lost, G_FILE_TEST_IS_REGULAR));
        g_assert_true(test_daemon_wait_log(f->d, "held again", WAIT_MS));
        s = kernel_snapshot(f);
        g_assert_cmpstr(s, ==, kernel);
        g_assert_cmpuint(hp_prop_u64(f->c, NODE0_PATH, POOL_IFACE, "Reserved"), ==, 4);
        g_assert_cmpuint(hp_prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Reserved"), ==, 2);

        /* "lost" loses its mount again, and this time it cannot be made (a file is in its way): degraded. */
        hp_fixture_daemon_end(f, SIGKILL);
        g_assert_cmpint(g_unlink(lost), ==, 0);
        g_clear_pointer(&lost, g_free);
        lost = mount_dir(f, "lost");
        g_assert_cmpint(g_rmdir(lost), ==, 0);
        g_assert_true(g_file_set_contents(lost, "in the way", -1, NULL));
        hp_fixture_daemon_start(f);
        g_clear_pointer(&s, g_free);
        s = hp_get_reservation(f->c, "lost");
        state = hp_prop_str(f->c, s, RES_IFACE, "State");
        g_assert_cmpstr(state, ==, "'degraded'");
        held = hp_prop_str(f->c, s, RES_IFACE, "Held");
        g_assert_cmpstr(held, ==, "false");
        mp = hp_prop_str(f->c, s, RES_IFACE, "MountPath");
        g_assert_cmpstr(mp, ==, "''");
        g_assert_true(test_daemon_wait_log(f->d, "reservation lost is DEGRADED", WAIT_MS));
        g_assert_cmpuint(hp_prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Reserved"), ==, 2);
        g_assert_cmpint(g_unlink(lost), ==, 0);

        hp_release_ok(f->c, "lost");
        hp_release_ok(f->c, "vm1");
        g_assert_false(mount_dir_exists(f, "vm1"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
}

int main(int argc, char **argv) {
        hp_test_init(&argc, &argv);
        ADD("/bus/hold/option", NULL, test_hold_option);
        ADD("/bus/hold/restart", NULL, test_hold_restart);
        return g_test_run();
}
