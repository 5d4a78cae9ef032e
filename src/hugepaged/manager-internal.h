/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the core's files share among themselves and nobody else may call: pools, reservations, planning and the
 * allocation strategy. The public interface is manager.h. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manager.h"
#include "state.h"
#include "util.h"

static inline void *newdup(const void *p, size_t size) {
        void *q = malloc(size > 0 ? size : 1);
        if (q && size > 0)
                memcpy(q, p, size);
        return q;
}

static inline char *page_size_str(char buf[static FORMAT_SIZE_MAX], uint64_t page_size) {
        return format_size(buf, FORMAT_SIZE_MAX, page_size);
}

/* Tells the observer, if it wants to know: manager_notify(m, pool_added, p). */
#define manager_notify(m, member, ...)                                                                  \
        do {                                                                                            \
                if ((m)->observer && (m)->observer->member)                                             \
                        (m)->observer->member((m)->observer_userdata, ##__VA_ARGS__);                   \
        } while (0)

/* manager.c */
void manager_pools_changed(Manager *m);

/* pool.c */
Pool *pool_free(Pool *p);
int pool_new(Manager *m, uint64_t page_size, uint32_t node, Pool **ret);
int pool_read(Pool *p);
void pool_adopt(Pool *p, uint64_t count);
void pool_adopt_outside_change(Pool *p, const char *when);
int pool_refresh(Pool *p);
uint64_t pool_spare(const Pool *p);
void pools_settle_ranges(Manager *m);
void pool_log_adopted(const Pool *p, const char *what);
void pool_convert_adopted(Pool *p);

/* reservation.c: the index of reservations by name, and their share of the pools. */
int manager_link_reservation(Manager *m, Reservation *r);
void manager_unlink_reservation(Manager *m, Reservation *r);
void reservation_account(Manager *m, Reservation *r, bool add);
/* The state file's record of r, borrowing r's data. */
void reservation_to_record(const Reservation *r, StateReservation *ret);
/* A reservation of m made from rec, whose data it takes over. */
int reservation_from_record(Manager *m, StateReservation *rec, Reservation **ret);

/* What a worker needs to change one pool: copies, never the Pool itself, which the loop may show or free. */
typedef struct AllocParams {
        Kernel *kernel;
        unsigned attempts;
        uint64_t timeout_usec;
        bool compaction;
        bool drop_caches;   /* this request may drop clean page cache (DropCaches= and a large request) */
        bool watchdog;      /* ping the watchdog between attempts: only when run on the loop thread */
} AllocParams;


/* alloc.c: the allocation strategy. */
AllocParams alloc_params(Manager *m, bool on_loop);
void manager_stats_add(Manager *m, const AllocStats *s);
int pool_apply(Pool *p, uint64_t target);

/* The normalized request, as stored on the reservation and compared on retries. */
typedef struct Plan {
        uint64_t page_size;
        uint64_t pages;
        uint32_t *nodes;     /* nodes the pages may come from (ascending) */
        size_t n_nodes;
        NodeAmount *exact;    /* node_bytes converted to pages (ascending), or NULL */
        size_t n_exact;
        uint32_t *req_nodes; /* the "nodes" option as given (sorted), empty when not given */
        size_t n_req_nodes;
} Plan;

/* plan.c: a request's checks and its normalized form, and the limits. */
void plan_done(Plan *p);
int plan_build(Manager *m, const ReserveRequest *req, Plan *plan, HpError *error);
bool reservation_matches(const Reservation *r, const Plan *plan, const ReserveRequest *req);
int check_limits(Manager *m, const Plan *plan, uid_t uid, HpError *error);
void format_nodes(char *buf, size_t len, const uint32_t *nodes, size_t n);

/* manager-reserve.c: the completion the synchronous forms use. */
typedef struct SyncResult {
        bool called;
        int r;
        Reservation *res;
        bool existed;
        HpError error;
} SyncResult;

void sync_done(Manager *m, int r, Reservation *res, bool existed, const HpError *e, void *userdata);

/* manager-release.c */
void pool_arm_shrink_timer(Pool *p);
