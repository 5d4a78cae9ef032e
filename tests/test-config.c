/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of src/hugepaged/config.c: hugepaged.conf, its drop-ins, and the "FILE:LINE: reason" errors. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "macro.h"

#define M (UINT64_C(1) << 20)
#define G (UINT64_C(1) << 30)
#define USEC UINT64_C(1000000)

typedef struct Fixture {
        char *dir;
        char *path;   /* DIR/hugepaged.conf, not created */
        char *dropin; /* DIR/hugepaged.conf.d, not created */
        Config config;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;

        f->dir = g_dir_make_tmp("test-config-XXXXXX", &error);
        g_assert_no_error(error);
        f->path = g_build_filename(f->dir, "hugepaged.conf", NULL);
        f->dropin = g_strconcat(f->path, ".d", NULL);
        config_init(&f->config);
}

static void rm_rf(const char *path) {
        GDir *d = g_dir_open(path, 0, NULL);
        if (d) {
                const char *name;
                while ((name = g_dir_read_name(d))) {
                        g_autofree char *p = g_build_filename(path, name, NULL);
                        rm_rf(p);
                }
                g_dir_close(d);
        }
        (void) g_remove(path);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        config_done(&f->config);
        rm_rf(f->dir);
        g_free(f->dropin);
        g_free(f->path);
        g_free(f->dir);
}

static void write_file(const char *path, const char *content) {
        g_autoptr(GError) error = NULL;
        g_file_set_contents(path, content, -1, &error);
        g_assert_no_error(error);
}

static void write_dropin(Fixture *f, const char *name, const char *content) {
        g_autofree char *p = g_build_filename(f->dropin, name, NULL);
        g_assert_cmpint(g_mkdir_with_parents(f->dropin, 0755), ==, 0);
        write_file(p, content);
}

static const PoolConfig *find_pool(const Config *c, uint64_t page_size, int node) {
        for (size_t i = 0; i < c->n_pools; i++)
                if (c->pools[i].page_size == page_size && c->pools[i].node == node)
                        return &c->pools[i];
        return NULL;
}

static void assert_defaults(const Config *c) {
        g_assert_cmpuint(c->max_reservations, ==, CONFIG_MAX_RESERVATIONS_DEFAULT);
        g_assert_cmpuint(c->refresh_interval_usec, ==, 10 * USEC);
        g_assert_cmpint(c->log_level, ==, -1);
        g_assert_cmpuint(c->alloc_attempts, ==, 5);
        g_assert_cmpuint(c->alloc_timeout_usec, ==, 120 * USEC);
        g_assert_true(c->compaction);
        g_assert_cmpuint(c->max_reservations_per_user, ==, CONFIG_MAX_RESERVATIONS_PER_USER_DEFAULT);
        g_assert_cmpuint(c->max_bytes_per_user, ==, CONFIG_UNLIMITED);
        g_assert_cmpuint(config_max_reserved_bytes(c, 64 * G), ==, CONFIG_UNLIMITED);
        g_assert_cmpuint(c->n_pools, ==, 0);
}

static void test_every_key(Fixture *f, gconstpointer data) {
        const PoolConfig *p;

        write_file(f->path,
                   "# hugepaged.conf\n"
                   "; another comment\n"
                   "[Daemon]\n"
                   "MaxReservations=100\n"
                   "RefreshIntervalSec = 30\n"
                   "LogLevel=debug ; inline comment\n"
                   "SomeFutureKey=whatever\n"
                   "\n"
                   "[Allocation]\n"
                   "MaxAttempts=3\n"
                   "TimeoutSec=60\n"
                   "Compaction=no\n"
                   "\n"
                   "[Pool 2M]\n"
                   "MinPages=16\n"
                   "MaxPages=1024\n"
                   "\n"
                   "[Pool 1G node1]\n"
                   "MinPages=1\n"
                   "MaxPages=4\n"
                   "\n"
                   "[Pool 1GiB 0]\n"
                   "MaxPages=2\n");
        g_assert_cmpint(config_load(&f->config, f->path, true), ==, 0);

        g_assert_cmpuint(f->config.max_reservations, ==, 100);
        g_assert_cmpuint(f->config.refresh_interval_usec, ==, 30 * USEC);
        g_assert_cmpint(f->config.log_level, ==, LOG_DEBUG);
        g_assert_cmpuint(f->config.alloc_attempts, ==, 3);
        g_assert_cmpuint(f->config.alloc_timeout_usec, ==, 60 * USEC);
        g_assert_false(f->config.compaction);

        g_assert_cmpuint(f->config.n_pools, ==, 3);
        p = find_pool(&f->config, 2 * M, CONFIG_NODE_ANY);
        g_assert_nonnull(p);
        g_assert_true(p->has_min && p->has_max);
        g_assert_cmpuint(p->min_pages, ==, 16);
        g_assert_cmpuint(p->max_pages, ==, 1024);
        p = find_pool(&f->config, G, 1);
        g_assert_nonnull(p);
        g_assert_true(p->has_min && p->has_max);
        g_assert_cmpuint(p->min_pages, ==, 1);
        g_assert_cmpuint(p->max_pages, ==, 4);
        p = find_pool(&f->config, G, 0);
        g_assert_nonnull(p);
        g_assert_false(p->has_min);
        g_assert_true(p->has_max);
        g_assert_cmpuint(p->max_pages, ==, 2);
}

