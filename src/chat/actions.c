/* actions.c: what visitors and agents do — send a message, mark messages read, show typing —
 * checked, stored and published the same way whether the request came over HTTP or WebSocket. */
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

static int store_fail(kf_chat_error_t *err, int rc)
{
    if (rc == KF_ENOTFOUND)
        return fail(err, 404, "not_found", "no such conversation");
    kf_error("store failure: %s", kf_strerror(rc));
    return fail(err, 500, "internal", "the server could not complete the request");
}

/* A write waiting for its commit: what to publish and whom to answer once it is durable. */
typedef struct pending {
    kf_app_t *app;
    kf_chat_done_cb done;
    void *done_data;
    kf_event_t *event;  /* a read mark's event; a message's is made from the stored row */
    int64_t visitor_id; /* the conversation's visitor: whose topic gets event */
    int64_t conversation_id;
    bool publish_conversation; /* the agents' lists learn of the conversation's new state */
} pending_t;

/* The store's done callback, on the loop once the writer thread has committed (or failed). */
static void committed_cb(void *ctx, const kf_store_result_t *r)
{
    pending_t *pending = ctx;
    kf_app_t *app = pending->app;
    if (r->rc != 0) {
        kf_event_unref(pending->event);
        kf_chat_error_t err;
        if (r->rc == KF_ENOTFOUND) {
            fail(&err, 404, "not_found", "no such conversation");
        } else {
            kf_error("store write failed: %s", kf_strerror(r->rc));
            fail(&err, 500, "internal", "the server could not store that; please try again");
        }
        pending->done(app, pending->done_data, NULL, &err);
        free(pending);
        return;
    }
    /* Durable now: the other side may see it, and the sender may be told. */
    char *result = NULL;
    if (pending->event == NULL) {
        const kf_message_t *m = &r->message;
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

static pending_t *pending_new(kf_app_t *app, kf_chat_done_cb done, void *done_data)
{
    pending_t *pending = kf_xcalloc(1, sizeof *pending);
    pending->app = app;
    pending->done = done;
    pending->done_data = done_data;
    return pending;
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
    kf_store_t *store = app->store;
    pending_t *pending = pending_new(app, done, done_data);
    int rc = who.kind == 'v'
                 ? store->ops->message_add(store, 0, who.id, KF_SENDER_VISITOR, 0, text,
                                           kf_now_ms(), committed_cb, pending)
                 : store->ops->message_add(store, conversation_id, 0, KF_SENDER_AGENT, who.id, text,
                                           kf_now_ms(), committed_cb, pending);
    free(text);
    if (rc != 0) {
        free(pending);
        return store_fail(err, rc);
    }
    return 0;
}

static int found_conversation_cb(void *ctx, const kf_message_t *m)
{
    int64_t *found = ctx;
    found[0] = m->id;
    found[1] = m->conversation_id;
    return 0;
}

static int conversation_visitor_cb(void *ctx, const kf_conversation_t *c)
{
    *(int64_t *)ctx = c->visitor_id;
    return 0;
}

/* The conversation's visitor and newest message id (0 when it has none). */
static int conversation_newest_cb(void *ctx, const kf_conversation_t *c)
{
    int64_t *out = ctx;
    out[0] = c->visitor_id;
    out[1] = c->has_last_message ? c->last_message.id : 0;
    return 0;
}

static kf_event_t *read_event(int64_t conversation_id, const char *reader, int64_t up_to)
{
    return kf_chat_event(0, json_pack("{s:s,s:I,s:s,s:I}", "type", "read", "conversation_id",
                                      (json_int_t)conversation_id, "reader", reader, "up_to",
                                      (json_int_t)up_to));
}

int kf_chat_read(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *up_to,
                 kf_chat_done_cb done, void *done_data, kf_chat_error_t *err)
{
    if (!json_is_integer(up_to) || json_integer_value(up_to) < 1)
        return fail(err, 422, "invalid", "up_to must be a message id");
    int64_t mark = json_integer_value(up_to);
    kf_store_t *store = app->store;
    int64_t visitor_id = 0;
    int rc;
    if (who.kind == 'v') {
        /* The visitor names a message, not a conversation: looking it up among their own
         * messages finds its conversation and keeps them out of everyone else's. */
        int64_t found[2] = {0, 0};
        rc = store->ops->messages_of_visitor(store, who.id, mark - 1, 1, found_conversation_cb,
                                             found);
        if (rc == 0 && found[0] != mark)
            return fail(err, 404, "not_found", "no such message");
        conversation_id = found[1];
        visitor_id = who.id;
    } else {
        /* An agent names a message of the conversation too: a mark past its newest message would
         * announce messages that do not exist. */
        int64_t found[2] = {0, 0};
        rc = store->ops->conversation_get(store, conversation_id, conversation_newest_cb, found);
        if (rc == 0 && mark > found[1])
            return fail(err, 404, "not_found", "no such message");
        visitor_id = found[0];
    }
    if (rc != 0)
        return store_fail(err, rc);
    pending_t *pending = pending_new(app, done, done_data);
    pending->event = read_event(conversation_id, who.kind == 'v' ? "visitor" : "agent", mark);
    pending->visitor_id = visitor_id;
    pending->conversation_id = conversation_id;
    pending->publish_conversation = who.kind == 'a';
    rc = store->ops->conversation_mark_read(store, conversation_id,
                                            who.kind == 'v' ? KF_SENDER_VISITOR : KF_SENDER_AGENT,
                                            mark, committed_cb, pending);
    if (rc != 0) {
        kf_event_unref(pending->event);
        free(pending);
        return store_fail(err, rc);
    }
    return 0;
}

static int agent_name_cb(void *ctx, const kf_agent_t *a)
{
    snprintf(ctx, 4 * KF_MAX_NAME_CHARS + 1, "%s", a->name);
    return 0;
}

int kf_chat_typing(kf_app_t *app, kf_actor_t who, int64_t conversation_id, json_t *typing,
                   kf_chat_error_t *err)
{
    if (!json_is_boolean(typing))
        return fail(err, 422, "invalid", "typing must be true or false");
    kf_store_t *store = app->store;
    char agent_name[4 * KF_MAX_NAME_CHARS + 1] = "";
    int64_t visitor_id = 0;
    int rc;
    if (who.kind == 'v') {
        /* Typing before the first message opens nothing: there is no one to tell yet. */
        rc = store->ops->conversation_find_open(store, who.id, &conversation_id);
        if (rc == KF_ENOTFOUND)
            return 0;
    } else {
        rc = store->ops->conversation_get(store, conversation_id, conversation_visitor_cb,
                                          &visitor_id);
        if (rc == 0)
            rc = store->ops->agent_by_id(store, who.id, agent_name_cb, agent_name);
    }
    if (rc != 0)
        return store_fail(err, rc);
    json_t *event = json_pack(
        "{s:s,s:I,s:s,s:b}", "type", "typing", "conversation_id", (json_int_t)conversation_id,
        "sender", who.kind == 'v' ? "visitor" : "agent", "typing", json_is_true(typing));
    if (who.kind == 'a')
        json_object_set_new(event, "agent_name", json_string(agent_name));
    /* A visitor's typing goes to the agents; an agent's to the visitor (and the other agents). */
    kf_chat_publish(app, visitor_id, true, kf_chat_event(0, event));
    return 0;
}
