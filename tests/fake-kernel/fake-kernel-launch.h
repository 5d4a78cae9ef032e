/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fake-kernel-launch: mounting a fake-kernel instance from a test, driving its model and reading it back. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct FakeKernel FakeKernel;

/* FALSE when /dev/fuse can't be opened: the caller should then exit(77) so the test counts as skipped. */
gboolean fake_kernel_available(void);

/* Mounts a new instance on a fresh temporary directory; extra_args (NULL-terminated, may be NULL) go to
 * the fake-kernel command line, e.g. "--nodes=0,2,5". Aborts the test if it doesn't come up in 10 s. */
FakeKernel *fake_kernel_start(const char *const *extra_args);

/* The mountpoint, to pass to the daemon as --root. */
const char *fake_kernel_root(FakeKernel *fk);

/* root/relpath, newly allocated. */
char *fake_kernel_path(FakeKernel *fk, const char *relpath);

/* One command to fake-kernel/control; the _try variant returns 0 or -errno instead of asserting. */
void fake_kernel_control(FakeKernel *fk, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
int fake_kernel_control_try(FakeKernel *fk, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* A single open()+write() of content to root/relpath, the way sysfs expects it: 0 or -errno. */
int fake_kernel_write(FakeKernel *fk, const char *relpath, const char *content);

/* The whole of root/relpath read to EOF, or NULL with errno set. */
char *fake_kernel_read(FakeKernel *fk, const char *relpath);

/* From the control dump: a field ("nr", "surplus", "in_use", "capacity", "blocked", "writes", "fail",
 * "memory") of the line for (node, size_kb), or the number after a global line's prefix, e.g.
 * "compactions 0", "resv 2048", "compact_memory". Assert if it isn't there. */
guint64 fake_kernel_get(FakeKernel *fk, int node, guint64 size_kb, const char *field);
guint64 fake_kernel_get_global(FakeKernel *fk, const char *line_prefix);

/* SIGTERM, reap, make sure nothing stays mounted, remove the mountpoint. NULL is fine. Asserts that the
 * server exited cleanly, so a crash in the model fails the test that caused it. */
void fake_kernel_stop(FakeKernel *fk);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(FakeKernel, fake_kernel_stop)

G_END_DECLS
