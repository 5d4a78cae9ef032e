/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bus tests' client helpers: see hp-client.h. */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hp-client.h"

void hp_tick(void) {
        while (g_main_context_iteration(NULL, FALSE))
                ;
        g_usleep(5000);
}

void hp_assert_dbus_error(const GError *e, const char *name) {
        g_autofree char *remote = NULL;

        g_assert_nonnull(e);
        remote = g_dbus_error_get_remote_error(e);
        if (g_strcmp0(remote, name) != 0)
                g_test_message("expected %s, got: %s", name, e->message);
        g_assert_cmpstr(remote, ==, name);
}

GVariant *hp_call_ok(GDBusConnection *c, const char *path, const char *iface, const char *method, GVariant *args,
                     const char *reply_type) {
        g_autoptr(GError) e = NULL;
        GVariant *reply = test_call(c, path, iface, method, args, reply_type ? G_VARIANT_TYPE(reply_type) : NULL,
                                    &e);

        g_assert_no_error(e);
        g_assert_nonnull(reply);
        return reply;
}

GError *hp_call_fails(GDBusConnection *c, const char *path, const char *iface, const char *method, GVariant *args,
                      const char *error_name) {
        g_autoptr(GVariant) reply = NULL;
        GError *e = NULL;

        reply = test_call(c, path, iface, method, args, NULL, &e);
        g_assert_null(reply);
        hp_assert_dbus_error(e, error_name);
        return e;
}

char *hp_reserve(GDBusConnection *c, const char *name, guint64 ps, guint64 bytes, GVariant *options,
                 GError **error) {
        g_autoptr(GVariant) reply = NULL;
        char *path = NULL;

        if (!options)
                options = g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
        reply = test_call(c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "Reserve",
                          g_variant_new("(stt@a{sv})", name, ps, bytes, options), G_VARIANT_TYPE("(o)"), error);
        if (reply)
                g_variant_get(reply, "(o)", &path);
        return path;
}

char *hp_reserve_ok(GDBusConnection *c, const char *name, guint64 ps, guint64 bytes, GVariant *options) {
        g_autoptr(GError) e = NULL;
        char *path = hp_reserve(c, name, ps, bytes, options, &e);

        g_assert_no_error(e);
        g_assert_nonnull(path);
        return path;
}

GError *hp_reserve_fails(GDBusConnection *c, const char *name, guint64 ps, guint64 bytes, GVariant *options,
                         const char *error_name) {
        g_autofree char *path = NULL;
        GError *e = NULL;

        path = hp_reserve(c, name, ps, bytes, options, &e);
        g_assert_null(path);
        hp_assert_dbus_error(e, error_name);
        return e;
}

void hp_release_ok(GDBusConnection *c, const char *name) {
        g_autoptr(GVariant) r = NULL;

        r = hp_call_ok(c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "Release", g_variant_new("(s)", name), "()");
}

/* Every byte but [A-Za-z] and non-leading [0-9] as _xx; the empty name as "_". */
char *hp_res_path(const char *name) {
        GString *s = g_string_new(HP_BUS_RESERVATION_PREFIX "/");

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

char *hp_pool_path(guint64 kb, int node) {
        return g_strdup_printf(HP_BUS_POOL_PREFIX "/%" G_GUINT64_FORMAT "kB/node%d", kb, node);
}

guint64 hp_prop_u64(GDBusConnection *c, const char *path, const char *iface, const char *prop) {
        g_autoptr(GVariant) v = test_get_property(c, path, iface, prop);

        g_assert_true(g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64));
        return g_variant_get_uint64(v);
}

char *hp_prop_str(GDBusConnection *c, const char *path, const char *iface, const char *prop) {
        g_autoptr(GVariant) v = test_get_property(c, path, iface, prop);

        return g_variant_print(v, FALSE);
}

GVariant *hp_get_all(GDBusConnection *c, const char *path, const char *iface) {
        g_autoptr(GVariant) reply = NULL;

        reply = hp_call_ok(c, path, HP_PROPS_IFACE, "GetAll", g_variant_new("(s)", iface), "(a{sv})");

        return g_variant_get_child_value(reply, 0);
}

