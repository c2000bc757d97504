/* app.c: the chat domain over HTTP: visitor and agent API handlers, authorisation, pages and
 * push endpoints. Every message is stored (and has its id) before it is answered or pushed. */
#include "chat/app.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/auth.h"
#include "base/err.h"
#include "base/log.h"
#include "http/assets.h"
#include "http/router.h"

#define AGENTS_TOPIC "agents"
#define SESSION_COOKIE "kefu_session"
#define MAX_NAME_CHARS 80
#define MAX_EMAIL_BYTES 254
#define PAGE_SIZE 500
#define LIST_LIMIT 200

/* ---- small helpers ---- */

int64_t kf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kf_app_config_default(kf_app_config_t *config)
{
    config->max_message_chars = 4000;
    config->session_ttl_ms = 7LL * 24 * 3600 * 1000;
    config->ticket_ttl_ms = 60 * 1000;
    config->secure_cookies = false;
}

/* Code points in valid UTF-8 (jansson has validated it). */
static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    }
    return n;
}

/* Trims ASCII whitespace at both ends into a new string. */
static char *trim_copy(const char *s)
{
    while (*s != '\0' && isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    return kf_xstrndup(s, len);
}

static void log_request(kf_req_t *req, const char *what)
{
    kf_info("%.*s %.*s from %s: %s", (int)req->head.method.len,
            req->head.method.ptr != NULL ? req->head.method.ptr : "", (int)req->head.path.len,
            req->head.path.ptr != NULL ? req->head.path.ptr : "", kf_req_peer(req), what);
}

static void store_failed(kf_req_t *req, int rc)
{
    kf_error("store failure on %.*s: %s", (int)req->head.path.len, req->head.path.ptr, kf_strerror(rc));
    kf_resp_error(req, 500, "internal", "the server could not complete the request");
}

/* Parses the body as a JSON object. On failure answers the request and returns NULL. */
static json_t *read_json(kf_req_t *req)
{
    const kf_str_t *type = kf_http_header_get(&req->head, "Content-Type");
    bool is_json = type != NULL && type->len >= 16 && strncasecmp(type->ptr, "application/json", 16) == 0 &&
                   (type->len == 16 || type->ptr[16] == ';' || type->ptr[16] == ' ');
    if (!is_json) {
        kf_resp_error(req, 415, "unsupported_media_type", "send the body as application/json");
        return NULL;
    }
    json_error_t error;
    json_t *root = json_loadb(req->body != NULL ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES, &error);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        log_request(req, "bad JSON body");
        kf_resp_error(req, 400, "bad_json", "the body must be a JSON object");
        return NULL;
    }
    return root;
}

/* Reads the "after" cursor from the query (absent means 0). On a bad value answers 400. */
static bool read_after(kf_req_t *req, uint64_t *after)
{
    char value[32];
    int rc = kf_http_query_get(req->head.query, "after", value, sizeof value);
    *after = 0;
    if (rc == KF_ENOTFOUND)
        return true;
    if (rc >= 0 && kf_parse_u64((kf_str_t){value, (size_t)rc}, after) == 0 && *after < (1ULL << 53))
        return true;
    kf_resp_error(req, 400, "bad_request", "after must be a message id");
    return false;
}

/* ---- JSON shapes (docs/API.md) ---- */

static json_t *message_json(const kf_message_t *m)
{
    json_t *o = json_pack("{s:I,s:I,s:I,s:s,s:s,s:I}", "id", (json_int_t)m->id, "conversation_id",
                          (json_int_t)m->conversation_id, "visitor_id", (json_int_t)m->visitor_id, "sender",
                          m->sender == KF_SENDER_AGENT ? "agent" : "visitor", "body", m->body, "created_at",
                          (json_int_t)m->created_at);
    if (m->sender == KF_SENDER_AGENT)
        json_object_set_new(o, "agent_name", json_string(m->agent_name != NULL ? m->agent_name : ""));
    return o;
}

static json_t *conversation_json(const kf_conversation_t *c)
{
    return json_pack("{s:I,s:{s:I,s:s},s:s,s:I,s:o,s:I,s:I,s:I,s:I}", "id", (json_int_t)c->id, "visitor", "id",
                     (json_int_t)c->visitor_id, "name", c->visitor_name != NULL ? c->visitor_name : "",
                     "status", c->status, "unread", (json_int_t)c->unread_for_agents, "last_message",
                     c->has_last_message ? message_json(&c->last_message) : json_null(), "created_at",
                     (json_int_t)c->created_at, "updated_at", (json_int_t)c->updated_at,
                     "agent_read_up_to", (json_int_t)c->agent_read_up_to, "visitor_read_up_to",
                     (json_int_t)c->visitor_read_up_to);
}

