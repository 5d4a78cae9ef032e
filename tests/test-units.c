/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The commands hugepaged-reserve@.service runs (hugepaged-reserve start|stop NAME, as built), driven against
 * the real daemon on a private bus over the FUSE fake kernel, with a reservation directory of the test's
 * own (HUGEPAGED_RESERVATIONS_DIR), as the unit's Environment= sets it. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <glib/gstdio.h>

#include "hp-fixture.h"

#define KB2M 2048
#define KB1G 1048576

typedef HpFixture Fixture;

typedef struct Result {
        int status;     /* exit status, or -1 if killed */
        char *out;
        char *err;
} Result;

static void result_clear(Result *r) {
        g_free(r->out);
        g_free(r->err);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Result, result_clear)

static const HpTestParams params = { .config = "[Allocation]\nMaxAttempts=2\nTimeoutSec=10\n" };

/* The reservation directory of the test's own, in the fixture's directory. */
static char *resdir(Fixture *f) {
        return g_build_filename(f->dir, "reservations.d", NULL);
}

static void setup(Fixture *f, gconstpointer data) {
        g_autofree char *d = NULL;

        hp_fixture_setup(f, data);
        d = resdir(f);
        g_assert_cmpint(g_mkdir(d, 0755), ==, 0);
}

static void write_conf(Fixture *f, const char *name, const char *contents) {
        g_autofree char *fn = g_strconcat(name, ".conf", NULL);
        g_autofree char *dir = resdir(f);
        g_autofree char *path = g_build_filename(dir, fn, NULL);
        g_assert_true(g_file_set_contents(path, contents, -1, NULL));
}

/* Runs the built hugepaged-reserve VERB NAME with the unit's environment, against the test bus. */
static void run(Fixture *f, const char *verb, const char *name, Result *ret) {
        g_autofree char *helper = g_build_filename(g_getenv("HUGEPAGED_BUILD_ROOT"), "src", "hugepaged-reserve",
                                                   "hugepaged-reserve", NULL);
        const char *argv[] = { helper, verb, name, NULL };
        g_autofree char *dir = resdir(f);
        g_auto(GStrv) env = g_get_environ();
        g_autoptr(GError) error = NULL;
        int wait_status = 0;

        env = g_environ_setenv(env, "HUGEPAGED_RESERVATIONS_DIR", dir, TRUE);
        env = g_environ_setenv(env, "DBUS_SYSTEM_BUS_ADDRESS", test_bus_address(f->bus), TRUE);
        env = g_environ_setenv(env, "HUGEPAGED_RESERVE_TIMEOUT", "60", TRUE);
        g_assert_true(g_spawn_sync(NULL, (char **) argv, env, G_SPAWN_DEFAULT, NULL, NULL, &ret->out, &ret->err,
                                   &wait_status, &error));
        g_assert_no_error(error);
        ret->status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
        g_test_message("hugepaged-reserve %s %s -> %d\nstdout: %sstderr: %s", verb, name, ret->status, ret->out,
                       ret->err);
}

static guint64 nr(Fixture *f, int node, guint64 kb) {
        return fake_kernel_get(f->fk, node, kb, "nr");
}

/* The daemon's view of NAME: "pagesize:pages:lifetime", or NULL if it has no such reservation. */
static char *reservation(Fixture *f, const char *name) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariantIter) it = NULL;
        const char *n, *lifetime, *path;
        guint64 ps, pages;
        guint32 uid;

        reply = test_call(f->c, "/org/hugepaged1", "org.hugepaged1.Manager", "ListReservations", NULL,
                          G_VARIANT_TYPE("(a(sttuso))"), NULL);
        g_assert_nonnull(reply);
        g_variant_get(reply, "(a(sttuso))", &it);
        while (g_variant_iter_next(it, "(&sttu&s&o)", &n, &ps, &pages, &uid, &lifetime, &path))
                if (g_str_equal(n, name))
                        return g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT ":%s", ps, pages, lifetime);
        return NULL;
}

