/* test_parser.c: table-driven tests of the HTTP request parser and its helpers, every
 * request fed whole, in every prefix and with hostile bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "http/parser.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Sets .input and .len from a literal, so that embedded NULs count. */
#define RAW(s) .input = (s), .len = sizeof(s) - 1

static const kf_http_limits_t tiny_limits = {
    .max_request_line = 32,
    .max_header_bytes = 64,
    .max_headers = 3,
};

/* A heap copy of exactly len bytes, so that AddressSanitizer catches any read past len. */
static char *copy_exact(const char *data, size_t len)
{
    char *copy = kf_xmalloc(len);
    if (len > 0)
        memcpy(copy, data, len);
    return copy;
}

/* The parser's verdict as one int for the tables: the head's length, INCOMPLETE, or minus the
 * HTTP status of a refused request. */
enum {
    INCOMPLETE = KF_EAGAIN,
    EBAD = -400,
    ELENGTH = -411,
    EURI_TOO_LONG = -414,
    EHEADERS = -431,
    ENOT_IMPL = -501,
    EVERSION = -505,
};

/* Folds rc and the fault into a verdict, checking that a refusal's code goes with its status
 * and that it says why. */
static int verdict(int rc, const kf_http_fault_t *fault)
{
    if (rc >= 0 || rc == KF_EAGAIN) {
        assert_int_equal(fault->status, 0);
        assert_null(fault->reason);
        return rc;
    }
    assert_int_equal(rc, fault->status == 414 || fault->status == 431 ? KF_ETOOBIG : KF_EPROTO);
    assert_non_null(fault->reason);
    return -fault->status;
}

static int parse_exact(const char *data, size_t len, const kf_http_limits_t *limits,
                       kf_http_request_t *req)
{
    char *copy = copy_exact(data, len);
    kf_http_fault_t fault = {-1, "unset"};
    int rc = kf_http_parse_request(copy, len, limits, req, &fault);
    free(copy);
    return verdict(rc, &fault);
}

static void expect_rc(int got, int want, const char *what, size_t len)
{
    if (got != want) {
        print_error("%s (%zu bytes): got %d, want %d\n", what, len, got, want);
        fail();
    }
}

/* Compares a view with a C string; expected NULL means an absent view (NULL, 0). */
static void expect_view(kf_str_t view, const char *expected)
{
    char text[512];
    if (expected == NULL) {
        assert_null(view.ptr);
        assert_int_equal(view.len, 0);
        return;
    }
    assert_non_null(view.ptr);
    assert_true(view.len < sizeof(text));
    memcpy(text, view.ptr, view.len);
    text[view.len] = '\0';
    assert_string_equal(text, expected);
}

static void expect_view_inside(kf_str_t view, const char *buf, size_t len)
{
    assert_non_null(view.ptr);
    assert_true(view.ptr >= buf);
    assert_true(view.len <= len && (size_t)(view.ptr - buf) <= len - view.len);
}

/* ---- Valid requests ---- */

typedef struct header_pair {
    const char *name;
    const char *value;
} header_pair_t;

typedef struct valid_case {
    const char *name;
    const char *input; /* the head, then body_len bytes of body */
    size_t body_len;   /* bytes after the head, which the parser must not count */
    const char *method;
    const char *target;
    const char *path;
    const char *query; /* NULL when the target has no '?' */
    bool http10;       /* HTTP/1.0 rather than HTTP/1.1 */
    size_t num_headers;
    bool has_content_length;
    int64_t content_length; /* when has_content_length */
    bool keep_alive;
    bool upgrade;
    header_pair_t headers[5]; /* the first headers in order; name NULL ends the list */
    const char *host;         /* the request's host, when not the Host field's value */
} valid_case_t;

