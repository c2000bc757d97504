/* chat.h: what the chat layer's files share (not a public interface): JSON shapes, events and
 * publishing, the actions both HTTP and WebSocket clients take, and authentication of requests. */
#ifndef KF_CHAT_CHAT_H
#define KF_CHAT_CHAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "chat/app.h"

#define KF_AGENTS_TOPIC "agents"
#define KF_SESSION_COOKIE "kefu_session"
#define KF_MAX_NAME_CHARS 80
#define KF_MAX_EMAIL_BYTES 254
#define KF_PAGE_SIZE 500

/* ---- events.c: JSON shapes (docs/API.md) and publishing ---- */

json_t *kf_chat_message_json(const kf_message_t *m);
json_t *kf_chat_conversation_json(const kf_conversation_t *c);
/* Encodes an event once (its bytes are shared by every subscriber). Takes the reference to body.
 * id is the cursor of a message event, 0 for an ephemeral one. */
kf_event_t *kf_chat_event(uint64_t id, json_t *body);
kf_event_t *kf_chat_message_event(const kf_message_t *m);
/* The message's JSON text (the caller frees it), or NULL when out of memory. */
char *kf_chat_message_text(const kf_message_t *m);
/* kf_chat_message_event from the message's JSON text (borrowed), when the caller has it already:
 * the message is encoded once for its event and its sender's answer. */
kf_event_t *kf_chat_message_event_of(int64_t message_id, const char *message_text);
/* The hub topic of one visitor's stream. */
void kf_chat_visitor_topic(int64_t visitor_id, char *out, size_t size);
/* Publishes event to the visitor's topic (when visitor_id != 0) and to the agents' (when
 * to_agents), then drops the caller's reference. NULL is ignored. */
void kf_chat_publish(kf_app_t *app, int64_t visitor_id, bool to_agents, kf_event_t *event);
/* Pushes a conversation's current state to the agents, once the store has read it (nothing when
 * that fails: the agents' view waits for the next change). */
void kf_chat_publish_conversation(kf_app_t *app, int64_t conversation_id);

/* ---- actions.c: what visitors and agents do, over HTTP or WebSocket ---- */

/* Who acts: a visitor or an agent. */
typedef struct kf_actor {
    char kind; /* 'v' visitor or 'a' agent */
    int64_t id;
    const char *name; /* an agent's display name when the caller knows it (borrowed for the
                       * call), else NULL: typing looks it up */
} kf_actor_t;

/* Why an action failed, as an HTTP status and an API error code. */
typedef struct kf_chat_error {
    int status;
    const char *code;
    char message[128];
} kf_chat_error_t;

/* Each action checks its arguments at once: it returns -1 with *err filled (and done never runs),
 * or 0, and then done runs exactly once, later, from the store's callbacks on the loop. */

/* The end of an action: called once its writes are committed (and published), with result (the
 * stored message's JSON text, borrowed for the call; NULL when the action has none) and err NULL;
 * or when it failed (a missing row, a failed commit) with result NULL and err set (nothing was
 * published). */
typedef void (*kf_chat_done_cb)(kf_app_t *app, void *data, const char *result,
                                const kf_chat_error_t *err);

/* Stores body as a message (in the visitor's open conversation, or conversation_id for agents);
 * done gets the message's JSON once the store's writer thread has committed it (or an error:
 * 404 for an unknown conversation, 503 when the store cannot write now, 500 when it could not be
 * stored), and the message is published then. */
int kf_chat_send(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *body,
                 kf_chat_done_cb done, void *done_data, kf_chat_error_t *err);
/* Raises the read mark of the actor's side in the conversation holding message up_to (visitors)
 * or in conversation_id (agents); the read receipt is published and done runs (result NULL)
 * after the commit, as for kf_chat_send. */
int kf_chat_read(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *up_to,
                 kf_chat_done_cb done, void *done_data, kf_chat_error_t *err);
