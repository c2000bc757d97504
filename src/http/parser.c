/* parser.c: the HTTP/1.x request-head parser and the query-string, cookie and integer helpers. */
#include "http/parser.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

#include "base/err.h"

/* Content-Length values above 2^53 are refused: they are surely hostile, and every size up to it
 * is exact in a double, so the number survives JSON and JavaScript unchanged. */
#define MAX_CONTENT_LENGTH ((uint64_t)1 << 53)

void kf_http_limits_default(kf_http_limits_t *limits)
{
    limits->max_request_line = 8192;
    limits->max_header_bytes = 16384;
    limits->max_headers = 64;
}

/* RFC 9110 tchar: the bytes allowed in a method and a header name. */
static bool is_tchar(unsigned char c)
{
    static const char specials[] = "!#$%&'*+-.^_`|~";
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return memchr(specials, c, sizeof(specials) - 1) != NULL;
}

/* A target is visible ASCII only: clients percent-encode everything else, so a raw byte >= 0x80
 * or a control byte there is a broken or hostile client. */
static bool is_target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* Header values may carry obs-text (>= 0x80), e.g. UTF-8 in a User-Agent, but no controls. */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The head is scanned strictly left to right and every verdict depends only on the bytes before
 * it, so a prefix of any input yields either KF_EAGAIN or the same result as the whole. */
typedef struct scan {
    const char *buf; /* the caller's bytes */
    size_t len;      /* how many of them have arrived */
    size_t limit;    /* the head must end at or before this offset (max_header_bytes) */
    size_t pos;      /* offset of the next byte to examine */
    int status;      /* the HTTP status of the fault found, once one is */
} scan_t;

/* Records the HTTP status a fault maps to and returns its code: KF_ETOOBIG for what is over a
 * limit (414, 431), KF_EPROTO for the rest. */
static int fault(int *status, int http_status)
{
    *status = http_status;
    return http_status == 414 || http_status == 431 ? KF_ETOOBIG : KF_EPROTO;
}

/* Returns 0 when the byte at offset at may be read, else the code to hand back: 431 as soon
 * as the head can no longer fit, even before that byte arrives, since no later byte can help. */
static int need(scan_t *s, size_t at)
{
    if (at >= s->limit)
        return fault(&s->status, 431);
    if (at >= s->len)
        return KF_EAGAIN;
    return 0;
}

/* Consumes a line end at s->pos: LF or CR LF. A CR followed by anything else is rejected because
 * bare CRs are how request smuggling hides a line from one parser but not another. */
static int eat_line_end(scan_t *s)
{
    int rc = need(s, s->pos);
    if (rc != 0)
        return rc;
    if (s->buf[s->pos] == '\n') {
        s->pos++;
        return 0;
    }
    if (s->buf[s->pos] != '\r')
        return fault(&s->status, 400);
    rc = need(s, s->pos + 1);
    if (rc != 0)
        return rc;
    if (s->buf[s->pos + 1] != '\n')
        return fault(&s->status, 400);
    s->pos += 2;
    return 0;
}

/* Reads the request-line byte at s->pos into *c without consuming it. Only the line's content
 * counts towards max_request_line, so a line of exactly that many bytes may still end in CR LF. */
static int peek_line_byte(scan_t *s, size_t line_start, size_t max_line, unsigned char *c)
{
    int rc = need(s, s->pos);
    if (rc != 0)
        return rc;
    *c = (unsigned char)s->buf[s->pos];
    if (s->pos - line_start >= max_line && *c != '\r' && *c != '\n')
        return fault(&s->status, 414);
    return 0;
}

