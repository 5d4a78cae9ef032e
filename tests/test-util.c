/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of src/shared/util.c: the number, size, node list and name parsers, and format_size. */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "util.h"

#define SENTINEL64 UINT64_C(0xdeadbeefdeadbeef)
#define SENTINEL32 UINT32_C(0xdeadbeef)

static void check_u64(const char *s, int expect_r, uint64_t expect_v) {
        uint64_t v = SENTINEL64;
        int r = parse_u64(s, &v);

        g_test_message("parse_u64(\"%s\")", s ? s : "(null)");
        g_assert_cmpint(r, ==, expect_r);
        /* ret_* parameters are written only on success. */
        g_assert_cmpuint(v, ==, r == 0 ? expect_v : SENTINEL64);
}

static void test_parse_u64(void) {
        check_u64("0", 0, 0);
        check_u64("1", 0, 1);
        check_u64("007", 0, 7);
        check_u64("18446744073709551615", 0, UINT64_MAX);
        /* Kernel files end in a newline, and some pad with spaces. */
        check_u64("42\n", 0, 42);
        check_u64("42 ", 0, 42);
        check_u64("42 \n", 0, 42);
        check_u64("42\n\n", 0, 42);

        check_u64("18446744073709551616", -ERANGE, 0);
        check_u64("99999999999999999999999999", -ERANGE, 0);

        check_u64(NULL, -EINVAL, 0);
        check_u64("", -EINVAL, 0);
        check_u64(" ", -EINVAL, 0);
        check_u64("\n", -EINVAL, 0);
        check_u64(" 42", -EINVAL, 0);
        check_u64("\t42", -EINVAL, 0);
        check_u64("+42", -EINVAL, 0);
        check_u64("-1", -EINVAL, 0);
        check_u64("-0", -EINVAL, 0);
        check_u64("42x", -EINVAL, 0);
        check_u64("42 x", -EINVAL, 0);
        check_u64("42\t", -EINVAL, 0);
        check_u64("4 2", -EINVAL, 0);
        check_u64("0x10", -EINVAL, 0);
        check_u64("1.5", -EINVAL, 0);
        check_u64("1e3", -EINVAL, 0);
        check_u64("abc", -EINVAL, 0);
}

static void check_u32(const char *s, int expect_r, uint32_t expect_v) {
        uint32_t v = SENTINEL32;
        int r = parse_u32(s, &v);

        g_test_message("parse_u32(\"%s\")", s ? s : "(null)");
        g_assert_cmpint(r, ==, expect_r);
        g_assert_cmpuint(v, ==, r == 0 ? expect_v : SENTINEL32);
}

static void test_parse_u32(void) {
        check_u32("0", 0, 0);
        check_u32("1000", 0, 1000);
        check_u32("4294967295", 0, UINT32_MAX);
        check_u32("4294967295\n", 0, UINT32_MAX);
        check_u32("4294967296", -ERANGE, 0);
        check_u32("18446744073709551615", -ERANGE, 0);
        check_u32("18446744073709551616", -ERANGE, 0);
        check_u32("", -EINVAL, 0);
        check_u32("-1", -EINVAL, 0);
        check_u32("12k", -EINVAL, 0);
        check_u32(NULL, -EINVAL, 0);
}

static void check_bool(const char *s, int expect_r, bool expect_v) {
        /* Start from the opposite of what a success would write, to see that it was written. */
        bool v = !expect_v;
        int r = parse_bool(s, &v);

        g_test_message("parse_bool(\"%s\")", s ? s : "(null)");
        g_assert_cmpint(r, ==, expect_r);
        g_assert_true(v == (r == 0 ? expect_v : !expect_v));
}

static void test_parse_bool(void) {
        static const char *const yes[] = { "1", "yes", "true", "on", "y", "YES", "True", "ON", "Y" };
        static const char *const no[] = { "0", "no", "false", "off", "n", "NO", "False", "OFF", "N" };
        static const char *const bad[] = { "",    "2",     "yess", "ye",    "tru",   " yes", "yes ",
                                           "yes\n", "enable", "-1",  "00",    "none",  "o" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                check_bool(yes[i], 0, true);
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                check_bool(no[i], 0, false);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                check_bool(bad[i], -EINVAL, true);
                check_bool(bad[i], -EINVAL, false);
        }
        check_bool(NULL, -EINVAL, true);
}

