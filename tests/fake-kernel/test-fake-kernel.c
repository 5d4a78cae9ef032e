/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-fake-kernel: checks that the fake-kernel model behaves like the kernel, through real file I/O. */

#include "fake-kernel-launch.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NODE_HP "sys/devices/system/node/node%d/hugepages/hugepages-%ukB/%s"
#define GLOBAL_HP "sys/kernel/mm/hugepages/hugepages-%ukB/%s"
#define NODE0_2M "sys/devices/system/node/node0/hugepages/hugepages-2048kB"
#define GLOBAL_2M "sys/kernel/mm/hugepages/hugepages-2048kB"

typedef struct {
        FakeKernel *fk;
} Fixture;

static const char *const args_default[] = { NULL };
static const char *const args_two_nodes[] = { "--nodes=0,1", NULL };
static const char *const args_gaps[] = { "--nodes=0,2,5", NULL };
static const char *const args_range[] = { "--nodes=0-2,5", NULL };
static const char *const args_memoryless[] = { "--nodes=0,1", "--memoryless=1", NULL };
static const char *const args_default_1g[] = { "--default-size=1048576", "--capacity-1g=4", NULL };

static void setup(Fixture *f, gconstpointer args)
{
        f->fk = fake_kernel_start(args);
}

static void teardown(Fixture *f, gconstpointer args)
{
        fake_kernel_stop(f->fk);
}

static char *node_file(int node, unsigned size_kb, const char *name)
{
        return g_strdup_printf(NODE_HP, node, size_kb, name);
}

static char *global_file(unsigned size_kb, const char *name)
{
        return g_strdup_printf(GLOBAL_HP, size_kb, name);
}

/* Reads a counter file and insists on the kernel's exact "N\n" format. */
static guint64 read_u64(FakeKernel *fk, const char *relpath)
{
        g_autofree char *s = fake_kernel_read(fk, relpath);
        char *end;
        guint64 v;

        if (!s)
                g_error("reading %s: %s", relpath, g_strerror(errno));
        v = g_ascii_strtoull(s, &end, 10);
        g_assert_true(end != s);
        g_assert_cmpstr(end, ==, "\n");
        return v;
}

static guint64 read_node(FakeKernel *fk, int node, unsigned size_kb, const char *name)
{
        g_autofree char *p = node_file(node, size_kb, name);

        return read_u64(fk, p);
}

static guint64 read_global(FakeKernel *fk, unsigned size_kb, const char *name)
{
        g_autofree char *p = global_file(size_kb, name);

        return read_u64(fk, p);
}

static int write_node(FakeKernel *fk, int node, unsigned size_kb, const char *name, const char *value)
{
        g_autofree char *p = node_file(node, size_kb, name);

        return fake_kernel_write(fk, p, value);
}

static int write_global(FakeKernel *fk, unsigned size_kb, const char *name, const char *value)
{
        g_autofree char *p = global_file(size_kb, name);

        return fake_kernel_write(fk, p, value);
}

