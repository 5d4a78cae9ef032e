/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: Reserve calls built from the input (any name, sizes, an options dictionary with any keys
 * and variant types, sometimes a wrong signature) sent over a socketpair to the daemon's real vtable and
 * handler, on an in-process Manager whose kernel is a tree of plain files. No daemon, no bus daemon. */
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus.h"
#include "fuzz-util.h"
#include "manager.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the fake kernel: plain files; nr_hugepages is reset for every input so runs are reproducible ---- */

static char root[PATH_MAX], state_dir[PATH_MAX];
static const unsigned sizes_kb[] = { 2048, 1048576 };

static void put(const char *rel, const char *content) {
        char path[PATH_MAX + 128];
        snprintf(path, sizeof(path), "%s/%s", root, rel);
        for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')); s++) {
                *s = '\0';
                (void) mkdir(path, 0755);
                *s = '/';
        }
        fuzz_write_file(path, (const uint8_t *) content, strlen(content));
}

static void kernel_reset(void) {
        char rel[256];
        for (size_t s = 0; s < 2; s++) {
                static const char *const names[] = { "nr_hugepages", "free_hugepages", "surplus_hugepages",
                                                     "resv_hugepages", "nr_overcommit_hugepages" };
                for (size_t i = 0; i < 5; i++) {
                        snprintf(rel, sizeof(rel), "sys/kernel/mm/hugepages/hugepages-%ukB/%s", sizes_kb[s], names[i]);
                        put(rel, "0\n");
                }
                for (int n = 0; n < 2; n++)
                        for (size_t i = 0; i < 3; i++) {
                                snprintf(rel, sizeof(rel),
                                         "sys/devices/system/node/node%d/hugepages/hugepages-%ukB/%s", n,
                                         sizes_kb[s], names[i]);
                                /* Node 0 starts with a Floor of 4 pages of each size. */
                                put(rel, i == 0 && n == 0 ? "4\n" : "0\n");
                        }
        }
        put("sys/devices/system/node/node0/compact", "");
        put("sys/devices/system/node/node1/compact", "");
        put("sys/devices/system/node/has_memory", "0-1\n");
        put("proc/sys/vm/compact_memory", "");
        put("proc/meminfo", "MemTotal:       16777216 kB\nHugepagesize:       2048 kB\n");
        snprintf(rel, sizeof(rel), "%s/state", state_dir);
        (void) unlink(rel);
}

/* ---- reading the input ---- */

typedef struct Input {
        const uint8_t *p;
        size_t n;
} Input;

static uint8_t in_u8(Input *in) {
        if (in->n == 0)
                return 0;
        in->n--;
        return *in->p++;
}

static uint32_t in_u32(Input *in) {
        uint32_t v = 0;
        for (int i = 0; i < 4; i++)
                v = v << 8 | in_u8(in);
        return v;
}

static uint64_t in_u64(Input *in) {
        return (uint64_t) in_u32(in) << 32 | in_u32(in);
}

/* A string of up to max bytes; D-Bus strings are UTF-8 without NUL, so bytes are folded into ASCII. */
static char *in_str(Input *in, size_t max, char *buf) {
        size_t len = in_u8(in);
        if (len == 255)
                len = max; /* the longest, to probe the length limits */
        if (len > max)
                len = max;
        for (size_t i = 0; i < len; i++) {
                uint8_t b = in->n > 0 ? in_u8(in) : 'a';
                b &= 0x7f;
                buf[i] = b ? (char) b : '0';
        }
        buf[len] = '\0';
        return buf;
}

static uint64_t in_size(Input *in) {
        switch (in_u8(in) % 6) {
        case 0: return 0;
        case 1: return 2048ULL * 1024;
        case 2: return 1024ULL * 1024 * 1024;
        case 3: return (uint64_t) (in_u8(in) % 16) * 2048 * 1024;
        case 4: return in_u32(in);
        default: return in_u64(in);
        }
}

static uint32_t in_node(Input *in) {
        uint8_t s = in_u8(in);
        return s < 200 ? s % 3 : in_u32(in);
}

