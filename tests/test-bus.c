/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus tests: the real hugepaged binary on a private dbus-daemon that loads the project's policy, over the FUSE
 * model of the kernel. Every case checks exact values: pages in the model, properties, error names, signals. */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "bus-harness.h"
#include "fake-kernel-launch.h"

#define PS2M (2ULL * 1024 * 1024)
#define PS1G (1024ULL * 1024 * 1024)
#define KB2M 2048
#define KB1G 1048576

#define MANAGER_PATH "/org/hugepaged1"
#define MANAGER_IFACE "org.hugepaged1.Manager"
#define POOL_IFACE "org.hugepaged1.Pool"
#define RES_IFACE "org.hugepaged1.Reservation"
#define RES_PREFIX "/org/hugepaged1/reservation/"
#define NODE0_PATH "/org/hugepaged1/pool/2048kB/node0"
#define NODE1_PATH "/org/hugepaged1/pool/2048kB/node1"
#define PROPS_IFACE "org.freedesktop.DBus.Properties"
#define OM_IFACE "org.freedesktop.DBus.ObjectManager"

#define E_INSUFFICIENT "org.hugepaged1.Error.InsufficientPages"
#define E_UNSUPPORTED "org.hugepaged1.Error.UnsupportedPageSize"
#define E_NO_NODE "org.hugepaged1.Error.NoSuchNode"
#define E_NO_RES "org.hugepaged1.Error.NoSuchReservation"
#define E_EXISTS "org.hugepaged1.Error.ReservationExists"
#define E_LIMIT "org.hugepaged1.Error.LimitExceeded"
#define E_INVALID "org.freedesktop.DBus.Error.InvalidArgs"

#define DEFAULT_CONFIG "[Allocation]\nMaxAttempts=3\nTimeoutSec=10\n"
#define WAIT_MS 10000

/* ---- fixture ---- */

typedef struct Params {
        const char *config;     /* contents of hugepaged.conf; NULL: DEFAULT_CONFIG */
        const char *const *pre; /* fake-kernel control commands run before the daemon starts */
        gboolean no_daemon;     /* the test starts the daemon itself */
} Params;

typedef struct Fixture {
        const Params *params;
        FakeKernel *fk;
        TestBus *bus;
        char *dir;
        char *state_dir;
        char *config;
        TestDaemon *d;
        GDBusConnection *c;
} Fixture;

static void daemon_start(Fixture *f) {
        g_assert_null(f->d);
        f->d = test_daemon_start(f->bus, fake_kernel_root(f->fk), f->state_dir, f->config, NULL);
}

/* Ends the daemon with sig (SIGTERM: must exit 0) and forgets it. */
static void daemon_end(Fixture *f, int sig) {
        g_assert_nonnull(f->d);
        if (sig == SIGTERM)
                g_assert_cmpint(test_daemon_stop(f->d), ==, 0);
        else {
                test_daemon_kill(f->d, sig);
                g_assert_cmpint(test_daemon_exit_status(f->d), ==, 128 + sig);
        }
        g_clear_pointer(&f->d, test_daemon_free);
}

static void setup(Fixture *f, gconstpointer data) {
        static const char *const fk_args[] = { "--nodes=0,1", NULL };
        static const Params defaults = {};

        f->params = data ? data : &defaults;
        f->fk = fake_kernel_start(fk_args);
        for (const char *const *cmd = f->params->pre; cmd && *cmd; cmd++)
                fake_kernel_control(f->fk, "%s", *cmd);
        f->bus = test_bus_start();
        f->dir = test_tmpdir("hugepaged-test-bus-XXXXXX");
        f->state_dir = g_build_filename(f->dir, "state", NULL);
        g_assert_cmpint(g_mkdir(f->state_dir, 0755), ==, 0);
        f->config = g_build_filename(f->dir, "hugepaged.conf", NULL);
        g_assert_true(g_file_set_contents(f->config, f->params->config ?: DEFAULT_CONFIG, -1, NULL));
        f->c = test_bus_connect(f->bus);
        if (!f->params->no_daemon)
                daemon_start(f);
}

static void teardown(Fixture *f, gconstpointer data) {
        if (f->c) {
                (void) g_dbus_connection_close_sync(f->c, NULL, NULL);
                g_clear_object(&f->c);
        }
        if (f->d) {
                /* A daemon that ought to be running must stop cleanly on SIGTERM. */
                if (test_daemon_is_running(f->d))
                        g_assert_cmpint(test_daemon_stop(f->d), ==, 0);
                g_clear_pointer(&f->d, test_daemon_free);
        }
        g_clear_pointer(&f->bus, test_bus_stop);
        g_clear_pointer(&f->fk, fake_kernel_stop);
        if (!test_failed())
                test_rm_rf(f->dir);
        g_free(f->dir);
        g_free(f->state_dir);
        g_free(f->config);
}

/* ---- helpers ---- */

static int strcmp_indirect(gconstpointer a, gconstpointer b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Drains the default main context once, then sleeps a little; for polling loops. */
static void tick(void) {
        while (g_main_context_iteration(NULL, FALSE))
                ;
        g_usleep(5000);
}

/* Polls cond for up to ms; on timeout fails with the condition's text. */
#define WAIT_FOR(cond, ms)                                                                              \
        G_STMT_START {                                                                                  \
                gint64 _deadline = g_get_monotonic_time() + (gint64) (ms) * 1000;                       \
                while (!(cond)) {                                                                       \
                        if (g_get_monotonic_time() > _deadline) {                                       \
                                g_assert_true(cond);                                                    \
                                break;                                                                  \
                        }                                                                               \
                        tick();                                                                         \
                }                                                                                       \
        } G_STMT_END

static guint64 nr(Fixture *f, int node, guint64 kb) {
        return fake_kernel_get(f->fk, node, kb, "nr");
}

/* All four pools of the model, for "nothing changed" checks. */
static char *kernel_snapshot(Fixture *f) {
        return g_strdup_printf("2M: %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " surplus %" G_GUINT64_FORMAT
                               "/%" G_GUINT64_FORMAT "; 1G: %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT,
                               nr(f, 0, KB2M), nr(f, 1, KB2M), fake_kernel_get(f->fk, 0, KB2M, "surplus"),
                               fake_kernel_get(f->fk, 1, KB2M, "surplus"), nr(f, 0, KB1G), nr(f, 1, KB1G));
}

/* How often the daemon wrote each node's 2M nr_hugepages. */
static char *writes_str(Fixture *f) {
        return g_strdup_printf("%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
                               fake_kernel_get(f->fk, 0, KB2M, "writes"), fake_kernel_get(f->fk, 1, KB2M, "writes"));
}

static void assert_dbus_error(const GError *e, const char *name) {
        g_autofree char *remote = NULL;

        g_assert_nonnull(e);
        remote = g_dbus_error_get_remote_error(e);
        if (g_strcmp0(remote, name) != 0)
                g_test_message("expected %s, got: %s", name, e->message);
        g_assert_cmpstr(remote, ==, name);
}

static GVariant *call_ok(GDBusConnection *c, const char *path, const char *iface, const char *method,
                         GVariant *args, const char *reply_type) {
        g_autoptr(GError) e = NULL;
        GVariant *reply = test_call(c, path, iface, method, args, reply_type ? G_VARIANT_TYPE(reply_type) : NULL,
                                    &e);

        g_assert_no_error(e);
        g_assert_nonnull(reply);
        return reply;
}

static GError *call_fails(GDBusConnection *c, const char *path, const char *iface, const char *method,
                          GVariant *args, const char *error_name) {
        g_autoptr(GVariant) reply = NULL;
        GError *e = NULL;

        reply = test_call(c, path, iface, method, args, NULL, &e);
        g_assert_null(reply);
        assert_dbus_error(e, error_name);
        return e;
}

/* Reserve(name, page_size, bytes, options); options NULL is {}. Returns the path or NULL with error set. */
static char *reserve(GDBusConnection *c, const char *name, guint64 ps, guint64 bytes, GVariant *options,
                     GError **error) {
        g_autoptr(GVariant) reply = NULL;
        char *path = NULL;

        if (!options)
                options = g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
        reply = test_call(c, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                          g_variant_new("(stt@a{sv})", name, ps, bytes, options), G_VARIANT_TYPE("(o)"), error);
        if (reply)
                g_variant_get(reply, "(o)", &path);
        return path;
}

static char *reserve_ok(GDBusConnection *c, const char *name, guint64 ps, guint64 bytes, GVariant *options) {
        g_autoptr(GError) e = NULL;
        char *path = reserve(c, name, ps, bytes, options, &e);

        g_assert_no_error(e);
        g_assert_nonnull(path);
        return path;
}

static GError *reserve_fails(GDBusConnection *c, const char *name, guint64 ps, guint64 bytes, GVariant *options,
                             const char *error_name) {
        g_autofree char *path = NULL;
        GError *e = NULL;

        path = reserve(c, name, ps, bytes, options, &e);
        g_assert_null(path);
        assert_dbus_error(e, error_name);
        return e;
}

static void release_ok(GDBusConnection *c, const char *name) {
        g_autoptr(GVariant) r = NULL;

        r = call_ok(c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", name), "()");
}

/* An options dictionary in GVariant text format, e.g. "{'nodes': <[uint32 1]>}". */

/* What sd_bus_path_encode() makes of a name: every byte but [A-Za-z] and non-leading [0-9] as _xx. */
static char *res_path(const char *name) {
        GString *s = g_string_new(RES_PREFIX);

        if (!*name)
                g_string_append_c(s, '_');
        for (const char *p = name; *p; p++) {
                if (g_ascii_isalpha(*p) || (p > name && g_ascii_isdigit(*p)))
                        g_string_append_c(s, *p);
                else
                        g_string_append_printf(s, "_%02x", (guint8) *p);
        }
        return g_string_free(s, FALSE);
}

static guint64 prop_u64(GDBusConnection *c, const char *path, const char *iface, const char *prop) {
        g_autoptr(GVariant) v = test_get_property(c, path, iface, prop);

        g_assert_true(g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64));
        return g_variant_get_uint64(v);
}

/* A property printed without type annotations, e.g. "[(0, 2), (1, 3)]". */
static char *prop_str(GDBusConnection *c, const char *path, const char *iface, const char *prop) {
        g_autoptr(GVariant) v = test_get_property(c, path, iface, prop);

        return g_variant_print(v, FALSE);
}

/* ListPools as "2048kB/-1:total,free,surplus,reserved,floor 2048kB/0:... 1048576kB/-1:...". */
static char *pools_str(GDBusConnection *c) {
        g_autoptr(GVariant) reply = call_ok(c, MANAGER_PATH, MANAGER_IFACE, "ListPools", NULL, "(a(tittttt))");
        g_autoptr(GVariantIter) it = NULL;
        GString *s = g_string_new(NULL);
        guint64 ps, total, free_, surplus, reserved, floor_;
        gint32 node;

        g_variant_get(reply, "(a(tittttt))", &it);
        while (g_variant_iter_next(it, "(tittttt)", &ps, &node, &total, &free_, &surplus, &reserved, &floor_))
                g_string_append_printf(s, "%s%" G_GUINT64_FORMAT "kB/%d:%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT
                                       ",%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT,
                                       s->len ? " " : "", ps / 1024, node, total, free_, surplus, reserved,
                                       floor_);
        return g_string_free(s, FALSE);
}

/* One ListPools row as pools_str() prints it; free == total, surplus 0 as in an idle model. */
static char *pool_row(guint64 kb, int node, guint64 total, guint64 reserved, guint64 floor_) {
        return g_strdup_printf("%" G_GUINT64_FORMAT "kB/%d:%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT ",0,%"
                               G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT, kb, node, total, total, reserved, floor_);
}

/* The expected ListPools of an idle model, from per-node 2M (total, reserved, floor) and all-zero 1G pools. */
static char *expected_pools_2m(guint64 t0, guint64 r0, guint64 f0, guint64 t1, guint64 r1, guint64 f1) {
        g_autofree char *a = pool_row(KB2M, -1, t0 + t1, r0 + r1, f0 + f1);
        g_autofree char *b = pool_row(KB2M, 0, t0, r0, f0);
        g_autofree char *c = pool_row(KB2M, 1, t1, r1, f1);

        return g_strdup_printf("%s %s %s 1048576kB/-1:0,0,0,0,0 1048576kB/0:0,0,0,0,0 1048576kB/1:0,0,0,0,0", a, b,
                               c);
}

/* Floor of one 2M pool per ListPools. */
static guint64 pool_floor(GDBusConnection *c, int node) {
        return prop_u64(c, node == 0 ? NODE0_PATH : NODE1_PATH, POOL_IFACE, "Floor");
}

/* ListReservations as "name:pagesize:pages:uid:lifetime:path" sorted, space separated. */
static char *reservations_str(GDBusConnection *c) {
        g_autoptr(GVariant) reply = call_ok(c, MANAGER_PATH, MANAGER_IFACE, "ListReservations", NULL,
                                            "(a(sttuso))");
        g_autoptr(GVariantIter) it = NULL;
        g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(g_free);
        const char *name, *lifetime, *path;
        guint64 ps, pages;
        guint32 uid;

        g_variant_get(reply, "(a(sttuso))", &it);
        while (g_variant_iter_next(it, "(&sttu&s&o)", &name, &ps, &pages, &uid, &lifetime, &path))
                g_ptr_array_add(rows, g_strdup_printf("%s:%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT ":%u:%s:%s",
                                                      name, ps, pages, uid, lifetime, path));
        g_ptr_array_sort(rows, strcmp_indirect);
        g_ptr_array_add(rows, NULL);
        return g_strjoinv(" ", (char **) rows->pdata);
}

static guint n_reservations(GDBusConnection *c) {
        g_autoptr(GVariant) reply = call_ok(c, MANAGER_PATH, MANAGER_IFACE, "ListReservations", NULL,
                                            "(a(sttuso))");
        g_autoptr(GVariant) a = g_variant_get_child_value(reply, 0);

        return (guint) g_variant_n_children(a);
}

static char *get_reservation(GDBusConnection *c, const char *name) {
        g_autoptr(GVariant) reply = call_ok(c, MANAGER_PATH, MANAGER_IFACE, "GetReservation",
                                            g_variant_new("(s)", name), "(o)");
        char *path = NULL;

        g_variant_get(reply, "(o)", &path);
        return path;
}

static GVariant *get_all(GDBusConnection *c, const char *path, const char *iface) {
        g_autoptr(GVariant) reply = NULL;

        reply = call_ok(c, path, PROPS_IFACE, "GetAll", g_variant_new("(s)", iface), "(a{sv})");

        return g_variant_get_child_value(reply, 0);
}

static void ping(GDBusConnection *c) {
        g_autoptr(GVariant) r = call_ok(c, "/", "org.freedesktop.DBus.Peer", "Ping", NULL, "()");
}

static char *name_owner(GDBusConnection *c) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = NULL;
        char *owner = NULL;

        r = g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                        "GetNameOwner", g_variant_new("(s)", TEST_BUS_NAME), G_VARIANT_TYPE("(s)"),
                                        G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &e);
        g_assert_no_error(e);
        g_variant_get(r, "(s)", &owner);
        return owner;
}

