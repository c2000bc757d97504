/* test_webhooks.c: the webhook dispatcher (src/chat/webhooks.c): the signature against a vector
 * computed elsewhere, the backoff schedule, which addresses are refused; then deliveries to a
 * small HTTP receiver on the test's own loop: a signed event that verifies, a 500 retried until
 * it goes, a loopback address refused without allow_private, and a delivery pending at a stop
 * sent by the next dispatcher (the store keeps it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/clock.h"
#include "base/err.h"
#include "chat/webhooks.h"
#include "support/sqlite_db.h"

/* ---- the pure parts ---- */

static void test_signature(void **state)
{
    (void)state;
    char out[KF_WEBHOOK_SIGNATURE_SIZE];
    const char *body = "{\"event\":\"message.created\"}";
    assert_int_equal(kf_webhook_sign("whsec-test", "1700000000", body, strlen(body), out), 0);
    /* python3: hmac.new(b'whsec-test', b'1700000000.' + body, hashlib.sha256).hexdigest() */
    assert_string_equal(out,
                        "sha256=c16cee76e9226b98a613bf97d7c368e73c6a914d9f2df822622dd478eaa8cf93");
    assert_int_equal(kf_webhook_sign("whsec-test", "1700000001", body, strlen(body), out), 0);
    assert_string_not_equal(
        out, "sha256=c16cee76e9226b98a613bf97d7c368e73c6a914d9f2df822622dd478eaa8cf93");
}

static void test_backoff(void **state)
{
    (void)state;
    const int64_t base = KF_WEBHOOK_RETRY_BASE_MS, created = 1000000, hour = 3600000;
    /* Doubling from the base: 30 s, 1 min, 2 min, ... up to an hour, then hourly. */
    static const int64_t waits[] = {30000,  60000,   120000, 240000, 480000,
                                    960000, 1920000, hour,   hour};
    for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++)
        assert_int_equal(kf_webhook_next_at(created, created, (int64_t)i + 1, base),
                         created + waits[i]);
    assert_int_equal(kf_webhook_next_at(created, created, 1000, base), created + hour);
    /* Past a day after the event: given up (0). */
    int64_t late = created + KF_WEBHOOK_RETRY_FOR_MS - hour;
    assert_int_equal(kf_webhook_next_at(created, late, 20, base), late + hour);
    assert_int_equal(kf_webhook_next_at(created, late + 1, 20, base), 0);
    /* Attempts made over a day of failures: each wait doubled then an hour, ending at a day. */
    int64_t now = created, attempts = 0;
    while ((now = kf_webhook_next_at(created, now, ++attempts, base)) != 0)
        assert_true(now <= created + KF_WEBHOOK_RETRY_FOR_MS);
    assert_in_range(attempts, 25, 32);
}

static bool public_address(const char *text)
{
    struct sockaddr_storage storage;
    memset(&storage, 0, sizeof storage);
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&storage;
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&storage;
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &in->sin_addr), 1);
    }
    return kf_webhook_address_public((const struct sockaddr *)&storage);
}

static void test_addresses(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "127.0.0.1",
        "127.255.0.9",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "198.18.0.1",
    };
    static const char *const allowed[] = {
        "93.184.216.34",        "8.8.8.8",     "172.32.0.1", "100.128.0.1", "2606:4700::1111",
        "::ffff:93.184.216.34", "192.169.0.1",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (public_address(refused[i]))
            fail_msg("%s is allowed", refused[i]);
    }
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        if (!public_address(allowed[i]))
            fail_msg("%s is refused", allowed[i]);
    }
    assert_true(kf_webhook_event_known("rating.created"));
    assert_false(kf_webhook_event_known("message.sent"));
}

/* ---- a receiver and a store on the test's loop ---- */

#define MAX_REQUESTS 8

typedef struct request {
    char head[4096];
    char body[4096];
} request_t;

