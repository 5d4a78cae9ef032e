/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Configuration parsing with libinih. Values are checked here, so the rest of the daemon can trust them. */
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "util.h"

#define DROPIN_MAX 256

void config_init(Config *c) {
        *c = (Config) {
                .max_reservations = CONFIG_MAX_RESERVATIONS_DEFAULT,
                .refresh_interval_usec = 10 * 1000000ULL,
                .log_level = -1,
                .alloc_attempts = 5,
                .alloc_timeout_usec = 120 * 1000000ULL,
                .compaction = true,
                .max_reservations_per_user = CONFIG_MAX_RESERVATIONS_PER_USER_DEFAULT,
                .max_bytes_per_user = CONFIG_UNLIMITED,
                .max_reserved_bytes = CONFIG_UNLIMITED,
        };
}

void config_done(Config *c) {
        free(c->pools);
        c->pools = NULL;
        c->n_pools = 0;
}

typedef struct ParseContext {
        Config *config;
        FILE *f;
        int line;       /* counted by config_reader() as inih counts, since inih doesn't tell the handler */
        int error_line; /* where error[] was set */
        char error[256];
} ParseContext;

static char *config_reader(char *str, int num, void *stream) {
        ParseContext *ctx = stream;
        char *s = fgets(str, num, ctx->f);
        if (s)
                ctx->line++;
        return s;
}

static int parse_seconds(const char *v, uint64_t max_sec, uint64_t *ret_usec) {
        uint64_t s;
        int r = parse_u64(v, &s);
        if (r < 0)
                return r;
        if (s > max_sec)
                return -ERANGE;
        *ret_usec = s * 1000000ULL;
        return 0;
}

static bool is_infinity(const char *v) {
        return strcasecmp(v, "infinity") == 0;
}

#define SHRINK_DELAY_MAX_SEC (30U * 24 * 3600)

static int parse_delay(const char *v, uint64_t *ret_usec) {
        if (is_infinity(v)) {
                *ret_usec = CONFIG_INFINITY;
                return 0;
        }
        return parse_seconds(v, SHRINK_DELAY_MAX_SEC, ret_usec);
}

/* A size ("16G", "2048kB", bytes) or "infinity". */
static int parse_size_limit(const char *v, uint64_t *ret) {
        if (is_infinity(v)) {
                *ret = CONFIG_UNLIMITED;
                return 0;
        }
        return parse_size(v, ret);
}

/* "50%", a size, or "infinity". */
static int parse_reserved_limit(const char *v, uint64_t *ret_bytes, unsigned *ret_percent) {
        size_t l = strlen(v);
        uint64_t u;

        if (l > 1 && v[l - 1] == '%') {
                char num[16];
                if (l - 1 >= sizeof(num))
                        return -EINVAL;
                memcpy(num, v, l - 1);
                num[l - 1] = '\0';
                if (parse_u64(num, &u) < 0 || u < 1 || u > 100)
                        return -ERANGE;
                *ret_percent = (unsigned) u;
                *ret_bytes = CONFIG_UNLIMITED;
                return 0;
        }
        if (parse_size_limit(v, &u) < 0)
                return -EINVAL;
        *ret_percent = 0;
        *ret_bytes = u;
        return 0;
}

uint64_t config_max_reserved_bytes(const Config *c, uint64_t mem_total) {
        if (c->max_reserved_percent == 0)
                return c->max_reserved_bytes;
        /* Exactly floor(mem_total * percent / 100), without the product, which could overflow. */
        return mem_total / 100 * c->max_reserved_percent + mem_total % 100 * c->max_reserved_percent / 100;
}

/* "[Pool 2M]" or "[Pool 2M node1]" or "[Pool 1G 1]". */
static int parse_pool_section(const char *section, uint64_t *ret_size, int *ret_node) {
        char size[32] = "", node[32] = "", extra[2] = "";
        uint64_t ps;
        /* The caller matched "Pool " case-insensitively, like every other section name. */
        int n = sscanf(section + 5, "%31s %31s %1s", size, node, extra);

        if (n < 1 || n > 2)
                return -EINVAL;
        if (parse_size(size, &ps) < 0 || ps == 0 || (ps & (ps - 1)) != 0 || ps < 4096)
                return -EINVAL;
        *ret_size = ps;
        *ret_node = CONFIG_NODE_ANY;
        if (n == 2) {
                uint32_t v;
                const char *p = strncasecmp(node, "node", 4) == 0 ? node + 4 : node;
                if (parse_u32(p, &v) < 0 || v >= NODE_MAX)
                        return -EINVAL;
                *ret_node = (int) v;
        }
        return 0;
}