static json_t *agent_json(const kf_agent_t *a)
{
    return json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)a->id, "email", a->email, "name", a->name, "role",
                     a->role);
}

/* Encodes an event once; every subscriber shares the bytes. Takes the reference to body. */
static kf_event_t *event_from_json(uint64_t id, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return NULL;
    kf_event_t *event = kf_event_new(id, text, strlen(text));
    free(text);
    return event;
}

static kf_event_t *message_event(const kf_message_t *m)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)m->id);
    return event_from_json((uint64_t)m->id, json_pack("{s:s,s:s,s:o}", "type", "message", "id", id, "message",
                                                      message_json(m)));
}

static void visitor_topic(int64_t visitor_id, char *out, size_t size)
{
    snprintf(out, size, "visitor:%lld", (long long)visitor_id);
}

static void publish(kf_app_t *app, int64_t visitor_id, kf_event_t *event, bool to_visitor)
{
    if (event == NULL)
        return;
    char topic[40];
    if (to_visitor) {
        visitor_topic(visitor_id, topic, sizeof topic);
        kf_hub_publish(app->hub, topic, event);
    }
    kf_hub_publish(app->hub, AGENTS_TOPIC, event);
    kf_event_unref(event);
}

/* ---- row collectors ---- */

typedef struct messages_out {
    json_t *array;
    size_t count;
} messages_out_t;

static int collect_message_cb(void *ctx, const kf_message_t *m)
{
    messages_out_t *out = ctx;
    json_array_append_new(out->array, message_json(m));
    out->count++;
    return 0;
}

typedef struct message_copy {
    json_t *json;
    kf_event_t *event;
    int64_t visitor_id;
} message_copy_t;

static int stored_message_cb(void *ctx, const kf_message_t *m)
{
    message_copy_t *copy = ctx;
    copy->json = message_json(m);
    copy->event = message_event(m);
    copy->visitor_id = m->visitor_id;
    return 0;
}

static int copy_conversation_cb(void *ctx, const kf_conversation_t *c)
{
    json_t **out = ctx;
    *out = conversation_json(c);
    return 0;
}

/* ---- authentication ---- */

typedef struct visitor_auth {
    int64_t id;
    char name[4 * MAX_NAME_CHARS + 1];
} visitor_auth_t;

/* The visitor of a Bearer token; false when there is none or it is unknown. */
static bool bearer_visitor(kf_req_t *req, visitor_auth_t *visitor)
{
    kf_app_t *app = req->app;
    const kf_str_t *header = kf_http_header_get(&req->head, "Authorization");
    if (header == NULL || header->len < 8 || strncasecmp(header->ptr, "Bearer ", 7) != 0)
        return false;
    char hash[KF_HASH_HEX_SIZE];
    kf_auth_sha256_hex(header->ptr + 7, header->len - 7, hash);
    return app->store->ops->visitor_by_token(app->store, hash, &visitor->id, visitor->name,
                                             sizeof visitor->name) == 0;
}

/* Answers 401 unless the request carries a known visitor token. */
static bool require_visitor(kf_req_t *req, visitor_auth_t *visitor)
{
    if (bearer_visitor(req, visitor))
        return true;
    kf_resp_error(req, 401, "unauthorized", "a valid visitor token is required (Authorization: Bearer)");
    return false;
}

typedef struct agent_auth {
    int64_t id;
    char email[MAX_EMAIL_BYTES + 1];
    char name[4 * MAX_NAME_CHARS + 1];
    char role[16];
    char csrf[KF_TOKEN_SIZE];
    json_t *json;
} agent_auth_t;

static int copy_agent_cb(void *ctx, const kf_agent_t *a)
{
    agent_auth_t *agent = ctx;
    agent->id = a->id;
    snprintf(agent->email, sizeof agent->email, "%s", a->email);
    snprintf(agent->name, sizeof agent->name, "%s", a->name);
    snprintf(agent->role, sizeof agent->role, "%s", a->role);
    agent->json = agent_json(a);
    return 0;
}

