/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepaged-reserve: the start and stop commands of hugepaged-reserve@.service. Reads one reservation file, NAME.conf
 * in $HUGEPAGED_RESERVATIONS_DIR (default /etc/hugepaged/reservations.d), with inih and util.c's parsers, and asks
 * hugepaged for it over D-Bus. See hugepaged-reserve(8).
 *
 * usage: hugepaged-reserve start NAME | stop NAME | check NAME
 *
 * Exit status: 0 done; 1 the daemon refused or could not be reached (its message is on stderr); 2 bad usage, or a
 * missing or invalid reservation file. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ini.h>

#include "bus-client.h"
#include "macro.h"
#include "util.h"

#define PROG "hugepaged-reserve"
#define DEFAULT_DIR "/etc/hugepaged/reservations.d"
#define BLANKS " \t\n\r\v\f"

static const char *arg_dir = DEFAULT_DIR;

static _noreturn_ void die(int status, const char *fmt, ...) _printf_(2, 3);
static _noreturn_ void die(int status, const char *fmt, ...) {
        va_list ap;

        fputs(PROG ": ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(status);
}

static _noreturn_ void usage(void) {
        fputs("usage: " PROG " start NAME | stop NAME | check NAME\n", stderr);
        exit(EXIT_USAGE);
}

/* ---- the reservation file ---- */

/* The values as written (trimmed); NULL when the key is not set. */
typedef struct ReservationFile {
        char *path;
        char *size, *page_size, *nodes, *node_sizes, *lifetime, *hold;
} ReservationFile;

static void reservation_file_done(ReservationFile *f) {
        free(f->path);
        free(f->size);
        free(f->page_size);
        free(f->nodes);
        free(f->node_sizes);
        free(f->lifetime);
        free(f->hold);
}

typedef struct ParseContext {
        ReservationFile *file;
        FILE *f;
        int line;
        bool in_reservation, seen_section;
        char *error; /* the first problem, "FILE:LINE: ..."; parsing stops there */
} ParseContext;

static char *trim(char *s) {
        char *e;

        s += strspn(s, BLANKS);
        e = s + strlen(s);
        while (e > s && strchr(BLANKS, e[-1]))
                e--;
        *e = '\0';
        return s;
}

static int parse_error(ParseContext *ctx, const char *fmt, ...) _printf_(2, 3);
static int parse_error(ParseContext *ctx, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        if (ctx->error)
                return 0;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (asprintf(&ctx->error, "%s:%d: %s", ctx->file->path, ctx->line, msg ?: "out of memory") < 0)
                ctx->error = NULL;
        return 0;
}

/* inih splits "Key = value" and drops comments; this reader feeds it one line at a time and handles what inih would
 * be lenient about: the one [Reservation] section, lines without '=', and blanks before a key (which inih would take
 * for the continuation of the previous value). It stops at the first problem. */
static char *file_reader(char *str, int num, void *stream) {
        ParseContext *ctx = stream;
        _cleanup_free_ char *buf = NULL;
        size_t cap = 0;
        char *line, *eq, *colon;

        if (ctx->error)
                return NULL;
        if (getline(&buf, &cap, ctx->f) < 0)
                return NULL;
        ctx->line++;
        line = trim(buf);
        str[0] = '\0';
        if (line[0] == '\0' || line[0] == '#' || line[0] == ';')
                return str;
        if (line[0] == '[' && line[strlen(line) - 1] == ']') {
                char *section = line + 1;

                section[strlen(section) - 1] = '\0';
                section = trim(section);
                if (!streq(section, "Reservation")) {
                        parse_error(ctx, "unknown section [%s], expected [Reservation]", section);
                        return NULL;
                }
                ctx->in_reservation = ctx->seen_section = true;
                return str;
        }
        eq = strchr(line, '=');
        if (!eq) {
                parse_error(ctx, "expected Key=value: %s", line);
                return NULL;
        }
        if (!ctx->in_reservation) {
                parse_error(ctx, "%s is outside the [Reservation] section", line);
                return NULL;
        }
        /* inih also splits at ':', but here a key is everything before the '='. */
        colon = strchr(line, ':');
        if (colon && colon < eq) {
                *eq = '\0';
                parse_error(ctx, "unknown key %s (expected Size, PageSize, Nodes, NodeSizes, Lifetime or Hold)",
                            trim(line));
                return NULL;
        }
        if (strlen(line) + 1 > (size_t) num) {
                parse_error(ctx, "line longer than %d characters", num - 1);
                return NULL;
        }
        strcpy(str, line);
        return str;
}

static int file_handler(void *user, const char *section, const char *key, const char *value) {
        ParseContext *ctx = user;
        ReservationFile *f = ctx->file;
        char **field;

        if (streq(key, "Size"))
                field = &f->size;
        else if (streq(key, "PageSize"))
                field = &f->page_size;
        else if (streq(key, "Nodes"))
                field = &f->nodes;
        else if (streq(key, "NodeSizes"))
                field = &f->node_sizes;
        else if (streq(key, "Lifetime"))
                field = &f->lifetime;
        else if (streq(key, "Hold"))
                field = &f->hold;
        else
                return parse_error(ctx, "unknown key %s (expected Size, PageSize, Nodes, NodeSizes, Lifetime or Hold)",
                                   key);
        free(*field);
        *field = NULL;
        /* "Key=" with nothing after it is the same as no Key= at all. */
        if (value[0] == '\0')
                return 1;
        *field = strdup(value);
        if (!*field)
                return parse_error(ctx, "out of memory");
        return 1;
}

/* Fills ret from arg_dir/NAME.conf, or exits 2 naming the file and line. */
static void read_file(const char *name, ReservationFile *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        ParseContext ctx = { .file = ret };
        struct stat st;
        int r;

        if (asprintf(&ret->path, "%s/%s.conf", arg_dir, name) < 0)
                die(EXIT_FAIL, "out of memory");
        if (stat(ret->path, &st) < 0 || !S_ISREG(st.st_mode))
                die(EXIT_USAGE, "%s: no such reservation file", ret->path);
        f = fopen(ret->path, "re");
        if (!f)
                die(EXIT_USAGE, "%s: cannot read it", ret->path);
        ctx.f = f;
        r = ini_parse_stream(file_reader, &ctx, file_handler, &ctx);
        if (ctx.error)
                die(EXIT_USAGE, "%s", ctx.error);
        if (r != 0)
                die(EXIT_USAGE, "%s:%d: syntax error", ret->path, r);
        if (!ctx.seen_section)
                die(EXIT_USAGE, "%s: no [Reservation] section", ret->path);
}

/* ---- what Reserve gets ---- */

typedef struct ReserveArgs {
        uint64_t page_size, bytes;
        uint32_t *nodes;
        size_t n_nodes;
        NodeAmount *node_bytes;
        size_t n_node_bytes;
        bool hold;
} ReserveArgs;

static void reserve_args_done(ReserveArgs *a) {
        free(a->nodes);
        free(a->node_bytes);
}

/* Nodes= and NodeSizes= separate their items with commas or blanks: the items, NULL-terminated; exits on ENOMEM. */
static char **split_items(const char *value) {
        _cleanup_free_ char *copy = strdup(value);
        char **items = calloc(strlen(value) / 2 + 2, sizeof(char *));
        char *state = NULL;
        size_t n = 0;

        if (!copy || !items)
                die(EXIT_FAIL, "out of memory");
        for (char *i = strtok_r(copy, "," BLANKS, &state); i; i = strtok_r(NULL, "," BLANKS, &state))
                if (!(items[n++] = strdup(i)))
                        die(EXIT_FAIL, "out of memory");
        return items;
}

static void parse_nodes(const ReservationFile *f, ReserveArgs *a) {
        _cleanup_strv_free_ char **items = split_items(f->nodes);
        _cleanup_free_ char *list = NULL;
        size_t len = 0;

        if (!items[0])
                die(EXIT_USAGE, "%s: Nodes= is empty", f->path);
        /* Each item is a node or a range as util.c reads node lists; then all of them, sorted and once each. */
        for (char **i = items; *i; i++) {
                _cleanup_free_ uint32_t *nodes = NULL;
                size_t n = 0;

                if (parse_node_list(*i, &nodes, &n) < 0 || n == 0)
                        die(EXIT_USAGE, "%s: Nodes=%s: '%s' is not a node number", f->path, f->nodes, *i);
                len += strlen(*i) + 1;
        }
        list = calloc(len + 1, 1);
        if (!list)
                die(EXIT_FAIL, "out of memory");
        for (char **i = items; *i; i++)
                strcat(strcat(list, i == items ? "" : ","), *i);
        if (parse_node_list(list, &a->nodes, &a->n_nodes) < 0)
                die(EXIT_FAIL, "out of memory");
}

static void parse_node_sizes(const ReservationFile *f, ReserveArgs *a) {
        _cleanup_strv_free_ char **items = split_items(f->node_sizes);
        size_t n = 0;

        while (items[n])
                n++;
        if (n == 0)
                die(EXIT_USAGE, "%s: NodeSizes= is empty", f->path);
        a->node_bytes = calloc(n, sizeof(NodeAmount));
        if (!a->node_bytes)
                die(EXIT_FAIL, "out of memory");
        for (char **i = items; *i; i++) {
                char *colon = strchr(*i, ':');
                uint32_t node;
                uint64_t bytes;

                if (!colon)
                        die(EXIT_USAGE, "%s: NodeSizes=%s: '%s' is not NODE:SIZE", f->path, f->node_sizes, *i);
                *colon = '\0';
                if (parse_u32(*i, &node) < 0 || node >= NODE_MAX)
                        die(EXIT_USAGE, "%s: NodeSizes=%s: '%s' is not a node number", f->path, f->node_sizes,
                            *i);
                if (parse_size(colon + 1, &bytes) < 0)
                        die(EXIT_USAGE, "%s: NodeSizes=%s: '%s' is not a size", f->path, f->node_sizes, colon + 1);
                a->node_bytes[a->n_node_bytes++] = (NodeAmount) { node, bytes };
        }
}

/* Checks the values in the order the file's documentation lists them, or exits 2. */
static void build_args(const ReservationFile *f, ReserveArgs *a) {
        const char *lifetime = f->lifetime ?: "explicit";

        if (f->size && parse_size(f->size, &a->bytes) < 0)
                die(EXIT_USAGE, "%s: Size=%s: expected a size such as 4G, 512M or bytes", f->path, f->size);
        if (f->page_size && parse_size(f->page_size, &a->page_size) < 0)
                die(EXIT_USAGE, "%s: PageSize=%s: expected a page size such as 2M, 1G or bytes", f->path,
                    f->page_size);
        if (streq(lifetime, "caller") || streq(lifetime, "pid"))
                die(EXIT_USAGE, "%s: Lifetime=%s: a reservation made by a unit outlives the command that makes it; "
                    "only Lifetime=explicit is possible here (the unit's ExecStop= releases it)", f->path, lifetime);
        if (!streq(lifetime, "explicit"))
                die(EXIT_USAGE, "%s: Lifetime=%s: expected explicit", f->path, lifetime);
        if (f->nodes)
                parse_nodes(f, a);
        if (f->node_sizes)
                parse_node_sizes(f, a);
        if (f->hold && parse_bool(f->hold, &a->hold) < 0)
                die(EXIT_USAGE, "%s: Hold=%s: expected yes or no", f->path, f->hold);
        if (!f->size && !f->node_sizes)
                die(EXIT_USAGE, "%s: Size= or NodeSizes= is required", f->path);
}

/* What check prints: Reserve's arguments as busctl takes them after the signature "stta{sv}". */
static void print_args(const char *name, const ReserveArgs *a) {
        printf("%s %" PRIu64 " %" PRIu64 " %zu lifetime s explicit", name, a->page_size, a->bytes,
               (size_t) (1 + (a->n_nodes > 0) + (a->n_node_bytes > 0) + a->hold));
        if (a->n_nodes > 0) {
                printf(" nodes au %zu", a->n_nodes);
                for (size_t i = 0; i < a->n_nodes; i++)
                        printf(" %" PRIu32, a->nodes[i]);
        }
        if (a->n_node_bytes > 0) {
                printf(" node_bytes a(ut) %zu", a->n_node_bytes);
                for (size_t i = 0; i < a->n_node_bytes; i++)
                        printf(" %" PRIu32 " %" PRIu64, a->node_bytes[i].node, a->node_bytes[i].amount);
        }
        if (a->hold)
                printf(" hold b true");
        printf("\n");
}

/* ---- the bus ---- */

/* HUGEPAGED_RESERVE_TIMEOUT, as busctl --timeout= took it: "infinity", seconds, or a time span such as "5min" or
 * "1h 30s". The daemon may compact memory and retry for a while before it answers (see [Allocation] in
 * hugepaged.conf(5)); the unit's TimeoutStartSec= is the real bound. */
static int parse_timeout(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "", 1000000 },          { "s", 1000000 },         { "sec", 1000000 },
                { "second", 1000000 },    { "seconds", 1000000 },   { "ms", 1000 },
                { "msec", 1000 },         { "us", 1 },              { "usec", 1 },
                { "m", 60000000 },        { "min", 60000000 },      { "minute", 60000000 },
                { "minutes", 60000000 },  { "h", 3600000000 },      { "hr", 3600000000 },
                { "hour", 3600000000 },   { "hours", 3600000000 },  { "d", 86400000000 },
                { "day", 86400000000 },   { "days", 86400000000 },
        };
        uint64_t total = 0;
        const char *p = s;

        if (streq(s, "infinity")) {
                *ret = UINT64_MAX;
                return 0;
        }
        p += strspn(p, BLANKS);
        if (*p == '\0')
                return -EINVAL;
        while (*p != '\0') {
                char *end;
                unsigned long long v;
                size_t len;
                bool found = false;

                if (*p < '0' || *p > '9')
                        return -EINVAL;
                errno = 0;
                v = strtoull(p, &end, 10);
                if (errno != 0)
                        return -ERANGE;
                p = end + strspn(end, BLANKS);
                len = strspn(p, "abcdefghijklmnopqrstuvwxyz");
                for (size_t i = 0; i < ELEMENTSOF(units) && !found; i++)
                        if (strlen(units[i].suffix) == len && strneq(p, units[i].suffix, len)) {
                                if (v > (UINT64_MAX - total) / units[i].usec)
                                        return -ERANGE;
                                total += v * units[i].usec;
                                found = true;
                        }
                if (!found)
                        return -EINVAL;
                p += len;
                p += strspn(p, BLANKS);
        }
        *ret = total;
        return 0;
}

