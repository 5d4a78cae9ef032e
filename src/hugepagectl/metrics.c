/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl metrics: what only hugepaged knows (pools with their Floor, reserved and spare pages, who holds
 * what, the allocation statistics) in the Prometheus text exposition format, on stdout or written atomically to
 * --output=FILE for node_exporter's textfile collector. A daemon that cannot be read still gives a valid
 * exposition, "hugepaged_up 0", so a dead daemon is a sample and not a gap. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-client.h"
#include "hugepagectl.h"
#include "macro.h"
#include "proxy.h"

const char *arg_output = NULL;

static void header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped, as the exposition format demands. */
static void label(FILE *f, const char *key, const char *value, bool last) {
        fprintf(f, "%s=\"", key);
        for (const char *p = value ?: ""; *p; p++)
                if (*p == '\\' || *p == '"')
                        fprintf(f, "\\%c", *p);
                else if (*p == '\n')
                        fputs("\\n", f);
                else
                        fputc(*p, f);
        fputs(last ? "\"}" : "\",", f);
}

static void node_label(FILE *f, int64_t node, bool last) {
        char b[16];

        if (node < 0)
                label(f, "node", "all", last);
        else {
                snprintf(b, sizeof b, "%" PRIi64, node);
                label(f, "node", b, last);
        }
}

static void page_size_label(FILE *f, uint64_t ps) {
        fprintf(f, "{page_size=\"%" PRIu64 "\",", ps);
}

typedef enum PoolMetric {
        POOL_TOTAL,
        POOL_FREE,
        POOL_SURPLUS,
        POOL_RESERVED,
        POOL_FLOOR,
        POOL_SPARE,
        POOL_ADOPTED_SPARE,
        _POOL_METRIC_MAX,
} PoolMetric;

static const struct {
        const char *name;
        const char *help;
} pool_metrics[_POOL_METRIC_MAX] = {
        [POOL_TOTAL] = { "hugepaged_pool_pages",
                         "Pages in the pool (nr_hugepages, surplus included). node=\"all\" is the page size over all "
                         "nodes; leave it out when summing." },
        [POOL_FREE] = { "hugepaged_pool_free_pages", "Pages of the pool nobody maps (free_hugepages)." },
        [POOL_SURPLUS] = { "hugepaged_pool_surplus_pages",
                           "Pages beyond the persistent count, freed when their users let go (surplus_hugepages)." },
        [POOL_RESERVED] = { "hugepaged_pool_reserved_pages", "Pages held by hugepaged reservations." },
        [POOL_FLOOR] = { "hugepaged_pool_floor_pages",
                         "Pages hugepaged never shrinks below and never grants (adopted floor or MinPages=)." },
        [POOL_SPARE] = { "hugepaged_pool_spare_pages",
                         "Persistent pages that are neither Floor nor reserved: grantable without a kernel write "
                         "(unused Adopt=spare pages, and pages kept after a release by ShrinkDelaySec= or "
                         "KeepFreePages=)." },
        [POOL_ADOPTED_SPARE] = { "hugepaged_pool_adopted_spare_pages",
                                 "With Adopt=spare: the pages hugepaged found in the pool and took as its own "
                                 "(the Pool's AdoptedSpare), reserved or not." },
};

static uint64_t pool_value(const PoolRow *p, PoolMetric m) {
        uint64_t persistent = p->total > p->surplus ? p->total - p->surplus : 0;

        switch (m) {
        case POOL_TOTAL: return p->total;
        case POOL_FREE: return p->free;
        case POOL_SURPLUS: return p->surplus;
        case POOL_RESERVED: return p->reserved;
        case POOL_FLOOR: return p->floor;
        case POOL_SPARE: return persistent > p->floor + p->reserved ? persistent - p->floor - p->reserved : 0;
        case POOL_ADOPTED_SPARE: return p->adopted_spare;
        default: return 0;
        }
}

