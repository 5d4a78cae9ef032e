/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fragments this machine's memory for figure (7) of docs/performance.md (single write, hook-script loop and
 * hugepaged on fragmented memory). Two kinds of pages are left in the way of huge pages:
 *
 *   - clean page cache: a file of --cache-mib MiB under --dir is written, fsync()ed and read back, and kept
 *     (open, with its name) until exit. drop_caches can drop it, compaction can move it;
 *   - scattered locked anonymous pages: --anon-mib MiB is mapped with MADV_NOHUGEPAGE, every 4 KiB page is
 *     touched and the whole mapping mlock()ed; then all but --keep-per-2m pages of every 2 MiB-aligned region
 *     are unmapped. The kept pages sit all over the physical memory the mapping had, so that memory comes
 *     back as free 4 KiB..1 MiB blocks but not as free 2 MiB (or 1 GiB) ones, until compaction moves them.
 *
 * Then one line goes to stdout ("ready cache_mib=... anon_mib=... kept_mib=..."), and the helper waits until
 * stdin reaches EOF or SIGTERM/SIGINT/SIGHUP comes, unlinks its file, frees everything and exits 0. Exit code
 * 77 (skip) if not root: the locked memory and the cache size need it, and only root can use the result.
 *
 * Sizes left out default to shares of MemAvailable, and --anon-mib is capped so that MemAvailable stays
 * above SAFE_MIB while all of it is touched (the anonymous pages are only trimmed once all are in place:
 * trimming as we go would let the next pages reuse the holes just made). Standalone on purpose (no GLib,
 * nothing from src/): gcc -O2 -Wall -o bench-fragment tests/bench/bench-fragment.c */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024ULL * 1024)
#define PAGE_4K 4096ULL
#define REGION_2M (2 * MIB)
#define PAGES_PER_2M (REGION_2M / PAGE_4K)
#define CHUNK (4 * MIB)                 /* unit of file I/O; signals are checked between chunks */
/* Defaults and limits, as shares of MemAvailable at start. On a 24 GiB VM (23 GiB available) the defaults,
 * 14 GiB of cache and 8 GiB of anonymous memory, mostly left a single write of 8192 × 2 MiB pages 1,000 to
 * 3,000 pages short and one of 16 × 1 GiB pages with 2 to 7; the hook-script loop reached 8192 and 6 to 12.
 * The locked pages are what compaction must move for 2 MiB pages; the cache file's slab (xarray nodes and
 * the like, unmovable until drop_caches) is what stops 1 GiB pages. */
#define CACHE_PERCENT 60                /* default --cache-mib */
#define ANON_PERCENT 35                 /* default --anon-mib */
#define ANON_MAX_PERCENT 70             /* cap of --anon-mib ... */
#define SAFE_MIB 6144ULL                /* ... which also leaves this much available at the peak of the touch */

static uint64_t arg_cache_mib = UINT64_MAX; /* UINT64_MAX: not given, use the default */
static uint64_t arg_anon_mib = UINT64_MAX;
static unsigned arg_keep = 1;
static const char *arg_dir = "/var/tmp";

/* Everything exit must undo, global so cleanup() can find it from any point of the setup. */
static char cache_path[4096];
static int cache_fd = -1;
static uint8_t *anon = MAP_FAILED;
static size_t anon_len;
static sigset_t stop_signals;

static void help(void) {
        printf("Usage: bench-fragment [--cache-mib N] [--anon-mib N] [--keep-per-2m K] [--dir DIR]\n\n"
               "Fragments memory with clean page cache and scattered locked anonymous pages, prints\n"
               "\"ready ...\" and holds them until stdin reaches EOF or SIGTERM/SIGINT.\n\n"
               "  --cache-mib N     Page cache to fill, a file under DIR (default: %d%% of MemAvailable)\n"
               "  --anon-mib N      Anonymous memory to touch and lock before trimming (default: %d%% of\n"
               "                    MemAvailable; at most %d%%, and always leaving %llu MiB of it)\n"
               "  --keep-per-2m K   Locked 4 KiB pages kept in each 2 MiB region, 1 to 512 (default: 1)\n"
               "  --dir DIR         Where the cache file goes (default: /var/tmp)\n",
               CACHE_PERCENT, ANON_PERCENT, ANON_MAX_PERCENT, SAFE_MIB);
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end = NULL;

        if (!s || s[0] < '0' || s[0] > '9')
                return -EINVAL;
        errno = 0;
        *ret = strtoull(s, &end, 10);
        if (errno != 0 || *end != '\0')
                return -EINVAL;
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_CACHE = 0x100, ARG_ANON, ARG_KEEP, ARG_DIR };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "cache-mib", required_argument, NULL, ARG_CACHE },
                { "anon-mib", required_argument, NULL, ARG_ANON },
                { "keep-per-2m", required_argument, NULL, ARG_KEEP },
                { "dir", required_argument, NULL, ARG_DIR },
                {},
        };
        uint64_t v;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_CACHE:
                case ARG_ANON:
                        if (parse_u64(optarg, &v) < 0 || v > (1ULL << 30)) {
                                fprintf(stderr, "Bad size in MiB: %s\n", optarg);
                                return -EINVAL;
                        }
                        *(c == ARG_CACHE ? &arg_cache_mib : &arg_anon_mib) = v;
                        break;
                case ARG_KEEP:
                        if (parse_u64(optarg, &v) < 0 || v < 1 || v > PAGES_PER_2M) {
                                fprintf(stderr, "--keep-per-2m takes 1 to %llu: %s\n", PAGES_PER_2M, optarg);
                                return -EINVAL;
                        }
                        arg_keep = (unsigned) v;
                        break;
                case ARG_DIR:
                        arg_dir = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "Unexpected argument: %s\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* One "Key: N kB" line of /proc/meminfo in MiB, 0 if missing. */
