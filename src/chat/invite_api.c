/* invite_api.c: proactive invitations (docs/API.md, "Visitors online and invitations"): the
 * visitors browsing now (chat/browsing.h) as the consoles list them, an agent's invitation to one
 * of them, and the admins' invitation rules, which the widget times in the page and fires here.
 *
 * Rules are timed in the page, not on the server: the page knows when its visitor came to it and
 * whether the tab is still there, to the second, at no cost to the server (no timer per visitor);
 * the server checks a firing against what it knows (the visitor's page now, how long they have
 * been on it, and that the rule has not fired for them in this online stretch) before it writes
 * the invitation. The rules are few and every page view of the widget reads them, so they are
 * kept in memory and written whole, as one JSON document, to the store's settings (key
 * "invite_rules"): durable without a table of their own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "chat/events.h"
#include "chat/handlers.h"
#include "chat/invite.h"
#include "chat/nodes.h"
#include "store/sync.h"

#define RULES_KEY "invite_rules"
/* Rules an admin may define: enough for a site's landing pages, few enough to send whole to each
 * page view. */
#define RULES_MAX 50
#define RULE_PATH_MAX 200
#define RULE_SECONDS_MAX 3600
/* The stored document's size at most: RULES_MAX rules of the longest fields, with room. */
#define RULES_JSON_MAX (256 * 1024)
/* A visitor without an open push connection is offline this long after their last request: a
 * short poll comes every few seconds, a page report at least at each page. */
#define BROWSING_OFFLINE_MS 30000
/* A page may fire a rule this much before the server's clock says its seconds are up (the page
 * counts from its own load, the server from the page's report, which comes a moment later). */
#define FIRE_SLACK_MS 3000

/* ---- the visitors online ---- */

static json_t *browsing_json(const kf_browsing_visitor_t *v)
{
    json_t *json = json_pack("{s:I,s:s,s:s,s:s,s:I,s:I}", "visitor_id", (json_int_t)v->visitor_id,
                             "name", v->name, "url", v->url, "title", v->title, "since",
                             (json_int_t)v->since, "page_since", (json_int_t)v->page_since);
    json_object_set_new(json, "invited_at",
                        v->invited_at != 0 ? json_integer(v->invited_at) : json_null());
    return json;
}

/* Every console hears who came, moved and went (an ephemeral event: a console that reconnects
 * reads the list again from GET /api/visitors/online). */
static void browsing_changed_cb(void *ctx, const kf_browsing_visitor_t *v, bool online)
{
    kf_app_t *app = ctx;
    json_t *body = json_pack("{s:s,s:I,s:b}", "type", "browsing", "visitor_id",
                             (json_int_t)v->visitor_id, "online", online);
    if (online)
        json_object_set_new(body, "visitor", browsing_json(v));
    kf_chat_publish(app->hub, 0, true, kf_chat_event(0, body));
}

static size_t visitor_connections(void *ctx, int64_t visitor_id)
{
    kf_app_t *app = ctx;
    return kf_quota_open(app->quota, 'v', visitor_id);
}

/* Whether rule is a well-formed stored rule. */
static bool rule_valid(json_t *rule)
{
    return json_is_integer(json_object_get(rule, "id")) &&
           json_is_string(json_object_get(rule, "path")) &&
           json_is_integer(json_object_get(rule, "seconds")) &&
           json_is_string(json_object_get(rule, "body")) &&
           json_is_integer(json_object_get(rule, "agent_id"));
}

int kf_invite_start(kf_app_t *app)
{
    /* One table for the process's loops (the first loop's app made it: main.c). */
    kf_app_t *first = app->config.shared_presence_of;
    app->browsing = first != NULL ? kf_browsing_share(first->browsing, browsing_changed_cb, app)
                                  : kf_browsing_new(BROWSING_OFFLINE_MS, browsing_changed_cb, app);
    app->invite_rules = json_array();
    app->invite_rule_next = 1;
    char *text = kf_xcalloc(1, RULES_JSON_MAX);
    int rc = kf_store_sync_setting_get(app->store, RULES_KEY, text, RULES_JSON_MAX);
    if (rc == KF_ENOTFOUND) {
        free(text);
        return 0;
    }
    json_t *rules = rc == 0 ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(text);
    if (!json_is_array(rules)) {
        json_decref(rules);
        return rc != 0 ? rc : KF_EINVAL;
    }
    kf_invite_take_rules(app, rules);
    json_decref(rules);
    return 0;
}

