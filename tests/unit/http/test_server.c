/* test_server.c: the HTTP server over real loopback sockets, on one thread: the test's clients are
 * libuv TCP handles on the server's own loop, each test runs the loop until the callbacks it
 * waits for have come (never sleeping), and every handle is closed at the end. Covers keep-alive,
 * pipelining, split reads, limits, timeouts, held, resumed, detached, streamed and upgraded
 * responses, graceful closes, paused parsing, a peer's half-close or reset, and shutdown. It looks
 * inside the server (http/server_int.h) only to know when the server has done what the test waits
 * for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "http/server_int.h"

typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_shutdown_t shutdown; /* client_shutdown's */
    kf_buf_t in;            /* everything received */
    bool connected;         /* the connect callback came (status 0) */
    bool eof;               /* the server closed its side (or the connection failed) */
    bool reset;             /* ...with an error other than EOF */
    bool closed;            /* the handle's close callback came */
} client_t;

typedef struct fixture {
    uv_loop_t loop;
    uv_timer_t deadline; /* run_until's guard */
    bool timed_out;
    kf_server_t *server;
    bool server_done; /* kf_server_stop's callback ran */
    int port;
    kf_req_t *held;   /* the request held by /hold, /poll or /resume, or NULL */
    kf_req_t *stream; /* the request streaming from /stream */
    kf_conn_t *upgraded;
    int handled;        /* requests seen by the handler */
    int aborted;        /* abort callbacks */
    int ended;          /* end callbacks (every request asks for one) */
    int resumed;        /* resume functions run */
    int writes_done;    /* the clients' write callbacks */
    int late_on_end_rc; /* kf_req_on_end after the answer, from /answered */
    int stream_rc;      /* kf_resp_stream_start's return, from /stream */
    int stream_late_rc; /* the same, once the request was answered, from /answered-stream */
} fixture_t;

/* The server's configuration for the group being set up. */
static size_t group_per_address_limit;
static fixture_t *fx;

/* ---- the handler ---- */

static void abort_cb(kf_req_t *req, void *data)
{
    (void)data;
    if (req == fx->held)
        fx->held = NULL;
    if (req == fx->stream)
        fx->stream = NULL;
    fx->aborted++;
}

static void end_cb(kf_req_t *req, void *data)
{
    (void)req;
    (void)data;
    fx->ended++;
}

/* The upgraded protocol: echoes what it gets upper-cased; "bye" closes after the echo. */
static size_t raw_read_cb(void *data, char *buf, size_t len)
{
    kf_conn_t *conn = data;
    char out[256] = {0};
    size_t n = len < sizeof out ? len : sizeof out;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(buf[i] >= 'a' && buf[i] <= 'z' ? buf[i] - 32 : buf[i]);
    assert_int_equal(kf_conn_write(conn, out, n), 0);
    if (n >= 3 && memcmp(buf + n - 3, "bye", 3) == 0)
        kf_conn_close(conn, true);
    return n;
}

static void upgrade_abort_cb(kf_req_t *req, void *data)
{
    (void)req;
    (void)data;
    fx->upgraded = NULL;
    fx->aborted++;
}

static void handler(kf_req_t *req)
{
    fx->handled++;
    kf_str_t path = req->head->path;
    assert_int_equal(kf_req_on_end(req, end_cb, NULL), 0);
    if (kf_str_eq(path, "/answered")) {
        kf_resp_send(req, 200, "text/plain", "ok", 2);
        fx->late_on_end_rc = kf_req_on_end(req, end_cb, NULL);
        fx->stream_late_rc = kf_resp_stream_start(req, 200, "text/plain", abort_cb, NULL);
        return;
    }
    if (kf_str_eq(path, "/hold") || kf_str_eq(path, "/resume")) {
        fx->held = req;
        kf_req_hold(req, abort_cb, NULL);
        return;
    }
    if (kf_str_eq(path, "/poll")) { /* held for news only, as a long poll */
        fx->held = req;
        kf_req_hold(req, abort_cb, NULL);
        kf_req_end_on_eof(req);
        return;
    }
    if (kf_str_eq(path, "/stream")) {
        fx->stream_rc = kf_resp_stream_start(req, 200, "text/plain", abort_cb, NULL);
        if (fx->stream_rc != 0)
            return;
        fx->stream = req;
        kf_resp_stream_write(req, "one", 3);
        kf_resp_stream_write(req, "two", 3);
        return;
    }
    if (kf_str_eq(path, "/upgrade")) {
        kf_conn_t *conn = kf_req_conn(req);
        kf_resp_header(req, "Upgrade", "echo");
        assert_int_equal(kf_req_upgrade(req, raw_read_cb, upgrade_abort_cb, conn), 0);
        fx->upgraded = conn;
        return;
    }
    if (kf_str_eq(path, "/echo")) {
        kf_resp_send(req, 200, "text/plain", req->body, req->body_len);
        return;
    }
    if (kf_str_eq(path, "/upload")) { /* its length: the body may be large */
        char text[32];
        int n = snprintf(text, sizeof text, "got=%zu", req->body_len);
        kf_resp_send(req, 200, "text/plain", text, (size_t)n);
        return;
    }
    if (kf_str_eq(path, "/big")) {
        static char big[32 * 1024];
        memset(big, 'b', sizeof big);
        kf_resp_send(req, 200, "text/plain", big, sizeof big);
        return;
    }
    if (kf_str_eq(path, "/peer")) {
        char body[96];
        char key[KF_PEER_SIZE];
        kf_req_peer_key(req, key);
        int n = snprintf(body, sizeof body, "key=%s", key);
        kf_resp_send(req, 200, "text/plain", body, (size_t)n);
        return;
    }
    if (kf_str_eq(path, "/badheader")) {
        assert_int_equal(kf_resp_header(req, "X-Test", "a\r\nSet-Cookie: evil=1"), KF_EINVAL);
        kf_resp_send(req, 200, "text/plain", "ok", 2);
        return;
    }
    char body[256];
    int n = snprintf(body, sizeof body, "path=%.*s", (int)path.len, path.ptr);
    kf_resp_send(req, 200, "text/plain", body, (size_t)n);
}

