/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager: discovery of pools, accounting of Floor and Reserved, and every change to the kernel's pools.
 * Requests run to completion one at a time on the event loop, so two requests never interleave on a pool. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "manager.h"
#include "proc.h"
#include "state.h"
#include "util.h"

static const char *const lifetime_table[_LIFETIME_MAX] = {
        [LIFETIME_EXPLICIT] = "explicit",
        [LIFETIME_CALLER] = "caller",
        [LIFETIME_PID] = "pid",
};

const char *lifetime_to_string(Lifetime l) {
        return l >= 0 && l < _LIFETIME_MAX ? lifetime_table[l] : NULL;
}

Lifetime lifetime_from_string(const char *s) {
        for (int i = 0; s && i < _LIFETIME_MAX; i++)
                if (streq(s, lifetime_table[i]))
                        return (Lifetime) i;
        return _LIFETIME_INVALID;
}

static void *newdup(const void *p, size_t size) {
        void *q = malloc(size > 0 ? size : 1);
        if (q && size > 0)
                memcpy(q, p, size);
        return q;
}

static char *page_size_str(char buf[static FORMAT_SIZE_MAX], uint64_t page_size) {
        return format_size(buf, FORMAT_SIZE_MAX, page_size);
}

/* ---- pools ------------------------------------------------------------------------------------------- */

static Pool *pool_free(Pool *p) {
        if (!p)
                return NULL;
        sd_event_source_disable_unref(p->shrink_timer);
        free(p->path);
        free(p);
        return NULL;
}

static int pool_new(Manager *m, uint64_t page_size, uint32_t node, Pool **ret) {
        Pool *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        *p = (Pool) { .manager = m, .page_size = page_size, .node = node, .max_pages = UINT64_MAX };
        if (asprintf(&p->path, "/org/hugepaged1/pool/%" PRIu64 "kB/node%" PRIu32, page_size / 1024, node) < 0) {
                free(p);
                return -ENOMEM;
        }
        config_pool_limits(&m->config, page_size, node, &p->min_pages, &p->max_pages);
        config_pool_warm(&m->config, page_size, node, &p->keep_free, &p->shrink_delay_usec);
        p->adopt_spare = config_pool_adopt_spare(&m->config, page_size, node);
        *ret = p;
        return 0;
}

Pool *manager_find_pool(Manager *m, uint64_t page_size, uint32_t node) {
        for (size_t i = 0; i < m->n_pools; i++)
                if (m->pools[i]->page_size == page_size && m->pools[i]->node == node)
                        return m->pools[i];
        return NULL;
}

bool manager_has_page_size(Manager *m, uint64_t page_size) {
        for (size_t i = 0; i < m->n_page_sizes; i++)
                if (m->page_sizes[i] == page_size)
                        return true;
        return false;
}

bool manager_has_node(Manager *m, uint32_t node) {
        for (size_t i = 0; i < m->n_nodes; i++)
                if (m->nodes[i] == node)
                        return true;
        return false;
}

static int pool_read(Pool *p) {
        NodeCounts c;
        int r = kernel_read_node(p->manager->kernel, p->page_size, p->node, &c);
        if (r < 0)
                return r;
        p->counts = c;
        return 0;
}

/* Takes count pages, the pool's size as found, as the pool's own: with Adopt=floor what no reservation owns
 * becomes Floor, with Adopt=spare everything above MinPages becomes hugepaged's spare pages. Either way
 * pool_kept() is at least count afterwards, so adopting never shrinks the pool. */
static void pool_adopt(Pool *p, uint64_t count) {
        if (p->adopt_spare) {
                p->floor_adopted = 0;
                p->spare_adopted = count > p->min_pages ? count - p->min_pages : 0;
        } else {
                p->spare_adopted = 0;
                p->floor_adopted = count > p->reserved ? count - p->reserved : 0;
        }
}

static const char *pool_adopted_str(const Pool *p) {
        return p->adopt_spare ? "adopted spare" : "Floor";
}

static uint64_t pool_adopted(const Pool *p) {
        return p->adopt_spare ? p->spare_adopted : pool_floor(p);
}

/* Someone else changed the pool since we last looked: take their change as the new Floor (or, with
 * Adopt=spare, as the new adopted spare count), don't fight it. */
static void pool_adopt_outside_change(Pool *p, const char *when) {
        char ps[FORMAT_SIZE_MAX];
        uint64_t persistent = pool_persistent(p);
        uint64_t old = pool_adopted(p);

        pool_adopt(p, persistent);
        log_notice("%s pages on node %" PRIu32 " changed from outside hugepaged%s: %" PRIu64 " -> %" PRIu64
                   " pages; %s %" PRIu64 " -> %" PRIu64,
                   page_size_str(ps, p->page_size), p->node, when, p->known, persistent, pool_adopted_str(p), old,
                   pool_adopted(p));
        if (persistent < p->reserved)
                log_warning("%s pages on node %" PRIu32 ": the pool holds %" PRIu64 " pages but reservations own %" PRIu64
                            "; %" PRIu64 " reserved pages are not backed until the pool grows again",
                            ps, p->node, persistent, p->reserved, p->reserved - persistent);
        p->known = persistent;
        p->range_lo = p->range_hi = persistent;
}

static int pool_refresh(Pool *p) {
        int r;
        if (p->busy)
                return 0; /* a worker is changing it: its job reads it back */
        r = pool_read(p);
        if (r < 0)
                return r;
        if (pool_persistent(p) != p->known)
                pool_adopt_outside_change(p, "");
        return 0;
}

/* What a worker needs to change one pool: copies, never the Pool itself, which the loop may show or free. */
typedef struct AllocParams {
        Kernel *kernel;
        unsigned attempts;
        uint64_t timeout_usec;
        bool compaction;
        bool drop_caches;   /* this request may drop clean page cache (DropCaches= and a large request) */
        bool watchdog;      /* ping the watchdog between attempts: only when run on the loop thread */
} AllocParams;

static AllocParams alloc_params(Manager *m, bool on_loop) {
        return (AllocParams) {
                .kernel = m->kernel,
                .attempts = m->config.alloc_attempts,
                .timeout_usec = m->config.alloc_timeout_usec,
                .compaction = m->config.compaction,
                .watchdog = on_loop && m->watchdog,
        };
}

/* Sets node's persistent count to target and reads back what the kernel really did, into *counts. A short grow
 * is retried: after compacting the node, then (if allowed) after dropping clean page cache too, while each
 * round still wins pages, within the attempts and the time budget. What each step won goes to *stats. Never
 * fails for being short: the caller compares the count with what it needs. Thread-safe: touches only its
 * arguments and the kernel's files. */
static int alloc_apply(const AllocParams *ap, uint64_t page_size, uint32_t node, uint64_t target, NodeCounts *counts,
                       AllocStats *stats) {
        char ps[FORMAT_SIZE_MAX];
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + ap->timeout_usec;
        uint64_t before = node_counts_persistent(counts), last = before;
        uint64_t won_first = 0, won_compact = 0, won_drop = 0;
        bool grow = target > before, dropped = false, progress, drop;
        enum { STEP_FIRST, STEP_COMPACT, STEP_DROP } step = STEP_FIRST;
        unsigned attempt;
        int r;

        page_size_str(ps, page_size);
        for (attempt = 1;; attempt++) {
                NodeCounts c;
                uint64_t now;

                if (ap->watchdog)
                        (void) sd_notify(false, "WATCHDOG=1");
                r = kernel_write_node_nr(ap->kernel, page_size, node, target);
                if (r < 0)
                        return log_error_errno(r, "cannot set %s pages on node %" PRIu32 " to %" PRIu64 ": %m", ps,
                                               node, target);
                r = kernel_read_node(ap->kernel, page_size, node, &c);
                if (r < 0)
                        return log_error_errno(r, "cannot read back %s pages on node %" PRIu32 ": %m", ps, node);
                *counts = c;
                now = node_counts_persistent(&c);
                if (grow && now > last) {
                        uint64_t won = now - last;
                        if (step == STEP_FIRST)
                                won_first += won;
                        else if (step == STEP_COMPACT)
                                won_compact += won;
                        else
                                won_drop += won;
                }

                /* A shrink below the pages in use leaves them as surplus, and that is all it can do. */
                if (!grow || now >= target)
                        break;
                if (attempt >= ap->attempts || now_usec(CLOCK_MONOTONIC) >= deadline) {
                        log_info("%s pages on node %" PRIu32 ": the kernel gave %" PRIu64 " of %" PRIu64
                                 " after %u attempts", ps, node, now - MIN(now, before), target - before, attempt);
                        break;
                }
                /* Retry while each round still wins pages. Where dropping clean page cache is allowed (DropCaches=,
                 * large or 1 GiB requests), it goes with the second compaction: a round of compaction alone left
                 * the request short, so what is missing is free memory, and the cache holds it. Compaction alone
                 * often serves 2 MiB pages, since it moves the cached pages themselves, and costs nobody their
                 * cache; but a round that wins some pages and not all is followed by rounds that trickle in a few
                 * more each, until the attempts run out (bench (7): 7092 of 8192 after 6 attempts, where one drop
                 * and compaction got all 8192). For 1 GiB pages the drop goes with the first compaction, because
                 * the page cache's own kernel memory (buffer heads and the like) sits in the way of 1 GiB pages
                 * and no compaction moves it. */
                progress = now > last;
                last = now;
                drop = ap->compaction && ap->drop_caches && !dropped &&
                       (attempt > 1 || page_size >= GIGANTIC_PAGE_SIZE);
                if (attempt > 1 && !progress && !drop) {
                        log_info("%s pages on node %" PRIu32 ": no progress, stopping with %" PRIu64 " of %" PRIu64
                                 " after %u attempts", ps, node, now - MIN(now, before), target - before, attempt);
                        break;
                }
                step = STEP_COMPACT;
                if (drop) {
                        log_debug("%s pages on node %" PRIu32 ": %" PRIu64 " of %" PRIu64 ", dropping clean page "
                                  "cache", ps, node, now, target);
                        r = kernel_drop_caches(ap->kernel);
                        if (r < 0)
                                log_debug_errno(r, "cannot drop the page cache: %m");
                        dropped = true;
                        step = STEP_DROP;
                }
                if (!ap->compaction)
                        continue;
                log_debug("%s pages on node %" PRIu32 ": %" PRIu64 " of %" PRIu64 ", compacting node %" PRIu32
                          " and retrying", ps, node, now, target, node);
                r = kernel_compact_node(ap->kernel, node);
                if (r < 0)
                        log_debug_errno(r, "compaction of node %" PRIu32 " failed: %m", node);
        }
        if (grow) {
                log_info("%s pages on node %" PRIu32 ": %" PRIu64 " -> %" PRIu64 " (wanted %" PRIu64 "): first write "
                         "%" PRIu64 ", after compaction %" PRIu64 ", after dropping caches %" PRIu64 ", %u attempts",
                         ps, node, before, node_counts_persistent(counts), target, won_first, won_compact, won_drop,
                         attempt);
                stats->pages_first_write += won_first;
                stats->pages_after_compaction += won_compact;
                stats->pages_after_drop_caches += won_drop;
                stats->retries += attempt - 1;
        } else if (node_counts_persistent(counts) != before)
                log_debug("%s pages on node %" PRIu32 ": %" PRIu64 " -> %" PRIu64 " (wanted %" PRIu64 ")", ps, node,
                          before, node_counts_persistent(counts), target);
        return 0;
}

