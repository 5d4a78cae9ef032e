/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl metrics against the real daemon over the FUSE fake kernel: the exposition parsed by Debian's
 * prometheus_client (tests/metrics-check.py), its samples compared with what the bus says, hugepaged_up 0 from a
 * daemon that is gone, the atomic --output=, and the real prometheus-node-exporter serving the file. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hp-client.h"
#include "hp-ctl.h"
#include "hp-fixture.h"

#define PS2M (2ULL * 1024 * 1024)
#define PS1G (1024ULL * 1024 * 1024)
#define CONFIG "[Allocation]\nMaxAttempts=2\nTimeoutSec=10\n"

typedef HpFixture Fixture;

/* 2 MiB pages: a Floor of 3 per node, and pages stay as spare pages after a release; two 1 GiB pages per node
 * from boot, adopted as spare. */
static const HpTestParams params_spare = {
        .config = CONFIG "[Pool 2M]\nShrinkDelaySec=infinity\nMinPages=3\n[Pool 1G]\nAdopt=spare\n",
        .fk_control = (const char *const[]) { "set_nr 0 1048576 2", "set_nr 1 1048576 2", NULL },
        .daemon_end = HP_DAEMON_END_IF_RUNNING,
};

static char *check_script(void) {
        return g_build_filename(g_getenv("HUGEPAGED_SOURCE_ROOT"), "tests", "metrics-check.py", NULL);
}

/* metrics-check.py MODE ARG: its output, the samples one a line; NULL when it exited 77 (nothing to check). */
static char *metrics_check(const char *mode, const char *arg) {
        g_autofree char *script = check_script();
        const char *argv[] = { HP_TEST_PYTHON, script, mode, arg, NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *err = NULL;
        char *out = NULL;
        int status;

        g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error);
        g_assert_no_error(error);
        g_test_message("metrics-check.py %s %s -> %d\n%s%s", mode, arg, status, out, err);
        g_assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77) {
                g_free(out);
                return NULL;
        }
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        return out;
}

/* `hugepagectl metrics --output=path`; returns the exit status. */
static int metrics_to(Fixture *f, const char *path) {
        g_autofree char *opt = g_strdup_printf("--output=%s", path);
        g_autofree char *out = NULL, *err = NULL;
        int r = hp_ctl_run(test_bus_address(f->bus), NULL, &out, &err, (const char *const[]) { "metrics", opt, NULL });

        g_assert_cmpstr(out, ==, "");
        return r;
}

static void assert_sample(const char *samples, const char *line) {
        g_autofree char *needle = g_strdup_printf("\n%s\n", line);
        g_autofree char *hay = g_strdup_printf("\n%s", samples);

        if (!strstr(hay, needle))
                g_error("no sample '%s' in:\n%s", line, samples);
}

/* The pool samples of every ListPools row, with the values ListPools gives. */
static void assert_pools_match(Fixture *f, const char *samples) {
        g_autoptr(GVariant) reply = hp_call_ok(f->c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "ListPools", NULL,
                                               "(a(tittttt))");
        g_autoptr(GVariantIter) it = NULL;
        guint64 ps, total, free_, surplus, reserved, floor_;
        gint32 node;
        guint n = 0;

        g_variant_get(reply, "(a(tittttt))", &it);
        while (g_variant_iter_next(it, "(tittttt)", &ps, &node, &total, &free_, &surplus, &reserved, &floor_)) {
                g_autofree char *labels = node < 0 ? g_strdup_printf("{node=\"all\",page_size=\"%" G_GUINT64_FORMAT "\"}", ps) :
                                                     g_strdup_printf("{node=\"%d\",page_size=\"%" G_GUINT64_FORMAT "\"}", node, ps);
                const struct { const char *name; guint64 v; } m[] = {
                        { "hugepaged_pool_pages", total }, { "hugepaged_pool_free_pages", free_ },
                        { "hugepaged_pool_surplus_pages", surplus }, { "hugepaged_pool_reserved_pages", reserved },
                        { "hugepaged_pool_floor_pages", floor_ },
                };
                for (size_t i = 0; i < G_N_ELEMENTS(m); i++) {
                        g_autofree char *line = g_strdup_printf("%s%s %" G_GUINT64_FORMAT, m[i].name, labels, m[i].v);
                        assert_sample(samples, line);
                }
                n++;
        }
        /* 2 MiB and 1 GiB, each over all nodes and on nodes 0 and 1. */
        g_assert_cmpuint(n, ==, 6);
}

