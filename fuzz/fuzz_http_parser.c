/* fuzz_http_parser.c: libFuzzer target for the HTTP request parser, its prefixes, and the query,
 * cookie and percent-decoding helpers, aborting when an invariant fails. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "http/parser.h"

static const char *const names[] = {"a", "ab", "after", "ticket", "kefu_session", ""};

/* abort() rather than assert(), so that the check survives -DNDEBUG builds. */
static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool inside(kf_str_t view, const char *data, size_t size)
{
    uintptr_t start = (uintptr_t)data;
    uintptr_t at = (uintptr_t)view.ptr;
    return view.ptr != NULL && at >= start && view.len <= size && at - start <= size - view.len;
}

/* The parser's answer as one int: the head's length, KF_EAGAIN, or minus the HTTP status of a
 * refusal, checking that the refusal's code and status go together. */
static int verdict(int rc, int status)
{
    if (rc > 0 || rc == KF_EAGAIN) {
        check(status == 0);
        return rc;
    }
    if (rc == KF_ETOOBIG)
        check(status == 414 || status == 431);
    else
        check(rc == KF_EPROTO &&
              (status == 400 || status == 411 || status == 501 || status == 505));
    return -status;
}

/* A decoded value is a C string of exactly the returned length (NULs are refused). */
static void check_decoded(int rc, const char *out, size_t out_size)
{
    check(rc >= 0 || rc == KF_EINVAL || rc == KF_ETOOBIG || rc == KF_ENOTFOUND);
    if (rc >= 0)
        check((size_t)rc < out_size && strlen(out) == (size_t)rc);
    else
        check(out[0] == '\0');
}

static void query_lookups(kf_str_t query)
{
    char big[256];
    char small[3];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        check_decoded(kf_http_query_get(query, names[i], big, sizeof(big)), big, sizeof(big));
        check_decoded(kf_http_query_get(query, names[i], small, sizeof(small)), small,
                      sizeof(small));
    }
}

static void cookie_lookups(kf_str_t header, const char *data, size_t size)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        kf_str_t value;
        int rc = kf_http_cookie_get(header, names[i], &value);
        check(rc == 0 || rc == KF_ENOTFOUND);
        check(rc != 0 || inside(value, data, size));
        check(rc == 0 || (value.ptr == NULL && value.len == 0));
    }
}

/* Parses a copy of the first len bytes, exactly that big, so that a read past len is caught. */
static int parse_prefix(const char *data, size_t len, const kf_http_limits_t *limits)
{
    kf_http_request_t req;
    char *copy = malloc(len > 0 ? len : 1);
    check(copy != NULL);
    if (len > 0)
        memcpy(copy, data, len);
    int status = -1;
    int rc = kf_http_parse_request(copy, len, limits, &req, &status);
    free(copy);
    return verdict(rc, status);
}

static void parse_and_check(const char *data, size_t size, const kf_http_limits_t *limits)
{
    kf_http_request_t req;
    int status = -1;
    int rc = verdict(kf_http_parse_request(data, size, limits, &req, &status), status);

    /* More bytes never change a verdict already reached; a prefix is only ever "not yet". */
    int half = parse_prefix(data, size / 2, limits);
    check(half == KF_EAGAIN || half == rc);
    check(rc <= 0 || (size_t)rc > size / 2 || half == rc);

    if (rc <= 0)
        return;
    check((size_t)rc <= size && (size_t)rc <= limits->max_header_bytes);
    check(parse_prefix(data, (size_t)rc, limits) == rc);
    check(parse_prefix(data, (size_t)rc - 1, limits) == KF_EAGAIN);

    check(inside(req.method, data, size) && req.method.len > 0);
    check(inside(req.target, data, size) && req.target.len > 0);
    check(inside(req.path, data, size) && req.path.ptr == req.target.ptr);
    check(req.query.ptr == NULL ? req.query.len == 0 : inside(req.query, data, size));
    check(req.minor_version == 0 || req.minor_version == 1);
    check(req.num_headers <= limits->max_headers && req.num_headers <= KF_HTTP_MAX_HEADERS);
    check(req.content_length >= -1 && req.content_length <= ((int64_t)1 << 53));
    for (size_t i = 0; i < req.num_headers; i++) {
        check(inside(req.headers[i].name, data, size) && req.headers[i].name.len > 0);
        check(inside(req.headers[i].value, data, size));
    }

    const kf_str_t *host = kf_http_header_get(&req, "Host");
    check(host == NULL || inside(*host, data, size));
    check((kf_http_header_get(&req, "Content-Length") != NULL) == (req.content_length >= 0));
    query_lookups(req.query);
    for (size_t i = 0; i < req.num_headers; i++) {
        if (kf_str_ieq(req.headers[i].name, "Cookie"))
            cookie_lookups(req.headers[i].value, data, size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
    const char *data = (const char *)bytes;
    kf_http_limits_t limits;

    kf_http_limits_default(&limits);
    parse_and_check(data, size, &limits);
    limits = (kf_http_limits_t){.max_request_line = 24, .max_header_bytes = 64, .max_headers = 2};
    parse_and_check(data, size, &limits);
    limits = (kf_http_limits_t){.max_request_line = 0, .max_header_bytes = 1, .max_headers = 0};
    parse_and_check(data, size, &limits);
    /* Limits beyond what the parser can return must be clamped, not trusted. */
    limits = (kf_http_limits_t){SIZE_MAX, SIZE_MAX, SIZE_MAX};
    parse_and_check(data, size, &limits);

    /* The helpers on the raw bytes, as if they were a whole query or Cookie header. */
    kf_str_t input = {data, size};
    char *out = malloc(size + 1);
    check(out != NULL);
    int rc = kf_http_url_decode(input, out, size + 1);
    check(rc != KF_ETOOBIG);
    check_decoded(rc, out, size + 1);
    free(out);
    char small[4];
    check_decoded(kf_http_url_decode(input, small, sizeof(small)), small, sizeof(small));
    query_lookups(input);
    cookie_lookups(input, data, size);

    uint64_t number = 0;
    rc = kf_parse_u64(input, &number);
    check(rc == 0 || rc == KF_EINVAL);
    check(rc != 0 || (size > 0 && size <= 20) || (size > 20 && data[0] == '0'));
    return 0;
}
