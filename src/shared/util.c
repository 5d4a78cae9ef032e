/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing and formatting helpers. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "macro.h"
#include "util.h"

int parse_u64(const char *s, uint64_t *ret) {
        char *end = NULL;
        unsigned long long v;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno != 0 || end == s)
                return -EINVAL;
        /* Kernel files end in a newline; nothing else may follow the digits. */
        while (*end == '\n' || *end == ' ')
                end++;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_u32(const char *s, uint32_t *ret) {
        uint64_t v;
        int r = parse_u64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 0;
}

int parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "1", "yes", "true", "on", "y" };
        static const char *const no[] = { "0", "no", "false", "off", "n" };
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                unsigned shift;
        } units[] = {
                { "", 0 },    { "b", 0 },    { "k", 10 },   { "kb", 10 },  { "kib", 10 }, { "m", 20 },
                { "mb", 20 }, { "mib", 20 }, { "g", 30 },   { "gb", 30 },  { "gib", 30 }, { "t", 40 },
                { "tb", 40 }, { "tib", 40 }, { "p", 50 },   { "pb", 50 },  { "pib", 50 },
        };
        char *end = NULL;
        unsigned long long v;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno != 0 || end == s)
                return -EINVAL;
        while (*end == ' ')
                end++;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (strcasecmp(end, units[i].suffix) != 0)
                        continue;
                if (units[i].shift > 0 && v > (UINT64_MAX >> units[i].shift))
                        return -ERANGE;
                *ret = (uint64_t) v << units[i].shift;
                return 0;
        }
        return -EINVAL;
}

char *format_size(char *buf, size_t len, uint64_t bytes) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        size_t i = 0;
        uint64_t v = bytes;

        while (v >= 1024 && i + 1 < ELEMENTSOF(units)) {
                if (v % 1024 != 0)
                        break;
                v /= 1024;
                i++;
        }
        if (v < 1024 || i + 1 == ELEMENTSOF(units)) {
                snprintf(buf, len, "%" PRIu64 " %s", v, units[i]);
                return buf;
        }

        /* Not a whole number of the next unit: one decimal is enough for people. */
        double d = (double) bytes;
        i = 0;
        while (d >= 1024.0 && i + 1 < ELEMENTSOF(units)) {
                d /= 1024.0;
                i++;
        }
        snprintf(buf, len, "%.1f %s", d, units[i]);
        return buf;
}

static int node_cmp(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

int parse_node_list(const char *s, uint32_t **ret, size_t *ret_n) {
        _cleanup_free_ uint32_t *nodes = NULL;
        size_t n = 0;
        const char *p = s;

        if (!s)
                return -EINVAL;
        while (*p == ' ' || *p == '\n')
                p++;
        while (*p != '\0') {
                char *end;
                unsigned long a, b;

                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                a = strtoul(p, &end, 10);
                b = a;
                if (*end == '-') {
                        p = end + 1;
                        if (!isdigit((unsigned char) *p))
                                return -EINVAL;
                        b = strtoul(p, &end, 10);
                }
                if (a > b || b >= NODE_MAX)
                        return -ERANGE;
                for (unsigned long i = a; i <= b; i++) {
                        uint32_t *t = realloc(nodes, (n + 1) * sizeof(*nodes));
                        if (!t)
                                return -ENOMEM;
                        nodes = t;
                        nodes[n++] = (uint32_t) i;
                }
                p = end;
                if (*p == ',') {
                        p++;
                        /* "0," is not a list the kernel writes; the loop above only checks what follows. */
                        if (*p == '\0')
                                return -EINVAL;
                } else {
                        while (*p == ' ' || *p == '\n')
                                p++;
                        if (*p != '\0')
                                return -EINVAL;
                }
        }

        if (n > 0) {
                size_t k = 0;
                qsort(nodes, n, sizeof(*nodes), node_cmp);
                for (size_t i = 0; i < n; i++)
                        if (k == 0 || nodes[k - 1] != nodes[i])
                                nodes[k++] = nodes[i];
                n = k;
        }
        *ret = TAKE_PTR(nodes);
        *ret_n = n;
        return 0;
}

bool reservation_name_is_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n < 1 || n > RESERVATION_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!(isascii((unsigned char) c) && isalnum((unsigned char) c)) && !strchr("._:@+-", c))
                        return false;
        }
        return true;
}

uint64_t now_usec(int clock) {
        struct timespec ts;
        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
void unescape_octal(char *s) {
        char *w = s;
        for (char *r = s; *r; ) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
                    r[3] <= '7') {
                        *w++ = (char) (((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
                        r += 4;
                } else
                        *w++ = *r++;
        }
        *w = '\0';
}
