/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one daemon fixture of the bus tests: the FUSE fake kernel, a private policy-enforcing bus, a state
 * directory and hugepaged.conf in a per-test directory, optionally python-dbusmock's polkitd, and the real
 * daemon on top; set up and torn down by g_test_add(), with what varies given as HpTestParams. */
#pragma once

#include <gio/gio.h>

#include "bus-harness.h"
#include "fake-kernel-launch.h"

G_BEGIN_DECLS

/* hugepaged.conf when HpTestParams.config is NULL. */
#define HP_TEST_DEFAULT_CONFIG "[Allocation]\nMaxAttempts=3\nTimeoutSec=10\n"

/* What the teardown demands of the daemon, if the test left one. */
typedef enum HpDaemonEnd {
        HP_DAEMON_END_IF_RUNNING,  /* still running: SIGTERM must end it with status 0; gone: fine */
        HP_DAEMON_END_MUST_RUN,    /* must still be running, and SIGTERM must end it with status 0 */
        HP_DAEMON_END_CLEAN,       /* SIGTERM (if it still runs) and its exit status must be 0 */
} HpDaemonEnd;

typedef struct HpTestParams {
        const char *const *fk_args;     /* fake-kernel command line; NULL: --nodes=0,1 */
        const char *const *fk_control;  /* fake-kernel control commands run before the daemon starts */
        const char *config;             /* contents of hugepaged.conf; NULL: HP_TEST_DEFAULT_CONFIG */
        const char *const *extra_args;  /* more daemon arguments */
        const char *const *extra_env;   /* the daemon's environment: "KEY=VALUE" or "KEY" to unset */
        gboolean polkit;                /* start python-dbusmock's polkitd template before the daemon */
        gboolean no_daemon;             /* the test starts the daemon itself (hp_fixture_daemon_start()) */
        HpDaemonEnd daemon_end;
} HpTestParams;

typedef struct HpFixture {
        const HpTestParams *params;
        FakeKernel *fk;
        TestBus *bus;
        char *dir;              /* per-test directory, mode 0755; kept if the test failed */
        char *state_dir;        /* dir/state */
        char *config;           /* dir/hugepaged.conf */
        TestDaemon *d;
        GDBusConnection *c;     /* root's connection, opened before the daemon starts */
        GPid polkit;
        char *polkit_log;
} HpFixture;

/* test_harness_init(), and exit status 77 (skipped) where the fake kernel can't be mounted (no /dev/fuse). */
void hp_test_init(int *argc, char ***argv);

/* g_test_add() setup and teardown: data is a const HpTestParams *, NULL for all defaults. */
void hp_fixture_setup(HpFixture *f, gconstpointer data);
void hp_fixture_teardown(HpFixture *f, gconstpointer data);

/* Starts the daemon on the fixture's kernel, bus, state and config with the params' arguments and
 * environment; wait_for_name as test_daemon_start_full(). */
void hp_fixture_daemon_start_full(HpFixture *f, gboolean wait_for_name);
void hp_fixture_daemon_start(HpFixture *f);
/* Ends the daemon with sig (SIGTERM: must exit 0, else must die of sig) and forgets it. */
void hp_fixture_daemon_end(HpFixture *f, int sig);

/* The model's nr_hugepages of one pool. */
guint64 hp_fixture_nr(HpFixture *f, int node, guint64 kb);

/* The mock polkitd (params.polkit): its Mock interface, and its log, printed when the test failed. */
#define HP_POLKIT_NAME "org.freedesktop.PolicyKit1"
#define HP_POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define HP_POLKIT_MOCK_IFACE "org.freedesktop.DBus.Mock"
/* The test bus' python, not the first python3 in PATH: that one may lack dbus-python and dbusmock. */
#define HP_TEST_PYTHON "/usr/bin/python3"

G_END_DECLS