static PoolConfig *config_pool(Config *c, uint64_t page_size, int node) {
        for (size_t i = 0; i < c->n_pools; i++)
                if (c->pools[i].page_size == page_size && c->pools[i].node == node)
                        return &c->pools[i];
        PoolConfig *t = realloc(c->pools, (c->n_pools + 1) * sizeof(*t));
        if (!t)
                return NULL;
        c->pools = t;
        c->pools[c->n_pools] = (PoolConfig) { .page_size = page_size, .node = node };
        return &c->pools[c->n_pools++];
}

#define FAIL(ctx, ...)                                                                     \
        ({                                                                                 \
                if ((ctx)->error[0] == '\0') {                                             \
                        snprintf((ctx)->error, sizeof((ctx)->error), __VA_ARGS__);         \
                        (ctx)->error_line = (ctx)->line;                                   \
                }                                                                          \
                0;                                                                         \
        })

static int handler(void *user, const char *section, const char *name, const char *value) {
        ParseContext *ctx = user;
        Config *c = ctx->config;
        uint64_t u;

        if (strcasecmp(section, "Daemon") == 0) {
                if (strcasecmp(name, "MaxReservations") == 0) {
                        if (parse_u64(value, &u) < 0 || u < 1 || u > CONFIG_MAX_RESERVATIONS_MAX)
                                return FAIL(ctx, "MaxReservations=%s: expected 1..%u", value,
                                            CONFIG_MAX_RESERVATIONS_MAX);
                        c->max_reservations = (unsigned) u;
                } else if (strcasecmp(name, "RefreshIntervalSec") == 0) {
                        if (parse_seconds(value, 86400, &c->refresh_interval_usec) < 0)
                                return FAIL(ctx, "RefreshIntervalSec=%s: expected 0..86400 seconds (0 = off)",
                                            value);
                } else if (strcasecmp(name, "LogLevel") == 0) {
                        int l = log_level_from_string(value);
                        if (l < 0)
                                return FAIL(ctx, "LogLevel=%s: expected err, warning, notice, info or debug",
                                            value);
                        c->log_level = l;
                } else
                        log_warning("unknown key %s in section [%s], ignoring", name, section);
        } else if (strcasecmp(section, "Allocation") == 0) {
                if (strcasecmp(name, "MaxAttempts") == 0) {
                        if (parse_u64(value, &u) < 0 || u < 1 || u > 100)
                                return FAIL(ctx, "MaxAttempts=%s: expected 1..100", value);
                        c->alloc_attempts = (unsigned) u;
                } else if (strcasecmp(name, "TimeoutSec") == 0) {
                        if (parse_seconds(value, 3600, &c->alloc_timeout_usec) < 0 ||
                            c->alloc_timeout_usec == 0)
                                return FAIL(ctx, "TimeoutSec=%s: expected 1..3600 seconds", value);
                } else if (strcasecmp(name, "Compaction") == 0) {
                        if (parse_bool(value, &c->compaction) < 0)
                                return FAIL(ctx, "Compaction=%s: expected yes or no", value);
                } else if (strcasecmp(name, "DropCaches") == 0) {
                        if (parse_bool(value, &c->drop_caches) < 0)
                                return FAIL(ctx, "DropCaches=%s: expected yes or no", value);
                } else if (strcasecmp(name, "ShrinkDelaySec") == 0) {
                        if (parse_delay(value, &c->shrink_delay_usec) < 0)
                                return FAIL(ctx, "ShrinkDelaySec=%s: expected 0..%u seconds or infinity", value,
                                            SHRINK_DELAY_MAX_SEC);
                        c->has_shrink_delay = true;
                } else
                        log_warning("unknown key %s in section [%s], ignoring", name, section);
        } else if (strcasecmp(section, "Limits") == 0) {
                if (strcasecmp(name, "MaxReservationsPerUser") == 0) {
                        if (is_infinity(value))
                                c->max_reservations_per_user = UINT_MAX;
                        else if (parse_u64(value, &u) < 0 || u > CONFIG_MAX_RESERVATIONS_MAX)
                                return FAIL(ctx, "MaxReservationsPerUser=%s: expected 0..%u or infinity", value,
                                            CONFIG_MAX_RESERVATIONS_MAX);
                        else
                                c->max_reservations_per_user = (unsigned) u;
                } else if (strcasecmp(name, "MaxBytesPerUser") == 0) {
                        if (parse_size_limit(value, &c->max_bytes_per_user) < 0)
                                return FAIL(ctx, "MaxBytesPerUser=%s: expected a size such as 16G, or infinity",
                                            value);
                } else if (strcasecmp(name, "MaxReservedBytes") == 0) {
                        if (parse_reserved_limit(value, &c->max_reserved_bytes, &c->max_reserved_percent) < 0)
                                return FAIL(ctx, "MaxReservedBytes=%s: expected a percentage of RAM from 1%% to "
                                            "100%%, a size such as 16G, or infinity", value);
                } else
                        log_warning("unknown key %s in section [%s], ignoring", name, section);
        } else if (strncasecmp(section, "Pool ", 5) == 0) {
                uint64_t ps;
                int node;
                PoolConfig *p;

                if (parse_pool_section(section, &ps, &node) < 0)
                        return FAIL(ctx, "[%s]: expected [Pool SIZE] or [Pool SIZE nodeN], e.g. [Pool 2M node0]",
                                    section);
                p = config_pool(c, ps, node);
                if (!p)
                        return FAIL(ctx, "out of memory");
                if (strcasecmp(name, "MinPages") == 0) {
                        if (parse_u64(value, &p->min_pages) < 0)
                                return FAIL(ctx, "MinPages=%s: expected a number of pages", value);
                        p->has_min = true;
                } else if (strcasecmp(name, "MaxPages") == 0) {
                        if (parse_u64(value, &p->max_pages) < 0)
                                return FAIL(ctx, "MaxPages=%s: expected a number of pages", value);
                        p->has_max = true;
                } else if (strcasecmp(name, "KeepFreePages") == 0) {
                        if (parse_u64(value, &p->keep_free_pages) < 0)
                                return FAIL(ctx, "KeepFreePages=%s: expected a number of pages", value);
                        p->has_keep_free = true;
                } else if (strcasecmp(name, "ShrinkDelaySec") == 0) {
                        if (parse_delay(value, &p->shrink_delay_usec) < 0)
                                return FAIL(ctx, "ShrinkDelaySec=%s: expected 0..%u seconds or infinity", value,
                                            SHRINK_DELAY_MAX_SEC);
                        p->has_shrink_delay = true;
                } else if (strcasecmp(name, "Adopt") == 0) {
                        if (strcasecmp(value, "floor") == 0)
                                p->adopt_spare = false;
                        else if (strcasecmp(value, "spare") == 0)
                                p->adopt_spare = true;
                        else
                                return FAIL(ctx, "Adopt=%s: expected floor or spare", value);
                        p->has_adopt = true;
                } else
                        log_warning("unknown key %s in section [%s], ignoring", name, section);
                if (p->has_min && p->has_max && p->min_pages > p->max_pages)
                        return FAIL(ctx, "MinPages=%" PRIu64 " is above MaxPages=%" PRIu64, p->min_pages,
                                    p->max_pages);
        } else
                return FAIL(ctx, "unknown section [%s]", section);
        return 1;
}

