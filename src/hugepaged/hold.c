/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Kernel-held reservations (see hold.h): the mount operations, the mount paths, and the reconciliation of the
 * mounts with the reservations at start-up. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hold.h"
#include "log.h"
#include "macro.h"
#include "manager-internal.h"
#include "util.h"

/* ---- the real kernel ---- */

static int kernel_mount(const char *path, uint64_t page_size, uint64_t bytes, uid_t uid, gid_t gid) {
        char opts[256];

        /* min_size makes the kernel reserve the pages at mount time, or fail the mount with ENOMEM. */
        (void) snprintf(opts, sizeof(opts), "pagesize=%" PRIu64 ",size=%" PRIu64 ",min_size=%" PRIu64
                        ",uid=%u,gid=%u,mode=0700", page_size, bytes, bytes, (unsigned) uid, (unsigned) gid);
        if (mount("hugepaged", path, "hugetlbfs", MS_NOSUID | MS_NODEV, opts) < 0)
                return negative_errno();
        return 0;
}

static int kernel_umount(const char *path) {
        if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                return negative_errno();
        return 0;
}

static int strv_push(char ***v, size_t *n, char *s) {
        char **t = realloc(*v, (*n + 2) * sizeof(char *));
        if (!t) {
                free(s);
                return -ENOMEM;
        }
        *v = t;
        t[(*n)++] = s;
        t[*n] = NULL;
        return 0;
}

static int kernel_list(const char *dir, char ***ret) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_free_ char *line = NULL;
        size_t len = 0, n = 0, dlen = strlen(dir);
        char **v = calloc(1, sizeof(char *));

        if (!f || !v) {
                int k = f ? -ENOMEM : negative_errno();
                free(v);
                return k;
        }
        while (getline(&line, &len, f) > 0) {
                char point[4096], fstype[64];
                const char *sep = strstr(line, " - ");
                /* id parent major:minor root mount-point options [optional fields] - fstype source super-options */
                if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 || sscanf(sep + 3, "%63s", fstype) != 1)
                        continue;
                unescape_octal(point);
                if (!streq(fstype, "hugetlbfs") || strncmp(point, dir, dlen) != 0 || point[dlen] != '/' ||
                    strchr(point + dlen + 1, '/') || point[dlen + 1] == '\0')
                        continue;
                char *s = strdup(point);
                if (!s || strv_push(&v, &n, s) < 0) {
                        strv_free(v);
                        return -ENOMEM;
                }
        }
        *ret = v;
        return 0;
}

const HoldOps hold_ops_kernel = {
        .mount = kernel_mount,
        .umount = kernel_umount,
        .list = kernel_list,
};

/* ---- a fake kernel: a marker file stands for the mount ---- */

static int simulated_mount(const char *path, uint64_t page_size, uint64_t bytes, uid_t uid, gid_t gid) {
        _cleanup_free_ char *marker = NULL;
        _cleanup_fclose_ FILE *f = NULL;

        if (asprintf(&marker, "%s/" HOLD_SIMULATED_MARKER, path) < 0)
                return -ENOMEM;
        f = fopen(marker, "wxe");
        if (!f)
                return errno == EEXIST ? -EBUSY : negative_errno();
        fprintf(f, "pagesize=%" PRIu64 ",size=%" PRIu64 ",min_size=%" PRIu64 ",uid=%u,gid=%u,mode=0700\n", page_size,
                bytes, bytes, (unsigned) uid, (unsigned) gid);
        return fflush(f) == 0 ? 0 : negative_errno();
}

static int simulated_umount(const char *path) {
        _cleanup_free_ char *marker = NULL;

        if (asprintf(&marker, "%s/" HOLD_SIMULATED_MARKER, path) < 0)
                return -ENOMEM;
        if (unlink(marker) < 0)
                return errno == ENOENT ? -EINVAL : negative_errno();
        return 0;
}

static int simulated_list(const char *dir, char ***ret) {
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;
        char **v = calloc(1, sizeof(char *));

        if (!v || (!d && errno != ENOENT)) {
                int k = v ? negative_errno() : -ENOMEM;
                free(v);
                if (d)
                        closedir(d);
                return k;
        }
        while (d && (de = readdir(d))) {
                char *s;
                struct stat st;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (asprintf(&s, "%s/%s/" HOLD_SIMULATED_MARKER, dir, de->d_name) < 0) {
                        strv_free(v);
                        closedir(d);
                        return -ENOMEM;
                }
                if (stat(s, &st) < 0) {
                        free(s);
                        continue;
                }
                *strrchr(s, '/') = '\0';
                if (strv_push(&v, &n, s) < 0) {
                        strv_free(v);
                        closedir(d);
                        return -ENOMEM;
                }
        }
        if (d)
                closedir(d);
        *ret = v;
        return 0;
}

const HoldOps hold_ops_simulated = {
        .mount = simulated_mount,
        .umount = simulated_umount,
        .list = simulated_list,
};

