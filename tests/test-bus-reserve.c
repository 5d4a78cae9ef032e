/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus tests (see test-bus.h), Reserve and Release: placement, options, every error reply, the limits and
 * invalid arguments. */
#include "test-bus.h"

/* ---- 3. reserve and release ---- */

/* GetManagedObjects lists the six pools and the one reservation, each with its interface. */
static void managed_objects_check(GDBusConnection *c, const char *res) {
        static const char *const pools[] = {
                HP_BUS_POOL_PREFIX "/2048kB", NODE0_PATH, NODE1_PATH, HP_BUS_POOL_PREFIX "/1048576kB",
                HP_BUS_POOL_PREFIX "/1048576kB/node0", HP_BUS_POOL_PREFIX "/1048576kB/node1",
        };
        g_autoptr(GVariant) reply = hp_call_ok(c, MANAGER_PATH, OM_IFACE, "GetManagedObjects", NULL,
                                            "(a{oa{sa{sv}}})");
        g_autoptr(GVariant) objects = g_variant_get_child_value(reply, 0);
        g_autoptr(GVariant) ifaces = NULL, props = NULL, v = NULL;

        for (gsize i = 0; i < G_N_ELEMENTS(pools); i++) {
                g_autoptr(GVariant) pi = g_variant_lookup_value(objects, pools[i], G_VARIANT_TYPE("a{sa{sv}}"));
                g_autoptr(GVariant) pp = NULL;

                g_test_message("managed object %s", pools[i]);
                g_assert_nonnull(pi);
                pp = g_variant_lookup_value(pi, POOL_IFACE, G_VARIANT_TYPE("a{sv}"));
                g_assert_nonnull(pp);
        }
        ifaces = g_variant_lookup_value(objects, res, G_VARIANT_TYPE("a{sa{sv}}"));
        g_assert_nonnull(ifaces);
        props = g_variant_lookup_value(ifaces, RES_IFACE, G_VARIANT_TYPE("a{sv}"));
        g_assert_nonnull(props);
        v = g_variant_lookup_value(props, "Pages", G_VARIANT_TYPE_UINT64);
        g_assert_nonnull(v);
        g_assert_cmpuint(g_variant_get_uint64(v), ==, 512);
        g_assert_cmpuint(g_variant_n_children(objects), ==, G_N_ELEMENTS(pools) + 1);
}

static const char *const pre_floor_node1[] = { "set_nr 1 2048 10", NULL };
static const HpTestParams params_floor_node1 = { .fk_control = pre_floor_node1 };

