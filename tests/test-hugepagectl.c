/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl as an operator runs it: the built binary against the real daemon on a private bus, over the FUSE
 * model of the kernel. Checks every verb, the --json output, the size formats, node placement, error lines and
 * exit statuses, monitor, --lifetime=caller and the bash completion. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "hp-client.h"
#include "hp-ctl.h"
#include "hp-fixture.h"

#define MB2 2048
#define GB1 1048576
#define PS2M (2ULL * 1024 * 1024)
#define PS1G (1024ULL * 1024 * 1024)

typedef HpFixture Fixture;

#define CONFIG "[Allocation]\nMaxAttempts=2\nTimeoutSec=10\n"
/* Two 1 GiB pages on each node at start, as a kernel command line sets them aside. */
#define BOOT_1G (const char *const[]) { "set_nr 0 1048576 2", "set_nr 1 1048576 2", NULL }

static const HpTestParams params_default = { .config = CONFIG, .daemon_end = HP_DAEMON_END_CLEAN };
static const HpTestParams params_limit = {
        .config = CONFIG "[Pool 2M]\nMaxPages=100\n",
        .daemon_end = HP_DAEMON_END_CLEAN,
};
static const HpTestParams params_boot_floor = {
        .config = CONFIG,
        .fk_control = BOOT_1G,
        .daemon_end = HP_DAEMON_END_CLEAN,
};
static const HpTestParams params_boot_spare = {
        .config = CONFIG "[Pool 1G]\nAdopt=spare\n",
        .fk_control = BOOT_1G,
        .daemon_end = HP_DAEMON_END_CLEAN,
};

/* The /proc/mounts hugepagectl reads. */
static char *mounts_path(Fixture *f) {
        return g_build_filename(f->dir, "mounts", NULL);
}

/* The environment of hugepagectl: the bus, and the fixture's mount table. */
static char **ctl_env(Fixture *f, const char *bus_address) {
        g_autofree char *mounts = mounts_path(f);
        g_autofree char *kv = g_strdup_printf("HUGEPAGECTL_PROC_MOUNTS=%s", mounts);

        return hp_ctl_env(bus_address, (const char *const[]) { kv, NULL });
}

/* Runs hugepagectl with args (NULL-terminated) against the given bus; returns its exit status. */
static int ctl_run_on(Fixture *f, const char *bus_address, char **ret_out, char **ret_err, const char *const *args) {
        g_autofree char *mounts = mounts_path(f);
        g_autofree char *kv = g_strdup_printf("HUGEPAGECTL_PROC_MOUNTS=%s", mounts);

        return hp_ctl_run(bus_address, (const char *const[]) { kv, NULL }, ret_out, ret_err, args);
}

#define CTL(f, out, err, ...) ctl_run_on((f), test_bus_address((f)->bus), (out), (err), (const char *const[]) { __VA_ARGS__, NULL })

/* Runs and asserts exit 0 and an empty stderr; returns stdout. */
static char *ctl_ok_v(Fixture *f, const char *const *args) {
        g_autofree char *err = NULL;
        char *out = NULL;
        g_assert_cmpint(ctl_run_on(f, test_bus_address(f->bus), &out, &err, args), ==, 0);
        g_assert_cmpstr(err, ==, "");
        return out;
}
#define CTL_OK(f, ...) ctl_ok_v((f), (const char *const[]) { __VA_ARGS__, NULL })

static JsonNode *parse_json(const char *text) {
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;

        json_parser_load_from_data(parser, text, -1, &error);
        g_assert_no_error(error);
        g_assert_nonnull(json_parser_get_root(parser));
        return json_node_copy(json_parser_get_root(parser));
}

static guint64 fk_nr(Fixture *f, int node, guint64 kb) {
        return fake_kernel_get(f->fk, node, kb, "nr");
}

static void setup(Fixture *f, gconstpointer data) {
        g_autofree char *mounts = NULL;

        hp_fixture_setup(f, data);
        /* 2 MiB pages are mounted, 1 GiB pages are not. */
        mounts = mounts_path(f);
        g_assert_true(g_file_set_contents(mounts,
                                          "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
                                          "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n"
                                          "tmpfs /run tmpfs rw,nosuid,nodev,size=1024k 0 0\n",
                                          -1, NULL));
}

/* The kernel can give no more 1 GiB pages than the two per node it set aside at boot. */
static void setup_boot_pages(Fixture *f, gconstpointer data) {
        setup(f, data);
        fake_kernel_control(f->fk, "capacity 0 %d 2", GB1);
        fake_kernel_control(f->fk, "capacity 1 %d 2", GB1);
}

static void assert_one_line(const char *s) {
        g_assert_true(g_str_has_suffix(s, "\n"));
        g_assert_true(strchr(s, '\n') == s + strlen(s) - 1);
}

static gboolean reservation_exists(Fixture *f, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = test_call(f->c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "GetReservation",
                                              g_variant_new("(s)", name), G_VARIANT_TYPE("(o)"), &error);
        return reply != NULL;
}

/* ---- help, version, usage errors ---- */

static void test_help(Fixture *f, gconstpointer data) {
        g_autofree char *out = CTL_OK(f, "--help");
        g_autofree char *version = CTL_OK(f, "--version");

        g_assert_true(g_str_has_prefix(out, "Usage: hugepagectl [OPTIONS...] COMMAND ...\n"));
        for (const char *const *s = (const char *const[]) { "status", "pools", "list", "show NAME", "reserve NAME SIZE",
                                                            "release NAME", "monitor", "--json", "--page-size=",
                                                            "--node=", "--node-size=", "--lifetime=", "--pid=",
                                                            "Exit status:", "  5  hugepaged is not reachable", NULL };
             *s; s++)
                g_assert_nonnull(strstr(out, *s));
        g_assert_true(g_str_has_prefix(version, "hugepagectl "));
}

static void assert_usage_error(Fixture *f, const char *expected_err, const char *const *args) {
        g_autofree char *out = NULL, *err = NULL;

        g_assert_cmpint(ctl_run_on(f, test_bus_address(f->bus), &out, &err, args), ==, 2);
        g_assert_cmpstr(out, ==, "");
        /* One line, naming the problem. */
        g_assert_nonnull(strstr(err, expected_err));
        g_assert_true(g_str_has_prefix(err, "hugepagectl: "));
        assert_one_line(err);
}
#define USAGE_ERROR(f, expected, ...) assert_usage_error((f), (expected), (const char *const[]) { __VA_ARGS__, NULL })

