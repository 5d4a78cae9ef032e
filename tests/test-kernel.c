/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real hugepaged binary on the real kernel's hugetlb pools (suite `kernel`, root only). Other users may
 * share the pools, so every check is a delta against what the test found, and every count the test changes
 * is put back: in teardown, and from a fatal-signal handler when an assertion or a timeout kills us. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "bus-harness.h"
#include "real-kernel.h"

#define ERROR_INSUFFICIENT_PAGES "org.hugepaged1.Error.InsufficientPages"

typedef struct Snapshot {
        guint64 nr[MAX_SAVED];
} Snapshot;

static void snapshot_take(Snapshot *s) {
        for (size_t i = 0; i < n_all_nr_files; i++)
                s->nr[i] = read_u64(all_nr_files[i]);
}

static void snapshot_assert_unchanged(const Snapshot *s) {
        for (size_t i = 0; i < n_all_nr_files; i++) {
                guint64 now = read_u64(all_nr_files[i]);
                if (now != s->nr[i])
                        fail("%s changed: %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT, all_nr_files[i], s->nr[i],
                                now);
        }
}

/* ---- fixture ---- */

typedef struct Fixture {
        TestBus *bus;
        GDBusConnection *conn;
        TestDaemon *daemon;
        char *tmp;
        char *mnt;
        gboolean mounted;
        int held_fd;
        char *held_file;
        char *state_dir;      /* a state dir kept across restarts (held reservations) */
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data) {
        /* Every test starts from what the process found, and a daemon with a fresh state dir: a first start. */
        assert_originals();
        f->held_fd = -1;
        f->tmp = test_tmpdir("hugepaged-kernel-XXXXXX");
        f->bus = test_bus_start();
        emergency_bus_pid = test_bus_pid(f->bus);
        f->conn = test_bus_connect(f->bus);
}

static void daemon_start(Fixture *f, const char *config_text) {
        g_autofree char *config = NULL;

        g_assert_null(f->daemon);
        if (config_text) {
                config = g_build_filename(f->tmp, "hugepaged.conf", NULL);
                g_assert_true(g_file_set_contents(config, config_text, -1, NULL));
        }
        f->daemon = test_daemon_start(f->bus, NULL, NULL, config, NULL);
        emergency_daemon_pid = test_daemon_pid(f->daemon);
}

/* With f->state_dir, so a restart finds the reservations and the mounts again. */
static void daemon_start_in_state_dir(Fixture *f, const char *config_text) {
        g_autofree char *config = NULL;

        g_assert_null(f->daemon);
        if (!f->state_dir)
                f->state_dir = g_build_filename(f->tmp, "state", NULL);
        if (config_text) {
                config = g_build_filename(f->tmp, "hugepaged.conf", NULL);
                g_assert_true(g_file_set_contents(config, config_text, -1, NULL));
        }
        f->daemon = test_daemon_start(f->bus, NULL, f->state_dir, config, NULL);
        emergency_daemon_pid = test_daemon_pid(f->daemon);
}

static void daemon_stop(Fixture *f) {
        g_assert_cmpint(test_daemon_stop(f->daemon), ==, 0);
        emergency_daemon_pid = 0;
        g_clear_pointer(&f->daemon, test_daemon_free);
}

static void hugetlbfs_release_file(Fixture *f) {
        if (f->held_fd >= 0) {
                emergency_fd = -1;
                close(f->held_fd);
                f->held_fd = -1;
        }
        if (f->held_file) {
                g_assert_cmpint(unlink(f->held_file), ==, 0);
                emergency_file_set = 0;
                g_clear_pointer(&f->held_file, g_free);
        }
}

static void hugetlbfs_unmount(Fixture *f) {
        if (!f->mounted)
                return;
        if (umount2(f->mnt, 0) < 0)
                g_assert_cmpint(umount2(f->mnt, MNT_DETACH), ==, 0);
        f->mounted = FALSE;
        emergency_mounted = 0;
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        if (f->daemon) {
                test_daemon_free(f->daemon); /* SIGKILL */
                f->daemon = NULL;
        }
        emergency_daemon_pid = 0;
        g_clear_object(&f->conn);
        g_clear_pointer(&f->bus, test_bus_stop);
        emergency_bus_pid = 0;
        if (f->held_fd >= 0 || f->held_file)
                hugetlbfs_release_file(f);
        hugetlbfs_unmount(f);
        if (f->state_dir) {
                /* A held reservation's mount keeps its pages reserved: gone before the counts are put back. */
                g_autofree char *mounts = g_build_filename(f->state_dir, "mounts", NULL);
                g_autoptr(GDir) d = g_dir_open(mounts, 0, NULL);
                const char *e;
                while (d && (e = g_dir_read_name(d))) {
                        g_autofree char *m = g_build_filename(mounts, e, NULL);
                        while (umount2(m, MNT_DETACH) == 0)
                                ;
                }
                g_free(f->state_dir);
        }
        if (f->mnt) {
                (void) rmdir(f->mnt);
                g_free(f->mnt);
        }
        test_rm_rf(f->tmp);
        g_free(f->tmp);
        restore_originals();
}

