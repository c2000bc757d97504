/* http.c: the load tools' HTTP client: loopback targets, response heads, chunked bodies, writes
 * and the keep-alive request pool. */
#include "load/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Connection failures before a pool gives up on what is queued. */
#define MAX_POOL_FAILURES 50
#define READ_CHUNK 65536

/* ---- targets and numbers ---- */

int load_target_parse(const char *url, load_target_t *out)
{
    static const char scheme[] = "http://";
    memset(out, 0, sizeof *out);
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        return -1;
    const char *host = url + sizeof scheme - 1;
    const char *slash = strchr(host, '/');
    size_t authority_len = slash != NULL ? (size_t)(slash - host) : strlen(host);
    if (authority_len == 0 || authority_len >= sizeof out->host)
        return -1;
    memcpy(out->host, host, authority_len);
    out->host[authority_len] = '\0';
    snprintf(out->path, sizeof out->path, "%s", slash != NULL ? slash : "/");
    char name[128];
    snprintf(name, sizeof name, "%s", out->host);
    int port = 80;
    char *colon = strchr(name, ':');
    if (colon != NULL) {
        char *end;
        long value = strtol(colon + 1, &end, 10);
        if (*end != '\0' || end == colon + 1 || value < 1 || value > 65535)
            return -1;
        port = (int)value;
        *colon = '\0';
    }
    if (strcmp(name, "localhost") == 0)
        snprintf(name, sizeof name, "127.0.0.1");
    if (uv_ip4_addr(name, port, &out->addr) != 0)
        return -1;
    /* Load goes to this machine's loopback only. */
    if ((ntohl(out->addr.sin_addr.s_addr) >> 24) != 127)
        return -2;
    return 0;
}

int load_source_parse(const char *value, uint32_t *first_out, uint32_t *count_out)
{
    if (strcmp(value, "none") == 0) {
        *first_out = 0;
        *count_out = 0;
        return 0;
    }
    char first[64], last[64];
    const char *dash = strchr(value, '-');
    size_t first_len = dash != NULL ? (size_t)(dash - value) : strlen(value);
    if (first_len >= sizeof first)
        return -1;
    memcpy(first, value, first_len);
    first[first_len] = '\0';
    snprintf(last, sizeof last, "%s", dash != NULL ? dash + 1 : value);
    struct in_addr a, b;
    if (inet_pton(AF_INET, first, &a) != 1 || inet_pton(AF_INET, last, &b) != 1)
        return -1;
    uint32_t lo = ntohl(a.s_addr), hi = ntohl(b.s_addr);
    if (lo > hi || (lo >> 24) != 127 || (hi >> 24) != 127)
        return -1;
    *first_out = lo;
    *count_out = hi - lo + 1;
    return 0;
}

bool load_parse_unsigned(const char *value, unsigned long max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(value, &end, 10);
    if (errno != 0 || *end != '\0' || end == value || value[0] == '-' || n > max)
        return false;
    *out = (unsigned)n;
    return true;
}

/* ---- response heads ---- */

/* True when the header line [line, end) is "name: ..." (case-insensitive); sets *value. */
static bool header_is(const char *line, const char *end, const char *name, kf_str_t *value)
{
    size_t name_len = strlen(name);
    if ((size_t)(end - line) <= name_len || line[name_len] != ':' ||
        strncasecmp(line, name, name_len) != 0)
        return false;
    const char *v = line + name_len + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    const char *v_end = end;
    while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t' || v_end[-1] == '\r'))
        v_end--;
    *value = (kf_str_t){v, (size_t)(v_end - v)};
    return true;
}

static bool str_contains_ci(kf_str_t s, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= s.len; i++) {
        if (strncasecmp(s.ptr + i, needle, n) == 0)
            return true;
    }
    return false;
}

size_t load_head_end(const char *buf, size_t len, size_t from)
{
    for (size_t i = from; i + 4 <= len; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
            return i + 4;
    }
    return 0;
}

