/* push.c: the five push transports over one hub: poll (answer at once), long poll (hold until an
 * event or a timeout), the forever iframe (a chunked HTML page of <script> calls), Server-Sent
 * Events and WebSocket. Each replays stored events after the client's cursor, then follows the
 * hub, and drops an event it has already sent by its id. */
#include "push/push.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "http/ws.h"

#define TICK_MS 1000
#define IFRAME_PADDING 4096
/* Sent when a stream opens, so that a client sees at once that events get through (a buffering
 * proxy would hold it back), and as the iframe's periodic heartbeat. */
#define HEARTBEAT_JSON "{\"type\":\"heartbeat\"}"

struct kf_push_client {
    kf_sub_t sub; /* on the source's topic */
    kf_push_t *push;
    kf_req_t *req; /* the held, streaming or upgraded request */
    kf_push_transport_t transport;
    uint64_t cursor;        /* id of the last message event sent */
    uint64_t deadline_ms;   /* long poll: answer empty at this loop time */
    uint64_t last_write_ms; /* streams: time of the last write, for heartbeats and pings */
    uint64_t last_read_ms;  /* WebSocket: time of the last frame from the client */
    size_t bytes_written;   /* iframe: bytes so far, for the forced reconnect */
    char kind;              /* who listens ('v' or 'a'), for WebSocket messages */
    int64_t subject;
    kf_ws_message_t ws_message;    /* WebSocket: the message being reassembled */
    kf_buf_t ws_data;              /* WebSocket: its bytes so far (empty between messages) */
    bool ws_closing;               /* WebSocket: our close frame is sent; ignore what follows */
    unsigned refs;                 /* answers waiting for a commit: freeing waits for them */
    bool busy;                     /* inside the WebSocket reader: freeing waits for it */
    bool dead;                     /* its connection is gone: off the list and the topic */
    bool linked;                   /* on the module's list */
    kf_push_client_t *prev, *next; /* the module's list of clients */
};

struct kf_push {
    uv_loop_t *loop;
    kf_hub_t *hub;
    kf_push_config_t config;
    uv_timer_t tick; /* one coarse timer for every client's timeout and heartbeat */
    kf_push_client_t *clients;
    size_t client_count;
};

void kf_push_config_default(kf_push_config_t *config)
{
    memset(config, 0, sizeof *config);
    config->longpoll_hold_ms = 25000;
    config->heartbeat_ms = 20000;
    config->ws_dead_ms = 45000;
    config->iframe_max_bytes = 1024 * 1024;
    config->replay_batch = 500;
    config->ws_max_message = 64 * 1024;
    config->sse_retry_ms = 2000;
}

/* Milliseconds on the monotonic clock. Time stamps and deadlines read the clock itself rather
 * than the loop's cached time, which can lag behind when a callback runs long. */
static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* ---- clients ---- */

static kf_push_client_t *client_new(kf_push_t *push, kf_req_t *req, kf_push_transport_t transport,
                                    const kf_push_source_t *source, uint64_t cursor)
{
    kf_push_client_t *client = kf_xcalloc(1, sizeof *client);
    client->push = push;
    client->req = req;
    client->transport = transport;
    client->cursor = cursor;
    client->kind = source->kind;
    client->subject = source->subject;
    client->last_write_ms = now_ms();
    client->last_read_ms = client->last_write_ms;
    kf_buf_init(&client->ws_data);
    kf_ws_message_init(&client->ws_message, push->config.ws_max_message);
    client->next = push->clients;
    if (push->clients != NULL)
        push->clients->prev = client;
    push->clients = client;
    client->linked = true;
    push->client_count++;
    return client;
}

/* Takes the client off its topic and the module's list (once). */
static void client_unlink(kf_push_client_t *client)
{
    if (!client->linked)
        return;
    kf_push_t *push = client->push;
    kf_hub_unsubscribe(push->hub, &client->sub);
    if (client->prev != NULL)
        client->prev->next = client->next;
    else
        push->clients = client->next;
    if (client->next != NULL)
        client->next->prev = client->prev;
    push->client_count--;
    client->linked = false;
}

static void client_free(kf_push_client_t *client)
{
    client_unlink(client);
    kf_buf_free(&client->ws_data);
    free(client);
}