static sd_bus *bus = NULL;
static char call_error[1024];

/* Connects on first use. On failure call_error says why, without any prefix of ours. */
static int connect_bus(void) {
        const char *t = getenv("HUGEPAGED_RESERVE_TIMEOUT") ?: "infinity";
        uint64_t timeout;
        int r;

        if (bus)
                return 0;
        if (parse_timeout(t, &timeout) < 0 || timeout == 0) {
                snprintf(call_error, sizeof call_error, "HUGEPAGED_RESERVE_TIMEOUT=%s: expected a time span", t);
                return -EINVAL;
        }
        r = bus_client_connect(NULL, timeout, &bus);
        if (r < 0) {
                snprintf(call_error, sizeof call_error, "Failed to connect to bus: %s", strerror(-r));
                return r;
        }
        /* As busctl did: a polkit agent may ask, though the unit runs as root. */
        (void) sd_bus_set_allow_interactive_authorization(bus, true);
        return 0;
}

static void set_call_error(const sd_bus_error *e, int r) {
        snprintf(call_error, sizeof call_error, "%s",
                 sd_bus_error_is_set(e) ? (e->message ?: e->name) : strerror(-r));
}

static int call_manager(const char *method, sd_bus_message **reply, const char *types, const char *arg) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = connect_bus();
        if (r < 0)
                return r;
        r = types ? bus_call_manager(bus, method, &error, reply, types, arg) :
                    bus_call_manager(bus, method, &error, reply, NULL);
        if (r < 0)
                set_call_error(&error, r);
        return r;
}

