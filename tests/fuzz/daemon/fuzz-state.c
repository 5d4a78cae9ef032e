/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: the state file through state_load(), the parser that must distrust what it reads after a
 * crash or tampering. */
#include <dirent.h>
#include <limits.h>

#include "fuzz-util.h"
#include "state.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* state_load() keeps a damaged file aside as state.corrupt-*: clear those so the directory doesn't fill up. */
static void clean_dir(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        if (!d)
                return;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char path[PATH_MAX];
        State s;

        if (!path[0]) {
                fuzz_setup_logging();
                snprintf(path, sizeof(path), "%s/state", fuzz_scratch_dir());
        }
        clean_dir(fuzz_scratch_dir());
        fuzz_write_file(path, data, size);

        if (state_load(path, &s) >= 0) {
                /* What was accepted must be self-consistent: the daemon relies on it without checking again. */
                for (size_t i = 0; i < s.n_pools; i++)
                        if (s.pools[i].range_lo > s.pools[i].range_hi || s.pools[i].node >= NODE_MAX)
                                abort();
                for (size_t i = 0; i < s.n_reservations; i++) {
                        StateReservation *r = s.reservations[i];
                        uint64_t sum = 0;
                        if (!reservation_name_is_valid(r->name) || r->n_node_pages == 0)
                                abort();
                        for (size_t j = 0; j < r->n_node_pages; j++)
                                sum += r->node_pages[j].amount;
                        if (sum != r->pages)
                                abort();
                }
                state_done(&s);
        }
        return 0;
}
