/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by the libFuzzer harnesses: a scratch directory on tmpfs and writing an input to a file. */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static char fuzz_dir[256];

static inline int fuzz_remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

/* At exit (libFuzzer exits normally at the end of -max_total_time and -runs), so runs leave nothing on tmpfs.
 * A crash keeps the directory, with the state the daemon code saw. */
static inline void fuzz_scratch_cleanup(void) {
        if (fuzz_dir[0])
                (void) nftw(fuzz_dir, fuzz_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The daemon fsyncs its state file: on tmpfs that costs nothing, so the fuzzer keeps its speed. */
static inline const char *fuzz_scratch_dir(void) {
        if (fuzz_dir[0])
                return fuzz_dir;
        snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/hugepaged-fuzz-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ?: "/tmp"));
        if (!mkdtemp(fuzz_dir))
                abort();
        atexit(fuzz_scratch_cleanup);
        return fuzz_dir;
}

/* Logging stays off unless HUGEPAGED_FUZZ_LOG=1: libFuzzer's own output is what matters. */
static inline void fuzz_setup_logging(void) {
        const char *v = getenv("HUGEPAGED_FUZZ_LOG");
        log_set_max_level(v && v[0] == '1' ? LOG_DEBUG : -1);
}

static inline void fuzz_write_file(const char *path, const uint8_t *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                abort();
        while (size > 0) {
                ssize_t n = write(fd, data, size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        abort();
                data += n;
                size -= (size_t) n;
        }
        close(fd);
}
