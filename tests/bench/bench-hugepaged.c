/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The performance figures of issue 7 that run on the fake kernel, each a ratio measured side by side in this
 * run, printed as one table: (2) warm grant with the state directory on disk and on tmpfs, (3) churn,
 * (4) memory against bench-minimal-service, (5) start-up with 10,000 reservations, (6) responsiveness.
 * Never fails for a slow machine: only a broken daemon fails it. See docs/performance.md. */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "bench-kernel.h"
#include "bus-harness.h"
#include "fake-kernel-launch.h"
#include "real-kernel.h"

#define MANAGER_PATH "/org/hugepaged1"
#define MANAGER_IFACE "org.hugepaged1.Manager"
#define PS2M (2ULL * 1024 * 1024)
#define N 1000 /* rounds of (2): its p99 is then the 10th slowest, not the 2nd */

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


/* ---- shared helpers of figures (2 tmpfs), (3), (4), (5) ---- */

static void run_warm(GDBusConnection *c, gint64 *w50, gint64 *w99, gint64 *p50) {
        static gint64 warm[N], ping[N];

        (void) timed_call(c, "Reserve", g_variant_new("(stt@a{sv})", "w", PS2M, 512 * PS2M, node0()));
        (void) timed_call(c, "Release", g_variant_new("(s)", "w"));
        for (int i = 0; i < N; i++) {
                ping[i] = timed_ping(c);
                warm[i] = timed_call(c, "Reserve", g_variant_new("(stt@a{sv})", "w", PS2M, 512 * PS2M, node0()));
                (void) timed_call(c, "Release", g_variant_new("(s)", "w"));
        }
        *w50 = pct(warm, N, 50);
        *w99 = pct(warm, N, 99);
        *p50 = pct(ping, N, 50);
}

/* VmRSS of pid in KiB, -1 if unreadable. */
static long rss_kib(pid_t pid) {
        g_autofree char *path = g_strdup_printf("/proc/%d/status", (int) pid), *s = NULL;
        const char *l;

        if (!g_file_get_contents(path, &s, NULL, NULL))
                return -1;
        l = strstr(s, "\nVmRSS:");
        return l ? strtol(l + 7, NULL, 10) : -1;
}

/* (3) churn: NC clients, each in a loop of either Reserve+Release of its own name or Ping+Ping; the number of
 * completed pairs per second over all clients. CHURN_ROUNDS rounds of each kind, CHURN_ROUND_MS each, in the
 * order ABBA ABBA... so that drift in this machine's speed falls on both sides alike. */
#define NC 16
#define CHURN_ROUNDS 4
#define CHURN_ROUND_MS 500
typedef struct {
        GDBusConnection *c;
        char name[16];
        gboolean churn, second, stop;
        guint64 done;
        int *running;
} Client;

static void client_next(Client *cl);

static void client_reply(GObject *source, GAsyncResult *res, gpointer userdata) {
        Client *cl = userdata;
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &e);

        g_assert_no_error(e);
        if (cl->second)
                cl->done++;
        cl->second = !cl->second;
        if (cl->stop && !cl->second) {
                (*cl->running)--;
                return;
        }
        client_next(cl);
}

static void client_next(Client *cl) {
        if (!cl->churn)
                g_dbus_connection_call(cl->c, TEST_BUS_NAME, "/", "org.freedesktop.DBus.Peer", "Ping", NULL,
                                       G_VARIANT_TYPE("()"), 0, TEST_CALL_TIMEOUT_MS, NULL, client_reply, cl);
        else if (!cl->second)
                g_dbus_connection_call(cl->c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                                       g_variant_new("(stt@a{sv})", cl->name, PS2M, 4 * PS2M, node0()),
                                       G_VARIANT_TYPE("(o)"), 0, TEST_CALL_TIMEOUT_MS, NULL, client_reply, cl);
        else
                g_dbus_connection_call(cl->c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Release",
                                       g_variant_new("(s)", cl->name), NULL, 0, TEST_CALL_TIMEOUT_MS, NULL,
                                       client_reply, cl);
}

