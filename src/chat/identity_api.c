/* identity_api.c: verified visitors (docs/IDENTITY.md): the site secret, a session started with
 * a site's signed identity, and the admin's view of the secret. One visitor row per site user_id,
 * any number of tokens: a second device's session maps to the same visitor, so it reads and
 * writes the same conversations and hears the same pushes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/identity.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/str.h"
#include "chat/events.h"
#include "chat/handlers.h"
#include "chat/nodes.h"
#include "store/sync.h"

#define SITE_SECRET_KEY "site_secret"

int kf_app_site_secret(kf_store_t *store, char out[KF_SITE_SECRET_SIZE])
{
    int rc = kf_store_sync_setting_get(store, SITE_SECRET_KEY, out, KF_SITE_SECRET_SIZE);
    if (rc == KF_ENOTFOUND) {
        /* 256 bits from RAND_bytes, written as hex so that a site pastes it into any language's
         * HMAC as a plain string key. */
        char token[KF_TOKEN_SIZE];
        rc = kf_auth_random_token(token);
        if (rc != 0)
            return rc;
        kf_auth_sha256_hex(token, strlen(token), out);
        rc = kf_store_sync_setting_set(store, SITE_SECRET_KEY, out);
    }
    if (rc == KF_ETOOBIG || (rc == 0 && strlen(out) != KF_SITE_SECRET_SIZE - 1))
        return KF_ESTORE; /* not a secret we wrote */
    return rc;
}

void kf_site_secret_get(const kf_call_t *call)
{
    kf_resp_json(call->req, 200,
                 json_pack("{s:s,s:b}", "site_secret", call->app->site_secret, "require_verified",
                           call->app->config.require_verified));
}

/* True for a string of printable ASCII or UTF-8 without control characters: the fields are
 * joined with "\n" to be signed, so none of them may hold one. */
