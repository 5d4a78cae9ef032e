/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's start-up and life cycle: discovery of the pools, restoring the state file and reconciling it with
 * the kernel; and the observer calls that tell the bus layer what changed. Requests that touch the kernel go
 * through the job queue (job-queue.c): each pool is a FIFO queue, pools proceed in parallel in worker threads. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "hold.h"
#include "job-queue.h"
#include "state.h"
#include "util.h"

void manager_pools_changed(Manager *m) {
        manager_notify(m, pools_changed);
}

static int manager_discover(Manager *m) {
        char ps[FORMAT_SIZE_MAX];
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
                                return log_error_errno(r, "cannot read %s pages on node %" PRIu32 ": %m",
                                                       page_size_str(ps, p->page_size), p->node);
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
                if (!m->observer || !m->observer->caller_alive ||
                    !m->observer->caller_alive(m->observer_userdata, r->caller)) {
                        log_info("releasing reservation %s: its caller %s left the bus", r->name, r->caller);
                        return false;
                }
        }
        return true;
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
                Reservation *res;
                bool ok;

                r = reservation_from_record(m, state.reservations[i], &res);
                if (r < 0)
                        return log_error_errno(r, "cannot restore reservation %s: %m", state.reservations[i]->name);
                ok = manager_has_page_size(m, res->page_size);
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
                if (manager_link_reservation(m, res) < 0) {
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
        /* After the pools: a hold made again takes pages the pools now have. */
        manager_reconcile_holds(m);

        r = manager_save_state(m);
        if (r < 0)
                return r;
        log_info("%zu page sizes, %zu nodes, %zu reservations restored", m->n_page_sizes, m->n_nodes,
                 m->n_reservations);
        return 0;
}

/* The file is written from records that borrow the pools' and the reservations' data: no copies. */
int manager_save_state(Manager *m) {
        _cleanup_free_ StatePool *pools = calloc(m->n_pools + 1, sizeof(StatePool));
        _cleanup_free_ StateReservation *records = calloc(m->n_reservations + 1, sizeof(StateReservation));
        _cleanup_free_ StateReservation **reservations = calloc(m->n_reservations + 1, sizeof(StateReservation *));

        if (!pools || !records || !reservations)
                return log_error_errno(ENOMEM, "cannot write state file %s: %m", m->state_path);
        for (size_t i = 0; i < m->n_pools; i++) {
                const Pool *p = m->pools[i];
                pools[i] = (StatePool) {
                        .page_size = p->page_size,
                        .node = p->node,
                        .floor_adopted = p->floor_adopted,
                        .spare_adopted = p->spare_adopted,
                        .range_lo = p->range_lo,
                        .range_hi = p->range_hi,
                };
        }
        for (size_t i = 0; i < m->n_reservations; i++) {
                reservation_to_record(m->reservations[i], &records[i]);
                reservations[i] = &records[i];
        }
        return state_save(m->state_dir, m->state_path, &(const State) {
                .pools = pools,
                .n_pools = m->n_pools,
                .reservations = reservations,
                .n_reservations = m->n_reservations,
        });
}

void manager_set_hold_ops(Manager *m, const HoldOps *ops) {
        m->hold_ops = ops;
}

void manager_set_observer(Manager *m, const ManagerObserver *o, void *userdata) {
        m->observer = o;
        m->observer_userdata = userdata;
}

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
        /* On a fake kernel a real hugetlbfs mount could not reserve the fake pages. */
        m->hold_ops = root && root[0] ? &hold_ops_simulated : &hold_ops_kernel;
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
        manager_notify(m, flush);
        manager_done_jobs(m);
        for (size_t i = 0; i < m->n_reservations; i++)
                reservation_free(m->reservations[i]);
        free(m->reservations);
        for (size_t i = 0; i < m->n_pools; i++)
                pool_free(m->pools[i]);
        free(m->pools);
        free(m->page_sizes);
        free(m->nodes);
        sd_event_source_disable_unref(m->refresh_timer);
        kernel_free(m->kernel);
        config_done(&m->config);
        free(m->state_dir);
        free(m->state_path);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
