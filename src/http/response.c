/* response.c: what goes out on a connection: the response head, whole, held, streamed and
 * upgraded responses, raw writes on an upgraded connection, and the output queue they share. */
#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/metrics.h"
#include "http/server_int.h"

typedef struct write_req {
    uv_write_t req;
    kf_conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

/* ---- the output queue ---- */

static void write_cb(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    kf_conn_t *conn = w->conn;
    free(w);
    /* A failed write shows up as a read error or EOF, which closes the connection; a cancelled
     * one (the handle closing) needs nothing either. */
    if (status == 0)
        conn_output_drained(conn);
}

/* Writes bufs in order. Most often the socket takes them at once (uv_try_write: one writev, no
 * request, no copy, and no epoll_ctl, which each completed uv_write costs libuv); what it does not
 * take is copied into a write request that libuv sends when the socket is writable. Returns 0, or
 * KF_EIO when the connection is closing or libuv refused the request (the caller closes it). */
static int conn_writev_now(kf_conn_t *conn, const uv_buf_t *bufs, unsigned nbufs)
{
    if (conn_is_closing(conn))
        return KF_EIO;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    uv_stream_t *stream = (uv_stream_t *)&conn->tcp;
    size_t skip = 0;
    /* UV_EAGAIN while earlier writes are queued. Any other error (the peer is gone) is left to
     * the queued write below to meet, so that it surfaces as before — asynchronously — and no
     * caller sees its request aborted from inside a write. */
    int n = uv_try_write(stream, bufs, nbufs);
    if (n >= 0 && (size_t)n == total)
        return 0;
    if (n > 0)
        skip = (size_t)n;
    write_req_t *w = kf_xmalloc(sizeof *w + (total - skip));
    w->conn = conn;
    w->len = total - skip;
    size_t at = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = bufs[i].len;
        const char *base = bufs[i].base;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(w->data + at, base + skip, len - skip);
        at += len - skip;
        skip = 0;
    }
    uv_buf_t rest = uv_buf_init(w->data, (unsigned)w->len);
    if (uv_write(&w->req, stream, &rest, 1, write_cb) != 0) {
        free(w);
        return KF_EIO; /* the caller closes the connection */
    }
    return 0;
}

#define MAX_WRITE_BUFS 8

/* conn_writev_now, with a head the handler deferred (write_head) going first, in the same write. */
static int conn_writev(kf_conn_t *conn, const uv_buf_t *bufs, unsigned nbufs)
{
    if (conn_is_closing(conn) || conn->deferred.len == 0)
        return conn_writev_now(conn, bufs, nbufs);
    uv_buf_t all[MAX_WRITE_BUFS];
    assert(nbufs < MAX_WRITE_BUFS);
    all[0] = uv_buf_init(conn->deferred.data, (unsigned)conn->deferred.len);
    for (unsigned i = 0; i < nbufs; i++)
        all[i + 1] = bufs[i];
    int rc = conn_writev_now(conn, all, nbufs + 1);
    kf_buf_free(&conn->deferred);
    return rc;
}

void conn_flush_deferred(kf_conn_t *conn)
{
    if (conn->deferred.len > 0 && conn_writev(conn, NULL, 0) != 0)
        conn_close(conn);
}

void conn_write(kf_conn_t *conn, const void *data, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    if (conn_writev(conn, &buf, 1) != 0)
        conn_close(conn);
}

size_t conn_queued(const kf_conn_t *conn)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&conn->tcp);
}

size_t kf_req_output_queued(const kf_req_t *req)
{
    return conn_queued(req_conn(req));
}

const char *kf_req_peer(const kf_req_t *req)
{
    const kf_conn_t *conn = req_conn(req);
    return conn->forwarded != NULL ? conn->forwarded : conn->peer;
}

