/* ws_actions.c: the actions WebSocket clients send (docs/PROTOCOL.md, "WebSocket actions"):
 * send, read, typing, page (a visitor's page report) and ping, answered with an ack, an error or a
 * pong that echoes the action's ref. The same actions as over HTTP (chat/actions.h), under the same
 * limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "chat/handlers.h"

static void reply(kf_push_client_t *client, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text != NULL)
        kf_push_client_send(client, text, strlen(text));
    free(text);
}

static void reply_error(kf_push_client_t *client, json_t *ref, int rc, const char *message)
{
    const char *code = kf_call_error_code(rc);
    if (strcmp(code, "internal") == 0)
        kf_error("WebSocket action failed: %s", kf_strerror(rc));
    reply(client,
          json_pack("{s:s,s:O,s:{s:s,s:s}}", "type", "error", "ref",
                    ref != NULL ? ref : json_null(), "error", "code", code, "message", message));
}

/* Like reply_error for a rate limit, with the wait in seconds as "retry_after" (no header to
 * carry it). */
static void reply_rate_limited(kf_push_client_t *client, json_t *ref, int64_t retry_after_ms,
                               const char *what)
{
    int64_t wait_s = kf_limits_seconds(retry_after_ms);
    char message[96];
    snprintf(message, sizeof message, "too many %s; try again in %lld s", what, (long long)wait_s);
    reply(client, json_pack("{s:s,s:O,s:{s:s,s:s,s:I}}", "type", "error", "ref",
                            ref != NULL ? ref : json_null(), "error", "code", "rate_limited",
                            "message", message, "retry_after", (json_int_t)wait_s));
}

/* An action waiting for its store callbacks: the ack (or error) goes out after them. */
typedef struct waiting_ack {
    kf_push_client_t *client; /* referenced until the answer */
    json_t *ref;              /* the client's "ref", echoed (a reference, or NULL) */
    bool quiet;               /* typing: answered only on error */
} waiting_ack_t;

static waiting_ack_t *waiting_ack_new(kf_push_client_t *client, json_t *ref, bool quiet)
{
    waiting_ack_t *waiting = kf_xcalloc(1, sizeof *waiting);
    waiting->client = client;
    waiting->ref = json_incref(ref);
    waiting->quiet = quiet;
    kf_push_client_ref(client);
    return waiting;
}

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

static void done_cb(void *data, const kf_chat_outcome_t *outcome)
{
    waiting_ack_t *waiting = data;
    json_t *ref = waiting->ref != NULL ? waiting->ref : json_null();
    if (outcome->rc != 0)
        reply_error(waiting->client, ref, outcome->rc, outcome->why);
    else if (waiting->quiet)
        ; /* typing: nothing to say when it worked */
    else if (outcome->message != NULL)
        reply_ack_message(waiting->client, ref, outcome->message);
    else
        reply(waiting->client, json_pack("{s:s,s:O}", "type", "ack", "ref", ref));
    waiting_ack_free(waiting);
}

/* A send's idempotency key ("key": a string of 1 to 255 visible ASCII characters, as the HTTP
 * header's); false for a malformed one. */
static bool read_key(json_t *root, const char **key)
{
    json_t *value = json_object_get(root, "key");
    *key = NULL;
    if (value == NULL || json_is_null(value))
        return true;
    const char *text = json_string_value(value);
    size_t len = text != NULL ? json_string_length(value) : 0;
    if (text == NULL || len == 0 || len > 255 || strlen(text) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < 0x21 || text[i] > 0x7e)
            return false;
    }
    *key = text;
    return true;
}

/* Runs a send, read or typing action for who; its answer goes out from the store's callbacks. */
static void act(kf_app_t *app, kf_push_client_t *client, kf_actor_t who, const char *type,
                json_t *root, json_t *ref)
{
    json_t *conversation = json_object_get(root, "conversation_id");
    int64_t conversation_id = json_is_integer(conversation) ? json_integer_value(conversation) : 0;
    bool typing = strcmp(type, "typing") == 0;
    waiting_ack_t *waiting = waiting_ack_new(client, ref, typing);
    kf_chat_error_t err;
    int rc;
    const char *key = NULL;
    if (strcmp(type, "send") == 0 && !read_key(root, &key)) {
        rc = KF_EINVAL;
        snprintf(err.message, sizeof err.message, "key must be 1 to 255 visible ASCII characters");
    } else if (strcmp(type, "send") == 0) {
        rc = kf_chat_send(app, who, conversation_id, json_object_get(root, "body"),
                          json_object_get(root, "private"), key, done_cb, waiting, &err);
    } else if (strcmp(type, "read") == 0) {
        rc = kf_chat_read(app, who, conversation_id, json_object_get(root, "up_to"), done_cb,
                          waiting, &err);
    } else if (strcmp(type, "page") == 0) {
        rc = kf_visitor_page_report(app, who.id, root, done_cb, waiting, &err);
    } else {
        rc = kf_chat_typing_draft(app, who, conversation_id, root, done_cb, waiting, &err);
    }
    if (rc != 0) {
        waiting_ack_free(waiting);
        reply_error(client, ref, rc, err.message);
    }
}

void kf_ws_receive(void *ctx, kf_push_client_t *client, char kind, int64_t subject,
                   const char *text, size_t len)
{
    kf_app_t *app = ctx;
    json_error_t error;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        reply(client,
              json_pack("{s:s,s:n,s:{s:s,s:s}}", "type", "error", "ref", "error", "code",
                        "bad_json", "message", "each WebSocket message is one JSON object"));
        return;
    }
    json_t *ref = json_object_get(root, "ref");
    if (ref != NULL && !json_is_string(ref) && !json_is_integer(ref))
        ref = NULL;
    const char *type = json_string_value(json_object_get(root, "type"));
    int64_t wait_ms = 0;
    if (type == NULL) {
        reply_error(client, ref, KF_EPROTO, "an action needs a \"type\"");
    } else if (kind == 'd' && strcmp(type, "ping") != 0) {
        /* The connection check's socket (chat/diag_api.c) is nobody's: it may only ping. */
        reply_error(client, ref, KF_EPROTO, "a connection check's socket takes only ping");
    } else if (kind == 'v' && !kf_limits_visitor_request(app->limits, subject, &wait_ms)) {
        /* Each action costs a visitor what the same over HTTP would: one request (and a send,
         * one message too), so that a socket is no way around the limits (typing floods). */
        reply_rate_limited(client, ref, wait_ms, "messages");
    } else if (strcmp(type, "send") == 0 && kind == 'v' &&
               !kf_limits_visitor_message(app->limits, subject, &wait_ms)) {
        reply_rate_limited(client, ref, wait_ms, "messages");
    } else if (strcmp(type, "page") == 0 && kind == 'v' &&
               !kf_limits_visitor_page(app->limits, subject, &wait_ms)) {
        reply_rate_limited(client, ref, wait_ms, "page reports");
    } else if (strcmp(type, "send") == 0 || strcmp(type, "read") == 0 ||
               strcmp(type, "typing") == 0 || (strcmp(type, "page") == 0 && kind == 'v')) {
        act(app, client, (kf_actor_t){kind, subject, NULL}, type, root, ref);
    } else if (strcmp(type, "ping") == 0) {
        reply(client,
              json_pack("{s:s,s:O}", "type", "pong", "ref", ref != NULL ? ref : json_null()));
    } else {
        reply_error(client, ref, KF_EPROTO, "unknown action type");
    }
    json_decref(root);
}
