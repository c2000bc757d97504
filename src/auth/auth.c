/* auth.c: random tokens, SHA-256, scrypt password hashes and HMAC-signed tickets on libcrypto. */
#include "auth/auth.h"

#include "base/err.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define TOKEN_BYTES 32
#define SHA256_BYTES 32

/* The parameters new hashes get; old hashes keep theirs, so these can be raised later. */
#define SCRYPT_LOG2_N 15
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_SALT_BYTES 16
#define SCRYPT_KEY_BYTES 32

/* What verify accepts from an encoded hash; outside this a hash is malformed, not just slow. */
#define SCRYPT_LOG2_N_MIN 10
#define SCRYPT_LOG2_N_MAX 20
#define SCRYPT_R_MAX 16
#define SCRYPT_P_MAX 4
#define SCRYPT_SALT_MIN 16
#define SCRYPT_SALT_MAX 64

#define SCRYPT_PREFIX "scrypt$"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encodes len bytes of in as unpadded base64 in alphabet into out, which must hold
 * ceil(len * 4 / 3) + 1 bytes; NUL-terminates. Returns the text's length. */
static size_t b64_encode(const char *alphabet, const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

/* The 6-bit value of c in alphabet, or -1. */
static int b64_value(const char *alphabet, char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == alphabet[62])
        return 62;
    if (c == alphabet[63])
        return 63;
    return -1;
}

/* Decodes unpadded base64 strictly: only alphabet characters, no '=', no length that leaves a lone
 * character, and unused trailing bits zero, so every byte string has exactly one accepted text
 * (a lenient decoder would let a flipped last character of a MAC through). Writes at most cap
 * bytes. Returns the decoded length or KF_EINVAL. */
static long b64_decode(const char *alphabet, const char *in, size_t len, unsigned char *out,
                       size_t cap)
{
    if (len % 4 == 1)
        return KF_EINVAL;
    size_t need = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (need > cap)
        return KF_EINVAL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(alphabet, in[i]);
        if (v < 0)
            return KF_EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits & 0xff);
        }
        acc &= (1u << bits) - 1;
    }
    if (acc != 0)
        return KF_EINVAL;
    return (long)o;
}

/* Parses a canonical non-negative decimal (no sign, no leading zero, no overflow) from
 * s[0..len). Returns 0 or KF_EINVAL. */
static int parse_u63(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 19 || (s[0] == '0' && len > 1))
        return KF_EINVAL;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return KF_EINVAL;
        int digit = s[i] - '0';
        if (v > (INT64_MAX - digit) / 10)
            return KF_EINVAL;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

int kf_auth_random_token(char out[KF_TOKEN_SIZE])
{
    unsigned char bytes[TOKEN_BYTES];
    if (RAND_bytes(bytes, sizeof bytes) != 1) {
        out[0] = '\0';
        return KF_EIO;
    }
    b64_encode(b64_url, bytes, sizeof bytes, out);
    OPENSSL_cleanse(bytes, sizeof bytes);
    return 0;
}

/* SHA-256 fetched once: EVP_sha256() makes every EVP_Digest look the algorithm up again. Kept
 * for the life of the process. */
static EVP_MD *sha256_fetched;

static void sha256_fetch(void)
{
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_md(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sha256_fetch);
    return sha256_fetched != NULL ? sha256_fetched : EVP_sha256();
}

void kf_auth_sha256_hex(const void *data, size_t len, char out[KF_HASH_HEX_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_BYTES];
    unsigned int md_len = 0;
    /* No way to report failure here, and a wrong hash would silently lock users out or let
     * them in: treat a libcrypto failure like running out of memory. */
    if (EVP_Digest(data, len, md, &md_len, sha256_md(), NULL) != 1 || md_len != sizeof md) {
        fputs("kefu: SHA-256 failed in libcrypto\n", stderr);
        abort();
    }
    for (size_t i = 0; i < sizeof md; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * sizeof md] = '\0';
}

bool kf_auth_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    if (a_len != b_len)
        return false;
    return CRYPTO_memcmp(a, b, a_len) == 0;
}

/* Runs scrypt with memory limit just above what these parameters need, so that stronger
 * parameters in stored hashes keep working without a global limit to raise. */
