/* parser.c: the HTTP/1.x request-head parser (request line, fields, framing, Host) and the
 * list, query-string and cookie helpers. */
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

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 3986 unreserved and sub-delims: what a reg-name holds besides percent-escapes, and (with
 * ':') what an IP-literal holds. */
static bool is_host_char(unsigned char c)
{
    static const char others[] = "-._~!$&'()*+,;=";
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit((char)c))
        return true;
    return memchr(others, c, sizeof(others) - 1) != NULL;
}

/* True when text is uri-host [":" port] (RFC 9110 §7.2, RFC 3986 §3.2.2): an IP-literal in
 * brackets or a reg-name (an IPv4 address is one), then an optional port of digits. Userinfo
 * ('@'), a path ('/'), whitespace and a list of hosts (", ") are not; an empty text is the
 * empty host. */
static bool is_authority(kf_str_t text)
{
    size_t i = 0;
    if (text.len > 0 && text.ptr[0] == '[') {
        for (i = 1; i < text.len && text.ptr[i] != ']'; i++) {
            if (!is_host_char((unsigned char)text.ptr[i]) && text.ptr[i] != ':')
                return false;
        }
        if (i == text.len || i == 1)
            return false;
        i++;
    } else {
        while (i < text.len && text.ptr[i] != ':') {
            if (text.ptr[i] == '%') {
                if (text.len - i < 3 || kf_hex_digit(text.ptr[i + 1]) < 0 ||
                    kf_hex_digit(text.ptr[i + 2]) < 0)
                    return false;
                i += 3;
                continue;
            }
            if (!is_host_char((unsigned char)text.ptr[i]))
                return false;
            i++;
        }
    }
    if (i == text.len)
        return true;
    if (text.ptr[i] != ':')
        return false;
    for (i++; i < text.len; i++) {
        if (!is_digit(text.ptr[i]))
            return false;
    }
    return true;
}

/* Takes the next element of the comma-separated list *rest (RFC 9110 §5.6.1) into *element, OWS
 * trimmed, and advances *rest past it; empty elements are skipped. False when none is left. */
static bool list_next(kf_str_t *rest, kf_str_t *element)
{
    while (rest->len > 0) {
        const char *comma = memchr(rest->ptr, ',', rest->len);
        size_t len = comma != NULL ? (size_t)(comma - rest->ptr) : rest->len;
        *element = kf_str_trim_ows((kf_str_t){rest->ptr, len});
        size_t used = comma != NULL ? len + 1 : len;
        rest->ptr += used;
        rest->len -= used;
        if (element->len > 0)
            return true;
    }
    return false;
}

bool kf_http_list_has(kf_str_t value, const char *token)
{
    kf_str_t element;
    while (list_next(&value, &element)) {
        if (kf_str_ieq(element, token))
            return true;
    }
    return false;
}

/* The head is scanned strictly left to right and every verdict depends only on the bytes before
 * it, so a prefix of any input yields either KF_EAGAIN or the same result as the whole. */
typedef struct scan {
    const char *buf;       /* the caller's bytes */
    size_t len;            /* how many of them have arrived */
    size_t limit;          /* the head must end at or before this offset (max_header_bytes) */
    size_t pos;            /* offset of the next byte to examine */
    kf_http_fault_t fault; /* what was found wrong, once something is */
} scan_t;

/* Records the HTTP status a fault maps to, and why, and returns its code: KF_ETOOBIG for what is
 * over a limit (414, 431), KF_EPROTO for the rest. */
static int fault(scan_t *s, int http_status, const char *reason)
{
    s->fault = (kf_http_fault_t){http_status, reason};
    return http_status == 414 || http_status == 431 ? KF_ETOOBIG : KF_EPROTO;
}

static const char MALFORMED[] = "malformed HTTP request";

/* Returns 0 when the byte at offset at may be read, else the code to hand back: 431 as soon
 * as the head can no longer fit, even before that byte arrives, since no later byte can help. */
static int need(scan_t *s, size_t at)
{
    if (at >= s->limit)
        return fault(s, 431, "the request headers are too large");
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
        return fault(s, 400, MALFORMED);
    rc = need(s, s->pos + 1);
    if (rc != 0)
        return rc;
    if (s->buf[s->pos + 1] != '\n')
        return fault(s, 400, "a CR not followed by LF");
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
        return fault(s, 414, "the request line is too long");
    return 0;
}

/* The length of an "http://" or "https://" prefix of target (the scheme in any case), else 0. */
static size_t http_scheme_length(kf_str_t target)
{
    static const char *const prefixes[] = {"http://", "https://"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = strlen(prefixes[i]);
        if (target.len >= n && kf_str_ieq((kf_str_t){target.ptr, n}, prefixes[i]))
            return n;
    }
    return 0;
}

