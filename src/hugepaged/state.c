/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state file. Written with a temp file, fsync and rename, so a kill -9 at any moment leaves either the old
 * or the new file; parsed with libinih, and distrusted: every value is checked as if a stranger wrote it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "state.h"
#include "util.h"

#define STATE_VERSION 1
#define STATE_POOLS_MAX (64 * NODE_MAX)

void state_reservation_done(StateReservation *r) {
        free(r->name);
        free(r->node_pages);
        free(r->req_nodes);
        free(r->req_node_pages);
        free(r->caller);
}

StateReservation *state_reservation_free(StateReservation *r) {
        if (!r)
                return NULL;
        state_reservation_done(r);
        free(r);
        return NULL;
}

void state_done(State *s) {
        for (size_t i = 0; i < s->n_reservations; i++)
                state_reservation_free(s->reservations[i]);
        free(s->reservations);
        free(s->pools);
        *s = (State) {};
}

typedef struct LoadContext {
        State *state;
        const char *path;
        FILE *f;
        bool version_ok;
        unsigned bad;
        StateReservation *cur;  /* the reservation whose section is open */
        StatePool *cur_pool;    /* the pool whose section is open, the last of state->pools */
        unsigned cur_pool_keys; /* POOL_KEY_* seen in it */
        bool cur_bad;
        size_t allocated;       /* of state->reservations */

        /* inih keeps only the first 49 characters of a section name and doesn't tell two headers of the same
         * name apart, so the reader notes every header line itself. */
        int headers;            /* header lines read so far */
        int section;            /* the header whose keys the handler is getting, -1 before the first key */
        bool header_has_keys;
        char header[256];       /* the last header line read, without its brackets */
} LoadContext;

enum {
        POOL_KEY_FLOOR = 1 << 0,
        POOL_KEY_LOW = 1 << 1,
        POOL_KEY_HIGH = 1 << 2,
        POOL_KEYS_ALL = POOL_KEY_FLOOR | POOL_KEY_LOW | POOL_KEY_HIGH,
};

static int node_pages_add(NodeAmount **a, size_t *n, uint32_t node, uint64_t pages) {
        if (*n >= NODE_MAX)
                return -E2BIG;
        for (size_t i = 0; i < *n; i++)
                if ((*a)[i].node == node)
                        return -EEXIST;
        NodeAmount *t = realloc(*a, (*n + 1) * sizeof(*t));
        if (!t)
                return -ENOMEM;
        *a = t;
        (*a)[(*n)++] = (NodeAmount) { node, pages };
        return 0;
}

static int parse_node_pages(const char *value, uint32_t *ret_node, uint64_t *ret_pages) {
        char a[32], b[32], extra[2];
        if (sscanf(value, "%31s %31s %1s", a, b, extra) != 2)
                return -EINVAL;
        if (parse_u32(a, ret_node) < 0 || *ret_node >= NODE_MAX)
                return -EINVAL;
        return parse_u64(b, ret_pages);
}

/* Validates a finished reservation section; the caller owns what it keeps. */
static bool reservation_complete(const StateReservation *r) {
        uint64_t sum = 0;
        if (!r->name || r->page_size == 0 || r->pages == 0 || r->n_node_pages == 0 || r->lifetime < 0)
                return false;
        for (size_t i = 0; i < r->n_node_pages; i++) {
                if (r->node_pages[i].amount > UINT64_MAX - sum)
                        return false;
                sum += r->node_pages[i].amount;
        }
        if (sum != r->pages)
                return false;
        if (r->lifetime == LIFETIME_PID && r->pid == 0)
                return false;
        if (r->lifetime == LIFETIME_CALLER && !r->caller)
                return false;
        return true;
}

/* A pool entry is all or nothing: a Floor read as 0 from a damaged line would let startup shrink the pool. */
static void finish_pool(LoadContext *ctx) {
        StatePool *p = TAKE_PTR(ctx->cur_pool);
        bool dup = false;

        if (!p)
                return;
        for (size_t i = 0; i + 1 < ctx->state->n_pools; i++)
                if (ctx->state->pools[i].page_size == p->page_size && ctx->state->pools[i].node == p->node)
                        dup = true;
        if (ctx->cur_bad || ctx->cur_pool_keys != POOL_KEYS_ALL || p->range_lo > p->range_hi || dup) {
                log_warning("%s: pool %" PRIu64 " %" PRIu32 " is incomplete, invalid or repeated, "
                            "dropping it", ctx->path, p->page_size, p->node);
                ctx->bad++;
                ctx->state->n_pools--;
        }
}