static guint32 owner_pid(GDBusConnection *c) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = NULL;
        guint32 pid = 0;

        r = g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                        "GetConnectionUnixProcessID", g_variant_new("(s)", TEST_BUS_NAME),
                                        G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &e);
        g_assert_no_error(e);
        g_variant_get(r, "(u)", &pid);
        return pid;
}

static void sleep_child_setup(gpointer user_data) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != (pid_t) GPOINTER_TO_INT(user_data))
                _exit(127);
}

/* A `sleep 60` that dies with us. */
static GPid spawn_sleep(void) {
        const char *argv[] = { "sleep", "60", NULL };
        g_autoptr(GError) e = NULL;
        GPid pid = 0;

        g_assert_true(g_spawn_async(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                    sleep_child_setup, GINT_TO_POINTER((int) getpid()), &pid, &e));
        g_assert_no_error(e);
        return pid;
}

static void kill_and_reap(GPid pid) {
        int status;

        g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
}

/* {key: <value>}: for values the text format can't express, e.g. thousands of entries. */
static GVariant *opt_one(const char *key, GVariant *value) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", key, value);
        return g_variant_builder_end(&b);
}

static char *daemon_binary(void) {
        const char *bin = g_getenv("HUGEPAGED_BIN");

        if (bin && *bin)
                return g_strdup(bin);
        return g_build_filename(g_getenv("HUGEPAGED_BUILD_ROOT"), "src", "hugepaged", "hugepaged", NULL);
}

/* ---- 1. introspection against the contract ---- */

static const char *emits_changed(const GDBusPropertyInfo *p) {
        const char *v = g_dbus_annotation_info_lookup(p->annotations,
                                                      "org.freedesktop.DBus.Property.EmitsChangedSignal");

        return v ?: "true";
}

static void compare_args(const char *what, GDBusArgInfo **want, GDBusArgInfo **got) {
        guint nw = 0, ng = 0;

        for (; want && want[nw]; nw++)
                ;
        for (; got && got[ng]; ng++)
                ;
        if (nw != ng)
                g_test_message("%s: %u arguments in the contract, %u in the daemon", what, nw, ng);
        g_assert_cmpuint(nw, ==, ng);
        for (guint i = 0; i < nw; i++) {
                g_test_message("%s arg %u: %s %s vs %s %s", what, i, want[i]->name, want[i]->signature,
                               got[i]->name, got[i]->signature);
                g_assert_cmpstr(want[i]->name, ==, got[i]->name);
                g_assert_cmpstr(want[i]->signature, ==, got[i]->signature);
        }
}

static guint count_ptrv(gpointer *v) {
        guint n = 0;

        for (; v && v[n]; n++)
                ;
        return n;
}

static void compare_interface(const GDBusInterfaceInfo *want, GDBusInterfaceInfo *got) {
        g_assert_nonnull(got);
        g_assert_cmpuint(count_ptrv((gpointer *) want->methods), ==, count_ptrv((gpointer *) got->methods));
        for (GDBusMethodInfo **m = want->methods; m && *m; m++) {
                GDBusMethodInfo *g = g_dbus_interface_info_lookup_method(got, (*m)->name);
                g_autofree char *in = g_strdup_printf("%s.%s in", want->name, (*m)->name);
                g_autofree char *out = g_strdup_printf("%s.%s out", want->name, (*m)->name);

                if (!g)
                        g_test_message("method %s.%s is missing", want->name, (*m)->name);
                g_assert_nonnull(g);
                compare_args(in, (*m)->in_args, g->in_args);
                compare_args(out, (*m)->out_args, g->out_args);
        }

        g_assert_cmpuint(count_ptrv((gpointer *) want->properties), ==, count_ptrv((gpointer *) got->properties));
        for (GDBusPropertyInfo **p = want->properties; p && *p; p++) {
                GDBusPropertyInfo *g = g_dbus_interface_info_lookup_property(got, (*p)->name);

                if (!g)
                        g_test_message("property %s.%s is missing", want->name, (*p)->name);
                g_assert_nonnull(g);
                g_test_message("property %s.%s: %s/%d/%s vs %s/%d/%s", want->name, (*p)->name, (*p)->signature,
                               (*p)->flags, emits_changed(*p), g->signature, g->flags, emits_changed(g));
                g_assert_cmpstr((*p)->signature, ==, g->signature);
                g_assert_cmpint((*p)->flags, ==, g->flags);
                g_assert_cmpstr(emits_changed(*p), ==, emits_changed(g));
        }

        g_assert_cmpuint(count_ptrv((gpointer *) want->signals), ==, count_ptrv((gpointer *) got->signals));
        for (GDBusSignalInfo **s = want->signals; s && *s; s++) {
                GDBusSignalInfo *g = g_dbus_interface_info_lookup_signal(got, (*s)->name);
                g_autofree char *what = g_strdup_printf("signal %s.%s", want->name, (*s)->name);

                g_assert_nonnull(g);
                compare_args(what, (*s)->args, g->args);
        }
}

