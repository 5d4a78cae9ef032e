/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl: the operator's client of org.hugepaged1. Owns its verbs, their text and JSON output, and the
 * mapping of the daemon's errors to one line on stderr and a documented exit status. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <mntent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "build-config.h"
#include "bus-client.h"
#include "macro.h"
#include "util.h"

#define GIB (UINT64_C(1) << 30)

/* A reservation may wait behind others and for compaction (the daemon's TimeoutSec= is 120 s by default). */
#define CALL_TIMEOUT_USEC (UINT64_C(300) * 1000 * 1000)

static bool arg_json = false;
static bool arg_names = false;
static bool arg_reserve_options = false;
static uint64_t arg_page_size = 0;
static uint32_t *arg_nodes = NULL;
static size_t arg_n_nodes = 0;
static NodeAmount *arg_node_sizes = NULL;
static size_t arg_n_node_sizes = 0;
static const char *arg_lifetime = NULL;
static uint32_t arg_pid = 0;
static bool arg_pid_set = false;

static void usage_error(const char *fmt, ...) _printf_(1, 2);
static void usage_error(const char *fmt, ...) {
        va_list ap;

        fputs("hugepagectl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\n", stderr);
}

/* ---- a tiny JSON emitter: compact, one document per line ---- */

#define JSON_DEPTH_MAX 32

typedef struct Json {
        FILE *f;
        unsigned depth;
        bool need_comma[JSON_DEPTH_MAX];
        bool after_key;
} Json;

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

static void json_begin(Json *j, char c) {
        json_sep(j);
        fputc(c, j->f);
        if (j->depth + 1 < JSON_DEPTH_MAX)
                j->depth++;
        j->need_comma[j->depth] = false;
}

static void json_end(Json *j, char c) {
        fputc(c, j->f);
        if (j->depth > 0)
                j->depth--;
        if (j->depth == 0)
                fputc('\n', j->f);
}

#define json_begin_object(j) json_begin((j), '{')
#define json_end_object(j) json_end((j), '}')
#define json_begin_array(j) json_begin((j), '[')
#define json_end_array(j) json_end((j), ']')

static void json_key(Json *j, const char *key) {
        json_sep(j);
        json_string_raw(j->f, key);
        fputc(':', j->f);
        j->after_key = true;
}

static void json_string(Json *j, const char *s) {
        json_sep(j);
        json_string_raw(j->f, s);
}

static void json_u64(Json *j, uint64_t v) {
        json_sep(j);
        fprintf(j->f, "%" PRIu64, v);
}

static void json_i64(Json *j, int64_t v) {
        json_sep(j);
        fprintf(j->f, "%" PRIi64, v);
}

static void json_double(Json *j, double v) {
        json_sep(j);
        fprintf(j->f, "%.17g", v);
}

static void json_bool(Json *j, bool v) {
        json_sep(j);
        fputs(v ? "true" : "false", j->f);
}

static void json_null(Json *j) {
        json_sep(j);
        fputs("null", j->f);
}

#define JSON_INIT { .f = stdout }

/* ---- errors ---- */

/* One line on stderr: "hugepagectl: <what>: <why>". Returns the exit status. */
static int report_bus_error(const char *what, const sd_bus_error *e, int r) {
        char reason[1024];

        if (!(e && sd_bus_error_is_set(e)) && bus_error_kind(e, r) == BUS_ERROR_UNREACHABLE)
                fprintf(stderr, "hugepagectl: %s: cannot talk to the system bus: %s\n", what, strerror(-r));
        else
                fprintf(stderr, "hugepagectl: %s: %s\n", what,
                        bus_error_reason(e, r, "the system bus", reason, sizeof reason));
        return bus_error_exit_status(e, r);
}

/* ---- bus helpers ---- */

static int bus_connect(sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        r = bus_client_connect(NULL, CALL_TIMEOUT_USEC, &bus);
        if (r < 0) {
                fprintf(stderr, "hugepagectl: cannot connect to the system bus: %s\n", strerror(-r));
                return EXIT_UNREACHABLE;
        }
        /* A user other than root needs polkit's consent to change anything: let an agent ask for a password. */
        (void) sd_bus_set_allow_interactive_authorization(bus, true);
        *ret = bus;
        return EXIT_OK;
}

static char *size_str(char buf[static FORMAT_SIZE_MAX], uint64_t bytes) {
        return format_size(buf, FORMAT_SIZE_MAX, bytes);
}

static void print_timestamp(FILE *f) {
        struct timespec ts;
        struct tm tm;
        char buf[32];

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        (void) localtime_r(&ts.tv_sec, &tm);
        (void) strftime(buf, sizeof buf, "%H:%M:%S", &tm);
        fprintf(f, "%s.%03ld ", buf, ts.tv_nsec / 1000000);
}

/* ---- the data the verbs show ---- */

typedef struct PoolRow {
        uint64_t page_size;
        int32_t node;
        uint64_t total, free, surplus, reserved, floor;
        uint64_t adopted_spare; /* the Pool's AdoptedSpare: not in ListPools, read from the pool's object */
} PoolRow;

typedef struct ReservationRow {
        char *name;
        uint64_t page_size;
        uint64_t pages;
        uint32_t uid;
        char *lifetime;
        char *path;
} ReservationRow;

typedef struct NodePages {
        uint32_t node;
        uint64_t pages;
} NodePages;

typedef struct ReservationInfo {
        char *name;
        uint64_t page_size;
        uint64_t pages;
        NodePages *node_pages;
        size_t n_node_pages;
        uint32_t uid;
        char *lifetime;
        uint32_t pid;
        uint64_t created_usec;
        char *state;
        char *path;
} ReservationInfo;

typedef struct ManagerInfo {
        char *version;
        uint64_t default_page_size;
        uint64_t *page_sizes;
        size_t n_page_sizes;
        uint32_t *nodes;
        size_t n_nodes;
        uint64_t reserved_bytes;
} ManagerInfo;

static void reservation_rows_free(ReservationRow *rows, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(rows[i].name);
                free(rows[i].lifetime);
                free(rows[i].path);
        }
        free(rows);
}

static void reservation_info_done(ReservationInfo *i) {
        free(i->name);
        free(i->node_pages);
        free(i->lifetime);
        free(i->state);
        free(i->path);
        *i = (ReservationInfo) {};
}

static void manager_info_done(ManagerInfo *i) {
        free(i->version);
        free(i->page_sizes);
        free(i->nodes);
        *i = (ManagerInfo) {};
}

static int read_string_dup(sd_bus_message *m, const char *type, char **ret) {
        const char *s;
        int r = sd_bus_message_read(m, type, &s);
        if (r < 0)
                return r;
        char *d = strdup(s);
        if (!d)
                return -ENOMEM;
        free(*ret);
        *ret = d;
        return 0;
}

/* A copy of an array of fixed-size elements ('t' or 'u'), replacing *ret. */
static int read_array(sd_bus_message *m, char type, size_t elem_size, void **ret, size_t *ret_n) {
        const void *p;
        size_t sz;
        int r = sd_bus_message_read_array(m, type, &p, &sz);
        if (r < 0)
                return r;
        void *a = malloc(sz ?: 1);
        if (!a)
                return -ENOMEM;
        memcpy(a, p, sz);
        free(*ret);
        *ret = a;
        *ret_n = sz / elem_size;
        return 0;
}

