/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libvirt hook's XML-to-reservations computation on the corpus in tests/libvirt/: every NAME.xml has a
 * NAME.expected with the exact reservations (domain_needs_format()) or "error: <message>". The host is fixed:
 * default huge page size 2 MiB, base page size 4 KiB. `test-libvirt-domain --print FILE...` shows the results. */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "domain.h"

#define DEFAULT_PAGE_SIZE (UINT64_C(2) << 20)
#define BASE_PAGE_SIZE UINT64_C(4096)

static char *compute(const char *buf, size_t len) {
        DomainDef *d = NULL;
        DomainNeeds *n = NULL;
        DomainError e = {};
        char *out;

        if (domain_parse(buf, len, &d, &e) < 0)
                return g_strdup_printf("error: %s\n", e.message);
        if (domain_compute(d, DEFAULT_PAGE_SIZE, BASE_PAGE_SIZE, &n, &e) < 0) {
                domain_def_free(d);
                return g_strdup_printf("error: %s\n", e.message);
        }
        out = domain_needs_format(n);
        domain_needs_free(n);
        domain_def_free(d);
        g_assert_nonnull(out);
        return out;
}

static void test_case(gconstpointer data) {
        const char *xml_path = data;
        g_autofree char *base = g_strndup(xml_path, strlen(xml_path) - strlen(".xml"));
        g_autofree char *expected_path = g_strconcat(base, ".expected", NULL);
        g_autofree char *xml = NULL, *expected = NULL, *got = NULL;
        gsize len;
        g_autoptr(GError) error = NULL;

        g_assert_true(g_file_get_contents(xml_path, &xml, &len, &error));
        g_assert_no_error(error);
        if (!g_file_get_contents(expected_path, &expected, NULL, &error))
                g_error("%s: no expected result: %s", xml_path, error->message);
        got = compute(xml, len);
        if (!g_str_equal(got, expected))
                g_printerr("%s:\n--- expected\n%s--- got\n%s", xml_path, expected, got);
        g_assert_cmpstr(got, ==, expected);
}

/* Bigger than the cap: refused before libxml2 sees a byte. */
static void test_too_big(void) {
        gsize len = DOMAIN_XML_MAX + 1;
        g_autofree char *buf = g_malloc(len);
        g_autofree char *got = NULL;

        memset(buf, ' ', len);
        memcpy(buf, "<domain>", 8);
        got = compute(buf, len);
        g_assert_cmpstr(got, ==, "error: the domain XML is larger than 4 MiB\n");
}

/* Deeper than libxml2's limit (256 without XML_PARSE_HUGE): a clear error, no stack exhaustion. */
static void test_deep(void) {
        GString *s = g_string_new("<domain><name>x</name><memoryBacking><hugepages/></memoryBacking>");
        g_autofree char *got = NULL;

        for (int i = 0; i < 100000; i++)
                g_string_append(s, "<a>");
        got = compute(s->str, s->len);
        g_assert_true(g_str_has_prefix(got, "error: the domain XML is not well-formed"));
        g_string_free(s, TRUE);
}

/* Names: the first reservation is the UUID, others UUID:<size>[.n]; page_size_suffix() is part of the contract. */
static void test_suffix(void) {
        char buf[24];
        page_size_suffix(buf, UINT64_C(2) << 20);
        g_assert_cmpstr(buf, ==, "2M");
        page_size_suffix(buf, UINT64_C(1) << 30);
        g_assert_cmpstr(buf, ==, "1G");
        page_size_suffix(buf, UINT64_C(64) << 10);
        g_assert_cmpstr(buf, ==, "64K");
        page_size_suffix(buf, 1000);
        g_assert_cmpstr(buf, ==, "1000B");
}

/* <domain id=>: the id of a starting domain, -1 for a defined one or id='-1'. */
static void test_domain_id(void) {
        static const struct { const char *attr; int32_t id; } cases[] = {
                { "", -1 }, { " id='-1'", -1 }, { " id='0'", 0 }, { " id='6'", 6 }, { " id='2147483647'", INT32_MAX },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *xml = g_strdup_printf(
                        "<domain%s><name>vm</name><uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid>"
                        "<memory unit='MiB'>64</memory><memoryBacking><hugepages/></memoryBacking></domain>",
                        cases[i].attr);
                DomainDef *d = NULL;
                DomainError e = {};
                g_assert_cmpint(domain_parse(xml, strlen(xml), &d, &e), ==, 0);
                g_assert_cmpint(d->id, ==, cases[i].id);
                domain_def_free(d);
        }
}

/* g_ptr_array_sort() hands the comparator pointers to the elements, not the elements. */
static gint compare_paths(gconstpointer a, gconstpointer b) {
        return g_strcmp0(*(const char *const *) a, *(const char *const *) b);
}

int main(int argc, char **argv) {
        const char *dir_env = g_getenv("HUGEPAGED_SOURCE_ROOT");
        g_autofree char *dir = dir_env ? g_build_filename(dir_env, "tests", "libvirt", NULL) : g_strdup(".");
        g_autoptr(GDir) d = NULL;
        /* Freed after g_test_run(), which uses the paths as test data. */
        g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
        const char *name;

        if (argc >= 2 && g_str_equal(argv[1], "--print")) {
                for (int i = 2; i < argc; i++) {
                        g_autofree char *xml = NULL, *got = NULL;
                        gsize len;
                        if (!g_file_get_contents(argv[i], &xml, &len, NULL))
                                return 1;
                        got = compute(xml, len);
                        fputs(got, stdout);
                }
                return 0;
        }

        g_test_init(&argc, &argv, NULL);
        d = g_dir_open(dir, 0, NULL);
        g_assert_nonnull(d);
        while ((name = g_dir_read_name(d)))
                if (g_str_has_suffix(name, ".xml"))
                        g_ptr_array_add(files, g_build_filename(dir, name, NULL));
        g_ptr_array_sort(files, compare_paths);
        g_assert_cmpuint(files->len, >=, 30);
        for (guint i = 0; i < files->len; i++) {
                const char *f = files->pdata[i];
                g_autofree char *base = g_path_get_basename(f);
                g_autofree char *tname = g_strdup_printf("/libvirt-domain/corpus/%s", base);
                g_test_add_data_func(tname, f, test_case);
        }
        g_test_add_func("/libvirt-domain/too-big", test_too_big);
        g_test_add_func("/libvirt-domain/deep", test_deep);
        g_test_add_func("/libvirt-domain/suffix", test_suffix);
        g_test_add_func("/libvirt-domain/domain-id", test_domain_id);
        return g_test_run();
}