static void test_exposition(Fixture *f, gconstpointer data) {
        g_autofree char *file = g_build_filename(f->dir, "hugepaged.prom", NULL);
        g_autofree char *samples = NULL, *line = NULL;

        /* A name with the characters a name may have beyond letters, on node 1 only. */
        g_free(hp_reserve_ok(f->c, "vm:1@a+b.c_d-e", PS2M, 64 * 1024 * 1024,
                             g_variant_new_parsed("{'nodes': <@au [1]>}")));
        g_free(hp_reserve_ok(f->c, "warm", PS2M, 16 * 1024 * 1024, NULL));
        hp_release_ok(f->c, "warm");
        g_free(hp_reserve_ok(f->c, "big", PS1G, PS1G, g_variant_new_parsed("{'nodes': <@au [0]>}")));

        g_assert_cmpint(metrics_to(f, file), ==, 0);
        samples = metrics_check("parse", file);
        g_assert_nonnull(samples);

        assert_sample(samples, "hugepaged_up{} 1");
        assert_sample(samples, "hugepaged_reservation_pages{lifetime=\"explicit\",name=\"vm:1@a+b.c_d-e\",node=\"1\","
                               "page_size=\"2097152\",state=\"active\"} 32");
        assert_sample(samples, "hugepaged_reservation_pages{lifetime=\"explicit\",name=\"big\",node=\"0\","
                               "page_size=\"1073741824\",state=\"active\"} 1");
        g_assert_null(strstr(samples, "name=\"warm\""));
        assert_pools_match(f, samples);
        /* The 8 pages "warm" left stay spare (ShrinkDelaySec=infinity); of the 1 GiB pages found at boot, 2 per
         * node were adopted as spare and "big" took one on node 0. */
        assert_sample(samples, "hugepaged_pool_spare_pages{node=\"all\",page_size=\"2097152\"} 8");
        assert_sample(samples, "hugepaged_pool_adopted_spare_pages{node=\"0\",page_size=\"1073741824\"} 2");
        assert_sample(samples, "hugepaged_pool_spare_pages{node=\"0\",page_size=\"1073741824\"} 1");
        assert_sample(samples, "hugepaged_pool_spare_pages{node=\"1\",page_size=\"1073741824\"} 2");

        /* The counters are the Manager's statistics: 40 pages grown on first writes, at least. */
        guint64 first = hp_prop_u64(f->c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "StatsPagesFirstWrite");
        g_assert_cmpuint(first, >=, 40);
        line = g_strdup_printf("hugepaged_allocation_first_write_pages_total{} %" G_GUINT64_FORMAT, first);
        assert_sample(samples, line);
        g_clear_pointer(&line, g_free);
        line = g_strdup_printf("hugepaged_allocation_retries_total{} %" G_GUINT64_FORMAT,
                               hp_prop_u64(f->c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "StatsAllocationRetries"));
        assert_sample(samples, line);
        g_clear_pointer(&line, g_free);
        line = g_strdup_printf("hugepaged_reserved_bytes{} %llu", 64ULL * 1024 * 1024 + PS1G);
        assert_sample(samples, line);

        /* Without --output=, the same exposition on stdout. */
        g_autofree char *out = NULL;
        g_assert_cmpint(hp_ctl_run(test_bus_address(f->bus), NULL, &out, NULL, (const char *const[]) { "metrics", NULL }),
                        ==, 0);
        g_assert_true(g_str_has_prefix(out, "# HELP hugepaged_up "));
        g_assert_nonnull(strstr(out, "\nhugepaged_reservation_pages{page_size=\"2097152\",name=\"vm:1@a+b.c_d-e\""));
}