void kf_req_peer_key(const kf_req_t *req, char out[KF_PEER_SIZE])
{
    kf_conn_t *conn = req_conn(req);
    if (conn->forwarded != NULL) {
        struct sockaddr_storage client = {0};
        struct sockaddr_in *in4 = (struct sockaddr_in *)&client;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&client;
        if (inet_pton(AF_INET, conn->forwarded, &in4->sin_addr) == 1)
            client.ss_family = AF_INET;
        else if (inet_pton(AF_INET6, conn->forwarded, &in6->sin6_addr) == 1)
            client.ss_family = AF_INET6;
        if (!admit_peer_key(&client, out, KF_PEER_SIZE))
            snprintf(out, KF_PEER_SIZE, "%s", conn->forwarded);
        return;
    }
    struct sockaddr_storage addr;
    int addr_len = sizeof addr;
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&addr, &addr_len) != 0 ||
        !admit_peer_key(&addr, out, KF_PEER_SIZE))
        snprintf(out, KF_PEER_SIZE, "%s", conn->peer); /* gone: its address as it came */
}

/* ---- the head ---- */

static const char *status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void resp_reset(resp_t *resp, int minor_version, bool head_only)
{
    kf_buf_reset(&resp->headers);
    resp->status = 0;
    resp->minor_version = minor_version;
    resp->head_only = head_only;
    resp->abort_cb = NULL;
    resp->abort_data = NULL;
    resp->end_cb = NULL;
    resp->end_data = NULL;
    resp->end_on_eof = false;
}

int kf_resp_header(kf_req_t *req, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
        return KF_EINVAL;
    kf_buf_t *h = &req_conn(req)->resp.headers;
    kf_buf_append_str(h, name);
    kf_buf_append(h, ": ", 2);
    kf_buf_append_str(h, value);
    kf_buf_append(h, "\r\n", 2);
    return 0;
}

typedef enum { BODY_LENGTH, BODY_CHUNKED, BODY_NONE } body_mode_t;

/* Whether a handler added the header (kf_resp_header: "Name: value\r\n" lines). */
static bool has_header(const kf_buf_t *headers, const char *name)
{
    size_t len = strlen(name);
    for (size_t at = 0; at + len < headers->len;) {
        const char *line = headers->data + at;
        if (strncasecmp(line, name, len) == 0 && line[len] == ':')
            return true;
        const char *end = memchr(line, '\n', headers->len - at);
        if (end == NULL)
            break;
        at = (size_t)(end - headers->data) + 1;
    }
    return false;
}

/* Writes the response head (mode says how the body is framed), and body (len bytes, may be NULL)
 * behind it in the same write: one system call and one packet for a small response. A HEAD
 * request's response gets the head alone. */
static void write_head(kf_conn_t *conn, int status, const char *content_type, size_t len,
                       body_mode_t mode, const void *body)
{
    resp_t *resp = &conn->resp;
    kf_buf_t head;
    kf_buf_init(&head);
    /* Room for the usual head and the body: one allocation. */
    kf_buf_reserve(&head, 384 + resp->headers.len + (body != NULL ? len : 0));
    kf_buf_printf(&head,
                  "HTTP/1.1 %d %s\r\nServer: kefu\r\nX-Content-Type-Options: nosniff\r\n"
                  "Referrer-Policy: no-referrer\r\nX-Request-Id: %s\r\n",
                  status, status_text(status), conn->req.request_id);
    if (content_type != NULL)
        kf_buf_printf(&head, "Content-Type: %s\r\n", content_type);
    /* Only HTML pages are documents to render or frame, and their handlers set their own policy;
     * nothing else (JSON, event streams, scripts, redirects) may load, run or be framed, unless
     * its handler set a policy of its own (an attachment's: one header, not two to merge). A 304
     * carries no policy of its own: a cache merges its headers into the copy it revalidates, and
     * this one would then forbid a page everything. */
    bool no_content = status == 204 || status == 304;
    if (mode != BODY_NONE && !no_content &&
        (content_type == NULL || strncmp(content_type, "text/html", 9) != 0) &&
        !has_header(&resp->headers, "Content-Security-Policy"))
        kf_buf_append_str(
            &head, "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n");
    bool chunked = mode == BODY_CHUNKED;
    if (chunked)
        kf_buf_append_str(&head, resp->minor_version >= 1 ? "Transfer-Encoding: chunked\r\n" : "");
    else if (mode == BODY_LENGTH && !no_content)
        kf_buf_printf(&head, "Content-Length: %zu\r\n", len);
    /* 204 and 304 have no content and no Content-Length (RFC 9110 §8.6): a 304's length would
     * replace the length of the copy a cache revalidates, and Chromium then fails the load. */
    if (conn->server->stopping || (chunked && resp->minor_version == 0 && !resp->head_only))
        conn->close_after = true;
    if (mode != BODY_NONE)
        kf_buf_append_str(&head, conn->close_after ? "Connection: close\r\n" : "");
    if (resp->headers.len > 0)
        kf_buf_append(&head, resp->headers.data, resp->headers.len);
    /* A connection lives on after its head (a stream, a WebSocket, keep-alive): it keeps no
     * bytes for headers it has sent. */
    kf_buf_free(&resp->headers);
    kf_buf_append_str(&head, "\r\n");
    if (body != NULL && !resp->head_only)
        kf_buf_append(&head, body, len);
    resp->status = status;
    /* A stream's or an upgrade's first bytes follow at once (a heartbeat, a replay): inside the
     * handler, the head waits for them, to leave in one write (the dispatch writes it alone if
     * nothing follows). */
    if (mode != BODY_LENGTH && !resp->head_only && conn->in_handler && conn->deferred.len == 0) {
        conn->deferred = head;
        return;
    }
    conn_write(conn, head.data, head.len);
    kf_buf_free(&head);
}

