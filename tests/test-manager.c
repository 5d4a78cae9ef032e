/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Accounting of the core (Floor, Reserved, retries, rollback, restart) against the FUSE model of the kernel,
 * through the same file I/O the daemon uses on a real host. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake-kernel-launch.h"
#include "log.h"
#include "manager.h"
#include "state.h"

#define MB2 2048
#define GB1 1048576
#define PS2M (2ULL * 1024 * 1024)
#define PS1G (1024ULL * 1024 * 1024)

typedef struct Fixture {
        FakeKernel *fk;
        char *state_dir;
        char *config;
        sd_event *event;
        Manager *m;
} Fixture;

static void write_config(Fixture *f, const char *text) {
        g_assert_true(g_file_set_contents(f->config, text, -1, NULL));
}

static void manager_start(Fixture *f) {
        g_assert_cmpint(manager_new(f->event, fake_kernel_root(f->fk), f->state_dir, &f->m), ==, 0);
        g_assert_cmpint(config_load(&f->m->config, f->config, true), ==, 0);
        g_assert_cmpint(manager_startup(f->m), ==, 0);
}

static void manager_stop(Fixture *f) {
        f->m = manager_free(f->m);
}

static void setup(Fixture *f, gconstpointer data) {
        const char *const args[] = { "--nodes=0,1", "--capacity=4096", "--capacity-1g=8", NULL };
        f->fk = fake_kernel_start(data ? (const char *const *) data : args);
        f->state_dir = g_dir_make_tmp("hugepaged-state-XXXXXX", NULL);
        g_assert_nonnull(f->state_dir);
        f->config = g_build_filename(f->state_dir, "hugepaged.conf", NULL);
        write_config(f, "[Allocation]\nMaxAttempts=3\nTimeoutSec=10\n");
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
}

static void teardown(Fixture *f, gconstpointer data) {
        g_autofree char *cmd = NULL;
        manager_stop(f);
        sd_event_unref(f->event);
        fake_kernel_stop(f->fk);
        cmd = g_strdup_printf("rm -rf '%s'", f->state_dir);
        g_assert_cmpint(system(cmd), ==, 0);
        g_free(f->state_dir);
        g_free(f->config);
}

static guint64 nr(Fixture *f, int node, guint64 kb) {
        return fake_kernel_get(f->fk, node, kb, "nr");
}

static Reservation *reserve(Fixture *f, const ReserveRequest *req, HpError *e) {
        Reservation *r = NULL;
        bool existed = false;
        int k = manager_reserve(f->m, req, &r, &existed, e);
        if (k < 0) {
                g_assert_cmpint(e->code, !=, HP_OK);
                return NULL;
        }
        g_assert_nonnull(r);
        return r;
}

static Reservation *reserve_on(Fixture *f, const char *name, uint64_t page_size, uint32_t node, uint64_t bytes,
                               HpError *e) {
        NodeAmount nb = { node, bytes };
        ReserveRequest req = {
                .name = name, .page_size = page_size, .node_bytes = &nb, .n_node_bytes = 1, .has_node_bytes = true,
                .lifetime = LIFETIME_EXPLICIT,
        };
        return reserve(f, &req, e);
}

static void release(Fixture *f, const char *name) {
        HpError e = {};
        Reservation *r = manager_find_reservation(f->m, name);
        g_assert_nonnull(r);
        g_assert_cmpint(manager_release(f->m, r, &e), ==, 0);
        g_assert_null(manager_find_reservation(f->m, name));
}

static void test_discovery(Fixture *f, gconstpointer data) {
        manager_start(f);
        g_assert_cmpuint(f->m->n_page_sizes, ==, 2);
        g_assert_cmpuint(f->m->page_sizes[0], ==, PS2M);
        g_assert_cmpuint(f->m->page_sizes[1], ==, PS1G);
        g_assert_cmpuint(f->m->default_page_size, ==, PS2M);
        g_assert_cmpuint(f->m->n_nodes, ==, 2);
        g_assert_cmpuint(f->m->n_pools, ==, 4);
        g_assert_nonnull(manager_find_pool(f->m, PS1G, 1));
}

static void test_reserve_release_exact(Fixture *f, gconstpointer data) {
        HpError e = {};
        Reservation *r;

        manager_start(f);
        r = reserve_on(f, "vm-42", PS2M, 1, 100 * PS2M, &e);
        g_assert_nonnull(r);
        g_assert_cmpuint(r->pages, ==, 100);
        g_assert_cmpuint(nr(f, 1, MB2), ==, 100);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 0);
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 1)->reserved, ==, 100);
        g_assert_cmpuint(manager_reserved_bytes(f->m), ==, 100 * PS2M);
        release(f, "vm-42");
        g_assert_cmpuint(nr(f, 1, MB2), ==, 0);
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 1)->reserved, ==, 0);
}

static void test_rounding_and_default_size(Fixture *f, gconstpointer data) {
        ReserveRequest req = { .name = "vm1", .page_size = 0, .bytes = PS2M * 3 + 1, .lifetime = LIFETIME_EXPLICIT };
        HpError e = {};
        Reservation *r;

        manager_start(f);
        r = reserve(f, &req, &e);
        g_assert_nonnull(r);
        g_assert_cmpuint(r->page_size, ==, PS2M);
        g_assert_cmpuint(r->pages, ==, 4);
        g_assert_cmpuint(nr(f, 0, MB2) + nr(f, 1, MB2), ==, 4);
}

static void test_floor_adopted(Fixture *f, gconstpointer data) {
        HpError e = {};

        fake_kernel_control(f->fk, "set_nr 0 %d 50", MB2);
        manager_start(f);
        g_assert_cmpuint(pool_floor(manager_find_pool(f->m, PS2M, 0)), ==, 50);
        g_assert_nonnull(reserve_on(f, "a", PS2M, 0, 10 * PS2M, &e));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 60);
        release(f, "a");
        /* Never below Floor: the 50 pages that were there belong to someone else. */
        g_assert_cmpuint(nr(f, 0, MB2), ==, 50);
}

static void test_min_pages(Fixture *f, gconstpointer data) {
        write_config(f, "[Pool 2M node1]\nMinPages=20\n[Pool 2M]\nMaxPages=100\n");
        manager_start(f);
        g_assert_cmpuint(nr(f, 1, MB2), ==, 20);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 0);
        g_assert_cmpuint(pool_floor(manager_find_pool(f->m, PS2M, 1)), ==, 20);
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 0)->max_pages, ==, 100);
}