static void print_up(FILE *f, bool up) {
        header(f, "hugepaged_up", "gauge", "1 if hugepagectl read hugepaged's state over D-Bus, 0 if it could not.");
        fprintf(f, "hugepaged_up %d\n", up);
}

static void print_state(FILE *f, const ManagerInfo *mi, const PoolRow *pools, size_t n_pools,
                        const ReservationInfo *res, size_t n_res) {
        static const struct {
                const char *name;
                const char *help;
                size_t offset;
        } stats[] = {
                { "hugepaged_allocation_first_write_pages_total",
                  "Pages the kernel gave on the first write of nr_hugepages of a growing pool.",
                  offsetof(ManagerInfo, stats_pages_first_write) },
                { "hugepaged_allocation_after_compaction_pages_total",
                  "Pages won by rewrites of nr_hugepages after compacting the node.",
                  offsetof(ManagerInfo, stats_pages_after_compaction) },
                { "hugepaged_allocation_after_drop_caches_pages_total",
                  "Pages won by rewrites of nr_hugepages after dropping clean page cache (DropCaches=).",
                  offsetof(ManagerInfo, stats_pages_after_drop_caches) },
                { "hugepaged_allocation_retries_total", "Writes of nr_hugepages after the first of a growing request.",
                  offsetof(ManagerInfo, stats_allocation_retries) },
        };

        print_up(f, true);
        header(f, "hugepaged_info", "gauge", "Always 1; the version label is the daemon's.");
        fputs("hugepaged_info{", f);
        label(f, "version", mi->version, true);
        fputs(" 1\n", f);
        header(f, "hugepaged_reserved_bytes", "gauge", "The sum of all reservations, in bytes.");
        fprintf(f, "hugepaged_reserved_bytes %" PRIu64 "\n", mi->reserved_bytes);

        for (PoolMetric m = 0; m < _POOL_METRIC_MAX; m++) {
                header(f, pool_metrics[m].name, "gauge", pool_metrics[m].help);
                for (size_t i = 0; i < n_pools; i++) {
                        fputs(pool_metrics[m].name, f);
                        page_size_label(f, pools[i].page_size);
                        node_label(f, pools[i].node, true);
                        fprintf(f, " %" PRIu64 "\n", pool_value(&pools[i], m));
                }
        }

        header(f, "hugepaged_reservation_pages", "gauge",
               "Pages a reservation holds on a node; state is active, or degraded while a node it holds pages on "
               "has no memory.");
        for (size_t i = 0; i < n_res; i++) {
                const ReservationInfo *r = &res[i];
                /* A reservation without per-node counts (none is known) still shows, as node="all". */
                size_t n = r->n_node_pages ?: 1;

                for (size_t k = 0; k < n; k++) {
                        fputs("hugepaged_reservation_pages", f);
                        page_size_label(f, r->page_size);
                        label(f, "name", r->name, false);
                        node_label(f, r->n_node_pages ? (int64_t) r->node_pages[k].node : -1, false);
                        label(f, "lifetime", r->lifetime, false);
                        label(f, "state", r->state, true);
                        fprintf(f, " %" PRIu64 "\n", r->n_node_pages ? r->node_pages[k].amount : r->pages);
                }
        }

        for (size_t i = 0; i < ELEMENTSOF(stats); i++) {
                header(f, stats[i].name, "counter", stats[i].help);
                fprintf(f, "%s %" PRIu64 "\n", stats[i].name,
                        *(const uint64_t *) ((const char *) mi + stats[i].offset));
        }
}

/* Reads everything first, so that a daemon going away half-way gives "hugepaged_up 0" and not half an answer.
 * Returns an exit status, having printed the error. */
