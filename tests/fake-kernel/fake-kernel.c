/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-kernel: a FUSE filesystem that models the kernel's hugetlb sysfs/procfs files (see
 * Documentation/admin-guide/mm/hugetlbpage.rst) so tests can run hugepaged with --root pointing at it.
 * This file owns the model (per node and page size: nr, surplus, in_use, capacity, blocked), the file
 * tree built from it, and the fake-kernel/control file through which tests change and inspect it.
 */

#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZES 8
#define MAX_NODE_ID 1023                /* the kernel's usual MAX_NUMNODES - 1 */
#define N_NODE_IDS (MAX_NODE_ID + 1)
#define GIGANTIC_KB 1048576ULL          /* x86: pages of this size and up are "gigantic" */
#define MAX_WRITE 4096                  /* sysfs never hands a store() more than a page */

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

struct pool {
        uint64_t nr;            /* what nr_hugepages reads: includes surplus */
        uint64_t surplus;
        uint64_t in_use;        /* mapped by someone; never freed by a shrink */
        uint64_t capacity;      /* pages of this size the node's memory could ever hold */
        uint64_t blocked;       /* of capacity, pages only obtainable after compaction */
        uint64_t writes;        /* write() calls on this node's nr_hugepages */
        int fail_errno;         /* one-shot failure injected for the next write */
};

struct node {
        bool memory;
        uint64_t compactions;
        struct pool pools[MAX_SIZES];
};

static struct {
        uint64_t sizes[MAX_SIZES];      /* kB, in command line order */
        size_t n_sizes;
        size_t default_size;            /* index into sizes */
        uint64_t capacity_small, capacity_gigantic;
        struct node *nodes[N_NODE_IDS]; /* NULL: no such node */
        bool possible[N_NODE_IDS];      /* every node that ever existed, like a sparse node_possible_map */
        uint64_t resv[MAX_SIZES];
        uint64_t overcommit[MAX_SIZES];
        uint64_t global_writes[MAX_SIZES];
        size_t alloc_cursor[MAX_SIZES]; /* the kernel's next_nid_to_alloc / next_nid_to_free */
        size_t free_cursor[MAX_SIZES];
        uint64_t compact_memory, drop_caches, drop_caches_value;
        uint64_t delay_ms, compact_step;
        time_t start;
} model;

/* ---- the model ---- */

static bool is_gigantic(size_t s)
{
        return model.sizes[s] >= GIGANTIC_KB;
}

static int find_size(uint64_t size_kb, size_t *ret)
{
        for (size_t s = 0; s < model.n_sizes; s++)
                if (model.sizes[s] == size_kb) {
                        *ret = s;
                        return 0;
                }
        return -ENOENT;
}

static struct node *find_node(uint64_t id)
{
        return id <= MAX_NODE_ID ? model.nodes[id] : NULL;
}

static struct node *find_memory_node(uint64_t id)
{
        struct node *n = find_node(id);

        return n && n->memory ? n : NULL;
}

static int add_node(int id, bool memory)
{
        struct node *n;

        if (model.nodes[id])
                return -EEXIST;
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->memory = memory;
        for (size_t s = 0; s < model.n_sizes; s++)
                n->pools[s].capacity = is_gigantic(s) ? model.capacity_gigantic : model.capacity_small;
        model.nodes[id] = n;
        model.possible[id] = true;
        return 0;
}

/* Pages of this pool the allocator could still get right now. */
static uint64_t pool_room(const struct pool *p)
{
        uint64_t limit = p->capacity > p->blocked ? p->capacity - p->blocked : 0;

        return limit > p->nr ? limit - p->nr : 0;
}

/* A write of target to node<N>/hugepages/hugepages-<S>kB/nr_hugepages (set_max_huge_pages()). */
static void pool_set(struct pool *p, uint64_t target)
{
        uint64_t persistent = p->nr - p->surplus;

        if (target > persistent) {
                /* Surplus pages are already allocated: the kernel converts them before allocating. */
                p->surplus -= MIN(p->surplus, target - persistent);
                /* Allocation may come up short; the write still succeeds, as in the kernel. */
                p->nr += MIN(target - (p->nr - p->surplus), pool_room(p));
        } else if (target < persistent) {
                /* Pages in use can't be freed; they stay on as surplus until released. */
                p->nr = MAX(target, p->in_use);
                p->surplus = p->nr - target;
        }
}

/* The one place `use` lowers in_use: released surplus pages go straight back, like free_huge_folio(). */
static void pool_set_in_use(struct pool *p, uint64_t in_use)
{
        if (in_use < p->in_use) {
                uint64_t f = MIN(p->surplus, p->in_use - in_use);

                p->surplus -= f;
                p->nr -= f;
        }
        p->in_use = in_use;
}

static size_t memory_nodes(struct node **ret)
{
        size_t n = 0;

        for (int id = 0; id <= MAX_NODE_ID; id++)
                if (model.nodes[id] && model.nodes[id]->memory)
                        ret[n++] = model.nodes[id];
        return n;
}

/*
 * Hands out up to amount units over n slots, at most room[i] to slot i, one unit per slot per round
 * starting at *cursor: the kernel's node interleaving, done a round at a time so that huge targets don't
 * loop per page. Returns how much was handed out.
 */
