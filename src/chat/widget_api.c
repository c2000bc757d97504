/* widget_api.c: the website widget's settings in the API (docs/API.md, "Widget settings"): an
 * admin's change through PATCH /api/settings, the public copy the loader and the visitor's page
 * read (GET /api/widget), and whether anyone is there to answer (an agent online, within the
 * business hours), pushed to every visitor's page as it changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "chat/events.h"
#include "chat/handlers.h"
#include "chat/internal.h"
#include "chat/nodes.h"
#include "chat/widget_settings.h"
#include "store/sync.h"

/* Room for the largest settings the checks allow (20 page rules, 10 fields, the texts). */
#define WIDGET_TEXT_MAX 32768

int kf_widget_settings_load(kf_app_t *app)
{
    app->widget = kf_widget_defaults();
    char *text = kf_xcalloc(1, WIDGET_TEXT_MAX);
    int rc = kf_store_sync_setting_get(app->store, KF_WIDGET_SETTINGS_KEY, text, WIDGET_TEXT_MAX);
    if (rc == 0) {
        /* Stored by an older or newer version, a field may be missing or unknown: each one that
         * passes today's checks is taken, the rest keep their defaults. */
        json_t *stored = json_loads(text, 0, NULL);
        const char *key;
        json_t *value;
        json_object_foreach(stored, key, value)
        {
            json_t *one = json_pack("{s:O}", key, value);
            json_t *merged = NULL;
            kf_tz_t *tz = NULL;
            const char *why;
            if (kf_widget_settings_merge(app->widget, one, NULL, &merged, &tz, &why) == 0) {
                json_decref(app->widget);
                app->widget = merged;
                kf_tz_free(tz);
            }
            json_decref(one);
        }
        json_decref(stored);
    }
    free(text);
    /* UTC at worst: a zone file removed since is no reason not to start. */
    if (kf_tz_load(NULL, json_string_value(json_object_get(app->widget, "time_zone")),
                   &app->widget_tz) != 0 &&
        kf_tz_load(NULL, "UTC", &app->widget_tz) != 0)
        return KF_EINVAL;
    return rc == 0 || rc == KF_ENOTFOUND ? 0 : rc;
}

void kf_widget_settings_free(kf_app_t *app)
{
    json_decref(app->widget);
    kf_tz_free(app->widget_tz);
}

json_t *kf_widget_availability_json(const kf_app_t *app)
{
    int64_t changes_at;
    bool open_now = kf_widget_open_at(app->widget, app->widget_tz, kf_clock_wall_ms(), &changes_at);
    bool online = kf_presence_online(app->presence) > 0;
    json_t *changes = changes_at != 0 ? json_integer(changes_at) : json_null();
    return json_pack("{s:b,s:b,s:b,s:o}", "online", online, "open_now", open_now, "available",
                     online && open_now, "changes_at", changes);
}

json_t *kf_settings_json(const kf_app_t *app)
{
    return json_pack("{s:b,s:O}", "typing_preview", app->typing_preview, "widget", app->widget);
}

void kf_settings_publish(kf_app_t *app)
{
    json_t *event =
        json_pack("{s:s,s:o,s:o}", "type", "settings", "settings", kf_settings_json(app),
                  "availability", kf_widget_availability_json(app));
    kf_event_t *encoded = kf_chat_event(0, event);
    if (encoded != NULL) {
        /* Every visitor's page too: the widget changes at once, with no reload. */
        kf_hub_publish_prefix(app->hub, "visitor:", encoded);
        kf_chat_publish(app->hub, 0, true, encoded);
    }
}

