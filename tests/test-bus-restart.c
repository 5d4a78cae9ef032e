/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus tests (see test-bus.h), lifetimes and restarts: caller and pid lifetimes, SIGKILL and SIGTERM, owners
 * gone while the daemon was down, a request cut short, readiness and watchdog, bad configuration and corrupt
 * state. */
#include "test-bus.h"

/* ---- 8. lifetimes ---- */

static void test_lifetime_caller(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) c2 = test_bus_connect(f->bus);
        g_autofree char *path = NULL, *retry = NULL, *lifetime = NULL, *keep = NULL;
        g_autoptr(GError) e = NULL;

        keep = hp_reserve_ok(f->c, "keep", 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"));
        path = hp_reserve_ok(c2, "mine", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 1]>, 'lifetime': <'caller'>}"));
        lifetime = hp_prop_str(f->c, path, RES_IFACE, "Lifetime");
        g_assert_cmpstr(lifetime, ==, "'caller'");
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 4);
        /* The same request from the same connection is a retry; from another it is someone else's. */
        retry = hp_reserve_ok(c2, "mine", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 1]>, 'lifetime': <'caller'>}"));
        g_assert_cmpstr(retry, ==, path);
        e = hp_reserve_fails(f->c, "mine", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 1]>, 'lifetime': <'caller'>}"),
                          E_EXISTS);
        g_clear_error(&e);

        g_assert_true(g_dbus_connection_close_sync(c2, NULL, &e));
        g_assert_no_error(e);
        HP_WAIT_FOR(hp_n_reservations(f->c) == 1, WAIT_MS);
        HP_WAIT_FOR(nr(f, 1, KB2M) == 1, WAIT_MS);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "GetReservation", g_variant_new("(s)", "mine"),
                       E_NO_RES);
        g_clear_error(&e);
        g_assert_cmpuint(hp_prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Reserved"), ==, 1);
        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, PS2M);
}

static void test_lifetime_pid(Fixture *f, gconstpointer data) {
        g_autofree char *path = NULL, *lifetime = NULL, *o = NULL;
        g_autoptr(GVariant) pidv = NULL;
        GPid child;

        if (!test_pidfd_supported()) {
                test_skip("pidfd_open() is not available here (valgrind 3.19 does not emulate it)");
                return;
        }
        child = hp_spawn_sleep();

        o = g_strdup_printf("{'nodes': <[uint32 0]>, 'lifetime': <'pid'>, 'pid': <uint32 %d>}", (int) child);
        path = hp_reserve_ok(f->c, "bypid", 0, 2 * PS2M, test_opts(o));
        lifetime = hp_prop_str(f->c, path, RES_IFACE, "Lifetime");
        g_assert_cmpstr(lifetime, ==, "'pid'");
        pidv = test_get_property(f->c, path, RES_IFACE, "PID");
        g_assert_cmpuint(g_variant_get_uint32(pidv), ==, (guint32) child);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);

        hp_kill_and_reap(child);
        HP_WAIT_FOR(hp_n_reservations(f->c) == 0, WAIT_MS);
        HP_WAIT_FOR(nr(f, 0, KB2M) == 0, WAIT_MS);
        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 0);
        hp_ping(f->c);
}

/* ---- 9. restarts ---- */

static const char *const pre_floor_node0[] = { "set_nr 0 2048 20", NULL };
static const HpTestParams params_floor_node0 = { .fk_control = pre_floor_node0 };

