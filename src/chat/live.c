/* live.c: the push endpoints (docs/PROTOCOL.md): which topic a listener follows, from which
 * cursor, over which transport, and how many push connections each may hold. Who the listener
 * is (a ticket, a visitor token, an agent session) the dispatcher has checked. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "chat/events.h"
#include "chat/handlers.h"
#include "chat/invite.h"

/* A browser's WebSocket carries the agent's cookie whichever page opened it, so a cross-site page
 * could ride on it (cross-site WebSocket hijacking): only our own origin and configured ones may
 * connect. Clients that send no Origin are not browsers and prove themselves with credentials. */
static bool origin_allowed(kf_req_t *req)
{
    kf_app_t *app = req->app;
    const kf_str_t *origin = kf_http_header_get(req->head, "Origin");
    if (origin == NULL)
        return true;
    const kf_str_t *host = &req->head->host; /* validated by the parser */
    if (host->len > 0) {
        for (int secure = 0; secure < 2; secure++) {
            const char *scheme = secure ? "https://" : "http://";
            size_t scheme_len = strlen(scheme);
            if (origin->len == scheme_len + host->len &&
                strncasecmp(origin->ptr, scheme, scheme_len) == 0 &&
                strncasecmp(origin->ptr + scheme_len, host->ptr, host->len) == 0)
                return true;
        }
    }
    for (size_t i = 0; i < app->config.allowed_origin_count; i++) {
        if (kf_str_ieq(*origin, app->config.allowed_origins[i]))
            return true;
    }
    return false;
}

/* Reads a push request's long-poll hold (?timeout=, 0 for the default); answers 400 and returns
 * false for a bad one. */
static bool read_hold(kf_req_t *req, uint64_t *hold_ms)
{
    *hold_ms = 0;
    char value[24];
    int n = kf_http_query_get(req->head->query, "timeout", value, sizeof value);
    if (n == KF_ENOTFOUND)
        return true;
    uint64_t seconds;
    if (n < 0 || kf_parse_u64((kf_str_t){value, (size_t)n}, &seconds) != 0 || seconds < 1 ||
        seconds > 55) {
        kf_resp_error(req, 400, "bad_request", "timeout must be 1 to 55 seconds");
        return false;
    }
    *hold_ms = seconds * 1000;
    return true;
}

bool kf_live_check(kf_req_t *req)
{
    uint64_t after, hold_ms;
    if (!kf_call_after(req, &after) || !read_hold(req, &hold_ms))
        return false;
    if (kf_str_eq(req->head->path, "/push/ws") && !origin_allowed(req)) {
        kf_call_log(req, "WebSocket from a foreign origin refused");
        kf_resp_error(req, 403, "forbidden", "this origin may not open a WebSocket here");
        return false;
    }
    return true;
}

/* A push request waiting for the other nodes' count of its listener (kf_quota_fetch), at most
 * FETCH_WAIT_MS: Redis answers in well under a millisecond, and one that hangs without closing
 * the connection must not hang push requests with it (past the wait, local counts decide). */
#define FETCH_WAIT_MS 250

typedef struct quota_wait {
    kf_req_t *req; /* NULL once the client has gone or the request was served */
    kf_push_transport_t transport;
    kf_principal_t who;
    uv_timer_t timer;
    int refs; /* the answer's and the timer's: freed when both are done */
} quota_wait_t;

static void serve_as(kf_req_t *req, kf_push_transport_t transport, const kf_principal_t *who,
                     bool counted);

static void quota_wait_unref(quota_wait_t *wait)
{
    if (--wait->refs == 0)
        free(wait);
}

static void quota_timer_closed_cb(uv_handle_t *handle)
{
    quota_wait_unref(handle->data);
}

static void quota_abort_cb(kf_req_t *req, void *data)
{
    (void)req;
    ((quota_wait_t *)data)->req = NULL;
}

static void quota_resumed_cb(kf_req_t *req, void *data)
{
    quota_wait_t *wait = data;
    kf_req_detach(req);
    serve_as(req, wait->transport, &wait->who, true);
}

/* The answer came, or the wait ran out (closing: the application is going, nothing is served):
 * the first of them serves the request, and closes the timer. */
