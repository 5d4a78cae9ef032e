/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Crash-consistency harness: random Reserve/Release traffic from several clients against the real daemon on
 * the FUSE kernel model, SIGKILL at chosen points (inside a slowed-down nr_hugepages write, while a state temp
 * file exists, right after the state file is renamed into place, at random), restart, and check that nothing
 * acknowledged was lost, nothing released came back, every pool sits at Floor + Reserved and no temp file is
 * left. HUGEPAGED_CRASH_SEED, HUGEPAGED_CRASH_OPS and HUGEPAGED_CRASH_KILLS override the defaults. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "hp-fixture.h"

#define PS2M (2ULL * 1024 * 1024)
#define PS1G (1024ULL * 1024 * 1024)
#define KB2M 2048ULL
#define KB1G 1048576ULL
#define MANAGER_PATH HP_BUS_PATH
#define MANAGER_IFACE HP_BUS_IFACE_MANAGER
#define RES_IFACE HP_BUS_IFACE_RESERVATION
#define N_NODES 2
#define N_CLIENTS 4
#define MAX_CALLER_CONNS 4
#define FLOOR_NODE0 5
/* The model expects a release to shrink at once, 1 GiB pools included (their default is to keep them). */
#define CONFIG "[Allocation]\nMaxAttempts=2\nTimeoutSec=10\n[Pool 1G]\nShrinkDelaySec=0\n"

typedef enum {
        ST_PENDING,     /* a call about it is outstanding */
        ST_HELD,        /* Reserve answered: must exist */
        ST_GONE,        /* never created (answered error) or Release answered: must not exist */
        ST_UNCERTAIN,   /* the daemon died before answering: either is fine, resolved at the next check */
        ST_MUST_GO,     /* its caller left or its process died: must be gone once the daemon noticed */
} EntryState;

typedef enum { LT_EXPLICIT, LT_CALLER, LT_PID } LifetimeKind;

typedef struct CallerConn {
        GDBusConnection *c;
        gboolean closed;
} CallerConn;

typedef struct Entry {
        char *name;
        EntryState st;
        LifetimeKind lt;
        guint64 page_size, pages;
        CallerConn *caller;
        GPid child;             /* LT_PID: the process it is bound to, 0 once killed and reaped */
} Entry;

typedef enum {
        KILL_NONE,
        KILL_RANDOM,            /* a random moment after the batch went out */
        KILL_KERNEL_WRITE,      /* while the daemon sits in a slow nr_hugepages write */
        KILL_STATE_WRITE,       /* when a .state.* temp file appears */
        KILL_AFTER_RENAME,      /* when the state file is renamed into place: before or during the reply */
        KILL_IDLE,
        _KILL_MAX,
} KillMode;

typedef struct Ctx {
        GRand *rand;
        HpFixture hp;           /* the fake kernel, bus, state dir, config and daemon */
        GDBusConnection *clients[N_CLIENTS];
        GDBusConnection *checker;
        GPtrArray *callers;     /* CallerConn* */
        GHashTable *entries;    /* name → Entry* */
        GPtrArray *entry_list;  /* Entry*, for random picks */
        guint outstanding;
        guint64 ops, kills, violations, lifetime_ends, checks;
        guint64 kills_by_mode[_KILL_MAX];
        guint64 confirmed_kernel_write, confirmed_state_write, uncertain_outcomes;
        guint seq;

        /* The inotify killer thread. */
        int inotify_fd, wake_fds[2];
        GThread *killer;
        volatile gint armed;    /* KILL_STATE_WRITE / KILL_AFTER_RENAME or 0 */
        volatile gint countdown;
        volatile gint fired;
        volatile gint target_pid;
} Ctx;

