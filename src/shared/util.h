/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing and formatting helpers shared by the daemon, the CLI and the tests: sizes, numbers, node lists, names. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RESERVATION_NAME_MAX 128
#define NODE_MAX 1024            /* the kernel's MAX_NUMNODES upper bound on x86 is 1024 */

/* An amount on one NUMA node: pages, or bytes, as the field's user says. The one such pair in the tree. */
typedef struct NodeAmount {
        uint32_t node;
        uint64_t amount;
} NodeAmount;

int parse_u64(const char *s, uint64_t *ret);
int parse_u32(const char *s, uint32_t *ret);
int parse_bool(const char *s, bool *ret);

/* "512M", "4G", "4GiB", "2048kB", "1073741824": binary units, case-insensitive suffix. */
int parse_size(const char *s, uint64_t *ret);

/* "2 MiB", "1 GiB", "1.5 GiB", "512 B". Returns buf. */
#define FORMAT_SIZE_MAX 32
char *format_size(char *buf, size_t len, uint64_t bytes);

/* The kernel's cpulist format, "0-2,5". Sorted, without duplicates; *ret_n entries. */
/* Undoes mountinfo's \\ooo escapes (space, tab, newline, backslash) in place. */
void unescape_octal(char *s);

int parse_node_list(const char *s, uint32_t **ret, size_t *ret_n);

/* Names are 1..RESERVATION_NAME_MAX characters from [A-Za-z0-9._:@+-]. */
bool reservation_name_is_valid(const char *name);

uint64_t now_usec(int clock);
