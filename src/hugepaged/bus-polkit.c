/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Asynchronous polkit checks in the manner of systemd's src/shared/bus-polkit.c, on public sd-bus calls only:
 * the first dispatch of a method call asks polkit and returns without a reply; polkit's answer is recorded
 * against that message, which is rewound and put back into the read queue; the second dispatch finds the
 * answer. Between the two, the daemon answers everyone else. An entry lives from the first dispatch until the
 * event loop is idle after the second one, or until its caller leaves the bus, whichever comes first. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-polkit.h"
#include "log.h"
#include "macro.h"

#define POLKIT_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
#define POLKIT_CHECK_ALLOW_USER_INTERACTION 1U

typedef struct PolkitQuery PolkitQuery;

struct PolkitQuery {
        PolkitRegistry *registry;
        PolkitQuery *prev, *next;

        sd_bus_message *request; /* the caller's message, dispatched again once polkit has answered */
        char *action;
        char *sender;
        uid_t uid;

        sd_bus_slot *slot;       /* the CheckAuthorization call in flight */
        sd_bus_track *track;     /* the caller; when it leaves, the entry goes */
        sd_event_source *defer;  /* frees the entry after the second dispatch */

        bool done;
        bool authorized;
        sd_bus_error error;      /* why not, when done && !authorized */
};

struct PolkitRegistry {
        PolkitQuery *queries;
        size_t n_queries;
};

static PolkitQuery *polkit_query_free(PolkitQuery *q) {
        if (!q)
                return NULL;
        if (q->registry) {
                if (q->prev)
                        q->prev->next = q->next;
                else
                        q->registry->queries = q->next;
                if (q->next)
                        q->next->prev = q->prev;
                q->registry->n_queries--;
        }
        /* Dropping the slot also drops polkit's reply, should it still come. */
        sd_bus_slot_unref(q->slot);
        sd_bus_track_unref(q->track);
        sd_event_source_disable_unref(q->defer);
        sd_bus_message_unref(q->request);
        sd_bus_error_free(&q->error);
        free(q->action);
        free(q->sender);
        free(q);
        return NULL;
}

PolkitRegistry *polkit_registry_free(PolkitRegistry *r) {
        if (!r)
                return NULL;
        while (r->queries)
                polkit_query_free(r->queries);
        free(r);
        return NULL;
}

size_t polkit_registry_size(const PolkitRegistry *r) {
        return r ? r->n_queries : 0;
}

int bus_message_get_sender_uid(BusContext *c, sd_bus_message *message, uid_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *sender = sd_bus_message_get_sender(message);
        bool cacheable = c && sender && sender[0] == ':';
        uid_t uid;
        int r;

        if (cacheable)
                for (size_t i = 0; i < ELEMENTSOF(c->sender_uids); i++)
                        if (c->sender_uids[i].name && streq(c->sender_uids[i].name, sender)) {
                                *ret = c->sender_uids[i].uid;
                                return 0;
                        }

        /* No SD_BUS_CREDS_AUGMENT: what /proc says about a pid is racy, what the bus driver says is not. */
        r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        if (sd_bus_creds_get_augmented_mask(creds) & SD_BUS_CREDS_EUID)
                return -EPERM;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;
        if (cacheable) {
                char *name = strdup(sender);
                if (name) {
                        unsigned i = c->sender_uid_next++ % ELEMENTSOF(c->sender_uids);
                        free(c->sender_uids[i].name);
                        c->sender_uids[i].name = name;
                        c->sender_uids[i].uid = uid;
                }
        }
        *ret = uid;
        return 0;
}

static PolkitQuery *registry_find(PolkitRegistry *reg, sd_bus_message *message, const char *action) {
        for (PolkitQuery *q = reg ? reg->queries : NULL; q; q = q->next)
                if (q->request == message && streq(q->action, action))
                        return q;
        return NULL;
}

static size_t registry_count_sender(PolkitRegistry *reg, const char *sender) {
        size_t n = 0;
        for (PolkitQuery *q = reg ? reg->queries : NULL; q; q = q->next)
                if (streq(q->sender, sender))
                        n++;
        return n;
}

static int on_defer(sd_event_source *s, void *userdata) {
        PolkitQuery *q = userdata;
        /* The message has been dispatched the second time by now: its answer is no longer needed. */
        polkit_query_free(q);
        return 0;
}

static int on_sender_gone(sd_bus_track *t, void *userdata) {
        PolkitQuery *q = userdata;

        log_debug("polkit: %s left the bus while its check for %s was %s; dropping it", q->sender, q->action,
                  q->done ? "being answered" : "pending");
        polkit_query_free(q);
        return 0;
}

