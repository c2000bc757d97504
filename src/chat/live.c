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

/* One replay call of the push module's (kf_push_source_t), on its way through the store. */
struct kf_live_replay {
    kf_live_replay_t *next; /* in app->deferred_replays */
    kf_app_t *app;
    int64_t visitor_id; /* 0 for agents: every conversation */
    uint64_t after;
    size_t limit;
    kf_push_emit_fn emit;
    kf_push_replayed_fn replayed;
    void *emit_ctx;
    int stopped_by;   /* what replay_message_cb returned to stop the query, or 0 */
    int emit_stopped; /* what emit returned to stop it, or 0 */
};

static int replay_message_cb(void *ctx, const kf_message_t *m)
{
    kf_live_replay_t *replay = ctx;
    kf_event_t *event = kf_chat_message_event(m);
    if (event == NULL) {
        replay->stopped_by = KF_ENOMEM;
        return KF_ENOMEM;
    }
    int rc = replay->emit(replay->emit_ctx, event);
    kf_event_unref(event);
    replay->stopped_by = rc;
    replay->emit_stopped = rc;
    return rc;
}

/* Slots of app->newest_by_visitor: 16 bytes each. */
#define NEWEST_SLOTS 16384

static kf_chat_newest_t *newest_slot(kf_app_t *app, int64_t visitor_id)
{
    if (app->newest_by_visitor == NULL)
        app->newest_by_visitor = kf_xcalloc(NEWEST_SLOTS, sizeof *app->newest_by_visitor);
    return &app->newest_by_visitor[(uint64_t)visitor_id % NEWEST_SLOTS];
}

/* No stored message of the visitor is above message_id. */
static void remember_visitor(kf_app_t *app, int64_t visitor_id, int64_t message_id)
{
    kf_chat_newest_t *slot = newest_slot(app, visitor_id);
    slot->visitor_id = visitor_id;
    slot->message_id = message_id;
}

/* No stored message is above message_id. */
static void remember_overall(kf_app_t *app, int64_t message_id)
{
    if (message_id > app->newest_overall)
        app->newest_overall = message_id;
}

void kf_live_note_message(kf_app_t *app, int64_t visitor_id, int64_t message_id)
{
    /* Commits come back in id order and ids only grow, so this one is the visitor's newest, and
     * above every message stored before; one stored since but not yet come back will be
     * published after any stream that skips its replay now has subscribed. */
    remember_visitor(app, visitor_id, message_id);
    remember_overall(app, message_id);
}

/* True when nothing stored is above after for this stream, as far as we know without a query. */
static bool nothing_to_replay(kf_app_t *app, int64_t visitor_id, uint64_t after)
{
    if (after > INT64_MAX)
        return false;
    if (visitor_id == 0)
        return app->newest_overall >= 0 && (int64_t)after >= app->newest_overall;
    kf_chat_newest_t *slot = newest_slot(app, visitor_id);
    return slot->visitor_id == visitor_id && (int64_t)after >= slot->message_id;
}

/* A query found nothing above after: no stored message of the stream is. (A message committed
 * since is published later, and noted then.) */
static void note_nothing_above(kf_app_t *app, int64_t visitor_id, uint64_t after)
{
    if (after > INT64_MAX)
        return;
    if (visitor_id == 0)
        remember_overall(app, (int64_t)after);
    else
        remember_visitor(app, visitor_id, (int64_t)after);
}

static void replayed_cb(void *ctx, const kf_store_result_t *r)
{
    kf_live_replay_t *replay = ctx;
    if (r->rc == 0 && r->count == 0)
        note_nothing_above(replay->app, replay->visitor_id, replay->after);
    /* The transport decides what to answer; the failure of the store is ours to log. A stop
     * asked for by emit (its client is gone) is no failure. */
    if (r->rc != 0 && r->rc != replay->stopped_by)
        kf_error("store failure while replaying: %s", kf_strerror(r->rc));
    replay->replayed(replay->emit_ctx, r->rc == replay->emit_stopped ? 0 : r->rc,
                     r->count >= (int64_t)replay->limit);
    free(replay);
}

/* The push module's replay source (kf_push_source_t): a query of the store, whose callbacks
 * emit. A stream whose cursor is current needs no query; its replayed still comes later, from
 * the loop's next store wake-up (kf_live_run_deferred), never from inside this call. */
