/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the libvirt hook's domain XML parser and computation, exactly as the hook runs them. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <libxml/parser.h>

#include "domain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        DomainDef *d = NULL;
        DomainNeeds *n = NULL;
        DomainError e = {};

        if (domain_parse((const char *) data, size, &d, &e) < 0)
                return 0;
        if (domain_compute(d, UINT64_C(2) << 20, 4096, &n, &e) >= 0) {
                free(domain_needs_format(n));
                domain_needs_free(n);
        }
        domain_def_free(d);
        return 0;
}
