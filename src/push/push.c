/* push.c: the three HTTP push transports over one hub: poll (answer at once), long poll (hold
 * until an event or a timeout) and the forever iframe (a chunked HTML page of <script> calls). */
#include "push/push.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define TICK_MS 1000
#define IFRAME_PADDING 4096

typedef struct push_client push_client_t;

struct push_client {
    kf_sub_t sub;               /* on the source's topic */
    kf_push_t *push;
    kf_req_t *req;              /* the held or streaming request */
    kf_push_transport_t transport;
    uint64_t cursor;            /* id of the last message event sent */
    uint64_t deadline_ms;       /* long poll: answer empty at this loop time */
    uint64_t last_write_ms;     /* iframe: time of the last write, for heartbeats */
    size_t bytes_written;       /* iframe: bytes so far, for the forced reconnect */
    push_client_t *prev, *next; /* the module's list of clients */
};

struct kf_push {
    uv_loop_t *loop;
    kf_hub_t *hub;
    kf_push_config_t config;
    uv_timer_t tick;            /* one coarse timer for every client's timeout and heartbeat */
    push_client_t *clients;
    size_t client_count;
};

void kf_push_config_default(kf_push_config_t *config)
{
    config->longpoll_hold_ms = 25000;
    config->heartbeat_ms = 20000;
    config->iframe_max_bytes = 1024 * 1024;
    config->replay_batch = 500;
}

/* ---- clients ---- */

static push_client_t *client_new(kf_push_t *push, kf_req_t *req, kf_push_transport_t transport,
                                 uint64_t cursor)
{
    push_client_t *client = kf_xcalloc(1, sizeof *client);
    client->push = push;
    client->req = req;
    client->transport = transport;
    client->cursor = cursor;
    client->last_write_ms = uv_now(push->loop);
    client->next = push->clients;
    if (push->clients != NULL)
        push->clients->prev = client;
    push->clients = client;
    push->client_count++;
    return client;
}

static void client_free(push_client_t *client)
{
    kf_push_t *push = client->push;
    kf_hub_unsubscribe(push->hub, &client->sub);
    if (client->prev != NULL)
        client->prev->next = client->next;
    else
        push->clients = client->next;
    if (client->next != NULL)
        client->next->prev = client->prev;
    push->client_count--;
    free(client);
}

static void client_abort_cb(kf_req_t *req, void *data)
{
    (void)req;
    client_free(data);
}

/* ---- poll and long poll: {"events": [...], "cursor": "N"} ---- */

typedef struct batch {
    kf_buf_t json;   /* the events array being built */
    size_t count;
    uint64_t cursor;
} batch_t;

static int batch_add_cb(void *ctx, kf_event_t *event)
{
    batch_t *batch = ctx;
    kf_buf_append_str(&batch->json, batch->count == 0 ? "" : ",");
    kf_buf_append(&batch->json, event->json, event->len);
    batch->count++;
    if (event->id > batch->cursor)
        batch->cursor = event->id;
    return 0;
}

static void batch_send(kf_req_t *req, batch_t *batch)
{
    kf_buf_t body;
    kf_buf_init(&body);
    kf_buf_append_str(&body, "{\"events\":[");
    if (batch->json.len > 0)
        kf_buf_append(&body, batch->json.data, batch->json.len);
    kf_buf_printf(&body, "],\"cursor\":\"%llu\"}", (unsigned long long)batch->cursor);
    kf_resp_header(req, "Cache-Control", "no-store");
    kf_resp_send(req, 200, "application/json", body.data, body.len);
    kf_buf_free(&body);
}

static void longpoll_event_cb(kf_sub_t *sub, kf_event_t *event)
{
    push_client_t *client = sub->data;
    if (event->id != 0 && event->id <= client->cursor)
        return; /* already replayed */
    batch_t batch = {.count = 0, .cursor = client->cursor};
    kf_buf_init(&batch.json);
    batch_add_cb(&batch, event);
    kf_req_t *req = client->req;
    req->abort_cb = NULL;
    client_free(client);
    batch_send(req, &batch);
    kf_buf_free(&batch.json);
}

