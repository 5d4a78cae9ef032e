/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libvirt qemu hook (/etc/libvirt/hooks/qemu.d/hugepaged): turns a domain's XML into hugepaged reservations at
 * "prepare", binds them to QEMU at "started" and "reconnect", releases them at "release". Owns the phases, the
 * bus calls and the one line on stderr that virsh shows. Never calls libvirt: libvirtd waits for this hook. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ini.h>
#include <systemd/sd-bus.h>

#include "build-config.h"
#include "bus-client.h"
#include "domain.h"
#include "hold.h"
#include "macro.h"
#include "util.h"

typedef struct HookConfig {
        char *bus_address;   /* NULL: the system bus */
        uint64_t timeout_usec;
        char *pid_file_dir;
        bool hold; /* reserve with hold and bind the held mounts where libvirt puts the domain's pages */
} HookConfig;

static HookConfig config = {
        .timeout_usec = HOOK_DEFAULT_TIMEOUT_SEC * UINT64_C(1000000),
};

static void fail(const char *fmt, ...) _printf_(1, 2);
static void fail(const char *fmt, ...) {
        va_list ap;

        fputs("hugepaged: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* ---- configuration: built-in defaults < HOOK_CONFIG_FILE < environment ---------------------------------- */

static int config_handler(void *user, const char *section, const char *key, const char *value) {
        const char *path = user;
        uint64_t v;

        if (*section && !streq(section, "Hook")) {
                fprintf(stderr, "hugepaged: %s: unknown section [%s], ignored\n", path, section);
                return 1;
        }
        if (streq(key, "BusAddress")) {
                free(config.bus_address);
                config.bus_address = *value ? strdup(value) : NULL;
        } else if (streq(key, "TimeoutSec")) {
                if (parse_u64(value, &v) < 0 || v == 0 || v > UINT64_MAX / 1000000) {
                        fprintf(stderr, "hugepaged: %s: TimeoutSec=%s: expected seconds, 1 or more\n", path,
                                value);
                        return 0;
                }
                config.timeout_usec = v * 1000000;
        } else if (streq(key, "Hold")) {
                if (parse_bool(value, &config.hold) < 0) {
                        fprintf(stderr, "hugepaged: %s: Hold=%s: expected yes or no\n", path, value);
                        return 0;
                }
        } else if (streq(key, "PIDFileDirectory")) {
                free(config.pid_file_dir);
                config.pid_file_dir = strdup(value);
        } else
                fprintf(stderr, "hugepaged: %s: unknown key %s, ignored\n", path, key);
        return 1;
}

static int config_load(void) {
        const char *path = getenv("HUGEPAGED_HOOK_CONFIG") ?: HOOK_CONFIG_FILE;
        const char *e;
        FILE *f;
        int r;

        if (*HOOK_DEFAULT_BUS_ADDRESS)
                config.bus_address = strdup(HOOK_DEFAULT_BUS_ADDRESS);
        config.pid_file_dir = strdup(HOOK_PID_FILE_DIR);

        f = fopen(path, "re");
        if (f) {
                r = ini_parse_file(f, config_handler, (void *) path);
                fclose(f);
                if (r != 0) {
                        fail("%s:%d: invalid configuration", path, r);
                        return -EINVAL;
                }
        } else if (errno != ENOENT) {
                fail("cannot read %s: %s", path, strerror(errno));
                return -errno;
        }

        /* libvirtd runs hooks with a scrubbed environment, so these serve manual runs and tests. */
        if ((e = getenv("HUGEPAGED_HOOK_BUS_ADDRESS"))) {
                free(config.bus_address);
                config.bus_address = *e ? strdup(e) : NULL;
        }
        if ((e = getenv("HUGEPAGED_HOOK_PID_DIR"))) {
                free(config.pid_file_dir);
                config.pid_file_dir = strdup(e);
        }
        if ((e = getenv("HUGEPAGED_HOOK_HOLD")) && parse_bool(e, &config.hold) < 0) {
                fail("HUGEPAGED_HOOK_HOLD=%s: expected yes or no", e);
                return -EINVAL;
        }
        if ((e = getenv("HUGEPAGED_HOOK_TIMEOUT_SEC"))) {
                uint64_t v;
                if (parse_u64(e, &v) < 0 || v == 0 || v > UINT64_MAX / 1000000) {
                        fail("HUGEPAGED_HOOK_TIMEOUT_SEC=%s: expected seconds, 1 or more", e);
                        return -EINVAL;
                }
                config.timeout_usec = v * 1000000;
        }
        if (!config.pid_file_dir)
                return -ENOMEM;
        return 0;
}

/* ---- input -------------------------------------------------------------------------------------------- */

/* Reads stdin up to DOMAIN_XML_MAX + 1 bytes; more than the cap is refused without reading on. */
static int read_stdin(char **ret, size_t *ret_len) {
        size_t cap = 64 * 1024, len = 0;
        char *buf = malloc(cap);

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;
                if (len == cap) {
                        char *t;
                        if (cap > DOMAIN_XML_MAX) {
                                free(buf);
                                return -EFBIG;
                        }
                        cap = MIN(cap * 2, DOMAIN_XML_MAX + 1);
                        t = realloc(buf, cap);
                        if (!t) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = t;
                }
                n = read(STDIN_FILENO, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;
                        free(buf);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len > DOMAIN_XML_MAX) {
                free(buf);
                return -EFBIG;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static void drain_stdin(void) {
        char buf[4096];
        while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
                ;
}

static int read_pid_file(const char *name, uint32_t *ret) {
        _cleanup_free_ char *path = NULL;
        char buf[32] = {};
        FILE *f;
        size_t n;
        uint32_t pid;

        /* libvirt refuses '/' in domain names; a name that could leave the directory is never looked up. */
        if (strchr(name, '/') || streq(name, ".") || streq(name, "..")) {
                fail("domain name %s cannot name a pid file", name);
                return -EINVAL;
        }
        if (asprintf(&path, "%s/%s.pid", config.pid_file_dir, name) < 0)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f) {
                int r = -errno;
                fail("cannot read QEMU's pid file %s: %s", path, strerror(errno));
                return r;
        }
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        if (parse_u32(buf, &pid) < 0 || pid == 0) {
                fail("QEMU's pid file %s does not hold a pid", path);
                return -EINVAL;
        }
        *ret = pid;
        return 0;
}

/* ---- the bus ------------------------------------------------------------------------------------------ */

static const char *bus_description(void) {
        return config.bus_address ?: getenv("DBUS_SYSTEM_BUS_ADDRESS") ?: "the system bus";
}

static int bus_connect(sd_bus **ret) {
        int r;

        r = bus_client_connect(config.bus_address, config.timeout_usec, ret);
        if (r < 0)
                fail("cannot connect to %s: %s; is D-Bus running? (BusAddress= in %s)", bus_description(),
                     strerror(-r), HOOK_CONFIG_FILE);
        return r;
}

/* Why a call failed, for the end of the one line: "hugepaged is not running", the daemon's own message, ... */
static const char *bus_reason(const sd_bus_error *e, int r, char *buf, size_t len) {
        if (bus_error_kind(e, r) == BUS_ERROR_TIMEOUT)
                snprintf(buf, len, "no answer from hugepaged within %" PRIu64 " s (TimeoutSec= in %s)",
                         config.timeout_usec / 1000000, HOOK_CONFIG_FILE);
        else
                bus_error_reason(e, r, bus_description(), buf, len);
        return buf;
}

static int get_default_page_size(sd_bus *bus, uint64_t *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char reason[512];
        uint64_t v;
        int r;

        r = sd_bus_get_property_trivial(bus, HP_BUS_NAME, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "DefaultPageSize",
                                        &error, 't', &v);
        if (r < 0) {
                fail("cannot learn the host's default huge page size: %s", bus_reason(&error, r, reason, sizeof(reason)));
                return r;
        }
        *ret = v;
        return 0;
}

static void describe(const HookReservation *res, char *buf, size_t len) {
        char total[FORMAT_SIZE_MAX], ps[FORMAT_SIZE_MAX];
        size_t o;

        format_size(total, sizeof(total), res->pages * res->page_size);
        format_size(ps, sizeof(ps), res->page_size);
        o = (size_t) snprintf(buf, len, "%s of %s pages", total, ps);
        if (res->kind == PLACEMENT_EXACT || res->kind == PLACEMENT_NODES) {
                size_t n = res->kind == PLACEMENT_EXACT ? res->n_node_pages : res->n_nodes;
                o += (size_t) snprintf(buf + o, len - MIN(o, len), " on node%s ", n > 1 ? "s" : "");
                for (size_t i = 0; i < n && o + 12 < len; i++)
                        o += (size_t) snprintf(buf + o, len - o, "%s%" PRIu32, i ? "," : "",
                                               res->kind == PLACEMENT_EXACT ? res->node_pages[i].node : res->nodes[i]);
        }
}

static int call_reserve(sd_bus *bus, const HookReservation *res, bool hold, sd_bus_error *error) {
        _cleanup_free_ NodeAmount *node_bytes = NULL;
        ReserveOptions opts = { .lifetime = "explicit", .hold = hold };

        if (res->kind == PLACEMENT_NODES) {
                opts.nodes = res->nodes;
                opts.n_nodes = res->n_nodes;
        }
        if (res->kind == PLACEMENT_EXACT) {
                /* The domain counts pages per node; Reserve takes bytes. */
                node_bytes = calloc(res->n_node_pages ?: 1, sizeof(*node_bytes));
                if (!node_bytes)
                        return -ENOMEM;
                for (size_t i = 0; i < res->n_node_pages; i++)
                        node_bytes[i] = (NodeAmount) { res->node_pages[i].node,
                                                       res->node_pages[i].amount * res->page_size };
                opts.node_bytes = node_bytes;
                opts.n_node_bytes = res->n_node_pages;
        }
        return bus_call_reserve(bus, res->name, res->page_size,
                                res->kind == PLACEMENT_EXACT ? UINT64_C(0) : res->pages * res->page_size, &opts, error,
                                NULL);
}

static int call_release(sd_bus *bus, const char *name, sd_bus_error *error) {
        int r = bus_call_manager(bus, "Release", error, NULL, "s", name);
        /* Already gone (QEMU exited and the pid binding released it, or nothing was reserved): that is the goal. */
        if (r < 0 && bus_error_kind(error, r) == BUS_ERROR_NOT_FOUND) {
                sd_bus_error_free(error);
                return 0;
        }
        return r;
}

/* The reason after "cannot reserve ... pages ...: " in the daemon's InsufficientPages message, so the line reads
 * once; any other message is kept whole. */
static const char *short_reason(const HookReservation *res, const char *reason) {
        const char *colon;
        bool one_place = res->kind == PLACEMENT_ANY || (res->kind == PLACEMENT_EXACT && res->n_node_pages == 1) ||
                         (res->kind == PLACEMENT_NODES && res->n_nodes == 1);
        if (one_place && strneq(reason, "cannot reserve ", 15) && (colon = strstr(reason, ": ")))
                return colon + 2;
        return reason;
}

/* The directory libvirt will give QEMU for res's pages, when res can be held there: Hold=yes, the domain's id
 * is known, and no other reservation of the domain has its page size (one directory per page size). */
static char *hold_dir(const DomainDef *def, const DomainNeeds *needs, const HookReservation *res, bool quiet) {
        char *dir = NULL;
        int r;

        if (!config.hold)
                return NULL;
        for (size_t j = 0; j < needs->n_reservations; j++)
                if (&needs->reservations[j] != res && needs->reservations[j].page_size == res->page_size) {
                        if (!quiet)
                                        fail("domain %s: not holding %s: another reservation has its page size",
                                     def->name, res->name);
                        return NULL;
                }
        r = hold_domain_dir(def->name, def->id, res->page_size, &dir);
        if (r < 0 && !quiet)
                fail("domain %s: not holding %s: %s", def->name, res->name,
                     r == -ENOENT ? "no hugetlbfs mount of its page size" :
                     r == -EINVAL ? "no domain id, or a name that is not ASCII" : strerror(-r));
        return r < 0 ? NULL : dir;
}

static int bind_held(sd_bus *bus, const HookReservation *res, const char *dir, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *mount_path = NULL;
        const char *path;
        int r;

        r = bus_call_manager(bus, "GetReservation", error, &reply, "s", res->name);
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, HP_BUS_NAME, path, HP_BUS_IFACE_RESERVATION, "MountPath", error,
                                               &mount_path);
        if (r < 0)
                return r;
        if (!*mount_path)
                return 0; /* reserved without hold (Hold= changed since "prepare"): nothing to bind */
        r = hold_bind(mount_path, dir);
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "cannot bind %s on %s: %s", mount_path, dir,
                                               strerror(-r));
        return 0;
}

/* Reserves every reservation the domain needs, all or none; with Hold=yes, held (bound at "start"). */
static int phase_prepare(sd_bus *bus, const DomainDef *def, const DomainNeeds *needs) {
        for (size_t i = 0; i < needs->n_reservations; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                const HookReservation *res = &needs->reservations[i];
                _cleanup_free_ char *dir = hold_dir(def, needs, res, false);
                char what[256], reason[512];
                int r;

                r = call_reserve(bus, res, dir != NULL, &error);
                /* A domain runs once: a reservation by its name before it starts is left from an earlier run. */
                if (r < 0 && bus_error_kind(&error, r) == BUS_ERROR_EXISTS) {
                        sd_bus_error_free(&error);
                        r = call_release(bus, res->name, &error);
                        if (r >= 0)
                                r = call_reserve(bus, res, dir != NULL, &error);
                }
                if (r < 0) {
                        describe(res, what, sizeof(what));
                        bus_reason(&error, r, reason, sizeof(reason));
                        for (size_t j = 0; j < i; j++) {
                                _cleanup_(sd_bus_error_free) sd_bus_error e2 = SD_BUS_ERROR_NULL;
                                (void) call_release(bus, needs->reservations[j].name, &e2);
                        }
                        fail("cannot reserve %s: %s", what, short_reason(res, reason));
                        return r;
                }
        }
        return 0;
}

/* Binds the held reservations on the directories libvirt made for QEMU's huge page files, before QEMU runs. */
static int phase_hold(sd_bus *bus, const DomainDef *def, const DomainNeeds *needs) {
        for (size_t i = 0; i < needs->n_reservations; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                const HookReservation *res = &needs->reservations[i];
                _cleanup_free_ char *dir = hold_dir(def, needs, res, true);
                char reason[512];
                int r;

                if (!dir)
                        continue;
                r = bind_held(bus, res, dir, &error);
                if (r < 0) {
                        (void) hold_unbind_domain(def->name);
                        fail("cannot hold the pages of %s for QEMU: %s", res->name,
                             bus_reason(&error, r, reason, sizeof(reason)));
                        return r;
                }
        }
        return 0;
}

/* Makes sure every reservation exists (reserving it again if it was lost) and is bound to QEMU. */
static int phase_bind(sd_bus *bus, const DomainDef *def, const DomainNeeds *needs) {
        uint32_t pid = 0;
        int r;

        r = read_pid_file(def->name, &pid);
        if (r < 0)
                return r;
        for (size_t i = 0; i < needs->n_reservations; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const HookReservation *res = &needs->reservations[i];
                char what[256], reason[512];
                const char *path;

                r = bus_call_manager(bus, "GetReservation", &error, &reply, "s", res->name);
                if (r < 0 && bus_error_kind(&error, r) == BUS_ERROR_NOT_FOUND) {
                        sd_bus_error_free(&error);
                        r = call_reserve(bus, res, false, &error);
                        if (r < 0) {
                                describe(res, what, sizeof(what));
                                fail("cannot reserve %s: %s", what,
                                     short_reason(res, bus_reason(&error, r, reason, sizeof(reason))));
                                return r;
                        }
                        r = bus_call_manager(bus, "GetReservation", &error, &reply, "s", res->name);
                }
                if (r >= 0)
                        r = sd_bus_message_read(reply, "o", &path);
                if (r >= 0)
                        r = sd_bus_call_method(bus, HP_BUS_NAME, path, HP_BUS_IFACE_RESERVATION, "BindProcess", &error,
                                               NULL, "u", pid);
                if (r < 0) {
                        fail("cannot bind reservation %s to QEMU (pid %" PRIu32 "): %s", res->name, pid,
                             bus_reason(&error, r, reason, sizeof(reason)));
                        return r;
                }
        }
        return 0;
}

/* Releases every reservation named after the domain: its UUID, and "UUID:..." for its other page sizes. */
static int phase_release(sd_bus *bus, const DomainDef *def) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **names = NULL;
        size_t n = 0, ulen = strlen(def->uuid);
        char reason[512];
        const char *name;
        int r;

        /* The bind mounts first: they keep a held reservation's pages reserved after hugepaged unmounts it. */
        r = hold_unbind_domain(def->name);
        if (r < 0)
                fail("cannot unmount the held huge pages of domain %s: %s", def->name, strerror(-r));
        r = bus_call_manager(bus, "ListReservations", &error, &reply, NULL);
        if (r < 0) {
                fail("cannot release the huge pages of domain %s: %s", def->name,
                     bus_reason(&error, r, reason, sizeof(reason)));
                return r;
        }
        r = sd_bus_message_enter_container(reply, 'a', "(sttuso)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sttuso)", &name, NULL, NULL, NULL, NULL, NULL)) > 0) {
                char **t;
                if (!strneq(name, def->uuid, ulen) || (name[ulen] != '\0' && name[ulen] != ':'))
                        continue;
                t = realloc(names, (n + 2) * sizeof(char *));
                if (!t)
                        return -ENOMEM;
                names = t;
                if (!(names[n] = strdup(name)))
                        return -ENOMEM;
                names[++n] = NULL;
        }
        if (r < 0) {
                fail("cannot read hugepaged's reservations: %s", strerror(-r));
                return r;
        }
        for (size_t i = 0; i < n; i++) {
                sd_bus_error_free(&error);
                r = call_release(bus, names[i], &error);
                if (r < 0) {
                        fail("cannot release reservation %s of domain %s: %s", names[i], def->name,
                             bus_reason(&error, r, reason, sizeof(reason)));
                        return r;
                }
        }
        return 0;
}

