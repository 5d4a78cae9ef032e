/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus tests (see test-bus.h), concurrency: changes from outside the daemon, many clients at once, warm pools
 * and a loop that never blocks on a slow kernel write. */
#include "test-bus.h"

/* ---- 10. changes from outside ---- */

static void test_outside_change(Fixture *f, gconstpointer data) {
        g_autofree char *p = NULL, *s = NULL, *want = NULL;

        fake_kernel_control(f->fk, "set_nr 0 2048 30");
        s = hp_pools_str(f->c);
        want = expected_pools_2m(30, 0, 30, 0, 0, 0);
        g_assert_cmpstr(s, ==, want);
        g_assert_cmpuint(pool_floor(f->c, 0), ==, 30);

        p = hp_reserve_ok(f->c, "r", 0, 5 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 35);

        /* Someone adds 10 more while we hold 5: Floor becomes 45 - 5. */
        fake_kernel_control(f->fk, "set_nr 0 2048 45");
        g_clear_pointer(&s, g_free);
        g_clear_pointer(&want, g_free);
        s = hp_pools_str(f->c);
        want = expected_pools_2m(45, 5, 40, 0, 0, 0);
        g_assert_cmpstr(s, ==, want);

        /* Releasing never shrinks below the Floor. */
        hp_release_ok(f->c, "r");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 40);
        g_clear_pointer(&s, g_free);
        g_clear_pointer(&want, g_free);
        s = hp_pools_str(f->c);
        want = expected_pools_2m(40, 0, 40, 0, 0, 0);
        g_assert_cmpstr(s, ==, want);

        /* Spare pages above the Floor... there are none: a new reservation grows the pool. */
        g_clear_pointer(&p, g_free);
        p = hp_reserve_ok(f->c, "r2", 0, 2 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 42);
        /* Someone shrinks the pool under us, then a release only goes down to the new Floor. */
        fake_kernel_control(f->fk, "set_nr 0 2048 12");
        hp_release_ok(f->c, "r2");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 10);
        g_assert_cmpuint(pool_floor(f->c, 0), ==, 10);
}

/* ---- 11. many clients at once ---- */

#define N_CLIENTS 100

typedef struct Client {
        GDBusConnection *c;
        char name[32];
        guint node;
        guint pages;
        char *path;
        GError *error;
        gboolean released;
        guint *pending;
} Client;

static void on_call_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        Client *cl = user_data;
        g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &cl->error);

        if (reply && g_variant_is_of_type(reply, G_VARIANT_TYPE("(o)")))
                g_variant_get(reply, "(o)", &cl->path);
        (*cl->pending)--;
}

static void wait_pending(guint *pending) {
        gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

        while (*pending > 0) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                hp_tick();
        }
}

static const char *const pre_floor_node1_7[] = { "set_nr 1 2048 7", NULL };
static const HpTestParams params_floor_node1_7 = { .fk_control = pre_floor_node1_7 };

static void test_many_clients(Fixture *f, gconstpointer data) {
        Client *cl = g_new0(Client, N_CLIENTS);
        guint pending = 0;
        guint64 want[2] = {}, floor_[2];
        g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *list = NULL, *want_list = NULL;

        floor_[0] = pool_floor(f->c, 0);
        floor_[1] = pool_floor(f->c, 1);
        g_assert_cmpuint(floor_[0], ==, 0);
        g_assert_cmpuint(floor_[1], ==, 7);

        for (guint i = 0; i < N_CLIENTS; i++) {
                cl[i].c = test_bus_connect(f->bus);
                g_snprintf(cl[i].name, sizeof cl[i].name, "client-%03u", i);
                cl[i].node = (guint) g_test_rand_int_range(0, 2);
                cl[i].pages = (guint) g_test_rand_int_range(1, 4);
                cl[i].pending = &pending;
        }
        for (guint i = 0; i < N_CLIENTS; i++) {
                GVariant *o = g_variant_new_parsed("{'nodes': <[%u]>}", cl[i].node);

                pending++;
                g_dbus_connection_call(cl[i].c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                                       g_variant_new("(stt@a{sv})", cl[i].name, (guint64) 0,
                                                     (guint64) cl[i].pages * PS2M, o),
                                       G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS, NULL,
                                       on_call_done, &cl[i]);
        }
        wait_pending(&pending);
        for (guint i = 0; i < N_CLIENTS; i++) {
                g_autofree char *p = hp_res_path(cl[i].name);

                g_assert_no_error(cl[i].error);
                g_assert_cmpstr(cl[i].path, ==, p);
                want[cl[i].node] += cl[i].pages;
        }
        g_assert_cmpuint(hp_n_reservations(f->c), ==, N_CLIENTS);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, floor_[0] + want[0]);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, floor_[1] + want[1]);

        /* Half of them let go, all at once. */
        for (guint i = 0; i < N_CLIENTS; i += 2) {
                pending++;
                cl[i].released = TRUE;
                want[cl[i].node] -= cl[i].pages;
                g_dbus_connection_call(cl[i].c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Release",
                                       g_variant_new("(s)", cl[i].name), G_VARIANT_TYPE("()"),
                                       G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS, NULL, on_call_done, &cl[i]);
        }
        wait_pending(&pending);
        for (guint i = 0; i < N_CLIENTS; i++) {
                g_assert_no_error(cl[i].error);
                if (!cl[i].released)
                        g_ptr_array_add(rows, g_strdup_printf("%s:2097152:%u:0:explicit:%s", cl[i].name,
                                                              cl[i].pages, cl[i].path));
        }
        g_assert_cmpuint(nr(f, 0, KB2M), ==, pool_floor(f->c, 0) + want[0]);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, pool_floor(f->c, 1) + want[1]);
        g_assert_cmpuint(pool_floor(f->c, 0), ==, floor_[0]);
        g_assert_cmpuint(pool_floor(f->c, 1), ==, floor_[1]);
        g_assert_cmpuint(hp_prop_u64(f->c, NODE0_PATH, POOL_IFACE, "Reserved"), ==, want[0]);
        g_assert_cmpuint(hp_prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Reserved"), ==, want[1]);
        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==,
                         (want[0] + want[1]) * PS2M);
        g_ptr_array_add(rows, NULL);
        want_list = g_strjoinv(" ", (char **) rows->pdata);
        list = hp_reservations_str(f->c);
        g_assert_cmpstr(list, ==, want_list);

        for (guint i = 0; i < N_CLIENTS; i++) {
                (void) g_dbus_connection_close_sync(cl[i].c, NULL, NULL);
                g_object_unref(cl[i].c);
                g_free(cl[i].path);
        }
        g_free(cl);
        /* Explicit reservations outlive their clients' connections. */
        g_assert_cmpuint(hp_n_reservations(f->c), ==, N_CLIENTS / 2);
}