/* The client's connection is gone: free it now, or once its last holder lets go. */
static void client_kill(kf_push_client_t *client)
{
    client->dead = true;
    client_unlink(client);
    if (client->refs == 0 && !client->busy)
        client_free(client);
}

void kf_push_client_ref(kf_push_client_t *client)
{
    client->refs++;
}

void kf_push_client_unref(kf_push_client_t *client)
{
    assert(client->refs > 0);
    if (--client->refs == 0 && client->dead && !client->busy)
        client_free(client);
}

static void client_abort_cb(kf_req_t *req, void *data)
{
    (void)req;
    client_kill(data);
}

/* Writes bytes to a streaming or WebSocket client. Non-zero: the connection was closed. */
static int client_write(kf_push_client_t *client, const void *data, size_t len)
{
    int rc = client->transport == KF_PUSH_WS ? kf_conn_write(kf_req_conn(client->req), data, len)
                                             : kf_resp_stream_write(client->req, data, len);
    client->bytes_written += len;
    client->last_write_ms = now_ms();
    return rc;
}

/* ---- encodings ---- */

/* The event's type, from the JSON the chat layer builds with "type" first; "message" otherwise. */
static void event_type(const kf_event_t *event, char *out, size_t size)
{
    static const char prefix[] = "{\"type\":\"";
    snprintf(out, size, "message");
    if (event->len <= sizeof prefix - 1 || memcmp(event->json, prefix, sizeof prefix - 1) != 0)
        return;
    const char *start = event->json + sizeof prefix - 1;
    const char *end = memchr(start, '"', event->len - (sizeof prefix - 1));
    if (end == NULL || (size_t)(end - start) >= size)
        return;
    for (const char *p = start; p < end; p++) {
        if (*p < 'a' || *p > 'z')
            return; /* only plain names go on an event: line */
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
}

/* Appends json as one <script> call into the parent page. '<' and '>' (possible only inside JSON
 * strings) are escaped, so no "</script>" or "<!--" in a message can end the script. */
static void encode_iframe(kf_buf_t *out, const char *json, size_t len)
{
    kf_buf_append_str(out, "<script>parent.kefuPush(");
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (json[i] != '<' && json[i] != '>')
            continue;
        kf_buf_append(out, json + start, i - start);
        kf_buf_append_str(out, json[i] == '<' ? "\\u003c" : "\\u003e");
        start = i + 1;
    }
    kf_buf_append(out, json + start, len - start);
    kf_buf_append_str(out, ");</script>\n");
}

/* Appends one SSE event. The JSON is compact (no raw newlines), so one data: line carries it. */
static void encode_sse(kf_buf_t *out, const kf_event_t *event)
{
    char type[32];
    event_type(event, type, sizeof type);
    if (event->id != 0)
        kf_buf_printf(out, "id: %llu\n", (unsigned long long)event->id);
    kf_buf_printf(out, "event: %s\ndata: ", type);
    kf_buf_append(out, event->json, event->len);
    kf_buf_append_str(out, "\n\n");
}

static void encode_ws(kf_buf_t *out, unsigned opcode, const void *payload, size_t len)
{
    unsigned char header[10];
    size_t n = kf_ws_frame_header(opcode, len, header);
    kf_buf_append(out, header, n);
    kf_buf_append(out, payload, len);
}

/* The event framed for a streaming transport, built by the first subscriber that needs it and
 * kept with the event for the others (the agents' topic has one subscriber per open console). */
static void event_encoding(kf_event_t *event, kf_push_transport_t transport, const char **data,
                           size_t *len)
{
    int slot = transport == KF_PUSH_IFRAME ? 0 : transport == KF_PUSH_SSE ? 1 : 2;
    if (event->encoded[slot] == NULL) {
        kf_buf_t out;
        kf_buf_init(&out);
        if (transport == KF_PUSH_IFRAME)
            encode_iframe(&out, event->json, event->len);
        else if (transport == KF_PUSH_SSE)
            encode_sse(&out, event);
        else
            encode_ws(&out, KF_WS_TEXT, event->json, event->len);
        event->encoded[slot] = kf_buf_steal(&out, &event->encoded_len[slot]);
    }
    *data = event->encoded[slot];
    *len = event->encoded_len[slot];
}

/* Sends one event to a streaming client, unless its cursor shows it has it. Non-zero: the client
 * is gone (its connection was closed). */