static void manager_stats_add(Manager *m, const AllocStats *s) {
        if (s->pages_first_write == 0 && s->pages_after_compaction == 0 && s->pages_after_drop_caches == 0 &&
            s->retries == 0)
                return;
        m->stats.pages_first_write += s->pages_first_write;
        m->stats.pages_after_compaction += s->pages_after_compaction;
        m->stats.pages_after_drop_caches += s->pages_after_drop_caches;
        m->stats.retries += s->retries;
        if (m->on_stats_changed)
                m->on_stats_changed(m);
}

/* The synchronous form, on the loop thread: start-up, topology changes and the in-process API. */
static int pool_apply(Pool *p, uint64_t target) {
        Manager *m = p->manager;
        AllocParams ap = alloc_params(m, true);
        AllocStats st = {};
        NodeCounts c = p->counts;
        int r;

        ap.drop_caches = m->config.drop_caches && (p->page_size >= GIGANTIC_PAGE_SIZE ||
                                                   (target > pool_persistent(p) &&
                                                    (target - pool_persistent(p)) * p->page_size >= CONFIG_DROP_CACHES_MIN_BYTES));
        r = alloc_apply(&ap, p->page_size, p->node, target, &c, &st);
        p->counts = c;
        p->known = pool_persistent(p);
        manager_stats_add(m, &st);
        return r;
}

static void manager_pools_changed(Manager *m) {
        if (m->on_pools_changed)
                m->on_pools_changed(m);
}

void pool_get_values(const Pool *p, PoolValues *ret) {
        *ret = (PoolValues) {
                .total = p->counts.nr,
                .free = p->counts.free,
                .surplus = p->counts.surplus,
                .reserved = p->reserved,
                .floor = pool_floor(p),
                .adopted_spare = p->spare_adopted,
        };
}

void manager_page_size_totals(Manager *m, uint64_t page_size, PoolValues *ret) {
        *ret = (PoolValues) {};
        for (size_t i = 0; i < m->n_pools; i++) {
                PoolValues v;
                if (m->pools[i]->page_size != page_size)
                        continue;
                pool_get_values(m->pools[i], &v);
                ret->total += v.total;
                ret->free += v.free;
                ret->surplus += v.surplus;
                ret->reserved += v.reserved;
                ret->floor += v.floor;
                ret->adopted_spare += v.adopted_spare;
        }
}

uint64_t manager_reserved_bytes(Manager *m) {
        uint64_t sum = 0;
        for (size_t i = 0; i < m->n_reservations; i++)
                sum += m->reservations[i]->pages * m->reservations[i]->page_size;
        return sum;
}

int manager_refresh(Manager *m) {
        int ret = 0;

        /* While a worker writes to the kernel, a read of another pool may wait behind it (sysfs files of one
         * page size share the hugetlb lock; the fake kernel serialises everything): the next tick refreshes. */
        if (m->n_running > 0)
                return 0;
        for (size_t i = 0; i < m->n_pools; i++) {
                int r = pool_refresh(m->pools[i]);
                if (r < 0 && ret == 0)
                        ret = log_warning_errno(r, "cannot read pool %s: %m", m->pools[i]->path);
        }
        manager_pools_changed(m);
        return ret;
}

/* ---- reservations ------------------------------------------------------------------------------------ */

Reservation *reservation_free(Reservation *r) {
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->pid_source);
        safe_close(r->pidfd);
        sd_bus_track_unref(r->track);
        free(r->name);
        free(r->path);
        free(r->node_pages);
        free(r->req_nodes);
        free(r->req_node_pages);
        free(r->caller);
        free(r);
        return NULL;
}

static size_t reservation_index(Manager *m, const char *name, bool *found) {
        size_t lo = 0, hi = m->n_reservations;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(m->reservations[mid]->name, name);
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

Reservation *manager_find_reservation(Manager *m, const char *name) {
        bool found;
        size_t i = reservation_index(m, name, &found);
        return found ? m->reservations[i] : NULL;
}

static int manager_link_reservation(Manager *m, Reservation *r) {
        bool found;
        size_t i = reservation_index(m, r->name, &found);
        Reservation **t;

        if (found)
                return -EEXIST;
        t = realloc(m->reservations, (m->n_reservations + 1) * sizeof(*t));
        if (!t)
                return -ENOMEM;
        m->reservations = t;
        memmove(t + i + 1, t + i, (m->n_reservations - i) * sizeof(*t));
        t[i] = r;
        m->n_reservations++;
        r->manager = m;
        return 0;
}

static void manager_unlink_reservation(Manager *m, Reservation *r) {
        bool found;
        size_t i = reservation_index(m, r->name, &found);
        if (!found || m->reservations[i] != r)
                return;
        memmove(m->reservations + i, m->reservations + i + 1, (m->n_reservations - i - 1) * sizeof(Reservation *));
        m->n_reservations--;
}

static void reservation_account(Manager *m, Reservation *r, bool add) {
        for (size_t i = 0; i < r->n_node_pages; i++) {
                Pool *p = manager_find_pool(m, r->page_size, r->node_pages[i].node);
                if (!p)
                        continue;
                if (add)
                        p->reserved += r->node_pages[i].pages;
                else
                        p->reserved -= MIN(p->reserved, r->node_pages[i].pages);
        }
}

static int reservation_set_path(Reservation *r) {
        return sd_bus_path_encode("/org/hugepaged1/reservation", r->name, &r->path);
}

static int on_pid_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Reservation *r = userdata;
        Manager *m = r->manager;
        HpError error = {};

        log_info("process %" PRIu32 " of reservation %s exited, releasing it", r->pid, r->name);
        if (manager_release_async(m, r, NULL, NULL, &error) < 0)
                log_error("releasing reservation %s failed: %s", r->name, error.message);
        return 0;
}

/* Watches the reservation's process with a pidfd: it cannot be fooled by a reused pid. */
int reservation_watch_pid(Reservation *r) {
        _cleanup_close_ int fd = -EBADF;
        uint64_t starttime;
        int k;

        fd = (int) syscall(SYS_pidfd_open, (pid_t) r->pid, 0);
        if (fd < 0)
                return negative_errno();
        /* The pidfd pins the process; only now is the start time a reliable identity check. */
        k = proc_pid_starttime(r->pid, &starttime);
        if (k < 0)
                return k;
        if (r->pid_starttime != 0 && starttime != r->pid_starttime)
                return -ESRCH;
        r->pid_starttime = starttime;

        sd_event_source_disable_unref(r->pid_source);
        r->pid_source = NULL;
        k = sd_event_add_io(r->manager->event, &r->pid_source, fd, EPOLLIN, on_pid_exit, r);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(r->pid_source, "reservation-pid");
        safe_close(r->pidfd);
        r->pidfd = TAKE_FD(fd);
        return 0;
}

/* Ties r to process pid (lifetime "pid"), as if it had been reserved with that lifetime; persisted before it
 * returns. Binding again to the same live process is a no-op, so a hook may repeat it. */
int manager_bind_process(Manager *m, Reservation *r, uint32_t pid, HpError *error) {
        Lifetime old_lifetime = r->lifetime;
        uint32_t old_pid = r->pid;
        uint64_t old_starttime = r->pid_starttime;
        int k;

        if (pid == 0)
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "pid must not be 0");
        /* Already watched: if that process had exited, its pidfd's event would release r before this call. */
        if (r->lifetime == LIFETIME_PID && r->pid == pid && r->pidfd >= 0)
                return 0;

        r->pid = pid;
        r->pid_starttime = 0;
        k = reservation_watch_pid(r);
        if (k < 0) {
                r->pid = old_pid;
                r->pid_starttime = old_starttime;
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "cannot watch process %" PRIu32 ": %s", pid,
                                    k == -ESRCH ? "no such process" : strerror(-k));
        }
        r->lifetime = LIFETIME_PID;

        /* The binding is a promise that the pages come back when the process goes: on disk before the reply. */
        k = state_save(m);
        if (k < 0) {
                r->lifetime = old_lifetime;
                r->pid = old_pid;
                r->pid_starttime = old_starttime;
                r->pid_source = sd_event_source_disable_unref(r->pid_source);
                r->pidfd = safe_close(r->pidfd);
                if (old_lifetime == LIFETIME_PID && reservation_watch_pid(r) < 0)
                        log_warning("reservation %s: its previous process %" PRIu32 " is gone too", r->name, old_pid);
                return hp_error_set(error, HP_ERROR_FAILED, "cannot write the state file: %s", strerror(-k));
        }

        /* The process owns the pages now; the bus connection that reserved them no longer matters. */
        r->track = sd_bus_track_unref(r->track);
        free(r->caller);
        r->caller = NULL;
        log_info("reservation %s bound to process %" PRIu32 " (was %s)", r->name, pid,
                 lifetime_to_string(old_lifetime));
        return 0;
}

/* ---- reserve and release ----------------------------------------------------------------------------- */

static int node_pages_cmp(const void *a, const void *b) {
        const NodePages *x = a, *y = b;
        return x->node < y->node ? -1 : x->node > y->node;
}
static int u32_cmp(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

static uint64_t bytes_to_pages(uint64_t bytes, uint64_t page_size) {
        return bytes / page_size + (bytes % page_size != 0);
}

static void format_nodes(char *buf, size_t len, const uint32_t *nodes, size_t n) {
        size_t o = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < n && o + 12 < len; i++)
                o += (size_t) snprintf(buf + o, len - o, "%s%" PRIu32, i ? "," : "", nodes[i]);
}

/* The normalized request, as stored on the reservation and compared on retries. */
typedef struct Plan {
        uint64_t page_size;
        uint64_t pages;
        uint32_t *nodes;     /* nodes the pages may come from (ascending) */
        size_t n_nodes;
        NodePages *exact;    /* node_bytes converted to pages (ascending), or NULL */
        size_t n_exact;
        uint32_t *req_nodes; /* the "nodes" option as given (sorted), empty when not given */
        size_t n_req_nodes;
} Plan;

static void plan_done(Plan *p) {
        free(p->nodes);
        free(p->exact);
        free(p->req_nodes);
}

typedef enum JobType {
        JOB_RESERVE,
        JOB_SHRINK,
} JobType;

