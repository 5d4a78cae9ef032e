/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.hugepaged1.Manager at /org/hugepaged1: parses and bounds the arguments, calls the core, replies. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "bus-polkit.h"
#include "bus.h"
#include "build-config.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "util.h"

typedef struct ReserveOptions {
        uint32_t *nodes;
        size_t n_nodes;
        bool has_nodes;
        NodeAmount *node_bytes; /* (node, bytes) */
        size_t n_node_bytes;
        bool has_node_bytes;
        const char *lifetime;
        uint32_t pid;
        bool has_pid;
        int hold; /* -1: not given */
} ReserveOptions;

static void reserve_options_done(ReserveOptions *o) {
        free(o->nodes);
        free(o->node_bytes);
}

static int read_variant_type(sd_bus_message *m, const char *key, const char *want, sd_bus_error *error) {
        const char *contents;
        char type;
        int r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (type != SD_BUS_TYPE_VARIANT || !contents || !streq(contents, want))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "option '%s' must be of type '%s', not '%s'",
                                         key, want, contents ? contents : "?");
        return sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, want);
}

static int parse_reserve_options(sd_bus_message *m, ReserveOptions *o, sd_bus_error *error) {
        unsigned n_keys = 0;
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
                const char *key;

                /* Bounded: there are four keys, so a long options array is an attack or a bug. */
                if (++n_keys > 16)
                        return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "too many options");
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;

                if (streq(key, "nodes")) {
                        const void *p;
                        size_t sz;
                        if (o->has_nodes)
                                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "option 'nodes' given twice");
                        r = read_variant_type(m, key, "au", error);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_read_array(m, 'u', &p, &sz);
                        if (r < 0)
                                return r;
                        if (sz / sizeof(uint32_t) > NODE_MAX)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "option 'nodes' has more than %d entries", NODE_MAX);
                        o->n_nodes = sz / sizeof(uint32_t);
                        o->nodes = malloc(sz + 1);
                        if (!o->nodes)
                                return -ENOMEM;
                        memcpy(o->nodes, p, sz);
                        o->has_nodes = true;
                } else if (streq(key, "node_bytes")) {
                        if (o->has_node_bytes)
                                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                                        "option 'node_bytes' given twice");
                        r = read_variant_type(m, key, "a(ut)", error);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(ut)");
                        if (r < 0)
                                return r;
                        o->has_node_bytes = true;
                        for (;;) {
                                uint32_t node;
                                uint64_t bytes;
                                r = sd_bus_message_read(m, "(ut)", &node, &bytes);
                                if (r < 0)
                                        return r;
                                if (r == 0)
                                        break;
                                if (o->n_node_bytes >= NODE_MAX)
                                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                                 "option 'node_bytes' has more than %d entries",
                                                                 NODE_MAX);
                                NodeAmount *t = realloc(o->node_bytes, (o->n_node_bytes + 1) * sizeof(*t));
                                if (!t)
                                        return -ENOMEM;
                                o->node_bytes = t;
                                t[o->n_node_bytes++] = (NodeAmount) { node, bytes };
                        }
                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                } else if (streq(key, "lifetime")) {
                        if (o->lifetime)
                                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "option 'lifetime' given twice");
                        r = read_variant_type(m, key, "s", error);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_read(m, "s", &o->lifetime);
                        if (r < 0)
                                return r;
                } else if (streq(key, "pid")) {
                        if (o->has_pid)
                                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "option 'pid' given twice");
                        r = read_variant_type(m, key, "u", error);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_read(m, "u", &o->pid);
                        if (r < 0)
                                return r;
                        o->has_pid = true;
                } else if (streq(key, "hold")) {
                        if (o->hold >= 0)
                                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "option 'hold' given twice");
                        r = read_variant_type(m, key, "b", error);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_read(m, "b", &o->hold);
                        if (r < 0)
                                return r;
                        o->hold = !!o->hold;
                } else {
                        char safe[64];
                        size_t i;
                        /* Echo the key back only as far as it is printable and short. */
                        for (i = 0; key[i] && i < sizeof(safe) - 1; i++)
                                safe[i] = (key[i] >= 0x20 && key[i] < 0x7f) ? key[i] : '?';
                        safe[i] = '\0';
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "unknown option '%s%s': expected nodes, node_bytes, lifetime, pid or hold",
                                                 safe, key[i] ? "..." : "");
                }

                r = sd_bus_message_exit_container(m); /* variant */
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m); /* dict entry */
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static void reserve_done(Manager *m, int r, Reservation *res, bool existed, const HpError *e, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *message = userdata;
        _cleanup_free_ char *path = NULL;
        int k;

        if (r < 0) {
                bus_reply_done(message, r, e);
                return;
        }
        if (!existed && res->lifetime == LIFETIME_CALLER) {
                k = bus_reservation_track_caller(bus_context_of(m), res);
                if (k < 0) {
                        HpError e2 = {};
                        (void) manager_release_async(m, res, NULL, NULL, &e2);
                        (void) sd_bus_reply_method_errorf(message, SD_BUS_ERROR_FAILED, "cannot track the caller: %s",
                                                          strerror(-k));
                        return;
                }
        }
        k = bus_reservation_path(res, &path);
        if (k >= 0)
                k = sd_bus_reply_method_return(message, "o", path);
        if (k < 0)
                log_debug_errno(k, "cannot reply to %s: %m", bus_sender_or_na(message));
}

