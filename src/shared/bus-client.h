/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every client of org.hugepaged1 does the same way (hugepagectl, the reservation helper, the libvirt hook):
 * connect, build Reserve's options dictionary, call the Manager, and classify a failed call from its error name,
 * with the one table of error names in bus-client.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "hugepaged-bus-api.h"
#include "util.h"

/* What went wrong with a call, as far as a client needs to tell. */
typedef enum BusErrorKind {
        BUS_ERROR_OTHER,         /* anything else: the daemon's message says it */
        BUS_ERROR_NOT_RUNNING,   /* nobody owns HP_BUS_NAME */
        BUS_ERROR_UNREACHABLE,   /* no bus, or it went away */
        BUS_ERROR_TIMEOUT,       /* no answer in time */
        BUS_ERROR_INVALID,       /* arguments the daemon rejected */
        BUS_ERROR_NOT_FOUND,     /* no such reservation */
        BUS_ERROR_NO_PAGES,      /* not enough pages, or a limit reached */
        BUS_ERROR_EXISTS,        /* a reservation by that name exists */
        _BUS_ERROR_KIND_MAX,
} BusErrorKind;

/* hugepagectl's documented exit statuses (hugepagectl --help); the reservation helper uses 0, 1 and 2. */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,
        EXIT_USAGE = 2,
        EXIT_NOT_FOUND = 3,
        EXIT_NO_PAGES = 4,
        EXIT_UNREACHABLE = 5,
};

/* The options of Reserve (org.hugepaged1(5)); an empty field is left out of the dictionary. */
typedef struct ReserveOptions {
        const uint32_t *nodes;          /* "nodes" au */
        size_t n_nodes;
        const NodeAmount *node_bytes;   /* "node_bytes" a(ut): bytes per node */
        size_t n_node_bytes;
        const char *lifetime;           /* "lifetime" s, or NULL */
        uint32_t pid;                   /* "pid" u, when > 0 */
        bool hold;                      /* "hold" b, when true */
} ReserveOptions;

/* address NULL: the system bus, or the one DBUS_SYSTEM_BUS_ADDRESS names. timeout_usec 0: sd-bus's default. */
int bus_client_connect(const char *address, uint64_t timeout_usec, sd_bus **ret);

/* A call of a Manager method; types and the arguments after it as sd_bus_message_append() takes them. */
int bus_call_manager(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **reply,
                     const char *types, ...);

/* The options dictionary on its own, and a whole Reserve call (name, page size, bytes, options). */
int bus_append_reserve_options(sd_bus_message *m, const ReserveOptions *o);
int bus_call_reserve(sd_bus *bus, const char *name, uint64_t page_size, uint64_t bytes, const ReserveOptions *o,
                     sd_bus_error *error, sd_bus_message **reply);

BusErrorKind bus_error_kind(const sd_bus_error *e, int r);
int bus_error_exit_status(const sd_bus_error *e, int r);

/* Why a call failed, for the end of a client's one line: "hugepaged is not running (org.hugepaged1 is not on
 * WHERE)", the daemon's own message, or the errno's text. Returns buf. */
const char *bus_error_reason(const sd_bus_error *e, int r, const char *where, char *buf, size_t len);