void conn_send_continue(kf_conn_t *conn)
{
    static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
    conn->continue_sent = true;
    conn_write(conn, interim, sizeof interim - 1);
}

/* ---- whole responses ---- */

/* True while the request in hand may still be answered with a whole response. */
static bool answerable(const kf_conn_t *conn)
{
    return conn->state == CONN_DISPATCH || conn->state == CONN_HELD;
}

void kf_resp_send(kf_req_t *req, int status, const char *content_type, const void *body, size_t len)
{
    kf_conn_t *conn = req_conn(req);
    if (!answerable(conn))
        return;
    write_head(conn, status, content_type, len, BODY_LENGTH, body);
    conn_request_done(conn);
}

void kf_resp_json(kf_req_t *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        kf_resp_error(req, 500, "internal", "could not encode the response");
        return;
    }
    kf_resp_json_text(req, status, text, strlen(text));
    free(text);
}

void kf_resp_json_text(kf_req_t *req, int status, const char *text, size_t len)
{
    kf_resp_header(req, "Cache-Control", "no-store");
    kf_resp_send(req, status, "application/json", text, len);
}

void kf_resp_error(kf_req_t *req, int status, const char *code, const char *message)
{
    kf_metrics_reject(status, code);
    json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    kf_resp_json_text(req, status, text, text != NULL ? strlen(text) : 0);
    free(text);
}

void conn_reject(kf_conn_t *conn, int status, const char *code, const char *message)
{
    static const kf_http_request_t no_head = {.minor_version = 1, .content_length = -1};
    kf_req_t *req = &conn->req;
    req->head = &no_head;
    req->body = NULL;
    req->body_len = 0;
    req->started_ms = kf_clock_mono_ms();
    resp_reset(&conn->resp, 1, false);
    conn->served = true;
    conn->close_after = true;
    conn_set_state(conn, CONN_DISPATCH);
    conn_set_request_id(conn, NULL);
    conn_set_client(conn, NULL);
    kf_resp_error(req, status, code, message);
}

/* ---- held requests ---- */

int kf_req_on_end(kf_req_t *req, kf_req_end_cb end_cb, void *data)
{
    kf_conn_t *conn = req_conn(req);
    if (!conn_has_request(conn))
        return KF_EINVAL;
    conn->resp.end_cb = end_cb;
    conn->resp.end_data = data;
    return 0;
}

void kf_req_hold(kf_req_t *req, kf_req_abort_cb abort_cb, void *data)
{
    kf_conn_t *conn = req_conn(req);
    if (!answerable(conn))
        return;
    conn->resp.abort_cb = abort_cb;
    conn->resp.abort_data = data;
    if (conn->state == CONN_DISPATCH)
        conn_set_state(conn, CONN_HELD);
}

