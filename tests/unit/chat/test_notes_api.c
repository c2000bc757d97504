/* test_notes_api.c: private notes over the JSON API (src/chat/actions.c, events.c, search_api.c)
 * on a real server (tests/unit/support/chat_fixture.h): an agent's note is stored and pushed to
 * the agents' topic only; the visitor's message list, from any cursor, never holds one; "private"
 * that is not a boolean, or a visitor's note, is a 400 that changes nothing; search marks notes. */
#include "support/chat_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "chat/events.h"
#include "chat/internal.h"

static void expect(cf_response_t *r, int status, const char *code, const char *what)
{
    if (r->status != status || strcmp(cf_error_code(r), code) != 0)
        fail_msg("%s: %d %s (%s)", what, r->status, cf_error_code(r), r->body);
    cf_response_free(r);
}

/* An agent's message in the fixture's conversation: its id, after checking its private flag. */
static int64_t agent_sends(const char *body_json, bool is_private)
{
    char path[96];
    cf_expand("/api/conversations/{c}/messages", path, sizeof path);
    cf_response_t *r = cf_request(AS_AGENT, "POST", path, body_json);
    if (r->status != 201)
        fail_msg("send %s: %d %s", body_json, r->status, r->body);
    json_t *message = json_object_get(r->json, "message");
    assert_true(json_is_true(json_object_get(message, "private")) == is_private);
    int64_t id = json_integer_value(json_object_get(message, "id"));
    cf_response_free(r);
    return id;
}

/* The ids the visitor's message list gives after a cursor. */
static size_t visitor_ids(int64_t after, int64_t *ids, size_t max)
{
    char path[96];
    snprintf(path, sizeof path, "/api/visitor/messages?after=%lld", (long long)after);
    cf_response_t *r = cf_request(AS_VISITOR, "GET", path, NULL);
    assert_int_equal(r->status, 200);
    json_t *messages = json_object_get(r->json, "messages");
    size_t n = json_array_size(messages);
    assert_true(n <= max);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(messages, i);
        assert_true(json_is_false(json_object_get(m, "private")));
        assert_null(strstr(json_string_value(json_object_get(m, "body")), "SECRET"));
        ids[i] = json_integer_value(json_object_get(m, "id"));
    }
    cf_response_free(r);
    return n;
}

static void test_note_stays_with_agents(void **state)
{
    (void)state;
    int64_t reply = agent_sends("{\"body\":\"a reply\"}", false);
    cf->agent_events = cf->visitor_events = 0;
    int64_t note = agent_sends("{\"body\":\"SECRET note\",\"private\":true}", true);
    assert_int_equal(cf->agent_events, 1);
    assert_int_equal(cf->visitor_events, 0); /* nothing on the visitor's topic */
    int64_t after = agent_sends("{\"body\":\"another reply\",\"private\":false}", false);
    assert_int_equal(cf->visitor_events, 1);

    /* The visitor's list: whole, and from every cursor, the note's own included. */
    int64_t ids[16];
    size_t n = visitor_ids(0, ids, 16);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], cf->message_id);
    assert_int_equal(ids[1], reply);
    assert_int_equal(ids[2], after);
    for (int64_t cursor = reply; cursor <= after; cursor++) {
        n = visitor_ids(cursor, ids, 16);
        assert_int_equal(n, cursor < after ? 1 : 0);
        if (n == 1)
            assert_int_equal(ids[0], after);
    }

    /* The agents' list holds it, marked. */
    char path[96];
    cf_expand("/api/conversations/{c}/messages", path, sizeof path);
    cf_response_t *r = cf_request(AS_AGENT, "GET", path, NULL);
    assert_int_equal(r->status, 200);
    json_t *messages = json_object_get(r->json, "messages");
    bool found = false;
    for (size_t i = 0; i < json_array_size(messages); i++) {
        json_t *m = json_array_get(messages, i);
        if (json_integer_value(json_object_get(m, "id")) == note) {
            found = true;
            assert_true(json_is_true(json_object_get(m, "private")));
        }
    }
    assert_true(found);
    cf_response_free(r);

    /* Search: the agent finds it, marked private; the visitor may not search at all. */
    r = cf_request(AS_AGENT, "GET", "/api/search?q=SECRET", NULL);
    assert_int_equal(r->status, 200);
    json_t *results = json_object_get(r->json, "results");
    assert_int_equal(json_array_size(results), 1);
    assert_true(json_is_true(json_object_get(json_array_get(results, 0), "private")));
    cf_response_free(r);
    r = cf_request(AS_VISITOR, "GET", "/api/search?q=SECRET", NULL);
    assert_true(r->status == 401 || r->status == 403);
    cf_response_free(r);

    /* The agents' transcript keeps it, marked. */
    cf_expand("/api/conversations/{c}/transcript?format=txt", path, sizeof path);
    r = cf_request(AS_AGENT, "GET", path, NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "(agent, private note): SECRET note"));
    cf_response_free(r);
}