static void test_start_stop(Fixture *f, gconstpointer data) {
        g_auto(Result) r1 = {}, r2 = {}, r3 = {}, r4 = {};
        g_autofree char *res = NULL;

        write_conf(f, "vm1", "# a VM's memory\n[Reservation]\nSize = 8M\nPageSize=2M\nNodes=1\nLifetime=explicit\n");

        run(f, "start", "vm1", &r1);
        g_assert_cmpint(r1.status, ==, 0);
        g_assert_cmpstr(r1.err, ==, "");
        g_assert_nonnull(strstr(r1.out, "/org/hugepaged1/reservation/vm1"));
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 4);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 0);
        res = reservation(f, "vm1");
        g_assert_cmpstr(res, ==, "2097152:4:explicit");

        /* A unit restarted while its reservation stands (say after a failed stop) starts again. */
        run(f, "start", "vm1", &r2);
        g_assert_cmpint(r2.status, ==, 0);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 4);

        run(f, "stop", "vm1", &r3);
        g_assert_cmpint(r3.status, ==, 0);
        g_assert_cmpstr(r3.err, ==, "");
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 0);
        g_clear_pointer(&res, g_free);
        res = reservation(f, "vm1");
        g_assert_null(res);

        /* Stopping what is already released (by hand, say) succeeds. */
        run(f, "stop", "vm1", &r4);
        g_assert_cmpint(r4.status, ==, 0);
        g_assert_nonnull(strstr(r4.out, "vm1 was not reserved"));
}

static void test_node_sizes(Fixture *f, gconstpointer data) {
        g_auto(Result) r1 = {}, r2 = {}, r3 = {};

        write_conf(f, "vm-2", "[Reservation]\nNodeSizes=0:4M, 1:2MiB\nPageSize=2048kB\n");
        run(f, "start", "vm-2", &r1);
        g_assert_cmpint(r1.status, ==, 0);
        g_assert_cmpuint(nr(f, 0, KB2M), ==, 2);
        g_assert_cmpuint(nr(f, 1, KB2M), ==, 1);

        /* 1 GiB pages, from the default "any node". */
        write_conf(f, "vm3", "[Reservation]\nSize=2G\nPageSize=1G\n");
        run(f, "start", "vm3", &r2);
        g_assert_cmpint(r2.status, ==, 0);
        g_assert_cmpuint(nr(f, 0, KB1G) + nr(f, 1, KB1G), ==, 2);

        run(f, "stop", "vm-2", &r3);
        g_assert_cmpint(r3.status, ==, 0);
        g_assert_cmpuint(nr(f, 0, KB2M) + nr(f, 1, KB2M), ==, 0);
        g_assert_cmpuint(nr(f, 0, KB1G) + nr(f, 1, KB1G), ==, 2);
}

static void test_impossible(Fixture *f, gconstpointer data) {
        g_auto(Result) r = {};
        g_autofree char *res = NULL;

        /* The fake kernel has room for 8 gigantic pages per node. */
        write_conf(f, "big", "[Reservation]\nSize=20G\nPageSize=1G\nNodes=1\n");
        run(f, "start", "big", &r);
        g_assert_cmpint(r.status, ==, 1);
        /* One line, ours then the daemon's reason, for the unit's status. */
        g_assert_true(g_str_has_prefix(r.err, "hugepaged-reserve: cannot reserve big: "));
        g_assert_nonnull(strstr(r.err, "the kernel gave"));
        g_assert_null(strstr(r.err, "Call failed"));
        g_assert_cmpuint(nr(f, 1, KB1G), ==, 0);
        res = reservation(f, "big");
        g_assert_null(res);
}