static gboolean exists(FakeKernel *fk, const char *relpath)
{
        g_autofree char *p = fake_kernel_path(fk, relpath);
        struct stat st;

        return stat(p, &st) == 0;
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorted names in a directory, joined with spaces, for one-line comparisons. */
static char *list_dir(FakeKernel *fk, const char *relpath)
{
        g_autofree char *p = fake_kernel_path(fk, relpath);
        g_autoptr(GError) error = NULL;
        g_autoptr(GDir) dir = g_dir_open(p, 0, &error);
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        const char *name;

        g_assert_no_error(error);
        while ((name = g_dir_read_name(dir)))
                g_ptr_array_add(names, g_strdup(name));
        g_ptr_array_sort(names, cmp_names);
        g_ptr_array_add(names, NULL);
        return g_strjoinv(" ", (char **) names->pdata);
}

static mode_t file_mode(FakeKernel *fk, const char *relpath)
{
        g_autofree char *p = fake_kernel_path(fk, relpath);
        struct stat st;

        g_assert_cmpint(stat(p, &st), ==, 0);
        return st.st_mode;
}

static void test_layout(Fixture *f, gconstpointer args)
{
        g_autofree char *top = list_dir(f->fk, "sys/kernel/mm/hugepages");
        g_autofree char *global = list_dir(f->fk, "sys/kernel/mm/hugepages/hugepages-2048kB");
        g_autofree char *pernode = list_dir(f->fk, NODE0_2M);
        g_autofree char *node0 = list_dir(f->fk, "sys/devices/system/node/node0");
        g_autofree char *root = list_dir(f->fk, ".");

        g_assert_cmpstr(top, ==, "hugepages-1048576kB hugepages-2048kB");
        g_assert_cmpstr(global, ==, "free_hugepages nr_hugepages nr_hugepages_mempolicy "
                                    "nr_overcommit_hugepages resv_hugepages surplus_hugepages");
        g_assert_cmpstr(pernode, ==, "free_hugepages nr_hugepages surplus_hugepages");
        g_assert_cmpstr(node0, ==, "compact hugepages meminfo");
        g_assert_cmpstr(root, ==, "fake-kernel proc sys");

        g_assert_true(S_ISDIR(file_mode(f->fk, "sys/devices/system/node/node0/hugepages")));
        g_assert_cmpint(file_mode(f->fk, GLOBAL_2M "/nr_hugepages"), ==, S_IFREG | 0644);
        g_assert_cmpint(file_mode(f->fk, "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"), ==,
                        S_IFREG | 0444);
        g_assert_cmpint(file_mode(f->fk, "sys/devices/system/node/node0/compact"), ==, S_IFREG | 0200);
        g_assert_cmpint(file_mode(f->fk, "proc/sys/vm/compact_memory"), ==, S_IFREG | 0200);
        g_assert_false(exists(f->fk, "sys/devices/system/node/node1"));
        g_assert_false(exists(f->fk, "sys/kernel/mm/hugepages/hugepages-4kB"));
        g_assert_false(exists(f->fk, "sys/devices/system/node/node0/hugepages/hugepages-2048kB/"
                                     "nr_overcommit_hugepages"));
        g_assert_false(exists(f->fk, NODE0_2M "/resv_hugepages"));

        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 1048576, "nr_hugepages"), ==, 0);
}

/* The key kernel behaviour: a write asking for more than fits succeeds and reads back short. */
static void test_partial_allocation(Fixture *f, gconstpointer args)
{
        fake_kernel_control(f->fk, "capacity 0 2048 100");
        fake_kernel_control(f->fk, "blocked 0 2048 30");

        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "100\n"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 70);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "free_hugepages"), ==, 70);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "surplus_hugepages"), ==, 0);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "writes"), ==, 1);

        /* Asking again gets nothing more, and still succeeds. */
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "100"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 70);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "writes"), ==, 2);

        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "20\n"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 20);

        /* Sizes are independent pools: 1 GiB capacity defaults to 8. */
        g_assert_cmpint(write_node(f->fk, 0, 1048576, "nr_hugepages", "50"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 1048576, "nr_hugepages"), ==, 8);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 20);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 1048576, "capacity"), ==, 8);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "capacity"), ==, 100);
}

static void test_compact_node(Fixture *f, gconstpointer args)
{
        fake_kernel_control(f->fk, "capacity 0 2048 100");
        fake_kernel_control(f->fk, "blocked 0 2048 40");
        fake_kernel_control(f->fk, "blocked 1 2048 40");
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "100"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 60);

        /* compact is write-only, like sysfs: even root can't open it for reading. */
        g_assert_null(fake_kernel_read(f->fk, "sys/devices/system/node/node0/compact"));
        g_assert_cmpint(errno, ==, EACCES);

        g_assert_cmpint(fake_kernel_write(f->fk, "sys/devices/system/node/node0/compact", "1\n"), ==, 0);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "compactions 0"), ==, 1);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "compactions 1"), ==, 0);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "blocked"), ==, 0);
        g_assert_cmpuint(fake_kernel_get(f->fk, 1, 2048, "blocked"), ==, 40);
        /* Compaction itself allocates nothing... */
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 60);
        /* ...but the retry now gets everything. */
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "100"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 100);

        /* With a step, each compaction frees only that many blocked pages. */
        fake_kernel_control(f->fk, "compact_step 15");
        fake_kernel_control(f->fk, "blocked 0 2048 40");
        g_assert_cmpint(fake_kernel_write(f->fk, "sys/devices/system/node/node0/compact", "1"), ==, 0);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "blocked"), ==, 25);
        g_assert_cmpint(fake_kernel_write(f->fk, "sys/devices/system/node/node0/compact", "1"), ==, 0);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "blocked"), ==, 10);
        g_assert_cmpint(fake_kernel_write(f->fk, "sys/devices/system/node/node0/compact", "1"), ==, 0);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "blocked"), ==, 0);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "compactions 0"), ==, 4);
}