/* ---- D-Bus ---- */

static char *pool_path(guint64 page_size) {
        return g_strdup_printf("/org/hugepaged1/pool/%" G_GUINT64_FORMAT "kB/node0", page_size / 1024);
}

static guint64 pool_property(Fixture *f, guint64 page_size, const char *prop) {
        g_autofree char *path = pool_path(page_size);
        g_autoptr(GVariant) v = test_get_property(f->conn, path, "org.hugepaged1.Pool", prop);

        g_assert_nonnull(v);
        g_assert_true(g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64));
        return g_variant_get_uint64(v);
}

static GVariant *no_options(void) {
        return g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
}

static GVariant *node_bytes_options(guint32 node, guint64 bytes) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "node_bytes", g_variant_new_parsed("[(%u, %t)]", node, bytes));
        return g_variant_builder_end(&b);
}

/* Returns the reservation's path, or NULL with error set. */
static char *reserve(Fixture *f, const char *name, guint64 page_size, guint64 bytes, GVariant *options,
                     GError **error) {
        g_autoptr(GVariant) reply = NULL;
        char *path = NULL;

        reply = test_call(f->conn, "/org/hugepaged1", "org.hugepaged1.Manager", "Reserve",
                          g_variant_new("(stt@a{sv})", name, page_size, bytes, options), G_VARIANT_TYPE("(o)"),
                          error);
        if (reply)
                g_variant_get(reply, "(o)", &path);
        return path;
}

static void reserve_ok(Fixture *f, const char *name, guint64 page_size, guint64 bytes, GVariant *options) {
        g_autoptr(GError) error = NULL;
        g_autofree char *path = reserve(f, name, page_size, bytes, options, &error);
        g_autofree char *label = g_dbus_escape_object_path(name); /* as sd_bus_path_encode() for these names */
        g_autofree char *expected = g_strconcat("/org/hugepaged1/reservation/", label, NULL);

        g_assert_no_error(error);
        g_assert_cmpstr(path, ==, expected);
}

static void release_ok(Fixture *f, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = test_call(f->conn, "/org/hugepaged1", "org.hugepaged1.Manager", "Release",
                                              g_variant_new("(s)", name), G_VARIANT_TYPE_UNIT, &error);
        g_assert_no_error(error);
}

static void assert_insufficient_pages(GError *error, const char *page_size_text) {
        g_autofree char *remote = NULL;

        g_assert_nonnull(error);
        remote = g_dbus_error_get_remote_error(error);
        g_assert_cmpstr(remote, ==, ERROR_INSUFFICIENT_PAGES);
        g_dbus_error_strip_remote_error(error);
        g_test_message("refused as expected: %s", error->message);
        g_assert_nonnull(strstr(error->message, page_size_text));
}

/* The ListPools row for (page_size, node); node -1 is the all-node total. */
static void list_pools_row(Fixture *f, guint64 page_size, gint32 node, guint64 ret[5]) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariantIter) iter = NULL;
        guint64 ps, total, free_, surplus, reserved, floor_;
        gint32 n;
        gboolean found = FALSE;

        reply = test_call(f->conn, "/org/hugepaged1", "org.hugepaged1.Manager", "ListPools", NULL,
                          G_VARIANT_TYPE("(a(tittttt))"), &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(a(tittttt))", &iter);
        while (g_variant_iter_next(iter, "(tittttt)", &ps, &n, &total, &free_, &surplus, &reserved, &floor_))
                if (ps == page_size && n == node) {
                        g_assert_false(found);
                        found = TRUE;
                        ret[0] = total;
                        ret[1] = free_;
                        ret[2] = surplus;
                        ret[3] = reserved;
                        ret[4] = floor_;
                }
        g_assert_true(found);
}

/* ---- 1: the acceptance test ---- */

