/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pools: one per (page size, node), their kernel counts, and adoption: the pages found in a pool are Floor
 * (Adopt=floor) or hugepaged's spare pages (Adopt=spare). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"
#include "manager-internal.h"
#include "util.h"

Pool *pool_free(Pool *p) {
        if (!p)
                return NULL;
        sd_event_source_disable_unref(p->shrink_timer);
        free(p);
        return NULL;
}

int pool_new(Manager *m, uint64_t page_size, uint32_t node, Pool **ret) {
        Pool *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        *p = (Pool) { .manager = m, .page_size = page_size, .node = node, .max_pages = UINT64_MAX };
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

int pool_read(Pool *p) {
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
void pool_adopt(Pool *p, uint64_t count) {
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
void pool_adopt_outside_change(Pool *p, const char *when) {
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

int pool_refresh(Pool *p) {
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
        char ps[FORMAT_SIZE_MAX];
        int ret = 0;

        /* While a worker writes to the kernel, a read of another pool may wait behind it (sysfs files of one
         * page size share the hugetlb lock; the fake kernel serialises everything): the next tick refreshes. */
        if (m->n_running > 0)
                return 0;
        for (size_t i = 0; i < m->n_pools; i++) {
                int r = pool_refresh(m->pools[i]);
                if (r < 0 && ret == 0)
                        ret = log_warning_errno(r, "cannot read %s pages on node %" PRIu32 ": %m",
                                                page_size_str(ps, m->pools[i]->page_size), m->pools[i]->node);
        }
        manager_pools_changed(m);
        return ret;
}

uint64_t pool_spare(const Pool *p) {
        uint64_t used = pool_floor(p) + p->reserved;
        uint64_t persistent = pool_persistent(p);
        return persistent > used ? persistent - used : 0;
}

void pools_settle_ranges(Manager *m) {
        for (size_t i = 0; i < m->n_pools; i++)
                if (!m->pools[i]->busy) /* its job's range must stay on disk until the job is done */
                        m->pools[i]->range_lo = m->pools[i]->range_hi = m->pools[i]->known;
}

void pool_log_adopted(const Pool *p, const char *what) {
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
void pool_convert_adopted(Pool *p) {
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
