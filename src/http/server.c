/* server.c: HTTP/1.1 connections on libuv: reading, request framing, limits, timeouts, and the
 * response writer (whole responses, held responses, chunked streams). */
#include "http/server.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* Timeouts and idle checks run from one coarse sweep instead of a timer per connection: an idle
 * connection then costs only its memory. */
#define SWEEP_INTERVAL_MS 1000
/* Read buffer handed to libuv; shared by every connection because the loop reads one at a time,
 * and copied into the connection's own buffer only when a request is incomplete. */
#define READ_CHUNK 65536
/* Buckets of the per-address table when it is created; it doubles when it holds more addresses. */
#define ADDRESS_MIN_BUCKETS 64

/* Connections open from one client address: an IPv4 address (also when mapped into IPv6), or an
 * IPv6 /64, since one host usually holds a whole /64 and could otherwise pick a fresh address for
 * every connection. An entry lives while its address has a connection open. */
typedef struct address_entry {
    struct address_entry *chain; /* next entry in the same hash bucket */
    uint64_t key;                /* the IPv4 address, or the IPv6 address's first 64 bits */
    bool v6;                     /* key is an IPv6 prefix */
    size_t connections;          /* connections open from it, >= 1 */
} address_entry_t;

struct kf_conn {
    uv_tcp_t tcp; /* first member: the handle's address is the connection's */
    kf_server_t *server;
    kf_conn_t *prev, *next;      /* the server's list of connections */
    kf_buf_t rbuf;               /* bytes read and not yet consumed; freed whenever empty */
    kf_buf_t deferred;           /* the head of a stream or upgrade that a handler started: it goes
                                  * out with the first bytes that follow, in one write, or when
                                  * the handler returns */
    kf_req_t req;                /* the request being answered (valid while in_request) */
    size_t req_bytes;            /* head + body bytes of that request, consumed when it ends */
    bool in_request;             /* a request was handed to the handler and is not finished */
    bool dispatching;            /* inside process(): finishing a request must not re-enter it */
    bool closing;                /* uv_close or uv_shutdown was started */
    bool lingering;              /* closing gracefully: our FIN goes after the queued writes, and
                                  * what the peer still sends is read and dropped until its EOF or
                                  * linger_until_ms, so that closing with unread input does not
                                  * reset the connection and destroy our last bytes in flight
                                  * (a WebSocket close frame, a Connection: close answer) */
    bool shut_down;              /* lingering: our FIN is out */
    bool peer_done;              /* lingering: the peer's EOF (or an error) came */
    bool handle_closing;         /* uv_close was called on tcp */
    uint64_t linger_until_ms;    /* lingering: close at this loop time at the latest */
    bool close_after;            /* close once the current response has been written */
    bool reading;                /* uv_read_start is in effect */
    bool upgraded;               /* after a 101: bytes go to raw_read, not the HTTP parser */
    bool served;                 /* a request has been handed to the handler (or refused) */
    kf_raw_read_cb raw_read;     /* the new protocol's reader */
    uint64_t request_started_ms; /* loop time of the first byte of the pending request, or 0 */
    uint64_t idle_since_ms;      /* loop time the connection last finished a response */
    char peer[64];               /* the client's address, for logs and per-address limits */
    address_entry_t *address;    /* its entry in the per-address table, or NULL when not counted */
};

struct kf_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t sweep;
    kf_server_config_t config;
    kf_handler_fn handler;
    void *app;
    kf_conn_t *conns; /* every open connection */
    size_t conn_count;
    int open_handles; /* listener, sweep timer and connections not yet closed */
    bool stopping;
    void (*done_cb)(void *data);
    void *done_data;
    int port;
    /* Per-address connection counts (only when max_connections_per_address is set): a chained
     * hash table of the addresses with connections open, so bounded by the connections. */
    address_entry_t **addresses;
    size_t address_buckets; /* a power of two, or 0 before the first entry */
    size_t address_count;   /* entries in the table */
    uint64_t address_seed;  /* random: which addresses share a bucket is unforeseeable */
};

