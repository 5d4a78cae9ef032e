/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* NUMA topology changes reaching the real daemon binary through uevents.
 *   default:        a umockdev testbed (nodes 0-3 with memory blocks) preloaded into the daemon; nodes are
 *                   hot-added, offlined, removed and replayed, and the D-Bus objects, signals and Reserve's
 *                   answers are checked after each step (suite `udev`).
 *   --real-kernel:  "add" and "change" written to the real node0/uevent reach the daemon through the kernel
 *                   source and change nothing (suite `kernel`, root only; every count it changes is put back). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <umockdev.h>

#include "hp-client.h"

#define streq0(a, b) (g_strcmp0((a), (b)) == 0)

#define SIGNAL_TIMEOUT_MS 10000
#define KB_1G 1048576

typedef struct Fixture {
        UMockdevTestbed *tb;
        char *sys;        /* the testbed's sys directory, written directly (this process is not preloaded) */
        char *config;
        TestBus *bus;
        TestDaemon *daemon;
        GDBusConnection *conn;
        guint sub;
        GPtrArray *signals; /* "added PATH", "removed PATH", "changed PATH PROPERTY" */
        guint64 kb;       /* the default page size, in kB */
} Fixture;

static guint64 default_page_kb(void) {
        g_autofree char *s = NULL;
        const char *p;

        g_assert_true(g_file_get_contents("/proc/meminfo", &s, NULL, NULL));
        p = strstr(s, "Hugepagesize:");
        g_assert_nonnull(p);
        return g_ascii_strtoull(p + strlen("Hugepagesize:"), NULL, 10);
}

/* ---- the testbed ---- */

static void sys_write(Fixture *f, const char *rel, const char *value) {
        g_autofree char *path = g_build_filename(f->sys, rel, NULL);
        g_autofree char *dir = g_path_get_dirname(path);

        g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
        g_assert_true(g_file_set_contents(path, value, -1, NULL));
}

static char *sys_read(Fixture *f, const char *rel) {
        g_autofree char *path = g_build_filename(f->sys, rel, NULL);
        char *s = NULL;

        g_assert_true(g_file_get_contents(path, &s, NULL, NULL));
        return g_strchomp(s);
}

static void add_pool_files(Fixture *f, const char *dir, guint64 kb, gboolean global) {
        static const char *const names[] = { "nr_hugepages", "free_hugepages", "surplus_hugepages" };
        static const char *const global_names[] = { "resv_hugepages", "nr_overcommit_hugepages" };

        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                g_autofree char *rel = g_strdup_printf("%s/hugepages-%" G_GUINT64_FORMAT "kB/%s", dir, kb, names[i]);
                sys_write(f, rel, "0\n");
        }
        for (size_t i = 0; global && i < G_N_ELEMENTS(global_names); i++) {
                g_autofree char *rel = g_strdup_printf("%s/hugepages-%" G_GUINT64_FORMAT "kB/%s", dir, kb,
                                                       global_names[i]);
                sys_write(f, rel, "0\n");
        }
}

/* A node device with both pool sizes, and its two memory blocks, online. memory_only FALSE gives a node with
 * no memory at all (no hugepages directory, no blocks). */
static void add_node(Fixture *f, unsigned node, gboolean with_memory) {
        g_autoptr(GError) error = NULL;
        g_autofree char *rec = g_strdup_printf("P: /devices/system/node/node%u\nE: SUBSYSTEM=node\nA: cpulist=%u\n",
                                               node, node);
        g_autofree char *dir = g_strdup_printf("devices/system/node/node%u/hugepages", node);

        g_assert_true(umockdev_testbed_add_from_string(f->tb, rec, &error));
        g_assert_no_error(error);
        if (!with_memory)
                return;
        add_pool_files(f, dir, f->kb, FALSE);
        add_pool_files(f, dir, KB_1G, FALSE);
        for (unsigned b = 2 * node; b < 2 * node + 2; b++) {
                g_autofree char *mrec = g_strdup_printf("P: /devices/system/memory/memory%u\nE: SUBSYSTEM=memory\n"
                                                        "A: online=1\nA: state=online\nL: node%u=../../node/node%u\n",
                                                        b, node, node);
                g_assert_true(umockdev_testbed_add_from_string(f->tb, mrec, &error));
                g_assert_no_error(error);
        }
}

