/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl: the operator's client of org.hugepaged1. This file owns the command line: --help, the options,
 * and the table of verbs main() dispatches to. The verbs are in verbs.c and monitor.c, what they read from the bus
 * in proxy.c, and their output in output.c and json.c. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "build-config.h"
#include "bus-client.h"
#include "hugepagectl.h"
#include "macro.h"
#include "proxy.h"
#include "util.h"

bool arg_json = false;
bool arg_names = false;
bool arg_reserve_options = false;
uint64_t arg_page_size = 0;
uint32_t *arg_nodes = NULL;
size_t arg_n_nodes = 0;
NodeAmount *arg_node_sizes = NULL;
size_t arg_n_node_sizes = 0;
const char *arg_lifetime = NULL;
uint32_t arg_pid = 0;
bool arg_pid_set = false;
bool arg_hold = false;

void usage_error(const char *fmt, ...) {
        va_list ap;

        fputs("hugepagectl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\n", stderr);
}

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
               "  monitor                 Print a line for every change until Ctrl-C\n"
               "  run NAME SIZE -- COMMAND [ARGS...]\n"
               "                          Reserve SIZE under NAME for the life of COMMAND, run it\n"
               "                          with HUGEPAGED_RESERVATION=NAME (and HUGEPAGED_MOUNT_PATH\n"
               "                          with --hold), and exit with its status\n"
               "  metrics                 Print the pools, reservations and allocation statistics\n"
               "                          in the Prometheus text format\n\n"
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
               "     --pid=PID            reserve: the process for --lifetime=pid (implies it)\n"
               "     --hold               reserve, run: the kernel holds the pages for you, in a\n"
               "                          hugetlbfs mount whose path is printed (e.g. QEMU's mem-path=)\n"
               "     --output=FILE        metrics: write FILE atomically instead of stdout (also\n"
               "                          when hugepaged is unreachable: it then says hugepaged_up 0)\n"
               "\nrun takes --page-size=, --node=, --node-size= and --hold as reserve does.\n\n"
               "SIZE is bytes, or a number with a binary suffix: 512M, 4G, 4GiB, 2048kB\n"
               "(K, M, G, T; 1G = 1024^3 bytes). It is rounded up to whole pages.\n\n"
               "Exit status:\n"
               "  0  success\n"
               "  1  failure reported by hugepaged, or any other error\n"
               "  2  invalid arguments: a bad command line or size, or arguments hugepaged\n"
               "     rejected (InvalidArgs, UnsupportedPageSize, NoSuchNode)\n"
               "  3  no such reservation (NoSuchReservation)\n"
               "  4  not enough huge pages, or a limit reached (InsufficientPages, LimitExceeded)\n"
               "  5  hugepaged is not reachable: no system bus, or org.hugepaged1 is not on it\n"
               "run: COMMAND's exit status once it ran (128+N if signal N killed it), else the\n"
               "statuses above (4: the pages could not be had, and COMMAND did not run).\n\n"
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
                ARG_OUTPUT,
                ARG_HOLD,
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
                { "output", required_argument, NULL, ARG_OUTPUT },
                { "hold", no_argument, NULL, ARG_HOLD },
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
                case ARG_OUTPUT:
                        if (!optarg[0]) {
                                usage_error("--output= needs a file name");
                                return -EINVAL;
                        }
                        arg_output = optarg;
                        break;
                case ARG_HOLD:
                        arg_hold = true;
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
        { "run", 1, 2, "run NAME SIZE -- COMMAND [ARGS...]", verb_run },
        { "metrics", 0, 0, "metrics", verb_metrics },
};

/* Cuts argv at the first "--": what follows is run's COMMAND, and getopt must not see it (it would take
 * COMMAND's options for ours, and its permuting hides where "--" was). Other verbs get the words after "--" as
 * arguments, as before, e.g. 'show -- -name'. Returns the new argc. */
static int split_command(int argc, char *argv[]) {
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--")) {
                        arg_command = argv + i + 1;
                        argv[i] = NULL;
                        return i;
                }
        return argc;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const Verb *verb = NULL;
        _cleanup_free_ char **args = NULL;
        const char *name;
        unsigned n_args = 0;
        int r, cut;

        cut = split_command(argc, argv);
        r = parse_argv(cut, argv);
        if (r <= 0)
                return r == 0 ? EXIT_OK : r == -ENOMEM ? EXIT_FAIL : EXIT_USAGE;

        /* The words getopt left, then those after "--" unless they are run's COMMAND. */
        args = calloc(argc + 1, sizeof(char *));
        if (!args)
                return EXIT_FAIL;
        for (int i = optind; i < cut; i++)
                args[n_args++] = argv[i];
        name = n_args > 0 ? args[0] : arg_command && arg_command[0] ? arg_command[0] : "status";
        if (!streq(name, "run"))
                for (char **a = arg_command; a && *a; a++)
                        args[n_args++] = *a;
        else if (!arg_command || !arg_command[0]) {
                usage_error("run: missing '-- COMMAND'; usage: hugepagectl run NAME SIZE -- COMMAND [ARGS...]");
                return EXIT_USAGE;
        }
        if (n_args == 0)
                args[n_args++] = (char *) name;
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        verb = &verbs[i];
        if (!verb) {
                usage_error("unknown command '%s'; see 'hugepagectl --help'", name);
                return EXIT_USAGE;
        }
        n_args--;
        if (n_args < verb->min_args || n_args > verb->max_args) {
                usage_error("%s: %s; usage: hugepagectl %s", verb->name,
                            n_args < verb->min_args ? "missing argument" : "too many arguments", verb->synopsis);
                return EXIT_USAGE;
        }
        if (arg_reserve_options && verb->run != verb_reserve &&
            !(verb->run == verb_run && !arg_lifetime && !arg_pid_set)) {
                usage_error("%s: --page-size=, --node=, --node-size=, --lifetime=, --pid= and --hold go with "
                            "'reserve' only (and all but --lifetime= and --pid= with 'run')", verb->name);
                return EXIT_USAGE;
        }
        if (arg_output && verb->run != verb_metrics) {
                usage_error("%s: --output= goes with 'metrics' only", verb->name);
                return EXIT_USAGE;
        }
        if (arg_json && (verb->run == verb_metrics || verb->run == verb_run)) {
                usage_error("%s: --json does not go with '%s'", verb->name, verb->name);
                return EXIT_USAGE;
        }
        if (arg_names && verb->run != verb_list) {
                usage_error("%s: --names goes with 'list' only", verb->name);
                return EXIT_USAGE;
        }
        /* Catch a bad name before the bus does, and with the rules spelled out. */
        if ((verb->run == verb_reserve || verb->run == verb_show || verb->run == verb_release ||
             verb->run == verb_run) && !reservation_name_is_valid(args[1])) {
                usage_error("%s: invalid reservation name '%s': use 1 to %d characters from "
                            "A-Z a-z 0-9 . _ : @ + -", verb->name, args[1], RESERVATION_NAME_MAX);
                return EXIT_USAGE;
        }

        r = bus_connect(&bus);
        /* metrics says "hugepaged_up 0" then, so that a scrape sees the daemon is down. */
        if (r != EXIT_OK && verb->run != verb_metrics)
                return r;
        r = verb->run(bus, args + 1);
        if (fflush(stdout) != 0 && r == EXIT_OK) {
                fprintf(stderr, "hugepagectl: cannot write the output: %s\n", strerror(errno));
                r = EXIT_FAIL;
        }
        free(arg_nodes);
        free(arg_node_sizes);
        return r;
}