typedef struct receiver {
    uv_tcp_t server;
    int port;
    int statuses[MAX_REQUESTS]; /* answered in turn; 0: 200 */
    request_t got[MAX_REQUESTS];
    int count;
} receiver_t;

typedef struct connection {
    uv_tcp_t tcp;
    receiver_t *receiver;
    char data[8192];
    size_t len;
    bool answered;
} connection_t;

static void closed_cb(uv_handle_t *handle)
{
    free(handle);
}

static void written_cb(uv_write_t *write, int status)
{
    (void)status;
    uv_close((uv_handle_t *)write->handle, closed_cb);
    free(write);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    connection_t *c = (connection_t *)handle;
    (void)suggested;
    buf->base = c->data + c->len;
    buf->len = sizeof c->data - 1 - c->len;
}

/* A whole request (head and Content-Length bytes of body) is recorded and answered. */
static void read_cb(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    connection_t *c = (connection_t *)stream;
    (void)buf;
    if (n < 0) {
        if (!c->answered)
            uv_close((uv_handle_t *)stream, closed_cb);
        return;
    }
    c->len += (size_t)n;
    c->data[c->len] = '\0';
    char *end = strstr(c->data, "\r\n\r\n");
    if (end == NULL || c->answered)
        return;
    const char *length = strcasestr(c->data, "\r\ncontent-length:");
    size_t body_len = length != NULL ? strtoul(length + 17, NULL, 10) : 0;
    if (c->len < (size_t)(end + 4 - c->data) + body_len)
        return;
    receiver_t *r = c->receiver;
    assert_true(r->count < MAX_REQUESTS);
    request_t *req = &r->got[r->count];
    snprintf(req->head, sizeof req->head, "%.*s", (int)(end - c->data), c->data);
    snprintf(req->body, sizeof req->body, "%.*s", (int)body_len, end + 4);
    int status = r->statuses[r->count] != 0 ? r->statuses[r->count] : 200;
    r->count++;
    c->answered = true;
    uv_read_stop(stream);
    static char answer[128];
    snprintf(answer, sizeof answer,
             "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", status);
    uv_write_t *write = malloc(sizeof *write);
    uv_buf_t out = uv_buf_init(answer, (unsigned)strlen(answer));
    uv_write(write, stream, &out, 1, written_cb);
}

static void connection_cb(uv_stream_t *server, int status)
{
    assert_int_equal(status, 0);
    connection_t *c = calloc(1, sizeof *c);
    c->receiver = server->data;
    uv_tcp_init(server->loop, &c->tcp);
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void receiver_start(uv_loop_t *loop, receiver_t *r)
{
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &r->server);
    r->server.data = r;
    assert_int_equal(uv_tcp_bind(&r->server, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r->server, 16, connection_cb), 0);
    struct sockaddr_in bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&r->server, (struct sockaddr *)&bound, &len);
    r->port = ntohs(bound.sin_port);
}

/* The value of header name (with its ": ") in head, into out. */
static void header(const char *head, const char *name, char *out, size_t size)
{
    const char *at = strcasestr(head, name);
    assert_non_null(at);
    at += strlen(name);
    size_t len = strcspn(at, "\r\n");
    snprintf(out, size, "%.*s", (int)len, at);
}

typedef struct world {
    uv_loop_t loop;
    uv_async_t wakeup;
    sqlite_db_t *db;
    kf_store_t *store;
    receiver_t receiver;
    kf_webhook_attempt_t log[KF_STORE_WEBHOOK_LOG_MAX];
    char errors[KF_STORE_WEBHOOK_LOG_MAX][256];
    int log_count;
    int64_t webhook_id;
    char secret[80];
} world_t;

static void wakeup_cb(uv_async_t *async)
{
    world_t *w = async->data;
    w->store->ops->complete(w->store);
}

static void notify(void *data)
{
    uv_async_send(data);
}

