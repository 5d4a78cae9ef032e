/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state file: reservations and pool floors, written atomically before any reply that depends on them. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "manager.h"

typedef struct StatePool {
        uint64_t page_size;
        uint32_t node;
        uint64_t floor_adopted;
        uint64_t spare_adopted; /* optional in the file (Spare=), 0 when absent */
        uint64_t range_lo, range_hi;
} StatePool;

typedef struct State {
        StatePool *pools;
        size_t n_pools;
        Reservation **reservations;
        size_t n_reservations;
} State;

void state_done(State *s);

/* Reads path into *ret. A missing file is an empty state. Entries that don't check out are dropped and
 * logged; if anything was dropped the file is kept aside as path.corrupt-<usec> for inspection. */
int state_load(const char *path, State *ret);

/* temp file, fsync, rename, fsync of the directory. */
int state_save(Manager *m);