static int read_u64_array(sd_bus_message *m, uint64_t **ret, size_t *ret_n) {
        return read_array(m, 't', sizeof(uint64_t), (void **) ret, ret_n);
}

static int read_u32_array(sd_bus_message *m, uint32_t **ret, size_t *ret_n) {
        return read_array(m, 'u', sizeof(uint32_t), (void **) ret, ret_n);
}

static int read_variant_string(sd_bus_message *m, char **ret) {
        int r = sd_bus_message_enter_container(m, 'v', "s");
        if (r < 0)
                return r;
        r = read_string_dup(m, "s", ret);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_variant_node_pages(sd_bus_message *m, NodePages **ret, size_t *ret_n) {
        _cleanup_free_ NodePages *a = NULL;
        size_t n = 0;
        uint32_t node;
        uint64_t pages;
        int r;

        r = sd_bus_message_enter_container(m, 'v', "a(ut)");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "(ut)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(ut)", &node, &pages)) > 0) {
                NodePages *t = realloc(a, (n + 1) * sizeof(*t));
                if (!t)
                        return -ENOMEM;
                a = t;
                a[n++] = (NodePages) { node, pages };
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        free(*ret);
        *ret = TAKE_PTR(a);
        *ret_n = n;
        return 0;
}

/* Reads an a{sv} of org.hugepaged1.Reservation properties (GetAll, InterfacesAdded); unknown ones are skipped so a
 * newer daemon doesn't break an older client. */
static int reservation_info_read(sd_bus_message *m, ReservationInfo *info) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *prop;

                r = sd_bus_message_read(m, "s", &prop);
                if (r < 0)
                        return r;
                if (streq(prop, "Name"))
                        r = read_variant_string(m, &info->name);
                else if (streq(prop, "Lifetime"))
                        r = read_variant_string(m, &info->lifetime);
                else if (streq(prop, "State"))
                        r = read_variant_string(m, &info->state);
                else if (streq(prop, "PageSize"))
                        r = sd_bus_message_read(m, "v", "t", &info->page_size);
                else if (streq(prop, "Pages"))
                        r = sd_bus_message_read(m, "v", "t", &info->pages);
                else if (streq(prop, "OwnerUID"))
                        r = sd_bus_message_read(m, "v", "u", &info->uid);
                else if (streq(prop, "PID"))
                        r = sd_bus_message_read(m, "v", "u", &info->pid);
                else if (streq(prop, "CreatedUSec"))
                        r = sd_bus_message_read(m, "v", "t", &info->created_usec);
                else if (streq(prop, "NodePages"))
                        r = read_variant_node_pages(m, &info->node_pages, &info->n_node_pages);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int get_all(sd_bus *bus, const char *path, const char *iface, sd_bus_error *error,
                   sd_bus_message **reply) {
        return sd_bus_call_method(bus, HP_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", error, reply,
                                  "s", iface);
}

/* Returns an exit status; on failure the error has been printed with "cannot <what>". */
static int fetch_reservation(sd_bus *bus, const char *name, const char *what, ReservationInfo *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *props = NULL;
        ReservationInfo info = {};
        const char *path;
        int r;

        r = bus_call_manager(bus, "GetReservation", &error, &reply, "s", name);
        if (r < 0)
                return report_bus_error(what, &error, r);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return report_bus_error(what, NULL, r);
        r = get_all(bus, path, HP_BUS_IFACE_RESERVATION, &error, &props);
        if (r < 0)
                return report_bus_error(what, &error, r);
        info.path = strdup(path);
        if (!info.path)
                return report_bus_error(what, NULL, -ENOMEM);
        r = reservation_info_read(props, &info);
        if (r < 0) {
                reservation_info_done(&info);
                return report_bus_error(what, NULL, r);
        }
        *ret = info;
        return EXIT_OK;
}

static int fetch_manager(sd_bus *bus, const char *what, ManagerInfo *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ManagerInfo info = {};
        int r;

        r = get_all(bus, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, &error, &reply);
        if (r < 0)
                return report_bus_error(what, &error, r);
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *prop;

                r = sd_bus_message_read(reply, "s", &prop);
                if (r < 0)
                        break;
                if (streq(prop, "Version"))
                        r = read_variant_string(reply, &info.version);
                else if (streq(prop, "DefaultPageSize"))
                        r = sd_bus_message_read(reply, "v", "t", &info.default_page_size);
                else if (streq(prop, "ReservedBytes"))
                        r = sd_bus_message_read(reply, "v", "t", &info.reserved_bytes);
                else if (streq(prop, "PageSizes") || streq(prop, "Nodes")) {
                        bool sizes = streq(prop, "PageSizes");
                        r = sd_bus_message_enter_container(reply, 'v', sizes ? "at" : "au");
                        if (r >= 0)
                                r = sizes ? read_u64_array(reply, &info.page_sizes, &info.n_page_sizes) :
                                            read_u32_array(reply, &info.nodes, &info.n_nodes);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                } else
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0) {
                manager_info_done(&info);
                return report_bus_error(what, NULL, r);
        }
        *ret = info;
        return EXIT_OK;
}

static int fetch_pools(sd_bus *bus, const char *what, PoolRow **ret, size_t *ret_n) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ PoolRow *rows = NULL;
        size_t n = 0;
        PoolRow p;
        int r;

        r = bus_call_manager(bus, "ListPools", &error, &reply, NULL);
        if (r < 0)
                return report_bus_error(what, &error, r);
        r = sd_bus_message_enter_container(reply, 'a', "(tittttt)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(tittttt)", &p.page_size, &p.node, &p.total, &p.free,
                                                  &p.surplus, &p.reserved, &p.floor)) > 0) {
                PoolRow *t = realloc(rows, (n + 1) * sizeof(*t));
                if (!t)
                        return report_bus_error(what, NULL, -ENOMEM);
                rows = t;
                rows[n++] = p;
        }
        if (r < 0)
                return report_bus_error(what, NULL, r);
        for (size_t i = 0; i < n; i++) {
                char path[sizeof(HP_BUS_POOL_PREFIX "/") + 64];
                if (rows[i].node < 0)
                        snprintf(path, sizeof path, HP_BUS_POOL_PREFIX "/%" PRIu64 "kB", rows[i].page_size / 1024);
                else
                        snprintf(path, sizeof path, HP_BUS_POOL_PREFIX "/%" PRIu64 "kB/node%" PRIi32,
                                 rows[i].page_size / 1024, rows[i].node);
                /* A pool that went away since ListPools, or a daemon older than Adopt=, has none. */
                if (sd_bus_get_property_trivial(bus, HP_BUS_NAME, path, HP_BUS_IFACE_POOL, "AdoptedSpare", NULL, 't',
                                                &rows[i].adopted_spare) < 0)
                        rows[i].adopted_spare = 0;
        }
        *ret = TAKE_PTR(rows);
        *ret_n = n;
        return EXIT_OK;
}

