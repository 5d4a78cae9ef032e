/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl's view of the daemon: the rows and objects the verbs show, read from org.hugepaged1, and the one
 * way a failed call is reported. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "util.h"

/* A reservation may wait behind others and for compaction (the daemon's TimeoutSec= is 120 s by default). */
#define CALL_TIMEOUT_USEC (UINT64_C(300) * 1000 * 1000)

typedef struct PoolRow {
        uint64_t page_size;
        int32_t node;
        uint64_t total, free, surplus, reserved, floor;
        uint64_t adopted_spare; /* the Pool's AdoptedSpare: not in ListPools, read from the pool's object */
} PoolRow;

typedef struct ReservationRow {
        char *name;
        uint64_t page_size;
        uint64_t pages;
        uint32_t uid;
        char *lifetime;
        char *path;
} ReservationRow;

typedef struct ReservationInfo {
        char *name;
        uint64_t page_size;
        uint64_t pages;
        NodeAmount *node_pages;     /* pages per node */
        size_t n_node_pages;
        uint32_t uid;
        char *lifetime;
        uint32_t pid;
        uint64_t created_usec;
        char *state;
        char *path;
        bool held;
        char *mount_path;           /* "" when not held */
} ReservationInfo;

typedef struct ManagerInfo {
        char *version;
        uint64_t default_page_size;
        uint64_t *page_sizes;
        size_t n_page_sizes;
        uint32_t *nodes;
        size_t n_nodes;
        uint64_t reserved_bytes;
        /* The allocation statistics (Stats*), counted since the daemon started. */
        uint64_t stats_pages_first_write, stats_pages_after_compaction, stats_pages_after_drop_caches;
        uint64_t stats_allocation_retries;
} ManagerInfo;

void reservation_rows_free(ReservationRow *rows, size_t n);
void reservation_info_done(ReservationInfo *i);
void manager_info_done(ManagerInfo *i);

/* One line on stderr: "hugepagectl: <what>: <why>". Returns the exit status. */
int report_bus_error(const char *what, const sd_bus_error *e, int r);
/* Returns an exit status; on failure it has said why. */
int bus_connect(sd_bus **ret);

/* Reads an a{sv} of org.hugepaged1.Reservation properties (GetAll, InterfacesAdded). */
int reservation_info_read(sd_bus_message *m, ReservationInfo *info);

/* Properties.GetAll of the reservation at path; a negative errno, with error set when the call failed. */
int read_reservation_at(sd_bus *bus, const char *path, sd_bus_error *error, ReservationInfo *ret);

/* Each returns an exit status; on failure the error has been printed with WHAT ("cannot ..."). */
int fetch_reservation(sd_bus *bus, const char *name, const char *what, ReservationInfo *ret);
int fetch_manager(sd_bus *bus, const char *what, ManagerInfo *ret);
int fetch_pools(sd_bus *bus, const char *what, PoolRow **ret, size_t *ret_n);
int fetch_reservations(sd_bus *bus, const char *what, ReservationRow **ret, size_t *ret_n);