static void test_acceptance(Fixture *f, gconstpointer data) {
        guint64 ps = default_page_size(), pages = GIB / ps;
        guint64 nr0 = node0_nr(ps), total0 = meminfo("HugePages_Total");
        g_autofree char *out = NULL, *err = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) env = NULL;
        int status = 0;
        const char *busctl[] = {
                "busctl", "call", "org.hugepaged1", "/org/hugepaged1", "org.hugepaged1.Manager", "Reserve",
                "stta{sv}", "vm1", "0", "1073741824", "0", NULL,
        };

        g_test_message("default page size %" G_GUINT64_FORMAT " kB: 1 GiB is %" G_GUINT64_FORMAT " pages",
                       ps / 1024, pages);
        daemon_start(f, NULL);

        reserve_ok(f, "vm1", 0, GIB, no_options());
        g_assert_cmpuint(meminfo("HugePages_Total"), ==, total0 + pages);
        g_assert_cmpuint(node0_nr(ps), ==, nr0 + pages);
        g_assert_cmpuint(pool_property(f, ps, "Reserved"), ==, pages);
        release_ok(f, "vm1");
        g_assert_cmpuint(meminfo("HugePages_Total"), ==, total0);
        g_assert_cmpuint(node0_nr(ps), ==, nr0);
        g_assert_cmpuint(pool_property(f, ps, "Reserved"), ==, 0);

        /* The README's command, as an operator types it. */
        env = g_environ_setenv(g_get_environ(), "DBUS_SYSTEM_BUS_ADDRESS", test_bus_address(f->bus), TRUE);
        g_spawn_sync(NULL, (char **) busctl, env, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error);
        g_assert_no_error(error);
        g_test_message("busctl: %s%s", out, err);
        g_spawn_check_wait_status(status, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(g_strstrip(out), ==, "o \"/org/hugepaged1/reservation/vm1\"");
        g_assert_cmpuint(meminfo("HugePages_Total"), ==, total0 + pages);
        g_assert_cmpuint(node0_nr(ps), ==, nr0 + pages);
        release_ok(f, "vm1");
        g_assert_cmpuint(meminfo("HugePages_Total"), ==, total0);
        g_assert_cmpuint(node0_nr(ps), ==, nr0);

        daemon_stop(f);
        assert_originals();
}

/* ---- 2: pages found at start are the Floor ---- */

static void test_floor_adopted(Fixture *f, gconstpointer data) {
        guint64 p = node0_nr(PAGE_2M), floor_;

        node0_set_nr(PAGE_2M, p + 16);
        floor_ = node0_persistent(PAGE_2M); /* P+16 unless someone holds surplus pages */
        daemon_start(f, NULL);
        g_assert_cmpuint(pool_property(f, PAGE_2M, "Floor"), ==, floor_);
        g_assert_cmpuint(pool_property(f, PAGE_2M, "Total"), ==, p + 16);

        reserve_ok(f, "kt-floor", PAGE_2M, 8 * PAGE_2M, no_options());
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + 24);
        release_ok(f, "kt-floor");
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + 16);
        g_assert_cmpuint(pool_property(f, PAGE_2M, "Floor"), ==, floor_);

        /* SIGTERM leaves the pools as they are. */
        daemon_stop(f);
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + 16);
        /* teardown puts back P */
}

/* ---- 3: release while a hugetlbfs file holds the pages ---- */

static void test_release_in_use(Fixture *f, gconstpointer data) {
        guint64 p = node0_nr(PAGE_2M), s0 = node0_surplus(PAGE_2M);
        guint64 free_before, resv, avail, extra;
        int fd;

        f->mnt = g_build_filename(f->tmp, "hugetlbfs", NULL);
        g_assert_cmpint(g_mkdir(f->mnt, 0700), ==, 0);
        g_strlcpy(emergency_mount, f->mnt, sizeof emergency_mount);
        if (mount("none", f->mnt, "hugetlbfs", 0, "pagesize=2M") < 0)
                fail("cannot mount hugetlbfs on %s: %s", f->mnt, g_strerror(errno));
        f->mounted = TRUE;
        emergency_mounted = 1;

        daemon_start(f, NULL);
        reserve_ok(f, "kt-inuse", PAGE_2M, 0, node_bytes_options(0, 16 * MIB));
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + 8);

        f->held_file = g_build_filename(f->mnt, "guest-ram", NULL);
        g_strlcpy(emergency_file, f->held_file, sizeof emergency_file);
        emergency_file_set = 1;
        fd = open(f->held_file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        f->held_fd = fd;
        emergency_fd = fd;
        if (fallocate(fd, 0, 0, (off_t) (16 * MIB)) < 0)
                fail("fallocate of 16 MiB on hugetlbfs: %s", g_strerror(errno));

        /* Shrinking to P frees the pool's free pages first; only the in-use pages that can't be freed stay,
         * as surplus. Free pages of other users would be taken instead of ours, so compute that share. */
        free_before = node0_read(PAGE_2M, "free_hugepages");
        resv = read_u64(HUGEPAGES_DIR "/hugepages-2048kB/resv_hugepages");
        avail = free_before > resv ? free_before - resv : 0;
        extra = 8 - MIN(8, avail);
        g_test_message("before Release: nr %" G_GUINT64_FORMAT ", free %" G_GUINT64_FORMAT ", resv %" G_GUINT64_FORMAT
                       "; expecting %" G_GUINT64_FORMAT " pages to stay as surplus",
                       node0_nr(PAGE_2M), free_before, resv, extra);

        release_ok(f, "kt-inuse");
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + extra);
        g_assert_cmpuint(node0_surplus(PAGE_2M), ==, s0 + extra);
        g_assert_cmpuint(pool_property(f, PAGE_2M, "Surplus"), ==, s0 + extra);
        g_assert_cmpuint(pool_property(f, PAGE_2M, "Reserved"), ==, 0);

        /* The user lets go: the surplus pages go back to the system. */
        hugetlbfs_release_file(f);
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p);
        g_assert_cmpuint(node0_surplus(PAGE_2M), ==, s0);
        hugetlbfs_unmount(f);

        /* The daemon saw no outside change in all this: its Floor is still what it found. */
        {
                guint64 row[5];
                list_pools_row(f, PAGE_2M, 0, row);
                g_assert_cmpuint(row[0], ==, p);
                g_assert_cmpuint(row[2], ==, s0);
                g_assert_cmpuint(row[3], ==, 0);
                g_assert_cmpuint(row[4], ==, p - s0);
        }
        daemon_stop(f);
        assert_originals();
}