static int setup(void **state)
{
    world_t *w = calloc(1, sizeof *w);
    uv_loop_init(&w->loop);
    w->db = sqlite_db_create();
    assert_int_equal(kf_store_open_sqlite(w->db->path, "OFF", &w->store), 0);
    uv_async_init(&w->loop, &w->wakeup, wakeup_cb);
    w->wakeup.data = w;
    w->store->ops->set_notify(w->store, notify, &w->wakeup);
    receiver_start(&w->loop, &w->receiver);
    *state = w;
    return 0;
}

static void close_walk_cb(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL); /* the receiver's: embedded, not allocated */
}

static int teardown(void **state)
{
    world_t *w = *state;
    w->store->ops->set_notify(w->store, NULL, NULL);
    kf_store_close(w->store);
    uv_walk(&w->loop, close_walk_cb, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    sqlite_db_check(w->db);
    sqlite_db_destroy(w->db);
    free(w);
    return 0;
}

static void created_cb(void *ctx, const kf_store_result_t *r)
{
    world_t *w = ctx;
    assert_int_equal(r->rc, 0);
    w->webhook_id = r->webhook->id;
    snprintf(w->secret, sizeof w->secret, "%s", r->webhook->secret);
}

static void add_webhook(world_t *w, const char *host, const char *events)
{
    char url[128];
    snprintf(url, sizeof url, "http://%s:%d/hook", host, w->receiver.port);
    assert_int_equal(w->store->ops->webhook_create(w->store, url, events, "s3cret-for-tests",
                                                   kf_clock_wall_ms(), created_cb, w),
                     0);
    w->store->ops->flush(w->store);
    assert_string_equal(w->secret, "s3cret-for-tests");
}

static int attempt_cb(void *ctx, const kf_webhook_attempt_t *a)
{
    world_t *w = ctx;
    w->log[w->log_count] = *a;
    snprintf(w->errors[w->log_count], sizeof w->errors[0], "%s", a->error);
    w->log[w->log_count].error = w->errors[w->log_count];
    w->log[w->log_count].event = NULL;
    w->log_count++;
    return 0;
}

static void listed_cb(void *ctx, const kf_store_result_t *r)
{
    (void)ctx;
    assert_int_equal(r->rc, 0);
}

/* The webhook's log, newest first, into w->log. */
static void read_log(world_t *w)
{
    w->log_count = 0;
    assert_int_equal(w->store->ops->webhook_attempts(w->store, w->webhook_id,
                                                     KF_STORE_WEBHOOK_LOG_MAX, attempt_cb,
                                                     listed_cb, w),
                     0);
    w->store->ops->flush(w->store);
}

/* Turns the loop until the log has count attempts (or 10 s pass). */
static void run_until_logged(world_t *w, int count)
{
    uint64_t until = kf_clock_mono_ms() + 10000;
    do {
        uv_run(&w->loop, UV_RUN_NOWAIT);
        read_log(w);
        if (w->log_count < count)
            uv_sleep(5);
    } while (w->log_count < count && kf_clock_mono_ms() < until);
    assert_int_equal(w->log_count, count);
}

static void test_delivery_signed_and_retried(void **state)
{
    world_t *w = *state;
    add_webhook(w, "127.0.0.1", "message.created,rating.created");
    w->receiver.statuses[0] = 500;
    kf_webhooks_t *hooks = kf_webhooks_new(&w->loop, w->store, true);
    assert_non_null(hooks);
    kf_webhooks_set_retry_base(hooks, 20);
    kf_webhooks_emit(hooks, "conversation.created", json_pack("{s:i}", "id", 1)); /* not taken */
    kf_webhooks_emit(hooks, "message.created", json_pack("{s:s}", "body", "hello 你好"));
    run_until_logged(w, 2);
    /* Newest first: the retry went, after the 500. */
    assert_int_equal(w->log[1].status, 500);
    assert_string_equal(w->log[1].error, "HTTP 500");
    assert_true(w->log[1].next_at > w->log[1].at);
    assert_int_equal(w->log[1].attempt, 1);
    assert_int_equal(w->log[0].status, 200);
    assert_string_equal(w->log[0].error, "");
    assert_int_equal(w->log[0].next_at, 0);
    assert_int_equal(w->log[0].attempt, 2);
    assert_int_equal(w->receiver.count, 2);
    /* Each request verifies: HMAC-SHA256 of timestamp "." body under the secret. */
    for (int i = 0; i < 2; i++) {
        const request_t *req = &w->receiver.got[i];
        assert_non_null(strstr(req->head, "POST /hook HTTP/1.1"));
        char timestamp[32], signature[128], event[64];
        header(req->head, "X-Kefu-Timestamp: ", timestamp, sizeof timestamp);
        header(req->head, "X-Kefu-Signature: ", signature, sizeof signature);
        header(req->head, "X-Kefu-Event: ", event, sizeof event);
        assert_string_equal(event, "message.created");
        assert_true(llabs(strtoll(timestamp, NULL, 10) - kf_clock_wall_ms() / 1000) < 60);
        char message[8192];
        int len = snprintf(message, sizeof message, "%s.%s", timestamp, req->body);
        unsigned char mac[32];
        unsigned int mac_len = 0;
        HMAC(EVP_sha256(), "s3cret-for-tests", 16, (const unsigned char *)message, (size_t)len, mac,
             &mac_len);
        char expected[80] = "sha256=";
        for (unsigned int b = 0; b < mac_len; b++)
            snprintf(expected + 7 + 2 * b, 3, "%02x", mac[b]);
        assert_string_equal(signature, expected);
        json_error_t error;
        json_t *body = json_loads(req->body, 0, &error);
        assert_non_null(body);
        assert_string_equal(json_string_value(json_object_get(body, "event")), "message.created");
        assert_true(json_integer_value(json_object_get(body, "created_at")) > 0);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(body, "data"), "body")),
            "hello 你好");
        json_decref(body);
    }
    kf_webhooks_free(hooks);
}

