/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How long a reservation lives: until released, until its bus caller leaves, or until its process exits. Shared by
 * the core and the state file; the names are those of the bus API and the file. */
#pragma once

typedef enum Lifetime {
        LIFETIME_EXPLICIT,
        LIFETIME_CALLER,
        LIFETIME_PID,
        _LIFETIME_MAX,
        _LIFETIME_INVALID = -1,
} Lifetime;

/* reservation.c */
const char *lifetime_to_string(Lifetime l);
Lifetime lifetime_from_string(const char *s);
