/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client side of org.hugepaged1 shared by hugepagectl, hugepaged-reserve and the libvirt hook: connecting,
 * Reserve's options, and the one table from error names to what they mean for a client. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bus-client.h"
#include "macro.h"

int bus_client_connect(const char *address, uint64_t timeout_usec, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (address) {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, true);
                if (r >= 0)
                        r = sd_bus_start(bus);
        } else
                r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        if (timeout_usec > 0)
                (void) sd_bus_set_method_call_timeout(bus, timeout_usec);
        *ret = TAKE_PTR(bus);
        return 0;
}

int bus_call_manager(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **reply,
                     const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, HP_BUS_NAME, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, method);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        return sd_bus_call(bus, m, 0, error, reply);
}

/* Opens the dict entry KEY and its variant of SIGNATURE; the caller appends the value and closes both. */
static int open_option(sd_bus_message *m, const char *key, const char *signature) {
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", key);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', signature);
        return r;
}

int bus_append_reserve_options(sd_bus_message *m, const ReserveOptions *o) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (o->n_nodes > 0) {
                r = open_option(m, "nodes", "au");
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'u', o->nodes, o->n_nodes * sizeof(uint32_t));
                for (int k = 0; r >= 0 && k < 2; k++)
                        r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
        }
        if (o->n_node_bytes > 0) {
                r = open_option(m, "node_bytes", "a(ut)");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "(ut)");
                for (size_t i = 0; r >= 0 && i < o->n_node_bytes; i++)
                        r = sd_bus_message_append(m, "(ut)", o->node_bytes[i].node, o->node_bytes[i].amount);
                for (int k = 0; r >= 0 && k < 3; k++)
                        r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
        }
        if (o->lifetime) {
                r = sd_bus_message_append(m, "{sv}", "lifetime", "s", o->lifetime);
                if (r < 0)
                        return r;
        }
        if (o->pid > 0) {
                r = sd_bus_message_append(m, "{sv}", "pid", "u", o->pid);
                if (r < 0)
                        return r;
        }
        if (o->hold) {
                r = sd_bus_message_append(m, "{sv}", "hold", "b", 1);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

int bus_call_reserve(sd_bus *bus, const char *name, uint64_t page_size, uint64_t bytes, const ReserveOptions *o,
                     sd_bus_error *error, sd_bus_message **reply) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, HP_BUS_NAME, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "Reserve");
        if (r >= 0)
                r = sd_bus_message_append(m, "stt", name, page_size, bytes);
        if (r >= 0)
                r = bus_append_reserve_options(m, o);
        if (r < 0)
                return r;
        return sd_bus_call(bus, m, 0, error, reply);
}

/* The one table of error names a client tells apart; any other name is BUS_ERROR_OTHER. */
static const struct {
        const char *name;
        BusErrorKind kind;
} error_table[] = {
        { SD_BUS_ERROR_SERVICE_UNKNOWN, BUS_ERROR_NOT_RUNNING },
        { SD_BUS_ERROR_NAME_HAS_NO_OWNER, BUS_ERROR_NOT_RUNNING },
        { SD_BUS_ERROR_DISCONNECTED, BUS_ERROR_UNREACHABLE },
        { SD_BUS_ERROR_NO_REPLY, BUS_ERROR_TIMEOUT },
        { SD_BUS_ERROR_INVALID_ARGS, BUS_ERROR_INVALID },
        { HP_BUS_ERROR_UNSUPPORTED_PAGE_SIZE, BUS_ERROR_INVALID },
        { HP_BUS_ERROR_NO_SUCH_NODE, BUS_ERROR_INVALID },
        { HP_BUS_ERROR_NO_SUCH_RESERVATION, BUS_ERROR_NOT_FOUND },
        { HP_BUS_ERROR_INSUFFICIENT_PAGES, BUS_ERROR_NO_PAGES },
        { HP_BUS_ERROR_LIMIT_EXCEEDED, BUS_ERROR_NO_PAGES },
        { HP_BUS_ERROR_RESERVATION_EXISTS, BUS_ERROR_EXISTS },
};

static const int exit_status_table[_BUS_ERROR_KIND_MAX] = {
        [BUS_ERROR_OTHER] = EXIT_FAIL,
        [BUS_ERROR_NOT_RUNNING] = EXIT_UNREACHABLE,
        [BUS_ERROR_UNREACHABLE] = EXIT_UNREACHABLE,
        [BUS_ERROR_TIMEOUT] = EXIT_FAIL,
        [BUS_ERROR_INVALID] = EXIT_USAGE,
        [BUS_ERROR_NOT_FOUND] = EXIT_NOT_FOUND,
        [BUS_ERROR_NO_PAGES] = EXIT_NO_PAGES,
        [BUS_ERROR_EXISTS] = EXIT_FAIL,
};

BusErrorKind bus_error_kind(const sd_bus_error *e, int r) {
        if (e && sd_bus_error_is_set(e)) {
                for (size_t i = 0; i < ELEMENTSOF(error_table); i++)
                        if (sd_bus_error_has_name(e, error_table[i].name))
                                return error_table[i].kind;
                return r == -ETIMEDOUT ? BUS_ERROR_TIMEOUT : BUS_ERROR_OTHER;
        }
        switch (-r) {
        case ENOENT:
        case ECONNREFUSED:
        case ECONNRESET:
        case ENOTCONN:
        case EPIPE:
        case EACCES:
                return BUS_ERROR_UNREACHABLE;
        case ETIMEDOUT:
                return BUS_ERROR_TIMEOUT;
        default:
                return BUS_ERROR_OTHER;
        }
}

int bus_error_exit_status(const sd_bus_error *e, int r) {
        return exit_status_table[bus_error_kind(e, r)];
}

const char *bus_error_reason(const sd_bus_error *e, int r, const char *where, char *buf, size_t len) {
        if (bus_error_kind(e, r) == BUS_ERROR_NOT_RUNNING)
                snprintf(buf, len, "hugepaged is not running (%s is not on %s)", HP_BUS_NAME, where);
        else if (e && sd_bus_error_is_set(e))
                snprintf(buf, len, "%s", e->message ?: e->name);
        else
                snprintf(buf, len, "%s", strerror(-r));
        return buf;
}