void kf_widget_presence_changed(kf_app_t *app)
{
    bool online = kf_presence_online(app->presence) > 0;
    if (online == app->widget_online)
        return;
    /* Only the first agent to come and the last to go change what visitors are told; the
     * consoles see presence itself. Only pages that offer the leave-a-message form are woken for
     * it: an event to every visitor would answer every visitor's long poll at once, for a notice
     * the page also puts right when an agent's reply comes (chat.js). */
    app->widget_online = online;
    if (!json_is_true(json_object_get(app->widget, "offline_form")))
        return;
    json_t *event = json_pack("{s:s,s:o}", "type", "availability", "availability",
                              kf_widget_availability_json(app));
    kf_event_t *encoded = kf_chat_event(0, event);
    if (encoded != NULL) {
        kf_hub_publish_prefix(app->hub, "visitor:", encoded);
        kf_event_unref(encoded);
    }
}

void kf_widget_get(const kf_call_t *call)
{
    /* Read by the loader on the customer's site, another origin: what it says is public (the
     * widget shows it to anyone), and no cookie or token goes with it. */
    kf_resp_header(call->req, "Access-Control-Allow-Origin", "*");
    kf_resp_json(call->req, 200,
                 json_pack("{s:O,s:o}", "widget", call->app->widget, "availability",
                           kf_widget_availability_json(call->app)));
}

typedef struct widget_wait {
    kf_wait_t base;
    kf_app_t *app;
    json_t *widget; /* the settings once stored */
    kf_tz_t *tz;    /* their zone */
} widget_wait_t;

static void widget_stored_cb(void *ctx, const kf_store_result_t *r)
{
    widget_wait_t *w = ctx;
    kf_app_t *app = w->app;
    if (r->rc == 0) {
        /* Taken only once stored: a restart reads the same. */
        json_decref(app->widget);
        kf_tz_free(app->widget_tz);
        app->widget = w->widget;
        app->widget_tz = w->tz;
        w->widget = NULL;
        w->tz = NULL;
        kf_settings_publish(app);
        kf_nodes_tell_settings(app);
    }
    if (w->base.req != NULL && r->rc != 0)
        kf_call_fail(w->base.req, r->rc, NULL);
    else if (w->base.req != NULL)
        kf_resp_json(w->base.req, 200, json_pack("{s:o}", "settings", kf_settings_json(app)));
    json_decref(w->widget);
    kf_tz_free(w->tz);
    free(w);
}

void kf_widget_settings_patch(const kf_call_t *call, const json_t *change)
{
    json_t *merged = NULL;
    kf_tz_t *tz = NULL;
    const char *why = NULL;
    int rc = kf_widget_settings_merge(call->app->widget, change, NULL, &merged, &tz, &why);
    if (rc != 0) {
        kf_resp_error(call->req, 400, "bad_request", why);
        return;
    }
    char *text = json_dumps(merged, JSON_COMPACT);
    if (text == NULL || strlen(text) >= WIDGET_TEXT_MAX) {
        free(text);
        json_decref(merged);
        kf_tz_free(tz);
        kf_resp_error(call->req, 413, "too_large", "the widget settings are too large");
        return;
    }
    widget_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    w->widget = merged;
    w->tz = tz;
    kf_store_t *store = call->app->store;
    rc = store->ops->setting_set(store, KF_WIDGET_SETTINGS_KEY, text, widget_stored_cb, w);
    free(text);
    if (rc != 0) {
        json_decref(w->widget);
        kf_tz_free(w->tz);
    }
    kf_call_hold(call->req, w, rc);
}

/* ---- the pre-chat form's answers ---- */

/* Where a visitor's answers are kept: one entry per visitor in the store's settings, read only
 * by the visitor panel, so that no row of the visitors' table changes shape for them. */
#define FORM_KEY_FORMAT "visitor_form:%lld"
#define FORM_KEY_SIZE 48
#define FORM_VALUE_MAX 500 /* bytes of one answer */

static void form_key(int64_t visitor_id, char key[FORM_KEY_SIZE])
{
    snprintf(key, FORM_KEY_SIZE, FORM_KEY_FORMAT, (long long)visitor_id);
}

/* The answers as stored ({"fields": [{"label", "value"}…], "consent", "at"}), checked against
 * the admin's form: every field of it answered in its order (a required one not empty), no
 * other, and the consent given where there is a consent text. NULL with *why otherwise. */