/* One round: the pairs completed and the time it took, added to *pairs and *usec. */
static void run_clients(Client *cls, gboolean churn, guint64 *pairs, gint64 *usec) {
        int running = NC;
        gint64 t0, t1;

        for (int i = 0; i < NC; i++) {
                cls[i].churn = churn;
                cls[i].second = cls[i].stop = FALSE;
                cls[i].done = 0;
                cls[i].running = &running;
                g_snprintf(cls[i].name, sizeof(cls[i].name), "churn%d", i);
        }
        t0 = g_get_monotonic_time();
        for (int i = 0; i < NC; i++)
                client_next(&cls[i]);
        while (g_get_monotonic_time() < t0 + CHURN_ROUND_MS * 1000)
                g_main_context_iteration(NULL, FALSE) || (g_usleep(100), 0);
        t1 = g_get_monotonic_time();
        for (int i = 0; i < NC; i++) {
                cls[i].stop = TRUE;
                *pairs += cls[i].done;
        }
        *usec += t1 - t0;
        while (running > 0)
                g_main_context_iteration(NULL, TRUE);
}

/* Churn cycles/s and Ping pairs/s, interleaved. */
static void run_churn(Client *cls, double *churn, double *pings) {
        guint64 n[2] = { 0, 0 };
        gint64 t[2] = { 0, 0 };

        for (int r = 0; r < 2 * CHURN_ROUNDS; r++) {
                gboolean is_churn = (r % 4 == 1 || r % 4 == 2); /* Ping, churn, churn, Ping, ... */

                run_clients(cls, is_churn, &n[is_churn], &t[is_churn]);
        }
        *pings = (double) n[0] * G_USEC_PER_SEC / (double) t[0];
        *churn = (double) n[1] * G_USEC_PER_SEC / (double) t[1];
}

/* (4) 10,000 reservations of one page each, created with async calls, at most WINDOW in flight. */
#define NRES 10000
#define WINDOW 64
typedef struct {
        GDBusConnection *c;
        int next, done;
} Filler;

static void fill_one(Filler *f);

static void fill_reply(GObject *source, GAsyncResult *res, gpointer userdata) {
        Filler *f = userdata;
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &e);

        g_assert_no_error(e);
        f->done++;
        fill_one(f);
}

static void fill_one(Filler *f) {
        char name[16];

        if (f->next >= NRES)
                return;
        g_snprintf(name, sizeof(name), "r%05d", f->next++);
        g_dbus_connection_call(f->c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                               g_variant_new("(stt@a{sv})", name, PS2M, PS2M, node0()), G_VARIANT_TYPE("(o)"), 0,
                               120000, NULL, fill_reply, f);
}

/* (5) the state file of NRES one-page reservations on node 0, with the pool at exactly those pages, the
 * way state.c writes it. */
static void write_state(const char *dir, int nres) {
        g_autofree char *path = g_build_filename(dir, "state", NULL);
        GString *s = g_string_new("# hugepaged state: written by the daemon, do not edit while it runs\n"
                                  "[State]\nVersion=1\n");

        if (nres > 0)
                g_string_append_printf(s, "\n[Pool %llu 0]\nFloor=0\nLow=%d\nHigh=%d\n", PS2M, nres, nres);
        for (int i = 0; i < nres; i++)
                g_string_append_printf(s,
                                       "\n[Reservation r%05d]\nPageSize=%llu\nPages=1\nLifetime=explicit\n"
                                       "OwnerUID=0\nCreatedUSec=1\nNode=0 1\nRequestNode=0\n",
                                       i, PS2M);
        g_assert_true(g_file_set_contents(path, s->str, (gssize) s->len, NULL));
        g_string_free(s, TRUE);
}

