/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's bus side: the BusContext (the connection, the polkit registry, the callers' uids, what the signals
 * last said, the callers of LIFETIME_CALLER reservations), the object paths, and the signals that follow the
 * core's changes. The core knows none of it: it tells the BusContext through its observer table. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "hugepaged-bus-api.h"
#include "manager.h"

#define BUS_NAME HP_BUS_NAME
#define BUS_PATH HP_BUS_PATH
#define BUS_POOL_PREFIX HP_BUS_POOL_PREFIX
#define BUS_RESERVATION_PREFIX HP_BUS_RESERVATION_PREFIX

#define SENDER_UID_CACHE_SIZE 64

typedef struct PolkitRegistry PolkitRegistry;
typedef struct BusCallerTrack BusCallerTrack;

/* What the last PropertiesChanged of one pool object said, so only real changes are signalled. */
typedef struct BusPoolEmitted {
        uint64_t page_size;
        int64_t node;   /* -1: the all-node totals */
        bool valid;     /* false: nothing said yet, the next look sets the baseline */
        PoolValues values;
} BusPoolEmitted;

typedef struct BusContext {
        Manager *manager;
        sd_bus *bus;

        /* Pending polkit checks, owned by bus-polkit.c: freed while the bus is still open. */
        PolkitRegistry *polkit_registry;
        /* Callers' uids by unique name, owned by bus-polkit.c: a connection's uid never changes and the bus
         * never reuses a unique name, so each caller costs one round trip to the bus driver, not one per call.
         * A small ring; the oldest entry makes room. */
        struct {
                char *name;
                uid_t uid;
        } sender_uids[SENDER_UID_CACHE_SIZE];
        unsigned sender_uid_next;

        /* bus-pool.c: PropertiesChanged for the pools, coalesced. */
        sd_event_source *emit_pools_source;
        uint64_t emitted_pools_usec;        /* CLOCK_MONOTONIC of the last of them; 0: never */
        uint64_t emitted_reserved_bytes;
        BusPoolEmitted *emitted;
        size_t n_emitted;

        /* bus-reservation.c: the callers of LIFETIME_CALLER reservations, one sd_bus_track each. */
        BusCallerTrack *tracks;
} BusContext;

/* Connects to the system bus, attaches it to event, and becomes m's observer. */
int bus_context_new(Manager *m, sd_event *event, BusContext **ret);
/* The same over a connection the caller made (tests, fuzzers): takes over the reference to bus. */
int bus_context_new_for(Manager *m, sd_bus *bus, BusContext **ret);
/* After the manager: its last jobs reply and its last signals go out on this bus. */
BusContext *bus_context_free(BusContext *c);
static inline void bus_context_freep(BusContext **c) {
        bus_context_free(*c);
}
/* The context of a manager that has one, for handlers whose userdata is an object of the core. */
static inline BusContext *bus_context_of(Manager *m) {
        return m->observer_userdata;
}

/* Registers every object, tracks the callers of the restored reservations, and queues the first signals. */
int bus_register(BusContext *c);

/* Replies to a call whose work finished later; the message was referenced when the work was queued. */
void bus_reply_done(sd_bus_message *message, int r, const HpError *e);
const char *bus_sender_or_na(sd_bus_message *message);

/* bus-manager.c */
extern const sd_bus_vtable manager_vtable[];
void bus_manager_emit_nodes_changed(BusContext *c);

/* bus-pool.c */
extern const sd_bus_vtable pool_vtable[];
int bus_pool_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                  sd_bus_error *error);
int bus_pool_enumerate(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes, sd_bus_error *error);
void bus_emit_pools_changed(BusContext *c);
/* Sends what bus_emit_pools_changed() has queued, and stops queueing: before the bus closes. */
void bus_flush_pools_changed(BusContext *c);
void bus_pool_emit_added(BusContext *c, Pool *p);
/* p must still be linked: InterfacesRemoved lists the interfaces the object had. */
void bus_pool_emit_removed(BusContext *c, Pool *p);

/* bus-reservation.c */
extern const sd_bus_vtable reservation_vtable[];
int bus_reservation_path(const Reservation *r, char **ret);
int bus_reservation_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                         sd_bus_error *error);
int bus_reservation_enumerate(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes, sd_bus_error *error);
/* Ties a LIFETIME_CALLER reservation to its caller's connection: when it leaves, the reservation is released. */
int bus_reservation_track_caller(BusContext *c, Reservation *r);
void bus_reservation_untrack_caller(BusContext *c, const Reservation *r);
void bus_reservation_untrack_all(BusContext *c);
bool bus_caller_alive(BusContext *c, const char *caller);
void bus_reservation_emit_added(BusContext *c, Reservation *r);
/* Also stops tracking its caller. */
void bus_reservation_emit_removed(BusContext *c, Reservation *r);
void bus_reservation_emit_state_changed(BusContext *c, Reservation *r);
/* Releases r for the sender of message, if the sender may. */
int bus_reservation_release(BusContext *c, Reservation *r, sd_bus_message *message, sd_bus_error *error);
