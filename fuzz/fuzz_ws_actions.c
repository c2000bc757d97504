/* fuzz_ws_actions.c: libFuzzer target for the actions WebSocket clients send (docs/PROTOCOL.md),
 * through the real server and application (app_harness.h): a visitor's and an agent's WebSocket
 * stay open for the whole run, and each input is one text message on one of them, followed by a
 * ping whose pong says the server is done with it. The server must keep the connection open (a
 * well-formed frame of valid UTF-8 is never a protocol error), send JSON objects only, and answer
 * each action exactly once (typing: only when it fails) with the "ref" the action carried.
 *
 * Input: byte 0 bit 0 picks the agent's socket (else the visitor's), bit 1 sends the message in
 * two fragments with a ping between them; the rest is the message. Invalid UTF-8 is skipped: it
 * only closes the connection, and the frame codec has its own target (fuzz_ws_frame.c). */
#include <jansson.h>

#include "app_harness.h"
#include "http/ws.h"

#define OPT_AGENT 0x01
#define OPT_FRAGMENT 0x02
/* Leave room under the server's 64 KiB message limit, so that no input is refused for size. */
#define MAX_MESSAGE 60000

typedef struct ws_client {
    int fd;
    char kind;      /* 'v' the fixture visitor, 'a' the fixture agent */
    kf_buf_t in;    /* bytes received and not yet taken as frames */
    size_t replies; /* ack, error and pong messages since the last input */
    bool done;      /* the pong of this input's marker ping came */
} ws_client_t;

static ws_client_t sockets[2];
static uint64_t marker_count;
static char marker[32];      /* the payload of this input's last ping */
static json_t *expected_ref; /* what replies must carry as "ref" (json null when none) */
static size_t sent_count;    /* inputs sent to the server (the others were not UTF-8) */
static bool trace;           /* KF_FUZZ_TRACE set: what the server sends, on stderr */

static void print_count(void)
{
    fprintf(stderr, "fuzz_ws_actions: %zu messages sent\n", sent_count);
}