static void test_compact_memory(Fixture *f, gconstpointer args)
{
        for (int n = 0; n < 2; n++) {
                fake_kernel_control(f->fk, "capacity %d 2048 50", n);
                fake_kernel_control(f->fk, "blocked %d 2048 20", n);
                fake_kernel_control(f->fk, "blocked %d 1048576 8", n);
        }
        g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages", "100"), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 60);
        g_assert_cmpint(write_node(f->fk, 1, 1048576, "nr_hugepages", "1"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 1, 1048576, "nr_hugepages"), ==, 0);

        g_assert_cmpint(fake_kernel_write(f->fk, "proc/sys/vm/compact_memory", "1\n"), ==, 0);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "compact_memory"), ==, 1);
        for (int n = 0; n < 2; n++) {
                g_assert_cmpuint(fake_kernel_get(f->fk, n, 2048, "blocked"), ==, 0);
                g_assert_cmpuint(fake_kernel_get(f->fk, n, 1048576, "blocked"), ==, 0);
                g_assert_cmpuint(fake_kernel_get_global(f->fk, n == 0 ? "compactions 0" : "compactions 1"),
                                 ==, 1);
        }
        g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages", "100"), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 100);
        g_assert_cmpint(write_node(f->fk, 1, 1048576, "nr_hugepages", "1"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 1, 1048576, "nr_hugepages"), ==, 1);
}

static void test_surplus(Fixture *f, gconstpointer args)
{
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "10"), ==, 0);
        fake_kernel_control(f->fk, "use 0 2048 8");
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "free_hugepages"), ==, 2);

        /* Shrinking below what is in use keeps the used pages, as surplus. */
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "3"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 8);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "surplus_hugepages"), ==, 5);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "free_hugepages"), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 2048, "surplus_hugepages"), ==, 5);

        /* Releasing used pages frees surplus ones first. */
        fake_kernel_control(f->fk, "use 0 2048 6");
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 6);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "surplus_hugepages"), ==, 3);
        fake_kernel_control(f->fk, "use 0 2048 0");
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 3);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "surplus_hugepages"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "free_hugepages"), ==, 3);

        /* Growing converts surplus back to persistent before allocating anything. */
        fake_kernel_control(f->fk, "capacity 0 2048 10");
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "10"), ==, 0);
        fake_kernel_control(f->fk, "use 0 2048 8");
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "3"), ==, 0);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "surplus"), ==, 5);
        fake_kernel_control(f->fk, "capacity 0 2048 0");
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "6"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 8);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "surplus_hugepages"), ==, 2);
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "12"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 8);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "surplus_hugepages"), ==, 0);

        /* in_use can't exceed the pool, and set_nr can't drop pages someone maps. */
        g_assert_cmpint(fake_kernel_control_try(f->fk, "use 0 2048 9"), ==, -EINVAL);
        g_assert_cmpint(fake_kernel_control_try(f->fk, "set_nr 0 2048 7"), ==, -EINVAL);
        fake_kernel_control(f->fk, "set_nr 0 2048 30");
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 30);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "free_hugepages"), ==, 22);
}

