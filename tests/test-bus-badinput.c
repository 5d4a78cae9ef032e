/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus tests of a kernel that misbehaves under the daemon (issue 8): a write that fails, and sysfs files that
 * vanish between requests and in the middle of one, as when a node goes away. Each must give an error reply,
 * leave no reservation behind, keep the other pools at Floor + Reserved, and never crash the daemon. */
#include <signal.h>
#include <string.h>

#include "hp-client.h"
#include "hp-fixture.h"

#define PS2M (2ULL * 1024 * 1024)
#define KB2M 2048
#define MANAGER_PATH HP_BUS_PATH
#define MANAGER_IFACE HP_BUS_IFACE_MANAGER

typedef HpFixture Fixture;

static const HpTestParams params = {
        .fk_control = (const char *const[]) { "set_nr 0 2048 3", NULL },
        .config = "[Allocation]\nMaxAttempts=2\nTimeoutSec=5\n[Daemon]\nRefreshIntervalSec=0\n",
        /* Whatever the kernel did, the daemon must still be there and stop cleanly. */
        .daemon_end = HP_DAEMON_END_MUST_RUN,
};

/* Reserve of the default page size: the error, or NULL. */
static GError *reserve(Fixture *f, const char *name, guint64 bytes, const char *options) {
        g_autofree char *path = NULL;
        GError *e = NULL;

        path = hp_reserve(f->c, name, 0, bytes, test_opts(options), &e);
        g_assert_true((path == NULL) == (e != NULL));
        return e;
}

static guint n_reservations(Fixture *f) {
        return hp_n_reservations(f->c);
}

static void assert_node0_at(Fixture *f, guint64 reserved) {
        guint64 nr = 0, res = 0, floor = 0;

        g_assert_true(hp_pool_row(f->c, PS2M, 0, &nr, &res, &floor));
        g_assert_cmpuint(floor, ==, 3);
        g_assert_cmpuint(res, ==, reserved);
        g_assert_cmpuint(nr, ==, 3 + reserved);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, KB2M, "nr"), ==, 3 + reserved);
}

/* The kernel refuses a write (EIO, ENOMEM): an error naming the node, nothing reserved, nothing changed. */
static void test_write_fails(Fixture *f, gconstpointer data) {
        g_autoptr(GError) e1 = NULL, e2 = NULL, ok = NULL;

        fake_kernel_control(f->fk, "fail 0 2048 5");
        e1 = reserve(f, "eio", 4 * PS2M, "{'nodes': <[uint32 0]>}");
        g_assert_nonnull(e1);
        g_test_message("EIO: %s", e1->message);
        g_assert_nonnull(strstr(e1->message, "node 0"));
        g_assert_cmpuint(n_reservations(f), ==, 0);
        assert_node0_at(f, 0);

        fake_kernel_control(f->fk, "fail 0 2048 12");
        e2 = reserve(f, "enomem", 4 * PS2M, "{'nodes': <[uint32 0]>}");
        g_assert_nonnull(e2);
        g_assert_cmpuint(n_reservations(f), ==, 0);
        assert_node0_at(f, 0);

        /* And the next request works. */
        ok = reserve(f, "fine", 4 * PS2M, "{'nodes': <[uint32 0]>}");
        g_assert_no_error(ok);
        assert_node0_at(f, 4);
}

/* Node 1 disappears between requests, with a reservation on it: requests naming it fail, the rest works, and
 * releasing the reservation there answers (the pages went with the node) instead of crashing. */
static void test_node_vanishes_between(Fixture *f, gconstpointer data) {
        g_autoptr(GError) e = NULL, e1 = NULL, ok = NULL, any = NULL;
        g_autoptr(GVariant) rel = NULL;

        e = reserve(f, "on1", 2 * PS2M, "{'nodes': <[uint32 1]>}");
        g_assert_no_error(e);
        fake_kernel_control(f->fk, "remove_node 1");

        e1 = reserve(f, "again1", 2 * PS2M, "{'nodes': <[uint32 1]>}");
        g_assert_nonnull(e1);
        g_test_message("node gone: %s", e1->message);
        any = reserve(f, "split", 0, "{'node_bytes': <[(uint32 0, uint64 4194304), (1, 4194304)]>}");
        g_assert_nonnull(any);
        assert_node0_at(f, 0);

        ok = reserve(f, "on0", 2 * PS2M, "{'nodes': <[uint32 0]>}");
        g_assert_no_error(ok);
        assert_node0_at(f, 2);

        /* Either answer is acceptable for the vanished node's reservation, as long as there is one. */
        g_clear_error(&e1);
        rel = test_call(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", "on1"), NULL, &e1);
        g_clear_error(&e1);
        g_clear_pointer(&rel, g_variant_unref);
        rel = test_call(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", "on0"), NULL, &e1);
        g_assert_no_error(e1);
        assert_node0_at(f, 0);
}

static void on_done(GObject *source, GAsyncResult *res, gpointer user_data) {
        GError **e = user_data;
        g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, e);

        if (reply)
                *e = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_NONE, "success");
}

/* Node 1 disappears while a request that needs it is in progress: node 0 is written (slowly), then node 1's
 * files are gone. The request fails, node 0 goes back to where it was, nothing is reserved. */
static void test_node_vanishes_mid_request(Fixture *f, gconstpointer data) {
        GError *result = NULL;
        gint64 deadline;

        fake_kernel_control(f->fk, "delay_ms 400");
        g_dbus_connection_call(f->c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                               g_variant_new("(stt@a{sv})", "mid", (guint64) 0, (guint64) 0,
                                             test_opts("{'node_bytes': <[(uint32 0, uint64 8388608), "
                                                  "(1, 8388608)]>}")),
                               G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS, NULL, on_done,
                               &result);
        /* Once node 0's slow write is under way: the model is single-threaded, so this lands after that write and
         * before node 1's. */
        g_assert_true(test_daemon_wait_open_for_write(f->d, "node0/hugepages/hugepages-2048kB/nr_hugepages", 20000));
        fake_kernel_control(f->fk, "remove_node 1");
        fake_kernel_control(f->fk, "delay_ms 0");
        deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
        while (!result && g_get_monotonic_time() < deadline)
                g_main_context_iteration(NULL, TRUE);
        g_assert_nonnull(result);
        g_test_message("mid-request: %s", result->message);
        g_assert_false(result->domain == G_IO_ERROR && result->code == G_IO_ERROR_NONE);
        /* Node 1 went between the plan and its write, not before the request was looked at. */
        g_assert_nonnull(strstr(result->message, "pages on node 1"));
        g_clear_error(&result);
        g_assert_cmpuint(n_reservations(f), ==, 0);
        assert_node0_at(f, 0);
}

int main(int argc, char *argv[]) {
        hp_test_init(&argc, &argv);
#define ADD(path, fn) g_test_add(path, HpFixture, &params, hp_fixture_setup, fn, hp_fixture_teardown)
        ADD("/bus/bad-kernel/write-fails", test_write_fails);
        ADD("/bus/bad-kernel/node-vanishes-between", test_node_vanishes_between);
        ADD("/bus/bad-kernel/node-vanishes-mid-request", test_node_vanishes_mid_request);
        return g_test_run();
}
