/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.hugepaged1.Pool objects: /org/hugepaged1/pool/<size>kB for all nodes, .../<size>kB/node<N> for one. */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "util.h"

#define POOL_PATH_MAX (sizeof(BUS_POOL_PREFIX) + 64)

/* The path of a pool, or of a page size's totals (node -1). */
static char *pool_path(char buf[static POOL_PATH_MAX], uint64_t page_size, int64_t node) {
        if (node < 0)
                (void) snprintf(buf, POOL_PATH_MAX, BUS_POOL_PREFIX "/%" PRIu64 "kB", page_size / 1024);
        else
                (void) snprintf(buf, POOL_PATH_MAX, BUS_POOL_PREFIX "/%" PRIu64 "kB/node%" PRIu32, page_size / 1024,
                                (uint32_t) node);
        return buf;
}

/* Resolves a pool path. *ret_node is -1 for the all-node totals. */
static int pool_path_parse(Manager *m, const char *path, uint64_t *ret_size, int64_t *ret_node) {
        const char *p;
        char *end;
        unsigned long long kb, node;

        if (!strneq(path, BUS_POOL_PREFIX "/", strlen(BUS_POOL_PREFIX "/")))
                return 0;
        p = path + strlen(BUS_POOL_PREFIX "/");
        if (!(*p >= '1' && *p <= '9'))
                return 0;
        errno = 0;
        kb = strtoull(p, &end, 10);
        if (errno != 0 || !strneq(end, "kB", 2) || kb > UINT64_MAX / 1024)
                return 0;
        if (!manager_has_page_size(m, (uint64_t) kb * 1024))
                return 0;
        end += 2;
        if (*end == '\0') {
                *ret_size = kb * 1024;
                *ret_node = -1;
                return 1;
        }
        if (!strneq(end, "/node", 5) || !(end[5] >= '0' && end[5] <= '9') || (end[5] == '0' && end[6] != '\0'))
                return 0;
        p = end + 5;
        node = strtoull(p, &end, 10);
        if (*end != '\0' || node >= NODE_MAX || !manager_find_pool(m, kb * 1024, (uint32_t) node))
                return 0;
        *ret_size = kb * 1024;
        *ret_node = (int64_t) node;
        return 1;
}

int bus_pool_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                  sd_bus_error *error) {
        BusContext *c = userdata;
        uint64_t size;
        int64_t node;

        if (pool_path_parse(c->manager, path, &size, &node) <= 0)
                return 0;
        *ret_found = c;
        return 1;
}

int bus_pool_enumerate(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes, sd_bus_error *error) {
        BusContext *c = userdata;
        Manager *m = c->manager;
        size_t n = m->n_page_sizes + m->n_pools, k = 0;
        char **l = calloc(n + 1, sizeof(char *)), buf[POOL_PATH_MAX];

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_page_sizes; i++)
                if (!(l[k++] = strdup(pool_path(buf, m->page_sizes[i], -1))))
                        goto oom;
        for (size_t i = 0; i < m->n_pools; i++)
                if (!(l[k++] = strdup(pool_path(buf, m->pools[i]->page_size, m->pools[i]->node))))
                        goto oom;
        *ret_nodes = l;
        return 0;
oom:
        strv_free(l);
        return -ENOMEM;
}

/* The pool properties that change, in the order they are signalled. */
static const struct {
        const char *name;
        size_t offset;
} pool_fields[] = {
        { "Total", offsetof(PoolValues, total) },
        { "Free", offsetof(PoolValues, free) },
        { "Surplus", offsetof(PoolValues, surplus) },
        { "Reserved", offsetof(PoolValues, reserved) },
        { "Floor", offsetof(PoolValues, floor) },
        { "AdoptedSpare", offsetof(PoolValues, adopted_spare) },
};

static uint64_t pool_field(const PoolValues *v, size_t i) {
        return *(const uint64_t *) ((const uint8_t *) v + pool_fields[i].offset);
}