static void violation(Ctx *x, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void violation(Ctx *x, const char *fmt, ...) {
        va_list ap;
        g_autofree char *msg = NULL;

        va_start(ap, fmt);
        msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        x->violations++;
        g_printerr("VIOLATION (after %" G_GUINT64_FORMAT " kills, %" G_GUINT64_FORMAT " operations): %s\n", x->kills,
                   x->ops, msg);
}

static guint64 env_u64(const char *name, guint64 def) {
        const char *v = g_getenv(name);
        return v && *v ? g_ascii_strtoull(v, NULL, 0) : def;
}

/* ---- the killer thread: SIGKILL as soon as the daemon touches the state directory in the armed way ---- */

static gpointer killer_main(gpointer data) {
        Ctx *x = data;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

        for (;;) {
                struct pollfd p[2] = { { .fd = x->inotify_fd, .events = POLLIN },
                                       { .fd = x->wake_fds[0], .events = POLLIN } };
                ssize_t n;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return NULL;
                }
                if (p[1].revents)
                        return NULL;
                n = read(x->inotify_fd, buf, sizeof buf);
                if (n <= 0)
                        continue;
                for (char *q = buf; q < buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *) q;
                        gint mode = g_atomic_int_get(&x->armed);
                        gboolean match = FALSE;

                        q += sizeof(*ev) + ev->len;
                        if (mode == KILL_STATE_WRITE && (ev->mask & IN_CREATE) && ev->len > 0 &&
                            g_str_has_prefix(ev->name, ".state."))
                                match = TRUE;
                        if (mode == KILL_AFTER_RENAME && (ev->mask & IN_MOVED_TO) && ev->len > 0 &&
                            g_str_equal(ev->name, "state"))
                                match = TRUE;
                        if (match && g_atomic_int_dec_and_test(&x->countdown)) {
                                kill((pid_t) g_atomic_int_get(&x->target_pid), SIGKILL);
                                g_atomic_int_set(&x->armed, 0);
                                g_atomic_int_set(&x->fired, 1);
                        }
                }
        }
}

/* ---- daemon ---- */

static void daemon_start(Ctx *x) {
        hp_fixture_daemon_start(&x->hp);
        g_atomic_int_set(&x->target_pid, (gint) test_daemon_pid(x->hp.d));
}

static guint count_prefix(const char *dir, const char *prefix) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *n;
        guint k = 0;

        while (d && (n = g_dir_read_name(d)))
                k += g_str_has_prefix(n, prefix);
        return k;
}

/* Whether the daemon has a node's nr_hugepages open, i.e. sits inside the (slowed) kernel write. */
static gboolean daemon_in_kernel_write(pid_t pid) {
        g_autofree char *fddir = g_strdup_printf("/proc/%d/fd", (int) pid);
        g_autoptr(GDir) d = g_dir_open(fddir, 0, NULL);
        const char *n;

        while (d && (n = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(fddir, n, NULL);
                g_autofree char *target = g_file_read_link(p, NULL);

                if (target && g_str_has_prefix(target, "/") && strstr(target, "/nr_hugepages"))
                        return TRUE;
        }
        return FALSE;
}

static void iterate(void) {
        while (g_main_context_iteration(NULL, FALSE))
                ;
}

static void run_until_idle(Ctx *x, guint timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        while (x->outstanding > 0 && g_get_monotonic_time() < deadline) {
                iterate();
                g_usleep(500);
        }
        if (x->outstanding > 0)
                violation(x, "%u calls still unanswered after %u ms", x->outstanding, timeout_ms);
}

/* SIGKILL (if the killer thread didn't already) and reap; the daemon must not have died of anything else. */
static void daemon_crash(Ctx *x, KillMode mode) {
        int status;

        test_daemon_kill(x->hp.d, SIGKILL);
        status = test_daemon_exit_status(x->hp.d);
        if (status != 128 + SIGKILL)
                violation(x, "daemon exited with status %d, not by our SIGKILL", status);
        if (count_prefix(x->hp.state_dir, ".state.") > 0)
                x->confirmed_state_write++;
        g_clear_pointer(&x->hp.d, test_daemon_free);
        x->kills++;
        x->kills_by_mode[mode]++;
}

/* ---- calls ---- */

typedef struct Op {
        Ctx *x;
        Entry *e;
        gboolean release;
} Op;

static gboolean error_is_answer(const GError *error) {
        g_autofree char *remote = g_dbus_error_get_remote_error(error);

        /* The daemon's own verdicts; NoReply, ServiceUnknown, Disconnected etc. say nothing about the outcome. */
        return remote && (g_str_has_prefix(remote, "org.hugepaged1.Error.") ||
                          g_str_equal(remote, "org.freedesktop.DBus.Error.InvalidArgs"));
}

static void on_reply(GObject *source, GAsyncResult *res, gpointer user_data) {
        Op *op = user_data;
        Ctx *x = op->x;
        Entry *e = op->e;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

        x->outstanding--;
        if (e->st == ST_PENDING) {
                if (reply)
                        e->st = op->release ? ST_GONE : ST_HELD;
                else if (op->release && error_is_answer(error)) {
                        violation(x, "Release(%s) of a held reservation failed: %s", e->name, error->message);
                        e->st = ST_UNCERTAIN;
                } else if (!op->release && error_is_answer(error))
                        e->st = ST_GONE;
                else {
                        e->st = ST_UNCERTAIN;
                        x->uncertain_outcomes++;
                }
        }
        /* A lifetime end while the call was out: the entry is already ST_MUST_GO and stays so. */
        g_free(op);
}

static GPid spawn_holder(void) {
        pid_t parent = getpid();
        pid_t pid = fork();

        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(1);
                /* Our copies of the bus sockets would keep closed caller connections alive on the bus. */
                if (close_range(3, ~0U, 0) < 0)
                        _exit(1);
                for (;;)
                        pause();
        }
        return pid;
}