static void test_max_pages(Fixture *f, gconstpointer data) {
        HpError e = {};
        write_config(f, "[Pool 2M]\nMaxPages=100\n");
        manager_start(f);
        g_assert_nonnull(reserve_on(f, "a", PS2M, 0, 60 * PS2M, &e));
        g_assert_null(reserve_on(f, "b", PS2M, 0, 41 * PS2M, &e));
        g_assert_cmpint(e.code, ==, HP_ERROR_LIMIT_EXCEEDED);
        g_assert_nonnull(strstr(e.message, "MaxPages=100"));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 60);
        e = (HpError) {};
        g_assert_nonnull(reserve_on(f, "b", PS2M, 0, 40 * PS2M, &e));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 100);
}

static void test_partial_then_compaction(Fixture *f, gconstpointer data) {
        HpError e = {};
        Reservation *r;

        fake_kernel_control(f->fk, "capacity 0 %d 1000", MB2);
        fake_kernel_control(f->fk, "blocked 0 %d 600", MB2);
        manager_start(f);
        r = reserve_on(f, "big", PS2M, 0, 800 * PS2M, &e);
        g_assert_nonnull(r);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 800);
        /* The first write came up short (400), and compaction of node 0 won the rest. */
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, MB2, "writes"), ==, 2);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "compactions 0"), ==, 1);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "compactions 1"), ==, 0);
}

/* DropCaches=yes: for a 1 GiB request the page cache is dropped once, with the first compaction, and the
 * statistics say which step won what. A 2 MiB request under 1 GiB in all never drops it, nor does a large one
 * that one round of compaction serves; a large one that round leaves short drops it with the second. */
static void test_drop_caches(Fixture *f, gconstpointer data) {
        HpError e = {};

        write_config(f, "[Allocation]\nMaxAttempts=4\nTimeoutSec=10\nDropCaches=yes\n");
        fake_kernel_control(f->fk, "capacity 0 %d 6", GB1);
        fake_kernel_control(f->fk, "blocked 0 %d 3", GB1);
        fake_kernel_control(f->fk, "capacity 0 %d 1000", MB2);
        manager_start(f);

        g_assert_nonnull(reserve_on(f, "g", PS1G, 0, 5 * PS1G, &e));
        g_assert_cmpuint(nr(f, 0, GB1), ==, 5);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, GB1, "writes"), ==, 2);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "drop_caches"), ==, 1);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "compactions 0"), ==, 1);
        g_assert_cmpuint(f->m->stats.pages_first_write, ==, 3);
        g_assert_cmpuint(f->m->stats.pages_after_drop_caches, ==, 2);
        g_assert_cmpuint(f->m->stats.pages_after_compaction, ==, 0);
        g_assert_cmpuint(f->m->stats.retries, ==, 1);

        /* 1000 MiB is not large: compaction alone wins the 100 pages the first write didn't get. */
        fake_kernel_control(f->fk, "blocked 0 %d 600", MB2);
        g_assert_nonnull(reserve_on(f, "m", PS2M, 0, 500 * PS2M, &e));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 500);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "drop_caches"), ==, 1);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "compactions 0"), ==, 2);
        g_assert_cmpuint(f->m->stats.pages_first_write, ==, 3 + 400);
        g_assert_cmpuint(f->m->stats.pages_after_compaction, ==, 100);
        g_assert_cmpuint(f->m->stats.pages_after_drop_caches, ==, 2);

        /* 2 GiB of 2 MiB pages is large, but compaction moves the cached pages themselves: the cache is only
         * dropped after a round of compaction that won nothing, and here compaction wins the rest. */
        fake_kernel_control(f->fk, "capacity 0 %d 2000", MB2);
        fake_kernel_control(f->fk, "blocked 0 %d 1000", MB2);
        g_assert_nonnull(reserve_on(f, "l", PS2M, 0, 1024 * PS2M, &e));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 500 + 1024);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "drop_caches"), ==, 1);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "compactions 0"), ==, 3);
        g_assert_cmpuint(f->m->stats.pages_after_compaction, ==, 100 + 1024 - 500);

        /* Here one round of compaction wins 300 pages and leaves the request 248 short. However much a round
         * wins, the next compaction goes with a drop of the cache: rounds of compaction alone would trickle in
         * a few pages each until the attempts ran out. */
        fake_kernel_control(f->fk, "capacity 0 %d 4000", MB2);
        fake_kernel_control(f->fk, "blocked 0 %d 2000", MB2);
        fake_kernel_control(f->fk, "compact_step 300");
        g_assert_nonnull(reserve_on(f, "k", PS2M, 0, 1024 * PS2M, &e));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 1524 + 1024);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, MB2, "writes"), ==, 2 + 2 + 3);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "drop_caches"), ==, 2);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "compactions 0"), ==, 5);
        g_assert_cmpuint(f->m->stats.pages_after_compaction, ==, 100 + 1024 - 500 + 300);
        g_assert_cmpuint(f->m->stats.pages_after_drop_caches, ==, 2 + 248);
}

static void test_short_without_compaction_rolls_back(Fixture *f, gconstpointer data) {
        HpError e = {};

        write_config(f, "[Allocation]\nCompaction=no\nMaxAttempts=2\n");
        fake_kernel_control(f->fk, "capacity 0 %d 1000", MB2);
        fake_kernel_control(f->fk, "blocked 0 %d 600", MB2);
        fake_kernel_control(f->fk, "set_nr 0 %d 5", MB2);
        manager_start(f);
        g_assert_null(reserve_on(f, "big", PS2M, 0, 800 * PS2M, &e));
        g_assert_cmpint(e.code, ==, HP_ERROR_INSUFFICIENT_PAGES);
        g_assert_cmpstr(e.message, ==, "cannot reserve 800 2 MiB pages on node 0: the kernel gave 395 of 800 pages");
        /* Put back exactly as it was, other users' 5 pages included. */
        g_assert_cmpuint(nr(f, 0, MB2), ==, 5);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "compactions 0"), ==, 0);
        g_assert_null(manager_find_reservation(f->m, "big"));
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 0)->reserved, ==, 0);
}

static void test_multi_node_rollback(Fixture *f, gconstpointer data) {
        NodeAmount nb[] = { { 0, 100 * PS2M }, { 1, 5000 * PS2M } };
        ReserveRequest req = {
                .name = "two", .page_size = PS2M, .node_bytes = nb, .n_node_bytes = 2, .has_node_bytes = true,
                .lifetime = LIFETIME_EXPLICIT,
        };
        HpError e = {};

        fake_kernel_control(f->fk, "set_nr 1 %d 7", MB2);
        manager_start(f);
        g_assert_null(reserve(f, &req, &e));
        g_assert_cmpint(e.code, ==, HP_ERROR_INSUFFICIENT_PAGES);
        g_assert_cmpstr(e.message, ==, "cannot reserve 5000 2 MiB pages on node 1: the kernel gave 4089 of 5000 pages");
        g_assert_cmpuint(nr(f, 0, MB2), ==, 0);
        g_assert_cmpuint(nr(f, 1, MB2), ==, 7);
}

