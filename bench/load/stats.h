/* stats.h: what the load tools report with: samples of microseconds and their nearest-rank
 * percentiles, and figures written into a table or a JSON line. */
#ifndef KF_LOAD_STATS_H
#define KF_LOAD_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* A growing array of durations in microseconds. */
typedef struct load_samples {
    uint32_t *us;
    size_t len;
    size_t cap;
} load_samples_t;

/* Appends one duration, capped at UINT32_MAX microseconds (71 minutes). */
void load_samples_add(load_samples_t *samples, uint64_t us);
/* Sorts the samples, for load_percentile_ms. */
void load_samples_sort(load_samples_t *samples);
/* The nearest-rank percentile p (0 to 1) of sorted samples, in ms; NAN when there are none. */
double load_percentile_ms(const load_samples_t *sorted, double p);
void load_samples_free(load_samples_t *samples);

/* Appends ,"key":value to a JSON object being written, or null when value is not a number. */
void load_json_num(kf_buf_t *out, const char *key, double value, int decimals);
/* value with decimals into out (size bytes) for a table, "-" when it is not a number. */
const char *load_fmt(char *out, size_t size, double value, int decimals);

#endif
