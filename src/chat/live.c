/* live.c: the push endpoints — who may listen to which stream, how stored messages are replayed
 * after a cursor — and the actions WebSocket clients send (docs/PROTOCOL.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/log.h"
#include "chat/chat.h"

/* ---- replay ---- */

typedef struct replay_ctx {
    kf_app_t *app;
    int64_t visitor_id; /* 0 for agents: every conversation */
    kf_push_emit_fn emit;
    void *emit_ctx;
    size_t count;
} replay_ctx_t;

static int replay_message_cb(void *ctx, const kf_message_t *m)
{
    replay_ctx_t *replay = ctx;
    kf_event_t *event = kf_chat_message_event(m);
    if (event == NULL)
        return KF_ENOMEM;
    int rc = replay->emit(replay->emit_ctx, event);
    kf_event_unref(event);
    replay->count++;
    return rc;
}

static int replay(void *ctx, uint64_t after, size_t limit, kf_push_emit_fn emit, void *emit_ctx,
                  bool *more)
{
    replay_ctx_t *replay = ctx;
    kf_store_t *store = replay->app->store;
    replay->emit = emit;
    replay->emit_ctx = emit_ctx;
    replay->count = 0;
    int rc = replay->visitor_id != 0
                 ? store->ops->messages_of_visitor(store, replay->visitor_id, (int64_t)after, limit,
                                                   replay_message_cb, replay)
                 : store->ops->messages_all(store, (int64_t)after, limit, replay_message_cb, replay);
    *more = replay->count >= limit;
    return rc;
}

/* ---- who listens ---- */

/* A browser's WebSocket carries the agent's cookie whichever page opened it, so a cross-site page
 * could ride on it (cross-site WebSocket hijacking): only our own origin and configured ones may
 * connect. Clients that send no Origin are not browsers and prove themselves with credentials. */
