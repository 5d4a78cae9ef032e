/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hugepagectl's text and JSON renderings of pools and reservations; every verb prints through these, so the
 * output of status, pools, list, show and reserve stays the same wherever it comes from. */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "output.h"

char *size_str(char buf[static FORMAT_SIZE_MAX], uint64_t bytes) {
        return format_size(buf, FORMAT_SIZE_MAX, bytes);
}

void print_timestamp(FILE *f) {
        struct timespec ts;
        struct tm tm;
        char buf[32];

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        (void) localtime_r(&ts.tv_sec, &tm);
        (void) strftime(buf, sizeof buf, "%H:%M:%S", &tm);
        fprintf(f, "%s.%03ld ", buf, ts.tv_nsec / 1000000);
}

void json_pool(Json *j, const PoolRow *p) {
        json_begin_object(j);
        json_key(j, "page_size"); json_u64(j, p->page_size);
        json_key(j, "node"); json_i64(j, p->node);
        json_key(j, "total"); json_u64(j, p->total);
        json_key(j, "free"); json_u64(j, p->free);
        json_key(j, "surplus"); json_u64(j, p->surplus);
        json_key(j, "reserved"); json_u64(j, p->reserved);
        json_key(j, "floor"); json_u64(j, p->floor);
        json_key(j, "adopted_spare"); json_u64(j, p->adopted_spare);
        json_end_object(j);
}

/* The fields a reservation's row and its details both start with. */
static void json_reservation_begin(Json *j, const char *name, uint64_t page_size, uint64_t pages) {
        json_begin_object(j);
        json_key(j, "name"); json_string(j, name);
        json_key(j, "page_size"); json_u64(j, page_size);
        json_key(j, "pages"); json_u64(j, pages);
        json_key(j, "bytes"); json_u64(j, pages * page_size);
}

void json_reservation_row(Json *j, const ReservationRow *r) {
        json_reservation_begin(j, r->name, r->page_size, r->pages);
        json_key(j, "owner_uid"); json_u64(j, r->uid);
        json_key(j, "lifetime"); json_string(j, r->lifetime);
        json_key(j, "path"); json_string(j, r->path);
        json_end_object(j);
}

void json_reservation_info(Json *j, const ReservationInfo *i) {
        json_reservation_begin(j, i->name, i->page_size, i->pages);
        json_key(j, "node_pages");
        json_begin_array(j);
        for (size_t k = 0; k < i->n_node_pages; k++) {
                json_begin_object(j);
                json_key(j, "node"); json_u64(j, i->node_pages[k].node);
                json_key(j, "pages"); json_u64(j, i->node_pages[k].amount);
                json_end_object(j);
        }
        json_end_array(j);
        json_key(j, "owner_uid"); json_u64(j, i->uid);
        json_key(j, "lifetime"); json_string(j, i->lifetime);
        json_key(j, "pid");
        if (i->pid > 0)
                json_u64(j, i->pid);
        else
                json_null(j);
        json_key(j, "created_usec"); json_u64(j, i->created_usec);
        json_key(j, "state");
        if (i->state)
                json_string(j, i->state);
        else
                json_null(j);
        json_key(j, "path"); json_string(j, i->path);
        json_key(j, "held"); json_bool(j, i->held);
        json_key(j, "mount_path");
        if (i->held && i->mount_path)
                json_string(j, i->mount_path);
        else
                json_null(j);
        json_end_object(j);
}

void print_node_pages(FILE *f, const ReservationInfo *i) {
        char b[FORMAT_SIZE_MAX];

        for (size_t k = 0; k < i->n_node_pages; k++)
                fprintf(f, "%snode %" PRIu32 ": %" PRIu64 " (%s)", k ? ", " : "", i->node_pages[k].node,
                        i->node_pages[k].amount, size_str(b, i->node_pages[k].amount * i->page_size));
        if (i->n_node_pages == 0)
                fputs("-", f);
}

void print_reservation_info(const ReservationInfo *i) {
        char b1[FORMAT_SIZE_MAX], b2[FORMAT_SIZE_MAX], when[64] = "-";

        if (i->created_usec > 0) {
                time_t t = (time_t) (i->created_usec / 1000000);
                struct tm tm;
                if (localtime_r(&t, &tm))
                        (void) strftime(when, sizeof when, "%a %Y-%m-%d %H:%M:%S %Z", &tm);
        }
        printf("       Name: %s\n", i->name);
        printf("       Size: %s\n", size_str(b1, i->pages * i->page_size));
        printf("      Pages: %" PRIu64 " of %s\n", i->pages, size_str(b2, i->page_size));
        printf("      Nodes: ");
        print_node_pages(stdout, i);
        printf("\n   Lifetime: %s", i->lifetime ?: "-");
        if (i->pid > 0)
                printf(" (pid %" PRIu32 ")", i->pid);
        printf("\n  Owner UID: %" PRIu32 "\n", i->uid);
        printf("    Created: %s\n", when);
        if (i->state)
                printf("      State: %s\n", i->state);
        printf("       Path: %s\n", i->path);
        if (i->held && i->mount_path)
                printf("       Held: yes, at %s\n", i->mount_path);
}

void print_pool_header(void) {
        printf("%-10s %5s %8s %8s %8s %8s %8s %8s\n", "PAGE SIZE", "NODE", "TOTAL", "FREE", "SURPLUS", "RESERVED",
               "FLOOR", "ADOPTED");
}

void print_pool_row(const PoolRow *p) {
        char b[FORMAT_SIZE_MAX], node[16];

        if (p->node < 0)
                snprintf(node, sizeof node, "all");
        else
                snprintf(node, sizeof node, "%" PRIi32, p->node);
        printf("%-10s %5s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
               size_str(b, p->page_size), node, p->total, p->free, p->surplus, p->reserved, p->floor,
               p->adopted_spare);
}

void print_reservation_table(const ReservationRow *rows, size_t n) {
        char b1[FORMAT_SIZE_MAX], b2[FORMAT_SIZE_MAX];
        int w = 4;

        for (size_t i = 0; i < n; i++)
                w = MAX(w, (int) strlen(rows[i].name));
        printf("%-*s %10s %10s %8s %-9s %6s\n", w, "NAME", "SIZE", "PAGE SIZE", "PAGES", "LIFETIME", "UID");
        for (size_t i = 0; i < n; i++)
                printf("%-*s %10s %10s %8" PRIu64 " %-9s %6" PRIu32 "\n", w, rows[i].name,
                       size_str(b1, rows[i].pages * rows[i].page_size), size_str(b2, rows[i].page_size), rows[i].pages,
                       rows[i].lifetime, rows[i].uid);
}