static void test_restart_sigkill(Fixture *f, gconstpointer data) {
        g_autofree char *pa = NULL, *pb = NULL, *list = NULL, *pools = NULL, *kernel = NULL, *s = NULL;
        g_autoptr(GVariant) props_a = NULL, props_b = NULL, props_a2 = NULL, props_b2 = NULL;
        g_autofree char *pa2 = NULL, *pb2 = NULL, *long_tail = g_strnfill(112, '.'), *odd_name = NULL;
        g_autofree char *podd = NULL, *podd2 = NULL;

        pa = hp_reserve_ok(f->c, "a", 0, 10 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>}"));
        pb = hp_reserve_ok(f->c, "b", 0, 0, test_opts("{'node_bytes': <[(uint32 1, uint64 4194304)]>}"));
        /* The longest name, with every punctuation character allowed, through the state file and back. */
        odd_name = g_strconcat(":1.42@host+x_y-z", long_tail, NULL);
        g_assert_cmpuint(strlen(odd_name), ==, 128);
        podd = hp_reserve_ok(f->c, odd_name, 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 25);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 3);
        props_a = hp_get_all(f->c, pa, RES_IFACE);
        props_b = hp_get_all(f->c, pb, RES_IFACE);
        list = hp_reservations_str(f->c);
        pools = hp_pools_str(f->c);
        s = expected_pools_2m(25, 5, 20, 3, 3, 0);
        g_assert_cmpstr(pools, ==, s);
        kernel = kernel_snapshot(f);

        hp_fixture_daemon_end(f, SIGKILL);
        g_clear_pointer(&s, g_free);
        s = kernel_snapshot(f);
        g_assert_cmpstr(s, ==, kernel);
        hp_fixture_daemon_start(f);

        pa2 = hp_get_reservation(f->c, "a");
        pb2 = hp_get_reservation(f->c, "b");
        g_assert_cmpstr(pa2, ==, pa);
        g_assert_cmpstr(pb2, ==, pb);
        props_a2 = hp_get_all(f->c, pa, RES_IFACE);
        props_b2 = hp_get_all(f->c, pb, RES_IFACE);
        g_assert_cmpvariant(props_a2, props_a);
        g_assert_cmpvariant(props_b2, props_b);
        g_clear_pointer(&s, g_free);
        s = hp_reservations_str(f->c);
        g_assert_cmpstr(s, ==, list);
        g_clear_pointer(&s, g_free);
        s = hp_pools_str(f->c);
        g_assert_cmpstr(s, ==, pools);
        g_clear_pointer(&s, g_free);
        s = kernel_snapshot(f);
        g_assert_cmpstr(s, ==, kernel);
        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 8 * PS2M);
        podd2 = hp_get_reservation(f->c, odd_name);
        g_assert_cmpstr(podd2, ==, podd);
        hp_release_ok(f->c, odd_name);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 2);

        /* The identical request after the restart is still a retry. */
        g_clear_pointer(&pa2, g_free);
        pa2 = hp_reserve_ok(f->c, "a", 0, 10 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpstr(pa2, ==, pa);

        hp_release_ok(f->c, "a");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 20);
        g_assert_cmpuint(pool_floor(f->c, 0), ==, 20);
        hp_release_ok(f->c, "b");
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 0);
}

static void test_sigterm_keeps_pools(Fixture *f, gconstpointer data) {
        g_autofree char *p = NULL, *g = NULL, *kernel = NULL, *s = NULL, *pools = NULL;

        p = hp_reserve_ok(f->c, "a", 0, 6 * PS2M, test_opts("{'nodes': <[uint32 1]>}"));
        g = hp_reserve_ok(f->c, "g", PS1G, PS1G, test_opts("{'nodes': <[uint32 0]>}"));
        kernel = kernel_snapshot(f);
        pools = hp_pools_str(f->c);
        hp_fixture_daemon_end(f, SIGTERM);
        s = kernel_snapshot(f);
        g_assert_cmpstr(s, ==, kernel);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 6);
        g_assert_cmpuint(nr(f, 0, KB1G), ==, 1);

        hp_fixture_daemon_start(f);
        g_clear_pointer(&s, g_free);
        s = hp_pools_str(f->c);
        g_assert_cmpstr(s, ==, pools);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 2);
}

static void test_restart_releases_gone_owners(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) c2 = test_bus_connect(f->bus);
        g_autofree char *pc = NULL, *pp = NULL, *pk = NULL, *o = NULL, *s = NULL;
        g_autoptr(GError) e = NULL;
        GPid child;

        if (!test_pidfd_supported()) {
                test_skip("pidfd_open() is not available here (valgrind 3.19 does not emulate it)");
                return;
        }
        child = hp_spawn_sleep();

        pk = hp_reserve_ok(f->c, "keep", 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"));
        pc = hp_reserve_ok(c2, "caller", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 1]>, 'lifetime': <'caller'>}"));
        o = g_strdup_printf("{'nodes': <[uint32 1]>, 'lifetime': <'pid'>, 'pid': <uint32 %d>}", (int) child);
        pp = hp_reserve_ok(f->c, "pid", 0, 2 * PS2M, test_opts(o));
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 6);

        hp_fixture_daemon_end(f, SIGKILL);
        g_assert_true(g_dbus_connection_close_sync(c2, NULL, &e));
        g_assert_no_error(e);
        hp_kill_and_reap(child);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 6);

        hp_fixture_daemon_start(f);
        s = hp_reservations_str(f->c);
        g_assert_cmpstr(s, ==, "keep:2097152:1:0:explicit:" RES_PREFIX "keep");
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 1);
        g_assert_cmpuint(hp_prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Reserved"), ==, 1);
        g_assert_cmpuint(pool_floor(f->c, 1), ==, 0);
}

