/* call.c: how handlers answer: the one table from KF_E* codes to HTTP statuses and API codes,
 * request bodies and cursors, held requests, and the answers of actions. */
#include "chat/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/log.h"
#include "chat/events.h"

/* What a code means to a client: the status, the API code, and the message when the caller has
 * none. Server failures are everything not listed. */
static const struct {
    int rc;
    int status;
    const char *code;
    const char *message;
} meanings[] = {
    {KF_EINVAL, 422, "invalid", "the request is not valid"},
    {KF_ENOTFOUND, 404, "not_found", "not found"},
    {KF_EAUTH, 401, "unauthorized", "not authorised"},
    {KF_EEXPIRED, 401, "unauthorized", "the credential has expired"},
    {KF_EFORBIDDEN, 403, "forbidden", "not allowed"},
    {KF_EEXISTS, 409, "conflict", "it exists already"},
    {KF_ECONFLICT, 409, "conflict", "it conflicts with the current state"},
    {KF_EPROTO, 400, "bad_request", "malformed request"},
    {KF_ETOOBIG, 413, "too_large", "too large"},
    {KF_ELIMIT, 429, "rate_limited", "too many requests"},
    {KF_EUNAVAIL, 503, "unavailable", "the server cannot do that now; please retry"},
};

void kf_call_log(kf_req_t *req, const char *what)
{
    /* Also from a store callback, after the handler returned: the line still names its request. */
    const char *outer = kf_log_set_request_id(req->request_id);
    if (req->head == NULL) /* answered after its handler returned (from a store callback) */
        kf_info("request from %s: %s", kf_req_peer(req), what);
    else
        kf_info("%.*s %.*s from %s: %s", (int)req->head->method.len,
                req->head->method.ptr != NULL ? req->head->method.ptr : "",
                (int)req->head->path.len, req->head->path.ptr != NULL ? req->head->path.ptr : "",
                kf_req_peer(req), what);
    kf_log_set_request_id(outer);
}

const char *kf_call_error_code(int rc)
{
    for (size_t i = 0; i < sizeof meanings / sizeof meanings[0]; i++) {
        if (meanings[i].rc == rc)
            return meanings[i].code;
    }
    return "internal";
}

void kf_call_fail(kf_req_t *req, int rc, const char *message)
{
    for (size_t i = 0; i < sizeof meanings / sizeof meanings[0]; i++) {
        if (meanings[i].rc == rc) {
            kf_resp_error(req, meanings[i].status, meanings[i].code,
                          message != NULL ? message : meanings[i].message);
            return;
        }
    }
    const char *outer = kf_log_set_request_id(req->request_id);
    if (req->head != NULL)
        kf_error("failure on %.*s: %s", (int)req->head->path.len, req->head->path.ptr,
                 kf_strerror(rc));
    else
        kf_error("failure answering %s: %s", kf_req_peer(req), kf_strerror(rc));
    kf_log_set_request_id(outer);
    kf_resp_error(req, 500, "internal", "the server could not complete the request");
}

void kf_call_rate_limited(kf_req_t *req, int64_t retry_after_ms, const char *what)
{
    int64_t wait_s = kf_limits_seconds(retry_after_ms);
    char retry[24], message[128];
    snprintf(retry, sizeof retry, "%lld", (long long)wait_s);
    snprintf(message, sizeof message, "too many %s; try again in %lld s", what, (long long)wait_s);
    /* At debug level only: a script past its limit would otherwise write a line per request. */
    kf_debug("request from %s refused: too many %s", kf_req_peer(req), what);
    kf_resp_header(req, "Retry-After", retry);
    kf_resp_error(req, 429, "rate_limited", message);
}

json_t *kf_call_json(kf_req_t *req)
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
        kf_call_log(req, "bad JSON body");
        kf_resp_error(req, 400, "bad_json", "the body must be a JSON object");
        return NULL;
    }
    return root;
}

bool kf_call_after(kf_req_t *req, uint64_t *after)
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

/* ---- held requests ---- */

static void wait_abort_cb(kf_req_t *req, void *data)
{
    (void)req;
    ((kf_wait_t *)data)->req = NULL;
}