static void test_flexible_nodes(Fixture *f, gconstpointer data) {
        uint32_t nodes[] = { 1, 0 };
        ReserveRequest req = {
                .name = "flex", .page_size = PS2M, .bytes = 150 * PS2M, .nodes = nodes, .n_nodes = 2,
                .has_nodes = true, .lifetime = LIFETIME_EXPLICIT,
        };
        HpError e = {};
        Reservation *r;

        fake_kernel_control(f->fk, "capacity 0 %d 100", MB2);
        manager_start(f);
        r = reserve(f, &req, &e);
        g_assert_nonnull(r);
        g_assert_cmpuint(r->n_node_pages, ==, 2);
        g_assert_cmpuint(r->node_pages[0].node, ==, 0);
        g_assert_cmpuint(r->node_pages[0].amount, ==, 100);
        g_assert_cmpuint(r->node_pages[1].node, ==, 1);
        g_assert_cmpuint(r->node_pages[1].amount, ==, 50);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 100);
        g_assert_cmpuint(nr(f, 1, MB2), ==, 50);
        release(f, "flex");
        g_assert_cmpuint(nr(f, 0, MB2) + nr(f, 1, MB2), ==, 0);
}

static void test_gigantic(Fixture *f, gconstpointer data) {
        HpError e = {};
        manager_start(f);
        g_assert_nonnull(reserve_on(f, "g", PS1G, 0, 2 * PS1G, &e));
        g_assert_cmpuint(nr(f, 0, GB1), ==, 2);
        /* Overcommit is never touched: the kernel refuses it for gigantic pages. */
        g_assert_cmpint(fake_kernel_write(f->fk, "sys/kernel/mm/hugepages/hugepages-1048576kB/nr_overcommit_hugepages",
                                          "1\n"), ==, -EINVAL);
        g_assert_null(reserve_on(f, "g2", PS1G, 0, 7 * PS1G, &e));
        g_assert_cmpint(e.code, ==, HP_ERROR_INSUFFICIENT_PAGES);
        g_assert_cmpstr(e.message, ==, "cannot reserve 7 1 GiB pages on node 0: the kernel gave 6 of 7 pages");
        g_assert_cmpuint(nr(f, 0, GB1), ==, 2);

        /* Released 1 GiB pages stay in the pool by default (ShrinkDelaySec=infinity for 1 GiB), and the next
         * Reserve takes them without writing to the kernel. */
        release(f, "g");
        g_assert_cmpuint(nr(f, 0, GB1), ==, 2);
        g_assert_cmpuint(manager_find_pool(f->m, PS1G, 0)->reserved, ==, 0);
        guint64 writes = fake_kernel_get(f->fk, 0, GB1, "writes");
        g_assert_nonnull(reserve_on(f, "g3", PS1G, 0, 2 * PS1G, &e));
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, GB1, "writes"), ==, writes);
        release(f, "g3");
        g_assert_cmpuint(nr(f, 0, GB1), ==, 2);
}

static void test_surplus_on_release(Fixture *f, gconstpointer data) {
        HpError e = {};
        Pool *p;

        manager_start(f);
        g_assert_nonnull(reserve_on(f, "busy", PS2M, 0, 100 * PS2M, &e));
        fake_kernel_control(f->fk, "use 0 %d 100", MB2);
        release(f, "busy");
        /* The guest still maps them: they stay as surplus, nobody takes them away. */
        g_assert_cmpuint(nr(f, 0, MB2), ==, 100);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, MB2, "surplus"), ==, 100);
        p = manager_find_pool(f->m, PS2M, 0);
        g_assert_cmpuint(pool_floor(p), ==, 0);
        fake_kernel_control(f->fk, "use 0 %d 0", MB2);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 0);
        g_assert_cmpint(manager_refresh(f->m), ==, 0);
        g_assert_cmpuint(pool_floor(p), ==, 0);
}

static void test_outside_change(Fixture *f, gconstpointer data) {
        HpError e = {};
        Pool *p;

        manager_start(f);
        p = manager_find_pool(f->m, PS2M, 0);
        g_assert_nonnull(reserve_on(f, "a", PS2M, 0, 10 * PS2M, &e));
        fake_kernel_control(f->fk, "set_nr 0 %d 30", MB2);
        g_assert_cmpint(manager_refresh(f->m), ==, 0);
        g_assert_cmpuint(pool_floor(p), ==, 20);
        g_assert_cmpuint(p->reserved, ==, 10);
        release(f, "a");
        g_assert_cmpuint(nr(f, 0, MB2), ==, 20);

        /* Someone shrinks: Floor follows, we don't grow it back behind their back. */
        fake_kernel_control(f->fk, "set_nr 0 %d 5", MB2);
        g_assert_cmpint(manager_refresh(f->m), ==, 0);
        g_assert_cmpuint(pool_floor(p), ==, 5);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 5);

        /* A change noticed at the start of a request is adopted before the request is planned. */
        fake_kernel_control(f->fk, "set_nr 0 %d 8", MB2);
        g_assert_nonnull(reserve_on(f, "b", PS2M, 0, 2 * PS2M, &e));
        g_assert_cmpuint(pool_floor(p), ==, 8);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 10);
}

static void test_idempotent_and_exists(Fixture *f, gconstpointer data) {
        HpError e = {};
        Reservation *r1, *r2 = NULL;
        bool existed = false;
        NodeAmount nb = { 0, 10 * PS2M };
        ReserveRequest req = {
                .name = "vm", .page_size = PS2M, .node_bytes = &nb, .n_node_bytes = 1, .has_node_bytes = true,
                .lifetime = LIFETIME_EXPLICIT,
        };

        manager_start(f);
        r1 = reserve(f, &req, &e);
        g_assert_nonnull(r1);
        g_assert_cmpint(manager_reserve(f->m, &req, &r2, &existed, &e), ==, 0);
        g_assert_true(existed);
        g_assert_true(r1 == r2);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 10);

        nb.amount = 11 * PS2M;
        g_assert_cmpint(manager_reserve(f->m, &req, &r2, &existed, &e), <, 0);
        g_assert_cmpint(e.code, ==, HP_ERROR_RESERVATION_EXISTS);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 10);
}

