/* fuzz_http_parser.c: libFuzzer target for the HTTP request parser, its prefixes, and the list,
 * query, cookie and percent-decoding helpers, aborting when an invariant fails. The parser's
 * contract, as checked: more bytes never change a verdict; a refusal carries a status that goes
 * with its code and a reason; an accepted head's views lie in the input (the one exception, the
 * "/" path of an absolute-form target without one, is named); its path is origin-form, "*" or
 * the absolute-form's path part; its host is the absolute-form's authority or the one Host
 * field (required in HTTP/1.1), and is uri-host [":" port]; it has no Transfer-Encoding. */
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
 * refusal, checking that the refusal's code and status go together, and that it says why. */
static int verdict(int rc, const kf_http_fault_t *fault)
{
    int status = fault->status;
    if (rc > 0 || rc == KF_EAGAIN) {
        check(status == 0 && fault->reason == NULL);
        return rc;
    }
    check(fault->reason != NULL && fault->reason[0] != '\0');
    if (rc == KF_ETOOBIG)
        check(status == 414 || status == 431);
    else
        check(rc == KF_EPROTO &&
              (status == 400 || status == 411 || status == 501 || status == 505));
    return -status;
}

/* A reference for uri-host [":" port] (RFC 3986 §3.2.2), written apart from the parser's: at
 * most one ':' outside brackets, followed by digits only; brackets only as one leading
 * IP-literal of hex digits, ':' and the like; every other byte unreserved, a sub-delim or a
 * valid percent-escape. */
static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool reference_host(kf_str_t host)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                  "-._~!$&'()*+,;=";
    size_t i = 0;
    if (host.len > 0 && host.ptr[0] == '[') {
        const char *close = memchr(host.ptr, ']', host.len);
        if (close == NULL || close == host.ptr + 1)
            return false;
        for (i = 1; host.ptr + i < close; i++) {
            if (host.ptr[i] != ':' && memchr(allowed, host.ptr[i], sizeof(allowed) - 1) == NULL)
                return false;
        }
        i++;
        if (i < host.len && host.ptr[i] != ':')
            return false;
    }
    for (; i < host.len && host.ptr[i] != ':'; i++) {
        if (host.ptr[i] == '%') {
            if (host.len - i < 3 || !is_hex(host.ptr[i + 1]) || !is_hex(host.ptr[i + 2]))
                return false;
            i += 2;
        } else if (memchr(allowed, host.ptr[i], sizeof(allowed) - 1) == NULL) {
            return false;
        }
    }
    for (i++; i < host.len; i++) {
        if (host.ptr[i] < '0' || host.ptr[i] > '9')
            return false;
    }
    return true;
}

/* The number of header fields named name. */
static size_t field_count(const kf_http_request_t *req, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < req->num_headers; i++)
        n += kf_str_ieq(req->headers[i].name, name) ? 1 : 0;
    return n;
}

/* The request line's rules: the target's form, its path and query, and the host it names. */
static void check_target(const kf_http_request_t *req, const char *data, size_t size)
{
    kf_str_t target = req->target;
    bool asterisk = kf_str_eq(target, "*");
    bool origin = target.ptr[0] == '/';
    check(!asterisk || kf_str_eq(req->method, "OPTIONS"));
    check(req->query.ptr == NULL ? req->query.len == 0
                                 : inside(req->query, data, size) && req->query.ptr[-1] == '?' &&
                                       req->query.ptr + req->query.len == target.ptr + target.len);
    const kf_str_t *host_field = kf_http_header_get(req, "Host");
    if (asterisk || origin) {
        check(inside(req->path, data, size) && req->path.ptr == target.ptr);
        check(host_field == NULL ? req->host.ptr == NULL : req->host.ptr == host_field->ptr);
        return;
    }
    /* Absolute-form: http(s)://authority, then the path (or "/", the one view elsewhere). */
    size_t scheme = target.len > 5 && kf_str_ieq((kf_str_t){target.ptr, 5}, "http:") ? 7 : 8;
    check(target.len > scheme && (kf_str_ieq((kf_str_t){target.ptr, scheme}, "http://") ||
                                  kf_str_ieq((kf_str_t){target.ptr, scheme}, "https://")));
    check(req->host.ptr == target.ptr + scheme && req->host.len > 0 && req->host.ptr[0] != ':');
    const char *after = req->host.ptr + req->host.len;
    check(after == target.ptr + target.len || *after == '/' || *after == '?');
    if (kf_str_eq(req->path, "/") && !inside(req->path, data, size))
        check(after == target.ptr + target.len || *after == '?');
    else
        check(inside(req->path, data, size) && req->path.ptr == after && req->path.ptr[0] == '/');
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
    kf_http_fault_t fault = {-1, "unset"};
    int rc = kf_http_parse_request(copy, len, limits, &req, &fault);
    free(copy);
    return verdict(rc, &fault);
}

static void parse_and_check(const char *data, size_t size, const kf_http_limits_t *limits)
{
    kf_http_request_t req;
    kf_http_fault_t fault = {-1, "unset"};
    int rc = verdict(kf_http_parse_request(data, size, limits, &req, &fault), &fault);

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
    check_target(&req, data, size);
    check(req.minor_version == 0 || req.minor_version == 1);
    check(!req.upgrade || req.minor_version == 1);
    check(req.num_headers <= limits->max_headers && req.num_headers <= KF_HTTP_MAX_HEADERS);
    check(req.content_length >= -1 && req.content_length <= ((int64_t)1 << 53));
    for (size_t i = 0; i < req.num_headers; i++) {
        check(inside(req.headers[i].name, data, size) && req.headers[i].name.len > 0);
        check(inside(req.headers[i].value, data, size));
    }

    /* RFC 9112 §3.2: one Host (none only in HTTP/1.0), and a valid one. */
    size_t hosts = field_count(&req, "Host");
    check(hosts == 1 || (hosts == 0 && req.minor_version == 0));
    check(req.host.len == 0 || inside(req.host, data, size));
    check(reference_host(req.host));
    const kf_str_t *host = kf_http_header_get(&req, "Host");
    check(host == NULL || reference_host(*host));
    /* Every Transfer-Encoding is refused: an accepted head is framed by Content-Length alone. */
    check(field_count(&req, "Transfer-Encoding") == 0);
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
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        /* A token found is in the input, whole: bounded by the input's ends or ',', ' ', '\t'. */
        if (kf_http_list_has(input, names[i]))
            check(names[i][0] != '\0' && size >= strlen(names[i]));
    }

    uint64_t number = 0;
    rc = kf_parse_u64(input, &number);
    check(rc == 0 || rc == KF_EINVAL);
    check(rc != 0 || (size > 0 && size <= 20) || (size > 20 && data[0] == '0'));
    return 0;
}