/* Spawn to READY=1, in µs; the daemon is stopped again. */
static gint64 time_startup(TestBus *bus, FakeKernel *fk, const char *state_src, const char *conf) {
        g_autofree char *dir = test_tmpdir("hugepaged-bench-start-XXXXXX");
        g_autofree char *src = NULL, *dst = g_build_filename(dir, "state", NULL), *content = NULL;
        gsize len;
        gint64 t0, dt = -1;
        TestDaemon *d;

        if (state_src) {
                src = g_build_filename(state_src, "state", NULL);
                g_assert_true(g_file_get_contents(src, &content, &len, NULL));
                g_assert_true(g_file_set_contents(dst, content, (gssize) len, NULL));
        }
        t0 = g_get_monotonic_time();
        d = test_daemon_start_full(bus, fake_kernel_root(fk), dir, conf,
                                   (const char *const[]) { "--log-level=warning", NULL }, NULL, FALSE);
        while (g_get_monotonic_time() < t0 + 30 * G_USEC_PER_SEC && test_daemon_is_running(d)) {
                g_auto(GStrv) msgs = test_daemon_notify_messages(d);
                for (char **m = msgs; m && *m; m++)
                        if (strstr(*m, "READY=1"))
                                dt = g_get_monotonic_time() - t0;
                if (dt >= 0)
                        break;
                g_usleep(200);
        }
        g_assert_cmpint(dt, >=, 0);
        test_daemon_stop(d);
        test_daemon_free(d);
        test_rm_rf(dir);
        return dt;
}

