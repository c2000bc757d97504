/* fuzz_ws_frame.c: libFuzzer target for the WebSocket codec: a server's read loop over the input
 * (frames, message sequencing, UTF-8, close payloads), the accept key and split UTF-8 feeds,
 * aborting when an invariant fails. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "http/ws.h"

/* abort() rather than assert(), so that the check survives -DNDEBUG builds. */
static void check(bool ok)
{
    if (!ok)
        abort();
}

/* The parser's answer as one int: the frame's size, KF_EAGAIN, or minus the close code of a
 * refusal, checking that the refusal's code and close code go together. */
static int parse_verdict(int rc, unsigned close_code)
{
    if (rc > 0 || rc == KF_EAGAIN) {
        check(close_code == 0);
        return rc;
    }
    check((rc == KF_EPROTO && close_code == KF_WS_CLOSE_PROTOCOL) ||
          (rc == KF_ETOOBIG && close_code == KF_WS_CLOSE_TOO_BIG));
    return -(int)close_code;
}

/* kf_ws_message_accept's answer as one int: the frame's kind, or the close code to send. */
static int accept_verdict(kf_ws_message_t *message, const kf_ws_frame_t *frame, bool *complete)
{
    int kind = -1;
    unsigned close_code = 1;
    int rc = kf_ws_message_accept(message, frame, &kind, complete, &close_code);
    if (rc == 0) {
        check(close_code == 0 && (kind == KF_WS_FRAME_DATA || kind == KF_WS_FRAME_CONTROL));
        return kind;
    }
    check(kind == 0 && !*complete);
    check((rc == KF_EPROTO &&
           (close_code == KF_WS_CLOSE_PROTOCOL || close_code == KF_WS_CLOSE_BAD_DATA)) ||
          (rc == KF_ETOOBIG && close_code == KF_WS_CLOSE_TOO_BIG));
    return (int)close_code;
}

