/* test_auth.c: unit tests for auth/auth.c: tokens, SHA-256, compare, scrypt hashes and tickets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define URL_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/* A hash with cheap parameters (N=2^10, r=8, p=1), made once with EVP_PBE_scrypt and OpenSSL's
 * own base64: it pins the encoding and shows that verify honours the parameters it reads. */
#define LOW_PASSWORD "correct horse battery staple"
#define LOW_HASH "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI"

static const char ticket_key[] = "a server secret of reasonable length";

/* ---- tokens, SHA-256, compare ---- */

static int compare_tokens(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_token_shape_and_uniqueness(void **state)
{
    (void)state;
    enum { COUNT = 2000 };
    char(*tokens)[KF_TOKEN_SIZE] = calloc(COUNT, KF_TOKEN_SIZE);
    assert_non_null(tokens);
    for (size_t i = 0; i < COUNT; i++) {
        assert_int_equal(kf_auth_random_token(tokens[i]), 0);
        assert_int_equal(strlen(tokens[i]), KF_TOKEN_SIZE - 1);
        assert_int_equal(strspn(tokens[i], URL_ALPHABET), KF_TOKEN_SIZE - 1);
    }
    qsort(tokens, COUNT, KF_TOKEN_SIZE, compare_tokens);
    for (size_t i = 1; i < COUNT; i++)
        assert_string_not_equal(tokens[i - 1], tokens[i]);
    free(tokens);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *input;
        const char *hex;
    } cases[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[KF_HASH_HEX_SIZE];
        memset(out, 'x', sizeof out);
        kf_auth_sha256_hex(cases[i].input, strlen(cases[i].input), out);
        assert_string_equal(out, cases[i].hex);
    }
    /* An empty input may come without a pointer. */
    char out[KF_HASH_HEX_SIZE];
    kf_auth_sha256_hex(NULL, 0, out);
    assert_string_equal(out, cases[0].hex);
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(kf_auth_equal("abc", 3, "abc", 3));
    assert_true(kf_auth_equal("", 0, "", 0));
    assert_true(kf_auth_equal(NULL, 0, NULL, 0));
    assert_false(kf_auth_equal("abc", 3, "abd", 3));
    assert_false(kf_auth_equal("abc", 3, "bbc", 3));
    assert_false(kf_auth_equal("abc", 3, "abcd", 4));
    assert_false(kf_auth_equal("abc", 3, "", 0));
    /* Bytes after a NUL count too. */
    assert_false(kf_auth_equal("a\0b", 3, "a\0c", 3));
}

/* ---- passwords ---- */

static void test_password_round_trip(void **state)
{
    (void)state;
    char encoded[KF_PASSWORD_HASH_SIZE];
    assert_int_equal(kf_auth_password_hash("hunter2 is not a good password", encoded), 0);
    /* "scrypt$15$8$1$" + 22 characters of salt + "$" + 43 characters of key. */
    assert_int_equal(strncmp(encoded, "scrypt$15$8$1$", 14), 0);
    assert_int_equal(strlen(encoded), 14 + 22 + 1 + 43);
    assert_int_equal(encoded[14 + 22], '$');
    assert_true(kf_auth_password_verify("hunter2 is not a good password", encoded));
    assert_false(kf_auth_password_verify("hunter2 is not a good passwore", encoded));
    assert_false(kf_auth_password_verify("hunter2 is not a good password ", encoded));
    assert_false(kf_auth_password_verify("", encoded));
}

static void test_password_salted(void **state)
{
    (void)state;
    char first[KF_PASSWORD_HASH_SIZE];
    char second[KF_PASSWORD_HASH_SIZE];
    assert_int_equal(kf_auth_password_hash("same password", first), 0);
    assert_int_equal(kf_auth_password_hash("same password", second), 0);
    assert_string_not_equal(first, second);
    /* Different salts, so different keys as well. */
    assert_string_not_equal(strrchr(first, '$'), strrchr(second, '$'));
    assert_true(kf_auth_password_verify("same password", second));
}

static void test_password_empty_rejected(void **state)
{
    (void)state;
    char encoded[KF_PASSWORD_HASH_SIZE];
    assert_int_equal(kf_auth_password_hash("", encoded), KF_EINVAL);
}

/* Encodes OpenSSL's base64 of len bytes without the padding, in the standard alphabet. */
static void encode_unpadded(const unsigned char *in, int len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, len);
    char *pad = strchr(out, '=');
    if (pad != NULL)
        *pad = '\0';
}