/* Section and key names are case-insensitive; the ends of the ranges are accepted. */
static void test_case_and_limits(Fixture *f, gconstpointer data) {
        write_file(f->path,
                   "[daemon]\n"
                   "maxreservations=1000000\n"
                   "REFRESHINTERVALSEC=0\n"
                   "LogLevel=ERR\n"
                   "[ALLOCATION]\n"
                   "MaxAttempts=100\n"
                   "TimeoutSec=3600\n"
                   "Compaction=On\n"
                   "[pool 2048kB NODE3]\n"
                   "MinPages=0\n"
                   "MaxPages=18446744073709551615\n");
        g_assert_cmpint(config_load(&f->config, f->path, false), ==, 0);
        g_assert_cmpuint(f->config.max_reservations, ==, CONFIG_MAX_RESERVATIONS_MAX);
        g_assert_cmpuint(f->config.refresh_interval_usec, ==, 0);
        g_assert_cmpint(f->config.log_level, ==, LOG_ERR);
        g_assert_cmpuint(f->config.alloc_attempts, ==, 100);
        g_assert_cmpuint(f->config.alloc_timeout_usec, ==, 3600 * USEC);
        g_assert_true(f->config.compaction);

        const PoolConfig *p = find_pool(&f->config, 2 * M, 3);
        g_assert_nonnull(p);
        g_assert_cmpuint(p->min_pages, ==, 0);
        g_assert_cmpuint(p->max_pages, ==, UINT64_MAX);
}

static void test_missing(Fixture *f, gconstpointer data) {
        g_assert_cmpint(config_load(&f->config, f->path, false), ==, 0);
        assert_defaults(&f->config);
}

static void test_missing_must_exist(Fixture *f, gconstpointer data) {
        if (g_test_subprocess()) {
                g_assert_cmpint(config_load(&f->config, f->path, true), ==, -ENOENT);
                return;
        }
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        g_test_trap_assert_stderr("*hugepaged.conf: cannot open configuration: No such file or directory*");
}

static void test_empty(Fixture *f, gconstpointer data) {
        write_file(f->path, "");
        g_assert_cmpint(config_load(&f->config, f->path, true), ==, 0);
        assert_defaults(&f->config);
}

