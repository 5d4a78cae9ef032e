/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may change what: uid 0, the owner of a reservation, or whoever polkit authorizes, asked asynchronously. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "hugepaged-bus-api.h"
#include "bus.h"

#define POLKIT_ACTION_RESERVE HP_POLKIT_ACTION_RESERVE
#define POLKIT_ACTION_RELEASE_ANY HP_POLKIT_ACTION_RELEASE_ANY
#define POLKIT_ACTION_MANAGE HP_POLKIT_ACTION_MANAGE

/* Pending checks one unique bus name may have, and all callers together; beyond them a call fails with
 * org.freedesktop.DBus.Error.LimitsExceeded instead of queueing, so nobody can make the daemon hoard memory.
 * The total stays well below dbus-daemon's max_replies_per_connection (128 on the system bus), which every
 * pending check costs the daemon's own connection. */
#define POLKIT_PENDING_PER_SENDER_MAX 16
#define POLKIT_PENDING_MAX 64

/* PolkitRegistry (declared in bus.h, c->polkit_registry): the checks in flight, one entry per (message,
 * action), as systemd's bus-polkit.c keeps them. Created on first use. */
PolkitRegistry *polkit_registry_free(PolkitRegistry *r);
/* Number of entries, for the log and for tests of the bounds. */
size_t polkit_registry_size(const PolkitRegistry *r);

/* The sender's effective uid as the bus driver vouches for it, never augmented from /proc. Remembered per unique
 * name in c (which may be NULL: then every call asks the bus driver). */
int bus_message_get_sender_uid(BusContext *c, sd_bus_message *message, uid_t *ret);

/* May the sender of message do action? Returns
 *   1: yes (uid 0, or polkit said so for this very message);
 *   0: polkit is being asked: the method handler must return 1 without replying; once polkit answers, the same
 *      message is dispatched again and this call then returns the answer;
 *  <0: no, or the check failed; error is set (AccessDenied, InteractiveAuthorizationRequired,
 *      LimitsExceeded, ...).
 * Nothing is cached beyond the message: a new call is a new check. */
int bus_verify_polkit_async(BusContext *c, sd_bus_message *message, const char *action, sd_bus_error *error);

/* The owner check for acting on somebody's reservation (Release, BindProcess): the sender passes if its uid is
 * owner_uid or 0, or if polkit grants action (normally POLKIT_ACTION_RELEASE_ANY). what names the object in
 * the AccessDenied message, e.g. "reservation vm1". Returns as bus_verify_polkit_async(). */
int bus_verify_owner_or_polkit(BusContext *c, sd_bus_message *message, uid_t owner_uid, const char *action,
                               const char *what, sd_bus_error *error);
