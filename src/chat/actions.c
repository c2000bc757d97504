/* actions.c: sending, read marks and typing, as chains of store callbacks. */
#include "chat/actions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "chat/authn.h"
#include "chat/events.h"
#include "chat/internal.h"
#include "chat/mentions.h"

/* Fills err and returns rc. */
static int fail(kf_chat_error_t *err, int rc, const char *message)
{
    snprintf(err->message, sizeof err->message, "%s", message);
    return rc;
}

/* The code and message of a store failure: what names the missing row ("conversation",
 * "message") for KF_ENOTFOUND. The caller's edge logs what is the server's fault. */
static int store_error(kf_chat_error_t *err, int rc, const char *what)
{
    char message[64];
    if (rc == KF_ENOTFOUND) {
        snprintf(message, sizeof message, "no such %s", what);
        return fail(err, rc, message);
    }
    if (rc == KF_EUNAVAIL)
        return fail(err, rc, "the server cannot store that now; please try again");
    if (rc == KF_EFORBIDDEN) /* the store refuses a disabled agent's writes */
        return fail(err, rc, "this account is disabled");
    return fail(err, rc, "the server could not complete the request");
}

/* An action on its way through the store: what it looks up, what to publish and whom to answer
 * once it is durable. */
typedef struct pending {
    kf_app_t *app;
    kf_chat_done_cb done;
    void *done_data;
    kf_actor_t who;     /* who.name is not kept: see agent_name */
    int64_t mark;       /* read: the message id read up to */
    bool typing;        /* typing: started (true) or stopped */
    bool found;         /* read: the lookup found a message at or after mark */
    int64_t found_id;   /* ... its id */
    kf_event_t *event;  /* a read mark's event; a message's is made from the stored row */
    int64_t visitor_id; /* the conversation's visitor: whose topic gets event */
    int64_t conversation_id;
    bool publish_conversation; /* the agents' lists learn of the conversation's new state */
    bool status_changed;       /* ... and its visitor too: a message reopened it */
    char agent_name[4 * KF_MAX_NAME_CHARS + 1]; /* typing: the agent's name */
    char *draft; /* typing: the visitor's unsent text for the typing preview (owned), or NULL */
} pending_t;

static pending_t *pending_new(kf_app_t *app, kf_actor_t who, kf_chat_done_cb done, void *done_data)
{
    pending_t *pending = kf_xcalloc(1, sizeof *pending);
    pending->app = app;
    pending->who = (kf_actor_t){who.kind, who.id, NULL};
    pending->done = done;
    pending->done_data = done_data;
    return pending;
}

/* Ends an action: outcome to done, and the pending freed. */
static void pending_end(pending_t *pending, const kf_chat_outcome_t *outcome)
{
    kf_event_unref(pending->event);
    pending->event = NULL;
    pending->done(pending->done_data, outcome);
    free(pending->draft);
    free(pending);
}

/* Ends an action that failed with rc: nothing is published. */
static void pending_fail(pending_t *pending, int rc, const char *why)
{
    kf_chat_outcome_t outcome = {.rc = rc, .why = why};
    pending_end(pending, &outcome);
}

/* pending_fail for a store failure (what: see store_error). */
static void pending_store_failed(pending_t *pending, int rc, const char *what)
{
    kf_chat_error_t err;
    rc = store_error(&err, rc, what);
    pending_fail(pending, rc, err.message);
}

/* The store's done callback of the write, on the loop once the writer thread has committed (or
 * failed). */