static int verb_start(const char *name, const ReservationFile *f, const ReserveArgs *a) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const ReserveOptions opts = {
                .nodes = a->nodes, .n_nodes = a->n_nodes,
                .node_bytes = a->node_bytes, .n_node_bytes = a->n_node_bytes,
                .lifetime = "explicit",
                .hold = a->hold,
        };
        _cleanup_free_ char *mount_path = NULL;
        const char *path;
        int r;

        r = connect_bus();
        if (r >= 0) {
                r = bus_call_reserve(bus, name, a->page_size, a->bytes, &opts, &error, &reply);
                if (r < 0)
                        set_call_error(&error, r);
        }
        if (r >= 0) {
                r = sd_bus_message_read(reply, "o", &path);
                if (r < 0)
                        set_call_error(NULL, r);
        }
        if (r >= 0 && a->hold) {
                sd_bus_error_free(&error);
                r = sd_bus_get_property_string(bus, HP_BUS_NAME, path, HP_BUS_IFACE_RESERVATION, "MountPath", &error,
                                               &mount_path);
                if (r < 0)
                        set_call_error(&error, r);
        }
        if (r < 0)
                die(EXIT_FAIL, "cannot reserve %s: %s", name, call_error);
        printf("reserved %s (%s): \"%s\"\n", name, f->path, path);
        /* For the VM unit's log: the mount its mem-path= names (documented as /run/hugepaged/mounts/NAME). */
        if (mount_path)
                printf("held at %s\n", mount_path);
        return EXIT_OK;
}