static void test_errors(Fixture *f, gconstpointer data) {
        uint32_t bad_node = 7;
        NodeAmount mismatch = { 0, PS2M };
        struct {
                ReserveRequest req;
                HpErrorCode code;
        } cases[] = {
                { { .name = "x", .page_size = 4096, .bytes = 1 }, HP_ERROR_UNSUPPORTED_PAGE_SIZE },
                { { .name = "x", .bytes = 0 }, HP_ERROR_INVALID_ARGS },
                { { .name = "", .bytes = 1 }, HP_ERROR_INVALID_ARGS },
                { { .name = "a/b", .bytes = 1 }, HP_ERROR_INVALID_ARGS },
                { { .name = "x", .bytes = 1, .nodes = &bad_node, .n_nodes = 1, .has_nodes = true }, HP_ERROR_NO_SUCH_NODE },
                { { .name = "x", .bytes = 1, .has_nodes = true }, HP_ERROR_INVALID_ARGS },
                { { .name = "x", .bytes = 2 * PS2M, .node_bytes = &mismatch, .n_node_bytes = 1, .has_node_bytes = true },
                  HP_ERROR_INVALID_ARGS },
                { { .name = "x", .bytes = 1, .lifetime = LIFETIME_PID }, HP_ERROR_INVALID_ARGS },
                { { .name = "x", .bytes = 1, .has_pid = true, .pid = 1 }, HP_ERROR_INVALID_ARGS },
                { { .name = "x", .bytes = 1, .lifetime = LIFETIME_CALLER }, HP_ERROR_INVALID_ARGS },
                { { .name = "x", .bytes = UINT64_MAX, .page_size = PS2M }, HP_ERROR_INSUFFICIENT_PAGES },
        };
        char longname[130];

        write_config(f, "[Daemon]\nMaxReservations=2\n[Allocation]\nMaxAttempts=1\n");
        manager_start(f);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                HpError e = {};
                Reservation *r = NULL;
                bool existed;
                g_test_message("case %zu", i);
                g_assert_cmpint(manager_reserve(f->m, &cases[i].req, &r, &existed, &e), <, 0);
                g_assert_cmpint(e.code, ==, cases[i].code);
                g_assert_cmpstr(e.message, !=, "");
        }
        /* None of the refusals touched the kernel, not even the one asking for more than the machine has. */
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, MB2, "writes"), ==, 0);
        g_assert_cmpuint(fake_kernel_get(f->fk, 1, MB2, "writes"), ==, 0);
        memset(longname, 'a', 129);
        longname[129] = '\0';
        {
                HpError e = {};
                g_assert_null(reserve_on(f, longname, PS2M, 0, PS2M, &e));
                g_assert_cmpint(e.code, ==, HP_ERROR_INVALID_ARGS);
                longname[128] = '\0';
                e = (HpError) {};
                g_assert_nonnull(reserve_on(f, longname, PS2M, 0, PS2M, &e));
                g_assert_nonnull(reserve_on(f, "second", PS2M, 0, PS2M, &e));
                g_assert_null(reserve_on(f, "third", PS2M, 0, PS2M, &e));
                g_assert_cmpint(e.code, ==, HP_ERROR_LIMIT_EXCEEDED);
                g_assert_nonnull(strstr(e.message, "MaxReservations"));
        }
        g_assert_cmpuint(nr(f, 0, MB2), ==, 2);
        g_assert_cmpuint(nr(f, 1, MB2), ==, 0);
}

static void test_restart_keeps_everything(Fixture *f, gconstpointer data) {
        HpError e = {};
        Reservation *r;

        fake_kernel_control(f->fk, "set_nr 0 %d 3", MB2);
        manager_start(f);
        g_assert_nonnull(reserve_on(f, "a", PS2M, 0, 10 * PS2M, &e));
        g_assert_nonnull(reserve_on(f, "b", PS1G, 1, PS1G, &e));
        manager_stop(f);
        /* Stopping leaves the pools alone. */
        g_assert_cmpuint(nr(f, 0, MB2), ==, 13);
        g_assert_cmpuint(nr(f, 1, GB1), ==, 1);

        manager_start(f);
        g_assert_cmpuint(f->m->n_reservations, ==, 2);
        r = manager_find_reservation(f->m, "b");
        g_assert_nonnull(r);
        g_assert_cmpuint(r->page_size, ==, PS1G);
        g_assert_cmpuint(r->node_pages[0].node, ==, 1);
        g_assert_cmpuint(pool_floor(manager_find_pool(f->m, PS2M, 0)), ==, 3);
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 0)->reserved, ==, 10);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 13);

        /* A hook retrying after the restart gets the same reservation back, not a second one. */
        {
                NodeAmount nb = { 1, PS1G };
                ReserveRequest req = {
                        .name = "b", .page_size = PS1G, .node_bytes = &nb, .n_node_bytes = 1, .has_node_bytes = true,
                        .lifetime = LIFETIME_EXPLICIT,
                };
                Reservation *again = NULL;
                bool existed = false;
                g_assert_cmpint(manager_reserve(f->m, &req, &again, &existed, &e), ==, 0);
                g_assert_true(existed);
                g_assert_true(again == r);
                g_assert_cmpuint(nr(f, 1, GB1), ==, 1);
        }

        release(f, "a");
        g_assert_cmpuint(nr(f, 0, MB2), ==, 3);
}

static void set_state_high(Fixture *f, const char *pool_section, uint64_t high) {
        g_autofree char *path = g_build_filename(f->state_dir, "state", NULL), *text = NULL, *needle = NULL;
        g_autofree char *old = NULL, *repl = NULL;
        char *p, *q;
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        needle = g_strdup_printf("[%s]", pool_section);
        p = strstr(text, needle);
        g_assert_nonnull(p);
        p = strstr(p, "High=");
        g_assert_nonnull(p);
        q = strchr(p, '\n');
        old = g_strndup(p, q - p);
        repl = g_strdup_printf("High=%" G_GUINT64_FORMAT, high);
        {
                GString *s = g_string_new(NULL);
                g_string_append_len(s, text, p - text);
                g_string_append(s, repl);
                g_string_append(s, q);
                g_assert_true(g_file_set_contents(path, s->str, -1, NULL));
                g_string_free(s, TRUE);
        }
}