/* One pool's part of a job. In: set on the loop before the worker starts. Out: set by the worker. */
typedef struct PoolWork {
        uint32_t node;
        uint64_t before;   /* persistent count at the start: where a failed reserve puts it back */
        uint64_t base;     /* reserve: Floor + Reserved + the spare pages taken */
        uint64_t spare;    /* reserve: spare pages taken */
        uint64_t exact;    /* reserve with node_bytes: pages asked here in all */
        uint64_t max_pages;
        uint64_t target;   /* shrink: the count to set; 0 with !active: nothing to do */
        bool active;
        NodeCounts counts; /* in: as last read; out: as read back */
        uint64_t got;      /* reserve: pages grown here for the request */
} PoolWork;

struct Job {
        Manager *manager;
        JobType type;
        Job *next, *done_next;
        bool started, worker;

        uint64_t page_size;
        uint32_t *nodes; /* the pools it touches, ascending */
        size_t n_nodes;

        /* JOB_RESERVE: the request, deep-copied. */
        ReserveRequest req;
        char *name, *caller;
        uint32_t *req_nodes;
        NodeBytes *req_node_bytes;
        Plan plan;
        uint64_t bytes; /* for the limits while in flight */

        /* The work. */
        AllocParams params;
        PoolWork *pw;
        size_t n_pw;
        bool exact;
        uint64_t need;
        /* reserve, when the kernel came up short: the pages missing, and with node_bytes the node they were
         * missing on (else every node of the plan) */
        uint64_t short_pages;
        bool short_on_node;
        uint32_t short_node;
        int result;
        HpError error;
        AllocStats stats;

        ManagerDone done;
        void *userdata;
};

/* A request beyond the machine's RAM can never succeed, and trying would first squeeze every other user of
 * memory while the kernel grabs what it can. Refuse it before touching anything. */
static int plan_check_ram(Manager *m, const Plan *plan, HpError *error) {
        char ps[FORMAT_SIZE_MAX], ram[FORMAT_SIZE_MAX];
        if (m->mem_total == 0 || plan->pages <= m->mem_total / plan->page_size)
                return 0;
        return hp_error_set(error, HP_ERROR_INSUFFICIENT_PAGES,
                            "cannot reserve %" PRIu64 " %s pages: that is more than the machine's %s of memory",
                            plan->pages, page_size_str(ps, plan->page_size), format_size(ram, sizeof(ram), m->mem_total));
}

static int plan_build(Manager *m, const ReserveRequest *req, Plan *plan, HpError *error) {
        char ps[FORMAT_SIZE_MAX];

        *plan = (Plan) {};
        plan->page_size = req->page_size == 0 ? m->default_page_size : req->page_size;
        if (!manager_has_page_size(m, plan->page_size))
                return hp_error_set(error, HP_ERROR_UNSUPPORTED_PAGE_SIZE,
                                    "page size %" PRIu64 " is not supported by this kernel", plan->page_size);
        page_size_str(ps, plan->page_size);

        if (req->has_nodes && req->has_node_bytes)
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "give either 'nodes' or 'node_bytes', not both");

        if (req->has_node_bytes) {
                uint64_t sum = 0;
                if (req->n_node_bytes == 0)
                        return hp_error_set(error, HP_ERROR_INVALID_ARGS, "'node_bytes' is empty");
                plan->exact = calloc(req->n_node_bytes, sizeof(NodePages));
                if (!plan->exact)
                        return -ENOMEM;
                for (size_t i = 0; i < req->n_node_bytes; i++) {
                        const NodeBytes *nb = &req->node_bytes[i];
                        if (nb->bytes == 0)
                                return hp_error_set(error, HP_ERROR_INVALID_ARGS,
                                                    "'node_bytes' asks for 0 bytes on node %" PRIu32, nb->node);
                        if (nb->bytes > UINT64_MAX - sum)
                                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "'node_bytes' adds up to more than 2^64 bytes");
                        sum += nb->bytes;
                        plan->exact[i] = (NodePages) { nb->node, bytes_to_pages(nb->bytes, plan->page_size) };
                }
                plan->n_exact = req->n_node_bytes;
                qsort(plan->exact, plan->n_exact, sizeof(NodePages), node_pages_cmp);
                for (size_t i = 0; i < plan->n_exact; i++) {
                        if (i > 0 && plan->exact[i].node == plan->exact[i - 1].node)
                                return hp_error_set(error, HP_ERROR_INVALID_ARGS,
                                                    "'node_bytes' names node %" PRIu32 " twice", plan->exact[i].node);
                        if (!manager_has_node(m, plan->exact[i].node))
                                return hp_error_set(error, HP_ERROR_NO_SUCH_NODE,
                                                    "node %" PRIu32 " does not exist or has no memory", plan->exact[i].node);
                        plan->pages += plan->exact[i].pages;
                }
                if (req->bytes != 0 && req->bytes != sum)
                        return hp_error_set(error, HP_ERROR_INVALID_ARGS,
                                            "bytes is %" PRIu64 " but 'node_bytes' adds up to %" PRIu64
                                            "; give 0 or their sum", req->bytes, sum);
                plan->nodes = calloc(plan->n_exact, sizeof(uint32_t));
                if (!plan->nodes)
                        return -ENOMEM;
                for (size_t i = 0; i < plan->n_exact; i++)
                        plan->nodes[i] = plan->exact[i].node;
                plan->n_nodes = plan->n_exact;
                return plan_check_ram(m, plan, error);
        }

        if (req->bytes == 0)
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "bytes must be greater than 0");
        plan->pages = bytes_to_pages(req->bytes, plan->page_size);

        if (req->has_nodes) {
                if (req->n_nodes == 0)
                        return hp_error_set(error, HP_ERROR_INVALID_ARGS, "'nodes' is empty");
                plan->req_nodes = calloc(req->n_nodes, sizeof(uint32_t));
                if (!plan->req_nodes)
                        return -ENOMEM;
                memcpy(plan->req_nodes, req->nodes, req->n_nodes * sizeof(uint32_t));
                qsort(plan->req_nodes, req->n_nodes, sizeof(uint32_t), u32_cmp);
                for (size_t i = 0; i < req->n_nodes; i++) {
                        if (i > 0 && plan->req_nodes[i] == plan->req_nodes[i - 1])
                                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "'nodes' names node %" PRIu32 " twice",
                                                    plan->req_nodes[i]);
                        if (!manager_has_node(m, plan->req_nodes[i]))
                                return hp_error_set(error, HP_ERROR_NO_SUCH_NODE,
                                                    "node %" PRIu32 " does not exist or has no memory", plan->req_nodes[i]);
                }
                plan->n_req_nodes = req->n_nodes;
        }

        const uint32_t *src = req->has_nodes ? plan->req_nodes : m->nodes;
        size_t n = req->has_nodes ? plan->n_req_nodes : m->n_nodes;
        if (n == 0)
                return hp_error_set(error, HP_ERROR_NO_SUCH_NODE, "no node with memory is available");
        plan->nodes = calloc(n, sizeof(uint32_t));
        if (!plan->nodes)
                return -ENOMEM;
        memcpy(plan->nodes, src, n * sizeof(uint32_t));
        plan->n_nodes = n;
        return plan_check_ram(m, plan, error);
}

static bool reservation_matches(const Reservation *r, const Plan *plan, const ReserveRequest *req) {
        if (r->page_size != plan->page_size || r->pages != plan->pages || r->lifetime != req->lifetime ||
            r->uid != req->uid)
                return false;
        if (r->lifetime == LIFETIME_PID && r->pid != req->pid)
                return false;
        if (r->lifetime == LIFETIME_CALLER && (!r->caller || !req->caller || !streq(r->caller, req->caller)))
                return false;
        if (r->n_req_nodes != plan->n_req_nodes ||
            (plan->n_req_nodes > 0 && memcmp(r->req_nodes, plan->req_nodes, plan->n_req_nodes * sizeof(uint32_t)) != 0))
                return false;
        /* Field by field: NodePages has padding, which memcmp would compare too. */
        if (r->n_req_node_pages != plan->n_exact)
                return false;
        for (size_t i = 0; i < plan->n_exact; i++)
                if (r->req_node_pages[i].node != plan->exact[i].node ||
                    r->req_node_pages[i].pages != plan->exact[i].pages)
                        return false;
        return true;
}

static uint64_t pool_spare(const Pool *p) {
        uint64_t used = pool_floor(p) + p->reserved;
        uint64_t persistent = pool_persistent(p);
        return persistent > used ? persistent - used : 0;
}

static void pools_settle_ranges(Manager *m) {
        for (size_t i = 0; i < m->n_pools; i++)
                if (!m->pools[i]->busy) /* its job's range must stay on disk until the job is done */
                        m->pools[i]->range_lo = m->pools[i]->range_hi = m->pools[i]->known;
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* [Limits]: per uid (not for root, who is trusted with the machine anyway), and the total for everyone. A retry
 * of an existing reservation never gets here, so it is never refused for a limit it already counts in. */
static int check_limits(Manager *m, const Plan *plan, uid_t uid, HpError *error) {
        const Config *c = &m->config;
        char a[FORMAT_SIZE_MAX], b[FORMAT_SIZE_MAX], l[FORMAT_SIZE_MAX], ram[FORMAT_SIZE_MAX];
        uint64_t bytes, user_bytes = 0, total = 0, max_total;
        unsigned user_n = 0;

        bytes = plan->pages > UINT64_MAX / plan->page_size ? UINT64_MAX : plan->pages * plan->page_size;
        /* Reserves whose kernel part is running count as granted: two concurrent requests must not both fit
         * into the same room. */
        for (Job *j = m->jobs; j; j = j->next)
                if (j->type == JOB_RESERVE && j->worker) {
                        total = add_sat(total, j->bytes);
                        if (j->req.uid == uid) {
                                user_bytes = add_sat(user_bytes, j->bytes);
                                user_n++;
                        }
                }
        for (size_t i = 0; i < m->n_reservations; i++) {
                const Reservation *r = m->reservations[i];
                uint64_t rb = r->pages * r->page_size;
                total = add_sat(total, rb);
                if (r->uid == uid) {
                        user_bytes = add_sat(user_bytes, rb);
                        user_n++;
                }
        }

        if (uid != 0) {
                if (c->max_reservations_per_user != UINT_MAX && user_n >= c->max_reservations_per_user)
                        return hp_error_set(error, HP_ERROR_LIMIT_EXCEEDED,
                                            "uid %u has %u reservations; the limit per user is %u "
                                            "(MaxReservationsPerUser=)",
                                            (unsigned) uid, user_n, c->max_reservations_per_user);
                if (c->max_bytes_per_user != CONFIG_UNLIMITED && add_sat(user_bytes, bytes) > c->max_bytes_per_user)
                        return hp_error_set(error, HP_ERROR_LIMIT_EXCEEDED,
                                            "reserving %s would bring uid %u to %s; the limit per user is %s "
                                            "(MaxBytesPerUser=)",
                                            format_size(a, sizeof(a), bytes), (unsigned) uid,
                                            format_size(b, sizeof(b), add_sat(user_bytes, bytes)),
                                            format_size(l, sizeof(l), c->max_bytes_per_user));
        }

        max_total = config_max_reserved_bytes(c, m->mem_total);
        if (max_total != CONFIG_UNLIMITED && add_sat(total, bytes) > max_total) {
                if (c->max_reserved_percent > 0 && m->mem_total == 0)
                        return hp_error_set(error, HP_ERROR_LIMIT_EXCEEDED,
                                            "MaxReservedBytes=%u%% cannot be enforced: the size of RAM is unknown",
                                            c->max_reserved_percent);
                if (c->max_reserved_percent > 0)
                        (void) snprintf(ram, sizeof(ram), "%u%%", c->max_reserved_percent);
                else
                        format_size(ram, sizeof(ram), max_total);
                return hp_error_set(error, HP_ERROR_LIMIT_EXCEEDED,
                                    "reserving %s would bring the reserved total to %s; the limit is %s "
                                    "(MaxReservedBytes=%s)",
                                    format_size(a, sizeof(a), bytes), format_size(b, sizeof(b), add_sat(total, bytes)),
                                    format_size(l, sizeof(l), max_total), ram);
        }
        return 0;
}

/* ---- jobs: kernel work off the event loop ------------------------------------------------------------ */

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        free(j->nodes);
        free(j->name);
        free(j->caller);
        free(j->req_nodes);
        free(j->req_node_bytes);
        plan_done(&j->plan);
        free(j->pw);
        free(j);
        return NULL;
}