static void test_reserve_release(Fixture *f, gconstpointer data) {
        g_autofree char *path = NULL, *got = NULL, *np = NULL, *want_np = NULL, *pools = NULL, *want_pools = NULL;
        g_autofree char *list = NULL, *lifetime = NULL, *name = NULL, *path2 = NULL, *idle = NULL;
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = NULL;
        guint64 n0, n1, d0, d1, created;
        gint64 t0, t1;

        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 10);
        idle = hp_pools_str(f->c);
        want_pools = expected_pools_2m(0, 0, 0, 10, 0, 10);
        g_assert_cmpstr(idle, ==, want_pools);
        g_clear_pointer(&want_pools, g_free);

        t0 = g_get_real_time();
        path = hp_reserve_ok(f->c, "vm1", 0, PS1G, NULL);
        t1 = g_get_real_time();
        g_assert_cmpstr(path, ==, RES_PREFIX "vm1");

        n0 = nr(f, 0, KB2M);
        n1 = nr(f, 1, KB2M);
        g_assert_cmpuint(n0 + n1, ==, 10 + 512);
        d0 = n0;
        d1 = n1 - 10;
        g_assert_cmpuint(nr(f, 0, KB1G) + nr(f, 1, KB1G), ==, 0);

        /* The Floor on node 1 is not spare: the pages come on top of it, and NodePages says where. */
        if (d0 && d1)
                want_np = g_strdup_printf("[(0, %" G_GUINT64_FORMAT "), (1, %" G_GUINT64_FORMAT ")]", d0, d1);
        else
                want_np = g_strdup_printf("[(%d, 512)]", d0 ? 0 : 1);
        np = hp_prop_str(f->c, path, RES_IFACE, "NodePages");
        g_assert_cmpstr(np, ==, want_np);

        name = hp_prop_str(f->c, path, RES_IFACE, "Name");
        g_assert_cmpstr(name, ==, "'vm1'");
        g_assert_cmpuint(hp_prop_u64(f->c, path, RES_IFACE, "PageSize"), ==, PS2M);
        g_assert_cmpuint(hp_prop_u64(f->c, path, RES_IFACE, "Pages"), ==, 512);
        r = test_get_property(f->c, path, RES_IFACE, "OwnerUID");
        g_assert_cmpuint(g_variant_get_uint32(r), ==, 0);
        g_clear_pointer(&r, g_variant_unref);
        r = test_get_property(f->c, path, RES_IFACE, "PID");
        g_assert_cmpuint(g_variant_get_uint32(r), ==, 0);
        g_clear_pointer(&r, g_variant_unref);
        lifetime = hp_prop_str(f->c, path, RES_IFACE, "Lifetime");
        g_assert_cmpstr(lifetime, ==, "'explicit'");
        created = hp_prop_u64(f->c, path, RES_IFACE, "CreatedUSec");
        g_assert_cmpuint(created, >=, (guint64) t0);
        g_assert_cmpuint(created, <=, (guint64) t1);

        list = hp_reservations_str(f->c);
        g_assert_cmpstr(list, ==, "vm1:2097152:512:0:explicit:" RES_PREFIX "vm1");
        managed_objects_check(f->c, path);
        pools = hp_pools_str(f->c);
        want_pools = expected_pools_2m(n0, d0, 0, n1, d1, 10);
        g_assert_cmpstr(pools, ==, want_pools);
        g_assert_cmpuint(hp_prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Floor"), ==, 10);
        g_assert_cmpuint(hp_prop_u64(f->c, HP_BUS_POOL_PREFIX "/2048kB", POOL_IFACE, "Reserved"), ==, 512);
        g_assert_cmpuint(hp_prop_u64(f->c, HP_BUS_POOL_PREFIX "/2048kB", POOL_IFACE, "Total"), ==, 522);

        got = hp_get_reservation(f->c, "vm1");
        g_assert_cmpstr(got, ==, path);

        hp_release_ok(f->c, "vm1");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 10);
        g_clear_pointer(&pools, g_free);
        pools = hp_pools_str(f->c);
        g_assert_cmpstr(pools, ==, idle);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 0);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "GetReservation", g_variant_new("(s)", "vm1"), E_NO_RES);
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", "vm1"), E_NO_RES);
        g_clear_error(&e);

        /* The reservation object's own Release(). */
        path2 = hp_reserve_ok(f->c, "vm.2:x@y+z_w-v", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_clear_pointer(&got, g_free);
        got = hp_res_path("vm.2:x@y+z_w-v");
        g_assert_cmpstr(path2, ==, got);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 3);
        g_clear_pointer(&r, g_variant_unref);
        r = hp_call_ok(f->c, path2, RES_IFACE, "Release", NULL, "()");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 10);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 0);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "GetReservation", g_variant_new("(s)", "vm.2:x@y+z_w-v"),
                       E_NO_RES);
        g_clear_error(&e);
        /* Its object is gone with it. */
        e = hp_call_fails(f->c, path2, RES_IFACE, "Release", NULL, "org.freedesktop.DBus.Error.UnknownObject");
}

/* ---- 4. options ---- */