static void finish_section(LoadContext *ctx) {
        StateReservation *r = TAKE_PTR(ctx->cur);
        finish_pool(ctx);
        if (!r)
                return;
        if (ctx->cur_bad || !reservation_complete(r)) {
                log_warning("%s: reservation %s is incomplete or invalid, dropping it", ctx->path,
                            r->name ? r->name : "(unnamed)");
                ctx->bad++;
                state_reservation_free(r);
                return;
        }
        /* Names seen twice are dropped after the parse, in drop_duplicates(): checking here would be
         * quadratic, and 10,000 reservations must load in milliseconds. */
        if (ctx->state->n_reservations == ctx->allocated) {
                size_t a = MAX(ctx->allocated * 2, (size_t) 64);
                StateReservation **t = reallocarray(ctx->state->reservations, a, sizeof(*t));
                if (!t) {
                        ctx->bad++;
                        state_reservation_free(r);
                        return;
                }
                ctx->state->reservations = t;
                ctx->allocated = a;
        }
        ctx->state->reservations[ctx->state->n_reservations++] = r;
}

typedef struct Loaded {
        StateReservation *r;
        size_t index; /* position in the file: qsort() is not stable, and the first of two copies is kept */
} Loaded;

static int cmp_loaded(const void *a, const void *b) {
        const Loaded *x = a, *y = b;
        int c = strcmp(x->r->name, y->r->name);
        return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* Leaves the reservations sorted by name, each name once. */
static int drop_duplicates(LoadContext *ctx) {
        State *s = ctx->state;
        _cleanup_free_ Loaded *v = NULL;
        size_t n = 0;

        if (s->n_reservations == 0)
                return 0;
        v = calloc(s->n_reservations, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_reservations; i++)
                v[i] = (Loaded) { s->reservations[i], i };
        qsort(v, s->n_reservations, sizeof(*v), cmp_loaded);
        for (size_t i = 0; i < s->n_reservations; i++) {
                if (n > 0 && streq(s->reservations[n - 1]->name, v[i].r->name)) {
                        log_warning("%s: reservation %s appears twice, dropping the second", ctx->path, v[i].r->name);
                        ctx->bad++;
                        state_reservation_free(v[i].r);
                        continue;
                }
                s->reservations[n++] = v[i].r;
        }
        s->n_reservations = n;
        return 0;
}

static char *state_reader(char *str, int num, void *stream) {
        LoadContext *ctx = stream;
        const char *p;

        if (!fgets(str, num, ctx->f))
                return NULL;
        p = str + strspn(str, " \t");
        if (*p == '[') {
                /* We never write a section without keys: this one lost them, e.g. to a truncation. */
                if (ctx->headers > 0 && !ctx->header_has_keys) {
                        log_warning("%s: section [%s] is empty", ctx->path, ctx->header);
                        ctx->bad++;
                }
                ctx->headers++;
                ctx->header_has_keys = false;
                snprintf(ctx->header, sizeof(ctx->header), "%.*s", (int) strcspn(p + 1, "]\r\n"), p + 1);
        }
        return str;
}

static int load_handler(void *user, const char *inih_section, const char *name, const char *value) {
        LoadContext *ctx = user;
        const char *section = ctx->header; /* inih_section is truncated */

        ctx->header_has_keys = true;
        /* inih calls us per key; the reader counted the header lines, so a new section is a new count. */
        if (ctx->section != ctx->headers) {
                finish_section(ctx);
                ctx->section = ctx->headers;
                ctx->cur_bad = false;
                ctx->cur_pool_keys = 0;

                if (strncmp(section, "Reservation ", 12) == 0) {
                        StateReservation *r = calloc(1, sizeof(*r));
                        if (!r)
                                return 0;
                        r->lifetime = _LIFETIME_INVALID;
                        ctx->cur = r;
                        if (!reservation_name_is_valid(section + 12)) {
                                ctx->cur_bad = true;
                                return 0;
                        }
                        r->name = strdup(section + 12);
                        if (!r->name)
                                return 0;
                } else if (strncmp(section, "Pool ", 5) == 0) {
                        char a[32], b[32], extra[2];
                        StatePool p = {};
                        if (sscanf(section + 5, "%31s %31s %1s", a, b, extra) != 2 || parse_u64(a, &p.page_size) < 0 ||
                            parse_u32(b, &p.node) < 0 || p.node >= NODE_MAX || p.page_size == 0 ||
                            ctx->state->n_pools >= STATE_POOLS_MAX) {
                                ctx->bad++;
                                return 0;
                        }
                        StatePool *t = realloc(ctx->state->pools, (ctx->state->n_pools + 1) * sizeof(*t));
                        if (!t)
                                return 0;
                        ctx->state->pools = t;
                        t[ctx->state->n_pools] = p;
                        ctx->cur_pool = &t[ctx->state->n_pools++];
                } else if (!streq(section, "State")) {
                        ctx->bad++;
                        return 0;
                }
        }

        if (streq(section, "State")) {
                uint64_t v;
                if (streq(name, "Version") && parse_u64(value, &v) >= 0 && v == STATE_VERSION) {
                        ctx->version_ok = true;
                        return 1;
                }
                ctx->bad++;
                return 0;
        }

        if (ctx->cur_pool) {
                StatePool *p = ctx->cur_pool;
                int r = -EINVAL;
                if (ctx->cur_bad)
                        return 0;
                if (streq(name, "Floor")) {
                        r = parse_u64(value, &p->floor_adopted);
                        ctx->cur_pool_keys |= POOL_KEY_FLOOR;
                } else if (streq(name, "Spare"))
                        r = parse_u64(value, &p->spare_adopted);
                else if (streq(name, "Low")) {
                        r = parse_u64(value, &p->range_lo);
                        ctx->cur_pool_keys |= POOL_KEY_LOW;
                } else if (streq(name, "High")) {
                        r = parse_u64(value, &p->range_hi);
                        ctx->cur_pool_keys |= POOL_KEY_HIGH;
                }
                if (r < 0) {
                        ctx->cur_bad = true;
                        return 0;
                }
                return 1;
        }

        StateReservation *r = ctx->cur;
        if (!r || ctx->cur_bad)
                return 0;

        int k = -EINVAL;
        uint32_t node;
        uint64_t v;
        if (streq(name, "PageSize"))
                k = parse_u64(value, &r->page_size);
        else if (streq(name, "Pages"))
                k = parse_u64(value, &r->pages);
        else if (streq(name, "Lifetime"))
                k = (r->lifetime = lifetime_from_string(value)) < 0 ? -EINVAL : 0;
        else if (streq(name, "OwnerUID"))
                k = parse_u32(value, &r->uid);
        else if (streq(name, "PID"))
                k = parse_u32(value, &r->pid);
        else if (streq(name, "PIDStartTime"))
                k = parse_u64(value, &r->pid_starttime);
        else if (streq(name, "Caller")) {
                /* Unique names are ":1.42": anything else did not come from us. */
                if (value[0] == ':' && strlen(value) < 256 && !r->caller)
                        k = (r->caller = strdup(value)) ? 0 : -ENOMEM;
        } else if (streq(name, "CreatedUSec"))
                k = parse_u64(value, &r->created_usec);
        else if (streq(name, "Held"))
                k = parse_bool(value, &r->held);
        else if (streq(name, "Node")) {
                if (parse_node_pages(value, &node, &v) >= 0 && v > 0)
                        k = node_pages_add(&r->node_pages, &r->n_node_pages, node, v);
        } else if (streq(name, "RequestNodePages")) {
                if (parse_node_pages(value, &node, &v) >= 0 && v > 0)
                        k = node_pages_add(&r->req_node_pages, &r->n_req_node_pages, node, v);
        } else if (streq(name, "RequestNode")) {
                if (parse_u32(value, &node) >= 0 && node < NODE_MAX && r->n_req_nodes < NODE_MAX) {
                        uint32_t *t = realloc(r->req_nodes, (r->n_req_nodes + 1) * sizeof(*t));
                        if (t) {
                                r->req_nodes = t;
                                t[r->n_req_nodes++] = node;
                                k = 0;
                        }
                }
        }
        if (k < 0) {
                ctx->cur_bad = true;
                return 0;
        }
        return 1;
}

static void keep_aside(const char *path) {
        _cleanup_free_ char *aside = NULL;
        /* Microseconds, so two damaged files in the same second don't overwrite each other. */
        if (asprintf(&aside, "%s.corrupt-%" PRIu64, path, now_usec(CLOCK_REALTIME)) < 0)
                return;
        if (rename(path, aside) < 0)
                log_warning_errno(errno, "cannot keep %s aside as %s: %m", path, aside);
        else
                log_warning("kept the damaged state file for inspection as %s", aside);
}

/* A kill -9 between mkostemp() and rename() in state_save() leaves a .state.XXXXXX behind. It never became the
 * state, so nothing in it counts; without this, every crash at that moment would leave one more. */
static void remove_stale_temp_files(const char *path) {
        _cleanup_free_ char *dir = NULL;
        const char *slash = strrchr(path, '/');
        DIR *d;
        struct dirent *de;

        dir = slash ? strndup(path, MAX((size_t) (slash - path), (size_t) 1)) : strdup(".");
        if (!dir)
                return;
        d = opendir(dir);
        if (!d)
                return;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, ".state.", 7) == 0 && strlen(de->d_name) == 13) {
                        if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                                log_warning_errno(errno, "cannot remove stale temporary state file %s/%s: %m", dir,
                                                  de->d_name);
                        else
                                log_notice("removed %s/%s, a state file a crash left half-written", dir, de->d_name);
                }
        closedir(d);
}