static int read_state(sd_bus *bus, ManagerInfo *mi, PoolRow **pools, size_t *n_pools, ReservationInfo **ret_res,
                      size_t *ret_n_res) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ReservationRow *rows = NULL;
        ReservationInfo *res = NULL;
        size_t n_rows = 0, n = 0;
        int has_owner = 0, r;

        /* Asked every 15 s by a timer, a call to org.hugepaged1 would start a daemon the admin stopped, through
         * D-Bus activation: a stopped daemon is what hugepaged_up 0 is for. */
        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", NULL, &reply, "s", HP_BUS_NAME);
        if (r >= 0)
                r = sd_bus_message_read(reply, "b", &has_owner);
        if (r < 0)
                return report_bus_error("cannot read hugepaged", NULL, r);
        if (!has_owner) {
                fprintf(stderr, "hugepagectl: hugepaged is not running (%s is not on the system bus)\n", HP_BUS_NAME);
                return EXIT_UNREACHABLE;
        }
        r = fetch_manager(bus, "cannot read hugepaged", mi);
        if (r == EXIT_OK)
                r = fetch_pools(bus, "cannot read hugepaged's pools", pools, n_pools);
        if (r == EXIT_OK)
                r = fetch_reservations(bus, "cannot read hugepaged's reservations", &rows, &n_rows);
        if (r != EXIT_OK)
                return r;
        res = calloc(n_rows ?: 1, sizeof(*res));
        if (!res) {
                reservation_rows_free(rows, n_rows);
                return report_bus_error("cannot read hugepaged's reservations", NULL, -ENOMEM);
        }
        for (size_t i = 0; i < n_rows && r == EXIT_OK; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                int k = read_reservation_at(bus, rows[i].path, &error, &res[n]);

                if (k >= 0)
                        n++;
                /* Released since the list was read: it is simply not there any more. */
                else if (!sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) &&
                         !sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE))
                        r = report_bus_error("cannot read a reservation", &error, k);
        }
        reservation_rows_free(rows, n_rows);
        *ret_res = res;
        *ret_n_res = n;
        return r;
}

/* FILE.XXXXXX in FILE's directory, then rename(): a reader sees the old file or the new one, never a part. The
 * textfile collector reads *.prom only, so it skips the temporary file. */
static int write_atomic(const char *path, const char *data, size_t len) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r = 0;

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fchmod(fd, 0644) < 0)
                r = negative_errno();
        for (size_t done = 0; r == 0 && done < len;) {
                ssize_t k = write(fd, data + done, len - done);
                if (k < 0 && errno != EINTR)
                        r = negative_errno();
                else if (k > 0)
                        done += (size_t) k;
        }
        if (r == 0 && close(TAKE_FD(fd)) < 0)
                r = negative_errno();
        if (r == 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

int verb_metrics(sd_bus *bus, char **args) {
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ PoolRow *pools = NULL;
        ReservationInfo *res = NULL;
        size_t n_pools = 0, n_res = 0, len = 0;
        ManagerInfo mi = {};
        FILE *f;
        int r;

        /* No bus at all: main() has said why. */
        r = bus ? read_state(bus, &mi, &pools, &n_pools, &res, &n_res) : EXIT_UNREACHABLE;
        f = open_memstream(&text, &len);
        if (f) {
                if (r == EXIT_OK)
                        print_state(f, &mi, pools, n_pools, res, n_res);
                else
                        print_up(f, false);
        }
        for (size_t i = 0; i < n_res; i++)
                reservation_info_done(&res[i]);
        free(res);
        manager_info_done(&mi);
        if (!f || fclose(f) != 0) {
                fprintf(stderr, "hugepagectl: cannot format the metrics: %s\n", strerror(errno));
                return EXIT_FAIL;
        }

        if (arg_output) {
                int k = write_atomic(arg_output, text, len);
                if (k < 0) {
                        fprintf(stderr, "hugepagectl: cannot write %s: %s\n", arg_output, strerror(-k));
                        return EXIT_FAIL;
                }
        } else
                fwrite(text, 1, len, stdout);
        /* Not reachable, or a failed read: the exposition says hugepaged_up 0, and the exit status says why. */
        return r;
}