static void test_options(Fixture *f, gconstpointer data) {
        g_autofree char *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL, *p5 = NULL, *retry = NULL, *s = NULL;
        g_autofree char *before = NULL, *after = NULL;
        g_autoptr(GError) e = NULL;

        /* nodes [1]: node 1 only. */
        p1 = hp_reserve_ok(f->c, "n1", 0, 10 * 1024 * 1024, test_opts("{'nodes': <[uint32 1]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 5);
        s = hp_prop_str(f->c, p1, RES_IFACE, "NodePages");
        g_assert_cmpstr(s, ==, "[(1, 5)]");
        g_clear_pointer(&s, g_free);

        /* node_bytes with bytes 0. */
        p2 = hp_reserve_ok(f->c, "nb", 0, 0, test_opts("{'node_bytes': <[(uint32 0, uint64 4194304), (1, 6291456)]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 8);
        s = hp_prop_str(f->c, p2, RES_IFACE, "NodePages");
        g_assert_cmpstr(s, ==, "[(0, 2), (1, 3)]");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(hp_prop_u64(f->c, p2, RES_IFACE, "Pages"), ==, 5);
        retry = hp_reserve_ok(f->c, "nb", 0, 0, test_opts("{'node_bytes': <[(uint32 0, uint64 4194304), (1, 6291456)]>}"));
        g_assert_cmpstr(retry, ==, p2);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 8);

        /* bytes equal to the sum. */
        p3 = hp_reserve_ok(f->c, "nbsum", 0, 10 * 1024 * 1024,
                        test_opts("{'node_bytes': <[(uint32 0, uint64 4194304), (1, 6291456)]>}"));
        s = hp_prop_str(f->c, p3, RES_IFACE, "NodePages");
        g_assert_cmpstr(s, ==, "[(0, 2), (1, 3)]");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 4);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 11);

        /* bytes neither 0 nor the sum. */
        before = kernel_snapshot(f);
        e = hp_reserve_fails(f->c, "nbbad", 0, 12 * 1024 * 1024,
                          test_opts("{'node_bytes': <[(uint32 0, uint64 4194304), (1, 6291456)]>}"), E_INVALID);
        g_clear_error(&e);
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 3);

        /* Rounding up to whole pages within node_bytes. */
        p4 = hp_reserve_ok(f->c, "round", 0, 0, test_opts("{'node_bytes': <[(uint32 1, uint64 2097153)]>}"));
        s = hp_prop_str(f->c, p4, RES_IFACE, "NodePages");
        g_assert_cmpstr(s, ==, "[(1, 2)]");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 13);

        /* 1 GiB pages. */
        p5 = hp_reserve_ok(f->c, "giant", PS1G, 2 * PS1G, test_opts("{'nodes': <[uint32 1]>}"));
        g_assert_cmpuint(hp_prop_u64(f->c, p5, RES_IFACE, "PageSize"), ==, PS1G);
        g_assert_cmpuint(hp_prop_u64(f->c, p5, RES_IFACE, "Pages"), ==, 2);
        s = hp_prop_str(f->c, p5, RES_IFACE, "NodePages");
        g_assert_cmpstr(s, ==, "[(1, 2)]");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(nr(f, 0, KB1G), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB1G), ==, 2);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 4);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 13);
        g_assert_cmpuint(hp_prop_u64(f->c, HP_BUS_POOL_PREFIX "/1048576kB/node1", POOL_IFACE, "Reserved"),
                         ==, 2);
        hp_release_ok(f->c, "giant");
        /* 1 GiB pages stay as spare pages by default. */
        g_assert_cmpuint(nr(f, 1, KB1G), ==, 2);
        g_assert_cmpuint(hp_prop_u64(f->c, HP_BUS_POOL_PREFIX "/1048576kB/node1", POOL_IFACE, "Reserved"),
                         ==, 0);

        /* Releasing node_bytes reservations gives back exactly their pages per node. */
        hp_release_ok(f->c, "nb");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 10);
}

/* ---- 5. errors ---- */