/* Publishes a typing indicator to the other side, then done (result NULL). A visitor without an
 * open conversation has no one to tell: done, and nothing published. */
int kf_chat_typing(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *typing,
                   kf_chat_done_cb done, void *done_data, kf_chat_error_t *err);

/* ---- requests.c: who asks, whether they may, what they sent; holding a request ---- */

typedef struct kf_visitor_auth {
    int64_t id;
    char name[4 * KF_MAX_NAME_CHARS + 1];
} kf_visitor_auth_t;

typedef struct kf_agent_auth {
    int64_t id;
    char email[KF_MAX_EMAIL_BYTES + 1];
    char name[4 * KF_MAX_NAME_CHARS + 1];
    char role[16];
    char csrf[KF_TOKEN_SIZE];
} kf_agent_auth_t;

/* Who a request's credential names. */
typedef struct kf_chat_auth {
    /* 0; KF_EAUTH when the request has no such credential, or an unknown or expired one; or the
     * store's error, which is no answer about the credential (the client must not be told 401
     * and drop it). */
    int rc;
    kf_visitor_auth_t visitor; /* with rc 0, from kf_chat_bearer_visitor */
    kf_agent_auth_t agent;     /* with rc 0, from kf_chat_cookie_agent */
} kf_chat_auth_t;

/* A handler's step once its request's credential is known, with the request's head and body
 * valid: called at once (from inside the handler) when the credential is absent or cached, else
 * once the store has answered (the request held meanwhile, and resumed: kf_req_resume). Never
 * called when the client goes away first. data (which must outlive the wait: static) and arg
 * are the handler's own: what to do, and its path's id. */
typedef void (*kf_chat_auth_fn)(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                                int64_t arg);

/* The visitor of a Bearer token / the agent of the session cookie, handed to then. */
void kf_chat_bearer_visitor(kf_req_t *req, kf_chat_auth_fn then, const void *data, int64_t arg);
void kf_chat_cookie_agent(kf_req_t *req, kf_chat_auth_fn then, const void *data, int64_t arg);
/* Remembers a visitor's token (its SHA-256 hex) so that their next requests need no lookup. */
void kf_chat_cache_visitor(kf_app_t *app, const char *hash, const kf_visitor_auth_t *visitor);
/* The session token from the cookie; false when there is none. */
bool kf_chat_session_token(kf_req_t *req, kf_str_t *token);
/* Answers 401 unless auth found a visitor, 500 (503) when the store failed, 429 when that
 * visitor is past their request limit; true when none of that happened. */
bool kf_chat_visitor_allowed(kf_req_t *req, const kf_chat_auth_t *auth);
/* Answers 401 unless auth found an agent, 500 (503) when the store failed, 403 when a
 * state-changing request lacks the session's CSRF token; true when none of that happened. */
bool kf_chat_agent_allowed(kf_req_t *req, const kf_chat_auth_t *auth, bool state_changing);

/* A request held while the store works for it: the first member of what a handler waits with.
 * If the client goes away meanwhile, req becomes NULL (the abort callback), and the store's
 * callback frees the wait without answering (a write stands all the same). */
typedef struct kf_chat_wait {
    kf_req_t *req;
} kf_chat_wait_t;
/* Holds req for w (allocated, a kf_chat_wait_t first), setting w's req, once the operation w
 * waits for is queued (queued_rc 0); otherwise answers the failure and frees w. Returns whether
 * it holds. A request already held (by an earlier wait) is handed over to w. */
bool kf_chat_hold(kf_req_t *req, void *w, int queued_rc);

/* Logs a store failure and answers it: 503 unavailable for KF_EUNAVAIL (the store cannot write
 * now; the client may retry), else 500. */
void kf_chat_store_failed(kf_req_t *req, int rc);
/* The error an action answers for a store failure: 404 for KF_ENOTFOUND (what names the missing
 * row: "conversation", "message"), 503 for KF_EUNAVAIL, else 500 (logged). Returns -1. */