/* ---- 4: requests beyond RAM, and a real 1 GiB page ---- */

static void test_more_than_ram(Fixture *f, gconstpointer data) {
        guint64 mem = mem_total_bytes(), nr1g;
        g_autoptr(GError) error = NULL;
        g_autofree char *path = NULL;
        g_autofree char *ps_text = NULL;
        Snapshot snap;

        if (!g_file_test(HUGEPAGES_DIR "/hugepages-1048576kB", G_FILE_TEST_IS_DIR)) {
                g_test_skip("this kernel has no 1 GiB pages");
                return;
        }
        /* A failing 1 GiB allocation is retried with compaction; keep that within the test's time. The released
         * 1 GiB page must go back to the kernel here (by default it would stay as a spare page). */
        daemon_start(f, "[Allocation]\nTimeoutSec=30\n[Pool 1G]\nShrinkDelaySec=0\n");
        snapshot_take(&snap);

        ps_text = g_strdup_printf("%" G_GUINT64_FORMAT " MiB", default_page_size() / MIB);
        path = reserve(f, "kt-ram", 0, 2 * mem, no_options(), &error);
        g_assert_null(path);
        assert_insufficient_pages(error, ps_text);
        g_clear_error(&error);
        snapshot_assert_unchanged(&snap);

        path = reserve(f, "kt-ram1g", PAGE_1G, (mem / GIB + 1) * GIB, no_options(), &error);
        g_assert_null(path);
        assert_insufficient_pages(error, "1 GiB");
        g_clear_error(&error);
        snapshot_assert_unchanged(&snap);

        /* The same beyond-RAM amount through node_bytes. */
        path = reserve(f, "kt-ram1g-node", PAGE_1G, 0, node_bytes_options(0, (mem / GIB + 1) * GIB), &error);
        g_assert_null(path);
        assert_insufficient_pages(error, "1 GiB");
        g_clear_error(&error);
        snapshot_assert_unchanged(&snap);

        /* One real 1 GiB page: either the kernel has it, or the answer is InsufficientPages and nothing moved. */
        nr1g = node0_nr(PAGE_1G);
        path = reserve(f, "kt-1g", PAGE_1G, GIB, no_options(), &error);
        if (path) {
                g_test_message("the kernel gave a 1 GiB page");
                g_assert_no_error(error);
                g_assert_cmpuint(node0_nr(PAGE_1G), ==, nr1g + 1);
                g_assert_cmpuint(pool_property(f, PAGE_1G, "Reserved"), ==, 1);
                release_ok(f, "kt-1g");
                g_assert_cmpuint(node0_nr(PAGE_1G), ==, nr1g);
        } else {
                assert_insufficient_pages(error, "1 GiB");
                g_assert_cmpuint(node0_nr(PAGE_1G), ==, nr1g);
                g_assert_cmpuint(pool_property(f, PAGE_1G, "Reserved"), ==, 0);
        }
        snapshot_assert_unchanged(&snap);
        daemon_stop(f);
        assert_originals();
}

