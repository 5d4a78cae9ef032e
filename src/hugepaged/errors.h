/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Errors of the core, with a message for people; bus-errors.c maps them to D-Bus error names. */
#pragma once

#include "macro.h"

typedef enum HpErrorCode {
        HP_OK,
        HP_ERROR_INVALID_ARGS,
        HP_ERROR_INSUFFICIENT_PAGES,
        HP_ERROR_UNSUPPORTED_PAGE_SIZE,
        HP_ERROR_NO_SUCH_NODE,
        HP_ERROR_NO_SUCH_RESERVATION,
        HP_ERROR_RESERVATION_EXISTS,
        HP_ERROR_LIMIT_EXCEEDED,
        HP_ERROR_ACCESS_DENIED,
        HP_ERROR_FAILED,
        _HP_ERROR_MAX,
} HpErrorCode;

typedef struct HpError {
        HpErrorCode code;
        char message[512];
} HpError;

/* Records the first error only and returns -EINVAL-ish errno for the code, for "return hp_error_set(...)". */
int hp_error_set(HpError *e, HpErrorCode code, const char *format, ...) _printf_(3, 4);
/* Adds to the message of an error that is set; what does not fit is cut. */
void hp_error_append(HpError *e, const char *format, ...) _printf_(2, 3);
