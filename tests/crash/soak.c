/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Soak benchmark (meson test --benchmark soak): 64 clients churn Reserve/Release against the real daemon on the
 * FUSE kernel model for HUGEPAGED_SOAK_SECONDS (600); some disconnect in the middle of a call, some reserve for
 * a process that is then killed. The daemon's RSS, open fds and bus match rules are sampled after a warm-up and
 * at the end; "flat" means end <= start * 1.1 + a small constant. Figures are reported, never failed on. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "hp-fixture.h"

#define N_CLIENTS 64
#define PS2M (2ULL * 1024 * 1024)
#define MANAGER_PATH HP_BUS_PATH
#define MANAGER_IFACE HP_BUS_IFACE_MANAGER

typedef struct Soak Soak;

typedef struct Client {
        Soak *s;
        int id;
        GDBusConnection *c;
        guint seq;
        gboolean busy;
        char *held;          /* name of the reservation to release next, if any */
        GPid child;          /* the process a pid-lifetime reservation is bound to */
} Client;

struct Soak {
        GRand *rand;
        TestBus *bus;
        Client clients[N_CLIENTS];
        guint64 calls, errors, disconnects, pid_kills;
        gboolean stopping;
        guint busy;
};

typedef struct Sample {
        guint64 rss_kb, fds, matches;
} Sample;

static void client_next(Client *cl);

static GPid spawn_holder(void) {
        pid_t parent = getpid(), pid = fork();

        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent || close_range(3, ~0U, 0) < 0)
                        _exit(1);
                for (;;)
                        pause();
        }
        return pid;
}

static void reap_holder(Client *cl) {
        int status;

        if (cl->child <= 0)
                return;
        (void) kill(cl->child, SIGKILL);
        (void) waitpid(cl->child, &status, 0);
        cl->child = 0;
}

static void on_reply(GObject *source, GAsyncResult *res, gpointer user_data) {
        Client *cl = user_data;
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &e);

        if (!r)
                cl->s->errors++;
        cl->busy = FALSE;
        cl->s->busy--;
        client_next(cl);
}

static void reconnect(Client *cl) {
        (void) g_dbus_connection_close_sync(cl->c, NULL, NULL);
        g_object_unref(cl->c);
        cl->c = test_bus_connect(cl->s->bus);
        cl->s->disconnects++;
}

static void client_next(Client *cl) {
        Soak *s = cl->s;
        GDBusConnection *c;

        if (s->stopping)
                return;
        cl->busy = TRUE;
        s->busy++;
        s->calls++;
        c = g_object_ref(cl->c);
        if (cl->held) {
                g_autofree char *name = g_steal_pointer(&cl->held);

                if (cl->child > 0 && g_rand_boolean(s->rand)) {
                        /* Its process dies: the daemon releases it on the pidfd; the Release may race it. */
                        reap_holder(cl);
                        s->pid_kills++;
                }
                g_dbus_connection_call(c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Release",
                                       g_variant_new("(s)", name), NULL, G_DBUS_CALL_FLAGS_NONE,
                                       TEST_CALL_TIMEOUT_MS, NULL, on_reply, cl);
        } else {
                GVariantBuilder b;
                int lt = g_rand_int_range(s->rand, 0, 3);
                guint32 node = (guint32) g_rand_int_range(s->rand, 0, 2);

                reap_holder(cl);
                cl->held = g_strdup_printf("soak-%d-%u", cl->id, ++cl->seq);
                g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&b, "{sv}", "nodes", g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, &node, 1,
                                                                                     sizeof(node)));
                if (lt == 1)
                        g_variant_builder_add(&b, "{sv}", "lifetime", g_variant_new_string("caller"));
                else if (lt == 2) {
                        cl->child = spawn_holder();
                        g_variant_builder_add(&b, "{sv}", "lifetime", g_variant_new_string("pid"));
                        g_variant_builder_add(&b, "{sv}", "pid", g_variant_new_uint32((guint32) cl->child));
                }
                g_dbus_connection_call(c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                                       g_variant_new("(stta{sv})", cl->held, (guint64) 0,
                                                     (guint64) g_rand_int_range(s->rand, 1, 9) * PS2M, &b),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS, NULL, on_reply, cl);
        }
        /* Some clients hang up while their call is in flight; the reply (or error) still comes back to us
         * through the closed connection's callback. Caller-bound reservations go with it. */
        if (g_rand_int_range(s->rand, 0, 50) == 0) {
                reconnect(cl);
                g_clear_pointer(&cl->held, g_free);
        }
        g_object_unref(c);
}

static guint64 status_field(pid_t pid, const char *field) {
        g_autofree char *path = g_strdup_printf("/proc/%d/status", (int) pid), *text = NULL;
        const char *p;

        if (!g_file_get_contents(path, &text, NULL, NULL) || !(p = strstr(text, field)))
                return 0;
        return g_ascii_strtoull(p + strlen(field), NULL, 10);
}

static guint64 count_fds(pid_t pid) {
        g_autofree char *path = g_strdup_printf("/proc/%d/fd", (int) pid);
        g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
        guint64 n = 0;

        while (d && g_dir_read_name(d))
                n++;
        return n;
}

