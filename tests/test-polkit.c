/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Authorization tests: the real hugepaged on the enforcing test bus, python-dbusmock's polkitd template standing
 * in for polkit, and callers running as unprivileged uids through setpriv. Covers the bus policy, the polkit
 * actions, owners, the [Limits] of hugepaged.conf, the asynchronous check, and the bounds on pending checks. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "hp-client.h"
#include "hp-fixture.h"

#define PS2M (2ULL * 1024 * 1024)
#define KB2M 2048
#define NOBODY 65534
/* A second unprivileged uid; dbus-daemon refuses uids without a passwd entry, and Debian always has daemon. */
#define OTHER 1

#define MANAGER_PATH HP_BUS_PATH
#define MANAGER_IFACE HP_BUS_IFACE_MANAGER
#define RES_IFACE HP_BUS_IFACE_RESERVATION
#define RES_PREFIX HP_BUS_RESERVATION_PREFIX "/"
#define NODE0_PATH HP_BUS_POOL_PREFIX "/2048kB/node0"

#define E_ACCESS "org.freedesktop.DBus.Error.AccessDenied"
#define E_LIMIT HP_BUS_ERROR_LIMIT_EXCEEDED
#define E_LIMITS "org.freedesktop.DBus.Error.LimitsExceeded"

#define A_RESERVE HP_POLKIT_ACTION_RESERVE
#define A_RELEASE_ANY HP_POLKIT_ACTION_RELEASE_ANY
#define A_MANAGE HP_POLKIT_ACTION_MANAGE

#define POLKIT_NAME HP_POLKIT_NAME
#define POLKIT_PATH HP_POLKIT_PATH
#define MOCK_IFACE HP_POLKIT_MOCK_IFACE

#define PYTHON HP_TEST_PYTHON
#define BASE_CONFIG HP_TEST_DEFAULT_CONFIG
#define WAIT_MS 15000

/* ---- fixture ---- */

typedef HpFixture Fixture;

/* The mock polkitd on the bus; whatever a test did, the daemon must still be alive and stop cleanly. */
#define PARAMS(...) { .polkit = TRUE, .daemon_end = HP_DAEMON_END_MUST_RUN, __VA_ARGS__ }
static const HpTestParams params_default = PARAMS();

static void child_setup(gpointer data) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                _exit(127);
}

static gboolean name_has_owner(GDBusConnection *c, const char *name) {
        return hp_name_has_owner(c, name);
}

#define WAIT_FOR(cond, ms) HP_WAIT_FOR(cond, ms)

/* ---- helpers ---- */

static void polkit_mock(Fixture *f, const char *method, GVariant *args) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(f->c, POLKIT_NAME, POLKIT_PATH, MOCK_IFACE, method, args,
                                                            NULL, G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS,
                                                            NULL, &e);
        g_assert_no_error(e);
}

/* SetAllowed(actions): NULL-terminated. */
static void polkit_allow(Fixture *f, const char *const *actions) {
        polkit_mock(f, "SetAllowed", g_variant_new("(^as)", actions ?: (const char *const[]) { NULL }));
}

static gboolean polkit_has_hanging(Fixture *f) {
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(f->c, POLKIT_NAME, POLKIT_PATH, MOCK_IFACE,
                                                            "HaveHangingCalls", NULL, G_VARIANT_TYPE("(b)"),
                                                            G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS, NULL, NULL);
        gboolean b = FALSE;
        g_assert_nonnull(r);
        g_variant_get(r, "(b)", &b);
        return b;
}

static guint64 nr(Fixture *f, int node) {
        return fake_kernel_get(f->fk, node, KB2M, "nr");
}

