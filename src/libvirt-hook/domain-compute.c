/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* From a parsed domain to the reservations it needs: guest cells, memory devices and <maxMemory>'s hot-plug room,
 * each rounded up to whole pages, grouped by page size and host placement. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain-internal.h"

/* ---- from cells to reservations -------------------------------------------------------------------- */

void page_size_suffix(char buf[static 24], uint64_t page_size) {
        static const char units[] = "KMGTPE";
        uint64_t v = page_size;
        int i = -1;

        while (v >= 1024 && v % 1024 == 0 && i + 1 < (int) sizeof(units) - 1) {
                v /= 1024;
                i++;
        }
        if (i < 0)
                snprintf(buf, 24, "%" PRIu64 "B", v);
        else
                snprintf(buf, 24, "%" PRIu64 "%c", v, units[i]);
}

static void hook_reservation_done(HookReservation *r) {
        free(r->nodes);
        free(r->node_pages);
}

DomainNeeds *domain_needs_free(DomainNeeds *n) {
        if (!n)
                return NULL;
        for (size_t i = 0; i < n->n_reservations; i++)
                hook_reservation_done(&n->reservations[i]);
        free(n->reservations);
        free(n);
        return NULL;
}

static void domain_needs_freep(DomainNeeds **n) {
        domain_needs_free(*n);
}

static int add_pages(uint64_t *sum, uint64_t pages, uint64_t page_size, DomainError *e) {
        if (pages > UINT64_MAX - *sum || *sum + pages > UINT64_MAX / page_size)
                return domain_error(e, -ERANGE, "the guest needs more than 2^64 bytes of %" PRIu64 "-byte pages", page_size);
        *sum += pages;
        return 0;
}

static HookReservation *needs_append(DomainNeeds *n) {
        HookReservation *t = realloc(n->reservations, (n->n_reservations + 1) * sizeof(*t));
        if (!t)
                return NULL;
        n->reservations = t;
        t = &t[n->n_reservations++];
        *t = (HookReservation) {};
        return t;
}

static bool cell_is_exact(const DomainCell *c) {
        return c->mode == NUMA_MODE_STRICT && c->n_host_nodes == 1;
}

static bool cell_is_any(const DomainCell *c) {
        return c->mode == NUMA_MODE_NONE || c->mode == NUMA_MODE_PREFERRED;
}

static bool same_nodes(const DomainCell *a, const DomainCell *b) {
        return a->n_host_nodes == b->n_host_nodes &&
               (a->n_host_nodes == 0 || memcmp(a->host_nodes, b->host_nodes, a->n_host_nodes * sizeof(uint32_t)) == 0);
}

static uint64_t effective_page_size(const DomainCell *c, uint64_t default_page_size, uint64_t base_page_size) {
        uint64_t ps = c->page_size == 0 ? default_page_size : c->page_size;
        return c->page_size == DOMAIN_PAGE_NONE || ps == base_page_size ? 0 : ps;
}

/* The room <maxMemory> leaves: memory attached later runs no hook, so it is held from the start. A device attached
 * without <source><pagesize> gets its target cell's page size, so the room takes the page size all the cells
 * share, on any host node one of them may use. Cells of ordinary memory leave ordinary room; cells that differ
 * leave no way to tell, which is an error rather than a guess. ret->bytes stays 0 when nothing is to be held. */
static int hotplug_unit(const DomainDef *d, uint64_t default_page_size, uint64_t base_page_size, DomainCell *ret,
                        DomainError *e) {
        const DomainCell *first = &d->cells[0];
        uint64_t ps = effective_page_size(first, default_page_size, base_page_size);
        bool same_placement = true, any = cell_is_any(first);
        _cleanup_free_ uint8_t *set = NULL;

        *ret = (DomainCell) { .model = MEMORY_MODEL_HOTPLUG };
        if (d->hotplug_bytes == 0)
                return 0;
        for (size_t i = 1; i < d->n_cells; i++) {
                const DomainCell *c = &d->cells[i];
                if (effective_page_size(c, default_page_size, base_page_size) != ps) {
                        char a[24], b[24];
                        page_size_suffix(a, ps ? ps : base_page_size);
                        uint64_t other = effective_page_size(c, default_page_size, base_page_size);
                        page_size_suffix(b, other ? other : base_page_size);
                        return domain_error(e, -EINVAL, "<maxMemory> leaves %" PRIu64 " KiB for memory attached later, "
                                            "but guest NUMA cells %" PRIu32 " (%s pages) and %" PRIu32 " (%s pages) "
                                            "differ, so its page size is unknown; give the cells one page size or "
                                            "lower <maxMemory> to the memory the guest starts with",
                                            d->hotplug_bytes >> 10, first->id, a, c->id, b);
                }
                same_placement = same_placement && c->mode == first->mode && same_nodes(c, first);
                any = any || cell_is_any(c);
        }
        if (ps == 0)
                return 0;
        ret->page_size = ps;
        ret->bytes = d->hotplug_bytes;
        if (same_placement || any) {
                ret->mode = any ? NUMA_MODE_NONE : first->mode;
                if (any)
                        return 0;
                ret->host_nodes = malloc(first->n_host_nodes * sizeof(uint32_t));
                if (!ret->host_nodes)
                        return -ENOMEM;
                memcpy(ret->host_nodes, first->host_nodes, first->n_host_nodes * sizeof(uint32_t));
                ret->n_host_nodes = first->n_host_nodes;
                return 0;
        }
        /* Different nodes per cell: any of them. */
        set = calloc(DOMAIN_HOST_NODES_MAX, 1);
        if (!set)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_cells; i++)
                for (size_t j = 0; j < d->cells[i].n_host_nodes; j++)
                        set[d->cells[i].host_nodes[j]] = 1;
        ret->mode = NUMA_MODE_INTERLEAVE;
        ret->host_nodes = malloc(DOMAIN_HOST_NODES_MAX * sizeof(uint32_t));
        if (!ret->host_nodes)
                return -ENOMEM;
        for (uint32_t n = 0; n < DOMAIN_HOST_NODES_MAX; n++)
                if (set[n])
                        ret->host_nodes[ret->n_host_nodes++] = n;
        return 0;
}