static int fetch_reservations(sd_bus *bus, const char *what, ReservationRow **ret, size_t *ret_n) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ReservationRow *rows = NULL;
        size_t n = 0;
        const char *name, *lifetime, *path;
        uint64_t page_size, pages;
        uint32_t uid;
        int r;

        r = bus_call_manager(bus, "ListReservations", &error, &reply, NULL);
        if (r < 0)
                return report_bus_error(what, &error, r);
        r = sd_bus_message_enter_container(reply, 'a', "(sttuso)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sttuso)", &name, &page_size, &pages, &uid, &lifetime,
                                                  &path)) > 0) {
                ReservationRow *t = realloc(rows, (n + 1) * sizeof(*t));
                if (!t) {
                        r = -ENOMEM;
                        break;
                }
                rows = t;
                rows[n] = (ReservationRow) {
                        .name = strdup(name), .page_size = page_size, .pages = pages, .uid = uid,
                        .lifetime = strdup(lifetime), .path = strdup(path),
                };
                n++;
                if (!rows[n - 1].name || !rows[n - 1].lifetime || !rows[n - 1].path) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r < 0) {
                reservation_rows_free(rows, n);
                return report_bus_error(what, NULL, r);
        }
        *ret = rows;
        *ret_n = n;
        return EXIT_OK;
}

/* ---- hugetlbfs mounts ---- */

typedef struct Mount {
        uint64_t page_size;
        char *path;
} Mount;

static void mounts_free(Mount *m, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(m[i].path);
        free(m);
}

/* Every hugetlbfs mount and the page size it serves: its pagesize= option, or the default size without one.
 * $HUGEPAGECTL_PROC_MOUNTS replaces /proc/mounts, for the tests. */
static int read_mounts(uint64_t default_page_size, Mount **ret, size_t *ret_n) {
        const char *fn = getenv("HUGEPAGECTL_PROC_MOUNTS") ?: "/proc/mounts";
        Mount *mounts = NULL;
        size_t n = 0;
        struct mntent *me;
        FILE *f;

        f = setmntent(fn, "re");
        if (!f)
                return negative_errno();
        while ((me = getmntent(f))) {
                uint64_t size = default_page_size;
                char *opt;

                if (!streq(me->mnt_type, "hugetlbfs"))
                        continue;
                opt = hasmntopt(me, "pagesize");
                if (opt && opt[strlen("pagesize")] == '=') {
                        _cleanup_free_ char *v = strndup(opt + strlen("pagesize="),
                                                         strcspn(opt + strlen("pagesize="), ","));
                        if (!v || parse_size(v, &size) < 0)
                                continue;
                }
                Mount *t = realloc(mounts, (n + 1) * sizeof(*t));
                if (!t)
                        break;
                mounts = t;
                mounts[n].page_size = size;
                mounts[n].path = strdup(me->mnt_dir);
                if (!mounts[n].path)
                        break;
                n++;
        }
        endmntent(f);
        *ret = mounts;
        *ret_n = n;
        return 0;
}

/* ---- output pieces ---- */

static void json_pool(Json *j, const PoolRow *p) {
        json_begin_object(j);
        json_key(j, "page_size"); json_u64(j, p->page_size);
        json_key(j, "node"); json_i64(j, p->node);
        json_key(j, "total"); json_u64(j, p->total);
        json_key(j, "free"); json_u64(j, p->free);
        json_key(j, "surplus"); json_u64(j, p->surplus);
        json_key(j, "reserved"); json_u64(j, p->reserved);
        json_key(j, "floor"); json_u64(j, p->floor);
        json_key(j, "adopted_spare"); json_u64(j, p->adopted_spare);
        json_end_object(j);
}

static void json_reservation_row(Json *j, const ReservationRow *r) {
        json_begin_object(j);
        json_key(j, "name"); json_string(j, r->name);
        json_key(j, "page_size"); json_u64(j, r->page_size);
        json_key(j, "pages"); json_u64(j, r->pages);
        json_key(j, "bytes"); json_u64(j, r->pages * r->page_size);
        json_key(j, "owner_uid"); json_u64(j, r->uid);
        json_key(j, "lifetime"); json_string(j, r->lifetime);
        json_key(j, "path"); json_string(j, r->path);
        json_end_object(j);
}

static void json_reservation_info(Json *j, const ReservationInfo *i) {
        json_begin_object(j);
        json_key(j, "name"); json_string(j, i->name);
        json_key(j, "page_size"); json_u64(j, i->page_size);
        json_key(j, "pages"); json_u64(j, i->pages);
        json_key(j, "bytes"); json_u64(j, i->pages * i->page_size);
        json_key(j, "node_pages");
        json_begin_array(j);
        for (size_t k = 0; k < i->n_node_pages; k++) {
                json_begin_object(j);
                json_key(j, "node"); json_u64(j, i->node_pages[k].node);
                json_key(j, "pages"); json_u64(j, i->node_pages[k].pages);
                json_end_object(j);
        }
        json_end_array(j);
        json_key(j, "owner_uid"); json_u64(j, i->uid);
        json_key(j, "lifetime"); json_string(j, i->lifetime);
        json_key(j, "pid");
        if (i->pid > 0)
                json_u64(j, i->pid);
        else
                json_null(j);
        json_key(j, "created_usec"); json_u64(j, i->created_usec);
        json_key(j, "state");
        if (i->state)
                json_string(j, i->state);
        else
                json_null(j);
        json_key(j, "path"); json_string(j, i->path);
        json_end_object(j);
}

static void print_node_pages(FILE *f, const ReservationInfo *i) {
        char b[FORMAT_SIZE_MAX];

        for (size_t k = 0; k < i->n_node_pages; k++)
                fprintf(f, "%snode %" PRIu32 ": %" PRIu64 " (%s)", k ? ", " : "", i->node_pages[k].node,
                        i->node_pages[k].pages, size_str(b, i->node_pages[k].pages * i->page_size));
        if (i->n_node_pages == 0)
                fputs("-", f);
}

static void print_reservation_info(const ReservationInfo *i) {
        char b1[FORMAT_SIZE_MAX], b2[FORMAT_SIZE_MAX], when[64] = "-";

        if (i->created_usec > 0) {
                time_t t = (time_t) (i->created_usec / 1000000);
                struct tm tm;
                if (localtime_r(&t, &tm))
                        (void) strftime(when, sizeof when, "%a %Y-%m-%d %H:%M:%S %Z", &tm);
        }
        printf("       Name: %s\n", i->name);
        printf("       Size: %s\n", size_str(b1, i->pages * i->page_size));
        printf("      Pages: %" PRIu64 " of %s\n", i->pages, size_str(b2, i->page_size));
        printf("      Nodes: ");
        print_node_pages(stdout, i);
        printf("\n   Lifetime: %s", i->lifetime ?: "-");
        if (i->pid > 0)
                printf(" (pid %" PRIu32 ")", i->pid);
        printf("\n  Owner UID: %" PRIu32 "\n", i->uid);
        printf("    Created: %s\n", when);
        if (i->state)
                printf("      State: %s\n", i->state);
        printf("       Path: %s\n", i->path);
}

static void print_pool_header(void) {
        printf("%-10s %5s %8s %8s %8s %8s %8s %8s\n", "PAGE SIZE", "NODE", "TOTAL", "FREE", "SURPLUS", "RESERVED",
               "FLOOR", "ADOPTED");
}