static void test_usage_errors(Fixture *f, gconstpointer data) {
        USAGE_ERROR(f, "unknown command 'frobnicate'", "frobnicate");
        USAGE_ERROR(f, "unknown option '--frobnicate'", "--frobnicate", "status");
        USAGE_ERROR(f, "reserve: missing argument; usage: hugepagectl reserve NAME SIZE", "reserve");
        USAGE_ERROR(f, "reserve: missing SIZE", "reserve", "vm1");
        USAGE_ERROR(f, "show: missing argument", "show");
        USAGE_ERROR(f, "release: missing argument", "release");
        USAGE_ERROR(f, "status: too many arguments", "status", "extra");
        USAGE_ERROR(f, "release: too many arguments", "release", "a", "b");
        USAGE_ERROR(f, "cannot reserve vm1: invalid size '4X'", "reserve", "vm1", "4X");
        USAGE_ERROR(f, "cannot reserve vm1: invalid size '0'", "reserve", "vm1", "0");
        USAGE_ERROR(f, "cannot reserve vm1: invalid size '-1G'", "reserve", "vm1", "--", "-1G");
        USAGE_ERROR(f, "invalid --page-size=huge", "reserve", "vm1", "1G", "--page-size=huge");
        USAGE_ERROR(f, "invalid --node=x", "reserve", "vm1", "1G", "--node=x");
        USAGE_ERROR(f, "invalid --node-size=0-1G", "reserve", "vm1", "--node-size=0-1G");
        USAGE_ERROR(f, "--node-size= names node 0 twice", "reserve", "vm1", "--node-size=0:1G,0:2G");
        USAGE_ERROR(f, "give either --node= or --node-size=", "reserve", "vm1", "--node=0", "--node-size=1:1G");
        USAGE_ERROR(f, "is not the sum of --node-size= (3 GiB)", "reserve", "vm1", "4G", "--node-size=0:1G,1:2G");
        USAGE_ERROR(f, "invalid --lifetime=forever", "reserve", "vm1", "1G", "--lifetime=forever");
        USAGE_ERROR(f, "--lifetime=pid needs --pid=PID", "reserve", "vm1", "1G", "--lifetime=pid");
        USAGE_ERROR(f, "--pid= goes with --lifetime=pid", "reserve", "vm1", "1G", "--lifetime=caller", "--pid=1");
        USAGE_ERROR(f, "invalid --pid=0", "reserve", "vm1", "1G", "--pid=0");
        USAGE_ERROR(f, "option '--page-size' needs an argument", "reserve", "vm1", "1G", "--page-size");
        USAGE_ERROR(f, "list: --page-size=, --node=, --node-size=, --lifetime=, --pid= and --hold go with 'reserve' only",
                    "list", "--page-size=2M");
        USAGE_ERROR(f, "invalid reservation name 'a/b'", "show", "a/b");
        USAGE_ERROR(f, "invalid reservation name 'vm 1'", "reserve", "vm 1", "1G");
        /* The daemon rejects what only it can judge, with the same status. */
        USAGE_ERROR(f, "cannot reserve vm1: ", "reserve", "vm1", "1G", "--page-size=4M");
        USAGE_ERROR(f, "cannot reserve vm1: ", "reserve", "vm1", "1G", "--node=7");
        g_assert_false(reservation_exists(f, "vm1"));
}

/* ---- sizes ---- */

static void test_sizes(Fixture *f, gconstpointer data) {
        static const struct {
                const char *size, *page_size;
                guint64 kb, pages;
        } cases[] = {
                { "512M", NULL, MB2, 256 },
                { "4G", NULL, MB2, 2048 },
                { "4GiB", NULL, MB2, 2048 },
                { "1073741824", NULL, MB2, 512 },
                { "3145728", NULL, MB2, 2 },          /* 3 MiB rounds up to two pages */
                { "2048kB", "2M", MB2, 1 },
                { "2G", "1G", GB1, 2 },
                { "2GiB", "1073741824", GB1, 2 },
                { "4G", "1GiB", GB1, 4 },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *ps_arg = cases[i].page_size ? g_strdup_printf("--page-size=%s", cases[i].page_size) :
                                                               g_strdup("--json");
                g_autofree char *out = CTL_OK(f, "reserve", "sz", cases[i].size, ps_arg, "--json");
                g_autoptr(JsonNode) root = parse_json(out);
                JsonObject *o = json_node_get_object(root);

                g_test_message("%s of %s pages", cases[i].size, cases[i].page_size ?: "default");
                g_assert_cmpuint(fk_nr(f, 0, cases[i].kb) + fk_nr(f, 1, cases[i].kb), ==, cases[i].pages);
                g_assert_cmpuint(json_object_get_int_member(o, "pages"), ==, cases[i].pages);
                g_assert_cmpuint(json_object_get_int_member(o, "page_size"), ==, cases[i].kb * 1024);
                g_assert_cmpuint(json_object_get_int_member(o, "bytes"), ==, cases[i].pages * cases[i].kb * 1024);
                g_free(CTL_OK(f, "release", "sz"));
                /* Released 1 GiB pages stay as spare pages by default (the cases grow: 2, 2, 4). */
                g_assert_cmpuint(fk_nr(f, 0, cases[i].kb) + fk_nr(f, 1, cases[i].kb), ==,
                                 cases[i].kb == GB1 ? cases[i].pages : 0);
        }
}

/* ---- nodes ---- */

