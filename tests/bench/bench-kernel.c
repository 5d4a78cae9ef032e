/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The figures of issue 7 that need the real kernel: (1) cold grant against a direct sysfs write, and (7) the
 * fragmentation comparison. They change this machine's pools, always as deltas against what they found, and
 * put every count back (restore_originals(), and the fatal-signal handler of real-kernel.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-bus.h>

#include "bench-kernel.h"
#include "bus-harness.h"
#include "real-kernel.h"

#define MANAGER_PATH  "/org/hugepaged1"
#define MANAGER_IFACE "org.hugepaged1.Manager"

static int cmp_i64(const void *a, const void *b) {
        gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
        return x < y ? -1 : x > y;
}

static gint64 median(gint64 *v, int n) {
        qsort(v, (size_t) n, sizeof(*v), cmp_i64);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

gboolean bench_kernel_usable(char *why, size_t len) {
        g_autofree char *nr = NULL;

        if (g_getenv("HUGEPAGED_BENCH_NO_REAL_KERNEL")) {
                g_snprintf(why, len, "HUGEPAGED_BENCH_NO_REAL_KERNEL is set");
                return FALSE;
        }
        if (geteuid() != 0) {
                g_snprintf(why, len, "needs root");
                return FALSE;
        }
        nr = node0_file(PAGE_2M, "nr_hugepages");
        if (access(nr, W_OK) != 0) {
                g_snprintf(why, len, "%s is not writable", nr);
                return FALSE;
        }
        return TRUE;
}

/* Free memory the kernel could give without reclaim, in bytes. */
static guint64 mem_available(void) {
        return meminfo("MemAvailable") * 1024;
}

/* The direct way: one write of node0's nr_hugepages and a read-back of the node's three counts, as a careful
 * hook script (or the daemon's worker) does. Returns the µs taken; *got the pages now there. */
static gint64 direct_grow(guint64 target, guint64 *got) {
        g_autofree char *nr = node0_file(PAGE_2M, "nr_hugepages");
        gint64 t0 = g_get_monotonic_time();

        write_u64(nr, target);
        *got = read_u64(nr);
        (void) node0_read(PAGE_2M, "free_hugepages");
        (void) node0_read(PAGE_2M, "surplus_hugepages");
        return g_get_monotonic_time() - t0;
}

/* Through sd-bus, as the daemon's own clients (the libvirt hook, hugepagectl) call it: GDBus's synchronous
 * calls go through its worker thread and add time of the client's own to every call. */
static sd_bus *sd_bus_connect(TestBus *bus) {
        sd_bus *b = NULL;

        g_assert_cmpint(sd_bus_new(&b), >=, 0);
        g_assert_cmpint(sd_bus_set_address(b, test_bus_address(bus)), >=, 0);
        g_assert_cmpint(sd_bus_set_bus_client(b, 1), >=, 0);
        g_assert_cmpint(sd_bus_start(b), >=, 0);
        return b;
}

static gint64 daemon_grow(sd_bus *b, guint64 pages) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        gint64 t0 = g_get_monotonic_time(), dt;
        int r = sd_bus_call_method(b, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Reserve", &e, &reply,
                                   "stta{sv}", "bench-cold", (uint64_t) PAGE_2M, (uint64_t) (pages * PAGE_2M),
                                   (size_t) 1, "nodes", "au", (size_t) 1, (uint32_t) 0);

        dt = g_get_monotonic_time() - t0;
        if (r < 0)
                fail("Reserve: %s", e.message ?: g_strerror(-r));
        sd_bus_message_unref(reply);
        return dt;
}

static void daemon_release(sd_bus *b) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(b, TEST_BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Release", &e, NULL, "s",
                                   "bench-cold");
        if (r < 0)
                fail("Release: %s", e.message ?: g_strerror(-r));
}

/* A daemon on the real kernel, its state directory on tmpfs as in production (/run/hugepaged). */
typedef struct RealDaemon {
        char *dir, *shm;
        TestDaemon *d;
} RealDaemon;

static void real_daemon_start(RealDaemon *rd, TestBus *bus, const char *config, const char *log_level) {
        g_autofree char *conf = NULL;

        rd->dir = test_tmpdir("hugepaged-bench-real-XXXXXX");
        rd->shm = g_strdup("/dev/shm/hugepaged-bench-real-XXXXXX");
        g_assert_nonnull(g_mkdtemp(rd->shm));
        conf = g_build_filename(rd->dir, "hugepaged.conf", NULL);
        g_assert_true(g_file_set_contents(conf, config, -1, NULL));
        rd->d = test_daemon_start(bus, NULL, rd->shm, conf, (const char *const[]){log_level, NULL});
        emergency_daemon_pid = test_daemon_pid(rd->d);
}

