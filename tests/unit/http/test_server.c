/* test_server.c: the HTTP server over real loopback sockets: keep-alive, pipelining, split
 * requests, bodies, limits, held and streamed responses. The loop runs in a thread; the test
 * speaks to it with plain blocking sockets, as a client would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "http/server.h"

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t stop_async;
    uv_async_t answer_async; /* answers the held request from the loop thread */
    uv_timer_t later;
    kf_server_t *server;
    pthread_t thread;
    int port;
    kf_req_t *held;     /* the request held by /hold, or NULL */
    int aborted;        /* abort callbacks seen */
    int handled;        /* requests seen by the handler */
    kf_req_t *stream;   /* the request streaming from /stream */
    int ended;          /* end callbacks seen (every request asks for one) */
    int late_on_end_rc; /* kf_req_on_end after the answer, from /answered */
} fixture_t;

/* The server's configuration for the group being set up (setup() fills in the rest). */
static size_t group_per_address_limit;

static fixture_t *fx;

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

static void handler(kf_req_t *req)
{
    fx->handled++;
    kf_req_on_end(req, end_cb, NULL);
    if (kf_str_eq(req->head->path, "/answered")) {
        kf_resp_send(req, 200, "text/plain", "ok", 2);
        fx->late_on_end_rc = kf_req_on_end(req, end_cb, NULL);
        return;
    }
    if (kf_str_eq(req->head->path, "/hold")) {
        fx->held = req;
        kf_req_hold(req, abort_cb, NULL);
        return;
    }
    if (kf_str_eq(req->head->path, "/stream")) {
        fx->stream = req;
        kf_resp_stream_start(req, 200, "text/plain", abort_cb, NULL);
        kf_resp_stream_write(req, "one", 3);
        kf_resp_stream_write(req, "two", 3);
        return;
    }
    if (kf_str_eq(req->head->path, "/echo")) {
        kf_resp_send(req, 200, "text/plain", req->body, req->body_len);
        return;
    }
    if (kf_str_eq(req->head->path, "/badheader")) {
        assert_int_equal(kf_resp_header(req, "X-Test", "a\r\nSet-Cookie: evil=1"), KF_EINVAL);
        kf_resp_send(req, 200, "text/plain", "ok", 2);
        return;
    }
    char body[256];
    int n = snprintf(body, sizeof body, "path=%.*s", (int)req->head->path.len, req->head->path.ptr);
    kf_resp_send(req, 200, "text/plain", body, (size_t)n);
}

static void answer_cb(uv_async_t *async)
{
    (void)async;
    if (fx->held != NULL) {
        kf_req_t *req = fx->held;
        fx->held = NULL;
        kf_resp_send(req, 200, "text/plain", "late", 4);
    }
    if (fx->stream != NULL) {
        kf_req_t *req = fx->stream;
        fx->stream = NULL;
        kf_resp_stream_write(req, "three", 5);
        kf_resp_stream_end(req);
    }
}

static void closed_cb(uv_handle_t *handle)
{
    (void)handle;
}

static void stop_cb(uv_async_t *async)
{
    (void)async;
    kf_server_stop(fx->server, NULL, NULL);
    uv_close((uv_handle_t *)&fx->stop_async, closed_cb);
    uv_close((uv_handle_t *)&fx->answer_async, closed_cb);
}

static void *loop_thread(void *arg)
{
    (void)arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    fx = calloc(1, sizeof *fx);
    uv_loop_init(&fx->loop);
    uv_async_init(&fx->loop, &fx->stop_async, stop_cb);
    uv_async_init(&fx->loop, &fx->answer_async, answer_cb);
    kf_server_config_t config;
    kf_server_config_default(&config);
    config.port = 0;
    config.max_body = 1024;
    config.header_timeout_ms = 1500;
    config.limits.max_header_bytes = 2048;
    config.max_output = 64 * 1024;
    config.max_connections_per_address = group_per_address_limit;
    assert_int_equal(kf_server_start(&fx->loop, &config, handler, NULL, &fx->server), 0);
    fx->port = kf_server_port(fx->server);
    assert_true(fx->port > 0);
    pthread_create(&fx->thread, NULL, loop_thread, NULL);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&fx->stop_async);
    pthread_join(fx->thread, NULL);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
    return 0;
}

/* A client connected from source (an address on loopback, e.g. 127.0.0.2). */
static int client_from(const char *source)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in local = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &local.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&local, sizeof local), 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int client(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until want appears (or EOF/timeout); returns everything read, NUL-terminated. */
static char *read_until(int fd, const char *want)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap + 1);
    out[0] = '\0';
    while (strstr(out, want) == NULL && len < cap) {
        ssize_t n = read(fd, out + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        out[len] = '\0';
    }
    return out;
}

/* Reads until the peer closes; returns what came. */
static char *read_to_eof(int fd)
{
    return read_until(fd, "\x01\x02never");
}