static void test_errors(Fixture *f, gconstpointer data) {
        g_autofree char *px = NULL, *retry = NULL, *before = NULL, *after = NULL, *pools_before = NULL;
        g_autofree char *pools_after = NULL, *w_before = NULL, *w_after = NULL;
        g_autoptr(GError) e = NULL;

        e = hp_reserve_fails(f->c, "a", 4096, PS2M, NULL, E_UNSUPPORTED);
        g_clear_error(&e);
        e = hp_reserve_fails(f->c, "a", 3 * PS2M, PS2M * 3, NULL, E_UNSUPPORTED);
        g_clear_error(&e);
        e = hp_reserve_fails(f->c, "a", 0, PS2M, test_opts("{'nodes': <[uint32 7]>}"), E_NO_NODE);
        g_clear_error(&e);
        e = hp_reserve_fails(f->c, "a", 0, 0, test_opts("{'node_bytes': <[(uint32 0, uint64 2097152), (7, 2097152)]>}"),
                          E_NO_NODE);
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", "nope"), E_NO_RES);
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "GetReservation", g_variant_new("(s)", "nope"),
                       E_NO_RES);
        g_clear_error(&e);
        g_assert_cmpuint(nr(f, 0, KB2M) + nr(f, 1, KB2M), ==, 0);

        /* Same name, other parameters. */
        px = hp_reserve_ok(f->c, "x", 0, 4 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);
        e = hp_reserve_fails(f->c, "x", 0, 6 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>}"), E_EXISTS);
        g_clear_error(&e);
        e = hp_reserve_fails(f->c, "x", 0, 4 * 1024 * 1024, test_opts("{'nodes': <[uint32 1]>}"), E_EXISTS);
        g_clear_error(&e);
        e = hp_reserve_fails(f->c, "x", 0, 4 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>, 'lifetime': <'caller'>}"),
                          E_EXISTS);
        g_clear_error(&e);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);

        /* Idempotent retry: the same path, and the pools not even written to. */
        before = kernel_snapshot(f);
        pools_before = hp_pools_str(f->c);
        w_before = writes_str(f);
        retry = hp_reserve_ok(f->c, "x", 0, 4 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpstr(retry, ==, px);
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);
        pools_after = hp_pools_str(f->c);
        g_assert_cmpstr(pools_after, ==, pools_before);
        w_after = writes_str(f);
        g_assert_cmpstr(w_after, ==, w_before);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 1);

        /* More than node 1 can hold: the error names the node and the counts, and every pool is put back. */
        g_clear_pointer(&pools_before, g_free);
        pools_before = hp_pools_str(f->c);
        e = hp_reserve_fails(f->c, "toomuch", 0, 0,
                          test_opts("{'node_bytes': <[(uint32 0, uint64 8388608), (1, 10485760000)]>}"),
                          E_INSUFFICIENT);
        g_test_message("InsufficientPages: %s", e->message);
        g_assert_nonnull(strstr(e->message, "node 1"));
        g_assert_nonnull(strstr(e->message, "5000"));
        g_assert_nonnull(strstr(e->message, "4096 of 5000"));
        g_clear_error(&e);
        g_clear_pointer(&after, g_free);
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);
        g_clear_pointer(&pools_after, g_free);
        pools_after = hp_pools_str(f->c);
        g_assert_cmpstr(pools_after, ==, pools_before);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 1);

        /* Short on any node: same promise. */
        e = hp_reserve_fails(f->c, "toomuch", 0, 9000 * PS2M, NULL, E_INSUFFICIENT);
        g_test_message("InsufficientPages: %s", e->message);
        g_assert_nonnull(strstr(e->message, "9000"));
        g_clear_error(&e);
        g_clear_pointer(&after, g_free);
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);

        /* More than the machine's memory: refused before anything is touched. */
        g_clear_pointer(&w_before, g_free);
        w_before = writes_str(f);
        e = hp_reserve_fails(f->c, "toomuch", 0, G_GUINT64_CONSTANT(1) << 60, NULL, E_INSUFFICIENT);
        g_clear_error(&e);
        g_clear_pointer(&w_after, g_free);
        w_after = writes_str(f);
        g_assert_cmpstr(w_after, ==, w_before);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 1);
}

