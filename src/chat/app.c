/* app.c: the chat application's life cycle and front door: the route table, the pages, the
 * ticket key, and agent accounts. The handlers live in api.c (JSON API) and live.c (push). */
#include "chat/app.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "chat/chat.h"
#include "http/assets.h"
#include "http/router.h"
#include "store/sync.h"

/* Keys each rate limit remembers at most (the stalest go first): bounds their memory. */
#define LIMIT_KEYS 10000
/* The same for the per-visitor limits: more, so that a busy server (the load benchmark holds
 * 19,000 visitors) does not forget buckets that are still filling up. */
#define VISITOR_LIMIT_KEYS 65536

/* ---- small helpers ---- */

int64_t kf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kf_app_config_default(kf_app_config_t *config)
{
    memset(config, 0, sizeof *config);
    config->max_message_chars = 4000;
    config->session_ttl_ms = 7LL * 24 * 3600 * 1000;
    config->ticket_ttl_ms = 60 * 1000;
    config->secure_cookies = false;
    config->login_failures_per_account = 5;
    config->login_failures_per_address = 20;
    /* A person polls every 2 s at most, types and reads; a script is what goes past these. */
    config->visitor_requests_per_minute = 120;
    config->visitor_requests_burst = 60;
    config->visitor_messages_per_minute = 30;
    config->visitor_messages_burst = 20;
    config->visitor_sessions_per_minute = 60;
    config->visitor_sessions_burst = 60;
    config->max_push_per_visitor = 8;
    config->max_push_per_agent = 32;
}

/* ---- pages ---- */

static void send_asset(kf_req_t *req, const char *name, size_t name_len)
{
    const kf_asset_t *asset = kf_asset_find(name, name_len);
    if (asset == NULL) {
        kf_resp_error(req, 404, "not_found", "no such file");
        return;
    }
    const char *type = kf_asset_content_type(asset->name);
    if (strncmp(type, "text/html", 9) == 0) {
        kf_resp_header(req, "Content-Security-Policy",
                       "default-src 'self'; img-src 'self' data:; frame-src 'self'; "
                       "frame-ancestors 'self'; base-uri 'none'; form-action 'self'; "
                       "object-src 'none'");
        kf_resp_header(req, "X-Frame-Options", "SAMEORIGIN");
    }
    kf_asset_serve(req, asset);
}

static void page_root(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_resp_header(req, "Location", "/chat");
    kf_resp_send(req, 302, NULL, NULL, 0);
}

static void page_chat(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    send_asset(req, "chat.html", 9);
}

static void page_agent(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    send_asset(req, "agent.html", 10);
}

