/* conn.c: HTTP/1.1 connections: accepting them, reading, request framing, the connection's state
 * machine (http/server_int.h draws it), dispatch to the handler, closing and lingering, and the
 * 1-second sweep of timeouts; and the server's start and stop. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "http/server_int.h"

/* Timeouts and idle checks run from one coarse sweep instead of a timer per connection: an idle
 * connection then costs only its memory. */
#define SWEEP_INTERVAL_MS 1000
/* Read buffer handed to libuv; shared by every connection of a loop because the loop reads one
 * at a time (one per loop thread: read_chunk), and copied into the connection's own buffer only
 * when a request is incomplete. */
#define READ_CHUNK 65536
/* How long a gracefully closed connection drains the peer's input before it is closed anyway. */
#define LINGER_MS 2000
/* Output queued past this (or max_output, if less) pauses the parsing of pipelined requests:
 * a client that asks and does not read makes the server hold this much, not every answer. */
#define PIPELINE_OUTPUT_LIMIT (64 * 1024)
/* The slowest upload served, in bytes a second, past the head's own time: a 10 MiB file gets
 * five minutes more (a slow mobile link), and a peer that sends less is cut off as any slow
 * request is (408). */
#define UPLOAD_MIN_RATE (32 * 1024)

static _Thread_local char read_chunk[READ_CHUNK];

static void process(kf_conn_t *conn);

void kf_server_config_default(kf_server_config_t *config)
{
    memset(config, 0, sizeof *config);
    config->host = "127.0.0.1";
    config->port = 8080;
    kf_http_limits_default(&config->limits);
    config->max_body = 64 * 1024;
    config->header_timeout_ms = 10000;
    config->idle_timeout_ms = 75000;
    config->max_output = 1024 * 1024;
    config->max_connections = 19500;
    config->max_connections_per_address = 256;
}

/* ---- the state machine ---- */

/* The moves drawn in server_int.h. Only asserts use it: a build without them has no use for it
 * (and clang, unlike gcc, warns of an unused static inline). */
#ifndef NDEBUG
static bool move_allowed(conn_state_t from, conn_state_t to)
{
    if (to == CONN_CLOSING)
        return from != CONN_CLOSING;
    if (to == CONN_LINGERING)
        return from != CONN_CLOSING && from != CONN_LINGERING;
    switch (from) {
    case CONN_HEAD: return to == CONN_DISPATCH || to == CONN_PAUSED;
    case CONN_PAUSED: return to == CONN_HEAD;
    case CONN_DISPATCH:
        return to == CONN_HEAD || to == CONN_HELD || to == CONN_STREAMING || to == CONN_UPGRADED;
    case CONN_HELD: return to == CONN_DISPATCH || to == CONN_HEAD || to == CONN_STREAMING;
    case CONN_STREAMING: return to == CONN_HEAD;
    default: return false;
    }
}
#endif

void conn_set_state(kf_conn_t *conn, conn_state_t state)
{
    assert(move_allowed(conn->state, state));
    conn->state = state;
    conn_update_reading(conn);
}

bool conn_has_request(const kf_conn_t *conn)
{
    return conn->state == CONN_DISPATCH || conn->state == CONN_HELD ||
           conn->state == CONN_STREAMING || conn->state == CONN_UPGRADED;
}

bool conn_is_closing(const kf_conn_t *conn)
{
    return conn->state == CONN_LINGERING || conn->state == CONN_CLOSING;
}

/* True when the peer has left more output unread than pipelining may pile up. */
static bool output_backed_up(const kf_conn_t *conn)
{
    size_t limit = conn->server->config.max_output;
    if (limit > PIPELINE_OUTPUT_LIMIT)
        limit = PIPELINE_OUTPUT_LIMIT;
    return conn_queued(conn) > limit;
}

/* Whether the socket should be read now. Each answer bounds what a peer can make us buffer: a
 * head or body in the making is bounded by the parser's limits and max_body; behind a request in
 * hand, at most one more request's worth is kept (and the read that passes it); a paused
 * connection reads nothing. */