/* ---- 5: another user changes the pool while the daemon runs ---- */

static void check_outside_pages_kept(Fixture *f, guint64 p, guint64 floor_) {
        guint64 row[5];

        list_pools_row(f, PAGE_2M, 0, row);
        g_assert_cmpuint(row[0], ==, p + 4);
        g_assert_cmpuint(row[4], ==, floor_ + 4);
        list_pools_row(f, PAGE_2M, -1, row);
        g_assert_cmpuint(row[4], >=, floor_ + 4);

        reserve_ok(f, "kt-outside", PAGE_2M, 8 * PAGE_2M, no_options());
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + 12);
        release_ok(f, "kt-outside");
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + 4);
        list_pools_row(f, PAGE_2M, 0, row);
        g_assert_cmpuint(row[4], ==, floor_ + 4);
        g_assert_cmpuint(row[3], ==, 0);

        daemon_stop(f);
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + 4);
        /* teardown puts back P */
}

/* ListPools re-reads the pools: with the timer off, it is what notices the change. */
static void test_outside_change_list_pools(Fixture *f, gconstpointer data) {
        guint64 p = node0_nr(PAGE_2M), floor_;

        daemon_start(f, "[Daemon]\nRefreshIntervalSec=0\n");
        floor_ = pool_property(f, PAGE_2M, "Floor");
        g_assert_cmpuint(floor_, ==, node0_persistent(PAGE_2M));

        node0_set_nr(PAGE_2M, p + 4);
        check_outside_pages_kept(f, p, floor_);
}

/* The periodic refresh notices the change without any call that re-reads the pools (property reads don't). */
static void test_outside_change_periodic(Fixture *f, gconstpointer data) {
        guint64 p = node0_nr(PAGE_2M), floor_;
        gint64 deadline;

        daemon_start(f, "[Daemon]\nRefreshIntervalSec=1\n");
        floor_ = pool_property(f, PAGE_2M, "Floor");
        g_assert_cmpuint(floor_, ==, node0_persistent(PAGE_2M));

        node0_set_nr(PAGE_2M, p + 4);
        deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
        while (pool_property(f, PAGE_2M, "Floor") != floor_ + 4) {
                if (g_get_monotonic_time() > deadline)
                        fail("the periodic refresh did not adopt 4 outside pages within 10 s (Floor %" G_GUINT64_FORMAT
                                ", expected %" G_GUINT64_FORMAT ")",
                                pool_property(f, PAGE_2M, "Floor"), floor_ + 4);
                g_usleep(100 * 1000);
        }
        g_assert_cmpuint(pool_property(f, PAGE_2M, "Total"), ==, p + 4);
        g_assert_true(test_daemon_wait_log(f->daemon, "changed from outside hugepaged", 5000));
        check_outside_pages_kept(f, p, floor_);
}

/* ---- 7: held reservations: the kernel keeps the pages for their owner ---- */

#define NR_2M   HUGEPAGES_DIR "/hugepages-2048kB/nr_hugepages"
#define FREE_2M HUGEPAGES_DIR "/hugepages-2048kB/free_hugepages"
#define RESV_2M HUGEPAGES_DIR "/hugepages-2048kB/resv_hugepages"
#define SURP_2M HUGEPAGES_DIR "/hugepages-2048kB/surplus_hugepages"

/* With nr_overcommit_hugepages set, the kernel grows surplus pages for anyone who asks: a stranger is then not
 * refused, and cannot be. */
static gboolean overcommit_off(void) {
        guint64 oc = read_u64(HUGEPAGES_DIR "/hugepages-2048kB/nr_overcommit_hugepages");
        if (oc == 0)
                return TRUE;
        g_test_skip("nr_overcommit_hugepages is set: the kernel would give strangers surplus pages");
        return FALSE;
}

static GVariant *hold_options(gboolean hold) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "hold", g_variant_new_boolean(hold));
        return g_variant_builder_end(&b);
}

/* A stranger: a child that maps n 2 MiB pages with MAP_HUGETLB and touches them. TRUE if it got them. */
static gboolean stranger_maps(guint64 n) {
        pid_t pid = fork();
        int status;

        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                size_t len = (size_t) (n * PAGE_2M);
                char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT), -1, 0);
                if (p == MAP_FAILED)
                        _exit(errno == ENOMEM ? 1 : 2);
                for (size_t i = 0; i < len; i += PAGE_2M)
                        p[i] = 1;
                _exit(0);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
                fail("the stranger failed otherwise: status 0x%x", status);
        return WEXITSTATUS(status) == 0;
}

/* The held pages sit free, yet a stranger asking for one page more than the kernel's available count (free -
 * reserved) is refused: only the reservation keeps them, since free is at least that many. */
