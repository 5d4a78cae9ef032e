/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one home of hugepaged's D-Bus names: the bus name, object paths, interfaces, error names and polkit
 * actions, shared by the daemon, hugepagectl, the reservation helper and the libvirt hook. The contract is
 * dbus/org.hugepaged1.xml. */
#pragma once

#define HP_BUS_NAME "org.hugepaged1"
#define HP_BUS_PATH "/org/hugepaged1"
#define HP_BUS_POOL_PREFIX "/org/hugepaged1/pool"
#define HP_BUS_RESERVATION_PREFIX "/org/hugepaged1/reservation"

#define HP_BUS_IFACE_MANAGER "org.hugepaged1.Manager"
#define HP_BUS_IFACE_POOL "org.hugepaged1.Pool"
#define HP_BUS_IFACE_RESERVATION "org.hugepaged1.Reservation"

/* The named errors; docs/check-dbus-man.sh checks that org.hugepaged1(5) lists exactly these. */
#define HP_BUS_ERROR_INSUFFICIENT_PAGES "org.hugepaged1.Error.InsufficientPages"
#define HP_BUS_ERROR_UNSUPPORTED_PAGE_SIZE "org.hugepaged1.Error.UnsupportedPageSize"
#define HP_BUS_ERROR_NO_SUCH_NODE "org.hugepaged1.Error.NoSuchNode"
#define HP_BUS_ERROR_NO_SUCH_RESERVATION "org.hugepaged1.Error.NoSuchReservation"
#define HP_BUS_ERROR_RESERVATION_EXISTS "org.hugepaged1.Error.ReservationExists"
#define HP_BUS_ERROR_LIMIT_EXCEEDED "org.hugepaged1.Error.LimitExceeded"

#define HP_POLKIT_ACTION_RESERVE "org.hugepaged1.reserve"
#define HP_POLKIT_ACTION_RELEASE_ANY "org.hugepaged1.release-any"
#define HP_POLKIT_ACTION_MANAGE "org.hugepaged1.manage"
