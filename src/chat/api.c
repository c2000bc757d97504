/* api.c: the JSON API over HTTP (docs/API.md): one handler per endpoint, each first learning who
 * asks (requests.c), then holding its request while the store works and answering it from the
 * store's callback. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/log.h"
#include "auth/cache.h"
#include "chat/chat.h"

#define LIST_LIMIT 200

static void answer_error(kf_req_t *req, const kf_chat_error_t *err)
{
    if (err->status >= 500)
        kf_chat_log_request(req, err->message);
    kf_resp_error(req, err->status, err->code, err->message);
}

static json_t *agent_auth_json(const kf_agent_auth_t *agent)
{
    return json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)agent->id, "email", agent->email,
                     "name", agent->name, "role", agent->role);
}

/* ---- answers ---- */

/* A list of rows on its way into a JSON answer. */
typedef struct list_wait {
    kf_chat_wait_t base;
    json_t *array;
    int64_t newest;          /* conversations: the newest last message's id */
    int64_t conversation_id; /* messages of a conversation */
    int64_t after;
} list_wait_t;

static list_wait_t *list_wait_new(void)
{
    list_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->array = json_array();
    return w;
}

static void list_wait_free(list_wait_t *w)
{
    json_decref(w->array);
    free(w);
}

/* Queues list_wait's query (queued_rc) and holds the request, or answers the failure. */
static void hold_for_list(kf_req_t *req, list_wait_t *w, int queued_rc)
{
    if (queued_rc != 0)
        json_decref(w->array);
    kf_chat_hold(req, w, queued_rc);
}

/* Collects a message row; stops the query when the client has gone. */
static int collect_message_cb(void *ctx, const kf_message_t *m)
{
    list_wait_t *w = ctx;
    if (w->base.req == NULL)
        return KF_EINVAL;
    json_array_append_new(w->array, kf_chat_message_json(m));
    return 0;
}

/* Answers {"messages": [...], "more": bool} from one of the store's message queries. */
static void messages_answer_cb(void *ctx, const kf_store_result_t *r)
{
    list_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc != 0)
        kf_chat_store_failed(req, r->rc);
    else if (req != NULL)
        kf_resp_json(
            req, 200,
            json_pack("{s:O,s:b}", "messages", w->array, "more", r->count >= KF_PAGE_SIZE));
    list_wait_free(w);
}

/* A conversation on its way to an answer, with this status. */
typedef struct conversation_wait {
    kf_chat_wait_t base;
    int status;
} conversation_wait_t;

static void conversation_answer_cb(void *ctx, const kf_store_result_t *r)
{
    conversation_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    int status = w->status;
    free(w);
    if (req == NULL)
        return;
    if (r->rc == KF_ENOTFOUND)
        kf_resp_error(req, 404, "not_found", "no such conversation");
    else if (r->rc != 0)
        kf_chat_store_failed(req, r->rc);
    else
        kf_resp_json(
            req, status,
            json_pack("{s:o}", "conversation", kf_chat_conversation_json(r->conversation)));
}

/* Answers {"conversation": ...} for id with status, or 404, once the store has read it. */
static void answer_conversation(kf_req_t *req, int64_t id, int status)
{
    kf_app_t *app = req->app;
    conversation_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->status = status;
    kf_chat_hold(req, w,
                 app->store->ops->conversation_get(app->store, id, conversation_answer_cb, w));
}

static void send_ticket(kf_req_t *req, char kind, int64_t subject)
{
    kf_app_t *app = req->app;
    char ticket[KF_TICKET_SIZE];
    if (kf_auth_ticket_sign(app->ticket_key, sizeof app->ticket_key, kind, subject,
                            kf_now_ms() + app->config.ticket_ttl_ms, ticket) != 0) {
        kf_resp_error(req, 500, "internal", "could not sign a push ticket");
        return;
    }
    kf_resp_json(req, 201,
                 json_pack("{s:s,s:I}", "ticket", ticket, "expires_in",
                           (json_int_t)(app->config.ticket_ttl_ms / 1000)));
}

/* ---- actions: answers once their writes are committed ----
 * A request whose action writes is held until the writer thread has committed it; then it is
 * answered (or, when its client went away meanwhile, just forgotten: the write stands). */

typedef enum { ANSWER_MESSAGE, ANSWER_OK, ANSWER_CONVERSATION } answer_kind_t;