static const valid_case_t valid_cases[] = {
    {
        .name = "valid: simple GET",
        .input = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 1,
        .keep_alive = true,
        .headers = {{"Host", "example.com"}},
    },
    {
        .name = "valid: GET with a query",
        .input = "GET /push/poll?after=12&ticket=abc HTTP/1.1\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/push/poll?after=12&ticket=abc",
        .path = "/push/poll",
        .query = "after=12&ticket=abc",
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: empty query is present but empty",
        .input = "GET /a? HTTP/1.1\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/a?",
        .path = "/a",
        .query = "",
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: only the first '?' splits the target",
        .input = "GET /a?b?c=d HTTP/1.1\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/a?b?c=d",
        .path = "/a",
        .query = "b?c=d",
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: escapes and sub-delims in the target",
        .input = "GET /a%20b/c;d=e?x=%41+b&y=!$'()*,~ HTTP/1.1\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/a%20b/c;d=e?x=%41+b&y=!$'()*,~",
        .path = "/a%20b/c;d=e",
        .query = "x=%41+b&y=!$'()*,~",
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: POST with Content-Length and a body",
        .input = "POST /api/visitor/messages HTTP/1.1\r\nHost: x\r\n"
                 "Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"body\":\"hi\"}",
        .body_len = 13,
        .method = "POST",
        .target = "/api/visitor/messages",
        .path = "/api/visitor/messages",
        .num_headers = 3,
        .has_content_length = true,
        .content_length = 13,
        .keep_alive = true,
        .headers = {{"Host", "x"}, {"Content-Type", "application/json"}, {"Content-Length", "13"}},
    },
    {
        .name = "valid: Content-Length name is case-insensitive",
        .input = "PUT /x HTTP/1.1\r\ncontent-LENGTH: 5\r\nHost: x\r\n\r\nhello",
        .body_len = 5,
        .method = "PUT",
        .target = "/x",
        .path = "/x",
        .num_headers = 2,
        .has_content_length = true,
        .content_length = 5,
        .keep_alive = true,
        .headers = {{"content-LENGTH", "5"}},
    },
    {
        .name = "valid: Content-Length zero",
        .input = "POST /x HTTP/1.1\r\nContent-Length: 0\r\nHost: x\r\n\r\n",
        .method = "POST",
        .target = "/x",
        .path = "/x",
        .num_headers = 2,
        .has_content_length = true,
        .content_length = 0,
        .keep_alive = true,
    },
    {
        .name = "valid: Content-Length with leading zeros and spaces",
        .input = "POST /x HTTP/1.1\r\nContent-Length:  007 \t\r\nHost: x\r\n\r\n",
        .method = "POST",
        .target = "/x",
        .path = "/x",
        .num_headers = 2,
        .has_content_length = true,
        .content_length = 7,
        .keep_alive = true,
    },
    {
        .name = "valid: Content-Length of exactly 2^53",
        .input = "POST /x HTTP/1.1\r\nContent-Length: 9007199254740992\r\nHost: x\r\n\r\n",
        .method = "POST",
        .target = "/x",
        .path = "/x",
        .num_headers = 2,
        .has_content_length = true,
        .content_length = 9007199254740992LL,
        .keep_alive = true,
    },
    {
        .name = "valid: HTTP/1.0 closes by default",
        .input = "GET / HTTP/1.0\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .http10 = true,
        .keep_alive = false,
    },
    {
        .name = "valid: HTTP/1.0 with Connection: Keep-Alive",
        .input = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .http10 = true,
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: HTTP/1.0 close wins over keep-alive",
        .input = "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .http10 = true,
        .num_headers = 1,
        .keep_alive = false,
    },
    {
        .name = "valid: HTTP/1.1 with Connection: close",
        .input = "GET / HTTP/1.1\r\nConnection: close\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 2,
        .keep_alive = false,
    },
    {
        .name = "valid: 'closed' is not the close token",
        .input = "GET / HTTP/1.1\r\nConnection: closed, xclose\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 2,
        .keep_alive = true,
    },
    {
        .name = "valid: close in a second Connection header",
        .input =
            "GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: ,, CLOSE ,\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 3,
        .keep_alive = false,
    },
    {
        .name = "valid: WebSocket handshake sets upgrade",
        .input = "GET /push/ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n"
                 "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
        .method = "GET",
        .target = "/push/ws",
        .path = "/push/ws",
        .num_headers = 5,
        .keep_alive = true,
        .upgrade = true,
        .headers = {{"Host", "x"}, {"Connection", "keep-alive, Upgrade"}, {"Upgrade", "websocket"}},
    },
    {
        .name = "valid: an Upgrade header alone does not set upgrade",
        .input = "GET / HTTP/1.1\r\nUpgrade: websocket\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 2,
        .keep_alive = true,
    },
    {
        .name = "valid: bare LF line ends",
        .input = "GET / HTTP/1.1\nHost: x\nAccept: */*\n\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 2,
        .keep_alive = true,
        .headers = {{"Host", "x"}, {"Accept", "*/*"}},
    },
    {
        .name = "valid: mixed CRLF and LF",
        .input = "GET / HTTP/1.1\r\nHost: x\nAccept: */*\r\n\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 2,
        .keep_alive = true,
        .headers = {{"Host", "x"}, {"Accept", "*/*"}},
    },
    {
        .name = "valid: header values are trimmed",
        .input = "GET / HTTP/1.1\r\nX-A:   a b  \t\r\nX-B:\r\nX-C: \t \r\nX-D:\tv\r\n"
                 "X-E: a\tb\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 6,
        .keep_alive = true,
        .headers = {{"X-A", "a b"}, {"X-B", ""}, {"X-C", ""}, {"X-D", "v"}, {"X-E", "a\tb"}},
    },
    {
        .name = "valid: colons and obs-text in values",
        .input = "GET / HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: caf\xc3\xa9 \xff\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 2,
        .keep_alive = true,
        .headers = {{"Host", "example.com:8080"}, {"User-Agent", "caf\xc3\xa9 \xff"}},
    },
    {
        .name = "valid: token specials in header names",
        .input = "GET / HTTP/1.1\r\nX!#$%&'*+-.^_`|~9: v\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 2,
        .keep_alive = true,
        .headers = {{"X!#$%&'*+-.^_`|~9", "v"}},
    },
    {
        .name = "valid: OPTIONS *",
        .input = "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        .method = "OPTIONS",
        .target = "*",
        .path = "*",
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: any token is a method",
        .input = "get / HTTP/1.1\r\nHost: x\r\n\r\n",
        .method = "get",
        .target = "/",
        .path = "/",
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: one empty line before the request line is skipped",
        .input = "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: absolute-form: the authority is the host, Host is ignored",
        .input = "GET http://kefu.test:8080/a/b?c=d HTTP/1.1\r\nHost: other.test\r\n\r\n",
        .method = "GET",
        .target = "http://kefu.test:8080/a/b?c=d",
        .path = "/a/b",
        .query = "c=d",
        .num_headers = 1,
        .keep_alive = true,
        .host = "kefu.test:8080",
    },
    {
        .name = "valid: absolute-form with https, the scheme in any case",
        .input = "GET HTTPS://[::1]/healthz HTTP/1.1\r\nHost: [::1]\r\n\r\n",
        .method = "GET",
        .target = "HTTPS://[::1]/healthz",
        .path = "/healthz",
        .num_headers = 1,
        .keep_alive = true,
        .host = "[::1]",
    },
    {
        .name = "valid: absolute-form without a path has the path /",
        .input = "GET http://h?x=1 HTTP/1.0\r\n\r\n",
        .method = "GET",
        .target = "http://h?x=1",
        .path = "/",
        .query = "x=1",
        .http10 = true,
        .host = "h",
    },
    {
        .name = "valid: absolute-form, nothing after the authority",
        .input = "OPTIONS http://h:80 HTTP/1.1\r\nHost: h:80\r\n\r\n",
        .method = "OPTIONS",
        .target = "http://h:80",
        .path = "/",
        .num_headers = 1,
        .keep_alive = true,
        .host = "h:80",
    },
    {
        .name = "valid: Host forms: IPv4 and a port",
        .input = "GET / HTTP/1.1\r\nHost: 127.0.0.1:65535\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: Host forms: sub-delims, escapes, an empty port",
        .input = "GET / HTTP/1.1\r\nHost: a-b_c~d!$&'()*+,;=%41%6f.e:\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: Host forms: an IP-literal",
        .input = "GET / HTTP/1.1\r\nHost: [fe80::1:2]:8443\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: an empty Host (RFC 9110 §7.2)",
        .input = "GET / HTTP/1.1\r\nHost:\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 1,
        .keep_alive = true,
        .host = "",
    },
    {
        .name = "valid: HTTP/1.0 needs no Host",
        .input = "GET / HTTP/1.0\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .http10 = true,
    },
    {
        .name = "valid: HTTP/1.2 is served as HTTP/1.1 (RFC 9110 §2.5)",
        .input = "GET / HTTP/1.2\r\nHost: x\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 1,
        .keep_alive = true,
    },
    {
        .name = "valid: HTTP/1.9 needs Host as HTTP/1.1 does",
        .input = "GET / HTTP/1.9\r\nHost: x\r\nConnection: upgrade\r\n\r\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .num_headers = 2,
        .keep_alive = true,
        .upgrade = true,
    },
    {
        .name = "valid: HTTP/1.0's Connection: upgrade is ignored (RFC 9110 §7.8)",
        .input = "GET /push/ws HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\n"
                 "Upgrade: websocket\r\n\r\n",
        .method = "GET",
        .target = "/push/ws",
        .path = "/push/ws",
        .http10 = true,
        .num_headers = 2,
        .keep_alive = true,
        .upgrade = false,
    },
    {
        .name = "valid: one bare LF before the request line is skipped",
        .input = "\nGET / HTTP/1.0\n\n",
        .method = "GET",
        .target = "/",
        .path = "/",
        .http10 = true,
    },
};

