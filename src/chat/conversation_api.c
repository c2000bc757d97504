/* conversation_api.c: the agents' side of the JSON API on conversations (docs/API.md): the views
 * (newest activity first, in pages) and their counts, one conversation, its messages, replies,
 * read marks, typing, status, claims and assignments. Every route takes an agent's session,
 * checked by the dispatcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "chat/handlers.h"
#include "chat/events.h"
#include "chat/internal.h"

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
    int64_t last_message_id, last_id; /* the page's last row: where the next starts */
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
    w->last_message_id = c->has_last_message ? c->last_message.id : 0;
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
            snprintf(next, sizeof next, "%lld.%lld", (long long)w->last_message_id,
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

/* The views by name, in kf_conversation_view_t's order. */
static const char *const view_names[KF_VIEW_COUNT] = {
    "all", "unassigned", "mine", "open", "pending", "resolved", "snoozed",
};

/* Reads ?view= into page (all when absent, as before views existed, so that an older console
 * keeps working); answers 400 and returns false for an unknown one. */
static bool read_view(const kf_call_t *call, kf_conversation_page_t *page)
{
    char value[16];
    int n = kf_http_query_get(call->req->head->query, "view", value, sizeof value);
    if (n == KF_ENOTFOUND)
        return true;
    for (int view = 0; n >= 0 && view < KF_VIEW_COUNT; view++) {
        /* By length too: a NUL decoded from %00 must not end the name early. */
        if ((size_t)n == strlen(view_names[view]) && strcmp(value, view_names[view]) == 0) {
            page->view = (kf_conversation_view_t)view;
            page->agent_id = call->who->agent.id;
            return true;
        }
    }
    kf_call_fail(call->req, KF_EPROTO,
                 "view must be one of unassigned, mine, open, pending, resolved, snoozed, all");
    return false;
}

/* Reads ?view=, ?limit= and ?before= into page; answers 400 and returns false for bad ones.
 * before is the "next" of the page before: "<last message's id>.<id>". */
static bool read_page(const kf_call_t *call, kf_conversation_page_t *page)
{
    kf_req_t *req = call->req;
    char value[48];
    *page = (kf_conversation_page_t){.limit = LIST_DEFAULT};
    if (!read_view(call, page))
        return false;
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
    uint64_t last_message_id, id;
    if (dot == NULL ||
        kf_parse_u64((kf_str_t){value, (size_t)(dot - value)}, &last_message_id) != 0 ||
        kf_parse_u64((kf_str_t){dot + 1, (size_t)n - (size_t)(dot - value) - 1}, &id) != 0 ||
        last_message_id > INT64_MAX || id < 1 || id > INT64_MAX) {
        kf_call_fail(req, KF_EPROTO, "before must be the next of a page");
        return false;
    }
    page->before_last_message_id = (int64_t)last_message_id;
    page->before_id = (int64_t)id;
    return true;
}

/* Reads ?team= (one team's conversations) into page; answers 400 and returns false for a bad
 * one. An unknown team's list is empty, as a view with nothing in it. */
static bool read_team(const kf_call_t *call, kf_conversation_page_t *page)
{
    char value[24];
    int n = kf_http_query_get(call->req->head->query, "team", value, sizeof value);
    if (n == KF_ENOTFOUND)
        return true;
    uint64_t team_id;
    if (n < 1 || kf_parse_u64((kf_str_t){value, (size_t)n}, &team_id) != 0 || team_id < 1 ||
        team_id > INT64_MAX) {
        kf_call_fail(call->req, KF_EPROTO, "team must be a team's id");
        return false;
    }
    page->team_id = (int64_t)team_id;
    return true;
}

void kf_conversations_get(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    kf_conversation_page_t page;
    if (!read_page(call, &page) || !read_team(call, &page))
        return;
    list_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->array = json_array();
    w->limit = page.limit;
    int rc = app->store->ops->conversation_list(app->store, &page, list_row_cb, list_done_cb, w);
    if (rc != 0)
        json_decref(w->array);
    kf_call_hold(call->req, w, rc);
}

/* ---- the counts ---- */

/* The desk's counts, then each team's: two reads. */
typedef struct counts_wait {
    kf_wait_t base;
    kf_store_t *store;
    int64_t agent_id;
    json_t *counts; /* the desk's, by view name */
    json_t *teams;  /* each team's, by its id */
} counts_wait_t;

/* One count per view, by view name. */
static json_t *view_counts_json(const int64_t *counts)
{
    json_t *json = json_object();
    for (int view = 0; view < KF_VIEW_COUNT; view++)
        json_object_set_new(json, view_names[view], json_integer((json_int_t)counts[view]));
    return json;
}

static void counts_wait_free(counts_wait_t *w)
{
    json_decref(w->counts);
    json_decref(w->teams);
    free(w);
}

static int team_counts_cb(void *ctx, int64_t team_id, const int64_t *counts)
{
    counts_wait_t *w = ctx;
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)team_id);
    json_object_set_new(w->teams, key, view_counts_json(counts));
    return 0;
}

