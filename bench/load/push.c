/* push.c: the load tools' push connections: connecting, the five transports' framing, the marker
 * and cursor matchers, WebSocket replies, and reconnecting with the cursor. */
#include "load/push.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_ATTEMPTS 3 /* connection attempts in a row per subscriber */

const char *const load_transport_names[LOAD_TRANSPORTS] = {"ws", "sse", "longpoll", "iframe",
                                                           "poll"};

/* kefu's message events carry their cursor as "id":"<digits>" (docs/PROTOCOL.md). */
static const char ID_KEY[] = "\"id\":\"";
#define ID_KEY_LEN (sizeof ID_KEY - 1)

/* The starts of kefu's WebSocket replies to an action whose ref is a string of digits; they
 * agree up to {"type":" (REPLY_SPLIT bytes). */
static const char ACK_START[] = "{\"type\":\"ack\",\"ref\":\"";
static const char ERROR_START[] = "{\"type\":\"error\",\"ref\":\"";
#define REPLY_SPLIT 9
/* What a WebSocket message is, as far as its first bytes tell: still unknown, on its way to an
 * ack's or an error's start, reading the ref, past the ref, or no reply at all. */
enum {
    REPLY_START,
    REPLY_ACK,
    REPLY_ERROR,
    REPLY_ACK_REF,
    REPLY_ERROR_REF,
    REPLY_ACK_REST,
    REPLY_ERROR_REST,
    REPLY_NONE
};

enum {
    SUB_IDLE,
    SUB_QUEUED,
    SUB_CONNECTING,
    SUB_HEAD,
    SUB_BODY,
    SUB_WAIT,
    SUB_CLOSING,
    SUB_FAILED,
    SUB_DONE
};
enum { FRAMING_LENGTH, FRAMING_CHUNKED, FRAMING_EOF, FRAMING_WS };
enum { CHUNK_SIZE, CHUNK_EXT, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER_START, CHUNK_TRAILER_LINE };

int load_transport_parse(const char *name)
{
    for (int t = 0; t < LOAD_TRANSPORTS; t++) {
        if (strcmp(name, load_transport_names[t]) == 0)
            return t;
    }
    return -1;
}

void load_push_init(load_push_t *push, uv_loop_t *loop, const load_target_t *target,
                    const load_push_ops_t *ops, uint32_t count, const char *run)
{
    memset(push, 0, sizeof *push);
    push->loop = loop;
    push->target = target;
    push->ops = ops;
    push->count = count;
    push->subs = kf_xcalloc(count, sizeof *push->subs);
    push->queue = kf_xcalloc(count, sizeof *push->queue);
    snprintf(push->marker, sizeof push->marker, "kf%.8s:", run);
    push->connect_concurrency = 256;
    push->poll_interval_ms = 2000;
    push->retry = true;
    push->resume = true;
    push->open = true;
    for (uint32_t i = 0; i < count; i++)
        push->subs[i].push = push;
}

void load_push_free(load_push_t *push)
{
    free(push->subs);
    free(push->queue);
    push->subs = NULL;
    push->queue = NULL;
}

/* ---- the matchers ---- */

static bool is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(unsigned c)
{
    if (is_digit(c))
        return (int)(c - '0');
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? (int)(c - 'a' + 10) : -1;
}

static void sub_established(load_sub_t *s);

/* A marker ended: the event's cursor counts from now on (a drop before this point gets the
 * event again), and the owner hears of it. */
static void marker_read(load_sub_t *s)
{
    if (s->id_event > s->cursor)
        s->cursor = s->id_event;
    s->push->ops->message(s, s->kfl_seq, s->kfl_time);
}

/* Feeds message bytes to the two matchers: each message's marker and, for kefu, the "id":"N"
 * cursor of each message event (taken once the event's marker is read). Works across any split
 * of the bytes. */