static char *kernel_snapshot(Fixture *f) {
        return g_strdup_printf("%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, nr(f, 0), nr(f, 1));
}

/* argv of `setpriv` running prog as uid (and gid) with no supplementary groups. */
static GPtrArray *as_user(uid_t uid, const char *prog) {
        GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(a, g_strdup("setpriv"));
        g_ptr_array_add(a, g_strdup_printf("--reuid=%u", (unsigned) uid));
        g_ptr_array_add(a, g_strdup_printf("--regid=%u", (unsigned) uid));
        g_ptr_array_add(a, g_strdup("--clear-groups"));
        g_ptr_array_add(a, g_strdup(prog));
        return a;
}

static int run_sync(GPtrArray *argv, char **ret_output) {
        g_autofree char *out = NULL, *err = NULL, *cmd = NULL;
        g_autoptr(GError) e = NULL;
        int status = -1;

        g_ptr_array_add(argv, NULL);
        cmd = g_strjoinv(" ", (char **) argv->pdata);
        g_assert_true(g_spawn_sync(NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, child_setup, NULL, &out,
                                   &err, &status, &e));
        g_assert_no_error(e);
        *ret_output = g_strconcat(out, err, NULL);
        g_test_message("%s: status %d: %s", cmd, status, *ret_output);
        g_assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* `gdbus call` as uid on dest/path, method "iface.Member", then the GVariant-text arguments (NULL-terminated). */
static GPtrArray *gdbus_argv(uid_t uid, const char *dest, const char *path, const char *method, va_list ap) {
        GPtrArray *a = as_user(uid, "gdbus");
        const char *arg;

        for (const char *s = "call\0--system\0--timeout\0" "60\0"; *s; s += strlen(s) + 1)
                g_ptr_array_add(a, g_strdup(s));
        g_ptr_array_add(a, g_strdup("--dest"));
        g_ptr_array_add(a, g_strdup(dest));
        g_ptr_array_add(a, g_strdup("--object-path"));
        g_ptr_array_add(a, g_strdup(path));
        g_ptr_array_add(a, g_strdup("--method"));
        g_ptr_array_add(a, g_strdup(method));
        while ((arg = va_arg(ap, const char *)))
                g_ptr_array_add(a, g_strdup(arg));
        return a;
}

static int G_GNUC_NULL_TERMINATED gdbus_as(uid_t uid, char **ret_output, const char *dest, const char *path,
                                          const char *method, ...) {
        g_autoptr(GPtrArray) a = NULL;
        va_list ap;

        va_start(ap, method);
        a = gdbus_argv(uid, dest, path, method, ap);
        va_end(ap);
        return run_sync(a, ret_output);
}

#define call_as(uid, out, path, method, ...) gdbus_as(uid, out, TEST_BUS_NAME, path, method, ##__VA_ARGS__, NULL)

/* Reserve(name, 0, bytes, {}) as uid. Returns the exit status of gdbus; output in *ret_output. */
static int reserve_as(uid_t uid, const char *name, guint64 bytes, char **ret_output) {
        g_autofree char *n = g_strdup_printf("'%s'", name), *b = g_strdup_printf("uint64 %" G_GUINT64_FORMAT, bytes);
        return call_as(uid, ret_output, MANAGER_PATH, MANAGER_IFACE ".Reserve", n, "uint64 0", b, "@a{sv} {}");
}

static void reserve_as_ok(uid_t uid, const char *name, guint64 bytes) {
        g_autofree char *out = NULL;
        g_assert_cmpint(reserve_as(uid, name, bytes, &out), ==, 0);
        g_assert_nonnull(strstr(out, HP_BUS_RESERVATION_PREFIX "/"));
}

/* Asserts failure with error name, and that the message contains needle (if not NULL). */
static void reserve_as_fails(uid_t uid, const char *name, guint64 bytes, const char *error, const char *needle) {
        g_autofree char *out = NULL;
        g_assert_cmpint(reserve_as(uid, name, bytes, &out), !=, 0);
        g_assert_nonnull(strstr(out, error));
        if (needle)
                g_assert_nonnull(strstr(out, needle));
}

static int release_as(uid_t uid, const char *name, char **ret_output) {
        g_autofree char *n = g_strdup_printf("'%s'", name);
        return call_as(uid, ret_output, MANAGER_PATH, MANAGER_IFACE ".Release", n);
}

static void release_as_ok(uid_t uid, const char *name) {
        g_autofree char *out = NULL;
        g_assert_cmpint(release_as(uid, name, &out), ==, 0);
}

static GVariant *root_call(Fixture *f, const char *path, const char *iface, const char *method, GVariant *args,
                           const char *type, GError **error) {
        return test_call(f->c, path, iface, method, args, type ? G_VARIANT_TYPE(type) : NULL, error);
}

static void root_reserve(Fixture *f, const char *name, guint64 bytes) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = root_call(f, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                                          g_variant_new("(stt@a{sv})", name, (guint64) 0, bytes,
                                                        g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)),
                                          "(o)", &e);
        g_assert_no_error(e);
}

static void root_reserve_fails(Fixture *f, const char *name, guint64 bytes, const char *error, const char *needle) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = root_call(f, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                                          g_variant_new("(stt@a{sv})", name, (guint64) 0, bytes,
                                                        g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)),
                                          "(o)", &e);
        g_autofree char *remote = NULL;
        g_assert_null(r);
        g_assert_nonnull(e);
        remote = g_dbus_error_get_remote_error(e);
        g_test_message("root Reserve %s: %s", name, e->message);
        g_assert_cmpstr(remote, ==, error);
        if (needle)
                g_assert_nonnull(strstr(e->message, needle));
}

static void root_release(Fixture *f, const char *name) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = root_call(f, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(s)", name),
                                          NULL, &e);
        g_assert_no_error(e);
}

/* "name:uid" of every reservation, sorted by name, joined with spaces. */
static char *reservations(Fixture *f) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = root_call(f, MANAGER_PATH, MANAGER_IFACE, "ListReservations", NULL, "(a(sttuso))", &e);
        g_autoptr(GVariantIter) it = NULL;
        GString *s = g_string_new(NULL);
        const char *name;
        guint32 uid;

        g_assert_no_error(e);
        g_variant_get(r, "(a(sttuso))", &it);
        while (g_variant_iter_next(it, "(&sttu&so)", &name, NULL, NULL, &uid, NULL, NULL))
                g_string_append_printf(s, "%s%s:%u", s->len ? " " : "", name, uid);
        return g_string_free(s, FALSE);
}

static void assert_reservations(Fixture *f, const char *expected) {
        g_autofree char *s = reservations(f);
        g_assert_cmpstr(s, ==, expected);
}

/* ---- the files ---- */

static char *xmllint(const char *const *args) {
        g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *out = NULL;

        g_ptr_array_add(a, g_strdup("xmllint"));
        g_ptr_array_add(a, g_strdup("--nonet"));
        for (; *args; args++)
                g_ptr_array_add(a, g_strdup(*args));
        g_assert_cmpint(run_sync(a, &out), ==, 0);
        return g_strstrip(g_steal_pointer(&out));
}