static void print_pool_row(const PoolRow *p) {
        char b[FORMAT_SIZE_MAX], node[16];

        if (p->node < 0)
                snprintf(node, sizeof node, "all");
        else
                snprintf(node, sizeof node, "%" PRIi32, p->node);
        printf("%-10s %5s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
               size_str(b, p->page_size), node, p->total, p->free, p->surplus, p->reserved, p->floor,
               p->adopted_spare);
}

/* ---- verbs; each returns an exit status and has printed its error ---- */

static int verb_pools(sd_bus *bus, char **args) {
        _cleanup_free_ PoolRow *pools = NULL;
        size_t n = 0;
        int r;

        r = fetch_pools(bus, "cannot list pools", &pools, &n);
        if (r != EXIT_OK)
                return r;
        if (arg_json) {
                Json j = JSON_INIT;
                json_begin_array(&j);
                for (size_t i = 0; i < n; i++)
                        json_pool(&j, &pools[i]);
                json_end_array(&j);
                return EXIT_OK;
        }
        print_pool_header();
        for (size_t i = 0; i < n; i++)
                print_pool_row(&pools[i]);
        return EXIT_OK;
}

static void print_reservation_table(const ReservationRow *rows, size_t n) {
        char b1[FORMAT_SIZE_MAX], b2[FORMAT_SIZE_MAX];
        int w = 4;

        for (size_t i = 0; i < n; i++)
                w = MAX(w, (int) strlen(rows[i].name));
        printf("%-*s %10s %10s %8s %-9s %6s\n", w, "NAME", "SIZE", "PAGE SIZE", "PAGES", "LIFETIME", "UID");
        for (size_t i = 0; i < n; i++)
                printf("%-*s %10s %10s %8" PRIu64 " %-9s %6" PRIu32 "\n", w, rows[i].name,
                       size_str(b1, rows[i].pages * rows[i].page_size), size_str(b2, rows[i].page_size), rows[i].pages,
                       rows[i].lifetime, rows[i].uid);
}

static int verb_list(sd_bus *bus, char **args) {
        ReservationRow *rows = NULL;
        size_t n = 0;
        int r;

        r = fetch_reservations(bus, "cannot list reservations", &rows, &n);
        if (r != EXIT_OK)
                return r;
        if (arg_names) {
                for (size_t i = 0; i < n; i++)
                        printf("%s\n", rows[i].name);
        } else if (arg_json) {
                Json j = JSON_INIT;
                json_begin_array(&j);
                for (size_t i = 0; i < n; i++)
                        json_reservation_row(&j, &rows[i]);
                json_end_array(&j);
        } else if (n == 0)
                printf("No reservations.\n");
        else {
                print_reservation_table(rows, n);
                printf("\n%zu reservation%s listed.\n", n, n == 1 ? "" : "s");
        }
        reservation_rows_free(rows, n);
        return EXIT_OK;
}

static int verb_show(sd_bus *bus, char **args) {
        _cleanup_free_ char *what = NULL;
        ReservationInfo info = {};
        int r;

        if (asprintf(&what, "cannot show %s", args[0]) < 0)
                return report_bus_error("cannot show", NULL, -ENOMEM);
        r = fetch_reservation(bus, args[0], what, &info);
        if (r != EXIT_OK)
                return r;
        if (arg_json) {
                Json j = JSON_INIT;
                json_reservation_info(&j, &info);
        } else
                print_reservation_info(&info);
        reservation_info_done(&info);
        return EXIT_OK;
}

static int verb_status(sd_bus *bus, char **args) {
        _cleanup_free_ PoolRow *pools = NULL;
        ReservationRow *rows = NULL;
        Mount *mounts = NULL;
        size_t n_pools = 0, n_rows = 0, n_mounts = 0;
        ManagerInfo mi = {};
        char b[FORMAT_SIZE_MAX];
        int r;

        r = fetch_manager(bus, "cannot get the status", &mi);
        if (r != EXIT_OK)
                return r;
        r = fetch_pools(bus, "cannot get the status", &pools, &n_pools);
        if (r == EXIT_OK)
                r = fetch_reservations(bus, "cannot get the status", &rows, &n_rows);
        if (r != EXIT_OK) {
                manager_info_done(&mi);
                return r;
        }
        if (read_mounts(mi.default_page_size, &mounts, &n_mounts) < 0)
                fprintf(stderr, "hugepagectl: warning: cannot read the mount table: %s\n", strerror(errno));

        if (arg_json) {
                Json j = JSON_INIT;
                json_begin_object(&j);
                json_key(&j, "version"); json_string(&j, mi.version);
                json_key(&j, "default_page_size"); json_u64(&j, mi.default_page_size);
                json_key(&j, "page_sizes");
                json_begin_array(&j);
                for (size_t i = 0; i < mi.n_page_sizes; i++)
                        json_u64(&j, mi.page_sizes[i]);
                json_end_array(&j);
                json_key(&j, "nodes");
                json_begin_array(&j);
                for (size_t i = 0; i < mi.n_nodes; i++)
                        json_u64(&j, mi.nodes[i]);
                json_end_array(&j);
                json_key(&j, "reserved_bytes"); json_u64(&j, mi.reserved_bytes);
                json_key(&j, "pools");
                json_begin_array(&j);
                for (size_t i = 0; i < n_pools; i++)
                        json_pool(&j, &pools[i]);
                json_end_array(&j);
                json_key(&j, "mounts");
                json_begin_array(&j);
                for (size_t i = 0; i < mi.n_page_sizes; i++) {
                        json_begin_object(&j);
                        json_key(&j, "page_size"); json_u64(&j, mi.page_sizes[i]);
                        json_key(&j, "mount_points");
                        json_begin_array(&j);
                        for (size_t k = 0; k < n_mounts; k++)
                                if (mounts[k].page_size == mi.page_sizes[i])
                                        json_string(&j, mounts[k].path);
                        json_end_array(&j);
                        json_end_object(&j);
                }
                json_end_array(&j);
                json_key(&j, "reservations");
                json_begin_array(&j);
                for (size_t i = 0; i < n_rows; i++)
                        json_reservation_row(&j, &rows[i]);
                json_end_array(&j);
                json_end_object(&j);
                goto finish;
        }

        printf("    Version: %s\n", mi.version ?: "-");
        printf(" Page sizes: ");
        for (size_t i = 0; i < mi.n_page_sizes; i++)
                printf("%s%s%s", i ? ", " : "", size_str(b, mi.page_sizes[i]),
                       mi.page_sizes[i] == mi.default_page_size ? " (default)" : "");
        printf("\n      Nodes: ");
        for (size_t i = 0; i < mi.n_nodes; i++)
                printf("%s%" PRIu32, i ? ", " : "", mi.nodes[i]);
        printf("%s\n   Reserved: %s in %zu reservation%s\n", mi.n_nodes ? "" : "-", size_str(b, mi.reserved_bytes),
               n_rows, n_rows == 1 ? "" : "s");

        for (size_t i = 0; i < mi.n_page_sizes; i++) {
                uint64_t ps = mi.page_sizes[i];
                bool any = false;

                printf("\n%s pages, hugetlbfs mount: ", size_str(b, ps));
                for (size_t k = 0; k < n_mounts; k++)
                        if (mounts[k].page_size == ps) {
                                printf("%s%s", any ? ", " : "", mounts[k].path);
                                any = true;
                        }
                if (!any)
                        printf("none\n  Warning: no hugetlbfs mount serves %s pages, so no program can map them.\n"
                               "           Mount one: mount -t hugetlbfs -o pagesize=%s none /dev/hugepages%s\n",
                               b, ps >= GIB ? "1G" : b, ps >= GIB ? "1G" : "");
                else
                        printf("\n");
                print_pool_header();
                for (size_t k = 0; k < n_pools; k++)
                        if (pools[k].page_size == ps)
                                print_pool_row(&pools[k]);
        }

        printf("\nReservations:");
        if (n_rows == 0)
                printf(" none\n");
        else
                printf("\n");
        for (size_t i = 0; i < n_rows; i++) {
                char b2[FORMAT_SIZE_MAX];
                printf("  %s: %s of %s pages (%" PRIu64 "), %s, uid %" PRIu32 "\n", rows[i].name,
                       size_str(b, rows[i].pages * rows[i].page_size), size_str(b2, rows[i].page_size), rows[i].pages,
                       rows[i].lifetime, rows[i].uid);
        }
finish:
        mounts_free(mounts, n_mounts);
        reservation_rows_free(rows, n_rows);
        manager_info_done(&mi);
        return EXIT_OK;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* Runs the event loop with the bus attached until SIGINT/SIGTERM/SIGHUP (exit status 0) or until the bus goes
 * away (EXIT_UNREACHABLE, after saying so). */
static int run_until_signal(sd_bus *bus) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaddset(&mask, sigs[i]);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return report_bus_error("cannot wait", NULL, negative_errno());
        r = sd_event_default(&event);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(sigs); i++)
                r = sd_event_add_signal(event, NULL, sigs[i], on_exit_signal, NULL);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(bus, 1);
        if (r < 0)
                return report_bus_error("cannot wait", NULL, r);
        r = sd_event_loop(event);
        (void) sd_bus_detach_event(bus);
        if (r != 0) {
                fprintf(stderr, "hugepagectl: lost the connection to the system bus\n");
                return EXIT_UNREACHABLE;
        }
        return EXIT_OK;
}

