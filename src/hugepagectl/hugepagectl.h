/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What hugepagectl's files share: the parsed command line, the usage error line, and the verbs main() dispatches
 * to. Each verb returns an exit status (bus-client.h) and has printed its error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "macro.h"
#include "util.h"

extern bool arg_json;
extern bool arg_names;
extern bool arg_reserve_options;
extern uint64_t arg_page_size;
extern uint32_t *arg_nodes;
extern size_t arg_n_nodes;
extern NodeAmount *arg_node_sizes;
extern size_t arg_n_node_sizes;
extern const char *arg_lifetime;
extern uint32_t arg_pid;
extern bool arg_hold;
extern bool arg_pid_set;
extern const char *arg_output;
/* run: what follows "--" on the command line. */
extern char **arg_command;

/* "hugepagectl: <message>" on stderr. */
void usage_error(const char *fmt, ...) _printf_(1, 2);

/* Runs the event loop with the bus attached until SIGINT/SIGTERM/SIGHUP (exit status 0) or until the bus goes
 * away (EXIT_UNREACHABLE, after saying so). */
int run_until_signal(sd_bus *bus);

/* reserve's and run's SIZE (NULL: left out, allowed with --node-size=) in bytes; returns an exit status, and has
 * printed a bad one with WHAT. */
int parse_reserve_size(const char *verb, const char *what, const char *name, const char *size, uint64_t *ret);
/* After a failed Reserve: a hint on stderr where the error has one. */
void print_reserve_advice(sd_bus *bus, const sd_bus_error *error);

int verb_status(sd_bus *bus, char **args);
int verb_pools(sd_bus *bus, char **args);
int verb_list(sd_bus *bus, char **args);
int verb_show(sd_bus *bus, char **args);
int verb_reserve(sd_bus *bus, char **args);
int verb_release(sd_bus *bus, char **args);
int verb_monitor(sd_bus *bus, char **args);
/* bus may be NULL: no system bus, and the metrics say hugepaged_up 0. */
int verb_metrics(sd_bus *bus, char **args);
int verb_run(sd_bus *bus, char **args);