static int parse_request_line(scan_t *s, size_t max_line, kf_http_request_t *req)
{
    unsigned char c = 0;
    int rc;

    /* RFC 9112 2.2: ignore one empty line before the request line (some clients send a CR LF
     * after a POST body). */
    rc = need(s, s->pos);
    if (rc != 0)
        return rc;
    if (s->buf[s->pos] == '\r' || s->buf[s->pos] == '\n') {
        rc = eat_line_end(s);
        if (rc != 0)
            return rc;
    }
    size_t line_start = s->pos;

    for (;;) {
        rc = peek_line_byte(s, line_start, max_line, &c);
        if (rc != 0)
            return rc;
        if (c == ' ')
            break;
        if (!is_tchar(c))
            return fault(&s->status, 400);
        s->pos++;
    }
    req->method = (kf_str_t){s->buf + line_start, s->pos - line_start};
    if (req->method.len == 0)
        return fault(&s->status, 400);
    s->pos++;

    size_t target_start = s->pos;
    size_t query_mark = 0; /* offset of the first '?', 0 when none (it can never be at 0) */
    for (;;) {
        rc = peek_line_byte(s, line_start, max_line, &c);
        if (rc != 0)
            return rc;
        if (c == ' ')
            break;
        if (!is_target_char(c))
            return fault(&s->status, 400);
        if (c == '?' && query_mark == 0)
            query_mark = s->pos;
        s->pos++;
    }
    req->target = (kf_str_t){s->buf + target_start, s->pos - target_start};
    if (req->target.len == 0)
        return fault(&s->status, 400);
    /* Origin-form only: we are never a proxy, so absolute-form is not for us, and "*" only
     * means something to OPTIONS. */
    bool asterisk_form = kf_str_eq(req->target, "*") && kf_str_eq(req->method, "OPTIONS");
    if (req->target.ptr[0] != '/' && !asterisk_form)
        return fault(&s->status, 400);
    if (query_mark != 0) {
        req->path = (kf_str_t){s->buf + target_start, query_mark - target_start};
        req->query = (kf_str_t){s->buf + query_mark + 1, s->pos - query_mark - 1};
    } else {
        req->path = req->target;
        req->query = (kf_str_t){NULL, 0};
    }
    s->pos++;

    static const char version[] = "HTTP/d.d";
    int major = 0;
    int minor = 0;
    for (size_t i = 0; i < sizeof(version) - 1; i++) {
        rc = peek_line_byte(s, line_start, max_line, &c);
        if (rc != 0)
            return rc;
        if (version[i] == 'd') {
            if (c < '0' || c > '9')
                return fault(&s->status, 400);
            if (i == 5)
                major = c - '0';
            else
                minor = c - '0';
        } else if (c != (unsigned char)version[i]) {
            return fault(&s->status, 400);
        }
        s->pos++;
    }
    if (major != 1 || minor > 1)
        return fault(&s->status, 505);
    req->minor_version = minor;

    rc = peek_line_byte(s, line_start, max_line, &c);
    if (rc != 0)
        return rc;
    return eat_line_end(s);
}

static int parse_headers(scan_t *s, size_t max_headers, kf_http_request_t *req)
{
    for (;;) {
        int rc = need(s, s->pos);
        if (rc != 0)
            return rc;
        char first = s->buf[s->pos];
        if (first == '\r' || first == '\n')
            return eat_line_end(s);
        /* Leading whitespace is obsolete line folding (or a smuggling attempt): RFC 9112 5.2
         * lets a server reject it, and unfolding would break zero-copy views. */
        if (is_ows(first))
            return fault(&s->status, 400);
        if (req->num_headers >= max_headers)
            return fault(&s->status, 431);

        size_t name_start = s->pos;
        for (;;) {
            rc = need(s, s->pos);
            if (rc != 0)
                return rc;
            unsigned char c = (unsigned char)s->buf[s->pos];
            if (c == ':')
                break;
            /* This also refuses whitespace before the colon (RFC 9112 5.1). */
            if (!is_tchar(c))
                return fault(&s->status, 400);
            s->pos++;
        }
        if (s->pos == name_start)
            return fault(&s->status, 400);
        kf_http_header_t *header = &req->headers[req->num_headers];
        header->name = (kf_str_t){s->buf + name_start, s->pos - name_start};
        s->pos++;

        size_t value_start = 0;
        size_t value_end = 0;
        bool in_value = false;
        for (;;) {
            rc = need(s, s->pos);
            if (rc != 0)
                return rc;
            unsigned char c = (unsigned char)s->buf[s->pos];
            if (c == '\r' || c == '\n')
                break;
            if (!is_value_char(c))
                return fault(&s->status, 400);
            s->pos++;
            if (!is_ows((char)c)) {
                if (!in_value) {
                    value_start = s->pos - 1;
                    in_value = true;
                }
                value_end = s->pos;
            }
        }
        if (!in_value) {
            value_start = s->pos;
            value_end = s->pos;
        }
        header->value = (kf_str_t){s->buf + value_start, value_end - value_start};
        rc = eat_line_end(s);
        if (rc != 0)
            return rc;
        req->num_headers++;
    }
}

