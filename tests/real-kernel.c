/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real kernel's hugetlb files, for the tests and benchmarks that change them (test-kernel, bench-hugepaged).
 * Other users may share the pools, so callers work from deltas against what save_originals() found, and every
 * count is put back: by restore_originals(), and from a fatal-signal handler when an assertion or a timeout
 * kills the process. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "real-kernel.h"

/* ---- kernel files ---- */

guint64 read_u64(const char *path) {
        g_autoptr(GError) error = NULL;
        g_autofree char *s = NULL;
        guint64 v = 0;

        g_file_get_contents(path, &s, NULL, &error);
        g_assert_no_error(error);
        g_strstrip(s);
        g_assert_true(g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT64, &v, NULL));
        return v;
}

void write_u64(const char *path, guint64 v) {
        char buf[32];
        int fd;
        ssize_t n;

        g_snprintf(buf, sizeof buf, "%" G_GUINT64_FORMAT "\n", v);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                fail("cannot open %s: %s", path, g_strerror(errno));
        n = write(fd, buf, strlen(buf));
        if (n != (ssize_t) strlen(buf))
                fail("cannot write %s to %s: %s", g_strstrip(buf), path, n < 0 ? g_strerror(errno) : "short write");
        close(fd);
}

gboolean have_numa(void) {
        return g_file_test(NODE_DIR "/node0/hugepages", G_FILE_TEST_IS_DIR);
}

/* node0's file for one page size (the global one without NUMA sysfs, as the daemon does). */
char *node0_file(guint64 page_size, const char *name) {
        if (have_numa())
                return g_strdup_printf(NODE_DIR "/node0/hugepages/hugepages-%" G_GUINT64_FORMAT "kB/%s",
                                       page_size / 1024, name);
        return g_strdup_printf(HUGEPAGES_DIR "/hugepages-%" G_GUINT64_FORMAT "kB/%s", page_size / 1024, name);
}

guint64 node0_read(guint64 page_size, const char *name) {
        g_autofree char *path = node0_file(page_size, name);
        return read_u64(path);
}

guint64 node0_nr(guint64 page_size) {
        return node0_read(page_size, "nr_hugepages");
}

guint64 node0_surplus(guint64 page_size) {
        return node0_read(page_size, "surplus_hugepages");
}

/* What the daemon calls persistent: the pages that stay when their users let go. */
guint64 node0_persistent(guint64 page_size) {
        guint64 nr = node0_nr(page_size), surplus = node0_surplus(page_size);
        return nr >= surplus ? nr - surplus : 0;
}

void node0_set_nr(guint64 page_size, guint64 nr) {
        g_autofree char *path = node0_file(page_size, "nr_hugepages");
        write_u64(path, nr);
        g_assert_cmpuint(read_u64(path), ==, nr);
}

guint64 meminfo(const char *field) {
        g_autoptr(GError) error = NULL;
        g_autofree char *s = NULL;
        g_auto(GStrv) lines = NULL;
        size_t fl = strlen(field);

        g_file_get_contents("/proc/meminfo", &s, NULL, &error);
        g_assert_no_error(error);
        lines = g_strsplit(s, "\n", -1);
        for (char **l = lines; *l; l++)
                if (strncmp(*l, field, fl) == 0 && (*l)[fl] == ':')
                        return g_ascii_strtoull(*l + fl + 1, NULL, 10);
        fail("no %s in /proc/meminfo", field);
        return 0;
}

guint64 mem_total_bytes(void) {
        return meminfo("MemTotal") * 1024;
}

guint64 default_page_size(void) {
        return meminfo("Hugepagesize") * 1024;
}

/* ---- what the test found, and putting it back ---- */

/* Filled before any test runs; the signal handler only reads it. */
typedef struct Saved {
        char path[PATH_MAX];
        char value[32]; /* "N\n", ready to write */
        guint64 nr;
} Saved;

static Saved saved[MAX_SAVED];
static size_t n_saved;
/* Every nr_hugepages file (per node and global), for "nothing changed" checks. */
char *all_nr_files[MAX_SAVED];
size_t n_all_nr_files;

volatile sig_atomic_t emergency_daemon_pid;
volatile sig_atomic_t emergency_bus_pid;
volatile sig_atomic_t emergency_helper_pid;
volatile sig_atomic_t emergency_fd = -1;
char emergency_file[PATH_MAX];
volatile sig_atomic_t emergency_file_set;
char emergency_mount[PATH_MAX];
volatile sig_atomic_t emergency_mounted;
static volatile sig_atomic_t in_emergency;
static struct sigaction previous_actions[NSIG];

