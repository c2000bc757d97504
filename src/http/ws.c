/* ws.c: the WebSocket codec: handshake accept key, client frame parser, server frame header
 * encoder, incremental UTF-8 validator, message sequencing and close payload checks. */
#include "http/ws.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/err.h"

/* RFC 6455 §1.3: the fixed GUID appended to the client's key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

#define KEY_LEN 24        /* base64 of a 16-byte nonce, padding included */
#define MAX_HEADER_LEN 14 /* 2 + 8 bytes of extended length + 4 bytes of mask key */

/* kf_ws_parse_frame returns the frame's total size as an int, so no frame may be bigger than
 * INT_MAX, whatever max_payload the caller allows. */
#define MAX_PAYLOAD_LEN ((uint64_t)INT_MAX - MAX_HEADER_LEN)

/* The validator's sticky verdict after invalid input: every later feed fails too, and the bytes
 * never end on a boundary, so a caller that ignores one false still cannot accept the message. */
#define UTF8_REJECT UINT8_MAX

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Exactly 24 characters decode to exactly 16 bytes only as 22 data characters and "==". The 4
 * unused bits of the last data character are not required to be zero (RFC 4648 §3.5 leaves that
 * to the decoder); browsers send them zero, and refusing others would gain nothing. */
static bool is_valid_key(const char *key, size_t key_len)
{
    if (key == NULL || key_len != KEY_LEN)
        return false;
    for (size_t i = 0; i < KEY_LEN - 2; i++) {
        if (!is_base64_char(key[i]))
            return false;
    }
    return key[KEY_LEN - 2] == '=' && key[KEY_LEN - 1] == '=';
}

/* SHA-1 fetched once (see auth.c's sha256_md). */
static EVP_MD *sha1_fetched;

static void sha1_fetch(void)
{
    sha1_fetched = EVP_MD_fetch(NULL, "SHA1", NULL);
}

static const EVP_MD *sha1_md(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sha1_fetch);
    return sha1_fetched != NULL ? sha1_fetched : EVP_sha1();
}

int kf_ws_accept_key(const char *key, size_t key_len, char out[29])
{
    unsigned char input[KEY_LEN + sizeof(ws_guid) - 1];
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;

    out[0] = '\0';
    if (!is_valid_key(key, key_len))
        return KF_EINVAL;
    memcpy(input, key, KEY_LEN);
    memcpy(input + KEY_LEN, ws_guid, sizeof(ws_guid) - 1);
    /* SHA-1 of 60 bytes can only fail when libcrypto cannot allocate its context: out of memory
     * on a small allocation, which aborts here as everywhere else. */
    if (EVP_Digest(input, sizeof(input), digest, &digest_len, sha1_md(), NULL) != 1 ||
        digest_len != 20)
        abort();
    /* 20 bytes encode to 28 characters; EVP_EncodeBlock adds the NUL. */
    EVP_EncodeBlock((unsigned char *)out, digest, 20);
    return 0;
}

static bool is_control(unsigned opcode)
{
    return (opcode & 0x8) != 0;
}

static bool is_known_opcode(unsigned opcode)
{
    return opcode == KF_WS_CONT || opcode == KF_WS_TEXT || opcode == KF_WS_BINARY ||
           opcode == KF_WS_CLOSE || opcode == KF_WS_PING || opcode == KF_WS_PONG;
}

static uint64_t read_be(const unsigned char *p, size_t n)
{
    uint64_t value = 0;
    for (size_t i = 0; i < n; i++)
        value = (value << 8) | p[i];
    return value;
}

/* XORs payload with the repeating 4-byte key. Eight bytes at a time through memcpy, which
 * compilers turn into plain loads and stores: no alignment or byte-order assumptions, and since
 * 8 is a multiple of 4 the key lines up again after every word. */
static void unmask(unsigned char *payload, size_t len, const unsigned char key[4])
{
    const unsigned char pattern[8] = {key[0], key[1], key[2], key[3],
                                      key[0], key[1], key[2], key[3]};
    uint64_t key_word;
    size_t i = 0;

    memcpy(&key_word, pattern, sizeof(key_word));
    for (; len - i >= sizeof(uint64_t); i += sizeof(uint64_t)) {
        uint64_t word;
        memcpy(&word, payload + i, sizeof(word));
        word ^= key_word;
        memcpy(payload + i, &word, sizeof(word));
    }
    for (; i < len; i++)
        payload[i] ^= key[i & 3];
}

/* Records the close code a fault calls for and returns its error: KF_ETOOBIG for a frame or
 * message over its cap (1009), KF_EPROTO for the rest (1002 bad framing or sequencing, 1007
 * invalid UTF-8). */
static int refuse(unsigned *close_code, unsigned code)
{
    *close_code = code;
    return code == KF_WS_CLOSE_TOO_BIG ? KF_ETOOBIG : KF_EPROTO;
}