/* ---- forever iframe ---- */

/* Writes one event as a script call into the parent page. '<' (only possible inside JSON
 * strings) is escaped so that no "</script>" or "<!--" in a message can end the script. */
static int iframe_write_event(push_client_t *client, const char *json, size_t len)
{
    kf_buf_t out;
    kf_buf_init(&out);
    kf_buf_append_str(&out, "<script>parent.kefuPush(");
    for (size_t i = 0; i < len; i++) {
        if (json[i] == '<')
            kf_buf_append_str(&out, "\\u003c");
        else if (json[i] == '>')
            kf_buf_append_str(&out, "\\u003e");
        else
            kf_buf_append(&out, &json[i], 1);
    }
    kf_buf_append_str(&out, ");</script>\n");
    int rc = kf_resp_stream_write(client->req, out.data, out.len);
    client->bytes_written += out.len;
    client->last_write_ms = uv_now(client->push->loop);
    kf_buf_free(&out);
    return rc;
}

/* Ends the stream with a reconnect event; the page reopens the iframe with its cursor. */
static void iframe_end(push_client_t *client)
{
    static const char reconnect[] = "{\"type\":\"reconnect\"}";
    kf_req_t *req = client->req;
    if (iframe_write_event(client, reconnect, sizeof reconnect - 1) != 0) {
        client_free(client);
        return;
    }
    req->abort_cb = NULL;
    client_free(client);
    kf_resp_stream_end(req);
}

static int iframe_send(push_client_t *client, kf_event_t *event)
{
    if (event->id != 0 && event->id <= client->cursor)
        return 0;
    if (iframe_write_event(client, event->json, event->len) != 0)
        return KF_ELIMIT; /* the server closed the connection; the client is freed by the caller */
    if (event->id > client->cursor)
        client->cursor = event->id;
    return 0;
}

static void iframe_event_cb(kf_sub_t *sub, kf_event_t *event)
{
    push_client_t *client = sub->data;
    if (iframe_send(client, event) != 0) {
        client_free(client);
        return;
    }
    if (client->bytes_written >= client->push->config.iframe_max_bytes)
        iframe_end(client);
}

static int iframe_replay_cb(void *ctx, kf_event_t *event) { return iframe_send(ctx, event); }

static void iframe_start(kf_push_t *push, kf_req_t *req, const kf_push_source_t *source, uint64_t after)
{
    push_client_t *client = client_new(push, req, KF_PUSH_IFRAME, after);
    kf_resp_header(req, "Cache-Control", "no-store");
    kf_resp_header(req, "X-Frame-Options", "SAMEORIGIN");
    kf_resp_header(req, "Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; frame-ancestors 'self'");
    kf_resp_stream_start(req, 200, "text/html; charset=utf-8", client_abort_cb, client);
    /* Browsers render a streamed document only after some bytes; the padding gets the first
     * script executed at once. */
    kf_buf_t head;
    kf_buf_init(&head);
    kf_buf_append_str(&head, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>kefu push</title>"
                             "</head><body><!--");
    while (head.len < IFRAME_PADDING)
        kf_buf_append_str(&head, "                                                                ");
    kf_buf_append_str(&head, "-->\n");
    int rc = kf_resp_stream_write(req, head.data, head.len);
    kf_buf_free(&head);
    if (rc != 0) {
        client_free(client);
        return;
    }
    static const char hello[] = "{\"type\":\"heartbeat\"}";
    if (iframe_write_event(client, hello, sizeof hello - 1) != 0) {
        client_free(client);
        return;
    }
    bool more = true;
    while (more) {
        uint64_t before = client->cursor;
        more = false;
        rc = source->replay(source->ctx, client->cursor, push->config.replay_batch, iframe_replay_cb,
                            client, &more);
        if (rc == KF_ELIMIT) {
            client_free(client);
            return;
        }
        if (rc != 0 || client->cursor == before)
            break;
    }
    kf_sub_init(&client->sub, iframe_event_cb, client);
    kf_hub_subscribe(push->hub, source->topic, &client->sub);
}

