/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* All access to the kernel's hugetlb files in sysfs and procfs, under a configurable root. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Kernel Kernel;

typedef struct NodeCounts {
        uint64_t nr;      /* nr_hugepages: the kernel's count, surplus included */
        uint64_t free;
        uint64_t surplus;
} NodeCounts;

/* Pages that stay when their users let go: what nr_hugepages would be with no surplus. */
static inline uint64_t node_counts_persistent(const NodeCounts *c) {
        return c->nr >= c->surplus ? c->nr - c->surplus : 0;
}

typedef struct GlobalCounts {
        uint64_t nr, free, surplus, resv, overcommit;
} GlobalCounts;

/* root: "" or NULL for the real kernel, else a directory holding sys/ and proc/. */
int kernel_new(const char *root, Kernel **ret);
Kernel *kernel_free(Kernel *k);
const char *kernel_root(const Kernel *k);

/* Page sizes in bytes, ascending, from the hugepages-*kB directories. */
int kernel_list_page_sizes(Kernel *k, uint64_t **ret, size_t *ret_n);
/* From "Hugepagesize:" in meminfo. */
int kernel_default_page_size(Kernel *k, uint64_t *ret);
/* Nodes that have memory, ascending. Without NUMA in the kernel this is { 0 }. */
int kernel_list_memory_nodes(Kernel *k, uint32_t **ret, size_t *ret_n);
/* Whether the kernel has per-node hugepage directories at all. Decided on the first call and cached: make
 * that call before any thread shares k (manager_startup does), after which every function here is safe to
 * call from worker threads. */
bool kernel_has_numa(Kernel *k);

/* Keeps the node's count files open after the first read (see NodeFiles in kernel.c). */
int kernel_read_node(Kernel *k, uint64_t page_size, uint32_t node, NodeCounts *ret);
/* Closes the count files kept open for node: call when its pools go or come. */
void kernel_forget_node(Kernel *k, uint32_t node);
int kernel_write_node_nr(Kernel *k, uint64_t page_size, uint32_t node, uint64_t nr);
int kernel_read_global(Kernel *k, uint64_t page_size, GlobalCounts *ret);
/* Per-node compaction where the kernel offers it, else the whole machine. */
int kernel_compact_node(Kernel *k, uint32_t node);
int kernel_compact_all(Kernel *k);
/* Drops clean page cache (proc/sys/vm/drop_caches), so compaction finds movable or free memory. */
int kernel_drop_caches(Kernel *k);
int kernel_mem_total(Kernel *k, uint64_t *ret_bytes);

/* Low level, exported for the tests: path relative to root, e.g. "proc/meminfo". */
int kernel_read_file(Kernel *k, const char *relpath, char **ret);
int kernel_write_file(Kernel *k, const char *relpath, const char *value);
