/* requests.c: what every handler of the chat layer needs before it acts: who is asking (visitor
 * bearer tokens and agent session cookies, answered from the credential caches or the store),
 * whether they may (per-visitor rate limits, CSRF tokens), the body and cursor they sent, and
 * holding a request while the store works for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/log.h"
#include "auth/cache.h"
#include "chat/chat.h"

/* ---- request helpers ---- */

void kf_chat_log_request(kf_req_t *req, const char *what)
{
    if (req->head == NULL) { /* answered after its handler returned (from a store callback) */
        kf_info("request from %s: %s", kf_req_peer(req), what);
        return;
    }
    kf_info("%.*s %.*s from %s: %s", (int)req->head->method.len,
            req->head->method.ptr != NULL ? req->head->method.ptr : "", (int)req->head->path.len,
            req->head->path.ptr != NULL ? req->head->path.ptr : "", kf_req_peer(req), what);
}

void kf_chat_store_failed(kf_req_t *req, int rc)
{
    if (req->head != NULL)
        kf_error("store failure on %.*s: %s", (int)req->head->path.len, req->head->path.ptr,
                 kf_strerror(rc));
    else
        kf_error("store failure: %s", kf_strerror(rc));
    if (rc == KF_EUNAVAIL)
        kf_resp_error(req, 503, "unavailable", "the server cannot store that now; please retry");
    else
        kf_resp_error(req, 500, "internal", "the server could not complete the request");
}

/* Parses the body as a JSON object. On failure answers the request and returns NULL. Requiring
 * application/json also keeps plain cross-site form posts out (they cannot send it). */
json_t *kf_chat_read_json(kf_req_t *req)
{
    const kf_str_t *type = kf_http_header_get(req->head, "Content-Type");
    bool is_json = type != NULL && type->len >= 16 &&
                   strncasecmp(type->ptr, "application/json", 16) == 0 &&
                   (type->len == 16 || type->ptr[16] == ';' || type->ptr[16] == ' ');
    if (!is_json) {
        kf_resp_error(req, 415, "unsupported_media_type", "send the body as application/json");
        return NULL;
    }
    json_error_t error;
    json_t *root = json_loadb(req->body != NULL ? req->body : "", req->body_len,
                              JSON_REJECT_DUPLICATES, &error);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        kf_chat_log_request(req, "bad JSON body");
        kf_resp_error(req, 400, "bad_json", "the body must be a JSON object");
        return NULL;
    }
    return root;
}

bool kf_chat_read_after(kf_req_t *req, uint64_t *after)
{
    char value[32];
    int rc = kf_http_query_get(req->head->query, "after", value, sizeof value);
    *after = 0;
    if (rc == KF_ENOTFOUND)
        return true;
    if (rc >= 0 && kf_parse_u64((kf_str_t){value, (size_t)rc}, after) == 0 && *after < (1ULL << 53))
        return true;
    kf_resp_error(req, 400, "bad_request", "after must be a message id");
    return false;
}

/* ---- requests waiting for the store (kf_chat_wait_t) ---- */

static void waiting_abort_cb(kf_req_t *req, void *data)
{
    (void)req;
    ((kf_chat_wait_t *)data)->req = NULL;
}

bool kf_chat_hold(kf_req_t *req, void *w, int queued_rc)
{
    if (queued_rc != 0) {
        free(w);
        kf_chat_store_failed(req, queued_rc);
        return false;
    }
    ((kf_chat_wait_t *)w)->req = req;
    kf_req_hold(req, waiting_abort_cb, w);
    return true;
}

/* ---- authentication ---- */

/* A credential the caches did not know, waiting for the store. */
typedef struct auth_wait {
    kf_chat_wait_t base;
    kf_app_t *app;
    kf_chat_auth_fn then;
    const void *data;
    int64_t arg;
    char hash[KF_HASH_HEX_SIZE]; /* the credential's SHA-256 */
    int64_t expires_at;          /* an agent's session's */
    kf_chat_auth_t auth;
} auth_wait_t;

/* The request, resumed: its head and body are valid again for the handler's step. */
static void auth_resumed(kf_req_t *req, void *data)
{
    auth_wait_t *w = data;
    kf_req_detach(req);
    kf_chat_auth_t auth = w->auth;
    kf_chat_auth_fn then = w->then;
    const void *then_data = w->data;
    int64_t arg = w->arg;
    free(w);
    then(req, &auth, then_data, arg);
}

/* The store has answered (w->auth.rc says how): on with the request, if its client is still
 * there. */
