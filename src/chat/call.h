/* call.h: one request to a route of the chat layer as its handler sees it — the request, the
 * application, the path's ids, and who is calling, already checked against the route's declared
 * access by the dispatcher (chat/routes.c) — and the helpers handlers answer with: errors from
 * KF_E* codes, JSON bodies, cursors, and holding a request while the store works for it. */
#ifndef KF_CHAT_CALL_H
#define KF_CHAT_CALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "chat/actions.h"
#include "chat/authn.h"
#include "chat/internal.h"

typedef struct kf_call {
    kf_req_t *req;
    kf_app_t *app;
    const int64_t *ids;        /* the route's {id} values, in order */
    const kf_principal_t *who; /* who calls: NULL on a public route */
} kf_call_t;

/* A route's handler: runs once the caller may (the route's access, CSRF token and the visitor's
 * request limit are checked), with the request's head and body valid during the call. */
typedef void (*kf_call_fn)(const kf_call_t *call);

/* Answers the error a KF_E* code means (its status and API code: docs/API.md) with message, or
 * the code's usual message when message is NULL. Failures that are the server's (500) are
 * logged. */
void kf_call_fail(kf_req_t *req, int rc, const char *message);
/* The API code a KF_E* code answers with ("invalid", "not_found", ...; "internal" for the
 * server's failures), for answers that carry no status (WebSocket errors). */
const char *kf_call_error_code(int rc);
/* Answers 429 rate_limited with Retry-After; what names what there were too many of. */
void kf_call_rate_limited(kf_req_t *req, int64_t retry_after_ms, const char *what);
/* Logs one line about a refused request (at info: the edge decides what is worth a line). */
void kf_call_log(kf_req_t *req, const char *what);
/* Parses the body as a JSON object; answers 415 or 400 and returns NULL when it is not one.
 * Requiring application/json also keeps plain cross-site form posts out (they cannot send it). */
json_t *kf_call_json(kf_req_t *req);
/* Reads the "after" cursor from the query (absent means 0); answers 400 and returns false for a
 * bad one. */
bool kf_call_after(kf_req_t *req, uint64_t *after);

/* A request held while the store (or the hasher) works for it: the first member of what a
 * handler waits with. If the client goes away meanwhile, req becomes NULL, and the callback
 * frees the wait without answering (a write stands all the same). */
typedef struct kf_wait {
    kf_req_t *req;
} kf_wait_t;
/* Holds req for w (allocated by the caller, a kf_wait_t first), once the work w waits for is
 * queued (queued_rc 0); otherwise answers the failure and frees w. Returns whether it holds. A
 * request already held is handed over to w. */
bool kf_call_hold(kf_req_t *req, void *w, int queued_rc);

/* A list on its way into 200 {"<field>": [...]}: a handler makes one, hands its own row callback
 * (appending to items) and kf_call_list_done to a store query with it, and holds the request with
 * kf_call_list_hold. ctx is for the row callback (what a row's JSON needs beside the row). */
typedef struct kf_list_wait {
    kf_wait_t base;
    const char *field; /* a static string */
    json_t *items;
    void *ctx;
} kf_list_wait_t;
kf_list_wait_t *kf_call_list_new(const char *field, void *ctx);
void kf_call_list_done(void *ctx, const kf_store_result_t *r);
/* kf_call_hold for a list: when the query was not queued, frees w and answers the failure. */
void kf_call_list_hold(kf_req_t *req, kf_list_wait_t *w, int queued_rc);

/* What an action's POST answers once it is done (kf_call_act). */
typedef enum {
    KF_ANSWER_MESSAGE,      /* 201 {"message"} (200 for an idempotent repeat) */
    KF_ANSWER_OK,           /* 200 {"ok": true} */
    KF_ANSWER_CONVERSATION, /* 200 {"conversation"} as it is after the action */
} kf_answer_t;
/* An action (kf_chat_send, _read or _typing) on the given field of the request's JSON body (NULL:
 * the whole body), by
 * who on conversation_id; holds the request until the action is done and answers it then. key:
 * the send's idempotency key, or NULL. */
typedef int (*kf_action_fn)(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *value,
                            kf_chat_done_cb done, void *data, kf_chat_error_t *err);
void kf_call_act(const kf_call_t *call, kf_action_fn act, const char *field, kf_actor_t who,
                 int64_t conversation_id, kf_answer_t answer);
/* kf_call_act for a send, with the request's Idempotency-Key (400 for a malformed one). */
void kf_call_send(const kf_call_t *call, kf_actor_t who, int64_t conversation_id);
/* kf_call_act for an upload: a message carrying attachment (checked by the caller). */
void kf_call_send_attachment(const kf_call_t *call, kf_actor_t who, int64_t conversation_id,
                             const kf_attachment_new_t *attachment);
/* A page of messages on its way into {"messages": [...], "more": bool}: make one, hand
 * kf_call_messages_row and kf_call_messages_done to one of the store's message queries with it,
 * and hold the request for it (kf_call_hold: on failure, kf_call_messages_free it first). */
typedef struct kf_messages_wait {
    kf_wait_t base;
    json_t *array;
    kf_app_t *app;
    int64_t conversation_id; /* for a query that needs them */
    int64_t after;
} kf_messages_wait_t;
kf_messages_wait_t *kf_call_messages_new(kf_app_t *app);
int kf_call_messages_row(void *ctx, const kf_message_t *m);
void kf_call_messages_done(void *ctx, const kf_store_result_t *r);
void kf_call_messages_free(kf_messages_wait_t *w);

/* Answers 201 {"ticket", "expires_in"}: a push ticket for the caller. */
void kf_call_ticket(const kf_call_t *call);

/* Answers {"conversation": ...} for id with status, or 404, once the store has read it. */
void kf_call_answer_conversation(kf_req_t *req, kf_app_t *app, int64_t id, int status);

#endif