/* Each field is judged as soon as its bytes are there and the verdict depends only on bytes
 * before it, so a prefix of any input yields KF_EAGAIN or the same result as the whole: a hostile
 * header is refused after at most 10 bytes, before any payload is buffered. The buffer is only
 * written (unmasked) on success, so a caller may retry with more bytes after KF_EAGAIN. */
int kf_ws_parse_frame(char *buf, size_t len, uint64_t max_payload, kf_ws_frame_t *frame,
                      unsigned *close_code)
{
    unsigned ignored;
    if (close_code == NULL)
        close_code = &ignored;
    *close_code = 0;
    const unsigned char *bytes = (const unsigned char *)buf;
    uint64_t payload_len;
    size_t header_len;

    assert(buf != NULL || len == 0);
    *frame = (kf_ws_frame_t){.fin = false};
    if (len < 1)
        return KF_EAGAIN;
    bool fin = (bytes[0] & 0x80) != 0;
    unsigned opcode = bytes[0] & 0x0F;
    /* No extension is ever negotiated, so any RSV bit is an error (§5.2). */
    if ((bytes[0] & 0x70) != 0 || !is_known_opcode(opcode))
        return refuse(close_code, KF_WS_CLOSE_PROTOCOL);
    if (is_control(opcode) && !fin)
        return refuse(close_code, KF_WS_CLOSE_PROTOCOL);

    if (len < 2)
        return KF_EAGAIN;
    /* §5.1: a server must close on an unmasked client frame. */
    if ((bytes[1] & 0x80) == 0)
        return refuse(close_code, KF_WS_CLOSE_PROTOCOL);
    unsigned short_len = bytes[1] & 0x7F;
    if (short_len < 126) {
        payload_len = short_len;
        header_len = 2 + 4;
    } else if (is_control(opcode)) {
        /* Control payloads are at most 125 bytes (§5.5), so any extended length is too long. */
        return refuse(close_code, KF_WS_CLOSE_PROTOCOL);
    } else if (short_len == 126) {
        if (len < 4)
            return KF_EAGAIN;
        payload_len = read_be(bytes + 2, 2);
        /* §5.2: "the minimal number of bytes MUST be used to encode the length". */
        if (payload_len < 126)
            return refuse(close_code, KF_WS_CLOSE_PROTOCOL);
        header_len = 4 + 4;
    } else {
        if (len < 3)
            return KF_EAGAIN;
        if ((bytes[2] & 0x80) != 0)
            return refuse(close_code, KF_WS_CLOSE_PROTOCOL);
        if (len < 10)
            return KF_EAGAIN;
        payload_len = read_be(bytes + 2, 8);
        if (payload_len < 65536)
            return refuse(close_code, KF_WS_CLOSE_PROTOCOL);
        header_len = 10 + 4;
    }
    if (payload_len > max_payload || payload_len > MAX_PAYLOAD_LEN)
        return refuse(close_code, KF_WS_CLOSE_TOO_BIG);
    if (len < header_len || len - header_len < payload_len)
        return KF_EAGAIN;

    unmask((unsigned char *)buf + header_len, (size_t)payload_len, bytes + header_len - 4);
    frame->fin = fin;
    frame->opcode = opcode;
    frame->payload_len = payload_len;
    frame->header_len = header_len;
    frame->payload = buf + header_len;
    return (int)(header_len + payload_len);
}

size_t kf_ws_frame_header(unsigned opcode, uint64_t payload_len, unsigned char out[10])
{
    /* A length with the top bit set cannot be sent (§5.2); no caller has such a payload. */
    assert(payload_len < ((uint64_t)1 << 63));
    out[0] = (unsigned char)(0x80 | (opcode & 0x0F));
    if (payload_len < 126) {
        out[1] = (unsigned char)payload_len;
        return 2;
    }
    if (payload_len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (unsigned char)(payload_len >> 8);
        out[3] = (unsigned char)payload_len;
        return 4;
    }
    out[1] = 127;
    for (size_t i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)(payload_len >> (56 - 8 * i));
    return 10;
}

void kf_utf8_init(kf_utf8_t *v)
{
    *v = (kf_utf8_t){.state = 0};
}

/* state counts the continuation bytes still expected; [lower, upper] bounds the next one. The
 * bounds after the lead byte are the RFC 3629 §4 table: they refuse overlongs (E0 80..9F,
 * F0 80..8F), surrogates (ED A0..BF) and code points past U+10FFFF (F4 90..BF) at the second
 * byte, so invalid text fails at the first byte that proves it invalid. */