static void check_size(const char *s, int expect_r, uint64_t expect_v) {
        uint64_t v = SENTINEL64;
        int r = parse_size(s, &v);

        g_test_message("parse_size(\"%s\")", s ? s : "(null)");
        g_assert_cmpint(r, ==, expect_r);
        g_assert_cmpuint(v, ==, r == 0 ? expect_v : SENTINEL64);
}

static void test_parse_size(void) {
        const uint64_t K = UINT64_C(1) << 10, M = UINT64_C(1) << 20, G = UINT64_C(1) << 30,
                       T = UINT64_C(1) << 40, P = UINT64_C(1) << 50;

        /* Plain bytes. */
        check_size("0", 0, 0);
        check_size("1073741824", 0, G);
        check_size("18446744073709551615", 0, UINT64_MAX);
        check_size("4096b", 0, 4 * K);
        check_size("4096B", 0, 4 * K);

        /* Every unit spelling, case-insensitive, all binary. */
        check_size("2048kB", 0, 2 * M);
        check_size("2048k", 0, 2 * M);
        check_size("2048K", 0, 2 * M);
        check_size("2048KiB", 0, 2 * M);
        check_size("2048kib", 0, 2 * M);
        check_size("512M", 0, 512 * M);
        check_size("512m", 0, 512 * M);
        check_size("2MB", 0, 2 * M);
        check_size("2MiB", 0, 2 * M);
        check_size("4G", 0, 4 * G);
        check_size("1g", 0, G);
        check_size("4GiB", 0, 4 * G);
        check_size("4gib", 0, 4 * G);
        check_size("4GB", 0, 4 * G);
        check_size("3T", 0, 3 * T);
        check_size("3TiB", 0, 3 * T);
        check_size("3tb", 0, 3 * T);
        check_size("2P", 0, 2 * P);
        check_size("2PiB", 0, 2 * P);
        check_size("2pb", 0, 2 * P);
        check_size("0G", 0, 0);

        /* Spaces between the number and the unit are accepted, nothing else around it. */
        check_size("2 M", 0, 2 * M);
        check_size("2   MiB", 0, 2 * M);
        check_size("1024 ", 0, 1024);
        check_size(" 2M", -EINVAL, 0);
        check_size("2M ", -EINVAL, 0);
        check_size("2M\n", -EINVAL, 0);
        check_size("2\tM", -EINVAL, 0);

        /* The largest value per unit, and one past it. */
        check_size("16383P", 0, 16383 * P);
        check_size("16384P", -ERANGE, 0);
        check_size("17179869183G", 0, UINT64_C(17179869183) * G);
        check_size("17179869184G", -ERANGE, 0);
        check_size("17179869184GiB", -ERANGE, 0);
        check_size("18014398509481984K", -ERANGE, 0);
        check_size("18446744073709551616", -ERANGE, 0);
        check_size("99999999999999999999999M", -ERANGE, 0);

        check_size(NULL, -EINVAL, 0);
        check_size("", -EINVAL, 0);
        check_size("M", -EINVAL, 0);
        check_size("GiB", -EINVAL, 0);
        check_size("-1", -EINVAL, 0);
        check_size("-2M", -EINVAL, 0);
        check_size("+2M", -EINVAL, 0);
        check_size("2X", -EINVAL, 0);
        check_size("2Mx", -EINVAL, 0);
        check_size("2MiBs", -EINVAL, 0);
        check_size("2Gi", -EINVAL, 0);
        check_size("2E", -EINVAL, 0);
        check_size("2KK", -EINVAL, 0);
        check_size("1.5G", -EINVAL, 0);
        check_size("0x200000", -EINVAL, 0);
        check_size("2 M B", -EINVAL, 0);
}

