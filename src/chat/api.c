/* api.c: the JSON API over HTTP (docs/API.md): request authentication (visitor bearer tokens,
 * agent session cookies with CSRF tokens), body parsing, and one handler per endpoint. */
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

/* ---- request helpers ---- */

void kf_chat_log_request(kf_req_t *req, const char *what)
{
    if (req->head == NULL) { /* answered after its handler returned (group commit) */
        kf_info("request from %s: %s", kf_req_peer(req), what);
        return;
    }
    kf_info("%.*s %.*s from %s: %s", (int)req->head->method.len,
            req->head->method.ptr != NULL ? req->head->method.ptr : "", (int)req->head->path.len,
            req->head->path.ptr != NULL ? req->head->path.ptr : "", kf_req_peer(req), what);
}

static void store_failed(kf_req_t *req, int rc)
{
    if (req->head != NULL)
        kf_error("store failure on %.*s: %s", (int)req->head->path.len, req->head->path.ptr,
                 kf_strerror(rc));
    else
        kf_error("store failure: %s", kf_strerror(rc));
    kf_resp_error(req, 500, "internal", "the server could not complete the request");
}

void kf_chat_store_failed(kf_req_t *req, int rc)
{
    store_failed(req, rc);
}

static void answer_error(kf_req_t *req, const kf_chat_error_t *err)
{
    if (err->status >= 500)
        kf_chat_log_request(req, err->message);
    kf_resp_error(req, err->status, err->code, err->message);
}

/* Parses the body as a JSON object. On failure answers the request and returns NULL. Requiring
 * application/json also keeps plain cross-site form posts out (they cannot send it). */
static json_t *read_json(kf_req_t *req)
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

/* ---- authentication ---- */

int kf_chat_bearer_visitor(kf_req_t *req, kf_visitor_auth_t *visitor)
{
    kf_app_t *app = req->app;
    const kf_str_t *header = kf_http_header_get(req->head, "Authorization");
    if (header == NULL || header->len < 8 || strncasecmp(header->ptr, "Bearer ", 7) != 0)
        return KF_EAUTH;
    char hash[KF_HASH_HEX_SIZE];
    kf_auth_sha256_hex(header->ptr + 7, header->len - 7, hash);
    if (kf_auth_cache_get(app->visitor_tokens, hash, kf_now_ms(), visitor) > 0)
        return 0;
    int rc = app->store->ops->visitor_by_token(app->store, hash, &visitor->id, visitor->name,
                                               sizeof visitor->name);
    if (rc == 0)
        kf_chat_cache_visitor(app, hash, visitor);
    return rc == KF_ENOTFOUND ? KF_EAUTH : rc;
}

/* Visitor tokens do not expire; only the name's bytes are kept. */
void kf_chat_cache_visitor(kf_app_t *app, const char *hash, const kf_visitor_auth_t *visitor)
{
    kf_auth_cache_put(app->visitor_tokens, hash, INT64_MAX, visitor,
                      offsetof(kf_visitor_auth_t, name) + strlen(visitor->name) + 1);
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

/* Answers 401 unless the request carries a known visitor token, 429 when that visitor is past
 * their request limit. */
static bool require_visitor(kf_req_t *req, kf_visitor_auth_t *visitor)
{
    int rc = kf_chat_bearer_visitor(req, visitor);
    if (rc == KF_EAUTH) {
        kf_resp_error(req, 401, "unauthorized",
                      "a valid visitor token is required (Authorization: Bearer)");
        return false;
    }
    if (rc != 0) {
        store_failed(req, rc);
        return false;
    }
    return kf_chat_visitor_request_allowed(req, visitor->id);
}

static int copy_agent_cb(void *ctx, const kf_agent_t *a)
{
    kf_agent_auth_t *agent = ctx;
    agent->id = a->id;
    snprintf(agent->email, sizeof agent->email, "%s", a->email);
    snprintf(agent->name, sizeof agent->name, "%s", a->name);
    snprintf(agent->role, sizeof agent->role, "%s", a->role);
    return 0;
}

static json_t *agent_auth_json(const kf_agent_auth_t *agent)
{
    return json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)agent->id, "email", agent->email,
                     "name", agent->name, "role", agent->role);
}

