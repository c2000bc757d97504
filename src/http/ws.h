/* ws.h: the WebSocket protocol (RFC 6455) as pure functions: the handshake's accept key, an
 * incremental frame parser for client frames, a frame encoder for server frames, and an
 * incremental UTF-8 validator for text messages split across fragments. No I/O, no allocation in
 * the parser: payloads are unmasked in place in the caller's buffer. */
#ifndef KF_HTTP_WS_H
#define KF_HTTP_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opcodes. */
enum {
    KF_WS_CONT = 0x0,
    KF_WS_TEXT = 0x1,
    KF_WS_BINARY = 0x2,
    KF_WS_CLOSE = 0x8,
    KF_WS_PING = 0x9,
    KF_WS_PONG = 0xA,
};

/* Close codes the server sends. */
enum {
    KF_WS_CLOSE_NORMAL = 1000,
    KF_WS_CLOSE_GOING_AWAY = 1001,
    KF_WS_CLOSE_PROTOCOL = 1002,
    KF_WS_CLOSE_UNSUPPORTED = 1003,
    KF_WS_CLOSE_BAD_DATA = 1007, /* invalid UTF-8 in a text message */
    KF_WS_CLOSE_POLICY = 1008,
    KF_WS_CLOSE_TOO_BIG = 1009,
    KF_WS_CLOSE_INTERNAL = 1011,
};

/* Computes Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)), 28 chars +
 * NUL into out. Returns 0, or KF_EINVAL when key is not 24 characters of base64 that decode to 16
 * bytes (RFC 6455 §4.2.1). */
int kf_ws_accept_key(const char *key, size_t key_len, char out[29]);

/* One parsed frame header; the payload follows in the buffer. */
typedef struct kf_ws_frame {
    bool fin;
    unsigned opcode;      /* KF_WS_* */
    uint64_t payload_len; /* bytes of payload */
    size_t header_len;    /* bytes of header (2..14) */
    char *payload;        /* into the caller's buffer, unmasked in place */
} kf_ws_frame_t;

/* Parses one complete client frame at the start of buf (len bytes). On success returns the frame's
 * total size (header + payload), fills frame and unmasks the payload in place (so buf must be
 * writable). Returns KF_EAGAIN when the frame is not all there yet (the header has been checked as
 * far as it goes: a too-big length is reported as soon as the header is complete, so a caller
 * never waits for a huge payload). Fails with the close code to send in *close_code (may be NULL):
 * KF_EPROTO, 1002, for RSV bits set, an unknown opcode, an unmasked frame, a control frame
 * fragmented or longer than 125 bytes, a non-minimal length encoding, or a 64-bit length with the
 * top bit set; KF_ETOOBIG, 1009, for payload_len over max_payload. Does not check fragmentation
 * sequencing or UTF-8: see kf_ws_message_t. */
int kf_ws_parse_frame(char *buf, size_t len, uint64_t max_payload, kf_ws_frame_t *frame,
                      unsigned *close_code);

/* Writes a server frame header (FIN set, never masked) for opcode and payload_len into out (at
 * most 10 bytes); returns the header length. The payload follows it unchanged. */
size_t kf_ws_frame_header(unsigned opcode, uint64_t payload_len, unsigned char out[10]);

/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
typedef struct kf_utf8 {
    uint8_t state; /* continuation bytes still due: 0 = at a character boundary */
    uint8_t lower; /* internal: lowest allowed next continuation byte */
    uint8_t upper;
} kf_utf8_t;

void kf_utf8_init(kf_utf8_t *v);
/* Feeds bytes; returns false as soon as they cannot be valid UTF-8 (fail fast, even mid-character).
 */
bool kf_utf8_feed(kf_utf8_t *v, const void *data, size_t len);
/* True when the bytes fed so far end on a character boundary (a complete message). */
bool kf_utf8_complete(const kf_utf8_t *v);

/* Reassembles a message from frames and enforces the sequencing rules: a continuation only after a
 * non-final data frame, no new data frame while one is unfinished, control frames allowed between
 * fragments, a message size cap, and UTF-8 validity of text (checked per fragment, fail fast). */
typedef struct kf_ws_message {
    uint64_t size;     /* bytes so far */
    uint64_t max_size; /* cap on a whole message */
    kf_utf8_t utf8;
    uint8_t opcode;  /* its opcode (TEXT or BINARY) */
    bool in_message; /* a fragmented message is under way */
} kf_ws_message_t;

void kf_ws_message_init(kf_ws_message_t *m, uint64_t max_size);

/* What kind of frame kf_ws_message_accept saw. */
enum {
    KF_WS_FRAME_DATA = 1,    /* a data fragment: append payload; if *complete, the message ends */
    KF_WS_FRAME_CONTROL = 2, /* a ping, pong or close: handle it now */
};

/* Checks frame against the message state. Returns 0 with *kind KF_WS_FRAME_DATA (and *complete
 * set when the message ends with it) or KF_WS_FRAME_CONTROL; or fails, with the close code to
 * send (and then close) in *close_code: KF_EPROTO with KF_WS_CLOSE_PROTOCOL (bad sequencing) or
 * KF_WS_CLOSE_BAD_DATA (invalid UTF-8, also a text message that ends mid-character), KF_ETOOBIG
 * with KF_WS_CLOSE_TOO_BIG (message over max_size). */
int kf_ws_message_accept(kf_ws_message_t *m, const kf_ws_frame_t *frame, int *kind, bool *complete,
                         unsigned *close_code);

/* Validates a close frame's payload: empty, or a 2-byte code (1000-1003, 1007-1011, 3000-4999)
 * followed by valid UTF-8 reason. Returns true when valid; fills *code (1005 when empty). */
bool kf_ws_close_payload_valid(const char *payload, size_t len, unsigned *code);

#endif