static void kill_holder(GPid pid) {
        int status;

        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, &status, 0);
}

static GDBusConnection *pick_client(Ctx *x) {
        return x->clients[g_rand_int_range(x->rand, 0, N_CLIENTS)];
}

static CallerConn *pick_caller(Ctx *x) {
        guint open = 0;

        for (guint i = 0; i < x->callers->len; i++)
                open += !((CallerConn *) g_ptr_array_index(x->callers, i))->closed;
        if (open < MAX_CALLER_CONNS || g_rand_int_range(x->rand, 0, 8) == 0) {
                CallerConn *cc = g_new0(CallerConn, 1);
                cc->c = test_bus_connect(x->hp.bus);
                g_ptr_array_add(x->callers, cc);
                return cc;
        }
        for (;;) {
                CallerConn *cc = g_ptr_array_index(x->callers, g_rand_int_range(x->rand, 0, (gint) x->callers->len));
                if (!cc->closed)
                        return cc;
        }
}

static void issue_reserve(Ctx *x) {
        g_autofree char *name = g_strdup_printf("crash-%u", ++x->seq);
        GVariantBuilder b;
        Entry *e = g_new0(Entry, 1);
        GDBusConnection *c;
        guint64 ps = g_rand_int_range(x->rand, 0, 8) == 0 ? PS1G : PS2M;
        guint64 pages = ps == PS1G ? (guint64) g_rand_int_range(x->rand, 1, 3) : (guint64) g_rand_int_range(x->rand, 1, 33);
        guint64 bytes = pages * ps;
        int where = g_rand_int_range(x->rand, 0, 10);
        Op *op = g_new0(Op, 1);

        e->name = g_strdup(name);
        e->page_size = ps;
        e->pages = pages;
        e->st = ST_PENDING;
        e->lt = (LifetimeKind) g_rand_int_range(x->rand, 0, 3);

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        if (where <= 2) {
                guint32 n = (guint32) g_rand_int_range(x->rand, 0, N_NODES);
                g_variant_builder_add(&b, "{sv}", "nodes", g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, &n, 1,
                                                                                     sizeof(n)));
        } else if (where <= 4) {
                guint32 n[] = { 0, 1 };
                g_variant_builder_add(&b, "{sv}", "nodes", g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, n, 2,
                                                                                     sizeof(n[0])));
        } else if (where <= 6 && pages >= 2) {
                /* Split over both nodes exactly. */
                guint64 a = (guint64) g_rand_int_range(x->rand, 1, (gint) pages);
                bytes = 0;
                g_variant_builder_add(&b, "{sv}", "node_bytes",
                                      g_variant_new_parsed("[(uint32 0, %t), (uint32 1, %t)]", a * ps, (pages - a) * ps));
        } else if (where == 7) {
                /* A node that doesn't exist: NoSuchNode, and nothing may change. */
                guint32 n = 7;
                g_variant_builder_add(&b, "{sv}", "nodes", g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, &n, 1,
                                                                                     sizeof(n)));
        }
        /* else: anywhere */

        c = pick_client(x);
        if (e->lt == LT_CALLER) {
                e->caller = pick_caller(x);
                c = e->caller->c;
                g_variant_builder_add(&b, "{sv}", "lifetime", g_variant_new_string("caller"));
        } else if (e->lt == LT_PID) {
                e->child = spawn_holder();
                g_variant_builder_add(&b, "{sv}", "lifetime", g_variant_new_string("pid"));
                g_variant_builder_add(&b, "{sv}", "pid", g_variant_new_uint32((guint32) e->child));
        }

        g_hash_table_insert(x->entries, e->name, e);
        g_ptr_array_add(x->entry_list, e);
        op->x = x;
        op->e = e;
        x->outstanding++;
        x->ops++;
        g_dbus_connection_call(c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                               g_variant_new("(stta{sv})", name, (guint64) (g_rand_boolean(x->rand) && ps == PS2M ? 0 : ps),
                                             bytes, &b),
                               G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS, NULL, on_reply, op);
}

