/* fuzz_query.c: libFuzzer target for what kefu reads out of query strings: percent-decoding (the
 * application/x-www-form-urlencoded rules: '+' is a space), parameter lookup by a decoded name,
 * and decimal numbers (after=, timeout=, Last-Event-ID). Each is compared with a plain reference
 * written from the contract in http/parser.h, and the cursor rule of the API (an id below 2^53)
 * is checked end to end.
 *
 * Input: byte 0 is the name's length (low 4 bits) and the output buffer's size (high 4 bits, an
 * index into out_sizes); then the name (cut at a NUL); the rest is the query string. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "http/parser.h"

static const size_t out_sizes[16] = {1,  2,  3,   4,   5,    8,    16,    24,
                                     32, 64, 128, 256, 1024, 4096, 16384, 65536};

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The contract of kf_http_url_decode, decoded left to right: a bad escape or a decoded NUL is
 * KF_EINVAL, a byte that does not fit (with the NUL) is KF_ETOOBIG, whichever comes first. */
static int ref_url_decode(const char *src, size_t len, char *out, size_t out_size)
{
    size_t n = 0;
    if (out_size == 0)
        return KF_ETOOBIG;
    for (size_t i = 0; i < len;) {
        int c;
        if (src[i] == '%') {
            if (len - i < 3)
                return KF_EINVAL;
            int high = hex_digit(src[i + 1]);
            int low = hex_digit(src[i + 2]);
            if (high < 0 || low < 0)
                return KF_EINVAL;
            c = high << 4 | low;
            i += 3;
        } else {
            c = src[i] == '+' ? ' ' : (unsigned char)src[i];
            i++;
        }
        if (c == 0)
            return KF_EINVAL;
        if (n + 1 >= out_size)
            return KF_ETOOBIG;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return (int)n;
}

/* The contract of kf_http_query_get: '&'-separated parameters, the first whose decoded key is
 * name wins, its value (empty without '=') decoded. */
static int ref_query_get(const char *query, size_t len, const char *name, char *out,
                         size_t out_size)
{
    char *key = malloc(len + 1);
    int rc = KF_ENOTFOUND;
    check(key != NULL, "malloc");
    size_t start = 0;
    while (start < len && rc == KF_ENOTFOUND) {
        const char *amp = memchr(query + start, '&', len - start);
        size_t end = amp != NULL ? (size_t)(amp - query) : len;
        const char *param = query + start;
        size_t param_len = end - start;
        const char *equals = memchr(param, '=', param_len);
        size_t key_len = equals != NULL ? (size_t)(equals - param) : param_len;
        if (param_len > 0 && ref_url_decode(param, key_len, key, len + 1) >= 0 &&
            strcmp(key, name) == 0) {
            rc = equals != NULL ? ref_url_decode(equals + 1, param_len - key_len - 1, out, out_size)
                                : ref_url_decode("", 0, out, out_size);
        }
        start = end + 1;
    }
    free(key);
    return rc;
}

/* The contract of kf_parse_u64: one or more digits and nothing else, at most UINT64_MAX. */
static int ref_parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t value = 0;
    if (len == 0)
        return KF_EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return KF_EINVAL;
        if (__builtin_mul_overflow(value, 10, &value) ||
            __builtin_add_overflow(value, (uint64_t)(s[i] - '0'), &value))
            return KF_EINVAL;
    }
    *out = value;
    return 0;
}

/* Runs the real function and the reference into two buffers of out_size and compares them. */
static void compare_decode(const char *src, size_t len, size_t out_size)
{
    char *got = malloc(out_size);
    char *want = malloc(out_size);
    check(got != NULL && want != NULL, "malloc");
    int rc = kf_http_url_decode((kf_str_t){src, len}, got, out_size);
    int ref = ref_url_decode(src, len, want, out_size);
    check(rc == ref, "kf_http_url_decode result");
    check(rc < 0 ? got[0] == '\0' : memcmp(got, want, (size_t)rc + 1) == 0,
          "kf_http_url_decode bytes");

    /* Percent-encoding every byte of what came out decodes back to it. */
    if (rc > 0) {
        char *encoded = malloc(3 * (size_t)rc + 1); /* snprintf ends each with a NUL */
        char *again = malloc((size_t)rc + 1);
        check(encoded != NULL && again != NULL, "malloc");
        for (int i = 0; i < rc; i++)
            snprintf(encoded + 3 * i, 4, "%%%02x", (unsigned char)got[i]);
        check(kf_http_url_decode((kf_str_t){encoded, 3 * (size_t)rc}, again, (size_t)rc + 1) ==
                      rc &&
                  memcmp(again, got, (size_t)rc) == 0,
              "encoded bytes decode back");
        free(encoded);
        free(again);
    }
    free(got);
    free(want);
}

static void compare_query_get(const char *query, size_t len, const char *name, size_t out_size)
{
    char *got = malloc(out_size);
    char *want = malloc(out_size);
    check(got != NULL && want != NULL, "malloc");
    int rc = kf_http_query_get((kf_str_t){query, len}, name, got, out_size);
    int ref = ref_query_get(query, len, name, want, out_size);
    check(rc == ref, "kf_http_query_get result");
    check(rc < 0 ? got[0] == '\0' : memcmp(got, want, (size_t)rc + 1) == 0,
          "kf_http_query_get bytes");
    free(got);
    free(want);
}

/* The API's cursor rule (chat/call.c, kf_call_after): after= is absent (0) or a decimal id below
 * 2^53; whatever it accepts must print back as the digits that were sent, less leading zeros. */
static void check_cursor(const char *query, size_t len)
{
    char value[32];
    int n = kf_http_query_get((kf_str_t){query, len}, "after", value, sizeof value);
    uint64_t after = 0;
    if (n < 0 || kf_parse_u64((kf_str_t){value, (size_t)n}, &after) != 0 || after >= (1ULL << 53))
        return;
    char printed[32];
    int printed_len = snprintf(printed, sizeof printed, "%llu", (unsigned long long)after);
    const char *digits = value;
    while (digits[0] == '0' && digits[1] != '\0')
        digits++;
    check(strlen(digits) == (size_t)printed_len && strcmp(digits, printed) == 0,
          "an accepted cursor is the number sent");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return -1;
    size_t name_len = data[0] & 15;
    size_t out_size = out_sizes[data[0] >> 4];
    if (name_len > size - 1)
        name_len = size - 1;
    char name[16];
    memcpy(name, data + 1, name_len);
    name[name_len] = '\0'; /* a NUL inside cuts it: names are C strings */
    const char *query = (const char *)data + 1 + name_len;
    size_t query_len = size - 1 - name_len;

    compare_decode(query, query_len, out_size);
    compare_query_get(query, query_len, name, out_size);
    static const char *const names[] = {"after", "timeout", "ticket", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        compare_query_get(query, query_len, names[i], 64);
    check_cursor(query, query_len);

    uint64_t got = 0;
    uint64_t want = 0;
    int rc = kf_parse_u64((kf_str_t){query, query_len}, &got);
    check(rc == ref_parse_u64(query, query_len, &want), "kf_parse_u64 result");
    check(rc != 0 || got == want, "kf_parse_u64 value");
    return 0;
}