static void team_counts_done_cb(void *ctx, const kf_store_result_t *r)
{
    counts_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc != 0)
        kf_call_fail(req, r->rc, NULL);
    else if (req != NULL)
        kf_resp_json(req, 200, json_pack("{s:O,s:O}", "counts", w->counts, "teams", w->teams));
    counts_wait_free(w);
}

static void counts_done_cb(void *ctx, const kf_store_result_t *r)
{
    counts_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    int rc = r->rc;
    if (req != NULL && rc == 0) {
        w->counts = view_counts_json(r->counts);
        w->teams = json_object();
        rc = w->store->ops->conversation_team_counts(w->store, w->agent_id, team_counts_cb,
                                                     team_counts_done_cb, w);
        if (rc == 0)
            return;
    }
    if (req != NULL)
        kf_call_fail(req, rc, NULL);
    counts_wait_free(w);
}

void kf_conversation_counts_get(const kf_call_t *call)
{
    kf_store_t *store = call->app->store;
    counts_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->store = store;
    w->agent_id = call->who->agent.id;
    kf_call_hold(call->req, w,
                 store->ops->conversation_counts(store, call->who->agent.id, counts_done_cb, w));
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

/* ---- the desk: status, claims, assignments ---- */

/* What changed a conversation's status or holder, waiting for its commit. */
typedef enum { CHANGE_STATUS, CHANGE_CLAIM, CHANGE_ASSIGN } change_kind_t;

typedef struct change_wait {
    kf_wait_t base;
    kf_app_t *app;
    change_kind_t kind;
    int64_t conversation_id;
    int64_t caller; /* the agent who asked */
} change_wait_t;

/* Answers a change the store refused. */
static void change_refused(kf_req_t *req, const change_wait_t *w, const kf_store_result_t *r)
{
    if (r->rc == KF_ENOTFOUND) {
        kf_call_fail(req, KF_ENOTFOUND, "no such conversation");
    } else if (r->rc == KF_ECONFLICT) {
        /* A claim lost to another agent's, or a resolved conversation (reopen it first). */
        kf_call_fail(req, KF_ECONFLICT,
                     r->id != 0 && r->id != w->caller
                         ? "another agent holds this conversation"
                         : "this conversation is resolved: reopen it before claiming it");
    } else if (r->rc == KF_EFORBIDDEN && w->kind == CHANGE_CLAIM) {
        kf_call_fail(req, KF_EFORBIDDEN, "this account is disabled");
    } else if (r->rc == KF_EFORBIDDEN) {
        kf_call_fail(req, KF_EINVAL, "that agent is disabled");
    } else if (r->rc == KF_EINVAL && w->kind == CHANGE_ASSIGN) {
        kf_call_fail(req, KF_EINVAL, r->team_missing ? "no such team" : "no such agent");
    } else {
        kf_call_fail(req, r->rc, NULL);
    }
}

/* The change is stored, or refused. Stored, it is news for every console (and for the visitor
 * when the status changed), whether the caller still waits or not. */
static void changed_cb(void *ctx, const kf_store_result_t *r)
{
    change_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    kf_app_t *app = w->app;
    if (r->rc == 0) {
        kf_chat_publish_conversation(app->store, app->hub, w->conversation_id,
                                     w->kind == CHANGE_STATUS);
        kf_chat_hook_conversation(app, w->conversation_id,
                                  w->kind == CHANGE_STATUS ? KF_HOOK_STATUS : KF_HOOK_ASSIGNED);
        /* A new team, an agent's freed capacity or a reopened one: automatic assignment may act. */
        kf_autoassign_kick(app->autoassign);
    }
    if (r->rc == 0 && r->message != NULL) /* a transfer's note */
        kf_chat_publish_message(app, r->message);
    if (req != NULL && r->rc != 0)
        change_refused(req, w, r);
    else if (req != NULL)
        kf_call_answer_conversation(req, app, w->conversation_id, 200);
    free(w);
}

static change_wait_t *change_new(const kf_call_t *call, change_kind_t kind)
{
    change_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    w->kind = kind;
    w->conversation_id = call->ids[0];
    w->caller = call->who->agent.id;
    return w;
}

/* The first field of root that is not one of allowed (NULL-terminated), or NULL. */
static const char *unknown_field(json_t *root, const char *const *allowed)
{
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return key;
    }
    return NULL;
}

/* Answers 400 for an unknown field (a misspelt one must not pass for a change that did
 * nothing), naming what the request takes; false then. */