/* Builds an encoded hash with any parameters, straight from EVP_PBE_scrypt, with the salt bytes
 * 3, 20, 37, ... that LOW_HASH uses. */
static void make_hash(const char *password, int log2_n, int r, int p, char *out, size_t cap)
{
    unsigned char salt[16];
    unsigned char key[32];
    char salt_b64[32];
    char key_b64[64];
    for (int i = 0; i < 16; i++)
        salt[i] = (unsigned char)(i * 17 + 3);
    assert_int_equal(EVP_PBE_scrypt(password, strlen(password), salt, sizeof salt,
                                    (uint64_t)1 << log2_n, (uint64_t)r, (uint64_t)p, 0, key,
                                    sizeof key),
                     1);
    encode_unpadded(salt, sizeof salt, salt_b64);
    encode_unpadded(key, sizeof key, key_b64);
    snprintf(out, cap, "scrypt$%d$%d$%d$%s$%s", log2_n, r, p, salt_b64, key_b64);
}

static void test_password_parameters_from_string(void **state)
{
    (void)state;
    char encoded[KF_PASSWORD_HASH_SIZE];
    assert_true(kf_auth_password_verify(LOW_PASSWORD, LOW_HASH));
    assert_false(kf_auth_password_verify(LOW_PASSWORD "!", LOW_HASH));
    assert_false(kf_auth_password_verify(NULL, LOW_HASH));
    make_hash(LOW_PASSWORD, 10, 8, 1, encoded, sizeof encoded);
    assert_string_equal(encoded, LOW_HASH);

    /* Cheap, correctly derived hashes: in range they match, out of range they never do. */
    static const struct {
        int log2_n, r, p;
        bool matches;
    } cases[] = {
        {10, 1, 1, true}, {11, 2, 2, true},   {10, 16, 4, true}, {12, 1, 4, true},
        {9, 8, 1, false}, {10, 17, 1, false}, {10, 8, 5, false}, {1, 1, 1, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_hash(LOW_PASSWORD, cases[i].log2_n, cases[i].r, cases[i].p, encoded, sizeof encoded);
        if (kf_auth_password_verify(LOW_PASSWORD, encoded) != cases[i].matches)
            fail_msg("case %zu (%s) should %smatch", i, encoded, cases[i].matches ? "" : "not ");
    }
}

/* Each a variant of LOW_HASH, which LOW_PASSWORD matches: only the damage can make it fail. */
static void test_password_malformed(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        "scrypt",
        "scrypt$",
        "scrypt$10$8$1$",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$",
        /* wrong prefix */
        "bcrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "SCRYPT$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        " scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        /* bad numbers */
        "scrypt$$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$x$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$010$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$+10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$-10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$ 10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10 $8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$1e1$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$0x0a$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$8$$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$8$1$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$8$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        /* parameters out of range */
        "scrypt$9$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$21$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$64$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$4294967306$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        ("scrypt$99999999999999999999999$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAf"
         "w6j50wJrFrDU9SI"),
        "scrypt$10$0$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$17$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$8$0$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$8$5$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        /* bad base64 in the salt */
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg==$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2-z-DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAh$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxA$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$8$1$AxQlNkdYaXqL$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$8$1$AxQlNkdY aXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        /* bad or truncated base64 in the key */
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI=",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SJ",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9S",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFr",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7_Wxf9Tu_v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI$",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI$x",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI\n",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SIAAAA",
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        /* a different key of the right shape: parses, derives, does not match */
        "scrypt$10$8$1$AxQlNkdYaXqLnK2+z+DxAg$9aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
        /* the right key under other parameters */
        "scrypt$11$8$1$AxQlNkdYaXqLnK2+z+DxAg$8aGzTB7+Wxf9Tu/v8qn9RC3uBqAfw6j50wJrFrDU9SI",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (kf_auth_password_verify(LOW_PASSWORD, cases[i]))
            fail_msg("case %zu matched: \"%s\"", i, cases[i]);
    }

    /* Longer than any encoded hash may be. */
    char long_hash[KF_PASSWORD_HASH_SIZE + 40];
    snprintf(long_hash, sizeof long_hash, "%s", LOW_HASH);
    size_t len = strlen(long_hash);
    memset(long_hash + len, 'A', sizeof long_hash - len - 1);
    long_hash[sizeof long_hash - 1] = '\0';
    assert_false(kf_auth_password_verify(LOW_PASSWORD, long_hash));
    assert_false(kf_auth_password_verify(LOW_PASSWORD, NULL));

    /* Every prefix of a good hash is malformed (and cheap: none of them reaches scrypt). */
    char prefix[sizeof LOW_HASH];
    for (size_t cut = 0; cut < sizeof LOW_HASH - 1; cut++) {
        memcpy(prefix, LOW_HASH, cut);
        prefix[cut] = '\0';
        if (kf_auth_password_verify(LOW_PASSWORD, prefix))
            fail_msg("prefix of %zu bytes matched", cut);
    }
}