static void set_has_memory(Fixture *f, const char *list) {
        g_autofree char *v = g_strconcat(list, "\n", NULL);
        sys_write(f, "devices/system/node/has_memory", v);
}

static void set_block_online(Fixture *f, unsigned block, gboolean online) {
        g_autofree char *o = g_strdup_printf("devices/system/memory/memory%u/online", block);
        g_autofree char *s = g_strdup_printf("devices/system/memory/memory%u/state", block);
        sys_write(f, o, online ? "1\n" : "0\n");
        sys_write(f, s, online ? "online\n" : "offline\n");
}

static void uevent(Fixture *f, const char *devpath, const char *action) {
        g_autofree char *p = g_strconcat("/sys/", devpath, NULL);
        umockdev_testbed_uevent(f->tb, p, action);
}

/* ---- signals ---- */

static void on_signal(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                      const char *member, GVariant *params, gpointer userdata) {
        Fixture *f = userdata;

        if (streq0(member, "InterfacesAdded") || streq0(member, "InterfacesRemoved")) {
                const char *obj;
                g_variant_get_child(params, 0, "&o", &obj);
                g_ptr_array_add(f->signals, g_strdup_printf("%s %s", streq0(member, "InterfacesAdded") ? "added" : "removed", obj));
        } else if (streq0(member, "PropertiesChanged")) {
                g_autoptr(GVariant) changed = g_variant_get_child_value(params, 1);
                g_autoptr(GVariant) invalidated = g_variant_get_child_value(params, 2);
                GVariantIter it;
                const char *name;

                g_variant_iter_init(&it, changed);
                while (g_variant_iter_next(&it, "{&sv}", &name, NULL))
                        g_ptr_array_add(f->signals, g_strdup_printf("changed %s %s", path, name));
                g_variant_iter_init(&it, invalidated);
                while (g_variant_iter_next(&it, "&s", &name))
                        g_ptr_array_add(f->signals, g_strdup_printf("changed %s %s", path, name));
        }
}

static gboolean has_signal(Fixture *f, const char *s) {
        for (guint i = 0; i < f->signals->len; i++)
                if (streq0(f->signals->pdata[i], s))
                        return TRUE;
        return FALSE;
}

static gboolean has_signal_prefix(Fixture *f, const char *prefix) {
        for (guint i = 0; i < f->signals->len; i++)
                if (g_str_has_prefix(f->signals->pdata[i], prefix))
                        return TRUE;
        return FALSE;
}

static void dump_signals(Fixture *f) {
        for (guint i = 0; i < f->signals->len; i++)
                g_printerr("  signal: %s\n", (char *) f->signals->pdata[i]);
}

static void wait_signal(Fixture *f, const char *s) {
        gint64 deadline = g_get_monotonic_time() + SIGNAL_TIMEOUT_MS * 1000;

        while (!has_signal(f, s)) {
                if (g_get_monotonic_time() > deadline) {
                        dump_signals(f);
                        g_error("no signal \"%s\" within %d s", s, SIGNAL_TIMEOUT_MS / 1000);
                }
                g_main_context_iteration(NULL, FALSE);
                g_usleep(5000);
        }
}

/* Whatever the daemon emitted before answering a call has been dispatched once this returns. */
static void drain_signals(Fixture *f) {
        g_autoptr(GVariant) v = test_get_property(f->conn, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "Nodes");
        for (int i = 0; i < 20; i++) {
                while (g_main_context_iteration(NULL, FALSE))
                        ;
                g_usleep(5000);
        }
}

