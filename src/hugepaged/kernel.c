/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* All access to the kernel's hugetlb files. Everything else asks this module, so the tests can run the
 * same code against a fake tree by giving a different root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel.h"
#include "log.h"
#include "macro.h"
#include "util.h"

#define HUGEPAGES_DIR "sys/kernel/mm/hugepages"
#define NODE_DIR "sys/devices/system/node"
#define READ_MAX (64 * 1024)
#define NODE_FILES_MAX 64 /* pools whose count files stay open; beyond that they are opened per read */

static const char *const node_file_names[] = { "nr_hugepages", "free_hugepages", "surplus_hugepages" };

/* A pool's three count files, kept open: a read is then one pread() per file instead of open, read, read and
 * close (1 µs instead of 8 µs each on this machine's sysfs, 8 µs instead of 115 µs on the FUSE model). A
 * sysfs attribute read at offset 0 is generated afresh each time. */
typedef struct NodeFiles {
        uint64_t page_size;
        uint32_t node;
        int fd[ELEMENTSOF(node_file_names)];
} NodeFiles;

struct Kernel {
        char *root;      /* "" for the real kernel, else "DIR/" */
        int numa;        /* -1 unknown */
        pthread_mutex_t lock; /* the loop and the workers both read counts */
        NodeFiles files[NODE_FILES_MAX];
        size_t n_files;
};

int kernel_new(const char *root, Kernel **ret) {
        Kernel *k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        if (!root || root[0] == '\0' || streq(root, "/"))
                k->root = strdup("/");
        else if (asprintf(&k->root, "%s/", root) < 0)
                k->root = NULL;
        if (!k->root) {
                free(k);
                return -ENOMEM;
        }
        k->numa = -1;
        pthread_mutex_init(&k->lock, NULL);
        *ret = k;
        return 0;
}

static void node_files_close(NodeFiles *f) {
        for (size_t i = 0; i < ELEMENTSOF(f->fd); i++)
                f->fd[i] = safe_close(f->fd[i]);
}

Kernel *kernel_free(Kernel *k) {
        if (!k)
                return NULL;
        for (size_t i = 0; i < k->n_files; i++)
                node_files_close(&k->files[i]);
        pthread_mutex_destroy(&k->lock);
        free(k->root);
        free(k);
        return NULL;
}

const char *kernel_root(const Kernel *k) {
        return k->root;
}

static char *kernel_path(Kernel *k, const char *relpath) {
        char *p;
        if (asprintf(&p, "%s%s", k->root, relpath) < 0)
                return NULL;
        return p;
}