static int method_reserve_impl(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(reserve_options_done) ReserveOptions o = { .hold = -1 };
        BusContext *c = userdata;
        Manager *m = c->manager;
        ReserveRequest req = {};
        HpError e = {};
        const char *name;
        uint64_t page_size, bytes;
        uid_t uid;
        int r;

        r = sd_bus_message_read(message, "stt", &name, &page_size, &bytes);
        if (r < 0)
                return r;
        if (!reservation_name_is_valid(name))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "invalid reservation name: use 1 to %d characters from A-Z a-z 0-9 . _ : @ + -",
                                         RESERVATION_NAME_MAX);
        r = parse_reserve_options(message, &o, error);
        if (r < 0)
                return r;

        /* Only a well-formed request is worth polkit's (and an administrator's) time. */
        r = bus_verify_polkit_async(c, message, POLKIT_ACTION_RESERVE, error);
        if (r < 0)
                return r;
        if (r == 0)
                return 1; /* polkit is asked; the call is dispatched again with its answer */

        r = bus_message_get_sender_uid(c, message, &uid);
        if (r < 0)
                return r;

        req = (ReserveRequest) {
                .name = name,
                .page_size = page_size,
                .bytes = bytes,
                .nodes = o.nodes,
                .n_nodes = o.n_nodes,
                .has_nodes = o.has_nodes,
                .node_bytes = o.node_bytes,
                .n_node_bytes = o.n_node_bytes,
                .has_node_bytes = o.has_node_bytes,
                .lifetime = o.lifetime ? lifetime_from_string(o.lifetime) : LIFETIME_EXPLICIT,
                .pid = o.pid,
                .has_pid = o.has_pid,
                .uid = uid,
                .caller = sd_bus_message_get_sender(message),
                .hold = o.hold > 0,
        };
        if (req.lifetime < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                        "invalid lifetime: expected explicit, caller or pid");

        /* The kernel part runs in a worker thread: the reply is sent from reserve_done(), and the loop keeps
         * answering everyone else meanwhile. */
        r = manager_reserve_async(m, &req, reserve_done, sd_bus_message_ref(message), &e);
        if (r < 0) {
                sd_bus_message_unref(message);
                return e.code != HP_OK ? bus_error_from_hp(error, &e) : r;
        }
        return 1;
}
BUS_METHOD_WRAP(method_reserve)

static Reservation *find_by_name(Manager *m, const char *name, sd_bus_error *error) {
        Reservation *r;
        if (!reservation_name_is_valid(name)) {
                sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "invalid reservation name");
                return NULL;
        }
        r = manager_find_reservation(m, name);
        if (!r)
                sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_RESERVATION, "no reservation named %s", name);
        return r;
}

static int method_release_impl(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        Reservation *r;
        const char *name;
        int k;

        k = sd_bus_message_read(message, "s", &name);
        if (k < 0)
                return k;
        r = find_by_name(c->manager, name, error);
        if (!r)
                return -EINVAL;
        return bus_reservation_release(c, r, message, error);
}
BUS_METHOD_WRAP(method_release)

static int method_get_reservation_impl(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *path = NULL;
        BusContext *c = userdata;
        Reservation *r;
        const char *name;
        int k;

        k = sd_bus_message_read(message, "s", &name);
        if (k < 0)
                return k;
        r = find_by_name(c->manager, name, error);
        if (!r)
                return -EINVAL;
        k = bus_reservation_path(r, &path);
        if (k < 0)
                return k;
        return sd_bus_reply_method_return(message, "o", path);
}
BUS_METHOD_WRAP(method_get_reservation)