static int config_load_one(Config *c, const char *path, bool must_exist) {
        ParseContext ctx = { .config = c };
        _cleanup_fclose_ FILE *f = NULL;
        int r;

        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT && !must_exist)
                        return 0;
                return log_error_errno(errno, "%s: cannot open configuration: %m", path);
        }
        ctx.f = f;
        r = ini_parse_stream(config_reader, &ctx, handler, &ctx);
        if (r < 0)
                return log_error_errno(ENOMEM, "%s: cannot parse configuration: out of memory", path);
        if (r > 0) {
                /* inih returns the first bad line, which may be a syntax error before the first bad value. */
                log_error("%s:%d: %s", path, r, ctx.error_line == r ? ctx.error : "syntax error");
                return -EINVAL;
        }
        return 0;
}

static int str_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int config_load(Config *c, const char *path, bool must_exist) {
        _cleanup_free_ char *dir = NULL;
        char *names[DROPIN_MAX];
        size_t n = 0;
        DIR *d;
        struct dirent *de;
        int r;

        r = config_load_one(c, path, must_exist);
        if (r < 0)
                return r;

        if (asprintf(&dir, "%s.d", path) < 0)
                return log_error_errno(ENOMEM, "out of memory");
        d = opendir(dir);
        if (!d) {
                if (errno == ENOENT || errno == ENOTDIR)
                        return 0;
                return log_error_errno(errno, "%s: cannot open drop-in directory: %m", dir);
        }
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l < 6 || !streq(de->d_name + l - 5, ".conf"))
                        continue;
                if (n >= DROPIN_MAX) {
                        log_warning("%s: more than %d drop-ins, ignoring the rest", dir, DROPIN_MAX);
                        break;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof(names[0]), str_cmp);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = NULL;
                if (r >= 0) {
                        if (asprintf(&p, "%s/%s", dir, names[i]) < 0)
                                r = log_error_errno(ENOMEM, "out of memory");
                        else
                                r = config_load_one(c, p, true);
                }
                free(names[i]);
        }
        return r < 0 ? r : 0;
}