static void test_private_address_refused(void **state)
{
    world_t *w = *state;
    add_webhook(w, "localhost", "message.created");
    kf_webhooks_t *hooks = kf_webhooks_new(&w->loop, w->store, false);
    kf_webhooks_set_retry_base(hooks, 60000);
    kf_webhooks_emit(hooks, "message.created", json_pack("{s:i}", "id", 7));
    run_until_logged(w, 1);
    assert_int_equal(w->log[0].status, 0);
    assert_non_null(strstr(w->log[0].error, "private, loopback or link-local"));
    assert_true(w->log[0].next_at > 0); /* retried later, in case the name moves */
    assert_int_equal(w->receiver.count, 0);
    kf_webhooks_free(hooks);
}

static void enqueued_cb(void *ctx, const kf_store_result_t *r)
{
    (void)ctx;
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->count, 1);
}

static void test_pending_survives_a_stop(void **state)
{
    world_t *w = *state;
    add_webhook(w, "127.0.0.1", "rating.created");
    /* Stored as the dispatcher stores an event, with no dispatcher running: a stopped server. */
    assert_int_equal(w->store->ops->webhook_enqueue(w->store, "rating.created",
                                                    "{\"event\":\"rating.created\"}",
                                                    kf_clock_wall_ms(), enqueued_cb, NULL),
                     0);
    w->store->ops->flush(w->store);
    assert_int_equal(w->receiver.count, 0);
    kf_webhooks_t *hooks = kf_webhooks_new(&w->loop, w->store, true);
    run_until_logged(w, 1);
    assert_int_equal(w->log[0].status, 200);
    assert_int_equal(w->receiver.count, 1);
    assert_string_equal(w->receiver.got[0].body, "{\"event\":\"rating.created\"}");
    kf_webhooks_free(hooks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test_setup_teardown(test_delivery_signed_and_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_address_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_survives_a_stop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
