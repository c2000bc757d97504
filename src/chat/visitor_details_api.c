/* visitor_details_api.c: what agents know of a visitor (docs/API.md, "Visitor details"): the
 * pages the visitor's own page reports (POST /api/visitor/page, or the WebSocket "page" action),
 * the name and e-mail the visitor or an agent gives, the console's visitor panel
 * (GET /api/conversations/{id}/visitor), and the desk's settings (GET/PATCH /api/settings: the
 * typing preview). Every change is pushed to the consoles as a "visitor" or "settings" event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/str.h"
#include "chat/events.h"
#include "chat/handlers.h"
#include "chat/invite.h"
#include "chat/nodes.h"
#include "chat/user_agent.h"

/* What a page report may hold. URLs as long as browsers and proxies commonly take; a title as
 * long as one is ever shown. */
#define MAX_URL_BYTES 2048
#define MAX_TITLE_CHARS 300
#define MAX_USER_AGENT_BYTES 512
#define MAX_LANGUAGE_BYTES 35 /* a BCP 47 tag */
#define MAX_TIMEZONE_BYTES 64 /* an IANA zone name */
#define MAX_UTC_OFFSET_MINUTES (14 * 60)
/* Pages further apart than this are two visits; the panel shows the last visit's. */
#define VISIT_GAP_MS (30 * 60 * 1000)
/* Earlier conversations the panel lists. */
#define EARLIER_MAX 20
/* The settings key of the typing preview ("true" or "false"). */
#define TYPING_PREVIEW_KEY "typing_preview"

/* ---- checking what the page sends ---- */

static bool has_control(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return true;
    }
    return false;
}

/* An absolute http(s) URL: the console makes a link of it, so no other scheme (javascript:). */
static bool is_web_url(const char *text)
{
    return (strncasecmp(text, "http://", 7) == 0 || strncasecmp(text, "https://", 8) == 0) &&
           !has_control(text);
}

/* Only these characters: the tag or zone name is shown as it is and used by the console's Intl. */
static bool only_chars(const char *text, const char *allowed)
{
    for (const char *p = text; *p != '\0'; p++) {
        bool alnum =
            (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (!alnum && strchr(allowed, *p) == NULL)
            return false;
    }
    return true;
}

/* The optional string field name of root into *out ("" when absent or null); false when it is
 * there but not a string. */
static bool optional_string(json_t *root, const char *name, const char **out)
{
    json_t *value = json_object_get(root, name);
    *out = "";
    if (value == NULL || json_is_null(value))
        return true;
    if (!json_is_string(value))
        return false;
    *out = json_string_value(value);
    return true;
}

/* Reads a page report into page (its strings borrowed from root). Returns 0, or KF_EPROTO with
 * *why. */
static int read_page(json_t *root, kf_visitor_page_t *page, const char **why)
{
    memset(page, 0, sizeof *page);
    json_t *url = json_object_get(root, "url");
    if (!json_is_string(url) || json_string_length(url) > MAX_URL_BYTES ||
        !is_web_url(json_string_value(url))) {
        *why = "url must be an http or https URL of at most 2048 bytes";
        return KF_EPROTO;
    }
    page->url = json_string_value(url);
    if (!optional_string(root, "title", &page->title) ||
        kf_utf8_length(page->title) > MAX_TITLE_CHARS) {
        *why = "title must be a string of at most 300 characters";
        return KF_EPROTO;
    }
    if (!optional_string(root, "referrer", &page->referrer) ||
        strlen(page->referrer) > MAX_URL_BYTES ||
        (page->referrer[0] != '\0' && !is_web_url(page->referrer))) {
        *why = "referrer must be \"\" or an http or https URL of at most 2048 bytes";
        return KF_EPROTO;
    }
    if (!optional_string(root, "user_agent", &page->user_agent) ||
        strlen(page->user_agent) > MAX_USER_AGENT_BYTES || has_control(page->user_agent)) {
        *why = "user_agent must be a string of at most 512 bytes";
        return KF_EPROTO;
    }
    if (!optional_string(root, "language", &page->language) ||
        strlen(page->language) > MAX_LANGUAGE_BYTES || !only_chars(page->language, "-")) {
        *why = "language must be a language tag such as \"en-GB\"";
        return KF_EPROTO;
    }
    if (!optional_string(root, "timezone", &page->timezone) ||
        strlen(page->timezone) > MAX_TIMEZONE_BYTES || !only_chars(page->timezone, "_/+-")) {
        *why = "timezone must be a time zone name such as \"Europe/Berlin\"";
        return KF_EPROTO;
    }
    json_t *offset = json_object_get(root, "utc_offset");
    if (offset != NULL && !json_is_null(offset)) {
        if (!json_is_integer(offset) || json_integer_value(offset) < -MAX_UTC_OFFSET_MINUTES ||
            json_integer_value(offset) > MAX_UTC_OFFSET_MINUTES) {
            *why = "utc_offset must be minutes east of UTC, -840 to 840";
            return KF_EPROTO;
        }
        page->utc_offset = json_integer_value(offset);
    }
    return 0;
}

/* Loosely an e-mail address: one @ with something before it, a dot inside the part after it, no
 * white space or controls, at most 254 bytes. Whether it is anyone's is not ours to check. */
static bool is_email(const char *text)
{
    const char *at = strchr(text, '@');
    if (at == NULL || at == text || strchr(at + 1, '@') != NULL ||
        strlen(text) > KF_MAX_EMAIL_BYTES)
        return false;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    }
    const char *dot = strchr(at + 1, '.');
    return dot != NULL && dot != at + 1 && dot[1] != '\0' && text[strlen(text) - 1] != '.';
}