static void manager_dispatch_jobs(Manager *m);

static bool nodes_intersect(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
        for (size_t i = 0; i < na; i++)
                for (size_t k = 0; k < nb; k++)
                        if (a[i] == b[k])
                                return true;
        return false;
}

static bool jobs_conflict(const Job *a, const Job *b) {
        if (a->type == JOB_RESERVE && b->type == JOB_RESERVE && streq(a->name, b->name))
                return true;
        return a->page_size == b->page_size && nodes_intersect(a->nodes, a->n_nodes, b->nodes, b->n_nodes);
}

size_t manager_jobs_pending(Manager *m) {
        size_t n = 0;
        for (Job *j = m->jobs; j; j = j->next)
                n++;
        return n;
}

static void job_set_busy(Job *j, bool busy) {
        for (size_t i = 0; i < j->n_nodes; i++) {
                Pool *p = manager_find_pool(j->manager, j->page_size, j->nodes[i]);
                if (p)
                        p->busy = busy;
        }
}

static void manager_unlink_job(Manager *m, Job *j) {
        Job **pp = &m->jobs, *prev = NULL;
        for (; *pp; prev = *pp, pp = &(*pp)->next)
                if (*pp == j) {
                        *pp = j->next;
                        if (m->jobs_tail == j)
                                m->jobs_tail = prev;
                        return;
                }
}

static void manager_enqueue_job(Manager *m, Job *j) {
        j->manager = m;
        if (m->jobs_tail)
                m->jobs_tail->next = j;
        else
                m->jobs = j;
        m->jobs_tail = j;
        manager_dispatch_jobs(m);
}

/* The kernel part of a reserve: grow the pools in order, and put them all back if the request can't be met. */
static void work_rollback(Job *j, size_t n) {
        char ps[FORMAT_SIZE_MAX];
        for (size_t i = 0; i < n; i++) {
                PoolWork *w = &j->pw[i];
                if (node_counts_persistent(&w->counts) == w->before)
                        continue;
                if (alloc_apply(&j->params, j->page_size, w->node, w->before, &w->counts, &j->stats) < 0 ||
                    node_counts_persistent(&w->counts) != w->before)
                        log_error("could not put %s pages on node %" PRIu32 " back to %" PRIu64 " pages (now %" PRIu64 ")",
                                  page_size_str(ps, j->page_size), w->node, w->before,
                                  node_counts_persistent(&w->counts));
        }
}

static void work_reserve(Job *j) {
        char ps[FORMAT_SIZE_MAX], nodes_str[128];
        uint64_t need = j->need;

        page_size_str(ps, j->page_size);
        for (size_t i = 0; i < j->n_pw; i++) {
                PoolWork *w = &j->pw[i];
                uint64_t want = j->exact ? w->exact - w->spare : need;
                uint64_t target, persistent = node_counts_persistent(&w->counts), got;

                if (want == 0)
                        continue;
                target = MIN(w->base + want, w->max_pages);
                if (target <= persistent && persistent >= w->base + want)
                        got = want;
                else {
                        int k = alloc_apply(&j->params, j->page_size, w->node, MAX(target, persistent), &w->counts,
                                            &j->stats);
                        if (k < 0) {
                                work_rollback(j, i + 1);
                                j->result = hp_error_set(&j->error, HP_ERROR_FAILED,
                                                         "cannot resize %s pages on node %" PRIu32 ": %s", ps, w->node,
                                                         strerror(-k));
                                return;
                        }
                        persistent = node_counts_persistent(&w->counts);
                        got = persistent > w->base ? MIN(persistent - w->base, want) : 0;
                }
                w->got = got;
                if (j->exact && got < want) {
                        j->short_pages = want - got;
                        j->short_on_node = true;
                        j->short_node = w->node;
                        work_rollback(j, i + 1);
                        j->result = hp_error_set(&j->error, HP_ERROR_INSUFFICIENT_PAGES,
                                                 "cannot reserve %" PRIu64 " %s pages on node %" PRIu32
                                                 ": the kernel gave %" PRIu64 " of %" PRIu64 " pages",
                                                 w->exact, ps, w->node, w->spare + got, w->exact);
                        return;
                }
                if (!j->exact)
                        need -= got;
        }
        if (!j->exact && need > 0) {
                j->short_pages = need;
                work_rollback(j, j->n_pw);
                format_nodes(nodes_str, sizeof(nodes_str), j->plan.nodes, j->plan.n_nodes);
                j->result = hp_error_set(&j->error, HP_ERROR_INSUFFICIENT_PAGES,
                                         "cannot reserve %" PRIu64 " %s pages on node%s %s: the kernel gave %" PRIu64
                                         " of %" PRIu64 " pages", j->plan.pages, ps, j->plan.n_nodes > 1 ? "s" : "",
                                         nodes_str, j->plan.pages - need, j->plan.pages);
        }
}

static void work_shrink(Job *j) {
        char ps[FORMAT_SIZE_MAX];
        for (size_t i = 0; i < j->n_pw; i++) {
                PoolWork *w = &j->pw[i];
                int k;
                if (!w->active)
                        continue;
                k = alloc_apply(&j->params, j->page_size, w->node, w->target, &w->counts, &j->stats);
                if (k < 0 && j->result == 0)
                        j->result = hp_error_set(&j->error, HP_ERROR_FAILED,
                                                 "released, but cannot shrink %s pages on node %" PRIu32 ": %s",
                                                 page_size_str(ps, j->page_size), w->node, strerror(-k));
        }
}

static void job_work(Job *j) {
        if (j->type == JOB_RESERVE)
                work_reserve(j);
        else
                work_shrink(j);
}

static void *job_thread(void *userdata) {
        Job *j = userdata;
        Manager *m = j->manager;
        uint64_t one = 1;

        job_work(j);
        pthread_mutex_lock(m->jobs_lock);
        j->done_next = m->jobs_done;
        m->jobs_done = j;
        pthread_mutex_unlock(m->jobs_lock);
        /* The eventfd only counts; a failed write means the counter is already non-zero. */
        (void) !write(m->job_efd, &one, sizeof(one));
        return NULL;
}

/* Copies the worker's readings into the pools that still exist. */
static void job_apply_counts(Job *j) {
        Manager *m = j->manager;
        for (size_t i = 0; i < j->n_pw; i++) {
                Pool *p = manager_find_pool(m, j->page_size, j->pw[i].node);
                if (!p)
                        continue;
                p->counts = j->pw[i].counts;
                p->known = pool_persistent(p);
        }
        manager_stats_add(m, &j->stats);
}

static void reserve_finish(Job *j);
static void shrink_finish(Job *j);
static int reserve_prepare(Job *j);
static int shrink_prepare(Job *j);

static void job_complete(Job *j) {
        Manager *m = j->manager;
        job_apply_counts(j);
        job_set_busy(j, false);
        manager_unlink_job(m, j);
        if (j->type == JOB_RESERVE)
                reserve_finish(j);
        else
                shrink_finish(j);
        job_free(j);
}

/* Starts j: its loop part (checks, plan, the state file's intent), then the kernel part in a worker thread if
 * there is any. Returns true if j completed synchronously (and is freed). */
static bool job_start(Job *j) {
        Manager *m = j->manager;
        pthread_t t;
        pthread_attr_t attr;
        int k;

        j->started = true;
        k = j->type == JOB_RESERVE ? reserve_prepare(j) : shrink_prepare(j);
        if (k <= 0) {
                /* Failed, or nothing for the kernel to do: finish right here. */
                job_complete(j);
                return true;
        }
        job_set_busy(j, true);
        j->worker = true;
        k = pthread_attr_init(&attr);
        if (k == 0) {
                (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                k = pthread_create(&t, &attr, job_thread, j);
                pthread_attr_destroy(&attr);
        }
        if (k != 0) {
                /* No thread: do the work here rather than fail the request. */
                log_warning("cannot start a worker thread (%s), working on the event loop", strerror(k));
                j->params.watchdog = m->watchdog;
                job_work(j);
                job_complete(j);
                return true;
        }
        m->n_running++;
        return false;
}

static void manager_dispatch_jobs(Manager *m) {
        if (m->dispatching) {
                m->dispatch_again = true;
                return;
        }
        m->dispatching = true;
        do {
                m->dispatch_again = false;
                for (Job *j = m->jobs, *next; j; j = next) {
                        bool blocked = false;
                        next = j->next;
                        if (j->started)
                                continue;
                        for (Job *o = m->jobs; o != j && !blocked; o = o->next)
                                blocked = jobs_conflict(o, j);
                        if (blocked)
                                continue;
                        if (job_start(j)) {
                                /* The list changed under us (j is gone, callbacks may have queued more): rescan. */
                                m->dispatch_again = true;
                                break;
                        }
                }
        } while (m->dispatch_again);
        m->dispatching = false;
}

static void manager_collect_done(Manager *m) {
        Job *done;
        uint64_t v;

        (void) !read(m->job_efd, &v, sizeof(v));
        pthread_mutex_lock(m->jobs_lock);
        done = m->jobs_done;
        m->jobs_done = NULL;
        pthread_mutex_unlock(m->jobs_lock);
        /* Pushed newest first: reverse, so jobs complete in the order they finished. */
        {
                Job *rev = NULL;
                while (done) {
                        Job *next = done->done_next;
                        done->done_next = rev;
                        rev = done;
                        done = next;
                }
                done = rev;
        }
        for (Job *j = done, *next; j; j = next) {
                next = j->done_next;
                m->n_running--;
                job_complete(j);
        }
}

static int on_job_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        manager_collect_done(m);
        manager_dispatch_jobs(m);
        return 0;
}