/* The agent of the session cookie; false when there is none. */
static bool cookie_agent(kf_req_t *req, agent_auth_t *agent)
{
    kf_app_t *app = req->app;
    agent->json = NULL;
    const kf_str_t *cookies = kf_http_header_get(&req->head, "Cookie");
    kf_str_t token;
    if (cookies == NULL || kf_http_cookie_get(*cookies, SESSION_COOKIE, &token) != 0 || token.len == 0)
        return false;
    char hash[KF_HASH_HEX_SIZE];
    kf_auth_sha256_hex(token.ptr, token.len, hash);
    int64_t agent_id;
    if (app->store->ops->session_get(app->store, hash, kf_now_ms(), &agent_id, agent->csrf,
                                     sizeof agent->csrf) != 0)
        return false;
    return app->store->ops->agent_by_id(app->store, agent_id, copy_agent_cb, agent) == 0;
}

/* Answers 401 without a session, 403 when a state-changing request lacks the CSRF token. */
static bool require_agent(kf_req_t *req, agent_auth_t *agent, bool state_changing)
{
    if (!cookie_agent(req, agent)) {
        kf_resp_error(req, 401, "unauthorized", "log in as an agent first");
        return false;
    }
    if (state_changing) {
        const kf_str_t *token = kf_http_header_get(&req->head, "X-CSRF-Token");
        if (token == NULL || !kf_auth_equal(token->ptr, token->len, agent->csrf, strlen(agent->csrf))) {
            json_decref(agent->json);
            log_request(req, "missing or wrong CSRF token");
            kf_resp_error(req, 403, "csrf", "missing or wrong X-CSRF-Token header");
            return false;
        }
    }
    return true;
}

/* ---- message validation ---- */

/* Returns the trimmed body of a {"body": "..."} request, or NULL after answering 422. */
static char *message_body(kf_req_t *req, json_t *root)
{
    kf_app_t *app = req->app;
    json_t *body = json_object_get(root, "body");
    if (!json_is_string(body)) {
        kf_resp_error(req, 422, "invalid", "body must be a string");
        return NULL;
    }
    char *text = trim_copy(json_string_value(body));
    size_t chars = utf8_length(text);
    if (chars == 0 || chars > app->config.max_message_chars) {
        char message[96];
        snprintf(message, sizeof message, "a message has 1 to %zu characters", app->config.max_message_chars);
        free(text);
        kf_resp_error(req, 422, "invalid", message);
        return NULL;
    }
    return text;
}

/* Stores a message and pushes it; answers 201 {"message": ...}. */
static void add_message(kf_req_t *req, int64_t conversation_id, kf_sender_t sender, int64_t agent_id,
                        const char *text)
{
    kf_app_t *app = req->app;
    message_copy_t copy = {0};
    int rc = app->store->ops->message_add(app->store, conversation_id, sender, agent_id, text, kf_now_ms(),
                                          stored_message_cb, &copy);
    if (rc == KF_ENOTFOUND) {
        kf_resp_error(req, 404, "not_found", "no such conversation");
        return;
    }
    if (rc != 0) {
        store_failed(req, rc);
        return;
    }
    publish(app, copy.visitor_id, copy.event, true);
    kf_resp_json(req, 201, json_pack("{s:o}", "message", copy.json));
}

/* ---- visitor handlers ---- */

static void visitor_session_create(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    json_t *root = read_json(req);
    if (root == NULL)
        return;
    const char *name = "";
    json_t *name_json = json_object_get(root, "name");
    if (name_json != NULL && !json_is_null(name_json)) {
        if (!json_is_string(name_json) || utf8_length(json_string_value(name_json)) > MAX_NAME_CHARS) {
            json_decref(root);
            kf_resp_error(req, 422, "invalid", "name must be a string of at most 80 characters");
            return;
        }
        name = json_string_value(name_json);
    }
    char *trimmed = trim_copy(name);
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
    kf_resp_json(req, 201, json_pack("{s:s,s:{s:I,s:s}}", "token", token, "visitor", "id", (json_int_t)id,
                                     "name", trimmed));
    free(trimmed);
}

static void visitor_session_get(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    visitor_auth_t visitor;
    if (!require_visitor(req, &visitor))
        return;
    kf_resp_json(req, 200, json_pack("{s:{s:I,s:s}}", "visitor", "id", (json_int_t)visitor.id, "name",
                                     visitor.name));
}

