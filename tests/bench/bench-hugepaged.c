/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The performance figures of issue 7 that run on the fake kernel, each a ratio measured side by side in this
 * run, printed as one table. Never fails for a slow machine: only a broken daemon fails it. */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>

#include "bus-harness.h"
#include "fake-kernel-launch.h"

#define MANAGER_PATH "/org/hugepaged1"
#define MANAGER_IFACE "org.hugepaged1.Manager"
#define PS2M (2ULL * 1024 * 1024)
#define N 200

static int cmp_i64(const void *a, const void *b) {
        gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
        return x < y ? -1 : x > y;
}

static gint64 pct(gint64 *v, int n, int p) {
        qsort(v, (size_t) n, sizeof(*v), cmp_i64);
        return v[(n - 1) * p / 100];
}

static gint64 timed_ping(GDBusConnection *c) {
        gint64 t0 = g_get_monotonic_time();
        g_autoptr(GVariant) r = test_call(c, "/", "org.freedesktop.DBus.Peer", "Ping", NULL, G_VARIANT_TYPE("()"),
                                          NULL);
        g_assert_nonnull(r);
        return g_get_monotonic_time() - t0;
}

static GVariant *node0(void) {
        return g_variant_new_parsed("{'nodes': <[uint32 0]>}");
}

static gint64 timed_call(GDBusConnection *c, const char *method, GVariant *args) {
        g_autoptr(GError) e = NULL;
        gint64 t0 = g_get_monotonic_time();
        g_autoptr(GVariant) r = test_call(c, MANAGER_PATH, MANAGER_IFACE, method, args, NULL, &e);
        g_assert_no_error(e);
        return g_get_monotonic_time() - t0;
}

static void on_reply(GObject *source, GAsyncResult *res, gpointer userdata) {
        GVariant **out = userdata;
        g_autoptr(GError) e = NULL;
        *out = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &e);
        g_assert_no_error(e);
}

int main(int argc, char **argv) {
        static const char *const fk_args[] = { "--nodes=0", NULL };
        static gint64 warm[N], ping[N], busy[4000];
        g_autofree char *dir = NULL, *state = NULL, *conf = NULL;
        g_autoptr(GVariant) slow = NULL;
        FakeKernel *fk;
        TestBus *bus;
        TestDaemon *d;
        GDBusConnection *c;
        int nb = 0;
        gint64 end;

        test_harness_init(&argc, &argv);
        if (!fake_kernel_available())
                return 77;
        fk = fake_kernel_start(fk_args);
        bus = test_bus_start();
        dir = test_tmpdir("hugepaged-bench-XXXXXX");
        state = g_build_filename(dir, "state", NULL);
        conf = g_build_filename(dir, "hugepaged.conf", NULL);
        g_assert_cmpint(g_mkdir(state, 0755), ==, 0);
        g_assert_true(g_file_set_contents(conf, "[Pool 2M]\nShrinkDelaySec=600\n", -1, NULL));
        d = test_daemon_start(bus, fake_kernel_root(fk), state, conf, (const char *const[]) { "--log-level=warning", NULL });
        c = test_bus_connect(bus);

        /* (2) warm grant: Reserve served from spare pages against Ping, interleaved. */
        (void) timed_call(c, "Reserve", g_variant_new("(stt@a{sv})", "w", PS2M, 512 * PS2M, node0()));
        (void) timed_call(c, "Release", g_variant_new("(s)", "w"));
        for (int i = 0; i < N; i++) {
                ping[i] = timed_ping(c);
                warm[i] = timed_call(c, "Reserve", g_variant_new("(stt@a{sv})", "w", PS2M, 512 * PS2M, node0()));
                (void) timed_call(c, "Release", g_variant_new("(s)", "w"));
        }
        gint64 w50 = pct(warm, N, 50), w99 = pct(warm, N, 99), p50 = pct(ping, N, 50);

        /* (6) responsiveness: Ping p99 while a 5-second allocation runs. */
        fake_kernel_control(fk, "delay_ms 5000");
        g_dbus_connection_call(c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                               g_variant_new("(stt@a{sv})", "slow", PS2M, 1024 * PS2M, node0()), G_VARIANT_TYPE("(o)"),
                               0, 60000, NULL, on_reply, &slow);
        end = g_get_monotonic_time() + 4 * G_USEC_PER_SEC;
        g_usleep(100000);
        while (g_get_monotonic_time() < end && nb < (int) G_N_ELEMENTS(busy))
                busy[nb++] = timed_ping(c);
        while (!slow)
                g_main_context_iteration(NULL, TRUE);
        fake_kernel_control(fk, "delay_ms 0");
        gint64 b99 = pct(busy, nb, 99);

        printf("\n%-46s %12s %12s %8s %s\n", "figure", "hugepaged", "reference", "ratio", "target");
        printf("%-46s %9.1f us %9.1f us %8.2f %s\n", "(2) warm grant median vs Ping", w50 / 1.0, p50 / 1.0,
               (double) w50 / (double) p50, "<= 3");
        printf("%-46s %9.1f us %12s %8s %s\n", "(2) warm grant p99", w99 / 1.0, "-", "-", "< 1000 us");
        printf("%-46s %9.1f us %9.1f us %8.2f %s\n", "(6) Ping p99 during 5 s allocation vs idle", b99 / 1.0,
               p50 / 1.0, (double) b99 / (double) p50, "p99 < 5000 us");
        printf("    (%d pings answered while the allocation ran)\n", nb);

        g_object_unref(c);
        test_daemon_stop(d);
        test_daemon_free(d);
        test_bus_stop(bus);
        fake_kernel_stop(fk);
        test_rm_rf(dir);
        return 0;
}
