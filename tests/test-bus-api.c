/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus tests (see test-bus.h), the bus API against its contract: the running daemon's introspection compared
 * with dbus/org.hugepaged1.xml, and the Manager's properties. */
#include "test-bus.h"

/* ---- 1. introspection against the contract ---- */

static const char *emits_changed(const GDBusPropertyInfo *p) {
        const char *v = g_dbus_annotation_info_lookup(p->annotations,
                                                      "org.freedesktop.DBus.Property.EmitsChangedSignal");

        return v ?: "true";
}

static void compare_args(const char *what, GDBusArgInfo **want, GDBusArgInfo **got) {
        guint nw = 0, ng = 0;

        for (; want && want[nw]; nw++)
                ;
        for (; got && got[ng]; ng++)
                ;
        if (nw != ng)
                g_test_message("%s: %u arguments in the contract, %u in the daemon", what, nw, ng);
        g_assert_cmpuint(nw, ==, ng);
        for (guint i = 0; i < nw; i++) {
                g_test_message("%s arg %u: %s %s vs %s %s", what, i, want[i]->name, want[i]->signature,
                               got[i]->name, got[i]->signature);
                g_assert_cmpstr(want[i]->name, ==, got[i]->name);
                g_assert_cmpstr(want[i]->signature, ==, got[i]->signature);
        }
}

static guint count_ptrv(gpointer *v) {
        guint n = 0;

        for (; v && v[n]; n++)
                ;
        return n;
}

static void compare_interface(const GDBusInterfaceInfo *want, GDBusInterfaceInfo *got) {
        g_assert_nonnull(got);
        g_assert_cmpuint(count_ptrv((gpointer *) want->methods), ==, count_ptrv((gpointer *) got->methods));
        for (GDBusMethodInfo **m = want->methods; m && *m; m++) {
                GDBusMethodInfo *g = g_dbus_interface_info_lookup_method(got, (*m)->name);
                g_autofree char *in = g_strdup_printf("%s.%s in", want->name, (*m)->name);
                g_autofree char *out = g_strdup_printf("%s.%s out", want->name, (*m)->name);

                if (!g)
                        g_test_message("method %s.%s is missing", want->name, (*m)->name);
                g_assert_nonnull(g);
                compare_args(in, (*m)->in_args, g->in_args);
                compare_args(out, (*m)->out_args, g->out_args);
        }

        g_assert_cmpuint(count_ptrv((gpointer *) want->properties), ==, count_ptrv((gpointer *) got->properties));
        for (GDBusPropertyInfo **p = want->properties; p && *p; p++) {
                GDBusPropertyInfo *g = g_dbus_interface_info_lookup_property(got, (*p)->name);

                if (!g)
                        g_test_message("property %s.%s is missing", want->name, (*p)->name);
                g_assert_nonnull(g);
                g_test_message("property %s.%s: %s/%d/%s vs %s/%d/%s", want->name, (*p)->name, (*p)->signature,
                               (*p)->flags, emits_changed(*p), g->signature, g->flags, emits_changed(g));
                g_assert_cmpstr((*p)->signature, ==, g->signature);
                g_assert_cmpint((*p)->flags, ==, g->flags);
                g_assert_cmpstr(emits_changed(*p), ==, emits_changed(g));
        }

        g_assert_cmpuint(count_ptrv((gpointer *) want->signals), ==, count_ptrv((gpointer *) got->signals));
        for (GDBusSignalInfo **s = want->signals; s && *s; s++) {
                GDBusSignalInfo *g = g_dbus_interface_info_lookup_signal(got, (*s)->name);
                g_autofree char *what = g_strdup_printf("signal %s.%s", want->name, (*s)->name);

                g_assert_nonnull(g);
                compare_args(what, (*s)->args, g->args);
        }
}