typedef struct write_req {
    uv_write_t req;
    kf_conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

static char read_chunk[READ_CHUNK];

static void process(kf_conn_t *conn);
static void conn_close(kf_conn_t *conn);

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

static void server_handle_closed(kf_server_t *server)
{
    server->open_handles--;
    if (server->stopping && server->open_handles == 0) {
        void (*done_cb)(void *) = server->done_cb;
        void *done_data = server->done_data;
        free(server->addresses); /* every connection is closed: the table is empty */
        free(server);
        if (done_cb != NULL)
            done_cb(done_data);
    }
}

/* ---- connections per client address ---- */

/* The per-address key of a peer; false for a family without one (never counted). */
static bool address_key(const struct sockaddr_storage *addr, uint64_t *key, bool *v6)
{
    const unsigned char *bytes;
    if (addr->ss_family == AF_INET) {
        bytes = (const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr;
        *v6 = false;
    } else if (addr->ss_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        bytes = (const unsigned char *)in6;
        *v6 = !IN6_IS_ADDR_V4MAPPED(in6); /* ::ffff:a.b.c.d is the IPv4 client a.b.c.d */
        if (!*v6)
            bytes += 12;
    } else {
        return false;
    }
    uint64_t value = 0;
    for (size_t i = 0; i < (*v6 ? 8u : 4u); i++)
        value = value << 8 | bytes[i];
    *key = value;
    return true;
}

/* A seeded mix (MurmurHash3's finaliser), not a keyed PRF like the rate limits' SipHash: every key
 * costs the client a routed address (an IPv4 address or a whole /64) and a connection, and the
 * table holds at most max_connections entries. */
static size_t address_bucket(const kf_server_t *server, uint64_t key, bool v6)
{
    uint64_t x = key ^ server->address_seed ^ (v6 ? 0x9e3779b97f4a7c15u : 0);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    x ^= x >> 33;
    return (size_t)x & (server->address_buckets - 1);
}

static void address_resize(kf_server_t *server, size_t bucket_count)
{
    address_entry_t **old = server->addresses;
    size_t old_count = server->address_buckets;
    server->addresses = kf_xcalloc(bucket_count, sizeof *server->addresses);
    server->address_buckets = bucket_count;
    for (size_t i = 0; i < old_count; i++) {
        address_entry_t *next;
        for (address_entry_t *entry = old[i]; entry != NULL; entry = next) {
            next = entry->chain;
            size_t b = address_bucket(server, entry->key, entry->v6);
            entry->chain = server->addresses[b];
            server->addresses[b] = entry;
        }
    }
    free(old);
}

/* Counts conn against its peer's address; false when that address is at its limit (conn is then
 * not counted and must be closed). O(1) expected. */
static bool address_admit(kf_server_t *server, kf_conn_t *conn, const struct sockaddr_storage *addr)
{
    size_t limit = server->config.max_connections_per_address;
    uint64_t key;
    bool v6;
    if (limit == 0 || !address_key(addr, &key, &v6))
        return true;
    if (server->address_buckets == 0) {
        /* Synchronous (no loop, no callback); should it fail the seed stays 0, still spread. */
        (void)uv_random(NULL, NULL, &server->address_seed, sizeof server->address_seed, 0, NULL);
        address_resize(server, ADDRESS_MIN_BUCKETS);
    }
    size_t b = address_bucket(server, key, v6);
    address_entry_t *entry = server->addresses[b];
    while (entry != NULL && (entry->key != key || entry->v6 != v6))
        entry = entry->chain;
    if (entry != NULL && entry->connections >= limit)
        return false;
    if (entry == NULL) {
        entry = kf_xcalloc(1, sizeof *entry);
        entry->key = key;
        entry->v6 = v6;
        entry->chain = server->addresses[b];
        server->addresses[b] = entry;
        server->address_count++;
        if (server->address_count > server->address_buckets)
            address_resize(server, server->address_buckets * 2);
    }
    entry->connections++;
    conn->address = entry;
    return true;
}

/* The connection is gone: uncount it, and forget its address when it was the last one. */
static void address_release(kf_server_t *server, kf_conn_t *conn)
{
    address_entry_t *entry = conn->address;
    if (entry == NULL)
        return;
    conn->address = NULL;
    assert(entry->connections > 0);
    if (--entry->connections > 0)
        return;
    address_entry_t **link = &server->addresses[address_bucket(server, entry->key, entry->v6)];
    while (*link != entry)
        link = &(*link)->chain;
    *link = entry->chain;
    server->address_count--;
    free(entry);
}

/* ---- writing ---- */

static void write_cb(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    (void)status; /* a failed write shows up as a read error or EOF, which closes the connection */
    free(w);
}

/* Writes bufs in order. Most often the socket takes them at once (uv_try_write: one writev, no
 * request, no copy, and no epoll_ctl, which each completed uv_write costs libuv); what it does not
 * take is copied into a write request that libuv sends when the socket is writable. Returns 0, or
 * KF_EIO when the connection is closing or libuv refused the request (the caller closes it). */
static int conn_writev_now(kf_conn_t *conn, const uv_buf_t *bufs, unsigned nbufs)
{
    if (conn->closing)
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
    if (conn->closing || conn->deferred.len == 0)
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

/* Writes what a handler deferred, if anything: it has returned and nothing followed the head. */
static void flush_deferred(kf_conn_t *conn)
{
    if (conn->deferred.len > 0 && conn_writev(conn, NULL, 0) != 0)
        conn_close(conn);
}

static void conn_write(kf_conn_t *conn, const void *data, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    if (conn_writev(conn, &buf, 1) != 0)
        conn_close(conn);
}

size_t kf_req_output_queued(const kf_req_t *req)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&req->conn->tcp);
}

const char *kf_req_peer(const kf_req_t *req)
{
    return req->conn->peer;
}

/* ---- closing ---- */

static void close_cb(uv_handle_t *handle)
{
    kf_conn_t *conn = (kf_conn_t *)handle;
    kf_server_t *server = conn->server;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        server->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    server->conn_count--;
    address_release(server, conn);
    kf_buf_free(&conn->rbuf);
    kf_buf_free(&conn->deferred);
    kf_buf_free(&conn->req.resp_headers);
    free(conn);
    server_handle_closed(server);
}

/* How long a gracefully closed connection drains the peer's input before it is closed anyway. */
#define LINGER_MS 2000

static void close_handle(kf_conn_t *conn)
{
    if (conn->handle_closing)
        return;
    conn->handle_closing = true;
    uv_close((uv_handle_t *)&conn->tcp, close_cb);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    kf_conn_t *conn = req->data;
    free(req);
    if (status == 0 && conn->lingering && !conn->peer_done && !conn->server->stopping) {
        conn->shut_down = true; /* the peer's EOF, or the sweep, closes it */
        return;
    }
    close_handle(conn);
}

/* Runs the abort callback of a request that dies unanswered. */
static void abort_request(kf_conn_t *conn)
{
    kf_req_t *req = &conn->req;
    if (!conn->in_request || req->finished || req->abort_cb == NULL)
        return;
    kf_req_abort_cb cb = req->abort_cb;
    req->abort_cb = NULL;
    req->finished = true;
    cb(req, req->abort_data);
}

/* Runs the end callback of the current request, once. */
static void end_request(kf_req_t *req)
{
    kf_req_end_cb cb = req->end_cb;
    if (cb == NULL)
        return;
    req->end_cb = NULL;
    cb(req, req->end_data);
}

static void conn_close(kf_conn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    abort_request(conn);
    end_request(&conn->req);
    if (conn->reading)
        uv_read_stop((uv_stream_t *)&conn->tcp);
    close_handle(conn);
}

/* Closes after everything queued has been written (a response that says Connection: close). */
static void conn_close_gracefully(kf_conn_t *conn)
{
    if (conn->closing)
        return;
    flush_deferred(conn);
    if (conn->closing)
        return;
    conn->closing = true;
    abort_request(conn);
    end_request(&conn->req);
    if (conn->reading && !conn->server->stopping) {
        conn->lingering = true;
        conn->linger_until_ms = uv_now(conn->server->loop) + LINGER_MS;
    } else if (conn->reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
    }
    uv_shutdown_t *sreq = kf_xmalloc(sizeof *sreq);
    sreq->data = conn;
    if (uv_shutdown(sreq, (uv_stream_t *)&conn->tcp, shutdown_cb) != 0) {
        free(sreq);
        close_handle(conn);
    }
}

/* ---- responses ---- */

static const char *status_text(int status)
{
    switch (status) {
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

int kf_resp_header(kf_req_t *req, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
        return KF_EINVAL;
    kf_buf_t *h = &req->resp_headers;
    kf_buf_append_str(h, name);
    kf_buf_append(h, ": ", 2);
    kf_buf_append_str(h, value);
    kf_buf_append(h, "\r\n", 2);
    return 0;
}

typedef enum { BODY_LENGTH, BODY_CHUNKED, BODY_NONE } body_mode_t;

/* Writes the status line and headers; mode says how the body is framed. */
/* Writes the response head, and body (len bytes, may be NULL) behind it in the same write: one
 * system call and one packet for a small response. */
static void write_head(kf_req_t *req, int status, const char *content_type, size_t len,
                       body_mode_t mode, const void *body)
{
    kf_conn_t *conn = req->conn;
    kf_buf_t head;
    kf_buf_init(&head);
    /* Room for the usual head and the body: one allocation. */
    kf_buf_reserve(&head, 384 + req->resp_headers.len + (body != NULL ? len : 0));
    kf_buf_printf(&head,
                  "HTTP/1.1 %d %s\r\nServer: kefu\r\nX-Content-Type-Options: nosniff\r\n"
                  "Referrer-Policy: no-referrer\r\n",
                  status, status_text(status));
    if (content_type != NULL)
        kf_buf_printf(&head, "Content-Type: %s\r\n", content_type);
    /* Only HTML pages are documents to render or frame, and their handlers set their own policy;
     * nothing else (JSON, event streams, scripts, redirects) may load, run or be framed. */
    if (mode != BODY_NONE && (content_type == NULL || strncmp(content_type, "text/html", 9) != 0))
        kf_buf_append_str(
            &head, "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n");
    bool chunked = mode == BODY_CHUNKED;
    if (chunked)
        kf_buf_append_str(&head, req->minor_version >= 1 ? "Transfer-Encoding: chunked\r\n" : "");
    else if (mode == BODY_LENGTH)
        kf_buf_printf(&head, "Content-Length: %zu\r\n", len);
    if (conn->close_after || conn->server->stopping || (chunked && req->minor_version == 0))
        conn->close_after = true;
    if (mode != BODY_NONE)
        kf_buf_append_str(&head, conn->close_after ? "Connection: close\r\n" : "");
    if (req->resp_headers.len > 0)
        kf_buf_append(&head, req->resp_headers.data, req->resp_headers.len);
    kf_buf_append_str(&head, "\r\n");
    if (body != NULL && !req->head_only)
        kf_buf_append(&head, body, len);
    /* A stream's or an upgrade's first bytes follow at once (a heartbeat, a replay): inside the
     * handler, the head waits for them, to leave in one write (process() writes it alone if
     * nothing follows). */
    if (mode != BODY_LENGTH && conn->dispatching && conn->deferred.len == 0) {
        conn->deferred = head;
        req->status = status;
        return;
    }
    conn_write(conn, head.data, head.len);
    kf_buf_free(&head);
    req->status = status;
}

/* The current request is answered: consume its bytes and go on with the next one. */
static void request_done(kf_conn_t *conn)
{
    kf_req_t *req = &conn->req;
    req->finished = true;
    end_request(req);
    if (conn->closing)
        return;
    if (conn->close_after) {
        conn_close_gracefully(conn);
        return;
    }
    if (conn->dispatching)
        return; /* process() sees finished and moves on */
    conn->in_request = false;
    kf_buf_consume(&conn->rbuf, conn->req_bytes);
    conn->req_bytes = 0;
    conn->idle_since_ms = uv_now(conn->server->loop);
    process(conn);
}

void kf_resp_send(kf_req_t *req, int status, const char *content_type, const void *body, size_t len)
{
    if (req->finished || req->streaming)
        return;
    write_head(req, status, content_type, len, BODY_LENGTH, body);
    request_done(req->conn);
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
    json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    kf_resp_json_text(req, status, text, text != NULL ? strlen(text) : 0);
    free(text);
}

int kf_req_on_end(kf_req_t *req, kf_req_end_cb end_cb, void *data)
{
    if (req->finished || req->conn->closing)
        return KF_EINVAL;
    req->end_cb = end_cb;
    req->end_data = data;
    return 0;
}

void kf_req_hold(kf_req_t *req, kf_req_abort_cb abort_cb, void *data)
{
    req->held = true;
    req->abort_cb = abort_cb;
    req->abort_data = data;
}

int kf_resp_stream_start(kf_req_t *req, int status, const char *content_type,
                         kf_req_abort_cb abort_cb, void *data)
{
    if (req->finished || req->conn->closing)
        return KF_EINVAL;
    kf_req_hold(req, abort_cb, data);
    req->streaming = true;
    write_head(req, status, content_type, 0, BODY_CHUNKED, NULL);
    return 0;
}

int kf_resp_stream_write(kf_req_t *req, const void *data, size_t len)
{
    kf_conn_t *conn = req->conn;
    if (req->finished || conn->closing)
        return KF_EINVAL;
    if (len == 0)
        return 0;
    if (kf_req_output_queued(req) > conn->server->config.max_output) {
        /* A reader that does not read: drop it rather than buffer without bound. The caller
         * cleans up as on abort, so the abort callback is not run. */
        req->abort_cb = NULL;
        req->finished = true;
        conn_close(conn);
        return KF_ELIMIT;
    }
    if (req->minor_version >= 1) {
        char size_line[24];
        int n = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
        /* One write per chunk: size line, data and CRLF together. */
        uv_buf_t bufs[3] = {uv_buf_init(size_line, (unsigned)n),
                            uv_buf_init((char *)data, (unsigned)len), uv_buf_init("\r\n", 2)};
        if (conn_writev(conn, bufs, 3) != 0) {
            req->abort_cb = NULL;
            req->finished = true;
            conn_close(conn);
            return KF_EIO;
        }
    } else {
        conn_write(conn, data, len);
    }
    return 0;
}

void kf_resp_stream_end(kf_req_t *req)
{
    if (req->finished)
        return;
    if (req->minor_version >= 1)
        conn_write(req->conn, "0\r\n\r\n", 5);
    else
        req->conn->close_after = true;
    req->abort_cb = NULL;
    request_done(req->conn);
}

int kf_req_upgrade(kf_req_t *req, kf_raw_read_cb read_cb, kf_req_abort_cb abort_cb, void *data)
{
    kf_conn_t *conn = req->conn;
    if (req->finished || req->streaming || req->held || conn->close_after)
        return KF_EINVAL;
    kf_req_hold(req, abort_cb, data);
    write_head(req, 101, NULL, 0, BODY_NONE, NULL);
    conn->upgraded = true;
    conn->raw_read = read_cb;
    return 0;
}

kf_conn_t *kf_req_conn(kf_req_t *req)
{
    return req->conn;
}

int kf_conn_write(kf_conn_t *conn, const void *data, size_t len)
{
    if (conn->closing)
        return KF_EINVAL;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&conn->tcp) >
        conn->server->config.max_output) {
        conn->req.abort_cb = NULL;
        conn->req.finished = true;
        conn_close(conn);
        return KF_ELIMIT;
    }
    conn_write(conn, data, len);
    return conn->closing ? KF_EIO : 0;
}

size_t kf_conn_queued(const kf_conn_t *conn)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&conn->tcp);
}

