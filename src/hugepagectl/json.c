/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl's JSON emitter: separators by depth, and strings escaped so that whatever the daemon put in a message,
 * the output is valid JSON. */
#include <inttypes.h>

#include "json.h"

static void json_sep(Json *j) {
        if (j->after_key) {
                j->after_key = false;
                return;
        }
        if (j->depth > 0 && j->need_comma[j->depth])
                fputc(',', j->f);
        if (j->depth > 0)
                j->need_comma[j->depth] = true;
}

/* Valid UTF-8 passes through; control characters are escaped and invalid bytes become U+FFFD, so the output is
 * always valid JSON whatever the daemon put in a message. */
static void json_string_raw(FILE *f, const char *s) {
        const unsigned char *p = (const unsigned char *) (s ?: "");

        fputc('"', f);
        while (*p) {
                unsigned char c = *p;
                size_t n = 0;

                if (c == '"' || c == '\\') {
                        fputc('\\', f);
                        fputc(c, f);
                        p++;
                        continue;
                }
                if (c < 0x20 || c == 0x7f) {
                        switch (c) {
                        case '\n': fputs("\\n", f); break;
                        case '\t': fputs("\\t", f); break;
                        case '\r': fputs("\\r", f); break;
                        default: fprintf(f, "\\u%04x", c); break;
                        }
                        p++;
                        continue;
                }
                if (c < 0x80) {
                        fputc(c, f);
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 2;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 3;
                bool ok = n > 0;
                for (size_t i = 1; ok && i <= n; i++)
                        ok = (p[i] & 0xc0) == 0x80;
                /* Overlong forms and surrogates. */
                if (ok && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) ||
                           (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f)))
                        ok = false;
                if (!ok) {
                        fputs("\\ufffd", f);
                        p++;
                        continue;
                }
                fwrite(p, 1, n + 1, f);
                p += n + 1;
        }
        fputc('"', f);
}

void json_begin(Json *j, char c) {
        json_sep(j);
        fputc(c, j->f);
        if (j->depth + 1 < JSON_DEPTH_MAX)
                j->depth++;
        j->need_comma[j->depth] = false;
}

void json_end(Json *j, char c) {
        fputc(c, j->f);
        if (j->depth > 0)
                j->depth--;
        if (j->depth == 0)
                fputc('\n', j->f);
}


void json_key(Json *j, const char *key) {
        json_sep(j);
        json_string_raw(j->f, key);
        fputc(':', j->f);
        j->after_key = true;
}

void json_string(Json *j, const char *s) {
        json_sep(j);
        json_string_raw(j->f, s);
}

void json_u64(Json *j, uint64_t v) {
        json_sep(j);
        fprintf(j->f, "%" PRIu64, v);
}

void json_i64(Json *j, int64_t v) {
        json_sep(j);
        fprintf(j->f, "%" PRIi64, v);
}

void json_double(Json *j, double v) {
        json_sep(j);
        fprintf(j->f, "%.17g", v);
}

void json_bool(Json *j, bool v) {
        json_sep(j);
        fputs(v ? "true" : "false", j->f);
}

void json_null(Json *j) {
        json_sep(j);
        fputs("null", j->f);
}