static Entry *pick_held(Ctx *x) {
        g_autoptr(GPtrArray) held = g_ptr_array_new();

        for (guint i = 0; i < x->entry_list->len; i++) {
                Entry *e = g_ptr_array_index(x->entry_list, i);
                if (e->st == ST_HELD)
                        g_ptr_array_add(held, e);
        }
        if (held->len == 0)
                return NULL;
        return g_ptr_array_index(held, g_rand_int_range(x->rand, 0, (gint) held->len));
}

static void issue_release(Ctx *x) {
        Entry *e = pick_held(x);
        Op *op;

        if (!e) {
                issue_reserve(x);
                return;
        }
        op = g_new0(Op, 1);
        op->x = x;
        op->e = e;
        op->release = TRUE;
        e->st = ST_PENDING;
        x->outstanding++;
        x->ops++;
        g_dbus_connection_call(pick_client(x), TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Release",
                               g_variant_new("(s)", e->name), G_VARIANT_TYPE("()"), G_DBUS_CALL_FLAGS_NONE,
                               TEST_CALL_TIMEOUT_MS, NULL, on_reply, op);
}

static void issue_batch(Ctx *x, guint n) {
        guint held = 0;

        for (guint i = 0; i < x->entry_list->len; i++)
                held += ((Entry *) g_ptr_array_index(x->entry_list, i))->st == ST_HELD;
        for (guint i = 0; i < n; i++) {
                /* Keep the population around 30 so both kinds stay frequent. */
                if (g_rand_int_range(x->rand, 0, 60) < (gint) held)
                        issue_release(x);
                else
                        issue_reserve(x);
        }
}

/* ---- lifetime ends we cause ---- */

static void end_some_lifetimes(Ctx *x) {
        /* Close a caller connection: all its reservations must go. */
        if (x->callers->len > 0 && g_rand_int_range(x->rand, 0, 3) == 0) {
                CallerConn *cc = g_ptr_array_index(x->callers, g_rand_int_range(x->rand, 0, (gint) x->callers->len));
                if (!cc->closed) {
                        (void) g_dbus_connection_close_sync(cc->c, NULL, NULL);
                        cc->closed = TRUE;
                        x->lifetime_ends++;
                        for (guint i = 0; i < x->entry_list->len; i++) {
                                Entry *e = g_ptr_array_index(x->entry_list, i);
                                if (e->caller == cc && e->st != ST_GONE)
                                        e->st = ST_MUST_GO;
                        }
                }
        }
        /* Kill a few bound processes. */
        for (guint i = 0; i < x->entry_list->len; i++) {
                Entry *e = g_ptr_array_index(x->entry_list, i);
                if (e->lt == LT_PID && e->child > 0 && e->st != ST_GONE && g_rand_int_range(x->rand, 0, 6) == 0) {
                        kill_holder(e->child);
                        e->child = 0;
                        e->st = ST_MUST_GO;
                        x->lifetime_ends++;
                }
        }
}

/* Processes of reservations that are known gone are not needed any more. */
static void reap_unneeded(Ctx *x) {
        for (guint i = 0; i < x->entry_list->len; i++) {
                Entry *e = g_ptr_array_index(x->entry_list, i);
                if (e->st == ST_GONE && e->child > 0) {
                        kill_holder(e->child);
                        e->child = 0;
                }
        }
}

/* ---- invariants ---- */

typedef struct Listed {
        guint64 page_size, pages;
        guint64 node_pages[N_NODES];
} Listed;