/* Placement per cell (and per device, placed like its target cell): strict on one node -> exact pages there; strict
 * on several, interleave, restrictive -> any of those nodes; preferred, placement='auto' or no numatune -> any node
 * (the kernel may fall back to any). Devices and hot-plug room join the reservation of their page size and
 * placement. */
int domain_compute(const DomainDef *d, uint64_t default_page_size, uint64_t base_page_size, DomainNeeds **ret,
                   DomainError *e) {
        _cleanup_(domain_needs_freep) DomainNeeds *needs = NULL;
        _cleanup_free_ uint64_t *sizes = NULL;
        _cleanup_free_ uint64_t *cell_pages = NULL;
        _cleanup_free_ uint64_t *cell_size = NULL;
        _cleanup_free_ const DomainCell **units = NULL;
        _cleanup_free_ uint32_t *hotplug_nodes = NULL;
        DomainCell hotplug;
        size_t n_sizes = 0, n_units = 0;
        int r;

        needs = calloc(1, sizeof(*needs));
        if (!needs)
                return -ENOMEM;
        if (!d->hugepages) {
                *ret = TAKE_PTR(needs);
                return 0;
        }
        if (d->uses_default && (default_page_size == 0 || (default_page_size & (default_page_size - 1)) != 0))
                return domain_error(e, -EINVAL, "the host's default huge page size is unknown");

        r = hotplug_unit(d, default_page_size, base_page_size, &hotplug, e);
        if (r < 0)
                return r;
        hotplug_nodes = hotplug.host_nodes;
        units = calloc(d->n_cells + d->n_devices + 1, sizeof(DomainCell *));
        if (!units)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_cells; i++)
                units[n_units++] = &d->cells[i];
        for (size_t i = 0; i < d->n_devices; i++)
                units[n_units++] = &d->devices[i];
        if (hotplug.bytes > 0)
                units[n_units++] = &hotplug;

        sizes = calloc(n_units, sizeof(uint64_t));
        cell_pages = calloc(n_units, sizeof(uint64_t));
        cell_size = calloc(n_units, sizeof(uint64_t));
        if (!sizes || !cell_pages || !cell_size)
                return -ENOMEM;

        for (size_t i = 0; i < n_units; i++) {
                const DomainCell *c = units[i];
                uint64_t ps = effective_page_size(c, default_page_size, base_page_size);
                bool known = false;
                char what[64];

                if (ps == 0)
                        continue; /* ordinary memory */
                if (c->bytes == 0)
                        return domain_error(e, -EINVAL, "%s has no memory", domain_cell_what(what, c));
                cell_size[i] = ps;
                cell_pages[i] = c->bytes / ps + (c->bytes % ps != 0);
                for (size_t j = 0; j < n_sizes; j++)
                        known = known || sizes[j] == ps;
                if (!known)
                        sizes[n_sizes++] = ps;
        }
        /* Ascending page sizes; a handful at most. */
        for (size_t i = 1; i < n_sizes; i++)
                for (size_t j = i; j > 0 && sizes[j - 1] > sizes[j]; j--) {
                        uint64_t t = sizes[j];
                        sizes[j] = sizes[j - 1];
                        sizes[j - 1] = t;
                }

        for (size_t s = 0; s < n_sizes; s++) {
                uint64_t ps = sizes[s];
                size_t first = needs->n_reservations;
                HookReservation *res;
                _cleanup_free_ uint8_t *done = calloc(n_units, 1);

                if (!done)
                        return -ENOMEM;

                /* Exact: every strict single-node cell, summed per node. */
                for (size_t i = 0; i < n_units; i++) {
                        const DomainCell *c = units[i];
                        size_t k;
                        if (cell_size[i] != ps || !cell_is_exact(c))
                                continue;
                        if (needs->n_reservations == first || needs->reservations[first].kind != PLACEMENT_EXACT) {
                                if (!(res = needs_append(needs)))
                                        return -ENOMEM;
                                *res = (HookReservation) { .page_size = ps, .kind = PLACEMENT_EXACT };
                        }
                        res = &needs->reservations[first];
                        for (k = 0; k < res->n_node_pages && res->node_pages[k].node != c->host_nodes[0]; k++)
                                ;
                        if (k == res->n_node_pages) {
                                NodeAmount *t = realloc(res->node_pages, (k + 1) * sizeof(*t));
                                if (!t)
                                        return -ENOMEM;
                                res->node_pages = t;
                                /* Insertion keeps them ascending. */
                                while (k > 0 && t[k - 1].node > c->host_nodes[0]) {
                                        t[k] = t[k - 1];
                                        k--;
                                }
                                t[k] = (NodeAmount) { c->host_nodes[0], 0 };
                                res->n_node_pages++;
                        }
                        r = add_pages(&res->node_pages[k].amount, cell_pages[i], ps, e);
                        if (r < 0)
                                return r;
                        r = add_pages(&res->pages, cell_pages[i], ps, e);
                        if (r < 0)
                                return r;
                        done[i] = 1;
                }

                /* Node lists: cells with the same host nodes share a reservation, in the order they come. */
                for (size_t i = 0; i < n_units; i++) {
                        const DomainCell *c = units[i];
                        if (cell_size[i] != ps || done[i] || cell_is_exact(c) || cell_is_any(c))
                                continue;
                        if (!(res = needs_append(needs)))
                                return -ENOMEM;
                        res->page_size = ps;
                        res->kind = PLACEMENT_NODES;
                        res->nodes = malloc(c->n_host_nodes * sizeof(uint32_t));
                        if (!res->nodes)
                                return -ENOMEM;
                        memcpy(res->nodes, c->host_nodes, c->n_host_nodes * sizeof(uint32_t));
                        res->n_nodes = c->n_host_nodes;
                        for (size_t j = i; j < n_units; j++)
                                if (cell_size[j] == ps && !done[j] && !cell_is_exact(units[j]) &&
                                    !cell_is_any(units[j]) && same_nodes(c, units[j])) {
                                        r = add_pages(&res->pages, cell_pages[j], ps, e);
                                        if (r < 0)
                                                return r;
                                        done[j] = 1;
                                }
                }

                /* Anywhere. */
                for (size_t i = 0; i < n_units; i++) {
                        if (cell_size[i] != ps || done[i])
                                continue;
                        if (needs->n_reservations == first || needs->reservations[needs->n_reservations - 1].kind != PLACEMENT_ANY) {
                                if (!(res = needs_append(needs)))
                                        return -ENOMEM;
                                *res = (HookReservation) { .page_size = ps, .kind = PLACEMENT_ANY };
                        }
                        res = &needs->reservations[needs->n_reservations - 1];
                        r = add_pages(&res->pages, cell_pages[i], ps, e);
                        if (r < 0)
                                return r;
                        done[i] = 1;
                }

                /* Names: the domain's UUID for the first of all, "UUID:<size>" for the first of another size,
                 * "UUID:<size>.<n>" for the n-th more of one size. */
                for (size_t i = first; i < needs->n_reservations; i++) {
                        char suffix[24];
                        page_size_suffix(suffix, ps);
                        if (i == 0)
                                snprintf(needs->reservations[i].name, sizeof(needs->reservations[i].name), "%s", d->uuid);
                        else if (i == first)
                                snprintf(needs->reservations[i].name, sizeof(needs->reservations[i].name), "%s:%s",
                                         d->uuid, suffix);
                        else
                                snprintf(needs->reservations[i].name, sizeof(needs->reservations[i].name), "%s:%s.%zu",
                                         d->uuid, suffix, i - first);
                }
        }
        *ret = TAKE_PTR(needs);
        return 0;
}

char *domain_needs_format(const DomainNeeds *n) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                return NULL;
        if (n->n_reservations == 0)
                fputs("no huge pages\n", f);
        for (size_t i = 0; i < n->n_reservations; i++) {
                const HookReservation *r = &n->reservations[i];
                fprintf(f, "%s page_size=%" PRIu64 " pages=%" PRIu64 " ", r->name, r->page_size, r->pages);
                if (r->kind == PLACEMENT_ANY)
                        fputs("any", f);
                else if (r->kind == PLACEMENT_NODES) {
                        fputs("nodes=", f);
                        for (size_t j = 0; j < r->n_nodes; j++)
                                fprintf(f, "%s%" PRIu32, j ? "," : "", r->nodes[j]);
                } else {
                        fputs("node_pages=", f);
                        for (size_t j = 0; j < r->n_node_pages; j++)
                                fprintf(f, "%s%" PRIu32 ":%" PRIu64, j ? "," : "", r->node_pages[j].node,
                                        r->node_pages[j].amount);
                }
                fputc('\n', f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