void kf_conn_close(kf_conn_t *conn, bool flush)
{
    conn->req.abort_cb = NULL;
    conn->req.finished = true;
    if (flush)
        conn_close_gracefully(conn);
    else
        conn_close(conn);
}

/* Hands buffered bytes of an upgraded connection to its reader. */
static void feed_raw(kf_conn_t *conn)
{
    while (!conn->closing && conn->rbuf.len > 0) {
        size_t used = conn->raw_read(conn->req.abort_data, conn->rbuf.data, conn->rbuf.len);
        if (conn->closing || used == 0)
            break;
        kf_buf_consume(&conn->rbuf, used);
    }
    if (!conn->closing && conn->rbuf.len == 0)
        kf_buf_free(&conn->rbuf);
}

/* ---- reading and framing ---- */

/* Answers a framing error and closes: the rest of the stream cannot be trusted. */
static void reject(kf_conn_t *conn, int status, const char *code, const char *message)
{
    static const kf_http_request_t no_head = {.minor_version = 1, .content_length = -1};
    kf_req_t *req = &conn->req;
    req->head = &no_head;
    req->minor_version = 1;
    req->head_only = false;
    req->finished = false;
    req->streaming = false;
    req->held = false;
    req->abort_cb = NULL;
    req->end_cb = NULL;
    conn->in_request = true;
    conn->served = true;
    conn->close_after = true;
    kf_resp_error(req, status, code, message);
}

