/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: hugepaged.conf through config_load(), the parser the daemon runs at start. */
#include <limits.h>
#include <stdbool.h>

#include "config.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char path[PATH_MAX];
        Config c;

        if (!path[0]) {
                fuzz_setup_logging();
                snprintf(path, sizeof(path), "%s/hugepaged.conf", fuzz_scratch_dir());
        }
        fuzz_write_file(path, data, size);

        config_init(&c);
        (void) config_load(&c, path, true);
        /* Whatever was accepted must be usable. */
        for (size_t i = 0; i < c.n_pools; i++) {
                uint64_t lo, hi;
                config_pool_limits(&c, c.pools[i].page_size, 0, &lo, &hi);
        }
        config_done(&c);
        return 0;
}