/* The session token from the cookie; false when there is none. */
static bool session_token(kf_req_t *req, kf_str_t *token)
{
    const kf_str_t *cookies = kf_http_header_get(req->head, "Cookie");
    return cookies != NULL && kf_http_cookie_get(*cookies, KF_SESSION_COOKIE, token) == 0 &&
           token->len > 0;
}

int kf_chat_cookie_agent(kf_req_t *req, kf_agent_auth_t *agent)
{
    kf_app_t *app = req->app;
    kf_str_t token;
    if (!session_token(req, &token))
        return KF_EAUTH;
    char hash[KF_HASH_HEX_SIZE];
    kf_auth_sha256_hex(token.ptr, token.len, hash);
    int64_t now = kf_now_ms();
    if (kf_auth_cache_get(app->agent_sessions, hash, now, agent) > 0)
        return 0;
    int64_t agent_id;
    int64_t expires_at = 0;
    int rc = app->store->ops->session_get(app->store, hash, now, &agent_id, agent->csrf,
                                          sizeof agent->csrf, &expires_at);
    if (rc == 0)
        rc = app->store->ops->agent_by_id(app->store, agent_id, copy_agent_cb, agent);
    /* Kept until the session expires or its agent logs out (kf_api_agent_logout). */
    if (rc == 0)
        kf_auth_cache_put(app->agent_sessions, hash, expires_at, agent, sizeof *agent);
    return rc == KF_ENOTFOUND ? KF_EAUTH : rc;
}

/* Answers 401 without a session, 403 when a state-changing request lacks the CSRF token. */
static bool require_agent(kf_req_t *req, kf_agent_auth_t *agent, bool state_changing)
{
    int rc = kf_chat_cookie_agent(req, agent);
    if (rc == KF_EAUTH) {
        kf_resp_error(req, 401, "unauthorized", "log in as an agent first");
        return false;
    }
    if (rc != 0) {
        store_failed(req, rc);
        return false;
    }
    if (state_changing) {
        const kf_str_t *token = kf_http_header_get(req->head, "X-CSRF-Token");
        if (token == NULL ||
            !kf_auth_equal(token->ptr, token->len, agent->csrf, strlen(agent->csrf))) {
            kf_chat_log_request(req, "missing or wrong CSRF token");
            kf_resp_error(req, 403, "csrf", "missing or wrong X-CSRF-Token header");
            return false;
        }
    }
    return true;
}

/* ---- answers ---- */

typedef struct messages_out {
    json_t *array;
    size_t count;
} messages_out_t;

static int collect_message_cb(void *ctx, const kf_message_t *m)
{
    messages_out_t *out = ctx;
    json_array_append_new(out->array, kf_chat_message_json(m));
    out->count++;
    return 0;
}

/* Answers {"messages": [...], "more": bool} from one of the store's message queries. */
static void answer_messages(kf_req_t *req, int rc, messages_out_t *out)
{
    if (rc != 0) {
        json_decref(out->array);
        store_failed(req, rc);
        return;
    }
    kf_resp_json(
        req, 200,
        json_pack("{s:o,s:b}", "messages", out->array, "more", out->count >= KF_PAGE_SIZE));
}