static void print_advice(sd_bus *bus, const sd_bus_error *error) {
        uint64_t ps = arg_page_size;

        if (!sd_bus_error_has_name(error, HP_BUS_ERROR_INSUFFICIENT_PAGES))
                return;
        /* The pages are in the pool already, as Floor: the daemon's message says so and names Adopt=spare, and
         * advice to set pages aside at boot would send the user after pages they have. */
        if (error->message && strstr(error->message, "Adopt=spare")) {
                fprintf(stderr, "hugepagectl: hint: see Adopt= in hugepaged.conf(5) and 'hugepagectl status' (FLOOR, "
                                "ADOPTED)\n");
                return;
        }
        if (ps == 0)
                (void) sd_bus_get_property_trivial(bus, HP_BUS_NAME, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "DefaultPageSize",
                                                   NULL, 't', &ps);
        if (ps < GIB)
                return;
        fprintf(stderr,
                "hugepagectl: hint: memory is rarely contiguous enough for 1 GiB pages once the system runs; "
                "reserve them at boot with 'hugepagesz=1G hugepages=N' on the kernel command line, or set aside "
                "CMA for them with 'hugetlb_cma=SIZE'\n");
}

static int verb_reserve(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *what = NULL;
        ReservationInfo info = {};
        const ReserveOptions opts = {
                .nodes = arg_nodes, .n_nodes = arg_n_nodes,
                .node_bytes = arg_node_sizes, .n_node_bytes = arg_n_node_sizes,
                .lifetime = arg_lifetime, .pid = arg_pid_set ? arg_pid : 0,
        };
        const char *name = args[0];
        uint64_t bytes = 0, sum = 0;
        int r;

        if (asprintf(&what, "cannot reserve %s", name) < 0)
                return report_bus_error("cannot reserve", NULL, -ENOMEM);
        for (size_t i = 0; i < arg_n_node_sizes; i++)
                sum += arg_node_sizes[i].amount;
        if (args[1]) {
                r = parse_size(args[1], &bytes);
                if (r < 0 || bytes == 0) {
                        usage_error("%s: invalid size '%s': give bytes, or a number with K, M, G or T (e.g. 512M, "
                                    "4G, 4GiB)", what, args[1]);
                        return EXIT_USAGE;
                }
                if (arg_n_node_sizes > 0 && bytes != sum) {
                        char b1[FORMAT_SIZE_MAX], b2[FORMAT_SIZE_MAX];
                        usage_error("%s: SIZE %s is not the sum of --node-size= (%s); omit SIZE", what,
                                    size_str(b1, bytes), size_str(b2, sum));
                        return EXIT_USAGE;
                }
        } else if (arg_n_node_sizes == 0) {
                usage_error("reserve: missing SIZE (e.g. 'hugepagectl reserve %s 4G')", name);
                return EXIT_USAGE;
        }

        r = bus_call_reserve(bus, name, arg_page_size, bytes, &opts, &error, NULL);
        if (r < 0) {
                r = report_bus_error(what, &error, r);
                print_advice(bus, &error);
                return r;
        }

        r = fetch_reservation(bus, name, what, &info);
        if (r != EXIT_OK)
                return r;
        if (arg_json) {
                Json j = JSON_INIT;
                json_reservation_info(&j, &info);
        } else {
                char b1[FORMAT_SIZE_MAX], b2[FORMAT_SIZE_MAX];
                printf("Reserved %s: %s as %" PRIu64 " pages of %s (", info.name,
                       size_str(b1, info.pages * info.page_size), info.pages, size_str(b2, info.page_size));
                print_node_pages(stdout, &info);
                printf("), lifetime %s.\n", info.lifetime);
        }
        reservation_info_done(&info);

        if (arg_lifetime && streq(arg_lifetime, "caller")) {
                if (!arg_json)
                        printf("Holding %s while hugepagectl runs; it is released when hugepagectl exits "
                               "(Ctrl-C).\n", name);
                fflush(stdout);
                return run_until_signal(bus);
        }
        return EXIT_OK;
}

static int verb_release(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *what = NULL;
        int r;

        if (asprintf(&what, "cannot release %s", args[0]) < 0)
                return report_bus_error("cannot release", NULL, -ENOMEM);
        r = bus_call_manager(bus, "Release", &error, NULL, "s", args[0]);
        if (r < 0)
                return report_bus_error(what, &error, r);
        if (arg_json) {
                Json j = JSON_INIT;
                json_begin_object(&j);
                json_key(&j, "name"); json_string(&j, args[0]);
                json_key(&j, "released"); json_bool(&j, true);
                json_end_object(&j);
        } else
                printf("Released %s.\n", args[0]);
        return EXIT_OK;
}

/* ---- monitor ---- */

typedef union BasicValue {
        uint64_t u64;
        int64_t i64;
        uint32_t u32;
        int32_t i32;
        uint16_t u16;
        int16_t i16;
        uint8_t u8;
        int b;
        const char *s;
        double d;
} BasicValue;

static bool type_is_container(char type) {
        return type == 'a' || type == 'v' || type == 'r' || type == 'e';
}

