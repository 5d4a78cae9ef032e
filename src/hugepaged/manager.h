/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager: pools and reservations, and the accounting between them. Knows nothing of D-Bus: what changed is
 * told to an observer (the bus layer), which names the objects and signals the changes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "errors.h"
#include "hold.h"
#include "kernel.h"
#include "lifetime.h"
#include "util.h"

typedef struct Manager Manager;
typedef struct Pool Pool;
typedef struct Reservation Reservation;
typedef struct Job Job;

/* Pages each step of the allocation strategy won, summed over the daemon's life (the Stats* properties). */
typedef struct AllocStats {
        uint64_t pages_first_write;        /* by the first write of nr_hugepages */
        uint64_t pages_after_compaction;   /* by rewrites after compacting the node */
        uint64_t pages_after_drop_caches;  /* by rewrites after dropping clean page cache (DropCaches=) */
        uint64_t retries;                  /* writes after the first */
} AllocStats;

/* Completion of an asynchronous request, called on the event loop. r < 0: failed, e says why (e->code may be
 * HP_OK for a plain errno). res is NULL unless a Reserve succeeded. r == -ECANCELED: the daemon is going away. */
typedef void (*ManagerDone)(Manager *m, int r, Reservation *res, bool existed, const HpError *e, void *userdata);

/* What a pool shows (its D-Bus properties), or the sums over a page size's pools. */
typedef struct PoolValues {
        uint64_t total, free, surplus; /* the kernel's counts, as last read */
        uint64_t reserved, floor;
        uint64_t adopted_spare;        /* Adopt=spare: the pages the pool is never shrunk below, beyond Floor */
} PoolValues;

/* One (page size, node) pool. The all-node totals are derived, not stored. */
struct Pool {
        Manager *manager;
        uint64_t page_size;
        uint32_t node;

        NodeCounts counts;      /* as last read from the kernel */
        uint64_t known;         /* persistent pages we last set or saw; a different reading is someone else */
        uint64_t floor_adopted; /* Adopt=floor: pages that were there and no reservation owns */
        /* Adopt=spare: the pool's size when it was adopted, less MinPages. They are hugepaged's own: reservations
         * are granted from them first, and the pool is never shrunk below Floor + spare_adopted. */
        uint64_t spare_adopted;
        bool adopt_spare;
        uint64_t min_pages, max_pages;
        uint64_t reserved;      /* sum of the reservations' pages here */

        /* The persistent count the state file vouches for: during an operation it spans the old and new
         * values, so after a crash a count in this range is our own unfinished work, not someone else's. */
        uint64_t range_lo, range_hi;

        /* Warm pool: pages above Floor + Reserved stay as spare for shrink_delay_usec after a release, and
         * shrinking never goes below Floor + Reserved + keep_free. */
        uint64_t keep_free;
        uint64_t shrink_delay_usec;
        sd_event_source *shrink_timer;

        /* A job changes this pool's kernel count in a worker thread: the counts here are the last read, and
         * nothing else reads, adopts or settles the pool until the job finishes on the loop. */
        bool busy;
};

static inline uint64_t pool_floor(const Pool *p) {
        return p->floor_adopted > p->min_pages ? p->floor_adopted : p->min_pages;
}
/* The pages the pool is kept at, at least: the Floor, and the reservations or the adopted spare pages, whichever is
 * more, since reservations take the adopted spare pages first. */
static inline uint64_t pool_kept(const Pool *p) {
        return pool_floor(p) + (p->reserved > p->spare_adopted ? p->reserved : p->spare_adopted);
}
static inline uint64_t pool_persistent(const Pool *p) {
        return node_counts_persistent(&p->counts);
}

struct Reservation {
        Manager *manager;
        char *name;
        uint64_t page_size;
        uint64_t pages;
        NodeAmount *node_pages; /* (node, pages): where the pages are, ascending by node */
        size_t n_node_pages;

        /* The request as given, so a retry with the same parameters is recognised. */
        uint32_t *req_nodes;
        size_t n_req_nodes;
        NodeAmount *req_node_pages; /* (node, pages): node_bytes as given, converted to pages */
        size_t n_req_node_pages;

        uid_t uid;
        Lifetime lifetime;
        uint32_t pid;
        uint64_t pid_starttime; /* guards against the pid being reused after a restart */
        char *caller;           /* LIFETIME_CALLER: the caller's unique bus name, as data; the bus layer tracks it */
        uint64_t created_usec;

        int pidfd;
        sd_event_source *pid_source;

        /* Holds pages on a node that has no pool now (its memory went offline or the node went away). Derived
         * from the topology, never stored: the reservation stays on record and recovers if the node returns. */
        bool degraded;

        /* Held: a hugetlbfs mount whose min_size keeps the pages reserved in the kernel (hold.c). mount_path is
         * set while it is mounted; hold_lost when, after a restart, the mount was gone and could not be made
         * again: the reservation is degraded until released. */
        bool held;
        bool hold_lost;
        char *mount_path;
};

