/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The D-Bus names of the core's errors. */
#pragma once

#include <systemd/sd-bus.h>

#include "errors.h"

#define BUS_ERROR_INSUFFICIENT_PAGES "org.hugepaged1.Error.InsufficientPages"
#define BUS_ERROR_UNSUPPORTED_PAGE_SIZE "org.hugepaged1.Error.UnsupportedPageSize"
#define BUS_ERROR_NO_SUCH_NODE "org.hugepaged1.Error.NoSuchNode"
#define BUS_ERROR_NO_SUCH_RESERVATION "org.hugepaged1.Error.NoSuchReservation"
#define BUS_ERROR_RESERVATION_EXISTS "org.hugepaged1.Error.ReservationExists"
#define BUS_ERROR_LIMIT_EXCEEDED "org.hugepaged1.Error.LimitExceeded"

extern const sd_bus_error_map hugepaged_error_map[];

/* Fills ret_error from a core error. */
int bus_error_from_hp(sd_bus_error *ret_error, const HpError *e);