/* A basic value as text; buf is used for numbers. */
static const char *basic_to_string(char type, const BasicValue *v, char *buf, size_t len) {
        switch (type) {
        case 'y': snprintf(buf, len, "%u", v->u8); return buf;
        case 'b': return v->b ? "yes" : "no";
        case 'n': snprintf(buf, len, "%d", v->i16); return buf;
        case 'q': snprintf(buf, len, "%u", v->u16); return buf;
        case 'i': snprintf(buf, len, "%" PRIi32, v->i32); return buf;
        case 'u': case 'h': snprintf(buf, len, "%" PRIu32, v->u32); return buf;
        case 'x': snprintf(buf, len, "%" PRIi64, v->i64); return buf;
        case 't': snprintf(buf, len, "%" PRIu64, v->u64); return buf;
        case 'd': snprintf(buf, len, "%g", v->d); return buf;
        default: return v->s;
        }
}

/* Any D-Bus value as JSON: dicts become objects (keys as strings), arrays and structs arrays, variants their
 * contents. */
static int json_value(Json *j, sd_bus_message *m) {
        const char *contents;
        BasicValue v;
        char type, buf[32];
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;
        if (type_is_container(type)) {
                bool dict = type == 'a' && contents[0] == '{';

                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                if (type == 'e') {
                        /* A dict entry: the key, then the value. */
                        r = sd_bus_message_peek_type(m, &type, &contents);
                        if (r <= 0)
                                return r < 0 ? r : -EBADMSG;
                        r = sd_bus_message_read_basic(m, type, &v);
                        if (r < 0)
                                return r;
                        json_key(j, basic_to_string(type, &v, buf, sizeof buf));
                        r = json_value(j, m);
                        if (r < 0)
                                return r;
                        return sd_bus_message_exit_container(m);
                }
                if (dict)
                        json_begin_object(j);
                else if (type != 'v')
                        json_begin_array(j);
                while ((r = sd_bus_message_at_end(m, false)) == 0) {
                        r = json_value(j, m);
                        if (r < 0)
                                return r;
                }
                if (r < 0)
                        return r;
                if (dict)
                        json_end_object(j);
                else if (type != 'v')
                        json_end_array(j);
                return sd_bus_message_exit_container(m);
        }

        r = sd_bus_message_read_basic(m, type, &v);
        if (r < 0)
                return r;
        switch (type) {
        case 'y': json_u64(j, v.u8); break;
        case 'b': json_bool(j, v.b); break;
        case 'n': json_i64(j, v.i16); break;
        case 'q': json_u64(j, v.u16); break;
        case 'i': json_i64(j, v.i32); break;
        case 'u': case 'h': json_u64(j, v.u32); break;
        case 'x': json_i64(j, v.i64); break;
        case 't': json_u64(j, v.u64); break;
        case 'd': json_double(j, v.d); break;
        default: json_string(j, v.s); break;
        }
        return 0;
}

/* Any D-Bus value as text for the monitor's lines: 512, vm1, [(0, 256), (1, 256)]. */
static int text_value(FILE *f, sd_bus_message *m) {
        const char *contents;
        BasicValue v;
        char type, buf[32];
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;
        if (type_is_container(type)) {
                bool first = true;

                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        return r;
                fputs(type == 'a' ? "[" : type == 'r' ? "(" : "", f);
                while ((r = sd_bus_message_at_end(m, false)) == 0) {
                        if (!first)
                                fputs(type == 'e' ? ": " : ", ", f);
                        first = false;
                        r = text_value(f, m);
                        if (r < 0)
                                return r;
                }
                if (r < 0)
                        return r;
                fputs(type == 'a' ? "]" : type == 'r' ? ")" : "", f);
                return sd_bus_message_exit_container(m);
        }
        r = sd_bus_message_read_basic(m, type, &v);
        if (r < 0)
                return r;
        fputs(basic_to_string(type, &v, buf, sizeof buf), f);
        return 0;
}

static uint64_t realtime_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* "reservation vm1", "pool 2 MiB node 0", "pool 2 MiB (all nodes)", "manager", or the path itself. */
static void print_object_label(FILE *f, const char *path) {
        _cleanup_free_ char *name = NULL;
        char b[FORMAT_SIZE_MAX];
        unsigned long long kb;
        int node = -1, n = 0;

        if (streq(path, HP_BUS_PATH)) {
                fputs("manager", f);
                return;
        }
        if (sd_bus_path_decode(path, HP_BUS_RESERVATION_PREFIX, &name) > 0 && name) {
                fprintf(f, "reservation %s", name);
                return;
        }
        if (strneq(path, HP_BUS_POOL_PREFIX "/", strlen(HP_BUS_POOL_PREFIX "/"))) {
                const char *p = path + strlen(HP_BUS_POOL_PREFIX "/");
                if (sscanf(p, "%llukB%n", &kb, &n) == 1 && (p[n] == '\0' || sscanf(p + n, "/node%d", &node) == 1)) {
                        fprintf(f, "pool %s %s", size_str(b, (uint64_t) kb * 1024),
                                node >= 0 ? "node" : "(all nodes)");
                        if (node >= 0)
                                fprintf(f, " %d", node);
                        return;
                }
        }
        fputs(path, f);
}

static int monitor_finish_line(sd_bus_message *m, int r) {
        if (r < 0) {
                fprintf(stderr, "hugepagectl: cannot parse %s signal: %s\n", sd_bus_message_get_member(m),
                        strerror(-r));
                fputc('\n', stdout);
        }
        fflush(stdout);
        return 0;
}

/* Opens a monitor event's JSON object with the fields every event has. */
static void json_begin_event(Json *j, const char *event) {
        json_begin_object(j);
        json_key(j, "time_usec");
        json_u64(j, realtime_usec());
        json_key(j, "event");
        json_string(j, event);
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *path = sd_bus_message_get_path(m), *iface;
        int r;

        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0)
                return monitor_finish_line(m, r);
        if (arg_json) {
                Json j = JSON_INIT;
                json_begin_event(&j, "PropertiesChanged");
                json_key(&j, "path"); json_string(&j, path);
                json_key(&j, "interface"); json_string(&j, iface);
                json_key(&j, "changed");
                r = json_value(&j, m);
                if (r >= 0) {
                        json_key(&j, "invalidated");
                        r = json_value(&j, m);
                }
                if (r >= 0)
                        json_end_object(&j);
                return monitor_finish_line(m, r);
        }

        print_timestamp(stdout);
        print_object_label(stdout, path);
        fputs(":", stdout);
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *prop;
                r = sd_bus_message_read(m, "s", &prop);
                if (r < 0)
                        break;
                printf(" %s=", prop);
                r = text_value(stdout, m);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0) {
                char **inv = NULL;
                r = sd_bus_message_read_strv(m, &inv);
                for (char **i = inv; r >= 0 && i && *i; i++)
                        printf(" %s changed", *i);
                strv_free(inv);
        }
        if (r >= 0)
                fputc('\n', stdout);
        return monitor_finish_line(m, r);
}

/* InterfacesAdded and InterfacesRemoved as JSON: the path, then the rest of the signal as it is. */
static int monitor_print_interfaces_json(sd_bus_message *m, const char *event, const char *path) {
        Json j = JSON_INIT;
        int r;

        json_begin_event(&j, event);
        json_key(&j, "path");
        json_string(&j, path);
        json_key(&j, "interfaces");
        r = json_value(&j, m);
        if (r >= 0)
                json_end_object(&j);
        return monitor_finish_line(m, r);
}

