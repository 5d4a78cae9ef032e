/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The hook's side of held reservations: finds libvirt's directory for a domain's huge pages and bind-mounts
 * hugepaged's held hugetlbfs there, and takes the bind mounts down at release. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hold.h"
#include "macro.h"
#include "util.h"

#define LIBVIRT_SHORT_NAME_MAX 20 /* VIR_DOMAIN_SHORT_NAME_MAX */
#define HOLD_SOURCE "hugepaged"   /* the source hugepaged gives its held mounts */

typedef struct MountLine {
        char point[4096];
        char source[256];
        uint64_t page_size;
} MountLine;

/* One hugetlbfs line of mountinfo: 0, or -EAGAIN for any other line. */
static int parse_line(const char *line, MountLine *m) {
        const char *sep = strstr(line, " - ");
        char fstype[64], opts[1024];
        const char *ps;

        /* id parent major:minor root mount-point options [optional fields] - fstype source super-options */
        if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", m->point) != 1 ||
            sscanf(sep + 3, "%63s %255s %1023s", fstype, m->source, opts) != 3 || !streq(fstype, "hugetlbfs"))
                return -EAGAIN;
        unescape_octal(m->point);
        m->page_size = 0;
        ps = strstr(opts, "pagesize=");
        if (ps) {
                char *end;
                uint64_t v = strtoull(ps + 9, &end, 10);
                switch (*end) {
                case 'K': v <<= 10; break;
                case 'M': v <<= 20; break;
                case 'G': v <<= 30; break;
                default: break;
                }
                m->page_size = v;
        }
        return 0;
}

int hold_domain_dir(const char *name, int32_t id, uint64_t page_size, char **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        size_t len = 0;

        if (id < 0)
                return -EINVAL;
        for (const char *p = name; *p; p++)
                if ((unsigned char) *p >= 0x80)
                        return -EINVAL;
        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return -errno;
        while (getline(&line, &len, f) > 0) {
                MountLine m;
                if (parse_line(line, &m) < 0 || streq(m.source, HOLD_SOURCE) || m.page_size != page_size)
                        continue;
                if (asprintf(ret, "%s/libvirt/qemu/%" PRIi32 "-%.*s", m.point, id, LIBVIRT_SHORT_NAME_MAX, name) < 0)
                        return -ENOMEM;
                return 0;
        }
        return -ENOENT;
}

int hold_bind(const char *mount_path, const char *dir) {
        struct stat st;
        int r;

        /* libvirt made dir for its QEMU user between "prepare" and "start": the held root takes its owner. */
        if (stat(dir, &st) < 0)
                return -errno;
        if (mount(mount_path, dir, NULL, MS_BIND, NULL) < 0)
                return -errno;
        if (chown(dir, st.st_uid, st.st_gid) < 0 || chmod(dir, st.st_mode & 07777) < 0) {
                r = -errno;
                (void) umount2(dir, MNT_DETACH);
                return r;
        }
        return 0;
}

/* "<digits>-<name, 20 characters>" */
static bool is_domain_dir(const char *base, const char *name) {
        const char *p = base;

        while (*p >= '0' && *p <= '9')
                p++;
        return p > base && *p == '-' && strlen(p + 1) == MIN(strlen(name), (size_t) LIBVIRT_SHORT_NAME_MAX) &&
               strneq(p + 1, name, LIBVIRT_SHORT_NAME_MAX);
}

int hold_unbind_domain(const char *name) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_free_ char *line = NULL;
        size_t len = 0;
        int n = 0, r = 0;

        if (!f)
                return -errno;
        while (getline(&line, &len, f) > 0) {
                const char *slash;
                size_t plen;
                MountLine m;

                if (parse_line(line, &m) < 0 || !streq(m.source, HOLD_SOURCE) || !(slash = strrchr(m.point, '/')))
                        continue;
                plen = (size_t) (slash - m.point);
                if (plen < 13 || !strneq(slash - 13, "/libvirt/qemu", 13) || !is_domain_dir(slash + 1, name))
                        continue;
                if (umount2(m.point, MNT_DETACH) < 0) {
                        r = -errno;
                        continue;
                }
                (void) rmdir(m.point);
                n++;
        }
        return r < 0 ? r : n;
}