static void visitor_message_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    visitor_auth_t visitor;
    if (!require_visitor(req, &visitor))
        return;
    json_t *root = read_json(req);
    if (root == NULL)
        return;
    char *text = message_body(req, root);
    json_decref(root);
    if (text == NULL)
        return;
    int64_t conversation_id;
    int rc = app->store->ops->conversation_open_for_visitor(app->store, visitor.id, kf_now_ms(), &conversation_id);
    if (rc != 0)
        store_failed(req, rc);
    else
        add_message(req, conversation_id, KF_SENDER_VISITOR, 0, text);
    free(text);
}

/* Answers {"messages": [...], "more": bool} from one of the store's message queries. */
static void answer_messages(kf_req_t *req, int rc, messages_out_t *out)
{
    if (rc != 0) {
        json_decref(out->array);
        store_failed(req, rc);
        return;
    }
    kf_resp_json(req, 200, json_pack("{s:o,s:b}", "messages", out->array, "more", out->count >= PAGE_SIZE));
}

static void visitor_messages_get(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    visitor_auth_t visitor;
    uint64_t after;
    if (!require_visitor(req, &visitor) || !read_after(req, &after))
        return;
    messages_out_t out = {json_array(), 0};
    int rc = app->store->ops->messages_of_visitor(app->store, visitor.id, (int64_t)after, PAGE_SIZE,
                                                  collect_message_cb, &out);
    answer_messages(req, rc, &out);
}

/* Reads {"up_to": id}; answers 422 and returns false when it is missing or not a positive id. */
static bool read_up_to(kf_req_t *req, json_t *root, int64_t *up_to)
{
    json_t *value = json_object_get(root, "up_to");
    if (!json_is_integer(value) || json_integer_value(value) < 0) {
        kf_resp_error(req, 422, "invalid", "up_to must be a message id");
        return false;
    }
    *up_to = json_integer_value(value);
    return true;
}

static kf_event_t *read_event(int64_t conversation_id, const char *reader, int64_t up_to)
{
    return event_from_json(0, json_pack("{s:s,s:I,s:s,s:I}", "type", "read", "conversation_id",
                                        (json_int_t)conversation_id, "reader", reader, "up_to",
                                        (json_int_t)up_to));
}

static int last_conversation_cb(void *ctx, const kf_message_t *m)
{
    *(int64_t *)ctx = m->conversation_id;
    return 0;
}

static void visitor_read_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    visitor_auth_t visitor;
    if (!require_visitor(req, &visitor))
        return;
    json_t *root = read_json(req);
    if (root == NULL)
        return;
    int64_t up_to;
    bool ok = read_up_to(req, root, &up_to);
    json_decref(root);
    if (!ok)
        return;
    int64_t conversation_id = 0;
    int rc = app->store->ops->conversation_open_for_visitor(app->store, visitor.id, kf_now_ms(), &conversation_id);
    if (rc == 0) {
        /* The read mark belongs to the conversation that holds the message; the visitor's own
         * message query finds it without letting them name another visitor's conversation. */
        int64_t found = 0;
        if (up_to > 0)
            app->store->ops->messages_of_visitor(app->store, visitor.id, up_to - 1, 1, last_conversation_cb, &found);
        if (found != 0)
            conversation_id = found;
        rc = app->store->ops->conversation_mark_read(app->store, conversation_id, KF_SENDER_VISITOR, up_to);
    }
    if (rc != 0) {
        store_failed(req, rc);
        return;
    }
    publish(app, visitor.id, read_event(conversation_id, "visitor", up_to), true);
    kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static void send_ticket(kf_req_t *req, char kind, int64_t subject)
{
    kf_app_t *app = req->app;
    char ticket[KF_TICKET_SIZE];
    kf_auth_ticket_sign(app->ticket_key, sizeof app->ticket_key, kind, subject,
                        kf_now_ms() + app->config.ticket_ttl_ms, ticket);
    kf_resp_json(req, 201, json_pack("{s:s,s:I}", "ticket", ticket, "expires_in",
                                     (json_int_t)(app->config.ticket_ttl_ms / 1000)));
}

static void visitor_ticket_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    visitor_auth_t visitor;
    if (require_visitor(req, &visitor))
        send_ticket(req, 'v', visitor.id);
}

/* ---- agent handlers ---- */

static void set_session_cookie(kf_req_t *req, const char *token, int64_t max_age_s)
{
    kf_app_t *app = req->app;
    char cookie[256];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", SESSION_COOKIE,
             token, (long long)max_age_s, app->config.secure_cookies ? "; Secure" : "");
    kf_resp_header(req, "Set-Cookie", cookie);
}

