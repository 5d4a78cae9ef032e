/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Topology: nodes that gain or lose memory get or lose their pools; reservations on a lost node turn degraded. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "manager-internal.h"
#include "util.h"

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
                manager_notify(m, pool_removed, p);
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
                        page_size_str(ps, p->page_size);
                        log_warning_errno(r, "node %" PRIu32 " has memory, but its %s pool cannot be read yet: %m",
                                          node, ps);
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
                                        p->reserved += res->node_pages[k].amount;
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
        for (size_t i = first; i < m->n_pools; i++)
                manager_notify(m, pool_added, m->pools[i]);
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
                manager_notify(m, reservation_state_changed, r);
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
                manager_notify(m, nodes_changed);
                reservations_update_state(m);
                pools_settle_ranges(m);
                r = manager_save_state(m);
                if (r < 0)
                        log_warning_errno(r, "cannot write the state file after a topology change: %m");
        }
        return manager_refresh(m);
}