static void parse_error(kf_conn_t *conn, int rc)
{
    switch (rc) {
    case KF_HTTP_ELENGTH:
        reject(conn, 411, "length_required",
               "chunked request bodies are not accepted; send Content-Length");
        break;
    case KF_HTTP_EURI_TOO_LONG:
        reject(conn, 414, "uri_too_long", "the request line is too long");
        break;
    case KF_HTTP_EHEADERS:
        reject(conn, 431, "headers_too_large", "the request headers are too large");
        break;
    case KF_HTTP_ENOT_IMPL:
        reject(conn, 501, "not_implemented", "unsupported Transfer-Encoding");
        break;
    case KF_HTTP_EVERSION:
        reject(conn, 505, "http_version", "only HTTP/1.0 and HTTP/1.1 are supported");
        break;
    default: reject(conn, 400, "bad_request", "malformed HTTP request"); break;
    }
}

/* After a handler (or a resumed handler) returns: writes what it deferred, and moves on to the
 * next pipelined request when it answered. True when process() may go on parsing. */
static bool after_dispatch(kf_conn_t *conn)
{
    kf_req_t *req = &conn->req;
    conn->dispatching = false;
    flush_deferred(conn);
    req->head = NULL; /* its stack frame ends here */
    req->body = NULL;
    if (conn->closing)
        return false;
    if (conn->upgraded) {
        kf_buf_consume(&conn->rbuf, conn->req_bytes);
        conn->req_bytes = 0;
        feed_raw(conn);
        return false;
    }
    if (!req->finished) {
        /* Held or streaming: the views into rbuf are no longer used, so reading on (to see
         * the client go away) may grow the buffer freely. */
        return false;
    }
    if (conn->close_after) {
        conn_close_gracefully(conn);
        return false;
    }
    conn->in_request = false;
    kf_buf_consume(&conn->rbuf, conn->req_bytes);
    conn->req_bytes = 0;
    conn->idle_since_ms = uv_now(conn->server->loop);
    return true;
}

