/* ws.c: the WebSocket transport (RFC 6455, the codec in http/ws.c): the handshake and upgrade,
 * events as text frames, the frame reader (fragments reassembled per client, control frames
 * between them, pings answered), the close handshake and its codes, pings every heartbeat_ms and
 * the drop of a peer silent for ws_dead_ms; and replies to what a client sends
 * (kf_push_client_send). */
#include <assert.h>

#include "base/clock.h"
#include "base/err.h"
#include "http/ws.h"
#include "push/transport.h"

typedef struct ws {
    kf_ws_message_t message; /* the message being reassembled */
    kf_buf_t data;           /* its bytes so far (empty between messages) */
    uint64_t last_read_ms;   /* the last bytes from the peer, for the dead-peer check */
} ws_t;

#define WS(client) KF_PUSH_STATE(client, ws_t)

static void encode_frame(kf_buf_t *out, unsigned opcode, const void *payload, size_t len)
{
    unsigned char header[10];
    size_t n = kf_ws_frame_header(opcode, len, header);
    kf_buf_append(out, header, n);
    kf_buf_append(out, payload, len);
}

static void encode_event(kf_buf_t *out, const kf_event_t *event)
{
    encode_frame(out, KF_WS_TEXT, event->json, event->len);
}

/* Writes bytes; non-zero: the connection is closed and the client killed. */
static int ws_write(kf_push_client_t *client, const void *data, size_t len)
{
    int rc = kf_conn_write(kf_req_conn(client->req), data, len);
    client->last_write_ms = kf_clock_mono_ms();
    if (rc != 0)
        kf__push_client_kill(client); /* the server closed it: no abort follows */
    return rc;
}

static int ws_write_frame(kf_push_client_t *client, unsigned opcode, const void *payload,
                          size_t len)
{
    kf_buf_t out;
    kf_buf_init(&out);
    encode_frame(&out, opcode, payload, len);
    int rc = ws_write(client, out.data, out.len);
    kf_buf_free(&out);
    return rc;
}

/* Sends a close frame with code, closes the connection once it is written and kills the client
 * (freed at once, or when the reader it is inside returns). */
static void ws_close(kf_push_client_t *client, unsigned code)
{
    if (client->dead)
        return;
    unsigned char payload[2] = {(unsigned char)(code >> 8), (unsigned char)(code & 0xff)};
    kf_buf_t out;
    kf_buf_init(&out);
    encode_frame(&out, KF_WS_CLOSE, payload, sizeof payload);
    kf_conn_t *conn = kf_req_conn(client->req);
    kf_conn_write(conn, out.data, out.len);
    kf_buf_free(&out);
    kf_conn_close(conn, true);
    kf__push_client_kill(client);
}

int kf_push_client_send(kf_push_client_t *client, const char *json, size_t len)
{
    assert(client->ops == &kf__push_ws_ops);
    if (client->dead)
        return KF_EINVAL;
    return ws_write_frame(client, KF_WS_TEXT, json, len) == 0 ? 0 : KF_ELIMIT;
}