static GDBusNodeInfo *introspect(GDBusConnection *c, const char *path) {
        g_autoptr(GVariant) reply = call_ok(c, path, "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                                            "(s)");
        g_autoptr(GError) e = NULL;
        const char *xml;
        GDBusNodeInfo *node;

        g_variant_get(reply, "(&s)", &xml);
        node = g_dbus_node_info_new_for_xml(xml, &e);
        g_assert_no_error(e);
        return node;
}

/* The daemon's object at path has exactly the contract's interface iface among org.hugepaged1.*. */
static void check_object(GDBusConnection *c, GDBusNodeInfo *contract, const char *path, const char *iface) {
        g_autoptr(GDBusNodeInfo) got = introspect(c, path);
        guint ours = 0;

        g_test_message("checking %s on %s", iface, path);
        for (GDBusInterfaceInfo **i = got->interfaces; i && *i; i++)
                if (g_str_has_prefix((*i)->name, "org.hugepaged1.")) {
                        g_assert_cmpstr((*i)->name, ==, iface);
                        ours++;
                }
        g_assert_cmpuint(ours, ==, 1);
        compare_interface(g_dbus_node_info_lookup_interface(contract, iface),
                          g_dbus_node_info_lookup_interface(got, iface));
        g_assert_nonnull(g_dbus_node_info_lookup_interface(got, PROPS_IFACE));
}

static void test_introspection(Fixture *f, gconstpointer data) {
        g_autofree char *xml_path = g_build_filename(g_getenv("HUGEPAGED_SOURCE_ROOT"), "dbus",
                                                     "org.hugepaged1.xml", NULL);
        g_autofree char *xml = NULL, *res = NULL;
        g_autoptr(GError) e = NULL;
        g_autoptr(GDBusNodeInfo) contract = NULL;
        g_autoptr(GDBusNodeInfo) manager = NULL;
        GDBusInterfaceInfo *om;
        guint n_ifaces = 0;

        g_assert_true(g_file_get_contents(xml_path, &xml, NULL, &e));
        g_assert_no_error(e);
        contract = g_dbus_node_info_new_for_xml(xml, &e);
        g_assert_no_error(e);
        for (GDBusInterfaceInfo **i = contract->interfaces; i && *i; i++)
                n_ifaces++;
        g_assert_cmpuint(n_ifaces, ==, 3);

        res = reserve_ok(f->c, "vm1", 0, 4 * PS2M, NULL);
        check_object(f->c, contract, MANAGER_PATH, MANAGER_IFACE);
        check_object(f->c, contract, NODE0_PATH, POOL_IFACE);
        check_object(f->c, contract, "/org/hugepaged1/pool/2048kB", POOL_IFACE);
        check_object(f->c, contract, "/org/hugepaged1/pool/1048576kB/node1", POOL_IFACE);
        check_object(f->c, contract, res, RES_IFACE);

        manager = introspect(f->c, MANAGER_PATH);
        om = g_dbus_node_info_lookup_interface(manager, OM_IFACE);
        g_assert_nonnull(om);
        g_assert_nonnull(g_dbus_interface_info_lookup_method(om, "GetManagedObjects"));
        g_assert_nonnull(g_dbus_interface_info_lookup_signal(om, "InterfacesAdded"));
        g_assert_nonnull(g_dbus_interface_info_lookup_signal(om, "InterfacesRemoved"));
}

/* ---- 2. manager properties ---- */

static void test_manager_properties(Fixture *f, gconstpointer data) {
        g_autofree char *bin = daemon_binary(), *out = NULL, *want = NULL;
        g_autoptr(GVariant) version = NULL;
        g_autoptr(GError) e = NULL;
        g_autofree char *page_sizes = NULL, *nodes = NULL, *path = NULL;
        const char *argv[] = { bin, "--version", NULL };
        int status = -1;

        version = test_get_property(f->c, MANAGER_PATH, MANAGER_IFACE, "Version");
        g_assert_cmpstr(g_variant_get_type_string(version), ==, "s");
        g_assert_cmpstr(g_variant_get_string(version, NULL), !=, "");
        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
                                   &status, &e));
        g_assert_no_error(e);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        want = g_strdup_printf("hugepaged %s\n", g_variant_get_string(version, NULL));
        g_assert_cmpstr(out, ==, want);

        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "DefaultPageSize"), ==, PS2M);
        page_sizes = prop_str(f->c, MANAGER_PATH, MANAGER_IFACE, "PageSizes");
        g_assert_cmpstr(page_sizes, ==, "[2097152, 1073741824]");
        nodes = prop_str(f->c, MANAGER_PATH, MANAGER_IFACE, "Nodes");
        g_assert_cmpstr(nodes, ==, "[0, 1]");
        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 0);

        path = reserve_ok(f->c, "vm1", 0, 5 * PS2M + 1, NULL); /* rounded up to 6 pages */
        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 6 * PS2M);
        g_clear_pointer(&path, g_free);
        path = reserve_ok(f->c, "big", PS1G, PS1G, NULL);
        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 6 * PS2M + PS1G);
        release_ok(f->c, "vm1");
        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, PS1G);
}

/* ---- 3. reserve and release ---- */

/* GetManagedObjects lists the six pools and the one reservation, each with its interface. */
static void managed_objects_check(GDBusConnection *c, const char *res) {
        static const char *const pools[] = {
                "/org/hugepaged1/pool/2048kB", NODE0_PATH, NODE1_PATH, "/org/hugepaged1/pool/1048576kB",
                "/org/hugepaged1/pool/1048576kB/node0", "/org/hugepaged1/pool/1048576kB/node1",
        };
        g_autoptr(GVariant) reply = call_ok(c, MANAGER_PATH, OM_IFACE, "GetManagedObjects", NULL,
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
static const Params params_floor_node1 = { .pre = pre_floor_node1 };

static void test_reserve_release(Fixture *f, gconstpointer data) {
        g_autofree char *path = NULL, *got = NULL, *np = NULL, *want_np = NULL, *pools = NULL, *want_pools = NULL;
        g_autofree char *list = NULL, *lifetime = NULL, *name = NULL, *path2 = NULL, *idle = NULL;
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = NULL;
        guint64 n0, n1, d0, d1, created;
        gint64 t0, t1;

        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 10);
        idle = pools_str(f->c);
        want_pools = expected_pools_2m(0, 0, 0, 10, 0, 10);
        g_assert_cmpstr(idle, ==, want_pools);
        g_clear_pointer(&want_pools, g_free);

        t0 = g_get_real_time();
        path = reserve_ok(f->c, "vm1", 0, PS1G, NULL);
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
        np = prop_str(f->c, path, RES_IFACE, "NodePages");
        g_assert_cmpstr(np, ==, want_np);

        name = prop_str(f->c, path, RES_IFACE, "Name");
        g_assert_cmpstr(name, ==, "'vm1'");
        g_assert_cmpuint(prop_u64(f->c, path, RES_IFACE, "PageSize"), ==, PS2M);
        g_assert_cmpuint(prop_u64(f->c, path, RES_IFACE, "Pages"), ==, 512);
        r = test_get_property(f->c, path, RES_IFACE, "OwnerUID");
        g_assert_cmpuint(g_variant_get_uint32(r), ==, 0);
        g_clear_pointer(&r, g_variant_unref);
        r = test_get_property(f->c, path, RES_IFACE, "PID");
        g_assert_cmpuint(g_variant_get_uint32(r), ==, 0);
        g_clear_pointer(&r, g_variant_unref);
        lifetime = prop_str(f->c, path, RES_IFACE, "Lifetime");
        g_assert_cmpstr(lifetime, ==, "'explicit'");
        created = prop_u64(f->c, path, RES_IFACE, "CreatedUSec");
        g_assert_cmpuint(created, >=, (guint64) t0);
        g_assert_cmpuint(created, <=, (guint64) t1);

        list = reservations_str(f->c);
        g_assert_cmpstr(list, ==, "vm1:2097152:512:0:explicit:" RES_PREFIX "vm1");
        managed_objects_check(f->c, path);
        pools = pools_str(f->c);
        want_pools = expected_pools_2m(n0, d0, 0, n1, d1, 10);
        g_assert_cmpstr(pools, ==, want_pools);
        g_assert_cmpuint(prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Floor"), ==, 10);
        g_assert_cmpuint(prop_u64(f->c, "/org/hugepaged1/pool/2048kB", POOL_IFACE, "Reserved"), ==, 512);
        g_assert_cmpuint(prop_u64(f->c, "/org/hugepaged1/pool/2048kB", POOL_IFACE, "Total"), ==, 522);

        got = get_reservation(f->c, "vm1");
        g_assert_cmpstr(got, ==, path);

        release_ok(f->c, "vm1");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 10);
        g_clear_pointer(&pools, g_free);
        pools = pools_str(f->c);
        g_assert_cmpstr(pools, ==, idle);
        g_assert_cmpuint(n_reservations(f->c), ==, 0);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "GetReservation", g_variant_new("(s)", "vm1"), E_NO_RES);
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", "vm1"), E_NO_RES);
        g_clear_error(&e);

        /* The reservation object's own Release(). */
        path2 = reserve_ok(f->c, "vm.2:x@y+z_w-v", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_clear_pointer(&got, g_free);
        got = res_path("vm.2:x@y+z_w-v");
        g_assert_cmpstr(path2, ==, got);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 3);
        g_clear_pointer(&r, g_variant_unref);
        r = call_ok(f->c, path2, RES_IFACE, "Release", NULL, "()");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 10);
        g_assert_cmpuint(n_reservations(f->c), ==, 0);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "GetReservation", g_variant_new("(s)", "vm.2:x@y+z_w-v"),
                       E_NO_RES);
        g_clear_error(&e);
        /* Its object is gone with it. */
        e = call_fails(f->c, path2, RES_IFACE, "Release", NULL, "org.freedesktop.DBus.Error.UnknownObject");
}

/* ---- 4. options ---- */