static void test_nodes(Fixture *f, gconstpointer data) {
        g_autofree char *out1 = CTL_OK(f, "reserve", "on1", "1G", "--node=1");
        g_assert_cmpuint(fk_nr(f, 0, MB2), ==, 0);
        g_assert_cmpuint(fk_nr(f, 1, MB2), ==, 512);
        g_assert_cmpstr(out1, ==, "Reserved on1: 1 GiB as 512 pages of 2 MiB (node 1: 512 (1 GiB)), lifetime explicit.\n");

        g_autofree char *out2 = CTL_OK(f, "reserve", "split", "--node-size=0:512M", "--node-size=1:1G", "--json");
        g_assert_cmpuint(fk_nr(f, 0, MB2), ==, 256);
        g_assert_cmpuint(fk_nr(f, 1, MB2), ==, 512 + 512);
        g_autoptr(JsonNode) root = parse_json(out2);
        JsonArray *np = json_object_get_array_member(json_node_get_object(root), "node_pages");
        g_assert_cmpuint(json_array_get_length(np), ==, 2);
        g_assert_cmpint(json_object_get_int_member(json_array_get_object_element(np, 0), "node"), ==, 0);
        g_assert_cmpint(json_object_get_int_member(json_array_get_object_element(np, 0), "pages"), ==, 256);
        g_assert_cmpint(json_object_get_int_member(json_array_get_object_element(np, 1), "node"), ==, 1);
        g_assert_cmpint(json_object_get_int_member(json_array_get_object_element(np, 1), "pages"), ==, 512);

        /* Commas, and SIZE given as the sum. */
        g_free(CTL_OK(f, "reserve", "both", "6M", "--node-size=0:2M,1:4M", "--page-size=2M"));
        g_assert_cmpuint(fk_nr(f, 0, MB2), ==, 256 + 1);
        g_assert_cmpuint(fk_nr(f, 1, MB2), ==, 1024 + 2);

        /* 1 GiB pages from node 0 only. */
        g_free(CTL_OK(f, "reserve", "big", "2G", "--page-size=1G", "--node=0"));
        g_assert_cmpuint(fk_nr(f, 0, GB1), ==, 2);
        g_assert_cmpuint(fk_nr(f, 1, GB1), ==, 0);

        for (const char *const *n = (const char *const[]) { "on1", "split", "both", "big", NULL }; *n; n++)
                g_free(CTL_OK(f, "release", *n));
        g_assert_cmpuint(fk_nr(f, 0, MB2) + fk_nr(f, 1, MB2) + fk_nr(f, 1, GB1), ==, 0);
        g_assert_cmpuint(fk_nr(f, 0, GB1), ==, 2); /* spare: 1 GiB pages are kept by default */
}

/* ---- list, show, pools, status, release: text and JSON ---- */