typedef struct act_wait {
    kf_chat_wait_t base;
    answer_kind_t kind;
    int64_t conversation_id; /* ANSWER_CONVERSATION */
} act_wait_t;

/* 201 {"message": ...} around the stored message's JSON text. */
static void answer_message(kf_req_t *req, const char *message_text)
{
    kf_buf_t body;
    kf_buf_init(&body);
    kf_buf_append_str(&body, "{\"message\":");
    kf_buf_append_str(&body, message_text);
    kf_buf_append_str(&body, "}");
    kf_resp_json_text(req, 201, body.data, body.len);
    kf_buf_free(&body);
}

static void acted_cb(kf_app_t *app, void *data, const char *result, const kf_chat_error_t *err)
{
    (void)app;
    act_wait_t *w = data;
    kf_req_t *req = w->base.req;
    answer_kind_t kind = w->kind;
    int64_t conversation_id = w->conversation_id;
    free(w);
    if (req == NULL)
        return; /* the client left: nothing to answer */
    if (err != NULL)
        answer_error(req, err);
    else if (kind == ANSWER_MESSAGE && result == NULL)
        kf_resp_error(req, 500, "internal", "could not encode the response");
    else if (kind == ANSWER_MESSAGE)
        answer_message(req, result);
    else if (kind == ANSWER_CONVERSATION)
        answer_conversation(req, conversation_id, 200);
    else
        kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
}

/* Runs an action (kf_chat_send, kf_chat_read or kf_chat_typing, the rest of the arguments bound
 * by the caller through act) and holds req for its answer; answers an error at once when it
 * fails. */
typedef int (*action_fn)(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *value,
                         kf_chat_done_cb done, void *done_data, kf_chat_error_t *err);

static void act_then_answer(kf_req_t *req, action_fn act, kf_actor_t who, int64_t conversation_id,
                            json_t *value, answer_kind_t kind)
{
    act_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->kind = kind;
    w->conversation_id = conversation_id;
    kf_chat_error_t err;
    if (act(req->app, who, conversation_id, value, acted_cb, w, &err) != 0) {
        free(w);
        answer_error(req, &err);
        return;
    }
    kf_chat_hold(req, w, 0);
}

/* A POST that runs an action on one field of its JSON body, and what it answers. */
typedef struct body_action {
    action_fn act;
    const char *field;
    answer_kind_t kind;
} body_action_t;

static const body_action_t send_action = {kf_chat_send, "body", ANSWER_MESSAGE};
static const body_action_t visitor_read_action = {kf_chat_read, "up_to", ANSWER_OK};
static const body_action_t agent_read_action = {kf_chat_read, "up_to", ANSWER_CONVERSATION};
static const body_action_t typing_action = {kf_chat_typing, "typing", ANSWER_OK};

/* Reads the JSON body of a POST whose caller is allowed (kf_chat_visitor_allowed or _agent_) and
 * runs its action. */
static void act_on_body(kf_req_t *req, const body_action_t *action, kf_actor_t who,
                        int64_t conversation_id)
{
    json_t *root = kf_chat_read_json(req);
    if (root == NULL)
        return;
    act_then_answer(req, action->act, who, conversation_id, json_object_get(root, action->field),
                    action->kind);
    json_decref(root);
}

/* ---- visitor endpoints ---- */

/* A new visitor waiting for their row. */
typedef struct visitor_wait {
    kf_chat_wait_t base;
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
        kf_chat_cache_visitor(w->app, w->hash, &w->visitor);
    }
    if (req != NULL && r->rc != 0)
        kf_chat_store_failed(req, r->rc);
    else if (req != NULL)
        kf_resp_json(req, 201,
                     json_pack("{s:s,s:{s:I,s:s}}", "token", w->token, "visitor", "id",
                               (json_int_t)r->id, "name", w->visitor.name));
    free(w);
}