static void test_options(Fixture *f, gconstpointer data) {
        g_autofree char *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL, *p5 = NULL, *retry = NULL, *s = NULL;
        g_autofree char *before = NULL, *after = NULL;
        g_autoptr(GError) e = NULL;

        /* nodes [1]: node 1 only. */
        p1 = reserve_ok(f->c, "n1", 0, 10 * 1024 * 1024, test_opts("{'nodes': <[uint32 1]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 5);
        s = prop_str(f->c, p1, RES_IFACE, "NodePages");
        g_assert_cmpstr(s, ==, "[(1, 5)]");
        g_clear_pointer(&s, g_free);

        /* node_bytes with bytes 0. */
        p2 = reserve_ok(f->c, "nb", 0, 0, test_opts("{'node_bytes': <[(uint32 0, uint64 4194304), (1, 6291456)]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 8);
        s = prop_str(f->c, p2, RES_IFACE, "NodePages");
        g_assert_cmpstr(s, ==, "[(0, 2), (1, 3)]");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(prop_u64(f->c, p2, RES_IFACE, "Pages"), ==, 5);
        retry = reserve_ok(f->c, "nb", 0, 0, test_opts("{'node_bytes': <[(uint32 0, uint64 4194304), (1, 6291456)]>}"));
        g_assert_cmpstr(retry, ==, p2);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 8);

        /* bytes equal to the sum. */
        p3 = reserve_ok(f->c, "nbsum", 0, 10 * 1024 * 1024,
                        test_opts("{'node_bytes': <[(uint32 0, uint64 4194304), (1, 6291456)]>}"));
        s = prop_str(f->c, p3, RES_IFACE, "NodePages");
        g_assert_cmpstr(s, ==, "[(0, 2), (1, 3)]");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 4);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 11);

        /* bytes neither 0 nor the sum. */
        before = kernel_snapshot(f);
        e = reserve_fails(f->c, "nbbad", 0, 12 * 1024 * 1024,
                          test_opts("{'node_bytes': <[(uint32 0, uint64 4194304), (1, 6291456)]>}"), E_INVALID);
        g_clear_error(&e);
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);
        g_assert_cmpuint(n_reservations(f->c), ==, 3);

        /* Rounding up to whole pages within node_bytes. */
        p4 = reserve_ok(f->c, "round", 0, 0, test_opts("{'node_bytes': <[(uint32 1, uint64 2097153)]>}"));
        s = prop_str(f->c, p4, RES_IFACE, "NodePages");
        g_assert_cmpstr(s, ==, "[(1, 2)]");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 13);

        /* 1 GiB pages. */
        p5 = reserve_ok(f->c, "giant", PS1G, 2 * PS1G, test_opts("{'nodes': <[uint32 1]>}"));
        g_assert_cmpuint(prop_u64(f->c, p5, RES_IFACE, "PageSize"), ==, PS1G);
        g_assert_cmpuint(prop_u64(f->c, p5, RES_IFACE, "Pages"), ==, 2);
        s = prop_str(f->c, p5, RES_IFACE, "NodePages");
        g_assert_cmpstr(s, ==, "[(1, 2)]");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(nr(f, 0, KB1G), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB1G), ==, 2);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 4);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 13);
        g_assert_cmpuint(prop_u64(f->c, "/org/hugepaged1/pool/1048576kB/node1", POOL_IFACE, "Reserved"), ==, 2);
        release_ok(f->c, "giant");
        /* 1 GiB pages stay as spare pages by default. */
        g_assert_cmpuint(nr(f, 1, KB1G), ==, 2);
        g_assert_cmpuint(prop_u64(f->c, "/org/hugepaged1/pool/1048576kB/node1", POOL_IFACE, "Reserved"), ==, 0);

        /* Releasing node_bytes reservations gives back exactly their pages per node. */
        release_ok(f->c, "nb");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 10);
}

/* ---- 5. errors ---- */

static void test_errors(Fixture *f, gconstpointer data) {
        g_autofree char *px = NULL, *retry = NULL, *before = NULL, *after = NULL, *pools_before = NULL;
        g_autofree char *pools_after = NULL, *w_before = NULL, *w_after = NULL;
        g_autoptr(GError) e = NULL;

        e = reserve_fails(f->c, "a", 4096, PS2M, NULL, E_UNSUPPORTED);
        g_clear_error(&e);
        e = reserve_fails(f->c, "a", 3 * PS2M, PS2M * 3, NULL, E_UNSUPPORTED);
        g_clear_error(&e);
        e = reserve_fails(f->c, "a", 0, PS2M, test_opts("{'nodes': <[uint32 7]>}"), E_NO_NODE);
        g_clear_error(&e);
        e = reserve_fails(f->c, "a", 0, 0, test_opts("{'node_bytes': <[(uint32 0, uint64 2097152), (7, 2097152)]>}"),
                          E_NO_NODE);
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", "nope"), E_NO_RES);
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "GetReservation", g_variant_new("(s)", "nope"),
                       E_NO_RES);
        g_clear_error(&e);
        g_assert_cmpuint(nr(f, 0, KB2M) + nr(f, 1, KB2M), ==, 0);

        /* Same name, other parameters. */
        px = reserve_ok(f->c, "x", 0, 4 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);
        e = reserve_fails(f->c, "x", 0, 6 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>}"), E_EXISTS);
        g_clear_error(&e);
        e = reserve_fails(f->c, "x", 0, 4 * 1024 * 1024, test_opts("{'nodes': <[uint32 1]>}"), E_EXISTS);
        g_clear_error(&e);
        e = reserve_fails(f->c, "x", 0, 4 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>, 'lifetime': <'caller'>}"),
                          E_EXISTS);
        g_clear_error(&e);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);

        /* Idempotent retry: the same path, and the pools not even written to. */
        before = kernel_snapshot(f);
        pools_before = pools_str(f->c);
        w_before = writes_str(f);
        retry = reserve_ok(f->c, "x", 0, 4 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpstr(retry, ==, px);
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);
        pools_after = pools_str(f->c);
        g_assert_cmpstr(pools_after, ==, pools_before);
        w_after = writes_str(f);
        g_assert_cmpstr(w_after, ==, w_before);
        g_assert_cmpuint(n_reservations(f->c), ==, 1);

        /* More than node 1 can hold: the error names the node and the counts, and every pool is put back. */
        g_clear_pointer(&pools_before, g_free);
        pools_before = pools_str(f->c);
        e = reserve_fails(f->c, "toomuch", 0, 0,
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
        pools_after = pools_str(f->c);
        g_assert_cmpstr(pools_after, ==, pools_before);
        g_assert_cmpuint(n_reservations(f->c), ==, 1);

        /* Short on any node: same promise. */
        e = reserve_fails(f->c, "toomuch", 0, 9000 * PS2M, NULL, E_INSUFFICIENT);
        g_test_message("InsufficientPages: %s", e->message);
        g_assert_nonnull(strstr(e->message, "9000"));
        g_clear_error(&e);
        g_clear_pointer(&after, g_free);
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);

        /* More than the machine's memory: refused before anything is touched. */
        g_clear_pointer(&w_before, g_free);
        w_before = writes_str(f);
        e = reserve_fails(f->c, "toomuch", 0, G_GUINT64_CONSTANT(1) << 60, NULL, E_INSUFFICIENT);
        g_clear_error(&e);
        g_clear_pointer(&w_after, g_free);
        w_after = writes_str(f);
        g_assert_cmpstr(w_after, ==, w_before);
        g_assert_cmpuint(n_reservations(f->c), ==, 1);
}

static const Params params_limits = { .config = "[Daemon]\nMaxReservations=2\n\n[Pool 2M]\nMaxPages=10\n" };

static void test_limits(Fixture *f, gconstpointer data) {
        g_autofree char *p1 = NULL, *p2 = NULL, *p3 = NULL, *before = NULL, *after = NULL;
        g_autoptr(GError) e = NULL;

        before = kernel_snapshot(f);
        e = reserve_fails(f->c, "big", 0, 11 * PS2M, test_opts("{'nodes': <[uint32 0]>}"), E_LIMIT);
        g_assert_nonnull(strstr(e->message, "MaxPages"));
        g_clear_error(&e);
        e = reserve_fails(f->c, "big", 0, 0, test_opts("{'node_bytes': <[(uint32 1, uint64 23068672)]>}"), E_LIMIT);
        g_assert_nonnull(strstr(e->message, "MaxPages"));
        g_clear_error(&e);
        e = reserve_fails(f->c, "big", 0, 21 * PS2M, NULL, E_LIMIT);
        g_clear_error(&e);
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);

        /* Up to MaxPages on one node is fine; 1 GiB pages have no limit configured. */
        p1 = reserve_ok(f->c, "r1", 0, 10 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 10);
        e = reserve_fails(f->c, "r2", 0, PS2M, test_opts("{'nodes': <[uint32 0]>}"), E_LIMIT);
        g_clear_error(&e);
        p2 = reserve_ok(f->c, "r2", PS1G, PS1G, NULL);

        /* MaxReservations=2. */
        e = reserve_fails(f->c, "r3", 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"), E_LIMIT);
        g_assert_nonnull(strstr(e->message, "MaxReservations"));
        g_clear_error(&e);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
        g_assert_cmpuint(n_reservations(f->c), ==, 2);
        /* A retry of an existing one is not a new one. */
        p3 = reserve_ok(f->c, "r1", 0, 10 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpstr(p3, ==, p1);
        release_ok(f->c, "r2");
        g_clear_pointer(&p3, g_free);
        p3 = reserve_ok(f->c, "r3", 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"));
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

        pool_before = pools_str(f->c);
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_test_message("case: %s", cases[i].what);
                e = reserve_fails(f->c, cases[i].name, 0, cases[i].bytes,
                                  cases[i].options ? test_opts(cases[i].options) : NULL, E_INVALID);
                g_clear_error(&e);
        }
        for (const char *const *n = (const char *const[]) { "", "a/b", "\xc3\xa9", NULL }; *n; n++) {
                e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", *n), E_INVALID);
                g_clear_error(&e);
                e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "GetReservation", g_variant_new("(s)", *n),
                               E_INVALID);
                g_clear_error(&e);
        }
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", long_name), E_INVALID);
        g_clear_error(&e);

        /* 5000 distinct nodes: refused for their number (not for a duplicate or a missing node), quickly, and
         * the daemon is still there. */
        for (guint i = 0; i < 5000; i++) {
                g_variant_builder_add(nb, "(ut)", i, PS2M);
                g_variant_builder_add(nodes, "u", i);
        }
        t = g_get_monotonic_time();
        e = reserve_fails(f->c, "a", 0, 0, opt_one("node_bytes", g_variant_builder_end(nb)), E_INVALID);
        g_assert_nonnull(strstr(e->message, "1024"));
        g_clear_error(&e);
        e = reserve_fails(f->c, "a", 0, PS2M, opt_one("nodes", g_variant_builder_end(nodes)), E_INVALID);
        g_assert_nonnull(strstr(e->message, "1024"));
        g_clear_error(&e);
        g_assert_cmpint(g_get_monotonic_time() - t, <, 2 * G_USEC_PER_SEC);
        ping(f->c);

        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);
        pools = pools_str(f->c);
        g_assert_cmpstr(pools, ==, pool_before);
        g_assert_cmpuint(n_reservations(f->c), ==, 0);
        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 0);

        /* The longest valid name works. */
        p = reserve_ok(f->c, max_name, 0, PS2M, NULL);
        g_assert_cmpuint(n_reservations(f->c), ==, 1);
        release_ok(f->c, max_name);
}