static void assert_stranger_refused(guint64 held) {
        guint64 free_ = read_u64(FREE_2M), resv = read_u64(RESV_2M);
        guint64 avail = free_ > resv ? free_ - resv : 0;

        g_test_message("free %" G_GUINT64_FORMAT ", resv %" G_GUINT64_FORMAT ": a stranger asks for %" G_GUINT64_FORMAT,
                       free_, resv, avail + 1);
        g_assert_cmpuint(free_, >=, avail + held);
        g_assert_false(stranger_maps(avail + 1));
}

static char *reservation_object(const char *name) {
        g_autofree char *label = g_dbus_escape_object_path(name); /* as sd_bus_path_encode() for these names */
        return g_strconcat("/org/hugepaged1/reservation/", label, NULL);
}

static char *reservation_string(Fixture *f, const char *name, const char *prop) {
        g_autofree char *path = reservation_object(name);
        g_autoptr(GVariant) v = test_get_property(f->conn, path, "org.hugepaged1.Reservation", prop);
        g_assert_nonnull(v);
        return g_variant_dup_string(v, NULL);
}

static gboolean reservation_held(Fixture *f, const char *name) {
        g_autofree char *path = reservation_object(name);
        g_autoptr(GVariant) v = test_get_property(f->conn, path, "org.hugepaged1.Reservation", "Held");
        g_assert_nonnull(v);
        return g_variant_get_boolean(v);
}

/* How often path is a mount point in our namespace, and its options when it is a hugetlbfs one. */
static unsigned mount_count(const char *path, char **ret_options) {
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;
        unsigned n = 0;

        g_assert_true(g_file_get_contents("/proc/self/mountinfo", &text, NULL, NULL));
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) w = g_strsplit(*l, " ", -1);
                const char *sep = strstr(*l, " - ");
                if (g_strv_length(w) < 5 || !g_str_equal(w[4], path) || !sep)
                        continue;
                n++;
                if (ret_options) {
                        g_auto(GStrv) after = g_strsplit(sep + 3, " ", -1);
                        g_assert_cmpstr(after[0], ==, "hugetlbfs");
                        g_free(*ret_options);
                        *ret_options = g_strdup(after[2]);
                }
        }
        return n;
}

