/* canned_api.c: canned replies (docs/API.md, "Canned replies"): the team's, which every agent
 * uses and admins keep, and each agent's personal ones. The form of a shortcut and a body is
 * checked here; who may change which reply, and whether a shortcut is free, in the store's write
 * (store/store.h), so that two requests at once cannot both take one shortcut. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/str.h"
#include "chat/handlers.h"

/* Longest shortcut, in code points: a word or two typed after a slash. */
#define MAX_SHORTCUT_CHARS 32

#define SHORTCUT_RULE "shortcut must be 1 to 32 characters without white space, not starting with /"
#define SCOPE_RULE "scope must be \"team\" or \"personal\""
/* A body may be as long as a message (config.max_message_chars: 4000). */
#define BODY_RULE "body must be 1 to 4000 characters, as a message"

/* A reply as the API shows it. */
static json_t *canned_json(const kf_canned_t *canned)
{
    return json_pack("{s:I,s:s,s:s,s:s,s:I,s:I}", "id", (json_int_t)canned->id, "shortcut",
                     canned->shortcut, "body", canned->body, "scope",
                     canned->owner_id == 0 ? "team" : "personal", "created_at",
                     (json_int_t)canned->created_at, "updated_at", (json_int_t)canned->updated_at);
}

static bool is_admin(const kf_call_t *call)
{
    return strcmp(call->who->agent.role, "admin") == 0;
}

/* The code point at *s (valid UTF-8, as jansson's strings are), moving *s past it. */
static uint32_t next_code_point(const unsigned char **s)
{
    const unsigned char *p = *s;
    uint32_t c = p[0];
    int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    c &= more == 3 ? 0x07 : more == 2 ? 0x0F : more == 1 ? 0x1F : 0x7F;
    for (int i = 1; i <= more && p[i] != '\0'; i++)
        c = (c << 6) | (p[i] & 0x3F);
    *s = p + 1 + more;
    return c;
}

/* White space and controls: what would end a shortcut typed in the reply box. */
static bool is_space_or_control(uint32_t c)
{
    return c <= 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0x1680 || (c >= 0x2000 && c <= 0x200B) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

static bool is_shortcut(json_t *value)
{
    const char *text = json_string_value(value);
    if (text == NULL || text[0] == '\0' || text[0] == '/')
        return false;
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; chars++) {
        if (is_space_or_control(next_code_point(&p)))
            return false;
    }
    return chars <= MAX_SHORTCUT_CHARS;
}

/* The body trimmed, when it is a string of 1 to max_chars code points after trimming (a reply
 * becomes a message, so it may be no longer than one); else NULL. The caller frees it. */
static char *read_body(json_t *value, size_t max_chars)
{
    if (!json_is_string(value))
        return NULL;
    char *body = kf_trim_copy(json_string_value(value));
    size_t chars = kf_utf8_length(body);
    if (chars == 0 || chars > max_chars) {
        free(body);
        return NULL;
    }
    return body;
}

/* The first field of root not in fields (count of them), or NULL. */
static const char *unknown_field(json_t *root, const char *const *fields, size_t count)
{
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        bool known = false;
        for (size_t i = 0; i < count; i++)
            known = known || strcmp(key, fields[i]) == 0;
        if (!known)
            return key;
    }
    return NULL;
}

/* ---- the list ---- */

static int listed_cb(void *ctx, const kf_canned_t *canned)
{
    kf_list_wait_t *w = ctx;
    json_array_append_new(w->items, canned_json(canned));
    return 0;
}

void kf_canned_get(const kf_call_t *call)
{
    kf_store_t *store = call->app->store;
    kf_list_wait_t *w = kf_call_list_new("canned", NULL);
    kf_call_list_hold(
        call->req, w,
        store->ops->canned_list(store, call->who->agent.id, listed_cb, kf_call_list_done, w));
}

/* ---- changes ---- */

/* A write on its way: what to answer with (201 for a new one), and the shortcut it asked for, to
 * name in a conflict. */
typedef struct change_wait {
    kf_wait_t base;
    int status;
    char shortcut[4 * MAX_SHORTCUT_CHARS + 1];
} change_wait_t;