static int manager_setup_jobs(Manager *m) {
        pthread_mutex_t *lock;
        int r;

        lock = malloc(sizeof(*lock));
        if (!lock)
                return -ENOMEM;
        pthread_mutex_init(lock, NULL);
        m->jobs_lock = lock;
        m->job_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->job_efd < 0)
                return -errno;
        r = sd_event_add_io(m->event, &m->job_source, m->job_efd, EPOLLIN, on_job_done, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->job_source, "jobs-done");
        return 0;
}

/* At exit: wait for the workers (they hold no locks and finish within the allocation timeout), then tell the
 * callers of every job that it was cancelled. */
static void manager_drain_jobs(Manager *m) {
        while (m->n_running > 0) {
                struct pollfd pfd = { .fd = m->job_efd, .events = POLLIN };
                Job *done;
                (void) poll(&pfd, 1, -1);
                pthread_mutex_lock(m->jobs_lock);
                done = m->jobs_done;
                m->jobs_done = NULL;
                pthread_mutex_unlock(m->jobs_lock);
                {
                        uint64_t v;
                        (void) !read(m->job_efd, &v, sizeof(v));
                }
                for (Job *j = done, *next; j; j = next) {
                        next = j->done_next;
                        m->n_running--;
                        job_apply_counts(j);
                        job_set_busy(j, false);
                        manager_unlink_job(m, j);
                        if (j->done)
                                j->done(m, -ECANCELED, NULL, false, &j->error, j->userdata);
                        job_free(j);
                }
        }
        while (m->jobs) {
                Job *j = m->jobs;
                manager_unlink_job(m, j);
                if (j->done)
                        j->done(m, -ECANCELED, NULL, false, &j->error, j->userdata);
                job_free(j);
        }
}

/* ---- reserve ----------------------------------------------------------------------------------------- */

static int reserve_check(Manager *m, const ReserveRequest *req, Plan *plan, HpError *error) {
        if (!reservation_name_is_valid(req->name))
                return hp_error_set(error, HP_ERROR_INVALID_ARGS,
                                    "invalid reservation name: use 1 to %d characters from A-Z a-z 0-9 . _ : @ + -",
                                    RESERVATION_NAME_MAX);
        if (req->lifetime < 0 || req->lifetime >= _LIFETIME_MAX)
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "invalid lifetime");
        if (req->lifetime == LIFETIME_PID && (!req->has_pid || req->pid == 0))
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "lifetime 'pid' needs the option 'pid'");
        if (req->lifetime != LIFETIME_PID && req->has_pid)
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "the option 'pid' needs lifetime 'pid'");
        if (req->lifetime == LIFETIME_CALLER && !req->caller)
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "lifetime 'caller' needs a bus connection");
        return plan_build(m, req, plan, error);
}

static Job *reserve_job_new(Manager *m, const ReserveRequest *req, HpError *error, int *ret) {
        Job *j = calloc(1, sizeof(*j));
        int k;

        if (!j) {
                *ret = -ENOMEM;
                return NULL;
        }
        j->manager = m;
        j->type = JOB_RESERVE;
        j->req = *req;
        j->name = strdup(req->name ?: "");
        j->caller = req->caller ? strdup(req->caller) : NULL;
        if (req->n_nodes > 0)
                j->req_nodes = newdup(req->nodes, req->n_nodes * sizeof(uint32_t));
        if (req->n_node_bytes > 0)
                j->req_node_bytes = newdup(req->node_bytes, req->n_node_bytes * sizeof(NodeBytes));
        if (!j->name || (req->caller && !j->caller) || (req->n_nodes > 0 && !j->req_nodes) ||
            (req->n_node_bytes > 0 && !j->req_node_bytes)) {
                job_free(j);
                *ret = -ENOMEM;
                return NULL;
        }
        j->req.name = j->name;
        j->req.caller = j->caller;
        j->req.nodes = j->req_nodes;
        j->req.node_bytes = j->req_node_bytes;

        k = reserve_check(m, &j->req, &j->plan, error);
        if (k < 0) {
                job_free(j);
                *ret = k;
                return NULL;
        }
        j->page_size = j->plan.page_size;
        j->nodes = newdup(j->plan.nodes, j->plan.n_nodes * sizeof(uint32_t));
        if (!j->nodes) {
                job_free(j);
                *ret = -ENOMEM;
                return NULL;
        }
        j->n_nodes = j->plan.n_nodes;
        j->bytes = j->plan.pages > UINT64_MAX / j->plan.page_size ? UINT64_MAX : j->plan.pages * j->plan.page_size;
        *ret = 0;
        return j;
}

/* The loop part before the kernel: existing name, limits, the spare pages to take, and the intent written to the
 * state file. Returns 1 if the kernel has work to do, 0 if the job is complete, <0 on error (j->error set). */
static int reserve_prepare(Job *j) {
        Manager *m = j->manager;
        Plan *plan = &j->plan;
        const ReserveRequest *req = &j->req;
        char ps[FORMAT_SIZE_MAX], nodes_str[128];
        Reservation *existing;
        uint64_t need, headroom = 0;
        size_t n;
        bool grow = false;
        int k;

        page_size_str(ps, plan->page_size);
        /* Checked again: the topology may have changed while the job waited. */
        plan_done(plan);
        k = reserve_check(m, req, plan, &j->error);
        if (k < 0)
                return j->result = k;

        existing = manager_find_reservation(m, req->name);
        if (existing) {
                if (!reservation_matches(existing, plan, req))
                        return j->result = hp_error_set(&j->error, HP_ERROR_RESERVATION_EXISTS,
                                                        "reservation %s already exists with different parameters",
                                                        req->name);
                j->result = 1; /* existed */
                return 0;
        }
        if (m->n_reservations >= m->config.max_reservations)
                return j->result = hp_error_set(&j->error, HP_ERROR_LIMIT_EXCEEDED,
                                                "too many reservations: the limit is %u (MaxReservations=)",
                                                m->config.max_reservations);
        k = check_limits(m, plan, req->uid, &j->error);
        if (k < 0)
                return j->result = k;

        if (req->lifetime == LIFETIME_PID && kill((pid_t) req->pid, 0) < 0 && errno == ESRCH)
                return j->result = hp_error_set(&j->error, HP_ERROR_INVALID_ARGS, "process %" PRIu32 " does not exist",
                                                req->pid);

        /* Someone may have changed the pools since we last looked; start from the truth. */
        n = plan->n_nodes;
        free(j->pw);
        j->pw = calloc(n, sizeof(PoolWork));
        if (!j->pw)
                return j->result = -ENOMEM;
        j->n_pw = n;
        j->exact = plan->exact != NULL;
        for (size_t i = 0; i < n; i++) {
                Pool *p = manager_find_pool(m, plan->page_size, plan->nodes[i]);
                if (!p)
                        return j->result = hp_error_set(&j->error, HP_ERROR_NO_SUCH_NODE, "node %" PRIu32 " has no %s pool",
                                                        plan->nodes[i], ps);
                k = pool_refresh(p);
                if (k < 0)
                        return j->result = hp_error_set(&j->error, HP_ERROR_FAILED,
                                                        "cannot read %s pages on node %" PRIu32 ": %s", ps,
                                                        plan->nodes[i], strerror(-k));
                j->pw[i] = (PoolWork) { .node = p->node, .before = pool_persistent(p), .counts = p->counts,
                                        .max_pages = p->max_pages };
        }

        /* Plan: spare pages first, then growth, within MaxPages. */
        need = plan->pages;
        for (size_t i = 0; i < n; i++) {
                Pool *p = manager_find_pool(m, plan->page_size, plan->nodes[i]);
                uint64_t want = plan->exact ? plan->exact[i].pages : need;
                uint64_t spare = pool_spare(p), base = pool_floor(p) + p->reserved;
                uint64_t cap = p->max_pages > base ? p->max_pages - base : 0;

                if (plan->exact && want > cap)
                        return j->result = hp_error_set(&j->error, HP_ERROR_LIMIT_EXCEEDED,
                                                        "%" PRIu64 " more %s pages on node %" PRIu32
                                                        " would exceed MaxPages=%" PRIu64 " (Floor %" PRIu64
                                                        ", reserved %" PRIu64 ")", want, ps, p->node, p->max_pages,
                                                        pool_floor(p), p->reserved);
                j->pw[i].spare = MIN(spare, want);
                j->pw[i].base = base + j->pw[i].spare;
                if (plan->exact)
                        j->pw[i].exact = plan->exact[i].pages;
                headroom += cap;
                if (!plan->exact)
                        need -= j->pw[i].spare;
                if (plan->exact ? j->pw[i].exact > j->pw[i].spare : false)
                        grow = true;
        }
        if (!plan->exact && need > 0)
                grow = true;
        if (!plan->exact && headroom < plan->pages) {
                format_nodes(nodes_str, sizeof(nodes_str), plan->nodes, n);
                return j->result = hp_error_set(&j->error, HP_ERROR_LIMIT_EXCEEDED,
                                                "%" PRIu64 " %s pages on node%s %s would exceed MaxPages: only %" PRIu64
                                                " more allowed", plan->pages, ps, n > 1 ? "s" : "", nodes_str, headroom);
        }
        j->need = need;
        if (!grow)
                return 0; /* served from spare pages: no kernel write, so no intent to record */

        /* Write down what may happen before it happens: after a crash, the state file tells our own half-done
         * work from someone else's change. */
        for (size_t i = 0; i < n; i++) {
                Pool *p = manager_find_pool(m, plan->page_size, plan->nodes[i]);
                uint64_t want = plan->exact ? plan->exact[i].pages : plan->pages;
                p->range_hi = MAX(p->range_hi, MIN(pool_floor(p) + p->reserved + want, p->max_pages));
                p->range_hi = MAX(p->range_hi, j->pw[i].before);
        }
        k = state_save(m);
        if (k < 0)
                return j->result = hp_error_set(&j->error, HP_ERROR_FAILED, "cannot write the state file: %s",
                                                strerror(-k));
        j->params = alloc_params(m, false);
        j->params.drop_caches = m->config.drop_caches &&
                                (plan->page_size >= GIGANTIC_PAGE_SIZE || j->bytes >= CONFIG_DROP_CACHES_MIN_BYTES);
        return 1;
}

/* The kernel came up short while the pools hold enough Floor pages hugepaged adopted (pages that were there before
 * it, such as pages set aside at boot) to cover the shortfall: say that Adopt=spare would grant them, rather than
 * let the user hunt for pages that are already there. Only free ones count, and only those above MinPages, which
 * Adopt= leaves alone. */