void kf_api_visitor_session_create(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    /* New visitors per address: each comes with fresh request and message buckets, so without
     * this a script would start a new visitor for each burst. */
    int64_t wait_ms = 0;
    if (app->visitor_sessions != NULL &&
        !kf_limit_take(app->visitor_sessions, kf_req_peer(req), kf_now_ms(), &wait_ms)) {
        kf_chat_rate_limited(req, wait_ms, "new visitors from this address");
        return;
    }
    json_t *root = kf_chat_read_json(req);
    if (root == NULL)
        return;
    const char *name = "";
    json_t *name_json = json_object_get(root, "name");
    if (name_json != NULL && !json_is_null(name_json)) {
        if (!json_is_string(name_json) ||
            kf_utf8_length(json_string_value(name_json)) > KF_MAX_NAME_CHARS) {
            json_decref(root);
            kf_resp_error(req, 422, "invalid", "name must be a string of at most 80 characters");
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
        kf_resp_error(req, 500, "internal", "no randomness available");
        return;
    }
    kf_auth_sha256_hex(w->token, strlen(w->token), w->hash);
    kf_chat_hold(req, w,
                 app->store->ops->visitor_create(app->store, w->hash, w->visitor.name, kf_now_ms(),
                                                 visitor_created_cb, w));
}

static void visitor_session_authed(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                                   int64_t arg)
{
    (void)data;
    (void)arg;
    if (kf_chat_visitor_allowed(req, auth))
        kf_resp_json(req, 200,
                     json_pack("{s:{s:I,s:s}}", "visitor", "id", (json_int_t)auth->visitor.id,
                               "name", auth->visitor.name));
}

void kf_api_visitor_session_get(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_chat_bearer_visitor(req, visitor_session_authed, NULL, 0);
}

/* A visitor's POST of data (a body_action_t): a send costs one of their messages too. */
static void visitor_act_authed(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                               int64_t arg)
{
    (void)arg;
    const body_action_t *action = data;
    if (!kf_chat_visitor_allowed(req, auth))
        return;
    int64_t wait_ms = 0;
    if (action == &send_action && !kf_chat_visitor_take(((kf_app_t *)req->app)->visitor_messages,
                                                        auth->visitor.id, &wait_ms)) {
        kf_chat_rate_limited(req, wait_ms, "messages");
        return;
    }
    act_on_body(req, action, (kf_actor_t){'v', auth->visitor.id, NULL}, 0);
}

void kf_api_visitor_message_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_chat_bearer_visitor(req, visitor_act_authed, &send_action, 0);
}

static void visitor_messages_authed(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                                    int64_t arg)
{
    (void)data;
    (void)arg;
    kf_app_t *app = req->app;
    uint64_t after;
    if (!kf_chat_visitor_allowed(req, auth) || !kf_chat_read_after(req, &after))
        return;
    list_wait_t *w = list_wait_new();
    hold_for_list(req, w,
                  app->store->ops->messages_of_visitor(app->store, auth->visitor.id, (int64_t)after,
                                                       KF_PAGE_SIZE, collect_message_cb,
                                                       messages_answer_cb, w));
}

void kf_api_visitor_messages_get(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_chat_bearer_visitor(req, visitor_messages_authed, NULL, 0);
}

void kf_api_visitor_read_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_chat_bearer_visitor(req, visitor_act_authed, &visitor_read_action, 0);
}

void kf_api_visitor_typing_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_chat_bearer_visitor(req, visitor_act_authed, &typing_action, 0);
}

static void visitor_ticket_authed(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                                  int64_t arg)
{
    (void)data;
    (void)arg;
    if (kf_chat_visitor_allowed(req, auth))
        send_ticket(req, 'v', auth->visitor.id);
}

void kf_api_visitor_ticket_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_chat_bearer_visitor(req, visitor_ticket_authed, NULL, 0);
}

/* ---- agent endpoints ---- */

static void set_session_cookie(kf_req_t *req, const char *token, int64_t max_age_s)
{
    kf_app_t *app = req->app;
    char cookie[256];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s",
             KF_SESSION_COOKIE, token, (long long)max_age_s,
             app->config.secure_cookies ? "; Secure" : "");
    kf_resp_header(req, "Set-Cookie", cookie);
}

/* A login on its way through the store: the account's row, then the new session's. */
typedef struct login_wait {
    kf_chat_wait_t base;
    kf_app_t *app;
    char email[KF_MAX_EMAIL_BYTES + 1]; /* lower-cased */
    char *password;                     /* a copy, wiped when freed */
    int64_t now;
    kf_agent_auth_t agent;
    char token[KF_TOKEN_SIZE];
} login_wait_t;

static void login_wait_free(login_wait_t *w)
{
    explicit_bzero(w->password, strlen(w->password));
    free(w->password);
    free(w);
}

