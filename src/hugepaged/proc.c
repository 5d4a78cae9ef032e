/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Facts about real processes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "proc.h"

int proc_pid_starttime(pid_t pid, uint64_t *ret) {
        char path[64], buf[2048];
        _cleanup_fclose_ FILE *f = NULL;
        unsigned long long v;
        char *p;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ESRCH : negative_errno();
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        /* The command name may hold spaces and parentheses: fields start after the last ')'. */
        p = strrchr(buf, ')');
        if (!p)
                return -EBADMSG;
        p++;
        for (int field = 3; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -EBADMSG;
        }
        if (sscanf(p, " %llu", &v) != 1)
                return -EBADMSG;
        *ret = v;
        return 0;
}
