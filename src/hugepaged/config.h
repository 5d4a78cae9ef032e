/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's configuration: hugepaged.conf and its .d/ drop-ins, parsed with libinih. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_NODE_ANY (-1)

typedef struct PoolConfig {
        uint64_t page_size;     /* bytes */
        int node;               /* CONFIG_NODE_ANY: every node */
        bool has_min, has_max;
        uint64_t min_pages, max_pages;
        bool has_keep_free, has_shrink_delay;
        uint64_t keep_free_pages;
        uint64_t shrink_delay_usec; /* CONFIG_INFINITY: never shrink */
        bool has_adopt;
        bool adopt_spare;           /* Adopt=spare: pages found are hugepaged's spare pages, not a Floor */
} PoolConfig;

typedef struct Config {
        unsigned max_reservations;
        uint64_t refresh_interval_usec;
        int log_level;                  /* -1: not set */
        unsigned alloc_attempts;
        uint64_t alloc_timeout_usec;
        bool compaction;
        bool drop_caches;               /* [Allocation] DropCaches=: for 1 GiB or large requests only */
        bool has_shrink_delay;          /* [Allocation] ShrinkDelaySec= was given */
        uint64_t shrink_delay_usec;

        /* [Limits]. Per user: every uid but 0. CONFIG_UNLIMITED (or UINT_MAX) means no limit. */
        unsigned max_reservations_per_user;
        uint64_t max_bytes_per_user;
        /* For everyone, root included: bytes, or when max_reserved_percent is set, that share of RAM. */
        uint64_t max_reserved_bytes;
        unsigned max_reserved_percent; /* 1..100; 0: max_reserved_bytes applies */

        PoolConfig *pools;
        size_t n_pools;
} Config;

#define CONFIG_MAX_RESERVATIONS_DEFAULT 4096
#define CONFIG_MAX_RESERVATIONS_MAX 1000000
#define CONFIG_MAX_RESERVATIONS_PER_USER_DEFAULT 64
#define CONFIG_UNLIMITED UINT64_MAX
#define CONFIG_INFINITY UINT64_MAX
/* How long released pages stay as spare pages when nothing is configured: 2 MiB pages go back at once, 1 GiB
 * pages (slow and often impossible to get back once memory is fragmented) are kept for good. An explicit
 * ShrinkDelaySec= in [Allocation] or a [Pool] section overrides both. */
#define CONFIG_SHRINK_DELAY_DEFAULT_USEC 0
#define CONFIG_SHRINK_DELAY_1G_DEFAULT_USEC CONFIG_INFINITY
/* A request this large (bytes) counts as large for DropCaches=, whatever its page size. */
#define CONFIG_DROP_CACHES_MIN_BYTES (1ULL << 30)
/* Pages this large and up: 1 GiB on x86 ("gigantic" in the kernel). */
#define GIGANTIC_PAGE_SIZE (1ULL << 30)

void config_init(Config *c);
void config_done(Config *c);

/* Loads path (missing is fine unless must_exist) and then every path.d/NAME.conf in lexical order,
 * later files overriding earlier ones. On a bad file it logs "FILE:LINE: reason" and fails. */
int config_load(Config *c, const char *path, bool must_exist);

/* The pool limits that apply to (page_size, node): a node's own section beats the size-wide one. */
/* MaxReservedBytes= in bytes for a machine with mem_total bytes of RAM (0: unknown, which makes a percentage
 * 0: nothing can be granted against a limit nobody can compute). CONFIG_UNLIMITED: no limit. */
uint64_t config_max_reserved_bytes(const Config *c, uint64_t mem_total);

/* KeepFreePages= and ShrinkDelaySec= for (page_size, node): the node's section, the size's, then [Allocation]
 * ShrinkDelaySec=, then the built-in default for the page size. */
void config_pool_warm(const Config *c, uint64_t page_size, uint32_t node, uint64_t *ret_keep_free,
                      uint64_t *ret_shrink_delay_usec);

/* Adopt= for (page_size, node): true for spare, false for floor (the default). */
bool config_pool_adopt_spare(const Config *c, uint64_t page_size, uint32_t node);

void config_pool_limits(const Config *c, uint64_t page_size, uint32_t node, uint64_t *ret_min,
                        uint64_t *ret_max);