void kf_req_end_on_eof(kf_req_t *req)
{
    kf_conn_t *conn = req_conn(req);
    if (answerable(conn))
        conn->resp.end_on_eof = true;
}

void kf_req_detach(kf_req_t *req)
{
    req_conn(req)->resp.abort_cb = NULL;
}

/* ---- streams ---- */

int kf_resp_stream_start(kf_req_t *req, int status, const char *content_type,
                         kf_req_abort_cb abort_cb, void *data)
{
    kf_conn_t *conn = req_conn(req);
    if (!answerable(conn))
        return KF_EINVAL;
    if (conn->resp.head_only) {
        write_head(conn, status, content_type, 0, BODY_CHUNKED, NULL);
        conn_request_done(conn);
        return KF_EINVAL;
    }
    conn->resp.abort_cb = abort_cb;
    conn->resp.abort_data = data;
    conn_set_state(conn, CONN_STREAMING);
    write_head(conn, status, content_type, 0, BODY_CHUNKED, NULL);
    return 0;
}

/* The request's owner takes it back and the connection closes at once: for a write that failed
 * or a reader that does not read, which the caller cleans up as on abort. */
static void drop(kf_conn_t *conn)
{
    conn->resp.abort_cb = NULL;
    conn_close(conn);
}

int kf_resp_stream_write(kf_req_t *req, const void *data, size_t len)
{
    kf_conn_t *conn = req_conn(req);
    if (conn->state != CONN_STREAMING)
        return KF_EINVAL;
    if (len == 0)
        return 0;
    if (conn_queued(conn) > conn->server->config.max_output) {
        drop(conn); /* rather than buffer without bound */
        return KF_ELIMIT;
    }
    if (conn->resp.minor_version >= 1) {
        char size_line[24];
        int n = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
        /* One write per chunk: size line, data and CRLF together. */
        uv_buf_t bufs[3] = {uv_buf_init(size_line, (unsigned)n),
                            uv_buf_init((char *)data, (unsigned)len), uv_buf_init("\r\n", 2)};
        if (conn_writev(conn, bufs, 3) != 0) {
            drop(conn);
            return KF_EIO;
        }
    } else {
        conn_write(conn, data, len);
    }
    return 0;
}

void kf_resp_stream_end(kf_req_t *req)
{
    kf_conn_t *conn = req_conn(req);
    if (conn->state != CONN_STREAMING)
        return;
    if (conn->resp.minor_version >= 1)
        conn_write(conn, "0\r\n\r\n", 5);
    else
        conn->close_after = true;
    conn->resp.abort_cb = NULL;
    conn_request_done(conn);
}

/* ---- upgrades ---- */

int kf_req_upgrade(kf_req_t *req, kf_raw_read_cb read_cb, kf_req_abort_cb abort_cb, void *data)
{
    kf_conn_t *conn = req_conn(req);
    if (conn->state != CONN_DISPATCH || conn->close_after)
        return KF_EINVAL;
    conn->resp.abort_cb = abort_cb;
    conn->resp.abort_data = data;
    conn->raw_read = read_cb;
    conn->raw_data = data;
    conn_set_state(conn, CONN_UPGRADED);
    write_head(conn, 101, NULL, 0, BODY_NONE, NULL);
    return 0;
}

kf_conn_t *kf_req_conn(kf_req_t *req)
{
    return req_conn(req);
}

int kf_conn_write(kf_conn_t *conn, const void *data, size_t len)
{
    if (conn_is_closing(conn))
        return KF_EINVAL;
    if (conn_queued(conn) > conn->server->config.max_output) {
        drop(conn);
        return KF_ELIMIT;
    }
    conn_write(conn, data, len);
    return conn_is_closing(conn) ? KF_EIO : 0;
}

size_t kf_conn_queued(const kf_conn_t *conn)
{
    return conn_queued(conn);
}

void kf_conn_close(kf_conn_t *conn, bool flush)
{
    conn->resp.abort_cb = NULL;
    if (flush)
        conn_close_gracefully(conn);
    else
        conn_close(conn);
}