static int pool_values(Manager *m, const char *path, uint64_t *ret_size, int64_t *ret_node, PoolValues *ret) {
        uint64_t size;
        int64_t node;

        if (pool_path_parse(m, path, &size, &node) <= 0)
                return -ENOENT;
        if (node < 0)
                manager_page_size_totals(m, size, ret);
        else
                pool_get_values(manager_find_pool(m, size, (uint32_t) node), ret);
        *ret_size = size;
        *ret_node = node;
        return 0;
}

static int property_get_pool(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusContext *c = userdata;
        PoolValues v;
        uint64_t size;
        int64_t node;
        int r;

        r = pool_values(c->manager, path, &size, &node, &v);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "no pool at %s", path);
        if (streq(property, "PageSize"))
                return sd_bus_message_append(reply, "t", size);
        if (streq(property, "Node"))
                return sd_bus_message_append(reply, "i", (int32_t) node);
        for (size_t i = 0; i < ELEMENTSOF(pool_fields); i++)
                if (streq(property, pool_fields[i].name))
                        return sd_bus_message_append(reply, "t", pool_field(&v, i));
        return -EINVAL;
}

const sd_bus_vtable pool_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("PageSize", "t", property_get_pool, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Node", "i", property_get_pool, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Total", "t", property_get_pool, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Free", "t", property_get_pool, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Surplus", "t", property_get_pool, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Reserved", "t", property_get_pool, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Floor", "t", property_get_pool, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("AdoptedSpare", "t", property_get_pool, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};

/* What was last said for a pool object; NULL when out of memory (then every look is a first look). */
static BusPoolEmitted *emitted_get(BusContext *c, uint64_t page_size, int64_t node) {
        BusPoolEmitted *t;

        for (size_t i = 0; i < c->n_emitted; i++)
                if (c->emitted[i].page_size == page_size && c->emitted[i].node == node)
                        return &c->emitted[i];
        t = realloc(c->emitted, (c->n_emitted + 1) * sizeof(*t));
        if (!t)
                return NULL;
        c->emitted = t;
        t[c->n_emitted] = (BusPoolEmitted) { .page_size = page_size, .node = node };
        return &t[c->n_emitted++];
}

/* A pool that goes away takes what was said with it: if it comes back, its first look is a baseline again. */
static void emitted_forget(BusContext *c, uint64_t page_size, int64_t node) {
        for (size_t i = 0; i < c->n_emitted; i++)
                if (c->emitted[i].page_size == page_size && c->emitted[i].node == node) {
                        c->emitted[i] = c->emitted[--c->n_emitted];
                        return;
                }
}

/* Emits PropertiesChanged naming only the values that differ from what was last said. */
static void emit_changed(BusContext *c, uint64_t page_size, int64_t node, const PoolValues *now) {
        char *changed[ELEMENTSOF(pool_fields) + 1], path[POOL_PATH_MAX];
        BusPoolEmitted *last = emitted_get(c, page_size, node);
        size_t n = 0;

        if (!last)
                return;
        for (size_t i = 0; i < ELEMENTSOF(pool_fields); i++)
                if (!last->valid || pool_field(now, i) != pool_field(&last->values, i))
                        changed[n++] = (char *) pool_fields[i].name;
        changed[n] = NULL;
        last->values = *now;
        /* The first look only sets the baseline: nobody has been told anything yet. */
        if (!last->valid) {
                last->valid = true;
                return;
        }
        if (n == 0 || !c->bus)
                return;
        int r = sd_bus_emit_properties_changed_strv(c->bus, pool_path(path, page_size, node), HP_BUS_IFACE_POOL,
                                                    changed);
        if (r < 0)
                log_debug_errno(r, "cannot emit PropertiesChanged for %s: %m", path);
}

static void emit_pools_changed_now(BusContext *c) {
        Manager *m = c->manager;

        for (size_t i = 0; i < m->n_pools; i++) {
                Pool *p = m->pools[i];
                PoolValues now;
                pool_get_values(p, &now);
                emit_changed(c, p->page_size, p->node, &now);
        }
        for (size_t i = 0; i < m->n_page_sizes; i++) {
                PoolValues now;
                manager_page_size_totals(m, m->page_sizes[i], &now);
                emit_changed(c, m->page_sizes[i], -1, &now);
        }

        uint64_t rb = manager_reserved_bytes(m);
        if (rb != c->emitted_reserved_bytes && c->bus) {
                c->emitted_reserved_bytes = rb;
                (void) sd_bus_emit_properties_changed(c->bus, BUS_PATH, HP_BUS_IFACE_MANAGER, "ReservedBytes",
                                                      NULL);
        }
}
/* At most one set of pool signals per this interval: a burst of calls (16 clients cycling Reserve and
 * Release) would otherwise send three PropertiesChanged per call, twice the messages of the calls themselves. */
#define EMIT_POOLS_INTERVAL_USEC UINT64_C(10000) /* 10 ms */

static int on_emit_pools_changed(sd_event_source *s, uint64_t usec, void *userdata) {
        BusContext *c = userdata;

        emit_pools_changed_now(c);
        if (sd_event_now(c->manager->event, CLOCK_MONOTONIC, &c->emitted_pools_usec) < 0)
                c->emitted_pools_usec = usec;
        return 0;
}

/* Called after every change to the pools. The signals go out on a later turn of the loop: the reply to the call
 * that made the change leaves first (the caller waits for it, not for them). A change after a quiet spell is
 * signalled on the next turn; changes within EMIT_POOLS_INTERVAL_USEC of the last signals wait for the end of
 * it, so a burst of calls costs one PropertiesChanged per pool that changed per interval, naming the final
 * values, not one per call. */
void bus_emit_pools_changed(BusContext *c) {
        int enabled = SD_EVENT_OFF, r;
        uint64_t at;

        if (!c->bus)
                return;
        if (c->emit_pools_source && sd_event_source_get_enabled(c->emit_pools_source, &enabled) >= 0 &&
            enabled != SD_EVENT_OFF)
                return; /* already due */
        at = c->emitted_pools_usec > 0 ? c->emitted_pools_usec + EMIT_POOLS_INTERVAL_USEC : 0; /* past: next turn */
        if (!c->emit_pools_source) {
                /* accuracy 1 µs: sd-event's default (0) would let the timer slip by up to 250 ms */
                r = sd_event_add_time(c->manager->event, &c->emit_pools_source, CLOCK_MONOTONIC, at, 1, on_emit_pools_changed,
                                      c);
                if (r < 0) {
                        emit_pools_changed_now(c);
                        return;
                }
                (void) sd_event_source_set_description(c->emit_pools_source, "emit-pools-changed");
        } else {
                r = sd_event_source_set_time(c->emit_pools_source, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->emit_pools_source, SD_EVENT_ONESHOT);
                if (r < 0)
                        emit_pools_changed_now(c);
        }
}

void bus_flush_pools_changed(BusContext *c) {
        int enabled = SD_EVENT_OFF;

        if (!c->emit_pools_source)
                return;
        if (sd_event_source_get_enabled(c->emit_pools_source, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                emit_pools_changed_now(c);
        c->emit_pools_source = sd_event_source_disable_unref(c->emit_pools_source);
}

void bus_pool_emit_added(BusContext *c, Pool *p) {
        char path[POOL_PATH_MAX];
        int k;
        if (!c->bus)
                return;
        k = sd_bus_emit_object_added(c->bus, pool_path(path, p->page_size, p->node));
        if (k < 0)
                log_debug_errno(k, "cannot emit InterfacesAdded for %s: %m", path);
}

void bus_pool_emit_removed(BusContext *c, Pool *p) {
        char path[POOL_PATH_MAX];
        int k;

        emitted_forget(c, p->page_size, p->node);
        if (!c->bus)
                return;
        k = sd_bus_emit_object_removed(c->bus, pool_path(path, p->page_size, p->node));
        if (k < 0)
                log_debug_errno(k, "cannot emit InterfacesRemoved for %s: %m", path);
}