static uint64_t spread(uint64_t amount, const uint64_t *room, uint64_t *give, size_t n, size_t *cursor)
{
        uint64_t given = 0;

        memset(give, 0, n * sizeof(*give));
        while (amount > 0) {
                uint64_t min_left = UINT64_MAX, step;
                size_t k = 0;

                for (size_t i = 0; i < n; i++)
                        if (room[i] > give[i]) {
                                k++;
                                min_left = MIN(min_left, room[i] - give[i]);
                        }
                if (k == 0)
                        break;

                if (amount < k) {
                        /* A partial round: it starts where the last one stopped. */
                        size_t i = *cursor % n;

                        for (size_t j = 0; j < n && amount > 0; j++, i = (i + 1) % n)
                                if (room[i] > give[i]) {
                                        give[i]++;
                                        amount--;
                                        given++;
                                }
                        *cursor = i;
                        break;
                }

                /* Whole rounds leave the cursor where it is. */
                step = MIN(amount / k, min_left);
                for (size_t i = 0; i < n; i++)
                        if (room[i] > give[i]) {
                                give[i] += step;
                                amount -= step;
                                given += step;
                        }
        }
        return given;
}

/* A write of target to the global nr_hugepages (or nr_hugepages_mempolicy) for size index s. */
static void global_set(size_t s, uint64_t target)
{
        static struct node *nodes[N_NODE_IDS];
        static uint64_t room[N_NODE_IDS], give[N_NODE_IDS];
        uint64_t persistent = 0;
        size_t n = memory_nodes(nodes);

        for (size_t i = 0; i < n; i++)
                persistent += nodes[i]->pools[s].nr - nodes[i]->pools[s].surplus;

        if (target > persistent) {
                uint64_t need = target - persistent;

                for (size_t i = 0; i < n && need > 0; i++) {
                        struct pool *p = &nodes[i]->pools[s];
                        uint64_t c = MIN(p->surplus, need);

                        p->surplus -= c;
                        need -= c;
                }
                for (size_t i = 0; i < n; i++)
                        room[i] = pool_room(&nodes[i]->pools[s]);
                spread(need, room, give, n, &model.alloc_cursor[s]);
                for (size_t i = 0; i < n; i++)
                        nodes[i]->pools[s].nr += give[i];

        } else if (target < persistent) {
                uint64_t excess = persistent - target;

                /* Free pages go first, interleaved like allocation... */
                for (size_t i = 0; i < n; i++)
                        room[i] = nodes[i]->pools[s].nr - nodes[i]->pools[s].in_use;
                excess -= spread(excess, room, give, n, &model.free_cursor[s]);
                for (size_t i = 0; i < n; i++)
                        nodes[i]->pools[s].nr -= give[i];

                /* ...and what is still over target is in use, so it becomes surplus. */
                for (size_t i = 0; i < n; i++)
                        room[i] = nodes[i]->pools[s].in_use - nodes[i]->pools[s].surplus;
                spread(excess, room, give, n, &model.free_cursor[s]);
                for (size_t i = 0; i < n; i++)
                        nodes[i]->pools[s].surplus += give[i];
        }
}

static void compact_node(struct node *n)
{
        for (size_t s = 0; s < model.n_sizes; s++) {
                struct pool *p = &n->pools[s];

                p->blocked -= model.compact_step == 0 ? p->blocked : MIN(p->blocked, model.compact_step);
        }
        n->compactions++;
}

/* Set once mounted: lets a slow write tell a stray signal from the one that stops us. */
static struct fuse_session *session;

static void sleep_ms(uint64_t ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        /* SIGTERM cuts the sleep short, so stopping isn't held up by a slow allocation; any other signal
         * must not, or a test that relies on the write taking this long sees it finish early. */
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                if (session && fuse_session_exited(session))
                        break;
}

/* ---- parsing ---- */

