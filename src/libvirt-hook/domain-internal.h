/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What domain-parse.c and domain-compute.c share and nobody else needs. */
#pragma once

#include "domain.h"
#include "macro.h"

/* Sets e->message and returns r. */
int domain_error(DomainError *e, int r, const char *fmt, ...) _printf_(3, 4);

/* "guest NUMA cell 2", "<memory model='dimm'> #1", "the <maxMemory> hot-plug room": names c in errors. */
const char *domain_cell_what(char buf[static 64], const DomainCell *c);
