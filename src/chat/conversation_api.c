/* conversation_api.c: the agents' side of the JSON API on conversations (docs/API.md): the list
 * (newest activity first, in pages), one conversation, its messages, replies, read marks, typing
 * and status. Every route takes an agent's session, checked by the dispatcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "chat/handlers.h"
#include "chat/events.h"

/* A page of the list holds at most this many, and by default this many. */
#define LIST_MAX 500
#define LIST_DEFAULT 200

/* The caller as an actor. */
static kf_actor_t agent(const kf_call_t *call)
{
    const kf_agent_auth_t *a = &call->who->agent;
    return (kf_actor_t){'a', a->id, a->name};
}

/* ---- the list ---- */

typedef struct list_wait {
    kf_wait_t base;
    json_t *array;
    size_t limit;
    size_t rows;
    int64_t newest;                   /* the newest last message's id */
    int64_t last_updated_at, last_id; /* the page's last row: where the next starts */
} list_wait_t;

static int list_row_cb(void *ctx, const kf_conversation_t *c)
{
    list_wait_t *w = ctx;
    if (w->base.req == NULL)
        return KF_EINVAL; /* the client has gone: stop the query */
    json_array_append_new(w->array, kf_chat_conversation_json(c));
    if (c->has_last_message && c->last_message.id > w->newest)
        w->newest = c->last_message.id;
    w->rows++;
    w->last_updated_at = c->updated_at;
    w->last_id = c->id;
    return 0;
}

static void list_done_cb(void *ctx, const kf_store_result_t *r)
{
    list_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc != 0) {
        kf_call_fail(req, r->rc, NULL);
    } else if (req != NULL) {
        char cursor[24], next[48];
        snprintf(cursor, sizeof cursor, "%lld", (long long)w->newest);
        json_t *body = json_pack("{s:O,s:s}", "conversations", w->array, "cursor", cursor);
        /* A full page may have more behind it: the next starts after its last row. */
        if (w->rows == w->limit) {
            snprintf(next, sizeof next, "%lld.%lld", (long long)w->last_updated_at,
                     (long long)w->last_id);
            json_object_set_new(body, "next", json_string(next));
        } else {
            json_object_set_new(body, "next", json_null());
        }
        kf_resp_json(req, 200, body);
    }
    json_decref(w->array);
    free(w);
}

/* Reads ?limit= and ?before= into page; answers 400 and returns false for bad ones. before is
 * the "next" of the page before: "<updated_at>.<id>". */
static bool read_page(kf_req_t *req, kf_conversation_page_t *page)
{
    char value[48];
    *page = (kf_conversation_page_t){.limit = LIST_DEFAULT};
    int n = kf_http_query_get(req->head->query, "limit", value, sizeof value);
    if (n != KF_ENOTFOUND) {
        uint64_t limit;
        if (n < 0 || kf_parse_u64((kf_str_t){value, (size_t)n}, &limit) != 0 || limit < 1 ||
            limit > LIST_MAX) {
            kf_call_fail(req, KF_EPROTO, "limit must be 1 to 500");
            return false;
        }
        page->limit = (size_t)limit;
    }
    n = kf_http_query_get(req->head->query, "before", value, sizeof value);
    if (n == KF_ENOTFOUND)
        return true;
    const char *dot = n > 0 ? memchr(value, '.', (size_t)n) : NULL;
    uint64_t updated_at, id;
    if (dot == NULL || kf_parse_u64((kf_str_t){value, (size_t)(dot - value)}, &updated_at) != 0 ||
        kf_parse_u64((kf_str_t){dot + 1, (size_t)n - (size_t)(dot - value) - 1}, &id) != 0 ||
        updated_at > INT64_MAX || id < 1 || id > INT64_MAX) {
        kf_call_fail(req, KF_EPROTO, "before must be the next of a page");
        return false;
    }
    page->before_updated_at = (int64_t)updated_at;
    page->before_id = (int64_t)id;
    return true;
}

void kf_conversations_get(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    kf_conversation_page_t page;
    if (!read_page(call->req, &page))
        return;
    list_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->array = json_array();
    w->limit = page.limit;
    int rc = app->store->ops->conversation_list(app->store, &page, list_row_cb, list_done_cb, w);
    if (rc != 0)
        json_decref(w->array);
    kf_call_hold(call->req, w, rc);
}

/* ---- one conversation ---- */

void kf_conversation_get(const kf_call_t *call)
{
    kf_call_answer_conversation(call->req, call->app, call->ids[0], 200);
}

/* The conversation exists (or not): on to its messages. */
static void conversation_exists_cb(void *ctx, const kf_store_result_t *r)
{
    kf_messages_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    int rc = r->rc;
    if (req != NULL && rc == 0) {
        kf_store_t *store = w->app->store;
        rc = store->ops->messages_in_conversation(store, w->conversation_id, w->after, KF_PAGE_SIZE,
                                                  kf_call_messages_row, kf_call_messages_done, w);
        if (rc == 0)
            return;
    }
    if (req != NULL)
        kf_call_fail(req, rc, rc == KF_ENOTFOUND ? "no such conversation" : NULL);
    kf_call_messages_free(w);
    free(w);
}

void kf_conversation_messages_get(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    uint64_t after;
    if (!kf_call_after(call->req, &after))
        return;
    kf_messages_wait_t *w = kf_call_messages_new(app);
    w->conversation_id = call->ids[0];
    w->after = (int64_t)after;
    int rc =
        app->store->ops->conversation_visitor(app->store, call->ids[0], conversation_exists_cb, w);
    if (rc != 0)
        kf_call_messages_free(w);
    kf_call_hold(call->req, w, rc);
}

void kf_conversation_message_post(const kf_call_t *call)
{
    kf_call_send(call, agent(call), call->ids[0]);
}

void kf_conversation_read_post(const kf_call_t *call)
{
    kf_call_act(call, kf_chat_read, "up_to", agent(call), call->ids[0], KF_ANSWER_CONVERSATION);
}

void kf_conversation_typing_post(const kf_call_t *call)
{
    kf_call_act(call, kf_chat_typing, "typing", agent(call), call->ids[0], KF_ANSWER_OK);
}

/* A status change waiting for its commit. */
typedef struct status_wait {
    kf_wait_t base;
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
        kf_chat_publish_conversation(app->store, app->hub, id);
    if (req == NULL)
        return;
    if (r->rc != 0)
        kf_call_fail(req, r->rc, r->rc == KF_ENOTFOUND ? "no such conversation" : NULL);
    else
        kf_call_answer_conversation(req, app, id, 200);
}

void kf_conversation_status_post(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    json_t *root = kf_call_json(call->req);
    if (root == NULL)
        return;
    const char *status = json_string_value(json_object_get(root, "status"));
    if (status == NULL || (strcmp(status, "open") != 0 && strcmp(status, "closed") != 0)) {
        json_decref(root);
        kf_call_fail(call->req, KF_EINVAL, "status must be \"open\" or \"closed\"");
        return;
    }
    status_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    w->conversation_id = call->ids[0];
    int rc = app->store->ops->conversation_set_status(app->store, call->ids[0], status,
                                                      kf_clock_wall_ms(), status_set_cb, w);
    json_decref(root);
    kf_call_hold(call->req, w, rc);
}