/* The name and e-mail of a PATCH: each trimmed (a new string the caller frees), or NULL when
 * absent; "" clears. Returns 0, or KF_EPROTO with *why (nothing allocated then). */
static int read_identity(json_t *root, char **name, char **email, const char **why)
{
    *name = NULL;
    *email = NULL;
    json_t *name_json = json_object_get(root, "name");
    json_t *email_json = json_object_get(root, "email");
    if (name_json == NULL && email_json == NULL) {
        *why = "give a name or an email";
        return KF_EPROTO;
    }
    if (name_json != NULL && (!json_is_string(name_json) ||
                              kf_utf8_length(json_string_value(name_json)) > KF_MAX_NAME_CHARS ||
                              has_control(json_string_value(name_json)))) {
        *why = "name must be a string of at most 80 characters";
        return KF_EPROTO;
    }
    if (email_json != NULL && !json_is_string(email_json)) {
        *why = "email must be an e-mail address such as ana@example.com, or \"\"";
        return KF_EPROTO;
    }
    if (email_json != NULL) {
        *email = kf_trim_copy(json_string_value(email_json));
        if ((*email)[0] != '\0' && !is_email(*email)) {
            free(*email);
            *email = NULL;
            *why = "email must be an e-mail address such as ana@example.com, or \"\"";
            return KF_EPROTO;
        }
    }
    if (name_json != NULL)
        *name = kf_trim_copy(json_string_value(name_json));
    return 0;
}

/* ---- events ---- */

/* The visitor's name and e-mail as the API shows them, and whether the site vouched for them
 * (docs/IDENTITY.md: then with the site's user_id). */
json_t *kf_visitor_identity_json(const kf_visitor_t *visitor)
{
    bool verified = visitor->user_id != NULL && visitor->user_id[0] != '\0';
    json_t *json =
        json_pack("{s:I,s:s,s:s,s:b}", "id", (json_int_t)visitor->id, "name", visitor->name,
                  "email", visitor->email != NULL ? visitor->email : "", "verified", verified);
    if (verified)
        json_object_set_new(json, "user_id", json_string(visitor->user_id));
    return json;
}

/* Tells every console that a visitor's details changed; with_identity: their name and e-mail
 * are in body already. */
static void publish_visitor(kf_app_t *app, json_t *body)
{
    json_object_set_new(body, "type", json_string("visitor"));
    kf_chat_publish(app->hub, 0, true, kf_chat_event(0, body));
}

/* ---- page reports ---- */

typedef struct report {
    kf_app_t *app;
    int64_t visitor_id;
    kf_chat_done_cb done;
    void *done_data;
    json_t *page; /* the event's page, as the panel shows it */
} report_t;

static void report_stored_cb(void *ctx, const kf_store_result_t *r)
{
    report_t *report = ctx;
    kf_chat_outcome_t outcome = {.rc = r->rc};
    if (r->rc == 0) {
        kf_invite_page(report->app, report->visitor_id,
                       json_string_value(json_object_get(report->page, "url")),
                       json_string_value(json_object_get(report->page, "title")));
        publish_visitor(report->app,
                        json_pack("{s:I,s:O}", "visitor_id", (json_int_t)report->visitor_id, "page",
                                  report->page));
    } else {
        outcome.why = r->rc == KF_EUNAVAIL ? "the server cannot store that now; please retry"
                                           : "the page could not be stored";
    }
    report->done(report->done_data, &outcome);
    json_decref(report->page);
    free(report);
}

