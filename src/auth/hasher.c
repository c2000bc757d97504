/* hasher.c: scrypt jobs on libuv's thread pool, bounded in how many run and how many wait. */
#include "auth/hasher.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/list.h"

typedef struct job {
    uv_work_t work;      /* first: the libuv request's address is the job's */
    kf_list_t link;      /* in hasher->waiting while it waits, then in hasher->active */
    kf_hasher_t *hasher; /* NULL once the hasher is freed: drop the result */
    char *password;      /* wiped and freed when done */
    char *encoded;       /* verify: the stored hash; NULL for a hash job */
    kf_hasher_verify_cb verify_cb;
    kf_hasher_hash_cb hash_cb;
    void *data;
    bool match;                         /* verify's result */
    int rc;                             /* hash's result */
    char result[KF_PASSWORD_HASH_SIZE]; /* hash's output */
} job_t;

struct kf_hasher {
    uv_loop_t *loop;
    size_t max_running, max_queued;
    size_t running;    /* jobs on a worker now */
    size_t queued;     /* jobs in waiting */
    kf_list_t waiting; /* first in, first out */
    kf_list_t active;  /* on a worker: kept so that freeing the hasher can tell them */
};

kf_hasher_t *kf_hasher_new(uv_loop_t *loop, size_t max_running, size_t max_queued)
{
    kf_hasher_t *hasher = kf_xcalloc(1, sizeof *hasher);
    hasher->loop = loop;
    hasher->max_running = max_running > 0 ? max_running : 1;
    hasher->max_queued = max_queued;
    kf_list_init(&hasher->waiting);
    kf_list_init(&hasher->active);
    return hasher;
}

static void job_free(job_t *job)
{
    OPENSSL_cleanse(job->password, strlen(job->password));
    free(job->password);
    free(job->encoded);
    OPENSSL_cleanse(job->result, sizeof job->result);
    free(job);
}

/* On a worker thread: only the job's own memory is touched. */
static void work_cb(uv_work_t *work)
{
    job_t *job = (job_t *)work;
    if (job->encoded != NULL)
        job->match = kf_auth_password_verify(job->password, job->encoded);
    else
        job->rc = kf_auth_password_hash(job->password, job->result);
}

static void start(kf_hasher_t *hasher, job_t *job);

/* Back on the loop: the next waiting job takes the freed place before the callback runs, so
 * that a callback which submits again queues behind those already waiting. */
static void after_work_cb(uv_work_t *work, int status)
{
    job_t *job = (job_t *)work;
    kf_hasher_t *hasher = job->hasher;
    if (hasher == NULL) { /* the hasher was freed meanwhile */
        job_free(job);
        return;
    }
    hasher->running--;
    kf_list_remove(&job->link);
    kf_list_t *next = kf_list_first(&hasher->waiting);
    if (next != NULL) {
        kf_list_remove(next);
        hasher->queued--;
        start(hasher, KF_CONTAINER_OF(next, job_t, link));
    }
    /* status is UV_ECANCELED only for uv_cancel, which nothing here calls. */
    if (job->encoded != NULL)
        job->verify_cb(job->data, status == 0 && job->match);
    else
        job->hash_cb(job->data, status == 0 ? job->rc : KF_EIO,
                     status == 0 && job->rc == 0 ? job->result : NULL);
    job_free(job);
}

static void start(kf_hasher_t *hasher, job_t *job)
{
    hasher->running++;
    kf_list_push_back(&hasher->active, &job->link);
    /* uv_queue_work fails only for a NULL callback. */
    (void)uv_queue_work(hasher->loop, &job->work, work_cb, after_work_cb);
}

static int submit(kf_hasher_t *hasher, job_t *job)
{
    if (hasher->running < hasher->max_running) {
        start(hasher, job);
        return 0;
    }
    if (hasher->queued >= hasher->max_queued) {
        job_free(job);
        return KF_ELIMIT;
    }
    kf_list_push_back(&hasher->waiting, &job->link);
    hasher->queued++;
    return 0;
}

static job_t *job_new(kf_hasher_t *hasher, const char *password, void *data)
{
    job_t *job = kf_xcalloc(1, sizeof *job);
    job->hasher = hasher;
    job->password = kf_xstrdup(password);
    job->data = data;
    kf_list_init(&job->link);
    return job;
}

int kf_hasher_verify(kf_hasher_t *hasher, const char *password, const char *encoded,
                     kf_hasher_verify_cb cb, void *data)
{
    job_t *job = job_new(hasher, password, data);
    job->encoded = kf_xstrdup(encoded);
    job->verify_cb = cb;
    return submit(hasher, job);
}

int kf_hasher_hash(kf_hasher_t *hasher, const char *password, kf_hasher_hash_cb cb, void *data)
{
    job_t *job = job_new(hasher, password, data);
    job->hash_cb = cb;
    return submit(hasher, job);
}

size_t kf_hasher_pending(const kf_hasher_t *hasher)
{
    return hasher->running + hasher->queued;
}

/* Running jobs cannot be taken back from the workers: they are told the hasher is gone, and
 * free themselves when they come back. */
void kf_hasher_free(kf_hasher_t *hasher)
{
    if (hasher == NULL)
        return;
    KF_LIST_FOREACH(it, next, &hasher->waiting) {
        kf_list_remove(it);
        job_free(KF_CONTAINER_OF(it, job_t, link));
    }
    KF_LIST_FOREACH(it, next, &hasher->active) {
        kf_list_remove(it);
        KF_CONTAINER_OF(it, job_t, link)->hasher = NULL;
    }
    free(hasher);
}