static void test_bad_files(Fixture *f, gconstpointer data) {
        static const struct {
                const char *contents;
                const char *message;
        } cases[] = {
                { "[Reservation]\nSize=lots\n", "Size=lots: expected a size" },
                { "[Reservation]\nSise=1G\n", "bad.conf:2: unknown key Sise" },
                { "[Reservation]\nSize=1G\nLifetime=caller\n", "only Lifetime=explicit" },
                { "[Reservation]\nSize=1G\nNodes=zero\n", "'zero' is not a node number" },
                { "[Reservation]\nPageSize=2M\n", "Size= or NodeSizes= is required" },
                { "[Pool]\nSize=1G\n", "unknown section [Pool]" },
                { "Size=1G\n", "outside the [Reservation] section" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_auto(Result) r = {};
                write_conf(f, "bad", cases[i].contents);
                run(f, "start", "bad", &r);
                g_assert_cmpint(r.status, ==, 2);
                g_assert_nonnull(strstr(r.err, cases[i].message));
        }
        {
                g_auto(Result) r = {};
                run(f, "start", "missing", &r);
                g_assert_cmpint(r.status, ==, 2);
                g_assert_nonnull(strstr(r.err, "missing.conf: no such reservation file"));
        }
        {
                /* A name the daemon would refuse never reaches a path. */
                g_auto(Result) r = {};
                run(f, "start", "../etc/passwd", &r);
                g_assert_cmpint(r.status, ==, 2);
        }
        g_assert_cmpuint(nr(f, 0, KB2M) + nr(f, 1, KB2M) + nr(f, 0, KB1G) + nr(f, 1, KB1G), ==, 0);
}

/* Hold=yes: the kernel holds the pages; the mount's path, /run/hugepaged/mounts/NAME on a host (the test
 * daemon's state dir here), is printed and is the reservation's MountPath. */
static void test_hold(Fixture *f, gconstpointer data) {
        g_auto(Result) r1 = {}, r2 = {}, r3 = {}, r4 = {};
        g_autoptr(GVariant) mp = NULL;
        const char *line, *path;
        g_autofree char *mount = NULL;

        write_conf(f, "vm1", "[Reservation]\nSize=8M\nPageSize=2M\nHold=yes\n");
        run(f, "check", "vm1", &r1);
        g_assert_cmpint(r1.status, ==, 0);
        g_assert_cmpstr(r1.out, ==, "vm1 2097152 8388608 2 lifetime s explicit hold b true\n");

        run(f, "start", "vm1", &r2);
        g_assert_cmpint(r2.status, ==, 0);
        line = strstr(r2.out, "\nheld at ");
        g_assert_nonnull(line);
        mount = g_strndup(line + 9, strcspn(line + 9, "\n"));
        g_assert_true(g_str_has_suffix(mount, "/mounts/vm1"));
        g_assert_true(g_file_test(mount, G_FILE_TEST_IS_DIR));
        mp = test_get_property(f->c, "/org/hugepaged1/reservation/vm1", "org.hugepaged1.Reservation", "MountPath");
        g_variant_get(mp, "&s", &path);
        g_assert_cmpstr(path, ==, mount);

        run(f, "stop", "vm1", &r3);
        g_assert_cmpint(r3.status, ==, 0);
        g_assert_false(g_file_test(mount, G_FILE_TEST_EXISTS));

        write_conf(f, "bad", "[Reservation]\nSize=8M\nHold=maybe\n");
        run(f, "start", "bad", &r4);
        g_assert_cmpint(r4.status, ==, 2);
        g_assert_nonnull(strstr(r4.err, "Hold=maybe: expected yes or no"));
        g_assert_cmpuint(nr(f, 0, KB2M) + nr(f, 1, KB2M), ==, 0);
}

static void test_daemon_gone(Fixture *f, gconstpointer data) {
        g_auto(Result) r1 = {}, r2 = {};

        write_conf(f, "vm1", "[Reservation]\nSize=2M\n");
        run(f, "start", "vm1", &r1);
        g_assert_cmpint(r1.status, ==, 0);
        g_assert_cmpint(test_daemon_stop(f->d), ==, 0);
        g_clear_pointer(&f->d, test_daemon_free);

        /* No daemon, no activation on the test bus: stop must fail, not claim the pages are gone. */
        run(f, "stop", "vm1", &r2);
        g_assert_cmpint(r2.status, ==, 1);
        g_assert_true(g_str_has_prefix(r2.err, "hugepaged-reserve: cannot release vm1: "));
        g_assert_cmpuint(nr(f, 0, KB2M) + nr(f, 1, KB2M), ==, 1);
}

int main(int argc, char *argv[]) {
        hp_test_init(&argc, &argv);

#define ADD(path, fn) g_test_add(path, Fixture, &params, setup, fn, hp_fixture_teardown)
        ADD("/units/reserve/start-stop", test_start_stop);
        ADD("/units/reserve/node-sizes", test_node_sizes);
        ADD("/units/reserve/impossible", test_impossible);
        ADD("/units/reserve/bad-files", test_bad_files);
        ADD("/units/reserve/daemon-gone", test_daemon_gone);
        ADD("/units/reserve/hold", test_hold);
        return g_test_run();
}
