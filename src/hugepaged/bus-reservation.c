/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.hugepaged1.Reservation objects, one per grant, at /org/hugepaged1/reservation/<encoded name>. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "bus-errors.h"
#include "bus-polkit.h"
#include "bus.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "util.h"

static const char *strna(const char *s) {
        return s ?: "n/a";
}

/* The callers of LIFETIME_CALLER reservations: the core keeps the unique name as data, the bus watches it. */
struct BusCallerTrack {
        BusContext *context;
        char *name;              /* the reservation's */
        sd_bus_track *track;
        BusCallerTrack *next;
};

int bus_reservation_path(const Reservation *r, char **ret) {
        return sd_bus_path_encode(BUS_RESERVATION_PREFIX, r->name, ret);
}

/* While a reservation is being removed it must still be found, so InterfacesRemoved can list its interfaces. */
static Reservation *dying;

int bus_reservation_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                         sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        BusContext *c = userdata;
        Reservation *r;
        int k;

        k = sd_bus_path_decode(path, BUS_RESERVATION_PREFIX, &name);
        if (k <= 0)
                return 0;
        if (dying && streq(dying->name, name)) {
                *ret_found = dying;
                return 1;
        }
        r = manager_find_reservation(c->manager, name);
        if (!r)
                return 0;
        *ret_found = r;
        return 1;
}