/* Stops it, and puts every count back as the bench found it. */
static void real_daemon_stop(RealDaemon *rd) {
        test_daemon_stop(rd->d);
        emergency_daemon_pid = 0;
        test_daemon_free(rd->d);
        restore_originals();
        test_rm_rf(rd->shm);
        test_rm_rf(rd->dir);
        g_free(rd->shm);
        g_free(rd->dir);
}

void bench_cold_grant(TestBus *bus, ColdGrant *out) {
        g_autofree char *nr = NULL;
        gint64 direct[COLD_PAIRS], daemon[COLD_PAIRS];
        guint64 base, got;
        RealDaemon rd = {};
        sd_bus *c;

        *out = (ColdGrant){.pages = COLD_PAGES, .pairs = COLD_PAIRS};
        /* 4 GiB of pages, and as much again left for everyone else. */
        if (mem_available() < 2 * COLD_PAGES * PAGE_2M) {
                g_snprintf(out->why, sizeof(out->why), "needs %" G_GUINT64_FORMAT " MiB available",
                           2 * COLD_PAGES * PAGE_2M / MIB);
                return;
        }

        /* Released pages go back at once. */
        real_daemon_start(&rd, bus, "[Pool 2M]\nShrinkDelaySec=0\n", "--log-level=warning");
        c = sd_bus_connect(bus);
        nr = node0_file(PAGE_2M, "nr_hugepages");

        /* Others may use the pool: everything is relative to what it holds now. */
        base = node0_persistent(PAGE_2M);
        for (int i = -1; i < COLD_PAIRS; i++) {
                gint64 td, tw;

                /* Alternate which goes first, so neither always finds memory just freed by the other. */
                if (i % 2 == 0) {
                        td = direct_grow(base + COLD_PAGES, &got);
                        write_u64(nr, base);
                        tw = daemon_grow(c, COLD_PAGES);
                        daemon_release(c);
                } else {
                        tw = daemon_grow(c, COLD_PAGES);
                        daemon_release(c);
                        td = direct_grow(base + COLD_PAGES, &got);
                        write_u64(nr, base);
                }
                if (got < base + COLD_PAGES)
                        out->direct_short++;
                if (i < 0)
                        continue; /* a warm-up pair: the first allocation after a while is slower */
                direct[i] = td;
                daemon[i] = tw;
        }
        out->direct_us = median(direct, COLD_PAIRS);
        out->daemon_us = median(daemon, COLD_PAIRS);
        out->ran = TRUE;

        sd_bus_flush_close_unref(c);
        real_daemon_stop(&rd);
}

/* ---- (7) fragmentation ---- */

/* The helper holds the fragmentation until its stdin closes. NULL (and *why set) if it didn't get ready. */
static GSubprocess *fragment_start(char *why, size_t len) {
        g_autofree char *bin = g_strdup(g_getenv("HUGEPAGED_BENCH_FRAGMENT_BIN"));
        g_autoptr(GError) e = NULL;
        g_autoptr(GDataInputStream) in = NULL;
        g_autofree char *line = NULL;
        GSubprocess *p;

        if (!bin)
                bin = g_build_filename(g_getenv("HUGEPAGED_BUILD_ROOT") ?: ".", "tests", "bench",
                                       "bench-fragment", NULL);
        p = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &e, bin, NULL);
        if (!p) {
                g_snprintf(why, len, "cannot start %s: %s", bin, e->message);
                return NULL;
        }
        emergency_helper_pid = atoi(g_subprocess_get_identifier(p));
        in = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
        line = g_data_input_stream_read_line(in, NULL, NULL, &e);
        if (!line || !g_str_has_prefix(line, "ready")) {
                g_snprintf(why, len, "bench-fragment did not get ready: %s",
                           line ?: (e ? e->message : "EOF"));
                g_subprocess_force_exit(p);
                (void) g_subprocess_wait(p, NULL, NULL);
                emergency_helper_pid = 0;
                g_object_unref(p);
                return NULL;
        }
        g_test_message("bench-fragment: %s", line);
        return p;
}

static void fragment_stop(GSubprocess *p) {
        g_autoptr(GError) e = NULL;

        g_assert_true(g_output_stream_close(g_subprocess_get_stdin_pipe(p), NULL, &e));
        g_assert_true(g_subprocess_wait(p, NULL, &e));
        g_assert_no_error(e);
        emergency_helper_pid = 0;
        g_object_unref(p);
}

/* A write of a /proc/sys knob: open, one write, close (no truncation, no temp file). */
static void proc_write(const char *path, const char *value) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                fail("cannot open %s: %s", path, g_strerror(errno));
        n = write(fd, value, strlen(value));
        if (n != (ssize_t) strlen(value))
                fail("cannot write %s: %s", path, n < 0 ? g_strerror(errno) : "short write");
        close(fd);
}