static void auth_answered(auth_wait_t *w, int rc)
{
    w->auth.rc = rc == KF_ENOTFOUND ? KF_EAUTH : rc;
    if (w->base.req == NULL)
        free(w);
    else
        kf_req_resume(w->base.req, auth_resumed, w);
}

/* Asks the store about the credential of w (queued_rc: how queueing went) and holds the request;
 * or, when queueing failed, goes straight on with the error. */
static void auth_wait_for(kf_req_t *req, auth_wait_t *w, int queued_rc)
{
    if (queued_rc != 0) {
        kf_chat_auth_t auth = {.rc = queued_rc};
        kf_chat_auth_fn then = w->then;
        const void *then_data = w->data;
        int64_t arg = w->arg;
        free(w);
        then(req, &auth, then_data, arg);
        return;
    }
    w->base.req = req;
    kf_req_hold(req, waiting_abort_cb, w);
}

static auth_wait_t *auth_wait_new(kf_req_t *req, const char *hash, kf_chat_auth_fn then,
                                  const void *data, int64_t arg)
{
    auth_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = req->app;
    w->then = then;
    w->data = data;
    w->arg = arg;
    snprintf(w->hash, sizeof w->hash, "%s", hash);
    return w;
}

/* Goes on at once with an answer about the credential that needed no store. */
static void auth_at_once(kf_req_t *req, kf_chat_auth_t *auth, int rc, kf_chat_auth_fn then,
                         const void *data, int64_t arg)
{
    auth->rc = rc;
    then(req, auth, data, arg);
}

static void visitor_found_cb(void *ctx, const kf_store_result_t *r)
{
    auth_wait_t *w = ctx;
    if (r->rc == 0) {
        w->auth.visitor.id = r->visitor->id;
        snprintf(w->auth.visitor.name, sizeof w->auth.visitor.name, "%s", r->visitor->name);
        kf_chat_cache_visitor(w->app, w->hash, &w->auth.visitor);
    }
    auth_answered(w, r->rc);
}

void kf_chat_bearer_visitor(kf_req_t *req, kf_chat_auth_fn then, const void *data, int64_t arg)
{
    kf_app_t *app = req->app;
    kf_chat_auth_t auth;
    const kf_str_t *header = kf_http_header_get(req->head, "Authorization");
    if (header == NULL || header->len < 8 || strncasecmp(header->ptr, "Bearer ", 7) != 0) {
        auth_at_once(req, &auth, KF_EAUTH, then, data, arg);
        return;
    }
    char hash[KF_HASH_HEX_SIZE];
    kf_auth_sha256_hex(header->ptr + 7, header->len - 7, hash);
    if (kf_auth_cache_get(app->visitor_tokens, hash, kf_now_ms(), &auth.visitor) > 0) {
        auth_at_once(req, &auth, 0, then, data, arg);
        return;
    }
    auth_wait_t *w = auth_wait_new(req, hash, then, data, arg);
    auth_wait_for(req, w, app->store->ops->visitor_by_token(app->store, hash, visitor_found_cb, w));
}

/* Visitor tokens do not expire; only the name's bytes are kept. */
void kf_chat_cache_visitor(kf_app_t *app, const char *hash, const kf_visitor_auth_t *visitor)
{
    kf_auth_cache_put(app->visitor_tokens, hash, INT64_MAX, visitor,
                      offsetof(kf_visitor_auth_t, name) + strlen(visitor->name) + 1);
}

static void agent_found_cb(void *ctx, const kf_store_result_t *r)
{
    auth_wait_t *w = ctx;
    if (r->rc == 0) {
        kf_agent_auth_t *agent = &w->auth.agent;
        agent->id = r->agent->id;
        snprintf(agent->email, sizeof agent->email, "%s", r->agent->email);
        snprintf(agent->name, sizeof agent->name, "%s", r->agent->name);
        snprintf(agent->role, sizeof agent->role, "%s", r->agent->role);
        /* Kept until the session expires or its agent logs out (kf_api_agent_logout). */
        kf_auth_cache_put(w->app->agent_sessions, w->hash, w->expires_at, agent, sizeof *agent);
    }
    auth_answered(w, r->rc);
}

static void session_found_cb(void *ctx, const kf_store_result_t *r)
{
    auth_wait_t *w = ctx;
    int rc = r->rc;
    if (rc == 0 && w->base.req != NULL) {
        snprintf(w->auth.agent.csrf, sizeof w->auth.agent.csrf, "%s", r->session->csrf);
        w->expires_at = r->session->expires_at;
        kf_store_t *store = w->app->store;
        rc = store->ops->agent_by_id(store, r->session->agent_id, agent_found_cb, w);
        if (rc == 0)
            return;
    }
    auth_answered(w, rc);
}