void kf_req_resume(kf_req_t *req, void (*fn)(kf_req_t *req, void *data), void *data)
{
    kf_conn_t *conn = req->conn;
    assert(conn->in_request && req->held && !req->streaming && !req->finished && !conn->upgraded &&
           !conn->dispatching);
    /* The request's bytes stay at the front of the buffer until it is answered (reading on only
     * appends), so its head parses again to the same views: nothing was kept meanwhile. */
    kf_http_request_t head;
    int rc =
        kf_http_parse_request(conn->rbuf.data, conn->rbuf.len, &conn->server->config.limits, &head);
    assert(rc > 0);
    size_t head_len = (size_t)rc;
    req->head = &head;
    req->body = req->body_len > 0 ? conn->rbuf.data + head_len : NULL;
    /* fn decides afresh, as a handler does: it may hold again, stream, or upgrade (which a held
     * request may not). */
    req->held = false;
    conn->dispatching = true;
    fn(req, data);
    if (after_dispatch(conn))
        process(conn);
    else if (!conn->closing && conn->rbuf.len == 0 && !conn->in_request)
        kf_buf_free(&conn->rbuf);
}

void kf_req_detach(kf_req_t *req)
{
    req->abort_cb = NULL;
}

/* Parses and dispatches every complete request in the buffer, one at a time. */
static void process(kf_conn_t *conn)
{
    kf_server_t *server = conn->server;
    while (!conn->closing && !conn->in_request && conn->rbuf.len > 0) {
        kf_req_t *req = &conn->req;
        kf_http_request_t head;
        int rc =
            kf_http_parse_request(conn->rbuf.data, conn->rbuf.len, &server->config.limits, &head);
        if (rc == KF_HTTP_INCOMPLETE)
            break;
        if (rc < 0) {
            parse_error(conn, rc);
            return;
        }
        size_t head_len = (size_t)rc;
        size_t body_len = head.content_length > 0 ? (size_t)head.content_length : 0;
        if (head.content_length > 0 && (uint64_t)head.content_length > server->config.max_body) {
            reject(conn, 413, "too_large", "the request body is too large");
            return;
        }
        if (conn->rbuf.len < head_len + body_len)
            break; /* the body is still coming */
        req->head = &head;
        req->minor_version = head.minor_version;
        req->head_only = kf_str_eq(head.method, "HEAD");
        req->body = body_len > 0 ? conn->rbuf.data + head_len : NULL;
        req->body_len = body_len;
        req->started_ms = uv_now(server->loop);
        req->status = 0;
        req->held = false;
        req->streaming = false;
        req->finished = false;
        req->abort_cb = NULL;
        req->abort_data = NULL;
        req->end_cb = NULL;
        req->end_data = NULL;
        kf_buf_reset(&req->resp_headers);
        conn->req_bytes = head_len + body_len;
        conn->in_request = true;
        conn->close_after = !head.keep_alive;
        conn->request_started_ms = 0;
        conn->served = true;
        conn->dispatching = true;
        server->handler(req);
        if (!after_dispatch(conn))
            return;
    }
    if (!conn->closing && conn->rbuf.len == 0 && !conn->in_request)
        kf_buf_free(&conn->rbuf); /* idle connections hold no buffer */
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init(read_chunk, sizeof read_chunk);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    kf_conn_t *conn = (kf_conn_t *)stream;
    kf_server_t *server = conn->server;
    if (conn->lingering) { /* closing: what comes now is dropped */
        if (nread < 0) {
            conn->peer_done = true;
            if (conn->shut_down)
                close_handle(conn);
        }
        return;
    }
    if (nread < 0) {
        conn_close(conn);
        return;
    }
    if (nread == 0)
        return;
    if (conn->upgraded) {
        kf_buf_append(&conn->rbuf, buf->base, (size_t)nread);
        feed_raw(conn);
        return;
    }
    if (conn->rbuf.len == 0 && !conn->in_request)
        conn->request_started_ms = uv_now(server->loop);
    /* While a request is held, a client may pipeline more; cap what we keep for it. */
    size_t cap = server->config.limits.max_header_bytes + server->config.max_body;
    if (conn->rbuf.len + (size_t)nread > cap + (size_t)READ_CHUNK) {
        if (conn->in_request) {
            uv_read_stop(stream);
            conn->reading = false;
        }
    }
    kf_buf_append(&conn->rbuf, buf->base, (size_t)nread);
    if (!conn->in_request)
        process(conn);
}

