/* integrations_api.c: API tokens and outgoing webhooks (docs/API.md, "API tokens" and
 * "Webhooks"), both an admin's: the routes that make, list and remove them, the delivery log,
 * and the conversation events handed to the webhooks. A token is shown once, when it is made;
 * the store keeps its SHA-256 only. Every change is pushed to the consoles as an "integrations"
 * event (no secrets in it: every agent's console hears the agents' topic), on which an admin's
 * console reads the lists again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/str.h"
#include "chat/events.h"
#include "chat/handlers.h"
#include "chat/nodes.h"
#include "chat/webhooks.h"

/* An API token's secret: a prefix that says what it is (in a log, a leaked file), then a
 * random token of 256 bits. */
#define TOKEN_PREFIX "kfat_"
#define MAX_TOKEN_NAME_CHARS 80
#define MAX_URL_BYTES 2000
/* Webhooks an admin may keep: each event is a store write per webhook. */
#define MAX_WEBHOOKS 20

/* ---- shared ---- */

/* Tells every console that tokens or webhooks changed (what: "tokens" or "webhooks"). */
static void publish_change(kf_app_t *app, const char *what)
{
    json_t *event = json_pack("{s:s,s:s}", "type", "integrations", "changed", what);
    kf_chat_publish(app->hub, 0, true, kf_chat_event(0, event));
}

/* A write on its way, answered with status and the JSON made of its result. */
typedef struct change_wait {
    kf_wait_t base;
    kf_app_t *app;
    const char *what;    /* "tokens" or "webhooks" */
    const char *missing; /* what KF_ENOTFOUND says */
    char secret[64];     /* a new token's, shown once */
} change_wait_t;

static change_wait_t *change_new(const kf_call_t *call, const char *what, const char *missing)
{
    change_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    w->what = what;
    w->missing = missing;
    return w;
}

static json_t *token_json(const kf_api_token_t *token)
{
    return json_pack("{s:I,s:s,s:s,s:I,s:I,s:o}", "id", (json_int_t)token->id, "name", token->name,
                     "scope", token->scope, "created_by", (json_int_t)token->created_by,
                     "created_at", (json_int_t)token->created_at, "last_used_at",
                     token->last_used_at != 0 ? json_integer(token->last_used_at) : json_null());
}

/* A webhook's events as a JSON array, from "a,b". */
static json_t *events_json(const char *events)
{
    json_t *array = json_array();
    const char *p = events;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len > 0)
            json_array_append_new(array, json_stringn(p, len));
        p += len + (comma != NULL);
    }
    return array;
}

static json_t *webhook_json(const kf_webhook_t *webhook)
{
    return json_pack("{s:I,s:s,s:o,s:s,s:I}", "id", (json_int_t)webhook->id, "url", webhook->url,
                     "events", events_json(webhook->events), "secret", webhook->secret,
                     "created_at", (json_int_t)webhook->created_at);
}

static void changed_cb(void *ctx, const kf_store_result_t *r)
{
    change_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (r->rc == 0) {
        publish_change(w->app, w->what);
        if (strcmp(w->what, "webhooks") == 0) {
            kf_webhooks_kick(w->app->webhooks);
            kf_nodes_tell_webhooks(w->app);
        }
    }
    if (req == NULL) {
        /* gone: nothing to answer */
    } else if (r->rc == KF_ENOTFOUND) {
        kf_call_fail(req, KF_ENOTFOUND, w->missing);
    } else if (r->rc != 0) {
        kf_call_fail(req, r->rc, NULL);
    } else if (r->api_token != NULL) {
        json_t *token = token_json(r->api_token);
        json_object_set_new(token, "token", json_string(w->secret));
        kf_resp_json(req, 201, json_pack("{s:o}", "token", token));
    } else if (r->webhook != NULL) {
        kf_resp_json(req, 201, json_pack("{s:o}", "webhook", webhook_json(r->webhook)));
    } else {
        kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
    }
    memset(w->secret, 0, sizeof w->secret);
    free(w);
}

/* Refuses a body with a field other than those named (400). Returns whether it did. */
static bool refuse_unknown(kf_req_t *req, json_t *root, const char *const *fields, size_t count,
                           const char *takes)
{
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        bool known = false;
        for (size_t i = 0; i < count; i++)
            known = known || strcmp(key, fields[i]) == 0;
        if (!known) {
            char message[128];
            snprintf(message, sizeof message, "unknown field \"%.32s\": %s", key, takes);
            kf_call_fail(req, KF_EPROTO, message);
            return true;
        }
    }
    return false;
}

/* ---- tokens ---- */

static int token_listed_cb(void *ctx, const kf_api_token_t *token)
{
    kf_list_wait_t *w = ctx;
    json_array_append_new(w->items, token_json(token));
    return 0;
}