/* The session token from the cookie; false when there is none. */
bool kf_chat_session_token(kf_req_t *req, kf_str_t *token)
{
    const kf_str_t *cookies = kf_http_header_get(req->head, "Cookie");
    return cookies != NULL && kf_http_cookie_get(*cookies, KF_SESSION_COOKIE, token) == 0 &&
           token->len > 0;
}

void kf_chat_cookie_agent(kf_req_t *req, kf_chat_auth_fn then, const void *data, int64_t arg)
{
    kf_app_t *app = req->app;
    kf_chat_auth_t auth;
    kf_str_t token;
    if (!kf_chat_session_token(req, &token)) {
        auth_at_once(req, &auth, KF_EAUTH, then, data, arg);
        return;
    }
    char hash[KF_HASH_HEX_SIZE];
    kf_auth_sha256_hex(token.ptr, token.len, hash);
    int64_t now = kf_now_ms();
    if (kf_auth_cache_get(app->agent_sessions, hash, now, &auth.agent) > 0) {
        auth_at_once(req, &auth, 0, then, data, arg);
        return;
    }
    auth_wait_t *w = auth_wait_new(req, hash, then, data, arg);
    auth_wait_for(req, w, app->store->ops->session_get(app->store, hash, now, session_found_cb, w));
}

/* ---- per-visitor rate limits ---- */

bool kf_chat_visitor_take(kf_limit_t *limit, int64_t visitor_id, int64_t *retry_after_ms)
{
    if (limit == NULL)
        return true;
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)visitor_id);
    return kf_limit_take(limit, key, kf_now_ms(), retry_after_ms);
}

int64_t kf_chat_retry_after_s(int64_t retry_after_ms)
{
    return (retry_after_ms + 999) / 1000;
}

void kf_chat_rate_limited(kf_req_t *req, int64_t retry_after_ms, const char *what)
{
    int64_t wait_s = kf_chat_retry_after_s(retry_after_ms);
    char retry[24], message[128];
    snprintf(retry, sizeof retry, "%lld", (long long)wait_s);
    snprintf(message, sizeof message, "too many %s; try again in %lld s", what, (long long)wait_s);
    /* At debug level only: a script past its limit would otherwise write a line per request. */
    kf_debug("request from %s refused: too many %s", kf_req_peer(req), what);
    kf_resp_header(req, "Retry-After", retry);
    kf_resp_error(req, 429, "rate_limited", message);
}

bool kf_chat_visitor_request_allowed(kf_req_t *req, int64_t visitor_id)
{
    kf_app_t *app = req->app;
    int64_t wait_ms = 0;
    if (kf_chat_visitor_take(app->visitor_requests, visitor_id, &wait_ms))
        return true;
    kf_chat_rate_limited(req, wait_ms, "requests");
    return false;
}

/* Answers 401 unless auth found a visitor, 500 (or 503) when the store failed, 429 when that
 * visitor is past their request limit. */
bool kf_chat_visitor_allowed(kf_req_t *req, const kf_chat_auth_t *auth)
{
    if (auth->rc == KF_EAUTH) {
        kf_resp_error(req, 401, "unauthorized",
                      "a valid visitor token is required (Authorization: Bearer)");
        return false;
    }
    if (auth->rc != 0) {
        kf_chat_store_failed(req, auth->rc);
        return false;
    }
    return kf_chat_visitor_request_allowed(req, auth->visitor.id);
}

/* Answers 401 without a session, 403 when a state-changing request lacks the CSRF token. */
bool kf_chat_agent_allowed(kf_req_t *req, const kf_chat_auth_t *auth, bool state_changing)
{
    if (auth->rc == KF_EAUTH) {
        kf_resp_error(req, 401, "unauthorized", "log in as an agent first");
        return false;
    }
    if (auth->rc != 0) {
        kf_chat_store_failed(req, auth->rc);
        return false;
    }
    if (state_changing) {
        const char *csrf = auth->agent.csrf;
        const kf_str_t *token = kf_http_header_get(req->head, "X-CSRF-Token");
        if (token == NULL || !kf_auth_equal(token->ptr, token->len, csrf, strlen(csrf))) {
            kf_chat_log_request(req, "missing or wrong CSRF token");
            kf_resp_error(req, 403, "csrf", "missing or wrong X-CSRF-Token header");
            return false;
        }
    }
    return true;
}