static bool origin_allowed(kf_req_t *req)
{
    kf_app_t *app = req->app;
    const kf_str_t *origin = kf_http_header_get(req->head, "Origin");
    if (origin == NULL)
        return true;
    const kf_str_t *host = kf_http_header_get(req->head, "Host");
    if (host != NULL) {
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

static void serve(kf_req_t *req, kf_push_transport_t transport)
{
    kf_app_t *app = req->app;
    uint64_t after;
    if (!kf_chat_read_after(req, &after))
        return;
    uint64_t hold_ms = 0;
    char value[KF_TICKET_SIZE];
    int n = kf_http_query_get(req->head->query, "timeout", value, sizeof value);
    if (n != KF_ENOTFOUND) {
        uint64_t seconds;
        if (n < 0 || kf_parse_u64((kf_str_t){value, (size_t)n}, &seconds) != 0 || seconds < 1 ||
            seconds > 55) {
            kf_resp_error(req, 400, "bad_request", "timeout must be 1 to 55 seconds");
            return;
        }
        hold_ms = seconds * 1000;
    }
    if (transport == KF_PUSH_WS && !origin_allowed(req)) {
        kf_chat_log_request(req, "WebSocket from a foreign origin refused");
        kf_resp_error(req, 403, "forbidden", "this origin may not open a WebSocket here");
        return;
    }
    replay_ctx_t ctx = {.app = app};
    kf_push_source_t source = {.replay = replay, .ctx = &ctx};
    n = kf_http_query_get(req->head->query, "ticket", value, sizeof value);
    if (n != KF_ENOTFOUND) {
        int rc = n < 0 ? KF_EAUTH
                       : kf_auth_ticket_verify(app->ticket_key, sizeof app->ticket_key, value,
                                               (size_t)n, kf_now_ms(), &source.kind,
                                               &source.subject);
        if (rc != 0) {
            kf_chat_log_request(req, "bad push ticket");
            kf_resp_error(req, 401, "unauthorized",
                          rc == KF_EEXPIRED ? "the push ticket has expired" : "invalid push ticket");
            return;
        }
    } else {
        kf_visitor_auth_t visitor;
        kf_agent_auth_t agent;
        if (kf_chat_bearer_visitor(req, &visitor)) {
            source.kind = 'v';
            source.subject = visitor.id;
        } else if (kf_chat_cookie_agent(req, &agent)) {
            source.kind = 'a';
            source.subject = agent.id;
        } else {
            kf_resp_error(req, 401, "unauthorized",
                          "a visitor token, agent session or push ticket is required");
            return;
        }
    }
    char topic[40];
    if (source.kind == 'v') {
        ctx.visitor_id = source.subject;
        kf_chat_visitor_topic(source.subject, topic, sizeof topic);
    } else {
        snprintf(topic, sizeof topic, "%s", KF_AGENTS_TOPIC);
    }
    source.topic = topic;
    kf_push_serve(app->push, req, transport, &source, after, hold_ms);
}

void kf_live_poll(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    serve(req, KF_PUSH_POLL);
}

void kf_live_longpoll(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    serve(req, KF_PUSH_LONGPOLL);
}

void kf_live_iframe(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    serve(req, KF_PUSH_IFRAME);
}

void kf_live_sse(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    serve(req, KF_PUSH_SSE);
}

void kf_live_ws(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    serve(req, KF_PUSH_WS);
}

/* ---- WebSocket actions ---- */

static void reply(kf_push_client_t *client, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text != NULL)
        kf_push_client_send(client, text, strlen(text));
    free(text);
}

static void reply_error(kf_push_client_t *client, json_t *ref, int status, const char *code,
                        const char *message)
{
    (void)status;
    reply(client, json_pack("{s:s,s:O,s:{s:s,s:s}}", "type", "error", "ref",
                            ref != NULL ? ref : json_null(), "error", "code", code, "message",
                            message));
}

void kf_live_receive(void *ctx, kf_push_client_t *client, char kind, int64_t subject,
                     const char *text, size_t len)
{
    kf_app_t *app = ctx;
    json_error_t error;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        reply_error(client, NULL, 400, "bad_json", "each WebSocket message is one JSON object");
        return;
    }
    json_t *ref = json_object_get(root, "ref");
    if (ref != NULL && !json_is_string(ref) && !json_is_integer(ref))
        ref = NULL;
    const char *type = json_string_value(json_object_get(root, "type"));
    json_t *conversation = json_object_get(root, "conversation_id");
    int64_t conversation_id = json_is_integer(conversation) ? json_integer_value(conversation) : 0;
    kf_actor_t who = {kind, subject};
    kf_chat_error_t err;
    int rc = 0;
    if (type == NULL) {
        reply_error(client, ref, 400, "bad_request", "an action needs a \"type\"");
    } else if (strcmp(type, "send") == 0) {
        json_t *message = NULL;
        rc = kf_chat_send(app, who, conversation_id, json_object_get(root, "body"), &message, &err);
        if (rc == 0)
            reply(client, json_pack("{s:s,s:O,s:o}", "type", "ack", "ref",
                                    ref != NULL ? ref : json_null(), "message", message));
    } else if (strcmp(type, "read") == 0) {
        rc = kf_chat_read(app, who, conversation_id, json_object_get(root, "up_to"), NULL, &err);
        if (rc == 0)
            reply(client, json_pack("{s:s,s:O}", "type", "ack", "ref", ref != NULL ? ref : json_null()));
    } else if (strcmp(type, "typing") == 0) {
        rc = kf_chat_typing(app, who, conversation_id, json_object_get(root, "typing"), &err);
    } else if (strcmp(type, "ping") == 0) {
        reply(client, json_pack("{s:s,s:O}", "type", "pong", "ref", ref != NULL ? ref : json_null()));
    } else {
        reply_error(client, ref, 400, "bad_request", "unknown action type");
    }
    if (rc != 0)
        reply_error(client, ref, err.status, err.code, err.message);
    json_decref(root);
}
