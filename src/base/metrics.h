/* metrics.h: kefu's figures for GET /metrics (chat/ops_api.c): counters and latency histograms
 * that any thread adds to without a lock (one relaxed atomic add each: the loop's hot path and
 * the store's writer thread both record), the rejected requests by status and code (the loop's
 * only), and the writers of the Prometheus text exposition format (version 0.0.4). One set per
 * process, as Prometheus scrapes a process; tests read differences, never absolute values. */
#ifndef KF_METRICS_H
#define KF_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* The histograms' upper bounds, in seconds: from half a millisecond (a commit without fsync, a
 * delivery on the same loop turn) to 10 s (a disk that stalls). */
#define KF_HISTOGRAM_BOUNDS 14
extern const double kf_histogram_bounds[KF_HISTOGRAM_BOUNDS];

typedef struct kf_histogram {
    /* Observations per bucket (not cumulative: the writer adds them up), the last past every
     * bound (+Inf), and their sum in microseconds. */
    atomic_uint_fast64_t buckets[KF_HISTOGRAM_BOUNDS + 1];
    atomic_uint_fast64_t sum_us;
} kf_histogram_t;

/* At most this many (status, code) pairs are told apart; further ones count as code "other". */
#define KF_METRICS_MAX_REJECTIONS 64

typedef struct kf_rejection {
    int status;    /* 400 to 599; 0 for the last slot, "other" */
    char code[32]; /* the JSON error's code ("rate_limited"), cut to fit */
    uint64_t count;
} kf_rejection_t;

typedef struct kf_metrics {
    /* The loop: from a message's creation (its created_at) to its delivery to one live push
     * connection: the store's commit, the publish and the transport's write, as a person sees. */
    kf_histogram_t push_delivery;
    /* The store's writer thread: one batch of writes, BEGIN to COMMIT (its fsync included). */
    kf_histogram_t store_write;
    atomic_uint_fast64_t messages_stored; /* the writer thread, after the batch's COMMIT */
    atomic_uint_fast64_t checkpoints;     /* the checkpointer thread: checkpoints that ran */
    /* The loop only: error answers (kf_resp_error), by status and code. */
    kf_rejection_t rejections[KF_METRICS_MAX_REJECTIONS];
    size_t rejection_count;
} kf_metrics_t;

/* The process's figures. */
extern kf_metrics_t kf_metrics;

/* Adds one observation of us microseconds. Any thread. */
void kf_histogram_observe_us(kf_histogram_t *h, uint64_t us);
/* Counts one error answer. The loop thread only. */
void kf_metrics_reject(int status, const char *code);

/* The exposition format: `# HELP` and `# TYPE` lines for a metric (type "counter", "gauge" or
 * "histogram"; help is one line of plain text), then its samples. labels is the text between the
 * braces ("transport=\"sse\""), already escaped (kf_metrics_label), or NULL for none. */
void kf_metrics_write_head(kf_buf_t *out, const char *name, const char *type, const char *help);
void kf_metrics_write_sample(kf_buf_t *out, const char *name, const char *labels, double value);
/* A histogram, head included: _bucket{le=...} for every bound and +Inf (cumulative), _sum (in
 * seconds) and _count. */
void kf_metrics_write_histogram(kf_buf_t *out, const char *name, const char *help,
                                const kf_histogram_t *h);
/* Appends name="value" to a label list (a comma first when it is not empty), escaping value as
 * the format asks (backslash, double quote, line feed). */
void kf_metrics_label(kf_buf_t *labels, const char *name, const char *value);

#endif