static void reserve_hint_adopted_floor(Job *j) {
        Manager *m = j->manager;
        char ps[FORMAT_SIZE_MAX];
        uint64_t could = 0;

        if (j->error.code != HP_ERROR_INSUFFICIENT_PAGES || j->short_pages == 0)
                return;
        for (size_t i = 0; i < j->n_pw; i++) {
                Pool *p = manager_find_pool(m, j->page_size, j->pw[i].node);
                uint64_t adopted;
                if (!p || p->adopt_spare || (j->short_on_node && p->node != j->short_node))
                        continue;
                adopted = p->floor_adopted > p->min_pages ? p->floor_adopted - p->min_pages : 0;
                could += MIN(adopted, p->counts.free);
        }
        if (could < j->short_pages)
                return; /* they would not have helped: the usual advice stands */
        page_size_str(ps, j->page_size);
        hp_error_append(&j->error,
                        "; the pool holds %" PRIu64 " free Floor pages, enough for the %" PRIu64 " missing: pages that "
                        "were there before hugepaged (set aside at boot, say), which reservations never take; set "
                        "Adopt=spare in [Pool %s] of hugepaged.conf to grant them",
                        could, j->short_pages, ps);
}

/* Puts the job's pools back, on the loop: only for the rare failures after the kernel part succeeded. */
static void reserve_rollback_sync(Job *j) {
        j->params = alloc_params(j->manager, true);
        work_rollback(j, j->n_pw);
        job_apply_counts(j);
}

static void reserve_finish(Job *j) {
        Manager *m = j->manager;
        Plan *plan = &j->plan;
        const ReserveRequest *req = &j->req;
        char ps[FORMAT_SIZE_MAX];
        Reservation *r = NULL;
        int k;

        if (j->result == 1) {
                Reservation *existing = manager_find_reservation(m, req->name);
                if (j->done)
                        j->done(m, 0, existing, true, &j->error, j->userdata);
                return;
        }
        if (j->result < 0)
                goto settle;

        page_size_str(ps, plan->page_size);
        r = calloc(1, sizeof(*r));
        if (!r)
                goto oom;
        *r = (Reservation) {
                .manager = m,
                .page_size = plan->page_size,
                .pages = plan->pages,
                .uid = req->uid,
                .lifetime = req->lifetime,
                .pid = req->has_pid ? req->pid : 0,
                .created_usec = now_usec(CLOCK_REALTIME),
                .pidfd = -EBADF,
        };
        r->name = strdup(req->name);
        if (!r->name || reservation_set_path(r) < 0)
                goto oom;
        if (req->lifetime == LIFETIME_CALLER && !(r->caller = strdup(req->caller)))
                goto oom;
        for (size_t i = 0; i < j->n_pw; i++) {
                uint64_t take = j->pw[i].spare + j->pw[i].got;
                if (take > 0) {
                        NodePages *t = realloc(r->node_pages, (r->n_node_pages + 1) * sizeof(*t));
                        if (!t)
                                goto oom;
                        r->node_pages = t;
                        t[r->n_node_pages++] = (NodePages) { j->pw[i].node, take };
                }
        }
        r->req_nodes = TAKE_PTR(plan->req_nodes);
        r->n_req_nodes = plan->n_req_nodes;
        if (plan->exact) {
                r->req_node_pages = malloc(plan->n_exact * sizeof(NodePages));
                if (!r->req_node_pages)
                        goto oom;
                memcpy(r->req_node_pages, plan->exact, plan->n_exact * sizeof(NodePages));
                r->n_req_node_pages = plan->n_exact;
        }
        if (r->lifetime == LIFETIME_PID) {
                k = reservation_watch_pid(r);
                if (k < 0) {
                        reserve_rollback_sync(j);
                        j->result = hp_error_set(&j->error, HP_ERROR_INVALID_ARGS, "cannot watch process %" PRIu32 ": %s",
                                                 r->pid, strerror(-k));
                        goto settle;
                }
        }
        k = manager_link_reservation(m, r);
        if (k < 0)
                goto oom;
        reservation_account(m, r, true);
        pools_settle_ranges(m);

        /* The reply promises the reservation exists: it must be on disk first. */
        k = state_save(m);
        if (k < 0) {
                reservation_account(m, r, false);
                manager_unlink_reservation(m, r);
                reserve_rollback_sync(j);
                j->result = hp_error_set(&j->error, HP_ERROR_FAILED, "cannot write the state file: %s", strerror(-k));
                goto settle;
        }

        log_info("reserved %s: %" PRIu64 " %s pages for uid %u, lifetime %s", r->name, r->pages, ps, (unsigned) r->uid,
                 lifetime_to_string(r->lifetime));
        if (m->on_reservation_added)
                m->on_reservation_added(m, r);
        manager_pools_changed(m);
        if (j->done)
                j->done(m, 0, r, false, &j->error, j->userdata);
        return;

oom:
        reserve_rollback_sync(j);
        j->result = hp_error_set(&j->error, HP_ERROR_FAILED, "out of memory");
settle:
        reservation_free(r);
        reserve_hint_adopted_floor(j);
        if (j->n_pw > 0) {
                pools_settle_ranges(m);
                (void) state_save(m);
                manager_pools_changed(m);
        }
        if (j->done)
                j->done(m, j->result, NULL, false, &j->error, j->userdata);
}

int manager_reserve_async(Manager *m, const ReserveRequest *req, ManagerDone done, void *userdata, HpError *error) {
        int k;
        Job *j = reserve_job_new(m, req, error, &k);
        if (!j)
                return k;
        j->done = done;
        j->userdata = userdata;
        manager_enqueue_job(m, j);
        return 0;
}

typedef struct SyncResult {
        bool called;
        int r;
        Reservation *res;
        bool existed;
        HpError error;
} SyncResult;

static void sync_done(Manager *m, int r, Reservation *res, bool existed, const HpError *e, void *userdata) {
        SyncResult *s = userdata;
        s->called = true;
        s->r = r;
        s->res = res;
        s->existed = existed;
        s->error = *e;
}

int manager_reserve(Manager *m, const ReserveRequest *req, Reservation **ret, bool *ret_existed, HpError *error) {
        SyncResult s = {};
        Job *j;
        int k;

        j = reserve_job_new(m, req, error, &k);
        if (!j)
                return k;
        j->done = sync_done;
        j->userdata = &s;
        j->started = true;
        k = reserve_prepare(j);
        if (k > 0) {
                j->params.watchdog = m->watchdog;
                job_set_busy(j, true);
                job_work(j);
        }
        job_apply_counts(j);
        job_set_busy(j, false);
        reserve_finish(j);
        job_free(j);
        if (s.r < 0) {
                if (error && s.error.code != HP_OK)
                        *error = s.error;
                return s.r;
        }
        *ret = s.res;
        *ret_existed = s.existed;
        return 0;
}

/* ---- release and shrink ------------------------------------------------------------------------------ */

static int on_shrink_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* What a pool may shrink to now: never below Floor + Reserved + KeepFreePages, nor below the adopted spare pages
 * (Adopt=spare), which reservations take first. */
static uint64_t pool_shrink_target(const Pool *p) {
        return pool_floor(p) + MAX(p->reserved + p->keep_free, p->spare_adopted);
}

/* Spare pages stay for ShrinkDelaySec=: arm (or push back) the pool's timer. */
static void pool_arm_shrink_timer(Pool *p) {
        Manager *m = p->manager;
        int k;

        if (p->shrink_delay_usec == CONFIG_INFINITY || pool_persistent(p) <= pool_shrink_target(p))
                return;
        if (p->shrink_timer)
                k = sd_event_source_set_time_relative(p->shrink_timer, p->shrink_delay_usec) < 0 ? -1 :
                    sd_event_source_set_enabled(p->shrink_timer, SD_EVENT_ONESHOT);
        else {
                k = sd_event_add_time_relative(m->event, &p->shrink_timer, CLOCK_MONOTONIC, p->shrink_delay_usec,
                                               0, on_shrink_timer, p);
                if (k >= 0)
                        (void) sd_event_source_set_description(p->shrink_timer, "pool-shrink");
        }
        if (k < 0)
                log_warning("%s: cannot arm the shrink timer, the spare pages stay", p->path);
}

static Job *shrink_job_new(Manager *m, uint64_t page_size, const uint32_t *nodes, size_t n) {
        Job *j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        j->manager = m;
        j->type = JOB_SHRINK;
        j->page_size = page_size;
        j->nodes = newdup(nodes, n * sizeof(uint32_t));
        if (!j->nodes)
                return job_free(j);
        j->n_nodes = n;
        return j;
}

static int on_shrink_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Pool *p = userdata;
        Job *j = shrink_job_new(p->manager, p->page_size, &p->node, 1);
        if (!j)
                return log_error_errno(ENOMEM, "out of memory");
        log_debug("%s: the spare pages' delay is over, shrinking", p->path);
        manager_enqueue_job(p->manager, j);
        return 0;
}

static int shrink_prepare(Job *j) {
        Manager *m = j->manager;
        bool any = false;
        int k;

        j->pw = calloc(j->n_nodes, sizeof(PoolWork));
        if (!j->pw)
                return j->result = -ENOMEM;
        j->n_pw = j->n_nodes;
        for (size_t i = 0; i < j->n_nodes; i++) {
                Pool *p = manager_find_pool(m, j->page_size, j->nodes[i]);
                j->pw[i].node = j->nodes[i];
                if (!p)
                        continue;
                j->pw[i].counts = p->counts;
                (void) pool_refresh(p);
                j->pw[i].counts = p->counts;
                if (pool_persistent(p) <= pool_shrink_target(p))
                        continue;
                j->pw[i].active = true;
                j->pw[i].target = pool_shrink_target(p);
                p->range_lo = MIN(p->range_lo, j->pw[i].target);
                any = true;
        }
        if (!any)
                return 0;
        k = state_save(m);
        if (k < 0)
                return j->result = hp_error_set(&j->error, HP_ERROR_FAILED, "cannot write the state file: %s",
                                                strerror(-k));
        j->params = alloc_params(m, false);
        return 1;
}

static void shrink_finish(Job *j) {
        Manager *m = j->manager;
        char ps[FORMAT_SIZE_MAX];

        for (size_t i = 0; i < j->n_pw; i++) {
                Pool *p = manager_find_pool(m, j->page_size, j->pw[i].node);
                if (p && j->pw[i].active && p->counts.surplus > 0)
                        log_info("%s pages on node %" PRIu32 ": %" PRIu64 " pages still in use stay as surplus until "
                                 "their user lets go", page_size_str(ps, p->page_size), p->node, p->counts.surplus);
        }
        pools_settle_ranges(m);
        (void) state_save(m);
        manager_pools_changed(m);
        if (j->done)
                j->done(m, j->result < 0 ? j->result : 0, NULL, false, &j->error, j->userdata);
}

/* The loop part of a release: the reservation is gone, on disk, before this returns. The nodes whose pool
 * should shrink now are returned; the others keep the pages as spare for their delay. */
