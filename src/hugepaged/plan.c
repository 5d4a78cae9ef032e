/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Planning a Reserve: the request's checks, its normalized form (compared on retries), the machine's RAM and
 * the [Limits]. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job-queue.h"
#include "macro.h"
#include "util.h"

void plan_done(Plan *p) {
        free(p->nodes);
        free(p->exact);
        free(p->req_nodes);
}

static int node_pages_cmp(const void *a, const void *b) {
        const NodeAmount *x = a, *y = b;
        return x->node < y->node ? -1 : x->node > y->node;
}
static int u32_cmp(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

static uint64_t bytes_to_pages(uint64_t bytes, uint64_t page_size) {
        return bytes / page_size + (bytes % page_size != 0);
}

void format_nodes(char *buf, size_t len, const uint32_t *nodes, size_t n) {
        size_t o = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < n && o + 12 < len; i++)
                o += (size_t) snprintf(buf + o, len - o, "%s%" PRIu32, i ? "," : "", nodes[i]);
}

/* A request beyond the machine's RAM can never succeed, and trying would first squeeze every other user of
 * memory while the kernel grabs what it can. Refuse it before touching anything. */
static int plan_check_ram(Manager *m, const Plan *plan, HpError *error) {
        char ps[FORMAT_SIZE_MAX], ram[FORMAT_SIZE_MAX];
        if (m->mem_total == 0 || plan->pages <= m->mem_total / plan->page_size)
                return 0;
        return hp_error_set(error, HP_ERROR_INSUFFICIENT_PAGES,
                            "cannot reserve %" PRIu64 " %s pages: that is more than the machine's %s of memory",
                            plan->pages, page_size_str(ps, plan->page_size), format_size(ram, sizeof(ram), m->mem_total));
}

int plan_build(Manager *m, const ReserveRequest *req, Plan *plan, HpError *error) {
        char ps[FORMAT_SIZE_MAX];

        *plan = (Plan) {};
        plan->page_size = req->page_size == 0 ? m->default_page_size : req->page_size;
        if (!manager_has_page_size(m, plan->page_size))
                return hp_error_set(error, HP_ERROR_UNSUPPORTED_PAGE_SIZE,
                                    "page size %" PRIu64 " is not supported by this kernel", plan->page_size);
        page_size_str(ps, plan->page_size);

        if (req->has_nodes && req->has_node_bytes)
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "give either 'nodes' or 'node_bytes', not both");

        if (req->has_node_bytes) {
                uint64_t sum = 0;
                if (req->n_node_bytes == 0)
                        return hp_error_set(error, HP_ERROR_INVALID_ARGS, "'node_bytes' is empty");
                plan->exact = calloc(req->n_node_bytes, sizeof(NodeAmount));
                if (!plan->exact)
                        return -ENOMEM;
                for (size_t i = 0; i < req->n_node_bytes; i++) {
                        const NodeAmount *nb = &req->node_bytes[i];
                        if (nb->amount == 0)
                                return hp_error_set(error, HP_ERROR_INVALID_ARGS,
                                                    "'node_bytes' asks for 0 bytes on node %" PRIu32, nb->node);
                        if (nb->amount > UINT64_MAX - sum)
                                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "'node_bytes' adds up to more than 2^64 bytes");
                        sum += nb->amount;
                        plan->exact[i] = (NodeAmount) { nb->node, bytes_to_pages(nb->amount, plan->page_size) };
                }
                plan->n_exact = req->n_node_bytes;
                qsort(plan->exact, plan->n_exact, sizeof(NodeAmount), node_pages_cmp);
                for (size_t i = 0; i < plan->n_exact; i++) {
                        if (i > 0 && plan->exact[i].node == plan->exact[i - 1].node)
                                return hp_error_set(error, HP_ERROR_INVALID_ARGS,
                                                    "'node_bytes' names node %" PRIu32 " twice", plan->exact[i].node);
                        if (!manager_has_node(m, plan->exact[i].node))
                                return hp_error_set(error, HP_ERROR_NO_SUCH_NODE,
                                                    "node %" PRIu32 " does not exist or has no memory", plan->exact[i].node);
                        plan->pages += plan->exact[i].amount;
                }
                if (req->bytes != 0 && req->bytes != sum)
                        return hp_error_set(error, HP_ERROR_INVALID_ARGS,
                                            "bytes is %" PRIu64 " but 'node_bytes' adds up to %" PRIu64
                                            "; give 0 or their sum", req->bytes, sum);
                plan->nodes = calloc(plan->n_exact, sizeof(uint32_t));
                if (!plan->nodes)
                        return -ENOMEM;
                for (size_t i = 0; i < plan->n_exact; i++)
                        plan->nodes[i] = plan->exact[i].node;
                plan->n_nodes = plan->n_exact;
                return plan_check_ram(m, plan, error);
        }

        if (req->bytes == 0)
                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "bytes must be greater than 0");
        plan->pages = bytes_to_pages(req->bytes, plan->page_size);

        if (req->has_nodes) {
                if (req->n_nodes == 0)
                        return hp_error_set(error, HP_ERROR_INVALID_ARGS, "'nodes' is empty");
                plan->req_nodes = calloc(req->n_nodes, sizeof(uint32_t));
                if (!plan->req_nodes)
                        return -ENOMEM;
                memcpy(plan->req_nodes, req->nodes, req->n_nodes * sizeof(uint32_t));
                qsort(plan->req_nodes, req->n_nodes, sizeof(uint32_t), u32_cmp);
                for (size_t i = 0; i < req->n_nodes; i++) {
                        if (i > 0 && plan->req_nodes[i] == plan->req_nodes[i - 1])
                                return hp_error_set(error, HP_ERROR_INVALID_ARGS, "'nodes' names node %" PRIu32 " twice",
                                                    plan->req_nodes[i]);
                        if (!manager_has_node(m, plan->req_nodes[i]))
                                return hp_error_set(error, HP_ERROR_NO_SUCH_NODE,
                                                    "node %" PRIu32 " does not exist or has no memory", plan->req_nodes[i]);
                }
                plan->n_req_nodes = req->n_nodes;
        }

        const uint32_t *src = req->has_nodes ? plan->req_nodes : m->nodes;
        size_t n = req->has_nodes ? plan->n_req_nodes : m->n_nodes;
        if (n == 0)
                return hp_error_set(error, HP_ERROR_NO_SUCH_NODE, "no node with memory is available");
        plan->nodes = calloc(n, sizeof(uint32_t));
        if (!plan->nodes)
                return -ENOMEM;
        memcpy(plan->nodes, src, n * sizeof(uint32_t));
        plan->n_nodes = n;
        return plan_check_ram(m, plan, error);
}