/* name → Listed* from GetManagedObjects; NULL if the call fails. */
static GHashTable *list_reservations(Ctx *x) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL, objs = NULL;
        GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        GVariantIter it;
        const char *path;
        GVariant *ifaces;

        reply = test_call(x->checker, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", NULL,
                          G_VARIANT_TYPE("(a{oa{sa{sv}}})"), &error);
        if (!reply) {
                violation(x, "GetManagedObjects failed: %s", error->message);
                g_hash_table_unref(h);
                return NULL;
        }
        objs = g_variant_get_child_value(reply, 0);
        g_variant_iter_init(&it, objs);
        while (g_variant_iter_next(&it, "{&o@a{sa{sv}}}", &path, &ifaces)) {
                g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, RES_IFACE, G_VARIANT_TYPE("a{sv}"));
                g_autoptr(GVariant) np = NULL;
                const char *name = NULL;
                Listed *l;

                g_variant_unref(ifaces);
                if (!props)
                        continue;
                l = g_new0(Listed, 1);
                g_assert_true(g_variant_lookup(props, "Name", "&s", &name));
                g_assert_true(g_variant_lookup(props, "PageSize", "t", &l->page_size));
                g_assert_true(g_variant_lookup(props, "Pages", "t", &l->pages));
                np = g_variant_lookup_value(props, "NodePages", G_VARIANT_TYPE("a(ut)"));
                g_assert_nonnull(np);
                for (gsize i = 0; i < g_variant_n_children(np); i++) {
                        guint32 node;
                        guint64 pages;
                        g_variant_get_child(np, i, "(ut)", &node, &pages);
                        if (node >= N_NODES)
                                violation(x, "reservation %s holds pages on node %u, which doesn't exist", name, node);
                        else
                                l->node_pages[node] += pages;
                }
                g_hash_table_insert(h, g_strdup(name), l);
        }
        return h;
}