/* Like the kernel's kstrtoull(s, 10): decimal digits and at most one trailing newline. */
static int parse_u64(const char *s, size_t len, uint64_t *ret)
{
        uint64_t v = 0;

        if (len > 0 && s[len - 1] == '\n')
                len--;
        if (len == 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                unsigned d;

                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EINVAL;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

static int parse_token(const char *s, uint64_t *ret)
{
        return parse_u64(s, strlen(s), ret);
}

/* The kernel's cpulist/nodelist format: "0", "0-3,5". */
static int parse_node_list(const char *s, bool *ret)
{
        char *copy = strdup(s), *save = NULL;
        int r = 0;

        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *dash = strchr(tok, '-');
                uint64_t a, b;

                if (dash)
                        *dash = '\0';
                if (parse_token(tok, &a) < 0 || (dash ? parse_token(dash + 1, &b) : (b = a, 0)) < 0 ||
                    a > b || b > MAX_NODE_ID) {
                        r = -EINVAL;
                        break;
                }
                for (uint64_t i = a; i <= b; i++)
                        ret[i] = true;
        }
        free(copy);
        return r;
}

static void print_node_list(FILE *f, const bool *in)
{
        bool first = true;

        for (int i = 0; i <= MAX_NODE_ID; i++) {
                int j = i;

                if (!in[i])
                        continue;
                while (j < MAX_NODE_ID && in[j + 1])
                        j++;
                fprintf(f, first ? "%d" : ",%d", i);
                if (j > i)
                        fprintf(f, "-%d", j);
                first = false;
                i = j;
        }
        fputc('\n', f);
}

static void print_nodes(FILE *f, bool memory_only)
{
        bool in[N_NODE_IDS];

        for (int id = 0; id <= MAX_NODE_ID; id++)
                in[id] = model.nodes[id] && (!memory_only || model.nodes[id]->memory);
        print_node_list(f, in);
}

/* ---- the control file ---- */

static int control_pool(char **tok, size_t n_tok, bool need_memory, struct node **ret_node,
                        struct pool **ret_pool, uint64_t *ret_value)
{
        uint64_t id, size_kb;
        struct node *n;
        size_t s;

        if (n_tok != 4 || parse_token(tok[1], &id) < 0 || parse_token(tok[2], &size_kb) < 0 ||
            parse_token(tok[3], ret_value) < 0)
                return -EINVAL;
        n = need_memory ? find_memory_node(id) : find_node(id);
        if (!n || find_size(size_kb, &s) < 0)
                return -ENOENT;
        if (ret_node)
                *ret_node = n;
        *ret_pool = &n->pools[s];
        return 0;
}

static int control_write(const char *buf, size_t len)
{
        char line[MAX_WRITE + 1], *tok[8], *save = NULL;
        struct pool *p;
        uint64_t v, id;
        size_t n_tok = 0, s;
        int r;

        if (len > MAX_WRITE)
                return -EINVAL;
        memcpy(line, buf, len);
        line[len] = '\0';
        if (len > 0 && line[len - 1] == '\n')
                line[len - 1] = '\0';
        for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
                if (n_tok == ELEMENTSOF(tok))
                        return -EINVAL;
                tok[n_tok++] = t;
        }
        if (n_tok == 0)
                return -EINVAL;

        if (strcmp(tok[0], "capacity") == 0) {
                r = control_pool(tok, n_tok, false, NULL, &p, &v);
                if (r < 0)
                        return r;
                p->capacity = v;
        } else if (strcmp(tok[0], "blocked") == 0) {
                r = control_pool(tok, n_tok, true, NULL, &p, &v);
                if (r < 0)
                        return r;
                p->blocked = v;
        } else if (strcmp(tok[0], "use") == 0) {
                r = control_pool(tok, n_tok, true, NULL, &p, &v);
                if (r < 0)
                        return r;
                if (v > p->nr)
                        return -EINVAL;
                pool_set_in_use(p, v);
        } else if (strcmp(tok[0], "set_nr") == 0) {
                r = control_pool(tok, n_tok, true, NULL, &p, &v);
                if (r < 0)
                        return r;
                /* Keeps 0 <= surplus <= in_use <= nr: pages someone maps can't vanish. */
                if (v < p->in_use)
                        return -EINVAL;
                p->nr = v;
        } else if (strcmp(tok[0], "fail") == 0) {
                r = control_pool(tok, n_tok, true, NULL, &p, &v);
                if (r < 0)
                        return r;
                if (v > 4095)
                        return -EINVAL;
                p->fail_errno = (int) v;
        } else if (strcmp(tok[0], "resv") == 0) {
                if (n_tok != 3 || parse_token(tok[1], &id) < 0 || parse_token(tok[2], &v) < 0)
                        return -EINVAL;
                if (find_size(id, &s) < 0)
                        return -ENOENT;
                model.resv[s] = v;
        } else if (strcmp(tok[0], "delay_ms") == 0) {
                if (n_tok != 2 || parse_token(tok[1], &v) < 0)
                        return -EINVAL;
                model.delay_ms = v;
        } else if (strcmp(tok[0], "compact_step") == 0) {
                if (n_tok != 2 || parse_token(tok[1], &v) < 0)
                        return -EINVAL;
                model.compact_step = v;
        } else if (strcmp(tok[0], "add_node") == 0) {
                if (n_tok != 2 || parse_token(tok[1], &id) < 0 || id > MAX_NODE_ID)
                        return -EINVAL;
                return add_node((int) id, true);
        } else if (strcmp(tok[0], "remove_node") == 0) {
                if (n_tok != 2 || parse_token(tok[1], &id) < 0)
                        return -EINVAL;
                if (!find_node(id))
                        return -ENOENT;
                /* Hot-unplug in the model is forceful: whatever was allocated there is gone. */
                free(model.nodes[id]);
                model.nodes[id] = NULL;
        } else if (strcmp(tok[0], "set_memory") == 0) {
                struct node *n;

                if (n_tok != 3 || parse_token(tok[1], &id) < 0 || parse_token(tok[2], &v) < 0 || v > 1)
                        return -EINVAL;
                n = find_node(id);
                if (!n)
                        return -ENOENT;
                if (v == 0 && n->memory)
                        /* The memory went away with its pages; capacity stays for when it returns. */
                        for (s = 0; s < model.n_sizes; s++) {
                                struct pool *q = &n->pools[s];

                                q->nr = q->surplus = q->in_use = q->blocked = 0;
                        }
                n->memory = v;
        } else
                return -EINVAL;

        return 0;
}

static void control_dump(FILE *f)
{
        for (int id = 0; id <= MAX_NODE_ID; id++) {
                struct node *n = model.nodes[id];

                if (!n)
                        continue;
                for (size_t s = 0; s < model.n_sizes; s++) {
                        const struct pool *p = &n->pools[s];

                        fprintf(f, "node %d size %" PRIu64 " nr %" PRIu64 " surplus %" PRIu64
                                " in_use %" PRIu64 " capacity %" PRIu64 " blocked %" PRIu64
                                " writes %" PRIu64 " fail %d memory %d\n",
                                id, model.sizes[s], p->nr, p->surplus, p->in_use, p->capacity,
                                p->blocked, p->writes, p->fail_errno, n->memory);
                }
        }
        for (size_t s = 0; s < model.n_sizes; s++) {
                fprintf(f, "resv %" PRIu64 " %" PRIu64 "\n", model.sizes[s], model.resv[s]);
                fprintf(f, "overcommit %" PRIu64 " %" PRIu64 "\n", model.sizes[s], model.overcommit[s]);
                fprintf(f, "global_writes %" PRIu64 " %" PRIu64 "\n", model.sizes[s],
                        model.global_writes[s]);
        }
        for (int id = 0; id <= MAX_NODE_ID; id++)
                if (model.nodes[id])
                        fprintf(f, "compactions %d %" PRIu64 "\n", id, model.nodes[id]->compactions);
        fprintf(f, "compact_memory %" PRIu64 "\n", model.compact_memory);
        fprintf(f, "drop_caches %" PRIu64 "\n", model.drop_caches);
        fprintf(f, "delay_ms %" PRIu64 "\n", model.delay_ms);
        fprintf(f, "compact_step %" PRIu64 "\n", model.compact_step);
}

