/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl as a test runs it: the built binary, on a given bus, with extra environment. */
#include <string.h>
#include <sys/wait.h>

#include "hp-ctl.h"

char *hp_ctl_bin(void) {
        const char *bin = g_getenv("HUGEPAGECTL_BIN");
        if (bin)
                return g_strdup(bin);
        g_assert_nonnull(g_getenv("HUGEPAGED_BUILD_ROOT"));
        return g_build_filename(g_getenv("HUGEPAGED_BUILD_ROOT"), "src", "hugepagectl", "hugepagectl", NULL);
}

GStrv hp_ctl_argv(const char *const *args) {
        GPtrArray *argv = g_ptr_array_new();

        g_ptr_array_add(argv, hp_ctl_bin());
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);
        return (GStrv) g_ptr_array_free(argv, FALSE);
}

GStrv hp_ctl_env(const char *bus_address, const char *const *env) {
        char **e = g_get_environ();

        if (bus_address)
                e = g_environ_setenv(e, "DBUS_SYSTEM_BUS_ADDRESS", bus_address, TRUE);
        for (const char *const *kv = env; kv && *kv; kv++) {
                g_autofree char *key = g_strndup(*kv, strcspn(*kv, "="));
                g_assert_true((*kv)[strlen(key)] == '=');
                e = g_environ_setenv(e, key, *kv + strlen(key) + 1, TRUE);
        }
        return e;
}

int hp_ctl_run(const char *bus_address, const char *const *env, char **ret_out, char **ret_err,
               const char *const *args) {
        g_auto(GStrv) argv = hp_ctl_argv(args);
        g_auto(GStrv) e = hp_ctl_env(bus_address, env);
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL, *err = NULL;
        int status;

        g_spawn_sync(NULL, argv, e, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error);
        g_assert_no_error(error);
        g_test_message("hugepagectl %s -> exit %d\nstdout: %s\nstderr: %s", args[0] ?: "",
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, err);
        g_assert_true(WIFEXITED(status));
        if (ret_out)
                *ret_out = g_steal_pointer(&out);
        if (ret_err)
                *ret_err = g_steal_pointer(&err);
        return WEXITSTATUS(status);
}