static int scrypt_derive(const char *password, const unsigned char *salt, size_t salt_len,
                         int log2_n, int r, int p, unsigned char *key, size_t key_len)
{
    uint64_t n = (uint64_t)1 << log2_n;
    /* OpenSSL needs 128 * r * (N + 2) bytes for V and 128 * r * p for B. */
    uint64_t maxmem = 128u * (uint64_t)r * (n + 2) + 128u * (uint64_t)r * (uint64_t)p + (1u << 20);
    if (EVP_PBE_scrypt(password, strlen(password), salt, salt_len, n, (uint64_t)r, (uint64_t)p,
                       maxmem, key, key_len) != 1)
        return KF_EIO;
    return 0;
}

int kf_auth_password_hash(const char *password, char out[KF_PASSWORD_HASH_SIZE])
{
    unsigned char salt[SCRYPT_SALT_BYTES];
    unsigned char key[SCRYPT_KEY_BYTES];
    char salt_b64[SCRYPT_SALT_BYTES * 2];
    char key_b64[SCRYPT_KEY_BYTES * 2];
    int rc;

    out[0] = '\0';
    if (password == NULL || password[0] == '\0')
        return KF_EINVAL;
    if (RAND_bytes(salt, sizeof salt) != 1)
        return KF_EIO;
    rc = scrypt_derive(password, salt, sizeof salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, key,
                       sizeof key);
    if (rc != 0)
        goto out_cleanse;
    b64_encode(b64_std, salt, sizeof salt, salt_b64);
    b64_encode(b64_std, key, sizeof key, key_b64);
    snprintf(out, KF_PASSWORD_HASH_SIZE, SCRYPT_PREFIX "%d$%d$%d$%s$%s", SCRYPT_LOG2_N, SCRYPT_R,
             SCRYPT_P, salt_b64, key_b64);
out_cleanse:
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(key_b64, sizeof key_b64);
    return rc;
}

/* Takes the text up to the next '$' from *s (advancing past the '$' when there is one). Returns
 * its length; *field points at it. */
static size_t next_field(const char **s, const char **field)
{
    const char *end = strchr(*s, '$');
    size_t len = end != NULL ? (size_t)(end - *s) : strlen(*s);
    *field = *s;
    *s += len + (end != NULL ? 1 : 0);
    return len;
}

/* Parses a small decimal field into [min, max]. Returns 0 or KF_EINVAL. */
static int parse_param(const char *s, size_t len, int min, int max, int *out)
{
    int64_t v;
    if (parse_u63(s, len, &v) != 0 || v < min || v > max)
        return KF_EINVAL;
    *out = (int)v;
    return 0;
}

bool kf_auth_password_verify(const char *password, const char *encoded)
{
    unsigned char salt[SCRYPT_SALT_MAX];
    unsigned char want[SCRYPT_KEY_BYTES];
    unsigned char got[SCRYPT_KEY_BYTES];
    const char *field;
    size_t len;
    int log2_n, r, p;
    bool match = false;

    if (password == NULL || password[0] == '\0' || encoded == NULL)
        return false;
    if (strnlen(encoded, KF_PASSWORD_HASH_SIZE) >= KF_PASSWORD_HASH_SIZE)
        return false;
    if (strncmp(encoded, SCRYPT_PREFIX, strlen(SCRYPT_PREFIX)) != 0)
        return false;
    const char *s = encoded + strlen(SCRYPT_PREFIX);

    /* Every field but the last must end in '$'; the last must run to the NUL. */
    len = next_field(&s, &field);
    if (field[len] != '$' ||
        parse_param(field, len, SCRYPT_LOG2_N_MIN, SCRYPT_LOG2_N_MAX, &log2_n) != 0)
        return false;
    len = next_field(&s, &field);
    if (field[len] != '$' || parse_param(field, len, 1, SCRYPT_R_MAX, &r) != 0)
        return false;
    len = next_field(&s, &field);
    if (field[len] != '$' || parse_param(field, len, 1, SCRYPT_P_MAX, &p) != 0)
        return false;
    len = next_field(&s, &field);
    if (field[len] != '$')
        return false;
    long salt_len = b64_decode(b64_std, field, len, salt, sizeof salt);
    if (salt_len < SCRYPT_SALT_MIN)
        return false;
    len = next_field(&s, &field);
    if (field[len] != '\0')
        return false;
    /* The key length is fixed: scrypt's output for a shorter length is a prefix of the longer
     * one, so accepting any length would let a truncated stored key still match. */
    if (b64_decode(b64_std, field, len, want, sizeof want) != SCRYPT_KEY_BYTES)
        return false;

    if (scrypt_derive(password, salt, (size_t)salt_len, log2_n, r, p, got, sizeof got) == 0)
        match = CRYPTO_memcmp(got, want, sizeof got) == 0;
    OPENSSL_cleanse(got, sizeof got);
    OPENSSL_cleanse(want, sizeof want);
    return match;
}

