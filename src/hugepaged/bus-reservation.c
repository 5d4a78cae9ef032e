/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.hugepaged1.Reservation objects, one per grant, at /org/hugepaged1/reservation/<encoded name>. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "bus-polkit.h"
#include "bus.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "util.h"

/* While a reservation is being removed it must still be found, so InterfacesRemoved can list its interfaces. */
static Reservation *dying;

int bus_reservation_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                         sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        Manager *m = userdata;
        Reservation *r;
        int k;

        k = sd_bus_path_decode(path, BUS_RESERVATION_PREFIX, &name);
        if (k <= 0)
                return 0;
        if (dying && streq(dying->name, name)) {
                *ret_found = dying;
                return 1;
        }
        r = manager_find_reservation(m, name);
        if (!r)
                return 0;
        *ret_found = r;
        return 1;
}

int bus_reservation_enumerate(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes, sd_bus_error *error) {
        Manager *m = userdata;
        char **l = calloc(m->n_reservations + 1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_reservations; i++)
                if (!(l[i] = strdup(m->reservations[i]->path))) {
                        strv_free(l);
                        return -ENOMEM;
                }
        *ret_nodes = l;
        return 0;
}

static int property_get_name(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Reservation *r = userdata;
        return sd_bus_message_append(reply, "s", r->name);
}

static int property_get_lifetime(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Reservation *r = userdata;
        return sd_bus_message_append(reply, "s", lifetime_to_string(r->lifetime));
}

static int property_get_node_pages(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Reservation *r = userdata;
        int k = sd_bus_message_open_container(reply, 'a', "(ut)");
        if (k < 0)
                return k;
        for (size_t i = 0; i < r->n_node_pages; i++) {
                k = sd_bus_message_append(reply, "(ut)", r->node_pages[i].node, r->node_pages[i].pages);
                if (k < 0)
                        return k;
        }
        return sd_bus_message_close_container(reply);
}

static int property_get_uid(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Reservation *r = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t) r->uid);
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Reservation *r = userdata;
        return sd_bus_message_append(reply, "s", reservation_state_to_string(r));
}

static int method_release_impl(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Reservation *r = userdata;
        return bus_release(r->manager, r, message, error);
}
BUS_METHOD_WRAP(method_release)

/* Who may bind a reservation to a process: as for Release, its owner, root, or whoever polkit lets release any
 * reservation. Returns as bus_verify_owner_or_polkit(): 1 yes, 0 polkit is being asked, <0 no. */
static int bind_process_check_access(Reservation *r, sd_bus_message *message, sd_bus_error *error) {
        char what[RESERVATION_NAME_MAX + 16];

        (void) snprintf(what, sizeof(what), "reservation %s", r->name);
        return bus_verify_owner_or_polkit(r->manager, message, r->uid, POLKIT_ACTION_RELEASE_ANY, what, error);
}

static int method_bind_process_impl(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Reservation *r = userdata;
        Manager *m = r->manager;
        Lifetime old_lifetime = r->lifetime;
        uint32_t old_pid = r->pid, pid;
        HpError e = {};
        int k;

        k = sd_bus_message_read(message, "u", &pid);
        if (k < 0)
                return k;
        k = bind_process_check_access(r, message, error);
        if (k < 0)
                return k;
        if (k == 0)
                return 1; /* polkit is asked; the call is dispatched again with its answer */
        k = manager_bind_process(m, r, pid, &e);
        if (k < 0)
                return bus_error_from_hp(error, &e);
        if (m->bus && (r->lifetime != old_lifetime || r->pid != old_pid)) {
                k = sd_bus_emit_properties_changed(m->bus, r->path, HP_BUS_IFACE_RESERVATION, "Lifetime", "PID",
                                                   NULL);
                if (k < 0)
                        log_debug_errno(k, "cannot emit PropertiesChanged for %s: %m", r->path);
        }
        return sd_bus_reply_method_return(message, NULL);
}
BUS_METHOD_WRAP(method_bind_process)

const sd_bus_vtable reservation_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PageSize", "t", NULL, offsetof(Reservation, page_size), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Pages", "t", NULL, offsetof(Reservation, pages), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("NodePages", "a(ut)", property_get_node_pages, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("OwnerUID", "u", property_get_uid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Lifetime", "s", property_get_lifetime, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PID", "u", NULL, offsetof(Reservation, pid), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CreatedUSec", "t", NULL, offsetof(Reservation, created_usec), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Release", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_release,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("BindProcess", SD_BUS_ARGS("u", pid), SD_BUS_NO_RESULT, method_bind_process,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int on_caller_gone(sd_bus_track *t, void *userdata) {
        Reservation *r = userdata;
        HpError e = {};

        log_info("caller %s of reservation %s left the bus, releasing it", r->caller, r->name);
        if (manager_release_async(r->manager, r, NULL, NULL, &e) < 0)
                log_error("releasing reservation failed: %s", e.message);
        return 0;
}

int bus_reservation_track_caller(Reservation *r) {
        int k;

        k = sd_bus_track_new(r->manager->bus, &r->track, on_caller_gone, r);
        if (k < 0)
                return k;
        return sd_bus_track_add_name(r->track, r->caller);
}

void bus_reservation_emit_added(Manager *m, Reservation *r) {
        int k;
        if (!m->bus)
                return;
        k = sd_bus_emit_object_added(m->bus, r->path);
        if (k < 0)
                log_debug_errno(k, "cannot emit InterfacesAdded for %s: %m", r->path);
}

void bus_reservation_emit_removed(Manager *m, Reservation *r) {
        int k;
        if (!m->bus)
                return;
        dying = r;
        k = sd_bus_emit_object_removed(m->bus, r->path);
        dying = NULL;
        if (k < 0)
                log_debug_errno(k, "cannot emit InterfacesRemoved for %s: %m", r->path);
}

void bus_reservation_emit_state_changed(Manager *m, Reservation *r) {
        int k;
        if (!m->bus)
                return;
        k = sd_bus_emit_properties_changed(m->bus, r->path, HP_BUS_IFACE_RESERVATION, "State", NULL);
        if (k < 0)
                log_debug_errno(k, "cannot emit PropertiesChanged for %s: %m", r->path);
}