bool kf_call_hold(kf_req_t *req, void *w, int queued_rc)
{
    if (queued_rc != 0) {
        free(w);
        kf_call_fail(req, queued_rc, NULL);
        return false;
    }
    ((kf_wait_t *)w)->req = req;
    kf_req_hold(req, wait_abort_cb, w);
    return true;
}

/* ---- lists ---- */

kf_list_wait_t *kf_call_list_new(const char *field, void *ctx)
{
    kf_list_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->field = field;
    w->items = json_array();
    w->ctx = ctx;
    return w;
}

void kf_call_list_done(void *ctx, const kf_store_result_t *r)
{
    kf_list_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc != 0)
        kf_call_fail(req, r->rc, NULL);
    else if (req != NULL)
        kf_resp_json(req, 200, json_pack("{s:O}", w->field, w->items));
    json_decref(w->items);
    free(w);
}

void kf_call_list_hold(kf_req_t *req, kf_list_wait_t *w, int queued_rc)
{
    if (queued_rc != 0)
        json_decref(w->items);
    kf_call_hold(req, w, queued_rc);
}

/* ---- pages of messages, tickets ---- */

kf_messages_wait_t *kf_call_messages_new(kf_app_t *app)
{
    kf_messages_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->array = json_array();
    w->app = app;
    return w;
}

void kf_call_messages_free(kf_messages_wait_t *w)
{
    json_decref(w->array);
    w->array = NULL;
}

int kf_call_messages_row(void *ctx, const kf_message_t *m)
{
    kf_messages_wait_t *w = ctx;
    if (w->base.req == NULL)
        return KF_EINVAL; /* the client has gone: stop the query */
    json_array_append_new(w->array, kf_chat_message_json(m));
    return 0;
}

void kf_call_messages_done(void *ctx, const kf_store_result_t *r)
{
    kf_messages_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc != 0)
        kf_call_fail(req, r->rc, NULL);
    else if (req != NULL)
        kf_resp_json(
            req, 200,
            json_pack("{s:O,s:b}", "messages", w->array, "more", r->count >= KF_PAGE_SIZE));
    json_decref(w->array);
    free(w);
}

void kf_call_ticket(const kf_call_t *call)
{
    char ticket[KF_TICKET_SIZE];
    kf_authn_t *authn = call->app->authn;
    char kind = call->who->kind;
    int64_t id = kind == 'v' ? call->who->visitor.id : call->who->agent.id;
    if (kf_authn_ticket(authn, kind, id, ticket) != 0) {
        kf_call_fail(call->req, KF_EIO, "could not sign a push ticket");
        return;
    }
    kf_resp_json(call->req, 201,
                 json_pack("{s:s,s:I}", "ticket", ticket, "expires_in",
                           (json_int_t)kf_authn_ticket_seconds(authn)));
}

/* ---- conversations ---- */

/* A conversation on its way to an answer, with this status. */
typedef struct conversation_wait {
    kf_wait_t base;
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
    if (r->rc != 0)
        kf_call_fail(req, r->rc, r->rc == KF_ENOTFOUND ? "no such conversation" : NULL);
    else
        kf_resp_json(
            req, status,
            json_pack("{s:o}", "conversation", kf_chat_conversation_json(r->conversation)));
}

void kf_call_answer_conversation(kf_req_t *req, kf_app_t *app, int64_t id, int status)
{
    conversation_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->status = status;
    kf_call_hold(req, w,
                 app->store->ops->conversation_get(app->store, id, conversation_answer_cb, w));
}

/* ---- actions ---- */

typedef struct act_wait {
    kf_wait_t base;
    kf_app_t *app;
    kf_answer_t answer;
    int64_t conversation_id; /* KF_ANSWER_CONVERSATION */
} act_wait_t;

/* 201 (or 200: an idempotent repeat) {"message": ...} around the stored message's JSON text. */
static void answer_message(kf_req_t *req, const char *message_text, bool repeat)
{
    kf_buf_t body;
    kf_buf_init(&body);
    kf_buf_append_str(&body, "{\"message\":");
    kf_buf_append_str(&body, message_text);
    kf_buf_append_str(&body, "}");
    kf_resp_json_text(req, repeat ? 200 : 201, body.data, body.len);
    kf_buf_free(&body);
}