/* HMAC-SHA256 of msg under key into mac. Returns 0 or -1. */
static int ticket_mac(const void *key, size_t key_len, const char *msg, size_t msg_len,
                      unsigned char mac[SHA256_BYTES])
{
    unsigned int mac_len = 0;
    const unsigned char *done =
        HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, msg_len, mac, &mac_len);
    return done != NULL && mac_len == SHA256_BYTES ? 0 : -1;
}

int kf_auth_ticket_sign(const void *key, size_t key_len, char kind, int64_t subject_id,
                        int64_t expires_at, char out[KF_TICKET_SIZE])
{
    unsigned char mac[SHA256_BYTES];

    out[0] = '\0';
    /* Verify accepts only non-negative numbers and a real key; refuse to sign what it would
     * reject. */
    if ((kind != 'v' && kind != 'a') || subject_id < 0 || expires_at < 0 || key == NULL ||
        key_len == 0 || key_len > INT_MAX)
        return KF_EINVAL;
    int n = snprintf(out, KF_TICKET_SIZE, "%c.%lld.%lld.", kind, (long long)subject_id,
                     (long long)expires_at);
    size_t body_len = (size_t)n - 1; /* the MAC covers everything before the last dot */
    if (ticket_mac(key, key_len, out, body_len, mac) != 0) {
        out[0] = '\0';
        return KF_EIO;
    }
    /* At most 1 + 1 + 19 + 1 + 19 + 1 + 43 + 1 = 86 bytes, well inside KF_TICKET_SIZE. */
    b64_encode(b64_url, mac, sizeof mac, out + n);
    return 0;
}

int kf_auth_ticket_verify(const void *key, size_t key_len, const char *ticket, size_t ticket_len,
                          int64_t now, char *kind_out, int64_t *subject_id_out)
{
    unsigned char mac[SHA256_BYTES];
    unsigned char want[SHA256_BYTES];
    const char *dots[3];
    size_t ndots = 0;
    int64_t subject_id, expires_at;

    if (key == NULL || key_len == 0 || key_len > INT_MAX || ticket == NULL ||
        ticket_len >= KF_TICKET_SIZE)
        return KF_EAUTH;
    for (size_t i = 0; i < ticket_len; i++) {
        if (ticket[i] != '.')
            continue;
        if (ndots == 3)
            return KF_EAUTH;
        dots[ndots++] = ticket + i;
    }
    if (ndots != 3)
        return KF_EAUTH;

    /* kind "." subject_id "." expires_at "." mac */
    const char *end = ticket + ticket_len;
    if (dots[0] != ticket + 1 || (ticket[0] != 'v' && ticket[0] != 'a'))
        return KF_EAUTH;
    if (parse_u63(dots[0] + 1, (size_t)(dots[1] - dots[0] - 1), &subject_id) != 0)
        return KF_EAUTH;
    if (parse_u63(dots[1] + 1, (size_t)(dots[2] - dots[1] - 1), &expires_at) != 0)
        return KF_EAUTH;
    if (b64_decode(b64_url, dots[2] + 1, (size_t)(end - dots[2] - 1), want, sizeof want) !=
        SHA256_BYTES)
        return KF_EAUTH;
    if (ticket_mac(key, key_len, ticket, (size_t)(dots[2] - ticket), mac) != 0)
        return KF_EAUTH;
    if (CRYPTO_memcmp(mac, want, sizeof mac) != 0)
        return KF_EAUTH;

    /* Expiry is news only about a genuine ticket; anything else is simply not authorised. */
    if (now >= expires_at)
        return KF_EEXPIRED;
    if (kind_out != NULL)
        *kind_out = ticket[0];
    if (subject_id_out != NULL)
        *subject_id_out = subject_id;
    return 0;
}

int64_t kf_auth_ticket_expiry(const char *ticket, size_t ticket_len)
{
    const char *second = NULL, *third = NULL;
    size_t dots = 0;
    for (size_t i = 0; i < ticket_len && dots < 3; i++) {
        if (ticket[i] != '.')
            continue;
        dots++;
        if (dots == 2)
            second = ticket + i;
        else if (dots == 3)
            third = ticket + i;
    }
    int64_t expires_at;
    if (third == NULL || parse_u63(second + 1, (size_t)(third - second - 1), &expires_at) != 0)
        return 0;
    return expires_at;
}
