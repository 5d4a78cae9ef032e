/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The NUMA topology watch: uevents of nodes and memory blocks, on the daemon's event loop. */
#pragma once

#include "manager.h"

typedef struct UdevWatch UdevWatch;

/* "udev" when udevd runs (/run/udev/control exists), else "kernel"; $HUGEPAGED_UDEV_SOURCE overrides it. */
const char *udev_watch_pick_source(void);

/* Starts watching subsystems "node" and "memory"; every event makes the manager re-read the topology. */
int udev_watch_new(Manager *m, UdevWatch **ret);
UdevWatch *udev_watch_free(UdevWatch *w);