static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *path, *iface;
        bool first = true;
        int r;

        r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return monitor_finish_line(m, r);
        if (arg_json)
                return monitor_print_interfaces_json(m, "InterfacesAdded", path);

        print_timestamp(stdout);
        print_object_label(stdout, path);
        fputs(" added", stdout);
        r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
                r = sd_bus_message_read(m, "s", &iface);
                if (r < 0)
                        break;
                if (streq(iface, HP_BUS_IFACE_RESERVATION)) {
                        ReservationInfo info = {};
                        char b1[FORMAT_SIZE_MAX], b2[FORMAT_SIZE_MAX];

                        r = reservation_info_read(m, &info);
                        if (r >= 0) {
                                printf(": %s as %" PRIu64 " pages of %s (", size_str(b1, info.pages * info.page_size),
                                       info.pages, size_str(b2, info.page_size));
                                print_node_pages(stdout, &info);
                                printf("), lifetime %s, uid %" PRIu32, info.lifetime ?: "-", info.uid);
                        }
                        reservation_info_done(&info);
                } else {
                        /* Every object has the standard interfaces; name only the interesting ones. */
                        if (!strneq(iface, "org.freedesktop.DBus.", strlen("org.freedesktop.DBus."))) {
                                printf("%s%s", first ? " (" : ", ", iface);
                                first = false;
                        }
                        r = sd_bus_message_skip(m, "a{sv}");
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0) {
                fputs(first ? "\n" : ")\n", stdout);
                r = sd_bus_message_exit_container(m);
        }
        return monitor_finish_line(m, r);
}

static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *path;
        int r;

        r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return monitor_finish_line(m, r);
        if (arg_json)
                return monitor_print_interfaces_json(m, "InterfacesRemoved", path);
        print_timestamp(stdout);
        print_object_label(stdout, path);
        fputs(" removed\n", stdout);
        return monitor_finish_line(m, 0);
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *name, *old_owner, *new_owner;
        int r;

        r = sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner);
        if (r < 0)
                return monitor_finish_line(m, r);
        if (arg_json) {
                Json j = JSON_INIT;
                json_begin_event(&j, "NameOwnerChanged");
                json_key(&j, "running"); json_bool(&j, new_owner[0] != '\0');
                json_key(&j, "owner"); json_string(&j, new_owner);
                json_end_object(&j);
        } else {
                print_timestamp(stdout);
                if (new_owner[0])
                        printf("hugepaged is running (%s)\n", new_owner);
                else
                        printf("hugepaged left the bus\n");
        }
        return monitor_finish_line(m, 0);
}

static int verb_monitor(sd_bus *bus, char **args) {
        static const struct {
                const char *interface, *member;
                sd_bus_message_handler_t handler;
        } matches[] = {
                { "org.freedesktop.DBus.Properties", "PropertiesChanged", on_properties_changed },
                { "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", on_interfaces_added },
                { "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved", on_interfaces_removed },
        };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int has = 0, r;

        for (size_t i = 0; i < ELEMENTSOF(matches); i++) {
                r = sd_bus_match_signal(bus, NULL, HP_BUS_NAME, NULL, matches[i].interface, matches[i].member,
                                        matches[i].handler, NULL);
                if (r < 0)
                        return report_bus_error("cannot monitor", NULL, r);
        }
        r = sd_bus_add_match(bus, NULL,
                             "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                             "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" HP_BUS_NAME "'",
                             on_name_owner_changed, NULL);
        if (r < 0)
                return report_bus_error("cannot monitor", NULL, r);

        /* The matches above are in place once AddMatch returned, so nothing from here on is missed. */
        /* On stderr, so stdout stays one event per line (and JSON only with --json). */
        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", &error, &reply, "s", HP_BUS_NAME);
        if (r < 0)
                return report_bus_error("cannot monitor", &error, r);
        r = sd_bus_message_read(reply, "b", &has);
        if (r < 0)
                return report_bus_error("cannot monitor", NULL, r);
        fprintf(stderr, "Monitoring %s; press Ctrl-C to stop.%s\n", HP_BUS_NAME,
                has ? "" : " hugepaged is not running yet.");
        fflush(stdout);
        return run_until_signal(bus);
}

/* ---- command line ---- */

static void help(void) {
        printf("Usage: hugepagectl [OPTIONS...] COMMAND ...\n\n"
               "Query and change the huge page pools and reservations of hugepaged.\n\n"
               "Commands:\n"
               "  status                  Show the pools per page size and node, the hugetlbfs\n"
               "                          mount of each page size, and the reservations (default)\n"
               "  pools                   List the pools: total, free, surplus, reserved, floor, adopted\n"
               "  list                    List the reservations\n"
               "  show NAME               Show one reservation\n"
               "  reserve NAME SIZE       Reserve SIZE of huge pages under NAME\n"
               "  release NAME            Release a reservation\n"
               "  monitor                 Print a line for every change until Ctrl-C\n\n"
               "Options:\n"
               "  -h --help               Show this help\n"
               "     --version            Show the package version\n"
               "     --json               Print JSON (monitor: one object per line)\n"
               "     --page-size=SIZE     reserve: the page size, e.g. 2M or 1G\n"
               "                          (default: the kernel's default huge page size)\n"
               "     --node=N[,M...]      reserve: take the pages from these NUMA nodes only,\n"
               "                          e.g. 1 or 0,1 or 0-3 (default: any node with memory)\n"
               "     --node-size=N:SIZE   reserve: take exactly SIZE from node N; repeat it or\n"
               "                          separate with commas. SIZE may then be left out, or\n"
               "                          must be the sum\n"
               "     --lifetime=LIFETIME  reserve: how long the reservation lasts:\n"
               "                          explicit  until 'release', across daemon restarts (default)\n"
               "                          pid       until the process given with --pid= exits\n"
               "                          caller    while hugepagectl runs: it stays in the\n"
               "                                    foreground after reserving, and the pages are\n"
               "                                    released when it exits (Ctrl-C, SIGTERM, SIGHUP)\n"
               "     --pid=PID            reserve: the process for --lifetime=pid (implies it)\n\n"
               "SIZE is bytes, or a number with a binary suffix: 512M, 4G, 4GiB, 2048kB\n"
               "(K, M, G, T; 1G = 1024^3 bytes). It is rounded up to whole pages.\n\n"
               "Exit status:\n"
               "  0  success\n"
               "  1  failure reported by hugepaged, or any other error\n"
               "  2  invalid arguments: a bad command line or size, or arguments hugepaged\n"
               "     rejected (InvalidArgs, UnsupportedPageSize, NoSuchNode)\n"
               "  3  no such reservation (NoSuchReservation)\n"
               "  4  not enough huge pages, or a limit reached (InsufficientPages, LimitExceeded)\n"
               "  5  hugepaged is not reachable: no system bus, or org.hugepaged1 is not on it\n\n"
               "The bus is the system bus, or the one DBUS_SYSTEM_BUS_ADDRESS names.\n"
               "See hugepagectl(1) and org.hugepaged1(5).\n");
}