int kernel_read_file(Kernel *k, const char *relpath, char **ret) {
        _cleanup_free_ char *path = kernel_path(k, relpath), *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t n = 0;

        if (!path)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        buf = malloc(READ_MAX + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t l = read(fd, buf + n, READ_MAX - n);
                if (l < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (l == 0)
                        break;
                n += (size_t) l;
                if (n >= READ_MAX)
                        return -EFBIG;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

int kernel_write_file(Kernel *k, const char *relpath, const char *value) {
        _cleanup_free_ char *path = kernel_path(k, relpath);
        _cleanup_close_ int fd = -EBADF;
        size_t len = strlen(value);
        ssize_t l;

        if (!path)
                return -ENOMEM;
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        /* sysfs takes one write per value; a short write means the kernel refused part of it. */
        do
                l = write(fd, value, len);
        while (l < 0 && errno == EINTR);
        if (l < 0)
                return negative_errno();
        if ((size_t) l != len)
                return -EIO;
        return 0;
}

static int kernel_read_u64(Kernel *k, const char *relpath, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r = kernel_read_file(k, relpath, &s);
        if (r < 0)
                return r;
        return parse_u64(s, ret);
}

static int u64_cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

int kernel_list_page_sizes(Kernel *k, uint64_t **ret, size_t *ret_n) {
        _cleanup_free_ char *path = kernel_path(k, HUGEPAGES_DIR);
        _cleanup_free_ uint64_t *sizes = NULL;
        size_t n = 0;
        DIR *d;
        struct dirent *de;

        if (!path)
                return -ENOMEM;
        /* opendir/readdir, not glob(): the umockdev testbeds only intercept these. */
        d = opendir(path);
        if (!d)
                return negative_errno();
        while ((de = readdir(d))) {
                unsigned long long kb;
                char tail[4];

                if (sscanf(de->d_name, "hugepages-%llu%3s", &kb, tail) != 2 || !streq(tail, "kB") || kb == 0)
                        continue;
                uint64_t *t = realloc(sizes, (n + 1) * sizeof(*sizes));
                if (!t) {
                        closedir(d);
                        return -ENOMEM;
                }
                sizes = t;
                sizes[n++] = (uint64_t) kb * 1024;
        }
        closedir(d);
        if (n == 0)
                return -ENOENT;
        qsort(sizes, n, sizeof(*sizes), u64_cmp);
        *ret = TAKE_PTR(sizes);
        *ret_n = n;
        return 0;
}

static int meminfo_field(Kernel *k, const char *relpath, const char *field, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        size_t fl = strlen(field);
        int r = kernel_read_file(k, relpath, &s);
        if (r < 0)
                return r;
        for (char *line = s; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                unsigned long long v;
                if (!strneq(line, field, fl) || line[fl] != ':')
                        continue;
                if (sscanf(line + fl + 1, " %llu", &v) != 1)
                        return -EBADMSG;
                *ret = v;
                return 0;
        }
        return -ENOENT;
}

int kernel_default_page_size(Kernel *k, uint64_t *ret) {
        uint64_t kb;
        int r = meminfo_field(k, "proc/meminfo", "Hugepagesize", &kb);
        if (r < 0)
                return r;
        if (kb == 0)
                return -EBADMSG;
        *ret = kb * 1024;
        return 0;
}

int kernel_mem_total(Kernel *k, uint64_t *ret_bytes) {
        uint64_t kb;
        int r = meminfo_field(k, "proc/meminfo", "MemTotal", &kb);
        if (r < 0)
                return r;
        *ret_bytes = kb * 1024;
        return 0;
}

bool kernel_has_numa(Kernel *k) {
        if (k->numa < 0) {
                _cleanup_free_ char *p = kernel_path(k, NODE_DIR "/node0/hugepages");
                _cleanup_free_ char *q = kernel_path(k, NODE_DIR "/has_memory");
                k->numa = (p && access(p, F_OK) == 0) || (q && access(q, F_OK) == 0);
        }
        return k->numa;
}

int kernel_list_memory_nodes(Kernel *k, uint32_t **ret, size_t *ret_n) {
        _cleanup_free_ char *s = NULL;
        _cleanup_free_ uint32_t *nodes = NULL;
        size_t n = 0;
        int r;

        if (!kernel_has_numa(k)) {
                nodes = calloc(1, sizeof(*nodes));
                if (!nodes)
                        return -ENOMEM;
                *ret = TAKE_PTR(nodes);
                *ret_n = 1;
                return 0;
        }

        r = kernel_read_file(k, NODE_DIR "/has_memory", &s);
        if (r < 0)
                return r;
        r = parse_node_list(s, &nodes, &n);
        if (r < 0)
                return r;

        /* A node can be listed a moment before or after its directory; only keep what we can manage. */
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *rel = NULL, *p = NULL;
                if (asprintf(&rel, NODE_DIR "/node%" PRIu32 "/hugepages", nodes[i]) < 0)
                        return -ENOMEM;
                p = kernel_path(k, rel);
                if (!p)
                        return -ENOMEM;
                if (access(p, F_OK) == 0)
                        nodes[j++] = nodes[i];
        }
        *ret = TAKE_PTR(nodes);
        *ret_n = j;
        return 0;
}

static int node_file(Kernel *k, uint64_t page_size, uint32_t node, const char *name, char **ret) {
        int r;
        if (kernel_has_numa(k))
                r = asprintf(ret, NODE_DIR "/node%" PRIu32 "/hugepages/hugepages-%" PRIu64 "kB/%s", node,
                             page_size / 1024, name);
        else if (node == 0)
                r = asprintf(ret, HUGEPAGES_DIR "/hugepages-%" PRIu64 "kB/%s", page_size / 1024, name);
        else
                return -ENOENT;
        return r < 0 ? -ENOMEM : 0;
}

static void node_files_drop(Kernel *k, size_t i) {
        node_files_close(&k->files[i]);
        k->files[i] = k->files[--k->n_files];
}

/* Opens the pool's files for keeps; NULL if there is no room or any of them can't be opened. Under k->lock. */
static NodeFiles *node_files_get(Kernel *k, uint64_t page_size, uint32_t node) {
        NodeFiles *f;

        for (size_t i = 0; i < k->n_files; i++)
                if (k->files[i].page_size == page_size && k->files[i].node == node)
                        return &k->files[i];
        if (k->n_files >= NODE_FILES_MAX)
                return NULL;
        f = &k->files[k->n_files];
        *f = (NodeFiles) { .page_size = page_size, .node = node };
        for (size_t i = 0; i < ELEMENTSOF(f->fd); i++)
                f->fd[i] = -EBADF;
        for (size_t i = 0; i < ELEMENTSOF(f->fd); i++) {
                _cleanup_free_ char *rel = NULL, *path = NULL;
                if (node_file(k, page_size, node, node_file_names[i], &rel) < 0 || !(path = kernel_path(k, rel))) {
                        node_files_close(f);
                        return NULL;
                }
                f->fd[i] = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (f->fd[i] < 0) {
                        node_files_close(f);
                        return NULL;
                }
        }
        k->n_files++;
        return f;
}

static int read_node_cached(Kernel *k, uint64_t page_size, uint32_t node, uint64_t v[static 3]) {
        NodeFiles *f;
        int r = -ENOENT;

        pthread_mutex_lock(&k->lock);
        f = node_files_get(k, page_size, node);
        for (size_t i = 0; f && i < ELEMENTSOF(f->fd); i++) {
                char buf[32];
                ssize_t l;

                do
                        l = pread(f->fd[i], buf, sizeof(buf) - 1, 0);
                while (l < 0 && errno == EINTR);
                if (l <= 0 || (size_t) l >= sizeof(buf) - 1) {
                        r = -EIO;
                        break;
                }
                buf[l] = '\0';
                r = parse_u64(buf, &v[i]);
                if (r < 0)
                        break;
        }
        /* A node that went away and came back has new files: on any trouble, start over the slow way. */
        if (f && r < 0)
                node_files_drop(k, (size_t) (f - k->files));
        pthread_mutex_unlock(&k->lock);
        return f ? r : -ENOENT;
}

void kernel_forget_node(Kernel *k, uint32_t node) {
        pthread_mutex_lock(&k->lock);
        for (size_t i = k->n_files; i > 0; i--)
                if (k->files[i - 1].node == node)
                        node_files_drop(k, i - 1);
        pthread_mutex_unlock(&k->lock);
}

int kernel_read_node(Kernel *k, uint64_t page_size, uint32_t node, NodeCounts *ret) {
        uint64_t v[ELEMENTSOF(node_file_names)];

        if (read_node_cached(k, page_size, node, v) < 0)
                for (size_t i = 0; i < ELEMENTSOF(node_file_names); i++) {
                        _cleanup_free_ char *rel = NULL;
                        int r = node_file(k, page_size, node, node_file_names[i], &rel);
                        if (r < 0)
                                return r;
                        r = kernel_read_u64(k, rel, &v[i]);
                        if (r < 0)
                                return r;
                }
        *ret = (NodeCounts) { .nr = v[0], .free = v[1], .surplus = v[2] };
        return 0;
}

int kernel_write_node_nr(Kernel *k, uint64_t page_size, uint32_t node, uint64_t nr) {
        _cleanup_free_ char *rel = NULL;
        char buf[32];
        int r = node_file(k, page_size, node, "nr_hugepages", &rel);
        if (r < 0)
                return r;
        snprintf(buf, sizeof(buf), "%" PRIu64 "\n", nr);
        return kernel_write_file(k, rel, buf);
}

int kernel_read_global(Kernel *k, uint64_t page_size, GlobalCounts *ret) {
        static const char *const names[] = {
                "nr_hugepages", "free_hugepages", "surplus_hugepages", "resv_hugepages", "nr_overcommit_hugepages",
        };
        uint64_t v[5];
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *rel = NULL;
                int r;
                if (asprintf(&rel, HUGEPAGES_DIR "/hugepages-%" PRIu64 "kB/%s", page_size / 1024, names[i]) < 0)
                        return -ENOMEM;
                r = kernel_read_u64(k, rel, &v[i]);
                if (r < 0)
                        return r;
        }
        *ret = (GlobalCounts) { .nr = v[0], .free = v[1], .surplus = v[2], .resv = v[3], .overcommit = v[4] };
        return 0;
}

int kernel_drop_caches(Kernel *k) {
        /* 1: clean page cache only; dentries and inodes are cheap to keep and dear to rebuild. */
        return kernel_write_file(k, "proc/sys/vm/drop_caches", "1\n");
}

int kernel_compact_all(Kernel *k) {
        return kernel_write_file(k, "proc/sys/vm/compact_memory", "1\n");
}

int kernel_compact_node(Kernel *k, uint32_t node) {
        _cleanup_free_ char *rel = NULL;
        int r;

        if (!kernel_has_numa(k))
                return kernel_compact_all(k);
        if (asprintf(&rel, NODE_DIR "/node%" PRIu32 "/compact", node) < 0)
                return -ENOMEM;
        r = kernel_write_file(k, rel, "1\n");
        if (r == -ENOENT)
                /* Kernels built without CONFIG_SYSFS per-node compaction still have the global knob. */
                return kernel_compact_all(k);
        return r;
}