static int replay(void *ctx, char kind, int64_t subject, uint64_t after, size_t limit,
                  kf_push_emit_fn emit, kf_push_replayed_fn replayed, void *emit_ctx)
{
    kf_app_t *app = ctx;
    kf_live_replay_t *replay = kf_xcalloc(1, sizeof *replay);
    *replay = (kf_live_replay_t){.app = app,
                                 .visitor_id = kind == 'v' ? subject : 0,
                                 .after = after,
                                 .limit = limit,
                                 .emit = emit,
                                 .replayed = replayed,
                                 .emit_ctx = emit_ctx};
    /* Most streams open with a current cursor (a page load, a reconnect): no query for them. */
    if (nothing_to_replay(app, replay->visitor_id, after)) {
        if (app->deferred_replays == NULL)
            app->deferred_replays = replay;
        else
            app->deferred_replays_tail->next = replay;
        app->deferred_replays_tail = replay;
        uv_async_send(app->store_wakeup);
        return 0;
    }
    kf_store_t *store = app->store;
    int64_t from = after > INT64_MAX ? INT64_MAX : (int64_t)after;
    int rc =
        replay->visitor_id != 0
            ? store->ops->messages_of_visitor(store, replay->visitor_id, from, limit,
                                              replay_message_cb, replayed_cb, replay)
            : store->ops->messages_all(store, from, limit, replay_message_cb, replayed_cb, replay);
    if (rc != 0) {
        kf_error("store failure while replaying: %s", kf_strerror(rc));
        free(replay);
    }
    return rc;
}

size_t kf_live_run_deferred(kf_app_t *app)
{
    kf_live_replay_t *replay = app->deferred_replays;
    app->deferred_replays = app->deferred_replays_tail = NULL;
    size_t count = 0;
    while (replay != NULL) {
        kf_live_replay_t *next = replay->next;
        replay->replayed(replay->emit_ctx, 0, false);
        free(replay);
        replay = next;
        count++;
    }
    return count;
}

/* ---- push connections per listener ---- */

/* A listener (a visitor or an agent) with push connections open. Counted so that no one holds an
 * unbounded share of the server's connections; an entry lives while connections > 0. */
struct kf_push_holder {
    kf_push_holder_t *chain; /* next entry in the same hash bucket */
    kf_app_t *app;
    char kind;          /* 'v' visitor, 'a' agent */
    int64_t subject;    /* their id */
    size_t connections; /* held long polls, streams and WebSockets open now */
};

/* Buckets of the table when it is created; it doubles when it holds more listeners. */
#define HOLDER_MIN_BUCKETS 64

/* Ids are the database's, not chosen by clients: a multiplicative hash spreads them. */
static size_t holder_bucket(size_t bucket_count, char kind, int64_t subject)
{
    uint64_t x = ((uint64_t)subject << 1 | (kind == 'a')) * 0x9e3779b97f4a7c15u;
    return (size_t)(x >> 32) & (bucket_count - 1);
}

static void holder_resize(kf_app_t *app, size_t bucket_count)
{
    kf_push_holder_t **old = app->push_holders;
    size_t old_count = app->push_holder_buckets;
    app->push_holders = kf_xcalloc(bucket_count, sizeof *app->push_holders);
    app->push_holder_buckets = bucket_count;
    for (size_t i = 0; i < old_count; i++) {
        kf_push_holder_t *next;
        for (kf_push_holder_t *holder = old[i]; holder != NULL; holder = next) {
            next = holder->chain;
            size_t b = holder_bucket(bucket_count, holder->kind, holder->subject);
            holder->chain = app->push_holders[b];
            app->push_holders[b] = holder;
        }
    }
    free(old);
}

static kf_push_holder_t *holder_find(const kf_app_t *app, char kind, int64_t subject)
{
    if (app->push_holder_buckets == 0)
        return NULL;
    size_t b = holder_bucket(app->push_holder_buckets, kind, subject);
    kf_push_holder_t *holder = app->push_holders[b];
    while (holder != NULL && (holder->kind != kind || holder->subject != subject))
        holder = holder->chain;
    return holder;
}