/* ---- the file tree ---- */

enum kind {
        /* directories */
        K_ROOT, K_SYS, K_SYS_KERNEL, K_SYS_MM, K_HP, K_HP_SIZE, K_DEVICES, K_SYSTEM, K_NODES, K_NODE,
        K_NODE_HP, K_NODE_HP_SIZE, K_PROC, K_PROC_SYS, K_PROC_VM, K_FK,
        /* files */
        K_FIRST_FILE,
        F_NR = K_FIRST_FILE, F_FREE, F_RESV, F_SURPLUS, F_OVERCOMMIT, F_MEMPOLICY,
        F_ONLINE, F_POSSIBLE, F_HAS_MEMORY, F_HAS_NORMAL_MEMORY, F_HAS_CPU,
        F_NODE_NR, F_NODE_FREE, F_NODE_SURPLUS, F_NODE_COMPACT, F_NODE_MEMINFO,
        F_MEMINFO, F_COMPACT_MEMORY, F_DROP_CACHES, F_CONTROL,
};

struct ent {
        enum kind kind;
        int node;       /* -1 outside node<N> */
        size_t size;    /* index into model.sizes inside hugepages-<S>kB */
};

/* Children that exist regardless of the model; they inherit node and size from their parent. */
static const struct {
        enum kind parent;
        const char *name;
        enum kind kind;
} static_children[] = {
        { K_ROOT, "sys", K_SYS },
        { K_ROOT, "proc", K_PROC },
        { K_ROOT, "fake-kernel", K_FK },
        { K_SYS, "kernel", K_SYS_KERNEL },
        { K_SYS, "devices", K_DEVICES },
        { K_SYS_KERNEL, "mm", K_SYS_MM },
        { K_SYS_MM, "hugepages", K_HP },
        { K_HP_SIZE, "nr_hugepages", F_NR },
        { K_HP_SIZE, "free_hugepages", F_FREE },
        { K_HP_SIZE, "resv_hugepages", F_RESV },
        { K_HP_SIZE, "surplus_hugepages", F_SURPLUS },
        { K_HP_SIZE, "nr_overcommit_hugepages", F_OVERCOMMIT },
        { K_HP_SIZE, "nr_hugepages_mempolicy", F_MEMPOLICY },
        { K_DEVICES, "system", K_SYSTEM },
        { K_SYSTEM, "node", K_NODES },
        { K_NODES, "online", F_ONLINE },
        { K_NODES, "possible", F_POSSIBLE },
        { K_NODES, "has_memory", F_HAS_MEMORY },
        { K_NODES, "has_normal_memory", F_HAS_NORMAL_MEMORY },
        { K_NODES, "has_cpu", F_HAS_CPU },
        { K_NODE, "compact", F_NODE_COMPACT },
        { K_NODE, "meminfo", F_NODE_MEMINFO },
        { K_NODE_HP_SIZE, "nr_hugepages", F_NODE_NR },
        { K_NODE_HP_SIZE, "free_hugepages", F_NODE_FREE },
        { K_NODE_HP_SIZE, "surplus_hugepages", F_NODE_SURPLUS },
        { K_PROC, "meminfo", F_MEMINFO },
        { K_PROC, "sys", K_PROC_SYS },
        { K_PROC_SYS, "vm", K_PROC_VM },
        { K_PROC_VM, "compact_memory", F_COMPACT_MEMORY },
        { K_PROC_VM, "drop_caches", F_DROP_CACHES },
        { K_FK, "control", F_CONTROL },
};

static bool is_dir(enum kind k)
{
        return k < K_FIRST_FILE;
}

/* Same permissions as the kernel's files, so a write to a read-only counter fails the same way. */
static mode_t file_mode(enum kind k)
{
        switch (k) {
        case F_NODE_COMPACT:
        case F_COMPACT_MEMORY:
                return 0200;
        case F_NR:
        case F_OVERCOMMIT:
        case F_MEMPOLICY:
        case F_NODE_NR:
        case F_DROP_CACHES:
        case F_CONTROL:
                return 0644;
        default:
                return 0444;
        }
}

/* procfs files report size 0, sysfs ones 4096, as in the kernel; with direct_io reads go to EOF anyway. */
static off_t file_size(enum kind k)
{
        return k == F_MEMINFO || k == F_COMPACT_MEMORY || k == F_DROP_CACHES || k == F_CONTROL ? 0 : 4096;
}

typedef int (*child_fn)(const char *name, const struct ent *child, void *userdata);

