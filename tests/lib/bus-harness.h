/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bus-test harness: a private system-type dbus-daemon that enforces the project's own bus policy, the real
 * hugepaged binary run on it as a subprocess, and daemon logs dumped to stderr whenever a test fails. */
#pragma once

#include <sys/types.h>

#include <gio/gio.h>

#include "hugepaged-bus-api.h"

G_BEGIN_DECLS

#define TEST_BUS_NAME HP_BUS_NAME
#define TEST_CALL_TIMEOUT_MS 30000

/* ---- the bus ---- */

typedef struct TestBus TestBus;

/* Starts a private system-type dbus-daemon (policy enforced: default deny own/method_call, plus
 * $HUGEPAGED_SOURCE_ROOT/dbus/org.hugepaged1.conf) and points DBUS_SYSTEM_BUS_ADDRESS of this process at
 * it; test_bus_stop() restores the previous value. GDBus' cached g_bus_get(G_BUS_TYPE_SYSTEM) singleton is
 * not reset between buses: use test_bus_connect(). The socket is reachable by any uid, so tests may drop
 * privileges in a child to act as an unprivileged caller. */
TestBus *test_bus_start(void);
const char *test_bus_address(TestBus *b);
pid_t test_bus_pid(TestBus *b);
/* A new private connection; the caller owns the reference. Asserts success. */
GDBusConnection *test_bus_connect(TestBus *b);
/* Terminates the bus and removes its directory. Daemons started on it should be stopped first. */
void test_bus_stop(TestBus *b);

/* ---- the daemon ---- */

typedef struct TestDaemon TestDaemon;

/* $HUGEPAGED_BIN, or else the daemon in the build tree. Free with g_free(). */
char *test_daemon_binary(void);

/* Spawns $HUGEPAGED_BIN or else $HUGEPAGED_BUILD_ROOT/src/hugepaged/hugepaged with
 *     [--root=ROOT] --state-dir=STATE_DIR --config=CONFIG --log-level=debug EXTRA_ARGS...
 * root NULL omits --root (the real kernel); state_dir NULL and config NULL get a fresh directory / empty
 * file in a per-daemon tmpdir, so the host's /etc config and /run state are never used. stdout+stderr go to
 * a log file, NOTIFY_SOCKET to a datagram socket read by a harness thread; the child is SIGKILLed if the
 * test process dies (spawn from the main thread: PDEATHSIG follows the forking thread).
 * $HUGEPAGED_DAEMON_WRAPPER, if set, is split like a shell command line and put in front (valgrind); not for
 * a $HUGEPAGED_BIN stand-in.
 * Waits up to 15 s until org.hugepaged1 has an owner; fails the test (log dumped) if the daemon exits or
 * times out first. */
TestDaemon *test_daemon_start(TestBus *b, const char *root, const char *state_dir, const char *config,
                              const char *const *extra_args);
/* Like test_daemon_start(), plus: extra_env entries "KEY=VALUE" set (or "KEY" unset) in the child's
 * environment, applied last; wait_for_name FALSE returns right after spawning (for tests that expect
 * the daemon to refuse to start; see test_daemon_wait_exit()). */
TestDaemon *test_daemon_start_full(TestBus *b, const char *root, const char *state_dir, const char *config,
                                   const char *const *extra_args, const char *const *extra_env,
                                   gboolean wait_for_name);

/* READY=1 seen on the notify socket. Daemons usually notify just after taking the bus name, so this waits up
 * to 5 s for it unless it has already arrived or the daemon has exited. */
gboolean test_daemon_got_ready(TestDaemon *d);
/* Waits until a notification line containing needle arrives after the previous successful match
 * (the messages are consumed in order, so waiting twice for "WATCHDOG=1" needs two pings). */
gboolean test_daemon_wait_notify(TestDaemon *d, const char *needle, guint timeout_ms);
/* Every notification line received so far, in order. Free with g_strfreev(). */
char **test_daemon_notify_messages(TestDaemon *d);