static void test_overcommit(Fixture *f, gconstpointer args)
{
        g_assert_cmpint(write_global(f->fk, 1048576, "nr_overcommit_hugepages", "4\n"), ==, -EINVAL);
        g_assert_cmpuint(read_global(f->fk, 1048576, "nr_overcommit_hugepages"), ==, 0);

        g_assert_cmpint(write_global(f->fk, 2048, "nr_overcommit_hugepages", "64\n"), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_overcommit_hugepages"), ==, 64);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "overcommit 2048"), ==, 64);
        g_assert_cmpint(write_global(f->fk, 2048, "nr_overcommit_hugepages", "x"), ==, -EINVAL);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_overcommit_hugepages"), ==, 64);

        fake_kernel_control(f->fk, "resv 2048 7");
        g_assert_cmpuint(read_global(f->fk, 2048, "resv_hugepages"), ==, 7);
        g_assert_cmpuint(read_global(f->fk, 1048576, "resv_hugepages"), ==, 0);
}

static void test_global(Fixture *f, gconstpointer args)
{
        /* The kernel interleaves over nodes with memory. */
        g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages", "10\n"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 5);
        g_assert_cmpuint(read_node(f->fk, 1, 2048, "nr_hugepages"), ==, 5);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 10);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "global_writes 2048"), ==, 1);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "writes"), ==, 0);

        /* One page at a time still alternates between nodes. */
        g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages", "11"), ==, 0);
        g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages", "12"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 6);
        g_assert_cmpuint(read_node(f->fk, 1, 2048, "nr_hugepages"), ==, 6);

        /* Per-node writes show up in the sums. */
        g_assert_cmpint(write_node(f->fk, 1, 2048, "nr_hugepages", "20"), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 26);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages_mempolicy"), ==, 26);
        fake_kernel_control(f->fk, "use 1 2048 5");
        fake_kernel_control(f->fk, "use 0 2048 1");
        g_assert_cmpuint(read_global(f->fk, 2048, "free_hugepages"), ==, 20);

        /* A node that runs out leaves the rest to the others. */
        fake_kernel_control(f->fk, "capacity 0 2048 10");
        g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages", "40"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 10);
        g_assert_cmpuint(read_node(f->fk, 1, 2048, "nr_hugepages"), ==, 30);

        /* Shrinking frees free pages and turns what is in use into surplus. */
        g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages_mempolicy", "2"), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 6);
        g_assert_cmpuint(read_global(f->fk, 2048, "surplus_hugepages"), ==, 4);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 1);
        g_assert_cmpuint(read_node(f->fk, 1, 2048, "nr_hugepages"), ==, 5);
        g_assert_cmpuint(read_global(f->fk, 2048, "free_hugepages"), ==, 0);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "global_writes 2048"), ==, 5);

        g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages", "0"), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 6);
        fake_kernel_control(f->fk, "use 0 2048 0");
        fake_kernel_control(f->fk, "use 1 2048 0");
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 2048, "surplus_hugepages"), ==, 0);
}

static void test_node_gaps(Fixture *f, gconstpointer args)
{
        g_autofree char *nodes = list_dir(f->fk, "sys/devices/system/node");
        g_autofree char *has_memory = fake_kernel_read(f->fk, "sys/devices/system/node/has_memory");
        g_autofree char *online = fake_kernel_read(f->fk, "sys/devices/system/node/online");
        g_autofree char *normal = fake_kernel_read(f->fk, "sys/devices/system/node/has_normal_memory");

        g_assert_cmpstr(nodes, ==, "has_cpu has_memory has_normal_memory node0 node2 node5 online possible");
        g_assert_cmpstr(has_memory, ==, "0,2,5\n");
        g_assert_cmpstr(online, ==, "0,2,5\n");
        g_assert_cmpstr(normal, ==, "0,2,5\n");
        g_assert_false(exists(f->fk, "sys/devices/system/node/node1"));

        g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages", "9"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 3);
        g_assert_cmpuint(read_node(f->fk, 2, 2048, "nr_hugepages"), ==, 3);
        g_assert_cmpuint(read_node(f->fk, 5, 2048, "nr_hugepages"), ==, 3);
        g_assert_cmpint(write_node(f->fk, 5, 2048, "nr_hugepages", "7"), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 13);
}

static void test_node_ranges(Fixture *f, gconstpointer args)
{
        g_autofree char *has_memory = fake_kernel_read(f->fk, "sys/devices/system/node/has_memory");
        g_autofree char *possible = fake_kernel_read(f->fk, "sys/devices/system/node/possible");

        g_assert_cmpstr(has_memory, ==, "0-2,5\n");
        g_assert_cmpstr(possible, ==, "0-2,5\n");
}

