/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bus tests (test-bus-*.c): the real hugepaged binary on a private dbus-daemon that loads the project's
 * policy, over the FUSE model of the kernel with nodes 0 and 1. Every case checks exact values: pages in the
 * model, properties, error names, signals. What the test-bus-* executables share beyond tests/lib. */
#pragma once

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "hp-client.h"
#include "hp-fixture.h"

#define PS2M (2ULL * 1024 * 1024)
#define PS1G (1024ULL * 1024 * 1024)
#define KB2M 2048
#define KB1G 1048576

#define MANAGER_PATH HP_BUS_PATH
#define MANAGER_IFACE HP_BUS_IFACE_MANAGER
#define POOL_IFACE HP_BUS_IFACE_POOL
#define RES_IFACE HP_BUS_IFACE_RESERVATION
#define RES_PREFIX HP_BUS_RESERVATION_PREFIX "/"
#define NODE0_PATH HP_BUS_POOL_PREFIX "/2048kB/node0"
#define NODE1_PATH HP_BUS_POOL_PREFIX "/2048kB/node1"
#define PROPS_IFACE HP_PROPS_IFACE
#define OM_IFACE HP_OM_IFACE

#define E_INSUFFICIENT HP_BUS_ERROR_INSUFFICIENT_PAGES
#define E_UNSUPPORTED HP_BUS_ERROR_UNSUPPORTED_PAGE_SIZE
#define E_NO_NODE HP_BUS_ERROR_NO_SUCH_NODE
#define E_NO_RES HP_BUS_ERROR_NO_SUCH_RESERVATION
#define E_EXISTS HP_BUS_ERROR_RESERVATION_EXISTS
#define E_LIMIT HP_BUS_ERROR_LIMIT_EXCEEDED
#define E_INVALID HP_E_INVALID_ARGS

#define DEFAULT_CONFIG HP_TEST_DEFAULT_CONFIG
#define WAIT_MS 10000

typedef HpFixture Fixture;

#define ADD(path, params, fn) g_test_add(path, HpFixture, params, hp_fixture_setup, fn, hp_fixture_teardown)

static inline guint64 nr(Fixture *f, int node, guint64 kb) {
        return hp_fixture_nr(f, node, kb);
}

/* All four pools of the model, for "nothing changed" checks. */
static inline char *kernel_snapshot(Fixture *f) {
        return g_strdup_printf("2M: %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " surplus %" G_GUINT64_FORMAT
                               "/%" G_GUINT64_FORMAT "; 1G: %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT,
                               nr(f, 0, KB2M), nr(f, 1, KB2M), fake_kernel_get(f->fk, 0, KB2M, "surplus"),
                               fake_kernel_get(f->fk, 1, KB2M, "surplus"), nr(f, 0, KB1G), nr(f, 1, KB1G));
}

/* How often the daemon wrote each node's 2M nr_hugepages. */
static inline char *writes_str(Fixture *f) {
        return g_strdup_printf("%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
                               fake_kernel_get(f->fk, 0, KB2M, "writes"), fake_kernel_get(f->fk, 1, KB2M, "writes"));
}

/* One ListPools row as hp_pools_str() prints it; free == total, surplus 0 as in an idle model. */
static inline char *pool_row(guint64 kb, int node, guint64 total, guint64 reserved, guint64 floor_) {
        return g_strdup_printf("%" G_GUINT64_FORMAT "kB/%d:%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT ",0,%"
                               G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT, kb, node, total, total, reserved, floor_);
}

/* The expected ListPools of an idle model, from per-node 2M (total, reserved, floor) and all-zero 1G pools. */
static inline char *expected_pools_2m(guint64 t0, guint64 r0, guint64 f0, guint64 t1, guint64 r1, guint64 f1) {
        g_autofree char *a = pool_row(KB2M, -1, t0 + t1, r0 + r1, f0 + f1);
        g_autofree char *b = pool_row(KB2M, 0, t0, r0, f0);
        g_autofree char *c = pool_row(KB2M, 1, t1, r1, f1);

        return g_strdup_printf("%s %s %s 1048576kB/-1:0,0,0,0,0 1048576kB/0:0,0,0,0,0 1048576kB/1:0,0,0,0,0", a, b,
                               c);
}

/* Floor of one 2M pool. */
static inline guint64 pool_floor(GDBusConnection *c, int node) {
        return hp_prop_u64(c, node == 0 ? NODE0_PATH : NODE1_PATH, POOL_IFACE, "Floor");
}