/* Lookup and readdir both go through here, so what is listed is exactly what resolves. */
static int list_children(const struct ent *dir, child_fn fn, void *userdata)
{
        char name[64];
        struct ent c;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(static_children); i++) {
                if (static_children[i].parent != dir->kind)
                        continue;
                c = (struct ent) { static_children[i].kind, dir->node, dir->size };
                r = fn(static_children[i].name, &c, userdata);
                if (r != 0)
                        return r;
        }

        switch (dir->kind) {
        case K_HP:
        case K_NODE_HP:
                for (size_t s = 0; s < model.n_sizes; s++) {
                        snprintf(name, sizeof(name), "hugepages-%" PRIu64 "kB", model.sizes[s]);
                        c = (struct ent) { dir->kind == K_HP ? K_HP_SIZE : K_NODE_HP_SIZE, dir->node, s };
                        r = fn(name, &c, userdata);
                        if (r != 0)
                                return r;
                }
                break;
        case K_NODES:
                for (int id = 0; id <= MAX_NODE_ID; id++) {
                        if (!model.nodes[id])
                                continue;
                        snprintf(name, sizeof(name), "node%d", id);
                        c = (struct ent) { K_NODE, id, 0 };
                        r = fn(name, &c, userdata);
                        if (r != 0)
                                return r;
                }
                break;
        case K_NODE:
                /* Memoryless nodes have no hugetlb pools, hence no hugepages directory. */
                if (model.nodes[dir->node] && model.nodes[dir->node]->memory) {
                        c = (struct ent) { K_NODE_HP, dir->node, 0 };
                        return fn("hugepages", &c, userdata);
                }
                break;
        default:
                break;
        }
        return 0;
}

struct find_ctx {
        const char *name;
        struct ent found;
};

static int find_cb(const char *name, const struct ent *child, void *userdata)
{
        struct find_ctx *ctx = userdata;

        if (strcmp(name, ctx->name) != 0)
                return 0;
        ctx->found = *child;
        return 1;
}

static int resolve(const char *path, struct ent *ret)
{
        struct ent cur = { K_ROOT, -1, 0 };
        char buf[PATH_MAX], *save = NULL;

        if (strlen(path) >= sizeof(buf))
                return -ENAMETOOLONG;
        strcpy(buf, path);
        for (char *comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
                struct find_ctx ctx = { .name = comp };

                if (!is_dir(cur.kind))
                        return -ENOTDIR;
                if (list_children(&cur, find_cb, &ctx) == 0)
                        return -ENOENT;
                cur = ctx.found;
        }
        *ret = cur;
        return 0;
}

/* Whether an entity an open file refers to still exists (a node can go away under an open fd). */
static bool ent_alive(const struct ent *e)
{
        struct node *n;

        if (e->node < 0)
                return true;
        n = model.nodes[e->node];
        if (!n)
                return false;
        switch (e->kind) {
        case K_NODE_HP:
        case K_NODE_HP_SIZE:
        case F_NODE_NR:
        case F_NODE_FREE:
        case F_NODE_SURPLUS:
                return n->memory;
        default:
                return true;
        }
}

/* ---- file contents ---- */

static uint64_t sum_pools(size_t s, int field)
{
        uint64_t sum = 0;

        for (int id = 0; id <= MAX_NODE_ID; id++) {
                const struct node *n = model.nodes[id];

                if (!n || !n->memory)
                        continue;
                sum += field == 0 ? n->pools[s].nr :
                       field == 1 ? n->pools[s].nr - n->pools[s].in_use : n->pools[s].surplus;
        }
        return sum;
}

/* Fake but self-consistent: a node is twice as big as the largest pool its capacity allows. */
static uint64_t node_mem_total_kb(const struct node *n)
{
        uint64_t total = 0;

        if (!n->memory)
                return 0;
        for (size_t s = 0; s < model.n_sizes; s++)
                total = MAX(total, n->pools[s].capacity * model.sizes[s]);
        return 2 * total;
}

static uint64_t node_hugetlb_kb(const struct node *n)
{
        uint64_t kb = 0;

        if (!n->memory)
                return 0;
        for (size_t s = 0; s < model.n_sizes; s++)
                kb += n->pools[s].nr * model.sizes[s];
        return kb;
}

static uint64_t node_mem_free_kb(const struct node *n)
{
        uint64_t total = node_mem_total_kb(n), used = total / 8 + node_hugetlb_kb(n);

        return total > used ? total - used : 0;
}

static void render_meminfo(FILE *f)
{
        size_t d = model.default_size;
        uint64_t total = 0, free_kb = 0, hugetlb = 0;

        for (int id = 0; id <= MAX_NODE_ID; id++)
                if (model.nodes[id]) {
                        total += node_mem_total_kb(model.nodes[id]);
                        free_kb += node_mem_free_kb(model.nodes[id]);
                        hugetlb += node_hugetlb_kb(model.nodes[id]);
                }

        /* Field widths as in fs/proc/meminfo.c and hugetlb_report_meminfo(). */
        fprintf(f, "MemTotal:       %8" PRIu64 " kB\n", total);
        fprintf(f, "MemFree:        %8" PRIu64 " kB\n", free_kb);
        fprintf(f, "MemAvailable:   %8" PRIu64 " kB\n", free_kb);
        fprintf(f, "Buffers:        %8d kB\n", 0);
        fprintf(f, "Cached:         %8d kB\n", 0);
        fprintf(f, "SwapTotal:      %8d kB\n", 0);
        fprintf(f, "SwapFree:       %8d kB\n", 0);
        fprintf(f, "HugePages_Total:   %5" PRIu64 "\n", sum_pools(d, 0));
        fprintf(f, "HugePages_Free:    %5" PRIu64 "\n", sum_pools(d, 1));
        fprintf(f, "HugePages_Rsvd:    %5" PRIu64 "\n", model.resv[d]);
        fprintf(f, "HugePages_Surp:    %5" PRIu64 "\n", sum_pools(d, 2));
        fprintf(f, "Hugepagesize:   %8" PRIu64 " kB\n", model.sizes[d]);
        fprintf(f, "Hugetlb:        %8" PRIu64 " kB\n", hugetlb);
}

