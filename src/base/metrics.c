/* metrics.c: the process's counters and histograms, and the Prometheus text format. */
#include "base/metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

kf_metrics_t kf_metrics;

const double kf_histogram_bounds[KF_HISTOGRAM_BOUNDS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

void kf_histogram_observe_us(kf_histogram_t *h, uint64_t us)
{
    size_t i = 0;
    while (i < KF_HISTOGRAM_BOUNDS && (double)us > kf_histogram_bounds[i] * 1e6)
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void kf_metrics_reject(int status, const char *code)
{
    kf_metrics_t *m = &kf_metrics;
    char cut[sizeof m->rejections[0].code];
    snprintf(cut, sizeof cut, "%s", code != NULL ? code : "");
    for (size_t i = 0; i < m->rejection_count; i++) {
        if (m->rejections[i].status == status && strcmp(m->rejections[i].code, cut) == 0) {
            m->rejections[i].count++;
            return;
        }
    }
    /* The last slot (status 0, code "other") takes every pair past the others, so that the
     * table and the scrape have a bound whatever codes come. */
    if (m->rejection_count == KF_METRICS_MAX_REJECTIONS) {
        m->rejections[KF_METRICS_MAX_REJECTIONS - 1].count++;
        return;
    }
    bool last = m->rejection_count == KF_METRICS_MAX_REJECTIONS - 1;
    kf_rejection_t *r = &m->rejections[m->rejection_count++];
    r->status = last ? 0 : status;
    snprintf(r->code, sizeof r->code, "%s", last ? "other" : cut);
    r->count = 1;
}

void kf_metrics_write_head(kf_buf_t *out, const char *name, const char *type, const char *help)
{
    kf_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A sample's value: whole numbers without a fraction, others to nine digits (microseconds of a sum
 * in seconds). */
static void write_value(kf_buf_t *out, double value)
{
    if (isinf(value))
        kf_buf_append_str(out, value > 0 ? "+Inf" : "-Inf");
    else if (value == floor(value) && fabs(value) < 1e15)
        kf_buf_printf(out, "%.0f", value);
    else
        kf_buf_printf(out, "%.9g", value);
}

void kf_metrics_write_sample(kf_buf_t *out, const char *name, const char *labels, double value)
{
    kf_buf_append_str(out, name);
    if (labels != NULL && labels[0] != '\0')
        kf_buf_printf(out, "{%s}", labels);
    kf_buf_append_str(out, " ");
    write_value(out, value);
    kf_buf_append_str(out, "\n");
}

void kf_metrics_write_histogram(kf_buf_t *out, const char *name, const char *help,
                                const kf_histogram_t *h)
{
    kf_metrics_write_head(out, name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= KF_HISTOGRAM_BOUNDS; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        kf_buf_printf(out, "%s_bucket{le=\"", name);
        if (i < KF_HISTOGRAM_BOUNDS)
            kf_buf_printf(out, "%g", kf_histogram_bounds[i]);
        else
            kf_buf_append_str(out, "+Inf");
        kf_buf_printf(out, "\"} %llu\n", (unsigned long long)cumulative);
    }
    uint64_t sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
    kf_buf_printf(out, "%s_sum ", name);
    write_value(out, (double)sum_us / 1e6);
    kf_buf_printf(out, "\n%s_count %llu\n", name, (unsigned long long)cumulative);
}

void kf_metrics_label(kf_buf_t *labels, const char *name, const char *value)
{
    if (labels->len > 0)
        kf_buf_append_str(labels, ",");
    kf_buf_printf(labels, "%s=\"", name);
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            kf_buf_printf(labels, "\\%c", *p);
        else if (*p == '\n')
            kf_buf_append_str(labels, "\\n");
        else
            kf_buf_append(labels, p, 1);
    }
    kf_buf_append_str(labels, "\"");
}