static void test_crash_residue_is_undone(Fixture *f, gconstpointer data) {
        HpError e = {};

        manager_start(f);
        g_assert_nonnull(reserve_on(f, "a", PS2M, 0, 10 * PS2M, &e));
        manager_stop(f);
        /* As if the daemon died after writing its intent and growing the pool for an unanswered Reserve. */
        set_state_high(f, "Pool 2097152 0", 110);
        fake_kernel_control(f->fk, "set_nr 0 %d 110", MB2);
        manager_start(f);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 10);
        g_assert_cmpuint(pool_floor(manager_find_pool(f->m, PS2M, 0)), ==, 0);
        g_assert_nonnull(manager_find_reservation(f->m, "a"));
}

static void test_change_while_down_is_adopted(Fixture *f, gconstpointer data) {
        HpError e = {};

        manager_start(f);
        g_assert_nonnull(reserve_on(f, "a", PS2M, 0, 10 * PS2M, &e));
        manager_stop(f);
        fake_kernel_control(f->fk, "set_nr 0 %d 110", MB2);
        manager_start(f);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 110);
        g_assert_cmpuint(pool_floor(manager_find_pool(f->m, PS2M, 0)), ==, 100);
}

static void run_loop_until_released(Fixture *f, const char *name) {
        /* The release's shrink runs in a worker thread: wait for it too. */
        for (int i = 0; i < 100 && (manager_find_reservation(f->m, name) || manager_jobs_pending(f->m) > 0); i++)
                g_assert_cmpint(sd_event_run(f->event, 100000), >=, 0);
}

/* Lifetime 'pid' needs pidfd_open(), which valgrind 3.19 (Debian 12) does not emulate. */
static gboolean pidfd_supported(void) {
        int fd = (int) syscall(SYS_pidfd_open, getpid(), 0);

        if (fd < 0)
                return errno != ENOSYS;
        close(fd);
        return TRUE;
}

/* A child that waits to be killed: the process a pid-lifetime reservation is bound to. */
static pid_t spawn_sleeper(void) {
        pid_t child = fork();
        g_assert_cmpint(child, >=, 0);
        if (child == 0) {
                pause();
                _exit(0);
        }
        return child;
}

static void kill_and_reap(pid_t child) {
        int status;
        g_assert_cmpint(kill(child, SIGKILL), ==, 0);
        g_assert_cmpint(waitpid(child, &status, 0), ==, child);
}

static void test_pid_lifetime(Fixture *f, gconstpointer data) {
        NodeAmount nb = { 0, 4 * PS2M };
        ReserveRequest req = {
                .name = "pid", .page_size = PS2M, .node_bytes = &nb, .n_node_bytes = 1, .has_node_bytes = true,
                .lifetime = LIFETIME_PID, .has_pid = true,
        };
        HpError e = {};
        pid_t child;

        if (!pidfd_supported()) {
                g_test_skip("pidfd_open() is not available here (valgrind 3.19 does not emulate it)");
                return;
        }
        manager_start(f);
        child = spawn_sleeper();
        req.pid = (uint32_t) child;
        g_assert_nonnull(reserve(f, &req, &e));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 4);
        kill_and_reap(child);
        run_loop_until_released(f, "pid");
        g_assert_null(manager_find_reservation(f->m, "pid"));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 0);

        /* A process that is already gone can't be bound. */
        e = (HpError) {};
        g_assert_null(reserve(f, &req, &e));
        g_assert_cmpint(e.code, ==, HP_ERROR_INVALID_ARGS);
}

static void test_pid_gone_across_restart(Fixture *f, gconstpointer data) {
        NodeAmount nb = { 1, 4 * PS2M };
        ReserveRequest req = {
                .name = "pid", .page_size = PS2M, .node_bytes = &nb, .n_node_bytes = 1, .has_node_bytes = true,
                .lifetime = LIFETIME_PID, .has_pid = true,
        };
        HpError e = {};
        pid_t child;

        if (!pidfd_supported()) {
                g_test_skip("pidfd_open() is not available here (valgrind 3.19 does not emulate it)");
                return;
        }
        manager_start(f);
        child = spawn_sleeper();
        req.pid = (uint32_t) child;
        g_assert_nonnull(reserve(f, &req, &e));
        manager_stop(f);
        kill_and_reap(child);
        manager_start(f);
        g_assert_null(manager_find_reservation(f->m, "pid"));
        g_assert_cmpuint(nr(f, 1, MB2), ==, 0);
}

/* Adopt=spare: pages that were there (set aside at boot) are hugepaged's own. Reservations take them without a
 * kernel write, a release gives them back to the pool, and both hold across restarts, with or without the state
 * file. Pages grown beyond them go back to the kernel as usual. */
static void test_adopt_spare(Fixture *f, gconstpointer data) {
        g_autofree char *state = g_build_filename(f->state_dir, "state", NULL);
        HpError e = {};
        Pool *p;
        guint64 writes;

        write_config(f, "[Allocation]\nMaxAttempts=3\nTimeoutSec=10\n[Pool 1G]\nAdopt=spare\nShrinkDelaySec=0\n");
        fake_kernel_control(f->fk, "set_nr 0 %d 2", GB1);
        fake_kernel_control(f->fk, "set_nr 1 %d 1", GB1);
        manager_start(f);
        p = manager_find_pool(f->m, PS1G, 0);
        g_assert_cmpuint(p->spare_adopted, ==, 2);
        g_assert_cmpuint(pool_floor(p), ==, 0);
        g_assert_cmpuint(manager_find_pool(f->m, PS1G, 1)->spare_adopted, ==, 1);
        /* The 2 MiB pools have no Adopt= and nothing in them. */
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 0)->spare_adopted, ==, 0);

        writes = fake_kernel_get(f->fk, 0, GB1, "writes") + fake_kernel_get(f->fk, 1, GB1, "writes");
        g_assert_nonnull(reserve_on(f, "g0", PS1G, 0, 2 * PS1G, &e));
        g_assert_nonnull(reserve_on(f, "g1", PS1G, 1, PS1G, &e));
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, GB1, "writes") + fake_kernel_get(f->fk, 1, GB1, "writes"), ==,
                         writes);
        g_assert_cmpuint(nr(f, 0, GB1), ==, 2);
        g_assert_cmpuint(nr(f, 1, GB1), ==, 1);

        /* Beyond the adopted pages the pool grows, and shrinks back to them, not below. */
        g_assert_nonnull(reserve_on(f, "g0b", PS1G, 0, PS1G, &e));
        g_assert_cmpuint(nr(f, 0, GB1), ==, 3);
        release(f, "g0b");
        g_assert_cmpuint(nr(f, 0, GB1), ==, 2);
        release(f, "g0");
        g_assert_cmpuint(nr(f, 0, GB1), ==, 2);
        g_assert_cmpuint(manager_find_pool(f->m, PS1G, 0)->spare_adopted, ==, 2);

        /* A restart (the state file says which pages are whose) changes nothing, and they can be had again. */
        manager_stop(f);
        manager_start(f);
        g_assert_nonnull(manager_find_reservation(f->m, "g1"));
        g_assert_cmpuint(manager_find_pool(f->m, PS1G, 0)->spare_adopted, ==, 2);
        g_assert_cmpuint(manager_find_pool(f->m, PS1G, 1)->spare_adopted, ==, 1);
        writes = fake_kernel_get(f->fk, 0, GB1, "writes");
        g_assert_nonnull(reserve_on(f, "g0", PS1G, 0, 2 * PS1G, &e));
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, GB1, "writes"), ==, writes);
        g_assert_cmpuint(nr(f, 0, GB1), ==, 2);
        release(f, "g0");
        release(f, "g1");
        g_assert_cmpuint(nr(f, 1, GB1), ==, 1);

        /* Without the state file, what is there is adopted as spare again. */
        manager_stop(f);
        g_assert_cmpint(g_unlink(state), ==, 0);
        manager_start(f);
        g_assert_cmpuint(manager_find_pool(f->m, PS1G, 0)->spare_adopted, ==, 2);
        g_assert_nonnull(reserve_on(f, "g0", PS1G, 0, 2 * PS1G, &e));
        g_assert_cmpuint(nr(f, 0, GB1), ==, 2);
}