static int stream_send(kf_push_client_t *client, kf_event_t *event)
{
    if (event->id != 0 && event->id <= client->cursor)
        return 0;
    const char *data;
    size_t len;
    event_encoding(event, client->transport, &data, &len);
    int rc = client_write(client, data, len);
    if (rc != 0)
        return rc;
    if (event->id > client->cursor)
        client->cursor = event->id;
    return 0;
}

static int ws_close(kf_push_client_t *client, unsigned code);

/* Ends a stream so that the client reconnects with its cursor (max bytes reached, or shutdown). */
static void stream_end(kf_push_client_t *client)
{
    kf_req_t *req = client->req;
    if (client->transport == KF_PUSH_WS) {
        ws_close(client, KF_WS_CLOSE_GOING_AWAY);
        return;
    }
    if (client->transport == KF_PUSH_IFRAME) {
        kf_buf_t out;
        kf_buf_init(&out);
        static const char reconnect[] = "{\"type\":\"reconnect\"}";
        encode_iframe(&out, reconnect, sizeof reconnect - 1);
        int rc = client_write(client, out.data, out.len);
        kf_buf_free(&out);
        if (rc != 0) {
            client_kill(client);
            return;
        }
    }
    kf_req_detach(req);
    client_kill(client);
    kf_resp_stream_end(req);
}

static void stream_event_cb(kf_sub_t *sub, kf_event_t *event)
{
    kf_push_client_t *client = sub->data;
    if (client->dead)
        return;
    if (stream_send(client, event) != 0) {
        client_kill(client);
        return;
    }
    if (client->transport == KF_PUSH_IFRAME &&
        client->bytes_written >= client->push->config.iframe_max_bytes)
        stream_end(client);
}

static int stream_replay_cb(void *ctx, kf_event_t *event)
{
    return stream_send(ctx, event);
}

/* Replays everything after the client's cursor, batch by batch, then follows the topic. */
static void stream_follow(kf_push_client_t *client, const kf_push_source_t *source)
{
    kf_push_t *push = client->push;
    bool more = true;
    while (more) {
        uint64_t before = client->cursor;
        more = false;
        int rc = source->replay(source->ctx, client->cursor, push->config.replay_batch,
                                stream_replay_cb, client, &more);
        if (rc == KF_ELIMIT || rc == KF_EIO || rc == KF_EINVAL) {
            client_kill(client);
            return;
        }
        if (rc != 0 || client->cursor == before)
            break;
        if (client->transport == KF_PUSH_IFRAME &&
            client->bytes_written >= push->config.iframe_max_bytes) {
            /* A long history is sent over several iframe documents, not buffered as one. */
            stream_end(client);
            return;
        }
    }
    kf_sub_init(&client->sub, stream_event_cb, client);
    kf_hub_subscribe(push->hub, source->topic, &client->sub);
}

/* ---- poll and long poll: {"events": [...], "cursor": "N"} ---- */

typedef struct batch {
    kf_buf_t json; /* the events array being built */
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
    kf_buf_free(&batch->json);
}

/* Answers a held long poll with event (or with nothing when event is NULL). */
static void longpoll_answer(kf_push_client_t *client, const kf_event_t *event)
{
    batch_t batch = {.count = 0, .cursor = client->cursor};
    kf_buf_init(&batch.json);
    if (event != NULL)
        batch_add_cb(&batch, (kf_event_t *)event);
    kf_req_t *req = client->req;
    kf_req_detach(req);
    client_free(client);
    batch_send(req, &batch);
}

static void longpoll_event_cb(kf_sub_t *sub, kf_event_t *event)
{
    kf_push_client_t *client = sub->data;
    if (event->id != 0 && event->id <= client->cursor)
        return; /* already replayed */
    longpoll_answer(client, event);
}