static void scan(load_sub_t *s, const char *data, size_t len)
{
    load_push_t *push = s->push;
    if (!s->established && (s->transport == LOAD_SSE || s->transport == LOAD_IFRAME))
        sub_established(s);
    const char *marker = push->marker;
    for (size_t i = 0; i < len; i++) {
        unsigned c = (unsigned char)data[i];
        /* Skip quickly over bytes that neither starts nor continues a match. */
        if (s->kfl_pos == 0 && s->id_pos == 0 && c != 'k' && c != '"')
            continue;
        if (s->kfl_pos < LOAD_MARKER_LEN) {
            if (c == (unsigned char)marker[s->kfl_pos]) {
                if (++s->kfl_pos == LOAD_MARKER_LEN) {
                    s->kfl_seq = 0;
                    s->kfl_time = 0;
                    s->kfl_digits = 0;
                }
            } else {
                s->kfl_pos = c == (unsigned char)marker[0];
            }
        } else if (s->kfl_pos == LOAD_MARKER_LEN) { /* the sequence number */
            if (is_digit(c) && s->kfl_digits < 18) {
                s->kfl_seq = s->kfl_seq * 10 + (c - '0');
                s->kfl_digits++;
            } else if (c == ':' && s->kfl_digits > 0) {
                s->kfl_pos++;
                s->kfl_digits = 0;
            } else {
                s->kfl_pos = c == (unsigned char)marker[0];
            }
        } else { /* the send time */
            if (is_digit(c) && s->kfl_digits < 19) {
                s->kfl_time = s->kfl_time * 10 + (c - '0');
                s->kfl_digits++;
            } else {
                if (s->kfl_digits > 0)
                    marker_read(s);
                s->kfl_pos = c == (unsigned char)marker[0];
            }
        }
        if (!push->kefu)
            continue;
        if (s->id_pos < ID_KEY_LEN) {
            if (c == (unsigned char)ID_KEY[s->id_pos]) {
                if (++s->id_pos == ID_KEY_LEN) {
                    s->id_value = 0;
                    s->id_digits = 0;
                }
            } else {
                s->id_pos = c == '"';
            }
        } else if (is_digit(c) && s->id_digits < 18) {
            s->id_value = s->id_value * 10 + (c - '0');
            s->id_digits++;
        } else {
            if (c == '"' && s->id_digits > 0)
                s->id_event = s->id_value;
            s->id_pos = c == '"';
        }
    }
}

/* WebSocket: reads the first bytes of a message for a reply to an action. Returns true once the
 * message is known to be a reply (its bytes are then not scanned). */
static bool scan_reply(load_sub_t *s, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned c = (unsigned char)data[i];
        switch (s->reply_kind) {
        case REPLY_NONE: return false;
        case REPLY_ACK_REST:
        case REPLY_ERROR_REST: return true;
        case REPLY_ACK_REF:
        case REPLY_ERROR_REF:
            if (is_digit(c) && s->reply_ref < UINT32_MAX / 10)
                s->reply_ref = s->reply_ref * 10 + (c - '0');
            else
                s->reply_kind = s->reply_kind == REPLY_ACK_REF ? REPLY_ACK_REST : REPLY_ERROR_REST;
            break;
        default: { /* REPLY_START, REPLY_ACK, REPLY_ERROR: matching a start */
            if (s->reply_kind == REPLY_START && s->reply_pos == REPLY_SPLIT)
                s->reply_kind =
                    c == (unsigned char)ACK_START[REPLY_SPLIT] ? REPLY_ACK : REPLY_ERROR;
            const char *start = s->reply_kind == REPLY_ERROR ? ERROR_START : ACK_START;
            if (c != (unsigned char)start[s->reply_pos]) {
                s->reply_kind = REPLY_NONE;
                return false;
            }
            if (start[++s->reply_pos] == '\0') {
                s->reply_ref = 0;
                s->reply_kind = s->reply_kind == REPLY_ERROR ? REPLY_ERROR_REF : REPLY_ACK_REF;
            }
            break;
        }
        }
    }
    return s->reply_kind >= REPLY_ACK_REF && s->reply_kind <= REPLY_ERROR_REST;
}

/* ---- connecting ---- */

static void sub_start(load_sub_t *s);

void load_push_queue(load_push_t *push, load_sub_t *s)
{
    push->queue[(push->queue_head + push->queue_len) % push->count] = s->index;
    push->queue_len++;
    s->state = SUB_QUEUED;
    load_push_pump(push);
}

void load_push_pump(load_push_t *push)
{
    while (push->open && push->queue_len > 0 && push->pending < push->connect_concurrency) {
        load_sub_t *s = &push->subs[push->queue[push->queue_head]];
        push->queue_head = (push->queue_head + 1) % push->count;
        push->queue_len--;
        sub_start(s);
    }
}