/* Adopt= on a node's own section beats the size-wide one, and MinPages stays a Floor under Adopt=spare: only the
 * pages above it are spare. */
static void test_adopt_spare_node_and_min(Fixture *f, gconstpointer data) {
        HpError e = {};

        write_config(f, "[Pool 2M]\nAdopt=spare\n[Pool 2M node1]\nAdopt=floor\n[Pool 2M node0]\nMinPages=10\n");
        fake_kernel_control(f->fk, "set_nr 0 %d 30", MB2);
        fake_kernel_control(f->fk, "set_nr 1 %d 30", MB2);
        manager_start(f);
        g_assert_cmpuint(pool_floor(manager_find_pool(f->m, PS2M, 0)), ==, 10);
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 0)->spare_adopted, ==, 20);
        g_assert_cmpuint(pool_floor(manager_find_pool(f->m, PS2M, 1)), ==, 30);
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 1)->spare_adopted, ==, 0);
        g_assert_nonnull(reserve_on(f, "a", PS2M, 0, 20 * PS2M, &e));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 30);
        g_assert_nonnull(reserve_on(f, "b", PS2M, 0, PS2M, &e));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 31);
        g_assert_nonnull(reserve_on(f, "c", PS2M, 1, PS2M, &e));
        g_assert_cmpuint(nr(f, 1, MB2), ==, 31);
        release(f, "a");
        release(f, "b");
        release(f, "c");
        g_assert_cmpuint(nr(f, 0, MB2), ==, 30);
        g_assert_cmpuint(nr(f, 1, MB2), ==, 30);
}

/* Adopt= changed between two runs: the pool keeps its size, and the pages change hands as documented. */
static void test_adopt_changed(Fixture *f, gconstpointer data) {
        HpError e = {};
        Pool *p;

        fake_kernel_control(f->fk, "set_nr 0 %d 50", MB2);
        manager_start(f);
        g_assert_cmpuint(pool_floor(manager_find_pool(f->m, PS2M, 0)), ==, 50);
        g_assert_nonnull(reserve_on(f, "a", PS2M, 0, 10 * PS2M, &e));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 60);
        manager_stop(f);

        /* Floor -> spare: the 50 Floor pages become spare; "a" now counts against them, so the 10 pages grown
         * for it are spare beyond them and go back to the kernel (2 MiB pages have no delay). */
        write_config(f, "[Pool 2M]\nAdopt=spare\n");
        manager_start(f);
        p = manager_find_pool(f->m, PS2M, 0);
        g_assert_cmpuint(pool_floor(p), ==, 0);
        g_assert_cmpuint(p->spare_adopted, ==, 50);
        g_assert_cmpuint(p->reserved, ==, 10);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 50);
        g_assert_nonnull(reserve_on(f, "b", PS2M, 0, 40 * PS2M, &e));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 50);
        release(f, "b");
        manager_stop(f);

        /* Spare -> floor: what no reservation holds (40) is Floor again; "a" keeps its 10, which go back to the
         * kernel when it is released. */
        write_config(f, "[Pool 2M]\nAdopt=floor\n");
        manager_start(f);
        p = manager_find_pool(f->m, PS2M, 0);
        g_assert_cmpuint(p->spare_adopted, ==, 0);
        g_assert_cmpuint(pool_floor(p), ==, 40);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 50);
        release(f, "a");
        g_assert_cmpuint(nr(f, 0, MB2), ==, 40);
}

/* Without Adopt=spare, a request the kernel can't grow for, on a pool whose adopted Floor would have covered it,
 * fails with a message that names the Floor pages and the key, and nothing else changes. */
static void test_adopt_floor_hint(Fixture *f, gconstpointer data) {
        HpError e = {}, e2 = {};

        fake_kernel_control(f->fk, "capacity 0 %d 2", GB1);
        fake_kernel_control(f->fk, "set_nr 0 %d 2", GB1);
        manager_start(f);
        g_assert_null(reserve_on(f, "g0", PS1G, 0, PS1G, &e));
        g_assert_cmpint(e.code, ==, HP_ERROR_INSUFFICIENT_PAGES);
        g_assert_nonnull(strstr(e.message, "the kernel gave 0 of 1 pages"));
        g_assert_nonnull(strstr(e.message, "2 free Floor pages, enough for the 1 missing"));
        g_assert_nonnull(strstr(e.message, "Adopt=spare in [Pool 1 GiB]"));
        g_assert_cmpuint(nr(f, 0, GB1), ==, 2);
        g_assert_cmpuint(pool_floor(manager_find_pool(f->m, PS1G, 0)), ==, 2);

        /* A pool with no adopted Floor gets no such hint. */
        fake_kernel_control(f->fk, "capacity 1 %d 0", GB1);
        g_assert_null(reserve_on(f, "g1", PS1G, 1, PS1G, &e2));
        g_assert_cmpint(e2.code, ==, HP_ERROR_INSUFFICIENT_PAGES);
        g_assert_null(strstr(e2.message, "Adopt="));
}

/* ---- held reservations, with the mount operations replaced: what the core asks of them ---- */

