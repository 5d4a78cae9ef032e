/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The NUMA topology watch. A uevent is only a trigger: the truth is re-read from sysfs each time, so a lost,
 * duplicated or reordered event costs nothing, and the periodic refresh catches whatever a full socket drops. */
#include <errno.h>
#include <libudev.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "udev.h"
#include "util.h"

#define UDEV_CONTROL "/run/udev/control"

struct UdevWatch {
        Manager *manager;
        struct udev *udev;
        struct udev_monitor *monitor;
        sd_event_source *source;
};

const char *udev_watch_pick_source(void) {
        const char *e = getenv("HUGEPAGED_UDEV_SOURCE");

        if (e && (streq(e, "kernel") || streq(e, "udev")))
                return e;
        if (e && *e)
                log_warning("ignoring HUGEPAGED_UDEV_SOURCE=%s: expected 'kernel' or 'udev'", e);
        /* Without udevd nobody rebroadcasts the kernel's events, so listen to the kernel directly. */
        return access(UDEV_CONTROL, F_OK) == 0 ? "udev" : "kernel";
}

static int on_uevent(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        UdevWatch *w = userdata;
        unsigned n = 0;
        bool lost = false;

        /* Drain the socket first: a burst (every block of a node going offline) is one re-read. On the kernel
         * source every uevent of the host wakes us (a tap device per guest, a FUSE mount, a USB stick): libudev
         * drops those that fail the subsystem filter, and they must not cost a re-read of the topology. */
        for (;;) {
                struct udev_device *d;

                errno = 0;
                d = udev_monitor_receive_device(w->monitor);
                if (!d) {
                        /* The socket overflowed: whatever was lost may have been ours. */
                        lost = errno == ENOBUFS;
                        break;
                }
                n++;
                log_debug("uevent %s %s", udev_device_get_action(d) ?: "?", udev_device_get_sysname(d) ?: "?");
                udev_device_unref(d);
        }
        if (lost)
                log_warning("the uevent socket overflowed, re-reading the NUMA topology");
        if (n > 0 || lost)
                (void) manager_update_topology(w->manager);
        return 0;
}

int udev_watch_new(Manager *m, UdevWatch **ret) {
        const char *source = udev_watch_pick_source();
        UdevWatch *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->manager = m;
        w->udev = udev_new();
        if (!w->udev) {
                r = -ENOMEM;
                goto fail;
        }
        w->monitor = udev_monitor_new_from_netlink(w->udev, source);
        if (!w->monitor) {
                r = errno > 0 ? -errno : -EIO;
                goto fail;
        }
        r = udev_monitor_filter_add_match_subsystem_devtype(w->monitor, "node", NULL);
        if (r >= 0)
                r = udev_monitor_filter_add_match_subsystem_devtype(w->monitor, "memory", NULL);
        if (r >= 0)
                r = udev_monitor_enable_receiving(w->monitor);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(m->event, &w->source, udev_monitor_get_fd(w->monitor), EPOLLIN, on_uevent, w);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(w->source, "udev-topology");
        log_info("watching NUMA nodes and memory blocks through the %s uevent source", source);
        *ret = w;
        return 0;
fail:
        udev_watch_free(w);
        return r;
}

UdevWatch *udev_watch_free(UdevWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->source);
        udev_monitor_unref(w->monitor);
        udev_unref(w->udev);
        free(w);
        return NULL;
}