static void test_verbs(Fixture *f, gconstpointer data) {
        g_autofree char *empty = CTL_OK(f, "list");
        g_assert_cmpstr(empty, ==, "No reservations.\n");
        g_autofree char *empty_json = CTL_OK(f, "list", "--json");
        g_assert_cmpstr(empty_json, ==, "[]\n");

        g_free(CTL_OK(f, "reserve", "vm1", "1G", "--node=1"));
        g_free(CTL_OK(f, "reserve", "vm-2", "1G", "--page-size=1G", "--node=0"));

        /* list */
        g_autofree char *list = CTL_OK(f, "list");
        g_assert_nonnull(strstr(list, "NAME"));
        g_assert_nonnull(strstr(list, "vm1"));
        g_assert_nonnull(strstr(list, "vm-2"));
        g_assert_nonnull(strstr(list, "2 reservations listed.\n"));
        g_autofree char *names = CTL_OK(f, "list", "--names");
        g_assert_true(g_str_equal(names, "vm1\nvm-2\n") || g_str_equal(names, "vm-2\nvm1\n"));

        g_autofree char *list_json = CTL_OK(f, "list", "--json");
        g_autoptr(JsonNode) lroot = parse_json(list_json);
        JsonArray *la = json_node_get_array(lroot);
        g_assert_cmpuint(json_array_get_length(la), ==, 2);
        for (guint i = 0; i < 2; i++) {
                JsonObject *o = json_array_get_object_element(la, i);
                gboolean one = g_str_equal(json_object_get_string_member(o, "name"), "vm1");
                g_assert_cmpint(json_object_get_int_member(o, "page_size"), ==, one ? PS2M : PS1G);
                g_assert_cmpint(json_object_get_int_member(o, "pages"), ==, one ? 512 : 1);
                g_assert_cmpint(json_object_get_int_member(o, "bytes"), ==, PS1G);
                g_assert_cmpint(json_object_get_int_member(o, "owner_uid"), ==, getuid());
                g_assert_cmpstr(json_object_get_string_member(o, "lifetime"), ==, "explicit");
                g_assert_cmpstr(json_object_get_string_member(o, "path"), ==,
                                one ? HP_BUS_RESERVATION_PREFIX "/vm1"
                                    : HP_BUS_RESERVATION_PREFIX "/vm_2d2");
        }

        /* show */
        g_autofree char *show = CTL_OK(f, "show", "vm1");
        g_assert_nonnull(strstr(show, "       Name: vm1\n"));
        g_assert_nonnull(strstr(show, "       Size: 1 GiB\n"));
        g_assert_nonnull(strstr(show, "      Pages: 512 of 2 MiB\n"));
        g_assert_nonnull(strstr(show, "      Nodes: node 1: 512 (1 GiB)\n"));
        g_assert_nonnull(strstr(show, "   Lifetime: explicit\n"));
        g_assert_nonnull(strstr(show, "       Path: /org/hugepaged1/reservation/vm1\n"));
        g_autofree char *show_json = CTL_OK(f, "show", "vm1", "--json");
        g_autoptr(JsonNode) sroot = parse_json(show_json);
        JsonObject *so = json_node_get_object(sroot);
        g_assert_cmpstr(json_object_get_string_member(so, "name"), ==, "vm1");
        g_assert_cmpint(json_object_get_int_member(so, "page_size"), ==, PS2M);
        g_assert_cmpint(json_object_get_int_member(so, "pages"), ==, 512);
        g_assert_cmpint(json_object_get_int_member(so, "bytes"), ==, PS1G);
        g_assert_true(json_object_get_null_member(so, "pid"));
        g_assert_cmpstr(json_object_get_string_member(so, "state"), ==, "active");
        g_assert_cmpint(json_object_get_int_member(so, "created_usec"), >, 0);
        JsonArray *np = json_object_get_array_member(so, "node_pages");
        g_assert_cmpuint(json_array_get_length(np), ==, 1);
        g_assert_cmpint(json_object_get_int_member(json_array_get_object_element(np, 0), "node"), ==, 1);
        g_assert_cmpint(json_object_get_int_member(json_array_get_object_element(np, 0), "pages"), ==, 512);

        /* pools */
        g_autofree char *pools = CTL_OK(f, "pools");
        g_assert_true(g_str_has_prefix(pools, "PAGE SIZE   NODE    TOTAL     FREE  SURPLUS RESERVED    FLOOR  ADOPTED\n"));
        g_assert_nonnull(strstr(pools, "\n2 MiB          1      512      512        0      512        0        0\n"));
        g_assert_nonnull(strstr(pools, "\n1 GiB        all        1        1        0        1        0        0\n"));
        g_autofree char *pools_json = CTL_OK(f, "pools", "--json");
        g_autoptr(JsonNode) proot = parse_json(pools_json);
        JsonArray *pa = json_node_get_array(proot);
        guint seen = 0;
        for (guint i = 0; i < json_array_get_length(pa); i++) {
                JsonObject *o = json_array_get_object_element(pa, i);
                gint64 ps = json_object_get_int_member(o, "page_size"), node = json_object_get_int_member(o, "node");
                guint64 expect = ps == (gint64) PS2M ? (node == 0 ? 0 : 512) : (node == 1 ? 0 : 1);

                g_assert_true(ps == (gint64) PS2M || ps == (gint64) PS1G);
                g_assert_true(node >= -1 && node <= 1);
                g_assert_cmpint(json_object_get_int_member(o, "total"), ==, expect);
                g_assert_cmpint(json_object_get_int_member(o, "free"), ==, expect);
                g_assert_cmpint(json_object_get_int_member(o, "surplus"), ==, 0);
                g_assert_cmpint(json_object_get_int_member(o, "reserved"), ==, expect);
                g_assert_cmpint(json_object_get_int_member(o, "floor"), ==, 0);
                g_assert_cmpint(json_object_get_int_member(o, "adopted_spare"), ==, 0);
                seen++;
        }
        g_assert_cmpuint(seen, ==, 6); /* two sizes, each: all nodes, node 0, node 1 */

        /* status */
        g_autofree char *status = CTL_OK(f, "status");
        g_assert_nonnull(strstr(status, " Page sizes: 2 MiB (default), 1 GiB\n"));
        g_assert_nonnull(strstr(status, "      Nodes: 0, 1\n"));
        g_assert_nonnull(strstr(status, "   Reserved: 2 GiB in 2 reservations\n"));
        g_assert_nonnull(strstr(status, "\n2 MiB pages, hugetlbfs mount: /dev/hugepages\n"));
        g_assert_nonnull(strstr(status, "\n1 GiB pages, hugetlbfs mount: none\n"
                                        "  Warning: no hugetlbfs mount serves 1 GiB pages"));
        g_assert_nonnull(strstr(status, "\n2 MiB          1      512      512        0      512        0        0\n"));
        g_assert_nonnull(strstr(status, "  vm1: 1 GiB of 2 MiB pages (512), explicit, uid"));
        g_assert_nonnull(strstr(status, "  vm-2: 1 GiB of 1 GiB pages (1), explicit, uid"));
        /* No verb means status. */
        g_autofree char *status2 = ctl_ok_v(f, (const char *const[]) { NULL });
        g_assert_true(g_str_has_prefix(status2, "    Version: "));

        g_autofree char *status_json = CTL_OK(f, "status", "--json");
        g_autoptr(JsonNode) troot = parse_json(status_json);
        JsonObject *to = json_node_get_object(troot);
        g_assert_cmpint(json_object_get_int_member(to, "default_page_size"), ==, PS2M);
        g_assert_cmpint(json_object_get_int_member(to, "reserved_bytes"), ==, 2 * PS1G);
        JsonArray *sizes = json_object_get_array_member(to, "page_sizes");
        g_assert_cmpuint(json_array_get_length(sizes), ==, 2);
        JsonArray *nodes = json_object_get_array_member(to, "nodes");
        g_assert_cmpuint(json_array_get_length(nodes), ==, 2);
        g_assert_cmpint(json_array_get_int_element(nodes, 0), ==, 0);
        g_assert_cmpint(json_array_get_int_element(nodes, 1), ==, 1);
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(to, "pools")), ==, 6);
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(to, "reservations")), ==, 2);
        JsonArray *mounts = json_object_get_array_member(to, "mounts");
        g_assert_cmpuint(json_array_get_length(mounts), ==, 2);
        for (guint i = 0; i < 2; i++) {
                JsonObject *m = json_array_get_object_element(mounts, i);
                JsonArray *mp = json_object_get_array_member(m, "mount_points");
                if (json_object_get_int_member(m, "page_size") == (gint64) PS2M) {
                        g_assert_cmpuint(json_array_get_length(mp), ==, 1);
                        g_assert_cmpstr(json_array_get_string_element(mp, 0), ==, "/dev/hugepages");
                } else
                        g_assert_cmpuint(json_array_get_length(mp), ==, 0);
        }

        /* release */
        g_autofree char *rel = CTL_OK(f, "release", "vm1");
        g_assert_cmpstr(rel, ==, "Released vm1.\n");
        g_autofree char *rel_json = CTL_OK(f, "release", "vm-2", "--json");
        g_assert_cmpstr(rel_json, ==, "{\"name\":\"vm-2\",\"released\":true}\n");
        g_assert_false(reservation_exists(f, "vm1"));
        g_assert_false(reservation_exists(f, "vm-2"));
        g_assert_cmpuint(fk_nr(f, 1, MB2), ==, 0);
        g_assert_cmpuint(fk_nr(f, 0, GB1), ==, 1); /* spare: 1 GiB pages are kept by default */
}

/* A mount without pagesize= serves the default size. */
static void test_status_default_mount(Fixture *f, gconstpointer data) {
        g_autofree char *mounts = mounts_path(f);

        g_assert_true(g_file_set_contents(mounts,
                                          "none /mnt/huge\\040pages hugetlbfs rw,relatime 0 0\n"
                                          "none /dev/hugepages1G hugetlbfs rw,relatime,pagesize=1024M 0 0\n",
                                          -1, NULL));
        g_autofree char *status = CTL_OK(f, "status");
        g_assert_nonnull(strstr(status, "\n2 MiB pages, hugetlbfs mount: /mnt/huge pages\n"));
        g_assert_nonnull(strstr(status, "\n1 GiB pages, hugetlbfs mount: /dev/hugepages1G\n"));
        g_assert_null(strstr(status, "Warning"));
}

