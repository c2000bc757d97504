/* parser.h: a stateless, zero-copy, incremental HTTP/1.1 request-head parser, plus helpers for
 * query strings and cookies. Views point into the caller's buffer; nothing is allocated. */
#ifndef KF_HTTP_PARSER_H
#define KF_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define KF_HTTP_MAX_HEADERS 100

typedef struct kf_http_limits {
    size_t max_request_line; /* bytes in "METHOD target HTTP/1.1" (default 8192) */
    size_t max_header_bytes; /* bytes of the whole head, request line included (default 16384) */
    size_t max_headers;      /* number of header fields (default 64, at most KF_HTTP_MAX_HEADERS) */
} kf_http_limits_t;

typedef struct kf_http_header {
    kf_str_t name;  /* as sent (compare case-insensitively) */
    kf_str_t value; /* leading and trailing spaces and tabs trimmed */
} kf_http_header_t;

typedef struct kf_http_request {
    kf_str_t method; /* "GET", "POST", ... (a token; case-sensitive) */
    kf_str_t target; /* the request-target as sent, e.g. "/a/b?x=1" or "http://h/a/b?x=1" */
    /* The target's path (not decoded): up to '?' in the origin-form, "*" in the asterisk-form;
     * in the absolute-form the part after the authority, or "/" (a static string, the one view
     * outside the caller's buffer) when that part is empty (RFC 9112 §3.3). */
    kf_str_t path;
    kf_str_t query;    /* after '?', without it; len 0 (ptr may be NULL) when absent */
    int minor_version; /* 0 or 1 (a higher HTTP/1.x is served as HTTP/1.1, RFC 9110 §2.5) */
    kf_http_header_t headers[KF_HTTP_MAX_HEADERS];
    size_t num_headers;
    /* Derived from the request line and the headers: */
    /* The authority the request is for, uri-host [":" port] (RFC 9110 §7.2), validated: the
     * absolute-form target's (RFC 9112 §3.3: Host is then ignored), else the Host field's value.
     * Empty (ptr NULL) for an HTTP/1.0 request without Host, empty (ptr set) for "Host:". */
    kf_str_t host;
    int64_t content_length; /* -1 when there is no Content-Length */
    bool keep_alive;        /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with keep-alive */
    /* An HTTP/1.1 request whose Connection lists "upgrade" (case-insensitive token); never for
     * HTTP/1.0, whose Upgrade field MUST be ignored (RFC 9110 §7.8). */
    bool upgrade;
} kf_http_request_t;

/* Why a request is refused: the HTTP status to answer and a sentence for the error body. */
typedef struct kf_http_fault {
    int status;         /* 400, 411, 414, 431, 501 or 505; 0 when nothing is refused */
    const char *reason; /* a static English sentence; NULL when nothing is refused */
} kf_http_fault_t;

/* Fills limits with the defaults documented above. */
void kf_http_limits_default(kf_http_limits_t *limits);

/* Parses the head of one request at the start of buf (len bytes).
 * Returns the number of bytes of the head (request line, headers and the blank line) when it is
 * complete; KF_EAGAIN when more bytes are needed (and the limits are not yet exceeded); or, for a
 * request to refuse, KF_ETOOBIG (a limit: 414 request line longer than max_request_line, 431
 * header bytes or count over the limit) or KF_EPROTO (400 malformed, 411 a chunked body, as we
 * take Content-Length only, 501 a transfer coding we do not know before the final chunked, 505
 * not HTTP/1.x), with the status and its reason in *fault (may be NULL; zeroed unless the request
 * is refused). Accepts CRLF and bare LF line ends. 400 for: control characters in the request
 * line or header values (other than HTAB), an empty or non-token method or header name,
 * whitespace before a header's colon, obsolete line folding, a target that is neither
 * origin-form ("/..."), absolute-form with the http or https scheme and a host without userinfo
 * (RFC 9112 §3.2.2), nor "*" for OPTIONS; duplicate or invalid Content-Length (non-digits,
 * overflow past 2^53); Transfer-Encoding together with Content-Length, or whose last coding is
 * not chunked, or with chunked twice (RFC 9112 §6.1, §6.3); no Host in an HTTP/1.1 request, more
 * than one Host, or a Host that is not uri-host [":" port] (RFC 9112 §3.2). The body, if any,
 * follows the head in buf and is not examined. */
int kf_http_parse_request(const char *buf, size_t len, const kf_http_limits_t *limits,
                          kf_http_request_t *req, kf_http_fault_t *fault);

/* True when the comma-separated list value (RFC 9110 §5.6.1: OWS around elements, empty
 * elements ignored) has an element equal to token, ignoring ASCII case; e.g. "websocket" in an
 * Upgrade field "websocket, h2c". */
bool kf_http_list_has(kf_str_t value, const char *token);

/* Returns the first header with that name (case-insensitive), or NULL. */
const kf_str_t *kf_http_header_get(const kf_http_request_t *req, const char *name);

/* Percent-decodes src ("+" becomes a space) into out (NUL-terminated, at most out_size - 1 bytes).
 * Returns the decoded length, or KF_EINVAL on a bad escape, KF_ETOOBIG when out is too small. */
int kf_http_url_decode(kf_str_t src, char *out, size_t out_size);

/* Finds parameter name in a query string ("a=1&b=2") and decodes its value into out.
 * Returns the decoded length (>= 0), KF_ENOTFOUND when absent, or an error of kf_http_url_decode.
 * A parameter without '=' has the empty value. The first occurrence wins. */
int kf_http_query_get(kf_str_t query, const char *name, char *out, size_t out_size);

/* Finds cookie name in a Cookie header value ("a=1; b=2") and returns its raw value as a view.
 * Returns 0 and fills value, or KF_ENOTFOUND. Surrounding double quotes are removed. */
int kf_http_cookie_get(kf_str_t header_value, const char *name, kf_str_t *value);

#endif