/* A file in the mount faults every page: run in a child, so a SIGBUS is a failure, not a crash. */
static gboolean fault_all_in(const char *dir, guint64 pages) {
        g_autofree char *file = g_build_filename(dir, "guest-ram", NULL);
        pid_t pid = fork();
        int status;

        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                size_t len = (size_t) (pages * PAGE_2M);
                int fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                char *p;
                if (fd < 0 || ftruncate(fd, (off_t) len) < 0)
                        _exit(2);
                p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (p == MAP_FAILED)
                        _exit(3);
                for (size_t i = 0; i < len; i += PAGE_2M)
                        p[i] = 1;
                _exit(0);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        (void) unlink(file);
        g_test_message("faulting %" G_GUINT64_FORMAT " pages in %s: status 0x%x", pages, dir, status);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_hold(Fixture *f, gconstpointer data) {
        const guint64 pages = 32;
        guint64 p = node0_nr(PAGE_2M), resv0 = read_u64(RESV_2M), nr_before_zero;
        g_autofree char *mount_path = NULL, *expected = NULL, *options = NULL, *again = NULL;
        g_autofree char *min_size = g_strdup_printf("min_size=%" G_GUINT64_FORMAT, pages * PAGE_2M);

        if (access("/proc/self/mountinfo", R_OK) < 0)
                return test_skip("no /proc/self/mountinfo");
        if (!overcommit_off())
                return;
        /* No periodic refresh: the pool changes this test makes behind the daemon's back are put back. */
        daemon_start_in_state_dir(f, "[Daemon]\nRefreshIntervalSec=0\n");
        reserve_ok(f, "kt-hold", PAGE_2M, pages * PAGE_2M, hold_options(TRUE));
        mount_path = reservation_string(f, "kt-hold", "MountPath");
        expected = g_build_filename(f->state_dir, "mounts", "kt-hold", NULL);
        g_assert_cmpstr(mount_path, ==, expected);
        g_strlcpy(emergency_mount, mount_path, sizeof emergency_mount);
        emergency_mounted = 1;
        g_assert_true(reservation_held(f, "kt-hold"));
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + pages);
        g_assert_cmpuint(read_u64(RESV_2M), ==, resv0 + pages);
        g_assert_cmpuint(mount_count(mount_path, &options), ==, 1);
        g_test_message("%s: %s", mount_path, options);
        g_assert_nonnull(strstr(options, min_size));
        g_assert_nonnull(strstr(options, "pagesize=2M"));
        g_assert_nonnull(strstr(options, "mode=700"));
        assert_stranger_refused(pages);

        /* The daemon dies: the kernel keeps holding. */
        test_daemon_kill(f->daemon, SIGKILL);
        g_clear_pointer(&f->daemon, test_daemon_free);
        emergency_daemon_pid = 0;
        g_assert_cmpuint(read_u64(RESV_2M), ==, resv0 + pages);
        assert_stranger_refused(pages);

        /* Back: the same hold, found again, not made twice. */
        daemon_start_in_state_dir(f, "[Daemon]\nRefreshIntervalSec=0\n");
        g_assert_true(reservation_held(f, "kt-hold"));
        again = reservation_string(f, "kt-hold", "MountPath");
        g_assert_cmpstr(again, ==, mount_path);
        g_assert_cmpuint(mount_count(mount_path, NULL), ==, 1);
        g_assert_cmpuint(read_u64(RESV_2M), ==, resv0 + pages);
        g_assert_cmpuint(pool_property(f, PAGE_2M, "Reserved"), ==, pages);
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + pages);
        assert_stranger_refused(pages);

        /* The pool shrunk to nothing under it: the held pages stay, as surplus, and a file there gets them. */
        nr_before_zero = read_u64(NR_2M);
        write_u64(NR_2M, 0);
        g_test_message("after echo 0 > nr_hugepages: nr %" G_GUINT64_FORMAT ", surplus %" G_GUINT64_FORMAT
                       ", resv %" G_GUINT64_FORMAT, read_u64(NR_2M), read_u64(SURP_2M), read_u64(RESV_2M));
        g_assert_cmpuint(read_u64(SURP_2M), >=, pages);
        g_assert_true(fault_all_in(mount_path, pages));
        write_u64(NR_2M, nr_before_zero);
        g_assert_cmpuint(read_u64(NR_2M), ==, nr_before_zero);
        g_assert_cmpuint(read_u64(RESV_2M), ==, resv0 + pages);

        /* Release unmounts, and the reserved count is back. */
        release_ok(f, "kt-hold");
        g_assert_cmpuint(mount_count(mount_path, NULL), ==, 0);
        emergency_mounted = 0;
        g_assert_false(g_file_test(mount_path, G_FILE_TEST_EXISTS));
        g_assert_cmpuint(read_u64(RESV_2M), ==, resv0);
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p);

        /* Unheld, as before: no mount, nothing reserved in the kernel, and a stranger may take the pages. */
        reserve_ok(f, "kt-unheld", PAGE_2M, 8 * PAGE_2M, hold_options(FALSE));
        g_assert_false(reservation_held(f, "kt-unheld"));
        g_clear_pointer(&again, g_free);
        again = reservation_string(f, "kt-unheld", "MountPath");
        g_assert_cmpstr(again, ==, "");
        g_assert_cmpuint(read_u64(RESV_2M), ==, resv0);
        g_assert_true(stranger_maps(1));
        release_ok(f, "kt-unheld");
        daemon_stop(f);
        assert_originals();
}

/* A pool that cannot back the mount: the daemon's spare pages (kept by ShrinkDelaySec=infinity) are free, but a
 * stranger's min_size mount has reserved them. The Reserve fails with InsufficientPages and leaves nothing. */
static void test_hold_refused(Fixture *f, gconstpointer data) {
        guint64 p = node0_nr(PAGE_2M), resv0 = read_u64(RESV_2M), avail;
        g_autoptr(GError) error = NULL;
        g_autofree char *path = NULL, *opts = NULL, *mounts = NULL;

        if (!overcommit_off())
                return;
        daemon_start_in_state_dir(f, "[Daemon]\nRefreshIntervalSec=0\n[Pool 2M]\nShrinkDelaySec=infinity\n");
        reserve_ok(f, "kt-spare", PAGE_2M, 8 * PAGE_2M, no_options());
        release_ok(f, "kt-spare");
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + 8);

        /* The stranger reserves every available page. */
        avail = read_u64(FREE_2M) - read_u64(RESV_2M);
        g_assert_cmpuint(avail, >=, 8);
        f->mnt = g_build_filename(f->tmp, "stranger", NULL);
        g_assert_cmpint(g_mkdir(f->mnt, 0700), ==, 0);
        g_strlcpy(emergency_mount, f->mnt, sizeof emergency_mount);
        opts = g_strdup_printf("pagesize=2M,min_size=%" G_GUINT64_FORMAT, avail * PAGE_2M);
        if (mount("none", f->mnt, "hugetlbfs", 0, opts) < 0)
                fail("cannot mount hugetlbfs with %s: %s", opts, g_strerror(errno));
        f->mounted = TRUE;
        emergency_mounted = 1;
        g_assert_cmpuint(read_u64(RESV_2M), ==, resv0 + avail);

        path = reserve(f, "kt-refused", PAGE_2M, 8 * PAGE_2M, hold_options(TRUE), &error);
        g_assert_null(path);
        assert_insufficient_pages(error, "2 MiB");
        g_assert_cmpuint(read_u64(RESV_2M), ==, resv0 + avail);
        mounts = g_build_filename(f->state_dir, "mounts", "kt-refused", NULL);
        g_assert_false(g_file_test(mounts, G_FILE_TEST_EXISTS));
        g_assert_cmpuint(pool_property(f, PAGE_2M, "Reserved"), ==, 0);
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p + 8);
        hugetlbfs_unmount(f);
        daemon_stop(f);
}

