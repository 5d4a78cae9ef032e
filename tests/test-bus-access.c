/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus tests (see test-bus.h), callers the daemon must refuse: other users under the bus policy, and
 * malformed messages. */
#include "test-bus.h"

/* ---- other users ---- */

#define NOBODY 65534

static void drop_to_nobody(gpointer user_data) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
            setuid(NOBODY) < 0)
                _exit(126);
}

/* `gdbus call` on org.hugepaged1 as uid 65534; returns its exit status, stdout+stderr in *ret_output. */
static int gdbus_as_nobody(const char *path, const char *method, const char *arg, char **ret_output) {
        g_autofree char *gdbus = g_find_program_in_path("gdbus");
        const char *argv[] = { gdbus, "call", "--system", "--dest", TEST_BUS_NAME, "--object-path", path,
                               "--method", method, arg, NULL };
        g_autofree char *out = NULL, *err = NULL;
        g_autoptr(GError) e = NULL;
        int status = -1;

        g_assert_nonnull(gdbus);
        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, drop_to_nobody, NULL, &out, &err,
                                   &status, &e));
        g_assert_no_error(e);
        *ret_output = g_strconcat(out, err, NULL);
        g_test_message("gdbus %s as nobody: status %d: %s", method, status, *ret_output);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), !=, 126);
        return WEXITSTATUS(status);
}

static void test_access_denied(Fixture *f, gconstpointer data) {
        g_autofree char *p = NULL, *out = NULL, *before = NULL, *after = NULL;

        if (getuid() != 0) {
                test_skip("needs root to act as another user");
                return;
        }
        p = hp_reserve_ok(f->c, "roots", 0, 2 * PS2M, NULL);
        before = kernel_snapshot(f);

        g_assert_cmpint(gdbus_as_nobody(MANAGER_PATH, MANAGER_IFACE ".Release", "'roots'", &out), !=, 0);
        g_assert_nonnull(strstr(out, "org.freedesktop.DBus.Error.AccessDenied"));
        g_clear_pointer(&out, g_free);
        g_assert_cmpint(gdbus_as_nobody(p, RES_IFACE ".Release", NULL, &out), !=, 0);
        g_assert_nonnull(strstr(out, "org.freedesktop.DBus.Error.AccessDenied"));
        g_clear_pointer(&out, g_free);

        /* Reading is for everyone. */
        g_assert_cmpint(gdbus_as_nobody(MANAGER_PATH, MANAGER_IFACE ".GetReservation", "'roots'", &out), ==, 0);
        g_assert_nonnull(strstr(out, p));

        after = kernel_snapshot(f);
        g_assert_cmpstr(after, ==, before);
        g_assert_cmpuint(hp_n_reservations(f->c), ==, 1);
        hp_release_ok(f->c, "roots");
}

/* ---- 6. malformed messages ---- */

static void test_malformed(Fixture *f, gconstpointer data) {
        pid_t pid = test_daemon_pid(f->d);
        g_autoptr(GError) e = NULL;
        g_autofree char *p = NULL;

        g_assert_cmpuint(hp_owner_pid(f->c), ==, (guint32) pid);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Reserve", g_variant_new("(s)", "x"), E_INVALID);
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Reserve", g_variant_new("(stt)", "x", PS2M, PS2M),
                       E_INVALID);
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Reserve", NULL, E_INVALID);
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                       g_variant_new("(sttas)", "x", PS2M, PS2M, NULL), E_INVALID);
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                       g_variant_new("(stta{sv}s)", "x", PS2M, PS2M, NULL, "extra"), E_INVALID);
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Release", g_variant_new("(u)", 1), E_INVALID);
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "ListPools", g_variant_new("(s)", "x"), E_INVALID);
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, MANAGER_IFACE, "Frobnicate", NULL,
                       "org.freedesktop.DBus.Error.UnknownMethod");
        g_clear_error(&e);
        /* An interface the bus policy does not list never reaches the daemon, not even from root. */
        e = hp_call_fails(f->c, MANAGER_PATH, "org.hugepaged1.Nope", "Reserve", NULL,
                       "org.freedesktop.DBus.Error.AccessDenied");
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, PROPS_IFACE, "Get", g_variant_new("(ss)", MANAGER_IFACE, "Bogus"),
                       "org.freedesktop.DBus.Error.UnknownProperty");
        g_clear_error(&e);
        e = hp_call_fails(f->c, NODE0_PATH, PROPS_IFACE, "Get", g_variant_new("(ss)", POOL_IFACE, "Bogus"),
                       "org.freedesktop.DBus.Error.UnknownProperty");
        g_clear_error(&e);
        e = hp_call_fails(f->c, MANAGER_PATH, PROPS_IFACE, "Set",
                       g_variant_new("(ssv)", MANAGER_IFACE, "ReservedBytes", g_variant_new_uint64(0)),
                       "org.freedesktop.DBus.Error.PropertyReadOnly");
        g_clear_error(&e);
        e = hp_call_fails(f->c, HP_BUS_POOL_PREFIX "/4kB/node0", PROPS_IFACE, "Get",
                       g_variant_new("(ss)", POOL_IFACE, "Total"), "org.freedesktop.DBus.Error.UnknownObject");
        g_clear_error(&e);
        e = hp_call_fails(f->c, HP_BUS_POOL_PREFIX "/2048kB/node7", PROPS_IFACE, "Get",
                       g_variant_new("(ss)", POOL_IFACE, "Total"), "org.freedesktop.DBus.Error.UnknownObject");
        g_clear_error(&e);
        e = hp_call_fails(f->c, HP_BUS_POOL_PREFIX "/2048kB/node00", PROPS_IFACE, "Get",
                       g_variant_new("(ss)", POOL_IFACE, "Total"), "org.freedesktop.DBus.Error.UnknownObject");
        g_clear_error(&e);
        e = hp_call_fails(f->c, RES_PREFIX "nope", RES_IFACE, "Release", NULL,
                       "org.freedesktop.DBus.Error.UnknownObject");
        g_clear_error(&e);

        hp_ping(f->c);
        g_assert_true(test_daemon_is_running(f->d));
        g_assert_cmpuint(hp_owner_pid(f->c), ==, (guint32) pid);
        /* And it still works. */
        p = hp_reserve_ok(f->c, "after", 0, PS2M, NULL);
        g_assert_cmpuint(nr(f, 0, KB2M) + nr(f, 1, KB2M), ==, 1);
}

int main(int argc, char *argv[]) {
        hp_test_init(&argc, &argv);

        ADD("/bus/access-denied", NULL, test_access_denied);
        ADD("/bus/malformed", NULL, test_malformed);
        return g_test_run();
}