int state_load(const char *path, State *ret) {
        LoadContext ctx = { .state = ret, .path = path, .section = -1 };
        _cleanup_fclose_ FILE *f = NULL;
        int r;

        *ret = (State) {};
        remove_stale_temp_files(path);
        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT)
                        return 0;
                return log_error_errno(errno, "%s: cannot open state file: %m", path);
        }
        ctx.f = f;
        r = ini_parse_stream(state_reader, &ctx, load_handler, &ctx);
        finish_section(&ctx);
        if (r >= 0 && drop_duplicates(&ctx) < 0)
                r = -ENOMEM;
        if (ctx.headers > 0 && !ctx.header_has_keys) {
                log_warning("%s: section [%s] is empty", path, ctx.header);
                ctx.bad++;
        }
        if (r < 0) {
                state_done(ret);
                return log_error_errno(ENOMEM, "%s: out of memory", path);
        }
        if (!ctx.version_ok) {
                log_warning("%s: not a version %d hugepaged state file", path, STATE_VERSION);
                ctx.bad++;
        }
        if (r > 0 || ctx.bad > 0) {
                log_warning("%s: %s (first problem on line %d); starting with the %zu reservations that check out",
                            path, r > 0 ? "damaged" : "has invalid entries", r, ret->n_reservations);
                keep_aside(path);
        }
        return 0;
}

