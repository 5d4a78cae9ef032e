/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fake-kernel-launch: owns the lifetime of a fake-kernel process and its mountpoint for one test. */

#include "fake-kernel-launch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define START_TIMEOUT_USEC (10 * G_USEC_PER_SEC)
#define STOP_TIMEOUT_USEC (5 * G_USEC_PER_SEC)

struct FakeKernel {
        char *root;
        GPid pid;
};

gboolean fake_kernel_available(void)
{
        int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

        if (fd < 0) {
                g_printerr("fake-kernel: can't open /dev/fuse: %s\n", g_strerror(errno));
                return FALSE;
        }
        close(fd);
        return TRUE;
}

static char *find_binary(void)
{
        const char *override = g_getenv("FAKE_KERNEL_BIN"), *build_root = g_getenv("HUGEPAGED_BUILD_ROOT");

        if (override && *override)
                return g_strdup(override);
        if (!build_root)
                g_error("fake-kernel: neither FAKE_KERNEL_BIN nor HUGEPAGED_BUILD_ROOT is set");
        return g_build_filename(build_root, "tests", "fake-kernel", "fake-kernel", NULL);
}

static void child_setup(gpointer user_data)
{
        pid_t parent = GPOINTER_TO_INT(user_data);

        /* A test that crashes must not leave a mount behind: SIGTERM makes fake-kernel unmount. The
         * getppid() check closes the race with a parent that died before prctl(). */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                _exit(127);
}

/* Unmounting is fake-kernel's job; this only cleans up after one that died without doing it. */
static void detach_mount(const char *root)
{
        if (umount2(root, MNT_DETACH) == 0 || errno == EINVAL || errno == ENOENT)
                return;
        if (errno == EPERM) {
                const char *argv[] = { "fusermount3", "-u", "-z", root, NULL };

                GSpawnFlags flags = G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                                    G_SPAWN_STDERR_TO_DEV_NULL;

                (void) g_spawn_sync(NULL, (char **) argv, NULL, flags, NULL, NULL, NULL, NULL, NULL, NULL);
                return;
        }
        g_warning("fake-kernel: umount2(%s): %s", root, g_strerror(errno));
}

/* Waits for pid for up to timeout_usec; returns TRUE and its status if it exited. */
static gboolean wait_exit(GPid pid, gint64 timeout_usec, int *status)
{
        gint64 deadline = g_get_monotonic_time() + timeout_usec;

        for (;;) {
                pid_t r = waitpid(pid, status, WNOHANG);

                if (r == pid)
                        return TRUE;
                if (r < 0 && errno != EINTR)
                        g_error("fake-kernel: waitpid: %s", g_strerror(errno));
                if (g_get_monotonic_time() > deadline)
                        return FALSE;
                g_usleep(10 * 1000);
        }
}

FakeKernel *fake_kernel_start(const char *const *extra_args)
{
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        g_autofree char *control = NULL;
        FakeKernel *fk = g_new0(FakeKernel, 1);
        gint64 deadline;
        int status;

        fk->root = g_dir_make_tmp("fake-kernel-XXXXXX", &error);
        g_assert_no_error(error);

        g_ptr_array_add(argv, find_binary());
        g_ptr_array_add(argv, g_strdup(fk->root));
        g_ptr_array_add(argv, g_strdup("--rmdir-mountpoint"));
        for (const char *const *a = extra_args; a && *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);

        g_spawn_async(NULL, (char **) argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD, child_setup,
                      GINT_TO_POINTER(getpid()), &fk->pid, &error);
        g_assert_no_error(error);

        /* The control file only resolves once the FUSE mount is up and serving. */
        control = fake_kernel_path(fk, "fake-kernel/control");
        deadline = g_get_monotonic_time() + START_TIMEOUT_USEC;
        for (;;) {
                struct stat st;

                if (stat(control, &st) == 0 && S_ISREG(st.st_mode))
                        return fk;
                if (waitpid(fk->pid, &status, WNOHANG) == fk->pid) {
                        detach_mount(fk->root);
                        (void) rmdir(fk->root);
                        g_error("fake-kernel exited before mounting (wait status 0x%x), command: %s",
                                status, g_strjoinv(" ", (char **) argv->pdata));
                }
                if (g_get_monotonic_time() > deadline) {
                        kill(fk->pid, SIGKILL);
                        (void) waitpid(fk->pid, &status, 0);
                        detach_mount(fk->root);
                        (void) rmdir(fk->root);
                        g_error("fake-kernel did not mount %s within 10 s", fk->root);
                }
                g_usleep(5 * 1000);
        }
}

const char *fake_kernel_root(FakeKernel *fk)
{
        return fk->root;
}

char *fake_kernel_path(FakeKernel *fk, const char *relpath)
{
        return g_build_filename(fk->root, relpath, NULL);
}