static void sub_close_cb(uv_handle_t *handle)
{
    load_sub_t *s = handle->data;
    load_push_t *push = s->push;
    s->handle_open = false;
    free(s->head);
    s->head = NULL;
    s->head_len = 0;
    free(s->ctrl);
    s->ctrl = NULL;
    if (s->requeue && push->open) {
        s->requeue = false;
        load_push_queue(push, s);
    }
}

static void sub_close_handle(load_sub_t *s)
{
    load_push_t *push = s->push;
    if (s->pending) {
        s->pending = false;
        push->pending--;
    }
    if (s->established) {
        s->established = false;
        s->since_ns = 0;
        push->live--;
    }
    if (s->handle_open && !uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, sub_close_cb);
}

/* An attempt that did not establish: try again a few times, then give up on this subscriber. */
static void sub_fail(load_sub_t *s)
{
    load_push_t *push = s->push;
    push->connect_errors++;
    s->attempts++;
    bool retry = s->attempts < MAX_ATTEMPTS && push->retry;
    s->state = retry ? SUB_CLOSING : SUB_FAILED;
    s->requeue = retry;
    if (!retry && !s->ever_established)
        push->failed++;
    sub_close_handle(s);
    if (push->ops->ended != NULL)
        push->ops->ended(s, false);
    load_push_pump(push);
}

/* An established connection ended. kefu subscribers come back with their cursor; nothing is lost
 * that way, so a drop costs only time. Pubsub subscribers are not resumed. */
static void sub_drop(load_sub_t *s)
{
    load_push_t *push = s->push;
    push->dropped++;
    bool resume = push->resume && push->open;
    s->state = resume ? SUB_CLOSING : SUB_DONE;
    s->requeue = resume;
    s->attempts = 0;
    sub_close_handle(s);
    if (push->ops->ended != NULL)
        push->ops->ended(s, true);
}

static void sub_established(load_sub_t *s)
{
    load_push_t *push = s->push;
    if (s->established)
        return;
    s->established = true;
    s->since_ns = uv_hrtime();
    s->attempts = 0;
    push->live++;
    if (s->pending) {
        s->pending = false;
        push->pending--;
    }
    if (s->ever_established) {
        push->reconnects++;
    } else {
        s->ever_established = true;
        push->established_total++;
        push->connect_last_ns = s->since_ns;
    }
    load_push_pump(push);
}

void load_push_kefu_target(const load_sub_t *s, kf_buf_t *out)
{
    const char *endpoint = load_transport_names[s->transport];
    if (s->transport == LOAD_LONGPOLL && !s->established)
        endpoint = "poll";
    kf_buf_printf(out, "/push/%s?after=%llu", endpoint, (unsigned long long)s->cursor);
}