static void run_valid_case(void **state)
{
    const valid_case_t *c = *state;
    size_t total = strlen(c->input);
    size_t head_len = total - c->body_len;
    kf_http_request_t req;

    char *buf = copy_exact(c->input, total);
    int rc = kf_http_parse_request(buf, total, NULL, &req, NULL);
    expect_rc(rc, (int)head_len, "whole", total);
    expect_view(req.method, c->method);
    expect_view(req.target, c->target);
    expect_view(req.path, c->path);
    expect_view(req.query, c->query);
    assert_int_equal(req.minor_version, c->http10 ? 0 : 1);
    assert_int_equal(req.num_headers, c->num_headers);
    assert_int_equal(req.content_length, c->has_content_length ? c->content_length : -1);
    assert_int_equal(req.keep_alive, c->keep_alive);
    assert_int_equal(req.upgrade, c->upgrade);
    /* The host: the absolute-form's authority, else Host's value (absent in HTTP/1.0). */
    const kf_str_t *host_field = kf_http_header_get(&req, "Host");
    if (c->host != NULL)
        expect_view(req.host, c->host);
    else if (host_field != NULL)
        assert_true(req.host.ptr == host_field->ptr && req.host.len == host_field->len);
    else
        expect_view(req.host, NULL);
    for (size_t i = 0; i < ARRAY_LEN(c->headers) && c->headers[i].name != NULL; i++) {
        expect_view(req.headers[i].name, c->headers[i].name);
        expect_view(req.headers[i].value, c->headers[i].value);
    }
    for (size_t i = 0; i < req.num_headers; i++) {
        expect_view_inside(req.headers[i].name, buf, total);
        expect_view_inside(req.headers[i].value, buf, total);
    }
    free(buf);

    /* Every split point: what has arrived so far is never enough, and never an error. */
    for (size_t len = 0; len < head_len; len++)
        expect_rc(parse_exact(c->input, len, NULL, &req), INCOMPLETE, "prefix", len);

    /* The head alone, without its body, is complete too. */
    expect_rc(parse_exact(c->input, head_len, NULL, &req), (int)head_len, "head only", head_len);
}

/* ---- Malformed requests ---- */

typedef struct bad_case {
    const char *name;
    const char *input;
    size_t len;
    int expected;
    const kf_http_limits_t *limits; /* NULL: the defaults */
} bad_case_t;