static void check_invariants(Ctx *x) {
        g_autoptr(GHashTable) listed = NULL;
        g_autoptr(GVariant) pools = NULL;
        g_autoptr(GError) error = NULL;
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        GHashTableIter hit;
        gpointer k, v;
        guint64 reserved[2][N_NODES] = {};

        x->checks++;
        /* Lifetime ends are noticed asynchronously (pidfd, NameOwnerChanged): give them time. */
        for (;;) {
                gboolean waiting = FALSE;

                g_clear_pointer(&listed, g_hash_table_unref);
                listed = list_reservations(x);
                if (!listed)
                        return;
                for (guint i = 0; i < x->entry_list->len && !waiting; i++) {
                        Entry *e = g_ptr_array_index(x->entry_list, i);
                        waiting = e->st == ST_MUST_GO && g_hash_table_contains(listed, e->name);
                }
                if (!waiting || g_get_monotonic_time() > deadline)
                        break;
                iterate();
                g_usleep(10000);
        }

        for (guint i = 0; i < x->entry_list->len; i++) {
                Entry *e = g_ptr_array_index(x->entry_list, i);
                Listed *l = g_hash_table_lookup(listed, e->name);

                switch (e->st) {
                case ST_HELD:
                        if (!l)
                                violation(x, "acknowledged reservation %s is lost", e->name);
                        break;
                case ST_GONE:
                        if (l)
                                violation(x, "released or refused reservation %s exists", e->name);
                        break;
                case ST_MUST_GO:
                        if (l)
                                violation(x, "reservation %s outlived its %s", e->name,
                                          e->lt == LT_PID ? "process" : "caller");
                        e->st = ST_GONE;
                        break;
                case ST_UNCERTAIN:
                        e->st = l ? ST_HELD : ST_GONE;
                        break;
                case ST_PENDING:
                        violation(x, "check with %s still pending", e->name);
                        break;
                }
                if (l && (l->page_size != e->page_size || l->pages != e->pages))
                        violation(x, "reservation %s has %" G_GUINT64_FORMAT " pages of %" G_GUINT64_FORMAT
                                  ", asked for %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT, e->name, l->pages,
                                  l->page_size, e->pages, e->page_size);
        }
        g_hash_table_iter_init(&hit, listed);
        while (g_hash_table_iter_next(&hit, &k, &v)) {
                Listed *l = v;
                int s = l->page_size == PS1G ? 1 : 0;

                if (!g_hash_table_contains(x->entries, k))
                        violation(x, "unknown reservation %s appeared", (const char *) k);
                for (int n = 0; n < N_NODES; n++)
                        reserved[s][n] += l->node_pages[n];
        }

        /* A release replies (and its object goes) before the pool has shrunk when the shrink runs in a worker:
         * wait for the pools to settle before holding the kernel to Floor + Reserved. */
        for (;;) {
                gboolean settled = TRUE;
                g_autoptr(GVariant) p = test_call(x->checker, MANAGER_PATH, MANAGER_IFACE, "ListPools", NULL,
                                                  G_VARIANT_TYPE("(a(tittttt))"), NULL);
                if (p) {
                        g_autoptr(GVariantIter) it = NULL;
                        guint64 ps, nr, fr, surplus, res, floor;
                        gint32 node;
                        g_variant_get(p, "(a(tittttt))", &it);
                        while (g_variant_iter_next(it, "(tittttt)", &ps, &node, &nr, &fr, &surplus, &res, &floor))
                                if (node >= 0 && node < N_NODES &&
                                    fake_kernel_get(x->hp.fk, node, ps / 1024, "nr") -
                                    fake_kernel_get(x->hp.fk, node, ps / 1024, "surplus") != floor + res)
                                        settled = FALSE;
                }
                if (settled || g_get_monotonic_time() > deadline)
                        break;
                iterate();
                g_usleep(10000);
        }

        pools = test_call(x->checker, MANAGER_PATH, MANAGER_IFACE, "ListPools", NULL, G_VARIANT_TYPE("(a(tittttt))"),
                          &error);
        if (!pools) {
                violation(x, "ListPools failed: %s", error->message);
        } else {
                g_autoptr(GVariantIter) it = NULL;
                guint64 ps, nr, fr, surplus, res, floor;
                gint32 node;
                guint seen = 0;

                g_variant_get(pools, "(a(tittttt))", &it);
                while (g_variant_iter_next(it, "(tittttt)", &ps, &node, &nr, &fr, &surplus, &res, &floor)) {
                        int s = ps == PS1G ? 1 : 0;
                        guint64 kb = ps / 1024, knr, ksurplus, want_floor;

                        if (node < 0)
                                continue;
                        seen++;
                        if (node >= N_NODES) {
                                violation(x, "unexpected pool on node %d", node);
                                continue;
                        }
                        knr = fake_kernel_get(x->hp.fk, node, kb, "nr");
                        ksurplus = fake_kernel_get(x->hp.fk, node, kb, "surplus");
                        want_floor = s == 0 && node == 0 ? FLOOR_NODE0 : 0;
                        if (floor != want_floor)
                                violation(x, "pool %" G_GUINT64_FORMAT "kB node %d: Floor %" G_GUINT64_FORMAT
                                          ", expected %" G_GUINT64_FORMAT " (the daemon's own work taken for someone "
                                          "else's)", kb, node, floor, want_floor);
                        if (res != reserved[s][node])
                                violation(x, "pool %" G_GUINT64_FORMAT "kB node %d: Reserved %" G_GUINT64_FORMAT
                                          " but the reservations hold %" G_GUINT64_FORMAT, kb, node, res,
                                          reserved[s][node]);
                        if (knr - ksurplus != floor + res)
                                violation(x, "pool %" G_GUINT64_FORMAT "kB node %d: the kernel has %" G_GUINT64_FORMAT
                                          " persistent pages, Floor + Reserved is %" G_GUINT64_FORMAT, kb, node,
                                          knr - ksurplus, floor + res);
                }
                if (seen != 2 * N_NODES)
                        violation(x, "ListPools listed %u pools, expected %d", seen, 2 * N_NODES);
        }

        /* The running daemon may be writing the state right now (a lifetime end, a shrink finishing in a
         * worker): a temp file seen once is work in progress; one that stays past the deadline is left behind. */
        while (count_prefix(x->hp.state_dir, ".state.") > 0 && g_get_monotonic_time() <= deadline)
                g_usleep(10000);
        if (count_prefix(x->hp.state_dir, ".state.") > 0)
                violation(x, "a temporary state file is left in %s", x->hp.state_dir);
        if (count_prefix(x->hp.state_dir, "state.corrupt-") > 0)
                violation(x, "a crash left a state file the daemon called damaged");
        reap_unneeded(x);
}

/* ---- one round ---- */