char *hp_pools_str(GDBusConnection *c) {
        g_autoptr(GVariant) reply = hp_call_ok(c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "ListPools", NULL,
                                               "(a(tittttt))");
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

gboolean hp_pool_row(GDBusConnection *c, guint64 ps, int node, guint64 *ret_total, guint64 *ret_reserved,
                     guint64 *ret_floor) {
        g_autoptr(GVariant) reply = hp_call_ok(c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "ListPools", NULL,
                                               "(a(tittttt))");
        g_autoptr(GVariantIter) it = NULL;
        guint64 p, total, free_, surplus, reserved, floor_;
        gint32 n;

        g_variant_get(reply, "(a(tittttt))", &it);
        while (g_variant_iter_next(it, "(tittttt)", &p, &n, &total, &free_, &surplus, &reserved, &floor_))
                if (p == ps && n == node) {
                        *ret_total = total;
                        *ret_reserved = reserved;
                        *ret_floor = floor_;
                        return TRUE;
                }
        return FALSE;
}

static int strcmp_indirect(gconstpointer a, gconstpointer b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

char *hp_reservations_str(GDBusConnection *c) {
        g_autoptr(GVariant) reply = hp_call_ok(c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "ListReservations", NULL,
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

guint hp_n_reservations(GDBusConnection *c) {
        g_autoptr(GVariant) reply = hp_call_ok(c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "ListReservations", NULL,
                                               "(a(sttuso))");
        g_autoptr(GVariant) a = g_variant_get_child_value(reply, 0);

        return (guint) g_variant_n_children(a);
}

char *hp_get_reservation(GDBusConnection *c, const char *name) {
        g_autoptr(GVariant) reply = hp_call_ok(c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "GetReservation",
                                               g_variant_new("(s)", name), "(o)");
        char *path = NULL;

        g_variant_get(reply, "(o)", &path);
        return path;
}

void hp_ping(GDBusConnection *c) {
        g_autoptr(GVariant) r = hp_call_ok(c, "/", "org.freedesktop.DBus.Peer", "Ping", NULL, "()");
}

static GVariant *dbus_call(GDBusConnection *c, const char *method, const char *name, const char *reply_type,
                           GError **error) {
        return g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus", method, g_variant_new("(s)", name),
                                           G_VARIANT_TYPE(reply_type), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, error);
}

char *hp_name_owner(GDBusConnection *c) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = dbus_call(c, "GetNameOwner", TEST_BUS_NAME, "(s)", &e);
        char *owner = NULL;

        g_assert_no_error(e);
        g_variant_get(r, "(s)", &owner);
        return owner;
}

guint32 hp_owner_pid(GDBusConnection *c) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = dbus_call(c, "GetConnectionUnixProcessID", TEST_BUS_NAME, "(u)", &e);
        guint32 pid = 0;

        g_assert_no_error(e);
        g_variant_get(r, "(u)", &pid);
        return pid;
}

gboolean hp_name_has_owner(GDBusConnection *c, const char *name) {
        g_autoptr(GVariant) r = dbus_call(c, "NameHasOwner", name, "(b)", NULL);
        gboolean b = FALSE;

        if (r)
                g_variant_get(r, "(b)", &b);
        return b;
}

GVariant *hp_opt_one(const char *key, GVariant *value) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", key, value);
        return g_variant_builder_end(&b);
}

static void sleep_child_setup(gpointer user_data) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != (pid_t) GPOINTER_TO_INT(user_data))
                _exit(127);
}

GPid hp_spawn_sleep(void) {
        const char *argv[] = { "sleep", "60", NULL };
        g_autoptr(GError) e = NULL;
        GPid pid = 0;

        g_assert_true(g_spawn_async(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                    sleep_child_setup, GINT_TO_POINTER((int) getpid()), &pid, &e));
        g_assert_no_error(e);
        return pid;
}

void hp_kill_and_reap(GPid pid) {
        int status;

        g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
}
