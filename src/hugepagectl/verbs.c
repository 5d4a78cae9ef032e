/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl's verbs but monitor: status, pools, list, show, reserve and release. Each returns an exit status
 * and has printed its error. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "bus-client.h"
#include "hugepagectl.h"
#include "macro.h"
#include "mounts.h"
#include "output.h"
#include "proxy.h"

int verb_pools(sd_bus *bus, char **args) {
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

int verb_list(sd_bus *bus, char **args) {
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

int verb_show(sd_bus *bus, char **args) {
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

/* A page size as hugetlbfs's pagesize= option and the kernel's hugepagesz= take it: 2M, 1G, 64K. */
static char *mount_page_size_str(char buf[static FORMAT_SIZE_MAX], uint64_t ps) {
        if (ps % GIB == 0)
                snprintf(buf, FORMAT_SIZE_MAX, "%" PRIu64 "G", ps / GIB);
        else if (ps % (1024 * 1024) == 0)
                snprintf(buf, FORMAT_SIZE_MAX, "%" PRIu64 "M", ps / (1024 * 1024));
        else
                snprintf(buf, FORMAT_SIZE_MAX, "%" PRIu64 "K", ps / 1024);
        return buf;
}

int verb_status(sd_bus *bus, char **args) {
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
                if (!any) {
                        char opt[FORMAT_SIZE_MAX];
                        /* The form hugetlbfs takes (pagesize=2M), not size_str()'s "2 MiB": the line is meant to
                         * be pasted. */
                        printf("none\n  Warning: no hugetlbfs mount serves %s pages, so no program can map them.\n"
                               "           Mount one: mount -t hugetlbfs -o pagesize=%s none /dev/hugepages%s\n",
                               b, mount_page_size_str(opt, ps), ps == mi.default_page_size ? "" : opt);
                } else
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
int run_until_signal(sd_bus *bus) {
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

int parse_reserve_size(const char *verb, const char *what, const char *name, const char *size, uint64_t *ret) {
        uint64_t bytes = 0, sum = 0;

        for (size_t i = 0; i < arg_n_node_sizes; i++)
                sum += arg_node_sizes[i].amount;
        if (size) {
                if (parse_size(size, &bytes) < 0 || bytes == 0) {
                        usage_error("%s: invalid size '%s': give bytes, or a number with K, M, G or T (e.g. 512M, "
                                    "4G, 4GiB)", what, size);
                        return EXIT_USAGE;
                }
                if (arg_n_node_sizes > 0 && bytes != sum) {
                        char b1[FORMAT_SIZE_MAX], b2[FORMAT_SIZE_MAX];
                        usage_error("%s: SIZE %s is not the sum of --node-size= (%s); omit SIZE", what,
                                    size_str(b1, bytes), size_str(b2, sum));
                        return EXIT_USAGE;
                }
        } else if (arg_n_node_sizes == 0) {
                usage_error("%s: missing SIZE (e.g. 'hugepagectl %s %s 4G')", verb, verb, name);
                return EXIT_USAGE;
        }
        *ret = bytes;
        return EXIT_OK;
}

void print_reserve_advice(sd_bus *bus, const sd_bus_error *error) {
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

int verb_reserve(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *what = NULL;
        ReservationInfo info = {};
        const ReserveOptions opts = {
                .nodes = arg_nodes, .n_nodes = arg_n_nodes,
                .node_bytes = arg_node_sizes, .n_node_bytes = arg_n_node_sizes,
                .lifetime = arg_lifetime, .pid = arg_pid_set ? arg_pid : 0,
                .hold = arg_hold,
        };
        const char *name = args[0];
        uint64_t bytes = 0;
        int r;

        if (asprintf(&what, "cannot reserve %s", name) < 0)
                return report_bus_error("cannot reserve", NULL, -ENOMEM);
        r = parse_reserve_size("reserve", what, name, args[1], &bytes);
        if (r != EXIT_OK)
                return r;

        r = bus_call_reserve(bus, name, arg_page_size, bytes, &opts, &error, NULL);
        if (r < 0) {
                r = report_bus_error(what, &error, r);
                print_reserve_advice(bus, &error);
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
                /* The path alone on its line, for scripts: mem-path=$(... | sed -n 's/^Held at //p'). */
                if (info.held && info.mount_path)
                        printf("Held at %s\n", info.mount_path);
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

int verb_release(sd_bus *bus, char **args) {
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
