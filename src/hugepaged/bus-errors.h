/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The D-Bus names of the core's errors. */
#pragma once

#include <systemd/sd-bus.h>

#include "errors.h"
#include "hugepaged-bus-api.h"

#define BUS_ERROR_INSUFFICIENT_PAGES HP_BUS_ERROR_INSUFFICIENT_PAGES
#define BUS_ERROR_UNSUPPORTED_PAGE_SIZE HP_BUS_ERROR_UNSUPPORTED_PAGE_SIZE
#define BUS_ERROR_NO_SUCH_NODE HP_BUS_ERROR_NO_SUCH_NODE
#define BUS_ERROR_NO_SUCH_RESERVATION HP_BUS_ERROR_NO_SUCH_RESERVATION
#define BUS_ERROR_RESERVATION_EXISTS HP_BUS_ERROR_RESERVATION_EXISTS
#define BUS_ERROR_LIMIT_EXCEEDED HP_BUS_ERROR_LIMIT_EXCEEDED

extern const sd_bus_error_map hugepaged_error_map[];

/* The daemon's handlers never let a bare errno reach a client: sd-bus would translate it through the map above,
 * and an internal -ENOMEM or a parser's -ENXIO would read as InsufficientPages or NoSuchNode. */
int bus_method_result(sd_bus_error *error, int r);

/* Defines handler NAME, which runs NAME##_impl and passes its result through bus_method_result(). */
#define BUS_METHOD_WRAP(name)                                                                       \
        static int name(sd_bus_message *message, void *userdata, sd_bus_error *error) {             \
                return bus_method_result(error, name##_impl(message, userdata, error));            \
        }

/* Fills ret_error from a core error. */
int bus_error_from_hp(sd_bus_error *ret_error, const HpError *e);