static void test_dropins(Fixture *f, gconstpointer data) {
        write_file(f->path,
                   "[Daemon]\n"
                   "MaxReservations=10\n"
                   "LogLevel=info\n"
                   "[Pool 2M]\n"
                   "MinPages=2\n"
                   "MaxPages=10\n");
        /* Lexical, not numeric: 1, 10, 9. */
        write_dropin(f, "9-last.conf", "[Daemon]\nMaxReservations=9\n");
        write_dropin(f, "10-middle.conf", "[Daemon]\nMaxReservations=10000\n[Allocation]\nMaxAttempts=7\n");
        write_dropin(f, "1-first.conf", "[Daemon]\nMaxReservations=1\nRefreshIntervalSec=5\n"
                                        "[Pool 2M]\nMaxPages=20\n");
        /* None of these is a drop-in; each would fail the load if it were read. */
        write_dropin(f, "README", "not a configuration file\n");
        write_dropin(f, "99-z.conf~", "[Bogus]\nKey=1\n");
        write_dropin(f, "99-z.conf.bak", "[Bogus]\nKey=1\n");
        write_dropin(f, "99-z.CONF", "[Bogus]\nKey=1\n");
        write_dropin(f, ".hidden.conf", "[Bogus]\nKey=1\n");
        write_dropin(f, ".conf", "[Bogus]\nKey=1\n");

        g_assert_cmpint(config_load(&f->config, f->path, true), ==, 0);
        g_assert_cmpuint(f->config.max_reservations, ==, 9);
        g_assert_cmpuint(f->config.refresh_interval_usec, ==, 5 * USEC);
        g_assert_cmpint(f->config.log_level, ==, LOG_INFO);
        g_assert_cmpuint(f->config.alloc_attempts, ==, 7);

        /* A drop-in changes the keys it names and leaves the others of the same section alone. */
        g_assert_cmpuint(f->config.n_pools, ==, 1);
        const PoolConfig *p = find_pool(&f->config, 2 * M, CONFIG_NODE_ANY);
        g_assert_nonnull(p);
        g_assert_cmpuint(p->min_pages, ==, 2);
        g_assert_cmpuint(p->max_pages, ==, 20);
}

static void test_dropins_without_main(Fixture *f, gconstpointer data) {
        write_dropin(f, "50-local.conf", "[Allocation]\nCompaction=false\n");
        g_assert_cmpint(config_load(&f->config, f->path, false), ==, 0);
        g_assert_false(f->config.compaction);
        g_assert_cmpuint(f->config.max_reservations, ==, CONFIG_MAX_RESERVATIONS_DEFAULT);
}

static void test_dropin_dir_is_a_file(Fixture *f, gconstpointer data) {
        write_file(f->path, "[Daemon]\nMaxReservations=3\n");
        write_file(f->dropin, "[Daemon]\nMaxReservations=4\n");
        g_assert_cmpint(config_load(&f->config, f->path, true), ==, 0);
        g_assert_cmpuint(f->config.max_reservations, ==, 3);
}

static void test_pool_limits(Fixture *f, gconstpointer data) {
        uint64_t min, max;

        write_file(f->path,
                   "[Pool 2M]\n"
                   "MinPages=1\n"
                   "MaxPages=100\n"
                   "[Pool 2M node1]\n"
                   "MinPages=5\n"
                   "[Pool 2M node2]\n"
                   "MaxPages=50\n"
                   "[Pool 1G 1]\n"
                   "MaxPages=4\n");
        g_assert_cmpint(config_load(&f->config, f->path, true), ==, 0);

        /* node0 has no section of its own: the size-wide one. */
        config_pool_limits(&f->config, 2 * M, 0, &min, &max);
        g_assert_cmpuint(min, ==, 1);
        g_assert_cmpuint(max, ==, 100);
        /* node1 overrides MinPages only. */
        config_pool_limits(&f->config, 2 * M, 1, &min, &max);
        g_assert_cmpuint(min, ==, 5);
        g_assert_cmpuint(max, ==, 100);
        /* node2 overrides MaxPages only. */
        config_pool_limits(&f->config, 2 * M, 2, &min, &max);
        g_assert_cmpuint(min, ==, 1);
        g_assert_cmpuint(max, ==, 50);
        /* A node section without a size-wide one. */
        config_pool_limits(&f->config, G, 1, &min, &max);
        g_assert_cmpuint(min, ==, 0);
        g_assert_cmpuint(max, ==, 4);
        config_pool_limits(&f->config, G, 0, &min, &max);
        g_assert_cmpuint(min, ==, 0);
        g_assert_cmpuint(max, ==, UINT64_MAX);
        /* A size nobody configured. */
        config_pool_limits(&f->config, 16 * G, 0, &min, &max);
        g_assert_cmpuint(min, ==, 0);
        g_assert_cmpuint(max, ==, UINT64_MAX);
}