static void committed_cb(void *ctx, const kf_store_result_t *r)
{
    pending_t *pending = ctx;
    kf_app_t *app = pending->app;
    if (r->rc == KF_ECONFLICT) {
        pending_fail(pending, KF_EINVAL, "this Idempotency-Key was used for another message");
        return;
    }
    if (r->rc != 0) {
        pending_store_failed(pending, r->rc, "conversation");
        return;
    }
    /* Durable now: the other side may see it, and the sender may be told. */
    char *text = NULL;
    kf_chat_outcome_t outcome = {.rc = 0, .duplicate = r->duplicate};
    if (r->message != NULL) {
        const kf_message_t *m = r->message;
        text = kf_chat_message_text(m);
        outcome.message = text;
        if (r->duplicate) {
            /* Stored and published when the key was first seen: only its sender hears again. */
            pending_end(pending, &outcome);
            free(text);
            return;
        }
        /* News for the replays, published or not: a message jansson could not encode is stored
         * all the same, and the cursor just below it must not pass for current. */
        kf_replay_note_message(app->replay, kf_chat_audience_visitor(m), m->id);
        /* An automatic assignee who answers keeps it (a private note is no answer); a visitor
         * who writes may need someone. */
        if (m->sender == KF_SENDER_AGENT && !m->is_private)
            kf_autoassign_replied(app->autoassign, m->conversation_id, m->agent_id);
        else if (m->sender == KF_SENDER_VISITOR)
            kf_autoassign_kick(app->autoassign);
        pending->event = text != NULL ? kf_chat_message_event_of(m->id, text) : NULL;
        if (pending->event != NULL) /* the delivery latency runs from here (/metrics) */
            pending->event->born_ms = m->created_at;
        pending->visitor_id = kf_chat_audience_visitor(m);
        pending->conversation_id = m->conversation_id;
        if (!m->is_private && kf_webhooks_wants(app->webhooks, "message.created"))
            kf_webhooks_emit(app->webhooks, "message.created",
                             json_pack("{s:o}", "message", kf_chat_message_json(m)));
        if (r->conversation_opened)
            kf_chat_hook_conversation(app, m->conversation_id, KF_HOOK_CREATED);
        pending->publish_conversation = r->conversation_opened || r->conversation_reopened;
        pending->status_changed = r->conversation_reopened;
        kf_chat_publish_mentions(app, m);
    }
    kf_chat_publish(app->hub, pending->visitor_id, true, pending->event);
    pending->event = NULL;
    if (pending->publish_conversation)
        kf_chat_publish_conversation(app->store, app->hub, pending->conversation_id,
                                     pending->status_changed);
    pending_end(pending, &outcome);
    free(text);
}

int kf_chat_send(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *body,
                 json_t *private_note, const char *key, kf_chat_done_cb done, void *done_data,
                 kf_chat_error_t *err)
{
    if (!json_is_string(body))
        return fail(err, KF_EINVAL, "body must be a string");
    if (private_note != NULL && !json_is_boolean(private_note))
        return fail(err, KF_EPROTO, "private must be true or false");
    bool is_private = json_is_true(private_note);
    if (is_private && who.kind == 'v')
        return fail(err, KF_EPROTO, "only agents write private notes");
    if (who.kind != 'v' && conversation_id <= 0)
        return fail(err, KF_ENOTFOUND, "no such conversation");
    if (key != NULL && (key[0] == '\0' || strlen(key) > 255))
        return fail(err, KF_EINVAL, "an idempotency key has 1 to 255 characters");
    char *text = kf_trim_copy(json_string_value(body));
    size_t chars = kf_utf8_length(text);
    if (chars == 0 || chars > app->config.max_message_chars) {
        free(text);
        char message[96];
        snprintf(message, sizeof message, "a message has 1 to %zu characters",
                 app->config.max_message_chars);
        return fail(err, KF_EINVAL, message);
    }
    /* A visitor writes to their conversation, opened by their first message and reopened by
     * one after it was resolved or snoozed (the store tells, and the agents' lists then learn of
     * it). Published and acknowledged only once durable: nothing a client was told of is lost. */
    kf_message_new_t m = {
        .body = text, .now = kf_clock_wall_ms(), .idempotency_key = key, .is_private = is_private};
    if (who.kind == 'v') {
        m.visitor_id = who.id;
        m.sender = KF_SENDER_VISITOR;
    } else {
        m.conversation_id = conversation_id;
        m.sender = KF_SENDER_AGENT;
        m.agent_id = who.id;
    }
    pending_t *pending = pending_new(app, who, done, done_data);
    int rc = app->store->ops->message_add(app->store, &m, committed_cb, pending);
    free(text);
    if (rc != 0) {
        free(pending);
        return store_error(err, rc, "conversation");
    }
    return 0;
}

