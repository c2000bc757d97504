/* visitor_api.c: the visitor's side of the JSON API (docs/API.md): starting a session, their
 * messages, read marks, typing and push tickets. Every route but the session's start takes the
 * visitor's bearer token, checked by the dispatcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "chat/events.h"
#include "chat/handlers.h"

/* The caller as an actor. */
static kf_actor_t visitor(const kf_call_t *call)
{
    return (kf_actor_t){'v', call->who->visitor.id, NULL};
}

/* A new visitor waiting for their row. */
typedef struct visitor_wait {
    kf_wait_t base;
    kf_app_t *app;
    char token[KF_TOKEN_SIZE];
    char hash[KF_HASH_HEX_SIZE];
    kf_visitor_auth_t visitor;
} visitor_wait_t;

static void visitor_created_cb(void *ctx, const kf_store_result_t *r)
{
    visitor_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (r->rc == 0) {
        w->visitor.id = r->id;
        kf_authn_remember_visitor(w->app->authn, w->hash, &w->visitor);
        kf_replay_note_new_visitor(w->app->replay, r->id);
    }
    if (req != NULL && r->rc != 0)
        kf_call_fail(req, r->rc, NULL);
    else if (req != NULL)
        kf_resp_json(req, 201,
                     json_pack("{s:s,s:{s:I,s:s,s:b}}", "token", w->token, "visitor", "id",
                               (json_int_t)r->id, "name", w->visitor.name, "verified", false));
    free(w);
}

void kf_visitor_session_create(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    /* New visitors per address: each comes with fresh request and message buckets, so without
     * this a script would start a new visitor for each burst. */
    int64_t wait_ms = 0;
    char address[KF_PEER_SIZE];
    kf_req_peer_key(req, address);
    if (!kf_limits_new_visitor(app->limits, address, &wait_ms)) {
        kf_call_rate_limited(req, wait_ms, "new visitors from this address");
        return;
    }
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    /* A body with a signature is the site vouching for its user; one without is anonymous. */
    if (json_object_get(root, "sig") != NULL || json_object_get(root, "user_id") != NULL) {
        kf_visitor_identify(call, root);
        json_decref(root);
        return;
    }
    if (app->config.require_verified) {
        json_decref(root);
        kf_call_log(req, "an unverified visitor while verification is required");
        kf_resp_error(req, 401, "verification_required",
                      "this site accepts only visitors its own server has signed in");
        return;
    }
    const char *name = "";
    json_t *name_json = json_object_get(root, "name");
    if (name_json != NULL && !json_is_null(name_json)) {
        if (!json_is_string(name_json) ||
            kf_utf8_length(json_string_value(name_json)) > KF_MAX_NAME_CHARS) {
            json_decref(root);
            kf_call_fail(req, KF_EINVAL, "name must be a string of at most 80 characters");
            return;
        }
        name = json_string_value(name_json);
    }
    visitor_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    char *trimmed = kf_trim_copy(name);
    snprintf(w->visitor.name, sizeof w->visitor.name, "%s", trimmed);
    free(trimmed);
    json_decref(root);
    if (kf_auth_random_token(w->token) != 0) {
        free(w);
        kf_call_fail(req, KF_EIO, NULL);
        return;
    }
    kf_auth_sha256_hex(w->token, strlen(w->token), w->hash);
    kf_call_hold(req, w,
                 app->store->ops->visitor_create(app->store, w->hash, w->visitor.name,
                                                 kf_clock_wall_ms(), visitor_created_cb, w));
}

/* The visitor's session on its way to an answer: their conversation's status is read, so that
 * a page opened after it was resolved says so (the event that told it was for an earlier page). */
typedef struct session_wait {
    kf_wait_t base;
    kf_app_t *app;
    kf_visitor_auth_t visitor;
} session_wait_t;

static void session_answer(session_wait_t *w, json_t *conversation)
{
    kf_resp_json(w->base.req, 200,
                 json_pack("{s:{s:I,s:s,s:b},s:o}", "visitor", "id", (json_int_t)w->visitor.id,
                           "name", w->visitor.name, "verified", w->visitor.verified, "conversation",
                           conversation));
}

static void session_conversation_cb(void *ctx, const kf_store_result_t *r)
{
    session_wait_t *w = ctx;
    if (w->base.req != NULL && r->rc != 0)
        kf_call_fail(w->base.req, r->rc, NULL);
    else if (w->base.req != NULL)
        session_answer(w, kf_chat_visitor_conversation_json(r->conversation));
    free(w);
}

static void session_thread_cb(void *ctx, const kf_store_result_t *r)
{
    session_wait_t *w = ctx;
    int rc = r->rc;
    if (w->base.req != NULL && rc == 0) {
        kf_store_t *store = w->app->store;
        rc = store->ops->conversation_get(store, r->id, session_conversation_cb, w);
        if (rc == 0)
            return;
    }
    if (w->base.req != NULL && rc == KF_ENOTFOUND) /* nothing written yet */
        session_answer(w, json_null());
    else if (w->base.req != NULL)
        kf_call_fail(w->base.req, rc, NULL);
    free(w);
}

void kf_visitor_session_get(const kf_call_t *call)
{
    kf_store_t *store = call->app->store;
    session_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    w->visitor = call->who->visitor;
    kf_call_hold(call->req, w,
                 store->ops->conversation_of_visitor(store, w->visitor.id, session_thread_cb, w));
}

void kf_visitor_message_post(const kf_call_t *call)
{
    int64_t wait_ms = 0;
    if (!kf_limits_visitor_message(call->app->limits, call->who->visitor.id, &wait_ms)) {
        kf_call_rate_limited(call->req, wait_ms, "messages");
        return;
    }
    kf_call_send(call, visitor(call), 0);
}

void kf_visitor_messages_get(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    uint64_t after;
    if (!kf_call_after(call->req, &after))
        return;
    kf_messages_wait_t *w = kf_call_messages_new(app);
    int rc = app->store->ops->messages_of_visitor(app->store, call->who->visitor.id, (int64_t)after,
                                                  KF_PAGE_SIZE, kf_call_messages_row,
                                                  kf_call_messages_done, w);
    if (rc != 0)
        kf_call_messages_free(w);
    kf_call_hold(call->req, w, rc);
}

void kf_visitor_read_post(const kf_call_t *call)
{
    kf_call_act(call, kf_chat_read, "up_to", visitor(call), 0, KF_ANSWER_OK);
}

void kf_visitor_typing_post(const kf_call_t *call)
{
    kf_call_act(call, kf_chat_typing_draft, NULL, visitor(call), 0, KF_ANSWER_OK);
}

void kf_visitor_ticket_post(const kf_call_t *call)
{
    kf_call_ticket(call);
}