/* ---- 12b. no blocking, warm pools (issue 7) ---- */

static const HpTestParams params_warm = {
        .config = DEFAULT_CONFIG "[Pool 2M]\nShrinkDelaySec=60\n",
};

/* A guest reboot: release, then the same reservation again within the delay. No write reaches the kernel. */
static void test_warm_reboot(Fixture *f, gconstpointer data) {
        g_autofree char *p1 = NULL, *p2 = NULL;
        guint64 writes;

        p1 = hp_reserve_ok(f->c, "vm1", PS2M, 64 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 64);
        writes = fake_kernel_get(f->fk, 0, KB2M, "writes");
        hp_release_ok(f->c, "vm1");
        /* The pages stay in the pool as spare. */
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 64);
        g_assert_cmpuint(hp_prop_u64(f->c, NODE0_PATH, POOL_IFACE, "Reserved"), ==, 0);
        p2 = hp_reserve_ok(f->c, "vm1", PS2M, 64 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, KB2M, "writes"), ==, writes);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 64);

        /* A restart keeps the spare as spare: not adopted into Floor, not thrown back. */
        hp_release_ok(f->c, "vm1");
        hp_fixture_daemon_end(f, SIGTERM);
        hp_fixture_daemon_start(f);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 64);
        g_assert_cmpuint(hp_prop_u64(f->c, NODE0_PATH, POOL_IFACE, "Floor"), ==, 0);
        g_free(p2);
        p2 = hp_reserve_ok(f->c, "vm1", PS2M, 64 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, KB2M, "writes"), ==, writes);
}

static void on_reply(GObject *source, GAsyncResult *res, gpointer userdata) {
        GVariant **out = userdata;
        g_autoptr(GError) e = NULL;
        *out = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &e);
        g_assert_no_error(e);
}

/* While a slow allocation runs, the daemon answers. No clock is read: the proof is causal. Had the loop been
 * blocked in the kernel write, these calls would only be answered after it, when ReservedBytes is no longer 0;
 * the write is made long enough that a loaded machine can't get there by being slow. */
static void test_no_blocking(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) slow = NULL;
        g_autofree char *other = NULL;

        fake_kernel_control(f->fk, "delay_ms 10000");
        g_dbus_connection_call(f->c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                               g_variant_new("(stt@a{sv})", "slow", PS2M, 8 * PS2M, test_opts("{'nodes': <[uint32 0]>}")),
                               G_VARIANT_TYPE("(o)"), 0, 60000, NULL, on_reply, &slow);
        /* Wait until the daemon holds node 0's nr_hugepages open: the slow write is under way. (Asking the fake
         * kernel would queue behind that very write.) */
        g_assert_true(test_daemon_wait_open_for_write(f->d, "node0/hugepages/hugepages-2048kB/nr_hugepages", 20000));
        for (int i = 0; i < 5; i++)
                hp_ping(f->c);
        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 0);
        g_assert_null(slow);
        while (!slow)
                g_main_context_iteration(NULL, TRUE);
        fake_kernel_control(f->fk, "delay_ms 0");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 8);
        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "StatsPagesFirstWrite"), >=, 8);
}

int main(int argc, char *argv[]) {
        hp_test_init(&argc, &argv);

        ADD("/bus/outside-change", NULL, test_outside_change);
        ADD("/bus/many-clients", &params_floor_node1_7, test_many_clients);
        ADD("/bus/warm-reboot", &params_warm, test_warm_reboot);
        ADD("/bus/no-blocking", NULL, test_no_blocking);
        return g_test_run();
}