/* ---- other users ---- */

#define NOBODY 65534

static void drop_to_nobody(gpointer user_data) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
            setuid(NOBODY) < 0)
                _exit(126);
}

/* `gdbus call` on org.hugepaged1 as uid 65534; returns its exit status, stdout+stderr in *ret_output. */
static int gdbus_as_nobody(const char *path, const char *method, const char *arg, char **ret_output) {
        g_autofree char *gdbus = g_find_program_in_path("gdbus");
        const char *argv[] = { gdbus, "call", "--system", "--dest", TEST_BUS_NAME, "--object-path", path,
                               "--method", method, arg, NULL };
        g_autofree char *out = NULL, *err = NULL;
        g_autoptr(GError) e = NULL;
        int status = -1;

        g_assert_nonnull(gdbus);
        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, drop_to_nobody, NULL, &out, &err,
                                   &status, &e));
        g_assert_no_error(e);
        *ret_output = g_strconcat(out, err, NULL);
        g_test_message("gdbus %s as nobody: status %d: %s", method, status, *ret_output);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), !=, 126);
        return WEXITSTATUS(status);
}

static void test_access_denied(Fixture *f, gconstpointer data) {
        g_autofree char *p = NULL, *out = NULL, *before = NULL, *after = NULL;

        if (getuid() != 0) {
                test_skip("needs root to act as another user");
                return;
        }
        p = reserve_ok(f->c, "roots", 0, 2 * PS2M, NULL);
        before = kernel_snapshot(f);

        g_assert_cmpint(gdbus_as_nobody(MANAGER_PATH, MANAGER_IFACE ".Release", "'roots'", &out), !=, 0);
        g_assert_nonnull(strstr(out, "org.freedesktop.DBus.Error.AccessDenied"));
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(gdbus_as_nobody(p, RES_IFACE ".Release", NULL, &out), !=, 0);
        g_assert_nonnull(strstr(out, "org.freedesktop.DBus.Error.AccessDenied"));
        g_clear_pointer(&out, g_free);

        /* Reading is for everyone. */
        g_assert_cmpint(gdbus_as_nobody(MANAGER_PATH, MANAGER_IFACE ".GetReservation", "'roots'", &out), ==, 0);
        g_assert_nonnull(strstr(out, p));

        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);
        g_assert_cmpuint(n_reservations(f->c), ==, 1);
        release_ok(f->c, "roots");
}

/* ---- 6. malformed messages ---- */

static void test_malformed(Fixture *f, gconstpointer data) {
        pid_t pid = test_daemon_pid(f->d);
        g_autoptr(GError) e = NULL;
        g_autofree char *p = NULL;

        g_assert_cmpuint(owner_pid(f->c), ==, (guint32) pid);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Reserve", g_variant_new("(s)", "x"), E_INVALID);
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Reserve", g_variant_new("(stt)", "x", PS2M, PS2M),
                       E_INVALID);
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Reserve", NULL, E_INVALID);
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                       g_variant_new("(sttas)", "x", PS2M, PS2M, NULL), E_INVALID);
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                       g_variant_new("(stta{sv}s)", "x", PS2M, PS2M, NULL, "extra"), E_INVALID);
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(u)", 1), E_INVALID);
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "ListPools", g_variant_new("(s)", "x"), E_INVALID);
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Frobnicate", NULL,
                       "org.freedesktop.DBus.Error.UnknownMethod");
        g_clear_error(&e);
        /* An interface the bus policy does not list never reaches the daemon, not even from root. */
        e = call_fails(f->c, MANAGER_PATH, "org.hugepaged1.Nope", "Reserve", NULL,
                       "org.freedesktop.DBus.Error.AccessDenied");
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, PROPS_IFACE, "Get", g_variant_new("(ss)", MANAGER_IFACE, "Bogus"),
                       "org.freedesktop.DBus.Error.UnknownProperty");
        g_clear_error(&e);
        e = call_fails(f->c, NODE0_PATH, PROPS_IFACE, "Get", g_variant_new("(ss)", POOL_IFACE, "Bogus"),
                       "org.freedesktop.DBus.Error.UnknownProperty");
        g_clear_error(&e);
        e = call_fails(f->c, MANAGER_PATH, PROPS_IFACE, "Set",
                       g_variant_new("(ssv)", MANAGER_IFACE, "ReservedBytes", g_variant_new_uint64(0)),
                       "org.freedesktop.DBus.Error.PropertyReadOnly");
        g_clear_error(&e);
        e = call_fails(f->c, "/org/hugepaged1/pool/4kB/node0", PROPS_IFACE, "Get",
                       g_variant_new("(ss)", POOL_IFACE, "Total"), "org.freedesktop.DBus.Error.UnknownObject");
        g_clear_error(&e);
        e = call_fails(f->c, "/org/hugepaged1/pool/2048kB/node7", PROPS_IFACE, "Get",
                       g_variant_new("(ss)", POOL_IFACE, "Total"), "org.freedesktop.DBus.Error.UnknownObject");
        g_clear_error(&e);
        e = call_fails(f->c, "/org/hugepaged1/pool/2048kB/node00", PROPS_IFACE, "Get",
                       g_variant_new("(ss)", POOL_IFACE, "Total"), "org.freedesktop.DBus.Error.UnknownObject");
        g_clear_error(&e);
        e = call_fails(f->c, RES_PREFIX "nope", RES_IFACE, "Release", NULL,
                       "org.freedesktop.DBus.Error.UnknownObject");
        g_clear_error(&e);

        ping(f->c);
        g_assert_true(test_daemon_is_running(f->d));
        g_assert_cmpuint(owner_pid(f->c), ==, (guint32) pid);
        /* And it still works. */
        p = reserve_ok(f->c, "after", 0, PS2M, NULL);
        g_assert_cmpuint(nr(f, 0, KB2M) + nr(f, 1, KB2M), ==, 1);
}

/* ---- 7. signals ---- */

typedef struct Signal {
        char *path;
        char *iface;
        char *member;
        GVariant *params;
} Signal;

static void signal_free(gpointer p) {
        Signal *s = p;

        g_free(s->path);
        g_free(s->iface);
        g_free(s->member);
        g_variant_unref(s->params);
        g_free(s);
}

static void on_signal(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                      const char *member, GVariant *params, gpointer user_data) {
        Signal *s = g_new0(Signal, 1);
        g_autofree char *printed = g_variant_print(params, FALSE);

        s->path = g_strdup(path);
        s->iface = g_strdup(iface);
        s->member = g_strdup(member);
        s->params = g_variant_ref(params);
        g_test_message("signal %s %s.%s %s", path, iface, member, printed);
        g_ptr_array_add(user_data, s);
}

/* The first signal (path, member) whose first argument prints as arg0 (NULL: any); waits for it. */
static Signal *wait_signal(GPtrArray *log, const char *path, const char *member, const char *arg0) {
        gint64 deadline = g_get_monotonic_time() + (gint64) WAIT_MS * 1000;

        for (;;) {
                for (guint i = 0; i < log->len; i++) {
                        Signal *s = g_ptr_array_index(log, i);
                        g_autoptr(GVariant) a0 = NULL;

                        if (!g_str_equal(s->path, path) || !g_str_equal(s->member, member))
                                continue;
                        a0 = g_variant_get_child_value(s->params, 0);
                        if (arg0 && !g_str_equal(g_variant_get_string(a0, NULL), arg0))
                                continue;
                        return s;
                }
                if (g_get_monotonic_time() > deadline) {
                        g_test_message("no %s on %s (arg0 %s) arrived", member, path, arg0 ?: "any");
                        g_assert_not_reached();
                }
                tick();
        }
}

static guint count_signals(GPtrArray *log, const char *path, const char *member) {
        guint n = 0;

        for (guint i = 0; i < log->len; i++) {
                Signal *s = g_ptr_array_index(log, i);

                n += g_str_equal(s->path, path) && g_str_equal(s->member, member);
        }
        return n;
}

/* PropertiesChanged(iface, changed, invalidated) printed as "{'A': <1>, ...} []", keys sorted. */
static char *properties_changed_str(Signal *s) {
        g_autoptr(GVariant) changed = g_variant_get_child_value(s->params, 1);
        g_autoptr(GVariant) invalidated = g_variant_get_child_value(s->params, 2);
        g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *inv = g_variant_print(invalidated, FALSE);
        GString *out = g_string_new("{");
        GVariantIter it;
        const char *key;
        GVariant *value;

        g_variant_iter_init(&it, changed);
        while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
                g_autofree char *v = g_variant_print(value, FALSE);

                g_ptr_array_add(keys, g_strdup_printf("%s=%s", key, v));
                g_variant_unref(value);
        }
        g_ptr_array_sort(keys, strcmp_indirect);
        for (guint i = 0; i < keys->len; i++)
                g_string_append_printf(out, "%s%s", i ? " " : "", (char *) g_ptr_array_index(keys, i));
        g_string_append_printf(out, "} %s", inv);
        return g_string_free(out, FALSE);
}

