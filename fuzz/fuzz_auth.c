/* fuzz_auth.c: libFuzzer target for the credentials a request carries: push tickets
 * (kf_auth_ticket_verify, from ?ticket=), the session cookie out of a Cookie header
 * (kf_http_cookie_get, compared with a reference) and the constant-time compare of CSRF tokens.
 * The ticket checks are the point: a verified ticket is byte for byte the one the server signed,
 * so no edit of a genuine ticket (a leading zero, a base64 twin, a changed kind) still verifies.
 *
 * Input: byte 0 picks the mode (0: the rest is a ticket and a Cookie header; 1: the rest signs a
 * ticket, then edits it; 2: the rest is two tokens for the compare), all modes checking cookies. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "base/err.h"
#include "http/parser.h"

static const unsigned char key[32] = "kefu fuzz ticket key, 32 bytes!";

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The contract of kf_http_cookie_get: ';'-separated pairs, the first with '=' whose name (spaces
 * and tabs around it dropped) is name; its value without surrounding spaces and tabs, and without
 * one pair of surrounding double quotes. */
static int ref_cookie_get(const char *header, size_t len, const char *name, kf_str_t *value)
{
    size_t start = 0;
    while (start < len) {
        const char *semi = memchr(header + start, ';', len - start);
        size_t end = semi != NULL ? (size_t)(semi - header) : len;
        const char *equals = memchr(header + start, '=', end - start);
        if (equals != NULL) {
            const char *a = header + start;
            const char *b = equals;
            while (a < b && is_ows(*a))
                a++;
            while (b > a && is_ows(b[-1]))
                b--;
            if ((size_t)(b - a) == strlen(name) && memcmp(a, name, (size_t)(b - a)) == 0) {
                const char *v = equals + 1;
                const char *w = header + end;
                while (v < w && is_ows(*v))
                    v++;
                while (w > v && is_ows(w[-1]))
                    w--;
                if (w - v >= 2 && *v == '"' && w[-1] == '"') {
                    v++;
                    w--;
                }
                *value = (kf_str_t){v, (size_t)(w - v)};
                return 0;
            }
        }
        start = end + 1;
    }
    *value = (kf_str_t){NULL, 0};
    return KF_ENOTFOUND;
}

static void check_cookies(const char *header, size_t len)
{
    static const char *const names[] = {"kefu_session", "a", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        kf_str_t got, want;
        int rc = kf_http_cookie_get((kf_str_t){header, len}, names[i], &got);
        check(rc == ref_cookie_get(header, len, names[i], &want), "kf_http_cookie_get result");
        check(got.ptr == want.ptr && got.len == want.len, "kf_http_cookie_get value");
    }
}

/* Verifies ticket at three times; whatever verifies (or is only expired) must be exactly the
 * ticket signing its own fields gives. */
static void verify_any(const char *ticket, size_t len)
{
    static const int64_t times[] = {0, 4102444800000LL, INT64_MAX};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char kind = 0;
        int64_t subject = -1;
        int rc = kf_auth_ticket_verify(key, sizeof key, ticket, len, times[i], &kind, &subject);
        check(rc == 0 || rc == KF_EEXPIRED || rc == KF_EAUTH, "verify result");
        if (rc == KF_EAUTH)
            continue;
        /* The fields, as verify read them: kind.subject.expires.mac */
        char copy[KF_TICKET_SIZE];
        check(len < sizeof copy, "a verified ticket fits");
        memcpy(copy, ticket, len);
        copy[len] = '\0';
        long long parsed_subject = 0, parsed_expiry = 0;
        char parsed_kind = 0;
        check(sscanf(copy, "%c.%lld.%lld.", &parsed_kind, &parsed_subject, &parsed_expiry) == 3,
              "a verified ticket has its fields");
        char resigned[KF_TICKET_SIZE];
        check(kf_auth_ticket_sign(key, sizeof key, parsed_kind, parsed_subject, parsed_expiry,
                                  resigned) == 0,
              "a verified ticket can be signed");
        check(strlen(resigned) == len && memcmp(resigned, ticket, len) == 0,
              "a verified ticket is the one the server signs");
        check(rc != 0 || (kind == parsed_kind && subject == parsed_subject), "verify's outputs");
    }
}

