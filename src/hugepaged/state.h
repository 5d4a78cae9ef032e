/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state file: reservations and pool floors, written atomically before any reply that depends on them. It reads
 * and writes plain records; the manager builds them from its pools and reservations (a snapshot) and makes its
 * objects from them at start-up. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lifetime.h"
#include "util.h"

typedef struct StatePool {
        uint64_t page_size;
        uint32_t node;
        uint64_t floor_adopted;
        uint64_t spare_adopted; /* optional in the file (Spare=), 0 when absent */
        uint64_t range_lo, range_hi;
} StatePool;

/* A reservation as the file keeps it: what it persists, nothing of the runtime side. */
typedef struct StateReservation {
        char *name;
        uint64_t page_size;
        uint64_t pages;
        NodeAmount *node_pages;     /* (node, pages), ascending by node */
        size_t n_node_pages;
        uint32_t *req_nodes;        /* the request as given, so a retry is recognised */
        size_t n_req_nodes;
        NodeAmount *req_node_pages; /* (node, pages) */
        size_t n_req_node_pages;
        uid_t uid;
        Lifetime lifetime;
        uint32_t pid;
        uint64_t pid_starttime;
        char *caller;               /* LIFETIME_CALLER: the caller's unique bus name */
        uint64_t created_usec;
        bool held;                  /* optional in the file (Held=), false when absent; the path is derived */
} StateReservation;

/* Frees what r holds (a Reservation frees its persisted data this way too), or r as well. */
void state_reservation_done(StateReservation *r);
StateReservation *state_reservation_free(StateReservation *r);

typedef struct State {
        StatePool *pools;
        size_t n_pools;
        StateReservation **reservations; /* sorted by name */
        size_t n_reservations;
} State;

/* Frees what state_load() returned. Not for a snapshot, whose records borrow the manager's data. */
void state_done(State *s);

/* Reads path into *ret. A missing file is an empty state. Entries that don't check out are dropped and
 * logged; if anything was dropped the file is kept aside as path.corrupt-<usec> for inspection. */
int state_load(const char *path, State *ret);

/* Writes snapshot to path: a temp file in dir, fsync, rename, fsync of dir. */
int state_save(const char *dir, const char *path, const State *snapshot);
