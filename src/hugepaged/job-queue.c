/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job queue: requests that touch the kernel, oldest first. A job starts when no earlier job shares a pool (or
 * a reservation name) with it; its kernel part runs in a worker thread, which signals completion on an eventfd. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "job-queue.h"
#include "util.h"

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        free(j->nodes);
        free(j->name);
        free(j->caller);
        free(j->req_nodes);
        free(j->req_node_bytes);
        plan_done(&j->plan);
        free(j->pw);
        free(j);
        return NULL;
}

static bool nodes_intersect(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
        for (size_t i = 0; i < na; i++)
                for (size_t k = 0; k < nb; k++)
                        if (a[i] == b[k])
                                return true;
        return false;
}

static bool jobs_conflict(const Job *a, const Job *b) {
        if (a->type == JOB_RESERVE && b->type == JOB_RESERVE && streq(a->name, b->name))
                return true;
        return a->page_size == b->page_size && nodes_intersect(a->nodes, a->n_nodes, b->nodes, b->n_nodes);
}

static void manager_dispatch_jobs(Manager *m);

size_t manager_jobs_pending(Manager *m) {
        size_t n = 0;
        for (Job *j = m->jobs; j; j = j->next)
                n++;
        return n;
}

void job_set_busy(Job *j, bool busy) {
        for (size_t i = 0; i < j->n_nodes; i++) {
                Pool *p = manager_find_pool(j->manager, j->page_size, j->nodes[i]);
                if (p)
                        p->busy = busy;
        }
}

static void manager_unlink_job(Manager *m, Job *j) {
        Job **pp = &m->jobs, *prev = NULL;
        for (; *pp; prev = *pp, pp = &(*pp)->next)
                if (*pp == j) {
                        *pp = j->next;
                        if (m->jobs_tail == j)
                                m->jobs_tail = prev;
                        return;
                }
}

void manager_enqueue_job(Manager *m, Job *j) {
        j->manager = m;
        if (m->jobs_tail)
                m->jobs_tail->next = j;
        else
                m->jobs = j;
        m->jobs_tail = j;
        manager_dispatch_jobs(m);
}

void job_work(Job *j) {
        if (j->type == JOB_RESERVE)
                work_reserve(j);
        else
                work_shrink(j);
}

static void *job_thread(void *userdata) {
        Job *j = userdata;
        Manager *m = j->manager;
        uint64_t one = 1;

        job_work(j);
        pthread_mutex_lock(m->jobs_lock);
        j->done_next = m->jobs_done;
        m->jobs_done = j;
        pthread_mutex_unlock(m->jobs_lock);
        /* The eventfd only counts; a failed write means the counter is already non-zero. */
        (void) !write(m->job_efd, &one, sizeof(one));
        return NULL;
}

/* Copies the worker's readings into the pools that still exist. */
void job_apply_counts(Job *j) {
        Manager *m = j->manager;
        for (size_t i = 0; i < j->n_pw; i++) {
                Pool *p = manager_find_pool(m, j->page_size, j->pw[i].node);
                if (!p)
                        continue;
                p->counts = j->pw[i].counts;
                p->known = pool_persistent(p);
        }
        manager_stats_add(m, &j->stats);
}

static void job_complete(Job *j) {
        Manager *m = j->manager;
        job_apply_counts(j);
        job_set_busy(j, false);
        manager_unlink_job(m, j);
        if (j->type == JOB_RESERVE)
                reserve_finish(j);
        else
                shrink_finish(j);
        job_free(j);
}

/* Starts j: its loop part (checks, plan, the state file's intent), then the kernel part in a worker thread if
 * there is any. Returns true if j completed synchronously (and is freed). */