static const HpTestParams params_limits = { .config = "[Daemon]\nMaxReservations=2\n\n[Pool 2M]\nMaxPages=10\n" };

static void test_limits(Fixture *f, gconstpointer data) {
        g_autofree char *p1 = NULL, *p2 = NULL, *p3 = NULL, *before = NULL, *after = NULL;
        g_autoptr(GError) e = NULL;

        before = kernel_snapshot(f);
        e = hp_reserve_fails(f->c, "big", 0, 11 * PS2M, test_opts("{'nodes': <[uint32 0]>}"), E_LIMIT);
        g_assert_nonnull(strstr(e->message, "MaxPages"));
        g_clear_error(&e);
        e = hp_reserve_fails(f->c, "big", 0, 0, test_opts("{'node_bytes': <[(uint32 1, uint64 23068672)]>}"), E_LIMIT);
        g_assert_nonnull(strstr(e->message, "MaxPages"));
        g_clear_error(&e);
        e = hp_reserve_fails(f->c, "big", 0, 21 * PS2M, NULL, E_LIMIT);
        g_clear_error(&e);
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);

        /* Up to MaxPages on one node is fine; 1 GiB pages have no limit configured. */
        p1 = hp_reserve_ok(f->c, "r1", 0, 10 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 10);
        e = hp_reserve_fails(f->c, "r2", 0, PS2M, test_opts("{'nodes': <[uint32 0]>}"), E_LIMIT);
        g_clear_error(&e);
        p2 = hp_reserve_ok(f->c, "r2", PS1G, PS1G, NULL);

        /* MaxReservations=2. */
        e = hp_reserve_fails(f->c, "r3", 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"), E_LIMIT);
        g_assert_nonnull(strstr(e->message, "MaxReservations"));
        g_clear_error(&e);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 2);
        /* A retry of an existing one is not a new one. */
        p3 = hp_reserve_ok(f->c, "r1", 0, 10 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpstr(p3, ==, p1);
        hp_release_ok(f->c, "r2");
        g_clear_pointer(&p3, g_free);
        p3 = hp_reserve_ok(f->c, "r3", 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"));
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 1);
}

typedef struct BadCase {
        const char *what;
        const char *name;
        guint64 bytes;
        const char *options;
} BadCase;

