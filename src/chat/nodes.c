/* nodes.c: the changes one node tells the others about (nodes.h), and applying them. */
#include "chat/nodes.h"

#include <jansson.h>
#include <string.h>

#include "auth/auth.h"
#include "base/clock.h"
#include "base/log.h"
#include "chat/autoassign.h"
#include "chat/events.h"
#include "chat/internal.h"
#include "chat/invite.h"
#include "chat/limits.h"
#include "chat/webhooks.h"
#include "chat/widget_settings.h"

/* {"what":"here","agents":[id, ...]}: those agents' consoles are open on the teller's node. */
static void heard_here(kf_app_t *app, const json_t *agents)
{
    if (!json_is_array(agents))
        return;
    uint64_t now = kf_clock_mono_ms();
    size_t i;
    const json_t *id;
    json_array_foreach(agents, i, id)
    {
        if (json_is_integer(id) && json_integer_value(id) > 0)
            kf_presence_seen_elsewhere(app->presence, (int64_t)json_integer_value(id), now);
    }
}

/* The settings another node stored: checked as if read from the store (what does not pass
 * keeps this node's), then taken. The teller published them to the consoles and visitors. */
static void take_settings(kf_app_t *app, json_t *body)
{
    json_t *preview = json_object_get(body, "typing_preview");
    if (json_is_boolean(preview))
        app->typing_preview = json_is_true(preview);
    json_t *widget = json_object_get(body, "widget");
    json_t *merged = NULL;
    kf_tz_t *tz = NULL;
    const char *why = NULL;
    if (json_is_object(widget) &&
        kf_widget_settings_merge(app->widget, widget, NULL, &merged, &tz, &why) == 0) {
        json_decref(app->widget);
        kf_tz_free(app->widget_tz);
        app->widget = merged;
        app->widget_tz = tz;
    }
}

/* One change heard: {"type":"node","what":"logout"|"agent"|"visitor"|"presence"|"here"|
 * "settings"|"webhooks"|"invite_rules"|"autoassign", ...}. What does not parse is dropped (it came
 * from another node of ours, or from whoever can publish on the bus). */
static void heard_cb(kf_sub_t *sub, kf_event_t *event)
{
    kf_app_t *app = sub->data;
    json_t *body = json_loadb(event->json, event->len, 0, NULL);
    const char *what = NULL, *hash = NULL, *email = NULL, *status_name = NULL;
    json_int_t id = 0;
    int disabled = 0, ended = 0;
    kf_presence_status_t status;
    if (body == NULL || json_unpack(body, "{s:s,s?I,s?s,s?b,s?b,s?s,s?s}", "what", &what, "id", &id,
                                    "hash", &hash, "disabled", &disabled, "ended", &ended, "email",
                                    &email, "status", &status_name) != 0)
        goto out;
    if (strcmp(what, "here") == 0) {
        heard_here(app, json_object_get(body, "agents"));
        goto out;
    }
    if (id <= 0)
        goto out;
    /* Each line names the request on the other node that caused it (bus/redis.c sets its id
     * while the event is taken in), so one id follows a change from node to node. */
    if (strcmp(what, "logout") == 0 && hash != NULL && strlen(hash) == KF_HASH_HEX_SIZE - 1) {
        kf_debug("node: agent %lld logged out on another node: the session ends here too",
                 (long long)id);
        kf_authn_forget_session(app->authn, hash);
        kf_authn_revoke_tickets(app->authn, 'a', (int64_t)id);
        kf_push_end_subject(app->push, 'a', (int64_t)id);
        kf_presence_left(app->presence, (int64_t)id);
    } else if (strcmp(what, "agent") == 0) {
        kf_debug("node: agent %lld changed on another node%s", (long long)id,
                 ended ? ": its streams end here too" : "");
        kf_authn_agent_changed(app->authn, (int64_t)id, disabled);
        if (ended) {
            kf_authn_revoke_tickets(app->authn, 'a', (int64_t)id);
            kf_push_end_subject(app->push, 'a', (int64_t)id);
        }
        if (disabled)
            kf_presence_drop(app->presence, (int64_t)id);
    } else if (strcmp(what, "login") == 0 && email != NULL) {
        kf_debug("node: agent %lld logged in on another node: its lock-out is lifted here too",
                 (long long)id);
        kf_limits_login_succeeded_elsewhere(app->limits, email);
    } else if (strcmp(what, "presence") == 0) {
        if (kf_presence_parse(status_name, &status) == 0)
            kf_presence_choose(app->presence, (int64_t)id, status);
    } else if (strcmp(what, "visitor") == 0) {
        kf_debug("node: visitor %lld changed on another node", (long long)id);
        kf_authn_visitor_changed(app->authn, (int64_t)id);
    } else if (strcmp(what, "settings") == 0) {
        take_settings(app, body);
    } else if (strcmp(what, "autoassign") == 0) {
        const char *news = json_string_value(json_object_get(body, "news"));
        json_t *agent = json_object_get(body, "agent_id");
        if (news != NULL && json_is_integer(agent))
            kf_autoassign_heard(app->autoassign, news, (int64_t)id,
                                (int64_t)json_integer_value(agent));
    } else if (strcmp(what, "invite_rules") == 0) {
        kf_invite_take_rules(app, json_object_get(body, "rules"));
    } else if (strcmp(what, "webhooks") == 0) {
        /* Which events some webhook takes is read again now, not at the next tick: a message
         * stored here meanwhile would not have been queued for the new one. */
        kf_webhooks_kick(app->webhooks);
    }
out:
    json_decref(body);
}