static void render_node_meminfo(FILE *f, int id)
{
        const struct node *n = model.nodes[id];
        const struct pool *p = &n->pools[model.default_size];
        uint64_t total = node_mem_total_kb(n), free_kb = node_mem_free_kb(n);

        /* Layout of drivers/base/node.c; memoryless nodes still have the file, with zeros. */
        fprintf(f, "Node %d MemTotal:       %8" PRIu64 " kB\n", id, total);
        fprintf(f, "Node %d MemFree:        %8" PRIu64 " kB\n", id, free_kb);
        fprintf(f, "Node %d MemUsed:        %8" PRIu64 " kB\n", id, total - free_kb);
        fprintf(f, "Node %d HugePages_Total: %5" PRIu64 "\n", id, n->memory ? p->nr : 0);
        fprintf(f, "Node %d  HugePages_Free: %5" PRIu64 "\n", id, n->memory ? p->nr - p->in_use : 0);
        fprintf(f, "Node %d  HugePages_Surp: %5" PRIu64 "\n", id, n->memory ? p->surplus : 0);
}

static int render(const struct ent *e, char **ret, size_t *ret_len)
{
        const struct node *n = e->node >= 0 ? model.nodes[e->node] : NULL;
        const struct pool *p = n ? &n->pools[e->size] : NULL;
        FILE *f = open_memstream(ret, ret_len);

        if (!f)
                return -ENOMEM;
        switch (e->kind) {
        case F_NR:
        case F_MEMPOLICY:
                fprintf(f, "%" PRIu64 "\n", sum_pools(e->size, 0));
                break;
        case F_FREE:
                fprintf(f, "%" PRIu64 "\n", sum_pools(e->size, 1));
                break;
        case F_SURPLUS:
                fprintf(f, "%" PRIu64 "\n", sum_pools(e->size, 2));
                break;
        case F_RESV:
                fprintf(f, "%" PRIu64 "\n", model.resv[e->size]);
                break;
        case F_OVERCOMMIT:
                fprintf(f, "%" PRIu64 "\n", model.overcommit[e->size]);
                break;
        case F_ONLINE:
        case F_HAS_CPU:
                print_nodes(f, false);
                break;
        case F_POSSIBLE:
                print_node_list(f, model.possible);
                break;
        case F_HAS_MEMORY:
        case F_HAS_NORMAL_MEMORY:
                print_nodes(f, true);
                break;
        case F_NODE_NR:
                fprintf(f, "%" PRIu64 "\n", p->nr);
                break;
        case F_NODE_FREE:
                fprintf(f, "%" PRIu64 "\n", p->nr - p->in_use);
                break;
        case F_NODE_SURPLUS:
                fprintf(f, "%" PRIu64 "\n", p->surplus);
                break;
        case F_NODE_MEMINFO:
                render_node_meminfo(f, e->node);
                break;
        case F_MEMINFO:
                render_meminfo(f);
                break;
        case F_DROP_CACHES:
                fprintf(f, "%" PRIu64 "\n", model.drop_caches_value);
                break;
        case F_CONTROL:
                control_dump(f);
                break;
        default:
                break;
        }
        if (fclose(f) != 0) {
                free(*ret);
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

static int handle_write(const struct ent *e, const char *buf, size_t len)
{
        struct pool *p;
        uint64_t v;
        int r;

        switch (e->kind) {
        case F_NR:
        case F_MEMPOLICY:
                /* No mempolicy in the model: nr_hugepages_mempolicy interleaves over all nodes too. */
                model.global_writes[e->size]++;
                r = parse_u64(buf, len, &v);
                if (r < 0)
                        return r;
                sleep_ms(model.delay_ms);
                global_set(e->size, v);
                return 0;
        case F_OVERCOMMIT:
                /* The kernel can't allocate gigantic pages at fault time, so it refuses overcommit. */
                if (is_gigantic(e->size))
                        return -EINVAL;
                r = parse_u64(buf, len, &v);
                if (r < 0)
                        return r;
                model.overcommit[e->size] = v;
                return 0;
        case F_NODE_NR:
                p = &model.nodes[e->node]->pools[e->size];
                p->writes++;
                r = parse_u64(buf, len, &v);
                if (r < 0)
                        return r;
                if (p->fail_errno != 0) {
                        r = -p->fail_errno;
                        p->fail_errno = 0;
                        return r;
                }
                sleep_ms(model.delay_ms);
                pool_set(p, v);
                return 0;
        case F_NODE_COMPACT:
                compact_node(model.nodes[e->node]);
                return 0;
        case F_COMPACT_MEMORY:
                for (int id = 0; id <= MAX_NODE_ID; id++)
                        if (model.nodes[id])
                                compact_node(model.nodes[id]);
                model.compact_memory++;
                return 0;
        case F_DROP_CACHES:
                /* proc_dointvec_minmax() with the range 1..4. */
                r = parse_u64(buf, len, &v);
                if (r < 0 || v < 1 || v > 4)
                        return -EINVAL;
                model.drop_caches_value = v;
                model.drop_caches++;
                return 0;
        case F_CONTROL:
                return control_write(buf, len);
        default:
                return -EACCES;
        }
}

/* ---- FUSE operations ---- */

struct open_file {
        struct ent ent;
        char *data;     /* snapshot taken by the first read, like sysfs' seq_file buffer */
        size_t len;
        struct open_file *prev, *next;
};

/* RELEASE is asynchronous: files closed just before SIGTERM are still here at exit and freed then. */
static struct open_file *open_files;

static void open_file_free(struct open_file *of)
{
        if (of->prev)
                of->prev->next = of->next;
        else
                open_files = of->next;
        if (of->next)
                of->next->prev = of->prev;
        free(of->data);
        free(of);
}

static void *fk_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
        /* The model changes behind the kernel's back: never cache names, attributes or data. */
        cfg->entry_timeout = 0;
        cfg->negative_timeout = 0;
        cfg->attr_timeout = 0;
        cfg->direct_io = 1;
        cfg->kernel_cache = 0;
        cfg->auto_cache = 0;
        return NULL;
}

static int fk_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
        struct ent e;
        int r = resolve(path, &e);

        if (r < 0)
                return r;
        memset(st, 0, sizeof(*st));
        st->st_atime = st->st_mtime = st->st_ctime = model.start;
        if (is_dir(e.kind)) {
                st->st_mode = S_IFDIR | 0755;
                st->st_nlink = 2;
        } else {
                st->st_mode = S_IFREG | file_mode(e.kind);
                st->st_nlink = 1;
                st->st_size = file_size(e.kind);
        }
        return 0;
}