/* Each "Mount one:" hint of status, run as printed but on a scratch directory: it must mount hugetlbfs with that
 * page size. Mounting needs root; the hint's form is checked without it. */
static void test_status_mount_hint(Fixture *f, gconstpointer data) {
        g_autofree char *mounts = mounts_path(f);
        g_autofree char *status = NULL;
        g_auto(GStrv) lines = NULL;
        const guint64 sizes[] = { PS2M, PS1G };
        guint n = 0;

        g_assert_true(g_file_set_contents(mounts, "proc /proc proc rw 0 0\n", -1, NULL));
        status = CTL_OK(f, "status");
        lines = g_strsplit(status, "\n", -1);
        for (char **l = lines; *l; l++) {
                const char *cmd = strstr(*l, "Mount one: ");
                g_auto(GStrv) argv = NULL;
                g_autoptr(GError) error = NULL;
                g_autofree char *dir = NULL, *expected = NULL;
                guint64 ps;
                struct statfs sfs;
                int st, r;

                if (!cmd)
                        continue;
                g_assert_cmpuint(n, <, G_N_ELEMENTS(sizes));
                ps = sizes[n++];
                g_assert_true(g_shell_parse_argv(cmd + strlen("Mount one: "), NULL, &argv, &error));
                g_assert_no_error(error);
                g_assert_cmpuint(g_strv_length(argv), ==, 7);
                g_assert_cmpstr(argv[0], ==, "mount");
                expected = g_strdup_printf("pagesize=%s", ps == PS2M ? "2M" : "1G");
                g_assert_cmpstr(argv[4], ==, expected);
                g_assert_cmpstr(argv[6], ==, ps == PS2M ? "/dev/hugepages" : "/dev/hugepages1G");
                if (geteuid() != 0) {
                        g_test_message("not root: the hint is not mounted");
                        continue;
                }
                g_autofree char *sysfs = g_strdup_printf("/sys/kernel/mm/hugepages/hugepages-%" G_GUINT64_FORMAT "kB",
                                                         ps / 1024);
                if (!g_file_test(sysfs, G_FILE_TEST_IS_DIR)) {
                        g_test_message("the kernel has no %s: not mounted", sysfs);
                        continue;
                }
                dir = g_build_filename(f->dir, expected, NULL);
                g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
                g_free(argv[6]);
                argv[6] = g_strdup(dir);
                g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &st, &error);
                g_assert_no_error(error);
                g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
                r = statfs(dir, &sfs);
                g_assert_cmpint(umount2(dir, 0), ==, 0);
                g_assert_cmpint(r, ==, 0);
                g_assert_cmphex((unsigned long) sfs.f_type, ==, 0x958458f6UL); /* HUGETLBFS_MAGIC */
                g_assert_cmpuint(sfs.f_bsize, ==, ps);
        }
        /* Neither size is mounted: a hint for each. */
        g_assert_cmpuint(n, ==, 2);
}

/* ---- daemon errors ---- */

static void test_not_found(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;

        g_assert_cmpint(CTL(f, &out, &err, "release", "nope"), ==, 3);
        g_assert_cmpstr(out, ==, "");
        g_assert_cmpstr(err, ==, "hugepagectl: cannot release nope: no reservation named nope\n");
        g_assert_cmpint(CTL(f, &out2, &err2, "show", "nope", "--json"), ==, 3);
        g_assert_cmpstr(out2, ==, "");
        g_assert_true(g_str_has_prefix(err2, "hugepagectl: cannot show nope: "));
}

static void test_exists(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL, *err = NULL;

        g_free(CTL_OK(f, "reserve", "vm1", "512M"));
        /* The same request again is fine. */
        g_free(CTL_OK(f, "reserve", "vm1", "512M"));
        g_assert_cmpint(CTL(f, &out, &err, "reserve", "vm1", "1G"), ==, 1);
        g_assert_true(g_str_has_prefix(err, "hugepagectl: cannot reserve vm1: "));
        g_assert_cmpuint(fk_nr(f, 0, MB2) + fk_nr(f, 1, MB2), ==, 256);
}

static void test_insufficient(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;
        g_auto(GStrv) lines = NULL, lines2 = NULL;

        fake_kernel_control(f->fk, "capacity 0 1048576 1");
        g_assert_cmpint(CTL(f, &out, &err, "reserve", "big", "4G", "--page-size=1G", "--node=0"), ==, 4);
        g_assert_cmpstr(out, ==, "");
        lines = g_strsplit(err, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 3); /* the error, the hint, "" */
        g_assert_true(g_str_has_prefix(lines[0], "hugepagectl: cannot reserve big: "));
        g_assert_nonnull(strstr(lines[0], "node 0"));
        g_assert_true(g_str_has_prefix(lines[1], "hugepagectl: hint: "));
        g_assert_nonnull(strstr(lines[1], "hugepagesz=1G hugepages=N"));
        g_assert_nonnull(strstr(lines[1], "hugetlb_cma="));
        g_assert_cmpuint(fk_nr(f, 0, GB1), ==, 0);
        g_assert_false(reservation_exists(f, "big"));

        /* 2 MiB pages get no boot-time advice. */
        fake_kernel_control(f->fk, "capacity 0 2048 10");
        g_assert_cmpint(CTL(f, &out2, &err2, "reserve", "small", "1G", "--node=0"), ==, 4);
        lines2 = g_strsplit(err2, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines2), ==, 2);
        g_assert_true(g_str_has_prefix(lines2[0], "hugepagectl: cannot reserve small: "));
}

/* Pages set aside at boot, default Adopt=floor: they are Floor, a reserve the kernel can't grow for fails, and the
 * message and the hint name Adopt=spare instead of sending the user to set pages aside at boot. */