/* ---- running the loop ---- */

static void deadline_cb(uv_timer_t *timer)
{
    (void)timer;
    fx->timed_out = true;
}

/* Runs the loop until done(arg) holds or timeout_ms pass; returns done(arg). */
static bool run_until(bool (*done)(const void *arg), const void *arg, uint64_t timeout_ms)
{
    fx->timed_out = false;
    uv_timer_start(&fx->deadline, deadline_cb, timeout_ms, 0);
    while (!done(arg) && !fx->timed_out)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->deadline);
    return done(arg);
}

typedef struct count_wait {
    const int *counter;
    int want;
} count_wait_t;

static bool count_reached(const void *arg)
{
    const count_wait_t *w = arg;
    return *w->counter >= w->want;
}

/* Runs until *counter reaches want (2 s at most) and asserts it did, and no further. */
static void wait_count(const int *counter, int want)
{
    count_wait_t w = {counter, want};
    run_until(count_reached, &w, 2000);
    assert_int_equal(*counter, want);
}

/* ---- clients ---- */

static void client_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    client_t *c = handle->data;
    kf_buf_reserve(&c->in, 65536);
    c->in.data[c->in.len] = '\0'; /* an EOF with nothing read still reads as text */
    *buf = uv_buf_init(c->in.data + c->in.len, 65536);
}

static void client_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    client_t *c = stream->data;
    if (nread > 0) {
        c->in.len += (size_t)nread;
        c->in.data[c->in.len] = '\0';
    } else if (nread < 0) {
        c->eof = true;
        c->reset = nread != UV_EOF;
        uv_read_stop(stream);
    }
}

static void client_connect_cb(uv_connect_t *req, int status)
{
    client_t *c = req->handle->data;
    c->connected = status == 0;
    c->eof = status != 0;
    if (status == 0)
        uv_read_start((uv_stream_t *)&c->tcp, client_alloc_cb, client_read_cb);
}

static bool client_connected(const void *arg)
{
    const client_t *c = arg;
    return c->connected || c->eof;
}

/* A client connected from source (an address on loopback, e.g. 127.0.0.2); with a small receive
 * buffer, so that what it does not read backs up into the server quickly. */
static client_t *client_from(const char *source, bool small_window)
{
    client_t *c = kf_xcalloc(1, sizeof *c);
    kf_buf_init(&c->in);
    assert_int_equal(uv_tcp_init_ex(&fx->loop, &c->tcp, AF_INET), 0);
    c->tcp.data = c;
    if (small_window) {
        int size = 4096;
        assert_int_equal(uv_recv_buffer_size((uv_handle_t *)&c->tcp, &size), 0);
    }
    struct sockaddr_in local, addr;
    uv_ip4_addr(source, 0, &local);
    assert_int_equal(uv_tcp_bind(&c->tcp, (struct sockaddr *)&local, 0), 0);
    uv_ip4_addr("127.0.0.1", fx->port, &addr);
    assert_int_equal(
        uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&addr, client_connect_cb), 0);
    assert_true(run_until(client_connected, c, 2000));
    assert_true(c->connected);
    return c;
}

static client_t *client(void)
{
    return client_from("127.0.0.1", false);
}

typedef struct client_write {
    uv_write_t req;
    char data[];
} client_write_t;

static void client_write_cb(uv_write_t *req, int status)
{
    (void)status; /* a write to a closed server is what some tests do */
    free(req);
    fx->writes_done++;
}

static void client_send(client_t *c, const char *data, size_t len)
{
    client_write_t *w = kf_xmalloc(sizeof *w + len);
    memcpy(w->data, data, len);
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    assert_int_equal(uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, client_write_cb), 0);
}

static void client_send_str(client_t *c, const char *text)
{
    client_send(c, text, strlen(text));
}

/* Ends c's side of the connection (a TCP half-close: FIN after what was sent); c still reads. */
static void client_shutdown(client_t *c)
{
    assert_int_equal(uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, NULL), 0);
}

/* Closes c with a reset rather than a FIN (SO_LINGER 0): a peer that is gone, not one that
 * has only finished sending. */
static void client_reset(client_t *c)
{
    uv_os_fd_t fd;
    assert_int_equal(uv_fileno((uv_handle_t *)&c->tcp, &fd), 0);
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger), 0);
}

static void client_pause(client_t *c)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static void client_resume(client_t *c)
{
    uv_read_start((uv_stream_t *)&c->tcp, client_alloc_cb, client_read_cb);
}

typedef struct text_wait {
    const client_t *c;
    const char *want;
    int times;
} text_wait_t;

