/* test_ws.c: table-driven tests of the WebSocket codec: accept keys, client frames fed whole and
 * byte by byte, the header encoder, the UTF-8 validator against a reference decoder, message
 * sequencing and close payloads. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "http/ws.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Sets .input and .len from a literal, so that embedded NULs count. */
#define RAW(s) .input = (s), .len = sizeof(s) - 1

/* No cap on a payload or message size. */
#define NO_CAP UINT64_MAX

/* A heap copy of exactly len bytes, so that AddressSanitizer catches any read past len. */
static char *copy_exact(const void *data, size_t len)
{
    char *copy = kf_xmalloc(len);
    if (len > 0)
        memcpy(copy, data, len);
    return copy;
}

/* The codec's answers as one int for the tables: a frame's size, INCOMPLETE, or minus the close
 * code of a refused frame; and a frame's kind, or the close code of a refused one. Each checks
 * that the returned code goes with its close code. */
enum { INCOMPLETE = KF_EAGAIN, EPROTO = -KF_WS_CLOSE_PROTOCOL, ETOO_BIG = -KF_WS_CLOSE_TOO_BIG };

static int ws_parse(char *buf, size_t len, uint64_t max_payload, kf_ws_frame_t *frame)
{
    unsigned close_code = 1;
    int rc = kf_ws_parse_frame(buf, len, max_payload, frame, &close_code);
    if (rc > 0 || rc == KF_EAGAIN) {
        assert_int_equal(close_code, 0);
        return rc;
    }
    assert_int_equal(rc, close_code == KF_WS_CLOSE_TOO_BIG ? KF_ETOOBIG : KF_EPROTO);
    return -(int)close_code;
}

static int ws_accept(kf_ws_message_t *m, const kf_ws_frame_t *frame, bool *complete)
{
    int kind = -1;
    unsigned close_code = 1;
    int rc = kf_ws_message_accept(m, frame, &kind, complete, &close_code);
    if (rc == 0) {
        assert_int_equal(close_code, 0);
        return kind;
    }
    assert_int_equal(kind, 0);
    assert_int_equal(rc, close_code == KF_WS_CLOSE_TOO_BIG ? KF_ETOOBIG : KF_EPROTO);
    return (int)close_code;
}

static void expect_rc(int got, int want, const char *what, size_t len)
{
    if (got != want) {
        print_error("%s (%zu bytes): got %d, want %d\n", what, len, got, want);
        fail();
    }
}

/* ---- kf_ws_accept_key ---- */

typedef struct key_case {
    const char *name;
    const char *input;
    size_t len;
    const char *accept; /* the expected Sec-WebSocket-Accept, or NULL when the key is refused */
} key_case_t;