static void test_signals(Fixture *f, gconstpointer data) {
        g_autoptr(GPtrArray) log = g_ptr_array_new_with_free_func(signal_free);
        g_autofree char *owner = name_owner(f->c), *path = NULL, *s = NULL;
        g_autoptr(GVariant) ifaces = NULL, res_props = NULL, v = NULL;
        Signal *sig;
        guint id[3];
        const char *p;

        id[0] = g_dbus_connection_signal_subscribe(f->c, owner, PROPS_IFACE, "PropertiesChanged", NODE0_PATH, NULL,
                                                   G_DBUS_SIGNAL_FLAGS_NONE, on_signal, log, NULL);
        id[1] = g_dbus_connection_signal_subscribe(f->c, owner, PROPS_IFACE, "PropertiesChanged", MANAGER_PATH,
                                                   MANAGER_IFACE, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, log, NULL);
        id[2] = g_dbus_connection_signal_subscribe(f->c, owner, OM_IFACE, NULL, MANAGER_PATH, NULL,
                                                   G_DBUS_SIGNAL_FLAGS_NONE, on_signal, log, NULL);
        /* The match rules are in place once a round trip to the daemon has been made. */
        ping(f->c);

        path = reserve_ok(f->c, "vm1", 0, PS1G, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpstr(path, ==, RES_PREFIX "vm1");

        sig = wait_signal(log, MANAGER_PATH, "InterfacesAdded", path);
        ifaces = g_variant_get_child_value(sig->params, 1);
        res_props = g_variant_lookup_value(ifaces, RES_IFACE, G_VARIANT_TYPE("a{sv}"));
        g_assert_nonnull(res_props);
        g_assert_true(g_variant_lookup(res_props, "Name", "&s", &p));
        g_assert_cmpstr(p, ==, "vm1");
        v = g_variant_lookup_value(res_props, "Pages", G_VARIANT_TYPE_UINT64);
        g_assert_cmpuint(g_variant_get_uint64(v), ==, 512);
        g_clear_pointer(&v, g_variant_unref);
        v = g_variant_lookup_value(res_props, "NodePages", G_VARIANT_TYPE("a(ut)"));
        s = g_variant_print(v, FALSE);
        g_assert_cmpstr(s, ==, "[(0, 512)]");
        g_clear_pointer(&s, g_free);

        sig = wait_signal(log, NODE0_PATH, "PropertiesChanged", POOL_IFACE);
        s = properties_changed_str(sig);
        g_assert_cmpstr(s, ==, "{Free=512 Reserved=512 Total=512} []");
        g_clear_pointer(&s, g_free);
        sig = wait_signal(log, MANAGER_PATH, "PropertiesChanged", MANAGER_IFACE);
        s = properties_changed_str(sig);
        g_assert_cmpstr(s, ==, "{ReservedBytes=1073741824} []");
        g_clear_pointer(&s, g_free);
        /* One change, one signal each; ReservedBytes comes last, so nothing else is on its way. */
        g_assert_cmpuint(count_signals(log, NODE0_PATH, "PropertiesChanged"), ==, 1);
        g_assert_cmpuint(count_signals(log, MANAGER_PATH, "InterfacesAdded"), ==, 1);
        g_assert_cmpuint(count_signals(log, MANAGER_PATH, "PropertiesChanged"), ==, 1);
        g_ptr_array_set_size(log, 0);

        /* An idempotent retry changes nothing and says nothing. */
        g_clear_pointer(&s, g_free);
        s = reserve_ok(f->c, "vm1", 0, PS1G, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpstr(s, ==, path);
        g_clear_pointer(&s, g_free);
        release_ok(f->c, "vm1");

        sig = wait_signal(log, MANAGER_PATH, "InterfacesRemoved", path);
        g_clear_pointer(&v, g_variant_unref);
        v = g_variant_get_child_value(sig->params, 1);
        {
                g_autofree const char **names = g_variant_get_strv(v, NULL);

                g_assert_true(g_strv_contains(names, RES_IFACE));
        }
        sig = wait_signal(log, NODE0_PATH, "PropertiesChanged", POOL_IFACE);
        s = properties_changed_str(sig);
        g_assert_cmpstr(s, ==, "{Free=0 Reserved=0 Total=0} []");
        g_clear_pointer(&s, g_free);
        sig = wait_signal(log, MANAGER_PATH, "PropertiesChanged", MANAGER_IFACE);
        s = properties_changed_str(sig);
        g_assert_cmpstr(s, ==, "{ReservedBytes=0} []");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(count_signals(log, NODE0_PATH, "PropertiesChanged"), ==, 1);
        g_assert_cmpuint(count_signals(log, MANAGER_PATH, "InterfacesAdded"), ==, 0);
        g_assert_cmpuint(count_signals(log, MANAGER_PATH, "InterfacesRemoved"), ==, 1);
        g_assert_cmpuint(count_signals(log, MANAGER_PATH, "PropertiesChanged"), ==, 1);
        g_ptr_array_set_size(log, 0);

        /* A reservation on node 1 only: node 0 stays quiet. */
        g_clear_pointer(&s, g_free);
        s = reserve_ok(f->c, "vm2", 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"));
        g_clear_pointer(&s, g_free);
        sig = wait_signal(log, MANAGER_PATH, "PropertiesChanged", MANAGER_IFACE);
        s = properties_changed_str(sig);
        g_assert_cmpstr(s, ==, "{ReservedBytes=2097152} []");
        g_assert_cmpuint(count_signals(log, NODE0_PATH, "PropertiesChanged"), ==, 0);

        for (guint i = 0; i < G_N_ELEMENTS(id); i++)
                g_dbus_connection_signal_unsubscribe(f->c, id[i]);
        tick();
}

typedef struct {
        guint done, failed;
} Burst;

static void on_burst_reply(GObject *src, GAsyncResult *res, gpointer user_data) {
        Burst *b = user_data;
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &e);

        if (!r)
                g_test_message("burst call failed: %s", e->message);
        b->failed += !r;
        b->done++;
}

/* Whether the last PropertiesChanged on path in the log prints as want. */
static gboolean last_properties_changed_is(GPtrArray *log, const char *path, const char *want) {
        for (guint i = log->len; i > 0; i--) {
                Signal *s = g_ptr_array_index(log, i - 1);

                if (g_str_equal(s->path, path) && g_str_equal(s->member, "PropertiesChanged")) {
                        g_autofree char *printed = properties_changed_str(s);

                        return g_str_equal(printed, want);
                }
        }
        return FALSE;
}

/* A burst of calls in flight together: the pool signals go out at most once per 10 ms (org.hugepaged1(5)), not
 * once per call, and the last of them names the final values. */
static void test_signals_burst(Fixture *f, gconstpointer data) {
        enum { N = 40 };
        g_autoptr(GPtrArray) log = g_ptr_array_new_with_free_func(signal_free);
        g_autofree char *owner = name_owner(f->c), *want_pool = NULL, *want_rb = NULL;
        Burst b = { 0 };
        guint id[2], n_pool, n_rb, bound;
        gint64 t0, elapsed_ms;

        id[0] = g_dbus_connection_signal_subscribe(f->c, owner, PROPS_IFACE, "PropertiesChanged", NODE0_PATH, NULL,
                                                   G_DBUS_SIGNAL_FLAGS_NONE, on_signal, log, NULL);
        id[1] = g_dbus_connection_signal_subscribe(f->c, owner, PROPS_IFACE, "PropertiesChanged", MANAGER_PATH,
                                                   MANAGER_IFACE, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, log, NULL);
        ping(f->c);

        t0 = g_get_monotonic_time();
        for (guint i = 0; i < N; i++) {
                g_autofree char *name = g_strdup_printf("burst%u", i);

                g_dbus_connection_call(f->c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                                       g_variant_new("(stt@a{sv})", name, PS2M, PS2M,
                                                     test_opts("{'nodes': <[uint32 0]>}")),
                                       G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS, NULL,
                                       on_burst_reply, &b);
        }
        WAIT_FOR(b.done == N, WAIT_MS);
        g_assert_cmpuint(b.failed, ==, 0);

        want_pool = g_strdup_printf("{Free=%d Reserved=%d Total=%d} []", N, N, N);
        want_rb = g_strdup_printf("{ReservedBytes=%" G_GUINT64_FORMAT "} []", (guint64) (N * PS2M));
        /* Every signal is in the test log (on_signal), so a timeout shows what came instead. */
        WAIT_FOR(last_properties_changed_is(log, NODE0_PATH, want_pool) &&
                 last_properties_changed_is(log, MANAGER_PATH, want_rb), WAIT_MS);
        elapsed_ms = (g_get_monotonic_time() - t0) / 1000;
        n_pool = count_signals(log, NODE0_PATH, "PropertiesChanged");
        n_rb = count_signals(log, MANAGER_PATH, "PropertiesChanged");
        /* One set at once, then at most one per 10 ms of the time it all took (the last tick() included). */
        bound = (guint) (elapsed_ms / 10) + 2;
        g_test_message("%d calls: %u pool and %u manager signals in %" G_GINT64_FORMAT " ms", N, n_pool, n_rb,
                       elapsed_ms);
        g_assert_cmpuint(n_pool, >=, 1);
        g_assert_cmpuint(n_pool, <=, MIN(bound, (guint) N));
        g_assert_cmpuint(n_rb, <=, MIN(bound, (guint) N));

        for (guint i = 0; i < G_N_ELEMENTS(id); i++)
                g_dbus_connection_signal_unsubscribe(f->c, id[i]);
        tick();
}

/* ---- 8. lifetimes ---- */

static void test_lifetime_caller(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) c2 = test_bus_connect(f->bus);
        g_autofree char *path = NULL, *retry = NULL, *lifetime = NULL, *keep = NULL;
        g_autoptr(GError) e = NULL;

        keep = reserve_ok(f->c, "keep", 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"));
        path = reserve_ok(c2, "mine", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 1]>, 'lifetime': <'caller'>}"));
        lifetime = prop_str(f->c, path, RES_IFACE, "Lifetime");
        g_assert_cmpstr(lifetime, ==, "'caller'");
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 4);
        /* The same request from the same connection is a retry; from another it is someone else's. */
        retry = reserve_ok(c2, "mine", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 1]>, 'lifetime': <'caller'>}"));
        g_assert_cmpstr(retry, ==, path);
        e = reserve_fails(f->c, "mine", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 1]>, 'lifetime': <'caller'>}"),
                          E_EXISTS);
        g_clear_error(&e);

        g_assert_true(g_dbus_connection_close_sync(c2, NULL, &e));
        g_assert_no_error(e);
        WAIT_FOR(n_reservations(f->c) == 1, WAIT_MS);
        WAIT_FOR(nr(f, 1, KB2M) == 1, WAIT_MS);
        e = call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "GetReservation", g_variant_new("(s)", "mine"),
                       E_NO_RES);
        g_clear_error(&e);
        g_assert_cmpuint(prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Reserved"), ==, 1);
        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, PS2M);
}