bool kf_utf8_feed(kf_utf8_t *v, const void *data, size_t len)
{
    const unsigned char *bytes = data;
    size_t i = 0;

    if (v->state == UTF8_REJECT)
        return false;
    while (i < len) {
        if (v->state == 0) {
            /* Chat text is mostly ASCII: skip it a word at a time. */
            while (len - i >= sizeof(uint64_t)) {
                uint64_t word;
                memcpy(&word, bytes + i, sizeof(word));
                if ((word & UINT64_C(0x8080808080808080)) != 0)
                    break;
                i += sizeof(uint64_t);
            }
            if (i == len)
                break;
            unsigned lead = bytes[i++];
            if (lead < 0x80)
                continue;
            /* 80..BF cannot start a character, C0 and C1 only start overlongs, F5..FF only
             * code points past U+10FFFF. */
            if (lead < 0xC2 || lead > 0xF4) {
                v->state = UTF8_REJECT;
                return false;
            }
            unsigned needed;
            v->lower = 0x80;
            v->upper = 0xBF;
            if (lead < 0xE0) {
                needed = 2;
            } else if (lead < 0xF0) {
                needed = 3;
                if (lead == 0xE0)
                    v->lower = 0xA0;
                else if (lead == 0xED)
                    v->upper = 0x9F;
            } else {
                needed = 4;
                if (lead == 0xF0)
                    v->lower = 0x90;
                else if (lead == 0xF4)
                    v->upper = 0x8F;
            }
            v->state = (uint8_t)(needed - 1);
        } else {
            unsigned next = bytes[i++];
            if (next < v->lower || next > v->upper) {
                v->state = UTF8_REJECT;
                return false;
            }
            v->lower = 0x80;
            v->upper = 0xBF;
            v->state--;
        }
    }
    return true;
}

bool kf_utf8_complete(const kf_utf8_t *v)
{
    return v->state == 0;
}

void kf_ws_message_init(kf_ws_message_t *m, uint64_t max_size)
{
    *m = (kf_ws_message_t){.in_message = false, .max_size = max_size};
    kf_utf8_init(&m->utf8);
}

/* The checks run in the order a server must answer them: sequencing first (the frame may not
 * belong here at all), then the size cap (cheap, and spares scanning a payload that is refused
 * anyway), then UTF-8. After an error the connection closes, so m is left as it is. */
int kf_ws_message_accept(kf_ws_message_t *m, const kf_ws_frame_t *frame, int *kind, bool *complete,
                         unsigned *close_code)
{
    *kind = 0;
    *complete = false;
    *close_code = 0;
    if (is_control(frame->opcode)) {
        /* The parser already refused fragmented or long control frames; this is for callers
         * that build frames by other means. */
        if (!is_known_opcode(frame->opcode) || !frame->fin || frame->payload_len > 125)
            return refuse(close_code, KF_WS_CLOSE_PROTOCOL);
        *kind = KF_WS_FRAME_CONTROL;
        return 0;
    }
    if (frame->opcode == KF_WS_CONT) {
        if (!m->in_message)
            return refuse(close_code, KF_WS_CLOSE_PROTOCOL);
    } else if (frame->opcode == KF_WS_TEXT || frame->opcode == KF_WS_BINARY) {
        if (m->in_message)
            return refuse(close_code, KF_WS_CLOSE_PROTOCOL);
        m->opcode = (uint8_t)frame->opcode;
        m->size = 0;
        kf_utf8_init(&m->utf8);
    } else {
        return refuse(close_code, KF_WS_CLOSE_PROTOCOL);
    }

    if (frame->payload_len > m->max_size - m->size)
        return refuse(close_code, KF_WS_CLOSE_TOO_BIG);
    m->size += frame->payload_len;
    if (m->opcode == KF_WS_TEXT) {
        if (!kf_utf8_feed(&m->utf8, frame->payload, (size_t)frame->payload_len))
            return refuse(close_code, KF_WS_CLOSE_BAD_DATA);
        if (frame->fin && !kf_utf8_complete(&m->utf8))
            return refuse(close_code, KF_WS_CLOSE_BAD_DATA);
    }
    m->in_message = !frame->fin;
    *kind = KF_WS_FRAME_DATA;
    *complete = frame->fin;
    return 0;
}

/* The codes a peer may send (§7.4.1, §7.4.2), as the Autobahn suite reads them: the defined
 * codes other than the reserved 1004 and the never-sent 1005, 1006 and 1015, plus the ranges for
 * libraries and applications. 1012-1014 were registered with IANA after RFC 6455 but are refused
 * here as Autobahn (case 7.9.x) and most servers still do. */
static bool is_valid_close_code(unsigned code)
{
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1011)
        return true;
    return code >= 3000 && code <= 4999;
}

bool kf_ws_close_payload_valid(const char *payload, size_t len, unsigned *code)
{
    const unsigned char *bytes = (const unsigned char *)payload;
    kf_utf8_t reason;

    if (len == 0) {
        *code = 1005; /* §7.1.5: "no status code was actually present" */
        return true;
    }
    if (len == 1) {
        *code = 0; /* half a code: there is none to report */
        return false;
    }
    *code = (unsigned)read_be(bytes, 2);
    if (!is_valid_close_code(*code))
        return false;
    kf_utf8_init(&reason);
    return kf_utf8_feed(&reason, bytes + 2, len - 2) && kf_utf8_complete(&reason);
}