int load_resp_head_parse(const char *buf, size_t head_len, load_resp_head_t *out)
{
    out->status = 0;
    out->content_length = -1;
    out->chunked = false;
    out->close = false;
    if (head_len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        out->status = out->status * 10 + (buf[i] - '0');
    }
    if (buf[7] == '0')
        out->close = true;
    const char *end = buf + head_len;
    const char *line = memchr(buf, '\n', head_len);
    while (line != NULL && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            break;
        kf_str_t value;
        if (header_is(line, eol, "Content-Length", &value)) {
            out->content_length = strtoll(value.ptr, NULL, 10);
        } else if (header_is(line, eol, "Transfer-Encoding", &value)) {
            out->chunked = str_contains_ci(value, "chunked");
        } else if (header_is(line, eol, "Connection", &value)) {
            if (str_contains_ci(value, "close"))
                out->close = true;
            else if (str_contains_ci(value, "keep-alive"))
                out->close = false;
        }
        line = eol;
    }
    return 0;
}

bool load_head_find(const char *head, size_t head_len, const char *name, kf_str_t *value)
{
    const char *end = head + head_len;
    const char *line = memchr(head, '\n', head_len);
    while (line != NULL && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            return false;
        if (header_is(line, eol, name, value))
            return true;
        line = eol;
    }
    return false;
}

int load_dechunk(char *buf, size_t len, size_t *consumed, size_t *decoded)
{
    /* First pass: is it all there? Second pass: move the data together. */
    for (int pass = 0; pass < 2; pass++) {
        size_t pos = 0, out = 0;
        for (;;) {
            const char *eol = memchr(buf + pos, '\n', len - pos);
            if (eol == NULL)
                return 0;
            char *hex_end;
            unsigned long long size = strtoull(buf + pos, &hex_end, 16);
            if (hex_end == buf + pos)
                return -1;
            pos = (size_t)(eol - buf) + 1;
            if (size == 0) {
                /* Trailers, then an empty line. */
                for (;;) {
                    const char *line_end = memchr(buf + pos, '\n', len - pos);
                    if (line_end == NULL)
                        return 0;
                    bool empty =
                        line_end == buf + pos || (line_end == buf + pos + 1 && buf[pos] == '\r');
                    pos = (size_t)(line_end - buf) + 1;
                    if (empty)
                        break;
                }
                if (pass == 1) {
                    *consumed = pos;
                    *decoded = out;
                }
                break;
            }
            if (size > len || len - pos < size + 2)
                return 0;
            if (pass == 1)
                memmove(buf + out, buf + pos, (size_t)size);
            out += (size_t)size;
            pos += (size_t)size;
            if (buf[pos] == '\r')
                pos++;
            if (buf[pos] != '\n')
                return -1;
            pos++;
        }
    }
    return 1;
}

void load_build_post(kf_buf_t *out, const load_target_t *target, const char *path,
                     const char *extra, const char *content_type, const char *body)
{
    kf_buf_printf(
        out, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n%s",
        path, target->host, content_type, strlen(body), extra, body);
}

void load_build_get(kf_buf_t *out, const load_target_t *target, const char *path, const char *extra)
{
    kf_buf_printf(out, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, target->host, extra);
}

/* ---- writes and reads ---- */

typedef struct write_req {
    uv_write_t req;
    char *data; /* owned; freed when written */
} write_req_t;

static void write_done_cb(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as a failed read */
    write_req_t *w = (write_req_t *)req;
    free(w->data);
    free(w);
}

int load_write_owned(uv_stream_t *stream, char *data, size_t len)
{
    write_req_t *w = kf_xmalloc(sizeof *w);
    w->data = data;
    uv_buf_t buf = uv_buf_init(data, (unsigned)len);
    int rc = uv_write(&w->req, stream, &buf, 1, write_done_cb);
    if (rc != 0) {
        free(data);
        free(w);
    }
    return rc;
}

int load_write_copy(uv_stream_t *stream, const void *data, size_t len)
{
    char *copy = kf_xmalloc(len > 0 ? len : 1);
    memcpy(copy, data, len);
    return load_write_owned(stream, copy, len);
}

static char read_chunk[READ_CHUNK];

void load_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init(read_chunk, sizeof read_chunk);
}

/* ---- the request pool ---- */

