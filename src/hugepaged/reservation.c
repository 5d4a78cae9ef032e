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
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->pid_source);
        safe_close(r->pidfd);
        free(r->name);
        free(r->node_pages);
        free(r->req_nodes);
        free(r->req_node_pages);
        free(r->caller);
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