/* Handles one frame; returns false when the connection is closing. */
static bool ws_frame(kf_push_client_t *client, const kf_ws_frame_t *frame)
{
    ws_t *ws = WS(client);
    bool complete = false;
    int kind = 0;
    unsigned close_code = 0;
    if (kf_ws_message_accept(&ws->message, frame, &kind, &complete, &close_code) != 0) {
        ws_close(client, close_code);
        return false;
    }
    if (kind == KF_WS_FRAME_CONTROL) {
        if (frame->opcode == KF_WS_PING)
            return ws_write_frame(client, KF_WS_PONG, frame->payload, (size_t)frame->payload_len) ==
                   0;
        if (frame->opcode == KF_WS_CLOSE) {
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
    if (ws->message.opcode == KF_WS_BINARY && complete) {
        ws_close(client, KF_WS_CLOSE_UNSUPPORTED); /* the protocol is JSON text */
        return false;
    }
    const char *text = frame->payload;
    size_t len = (size_t)frame->payload_len;
    if (!complete || ws->data.len > 0) {
        kf_buf_append(&ws->data, frame->payload, len);
        text = ws->data.data;
        len = ws->data.len;
    }
    if (complete) {
        const kf_push_config_t *config = client->config;
        if (config->receive != NULL)
            config->receive(config->receive_ctx, client, client->kind, client->subject,
                            text != NULL ? text : "", len);
        kf_buf_free(&ws->data);
    }
    return !client->dead;
}

/* The upgraded connection's bytes (kf_raw_read_cb): every whole frame in them. */
static size_t ws_read_cb(void *data, char *buf, size_t len)
{
    kf_push_client_t *client = data;
    WS(client)->last_read_ms = kf_clock_mono_ms();
    size_t used = 0;
    kf_push_client_ref(client); /* an action may end the connection: the client outlives it */
    while (!client->dead && used < len) {
        kf_ws_frame_t frame;
        unsigned close_code = 0;
        int rc = kf_ws_parse_frame(buf + used, len - used, client->config->ws_max_message, &frame,
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
    bool dead = client->dead;
    kf_push_client_unref(client);
    return dead ? 0 : used;
}

static int ws_start(kf_push_client_t *client, kf_req_t *req, uint64_t hold_ms)
{
    (void)hold_ms;
    const kf_str_t *upgrade = kf_http_header_get(req->head, "Upgrade");
    const kf_str_t *version = kf_http_header_get(req->head, "Sec-WebSocket-Version");
    const kf_str_t *key = kf_http_header_get(req->head, "Sec-WebSocket-Key");
    char accept[29];
    if (!kf_str_eq(req->head->method, "GET") || upgrade == NULL ||
        !kf_http_list_has(*upgrade, "websocket") || !req->head->upgrade) {
        kf_resp_header(req, "Upgrade", "websocket");
        kf_resp_error(req, 426, "upgrade_required", "this endpoint speaks WebSocket only");
        return KF_EINVAL;
    }
    if (version == NULL || !kf_str_eq(*version, "13")) {
        kf_resp_header(req, "Sec-WebSocket-Version", "13");
        kf_resp_error(req, 426, "upgrade_required", "WebSocket version 13 is required");
        return KF_EINVAL;
    }
    if (key == NULL || kf_ws_accept_key(key->ptr, key->len, accept) != 0) {
        kf_resp_error(req, 400, "bad_request", "missing or invalid Sec-WebSocket-Key");
        return KF_EINVAL;
    }
    ws_t *ws = WS(client);
    kf_ws_message_init(&ws->message, client->config->ws_max_message);
    ws->last_read_ms = kf_clock_mono_ms();
    kf_resp_header(req, "Upgrade", "websocket");
    kf_resp_header(req, "Connection", "Upgrade");
    kf_resp_header(req, "Sec-WebSocket-Accept", accept);
    if (kf_req_upgrade(req, ws_read_cb, kf__push_client_abort_cb, client) != 0) {
        kf_resp_error(req, 400, "bad_request", "this connection cannot be upgraded");
        return KF_EINVAL;
    }
    return ws_write_frame(client, KF_WS_TEXT, KF_PUSH_HEARTBEAT_JSON,
                          sizeof KF_PUSH_HEARTBEAT_JSON - 1);
}

static int ws_deliver(kf_push_client_t *client, kf_event_t *event)
{
    size_t len;
    const char *data = kf__push_event_encoding(client, event, encode_event, &len);
    return ws_write(client, data, len);
}

/* A ping each heartbeat_ms of quiet; a peer silent for ws_dead_ms (no pong) is gone. */
static void ws_heartbeat(kf_push_client_t *client, uint64_t now)
{
    if (now - WS(client)->last_read_ms >= client->config->ws_dead_ms) {
        kf_conn_close(kf_req_conn(client->req), false);
        kf__push_client_kill(client);
        return;
    }
    if (now - client->last_write_ms >= client->config->heartbeat_ms)
        ws_write_frame(client, KF_WS_PING, "", 0);
}

static void ws_end(kf_push_client_t *client, kf_push_end_t why)
{
    ws_close(client, why == KF_PUSH_END_SUBJECT  ? KF_WS_CLOSE_POLICY
                     : why == KF_PUSH_END_FAILED ? KF_WS_CLOSE_INTERNAL
                                                 : KF_WS_CLOSE_GOING_AWAY);
}

static void ws_release(kf_push_client_t *client)
{
    kf_buf_free(&WS(client)->data);
}

const kf_push_transport_ops_t kf__push_ws_ops = {
    .follows = true,
    .state_size = sizeof(ws_t),
    .start = ws_start,
    .deliver = ws_deliver,
    .heartbeat = ws_heartbeat,
    .end = ws_end,
    .release = ws_release,
};