/* The sections that apply to (page_size, node): the size-wide one and the node's own, either may be NULL. */
static void config_pool_sections(const Config *c, uint64_t page_size, uint32_t node, const PoolConfig **ret_any,
                                 const PoolConfig **ret_own) {
        *ret_any = *ret_own = NULL;
        for (size_t i = 0; i < c->n_pools; i++) {
                if (c->pools[i].page_size != page_size)
                        continue;
                if (c->pools[i].node == CONFIG_NODE_ANY)
                        *ret_any = &c->pools[i];
                else if ((uint32_t) c->pools[i].node == node)
                        *ret_own = &c->pools[i];
        }
}

void config_pool_warm(const Config *c, uint64_t page_size, uint32_t node, uint64_t *ret_keep_free,
                      uint64_t *ret_shrink_delay_usec) {
        const PoolConfig *any = NULL, *own = NULL;
        uint64_t keep = 0, delay;

        if (c->has_shrink_delay)
                delay = c->shrink_delay_usec;
        else
                delay = page_size >= GIGANTIC_PAGE_SIZE ? CONFIG_SHRINK_DELAY_1G_DEFAULT_USEC : CONFIG_SHRINK_DELAY_DEFAULT_USEC;
        config_pool_sections(c, page_size, node, &any, &own);
        if (any && any->has_keep_free)
                keep = any->keep_free_pages;
        if (any && any->has_shrink_delay)
                delay = any->shrink_delay_usec;
        if (own && own->has_keep_free)
                keep = own->keep_free_pages;
        if (own && own->has_shrink_delay)
                delay = own->shrink_delay_usec;
        *ret_keep_free = keep;
        *ret_shrink_delay_usec = delay;
}

bool config_pool_adopt_spare(const Config *c, uint64_t page_size, uint32_t node) {
        const PoolConfig *any = NULL, *own = NULL;

        config_pool_sections(c, page_size, node, &any, &own);
        if (own && own->has_adopt)
                return own->adopt_spare;
        return any && any->has_adopt && any->adopt_spare;
}

void config_pool_limits(const Config *c, uint64_t page_size, uint32_t node, uint64_t *ret_min,
                        uint64_t *ret_max) {
        uint64_t min = 0, max = UINT64_MAX;
        const PoolConfig *any = NULL, *own = NULL;

        config_pool_sections(c, page_size, node, &any, &own);
        if (any && any->has_min)
                min = any->min_pages;
        if (any && any->has_max)
                max = any->max_pages;
        if (own && own->has_min)
                min = own->min_pages;
        if (own && own->has_max)
                max = own->max_pages;
        *ret_min = min;
        *ret_max = max;
}
