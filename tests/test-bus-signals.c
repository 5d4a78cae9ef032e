/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus tests (see test-bus.h), signals: ObjectManager and PropertiesChanged after each change, and their
 * coalescing in a burst. */
#include "test-bus.h"

static int strcmp_indirect(gconstpointer a, gconstpointer b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* ---- 7. signals ---- */

typedef struct Signal {
        char *path;
        char *iface;
        char *member;
        GVariant *params;
} Signal;

static void signal_free(gpointer p) {
        Signal *s = p;

        g_free(s->path);
        g_free(s->iface);
        g_free(s->member);
        g_variant_unref(s->params);
        g_free(s);
}

static void on_signal(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                      const char *member, GVariant *params, gpointer user_data) {
        Signal *s = g_new0(Signal, 1);
        g_autofree char *printed = g_variant_print(params, FALSE);

        s->path = g_strdup(path);
        s->iface = g_strdup(iface);
        s->member = g_strdup(member);
        s->params = g_variant_ref(params);
        g_test_message("signal %s %s.%s %s", path, iface, member, printed);
        g_ptr_array_add(user_data, s);
}

/* The first signal (path, member) whose first argument prints as arg0 (NULL: any); waits for it. */
static Signal *wait_signal(GPtrArray *log, const char *path, const char *member, const char *arg0) {
        gint64 deadline = g_get_monotonic_time() + (gint64) WAIT_MS * 1000;

        for (;;) {
                for (guint i = 0; i < log->len; i++) {
                        Signal *s = g_ptr_array_index(log, i);
                        g_autoptr(GVariant) a0 = NULL;

                        if (!g_str_equal(s->path, path) || !g_str_equal(s->member, member))
                                continue;
                        a0 = g_variant_get_child_value(s->params, 0);
                        if (arg0 && !g_str_equal(g_variant_get_string(a0, NULL), arg0))
                                continue;
                        return s;
                }
                if (g_get_monotonic_time() > deadline) {
                        g_test_message("no %s on %s (arg0 %s) arrived", member, path, arg0 ?: "any");
                        g_assert_not_reached();
                }
                hp_tick();
        }
}

static guint count_signals(GPtrArray *log, const char *path, const char *member) {
        guint n = 0;

        for (guint i = 0; i < log->len; i++) {
                Signal *s = g_ptr_array_index(log, i);

                n += g_str_equal(s->path, path) && g_str_equal(s->member, member);
        }
        return n;
}

/* PropertiesChanged(iface, changed, invalidated) printed as "{'A': <1>, ...} []", keys sorted. */
static char *properties_changed_str(Signal *s) {
        g_autoptr(GVariant) changed = g_variant_get_child_value(s->params, 1);
        g_autoptr(GVariant) invalidated = g_variant_get_child_value(s->params, 2);
        g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *inv = g_variant_print(invalidated, FALSE);
        GString *out = g_string_new("{");
        GVariantIter it;
        const char *key;
        GVariant *value;

        g_variant_iter_init(&it, changed);
        while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
                g_autofree char *v = g_variant_print(value, FALSE);

                g_ptr_array_add(keys, g_strdup_printf("%s=%s", key, v));
                g_variant_unref(value);
        }
        g_ptr_array_sort(keys, strcmp_indirect);
        for (guint i = 0; i < keys->len; i++)
                g_string_append_printf(out, "%s%s", i ? " " : "", (char *) g_ptr_array_index(keys, i));
        g_string_append_printf(out, "} %s", inv);
        return g_string_free(out, FALSE);
}