static void test_invalid_args(Fixture *f, gconstpointer data) {
        g_autofree char *long_name = g_strnfill(129, 'a'), *max_name = g_strnfill(128, 'b');
        g_autofree char *before = kernel_snapshot(f), *after = NULL, *p = NULL, *pool_before = NULL, *pools = NULL;
        g_autofree char *pid_opts = NULL;
        const BadCase cases[] = {
                { "empty name", "", PS2M, NULL },
                { "129 characters", long_name, PS2M, NULL },
                { "slash", "a/b", PS2M, NULL },
                { "non-ASCII", "\xc3\xa9", PS2M, NULL },
                { "space", "a b", PS2M, NULL },
                { "bytes 0", "a", 0, NULL },
                { "unknown option", "a", PS2M, "{'colour': <'blue'>}" },
                { "nodes as s", "a", PS2M, "{'nodes': <'1'>}" },
                { "nodes as ai", "a", PS2M, "{'nodes': <[int32 1]>}" },
                { "node_bytes as a(uu)", "a", 0, "{'node_bytes': <[(uint32 0, uint32 5)]>}" },
                { "lifetime as u", "a", PS2M, "{'lifetime': <uint32 1>}" },
                { "lifetime forever", "a", PS2M, "{'lifetime': <'forever'>}" },
                { "lifetime pid without pid", "a", PS2M, "{'lifetime': <'pid'>}" },
                { "pid with lifetime explicit", "a", PS2M, "{'lifetime': <'explicit'>, 'pid': <uint32 1>}" },
                { "pid without lifetime", "a", PS2M, "{'pid': <uint32 1>}" },
                { "pid 0", "a", PS2M, "{'lifetime': <'pid'>, 'pid': <uint32 0>}" },
                { "pid of no process", "a", PS2M, "{'lifetime': <'pid'>, 'pid': <uint32 2147483646>}" },
                { "node_bytes duplicate node", "a", 0,
                  "{'node_bytes': <[(uint32 0, uint64 2097152), (0, 2097152)]>}" },
                { "node_bytes with 0 bytes", "a", 0, "{'node_bytes': <[(uint32 0, uint64 0)]>}" },
                { "node_bytes empty", "a", 0, "{'node_bytes': <@a(ut) []>}" },
                { "nodes empty", "a", PS2M, "{'nodes': <@au []>}" },
                { "nodes duplicate", "a", PS2M, "{'nodes': <[uint32 1, 1]>}" },
                { "nodes and node_bytes", "a", 0,
                  "{'nodes': <[uint32 0]>, 'node_bytes': <[(uint32 0, uint64 2097152)]>}" },
                { "option twice", "a", PS2M, "{'nodes': <[uint32 0]>, 'nodes': <[uint32 1]>}" },
        };
        g_autoptr(GVariantBuilder) nb = g_variant_builder_new(G_VARIANT_TYPE("a(ut)"));
        g_autoptr(GVariantBuilder) nodes = g_variant_builder_new(G_VARIANT_TYPE("au"));
        g_autoptr(GError) e = NULL;
        gint64 t;

        pool_before = hp_pools_str(f->c);
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_test_message("case: %s", cases[i].what);
                e = hp_reserve_fails(f->c, cases[i].name, 0, cases[i].bytes,
                                  cases[i].options ? test_opts(cases[i].options) : NULL, E_INVALID);
                g_clear_error(&e);
        }
        for (const char *const *n = (const char *const[]) { "", "a/b", "\xc3\xa9", NULL }; *n; n++) {
                e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", *n), E_INVALID);
                g_clear_error(&e);
                e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "GetReservation", g_variant_new("(s)", *n),
                               E_INVALID);
                g_clear_error(&e);
        }
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", long_name), E_INVALID);
        g_clear_error(&e);

        /* 5000 distinct nodes: refused for their number (not for a duplicate or a missing node), quickly, and
         * the daemon is still there. */
        for (guint i = 0; i < 5000; i++) {
                g_variant_builder_add(nb, "(ut)", i, PS2M);
                g_variant_builder_add(nodes, "u", i);
        }
        t = g_get_monotonic_time();
        e = hp_reserve_fails(f->c, "a", 0, 0, hp_opt_one("node_bytes", g_variant_builder_end(nb)), E_INVALID);
        g_assert_nonnull(strstr(e->message, "1024"));
        g_clear_error(&e);
        e = hp_reserve_fails(f->c, "a", 0, PS2M, hp_opt_one("nodes", g_variant_builder_end(nodes)), E_INVALID);
        g_assert_nonnull(strstr(e->message, "1024"));
        g_clear_error(&e);
        g_assert_cmpint(g_get_monotonic_time() - t, <, 2 * G_USEC_PER_SEC);
        hp_ping(f->c);

        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);
        pools = hp_pools_str(f->c);
        g_assert_cmpstr(pools, ==, pool_before);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 0);
        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 0);

        /* The longest valid name works. */
        p = hp_reserve_ok(f->c, max_name, 0, PS2M, NULL);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 1);
        hp_release_ok(f->c, max_name);
}

int main(int argc, char *argv[]) {
        hp_test_init(&argc, &argv);

        ADD("/bus/reserve-release", &params_floor_node1, test_reserve_release);
        ADD("/bus/options", NULL, test_options);
        ADD("/bus/errors", NULL, test_errors);
        ADD("/bus/limits", &params_limits, test_limits);
        ADD("/bus/invalid-args", NULL, test_invalid_args);
        return g_test_run();
}