/* Answers {"conversation": ...} for id with status, or 404. */
static void answer_conversation(kf_req_t *req, int64_t id, int status)
{
    kf_app_t *app = req->app;
    json_t *conversation = NULL;
    int rc = app->store->ops->conversation_get(app->store, id, kf_chat_copy_conversation_cb,
                                               &conversation);
    if (rc == KF_ENOTFOUND) {
        kf_resp_error(req, 404, "not_found", "no such conversation");
        return;
    }
    if (rc != 0) {
        store_failed(req, rc);
        return;
    }
    kf_resp_json(req, status, json_pack("{s:o}", "conversation", conversation));
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

/* ---- visitor endpoints ---- */

/* Reads the JSON body of a visitor's POST; NULL after answering. */
static json_t *visitor_post(kf_req_t *req, kf_actor_t *who)
{
    kf_visitor_auth_t visitor;
    if (!require_visitor(req, &visitor))
        return NULL;
    who->kind = 'v';
    who->id = visitor.id;
    return read_json(req);
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
    json_t *root = read_json(req);
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
    char *trimmed = kf_trim_copy(name);
    json_decref(root);
    char token[KF_TOKEN_SIZE];
    char hash[KF_HASH_HEX_SIZE];
    if (kf_auth_random_token(token) != 0) {
        free(trimmed);
        kf_resp_error(req, 500, "internal", "no randomness available");
        return;
    }
    kf_auth_sha256_hex(token, strlen(token), hash);
    int64_t id;
    int rc = app->store->ops->visitor_create(app->store, hash, trimmed, kf_now_ms(), &id);
    if (rc != 0) {
        free(trimmed);
        store_failed(req, rc);
        return;
    }
    kf_visitor_auth_t visitor = {.id = id};
    snprintf(visitor.name, sizeof visitor.name, "%s", trimmed);
    kf_chat_cache_visitor(app, hash, &visitor);
    kf_resp_json(req, 201,
                 json_pack("{s:s,s:{s:I,s:s}}", "token", token, "visitor", "id", (json_int_t)id,
                           "name", trimmed));
    free(trimmed);
}

void kf_api_visitor_session_get(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_visitor_auth_t visitor;
    if (!require_visitor(req, &visitor))
        return;
    kf_resp_json(
        req, 200,
        json_pack("{s:{s:I,s:s}}", "visitor", "id", (json_int_t)visitor.id, "name", visitor.name));
}

/* ---- answers after the group commit ----
 * A request whose action writes is held until the writer thread has committed it; then it is
 * answered (or, when its client went away meanwhile, just forgotten: the write stands). */

typedef enum { ANSWER_MESSAGE, ANSWER_OK, ANSWER_CONVERSATION } answer_kind_t;

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

typedef struct waiting {
    kf_req_t *req; /* NULL once the client is gone */
    answer_kind_t kind;
    int64_t conversation_id; /* ANSWER_CONVERSATION */
} waiting_t;

static void waiting_abort_cb(kf_req_t *req, void *data)
{
    (void)req;
    ((waiting_t *)data)->req = NULL;
}

static void committed_answer_cb(kf_app_t *app, void *data, const char *result,
                                const kf_chat_error_t *err)
{
    (void)app;
    waiting_t *waiting = data;
    kf_req_t *req = waiting->req;
    if (req == NULL) {
        free(waiting); /* the client left: nothing to answer */
        return;
    }
    if (err != NULL)
        kf_resp_error(req, err->status, err->code, err->message);
    else if (waiting->kind == ANSWER_MESSAGE && result == NULL)
        kf_resp_error(req, 500, "internal", "could not encode the response");
    else if (waiting->kind == ANSWER_MESSAGE)
        answer_message(req, result);
    else if (waiting->kind == ANSWER_CONVERSATION)
        answer_conversation(req, waiting->conversation_id, 200);
    else
        kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
    free(waiting);
}

/* Runs a writing action (kf_chat_send or kf_chat_read, the rest of the arguments bound by the
 * caller through act) and holds req for its answer; answers an error at once when it fails. */
typedef int (*action_fn)(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *value,
                         kf_chat_done_cb done, void *done_data, kf_chat_error_t *err);

static void act_then_answer(kf_req_t *req, action_fn act, kf_actor_t who, int64_t conversation_id,
                            json_t *value, answer_kind_t kind)
{
    waiting_t *waiting = kf_xcalloc(1, sizeof *waiting);
    waiting->req = req;
    waiting->kind = kind;
    waiting->conversation_id = conversation_id;
    kf_chat_error_t err;
    if (act(req->app, who, conversation_id, value, committed_answer_cb, waiting, &err) != 0) {
        free(waiting);
        answer_error(req, &err);
        return;
    }
    kf_req_hold(req, waiting_abort_cb, waiting);
}

void kf_api_visitor_message_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_actor_t who;
    json_t *root = visitor_post(req, &who);
    if (root == NULL)
        return;
    int64_t wait_ms = 0;
    if (!kf_chat_visitor_take(((kf_app_t *)req->app)->visitor_messages, who.id, &wait_ms)) {
        json_decref(root);
        kf_chat_rate_limited(req, wait_ms, "messages");
        return;
    }
    act_then_answer(req, kf_chat_send, who, 0, json_object_get(root, "body"), ANSWER_MESSAGE);
    json_decref(root);
}