static void serve_poll(kf_push_t *push, kf_req_t *req, kf_push_transport_t transport,
                       const kf_push_source_t *source, uint64_t after, uint64_t hold_ms)
{
    batch_t batch = {.count = 0, .cursor = after};
    kf_buf_init(&batch.json);
    bool more = false;
    int rc =
        source->replay(source->ctx, after, push->config.replay_batch, batch_add_cb, &batch, &more);
    if (rc != 0) {
        kf_buf_free(&batch.json);
        kf_resp_error(req, 500, "internal", "could not read stored events");
        return;
    }
    if (batch.count > 0 || transport == KF_PUSH_POLL) {
        batch_send(req, &batch);
        return;
    }
    kf_buf_free(&batch.json);
    kf_push_client_t *client = client_new(push, req, KF_PUSH_LONGPOLL, source, after);
    client->deadline_ms = now_ms() + (hold_ms != 0 ? hold_ms : push->config.longpoll_hold_ms);
    kf_req_hold(req, client_abort_cb, client);
    kf_req_end_on_eof(req);
    kf_sub_init(&client->sub, longpoll_event_cb, client);
    kf_hub_subscribe(push->hub, source->topic, &client->sub);
}

/* ---- forever iframe and SSE ---- */

static void serve_iframe(kf_push_t *push, kf_req_t *req, const kf_push_source_t *source,
                         uint64_t after)
{
    kf_push_client_t *client = client_new(push, req, KF_PUSH_IFRAME, source, after);
    kf_resp_header(req, "Cache-Control", "no-store");
    kf_resp_header(req, "X-Frame-Options", "SAMEORIGIN");
    kf_resp_header(req, "Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; frame-ancestors 'self'");
    kf_resp_stream_start(req, 200, "text/html; charset=utf-8", client_abort_cb, client);
    /* Browsers render a streamed document only after some bytes; the padding gets the first
     * script run at once. */
    kf_buf_t head;
    kf_buf_init(&head);
    kf_buf_append_str(&head,
                      "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>kefu push</title>"
                      "</head><body><!--");
    while (head.len < IFRAME_PADDING)
        kf_buf_append_str(&head,
                          "                                                                ");
    kf_buf_append_str(&head, "-->\n");
    encode_iframe(&head, HEARTBEAT_JSON, sizeof HEARTBEAT_JSON - 1);
    int rc = kf_resp_stream_write(req, head.data, head.len);
    kf_buf_free(&head);
    if (rc != 0) {
        client_kill(client);
        return;
    }
    stream_follow(client, source);
}

static void serve_sse(kf_push_t *push, kf_req_t *req, const kf_push_source_t *source,
                      uint64_t after)
{
    /* A browser reconnecting on its own sends the last id it saw; that beats the URL's cursor,
     * which is as old as the EventSource. */
    const kf_str_t *last_id = kf_http_header_get(req->head, "Last-Event-ID");
    uint64_t from_header;
    if (last_id != NULL && kf_parse_u64(*last_id, &from_header) == 0 && from_header < (1ULL << 53))
        after = from_header;
    kf_push_client_t *client = client_new(push, req, KF_PUSH_SSE, source, after);
    kf_resp_header(req, "Cache-Control", "no-cache, no-store");
    kf_resp_header(req, "X-Accel-Buffering", "no");
    kf_resp_stream_start(req, 200, "text/event-stream; charset=utf-8", client_abort_cb, client);
    /* Bytes at once, so that proxies and the browser see a live stream before the first event. */
    char hello[128];
    int n =
        snprintf(hello, sizeof hello, "retry: %llu\n: connected\n\nevent: heartbeat\ndata: %s\n\n",
                 (unsigned long long)push->config.sse_retry_ms, HEARTBEAT_JSON);
    if (client_write(client, hello, (size_t)n) != 0) {
        client_kill(client);
        return;
    }
    stream_follow(client, source);
}

/* ---- WebSocket ---- */

/* Sends a close frame with code, closes the connection after it is written and lets the client go
 * (at once, or when the reader it is inside returns). Returns 0. */
static int ws_close(kf_push_client_t *client, unsigned code)
{
    if (client->ws_closing || client->dead)
        return 0;
    client->ws_closing = true;
    unsigned char payload[2] = {(unsigned char)(code >> 8), (unsigned char)(code & 0xff)};
    kf_buf_t out;
    kf_buf_init(&out);
    encode_ws(&out, KF_WS_CLOSE, payload, sizeof payload);
    kf_conn_t *conn = kf_req_conn(client->req);
    kf_conn_write(conn, out.data, out.len);
    kf_buf_free(&out);
    kf_conn_close(conn, true);
    client_kill(client);
    return 0;
}

