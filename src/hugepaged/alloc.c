/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The allocation strategy: writes to nr_hugepages, retried after compaction and dropping clean page cache, and
 * the kernel parts of the jobs (grow, roll back, shrink), which run in worker threads. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "job-queue.h"
#include "util.h"

AllocParams alloc_params(Manager *m, bool on_loop) {
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
static int alloc_apply(const AllocParams *ap, uint64_t page_size, uint32_t node, uint64_t target,
                       NodeCounts *counts, AllocStats *stats) {
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

void manager_stats_add(Manager *m, const AllocStats *s) {
        if (s->pages_first_write == 0 && s->pages_after_compaction == 0 && s->pages_after_drop_caches == 0 &&
            s->retries == 0)
                return;
        m->stats.pages_first_write += s->pages_first_write;
        m->stats.pages_after_compaction += s->pages_after_compaction;
        m->stats.pages_after_drop_caches += s->pages_after_drop_caches;
        m->stats.retries += s->retries;
}

/* The synchronous form, on the loop thread: start-up, topology changes and the in-process API. */
int pool_apply(Pool *p, uint64_t target) {
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

/* The kernel part of a reserve: grow the pools in order, and put them all back if the request can't be met. */
void work_rollback(Job *j, size_t n) {
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

void work_reserve(Job *j) {
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

void work_shrink(Job *j) {
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
