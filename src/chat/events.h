/* events.h: the JSON shapes of messages and conversations (docs/API.md), and the events pushed to
 * listeners: each encoded once, its bytes shared by every subscriber, published on a visitor's
 * topic and on the agents'. The bottom of the chat layer: it knows the hub and the store's rows,
 * nothing of requests. Loop thread only. */
#ifndef KF_CHAT_EVENTS_H
#define KF_CHAT_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "push/hub.h"
#include "store/store.h"

/* The agents' topic: every console follows it. */
#define KF_AGENTS_TOPIC "agents"

json_t *kf_chat_message_json(const kf_message_t *m);
/* A message's attachment as the API shows it ({id, name, type, size, url}); only for a message
 * with one (attachment_id != 0). */
json_t *kf_chat_attachment_json(const kf_message_t *m);
/* An agent as every agent sees it: id, email, name, role. */
json_t *kf_chat_agent_json(int64_t id, const char *email, const char *name, const char *role);
/* A conversation as agents see it (its assignee as an agent, or null). */
json_t *kf_chat_conversation_json(const kf_conversation_t *c);
/* The visitor's latest rating of a conversation, {rating, comment, rated_at}, or null. */
json_t *kf_chat_rating_json(const kf_conversation_t *c);
/* A conversation as its visitor sees it: id, status, seen_up_to and their rating of its current
 * resolution (or null). */
json_t *kf_chat_visitor_conversation_json(const kf_conversation_t *c);
/* Encodes an event once (its bytes are shared by every subscriber). Takes the reference to body.
 * id is the cursor of a message event, 0 for an ephemeral one. NULL when jansson cannot encode
 * it. */
kf_event_t *kf_chat_event(uint64_t id, json_t *body);
kf_event_t *kf_chat_message_event(const kf_message_t *m);
/* The message's JSON text (the caller frees it), or NULL when out of memory. */
char *kf_chat_message_text(const kf_message_t *m);
/* kf_chat_message_event from the message's JSON text (borrowed), when the caller has it already:
 * the message is encoded once for its event and its sender's answer. */
kf_event_t *kf_chat_message_event_of(int64_t message_id, const char *message_text);
/* Whose visitor topic a stored message goes to: its conversation's visitor, or 0 (nobody's) for
 * a private note. Every push of a message to a visitor, live or noted for replay, asks this. */
int64_t kf_chat_audience_visitor(const kf_message_t *m);
/* The hub topic of one visitor's stream. */
void kf_chat_visitor_topic(int64_t visitor_id, char *out, size_t size);
/* Publishes event to the visitor's topic (when visitor_id != 0) and to the agents' (when
 * to_agents), then drops the caller's reference. NULL is ignored. */
void kf_chat_publish(kf_hub_t *hub, int64_t visitor_id, bool to_agents, kf_event_t *event);
/* Pushes a conversation's current state to the agents, and when to_visitor (its status changed)
 * its visitor's shape of it to its visitor, once the store has read it (nothing when that fails:
 * the views wait for the next change). hub must outlive the read. */
void kf_chat_publish_conversation(kf_store_t *store, kf_hub_t *hub, int64_t conversation_id,
                                  bool to_visitor);

#endif