/* What the core tells the bus layer. Every member may be NULL; userdata is the observer's. */
typedef struct ManagerObserver {
        /* The pools' values or the reserved total may have changed. */
        void (*pools_changed)(void *userdata);
        /* Topology changes: a pool is announced once linked, and withdrawn while still linked. */
        void (*pool_added)(void *userdata, Pool *p);
        void (*pool_removed)(void *userdata, Pool *p);
        void (*nodes_changed)(void *userdata);
        void (*reservation_added)(void *userdata, Reservation *r);
        /* r is unlinked already, and still valid during the call. */
        void (*reservation_removed)(void *userdata, Reservation *r);
        void (*reservation_state_changed)(void *userdata, Reservation *r);
        /* At start-up: is the caller of a restored LIFETIME_CALLER reservation still connected? Without it, no
         * caller is, and such reservations are released. */
        bool (*caller_alive)(void *userdata, const char *caller);
        /* Once, after the last job, before the manager goes: send whatever is still queued. */
        void (*flush)(void *userdata);
} ManagerObserver;

struct Manager {
        sd_event *event;
        Kernel *kernel;
        Config config;
        char *state_dir;
        char *state_path;

        uint64_t *page_sizes;
        size_t n_page_sizes;
        uint64_t default_page_size;
        uint64_t mem_total;     /* bytes of RAM; 0 if unknown */
        bool watchdog;          /* the service manager wants WATCHDOG=1 pings */
        uint32_t *nodes;
        size_t n_nodes;

        Pool **pools;
        size_t n_pools;

        Reservation **reservations; /* sorted by name */
        size_t n_reservations;

        sd_event_source *refresh_timer;

        /* Requests that touch the kernel, oldest first. A job starts when no earlier job shares a pool with it
         * (or a reservation name), so each (page size, node) pool is a FIFO queue and other pools proceed. */
        Job *jobs, *jobs_tail;
        bool dispatching, dispatch_again;
        unsigned n_running;
        int job_efd;                     /* worker threads signal completions here */
        sd_event_source *job_source;
        Job *jobs_done;                  /* finished by a worker, not yet by the loop; under jobs_lock */
        void *jobs_lock;                 /* pthread_mutex_t, kept opaque for the users of this header */

        AllocStats stats;

        const ManagerObserver *observer;
        void *observer_userdata;

        const HoldOps *hold_ops;  /* the mounts of held reservations: the real kernel's, or simulated (--root) */
};

typedef struct ReserveRequest {
        const char *name;
        uint64_t page_size; /* 0: the kernel's default */
        uint64_t bytes;
        const uint32_t *nodes;
        size_t n_nodes;
        bool has_nodes;
        const NodeAmount *node_bytes; /* (node, bytes) */
        size_t n_node_bytes;
        bool has_node_bytes;
        Lifetime lifetime;
        uint32_t pid;
        bool has_pid;
        uid_t uid;
        const char *caller;
        bool hold;          /* back the grant by a hugetlbfs mount with min_size (hold.h) */
} ReserveRequest;

/* o (may be NULL) and userdata must outlive m. */
void manager_set_observer(Manager *m, const ManagerObserver *o, void *userdata);

int manager_new(sd_event *event, const char *root, const char *state_dir, Manager **ret);
Manager *manager_free(Manager *m);
/* Replaces the mount operations of held reservations (tests); before manager_startup(). */
void manager_set_hold_ops(Manager *m, const HoldOps *ops);

/* Discovers the pools, restores the state file and reconciles both with the kernel. */
int manager_startup(Manager *m);

/* Re-reads every pool; adopts changes made by others into Floor. */
int manager_refresh(Manager *m);

/* Re-reads which nodes have memory: a node that gained memory gets its pools (with MinPages applied), a node
 * that lost it loses them, reservations on it turn degraded; then every pool is re-read. Idempotent, so any
 * uevent, duplicate or out of order, may trigger it. */
int manager_update_topology(Manager *m);

static inline const char *reservation_state_to_string(const Reservation *r) {
        return r->degraded || r->hold_lost ? "degraded" : "active";
}

Pool *manager_find_pool(Manager *m, uint64_t page_size, uint32_t node);
Reservation *manager_find_reservation(Manager *m, const char *name);
bool manager_has_page_size(Manager *m, uint64_t page_size);
bool manager_has_node(Manager *m, uint32_t node);
uint64_t manager_reserved_bytes(Manager *m);
void pool_get_values(const Pool *p, PoolValues *ret);
/* The all-node sums for one page size. */
void manager_page_size_totals(Manager *m, uint64_t page_size, PoolValues *ret);

/* On success *ret is the new reservation, or the existing one for an identical retry (*ret_existed). */
/* Synchronous: kernel writes run on the caller's thread. For start-up, tests and tools; the bus uses the async
 * variants below. */
int manager_reserve(Manager *m, const ReserveRequest *req, Reservation **ret, bool *ret_existed, HpError *error);
int manager_release(Manager *m, Reservation *r, HpError *error);

/* Asynchronous: validation errors are returned at once (done is not called); otherwise returns 0 and done is
 * called later on the event loop (or before returning, when no kernel write is needed). req is copied. */
int manager_reserve_async(Manager *m, const ReserveRequest *req, ManagerDone done, void *userdata, HpError *error);
/* r is gone from the manager when this returns; done (may be NULL) follows once any shrink is done. */
int manager_release_async(Manager *m, Reservation *r, ManagerDone done, void *userdata, HpError *error);
/* Number of jobs queued or running. */
size_t manager_jobs_pending(Manager *m);

/* Writes the state file from a snapshot of the pools and reservations; logs its errors. */
int manager_save_state(Manager *m);

Reservation *reservation_free(Reservation *r);
int reservation_watch_pid(Reservation *r);
/* Binds r to process pid (lifetime becomes LIFETIME_PID), persisted; idempotent for the same live process. */
int manager_bind_process(Manager *m, Reservation *r, uint32_t pid, HpError *error);