typedef struct login_agent {
    agent_auth_t agent;
    char password_hash[KF_PASSWORD_HASH_SIZE];
} login_agent_t;

static int login_agent_cb(void *ctx, const kf_agent_t *a)
{
    login_agent_t *login = ctx;
    snprintf(login->password_hash, sizeof login->password_hash, "%s", a->password_hash);
    return copy_agent_cb(&login->agent, a);
}

static void agent_login(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    json_t *root = read_json(req);
    if (root == NULL)
        return;
    json_t *email = json_object_get(root, "email");
    json_t *password = json_object_get(root, "password");
    if (!json_is_string(email) || !json_is_string(password) || json_string_length(email) > MAX_EMAIL_BYTES) {
        json_decref(root);
        kf_resp_error(req, 422, "invalid", "email and password are required");
        return;
    }
    char lower[MAX_EMAIL_BYTES + 1];
    snprintf(lower, sizeof lower, "%s", json_string_value(email));
    for (char *p = lower; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    login_agent_t login = {0};
    int rc = app->store->ops->agent_by_email(app->store, lower, login_agent_cb, &login);
    /* An unknown e-mail costs one hash too, so timing does not tell which accounts exist. */
    static const char dummy[] = "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    bool ok = kf_auth_password_verify(json_string_value(password), rc == 0 ? login.password_hash : dummy) &&
              rc == 0;
    json_decref(root);
    if (rc != 0 && rc != KF_ENOTFOUND) {
        store_failed(req, rc);
        return;
    }
    if (!ok) {
        json_decref(login.agent.json);
        kf_info("failed login for %s from %s", lower, kf_req_peer(req));
        kf_resp_error(req, 401, "unauthorized", "wrong e-mail or password");
        return;
    }
    char token[KF_TOKEN_SIZE], csrf[KF_TOKEN_SIZE], hash[KF_HASH_HEX_SIZE];
    if (kf_auth_random_token(token) != 0 || kf_auth_random_token(csrf) != 0) {
        json_decref(login.agent.json);
        kf_resp_error(req, 500, "internal", "no randomness available");
        return;
    }
    kf_auth_sha256_hex(token, strlen(token), hash);
    int64_t now = kf_now_ms();
    rc = app->store->ops->session_create(app->store, hash, login.agent.id, csrf, now, now + app->config.session_ttl_ms);
    if (rc != 0) {
        json_decref(login.agent.json);
        store_failed(req, rc);
        return;
    }
    kf_info("agent %s logged in from %s", lower, kf_req_peer(req));
    set_session_cookie(req, token, app->config.session_ttl_ms / 1000);
    kf_resp_json(req, 200, json_pack("{s:o,s:s}", "agent", login.agent.json, "csrf", csrf));
}

static void agent_me(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    agent_auth_t agent;
    if (!require_agent(req, &agent, false))
        return;
    kf_resp_json(req, 200, json_pack("{s:o,s:s}", "agent", agent.json, "csrf", agent.csrf));
}

static void agent_logout(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    agent_auth_t agent;
    if (!require_agent(req, &agent, true))
        return;
    json_decref(agent.json);
    const kf_str_t *cookies = kf_http_header_get(&req->head, "Cookie");
    kf_str_t token;
    if (cookies != NULL && kf_http_cookie_get(*cookies, SESSION_COOKIE, &token) == 0) {
        char hash[KF_HASH_HEX_SIZE];
        kf_auth_sha256_hex(token.ptr, token.len, hash);
        app->store->ops->session_delete(app->store, hash);
    }
    set_session_cookie(req, "", 0);
    kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static void agent_ticket_post(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    agent_auth_t agent;
    if (!require_agent(req, &agent, true))
        return;
    json_decref(agent.json);
    send_ticket(req, 'a', agent.id);
}

typedef struct conversation_list {
    json_t *array;
    int64_t newest;
} conversation_list_t;

static int list_conversation_cb(void *ctx, const kf_conversation_t *c)
{
    conversation_list_t *list = ctx;
    json_array_append_new(list->array, conversation_json(c));
    if (c->has_last_message && c->last_message.id > list->newest)
        list->newest = c->last_message.id;
    return 0;
}

static void conversations_get(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    kf_app_t *app = req->app;
    agent_auth_t agent;
    if (!require_agent(req, &agent, false))
        return;
    json_decref(agent.json);
    conversation_list_t list = {json_array(), 0};
    int rc = app->store->ops->conversation_list(app->store, LIST_LIMIT, list_conversation_cb, &list);
    if (rc != 0) {
        json_decref(list.array);
        store_failed(req, rc);
        return;
    }
    char cursor[24];
    snprintf(cursor, sizeof cursor, "%lld", (long long)list.newest);
    kf_resp_json(req, 200, json_pack("{s:o,s:s}", "conversations", list.array, "cursor", cursor));
}

/* Answers {"conversation": ...} for id with status, or 404. */
static void answer_conversation(kf_req_t *req, int64_t id, int status)
{
    kf_app_t *app = req->app;
    json_t *conversation = NULL;
    int rc = app->store->ops->conversation_get(app->store, id, copy_conversation_cb, &conversation);
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

/* Pushes the conversation's current state to the agents. */
static void publish_conversation(kf_app_t *app, int64_t id)
{
    json_t *conversation = NULL;
    if (app->store->ops->conversation_get(app->store, id, copy_conversation_cb, &conversation) != 0)
        return;
    kf_event_t *event = event_from_json(0, json_pack("{s:s,s:o}", "type", "conversation", "conversation",
                                                     conversation));
    if (event != NULL) {
        kf_hub_publish(app->hub, AGENTS_TOPIC, event);
        kf_event_unref(event);
    }
}

static void conversation_get(kf_req_t *req, const int64_t *ids)
{
    agent_auth_t agent;
    if (!require_agent(req, &agent, false))
        return;
    json_decref(agent.json);
    answer_conversation(req, ids[0], 200);
}

static bool conversation_exists(kf_app_t *app, int64_t id)
{
    json_t *conversation = NULL;
    int rc = app->store->ops->conversation_get(app->store, id, copy_conversation_cb, &conversation);
    json_decref(conversation);
    return rc == 0;
}

static void conversation_messages_get(kf_req_t *req, const int64_t *ids)
{
    kf_app_t *app = req->app;
    agent_auth_t agent;
    uint64_t after;
    if (!require_agent(req, &agent, false))
        return;
    json_decref(agent.json);
    if (!read_after(req, &after))
        return;
    if (!conversation_exists(app, ids[0])) {
        kf_resp_error(req, 404, "not_found", "no such conversation");
        return;
    }
    messages_out_t out = {json_array(), 0};
    int rc = app->store->ops->messages_in_conversation(app->store, ids[0], (int64_t)after, PAGE_SIZE,
                                                       collect_message_cb, &out);
    answer_messages(req, rc, &out);
}

static void conversation_message_post(kf_req_t *req, const int64_t *ids)
{
    agent_auth_t agent;
    if (!require_agent(req, &agent, true))
        return;
    json_decref(agent.json);
    json_t *root = read_json(req);
    if (root == NULL)
        return;
    char *text = message_body(req, root);
    json_decref(root);
    if (text == NULL)
        return;
    add_message(req, ids[0], KF_SENDER_AGENT, agent.id, text);
    free(text);
}

static int conversation_visitor_cb(void *ctx, const kf_conversation_t *c)
{
    *(int64_t *)ctx = c->visitor_id;
    return 0;
}

static void conversation_read_post(kf_req_t *req, const int64_t *ids)
{
    kf_app_t *app = req->app;
    agent_auth_t agent;
    if (!require_agent(req, &agent, true))
        return;
    json_decref(agent.json);
    json_t *root = read_json(req);
    if (root == NULL)
        return;
    int64_t up_to;
    bool ok = read_up_to(req, root, &up_to);
    json_decref(root);
    if (!ok)
        return;
    int64_t visitor_id = 0;
    int rc = app->store->ops->conversation_get(app->store, ids[0], conversation_visitor_cb, &visitor_id);
    if (rc == 0)
        rc = app->store->ops->conversation_mark_read(app->store, ids[0], KF_SENDER_AGENT, up_to);
    if (rc == KF_ENOTFOUND) {
        kf_resp_error(req, 404, "not_found", "no such conversation");
        return;
    }
    if (rc != 0) {
        store_failed(req, rc);
        return;
    }
    publish(app, visitor_id, read_event(ids[0], "agent", up_to), true);
    publish_conversation(app, ids[0]);
    answer_conversation(req, ids[0], 200);
}

static void conversation_status_post(kf_req_t *req, const int64_t *ids)
{
    kf_app_t *app = req->app;
    agent_auth_t agent;
    if (!require_agent(req, &agent, true))
        return;
    json_decref(agent.json);
    json_t *root = read_json(req);
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
    publish_conversation(app, ids[0]);
    answer_conversation(req, ids[0], 200);
}

/* ---- push ---- */

typedef struct replay_ctx {
    kf_app_t *app;
    int64_t visitor_id; /* 0 for agents: every conversation */
    kf_push_emit_fn emit;
    void *emit_ctx;
    size_t count;
    int emit_rc;
} replay_ctx_t;

static int replay_message_cb(void *ctx, const kf_message_t *m)
{
    replay_ctx_t *replay = ctx;
    kf_event_t *event = message_event(m);
    if (event == NULL)
        return KF_ENOMEM;
    int rc = replay->emit(replay->emit_ctx, event);
    kf_event_unref(event);
    replay->count++;
    replay->emit_rc = rc;
    return rc;
}

static int replay(void *ctx, uint64_t after, size_t limit, kf_push_emit_fn emit, void *emit_ctx, bool *more)
{
    replay_ctx_t *replay = ctx;
    kf_store_t *store = replay->app->store;
    replay->emit = emit;
    replay->emit_ctx = emit_ctx;
    replay->count = 0;
    replay->emit_rc = 0;
    int rc = replay->visitor_id != 0
                 ? store->ops->messages_of_visitor(store, replay->visitor_id, (int64_t)after, limit,
                                                   replay_message_cb, replay)
                 : store->ops->messages_all(store, (int64_t)after, limit, replay_message_cb, replay);
    *more = replay->count >= limit;
    return rc;
}

static void push_serve(kf_req_t *req, kf_push_transport_t transport)
{
    kf_app_t *app = req->app;
    uint64_t after;
    if (!read_after(req, &after))
        return;
    uint64_t hold_ms = 0;
    char value[64];
    int n = kf_http_query_get(req->head.query, "timeout", value, sizeof value);
    if (n >= 0) {
        uint64_t seconds;
        if (kf_parse_u64((kf_str_t){value, (size_t)n}, &seconds) != 0 || seconds < 1 || seconds > 55) {
            kf_resp_error(req, 400, "bad_request", "timeout must be 1 to 55 seconds");
            return;
        }
        hold_ms = seconds * 1000;
    }
    replay_ctx_t ctx = {.app = app};
    char topic[40];
    n = kf_http_query_get(req->head.query, "ticket", value, sizeof value);
    if (n >= 0 || n == KF_ETOOBIG) {
        char kind;
        int64_t subject;
        int rc = n < 0 ? KF_EAUTH
                       : kf_auth_ticket_verify(app->ticket_key, sizeof app->ticket_key, value, (size_t)n,
                                               kf_now_ms(), &kind, &subject);
        if (rc != 0) {
            log_request(req, "bad push ticket");
            kf_resp_error(req, 401, "unauthorized", rc == KF_EEXPIRED ? "the push ticket has expired"
                                                                       : "invalid push ticket");
            return;
        }
        ctx.visitor_id = kind == 'v' ? subject : 0;
    } else {
        visitor_auth_t visitor;
        agent_auth_t agent;
        if (bearer_visitor(req, &visitor)) {
            ctx.visitor_id = visitor.id;
        } else if (cookie_agent(req, &agent)) {
            json_decref(agent.json);
            ctx.visitor_id = 0;
        } else {
            kf_resp_error(req, 401, "unauthorized", "a visitor token, agent session or push ticket is required");
            return;
        }
    }
    if (ctx.visitor_id != 0)
        visitor_topic(ctx.visitor_id, topic, sizeof topic);
    else
        snprintf(topic, sizeof topic, "%s", AGENTS_TOPIC);
    kf_push_source_t source = {.topic = topic, .replay = replay, .ctx = &ctx};
    kf_push_serve(app->push, req, transport, &source, after, hold_ms);
}

static void push_poll(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    push_serve(req, KF_PUSH_POLL);
}

static void push_longpoll(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    push_serve(req, KF_PUSH_LONGPOLL);
}

static void push_iframe(kf_req_t *req, const int64_t *ids)
{
    (void)ids;
    push_serve(req, KF_PUSH_IFRAME);
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
                       "default-src 'self'; img-src 'self' data:; frame-src 'self'; frame-ancestors 'self'; "
                       "base-uri 'none'; form-action 'self'; object-src 'none'");
        kf_resp_header(req, "X-Frame-Options", "SAMEORIGIN");
        kf_resp_header(req, "Cache-Control", "no-cache");
    } else {
        kf_resp_header(req, "Cache-Control", "no-cache");
    }
    kf_resp_send(req, 200, type, asset->data, asset->len);
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
    {"POST", "/api/visitor/session", visitor_session_create},
    {"GET", "/api/visitor/session", visitor_session_get},
    {"POST", "/api/visitor/messages", visitor_message_post},
    {"GET", "/api/visitor/messages", visitor_messages_get},
    {"POST", "/api/visitor/read", visitor_read_post},
    {"POST", "/api/visitor/push-ticket", visitor_ticket_post},
    {"POST", "/api/agent/login", agent_login},
    {"GET", "/api/agent/me", agent_me},
    {"POST", "/api/agent/logout", agent_logout},
    {"POST", "/api/agent/push-ticket", agent_ticket_post},
    {"GET", "/api/conversations", conversations_get},
    {"GET", "/api/conversations/{id}", conversation_get},
    {"GET", "/api/conversations/{id}/messages", conversation_messages_get},
    {"POST", "/api/conversations/{id}/messages", conversation_message_post},
    {"POST", "/api/conversations/{id}/read", conversation_read_post},
    {"POST", "/api/conversations/{id}/status", conversation_status_post},
    {"GET", "/push/poll", push_poll},
    {"GET", "/push/longpoll", push_longpoll},
    {"GET", "/push/iframe", push_iframe},
};

void kf_app_handle(kf_req_t *req)
{
    kf_str_t path = req->head.path;
    static const char static_prefix[] = "/static/";
    if (path.len > sizeof static_prefix - 1 && memcmp(path.ptr, static_prefix, sizeof static_prefix - 1) == 0) {
        if (!kf_str_eq(req->head.method, "GET") && !kf_str_eq(req->head.method, "HEAD")) {
            kf_resp_error(req, 405, "method_not_allowed", "static files are read-only");
            return;
        }
        /* Exact lookup in the embedded table: no path ever reaches the file system. */
        send_asset(req, path.ptr + sizeof static_prefix - 1, path.len - (sizeof static_prefix - 1));
        return;
    }
    kf_route_match_t match;
    int rc = kf_router_match(routes, sizeof routes / sizeof routes[0], req->head.method, path, &match);
    if (rc == KF_ENOTFOUND) {
        kf_resp_error(req, 404, "not_found", "no such endpoint");
        return;
    }
    if (rc != 0) {
        kf_resp_error(req, 405, "method_not_allowed", "method not allowed on this endpoint");
        return;
    }
    match.route->handler(req, match.ids);
}

/* ---- life cycle ---- */

static int load_ticket_key(kf_app_t *app)
{
    char hex[65];
    int rc = app->store->ops->setting_get(app->store, "ticket_key", hex, sizeof hex);
    if (rc == KF_ENOTFOUND) {
        char token[KF_TOKEN_SIZE];
        rc = kf_auth_random_token(token);
        if (rc != 0)
            return rc;
        kf_auth_sha256_hex(token, strlen(token), hex);
        rc = app->store->ops->setting_set(app->store, "ticket_key", hex);
    }
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
    app->hub = kf_hub_new();
    app->push = kf_push_new(loop, app->hub, push_config);
    return app;
}

void kf_app_drain(kf_app_t *app) { kf_push_drain(app->push); }

void kf_app_free(kf_app_t *app)
{
    if (app == NULL)
        return;
    kf_push_free(app->push);
    kf_hub_free(app->hub);
    free(app);
}

int kf_app_create_agent(kf_store_t *store, const char *email, const char *name, const char *role,
                        const char *password)
{
    if (strcmp(role, "admin") != 0 && strcmp(role, "agent") != 0)
        return KF_EINVAL;
    size_t len = strlen(email);
    const char *at = strchr(email, '@');
    if (len == 0 || len > MAX_EMAIL_BYTES || at == NULL || at == email || at[1] == '\0' || password[0] == '\0')
        return KF_EINVAL;
    char lower[MAX_EMAIL_BYTES + 1];
    for (size_t i = 0; i <= len; i++)
        lower[i] = (char)tolower((unsigned char)email[i]);
    char hash[KF_PASSWORD_HASH_SIZE];
    int rc = kf_auth_password_hash(password, hash);
    if (rc != 0)
        return rc;
    int64_t id;
    return store->ops->agent_create(store, lower, name, role, hash, kf_now_ms(), &id);
}