struct fill_ctx {
        void *buf;
        fuse_fill_dir_t filler;
};

static int fill_cb(const char *name, const struct ent *child, void *userdata)
{
        struct fill_ctx *ctx = userdata;
        struct stat st = { .st_mode = is_dir(child->kind) ? S_IFDIR : S_IFREG };

        return ctx->filler(ctx->buf, name, &st, 0, 0) != 0 ? -ENOMEM : 0;
}

static int fk_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
        struct fill_ctx ctx = { buf, filler };
        struct ent e;
        int r = resolve(path, &e);

        if (r < 0)
                return r;
        if (!is_dir(e.kind))
                return -ENOTDIR;
        filler(buf, ".", NULL, 0, 0);
        filler(buf, "..", NULL, 0, 0);
        r = list_children(&e, fill_cb, &ctx);
        return r < 0 ? r : 0;
}

static int fk_open(const char *path, struct fuse_file_info *fi)
{
        struct open_file *of;
        int acc = fi->flags & O_ACCMODE;
        struct ent e;
        mode_t mode;
        int r = resolve(path, &e);

        if (r < 0)
                return r;
        if (is_dir(e.kind))
                return -EISDIR;
        /* Even root can't read a sysfs file without show() or write one without store(). */
        mode = file_mode(e.kind);
        if ((acc == O_RDONLY || acc == O_RDWR) && !(mode & 0400))
                return -EACCES;
        if ((acc == O_WRONLY || acc == O_RDWR) && !(mode & 0200))
                return -EACCES;

        of = calloc(1, sizeof(*of));
        if (!of)
                return -ENOMEM;
        of->ent = e;
        of->next = open_files;
        if (open_files)
                open_files->prev = of;
        open_files = of;
        fi->fh = (uintptr_t) of;
        fi->direct_io = 1;
        return 0;
}

static int fk_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
        struct open_file *of = (struct open_file *) (uintptr_t) fi->fh;
        size_t n;

        if (!ent_alive(&of->ent))
                return -ENODEV;
        if (off == 0 || !of->data) {
                int r;

                free(of->data);
                of->data = NULL;
                r = render(&of->ent, &of->data, &of->len);
                if (r < 0)
                        return r;
        }
        if ((size_t) off >= of->len)
                return 0;
        n = MIN(size, of->len - (size_t) off);
        memcpy(buf, of->data + off, n);
        return (int) n;
}

static int fk_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
        struct open_file *of = (struct open_file *) (uintptr_t) fi->fh;
        int r;

        if (!ent_alive(&of->ent))
                return -ENODEV;
        if (size > MAX_WRITE)
                return -EINVAL;
        /* Like sysfs, every write() is a whole value: the offset means nothing. */
        r = handle_write(&of->ent, buf, size);
        return r < 0 ? r : (int) size;
}

/* "echo N > file" opens with O_TRUNC; kernel attribute files accept and ignore that. */
static int fk_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
        struct ent e;
        int r = resolve(path, &e);

        if (r < 0)
                return r;
        if (is_dir(e.kind))
                return -EISDIR;
        return file_mode(e.kind) & 0200 ? 0 : -EACCES;
}

static int fk_release(const char *path, struct fuse_file_info *fi)
{
        open_file_free((struct open_file *) (uintptr_t) fi->fh);
        return 0;
}

static const struct fuse_operations fk_ops = {
        .init = fk_init,
        .getattr = fk_getattr,
        .readdir = fk_readdir,
        .open = fk_open,
        .read = fk_read,
        .write = fk_write,
        .truncate = fk_truncate,
        .release = fk_release,
};

/* ---- command line ---- */

struct options {
        char *nodes, *memoryless, *sizes;
        unsigned long default_size, capacity, capacity_1g;
        int rmdir_mountpoint, help;
};

#define OPT(t, p) { t, offsetof(struct options, p), 1 }
static const struct fuse_opt option_spec[] = {
        OPT("--nodes=%s", nodes),
        OPT("--memoryless=%s", memoryless),
        OPT("--sizes=%s", sizes),
        OPT("--default-size=%lu", default_size),
        OPT("--capacity=%lu", capacity),
        OPT("--capacity-1g=%lu", capacity_1g),
        OPT("--rmdir-mountpoint", rmdir_mountpoint),
        OPT("-h", help),
        OPT("--help", help),
        FUSE_OPT_END
};