static void test_bad_private(void **state)
{
    (void)state;
    char path[96];
    cf_expand("/api/conversations/{c}/messages", path, sizeof path);
    static const char *const bodies[] = {
        "{\"body\":\"x\",\"private\":\"yes\"}",
        "{\"body\":\"x\",\"private\":1}",
        "{\"body\":\"x\",\"private\":null}",
        "{\"body\":\"x\",\"private\":[true]}",
    };
    size_t before = 0;
    int64_t ids[64];
    before = visitor_ids(0, ids, 64);
    cf->agent_events = cf->visitor_events = 0;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        expect(cf_request(AS_AGENT, "POST", path, bodies[i]), 400, "bad_request", bodies[i]);
    expect(cf_request(AS_VISITOR, "POST", "/api/visitor/messages",
                      "{\"body\":\"x\",\"private\":true}"),
           400, "bad_request", "a visitor's note");
    assert_int_equal(cf->agent_events, 0);
    assert_int_equal(cf->visitor_events, 0);
    assert_int_equal(visitor_ids(0, ids, 64), before);
    /* A visitor's "private": false is just a message. */
    cf_response_t *r = cf_request(AS_VISITOR, "POST", "/api/visitor/messages",
                                  "{\"body\":\"hello\",\"private\":false}");
    assert_int_equal(r->status, 201);
    cf_response_free(r);
}

/* The mention events seen on the agents' topic, parsed. */
typedef struct mentions_seen {
    kf_sub_t sub;
    size_t count;
    json_t *last;
} mentions_seen_t;

static void mention_cb(kf_sub_t *sub, kf_event_t *event)
{
    mentions_seen_t *seen = sub->data;
    json_t *o = json_loads(event->json, 0, NULL);
    assert_non_null(o);
    if (strcmp(json_string_value(json_object_get(o, "type")), "mention") != 0) {
        json_decref(o);
        return;
    }
    seen->count++;
    json_decref(seen->last);
    seen->last = o;
}

/* A note naming an agent tells that agent (by agent_id, on the agents' topic); one naming its
 * author, nobody; a reply naming an agent is no note and tells nobody. */
static void test_mention_event(void **state)
{
    (void)state;
    cf_log_in_admin(); /* "Ada" */
    mentions_seen_t seen = {0};
    kf_sub_init(&seen.sub, mention_cb, &seen);
    kf_hub_subscribe(cf->app->hub, KF_AGENTS_TOPIC, &seen.sub);
    int64_t note =
        agent_sends("{\"body\":\"@ada can you refund this one?\",\"private\":true}", true);
    cf_response_free(cf_request(AS_AGENT, "GET", "/api/agents", NULL)); /* after the agents' read */
    assert_int_equal(seen.count, 1);
    json_t *m = seen.last;
    assert_int_equal(json_integer_value(json_object_get(m, "message_id")), note);
    assert_int_equal(json_integer_value(json_object_get(m, "conversation_id")),
                     cf->conversation_id);
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "author"), "name")),
                        "Agnes");
    assert_string_equal(json_string_value(json_object_get(m, "snippet")),
                        "@ada can you refund this one?");
    cf_response_t *r = cf_request(AS_ADMIN, "GET", "/api/agent/me", NULL);
    assert_int_equal(r->status, 200);
    json_t *me = json_object_get(r->json, "agent");
    if (me == NULL)
        me = r->json;
    assert_int_equal(json_integer_value(json_object_get(m, "agent_id")),
                     json_integer_value(json_object_get(me, "id")));
    cf_response_free(r);

    agent_sends("{\"body\":\"@Agnes note to self\",\"private\":true}", true);
    agent_sends("{\"body\":\"@Ada is our admin\"}", false);
    cf_response_free(cf_request(AS_AGENT, "GET", "/api/agents", NULL));
    assert_int_equal(seen.count, 1);
    kf_hub_unsubscribe(cf->app->hub, &seen.sub);
    json_decref(seen.last);
}