/* Splits req->target into path and query (query_mark: its first '?', or NULL) by its form
 * (RFC 9112 §3.2): origin-form, asterisk-form for OPTIONS, or absolute-form, whose authority
 * becomes req->host. We are never a proxy, so the absolute-form is accepted for http and https
 * only, and the authority-form (CONNECT's) not at all. */
static int split_target(scan_t *s, kf_http_request_t *req, const char *query_mark)
{
    kf_str_t target = req->target;
    const char *end = target.ptr + target.len;
    const char *path = target.ptr;
    if (kf_str_eq(target, "*")) {
        if (!kf_str_eq(req->method, "OPTIONS"))
            return fault(s, 400, "the target \"*\" is for OPTIONS only");
    } else if (target.ptr[0] != '/') {
        size_t scheme_len = http_scheme_length(target);
        if (scheme_len == 0)
            return fault(s, 400, "the target is neither a path nor an http(s) URI");
        const char *authority = target.ptr + scheme_len;
        path = authority;
        while (path < end && *path != '/' && *path != '?')
            path++;
        kf_str_t host = {authority, (size_t)(path - authority)};
        /* RFC 9110 §4.2.1: an http URI with an empty host MUST be rejected; §4.2.4: userinfo
         * SHOULD be treated as an error (it is how phishing links look). */
        if (host.len == 0 || host.ptr[0] == ':' || !is_authority(host))
            return fault(s, 400, "the target's authority is not a host and port");
        req->host = host;
    }
    const char *path_end = query_mark != NULL ? query_mark : end;
    req->path = path < path_end ? (kf_str_t){path, (size_t)(path_end - path)} : KF_STR_LIT("/");
    req->query = query_mark != NULL ? (kf_str_t){query_mark + 1, (size_t)(end - query_mark - 1)}
                                    : (kf_str_t){NULL, 0};
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
            return fault(s, 400, MALFORMED);
        s->pos++;
    }
    req->method = (kf_str_t){s->buf + line_start, s->pos - line_start};
    if (req->method.len == 0)
        return fault(s, 400, MALFORMED);
    s->pos++;

    size_t target_start = s->pos;
    const char *query_mark = NULL; /* the first '?' */
    for (;;) {
        rc = peek_line_byte(s, line_start, max_line, &c);
        if (rc != 0)
            return rc;
        if (c == ' ')
            break;
        if (!is_target_char(c))
            return fault(s, 400, MALFORMED);
        if (c == '?' && query_mark == NULL)
            query_mark = s->buf + s->pos;
        s->pos++;
    }
    req->target = (kf_str_t){s->buf + target_start, s->pos - target_start};
    if (req->target.len == 0)
        return fault(s, 400, MALFORMED);
    rc = split_target(s, req, query_mark);
    if (rc != 0)
        return rc;
    s->pos++;

    static const char version[] = "HTTP/d.d";
    int major = 0;
    int minor = 0;
    for (size_t i = 0; i < sizeof(version) - 1; i++) {
        rc = peek_line_byte(s, line_start, max_line, &c);
        if (rc != 0)
            return rc;
        if (version[i] == 'd') {
            if (!is_digit((char)c))
                return fault(s, 400, MALFORMED);
            if (i == 5)
                major = c - '0';
            else
                minor = c - '0';
        } else if (c != (unsigned char)version[i]) {
            return fault(s, 400, MALFORMED);
        }
        s->pos++;
    }
    if (major != 1)
        return fault(s, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
    /* RFC 9110 §2.5: a later HTTP/1.x is served as the highest we implement. */
    req->minor_version = minor > 1 ? 1 : minor;

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
            return fault(s, 400, "obsolete line folding");
        if (req->num_headers >= max_headers)
            return fault(s, 431, "too many header fields");

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
                return fault(s, 400, "a header name that is not a token");
            s->pos++;
        }
        if (s->pos == name_start)
            return fault(s, 400, "an empty header name");
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
                return fault(s, 400, "a control character in a header value");
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

/* Reads the tokens of one Connection header into the flags. */
static void scan_connection(kf_str_t value, bool *close, bool *keep_alive, bool *upgrade)
{
    kf_str_t token;
    while (list_next(&value, &token)) {
        if (kf_str_ieq(token, "close"))
            *close = true;
        else if (kf_str_ieq(token, "keep-alive"))
            *keep_alive = true;
        else if (kf_str_ieq(token, "upgrade"))
            *upgrade = true;
    }
}

/* The transfer codings of a request, over all its Transfer-Encoding fields, in order. */
typedef struct codings {
    bool present;      /* a Transfer-Encoding field was seen */
    int chunked;       /* how many times chunked is listed */
    bool other;        /* a coding other than chunked is listed */
    bool chunked_last; /* the last coding listed is chunked */
} codings_t;