bool reservation_matches(const Reservation *r, const Plan *plan, const ReserveRequest *req) {
        if (r->page_size != plan->page_size || r->pages != plan->pages || r->lifetime != req->lifetime ||
            r->uid != req->uid || r->held != req->hold)
                return false;
        if (r->lifetime == LIFETIME_PID && r->pid != req->pid)
                return false;
        if (r->lifetime == LIFETIME_CALLER && (!r->caller || !req->caller || !streq(r->caller, req->caller)))
                return false;
        if (r->n_req_nodes != plan->n_req_nodes ||
            (plan->n_req_nodes > 0 && memcmp(r->req_nodes, plan->req_nodes, plan->n_req_nodes * sizeof(uint32_t)) != 0))
                return false;
        /* Field by field: NodeAmount has padding, which memcmp would compare too. */
        if (r->n_req_node_pages != plan->n_exact)
                return false;
        for (size_t i = 0; i < plan->n_exact; i++)
                if (r->req_node_pages[i].node != plan->exact[i].node ||
                    r->req_node_pages[i].amount != plan->exact[i].amount)
                        return false;
        return true;
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* [Limits]: per uid (not for root, who is trusted with the machine anyway), and the total for everyone. A retry
 * of an existing reservation never gets here, so it is never refused for a limit it already counts in. */
int check_limits(Manager *m, const Plan *plan, uid_t uid, HpError *error) {
        const Config *c = &m->config;
        char a[FORMAT_SIZE_MAX], b[FORMAT_SIZE_MAX], l[FORMAT_SIZE_MAX], ram[FORMAT_SIZE_MAX];
        uint64_t bytes, user_bytes = 0, total = 0, max_total;
        unsigned user_n = 0;

        bytes = plan->pages > UINT64_MAX / plan->page_size ? UINT64_MAX : plan->pages * plan->page_size;
        /* Reserves whose kernel part is running count as granted: two concurrent requests must not both fit
         * into the same room. */
        for (Job *j = m->jobs; j; j = j->next)
                if (j->type == JOB_RESERVE && j->worker) {
                        total = add_sat(total, j->bytes);
                        if (j->req.uid == uid) {
                                user_bytes = add_sat(user_bytes, j->bytes);
                                user_n++;
                        }
                }
        for (size_t i = 0; i < m->n_reservations; i++) {
                const Reservation *r = m->reservations[i];
                uint64_t rb = r->pages * r->page_size;
                total = add_sat(total, rb);
                if (r->uid == uid) {
                        user_bytes = add_sat(user_bytes, rb);
                        user_n++;
                }
        }

        if (uid != 0) {
                if (c->max_reservations_per_user != UINT_MAX && user_n >= c->max_reservations_per_user)
                        return hp_error_set(error, HP_ERROR_LIMIT_EXCEEDED,
                                            "uid %u has %u reservations; the limit per user is %u "
                                            "(MaxReservationsPerUser=)",
                                            (unsigned) uid, user_n, c->max_reservations_per_user);
                if (c->max_bytes_per_user != CONFIG_UNLIMITED && add_sat(user_bytes, bytes) > c->max_bytes_per_user)
                        return hp_error_set(error, HP_ERROR_LIMIT_EXCEEDED,
                                            "reserving %s would bring uid %u to %s; the limit per user is %s "
                                            "(MaxBytesPerUser=)",
                                            format_size(a, sizeof(a), bytes), (unsigned) uid,
                                            format_size(b, sizeof(b), add_sat(user_bytes, bytes)),
                                            format_size(l, sizeof(l), c->max_bytes_per_user));
        }

        max_total = config_max_reserved_bytes(c, m->mem_total);
        if (max_total != CONFIG_UNLIMITED && add_sat(total, bytes) > max_total) {
                if (c->max_reserved_percent > 0 && m->mem_total == 0)
                        return hp_error_set(error, HP_ERROR_LIMIT_EXCEEDED,
                                            "MaxReservedBytes=%u%% cannot be enforced: the size of RAM is unknown",
                                            c->max_reserved_percent);
                if (c->max_reserved_percent > 0)
                        (void) snprintf(ram, sizeof(ram), "%u%%", c->max_reserved_percent);
                else
                        format_size(ram, sizeof(ram), max_total);
                return hp_error_set(error, HP_ERROR_LIMIT_EXCEEDED,
                                    "reserving %s would bring the reserved total to %s; the limit is %s "
                                    "(MaxReservedBytes=%s)",
                                    format_size(a, sizeof(a), bytes), format_size(b, sizeof(b), add_sat(total, bytes)),
                                    format_size(l, sizeof(l), max_total), ram);
        }
        return 0;
}