static bool should_read(const kf_conn_t *conn)
{
    const kf_server_config_t *config = &conn->server->config;
    if (conn->peer_eof)
        return false; /* nothing more will come */
    switch (conn->state) {
    case CONN_HEAD: return true;
    case CONN_PAUSED: return false;
    case CONN_UPGRADED: return true; /* the reader's framing bounds what it leaves unconsumed */
    case CONN_LINGERING: return true;
    case CONN_CLOSING: return false;
    default:
        /* A request in hand: read on to see the peer go away, and keep what it pipelines. */
        return conn->rbuf.len <
               conn->req_bytes + config->limits.max_header_bytes + config->max_body;
    }
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

void conn_update_reading(kf_conn_t *conn)
{
    bool want = should_read(conn);
    if (want == conn->reading)
        return;
    conn->reading = want;
    if (!want) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
    } else if (uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb) != 0) {
        conn->reading = false;
        conn_close(conn);
    }
}

/* ---- closing ---- */

static void server_handle_closed(kf_server_t *server)
{
    server->open_handles--;
    if (server->stopping && server->open_handles == 0) {
        void (*done_cb)(void *) = server->done_cb;
        void *done_data = server->done_data;
        if (server->addresses != server->config.shared_addresses)
            kf_addresses_free(server->addresses); /* every connection is closed: it is empty */
        free(server);
        if (done_cb != NULL)
            done_cb(done_data);
    }
}

static void close_cb(uv_handle_t *handle)
{
    kf_conn_t *conn = (kf_conn_t *)handle;
    kf_server_t *server = conn->server;
    kf_list_remove(&conn->link);
    server->conn_count--;
    admit_release(server, conn);
    kf_buf_free(&conn->rbuf);
    kf_buf_free(&conn->deferred);
    kf_buf_free(&conn->resp.headers);
    free(conn->forwarded);
    free(conn);
    server_handle_closed(server);
}

/* Moves to CLOSING and closes the handle; the connection is freed in its close callback. */
static void close_handle(kf_conn_t *conn)
{
    if (conn->state == CONN_CLOSING)
        return;
    conn_set_state(conn, CONN_CLOSING);
    uv_close((uv_handle_t *)&conn->tcp, close_cb);
}

/* The callbacks of a request that ends with its connection: abort (when it was in hand, its
 * handler had not finished it and its owner has not detached) and end, each at most once. */
static void request_callbacks(kf_conn_t *conn, bool in_hand)
{
    resp_t *resp = &conn->resp;
    kf_req_abort_cb abort_cb = in_hand ? resp->abort_cb : NULL;
    resp->abort_cb = NULL;
    if (abort_cb != NULL)
        abort_cb(&conn->req, resp->abort_data);
    kf_req_end_cb end_cb = resp->end_cb;
    resp->end_cb = NULL;
    if (end_cb != NULL)
        end_cb(&conn->req, resp->end_data);
}

void conn_close(kf_conn_t *conn)
{
    if (conn->state == CONN_CLOSING)
        return;
    bool in_hand = conn_has_request(conn);
    close_handle(conn);
    request_callbacks(conn, in_hand);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    kf_conn_t *conn = req->data;
    free(req);
    if (conn->state != CONN_LINGERING)
        return; /* closed meanwhile */
    if (status == 0 && !conn->peer_eof) {
        conn->fin_sent = true; /* the peer's EOF, or the sweep, closes it */
        return;
    }
    close_handle(conn);
}

void conn_close_gracefully(kf_conn_t *conn)
{
    if (conn_is_closing(conn))
        return;
    conn_flush_deferred(conn);
    if (conn_is_closing(conn))
        return;
    bool in_hand = conn_has_request(conn);
    conn->fin_sent = false;
    /* A peer that has sent its EOF, or one of a stopping server, is not waited for. */
    conn->peer_eof = conn->peer_eof || conn->server->stopping;
    conn->linger_until_ms = kf_clock_mono_ms() + LINGER_MS;
    conn_set_state(conn, CONN_LINGERING);
    request_callbacks(conn, in_hand);
    if (conn->state != CONN_LINGERING)
        return;
    uv_shutdown_t *sreq = kf_xmalloc(sizeof *sreq);
    sreq->data = conn;
    if (uv_shutdown(sreq, (uv_stream_t *)&conn->tcp, shutdown_cb) != 0) {
        free(sreq);
        close_handle(conn);
    }
}

/* ---- requests ---- */

/* The request in hand is over and the connection stays: its bytes go, and the wait for the next
 * one starts now (also for bytes of it that came with this one). */
