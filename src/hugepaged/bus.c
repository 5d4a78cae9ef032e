/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The BusContext: the connection and what the bus side keeps, its life cycle, the registration of the objects,
 * and the observer table through which the core's changes become signals. */
#include <errno.h>
#include <stdlib.h>

#include "bus-errors.h"
#include "bus-polkit.h"
#include "bus.h"
#include "log.h"
#include "macro.h"

static void on_pools_changed(void *userdata) {
        bus_emit_pools_changed(userdata);
}

static void on_pool_added(void *userdata, Pool *p) {
        bus_pool_emit_added(userdata, p);
}

static void on_pool_removed(void *userdata, Pool *p) {
        bus_pool_emit_removed(userdata, p);
}

static void on_nodes_changed(void *userdata) {
        bus_manager_emit_nodes_changed(userdata);
}

static void on_reservation_added(void *userdata, Reservation *r) {
        bus_reservation_emit_added(userdata, r);
}

static void on_reservation_removed(void *userdata, Reservation *r) {
        bus_reservation_emit_removed(userdata, r);
}

static void on_reservation_state_changed(void *userdata, Reservation *r) {
        bus_reservation_emit_state_changed(userdata, r);
}

static bool on_caller_alive(void *userdata, const char *caller) {
        return bus_caller_alive(userdata, caller);
}

static void on_flush(void *userdata) {
        bus_flush_pools_changed(userdata);
}

static const ManagerObserver bus_observer = {
        .pools_changed = on_pools_changed,
        .pool_added = on_pool_added,
        .pool_removed = on_pool_removed,
        .nodes_changed = on_nodes_changed,
        .reservation_added = on_reservation_added,
        .reservation_removed = on_reservation_removed,
        .reservation_state_changed = on_reservation_state_changed,
        .caller_alive = on_caller_alive,
        .flush = on_flush,
};

int bus_context_new_for(Manager *m, sd_bus *bus, BusContext **ret) {
        BusContext *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->bus = bus;
        manager_set_observer(m, &bus_observer, c);
        *ret = c;
        return 0;
}

int bus_context_new(Manager *m, sd_event *event, BusContext **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system_with_description(&bus, "hugepaged");
        if (r < 0)
                return log_error_errno(r, "cannot connect to the system bus (DBUS_SYSTEM_BUS_ADDRESS=%s): %m",
                                       getenv("DBUS_SYSTEM_BUS_ADDRESS") ?: "unset");
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "cannot attach the bus to the event loop: %m");
        r = bus_context_new_for(m, bus, ret);
        if (r < 0)
                return log_error_errno(r, "cannot allocate the bus context: %m");
        TAKE_PTR(bus);
        return 0;
}

BusContext *bus_context_free(BusContext *c) {
        if (!c)
                return NULL;
        /* The manager is gone already (it sends its last signals through c as it goes): c->manager is not
         * touched here. */
        /* Before the bus goes: pending checks hold slots and tracks on it. */
        c->polkit_registry = polkit_registry_free(c->polkit_registry);
        bus_reservation_untrack_all(c);
        sd_event_source_disable_unref(c->emit_pools_source);
        free(c->emitted);
        for (size_t i = 0; i < ELEMENTSOF(c->sender_uids); i++)
                free(c->sender_uids[i].name);
        sd_bus_flush_close_unref(c->bus);
        free(c);
        return NULL;
}

int bus_register(BusContext *c) {
        Manager *m = c->manager;
        int r;

        r = sd_bus_error_add_map(hugepaged_error_map);
        if (r < 0)
                return log_error_errno(r, "cannot register the error map: %m");
        r = sd_bus_add_object_vtable(c->bus, NULL, BUS_PATH, HP_BUS_IFACE_MANAGER, manager_vtable, c);
        if (r < 0)
                return log_error_errno(r, "cannot register the manager object: %m");
        r = sd_bus_add_fallback_vtable(c->bus, NULL, BUS_POOL_PREFIX, HP_BUS_IFACE_POOL, pool_vtable,
                                       bus_pool_find, c);
        if (r < 0)
                return log_error_errno(r, "cannot register the pool objects: %m");
        r = sd_bus_add_node_enumerator(c->bus, NULL, BUS_POOL_PREFIX, bus_pool_enumerate, c);
        if (r < 0)
                return log_error_errno(r, "cannot register the pool enumerator: %m");
        r = sd_bus_add_fallback_vtable(c->bus, NULL, BUS_RESERVATION_PREFIX, HP_BUS_IFACE_RESERVATION,
                                       reservation_vtable, bus_reservation_find, c);
        if (r < 0)
                return log_error_errno(r, "cannot register the reservation objects: %m");
        r = sd_bus_add_node_enumerator(c->bus, NULL, BUS_RESERVATION_PREFIX, bus_reservation_enumerate, c);
        if (r < 0)
                return log_error_errno(r, "cannot register the reservation enumerator: %m");
        r = sd_bus_add_object_manager(c->bus, NULL, BUS_PATH);
        if (r < 0)
                return log_error_errno(r, "cannot register the object manager: %m");

        c->emitted_reserved_bytes = manager_reserved_bytes(m);
        for (size_t i = 0; i < m->n_reservations; i++)
                if (m->reservations[i]->lifetime == LIFETIME_CALLER) {
                        r = bus_reservation_track_caller(c, m->reservations[i]);
                        if (r < 0)
                                log_warning_errno(r, "cannot track the caller of %s: %m", m->reservations[i]->name);
                }
        bus_emit_pools_changed(c);
        return 0;
}

const char *bus_sender_or_na(sd_bus_message *message) {
        return sd_bus_message_get_sender(message) ?: "n/a";
}

void bus_reply_done(sd_bus_message *message, int r, const HpError *e) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int k;

        if (r == -ECANCELED)
                (void) sd_bus_error_set(&error, SD_BUS_ERROR_FAILED, "hugepaged is shutting down");
        else if (e && e->code != HP_OK)
                (void) bus_error_from_hp(&error, e);
        else
                (void) sd_bus_error_set_errno(&error, r);
        k = sd_bus_reply_method_error(message, &error);
        if (k < 0)
                log_debug_errno(k, "cannot reply to %s: %m", bus_sender_or_na(message));
}