static char *xpath(const char *file, const char *expr) {
        return xmllint((const char *const[]) { "--xpath", expr, file, NULL });
}

static void test_policy_file(void) {
        g_autofree char *file = g_build_filename(g_getenv("HUGEPAGED_SOURCE_ROOT"), "dbus",
                                                HP_BUS_NAME ".policy", NULL);
        const char *dtd = "/usr/share/polkit-1/policyconfig-1.dtd";
        static const char *const actions[] = { A_RESERVE, A_RELEASE_ANY, A_MANAGE };
        g_autofree char *out = NULL, *n = NULL;

        if (g_file_test(dtd, G_FILE_TEST_EXISTS))
                out = xmllint((const char *const[]) { "--noout", "--dtdvalid", dtd, file, NULL });
        else
                out = xmllint((const char *const[]) { "--noout", file, NULL });
        g_assert_cmpstr(out, ==, "");

        n = xpath(file, "count(//action)");
        g_assert_cmpstr(n, ==, "3");
        for (size_t i = 0; i < G_N_ELEMENTS(actions); i++) {
                static const char *const keys[][2] = {
                        { "allow_any", "no" }, { "allow_inactive", "no" }, { "allow_active", "auth_admin_keep" } };
                for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
                        g_autofree char *expr = g_strdup_printf("string(//action[@id='%s']/defaults/%s)", actions[i],
                                                                keys[k][0]);
                        g_autofree char *v = xpath(file, expr);
                        g_assert_cmpstr(v, ==, keys[k][1]);
                }
        }
}

static void test_bus_policy_file(void) {
        g_autofree char *file = g_build_filename(g_getenv("HUGEPAGED_SOURCE_ROOT"), "dbus",
                                                HP_BUS_NAME ".conf", NULL);
        static const char *const ifaces[] = {
                HP_BUS_IFACE_MANAGER, HP_BUS_IFACE_RESERVATION, "org.freedesktop.DBus.Properties",
                "org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Peer",
                "org.freedesktop.DBus.ObjectManager",
        };
        g_autofree char *out = NULL, *v = NULL, *owners = NULL, *root_own = NULL, *sends = NULL, *loose = NULL;

        /* dbus-daemon's busconfig DTD is not installed on Debian; well-formedness plus the rules themselves. */
        out = xmllint((const char *const[]) { "--noout", file, NULL });
        g_assert_cmpstr(out, ==, "");
        owners = xpath(file, "count(//allow[@own or @own_prefix])");
        g_assert_cmpstr(owners, ==, "1");
        root_own = xpath(file, "string(//policy[@user='root']/allow/@own)");
        g_assert_cmpstr(root_own, ==, HP_BUS_NAME);
        sends = xpath(file, "count(//allow[@send_destination])");
        g_assert_cmpstr(sends, ==, "6");
        /* Every send rule names its interface: nothing else reaches the daemon. */
        loose = xpath(file, "count(//allow[@send_destination and not(@send_interface)] | //allow[@send_type] | "
                            "//allow[@send_member] | //allow[@send_path])");
        g_assert_cmpstr(loose, ==, "0");
        for (size_t i = 0; i < G_N_ELEMENTS(ifaces); i++) {
                g_autofree char *expr = g_strdup_printf(
                        "count(//policy[@context='default']/allow[@send_destination='org.hugepaged1' and "
                        "@send_interface='%s'])", ifaces[i]);
                g_autofree char *c = xpath(file, expr);
                g_assert_cmpstr(c, ==, "1");
        }
}

/* ---- the bus policy, live ---- */

