/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Held reservations for libvirt: the hook bind-mounts a held reservation's hugetlbfs (hugepaged's MountPath)
 * onto the directory libvirt's qemu driver gives QEMU for the domain's huge pages,
 * <hugetlbfs mount>/libvirt/qemu/<id>-<name, 20 characters>, after libvirt made it and before QEMU opens it. */
#pragma once

#include <stdint.h>

/* The directory libvirt 9 will use for pages of page_size of domain (name, id): under the first hugetlbfs mount
 * of that page size in /proc/self/mountinfo that is not hugepaged's. -ENOENT: no such mount; -EINVAL: the
 * name is not ASCII (libvirt truncates it by characters) or the id is missing. */
int hold_domain_dir(const char *name, int32_t id, uint64_t page_size, char **ret);

/* Bind-mounts mount_path on dir, which libvirt has made for its QEMU user by "start begin", and gives the
 * held mount's root dir's owner and mode. */
int hold_bind(const char *mount_path, const char *dir);

/* Unmounts (lazily) and removes every hugepaged bind mount at .../libvirt/qemu/<digits>-<name, 20 characters>.
 * Returns how many, or a negative errno. */
int hold_unbind_domain(const char *name);