static void test_boot_pages_floor(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL, *err = NULL, *pools = NULL;
        g_auto(GStrv) lines = NULL;

        pools = CTL_OK(f, "pools");
        g_assert_nonnull(strstr(pools, "\n1 GiB          1        2        2        0        0        2        0\n"));
        g_assert_cmpint(CTL(f, &out, &err, "reserve", "g1", "1G", "--page-size=1G", "--node=1"), ==, 4);
        lines = g_strsplit(err, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 3);
        g_assert_nonnull(strstr(lines[0], "the kernel gave 0 of 1 pages"));
        g_assert_nonnull(strstr(lines[0], "2 free Floor pages"));
        g_assert_nonnull(strstr(lines[0], "Adopt=spare in [Pool 1 GiB]"));
        g_assert_true(g_str_has_prefix(lines[1], "hugepagectl: hint: "));
        g_assert_nonnull(strstr(lines[1], "Adopt="));
        g_assert_null(strstr(err, "hugepagesz="));
        g_assert_cmpuint(fk_nr(f, 1, GB1), ==, 2);
}

/* The same host with Adopt=spare: every boot-time page can be reserved on its node, no kernel write, and status
 * shows them as adopted. */
static void test_boot_pages_spare(Fixture *f, gconstpointer data) {
        g_autofree char *pools = NULL, *pools2 = NULL, *status = NULL;

        pools = CTL_OK(f, "pools");
        g_assert_nonnull(strstr(pools, "\n1 GiB          0        2        2        0        0        0        2\n"));
        g_assert_nonnull(strstr(pools, "\n1 GiB        all        4        4        0        0        0        4\n"));
        g_free(CTL_OK(f, "reserve", "g0", "2G", "--page-size=1G", "--node=0"));
        g_free(CTL_OK(f, "reserve", "g1", "2G", "--page-size=1G", "--node=1"));
        g_assert_cmpuint(fk_nr(f, 0, GB1), ==, 2);
        g_assert_cmpuint(fk_nr(f, 1, GB1), ==, 2);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, GB1, "writes") + fake_kernel_get(f->fk, 1, GB1, "writes"), ==, 0);
        pools2 = CTL_OK(f, "pools");
        g_assert_nonnull(strstr(pools2, "\n1 GiB          1        2        2        0        2        0        2\n"));
        status = CTL_OK(f, "status");
        g_assert_nonnull(strstr(status, "ADOPTED"));
        g_free(CTL_OK(f, "release", "g1"));
        g_assert_cmpuint(fk_nr(f, 1, GB1), ==, 2);
        g_free(CTL_OK(f, "reserve", "g1", "2G", "--page-size=1G", "--node=1"));
}

static void test_limit(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL, *err = NULL;

        g_assert_cmpint(CTL(f, &out, &err, "reserve", "vm1", "1G"), ==, 4);
        g_assert_true(g_str_has_prefix(err, "hugepagectl: cannot reserve vm1: "));
        g_assert_null(strstr(err, "hint"));
}

static void test_no_daemon(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL, *sock = NULL, *addr = NULL;

        g_assert_cmpint(test_daemon_stop(f->d), ==, 0);
        g_clear_pointer(&f->d, test_daemon_free);

        g_assert_cmpint(CTL(f, &out, &err, "list"), ==, 5);
        g_assert_cmpstr(out, ==, "");
        g_assert_cmpstr(err, ==,
                        "hugepagectl: cannot list reservations: hugepaged is not running (org.hugepaged1 is not on the "
                        "system bus)\n");

        sock = g_build_filename(f->dir, "no-such-socket", NULL);
        addr = g_strdup_printf("unix:path=%s", sock);
        g_assert_cmpint(ctl_run_on(f, addr, &out2, &err2, (const char *const[]) { "status", NULL }), ==, 5);
        g_assert_true(g_str_has_prefix(err2, "hugepagectl: "));
        g_assert_nonnull(strstr(err2, "system bus"));
        assert_one_line(err2);
}

/* ---- lifetimes ---- */

static void test_lifetime_pid(Fixture *f, gconstpointer data) {
        g_autofree char *pid = g_strdup_printf("--pid=%d", (int) getpid());
        g_autofree char *out = NULL;
        if (!test_pidfd_supported()) {
                test_skip("pidfd_open() is not available here (valgrind 3.19 does not emulate it)");
                return;
        }
        out = CTL_OK(f, "reserve", "p1", "4M", pid, "--json");
        g_autoptr(JsonNode) root = parse_json(out);
        JsonObject *o = json_node_get_object(root);

        g_assert_cmpstr(json_object_get_string_member(o, "lifetime"), ==, "pid");
        g_assert_cmpint(json_object_get_int_member(o, "pid"), ==, getpid());
        g_autofree char *show = CTL_OK(f, "show", "p1");
        g_autofree char *expect = g_strdup_printf("   Lifetime: pid (pid %d)\n", (int) getpid());
        g_assert_nonnull(strstr(show, expect));
        g_free(CTL_OK(f, "release", "p1"));
}

typedef struct Child {
        GPid pid;
        int out, err;
        GString *out_buf, *err_buf;
} Child;

static void child_spawn(Fixture *f, Child *c, const char *const *args) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_auto(GStrv) env = ctl_env(f, test_bus_address(f->bus));
        g_autoptr(GError) error = NULL;

        g_ptr_array_add(argv, hp_ctl_bin());
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);
        g_spawn_async_with_pipes(NULL, (char **) argv->pdata, env, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &c->pid, NULL,
                                 &c->out, &c->err, &error);
        g_assert_no_error(error);
        c->out_buf = g_string_new(NULL);
        c->err_buf = g_string_new(NULL);
}

/* Reads the child's stdout or stderr until it contains needle; FALSE after timeout_ms. */
static gboolean child_wait_for(Child *c, gboolean on_stderr, const char *needle, int timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;
        GString *buf = on_stderr ? c->err_buf : c->out_buf;
        int fd = on_stderr ? c->err : c->out;

        while (!strstr(buf->str, needle)) {
                gint64 left = (deadline - g_get_monotonic_time()) / 1000;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char tmp[4096];
                ssize_t n;

                if (left <= 0) {
                        g_test_message("no '%s' in the child's %s: %s", needle, on_stderr ? "stderr" : "stdout",
                                       buf->str);
                        return FALSE;
                }
                if (poll(&p, 1, (int) left) <= 0)
                        continue;
                n = read(fd, tmp, sizeof tmp);
                if (n <= 0) {
                        g_test_message("the child closed its %s: %s", on_stderr ? "stderr" : "stdout", buf->str);
                        return FALSE;
                }
                g_string_append_len(buf, tmp, n);
        }
        return TRUE;
}