static int verb_stop(const char *name) {
        _cleanup_free_ char *release_error = NULL;

        if (call_manager("Release", NULL, "s", name) >= 0) {
                printf("released %s\n", name);
                return EXIT_OK;
        }
        release_error = strdup(call_error);
        /* Already gone (released by hand, say) is what stop wants; anything else is a failure. */
        if (call_manager("ListReservations", NULL, NULL, NULL) >= 0 &&
            call_manager("GetReservation", NULL, "s", name) < 0) {
                printf("%s was not reserved\n", name);
                return EXIT_OK;
        }
        die(EXIT_FAIL, "cannot release %s: %s", name, release_error ?: "out of memory");
}

int main(int argc, char *argv[]) {
        _cleanup_(reservation_file_done) ReservationFile file = {};
        _cleanup_(reserve_args_done) ReserveArgs args = {};
        const char *verb, *name;
        int r;

        if (argc != 3)
                usage();
        verb = argv[1];
        name = argv[2];
        arg_dir = getenv("HUGEPAGED_RESERVATIONS_DIR") ?: DEFAULT_DIR;
        if (arg_dir[0] == '\0')
                arg_dir = DEFAULT_DIR;
        if (!reservation_name_is_valid(name))
                die(EXIT_USAGE, "'%s' is not a reservation name (1 to %d of A-Z a-z 0-9 . _ : @ + -)", name,
                    RESERVATION_NAME_MAX);

        if (streq(verb, "check") || streq(verb, "start")) {
                read_file(name, &file);
                build_args(&file, &args);
                if (streq(verb, "check")) {
                        print_args(name, &args);
                        r = EXIT_OK;
                } else
                        r = verb_start(name, &file, &args);
        } else if (streq(verb, "stop"))
                r = verb_stop(name);
        else
                usage();

        bus = sd_bus_flush_close_unref(bus);
        if (fflush(stdout) != 0)
                die(EXIT_FAIL, "cannot write the output: %s", strerror(errno));
        return r;
}