static void method_single(guint64 ps, guint64 base, guint64 want, FragRun *out) {
        g_autofree char *nr = node0_file(ps, "nr_hugepages");
        gint64 t0 = g_get_monotonic_time();

        write_u64(nr, base + want);
        out->got = node0_persistent(ps) - base;
        out->us = g_get_monotonic_time() - t0;
}

/* What libvirt hook scripts do: write, then up to FRAG_LOOP_ROUNDS times drop the page cache, compact all
 * memory and write again, while the count still grows. */
static void method_loop(guint64 ps, guint64 base, guint64 want, FragRun *out) {
        g_autofree char *nr = node0_file(ps, "nr_hugepages");
        gint64 t0 = g_get_monotonic_time();
        guint64 got;

        write_u64(nr, base + want);
        got = node0_persistent(ps) - base;
        for (int i = 0; i < FRAG_LOOP_ROUNDS && got < want; i++) {
                guint64 before = got;
                proc_write("/proc/sys/vm/drop_caches", "3\n");
                proc_write("/proc/sys/vm/compact_memory", "1\n");
                write_u64(nr, base + want);
                got = node0_persistent(ps) - base;
                out->rounds = i + 1;
                if (got <= before)
                        break;
        }
        out->got = got;
        out->us = g_get_monotonic_time() - t0;
}

static guint64 stat_prop(GDBusConnection *c, const char *name) {
        g_autoptr(GVariant) v = test_get_property(c, MANAGER_PATH, MANAGER_IFACE, name);
        return g_variant_get_uint64(v);
}

/* The daemon of figure (7): its log says how each allocation went, step by step. */
static TestDaemon *frag_daemon;

/* Passes on the daemon's log lines about the allocation since offset, so a short run can be explained. */
static void log_allocation_lines(gsize offset) {
        g_autofree char *log = test_daemon_log(frag_daemon);
        g_auto(GStrv) lines = NULL;

        if (!log || strlen(log) <= offset)
                return;
        lines = g_strsplit(log + offset, "\n", -1);
        for (char **l = lines; *l; l++)
                if (strstr(*l, " pages on node "))
                        g_test_message("fragmentation: hugepaged said: %s", *l);
}

/* hugepaged's Reserve is all or nothing: when it comes up short it says how many pages the kernel gave, and
 * gives them back. */
static void method_daemon(GDBusConnection *c, guint64 ps, guint64 want, FragRun *out) {
        static const char *const stats[] = {"StatsPagesFirstWrite", "StatsPagesAfterCompaction",
                                            "StatsPagesAfterDropCaches"};
        g_autoptr(GError) e = NULL;
        g_autoptr(GVariant) r = NULL;
        guint64 s0[3];
        gint64 t0;
        g_autofree char *log0 = test_daemon_log(frag_daemon);

        for (size_t i = 0; i < 3; i++)
                s0[i] = stat_prop(c, stats[i]);
        t0 = g_get_monotonic_time();
        r = test_call(c, MANAGER_PATH, MANAGER_IFACE, "Reserve",
                      g_variant_new("(stt@a{sv})", "bench-frag", ps, want * ps,
                                    test_opts("{'nodes': <[uint32 0]>}")),
                      G_VARIANT_TYPE("(o)"), &e);
        out->us = g_get_monotonic_time() - t0;
        if (r)
                out->got = want;
        else {
                const char *gave;
                g_assert_true(g_dbus_error_is_remote_error(e));
                g_assert_cmpstr(g_dbus_error_get_remote_error(e), ==,
                                "org.hugepaged1.Error.InsufficientPages");
                gave = strstr(e->message, "the kernel gave ");
                g_assert_nonnull(gave);
                out->got = g_ascii_strtoull(gave + strlen("the kernel gave "), NULL, 10);
        }
        for (size_t i = 0; i < 3; i++)
                out->stats[i] = stat_prop(c, stats[i]) - s0[i];
        log_allocation_lines(log0 ? strlen(log0) : 0);
        if (r) {
                g_autoptr(GVariant) rel = test_call(c, MANAGER_PATH, MANAGER_IFACE, "Release",
                                                    g_variant_new("(s)", "bench-frag"), NULL, &e);
                g_assert_no_error(e);
        }
}

/* One method on memory fragmented afresh, from the pool as the bench found it and from memory as clean as
 * the machine gets: what earlier runs left behind (stray slab in 1 GiB frames) would otherwise count against
 * whoever comes next. FALSE (and out->why set) if the fragmenter failed. */
