/* kefu.c: visitor sessions, first messages, agents and logins through kefu's API. */
#include "load/kefu.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTEMPTS 3

static json_t *parse_json(const char *body, size_t len)
{
    json_error_t error;
    return json_loadb(body, len, 0, &error);
}

void load_kefu_post(load_kefu_t *kefu, const char *path, const char *extra, const char *body,
                    load_done_fn done, void *ctx, uint64_t tag)
{
    kf_buf_t req;
    kf_buf_init(&req);
    load_build_post(&req, kefu->target, path, extra, "application/json", body);
    size_t len;
    char *text = kf_buf_steal(&req, &len);
    load_pool_submit(kefu->pool, text, len, done, ctx, tag);
}

bool load_kefu_message_of(const char *body, size_t body_len, int64_t *id, int64_t *conversation_id)
{
    json_t *root = parse_json(body, body_len);
    json_t *message = json_object_get(root, "message");
    json_t *message_id = json_object_get(message, "id");
    json_t *conversation = json_object_get(message, "conversation_id");
    bool ok = json_is_integer(message_id) && json_is_integer(conversation);
    if (ok) {
        *id = json_integer_value(message_id);
        *conversation_id = json_integer_value(conversation);
    }
    json_decref(root);
    return ok;
}

void load_kefu_agent_headers(const load_agent_t *agent, kf_buf_t *out)
{
    kf_buf_printf(out, "Cookie: %s\r\nX-CSRF-Token: %s\r\n", agent->cookie, agent->csrf);
}

/* ---- visitors ---- */

static void session_submit(load_kefu_t *kefu, uint32_t index);
static void first_message_submit(load_kefu_t *kefu, uint32_t index);

static void visitor_done(load_kefu_t *kefu, uint32_t index, bool ok)
{
    if (ok) {
        kefu->visitors_ready++;
    } else {
        kefu->visitors[index].failed = true;
        kefu->visitors_failed++;
    }
}

/* A step that failed: again, or the visitor has failed. */
static void visitor_retry(load_kefu_t *kefu, uint32_t index, int status,
                          void (*again)(load_kefu_t *, uint32_t))
{
    if (status != 0)
        kefu->last_bad_status = status;
    if (++kefu->visitors[index].tries < MAX_ATTEMPTS && kefu->retrying)
        again(kefu, index);
    else
        visitor_done(kefu, index, false);
}

static void session_done_cb(void *ctx, uint64_t tag, int status, const char *head, size_t head_len,
                            const char *body, size_t body_len)
{
    (void)head;
    (void)head_len;
    load_kefu_t *kefu = ctx;
    uint32_t index = (uint32_t)tag;
    load_visitor_t *v = &kefu->visitors[index];
    json_t *root = status == 201 ? parse_json(body, body_len) : NULL;
    const char *token = json_string_value(json_object_get(root, "token"));
    if (token != NULL && strlen(token) < sizeof v->token) {
        snprintf(v->token, sizeof v->token, "%s", token);
        v->tries = 0;
        if (kefu->first_messages)
            first_message_submit(kefu, index);
        else
            visitor_done(kefu, index, true);
    } else {
        visitor_retry(kefu, index, status, session_submit);
    }
    json_decref(root);
}

static void session_submit(load_kefu_t *kefu, uint32_t index)
{
    load_kefu_post(kefu, "/api/visitor/session", "", "{}", session_done_cb, kefu, index);
}

static void first_message_done_cb(void *ctx, uint64_t tag, int status, const char *head,
                                  size_t head_len, const char *body, size_t body_len)
{
    (void)head;
    (void)head_len;
    load_kefu_t *kefu = ctx;
    uint32_t index = (uint32_t)tag;
    load_visitor_t *v = &kefu->visitors[index];
    int64_t id, conversation_id;
    if (status == 201 && load_kefu_message_of(body, body_len, &id, &conversation_id)) {
        v->first_message_id = (uint64_t)id;
        v->conversation_id = conversation_id;
        visitor_done(kefu, index, true);
    } else {
        visitor_retry(kefu, index, status, first_message_submit);
    }
}