static void append_frame(kf_buf_t *out, unsigned opcode, bool fin, const void *payload, size_t len)
{
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    unsigned char header[14];
    size_t n = 0;
    header[n++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        header[n++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xFFFF) {
        header[n++] = 0x80 | 126;
        header[n++] = (unsigned char)(len >> 8);
        header[n++] = (unsigned char)len;
    } else {
        header[n++] = 0x80 | 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            header[n++] = (unsigned char)((uint64_t)len >> shift);
    }
    memcpy(header + n, key, 4);
    n += 4;
    kf_buf_append(out, header, n);
    size_t at = out->len;
    kf_buf_append(out, payload, len);
    for (size_t i = 0; i < len; i++)
        out->data[at + i] ^= (char)key[i % 4];
}

static void ws_send(ws_client_t *ws, const kf_buf_t *frames)
{
    harness_check(harness_send(ws->fd, frames->data, frames->len) == 0, "WebSocket send");
}

/* What a conversation_get came to: its result code and the newest message's id. */
typedef struct newest {
    int rc;
    int64_t id;
} newest_t;

static void newest_message_cb(void *ctx, const kf_store_result_t *result)
{
    newest_t *newest = ctx;
    newest->rc = result->rc;
    if (result->rc == 0 && result->conversation->has_last_message)
        newest->id = result->conversation->last_message.id;
}

/* A read receipt tells of messages that exist: its up_to is at most the conversation's newest
 * message id (the store clamps the mark it keeps to that, so a larger one is a false receipt). */
static void check_read_event(json_t *event)
{
    json_t *conversation = json_object_get(event, "conversation_id");
    json_t *up_to = json_object_get(event, "up_to");
    harness_check(json_is_integer(conversation) && json_is_integer(up_to), "read event fields");
    newest_t newest = {-1, 0};
    harness_check(harness.store->ops->conversation_get(harness.store,
                                                       json_integer_value(conversation),
                                                       newest_message_cb, &newest) == 0,
                  "conversation_get queued");
    harness_commit();
    harness_check(newest.rc == 0, "read event names a conversation");
    harness_check(json_integer_value(up_to) <= newest.id, "read receipt up to an existing message");
}

/* Checks one text message from the server. */
static void check_text(ws_client_t *ws, const char *text, size_t len)
{
    json_error_t error;
    if (trace)
        fprintf(stderr, "%c <- %.*s\n", ws->kind, (int)len, text);
    json_t *root = json_loadb(text, len, 0, &error);
    harness_check(json_is_object(root), "server message is a JSON object");
    const char *type = json_string_value(json_object_get(root, "type"));
    harness_check(type != NULL, "server message has a type");
    if (strcmp(type, "read") == 0)
        check_read_event(root);
    harness_check_numbers(root);
    bool is_reply =
        strcmp(type, "ack") == 0 || strcmp(type, "error") == 0 || strcmp(type, "pong") == 0;
    if (is_reply) {
        ws->replies++;
        json_t *ref = json_object_get(root, "ref");
        harness_check(ref != NULL && expected_ref != NULL && json_equal(ref, expected_ref),
                      "reply carries the action's ref");
    }
    if (strcmp(type, "error") == 0)
        harness_check(json_is_string(json_object_get(json_object_get(root, "error"), "code")),
                      "error reply has error.code");
    json_decref(root);
}

/* Takes every complete frame off the front of ws->in and handles it. */
static void take_frames(ws_client_t *ws)
{
    for (;;) {
        const unsigned char *b = (const unsigned char *)ws->in.data;
        size_t avail = ws->in.len;
        if (avail < 2)
            return;
        harness_check((b[1] & 0x80) == 0, "server frames are not masked");
        harness_check((b[0] & 0x70) == 0, "server frames set no RSV bits");
        uint64_t len = b[1] & 0x7F;
        size_t header = 2;
        if (len == 126) {
            if (avail < 4)
                return;
            len = (uint64_t)b[2] << 8 | b[3];
            header = 4;
        } else if (len == 127) {
            if (avail < 10)
                return;
            len = 0;
            for (int i = 2; i < 10; i++)
                len = len << 8 | b[i];
            header = 10;
        }
        if (avail - header < len)
            return;
        unsigned opcode = b[0] & 0x0F;
        const char *payload = ws->in.data + header;
        harness_check((b[0] & 0x80) != 0, "server messages are not fragmented");
        harness_check(opcode != KF_WS_CLOSE, "server closed a WebSocket after a valid message");
        if (opcode == KF_WS_TEXT) {
            check_text(ws, payload, (size_t)len);
        } else if (opcode == KF_WS_PING) {
            /* The server's heartbeat: answered, or an idle socket would count as a dead peer. */
            kf_buf_t pong;
            kf_buf_init(&pong);
            append_frame(&pong, KF_WS_PONG, true, payload, (size_t)len);
            ws_send(ws, &pong);
            kf_buf_free(&pong);
        } else if (opcode == KF_WS_PONG) {
            if (len == strlen(marker) && memcmp(payload, marker, (size_t)len) == 0)
                ws->done = true;
        } else {
            harness_check(false, "server sends text, ping and pong frames only");
        }
        kf_buf_consume(&ws->in, header + (size_t)len);
    }
}

static void pump(ws_client_t *ws)
{
    harness_check(harness_receive(ws->fd, &ws->in) >= 0, "server closed a WebSocket");
    take_frames(ws);
}

/* Opens the fixture visitor's or agent's WebSocket; no replay (the cursor is the newest id). */
static void ws_open(ws_client_t *ws, char kind)
{
    ws->kind = kind;
    ws->fd = harness_connect();
    kf_buf_init(&ws->in);
    kf_buf_t request;
    kf_buf_init(&request);
    kf_buf_printf(&request,
                  "GET /push/ws?after=9007199254740991 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n%s\r\n",
                  kind == 'v' ? "Authorization: Bearer " HARNESS_VISITOR_TOKEN "\r\n"
                              : "Cookie: kefu_session=" HARNESS_SESSION_TOKEN "\r\n");
    harness_check(harness_send(ws->fd, request.data, request.len) == 0, "handshake send");
    kf_buf_free(&request);
    const char *end = NULL;
    for (int turns = 0; end == NULL; turns++) {
        harness_check(turns < 1000 && harness_receive(ws->fd, &ws->in) >= 0, "handshake answer");
        end = ws->in.len >= 4 ? memmem(ws->in.data, ws->in.len, "\r\n\r\n", 4) : NULL;
    }
    harness_check(memcmp(ws->in.data, "HTTP/1.1 101 ", 13) == 0, "handshake accepted");
    kf_buf_consume(&ws->in, (size_t)(end - ws->in.data) + 4);
}

static bool valid_utf8(const uint8_t *text, size_t len)
{
    kf_utf8_t v;
    kf_utf8_init(&v);
    return kf_utf8_feed(&v, text, len) && kf_utf8_complete(&v);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    harness_start();
    ws_open(&sockets[0], 'v');
    ws_open(&sockets[1], 'a');
    trace = getenv("KF_FUZZ_TRACE") != NULL;
    if (trace)
        atexit(print_count);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > MAX_MESSAGE || !valid_utf8(data + 1, size - 1))
        return -1;
    ws_client_t *ws = &sockets[(data[0] & OPT_AGENT) ? 1 : 0];
    const uint8_t *text = data + 1;
    size_t len = size - 1;

    /* What the answer must be: the server parses the text exactly so. */
    json_error_t error;
    json_t *root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &error);
    json_t *ref = json_is_object(root) ? json_object_get(root, "ref") : NULL;
    expected_ref = json_is_string(ref) || json_is_integer(ref) ? ref : json_null();
    const char *type =
        json_is_object(root) ? json_string_value(json_object_get(root, "type")) : NULL;
    bool typing = type != NULL && strcmp(type, "typing") == 0;

    kf_buf_t frames;
    kf_buf_init(&frames);
    if (data[0] & OPT_FRAGMENT) {
        append_frame(&frames, KF_WS_TEXT, false, text, len / 2);
        append_frame(&frames, KF_WS_PING, true, "between", 7);
        append_frame(&frames, KF_WS_CONT, true, text + len / 2, len - len / 2);
    } else {
        append_frame(&frames, KF_WS_TEXT, true, text, len);
    }
    snprintf(marker, sizeof marker, "done-%llu", (unsigned long long)++marker_count);
    append_frame(&frames, KF_WS_PING, true, marker, strlen(marker));
    sockets[0].replies = sockets[1].replies = 0;
    ws->done = false;
    sent_count++;
    ws_send(ws, &frames);
    kf_buf_free(&frames);

    for (int turns = 0; !ws->done; turns++) {
        harness_check(turns < 10000, "the marker ping is answered");
        pump(&sockets[0]);
        pump(&sockets[1]);
    }
    /* Answers that wait for the store go out once it has run what they wait for (reads, and the
     * writer thread's commits): wait for it, then a few more turns make sure nothing comes late. */
    harness_commit();
    for (int i = 0; i < 2; i++) {
        pump(&sockets[0]);
        pump(&sockets[1]);
    }
    ws_client_t *other = ws == &sockets[0] ? &sockets[1] : &sockets[0];
    harness_check(other->replies == 0, "replies go to the sender only");
    harness_check(ws->replies == 1 || (typing && ws->replies == 0), "one reply per action");
    json_decref(root);
    return 0;
}
