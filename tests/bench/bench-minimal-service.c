/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The reference of figure (4): the smallest useful sd-bus service, one that owns one name on the system bus
 * and answers Peer.Ping (sd-bus does that by itself). Name from argv[1], org.hugepaged1 by default. */
#include <stdio.h>
#include <string.h>

#include <systemd/sd-bus.h>

int main(int argc, char **argv) {
        const char *name = argc > 1 ? argv[1] : "org.hugepaged1";
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "sd_bus_open_system: %s\n", strerror(-r));
                return 1;
        }
        r = sd_bus_request_name(bus, name, 0);
        if (r < 0) {
                fprintf(stderr, "sd_bus_request_name(%s): %s\n", name, strerror(-r));
                return 1;
        }
        for (;;) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return 1;
                if (r > 0)
                        continue;
                if (sd_bus_wait(bus, UINT64_MAX) < 0)
                        return 1;
        }
}
