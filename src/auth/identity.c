/* identity.c: the HMAC-SHA256 check of a site's signed identity, on libcrypto. */
#include "auth/identity.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth.h"
#include "base/err.h"

#define MAC_BYTES 32

int kf_identity_hmac_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                         char out[KF_IDENTITY_SIG_SIZE])
{
    unsigned char mac[MAC_BYTES];
    unsigned int mac_len = 0;
    /* HMAC takes a non-NULL key even when empty. */
    static const unsigned char empty = 0;
    if (HMAC(EVP_sha256(), key_len > 0 ? key : &empty, (int)key_len, msg, msg_len, mac, &mac_len) ==
            NULL ||
        mac_len != MAC_BYTES)
        return KF_EIO;
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < MAC_BYTES; i++) {
        out[2 * i] = digits[mac[i] >> 4];
        out[2 * i + 1] = digits[mac[i] & 15];
    }
    out[2 * MAC_BYTES] = '\0';
    OPENSSL_cleanse(mac, sizeof mac);
    return 0;
}

int kf_identity_check(const char *secret, const char *user_id, const char *email, int64_t ts,
                      const char *nonce, const char *sig, int64_t now_s)
{
    size_t sig_len = strlen(sig);
    if (sig_len != 2 * MAC_BYTES)
        return KF_EAUTH;
    /* The message is built here from the parsed fields, so a ts written "0012" by the page signs
     * as "12": the site signs the number it sent, in decimal. */
    size_t len = strlen(user_id) + strlen(email) + strlen(nonce) + 32;
    char *msg = malloc(len);
    if (msg == NULL)
        abort();
    int written = snprintf(msg, len, "%s\n%s\n%" PRId64 "\n%s", user_id, email, ts, nonce);
    char want[KF_IDENTITY_SIG_SIZE];
    int rc = kf_identity_hmac_hex(secret, strlen(secret), msg, (size_t)written, want);
    free(msg);
    if (rc != 0)
        return rc;
    char given[KF_IDENTITY_SIG_SIZE];
    for (size_t i = 0; i < sig_len; i++) {
        char ch = sig[i];
        given[i] = ch >= 'A' && ch <= 'F' ? (char)(ch - 'A' + 'a') : ch;
    }
    given[sig_len] = '\0';
    bool match = kf_auth_equal(given, sig_len, want, 2 * MAC_BYTES);
    OPENSSL_cleanse(want, sizeof want);
    if (!match)
        return KF_EAUTH;
    if (ts < now_s - KF_IDENTITY_WINDOW_S || ts > now_s + KF_IDENTITY_WINDOW_S)
        return KF_EEXPIRED;
    return 0;
}