/* ---- tickets ---- */

/* Builds "<body>.<HMAC-SHA256(body) base64url>" under key, for tickets whose signature is
 * right but whose body the signer would never produce. */
static void forge(const char *key, const char *body, char *out, size_t cap)
{
    unsigned char mac[32];
    unsigned int mac_len = 0;
    unsigned char b64[64];
    assert_non_null(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)body,
                         strlen(body), mac, &mac_len));
    assert_int_equal(mac_len, 32);
    EVP_EncodeBlock(b64, mac, 32);
    for (unsigned char *c = b64; *c != '\0'; c++) {
        if (*c == '+')
            *c = '-';
        else if (*c == '/')
            *c = '_';
        else if (*c == '=')
            *c = '\0';
    }
    snprintf(out, cap, "%s.%s", body, (const char *)b64);
}

static int verify(const char *ticket, int64_t now, char *kind, int64_t *subject_id)
{
    return kf_auth_ticket_verify(ticket_key, strlen(ticket_key), ticket, strlen(ticket), now, kind,
                                 subject_id);
}

static void test_ticket_round_trip(void **state)
{
    (void)state;
    static const struct {
        char kind;
        int64_t subject_id;
        int64_t expires_at;
    } cases[] = {
        {'v', 42, 1700000000000},
        {'a', 1, 1},
        {'v', 0, 1700000000000},
        {'a', INT64_MAX, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ticket[KF_TICKET_SIZE];
        char kind = 0;
        int64_t subject_id = -1;
        assert_int_equal(kf_auth_ticket_sign(ticket_key, strlen(ticket_key), cases[i].kind,
                                             cases[i].subject_id, cases[i].expires_at, ticket),
                         0);
        char body[KF_TICKET_SIZE];
        int n = snprintf(body, sizeof body, "%c.%lld.%lld.", cases[i].kind,
                         (long long)cases[i].subject_id, (long long)cases[i].expires_at);
        assert_int_equal(strncmp(ticket, body, (size_t)n), 0);
        assert_int_equal(strlen(ticket + n), 43);
        assert_int_equal(strspn(ticket + n, URL_ALPHABET), 43);

        assert_int_equal(verify(ticket, cases[i].expires_at - 1, &kind, &subject_id), 0);
        assert_int_equal(kind, cases[i].kind);
        assert_int_equal(subject_id, cases[i].subject_id);
        /* The outputs are optional. */
        assert_int_equal(verify(ticket, cases[i].expires_at - 1, NULL, NULL), 0);
    }
}

static void test_ticket_not_nul_terminated(void **state)
{
    (void)state;
    char ticket[KF_TICKET_SIZE + 8];
    char kind = 0;
    int64_t subject_id = 0;
    assert_int_equal(kf_auth_ticket_sign(ticket_key, strlen(ticket_key), 'v', 7, 1000, ticket), 0);
    size_t len = strlen(ticket);
    /* The ticket is a view into a larger request buffer. */
    memcpy(ticket + len, "&x=1", 5);
    assert_int_equal(
        kf_auth_ticket_verify(ticket_key, strlen(ticket_key), ticket, len, 10, &kind, &subject_id),
        0);
    assert_int_equal(subject_id, 7);
    assert_int_equal(kf_auth_ticket_verify(ticket_key, strlen(ticket_key), ticket, len + 4, 10,
                                           &kind, &subject_id),
                     KF_EAUTH);
}

static void test_ticket_expired(void **state)
{
    (void)state;
    char ticket[KF_TICKET_SIZE];
    char kind = 'x';
    int64_t subject_id = -5;
    assert_int_equal(kf_auth_ticket_sign(ticket_key, strlen(ticket_key), 'a', 9, 1000, ticket), 0);
    assert_int_equal(verify(ticket, 999, NULL, NULL), 0);
    assert_int_equal(verify(ticket, 1000, &kind, &subject_id), KF_EEXPIRED);
    assert_int_equal(verify(ticket, INT64_MAX, &kind, &subject_id), KF_EEXPIRED);
    /* An expired ticket tells the caller nothing about whom it was for. */
    assert_int_equal(kind, 'x');
    assert_int_equal(subject_id, -5);
    /* Expiry is reported only under a valid signature. */
    assert_int_equal(kf_auth_ticket_verify("other", 5, ticket, strlen(ticket), 2000, NULL, NULL),
                     KF_EAUTH);
}

/* Sets every byte position to every other byte value and cuts the ticket at every length; all
 * must be forgeries, also when the original has expired. Every value matters at the last
 * character of the MAC, whose low bits carry no data: a lenient decoder would accept some. */
static void test_ticket_tampered(void **state)
{
    (void)state;
    char ticket[KF_TICKET_SIZE];
    assert_int_equal(kf_auth_ticket_sign(ticket_key, strlen(ticket_key), 'v', 12345, 5000, ticket),
                     0);
    size_t len = strlen(ticket);
    const int64_t nows[] = {10, 6000};

    for (size_t t = 0; t < sizeof nows / sizeof nows[0]; t++) {
        for (size_t i = 0; i < len; i++) {
            char copy[KF_TICKET_SIZE];
            memcpy(copy, ticket, len + 1);
            for (int value = 0; value < 256; value++) {
                if (value == (unsigned char)ticket[i])
                    continue;
                copy[i] = (char)value;
                int rc = kf_auth_ticket_verify(ticket_key, strlen(ticket_key), copy, len, nows[t],
                                               NULL, NULL);
                if (rc != KF_EAUTH)
                    fail_msg("byte %zu set to 0x%02x gave %d", i, value, rc);
            }
        }
        for (size_t cut = 0; cut < len; cut++) {
            int rc = kf_auth_ticket_verify(ticket_key, strlen(ticket_key), ticket, cut, nows[t],
                                           NULL, NULL);
            if (rc != KF_EAUTH)
                fail_msg("ticket cut to %zu bytes gave %d", cut, rc);
        }
        char longer[KF_TICKET_SIZE + 1];
        static const char extras[] = "A.0=-_ ";
        for (size_t e = 0; e < sizeof extras - 1; e++) {
            snprintf(longer, sizeof longer, "%s%c", ticket, extras[e]);
            assert_int_equal(verify(longer, nows[t], NULL, NULL), KF_EAUTH);
            snprintf(longer, sizeof longer, "%c%s", extras[e], ticket);
            assert_int_equal(verify(longer, nows[t], NULL, NULL), KF_EAUTH);
        }
    }
}

static void test_ticket_wrong_key(void **state)
{
    (void)state;
    char ticket[KF_TICKET_SIZE];
    assert_int_equal(kf_auth_ticket_sign("key one", 7, 'v', 1, 1000, ticket), 0);
    assert_int_equal(kf_auth_ticket_verify("key one", 7, ticket, strlen(ticket), 0, NULL, NULL), 0);
    assert_int_equal(kf_auth_ticket_verify("key two", 7, ticket, strlen(ticket), 0, NULL, NULL),
                     KF_EAUTH);
    assert_int_equal(kf_auth_ticket_verify("key on", 6, ticket, strlen(ticket), 0, NULL, NULL),
                     KF_EAUTH);
    assert_int_equal(kf_auth_ticket_verify("key one!", 8, ticket, strlen(ticket), 0, NULL, NULL),
                     KF_EAUTH);
    assert_int_equal(kf_auth_ticket_verify("", 0, ticket, strlen(ticket), 0, NULL, NULL), KF_EAUTH);
}

static void test_ticket_sign_rejects(void **state)
{
    (void)state;
    char ticket[KF_TICKET_SIZE];
    const size_t key_len = strlen(ticket_key);
    assert_int_equal(kf_auth_ticket_sign(ticket_key, key_len, 'x', 1, 1000, ticket), KF_EINVAL);
    assert_int_equal(kf_auth_ticket_sign(ticket_key, key_len, 'V', 1, 1000, ticket), KF_EINVAL);
    assert_int_equal(kf_auth_ticket_sign(ticket_key, key_len, '\0', 1, 1000, ticket), KF_EINVAL);
    assert_int_equal(kf_auth_ticket_sign(ticket_key, key_len, 'v', -1, 1000, ticket), KF_EINVAL);
    assert_int_equal(kf_auth_ticket_sign(ticket_key, key_len, 'v', 1, -1, ticket), KF_EINVAL);
    assert_int_equal(kf_auth_ticket_sign(ticket_key, 0, 'v', 1, 1000, ticket), KF_EINVAL);
}

static void test_ticket_garbage(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        ".",
        "...",
        "....",
        "v",
        "v.",
        "v.1",
        "v.1.",
        "v.1.1000",
        "v.1.1000.",
        "v..1000.AAAA",
        "v.1..AAAA",
        ".1.1000.AAAA",
        "v.1.1000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v.1.1000.!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "v.1.1000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        "\xff.1.1000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = verify(cases[i], 0, NULL, NULL);
        if (rc != KF_EAUTH)
            fail_msg("case %zu (\"%s\") gave %d", i, cases[i], rc);
    }
    assert_int_equal(kf_auth_ticket_verify(ticket_key, strlen(ticket_key), NULL, 0, 0, NULL, NULL),
                     KF_EAUTH);

    /* Too long to be a ticket, whatever it holds. */
    char huge[4 * KF_TICKET_SIZE];
    memset(huge, '1', sizeof huge);
    huge[0] = 'v';
    huge[1] = '.';
    huge[3] = '.';
    huge[5] = '.';
    huge[sizeof huge - 1] = '\0';
    assert_int_equal(verify(huge, 0, NULL, NULL), KF_EAUTH);
}