void kf_api_visitor_messages_get(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    kf_visitor_auth_t visitor;
    uint64_t after;
    if (!require_visitor(req, &visitor) || !kf_chat_read_after(req, &after))
        return;
    messages_out_t out = {json_array(), 0};
    int rc = app->store->ops->messages_of_visitor(app->store, visitor.id, (int64_t)after,
                                                  KF_PAGE_SIZE, collect_message_cb, &out);
    answer_messages(req, rc, &out);
}

void kf_api_visitor_read_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_actor_t who;
    json_t *root = visitor_post(req, &who);
    if (root == NULL)
        return;
    act_then_answer(req, kf_chat_read, who, 0, json_object_get(root, "up_to"), ANSWER_OK);
    json_decref(root);
}

void kf_api_visitor_typing_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_actor_t who;
    json_t *root = visitor_post(req, &who);
    if (root == NULL)
        return;
    kf_chat_error_t err;
    int rc = kf_chat_typing(req->app, who, 0, json_object_get(root, "typing"), &err);
    json_decref(root);
    if (rc != 0)
        answer_error(req, &err);
    else
        kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
}

void kf_api_visitor_ticket_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_visitor_auth_t visitor;
    if (require_visitor(req, &visitor))
        send_ticket(req, 'v', visitor.id);
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

typedef struct login_agent {
    kf_agent_auth_t agent;
    char password_hash[KF_PASSWORD_HASH_SIZE];
} login_agent_t;

static int login_agent_cb(void *ctx, const kf_agent_t *a)
{
    login_agent_t *login = ctx;
    snprintf(login->password_hash, sizeof login->password_hash, "%s", a->password_hash);
    return copy_agent_cb(&login->agent, a);
}