static void test_lifetime_pid(Fixture *f, gconstpointer data) {
        g_autofree char *path = NULL, *lifetime = NULL, *o = NULL;
        g_autoptr(GVariant) pidv = NULL;
        GPid child;

        if (!test_pidfd_supported()) {
                test_skip("pidfd_open() is not available here (valgrind 3.19 does not emulate it)");
                return;
        }
        child = spawn_sleep();

        o = g_strdup_printf("{'nodes': <[uint32 0]>, 'lifetime': <'pid'>, 'pid': <uint32 %d>}", (int) child);
        path = reserve_ok(f->c, "bypid", 0, 2 * PS2M, test_opts(o));
        lifetime = prop_str(f->c, path, RES_IFACE, "Lifetime");
        g_assert_cmpstr(lifetime, ==, "'pid'");
        pidv = test_get_property(f->c, path, RES_IFACE, "PID");
        g_assert_cmpuint(g_variant_get_uint32(pidv), ==, (guint32) child);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);

        kill_and_reap(child);
        WAIT_FOR(n_reservations(f->c) == 0, WAIT_MS);
        WAIT_FOR(nr(f, 0, KB2M) == 0, WAIT_MS);
        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 0);
        ping(f->c);
}

/* ---- 9. restarts ---- */

static const char *const pre_floor_node0[] = { "set_nr 0 2048 20", NULL };
static const Params params_floor_node0 = { .pre = pre_floor_node0 };

static void test_restart_sigkill(Fixture *f, gconstpointer data) {
        g_autofree char *pa = NULL, *pb = NULL, *list = NULL, *pools = NULL, *kernel = NULL, *s = NULL;
        g_autoptr(GVariant) props_a = NULL, props_b = NULL, props_a2 = NULL, props_b2 = NULL;
        g_autofree char *pa2 = NULL, *pb2 = NULL, *long_tail = g_strnfill(112, '.'), *odd_name = NULL;
        g_autofree char *podd = NULL, *podd2 = NULL;

        pa = reserve_ok(f->c, "a", 0, 10 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>}"));
        pb = reserve_ok(f->c, "b", 0, 0, test_opts("{'node_bytes': <[(uint32 1, uint64 4194304)]>}"));
        /* The longest name, with every punctuation character allowed, through the state file and back. */
        odd_name = g_strconcat(":1.42@host+x_y-z", long_tail, NULL);
        g_assert_cmpuint(strlen(odd_name), ==, 128);
        podd = reserve_ok(f->c, odd_name, 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 25);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 3);
        props_a = get_all(f->c, pa, RES_IFACE);
        props_b = get_all(f->c, pb, RES_IFACE);
        list = reservations_str(f->c);
        pools = pools_str(f->c);
        s = expected_pools_2m(25, 5, 20, 3, 3, 0);
        g_assert_cmpstr(pools, ==, s);
        kernel = kernel_snapshot(f);

        daemon_end(f, SIGKILL);
        g_clear_pointer(&s, g_free);
        s = kernel_snapshot(f);
        g_assert_cmpstr(s, ==, kernel);
        daemon_start(f);

        pa2 = get_reservation(f->c, "a");
        pb2 = get_reservation(f->c, "b");
        g_assert_cmpstr(pa2, ==, pa);
        g_assert_cmpstr(pb2, ==, pb);
        props_a2 = get_all(f->c, pa, RES_IFACE);
        props_b2 = get_all(f->c, pb, RES_IFACE);
        g_assert_cmpvariant(props_a2, props_a);
        g_assert_cmpvariant(props_b2, props_b);
        g_clear_pointer(&s, g_free);
        s = reservations_str(f->c);
        g_assert_cmpstr(s, ==, list);
        g_clear_pointer(&s, g_free);
        s = pools_str(f->c);
        g_assert_cmpstr(s, ==, pools);
        g_clear_pointer(&s, g_free);
        s = kernel_snapshot(f);
        g_assert_cmpstr(s, ==, kernel);
        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 8 * PS2M);
        podd2 = get_reservation(f->c, odd_name);
        g_assert_cmpstr(podd2, ==, podd);
        release_ok(f->c, odd_name);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 2);

        /* The identical request after the restart is still a retry. */
        g_clear_pointer(&pa2, g_free);
        pa2 = reserve_ok(f->c, "a", 0, 10 * 1024 * 1024, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpstr(pa2, ==, pa);

        release_ok(f->c, "a");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 20);
        g_assert_cmpuint(pool_floor(f->c, 0), ==, 20);
        release_ok(f->c, "b");
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
        g_assert_cmpuint(n_reservations(f->c), ==, 0);
}

static void test_sigterm_keeps_pools(Fixture *f, gconstpointer data) {
        g_autofree char *p = NULL, *g = NULL, *kernel = NULL, *s = NULL, *pools = NULL;

        p = reserve_ok(f->c, "a", 0, 6 * PS2M, test_opts("{'nodes': <[uint32 1]>}"));
        g = reserve_ok(f->c, "g", PS1G, PS1G, test_opts("{'nodes': <[uint32 0]>}"));
        kernel = kernel_snapshot(f);
        pools = pools_str(f->c);
        daemon_end(f, SIGTERM);
        s = kernel_snapshot(f);
        g_assert_cmpstr(s, ==, kernel);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 6);
        g_assert_cmpuint(nr(f, 0, KB1G), ==, 1);

        daemon_start(f);
        g_clear_pointer(&s, g_free);
        s = pools_str(f->c);
        g_assert_cmpstr(s, ==, pools);
        g_assert_cmpuint(n_reservations(f->c), ==, 2);
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
        child = spawn_sleep();

        pk = reserve_ok(f->c, "keep", 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"));
        pc = reserve_ok(c2, "caller", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 1]>, 'lifetime': <'caller'>}"));
        o = g_strdup_printf("{'nodes': <[uint32 1]>, 'lifetime': <'pid'>, 'pid': <uint32 %d>}", (int) child);
        pp = reserve_ok(f->c, "pid", 0, 2 * PS2M, test_opts(o));
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 6);

        daemon_end(f, SIGKILL);
        g_assert_true(g_dbus_connection_close_sync(c2, NULL, &e));
        g_assert_no_error(e);
        kill_and_reap(child);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 6);

        daemon_start(f);
        s = reservations_str(f->c);
        g_assert_cmpstr(s, ==, "keep:2097152:1:0:explicit:" RES_PREFIX "keep");
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 1);
        g_assert_cmpuint(prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Reserved"), ==, 1);
        g_assert_cmpuint(pool_floor(f->c, 1), ==, 0);
}

/* A caller reservation survives a restart while its caller stays connected, and still ends with it. */
static void test_restart_keeps_live_caller(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) c2 = test_bus_connect(f->bus);
        g_autofree char *pc = NULL;
        g_autoptr(GError) e = NULL;

        pc = reserve_ok(c2, "caller", 0, 3 * PS2M, test_opts("{'nodes': <[uint32 0]>, 'lifetime': <'caller'>}"));
        daemon_end(f, SIGKILL);
        daemon_start(f);
        g_assert_cmpuint(n_reservations(f->c), ==, 1);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 3);
        g_assert_true(g_dbus_connection_close_sync(c2, NULL, &e));
        g_assert_no_error(e);
        WAIT_FOR(n_reservations(f->c) == 0, WAIT_MS);
        WAIT_FOR(nr(f, 0, KB2M) == 0, WAIT_MS);
}

static void on_killed_call_done(GObject *source, GAsyncResult *result, gpointer user_data) {
        g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, NULL);

        *(gboolean *) user_data = TRUE;
}

/* SIGKILL while the kernel is slowly carrying out a request: the restart finishes or undoes the daemon's own
 * half-done work, and takes none of it for someone else's Floor. */
static void test_restart_mid_request(Fixture *f, gconstpointer data) {
        g_autofree char *s = NULL, *want = NULL, *p = NULL;
        gboolean done = FALSE;

        /* Reserve: killed between growing node 0 and node 1; never acknowledged, so nothing stays. */
        fake_kernel_control(f->fk, "delay_ms 1500");
        g_dbus_connection_call(f->c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                               g_variant_new("(stt@a{sv})", "slow", (guint64) 0, (guint64) 0,
                                             test_opts("{'node_bytes': <[(uint32 0, uint64 20971520), "
                                                  "(1, 20971520)]>}")),
                               G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS, NULL,
                               on_killed_call_done, &done);
        /* Within the first of the two writes: the daemon holds node 0's nr_hugepages open. */
        g_assert_true(test_daemon_wait_open_for_write(f->d, "node0/hugepages/hugepages-2048kB/nr_hugepages", 20000));
        daemon_end(f, SIGKILL);
        fake_kernel_control(f->fk, "delay_ms 0");
        WAIT_FOR(done, WAIT_MS);
        g_test_message("after the kill: node0 %" G_GUINT64_FORMAT " node1 %" G_GUINT64_FORMAT, nr(f, 0, KB2M),
                       nr(f, 1, KB2M));
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
        daemon_start(f);
        g_assert_cmpuint(n_reservations(f->c), ==, 0);
        s = pools_str(f->c);
        want = expected_pools_2m(0, 0, 0, 0, 0, 0);
        g_assert_cmpstr(s, ==, want);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);

        /* Release: decided on disk before the pools shrink, so the restart finishes the shrinking. */
        p = reserve_ok(f->c, "slow", 0, 0, test_opts("{'node_bytes': <[(uint32 0, uint64 20971520), (1, 20971520)]>}"));
        fake_kernel_control(f->fk, "delay_ms 1500");
        done = FALSE;
        g_dbus_connection_call(f->c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Release",
                               g_variant_new("(s)", "slow"), G_VARIANT_TYPE("()"), G_DBUS_CALL_FLAGS_NONE,
                               TEST_CALL_TIMEOUT_MS, NULL, on_killed_call_done, &done);
        /* Within the first of the two writes: the daemon holds node 0's nr_hugepages open. */
        g_assert_true(test_daemon_wait_open_for_write(f->d, "node0/hugepages/hugepages-2048kB/nr_hugepages", 20000));
        daemon_end(f, SIGKILL);
        fake_kernel_control(f->fk, "delay_ms 0");
        WAIT_FOR(done, WAIT_MS);
        g_test_message("after the kill: node0 %" G_GUINT64_FORMAT " node1 %" G_GUINT64_FORMAT, nr(f, 0, KB2M),
                       nr(f, 1, KB2M));
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 10);
        daemon_start(f);
        g_assert_cmpuint(n_reservations(f->c), ==, 0);
        g_clear_pointer(&s, g_free);
        s = pools_str(f->c);
        g_assert_cmpstr(s, ==, want);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
}

