/* push_fixture.c: the server, hub, push module and replay source of the push tests
 * (push_fixture.h). */
#include "support/push_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

push_fixture_t *pf;

/* ---- the replay source ---- */

/* Answers one replay call from the events stored when it was made. */
static void pending_answer(const pf_pending_t *p)
{
    size_t sent = 0;
    bool more = false;
    for (size_t i = 0; i < p->snapshot; i++) {
        if (pf->stored[i]->id <= p->after)
            continue;
        if (sent == p->limit) {
            more = true;
            break;
        }
        sent++;
        if (p->emit(p->emit_ctx, pf->stored[i]) != 0) {
            pf->emit_stops++;
            break;
        }
    }
    p->replayed(p->emit_ctx, pf->replay_fail, more);
}

bool pf_release(void)
{
    if (pf->pending_count == 0)
        return false;
    pf_pending_t p = pf->pending[0];
    memmove(pf->pending, pf->pending + 1, --pf->pending_count * sizeof *pf->pending);
    pending_answer(&p);
    return true;
}

static void idle_cb(uv_idle_t *idle)
{
    uv_idle_stop(idle);
    while (pf_release()) {
    }
}

static int replay(void *ctx, char kind, int64_t subject, uint64_t after, size_t limit,
                  kf_push_emit_fn emit, kf_push_replayed_fn replayed, void *emit_ctx)
{
    assert_ptr_equal(ctx, pf);
    assert_int_equal(kind, 'v');
    assert_true(subject == 7 || subject == 8);
    if (pf->replay_refuse != 0)
        return pf->replay_refuse;
    pf->replay_calls++;
    pf_pending_t p = {after, limit, pf->count, emit, replayed, emit_ctx};
    if (pf->mode == PF_REPLAY_SYNC) {
        pending_answer(&p);
        return 0;
    }
    assert_true(pf->pending_count < PF_MAX_PENDING);
    pf->pending[pf->pending_count++] = p;
    if (pf->mode == PF_REPLAY_IDLE)
        uv_idle_start(&pf->idle, idle_cb);
    return 0;
}

kf_event_t *pf_store(const char *body)
{
    assert_true(pf->count < PF_MAX_EVENTS);
    char json[512];
    uint64_t id = pf->count + 1;
    int n = snprintf(json, sizeof json, "{\"type\":\"message\",\"body\":\"%s\",\"id\":\"%llu\"}",
                     body, (unsigned long long)id);
    assert_true(n > 0 && (size_t)n < sizeof json);
    return pf->stored[pf->count++] = kf_event_new(id, json, (size_t)n);
}

void pf_publish(kf_event_t *event)
{
    kf_hub_publish(pf->hub, "t", event);
}

void pf_store_publish(const char *body)
{
    pf_publish(pf_store(body));
}

void pf_publish_typing(void)
{
    static const char typing[] = "{\"type\":\"typing\"}";
    kf_event_t *event = kf_event_new(0, typing, sizeof typing - 1);
    pf_publish(event);
    kf_event_unref(event);
}

size_t pf_publish_ephemeral(unsigned n, size_t pad)
{
    kf_buf_t json;
    kf_buf_init(&json);
    kf_buf_printf(&json, "{\"type\":\"typing\",\"n\":\"%u\"", n);
    if (pad > 0) {
        kf_buf_append_str(&json, ",\"p\":\"");
        for (size_t i = 0; i < pad; i++)
            kf_buf_append(&json, "x", 1);
        kf_buf_append_str(&json, "\"");
    }
    kf_buf_append_str(&json, "}");
    kf_event_t *event = kf_event_new(0, json.data, json.len);
    pf_publish(event);
    kf_event_unref(event);
    size_t len = json.len;
    kf_buf_free(&json);
    return len;
}

size_t pf_listeners(void)
{
    return kf_hub_count(pf->hub, "t") - kf_push_window_count(pf->push, NULL);
}

uint64_t pf_eseq(const lc_client_t *c)
{
    static const char key[] = "\"eseq\":\"";
    long at = lc_find(c, key);
    if (at < 0)
        fail_msg("no eseq in the answer");
    uint64_t eseq = 0;
    for (const char *p = c->in.data + at + sizeof key - 1; *p >= '0' && *p <= '9'; p++)
        eseq = eseq * 10 + (uint64_t)(*p - '0');
    return eseq;
}

/* ---- the server side ---- */

static void receive_cb(void *ctx, kf_push_client_t *client, char kind, int64_t subject,
                       const char *text, size_t len)
{
    assert_ptr_equal(ctx, pf);
    assert_int_equal(kind, 'v');
    assert_int_equal(subject, 7);
    pf->received++;
    if (len == 4 && memcmp(text, "keep", 4) == 0) {
        kf_push_client_ref(client);
        pf->kept = client;
        return;
    }
    char reply[1100];
    int n = snprintf(reply, sizeof reply, "{\"echo\":%.*s}", (int)len, text);
    assert_int_equal(kf_push_client_send(client, reply, (size_t)n), 0);
}