static void page_health(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_resp_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static const kf_route_t routes[] = {
    {"GET", "/", page_root},
    {"GET", "/chat", page_chat},
    {"GET", "/agent", page_agent},
    {"GET", "/healthz", page_health},
    {"POST", "/api/visitor/session", kf_api_visitor_session_create},
    {"GET", "/api/visitor/session", kf_api_visitor_session_get},
    {"POST", "/api/visitor/messages", kf_api_visitor_message_post},
    {"GET", "/api/visitor/messages", kf_api_visitor_messages_get},
    {"POST", "/api/visitor/read", kf_api_visitor_read_post},
    {"POST", "/api/visitor/typing", kf_api_visitor_typing_post},
    {"POST", "/api/visitor/push-ticket", kf_api_visitor_ticket_post},
    {"POST", "/api/agent/login", kf_api_agent_login},
    {"GET", "/api/agent/me", kf_api_agent_me},
    {"POST", "/api/agent/logout", kf_api_agent_logout},
    {"POST", "/api/agent/push-ticket", kf_api_agent_ticket_post},
    {"GET", "/api/conversations", kf_api_conversations_get},
    {"GET", "/api/conversations/{id}", kf_api_conversation_get},
    {"GET", "/api/conversations/{id}/messages", kf_api_conversation_messages_get},
    {"POST", "/api/conversations/{id}/messages", kf_api_conversation_message_post},
    {"POST", "/api/conversations/{id}/read", kf_api_conversation_read_post},
    {"POST", "/api/conversations/{id}/typing", kf_api_conversation_typing_post},
    {"POST", "/api/conversations/{id}/status", kf_api_conversation_status_post},
    {"GET", "/push/poll", kf_live_poll},
    {"GET", "/push/longpoll", kf_live_longpoll},
    {"GET", "/push/iframe", kf_live_iframe},
    {"GET", "/push/sse", kf_live_sse},
    {"GET", "/push/ws", kf_live_ws},
};

void kf_app_handle(kf_req_t *req)
{
    kf_str_t path = req->head->path;
    kf_route_match_t match;
    int rc =
        kf_router_match(routes, sizeof routes / sizeof routes[0], req->head->method, path, &match);
    if (rc == KF_EPROTO) {
        kf_resp_error(req, 501, "method_not_implemented", "unknown method");
        return;
    }
    static const char static_prefix[] = "/static/";
    size_t prefix_len = sizeof static_prefix - 1;
    if (path.len > prefix_len && memcmp(path.ptr, static_prefix, prefix_len) == 0) {
        if (!kf_str_eq(req->head->method, "GET") && !kf_str_eq(req->head->method, "HEAD")) {
            kf_resp_header(req, "Allow", "GET, HEAD");
            kf_resp_error(req, 405, "method_not_allowed", "static files are read-only");
            return;
        }
        /* Exact lookup in the embedded table: no path ever reaches the file system. */
        send_asset(req, path.ptr + prefix_len, path.len - prefix_len);
        return;
    }
    if (rc == KF_ENOTFOUND) {
        kf_resp_error(req, 404, "not_found", "no such endpoint");
        return;
    }
    if (rc != 0) {
        kf_resp_header(req, "Allow", match.allow);
        kf_resp_error(req, 405, "method_not_allowed", "method not allowed on this endpoint");
        return;
    }
    match.route->handler(req, match.ids);
}

/* ---- life cycle ---- */

/* Makes a limit that may be off (per_minute 0: *limit is NULL). False for a bad rate or burst. */
static bool optional_limit(double per_minute, double burst, kf_limit_t **limit)
{
    *limit = NULL;
    if (per_minute == 0)
        return true;
    *limit = kf_limit_new(per_minute, burst, VISITOR_LIMIT_KEYS);
    return *limit != NULL;
}

/* The HMAC key of push tickets lives in the store, so tickets survive a restart. */
static int load_ticket_key(kf_app_t *app)
{
    char hex[65];
    int rc = kf_store_sync_setting_get(app->store, "ticket_key", hex, sizeof hex);
    if (rc == KF_ENOTFOUND) {
        char token[KF_TOKEN_SIZE];
        rc = kf_auth_random_token(token);
        if (rc != 0)
            return rc;
        kf_auth_sha256_hex(token, strlen(token), hex);
        rc = kf_store_sync_setting_set(app->store, "ticket_key", hex);
    }
    if (rc == KF_ETOOBIG)
        return KF_ESTORE; /* not a key we wrote */
    if (rc != 0)
        return rc;
    if (strlen(hex) != 64)
        return KF_ESTORE;
    for (size_t i = 0; i < 32; i++) {
        unsigned int byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
            return KF_ESTORE;
        app->ticket_key[i] = (unsigned char)byte;
    }
    return 0;
}

#define LIMIT_SWEEP_MS 60000

static void limit_sweep_cb(uv_timer_t *timer)
{
    kf_app_t *app = timer->data;
    int64_t now = kf_now_ms();
    kf_limit_t *limits[] = {app->login_by_account, app->login_by_address, app->visitor_requests,
                            app->visitor_messages, app->visitor_sessions};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        if (limits[i] != NULL)
            kf_limit_sweep(limits[i], now);
    }
}

/* Credential cache sizes: agents are few; visitors' tokens are looked up on every request and
 * push connection, so their table holds about as many as one process holds connections. */
#define AGENT_SESSION_SLOTS 1024
#define VISITOR_TOKEN_SLOTS 32768

/* The store has work for the loop (finished writes, queued reads): answer and publish. */
static void store_wakeup_cb(uv_async_t *handle)
{
    kf_app_t *app = handle->data;
    app->store->ops->complete(app->store);
    kf_live_run_deferred(app);
}

/* Called on the writer's thread, or the loop's: uv_async_send is the one libuv call that is safe
 * on any thread. */
static void store_notify(void *data)
{
    uv_async_send(data);
}