/* ---- 10. changes from outside ---- */

static void test_outside_change(Fixture *f, gconstpointer data) {
        g_autofree char *p = NULL, *s = NULL, *want = NULL;

        fake_kernel_control(f->fk, "set_nr 0 2048 30");
        s = pools_str(f->c);
        want = expected_pools_2m(30, 0, 30, 0, 0, 0);
        g_assert_cmpstr(s, ==, want);
        g_assert_cmpuint(pool_floor(f->c, 0), ==, 30);

        p = reserve_ok(f->c, "r", 0, 5 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 35);

        /* Someone adds 10 more while we hold 5: Floor becomes 45 - 5. */
        fake_kernel_control(f->fk, "set_nr 0 2048 45");
        g_clear_pointer(&s, g_free);
        g_clear_pointer(&want, g_free);
        s = pools_str(f->c);
        want = expected_pools_2m(45, 5, 40, 0, 0, 0);
        g_assert_cmpstr(s, ==, want);

        /* Releasing never shrinks below the Floor. */
        release_ok(f->c, "r");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 40);
        g_clear_pointer(&s, g_free);
        g_clear_pointer(&want, g_free);
        s = pools_str(f->c);
        want = expected_pools_2m(40, 0, 40, 0, 0, 0);
        g_assert_cmpstr(s, ==, want);

        /* Spare pages above the Floor... there are none: a new reservation grows the pool. */
        g_clear_pointer(&p, g_free);
        p = reserve_ok(f->c, "r2", 0, 2 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 42);
        /* Someone shrinks the pool under us, then a release only goes down to the new Floor. */
        fake_kernel_control(f->fk, "set_nr 0 2048 12");
        release_ok(f->c, "r2");
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
                tick();
        }
}

static const char *const pre_floor_node1_7[] = { "set_nr 1 2048 7", NULL };
static const Params params_floor_node1_7 = { .pre = pre_floor_node1_7 };

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
                g_autofree char *p = res_path(cl[i].name);

                g_assert_no_error(cl[i].error);
                g_assert_cmpstr(cl[i].path, ==, p);
                want[cl[i].node] += cl[i].pages;
        }
        g_assert_cmpuint(n_reservations(f->c), ==, N_CLIENTS);
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
        g_assert_cmpuint(prop_u64(f->c, NODE0_PATH, POOL_IFACE, "Reserved"), ==, want[0]);
        g_assert_cmpuint(prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Reserved"), ==, want[1]);
        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==,
                         (want[0] + want[1]) * PS2M);
        g_ptr_array_add(rows, NULL);
        want_list = g_strjoinv(" ", (char **) rows->pdata);
        list = reservations_str(f->c);
        g_assert_cmpstr(list, ==, want_list);

        for (guint i = 0; i < N_CLIENTS; i++) {
                (void) g_dbus_connection_close_sync(cl[i].c, NULL, NULL);
                g_object_unref(cl[i].c);
                g_free(cl[i].path);
        }
        g_free(cl);
        /* Explicit reservations outlive their clients' connections. */
        g_assert_cmpuint(n_reservations(f->c), ==, N_CLIENTS / 2);
}

/* ---- 12. readiness and watchdog ---- */

static const Params params_no_daemon = { .no_daemon = TRUE };

static void test_ready_watchdog(Fixture *f, gconstpointer data) {
        const char *const env[] = { "WATCHDOG_USEC=200000", NULL };

        daemon_start(f);
        g_assert_true(test_daemon_got_ready(f->d));
        /* No watchdog was asked for, so none is sent. */
        g_assert_false(test_daemon_wait_notify(f->d, "WATCHDOG=1", 300));
        daemon_end(f, SIGTERM);

        f->d = test_daemon_start_full(f->bus, fake_kernel_root(f->fk), f->state_dir, f->config, NULL, env, TRUE);
        g_assert_true(test_daemon_got_ready(f->d));
        g_assert_true(test_daemon_wait_notify(f->d, "WATCHDOG=1", 3000));
        g_assert_true(test_daemon_wait_notify(f->d, "WATCHDOG=1", 3000));
        ping(f->c);
}

/* ---- 12b. no blocking, warm pools (issue 7) ---- */

static const Params params_warm = {
        .config = DEFAULT_CONFIG "[Pool 2M]\nShrinkDelaySec=60\n",
};

/* A guest reboot: release, then the same reservation again within the delay. No write reaches the kernel. */
static void test_warm_reboot(Fixture *f, gconstpointer data) {
        g_autofree char *p1 = NULL, *p2 = NULL;
        guint64 writes;

        p1 = reserve_ok(f->c, "vm1", PS2M, 64 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 64);
        writes = fake_kernel_get(f->fk, 0, KB2M, "writes");
        release_ok(f->c, "vm1");
        /* The pages stay in the pool as spare. */
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 64);
        g_assert_cmpuint(prop_u64(f->c, NODE0_PATH, POOL_IFACE, "Reserved"), ==, 0);
        p2 = reserve_ok(f->c, "vm1", PS2M, 64 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, KB2M, "writes"), ==, writes);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 64);

        /* A restart keeps the spare as spare: not adopted into Floor, not thrown back. */
        release_ok(f->c, "vm1");
        daemon_end(f, SIGTERM);
        daemon_start(f);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 64);
        g_assert_cmpuint(prop_u64(f->c, NODE0_PATH, POOL_IFACE, "Floor"), ==, 0);
        g_free(p2);
        p2 = reserve_ok(f->c, "vm1", PS2M, 64 * PS2M, test_opts("{'nodes': <[uint32 0]>}"));
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
                ping(f->c);
        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 0);
        g_assert_null(slow);
        while (!slow)
                g_main_context_iteration(NULL, TRUE);
        fake_kernel_control(f->fk, "delay_ms 0");
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 8);
        g_assert_cmpuint(prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "StatsPagesFirstWrite"), >=, 8);
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

        p = reserve_ok(f->c, "good", 0, 0, test_opts("{'node_bytes': <[(uint32 1, uint64 6291456)]>}"));
        v = get_all(f->c, p, RES_IFACE);
        daemon_end(f, SIGTERM);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 3);

        g_assert_true(g_file_get_contents(state_path, &good, NULL, NULL));
        bad = g_strconcat("\x01\x02 this is not a state file\n\xff\xfe garbage\n", good,
                          "\n[Reservation evil]\nPageSize=2097152\nPages=lots\nNode=1 100\n"
                          "\n[Reservation half]\nPageSize=2097152\nPages=4\nLifetime=explicit\nOwnerUID=0\n"
                          "Node=0 3\n\n[Nonsense]\nx=y\n",
                          NULL);
        g_assert_true(g_file_set_contents(state_path, bad, -1, NULL));
        g_assert_cmpuint(count_corrupt(f->state_dir), ==, 0);

        daemon_start(f);
        s = reservations_str(f->c);
        g_assert_cmpstr(s, ==, "good:2097152:3:0:explicit:" RES_PREFIX "good");
        v2 = get_all(f->c, p, RES_IFACE);
        g_assert_cmpvariant(v2, v);
        g_assert_cmpuint(count_corrupt(f->state_dir), ==, 1);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 3);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        g_assert_cmpuint(prop_u64(f->c, NODE1_PATH, POOL_IFACE, "Reserved"), ==, 3);
        g_assert_cmpuint(pool_floor(f->c, 1), ==, 0);

        /* The file it wrote back is clean: another restart keeps it and sets nothing aside. */
        daemon_end(f, SIGTERM);
        daemon_start(f);
        g_clear_pointer(&s, g_free);
        s = reservations_str(f->c);
        g_assert_cmpstr(s, ==, "good:2097152:3:0:explicit:" RES_PREFIX "good");
        g_assert_cmpuint(count_corrupt(f->state_dir), ==, 1);
        release_ok(f->c, "good");
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
}

int main(int argc, char *argv[]) {
        test_harness_init(&argc, &argv);
        if (!fake_kernel_available())
                return 77;

#define ADD(path, params, fn) g_test_add(path, Fixture, params, setup, fn, teardown)
        ADD("/bus/introspection", NULL, test_introspection);
        ADD("/bus/manager-properties", NULL, test_manager_properties);
        ADD("/bus/reserve-release", &params_floor_node1, test_reserve_release);
        ADD("/bus/options", NULL, test_options);
        ADD("/bus/errors", NULL, test_errors);
        ADD("/bus/limits", &params_limits, test_limits);
        ADD("/bus/invalid-args", NULL, test_invalid_args);
        ADD("/bus/access-denied", NULL, test_access_denied);
        ADD("/bus/malformed", NULL, test_malformed);
        ADD("/bus/signals", NULL, test_signals);
        ADD("/bus/signals-burst", NULL, test_signals_burst);
        ADD("/bus/lifetime/caller", NULL, test_lifetime_caller);
        ADD("/bus/lifetime/pid", NULL, test_lifetime_pid);
        ADD("/bus/restart/sigkill", &params_floor_node0, test_restart_sigkill);
        ADD("/bus/restart/sigterm", NULL, test_sigterm_keeps_pools);
        ADD("/bus/restart/gone-owners", NULL, test_restart_releases_gone_owners);
        ADD("/bus/restart/live-caller", NULL, test_restart_keeps_live_caller);
        ADD("/bus/restart/mid-request", NULL, test_restart_mid_request);
        ADD("/bus/outside-change", NULL, test_outside_change);
        ADD("/bus/many-clients", &params_floor_node1_7, test_many_clients);
        ADD("/bus/ready-watchdog", &params_no_daemon, test_ready_watchdog);
        ADD("/bus/bad-config", &params_no_daemon, test_bad_config);
        ADD("/bus/corrupt-state", NULL, test_corrupt_state);
        ADD("/bus/warm-reboot", &params_warm, test_warm_reboot);
        ADD("/bus/no-blocking", NULL, test_no_blocking);
        return g_test_run();
}