/* A caller reservation survives a restart while its caller stays connected, and still ends with it. */
static void test_restart_keeps_live_caller(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) c2 = test_bus_connect(f->bus);
        g_autofree char *pc = NULL;
        g_autoptr(GError) e = NULL;

        pc = hp_reserve_ok(c2, "caller", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 0]>, 'lifetime': <'caller'>}"));
        hp_fixture_daemon_end(f, SIGKILL);
        hp_fixture_daemon_start(f);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 1);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 3);
        g_assert_true(g_dbus_connection_close_sync(c2, NULL, &e));
        g_assert_no_error(e);
        HP_WAIT_FOR(hp_n_reservations(f->c) == 0, WAIT_MS);
        HP_WAIT_FOR(nr(f, 0, KB2M) == 0, WAIT_MS);
}

static void on_killed_call_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, NULL);

        *(gboolean *) user_data = TRUE;
}

/* Sends method with params, slowed down by the fake kernel, and SIGKILLs the daemon within the first of the two
 * nr_hugepages writes (while it holds node 0's file open); waits for the call to end. */
static void call_and_kill_mid_write(Fixture *f, const char *method, GVariant *params, const GVariantType *reply) {
        gboolean done = FALSE;

        fake_kernel_control(f->fk, "delay_ms 1500");
        g_dbus_connection_call(f->c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, method, params, reply,
                               G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS, NULL, on_killed_call_done, &done);
        g_assert_true(test_daemon_wait_open_for_write(f->d, "node0/hugepages/hugepages-2048kB/nr_hugepages", 20000));
        hp_fixture_daemon_end(f, SIGKILL);
        fake_kernel_control(f->fk, "delay_ms 0");
        HP_WAIT_FOR(done, WAIT_MS);
        g_test_message("after the kill: node0 %" G_GUINT64_FORMAT " node1 %" G_GUINT64_FORMAT, nr(f, 0, KB2M),
                       nr(f, 1, KB2M));
}

/* SIGKILL while the kernel is slowly carrying out a request: the restart finishes or undoes the daemon's own
 * half-done work, and takes none of it for someone else's Floor. */
static void test_restart_mid_request(Fixture *f, gconstpointer data) {
        g_autofree char *s = NULL, *want = NULL, *p = NULL;

        /* Reserve: killed between growing node 0 and node 1; never acknowledged, so nothing stays. */
        call_and_kill_mid_write(f, "Reserve",
                                g_variant_new("(stt@a{sv})", "slow", (guint64) 0, (guint64) 0,
                                              test_opts("{'node_bytes': <[(uint32 0, uint64 20971520), "
                                                        "(1, 20971520)]>}")),
                                G_VARIANT_TYPE("(o)"));
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
        hp_fixture_daemon_start(f);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 0);
        s = hp_pools_str(f->c);
        want = expected_pools_2m(0, 0, 0, 0, 0, 0);
        g_assert_cmpstr(s, ==, want);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);

        /* Release: decided on disk before the pools shrink, so the restart finishes the shrinking. */
        p = hp_reserve_ok(f->c, "slow", 0, 0, test_opts("{'node_bytes': <[(uint32 0, uint64 20971520), (1, 20971520)]>}"));
        call_and_kill_mid_write(f, "Release", g_variant_new("(s)", "slow"), G_VARIANT_TYPE("()"));
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 10);
        hp_fixture_daemon_start(f);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 0);
        g_clear_pointer(&s, g_free);
        s = hp_pools_str(f->c);
        g_assert_cmpstr(s, ==, want);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
}


/* ---- 12. readiness and watchdog ---- */

static const HpTestParams params_no_daemon = { .no_daemon = TRUE };

static void test_ready_watchdog(Fixture *f, gconstpointer data) {
        const char *const env[] = { "WATCHDOG_USEC=200000", NULL };

        hp_fixture_daemon_start(f);
        g_assert_true(test_daemon_got_ready(f->d));
        /* No watchdog was asked for, so none is sent. */
        g_assert_false(test_daemon_wait_notify(f->d, "WATCHDOG=1", 300));
        hp_fixture_daemon_end(f, SIGTERM);

        f->d = test_daemon_start_full(f->bus, fake_kernel_root(f->fk), f->state_dir, f->config, NULL, env, TRUE);
        g_assert_true(test_daemon_got_ready(f->d));
        g_assert_true(test_daemon_wait_notify(f->d, "WATCHDOG=1", 3000));
        g_assert_true(test_daemon_wait_notify(f->d, "WATCHDOG=1", 3000));
        hp_ping(f->c);
}