static gboolean frag_run(GDBusConnection *c, Fragmentation *out, size_t sz, int m, FragRun *run) {
        static const char *const methods[] = {"single write", "hook loop", "hugepaged"};
        guint64 ps = sz == 0 ? PAGE_2M : PAGE_1G, want = out->want[sz], base;
        GSubprocess *frag;

        restore_originals();
        sync();
        proc_write("/proc/sys/vm/drop_caches", "3\n");
        proc_write("/proc/sys/vm/compact_memory", "1\n");
        base = node0_persistent(ps);
        frag = fragment_start(out->why, sizeof(out->why));
        if (!frag)
                return FALSE;
        if (m == 0)
                method_single(ps, base, want, run);
        else if (m == 1)
                method_loop(ps, base, want, run);
        else
                method_daemon(c, ps, want, run);
        fragment_stop(frag);
        g_test_message("fragmentation: %s pages, %s: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                       " in %.2f s",
                       sz == 0 ? "2 MiB" : "1 GiB", methods[m], run->got, want, run->us / 1e6);
        return TRUE;
}

void bench_fragmentation(TestBus *bus, Fragmentation *out) {
        RealDaemon rd = {};
        GDBusConnection *c;

        *out = (Fragmentation){.want = {FRAG_WANT_2M, FRAG_WANT_1G}, .reps = 3};
        if (g_getenv("HUGEPAGED_BENCH_FRAG_REPS"))
                out->reps = CLAMP(atoi(g_getenv("HUGEPAGED_BENCH_FRAG_REPS")), 1, FRAG_REPS_MAX);
        /* As many writes as the loop makes (1 + its rounds), a budget as long as a hook's patience, and the
         * page cache dropped as the loop does; released pages go back, so each run starts from the same
         * pool. */
        real_daemon_start(&rd, bus,
                          "[Allocation]\nMaxAttempts=6\nTimeoutSec=120\nDropCaches=yes\n"
                          "[Pool 2M]\nShrinkDelaySec=0\n[Pool 1G]\nShrinkDelaySec=0\n",
                          "--log-level=info");
        frag_daemon = rd.d;
        c = test_bus_connect(bus);

        for (int rep = 0; rep < out->reps; rep++)
                for (size_t sz = 0; sz < 2; sz++)
                        for (int m = 0; m < 3; m++)
                                if (!frag_run(c, out, sz, m, &out->run[sz][m][rep]))
                                        goto finish;
        out->ran = TRUE;

finish:
        g_object_unref(c);
        frag_daemon = NULL;
        real_daemon_stop(&rd);
}

static int cmp_u64(const void *a, const void *b) {
        guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;
        return x < y ? -1 : x > y;
}

void bench_fragmentation_print(const Fragmentation *f) {
        static const char *const methods[] = {"single write", "hook loop", "hugepaged"};

        if (!f->ran) {
                printf("%-46s skipped: %s\n", "(7) fragmentation", f->why);
                return;
        }
        for (size_t s = 0; s < 2; s++)
                for (int m = 0; m < 3; m++) {
                        guint64 got[FRAG_REPS_MAX];
                        gint64 us[FRAG_REPS_MAX];
                        g_autofree char *label =
                                g_strdup_printf("(7) %s x %" G_GUINT64_FORMAT ", %s",
                                                s == 0 ? "2 MiB" : "1 GiB", f->want[s], methods[m]);
                        g_autoptr(GString) all = g_string_new(NULL);

                        for (int r = 0; r < f->reps; r++) {
                                got[r] = f->run[s][m][r].got;
                                us[r] = f->run[s][m][r].us;
                                g_string_append_printf(all, "%s%" G_GUINT64_FORMAT, r ? "," : "", got[r]);
                        }
                        qsort(got, (size_t) f->reps, sizeof(*got), cmp_u64);
                        printf("%-46s %6" G_GUINT64_FORMAT " pages %9.2f s %8s %s\n", label,
                               got[f->reps / 2], median(us, f->reps) / 1e6, "",
                               m == 2 ? ">= loop, > single, faster than loop" : "");
                        printf("    (each run: %s", all->str);
                        if (m == 1) {
                                printf("; rounds:");
                                for (int r = 0; r < f->reps; r++)
                                        printf(" %d", f->run[s][m][r].rounds);
                        } else if (m == 2) {
                                printf("; won by first write/compaction/drop_caches:");
                                for (int r = 0; r < f->reps; r++)
                                        printf(" %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
                                               "/%" G_GUINT64_FORMAT,
                                               f->run[s][m][r].stats[0], f->run[s][m][r].stats[1],
                                               f->run[s][m][r].stats[2]);
                        }
                        printf(")\n");
                }
        printf("    (medians of %d runs, each on memory fragmented afresh by bench-fragment)\n", f->reps);
}