static int release_bookkeeping(Manager *m, Reservation *r, uint32_t **ret_nodes, size_t *ret_n, HpError *error) {
        _cleanup_free_ uint32_t *nodes = NULL;
        char ps[FORMAT_SIZE_MAX];
        size_t n = 0;
        int k;

        for (size_t i = 0; i < r->n_node_pages; i++) {
                Pool *p = manager_find_pool(m, r->page_size, r->node_pages[i].node);
                if (p)
                        (void) pool_refresh(p);
        }

        reservation_account(m, r, false);
        manager_unlink_reservation(m, r);

        /* Decide first, on disk; then shrink. A crash in between leaves a state file that finishes the job. */
        nodes = calloc(r->n_node_pages + 1, sizeof(uint32_t));
        if (!nodes) {
                manager_link_reservation(m, r);
                reservation_account(m, r, true);
                return hp_error_set(error, HP_ERROR_FAILED, "out of memory");
        }
        for (size_t i = 0; i < r->n_node_pages; i++) {
                Pool *p = manager_find_pool(m, r->page_size, r->node_pages[i].node);
                if (!p)
                        continue;
                if (p->shrink_delay_usec == 0) {
                        p->range_lo = MIN(p->range_lo, pool_shrink_target(p));
                        if (pool_persistent(p) > pool_shrink_target(p))
                                nodes[n++] = p->node;
                }
        }
        k = state_save(m);
        if (k < 0) {
                /* Nothing changed yet: keep the reservation, and say so. */
                manager_link_reservation(m, r);
                reservation_account(m, r, true);
                pools_settle_ranges(m);
                return hp_error_set(error, HP_ERROR_FAILED, "cannot write the state file: %s", strerror(-k));
        }
        for (size_t i = 0; i < r->n_node_pages; i++) {
                Pool *p = manager_find_pool(m, r->page_size, r->node_pages[i].node);
                if (p && p->shrink_delay_usec > 0)
                        pool_arm_shrink_timer(p);
        }

        log_info("released %s: %" PRIu64 " %s pages%s", r->name, r->pages, page_size_str(ps, r->page_size),
                 n < r->n_node_pages ? ", kept as spare for now" : "");
        if (m->on_reservation_removed)
                m->on_reservation_removed(m, r);
        *ret_nodes = TAKE_PTR(nodes);
        *ret_n = n;
        return 0;
}

int manager_release_async(Manager *m, Reservation *r, ManagerDone done, void *userdata, HpError *error) {
        _cleanup_free_ uint32_t *nodes = NULL;
        uint64_t page_size = r->page_size;
        size_t n;
        Job *j;
        int k;

        k = release_bookkeeping(m, r, &nodes, &n, error);
        if (k < 0)
                return k;
        reservation_free(r);
        if (n == 0) {
                pools_settle_ranges(m);
                manager_pools_changed(m);
                if (done)
                        done(m, 0, NULL, false, &(HpError) {}, userdata);
                return 0;
        }
        j = shrink_job_new(m, page_size, nodes, n);
        if (!j) {
                /* Released all the same; the refresh timer's next pass or the next release shrinks. */
                (void) log_error_errno(ENOMEM, "out of memory");
                if (done)
                        done(m, 0, NULL, false, &(HpError) {}, userdata);
                return 0;
        }
        j->done = done;
        j->userdata = userdata;
        manager_enqueue_job(m, j);
        return 0;
}

int manager_release(Manager *m, Reservation *r, HpError *error) {
        _cleanup_free_ uint32_t *nodes = NULL;
        SyncResult s = {};
        uint64_t page_size = r->page_size;
        size_t n;
        Job *j;
        int k;

        k = release_bookkeeping(m, r, &nodes, &n, error);
        if (k < 0)
                return k;
        reservation_free(r);
        j = shrink_job_new(m, page_size, nodes, n);
        if (!j)
                return hp_error_set(error, HP_ERROR_FAILED, "out of memory");
        j->done = sync_done;
        j->userdata = &s;
        j->started = true;
        k = shrink_prepare(j);
        if (k > 0) {
                j->params.watchdog = m->watchdog;
                job_work(j);
        }
        job_apply_counts(j);
        shrink_finish(j);
        job_free(j);
        if (s.r < 0) {
                if (error && s.error.code != HP_OK)
                        *error = s.error;
                return s.r;
        }
        return 0;
}

/* ---- start-up ---------------------------------------------------------------------------------------- */

static int manager_discover(Manager *m) {
        int r;

        /* Decided once, here, before any worker thread shares the kernel module. */
        (void) kernel_has_numa(m->kernel);

        r = kernel_list_page_sizes(m->kernel, &m->page_sizes, &m->n_page_sizes);
        if (r < 0)
                return log_error_errno(r, "no huge page sizes found under %ssys/kernel/mm/hugepages: %m",
                                       kernel_root(m->kernel));
        r = kernel_default_page_size(m->kernel, &m->default_page_size);
        if (r < 0)
                return log_error_errno(r, "cannot read Hugepagesize from %sproc/meminfo: %m", kernel_root(m->kernel));
        if (!manager_has_page_size(m, m->default_page_size))
                return log_error_errno(ENOENT, "the default page size %" PRIu64 " has no pool", m->default_page_size);
        r = kernel_mem_total(m->kernel, &m->mem_total);
        if (r < 0) {
                log_warning_errno(r, "cannot read MemTotal from %sproc/meminfo, requests are not checked against it: %m",
                                  kernel_root(m->kernel));
                m->mem_total = 0;
        }
        r = kernel_list_memory_nodes(m->kernel, &m->nodes, &m->n_nodes);
        if (r < 0)
                return log_error_errno(r, "cannot list the NUMA nodes with memory: %m");

        m->totals = calloc(m->n_page_sizes, sizeof(PageSizeTotals));
        if (!m->totals)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_page_sizes; i++) {
                m->totals[i].page_size = m->page_sizes[i];
                if (asprintf(&m->totals[i].path, "/org/hugepaged1/pool/%" PRIu64 "kB", m->page_sizes[i] / 1024) < 0)
                        return -ENOMEM;
        }

        for (size_t s = 0; s < m->n_page_sizes; s++)
                for (size_t n = 0; n < m->n_nodes; n++) {
                        Pool *p;
                        Pool **t = realloc(m->pools, (m->n_pools + 1) * sizeof(*t));
                        if (!t)
                                return -ENOMEM;
                        m->pools = t;
                        r = pool_new(m, m->page_sizes[s], m->nodes[n], &p);
                        if (r < 0)
                                return r;
                        m->pools[m->n_pools++] = p;
                        r = pool_read(p);
                        if (r < 0)
                                return log_error_errno(r, "cannot read pool %s: %m", p->path);
                }
        return 0;
}

static bool reservation_still_alive(Manager *m, Reservation *r) {
        if (r->lifetime == LIFETIME_PID) {
                int k = reservation_watch_pid(r);
                if (k < 0) {
                        log_info("releasing reservation %s: its process %" PRIu32 " is gone", r->name, r->pid);
                        return false;
                }
        }
        if (r->lifetime == LIFETIME_CALLER) {
                if (!m->bus || sd_bus_get_name_creds(m->bus, r->caller, 0, NULL) < 0) {
                        log_info("releasing reservation %s: its caller %s left the bus", r->name, r->caller);
                        return false;
                }
        }
        return true;
}

static void pool_log_adopted(const Pool *p, const char *what) {
        char ps[FORMAT_SIZE_MAX];

        if (pool_persistent(p) == 0)
                return;
        page_size_str(ps, p->page_size);
        if (p->adopt_spare)
                log_info("%s pages on node %" PRIu32 ":%s adopting the %" PRIu64 " pages already there as hugepaged's "
                         "spare pages (Adopt=spare): reservations take them first", ps, p->node, what,
                         p->spare_adopted);
        else
                log_info("%s pages on node %" PRIu32 ":%s adopting the %" PRIu64 " pages already there as Floor, "
                         "which reservations never take (Adopt=spare in [Pool %s] would grant them)", ps, p->node,
                         what, p->floor_adopted, ps);
}

/* Adopt= changed since the state file was written. The pool keeps its size: with Adopt=spare the Floor it had
 * adopted (above MinPages) becomes spare; with Adopt=floor the adopted spare pages that no reservation holds
 * become Floor, and those reservations hold go back to the kernel when they are released. */
static void pool_convert_adopted(Pool *p) {
        char ps[FORMAT_SIZE_MAX];
        uint64_t before = pool_kept(p);

        if (p->adopt_spare && p->floor_adopted > 0) {
                p->spare_adopted = MAX(p->spare_adopted, pool_floor(p) - p->min_pages);
                p->floor_adopted = 0;
        } else if (!p->adopt_spare && p->spare_adopted > 0) {
                p->floor_adopted = before - p->reserved;
                p->spare_adopted = 0;
        } else
                return;
        log_notice("%s pages on node %" PRIu32 ": Adopt=%s now; adopted spare %" PRIu64 ", Floor %" PRIu64
                   ", Reserved %" PRIu64, page_size_str(ps, p->page_size), p->node,
                   p->adopt_spare ? "spare" : "floor", p->spare_adopted, pool_floor(p), p->reserved);
}

