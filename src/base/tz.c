/* tz.c: a zone's offsets from its TZif file (RFC 8536): the version 2 block's 64-bit transition
 * times and the offset of the local time type each one starts. The footer's rule for times after
 * the last transition is not read: Debian's files list transitions to 2037, and after the last
 * one its offset stays (base/tz.h). */
#include "base/tz.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define DAY_MS INT64_C(86400000)
#define MAX_FILE (256 * 1024) /* the largest zone file is under 4 KB; this bounds a bad one */
#define MAX_NAME 64

struct kf_tz {
    size_t count;     /* transitions */
    int64_t *times;   /* each transition, UTC ms, ascending */
    int64_t *offsets; /* the offset (ms) in force from each transition on */
    int64_t initial;  /* the offset before the first one */
};

int kf_tz_name_valid(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > MAX_NAME)
        return 0;
    bool part_start = true;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '+' || c == '/' || c == '.';
        if (!ok || (part_start && (c == '/' || c == '.')))
            return 0;
        part_start = c == '/';
    }
    return !part_start;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The counts of a TZif header at p: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt. */
static void counts(const unsigned char *p, uint32_t c[6])
{
    for (int i = 0; i < 6; i++)
        c[i] = be32(p + 20 + 4 * i);
}

/* Parses the version 2 block of data (len bytes). 0, or KF_EPROTO. */
static int parse(const unsigned char *data, size_t len, kf_tz_t *tz)
{
    if (len < 44 || memcmp(data, "TZif", 4) != 0 || data[4] < '2')
        return KF_EPROTO;
    uint32_t c[6];
    counts(data, c);
    /* Skip the version 1 block (32-bit times). Each count is bounded by the file's size. */
    uint64_t v1 = (uint64_t)c[3] * 5 + (uint64_t)c[4] * 6 + c[5] + (uint64_t)c[2] * 8 + c[1] + c[0];
    if (44 + v1 + 44 > len)
        return KF_EPROTO;
    const unsigned char *h = data + 44 + v1;
    if (memcmp(h, "TZif", 4) != 0)
        return KF_EPROTO;
    counts(h, c);
    uint64_t timecnt = c[3];
    uint64_t typecnt = c[4];
    uint64_t need = timecnt * 9 + typecnt * 6;
    if (typecnt == 0 || (uint64_t)(h + 44 - data) + need > len)
        return KF_EPROTO;
    const unsigned char *times = h + 44;
    const unsigned char *indexes = times + timecnt * 8;
    const unsigned char *types = indexes + timecnt;
    tz->count = (size_t)timecnt;
    tz->times = malloc((timecnt + 1) * sizeof(int64_t));
    tz->offsets = malloc((timecnt + 1) * sizeof(int64_t));
    if (tz->times == NULL || tz->offsets == NULL)
        abort();
    tz->initial = (int64_t)(int32_t)be32(types) * 1000;
    for (size_t i = 0; i < tz->count; i++) {
        if (indexes[i] >= typecnt)
            return KF_EPROTO;
        int64_t seconds = be64(times + 8 * i);
        /* Far past or future transitions (the "big bang" sentinel) clamp: no ms overflow. */
        if (seconds < -INT64_C(9000000000000) || seconds > INT64_C(9000000000000))
            seconds = seconds < 0 ? -INT64_C(9000000000000) : INT64_C(9000000000000);
        tz->times[i] = seconds * 1000;
        tz->offsets[i] = (int64_t)(int32_t)be32(types + 6 * indexes[i]) * 1000;
        if (i > 0 && tz->times[i] < tz->times[i - 1])
            return KF_EPROTO;
    }
    return 0;
}

int kf_tz_load(const char *dir, const char *name, kf_tz_t **out)
{
    *out = NULL;
    if (!kf_tz_name_valid(name))
        return KF_EINVAL;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir != NULL ? dir : KF_TZ_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return KF_ENOTFOUND;
    unsigned char *data = malloc(MAX_FILE);
    if (data == NULL)
        abort();
    size_t len = fread(data, 1, MAX_FILE, f);
    fclose(f);
    kf_tz_t *tz = calloc(1, sizeof *tz);
    if (tz == NULL)
        abort();
    int rc = len == MAX_FILE ? KF_EPROTO : parse(data, len, tz);
    free(data);
    if (rc != 0) {
        kf_tz_free(tz);
        return rc;
    }
    *out = tz;
    return 0;
}

void kf_tz_free(kf_tz_t *tz)
{
    if (tz == NULL)
        return;
    free(tz->times);
    free(tz->offsets);
    free(tz);
}

/* The index of the last transition at or before t, or -1. */
static long last_at(const kf_tz_t *tz, int64_t t)
{
    size_t low = 0;
    size_t high = tz->count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (tz->times[middle] <= t)
            low = middle + 1;
        else
            high = middle;
    }
    return (long)low - 1;
}

int64_t kf_tz_offset(const kf_tz_t *tz, int64_t utc_ms)
{
    long i = last_at(tz, utc_ms);
    return i < 0 ? tz->initial : tz->offsets[i];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The local day (days since 1970-01-01, local) that t falls in. */
static int64_t local_day(const kf_tz_t *tz, int64_t t)
{
    return floor_div(t + kf_tz_offset(tz, t), DAY_MS);
}

/* Where local day d starts: its midnight at the offset in force then, or, when the clocks jump
 * over that midnight, the jump. (A midnight that comes twice, clocks going back over it, starts
 * at either: no zone does that today.) */
static int64_t day_start(const kf_tz_t *tz, int64_t d)
{
    int64_t midnight = d * DAY_MS;
    int64_t guess = midnight - kf_tz_offset(tz, midnight);
    int64_t start = midnight - kf_tz_offset(tz, guess);
    if (local_day(tz, start) < d) {
        long i = last_at(tz, start) + 1;
        if ((size_t)i < tz->count && local_day(tz, tz->times[i]) == d)
            start = tz->times[i];
    }
    return start;
}

int kf_tz_day_starts(const kf_tz_t *tz, int64_t from, int64_t to, size_t max_days, int64_t **starts,
                     size_t *count)
{
    *starts = NULL;
    *count = 0;
    if (from >= to)
        return KF_EINVAL;
    int64_t first = local_day(tz, from);
    int64_t last = local_day(tz, to - 1);
    if (last < first || (uint64_t)(last - first) >= max_days + 1)
        return KF_EINVAL;
    size_t n = (size_t)(last - first + 1);
    int64_t *out = malloc(n * sizeof *out);
    if (out == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        out[i] = day_start(tz, first + (int64_t)i);
        if (i > 0 && out[i] <= out[i - 1])
            out[i] = out[i - 1] + 1; /* never happens in real zones; keeps them ascending */
    }
    *starts = out;
    *count = n;
    return 0;
}