static void accept_cb(uv_stream_t *listener, int status)
{
    kf_server_t *server = listener->data;
    if (status < 0)
        return;
    kf_conn_t *conn = kf_xcalloc(1, sizeof *conn);
    conn->server = server;
    kf_buf_init(&conn->rbuf);
    kf_buf_init(&conn->req.resp_headers);
    conn->req.conn = conn;
    conn->req.server = server;
    conn->req.app = server->app;
    uv_tcp_init(server->loop, &conn->tcp);
    server->open_handles++;
    conn->next = server->conns;
    if (server->conns != NULL)
        server->conns->prev = conn;
    server->conns = conn;
    server->conn_count++;
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0 || server->stopping ||
        server->conn_count > server->config.max_connections) {
        conn->closing = true;
        close_handle(conn);
        return;
    }
    /* TCP_NODELAY comes from the listener: Linux copies it to every accepted socket. */
    struct sockaddr_storage addr;
    int addr_len = sizeof addr;
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&addr, &addr_len) == 0) {
        if (addr.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&addr, conn->peer, sizeof conn->peer);
        else
            uv_ip4_name((struct sockaddr_in *)&addr, conn->peer, sizeof conn->peer);
        /* Refused without an answer: an answer would have to wait for the request, and holding
         * the connection that long is what the limit is against. */
        if (!address_admit(server, conn, &addr)) {
            conn_close(conn);
            return;
        }
    }
    conn->idle_since_ms = uv_now(server->loop);
    if (uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb) == 0)
        conn->reading = true;
    else
        conn_close(conn);
}