int kf_visitor_page_report(kf_app_t *app, int64_t visitor_id, json_t *body, kf_chat_done_cb done,
                           void *done_data, kf_chat_error_t *err)
{
    kf_visitor_page_t page;
    const char *why = NULL;
    int rc = read_page(body, &page, &why);
    if (rc != 0) {
        snprintf(err->message, sizeof err->message, "%s", why);
        return rc;
    }
    page.visitor_id = visitor_id;
    page.seen_at = kf_clock_wall_ms();
    report_t *report = kf_xcalloc(1, sizeof *report);
    report->app = app;
    report->visitor_id = visitor_id;
    report->done = done;
    report->done_data = done_data;
    report->page = json_pack("{s:s,s:s,s:I}", "url", page.url, "title", page.title, "seen_at",
                             (json_int_t)page.seen_at);
    rc = app->store->ops->visitor_page_add(app->store, &page, report_stored_cb, report);
    if (rc != 0) {
        json_decref(report->page);
        free(report);
        snprintf(err->message, sizeof err->message, "the page could not be stored");
    }
    return rc;
}

/* An HTTP report waiting for its write. */
typedef struct page_wait {
    kf_wait_t base;
} page_wait_t;

static void page_reported_cb(void *data, const kf_chat_outcome_t *outcome)
{
    page_wait_t *w = data;
    if (w->base.req != NULL && outcome->rc != 0)
        kf_call_fail(w->base.req, outcome->rc, NULL);
    else if (w->base.req != NULL)
        kf_resp_json(w->base.req, 200, json_pack("{s:b}", "ok", true));
    free(w);
}

void kf_visitor_page_post(const kf_call_t *call)
{
    int64_t wait_ms = 0;
    if (!kf_limits_visitor_page(call->app->limits, call->who->visitor.id, &wait_ms)) {
        kf_call_rate_limited(call->req, wait_ms, "page reports");
        return;
    }
    json_t *root = kf_call_json(call->req);
    if (root == NULL)
        return;
    page_wait_t *w = kf_xcalloc(1, sizeof *w);
    kf_chat_error_t err;
    int rc =
        kf_visitor_page_report(call->app, call->who->visitor.id, root, page_reported_cb, w, &err);
    json_decref(root);
    if (rc == KF_EPROTO) {
        free(w);
        kf_call_fail(call->req, rc, err.message);
        return;
    }
    kf_call_hold(call->req, w, rc);
}

/* ---- name and e-mail ---- */

/* A read or change of a visitor's name and e-mail, from the visitor or an agent. */
typedef struct identity_wait {
    kf_wait_t base;
    kf_app_t *app;
    char *name;  /* the change's (owned), or NULL */
    char *email; /* the change's (owned), or NULL */
} identity_wait_t;

static void identity_wait_free(identity_wait_t *w)
{
    free(w->name);
    free(w->email);
    free(w);
}

/* The visitor's conversation read: the consoles' lists learn of the new name. */
static void identity_conversation_cb(void *ctx, const kf_store_result_t *r)
{
    kf_app_t *app = ctx;
    if (r->rc == 0)
        kf_chat_publish_conversation(app->store, app->hub, r->id, false);
}

static void identity_updated_cb(void *ctx, const kf_store_result_t *r)
{
    identity_wait_t *w = ctx;
    if (r->rc == 0) {
        kf_app_t *app = w->app;
        /* The session's answer (GET /api/visitor/session) says the new name from now on. */
        kf_authn_visitor_changed(app->authn, r->visitor->id);
        kf_browsing_rename(app->browsing, r->visitor->id, r->visitor->name);
        kf_nodes_tell_visitor_changed(app, r->visitor->id);
        json_t *visitor = kf_visitor_identity_json(r->visitor);
        publish_visitor(app, json_pack("{s:I,s:O}", "visitor_id", (json_int_t)r->visitor->id,
                                       "visitor", visitor));
        app->store->ops->conversation_of_visitor(app->store, r->visitor->id,
                                                 identity_conversation_cb, app);
        if (w->base.req != NULL)
            kf_resp_json(w->base.req, 200, json_pack("{s:o}", "visitor", visitor));
        else
            json_decref(visitor);
    } else if (w->base.req != NULL) {
        kf_call_fail(w->base.req, r->rc, r->rc == KF_ENOTFOUND ? "no such visitor" : NULL);
    }
    identity_wait_free(w);
}