static bool plain_text(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

/* The string field key of root, of at most max_bytes (and at least min_bytes) of plain text;
 * NULL (after answering 400 with why) otherwise. An absent optional field is "". */
static const char *text_field(kf_req_t *req, json_t *root, const char *key, bool required,
                              size_t min_bytes, size_t max_bytes)
{
    json_t *value = json_object_get(root, key);
    if ((value == NULL || json_is_null(value)) && !required)
        return "";
    const char *text = json_is_string(value) ? json_string_value(value) : NULL;
    size_t len = text != NULL ? strlen(text) : 0;
    if (text == NULL || len < min_bytes || len > max_bytes || len != json_string_length(value) ||
        !plain_text(text)) {
        char message[160];
        snprintf(message, sizeof message,
                 "%s must be a string of %zu to %zu bytes without control characters", key,
                 min_bytes, max_bytes);
        kf_call_fail(req, KF_EPROTO, message);
        return NULL;
    }
    return text;
}

/* A verified session waiting for the store. */
typedef struct identify_wait {
    kf_wait_t base;
    kf_app_t *app;
    char token[KF_TOKEN_SIZE];
    char hash[KF_HASH_HEX_SIZE];
} identify_wait_t;

/* The visitor's conversation read: the consoles' lists learn of a new name. */
static void identified_conversation_cb(void *ctx, const kf_store_result_t *r)
{
    kf_app_t *app = ctx;
    if (r->rc == 0)
        kf_chat_publish_conversation(app->store, app->hub, r->id, false);
}

static void identified_cb(void *ctx, const kf_store_result_t *r)
{
    identify_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (r->rc == 0) {
        kf_app_t *app = w->app;
        kf_visitor_auth_t visitor = {.id = r->visitor->id, .verified = true};
        snprintf(visitor.name, sizeof visitor.name, "%s", r->visitor->name);
        /* Other devices' cached tokens carry the name as it was. */
        kf_authn_visitor_changed(app->authn, visitor.id);
        kf_nodes_tell_visitor_changed(app, visitor.id);
        kf_authn_remember_visitor(app->authn, w->hash, &visitor);
        json_t *shown = kf_visitor_identity_json(r->visitor);
        json_t *event = json_pack("{s:s,s:I,s:O}", "type", "visitor", "visitor_id",
                                  (json_int_t)visitor.id, "visitor", shown);
        kf_chat_publish(app->hub, 0, true, kf_chat_event(0, event));
        app->store->ops->conversation_of_visitor(app->store, visitor.id, identified_conversation_cb,
                                                 app);
        if (req != NULL)
            kf_resp_json(req, 201, json_pack("{s:s,s:o}", "token", w->token, "visitor", shown));
        else
            json_decref(shown);
    } else if (req != NULL && r->rc == KF_EEXISTS) {
        kf_call_log(req, "a replayed identity signature");
        kf_resp_error(req, 401, "replayed", "this signature's nonce has been used already");
    } else if (req != NULL) {
        kf_call_fail(req, r->rc, NULL);
    }
    free(w);
}

void kf_visitor_identify(const kf_call_t *call, json_t *root)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    const char *user_id = text_field(req, root, "user_id", true, 1, KF_IDENTITY_MAX_USER_ID);
    if (user_id == NULL)
        return;
    const char *email = text_field(req, root, "email", false, 0, KF_MAX_EMAIL_BYTES);
    if (email == NULL)
        return;
    const char *nonce =
        text_field(req, root, "nonce", true, KF_IDENTITY_MIN_NONCE, KF_IDENTITY_MAX_NONCE);
    if (nonce == NULL)
        return;
    const char *sig = text_field(req, root, "sig", true, 1, 2 * (KF_IDENTITY_SIG_SIZE - 1));
    if (sig == NULL)
        return;
    const char *name = text_field(req, root, "name", false, 0, 4 * KF_MAX_NAME_CHARS);
    if (name == NULL)
        return;
    if (kf_utf8_length(name) > KF_MAX_NAME_CHARS) {
        kf_call_fail(req, KF_EINVAL, "name must be a string of at most 80 characters");
        return;
    }
    json_t *ts_json = json_object_get(root, "ts");
    if (!json_is_integer(ts_json)) {
        kf_call_fail(req, KF_EPROTO, "ts must be an integer: Unix seconds");
        return;
    }
    int64_t ts = (int64_t)json_integer_value(ts_json);
    int rc = kf_identity_check(app->site_secret, user_id, email, ts, nonce, sig,
                               kf_clock_wall_ms() / 1000);
    if (rc == KF_EAUTH) {
        kf_call_log(req, "a wrong identity signature");
        kf_resp_error(req, 401, "bad_signature", "the signature does not match the site secret");
        return;
    }
    if (rc == KF_EEXPIRED) {
        kf_call_log(req, "a stale identity signature");
        kf_resp_error(req, 401, "stale_signature",
                      "ts is more than 5 minutes from the server's time");
        return;
    }
    if (rc != 0) {
        kf_call_fail(req, rc, NULL);
        return;
    }
    identify_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    if (kf_auth_random_token(w->token) != 0) {
        free(w);
        kf_call_fail(req, KF_EIO, NULL);
        return;
    }
    kf_auth_sha256_hex(w->token, strlen(w->token), w->hash);
    char *trimmed = kf_trim_copy(name);
    /* The nonce is taken for as long as its signature could be accepted: ts plus the window
     * (kf_identity_check takes ts up to the window before now), and a second over for
     * rounding. */
    kf_visitor_identity_t identity = {
        .user_id = user_id,
        .email = email,
        .name = trimmed,
        .token_hash = w->hash,
        .nonce = nonce,
        .nonce_expires_at = (ts + KF_IDENTITY_WINDOW_S + 1) * 1000,
        .now = kf_clock_wall_ms(),
    };
    rc = app->store->ops->visitor_identify(app->store, &identity, identified_cb, w);
    free(trimmed);
    kf_call_hold(req, w, rc);
}