/* One pass over every connection: slow request heads, idle keep-alive connections, and new
 * connections that send nothing (they get the head's time, not the keep-alive idle time). */
static void sweep_cb(uv_timer_t *timer)
{
    kf_server_t *server = timer->data;
    uint64_t now = uv_now(server->loop);
    kf_conn_t *next;
    for (kf_conn_t *conn = server->conns; conn != NULL; conn = next) {
        next = conn->next;
        if (conn->lingering && now >= conn->linger_until_ms)
            close_handle(conn); /* also when our FIN still waits behind unread output */
        if (conn->closing || conn->in_request)
            continue;
        if (conn->rbuf.len > 0 && conn->request_started_ms != 0 &&
            now - conn->request_started_ms >= server->config.header_timeout_ms) {
            reject(conn, 408, "timeout", "the request took too long to arrive");
        } else if (conn->rbuf.len == 0 &&
                   now - conn->idle_since_ms >= (conn->served ? server->config.idle_timeout_ms
                                                              : server->config.header_timeout_ms)) {
            conn_close(conn);
        }
    }
}

static void listener_closed_cb(uv_handle_t *handle)
{
    server_handle_closed(handle->data);
}

int kf_server_start(uv_loop_t *loop, const kf_server_config_t *config, kf_handler_fn handler,
                    void *app, kf_server_t **out)
{
    kf_server_t *server = kf_xcalloc(1, sizeof *server);
    server->loop = loop;
    server->config = *config;
    server->handler = handler;
    server->app = app;
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(config->host, config->port, (struct sockaddr_in *)&addr);
    if (rc != 0)
        rc = uv_ip6_addr(config->host, config->port, (struct sockaddr_in6 *)&addr);
    if (rc != 0) {
        free(server);
        return rc;
    }
    uv_tcp_init(loop, &server->listener);
    server->listener.data = server;
    server->open_handles = 1;
    rc = uv_tcp_bind(&server->listener, (struct sockaddr *)&addr, 0);
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
        return rc;
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
    kf_conn_t *next;
    for (kf_conn_t *conn = server->conns; conn != NULL; conn = next) {
        next = conn->next;
        if (conn->lingering) {
            close_handle(conn);
            continue;
        }
        if (conn->in_request && !conn->req.finished && (conn->req.held || conn->req.streaming)) {
            /* The push layer answers its long polls and ends its streams before the server
             * stops; whatever is still held is released through its abort callback. */
            conn_close_gracefully(conn);
        } else if (!conn->in_request) {
            conn_close(conn);
        } else {
            conn->close_after = true;
        }
    }
}
