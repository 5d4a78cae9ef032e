/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A libvirt domain XML, read defensively, and the huge page reservations it needs: pages per page size and per
 * host node. No I/O and no D-Bus here, so the unit tests and the fuzzer run exactly what the hook runs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* libvirt hands the hook its whole domain XML; one far bigger than any real domain is refused unparsed. */
#define DOMAIN_XML_MAX (UINT64_C(4) << 20)
#define DOMAIN_CELLS_MAX 1024      /* guest NUMA cells */
#define DOMAIN_PAGES_MAX 64        /* <page> entries */
#define DOMAIN_HOST_NODES_MAX 1024 /* host node numbers 0..1023, as the daemon's NODE_MAX */
#define DOMAIN_MEMORY_DEVICES_MAX 256 /* <devices><memory> of any model */
#define DOMAIN_ERROR_MAX 256

typedef struct DomainError {
        char message[DOMAIN_ERROR_MAX];
} DomainError;

typedef enum NumaMode {
        NUMA_MODE_NONE,        /* no <numatune> for this cell, or placement='auto': any node */
        NUMA_MODE_STRICT,
        NUMA_MODE_PREFERRED,
        NUMA_MODE_INTERLEAVE,
        NUMA_MODE_RESTRICTIVE,
} NumaMode;

typedef enum MemoryModel {
        MEMORY_MODEL_CELL,       /* not a device: a guest NUMA cell */
        MEMORY_MODEL_DIMM,       /* <memory model='dimm'> */
        MEMORY_MODEL_VIRTIO_MEM, /* <memory model='virtio-mem'> */
        MEMORY_MODEL_HOTPLUG,    /* the room <maxMemory> leaves for memory attached later */
} MemoryModel;

/* A piece of guest memory with one page size and one host placement: a guest cell, or a memory device placed like
 * the guest cell it belongs to. */
typedef struct DomainCell {
        uint32_t id; /* the cell's id; for a device, its number among <devices><memory>, from 1 */
        MemoryModel model;
        uint64_t bytes;
        uint64_t page_size; /* 0: the host's default huge page size; DOMAIN_PAGE_NONE: ordinary memory */
        NumaMode mode;
        uint32_t *host_nodes; /* ascending; empty for NUMA_MODE_NONE */
        size_t n_host_nodes;
} DomainCell;

#define DOMAIN_PAGE_NONE UINT64_MAX

typedef struct DomainDef {
        char *name;
        char uuid[37];     /* lower case, 8-4-4-4-12 */
        int32_t id;        /* <domain id='N'> of a starting or running domain, -1 when absent */
        bool hugepages;    /* <memoryBacking><hugepages> is there, or a memory device has <source><pagesize> */
        bool uses_default; /* some cell needs the host's default page size (a bare <hugepages/>) */
        DomainCell *cells; /* the guest cells, or one cell 0 with <memory> when there is no <cpu><numa> */
        size_t n_cells;
        DomainCell *devices; /* dimm and virtio-mem devices with their full <target><size> */
        size_t n_devices;
        uint64_t hotplug_bytes; /* <maxMemory> beyond the cells and all memory devices: room for hot-plug */
} DomainDef;

typedef enum PlacementKind {
        PLACEMENT_ANY,   /* any node with memory */
        PLACEMENT_NODES, /* "nodes": any of these */
        PLACEMENT_EXACT, /* "node_bytes": exactly these pages on these nodes */
} PlacementKind;

typedef struct HookReservation {
        char name[128];
        uint64_t page_size;
        uint64_t pages;
        PlacementKind kind;
        uint32_t *nodes; /* PLACEMENT_NODES, ascending */
        size_t n_nodes;
        NodeAmount *node_pages; /* PLACEMENT_EXACT, pages, ascending by node */
        size_t n_node_pages;
} HookReservation;

typedef struct DomainNeeds {
        HookReservation *reservations; /* ordered as named: by page size, then exact, nodes, any */
        size_t n_reservations;
} DomainNeeds;

/* Parses the domain XML in buf[0..len). No network, no DTD, no entities: a DOCTYPE is refused. Returns 0, or a
 * negative errno with error->message set to one line for people. */
int domain_parse(const char *buf, size_t len, DomainDef **ret, DomainError *error);
DomainDef *domain_def_free(DomainDef *d);

/* The reservations d needs on a host whose default huge page size is default_page_size (needed only when
 * d->uses_default) and whose base page size is base_page_size (a <page> of that size means ordinary memory). */
int domain_compute(const DomainDef *d, uint64_t default_page_size, uint64_t base_page_size, DomainNeeds **ret,
                   DomainError *error);
DomainNeeds *domain_needs_free(DomainNeeds *n);

/* One line per reservation, the format of the tests' expected files:
 * "<name> page_size=<bytes> pages=<n> any|nodes=0,1|node_pages=0:2,1:2". Returns a malloc'd string. */
char *domain_needs_format(const DomainNeeds *n);

/* "2M", "1G", "64K": the short form used in reservation names. */
void page_size_suffix(char buf[static 24], uint64_t page_size);