void kf_invite_take_rules(kf_app_t *app, json_t *rules)
{
    if (!json_is_array(rules))
        return;
    json_t *taken = json_array();
    size_t i;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        if (!rule_valid(rule))
            continue;
        int64_t id = json_integer_value(json_object_get(rule, "id"));
        if (id >= app->invite_rule_next)
            app->invite_rule_next = id + 1;
        json_array_append(taken, rule);
    }
    json_decref(app->invite_rules);
    app->invite_rules = taken;
}

void kf_invite_stop(kf_app_t *app)
{
    kf_browsing_free(app->browsing);
    app->browsing = NULL;
    json_decref(app->invite_rules);
    app->invite_rules = NULL;
}

void kf_invite_page(kf_app_t *app, int64_t visitor_id, const char *url, const char *title)
{
    kf_browsing_page(app->browsing, visitor_id, NULL, url, title, kf_clock_wall_ms(),
                     kf_clock_mono_ms());
}

void kf_invite_seen(kf_app_t *app, int64_t visitor_id, const char *name)
{
    kf_browsing_seen(app->browsing, visitor_id, kf_clock_mono_ms());
    if (name != NULL && name[0] != '\0')
        kf_browsing_rename(app->browsing, visitor_id, name);
}

void kf_invite_sweep(kf_app_t *app)
{
    kf_browsing_sweep(app->browsing, kf_clock_mono_ms(), visitor_connections, app);
}

static void append_online(void *ctx, const kf_browsing_visitor_t *v)
{
    json_array_append_new(ctx, browsing_json(v));
}

void kf_visitors_online_get(const kf_call_t *call)
{
    json_t *visitors = json_array();
    kf_browsing_each(call->app->browsing, append_online, visitors);
    kf_resp_json(call->req, 200,
                 json_pack("{s:o,s:I}", "visitors", visitors, "offline_after",
                           (json_int_t)BROWSING_OFFLINE_MS));
}

/* ---- invitations ---- */

/* An invitation on its way: whom to answer, and whom to mark invited. */
typedef struct invite_wait {
    kf_wait_t base;
    kf_app_t *app;
    int64_t visitor_id;
} invite_wait_t;

static void invited_cb(void *data, const kf_chat_outcome_t *outcome)
{
    invite_wait_t *w = data;
    kf_req_t *req = w->base.req;
    /* The consoles show who has been invited, so that two agents do not both ask. */
    if (outcome->rc == 0)
        kf_browsing_invited(w->app->browsing, w->visitor_id, kf_clock_wall_ms());
    if (req != NULL && outcome->rc != 0) {
        kf_call_fail(req, outcome->rc, outcome->why);
    } else if (req != NULL && outcome->message == NULL) {
        kf_call_fail(req, KF_ENOMEM, NULL);
    } else if (req != NULL) {
        kf_buf_t body;
        kf_buf_init(&body);
        kf_buf_append_str(&body, "{\"message\":");
        kf_buf_append_str(&body, outcome->message);
        kf_buf_append_str(&body, "}");
        kf_resp_json_text(req, 201, body.data, body.len);
        kf_buf_free(&body);
    }
    free(w);
}

/* Queues the invitation of visitor_id by agent_id with body and holds the request for it. */
static void invite(const kf_call_t *call, int64_t agent_id, int64_t visitor_id, const char *body)
{
    invite_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    w->visitor_id = visitor_id;
    kf_chat_error_t err;
    int rc = kf_chat_invite(call->app, (kf_actor_t){'a', agent_id, NULL}, visitor_id, body,
                            invited_cb, w, &err);
    if (rc != 0) {
        free(w);
        kf_call_fail(call->req, rc, err.message);
        return;
    }
    kf_call_hold(call->req, w, 0);
}

void kf_visitor_invite_post(const kf_call_t *call)
{
    json_t *root = kf_call_json(call->req);
    if (root == NULL)
        return;
    const char *body = json_string_value(json_object_get(root, "body"));
    if (body == NULL) {
        json_decref(root);
        kf_call_fail(call->req, KF_EINVAL, "body must be a string");
        return;
    }
    int64_t visitor_id = call->ids[0];
    kf_browsing_lock(call->app->browsing);
    bool online = kf_browsing_find(call->app->browsing, visitor_id) != NULL;
    kf_browsing_unlock(call->app->browsing);
    if (!online) {
        json_decref(root);
        kf_call_fail(call->req, KF_ENOTFOUND, "this visitor is not browsing the site now");
        return;
    }
    invite(call, call->who->agent.id, visitor_id, body);
    json_decref(root);
}

/* ---- rules ---- */