static void check_format(uint64_t bytes, const char *expect) {
        char buf[FORMAT_SIZE_MAX];

        g_test_message("format_size(%" PRIu64 ")", bytes);
        g_assert_true(format_size(buf, sizeof(buf), bytes) == buf);
        g_assert_cmpstr(buf, ==, expect);
}

static void test_format_size(void) {
        const uint64_t K = UINT64_C(1) << 10, M = UINT64_C(1) << 20, G = UINT64_C(1) << 30,
                       T = UINT64_C(1) << 40, P = UINT64_C(1) << 50, E = UINT64_C(1) << 60;

        check_format(0, "0 B");
        check_format(1, "1 B");
        check_format(512, "512 B");
        check_format(1023, "1023 B");
        check_format(K, "1 KiB");
        check_format(4 * K, "4 KiB");
        check_format(2 * M, "2 MiB");
        check_format(G, "1 GiB");
        check_format(16 * G, "16 GiB");
        check_format(T, "1 TiB");
        check_format(P, "1 PiB");
        check_format(E, "1 EiB");
        check_format(8 * E, "8 EiB");
        /* Whole multiples of a smaller unit that reach 1024 of it: stay exact in that unit's terms. */
        check_format(1536 * M, "1.5 GiB");
        check_format(3 * K / 2, "1.5 KiB");
        check_format(1025, "1.0 KiB");
        check_format(2047 * K, "2.0 MiB");
        check_format(1025 * M, "1.0 GiB");
        check_format(UINT64_MAX, "16.0 EiB");

        /* Truncated, never overflowed, when the buffer is short. */
        char small[4];
        g_assert_true(format_size(small, sizeof(small), 2 * M) == small);
        g_assert_cmpstr(small, ==, "2 M");
}

static void check_nodes(const char *s, int expect_r, const uint32_t *expect, size_t expect_n) {
        uint32_t *nodes = (uint32_t *) (uintptr_t) 0x1;
        size_t n = 4242;
        int r = parse_node_list(s, &nodes, &n);

        g_test_message("parse_node_list(\"%s\")", s ? s : "(null)");
        g_assert_cmpint(r, ==, expect_r);
        if (r < 0) {
                g_assert_true(nodes == (uint32_t *) (uintptr_t) 0x1);
                g_assert_cmpuint(n, ==, 4242);
                return;
        }
        g_assert_cmpuint(n, ==, expect_n);
        for (size_t i = 0; i < n; i++)
                g_assert_cmpuint(nodes[i], ==, expect[i]);
        free(nodes);
}

#define NODES(...) ((const uint32_t[]) { __VA_ARGS__ }), ELEMENTSOF(((const uint32_t[]) { __VA_ARGS__ }))

static void test_parse_node_list(void) {
        check_nodes("0", 0, NODES(0));
        check_nodes("0\n", 0, NODES(0));
        check_nodes("0-1,3", 0, NODES(0, 1, 3));
        check_nodes("0-2,5", 0, NODES(0, 1, 2, 5));
        check_nodes("0-2,5\n", 0, NODES(0, 1, 2, 5));
        check_nodes("3,1,1", 0, NODES(1, 3));
        check_nodes("5,0-2,1-3", 0, NODES(0, 1, 2, 3, 5));
        check_nodes("7-7", 0, NODES(7));
        check_nodes("1023", 0, NODES(1023));
        check_nodes("1022-1023", 0, NODES(1022, 1023));
        check_nodes(" 2 \n", 0, NODES(2));

        /* What a memoryless machine's has_memory can look like. */
        check_nodes("", 0, NULL, 0);
        check_nodes("\n", 0, NULL, 0);

        check_nodes("5-2", -ERANGE, NULL, 0);
        check_nodes("1024", -ERANGE, NULL, 0);
        check_nodes("0-1024", -ERANGE, NULL, 0);
        check_nodes("1023-1024", -ERANGE, NULL, 0);
        check_nodes("4294967296", -ERANGE, NULL, 0);
        check_nodes("99999999999999999999999", -ERANGE, NULL, 0);

        check_nodes(NULL, -EINVAL, NULL, 0);
        check_nodes("-1", -EINVAL, NULL, 0);
        check_nodes("0-", -EINVAL, NULL, 0);
        check_nodes("0--1", -EINVAL, NULL, 0);
        check_nodes("0-1-2", -EINVAL, NULL, 0);
        check_nodes(",", -EINVAL, NULL, 0);
        check_nodes(",0", -EINVAL, NULL, 0);
        check_nodes("0,", -EINVAL, NULL, 0);
        check_nodes("0,\n", -EINVAL, NULL, 0);
        check_nodes("0,,1", -EINVAL, NULL, 0);
        check_nodes("0 1", -EINVAL, NULL, 0);
        check_nodes("0 - 1", -EINVAL, NULL, 0);
        check_nodes("0, 1", -EINVAL, NULL, 0);
        check_nodes("a", -EINVAL, NULL, 0);
        check_nodes("0x1", -EINVAL, NULL, 0);
        check_nodes("node0", -EINVAL, NULL, 0);
        check_nodes("1;2", -EINVAL, NULL, 0);
}