static void first_message_submit(load_kefu_t *kefu, uint32_t index)
{
    load_visitor_t *v = &kefu->visitors[index];
    char auth[LOAD_TOKEN_MAX + 32];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", v->token);
    char body[96];
    snprintf(body, sizeof body, "{\"body\":\"Hello, I am load visitor %u\"}", (unsigned)index);
    load_kefu_post(kefu, "/api/visitor/messages", auth, body, first_message_done_cb, kefu, index);
}

void load_kefu_visitors_start(load_kefu_t *kefu)
{
    for (uint32_t i = 0; i < kefu->visitor_count; i++)
        session_submit(kefu, i);
}

/* ---- agents ---- */

static void agent_failed(load_kefu_t *kefu, uint32_t index, int status)
{
    if (status != 0)
        kefu->last_bad_status = status;
    kefu->agents[index].failed = true;
    kefu->agents_failed++;
}

static void login_done_cb(void *ctx, uint64_t tag, int status, const char *head, size_t head_len,
                          const char *body, size_t body_len)
{
    load_kefu_t *kefu = ctx;
    uint32_t index = (uint32_t)tag;
    load_agent_t *agent = &kefu->agents[index];
    kf_str_t cookie;
    json_t *root = status == 200 ? parse_json(body, body_len) : NULL;
    const char *csrf = json_string_value(json_object_get(root, "csrf"));
    json_t *id = json_object_get(json_object_get(root, "agent"), "id");
    if (csrf != NULL && load_head_find(head, head_len, "Set-Cookie", &cookie)) {
        const char *semi = memchr(cookie.ptr, ';', cookie.len);
        size_t len = semi != NULL ? (size_t)(semi - cookie.ptr) : cookie.len;
        if (len < sizeof agent->cookie && strlen(csrf) < sizeof agent->csrf) {
            memcpy(agent->cookie, cookie.ptr, len);
            agent->cookie[len] = '\0';
            snprintf(agent->csrf, sizeof agent->csrf, "%s", csrf);
            agent->id = json_integer_value(id);
            agent->ready = true;
            kefu->agents_ready++;
        }
    }
    json_decref(root);
    if (agent->ready)
        return;
    /* A login answered (wrong credentials) is not tried again; a lost connection is. */
    if (status == 0 && ++agent->tries < MAX_ATTEMPTS && kefu->retrying)
        load_kefu_login(kefu, index);
    else
        agent_failed(kefu, index, status);
}

void load_kefu_login(load_kefu_t *kefu, uint32_t index)
{
    const load_agent_t *agent = &kefu->agents[index];
    json_t *credentials =
        json_pack("{s:s,s:s}", "email", agent->email, "password", agent->password);
    char *body = json_dumps(credentials, JSON_COMPACT);
    json_decref(credentials);
    load_kefu_post(kefu, "/api/agent/login", "", body, login_done_cb, kefu, index);
    free(body);
}

static void agent_created_cb(void *ctx, uint64_t tag, int status, const char *head, size_t head_len,
                             const char *body, size_t body_len)
{
    (void)head;
    (void)head_len;
    (void)body;
    (void)body_len;
    load_kefu_t *kefu = ctx;
    uint32_t index = (uint32_t)tag;
    if (status == 201)
        load_kefu_login(kefu, index);
    else
        agent_failed(kefu, index, status);
}

void load_kefu_agent_create(load_kefu_t *kefu, uint32_t index, const load_agent_t *admin)
{
    const load_agent_t *agent = &kefu->agents[index];
    json_t *fields = json_pack("{s:s,s:s,s:s,s:s}", "email", agent->email, "name", agent->name,
                               "role", "agent", "password", agent->password);
    char *body = json_dumps(fields, JSON_COMPACT);
    json_decref(fields);
    kf_buf_t extra;
    kf_buf_init(&extra);
    load_kefu_agent_headers(admin, &extra);
    load_kefu_post(kefu, "/api/agents", extra.data, body, agent_created_cb, kefu, index);
    kf_buf_free(&extra);
    free(body);
}

bool load_kefu_done(const load_kefu_t *kefu)
{
    bool visitors = kefu->visitors_ready + kefu->visitors_failed >= kefu->visitor_count;
    bool agents = kefu->agents_ready + kefu->agents_failed >= kefu->agent_count;
    return visitors && agents;
}