int kf_push_client_send(kf_push_client_t *client, const char *json, size_t len)
{
    if (client->dead || client->ws_closing)
        return KF_EINVAL;
    kf_buf_t out;
    kf_buf_init(&out);
    encode_ws(&out, KF_WS_TEXT, json, len);
    int rc = client_write(client, out.data, out.len);
    kf_buf_free(&out);
    if (rc != 0)
        client_kill(client);
    return rc == 0 ? 0 : KF_ELIMIT;
}

/* Handles one frame; returns false when the connection is closing. */
static bool ws_frame(kf_push_client_t *client, const kf_ws_frame_t *frame)
{
    kf_push_t *push = client->push;
    bool complete = false;
    int kind = 0;
    unsigned close_code = 0;
    if (kf_ws_message_accept(&client->ws_message, frame, &kind, &complete, &close_code) != 0) {
        ws_close(client, close_code);
        return false;
    }
    if (kind == KF_WS_FRAME_CONTROL) {
        if (frame->opcode == KF_WS_PING) {
            kf_buf_t out;
            kf_buf_init(&out);
            encode_ws(&out, KF_WS_PONG, frame->payload, (size_t)frame->payload_len);
            int rc = client_write(client, out.data, out.len);
            kf_buf_free(&out);
            if (rc != 0) {
                client_kill(client);
                return false;
            }
        } else if (frame->opcode == KF_WS_CLOSE) {
            unsigned code;
            bool valid =
                kf_ws_close_payload_valid(frame->payload, (size_t)frame->payload_len, &code);
            ws_close(client, !valid         ? KF_WS_CLOSE_PROTOCOL
                             : code == 1005 ? KF_WS_CLOSE_NORMAL
                                            : code);
            return false;
        }
        return true; /* a pong: last_read_ms is enough */
    }
    if (client->ws_message.opcode == KF_WS_BINARY && complete) {
        ws_close(client, KF_WS_CLOSE_UNSUPPORTED); /* the protocol is JSON text */
        return false;
    }
    const char *text = frame->payload;
    size_t len = (size_t)frame->payload_len;
    if (!complete || client->ws_data.len > 0) {
        kf_buf_append(&client->ws_data, frame->payload, len);
        text = client->ws_data.data;
        len = client->ws_data.len;
    }
    if (complete) {
        if (push->config.receive != NULL)
            push->config.receive(push->config.receive_ctx, client, client->kind, client->subject,
                                 text != NULL ? text : "", len);
        kf_buf_free(&client->ws_data);
    }
    return !client->dead && !client->ws_closing;
}

static size_t ws_read_cb(void *data, char *buf, size_t len)
{
    kf_push_client_t *client = data;
    kf_push_t *push = client->push;
    client->last_read_ms = now_ms();
    size_t used = 0;
    client->busy = true;
    while (!client->ws_closing && !client->dead && used < len) {
        kf_ws_frame_t frame;
        unsigned close_code = 0;
        int rc = kf_ws_parse_frame(buf + used, len - used, push->config.ws_max_message, &frame,
                                   &close_code);
        if (rc == KF_EAGAIN)
            break;
        if (rc < 0) {
            ws_close(client, close_code);
            break;
        }
        used += (size_t)rc;
        if (!ws_frame(client, &frame))
            break;
    }
    client->busy = false;
    if (client->dead) {
        if (client->refs == 0)
            client_free(client);
        return 0;
    }
    return used;
}

static void serve_ws(kf_push_t *push, kf_req_t *req, const kf_push_source_t *source, uint64_t after)
{
    const kf_str_t *upgrade = kf_http_header_get(req->head, "Upgrade");
    const kf_str_t *version = kf_http_header_get(req->head, "Sec-WebSocket-Version");
    const kf_str_t *key = kf_http_header_get(req->head, "Sec-WebSocket-Key");
    char accept[29];
    if (!kf_str_eq(req->head->method, "GET") || upgrade == NULL ||
        !kf_http_list_has(*upgrade, "websocket") || !req->head->upgrade) {
        kf_resp_header(req, "Upgrade", "websocket");
        kf_resp_error(req, 426, "upgrade_required", "this endpoint speaks WebSocket only");
        return;
    }
    if (version == NULL || !kf_str_eq(*version, "13")) {
        kf_resp_header(req, "Sec-WebSocket-Version", "13");
        kf_resp_error(req, 426, "upgrade_required", "WebSocket version 13 is required");
        return;
    }
    if (key == NULL || kf_ws_accept_key(key->ptr, key->len, accept) != 0) {
        kf_resp_error(req, 400, "bad_request", "missing or invalid Sec-WebSocket-Key");
        return;
    }
    kf_push_client_t *client = client_new(push, req, KF_PUSH_WS, source, after);
    kf_resp_header(req, "Upgrade", "websocket");
    kf_resp_header(req, "Connection", "Upgrade");
    kf_resp_header(req, "Sec-WebSocket-Accept", accept);
    if (kf_req_upgrade(req, ws_read_cb, client_abort_cb, client) != 0) {
        client_free(client);
        kf_resp_error(req, 400, "bad_request", "this connection cannot be upgraded");
        return;
    }
    if (kf_push_client_send(client, HEARTBEAT_JSON, sizeof HEARTBEAT_JSON - 1) != 0)
        return;
    stream_follow(client, source);
}