static const key_case_t key_cases[] = {
    /* The expected values of the rows not from RFC 6455 come from `openssl sha1 | base64`. */
    {"key: RFC 6455 §1.3 example", RAW("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
    {"key: second example", RAW("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk="},
    {"key: all zero bytes", RAW("AAAAAAAAAAAAAAAAAAAAAA=="), "ICX+Yqv66kxgM0FcWaLWlFLwTAI="},
    {"key: '+' and '/'", RAW("++++++++++++++++++++//=="), "yZsmBGuMFPbqwc5Imq6JuVa3m7k="},
    {"key: nonzero pad bits still decode to 16 bytes", RAW("dGhlIHNhbXBsZSBub25jZR=="),
     "Zgw8jYXtqX5qJr7MJ1Q/MqzeSRI="},
    {"key: empty", RAW(""), NULL},
    {"key: 23 characters", RAW("dGhlIHNhbXBsZSBub25jZQ="), NULL},
    {"key: 25 characters", RAW("dGhlIHNhbXBsZSBub25jZQ==="), NULL},
    {"key: no padding, 18 bytes", RAW("dGhlIHNhbXBsZSBub25jZQAA"), NULL},
    {"key: one '=', 17 bytes", RAW("dGhlIHNhbXBsZSBub25jZQA="), NULL},
    {"key: three '=', 15 bytes", RAW("dGhlIHNhbXBsZSBub25jZ==="), NULL},
    {"key: four '='", RAW("dGhlIHNhbXBsZSBub25j===="), NULL},
    {"key: '=' inside", RAW("dGhlIHNhbXBs=SBub25jZQ=="), NULL},
    {"key: URL-safe '-'", RAW("dGhlIHNhbXBsZSBub25jZ-=="), NULL},
    {"key: URL-safe '_'", RAW("_GhlIHNhbXBsZSBub25jZQ=="), NULL},
    {"key: space inside", RAW("dGhlIHNhbXBsZSBub25jZ =="), NULL},
    {"key: leading space", RAW(" dGhlIHNhbXBsZSBub25jZQ=="), NULL},
    {"key: trailing CR", RAW("dGhlIHNhbXBsZSBub25jZQ==\r"), NULL},
    {"key: NUL inside", RAW("dGhlIHNhbXBs\0SBub25jZQ=="), NULL},
    {"key: byte 0xff inside", RAW("dGhlIHNhbXBs\xffSBub25jZQ=="), NULL},
    {"key: 16 raw bytes, not base64", RAW("0123456789abcdef"), NULL},
    {"key: 32 bytes of base64", RAW("dGhlIHNhbXBsZSBub25jZXRoZSBzYW1w"), NULL},
    {"key: base64 of 32 bytes", RAW("dGhlIHNhbXBsZSBub25jZXRoZSBzYW1wbGUgbm9uY2U="), NULL},
};

static void run_key_case(void **state)
{
    const key_case_t *c = *state;
    char out[29];
    char *key = copy_exact(c->input, c->len);

    memset(out, 'x', sizeof(out));
    int rc = kf_ws_accept_key(key, c->len, out);
    if (c->accept != NULL) {
        assert_int_equal(rc, 0);
        assert_string_equal(out, c->accept);
    } else {
        assert_int_equal(rc, KF_EINVAL);
        assert_int_equal(out[0], '\0');
    }
    free(key);
}

static void test_accept_key_null(void **state)
{
    (void)state;
    char out[29] = "stale";
    assert_int_equal(kf_ws_accept_key(NULL, 0, out), KF_EINVAL);
    assert_int_equal(out[0], '\0');
    /* Only key_len counts: a NUL-terminated key with a shorter length is refused. */
    assert_int_equal(kf_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 22, out), KF_EINVAL);
}

/* ---- kf_ws_parse_frame ---- */

/* The payload every frame case carries: plain bytes, masked with the case's key before parsing,
 * so that a correct parser hands exactly these back. */
static unsigned char plain_byte(size_t i)
{
    return (unsigned char)(i * 31 + 7);
}

/* Sets .head and .head_len from a literal. */
#define HEAD(s) .head = (s), .head_len = sizeof(s) - 1

typedef struct frame_case {
    const char *name;
    const char *head;     /* the header, the mask key last when the mask bit is set */
    size_t head_len;      /* bytes of head */
    size_t body_len;      /* bytes of generated payload that follow the header */
    uint64_t max_payload; /* passed to the parser */
    int error;            /* 0 for a valid frame, else the error */
    size_t fail_at;       /* for errors: the shortest prefix that is already refused */
    bool fin;             /* for valid frames: the expected header fields */
    unsigned opcode;
} frame_case_t;

static const frame_case_t frame_cases[] = {
    /* Valid frames: their length is head_len + body_len and payload_len is body_len. */
    {"frame: masked empty text", HEAD("\x81\x80\x01\x02\x03\x04"), 0, NO_CAP, 0, 0, true,
     KF_WS_TEXT},
    {"frame: masked text, RFC mask key", HEAD("\x81\x85\x37\xfa\x21\x3d"), 5, NO_CAP, 0, 0, true,
     KF_WS_TEXT},
    {"frame: zero mask key", HEAD("\x81\x83\x00\x00\x00\x00"), 3, NO_CAP, 0, 0, true, KF_WS_TEXT},
    {"frame: non-final text", HEAD("\x01\x83\xa1\xb2\xc3\xd4"), 3, NO_CAP, 0, 0, false, KF_WS_TEXT},
    {"frame: non-final binary", HEAD("\x02\x81\xa1\xb2\xc3\xd4"), 1, NO_CAP, 0, 0, false,
     KF_WS_BINARY},
    {"frame: non-final continuation", HEAD("\x00\x82\xa1\xb2\xc3\xd4"), 2, NO_CAP, 0, 0, false,
     KF_WS_CONT},
    {"frame: final continuation", HEAD("\x80\x82\xa1\xb2\xc3\xd4"), 2, NO_CAP, 0, 0, true,
     KF_WS_CONT},
    {"frame: binary of 125 bytes, the 7-bit maximum", HEAD("\x82\xfd\x11\x22\x33\x44"), 125, NO_CAP,
     0, 0, true, KF_WS_BINARY},
    {"frame: empty ping", HEAD("\x89\x80\x11\x22\x33\x44"), 0, NO_CAP, 0, 0, true, KF_WS_PING},
    {"frame: ping of 125 bytes", HEAD("\x89\xfd\x11\x22\x33\x44"), 125, NO_CAP, 0, 0, true,
     KF_WS_PING},
    {"frame: pong", HEAD("\x8a\x84\x11\x22\x33\x44"), 4, NO_CAP, 0, 0, true, KF_WS_PONG},
    {"frame: empty close", HEAD("\x88\x80\x11\x22\x33\x44"), 0, NO_CAP, 0, 0, true, KF_WS_CLOSE},
    {"frame: close of 125 bytes", HEAD("\x88\xfd\x11\x22\x33\x44"), 125, NO_CAP, 0, 0, true,
     KF_WS_CLOSE},
    {"frame: 126 form, 126 bytes", HEAD("\x82\xfe\x00\x7e\x5a\x6b\x7c\x8d"), 126, NO_CAP, 0, 0,
     true, KF_WS_BINARY},
    {"frame: 126 form, 1000 bytes", HEAD("\x81\xfe\x03\xe8\x5a\x6b\x7c\x8d"), 1000, NO_CAP, 0, 0,
     true, KF_WS_TEXT},
    {"frame: 126 form, 65535 bytes", HEAD("\x82\xfe\xff\xff\x5a\x6b\x7c\x8d"), 65535, NO_CAP, 0, 0,
     true, KF_WS_BINARY},
    {"frame: 127 form, 65536 bytes",
     HEAD("\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x5a\x6b\x7c\x8d"), 65536, NO_CAP, 0, 0, true,
     KF_WS_BINARY},
    {"frame: 127 form, 70000 bytes, non-final",
     HEAD("\x02\xff\x00\x00\x00\x00\x00\x01\x11\x70\x5a\x6b\x7c\x8d"), 70000, NO_CAP, 0, 0, false,
     KF_WS_BINARY},
    {"frame: payload exactly max_payload", HEAD("\x82\x8a\x01\x02\x03\x04"), 10, 10, 0, 0, true,
     KF_WS_BINARY},
    {"frame: 126 form exactly max_payload", HEAD("\x82\xfe\x01\x00\x01\x02\x03\x04"), 256, 256, 0,
     0, true, KF_WS_BINARY},
    {"frame: empty payload under max_payload 0", HEAD("\x81\x80\x01\x02\x03\x04"), 0, 0, 0, 0, true,
     KF_WS_TEXT},

    /* Byte 0: RSV bits, opcode, a fragmented control frame. */
    {"frame: RSV1 set", HEAD("\xc1\x85\x37\xfa\x21\x3d"), 5, NO_CAP, EPROTO, 1},
    {"frame: RSV2 set", HEAD("\xa1\x85\x37\xfa\x21\x3d"), 5, NO_CAP, EPROTO, 1},
    {"frame: RSV3 set", HEAD("\x91\x85\x37\xfa\x21\x3d"), 5, NO_CAP, EPROTO, 1},
    {"frame: all RSV bits set", HEAD("\xf1\x85\x37\xfa\x21\x3d"), 5, NO_CAP, EPROTO, 1},
    {"frame: RSV1 on a continuation", HEAD("\x40\x80\x01\x02\x03\x04"), 0, NO_CAP, EPROTO, 1},
    {"frame: reserved data opcode 3", HEAD("\x83\x80\x01\x02\x03\x04"), 0, NO_CAP, EPROTO, 1},
    {"frame: reserved data opcode 7", HEAD("\x87\x80\x01\x02\x03\x04"), 0, NO_CAP, EPROTO, 1},
    {"frame: reserved control opcode 0xB", HEAD("\x8b\x80\x01\x02\x03\x04"), 0, NO_CAP, EPROTO, 1},
    {"frame: reserved control opcode 0xF", HEAD("\x8f\x80\x01\x02\x03\x04"), 0, NO_CAP, EPROTO, 1},
    {"frame: non-final ping", HEAD("\x09\x80\x01\x02\x03\x04"), 0, NO_CAP, EPROTO, 1},
    {"frame: non-final pong", HEAD("\x0a\x80\x01\x02\x03\x04"), 0, NO_CAP, EPROTO, 1},
    {"frame: non-final close", HEAD("\x08\x82\x01\x02\x03\x04"), 2, NO_CAP, EPROTO, 1},
    {"frame: RSV bit and unmasked: the first fault wins", HEAD("\xc1\x05"), 5, NO_CAP, EPROTO, 1},

    /* Byte 1: the mask bit and a control frame's length. */
    {"frame: unmasked text", HEAD("\x81\x05"), 5, NO_CAP, EPROTO, 2},
    {"frame: unmasked empty text", HEAD("\x81\x00"), 0, NO_CAP, EPROTO, 2},
    {"frame: unmasked close", HEAD("\x88\x02"), 2, NO_CAP, EPROTO, 2},
    {"frame: unmasked 126 form", HEAD("\x82\x7e\x01\x00"), 256, NO_CAP, EPROTO, 2},
    {"frame: unmasked and too big: the mask is checked first", HEAD("\x82\x64"), 0, 10, EPROTO, 2},
    {"frame: ping in the 126 form", HEAD("\x89\xfe\x00\x7e\x01\x02\x03\x04"), 126, NO_CAP, EPROTO,
     2},
    {"frame: close in the 127 form",
     HEAD("\x88\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04"), 0, NO_CAP, EPROTO, 2},
    {"frame: pong in the 126 form, under 126 bytes", HEAD("\x8a\xfe\x00\x05\x01\x02\x03\x04"), 5,
     NO_CAP, EPROTO, 2},

    /* The extended length: minimal encoding, the top bit. */
    {"frame: 126 form for 125 bytes", HEAD("\x82\xfe\x00\x7d\x01\x02\x03\x04"), 125, NO_CAP, EPROTO,
     4},
    {"frame: 126 form for 0 bytes", HEAD("\x82\xfe\x00\x00\x01\x02\x03\x04"), 0, NO_CAP, EPROTO, 4},
    {"frame: 127 form for 65535 bytes",
     HEAD("\x82\xff\x00\x00\x00\x00\x00\x00\xff\xff\x01\x02\x03\x04"), 0, NO_CAP, EPROTO, 10},
    {"frame: 127 form for 126 bytes",
     HEAD("\x82\xff\x00\x00\x00\x00\x00\x00\x00\x7e\x01\x02\x03\x04"), 126, NO_CAP, EPROTO, 10},
    {"frame: 127 form for 0 bytes",
     HEAD("\x82\xff\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04"), 0, NO_CAP, EPROTO, 10},
    {"frame: 64-bit length with the top bit set", HEAD("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00"),
     0, NO_CAP, EPROTO, 3},
    {"frame: 64-bit length of all ones", HEAD("\x82\xff\xff\xff\xff\xff\xff\xff\xff\xff"), 0,
     NO_CAP, EPROTO, 3},

    /* max_payload, judged as soon as the length is known, before any payload arrives. */
    {"frame: 7-bit length over max_payload", HEAD("\x82\x8b\x01\x02\x03\x04"), 11, 10, ETOO_BIG, 2},
    {"frame: one byte under max_payload 0", HEAD("\x81\x81\x01\x02\x03\x04"), 1, 0, ETOO_BIG, 2},
    {"frame: 126 form over max_payload, no payload sent", HEAD("\x82\xfe\x10\x00"), 0, 4095,
     ETOO_BIG, 4},
    {"frame: 127 form over max_payload, no payload sent",
     HEAD("\x82\xff\x00\x00\x00\x00\x00\x01\x00\x01"), 0, 65536, ETOO_BIG, 10},
    {"frame: 127 form of 2^62 bytes, no cap", HEAD("\x82\xff\x40\x00\x00\x00\x00\x00\x00\x00"), 0,
     NO_CAP, ETOO_BIG, 10},
    {"frame: 127 form of 2^63 - 1 bytes, no cap", HEAD("\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff"),
     0, NO_CAP, ETOO_BIG, 10},
    {"frame: non-minimal and too big: minimal encoding first", HEAD("\x82\xfe\x00\x10"), 0, 8,
     EPROTO, 4},
};

/* Builds the case's bytes: the header, then body_len payload bytes masked with the header's key,
 * then extra bytes of whatever comes next on the wire. Returns the frame's size. */
static size_t build_frame(const frame_case_t *c, size_t extra, char **out)
{
    size_t size = c->head_len + c->body_len;
    unsigned char *bytes = kf_xmalloc(size + extra);
    bool masked = c->head_len >= 6 && (c->head[1] & 0x80) != 0;
    unsigned char key[4] = {0, 0, 0, 0};

    if (masked)
        memcpy(key, c->head + c->head_len - 4, 4);
    memcpy(bytes, c->head, c->head_len);
    for (size_t i = 0; i < c->body_len; i++)
        bytes[c->head_len + i] = plain_byte(i) ^ key[i % 4];
    for (size_t i = 0; i < extra; i++)
        bytes[size + i] = (unsigned char)(0x81 + i);
    *out = (char *)bytes;
    return size;
}

/* Parses a copy of the first len bytes of data, exactly that big; the parser must leave it as it
 * was unless it succeeds. */
static int parse_prefix(const char *data, size_t len, uint64_t max_payload, kf_ws_frame_t *frame)
{
    char *copy = copy_exact(data, len);
    int rc = ws_parse(copy, len, max_payload, frame);
    if (rc <= 0) {
        assert_memory_equal(copy, data, len);
        assert_null(frame->payload);
    }
    free(copy);
    return rc;
}

static void check_valid_frame(const frame_case_t *c, const char *buf, size_t len, int rc,
                              const kf_ws_frame_t *frame)
{
    size_t size = c->head_len + c->body_len;
    expect_rc(rc, (int)size, "whole", len);
    assert_int_equal(frame->fin, c->fin);
    assert_int_equal(frame->opcode, c->opcode);
    assert_true(frame->payload_len == c->body_len);
    assert_int_equal(frame->header_len, c->head_len);
    assert_ptr_equal(frame->payload, buf + c->head_len);
    for (size_t i = 0; i < c->body_len; i++) {
        if ((unsigned char)frame->payload[i] != plain_byte(i)) {
            print_error("payload byte %zu: got 0x%02x\n", i, (unsigned char)frame->payload[i]);
            fail();
        }
    }
}

/* Prefixes this long or shorter are parsed from exact heap copies; longer ones end inside the
 * payload, which the parser never reads before it is complete, so they share one buffer. */
#define EXACT_PREFIXES 64

static void run_valid_frame(const frame_case_t *c)
{
    kf_ws_frame_t frame;
    char *buf;
    size_t size = build_frame(c, 3, &buf);
    char *pristine = copy_exact(buf, size + 3);

    /* Whole, followed by the start of the next frame, which is not consumed. */
    int rc = ws_parse(buf, size + 3, c->max_payload, &frame);
    check_valid_frame(c, buf, size + 3, rc, &frame);
    assert_memory_equal(buf + size, pristine + size, 3);

    /* Exactly the frame, in a buffer that ends with it. */
    char *exact = copy_exact(pristine, size);
    rc = ws_parse(exact, size, c->max_payload, &frame);
    check_valid_frame(c, exact, size, rc, &frame);
    free(exact);

    /* Byte by byte: every prefix is "not yet", and the buffer stays masked. */
    for (size_t len = 0; len < size; len++) {
        if (len <= EXACT_PREFIXES) {
            rc = parse_prefix(pristine, len, c->max_payload, &frame);
        } else {
            rc = ws_parse(pristine, len, c->max_payload, &frame);
            assert_null(frame.payload);
        }
        expect_rc(rc, INCOMPLETE, "prefix", len);
    }
    free(pristine);
    free(buf);
}

static void run_bad_frame(const frame_case_t *c)
{
    kf_ws_frame_t frame;
    char *buf;
    size_t size = build_frame(c, 0, &buf);

    assert_true(c->fail_at >= 1 && c->fail_at <= c->head_len);
    /* Fail fast: every prefix shorter than fail_at is "not yet", every longer one the error. */
    for (size_t len = 0; len <= size; len++) {
        int rc = parse_prefix(buf, len, c->max_payload, &frame);
        expect_rc(rc, len < c->fail_at ? INCOMPLETE : c->error, "prefix", len);
    }
    free(buf);
}

static void run_frame_case(void **state)
{
    const frame_case_t *c = *state;
    if (c->error == 0)
        run_valid_frame(c);
    else
        run_bad_frame(c);
}

/* The examples of RFC 6455 §5.7, byte for byte. Only masked ones are valid from a client. */
static void test_rfc_examples(void **state)
{
    (void)state;
    static const char masked_hello[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    static const char masked_pong[] = "\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    static const char unmasked_hello[] = "\x81\x05Hello";
    static const char unmasked_fragment[] = "\x01\x03Hel";
    static const char unmasked_ping[] = "\x89\x05Hello";
    static const char unmasked_256[] = "\x82\x7e\x01\x00";
    kf_ws_frame_t frame;

    char *buf = copy_exact(masked_hello, 11);
    assert_int_equal(ws_parse(buf, 11, NO_CAP, &frame), 11);
    assert_true(frame.fin);
    assert_int_equal(frame.opcode, KF_WS_TEXT);
    assert_true(frame.payload_len == 5);
    assert_int_equal(frame.header_len, 6);
    assert_memory_equal(frame.payload, "Hello", 5);
    free(buf);

    buf = copy_exact(masked_pong, 11);
    assert_int_equal(ws_parse(buf, 11, 5, &frame), 11);
    assert_int_equal(frame.opcode, KF_WS_PONG);
    assert_memory_equal(frame.payload, "Hello", 5);
    free(buf);

    kf_ws_frame_t ignored;
    assert_int_equal(parse_prefix(unmasked_hello, 7, NO_CAP, &ignored), EPROTO);
    assert_int_equal(parse_prefix(unmasked_fragment, 5, NO_CAP, &ignored), EPROTO);
    assert_int_equal(parse_prefix(unmasked_ping, 7, NO_CAP, &ignored), EPROTO);
    assert_int_equal(parse_prefix(unmasked_256, 4, NO_CAP, &ignored), EPROTO);
}

/* Every first byte, with a masked empty payload: the RSV bits, opcode and FIN rules in full. */
static void test_every_first_byte(void **state)
{
    (void)state;
    for (unsigned value = 0; value < 256; value++) {
        char bytes[6] = {(char)value, (char)0x80, 1, 2, 3, 4};
        unsigned opcode = value & 0x0F;
        bool known = opcode <= 2 || (opcode >= 8 && opcode <= 10);
        bool valid = (value & 0x70) == 0 && known && (opcode < 8 || (value & 0x80) != 0);
        kf_ws_frame_t frame;

        int rc = parse_prefix(bytes, sizeof(bytes), NO_CAP, &frame);
        if (rc != (valid ? 6 : EPROTO)) {
            print_error("first byte 0x%02x: got %d\n", value, rc);
            fail();
        }
        if (valid) {
            assert_int_equal(frame.fin, (value & 0x80) != 0);
            assert_int_equal(frame.opcode, opcode);
        }
        /* The verdict on byte 0 needs no more bytes. */
        rc = parse_prefix(bytes, 1, NO_CAP, &frame);
        assert_int_equal(rc, valid ? INCOMPLETE : EPROTO);
    }
}

/* Unmasking word by word must match byte by byte for every length and alignment. */
static void test_unmask_lengths_and_offsets(void **state)
{
    (void)state;
    static const unsigned char key[4] = {0x9c, 0x01, 0xfe, 0x37};
    for (size_t offset = 0; offset < 8; offset++) {
        for (size_t len = 0; len <= 40; len++) {
            unsigned char header[6] = {0x82, (unsigned char)(0x80 | len), 0, 0, 0, 0};
            size_t total = offset + sizeof(header) + len;
            unsigned char *bytes = kf_xmalloc(total);
            kf_ws_frame_t frame;

            memcpy(header + 2, key, 4);
            memset(bytes, 0xEE, offset);
            memcpy(bytes + offset, header, sizeof(header));
            for (size_t i = 0; i < len; i++)
                bytes[offset + sizeof(header) + i] = plain_byte(i) ^ key[i % 4];
            int rc = ws_parse((char *)bytes + offset, total - offset, NO_CAP, &frame);
            assert_int_equal(rc, (int)(sizeof(header) + len));
            for (size_t i = 0; i < len; i++)
                assert_int_equal((unsigned char)frame.payload[i], plain_byte(i));
            free(bytes);
        }
    }
}

/* The result is an int, so a frame is never allowed past INT_MAX bytes, whatever the cap. */
static void test_int_limit(void **state)
{
    (void)state;
    uint64_t largest = (uint64_t)INT_MAX - 14;
    unsigned char header[10];
    char bytes[14];
    kf_ws_frame_t frame;

    size_t n = kf_ws_frame_header(KF_WS_BINARY, largest, header);
    assert_int_equal(n, 10);
    memcpy(bytes, header, n);
    bytes[1] = (char)(0x80 | 127);
    memset(bytes + n, 0, 4);
    assert_int_equal(parse_prefix(bytes, 14, NO_CAP, &frame), INCOMPLETE);

    n = kf_ws_frame_header(KF_WS_BINARY, largest + 1, header);
    memcpy(bytes, header, n);
    bytes[1] = (char)(0x80 | 127);
    assert_int_equal(parse_prefix(bytes, 10, NO_CAP, &frame), ETOO_BIG);
}

/* A server's read loop: bytes arrive one at a time into a buffer, every complete frame is
 * consumed and checked against the message state, and the message comes out whole. */
static void test_stream_byte_by_byte(void **state)
{
    (void)state;
    static const char stream[] = "\x01\x83\x01\x02\x03\x04" /* text, not final: "Hel" */
                                 "\x49\x67\x6f"             /* ("Hel" masked) */
                                 "\x89\x80\x05\x06\x07\x08" /* empty ping between the fragments */
                                 "\x80\x82\x0a\x0b\x0c\x0d" /* final continuation: "lo" */
                                 "\x66\x64"                 /* ("lo" masked) */
                                 "\x88\x82\x00\x00\x00\x00\x03" /* close 1000 with a zero key */
                                 "\xe8";
    kf_ws_message_t message;
    kf_buf_t in;
    kf_buf_t text;
    unsigned close_code = 0;
    int pings = 0;
    int messages = 0;

    kf_ws_message_init(&message, 1024);
    kf_buf_init(&in);
    kf_buf_init(&text);
    for (size_t i = 0; i < sizeof(stream) - 1; i++) {
        kf_buf_append(&in, stream + i, 1);
        for (;;) {
            kf_ws_frame_t frame;
            bool complete = false;
            int rc = ws_parse(in.data, in.len, 1024, &frame);
            if (rc == INCOMPLETE)
                break;
            assert_true(rc > 0);
            int action = ws_accept(&message, &frame, &complete);
            if (action == KF_WS_FRAME_DATA) {
                kf_buf_append(&text, frame.payload, (size_t)frame.payload_len);
                messages += complete ? 1 : 0;
            } else {
                assert_int_equal(action, KF_WS_FRAME_CONTROL);
                if (frame.opcode == KF_WS_PING)
                    pings++;
                if (frame.opcode == KF_WS_CLOSE) {
                    assert_true(kf_ws_close_payload_valid(frame.payload, (size_t)frame.payload_len,
                                                          &close_code));
                }
            }
            kf_buf_consume(&in, (size_t)rc);
        }
    }
    assert_int_equal(in.len, 0);
    assert_int_equal(text.len, 5);
    assert_memory_equal(text.data, "Hello", 5);
    assert_int_equal(messages, 1);
    assert_int_equal(pings, 1);
    assert_int_equal(close_code, 1000);
    kf_buf_free(&in);
    kf_buf_free(&text);
}

/* ---- kf_ws_frame_header ---- */

typedef struct header_case {
    const char *name;
    unsigned opcode;
    uint64_t payload_len;
    const char *bytes; /* the expected header */
    size_t len;
} header_case_t;

#define BYTES(s) .bytes = (s), .len = sizeof(s) - 1

static const header_case_t header_cases[] = {
    {"header: empty text", KF_WS_TEXT, 0, BYTES("\x81\x00")},
    {"header: one byte of binary", KF_WS_BINARY, 1, BYTES("\x82\x01")},
    {"header: 125, the 7-bit maximum", KF_WS_TEXT, 125, BYTES("\x81\x7d")},
    {"header: 126, the 16-bit minimum", KF_WS_TEXT, 126, BYTES("\x81\x7e\x00\x7e")},
    {"header: 127", KF_WS_BINARY, 127, BYTES("\x82\x7e\x00\x7f")},
    {"header: 65535, the 16-bit maximum", KF_WS_TEXT, 65535, BYTES("\x81\x7e\xff\xff")},
    {"header: 65536, the 64-bit minimum", KF_WS_TEXT, 65536,
     BYTES("\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00")},
    {"header: 2^32", KF_WS_BINARY, (uint64_t)1 << 32,
     BYTES("\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00")},
    {"header: 0x0102030405060708", KF_WS_BINARY, 0x0102030405060708ULL,
     BYTES("\x82\x7f\x01\x02\x03\x04\x05\x06\x07\x08")},
    {"header: 2^63 - 1, the largest", KF_WS_BINARY, INT64_MAX,
     BYTES("\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff")},
    {"header: close with a code", KF_WS_CLOSE, 2, BYTES("\x88\x02")},
    {"header: empty ping", KF_WS_PING, 0, BYTES("\x89\x00")},
    {"header: pong of 125 bytes", KF_WS_PONG, 125, BYTES("\x8a\x7d")},
};

static void run_header_case(void **state)
{
    const header_case_t *c = *state;
    unsigned char out[12];

    memset(out, 0xEE, sizeof(out));
    size_t n = kf_ws_frame_header(c->opcode, c->payload_len, out);
    assert_int_equal(n, c->len);
    assert_memory_equal(out, c->bytes, c->len);
    for (size_t i = n; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xEE);
}

/* What the encoder writes, the parser reads back (once masked, as a client would send it). */
static void test_header_round_trip(void **state)
{
    (void)state;
    static const uint64_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, 70001};
    static const unsigned char key[4] = {0xde, 0xad, 0xbe, 0xef};
    for (size_t i = 0; i < ARRAY_LEN(lengths); i++) {
        size_t len = (size_t)lengths[i];
        unsigned char header[10];
        size_t n = kf_ws_frame_header(KF_WS_BINARY, len, header);
        size_t total = n + 4 + len;
        unsigned char *bytes = kf_xmalloc(total);
        kf_ws_frame_t frame;

        memcpy(bytes, header, n);
        bytes[1] |= 0x80;
        memcpy(bytes + n, key, 4);
        for (size_t j = 0; j < len; j++)
            bytes[n + 4 + j] = plain_byte(j) ^ key[j % 4];
        assert_int_equal(ws_parse((char *)bytes, total, NO_CAP, &frame), (int)total);
        assert_true(frame.payload_len == len);
        assert_int_equal(frame.header_len, n + 4);
        for (size_t j = 0; j < len; j++)
            assert_int_equal((unsigned char)frame.payload[j], plain_byte(j));
        free(bytes);
    }
}

/* ---- kf_utf8 ---- */

/* The reference validator: decodes by the definition of UTF-8 (code point ranges), not by the
 * byte table the real one uses. After the lead byte and each continuation byte it asks whether
 * any completion of the character so far is a valid scalar value: the completions span the
 * interval from "all following bits 0" to "all 1", so that is an interval intersection.
 * Returns the shortest refused prefix (0 when none) and whether the input ends on a boundary. */
static size_t reference_fail_len(const unsigned char *s, size_t len, bool *complete)
{
    static const uint32_t min_value[5] = {0, 0, 0x80, 0x800, 0x10000};
    static const uint32_t max_value[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
    size_t i = 0;

    *complete = true;
    while (i < len) {
        unsigned char lead = s[i];
        size_t n;
        uint32_t value;
        if (lead < 0x80) {
            i++;
            continue;
        }
        if ((lead & 0xE0) == 0xC0) {
            n = 2;
            value = lead & 0x1F;
        } else if ((lead & 0xF0) == 0xE0) {
            n = 3;
            value = lead & 0x0F;
        } else if ((lead & 0xF8) == 0xF0) {
            n = 4;
            value = lead & 0x07;
        } else {
            *complete = false;
            return i + 1;
        }
        for (size_t k = 0; k < n; k++) {
            if (k > 0) {
                if (i + k >= len) {
                    *complete = false;
                    return 0;
                }
                if ((s[i + k] & 0xC0) != 0x80) {
                    *complete = false;
                    return i + k + 1;
                }
                value = (value << 6) | (s[i + k] & 0x3F);
            }
            unsigned missing_bits = 6 * (unsigned)(n - 1 - k);
            uint32_t low = value << missing_bits;
            uint32_t high = low | ((1u << missing_bits) - 1);
            if (low < min_value[n])
                low = min_value[n];
            if (high > max_value[n])
                high = max_value[n];
            bool possible = low <= high && !(low >= 0xD800 && high <= 0xDFFF);
            if (!possible) {
                *complete = false;
                return i + k + 1;
            }
        }
        i += n;
    }
    return 0;
}

/* Feeds s one byte at a time; returns the shortest refused prefix (0 when none), checks that
 * every later byte is refused too, and reports whether the input ends on a boundary. */
static size_t fail_len_byte_by_byte(const unsigned char *s, size_t len, bool *complete)
{
    kf_utf8_t v;
    size_t fail_len = 0;

    kf_utf8_init(&v);
    for (size_t i = 0; i < len; i++) {
        bool ok = kf_utf8_feed(&v, s + i, 1);
        if (!ok && fail_len == 0)
            fail_len = i + 1;
        if (ok && fail_len != 0) {
            print_error("byte %zu accepted after a refusal at %zu\n", i, fail_len);
            fail();
        }
    }
    *complete = kf_utf8_complete(&v);
    return fail_len;
}

/* Compares the validator with the reference on s: fed whole, and byte by byte. */
static void compare_with_reference(const unsigned char *s, size_t len)
{
    bool want_complete;
    size_t want = reference_fail_len(s, len, &want_complete);
    bool got_complete;
    size_t got = fail_len_byte_by_byte(s, len, &got_complete);
    kf_utf8_t v;

    kf_utf8_init(&v);
    bool whole = kf_utf8_feed(&v, s, len);
    if (got != want || got_complete != want_complete || whole != (want == 0) ||
        kf_utf8_complete(&v) != want_complete) {
        print_error("bytes:");
        for (size_t i = 0; i < len; i++)
            print_error(" %02x", s[i]);
        print_error(": fails at %zu (want %zu), complete %d (want %d)\n", got, want, got_complete,
                    want_complete);
        fail();
    }
}

typedef struct utf8_case {
    const char *name;
    const char *input;
    size_t len;
    size_t fail_len; /* the shortest refused prefix, 0 when no prefix is refused */
    bool complete;   /* whether the whole input ends on a character boundary (never, if refused) */
} utf8_case_t;

static const utf8_case_t utf8_cases[] = {
    /* Valid (Autobahn 6.1, 6.2, 6.5, 6.22, 6.23). */
    {"utf8: empty", RAW(""), 0, true},
    {"utf8: ASCII", RAW("Hello, World!"), 0, true},
    {"utf8: NUL and DEL", RAW("a\0b\x7f"), 0, true},
    {"utf8: Autobahn 6.2.1",
     RAW("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1"
         "-UTF-8!!"),
     0, true},
    {"utf8: kosme", RAW("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), 0, true},
    {"utf8: U+0080", RAW("\xc2\x80"), 0, true},
    {"utf8: U+07FF", RAW("\xdf\xbf"), 0, true},
    {"utf8: U+0800", RAW("\xe0\xa0\x80"), 0, true},
    {"utf8: U+D7FF, below the surrogates", RAW("\xed\x9f\xbf"), 0, true},
    {"utf8: U+E000, above the surrogates", RAW("\xee\x80\x80"), 0, true},
    {"utf8: U+FDD0, a noncharacter", RAW("\xef\xb7\x90"), 0, true},
    {"utf8: U+FFFD", RAW("\xef\xbf\xbd"), 0, true},
    {"utf8: U+FFFE and U+FFFF, noncharacters", RAW("\xef\xbf\xbe\xef\xbf\xbf"), 0, true},
    {"utf8: U+10000", RAW("\xf0\x90\x80\x80"), 0, true},
    {"utf8: U+1F4AC", RAW("\xf0\x9f\x92\xac"), 0, true},
    {"utf8: U+10FFFF, the last", RAW("\xf4\x8f\xbf\xbf"), 0, true},
    {"utf8: multi-byte across the ASCII fast path",
     RAW("abcdefg\xc3\xa9hijklmnopqrstuvw\xf0\x9f\x98\x80xyz0123456789\xe2\x82\xac"), 0, true},

    /* Valid so far, but ending inside a character. */
    {"utf8: lead of 2 alone", RAW("\xce"), 0, false},
    {"utf8: lead of 3 and one continuation", RAW("\xe1\xbd"), 0, false},
    {"utf8: U+10FFFF less its last byte", RAW("\xf4\x8f\xbf"), 0, false},
    {"utf8: lead of 4 alone", RAW("\xf0"), 0, false},
    {"utf8: ASCII then half a euro sign", RAW("abc\xe2\x82"), 0, false},
    {"utf8: kosme less its last byte", RAW("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce"), 0, false},

    /* Continuation bytes with no lead (Autobahn 6.8, 6.9, 6.10). */
    {"utf8: lone 0x80", RAW("\x80"), 1, false},
    {"utf8: lone 0xbf", RAW("\xbf"), 1, false},
    {"utf8: two continuations", RAW("\x80\xbf"), 1, false},
    {"utf8: continuation after ASCII",
     RAW("ab\x80"
         "cd"),
     3, false},
    {"utf8: kosme then a continuation", RAW("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\x80"), 12,
     false},
    {"utf8: one continuation too many", RAW("\xc2\x80\x80"), 3, false},

    /* A lead byte cut short by a non-continuation (Autobahn 6.14 to 6.18). */
    {"utf8: lead of 2 then a space", RAW("\xc2 "), 2, false},
    {"utf8: lead of 3 then a space", RAW("\xe0\xa0 "), 3, false},
    {"utf8: lead of 4 then a space", RAW("\xf0\x90\x80 "), 4, false},
    {"utf8: lead of 3 then ASCII", RAW("\xe2\x28\xa1"), 2, false},
    {"utf8: lead of 3, continuation, ASCII", RAW("\xe2\x82\x28"), 3, false},
    {"utf8: lead of 4 then ASCII", RAW("\xf0\x28\x8c\xbc"), 2, false},
    {"utf8: lead of 4, two continuations, ASCII", RAW("\xf0\x90\x8c\x28"), 4, false},
    {"utf8: lead followed by a lead", RAW("\xc2\xc2\x80"), 2, false},
    {"utf8: incomplete sequences concatenated (6.19)",
     RAW("\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf"), 1,
     false},

    /* Overlong forms (Autobahn 6.20): refused at the first byte that proves them overlong. */
    {"utf8: overlong NUL in 2 bytes", RAW("\xc0\x80"), 1, false},
    {"utf8: overlong '/' in 2 bytes", RAW("\xc0\xaf"), 1, false},
    {"utf8: overlong U+007F in 2 bytes", RAW("\xc1\xbf"), 1, false},
    {"utf8: overlong '/' in 3 bytes", RAW("\xe0\x80\xaf"), 2, false},
    {"utf8: overlong U+07FF in 3 bytes", RAW("\xe0\x9f\xbf"), 2, false},
    {"utf8: overlong '/' in 4 bytes", RAW("\xf0\x80\x80\xaf"), 2, false},
    {"utf8: overlong U+FFFF in 4 bytes", RAW("\xf0\x8f\xbf\xbf"), 2, false},
    {"utf8: overlong '/' in 5 bytes", RAW("\xf8\x80\x80\x80\xaf"), 1, false},
    {"utf8: overlong '/' in 6 bytes", RAW("\xfc\x80\x80\x80\x80\xaf"), 1, false},

    /* Past U+10FFFF (Autobahn 6.3, 6.4). */
    {"utf8: U+110000", RAW("\xf4\x90\x80\x80"), 2, false},
    {"utf8: lead 0xf5", RAW("\xf5\x80\x80\x80"), 1, false},
    {"utf8: U+1FFFFF", RAW("\xf7\xbf\xbf\xbf"), 1, false},
    {"utf8: 5-byte form", RAW("\xf8\x88\x80\x80\x80"), 1, false},
    {"utf8: 6-byte form", RAW("\xfc\x84\x80\x80\x80\x80"), 1, false},
    {"utf8: 0xfe", RAW("\xfe"), 1, false},
    {"utf8: 0xff", RAW("\xff"), 1, false},
    {"utf8: 0xfe 0xfe 0xff 0xff", RAW("\xfe\xfe\xff\xff"), 1, false},
    {"utf8: Autobahn 6.4.1, kosme then U+110000, fails at its second byte",
     RAW("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64"),
     13, false},

    /* Surrogates (Autobahn 6.21 and 6.3.1). */
    {"utf8: U+D800", RAW("\xed\xa0\x80"), 2, false},
    {"utf8: U+DB7F", RAW("\xed\xad\xbf"), 2, false},
    {"utf8: U+DB80", RAW("\xed\xae\x80"), 2, false},
    {"utf8: U+DBFF", RAW("\xed\xaf\xbf"), 2, false},
    {"utf8: U+DC00", RAW("\xed\xb0\x80"), 2, false},
    {"utf8: U+DF80", RAW("\xed\xbe\x80"), 2, false},
    {"utf8: U+DFFF", RAW("\xed\xbf\xbf"), 2, false},
    {"utf8: a surrogate pair (CESU-8)", RAW("\xed\xa0\x80\xed\xb0\x80"), 2, false},
    {"utf8: Autobahn 6.3.1, kosme then U+D800, fails at its second byte",
     RAW("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"), 13,
     false},
    {"utf8: a surrogate after 9 ASCII bytes", RAW("012345678\xed\xa0\x80"), 11, false},
};

/* Checks one split of c->input into pieces at the given cuts against the case's verdict. */
static void check_split(const utf8_case_t *c, const char *input, const size_t *cuts,
                        size_t num_cuts)
{
    kf_utf8_t v;
    size_t start = 0;
    bool ok = true;

    kf_utf8_init(&v);
    for (size_t i = 0; i <= num_cuts; i++) {
        size_t end = i < num_cuts ? cuts[i] : c->len;
        bool piece_ok = kf_utf8_feed(&v, input + start, end - start);
        /* A piece is refused exactly when it holds the byte that ends the valid prefix. */
        bool want = c->fail_len == 0 || end < c->fail_len;
        if (piece_ok != want && ok) {
            print_error("piece %zu..%zu: got %d, want %d\n", start, end, piece_ok, want);
            fail();
        }
        ok = ok && piece_ok;
        start = end;
    }
    assert_int_equal(ok, c->fail_len == 0);
    assert_int_equal(kf_utf8_complete(&v), c->fail_len == 0 && c->complete);
}

static void run_utf8_case(void **state)
{
    const utf8_case_t *c = *state;
    const unsigned char *input = (const unsigned char *)copy_exact(c->input, c->len);
    bool complete;

    /* The table agrees with the reference, so neither can be quietly wrong. */
    assert_int_equal(reference_fail_len(input, c->len, &complete), c->fail_len);
    assert_int_equal(complete, c->complete);
    compare_with_reference(input, c->len);

    /* Whole, then every prefix: refused exactly from fail_len on, and a prefix is complete
     * exactly when the reference says it ends on a boundary. */
    for (size_t len = 0; len <= c->len; len++) {
        kf_utf8_t v;
        kf_utf8_init(&v);
        bool ok = kf_utf8_feed(&v, input, len);
        assert_int_equal(ok, c->fail_len == 0 || len < c->fail_len);
        size_t want = reference_fail_len(input, len, &complete);
        assert_int_equal(want == 0, ok);
        assert_int_equal(kf_utf8_complete(&v), complete);
    }

    /* Every split into two feeds, and into three for short inputs. */
    for (size_t i = 0; i <= c->len; i++) {
        check_split(c, (const char *)input, &i, 1);
        for (size_t j = i; c->len <= 24 && j <= c->len; j++) {
            size_t cuts[2] = {i, j};
            check_split(c, (const char *)input, cuts, 2);
        }
    }
    free((void *)input);
}

/* Encodes a code point the textbook way (surrogates too, as CESU-8 would). */
static size_t encode_utf8(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Every scalar value is accepted, complete, and incomplete in each of its proper prefixes;
 * every surrogate is refused at its second byte. */
static void test_utf8_every_code_point(void **state)
{
    (void)state;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        unsigned char bytes[4];
        size_t n = encode_utf8(cp, bytes);
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        kf_utf8_t v;

        kf_utf8_init(&v);
        bool ok = kf_utf8_feed(&v, bytes, n);
        if (ok == surrogate || kf_utf8_complete(&v) == surrogate) {
            print_error("U+%04X: feed %d, complete %d\n", (unsigned)cp, ok, kf_utf8_complete(&v));
            fail();
        }
        for (size_t len = 1; len < n; len++) {
            kf_utf8_init(&v);
            ok = kf_utf8_feed(&v, bytes, len);
            if (ok != (!surrogate || len < 2) || kf_utf8_complete(&v)) {
                print_error("U+%04X, %zu bytes: feed %d\n", (unsigned)cp, len, ok);
                fail();
            }
        }
    }
}

/* Every input of one or two bytes, every input of three bytes that starts with a possible lead
 * byte, and a wide sample of four: the validator agrees with the reference on where each one
 * fails and whether it is complete. */
static void test_utf8_exhaustive_short(void **state)
{
    (void)state;
    static const unsigned char probes[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                           0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xFF};
    unsigned char s[4];

    for (unsigned a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        compare_with_reference(s, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            compare_with_reference(s, 2);
        }
    }
    for (unsigned a = 0xC0; a < 256; a++) {
        s[0] = (unsigned char)a;
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (unsigned char)c;
                compare_with_reference(s, 3);
            }
        }
    }
    for (unsigned a = 0xF0; a < 256; a++) {
        s[0] = (unsigned char)a;
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            for (size_t c = 0; c < ARRAY_LEN(probes); c++) {
                s[2] = probes[c];
                for (size_t d = 0; d < ARRAY_LEN(probes); d++) {
                    s[3] = probes[d];
                    compare_with_reference(s, 4);
                }
            }
        }
    }
}

/* A refusal is final: later bytes, however valid, are refused, and the text never completes. */
static void test_utf8_refusal_is_sticky(void **state)
{
    (void)state;
    kf_utf8_t v;

    kf_utf8_init(&v);
    assert_true(kf_utf8_feed(&v, "ok", 2));
    assert_false(kf_utf8_feed(&v, "\xc0", 1));
    assert_false(kf_utf8_complete(&v));
    assert_false(kf_utf8_feed(&v, "fine", 4));
    assert_false(kf_utf8_feed(&v, "", 0));
    assert_false(kf_utf8_complete(&v));
    kf_utf8_init(&v);
    assert_true(kf_utf8_feed(&v, "fine", 4));
    assert_true(kf_utf8_complete(&v));
}

static void test_utf8_empty_feeds(void **state)
{
    (void)state;
    kf_utf8_t v;

    kf_utf8_init(&v);
    assert_true(kf_utf8_complete(&v));
    assert_true(kf_utf8_feed(&v, NULL, 0));
    assert_true(kf_utf8_complete(&v));
    assert_true(kf_utf8_feed(&v, "\xe2", 1));
    assert_true(kf_utf8_feed(&v, NULL, 0));
    assert_false(kf_utf8_complete(&v));
    assert_true(kf_utf8_feed(&v, "\x82\xac", 2));
    assert_true(kf_utf8_complete(&v));
}

/* ---- kf_ws_message_t ---- */

typedef struct message_step {
    bool fin;
    unsigned opcode;
    const char *payload;
    size_t len;
    int expected;  /* KF_WS_FRAME_DATA, KF_WS_FRAME_CONTROL, or the close code to send */
    bool complete; /* the expected *complete */
} message_step_t;

/* One frame and what kf_ws_message_accept must say about it. */
#define STEP(fin, opcode, payload, expected, complete)                                             \
    {                                                                                              \
        (fin), (opcode), (payload), sizeof(payload) - 1, (expected), (complete)                    \
    }

#define MAX_STEPS 6

typedef struct message_case {
    const char *name;
    uint64_t max_size;
    message_step_t steps[MAX_STEPS]; /* up to the first with expected 0; an error ends the case */
} message_case_t;

enum { F = false, T = true };
#define DATA KF_WS_FRAME_DATA
#define CONTROL KF_WS_FRAME_CONTROL

static const message_case_t message_cases[] = {
    /* Whole messages. */
    {"message: one text frame", NO_CAP, {STEP(T, KF_WS_TEXT, "hello", DATA, T)}},
    {"message: one empty text frame", NO_CAP, {STEP(T, KF_WS_TEXT, "", DATA, T)}},
    {"message: binary is not UTF-8 checked",
     NO_CAP,
     {STEP(T, KF_WS_BINARY, "\xff\xfe\xc0\x80", DATA, T)}},
    {"message: two messages in a row",
     NO_CAP,
     {STEP(T, KF_WS_TEXT, "a", DATA, T), STEP(T, KF_WS_BINARY, "b", DATA, T)}},

    /* Fragments. */
    {"message: text in three fragments",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "Hel", DATA, F), STEP(F, KF_WS_CONT, "l", DATA, F),
      STEP(T, KF_WS_CONT, "o", DATA, T)}},
    {"message: empty fragments",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "", DATA, F), STEP(F, KF_WS_CONT, "", DATA, F),
      STEP(T, KF_WS_CONT, "", DATA, T)}},
    {"message: binary in two fragments, then text",
     NO_CAP,
     {STEP(F, KF_WS_BINARY, "\xff", DATA, F), STEP(T, KF_WS_CONT, "\xfe", DATA, T),
      STEP(T, KF_WS_TEXT, "ok", DATA, T)}},
    {"message: ping and pong between fragments",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "Hel", DATA, F), STEP(T, KF_WS_PING, "", CONTROL, F),
      STEP(T, KF_WS_PONG, "x", CONTROL, F), STEP(T, KF_WS_CONT, "lo", DATA, T)}},
    {"message: close between fragments",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "a", DATA, F), STEP(T, KF_WS_CLOSE, "\x03\xe8", CONTROL, F)}},
    {"message: control frames outside a message",
     NO_CAP,
     {STEP(T, KF_WS_PING, "p", CONTROL, F), STEP(T, KF_WS_PONG, "", CONTROL, F),
      STEP(T, KF_WS_TEXT, "t", DATA, T)}},

    /* Sequencing errors. */
    {"message: continuation without a start",
     NO_CAP,
     {STEP(T, KF_WS_CONT, "x", KF_WS_CLOSE_PROTOCOL, F)}},
    {"message: non-final continuation without a start",
     NO_CAP,
     {STEP(F, KF_WS_CONT, "x", KF_WS_CLOSE_PROTOCOL, F)}},
    {"message: continuation after a finished message",
     NO_CAP,
     {STEP(T, KF_WS_TEXT, "a", DATA, T), STEP(T, KF_WS_CONT, "b", KF_WS_CLOSE_PROTOCOL, F)}},
    {"message: text during a fragmented text",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "a", DATA, F), STEP(T, KF_WS_TEXT, "b", KF_WS_CLOSE_PROTOCOL, F)}},
    {"message: binary during a fragmented text",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "a", DATA, F), STEP(F, KF_WS_BINARY, "b", KF_WS_CLOSE_PROTOCOL, F)}},
    {"message: text during a fragmented binary, after a ping",
     NO_CAP,
     {STEP(F, KF_WS_BINARY, "a", DATA, F), STEP(T, KF_WS_PING, "", CONTROL, F),
      STEP(T, KF_WS_TEXT, "b", KF_WS_CLOSE_PROTOCOL, F)}},
    {"message: a reserved opcode handed over directly",
     NO_CAP,
     {STEP(T, 3, "x", KF_WS_CLOSE_PROTOCOL, F)}},
    {"message: a fragmented ping handed over directly",
     NO_CAP,
     {STEP(F, KF_WS_PING, "x", KF_WS_CLOSE_PROTOCOL, F)}},

    /* UTF-8 across fragments. */
    {"message: characters split across fragments",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "\xce", DATA, F), STEP(F, KF_WS_CONT, "\xba\xe1", DATA, F),
      STEP(F, KF_WS_CONT, "\xbd", DATA, F), STEP(T, KF_WS_CONT, "\xb9", DATA, T)}},
    {"message: text ending mid-character",
     NO_CAP,
     {STEP(T, KF_WS_TEXT, "a\xce", KF_WS_CLOSE_BAD_DATA, F)}},
    {"message: fragmented text ending mid-character",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "\xce\xba\xe1", DATA, F),
      STEP(T, KF_WS_CONT, "\xbd", KF_WS_CLOSE_BAD_DATA, F)}},
    {"message: empty final fragment after half a character",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "\xce", DATA, F), STEP(T, KF_WS_CONT, "", KF_WS_CLOSE_BAD_DATA, F)}},
    {"message: invalid UTF-8 refused before the final fragment",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "ab\xc0", KF_WS_CLOSE_BAD_DATA, F)}},
    {"message: a surrogate split across fragments",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "\xed", DATA, F),
      STEP(F, KF_WS_CONT, "\xa0\x80", KF_WS_CLOSE_BAD_DATA, F)}},
    {"message: Autobahn 6.4.2, U+110000 split after its lead",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4", DATA, F),
      STEP(F, KF_WS_CONT, "\x90", KF_WS_CLOSE_BAD_DATA, F)}},
    {"message: invalid text in a continuation",
     NO_CAP,
     {STEP(F, KF_WS_TEXT, "ok", DATA, F), STEP(T, KF_WS_CONT, "\xff", KF_WS_CLOSE_BAD_DATA, F)}},
    {"message: a new text starts a fresh validator",
     NO_CAP,
     {STEP(F, KF_WS_BINARY, "\xce", DATA, F), STEP(T, KF_WS_CONT, "", DATA, T),
      STEP(T, KF_WS_TEXT, "\xba", KF_WS_CLOSE_BAD_DATA, F)}},

    /* The size cap (10 bytes unless said otherwise). */
    {"message: exactly the cap", 10, {STEP(T, KF_WS_BINARY, "0123456789", DATA, T)}},
    {"message: one byte over the cap",
     10,
     {STEP(T, KF_WS_BINARY, "0123456789a", KF_WS_CLOSE_TOO_BIG, F)}},
    {"message: fragments up to the cap",
     10,
     {STEP(F, KF_WS_TEXT, "01234", DATA, F), STEP(T, KF_WS_CONT, "56789", DATA, T)}},
    {"message: fragments over the cap",
     10,
     {STEP(F, KF_WS_TEXT, "012345", DATA, F),
      STEP(T, KF_WS_CONT, "6789a", KF_WS_CLOSE_TOO_BIG, F)}},
    {"message: the cap is per message",
     10,
     {STEP(F, KF_WS_TEXT, "01234567", DATA, F), STEP(T, KF_WS_CONT, "", DATA, T),
      STEP(T, KF_WS_BINARY, "0123456789", DATA, T)}},
    {"message: control frames do not count",
     10,
     {STEP(F, KF_WS_TEXT, "0123456789", DATA, F),
      STEP(T, KF_WS_PING, "0123456789abcdef", CONTROL, F), STEP(T, KF_WS_CONT, "", DATA, T)}},
    {"message: the cap is checked before UTF-8",
     4,
     {STEP(T, KF_WS_TEXT, "\xff\xff\xff\xff\xff", KF_WS_CLOSE_TOO_BIG, F)}},
    {"message: cap 0 allows empty messages only",
     0,
     {STEP(T, KF_WS_TEXT, "", DATA, T), STEP(T, KF_WS_TEXT, "a", KF_WS_CLOSE_TOO_BIG, F)}},
};

