/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl's proxy layer: connecting, reporting a failed call, and reading the Manager's properties, pools and
 * reservations into the structs the verbs print. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-client.h"
#include "macro.h"
#include "proxy.h"

int report_bus_error(const char *what, const sd_bus_error *e, int r) {
        char reason[1024];

        if (!(e && sd_bus_error_is_set(e)) && bus_error_kind(e, r) == BUS_ERROR_UNREACHABLE)
                fprintf(stderr, "hugepagectl: %s: cannot talk to the system bus: %s\n", what, strerror(-r));
        else
                fprintf(stderr, "hugepagectl: %s: %s\n", what,
                        bus_error_reason(e, r, "the system bus", reason, sizeof reason));
        return bus_error_exit_status(e, r);
}

int bus_connect(sd_bus **ret) {
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

void reservation_rows_free(ReservationRow *rows, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(rows[i].name);
                free(rows[i].lifetime);
                free(rows[i].path);
        }
        free(rows);
}

void reservation_info_done(ReservationInfo *i) {
        free(i->name);
        free(i->node_pages);
        free(i->lifetime);
        free(i->state);
        free(i->path);
        free(i->mount_path);
        *i = (ReservationInfo) {};
}

void manager_info_done(ManagerInfo *i) {
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

static int read_variant_node_pages(sd_bus_message *m, NodeAmount **ret, size_t *ret_n) {
        _cleanup_free_ NodeAmount *a = NULL;
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
                NodeAmount *t = realloc(a, (n + 1) * sizeof(*t));
                if (!t)
                        return -ENOMEM;
                a = t;
                a[n++] = (NodeAmount) { node, pages };
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
int reservation_info_read(sd_bus_message *m, ReservationInfo *info) {
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
                else if (streq(prop, "MountPath"))
                        r = read_variant_string(m, &info->mount_path);
                else if (streq(prop, "Held")) {
                        int b = 0;
                        r = sd_bus_message_read(m, "v", "b", &b);
                        info->held = b;
                } else if (streq(prop, "NodePages"))
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

int read_reservation_at(sd_bus *bus, const char *path, sd_bus_error *error, ReservationInfo *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *props = NULL;
        ReservationInfo info = {};
        int r;

        r = get_all(bus, path, HP_BUS_IFACE_RESERVATION, error, &props);
        if (r < 0)
                return r;
        info.path = strdup(path);
        if (!info.path)
                return -ENOMEM;
        r = reservation_info_read(props, &info);
        if (r < 0) {
                reservation_info_done(&info);
                return r;
        }
        *ret = info;
        return 0;
}

/* Returns an exit status; on failure the error has been printed with "cannot <what>". */
int fetch_reservation(sd_bus *bus, const char *name, const char *what, ReservationInfo *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = bus_call_manager(bus, "GetReservation", &error, &reply, "s", name);
        if (r < 0)
                return report_bus_error(what, &error, r);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return report_bus_error(what, NULL, r);
        r = read_reservation_at(bus, path, &error, ret);
        if (r < 0)
                return report_bus_error(what, &error, r);
        return EXIT_OK;
}

int fetch_manager(sd_bus *bus, const char *what, ManagerInfo *ret) {
        static const struct {
                const char *name;
                size_t offset;
        } u64_props[] = {
                { "DefaultPageSize", offsetof(ManagerInfo, default_page_size) },
                { "ReservedBytes", offsetof(ManagerInfo, reserved_bytes) },
                { "StatsPagesFirstWrite", offsetof(ManagerInfo, stats_pages_first_write) },
                { "StatsPagesAfterCompaction", offsetof(ManagerInfo, stats_pages_after_compaction) },
                { "StatsPagesAfterDropCaches", offsetof(ManagerInfo, stats_pages_after_drop_caches) },
                { "StatsAllocationRetries", offsetof(ManagerInfo, stats_allocation_retries) },
        };
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
                const size_t *offset = NULL;
                for (size_t i = 0; i < ELEMENTSOF(u64_props); i++)
                        if (streq(prop, u64_props[i].name))
                                offset = &u64_props[i].offset;
                if (offset)
                        r = sd_bus_message_read(reply, "v", "t", (uint64_t *) ((char *) &info + *offset));
                else if (streq(prop, "Version"))
                        r = read_variant_string(reply, &info.version);
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

int fetch_pools(sd_bus *bus, const char *what, PoolRow **ret, size_t *ret_n) {
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

int fetch_reservations(sd_bus *bus, const char *what, ReservationRow **ret, size_t *ret_n) {
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
