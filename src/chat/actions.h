/* actions.h: what visitors and agents do — send a message, mark messages read, show typing —
 * checked, stored and published the same way whether the request came over HTTP or WebSocket.
 * Each is a chain of store callbacks: a lookup where it needs one, then the write, then the
 * publish and the caller's done. Below the handlers (routes -> handlers -> actions -> events);
 * loop thread only. */
#ifndef KF_CHAT_ACTIONS_H
#define KF_CHAT_ACTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "chat/app.h"

/* Who acts: a visitor or an agent. */
typedef struct kf_actor {
    char kind; /* 'v' visitor or 'a' agent */
    int64_t id;
    const char *name; /* an agent's display name when the caller knows it (borrowed for the
                       * call), else NULL: typing looks it up */
} kf_actor_t;

/* A message for a person about why an action failed (its code is the return value). */
typedef struct kf_chat_error {
    char message[128];
} kf_chat_error_t;

/* How an action ended, for its done callback (borrowed for the call). */
typedef struct kf_chat_outcome {
    int rc;              /* 0, or why it failed: KF_EINVAL, KF_ENOTFOUND, KF_EUNAVAIL, ... */
    const char *why;     /* when rc != 0: a message for a person */
    const char *message; /* a send: the stored message's JSON text (NULL if it could not be
                          * encoded) */
    bool duplicate;      /* a send whose idempotency key was seen before with this body:
                          * message is the one stored then, and nothing new was published */
} kf_chat_outcome_t;

/* The end of an action: once its write is committed (and published), or once it failed
 * (nothing published). */
typedef void (*kf_chat_done_cb)(void *data, const kf_chat_outcome_t *outcome);

/* Each action checks its arguments at once: it returns a KF_E* code with err filled (and done
 * never runs), or 0, and then done runs exactly once, later, from the store's callbacks. */

/* Stores body as a message (in the visitor's conversation, or conversation_id for agents),
 * under the sender's idempotency key when key is not NULL (1 to 255 bytes: the same key again
 * with the same body gives the message stored then; with another body, KF_EINVAL). The message
 * is published once durable, then done gets it. private_note (NULL, or a JSON boolean; an
 * agent's only) makes it a private note, published on the agents' topic and never the
 * visitor's. */
int kf_chat_send(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *body,
                 json_t *private_note, const char *key, kf_chat_done_cb done, void *data,
                 kf_chat_error_t *err);
/* An agent's invitation to a visitor browsing the site (chat/invite_api.c): body (a string, 1 to
 * max_message_chars characters once trimmed) becomes an agent message of the visitor's
 * conversation, opened for it when they have none and reopened when it was resolved or snoozed;
 * published as a send is. who is an agent. */
int kf_chat_invite(kf_app_t *app, kf_actor_t who, int64_t visitor_id, const char *body,
                   kf_chat_done_cb done, void *data, kf_chat_error_t *err);
/* Stores a message carrying attachment (its bytes, name and sniffed type: the caller checked
 * them), its text the file's name, and publishes it as kf_chat_send does. No key, no note. */
int kf_chat_send_attachment(kf_app_t *app, kf_actor_t who, int64_t conversation_id,
                            const kf_attachment_new_t *attachment, kf_chat_done_cb done, void *data,
                            kf_chat_error_t *err);
/* Publishes a stored message to whom it is for (a note: the agents only) and tells the replays;
 * a note's mentions too. For messages written by other actions (a transfer's note). */
void kf_chat_publish_message(kf_app_t *app, const kf_message_t *m);
/* Raises the read mark of the actor's side in the conversation holding message up_to (visitors)
 * or in conversation_id (agents); the read receipt is published and done runs after the
 * commit. */
int kf_chat_read(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *up_to,
                 kf_chat_done_cb done, void *data, kf_chat_error_t *err);
/* Publishes a typing indicator to the other side, then done. A visitor without an open
 * conversation has no one to tell: done, and nothing published. */
int kf_chat_typing(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *typing,
                   kf_chat_done_cb done, void *data, kf_chat_error_t *err);
/* kf_chat_typing from a whole typing body ({"typing", "text"?}): a visitor's "text" (their unsent
 * draft, no longer than a message: else KF_EPROTO) goes with the event when the typing preview
 * setting is on and they are typing; it is dropped when the setting is off, and always from an
 * agent. */
int kf_chat_typing_draft(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *body,
                         kf_chat_done_cb done, void *data, kf_chat_error_t *err);

#endif
