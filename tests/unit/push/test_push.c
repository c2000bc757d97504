/* test_push.c: the poll, long-poll and iframe transports over real sockets, fed by the hub and a
 * replay source over an in-memory list of events. */
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
#include <unistd.h>

#include "base/err.h"
#include "http/server.h"
#include "push/push.h"

#define MAX_EVENTS 64

typedef struct fixture {
    uv_loop_t loop;
    uv_async_t stop_async;
    uv_async_t publish_async;
    kf_server_t *server;
    kf_hub_t *hub;
    kf_push_t *push;
    int received; /* WebSocket messages seen by receive_cb */
    bool stopped;
    char last_received[256];
    pthread_t thread;
    int port;
    pthread_mutex_t lock;
    kf_event_t *stored[MAX_EVENTS]; /* the "store": events 1..count */
    size_t count;
    size_t published; /* stored events already published */
} fixture_t;

static fixture_t *fx;

static int replay(void *ctx, uint64_t after, size_t limit, kf_push_emit_fn emit, void *emit_ctx,
                  bool *more)
{
    (void)ctx;
    size_t sent = 0;
    *more = false;
    pthread_mutex_lock(&fx->lock);
    for (size_t i = 0; i < fx->published; i++) {
        if (fx->stored[i]->id <= after)
            continue;
        if (sent == limit) {
            *more = true;
            break;
        }
        int rc = emit(emit_ctx, fx->stored[i]);
        sent++;
        if (rc != 0) {
            pthread_mutex_unlock(&fx->lock);
            return rc;
        }
    }
    pthread_mutex_unlock(&fx->lock);
    return 0;
}

/* Echoes what a WebSocket client sends, as the chat layer would answer an action. */
static void receive_cb(void *ctx, kf_push_client_t *client, char kind, int64_t subject,
                       const char *text, size_t len)
{
    (void)ctx;
    assert_int_equal(kind, 'v');
    assert_int_equal(subject, 7);
    fx->received++;
    snprintf(fx->last_received, sizeof fx->last_received, "%.*s", (int)len, text);
    char reply[300];
    int n = snprintf(reply, sizeof reply, "{\"echo\":%.*s}", (int)len, text);
    kf_push_client_send(client, reply, (size_t)n);
}

static void handler(kf_req_t *req)
{
    char value[32];
    uint64_t after = 0;
    int n = kf_http_query_get(req->head->query, "after", value, sizeof value);
    if (n >= 0)
        kf_parse_u64((kf_str_t){value, (size_t)n}, &after);
    kf_push_source_t source = {.topic = "t", .replay = replay, .ctx = NULL};
    source.kind = 'v';
    source.subject = 7;
    kf_push_transport_t transport = KF_PUSH_POLL;
    if (kf_str_eq(req->head->path, "/longpoll"))
        transport = KF_PUSH_LONGPOLL;
    else if (kf_str_eq(req->head->path, "/iframe"))
        transport = KF_PUSH_IFRAME;
    else if (kf_str_eq(req->head->path, "/sse"))
        transport = KF_PUSH_SSE;
    else if (kf_str_eq(req->head->path, "/ws"))
        transport = KF_PUSH_WS;
    kf_push_serve(fx->push, req, transport, &source, after,
                  kf_str_eq(req->head->path, "/short") ? 1000 : 0);
}

/* Publishes, on the loop thread, every stored event not yet published. */
static void publish_cb(uv_async_t *async)
{
    (void)async;
    pthread_mutex_lock(&fx->lock);
    while (fx->published < fx->count) {
        kf_event_t *event = fx->stored[fx->published++];
        pthread_mutex_unlock(&fx->lock);
        kf_hub_publish(fx->hub, "t", event);
        pthread_mutex_lock(&fx->lock);
    }
    pthread_mutex_unlock(&fx->lock);
}

static void add_event(const char *body)
{
    char json[256];
    pthread_mutex_lock(&fx->lock);
    uint64_t id = fx->count + 1;
    int n = snprintf(json, sizeof json, "{\"type\":\"message\",\"id\":\"%llu\",\"body\":\"%s\"}",
                     (unsigned long long)id, body);
    fx->stored[fx->count++] = kf_event_new(id, json, (size_t)n);
    pthread_mutex_unlock(&fx->lock);
    uv_async_send(&fx->publish_async);
}