static int count(const char *haystack, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_keep_alive(void **state)
{
    (void)state;
    int fd = client();
    send_all(fd, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 28);
    char *r = read_until(fd, "path=/a");
    assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(r, "Content-Length: 7\r\n"));
    assert_non_null(strstr(r, "X-Content-Type-Options: nosniff"));
    free(r);
    send_all(fd, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 28);
    r = read_until(fd, "path=/b");
    assert_non_null(strstr(r, "path=/b"));
    free(r);
    close(fd);
}

static void test_pipelined(void **state)
{
    (void)state;
    int fd = client();
    const char *reqs = "GET /1 HTTP/1.1\r\n\r\nPOST /echo HTTP/1.1\r\nContent-Length: "
                       "5\r\n\r\nhelloGET /3 HTTP/1.1\r\n"
                       "Connection: close\r\n\r\n";
    send_all(fd, reqs, strlen(reqs));
    char *r = read_to_eof(fd);
    const char *a = strstr(r, "path=/1"), *b = strstr(r, "hello"), *c = strstr(r, "path=/3");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c); /* answered in order */
    assert_non_null(strstr(r, "Connection: close"));
    free(r);
    close(fd);
}

static void test_split_every_byte(void **state)
{
    (void)state;
    int fd = client();
    const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
    for (size_t i = 0; req[i] != '\0'; i++) {
        send_all(fd, &req[i], 1);
        usleep(1000);
    }
    char *r = read_until(fd, "abc");
    assert_non_null(strstr(r, "200 OK"));
    assert_non_null(strstr(r, "\r\n\r\nabc"));
    free(r);
    close(fd);
}

static void expect_status(const char *request, size_t len, const char *status, const char *code)
{
    int fd = client();
    send_all(fd, request, len);
    char *r = read_to_eof(fd);
    if (strstr(r, status) == NULL)
        fail_msg("want %s, got: %.200s", status, r);
    assert_non_null(strstr(r, code));
    assert_non_null(strstr(r, "Connection: close"));
    free(r);
    close(fd);
}

static void test_errors(void **state)
{
    (void)state;
    const char *big_body = "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n";
    expect_status(big_body, strlen(big_body), "413", "\"too_large\"");
    const char *chunked =
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    expect_status(chunked, strlen(chunked), "411", "length_required");
    const char *bad = "GARBAGE\r\n\r\n";
    expect_status(bad, strlen(bad), "400", "bad_request");
    char huge[4096];
    int n = snprintf(huge, sizeof huge, "GET / HTTP/1.1\r\nX-Big: %03000d\r\n\r\n", 1);
    expect_status(huge, (size_t)n, "431", "headers_too_large");
    const char *version = "GET / HTTP/2.0\r\n\r\n";
    expect_status(version, strlen(version), "505", "http_version");
}

static void test_header_injection(void **state)
{
    (void)state;
    int fd = client();
    send_all(fd, "GET /badheader HTTP/1.1\r\n\r\n", 27);
    char *r = read_until(fd, "ok");
    assert_null(strstr(r, "evil"));
    free(r);
    close(fd);
}

static void test_slow_head_times_out(void **state)
{
    (void)state;
    int fd = client();
    send_all(fd, "GET / HTTP/1.1\r\nX-Slow: ", 24);
    char *r = read_to_eof(fd); /* the server gives up after header_timeout_ms */
    assert_non_null(strstr(r, "408"));
    free(r);
    close(fd);
    /* And it still serves others. */
    fd = client();
    send_all(fd, "GET /after HTTP/1.1\r\n\r\n", 23);
    r = read_until(fd, "path=/after");
    assert_non_null(strstr(r, "path=/after"));
    free(r);
    close(fd);
}

static void test_held_then_answered(void **state)
{
    (void)state;
    int fd = client();
    send_all(fd, "GET /hold HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n", 44);
    usleep(100000);
    uv_async_send(&fx->answer_async);
    char *r = read_until(fd, "path=/next");
    const char *late = strstr(r, "late"), *next = strstr(r, "path=/next");
    assert_non_null(late);
    assert_non_null(next);
    assert_true(late < next);
    free(r);
    close(fd);
}

static void test_held_aborted_on_close(void **state)
{
    (void)state;
    int before = fx->aborted;
    int fd = client();
    send_all(fd, "GET /hold HTTP/1.1\r\n\r\n", 22);
    usleep(100000);
    close(fd);
    for (int i = 0; i < 100 && fx->aborted == before; i++)
        usleep(10000);
    assert_int_equal(fx->aborted, before + 1);
}

static void test_stream(void **state)
{
    (void)state;
    int fd = client();
    send_all(fd, "GET /stream HTTP/1.1\r\n\r\n", 24);
    char *r = read_until(fd, "two\r\n");
    assert_non_null(strstr(r, "Transfer-Encoding: chunked"));
    assert_non_null(strstr(r, "3\r\none\r\n3\r\ntwo\r\n"));
    free(r);
    uv_async_send(&fx->answer_async);
    r = read_until(fd, "0\r\n\r\n");
    assert_non_null(strstr(r, "5\r\nthree\r\n0\r\n\r\n"));
    free(r);
    /* The connection goes on after the stream ends. */
    send_all(fd, "GET /z HTTP/1.1\r\n\r\n", 19);
    r = read_until(fd, "path=/z");
    assert_non_null(strstr(r, "path=/z"));
    free(r);
    close(fd);
}