static void changed_cb(void *ctx, const kf_store_result_t *r)
{
    change_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc == KF_EEXISTS) {
        char message[200];
        snprintf(message, sizeof message, "a canned reply with the shortcut \"%s\" exists",
                 w->shortcut);
        kf_call_fail(req, KF_EEXISTS, message);
    } else if (req != NULL && r->rc == KF_EFORBIDDEN) {
        kf_call_fail(req, KF_EFORBIDDEN, "only an admin may change the team's canned replies");
    } else if (req != NULL && r->rc == KF_ENOTFOUND) {
        kf_call_fail(req, KF_ENOTFOUND, "no such canned reply");
    } else if (req != NULL && r->rc != 0) {
        kf_call_fail(req, r->rc, NULL);
    } else if (req != NULL && r->canned != NULL) {
        kf_resp_json(req, w->status, json_pack("{s:o}", "canned", canned_json(r->canned)));
    } else if (req != NULL) {
        kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
    }
    free(w);
}

/* Refuses a body with an unknown field (400 naming it and what it takes). Returns whether it
 * did. */
static bool refuse_unknown(kf_req_t *req, json_t *root, const char *const *fields, size_t count,
                           const char *takes)
{
    const char *unknown = unknown_field(root, fields, count);
    if (unknown == NULL)
        return false;
    char message[128];
    snprintf(message, sizeof message, "unknown field \"%.32s\": %s", unknown, takes);
    kf_call_fail(req, KF_EPROTO, message);
    return true;
}

static const char *const create_fields[] = {"shortcut", "body", "scope"};

void kf_canned_post(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    json_t *shortcut = json_object_get(root, "shortcut");
    json_t *scope = json_object_get(root, "scope");
    const char *scope_name = scope == NULL ? "personal" : json_string_value(scope);
    bool team = scope_name != NULL && strcmp(scope_name, "team") == 0;
    char *body = NULL;
    int rc = 0;
    const char *why = NULL;
    if (refuse_unknown(req, root, create_fields, 3, "a canned reply takes shortcut, body, scope")) {
        json_decref(root);
        return;
    }
    if (scope_name == NULL || (!team && strcmp(scope_name, "personal") != 0)) {
        rc = KF_EPROTO;
        why = SCOPE_RULE;
    } else if (!is_shortcut(shortcut)) {
        rc = KF_EINVAL;
        why = SHORTCUT_RULE;
    } else if ((body = read_body(json_object_get(root, "body"), app->config.max_message_chars)) ==
               NULL) {
        rc = KF_EINVAL;
        why = BODY_RULE;
    } else if (team && !is_admin(call)) {
        rc = KF_EFORBIDDEN;
        why = "only an admin may add to the team's canned replies";
    }
    if (rc != 0) {
        free(body);
        json_decref(root);
        kf_call_fail(req, rc, why);
        return;
    }
    change_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->status = 201;
    snprintf(w->shortcut, sizeof w->shortcut, "%s", json_string_value(shortcut));
    rc = app->store->ops->canned_create(app->store, call->who->agent.id, team, w->shortcut, body,
                                        kf_clock_wall_ms(), changed_cb, w);
    free(body);
    json_decref(root);
    kf_call_hold(req, w, rc);
}

static const char *const change_fields[] = {"shortcut", "body"};

void kf_canned_patch(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    if (refuse_unknown(req, root, change_fields, 2, "a change takes shortcut and body")) {
        json_decref(root);
        return;
    }
    json_t *shortcut = json_object_get(root, "shortcut");
    json_t *body_value = json_object_get(root, "body");
    char *body = NULL;
    const char *why = NULL;
    if (shortcut == NULL && body_value == NULL)
        why = "nothing to change: give shortcut or body";
    else if (shortcut != NULL && !is_shortcut(shortcut))
        why = SHORTCUT_RULE;
    else if (body_value != NULL &&
             (body = read_body(body_value, app->config.max_message_chars)) == NULL)
        why = BODY_RULE;
    if (why != NULL) {
        json_decref(root);
        kf_call_fail(req, KF_EINVAL, why);
        return;
    }
    change_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->status = 200;
    snprintf(w->shortcut, sizeof w->shortcut, "%s",
             shortcut != NULL ? json_string_value(shortcut) : "");
    int rc = app->store->ops->canned_update(app->store, call->who->agent.id, is_admin(call),
                                            call->ids[0], shortcut != NULL ? w->shortcut : NULL,
                                            body, kf_clock_wall_ms(), changed_cb, w);
    free(body);
    json_decref(root);
    kf_call_hold(req, w, rc);
}

void kf_canned_delete(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    change_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->status = 200;
    kf_call_hold(call->req, w,
                 app->store->ops->canned_delete(app->store, call->who->agent.id, is_admin(call),
                                                call->ids[0], changed_cb, w));
}
