/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Kernel-held reservations: a hugetlbfs instance per held reservation, mounted under <state_dir>/mounts, whose
 * min_size keeps the pages reserved in the kernel (HugePages_Rsvd) for as long as the superblock lives. Every
 * mount and unmount goes through a table of operations: the real one, and a simulated one for a fake kernel
 * (--root), on which a real mount could not reserve the fake pages; tests may put in their own. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct Manager Manager;
typedef struct Reservation Reservation;

typedef struct HoldOps {
        /* Mounts a hugetlbfs instance of page_size pages with min_size = size = bytes, owned by uid:gid, mode
         * 0700, on path (an empty directory). -ENOMEM: the pool cannot back it. */
        int (*mount)(const char *path, uint64_t page_size, uint64_t bytes, uid_t uid, gid_t gid);
        /* Detaches path lazily: a mount still in use lives on, and keeps its pages, until its last user lets
         * go. -EINVAL: nothing is mounted there. */
        int (*umount)(const char *path);
        /* The hugetlbfs mounts directly below dir, as a NULL-terminated array of paths. */
        int (*list)(const char *dir, char ***ret);
} HoldOps;

extern const HoldOps hold_ops_kernel;
extern const HoldOps hold_ops_simulated;

/* The file the simulated operations put in a "mounted" directory. */
#define HOLD_SIMULATED_MARKER ".hugepaged-simulated-hold"

/* The directory name for a reservation name: the name itself, except that "." and ".." (valid names, but not
 * usable as path components) become "%2e" and "%2e%2e"; '%' is not allowed in names, so nothing collides. */
char *hold_encode_name(const char *name);
/* <state_dir>/mounts/<encoded name> */
int hold_path(Manager *m, const char *name, char **ret);

/* Mounts r's instance and sets r->mount_path. Logs nothing: the caller says what failed. */
int reservation_hold(Reservation *r);
/* Unmounts r's instance lazily and removes its directory; nothing mounted there is not an error. */
int reservation_unhold(Reservation *r);
/* At start-up: mounts with no held reservation go, held reservations whose mount is gone are held again or,
 * failing that, marked as having lost their hold (degraded), loudly. */
void manager_reconcile_holds(Manager *m);