int kf_chat_store_error(kf_chat_error_t *err, int rc, const char *what);
/* Parses the body as a JSON object. On failure answers the request and returns NULL. */
json_t *kf_chat_read_json(kf_req_t *req);
/* Reads the "after" cursor from the query (absent means 0). On a bad value answers 400. */
bool kf_chat_read_after(kf_req_t *req, uint64_t *after);
/* Logs one line about a refused request. */
void kf_chat_log_request(kf_req_t *req, const char *what);
/* Takes one token for visitor_id from limit (app->visitor_requests or visitor_messages; NULL means
 * no limit). False when there was none: *retry_after_ms says how long until there is one. */
bool kf_chat_visitor_take(kf_limit_t *limit, int64_t visitor_id, int64_t *retry_after_ms);
/* A wait in whole seconds, rounded up (for Retry-After). */
int64_t kf_chat_retry_after_s(int64_t retry_after_ms);
/* Answers 429 rate_limited with Retry-After; what names what there were too many of. */
void kf_chat_rate_limited(kf_req_t *req, int64_t retry_after_ms, const char *what);
/* Takes a request token for the visitor; answers 429 and returns false when there is none. */
bool kf_chat_visitor_request_allowed(kf_req_t *req, int64_t visitor_id);

/* ---- api.c: the JSON API's handlers ---- */

void kf_api_visitor_session_create(kf_req_t *req, const int64_t *ids);
void kf_api_visitor_session_get(kf_req_t *req, const int64_t *ids);
void kf_api_visitor_message_post(kf_req_t *req, const int64_t *ids);
void kf_api_visitor_messages_get(kf_req_t *req, const int64_t *ids);
void kf_api_visitor_read_post(kf_req_t *req, const int64_t *ids);
void kf_api_visitor_typing_post(kf_req_t *req, const int64_t *ids);
void kf_api_visitor_ticket_post(kf_req_t *req, const int64_t *ids);
void kf_api_agent_login(kf_req_t *req, const int64_t *ids);
void kf_api_agent_me(kf_req_t *req, const int64_t *ids);
void kf_api_agent_logout(kf_req_t *req, const int64_t *ids);
void kf_api_agent_ticket_post(kf_req_t *req, const int64_t *ids);
void kf_api_conversations_get(kf_req_t *req, const int64_t *ids);
void kf_api_conversation_get(kf_req_t *req, const int64_t *ids);
void kf_api_conversation_messages_get(kf_req_t *req, const int64_t *ids);
void kf_api_conversation_message_post(kf_req_t *req, const int64_t *ids);
void kf_api_conversation_read_post(kf_req_t *req, const int64_t *ids);
void kf_api_conversation_typing_post(kf_req_t *req, const int64_t *ids);
void kf_api_conversation_status_post(kf_req_t *req, const int64_t *ids);

/* ---- live.c: push endpoints and WebSocket actions ---- */

void kf_live_poll(kf_req_t *req, const int64_t *ids);
void kf_live_longpoll(kf_req_t *req, const int64_t *ids);
void kf_live_iframe(kf_req_t *req, const int64_t *ids);
void kf_live_sse(kf_req_t *req, const int64_t *ids);
void kf_live_ws(kf_req_t *req, const int64_t *ids);
/* Frees the table of push connections per listener (every connection is closed by then). */
void kf_live_free(kf_app_t *app);
/* Ends the replays that needed no query (their replayed is never called from inside the replay
 * call): on the loop, after the store's wake-up. Returns how many it ended. */
size_t kf_live_run_deferred(kf_app_t *app);
/* Tells the replays of a stored message, before it is published (or not, should encoding it
 * fail); the writes' commit callback calls it. */
void kf_live_note_message(kf_app_t *app, int64_t visitor_id, int64_t message_id);
/* The push module's receiver of WebSocket messages (ctx is the app). */
void kf_live_receive(void *ctx, kf_push_client_t *client, char kind, int64_t subject,
                     const char *text, size_t len);

#endif