void kf_api_agent_login(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    json_t *root = read_json(req);
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
    char lower[KF_MAX_EMAIL_BYTES + 1];
    snprintf(lower, sizeof lower, "%s", json_string_value(email));
    for (char *p = lower; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    /* Failed logins are limited per account and per address (password guessing); a refused
     * attempt costs no scrypt either. */
    int64_t now = kf_now_ms(), wait_account = 0, wait_address = 0;
    bool allowed = kf_limit_check(app->login_by_account, lower, now, &wait_account);
    allowed =
        kf_limit_check(app->login_by_address, kf_req_peer(req), now, &wait_address) && allowed;
    if (!allowed) {
        json_decref(root);
        int64_t wait_s = ((wait_account > wait_address ? wait_account : wait_address) + 999) / 1000;
        char retry[24], message[96];
        snprintf(retry, sizeof retry, "%lld", (long long)wait_s);
        snprintf(message, sizeof message, "too many failed logins; try again in %lld s",
                 (long long)wait_s);
        kf_info("login for %s from %s refused: too many failures", lower, kf_req_peer(req));
        kf_resp_header(req, "Retry-After", retry);
        kf_resp_error(req, 429, "rate_limited", message);
        return;
    }
    login_agent_t login = {0};
    int rc = app->store->ops->agent_by_email(app->store, lower, login_agent_cb, &login);
    /* An unknown e-mail costs one hash too, so timing does not tell which accounts exist. */
    static const char dummy[] =
        "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    bool ok = kf_auth_password_verify(json_string_value(password),
                                      rc == 0 ? login.password_hash : dummy) &&
              rc == 0;
    json_decref(root);
    if (rc != 0 && rc != KF_ENOTFOUND) {
        store_failed(req, rc);
        return;
    }
    if (!ok) {
        /* Charged with a growing delay: each lock-out after the first lasts twice as long. */
        kf_limit_charge(app->login_by_account, lower, now, NULL);
        kf_limit_charge(app->login_by_address, kf_req_peer(req), now, NULL);
        kf_info("failed login for %s from %s", lower, kf_req_peer(req));
        kf_resp_error(req, 401, "unauthorized", "wrong e-mail or password");
        return;
    }
    char token[KF_TOKEN_SIZE], csrf[KF_TOKEN_SIZE], hash[KF_HASH_HEX_SIZE];
    if (kf_auth_random_token(token) != 0 || kf_auth_random_token(csrf) != 0) {
        kf_resp_error(req, 500, "internal", "no randomness available");
        return;
    }
    kf_limit_reset(app->login_by_account, lower);
    kf_auth_sha256_hex(token, strlen(token), hash);
    /* A fresh token at every login: a session id planted before login is never adopted. */
    rc = app->store->ops->session_create(app->store, hash, login.agent.id, csrf, now,
                                         now + app->config.session_ttl_ms);
    if (rc != 0) {
        store_failed(req, rc);
        return;
    }
    kf_info("agent %s logged in from %s", lower, kf_req_peer(req));
    set_session_cookie(req, token, app->config.session_ttl_ms / 1000);
    kf_resp_json(req, 200,
                 json_pack("{s:o,s:s}", "agent", agent_auth_json(&login.agent), "csrf", csrf));
}

void kf_api_agent_me(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_agent_auth_t agent;
    if (!require_agent(req, &agent, false))
        return;
    kf_resp_json(req, 200,
                 json_pack("{s:o,s:s}", "agent", agent_auth_json(&agent), "csrf", agent.csrf));
}

void kf_api_agent_logout(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    kf_agent_auth_t agent;
    if (!require_agent(req, &agent, true))
        return;
    kf_str_t token;
    if (session_token(req, &token)) {
        char hash[KF_HASH_HEX_SIZE];
        kf_auth_sha256_hex(token.ptr, token.len, hash);
        /* Told it is logged out, the agent must be: the session may not outlive a failure. */
        kf_auth_cache_remove(app->agent_sessions, hash);
        int rc = app->store->ops->session_delete(app->store, hash);
        if (rc != 0 && rc != KF_ENOTFOUND) {
            store_failed(req, rc);
            return;
        }
    }
    /* Its streams end too (a WebSocket could otherwise still send as the agent); the agent's
     * other sessions, if any, reconnect with their own cookies. */
    kf_push_end_subject(app->push, 'a', agent.id);
    set_session_cookie(req, "", 0);
    kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
}

void kf_api_agent_ticket_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_agent_auth_t agent;
    if (require_agent(req, &agent, true))
        send_ticket(req, 'a', agent.id);
}

typedef struct conversation_list {
    json_t *array;
    int64_t newest;
} conversation_list_t;

static int list_conversation_cb(void *ctx, const kf_conversation_t *c)
{
    conversation_list_t *list = ctx;
    json_array_append_new(list->array, kf_chat_conversation_json(c));
    if (c->has_last_message && c->last_message.id > list->newest)
        list->newest = c->last_message.id;
    return 0;
}

void kf_api_conversations_get(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    kf_agent_auth_t agent;
    if (!require_agent(req, &agent, false))
        return;
    conversation_list_t list = {json_array(), 0};
    int rc =
        app->store->ops->conversation_list(app->store, LIST_LIMIT, list_conversation_cb, &list);
    if (rc != 0) {
        json_decref(list.array);
        store_failed(req, rc);
        return;
    }
    char cursor[24];
    snprintf(cursor, sizeof cursor, "%lld", (long long)list.newest);
    kf_resp_json(req, 200, json_pack("{s:o,s:s}", "conversations", list.array, "cursor", cursor));
}