static void bench(void) {
        static const char *const fk_args[] = { "--nodes=0", NULL };
        static gint64 busy[4000];
        static Client cls[NC];
        gint64 w50, w99, p50, t50, t99, tp50, st_full[5], st_empty[5];
        long rss_idle, rss_full, rss_min = -1;
        double churn, pings;
        g_autofree char *shm = NULL, *conf2 = NULL, *sdir = NULL, *minbin = NULL;
        Filler fill = { 0 };
        FakeKernel *fk2;
        g_autofree char *dir = NULL, *state = NULL, *conf = NULL;
        g_autoptr(GVariant) slow = NULL;
        FakeKernel *fk;
        TestBus *bus;
        TestDaemon *d;
        GDBusConnection *c;
        int nb = 0;
        gint64 end;
        char real_why[128] = "";
        gboolean real;
        ColdGrant cold = { 0 };
        Fragmentation frag = { 0 };

        fk = fake_kernel_start(fk_args);
        bus = test_bus_start();
        real = bench_kernel_usable(real_why, sizeof(real_why));
        if (real) {
                save_originals();
                install_emergency_handler();
                emergency_bus_pid = test_bus_pid(bus);
        }
        dir = test_tmpdir("hugepaged-bench-XXXXXX");
        state = g_build_filename(dir, "state", NULL);
        conf = g_build_filename(dir, "hugepaged.conf", NULL);
        g_assert_cmpint(g_mkdir(state, 0755), ==, 0);
        g_assert_true(g_file_set_contents(conf, "[Pool 2M]\nShrinkDelaySec=600\n", -1, NULL));
        d = test_daemon_start(bus, fake_kernel_root(fk), state, conf, (const char *const[]) { "--log-level=warning", NULL });
        c = test_bus_connect(bus);

        /* (2) warm grant: Reserve served from spare pages against Ping, interleaved; state on disk. */
        run_warm(c, &w50, &w99, &p50);

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

        g_object_unref(c);
        test_daemon_stop(d);
        test_daemon_free(d);

        /* Phase B: a fake kernel big enough for 10,000 one-page reservations, the state directory on tmpfs
         * (/dev/shm) as in production (/run). */
        fk2 = fake_kernel_start((const char *const[]) { "--nodes=0", "--capacity=20000", NULL });
        shm = g_strdup("/dev/shm/hugepaged-bench-XXXXXX");
        g_assert_nonnull(g_mkdtemp(shm));
        sdir = g_build_filename(shm, "state", NULL);
        g_assert_cmpint(g_mkdir(sdir, 0755), ==, 0);
        conf2 = g_build_filename(dir, "hugepaged-b.conf", NULL);
        g_assert_true(g_file_set_contents(conf2, "[Daemon]\nMaxReservations=20000\n[Pool 2M]\nShrinkDelaySec=600\n",
                                          -1, NULL));

        /* (4) reference: the minimal sd-bus service under org.hugepaged1 while hugepaged is not running. */
        minbin = g_strdup(g_getenv("HUGEPAGED_BENCH_MINIMAL_BIN"));
        if (!minbin)
                minbin = g_build_filename(g_getenv("HUGEPAGED_BUILD_ROOT") ?: ".", "tests", "bench",
                                          "bench-minimal-service", NULL);
        if (g_file_test(minbin, G_FILE_TEST_IS_EXECUTABLE)) {
                GPid pid;
                GDBusConnection *bc = test_bus_connect(bus);
                gboolean owned = FALSE;

                g_assert_true(g_spawn_async(NULL, (char *[]) { minbin, (char *) TEST_BUS_NAME, NULL }, NULL,
                                            G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, NULL));
                for (int i = 0; i < 1000 && !owned; i++) {
                        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                                bc, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                "NameHasOwner", g_variant_new("(s)", TEST_BUS_NAME), G_VARIANT_TYPE("(b)"), 0, -1,
                                NULL, NULL);
                        if (r)
                                g_variant_get(r, "(b)", &owned);
                        if (!owned)
                                g_usleep(10000);
                }
                if (owned) {
                        g_usleep(300000);
                        rss_min = rss_kib(pid);
                }
                kill(pid, SIGTERM);
                (void) waitpid(pid, NULL, 0);
                g_spawn_close_pid(pid);
                g_object_unref(bc);
        }

        d = test_daemon_start(bus, fake_kernel_root(fk2), sdir, conf2, (const char *const[]) { "--log-level=warning", NULL });
        c = test_bus_connect(bus);
        g_usleep(300000);
        rss_idle = rss_kib(test_daemon_pid(d));

        /* (2) again, state on tmpfs. */
        run_warm(c, &t50, &t99, &tp50);

        /* (3) churn vs Ping pairs, 16 clients each. */
        for (int i = 0; i < NC; i++)
                cls[i].c = test_bus_connect(bus);
        run_churn(cls, &churn, &pings);
        for (int i = 0; i < NC; i++)
                g_object_unref(cls[i].c);

        /* (4) 10,000 reservations; spare pages first, so the fill writes the kernel once. */
        (void) timed_call(c, "Reserve", g_variant_new("(stt@a{sv})", "spare", PS2M, (guint64) NRES * PS2M, node0()));
        (void) timed_call(c, "Release", g_variant_new("(s)", "spare"));
        fill.c = c;
        gint64 tf = g_get_monotonic_time();
        for (int i = 0; i < WINDOW; i++)
                fill_one(&fill);
        while (fill.done < NRES)
                g_main_context_iteration(NULL, TRUE);
        tf = g_get_monotonic_time() - tf;
        g_usleep(300000);
        rss_full = rss_kib(test_daemon_pid(d));
        g_object_unref(c);
        test_daemon_stop(d);
        test_daemon_free(d);

        /* (5) start-up, spawn to READY=1: a generated state file of 10,000 reservations whose pool matches
         * the fake kernel (nr = 10,000, so start-up writes nothing), against an empty state directory. Five
         * runs each, interleaved; the median. */
        fake_kernel_control(fk2, "set_nr 0 2048 %d", NRES);
        write_state(sdir, NRES);
        guint64 writes0 = fake_kernel_get(fk2, 0, 2048, "writes");
        for (int i = 0; i < 5; i++) {
                st_full[i] = time_startup(bus, fk2, sdir, conf2);
                st_empty[i] = time_startup(bus, fk2, NULL, conf2);
        }
        gint64 sf = pct(st_full, 5, 50), se = pct(st_empty, 5, 50);
        guint64 start_writes = fake_kernel_get(fk2, 0, 2048, "writes") - writes0;

        /* The real kernel's figures last: the fake kernel's are independent of this machine's memory. */
        if (real) {
                bench_cold_grant(bus, &cold);
                bench_fragmentation(bus, &frag);
        } else {
                g_strlcpy(cold.why, real_why, sizeof(cold.why));
                g_strlcpy(frag.why, real_why, sizeof(frag.why));
        }

        printf("\n%-46s %12s %12s %8s %s\n", "figure", "hugepaged", "reference", "ratio", "target");
        if (cold.ran) {
                printf("%-46s %9.1f ms %9.1f ms %8.2f %s\n", "(1) cold grant 2048 x 2 MiB vs direct write", cold.daemon_us / 1e3,
                       cold.direct_us / 1e3, (double) cold.daemon_us / (double) cold.direct_us, "<= 1.10");
                printf("    (median of %d pairs, real kernel, order alternating; %d direct writes got fewer pages)\n",
                       cold.pairs, cold.direct_short);
        } else
                printf("%-46s skipped: %s\n", "(1) cold grant vs direct write", cold.why);
        printf("%-46s %9.1f us %9.1f us %8.2f %s\n", "(2) warm grant median vs Ping", w50 / 1.0, p50 / 1.0,
               (double) w50 / (double) p50, "<= 3");
        printf("%-46s %9.1f us %12s %8s %s\n", "(2) warm grant p99", w99 / 1.0, "-", "-", "< 1000 us");
        printf("%-46s %9.1f us %9.1f us %8.2f %s\n", "(6) Ping p99 during 5 s allocation vs idle", b99 / 1.0,
               p50 / 1.0, (double) b99 / (double) p50, "p99 < 5000 us");
        printf("    (%d pings answered while the allocation ran)\n", nb);
        printf("%-46s %9.1f us %9.1f us %8.2f %s\n", "(2) warm grant median vs Ping, state on tmpfs", t50 / 1.0,
               tp50 / 1.0, (double) t50 / (double) tp50, "<= 3");
        printf("%-46s %9.1f us %12s %8s %s\n", "(2) warm grant p99, state on tmpfs", t99 / 1.0, "-", "-", "< 1000 us");
        printf("%-46s %9.0f /s %9.0f /s %8.2f %s\n", "(3) churn cycles/s vs Ping pairs/s, 16 clients", churn, pings,
               churn / pings, ">= 0.25");
        if (rss_min > 0)
                printf("%-46s %8ld KiB %8ld KiB %8.2f %s\n", "(4) RSS idle vs minimal sd-bus service", rss_idle,
                       rss_min, (double) rss_idle / (double) rss_min, "<= 1.5");
        else
                printf("%-46s %8ld KiB %12s %8s %s\n", "(4) RSS idle (minimal service not built)", rss_idle, "-", "-",
                       "<= 1.5");
        printf("%-46s %8ld KiB %8ld KiB %8.2f %s\n", "(4) RSS with 10,000 reservations vs idle", rss_full, rss_idle,
               (double) rss_full / (double) rss_idle, "< 16384 KiB");
        printf("    (10,000 reservations created in %.1f s, %d calls in flight)\n", tf / 1e6, WINDOW);
        printf("%-46s %9.1f ms %9.1f ms %8.2f %s\n", "(5) start-up to READY, 10,000 vs none", sf / 1e3, se / 1e3,
               (double) sf / (double) se, "< 100 ms");
        printf("    (median of 5 each, interleaved; %" G_GUINT64_FORMAT " nr_hugepages writes during the 10 start-ups)\n",
               start_writes);
        bench_fragmentation_print(&frag);

        emergency_bus_pid = 0;
        test_bus_stop(bus);
        fake_kernel_stop(fk2);
        fake_kernel_stop(fk);
        test_rm_rf(shm);
        test_rm_rf(dir);
}

int main(int argc, char **argv) {
        test_harness_init(&argc, &argv);
        if (!fake_kernel_available())
                return 77;
        /* Inside g_test_run() so that the harness knows the run succeeded and removes its directories. */
        g_test_add_func("/bench/hugepaged", bench);
        return g_test_run();
}