static void test_signals(Fixture *f, gconstpointer data) {
        g_autoptr(GPtrArray) log = g_ptr_array_new_with_free_func(signal_free);
        g_autofree char *owner = hp_name_owner(f->c), *path = NULL, *s = NULL;
        g_autoptr(GVariant) ifaces = NULL, res_props = NULL, v = NULL;
        Signal *sig;
        guint id[3];
        const char *p;

        id[0] = g_dbus_connection_signal_subscribe(f->c, owner, PROPS_IFACE, "PropertiesChanged", NODE0_PATH, NULL,
                                                   G_DBUS_SIGNAL_FLAGS_NONE, on_signal, log, NULL);
        id[1] = g_dbus_connection_signal_subscribe(f->c, owner, PROPS_IFACE, "PropertiesChanged", MANAGER_PATH,
                                                   MANAGER_IFACE, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, log, NULL);
        id[2] = g_dbus_connection_signal_subscribe(f->c, owner, OM_IFACE, NULL, MANAGER_PATH, NULL,
                                                   G_DBUS_SIGNAL_FLAGS_NONE, on_signal, log, NULL);
        /* The match rules are in place once a round trip to the daemon has been made. */
        hp_ping(f->c);

        path = hp_reserve_ok(f->c, "vm1", 0, PS1G, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpstr(path, ==, RES_PREFIX "vm1");

        sig = wait_signal(log, MANAGER_PATH, "InterfacesAdded", path);
        ifaces = g_variant_get_child_value(sig->params, 1);
        res_props = g_variant_lookup_value(ifaces, RES_IFACE, G_VARIANT_TYPE("a{sv}"));
        g_assert_nonnull(res_props);
        g_assert_true(g_variant_lookup(res_props, "Name", "&s", &p));
        g_assert_cmpstr(p, ==, "vm1");
        v = g_variant_lookup_value(res_props, "Pages", G_VARIANT_TYPE_UINT64);
        g_assert_cmpuint(g_variant_get_uint64(v), ==, 512);
        g_clear_pointer(&v, g_variant_unref);
        v = g_variant_lookup_value(res_props, "NodePages", G_VARIANT_TYPE("a(ut)"));
        s = g_variant_print(v, FALSE);
        g_assert_cmpstr(s, ==, "[(0, 512)]");
        g_clear_pointer(&s, g_free);

        sig = wait_signal(log, NODE0_PATH, "PropertiesChanged", POOL_IFACE);
        s = properties_changed_str(sig);
        g_assert_cmpstr(s, ==, "{Free=512 Reserved=512 Total=512} []");
        g_clear_pointer(&s, g_free);
        sig = wait_signal(log, MANAGER_PATH, "PropertiesChanged", MANAGER_IFACE);
        s = properties_changed_str(sig);
        g_assert_cmpstr(s, ==, "{ReservedBytes=1073741824} []");
        g_clear_pointer(&s, g_free);
        /* One change, one signal each; ReservedBytes comes last, so nothing else is on its way. */
        g_assert_cmpuint(count_signals(log, NODE0_PATH, "PropertiesChanged"), ==, 1);
        g_assert_cmpuint(count_signals(log, MANAGER_PATH, "InterfacesAdded"), ==, 1);
        g_assert_cmpuint(count_signals(log, MANAGER_PATH, "PropertiesChanged"), ==, 1);
        g_ptr_array_set_size(log, 0);

        /* An idempotent retry changes nothing and says nothing. */
        g_clear_pointer(&s, g_free);
        s = hp_reserve_ok(f->c, "vm1", 0, PS1G, test_opts("{'nodes': <[uint32 0]>}"));
        g_assert_cmpstr(s, ==, path);
        g_clear_pointer(&s, g_free);
        hp_release_ok(f->c, "vm1");

        sig = wait_signal(log, MANAGER_PATH, "InterfacesRemoved", path);
        g_clear_pointer(&v, g_variant_unref);
        v = g_variant_get_child_value(sig->params, 1);
        {
                g_autofree const char **names = g_variant_get_strv(v, NULL);

                g_assert_true(g_strv_contains(names, RES_IFACE));
        }
        sig = wait_signal(log, NODE0_PATH, "PropertiesChanged", POOL_IFACE);
        s = properties_changed_str(sig);
        g_assert_cmpstr(s, ==, "{Free=0 Reserved=0 Total=0} []");
        g_clear_pointer(&s, g_free);
        sig = wait_signal(log, MANAGER_PATH, "PropertiesChanged", MANAGER_IFACE);
        s = properties_changed_str(sig);
        g_assert_cmpstr(s, ==, "{ReservedBytes=0} []");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(count_signals(log, NODE0_PATH, "PropertiesChanged"), ==, 1);
        g_assert_cmpuint(count_signals(log, MANAGER_PATH, "InterfacesAdded"), ==, 0);
        g_assert_cmpuint(count_signals(log, MANAGER_PATH, "InterfacesRemoved"), ==, 1);
        g_assert_cmpuint(count_signals(log, MANAGER_PATH, "PropertiesChanged"), ==, 1);
        g_ptr_array_set_size(log, 0);

        /* A reservation on node 1 only: node 0 stays quiet. */
        g_clear_pointer(&s, g_free);
        s = hp_reserve_ok(f->c, "vm2", 0, PS2M, test_opts("{'nodes': <[uint32 1]>}"));
        g_clear_pointer(&s, g_free);
        sig = wait_signal(log, MANAGER_PATH, "PropertiesChanged", MANAGER_IFACE);
        s = properties_changed_str(sig);
        g_assert_cmpstr(s, ==, "{ReservedBytes=2097152} []");
        g_assert_cmpuint(count_signals(log, NODE0_PATH, "PropertiesChanged"), ==, 0);

        for (guint i = 0; i < G_N_ELEMENTS(id); i++)
                g_dbus_connection_signal_unsubscribe(f->c, id[i]);
        hp_tick();
}

typedef struct {
        guint done, failed;
} Burst;

static void on_burst_reply(GObject *src, GAsyncResult *res, gpointer user_data) {
        Burst *b = user_data;
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(src), res, &e);

        if (!r)
                g_test_message("burst call failed: %s", e->message);
        b->failed += !r;
        b->done++;
}