/* Reads the comma-separated tokens of one Connection header into the flags. */
static void scan_connection(kf_str_t value, bool *close, bool *keep_alive, bool *upgrade)
{
    size_t start = 0;
    while (start <= value.len) {
        size_t end = start;
        while (end < value.len && value.ptr[end] != ',')
            end++;
        kf_str_t token = kf_str_trim_ows((kf_str_t){value.ptr + start, end - start});
        if (kf_str_ieq(token, "close"))
            *close = true;
        else if (kf_str_ieq(token, "keep-alive"))
            *keep_alive = true;
        else if (kf_str_ieq(token, "upgrade"))
            *upgrade = true;
        start = end + 1;
    }
}

/* Fills the derived fields and refuses the framings we do not serve. Any ambiguity about where
 * the body ends is a 400, because two parsers disagreeing on it is request smuggling. */
static int derive(kf_http_request_t *req, int *status)
{
    bool has_transfer_encoding = false;
    bool only_chunked = true;
    bool close = false;
    bool keep_alive = false;

    for (size_t i = 0; i < req->num_headers; i++) {
        const kf_http_header_t *header = &req->headers[i];
        if (kf_str_ieq(header->name, "Content-Length")) {
            uint64_t length = 0;
            if (req->content_length >= 0)
                return fault(status, 400);
            if (kf_parse_u64(header->value, &length) != 0 || length > MAX_CONTENT_LENGTH)
                return fault(status, 400);
            req->content_length = (int64_t)length;
        } else if (kf_str_ieq(header->name, "Transfer-Encoding")) {
            has_transfer_encoding = true;
            if (!kf_str_ieq(header->value, "chunked"))
                only_chunked = false;
        } else if (kf_str_ieq(header->name, "Connection")) {
            scan_connection(header->value, &close, &keep_alive, &req->upgrade);
        }
    }
    if (has_transfer_encoding && req->content_length >= 0)
        return fault(status, 400);
    if (has_transfer_encoding)
        return fault(status, only_chunked ? 411 : 501);
    req->keep_alive = !close && (req->minor_version == 1 || keep_alive);
    return 0;
}

/* Re-scans from the start on every call, O(head) each time; heads are at most max_header_bytes,
 * and statelessness is worth it (no per-connection parser state, trivially fuzzable). */
int kf_http_parse_request(const char *buf, size_t len, const kf_http_limits_t *limits,
                          kf_http_request_t *req, int *status)
{
    kf_http_limits_t defaults;
    if (limits == NULL) {
        kf_http_limits_default(&defaults);
        limits = &defaults;
    }
    assert(buf != NULL || len == 0);

    req->method = (kf_str_t){NULL, 0};
    req->target = (kf_str_t){NULL, 0};
    req->path = (kf_str_t){NULL, 0};
    req->query = (kf_str_t){NULL, 0};
    req->minor_version = 0;
    req->num_headers = 0;
    req->content_length = -1;
    req->keep_alive = false;
    req->upgrade = false;

    /* The head length is returned as an int, so the limit can never let it overflow one. */
    scan_t s = {
        .buf = buf,
        .len = len,
        .limit = limits->max_header_bytes < INT_MAX ? limits->max_header_bytes : INT_MAX,
        .pos = 0,
        .status = 0,
    };
    size_t max_headers =
        limits->max_headers < KF_HTTP_MAX_HEADERS ? limits->max_headers : KF_HTTP_MAX_HEADERS;
    int rc = parse_request_line(&s, limits->max_request_line, req);
    if (rc == 0)
        rc = parse_headers(&s, max_headers, req);
    if (rc == 0)
        rc = derive(req, &s.status);
    if (status != NULL)
        *status = s.status;
    return rc == 0 ? (int)s.pos : rc;
}