/* ---- 13. bad configuration and state ---- */

static void test_bad_config(Fixture *f, gconstpointer data) {
        g_autofree char *log = NULL;

        g_assert_true(g_file_set_contents(f->config, "[Pool 2M]\nMaxPages=lots\n", -1, NULL));
        f->d = test_daemon_start_full(f->bus, fake_kernel_root(f->fk), f->state_dir, f->config, NULL, NULL, FALSE);
        g_assert_cmpint(test_daemon_wait_exit(f->d, 10000), ==, 1);
        log = test_daemon_log(f->d);
        g_assert_nonnull(strstr(log, "hugepaged.conf:2:"));
        g_assert_nonnull(strstr(log, "MaxPages=lots"));
        g_assert_false(test_daemon_got_ready(f->d));
        g_assert_cmpuint(nr(f, 0, KB2M) + nr(f, 1, KB2M), ==, 0);
}

static guint count_corrupt(const char *dir) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *n;
        guint k = 0;

        g_assert_nonnull(d);
        while ((n = g_dir_read_name(d)))
                k += g_str_has_prefix(n, "state.corrupt-");
        return k;
}

static void test_corrupt_state(Fixture *f, gconstpointer data) {
        g_autofree char *state_path = g_build_filename(f->state_dir, "state", NULL);
        g_autofree char *p = NULL, *good = NULL, *bad = NULL, *s = NULL, *props = NULL, *props2 = NULL;
        g_autoptr(GVariant) v = NULL, v2 = NULL;

        p = hp_reserve_ok(f->c, "good", 0, 0, test_opts("{'node_bytes': <[(uint32 1, uint64 6291456)]>}"));
        v = hp_get_all(f->c, p, RES_IFACE);
        hp_fixture_daemon_end(f, SIGTERM);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 3);

        g_assert_true(g_file_get_contents(state_path, &good, NULL, NULL));
        bad = g_strconcat("\x01\x02 this is not a state file\n\xff\xfe garbage\n", good,
                          "\n[Reservation evil]\nPageSize=2097152\nPages=lots\nNode=1 100\n"
                          "\n[Reservation half]\nPageSize=2097152\nPages=4\nLifetime=explicit\nOwnerUID=0\n"
                          "Node=0 3\n\n[Nonsense]\nx=y\n",
                          NULL);
        g_assert_true(g_file_set_contents(state_path, bad, -1, NULL));
        g_assert_cmpuint(count_corrupt(f->state_dir), ==, 0);

        hp_fixture_daemon_start(f);
        s = hp_reservations_str(f->c);
        g_assert_cmpstr(s, ==, "good:2097152:3:0:explicit:" RES_PREFIX "good");
        v2 = hp_get_all(f->c, p, RES_IFACE);
        g_assert_cmpvariant(v2, v);
        g_assert_cmpuint(count_corrupt(f->state_dir), ==, 1);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 3);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(hp_prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Reserved"), ==, 3);
        g_assert_cmpuint(pool_floor(f->c, 1), ==, 0);

        /* The file it wrote back is clean: another restart keeps it and sets nothing aside. */
        hp_fixture_daemon_end(f, SIGTERM);
        hp_fixture_daemon_start(f);
        g_clear_pointer(&s, g_free);
        s = hp_reservations_str(f->c);
        g_assert_cmpstr(s, ==, "good:2097152:3:0:explicit:" RES_PREFIX "good");
        g_assert_cmpuint(count_corrupt(f->state_dir), ==, 1);
        hp_release_ok(f->c, "good");
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
}

int main(int argc, char *argv[]) {
        hp_test_init(&argc, &argv);

        ADD("/bus/lifetime/caller", NULL, test_lifetime_caller);
        ADD("/bus/lifetime/pid", NULL, test_lifetime_pid);
        ADD("/bus/restart/sigkill", &params_floor_node0, test_restart_sigkill);
        ADD("/bus/restart/sigterm", NULL, test_sigterm_keeps_pools);
        ADD("/bus/restart/gone-owners", NULL, test_restart_releases_gone_owners);
        ADD("/bus/restart/live-caller", NULL, test_restart_keeps_live_caller);
        ADD("/bus/restart/mid-request", NULL, test_restart_mid_request);
        ADD("/bus/ready-watchdog", &params_no_daemon, test_ready_watchdog);
        ADD("/bus/bad-config", &params_no_daemon, test_bad_config);
        ADD("/bus/corrupt-state", NULL, test_corrupt_state);
        return g_test_run();
}