static void test_memoryless(Fixture *f, gconstpointer args)
{
        g_autofree char *has_memory = fake_kernel_read(f->fk, "sys/devices/system/node/has_memory");
        g_autofree char *online = fake_kernel_read(f->fk, "sys/devices/system/node/online");
        g_autofree char *has_cpu = fake_kernel_read(f->fk, "sys/devices/system/node/has_cpu");
        g_autofree char *node1 = list_dir(f->fk, "sys/devices/system/node/node1");
        g_autofree char *meminfo = fake_kernel_read(f->fk, "sys/devices/system/node/node1/meminfo");

        g_assert_cmpstr(has_memory, ==, "0\n");
        g_assert_cmpstr(online, ==, "0-1\n");
        g_assert_cmpstr(has_cpu, ==, "0-1\n");
        g_assert_cmpstr(node1, ==, "compact meminfo");
        g_assert_false(exists(f->fk, "sys/devices/system/node/node1/hugepages"));
        g_assert_nonnull(strstr(meminfo, "Node 1 MemTotal:              0 kB\n"));

        /* Only nodes with memory take part in the global pool. */
        g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages", "10"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 10);
        g_assert_cmpint(fake_kernel_control_try(f->fk, "use 1 2048 0"), ==, -ENOENT);
        g_assert_cmpuint(fake_kernel_get(f->fk, 1, 2048, "memory"), ==, 0);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "memory"), ==, 1);
}

static void test_hotplug(Fixture *f, gconstpointer args)
{
        g_autofree char *path = NULL;
        g_autofree char *s = NULL;
        int fd;

        fake_kernel_control(f->fk, "add_node 3");
        g_assert_cmpint(fake_kernel_control_try(f->fk, "add_node 3"), ==, -EEXIST);
        s = fake_kernel_read(f->fk, "sys/devices/system/node/has_memory");
        g_assert_cmpstr(s, ==, "0,3\n");
        g_clear_pointer(&s, g_free);
        g_assert_cmpint(write_node(f->fk, 3, 2048, "nr_hugepages", "5000"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 3, 2048, "nr_hugepages"), ==, 4096);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 4096);

        /* A node going away under an open file: the kernel answers ENODEV. */
        {
                g_autofree char *rel = node_file(3, 2048, "nr_hugepages");

                path = fake_kernel_path(f->fk, rel);
        }
        fd = open(path, O_WRONLY);
        g_assert_cmpint(fd, >=, 0);
        fake_kernel_control(f->fk, "remove_node 3");
        g_assert_cmpint(write(fd, "1", 1), ==, -1);
        g_assert_cmpint(errno, ==, ENODEV);
        close(fd);
        g_assert_false(exists(f->fk, "sys/devices/system/node/node3"));
        g_assert_cmpint(write_node(f->fk, 3, 2048, "nr_hugepages", "1"), ==, -ENOENT);
        s = fake_kernel_read(f->fk, "sys/devices/system/node/online");
        g_assert_cmpstr(s, ==, "0\n");
        g_clear_pointer(&s, g_free);
        s = fake_kernel_read(f->fk, "sys/devices/system/node/possible");
        g_assert_cmpstr(s, ==, "0,3\n");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 0);
        g_assert_cmpint(fake_kernel_control_try(f->fk, "remove_node 3"), ==, -ENOENT);

        /* Memory leaving a node takes its pool with it; the node directory stays. */
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "4"), ==, 0);
        fake_kernel_control(f->fk, "set_memory 0 0");
        g_assert_true(exists(f->fk, "sys/devices/system/node/node0/compact"));
        g_assert_false(exists(f->fk, "sys/devices/system/node/node0/hugepages"));
        s = fake_kernel_read(f->fk, "sys/devices/system/node/has_memory");
        g_assert_cmpstr(s, ==, "\n");
        g_clear_pointer(&s, g_free);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 0);
        fake_kernel_control(f->fk, "set_memory 0 1");
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 0);
        s = fake_kernel_read(f->fk, "sys/devices/system/node/has_memory");
        g_assert_cmpstr(s, ==, "0\n");
}