/* SIGTERM, reap; returns the exit status. */
static int child_stop(Child *c) {
        int status;

        g_assert_cmpint(kill(c->pid, SIGTERM), ==, 0);
        g_assert_cmpint(waitpid(c->pid, &status, 0), ==, c->pid);
        g_spawn_close_pid(c->pid);
        close(c->out);
        close(c->err);
        g_test_message("child stdout: %s\nchild stderr: %s", c->out_buf->str, c->err_buf->str);
        g_string_free(c->out_buf, TRUE);
        g_string_free(c->err_buf, TRUE);
        g_assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void test_lifetime_caller(Fixture *f, gconstpointer data) {
        Child c = {};

        child_spawn(f, &c, (const char *const[]) { "reserve", "held", "512M", "--lifetime=caller", NULL });
        g_assert_true(child_wait_for(&c, FALSE, "released when hugepagectl exits", 20000));
        g_assert_true(g_str_has_prefix(c.out_buf->str, "Reserved held: 512 MiB as 256 pages of 2 MiB ("));
        g_assert_true(reservation_exists(f, "held"));
        g_assert_cmpuint(fk_nr(f, 0, MB2) + fk_nr(f, 1, MB2), ==, 256);
        g_autofree char *show = CTL_OK(f, "show", "held", "--json");
        g_autoptr(JsonNode) root = parse_json(show);
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(root), "lifetime"), ==, "caller");

        g_assert_cmpint(child_stop(&c), ==, 0);
        /* The daemon notices the connection closing. */
        for (int i = 0; i < 100 && reservation_exists(f, "held"); i++)
                g_usleep(50000);
        g_assert_false(reservation_exists(f, "held"));
        /* The reservation goes at once; the shrink that follows is a job of its own, with nobody to reply to. */
        for (int i = 0; i < 100 && fk_nr(f, 0, MB2) + fk_nr(f, 1, MB2) > 0; i++)
                g_usleep(50000);
        g_assert_cmpuint(fk_nr(f, 0, MB2) + fk_nr(f, 1, MB2), ==, 0);
}

/* ---- monitor ---- */

static void reserve_by_other_client(Fixture *f, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = test_call(f->c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "Reserve",
                                              g_variant_new("(stta{sv})", name, (guint64) 0, (guint64) 4 * PS2M, NULL),
                                              G_VARIANT_TYPE("(o)"), &error);
        g_assert_no_error(error);
}

static void release_by_other_client(Fixture *f, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = test_call(f->c, HP_BUS_PATH, HP_BUS_IFACE_MANAGER, "Release",
                                              g_variant_new("(s)", name), G_VARIANT_TYPE("()"), &error);
        g_assert_no_error(error);
}

static void test_monitor(Fixture *f, gconstpointer data) {
        Child c = {};

        child_spawn(f, &c, (const char *const[]) { "monitor", NULL });
        g_assert_true(child_wait_for(&c, TRUE, "Monitoring org.hugepaged1; press Ctrl-C to stop.\n", 10000));
        reserve_by_other_client(f, "mon1");
        g_assert_true(child_wait_for(&c, FALSE, "reservation mon1 added: 8 MiB as 4 pages of 2 MiB (", 10000));
        g_assert_true(child_wait_for(&c, FALSE, "), lifetime explicit, uid ", 10000));
        g_assert_true(child_wait_for(&c, FALSE, "manager: ReservedBytes=8388608\n", 10000));
        g_assert_true(child_wait_for(&c, FALSE, "pool 2 MiB (all nodes): ", 10000));
        release_by_other_client(f, "mon1");
        g_assert_true(child_wait_for(&c, FALSE, "reservation mon1 removed\n", 10000));
        g_assert_true(child_wait_for(&c, FALSE, "manager: ReservedBytes=0\n", 10000));
        /* One line per event, each with a timestamp. */
        g_auto(GStrv) lines = g_strsplit(c.out_buf->str, "\n", -1);
        for (char **l = lines; *l && **l; l++)
                g_assert_true(g_regex_match_simple("^\\d\\d:\\d\\d:\\d\\d\\.\\d\\d\\d \\S", *l, 0, 0));
        g_assert_cmpint(child_stop(&c), ==, 0);
}

static void test_monitor_json(Fixture *f, gconstpointer data) {
        Child c = {};
        g_autofree char *all = NULL;
        const char *line, *end;

        child_spawn(f, &c, (const char *const[]) { "monitor", "--json", NULL });
        g_assert_true(child_wait_for(&c, TRUE, "Monitoring", 10000));
        reserve_by_other_client(f, "mon2");
        g_assert_true(child_wait_for(&c, FALSE, "\"event\":\"InterfacesAdded\"", 10000));
        g_assert_true(child_wait_for(&c, FALSE, "\"event\":\"PropertiesChanged\"", 10000));
        all = g_strdup(c.out_buf->str);
        g_assert_cmpint(child_stop(&c), ==, 0);

        /* Every line is a JSON object; check the reservation's. */
        line = all;
        g_assert_nonnull(line);
        for (gboolean found = FALSE; !found; line = end + 1) {
                g_autofree char *one = NULL;
                end = strchr(line, '\n');
                g_assert_nonnull(end);
                one = g_strndup(line, end - line);
                g_autoptr(JsonNode) root = parse_json(one);
                JsonObject *o = json_node_get_object(root);
                if (!g_str_equal(json_object_get_string_member(o, "event"), "InterfacesAdded"))
                        continue;
                g_assert_cmpstr(json_object_get_string_member(o, "path"), ==,
                                HP_BUS_RESERVATION_PREFIX "/mon2");
                JsonObject *ifaces = json_object_get_object_member(o, "interfaces");
                JsonObject *props = json_object_get_object_member(ifaces, HP_BUS_IFACE_RESERVATION);
                g_assert_cmpstr(json_object_get_string_member(props, "Name"), ==, "mon2");
                g_assert_cmpint(json_object_get_int_member(props, "Pages"), ==, 4);
                g_assert_cmpint(json_object_get_int_member(props, "PageSize"), ==, PS2M);
                found = TRUE;
        }
        release_by_other_client(f, "mon2");
}