void kf_tokens_get(const kf_call_t *call)
{
    kf_store_t *store = call->app->store;
    kf_list_wait_t *w = kf_call_list_new("tokens", NULL);
    kf_call_list_hold(call->req, w,
                      store->ops->api_token_list(store, token_listed_cb, kf_call_list_done, w));
}

static const char *const token_fields[] = {"name", "scope"};

void kf_tokens_post(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    if (refuse_unknown(req, root, token_fields, 2, "a token takes name and scope")) {
        json_decref(root);
        return;
    }
    const char *scope = json_string_value(json_object_get(root, "scope"));
    char *name = json_is_string(json_object_get(root, "name"))
                     ? kf_trim_copy(json_string_value(json_object_get(root, "name")))
                     : NULL;
    const char *why = NULL;
    if (name == NULL || name[0] == '\0' || kf_utf8_length(name) > MAX_TOKEN_NAME_CHARS)
        why = "name must be 1 to 80 characters";
    else if (scope == NULL || (strcmp(scope, "read") != 0 && strcmp(scope, "write") != 0 &&
                               strcmp(scope, "admin") != 0))
        why = "scope must be \"read\", \"write\" or \"admin\"";
    if (why != NULL) {
        free(name);
        json_decref(root);
        kf_call_fail(req, KF_EINVAL, why);
        return;
    }
    change_wait_t *w = change_new(call, "tokens", NULL);
    char random[KF_TOKEN_SIZE];
    char hash[KF_HASH_HEX_SIZE];
    int rc = kf_auth_random_token(random);
    if (rc == 0) {
        snprintf(w->secret, sizeof w->secret, TOKEN_PREFIX "%s", random);
        kf_auth_sha256_hex(w->secret, strlen(w->secret), hash);
        rc = app->store->ops->api_token_create(app->store, name, scope, hash, call->who->agent.id,
                                               kf_clock_wall_ms(), changed_cb, w);
    }
    memset(random, 0, sizeof random);
    free(name);
    json_decref(root);
    kf_call_hold(req, w, rc);
}

void kf_tokens_delete(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    change_wait_t *w = change_new(call, "tokens", "no such token");
    kf_call_hold(call->req, w,
                 app->store->ops->api_token_delete(app->store, call->ids[0], changed_cb, w));
}

/* ---- webhooks ---- */

static int webhook_listed_cb(void *ctx, const kf_webhook_t *webhook)
{
    kf_list_wait_t *w = ctx;
    json_array_append_new(w->items, webhook_json(webhook));
    return 0;
}

void kf_webhooks_get(const kf_call_t *call)
{
    kf_store_t *store = call->app->store;
    kf_list_wait_t *w = kf_call_list_new("webhooks", NULL);
    kf_call_list_hold(call->req, w,
                      store->ops->webhook_list(store, webhook_listed_cb, kf_call_list_done, w));
}

/* Whether url is an http:// or https:// address with a host, of visible ASCII. */
static bool is_webhook_url(const char *url)
{
    size_t len = strlen(url);
    if (len == 0 || len > MAX_URL_BYTES)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (url[i] <= 0x20 || url[i] >= 0x7f)
            return false;
    }
    const char *host = strncmp(url, "https://", 8) == 0  ? url + 8
                       : strncmp(url, "http://", 7) == 0 ? url + 7
                                                         : NULL;
    return host != NULL && host[0] != '\0' && host[0] != '/' && host[0] != ':';
}

/* The events as "a,b" into out (size bytes), each known and once; false when they are not. */
static bool read_events(json_t *events, char *out, size_t size)
{
    if (!json_is_array(events) || json_array_size(events) == 0)
        return false;
    out[0] = '\0';
    size_t index;
    json_t *value;
    json_array_foreach(events, index, value)
    {
        const char *name = json_string_value(value);
        if (name == NULL || !kf_webhook_event_known(name))
            return false;
        for (size_t j = 0; j < index; j++) {
            if (strcmp(json_string_value(json_array_get(events, j)), name) == 0)
                return false;
        }
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", used > 0 ? "," : "", name);
    }
    return true;
}

/* A webhook to make, once the list says there is room for it. */
typedef struct create_wait {
    change_wait_t change;
    char *url;
    char events[256];
    size_t count;
} create_wait_t;

static int webhook_counted_cb(void *ctx, const kf_webhook_t *webhook)
{
    (void)webhook;
    ((create_wait_t *)ctx)->count++;
    return 0;
}