static void tell(kf_app_t *app, json_t *body)
{
    json_object_set_new(body, "type", json_string("node"));
    kf_event_t *event = kf_chat_event(0, body);
    if (event == NULL)
        return;
    kf_hub_relay(app->hub, KF_NODES_TOPIC, event);
    kf_event_unref(event);
}

void kf_nodes_start(kf_app_t *app)
{
    kf_sub_init(&app->nodes_sub, heard_cb, app);
    kf_hub_subscribe(app->hub, KF_NODES_TOPIC, &app->nodes_sub);
}

void kf_nodes_stop(kf_app_t *app)
{
    kf_hub_unsubscribe(app->hub, &app->nodes_sub);
}

void kf_nodes_tell_logout(kf_app_t *app, const char *token_hash, int64_t agent_id)
{
    tell(app, json_pack("{s:s,s:I,s:s}", "what", "logout", "id", (json_int_t)agent_id, "hash",
                        token_hash));
}

void kf_nodes_tell_agent_changed(kf_app_t *app, int64_t agent_id, bool disabled, bool ended)
{
    tell(app, json_pack("{s:s,s:I,s:b,s:b}", "what", "agent", "id", (json_int_t)agent_id,
                        "disabled", disabled, "ended", ended));
}

void kf_nodes_tell_login(kf_app_t *app, int64_t agent_id, const char *email)
{
    tell(app,
         json_pack("{s:s,s:I,s:s}", "what", "login", "id", (json_int_t)agent_id, "email", email));
}

void kf_nodes_tell_visitor_changed(kf_app_t *app, int64_t visitor_id)
{
    tell(app, json_pack("{s:s,s:I}", "what", "visitor", "id", (json_int_t)visitor_id));
}

void kf_nodes_tell_presence(kf_app_t *app, int64_t agent_id, kf_presence_status_t status)
{
    tell(app, json_pack("{s:s,s:I,s:s}", "what", "presence", "id", (json_int_t)agent_id, "status",
                        kf_presence_name(status)));
}

static void add_here(void *ctx, int64_t agent_id)
{
    json_array_append_new(ctx, json_integer((json_int_t)agent_id));
}

void kf_nodes_tell_here(kf_app_t *app, uint64_t within_ms)
{
    json_t *agents = json_array();
    kf_presence_each_here(app->presence, kf_clock_mono_ms(), within_ms, add_here, agents);
    if (json_array_size(agents) == 0) {
        json_decref(agents);
        return;
    }
    tell(app, json_pack("{s:s,s:o}", "what", "here", "agents", agents));
}

void kf_nodes_tell_settings(kf_app_t *app)
{
    /* id: every change carries one (1 here: the desk has one set of settings). */
    tell(app, json_pack("{s:s,s:i,s:b,s:O}", "what", "settings", "id", 1, "typing_preview",
                        app->typing_preview, "widget", app->widget));
}

void kf_nodes_tell_webhooks(kf_app_t *app)
{
    tell(app, json_pack("{s:s,s:i}", "what", "webhooks", "id", 1));
}

void kf_nodes_tell_invite_rules(kf_app_t *app)
{
    tell(app,
         json_pack("{s:s,s:i,s:O}", "what", "invite_rules", "id", 1, "rules", app->invite_rules));
}

void kf_nodes_tell_autoassign(kf_app_t *app, const char *news, int64_t conversation_id,
                              int64_t agent_id)
{
    /* id: the conversation, or 1 for news about none (every change carries one). */
    tell(app, json_pack("{s:s,s:I,s:s,s:I}", "what", "autoassign", "id",
                        (json_int_t)(conversation_id > 0 ? conversation_id : 1), "news", news,
                        "agent_id", (json_int_t)agent_id));
}