static void test_bus_policy(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL;

        root_reserve(f, "roots", 2 * PS2M);

        /* Nobody else may own the name. */
        g_assert_cmpint(gdbus_as(NOBODY, &out, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus.RequestName", HP_BUS_NAME, "uint32 4", NULL), !=, 0);
        g_assert_nonnull(strstr(out, E_ACCESS));
        g_assert_nonnull(strstr(out, HP_BUS_NAME));
        g_clear_pointer(&out, g_free);

        /* Reading is for everyone, through every standard interface the policy lists. */
        g_assert_cmpint(call_as(NOBODY, &out, MANAGER_PATH, MANAGER_IFACE ".ListPools"), ==, 0);
        g_assert_nonnull(strstr(out, "uint64 2097152, -1"));
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(call_as(NOBODY, &out, NODE0_PATH, "org.freedesktop.DBus.Properties.GetAll",
                                "'org.hugepaged1.Pool'"), ==, 0);
        g_assert_nonnull(strstr(out, "'Total'"));
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(call_as(NOBODY, &out, MANAGER_PATH, MANAGER_IFACE ".ListReservations"), ==, 0);
        g_assert_nonnull(strstr(out, "'roots'"));
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(call_as(NOBODY, &out, MANAGER_PATH, MANAGER_IFACE ".GetReservation", "'roots'"), ==, 0);
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(call_as(NOBODY, &out, MANAGER_PATH, "org.freedesktop.DBus.Introspectable.Introspect"), ==, 0);
        g_assert_nonnull(strstr(out, HP_BUS_IFACE_MANAGER));
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(call_as(NOBODY, &out, MANAGER_PATH, "org.freedesktop.DBus.Peer.Ping"), ==, 0);
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(call_as(NOBODY, &out, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager.GetManagedObjects"),
                        ==, 0);
        g_assert_nonnull(strstr(out, HP_BUS_RESERVATION_PREFIX "/roots"));
        g_clear_pointer(&out, g_free);

        /* Anything else is stopped by the bus, for everyone. */
        g_assert_cmpint(call_as(NOBODY, &out, MANAGER_PATH, "org.hugepaged1.Pool.Frobnicate"), !=, 0);
        g_assert_nonnull(strstr(out, E_ACCESS));
        g_assert_nonnull(strstr(out, "Rejected send message"));
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(call_as(0, &out, MANAGER_PATH, "org.freedesktop.DBus.Debug.Frobnicate"), !=, 0);
        g_assert_nonnull(strstr(out, "Rejected send message"));
        g_clear_pointer(&out, g_free);
        assert_reservations(f, "roots:0");
}

/* ---- Reserve ---- */

static void test_reserve(Fixture *f, gconstpointer data) {
        g_autofree char *before = kernel_snapshot(f), *after = NULL;

        /* polkit denies everything by default. */
        reserve_as_fails(NOBODY, "mine", 2 * PS2M, E_ACCESS, "not authorized by polkit for " A_RESERVE);
        polkit_allow(f, (const char *const[]) { A_RELEASE_ANY, A_MANAGE, NULL });
        reserve_as_fails(NOBODY, "mine", 2 * PS2M, E_ACCESS, A_RESERVE);
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);
        assert_reservations(f, "");

        polkit_allow(f, (const char *const[]) { A_RESERVE, NULL });
        reserve_as_ok(NOBODY, "mine", 2 * PS2M);
        assert_reservations(f, "mine:65534");
        g_assert_cmpuint(nr(f, 0) + nr(f, 1), ==, 2);

        /* Nothing is remembered from one call to the next. */
        polkit_allow(f, NULL);
        reserve_as_fails(NOBODY, "mine2", 2 * PS2M, E_ACCESS, A_RESERVE);
        /* Root is never asked about. */
        root_reserve(f, "roots", PS2M);
        assert_reservations(f, "mine:65534 roots:0");
}

/* ---- Release ---- */

static void test_release(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL;
        g_autofree char *roots_path = g_strdup(HP_BUS_RESERVATION_PREFIX "/roots");

        root_reserve(f, "roots", 2 * PS2M);
        polkit_allow(f, (const char *const[]) { A_RESERVE, NULL });
        reserve_as_ok(NOBODY, "mine", PS2M);
        reserve_as_ok(NOBODY, "mine2", PS2M);
        reserve_as_ok(OTHER, "other", PS2M);
        reserve_as_ok(OTHER, "other2", PS2M);

        /* Not someone else's, through either Release. */
        g_assert_cmpint(release_as(NOBODY, "roots", &out), !=, 0);
        g_assert_nonnull(strstr(out, E_ACCESS));
        g_assert_nonnull(strstr(out, "belongs to uid 0"));
        g_assert_nonnull(strstr(out, A_RELEASE_ANY));
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(call_as(NOBODY, &out, roots_path, RES_IFACE ".Release"), !=, 0);
        g_assert_nonnull(strstr(out, E_ACCESS));
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(release_as(NOBODY, "other", &out), !=, 0);
        g_assert_nonnull(strstr(out, "belongs to uid 1;"));
        g_clear_pointer(&out, g_free);
        assert_reservations(f, "mine:65534 mine2:65534 other:1 other2:1 roots:0");

        /* Its own, through either. */
        g_assert_cmpint(release_as(NOBODY, "mine", &out), ==, 0);
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(call_as(OTHER, &out, RES_PREFIX "other", RES_IFACE ".Release"), ==, 0);
        g_clear_pointer(&out, g_free);
        assert_reservations(f, "mine2:65534 other2:1 roots:0");

        /* Root releases anyone's. */
        root_release(f, "mine2");

        /* With release-any, anyone's, root's too. */
        polkit_allow(f, (const char *const[]) { A_RELEASE_ANY, NULL });
        g_assert_cmpint(release_as(NOBODY, "roots", &out), ==, 0);
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(call_as(NOBODY, &out, RES_PREFIX "other2", RES_IFACE ".Release"), ==, 0);
        assert_reservations(f, "");
        g_assert_cmpuint(nr(f, 0) + nr(f, 1), ==, 0);
}

/* ---- limits ---- */

static const HpTestParams params_per_user =
        PARAMS(.config = BASE_CONFIG "[Limits]\nMaxReservationsPerUser=3\nMaxBytesPerUser=10M\n");

static void test_limits_per_user(Fixture *f, gconstpointer data) {
        polkit_allow(f, (const char *const[]) { A_RESERVE, NULL });

        /* Count: 3 yes, the 4th no; an identical retry is not a new one. */
        reserve_as_ok(NOBODY, "a", PS2M);
        reserve_as_ok(NOBODY, "b", PS2M);
        reserve_as_ok(NOBODY, "c", PS2M);
        reserve_as_fails(NOBODY, "d", PS2M, E_LIMIT, "MaxReservationsPerUser=");
        reserve_as_ok(NOBODY, "a", PS2M);
        /* Another user has its own count. */
        reserve_as_ok(OTHER, "o1", PS2M);

        /* Bytes: 3 x 2M held, up to 10M is fine, one page more is not (sizes round up to pages). */
        release_as_ok(NOBODY, "c");
        reserve_as_fails(NOBODY, "big", 3 * PS2M + 1, E_LIMIT, "MaxBytesPerUser=");
        reserve_as_ok(NOBODY, "big", 3 * PS2M);
        release_as_ok(NOBODY, "a");
        reserve_as_fails(NOBODY, "e", 2 * PS2M, E_LIMIT, "would bring uid 65534 to 12 MiB");
        reserve_as_ok(NOBODY, "e", PS2M);
        assert_reservations(f, "b:65534 big:65534 e:65534 o1:1");

        /* Root is not a user for these limits. */
        for (int i = 0; i < 5; i++) {
                g_autofree char *name = g_strdup_printf("r%d", i);
                root_reserve(f, name, 4 * PS2M);
        }
}

static const HpTestParams params_global = PARAMS(.config = BASE_CONFIG "[Limits]\nMaxReservedBytes=16M\n");

static void test_limits_global(Fixture *f, gconstpointer data) {
        polkit_allow(f, (const char *const[]) { A_RESERVE, NULL });

        root_reserve(f, "r1", 10 * 1024 * 1024);
        reserve_as_ok(NOBODY, "n1", 3 * PS2M);
        /* 16M reserved: not a page more, not even for root. */
        root_reserve_fails(f, "r2", PS2M, E_LIMIT, "MaxReservedBytes=16 MiB");
        reserve_as_fails(NOBODY, "n2", PS2M, E_LIMIT, "MaxReservedBytes=");
        root_release(f, "r1");
        reserve_as_ok(NOBODY, "n2", 5 * PS2M);
        root_reserve_fails(f, "r2", PS2M, E_LIMIT, "would bring the reserved total to 18 MiB");
        assert_reservations(f, "n1:65534 n2:65534");
}

static const HpTestParams params_global_percent = PARAMS(.config = BASE_CONFIG "[Limits]\nMaxReservedBytes=1%\n");

static void test_limits_global_percent(Fixture *f, gconstpointer data) {
        g_autofree char *meminfo = fake_kernel_read(f->fk, "proc/meminfo");
        guint64 kb = 0, limit, pages;
        const char *p;

        g_assert_nonnull(meminfo);
        p = strstr(meminfo, "MemTotal:");
        g_assert_nonnull(p);
        kb = g_ascii_strtoull(p + strlen("MemTotal:"), NULL, 10);
        g_assert_cmpuint(kb, >, 0);
        limit = kb * 1024 / 100;
        pages = limit / PS2M;
        g_test_message("MemTotal %" G_GUINT64_FORMAT " kB: 1%% is %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT
                       " 2M pages", kb, limit, pages);

        root_reserve(f, "all", pages * PS2M);
        root_reserve_fails(f, "more", PS2M, E_LIMIT, "MaxReservedBytes=1%");
        root_release(f, "all");
        root_reserve_fails(f, "all", (pages + 1) * PS2M, E_LIMIT, "MaxReservedBytes=1%");
}

/* ---- the check is asynchronous ---- */

typedef struct Bg {
        GPid pid;
        char *out_path;
} Bg;

/* Starts argv (consumed) in the background, stdout+stderr to a file. */
static Bg *bg_start(Fixture *f, GPtrArray *argv) {
        static unsigned n;
        Bg *b = g_new0(Bg, 1);
        g_autoptr(GError) e = NULL;
        int fd;

        b->out_path = g_strdup_printf("%s/bg-%u.out", f->dir, n++);
        fd = open(b->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        g_assert_cmpint(fd, >=, 0);
        g_ptr_array_add(argv, NULL);
        g_assert_true(g_spawn_async_with_fds(NULL, (char **) argv->pdata, NULL,
                                             G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH, child_setup, NULL,
                                             &b->pid, -1, fd, fd, &e));
        g_assert_no_error(e);
        close(fd);
        g_ptr_array_unref(argv);
        return b;
}

static char *bg_output(Bg *b) {
        char *s = NULL;
        if (!g_file_get_contents(b->out_path, &s, NULL, NULL))
                s = g_strdup("");
        return s;
}

static gboolean bg_output_has(Bg *b, const char *needle) {
        g_autofree char *s = bg_output(b);
        return strstr(s, needle) != NULL;
}

static guint bg_output_count(Bg *b, const char *needle) {
        g_autofree char *s = bg_output(b);
        guint n = 0;
        for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* Waits for the process (killing it first if sig) and returns its exit status, or 128+signal. */
static int bg_wait(Bg *b, int sig) {
        int status = -1;
        if (sig)
                (void) kill(b->pid, sig);
        g_assert_cmpint(waitpid(b->pid, &status, 0), ==, b->pid);
        b->pid = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void bg_free(Bg *b) {
        if (!b)
                return;
        if (b->pid > 0)
                (void) bg_wait(b, SIGKILL);
        g_free(b->out_path);
        g_free(b);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Bg, bg_free)

static Bg *reserve_bg(Fixture *f, uid_t uid, const char *name) {
        g_autofree char *n = g_strdup_printf("'%s'", name);
        GPtrArray *a = as_user(uid, "gdbus");

        for (const char *s = "call\0--system\0--timeout\0" "60\0--dest\0" TEST_BUS_NAME "\0--object-path\0" MANAGER_PATH
                             "\0--method\0" MANAGER_IFACE ".Reserve\0";
             *s; s += strlen(s) + 1)
                g_ptr_array_add(a, g_strdup(s));
        g_ptr_array_add(a, g_strdup(n));
        g_ptr_array_add(a, g_strdup("uint64 0"));
        g_ptr_array_add(a, g_strdup_printf("uint64 %llu", PS2M));
        g_ptr_array_add(a, g_strdup("@a{sv} {}"));
        return bg_start(f, a);
}

static void test_hang_release(Fixture *f, gconstpointer data) {
        g_autoptr(Bg) slow = NULL;
        g_autofree char *out = NULL, *s = NULL;
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) v = NULL;

        polkit_allow(f, (const char *const[]) { A_RESERVE, NULL });
        polkit_mock(f, "SimulateHangActions", g_variant_new("(^as)", (const char *const[]) { A_RESERVE, NULL }));

        slow = reserve_bg(f, NOBODY, "slow");
        WAIT_FOR(polkit_has_hanging(f), WAIT_MS);

        /* While polkit thinks, everyone else is answered, unprivileged callers too. */
        v = root_call(f, MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, NULL, &e);
        g_assert_no_error(e);
        g_clear_pointer(&v, g_variant_unref);
        v = root_call(f, MANAGER_PATH, MANAGER_IFACE, "ListPools", NULL, "(a(tittttt))", &e);
        g_assert_no_error(e);
        g_assert_cmpint(call_as(NOBODY, &out, MANAGER_PATH, "org.freedesktop.DBus.Peer.Ping"), ==, 0);
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(call_as(OTHER, &out, MANAGER_PATH, MANAGER_IFACE ".ListPools"), ==, 0);
        g_clear_pointer(&out, g_free);
        root_reserve(f, "fast", PS2M);
        assert_reservations(f, "fast:0");
        g_assert_false(bg_output_has(slow, "objectpath"));
        g_assert_cmpint(kill(slow->pid, 0), ==, 0);

        /* polkit answers: the very call that waited completes. */
        polkit_mock(f, "ReleaseHangingCalls", NULL);
        g_assert_cmpint(bg_wait(slow, 0), ==, 0);
        s = bg_output(slow);
        g_assert_nonnull(strstr(s, "objectpath '/org/hugepaged1/reservation/slow'"));
        assert_reservations(f, "fast:0 slow:65534");
}

/* ---- polkit absent ---- */

static const HpTestParams params_no_polkit = { .daemon_end = HP_DAEMON_END_MUST_RUN };

static void test_no_polkit(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL, *before = NULL, *after = NULL;

        g_assert_false(name_has_owner(f->c, POLKIT_NAME));
        before = kernel_snapshot(f);
        reserve_as_fails(NOBODY, "mine", PS2M, E_ACCESS, "polkit is not available");
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);

        root_reserve(f, "roots", PS2M);
        g_assert_cmpint(release_as(NOBODY, "roots", &out), !=, 0);
        g_assert_nonnull(strstr(out, E_ACCESS));
        g_assert_nonnull(strstr(out, "polkit is not available"));
        g_clear_pointer(&out, g_free);
        /* Reading needs no polkit. */
        g_assert_cmpint(call_as(NOBODY, &out, MANAGER_PATH, MANAGER_IFACE ".ListPools"), ==, 0);
        assert_reservations(f, "roots:0");
        root_release(f, "roots");
        assert_reservations(f, "");
}

/* ---- callers that leave, and callers that flood ---- */

static void test_disconnect(Fixture *f, gconstpointer data) {
        g_autoptr(Bg) gone = NULL;

        polkit_allow(f, (const char *const[]) { A_RESERVE, NULL });
        polkit_mock(f, "SimulateHangActions", g_variant_new("(^as)", (const char *const[]) { A_RESERVE, NULL }));

        gone = reserve_bg(f, NOBODY, "gone");
        WAIT_FOR(polkit_has_hanging(f), WAIT_MS);
        g_assert_cmpint(bg_wait(gone, SIGKILL), ==, 128 + SIGKILL);
        g_assert_true(test_daemon_wait_log(f->d, "left the bus while its check for " A_RESERVE " was pending",
                                           WAIT_MS));

        /* polkit's late yes lands nowhere. */
        polkit_mock(f, "ReleaseHangingCalls", NULL);
        polkit_mock(f, "SimulateHangActions", g_variant_new("(^as)", (const char *const[]) { NULL }));
        reserve_as_ok(NOBODY, "after", PS2M);
        assert_reservations(f, "after:65534");
        g_assert_cmpuint(nr(f, 0) + nr(f, 1), ==, 1);
}

static GPtrArray *flood_argv(uid_t uid, unsigned n, gboolean hold, const char *prefix) {
        g_autofree char *script = g_build_filename(g_getenv("HUGEPAGED_SOURCE_ROOT"), "tests", "polkit-flood.py",
                                                   NULL);
        GPtrArray *a = as_user(uid, PYTHON);
        g_ptr_array_add(a, g_strdup(script));
        g_ptr_array_add(a, g_strdup_printf("%u", n));
        g_ptr_array_add(a, g_strdup(hold ? "--hold" : "0.5"));
        if (hold)
                g_ptr_array_add(a, g_strdup("0"));
        g_ptr_array_add(a, g_strdup(prefix));
        return a;
}

#define PER_SENDER_MAX 16 /* POLKIT_PENDING_PER_SENDER_MAX */
#define PENDING_MAX 64 /* POLKIT_PENDING_MAX */

static void test_flood(Fixture *f, gconstpointer data) {
        g_autoptr(GPtrArray) holders = g_ptr_array_new_with_free_func((GDestroyNotify) bg_free);
        g_autofree char *before = kernel_snapshot(f), *after = NULL;
        g_autoptr(Bg) one = NULL, many = NULL;
        g_autofree char *out = NULL;

        polkit_allow(f, (const char *const[]) { A_RESERVE, NULL });
        polkit_mock(f, "SimulateHangActions", g_variant_new("(^as)", (const char *const[]) { A_RESERVE, NULL }));

        /* One connection gets PER_SENDER_MAX checks pending, no more. */
        many = bg_start(f, flood_argv(NOBODY, PER_SENDER_MAX + 4, FALSE, "many"));
        g_assert_cmpint(bg_wait(many, 0), ==, 0);
        g_assert_true(bg_output_has(many, "ready"));
        g_assert_cmpuint(bg_output_count(many, "error " E_LIMITS), ==, 4);
        g_assert_cmpuint(bg_output_count(many, "reply"), ==, 0);

        /* It left: its checks are gone. PENDING_MAX / PER_SENDER_MAX connections fill the daemon... */
        for (unsigned i = 0; i < PENDING_MAX / PER_SENDER_MAX; i++) {
                g_autofree char *prefix = g_strdup_printf("hold%u", i);
                Bg *b = bg_start(f, flood_argv(i % 2 ? NOBODY : OTHER, PER_SENDER_MAX, TRUE, prefix));
                g_ptr_array_add(holders, b);
        }
        for (unsigned i = 0; i < holders->len; i++) {
                Bg *b = holders->pdata[i];
                WAIT_FOR(bg_output_has(b, "ready"), WAIT_MS);
                g_assert_cmpuint(bg_output_count(b, "error"), ==, 0);
        }
        /* ... and the next caller is refused at once instead of queued; reading still works. */
        one = bg_start(f, flood_argv(NOBODY, 1, FALSE, "one"));
        g_assert_cmpint(bg_wait(one, 0), ==, 0);
        g_assert_cmpuint(bg_output_count(one, "error " E_LIMITS), ==, 1);
        g_clear_pointer(&one, bg_free);
        g_assert_cmpint(call_as(NOBODY, &out, MANAGER_PATH, MANAGER_IFACE ".ListPools"), ==, 0);

        /* The holders leave: every entry they had goes with them, so there is room again. */
        g_ptr_array_set_size(holders, 0);
        WAIT_FOR(({
                         g_autoptr(Bg) b = bg_start(f, flood_argv(NOBODY, 1, FALSE, "again"));
                         bg_wait(b, 0) == 0 && bg_output_has(b, "ready") && bg_output_count(b, "error") == 0;
                 }),
                 WAIT_MS);

        /* polkit's late answers to the dropped checks land nowhere; nothing was reserved or touched. */
        polkit_mock(f, "ReleaseHangingCalls", NULL);
        assert_reservations(f, "");
        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);
        g_assert_true(test_daemon_is_running(f->d));
}

/* ---- what polkit is asked ---- */

typedef struct Monitor {
        GMutex lock;
        GPtrArray *calls; /* GVariant bodies of CheckAuthorization */
} Monitor;

static GDBusMessage *monitor_filter(GDBusConnection *c, GDBusMessage *m, gboolean incoming, gpointer data) {
        Monitor *mon = data;
        if (!incoming || g_dbus_message_get_message_type(m) != G_DBUS_MESSAGE_TYPE_METHOD_CALL)
                return m; /* e.g. the reply to BecomeMonitor */
        if (g_strcmp0(g_dbus_message_get_member(m), "CheckAuthorization") == 0) {
                g_mutex_lock(&mon->lock);
                g_ptr_array_add(mon->calls, g_variant_ref(g_dbus_message_get_body(m)));
                g_mutex_unlock(&mon->lock);
        }
        /* The calls a monitor sees are not for it: GDBus must not answer them. */
        g_object_unref(m);
        return NULL;
}

static guint monitor_count(Monitor *mon) {
        g_mutex_lock(&mon->lock);
        guint n = mon->calls->len;
        g_mutex_unlock(&mon->lock);
        return n;
}

static int busctl_reserve_as(uid_t uid, const char *name, gboolean interactive) {
        g_autoptr(GPtrArray) a = as_user(uid, "busctl");
        g_autofree char *out = NULL;
        g_ptr_array_add(a, g_strdup("--system"));
        g_ptr_array_add(a, g_strdup_printf("--allow-interactive-authorization=%s", interactive ? "yes" : "no"));
        for (const char *s = "call\0" TEST_BUS_NAME "\0" MANAGER_PATH "\0" MANAGER_IFACE "\0Reserve\0stta{sv}\0"; *s;
             s += strlen(s) + 1)
                g_ptr_array_add(a, g_strdup(s));
        g_ptr_array_add(a, g_strdup(name));
        g_ptr_array_add(a, g_strdup("0"));
        g_ptr_array_add(a, g_strdup_printf("%llu", PS2M));
        g_ptr_array_add(a, g_strdup("0"));
        return run_sync(a, &out);
}

static void test_check_details(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) mc = test_bus_connect(f->bus);
        static const char *const rules[] = {
                "type='method_call',interface='org.freedesktop.PolicyKit1.Authority',member='CheckAuthorization'",
                NULL };
        Monitor mon = { .calls = g_ptr_array_new_with_free_func((GDestroyNotify) g_variant_unref) };
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = NULL;
        guint id;

        g_mutex_init(&mon.lock);
        id = g_dbus_connection_add_filter(mc, monitor_filter, &mon, NULL);
        r = g_dbus_connection_call_sync(mc, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
                                        g_variant_new("(^asu)", rules, 0), NULL, G_DBUS_CALL_FLAGS_NONE,
                                        TEST_CALL_TIMEOUT_MS, NULL, &e);
        g_assert_no_error(e);
        polkit_allow(f, (const char *const[]) { A_RESERVE, NULL });

        g_assert_cmpint(busctl_reserve_as(NOBODY, "inter", TRUE), ==, 0);
        WAIT_FOR(monitor_count(&mon) >= 1, WAIT_MS);
        g_assert_cmpint(busctl_reserve_as(NOBODY, "plain", FALSE), ==, 0);
        WAIT_FOR(monitor_count(&mon) >= 2, WAIT_MS);
        /* Root is never asked about. */
        root_reserve(f, "roots", PS2M);
        assert_reservations(f, "inter:65534 plain:65534 roots:0");
        g_assert_cmpuint(monitor_count(&mon), ==, 2);

        g_mutex_lock(&mon.lock);
        for (guint i = 0; i < 2; i++) {
                GVariant *body = mon.calls->pdata[i];
                g_autoptr(GVariant) subject_details = NULL, details = NULL;
                const char *kind, *action, *cancel, *bus_name = NULL;
                guint32 flags;

                g_autofree char *text = g_variant_print(body, TRUE);

                g_test_message("CheckAuthorization%s", text);
                g_assert_cmpstr(g_variant_get_type_string(body), ==, "((sa{sv})sa{ss}us)");
                g_variant_get(body, "((&s@a{sv})&s@a{ss}u&s)", &kind, &subject_details, &action, &details, &flags,
                              &cancel);
                g_assert_cmpstr(kind, ==, "system-bus-name");
                g_assert_true(g_variant_lookup(subject_details, "name", "&s", &bus_name));
                g_assert_true(bus_name[0] == ':');
                g_assert_cmpstr(action, ==, A_RESERVE);
                g_assert_cmpuint(g_variant_n_children(details), ==, 0);
                /* AllowUserInteraction exactly when the caller allowed interactive authorization. */
                g_assert_cmpuint(flags, ==, i == 0 ? 1 : 0);
        }
        g_mutex_unlock(&mon.lock);

        g_dbus_connection_remove_filter(mc, id);
        (void) g_dbus_connection_close_sync(mc, NULL, NULL);
        g_ptr_array_unref(mon.calls);
        g_mutex_clear(&mon.lock);
}

static gboolean have_prerequisites(void) {
        const char *check[] = { PYTHON, "-c", "import dbus, dbusmock, gi", NULL };
        int status = -1;

        if (getuid() != 0) {
                g_printerr("test-polkit: needs root to run callers as other uids\n");
                return FALSE;
        }
        if (!g_spawn_sync(NULL, (char **) check, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                          NULL, NULL, NULL, NULL, &status, NULL) ||
            !g_spawn_check_wait_status(status, NULL)) {
                g_printerr("test-polkit: %s cannot import dbusmock (python3-dbusmock)\n", PYTHON);
                return FALSE;
        }
        return TRUE;
}

int main(int argc, char *argv[]) {
        test_harness_init(&argc, &argv);

        /* The files need nothing but xmllint. */
        g_test_add_func("/polkit/files/policy", test_policy_file);
        g_test_add_func("/polkit/files/bus-policy", test_bus_policy_file);
        if (!fake_kernel_available() || !have_prerequisites())
                return g_test_run() == 0 ? 77 : 1;

#define ADD(path, params, fn) g_test_add(path, HpFixture, params, hp_fixture_setup, fn, hp_fixture_teardown)
        ADD("/polkit/bus-policy", &params_default, test_bus_policy);
        ADD("/polkit/reserve", &params_default, test_reserve);
        ADD("/polkit/release", &params_default, test_release);
        ADD("/polkit/limits/per-user", &params_per_user, test_limits_per_user);
        ADD("/polkit/limits/global", &params_global, test_limits_global);
        ADD("/polkit/limits/global-percent", &params_global_percent, test_limits_global_percent);
        ADD("/polkit/hang", &params_default, test_hang_release);
        ADD("/polkit/absent", &params_no_polkit, test_no_polkit);
        ADD("/polkit/disconnect", &params_default, test_disconnect);
        ADD("/polkit/flood", &params_default, test_flood);
        ADD("/polkit/check-details", &params_default, test_check_details);
        return g_test_run();
}