/* Signed correctly but not in the signer's canonical form: the parser must refuse them on its
 * own, not rely on the MAC. */
static void test_ticket_signed_but_malformed(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "x.1.1000",
        "V.1.1000",
        "va.1.1000",
        ".1.1000",
        "v.-1.1000",
        "v.1.-1000",
        "v.+1.1000",
        "v. 1.1000",
        "v.1 .1000",
        "v.01.1000",
        "v.1.01000",
        "v.0x1.1000",
        "v.1e3.1000",
        "v..1000",
        "v.1.",
        "v.9223372036854775808.1000",
        "v.1.9223372036854775808",
        "v.18446744073709551617.1000",
        "v.99999999999999999999999999.1000",
        "v.1.1000.5",
        "v.1.1000.",
    };
    char kind = 0;
    int64_t subject_id = 0;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char ticket[2 * KF_TICKET_SIZE];
        forge(ticket_key, bodies[i], ticket, sizeof ticket);
        int rc = verify(ticket, 0, &kind, &subject_id);
        if (rc != KF_EAUTH)
            fail_msg("body \"%s\" gave %d", bodies[i], rc);
    }
    /* The forging helper itself agrees with the signer on a canonical body. */
    char forged[KF_TICKET_SIZE];
    char signed_ticket[KF_TICKET_SIZE];
    forge(ticket_key, "a.77.1000", forged, sizeof forged);
    assert_int_equal(
        kf_auth_ticket_sign(ticket_key, strlen(ticket_key), 'a', 77, 1000, signed_ticket), 0);
    assert_string_equal(forged, signed_ticket);
    assert_int_equal(verify(forged, 0, &kind, &subject_id), 0);
    assert_int_equal(subject_id, 77);
}