bool kf_invite_path_matches(const char *pattern, const char *path)
{
    /* A glob in which '*' stands for any run of characters, matched against the start of the
     * path (an implicit '*' at its end): the classic two-pointer match, linear but for the
     * backtracking to the last star, so a hostile path costs at most pattern x path steps. */
    size_t p = 0, s = 0, star = (size_t)-1, mark = 0;
    size_t plen = strlen(pattern);
    while (path[s] != '\0') {
        if (p == plen)
            return true; /* a prefix of the path matches */
        if (pattern[p] == '*') {
            star = p++;
            mark = s;
        } else if (pattern[p] == path[s]) {
            p++;
            s++;
        } else if (star != (size_t)-1) {
            p = star + 1;
            s = ++mark;
        } else {
            return false;
        }
    }
    while (p < plen && pattern[p] == '*')
        p++;
    return p == plen;
}

/* The path of an http(s) URL ("/" when it has none), into out; false when it is no such URL. */
static bool url_path(const char *url, char *out, size_t size)
{
    const char *rest = strstr(url, "://");
    if (rest == NULL)
        return false;
    rest += 3;
    size_t host = strcspn(rest, "/?#");
    rest += host;
    size_t len = *rest == '/' ? strcspn(rest, "?#") : 0;
    if (len == 0)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "%.*s", (int)len, rest);
    return true;
}

static json_t *find_rule(kf_app_t *app, int64_t id, size_t *index)
{
    size_t i;
    json_t *rule;
    json_array_foreach(app->invite_rules, i, rule)
    {
        if (json_integer_value(json_object_get(rule, "id")) == id) {
            if (index != NULL)
                *index = i;
            return rule;
        }
    }
    return NULL;
}

/* A rule as the visitor's page sees it: what to time, not what it says. */
static json_t *visitor_rule_json(json_t *rule)
{
    return json_pack("{s:O,s:O,s:O}", "id", json_object_get(rule, "id"), "path",
                     json_object_get(rule, "path"), "seconds", json_object_get(rule, "seconds"));
}

void kf_invite_rules_get(const kf_call_t *call)
{
    kf_resp_json(call->req, 200, json_pack("{s:O}", "rules", call->app->invite_rules));
}

void kf_visitor_invite_rules_get(const kf_call_t *call)
{
    json_t *rules = json_array();
    size_t i;
    json_t *rule;
    json_array_foreach(call->app->invite_rules, i, rule)
        json_array_append_new(rules, visitor_rule_json(rule));
    kf_resp_json(call->req, 200, json_pack("{s:o}", "rules", rules));
}

/* A change of the rules on its way to the store: the rules as they will be, applied to the
 * memory once durable (a write that fails leaves them as they were). */
typedef struct rules_wait {
    kf_wait_t base;
    kf_app_t *app;
    json_t *rules;   /* the whole new list (owned) */
    json_t *changed; /* the rule added (owned), or NULL for a delete */
    int64_t deleted; /* the id deleted */
} rules_wait_t;

static void rules_stored_cb(void *ctx, const kf_store_result_t *r)
{
    rules_wait_t *w = ctx;
    kf_app_t *app = w->app;
    kf_req_t *req = w->base.req;
    if (r->rc == 0) {
        json_decref(app->invite_rules);
        app->invite_rules = json_incref(w->rules);
        kf_nodes_tell_invite_rules(app); /* the consoles hear the event below on every loop */
        json_t *event = w->changed != NULL
                            ? json_pack("{s:s,s:O}", "type", "invite_rule", "rule", w->changed)
                            : json_pack("{s:s,s:I,s:b}", "type", "invite_rule", "id",
                                        (json_int_t)w->deleted, "deleted", true);
        kf_chat_publish(app->hub, 0, true, kf_chat_event(0, event));
    }
    if (req != NULL && r->rc != 0)
        kf_call_fail(req, r->rc, NULL);
    else if (req != NULL && w->changed != NULL)
        kf_resp_json(req, 201, json_pack("{s:O}", "rule", w->changed));
    else if (req != NULL)
        kf_resp_json(req, 200, json_pack("{s:b}", "ok", true));
    json_decref(w->rules);
    json_decref(w->changed);
    free(w);
}

/* Writes rules (taking it) for the request; changed is the added rule (taken) or NULL. */
static void store_rules(const kf_call_t *call, json_t *rules, json_t *changed, int64_t deleted)
{
    char *text = json_dumps(rules, JSON_COMPACT);
    if (text == NULL) {
        json_decref(rules);
        json_decref(changed);
        kf_call_fail(call->req, KF_ENOMEM, NULL);
        return;
    }
    rules_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    w->rules = rules;
    w->changed = changed;
    w->deleted = deleted;
    kf_store_t *store = call->app->store;
    int rc = store->ops->setting_set(store, RULES_KEY, text, rules_stored_cb, w);
    free(text);
    if (rc != 0) {
        json_decref(w->rules);
        json_decref(w->changed);
    }
    kf_call_hold(call->req, w, rc);
}