static void test_parse_node_list_full(void) {
        uint32_t *nodes = NULL;
        size_t n = 0;

        g_assert_cmpint(parse_node_list("1023,0-1023,512", &nodes, &n), ==, 0);
        g_assert_cmpuint(n, ==, NODE_MAX);
        for (size_t i = 0; i < n; i++)
                g_assert_cmpuint(nodes[i], ==, i);
        free(nodes);
}

static char *name_of(size_t len, char c) {
        char *s = g_malloc(len + 1);
        memset(s, c, len);
        s[len] = '\0';
        return s;
}

static void test_reservation_name(void) {
        static const char *const valid[] = {
                "a", "Z", "0", "vm1", "vm-1", "vm_1", "vm.1", "vm:1", "user@host", "a+b",
          "qemu-42:ram@node0",
                "-", ".", "..", "_", ":1.42", "ABCxyz019._:@+-",
        };
        static const char *const invalid[] = {
                "", " ", "a b", " a", "a ", "a/b", "/", "../x", "a\tb", "a\nb", "a=b", "a[b", "a]b", "a;b",
                "a#b", "a,b", "a*b", "a\\b", "a'b", "a\"b", "a$b", "a%b", "a~b", "a!b",
                "caf\xc3\xa9",    /* é in UTF-8 */
                "\xe2\x80\x8b",   /* zero-width space */
                "\x7f", "a\x01",
        };
        g_autofree char *max = name_of(RESERVATION_NAME_MAX, 'x');
        g_autofree char *over = name_of(RESERVATION_NAME_MAX + 1, 'x');

        for (size_t i = 0; i < ELEMENTSOF(valid); i++) {
                g_test_message("valid: \"%s\"", valid[i]);
                g_assert_true(reservation_name_is_valid(valid[i]));
        }
        for (size_t i = 0; i < ELEMENTSOF(invalid); i++) {
                g_test_message("invalid: \"%s\"", invalid[i]);
                g_assert_false(reservation_name_is_valid(invalid[i]));
        }
        g_assert_false(reservation_name_is_valid(NULL));

        g_assert_cmpuint(strlen(max), ==, 128);
        g_assert_true(reservation_name_is_valid(max));
        g_assert_false(reservation_name_is_valid(over));

        /* Every byte value on its own: exactly the documented set passes. */
        for (int c = 1; c < 256; c++) {
                char s[2] = { (char) c, '\0' };
                bool expect = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                              (c != '\0' && strchr("._:@+-", c));
                g_test_message("byte 0x%02x", (unsigned) c);
                g_assert_true(reservation_name_is_valid(s) == expect);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/util/parse_u64", test_parse_u64);
        g_test_add_func("/util/parse_u32", test_parse_u32);
        g_test_add_func("/util/parse_bool", test_parse_bool);
        g_test_add_func("/util/parse_size", test_parse_size);
        g_test_add_func("/util/format_size", test_format_size);
        g_test_add_func("/util/parse_node_list", test_parse_node_list);
        g_test_add_func("/util/parse_node_list/full", test_parse_node_list_full);
        g_test_add_func("/util/reservation_name_is_valid", test_reservation_name);

        return g_test_run();
}
