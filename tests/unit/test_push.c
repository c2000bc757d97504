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
    pthread_t thread;
    int port;
    pthread_mutex_t lock;
    kf_event_t *stored[MAX_EVENTS]; /* the "store": events 1..count */
    size_t count;
    size_t published;               /* stored events already published */
} fixture_t;

static fixture_t *fx;

static int replay(void *ctx, uint64_t after, size_t limit, kf_push_emit_fn emit, void *emit_ctx, bool *more)
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

static void handler(kf_req_t *req)
{
    char value[32];
    uint64_t after = 0;
    int n = kf_http_query_get(req->head.query, "after", value, sizeof value);
    if (n >= 0)
        kf_parse_u64((kf_str_t){value, (size_t)n}, &after);
    kf_push_source_t source = {.topic = "t", .replay = replay, .ctx = NULL};
    kf_push_transport_t transport = KF_PUSH_POLL;
    if (kf_str_eq(req->head.path, "/longpoll"))
        transport = KF_PUSH_LONGPOLL;
    else if (kf_str_eq(req->head.path, "/iframe"))
        transport = KF_PUSH_IFRAME;
    kf_push_serve(fx->push, req, transport, &source, after, kf_str_eq(req->head.path, "/short") ? 1000 : 0);
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

static void closed_cb(uv_handle_t *handle) { (void)handle; }

static void stop_cb(uv_async_t *async)
{
    (void)async;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_empty_then_events),
        cmocka_unit_test(test_longpoll_wakes_on_publish),
        cmocka_unit_test(test_longpoll_times_out_empty),
        cmocka_unit_test(test_longpoll_answers_backlog_at_once),
        cmocka_unit_test(test_iframe_stream),
        cmocka_unit_test(test_iframe_ends_after_max_bytes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
