/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reserve: validation, the loop part before the kernel (spare pages first, the intent on disk), and the
 * bookkeeping once the kernel part is done. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "hold.h"
#include "job-queue.h"
#include "util.h"

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
                j->req_node_bytes = newdup(req->node_bytes, req->n_node_bytes * sizeof(NodeAmount));
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
int reserve_prepare(Job *j) {
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
                uint64_t want = plan->exact ? plan->exact[i].amount : need;
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
                        j->pw[i].exact = plan->exact[i].amount;
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
                uint64_t want = plan->exact ? plan->exact[i].amount : plan->pages;
                p->range_hi = MAX(p->range_hi, MIN(pool_floor(p) + p->reserved + want, p->max_pages));
                p->range_hi = MAX(p->range_hi, j->pw[i].before);
        }
        k = manager_save_state(m);
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

void reserve_finish(Job *j) {
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
        if (!r->name)
                goto oom;
        if (req->lifetime == LIFETIME_CALLER && !(r->caller = strdup(req->caller)))
                goto oom;
        for (size_t i = 0; i < j->n_pw; i++) {
                uint64_t take = j->pw[i].spare + j->pw[i].got;
                if (take > 0) {
                        NodeAmount *t = realloc(r->node_pages, (r->n_node_pages + 1) * sizeof(*t));
                        if (!t)
                                goto oom;
                        r->node_pages = t;
                        t[r->n_node_pages++] = (NodeAmount) { j->pw[i].node, take };
                }
        }
        r->req_nodes = TAKE_PTR(plan->req_nodes);
        r->n_req_nodes = plan->n_req_nodes;
        if (plan->exact) {
                r->req_node_pages = malloc(plan->n_exact * sizeof(NodeAmount));
                if (!r->req_node_pages)
                        goto oom;
                memcpy(r->req_node_pages, plan->exact, plan->n_exact * sizeof(NodeAmount));
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
        if (req->hold) {
                /* The pages are in the pool now: the kernel reserves them for the mount, or refuses it. */
                r->held = true;
                k = reservation_hold(r);
                if (k < 0) {
                        manager_unlink_reservation(m, r);
                        reserve_rollback_sync(j);
                        if (k == -ENOMEM)
                                j->result = hp_error_set(&j->error, HP_ERROR_INSUFFICIENT_PAGES,
                                                         "the kernel cannot hold %" PRIu64 " %s pages for %s: they "
                                                         "are not all available (free, and not reserved by others)",
                                                         r->pages, ps, r->name);
                        else
                                j->result = hp_error_set(&j->error, HP_ERROR_FAILED, "cannot mount the hugetlbfs "
                                                         "instance that holds %s: %s", r->name, strerror(-k));
                        goto settle;
                }
        }
        reservation_account(m, r, true);
        pools_settle_ranges(m);

        /* The reply promises the reservation exists: it must be on disk first. */
        k = manager_save_state(m);
        if (k < 0) {
                reservation_account(m, r, false);
                if (r->held)
                        (void) reservation_unhold(r);
                manager_unlink_reservation(m, r);
                reserve_rollback_sync(j);
                j->result = hp_error_set(&j->error, HP_ERROR_FAILED, "cannot write the state file: %s", strerror(-k));
                goto settle;
        }

        log_info("reserved %s: %" PRIu64 " %s pages for uid %u, lifetime %s%s%s", r->name, r->pages, ps,
                 (unsigned) r->uid, lifetime_to_string(r->lifetime), r->held ? ", held at " : "",
                 r->held ? r->mount_path : "");
        manager_notify(m, reservation_added, r);
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
                (void) manager_save_state(m);
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

void sync_done(Manager *m, int r, Reservation *res, bool existed, const HpError *e, void *userdata) {
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