/* ---- bash completion ---- */

static char *complete(Fixture *f, const char *words) {
        g_autofree char *file = g_build_filename(g_getenv("HUGEPAGED_SOURCE_ROOT"), "src", "hugepagectl",
                                                 "hugepagectl.bash-completion", NULL);
        g_autofree char *bin = hp_ctl_bin();
        g_autofree char *script = g_strdup_printf(
                "source '%s'; COMP_WORDS=('%s' %s); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _hugepagectl; "
                "printf '%%s\\n' \"${COMPREPLY[@]}\" | sort",
                file, bin, words);
        const char *argv[] = { "bash", "--norc", "-c", script, NULL };
        g_auto(GStrv) env = ctl_env(f, test_bus_address(f->bus));
        g_autoptr(GError) error = NULL;
        char *out = NULL;
        int status;

        g_spawn_sync(NULL, (char **) argv, env, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL, &status, &error);
        g_assert_no_error(error);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return out;
}

/* --hold: the kernel holds the pages, and the mount's path is printed for the consumer. */
static void test_hold(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL, *show = NULL, *json = NULL, *json2 = NULL, *line = NULL;
        g_autofree char *mount = g_build_filename(f->state_dir, "mounts", "vm1", NULL), *err = NULL, *o2 = NULL;
        g_autoptr(JsonNode) node = NULL, node2 = NULL;
        JsonObject *obj;

        out = CTL_OK(f, "reserve", "vm1", "8M", "--hold");
        line = g_strdup_printf("Held at %s\n", mount);
        g_assert_true(g_str_has_suffix(out, line));
        g_assert_true(g_file_test(mount, G_FILE_TEST_IS_DIR));
        show = CTL_OK(f, "show", "vm1");
        g_clear_pointer(&line, g_free);
        line = g_strdup_printf("       Held: yes, at %s\n", mount);
        g_assert_nonnull(strstr(show, line));
        json = CTL_OK(f, "show", "vm1", "--json");
        node = parse_json(json);
        obj = json_node_get_object(node);
        g_assert_true(json_object_get_boolean_member(obj, "held"));
        g_assert_cmpstr(json_object_get_string_member(obj, "mount_path"), ==, mount);

        /* Unheld: nothing printed about it, and JSON says so. */
        g_free(CTL_OK(f, "reserve", "vm2", "8M"));
        json2 = CTL_OK(f, "show", "vm2", "--json");
        node2 = parse_json(json2);
        obj = json_node_get_object(node2);
        g_assert_false(json_object_get_boolean_member(obj, "held"));
        g_assert_true(json_object_get_null_member(obj, "mount_path"));

        g_assert_cmpint(CTL(f, &o2, &err, "release", "vm1", "--hold"), ==, 2);
        g_free(CTL_OK(f, "release", "vm1"));
        g_assert_false(g_file_test(mount, G_FILE_TEST_EXISTS));
}

static void test_completion(Fixture *f, gconstpointer data) {
        g_autofree char *bash = g_find_program_in_path("bash");

        if (!bash) {
                test_skip("no bash");
                return;
        }
        g_free(CTL_OK(f, "reserve", "vm1", "2M"));
        g_free(CTL_OK(f, "reserve", "vm2", "2M"));

        g_autofree char *verbs = complete(f, "re");
        g_assert_cmpstr(verbs, ==, "release\nreserve\n");
        g_autofree char *names = complete(f, "show ''");
        g_assert_cmpstr(names, ==, "vm1\nvm2\n");
        g_autofree char *names2 = complete(f, "release vm2");
        g_assert_cmpstr(names2, ==, "vm2\n");
        g_autofree char *opts = complete(f, "reserve vm3 1G --li");
        g_assert_cmpstr(opts, ==, "--lifetime=\n");
        g_autofree char *lifetimes = complete(f, "reserve vm3 1G --lifetime = ''");
        g_autofree char *run = complete(f, "r");
        g_assert_cmpstr(run, ==, "release\nreserve\nrun\n");
        g_autofree char *run_opts = complete(f, "run vm4 1G --");
        g_assert_nonnull(strstr(run_opts, "--page-size=\n"));
        g_assert_nonnull(strstr(run_opts, "--node-size=\n"));
        g_assert_null(strstr(run_opts, "--lifetime="));
        /* After "--", COMMAND is completed as a command. */
        g_autofree char *run_cmd = complete(f, "run vm4 1G -- bas");
        g_assert_nonnull(strstr(run_cmd, "bash\n"));
        g_assert_null(strstr(run_cmd, "--"));
        g_autofree char *metrics_opts = complete(f, "metrics --ou");
        g_assert_cmpstr(metrics_opts, ==, "--output=\n");
        g_assert_cmpstr(lifetimes, ==, "caller\nexplicit\npid\n");
}

int main(int argc, char *argv[]) {
        hp_test_init(&argc, &argv);

#define ADD_P(name, params, setup, fn) \
        g_test_add("/hugepagectl/" name, HpFixture, params, setup, fn, hp_fixture_teardown)
#define ADD(name, fn) ADD_P(name, &params_default, setup, fn)
        ADD("help", test_help);
        ADD("usage-errors", test_usage_errors);
        ADD("sizes", test_sizes);
        ADD("nodes", test_nodes);
        ADD("verbs", test_verbs);
        ADD("status-default-mount", test_status_default_mount);
        ADD("status-mount-hint", test_status_mount_hint);
        ADD("not-found", test_not_found);
        ADD("exists", test_exists);
        ADD("insufficient", test_insufficient);
        ADD("no-daemon", test_no_daemon);
        ADD("lifetime-pid", test_lifetime_pid);
        ADD("lifetime-caller", test_lifetime_caller);
        ADD("monitor", test_monitor);
        ADD("monitor-json", test_monitor_json);
        ADD("completion", test_completion);
        ADD("hold", test_hold);
        ADD_P("limit", &params_limit, setup, test_limit);
        ADD_P("boot-pages-floor", &params_boot_floor, setup_boot_pages, test_boot_pages_floor);
        ADD_P("boot-pages-spare", &params_boot_spare, setup_boot_pages, test_boot_pages_spare);
        return g_test_run();
}
