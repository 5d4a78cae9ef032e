/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Errors of the core. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"

int hp_error_set(HpError *e, HpErrorCode code, const char *format, ...) {
        static const int errnos[_HP_ERROR_MAX] = {
                [HP_OK] = 0,
                [HP_ERROR_INVALID_ARGS] = EINVAL,
                [HP_ERROR_INSUFFICIENT_PAGES] = ENOMEM,
                [HP_ERROR_UNSUPPORTED_PAGE_SIZE] = EOPNOTSUPP,
                [HP_ERROR_NO_SUCH_NODE] = ENXIO,
                [HP_ERROR_NO_SUCH_RESERVATION] = ENOENT,
                [HP_ERROR_RESERVATION_EXISTS] = EEXIST,
                [HP_ERROR_LIMIT_EXCEEDED] = EDQUOT,
                [HP_ERROR_ACCESS_DENIED] = EACCES,
                [HP_ERROR_FAILED] = EIO,
        };
        if (e && e->code == HP_OK) {
                va_list ap;
                e->code = code;
                va_start(ap, format);
                (void) vsnprintf(e->message, sizeof(e->message), format, ap);
                va_end(ap);
        }
        return -errnos[code];
}

void hp_error_append(HpError *e, const char *format, ...) {
        size_t n;
        va_list ap;

        if (!e || e->code == HP_OK)
                return;
        n = strlen(e->message);
        if (n + 1 >= sizeof(e->message))
                return;
        va_start(ap, format);
        (void) vsnprintf(e->message + n, sizeof(e->message) - n, format, ap);
        va_end(ap);
}