static void test_ticket_expiry(void **state)
{
    (void)state;
    char ticket[KF_TICKET_SIZE];
    assert_int_equal(kf_auth_ticket_sign("k", 1, 'a', 42, 1700000000123, ticket), 0);
    assert_true(kf_auth_ticket_expiry(ticket, strlen(ticket)) == 1700000000123);
    assert_int_equal(kf_auth_ticket_expiry("a.42", 4), 0);
    assert_int_equal(kf_auth_ticket_expiry("a.42.x.mac", 10), 0);
    assert_int_equal(kf_auth_ticket_expiry("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticket_expiry),
        cmocka_unit_test(test_token_shape_and_uniqueness),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_password_round_trip),
        cmocka_unit_test(test_password_salted),
        cmocka_unit_test(test_password_empty_rejected),
        cmocka_unit_test(test_password_parameters_from_string),
        cmocka_unit_test(test_password_malformed),
        cmocka_unit_test(test_ticket_round_trip),
        cmocka_unit_test(test_ticket_not_nul_terminated),
        cmocka_unit_test(test_ticket_expired),
        cmocka_unit_test(test_ticket_tampered),
        cmocka_unit_test(test_ticket_wrong_key),
        cmocka_unit_test(test_ticket_sign_rejects),
        cmocka_unit_test(test_ticket_garbage),
        cmocka_unit_test(test_ticket_signed_but_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