static void test_http10_closes(void **state)
{
    (void)state;
    int fd = client();
    send_all(fd, "GET /old HTTP/1.0\r\n\r\n", 21);
    char *r = read_to_eof(fd);
    assert_non_null(strstr(r, "path=/old"));
    assert_int_equal(count(r, "HTTP/1.1 200"), 1);
    free(r);
    close(fd);
}

/* Waits up to 2 s for a counter the loop thread raises to reach want. */
static void wait_for(const int *counter, int want)
{
    for (int i = 0; i < 200 && *(const volatile int *)counter < want; i++)
        usleep(10000);
    assert_int_equal(*(const volatile int *)counter, want);
}

static void test_request_end(void **state)
{
    (void)state;
    /* An answered request ends once... */
    int before = fx->ended;
    int fd = client();
    send_all(fd, "GET /a HTTP/1.1\r\n\r\n", 19);
    free(read_until(fd, "path=/a"));
    wait_for(&fx->ended, before + 1);
    /* ... and asking for the callback once it is answered is refused. */
    send_all(fd, "GET /answered HTTP/1.1\r\n\r\n", 26);
    free(read_until(fd, "\r\n\r\nok"));
    wait_for(&fx->ended, before + 2);
    assert_int_equal(fx->late_on_end_rc, KF_EINVAL);
    /* A held request ends when its client goes away. */
    send_all(fd, "GET /hold HTTP/1.1\r\n\r\n", 22);
    usleep(100000);
    close(fd);
    wait_for(&fx->ended, before + 3);
    /* A stream ends when it is ended, and the connection's close adds nothing. */
    fd = client();
    send_all(fd, "GET /stream HTTP/1.1\r\n\r\n", 24);
    free(read_until(fd, "two\r\n"));
    uv_async_send(&fx->answer_async);
    free(read_until(fd, "0\r\n\r\n"));
    wait_for(&fx->ended, before + 4);
    close(fd);
    usleep(100000);
    assert_int_equal(fx->ended, before + 4);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A connection that never sends a request is closed after the head's timeout (1.5 s here), not
 * after the 75 s that a keep-alive connection may idle between requests. */
static void test_silent_connection_closed(void **state)
{
    (void)state;
    int fd = client();
    uint64_t start = now_ms();
    char *r = read_to_eof(fd);
    uint64_t took = now_ms() - start;
    assert_string_equal(r, "");
    assert_true(took >= 1400 && took < 4000);
    free(r);
    close(fd);
}

/* Sends a request that may meet a closed connection (no SIGPIPE) and says whether it was
 * answered with want. */
static bool try_request(int fd, const char *request, const char *want)
{
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request))
        return false;
    char *r = read_until(fd, want);
    bool answered = strstr(r, want) != NULL;
    free(r);
    return answered;
}

/* The per-address group's server allows 3 connections per address. */
static void test_per_address_limit(void **state)
{
    (void)state;
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = client();
        assert_true(try_request(fds[i], "GET /a HTTP/1.1\r\n\r\n", "path=/a"));
    }
    /* A fourth from the same address is closed at once, without an answer. */
    int extra = client();
    uint64_t start = now_ms();
    char *r = read_to_eof(extra);
    assert_string_equal(r, "");
    assert_true(now_ms() - start < 1000); /* not the head's timeout: refused at accept */
    free(r);
    close(extra);
    /* Another address is not affected. */
    int other = client_from("127.0.0.2");
    assert_true(try_request(other, "GET /b HTTP/1.1\r\n\r\n", "path=/b"));
    /* Once one closes, the address may connect again. */
    close(fds[0]);
    bool served = false;
    for (int attempt = 0; attempt < 100 && !served; attempt++) {
        int fd = client();
        served = try_request(fd, "GET /c HTTP/1.1\r\n\r\n", "path=/c");
        if (served)
            fds[0] = fd;
        else
            close(fd);
        if (!served)
            usleep(20000);
    }
    assert_true(served);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    close(other);
    /* And when all have closed, the address has its whole allowance again. */
    usleep(200000);
    for (int i = 0; i < 3; i++) {
        fds[i] = client();
        assert_true(try_request(fds[i], "GET /d HTTP/1.1\r\n\r\n", "path=/d"));
    }
    for (int i = 0; i < 3; i++)
        close(fds[i]);
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
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_split_every_byte),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_header_injection),
        cmocka_unit_test(test_slow_head_times_out),
        cmocka_unit_test(test_held_then_answered),
        cmocka_unit_test(test_held_aborted_on_close),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_http10_closes),
        cmocka_unit_test(test_request_end),
        cmocka_unit_test(test_silent_connection_closed),
    };
    const struct CMUnitTest per_address_tests[] = {
        cmocka_unit_test(test_per_address_limit),
    };
    int failed = cmocka_run_group_tests(tests, setup_default, teardown);
    return failed + cmocka_run_group_tests(per_address_tests, setup_per_address, teardown);
}