void kf_api_conversation_get(kf_req_t *req, const int64_t *ids)
{
    kf_agent_auth_t agent;
    if (require_agent(req, &agent, false))
        answer_conversation(req, ids[0], 200);
}

static int exists_cb(void *ctx, const kf_conversation_t *c)
{
    (void)ctx;
    (void)c;
    return 0;
}

void kf_api_conversation_messages_get(kf_req_t *req, const int64_t *ids)
{
    kf_app_t *app = req->app;
    kf_agent_auth_t agent;
    uint64_t after;
    if (!require_agent(req, &agent, false) || !kf_chat_read_after(req, &after))
        return;
    int rc = app->store->ops->conversation_get(app->store, ids[0], exists_cb, NULL);
    if (rc == KF_ENOTFOUND) {
        kf_resp_error(req, 404, "not_found", "no such conversation");
        return;
    }
    messages_out_t out = {json_array(), 0};
    if (rc == 0)
        rc = app->store->ops->messages_in_conversation(app->store, ids[0], (int64_t)after,
                                                       KF_PAGE_SIZE, collect_message_cb, &out);
    answer_messages(req, rc, &out);
}

/* Reads the JSON body of an agent's POST on one conversation; NULL after answering. */
static json_t *agent_post(kf_req_t *req, kf_actor_t *who)
{
    kf_agent_auth_t agent;
    if (!require_agent(req, &agent, true))
        return NULL;
    who->kind = 'a';
    who->id = agent.id;
    return read_json(req);
}

void kf_api_conversation_message_post(kf_req_t *req, const int64_t *ids)
{
    kf_actor_t who;
    json_t *root = agent_post(req, &who);
    if (root == NULL)
        return;
    act_then_answer(req, kf_chat_send, who, ids[0], json_object_get(root, "body"), ANSWER_MESSAGE);
    json_decref(root);
}

void kf_api_conversation_read_post(kf_req_t *req, const int64_t *ids)
{
    kf_actor_t who;
    json_t *root = agent_post(req, &who);
    if (root == NULL)
        return;
    act_then_answer(req, kf_chat_read, who, ids[0], json_object_get(root, "up_to"),
                    ANSWER_CONVERSATION);
    json_decref(root);
}

void kf_api_conversation_typing_post(kf_req_t *req, const int64_t *ids)
{
    kf_actor_t who;
    json_t *root = agent_post(req, &who);
    if (root == NULL)
        return;
    kf_chat_error_t err;
    int rc = kf_chat_typing(req->app, who, ids[0], json_object_get(root, "typing"), &err);
    json_decref(root);
    if (rc != 0)
        answer_error(req, &err);
    else
        kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
}

void kf_api_conversation_status_post(kf_req_t *req, const int64_t *ids)
{
    kf_app_t *app = req->app;
    kf_actor_t who;
    json_t *root = agent_post(req, &who);
    if (root == NULL)
        return;
    const char *status = json_string_value(json_object_get(root, "status"));
    if (status == NULL || (strcmp(status, "open") != 0 && strcmp(status, "closed") != 0)) {
        json_decref(root);
        kf_resp_error(req, 422, "invalid", "status must be \"open\" or \"closed\"");
        return;
    }
    int rc = app->store->ops->conversation_set_status(app->store, ids[0], status, kf_now_ms());
    json_decref(root);
    if (rc == KF_ENOTFOUND) {
        kf_resp_error(req, 404, "not_found", "no such conversation");
        return;
    }
    if (rc != 0) {
        store_failed(req, rc);
        return;
    }
    kf_chat_publish_conversation(app, ids[0]);
    answer_conversation(req, ids[0], 200);
}