/* The messages the agents' list of the conversation holds. */
static size_t agent_message_count(void)
{
    char path[96];
    cf_expand("/api/conversations/{c}/messages", path, sizeof path);
    cf_response_t *r = cf_request(AS_AGENT, "GET", path, NULL);
    assert_int_equal(r->status, 200);
    size_t n = json_array_size(json_object_get(r->json, "messages"));
    cf_response_free(r);
    return n;
}

/* A transfer's note: stored with the transfer as a private note, pushed to the agents only, its
 * mention told; a refused transfer stores no note. */
static void test_assign_note(void **state)
{
    (void)state;
    mentions_seen_t seen = {0};
    kf_sub_init(&seen.sub, mention_cb, &seen);
    kf_hub_subscribe(cf->app->hub, KF_AGENTS_TOPIC, &seen.sub);
    cf_response_t *r = cf_request(AS_AGENT, "GET", "/api/agents", NULL);
    int64_t ada = 0;
    json_t *agents = json_object_get(r->json, "agents");
    for (size_t i = 0; i < json_array_size(agents); i++) {
        json_t *a = json_array_get(agents, i);
        if (strcmp(json_string_value(json_object_get(a, "name")), "Ada") == 0)
            ada = json_integer_value(json_object_get(a, "id"));
    }
    cf_response_free(r);
    assert_true(ada > 0);
    size_t before = agent_message_count();
    char path[96], body[128];
    cf_expand("/api/conversations/{c}/assign", path, sizeof path);

    snprintf(body, sizeof body, "{\"agent_id\":999,\"note\":\"SECRET lost\"}");
    expect(cf_request(AS_AGENT, "POST", path, body), 422, "invalid", "unknown agent");
    assert_int_equal(agent_message_count(), before);

    cf->agent_events = cf->visitor_events = 0;
    snprintf(body, sizeof body,
             "{\"agent_id\":%lld,\"note\":\"  SECRET handover, @Ada: refund pending  \"}",
             (long long)ada);
    r = cf_request(AS_AGENT, "POST", path, body);
    assert_int_equal(r->status, 200);
    cf_response_free(r);
    cf_response_free(cf_request(AS_AGENT, "GET", "/api/agents", NULL));
    assert_int_equal(cf->visitor_events, 0);
    assert_true(cf->agent_events >= 2); /* the note, the conversation's new state */
    assert_int_equal(agent_message_count(), before + 1);
    int64_t ids[64];
    size_t n = visitor_ids(0, ids, 64); /* asserts no SECRET */
    assert_true(n > 0);
    assert_int_equal(seen.count, 1);
    assert_int_equal(json_integer_value(json_object_get(seen.last, "agent_id")), ada);
    assert_string_equal(json_string_value(json_object_get(seen.last, "snippet")),
                        "SECRET handover, @Ada: refund pending");
    kf_hub_unsubscribe(cf->app->hub, &seen.sub);
    json_decref(seen.last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_note_stays_with_agents, cf_test_setup),
        cmocka_unit_test_setup(test_bad_private, cf_test_setup),
        cmocka_unit_test_setup(test_mention_event, cf_test_setup),
        cmocka_unit_test_setup(test_assign_note, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, cf_group_setup, cf_group_teardown);
}
