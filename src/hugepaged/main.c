/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepaged: command line, event loop, bus name, readiness and watchdog. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "bus.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "udev.h"

static const char *arg_root = NULL;
static const char *arg_state_dir = DEFAULT_STATE_DIR;
static const char *arg_config = DEFAULT_CONFIG_FILE;
static bool arg_config_given = false;
static int arg_log_level = -1;

static void help(void) {
        printf("Usage: hugepaged [OPTIONS]\n\n"
               "Owns the kernel's huge page pools and grants named reservations over D-Bus (org.hugepaged1).\n\n"
               "  -h --help              Show this help and exit\n"
               "     --version           Show the version and exit\n"
               "     --root=DIR          Prefix for every kernel path under /sys and /proc (default: /)\n"
               "     --state-dir=DIR     Where reservations are kept across restarts (default: %s)\n"
               "     --config=FILE       Configuration file, plus FILE.d/*.conf (default: %s)\n"
               "     --log-level=LEVEL   err, warning, notice, info or debug (default: info)\n\n"
               "The bus is the system bus, or the one DBUS_SYSTEM_BUS_ADDRESS names.\n"
               "Topology uevents come from udevd if it runs, else the kernel; HUGEPAGED_UDEV_SOURCE=kernel|udev\n"
               "overrides that.\n"
               "See hugepaged(8) and hugepaged.conf(5).\n",
               DEFAULT_STATE_DIR, DEFAULT_CONFIG_FILE);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_ROOT, ARG_STATE_DIR, ARG_CONFIG, ARG_LOG_LEVEL };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "root", required_argument, NULL, ARG_ROOT },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("hugepaged %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_ROOT:
                        arg_root = optarg;
                        break;
                case ARG_STATE_DIR:
                        if (optarg[0] == '\0')
                                return log_error_errno(EINVAL, "--state-dir= needs a directory");
                        arg_state_dir = optarg;
                        break;
                case ARG_CONFIG:
                        arg_config = optarg;
                        arg_config_given = true;
                        break;
                case ARG_LOG_LEVEL:
                        arg_log_level = log_level_from_string(optarg);
                        if (arg_log_level < 0)
                                return log_error_errno(EINVAL, "invalid --log-level=%s", optarg);
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(EINVAL, "unexpected argument: %s", argv[optind]);
        return 1;
}

static int on_refresh(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        /* Also the safety net for uevents lost to a full socket. */
        (void) manager_update_topology(m);
        (void) sd_event_source_set_time_relative(s, m->config.refresh_interval_usec);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        /* Freed after the manager, whose last jobs reply and whose last signals go out on its bus. */
        _cleanup_(bus_context_freep) BusContext *bus = NULL;
        Manager *m = NULL;
        UdevWatch *watch = NULL;
        int r;

        log_set_program_name("hugepaged");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        if (arg_log_level >= 0)
                log_set_max_level(arg_log_level);

        /* Shrinking a pool never signals anyone, but a broken pipe on stderr must not kill us mid-write. */
        (void) signal(SIGPIPE, SIG_IGN);
        umask(0022);

        if (mkdir(arg_state_dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(errno, "cannot create state directory %s: %m", arg_state_dir);

        r = sd_event_default(&event);
        if (r < 0)
                return log_error_errno(r, "cannot allocate the event loop: %m");
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "cannot block signals: %m");
        /* Exiting leaves the pools as they are: running guests keep their pages. */
        r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "cannot watch SIGTERM/SIGINT: %m");
        r = sd_event_set_watchdog(event, true);
        if (r < 0)
                log_warning_errno(r, "cannot enable the watchdog: %m");

        r = manager_new(event, arg_root, arg_state_dir, &m);
        if (r < 0)
                return log_error_errno(r, "cannot allocate the manager: %m");
        m->watchdog = sd_watchdog_enabled(false, NULL) > 0;

        r = config_load(&m->config, arg_config, arg_config_given);
        if (r < 0)
                goto finish;
        if (arg_log_level < 0 && m->config.log_level >= 0)
                log_set_max_level(m->config.log_level);

        r = bus_context_new(m, event, &bus);
        if (r < 0)
                goto finish;

        /* Listening before the pools are enumerated: a change during start-up is seen, not lost. */
        r = udev_watch_new(m, &watch);
        if (r < 0)
                log_warning_errno(r, "cannot watch NUMA topology changes, only the refresh timer will notice them: %m");

        r = manager_startup(m);
        if (r < 0)
                goto finish;

        r = bus_register(bus);
        if (r < 0)
                goto finish;

        r = sd_bus_request_name(bus->bus, BUS_NAME, 0);
        if (r < 0) {
                log_error_errno(r, "cannot own %s: %m (is another hugepaged running, or does the bus policy forbid it?)",
                                BUS_NAME);
                goto finish;
        }

        if (m->config.refresh_interval_usec > 0) {
                r = sd_event_add_time_relative(event, &m->refresh_timer, CLOCK_MONOTONIC,
                                               m->config.refresh_interval_usec, 0, on_refresh, m);
                if (r < 0) {
                        log_error_errno(r, "cannot start the refresh timer: %m");
                        goto finish;
                }
        }

        (void) sd_notify(false, "READY=1\nSTATUS=Managing huge page pools");
        log_info("ready on the bus as %s", BUS_NAME);

        r = sd_event_loop(event);
        if (r < 0)
                log_error_errno(r, "event loop failed: %m");
        else
                log_info("stopping; the pools stay as they are");
        (void) sd_notify(false, "STOPPING=1");

finish:
        udev_watch_free(watch);
        manager_free(m);
        return r;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