/* Reads the PATCH body into a new wait; NULL when it was answered (400). */
static identity_wait_t *identity_change(const kf_call_t *call)
{
    json_t *root = kf_call_json(call->req);
    if (root == NULL)
        return NULL;
    identity_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    const char *why = NULL;
    int rc = read_identity(root, &w->name, &w->email, &why);
    json_decref(root);
    if (rc != 0) {
        identity_wait_free(w);
        kf_call_fail(call->req, rc, why);
        return NULL;
    }
    return w;
}

static int update_identity(identity_wait_t *w, int64_t visitor_id)
{
    kf_store_t *store = w->app->store;
    return store->ops->visitor_update(store, visitor_id, w->name, w->email, identity_updated_cb, w);
}

/* A verified visitor's e-mail is the one their site signed (docs/IDENTITY.md): their own change
 * may repeat it (the page's form sends both fields) but not replace it, or the agents would trust
 * an address the site never vouched for. */
static void verified_email_cb(void *ctx, const kf_store_result_t *r)
{
    identity_wait_t *w = ctx;
    int rc = r->rc;
    if (rc == 0 && strcmp(r->visitor->email, w->email) != 0) {
        if (w->base.req != NULL)
            kf_resp_error(w->base.req, 403, "verified_email",
                          "a verified visitor's e-mail is the one their site signed");
        identity_wait_free(w);
        return;
    }
    free(w->email);
    w->email = NULL;
    if (rc == 0 && w->name == NULL) {
        if (w->base.req != NULL)
            kf_resp_json(w->base.req, 200,
                         json_pack("{s:o}", "visitor", kf_visitor_identity_json(r->visitor)));
        identity_wait_free(w);
        return;
    }
    if (rc == 0)
        rc = update_identity(w, r->visitor->id);
    if (rc != 0) {
        if (w->base.req != NULL)
            kf_call_fail(w->base.req, rc, NULL);
        identity_wait_free(w);
    }
}

void kf_visitor_patch(const kf_call_t *call)
{
    identity_wait_t *w = identity_change(call);
    if (w == NULL)
        return;
    if (w->email != NULL && call->who->visitor.verified) {
        kf_store_t *store = call->app->store;
        int rc = store->ops->visitor_get(store, call->who->visitor.id, verified_email_cb, w);
        if (rc == 0) {
            kf_call_hold(call->req, w, rc);
        } else {
            identity_wait_free(w);
            kf_call_fail(call->req, rc, NULL);
        }
        return;
    }
    int rc = update_identity(w, call->who->visitor.id);
    if (rc == 0) {
        kf_call_hold(call->req, w, rc);
    } else {
        identity_wait_free(w);
        kf_call_fail(call->req, rc, NULL);
    }
}

/* GET /api/visitor: the visitor's own details and the settings their page follows. */
static void visitor_read_cb(void *ctx, const kf_store_result_t *r)
{
    identity_wait_t *w = ctx;
    if (w->base.req != NULL && r->rc != 0)
        kf_call_fail(w->base.req, r->rc, NULL);
    else if (w->base.req != NULL)
        kf_resp_json(w->base.req, 200,
                     json_pack("{s:o,s:o,s:o}", "visitor", kf_visitor_identity_json(r->visitor),
                               "settings", kf_settings_json(w->app), "availability",
                               kf_widget_availability_json(w->app)));
    identity_wait_free(w);
}

void kf_visitor_get(const kf_call_t *call)
{
    identity_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    kf_store_t *store = call->app->store;
    kf_call_hold(call->req, w,
                 store->ops->visitor_get(store, call->who->visitor.id, visitor_read_cb, w));
}

/* An agent's change: the conversation's visitor first. */
static void agent_identity_cb(void *ctx, const kf_store_result_t *r)
{
    identity_wait_t *w = ctx;
    int rc = r->rc == 0 ? update_identity(w, r->id) : r->rc;
    if (rc == 0)
        return;
    if (w->base.req != NULL)
        kf_call_fail(w->base.req, rc, rc == KF_ENOTFOUND ? "no such conversation" : NULL);
    identity_wait_free(w);
}

