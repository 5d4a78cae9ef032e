/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Leveled logging to stderr. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static int max_level = LOG_INFO;
static int journal_prefix = -1;
static const char *program_name = "hugepaged";

void log_set_program_name(const char *name) {
        program_name = name;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = {
                [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
                [LOG_ERR] = "err",     [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
        };
        if (!s)
                return -EINVAL;
        if (strcasecmp(s, "error") == 0)
                return LOG_ERR;
        if (strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

int log_internal(int level, int error, const char *format, ...) {
        static const char *const prefixes[] = {
                "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
        };
        int saved = errno;
        int e = error < 0 ? -error : error;

        if (level <= max_level) {
                char buf[2048];
                va_list ap;

                /* Let "%m" in a format refer to the error passed in, as in systemd. */
                errno = e;
                va_start(ap, format);
                (void) vsnprintf(buf, sizeof(buf), format, ap);
                va_end(ap);

                /* journald parses "<N>" when stderr is a journal stream; on a terminal the words read better. */
                if (journal_prefix < 0)
                        journal_prefix = getenv("JOURNAL_STREAM") != NULL;
                if (journal_prefix)
                        fprintf(stderr, "<%d>%s\n", level & LOG_PRIMASK, buf);
                else
                        fprintf(stderr, "%s[%s]: %s\n", program_name, prefixes[level & LOG_PRIMASK], buf);
                fflush(stderr);
        }

        errno = saved;
        return -e;
}