static bool is_valid_close_code(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

/* Parses a copy of len bytes, exactly that big, so that a read past len is caught; the copy is
 * never the buffer the loop works on, since success unmasks in place. */
static int parse_copy(const char *data, size_t len, uint64_t max_payload)
{
    kf_ws_frame_t frame;
    char *copy = malloc(len > 0 ? len : 1);
    check(copy != NULL);
    if (len > 0)
        memcpy(copy, data, len);
    unsigned close_code = 1;
    int rc =
        parse_verdict(kf_ws_parse_frame(copy, len, max_payload, &frame, &close_code), close_code);
    check(rc > 0 || memcmp(copy, data, len) == 0);
    free(copy);
    return rc;
}

static bool utf8_whole(const void *data, size_t len, bool *complete)
{
    kf_utf8_t v;
    kf_utf8_init(&v);
    bool ok = kf_utf8_feed(&v, data, len);
    *complete = kf_utf8_complete(&v);
    return ok;
}

/* Checks one parsed frame: where it lies, how it was unmasked, and that its header is the one
 * minimal encoding of its length. */
static void check_frame(const kf_ws_frame_t *frame, int rc, const char *original, const char *buf,
                        size_t remaining, uint64_t max_payload)
{
    size_t consumed = (size_t)rc;
    check(consumed <= remaining);
    check(frame->header_len >= 6 && frame->header_len <= 14);
    check(frame->payload_len <= max_payload);
    check(consumed == frame->header_len + frame->payload_len);
    check(frame->payload == buf + frame->header_len);
    check(frame->payload >= buf && frame->payload + frame->payload_len <= buf + remaining);
    check(frame->opcode <= KF_WS_BINARY ||
          (frame->opcode >= KF_WS_CLOSE && frame->opcode <= KF_WS_PONG));
    check(frame->opcode < KF_WS_CLOSE || (frame->fin && frame->payload_len <= 125));

    const unsigned char *key = (const unsigned char *)original + frame->header_len - 4;
    for (size_t i = 0; i < frame->payload_len; i++)
        check((unsigned char)frame->payload[i] ==
              ((unsigned char)original[frame->header_len + i] ^ key[i % 4]));
    check(memcmp(buf, original, frame->header_len) == 0);

    unsigned char header[10];
    size_t header_len = kf_ws_frame_header(frame->opcode, frame->payload_len, header);
    check(header_len + 4 == frame->header_len);
    check((header[1] & 0x7F) == ((unsigned char)original[1] & 0x7F));
    check(memcmp(header + 2, original + 2, header_len - 2) == 0);

    /* Any prefix of a complete frame is only "not yet". */
    check(parse_copy(original, consumed - 1, max_payload) == KF_EAGAIN);
}

/* A server's read loop over data (size bytes, writable): frames are parsed and consumed until
 * the input runs out, an error closes the connection, or a close frame arrives. */
static void serve(char *data, size_t size, uint64_t max_payload, uint64_t max_message)
{
    kf_ws_message_t message;
    kf_buf_t text;
    size_t offset = 0;

    kf_ws_message_init(&message, max_message);
    kf_buf_init(&text);
    while (offset < size) {
        char *buf = data + offset;
        size_t remaining = size - offset;
        char *original = malloc(remaining);
        kf_ws_frame_t frame;
        check(original != NULL);
        memcpy(original, buf, remaining);

        unsigned close_code = 1;
        int rc = parse_verdict(kf_ws_parse_frame(buf, remaining, max_payload, &frame, &close_code),
                               close_code);
        /* A verdict never depends on later bytes: half the input says "not yet" or the same. */
        int half = parse_copy(original, remaining / 2, max_payload);
        check(half == KF_EAGAIN || half == rc);
        if (rc <= 0) {
            check(memcmp(buf, original, remaining) == 0);
            check(frame.payload == NULL);
            free(original);
            break;
        }
        check_frame(&frame, rc, original, buf, remaining, max_payload);
        free(original);

        bool complete = false;
        int action = accept_verdict(&message, &frame, &complete);
        check(action == KF_WS_FRAME_DATA || !complete);
        check(message.size <= max_message);
        if (action == KF_WS_FRAME_DATA && message.opcode == KF_WS_TEXT) {
            kf_buf_append(&text, frame.payload, (size_t)frame.payload_len);
            bool whole_complete;
            check(utf8_whole(text.data, text.len, &whole_complete));
            check(!complete || whole_complete);
        }
        if (action == KF_WS_CLOSE_BAD_DATA) {
            /* The message so far, this fragment included, really is bad (or cut short). */
            kf_buf_append(&text, frame.payload, (size_t)frame.payload_len);
            bool whole_complete;
            bool ok = utf8_whole(text.data, text.len, &whole_complete);
            check(!ok || (frame.fin && !whole_complete));
        }
        if (complete)
            kf_buf_reset(&text);
        if (action == KF_WS_FRAME_DATA)
            check(message.in_message == !complete);
        if (action != KF_WS_FRAME_DATA && action != KF_WS_FRAME_CONTROL)
            break;

        if (frame.opcode == KF_WS_CLOSE) {
            unsigned code = 0;
            bool valid = kf_ws_close_payload_valid(frame.payload, (size_t)frame.payload_len, &code);
            check(frame.payload_len != 0 || (valid && code == 1005));
            check(frame.payload_len != 1 || !valid);
            check(!valid || frame.payload_len == 0 || is_valid_close_code(code));
            break;
        }
        offset += (size_t)rc;
    }
    kf_buf_free(&text);
}

/* Feeds data to the validator in pieces whose sizes (0 to 10 bytes) come from the data itself;
 * the verdict must be the one of feeding it whole. */
static void utf8_in_pieces(const char *data, size_t size)
{
    bool whole_complete;
    bool whole = utf8_whole(data, size, &whole_complete);
    kf_utf8_t v;
    bool ok = true;
    size_t offset = 0;
    size_t i = 0;
    size_t piece = 1;

    kf_utf8_init(&v);
    while (offset < size) {
        /* Empty feeds are part of the test, but never two in a row, so the loop always ends. */
        size_t next = (unsigned char)data[i++ % size] % 11;
        piece = next == 0 && piece == 0 ? 1 : next;
        if (piece > size - offset)
            piece = size - offset;
        bool piece_ok = kf_utf8_feed(&v, data + offset, piece);
        check(ok || !piece_ok); /* a refusal is final */
        ok = ok && piece_ok;
        offset += piece;
    }
    check(ok == whole);
    check(kf_utf8_complete(&v) == whole_complete);
    check(!whole_complete || whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
    /* Writable and exactly as big as the input, so that a read past the end is caught. */
    char *data = malloc(size > 0 ? size : 1);
    check(data != NULL);

    /* A tight server (one control frame's worth per frame, 64-byte messages) and a roomy one. */
    if (size > 0)
        memcpy(data, bytes, size);
    serve(data, size, 125, 64);
    if (size > 0)
        memcpy(data, bytes, size);
    serve(data, size, 1 << 20, 1 << 20);

    if (size > 0)
        memcpy(data, bytes, size);
    char accept[29];
    int rc = kf_ws_accept_key(data, size, accept);
    check(rc == 0 || rc == KF_EINVAL);
    check(rc != 0 || (size == 24 && data[22] == '=' && data[23] == '='));
    check(strlen(accept) == (rc == 0 ? 28 : 0));

    utf8_in_pieces(data, size);
    free(data);
    return 0;
}
