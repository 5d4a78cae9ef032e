/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The reservation object, its lifetimes, and the manager's index of reservations by name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "manager-internal.h"
#include "util.h"

static const char *const lifetime_table[_LIFETIME_MAX] = {
        [LIFETIME_EXPLICIT] = "explicit",
        [LIFETIME_CALLER] = "caller",
        [LIFETIME_PID] = "pid",
};

const char *lifetime_to_string(Lifetime l) {
        return l >= 0 && l < _LIFETIME_MAX ? lifetime_table[l] : NULL;
}

Lifetime lifetime_from_string(const char *s) {
        for (int i = 0; s && i < _LIFETIME_MAX; i++)
                if (streq(s, lifetime_table[i]))
                        return (Lifetime) i;
        return _LIFETIME_INVALID;
}

Reservation *reservation_free(Reservation *r) {
        StateReservation persisted;

        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->pid_source);
        safe_close(r->pidfd);
        reservation_to_record(r, &persisted);
        state_reservation_done(&persisted);
        free(r->mount_path);
        free(r);
        return NULL;
}

static size_t reservation_index(Manager *m, const char *name, bool *found) {
        size_t lo = 0, hi = m->n_reservations;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(m->reservations[mid]->name, name);
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

Reservation *manager_find_reservation(Manager *m, const char *name) {
        bool found;
        size_t i = reservation_index(m, name, &found);
        return found ? m->reservations[i] : NULL;
}

int manager_link_reservation(Manager *m, Reservation *r) {
        bool found;
        size_t i = reservation_index(m, r->name, &found);
        Reservation **t;

        if (found)
                return -EEXIST;
        t = realloc(m->reservations, (m->n_reservations + 1) * sizeof(*t));
        if (!t)
                return -ENOMEM;
        m->reservations = t;
        memmove(t + i + 1, t + i, (m->n_reservations - i) * sizeof(*t));
        t[i] = r;
        m->n_reservations++;
        r->manager = m;
        return 0;
}

void manager_unlink_reservation(Manager *m, Reservation *r) {
        bool found;
        size_t i = reservation_index(m, r->name, &found);
        if (!found || m->reservations[i] != r)
                return;
        memmove(m->reservations + i, m->reservations + i + 1, (m->n_reservations - i - 1) * sizeof(Reservation *));
        m->n_reservations--;
}

void reservation_account(Manager *m, Reservation *r, bool add) {
        for (size_t i = 0; i < r->n_node_pages; i++) {
                Pool *p = manager_find_pool(m, r->page_size, r->node_pages[i].node);
                if (!p)
                        continue;
                if (add)
                        p->reserved += r->node_pages[i].amount;
                else
                        p->reserved -= MIN(p->reserved, r->node_pages[i].amount);
        }
}

void reservation_to_record(const Reservation *r, StateReservation *ret) {
        *ret = (StateReservation) {
                .name = r->name,
                .page_size = r->page_size,
                .pages = r->pages,
                .node_pages = r->node_pages,
                .n_node_pages = r->n_node_pages,
                .req_nodes = r->req_nodes,
                .n_req_nodes = r->n_req_nodes,
                .req_node_pages = r->req_node_pages,
                .n_req_node_pages = r->n_req_node_pages,
                .uid = r->uid,
                .lifetime = r->lifetime,
                .pid = r->pid,
                .pid_starttime = r->pid_starttime,
                .caller = r->caller,
                .created_usec = r->created_usec,
                .held = r->held,
        };
}

int reservation_from_record(Manager *m, StateReservation *rec, Reservation **ret) {
        Reservation *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        *r = (Reservation) {
                .manager = m,
                .name = TAKE_PTR(rec->name),
                .page_size = rec->page_size,
                .pages = rec->pages,
                .node_pages = TAKE_PTR(rec->node_pages),
                .n_node_pages = rec->n_node_pages,
                .req_nodes = TAKE_PTR(rec->req_nodes),
                .n_req_nodes = rec->n_req_nodes,
                .req_node_pages = TAKE_PTR(rec->req_node_pages),
                .n_req_node_pages = rec->n_req_node_pages,
                .uid = rec->uid,
                .lifetime = rec->lifetime,
                .pid = rec->pid,
                .pid_starttime = rec->pid_starttime,
                .caller = TAKE_PTR(rec->caller),
                .created_usec = rec->created_usec,
                .held = rec->held,
                .pidfd = -EBADF,
        };
        *ret = r;
        return 0;
}