static void handler(kf_req_t *req)
{
    char value[32];
    uint64_t after = 0, who = 7;
    int n = kf_http_query_get(req->head->query, "after", value, sizeof value);
    if (n >= 0)
        kf_parse_u64((kf_str_t){value, (size_t)n}, &after);
    n = kf_http_query_get(req->head->query, "who", value, sizeof value);
    if (n >= 0)
        kf_parse_u64((kf_str_t){value, (size_t)n}, &who);
    kf_push_source_t source = {
        .topic = "t", .replay = replay, .ctx = pf, .kind = 'v', .subject = (int64_t)who};
    static const struct {
        const char *path;
        kf_push_transport_t transport;
    } paths[] = {{"/longpoll", KF_PUSH_LONGPOLL},
                 {"/short", KF_PUSH_LONGPOLL},
                 {"/iframe", KF_PUSH_IFRAME},
                 {"/sse", KF_PUSH_SSE},
                 {"/ws", KF_PUSH_WS}};
    kf_push_transport_t transport = KF_PUSH_POLL;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (kf_str_eq(req->head->path, paths[i].path))
            transport = paths[i].transport;
    }
    kf_push_serve(pf->push, req, transport, &source, after,
                  kf_str_eq(req->head->path, "/short") ? 1000 : 0);
}

int push_fixture_setup(void **state)
{
    (void)state;
    pf = kf_xcalloc(1, sizeof *pf);
    assert_int_equal(uv_loop_init(&pf->loop), 0);
    uv_idle_init(&pf->loop, &pf->idle);
    pf->hub = kf_hub_new();
    kf_push_config_default(&pf->config);
    pf->config.iframe_max_bytes = 8192;
    pf->config.heartbeat_ms = 1000;
    pf->config.replay_batch = 3;
    pf->config.ws_max_message = 1000;
    pf->config.receive = receive_cb;
    pf->config.receive_ctx = pf;
    pf->push = kf_push_new(&pf->loop, pf->hub, &pf->config);
    kf_server_config_t config;
    kf_server_config_default(&config);
    config.port = 0;
    assert_int_equal(kf_server_start(&pf->loop, &config, handler, NULL, &pf->server), 0);
    lc_init(&pf->loop, kf_server_port(pf->server));
    return 0;
}

void pf_restart(void)
{
    kf_push_free(pf->push);
    pf->push = kf_push_new(&pf->loop, pf->hub, &pf->config);
}

static void server_done_cb(void *data)
{
    *(bool *)data = true;
}

int push_fixture_teardown(void **state)
{
    (void)state;
    assert_int_equal(pf->pending_count, 0);
    if (pf->push != NULL)
        kf_push_free(pf->push);
    bool server_done = false;
    kf_server_stop(pf->server, server_done_cb, &server_done);
    uv_close((uv_handle_t *)&pf->idle, NULL);
    size_t left_open = lc_done();
    uv_run(&pf->loop, UV_RUN_DEFAULT);
    assert_int_equal(left_open, 0); /* the test closed its clients */
    assert_true(server_done);
    assert_int_equal(uv_loop_close(&pf->loop), 0); /* every handle, the clients' too, closed */
    assert_int_equal(kf_hub_count(pf->hub, "t"), 0);
    kf_hub_free(pf->hub);
    for (size_t i = 0; i < pf->count; i++)
        kf_event_unref(pf->stored[i]);
    free(pf);
    pf = NULL;
    return 0;
}

/* ---- what the tests ask of clients ---- */

lc_client_t *pf_answer(const char *path)
{
    lc_client_t *c = lc_get(path, "Connection: close\r\n");
    LC_RUN_UNTIL(c->eof);
    return c;
}

lc_client_t *pf_ws_open(const char *query)
{
    char path[128];
    snprintf(path, sizeof path, "/ws?%s", query);
    lc_client_t *c = lc_get(path, lc_ws_upgrade);
    LC_RUN_UNTIL(lc_seen(c, "{\"type\":\"heartbeat\"}") || c->eof);
    assert_true(lc_seen(c, "HTTP/1.1 101 Switching Protocols\r\n"));
    assert_true(lc_seen(c, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_false(lc_seen(c, "Content-Length"));
    return c;
}

void pf_check_events(const lc_client_t *c, uint64_t first, uint64_t last)
{
    long previous = -1;
    for (uint64_t id = first; id <= last; id++) {
        char text[32];
        snprintf(text, sizeof text, "\"id\":\"%llu\"}", (unsigned long long)id);
        if (lc_count(c, text) != 1)
            fail_msg("event %llu came %zu times", (unsigned long long)id, lc_count(c, text));
        long at = lc_find(c, text);
        if (at <= previous)
            fail_msg("event %llu came out of order", (unsigned long long)id);
        previous = at;
    }
}
