/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job queue's types: a request that touches the kernel, its loop parts (prepare, finish) and its kernel part
 * (work), which runs in a worker thread. */
#pragma once

#include "manager-internal.h"

typedef enum JobType {
        JOB_RESERVE,
        JOB_SHRINK,
} JobType;

/* One pool's part of a job. In: set on the loop before the worker starts. Out: set by the worker. */
typedef struct PoolWork {
        uint32_t node;
        uint64_t before;   /* persistent count at the start: where a failed reserve puts it back */
        uint64_t base;     /* reserve: Floor + Reserved + the spare pages taken */
        uint64_t spare;    /* reserve: spare pages taken */
        uint64_t exact;    /* reserve with node_bytes: pages asked here in all */
        uint64_t max_pages;
        uint64_t target;   /* shrink: the count to set; 0 with !active: nothing to do */
        bool active;
        NodeCounts counts; /* in: as last read; out: as read back */
        uint64_t got;      /* reserve: pages grown here for the request */
} PoolWork;

struct Job {
        Manager *manager;
        JobType type;
        Job *next, *done_next;
        bool started, worker;

        uint64_t page_size;
        uint32_t *nodes; /* the pools it touches, ascending */
        size_t n_nodes;

        /* JOB_RESERVE: the request, deep-copied. */
        ReserveRequest req;
        char *name, *caller;
        uint32_t *req_nodes;
        NodeAmount *req_node_bytes; /* (node, bytes) */
        Plan plan;
        uint64_t bytes; /* for the limits while in flight */

        /* The work. */
        AllocParams params;
        PoolWork *pw;
        size_t n_pw;
        bool exact;
        uint64_t need;
        /* reserve, when the kernel came up short: the pages missing, and with node_bytes the node they were
         * missing on (else every node of the plan) */
        uint64_t short_pages;
        bool short_on_node;
        uint32_t short_node;
        int result;
        HpError error;
        AllocStats stats;

        ManagerDone done;
        void *userdata;
};

/* job-queue.c */
Job *job_free(Job *j);
void job_set_busy(Job *j, bool busy);
void manager_enqueue_job(Manager *m, Job *j);
void job_work(Job *j);
/* Copies the worker's readings into the pools that still exist. */
void job_apply_counts(Job *j);
int manager_setup_jobs(Manager *m);
/* At exit: wait for the workers, then tell the callers of every job that it was cancelled. */
void manager_drain_jobs(Manager *m);
/* Then frees what the queue holds, once the bus layer sent what it still had. */
void manager_done_jobs(Manager *m);

/* alloc.c: the kernel parts, thread-safe. */
void work_rollback(Job *j, size_t n);
void work_reserve(Job *j);
void work_shrink(Job *j);

/* The loop parts. prepare: 1 if the kernel has work to do, 0 if the job is complete, <0 on error (j->error set). */
int reserve_prepare(Job *j);
void reserve_finish(Job *j);
int shrink_prepare(Job *j);
void shrink_finish(Job *j);
