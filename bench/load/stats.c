/* stats.c: samples, percentiles and formatted figures for the load tools' reports. */
#include "load/stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void load_samples_add(load_samples_t *samples, uint64_t us)
{
    if (samples->len == samples->cap) {
        samples->cap = samples->cap == 0 ? 4096 : samples->cap * 2;
        samples->us = kf_xrealloc(samples->us, samples->cap * sizeof *samples->us);
    }
    samples->us[samples->len++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void load_samples_sort(load_samples_t *samples)
{
    if (samples->len > 0)
        qsort(samples->us, samples->len, sizeof *samples->us, compare_u32);
}

double load_percentile_ms(const load_samples_t *sorted, double p)
{
    size_t n = sorted->len;
    if (n == 0)
        return NAN;
    size_t rank = (size_t)ceil(p * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted->us[rank - 1] / 1000.0;
}

void load_samples_free(load_samples_t *samples)
{
    free(samples->us);
    *samples = (load_samples_t){0};
}

void load_json_num(kf_buf_t *out, const char *key, double value, int decimals)
{
    if (isnan(value) || isinf(value))
        kf_buf_printf(out, ",\"%s\":null", key);
    else
        kf_buf_printf(out, ",\"%s\":%.*f", key, decimals, value);
}

const char *load_fmt(char *out, size_t size, double value, int decimals)
{
    if (isnan(value) || isinf(value))
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%.*f", decimals, value);
    return out;
}
