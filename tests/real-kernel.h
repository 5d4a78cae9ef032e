/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real kernel's hugetlb files, for the tests and benchmarks that change them; see real-kernel.c. */
#pragma once

#include <glib.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>

#define GIB           (UINT64_C(1) << 30)
#define MIB           (UINT64_C(1) << 20)
#define PAGE_2M       (2 * MIB)
#define PAGE_1G       GIB
#define HUGEPAGES_DIR "/sys/kernel/mm/hugepages"
#define NODE_DIR      "/sys/devices/system/node"
#define MAX_SAVED     64

/* Fails through GTest (SIGABRT, which the handlers catch) rather than g_error()'s SIGTRAP. */
#define fail(...)                                                                       \
        G_STMT_START {                                                                  \
                g_autofree char *_msg = g_strdup_printf(__VA_ARGS__);                   \
                g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, _msg); \
        }                                                                               \
        G_STMT_END

guint64 read_u64(const char *path);
void write_u64(const char *path, guint64 v);
gboolean have_numa(void);
/* node0's file for one page size (the global one without NUMA sysfs, as the daemon does). */
char *node0_file(guint64 page_size, const char *name);
guint64 node0_read(guint64 page_size, const char *name);
guint64 node0_nr(guint64 page_size);
guint64 node0_surplus(guint64 page_size);
/* What the daemon calls persistent: the pages that stay when their users let go. */
guint64 node0_persistent(guint64 page_size);
/* Writes nr and asserts that the kernel has exactly that many now. */
void node0_set_nr(guint64 page_size, guint64 nr);
guint64 meminfo(const char *field);
guint64 mem_total_bytes(void);
guint64 default_page_size(void);

/* Notes every nr_hugepages file and the per-node values to restore. Call once, before changing anything. */
void save_originals(void);
/* Async-signal-safe. */
void restore_originals_raw(void);
void restore_originals(void);
void assert_originals(void);

/* Every nr_hugepages file (per node and global), for "nothing changed" checks. */
extern char *all_nr_files[MAX_SAVED];
extern size_t n_all_nr_files;

/* What the fatal-signal handler cleans up before it restores the counts: processes to kill (they may be in
 * the middle of growing a pool), a descriptor holding huge pages, a file on hugetlbfs, a mount. */
extern volatile sig_atomic_t emergency_daemon_pid, emergency_bus_pid, emergency_helper_pid;
extern volatile sig_atomic_t emergency_fd;
extern char emergency_file[PATH_MAX];
extern volatile sig_atomic_t emergency_file_set;
extern char emergency_mount[PATH_MAX];
extern volatile sig_atomic_t emergency_mounted;
void install_emergency_handler(void);