void kf_conversation_visitor_patch(const kf_call_t *call)
{
    identity_wait_t *w = identity_change(call);
    if (w == NULL)
        return;
    kf_store_t *store = call->app->store;
    int rc = store->ops->conversation_visitor(store, call->ids[0], agent_identity_cb, w);
    if (rc == 0) {
        kf_call_hold(call->req, w, rc);
    } else {
        identity_wait_free(w);
        kf_call_fail(call->req, rc, NULL);
    }
}

/* ---- the visitor panel ---- */

typedef struct panel_wait {
    kf_wait_t base;
    kf_app_t *app;
    int64_t conversation_id;
    json_t *visitor;       /* being filled */
    json_t *pages;         /* the last visit's, newest first */
    json_t *conversations; /* the earlier ones */
    int64_t last_seen_at;  /* the newest page's time, 0 before it */
    int64_t previous_at;   /* the page before's (walking back), to find where the visit starts */
    bool visit_ended;      /* a gap of VISIT_GAP_MS was passed: older pages are another visit */
} panel_wait_t;

static void panel_free(panel_wait_t *w)
{
    json_decref(w->visitor);
    json_decref(w->pages);
    json_decref(w->conversations);
    free(w);
}

static void panel_fail(panel_wait_t *w, int rc, const char *why)
{
    if (w->base.req != NULL)
        kf_call_fail(w->base.req, rc, why);
    panel_free(w);
}

static int panel_conversation(void *ctx, const kf_conversation_t *conversation)
{
    panel_wait_t *w = ctx;
    if (conversation->id != w->conversation_id && json_array_size(w->conversations) < EARLIER_MAX)
        json_array_append_new(w->conversations, kf_chat_conversation_json(conversation));
    return 0;
}

/* The pre-chat form's answers, last: null when the visitor gave none. */
static void panel_form_cb(void *ctx, const kf_store_result_t *r)
{
    panel_wait_t *w = ctx;
    if (r->rc != 0 && r->rc != KF_ENOTFOUND) {
        panel_fail(w, r->rc, NULL);
        return;
    }
    json_t *form = r->rc == 0 ? json_loads(r->value, 0, NULL) : NULL;
    json_object_set_new(w->visitor, "form", form != NULL ? form : json_null());
    if (w->base.req != NULL) {
        json_object_set(w->visitor, "pages", w->pages);
        kf_resp_json(
            w->base.req, 200,
            json_pack("{s:O,s:O}", "visitor", w->visitor, "conversations", w->conversations));
    }
    panel_free(w);
}

static void panel_conversations_cb(void *ctx, const kf_store_result_t *r)
{
    panel_wait_t *w = ctx;
    int rc = r->rc;
    if (rc == 0) {
        json_int_t id = json_integer_value(json_object_get(w->visitor, "id"));
        rc = kf_visitor_form_get(w->app, id, panel_form_cb, w);
    }
    if (rc != 0)
        panel_fail(w, rc, NULL);
}

/* The newest page gives the latest details; pages are the visit's while the gaps stay short. */
static int panel_page(void *ctx, const kf_visitor_page_t *page)
{
    panel_wait_t *w = ctx;
    if (w->last_seen_at == 0) {
        char browser[KF_USER_AGENT_LABEL_SIZE];
        kf_user_agent_label(page->user_agent, browser);
        w->last_seen_at = page->seen_at;
        json_t *latest = json_pack(
            "{s:{s:s,s:s},s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "page", "url", page->url, "title",
            page->title, "referrer", page->referrer, "browser", browser, "user_agent",
            page->user_agent, "language", page->language, "timezone", page->timezone, "utc_offset",
            (json_int_t)page->utc_offset, "last_seen_at", (json_int_t)page->seen_at);
        json_object_update(w->visitor, latest);
        json_decref(latest);
    } else if (w->previous_at - page->seen_at >= VISIT_GAP_MS) {
        w->visit_ended = true;
    }
    if (!w->visit_ended)
        json_array_append_new(w->pages,
                              json_pack("{s:s,s:s,s:I}", "url", page->url, "title", page->title,
                                        "seen_at", (json_int_t)page->seen_at));
    w->previous_at = page->seen_at;
    return 0;
}

static void panel_pages_cb(void *ctx, const kf_store_result_t *r)
{
    panel_wait_t *w = ctx;
    int rc = r->rc;
    if (rc == 0) {
        kf_store_t *store = w->app->store;
        json_int_t id = json_integer_value(json_object_get(w->visitor, "id"));
        rc = store->ops->visitor_conversations(store, id, EARLIER_MAX + 1, panel_conversation,
                                               panel_conversations_cb, w);
    }
    if (rc != 0)
        panel_fail(w, rc, NULL);
}