/* Whether the last PropertiesChanged on path in the log prints as want. */
static gboolean last_properties_changed_is(GPtrArray *log, const char *path, const char *want) {
        for (guint i = log->len; i > 0; i--) {
                Signal *s = g_ptr_array_index(log, i - 1);

                if (g_str_equal(s->path, path) && g_str_equal(s->member, "PropertiesChanged")) {
                        g_autofree char *printed = properties_changed_str(s);

                        return g_str_equal(printed, want);
                }
        }
        return FALSE;
}

/* A burst of calls in flight together: the pool signals go out at most once per 10 ms (org.hugepaged1(5)), not
 * once per call, and the last of them names the final values. */
static void test_signals_burst(Fixture *f, gconstpointer data) {
        enum { N = 40 };
        g_autoptr(GPtrArray) log = g_ptr_array_new_with_free_func(signal_free);
        g_autofree char *owner = hp_name_owner(f->c), *want_pool = NULL, *want_rb = NULL;
        Burst b = { 0 };
        guint id[2], n_pool, n_rb, bound;
        gint64 t0, elapsed_ms;

        id[0] = g_dbus_connection_signal_subscribe(f->c, owner, PROPS_IFACE, "PropertiesChanged", NODE0_PATH, NULL,
                                                   G_DBUS_SIGNAL_FLAGS_NONE, on_signal, log, NULL);
        id[1] = g_dbus_connection_signal_subscribe(f->c, owner, PROPS_IFACE, "PropertiesChanged", MANAGER_PATH,
                                                   MANAGER_IFACE, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, log, NULL);
        hp_ping(f->c);

        t0 = g_get_monotonic_time();
        for (guint i = 0; i < N; i++) {
                g_autofree char *name = g_strdup_printf("burst%u", i);

                g_dbus_connection_call(f->c, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                                       g_variant_new("(stt@a{sv})", name, PS2M, PS2M,
                                                     test_opts("{'nodes': <[uint32 0]>}")),
                                       G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NONE, TEST_CALL_TIMEOUT_MS, NULL,
                                       on_burst_reply, &b);
        }
        HP_WAIT_FOR(b.done == N, WAIT_MS);
        g_assert_cmpuint(b.failed, ==, 0);

        want_pool = g_strdup_printf("{Free=%d Reserved=%d Total=%d} []", N, N, N);
        want_rb = g_strdup_printf("{ReservedBytes=%" G_GUINT64_FORMAT "} []", (guint64) (N * PS2M));
        /* Every signal is in the test log (on_signal), so a timeout shows what came instead. */
        HP_WAIT_FOR(last_properties_changed_is(log, NODE0_PATH, want_pool) &&
                 last_properties_changed_is(log, MANAGER_PATH, want_rb), WAIT_MS);
        elapsed_ms = (g_get_monotonic_time() - t0) / 1000;
        n_pool = count_signals(log, NODE0_PATH, "PropertiesChanged");
        n_rb = count_signals(log, MANAGER_PATH, "PropertiesChanged");
        /* One set at once, then at most one per 10 ms of the time it all took (the last hp_tick() included). */
        bound = (guint) (elapsed_ms / 10) + 2;
        g_test_message("%d calls: %u pool and %u manager signals in %" G_GINT64_FORMAT " ms", N, n_pool, n_rb,
                       elapsed_ms);
        g_assert_cmpuint(n_pool, >=, 1);
        g_assert_cmpuint(n_pool, <=, MIN(bound, (guint) N));
        g_assert_cmpuint(n_rb, <=, MIN(bound, (guint) N));

        for (guint i = 0; i < G_N_ELEMENTS(id); i++)
                g_dbus_connection_signal_unsubscribe(f->c, id[i]);
        hp_tick();
}

int main(int argc, char *argv[]) {
        hp_test_init(&argc, &argv);

        ADD("/bus/signals", NULL, test_signals);
        ADD("/bus/signals-burst", NULL, test_signals_burst);
        return g_test_run();
}