/* ---- the daemon ---- */

static char *nodes_string(Fixture *f) {
        g_autoptr(GVariant) v = test_get_property(f->conn, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "Nodes");
        g_autoptr(GString) s = g_string_new(NULL);
        gsize n;
        const guint32 *a = g_variant_get_fixed_array(v, &n, sizeof(guint32));

        for (gsize i = 0; i < n; i++)
                g_string_append_printf(s, "%s%u", i ? "," : "", a[i]);
        return g_strdup(s->str);
}

static char *pool_path(guint64 kb, unsigned node) {
        return hp_pool_path(kb, (int) node);
}

static gboolean pool_exists(Fixture *f, guint64 kb, unsigned node) {
        g_autofree char *path = pool_path(kb, node);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = test_call(f->conn, path, HP_PROPS_IFACE, "Get",
                                          g_variant_new("(ss)", HP_BUS_IFACE_POOL, "Node"), G_VARIANT_TYPE("(v)"),
                                          &error);
        return r != NULL;
}

static guint64 pool_prop(Fixture *f, guint64 kb, unsigned node, const char *prop) {
        g_autofree char *path = pool_path(kb, node);
        return hp_prop_u64(f->conn, path, HP_BUS_IFACE_POOL, prop);
}

static char *reservation_state(Fixture *f, const char *path) {
        g_autoptr(GVariant) v = test_get_property(f->conn, path, HP_BUS_IFACE_RESERVATION, "State");
        return g_variant_dup_string(v, NULL);
}

/* Reserve pages of the default size on one node; returns the path, or NULL with error set. */
static char *reserve(GDBusConnection *c, guint64 kb, const char *name, guint64 pages, unsigned node, GError **error) {
        guint32 nodes[1] = { node };

        return hp_reserve(c, name, kb * 1024, pages * kb * 1024,
                          hp_opt_one("nodes", g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, nodes, 1,
                                                                        sizeof(guint32))),
                          error);
}

static void assert_no_such_node(Fixture *f, const char *name, unsigned node) {
        g_autoptr(GError) error = NULL;
        g_autofree char *path = reserve(f->conn, f->kb, name, 1, node, &error);

        g_assert_null(path);
        hp_assert_dbus_error(error, HP_BUS_ERROR_NO_SUCH_NODE);
}