static uint64_t read_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Signs a ticket from 17 bytes of input, checks it verifies, then applies the rest of the input
 * as edits (3 bytes each: what, where, which byte): any ticket other than the genuine one must
 * fail, whatever the time. */
static void sign_and_edit(const uint8_t *data, size_t size)
{
    if (size < 17)
        return;
    char kind = (data[0] & 1) ? 'a' : 'v';
    int64_t subject = (int64_t)(read_u64(data + 1) >> 1);
    int64_t expires = (int64_t)(read_u64(data + 9) >> 1);
    char ticket[KF_TICKET_SIZE];
    check(kf_auth_ticket_sign(key, sizeof key, kind, subject, expires, ticket) == 0, "sign");
    size_t len = strlen(ticket);
    char got_kind = 0;
    int64_t got_subject = -1;
    check(expires == 0 || (kf_auth_ticket_verify(key, sizeof key, ticket, len, expires - 1,
                                                 &got_kind, &got_subject) == 0 &&
                           got_kind == kind && got_subject == subject),
          "a fresh ticket verifies");
    check(kf_auth_ticket_verify(key, sizeof key, ticket, len, expires, NULL, NULL) == KF_EEXPIRED,
          "a ticket expires at its time");
    unsigned char other_key[sizeof key];
    memcpy(other_key, key, sizeof key);
    other_key[data[0] % sizeof key] ^= 1;
    check(kf_auth_ticket_verify(other_key, sizeof other_key, ticket, len, 0, NULL, NULL) ==
              KF_EAUTH,
          "another key refuses it");

    char edited[2 * KF_TICKET_SIZE];
    size_t edited_len = len;
    memcpy(edited, ticket, len);
    for (size_t at = 17; at + 3 <= size; at += 3) {
        size_t where = data[at + 1] % (edited_len + 1);
        char byte = (char)data[at + 2];
        switch (data[at] % 3) {
        case 0: /* replace */
            if (where < edited_len)
                edited[where] = byte;
            break;
        case 1: /* insert */
            if (edited_len + 1 < sizeof edited) {
                memmove(edited + where + 1, edited + where, edited_len - where);
                edited[where] = byte;
                edited_len++;
            }
            break;
        default: /* delete */
            if (where < edited_len) {
                memmove(edited + where, edited + where + 1, edited_len - where - 1);
                edited_len--;
            }
            break;
        }
    }
    bool same = edited_len == len && memcmp(edited, ticket, len) == 0;
    int rc = kf_auth_ticket_verify(key, sizeof key, edited, edited_len, 0, NULL, NULL);
    check(same || rc == KF_EAUTH, "an edited ticket never verifies");
    verify_any(edited, edited_len);
}

/* kf_auth_equal is memcmp's verdict for equal lengths, and false for different ones. */
static void compare_tokens(const uint8_t *data, size_t size)
{
    size_t split = size > 0 ? data[0] % (size + 1) : 0;
    if (split > size)
        split = size;
    const uint8_t *a = data;
    const uint8_t *b = data + split;
    size_t a_len = split;
    size_t b_len = size - split;
    bool want = a_len == b_len && memcmp(a, b, a_len) == 0;
    check(kf_auth_equal(a, a_len, b, b_len) == want, "kf_auth_equal");
    check(kf_auth_equal(a, a_len, a, a_len), "kf_auth_equal reflexive");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return -1;
    const uint8_t *rest = data + 1;
    size_t rest_len = size - 1;
    switch (data[0] % 3) {
    case 0: verify_any((const char *)rest, rest_len); break;
    case 1: sign_and_edit(rest, rest_len); break;
    default: compare_tokens(rest, rest_len); break;
    }
    check_cookies((const char *)rest, rest_len);
    return 0;
}