static void usage(const char *prog)
{
        printf("Usage: %s MOUNTPOINT [OPTIONS] [FUSE OPTIONS]\n"
               "Model of the kernel's hugetlb sysfs/procfs files for tests. Always runs in the\n"
               "foreground and single-threaded. fake-kernel/control takes model commands.\n\n"
               "  --nodes=LIST            NUMA nodes with memory, e.g. 0,2,5 or 0-3 (default 0)\n"
               "  --memoryless=LIST       nodes that exist without memory (default none)\n"
               "  --sizes=KB,KB           huge page sizes in kB (default 2048,1048576)\n"
               "  --default-size=KB       Hugepagesize in proc/meminfo (default 2048)\n"
               "  --capacity=PAGES        per-node capacity for sizes below 1 GiB (default 4096)\n"
               "  --capacity-1g=PAGES     per-node capacity for sizes of 1 GiB and up (default 8)\n"
               "  --rmdir-mountpoint      remove the (temporary) mountpoint after unmounting\n",
               prog);
}

static int model_init(const struct options *o)
{
        bool with_memory[N_NODE_IDS] = { false }, without_memory[N_NODE_IDS] = { false };
        char *sizes = strdup(o->sizes ? o->sizes : "2048,1048576"), *save = NULL;
        int r = 0;

        if (!sizes)
                return -ENOMEM;
        for (char *tok = strtok_r(sizes, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                uint64_t kb;
                size_t dup;

                if (parse_token(tok, &kb) < 0 || kb == 0 || find_size(kb, &dup) == 0 ||
                    model.n_sizes == MAX_SIZES) {
                        fprintf(stderr, "fake-kernel: bad --sizes= entry '%s'\n", tok);
                        r = -EINVAL;
                        break;
                }
                model.sizes[model.n_sizes++] = kb;
        }
        free(sizes);
        if (r < 0)
                return r;
        if (model.n_sizes == 0 || find_size(o->default_size, &model.default_size) < 0) {
                fprintf(stderr, "fake-kernel: --default-size=%lu is not one of --sizes=\n", o->default_size);
                return -EINVAL;
        }

        model.capacity_small = o->capacity;
        model.capacity_gigantic = o->capacity_1g;
        if (parse_node_list(o->nodes ? o->nodes : "0", with_memory) < 0 ||
            (o->memoryless && parse_node_list(o->memoryless, without_memory) < 0)) {
                fprintf(stderr, "fake-kernel: bad --nodes= or --memoryless= list\n");
                return -EINVAL;
        }
        for (int id = 0; id <= MAX_NODE_ID; id++)
                if (with_memory[id] || without_memory[id]) {
                        r = add_node(id, !without_memory[id]);
                        if (r < 0)
                                return r;
                }
        model.start = time(NULL);
        return 0;
}

int main(int argc, char *argv[])
{
        struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
        struct options o = { .default_size = 2048, .capacity = 4096, .capacity_1g = 8 };
        struct fuse_cmdline_opts copts = { 0 };
        struct fuse_session *se;
        struct fuse *fuse = NULL;
        int r, ret = 1;

        if (fuse_opt_parse(&args, &o, option_spec, NULL) < 0)
                return 2;
        if (o.help) {
                usage(argv[0]);
                fuse_lib_help(&args);
                return 0;
        }
        if (model_init(&o) < 0)
                return 2;

        /* The model has no locking and tests own our lifetime: always foreground, single-threaded. */
        if (fuse_opt_add_arg(&args, "-f") < 0 || fuse_opt_add_arg(&args, "-s") < 0 ||
            fuse_opt_add_arg(&args, "-ofsname=fake-kernel") < 0 ||
            (geteuid() == 0 && fuse_opt_add_arg(&args, "-oallow_other") < 0))
                return 2;
        if (fuse_parse_cmdline(&args, &copts) != 0)
                return 2;
        if (!copts.mountpoint) {
                usage(argv[0]);
                goto out;
        }

        fuse = fuse_new(&args, &fk_ops, sizeof(fk_ops), NULL);
        if (!fuse)
                goto out;
        se = fuse_get_session(fuse);
        session = se;
        /* libfuse leaves ignored signals alone, and a shell's background job inherits SIGINT ignored;
         * handlers go in before the mount appears, so a prompt SIGTERM still unmounts cleanly. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (fuse_set_signal_handlers(se) != 0)
                goto out;
        if (fuse_mount(fuse, copts.mountpoint) != 0) {
                fuse_remove_signal_handlers(se);
                goto out;
        }
        r = fuse_loop(fuse);
        fuse_unmount(fuse);
        fuse_remove_signal_handlers(se);
        /* The launcher's test may have crashed (we got its PR_SET_PDEATHSIG): leave no litter behind. */
        if (o.rmdir_mountpoint && rmdir(copts.mountpoint) < 0)
                fprintf(stderr, "fake-kernel: rmdir(%s): %m\n", copts.mountpoint);
        /* fuse_loop() reports the signal that stopped it as a positive number: that's a clean exit. */
        ret = r < 0 ? 1 : 0;
out:
        if (fuse)
                fuse_destroy(fuse);
        free(copts.mountpoint);
        fuse_opt_free_args(&args);
        free(o.nodes);
        free(o.memoryless);
        free(o.sizes);
        while (open_files)
                open_file_free(open_files);
        for (int id = 0; id <= MAX_NODE_ID; id++)
                free(model.nodes[id]);
        return ret;
}