static void test_garbage(Fixture *f, gconstpointer args)
{
        static const char *const bad[] = {
                "\n", "abc", "12abc", "-1", " 5", "5 ", "5\n\n", "0x10", "+5", "1.5",
                "99999999999999999999999",
        };
        static const char *const bad_control[] = {
                "\n", " ", "bogus", "capacity 0 2048", "capacity 0 2048 1 2", "capacity x 2048 1",
                "use 0 2048 -1", "set_memory 0 2", "delay_ms", "fail 0 2048 5000",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autofree char *escaped = g_strescape(bad[i], NULL);

                g_test_message("writing \"%s\"", escaped);
                g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", bad[i]), ==, -EINVAL);
                g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages", bad[i]), ==, -EINVAL);
        }
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 0);
        /* A zero-length write() never reaches the server (nor a sysfs store()), so it "succeeds". */
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", ""), ==, 0);
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "7\n"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 7);

        for (size_t i = 0; i < G_N_ELEMENTS(bad_control); i++) {
                g_autofree char *escaped = g_strescape(bad_control[i], NULL);

                g_test_message("control \"%s\"", escaped);
                g_assert_cmpint(fake_kernel_control_try(f->fk, "%s", bad_control[i]), ==, -EINVAL);
        }
        g_assert_cmpint(fake_kernel_control_try(f->fk, "capacity 9 2048 1"), ==, -ENOENT);
        g_assert_cmpint(fake_kernel_control_try(f->fk, "capacity 0 4096 1"), ==, -ENOENT);

        /* Read-only counters refuse writers at open(), as sysfs does. */
        g_assert_cmpint(write_node(f->fk, 0, 2048, "free_hugepages", "1"), ==, -EACCES);
        g_assert_cmpint(fake_kernel_write(f->fk, "proc/meminfo", "1"), ==, -EACCES);

        g_assert_cmpint(fake_kernel_write(f->fk, "proc/sys/vm/drop_caches", "3\n"), ==, 0);
        g_assert_cmpint(fake_kernel_write(f->fk, "proc/sys/vm/drop_caches", "5\n"), ==, -EINVAL);
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "drop_caches"), ==, 1);
        g_assert_cmpuint(read_u64(f->fk, "proc/sys/vm/drop_caches"), ==, 3);
}

static guint64 meminfo_field(const char *meminfo, const char *name)
{
        g_auto(GStrv) lines = g_strsplit(meminfo, "\n", -1);

        for (char **l = lines; *l; l++)
                if (g_str_has_prefix(*l, name) && (*l)[strlen(name)] == ':')
                        return g_ascii_strtoull(*l + strlen(name) + 1, NULL, 10);
        g_error("no %s in meminfo:\n%s", name, meminfo);
}

static void test_meminfo(Fixture *f, gconstpointer args)
{
        g_autofree char *m = NULL;

        g_assert_cmpint(write_global(f->fk, 2048, "nr_hugepages", "10"), ==, 0);
        g_assert_cmpint(write_node(f->fk, 1, 1048576, "nr_hugepages", "2"), ==, 0);
        fake_kernel_control(f->fk, "use 0 2048 3");
        fake_kernel_control(f->fk, "resv 2048 4");
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "1"), ==, 0);

        m = fake_kernel_read(f->fk, "proc/meminfo");
        g_assert_nonnull(m);
        g_assert_true(g_str_has_prefix(m, "MemTotal:       "));
        g_assert_cmpuint(meminfo_field(m, "MemTotal"), >, meminfo_field(m, "MemFree"));
        g_assert_cmpuint(meminfo_field(m, "HugePages_Total"), ==, 8);     /* node0 3 (2 surplus), node1 5 */
        g_assert_cmpuint(meminfo_field(m, "HugePages_Free"), ==, 5);
        g_assert_cmpuint(meminfo_field(m, "HugePages_Rsvd"), ==, 4);
        g_assert_cmpuint(meminfo_field(m, "HugePages_Surp"), ==, 2);
        g_assert_nonnull(strstr(m, "\nHugePages_Total:       8\n"));
        g_assert_nonnull(strstr(m, "\nHugepagesize:       2048 kB\n"));
        g_assert_nonnull(strstr(m, "\nHugetlb:         2113536 kB\n"));   /* 8 * 2048 + 2 * 1048576 */
        g_clear_pointer(&m, g_free);

        m = fake_kernel_read(f->fk, "sys/devices/system/node/node0/meminfo");
        g_assert_nonnull(strstr(m, "Node 0 HugePages_Total:     3\n"));
        g_assert_nonnull(strstr(m, "Node 0  HugePages_Surp:     2\n"));
}

static void test_default_size(Fixture *f, gconstpointer args)
{
        g_autofree char *m = NULL;

        g_assert_cmpint(write_node(f->fk, 0, 1048576, "nr_hugepages", "9"), ==, 0);
        m = fake_kernel_read(f->fk, "proc/meminfo");
        g_assert_nonnull(strstr(m, "\nHugepagesize:    1048576 kB\n"));
        g_assert_cmpuint(meminfo_field(m, "HugePages_Total"), ==, 4);
}

