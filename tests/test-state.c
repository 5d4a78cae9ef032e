/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of src/hugepaged/state.c: save and load round trips, and what a damaged state file leaves. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "manager.h"
#include "state.h"
#include "util.h"

#define M2 (UINT64_C(2) << 20)
#define G1 (UINT64_C(1) << 30)

typedef struct Fixture {
        char *dir;
        Manager *m;     /* by hand: only what manager_save_state() reads */
        State state;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;

        f->dir = g_dir_make_tmp("test-state-XXXXXX", &error);
        g_assert_no_error(error);
        f->m = g_new0(Manager, 1);
        f->m->state_dir = g_strdup(f->dir);
        f->m->state_path = g_build_filename(f->dir, "state", NULL);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        GDir *d;
        const char *name;

        state_done(&f->state);
        for (size_t i = 0; i < f->m->n_reservations; i++)
                reservation_free(f->m->reservations[i]);
        free(f->m->reservations);
        for (size_t i = 0; i < f->m->n_pools; i++)
                g_free(f->m->pools[i]);
        free(f->m->pools);
        g_free(f->m->state_dir);
        g_free(f->m->state_path);
        g_free(f->m);

        d = g_dir_open(f->dir, 0, NULL);
        g_assert_nonnull(d);
        while ((name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(f->dir, name, NULL);
                (void) g_remove(p);
        }
        g_dir_close(d);
        g_assert_cmpint(g_rmdir(f->dir), ==, 0);
        g_free(f->dir);
}

static void add_pool(Fixture *f, uint64_t page_size, uint32_t node, uint64_t floor, uint64_t lo,
                     uint64_t hi) {
        Pool *p = g_new0(Pool, 1);
        *p = (Pool) { .manager = f->m, .page_size = page_size, .node = node, .floor_adopted = floor,
                      .range_lo = lo, .range_hi = hi, .max_pages = UINT64_MAX };
        f->m->pools = realloc(f->m->pools, (f->m->n_pools + 1) * sizeof(Pool *));
        g_assert_nonnull(f->m->pools);
        f->m->pools[f->m->n_pools++] = p;
}

static NodeAmount *node_pages_dup(const NodeAmount *a, size_t n) {
        if (n == 0)
                return NULL;
        NodeAmount *t = malloc(n * sizeof(*t));
        g_assert_nonnull(t);
        memcpy(t, a, n * sizeof(*t));
        return t;
}

/* Takes a template and adds a malloc()ed copy in name order, as the manager keeps them. */
static Reservation *add_reservation(Fixture *f, const Reservation *tmpl) {
        Reservation *r = calloc(1, sizeof(*r));
        size_t i;

        g_assert_nonnull(r);
        *r = *tmpl;
        r->manager = f->m;
        r->pidfd = -EBADF;
        r->name = strdup(tmpl->name);
        r->caller = tmpl->caller ? strdup(tmpl->caller) : NULL;
        r->node_pages = node_pages_dup(tmpl->node_pages, tmpl->n_node_pages);
        r->req_node_pages = node_pages_dup(tmpl->req_node_pages, tmpl->n_req_node_pages);
        if (tmpl->n_req_nodes > 0) {
                r->req_nodes = malloc(tmpl->n_req_nodes * sizeof(uint32_t));
                g_assert_nonnull(r->req_nodes);
                memcpy(r->req_nodes, tmpl->req_nodes, tmpl->n_req_nodes * sizeof(uint32_t));
        }

        f->m->reservations = realloc(f->m->reservations, (f->m->n_reservations + 1) * sizeof(Reservation *));
        g_assert_nonnull(f->m->reservations);
        for (i = f->m->n_reservations; i > 0 && strcmp(f->m->reservations[i - 1]->name, r->name) > 0; i--)
                f->m->reservations[i] = f->m->reservations[i - 1];
        f->m->reservations[i] = r;
        f->m->n_reservations++;
        return r;
}

/* The three lifetimes, with every optional field used somewhere. */
static void add_three(Fixture *f) {
        add_reservation(f, &(Reservation) {
                .name = "alpha",
                .page_size = M2,
                .pages = 30,
                .node_pages = (NodeAmount[]) { { 0, 10 }, { 1, 20 } },
                .n_node_pages = 2,
                .req_nodes = (uint32_t[]) { 0, 1 },
                .n_req_nodes = 2,
                .uid = 0,
                .lifetime = LIFETIME_EXPLICIT,
                .created_usec = UINT64_C(1700000000123456),
        });
        add_reservation(f, &(Reservation) {
                .name = "beta.vm-1:ram@host+x",
                .page_size = G1,
                .pages = 4,
                .node_pages = (NodeAmount[]) { { 1, 4 } },
                .n_node_pages = 1,
                .req_node_pages = (NodeAmount[]) { { 1, 4 } },
                .n_req_node_pages = 1,
                .uid = 107,
                .lifetime = LIFETIME_PID,
                .pid = 4242,
                .pid_starttime = UINT64_C(123456789),
                .created_usec = 1,
        });
        add_reservation(f, &(Reservation) {
                .name = "gamma",
                .page_size = M2,
                .pages = 30,
                .node_pages = (NodeAmount[]) { { 0, 10 }, { 1, 20 } },
                .n_node_pages = 2,
                .uid = 4294967294U,
                .lifetime = LIFETIME_CALLER,
                .caller = ":1.42",
                .created_usec = UINT64_MAX,
        });
}

static void assert_reservation_equal(const StateReservation *a, const Reservation *b) {
        g_assert_cmpstr(a->name, ==, b->name);
        g_assert_cmpuint(a->page_size, ==, b->page_size);
        g_assert_cmpuint(a->pages, ==, b->pages);
        g_assert_cmpuint(a->n_node_pages, ==, b->n_node_pages);
        for (size_t i = 0; i < a->n_node_pages; i++) {
                g_assert_cmpuint(a->node_pages[i].node, ==, b->node_pages[i].node);
                g_assert_cmpuint(a->node_pages[i].amount, ==, b->node_pages[i].amount);
        }
        g_assert_cmpuint(a->n_req_nodes, ==, b->n_req_nodes);
        for (size_t i = 0; i < a->n_req_nodes; i++)
                g_assert_cmpuint(a->req_nodes[i], ==, b->req_nodes[i]);
        g_assert_cmpuint(a->n_req_node_pages, ==, b->n_req_node_pages);
        for (size_t i = 0; i < a->n_req_node_pages; i++) {
                g_assert_cmpuint(a->req_node_pages[i].node, ==, b->req_node_pages[i].node);
                g_assert_cmpuint(a->req_node_pages[i].amount, ==, b->req_node_pages[i].amount);
        }
        g_assert_cmpuint(a->uid, ==, b->uid);
        g_assert_cmpint(a->lifetime, ==, b->lifetime);
        g_assert_cmpuint(a->pid, ==, b->pid);
        g_assert_cmpuint(a->pid_starttime, ==, b->pid_starttime);
        g_assert_cmpstr(a->caller, ==, b->caller);
        g_assert_cmpuint(a->created_usec, ==, b->created_usec);
}

/* Nothing of the runtime side comes from the file: a StateReservation has none (no manager, pidfd, event source,
 * object path or bus track); what the daemon relies on without checking again is that it is self-consistent. */
static void assert_loaded_reservation(const StateReservation *r) {
        uint64_t sum = 0;

        g_assert_true(reservation_name_is_valid(r->name));
        g_assert_cmpuint(r->n_node_pages, >, 0);
        for (size_t i = 0; i < r->n_node_pages; i++)
                sum += r->node_pages[i].amount;
        g_assert_cmpuint(sum, ==, r->pages);
}

static const StateReservation *find_loaded(const State *s, const char *name) {
        for (size_t i = 0; i < s->n_reservations; i++)
                if (streq(s->reservations[i]->name, name))
                        return s->reservations[i];
        return NULL;
}

/* Names of the files in the state directory other than "state", sorted. */
static GPtrArray *other_files(Fixture *f) {
        GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
        GDir *d = g_dir_open(f->dir, 0, NULL);
        const char *name;

        g_assert_nonnull(d);
        while ((name = g_dir_read_name(d)))
                if (!streq(name, "state"))
                        g_ptr_array_add(a, g_strdup(name));
        g_dir_close(d);
        return a;
}

static void assert_no_other_files(Fixture *f) {
        g_autoptr(GPtrArray) a = other_files(f);
        for (size_t i = 0; i < a->len; i++)
                g_test_message("unexpected file %s", (const char *) a->pdata[i]);
        g_assert_cmpuint(a->len, ==, 0);
}

/* The damaged file was moved aside as state.corrupt-USEC: "state" is gone and nothing else is there. */
static void assert_kept_aside(Fixture *f, const char *expect_content) {
        g_autoptr(GPtrArray) a = other_files(f);
        g_autofree char *aside = NULL, *content = NULL;
        uint64_t secs;

        g_assert_false(g_file_test(f->m->state_path, G_FILE_TEST_EXISTS));
        g_assert_cmpuint(a->len, ==, 1);
        g_assert_true(g_str_has_prefix(a->pdata[0], "state.corrupt-"));
        g_assert_cmpint(parse_u64((const char *) a->pdata[0] + strlen("state.corrupt-"), &secs), ==, 0);
        g_assert_cmpuint(secs, >, 1600000000);
        if (expect_content) {
                aside = g_build_filename(f->dir, a->pdata[0], NULL);
                g_assert_true(g_file_get_contents(aside, &content, NULL, NULL));
                g_assert_cmpstr(content, ==, expect_content);
        }
}

static void remove_kept_aside(Fixture *f) {
        g_autoptr(GPtrArray) a = other_files(f);
        for (size_t i = 0; i < a->len; i++) {
                g_autofree char *p = g_build_filename(f->dir, a->pdata[i], NULL);
                g_assert_cmpint(g_remove(p), ==, 0);
        }
}

static void write_state(Fixture *f, const char *content) {
        g_autoptr(GError) error = NULL;
        g_file_set_contents(f->m->state_path, content, -1, &error);
        g_assert_no_error(error);
}

static char *read_state(Fixture *f) {
        char *content = NULL;
        g_assert_true(g_file_get_contents(f->m->state_path, &content, NULL, NULL));
        return content;
}

static void load(Fixture *f) {
        state_done(&f->state);
        g_assert_cmpint(state_load(f->m->state_path, &f->state), ==, 0);
}

/* ---- round trips -------------------------------------------------------------------------------------- */

static void test_round_trip(Fixture *f, gconstpointer data) {
        add_pool(f, M2, 0, 3, 10, 12);
        add_pool(f, G1, 1, 0, 2, 2);
        f->m->pools[1]->spare_adopted = 2;
        add_three(f);

        g_assert_cmpint(manager_save_state(f->m), ==, 0);
        assert_no_other_files(f);
        load(f);
        /* A clean file stays where it is. */
        g_assert_true(g_file_test(f->m->state_path, G_FILE_TEST_IS_REGULAR));
        assert_no_other_files(f);

        g_assert_cmpuint(f->state.n_pools, ==, 2);
        g_assert_cmpuint(f->state.pools[0].page_size, ==, M2);
        g_assert_cmpuint(f->state.pools[0].node, ==, 0);
        g_assert_cmpuint(f->state.pools[0].floor_adopted, ==, 3);
        g_assert_cmpuint(f->state.pools[0].range_lo, ==, 10);
        g_assert_cmpuint(f->state.pools[0].range_hi, ==, 12);
        g_assert_cmpuint(f->state.pools[1].page_size, ==, G1);
        g_assert_cmpuint(f->state.pools[1].node, ==, 1);
        g_assert_cmpuint(f->state.pools[1].floor_adopted, ==, 0);
        g_assert_cmpuint(f->state.pools[1].spare_adopted, ==, 2);
        g_assert_cmpuint(f->state.pools[0].spare_adopted, ==, 0);
        g_assert_cmpuint(f->state.pools[1].range_lo, ==, 2);
        g_assert_cmpuint(f->state.pools[1].range_hi, ==, 2);

        g_assert_cmpuint(f->state.n_reservations, ==, 3);
        for (size_t i = 0; i < 3; i++) {
                assert_reservation_equal(f->state.reservations[i], f->m->reservations[i]);
                assert_loaded_reservation(f->state.reservations[i]);
        }

        /* Saving the same manager again gives the same bytes. */
        g_autofree char *first = read_state(f);
        g_assert_cmpint(manager_save_state(f->m), ==, 0);
        g_autofree char *second = read_state(f);
        g_assert_cmpstr(first, ==, second);
        assert_no_other_files(f);
}

static void test_round_trip_empty(Fixture *f, gconstpointer data) {
        g_assert_cmpint(manager_save_state(f->m), ==, 0);
        assert_no_other_files(f);
        load(f);
        g_assert_cmpuint(f->state.n_pools, ==, 0);
        g_assert_cmpuint(f->state.n_reservations, ==, 0);
        g_assert_true(g_file_test(f->m->state_path, G_FILE_TEST_IS_REGULAR));
        assert_no_other_files(f);
}

/* Names are up to RESERVATION_NAME_MAX characters; each must come back whole, and two that share a long
 * prefix must stay two. */
static void test_round_trip_long_names(Fixture *f, gconstpointer data) {
        char a[RESERVATION_NAME_MAX + 1], b[RESERVATION_NAME_MAX + 1], c[64];

        memset(a, 'x', RESERVATION_NAME_MAX);
        a[RESERVATION_NAME_MAX] = '\0';
        memcpy(b, a, sizeof(b));
        b[RESERVATION_NAME_MAX - 1] = 'y';
        memset(c, 'z', sizeof(c) - 1);
        c[sizeof(c) - 1] = '\0';
        g_assert_true(reservation_name_is_valid(a));

        for (size_t i = 0; i < 3; i++)
                add_reservation(f, &(Reservation) {
                        .name = i == 0 ? a : i == 1 ? b : c,
                        .page_size = M2,
                        .pages = 1,
                        .node_pages = (NodeAmount[]) { { 0, 1 } },
                        .n_node_pages = 1,
                        .lifetime = LIFETIME_EXPLICIT,
                });
        g_assert_cmpint(manager_save_state(f->m), ==, 0);
        load(f);
        assert_no_other_files(f);
        g_assert_cmpuint(f->state.n_reservations, ==, 3);
        for (size_t i = 0; i < 3; i++)
                assert_reservation_equal(f->state.reservations[i], f->m->reservations[i]);
}

static void test_save_replaces(Fixture *f, gconstpointer data) {
        add_three(f);
        g_assert_cmpint(manager_save_state(f->m), ==, 0);

        /* Release one and save again: the file says exactly what the manager holds now. */
        reservation_free(f->m->reservations[0]);
        memmove(f->m->reservations, f->m->reservations + 1, 2 * sizeof(Reservation *));
        f->m->n_reservations = 2;
        g_assert_cmpint(manager_save_state(f->m), ==, 0);
        assert_no_other_files(f);
        load(f);
        g_assert_cmpuint(f->state.n_reservations, ==, 2);
        assert_reservation_equal(f->state.reservations[0], f->m->reservations[0]);
        assert_reservation_equal(f->state.reservations[1], f->m->reservations[1]);
}

static void test_save_fails(Fixture *f, gconstpointer data) {
        if (g_test_subprocess()) {
                g_free(f->m->state_dir);
                f->m->state_dir = g_build_filename(f->dir, "missing", NULL);
                g_assert_cmpint(manager_save_state(f->m), ==, -ENOENT);
                assert_no_other_files(f);
                return;
        }
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        g_test_trap_assert_stderr("*cannot create a temporary state file in*missing*");
}

/* ---- loading what was not written by a healthy daemon ------------------------------------------------ */

static void test_missing(Fixture *f, gconstpointer data) {
        /* Whatever was in *ret before is overwritten, not merged or freed. */
        f->state = (State) { .pools = (StatePool *) (uintptr_t) 0x1, .n_pools = 99 };
        g_assert_cmpint(state_load(f->m->state_path, &f->state), ==, 0);
        g_assert_cmpuint(f->state.n_pools, ==, 0);
        g_assert_null(f->state.pools);
        g_assert_cmpuint(f->state.n_reservations, ==, 0);
        g_assert_null(f->state.reservations);
        assert_no_other_files(f);
        g_assert_false(g_file_test(f->m->state_path, G_FILE_TEST_EXISTS));
}

/* Cut the file at every byte inside the last reservation: the complete ones survive, the cut one is dropped
 * and the file is kept aside. */
static void test_truncated(Fixture *f, gconstpointer data) {
        g_autofree char *full = NULL;
        const char *gamma;
        size_t len, start;

        add_pool(f, M2, 0, 3, 10, 12);
        add_three(f);
        g_assert_cmpint(manager_save_state(f->m), ==, 0);
        full = read_state(f);
        len = strlen(full);
        gamma = strstr(full, "[Reservation gamma]");
        g_assert_nonnull(gamma);
        start = (size_t) (gamma - full);
        /* gamma is the last section and ends "Node=1 20\n": only the whole last number makes it complete. */
        g_assert_true(g_str_has_suffix(full, "\nNode=1 20\n"));

        for (size_t cut = start + 1; cut <= len - 2; cut++) {
                g_autofree char *part = g_strndup(full, cut);

                g_test_message("cut at %zu: ...%s", cut, part + start);
                write_state(f, part);
                load(f);
                g_assert_cmpuint(f->state.n_pools, ==, 1);
                g_assert_cmpuint(f->state.n_reservations, ==, 2);
                assert_reservation_equal(f->state.reservations[0], f->m->reservations[0]);
                assert_reservation_equal(f->state.reservations[1], f->m->reservations[1]);
                g_assert_null(find_loaded(&f->state, "gamma"));
                assert_kept_aside(f, part);
                remove_kept_aside(f);
        }

        /* Without only its final newline the file is whole. */
        g_autofree char *whole = g_strndup(full, len - 1);
        write_state(f, whole);
        load(f);
        g_assert_cmpuint(f->state.n_reservations, ==, 3);
        assert_no_other_files(f);
}

typedef struct DamageCase {
        const char *name;
        const char *content;
        const char *const *survivors; /* NULL-terminated */
        size_t n_pools;
        bool kept_aside;
} DamageCase;

#define HEADER "[State]\nVersion=1\n"
#define RES(name) "\n[Reservation " name "]\nPageSize=2097152\nPages=3\nLifetime=explicit\nOwnerUID=0\n" \
                  "CreatedUSec=5\nNode=0 1\nNode=1 2\n"
#define POOL "\n[Pool 2097152 0]\nFloor=1\nLow=2\nHigh=3\n"

static const char *const ab[] = { "a", "b", NULL };
static const char *const a_only[] = { "a", NULL };
static const char *const b_only[] = { "b", NULL };
static const char *const none[] = { NULL };

static const DamageCase damage_cases[] = {
        { "clean", HEADER POOL RES("a") RES("b"), ab, 1, false },
        { "comments-and-blank-lines", "# written by hand\n" HEADER "\n; hm\n" POOL RES("a") "\n\n" RES("b"),
          ab, 1, false },
        { "garbage-line-between", HEADER RES("a") "this is not a key\n" RES("b"), ab, 0, true },
        { "garbage-line-inside",
          HEADER "\n[Reservation a]\nPageSize=2097152\nPages=3\n%%garbage%%\nLifetime=explicit\n"
                 "OwnerUID=0\nCreatedUSec=5\nNode=0 1\nNode=1 2\n" RES("b"),
          ab, 0, true },
        /* A line with '=' is a key of the section it is in, and a bad key sinks that reservation. */
        { "binary-garbage", HEADER RES("a") "\x01\x02\xff\xfe=\x80\n" RES("b"), b_only, 0, true },
        { "unknown-section", HEADER RES("a") "\n[Frobnicate]\nX=1\n" RES("b"), ab, 0, true },
        { "unknown-key",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=3\nLifetime=explicit\n"
                          "OwnerUID=0\nColour=blue\nNode=0 1\nNode=1 2\n",
          a_only, 0, true },
        { "node-pages-dont-add-up",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=4\nLifetime=explicit\n"
                          "OwnerUID=0\nNode=0 1\nNode=1 2\n",
          a_only, 0, true },
        { "node-pages-too-many",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=2\nLifetime=explicit\n"
                          "OwnerUID=0\nNode=0 1\nNode=1 2\n",
          a_only, 0, true },
        { "node-twice",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=2\nLifetime=explicit\n"
                          "OwnerUID=0\nNode=0 1\nNode=0 1\n",
          a_only, 0, true },
        { "node-zero-pages",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=2\nLifetime=explicit\n"
                          "OwnerUID=0\nNode=0 0\nNode=1 2\n",
          a_only, 0, true },
        { "node-1024",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=2\nLifetime=explicit\n"
                          "OwnerUID=0\nNode=1024 2\n",
          a_only, 0, true },
        { "no-nodes",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=2\nLifetime=explicit\nOwnerUID=0\n",
          a_only, 0, true },
        { "zero-pages",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=0\nLifetime=explicit\nOwnerUID=0\n",
          a_only, 0, true },
        { "no-page-size",
          HEADER RES("a") "\n[Reservation b]\nPages=2\nLifetime=explicit\nOwnerUID=0\nNode=0 2\n",
          a_only, 0, true },
        { "no-lifetime",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=2\nOwnerUID=0\nNode=0 2\n",
          a_only, 0, true },
        { "bad-lifetime",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=2\nLifetime=forever\n"
                          "OwnerUID=0\nNode=0 2\n",
          a_only, 0, true },
        { "pid-without-pid",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=2\nLifetime=pid\n"
                          "OwnerUID=0\nNode=0 2\n",
          a_only, 0, true },
        { "caller-without-caller",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=2\nLifetime=caller\n"
                          "OwnerUID=0\nNode=0 2\n",
          a_only, 0, true },
        { "caller-not-unique-name",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=2\nLifetime=caller\n"
                          "OwnerUID=0\nCaller=org.evil\nNode=0 2\n",
          a_only, 0, true },
        { "uid-overflow",
          HEADER RES("a") "\n[Reservation b]\nPageSize=2097152\nPages=2\nLifetime=explicit\n"
                          "OwnerUID=4294967296\nNode=0 2\n",
          a_only, 0, true },
        { "invalid-name-slash", HEADER RES("a") RES("../etc/passwd") RES("b"), ab, 0, true },
        { "invalid-name-space", HEADER RES("a") RES("b c") RES("b"), ab, 0, true },
        /* 129 characters */
        { "invalid-name-too-long",
          HEADER RES("a") RES("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx") RES("b"),
          ab, 0, true },
        { "invalid-name-empty",
          HEADER RES("a") "\n[Reservation ]\nPageSize=2097152\nPages=3\nLifetime=explicit\n"
                          "OwnerUID=0\nNode=0 3\n" RES("b"),
          ab, 0, true },
        /* Kept aside; what is loaded from it is not specified here. */
        { "wrong-version", "[State]\nVersion=2\n" RES("a"), NULL, 0, true },
        { "no-version", RES("a"), NULL, 0, true },
        { "duplicate", HEADER RES("a") RES("b") RES("a"), ab, 0, true },
        { "duplicate-adjacent", HEADER RES("a") RES("a") RES("b"), ab, 0, true },
        { "empty-reservation-section", HEADER RES("a") "\n[Reservation c]\n" RES("b"), ab, 0, true },
        { "bad-pool-header", HEADER "\n[Pool 2M 0]\nFloor=1\n" POOL RES("a"), a_only, 1, true },
        /* Pool entries are all or nothing: a Floor lost to damage must not read as 0. */
        { "bad-pool-key", HEADER "\n[Pool 2097152 1]\nFloor=1\nLow=2\nHigh=3\nDepth=9\n" POOL RES("a"),
          a_only, 1, true },
        { "bad-pool-spare", HEADER "\n[Pool 2097152 1]\nFloor=0\nSpare=-1\nLow=2\nHigh=3\n" POOL RES("a"),
          a_only, 1, true },
        { "bad-pool-floor", HEADER "\n[Pool 2097152 1]\nFloor=1x\nLow=2\nHigh=3\n" POOL RES("a"),
          a_only, 1, true },
        { "pool-without-floor", HEADER "\n[Pool 2097152 1]\nLow=2\nHigh=3\n" POOL RES("a"),
          a_only, 1, true },
        { "pool-without-high", HEADER POOL "\n[Pool 2097152 1]\nFloor=1\nLow=2\n", none, 1, true },
        { "pool-low-above-high", HEADER "\n[Pool 2097152 1]\nFloor=1\nLow=3\nHigh=2\n" POOL, none, 1, true },
        { "pool-twice", HEADER POOL "\n[Pool 2097152 0]\nFloor=7\nLow=7\nHigh=7\n", none, 1, true },
        { "bad-pool-node", HEADER "\n[Pool 2097152 1024]\nFloor=1\n" RES("a"), a_only, 0, true },
        { "empty-file", "", none, 0, true },
};

static void test_damage(Fixture *f, gconstpointer data) {
        const DamageCase *c = data;
        size_t n = 0;

        write_state(f, c->content);
        load(f);
        if (c->survivors) {
                for (const char *const *s = c->survivors; *s; s++, n++) {
                        const StateReservation *r = find_loaded(&f->state, *s);
                        g_test_message("expecting reservation %s", *s);
                        g_assert_nonnull(r);
                        assert_loaded_reservation(r);
                }
                g_assert_cmpuint(f->state.n_reservations, ==, n);
        }
        g_assert_cmpuint(f->state.n_pools, ==, c->n_pools);
        /* Where a pool survives, it is the good one of POOL. */
        for (size_t i = 0; i < f->state.n_pools; i++) {
                g_assert_cmpuint(f->state.pools[i].page_size, ==, M2);
                g_assert_cmpuint(f->state.pools[i].node, ==, 0);
                g_assert_cmpuint(f->state.pools[i].floor_adopted, ==, 1);
                g_assert_cmpuint(f->state.pools[i].range_lo, ==, 2);
                g_assert_cmpuint(f->state.pools[i].range_hi, ==, 3);
        }
        if (c->kept_aside)
                assert_kept_aside(f, c->content);
        else {
                g_assert_true(g_file_test(f->m->state_path, G_FILE_TEST_IS_REGULAR));
                assert_no_other_files(f);
        }
}

/* The first of two copies is the one kept, whole. */
static void test_duplicate_keeps_first(Fixture *f, gconstpointer data) {
        write_state(f, HEADER "\n[Reservation a]\nPageSize=2097152\nPages=3\nLifetime=explicit\nOwnerUID=7\n"
                              "Node=0 3\n"
                              "\n[Reservation a]\nPageSize=1073741824\nPages=1\nLifetime=explicit\n"
                              "OwnerUID=8\n"
                              "Node=1 1\n");
        load(f);
        g_assert_cmpuint(f->state.n_reservations, ==, 1);
        g_assert_cmpuint(f->state.reservations[0]->uid, ==, 7);
        g_assert_cmpuint(f->state.reservations[0]->page_size, ==, M2);
        assert_kept_aside(f, NULL);
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_unsetenv("JOURNAL_STREAM");

        ADD("/state/round-trip", test_round_trip);
        ADD("/state/round-trip/empty", test_round_trip_empty);
        ADD("/state/round-trip/long-names", test_round_trip_long_names);
        ADD("/state/save-replaces", test_save_replaces);
        ADD("/state/save-fails", test_save_fails);
        ADD("/state/missing", test_missing);
        ADD("/state/truncated", test_truncated);
        ADD("/state/duplicate-keeps-first", test_duplicate_keeps_first);
        for (size_t i = 0; i < ELEMENTSOF(damage_cases); i++) {
                g_autofree char *path = g_strconcat("/state/damage/", damage_cases[i].name, NULL);
                g_test_add(path, Fixture, &damage_cases[i], fixture_setup, test_damage, fixture_teardown);
        }

        return g_test_run();
}