static void consume_request(kf_conn_t *conn)
{
    kf_buf_consume(&conn->rbuf, conn->req_bytes);
    conn->req_bytes = 0;
    conn->since_ms = kf_clock_mono_ms();
}

void conn_request_done(kf_conn_t *conn)
{
    resp_t *resp = &conn->resp;
    resp->abort_cb = NULL;
    kf_req_end_cb end_cb = resp->end_cb;
    resp->end_cb = NULL;
    if (end_cb != NULL)
        end_cb(&conn->req, resp->end_data);
    if (conn_is_closing(conn))
        return;
    if (conn->close_after) {
        conn_close_gracefully(conn);
        return;
    }
    conn_set_state(conn, CONN_HEAD);
    conn->body_grace_ms = 0; /* the next request earns its own */
    if (conn->in_handler)
        return; /* its bytes go, and the next request comes, when the handler returns */
    consume_request(conn);
    process(conn);
}

void conn_output_drained(kf_conn_t *conn)
{
    if (conn->state != CONN_PAUSED || output_backed_up(conn))
        return;
    conn_set_state(conn, CONN_HEAD);
    conn->since_ms = kf_clock_mono_ms();
    process(conn);
}

/* Hands buffered bytes of an upgraded connection to its reader. */
static void feed_raw(kf_conn_t *conn)
{
    while (conn->state == CONN_UPGRADED && conn->rbuf.len > 0) {
        size_t used = conn->raw_read(conn->raw_data, conn->rbuf.data, conn->rbuf.len);
        if (conn->state != CONN_UPGRADED || used == 0)
            break;
        kf_buf_consume(&conn->rbuf, used);
    }
    if (conn->state == CONN_UPGRADED && conn->rbuf.len == 0)
        kf_buf_free(&conn->rbuf);
}

/* Whether the request in hand ends, rather than being finished, once the peer has sent its EOF:
 * a stream, an upgraded connection and a held request that only waits for news
 * (kf_req_end_on_eof) have nobody to finish for. */
static bool ends_at_eof(const kf_conn_t *conn)
{
    switch (conn->state) {
    case CONN_HELD: return conn->resp.end_on_eof;
    case CONN_STREAMING:
    case CONN_UPGRADED: return true;
    default: return false;
    }
}

/* After a handler (or a resumed handler) returns: writes what it deferred, and settles the state
 * it left. The caller goes on parsing when the connection is back in HEAD. */
static void after_handler(kf_conn_t *conn)
{
    kf_req_t *req = &conn->req;
    conn->in_handler = false;
    conn_flush_deferred(conn);
    req->head = NULL; /* its stack frame ends here */
    req->body = NULL;
    switch (conn->state) {
    case CONN_DISPATCH:
        /* Returned without answering: held, with whatever abort callback it set. */
        conn_set_state(conn, CONN_HELD);
        break;
    case CONN_HEAD: consume_request(conn); break;
    case CONN_UPGRADED:
        kf_buf_consume(&conn->rbuf, conn->req_bytes);
        conn->req_bytes = 0;
        feed_raw(conn);
        break;
    default: break; /* held, streaming or closing: the views into rbuf are no longer used */
    }
    /* A request dispatched after the peer's EOF (pipelined behind a held one) and kept open
     * ends here, now that its handler has returned. */
    if (conn->peer_eof && ends_at_eof(conn))
        conn_close(conn);
}

void kf_req_resume(kf_req_t *req, void (*fn)(kf_req_t *req, void *data), void *data)
{
    kf_conn_t *conn = req_conn(req);
    assert(conn->state == CONN_HELD && !conn->in_handler);
    /* The request's bytes stay at the front of the buffer until it is answered (reading on only
     * appends, though it may move the buffer), so its head parses again, to views into the
     * buffer as it is now: nothing was kept meanwhile. */
    kf_http_request_t head;
    int rc = kf_http_parse_request(conn->rbuf.data, conn->rbuf.len, &conn->server->config.limits,
                                   &head, NULL);
    assert(rc > 0);
    size_t head_len = (size_t)rc;
    req->head = &head;
    req->body = req->body_len > 0 ? conn->rbuf.data + head_len : NULL;
    conn_set_state(conn, CONN_DISPATCH);
    conn->in_handler = true;
    const char *outer = kf_log_set_request_id(req->request_id);
    fn(req, data);
    kf_log_set_request_id(outer);
    after_handler(conn);
    process(conn);
}

