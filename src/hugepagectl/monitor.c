/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl monitor: a line (or a JSON object) for every signal of org.hugepaged1 (properties changed, objects
 * added and removed) and for the daemon joining or leaving the bus, until a signal ends it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bus-client.h"
#include "hugepagectl.h"
#include "json.h"
#include "macro.h"
#include "output.h"
#include "proxy.h"

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

/* InterfacesAdded and InterfacesRemoved begin alike: the object's path, then the whole JSON event, or the text
 * line's time and label. Returns 1 when the caller goes on with the text line, 0 when the event is done. */
static int monitor_begin_interfaces(sd_bus_message *m, const char *event) {
        const char *path;
        int r;

        r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return monitor_finish_line(m, r);
        if (arg_json)
                return monitor_print_interfaces_json(m, event, path);
        print_timestamp(stdout);
        print_object_label(stdout, path);
        return 1;
}

static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *iface;
        bool first = true;
        int r;

        r = monitor_begin_interfaces(m, "InterfacesAdded");
        if (r <= 0)
                return r;
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
        int r;

        r = monitor_begin_interfaces(m, "InterfacesRemoved");
        if (r <= 0)
                return r;
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

int verb_monitor(sd_bus *bus, char **args) {
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
