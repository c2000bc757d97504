/* auth.h: the cryptographic pieces of authentication, all on OpenSSL libcrypto: random tokens,
 * token hashing, scrypt password hashes, signed short-lived push tickets, constant-time compare.
 * Nothing here touches the store or HTTP. */
#ifndef KF_AUTH_H
#define KF_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A token of 32 random bytes as 43 characters of unpadded base64url, plus NUL. */
#define KF_TOKEN_SIZE 44
/* A SHA-256 as 64 lower-case hex characters, plus NUL. */
#define KF_HASH_HEX_SIZE 65
/* An encoded password hash fits in this many bytes (NUL included). */
#define KF_PASSWORD_HASH_SIZE 160
/* A push ticket fits in this many bytes (NUL included). */
#define KF_TICKET_SIZE 128

/* Fills out (KF_TOKEN_SIZE bytes) with a fresh random token from RAND_bytes. Returns 0 or KF_EIO.
 */
int kf_auth_random_token(char out[KF_TOKEN_SIZE]);

/* SHA-256 of data as lower-case hex into out (KF_HASH_HEX_SIZE bytes). */
void kf_auth_sha256_hex(const void *data, size_t len, char out[KF_HASH_HEX_SIZE]);

/* Compares two byte strings in time that depends only on the lengths. */
bool kf_auth_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* Hashes password with scrypt (N=2^15, r=8, p=1, 16-byte random salt, 32-byte key) into out as
 * "scrypt$15$8$1$<salt b64>$<key b64>" (standard base64, unpadded). Returns 0, KF_EINVAL for an
 * empty password, KF_EIO when libcrypto fails. */
int kf_auth_password_hash(const char *password, char out[KF_PASSWORD_HASH_SIZE]);

/* True when password matches the encoded hash (constant-time compare of the derived key). A
 * malformed encoded string (or parameters out of a sane range: log2 N in 10..20, r in 1..16,
 * p in 1..4) never matches. */
bool kf_auth_password_verify(const char *password, const char *encoded);

/* Signs a push ticket: "<kind>.<subject_id>.<expires_at_ms>.<HMAC-SHA256 base64url>", where kind
 * is 'v' (visitor) or 'a' (agent). key is the server's secret (key_len bytes). Returns 0, or
 * KF_EINVAL for another kind. */
int kf_auth_ticket_sign(const void *key, size_t key_len, char kind, int64_t subject_id,
                        int64_t expires_at, char out[KF_TICKET_SIZE]);

/* Verifies a ticket made by kf_auth_ticket_sign with the same key. Returns 0 and fills kind and
 * subject_id, KF_EEXPIRED when now >= expires_at, or KF_EAUTH for anything malformed or forged. */
int kf_auth_ticket_verify(const void *key, size_t key_len, const char *ticket, size_t ticket_len,
                          int64_t now, char *kind_out, int64_t *subject_id_out);
/* The expiry a ticket carries (milliseconds since the Unix epoch), read without checking it: for
 * a ticket kf_auth_ticket_verify accepted. 0 for one without a readable expiry. */
int64_t kf_auth_ticket_expiry(const char *ticket, size_t ticket_len);

#endif