/* A daemon that is gone: hugepaged_up 0, exit status 5, and the file written all the same, atomically. */
static void test_down(Fixture *f, gconstpointer data) {
        g_autofree char *file = g_build_filename(f->dir, "hugepaged.prom", NULL);
        g_autofree char *samples = NULL, *text = NULL;
        g_autoptr(GDir) dir = NULL;
        const char *e;
        guint n = 0;

        g_assert_cmpint(metrics_to(f, file), ==, 0);
        hp_fixture_daemon_end(f, SIGTERM);
        g_autofree char *err0 = NULL;
        g_autofree char *opt0 = g_strdup_printf("--output=%s", file);
        g_assert_cmpint(hp_ctl_run(test_bus_address(f->bus), NULL, NULL, &err0,
                                   (const char *const[]) { "metrics", opt0, NULL }), ==, 5);
        g_assert_cmpstr(err0, ==, "hugepagectl: hugepaged is not running (org.hugepaged1 is not on the system bus)\n");
        samples = metrics_check("parse", file);
        g_assert_cmpstr(samples, ==, "hugepaged_up{} 0\n");
        g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
        g_assert_true(g_str_has_prefix(text, "# HELP hugepaged_up "));
        g_assert_nonnull(strstr(text, "\n# TYPE hugepaged_up gauge\n"));

        /* No bus at all gives the same. */
        g_autofree char *out = NULL, *err = NULL;
        g_assert_cmpint(hp_ctl_run("unix:path=/nonexistent/bus", NULL, &out, &err,
                                   (const char *const[]) { "metrics", NULL }), ==, 5);
        g_assert_true(g_str_has_suffix(out, "\nhugepaged_up 0\n"));
        g_assert_nonnull(strstr(err, "cannot connect to the system bus"));

        /* The temporary files are renamed or removed: only the .prom file and what the fixture keeps. */
        dir = g_dir_open(f->dir, 0, NULL);
        g_assert_nonnull(dir);
        while ((e = g_dir_read_name(dir)))
                if (g_str_has_prefix(e, "hugepaged.prom"))
                        n++;
        g_assert_cmpuint(n, ==, 1);

        /* A directory that is not there: an error, exit 1, and nothing else written. */
        g_autofree char *bad = g_build_filename(f->dir, "no-such-dir", "x.prom", NULL);
        g_clear_pointer(&err, g_free);
        g_autofree char *opt = g_strdup_printf("--output=%s", bad);
        g_assert_cmpint(hp_ctl_run(test_bus_address(f->bus), NULL, NULL, &err,
                                   (const char *const[]) { "metrics", opt, NULL }), ==, 1);
        g_assert_nonnull(strstr(err, "cannot write"));
}

/* The real prometheus-node-exporter serves the file's samples from its textfile directory. */
static void test_node_exporter(Fixture *f, gconstpointer data) {
        g_autofree char *textdir = g_build_filename(f->dir, "textfile", NULL);
        g_autofree char *file = g_build_filename(textdir, "hugepaged.prom", NULL);
        g_autofree char *scraped = NULL;

        g_assert_cmpint(g_mkdir(textdir, 0755), ==, 0);
        g_free(hp_reserve_ok(f->c, "web+1", PS2M, 64 * 1024 * 1024, g_variant_new_parsed("{'nodes': <@au [0]>}")));
        g_assert_cmpint(metrics_to(f, file), ==, 0);
        scraped = metrics_check("scrape", textdir);
        if (!scraped) {
                g_test_skip("prometheus-node-exporter is not installed (tools/install-deps --test)");
                return;
        }
        assert_sample(scraped, "node_textfile_scrape_error{} 0");
        assert_sample(scraped, "hugepaged_up{} 1");
        assert_sample(scraped, "hugepaged_reservation_pages{lifetime=\"explicit\",name=\"web+1\",node=\"0\","
                               "page_size=\"2097152\",state=\"active\"} 32");
        assert_sample(scraped, "hugepaged_pool_reserved_pages{node=\"0\",page_size=\"2097152\"} 32");
}

int main(int argc, char *argv[]) {
        hp_test_init(&argc, &argv);
        g_test_add("/metrics/exposition", Fixture, &params_spare, hp_fixture_setup, test_exposition,
                   hp_fixture_teardown);
        g_test_add("/metrics/down", Fixture, &params_spare, hp_fixture_setup, test_down, hp_fixture_teardown);
        g_test_add("/metrics/node-exporter", Fixture, &params_spare, hp_fixture_setup, test_node_exporter,
                   hp_fixture_teardown);
        return g_test_run();
}