/* Reads and checks a new rule from the body; answers and returns NULL when it is not valid. */
static json_t *read_rule(const kf_call_t *call, json_t *root)
{
    kf_app_t *app = call->app;
    const char *path = json_string_value(json_object_get(root, "path"));
    json_t *seconds = json_object_get(root, "seconds");
    const char *body = json_string_value(json_object_get(root, "body"));
    if (path == NULL || path[0] != '/' || strlen(path) > RULE_PATH_MAX ||
        strpbrk(path, "?# \t\r\n") != NULL) {
        kf_call_fail(call->req, KF_EINVAL,
                     "path must start with / and have at most 200 characters, without ?, # or "
                     "spaces (* stands for any characters)");
        return NULL;
    }
    if (!json_is_integer(seconds) || json_integer_value(seconds) < 0 ||
        json_integer_value(seconds) > RULE_SECONDS_MAX) {
        kf_call_fail(call->req, KF_EINVAL, "seconds must be a whole number from 0 to 3600");
        return NULL;
    }
    char *text = body != NULL ? kf_trim_copy(body) : NULL;
    size_t chars = text != NULL ? kf_utf8_length(text) : 0;
    if (chars == 0 || chars > app->config.max_message_chars) {
        free(text);
        char message[96];
        snprintf(message, sizeof message, "body must be a message of 1 to %zu characters",
                 app->config.max_message_chars);
        kf_call_fail(call->req, KF_EINVAL, message);
        return NULL;
    }
    json_t *rule =
        json_pack("{s:I,s:s,s:O,s:s,s:I,s:I}", "id", (json_int_t)app->invite_rule_next, "path",
                  path, "seconds", seconds, "body", text, "agent_id",
                  (json_int_t)call->who->agent.id, "created_at", (json_int_t)kf_clock_wall_ms());
    free(text);
    return rule;
}

void kf_invite_rules_post(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    json_t *root = kf_call_json(call->req);
    if (root == NULL)
        return;
    if (json_array_size(app->invite_rules) >= RULES_MAX) {
        json_decref(root);
        kf_call_fail(call->req, KF_ECONFLICT, "there are 50 rules already; delete one first");
        return;
    }
    json_t *rule = read_rule(call, root);
    json_decref(root);
    if (rule == NULL)
        return;
    /* Taken now, written or not: an id is never given twice, even after a failed write. */
    app->invite_rule_next++;
    json_t *rules = json_deep_copy(app->invite_rules);
    json_array_append(rules, rule);
    store_rules(call, rules, rule, 0);
}

void kf_invite_rule_delete(const kf_call_t *call)
{
    size_t index;
    if (find_rule(call->app, call->ids[0], &index) == NULL) {
        kf_call_fail(call->req, KF_ENOTFOUND, "no such rule");
        return;
    }
    json_t *rules = json_deep_copy(call->app->invite_rules);
    json_array_remove(rules, index);
    store_rules(call, rules, NULL, call->ids[0]);
}

void kf_visitor_invite_rule_fire(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    int64_t visitor_id = call->who->visitor.id;
    json_t *rule = find_rule(app, call->ids[0], NULL);
    if (rule == NULL) {
        kf_call_fail(call->req, KF_ENOTFOUND, "no such rule");
        return;
    }
    char path[2048];
    int64_t page_since = 0;
    kf_browsing_lock(app->browsing);
    kf_browsing_visitor_t *v = kf_browsing_find(app->browsing, visitor_id);
    bool reported = v != NULL && url_path(v->url, path, sizeof path);
    if (v != NULL)
        page_since = v->page_since;
    kf_browsing_unlock(app->browsing);
    if (!reported) {
        kf_call_fail(call->req, KF_ECONFLICT, "report the page first (POST /api/visitor/page)");
        return;
    }
    if (!kf_invite_path_matches(json_string_value(json_object_get(rule, "path")), path)) {
        kf_call_fail(call->req, KF_ECONFLICT, "the rule is not for this page");
        return;
    }
    int64_t due = page_since + 1000 * json_integer_value(json_object_get(rule, "seconds"));
    if (kf_clock_wall_ms() + FIRE_SLACK_MS < due) {
        kf_call_fail(call->req, KF_ECONFLICT, "the rule's time on this page has not passed yet");
        return;
    }
    /* Once in an online stretch: a visitor who closed the invitation is not asked again. */
    if (!kf_browsing_fire(app->browsing, visitor_id, call->ids[0])) {
        kf_call_fail(call->req, KF_ECONFLICT, "this rule has invited this visitor already");
        return;
    }
    invite(call, json_integer_value(json_object_get(rule, "agent_id")), visitor_id,
           json_string_value(json_object_get(rule, "body")));
}