static void session_created_cb(void *ctx, const kf_store_result_t *r)
{
    login_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc != 0) {
        kf_chat_store_failed(req, r->rc);
    } else if (req != NULL) {
        kf_info("agent %s logged in from %s", w->email, kf_req_peer(req));
        set_session_cookie(req, w->token, w->app->config.session_ttl_ms / 1000);
        kf_resp_json(
            req, 200,
            json_pack("{s:o,s:s}", "agent", agent_auth_json(&w->agent), "csrf", w->agent.csrf));
    }
    login_wait_free(w);
}

static void login_agent_cb(void *ctx, const kf_store_result_t *r)
{
    login_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    kf_app_t *app = w->app;
    if (req == NULL) {
        login_wait_free(w);
        return;
    }
    /* An unknown e-mail costs one hash too, so timing does not tell which accounts exist. */
    static const char dummy[] =
        "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    bool ok = kf_auth_password_verify(w->password, r->rc == 0 ? r->agent->password_hash : dummy) &&
              r->rc == 0;
    if (r->rc != 0 && r->rc != KF_ENOTFOUND) {
        kf_chat_store_failed(req, r->rc);
        login_wait_free(w);
        return;
    }
    const char *peer = kf_req_peer(req);
    if (!ok) {
        /* Charged with a growing delay: each lock-out after the first lasts twice as long. */
        kf_limit_charge(app->login_by_account, w->email, w->now, NULL);
        kf_limit_charge(app->login_by_address, peer, w->now, NULL);
        kf_info("failed login for %s from %s", w->email, peer);
        kf_resp_error(req, 401, "unauthorized", "wrong e-mail or password");
        login_wait_free(w);
        return;
    }
    kf_agent_auth_t *agent = &w->agent;
    agent->id = r->agent->id;
    snprintf(agent->email, sizeof agent->email, "%s", r->agent->email);
    snprintf(agent->name, sizeof agent->name, "%s", r->agent->name);
    snprintf(agent->role, sizeof agent->role, "%s", r->agent->role);
    char hash[KF_HASH_HEX_SIZE];
    if (kf_auth_random_token(w->token) != 0 || kf_auth_random_token(agent->csrf) != 0) {
        kf_resp_error(req, 500, "internal", "no randomness available");
        login_wait_free(w);
        return;
    }
    kf_limit_reset(app->login_by_account, w->email);
    kf_auth_sha256_hex(w->token, strlen(w->token), hash);
    /* A fresh token at every login: a session id planted before login is never adopted. */
    int rc =
        app->store->ops->session_create(app->store, hash, agent->id, agent->csrf, w->now,
                                        w->now + app->config.session_ttl_ms, session_created_cb, w);
    if (rc != 0) {
        kf_chat_store_failed(req, rc);
        login_wait_free(w);
    }
}