static void write_reservation(FILE *f, const StateReservation *r) {
        fprintf(f, "\n[Reservation %s]\nPageSize=%" PRIu64 "\nPages=%" PRIu64 "\nLifetime=%s\nOwnerUID=%u\n", r->name,
                r->page_size, r->pages, lifetime_to_string(r->lifetime), (unsigned) r->uid);
        if (r->lifetime == LIFETIME_PID)
                fprintf(f, "PID=%" PRIu32 "\nPIDStartTime=%" PRIu64 "\n", r->pid, r->pid_starttime);
        if (r->caller)
                fprintf(f, "Caller=%s\n", r->caller);
        fprintf(f, "CreatedUSec=%" PRIu64 "\n", r->created_usec);
        /* Only when held, so a file without holds stays readable by older versions. */
        if (r->held)
                fprintf(f, "Held=yes\n");
        for (size_t i = 0; i < r->n_node_pages; i++)
                fprintf(f, "Node=%" PRIu32 " %" PRIu64 "\n", r->node_pages[i].node, r->node_pages[i].amount);
        for (size_t i = 0; i < r->n_req_nodes; i++)
                fprintf(f, "RequestNode=%" PRIu32 "\n", r->req_nodes[i]);
        for (size_t i = 0; i < r->n_req_node_pages; i++)
                fprintf(f, "RequestNodePages=%" PRIu32 " %" PRIu64 "\n", r->req_node_pages[i].node,
                        r->req_node_pages[i].amount);
}

int state_save(const char *dir, const char *path, const State *snapshot) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int dfd = -EBADF;
        FILE *f;
        int fd, r;

        if (asprintf(&tmp, "%s/.state.XXXXXX", dir) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "cannot create a temporary state file in %s: %m", dir);
        f = fdopen(fd, "w");
        if (!f) {
                r = negative_errno();
                (void) close(fd);
                goto fail;
        }

        fprintf(f, "# hugepaged state: written by the daemon, do not edit while it runs\n[State]\nVersion=%d\n",
                STATE_VERSION);
        for (size_t i = 0; i < snapshot->n_pools; i++) {
                const StatePool *p = &snapshot->pools[i];
                fprintf(f, "\n[Pool %" PRIu64 " %" PRIu32 "]\nFloor=%" PRIu64 "\nLow=%" PRIu64 "\nHigh=%" PRIu64 "\n",
                        p->page_size, p->node, p->floor_adopted, p->range_lo, p->range_hi);
                /* Only when there is any, so a file without Adopt=spare stays readable by older versions. */
                if (p->spare_adopted > 0)
                        fprintf(f, "Spare=%" PRIu64 "\n", p->spare_adopted);
        }
        for (size_t i = 0; i < snapshot->n_reservations; i++)
                write_reservation(f, snapshot->reservations[i]);

        if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) < 0) {
                r = negative_errno();
                (void) fclose(f);
                goto fail;
        }
        if (fclose(f) != 0) {
                r = negative_errno();
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                goto fail;
        }
        /* The rename itself must reach the disk before we tell anyone it happened. */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void) fsync(dfd);
        return 0;

fail:
        (void) unlink(tmp);
        return log_error_errno(r, "cannot write state file %s: %m", path);
}