static void query_set_answer(PolkitQuery *q, sd_bus_message *reply) {
        const sd_bus_error *e;
        int authorized, challenge, r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                e = sd_bus_message_get_error(reply);
                if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                        log_warning("polkit is not available on the bus: denying %s to uid %u", q->action,
                                    (unsigned) q->uid);
                        (void) sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "%s needs authorization, but polkit is not available",
                                                 q->action);
                } else {
                        log_warning("polkit failed to check %s for uid %u: %s: %s", q->action, (unsigned) q->uid,
                                    e->name, e->message ?: "");
                        (void) sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "%s needs authorization, but polkit failed: %s", q->action,
                                                 e->message ?: e->name);
                }
                return;
        }

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                log_warning_errno(r, "polkit sent a malformed answer for %s: %m", q->action);
                (void) sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s needs authorization, but polkit's answer was malformed", q->action);
                return;
        }
        if (authorized) {
                q->authorized = true;
                return;
        }
        if (challenge)
                (void) sd_bus_error_setf(&q->error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                         "%s needs interactive authentication; allow it in the call, with an "
                                         "authentication agent running", q->action);
        else
                (void) sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "uid %u is not authorized by polkit for %s", (unsigned) q->uid, q->action);
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        sd_bus *bus = sd_bus_message_get_bus(q->request);
        int r;

        q->slot = sd_bus_slot_unref(q->slot);
        query_set_answer(q, reply);
        q->done = true;
        log_debug("polkit: %s for %s (uid %u): %s", q->action, q->sender, (unsigned) q->uid,
                  q->authorized ? "authorized" : q->error.message);

        /* At idle priority: the re-queued message (normal priority) is dispatched first. */
        r = sd_event_add_defer(sd_bus_get_event(bus), &q->defer, on_defer, q);
        if (r >= 0)
                r = sd_event_source_set_priority(q->defer, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                (void) sd_event_source_set_description(q->defer, "polkit-query-done");
        if (r >= 0)
                r = sd_bus_message_rewind(q->request, true);
        if (r >= 0)
                r = sd_bus_enqueue_for_read(bus, q->request);
        if (r < 0) {
                log_error_errno(r, "cannot dispatch %s's call again after polkit answered: %m", q->sender);
                (void) sd_bus_reply_method_errorf(q->request, SD_BUS_ERROR_FAILED,
                                                  "internal error after authorization: %s", strerror(-r));
                polkit_query_free(q);
        }
        return 0;
}

static int query_start(PolkitRegistry *reg, sd_bus_message *message, const char *action, const char *sender,
                       uid_t uid, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        sd_bus *bus = sd_bus_message_get_bus(message);
        bool interactive = sd_bus_message_get_allow_interactive_authorization(message) > 0;
        PolkitQuery *q;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->request = sd_bus_message_ref(message);
        q->uid = uid;
        q->action = strdup(action);
        q->sender = strdup(sender);
        if (!q->action || !q->sender) {
                polkit_query_free(q);
                return -ENOMEM;
        }

        /* Tracked first: a caller that is already gone fails here, before polkit is bothered. */
        r = sd_bus_track_new(bus, &q->track, on_sender_gone, q);
        if (r >= 0)
                r = sd_bus_track_add_name(q->track, sender);
        if (r < 0) {
                polkit_query_free(q);
                log_debug_errno(r, "polkit: cannot track %s: %m", sender);
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "%s: the caller left the bus", action);
        }

        r = sd_bus_message_new_method_call(bus, &call, POLKIT_NAME, POLKIT_PATH, POLKIT_INTERFACE,
                                           "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(call, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name", "s", sender,
                                          action, 0, interactive ? POLKIT_CHECK_ALLOW_USER_INTERACTION : 0U, "");
        if (r >= 0)
                /* The default timeout, as systemd's daemons use: a caller waits no longer than that either. */
                r = sd_bus_call_async(bus, &q->slot, call, on_polkit_reply, q, 0);
        if (r < 0) {
                polkit_query_free(q);
                return r;
        }

        q->registry = reg;
        q->next = reg->queries;
        if (q->next)
                q->next->prev = q;
        reg->queries = q;
        reg->n_queries++;
        log_debug("polkit: asking whether %s (uid %u) may %s%s; %zu checks pending", sender, (unsigned) uid, action,
                  interactive ? ", interactively" : "", reg->n_queries);
        return 0;
}

int bus_verify_polkit_async(BusContext *c, sd_bus_message *message, const char *action, sd_bus_error *error) {
        PolkitQuery *q;
        const char *sender;
        uid_t uid;
        int r;

        q = registry_find(c->polkit_registry, message, action);
        if (q) {
                if (!q->done)
                        return 0; /* dispatched again before polkit answered; the answer re-queues it */
                if (q->authorized)
                        return 1;
                return sd_bus_error_copy(error, &q->error);
        }

        r = bus_message_get_sender_uid(c, message, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s: cannot determine the caller's uid: %s", action, strerror(-r));
        if (uid == 0)
                return 1;

        sender = sd_bus_message_get_sender(message);
        if (!sender)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "%s: the caller has no bus name", action);

        if (!c->polkit_registry) {
                c->polkit_registry = calloc(1, sizeof(PolkitRegistry));
                if (!c->polkit_registry)
                        return -ENOMEM;
        }
        if (c->polkit_registry->n_queries >= POLKIT_PENDING_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "too many authorization checks are pending (%d); try again later",
                                         POLKIT_PENDING_MAX);
        if (registry_count_sender(c->polkit_registry, sender) >= POLKIT_PENDING_PER_SENDER_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "%s has %d authorization checks pending already; wait for their answers",
                                         sender, POLKIT_PENDING_PER_SENDER_MAX);

        return query_start(c->polkit_registry, message, action, sender, uid, error);
}

int bus_verify_owner_or_polkit(BusContext *c, sd_bus_message *message, uid_t owner_uid, const char *action,
                               const char *what, sd_bus_error *error) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uid_t uid;
        int r;

        r = bus_message_get_sender_uid(c, message, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s: cannot determine the caller's uid: %s", what, strerror(-r));
        if (uid == 0 || uid == owner_uid)
                return 1;

        r = bus_verify_polkit_async(c, message, action, &e);
        if (r >= 0)
                return r;
        if (!sd_bus_error_has_name(&e, SD_BUS_ERROR_ACCESS_DENIED)) {
                sd_bus_error_move(error, &e);
                return r;
        }
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "%s belongs to uid %u; only that uid, root, or a caller polkit authorizes for %s "
                                 "may do this (%s)",
                                 what, (unsigned) owner_uid, action, e.message ?: "denied");
}