/* The "kernel's" mounts, kept across managers like the real ones across daemon restarts. */
static GPtrArray *hold_mounts;
static GString *hold_calls;
static int hold_mount_error; /* what the next mounts return */
static int hold_list_error;  /* what the next lists return */

static int recording_mount(const char *path, uint64_t page_size, uint64_t bytes, uid_t uid, gid_t gid) {
        g_string_append_printf(hold_calls, "mount %s %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %u;",
                               strrchr(path, '/') + 1, page_size, bytes, (unsigned) uid);
        if (hold_mount_error)
                return hold_mount_error;
        g_ptr_array_add(hold_mounts, g_strdup(path));
        return 0;
}

static int recording_umount(const char *path) {
        g_string_append_printf(hold_calls, "umount %s;", strrchr(path, '/') + 1);
        for (guint i = 0; i < hold_mounts->len; i++)
                if (g_str_equal(hold_mounts->pdata[i], path)) {
                        g_ptr_array_remove_index(hold_mounts, i);
                        return 0;
                }
        return -EINVAL;
}

static int recording_list(const char *dir, char ***ret) {
        if (hold_list_error)
                return hold_list_error;
        char **v = calloc(hold_mounts->len + 1, sizeof(char *)); /* freed by the core with free() */
        size_t n = 0;
        for (guint i = 0; i < hold_mounts->len; i++)
                if (g_str_has_prefix(hold_mounts->pdata[i], dir))
                        v[n++] = strdup(hold_mounts->pdata[i]);
        *ret = v;
        return 0;
}

static const HoldOps recording_ops = {
        .mount = recording_mount,
        .umount = recording_umount,
        .list = recording_list,
};

static void hold_start(Fixture *f) {
        if (!hold_mounts) {
                hold_mounts = g_ptr_array_new_with_free_func(g_free);
                hold_calls = g_string_new(NULL);
        }
        g_string_truncate(hold_calls, 0);
        g_assert_cmpint(manager_new(f->event, fake_kernel_root(f->fk), f->state_dir, &f->m), ==, 0);
        manager_set_hold_ops(f->m, &recording_ops);
        g_assert_cmpint(config_load(&f->m->config, f->config, true), ==, 0);
        g_assert_cmpint(manager_startup(f->m), ==, 0);
}

static Reservation *reserve_held(Fixture *f, const char *name, uint32_t node, uint64_t pages, HpError *e) {
        NodeAmount nb = { node, pages * PS2M };
        ReserveRequest req = {
                .name = name, .page_size = PS2M, .node_bytes = &nb, .n_node_bytes = 1, .has_node_bytes = true,
                .lifetime = LIFETIME_EXPLICIT, .uid = 1000, .hold = true,
        };
        return reserve(f, &req, e);
}

static char *state_text(Fixture *f) {
        g_autofree char *path = g_build_filename(f->state_dir, "state", NULL);
        char *text = NULL;
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        return text;
}

static void test_hold(Fixture *f, gconstpointer data) {
        g_autofree char *expected = g_build_filename(f->state_dir, "mounts", "h", NULL), *state = NULL;
        g_autofree char *dot = g_build_filename(f->state_dir, "mounts", "%2e", NULL);
        g_autofree char *dotdot = g_build_filename(f->state_dir, "mounts", "%2e%2e", NULL);
        HpError e = {};
        Reservation *r, *again = NULL;
        bool existed = false;
        NodeAmount nb = { 0, 4 * PS2M };
        ReserveRequest req = {
                .name = "h", .page_size = PS2M, .node_bytes = &nb, .n_node_bytes = 1, .has_node_bytes = true,
                .lifetime = LIFETIME_EXPLICIT, .uid = 1000, .hold = true,
        };

        hold_start(f);
        r = reserve(f, &req, &e);
        g_assert_nonnull(r);
        g_assert_true(r->held);
        g_assert_cmpstr(r->mount_path, ==, expected);
        g_assert_cmpstr(hold_calls->str, ==, "mount h 2097152 8388608 1000;");
        g_assert_true(g_file_test(expected, G_FILE_TEST_IS_DIR));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 4);
        state = state_text(f);
        g_assert_nonnull(strstr(state, "[Reservation h]"));
        g_assert_nonnull(strstr(state, "Held=yes"));

        /* A retry is the same reservation, no second mount; unheld with the same name is someone else's. */
        g_assert_cmpint(manager_reserve(f->m, &req, &again, &existed, &e), ==, 0);
        g_assert_true(existed && again == r);
        g_assert_cmpstr(hold_calls->str, ==, "mount h 2097152 8388608 1000;");
        req.hold = false;
        g_assert_cmpint(manager_reserve(f->m, &req, &again, &existed, &e), <, 0);
        g_assert_cmpint(e.code, ==, HP_ERROR_RESERVATION_EXISTS);

        /* "." and ".." are names, not path components. */
        r = reserve_held(f, ".", 1, 1, &e);
        g_assert_nonnull(r);
        g_assert_cmpstr(r->mount_path, ==, dot);
        r = reserve_held(f, "..", 1, 1, &e);
        g_assert_nonnull(r);
        g_assert_cmpstr(r->mount_path, ==, dotdot);

        g_string_truncate(hold_calls, 0);
        release(f, "h");
        release(f, ".");
        release(f, "..");
        g_assert_cmpstr(hold_calls->str, ==, "umount h;umount %2e;umount %2e%2e;");
        g_assert_cmpuint(hold_mounts->len, ==, 0);
        g_assert_false(g_file_test(expected, G_FILE_TEST_EXISTS));
        g_assert_cmpuint(nr(f, 0, MB2), ==, 0);
        g_assert_cmpuint(nr(f, 1, MB2), ==, 0);
}

static void test_hold_refused(Fixture *f, gconstpointer data) {
        g_autofree char *path = g_build_filename(f->state_dir, "mounts", "h", NULL), *state = NULL;
        HpError e = {};

        fake_kernel_control(f->fk, "set_nr 0 %d 3", MB2);
        hold_start(f);
        hold_mount_error = -ENOMEM;
        g_assert_null(reserve_held(f, "h", 0, 5, &e));
        hold_mount_error = 0;
        g_assert_cmpint(e.code, ==, HP_ERROR_INSUFFICIENT_PAGES);
        g_test_message("%s", e.message);
        g_assert_cmpstr(hold_calls->str, ==, "mount h 2097152 10485760 1000;");
        /* Nothing left behind: the pool as it was, no reservation, no directory, nothing on disk. */
        g_assert_cmpuint(nr(f, 0, MB2), ==, 3);
        g_assert_null(manager_find_reservation(f->m, "h"));
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 0)->reserved, ==, 0);
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
        state = state_text(f);
        g_assert_null(strstr(state, "[Reservation"));

        /* Another failure is not about pages. */
        hold_mount_error = -EPERM;
        g_assert_null(reserve_held(f, "h", 0, 5, &e));
        hold_mount_error = 0;
        g_assert_cmpint(e.code, ==, HP_ERROR_FAILED);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 3);
}

