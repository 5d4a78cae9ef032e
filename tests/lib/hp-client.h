/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bus tests' client side: calls to org.hugepaged1 that assert their outcome, Reserve/Release, properties,
 * ListPools and ListReservations printed for exact comparison, and polling waits. */
#pragma once

#include <gio/gio.h>

#include "bus-harness.h"

G_BEGIN_DECLS

#define HP_PROPS_IFACE "org.freedesktop.DBus.Properties"
#define HP_OM_IFACE "org.freedesktop.DBus.ObjectManager"
#define HP_E_INVALID_ARGS "org.freedesktop.DBus.Error.InvalidArgs"

/* Drains the default main context once, then sleeps a little; for polling loops. */
void hp_tick(void);

/* Polls cond for up to ms; on timeout fails with the condition's text. */
#define HP_WAIT_FOR(cond, ms)                                                                           \
        G_STMT_START {                                                                                  \
                gint64 _deadline = g_get_monotonic_time() + (gint64) (ms) * 1000;                       \
                while (!(cond)) {                                                                       \
                        if (g_get_monotonic_time() > _deadline) {                                       \
                                g_assert_true(cond);                                                    \
                                break;                                                                  \
                        }                                                                               \
                        hp_tick();                                                                      \
                }                                                                                       \
        } G_STMT_END

void hp_assert_dbus_error(const GError *e, const char *name);
/* A call to org.hugepaged1 that must succeed (reply_type NULL: any) or fail with error_name. */
GVariant *hp_call_ok(GDBusConnection *c, const char *path, const char *iface, const char *method, GVariant *args,
                     const char *reply_type);
GError *hp_call_fails(GDBusConnection *c, const char *path, const char *iface, const char *method, GVariant *args,
                      const char *error_name);

/* Reserve(name, page_size, bytes, options); options NULL is {}. Returns the path or NULL with error set. */
char *hp_reserve(GDBusConnection *c, const char *name, guint64 ps, guint64 bytes, GVariant *options,
                 GError **error);
char *hp_reserve_ok(GDBusConnection *c, const char *name, guint64 ps, guint64 bytes, GVariant *options);
GError *hp_reserve_fails(GDBusConnection *c, const char *name, guint64 ps, guint64 bytes, GVariant *options,
                         const char *error_name);
void hp_release_ok(GDBusConnection *c, const char *name);

/* What sd_bus_path_encode() makes of a name under the reservation prefix. */
char *hp_res_path(const char *name);
/* The path of one pool, e.g. /org/hugepaged1/pool/2048kB/node0. */
char *hp_pool_path(guint64 kb, int node);

guint64 hp_prop_u64(GDBusConnection *c, const char *path, const char *iface, const char *prop);
/* A property printed without type annotations, e.g. "[(0, 2), (1, 3)]". */
char *hp_prop_str(GDBusConnection *c, const char *path, const char *iface, const char *prop);
/* Properties.GetAll, the a{sv}. */
GVariant *hp_get_all(GDBusConnection *c, const char *path, const char *iface);

/* ListPools as "2048kB/-1:total,free,surplus,reserved,floor 2048kB/0:... 1048576kB/-1:...". */
char *hp_pools_str(GDBusConnection *c);
/* One ListPools row (ps, node): FALSE if there is none. */
gboolean hp_pool_row(GDBusConnection *c, guint64 ps, int node, guint64 *ret_total, guint64 *ret_reserved,
                     guint64 *ret_floor);
/* ListReservations as "name:pagesize:pages:uid:lifetime:path" sorted, space separated. */
char *hp_reservations_str(GDBusConnection *c);
guint hp_n_reservations(GDBusConnection *c);
char *hp_get_reservation(GDBusConnection *c, const char *name);

void hp_ping(GDBusConnection *c);
/* The unique name and the pid of org.hugepaged1's owner. */
char *hp_name_owner(GDBusConnection *c);
guint32 hp_owner_pid(GDBusConnection *c);
gboolean hp_name_has_owner(GDBusConnection *c, const char *name);

/* {key: <value>}: for values the text format can't express, e.g. thousands of entries. */
GVariant *hp_opt_one(const char *key, GVariant *value);

/* A `sleep 60` that dies with us, and its end. */
GPid hp_spawn_sleep(void);
void hp_kill_and_reap(GPid pid);

G_END_DECLS