/* How a request's Expect header is to be met. */
typedef enum { EXPECT_NOTHING, EXPECT_CONTINUE, EXPECT_UNKNOWN } expect_t;

static expect_t expectation(const kf_http_request_t *head)
{
    const kf_str_t *expect = kf_http_header_get(head, "Expect");
    if (expect == NULL)
        return EXPECT_NOTHING;
    /* RFC 9110 §10.1.1: an HTTP/1.0 client cannot mean it, so it is ignored. */
    if (head->minor_version == 0)
        return EXPECT_NOTHING;
    return kf_str_ieq(*expect, "100-continue") ? EXPECT_CONTINUE : EXPECT_UNKNOWN;
}

/* Refuses a head the parser took but the server does not serve; false when it did (the
 * connection then closes after the answer). */
static bool head_acceptable(kf_conn_t *conn, const kf_http_request_t *head)
{
    const kf_server_config_t *config = &conn->server->config;
    size_t limit = config->body_limit != NULL ? config->body_limit(conn->server->app, head) : 0;
    if (limit == 0)
        limit = config->max_body;
    if (head->content_length > 0 && (uint64_t)head->content_length > limit) {
        conn_reject(conn, 413, "too_large", "the request body is too large");
        return false;
    }
    if (expectation(head) == EXPECT_UNKNOWN) {
        conn_reject(conn, 417, "expectation_failed", "only Expect: 100-continue is understood");
        return false;
    }
    return true;
}

/* Refuses a request the parser would not take, with the error code its status calls for. */
static void reject_parse_error(kf_conn_t *conn, const kf_http_fault_t *fault)
{
    const char *code = "bad_request";
    switch (fault->status) {
    case 411: code = "length_required"; break;
    case 414: code = "uri_too_long"; break;
    case 431: code = "headers_too_large"; break;
    case 501: code = "not_implemented"; break;
    case 505: code = "http_version"; break;
    default: break;
    }
    conn_reject(conn, fault->status, code, fault->reason);
}