/* One value of a fuzz-chosen type inside an already opened variant or container. */
static int append_value(sd_bus_message *m, Input *in, uint8_t type, int depth) {
        char buf[512];
        int r;

        switch (type % 12) {
        case 0: { /* au */
                size_t n = in_u8(in);
                if (n > 64 && n < 128)
                        n = 1025; /* just over NODE_MAX */
                r = sd_bus_message_open_container(m, 'a', "u");
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = sd_bus_message_append(m, "u", i < 8 ? in_node(in) : (uint32_t) i);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        case 1: { /* a(ut) */
                size_t n = in_u8(in);
                if (n > 64 && n < 128)
                        n = 1025;
                r = sd_bus_message_open_container(m, 'a', "(ut)");
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = i < 8 ? sd_bus_message_append(m, "(ut)", in_node(in), in_size(in))
                                  : sd_bus_message_append(m, "(ut)", (uint32_t) i, (uint64_t) 2097152);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        case 2: { /* s */
                static const char *const lifetimes[] = { "explicit", "caller", "pid", "" };
                uint8_t s = in_u8(in);
                return sd_bus_message_append(m, "s", s < 128 ? lifetimes[s % 4] : in_str(in, 300, buf));
        }
        case 3: {
                uint8_t s = in_u8(in);
                return sd_bus_message_append(m, "u", s < 64 ? (uint32_t) getpid() : s < 128 ? 1U : in_u32(in));
        }
        case 4: return sd_bus_message_append(m, "t", in_u64(in));
        case 5: return sd_bus_message_append(m, "i", (int32_t) in_u32(in));
        case 6: return sd_bus_message_append(m, "as", 2, in_str(in, 40, buf), "x");
        case 7: return sd_bus_message_append(m, "b", in_u8(in) & 1);
        case 8: /* a variant in the variant */
                if (depth > 3)
                        return sd_bus_message_append(m, "y", in_u8(in));
                r = sd_bus_message_open_container(m, 'v', "u");
                if (r >= 0)
                        r = sd_bus_message_append(m, "u", in_u32(in));
                return r < 0 ? r : sd_bus_message_close_container(m);
        case 9: return sd_bus_message_append(m, "a(uu)", 1, in_node(in), in_u32(in));
        case 10: return sd_bus_message_append(m, "ay", 0);
        default: return sd_bus_message_append(m, "a{sv}", 1, "nodes", "au", 1, in_node(in));
        }
}

static const char *const value_sigs[] = { "au", "a(ut)", "s", "u", "t", "i", "as", "b", "v", "a(uu)", "ay", "a{sv}" };

static int append_options(sd_bus_message *m, Input *in) {
        static const char *const keys[] = { "nodes", "node_bytes", "lifetime", "pid", "hold" };
        /* The right type for each key, so most entries get past the type check to the checks behind it. */
        static const uint8_t right[] = { 0, 1, 2, 3, 7 };
        size_t n = in_u8(in) % 20; /* the handler takes up to 16 */
        char buf[512];
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                uint8_t k = in_u8(in), t = in_u8(in);
                const char *key = k < 200 ? keys[k % 5] : in_str(in, 300, buf);
                uint8_t type = t < 160 && k < 200 ? right[k % 5] : t;

                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", key);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', value_sigs[type % 12]);
                if (r >= 0)
                        r = append_value(m, in, type, 0);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        return r < 0 ? r : sd_bus_message_close_container(m);
}

/* ---- the bus pair ---- */

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        *(int *) userdata = 1;
        return 0;
}

static void pump(sd_bus *server, sd_bus *client, int *done) {
        unsigned idle = 0;

        while (!*done && idle < 50) {
                int a = sd_bus_process(server, NULL), b = sd_bus_process(client, NULL);
                if (a < 0 || b < 0)
                        return;
                if (a == 0 && b == 0) {
                        struct pollfd p[] = { { .fd = sd_bus_get_fd(server), .events = POLLIN },
                                              { .fd = sd_bus_get_fd(client), .events = POLLIN } };
                        (void) poll(p, 2, 2);
                        idle++;
                } else
                        idle = 0;
        }
}

static int call(sd_bus *server, sd_bus *client, sd_bus_message *m) {
        int done = 0, r;

        r = sd_bus_call_async(client, NULL, m, on_reply, &done, 5 * 1000 * 1000);
        if (r < 0)
                return r;
        pump(server, client, &done);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Input in = { data, size };
        sd_event *event = NULL;
        sd_bus *server = NULL, *client = NULL;
        sd_bus_message *m = NULL;
        Manager *mgr = NULL;
        BusContext *ctx = NULL;
        sd_id128_t id;
        char name[512];
        int fds[2] = { -1, -1 }, r;
        uint8_t flags;

        if (!root[0]) {
                fuzz_setup_logging();
                snprintf(root, sizeof(root), "%s/root", fuzz_scratch_dir());
                snprintf(state_dir, sizeof(state_dir), "%s/state", fuzz_scratch_dir());
                (void) mkdir(root, 0755);
                (void) mkdir(state_dir, 0755);
        }
        kernel_reset();

        if (sd_event_new(&event) < 0 || manager_new(event, root, state_dir, &mgr) < 0)
                abort();
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
                abort();
        if (sd_bus_new(&server) < 0 || sd_bus_set_fd(server, fds[0], fds[0]) < 0 || sd_id128_randomize(&id) < 0 ||
            sd_bus_set_server(server, 1, id) < 0 || sd_bus_start(server) < 0)
                abort();
        if (sd_bus_new(&client) < 0 || sd_bus_set_fd(client, fds[1], fds[1]) < 0 || sd_bus_start(client) < 0)
                abort();
        if (bus_context_new_for(mgr, server, &ctx) < 0)
                abort();
        if (manager_startup(mgr) < 0 || bus_register(ctx) < 0)
                abort();

        flags = in_u8(&in);
        /* Mostly Reserve with its signature; sometimes a signature of the fuzzer's choosing, which sd-bus
         * must refuse before the handler sees it. */
        r = sd_bus_message_new_method_call(client, &m, NULL, BUS_PATH, "org.hugepaged1.Manager", "Reserve");
        if (r < 0)
                abort();
        (void) in_str(&in, flags & 0x80 ? 300 : 130, name);
        if ((flags & 0x70) == 0x70)
                r = sd_bus_message_append(m, "st", name, in_size(&in));
        else {
                r = sd_bus_message_append(m, "stt", name, in_size(&in), in_size(&in));
                if (r >= 0 && (flags & 0x70) != 0x60)
                        r = append_options(m, &in);
        }
        if (r >= 0)
                (void) call(server, client, m);
        m = sd_bus_message_unref(m);

        /* Then release it, so the release path and the state writes run too. */
        if (flags & 1) {
                r = sd_bus_message_new_method_call(client, &m, NULL, BUS_PATH, "org.hugepaged1.Manager", "Release");
                if (r >= 0 && sd_bus_message_append(m, "s", name) >= 0)
                        (void) call(server, client, m);
                m = sd_bus_message_unref(m);
        }

        sd_bus_flush_close_unref(client);
        manager_free(mgr);
        bus_context_free(ctx); /* closes the server bus */
        sd_event_unref(event);
        return 0;
}
