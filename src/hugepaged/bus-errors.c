/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The D-Bus names of the core's errors, registered with sd_bus_error_add_map so errno values map too. */
#include <errno.h>
#include <string.h>

#include "bus-errors.h"

const sd_bus_error_map hugepaged_error_map[] = {
        SD_BUS_ERROR_MAP(BUS_ERROR_INSUFFICIENT_PAGES, ENOMEM),
        SD_BUS_ERROR_MAP(BUS_ERROR_UNSUPPORTED_PAGE_SIZE, EOPNOTSUPP),
        SD_BUS_ERROR_MAP(BUS_ERROR_NO_SUCH_NODE, ENXIO),
        SD_BUS_ERROR_MAP(BUS_ERROR_NO_SUCH_RESERVATION, ENOENT),
        SD_BUS_ERROR_MAP(BUS_ERROR_RESERVATION_EXISTS, EEXIST),
        SD_BUS_ERROR_MAP(BUS_ERROR_LIMIT_EXCEEDED, EDQUOT),
        SD_BUS_ERROR_MAP_END,
};

int bus_error_from_hp(sd_bus_error *ret_error, const HpError *e) {
        static const char *const names[_HP_ERROR_MAX] = {
                [HP_ERROR_INVALID_ARGS] = SD_BUS_ERROR_INVALID_ARGS,
                [HP_ERROR_INSUFFICIENT_PAGES] = BUS_ERROR_INSUFFICIENT_PAGES,
                [HP_ERROR_UNSUPPORTED_PAGE_SIZE] = BUS_ERROR_UNSUPPORTED_PAGE_SIZE,
                [HP_ERROR_NO_SUCH_NODE] = BUS_ERROR_NO_SUCH_NODE,
                [HP_ERROR_NO_SUCH_RESERVATION] = BUS_ERROR_NO_SUCH_RESERVATION,
                [HP_ERROR_RESERVATION_EXISTS] = BUS_ERROR_RESERVATION_EXISTS,
                [HP_ERROR_LIMIT_EXCEEDED] = BUS_ERROR_LIMIT_EXCEEDED,
                [HP_ERROR_ACCESS_DENIED] = SD_BUS_ERROR_ACCESS_DENIED,
                [HP_ERROR_FAILED] = SD_BUS_ERROR_FAILED,
        };
        HpErrorCode code = e->code > HP_OK && e->code < _HP_ERROR_MAX ? e->code : HP_ERROR_FAILED;
        return sd_bus_error_set(ret_error, names[code], e->message[0] ? e->message : "failed");
}

int bus_method_result(sd_bus_error *error, int r) {
        if (r >= 0 || sd_bus_error_is_set(error))
                return r;
        if (r == -ENOMEM)
                return sd_bus_error_set(error, SD_BUS_ERROR_NO_MEMORY, "out of memory");
        /* What sd-bus's readers return for a message that doesn't have the shape we asked for. */
        if (r == -EBADMSG || r == -ENXIO || r == -EINVAL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "malformed arguments: %s", strerror(-r));
        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "internal error: %s", strerror(-r));
}