/* ---- paths ---- */

char *hold_encode_name(const char *name) {
        if (streq(name, "."))
                return strdup("%2e");
        if (streq(name, ".."))
                return strdup("%2e%2e");
        return strdup(name);
}

static int hold_dir(Manager *m, char **ret) {
        return asprintf(ret, "%s/mounts", m->state_dir) < 0 ? -ENOMEM : 0;
}

int hold_path(Manager *m, const char *name, char **ret) {
        _cleanup_free_ char *enc = hold_encode_name(name);
        if (!enc || asprintf(ret, "%s/mounts/%s", m->state_dir, enc) < 0)
                return -ENOMEM;
        return 0;
}

/* ---- holding ---- */

int reservation_hold(Reservation *r) {
        Manager *m = r->manager;
        _cleanup_free_ char *dir = NULL, *path = NULL;
        struct passwd pw, *result = NULL;
        char buf[4096];
        gid_t gid = 0;
        int k;

        if (hold_dir(m, &dir) < 0 || hold_path(m, r->name, &path) < 0)
                return -ENOMEM;
        /* Consumers in other users' processes must get through to their own mount, which is 0700 itself. */
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        if (chmod(dir, 0755) < 0) /* the service's UMask= is 0077 */
                return negative_errno();
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        /* The owner's group, so the mount's files are the owner's alone; with no such user, root's. */
        if (getpwuid_r(r->uid, &pw, buf, sizeof(buf), &result) == 0 && result)
                gid = pw.pw_gid;
        k = m->hold_ops->mount(path, r->page_size, r->pages * r->page_size, r->uid, gid);
        if (k < 0) {
                (void) rmdir(path);
                return k;
        }
        free(r->mount_path);
        r->mount_path = TAKE_PTR(path);
        r->hold_lost = false;
        return 0;
}

int reservation_unhold(Reservation *r) {
        Manager *m = r->manager;
        _cleanup_free_ char *path = NULL;
        int k;

        if (hold_path(m, r->name, &path) < 0)
                return -ENOMEM;
        k = m->hold_ops->umount(path);
        if (k < 0 && k != -EINVAL && k != -ENOENT)
                return k;
        if (rmdir(path) < 0 && errno != ENOENT)
                log_warning_errno(errno, "cannot remove %s: %m", path);
        return 0;
}

void manager_reconcile_holds(Manager *m) {
        _cleanup_free_ char *dir = NULL;
        char **mounts = NULL;
        int k;

        if (hold_dir(m, &dir) < 0) {
                log_error_errno(ENOMEM, "cannot reconcile the held reservations' mounts: %m");
                return;
        }
        k = m->hold_ops->list(dir, &mounts);
        if (k < 0) {
                /* Mounting again what may be there would reserve the pages twice: take them as they were. */
                log_error_errno(k, "cannot list the mounts under %s, the held reservations are not checked: %m", dir);
                for (size_t j = 0; j < m->n_reservations; j++)
                        if (m->reservations[j]->held)
                                (void) hold_path(m, m->reservations[j]->name, &m->reservations[j]->mount_path);
                return;
        }
        for (size_t i = 0; mounts && mounts[i]; i++) {
                bool ours = false;
                for (size_t j = 0; j < m->n_reservations && !ours; j++) {
                        Reservation *r = m->reservations[j];
                        _cleanup_free_ char *path = NULL;
                        if (!r->held || hold_path(m, r->name, &path) < 0 || !streq(path, mounts[i]))
                                continue;
                        if (r->mount_path) {
                                /* Mounted twice over the same path (a crash between two attempts): one is enough. */
                                log_warning("%s is mounted more than once, unmounting the extra one", mounts[i]);
                                break;
                        }
                        r->mount_path = TAKE_PTR(path);
                        ours = true;
                }
                if (ours)
                        continue;
                k = m->hold_ops->umount(mounts[i]);
                if (k < 0)
                        log_error_errno(k, "cannot unmount %s, which no reservation holds: %m", mounts[i]);
                else {
                        log_notice("unmounted %s: no reservation holds it (a crash while reserving or releasing)",
                                   mounts[i]);
                        (void) rmdir(mounts[i]);
                }
        }
        strv_free(mounts);

        for (size_t j = 0; j < m->n_reservations; j++) {
                Reservation *r = m->reservations[j];
                char ps[FORMAT_SIZE_MAX];
                if (!r->held || r->mount_path)
                        continue;
                k = reservation_hold(r);
                if (k >= 0) {
                        log_warning("reservation %s had lost its mount (unmounted by someone, or a reboot): held "
                                    "again at %s", r->name, r->mount_path);
                        continue;
                }
                r->hold_lost = true;
                log_error_errno(k, "reservation %s is DEGRADED: its mount is gone and cannot be made again "
                                "(%" PRIu64 " %s pages): %m; the pages are no longer kept from others", r->name,
                                r->pages, page_size_str(ps, r->page_size));
        }
}