static kf_push_holder_t *holder_add(kf_app_t *app, char kind, int64_t subject)
{
    if (app->push_holder_buckets == 0)
        holder_resize(app, HOLDER_MIN_BUCKETS);
    else if (app->push_holder_count >= app->push_holder_buckets)
        holder_resize(app, 2 * app->push_holder_buckets);
    kf_push_holder_t *holder = kf_xcalloc(1, sizeof *holder);
    holder->app = app;
    holder->kind = kind;
    holder->subject = subject;
    size_t b = holder_bucket(app->push_holder_buckets, kind, subject);
    holder->chain = app->push_holders[b];
    app->push_holders[b] = holder;
    app->push_holder_count++;
    return holder;
}

static void holder_remove(kf_app_t *app, kf_push_holder_t *holder)
{
    kf_push_holder_t **link =
        &app->push_holders[holder_bucket(app->push_holder_buckets, holder->kind, holder->subject)];
    while (*link != holder)
        link = &(*link)->chain;
    *link = holder->chain;
    app->push_holder_count--;
    free(holder);
}

static void holder_end_cb(kf_req_t *req, void *data)
{
    (void)req;
    kf_push_holder_t *holder = data;
    if (--holder->connections == 0)
        holder_remove(holder->app, holder);
}

/* The most push connections kind may hold open at once; 0 for no limit. */
static size_t holder_max(const kf_app_t *app, char kind)
{
    return kind == 'v' ? app->config.max_push_per_visitor : app->config.max_push_per_agent;
}

/* Counts req among its listener's push connections until it ends, when the push module kept it
 * open (held, streaming or upgraded); an answered request is not counted. */
static void holder_count(kf_app_t *app, kf_req_t *req, char kind, int64_t subject)
{
    kf_push_holder_t *holder = holder_find(app, kind, subject);
    if (holder == NULL)
        holder = holder_add(app, kind, subject);
    if (kf_req_on_end(req, holder_end_cb, holder) == 0)
        holder->connections++;
    else if (holder->connections == 0)
        holder_remove(app, holder);
}