static void webhooks_counted_cb(void *ctx, const kf_store_result_t *r)
{
    create_wait_t *w = ctx;
    kf_req_t *req = w->change.base.req;
    kf_app_t *app = w->change.app;
    char *url = w->url;
    int rc = r->rc;
    if (req == NULL) {
        free(url);
        free(w);
        return;
    }
    if (rc == 0 && w->count >= MAX_WEBHOOKS) {
        free(url);
        free(w);
        kf_call_fail(req, KF_ECONFLICT, "there are 20 webhooks already: remove one first");
        return;
    }
    /* 256 bits, as hex: the receiver keys its HMAC with it. */
    char random[KF_TOKEN_SIZE];
    char secret[KF_HASH_HEX_SIZE];
    if (rc == 0)
        rc = kf_auth_random_token(random);
    if (rc == 0) {
        kf_auth_sha256_hex(random, strlen(random), secret);
        memset(random, 0, sizeof random);
        rc = app->store->ops->webhook_create(app->store, url, w->events, secret, kf_clock_wall_ms(),
                                             changed_cb, &w->change);
    }
    free(url);
    if (rc != 0) {
        free(w);
        kf_call_fail(req, rc, NULL);
    }
    /* else the request stays held by the same wait (change is its first member) */
}

static const char *const webhook_fields[] = {"url", "events"};

void kf_webhooks_post(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    if (refuse_unknown(req, root, webhook_fields, 2, "a webhook takes url and events")) {
        json_decref(root);
        return;
    }
    create_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->change.app = app;
    w->change.what = "webhooks";
    const char *url = json_string_value(json_object_get(root, "url"));
    const char *why = NULL;
    if (url == NULL || !is_webhook_url(url))
        why = "url must be an http:// or https:// address of at most 2000 characters";
    else if (!read_events(json_object_get(root, "events"), w->events, sizeof w->events))
        why = "events must list one or more of message.created, conversation.created, "
              "conversation.assigned, conversation.resolved, rating.created, each once";
    if (why != NULL) {
        free(w);
        json_decref(root);
        kf_call_fail(req, KF_EINVAL, why);
        return;
    }
    w->url = kf_xstrdup(url);
    json_decref(root);
    int rc = app->store->ops->webhook_list(app->store, webhook_counted_cb, webhooks_counted_cb, w);
    if (rc != 0)
        free(w->url);
    kf_call_hold(req, w, rc);
}

void kf_webhooks_delete(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    change_wait_t *w = change_new(call, "webhooks", "no such webhook");
    kf_call_hold(call->req, w,
                 app->store->ops->webhook_delete(app->store, call->ids[0], changed_cb, w));
}

static int attempt_listed_cb(void *ctx, const kf_webhook_attempt_t *a)
{
    kf_list_wait_t *w = ctx;
    json_array_append_new(
        w->items,
        json_pack("{s:I,s:I,s:s,s:I,s:I,s:o,s:s,s:o,s:s}", "id", (json_int_t)a->id, "delivery_id",
                  (json_int_t)a->delivery_id, "event", a->event, "attempt", (json_int_t)a->attempt,
                  "at", (json_int_t)a->at, "status",
                  a->status != 0 ? json_integer(a->status) : json_null(), "error", a->error,
                  "next_at", a->next_at != 0 ? json_integer(a->next_at) : json_null(), "outcome",
                  a->error[0] == '\0' ? "delivered"
                  : a->next_at != 0   ? "retrying"
                                      : "failed"));
    return 0;
}

void kf_webhook_deliveries_get(const kf_call_t *call)
{
    kf_store_t *store = call->app->store;
    kf_list_wait_t *w = kf_call_list_new("deliveries", NULL);
    kf_call_list_hold(call->req, w,
                      store->ops->webhook_attempts(store, call->ids[0], KF_STORE_WEBHOOK_LOG_MAX,
                                                   attempt_listed_cb, kf_call_list_done, w));
}

/* ---- conversation events ---- */

typedef struct hook_wait {
    kf_app_t *app;
    kf_hook_change_t change;
} hook_wait_t;

static void hook_read_cb(void *ctx, const kf_store_result_t *r)
{
    hook_wait_t *w = ctx;
    kf_app_t *app = w->app;
    kf_hook_change_t change = w->change;
    free(w);
    if (r->rc != 0)
        return;
    const kf_conversation_t *c = r->conversation;
    const char *event = NULL;
    if (change == KF_HOOK_CREATED)
        event = "conversation.created";
    else if (change == KF_HOOK_ASSIGNED && c->assignee.id != 0)
        event = "conversation.assigned";
    else if (change == KF_HOOK_STATUS && strcmp(c->status, "resolved") == 0)
        event = "conversation.resolved";
    if (event != NULL)
        kf_webhooks_emit(app->webhooks, event,
                         json_pack("{s:o}", "conversation", kf_chat_conversation_json(c)));
}

void kf_chat_hook_conversation(kf_app_t *app, int64_t conversation_id, kf_hook_change_t change)
{
    static const char *const events[] = {
        [KF_HOOK_CREATED] = "conversation.created",
        [KF_HOOK_ASSIGNED] = "conversation.assigned",
        [KF_HOOK_STATUS] = "conversation.resolved",
    };
    if (!kf_webhooks_wants(app->webhooks, events[change]))
        return; /* no read for an event nobody takes */
    hook_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    w->change = change;
    if (app->store->ops->conversation_get(app->store, conversation_id, hook_read_cb, w) != 0)
        free(w);
}