static void run_message_case(void **state)
{
    const message_case_t *c = *state;
    kf_ws_message_t m;
    unsigned message_opcode = 0;
    uint64_t message_size = 0;

    kf_ws_message_init(&m, c->max_size);
    assert_false(m.in_message);
    assert_true(m.max_size == c->max_size);
    for (size_t i = 0; i < MAX_STEPS && c->steps[i].expected != 0; i++) {
        const message_step_t *step = &c->steps[i];
        char *payload = copy_exact(step->payload, step->len);
        kf_ws_frame_t frame = {
            .fin = step->fin,
            .opcode = step->opcode,
            .payload_len = step->len,
            .header_len = 6,
            .payload = payload,
        };
        bool complete = !step->complete;

        int rc = ws_accept(&m, &frame, &complete);
        free(payload);
        if (rc != step->expected || complete != step->complete) {
            print_error("step %zu: got %d (complete %d), want %d (complete %d)\n", i, rc, complete,
                        step->expected, step->complete);
            fail();
        }
        if (rc != KF_WS_FRAME_DATA && rc != KF_WS_FRAME_CONTROL) {
            /* The connection closes after an error: nothing may follow in the table. */
            assert_true(i + 1 == MAX_STEPS || c->steps[i + 1].expected == 0);
            break;
        }
        if (rc == KF_WS_FRAME_DATA) {
            if (step->opcode != KF_WS_CONT) {
                message_opcode = step->opcode;
                message_size = 0;
            }
            message_size += step->len;
            /* A continuation belongs to the message its first frame started. */
            assert_int_equal(m.opcode, message_opcode);
            assert_true(m.size == message_size);
        }
        if (rc == KF_WS_FRAME_DATA)
            assert_int_equal(m.in_message, !complete);
    }
}

