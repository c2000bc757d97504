/* events.c: JSON shapes and publishing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "chat/events.h"

json_t *kf_chat_message_json(const kf_message_t *m)
{
    json_t *o = json_pack("{s:I,s:I,s:I,s:s,s:s,s:I}", "id", (json_int_t)m->id, "conversation_id",
                          (json_int_t)m->conversation_id, "visitor_id", (json_int_t)m->visitor_id,
                          "sender", m->sender == KF_SENDER_AGENT ? "agent" : "visitor", "body",
                          m->body, "created_at", (json_int_t)m->created_at);
    /* Visitors are never sent a note, so "private" is false wherever they read it. */
    json_object_set_new(o, "private", json_boolean(m->is_private));
    if (m->sender == KF_SENDER_AGENT) {
        json_object_set_new(o, "agent_id", json_integer((json_int_t)m->agent_id));
        json_object_set_new(o, "agent_name",
                            json_string(m->agent_name != NULL ? m->agent_name : ""));
    }
    if (m->attachment_id != 0 && o != NULL)
        json_object_set_new(o, "attachment", kf_chat_attachment_json(m));
    return o;
}

json_t *kf_chat_attachment_json(const kf_message_t *m)
{
    char url[64];
    snprintf(url, sizeof url, "/api/attachments/%lld", (long long)m->attachment_id);
    return json_pack("{s:I,s:s,s:s,s:I,s:s}", "id", (json_int_t)m->attachment_id, "name",
                     m->attachment_name != NULL ? m->attachment_name : "", "type",
                     m->attachment_type != NULL ? m->attachment_type : "", "size",
                     (json_int_t)m->attachment_size, "url", url);
}

json_t *kf_chat_agent_json(int64_t id, const char *email, const char *name, const char *role)
{
    return json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)id, "email", email, "name", name,
                     "role", role);
}

/* The conversation's fields before teams. */
static json_t *conversation_json(const kf_conversation_t *c)
{
    const kf_agent_t *a = &c->assignee;
    return json_pack(
        "{s:I,s:{s:I,s:s},s:s,s:o,s:o,s:I,s:o,s:I,s:I,s:I,s:I}", "id", (json_int_t)c->id, "visitor",
        "id", (json_int_t)c->visitor_id, "name", c->visitor_name != NULL ? c->visitor_name : "",
        "status", c->status, "assignee",
        a->id != 0 ? kf_chat_agent_json(a->id, a->email, a->name, a->role) : json_null(),
        "snoozed_until",
        c->snoozed_until != 0 ? json_integer((json_int_t)c->snoozed_until) : json_null(), "unread",
        (json_int_t)c->unread_for_agents, "last_message",
        c->has_last_message ? kf_chat_message_json(&c->last_message) : json_null(), "created_at",
        (json_int_t)c->created_at, "updated_at", (json_int_t)c->updated_at, "agent_read_up_to",
        (json_int_t)c->agent_read_up_to, "visitor_read_up_to", (json_int_t)c->visitor_read_up_to);
}

json_t *kf_chat_rating_json(const kf_conversation_t *c)
{
    if (c->rating == NULL || c->rating[0] == '\0')
        return json_null();
    return json_pack("{s:s,s:s,s:I}", "rating", c->rating, "comment",
                     c->rating_comment != NULL ? c->rating_comment : "", "rated_at",
                     (json_int_t)c->rated_at);
}

json_t *kf_chat_conversation_json(const kf_conversation_t *c)
{
    json_t *json = conversation_json(c);
    json_object_set_new(json, "team",
                        c->team_id != 0
                            ? json_pack("{s:I,s:s}", "id", (json_int_t)c->team_id, "name",
                                        c->team_name != NULL ? c->team_name : "")
                            : json_null());
    json_object_set_new(json, "waiting_since",
                        c->waiting_since != 0 ? json_integer((json_int_t)c->waiting_since)
                                              : json_null());
    json_object_set_new(json, "rating", kf_chat_rating_json(c));
    return json;
}