static GDBusNodeInfo *introspect(GDBusConnection *c, const char *path) {
        g_autoptr(GVariant) reply = hp_call_ok(c, path, "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                                            "(s)");
        g_autoptr(GError) e = NULL;
        const char *xml;
        GDBusNodeInfo *node;

        g_variant_get(reply, "(&s)", &xml);
        node = g_dbus_node_info_new_for_xml(xml, &e);
        g_assert_no_error(e);
        return node;
}

/* The daemon's object at path has exactly the contract's interface iface among org.hugepaged1.*. */
static void check_object(GDBusConnection *c, GDBusNodeInfo *contract, const char *path, const char *iface) {
        g_autoptr(GDBusNodeInfo) got = introspect(c, path);
        guint ours = 0;

        g_test_message("checking %s on %s", iface, path);
        for (GDBusInterfaceInfo **i = got->interfaces; i && *i; i++)
                if (g_str_has_prefix((*i)->name, "org.hugepaged1.")) {
                        g_assert_cmpstr((*i)->name, ==, iface);
                        ours++;
                }
        g_assert_cmpuint(ours, ==, 1);
        compare_interface(g_dbus_node_info_lookup_interface(contract, iface),
                          g_dbus_node_info_lookup_interface(got, iface));
        g_assert_nonnull(g_dbus_node_info_lookup_interface(got, PROPS_IFACE));
}

static void test_introspection(Fixture *f, gconstpointer data) {
        g_autofree char *xml_path = g_build_filename(g_getenv("HUGEPAGED_SOURCE_ROOT"), "dbus",
                                                     HP_BUS_NAME ".xml", NULL);
        g_autofree char *xml = NULL, *res = NULL;
        g_autoptr(GError) e = NULL;
        g_autoptr(GDBusNodeInfo) contract = NULL;
        g_autoptr(GDBusNodeInfo) manager = NULL;
        GDBusInterfaceInfo *om;
        guint n_ifaces = 0;

        g_assert_true(g_file_get_contents(xml_path, &xml, NULL, &e));
        g_assert_no_error(e);
        contract = g_dbus_node_info_new_for_xml(xml, &e);
        g_assert_no_error(e);
        for (GDBusInterfaceInfo **i = contract->interfaces; i && *i; i++)
                n_ifaces++;
        g_assert_cmpuint(n_ifaces, ==, 3);

        res = hp_reserve_ok(f->c, "vm1", 0, 4 * PS2M, NULL);
        check_object(f->c, contract, MANAGER_PATH, MANAGER_IFACE);
        check_object(f->c, contract, NODE0_PATH, POOL_IFACE);
        check_object(f->c, contract, HP_BUS_POOL_PREFIX "/2048kB", POOL_IFACE);
        check_object(f->c, contract, HP_BUS_POOL_PREFIX "/1048576kB/node1", POOL_IFACE);
        check_object(f->c, contract, res, RES_IFACE);

        manager = introspect(f->c, MANAGER_PATH);
        om = g_dbus_node_info_lookup_interface(manager, OM_IFACE);
        g_assert_nonnull(om);
        g_assert_nonnull(g_dbus_interface_info_lookup_method(om, "GetManagedObjects"));
        g_assert_nonnull(g_dbus_interface_info_lookup_signal(om, "InterfacesAdded"));
        g_assert_nonnull(g_dbus_interface_info_lookup_signal(om, "InterfacesRemoved"));
}

/* ---- 2. manager properties ---- */

static void test_manager_properties(Fixture *f, gconstpointer data) {
        g_autofree char *bin = test_daemon_binary(), *out = NULL, *want = NULL;
        g_autoptr(GVariant) version = NULL;
        g_autoptr(GError) e = NULL;
        g_autofree char *page_sizes = NULL, *nodes = NULL, *path = NULL;
        const char *argv[] = { bin, "--version", NULL };
        int status = -1;

        version = test_get_property(f->c, MANAGER_PATH, MANAGER_IFACE, "Version");
        g_assert_cmpstr(g_variant_get_type_string(version), ==, "s");
        g_assert_cmpstr(g_variant_get_string(version, NULL), !=, "");
        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
                                   &status, &e));
        g_assert_no_error(e);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        want = g_strdup_printf("hugepaged %s\n", g_variant_get_string(version, NULL));
        g_assert_cmpstr(out, ==, want);

        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "DefaultPageSize"), ==, PS2M);
        page_sizes = hp_prop_str(f->c, MANAGER_PATH, MANAGER_IFACE, "PageSizes");
        g_assert_cmpstr(page_sizes, ==, "[2097152, 1073741824]");
        nodes = hp_prop_str(f->c, MANAGER_PATH, MANAGER_IFACE, "Nodes");
        g_assert_cmpstr(nodes, ==, "[0, 1]");
        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 0);

        path = hp_reserve_ok(f->c, "vm1", 0, 5 * PS2M + 1, NULL); /* rounded up to 6 pages */
        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 6 * PS2M);
        g_clear_pointer(&path, g_free);
        path = hp_reserve_ok(f->c, "big", PS1G, PS1G, NULL);
        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, 6 * PS2M + PS1G);
        hp_release_ok(f->c, "vm1");
        g_assert_cmpuint(hp_prop_u64(f->c, MANAGER_PATH, MANAGER_IFACE, "ReservedBytes"), ==, PS1G);
}

int main(int argc, char *argv[]) {
        hp_test_init(&argc, &argv);

        ADD("/bus/introspection", NULL, test_introspection);
        ADD("/bus/manager-properties", NULL, test_manager_properties);
        return g_test_run();
}