typedef enum Phase { PHASE_NONE, PHASE_PREPARE, PHASE_HOLD, PHASE_BIND, PHASE_RELEASE } Phase;

static Phase phase_from_args(const char *op, const char *subop) {
        if (streq(op, "prepare") && streq(subop, "begin"))
                return PHASE_PREPARE;
        if (streq(op, "start") && streq(subop, "begin"))
                return PHASE_HOLD;
        if ((streq(op, "started") || streq(op, "reconnect")) && streq(subop, "begin"))
                return PHASE_BIND;
        if (streq(op, "release") && streq(subop, "end"))
                return PHASE_RELEASE;
        return PHASE_NONE;
}

static int run(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *xml = NULL;
        DomainDef *def = NULL;
        DomainNeeds *needs = NULL;
        DomainError derr = {};
        uint64_t default_page_size = 0;
        size_t len = 0;
        Phase phase;
        long base;
        int r;

        if (argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
                printf("%s DOMAIN OPERATION SUB-OPERATION EXTRA < domain.xml\n\n"
                       "The libvirt qemu hook of hugepaged: reserves the domain's huge pages at 'prepare begin', with\n"
                       "Hold=yes mounts them where QEMU finds them at 'start begin', binds them to QEMU at 'started begin'\n"
                       "and 'reconnect begin', releases them at 'release end'.\n"
                       "Configuration: %s (BusAddress=, TimeoutSec=, PIDFileDirectory=, Hold=).\n",
                       program_invocation_short_name, HOOK_CONFIG_FILE);
                return 0;
        }
        if (argc < 4) {
                fail("usage: %s DOMAIN OPERATION SUB-OPERATION EXTRA < domain.xml", program_invocation_short_name);
                return 2;
        }
        phase = phase_from_args(argv[2], argv[3]);
        if (phase == PHASE_NONE) {
                drain_stdin();
                return 0;
        }
        if (config_load() < 0)
                return 1;

        r = read_stdin(&xml, &len);
        if (r == -EFBIG) {
                fail("the domain XML of %s is larger than %" PRIu64 " MiB", argv[1], DOMAIN_XML_MAX >> 20);
                return 1;
        }
        if (r < 0) {
                fail("cannot read the domain XML of %s: %s", argv[1], strerror(-r));
                return 1;
        }
        r = domain_parse(xml, len, &def, &derr);
        if (r < 0) {
                fail("domain %s: %s", argv[1], r == -ENOMEM ? "out of memory" : derr.message);
                return 1;
        }
        if (!def->hugepages) {
                domain_def_free(def);
                return 0; /* no huge pages: nothing to do, and no need for hugepaged */
        }

        r = bus_connect(&bus);
        if (r < 0)
                goto out;
        if (def->uses_default && phase != PHASE_RELEASE) {
                r = get_default_page_size(bus, &default_page_size);
                if (r < 0)
                        goto out;
        }
        if (phase != PHASE_RELEASE) {
                base = sysconf(_SC_PAGESIZE);
                r = domain_compute(def, default_page_size, base > 0 ? (uint64_t) base : 4096, &needs, &derr);
                if (r < 0) {
                        fail("domain %s: %s", def->name, r == -ENOMEM ? "out of memory" : derr.message);
                        goto out;
                }
        }

        switch (phase) {
        case PHASE_PREPARE:
                r = phase_prepare(bus, def, needs);
                break;
        case PHASE_HOLD:
                r = config.hold ? phase_hold(bus, def, needs) : 0;
                break;
        case PHASE_BIND:
                r = phase_bind(bus, def, needs);
                break;
        case PHASE_RELEASE:
                r = phase_release(bus, def);
                break;
        default:
                r = 0;
        }
out:
        domain_needs_free(needs);
        domain_def_free(def);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        int r = run(argc, argv);
        free(config.bus_address);
        free(config.pid_file_dir);
        return r;
}