/* What a visitor sees of their conversation. seen_up_to (the agents' read mark) lets a page
 * opened again show "Seen" where it was; rating is theirs of the resolution it is in now (an
 * older one, from before a reopen, is for the agents), so that a page opened again shows the
 * choice they made, and asks afresh after the next resolution. */
json_t *kf_chat_visitor_conversation_json(const kf_conversation_t *c)
{
    return json_pack("{s:I,s:s,s:I,s:o}", "id", (json_int_t)c->id, "status", c->status,
                     "seen_up_to", (json_int_t)c->agent_read_up_to, "rating",
                     c->rating_current ? kf_chat_rating_json(c) : json_null());
}

kf_event_t *kf_chat_event(uint64_t id, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return NULL;
    kf_event_t *event = kf_event_new(id, text, strlen(text));
    free(text);
    return event;
}

char *kf_chat_message_text(const kf_message_t *m)
{
    json_t *message = kf_chat_message_json(m);
    char *text = json_dumps(message, JSON_COMPACT);
    json_decref(message);
    return text;
}

kf_event_t *kf_chat_message_event_of(int64_t message_id, const char *message_text)
{
    /* "type" first: the SSE encoder reads it from the front of the bytes. The id is a string
     * (docs/API.md): cursors may outgrow a JavaScript number. */
    char head[64];
    int n = snprintf(head, sizeof head,
                     "{\"type\":\"message\",\"id\":\"%lld\",\"message\":", (long long)message_id);
    size_t text_len = strlen(message_text);
    kf_event_t *event = kf_event_new((uint64_t)message_id, NULL, (size_t)n + text_len + 1);
    memcpy(event->json, head, (size_t)n);
    memcpy(event->json + n, message_text, text_len);
    event->json[(size_t)n + text_len] = '}';
    return event;
}

kf_event_t *kf_chat_message_event(const kf_message_t *m)
{
    char *text = kf_chat_message_text(m);
    if (text == NULL)
        return NULL;
    kf_event_t *event = kf_chat_message_event_of(m->id, text);
    free(text);
    return event;
}

int64_t kf_chat_audience_visitor(const kf_message_t *m)
{
    return m->is_private ? 0 : m->visitor_id;
}

void kf_chat_visitor_topic(int64_t visitor_id, char *out, size_t size)
{
    snprintf(out, size, "visitor:%lld", (long long)visitor_id);
}

void kf_chat_publish(kf_hub_t *hub, int64_t visitor_id, bool to_agents, kf_event_t *event)
{
    if (event == NULL)
        return;
    if (visitor_id != 0) {
        char topic[40];
        kf_chat_visitor_topic(visitor_id, topic, sizeof topic);
        kf_hub_publish(hub, topic, event);
    }
    if (to_agents)
        kf_hub_publish(hub, KF_AGENTS_TOPIC, event);
    kf_hub_publish_end(hub);
    kf_event_unref(event);
}

/* A conversation's state on its way to be published. */
typedef struct publishing {
    kf_hub_t *hub;
    bool to_visitor;
} publishing_t;

static kf_event_t *conversation_event(json_t *conversation)
{
    return kf_chat_event(
        0, json_pack("{s:s,s:o}", "type", "conversation", "conversation", conversation));
}

static void publish_conversation_cb(void *ctx, const kf_store_result_t *result)
{
    publishing_t *p = ctx;
    if (result->rc == 0) {
        const kf_conversation_t *c = result->conversation;
        kf_chat_publish(p->hub, 0, true, conversation_event(kf_chat_conversation_json(c)));
        /* The visitor's own shape: what the agents see of the desk (who holds it, their e-mail)
         * is not the visitor's business. */
        if (p->to_visitor)
            kf_chat_publish(p->hub, c->visitor_id, false,
                            conversation_event(kf_chat_visitor_conversation_json(c)));
    }
    free(p);
}

void kf_chat_publish_conversation(kf_store_t *store, kf_hub_t *hub, int64_t conversation_id,
                                  bool to_visitor)
{
    publishing_t *p = kf_xcalloc(1, sizeof *p);
    p->hub = hub;
    p->to_visitor = to_visitor;
    if (store->ops->conversation_get(store, conversation_id, publish_conversation_cb, p) != 0)
        free(p);
}