static guint64 count_matches(GDBusConnection *c) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) owner = NULL, stats = NULL, dict = NULL;
        const char *unique;
        guint32 n = 0;

        owner = g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                            "GetNameOwner", g_variant_new("(s)", TEST_BUS_NAME), G_VARIANT_TYPE("(s)"),
                                            G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &e);
        if (!owner)
                return G_MAXUINT64;
        g_variant_get(owner, "(&s)", &unique);
        stats = g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats",
                                            g_variant_new("(s)", unique), G_VARIANT_TYPE("(a{sv})"),
                                            G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &e);
        if (!stats) {
                g_printerr("GetConnectionStats: %s\n", e->message);
                return G_MAXUINT64;
        }
        dict = g_variant_get_child_value(stats, 0);
        if (!g_variant_lookup(dict, "MatchRules", "u", &n))
                return G_MAXUINT64;
        return n;
}

static Sample sample(TestDaemon *d, GDBusConnection *c) {
        pid_t pid = test_daemon_pid(d);

        return (Sample) { status_field(pid, "VmRSS:"), count_fds(pid), count_matches(c) };
}

static void print_sample(const char *what, const Sample *x, guint64 calls) {
        g_print("%-8s RSS %" G_GUINT64_FORMAT " kB, fds %" G_GUINT64_FORMAT ", match rules %" G_GUINT64_FORMAT
                ", after %" G_GUINT64_FORMAT " calls\n", what, x->rss_kb, x->fds, x->matches, calls);
}

static gboolean flat(guint64 start, guint64 end, guint64 slack) {
        return end <= start + start / 10 + slack;
}

static void settle(Soak *s, gboolean stop) {
        gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

        s->stopping = TRUE;
        while (s->busy > 0 && g_get_monotonic_time() < deadline)
                g_main_context_iteration(NULL, TRUE);
        /* Lifetime ends (closed callers, killed processes) are noticed asynchronously. */
        g_usleep(500 * 1000);
        if (!stop) {
                s->stopping = FALSE;
                for (int i = 0; i < N_CLIENTS; i++)
                        client_next(&s->clients[i]);
        }
}

int main(int argc, char *argv[]) {
        static const char *const fk_args[] = { "--nodes=0,1", "--capacity=100000", NULL };
        static const HpTestParams params = {
                .fk_args = fk_args,
                .config = "[Daemon]\nMaxReservations=100000\n",
                .daemon_end = HP_DAEMON_END_MUST_RUN,
        };
        guint64 seconds = g_ascii_strtoull(g_getenv("HUGEPAGED_SOAK_SECONDS") ?: "600", NULL, 10);
        guint64 warmup = MIN(seconds / 10, 30);
        HpFixture hp = {};
        GDBusConnection *checker;
        TestDaemon *d;
        Soak s = { .rand = g_rand_new_with_seed(8) };
        Sample first, start, end;
        gint64 t0, until;
        gboolean ok;

        test_harness_init(&argc, &argv);
        if (!fake_kernel_available())
                return 77;
        hp_fixture_setup(&hp, &params);
        s.bus = hp.bus;
        d = hp.d;
        checker = hp.c;
        first = sample(d, checker);

        g_print("soak: %d clients for %" G_GUINT64_FORMAT " s (HUGEPAGED_SOAK_SECONDS), warm-up %" G_GUINT64_FORMAT
                " s\n", N_CLIENTS, seconds, warmup);
        print_sample("idle", &first, 0);
        for (int i = 0; i < N_CLIENTS; i++) {
                s.clients[i] = (Client) { .s = &s, .id = i, .c = test_bus_connect(s.bus) };
                client_next(&s.clients[i]);
        }
        t0 = g_get_monotonic_time();
        until = t0 + (gint64) warmup * G_USEC_PER_SEC;
        while (g_get_monotonic_time() < until)
                g_main_context_iteration(NULL, TRUE);
        settle(&s, FALSE);
        start = sample(d, checker);
        print_sample("start", &start, s.calls);

        until = t0 + (gint64) seconds * G_USEC_PER_SEC;
        while (g_get_monotonic_time() < until)
                g_main_context_iteration(NULL, TRUE);
        settle(&s, TRUE);
        end = sample(d, checker);
        print_sample("end", &end, s.calls);

        ok = flat(start.rss_kb, end.rss_kb, 1024) && flat(start.fds, end.fds, 4) && flat(start.matches, end.matches, 8);
        g_print("calls %" G_GUINT64_FORMAT " (%.0f/s), error replies %" G_GUINT64_FORMAT ", mid-call disconnects %"
                G_GUINT64_FORMAT ", bound processes killed %" G_GUINT64_FORMAT "\n", s.calls,
                (double) s.calls / (double) seconds, s.errors, s.disconnects, s.pid_kills);
        g_print("flat (end <= start*1.1 + 1 MiB RSS / 4 fds / 8 matches): %s\n", ok ? "yes" : "NO");

        for (int i = 0; i < N_CLIENTS; i++) {
                reap_holder(&s.clients[i]);
                (void) g_dbus_connection_close_sync(s.clients[i].c, NULL, NULL);
                g_object_unref(s.clients[i].c);
                g_free(s.clients[i].held);
        }
        hp_fixture_teardown(&hp, NULL);
        g_rand_free(s.rand);
        return 0;
}