static void scan_codings(kf_str_t value, codings_t *codings)
{
    kf_str_t coding;
    codings->present = true;
    while (list_next(&value, &coding)) {
        codings->chunked_last = kf_str_ieq(coding, "chunked");
        if (codings->chunked_last)
            codings->chunked++;
        else
            codings->other = true;
    }
}

/* The verdict on a request with Transfer-Encoding: we take Content-Length bodies only, so every
 * one is refused, with the status the RFC gives its case. */
static int refuse_codings(scan_t *s, const codings_t *codings)
{
    /* RFC 9112 §6.3 (4): the body's length cannot be known when chunked is not last. */
    if (!codings->chunked_last)
        return fault(s, 400, "the last transfer coding is not chunked");
    /* RFC 9112 §6.1: chunked MUST NOT be applied more than once. */
    if (codings->chunked > 1)
        return fault(s, 400, "the chunked transfer coding is applied twice");
    /* RFC 9112 §6.1: a coding the server does not understand SHOULD get 501. */
    if (codings->other)
        return fault(s, 501, "unsupported Transfer-Encoding");
    return fault(s, 411, "chunked request bodies are not accepted; send Content-Length");
}

/* Fills the derived fields and refuses the framings we do not serve. Any ambiguity about where
 * the body ends is a 400, because two parsers disagreeing on it is request smuggling; so is any
 * doubt about the host the request is for (RFC 9112 §3.2). */
static int derive(scan_t *s, kf_http_request_t *req)
{
    codings_t codings = {0};
    const kf_str_t *host = NULL;
    bool close = false;
    bool keep_alive = false;
    bool upgrade = false;

    for (size_t i = 0; i < req->num_headers; i++) {
        const kf_http_header_t *header = &req->headers[i];
        if (kf_str_ieq(header->name, "Content-Length")) {
            uint64_t length = 0;
            if (req->content_length >= 0)
                return fault(s, 400, "more than one Content-Length");
            if (kf_parse_u64(header->value, &length) != 0 || length > MAX_CONTENT_LENGTH)
                return fault(s, 400, "an invalid Content-Length");
            req->content_length = (int64_t)length;
        } else if (kf_str_ieq(header->name, "Transfer-Encoding")) {
            scan_codings(header->value, &codings);
        } else if (kf_str_ieq(header->name, "Connection")) {
            scan_connection(header->value, &close, &keep_alive, &upgrade);
        } else if (kf_str_ieq(header->name, "Host")) {
            if (host != NULL)
                return fault(s, 400, "more than one Host header");
            if (!is_authority(header->value))
                return fault(s, 400, "the Host header is not a host and port");
            host = &header->value;
        }
    }
    if (codings.present && req->content_length >= 0)
        return fault(s, 400, "Transfer-Encoding with Content-Length");
    if (codings.present)
        return refuse_codings(s, &codings);
    if (host == NULL && req->minor_version == 1)
        return fault(s, 400, "an HTTP/1.1 request needs a Host header");
    if (req->host.ptr == NULL && host != NULL)
        req->host = *host; /* the absolute-form's authority, if any, wins */
    req->keep_alive = !close && (req->minor_version == 1 || keep_alive);
    req->upgrade = upgrade && req->minor_version == 1;
    return 0;
}

/* Re-scans from the start on every call, O(head) each time; heads are at most max_header_bytes,
 * and statelessness is worth it (no per-connection parser state, trivially fuzzable). */
int kf_http_parse_request(const char *buf, size_t len, const kf_http_limits_t *limits,
                          kf_http_request_t *req, kf_http_fault_t *fault_out)
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
    req->host = (kf_str_t){NULL, 0};
    req->content_length = -1;
    req->keep_alive = false;
    req->upgrade = false;

    /* The head length is returned as an int, so the limit can never let it overflow one. */
    scan_t s = {
        .buf = buf,
        .len = len,
        .limit = limits->max_header_bytes < INT_MAX ? limits->max_header_bytes : INT_MAX,
        .pos = 0,
        .fault = {0, NULL},
    };
    size_t max_headers =
        limits->max_headers < KF_HTTP_MAX_HEADERS ? limits->max_headers : KF_HTTP_MAX_HEADERS;
    int rc = parse_request_line(&s, limits->max_request_line, req);
    if (rc == 0)
        rc = parse_headers(&s, max_headers, req);
    if (rc == 0)
        rc = derive(&s, req);
    if (fault_out != NULL)
        *fault_out = s.fault;
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
    int high = kf_hex_digit(s.ptr[*i + 1]);
    int low = kf_hex_digit(s.ptr[*i + 2]);
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