static uint64_t meminfo_mib(const char *key) {
        char line[256];
        size_t n = strlen(key);
        uint64_t kb = 0;
        FILE *f;

        f = fopen("/proc/meminfo", "re");
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, n) == 0 && line[n] == ':') {
                        kb = strtoull(line + n + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return kb / 1024;
}

static uint64_t read_u64_file(const char *path, uint64_t fallback) {
        char buf[64];
        uint64_t v = fallback;
        FILE *f;

        f = fopen(path, "re");
        if (!f)
                return fallback;
        if (fgets(buf, sizeof(buf), f))
                v = strtoull(buf, NULL, 10);
        fclose(f);
        return v;
}

/* A stop signal is waiting (they are blocked: the setup polls for them between steps, the wait reads them
 * from a signalfd), so no handler can cut cleanup short and the file is unlinked whatever the timing. */
static bool stop_requested(void) {
        sigset_t pending;

        if (sigpending(&pending) < 0)
                return false;
        for (int sig = 1; sig < NSIG; sig++)
                if (sigismember(&stop_signals, sig) && sigismember(&pending, sig))
                        return true;
        return false;
}

static void cleanup(void) {
        if (cache_path[0]) {
                if (unlink(cache_path) < 0 && errno != ENOENT)
                        fprintf(stderr, "unlink(%s): %m\n", cache_path);
                cache_path[0] = '\0';
        }
        if (cache_fd >= 0) {
                close(cache_fd);
                cache_fd = -1;
        }
        if (anon != MAP_FAILED) {
                /* One munmap() over the whole range is fine: the holes are simply skipped. */
                (void) munmap(anon, anon_len);
                anon = MAP_FAILED;
        }
}

/* Writes (or reads back) the whole cache file in CHUNKs, checking for a stop signal between them. */
static int cache_pass(uint8_t *buf, uint64_t len, bool write) {
        for (uint64_t off = 0; off < len; off += CHUNK) {
                size_t n = (size_t) (len - off < CHUNK ? len - off : CHUNK);
                ssize_t k;

                if (stop_requested())
                        return -EINTR;
                k = write ? pwrite(cache_fd, buf, n, (off_t) off) : pread(cache_fd, buf, n, (off_t) off);
                if (k < 0)
                        return -errno;
                if (k != (ssize_t) n)
                        return write ? -ENOSPC : -EIO; /* a short write: the disk is full */
        }
        return 0;
}

/* Step (1): clean page cache. The file is written (dirty cache), fsync()ed (clean cache: drop_caches can
 * drop it, nothing needs writing back first) and read back, in case reclaim took some of it meanwhile.
 * Returns 0, -EINTR on a stop signal, or a negative errno. */
static int fill_cache(uint64_t mib) {
        uint64_t len = mib * MIB;
        uint8_t *buf;
        int r = 0;

        if (mib == 0)
                return 0;
        snprintf(cache_path, sizeof(cache_path), "%s/bench-fragment.XXXXXX", arg_dir);
        cache_fd = mkostemp(cache_path, O_CLOEXEC);
        if (cache_fd < 0) {
                r = -errno;
                fprintf(stderr, "mkostemp(%s): %m\n", cache_path);
                cache_path[0] = '\0';
                return r;
        }
        buf = malloc(CHUNK);
        if (!buf)
                return -ENOMEM;
        /* Not zeros, so no file system can store this sparsely. */
        for (size_t i = 0; i < CHUNK; i++)
                buf[i] = (uint8_t) (i * 131 + 7);

        r = cache_pass(buf, len, true);
        if (r == 0 && fsync(cache_fd) < 0)
                r = -errno;
        if (r == 0)
                r = cache_pass(buf, len, false);
        free(buf);
        if (r < 0 && r != -EINTR)
                fprintf(stderr, "Filling %s: %s\n", cache_path, strerror(-r));
        return r;
}

/* Distance in pages between the kept pages of one region. Each kept page apart from the others splits the
 * mapping once more, so they are spread only while that stays well under vm.max_map_count. */
static size_t kept_stride(size_t regions, unsigned keep) {
        uint64_t max_map = read_u64_file("/proc/sys/vm/max_map_count", 65530);

        return (uint64_t) regions * keep + 1024 < max_map / 2 ? PAGES_PER_2M / keep : 1;
}

/* Step (2): scattered locked anonymous pages. The mapping is 2 MiB-aligned (over-map, then trim the ends) so
 * the regions line up with the 2 MiB frames as far as the allocator hands out pages in order. The kept
 * pages are spread evenly within each region (see kept_stride()).
 * Returns 0, -EINTR on a stop signal, or a negative errno. */
static int fill_anon(uint64_t mib, unsigned keep) {
        size_t regions = (size_t) (mib / 2), stride;
        uint8_t *raw;

        if (regions == 0)
                return 0;
        anon_len = regions * REGION_2M;
        raw = mmap(NULL, anon_len + REGION_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED) {
                int r = -errno;

                fprintf(stderr, "mmap(%zu): %s\n", anon_len, strerror(-r));
                return r;
        }
        anon = (uint8_t *) (((uintptr_t) raw + REGION_2M - 1) & ~(uintptr_t) (REGION_2M - 1));
        if (anon > raw)
                (void) munmap(raw, (size_t) (anon - raw));
        (void) munmap(anon + anon_len, (size_t) (raw + REGION_2M - anon));

        /* With THP the touch would get whole 2 MiB pages, which the trim below would only split. */
        if (madvise(anon, anon_len, MADV_NOHUGEPAGE) < 0)
                fprintf(stderr, "madvise(MADV_NOHUGEPAGE): %m (going on)\n");
        for (size_t i = 0; i < regions; i++) {
                if (i % 256 == 0 && stop_requested())
                        return -EINTR;
                for (size_t p = 0; p < PAGES_PER_2M; p++)
                        anon[i * REGION_2M + p * PAGE_4K] = (uint8_t) (i + p + 1);
        }
        if (mlock(anon, anon_len) < 0) {
                int r = -errno;

                fprintf(stderr, "mlock(%zu): %s\n", anon_len, strerror(-r));
                return r;
        }
        if (stop_requested())
                return -EINTR;

        stride = kept_stride(regions, keep);
        for (size_t i = 0; i < regions; i++) {
                uint8_t *region = anon + i * REGION_2M;
                size_t next = 0; /* first page of the region not yet dealt with */

                for (unsigned k = 0; k < keep; k++) {
                        size_t p = k * stride;

                        if (p > next)
                                (void) munmap(region + next * PAGE_4K, (p - next) * PAGE_4K);
                        next = p + 1;
                }
                if (next < PAGES_PER_2M)
                        (void) munmap(region + next * PAGE_4K, (PAGES_PER_2M - next) * PAGE_4K);
        }
        return 0;
}

/* How many distinct physical 2 MiB and 1 GiB frames hold a kept page, from /proc/self/pagemap: how well the
 * pages are scattered. Both 0 if pagemap gives no frame numbers. */
static void count_frames(unsigned keep, uint64_t *ret_2m, uint64_t *ret_1g) {
        size_t regions = anon_len / REGION_2M, stride;
        uint64_t last_2m = UINT64_MAX, n2m = 0, n1g = 0;
        uint8_t *seen_1g;
        int fd;

        *ret_2m = *ret_1g = 0;
        if (anon == MAP_FAILED || regions == 0)
                return;
        fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        seen_1g = calloc(1 << 16, 1); /* up to 64 TiB of physical memory */
        if (!seen_1g) {
                close(fd);
                return;
        }
        stride = kept_stride(regions, keep);
        for (size_t i = 0; i < regions; i++)
                for (unsigned k = 0; k < keep; k++) {
                        uintptr_t va = (uintptr_t) anon + i * REGION_2M + k * stride * PAGE_4K;
                        uint64_t e, pfn;

                        if (pread(fd, &e, sizeof(e), (off_t) (va / PAGE_4K * sizeof(e))) != sizeof(e))
                                continue;
                        pfn = e & ((1ULL << 55) - 1);
                        if (!(e & (1ULL << 63)) || pfn == 0)
                                continue;
                        /* Kept pages of one region mostly share a frame: counting changes is enough there,
                         * the 1 GiB frames get a proper set. */
                        if (pfn / PAGES_PER_2M != last_2m) {
                                last_2m = pfn / PAGES_PER_2M;
                                n2m++;
                        }
                        if (pfn / (PAGES_PER_2M * 512) < (1 << 16) && !seen_1g[pfn / (PAGES_PER_2M * 512)]) {
                                seen_1g[pfn / (PAGES_PER_2M * 512)] = 1;
                                n1g++;
                        }
                }
        free(seen_1g);
        close(fd);
        *ret_2m = n2m;
        *ret_1g = n1g;
}

/* Blocks until stdin reaches EOF (or fails) or a stop signal arrives. */
static void wait_for_stop(void) {
        struct pollfd p[2];
        char buf[4096];
        int sfd;

        sfd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
        p[0] = (struct pollfd) { .fd = STDIN_FILENO, .events = POLLIN };
        p[1] = (struct pollfd) { .fd = sfd, .events = POLLIN };
        for (;;) {
                if (stop_requested())
                        break;
                if (poll(p, sfd >= 0 ? 2 : 1, sfd >= 0 ? -1 : 1000) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                if (p[0].revents) {
                        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

                        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        if (n <= 0)
                                break; /* EOF, or stdin is unusable: stop either way */
                }
        }
        if (sfd >= 0)
                close(sfd);
}

int main(int argc, char *argv[]) {
        uint64_t avail0, avail, cache_mib, anon_mib, kept_mib, frames_2m, frames_1g;
        struct statvfs sv;
        double t0, t_cache, t_anon;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 1 : 0;
        if (geteuid() != 0) {
                fprintf(stderr, "bench-fragment needs root.\n");
                return 77;
        }

        /* Blocked from here on: see stop_requested(). A closed stdout must not kill us before cleanup. */
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGTERM);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGHUP);
        sigprocmask(SIG_BLOCK, &stop_signals, NULL);
        signal(SIGPIPE, SIG_IGN);

        avail0 = meminfo_mib("MemAvailable");
        cache_mib = arg_cache_mib != UINT64_MAX ? arg_cache_mib : avail0 * CACHE_PERCENT / 100;
        /* Never fill the disk: leave it a quarter of its free space, and at least 1 GiB. */
        if (cache_mib > 0 && statvfs(arg_dir, &sv) == 0) {
                uint64_t free_mib = (uint64_t) sv.f_bavail * sv.f_frsize / MIB;
                uint64_t room = free_mib > 1024 ? (free_mib - 1024) * 3 / 4 : 0;

                if (cache_mib > room) {
                        fprintf(stderr, "Only %" PRIu64 " MiB free in %s: cache capped at %" PRIu64 " MiB.\n",
                                free_mib, arg_dir, room);
                        cache_mib = room;
                }
        }
        t0 = now_s();
        r = fill_cache(cache_mib);
        if (r < 0)
                goto finish;
        t_cache = now_s() - t0;

        /* Capped once the cache is in (it counts as available: reclaim takes some of it back while the
         * anonymous pages are touched, which only mixes the two further). Locked pages cannot be
         * reclaimed, so the cap is what keeps the touch clear of the OOM killer. */
        avail = meminfo_mib("MemAvailable");
        {
                uint64_t cap = avail > SAFE_MIB ? avail - SAFE_MIB : 0;

                if (cap > avail * ANON_MAX_PERCENT / 100)
                        cap = avail * ANON_MAX_PERCENT / 100;
                anon_mib = arg_anon_mib != UINT64_MAX ? arg_anon_mib : avail0 * ANON_PERCENT / 100;
                if (anon_mib > cap) {
                        if (arg_anon_mib != UINT64_MAX)
                                fprintf(stderr, "MemAvailable is %" PRIu64 " MiB: anon capped at %" PRIu64
                                        " MiB.\n", avail, cap);
                        anon_mib = cap;
                }
                anon_mib &= ~1ULL; /* whole 2 MiB regions */
        }
        t0 = now_s();
        r = fill_anon(anon_mib, arg_keep);
        if (r < 0)
                goto finish;
        t_anon = now_s() - t0;

        kept_mib = anon_mib / 2 * arg_keep * PAGE_4K / MIB;
        count_frames(arg_keep, &frames_2m, &frames_1g);
        printf("ready cache_mib=%" PRIu64 " anon_mib=%" PRIu64 " kept_mib=%" PRIu64 " keep_per_2m=%u"
               " kept_2m_frames=%" PRIu64 " kept_1g_frames=%" PRIu64 " cache_s=%.1f anon_s=%.1f"
               " mem_available_mib=%" PRIu64 "\n",
               cache_mib, anon_mib, kept_mib, arg_keep, frames_2m, frames_1g, t_cache, t_anon,
               meminfo_mib("MemAvailable"));
        fflush(stdout);

        wait_for_stop();
        r = 0;
finish:
        cleanup();
        if (r == -EINTR)
                r = 0; /* stopped during the setup: that is a normal end too */
        return r < 0 ? 1 : 0;
}