int kf_chat_invite(kf_app_t *app, kf_actor_t who, int64_t visitor_id, const char *body,
                   kf_chat_done_cb done, void *done_data, kf_chat_error_t *err)
{
    if (who.kind != 'a' || visitor_id <= 0)
        return fail(err, KF_ENOTFOUND, "no such visitor");
    char *text = kf_trim_copy(body);
    size_t chars = kf_utf8_length(text);
    if (chars == 0 || chars > app->config.max_message_chars) {
        free(text);
        char message[96];
        snprintf(message, sizeof message, "a message has 1 to %zu characters",
                 app->config.max_message_chars);
        return fail(err, KF_EINVAL, message);
    }
    /* Addressed by visitor, not conversation: the store opens their conversation (or reopens
     * their last one), so that the invitation is its first agent message and history keeps it. */
    kf_message_new_t m = {.body = text,
                          .now = kf_clock_wall_ms(),
                          .visitor_id = visitor_id,
                          .sender = KF_SENDER_AGENT,
                          .agent_id = who.id};
    pending_t *pending = pending_new(app, who, done, done_data);
    int rc = app->store->ops->message_add(app->store, &m, committed_cb, pending);
    free(text);
    if (rc != 0) {
        free(pending);
        return store_error(err, rc, "visitor");
    }
    return 0;
}

int kf_chat_send_attachment(kf_app_t *app, kf_actor_t who, int64_t conversation_id,
                            const kf_attachment_new_t *attachment, kf_chat_done_cb done,
                            void *done_data, kf_chat_error_t *err)
{
    if (who.kind != 'v' && conversation_id <= 0)
        return fail(err, KF_ENOTFOUND, "no such conversation");
    /* The file's name is the message's text: what the lists, search and a client that knows
     * nothing of attachments show. */
    kf_message_new_t m = {
        .body = attachment->name, .now = kf_clock_wall_ms(), .attachment = attachment};
    if (who.kind == 'v') {
        m.visitor_id = who.id;
        m.sender = KF_SENDER_VISITOR;
    } else {
        m.conversation_id = conversation_id;
        m.sender = KF_SENDER_AGENT;
        m.agent_id = who.id;
    }
    pending_t *pending = pending_new(app, who, done, done_data);
    int rc = app->store->ops->message_add(app->store, &m, committed_cb, pending);
    if (rc != 0) {
        free(pending);
        return store_error(err, rc, "conversation");
    }
    return 0;
}

void kf_chat_publish_message(kf_app_t *app, const kf_message_t *m)
{
    int64_t visitor_id = kf_chat_audience_visitor(m);
    kf_replay_note_message(app->replay, visitor_id, m->id);
    kf_event_t *event = kf_chat_message_event(m);
    if (event != NULL)
        event->born_ms = m->created_at; /* the delivery latency runs from here (/metrics) */
    kf_chat_publish(app->hub, visitor_id, true, event);
    kf_chat_publish_mentions(app, m);
}

/* ---- read marks ---- */

static kf_event_t *read_event(int64_t conversation_id, const char *reader, int64_t up_to)
{
    return kf_chat_event(0, json_pack("{s:s,s:I,s:s,s:I}", "type", "read", "conversation_id",
                                      (json_int_t)conversation_id, "reader", reader, "up_to",
                                      (json_int_t)up_to));
}