const kf_str_t *kf_http_header_get(const kf_http_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        if (kf_str_ieq(req->headers[i].name, name))
            return &req->headers[i].value;
    }
    return NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the byte of s at *i ('+' and %XX included), leaving *i on its last source byte.
 * Returns the byte, or -1 on a malformed escape. */
static int decode_byte(kf_str_t s, size_t *i)
{
    char c = s.ptr[*i];
    if (c == '+')
        return ' ';
    if (c != '%')
        return (unsigned char)c;
    if (s.len - *i < 3)
        return -1;
    int high = hex_value(s.ptr[*i + 1]);
    int low = hex_value(s.ptr[*i + 2]);
    if (high < 0 || low < 0)
        return -1;
    *i += 2;
    return high * 16 + low;
}

/* A decoded NUL is refused: decoded values are used as C strings, where a NUL would silently cut
 * the value short (and "admin%00.png" style tricks rely on exactly that). */
int kf_http_url_decode(kf_str_t src, char *out, size_t out_size)
{
    assert(src.ptr != NULL || src.len == 0);
    if (out_size == 0)
        return KF_ETOOBIG;
    size_t n = 0;
    for (size_t i = 0; i < src.len; i++) {
        int c = decode_byte(src, &i);
        if (c <= 0) {
            out[0] = '\0';
            return KF_EINVAL;
        }
        if (n >= out_size - 1 || n >= (size_t)INT_MAX) {
            out[0] = '\0';
            return KF_ETOOBIG;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return (int)n;
}

/* True when key, percent-decoded, equals name, so that "a%62" finds "ab" as a browser meant. */
static bool decoded_key_equals(kf_str_t key, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; i < key.len; i++) {
        int c = decode_byte(key, &i);
        if (c <= 0 || name[j] == '\0' || (unsigned char)name[j] != c)
            return false;
        j++;
    }
    return name[j] == '\0';
}

int kf_http_query_get(kf_str_t query, const char *name, char *out, size_t out_size)
{
    if (out_size > 0)
        out[0] = '\0';
    size_t start = 0;
    while (start < query.len) {
        size_t end = start;
        while (end < query.len && query.ptr[end] != '&')
            end++;
        kf_str_t param = {query.ptr + start, end - start};
        if (param.len > 0) {
            const char *equals = memchr(param.ptr, '=', param.len);
            size_t key_len = equals != NULL ? (size_t)(equals - param.ptr) : param.len;
            if (decoded_key_equals((kf_str_t){param.ptr, key_len}, name)) {
                kf_str_t value = {param.ptr + key_len, 0};
                if (equals != NULL) {
                    value.ptr = equals + 1;
                    value.len = param.len - key_len - 1;
                }
                return kf_http_url_decode(value, out, out_size);
            }
        }
        start = end + 1;
    }
    return KF_ENOTFOUND;
}

int kf_http_cookie_get(kf_str_t header_value, const char *name, kf_str_t *value)
{
    *value = (kf_str_t){NULL, 0};
    size_t start = 0;
    while (start < header_value.len) {
        size_t end = start;
        while (end < header_value.len && header_value.ptr[end] != ';')
            end++;
        kf_str_t pair = {header_value.ptr + start, end - start};
        const char *equals = memchr(pair.ptr, '=', pair.len);
        /* A pair without '=' has no name we could be asked for; skip it. */
        if (equals != NULL) {
            size_t name_len = (size_t)(equals - pair.ptr);
            kf_str_t key = kf_str_trim_ows((kf_str_t){pair.ptr, name_len});
            if (kf_str_eq(key, name)) {
                kf_str_t found = kf_str_trim_ows((kf_str_t){equals + 1, pair.len - name_len - 1});
                if (found.len >= 2 && found.ptr[0] == '"' && found.ptr[found.len - 1] == '"') {
                    found.ptr++;
                    found.len -= 2;
                }
                *value = found;
                return 0;
            }
        }
        start = end + 1;
    }
    return KF_ENOTFOUND;
}