/* Adopt=: floor unless said otherwise; a node's own section beats the size-wide one, whatever the order. */
static void test_pool_adopt(Fixture *f, gconstpointer data) {
        write_file(f->path,
                   "[Pool 1G node1]\n"
                   "Adopt=floor\n"
                   "[Pool 1G]\n"
                   "Adopt=Spare\n"
                   "[Pool 2M node2]\n"
                   "Adopt=spare\n");
        g_assert_cmpint(config_load(&f->config, f->path, true), ==, 0);
        g_assert_true(config_pool_adopt_spare(&f->config, G, 0));
        g_assert_false(config_pool_adopt_spare(&f->config, G, 1));
        g_assert_true(config_pool_adopt_spare(&f->config, 2 * M, 2));
        g_assert_false(config_pool_adopt_spare(&f->config, 2 * M, 0));
        g_assert_false(config_pool_adopt_spare(&f->config, 16 * G, 0));
}

/* The precedence doesn't depend on the order the sections come in. */
static void test_pool_limits_order(Fixture *f, gconstpointer data) {
        uint64_t min, max;

        write_file(f->path,
                   "[Pool 2M node1]\n"
                   "MinPages=5\n"
                   "MaxPages=6\n"
                   "[Pool 2M]\n"
                   "MinPages=1\n"
                   "MaxPages=100\n");
        g_assert_cmpint(config_load(&f->config, f->path, true), ==, 0);
        config_pool_limits(&f->config, 2 * M, 1, &min, &max);
        g_assert_cmpuint(min, ==, 5);
        g_assert_cmpuint(max, ==, 6);
        config_pool_limits(&f->config, 2 * M, 0, &min, &max);
        g_assert_cmpuint(min, ==, 1);
        g_assert_cmpuint(max, ==, 100);
}

/* ---- failures: each runs in a subprocess so its stderr can be checked --------------------------------- */

typedef struct BadCase {
        const char *name;
        const char *content;    /* hugepaged.conf */
        const char *dropin;     /* hugepaged.conf.d/50-test.conf, if not NULL */
        const char *stderr_pattern;
        const char *stderr_unmatched; /* if not NULL, must not appear */
} BadCase;