static void round_run(Ctx *x, KillMode mode) {
        guint batch = (guint) g_rand_int_range(x->rand, 1, 9);
        guint delay = 0;

        if (mode == KILL_KERNEL_WRITE) {
                delay = (guint) g_rand_int_range(x->rand, 80, 250);
                batch = (guint) g_rand_int_range(x->rand, 1, 4);
                fake_kernel_control(x->hp.fk, "delay_ms %u", delay);
        }
        if (mode == KILL_STATE_WRITE || mode == KILL_AFTER_RENAME) {
                g_atomic_int_set(&x->fired, 0);
                /* Which save to hit: every request writes the state file once or twice. */
                g_atomic_int_set(&x->countdown, g_rand_int_range(x->rand, 1, (gint) batch * 2 + 1));
                g_atomic_int_set(&x->armed, mode);
        }

        if (mode != KILL_IDLE)
                issue_batch(x, batch);

        switch (mode) {
        case KILL_NONE:
                run_until_idle(x, 60000);
                return;
        case KILL_RANDOM: {
                gint64 until = g_get_monotonic_time() + g_rand_int_range(x->rand, 0, 40000);
                while (g_get_monotonic_time() < until && x->outstanding > 0) {
                        iterate();
                        g_usleep(200);
                }
                break;
        }
        case KILL_KERNEL_WRITE: {
                gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
                gboolean inside = FALSE;
                while (g_get_monotonic_time() < deadline && x->outstanding > 0 &&
                       !(inside = daemon_in_kernel_write(test_daemon_pid(x->hp.d)))) {
                        iterate();
                        g_usleep(300);
                }
                if (inside) {
                        g_usleep((gulong) g_rand_int_range(x->rand, 0, (gint) delay * 800));
                        x->confirmed_kernel_write++;
                }
                break;
        }
        case KILL_STATE_WRITE:
        case KILL_AFTER_RENAME: {
                gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
                while (!g_atomic_int_get(&x->fired) && x->outstanding > 0 && g_get_monotonic_time() < deadline) {
                        iterate();
                        g_usleep(200);
                }
                g_atomic_int_set(&x->armed, 0);
                break;
        }
        case KILL_IDLE:
        case _KILL_MAX:
                break;
        }

        daemon_crash(x, mode);
        /* A write the model is still sleeping in lands before this returns: the control file waits for it,
         * as a real kernel finishes a store() before the killed writer is gone. */
        fake_kernel_control(x->hp.fk, "delay_ms 0");
        run_until_idle(x, 30000);
        if (g_rand_boolean(x->rand))
                end_some_lifetimes(x);
        daemon_start(x);
        check_invariants(x);
}