static json_t *form_answers(const json_t *prechat, const json_t *body, int64_t now,
                            const char **why)
{
    const json_t *fields = json_object_get(body, "fields");
    const json_t *asked = json_object_get(prechat, "fields");
    const char *consent = json_string_value(json_object_get(prechat, "consent"));
    *why = "the form is {\"fields\": [{\"label\", \"value\"}…] as the widget asks them, "
           "\"consent\": bool}";
    if (!json_is_object(body) || !json_is_array(fields) ||
        !json_is_boolean(json_object_get(body, "consent")) ||
        json_array_size(fields) != json_array_size(asked) || json_object_size(body) != 2)
        return NULL;
    json_t *answers = json_array();
    size_t i;
    const json_t *field;
    json_array_foreach(asked, i, field)
    {
        const json_t *given = json_array_get(fields, i);
        const char *label = json_string_value(json_object_get(field, "label"));
        const json_t *value = json_object_get(given, "value");
        const char *given_label = json_string_value(json_object_get(given, "label"));
        if (given_label == NULL || strcmp(given_label, label) != 0 || !json_is_string(value) ||
            json_string_length(value) > FORM_VALUE_MAX) {
            json_decref(answers);
            return NULL;
        }
        if (json_is_true(json_object_get(field, "required")) && json_string_length(value) == 0) {
            *why = "a required field of the form is empty";
            json_decref(answers);
            return NULL;
        }
        json_array_append_new(answers, json_pack("{s:s,s:O}", "label", label, "value", value));
    }
    bool consented = json_is_true(json_object_get(body, "consent"));
    if (consent[0] != '\0' && !consented) {
        *why = "the form's consent was not given";
        json_decref(answers);
        return NULL;
    }
    return json_pack("{s:o,s:s,s:I}", "fields", answers, "consent", consented ? consent : "", "at",
                     (json_int_t)now);
}

typedef struct form_wait {
    kf_wait_t base;
    kf_app_t *app;
    int64_t visitor_id;
    json_t *form;
} form_wait_t;

static void form_stored_cb(void *ctx, const kf_store_result_t *r)
{
    form_wait_t *w = ctx;
    if (r->rc == 0) {
        /* The consoles' visitor panels show it at once. */
        json_t *event = json_pack("{s:s,s:I,s:O}", "type", "visitor", "visitor_id",
                                  (json_int_t)w->visitor_id, "form", w->form);
        kf_event_t *encoded = kf_chat_event(0, event);
        if (encoded != NULL)
            kf_chat_publish(w->app->hub, 0, true, encoded);
    }
    if (w->base.req != NULL && r->rc != 0)
        kf_call_fail(w->base.req, r->rc, NULL);
    else if (w->base.req != NULL)
        kf_resp_json(w->base.req, 200, json_pack("{s:O}", "form", w->form));
    json_decref(w->form);
    free(w);
}

void kf_visitor_form_put(const kf_call_t *call)
{
    json_t *body = kf_call_json(call->req);
    if (body == NULL)
        return;
    const char *why;
    json_t *form =
        form_answers(json_object_get(call->app->widget, "prechat"), body, kf_clock_wall_ms(), &why);
    json_decref(body);
    if (form == NULL) {
        kf_resp_error(call->req, 400, "bad_request", why);
        return;
    }
    char *text = json_dumps(form, JSON_COMPACT);
    form_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    w->visitor_id = call->who->visitor.id;
    w->form = form;
    char key[FORM_KEY_SIZE];
    form_key(w->visitor_id, key);
    kf_store_t *store = call->app->store;
    int rc = store->ops->setting_set(store, key, text, form_stored_cb, w);
    free(text);
    if (rc != 0)
        json_decref(form);
    kf_call_hold(call->req, w, rc);
}

int kf_visitor_form_get(kf_app_t *app, int64_t visitor_id, kf_store_done_cb done, void *ctx)
{
    char key[FORM_KEY_SIZE];
    form_key(visitor_id, key);
    return app->store->ops->setting_get(app->store, key, done, ctx);
}