struct load_req {
    load_req_t *next;
    char *text; /* the request bytes until written (owned) */
    size_t len;
    load_done_fn done;
    void *ctx;
    uint64_t tag;
};

static void pool_pump(load_pool_t *pool);

void load_pool_init(load_pool_t *pool, uv_loop_t *loop, const load_target_t *target, size_t count,
                    size_t depth)
{
    memset(pool, 0, sizeof *pool);
    pool->loop = loop;
    pool->target = target;
    pool->count = count;
    pool->depth = depth;
    pool->conns = kf_xcalloc(count, sizeof *pool->conns);
    for (size_t i = 0; i < count; i++) {
        pool->conns[i].pool = pool;
        pool->conns[i].state = LOAD_CONN_CLOSED;
        kf_buf_init(&pool->conns[i].rbuf);
    }
}

void load_pool_submit(load_pool_t *pool, char *text, size_t len, load_done_fn done, void *ctx,
                      uint64_t tag)
{
    if (pool->stopped) {
        /* Only callbacks run by load_pool_stop get here; what they resubmit is dropped. */
        free(text);
        return;
    }
    load_req_t *req = kf_xcalloc(1, sizeof *req);
    req->text = text;
    req->len = len;
    req->done = done;
    req->ctx = ctx;
    req->tag = tag;
    if (pool->queue_tail != NULL)
        pool->queue_tail->next = req;
    else
        pool->queue_head = req;
    pool->queue_tail = req;
    pool->queued++;
    pool_pump(pool);
}

static void req_fail(load_req_t *req)
{
    req->done(req->ctx, req->tag, 0, "", 0, "", 0);
    free(req->text);
    free(req);
}

static void conn_close_cb(uv_handle_t *handle)
{
    load_conn_t *conn = handle->data;
    conn->state = LOAD_CONN_CLOSED;
    kf_buf_free(&conn->rbuf);
    pool_pump(conn->pool);
}

/* Closes the connection; its unanswered requests fail (their callbacks may resubmit). */
static void conn_fail(load_conn_t *conn, bool counts)
{
    if (conn->state == LOAD_CONN_CLOSED || conn->state == LOAD_CONN_CLOSING)
        return;
    load_pool_t *pool = conn->pool;
    if (counts)
        pool->failures++;
    conn->state = LOAD_CONN_CLOSING;
    uv_close((uv_handle_t *)&conn->tcp, conn_close_cb);
    load_req_t *req = conn->head;
    conn->head = conn->tail = NULL;
    pool->inflight -= conn->inflight;
    conn->inflight = 0;
    while (req != NULL) {
        load_req_t *next = req->next;
        req_fail(req);
        req = next;
    }
}

/* Hands complete answers to their requests, in order. */
static void conn_parse(load_conn_t *conn)
{
    load_pool_t *pool = conn->pool;
    while (conn->state == LOAD_CONN_OPEN && conn->head != NULL && conn->rbuf.len > 0) {
        size_t head_len = load_head_end(conn->rbuf.data, conn->rbuf.len, 0);
        if (head_len == 0) {
            if (conn->rbuf.len > LOAD_MAX_HEAD)
                conn_fail(conn, true);
            return;
        }
        load_resp_head_t head;
        if (load_resp_head_parse(conn->rbuf.data, head_len, &head) != 0) {
            conn_fail(conn, true);
            return;
        }
        char *body = conn->rbuf.data + head_len;
        size_t available = conn->rbuf.len - head_len;
        size_t body_len, total;
        if (head.chunked) {
            size_t consumed = 0;
            int rc = load_dechunk(body, available, &consumed, &body_len);
            if (rc == 0)
                return;
            if (rc < 0) {
                conn_fail(conn, true);
                return;
            }
            total = head_len + consumed;
        } else {
            body_len = head.content_length > 0 ? (size_t)head.content_length : 0;
            if (available < body_len)
                return;
            total = head_len + body_len;
        }
        load_req_t *req = conn->head;
        conn->head = req->next;
        if (conn->head == NULL)
            conn->tail = NULL;
        conn->inflight--;
        pool->inflight--;
        req->done(req->ctx, req->tag, head.status, conn->rbuf.data, head_len, body, body_len);
        free(req);
        if (conn->state != LOAD_CONN_OPEN)
            return;
        kf_buf_consume(&conn->rbuf, total);
        if (head.close) {
            conn_fail(conn, false);
            return;
        }
    }
    if (conn->state == LOAD_CONN_OPEN)
        pool_pump(pool);
}

