/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl's reading of the mount table: hugetlbfs mounts and their page sizes. */
#include <mntent.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "mounts.h"
#include "util.h"

void mounts_free(Mount *m, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(m[i].path);
        free(m);
}

int read_mounts(uint64_t default_page_size, Mount **ret, size_t *ret_n) {
        const char *fn = getenv("HUGEPAGECTL_PROC_MOUNTS") ?: "/proc/mounts";
        Mount *mounts = NULL;
        size_t n = 0;
        struct mntent *me;
        FILE *f;

        f = setmntent(fn, "re");
        if (!f)
                return negative_errno();
        while ((me = getmntent(f))) {
                uint64_t size = default_page_size;
                char *opt;

                if (!streq(me->mnt_type, "hugetlbfs"))
                        continue;
                opt = hasmntopt(me, "pagesize");
                if (opt && opt[strlen("pagesize")] == '=') {
                        _cleanup_free_ char *v = strndup(opt + strlen("pagesize="),
                                                         strcspn(opt + strlen("pagesize="), ","));
                        if (!v || parse_size(v, &size) < 0)
                                continue;
                }
                Mount *t = realloc(mounts, (n + 1) * sizeof(*t));
                if (!t)
                        break;
                mounts = t;
                mounts[n].page_size = size;
                mounts[n].path = strdup(me->mnt_dir);
                if (!mounts[n].path)
                        break;
                n++;
        }
        endmntent(f);
        *ret = mounts;
        *ret_n = n;
        return 0;
}