void kf_api_agent_login(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    json_t *root = kf_chat_read_json(req);
    if (root == NULL)
        return;
    json_t *email = json_object_get(root, "email");
    json_t *password = json_object_get(root, "password");
    if (!json_is_string(email) || !json_is_string(password) ||
        json_string_length(email) > KF_MAX_EMAIL_BYTES) {
        json_decref(root);
        kf_resp_error(req, 422, "invalid", "email and password are required");
        return;
    }
    login_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    snprintf(w->email, sizeof w->email, "%s", json_string_value(email));
    for (char *p = w->email; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    w->password = kf_xstrdup(json_string_value(password));
    json_decref(root);
    /* Failed logins are limited per account and per address (password guessing); a refused
     * attempt costs no scrypt either. */
    int64_t wait_account = 0, wait_address = 0;
    w->now = kf_now_ms();
    bool allowed = kf_limit_check(app->login_by_account, w->email, w->now, &wait_account);
    allowed =
        kf_limit_check(app->login_by_address, kf_req_peer(req), w->now, &wait_address) && allowed;
    if (!allowed) {
        int64_t wait_s = ((wait_account > wait_address ? wait_account : wait_address) + 999) / 1000;
        char retry[24], message[96];
        snprintf(retry, sizeof retry, "%lld", (long long)wait_s);
        snprintf(message, sizeof message, "too many failed logins; try again in %lld s",
                 (long long)wait_s);
        kf_info("login for %s from %s refused: too many failures", w->email, kf_req_peer(req));
        login_wait_free(w);
        kf_resp_header(req, "Retry-After", retry);
        kf_resp_error(req, 429, "rate_limited", message);
        return;
    }
    int rc = app->store->ops->agent_by_email(app->store, w->email, login_agent_cb, w);
    if (rc != 0) {
        login_wait_free(w);
        kf_chat_store_failed(req, rc);
        return;
    }
    kf_chat_hold(req, w, 0);
}

static void agent_me_authed(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                            int64_t arg)
{
    (void)data;
    (void)arg;
    if (kf_chat_agent_allowed(req, auth, false))
        kf_resp_json(req, 200,
                     json_pack("{s:o,s:s}", "agent", agent_auth_json(&auth->agent), "csrf",
                               auth->agent.csrf));
}

void kf_api_agent_me(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_chat_cookie_agent(req, agent_me_authed, NULL, 0);
}

/* A logout waiting for its session's delete. */
typedef struct logout_wait {
    kf_chat_wait_t base;
    kf_app_t *app;
    int64_t agent_id;
} logout_wait_t;

static void logged_out(kf_req_t *req, kf_app_t *app, int64_t agent_id)
{
    /* Its streams end too (a WebSocket could otherwise still send as the agent); the agent's
     * other sessions, if any, reconnect with their own cookies. */
    kf_push_end_subject(app->push, 'a', agent_id);
    set_session_cookie(req, "", 0);
    kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static void session_deleted_cb(void *ctx, const kf_store_result_t *r)
{
    logout_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    kf_app_t *app = w->app;
    int64_t agent_id = w->agent_id;
    free(w);
    /* Told it is logged out, the agent must be: the session may not outlive a failure. */
    if (req != NULL && r->rc != 0 && r->rc != KF_ENOTFOUND)
        kf_chat_store_failed(req, r->rc);
    else if (req != NULL)
        logged_out(req, app, agent_id);
}

static void agent_logout_authed(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                                int64_t arg)
{
    (void)data;
    (void)arg;
    kf_app_t *app = req->app;
    if (!kf_chat_agent_allowed(req, auth, true))
        return;
    kf_str_t token;
    if (!kf_chat_session_token(req, &token)) {
        logged_out(req, app, auth->agent.id);
        return;
    }
    char hash[KF_HASH_HEX_SIZE];
    kf_auth_sha256_hex(token.ptr, token.len, hash);
    kf_auth_cache_remove(app->agent_sessions, hash);
    logout_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    w->agent_id = auth->agent.id;
    kf_chat_hold(req, w, app->store->ops->session_delete(app->store, hash, session_deleted_cb, w));
}

void kf_api_agent_logout(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_chat_cookie_agent(req, agent_logout_authed, NULL, 0);
}

static void agent_ticket_authed(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                                int64_t arg)
{
    (void)data;
    (void)arg;
    if (kf_chat_agent_allowed(req, auth, true))
        send_ticket(req, 'a', auth->agent.id);
}

void kf_api_agent_ticket_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_chat_cookie_agent(req, agent_ticket_authed, NULL, 0);
}

static int list_conversation_cb(void *ctx, const kf_conversation_t *c)
{
    list_wait_t *w = ctx;
    if (w->base.req == NULL)
        return KF_EINVAL; /* the client has gone: stop the query */
    json_array_append_new(w->array, kf_chat_conversation_json(c));
    if (c->has_last_message && c->last_message.id > w->newest)
        w->newest = c->last_message.id;
    return 0;
}

static void conversations_answer_cb(void *ctx, const kf_store_result_t *r)
{
    list_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc != 0) {
        kf_chat_store_failed(req, r->rc);
    } else if (req != NULL) {
        char cursor[24];
        snprintf(cursor, sizeof cursor, "%lld", (long long)w->newest);
        kf_resp_json(req, 200, json_pack("{s:O,s:s}", "conversations", w->array, "cursor", cursor));
    }
    list_wait_free(w);
}

static void conversations_authed(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                                 int64_t arg)
{
    (void)data;
    (void)arg;
    kf_app_t *app = req->app;
    if (!kf_chat_agent_allowed(req, auth, false))
        return;
    list_wait_t *w = list_wait_new();
    kf_conversation_page_t first_page = {.limit = LIST_LIMIT};
    hold_for_list(req, w,
                  app->store->ops->conversation_list(app->store, &first_page, list_conversation_cb,
                                                     conversations_answer_cb, w));
}

void kf_api_conversations_get(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_chat_cookie_agent(req, conversations_authed, NULL, 0);
}

static void conversation_authed(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                                int64_t id)
{
    (void)data;
    if (kf_chat_agent_allowed(req, auth, false))
        answer_conversation(req, id, 200);
}