static void conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    load_conn_t *conn = stream->data;
    if (nread < 0) {
        /* An idle keep-alive connection closed by the server is no failure. */
        conn_fail(conn, conn->inflight > 0);
        return;
    }
    if (nread == 0)
        return;
    kf_buf_append(&conn->rbuf, buf->base, (size_t)nread);
    conn_parse(conn);
}

static void conn_connect_cb(uv_connect_t *req, int status)
{
    load_conn_t *conn = req->handle->data;
    free(req);
    if (conn->state != LOAD_CONN_CONNECTING)
        return;
    if (status != 0) {
        conn->pool->last_error = uv_strerror(status);
        conn_fail(conn, true);
        return;
    }
    conn->state = LOAD_CONN_OPEN;
    uv_tcp_nodelay(&conn->tcp, 1);
    if (uv_read_start((uv_stream_t *)&conn->tcp, load_alloc_cb, conn_read_cb) != 0) {
        conn_fail(conn, true);
        return;
    }
    pool_pump(conn->pool);
}

static void conn_open(load_conn_t *conn)
{
    load_pool_t *pool = conn->pool;
    uv_tcp_init(pool->loop, &conn->tcp);
    conn->tcp.data = conn;
    conn->state = LOAD_CONN_CONNECTING;
    kf_buf_init(&conn->rbuf);
    uv_connect_t *req = kf_xmalloc(sizeof *req);
    int rc = uv_tcp_connect(req, &conn->tcp, (const struct sockaddr *)&pool->target->addr,
                            conn_connect_cb);
    if (rc != 0) {
        free(req);
        conn_fail(conn, true);
    }
}

/* Takes the first queued request off the queue. */
static load_req_t *queue_take(load_pool_t *pool)
{
    load_req_t *req = pool->queue_head;
    pool->queue_head = req->next;
    if (pool->queue_head == NULL)
        pool->queue_tail = NULL;
    pool->queued--;
    req->next = NULL;
    return req;
}

/* Moves queued requests onto open connections with room; opens connections when work waits. */
static void pool_pump(load_pool_t *pool)
{
    if (pool->stopped || pool->queue_head == NULL)
        return;
    if (pool->failures > MAX_POOL_FAILURES) {
        /* The server is not answering: give up on everything queued. */
        while (pool->queue_head != NULL)
            req_fail(queue_take(pool));
        return;
    }
    for (size_t i = 0; i < pool->count; i++) {
        if (pool->conns[i].state == LOAD_CONN_CLOSED)
            conn_open(&pool->conns[i]);
    }
    while (pool->queue_head != NULL) {
        load_conn_t *best = NULL;
        for (size_t i = 0; i < pool->count; i++) {
            load_conn_t *conn = &pool->conns[i];
            if (conn->state == LOAD_CONN_OPEN && conn->inflight < pool->depth &&
                (best == NULL || conn->inflight < best->inflight))
                best = conn;
        }
        if (best == NULL)
            return;
        load_req_t *req = queue_take(pool);
        if (best->tail != NULL)
            best->tail->next = req;
        else
            best->head = req;
        best->tail = req;
        best->inflight++;
        pool->inflight++;
        char *text = req->text;
        req->text = NULL;
        if (load_write_owned((uv_stream_t *)&best->tcp, text, req->len) != 0)
            conn_fail(best, true);
    }
}

void load_pool_stop(load_pool_t *pool)
{
    pool->stopped = true;
    while (pool->queue_head != NULL)
        req_fail(queue_take(pool));
    for (size_t i = 0; i < pool->count; i++)
        conn_fail(&pool->conns[i], false);
}

void load_pool_free(load_pool_t *pool)
{
    free(pool->conns);
    pool->conns = NULL;
}