/* The write of a read mark, once its lookup has named the conversation and its visitor. */
static void mark_read(pending_t *pending)
{
    kf_store_t *store = pending->app->store;
    bool visitor = pending->who.kind == 'v';
    pending->event =
        read_event(pending->conversation_id, visitor ? "visitor" : "agent", pending->mark);
    pending->publish_conversation = !visitor;
    int rc = store->ops->conversation_mark_read(store, pending->conversation_id,
                                                visitor ? KF_SENDER_VISITOR : KF_SENDER_AGENT,
                                                pending->mark, committed_cb, pending);
    if (rc != 0)
        pending_store_failed(pending, rc, "conversation");
}

/* The lookup's row: the first message at or after the mark. */
static int read_found_cb(void *ctx, const kf_message_t *m)
{
    pending_t *pending = ctx;
    pending->found = true;
    pending->found_id = m->id;
    pending->conversation_id = m->conversation_id;
    pending->visitor_id = m->visitor_id;
    return 0;
}

/* An agent's mark past the conversation's newest message, or on no conversation: which? */
static void read_conversation_cb(void *ctx, const kf_store_result_t *r)
{
    pending_t *pending = ctx;
    if (r->rc != 0)
        pending_store_failed(pending, r->rc, "conversation");
    else
        pending_fail(pending, KF_ENOTFOUND, "no such message");
}

static void read_looked_up_cb(void *ctx, const kf_store_result_t *r)
{
    pending_t *pending = ctx;
    if (r->rc != 0) {
        pending_store_failed(pending, r->rc, "conversation");
    } else if (pending->who.kind == 'v') {
        /* The visitor names a message, not a conversation: found among their own messages, it
         * names its conversation and keeps them out of everyone else's. */
        if (!pending->found || pending->found_id != pending->mark)
            pending_fail(pending, KF_ENOTFOUND, "no such message");
        else
            mark_read(pending);
    } else if (!pending->found) {
        kf_store_t *store = pending->app->store;
        int rc = store->ops->conversation_visitor(store, pending->conversation_id,
                                                  read_conversation_cb, pending);
        if (rc != 0)
            pending_store_failed(pending, rc, "conversation");
    } else {
        mark_read(pending);
    }
}

int kf_chat_read(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *up_to,
                 kf_chat_done_cb done, void *done_data, kf_chat_error_t *err)
{
    if (!json_is_integer(up_to) || json_integer_value(up_to) < 1)
        return fail(err, KF_EINVAL, "up_to must be a message id");
    pending_t *pending = pending_new(app, who, done, done_data);
    pending->mark = json_integer_value(up_to);
    pending->conversation_id = conversation_id;
    /* One row at or after the mark: a visitor's must be the very message (their own); an
     * agent's mark must not pass the conversation's newest message, which would announce
     * messages that do not exist. The row also names the conversation's visitor. */
    kf_store_t *store = app->store;
    int rc =
        who.kind == 'v'
            ? store->ops->messages_of_visitor(store, who.id, pending->mark - 1, 1, read_found_cb,
                                              read_looked_up_cb, pending)
            : store->ops->messages_in_conversation(store, conversation_id, pending->mark - 1, 1,
                                                   read_found_cb, read_looked_up_cb, pending);
    if (rc != 0) {
        free(pending);
        return store_error(err, rc, "conversation");
    }
    return 0;
}

/* ---- typing ---- */