static void add_glob(const char *pattern, gboolean restore) {
        glob_t g = {};

        if (glob(pattern, 0, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++) {
                        g_assert_cmpuint(n_all_nr_files, <, MAX_SAVED);
                        all_nr_files[n_all_nr_files++] = g_strdup(g.gl_pathv[i]);
                        if (!restore)
                                continue;
                        g_assert_cmpuint(n_saved, <, MAX_SAVED);
                        Saved *s = &saved[n_saved++];
                        g_strlcpy(s->path, g.gl_pathv[i], sizeof s->path);
                        s->nr = read_u64(s->path);
                        g_snprintf(s->value, sizeof s->value, "%" G_GUINT64_FORMAT "\n", s->nr);
                }
        globfree(&g);
}

void save_originals(void) {
        /* The per-node counts are what we change and restore; the global ones follow from them. */
        add_glob(NODE_DIR "/node*/hugepages/hugepages-*kB/nr_hugepages", TRUE);
        add_glob(HUGEPAGES_DIR "/hugepages-*kB/nr_hugepages", n_saved == 0);
        g_assert_cmpuint(n_saved, >, 0);
        for (size_t i = 0; i < n_saved; i++)
                g_test_message("found %s = %" G_GUINT64_FORMAT, saved[i].path, saved[i].nr);
}

void restore_originals_raw(void) {
        for (size_t i = 0; i < n_saved; i++) {
                int fd = open(saved[i].path, O_WRONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                (void) !write(fd, saved[i].value, strlen(saved[i].value));
                close(fd);
        }
}

/* Async-signal-safe: stop the daemon (it may be in the middle of growing a pool), let go of our huge pages,
 * then put the counts back, and hand over to the harness, which dumps the logs and dies by the signal. */
static void emergency_handler(int sig) {
        static const char msg[] = "\nfatal signal: restoring the hugepage pools\n";

        if (!in_emergency) {
                pid_t pid = (pid_t) emergency_daemon_pid;

                in_emergency = 1;
                (void) !write(STDERR_FILENO, msg, sizeof msg - 1);
                if (pid > 0) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, NULL, 0);
                }
                pid = (pid_t) emergency_helper_pid;
                if (pid > 0) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, NULL, 0);
                }
                /* Reaped here too: after we die, nobody else might (an init that doesn't reap). */
                pid = (pid_t) emergency_bus_pid;
                if (pid > 0) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, NULL, 0);
                }
                if (emergency_fd >= 0)
                        (void) close(emergency_fd);
                if (emergency_file_set)
                        (void) unlink(emergency_file);
                if (emergency_mounted)
                        (void) umount2(emergency_mount, MNT_DETACH);
                restore_originals_raw();
        }
        if (sig > 0 && sig < NSIG && previous_actions[sig].sa_handler != SIG_DFL &&
            previous_actions[sig].sa_handler != SIG_IGN)
                previous_actions[sig].sa_handler(sig);
        else
                raise(sig); /* installed with SA_RESETHAND: the default action now */
}

void install_emergency_handler(void) {
        static const int sigs[] = { SIGABRT, SIGTERM, SIGSEGV, SIGBUS, SIGTRAP, SIGINT };

        for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++) {
                struct sigaction sa = {
                        .sa_handler = emergency_handler,
                        .sa_flags = SA_RESETHAND | SA_NODEFER,
                };
                sigemptyset(&sa.sa_mask);
                g_assert_cmpint(sigaction(sigs[i], &sa, &previous_actions[sigs[i]]), ==, 0);
        }
}

void assert_originals(void) {
        for (size_t i = 0; i < n_saved; i++)
                if (read_u64(saved[i].path) != saved[i].nr)
                        fail("%s is %" G_GUINT64_FORMAT ", but it was %" G_GUINT64_FORMAT " when the test started",
                                saved[i].path, read_u64(saved[i].path), saved[i].nr);
}

void restore_originals(void) {
        for (size_t i = 0; i < n_saved; i++)
                if (read_u64(saved[i].path) != saved[i].nr) {
                        g_test_message("restoring %s to %" G_GUINT64_FORMAT, saved[i].path, saved[i].nr);
                        write_u64(saved[i].path, saved[i].nr);
                }
        assert_originals();
}