static const bad_case_t bad_cases[] = {
    /* Request line. */
    {"bad: empty method", RAW(" / HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: only line ends", RAW("\r\n\r\n"), EBAD, NULL},
    {"bad: two empty lines before the request", RAW("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: CR alone before the request", RAW("\rGET / HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: '(' in method", RAW("GE(T / HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: 0x80 in method", RAW("G\x80T / HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: NUL in method", RAW("G\0T / HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: DEL in method", RAW("G\x7fT / HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: two spaces after method", RAW("GET  / HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: tab after method", RAW("GET\t/ HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: request line ends after method", RAW("GET\r\n\r\n"), EBAD, NULL},
    {"bad: relative target", RAW("GET index.html HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: absolute-form, another scheme", RAW("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n"), EBAD,
     NULL},
    {"bad: absolute-form, no authority", RAW("GET http:/a HTTP/1.1\r\nHost: h\r\n\r\n"), EBAD,
     NULL},
    {"bad: absolute-form, empty host", RAW("GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n"), EBAD,
     NULL},
    {"bad: absolute-form, a port alone", RAW("GET http://:80/ HTTP/1.1\r\nHost: h\r\n\r\n"), EBAD,
     NULL},
    {"bad: absolute-form, userinfo (RFC 9110 §4.2.4)",
     RAW("GET http://u:p@h/ HTTP/1.1\r\nHost: h\r\n\r\n"), EBAD, NULL},
    {"bad: absolute-form, a port not digits", RAW("GET http://h:x/ HTTP/1.1\r\nHost: h\r\n\r\n"),
     EBAD, NULL},
    {"bad: absolute-form still needs Host in HTTP/1.1", RAW("GET http://h/ HTTP/1.1\r\n\r\n"), EBAD,
     NULL},
    {"bad: absolute-form with an invalid Host", RAW("GET http://h/ HTTP/1.1\r\nHost: a b\r\n\r\n"),
     EBAD, NULL},
    {"bad: authority-form (CONNECT's)", RAW("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"), EBAD,
     NULL},
    {"bad: '*' for GET", RAW("GET * HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: '*x' for OPTIONS", RAW("OPTIONS *x HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: NUL in target", RAW("GET /a\0b HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: DEL in target", RAW("GET /a\x7f HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: 0xff in target", RAW("GET /a\xff HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: UTF-8 in target", RAW("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: tab in target", RAW("GET /a\tb HTTP/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: missing version", RAW("GET /\r\n\r\n"), EBAD, NULL},
    {"bad: empty version", RAW("GET / \r\n\r\n"), EBAD, NULL},
    {"bad: space after version", RAW("GET / HTTP/1.1 \r\n\r\n"), EBAD, NULL},
    {"bad: lowercase protocol", RAW("GET / http/1.1\r\n\r\n"), EBAD, NULL},
    {"bad: version not digits", RAW("GET / HTTP/1.x\r\n\r\n"), EBAD, NULL},
    {"bad: two-digit minor", RAW("GET / HTTP/1.10\r\n\r\n"), EBAD, NULL},
    {"bad: version without minor", RAW("GET / HTTP/2\r\n\r\n"), EBAD, NULL},
    {"bad: HTTP/2.0", RAW("GET / HTTP/2.0\r\n\r\n"), EVERSION, NULL},
    {"bad: HTTP/3.0", RAW("GET / HTTP/3.0\r\nHost: x\r\n\r\n"), EVERSION, NULL},
    {"bad: HTTP/0.9", RAW("GET / HTTP/0.9\r\n\r\n"), EVERSION, NULL},
    {"bad: CR alone ends the request line", RAW("GET / HTTP/1.1\rHost: x\r\n\r\n"), EBAD, NULL},
    /* Header lines. */
    {"bad: CR alone ends a header", RAW("GET / HTTP/1.1\r\nHost: x\rA: b\r\n\r\n"), EBAD, NULL},
    {"bad: CR alone inside a value", RAW("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), EBAD, NULL},
    {"bad: CR alone as the blank line", RAW("GET / HTTP/1.1\r\nA: b\r\n\rX"), EBAD, NULL},
    {"bad: empty header name", RAW("GET / HTTP/1.1\r\n: x\r\n\r\n"), EBAD, NULL},
    {"bad: space before colon", RAW("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), EBAD, NULL},
    {"bad: tab before colon", RAW("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n"), EBAD, NULL},
    {"bad: header without colon", RAW("GET / HTTP/1.1\r\nHost\r\n\r\n"), EBAD, NULL},
    {"bad: 0xc3 in header name", RAW("GET / HTTP/1.1\r\nX-\xc3\xa9: v\r\n\r\n"), EBAD, NULL},
    {"bad: NUL in header name", RAW("GET / HTTP/1.1\r\nX\0Y: v\r\n\r\n"), EBAD, NULL},
    {"bad: obs-fold with space", RAW("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), EBAD, NULL},
    {"bad: obs-fold with tab", RAW("GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n"), EBAD, NULL},
    {"bad: whitespace before the first header", RAW("GET / HTTP/1.1\r\n Host: x\r\n\r\n"), EBAD,
     NULL},
    {"bad: NUL in header value", RAW("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n"), EBAD, NULL},
    {"bad: DEL in header value", RAW("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n"), EBAD, NULL},
    {"bad: ESC in header value", RAW("GET / HTTP/1.1\r\nA: \x1b[31m\r\n\r\n"), EBAD, NULL},
    {"bad: vertical tab in header value", RAW("GET / HTTP/1.1\r\nA: b\vc\r\n\r\n"), EBAD, NULL},
    /* Content-Length. */
    {"bad: Content-Length not a number", RAW("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
     EBAD, NULL},
    {"bad: Content-Length empty", RAW("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n"), EBAD, NULL},
    {"bad: Content-Length negative", RAW("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), EBAD,
     NULL},
    {"bad: Content-Length with plus", RAW("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), EBAD,
     NULL},
    {"bad: Content-Length with inner space", RAW("POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n"),
     EBAD, NULL},
    {"bad: Content-Length in hex", RAW("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"), EBAD,
     NULL},
    {"bad: Content-Length list", RAW("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"), EBAD,
     NULL},
    {"bad: duplicate Content-Length, same value",
     RAW("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello"), EBAD, NULL},
    {"bad: duplicate Content-Length, other value",
     RAW("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), EBAD, NULL},
    {"bad: Content-Length 2^53 + 1",
     RAW("POST / HTTP/1.1\r\nContent-Length: 9007199254740993\r\n\r\n"), EBAD, NULL},
    {"bad: Content-Length 2^64",
     RAW("POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n"), EBAD, NULL},
    {"bad: Content-Length of 40 digits",
     RAW("POST / HTTP/1.1\r\nContent-Length: 9999999999999999999999999999999999999999\r\n\r\n"),
     EBAD, NULL},
    /* Transfer-Encoding. */
    {"bad: chunked body", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), ELENGTH,
     NULL},
    {"bad: Chunked in any case", RAW("POST / HTTP/1.1\r\ntransfer-encoding:  Chunked \r\n\r\n"),
     ELENGTH, NULL},
    {"bad: chunked in HTTP/1.0", RAW("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
     ELENGTH, NULL},
    {"bad: chunked after an empty list element",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: , chunked,\r\n\r\n"), ELENGTH, NULL},
    {"bad: chunked twice, two fields",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
     EBAD, NULL},
    {"bad: chunked twice, one list",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked,chunked\r\n\r\n"), EBAD, NULL},
    {"bad: gzip transfer coding", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), EBAD,
     NULL},
    {"bad: gzip then chunked", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
     ENOT_IMPL, NULL},
    {"bad: another coding, then chunked in a second field",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: x\r\nTransfer-Encoding: Chunked\r\n\r\n"),
     ENOT_IMPL, NULL},
    {"bad: chunked then gzip", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
     EBAD, NULL},
    {"bad: chunked, then another coding in a second field",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n"), EBAD,
     NULL},
    {"bad: identity transfer coding", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n"),
     EBAD, NULL},
    {"bad: xchunked", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n"), EBAD, NULL},
    {"bad: chunked with a parameter",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked;x=1\r\n\r\n"), EBAD, NULL},
    {"bad: an empty Transfer-Encoding", RAW("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n"), EBAD,
     NULL},
    {"bad: a Transfer-Encoding of commas", RAW("POST / HTTP/1.1\r\nTransfer-Encoding: , ,\r\n\r\n"),
     EBAD, NULL},
    {"bad: chunked with Content-Length",
     RAW("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), EBAD, NULL},
    {"bad: Content-Length with gzip",
     RAW("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n"), EBAD, NULL},
    /* Host (RFC 9112 §3.2, RFC 9110 §7.2). */
    {"bad: HTTP/1.1 without Host", RAW("GET / HTTP/1.1\r\nX: y\r\n\r\n"), EBAD, NULL},
    {"bad: two Hosts", RAW("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), EBAD, NULL},
    {"bad: two Hosts in HTTP/1.0", RAW("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n"), EBAD, NULL},
    {"bad: Host with userinfo", RAW("GET / HTTP/1.1\r\nHost: user@h\r\n\r\n"), EBAD, NULL},
    {"bad: Host with a path", RAW("GET / HTTP/1.1\r\nHost: h/a\r\n\r\n"), EBAD, NULL},
    {"bad: Host with a port not digits", RAW("GET / HTTP/1.1\r\nHost: h:http\r\n\r\n"), EBAD, NULL},
    {"bad: Host with two ports", RAW("GET / HTTP/1.1\r\nHost: h:1:2\r\n\r\n"), EBAD, NULL},
    {"bad: Host with a space", RAW("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), EBAD, NULL},
    {"bad: Host as a list", RAW("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n"), EBAD, NULL},
    {"bad: Host with a scheme", RAW("GET / HTTP/1.1\r\nHost: http://h\r\n\r\n"), EBAD, NULL},
    {"bad: Host with a bad escape", RAW("GET / HTTP/1.1\r\nHost: a%4\r\n\r\n"), EBAD, NULL},
    {"bad: Host with UTF-8", RAW("GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n"), EBAD, NULL},
    {"bad: Host, an unclosed IP-literal", RAW("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), EBAD, NULL},
    {"bad: Host, an empty IP-literal", RAW("GET / HTTP/1.1\r\nHost: []\r\n\r\n"), EBAD, NULL},
    {"bad: Host, text after an IP-literal", RAW("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"), EBAD,
     NULL},
    {"bad: Host, a space in an IP-literal", RAW("GET / HTTP/1.1\r\nHost: [::1 ]\r\n\r\n"), EBAD,
     NULL},
    /* Limits (tiny: request line 32, head 64, 3 headers). */
    {"bad: request line over the limit", RAW("GET /aaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n"),
     EURI_TOO_LONG, &tiny_limits},
    {"bad: request line over the limit, no line end yet",
     RAW("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), EURI_TOO_LONG, &tiny_limits},
    {"bad: method alone over the line limit", RAW("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
     EURI_TOO_LONG, &tiny_limits},
    {"bad: head over the byte limit",
     RAW("GET / HTTP/1.1\r\nA: 0123456789\r\nB: 0123456789\r\nC: 0123456789012\r\n\r\n"), EHEADERS,
     &tiny_limits},
    {"bad: head over the byte limit, no blank line yet",
     RAW("GET / HTTP/1.1\r\nA: 0123456789012345678901234567890123456789012345678901234567"),
     EHEADERS, &tiny_limits},
    {"bad: too many headers", RAW("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"),
     EHEADERS, &tiny_limits},
    {"bad: obs-fold after the last allowed header is still a fold",
     RAW("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n d\r\n\r\n"), EBAD, &tiny_limits},
};

static void run_bad_case(void **state)
{
    const bad_case_t *c = *state;
    const kf_http_limits_t *limits = c->limits;
    kf_http_limits_t defaults;
    kf_http_request_t req;

    if (limits == NULL) {
        kf_http_limits_default(&defaults);
        limits = &defaults;
    }
    expect_rc(parse_exact(c->input, c->len, limits, &req), c->expected, "whole", c->len);
    /* The verdict never depends on bytes after the offending one: a prefix is either not
     * enough yet or already the same error. */
    for (size_t len = 0; len < c->len; len++) {
        int rc = parse_exact(c->input, len, limits, &req);
        if (rc != INCOMPLETE)
            expect_rc(rc, c->expected, "prefix", len);
    }
}

/* ---- Every byte value in each part of a request ---- */

typedef struct byte_case {
    const char *name;
    const char *before; /* the request up to the probed byte */
    const char *after;  /* the rest of the request */
    bool (*accepts)(unsigned char c);
} byte_case_t;

static bool accepts_in_token(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Inside a header name, a ':' just ends the name early, which is fine. */
static bool accepts_in_header_name(unsigned char c)
{
    return accepts_in_token(c) || c == ':';
}

static bool accepts_in_target(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

static bool accepts_in_value(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* RFC 3986 unreserved and sub-delims. */
static bool is_host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~!$&'()*+,;=", c) != NULL);
}

/* In "a?1": a reg-name byte, or ':' before a port of digits. */
static bool accepts_in_host(unsigned char c)
{
    return is_host_char(c) || c == ':';
}

/* In "http://a?b/": a reg-name byte, or a '/' or '?' that ends the authority early. */
static bool accepts_in_authority(unsigned char c)
{
    return is_host_char(c) || c == '/' || c == '?';
}

static const byte_case_t byte_cases[] = {
    {"bytes: method", "G", "T / HTTP/1.1\r\nHost: x\r\n\r\n", accepts_in_token},
    {"bytes: target", "GET /a", "b HTTP/1.1\r\nHost: x\r\n\r\n", accepts_in_target},
    {"bytes: header name", "GET / HTTP/1.1\r\nHost: x\r\nX", "Y: v\r\n\r\n",
     accepts_in_header_name},
    {"bytes: header value", "GET / HTTP/1.1\r\nHost: x\r\nX: a", "b\r\n\r\n", accepts_in_value},
    {"bytes: Host", "GET / HTTP/1.1\r\nHost: a", "1\r\n\r\n", accepts_in_host},
    {"bytes: absolute-form authority", "GET http://a", "b/ HTTP/1.1\r\nHost: x\r\n\r\n",
     accepts_in_authority},
};

static void run_byte_case(void **state)
{
    const byte_case_t *c = *state;
    size_t before = strlen(c->before);
    size_t after = strlen(c->after);
    size_t len = before + 1 + after;
    char buf[128];
    kf_http_request_t req;

    assert_true(len <= sizeof(buf));
    memcpy(buf, c->before, before);
    memcpy(buf + before + 1, c->after, after);
    for (int value = 0; value < 256; value++) {
        buf[before] = (char)value;
        int rc = parse_exact(buf, len, NULL, &req);
        int want = c->accepts((unsigned char)value) ? (int)len : EBAD;
        if (rc != want) {
            print_error("byte 0x%02x: got %d, want %d\n", (unsigned)value, rc, want);
            fail();
        }
    }
}

/* ---- Limits, pipelining, header lookup ---- */

static void test_limits_default(void **state)
{
    (void)state;
    kf_http_limits_t limits;
    kf_http_limits_default(&limits);
    assert_int_equal(limits.max_request_line, 8192);
    assert_int_equal(limits.max_header_bytes, 16384);
    assert_int_equal(limits.max_headers, 64);
    assert_true(limits.max_headers <= KF_HTTP_MAX_HEADERS);
}

/* Builds "GET /aaa... HTTP/1.0" of exactly line_len bytes (line_len >= 15) into b: HTTP/1.0,
 * which needs no Host, so that the request line is all there is. */
static void build_request_line(kf_buf_t *b, size_t line_len)
{
    kf_buf_append_str(b, "GET /");
    for (size_t i = 0; i < line_len - 14; i++)
        kf_buf_append(b, "a", 1);
    kf_buf_append_str(b, " HTTP/1.0");
    assert_int_equal(b->len, line_len);
}

static void check_request_line_limit(const kf_http_limits_t *limits)
{
    size_t max = limits->max_request_line;
    kf_http_request_t req;
    kf_buf_t b;
    kf_buf_init(&b);

    /* Exactly at the limit: fine, and so are all its prefixes and a lone CR after it. */
    build_request_line(&b, max);
    expect_rc(parse_exact(b.data, b.len, limits, &req), INCOMPLETE, "at limit", b.len);
    kf_buf_append_str(&b, "\r");
    expect_rc(parse_exact(b.data, b.len, limits, &req), INCOMPLETE, "limit+CR", b.len);
    kf_buf_append_str(&b, "\n\r\n");
    expect_rc(parse_exact(b.data, b.len, limits, &req), (int)b.len, "at limit, whole", b.len);
    assert_int_equal(req.target.len, max - 13);

    /* One byte over: refused whole, and as soon as the extra byte arrives. */
    kf_buf_reset(&b);
    build_request_line(&b, max + 1);
    expect_rc(parse_exact(b.data, max, limits, &req), INCOMPLETE, "over, prefix", max);
    expect_rc(parse_exact(b.data, b.len, limits, &req), EURI_TOO_LONG, "over", b.len);
    kf_buf_append_str(&b, "\r\n\r\n");
    expect_rc(parse_exact(b.data, b.len, limits, &req), EURI_TOO_LONG, "over", b.len);
    kf_buf_free(&b);
}

static void test_request_line_limit_tiny(void **state)
{
    (void)state;
    kf_http_limits_t limits = {.max_request_line = 20, .max_header_bytes = 1000, .max_headers = 8};
    check_request_line_limit(&limits);
}

static void test_request_line_limit_default(void **state)
{
    (void)state;
    kf_http_limits_t limits;
    kf_http_limits_default(&limits);
    check_request_line_limit(&limits);

    /* A client that never sends a line end is cut off by the limit, not by memory. */
    kf_http_request_t req;
    kf_buf_t b;
    kf_buf_init(&b);
    kf_buf_append_str(&b, "GET /");
    while (b.len < 12000)
        kf_buf_append_str(&b, "abcdefgh");
    expect_rc(parse_exact(b.data, b.len, &limits, &req), EURI_TOO_LONG, "endless", b.len);
    kf_buf_free(&b);
}

/* Builds a head of exactly head_len bytes (>= 40) with one big header into b (HTTP/1.0: no
 * Host needed). */
static void build_head(kf_buf_t *b, size_t head_len)
{
    kf_buf_append_str(b, "GET / HTTP/1.0\r\nX-Pad: ");
    while (b->len < head_len - 4)
        kf_buf_append(b, "p", 1);
    kf_buf_append_str(b, "\r\n\r\n");
    assert_int_equal(b->len, head_len);
}

static void check_header_bytes_limit(const kf_http_limits_t *limits)
{
    size_t max = limits->max_header_bytes;
    kf_http_request_t req;
    kf_buf_t b;
    kf_buf_init(&b);

    build_head(&b, max);
    expect_rc(parse_exact(b.data, b.len, limits, &req), (int)max, "at limit", b.len);
    expect_rc(parse_exact(b.data, max - 1, limits, &req), INCOMPLETE, "at limit", max - 1);

    kf_buf_reset(&b);
    build_head(&b, max + 1);
    expect_rc(parse_exact(b.data, b.len, limits, &req), EHEADERS, "over", b.len);
    /* max bytes without the end of the head: no byte still to come can make it fit. */
    expect_rc(parse_exact(b.data, max, limits, &req), EHEADERS, "over, prefix", max);
    expect_rc(parse_exact(b.data, max - 1, limits, &req), INCOMPLETE, "over", max - 1);
    kf_buf_free(&b);
}

static void test_header_bytes_limit_tiny(void **state)
{
    (void)state;
    kf_http_limits_t limits = {.max_request_line = 1000, .max_header_bytes = 50, .max_headers = 8};
    check_header_bytes_limit(&limits);
}

static void test_header_bytes_limit_default(void **state)
{
    (void)state;
    kf_http_limits_t limits;
    kf_http_limits_default(&limits);
    check_header_bytes_limit(&limits);

    /* Endless header bytes without a blank line. */
    kf_http_request_t req;
    kf_buf_t b;
    kf_buf_init(&b);
    kf_buf_append_str(&b, "GET / HTTP/1.1\r\n");
    while (b.len < 20000)
        kf_buf_append_str(&b, "X-A: b\r\n");
    expect_rc(parse_exact(b.data, b.len, &limits, &req), EHEADERS, "endless", b.len);
    kf_buf_free(&b);
}

/* Builds a request with count headers "H<i>: v<i>" (HTTP/1.0: Host is not one of them). */
static void build_many_headers(kf_buf_t *b, size_t count)
{
    kf_buf_append_str(b, "GET / HTTP/1.0\r\n");
    for (size_t i = 0; i < count; i++)
        kf_buf_printf(b, "H%zu: v%zu\r\n", i, i);
    kf_buf_append_str(b, "\r\n");
}

static void check_header_count(const kf_http_limits_t *limits, size_t allowed)
{
    kf_http_request_t req;
    kf_buf_t b;
    kf_buf_init(&b);

    build_many_headers(&b, allowed);
    char *buf = copy_exact(b.data, b.len);
    expect_rc(kf_http_parse_request(buf, b.len, limits, &req, NULL), (int)b.len, "allowed", b.len);
    assert_int_equal(req.num_headers, allowed);
    for (size_t i = 0; i < allowed; i++) {
        char text[32];
        snprintf(text, sizeof(text), "H%zu", i);
        expect_view(req.headers[i].name, text);
        snprintf(text, sizeof(text), "v%zu", i);
        expect_view(req.headers[i].value, text);
    }
    free(buf);

    kf_buf_reset(&b);
    build_many_headers(&b, allowed + 1);
    expect_rc(parse_exact(b.data, b.len, limits, &req), EHEADERS, "one more", b.len);
    kf_buf_free(&b);
}

static void test_header_count_limit(void **state)
{
    (void)state;
    kf_http_limits_t limits;
    kf_http_limits_default(&limits);
    check_header_count(&limits, 64);

    limits.max_headers = 3;
    check_header_count(&limits, 3);

    limits.max_headers = 0;
    check_header_count(&limits, 0);

    /* A limit above the array is clamped to the array. */
    limits.max_headers = 1000;
    check_header_count(&limits, KF_HTTP_MAX_HEADERS);
}

static void test_pipelined(void **state)
{
    (void)state;
    static const char first[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char second[] = "POST /b HTTP/1.1\r\nContent-Length: 3\r\nHost: x\r\n\r\n";
    static const char third[] = "GET /c?d HTTP/1.0\n\n";
    kf_http_request_t req;
    kf_buf_t b;
    kf_buf_init(&b);
    kf_buf_append_str(&b, first);
    kf_buf_append_str(&b, second);
    kf_buf_append_str(&b, "abc");
    kf_buf_append_str(&b, third);

    char *buf = copy_exact(b.data, b.len);
    size_t offset = 0;
    int rc = kf_http_parse_request(buf, b.len, NULL, &req, NULL);
    expect_rc(rc, (int)strlen(first), "first", b.len);
    expect_view(req.target, "/a");
    offset += (size_t)rc;

    rc = kf_http_parse_request(buf + offset, b.len - offset, NULL, &req, NULL);
    expect_rc(rc, (int)strlen(second), "second", b.len - offset);
    expect_view(req.target, "/b");
    assert_int_equal(req.content_length, 3);
    offset += (size_t)rc + (size_t)req.content_length;

    rc = kf_http_parse_request(buf + offset, b.len - offset, NULL, &req, NULL);
    expect_rc(rc, (int)strlen(third), "third", b.len - offset);
    expect_view(req.path, "/c");
    expect_view(req.query, "d");
    assert_false(req.keep_alive);
    offset += (size_t)rc;
    assert_int_equal(offset, b.len);

    /* A second head that has only begun does not disturb the first. */
    rc = kf_http_parse_request(buf, strlen(first) + 5, NULL, &req, NULL);
    expect_rc(rc, (int)strlen(first), "first, second partial", strlen(first) + 5);
    free(buf);
    kf_buf_free(&b);
}

static void test_header_get(void **state)
{
    (void)state;
    static const char input[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Token: one\r\nx-token: two\r\n"
                                "Cookie: kefu_session=s1; theme=dark\r\n\r\n";
    kf_http_request_t req;
    int rc = kf_http_parse_request(input, sizeof(input) - 1, NULL, &req, NULL);
    expect_rc(rc, (int)sizeof(input) - 1, "whole", sizeof(input) - 1);

    const kf_str_t *value = kf_http_header_get(&req, "host");
    assert_non_null(value);
    expect_view(*value, "a");
    value = kf_http_header_get(&req, "X-TOKEN");
    assert_non_null(value);
    expect_view(*value, "one");
    assert_null(kf_http_header_get(&req, "X-Tok"));
    assert_null(kf_http_header_get(&req, "X-Token-2"));
    assert_null(kf_http_header_get(&req, "Authorization"));
    assert_null(kf_http_header_get(&req, ""));

    value = kf_http_header_get(&req, "Cookie");
    assert_non_null(value);
    kf_str_t session;
    assert_int_equal(kf_http_cookie_get(*value, "kefu_session", &session), 0);
    expect_view(session, "s1");
}

/* A NULL limits pointer means the defaults. */
static void test_null_limits(void **state)
{
    (void)state;
    static const char input[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    kf_http_request_t req;
    assert_int_equal(kf_http_parse_request(input, sizeof(input) - 1, NULL, &req, NULL),
                     sizeof(input) - 1);
    assert_int_equal(kf_http_parse_request(NULL, 0, NULL, &req, NULL), INCOMPLETE);
}

/* ---- kf_http_list_has ---- */

static void test_list_has(void **state)
{
    (void)state;
    static const struct {
        const char *list, *token;
        bool found;
    } cases[] = {
        {"websocket", "websocket", true},
        {"websocket, h2c", "websocket", true},
        {"h2c,WebSocket", "websocket", true},
        {" ,\t, websocket\t, ,", "websocket", true},
        {"h2c, websocket", "h2c", true},
        {"websockets", "websocket", false},
        {"xwebsocket, h2c", "websocket", false},
        {"web socket", "websocket", false},
        {"websocket/13", "websocket", false},
        {"", "websocket", false},
        {", ,", "", false}, /* empty elements are no elements */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        kf_str_t list = {cases[i].list, strlen(cases[i].list)};
        if (kf_http_list_has(list, cases[i].token) != cases[i].found)
            fail_msg("\"%s\" has \"%s\": want %d", cases[i].list, cases[i].token, cases[i].found);
    }
    assert_false(kf_http_list_has((kf_str_t){NULL, 0}, "x"));
}

/* ---- kf_http_url_decode ---- */

enum { OUT_BIG = 64 };

typedef struct decode_case {
    const char *name;
    const char *input;
    size_t len;
    size_t out_size;
    int expected;       /* decoded length or error */
    const char *output; /* what out holds afterwards ("" after an error) */
} decode_case_t;

static const decode_case_t decode_cases[] = {
    {"decode: plain", RAW("abc"), OUT_BIG, 3, "abc"},
    {"decode: empty", RAW(""), OUT_BIG, 0, ""},
    {"decode: empty into one byte", RAW(""), 1, 0, ""},
    {"decode: plus is a space", RAW("a+b++"), OUT_BIG, 5, "a b  "},
    {"decode: escapes in both cases", RAW("%41%62%4a%4A"), OUT_BIG, 4, "AbJJ"},
    {"decode: escaped percent and plus", RAW("%25%2B%2b"), OUT_BIG, 3, "%++"},
    {"decode: UTF-8 escapes", RAW("%E4%B8%AD"), OUT_BIG, 3, "\xe4\xb8\xad"},
    {"decode: raw high bytes pass", RAW("\xc3\xa9"), OUT_BIG, 2, "\xc3\xa9"},
    {"decode: lone percent", RAW("%"), OUT_BIG, KF_EINVAL, ""},
    {"decode: percent at the end", RAW("abc%"), OUT_BIG, KF_EINVAL, ""},
    {"decode: one hex digit", RAW("%4"), OUT_BIG, KF_EINVAL, ""},
    {"decode: one hex digit at the end", RAW("ab%4"), OUT_BIG, KF_EINVAL, ""},
    {"decode: non-hex digits", RAW("%zz"), OUT_BIG, KF_EINVAL, ""},
    {"decode: second digit not hex", RAW("%4g"), OUT_BIG, KF_EINVAL, ""},
    {"decode: sign is not a digit", RAW("%+1"), OUT_BIG, KF_EINVAL, ""},
    {"decode: escaped NUL", RAW("a%00b"), OUT_BIG, KF_EINVAL, ""},
    {"decode: raw NUL", RAW("a\0b"), OUT_BIG, KF_EINVAL, ""},
    {"decode: exactly fits", RAW("abcd"), 5, 4, "abcd"},
    {"decode: one byte short", RAW("abcd"), 4, KF_ETOOBIG, ""},
    {"decode: escapes count decoded bytes", RAW("%41%42%43"), 4, 3, "ABC"},
    {"decode: no room for anything", RAW("a"), 1, KF_ETOOBIG, ""},
};

static void run_decode_case(void **state)
{
    const decode_case_t *c = *state;
    char *input = copy_exact(c->input, c->len);
    char *out = kf_xmalloc(c->out_size);
    memset(out, 'x', c->out_size);
    int rc = kf_http_url_decode((kf_str_t){input, c->len}, out, c->out_size);
    assert_int_equal(rc, c->expected);
    assert_string_equal(out, c->output);
    free(out);
    free(input);
}

static void test_url_decode_zero_size(void **state)
{
    (void)state;
    assert_int_equal(kf_http_url_decode(KF_STR_LIT("a"), NULL, 0), KF_ETOOBIG);
    assert_int_equal(kf_http_url_decode((kf_str_t){NULL, 0}, NULL, 0), KF_ETOOBIG);
    char out[4] = "zzz";
    assert_int_equal(kf_http_url_decode((kf_str_t){NULL, 0}, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

/* ---- kf_http_query_get ---- */

typedef struct query_case {
    const char *name;
    const char *query; /* NULL: an absent query */
    const char *param;
    size_t out_size;
    int expected;
    const char *output;
} query_case_t;

static const query_case_t query_cases[] = {
    {"query: second parameter", "a=1&b=2", "b", OUT_BIG, 1, "2"},
    {"query: first occurrence wins", "a=1&a=2", "a", OUT_BIG, 1, "1"},
    {"query: missing", "a=1&b=2", "c", OUT_BIG, KF_ENOTFOUND, ""},
    {"query: empty value", "a=&b=2", "a", OUT_BIG, 0, ""},
    {"query: no '=' is the empty value", "a&b=2", "a", OUT_BIG, 0, ""},
    {"query: no '=' at the end", "b=2&a", "a", OUT_BIG, 0, ""},
    {"query: 'a' is not 'ab'", "ab=1&a=2", "a", OUT_BIG, 1, "2"},
    {"query: 'ab' is not 'a'", "a=1&ab=2", "ab", OUT_BIG, 1, "2"},
    {"query: prefix name absent", "ab=1", "a", OUT_BIG, KF_ENOTFOUND, ""},
    {"query: longer name absent", "a=1", "ab", OUT_BIG, KF_ENOTFOUND, ""},
    {"query: value name is not a key", "x=a", "a", OUT_BIG, KF_ENOTFOUND, ""},
    {"query: value is decoded", "q=hello+world%21", "q", OUT_BIG, 12, "hello world!"},
    {"query: '=' inside the value", "a=1=2", "a", OUT_BIG, 3, "1=2"},
    {"query: key is decoded", "a%62=1&ab=2", "ab", OUT_BIG, 1, "1"},
    {"query: plus in a key", "a+b=1", "a b", OUT_BIG, 1, "1"},
    {"query: badly escaped key never matches", "a%6=1&a=2", "a", OUT_BIG, 1, "2"},
    {"query: empty parameters skipped", "&&a=1&", "a", OUT_BIG, 1, "1"},
    {"query: empty string", "", "a", OUT_BIG, KF_ENOTFOUND, ""},
    {"query: absent", NULL, "a", OUT_BIG, KF_ENOTFOUND, ""},
    {"query: bad escape in the value", "a=x%2", "a", OUT_BIG, KF_EINVAL, ""},
    {"query: first occurrence wins even when bad", "a=%zz&a=2", "a", OUT_BIG, KF_EINVAL, ""},
    {"query: escaped NUL in the value", "after=1%00", "after", OUT_BIG, KF_EINVAL, ""},
    {"query: value too big", "a=12345", "a", 3, KF_ETOOBIG, ""},
    {"query: value just fits", "a=12345", "a", 6, 5, "12345"},
    {"query: real push URL", "after=42&ticket=t%2Fk%3D", "ticket", OUT_BIG, 4, "t/k="},
};

static void run_query_case(void **state)
{
    const query_case_t *c = *state;
    kf_str_t query = {c->query, c->query != NULL ? strlen(c->query) : 0};
    char *out = kf_xmalloc(c->out_size);
    memset(out, 'x', c->out_size);
    /* An exact copy, so that a read past the query shows under AddressSanitizer. */
    char *copy = copy_exact(c->query != NULL ? c->query : "", query.len);
    if (query.ptr != NULL)
        query.ptr = copy;
    int rc = kf_http_query_get(query, c->param, out, c->out_size);
    assert_int_equal(rc, c->expected);
    assert_string_equal(out, c->output);
    free(copy);
    free(out);
}

/* ---- kf_http_cookie_get ---- */

typedef struct cookie_case {
    const char *name;
    const char *header;
    const char *cookie;
    int expected;
    const char *value; /* NULL when not found */
} cookie_case_t;

static const cookie_case_t cookie_cases[] = {
    {"cookie: second", "a=1; b=2", "b", 0, "2"},
    {"cookie: no space after ';'", "a=1;b=2", "b", 0, "2"},
    {"cookie: spaces and tabs around", " \ta = 1 ;\tb=2 ", "a", 0, "1"},
    {"cookie: last with trailing space", "a=1; b=2 ", "b", 0, "2"},
    {"cookie: quoted value", "s=\"quoted value\"", "s", 0, "quoted value"},
    {"cookie: lone quote kept", "s=\"", "s", 0, "\""},
    {"cookie: empty quotes", "s=\"\"", "s", 0, ""},
    {"cookie: 'a' is not 'ab'", "ab=1; a=2", "a", 0, "2"},
    {"cookie: 'ab' is not 'a'", "a=1; ab=2", "ab", 0, "2"},
    {"cookie: first occurrence wins", "a=1; a=2", "a", 0, "1"},
    {"cookie: empty value", "a=; b=2", "a", 0, ""},
    {"cookie: '=' inside the value", "t=a=b==", "t", 0, "a=b=="},
    {"cookie: pair without '=' skipped", "a; b=2", "a", KF_ENOTFOUND, NULL},
    {"cookie: names are case-sensitive", "A=1", "a", KF_ENOTFOUND, NULL},
    {"cookie: missing", "a=1; b=2", "c", KF_ENOTFOUND, NULL},
    {"cookie: empty header", "", "a", KF_ENOTFOUND, NULL},
    {"cookie: only separators", ";;; ;", "a", KF_ENOTFOUND, NULL},
    {"cookie: value is not a name", "x=a", "a", KF_ENOTFOUND, NULL},
    {"cookie: the session cookie", "theme=dark; kefu_session=abc.def-_; lang=fr", "kefu_session", 0,
     "abc.def-_"},
};

static void run_cookie_case(void **state)
{
    const cookie_case_t *c = *state;
    size_t len = strlen(c->header);
    char *copy = copy_exact(c->header, len);
    kf_str_t value = {"stale", 5};
    int rc = kf_http_cookie_get((kf_str_t){copy, len}, c->cookie, &value);
    assert_int_equal(rc, c->expected);
    if (c->value != NULL) {
        expect_view(value, c->value);
        expect_view_inside(value, copy, len);
    } else {
        expect_view(value, NULL);
    }
    free(copy);
}

/* ---- kf_parse_u64 ---- */

typedef struct u64_case {
    const char *name;
    const char *input;
    size_t len;
    int expected;
    uint64_t value; /* when expected is 0 */
} u64_case_t;

static const u64_case_t u64_cases[] = {
    {"u64: zero", RAW("0"), 0, 0},
    {"u64: small", RAW("123"), 0, 123},
    {"u64: leading zeros", RAW("007"), 0, 7},
    {"u64: 2^53", RAW("9007199254740992"), 0, 9007199254740992ULL},
    {"u64: 2^64 - 1", RAW("18446744073709551615"), 0, UINT64_MAX},
    {"u64: 2^64 - 1 with leading zeros", RAW("0018446744073709551615"), 0, UINT64_MAX},
    {"u64: 2^64", RAW("18446744073709551616"), KF_EINVAL, 0},
    {"u64: 2^64 + 4", RAW("18446744073709551620"), KF_EINVAL, 0},
    {"u64: (2^64 - 1) * 10", RAW("184467440737095516150"), KF_EINVAL, 0},
    {"u64: 20 nines", RAW("99999999999999999999"), KF_EINVAL, 0},
    {"u64: empty", RAW(""), KF_EINVAL, 0},
    {"u64: minus", RAW("-1"), KF_EINVAL, 0},
    {"u64: minus zero", RAW("-0"), KF_EINVAL, 0},
    {"u64: plus", RAW("+1"), KF_EINVAL, 0},
    {"u64: leading space", RAW(" 1"), KF_EINVAL, 0},
    {"u64: trailing space", RAW("1 "), KF_EINVAL, 0},
    {"u64: trailing letter", RAW("1a"), KF_EINVAL, 0},
    {"u64: hex", RAW("0x10"), KF_EINVAL, 0},
    {"u64: NUL inside the view", RAW("1\0002"), KF_EINVAL, 0},
};

static void run_u64_case(void **state)
{
    const u64_case_t *c = *state;
    char *copy = copy_exact(c->input, c->len);
    uint64_t value = 77;
    int rc = kf_parse_u64((kf_str_t){copy, c->len}, &value);
    assert_int_equal(rc, c->expected);
    assert_true(value == (rc == 0 ? c->value : 77));
    free(copy);
}

static void test_parse_u64_absent(void **state)
{
    (void)state;
    uint64_t value = 5;
    assert_int_equal(kf_parse_u64((kf_str_t){NULL, 0}, &value), KF_EINVAL);
    assert_true(value == 5);
}

int main(void)
{
    static const struct CMUnitTest fixed_tests[] = {
        cmocka_unit_test(test_limits_default),
        cmocka_unit_test(test_request_line_limit_tiny),
        cmocka_unit_test(test_request_line_limit_default),
        cmocka_unit_test(test_header_bytes_limit_tiny),
        cmocka_unit_test(test_header_bytes_limit_default),
        cmocka_unit_test(test_header_count_limit),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_header_get),
        cmocka_unit_test(test_null_limits),
        cmocka_unit_test(test_list_has),
        cmocka_unit_test(test_url_decode_zero_size),
        cmocka_unit_test(test_parse_u64_absent),
    };
    /* One cmocka test per table row, named after the row, so a failure names its case. */
    struct CMUnitTest tests[ARRAY_LEN(fixed_tests) + ARRAY_LEN(valid_cases) + ARRAY_LEN(bad_cases) +
                            ARRAY_LEN(byte_cases) + ARRAY_LEN(decode_cases) +
                            ARRAY_LEN(query_cases) + ARRAY_LEN(cookie_cases) +
                            ARRAY_LEN(u64_cases)];
    size_t n = 0;

    for (size_t i = 0; i < ARRAY_LEN(fixed_tests); i++)
        tests[n++] = fixed_tests[i];
    for (size_t i = 0; i < ARRAY_LEN(valid_cases); i++)
        tests[n++] = (struct CMUnitTest){valid_cases[i].name, run_valid_case, NULL, NULL,
                                         (void *)&valid_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++)
        tests[n++] =
            (struct CMUnitTest){bad_cases[i].name, run_bad_case, NULL, NULL, (void *)&bad_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(byte_cases); i++)
        tests[n++] = (struct CMUnitTest){byte_cases[i].name, run_byte_case, NULL, NULL,
                                         (void *)&byte_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(decode_cases); i++)
        tests[n++] = (struct CMUnitTest){decode_cases[i].name, run_decode_case, NULL, NULL,
                                         (void *)&decode_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(query_cases); i++)
        tests[n++] = (struct CMUnitTest){query_cases[i].name, run_query_case, NULL, NULL,
                                         (void *)&query_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(cookie_cases); i++)
        tests[n++] = (struct CMUnitTest){cookie_cases[i].name, run_cookie_case, NULL, NULL,
                                         (void *)&cookie_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(u64_cases); i++)
        tests[n++] =
            (struct CMUnitTest){u64_cases[i].name, run_u64_case, NULL, NULL, (void *)&u64_cases[i]};
    assert_int_equal(n, ARRAY_LEN(tests));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
