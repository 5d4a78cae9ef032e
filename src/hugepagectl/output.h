/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl's output pieces shared by the verbs and the monitor: tables, a reservation's details, and their JSON. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "json.h"
#include "proxy.h"
#include "util.h"

#define GIB (UINT64_C(1) << 30)

char *size_str(char buf[static FORMAT_SIZE_MAX], uint64_t bytes);
void print_timestamp(FILE *f);

void json_pool(Json *j, const PoolRow *p);
void json_reservation_row(Json *j, const ReservationRow *r);
void json_reservation_info(Json *j, const ReservationInfo *i);

void print_node_pages(FILE *f, const ReservationInfo *i);
void print_reservation_info(const ReservationInfo *i);
void print_pool_header(void);
void print_pool_row(const PoolRow *p);
void print_reservation_table(const ReservationRow *rows, size_t n);