int fake_kernel_write(FakeKernel *fk, const char *relpath, const char *content)
{
        g_autofree char *path = fake_kernel_path(fk, relpath);
        size_t len = strlen(content);
        ssize_t n;
        int fd, r = 0;

        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = write(fd, content, len);
        if (n < 0)
                r = -errno;
        else if ((size_t) n != len)
                r = -EIO;
        close(fd);
        return r;
}

char *fake_kernel_read(FakeKernel *fk, const char *relpath)
{
        g_autofree char *path = fake_kernel_path(fk, relpath);
        GString *s = g_string_new(NULL);
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                goto fail;
        for (;;) {
                char buf[4096];
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        goto fail;
                }
                if (n == 0)
                        break;
                g_string_append_len(s, buf, n);
        }
        close(fd);
        return g_string_free(s, FALSE);

fail:
        {
                int saved = errno;

                if (fd >= 0)
                        close(fd);
                g_string_free(s, TRUE);
                errno = saved;
                return NULL;
        }
}

static int control_va(FakeKernel *fk, const char *fmt, va_list ap)
{
        g_autofree char *cmd = g_strdup_vprintf(fmt, ap);

        return fake_kernel_write(fk, "fake-kernel/control", cmd);
}

int fake_kernel_control_try(FakeKernel *fk, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = control_va(fk, fmt, ap);
        va_end(ap);
        return r;
}

void fake_kernel_control(FakeKernel *fk, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = control_va(fk, fmt, ap);
        va_end(ap);
        if (r < 0) {
                g_autofree char *cmd = NULL;

                va_start(ap, fmt);
                cmd = g_strdup_vprintf(fmt, ap);
                va_end(ap);
                g_error("fake-kernel control '%s' failed: %s", cmd, g_strerror(-r));
        }
}

static guint64 parse_number(const char *s, const char *what)
{
        guint64 v;
        char *end;

        errno = 0;
        v = g_ascii_strtoull(s, &end, 10);
        if (errno != 0 || end == s || (*end != '\0' && *end != ' ' && *end != '\n'))
                g_error("fake-kernel dump: no number after '%s'", what);
        return v;
}

guint64 fake_kernel_get(FakeKernel *fk, int node, guint64 size_kb, const char *field)
{
        g_autofree char *dump = fake_kernel_read(fk, "fake-kernel/control");
        g_autofree char *prefix = g_strdup_printf("node %d size %" G_GUINT64_FORMAT " ", node, size_kb);
        g_auto(GStrv) lines = NULL;

        g_assert_nonnull(dump);
        lines = g_strsplit(dump, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) tok = NULL;

                if (!g_str_has_prefix(*l, prefix))
                        continue;
                tok = g_strsplit(*l + strlen(prefix), " ", -1);
                for (char **t = tok; t[0] && t[1]; t += 2)
                        if (strcmp(t[0], field) == 0)
                                return parse_number(t[1], field);
                g_error("fake-kernel dump: no field '%s' in '%s'", field, *l);
        }
        g_error("fake-kernel dump: no line for node %d size %" G_GUINT64_FORMAT ":\n%s",
                node, size_kb, dump);
}

guint64 fake_kernel_get_global(FakeKernel *fk, const char *line_prefix)
{
        g_autofree char *dump = fake_kernel_read(fk, "fake-kernel/control");
        g_autofree char *prefix = g_strconcat(line_prefix, " ", NULL);
        g_auto(GStrv) lines = NULL;

        g_assert_nonnull(dump);
        lines = g_strsplit(dump, "\n", -1);
        for (char **l = lines; *l; l++)
                if (g_str_has_prefix(*l, prefix))
                        return parse_number(*l + strlen(prefix), line_prefix);
        g_error("fake-kernel dump: no line '%s N':\n%s", line_prefix, dump);
}

void fake_kernel_stop(FakeKernel *fk)
{
        int status = 0;
        gboolean exited;

        if (!fk)
                return;

        kill(fk->pid, SIGTERM);
        exited = wait_exit(fk->pid, STOP_TIMEOUT_USEC, &status);
        if (!exited) {
                kill(fk->pid, SIGKILL);
                (void) waitpid(fk->pid, &status, 0);
        }
        detach_mount(fk->root);
        /* Normally fake-kernel already removed it (--rmdir-mountpoint). */
        if (rmdir(fk->root) < 0 && errno != ENOENT)
                g_warning("fake-kernel: rmdir(%s): %s", fk->root, g_strerror(errno));

        if (!exited)
                g_error("fake-kernel did not exit within 5 s of SIGTERM");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                g_error("fake-kernel did not exit cleanly (wait status 0x%x)", status);

        g_free(fk->root);
        g_free(fk);
}