static const BadCase bad_cases[] = {
        { "adopt", "[Pool 1G]\nAdopt=mine\n", NULL, "*hugepaged.conf:2: Adopt=mine: expected floor or spare*" },
        { "max-pages", "[Pool 2M]\nMinPages=1\nMaxPages=lots\n", NULL, "*hugepaged.conf:3:*MaxPages=lots*" },
        { "min-above-max", "[Pool 2M]\nMinPages=8\nMaxPages=4\n", NULL,
          "*hugepaged.conf:3: MinPages=8 is above MaxPages=4*" },
        { "min-above-max-reversed", "[Pool 2M node0]\nMaxPages=4\nMinPages=8\n", NULL,
          "*hugepaged.conf:3: MinPages=8 is above MaxPages=4*" },
        { "min-above-max-dropin", "[Pool 2M]\nMaxPages=4\n", "[Pool 2M]\nMinPages=5\n",
          "*hugepaged.conf.d/50-test.conf:2: MinPages=5 is above MaxPages=4*" },
        { "min-pages", "[Pool 2M]\nMinPages=-1\n", NULL, "*hugepaged.conf:2:*MinPages=-1*" },
        { "unknown-section", "[Daemon]\nMaxReservations=5\n[Bogus]\nKey=1\n", NULL,
          "*hugepaged.conf:4: unknown section [Bogus]*" },
        { "pool-3M", "[Pool 3M]\nMinPages=1\n", NULL, "*hugepaged.conf:2: [Pool 3M]: expected*" },
        { "pool-2K", "[Pool 2K]\nMinPages=1\n", NULL, "*hugepaged.conf:2: [Pool 2K]*" },
        { "pool-0", "[Pool 0]\nMinPages=1\n", NULL, "*hugepaged.conf:2: [Pool 0]*" },
        { "pool-no-size", "[Pool ]\nMinPages=1\n", NULL, "*hugepaged.conf:2: [Pool ]*" },
        { "pool-bad-size", "[Pool 2Q]\nMinPages=1\n", NULL, "*hugepaged.conf:2: [Pool 2Q]*" },
        { "pool-node-1024", "[Pool 2M node1024]\nMinPages=1\n", NULL,
          "*hugepaged.conf:2: [Pool 2M node1024]*" },
        { "pool-node-garbage", "[Pool 2M nodeX]\nMinPages=1\n", NULL,
          "*hugepaged.conf:2: [Pool 2M nodeX]*" },
        { "pool-extra-word", "[Pool 2M node1 x]\nMinPages=1\n", NULL,
          "*hugepaged.conf:2: [Pool 2M node1 x]*" },
        { "max-reservations-0", "[Daemon]\nMaxReservations=0\n", NULL,
          "*hugepaged.conf:2: MaxReservations=0*" },
        { "max-reservations-high", "[Daemon]\nMaxReservations=1000001\n", NULL,
          "*hugepaged.conf:2: MaxReservations=1000001*" },
        { "refresh-high", "[Daemon]\nRefreshIntervalSec=86401\n", NULL,
          "*hugepaged.conf:2: RefreshIntervalSec=86401*" },
        { "refresh-unit", "[Daemon]\nRefreshIntervalSec=5s\n", NULL,
          "*hugepaged.conf:2: RefreshIntervalSec=5s*" },
        { "log-level", "[Daemon]\nLogLevel=loud\n", NULL, "*hugepaged.conf:2: LogLevel=loud*" },
        { "attempts-0", "[Allocation]\nMaxAttempts=0\n", NULL, "*hugepaged.conf:2: MaxAttempts=0*" },
        { "attempts-101", "[Allocation]\nMaxAttempts=101\n", NULL, "*hugepaged.conf:2: MaxAttempts=101*" },
        { "timeout-0", "[Allocation]\nTimeoutSec=0\n", NULL, "*hugepaged.conf:2: TimeoutSec=0*" },
        { "timeout-high", "[Allocation]\nTimeoutSec=3601\n", NULL, "*hugepaged.conf:2: TimeoutSec=3601*" },
        { "compaction", "[Allocation]\nCompaction=maybe\n", NULL, "*hugepaged.conf:2: Compaction=maybe*" },
        { "syntax", "[Daemon]\nMaxReservations 5\n", NULL, "*hugepaged.conf:2: syntax error*" },
        { "key-outside-section", "MaxReservations=5\n", NULL, "*hugepaged.conf:1: unknown section []*" },
        /* The first problem is the one named. */
        { "first-error-wins", "[Daemon]\nMaxReservations=0\nLogLevel=loud\n", NULL,
          "*hugepaged.conf:2: MaxReservations=0*", "*LogLevel*" },
        /* A line without '=' before a bad value: the line named must come with its own reason. */
        { "syntax-then-value", "[Daemon]\ngarbage\nMaxReservations=0\n", NULL,
          "*hugepaged.conf:2: syntax error*",
          "*MaxReservations*" },
        { "per-user-count", "[Limits]\nMaxReservationsPerUser=lots\n", NULL,
          "*hugepaged.conf:2: MaxReservationsPerUser=lots: expected 0..1000000 or infinity*" },
        { "per-user-count-high", "[Limits]\nMaxReservationsPerUser=1000001\n", NULL,
          "*hugepaged.conf:2: MaxReservationsPerUser=1000001*" },
        { "per-user-bytes", "[Limits]\nMaxBytesPerUser=16Q\n", NULL,
          "*hugepaged.conf:2: MaxBytesPerUser=16Q: expected a size*" },
        { "reserved-0-percent", "[Limits]\nMaxReservedBytes=0%\n", NULL,
          "*hugepaged.conf:2: MaxReservedBytes=0%: expected a percentage of RAM from 1% to 100%*" },
        { "reserved-101-percent", "[Limits]\nMaxReservedBytes=101%\n", NULL, "*MaxReservedBytes=101%*" },
        { "reserved-percent-only", "[Limits]\nMaxReservedBytes=%\n", NULL, "*MaxReservedBytes=%:*" },
        { "reserved-fraction", "[Limits]\nMaxReservedBytes=12.5%\n", NULL, "*MaxReservedBytes=12.5%*" },
        { "dropin-bad", "[Daemon]\nMaxReservations=5\n", "# local\n[Allocation]\nMaxAttempts=x\n",
          "*hugepaged.conf.d/50-test.conf:3: MaxAttempts=x*" },
};

static void test_bad(Fixture *f, gconstpointer data) {
        const BadCase *c = data;

        if (g_test_subprocess()) {
                write_file(f->path, c->content);
                if (c->dropin)
                        write_dropin(f, "50-test.conf", c->dropin);
                g_assert_cmpint(config_load(&f->config, f->path, true), ==, -EINVAL);
                return;
        }
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        g_test_trap_assert_stderr(c->stderr_pattern);
        if (c->stderr_unmatched)
                g_test_trap_assert_stderr_unmatched(c->stderr_unmatched);
}