pid_t test_daemon_pid(TestDaemon *d);
const char *test_daemon_log_path(TestDaemon *d);
/* The whole log so far; free with g_free(). */
char *test_daemon_log(TestDaemon *d);
/* Waits until the log contains needle (polling), FALSE on timeout. */
gboolean test_daemon_wait_log(TestDaemon *d, const char *needle, guint timeout_ms);
/* Waits until the daemon has a file whose path ends in suffix open for writing only (polling its /proc/PID/fd),
 * FALSE on timeout. Reads don't count: the daemon also opens the same files briefly to read them. With the fake
 * kernel's delay_ms, this says a slow write is under way without asking the fake kernel, which would queue
 * behind that very write. */
gboolean test_daemon_wait_open_for_write(TestDaemon *d, const char *suffix, guint timeout_ms);

/* Sends a terminating signal and reaps the daemon (SIGKILL after 10 s); the status is then available from
 * test_daemon_exit_status(). Free with test_daemon_free() afterwards. */
void test_daemon_kill(TestDaemon *d, int sig);
/* SIGTERM and reap; after 10 s SIGKILL and fail the test. Returns WEXITSTATUS, or 128+signal. */
int test_daemon_stop(TestDaemon *d);
/* Waits for the daemon to exit on its own. Returns its status as test_daemon_stop() does, -1 on timeout. */
int test_daemon_wait_exit(TestDaemon *d, guint timeout_ms);
/* Status of a reaped daemon as test_daemon_stop() returns it; -1 while it is running. */
int test_daemon_exit_status(TestDaemon *d);
gboolean test_daemon_is_running(TestDaemon *d);
/* SIGKILLs the daemon if it still runs, removes its tmpdir (kept, and the log dumped, if the test
 * failed). */
void test_daemon_free(TestDaemon *d);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TestDaemon, test_daemon_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TestBus, test_bus_stop)

/* ---- process-wide ---- */

/* g_test_init() plus fatal-signal handlers (SIGABRT from a failed g_assert, SIGTERM from a meson timeout,
 * SIGSEGV/SIGBUS/SIGTRAP) that print the logs of every live daemon and bus to stderr. */
void test_harness_init(int *argc, char ***argv);
/* Prints every live daemon's and bus' log to stderr now. */
void test_harness_dump_logs(void);

/* ---- helpers ---- */

/* Synchronous call to org.hugepaged1 with a 30 s timeout; returns the reply or sets error. */
/* An a{sv} options dictionary from GVariant text, e.g. "{'nodes': <[uint32 0]>}": floating, so the call that
 * takes it owns it. Asserts the text parses. */
GVariant *test_opts(const char *text);

GVariant *test_call(GDBusConnection *c, const char *path, const char *iface, const char *method,
                    GVariant *args, const GVariantType *reply_type, GError **error);
/* org.freedesktop.DBus.Properties.Get on org.hugepaged1, unwrapped; asserts success. */
GVariant *test_get_property(GDBusConnection *c, const char *path, const char *iface, const char *prop);
/* Whether pidfd_open() works here. Lifetime 'pid' needs it; valgrind 3.19 (Debian 12) doesn't emulate it
 * (syscall 434), and under `meson test --setup=valgrind` this process and the daemon run under the same
 * valgrind, so tests of that lifetime skip when this is FALSE. */
gboolean test_pidfd_supported(void);
/* g_dir_make_tmp() wrapper (tmpl like "hugepaged-XXXXXX"); asserts success. Free with g_free(). */
char *test_tmpdir(const char *tmpl);
/* rm -rf that neither follows symlinks nor crosses mount points (a FUSE fake kernel may be mounted
 * inside). A missing path is fine. */
void test_rm_rf(const char *path);
/* g_test_failed() is TRUE for a skipped test too, and the harness keeps a failed test's directories for the
 * post-mortem. Tests that may skip after their fixture is set up call test_skip() instead of g_test_skip();
 * teardowns ask test_failed(), which is FALSE for a test skipped that way, so its files are removed. */
void test_skip(const char *why);
gboolean test_failed(void);

G_END_DECLS