static void closed_cb(uv_handle_t *handle)
{
    (void)handle;
}

static void stop_cb(uv_async_t *async)
{
    (void)async;
    if (fx->stopped)
        return;
    fx->stopped = true;
    kf_push_free(fx->push);
    kf_server_stop(fx->server, NULL, NULL);
    uv_close((uv_handle_t *)&fx->stop_async, closed_cb);
    uv_close((uv_handle_t *)&fx->publish_async, closed_cb);
}

static void *loop_thread(void *arg)
{
    (void)arg;
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    pthread_mutex_init(&fx->lock, NULL);
    uv_loop_init(&fx->loop);
    uv_async_init(&fx->loop, &fx->stop_async, stop_cb);
    uv_async_init(&fx->loop, &fx->publish_async, publish_cb);
    fx->hub = kf_hub_new();
    kf_push_config_t push_config;
    kf_push_config_default(&push_config);
    push_config.iframe_max_bytes = 8192;
    push_config.heartbeat_ms = 1000;
    push_config.replay_batch = 3;
    push_config.ws_max_message = 1000;
    push_config.receive = receive_cb;
    fx->push = kf_push_new(&fx->loop, fx->hub, &push_config);
    kf_server_config_t config;
    kf_server_config_default(&config);
    config.port = 0;
    assert_int_equal(kf_server_start(&fx->loop, &config, handler, NULL, &fx->server), 0);
    fx->port = kf_server_port(fx->server);
    pthread_create(&fx->thread, NULL, loop_thread, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (!fx->stopped)
        uv_async_send(&fx->stop_async);
    pthread_join(fx->thread, NULL);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    kf_hub_free(fx->hub);
    for (size_t i = 0; i < fx->count; i++)
        kf_event_unref(fx->stored[i]);
    free(fx);
    return 0;
}

static int client(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static char *request(int fd, const char *path, const char *until)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t cap = 1 << 17, len = 0;
    char *out = malloc(cap + 1);
    out[0] = '\0';
    while (strstr(out, until) == NULL && len < cap) {
        ssize_t r = read(fd, out + len, cap - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        out[len] = '\0';
    }
    return out;
}

static void test_poll_empty_then_events(void **state)
{
    (void)state;
    int fd = client();
    char *r = request(fd, "/poll?after=0", "}");
    assert_non_null(strstr(r, "{\"events\":[],\"cursor\":\"0\"}"));
    free(r);
    add_event("a");
    add_event("b");
    usleep(50000);
    r = request(fd, "/poll?after=0", "}]");
    assert_non_null(strstr(r, "\"body\":\"a\""));
    assert_non_null(strstr(r, "\"cursor\":\"2\""));
    free(r);
    r = request(fd, "/poll?after=1", "\"cursor\"");
    assert_null(strstr(r, "\"body\":\"a\""));
    assert_non_null(strstr(r, "\"body\":\"b\""));
    free(r);
    close(fd);
}

typedef struct waiter {
    const char *path;
    char *response;
} waiter_t;

static void *wait_thread(void *arg)
{
    waiter_t *w = arg;
    int fd = client();
    w->response = request(fd, w->path, "\"cursor\"");
    close(fd);
    return NULL;
}

static void test_longpoll_wakes_on_publish(void **state)
{
    (void)state;
    size_t base = fx->count;
    char path[64];
    snprintf(path, sizeof path, "/longpoll?after=%zu", base);
    waiter_t w = {.path = path};
    pthread_t t;
    pthread_create(&t, NULL, wait_thread, &w);
    usleep(300000);
    assert_null(w.response); /* still held */
    assert_int_equal(kf_hub_count(fx->hub, "t") >= 1, 1);
    add_event("wake");
    pthread_join(t, NULL);
    assert_non_null(strstr(w.response, "\"body\":\"wake\""));
    free(w.response);
}

static void test_longpoll_times_out_empty(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/short?after=%zu", fx->count);
    waiter_t w = {.path = path};
    wait_thread(&w);
    assert_non_null(strstr(w.response, "\"events\":[]"));
    free(w.response);
}

static void test_longpoll_answers_backlog_at_once(void **state)
{
    (void)state;
    add_event("x");
    usleep(50000);
    waiter_t w = {.path = "/longpoll?after=0"};
    wait_thread(&w);
    /* Replay batches are 3 events: the first batch comes at once, the cursor says where next. */
    assert_non_null(strstr(w.response, "\"cursor\":\"3\""));
    free(w.response);
}

static void test_iframe_stream(void **state)
{
    (void)state;
    int fd = client();
    char *r = request(fd, "/iframe?after=0", "\"body\":\"x\"");
    assert_non_null(strstr(r, "Transfer-Encoding: chunked"));
    assert_non_null(strstr(r, "frame-ancestors 'self'"));
    char *first_script = strstr(r, "<script>parent.kefuPush(");
    assert_non_null(first_script);
    assert_true(first_script - strstr(r, "<!DOCTYPE") >= 4096); /* padding first */
    /* Every stored event is replayed, across several replay batches. */
    assert_non_null(strstr(r, "\"body\":\"a\""));
    free(r);
    add_event("</script><b>");
    r = request(fd, "", "u003c/script");
    assert_null(strstr(r, "</script><b>"));
    free(r);
    close(fd);
}

static void test_iframe_ends_after_max_bytes(void **state)
{
    (void)state;
    int fd = client();
    char big[200];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *r = request(fd, "/iframe?after=0", "kefuPush({\"type\":\"heartbeat\"})");
    free(r);
    for (int i = 0; i < 40; i++)
        add_event(big);
    size_t cap = 1 << 17, len = 0;
    char *out = malloc(cap + 1);
    out[0] = '\0';
    while (strstr(out, "0\r\n\r\n") == NULL && len < cap) {
        ssize_t n = read(fd, out + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        out[len] = '\0';
    }
    assert_non_null(strstr(out, "{\"type\":\"reconnect\"}"));
    assert_non_null(strstr(out, "0\r\n\r\n"));
    free(out);
    close(fd);
}

static char *read_some(int fd, const char *until)
{
    size_t cap = 1 << 17, len = 0;
    char *out = calloc(1, cap + 1); /* zeroed: callers search the whole buffer for binary frames */
    while ((until == NULL || memmem(out, len, until, strlen(until)) == NULL) && len < cap) {
        ssize_t r = read(fd, out + len, cap - len);
        if (r <= 0)
            break;
        /* Frame headers hold zero bytes; keep the text searchable with strstr. */
        for (size_t i = len; i < len + (size_t)r; i++)
            out[i] = out[i] == '\0' ? '\x01' : out[i];
        len += (size_t)r;
        out[len] = '\0';
        if (until == NULL)
            break;
    }
    return out;
}

static void test_sse_stream(void **state)
{
    (void)state;
    int fd = client();
    char *r = request(fd, "/sse?after=0", "\"body\":\"x\"");
    assert_non_null(strstr(r, "Content-Type: text/event-stream"));
    assert_non_null(strstr(r, "X-Accel-Buffering: no"));
    assert_non_null(strstr(r, "retry: 2000\n"));
    assert_non_null(strstr(r, "event: heartbeat\ndata: {\"type\":\"heartbeat\"}\n\n"));
    assert_non_null(strstr(r, "id: 1\nevent: message\ndata: {\"type\":\"message\",\"id\":\"1\""));
    free(r);
    add_event("live");
    r = read_some(fd, "\"live\"");
    assert_non_null(strstr(r, "event: message\ndata: "));
    free(r);
    close(fd);
    /* Last-Event-ID beats the URL's cursor. */
    fd = client();
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET /sse?after=0 HTTP/1.1\r\nHost: t\r\nLast-Event-ID: %zu\r\n\r\n",
                     fx->count - 1);
    assert_int_equal(write(fd, req, (size_t)n), n);
    r = read_some(fd, "\"live\"");
    assert_null(strstr(r, "\"body\":\"a\""));
    assert_non_null(strstr(r, "\"live\""));
    free(r);
    close(fd);
}

static int ws_open(void);

/* One live event reaches subscribers of three framings at once: each gets its own framing,
 * although each framing is built once and shared through the event. */
static void test_shared_encodings(void **state)
{
    (void)state;
    int sse_a = client(), sse_b = client();
    char *r = request(sse_a, "/sse?after=0", "event: heartbeat");
    free(r);
    r = request(sse_b, "/sse?after=0", "event: heartbeat");
    free(r);
    int ws = ws_open();
    add_event("shared");
    char expect[128];
    snprintf(expect, sizeof expect, "id: %zu\nevent: message\ndata: {\"type\":\"message\"",
             fx->count);
    char *a = read_some(sse_a, "\"shared\"}\n\n");
    char *b = read_some(sse_b, "\"shared\"}\n\n");
    assert_non_null(strstr(a, expect));
    assert_non_null(strstr(b, expect));
    char *w = read_some(ws, "\"shared\"}");
    /* A WebSocket text frame, not SSE lines. */
    assert_null(strstr(w, "event: message"));
    assert_non_null(strstr(w, "\x81"));
    free(a);
    free(b);
    free(w);
    close(sse_a);
    close(sse_b);
    close(ws);
}

static const char ws_handshake[] =
    "GET /ws?after=0 HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

/* Writes one masked client frame. */
static void ws_send(int fd, unsigned first_byte, const char *payload, size_t len, bool masked)
{
    unsigned char frame[2048];
    size_t n = 0;
    frame[n++] = (unsigned char)first_byte;
    if (len < 126) {
        frame[n++] = (unsigned char)((masked ? 0x80 : 0) | len);
    } else {
        frame[n++] = (unsigned char)((masked ? 0x80 : 0) | 126);
        frame[n++] = (unsigned char)(len >> 8);
        frame[n++] = (unsigned char)len;
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    if (masked) {
        memcpy(frame + n, mask, 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++)
        frame[n++] = (unsigned char)(masked ? payload[i] ^ mask[i % 4] : payload[i]);
    assert_int_equal(write(fd, frame, n), (ssize_t)n);
}

/* Opens a WebSocket and reads until the server's first heartbeat (which may come in the same
 * read as the 101 head); returns everything read so far in *seen (free it) when seen != NULL. */
static int ws_open_seen(char **seen)
{
    int fd = client();
    assert_int_equal(write(fd, ws_handshake, sizeof ws_handshake - 1),
                     (ssize_t)(sizeof ws_handshake - 1));
    char *r = read_some(fd, "{\"type\":\"heartbeat\"}");
    assert_non_null(strstr(r, "HTTP/1.1 101 Switching Protocols\r\n"));
    assert_non_null(strstr(r, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_null(strstr(r, "Content-Length"));
    assert_non_null(strstr(r, "{\"type\":\"heartbeat\"}"));
    if (seen != NULL)
        *seen = r;
    else
        free(r);
    return fd;
}

static int ws_open(void)
{
    return ws_open_seen(NULL);
}

/* Reads until a close frame arrives; returns its code (or -1 on EOF without one). */
static int ws_close_code(int fd)
{
    char *r = read_some(fd, "\x88\x02");
    int code = -1;
    char *p = memmem(r, 1 << 17, "\x88\x02", 2);
    if (p != NULL)
        code = ((unsigned char)p[2] << 8) | (unsigned char)p[3];
    free(r);
    return code;
}

static void test_ws_events_and_echo(void **state)
{
    (void)state;
    char *r;
    int fd = ws_open_seen(&r);
    if (strstr(r, "\"live\"") == NULL) {
        char *more = read_some(fd, "\"live\""); /* the replay reaches the live event */
        assert_non_null(strstr(more, "\"live\""));
        free(more);
    }
    free(r);
    ws_send(fd, 0x81, "{\"hi\":1}", 8, true);
    r = read_some(fd, "{\"echo\":{\"hi\":1}}");
    assert_non_null(strstr(r, "{\"echo\":{\"hi\":1}}"));
    free(r);
    /* A fragmented message with a ping in between. */
    ws_send(fd, 0x01, "{\"part", 6, true);
    ws_send(fd, 0x89, "pp", 2, true);
    ws_send(fd, 0x80, "\":2}", 4, true);
    r = read_some(fd, "{\"echo\":{\"part\":2}}");
    assert_non_null(memmem(r, 1 << 17, "\x8a\x02pp", 4)); /* the pong */
    assert_non_null(strstr(r, "{\"echo\":{\"part\":2}}"));
    free(r);
    ws_send(fd, 0x88, "\x03\xe8", 2, true);
    assert_int_equal(ws_close_code(fd), 1000);
    close(fd);
}

static void test_ws_protocol_errors(void **state)
{
    (void)state;
    int fd = ws_open();
    ws_send(fd, 0x81, "x", 1, false); /* unmasked */
    assert_int_equal(ws_close_code(fd), 1002);
    close(fd);
    fd = ws_open();
    ws_send(fd, 0x81, "\xc3\x28", 2, true); /* invalid UTF-8 */
    assert_int_equal(ws_close_code(fd), 1007);
    close(fd);
    fd = ws_open();
    char big[1500];
    memset(big, 'a', sizeof big);
    ws_send(fd, 0x81, big, sizeof big, true); /* over ws_max_message */
    assert_int_equal(ws_close_code(fd), 1009);
    close(fd);
    fd = ws_open();
    ws_send(fd, 0x82, "\x01", 1, true); /* binary */
    assert_int_equal(ws_close_code(fd), 1003);
    close(fd);
    fd = ws_open();
    ws_send(fd, 0x80, "x", 1, true); /* continuation without a start */
    assert_int_equal(ws_close_code(fd), 1002);
    close(fd);
}

static void test_ws_bad_handshakes(void **state)
{
    (void)state;
    static const struct {
        const char *request, *status;
    } cases[] = {
        {"GET /ws HTTP/1.1\r\nHost: t\r\n\r\n", "426"},
        {"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: "
         "Upgrade\r\nSec-WebSocket-Version: "
         "8\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
         "426"},
        {"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: "
         "Upgrade\r\nSec-WebSocket-Version: "
         "13\r\n\r\n",
         "400"},
        {"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: "
         "Upgrade\r\nSec-WebSocket-Version: "
         "13\r\n"
         "Sec-WebSocket-Key: short\r\n\r\n",
         "400"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = client();
        assert_int_equal(write(fd, cases[i].request, strlen(cases[i].request)),
                         (ssize_t)strlen(cases[i].request));
        char *r = read_some(fd, "}");
        if (strstr(r, cases[i].status) == NULL)
            fail_msg("case %zu: want %s, got %.100s", i, cases[i].status, r);
        if (strcmp(cases[i].status, "426") == 0 && strstr(cases[i].request, "Version: 8") != NULL)
            assert_non_null(strstr(r, "Sec-WebSocket-Version: 13"));
        free(r);
        close(fd);
    }
}

static void test_drain_tells_clients(void **state)
{
    (void)state;
    /* Covered by shutdown: a WebSocket gets 1001 and a stream ends. Run last. */
    int ws = ws_open();
    int sse = client();
    char *r = request(sse, "/sse?after=0", "heartbeat");
    free(r);
    uv_async_send(&fx->stop_async);
    assert_int_equal(ws_close_code(ws), 1001);
    r = read_some(sse, "0\r\n\r\n");
    assert_non_null(strstr(r, "0\r\n\r\n"));
    free(r);
    close(ws);
    close(sse);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_empty_then_events),
        cmocka_unit_test(test_longpoll_wakes_on_publish),
        cmocka_unit_test(test_longpoll_times_out_empty),
        cmocka_unit_test(test_longpoll_answers_backlog_at_once),
        cmocka_unit_test(test_iframe_stream),
        cmocka_unit_test(test_iframe_ends_after_max_bytes),
        cmocka_unit_test(test_sse_stream),
        cmocka_unit_test(test_shared_encodings),
        cmocka_unit_test(test_ws_events_and_echo),
        cmocka_unit_test(test_ws_protocol_errors),
        cmocka_unit_test(test_ws_bad_handshakes),
        cmocka_unit_test(test_drain_tells_clients),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
