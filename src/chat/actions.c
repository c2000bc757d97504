/* actions.c: what visitors and agents do — send a message, mark messages read, show typing —
 * checked, stored and published the same way whether the request came over HTTP or WebSocket.
 * Each action is a chain of store callbacks: a lookup where it needs one, then the write, then
 * the publish and the caller's done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "chat/chat.h"

static int fail(kf_chat_error_t *err, int status, const char *code, const char *message)
{
    err->status = status;
    err->code = code;
    snprintf(err->message, sizeof err->message, "%s", message);
    return -1;
}

int kf_chat_store_error(kf_chat_error_t *err, int rc, const char *what)
{
    char message[64];
    if (rc == KF_ENOTFOUND) {
        snprintf(message, sizeof message, "no such %s", what);
        return fail(err, 404, "not_found", message);
    }
    if (rc == KF_EUNAVAIL)
        return fail(err, 503, "unavailable", "the server cannot store that now; please try again");
    kf_error("store failure: %s", kf_strerror(rc));
    return fail(err, 500, "internal", "the server could not complete the request");
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
    char agent_name[4 * KF_MAX_NAME_CHARS + 1]; /* typing: the agent's name */
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

/* Ends an action that failed: err goes to done, nothing is published. */
static void pending_fail(pending_t *pending, const kf_chat_error_t *err)
{
    kf_event_unref(pending->event);
    pending->done(pending->app, pending->done_data, NULL, err);
    free(pending);
}

/* pending_fail for a store failure (what: see kf_chat_store_error). */
static void pending_store_failed(pending_t *pending, int rc, const char *what)
{
    kf_chat_error_t err;
    kf_chat_store_error(&err, rc, what);
    pending_fail(pending, &err);
}

/* pending_fail with a 404. */
static void pending_not_found(pending_t *pending, const char *message)
{
    kf_chat_error_t err;
    fail(&err, 404, "not_found", message);
    pending_fail(pending, &err);
}

/* The store's done callback of the write, on the loop once the writer thread has committed (or
 * failed). */
static void committed_cb(void *ctx, const kf_store_result_t *r)
{
    pending_t *pending = ctx;
    kf_app_t *app = pending->app;
    if (r->rc != 0) {
        if (r->rc != KF_ENOTFOUND && r->rc != KF_EUNAVAIL)
            kf_error("store write failed: %s", kf_strerror(r->rc));
        kf_chat_error_t err;
        if (r->rc == KF_ENOTFOUND || r->rc == KF_EUNAVAIL)
            kf_chat_store_error(&err, r->rc, "conversation");
        else
            fail(&err, 500, "internal", "the server could not store that; please try again");
        pending_fail(pending, &err);
        return;
    }
    /* Durable now: the other side may see it, and the sender may be told. */
    char *result = NULL;
    if (r->message != NULL) {
        const kf_message_t *m = r->message;
        /* News for the replays (live.c), published or not: a message jansson could not encode
         * is stored all the same, and the cursor just below it must not pass for current. */
        kf_live_note_message(app, m->visitor_id, m->id);
        result = kf_chat_message_text(m);
        pending->event = result != NULL ? kf_chat_message_event_of(m->id, result) : NULL;
        pending->visitor_id = m->visitor_id;
        pending->conversation_id = m->conversation_id;
        pending->publish_conversation = r->conversation_opened;
    }
    kf_chat_publish(app, pending->visitor_id, true, pending->event);
    if (pending->publish_conversation)
        kf_chat_publish_conversation(app, pending->conversation_id);
    pending->done(app, pending->done_data, result, NULL);
    free(result);
    free(pending);
}

int kf_chat_send(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *body,
                 kf_chat_done_cb done, void *done_data, kf_chat_error_t *err)
{
    if (!json_is_string(body))
        return fail(err, 422, "invalid", "body must be a string");
    if (who.kind != 'v' && conversation_id <= 0)
        return fail(err, 404, "not_found", "no such conversation");
    char *text = kf_trim_copy(json_string_value(body));
    size_t chars = kf_utf8_length(text);
    if (chars == 0 || chars > app->config.max_message_chars) {
        free(text);
        char message[96];
        snprintf(message, sizeof message, "a message has 1 to %zu characters",
                 app->config.max_message_chars);
        return fail(err, 422, "invalid", message);
    }
    /* A visitor writes to their open conversation, opened by their first message (the store
     * tells, and the agents' lists then learn of it). Published and acknowledged only once
     * durable: nothing a client was told of is lost. */
    kf_message_new_t m = {.body = text, .now = kf_now_ms()};
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
        return kf_chat_store_error(err, rc, "conversation");
    }
    return 0;
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
        pending_not_found(pending, "no such message");
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
            pending_not_found(pending, "no such message");
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
        return fail(err, 422, "invalid", "up_to must be a message id");
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
        return kf_chat_store_error(err, rc, "conversation");
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
        pending->done(pending->app, pending->done_data, NULL, NULL);
        free(pending);
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
    kf_chat_publish(pending->app, pending->visitor_id, true, kf_chat_event(0, event));
    pending->done(pending->app, pending->done_data, NULL, NULL);
    free(pending);
}

/* Looks up the conversation (a visitor's open one, or an agent's conversation's visitor). */
static int typing_look_up(pending_t *pending)
{
    kf_store_t *store = pending->app->store;
    return pending->who.kind == 'v'
               ? store->ops->conversation_find_open(store, pending->who.id, typing_found_cb,
                                                    pending)
               : store->ops->conversation_visitor(store, pending->conversation_id, typing_found_cb,
                                                  pending);
}

/* An agent whose name the caller did not know (a WebSocket opened with a ticket). */
static void typing_agent_cb(void *ctx, const kf_store_result_t *r)
{
    pending_t *pending = ctx;
    int rc = r->rc;
    if (rc == 0) {
        snprintf(pending->agent_name, sizeof pending->agent_name, "%s", r->agent->name);
        rc = typing_look_up(pending);
    }
    if (rc != 0)
        pending_store_failed(pending, rc, "agent");
}

int kf_chat_typing(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *typing,
                   kf_chat_done_cb done, void *done_data, kf_chat_error_t *err)
{
    if (!json_is_boolean(typing))
        return fail(err, 422, "invalid", "typing must be true or false");
    pending_t *pending = pending_new(app, who, done, done_data);
    pending->typing = json_is_true(typing);
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
        free(pending);
        return kf_chat_store_error(err, rc, "conversation");
    }
    return 0;
}
