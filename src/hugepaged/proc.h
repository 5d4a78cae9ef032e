/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Facts about real processes, from the host's /proc (never the fake kernel root). */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* Field 22 of /proc/PID/stat, in clock ticks since boot: with the pid, an identity that survives restarts. */
int proc_pid_starttime(pid_t pid, uint64_t *ret);
