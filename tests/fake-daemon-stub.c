/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Stand-in for hugepaged used by test-harness-selftest: takes org.hugepaged1 on $DBUS_SYSTEM_BUS_ADDRESS,
 * sends READY=1 to $NOTIFY_SOCKET, logs what it was given and exits on SIGTERM. Its --stub-* options let the
 * self-test drive the harness' failure paths. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>

#include "hugepaged-bus-api.h"

#define BUS_NAME HP_BUS_NAME

static int exit_code;

static void notify(const char *msg) {
        const char *path = g_getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len;
        int fd;

        if (!path)
                return;
        len = strlen(path);
        if (len >= sizeof sa.sun_path) {
                fprintf(stderr, "stub: NOTIFY_SOCKET too long\n");
                return;
        }
        memcpy(sa.sun_path, path, len);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = '\0';
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *) &sa,
                             (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len)) < 0)
                fprintf(stderr, "stub: notify %s: %s\n", msg, g_strerror(errno));
        if (fd >= 0)
                close(fd);
}

static GDBusConnection *connect_bus(void) {
        const char *address = g_getenv("DBUS_SYSTEM_BUS_ADDRESS");
        g_autoptr(GError) error = NULL;
        GDBusConnection *c;

        if (!address) {
                fprintf(stderr, "stub: DBUS_SYSTEM_BUS_ADDRESS not set\n");
                exit(1);
        }
        c = g_dbus_connection_new_for_address_sync(address,
                                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                   NULL, NULL, &error);
        if (!c) {
                fprintf(stderr, "stub: cannot connect to %s: %s\n", address, error->message);
                exit(1);
        }
        return c;
}

/* Returns 0 when we became the primary owner, 3 when the bus policy refused, 1 otherwise. */
static int request_name(GDBusConnection *c, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        guint32 r;

        reply = g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "RequestName",
                                            g_variant_new("(su)", name, 4 /* DO_NOT_QUEUE */),
                                            G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL,
                                            &error);
        if (!reply) {
                fprintf(stderr, "stub: RequestName %s: %s\n", name, error->message);
                return g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED) ? 3 : 1;
        }
        g_variant_get(reply, "(u)", &r);
        printf("stub: RequestName %s -> %u\n", name, r);
        return r == 1 ? 0 : 1;
}

static gboolean on_sigterm(gpointer loop) {
        printf("stub: SIGTERM, exiting with %d\n", exit_code);
        notify("STOPPING=1");
        g_main_loop_quit(loop);
        return G_SOURCE_REMOVE;
}

static gboolean on_watchdog(gpointer unused) {
        notify("WATCHDOG=1");
        return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv) {
        g_autoptr(GMainLoop) loop = NULL;
        g_autoptr(GDBusConnection) conn = NULL;
        const char *extra_notify = NULL, *try_own = NULL;
        int exit_early = -1;
        unsigned watchdog_ms = 0;

        /* The log is a file: line-buffer so a SIGKILLed stub still leaves its lines behind. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];

                printf("stub: arg %s\n", a);
                if (g_str_has_prefix(a, "--config=")) {
                        struct stat st;

                        if (stat(a + strlen("--config="), &st) == 0)
                                printf("stub: config size=%lld\n", (long long) st.st_size);
                        else
                                printf("stub: config missing\n");
                } else if (g_str_has_prefix(a, "--stub-exit-code=")) {
                        exit_code = atoi(a + strlen("--stub-exit-code="));
                } else if (g_str_has_prefix(a, "--stub-exit-early=")) {
                        exit_early = atoi(a + strlen("--stub-exit-early="));
                } else if (g_str_has_prefix(a, "--stub-watchdog-ms=")) {
                        watchdog_ms = (unsigned) atoi(a + strlen("--stub-watchdog-ms="));
                } else if (g_str_has_prefix(a, "--stub-notify=")) {
                        extra_notify = a + strlen("--stub-notify=");
                } else if (g_str_has_prefix(a, "--stub-try-own=")) {
                        try_own = a + strlen("--stub-try-own=");
                }
        }
        printf("stub: uid=%d DBUS_SYSTEM_BUS_ADDRESS=%s\n", (int) getuid(),
               g_getenv("DBUS_SYSTEM_BUS_ADDRESS") ?: "(unset)");
        printf("stub: NOTIFY_SOCKET=%s\n", g_getenv("NOTIFY_SOCKET") ?: "(unset)");
        printf("stub: WATCHDOG_USEC=%s\n", g_getenv("WATCHDOG_USEC") ?: "(unset)");
        fprintf(stderr, "stub: this line went to stderr\n");

        if (try_own) {
                conn = connect_bus();
                return request_name(conn, try_own);
        }
        if (exit_early >= 0) {
                printf("stub: exiting early with %d\n", exit_early);
                return exit_early;
        }

        loop = g_main_loop_new(NULL, FALSE);
        g_unix_signal_add(SIGTERM, on_sigterm, loop);
        conn = connect_bus();
        if (request_name(conn, BUS_NAME) != 0)
                return 1;
        notify("READY=1");
        if (extra_notify)
                notify(extra_notify);
        if (watchdog_ms > 0)
                g_timeout_add(watchdog_ms, on_watchdog, NULL);
        g_main_loop_run(loop);
        return exit_code;
}