static void acted_cb(void *data, const kf_chat_outcome_t *outcome)
{
    act_wait_t *w = data;
    kf_req_t *req = w->base.req;
    kf_app_t *app = w->app;
    kf_answer_t answer = w->answer;
    int64_t conversation_id = w->conversation_id;
    free(w);
    if (req == NULL)
        return; /* the client left: nothing to answer */
    if (outcome->rc != 0)
        kf_call_fail(req, outcome->rc, outcome->why);
    else if (answer == KF_ANSWER_MESSAGE && outcome->message == NULL)
        kf_call_fail(req, KF_ENOMEM, NULL);
    else if (answer == KF_ANSWER_MESSAGE)
        answer_message(req, outcome->message, outcome->duplicate);
    else if (answer == KF_ANSWER_CONVERSATION)
        kf_call_answer_conversation(req, app, conversation_id, 200);
    else
        kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static act_wait_t *act_wait_new(const kf_call_t *call, int64_t conversation_id, kf_answer_t answer)
{
    act_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    w->answer = answer;
    w->conversation_id = conversation_id;
    return w;
}

/* Holds the request for an action that was queued (rc 0), or answers why it was not. */
static void act_queued(const kf_call_t *call, act_wait_t *w, int rc, const kf_chat_error_t *err)
{
    if (rc != 0) {
        free(w);
        kf_call_fail(call->req, rc, err->message);
        return;
    }
    kf_call_hold(call->req, w, 0);
}

void kf_call_act(const kf_call_t *call, kf_action_fn act, const char *field, kf_actor_t who,
                 int64_t conversation_id, kf_answer_t answer)
{
    json_t *root = kf_call_json(call->req);
    if (root == NULL)
        return;
    act_wait_t *w = act_wait_new(call, conversation_id, answer);
    kf_chat_error_t err;
    int rc = act(call->app, who, conversation_id,
                 field != NULL ? json_object_get(root, field) : root, acted_cb, w, &err);
    json_decref(root);
    act_queued(call, w, rc, &err);
}

/* The request's Idempotency-Key (an IETF draft that Stripe and others follow): a key of the
 * client's per message, sent again with a retry. Quotes around it (a structured-field string)
 * are taken off. Returns 0 (and *key NULL when there is none) or KF_EPROTO for a malformed one. */
static int idempotency_key(kf_req_t *req, char key[256], const char **out)
{
    *out = NULL;
    const kf_str_t *value = kf_http_header_get(req->head, "Idempotency-Key");
    if (value == NULL)
        return 0;
    kf_str_t v = *value;
    if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"') {
        v.ptr++;
        v.len -= 2;
    }
    if (v.len == 0 || v.len > 255)
        return KF_EPROTO;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < 0x21 || v.ptr[i] > 0x7e || v.ptr[i] == '"')
            return KF_EPROTO;
    }
    memcpy(key, v.ptr, v.len);
    key[v.len] = '\0';
    *out = key;
    return 0;
}

void kf_call_send_attachment(const kf_call_t *call, kf_actor_t who, int64_t conversation_id,
                             const kf_attachment_new_t *attachment)
{
    act_wait_t *w = act_wait_new(call, conversation_id, KF_ANSWER_MESSAGE);
    kf_chat_error_t err;
    int rc =
        kf_chat_send_attachment(call->app, who, conversation_id, attachment, acted_cb, w, &err);
    act_queued(call, w, rc, &err);
}

void kf_call_send(const kf_call_t *call, kf_actor_t who, int64_t conversation_id)
{
    char buffer[256];
    const char *key;
    if (idempotency_key(call->req, buffer, &key) != 0) {
        kf_call_fail(call->req, KF_EPROTO,
                     "Idempotency-Key must be 1 to 255 visible ASCII characters");
        return;
    }
    json_t *root = kf_call_json(call->req);
    if (root == NULL)
        return;
    act_wait_t *w = act_wait_new(call, conversation_id, KF_ANSWER_MESSAGE);
    kf_chat_error_t err;
    int rc = kf_chat_send(call->app, who, conversation_id, json_object_get(root, "body"),
                          json_object_get(root, "private"), key, acted_cb, w, &err);
    json_decref(root);
    act_queued(call, w, rc, &err);
}
