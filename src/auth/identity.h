/* identity.h: checking a site's proof of who its logged-in user is (docs/IDENTITY.md). The site's
 * server signs user_id "\n" email "\n" ts "\n" nonce with HMAC-SHA256 under the site secret; the
 * visitor's page hands kefu the fields and the signature (hex). Nonces are not remembered here:
 * the caller records each accepted one for the window, so that none is taken twice. Nothing here
 * touches the store or HTTP. */
#ifndef KF_AUTH_IDENTITY_H
#define KF_AUTH_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

/* A signature's accepted distance from now, either way (clock skew and the page's load time). */
#define KF_IDENTITY_WINDOW_S 300
/* Field limits, in bytes: a user id, a nonce (at least KF_IDENTITY_MIN_NONCE). */
#define KF_IDENTITY_MAX_USER_ID 255
#define KF_IDENTITY_MAX_NONCE 128
#define KF_IDENTITY_MIN_NONCE 8
/* HMAC-SHA256 as 64 lower-case hex characters, plus NUL. */
#define KF_IDENTITY_SIG_SIZE 65

/* HMAC-SHA256 of msg under key as lower-case hex into out. Returns 0 or KF_EIO. */
int kf_identity_hmac_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                         char out[KF_IDENTITY_SIG_SIZE]);

/* Checks a signed identity at now_s (Unix seconds): 0 when sig (hex, either case) is the HMAC
 * of the fields under secret and ts is within KF_IDENTITY_WINDOW_S of now_s; KF_EAUTH for a
 * wrong or malformed signature; KF_EEXPIRED for a genuine one too far from now. The signature is
 * compared in constant time, and checked before the time, so that a stale answer says the
 * signature was the site's. */
int kf_identity_check(const char *secret, const char *user_id, const char *email, int64_t ts,
                      const char *nonce, const char *sig, int64_t now_s);

#endif