static bool job_start(Job *j) {
        Manager *m = j->manager;
        pthread_t t;
        pthread_attr_t attr;
        int k;

        j->started = true;
        k = j->type == JOB_RESERVE ? reserve_prepare(j) : shrink_prepare(j);
        if (k <= 0) {
                /* Failed, or nothing for the kernel to do: finish right here. */
                job_complete(j);
                return true;
        }
        job_set_busy(j, true);
        j->worker = true;
        k = pthread_attr_init(&attr);
        if (k == 0) {
                (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                k = pthread_create(&t, &attr, job_thread, j);
                pthread_attr_destroy(&attr);
        }
        if (k != 0) {
                /* No thread: do the work here rather than fail the request. */
                log_warning("cannot start a worker thread (%s), working on the event loop", strerror(k));
                j->params.watchdog = m->watchdog;
                job_work(j);
                job_complete(j);
                return true;
        }
        m->n_running++;
        return false;
}

static void manager_dispatch_jobs(Manager *m) {
        if (m->dispatching) {
                m->dispatch_again = true;
                return;
        }
        m->dispatching = true;
        do {
                m->dispatch_again = false;
                for (Job *j = m->jobs, *next; j; j = next) {
                        bool blocked = false;
                        next = j->next;
                        if (j->started)
                                continue;
                        for (Job *o = m->jobs; o != j && !blocked; o = o->next)
                                blocked = jobs_conflict(o, j);
                        if (blocked)
                                continue;
                        if (job_start(j)) {
                                /* The list changed under us (j is gone, callbacks may have queued more): rescan. */
                                m->dispatch_again = true;
                                break;
                        }
                }
        } while (m->dispatch_again);
        m->dispatching = false;
}

static void manager_collect_done(Manager *m) {
        Job *done;
        uint64_t v;

        (void) !read(m->job_efd, &v, sizeof(v));
        pthread_mutex_lock(m->jobs_lock);
        done = m->jobs_done;
        m->jobs_done = NULL;
        pthread_mutex_unlock(m->jobs_lock);
        /* Pushed newest first: reverse, so jobs complete in the order they finished. */
        {
                Job *rev = NULL;
                while (done) {
                        Job *next = done->done_next;
                        done->done_next = rev;
                        rev = done;
                        done = next;
                }
                done = rev;
        }
        for (Job *j = done, *next; j; j = next) {
                next = j->done_next;
                m->n_running--;
                job_complete(j);
        }
}

static int on_job_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        manager_collect_done(m);
        manager_dispatch_jobs(m);
        return 0;
}

int manager_setup_jobs(Manager *m) {
        pthread_mutex_t *lock;
        int r;

        lock = malloc(sizeof(*lock));
        if (!lock)
                return -ENOMEM;
        pthread_mutex_init(lock, NULL);
        m->jobs_lock = lock;
        m->job_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->job_efd < 0)
                return -errno;
        r = sd_event_add_io(m->event, &m->job_source, m->job_efd, EPOLLIN, on_job_done, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(m->job_source, "jobs-done");
        return 0;
}

/* At exit: wait for the workers (they hold no locks and finish within the allocation timeout), then tell the
 * callers of every job that it was cancelled. */
void manager_drain_jobs(Manager *m) {
        while (m->n_running > 0) {
                struct pollfd pfd = { .fd = m->job_efd, .events = POLLIN };
                Job *done;
                (void) poll(&pfd, 1, -1);
                pthread_mutex_lock(m->jobs_lock);
                done = m->jobs_done;
                m->jobs_done = NULL;
                pthread_mutex_unlock(m->jobs_lock);
                {
                        uint64_t v;
                        (void) !read(m->job_efd, &v, sizeof(v));
                }
                for (Job *j = done, *next; j; j = next) {
                        next = j->done_next;
                        m->n_running--;
                        job_apply_counts(j);
                        job_set_busy(j, false);
                        manager_unlink_job(m, j);
                        if (j->done)
                                j->done(m, -ECANCELED, NULL, false, &j->error, j->userdata);
                        job_free(j);
                }
        }
        while (m->jobs) {
                Job *j = m->jobs;
                manager_unlink_job(m, j);
                if (j->done)
                        j->done(m, -ECANCELED, NULL, false, &j->error, j->userdata);
                job_free(j);
        }
}

void manager_done_jobs(Manager *m) {
        m->job_source = sd_event_source_disable_unref(m->job_source);
        m->job_efd = safe_close(m->job_efd);
        if (m->jobs_lock) {
                pthread_mutex_destroy(m->jobs_lock);
                free(m->jobs_lock);
                m->jobs_lock = NULL;
        }
}