int bus_reservation_enumerate(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes, sd_bus_error *error) {
        BusContext *c = userdata;
        Manager *m = c->manager;
        char **l = calloc(m->n_reservations + 1, sizeof(char *));
        int k;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_reservations; i++) {
                k = bus_reservation_path(m->reservations[i], &l[i]);
                if (k < 0) {
                        strv_free(l);
                        return k;
                }
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
                k = sd_bus_message_append(reply, "(ut)", r->node_pages[i].node, r->node_pages[i].amount);
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

/* Held and MountPath are set when the reservation is made or restored, before its object exists: const. A hold lost
 * across a restart shows as Held=false, MountPath "" and State "degraded". */
static int property_get_held(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Reservation *r = userdata;
        return sd_bus_message_append(reply, "b", r->held && r->mount_path);
}

static int property_get_mount_path(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Reservation *r = userdata;
        return sd_bus_message_append(reply, "s", r->held && r->mount_path ? r->mount_path : "");
}

static int method_release_impl(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Reservation *r = userdata;
        return bus_reservation_release(bus_context_of(r->manager), r, message, error);
}
BUS_METHOD_WRAP(method_release)

/* Who may bind a reservation to a process: as for Release, its owner, root, or whoever polkit lets release any
 * reservation. Returns as bus_verify_owner_or_polkit(): 1 yes, 0 polkit is being asked, <0 no. */
static int bind_process_check_access(Reservation *r, sd_bus_message *message, sd_bus_error *error) {
        char what[RESERVATION_NAME_MAX + 16];

        (void) snprintf(what, sizeof(what), "reservation %s", r->name);
        return bus_verify_owner_or_polkit(bus_context_of(r->manager), message, r->uid, POLKIT_ACTION_RELEASE_ANY, what, error);
}

static int method_bind_process_impl(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Reservation *r = userdata;
        Manager *m = r->manager;
        BusContext *c = bus_context_of(m);
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
        /* The process owns the pages now; the bus connection that reserved them no longer matters. */
        bus_reservation_untrack_caller(c, r);
        if (c->bus && (r->lifetime != old_lifetime || r->pid != old_pid)) {
                _cleanup_free_ char *path = NULL;
                k = bus_reservation_path(r, &path);
                if (k >= 0)
                        k = sd_bus_emit_properties_changed(c->bus, path, HP_BUS_IFACE_RESERVATION, "Lifetime",
                                                           "PID", NULL);
                if (k < 0)
                        log_debug_errno(k, "cannot emit PropertiesChanged for %s: %m", strna(path));
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
        SD_BUS_PROPERTY("Held", "b", property_get_held, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MountPath", "s", property_get_mount_path, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Release", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_release,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("BindProcess", SD_BUS_ARGS("u", pid), SD_BUS_NO_RESULT, method_bind_process,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static void release_done(Manager *m, int r, Reservation *res, bool existed, const HpError *e, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *message = userdata;
        int k;

        if (r < 0) {
                bus_reply_done(message, r, e);
                return;
        }
        k = sd_bus_reply_method_return(message, NULL);
        if (k < 0)
                log_debug_errno(k, "cannot reply to %s: %m", bus_sender_or_na(message));
}

int bus_reservation_release(BusContext *c, Reservation *r, sd_bus_message *message, sd_bus_error *error) {
        char what[RESERVATION_NAME_MAX + 16];
        HpError e = {};
        int k;

        (void) snprintf(what, sizeof(what), "reservation %s", r->name);
        k = bus_verify_owner_or_polkit(c, message, r->uid, POLKIT_ACTION_RELEASE_ANY, what, error);
        if (k < 0)
                return k;
        if (k == 0)
                return 1; /* polkit is asked; the call is dispatched again, and r looked up again */
        /* The reservation is gone on return; the reply waits for any shrink that follows. */
        k = manager_release_async(c->manager, r, release_done, sd_bus_message_ref(message), &e);
        if (k < 0) {
                sd_bus_message_unref(message);
                return bus_error_from_hp(error, &e);
        }
        return 1;
}

static BusCallerTrack *caller_track_free(BusContext *c, BusCallerTrack *t) {
        for (BusCallerTrack **pp = &c->tracks; *pp; pp = &(*pp)->next)
                if (*pp == t) {
                        *pp = t->next;
                        break;
                }
        sd_bus_track_unref(t->track);
        free(t->name);
        free(t);
        return NULL;
}

static int on_caller_gone(sd_bus_track *track, void *userdata) {
        BusCallerTrack *t = userdata;
        BusContext *c = t->context;
        Reservation *r = manager_find_reservation(c->manager, t->name);
        HpError e = {};

        if (!r) {
                caller_track_free(c, t);
                return 0;
        }
        log_info("caller %s of reservation %s left the bus, releasing it", r->caller, r->name);
        /* Frees t too, through bus_reservation_emit_removed(). */
        if (manager_release_async(c->manager, r, NULL, NULL, &e) < 0)
                log_error("releasing reservation failed: %s", e.message);
        return 0;
}

int bus_reservation_track_caller(BusContext *c, Reservation *r) {
        BusCallerTrack *t;
        int k;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->context = c;
        t->name = strdup(r->name);
        if (!t->name) {
                free(t);
                return -ENOMEM;
        }
        t->next = c->tracks;
        c->tracks = t;
        k = sd_bus_track_new(c->bus, &t->track, on_caller_gone, t);
        if (k >= 0)
                k = sd_bus_track_add_name(t->track, r->caller);
        if (k < 0) {
                caller_track_free(c, t);
                return k;
        }
        return 0;
}

void bus_reservation_untrack_caller(BusContext *c, const Reservation *r) {
        for (BusCallerTrack *t = c->tracks; t; t = t->next)
                if (streq(t->name, r->name)) {
                        caller_track_free(c, t);
                        return;
                }
}

void bus_reservation_untrack_all(BusContext *c) {
        while (c->tracks)
                caller_track_free(c, c->tracks);
}

bool bus_caller_alive(BusContext *c, const char *caller) {
        return c->bus && caller && sd_bus_get_name_creds(c->bus, caller, 0, NULL) >= 0;
}

void bus_reservation_emit_added(BusContext *c, Reservation *r) {
        _cleanup_free_ char *path = NULL;
        int k;
        if (!c->bus)
                return;
        k = bus_reservation_path(r, &path);
        if (k >= 0)
                k = sd_bus_emit_object_added(c->bus, path);
        if (k < 0)
                log_debug_errno(k, "cannot emit InterfacesAdded for %s: %m", strna(path));
}

void bus_reservation_emit_removed(BusContext *c, Reservation *r) {
        _cleanup_free_ char *path = NULL;
        int k;

        bus_reservation_untrack_caller(c, r);
        if (!c->bus)
                return;
        k = bus_reservation_path(r, &path);
        if (k >= 0) {
                dying = r;
                k = sd_bus_emit_object_removed(c->bus, path);
                dying = NULL;
        }
        if (k < 0)
                log_debug_errno(k, "cannot emit InterfacesRemoved for %s: %m", strna(path));
}

void bus_reservation_emit_state_changed(BusContext *c, Reservation *r) {
        _cleanup_free_ char *path = NULL;
        int k;
        if (!c->bus)
                return;
        k = bus_reservation_path(r, &path);
        if (k >= 0)
                k = sd_bus_emit_properties_changed(c->bus, path, HP_BUS_IFACE_RESERVATION, "State", NULL);
        if (k < 0)
                log_debug_errno(k, "cannot emit PropertiesChanged for %s: %m", strna(path));
}
