/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bus tests' daemon fixture: see hp-fixture.h. */
#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "hp-client.h"
#include "hp-fixture.h"

#define POLKIT_WAIT_MS 15000

static void polkit_child_setup(gpointer data) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                _exit(127);
}

static void polkit_start(HpFixture *f) {
        const char *argv[] = { HP_TEST_PYTHON, "-m", "dbusmock", "--system", "--template", "polkitd", NULL };
        g_autoptr(GError) e = NULL;
        int fd;

        f->polkit_log = g_build_filename(f->dir, "polkitd-mock.log", NULL);
        fd = open(f->polkit_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        g_assert_cmpint(fd, >=, 0);
        /* DBUS_SYSTEM_BUS_ADDRESS points at the test bus (test_bus_start() set it), and the child inherits it. */
        g_assert_true(g_spawn_async_with_fds(NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                             polkit_child_setup, NULL, &f->polkit, -1, fd, fd, &e));
        g_assert_no_error(e);
        close(fd);
        HP_WAIT_FOR(hp_name_has_owner(f->c, HP_POLKIT_NAME), POLKIT_WAIT_MS);
}

static void polkit_stop(HpFixture *f) {
        int status;

        if (f->polkit <= 0)
                return;
        (void) kill(f->polkit, SIGTERM);
        (void) waitpid(f->polkit, &status, 0);
        f->polkit = 0;
}

void hp_fixture_daemon_start_full(HpFixture *f, gboolean wait_for_name) {
        g_assert_null(f->d);
        f->d = test_daemon_start_full(f->bus, fake_kernel_root(f->fk), f->state_dir, f->config,
                                      f->params->extra_args, f->params->extra_env, wait_for_name);
}

void hp_fixture_daemon_start(HpFixture *f) {
        hp_fixture_daemon_start_full(f, TRUE);
}

void hp_fixture_daemon_end(HpFixture *f, int sig) {
        g_assert_nonnull(f->d);
        if (sig == SIGTERM)
                g_assert_cmpint(test_daemon_stop(f->d), ==, 0);
        else {
                test_daemon_kill(f->d, sig);
                g_assert_cmpint(test_daemon_exit_status(f->d), ==, 128 + sig);
        }
        g_clear_pointer(&f->d, test_daemon_free);
}

guint64 hp_fixture_nr(HpFixture *f, int node, guint64 kb) {
        return fake_kernel_get(f->fk, node, kb, "nr");
}

void hp_test_init(int *argc, char ***argv) {
        test_harness_init(argc, argv);
        if (!fake_kernel_available()) {
                g_printerr("no /dev/fuse: skipping\n");
                exit(77);
        }
}

void hp_fixture_setup(HpFixture *f, gconstpointer data) {
        static const char *const default_fk_args[] = { "--nodes=0,1", NULL };
        static const HpTestParams defaults = {};

        f->params = data ?: &defaults;
        f->fk = fake_kernel_start(f->params->fk_args ?: default_fk_args);
        for (const char *const *cmd = f->params->fk_control; cmd && *cmd; cmd++)
                fake_kernel_control(f->fk, "%s", *cmd);
        f->bus = test_bus_start();
        /* Readable by all: callers run as other uids in some tests. */
        f->dir = test_tmpdir("hugepaged-test-XXXXXX");
        g_assert_cmpint(g_chmod(f->dir, 0755), ==, 0);
        f->state_dir = g_build_filename(f->dir, "state", NULL);
        g_assert_cmpint(g_mkdir(f->state_dir, 0755), ==, 0);
        f->config = g_build_filename(f->dir, "hugepaged.conf", NULL);
        g_assert_true(g_file_set_contents(f->config, f->params->config ?: HP_TEST_DEFAULT_CONFIG, -1, NULL));
        f->c = test_bus_connect(f->bus);
        if (f->params->polkit)
                polkit_start(f);
        if (!f->params->no_daemon)
                hp_fixture_daemon_start(f);
}

void hp_fixture_teardown(HpFixture *f, gconstpointer data) {
        if (test_failed() && f->polkit_log) {
                g_autofree char *log = NULL;

                if (g_file_get_contents(f->polkit_log, &log, NULL, NULL))
                        g_printerr("\n===== polkitd mock log =====\n%s===== end of polkitd mock log =====\n", log);
        }
        if (f->d) {
                switch (f->params->daemon_end) {
                case HP_DAEMON_END_IF_RUNNING:
                        /* A daemon that ought to be running must stop cleanly on SIGTERM. */
                        if (test_daemon_is_running(f->d))
                                g_assert_cmpint(test_daemon_stop(f->d), ==, 0);
                        break;
                case HP_DAEMON_END_MUST_RUN:
                        /* Whatever the test did, the daemon must still be there and stop cleanly. */
                        g_assert_true(test_daemon_is_running(f->d));
                        g_assert_cmpint(test_daemon_stop(f->d), ==, 0);
                        break;
                case HP_DAEMON_END_CLEAN:
                        g_assert_cmpint(test_daemon_stop(f->d), ==, 0);
                        break;
                }
                g_clear_pointer(&f->d, test_daemon_free);
        }
        polkit_stop(f);
        if (f->c) {
                (void) g_dbus_connection_close_sync(f->c, NULL, NULL);
                g_clear_object(&f->c);
        }
        g_clear_pointer(&f->bus, test_bus_stop);
        g_clear_pointer(&f->fk, fake_kernel_stop);
        if (!test_failed())
                test_rm_rf(f->dir);
        g_clear_pointer(&f->dir, g_free);
        g_clear_pointer(&f->state_dir, g_free);
        g_clear_pointer(&f->config, g_free);
        g_clear_pointer(&f->polkit_log, g_free);
}