static void panel_visitor_cb(void *ctx, const kf_store_result_t *r)
{
    panel_wait_t *w = ctx;
    int rc = r->rc;
    if (rc == 0) {
        const kf_visitor_t *v = r->visitor;
        /* Until the page reports itself, what it would have said is unknown: null and "". */
        w->visitor =
            json_pack("{s:I,s:s,s:s,s:n,s:s,s:s,s:s,s:s,s:s,s:n,s:I,s:n}", "id", (json_int_t)v->id,
                      "name", v->name, "email", v->email, "page", "referrer", "", "browser", "",
                      "user_agent", "", "language", "", "timezone", "", "utc_offset", "created_at",
                      (json_int_t)v->created_at, "last_seen_at");
        /* Whom the site vouched for (docs/IDENTITY.md), as the other visitor answers say it. */
        bool verified = v->user_id != NULL && v->user_id[0] != '\0';
        json_object_set_new(w->visitor, "verified", json_boolean(verified));
        if (verified)
            json_object_set_new(w->visitor, "user_id", json_string(v->user_id));
        kf_store_t *store = w->app->store;
        rc = store->ops->visitor_pages(store, v->id, KF_STORE_VISITOR_PAGES_MAX, panel_page,
                                       panel_pages_cb, w);
    }
    if (rc != 0)
        panel_fail(w, rc, NULL);
}

static void panel_conversation_cb(void *ctx, const kf_store_result_t *r)
{
    panel_wait_t *w = ctx;
    int rc = r->rc;
    if (rc == 0) {
        kf_store_t *store = w->app->store;
        rc = store->ops->visitor_get(store, r->id, panel_visitor_cb, w);
    }
    if (rc != 0)
        panel_fail(w, rc, rc == KF_ENOTFOUND ? "no such conversation" : NULL);
}

void kf_conversation_visitor_get(const kf_call_t *call)
{
    panel_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    w->conversation_id = call->ids[0];
    w->pages = json_array();
    w->conversations = json_array();
    kf_store_t *store = call->app->store;
    int rc = store->ops->conversation_visitor(store, w->conversation_id, panel_conversation_cb, w);
    if (rc != 0) {
        json_decref(w->pages);
        json_decref(w->conversations);
    }
    kf_call_hold(call->req, w, rc);
}

/* ---- settings ---- */

void kf_settings_get(const kf_call_t *call)
{
    kf_resp_json(call->req, 200, json_pack("{s:o}", "settings", kf_settings_json(call->app)));
}

typedef struct settings_wait {
    kf_wait_t base;
    kf_app_t *app;
    bool typing_preview;
} settings_wait_t;

static void settings_stored_cb(void *ctx, const kf_store_result_t *r)
{
    settings_wait_t *w = ctx;
    kf_app_t *app = w->app;
    if (r->rc == 0) {
        /* Taken only once stored: a restart reads the same. */
        app->typing_preview = w->typing_preview;
        /* Every visitor's page too: it says so, or stops saying so, at once. */
        kf_settings_publish(app);
        kf_nodes_tell_settings(app);
    }
    if (w->base.req != NULL && r->rc != 0)
        kf_call_fail(w->base.req, r->rc, NULL);
    else if (w->base.req != NULL)
        kf_resp_json(w->base.req, 200, json_pack("{s:o}", "settings", kf_settings_json(app)));
    free(w);
}

void kf_settings_patch(const kf_call_t *call)
{
    json_t *root = kf_call_json(call->req);
    if (root == NULL)
        return;
    json_t *widget = json_object_get(root, "widget");
    if (widget != NULL && json_object_size(root) == 1) {
        kf_widget_settings_patch(call, widget);
        json_decref(root);
        return;
    }
    json_t *preview = json_object_get(root, "typing_preview");
    bool only_known = json_object_size(root) == (preview != NULL ? 1u : 0u);
    if (!json_is_boolean(preview) || !only_known) {
        json_decref(root);
        kf_call_fail(call->req, KF_EPROTO,
                     "the settings are {\"typing_preview\": true or false} or {\"widget\": {…}}, "
                     "one at a time");
        return;
    }
    settings_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    w->typing_preview = json_is_true(preview);
    json_decref(root);
    kf_store_t *store = call->app->store;
    kf_call_hold(call->req, w,
                 store->ops->setting_set(store, TYPING_PREVIEW_KEY,
                                         w->typing_preview ? "true" : "false", settings_stored_cb,
                                         w));
}