int manager_startup(Manager *m) {
        _cleanup_(state_done) State state = {};
        char ps[FORMAT_SIZE_MAX];
        int r;

        r = manager_discover(m);
        if (r < 0)
                return r;

        r = state_load(m->state_path, &state);
        if (r < 0)
                return r;

        for (size_t i = 0; i < state.n_reservations; i++) {
                Reservation *res = state.reservations[i];
                bool ok = manager_has_page_size(m, res->page_size);

                state.reservations[i] = NULL;
                res->manager = m;
                for (size_t j = 0; ok && j < res->n_node_pages; j++)
                        if (!manager_find_pool(m, res->page_size, res->node_pages[j].node)) {
                                log_warning("reservation %s holds pages on node %" PRIu32 ", which has no pool now; "
                                            "keeping it on record", res->name, res->node_pages[j].node);
                                res->degraded = true;
                        }
                if (!ok) {
                        log_warning("dropping reservation %s: page size %" PRIu64 " is not supported any more",
                                    res->name, res->page_size);
                        reservation_free(res);
                        continue;
                }
                if (reservation_set_path(res) < 0 || manager_link_reservation(m, res) < 0) {
                        reservation_free(res);
                        continue;
                }
                if (!reservation_still_alive(m, res)) {
                        manager_unlink_reservation(m, res);
                        reservation_free(res);
                        continue;
                }
                reservation_account(m, res, true);
        }

        for (size_t i = 0; i < m->n_pools; i++) {
                Pool *p = m->pools[i];
                uint64_t persistent = pool_persistent(p), target;
                const StatePool *sp = NULL;

                page_size_str(ps, p->page_size);
                for (size_t j = 0; j < state.n_pools; j++)
                        if (state.pools[j].page_size == p->page_size && state.pools[j].node == p->node)
                                sp = &state.pools[j];

                if (sp && persistent >= sp->range_lo && persistent <= sp->range_hi) {
                        p->floor_adopted = sp->floor_adopted;
                        p->spare_adopted = sp->spare_adopted;
                        p->known = persistent;
                        pool_convert_adopted(p);
                } else {
                        /* First start, or someone changed the pool while we were away: what is there and no
                         * reservation owns belongs to someone else, unless Adopt=spare makes it ours. */
                        p->known = sp ? sp->range_lo : persistent;
                        if (sp)
                                pool_adopt_outside_change(p, " while hugepaged was not running");
                        else {
                                pool_adopt(p, persistent);
                                pool_log_adopted(p, "");
                        }
                }

                target = pool_kept(p);
                /* Pages above Floor + Reserved that the state file vouches for are our spare pages: they stay
                 * for the pool's delay, as after a release, rather than being thrown back or adopted. */
                if (persistent > target && sp && persistent >= sp->range_lo && persistent <= sp->range_hi &&
                    p->shrink_delay_usec > 0) {
                        log_info("%s pages on node %" PRIu32 ": keeping %" PRIu64 " spare pages", ps, p->node,
                                 persistent - target);
                        pool_arm_shrink_timer(p);
                        target = persistent;
                } else if (persistent > target)
                        target = MAX(target + p->keep_free, target);
                if (persistent > target || (persistent < target && p->min_pages > persistent)) {
                        log_info("%s pages on node %" PRIu32 ": setting the pool to Floor %" PRIu64 " + Reserved %" PRIu64
                                 " (adopted spare %" PRIu64 ")", ps, p->node, pool_floor(p), p->reserved,
                                 p->spare_adopted);
                        r = pool_apply(p, target);
                        if (r < 0)
                                return r;
                        if (pool_persistent(p) < target)
                                log_warning("%s pages on node %" PRIu32 ": only %" PRIu64 " of %" PRIu64 " pages could be had",
                                            ps, p->node, pool_persistent(p), target);
                }
                p->known = pool_persistent(p);
        }
        pools_settle_ranges(m);

        r = state_save(m);
        if (r < 0)
                return r;
        log_info("%zu page sizes, %zu nodes, %zu reservations restored", m->n_page_sizes, m->n_nodes,
                 m->n_reservations);
        return 0;
}

int manager_save_state(Manager *m) {
        return state_save(m);
}

/* ---- topology ---------------------------------------------------------------------------------------- */

static bool nodes_contain(const uint32_t *nodes, size_t n, uint32_t node) {
        for (size_t i = 0; i < n; i++)
                if (nodes[i] == node)
                        return true;
        return false;
}

static int pool_ptr_cmp(const void *a, const void *b) {
        const Pool *x = *(Pool *const *) a, *y = *(Pool *const *) b;
        if (x->page_size != y->page_size)
                return x->page_size < y->page_size ? -1 : 1;
        return x->node < y->node ? -1 : x->node > y->node;
}

/* Withdraws every pool of a node. Reservations keep their pages on record; see reservations_update_state(). */
static void manager_remove_node_pools(Manager *m, uint32_t node) {
        for (size_t i = m->n_pools; i > 0; i--) {
                Pool *p = m->pools[i - 1];
                if (p->node != node)
                        continue;
                if (m->on_pool_removed)
                        m->on_pool_removed(m, p);
                memmove(m->pools + i - 1, m->pools + i, (m->n_pools - i) * sizeof(Pool *));
                m->n_pools--;
                pool_free(p);
        }
        kernel_forget_node(m->kernel, node);
}

/* Creates a node's pools as a first start would: what is there and no reservation owns becomes Floor, and
 * MinPages is applied. All or nothing, so a node whose files are not readable yet is retried next time. */
static int manager_add_node_pools(Manager *m, uint32_t node) {
        char ps[FORMAT_SIZE_MAX];
        size_t first = m->n_pools;
        int r;

        kernel_forget_node(m->kernel, node); /* a returning node has new files */
        for (size_t s = 0; s < m->n_page_sizes; s++) {
                Pool *p;
                Pool **t = realloc(m->pools, (m->n_pools + 1) * sizeof(*t));
                if (!t) {
                        r = -ENOMEM;
                        goto fail;
                }
                m->pools = t;
                r = pool_new(m, m->page_sizes[s], node, &p);
                if (r < 0)
                        goto fail;
                m->pools[m->n_pools++] = p;
                r = pool_read(p);
                if (r < 0) {
                        log_warning_errno(r, "node %" PRIu32 " has memory, but %s cannot be read yet: %m", node,
                                          p->path);
                        goto fail;
                }
        }

        for (size_t i = first; i < m->n_pools; i++) {
                Pool *p = m->pools[i];
                uint64_t persistent = pool_persistent(p), target;

                page_size_str(ps, p->page_size);
                /* A node that comes back brings back the pages its reservations hold there. */
                for (size_t j = 0; j < m->n_reservations; j++) {
                        Reservation *res = m->reservations[j];
                        if (res->page_size != p->page_size)
                                continue;
                        for (size_t k = 0; k < res->n_node_pages; k++)
                                if (res->node_pages[k].node == node)
                                        p->reserved += res->node_pages[k].pages;
                }
                pool_adopt(p, persistent);
                p->known = persistent;
                pool_log_adopted(p, " new node,");
                if (persistent < p->reserved)
                        log_warning("%s pages on node %" PRIu32 ": the pool holds %" PRIu64 " pages but reservations own %"
                                    PRIu64, ps, node, persistent, p->reserved);
                target = pool_kept(p);
                if (persistent < target && p->min_pages > persistent) {
                        log_info("%s pages on node %" PRIu32 ": setting the new pool to Floor %" PRIu64 " + Reserved %"
                                 PRIu64, ps, node, pool_floor(p), p->reserved);
                        r = pool_apply(p, target);
                        if (r >= 0 && pool_persistent(p) < target)
                                log_warning("%s pages on node %" PRIu32 ": only %" PRIu64 " of %" PRIu64
                                            " pages could be had", ps, node, pool_persistent(p), target);
                }
                p->known = pool_persistent(p);
                p->range_lo = p->range_hi = p->known;
        }
        for (size_t i = first; i < m->n_pools && m->on_pool_added; i++)
                m->on_pool_added(m, m->pools[i]);
        /* ListPools and the state file list pools by size, then node. */
        qsort(m->pools, m->n_pools, sizeof(Pool *), pool_ptr_cmp);
        return 0;

fail:
        for (size_t i = first; i < m->n_pools; i++)
                pool_free(m->pools[i]);
        m->n_pools = first;
        return r;
}

/* A reservation is degraded while any node it holds pages on has no pool. */
static void reservations_update_state(Manager *m) {
        for (size_t i = 0; i < m->n_reservations; i++) {
                Reservation *r = m->reservations[i];
                uint32_t lost = 0;
                bool degraded = false;

                for (size_t j = 0; j < r->n_node_pages && !degraded; j++)
                        if (!manager_find_pool(m, r->page_size, r->node_pages[j].node)) {
                                degraded = true;
                                lost = r->node_pages[j].node;
                        }
                if (degraded == r->degraded)
                        continue;
                r->degraded = degraded;
                if (degraded)
                        log_warning("reservation %s is degraded: node %" PRIu32 " has no memory now; the guest's pages "
                                    "there are not accounted until it returns", r->name, lost);
                else
                        log_notice("reservation %s is active again: all its nodes have memory", r->name);
                if (m->on_reservation_state_changed)
                        m->on_reservation_state_changed(m, r);
        }
}

int manager_update_topology(Manager *m) {
        _cleanup_free_ uint32_t *nodes = NULL;
        size_t n = 0, j = 0;
        bool changed = false;
        int r;

        r = kernel_list_memory_nodes(m->kernel, &nodes, &n);
        if (r < 0)
                return log_warning_errno(r, "cannot list the NUMA nodes with memory: %m");

        for (size_t i = 0; i < m->n_nodes; i++)
                if (!nodes_contain(nodes, n, m->nodes[i])) {
                        log_info("node %" PRIu32 " has no memory now, removing its pools", m->nodes[i]);
                        manager_remove_node_pools(m, m->nodes[i]);
                        changed = true;
                }

        /* Keep only the nodes whose pools exist; one that fails is tried again on the next event. */
        for (size_t i = 0; i < n; i++) {
                if (!manager_has_node(m, nodes[i])) {
                        log_info("node %" PRIu32 " has memory now, adding its pools", nodes[i]);
                        if (manager_add_node_pools(m, nodes[i]) < 0)
                                continue;
                        changed = true;
                }
                nodes[j++] = nodes[i];
        }
        n = j;

        if (changed) {
                free(m->nodes);
                m->nodes = TAKE_PTR(nodes);
                m->n_nodes = n;
                if (m->on_nodes_changed)
                        m->on_nodes_changed(m);
                reservations_update_state(m);
                pools_settle_ranges(m);
                r = state_save(m);
                if (r < 0)
                        log_warning_errno(r, "cannot write the state file after a topology change: %m");
        }
        return manager_refresh(m);
}

/* ---- life cycle -------------------------------------------------------------------------------------- */

int manager_new(sd_event *event, const char *root, const char *state_dir, Manager **ret) {
        Manager *m = calloc(1, sizeof(*m));
        int r;

        if (!m)
                return -ENOMEM;
        config_init(&m->config);
        m->event = sd_event_ref(event);
        m->job_efd = -EBADF;
        r = manager_setup_jobs(m);
        if (r < 0)
                goto fail;
        r = kernel_new(root, &m->kernel);
        if (r < 0)
                goto fail;
        m->state_dir = strdup(state_dir);
        if (!m->state_dir || asprintf(&m->state_path, "%s/state", state_dir) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        *ret = m;
        return 0;
fail:
        manager_free(m);
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        if (m->jobs_lock)
                manager_drain_jobs(m);
        if (m->flush_signals)
                m->flush_signals(m);
        sd_event_source_disable_unref(m->emit_pools_source);
        sd_event_source_disable_unref(m->job_source);
        safe_close(m->job_efd);
        if (m->jobs_lock) {
                pthread_mutex_destroy(m->jobs_lock);
                free(m->jobs_lock);
        }
        for (size_t i = 0; i < m->n_reservations; i++)
                reservation_free(m->reservations[i]);
        free(m->reservations);
        for (size_t i = 0; i < m->n_pools; i++)
                pool_free(m->pools[i]);
        free(m->pools);
        for (size_t i = 0; i < m->n_page_sizes && m->totals; i++)
                free(m->totals[i].path);
        free(m->totals);
        free(m->page_sizes);
        free(m->nodes);
        sd_event_source_disable_unref(m->refresh_timer);
        kernel_free(m->kernel);
        config_done(&m->config);
        free(m->state_dir);
        free(m->state_path);
        for (size_t i = 0; i < ELEMENTSOF(m->sender_uids); i++)
                free(m->sender_uids[i].name);
        sd_bus_flush_close_unref(m->bus);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