static void test_fail_injection(Fixture *f, gconstpointer args)
{
        fake_kernel_control(f->fk, "fail 0 2048 %d", ENOMEM);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "fail"), ==, ENOMEM);
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "4"), ==, -ENOMEM);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 0);
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "4"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 4);
        g_assert_cmpuint(fake_kernel_get(f->fk, 0, 2048, "writes"), ==, 2);

        fake_kernel_control(f->fk, "fail 0 2048 %d", EBUSY);
        fake_kernel_control(f->fk, "fail 0 2048 0");
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "5"), ==, 0);
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 5);
}

/* What the shell does for "echo 3 > nr_hugepages": O_CREAT|O_TRUNC, then one write. */
static void test_shell_write(Fixture *f, gconstpointer args)
{
        g_autofree char *path = fake_kernel_path(f->fk, GLOBAL_2M "/nr_hugepages");
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write(fd, "3\n", 2), ==, 2);
        g_assert_cmpint(close(fd), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 3);
        g_assert_cmpint(truncate(path, 0), ==, 0);
        g_assert_cmpuint(read_global(f->fk, 2048, "nr_hugepages"), ==, 3);

        g_clear_pointer(&path, g_free);
        path = fake_kernel_path(f->fk, GLOBAL_2M "/free_hugepages");
        g_assert_cmpint(truncate(path, 0), ==, -1);
        g_assert_cmpint(errno, ==, EACCES);
}

static void test_delay(Fixture *f, gconstpointer args)
{
        gint64 start;

        fake_kernel_control(f->fk, "delay_ms 300");
        g_assert_cmpuint(fake_kernel_get_global(f->fk, "delay_ms"), ==, 300);
        start = g_get_monotonic_time();
        g_assert_cmpint(write_node(f->fk, 0, 2048, "nr_hugepages", "1"), ==, 0);
        g_assert_cmpint(g_get_monotonic_time() - start, >=, 300 * 1000);
        fake_kernel_control(f->fk, "delay_ms 0");
        g_assert_cmpuint(read_node(f->fk, 0, 2048, "nr_hugepages"), ==, 1);
}

/* Content bigger than one read() must come through whole: the daemon reads until EOF. */
static void test_big_dump(Fixture *f, gconstpointer args)
{
        g_autofree char *dump = NULL;
        g_autofree char *path = NULL;
        g_autoptr(GError) error = NULL;
        gsize len = 0;

        for (int n = 1; n < 100; n++)
                fake_kernel_control(f->fk, "add_node %d", n);
        fake_kernel_control(f->fk, "set_nr 99 1048576 3");
        dump = fake_kernel_read(f->fk, "fake-kernel/control");
        g_assert_cmpuint(strlen(dump), >, 8192);
        g_assert_cmpuint(fake_kernel_get(f->fk, 99, 1048576, "nr"), ==, 3);

        /* GLib trusts st_size for regular files: it must not truncate what we serve. */
        g_clear_pointer(&dump, g_free);
        path = fake_kernel_path(f->fk, "fake-kernel/control");
        g_assert_true(g_file_get_contents(path, &dump, &len, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(len, >, 8192);
        g_assert_true(g_str_has_suffix(dump, "compact_step 0\n"));
}

int main(int argc, char *argv[])
{
        g_test_init(&argc, &argv, NULL);

        if (!fake_kernel_available())
                return 77;

#define ADD(name, args, fn) g_test_add("/fake-kernel/" name, Fixture, args, setup, fn, teardown)
        ADD("layout", args_default, test_layout);
        ADD("partial-allocation", args_default, test_partial_allocation);
        ADD("compact-node", args_two_nodes, test_compact_node);
        ADD("compact-memory", args_two_nodes, test_compact_memory);
        ADD("surplus", args_default, test_surplus);
        ADD("overcommit", args_default, test_overcommit);
        ADD("global", args_two_nodes, test_global);
        ADD("node-gaps", args_gaps, test_node_gaps);
        ADD("node-ranges", args_range, test_node_ranges);
        ADD("memoryless", args_memoryless, test_memoryless);
        ADD("hotplug", args_default, test_hotplug);
        ADD("garbage", args_default, test_garbage);
        ADD("meminfo", args_two_nodes, test_meminfo);
        ADD("default-size", args_default_1g, test_default_size);
        ADD("fail-injection", args_default, test_fail_injection);
        ADD("shell-write", args_default, test_shell_write);
        ADD("delay", args_default, test_delay);
        ADD("big-dump", args_default, test_big_dump);
#undef ADD

        return g_test_run();
}