/* ---- kf_ws_close_payload_valid ---- */

typedef struct close_case {
    const char *name;
    const char *input;
    size_t len;
    bool valid;
    unsigned code; /* the expected *code */
} close_case_t;

static const close_case_t close_cases[] = {
    {"close: empty means no code, 1005", RAW(""), true, 1005},
    {"close: one byte", RAW("\x03"), false, 0},
    {"close: 1000", RAW("\x03\xe8"), true, 1000},
    {"close: 1001", RAW("\x03\xe9"), true, 1001},
    {"close: 1002", RAW("\x03\xea"), true, 1002},
    {"close: 1003", RAW("\x03\xeb"), true, 1003},
    {"close: 1007", RAW("\x03\xef"), true, 1007},
    {"close: 1008", RAW("\x03\xf0"), true, 1008},
    {"close: 1009", RAW("\x03\xf1"), true, 1009},
    {"close: 1010", RAW("\x03\xf2"), true, 1010},
    {"close: 1011", RAW("\x03\xf3"), true, 1011},
    {"close: 3000", RAW("\x0b\xb8"), true, 3000},
    {"close: 3999", RAW("\x0f\x9f"), true, 3999},
    {"close: 4000", RAW("\x0f\xa0"), true, 4000},
    {"close: 4999", RAW("\x13\x87"), true, 4999},
    {"close: 0", RAW("\x00\x00"), false, 0},
    {"close: 999", RAW("\x03\xe7"), false, 999},
    {"close: 1004, reserved", RAW("\x03\xec"), false, 1004},
    {"close: 1005, never sent", RAW("\x03\xed"), false, 1005},
    {"close: 1006, never sent", RAW("\x03\xee"), false, 1006},
    {"close: 1012", RAW("\x03\xf4"), false, 1012},
    {"close: 1013", RAW("\x03\xf5"), false, 1013},
    {"close: 1014", RAW("\x03\xf6"), false, 1014},
    {"close: 1015, never sent", RAW("\x03\xf7"), false, 1015},
    {"close: 1016", RAW("\x03\xf8"), false, 1016},
    {"close: 1100", RAW("\x04\x4c"), false, 1100},
    {"close: 2000", RAW("\x07\xd0"), false, 2000},
    {"close: 2999", RAW("\x0b\xb7"), false, 2999},
    {"close: 5000", RAW("\x13\x88"), false, 5000},
    {"close: 65535", RAW("\xff\xff"), false, 65535},
    {"close: 1000 with a reason",
     RAW("\x03\xe8"
         "bye"),
     true, 1000},
    {"close: 4000 with a UTF-8 reason", RAW("\x0f\xa0\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
     true, 4000},
    {"close: reason with a NUL", RAW("\x03\xe8\0"), true, 1000},
    {"close: reason of 123 bytes, the most a control frame holds",
     RAW("\x03\xe8"
         "0123456789012345678901234567890123456789012345678901234567890123456789"
         "01234567890123456789012345678901234567890123456789012"),
     true, 1000},
    {"close: reason with 0xff",
     RAW("\x03\xe8"
         "ok\xff"),
     false, 1000},
    {"close: reason ending mid-character",
     RAW("\x03\xe8"
         "ok\xce"),
     false, 1000},
    {"close: reason with a surrogate", RAW("\x03\xe8\xed\xa0\x80"), false, 1000},
    {"close: reason with an overlong", RAW("\x03\xe8\xc0\xaf"), false, 1000},
    {"close: invalid code with a valid reason",
     RAW("\x03\xec"
         "bye"),
     false, 1004},
};

static void run_close_case(void **state)
{
    const close_case_t *c = *state;
    char *payload = copy_exact(c->input, c->len);
    unsigned code = 12345;

    assert_int_equal(kf_ws_close_payload_valid(payload, c->len, &code), c->valid);
    assert_int_equal(code, c->code);
    free(payload);
}

/* Every code, read as a table of the ranges Autobahn accepts (cases 7.7.x and 7.9.x). */
static void test_close_every_code(void **state)
{
    (void)state;
    static const struct {
        unsigned first;
        unsigned last;
    } valid_ranges[] = {{1000, 1003}, {1007, 1011}, {3000, 4999}};

    for (unsigned code = 0; code <= 0xFFFF; code++) {
        char payload[2] = {(char)(code >> 8), (char)(code & 0xFF)};
        bool want = false;
        unsigned got_code = 0;
        for (size_t i = 0; i < ARRAY_LEN(valid_ranges); i++)
            want = want || (code >= valid_ranges[i].first && code <= valid_ranges[i].last);
        if (kf_ws_close_payload_valid(payload, 2, &got_code) != want || got_code != code) {
            print_error("close code %u: want %d\n", code, want);
            fail();
        }
    }
}

int main(void)
{
    static const struct CMUnitTest fixed_tests[] = {
        cmocka_unit_test(test_accept_key_null),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_every_first_byte),
        cmocka_unit_test(test_unmask_lengths_and_offsets),
        cmocka_unit_test(test_int_limit),
        cmocka_unit_test(test_stream_byte_by_byte),
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_utf8_every_code_point),
        cmocka_unit_test(test_utf8_exhaustive_short),
        cmocka_unit_test(test_utf8_refusal_is_sticky),
        cmocka_unit_test(test_utf8_empty_feeds),
        cmocka_unit_test(test_close_every_code),
    };
    /* One cmocka test per table row, named after the row, so a failure names its case. */
    struct CMUnitTest tests[ARRAY_LEN(fixed_tests) + ARRAY_LEN(key_cases) + ARRAY_LEN(frame_cases) +
                            ARRAY_LEN(header_cases) + ARRAY_LEN(utf8_cases) +
                            ARRAY_LEN(message_cases) + ARRAY_LEN(close_cases)];
    size_t n = 0;

    for (size_t i = 0; i < ARRAY_LEN(fixed_tests); i++)
        tests[n++] = fixed_tests[i];
    for (size_t i = 0; i < ARRAY_LEN(key_cases); i++)
        tests[n++] =
            (struct CMUnitTest){key_cases[i].name, run_key_case, NULL, NULL, (void *)&key_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(frame_cases); i++)
        tests[n++] = (struct CMUnitTest){frame_cases[i].name, run_frame_case, NULL, NULL,
                                         (void *)&frame_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(header_cases); i++)
        tests[n++] = (struct CMUnitTest){header_cases[i].name, run_header_case, NULL, NULL,
                                         (void *)&header_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(utf8_cases); i++)
        tests[n++] = (struct CMUnitTest){utf8_cases[i].name, run_utf8_case, NULL, NULL,
                                         (void *)&utf8_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(message_cases); i++)
        tests[n++] = (struct CMUnitTest){message_cases[i].name, run_message_case, NULL, NULL,
                                         (void *)&message_cases[i]};
    for (size_t i = 0; i < ARRAY_LEN(close_cases); i++)
        tests[n++] = (struct CMUnitTest){close_cases[i].name, run_close_case, NULL, NULL,
                                         (void *)&close_cases[i]};
    assert_int_equal(n, ARRAY_LEN(tests));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