static void test_hold_reconcile(Fixture *f, gconstpointer data) {
        g_autofree char *stray = g_build_filename(f->state_dir, "mounts", "stray", NULL);
        g_autofree char *g_path = g_build_filename(f->state_dir, "mounts", "g", NULL);
        HpError e = {};
        Reservation *h, *g;

        hold_start(f);
        g_assert_nonnull(reserve_held(f, "h", 0, 4, &e));
        g_assert_nonnull(reserve_held(f, "g", 1, 2, &e));
        manager_stop(f);
        /* Stopping (or dying) leaves the mounts: the kernel keeps holding. */
        g_assert_cmpuint(hold_mounts->len, ==, 2);

        /* Meanwhile: a crash left a mount no reservation holds, and someone unmounted g's. */
        g_assert_cmpint(g_mkdir(stray, 0755), ==, 0);
        g_ptr_array_add(hold_mounts, g_strdup(stray));
        g_assert_cmpint(recording_umount(g_path), ==, 0);
        hold_start(f);
        g_assert_cmpstr(hold_calls->str, ==, "umount stray;mount g 2097152 4194304 1000;");
        g_assert_false(g_file_test(stray, G_FILE_TEST_EXISTS));
        h = manager_find_reservation(f->m, "h");
        g = manager_find_reservation(f->m, "g");
        g_assert_true(h->held && h->mount_path && !h->hold_lost);
        g_assert_true(g->held && g->mount_path && !g->hold_lost);
        g_assert_cmpstr(reservation_state_to_string(g), ==, "active");
        /* The books are exact: each reservation once, the pools as they were. */
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 0)->reserved, ==, 4);
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 1)->reserved, ==, 2);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 4);
        g_assert_cmpuint(nr(f, 1, MB2), ==, 2);
        manager_stop(f);

        /* The mounts cannot be listed: nothing is mounted again (that could reserve the pages twice). */
        hold_list_error = -EIO;
        hold_start(f);
        hold_list_error = 0;
        g_assert_cmpstr(hold_calls->str, ==, "");
        g = manager_find_reservation(f->m, "g");
        g_assert_true(g->held && g->mount_path && !g->hold_lost);
        manager_stop(f);

        /* g's mount gone again, and this time the pool cannot back it: degraded, still on record. */
        g_assert_cmpint(recording_umount(g_path), ==, 0);
        hold_mount_error = -ENOMEM;
        hold_start(f);
        hold_mount_error = 0;
        g = manager_find_reservation(f->m, "g");
        g_assert_nonnull(g);
        g_assert_true(g->hold_lost);
        g_assert_null(g->mount_path);
        g_assert_cmpstr(reservation_state_to_string(g), ==, "degraded");
        g_assert_cmpuint(manager_find_pool(f->m, PS2M, 1)->reserved, ==, 2);
        release(f, "g");
        release(f, "h");
        g_assert_cmpuint(hold_mounts->len, ==, 0);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 0);
        g_assert_cmpuint(nr(f, 1, MB2), ==, 0);
}

/* A state file from before holds (no Held=) loads, unheld; the simulated operations serve a fake kernel. */
static void test_hold_old_state_file(Fixture *f, gconstpointer data) {
        g_autofree char *path = g_build_filename(f->state_dir, "state", NULL);
        Reservation *r;

        fake_kernel_control(f->fk, "set_nr 0 %d 2", MB2);
        g_assert_true(g_file_set_contents(path,
                                          "[State]\nVersion=1\n\n[Pool 2097152 0]\nFloor=0\nLow=2\nHigh=2\n\n"
                                          "[Reservation old]\nPageSize=2097152\nPages=2\nLifetime=explicit\n"
                                          "OwnerUID=0\nCreatedUSec=1\nNode=0 2\n", -1, NULL));
        manager_start(f);
        g_assert_true(f->m->hold_ops == &hold_ops_simulated);
        r = manager_find_reservation(f->m, "old");
        g_assert_nonnull(r);
        g_assert_false(r->held);
        g_assert_null(r->mount_path);
        g_assert_cmpuint(nr(f, 0, MB2), ==, 2);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        if (!fake_kernel_available()) {
                g_printerr("/dev/fuse is not available: skipping\n");
                return 77;
        }
        log_set_max_level(g_test_verbose() ? LOG_DEBUG : LOG_ERR);

#define ADD(name, fn) g_test_add("/manager/" name, Fixture, NULL, setup, fn, teardown)
        ADD("discovery", test_discovery);
        ADD("reserve-release-exact", test_reserve_release_exact);
        ADD("rounding-default-size", test_rounding_and_default_size);
        ADD("floor-adopted", test_floor_adopted);
        ADD("min-pages", test_min_pages);
        ADD("max-pages", test_max_pages);
        ADD("drop-caches", test_drop_caches);
        ADD("partial-then-compaction", test_partial_then_compaction);
        ADD("short-rolls-back", test_short_without_compaction_rolls_back);
        ADD("multi-node-rollback", test_multi_node_rollback);
        ADD("flexible-nodes", test_flexible_nodes);
        ADD("gigantic", test_gigantic);
        ADD("surplus-on-release", test_surplus_on_release);
        ADD("outside-change", test_outside_change);
        ADD("idempotent-and-exists", test_idempotent_and_exists);
        ADD("errors", test_errors);
        ADD("restart-keeps-everything", test_restart_keeps_everything);
        ADD("crash-residue-undone", test_crash_residue_is_undone);
        ADD("change-while-down-adopted", test_change_while_down_is_adopted);
        ADD("pid-lifetime", test_pid_lifetime);
        ADD("pid-gone-across-restart", test_pid_gone_across_restart);
        ADD("adopt-spare", test_adopt_spare);
        ADD("adopt-spare-node-and-min", test_adopt_spare_node_and_min);
        ADD("adopt-changed", test_adopt_changed);
        ADD("adopt-floor-hint", test_adopt_floor_hint);
        ADD("hold", test_hold);
        ADD("hold-refused", test_hold_refused);
        ADD("hold-reconcile", test_hold_reconcile);
        ADD("hold-old-state-file", test_hold_old_state_file);
        return g_test_run();
}