/* ---- entry points ---- */

void kf_push_serve(kf_push_t *push, kf_req_t *req, kf_push_transport_t transport,
                   const kf_push_source_t *source, uint64_t after, uint64_t hold_ms)
{
    switch (transport) {
    case KF_PUSH_IFRAME: serve_iframe(push, req, source, after); break;
    case KF_PUSH_SSE: serve_sse(push, req, source, after); break;
    case KF_PUSH_WS: serve_ws(push, req, source, after); break;
    default: serve_poll(push, req, transport, source, after, hold_ms); break;
    }
}

/* Keeps quiet streams alive through proxies and finds dead WebSocket peers. */
static void heartbeat(kf_push_client_t *client, uint64_t now)
{
    kf_push_t *push = client->push;
    if (client->transport == KF_PUSH_WS && now - client->last_read_ms >= push->config.ws_dead_ms) {
        kf_conn_close(kf_req_conn(client->req), false); /* no pong: the peer is gone */
        client_kill(client);
        return;
    }
    if (now - client->last_write_ms < push->config.heartbeat_ms)
        return;
    kf_buf_t out;
    kf_buf_init(&out);
    if (client->transport == KF_PUSH_IFRAME)
        encode_iframe(&out, HEARTBEAT_JSON, sizeof HEARTBEAT_JSON - 1);
    else if (client->transport == KF_PUSH_SSE)
        kf_buf_append_str(&out, ": heartbeat\n\nevent: heartbeat\ndata: " HEARTBEAT_JSON "\n\n");
    else
        encode_ws(&out, KF_WS_PING, "", 0);
    int rc = client_write(client, out.data, out.len);
    kf_buf_free(&out);
    if (rc != 0)
        client_kill(client);
}

static void tick_cb(uv_timer_t *timer)
{
    kf_push_t *push = timer->data;
    uint64_t now = now_ms();
    kf_push_client_t *next;
    for (kf_push_client_t *client = push->clients; client != NULL; client = next) {
        next = client->next;
        if (client->transport == KF_PUSH_LONGPOLL) {
            if (now >= client->deadline_ms)
                longpoll_answer(client, NULL);
        } else {
            heartbeat(client, now);
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
        kf_push_client_t *client = push->clients;
        if (client->transport == KF_PUSH_LONGPOLL)
            longpoll_answer(client, NULL);
        else
            stream_end(client);
    }
}

size_t kf_push_end_subject(kf_push_t *push, char kind, int64_t subject)
{
    size_t ended = 0;
    kf_push_client_t *next;
    for (kf_push_client_t *client = push->clients; client != NULL; client = next) {
        next = client->next;
        if (client->kind != kind || client->subject != subject)
            continue;
        ended++;
        if (client->transport == KF_PUSH_LONGPOLL)
            longpoll_answer(client, NULL);
        else if (client->transport == KF_PUSH_WS)
            ws_close(client, KF_WS_CLOSE_POLICY);
        else
            stream_end(client);
    }
    return ended;
}

size_t kf_push_client_count(const kf_push_t *push)
{
    return push->client_count;
}

static void tick_closed_cb(uv_handle_t *handle)
{
    free(handle->data);
}

void kf_push_free(kf_push_t *push)
{
    kf_push_drain(push);
    uv_timer_stop(&push->tick);
    uv_close((uv_handle_t *)&push->tick, tick_closed_cb);
}