static guint log_count(Fixture *f, const char *needle) {
        g_autofree char *log = test_daemon_log(f->daemon);
        guint n = 0;
        for (const char *p = log; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static void wait_log_count(Fixture *f, const char *needle, guint n) {
        gint64 deadline = g_get_monotonic_time() + SIGNAL_TIMEOUT_MS * 1000;
        while (log_count(f, needle) < n) {
                if (g_get_monotonic_time() > deadline)
                        g_error("the daemon did not log \"%s\" %u times within %d s", needle, n, SIGNAL_TIMEOUT_MS / 1000);
                g_usleep(10000);
        }
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autofree char *conf_dir = test_tmpdir("hugepaged-udev-XXXXXX");
        g_autofree char *conf = NULL;
        g_autofree char *asan = NULL;
        const char *env[4];

        f->kb = default_page_kb();
        f->tb = umockdev_testbed_new();
        f->sys = umockdev_testbed_get_sys_dir(f->tb); /* transfer full */
        add_pool_files(f, "kernel/mm/hugepages", f->kb, TRUE);
        add_pool_files(f, "kernel/mm/hugepages", KB_1G, TRUE);
        for (unsigned n = 0; n < 4; n++)
                add_node(f, n, TRUE);
        set_has_memory(f, "0-3");

        /* A node that comes with memory gets its configured floor, as nodes present at start do. */
        f->config = g_build_filename(conf_dir, "hugepaged.conf", NULL);
        conf = g_strdup_printf("[Daemon]\nRefreshIntervalSec=0\n[Pool %" G_GUINT64_FORMAT "kB node4]\nMinPages=2\n", f->kb);
        g_assert_true(g_file_set_contents(f->config, conf, -1, NULL));

        /* The daemon alone runs preloaded: its /sys and its uevent socket are the testbed's. umockdev's library
         * comes before ASan's runtime in the list, which ASan must be told is fine. */
        asan = g_strconcat("ASAN_OPTIONS=verify_asan_link_order=0", g_getenv("ASAN_OPTIONS") ? ":" : "",
                           g_getenv("ASAN_OPTIONS") ?: "", NULL);
        env[0] = "LD_PRELOAD=libumockdev-preload.so.0";
        env[1] = "HUGEPAGED_UDEV_SOURCE=kernel";
        env[2] = asan;
        env[3] = NULL;

        f->bus = test_bus_start();
        f->daemon = test_daemon_start_full(f->bus, NULL, NULL, f->config, NULL, env, TRUE);
        f->conn = test_bus_connect(f->bus);
        f->signals = g_ptr_array_new_with_free_func(g_free);
        f->sub = g_dbus_connection_signal_subscribe(f->conn, TEST_BUS_NAME, NULL, NULL, NULL, NULL,
                                                    G_DBUS_SIGNAL_FLAGS_NONE, on_signal, f, NULL);
        g_assert_true(test_daemon_wait_log(f->daemon, "through the kernel uevent source", 5000));
        drain_signals(f);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        g_autofree char *dir = g_path_get_dirname(f->config);

        g_dbus_connection_signal_unsubscribe(f->conn, f->sub);
        g_clear_object(&f->conn);
        if (f->daemon)
                g_assert_cmpint(test_daemon_stop(f->daemon), ==, 0); /* 0 also means no sanitizer report */
        g_clear_pointer(&f->daemon, test_daemon_free);
        g_clear_pointer(&f->bus, test_bus_stop);
        g_clear_object(&f->tb);
        g_ptr_array_unref(f->signals);
        test_rm_rf(dir);
        g_free(f->config);
        g_free(f->sys);
}

/* ---- the steps ---- */

static void check_pools(Fixture *f, unsigned node, gboolean exist) {
        g_assert_cmpint(pool_exists(f, f->kb, node), ==, exist);
        g_assert_cmpint(pool_exists(f, KB_1G, node), ==, exist);
}

static void wait_pools_signal(Fixture *f, const char *what, unsigned node) {
        g_autofree char *a = pool_path(f->kb, node), *b = pool_path(KB_1G, node);
        g_autofree char *sa = g_strdup_printf("%s %s", what, a), *sb = g_strdup_printf("%s %s", what, b);
        wait_signal(f, sa);
        wait_signal(f, sb);
}

static void test_topology(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autofree char *nodes = NULL, *path4 = NULL, *path2 = NULL, *state = NULL, *nr = NULL, *changed2 = NULL;
        guint adds4, adds0;

        nodes = nodes_string(f);
        g_assert_cmpstr(nodes, ==, "0,1,2,3");
        for (unsigned n = 0; n < 4; n++)
                check_pools(f, n, TRUE);
        check_pools(f, 4, FALSE);

        /* Hot-add node 4: new pools announced, Nodes changed, MinPages applied, and Reserve works there. */
        g_ptr_array_set_size(f->signals, 0);
        add_node(f, 4, TRUE);
        set_has_memory(f, "0-4");
        uevent(f, "devices/system/node/node4", "add");
        wait_pools_signal(f, "added", 4);
        wait_signal(f, "changed " HP_BUS_PATH " Nodes");
        g_clear_pointer(&nodes, g_free);
        nodes = nodes_string(f);
        g_assert_cmpstr(nodes, ==, "0,1,2,3,4");
        check_pools(f, 4, TRUE);
        g_assert_cmpuint(pool_prop(f, f->kb, 4, "Floor"), ==, 2);
        g_assert_cmpuint(pool_prop(f, f->kb, 4, "Total"), ==, 2);
        path4 = reserve(f->conn, f->kb, "vm-4", 1, 4, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(pool_prop(f, f->kb, 4, "Reserved"), ==, 1);
        g_assert_cmpuint(pool_prop(f, f->kb, 4, "Total"), ==, 3);
        state = reservation_state(f, path4);
        g_assert_cmpstr(state, ==, "active");

        /* Offline every block of node 2, which holds a reservation: its pools go, the reservation stays on
         * record as degraded, and Reserve there fails with NoSuchNode. */
        path2 = reserve(f->conn, f->kb, "vm-2", 2, 2, &error);
        g_assert_no_error(error);
        g_ptr_array_set_size(f->signals, 0);
        set_block_online(f, 4, FALSE);
        set_block_online(f, 5, FALSE);
        set_has_memory(f, "0-1,3-4");
        uevent(f, "devices/system/memory/memory4", "offline");
        uevent(f, "devices/system/memory/memory5", "offline");
        wait_pools_signal(f, "removed", 2);
        wait_signal(f, "changed " HP_BUS_PATH " Nodes");
        changed2 = g_strdup_printf("changed %s State", path2);
        wait_signal(f, changed2);
        check_pools(f, 2, FALSE);
        g_clear_pointer(&nodes, g_free);
        nodes = nodes_string(f);
        g_assert_cmpstr(nodes, ==, "0,1,3,4");
        g_clear_pointer(&state, g_free);
        state = reservation_state(f, path2);
        g_assert_cmpstr(state, ==, "degraded");
        g_clear_pointer(&state, g_free);
        state = reservation_state(f, path4);
        g_assert_cmpstr(state, ==, "active");
        g_assert_true(test_daemon_wait_log(f->daemon, "reservation vm-2 is degraded", 5000));
        assert_no_such_node(f, "vm-2b", 2);

        /* Remove node 3 (the kernel announces it before its directory goes). */
        g_ptr_array_set_size(f->signals, 0);
        set_has_memory(f, "0-1,4");
        uevent(f, "devices/system/node/node3", "remove");
        umockdev_testbed_remove_device(f->tb, "/sys/devices/system/node/node3");
        wait_pools_signal(f, "removed", 3);
        wait_signal(f, "changed " HP_BUS_PATH " Nodes");
        check_pools(f, 3, FALSE);
        g_clear_pointer(&nodes, g_free);
        nodes = nodes_string(f);
        g_assert_cmpstr(nodes, ==, "0,1,4"); /* the kernel's numbers, gaps included */
        assert_no_such_node(f, "vm-3", 3);
        check_pools(f, 4, TRUE);

        /* Replays and strays: a duplicate add, a change, an add and a remove of a node without memory. None of
         * them changes anything. */
        adds4 = log_count(f, "uevent add node4");
        adds0 = log_count(f, "uevent add node0");
        add_node(f, 7, FALSE);
        g_ptr_array_set_size(f->signals, 0);
        uevent(f, "devices/system/node/node4", "add");
        uevent(f, "devices/system/node/node0", "add");
        uevent(f, "devices/system/node/node1", "change");
        uevent(f, "devices/system/node/node7", "add");
        uevent(f, "devices/system/node/node7", "remove");
        wait_log_count(f, "uevent add node4", adds4 + 1);
        wait_log_count(f, "uevent add node0", adds0 + 1);
        wait_log_count(f, "uevent remove node7", 1);
        drain_signals(f);
        if (has_signal_prefix(f, "added ") || has_signal_prefix(f, "removed ") ||
            has_signal(f, "changed " HP_BUS_PATH " Nodes")) {
                dump_signals(f);
                g_error("replayed uevents changed the topology");
        }
        g_clear_pointer(&nodes, g_free);
        nodes = nodes_string(f);
        g_assert_cmpstr(nodes, ==, "0,1,4");
        g_assert_cmpuint(pool_prop(f, f->kb, 4, "Reserved"), ==, 1);
        g_assert_cmpuint(pool_prop(f, f->kb, 4, "Floor"), ==, 2);
        g_free(reserve(f->conn, f->kb, "vm-4b", 1, 4, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(pool_prop(f, f->kb, 4, "Reserved"), ==, 2);
        nr = sys_read(f, "devices/system/node/node4/hugepages/hugepages-2048kB/nr_hugepages");
        if (f->kb == 2048)
                g_assert_cmpstr(nr, ==, "4");

        /* Node 2's memory comes back, but first a uevent of another subsystem arrives (a guest's tap device).
         * It is not a trigger: the topology is not re-read, so sysfs already saying "0-2,4" goes unseen. The two
         * calls after it make sure the daemon has handled it: the uevent was queued before the first one. */
        g_ptr_array_set_size(f->signals, 0);
        set_block_online(f, 4, TRUE);
        set_has_memory(f, "0-2,4");
        g_assert_true(umockdev_testbed_add_from_string(f->tb, "P: /devices/virtual/net/tap0\nE: SUBSYSTEM=net\n"
                                                       "E: INTERFACE=tap0\nA: mtu=1500\n", &error));
        g_assert_no_error(error);
        uevent(f, "devices/virtual/net/tap0", "add");
        for (int i = 0; i < 2; i++) {
                g_clear_pointer(&nodes, g_free);
                nodes = nodes_string(f);
        }
        g_assert_cmpstr(nodes, ==, "0,1,4");

        /* Then the block's own uevent: its pools return with the reservation's pages, and it is active again. */
        uevent(f, "devices/system/memory/memory4", "online");
        wait_pools_signal(f, "added", 2);
        wait_signal(f, "changed " HP_BUS_PATH " Nodes");
        wait_signal(f, changed2);
        g_clear_pointer(&state, g_free);
        state = reservation_state(f, path2);
        g_assert_cmpstr(state, ==, "active");
        g_assert_cmpuint(pool_prop(f, f->kb, 2, "Reserved"), ==, 2);
        g_clear_pointer(&nodes, g_free);
        nodes = nodes_string(f);
        g_assert_cmpstr(nodes, ==, "0,1,2,4");
}

/* ---- the real kernel ---- */

#define REAL_NODE0 "/sys/devices/system/node/node0"

static char *real_nr_path(guint64 kb) {
        return g_strdup_printf(REAL_NODE0 "/hugepages/hugepages-%" G_GUINT64_FORMAT "kB/nr_hugepages", kb);
}

static guint64 real_read(const char *path) {
        g_autofree char *s = NULL;
        g_assert_true(g_file_get_contents(path, &s, NULL, NULL));
        return g_ascii_strtoull(s, NULL, 10);
}

static void real_write(const char *path, const char *s) {
        FILE *f = fopen(path, "we");
        g_assert_nonnull(f);
        fputs(s, f);
        g_assert_cmpint(fclose(f), ==, 0);
}

static gboolean real_kernel_usable(void) {
        if (geteuid() != 0 || access(REAL_NODE0 "/uevent", W_OK) < 0 || access(REAL_NODE0 "/hugepages", F_OK) < 0) {
                g_printerr("test-udev --real-kernel: needs root, a writable " REAL_NODE0 "/uevent and NUMA hugepages\n");
                return FALSE;
        }
        return TRUE;
}

static void test_real_kernel(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *nr_path = NULL, *nodes_before = NULL, *nodes_after = NULL, *path = NULL;
        /* Unset: the daemon picks the source itself, "kernel" where udevd does not run, "udev" where it does. */
        const char *env[] = { "HUGEPAGED_UDEV_SOURCE", "LD_PRELOAD", "UMOCKDEV_DIR", NULL };
        Fixture f = {};
        guint64 before, during = 0;
        gboolean released = FALSE;


        f.kb = default_page_kb();
        nr_path = real_nr_path(f.kb);
        before = real_read(nr_path);

        f.bus = test_bus_start();
        f.daemon = test_daemon_start_full(f.bus, NULL, NULL, NULL, NULL, env, TRUE);
        f.conn = test_bus_connect(f.bus);
        g_assert_true(test_daemon_wait_log(f.daemon, "uevent source", 5000));
        nodes_before = nodes_string(&f);

        real_write(REAL_NODE0 "/uevent", "add\n");
        real_write(REAL_NODE0 "/uevent", "change\n");
        if (!test_daemon_wait_log(f.daemon, "uevent add node0", 10000) ||
            !test_daemon_wait_log(f.daemon, "uevent change node0", 10000)) {
                test_harness_dump_logs();
                g_error("the daemon did not see the uevents written to " REAL_NODE0 "/uevent");
        }
        nodes_after = nodes_string(&f);
        g_assert_cmpstr(nodes_after, ==, nodes_before);
        g_assert_true(pool_exists(&f, f.kb, 0));

        /* The daemon still serves: one page on node 0, then back. The count is restored whatever happens. */
        path = reserve(f.conn, f.kb, "udev-real-kernel", 1, 0, &error);
        if (path) {
                g_autoptr(GVariant) r = NULL;
                during = real_read(nr_path);
                r = test_call(f.conn, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "Release",
                              g_variant_new("(s)", "udev-real-kernel"), NULL, NULL);
                released = r != NULL;
        }
        if (real_read(nr_path) != before) {
                g_autofree char *v = g_strdup_printf("%" G_GUINT64_FORMAT "\n", before);
                real_write(nr_path, v);
        }
        g_assert_no_error(error);
        g_assert_true(released);
        g_assert_cmpuint(during, >=, before + 1);
        g_assert_cmpuint(real_read(nr_path), ==, before);

        g_clear_object(&f.conn);
        g_assert_cmpint(test_daemon_stop(f.daemon), ==, 0);
        test_daemon_free(f.daemon);
        test_bus_stop(f.bus);
        g_test_message("real kernel: add and change on node0 seen; Nodes [%s] unchanged; Reserve and Release worked",
                       nodes_after);
}

int main(int argc, char **argv) {
        gboolean real = argc > 1 && g_str_equal(argv[1], "--real-kernel");

        if (real) {
                argv[1] = argv[0];
                argc--;
                argv++;
        }
        if (real) {
                test_harness_init(&argc, &argv);
                if (!real_kernel_usable())
                        return 77;
                g_test_add_func("/udev/real-kernel", test_real_kernel);
                return g_test_run();
        }

        /* umockdev_testbed_uevent() resolves the device through /sys, so this process runs preloaded too. */
        if (!strstr(g_getenv("LD_PRELOAD") ?: "", "libumockdev-preload")) {
                const char *preload = g_getenv("LD_PRELOAD");
                const char *asan = g_getenv("ASAN_OPTIONS");
                g_autofree char *p = g_strconcat("libumockdev-preload.so.0", preload ? ":" : "", preload ?: "", NULL);
                g_autofree char *a = g_strconcat("verify_asan_link_order=0", asan ? ":" : "", asan ?: "", NULL);

                g_setenv("LD_PRELOAD", p, TRUE);
                g_setenv("ASAN_OPTIONS", a, TRUE);
                execv("/proc/self/exe", argv);
                g_printerr("cannot re-execute under libumockdev-preload: %s\n", g_strerror(errno));
                return 1;
        }
        test_harness_init(&argc, &argv);

        g_test_add("/udev/topology", Fixture, NULL, fixture_setup, test_topology, fixture_teardown);
        return g_test_run();
}