static int count(const char *haystack, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static bool text_arrived(const void *arg)
{
    const text_wait_t *w = arg;
    return w->c->eof || (w->c->in.data != NULL && count(w->c->in.data, w->want) >= w->times);
}

/* Runs until want has come times times (or the server closed); returns what came so far. */
static const char *wait_text_times(client_t *c, const char *want, int times, uint64_t timeout_ms)
{
    text_wait_t w = {c, want, times};
    run_until(text_arrived, &w, timeout_ms);
    const char *in = c->in.data != NULL ? c->in.data : "";
    if (count(in, want) < times)
        fail_msg("want %d x \"%s\", got: %.300s", times, want, in);
    return in;
}

static const char *wait_text(client_t *c, const char *want)
{
    return wait_text_times(c, want, 1, 3000);
}

typedef struct byte_wait {
    const client_t *c;
    size_t len;
} byte_wait_t;

static bool bytes_arrived(const void *arg)
{
    const byte_wait_t *w = arg;
    return w->c->eof || w->c->in.len >= w->len;
}

static bool client_eof(const void *arg)
{
    return ((const client_t *)arg)->eof;
}

/* Runs until the server closes c (timeout_ms at most); returns everything c received. */
static const char *wait_eof(client_t *c, uint64_t timeout_ms)
{
    assert_true(run_until(client_eof, c, timeout_ms));
    return c->in.data != NULL ? c->in.data : "";
}

static void client_close_cb(uv_handle_t *handle)
{
    client_t *c = handle->data;
    c->closed = true;
}

static bool client_closed(const void *arg)
{
    return ((const client_t *)arg)->closed;
}

/* Closes c and frees it once its handle is closed. */
static void client_close(client_t *c)
{
    uv_close((uv_handle_t *)&c->tcp, client_close_cb);
    assert_true(run_until(client_closed, c, 2000));
    kf_buf_free(&c->in);
    free(c);
}

/* Clears what c received so far. */
static void client_forget(client_t *c)
{
    kf_buf_reset(&c->in);
}

/* The server side of the only connection open, for waiting on its state. */
static kf_conn_t *only_conn(void)
{
    kf_list_t *first = kf_list_first(&fx->server->conns);
    assert_non_null(first);
    assert_true(first == kf_list_last(&fx->server->conns));
    return KF_CONTAINER_OF(first, kf_conn_t, link);
}

typedef struct state_wait {
    conn_state_t state;
    size_t rbuf_at_least;
} state_wait_t;

static bool conn_reached(const void *arg)
{
    const state_wait_t *w = arg;
    kf_list_t *first = kf_list_first(&fx->server->conns);
    if (first == NULL)
        return false;
    const kf_conn_t *conn = KF_CONTAINER_OF(first, kf_conn_t, link);
    return conn->state == w->state && conn->rbuf.len >= w->rbuf_at_least;
}

/* Runs until the only connection is in state with at least rbuf_at_least bytes buffered. */
static void wait_conn(conn_state_t state, size_t rbuf_at_least)
{
    state_wait_t w = {state, rbuf_at_least};
    assert_true(run_until(conn_reached, &w, 5000));
}

static bool no_connections(const void *arg)
{
    (void)arg;
    return kf_server_connection_count(fx->server) == 0;
}

static bool three_connections(const void *arg)
{
    (void)arg;
    return kf_server_connection_count(fx->server) == 3;
}

/* ---- fixture ---- */

/* The server's body_limit: 200000 bytes for POST /upload, max_body (1024) elsewhere. */
static size_t body_limit_cb(void *app, const kf_http_request_t *head)
{
    (void)app;
    return kf_str_eq(head->method, "POST") && kf_str_eq(head->path, "/upload") ? 200000 : 0;
}

static int setup(void **state)
{
    fx = kf_xcalloc(1, sizeof *fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->deadline);
    kf_server_config_t config;
    kf_server_config_default(&config);
    config.port = 0;
    config.max_body = 1024;
    config.header_timeout_ms = 1500;
    config.limits.max_header_bytes = 2048;
    config.max_output = 64 * 1024;
    config.max_connections_per_address = group_per_address_limit;
    config.body_limit = body_limit_cb;
    assert_int_equal(kf_server_start(&fx->loop, &config, handler, NULL, &fx->server), 0);
    fx->port = kf_server_port(fx->server);
    assert_true(fx->port > 0);
    *state = fx;
    return 0;
}

static void server_done_cb(void *data)
{
    (void)data;
    fx->server_done = true;
}

static void handle_closed_cb(uv_handle_t *handle)
{
    (void)handle;
}

static int teardown(void **state)
{
    (void)state;
    kf_server_stop(fx->server, server_done_cb, NULL);
    uv_close((uv_handle_t *)&fx->deadline, handle_closed_cb);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(fx->server_done);
    assert_int_equal(uv_loop_close(&fx->loop), 0); /* every handle closed */
    free(fx);
    return 0;
}

/* ---- tests ---- */

static void test_keep_alive(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    const char *r = wait_text(c, "path=/a");
    assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(r, "Content-Length: 7\r\n"));
    assert_non_null(strstr(r, "X-Content-Type-Options: nosniff"));
    client_send_str(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_text(c, "path=/b");
    assert_false(c->eof);
    client_close(c);
}

static void test_pipelined(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 5\r\n\r\nhelloGET /3 HTTP/1.1\r\nHost: x\r\n"
                       "Connection: close\r\n\r\n");
    const char *r = wait_eof(c, 3000);
    const char *a = strstr(r, "path=/1"), *b = strstr(r, "hello"), *d = strstr(r, "path=/3");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(d);
    assert_true(a < b && b < d); /* answered in order */
    assert_non_null(strstr(r, "Connection: close"));
    assert_false(c->reset);
    client_close(c);
}

static void test_split_every_byte(void **state)
{
    (void)state;
    client_t *c = client();
    const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
    for (size_t i = 0; req[i] != '\0'; i++) {
        int before = fx->writes_done;
        client_send(c, &req[i], 1);
        wait_count(&fx->writes_done, before + 1);
        uv_run(&fx->loop, UV_RUN_NOWAIT); /* the server reads the byte, if it is there yet */
    }
    const char *r = wait_text(c, "abc");
    assert_non_null(strstr(r, "200 OK"));
    assert_non_null(strstr(r, "\r\n\r\nabc"));
    client_close(c);
}

static void expect_refusal(const char *request, size_t len, const char *status, const char *code)
{
    client_t *c = client();
    client_send(c, request, len);
    const char *r = wait_eof(c, 3000);
    if (strstr(r, status) == NULL)
        fail_msg("want %s, got: %.200s", status, r);
    assert_non_null(strstr(r, code));
    assert_non_null(strstr(r, "Connection: close"));
    client_close(c);
}