/* ---- entry points ---- */

void kf_push_serve(kf_push_t *push, kf_req_t *req, kf_push_transport_t transport,
                   const kf_push_source_t *source, uint64_t after, uint64_t hold_ms)
{
    if (transport == KF_PUSH_IFRAME) {
        iframe_start(push, req, source, after);
        return;
    }
    batch_t batch = {.count = 0, .cursor = after};
    kf_buf_init(&batch.json);
    bool more = false;
    int rc = source->replay(source->ctx, after, push->config.replay_batch, batch_add_cb, &batch, &more);
    if (rc != 0) {
        kf_buf_free(&batch.json);
        kf_resp_error(req, 500, "internal", "could not read stored events");
        return;
    }
    if (batch.count > 0 || transport == KF_PUSH_POLL) {
        batch_send(req, &batch);
        kf_buf_free(&batch.json);
        return;
    }
    kf_buf_free(&batch.json);
    push_client_t *client = client_new(push, req, KF_PUSH_LONGPOLL, after);
    client->deadline_ms = uv_now(push->loop) + (hold_ms != 0 ? hold_ms : push->config.longpoll_hold_ms);
    kf_req_hold(req, client_abort_cb, client);
    kf_sub_init(&client->sub, longpoll_event_cb, client);
    kf_hub_subscribe(push->hub, source->topic, &client->sub);
}

static void longpoll_timeout(push_client_t *client)
{
    batch_t batch = {.count = 0, .cursor = client->cursor};
    kf_buf_init(&batch.json);
    kf_req_t *req = client->req;
    req->abort_cb = NULL;
    client_free(client);
    batch_send(req, &batch);
    kf_buf_free(&batch.json);
}

static void tick_cb(uv_timer_t *timer)
{
    kf_push_t *push = timer->data;
    uint64_t now = uv_now(push->loop);
    push_client_t *next;
    for (push_client_t *client = push->clients; client != NULL; client = next) {
        next = client->next;
        if (client->transport == KF_PUSH_LONGPOLL && now >= client->deadline_ms) {
            longpoll_timeout(client);
        } else if (client->transport == KF_PUSH_IFRAME &&
                   now - client->last_write_ms >= push->config.heartbeat_ms) {
            static const char heartbeat[] = "{\"type\":\"heartbeat\"}";
            if (iframe_write_event(client, heartbeat, sizeof heartbeat - 1) != 0)
                client_free(client);
        }
    }
}

kf_push_t *kf_push_new(uv_loop_t *loop, kf_hub_t *hub, const kf_push_config_t *config)
{
    kf_push_t *push = kf_xcalloc(1, sizeof *push);
    push->loop = loop;
    push->hub = hub;
    push->config = *config;
    uv_timer_init(loop, &push->tick);
    push->tick.data = push;
    uv_timer_start(&push->tick, tick_cb, TICK_MS, TICK_MS);
    return push;
}

void kf_push_drain(kf_push_t *push)
{
    while (push->clients != NULL) {
        push_client_t *client = push->clients;
        if (client->transport == KF_PUSH_LONGPOLL)
            longpoll_timeout(client);
        else
            iframe_end(client);
    }
}

size_t kf_push_client_count(const kf_push_t *push) { return push->client_count; }

static void tick_closed_cb(uv_handle_t *handle) { free(handle->data); }

void kf_push_free(kf_push_t *push)
{
    kf_push_drain(push);
    uv_timer_stop(&push->tick);
    uv_close((uv_handle_t *)&push->tick, tick_closed_cb);
}
