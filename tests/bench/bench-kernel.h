/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real-kernel figures of bench-hugepaged: see bench-kernel.c. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "bus-harness.h"

#define COLD_PAGES UINT64_C(2048) /* 2 MiB pages: 4 GiB */
#define COLD_PAIRS 41

/* Whether this process may change the real kernel's pools; if not, why. */
gboolean bench_kernel_usable(char *why, size_t len);

typedef struct ColdGrant {
        gboolean ran;
        char why[128]; /* when it didn't */
        guint64 pages;
        int pairs;
        gint64 daemon_us, direct_us; /* medians */
        int direct_short;            /* direct writes that got fewer pages than asked */
} ColdGrant;

/* (1) Reserve of COLD_PAGES 2 MiB pages through the daemon against a direct write and read-back of the same
 * delta, COLD_PAIRS pairs. Needs save_originals() and the emergency handler installed first. */
void bench_cold_grant(TestBus *bus, ColdGrant *out);

#define FRAG_WANT_2M     UINT64_C(8192) /* 16 GiB */
#define FRAG_WANT_1G     UINT64_C(16)
#define FRAG_LOOP_ROUNDS 5
#define FRAG_REPS_MAX \
        9 /* HUGEPAGED_BENCH_FRAG_REPS, default 3: each rep is 6 fragmentations of about 35 s */

typedef struct FragRun {
        guint64 got; /* pages obtained */
        gint64 us;
        int rounds;       /* the loop's drop+compact+write rounds */
        guint64 stats[3]; /* hugepaged: pages won by the first write, after compaction, after drop_caches */
} FragRun;

typedef struct Fragmentation {
        gboolean ran;
        char why[256];
        int reps;
        guint64 want[2];                  /* [0] 2 MiB, [1] 1 GiB */
        FragRun run[2][3][FRAG_REPS_MAX]; /* [size][method: single write, hook loop, hugepaged][rep] */
} Fragmentation;

/* (7) On memory bench-fragment has fragmented afresh before each, node 0's pool grown by want[] pages: one
 * write, the hook-script loop, and hugepaged's Reserve. */
void bench_fragmentation(TestBus *bus, Fragmentation *out);
void bench_fragmentation_print(const Fragmentation *f);