static void test_errors(void **state)
{
    (void)state;
    const char *big_body = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n";
    expect_refusal(big_body, strlen(big_body), "413", "\"too_large\"");
    const char *chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n0\r\n\r\n";
    expect_refusal(chunked, strlen(chunked), "411", "length_required");
    const char *bad = "GARBAGE\r\n\r\n";
    expect_refusal(bad, strlen(bad), "400", "bad_request");
    char huge[4096];
    int n = snprintf(huge, sizeof huge, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %03000d\r\n\r\n", 1);
    expect_refusal(huge, (size_t)n, "431", "headers_too_large");
    char line[4096];
    n = snprintf(line, sizeof line, "GET /%03000d HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    expect_refusal(line, (size_t)n, "431", "headers_too_large"); /* over the whole head's limit */
    const char *version = "GET / HTTP/2.0\r\nHost: x\r\n\r\n";
    expect_refusal(version, strlen(version), "505", "http_version");
    const char *te = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    expect_refusal(te, strlen(te), "501", "not_implemented");
    const char *not_last = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n";
    expect_refusal(not_last, strlen(not_last), "400", "the last transfer coding is not chunked");
    /* RFC 9112 §3.2: one Host, in HTTP/1.1. */
    const char *no_host = "GET /a HTTP/1.1\r\n\r\n";
    expect_refusal(no_host, strlen(no_host), "400", "Host");
    const char *two_hosts = "GET /a HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n";
    expect_refusal(two_hosts, strlen(two_hosts), "400", "Host");
    const char *bad_host = "GET /a HTTP/1.1\r\nHost: user@a\r\n\r\n";
    expect_refusal(bad_host, strlen(bad_host), "400", "Host");
    const char *unknown = "GET /a HTTP/1.1\r\nHost: x\r\nExpect: coffee\r\n\r\n";
    expect_refusal(unknown, strlen(unknown), "417 Expectation Failed", "expectation_failed");
}

static void test_http10(void **state)
{
    (void)state;
    /* Without Host, and closed after the answer. */
    client_t *c = client();
    client_send_str(c, "GET /old HTTP/1.0\r\n\r\n");
    const char *r = wait_eof(c, 3000);
    assert_non_null(strstr(r, "path=/old"));
    assert_int_equal(count(r, "HTTP/1.1 200"), 1);
    client_close(c);
    /* An expectation from HTTP/1.0 is ignored: no 100, no 417. */
    c = client();
    client_send_str(c, "POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    client_send_str(c, "hi");
    r = wait_eof(c, 3000);
    assert_null(strstr(r, "100 Continue"));
    assert_non_null(strstr(r, "\r\n\r\nhi"));
    client_close(c);
}

static void test_continue(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n"
                       "Content-Length: 4\r\n\r\n");
    const char *r = wait_text(c, "\r\n\r\n");
    assert_string_equal(r, "HTTP/1.1 100 Continue\r\n\r\n");
    client_send_str(c, "ab"); /* half the body: no second 100 */
    int before = fx->writes_done;
    wait_count(&fx->writes_done, before + 1);
    client_send_str(c, "cd");
    r = wait_text(c, "abcd");
    assert_int_equal(count(r, "100 Continue"), 1);
    assert_non_null(strstr(r, "HTTP/1.1 200 OK"));
    /* With the body already there, nothing interim. */
    client_forget(c);
    client_send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                       "Content-Length: 2\r\n\r\nok");
    r = wait_text(c, "\r\n\r\nok");
    assert_null(strstr(r, "100 Continue"));
    client_close(c);
}

static void test_header_injection(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c, "GET /badheader HTTP/1.1\r\nHost: x\r\n\r\n");
    const char *r = wait_text(c, "ok");
    assert_null(strstr(r, "evil"));
    client_close(c);
}

