/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's D-Bus objects: registration, and the signals that follow state changes. */
#pragma once

#include <systemd/sd-bus.h>

#include "hugepaged-bus-api.h"
#include "manager.h"

#define BUS_NAME HP_BUS_NAME
#define BUS_PATH HP_BUS_PATH
#define BUS_POOL_PREFIX HP_BUS_POOL_PREFIX
#define BUS_RESERVATION_PREFIX HP_BUS_RESERVATION_PREFIX

extern const sd_bus_vtable manager_vtable[];
extern const sd_bus_vtable pool_vtable[];
extern const sd_bus_vtable reservation_vtable[];

/* Registers every object and hooks the manager's change callbacks up to signals. */
int bus_register(Manager *m);

int bus_pool_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                  sd_bus_error *error);
int bus_pool_enumerate(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes, sd_bus_error *error);
void bus_emit_pools_changed(Manager *m);
/* Sends what bus_emit_pools_changed() has queued, and stops queueing: before the bus closes. */
void bus_flush_pools_changed(Manager *m);
void bus_pool_emit_added(Manager *m, Pool *p);
/* p must still be linked: InterfacesRemoved lists the interfaces the object had. */
void bus_pool_emit_removed(Manager *m, Pool *p);

int bus_reservation_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                         sd_bus_error *error);
int bus_reservation_enumerate(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes, sd_bus_error *error);
/* Ties a LIFETIME_CALLER reservation to its caller's connection. */
int bus_reservation_track_caller(Reservation *r);
void bus_reservation_emit_added(Manager *m, Reservation *r);
void bus_reservation_emit_removed(Manager *m, Reservation *r);
void bus_reservation_emit_state_changed(Manager *m, Reservation *r);

/* Releases r for the sender of message, if the sender may. */
int bus_release(Manager *manager, Reservation *r, sd_bus_message *message, sd_bus_error *error);
