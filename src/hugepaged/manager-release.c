/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Release, and shrinking: a released pool shrinks at once or after ShrinkDelaySec= (the warm pool's timers). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "hold.h"
#include "job-queue.h"
#include "util.h"

static int on_shrink_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* What a pool may shrink to now: never below Floor + Reserved + KeepFreePages, nor below the adopted spare pages
 * (Adopt=spare), which reservations take first. */
static uint64_t pool_shrink_target(const Pool *p) {
        return pool_floor(p) + MAX(p->reserved + p->keep_free, p->spare_adopted);
}

/* Spare pages stay for ShrinkDelaySec=: arm (or push back) the pool's timer. */
void pool_arm_shrink_timer(Pool *p) {
        Manager *m = p->manager;
        char ps[FORMAT_SIZE_MAX];
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
                log_warning("%s pages on node %" PRIu32 ": cannot arm the shrink timer, the spare pages stay",
                            page_size_str(ps, p->page_size), p->node);
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
        char ps[FORMAT_SIZE_MAX];
        Job *j = shrink_job_new(p->manager, p->page_size, &p->node, 1);
        if (!j)
                return log_error_errno(ENOMEM, "out of memory");
        log_debug("%s pages on node %" PRIu32 ": the spare pages' delay is over, shrinking",
                  page_size_str(ps, p->page_size), p->node);
        manager_enqueue_job(p->manager, j);
        return 0;
}

int shrink_prepare(Job *j) {
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
        k = manager_save_state(m);
        if (k < 0)
                return j->result = hp_error_set(&j->error, HP_ERROR_FAILED, "cannot write the state file: %s",
                                                strerror(-k));
        j->params = alloc_params(m, false);
        return 1;
}

void shrink_finish(Job *j) {
        Manager *m = j->manager;
        char ps[FORMAT_SIZE_MAX];

        for (size_t i = 0; i < j->n_pw; i++) {
                Pool *p = manager_find_pool(m, j->page_size, j->pw[i].node);
                if (p && j->pw[i].active && p->counts.surplus > 0)
                        log_info("%s pages on node %" PRIu32 ": %" PRIu64 " pages still in use stay as surplus until "
                                 "their user lets go", page_size_str(ps, p->page_size), p->node, p->counts.surplus);
        }
        pools_settle_ranges(m);
        (void) manager_save_state(m);
        manager_pools_changed(m);
        if (j->done)
                j->done(m, j->result < 0 ? j->result : 0, NULL, false, &j->error, j->userdata);
}

/* The loop part of a release: the reservation is gone, on disk, and freed before this returns. The nodes whose
 * pool should shrink now are returned; the others keep the pages as spare for their delay. */
static int release_bookkeeping(Manager *m, Reservation *r, uint64_t *ret_page_size, uint32_t **ret_nodes,
                               size_t *ret_n, HpError *error) {
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
        k = manager_save_state(m);
        if (k < 0) {
                /* Nothing changed yet: keep the reservation, and say so. */
                manager_link_reservation(m, r);
                reservation_account(m, r, true);
                pools_settle_ranges(m);
                return hp_error_set(error, HP_ERROR_FAILED, "cannot write the state file: %s", strerror(-k));
        }
        /* Gone from disk first: a crash now leaves a mount no reservation holds, which the next start removes. A
         * mount still in use is detached lazily and keeps its pages until its last user lets go; the shrink below
         * turns them surplus, so they go back to the kernel then, to nobody else before. */
        if (r->held) {
                k = reservation_unhold(r);
                if (k < 0)
                        log_error_errno(k, "released %s, but cannot unmount %s (the next start retries): %m", r->name,
                                        r->mount_path ?: "its mount");
        }
        for (size_t i = 0; i < r->n_node_pages; i++) {
                Pool *p = manager_find_pool(m, r->page_size, r->node_pages[i].node);
                if (p && p->shrink_delay_usec > 0)
                        pool_arm_shrink_timer(p);
        }

        log_info("released %s: %" PRIu64 " %s pages%s", r->name, r->pages, page_size_str(ps, r->page_size),
                 n < r->n_node_pages ? ", kept as spare for now" : "");
        manager_notify(m, reservation_removed, r);
        *ret_page_size = r->page_size;
        reservation_free(r);
        *ret_nodes = TAKE_PTR(nodes);
        *ret_n = n;
        return 0;
}

int manager_release_async(Manager *m, Reservation *r, ManagerDone done, void *userdata, HpError *error) {
        _cleanup_free_ uint32_t *nodes = NULL;
        uint64_t page_size;
        size_t n;
        Job *j;
        int k;

        k = release_bookkeeping(m, r, &page_size, &nodes, &n, error);
        if (k < 0)
                return k;
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
        uint64_t page_size;
        size_t n;
        Job *j;
        int k;

        k = release_bookkeeping(m, r, &page_size, &nodes, &n, error);
        if (k < 0)
                return k;
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