static int add_node_size(const char *spec) {
        _cleanup_free_ char *copy = strdup(spec);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *colon = strchr(tok, ':');
                uint32_t node;
                uint64_t bytes;

                if (!colon)
                        goto bad;
                *colon = '\0';
                if (parse_u32(tok, &node) < 0 || node >= NODE_MAX || parse_size(colon + 1, &bytes) < 0 ||
                    bytes == 0)
                        goto bad;
                for (size_t i = 0; i < arg_n_node_sizes; i++)
                        if (arg_node_sizes[i].node == node) {
                                usage_error("--node-size= names node %" PRIu32 " twice", node);
                                return -EINVAL;
                        }
                if (arg_n_node_sizes >= NODE_MAX) {
                        usage_error("--node-size=: too many nodes");
                        return -EINVAL;
                }
                NodeAmount *t = realloc(arg_node_sizes, (arg_n_node_sizes + 1) * sizeof(*t));
                if (!t)
                        return -ENOMEM;
                arg_node_sizes = t;
                arg_node_sizes[arg_n_node_sizes++] = (NodeAmount) { node, bytes };
        }
        return 0;
bad:
        usage_error("invalid --node-size=%s: expected NODE:SIZE, e.g. 1:4G", spec);
        return -EINVAL;
}

/* Returns 1 to go on, 0 to exit successfully (--help), or a negative errno after printing the problem. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_NAMES,
                ARG_PAGE_SIZE,
                ARG_NODE,
                ARG_NODE_SIZE,
                ARG_LIFETIME,
                ARG_PID,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", no_argument, NULL, ARG_JSON },
                /* Hidden, for the bash completion: list prints the names only. */
                { "names", no_argument, NULL, ARG_NAMES },
                { "page-size", required_argument, NULL, ARG_PAGE_SIZE },
                { "node", required_argument, NULL, ARG_NODE },
                { "node-size", required_argument, NULL, ARG_NODE_SIZE },
                { "lifetime", required_argument, NULL, ARG_LIFETIME },
                { "pid", required_argument, NULL, ARG_PID },
                {},
        };
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("hugepagectl %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_NAMES:
                        arg_names = true;
                        break;
                case ARG_PAGE_SIZE:
                        if (parse_size(optarg, &arg_page_size) < 0 || arg_page_size == 0) {
                                usage_error("invalid --page-size=%s: expected e.g. 2M, 1G or bytes", optarg);
                                return -EINVAL;
                        }
                        arg_reserve_options = true;
                        break;
                case ARG_NODE:
                        free(arg_nodes);
                        arg_nodes = NULL;
                        r = parse_node_list(optarg, &arg_nodes, &arg_n_nodes);
                        if (r < 0 || arg_n_nodes == 0) {
                                usage_error("invalid --node=%s: expected node numbers, e.g. 1 or 0,1 or 0-3", optarg);
                                return -EINVAL;
                        }
                        arg_reserve_options = true;
                        break;
                case ARG_NODE_SIZE:
                        r = add_node_size(optarg);
                        if (r < 0)
                                return r;
                        arg_reserve_options = true;
                        break;
                case ARG_LIFETIME:
                        if (!streq(optarg, "explicit") && !streq(optarg, "caller") && !streq(optarg, "pid")) {
                                usage_error("invalid --lifetime=%s: expected explicit, caller or pid", optarg);
                                return -EINVAL;
                        }
                        arg_lifetime = optarg;
                        arg_reserve_options = true;
                        break;
                case ARG_PID:
                        if (parse_u32(optarg, &arg_pid) < 0 || arg_pid == 0) {
                                usage_error("invalid --pid=%s: expected a process ID", optarg);
                                return -EINVAL;
                        }
                        arg_pid_set = true;
                        arg_reserve_options = true;
                        break;
                case ':':
                        usage_error("option '%s' needs an argument", argv[optind - 1]);
                        return -EINVAL;
                case '?':
                        if (optopt)
                                usage_error("unknown option '-%c'; see 'hugepagectl --help'", optopt);
                        else
                                usage_error("unknown option '%s'; see 'hugepagectl --help'", argv[optind - 1]);
                        return -EINVAL;
                default:
                        return -EINVAL;
                }

        if (arg_pid_set) {
                if (!arg_lifetime)
                        arg_lifetime = "pid";
                else if (!streq(arg_lifetime, "pid")) {
                        usage_error("--pid= goes with --lifetime=pid, not --lifetime=%s", arg_lifetime);
                        return -EINVAL;
                }
        } else if (arg_lifetime && streq(arg_lifetime, "pid")) {
                usage_error("--lifetime=pid needs --pid=PID");
                return -EINVAL;
        }
        if (arg_n_nodes > 0 && arg_n_node_sizes > 0) {
                usage_error("give either --node= or --node-size=, not both");
                return -EINVAL;
        }
        return 1;
}

typedef struct Verb {
        const char *name;
        unsigned min_args, max_args;
        const char *synopsis;
        int (*run)(sd_bus *bus, char **args);
} Verb;

static const Verb verbs[] = {
        { "status", 0, 0, "status", verb_status },
        { "pools", 0, 0, "pools", verb_pools },
        { "list", 0, 0, "list", verb_list },
        { "show", 1, 1, "show NAME", verb_show },
        { "reserve", 1, 2, "reserve NAME SIZE", verb_reserve },
        { "release", 1, 1, "release NAME", verb_release },
        { "monitor", 0, 0, "monitor", verb_monitor },
};

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const Verb *verb = NULL;
        const char *name;
        unsigned n_args;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r == 0 ? EXIT_OK : r == -ENOMEM ? EXIT_FAIL : EXIT_USAGE;

        name = optind < argc ? argv[optind] : "status";
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        verb = &verbs[i];
        if (!verb) {
                usage_error("unknown command '%s'; see 'hugepagectl --help'", name);
                return EXIT_USAGE;
        }
        n_args = optind < argc ? (unsigned) (argc - optind - 1) : 0;
        if (n_args < verb->min_args || n_args > verb->max_args) {
                usage_error("%s: %s; usage: hugepagectl %s", verb->name,
                            n_args < verb->min_args ? "missing argument" : "too many arguments", verb->synopsis);
                return EXIT_USAGE;
        }
        if (arg_reserve_options && verb->run != verb_reserve) {
                usage_error("%s: --page-size=, --node=, --node-size=, --lifetime= and --pid= go with 'reserve' "
                            "only", verb->name);
                return EXIT_USAGE;
        }
        if (arg_names && verb->run != verb_list) {
                usage_error("%s: --names goes with 'list' only", verb->name);
                return EXIT_USAGE;
        }
        /* Catch a bad name before the bus does, and with the rules spelled out. */
        if ((verb->run == verb_reserve || verb->run == verb_show || verb->run == verb_release) &&
            !reservation_name_is_valid(argv[optind + 1])) {
                usage_error("%s: invalid reservation name '%s': use 1 to %d characters from "
                            "A-Z a-z 0-9 . _ : @ + -", verb->name, argv[optind + 1], RESERVATION_NAME_MAX);
                return EXIT_USAGE;
        }

        r = bus_connect(&bus);
        if (r != EXIT_OK)
                return r;
        r = verb->run(bus, optind < argc ? argv + optind + 1 : argv + argc);
        if (fflush(stdout) != 0 && r == EXIT_OK) {
                fprintf(stderr, "hugepagectl: cannot write the output: %s\n", strerror(errno));
                r = EXIT_FAIL;
        }
        free(arg_nodes);
        free(arg_node_sizes);
        return r;
}