/* A bad drop-in fails the load even when an earlier drop-in was fine, and later ones are not read. */
static void test_bad_dropin_stops(Fixture *f, gconstpointer data) {
        if (g_test_subprocess()) {
                write_dropin(f, "10-good.conf", "[Daemon]\nMaxReservations=7\n");
                write_dropin(f, "20-bad.conf", "[Daemon]\nMaxReservations=seven\n");
                write_dropin(f, "30-also-bad.conf", "[Daemon]\nLogLevel=loud\n");
                g_assert_cmpint(config_load(&f->config, f->path, false), ==, -EINVAL);
                return;
        }
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        g_test_trap_assert_stderr("*20-bad.conf:2: MaxReservations=seven*");
        g_test_trap_assert_stderr_unmatched("*30-also-bad.conf*");
}

/* [Limits]: counts, sizes, percentages and infinity; a later file overrides the kind of limit too. */
static void test_limits(Fixture *f, gconstpointer data) {
        write_file(f->path, "[Limits]\nMaxReservationsPerUser=3\nMaxBytesPerUser=16G\nMaxReservedBytes=50%\n");
        g_assert_cmpint(config_load(&f->config, f->path, true), ==, 0);
        g_assert_cmpuint(f->config.max_reservations_per_user, ==, 3);
        g_assert_cmpuint(f->config.max_bytes_per_user, ==, 16 * G);
        g_assert_cmpuint(config_max_reserved_bytes(&f->config, 64 * G), ==, 32 * G);
        /* floor(mem * percent / 100), exactly, also where mem * percent would overflow. */
        g_assert_cmpuint(config_max_reserved_bytes(&f->config, 199), ==, 99);
        g_assert_cmpuint(config_max_reserved_bytes(&f->config, UINT64_MAX), ==, UINT64_MAX / 2);
        /* Unknown RAM: a percentage of it grants nothing. */
        g_assert_cmpuint(config_max_reserved_bytes(&f->config, 0), ==, 0);

        write_dropin(f, "50-abs.conf", "[limits]\nmaxreservedbytes=2048kB\nMaxReservationsPerUser=0\n");
        write_dropin(f, "60-inf.conf", "[Limits]\nMaxBytesPerUser=infinity\n");
        g_assert_cmpint(config_load(&f->config, f->path, true), ==, 0);
        g_assert_cmpuint(f->config.max_reservations_per_user, ==, 0);
        g_assert_cmpuint(f->config.max_bytes_per_user, ==, CONFIG_UNLIMITED);
        g_assert_cmpuint(config_max_reserved_bytes(&f->config, 64 * G), ==, 2 * M);

        write_dropin(f, "70-inf.conf", "[Limits]\nMaxReservedBytes=Infinity\nMaxReservationsPerUser=infinity\n");
        g_assert_cmpint(config_load(&f->config, f->path, true), ==, 0);
        g_assert_cmpuint(config_max_reserved_bytes(&f->config, 64 * G), ==, CONFIG_UNLIMITED);
        g_assert_cmpuint(f->config.max_reservations_per_user, ==, UINT_MAX);
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        /* The tests match on the plain "hugepaged[error]: ..." format. */
        g_unsetenv("JOURNAL_STREAM");

        ADD("/config/every-key", test_every_key);
        ADD("/config/case-and-limits", test_case_and_limits);
        ADD("/config/missing", test_missing);
        ADD("/config/missing-must-exist", test_missing_must_exist);
        ADD("/config/empty", test_empty);
        ADD("/config/dropins", test_dropins);
        ADD("/config/dropins-without-main", test_dropins_without_main);
        ADD("/config/dropin-dir-is-a-file", test_dropin_dir_is_a_file);
        ADD("/config/pool-limits", test_pool_limits);
        ADD("/config/pool-limits-order", test_pool_limits_order);
        ADD("/config/pool-adopt", test_pool_adopt);
        ADD("/config/bad-dropin-stops", test_bad_dropin_stops);
        ADD("/config/limits", test_limits);
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                g_autofree char *path = g_strconcat("/config/bad/", bad_cases[i].name, NULL);
                g_test_add(path, Fixture, &bad_cases[i], fixture_setup, test_bad, fixture_teardown);
        }

        return g_test_run();
}