/* A route's own body limit (body_limit) holds for it alone; the rest keep max_body. */
static void test_body_limit_per_route(void **state)
{
    (void)state;
    static char body[150000];
    memset(body, 'u', sizeof body);
    client_t *c = client();
    client_send_str(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 150000\r\n\r\n");
    client_send(c, body, sizeof body);
    wait_text(c, "got=150000");
    client_send_str(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 200001\r\n\r\n");
    const char *r = wait_eof(c, 3000);
    assert_non_null(strstr(r, "413 "));
    client_close(c);
    c = client();
    client_send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n");
    r = wait_eof(c, 3000);
    assert_non_null(strstr(r, "413 "));
    client_close(c);
}

static bool nothing_yet(const void *arg)
{
    (void)arg;
    return false;
}

/* A body past max_body (an upload) has a second per 32 KiB beyond the head's time: 96 KiB
 * arriving over 2.5 s is served although header_timeout_ms is 1.5 s. */
static void test_large_body_has_more_time(void **state)
{
    (void)state;
    static char body[96 * 1024];
    memset(body, 'u', sizeof body);
    client_t *c = client();
    client_send_str(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 98304\r\n\r\n");
    client_send(c, body, 1000);
    assert_false(run_until(nothing_yet, NULL, 2500));
    assert_false(c->eof);
    client_send(c, body + 1000, sizeof body - 1000);
    wait_text(c, "got=98304");
    client_close(c);
}

static void test_slow_head_times_out(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    uint64_t start = kf_clock_mono_ms();
    const char *r = wait_eof(c, 4000); /* header_timeout_ms is 1.5 s, the sweep 1 s */
    assert_non_null(strstr(r, "408 Request Timeout"));
    assert_true(kf_clock_mono_ms() - start >= 1400);
    client_close(c);
    /* And it still serves others. */
    c = client();
    client_send_str(c, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_text(c, "path=/after");
    client_close(c);
}

/* A complete request and the start of another in one packet: the first is answered, and the
 * second still has only the head's time (issue 12: it used to live for ever). */
static void test_partial_behind_answered_times_out(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nX-Slow: ");
    const char *r = wait_eof(c, 4000);
    assert_non_null(strstr(r, "path=/first"));
    assert_non_null(strstr(r, "408 Request Timeout"));
    client_close(c);
}

/* A connection that never sends a request is closed after the head's timeout (1.5 s here), not
 * after the 75 s that a keep-alive connection may idle between requests. */
static void test_silent_connection_closed(void **state)
{
    (void)state;
    client_t *c = client();
    uint64_t start = kf_clock_mono_ms();
    const char *r = wait_eof(c, 4000);
    uint64_t took = kf_clock_mono_ms() - start;
    assert_string_equal(r, "");
    assert_true(took >= 1400);
    client_close(c);
}

static void test_held_then_answered(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c,
                    "GET /hold HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_conn(CONN_HELD, 0);
    assert_non_null(fx->held);
    kf_req_t *req = fx->held;
    fx->held = NULL;
    kf_resp_send(req, 200, "text/plain", "late", 4);
    const char *r = wait_text(c, "path=/next");
    const char *late = strstr(r, "late"), *next = strstr(r, "path=/next");
    assert_non_null(late);
    assert_true(late < next);
    client_close(c);
}

/* Far more pipelined behind a held request than the server keeps for it: it stops reading, and
 * reads on once the held one is answered (issue 12: it never read again). */
static void test_held_pipelining_resumes_reading(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_conn(CONN_HELD, 0);
    enum { N = 300 };
    kf_buf_t many;
    kf_buf_init(&many);
    for (int i = 0; i < N; i++)
        kf_buf_printf(&many, "GET /p%d HTTP/1.1\r\nHost: x\r\nX-Pad: %0900d\r\n\r\n", i, 0);
    client_send(c, many.data, many.len); /* about 280 KB; the server keeps about 3 KB */
    kf_buf_free(&many);
    kf_conn_t *conn = only_conn();
    state_wait_t w = {CONN_HELD, 2048};
    assert_true(run_until(conn_reached, &w, 3000));
    assert_false(conn->reading);
    kf_req_t *req = fx->held;
    fx->held = NULL;
    kf_resp_send(req, 200, "text/plain", "late", 4);
    wait_text_times(c, "path=/p", N, 5000);
    assert_non_null(strstr(c->in.data, "path=/p299"));
    client_close(c);
}

/* A request held for news only ends when its client closes; any held request ends when its
 * client is gone (a reset). */
static void test_held_aborted_on_close(void **state)
{
    (void)state;
    int aborted = fx->aborted;
    client_t *c = client();
    client_send_str(c, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_conn(CONN_HELD, 0);
    client_close(c);
    wait_count(&fx->aborted, aborted + 1);
    assert_null(fx->held);
    assert_true(run_until(no_connections, NULL, 1000));

    c = client();
    client_send_str(c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_conn(CONN_HELD, 0);
    client_reset(c);
    client_close(c);
    wait_count(&fx->aborted, aborted + 2);
    assert_null(fx->held);
    assert_true(run_until(no_connections, NULL, 1000));
}

/* Issue 12: a client that half-closes after a request the server holds (a message waiting for
 * its commit) gets its answer, and the answers to what it pipelined behind it, in order; then
 * the connection closes. It used to be closed at the EOF, the answer lost. */
static void test_half_close_answers_held(void **state)
{
    (void)state;
    int aborted = fx->aborted, handled = fx->handled;
    client_t *c = client();
    client_send_str(c, "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
                       "GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    client_shutdown(c);
    wait_conn(CONN_HELD, 0);
    kf_conn_t *conn = only_conn();
    while (!conn->peer_eof)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(fx->aborted, aborted);
    assert_non_null(fx->held);
    kf_req_t *req = fx->held;
    fx->held = NULL;
    kf_resp_send(req, 201, "text/plain", "stored", 6);
    const char *r = wait_eof(c, 2000);
    const char *answer = strstr(r, "stored"), *next = strstr(r, "path=/next");
    assert_non_null(answer);
    assert_non_null(next);
    assert_true(answer < next);
    assert_false(c->reset);
    assert_int_equal(fx->handled - handled, 2);
    assert_int_equal(fx->aborted, aborted);
    client_close(c);
    assert_true(run_until(no_connections, NULL, 1000));
}

/* After a half-close the complete requests are answered and an incomplete one is dropped: no
 * 400, no 408, and the connection closes at once. */
static void test_half_close_drops_incomplete(void **state)
{
    (void)state;
    int handled = fx->handled;
    client_t *c = client();
    client_send_str(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHo");
    client_shutdown(c);
    uint64_t start = kf_clock_mono_ms();
    const char *r = wait_eof(c, 2000);
    assert_true(kf_clock_mono_ms() - start < 1000); /* not the head's timeout */
    assert_non_null(strstr(r, "path=/a"));
    assert_int_equal(count(r, "HTTP/1.1 "), 1);
    assert_false(c->reset);
    assert_int_equal(fx->handled - handled, 1);
    client_close(c);
    /* Half-closed with nothing sent: closed as well. */
    c = client();
    client_shutdown(c);
    assert_string_equal(wait_eof(c, 1000), "");
    client_close(c);
}

/* What has nobody to finish for ends at the half-close: a long poll, a stream, and a long poll
 * that was pipelined behind an answer owed and reached after the EOF. */
static void test_half_close_ends_polls_and_streams(void **state)
{
    (void)state;
    int aborted = fx->aborted;
    client_t *c = client();
    client_send_str(c, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_conn(CONN_HELD, 0);
    client_shutdown(c);
    wait_count(&fx->aborted, aborted + 1);
    wait_eof(c, 1000);
    client_close(c);

    c = client();
    client_send_str(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_text(c, "two\r\n");
    client_shutdown(c);
    wait_count(&fx->aborted, aborted + 2);
    assert_null(fx->stream);
    wait_eof(c, 1000);
    client_close(c);

    c = client();
    client_send_str(c,
                    "GET /hold HTTP/1.1\r\nHost: x\r\n\r\nGET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    client_shutdown(c);
    wait_conn(CONN_HELD, 0);
    kf_conn_t *conn = only_conn();
    while (!conn->peer_eof)
        uv_run(&fx->loop, UV_RUN_ONCE);
    kf_req_t *req = fx->held;
    fx->held = NULL;
    kf_resp_send(req, 200, "text/plain", "owed", 4); /* /poll is dispatched, then ends */
    assert_int_equal(fx->aborted, aborted + 3);
    assert_null(fx->held);
    const char *r = wait_eof(c, 1000);
    assert_non_null(strstr(r, "owed"));
    client_close(c);
    assert_true(run_until(no_connections, NULL, 1000));
}

static void resume_cb(kf_req_t *req, void *data)
{
    (void)data;
    fx->resumed++;
    /* The head and body are there again, parsed from the buffer as it is now. */
    assert_true(kf_str_eq(req->head->path, "/resume"));
    const kf_str_t *check = kf_http_header_get(req->head, "X-Check");
    assert_non_null(check);
    assert_true(kf_str_eq(*check, "resumed"));
    assert_int_equal(req->body_len, 4);
    assert_memory_equal(req->body, "body", 4);
    fx->held = NULL;
    kf_resp_send(req, 200, "text/plain", "resumed-ok", 10);
}

static void hold_again_cb(kf_req_t *req, void *data)
{
    (void)data;
    fx->resumed++;
    kf_req_hold(req, abort_cb, NULL); /* waits for one more step */
}

/* kf_req_resume: the held request's head and body come back from the connection's buffer, also
 * after pipelined bytes arrived meanwhile and the buffer grew (and likely moved). */
static void test_resume(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c, "POST /resume HTTP/1.1\r\nHost: x\r\nX-Check: resumed\r\n"
                       "Content-Length: 4\r\n\r\nbody");
    wait_conn(CONN_HELD, 0);
    kf_conn_t *conn = only_conn();
    size_t before = conn->rbuf.len;
    kf_buf_t more;
    kf_buf_init(&more);
    for (int i = 0; i < 2; i++)
        kf_buf_printf(&more, "GET /after%d HTTP/1.1\r\nHost: x\r\nX-Pad: %01000d\r\n\r\n", i, 0);
    client_send(c, more.data, more.len);
    wait_conn(CONN_HELD, before + more.len);
    kf_buf_free(&more);
    /* A step that holds again, then one that answers. */
    kf_req_resume(fx->held, hold_again_cb, NULL);
    assert_int_equal(conn->state, CONN_HELD);
    kf_req_resume(fx->held, resume_cb, NULL);
    assert_int_equal(fx->resumed, 2);
    const char *r = wait_text(c, "path=/after1");
    const char *answer = strstr(r, "resumed-ok"), *next = strstr(r, "path=/after0");
    assert_non_null(answer);
    assert_true(answer < next);
    client_close(c);
}

/* kf_req_detach: the owner takes the request back; its abort callback never runs, and it may
 * still answer, or leave it to the connection's close. */
static void test_detach(void **state)
{
    (void)state;
    int aborted = fx->aborted, ended = fx->ended;
    client_t *c = client();
    client_send_str(c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_conn(CONN_HELD, 0);
    kf_req_t *req = fx->held;
    kf_req_detach(req);
    kf_resp_send(req, 200, "text/plain", "mine", 4);
    wait_text(c, "mine");
    client_send_str(c, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_conn(CONN_HELD, 0);
    kf_req_detach(fx->held);
    fx->held = NULL;
    client_close(c);
    wait_count(&fx->ended, ended + 2); /* the end callback runs either way */
    assert_int_equal(fx->aborted, aborted);
}

static void test_stream(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    const char *r = wait_text(c, "two\r\n");
    assert_int_equal(fx->stream_rc, 0);
    assert_non_null(strstr(r, "Transfer-Encoding: chunked"));
    assert_non_null(strstr(r, "3\r\none\r\n3\r\ntwo\r\n"));
    kf_req_t *req = fx->stream;
    fx->stream = NULL;
    assert_int_equal(kf_resp_stream_write(req, "three", 5), 0);
    kf_resp_stream_end(req);
    r = wait_text(c, "0\r\n\r\n");
    assert_non_null(strstr(r, "5\r\nthree\r\n0\r\n\r\n"));
    /* The connection goes on after the stream ends. */
    client_send_str(c, "GET /z HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_text(c, "path=/z");
    client_close(c);
}

/* kf_resp_stream_start says when there is no stream to write: a HEAD request gets the head alone
 * and goes on with the next request; an answered request gets nothing. */
static void test_stream_start_returns(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c,
                    "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n");
    const char *r = wait_text(c, "path=/n");
    assert_int_equal(fx->stream_rc, KF_EINVAL);
    assert_null(fx->stream);
    const char *second = strstr(r, "\r\n\r\n") + 4;
    assert_true(strncmp(second, "HTTP/1.1 200 OK\r\n", 17) == 0); /* no body, no chunk */
    client_forget(c);
    client_send_str(c, "GET /answered HTTP/1.1\r\nHost: x\r\n\r\n");
    r = wait_text(c, "\r\n\r\nok");
    assert_int_equal(fx->stream_late_rc, KF_EINVAL);
    assert_null(strstr(r, "chunked"));
    client_close(c);
}

static void test_stream_http10(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c, "GET /stream HTTP/1.0\r\n\r\n");
    wait_text(c, "onetwo");
    kf_req_t *req = fx->stream;
    fx->stream = NULL;
    kf_resp_stream_write(req, "three", 5);
    kf_resp_stream_end(req); /* raw until close */
    const char *r = wait_eof(c, 3000);
    assert_null(strstr(r, "chunked"));
    assert_non_null(strstr(r, "\r\n\r\nonetwothree"));
    client_close(c);
}

/* A stream whose reader does not read is dropped at max_output (64 KiB here). */
static void test_stream_overflow(void **state)
{
    (void)state;
    int aborted = fx->aborted;
    client_t *c = client_from("127.0.0.1", true);
    client_pause(c);
    client_send_str(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_conn(CONN_STREAMING, 0);
    static char chunk[16 * 1024];
    memset(chunk, 's', sizeof chunk);
    kf_req_t *req = fx->stream;
    int rc = 0;
    for (int i = 0; i < 10000 && rc == 0; i++) {
        rc = kf_resp_stream_write(req, chunk, sizeof chunk);
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(rc, KF_ELIMIT);
    assert_int_equal(fx->aborted, aborted); /* the writer cleans up, not the abort callback */
    fx->stream = NULL;
    assert_true(run_until(no_connections, NULL, 2000));
    client_close(c);
}

static void test_upgrade(void **state)
{
    (void)state;
    int aborted = fx->aborted;
    client_t *c = client();
    /* The protocol's first bytes come in the same packet as the request. */
    client_send_str(c, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                       "Upgrade: echo\r\n\r\nhello");
    const char *r = wait_text(c, "HELLO");
    assert_non_null(strstr(r, "HTTP/1.1 101 Switching Protocols\r\n"));
    assert_non_null(strstr(r, "Upgrade: echo\r\n\r\nHELLO"));
    client_send_str(c, "again");
    wait_text(c, "AGAIN");
    /* "bye" closes gracefully after the echo: the peer gets it, then EOF, no reset. */
    client_send_str(c, "bye");
    r = wait_eof(c, 3000);
    assert_non_null(strstr(r, "BYE"));
    assert_false(c->reset);
    assert_int_equal(fx->aborted, aborted);
    client_close(c);
    /* An upgraded connection whose peer goes away aborts. */
    c = client();
    client_send_str(c, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                       "Upgrade: echo\r\n\r\n");
    wait_conn(CONN_UPGRADED, 0);
    client_close(c);
    wait_count(&fx->aborted, aborted + 1);
    assert_null(fx->upgraded);
}

/* A Connection: close answer is followed by our FIN, and the connection lingers, reading and
 * dropping what the peer still sends, so that the answer is not destroyed by a reset. */
static void test_graceful_close_lingers(void **state)
{
    (void)state;
    client_t *c = client();
    client_send_str(c, "GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    wait_text(c, "path=/bye");
    wait_conn(CONN_LINGERING, 0);
    static char junk[64 * 1024];
    memset(junk, 'j', sizeof junk);
    client_send(c, junk, sizeof junk); /* unread input that would reset a plain close */
    const char *r = wait_eof(c, 3000);
    assert_non_null(strstr(r, "path=/bye"));
    assert_false(c->reset);
    /* The peer's EOF ends the linger. */
    uv_shutdown_t *sreq = kf_xmalloc(sizeof *sreq);
    assert_int_equal(uv_shutdown(sreq, (uv_stream_t *)&c->tcp, NULL), 0);
    assert_true(run_until(no_connections, NULL, 1500));
    free(sreq);
    client_close(c);
}

/* Pipelined requests whose answers are not read: parsing pauses once 64 KiB wait unread (here
 * max_output), and goes on as the peer reads: every answer comes, in order; also when the peer
 * half-closed after sending them (half_close), and then the connection closes. */
static void check_unread_output_pauses_parsing(bool half_close)
{
    int handled = fx->handled;
    client_t *c = client_from("127.0.0.1", true);
    client_pause(c);
    enum { N = 200 }; /* 200 x 32 KiB: far more than the sockets' buffers */
    kf_buf_t many;
    kf_buf_init(&many);
    for (int i = 0; i < N; i++)
        kf_buf_append_str(&many, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    client_send(c, many.data, many.len);
    kf_buf_free(&many);
    if (half_close)
        client_shutdown(c);
    wait_conn(CONN_PAUSED, 1);
    kf_conn_t *conn = only_conn();
    assert_false(conn->reading);
    assert_true(fx->handled - handled < N);
    assert_true(kf_req_output_queued(&conn->req) <= 64 * 1024 + 33 * 1024);
    client_resume(c);
    /* Every answer is the same: wait for N of them by length (counting over megabytes at each
     * read would be quadratic). */
    wait_text(c, "\r\n\r\n");
    size_t one = (size_t)(strstr(c->in.data, "\r\n\r\n") + 4 - c->in.data) + 32 * 1024;
    size_t all = one * N;
    assert_true(run_until(bytes_arrived, &(byte_wait_t){c, all}, 20000));
    assert_int_equal(c->in.len, all);
    assert_int_equal(count(c->in.data, "HTTP/1.1 200 OK"), N);
    assert_int_equal(fx->handled - handled, N);
    if (half_close) {
        wait_eof(c, 2000);
        assert_false(c->reset);
        assert_int_equal(c->in.len, all);
    }
    client_close(c);
}

static void test_unread_output_pauses_parsing(void **state)
{
    (void)state;
    check_unread_output_pauses_parsing(false);
}

static void test_unread_output_half_closed(void **state)
{
    (void)state;
    check_unread_output_pauses_parsing(true);
}

static void test_request_end(void **state)
{
    (void)state;
    /* An answered request ends once... */
    int ended = fx->ended;
    client_t *c = client();
    client_send_str(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_text(c, "path=/a");
    assert_int_equal(fx->ended, ended + 1);
    /* ... and asking for the callback once it is answered is refused. */
    client_send_str(c, "GET /answered HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_text(c, "\r\n\r\nok");
    assert_int_equal(fx->ended, ended + 2);
    assert_int_equal(fx->late_on_end_rc, KF_EINVAL);
    /* A request held for news ends when its client goes away. */
    client_send_str(c, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_conn(CONN_HELD, 0);
    client_close(c);
    wait_count(&fx->ended, ended + 3);
    /* A stream ends when it is ended, and the connection's close adds nothing. */
    c = client();
    client_send_str(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_text(c, "two\r\n");
    kf_req_t *req = fx->stream;
    fx->stream = NULL;
    kf_resp_stream_end(req);
    wait_text(c, "0\r\n\r\n");
    assert_int_equal(fx->ended, ended + 4);
    client_close(c);
    assert_true(run_until(no_connections, NULL, 1000));
    assert_int_equal(fx->ended, ended + 4);
}

/* Stopping the server: held requests and streams are aborted and their connections closed after
 * what was queued; idle ones closed. Each test's teardown stops too; this one checks what the
 * clients see. */
static void test_stop(void **state)
{
    (void)state;
    int aborted = fx->aborted;
    client_t *held = client();
    client_send_str(held, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_conn(CONN_HELD, 0);
    client_t *idle = client();
    client_send_str(idle, "GET /i HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_text(idle, "path=/i");
    kf_server_stop(fx->server, server_done_cb, NULL);
    wait_eof(held, 2000);
    wait_eof(idle, 2000);
    assert_int_equal(fx->aborted, aborted + 1);
    client_close(held);
    client_close(idle);
    uv_close((uv_handle_t *)&fx->deadline, handle_closed_cb);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(fx->server_done);
    /* The teardown's stop finds a new server to stop. */
    uv_timer_init(&fx->loop, &fx->deadline);
    kf_server_config_t config;
    kf_server_config_default(&config);
    config.port = 0;
    assert_int_equal(kf_server_start(&fx->loop, &config, handler, NULL, &fx->server), 0);
    fx->server_done = false;
}

static void test_start_errors(void **state)
{
    (void)state;
    kf_server_config_t config;
    kf_server_config_default(&config);
    config.port = fx->port; /* in use by the fixture's server */
    kf_server_t *other = NULL;
    assert_int_equal(kf_server_start(&fx->loop, &config, handler, NULL, &other), KF_EADDRINUSE);
    config.host = "not an address";
    assert_int_equal(kf_server_start(&fx->loop, &config, handler, NULL, &other), KF_EIO);
    assert_null(other);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* the refused listener's handle closes */
}

/* The per-address group's server allows 3 connections per address. */
static void test_per_address_limit(void **state)
{
    (void)state;
    client_t *cs[3];
    for (int i = 0; i < 3; i++) {
        cs[i] = client();
        client_send_str(cs[i], "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
        wait_text(cs[i], "path=/a");
    }
    /* A fourth from the same address is closed at once, without an answer. */
    client_t *extra = client();
    uint64_t start = kf_clock_mono_ms();
    assert_string_equal(wait_eof(extra, 1000), "");
    assert_true(kf_clock_mono_ms() - start < 1000); /* not the head's timeout: refused at accept */
    client_close(extra);
    /* Another address is not affected. */
    client_t *other = client_from("127.0.0.2", false);
    client_send_str(other, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_text(other, "path=/b");
    /* Once one closes, the address may connect again. */
    client_close(cs[0]);
    assert_true(run_until(three_connections, NULL, 1000)); /* cs[1], cs[2] and other */
    cs[0] = client();
    client_send_str(cs[0], "GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_text(cs[0], "path=/c");
    for (int i = 0; i < 3; i++)
        client_close(cs[i]);
    client_close(other);
    /* And when all have closed, the address has its whole allowance again. */
    assert_true(run_until(no_connections, NULL, 1000));
    for (int i = 0; i < 3; i++) {
        cs[i] = client();
        client_send_str(cs[i], "GET /d HTTP/1.1\r\nHost: x\r\n\r\n");
        wait_text(cs[i], "path=/d");
    }
    for (int i = 0; i < 3; i++)
        client_close(cs[i]);
}

/* The per-address key of a peer (what the login and connection limits count): an IPv4 address,
 * an IPv4-mapped IPv6 one as IPv4, an IPv6 address's /64, so that a client rotating within its
 * /64 counts as one. */
static void test_peer_keys(void **state)
{
    (void)state;
    static const struct {
        const char *address;
        const char *key;
    } cases[] = {
        {"192.0.2.7", "192.0.2.7"},
        {"::ffff:192.0.2.7", "192.0.2.7"},
        {"2001:db8:0:1:aaaa:bbbb:cccc:dddd", "2001:db8:0:1::/64"},
        {"2001:db8:0:1::42", "2001:db8:0:1::/64"},
        {"2001:db8:0:2::42", "2001:db8:0:2::/64"},
        {"::1", "0:0:0:0::/64"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sockaddr_storage addr;
        memset(&addr, 0, sizeof addr);
        if (strchr(cases[i].address, ':') != NULL)
            assert_int_equal(uv_ip6_addr(cases[i].address, 80, (struct sockaddr_in6 *)&addr), 0);
        else
            assert_int_equal(uv_ip4_addr(cases[i].address, 80, (struct sockaddr_in *)&addr), 0);
        char key[64];
        assert_true(admit_peer_key(&addr, key, sizeof key));
        assert_string_equal(key, cases[i].key);
    }
    /* And the server hands it to its handler. */
    client_t *c = client_from("127.0.0.3", false);
    client_send_str(c, "GET /peer HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_text(c, "key=127.0.0.3");
    client_close(c);
}

static int setup_default(void **state)
{
    group_per_address_limit = 256;
    return setup(state);
}

static int setup_per_address(void **state)
{
    group_per_address_limit = 3;
    return setup(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keep_alive, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_split_every_byte, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http10, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_continue, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_header_injection, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_slow_head_times_out, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_body_limit_per_route, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_large_body_has_more_time, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_partial_behind_answered_times_out, setup_default,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_silent_connection_closed, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_held_then_answered, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_held_pipelining_resumes_reading, setup_default,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_held_aborted_on_close, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_half_close_answers_held, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_half_close_drops_incomplete, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_half_close_ends_polls_and_streams, setup_default,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_detach, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_stream, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_stream_start_returns, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_stream_http10, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_stream_overflow, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_close_lingers, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_unread_output_pauses_parsing, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_unread_output_half_closed, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_request_end, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_start_errors, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_per_address_limit, setup_per_address, teardown),
        cmocka_unit_test_setup_teardown(test_peer_keys, setup_default, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