/* An id a client sent is taken when it could do no harm in a header or a log line. */
static bool sane_request_id(const kf_str_t *id)
{
    if (id->len == 0 || id->len >= KF_REQUEST_ID_SIZE)
        return false;
    for (size_t i = 0; i < id->len; i++) {
        char c = id->ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

void conn_set_request_id(kf_conn_t *conn, const kf_http_request_t *head)
{
    kf_req_t *req = &conn->req;
    const kf_str_t *given = head != NULL ? kf_http_header_get(head, "X-Request-Id") : NULL;
    if (given != NULL && sane_request_id(given)) {
        memcpy(req->request_id, given->ptr, given->len);
        req->request_id[given->len] = '\0';
        return;
    }
    kf_server_t *server = conn->server;
    snprintf(req->request_id, sizeof req->request_id, "%08x%08x",
             (unsigned)server->request_id_prefix, (unsigned)++server->request_id_count);
}

void conn_set_client(kf_conn_t *conn, const kf_http_request_t *head)
{
    free(conn->forwarded);
    conn->forwarded = NULL;
    if (!conn->via_proxy || head == NULL)
        return;
    /* Several X-Forwarded-For lines are one list (RFC 9110 §5.3): the last is the nearest
     * proxy's, and its last entry the only one the trusted peer vouches for by itself. */
    const kf_str_t *value = NULL;
    for (size_t i = 0; i < head->num_headers; i++) {
        const kf_str_t *name = &head->headers[i].name;
        if (name->len == sizeof "X-Forwarded-For" - 1 &&
            strncasecmp(name->ptr, "X-Forwarded-For", name->len) == 0)
            value = &head->headers[i].value;
    }
    const kf_server_config_t *config = &conn->server->config;
    char client[KF_ADDR_TEXT_SIZE];
    if (value != NULL && kf_addr_forwarded_client(value->ptr, value->len, config->trusted_proxies,
                                                  config->trusted_proxy_count, client))
        conn->forwarded = kf_xstrdup(client);
}

/* Hands a complete request to the handler. */
static void dispatch(kf_conn_t *conn, const kf_http_request_t *head, size_t head_len,
                     size_t body_len)
{
    kf_req_t *req = &conn->req;
    req->head = head;
    req->body = body_len > 0 ? conn->rbuf.data + head_len : NULL;
    req->body_len = body_len;
    req->started_ms = kf_clock_mono_ms();
    resp_reset(&conn->resp, head->minor_version, kf_str_eq(head->method, "HEAD"));
    conn->req_bytes = head_len + body_len;
    conn->close_after = !head->keep_alive;
    conn->continue_sent = false;
    conn->served = true;
    conn_set_state(conn, CONN_DISPATCH);
    conn_set_request_id(conn, head);
    conn_set_client(conn, head);
    conn->in_handler = true;
    const char *outer = kf_log_set_request_id(req->request_id);
    conn->server->handler(req);
    kf_log_set_request_id(outer);
    after_handler(conn);
}

/* Parses and dispatches the complete requests in the buffer, one at a time, while the
 * connection is in HEAD and its peer reads what it is sent. */
static void process(kf_conn_t *conn)
{
    const kf_server_config_t *config = &conn->server->config;
    while (conn->state == CONN_HEAD && !conn->in_handler && conn->rbuf.len > 0) {
        if (output_backed_up(conn)) {
            conn_set_state(conn, CONN_PAUSED);
            conn->since_ms = kf_clock_mono_ms();
            return;
        }
        kf_http_request_t head;
        kf_http_fault_t fault;
        int rc =
            kf_http_parse_request(conn->rbuf.data, conn->rbuf.len, &config->limits, &head, &fault);
        if (rc == KF_EAGAIN)
            break;
        if (rc < 0) {
            reject_parse_error(conn, &fault);
            return;
        }
        if (!head_acceptable(conn, &head))
            return;
        size_t head_len = (size_t)rc;
        size_t body_len = head.content_length > 0 ? (size_t)head.content_length : 0;
        conn->body_grace_ms =
            body_len > config->max_body ? (uint64_t)body_len / UPLOAD_MIN_RATE * 1000 : 0;
        if (conn->rbuf.len < head_len + body_len) {
            /* The body is still coming; a client that waits to be told to send it is told. */
            if (expectation(&head) == EXPECT_CONTINUE && !conn->continue_sent)
                conn_send_continue(conn);
            break;
        }
        dispatch(conn, &head, head_len, body_len);
    }
    if (conn->state == CONN_HEAD && !conn->in_handler && conn->peer_eof) {
        /* Every complete request is answered: what is left cannot complete, and is dropped. */
        conn_close_gracefully(conn);
        return;
    }
    if (conn->state == CONN_HEAD && !conn->in_handler && conn->rbuf.len == 0)
        kf_buf_free(&conn->rbuf); /* idle connections hold no buffer */
    conn_update_reading(conn);
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init(read_chunk, sizeof read_chunk);
}

/* The peer will send nothing more: its EOF (eof), after which it may still read (a TCP
 * half-close, RFC 9293 §3.6), or an error, after which it cannot. After an EOF, what it sent is
 * finished (RFC 9112 §9.6 closes in stages so that the last answers can be read): the complete
 * requests already read are answered in order, a held one included (its effect, a stored
 * message, happens anyway: a client left without the answer would repeat it), and then the
 * connection closes; an incomplete request is dropped. What has nobody to finish for
 * (ends_at_eof) ends at once, as everything does after an error. */
static void peer_done(kf_conn_t *conn, bool eof)
{
    conn->peer_eof = true;
    conn_update_reading(conn);
    switch (conn->state) {
    case CONN_LINGERING:
        if (conn->fin_sent)
            close_handle(conn);
        return;
    case CONN_CLOSING: return;
    case CONN_HEAD:
        if (eof) {
            process(conn); /* nothing complete is left unanswered: it closes */
            return;
        }
        break;
    case CONN_PAUSED: /* the rest is answered as the peer reads, then it closes */
        if (eof)
            return;
        break;
    default:
        if (eof && !ends_at_eof(conn))
            return; /* answered in time; then the connection closes (process) */
        break;
    }
    conn_close(conn);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    kf_conn_t *conn = (kf_conn_t *)stream;
    if (nread < 0) {
        peer_done(conn, nread == UV_EOF);
        return;
    }
    if (conn->state == CONN_LINGERING) /* closing: what comes now is dropped */
        return;
    if (nread == 0 || conn->state == CONN_CLOSING)
        return;
    if (conn->state == CONN_HEAD && conn->rbuf.len == 0)
        conn->since_ms = kf_clock_mono_ms(); /* a request starts */
    kf_buf_append(&conn->rbuf, buf->base, (size_t)nread);
    if (conn->state == CONN_UPGRADED)
        feed_raw(conn);
    else if (conn->state == CONN_HEAD)
        process(conn);
    else
        conn_update_reading(conn);
}

/* ---- accepting ---- */

static void accept_cb(uv_stream_t *listener, int status)
{
    kf_server_t *server = listener->data;
    if (status < 0)
        return;
    kf_conn_t *conn = kf_xcalloc(1, sizeof *conn);
    conn->server = server;
    conn->state = CONN_HEAD;
    kf_buf_init(&conn->rbuf);
    kf_buf_init(&conn->deferred);
    kf_buf_init(&conn->resp.headers);
    conn->req.app = server->app;
    conn->since_ms = kf_clock_mono_ms();
    uv_tcp_init(server->loop, &conn->tcp);
    server->open_handles++;
    kf_list_push_back(&server->conns, &conn->link);
    server->conn_count++;
    /* Refused without an answer: an answer would have to wait for the request, and holding the
     * connection that long is what the limits are against. TCP_NODELAY comes from the listener:
     * Linux copies it to every accepted socket. */
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0 || server->stopping ||
        !admit_connection(server, conn)) {
        conn_close(conn);
        return;
    }
    conn_update_reading(conn);
}

/* ---- timeouts ---- */

/* One pass over every connection: slow request heads and bodies (408), idle keep-alive
 * connections, new connections that send nothing (they get the head's time, not the keep-alive
 * idle time), peers that leave their answers unread (the idle time), and lingering closes. */
static void sweep_cb(uv_timer_t *timer)
{
    kf_server_t *server = timer->data;
    const kf_server_config_t *config = &server->config;
    uint64_t now = kf_clock_mono_ms();
    KF_LIST_FOREACH(it, next, &server->conns) {
        kf_conn_t *conn = KF_CONTAINER_OF(it, kf_conn_t, link);
        uint64_t waited = now - conn->since_ms;
        switch (conn->state) {
        case CONN_LINGERING:
            if (now >= conn->linger_until_ms)
                close_handle(conn); /* also when our FIN still waits behind unread output */
            break;
        case CONN_HEAD:
            if (conn->rbuf.len > 0 && waited >= config->header_timeout_ms + conn->body_grace_ms)
                conn_reject(conn, 408, "timeout", "the request took too long to arrive");
            else if (conn->rbuf.len == 0 &&
                     waited >= (conn->served ? config->idle_timeout_ms : config->header_timeout_ms))
                conn_close(conn);
            break;
        case CONN_PAUSED:
            if (waited >= config->idle_timeout_ms)
                conn_close(conn);
            break;
        default: break;
        }
    }
}

/* ---- the server ---- */

static void listener_closed_cb(uv_handle_t *handle)
{
    server_handle_closed(handle->data);
}

static int listen_error(int uv_rc)
{
    if (uv_rc == UV_EADDRINUSE)
        return KF_EADDRINUSE;
    if (uv_rc == UV_EACCES)
        return KF_EACCESS;
    return KF_EIO;
}

/* Whether nothing listens on addr's port now: a bind as uv_tcp_bind makes it (SO_REUSEADDR,
 * which passes over connections in TIME_WAIT, not over a listener). Returns 0 or a libuv error
 * (UV_EADDRINUSE). */
static int port_free(const struct sockaddr_storage *addr, socklen_t len)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return uv_translate_sys_error(errno);
    int on = 1;
    int rc = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(fd, (const struct sockaddr *)addr, len) != 0)
        rc = uv_translate_sys_error(errno);
    close(fd);
    return rc;
}