static void quota_done(quota_wait_t *wait, bool closing)
{
    kf_req_t *req = wait->req;
    wait->req = NULL;
    if (!uv_is_closing((uv_handle_t *)&wait->timer))
        uv_close((uv_handle_t *)&wait->timer, quota_timer_closed_cb);
    if (req != NULL && !closing)
        kf_req_resume(req, quota_resumed_cb, wait);
}

static void quota_fetched_cb(void *data, bool closing)
{
    quota_wait_t *wait = data;
    quota_done(wait, closing);
    quota_wait_unref(wait);
}

static void quota_timeout_cb(uv_timer_t *timer)
{
    quota_done(timer->data, false);
}

/* Serves a push request over transport, for who. counted: the other nodes' count of the
 * listener has just been read (or cannot be): not asked for again. */
static void serve_as(kf_req_t *req, kf_push_transport_t transport, const kf_principal_t *who,
                     bool counted)
{
    kf_app_t *app = req->app;
    uint64_t after, hold_ms;
    if (!kf_call_after(req, &after) || !read_hold(req, &hold_ms))
        return; /* kf_live_check has seen them: never */
    char kind = who->kind;
    int64_t subject = kind == 'v' ? who->visitor.id : who->agent.id;
    char topic[40];
    if (kind == 'v')
        kf_chat_visitor_topic(subject, topic, sizeof topic);
    else
        snprintf(topic, sizeof topic, "%s", KF_AGENTS_TOPIC);
    /* A short poll is answered at once; the rest may stay open, and are counted while they do.
     * Past the limit the new one is refused (before the WebSocket upgrade). */
    bool stays = transport != KF_PUSH_POLL;
    /* Several nodes: what the others hold of this listener counts too. Known from Redis's last
     * answer about it; on its first connection here for a while, read first (one round trip,
     * not on every request: each open and close here brings a fresh answer). */
    if (stays && !counted && !kf_quota_known(app->quota, kind, subject)) {
        quota_wait_t *wait = kf_xmalloc(sizeof *wait);
        wait->req = req;
        wait->transport = transport;
        wait->who = *who;
        wait->refs = 2;
        if (kf_quota_fetch(app->quota, kind, subject, quota_fetched_cb, wait) == 0) {
            kf_req_hold(req, quota_abort_cb, wait);
            uv_timer_init(app->loop, &wait->timer);
            wait->timer.data = wait;
            uv_timer_start(&wait->timer, quota_timeout_cb, FETCH_WAIT_MS, 0);
            return;
        }
        free(wait); /* the bus went meanwhile: local counts only */
    }
    size_t open = 0;
    if (stays && !kf_quota_take(app->quota, req, kind, subject, &open)) {
        kf_debug("push request from %s refused: %c%lld holds %zu connections", kf_req_peer(req),
                 kind, (long long)subject, open);
        kf_resp_error(req, 429, "too_many_connections",
                      kind == 'v' ? "too many push connections open for this visitor"
                                  : "too many push connections open for this agent");
        return;
    }
    /* Before the serve subscribes the stream: the other consoles hear that this one came online;
     * this one reads everyone's, its own too, from GET /api/agents once connected. */
    if (kind == 'a')
        kf_presence_seen(app->presence, subject, kf_clock_mono_ms());
    else
        kf_invite_seen(app, subject, who->visitor.name);
    kf_push_source_t source = kf_replay_source(app->replay, kind, subject, topic);
    kf_push_serve(app->push, req, transport, &source, after, hold_ms);
}

static void serve(const kf_call_t *call, kf_push_transport_t transport)
{
    serve_as(call->req, transport, call->who, false);
}

void kf_live_poll(const kf_call_t *call)
{
    serve(call, KF_PUSH_POLL);
}

void kf_live_longpoll(const kf_call_t *call)
{
    serve(call, KF_PUSH_LONGPOLL);
}

void kf_live_iframe(const kf_call_t *call)
{
    serve(call, KF_PUSH_IFRAME);
}

void kf_live_sse(const kf_call_t *call)
{
    serve(call, KF_PUSH_SSE);
}

void kf_live_ws(const kf_call_t *call)
{
    serve(call, KF_PUSH_WS);
}
