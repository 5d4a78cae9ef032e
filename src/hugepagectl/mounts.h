/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The hugetlbfs mounts, for status: which mount point serves which page size. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct Mount {
        uint64_t page_size;
        char *path;
} Mount;

void mounts_free(Mount *m, size_t n);

/* Every hugetlbfs mount and the page size it serves: its pagesize= option, or the default size without one.
 * $HUGEPAGECTL_PROC_MOUNTS replaces /proc/mounts, for the tests. */
int read_mounts(uint64_t default_page_size, Mount **ret, size_t *ret_n);