/* Binds listener to addr with SO_REUSEPORT: libuv has no flag for it on TCP, so the socket is
 * made here and handed over. first: see kf_server_config_t's reuse_port_first. Returns 0 or a
 * libuv error. */
static int bind_reuse_port(uv_tcp_t *listener, const struct sockaddr_storage *addr, bool first)
{
    socklen_t len =
        addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    bool any_port = addr->ss_family == AF_INET6
                        ? ((const struct sockaddr_in6 *)addr)->sin6_port == 0
                        : ((const struct sockaddr_in *)addr)->sin_port == 0;
    if (first && !any_port) {
        int rc = port_free(addr, len);
        if (rc != 0)
            return rc;
    }
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return uv_translate_sys_error(errno);
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
        bind(fd, (const struct sockaddr *)addr, len) != 0) {
        int rc = uv_translate_sys_error(errno);
        close(fd);
        return rc;
    }
    int rc = uv_tcp_open(listener, fd);
    if (rc != 0)
        close(fd);
    return rc;
}

int kf_server_start(uv_loop_t *loop, const kf_server_config_t *config, kf_handler_fn handler,
                    void *app, kf_server_t **out)
{
    struct sockaddr_storage addr;
    if (uv_ip4_addr(config->host, config->port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(config->host, config->port, (struct sockaddr_in6 *)&addr) != 0)
        return KF_EIO;
    kf_server_t *server = kf_xcalloc(1, sizeof *server);
    server->loop = loop;
    server->config = *config;
    server->handler = handler;
    server->app = app;
    /* A weak prefix (no entropy to be had) still makes ids: they are for logs, not secrets. */
    if (uv_random(NULL, NULL, &server->request_id_prefix, sizeof server->request_id_prefix, 0,
                  NULL) != 0)
        server->request_id_prefix = (uint32_t)kf_clock_wall_ms();
    kf_list_init(&server->conns);
    server->addresses =
        config->shared_addresses != NULL ? config->shared_addresses : kf_addresses_new();
    uv_tcp_init(loop, &server->listener);
    server->listener.data = server;
    server->open_handles = 1;
    int rc = config->reuse_port
                 ? bind_reuse_port(&server->listener, &addr, config->reuse_port_first)
                 : uv_tcp_bind(&server->listener, (struct sockaddr *)&addr, 0);
    /* Answers and pushes are whole messages written at once: never hold one back (Nagle). Set
     * here, it is inherited by each accepted socket, one system call fewer per connection. */
    if (rc == 0)
        rc = uv_tcp_nodelay(&server->listener, 1);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server->listener, 4096, accept_cb);
    if (rc != 0) {
        /* The handle must be closed before the server can be freed. */
        server->stopping = true;
        uv_close((uv_handle_t *)&server->listener, listener_closed_cb);
        return listen_error(rc);
    }
    struct sockaddr_storage bound;
    int bound_len = sizeof bound;
    uv_tcp_getsockname(&server->listener, (struct sockaddr *)&bound, &bound_len);
    server->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                     : ((struct sockaddr_in *)&bound)->sin_port);
    uv_timer_init(loop, &server->sweep);
    server->sweep.data = server;
    server->open_handles++;
    uv_timer_start(&server->sweep, sweep_cb, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    *out = server;
    return 0;
}

int kf_server_port(const kf_server_t *server)
{
    return server->port;
}

size_t kf_server_connection_count(const kf_server_t *server)
{
    return server->conn_count;
}

void kf_server_stop(kf_server_t *server, void (*done_cb)(void *data), void *data)
{
    if (server->stopping)
        return;
    server->stopping = true;
    server->done_cb = done_cb;
    server->done_data = data;
    uv_close((uv_handle_t *)&server->listener, listener_closed_cb);
    uv_timer_stop(&server->sweep);
    uv_close((uv_handle_t *)&server->sweep, listener_closed_cb);
    KF_LIST_FOREACH(it, next, &server->conns) {
        kf_conn_t *conn = KF_CONTAINER_OF(it, kf_conn_t, link);
        switch (conn->state) {
        case CONN_LINGERING: close_handle(conn); break;
        case CONN_CLOSING: break;
        case CONN_HELD:
        case CONN_STREAMING:
        case CONN_UPGRADED:
            /* The push layer answers its long polls and ends its streams before the server
             * stops; whatever is still held is released through its abort callback. */
            conn_close_gracefully(conn);
            break;
        case CONN_DISPATCH: conn->close_after = true; break; /* stopped from its handler */
        default: conn_close(conn); break;
        }
    }
}
