/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl as a test runs it: the built binary, on a given bus, with extra environment. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* $HUGEPAGECTL_BIN, or the build tree's hugepagectl. */
char *hp_ctl_bin(void);

/* argv of hugepagectl with args (NULL-terminated), and the environment with DBUS_SYSTEM_BUS_ADDRESS=bus_address
 * (unless NULL) and env's "KEY=VALUE" entries (may be NULL). */
GStrv hp_ctl_argv(const char *const *args);
GStrv hp_ctl_env(const char *bus_address, const char *const *env);

/* Runs it to the end; asserts it exited (not killed), logs its output, returns its exit status. */
int hp_ctl_run(const char *bus_address, const char *const *env, char **ret_out, char **ret_err,
               const char *const *args);

G_END_DECLS