kf_app_t *kf_app_new(uv_loop_t *loop, kf_store_t *store, const kf_app_config_t *config,
                     const kf_push_config_t *push_config, int *err)
{
    kf_app_t *app = kf_xcalloc(1, sizeof *app);
    app->loop = loop;
    app->store = store;
    app->config = *config;
    int rc = load_ticket_key(app);
    if (rc != 0) {
        free(app);
        *err = rc;
        return NULL;
    }
    /* A bucket of N failures refills over 15 minutes; past it, one more try every 15/N min. */
    app->login_by_account = kf_limit_new(config->login_failures_per_account / 15.0,
                                         config->login_failures_per_account, LIMIT_KEYS);
    app->login_by_address = kf_limit_new(config->login_failures_per_address / 15.0,
                                         config->login_failures_per_address, LIMIT_KEYS);
    bool limits_ok = optional_limit(config->visitor_requests_per_minute,
                                    config->visitor_requests_burst, &app->visitor_requests);
    limits_ok = optional_limit(config->visitor_messages_per_minute, config->visitor_messages_burst,
                               &app->visitor_messages) &&
                limits_ok;
    limits_ok = optional_limit(config->visitor_sessions_per_minute, config->visitor_sessions_burst,
                               &app->visitor_sessions) &&
                limits_ok;
    if (app->login_by_account == NULL || app->login_by_address == NULL || !limits_ok) {
        kf_limit_free(app->login_by_account);
        kf_limit_free(app->login_by_address);
        kf_limit_free(app->visitor_requests);
        kf_limit_free(app->visitor_messages);
        kf_limit_free(app->visitor_sessions);
        free(app);
        *err = KF_EINVAL;
        return NULL;
    }
    /* Unreferenced: what waits for the store is answered to requests, which keep the loop
     * alive. */
    app->store_wakeup = kf_xcalloc(1, sizeof *app->store_wakeup);
    uv_async_init(loop, app->store_wakeup, store_wakeup_cb);
    app->store_wakeup->data = app;
    uv_unref((uv_handle_t *)app->store_wakeup);
    store->ops->set_notify(store, store_notify, app->store_wakeup);
    /* Idle buckets go once a minute, so that the tables hold the keys in use rather than the
     * last 65,536 ever seen. Unreferenced: it must not keep the loop alive at shutdown. */
    app->limit_sweeper = kf_xcalloc(1, sizeof *app->limit_sweeper);
    uv_timer_init(loop, app->limit_sweeper);
    app->limit_sweeper->data = app;
    uv_timer_start(app->limit_sweeper, limit_sweep_cb, LIMIT_SWEEP_MS, LIMIT_SWEEP_MS);
    uv_unref((uv_handle_t *)app->limit_sweeper);
    app->newest_overall = -1;
    /* A slot costs 64 bytes, allocated on first use; a visitor's entry about as much again. */
    app->agent_sessions = kf_auth_cache_new(AGENT_SESSION_SLOTS, sizeof(kf_agent_auth_t));
    app->visitor_tokens = kf_auth_cache_new(VISITOR_TOKEN_SLOTS, sizeof(kf_visitor_auth_t));
    app->hub = kf_hub_new();
    kf_push_config_t push = *push_config;
    push.receive = kf_live_receive;
    push.receive_ctx = app;
    app->push = kf_push_new(loop, app->hub, &push);
    return app;
}

void kf_app_commit(kf_app_t *app)
{
    do
        app->store->ops->flush(app->store);
    while (kf_live_run_deferred(app) > 0);
}

void kf_app_drain(kf_app_t *app)
{
    kf_app_commit(app);
    kf_push_drain(app->push);
}

static void free_handle_cb(uv_handle_t *handle)
{
    free(handle);
}

void kf_app_free(kf_app_t *app)
{
    if (app == NULL)
        return;
    kf_app_commit(app);
    app->store->ops->set_notify(app->store, NULL, NULL);
    uv_close((uv_handle_t *)app->store_wakeup, free_handle_cb);
    uv_close((uv_handle_t *)app->limit_sweeper, free_handle_cb);
    kf_push_free(app->push);
    kf_hub_free(app->hub);
    kf_limit_free(app->login_by_account);
    kf_limit_free(app->login_by_address);
    kf_limit_free(app->visitor_requests);
    kf_limit_free(app->visitor_messages);
    kf_limit_free(app->visitor_sessions);
    kf_live_free(app);
    kf_auth_cache_free(app->agent_sessions);
    kf_auth_cache_free(app->visitor_tokens);
    free(app);
}

int kf_app_create_agent(kf_store_t *store, const char *email, const char *name, const char *role,
                        const char *password)
{
    if (strcmp(role, "admin") != 0 && strcmp(role, "agent") != 0)
        return KF_EINVAL;
    size_t len = strlen(email);
    const char *at = strchr(email, '@');
    if (len == 0 || len > KF_MAX_EMAIL_BYTES || at == NULL || at == email || at[1] == '\0' ||
        password[0] == '\0' || kf_utf8_length(name) > KF_MAX_NAME_CHARS)
        return KF_EINVAL;
    char lower[KF_MAX_EMAIL_BYTES + 1];
    for (size_t i = 0; i <= len; i++)
        lower[i] = (char)tolower((unsigned char)email[i]);
    char hash[KF_PASSWORD_HASH_SIZE];
    int rc = kf_auth_password_hash(password, hash);
    if (rc != 0)
        return rc;
    return kf_store_sync_agent_create(store, lower, name, role, hash, kf_now_ms(), NULL);
}