/* Release while a consumer still maps a file in the mount: the mount is detached at once, its pages stay the
 * consumer's (the faulted ones in use, the rest still reserved) and go back when it lets go. */
static void test_hold_release_in_use(Fixture *f, gconstpointer data) {
        guint64 p = node0_nr(PAGE_2M), resv0 = read_u64(RESV_2M);
        g_autofree char *mount_path = NULL, *file = NULL;
        size_t len = 4 * PAGE_2M;
        char *map;
        int fd;

        if (!overcommit_off())
                return;
        daemon_start_in_state_dir(f, "[Daemon]\nRefreshIntervalSec=0\n");
        reserve_ok(f, "kt-busy", PAGE_2M, 8 * PAGE_2M, hold_options(TRUE));
        mount_path = reservation_string(f, "kt-busy", "MountPath");
        g_strlcpy(emergency_mount, mount_path, sizeof emergency_mount);
        emergency_mounted = 1;
        g_assert_cmpuint(read_u64(RESV_2M), ==, resv0 + 8);

        /* The guest uses 4 of its 8 pages. */
        file = g_build_filename(mount_path, "guest-ram", NULL);
        fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        f->held_fd = fd;
        emergency_fd = fd;
        g_assert_cmpint(ftruncate(fd, (off_t) len), ==, 0);
        map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        g_assert_true(map != MAP_FAILED);
        for (size_t i = 0; i < len; i += PAGE_2M)
                map[i] = 1;
        g_assert_cmpuint(node0_read(PAGE_2M, "free_hugepages"), >=, 4);

        release_ok(f, "kt-busy");
        g_assert_cmpuint(mount_count(mount_path, NULL), ==, 0);
        g_assert_cmpuint(pool_property(f, PAGE_2M, "Reserved"), ==, 0);
        /* Still the guest's: 4 in use, 4 reserved by the detached mount, so a stranger gets none of them. */
        g_assert_cmpuint(read_u64(RESV_2M), ==, resv0 + 4);
        assert_stranger_refused(4);

        /* The guest lets go: everything goes back to the kernel. */
        g_assert_cmpint(munmap(map, len), ==, 0);
        emergency_fd = -1;
        f->held_fd = -1;
        close(fd);
        emergency_mounted = 0;
        g_assert_cmpuint(read_u64(RESV_2M), ==, resv0);
        g_assert_cmpuint(node0_nr(PAGE_2M), ==, p);
        g_assert_cmpuint(node0_surplus(PAGE_2M), ==, 0);
        daemon_stop(f);
        assert_originals();
}

int main(int argc, char **argv) {
        test_harness_init(&argc, &argv);

        if (geteuid() != 0 || access(HUGEPAGES_DIR "/hugepages-2048kB/nr_hugepages", W_OK) < 0) {
                g_printerr("test-kernel: needs root and a writable " HUGEPAGES_DIR "/hugepages-2048kB/nr_hugepages\n");
                return 77;
        }
        save_originals();
        install_emergency_handler();

#define ADD(name, fn) g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("/kernel/acceptance", test_acceptance);
        ADD("/kernel/floor-adopted", test_floor_adopted);
        ADD("/kernel/release-in-use", test_release_in_use);
        ADD("/kernel/more-than-ram", test_more_than_ram);
        ADD("/kernel/outside-change/list-pools", test_outside_change_list_pools);
        ADD("/kernel/outside-change/periodic", test_outside_change_periodic);
        ADD("/kernel/hold", test_hold);
        ADD("/kernel/hold-refused", test_hold_refused);
        ADD("/kernel/hold-release-in-use", test_hold_release_in_use);
#undef ADD

        return g_test_run();
}
