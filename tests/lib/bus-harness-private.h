/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What bus-harness.c and test-daemon.c share inside the harness: timeouts, failure reporting, the log registry
 * and child processes. Not for tests. */
#pragma once

#include <sys/types.h>

#include <gio/gio.h>

#include "bus-harness.h"

#define START_TIMEOUT_MS 15000
#define STOP_TIMEOUT_MS 10000
#define READY_GRACE_MS 5000

/* Reports through GTest rather than g_error(): honours g_test_set_nonfatal_assertions() and dies by SIGABRT
 * (which our handler catches) instead of SIGTRAP. */
#define harness_fail(...)                                                                               \
        G_STMT_START {                                                                                  \
                g_autofree char *_msg = g_strdup_printf(__VA_ARGS__);                                   \
                g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, _msg);                 \
        } G_STMT_END

struct TestBus {
        char *dir;
        char *log_path;
        char *address;
        char *saved_address;    /* DBUS_SYSTEM_BUS_ADDRESS before us, restored on stop */
        GPid pid;
        int log_slot;
        int address_fd;         /* read end of --print-address; kept open so the daemon never gets EPIPE */
        GDBusConnection *conn;  /* the harness' own, for watching name owners */
};

int harness_log_register(const char *what, pid_t pid, const char *path);
void harness_log_unregister(int slot);
void harness_dump_log_once(int slot);
GPid harness_spawn_child(char **argv, char **envp, int stdout_fd, int stderr_fd);
gboolean harness_reap(pid_t pid, int *status, guint timeout_ms);
int harness_decode_status(int status);
int harness_open_log(const char *path);
const char *harness_require_env(const char *name);
char **harness_child_environ(void);