static void test_crash(void) {
        static const char *const floor_node0[] = { "set_nr 0 2048 " G_STRINGIFY(FLOOR_NODE0), NULL };
        static const HpTestParams params = {
                .fk_control = floor_node0,
                .config = CONFIG,
                .no_daemon = TRUE,
        };
        guint64 seed = env_u64("HUGEPAGED_CRASH_SEED", 20240608);
        guint64 want_ops = env_u64("HUGEPAGED_CRASH_OPS", 1000), want_kills = env_u64("HUGEPAGED_CRASH_KILLS", 50);
        gint64 start = g_get_monotonic_time();
        Ctx ctx = {}, *x = &ctx;

        if (!fake_kernel_available()) {
                g_test_skip("no /dev/fuse");
                return;
        }
        g_print("crash harness: seed=%" G_GUINT64_FORMAT " (HUGEPAGED_CRASH_SEED), operations>=%" G_GUINT64_FORMAT
                ", kills>=%" G_GUINT64_FORMAT "\n", seed, want_ops, want_kills);
        x->rand = g_rand_new_with_seed((guint32) seed);
        x->entries = g_hash_table_new(g_str_hash, g_str_equal);
        x->entry_list = g_ptr_array_new();
        x->callers = g_ptr_array_new();

        /* The daemon starts once the killer thread watches the state directory. */
        hp_fixture_setup(&x->hp, &params);

        x->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        g_assert_cmpint(x->inotify_fd, >=, 0);
        g_assert_cmpint(inotify_add_watch(x->inotify_fd, x->hp.state_dir, IN_CREATE | IN_MOVED_TO), >=, 0);
        g_assert_cmpint(pipe2(x->wake_fds, O_CLOEXEC), ==, 0);
        x->killer = g_thread_new("killer", killer_main, x);

        for (int i = 0; i < N_CLIENTS; i++)
                x->clients[i] = test_bus_connect(x->hp.bus);
        x->checker = test_bus_connect(x->hp.bus);
        daemon_start(x);
        check_invariants(x);

        while (x->ops < want_ops || x->kills < want_kills) {
                KillMode mode = KILL_NONE;

                /* About one round in four ends in a kill, spread over the modes. */
                if (g_rand_int_range(x->rand, 0, 4) == 0 || (x->ops >= want_ops && x->kills < want_kills))
                        mode = (KillMode) g_rand_int_range(x->rand, KILL_RANDOM, _KILL_MAX);
                round_run(x, mode);
                if (mode == KILL_NONE) {
                        if (g_rand_int_range(x->rand, 0, 4) == 0)
                                end_some_lifetimes(x);
                        if (g_rand_int_range(x->rand, 0, 3) == 0)
                                check_invariants(x);
                }
                if (x->violations > 20)
                        break;
        }
        end_some_lifetimes(x);
        check_invariants(x);

        g_print("kill points: random=%" G_GUINT64_FORMAT " kernel-write=%" G_GUINT64_FORMAT " (inside the write: %"
                G_GUINT64_FORMAT ") state-write=%" G_GUINT64_FORMAT " after-rename=%" G_GUINT64_FORMAT " idle=%"
                G_GUINT64_FORMAT "; kills with a temp state file on disk: %" G_GUINT64_FORMAT "\n",
                x->kills_by_mode[KILL_RANDOM], x->kills_by_mode[KILL_KERNEL_WRITE], x->confirmed_kernel_write,
                x->kills_by_mode[KILL_STATE_WRITE], x->kills_by_mode[KILL_AFTER_RENAME], x->kills_by_mode[KILL_IDLE],
                x->confirmed_state_write);
        g_print("calls cut off by a kill: %" G_GUINT64_FORMAT "; lifetime ends caused: %" G_GUINT64_FORMAT
                "; invariant checks: %" G_GUINT64_FORMAT "; %.1f s\n", x->uncertain_outcomes, x->lifetime_ends,
                x->checks, (double) (g_get_monotonic_time() - start) / G_USEC_PER_SEC);
        g_print("kills=%" G_GUINT64_FORMAT " operations=%" G_GUINT64_FORMAT " violations=%" G_GUINT64_FORMAT "\n",
                x->kills, x->ops, x->violations);

        /* Tear down. */
        {
                char c = 0;
                while (write(x->wake_fds[1], &c, 1) < 0 && errno == EINTR)
                        ;
                g_thread_join(x->killer);
                close(x->wake_fds[0]);
                close(x->wake_fds[1]);
                close(x->inotify_fd);
        }
        if (x->violations > 0)
                g_test_fail();
        if (test_daemon_is_running(x->hp.d))
                g_assert_cmpint(test_daemon_stop(x->hp.d), ==, 0);
        g_clear_pointer(&x->hp.d, test_daemon_free);
        for (guint i = 0; i < x->entry_list->len; i++) {
                Entry *e = g_ptr_array_index(x->entry_list, i);
                if (e->child > 0)
                        kill_holder(e->child);
                g_free(e->name);
                g_free(e);
        }
        for (guint i = 0; i < x->callers->len; i++) {
                CallerConn *cc = g_ptr_array_index(x->callers, i);
                if (!cc->closed)
                        (void) g_dbus_connection_close_sync(cc->c, NULL, NULL);
                g_object_unref(cc->c);
                g_free(cc);
        }
        for (int i = 0; i < N_CLIENTS; i++) {
                (void) g_dbus_connection_close_sync(x->clients[i], NULL, NULL);
                g_object_unref(x->clients[i]);
        }
        (void) g_dbus_connection_close_sync(x->checker, NULL, NULL);
        g_object_unref(x->checker);
        if (x->violations > 0)
                g_printerr("keeping %s for inspection\n", x->hp.dir);
        hp_fixture_teardown(&x->hp, NULL);
        g_ptr_array_unref(x->entry_list);
        g_ptr_array_unref(x->callers);
        g_hash_table_unref(x->entries);
        g_rand_free(x->rand);
        g_assert_cmpuint(ctx.violations, ==, 0);
}

int main(int argc, char *argv[]) {
        test_harness_init(&argc, &argv);
        g_test_add_func("/crash/random-kills", test_crash);
        return g_test_run();
}