static int method_list_reservations_impl(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusContext *c = userdata;
        Manager *m = c->manager;
        int r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sttuso)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_reservations; i++) {
                _cleanup_free_ char *path = NULL;
                Reservation *res = m->reservations[i];
                r = bus_reservation_path(res, &path);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "(sttuso)", res->name, res->page_size, res->pages,
                                          (uint32_t) res->uid, lifetime_to_string(res->lifetime), path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
BUS_METHOD_WRAP(method_list_reservations)

static int method_list_pools_impl(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusContext *c = userdata;
        Manager *m = c->manager;
        int r;

        (void) manager_refresh(m);
        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(tittttt)");
        if (r < 0)
                return r;
        for (size_t s = 0; s < m->n_page_sizes; s++) {
                PoolValues t;
                manager_page_size_totals(m, m->page_sizes[s], &t);
                r = sd_bus_message_append(reply, "(tittttt)", m->page_sizes[s], (int32_t) -1, t.total, t.free,
                                          t.surplus, t.reserved, t.floor);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < m->n_pools; i++) {
                        Pool *p = m->pools[i];
                        if (p->page_size != m->page_sizes[s])
                                continue;
                        r = sd_bus_message_append(reply, "(tittttt)", p->page_size, (int32_t) p->node, p->counts.nr,
                                                  p->counts.free, p->counts.surplus, p->reserved, pool_floor(p));
                        if (r < 0)
                                return r;
                }
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
BUS_METHOD_WRAP(method_list_pools)

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_get_default_page_size(sd_bus *bus, const char *path, const char *interface,
                                          const char *property, sd_bus_message *reply, void *userdata,
                                          sd_bus_error *error) {
        Manager *m = ((BusContext *) userdata)->manager;
        return sd_bus_message_append(reply, "t", m->default_page_size);
}

static int property_get_page_sizes(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = ((BusContext *) userdata)->manager;
        return sd_bus_message_append_array(reply, 't', m->page_sizes, m->n_page_sizes * sizeof(uint64_t));
}

static int property_get_nodes(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = ((BusContext *) userdata)->manager;
        return sd_bus_message_append_array(reply, 'u', m->nodes, m->n_nodes * sizeof(uint32_t));
}

static int property_get_reserved_bytes(sd_bus *bus, const char *path, const char *interface, const char *property,
                                       sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = ((BusContext *) userdata)->manager;
        return sd_bus_message_append(reply, "t", manager_reserved_bytes(m));
}

static int property_get_stats(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const AllocStats *s = &((BusContext *) userdata)->manager->stats;
        uint64_t v;

        if (streq(property, "StatsPagesFirstWrite"))
                v = s->pages_first_write;
        else if (streq(property, "StatsPagesAfterCompaction"))
                v = s->pages_after_compaction;
        else if (streq(property, "StatsPagesAfterDropCaches"))
                v = s->pages_after_drop_caches;
        else
                v = s->retries;
        return sd_bus_message_append(reply, "t", v);
}

const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("DefaultPageSize", "t", property_get_default_page_size, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PageSizes", "at", property_get_page_sizes, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Nodes", "au", property_get_nodes, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ReservedBytes", "t", property_get_reserved_bytes, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StatsPagesFirstWrite", "t", property_get_stats, 0, 0),
        SD_BUS_PROPERTY("StatsPagesAfterCompaction", "t", property_get_stats, 0, 0),
        SD_BUS_PROPERTY("StatsPagesAfterDropCaches", "t", property_get_stats, 0, 0),
        SD_BUS_PROPERTY("StatsAllocationRetries", "t", property_get_stats, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("Reserve",
                                SD_BUS_ARGS("s", name, "t", page_size, "t", bytes, "a{sv}", options),
                                SD_BUS_RESULT("o", reservation),
                                method_reserve,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Release",
                                SD_BUS_ARGS("s", name),
                                SD_BUS_NO_RESULT,
                                method_release,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetReservation",
                                SD_BUS_ARGS("s", name),
                                SD_BUS_RESULT("o", reservation),
                                method_get_reservation,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListReservations",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sttuso)", reservations),
                                method_list_reservations,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListPools",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(tittttt)", pools),
                                method_list_pools,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

void bus_manager_emit_nodes_changed(BusContext *c) {
        int k;
        if (!c->bus)
                return;
        k = sd_bus_emit_properties_changed(c->bus, BUS_PATH, HP_BUS_IFACE_MANAGER, "Nodes", NULL);
        if (k < 0)
                log_debug_errno(k, "cannot emit PropertiesChanged for Nodes: %m");
}