/* The conversation is known (and for an agent, their name): tell the other side. */
static void typing_found_cb(void *ctx, const kf_store_result_t *r)
{
    pending_t *pending = ctx;
    bool visitor = pending->who.kind == 'v';
    if (visitor && r->rc == KF_ENOTFOUND) {
        /* Typing before the first message opens nothing: there is no one to tell yet. */
        kf_chat_outcome_t nothing = {.rc = 0};
        pending_end(pending, &nothing);
        return;
    }
    if (r->rc != 0) {
        pending_store_failed(pending, r->rc, "conversation");
        return;
    }
    /* A visitor's typing goes to the agents; an agent's to the visitor (and the other agents). */
    if (visitor)
        pending->conversation_id = r->id;
    else
        pending->visitor_id = r->id;
    json_t *event = json_pack("{s:s,s:I,s:s,s:b}", "type", "typing", "conversation_id",
                              (json_int_t)pending->conversation_id, "sender",
                              visitor ? "visitor" : "agent", "typing", pending->typing);
    if (!visitor)
        json_object_set_new(event, "agent_name", json_string(pending->agent_name));
    /* Checked again here, not only when the draft was read: the setting may have been turned off
     * while the lookup ran, and from then on no draft leaves the server. */
    if (visitor && pending->draft != NULL && pending->typing && pending->app->typing_preview)
        json_object_set_new(event, "text", json_string(pending->draft));
    kf_chat_publish(pending->app->hub, pending->visitor_id, true, kf_chat_event(0, event));
    kf_chat_outcome_t published = {.rc = 0};
    pending_end(pending, &published);
}

/* Looks up the conversation (a visitor's open one, or an agent's conversation's visitor). */
static int typing_look_up(pending_t *pending)
{
    kf_store_t *store = pending->app->store;
    return pending->who.kind == 'v'
               ? store->ops->conversation_of_visitor(store, pending->who.id, typing_found_cb,
                                                     pending)
               : store->ops->conversation_visitor(store, pending->conversation_id, typing_found_cb,
                                                  pending);
}

/* An agent whose name the caller did not know (a WebSocket opened with a ticket). */
static void typing_agent_cb(void *ctx, const kf_store_result_t *r)
{
    pending_t *pending = ctx;
    int rc = r->rc;
    if (rc == 0 && r->agent->disabled_at != 0)
        rc = KF_EFORBIDDEN; /* its socket is being closed: nothing more in its name */
    if (rc == 0) {
        snprintf(pending->agent_name, sizeof pending->agent_name, "%s", r->agent->name);
        rc = typing_look_up(pending);
    }
    if (rc != 0)
        pending_store_failed(pending, rc, "agent");
}

/* kf_chat_typing with the visitor's draft (NULL: none). */
static int typing_start(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *typing,
                        const char *draft, kf_chat_done_cb done, void *done_data,
                        kf_chat_error_t *err)
{
    if (!json_is_boolean(typing))
        return fail(err, KF_EINVAL, "typing must be true or false");
    pending_t *pending = pending_new(app, who, done, done_data);
    pending->typing = json_is_true(typing);
    if (draft != NULL && draft[0] != '\0')
        pending->draft = kf_xstrdup(draft);
    pending->conversation_id = conversation_id;
    int rc;
    if (who.kind == 'a' && who.name == NULL) {
        rc = app->store->ops->agent_by_id(app->store, who.id, typing_agent_cb, pending);
    } else {
        if (who.name != NULL)
            snprintf(pending->agent_name, sizeof pending->agent_name, "%s", who.name);
        rc = typing_look_up(pending);
    }
    if (rc != 0) {
        free(pending->draft);
        free(pending);
        return store_error(err, rc, "conversation");
    }
    return 0;
}

int kf_chat_typing(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *typing,
                   kf_chat_done_cb done, void *done_data, kf_chat_error_t *err)
{
    return typing_start(app, who, conversation_id, typing, NULL, done, done_data, err);
}

int kf_chat_typing_draft(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *body,
                         kf_chat_done_cb done, void *done_data, kf_chat_error_t *err)
{
    json_t *text = json_object_get(body, "text");
    const char *draft = NULL;
    if (text != NULL && !json_is_null(text)) {
        if (!json_is_string(text) ||
            kf_utf8_length(json_string_value(text)) > app->config.max_message_chars)
            return fail(err, KF_EPROTO, "text must be a string no longer than a message");
        /* Off, or from an agent (whose drafts are never shown): dropped here, never stored. */
        if (who.kind == 'v' && app->typing_preview)
            draft = json_string_value(text);
    }
    return typing_start(app, who, conversation_id, json_object_get(body, "typing"), draft, done,
                        done_data, err);
}