/* Sends the subscriber's next request: the stream, or the next poll. */
static void sub_request(load_sub_t *s)
{
    load_push_t *push = s->push;
    kf_buf_t req;
    kf_buf_init(&req);
    kf_buf_append_str(&req, "GET ");
    s->after = s->cursor;
    push->ops->target(s, &req);
    kf_buf_printf(&req, " HTTP/1.1\r\nHost: %s\r\n", push->target->host);
    if (s->transport == LOAD_WS)
        kf_buf_append_str(&req, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n");
    else if (s->transport == LOAD_SSE)
        kf_buf_append_str(&req, "Accept: text/event-stream\r\n");
    if (push->ops->headers != NULL)
        push->ops->headers(s, &req);
    kf_buf_append_str(&req, "\r\n");
    size_t len;
    char *text = kf_buf_steal(&req, &len);
    s->state = SUB_HEAD;
    push->push_requests++;
    if (load_write_owned((uv_stream_t *)&s->tcp, text, len) != 0) {
        if (s->established)
            sub_drop(s);
        else
            sub_fail(s);
    }
}

static void sub_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void sub_connect_cb(uv_connect_t *req, int status)
{
    load_sub_t *s = req->handle->data;
    free(req);
    if (s->state != SUB_CONNECTING)
        return; /* closed meanwhile */
    if (status != 0) {
        sub_fail(s);
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    if (uv_read_start((uv_stream_t *)&s->tcp, load_alloc_cb, sub_read_cb) != 0) {
        sub_fail(s);
        return;
    }
    sub_request(s);
}

static void sub_start(load_sub_t *s)
{
    load_push_t *push = s->push;
    s->state = SUB_CONNECTING;
    s->pending = true;
    push->pending++;
    s->head_len = 0;
    s->kfl_pos = 0;
    s->id_pos = 0;
    s->id_event = 0;
    uv_tcp_init_ex(push->loop, &s->tcp, AF_INET);
    s->tcp.data = s;
    s->handle_open = true;
    int rc = 0;
    if (push->source_count > 0) {
        /* Bind the address only; the port is picked at connect time, per destination, so each
         * source address has the whole ephemeral range towards the server. */
        uv_os_fd_t fd;
        int one = 1;
        if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in source = {0};
        source.sin_family = AF_INET;
        source.sin_addr.s_addr =
            htonl(push->source_first + (s->index + s->attempts) % push->source_count);
        rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&source, 0);
    }
    if (rc == 0) {
        uv_connect_t *req = kf_xmalloc(sizeof *req);
        rc = uv_tcp_connect(req, &s->tcp, (const struct sockaddr *)&push->target->addr,
                            sub_connect_cb);
        if (rc != 0)
            free(req);
    }
    if (rc != 0)
        sub_fail(s);
}

void load_push_reconnect(load_sub_t *s)
{
    load_push_t *push = s->push;
    if (s->state == SUB_IDLE || s->state == SUB_QUEUED || s->state == SUB_CLOSING ||
        s->state == SUB_FAILED || s->state == SUB_DONE || !push->open)
        return;
    if (s->established) {
        push->forced++;
        sub_drop(s);
        return;
    }
    /* Not delivering yet: start over. */
    s->state = SUB_CLOSING;
    s->requeue = true;
    sub_close_handle(s);
    if (push->ops->ended != NULL)
        push->ops->ended(s, false);
}

/* A whole response arrived (poll, long poll; or a stream that ended, as the iframe does after
 * 1 MiB): ask again on the same connection, at once or after the poll interval. */
static void sub_response_done(load_sub_t *s)
{
    if (!s->established)
        sub_established(s);
    if (!s->keep_alive) {
        sub_drop(s);
        return;
    }
    if (s->transport == LOAD_POLL) {
        s->state = SUB_WAIT;
        s->next_poll_ms = (uint32_t)uv_now(s->push->loop) + s->push->poll_interval_ms;
        return;
    }
    sub_request(s);
}

void load_push_tick(load_push_t *push)
{
    uint32_t now_ms = (uint32_t)uv_now(push->loop);
    for (uint32_t i = 0; i < push->count; i++) {
        load_sub_t *s = &push->subs[i];
        if (s->state == SUB_WAIT && (int32_t)(now_ms - s->next_poll_ms) >= 0)
            sub_request(s);
    }
}

/* ---- reading ---- */

static void sub_on_head(load_sub_t *s, const char *head, size_t head_len)
{
    load_resp_head_t h;
    bool ws = s->transport == LOAD_WS;
    int rc = load_resp_head_parse(head, head_len, &h);
    if (rc != 0 || (ws ? h.status != 101 : (h.status < 200 || h.status > 299))) {
        s->push->last_bad_status = rc == 0 ? h.status : -1;
        if (s->established)
            sub_drop(s);
        else
            sub_fail(s);
        return;
    }
    s->keep_alive = !h.close;
    s->state = SUB_BODY;
    s->remaining = 0;
    s->kfl_pos = 0;
    s->id_pos = 0;
    if (ws) {
        s->framing = FRAMING_WS;
        s->ws_hdr_len = 0;
        s->ws_payload = false;
    } else if (h.chunked) {
        s->framing = FRAMING_CHUNKED;
        s->chunk_state = CHUNK_SIZE;
    } else if (h.content_length >= 0) {
        s->framing = FRAMING_LENGTH;
        s->remaining = (uint64_t)h.content_length;
    } else {
        s->framing = FRAMING_EOF;
        s->keep_alive = false;
    }
    /* Established: at the 101 of a WebSocket; at the first bytes of a kefu stream (its heartbeat
     * event, in scan); at the 200 of a pubsub stream (Nchan sends nothing before a message);
     * at the first whole answer of a poll. */
    if (ws || (!s->push->kefu && s->transport == LOAD_SSE))
        sub_established(s);
    if (s->framing == FRAMING_LENGTH && s->remaining == 0)
        sub_response_done(s);
}

/* Consumes response-head bytes; returns how many. */
static size_t sub_feed_head(load_sub_t *s, const char *data, size_t len)
{
    size_t old = s->head_len;
    if (old == 0) {
        size_t end = load_head_end(data, len, 0);
        if (end > 0) {
            sub_on_head(s, data, end);
            return end;
        }
    }
    if (old + len > LOAD_MAX_HEAD) {
        sub_fail(s);
        return len;
    }
    s->head = kf_xrealloc(s->head, old + len);
    memcpy(s->head + old, data, len);
    s->head_len = (uint32_t)(old + len);
    size_t end = load_head_end(s->head, s->head_len, old >= 3 ? old - 3 : 0);
    if (end == 0)
        return len;
    char *head = s->head;
    s->head = NULL;
    s->head_len = 0;
    sub_on_head(s, head, end);
    free(head);
    return end - old;
}

/* Writes a masked WebSocket frame: FIN, opcode and payload. */
static int ws_send_frame(load_sub_t *s, unsigned opcode, const char *payload, size_t len)
{
    size_t header = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
    unsigned char *frame = kf_xmalloc(header + 4 + len);
    frame[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        frame[1] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        frame[1] = 0x80 | 126;
        frame[2] = (unsigned char)(len >> 8);
        frame[3] = (unsigned char)len;
    } else {
        frame[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            frame[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    uint32_t mask = (uint32_t)uv_hrtime() * 2654435761u;
    memcpy(frame + header, &mask, 4);
    for (size_t i = 0; i < len; i++)
        frame[header + 4 + i] = (unsigned char)payload[i] ^ frame[header + i % 4];
    return load_write_owned((uv_stream_t *)&s->tcp, (char *)frame, header + 4 + len);
}

int load_push_ws_send(load_sub_t *s, const char *text, size_t len)
{
    if (s->transport != LOAD_WS || !s->established || s->state != SUB_BODY)
        return UV_ENOTCONN;
    return ws_send_frame(s, 0x1, text, len);
}

/* Bytes of a server frame header once its first bytes are known. */
static size_t ws_header_need(const load_sub_t *s)
{
    if (s->ws_hdr_len < 2)
        return 2;
    unsigned len7 = s->ws_hdr[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((s->ws_hdr[1] & 0x80) ? 4 : 0);
}

static void ws_frame_done(load_sub_t *s)
{
    unsigned opcode = s->ws_opcode;
    s->ws_payload = false;
    s->ws_hdr_len = 0;
    if (opcode < 0x8) {
        if (!s->ws_fin)
            return;
        bool ack = s->reply_kind == REPLY_ACK_REF || s->reply_kind == REPLY_ACK_REST;
        bool error = s->reply_kind == REPLY_ERROR_REF || s->reply_kind == REPLY_ERROR_REST;
        if ((ack || error) && s->push->ops->reply != NULL)
            s->push->ops->reply(s, ack, s->reply_ref);
        else if (!ack && !error)
            scan(s, "\n", 1); /* a message ends here: complete a marker at its very end */
        return;
    }
    if (opcode == 0x9) {
        ws_send_frame(s, 0xA, s->ctrl, s->ctrl_len);
    } else if (opcode == 0x8) {
        ws_send_frame(s, 0x8, s->ctrl, s->ctrl_len >= 2 ? 2 : 0);
        sub_drop(s);
    }
    free(s->ctrl);
    s->ctrl = NULL;
    s->ctrl_len = 0;
}

/* Consumes WebSocket frames from the server (unmasked, RFC 6455). */
static size_t sub_feed_ws(load_sub_t *s, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len && s->state == SUB_BODY) {
        if (!s->ws_payload) {
            s->ws_hdr[s->ws_hdr_len++] = (uint8_t)data[used++];
            if (s->ws_hdr_len < ws_header_need(s))
                continue;
            if (s->ws_hdr[1] & 0x80) { /* servers never mask */
                sub_drop(s);
                return len;
            }
            unsigned len7 = s->ws_hdr[1] & 0x7f;
            uint64_t payload_len = len7;
            if (len7 == 126)
                payload_len = (uint64_t)s->ws_hdr[2] << 8 | s->ws_hdr[3];
            else if (len7 == 127) {
                payload_len = 0;
                for (int i = 0; i < 8; i++)
                    payload_len = payload_len << 8 | s->ws_hdr[2 + i];
            }
            s->ws_opcode = s->ws_hdr[0] & 0x0f;
            s->ws_fin = (s->ws_hdr[0] & 0x80) != 0;
            if (s->ws_opcode >= 0x8 && payload_len > 125) {
                sub_drop(s);
                return len;
            }
            /* A new message: is it a reply? (Continuations and control frames keep the answer.) */
            if (s->ws_opcode == 0x1 || s->ws_opcode == 0x2) {
                s->reply_kind = s->ws_opcode == 0x1 ? REPLY_START : REPLY_NONE;
                s->reply_pos = 0;
            }
            s->remaining = payload_len;
            s->ws_payload = true;
            s->ctrl_len = 0;
            if (s->remaining == 0)
                ws_frame_done(s);
            continue;
        }
        size_t n = len - used < s->remaining ? len - used : (size_t)s->remaining;
        if (s->ws_opcode < 0x8) {
            if (!scan_reply(s, data + used, n))
                scan(s, data + used, n);
        } else {
            if (s->ctrl == NULL)
                s->ctrl = kf_xmalloc(125);
            memcpy(s->ctrl + s->ctrl_len, data + used, n);
            s->ctrl_len = (uint8_t)(s->ctrl_len + n);
        }
        used += n;
        s->remaining -= n;
        if (s->remaining == 0)
            ws_frame_done(s);
    }
    return used;
}

/* Consumes a chunked body, handing the data to the matchers. */
static size_t sub_feed_chunked(load_sub_t *s, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len && s->state == SUB_BODY) {
        unsigned c = (unsigned char)data[used];
        switch (s->chunk_state) {
        case CHUNK_SIZE:
            used++;
            if (hex_value(c) >= 0 && s->remaining < (1ULL << 40)) {
                s->remaining = s->remaining * 16 + (uint64_t)hex_value(c);
            } else if (c == ';') {
                s->chunk_state = CHUNK_EXT;
            } else if (c == '\n') {
                s->chunk_state = s->remaining == 0 ? CHUNK_TRAILER_START : CHUNK_DATA;
            } else if (c != '\r') {
                sub_drop(s);
                return len;
            }
            break;
        case CHUNK_EXT:
            used++;
            if (c == '\n')
                s->chunk_state = s->remaining == 0 ? CHUNK_TRAILER_START : CHUNK_DATA;
            break;
        case CHUNK_DATA: {
            size_t n = len - used < s->remaining ? len - used : (size_t)s->remaining;
            scan(s, data + used, n);
            used += n;
            s->remaining -= n;
            if (s->remaining == 0)
                s->chunk_state = CHUNK_DATA_END;
            break;
        }
        case CHUNK_DATA_END:
            used++;
            if (c == '\n')
                s->chunk_state = CHUNK_SIZE;
            break;
        case CHUNK_TRAILER_START:
            used++;
            if (c == '\n') {
                s->chunk_state = CHUNK_SIZE;
                sub_response_done(s);
                return used;
            }
            if (c != '\r')
                s->chunk_state = CHUNK_TRAILER_LINE;
            break;
        default: /* CHUNK_TRAILER_LINE */
            used++;
            if (c == '\n')
                s->chunk_state = CHUNK_TRAILER_START;
            break;
        }
    }
    return used;
}

static size_t sub_feed_body(load_sub_t *s, const char *data, size_t len)
{
    switch (s->framing) {
    case FRAMING_WS: return sub_feed_ws(s, data, len);
    case FRAMING_CHUNKED: return sub_feed_chunked(s, data, len);
    case FRAMING_EOF: scan(s, data, len); return len;
    default: { /* FRAMING_LENGTH */
        size_t n = len < s->remaining ? len : (size_t)s->remaining;
        scan(s, data, n);
        s->remaining -= n;
        if (s->remaining == 0) {
            scan(s, "\n", 1);
            sub_response_done(s);
        }
        return n;
    }
    }
}

static void sub_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    load_sub_t *s = stream->data;
    if (nread < 0) {
        if (s->established || s->state == SUB_WAIT)
            sub_drop(s);
        else
            sub_fail(s);
        return;
    }
    const char *data = buf->base;
    size_t len = (size_t)nread;
    while (len > 0) {
        size_t used;
        if (s->state == SUB_HEAD)
            used = sub_feed_head(s, data, len);
        else if (s->state == SUB_BODY)
            used = sub_feed_body(s, data, len);
        else
            return; /* closing, or bytes while waiting to poll: ignored */
        data += used;
        len -= used;
    }
}

void load_push_close(load_push_t *push)
{
    push->open = false;
    push->queue_len = 0;
    for (uint32_t i = 0; i < push->count; i++) {
        load_sub_t *s = &push->subs[i];
        s->requeue = false;
        sub_close_handle(s);
    }
}