void kf_api_conversation_get(kf_req_t *req, const int64_t *ids)
{
    kf_chat_cookie_agent(req, conversation_authed, NULL, ids[0]);
}

/* The conversation exists (or not): on to its messages. */
static void conversation_exists_cb(void *ctx, const kf_store_result_t *r)
{
    list_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    int rc = r->rc;
    if (req != NULL && rc == 0) {
        kf_store_t *store = ((kf_app_t *)req->app)->store;
        rc = store->ops->messages_in_conversation(store, w->conversation_id, w->after, KF_PAGE_SIZE,
                                                  collect_message_cb, messages_answer_cb, w);
        if (rc == 0)
            return;
    }
    if (req != NULL && rc == KF_ENOTFOUND)
        kf_resp_error(req, 404, "not_found", "no such conversation");
    else if (req != NULL)
        kf_chat_store_failed(req, rc);
    list_wait_free(w);
}

static void conversation_messages_authed(kf_req_t *req, const kf_chat_auth_t *auth,
                                         const void *data, int64_t id)
{
    (void)data;
    kf_app_t *app = req->app;
    uint64_t after;
    if (!kf_chat_agent_allowed(req, auth, false) || !kf_chat_read_after(req, &after))
        return;
    list_wait_t *w = list_wait_new();
    w->conversation_id = id;
    w->after = (int64_t)after;
    hold_for_list(req, w,
                  app->store->ops->conversation_visitor(app->store, id, conversation_exists_cb, w));
}

void kf_api_conversation_messages_get(kf_req_t *req, const int64_t *ids)
{
    kf_chat_cookie_agent(req, conversation_messages_authed, NULL, ids[0]);
}

/* An agent's POST of data (a body_action_t) on conversation id. */
static void agent_act_authed(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                             int64_t id)
{
    if (kf_chat_agent_allowed(req, auth, true))
        act_on_body(req, data, (kf_actor_t){'a', auth->agent.id, auth->agent.name}, id);
}

void kf_api_conversation_message_post(kf_req_t *req, const int64_t *ids)
{
    kf_chat_cookie_agent(req, agent_act_authed, &send_action, ids[0]);
}

void kf_api_conversation_read_post(kf_req_t *req, const int64_t *ids)
{
    kf_chat_cookie_agent(req, agent_act_authed, &agent_read_action, ids[0]);
}

void kf_api_conversation_typing_post(kf_req_t *req, const int64_t *ids)
{
    kf_chat_cookie_agent(req, agent_act_authed, &typing_action, ids[0]);
}

/* A status change waiting for its commit. */
typedef struct status_wait {
    kf_chat_wait_t base;
    kf_app_t *app;
    int64_t conversation_id;
} status_wait_t;

static void status_set_cb(void *ctx, const kf_store_result_t *r)
{
    status_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    kf_app_t *app = w->app;
    int64_t id = w->conversation_id;
    free(w);
    if (r->rc == 0)
        kf_chat_publish_conversation(app, id);
    if (req == NULL)
        return;
    if (r->rc == KF_ENOTFOUND)
        kf_resp_error(req, 404, "not_found", "no such conversation");
    else if (r->rc != 0)
        kf_chat_store_failed(req, r->rc);
    else
        answer_conversation(req, id, 200);
}

static void conversation_status_authed(kf_req_t *req, const kf_chat_auth_t *auth, const void *data,
                                       int64_t id)
{
    (void)data;
    kf_app_t *app = req->app;
    if (!kf_chat_agent_allowed(req, auth, true))
        return;
    json_t *root = kf_chat_read_json(req);
    if (root == NULL)
        return;
    const char *status = json_string_value(json_object_get(root, "status"));
    if (status == NULL || (strcmp(status, "open") != 0 && strcmp(status, "closed") != 0)) {
        json_decref(root);
        kf_resp_error(req, 422, "invalid", "status must be \"open\" or \"closed\"");
        return;
    }
    status_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    w->conversation_id = id;
    int rc = app->store->ops->conversation_set_status(app->store, id, status, kf_now_ms(),
                                                      status_set_cb, w);
    json_decref(root);
    kf_chat_hold(req, w, rc);
}

void kf_api_conversation_status_post(kf_req_t *req, const int64_t *ids)
{
    kf_chat_cookie_agent(req, conversation_status_authed, NULL, ids[0]);
}