void kf_live_free(kf_app_t *app)
{
    for (size_t i = 0; i < app->push_holder_buckets; i++) {
        kf_push_holder_t *next;
        for (kf_push_holder_t *holder = app->push_holders[i]; holder != NULL; holder = next) {
            next = holder->chain;
            free(holder); /* none is left once the server has closed every connection */
        }
    }
    free(app->push_holders);
    app->push_holders = NULL;
    app->push_holder_buckets = app->push_holder_count = 0;
    free(app->newest_by_visitor);
    app->newest_by_visitor = NULL;
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

/* Reads a push request's cursor and long-poll hold; answers 400 for bad ones (and 403 for a
 * WebSocket from a foreign origin) and returns false. */
static bool read_push_query(kf_req_t *req, kf_push_transport_t transport, uint64_t *after,
                            uint64_t *hold_ms)
{
    if (!kf_chat_read_after(req, after))
        return false;
    *hold_ms = 0;
    char value[24];
    int n = kf_http_query_get(req->head->query, "timeout", value, sizeof value);
    if (n != KF_ENOTFOUND) {
        uint64_t seconds;
        if (n < 0 || kf_parse_u64((kf_str_t){value, (size_t)n}, &seconds) != 0 || seconds < 1 ||
            seconds > 55) {
            kf_resp_error(req, 400, "bad_request", "timeout must be 1 to 55 seconds");
            return false;
        }
        *hold_ms = seconds * 1000;
    }
    if (transport == KF_PUSH_WS && !origin_allowed(req)) {
        kf_chat_log_request(req, "WebSocket from a foreign origin refused");
        kf_resp_error(req, 403, "forbidden", "this origin may not open a WebSocket here");
        return false;
    }
    return true;
}

/* Serves the push request of a listener whose credentials are known. */
static void serve_as(kf_req_t *req, kf_push_transport_t transport, char kind, int64_t subject)
{
    kf_app_t *app = req->app;
    uint64_t after, hold_ms;
    if (!read_push_query(req, transport, &after, &hold_ms))
        return; /* checked before the credentials, so never */
    kf_push_source_t source = {.replay = replay, .ctx = app, .kind = kind, .subject = subject};
    char topic[40];
    if (kind == 'v')
        kf_chat_visitor_topic(subject, topic, sizeof topic);
    else
        snprintf(topic, sizeof topic, "%s", KF_AGENTS_TOPIC);
    source.topic = topic;
    if (kind == 'v' && !kf_chat_visitor_request_allowed(req, subject))
        return;
    /* A short poll is answered at once; the rest may stay open, and are counted while they do.
     * Past the limit the new one is refused (before the WebSocket upgrade), not an old one
     * dropped: the old ones may be the person's other tabs. */
    bool counted = transport != KF_PUSH_POLL && holder_max(app, kind) > 0;
    if (counted) {
        const kf_push_holder_t *holder = holder_find(app, kind, subject);
        if (holder != NULL && holder->connections >= holder_max(app, kind)) {
            kf_debug("push request from %s refused: %c%lld holds %zu connections", kf_req_peer(req),
                     kind, (long long)subject, holder->connections);
            kf_resp_error(req, 429, "too_many_connections",
                          kind == 'v' ? "too many push connections open for this visitor"
                                      : "too many push connections open for this agent");
            return;
        }
    }
    kf_push_serve(app->push, req, transport, &source, after, hold_ms);
    if (counted)
        holder_count(app, req, kind, subject);
}

/* Neither a ticket nor a visitor token: the agent's session cookie, or nobody. */
static void serve_agent_cb(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                           int64_t transport)
{
    (void)data;
    if (auth->rc == KF_EAUTH)
        kf_resp_error(req, 401, "unauthorized",
                      "a visitor token, agent session or push ticket is required");
    else if (auth->rc != 0)
        kf_chat_store_failed(req, auth->rc);
    else
        serve_as(req, (kf_push_transport_t)transport, 'a', auth->agent.id);
}

static void serve_visitor_cb(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                             int64_t transport)
{
    (void)data;
    if (auth->rc == KF_EAUTH)
        kf_chat_cookie_agent(req, serve_agent_cb, NULL, transport);
    else if (auth->rc != 0)
        kf_chat_store_failed(req, auth->rc);
    else
        serve_as(req, (kf_push_transport_t)transport, 'v', auth->visitor.id);
}

/* Credentials, in order: a push ticket, a visitor token, an agent session (docs/API.md). */
static void serve(kf_req_t *req, kf_push_transport_t transport)
{
    kf_app_t *app = req->app;
    uint64_t after, hold_ms;
    if (!read_push_query(req, transport, &after, &hold_ms))
        return;
    char value[KF_TICKET_SIZE];
    int n = kf_http_query_get(req->head->query, "ticket", value, sizeof value);
    if (n == KF_ENOTFOUND) {
        kf_chat_bearer_visitor(req, serve_visitor_cb, NULL, transport);
        return;
    }
    char kind;
    int64_t subject;
    int rc = n < 0 ? KF_EAUTH
                   : kf_auth_ticket_verify(app->ticket_key, sizeof app->ticket_key, value,
                                           (size_t)n, kf_now_ms(), &kind, &subject);
    if (rc != 0) {
        kf_chat_log_request(req, "bad push ticket");
        kf_resp_error(req, 401, "unauthorized",
                      rc == KF_EEXPIRED ? "the push ticket has expired" : "invalid push ticket");
        return;
    }
    serve_as(req, transport, kind, subject);
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
    reply(client,
          json_pack("{s:s,s:O,s:{s:s,s:s}}", "type", "error", "ref",
                    ref != NULL ? ref : json_null(), "error", "code", code, "message", message));
}

/* A WebSocket action waiting for its commit: the ack (or error) goes out after it. */
typedef struct waiting_ack {
    kf_push_client_t *client; /* referenced until the answer */
    json_t *ref;              /* the client's "ref", echoed (a reference, or NULL) */
} waiting_ack_t;

static void waiting_ack_free(waiting_ack_t *waiting)
{
    json_decref(waiting->ref);
    kf_push_client_unref(waiting->client);
    free(waiting);
}

/* {"type":"ack","ref":...,"message":...} around the stored message's JSON text. */
static void reply_ack_message(kf_push_client_t *client, json_t *ref, const char *message_text)
{
    char *ref_text = json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY);
    if (ref_text == NULL)
        return;
    kf_buf_t text;
    kf_buf_init(&text);
    kf_buf_append_str(&text, "{\"type\":\"ack\",\"ref\":");
    kf_buf_append_str(&text, ref_text);
    kf_buf_append_str(&text, ",\"message\":");
    kf_buf_append_str(&text, message_text);
    kf_buf_append_str(&text, "}");
    kf_push_client_send(client, text.data, text.len);
    kf_buf_free(&text);
    free(ref_text);
}