static bool known_fields(kf_req_t *req, json_t *root, const char *const *allowed, const char *takes)
{
    const char *unknown = unknown_field(root, allowed);
    if (unknown == NULL)
        return true;
    char message[128];
    snprintf(message, sizeof message, "unknown field \"%.32s\": %s", unknown, takes);
    kf_call_fail(req, KF_EPROTO, message);
    return false;
}

#define STATUS_RULE "status must be one of open, pending, resolved, snoozed"

void kf_conversation_status_post(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    static const char *const allowed[] = {"status", "snooze_until", NULL};
    if (!known_fields(req, root, allowed, "a status change takes status and snooze_until")) {
        json_decref(root);
        return;
    }
    const char *status = json_string_value(json_object_get(root, "status"));
    json_t *until = json_object_get(root, "snooze_until");
    bool snoozed = status != NULL && strcmp(status, "snoozed") == 0;
    int64_t now = kf_clock_wall_ms();
    int rc = 0;
    const char *why = NULL;
    if (status == NULL || (!snoozed && strcmp(status, "open") != 0 &&
                           strcmp(status, "pending") != 0 && strcmp(status, "resolved") != 0)) {
        rc = KF_EPROTO; /* "closed" too: it is "resolved" now */
        why = STATUS_RULE;
    } else if (snoozed && (!json_is_integer(until) || json_integer_value(until) <= now)) {
        rc = KF_EINVAL;
        why = "a snooze needs snooze_until: a time in the future (ms since the epoch)";
    } else if (!snoozed && until != NULL && !json_is_null(until)) {
        rc = KF_EINVAL;
        why = "snooze_until goes with the status snoozed only";
    }
    if (rc != 0) {
        json_decref(root);
        kf_call_fail(req, rc, why);
        return;
    }
    change_wait_t *w = change_new(call, CHANGE_STATUS);
    rc = app->store->ops->conversation_set_status(app->store, w->conversation_id, status,
                                                  snoozed ? json_integer_value(until) : 0, now,
                                                  changed_cb, w);
    json_decref(root);
    kf_call_hold(req, w, rc);
}

void kf_conversation_claim_post(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    change_wait_t *w = change_new(call, CHANGE_CLAIM);
    kf_call_hold(call->req, w,
                 app->store->ops->conversation_claim(app->store, w->conversation_id, w->caller,
                                                     changed_cb, w));
}

/* An assignment's "note": absent or null (none), or a string of 1 to max_message_chars
 * characters once trimmed (*note, the caller frees it). NULL, or why it is refused. */
static const char *assign_note(kf_app_t *app, json_t *value, char **note)
{
    *note = NULL;
    if (value == NULL || json_is_null(value))
        return NULL;
    if (!json_is_string(value))
        return "note must be a string";
    *note = kf_trim_copy(json_string_value(value));
    size_t chars = kf_utf8_length(*note);
    if (chars == 0 || chars > app->config.max_message_chars)
        return "a note has 1 character or more, as many as a message";
    return NULL;
}

void kf_conversation_assign_post(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    static const char *const allowed[] = {"agent_id", "team_id", "note", NULL};
    if (!known_fields(req, root, allowed, "an assignment takes agent_id, team_id and note")) {
        json_decref(root);
        return;
    }
    json_t *agent_id = json_object_get(root, "agent_id");
    json_t *team_id = json_object_get(root, "team_id");
    kf_conversation_assign_t transfer = {
        .conversation_id = call->ids[0],
        .set_agent = agent_id != NULL,
        .agent_id = json_is_integer(agent_id) ? json_integer_value(agent_id) : 0,
        .set_team = team_id != NULL,
        .team_id = json_is_integer(team_id) ? json_integer_value(team_id) : 0,
    };
    char *note = NULL;
    const char *why = NULL;
    if (agent_id == NULL && team_id == NULL)
        why = "an assignment takes agent_id, team_id or both";
    else if (agent_id != NULL && !json_is_null(agent_id) && transfer.agent_id <= 0)
        why = "agent_id must be an agent's id, or null for nobody";
    else if (team_id != NULL && !json_is_null(team_id) && transfer.team_id <= 0)
        why = "team_id must be a team's id, or null for none";
    else
        why = assign_note(app, json_object_get(root, "note"), &note);
    json_decref(root);
    if (why != NULL) {
        free(note);
        kf_call_fail(req, KF_EINVAL, why);
        return;
    }
    change_wait_t *w = change_new(call, CHANGE_ASSIGN);
    /* The note goes in the assignment's own write: a transfer moves the conversation and stores
     * its note, or does neither. */
    transfer.by_agent_id = w->caller;
    transfer.note = note;
    transfer.now = kf_clock_wall_ms();
    kf_call_hold(req, w,
                 app->store->ops->conversation_assign(app->store, &transfer, changed_cb, w));
    free(note);
}