static void committed_ack_cb(kf_app_t *app, void *data, const char *result,
                             const kf_chat_error_t *err)
{
    (void)app;
    waiting_ack_t *waiting = data;
    json_t *ref = waiting->ref != NULL ? waiting->ref : json_null();
    if (err != NULL)
        reply_error(waiting->client, ref, err->status, err->code, err->message);
    else if (result != NULL)
        reply_ack_message(waiting->client, ref, result);
    else
        reply(waiting->client, json_pack("{s:s,s:O}", "type", "ack", "ref", ref));
    waiting_ack_free(waiting);
}

/* Typing is not acknowledged: only an error is answered. */
static void typed_cb(kf_app_t *app, void *data, const char *result, const kf_chat_error_t *err)
{
    (void)app;
    (void)result;
    waiting_ack_t *waiting = data;
    if (err != NULL)
        reply_error(waiting->client, waiting->ref != NULL ? waiting->ref : json_null(), err->status,
                    err->code, err->message);
    waiting_ack_free(waiting);
}

static waiting_ack_t *waiting_ack_new(kf_push_client_t *client, json_t *ref)
{
    waiting_ack_t *waiting = kf_xcalloc(1, sizeof *waiting);
    waiting->client = client;
    waiting->ref = json_incref(ref);
    kf_push_client_ref(client);
    return waiting;
}

/* Like reply_error for 429, with the wait in seconds as "retry_after" (no header to carry it). */
static void reply_rate_limited(kf_push_client_t *client, json_t *ref, int64_t retry_after_ms)
{
    int64_t wait_s = kf_chat_retry_after_s(retry_after_ms);
    char message[96];
    snprintf(message, sizeof message, "too many messages; try again in %lld s", (long long)wait_s);
    reply(client, json_pack("{s:s,s:O,s:{s:s,s:s,s:I}}", "type", "error", "ref",
                            ref != NULL ? ref : json_null(), "error", "code", "rate_limited",
                            "message", message, "retry_after", (json_int_t)wait_s));
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
    kf_actor_t who = {kind, subject, NULL};
    kf_chat_error_t err;
    int rc = 0;
    int64_t wait_ms = 0;
    if (type == NULL) {
        reply_error(client, ref, 400, "bad_request", "an action needs a \"type\"");
    } else if (kind == 'v' && !kf_chat_visitor_take(app->visitor_requests, subject, &wait_ms)) {
        /* Each action costs a visitor what the same over HTTP would: one request (and a send,
         * one message too), so that a socket is no way around the limits (typing floods). */
        reply_rate_limited(client, ref, wait_ms);
    } else if (strcmp(type, "send") == 0 && kind == 'v' &&
               !kf_chat_visitor_take(app->visitor_messages, subject, &wait_ms)) {
        reply_rate_limited(client, ref, wait_ms);
    } else if (strcmp(type, "send") == 0 || strcmp(type, "read") == 0 ||
               strcmp(type, "typing") == 0) {
        /* Answered from the store's callbacks (the client kept referenced until then): a send or
         * a read once durable, when the writer thread has committed it; typing only on error. */
        waiting_ack_t *waiting = waiting_ack_new(client, ref);
        if (strcmp(type, "send") == 0)
            rc = kf_chat_send(app, who, conversation_id, json_object_get(root, "body"),
                              committed_ack_cb, waiting, &err);
        else if (strcmp(type, "read") == 0)
            rc = kf_chat_read(app, who, conversation_id, json_object_get(root, "up_to"),
                              committed_ack_cb, waiting, &err);
        else
            rc = kf_chat_typing(app, who, conversation_id, json_object_get(root, "typing"),
                                typed_cb, waiting, &err);
        if (rc != 0)
            waiting_ack_free(waiting);
    } else if (strcmp(type, "ping") == 0) {
        reply(client,
              json_pack("{s:s,s:O}", "type", "pong", "ref", ref != NULL ? ref : json_null()));
    } else {
        reply_error(client, ref, 400, "bad_request", "unknown action type");
    }
    if (rc != 0)
        reply_error(client, ref, err.status, err.code, err.message);
    json_decref(root);
}
