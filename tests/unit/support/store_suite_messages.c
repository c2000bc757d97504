/* store_suite_messages.c: the store test suite's tests of conversations and messages: opening,
 * appending, the three message queries and their paging, read marks and unread counts, the newest
 * message's id, the conversation list's keyset paging, status, restarts and hostile text. */
#include "support/store_suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "store/sync.h"

/* ---- helpers ---- */

/* The three message queries, waited for: the result code; the rows in seen->messages. */
static int query_conversation(suite_fixture_t *f, seen_t *seen, int64_t conversation_id,
                              int64_t after, size_t limit)
{
    return suite_wait(f,
                      f->store->ops->messages_in_conversation(f->store, conversation_id, after,
                                                              limit, on_message, on_done, seen),
                      seen);
}

static int query_visitor(suite_fixture_t *f, seen_t *seen, int64_t visitor_id, int64_t after,
                         size_t limit)
{
    return suite_wait(f,
                      f->store->ops->messages_of_visitor(f->store, visitor_id, after, limit,
                                                         on_message, on_done, seen),
                      seen);
}

static int query_all(suite_fixture_t *f, seen_t *seen, int64_t after, size_t limit)
{
    return suite_wait(
        f, f->store->ops->messages_all(f->store, after, limit, on_message, on_done, seen), seen);
}

static int list_page(suite_fixture_t *f, seen_t *seen, const kf_conversation_page_t *page)
{
    return suite_wait(
        f, f->store->ops->conversation_list(f->store, page, on_conversation, on_done, seen), seen);
}

static int mark_read(suite_fixture_t *f, int64_t conversation_id, kf_sender_t reader, int64_t up_to)
{
    seen_t *seen = seen_new();
    int rc = suite_wait(f,
                        f->store->ops->conversation_mark_read(f->store, conversation_id, reader,
                                                              up_to, on_done, seen),
                        seen);
    seen_free(seen);
    return rc;
}

static void assert_ids(const seen_t *seen, const int64_t *ids, size_t count)
{
    assert_int_equal(seen->message_count, count);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(seen->messages[i].id, ids[i]);
}

/* ---- conversations ---- */

static void test_conversations(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t visitor = suite_add_visitor(f, "token-a", "Zoë");
    seen_t *seen = seen_new();
    assert_int_equal(
        suite_wait(f, ops->conversation_of_visitor(f->store, visitor, on_done, seen), seen),
        KF_ENOTFOUND);

    /* The first message opens the conversation; the next goes into it. */
    kf_message_new_t m = {
        .visitor_id = visitor, .sender = KF_SENDER_VISITOR, .body = "hello", .now = SUITE_NOW + 1};
    assert_int_equal(suite_send(f, seen, &m), 0);
    assert_true(last_result(seen)->conversation_opened);
    int64_t first = last_result(seen)->message.conversation_id;
    assert_int_equal(last_result(seen)->message.visitor_id, visitor);
    m.now = SUITE_NOW + 2;
    assert_int_equal(suite_send(f, seen, &m), 0);
    assert_false(last_result(seen)->conversation_opened);
    assert_int_equal(last_result(seen)->message.conversation_id, first);
    assert_int_equal(
        suite_wait(f, ops->conversation_of_visitor(f->store, visitor, on_done, seen), seen), 0);
    assert_int_equal(last_result(seen)->id, first);
    assert_int_equal(suite_wait(f, ops->conversation_visitor(f->store, first, on_done, seen), seen),
                     0);
    assert_int_equal(last_result(seen)->id, visitor);
    seen_free(seen);

    seen = suite_get_conversation(f, first);
    const kf_conversation_t *c = &last_result(seen)->conversation;
    assert_int_equal(c->id, first);
    assert_int_equal(c->visitor_id, visitor);
    assert_string_equal(c->visitor_name, "Zoë");
    assert_string_equal(c->status, "open");
    assert_int_equal(c->created_at, SUITE_NOW + 1);
    assert_int_equal(c->updated_at, SUITE_NOW + 2);
    assert_true(c->has_last_message);
    assert_int_equal(c->unread_for_agents, 2);
    seen_free(seen);

    /* A visitor has one thread: resolved or snoozed, it is still theirs, and their next message
     * reopens it rather than starting another. An agent's message reopens nothing. */
    for (int round = 0; round < 2; round++) {
        seen = seen_new();
        if (round == 0)
            assert_int_equal(suite_set_status(f, first, "resolved"), 0);
        else
            assert_int_equal(suite_wait(f,
                                        ops->conversation_set_status(f->store, first, "snoozed",
                                                                     SUITE_NOW + SUITE_HOUR,
                                                                     SUITE_NOW, on_done, seen),
                                        seen),
                             0);
        assert_int_equal(
            suite_wait(f, ops->conversation_of_visitor(f->store, visitor, on_done, seen), seen), 0);
        assert_int_equal(last_result(seen)->id, first);
        int64_t agent = suite_add_agent(f, round == 0 ? "a0@example.com" : "a1@example.com", "A");
        suite_add_message(f, first, agent, "still resolved");
        seen_free(seen);
        seen = suite_get_conversation(f, first);
        assert_string_equal(last_result(seen)->conversation.status,
                            round == 0 ? "resolved" : "snoozed");
        assert_int_equal(last_result(seen)->conversation.snoozed_until,
                         round == 0 ? 0 : SUITE_NOW + SUITE_HOUR);
        assert_int_equal(suite_send(f, seen, &m), 0);
        assert_false(last_result(seen)->conversation_opened);
        assert_true(last_result(seen)->conversation_reopened);
        assert_int_equal(last_result(seen)->message.conversation_id, first);
        seen_free(seen);
        seen = suite_get_conversation(f, first);
        assert_string_equal(last_result(seen)->conversation.status, "open");
        assert_int_equal(last_result(seen)->conversation.snoozed_until, 0);
        seen_free(seen);
    }
    /* An open one is not reopened; nor is a pending one, which an agent set and moves on. */
    seen = seen_new();
    assert_int_equal(suite_send(f, seen, &m), 0);
    assert_false(last_result(seen)->conversation_reopened);
    assert_int_equal(suite_set_status(f, first, "pending"), 0);
    assert_int_equal(suite_send(f, seen, &m), 0);
    assert_false(last_result(seen)->conversation_reopened);
    seen_free(seen);
    seen = suite_get_conversation(f, first);
    assert_string_equal(last_result(seen)->conversation.status, "pending");

    /* Unknown rows. */
    assert_int_equal(
        suite_wait(f, ops->conversation_visitor(f->store, first + 100, on_done, seen), seen),
        KF_ENOTFOUND);
    assert_int_equal(
        suite_wait(f, ops->conversation_get(f->store, first + 100, on_done, seen), seen),
        KF_ENOTFOUND);
    assert_false(last_result(seen)->has_conversation);
    m.visitor_id = visitor + 100;
    assert_int_equal(suite_send(f, seen, &m), KF_ENOTFOUND);
    seen_free(seen);
}

static void test_message_add(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor_a = suite_add_visitor(f, "token-a", "A");
    int64_t visitor_b = suite_add_visitor(f, "token-b", "B");
    int64_t conversation_a = suite_open_conversation(f, visitor_a, "a", SUITE_NOW, NULL);
    int64_t conversation_b = suite_open_conversation(f, visitor_b, "b", SUITE_NOW, NULL);

    /* Ids strictly increase across the whole store, whichever conversation a message is in. */
    int64_t last = 0;
    for (int i = 0; i < 10; i++) {
        int64_t conversation = i % 3 == 0 ? conversation_b : conversation_a;
        int64_t id = suite_add_message(f, conversation, i % 2 == 0 ? 0 : agent, "hello");
        assert_true(id > last);
        last = id;
    }

    /* The row handed to done is the stored row. */
    seen_t *seen = seen_new();
    kf_message_new_t by_agent = {.conversation_id = conversation_a,
                                 .sender = KF_SENDER_AGENT,
                                 .agent_id = agent,
                                 .body = "Hi there",
                                 .now = SUITE_NOW + 5};
    kf_message_new_t by_visitor = {
        .conversation_id = conversation_b, .body = "Hello?", .now = SUITE_NOW + 6};
    assert_int_equal(ops->message_add(f->store, &by_agent, on_done, seen), 0);
    assert_int_equal(ops->message_add(f->store, &by_visitor, on_done, seen), 0);
    assert_int_equal(seen->result_count, 0);
    suite_flush(f);
    assert_int_equal(seen->result_count, 2);
    const kf_message_t *a = &seen->results[0].message;
    assert_true(a->id > last);
    assert_int_equal(a->conversation_id, conversation_a);
    assert_int_equal(a->visitor_id, visitor_a);
    assert_int_equal(a->sender, KF_SENDER_AGENT);
    assert_int_equal(a->agent_id, agent);
    assert_string_equal(a->agent_name, "Ana");
    assert_string_equal(a->body, "Hi there");
    assert_int_equal(a->created_at, SUITE_NOW + 5);
    assert_false(seen->results[0].conversation_opened);
    assert_false(seen->results[0].duplicate);
    const kf_message_t *v = &seen->results[1].message;
    assert_true(v->id > a->id);
    assert_int_equal(v->visitor_id, visitor_b);
    assert_int_equal(v->sender, KF_SENDER_VISITOR);
    assert_int_equal(v->agent_id, 0);
    assert_string_equal(v->agent_name, "");

    /* Stored exactly as handed over. */
    seen_t *stored = seen_new();
    assert_int_equal(query_all(f, stored, last, 10), 0);
    assert_int_equal(stored->message_count, 2);
    assert_int_equal(stored->messages[0].id, a->id);
    assert_int_equal(stored->messages[0].conversation_id, conversation_a);
    assert_int_equal(stored->messages[0].visitor_id, visitor_a);
    assert_int_equal(stored->messages[0].sender, KF_SENDER_AGENT);
    assert_int_equal(stored->messages[0].agent_id, agent);
    assert_string_equal(stored->messages[0].agent_name, "Ana");
    assert_string_equal(stored->messages[0].body, "Hi there");
    assert_int_equal(stored->messages[0].created_at, SUITE_NOW + 5);
    assert_int_equal(stored->messages[1].id, v->id);
    seen_free(stored);
    seen_t *conversation = suite_get_conversation(f, conversation_a);
    assert_int_equal(last_result(conversation)->conversation.updated_at, SUITE_NOW + 5);
    seen_free(conversation);

    /* Refused at once, without a callback. */
    size_t results = seen->result_count;
    char long_key[257]; /* one byte too many */
    memset(long_key, 'k', 256);
    long_key[256] = '\0';
    const kf_message_new_t refused[] = {
        {.conversation_id = conversation_a, .sender = KF_SENDER_AGENT, .body = "no agent"},
        {.conversation_id = conversation_a, .agent_id = agent, .body = "visitor naming agent"},
        {.conversation_id = conversation_a, .sender = (kf_sender_t)7, .body = "bad sender"},
        {.body = "whose?"},
        /* An agent's message by visitor is an invitation; a note needs its conversation. */
        {.visitor_id = visitor_a,
         .sender = KF_SENDER_AGENT,
         .agent_id = agent,
         .body = "where?",
         .is_private = true},
        {.conversation_id = conversation_a, .body = "empty key", .idempotency_key = ""},
        {.conversation_id = conversation_a, .body = "long key", .idempotency_key = long_key},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_int_equal(ops->message_add(f->store, &refused[i], on_done, seen), KF_EINVAL);
    assert_int_equal(ops->message_add(f->store, NULL, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->message_add(f->store, &by_visitor, NULL, NULL), KF_EINVAL);
    suite_flush(f);
    assert_int_equal(seen->result_count, results);

    /* Rows that are not there, in the result; a good write among them is stored: one write's
     * failure is its own. */
    const kf_message_new_t missing[] = {
        {.conversation_id = conversation_b + 100, .body = "lost"},
        {.conversation_id = conversation_a,
         .sender = KF_SENDER_AGENT,
         .agent_id = agent + 100,
         .body = "unknown agent"},
        {.visitor_id = visitor_b + 100, .body = "unknown visitor"},
        {.conversation_id = conversation_a, .body = "stored"},
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        assert_int_equal(ops->message_add(f->store, &missing[i], on_done, seen), 0);
    suite_flush(f);
    assert_int_equal(seen->result_count, results + 4);
    assert_int_equal(seen->results[results].rc, KF_ENOTFOUND);
    assert_false(seen->results[results].has_message);
    assert_int_equal(seen->results[results + 1].rc, KF_EINVAL);
    assert_int_equal(seen->results[results + 2].rc, KF_ENOTFOUND);
    assert_int_equal(seen->results[results + 3].rc, 0);
    int64_t stored_id = seen->results[results + 3].message.id;
    seen_t *check = seen_new();
    assert_int_equal(query_all(f, check, v->id, 10), 0);
    assert_int_equal(check->message_count, 1);
    assert_int_equal(check->messages[0].id, stored_id);
    seen_free(check);
    seen_free(seen);
    assert_true(suite_add_message(f, conversation_b, 0, "after") > stored_id);
}

/* Two visitors with interleaved messages: A in two conversations, B in one. The ids of each
 * visitor's messages, oldest first, go into a_ids (6) and b_ids (4). */
static void build_two_visitors(suite_fixture_t *f, int64_t *visitor_a, int64_t *visitor_b,
                               int64_t a_ids[6], int64_t b_ids[4], int64_t *first_a_conversation)
{
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    *visitor_a = suite_add_visitor(f, "token-a", "A");
    *visitor_b = suite_add_visitor(f, "token-b", "B");
    int64_t a1 = suite_open_conversation(f, *visitor_a, "a: one", SUITE_NOW, &a_ids[0]);
    int64_t b1 = suite_open_conversation(f, *visitor_b, "b: one", SUITE_NOW, &b_ids[0]);
    *first_a_conversation = a1;
    a_ids[1] = suite_add_message(f, a1, agent, "a: two");
    a_ids[2] = suite_add_message(f, a1, 0, "a: three");
    b_ids[1] = suite_add_message(f, b1, agent, "b: two");
    assert_int_equal(suite_set_status(f, a1, "resolved"), 0);
    int64_t a2 = suite_open_conversation(f, *visitor_a, "a: four", SUITE_NOW, &a_ids[3]);
    assert_int_equal(a2, a1); /* reopened: one thread per visitor */
    b_ids[2] = suite_add_message(f, b1, 0, "b: three");
    a_ids[4] = suite_add_message(f, a2, agent, "a: five");
    b_ids[3] = suite_add_message(f, b1, 0, "b: four");
    a_ids[5] = suite_add_message(f, a2, 0, "a: six");
}

static void test_message_queries(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor_a, visitor_b, a_ids[6], b_ids[4], a1;
    build_two_visitors(f, &visitor_a, &visitor_b, a_ids, b_ids, &a1);

    /* One conversation. */
    seen_t *seen = seen_new();
    assert_int_equal(query_conversation(f, seen, a1, 0, 100), 0);
    assert_ids(seen, a_ids, 6);
    assert_int_equal(last_result(seen)->count, 6);
    assert_string_equal(seen->messages[0].body, "a: one");
    assert_string_equal(seen->messages[1].agent_name, "Ana");
    assert_int_equal(seen->messages[1].sender, KF_SENDER_AGENT);
    for (size_t i = 0; i < seen->message_count; i++)
        assert_int_equal(seen->messages[i].visitor_id, visitor_a);
    seen_free(seen);
    /* after_id is exclusive; limit caps the page; paging resumes after the last id. */
    seen = seen_new();
    assert_int_equal(query_conversation(f, seen, a1, a_ids[0], 1), 0);
    assert_int_equal(query_conversation(f, seen, a1, a_ids[1], 1), 0);
    assert_ids(seen, &a_ids[1], 2);
    seen_free(seen);
    seen = seen_new();
    assert_int_equal(query_conversation(f, seen, a1, a_ids[5], 100), 0);
    assert_int_equal(query_conversation(f, seen, a1 + 100, 0, 100), 0);
    assert_int_equal(query_conversation(f, seen, a1, 0, 0), 0);
    assert_int_equal(seen->message_count, 0);
    assert_int_equal(last_result(seen)->count, 0);
    seen_free(seen);

    /* One visitor: all of A's, oldest first, and none of B's. (A visitor with several
     * conversations, from before schema 4, is test_sqlite_migrates_to_the_desk's.) */
    seen = seen_new();
    assert_int_equal(query_visitor(f, seen, visitor_a, 0, 100), 0);
    assert_ids(seen, a_ids, 6);
    seen_free(seen);
    seen = seen_new();
    assert_int_equal(query_visitor(f, seen, visitor_b, 0, 100), 0);
    assert_ids(seen, b_ids, 4);
    seen_free(seen);
    /* Paging two at a time from a cursor that is B's id still yields only A's messages. */
    seen = seen_new();
    int64_t cursor = b_ids[0];
    for (int page = 0; page < 4; page++) {
        assert_int_equal(query_visitor(f, seen, visitor_a, cursor, 2), 0);
        if (seen->message_count > 0)
            cursor = seen->messages[seen->message_count - 1].id;
    }
    assert_ids(seen, &a_ids[1], 5);
    assert_int_equal(query_visitor(f, seen, visitor_a + 100, 0, 100), 0);
    assert_int_equal(seen->message_count, 5);
    seen_free(seen);

    /* Everything, in id order across visitors. */
    seen = seen_new();
    assert_int_equal(query_all(f, seen, 0, 100), 0);
    assert_int_equal(seen->message_count, 10);
    assert_int_equal(seen->messages[0].id, a_ids[0]);
    assert_int_equal(seen->messages[1].id, b_ids[0]);
    assert_int_equal(seen->messages[1].visitor_id, visitor_b);
    assert_int_equal(seen->messages[9].id, a_ids[5]);
    seen_free(seen);
    seen = seen_new();
    assert_int_equal(query_all(f, seen, b_ids[0], 3), 0);
    int64_t expected[] = {a_ids[1], a_ids[2], b_ids[1]};
    assert_ids(seen, expected, 3);
    assert_int_equal(query_all(f, seen, a_ids[5], 100), 0);
    assert_int_equal(seen->message_count, 3);
    seen_free(seen);
}

/* A non-zero return from each stops the query; done gets it as rc, and count includes the row. */
static void test_each_stops_early(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor_a, visitor_b, a_ids[6], b_ids[4], a1;
    build_two_visitors(f, &visitor_a, &visitor_b, a_ids, b_ids, &a1);

    seen_t *seen = seen_new();
    seen->stop_at = 2;
    seen->stop_value = 7;
    assert_int_equal(query_all(f, seen, 0, 100), 7);
    assert_int_equal(seen->message_count, 2);
    assert_int_equal(last_result(seen)->count, 2);
    seen_free(seen);
    seen = seen_new();
    seen->stop_at = 3;
    seen->stop_value = KF_ELIMIT;
    assert_int_equal(query_visitor(f, seen, visitor_a, 0, 100), KF_ELIMIT);
    assert_int_equal(seen->message_count, 3);
    seen_free(seen);
    seen = seen_new();
    seen->stop_at = 1;
    seen->stop_value = 3;
    assert_int_equal(query_conversation(f, seen, a1, 0, 100), 3);
    assert_int_equal(seen->message_count, 1);
    seen_free(seen);
    seen = seen_new();
    seen->stop_at = 1;
    seen->stop_value = 3;
    kf_conversation_page_t page = {.limit = 100};
    assert_int_equal(list_page(f, seen, &page), 3);
    assert_int_equal(seen->conversation_count, 1);
    seen_free(seen);

    /* The store is usable after a query stopped halfway. */
    seen = seen_new();
    assert_int_equal(query_all(f, seen, 0, 100), 0);
    assert_int_equal(seen->message_count, 10);
    seen_free(seen);
}

static void test_unread_and_mark_read(void **state)
{
    suite_fixture_t *f = *state;
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t v1 = 0;
    int64_t conversation = suite_open_conversation(f, visitor, "v1", SUITE_NOW, &v1);
    int64_t v2 = suite_add_message(f, conversation, 0, "v2");
    int64_t g1 = suite_add_message(f, conversation, agent, "g1");
    int64_t v3 = suite_add_message(f, conversation, 0, "v3");

    seen_t *seen = suite_get_conversation(f, conversation);
    const kf_conversation_t *c = &last_result(seen)->conversation;
    assert_int_equal(c->unread_for_agents, 3);
    assert_int_equal(c->unread_for_visitor, 1);
    assert_int_equal(c->agent_read_up_to, 0);
    assert_int_equal(c->visitor_read_up_to, 0);
    seen_free(seen);

    assert_int_equal(mark_read(f, conversation, KF_SENDER_AGENT, v2), 0);
    assert_int_equal(mark_read(f, conversation, KF_SENDER_AGENT, v1), 0); /* never lowered */
    seen = suite_get_conversation(f, conversation);
    c = &last_result(seen)->conversation;
    assert_int_equal(c->agent_read_up_to, v2);
    assert_int_equal(c->unread_for_agents, 1);
    assert_int_equal(c->unread_for_visitor, 1);
    seen_free(seen);

    assert_int_equal(mark_read(f, conversation, KF_SENDER_VISITOR, g1), 0);
    assert_int_equal(mark_read(f, conversation, KF_SENDER_AGENT, v3), 0);
    seen = suite_get_conversation(f, conversation);
    c = &last_result(seen)->conversation;
    assert_int_equal(c->visitor_read_up_to, g1);
    assert_int_equal(c->unread_for_visitor, 0);
    assert_int_equal(c->agent_read_up_to, v3);
    assert_int_equal(c->unread_for_agents, 0);
    seen_free(seen);

    /* A mark past the newest message stops at it, so later messages still count as unread. */
    assert_int_equal(mark_read(f, conversation, KF_SENDER_AGENT, v3 + 1000), 0);
    int64_t v4 = suite_add_message(f, conversation, 0, "v4");
    assert_true(v4 <= v3 + 1000);
    seen = suite_get_conversation(f, conversation);
    assert_int_equal(last_result(seen)->conversation.agent_read_up_to, v3);
    assert_int_equal(last_result(seen)->conversation.unread_for_agents, 1);
    seen_free(seen);
    assert_int_equal(mark_read(f, conversation + 100, KF_SENDER_AGENT, 1), KF_ENOTFOUND);
}

static void test_conversation_list(void **state)
{
    suite_fixture_t *f = *state;
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor_a = suite_add_visitor(f, "token-a", "A");
    int64_t visitor_b = suite_add_visitor(f, "token-b", "B");
    int64_t visitor_c = suite_add_visitor(f, "token-c", "");
    int64_t a = suite_open_conversation(f, visitor_a, "a: first", SUITE_NOW + 10, NULL);
    int64_t b = suite_open_conversation(f, visitor_b, "b: first", SUITE_NOW, NULL);
    int64_t c = suite_open_conversation(f, visitor_c, "c: first", SUITE_NOW, NULL);
    int64_t b_last = suite_add_message_at(f, b, agent, "b: from Ana", SUITE_NOW + 20);
    int64_t a_last = suite_add_message_at(f, a, 0, "a: latest", SUITE_NOW + 30);

    seen_t *seen = seen_new();
    kf_conversation_page_t page = {.limit = 100};
    assert_int_equal(list_page(f, seen, &page), 0);
    assert_int_equal(seen->conversation_count, 3);
    assert_int_equal(last_result(seen)->count, 3);
    const kf_conversation_t *first = &seen->conversations[0];
    assert_int_equal(first->id, a);
    assert_int_equal(first->updated_at, SUITE_NOW + 30);
    assert_string_equal(first->visitor_name, "A");
    assert_int_equal(first->last_message.id, a_last);
    assert_string_equal(first->last_message.body, "a: latest");
    assert_int_equal(first->last_message.visitor_id, visitor_a);
    assert_int_equal(first->unread_for_agents, 2);
    const kf_conversation_t *second = &seen->conversations[1];
    assert_int_equal(second->id, b);
    assert_int_equal(second->last_message.id, b_last);
    assert_int_equal(second->last_message.sender, KF_SENDER_AGENT);
    assert_int_equal(second->last_message.agent_id, agent);
    assert_string_equal(second->last_message.agent_name, "Ana");
    assert_int_equal(second->unread_for_visitor, 1);
    assert_int_equal(seen->conversations[2].id, c);
    assert_string_equal(seen->conversations[2].visitor_name, "");
    seen_free(seen);

    /* The order is the newest message's id: what was stored last, whatever time it was given
     * (a clock set back does not bury a conversation). A new message moves a conversation to
     * the top. */
    int64_t visitor_d = suite_add_visitor(f, "token-d", "D");
    int64_t d = suite_open_conversation(f, visitor_d, "d", SUITE_NOW, NULL);
    seen = seen_new();
    assert_int_equal(list_page(f, seen, &page), 0);
    assert_int_equal(seen->conversation_count, 4);
    assert_int_equal(seen->conversations[0].id, d);
    assert_int_equal(seen->conversations[3].id, c);
    seen_free(seen);
    suite_add_message_at(f, c, 0, "c: hello", SUITE_NOW + 40);
    seen = seen_new();
    page.limit = 2;
    assert_int_equal(list_page(f, seen, &page), 0);
    assert_int_equal(seen->conversation_count, 2);
    assert_int_equal(seen->conversations[0].id, c);
    assert_int_equal(seen->conversations[1].id, d);
    page.limit = 0;
    assert_int_equal(list_page(f, seen, &page), 0);
    assert_int_equal(seen->conversation_count, 2);
    seen_free(seen);
}

/* A done callback for writes that must succeed: counts them in *(int *)ctx, or keeps the new
 * row's id in *(int64_t *)ctx (visitor_create). */
static void count_stored_cb(void *ctx, const kf_store_result_t *result)
{
    assert_int_equal(result->rc, 0);
    if (result->message != NULL)
        (*(int *)ctx)++;
    else
        *(int64_t *)ctx = result->id;
}

/* Keyset paging reaches every conversation, however many and however many share an updated_at:
 * none is past reach (the API's first page holds 200). */
static void test_conversation_pages(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    enum { CONVERSATIONS = 250, PAGE = 40 };
    int64_t visitors[CONVERSATIONS];
    for (int i = 0; i < CONVERSATIONS; i++) {
        char token[32];
        snprintf(token, sizeof token, "token-%d", i);
        assert_int_equal(
            ops->visitor_create(f->store, token, "", SUITE_NOW, count_stored_cb, &visitors[i]), 0);
    }
    suite_flush(f);
    int sent = 0;
    for (int i = 0; i < CONVERSATIONS; i++) {
        /* Three conversations to each updated_at. */
        kf_message_new_t m = {.visitor_id = visitors[i], .body = "hi", .now = SUITE_NOW + i / 3};
        assert_int_equal(ops->message_add(f->store, &m, count_stored_cb, &sent), 0);
    }
    suite_flush(f);
    assert_int_equal(sent, CONVERSATIONS);

    seen_t *seen = seen_new();
    kf_conversation_page_t page = {.limit = PAGE};
    int pages = 0;
    for (;;) {
        size_t before = seen->conversation_count;
        assert_int_equal(list_page(f, seen, &page), 0);
        pages++;
        if (seen->conversation_count == before)
            break;
        const kf_conversation_t *last = &seen->conversations[seen->conversation_count - 1];
        page.before_last_message_id = last->has_last_message ? last->last_message.id : 0;
        page.before_id = last->id;
    }
    assert_int_equal(pages, (CONVERSATIONS + PAGE - 1) / PAGE + 1);
    assert_int_equal(seen->conversation_count, CONVERSATIONS);
    for (size_t i = 1; i < seen->conversation_count; i++) {
        const kf_conversation_t *prev = &seen->conversations[i - 1], *c = &seen->conversations[i];
        /* Most recently active first: the newest message's id, which orders as their times
         * (updated_at) do, ties of which it breaks. */
        assert_true(prev->last_message.id > c->last_message.id);
        assert_true(prev->updated_at >= c->updated_at);
    }
    seen_free(seen);
}

/* conversation_set_status, snoozed until until, waited for: its result code. */
static int snooze(suite_fixture_t *f, int64_t conversation_id, int64_t until)
{
    seen_t *seen = seen_new();
    int rc = suite_wait(f,
                        f->store->ops->conversation_set_status(f->store, conversation_id, "snoozed",
                                                               until, SUITE_NOW, on_done, seen),
                        seen);
    seen_free(seen);
    return rc;
}

static void test_set_status(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW + 10, NULL);

    static const char *const statuses[] = {"resolved", "resolved", "pending", "open"};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        assert_int_equal(suite_set_status(f, conversation, statuses[i]), 0);
        seen_t *seen = suite_get_conversation(f, conversation);
        assert_string_equal(last_result(seen)->conversation.status, statuses[i]);
        assert_int_equal(last_result(seen)->conversation.snoozed_until, 0);
        assert_int_equal(last_result(seen)->conversation.updated_at, SUITE_NOW + 10);
        seen_free(seen);
    }
    /* A snooze has its end; another status clears it. */
    assert_int_equal(snooze(f, conversation, SUITE_NOW + SUITE_HOUR), 0);
    seen_t *seen = suite_get_conversation(f, conversation);
    assert_string_equal(last_result(seen)->conversation.status, "snoozed");
    assert_int_equal(last_result(seen)->conversation.snoozed_until, SUITE_NOW + SUITE_HOUR);
    seen_free(seen);
    assert_int_equal(suite_set_status(f, conversation, "pending"), 0);
    seen = suite_get_conversation(f, conversation);
    assert_int_equal(last_result(seen)->conversation.snoozed_until, 0);
    seen_free(seen);
    assert_int_equal(suite_set_status(f, conversation + 100, "resolved"), KF_ENOTFOUND);
}

/* A claim with its result's id (who holds it, on a conflict) in *holder. */
static int claim(suite_fixture_t *f, int64_t conversation_id, int64_t agent_id, int64_t *holder)
{
    seen_t *seen = seen_new();
    int rc = suite_wait(
        f, f->store->ops->conversation_claim(f->store, conversation_id, agent_id, on_done, seen),
        seen);
    if (holder != NULL)
        *holder = last_result(seen)->id;
    seen_free(seen);
    return rc;
}

static int assign(suite_fixture_t *f, int64_t conversation_id, int64_t agent_id)
{
    seen_t *seen = seen_new();
    kf_conversation_assign_t transfer = {
        .conversation_id = conversation_id, .set_agent = true, .agent_id = agent_id};
    int rc =
        suite_wait(f, f->store->ops->conversation_assign(f->store, &transfer, on_done, seen), seen);
    seen_free(seen);
    return rc;
}

/* The conversation's assignee's id, 0 for none. */
static int64_t assignee_of(suite_fixture_t *f, int64_t conversation_id)
{
    seen_t *seen = suite_get_conversation(f, conversation_id);
    int64_t id = last_result(seen)->conversation.assignee.id;
    seen_free(seen);
    return id;
}

/* A claim takes an unassigned conversation that is not resolved, and only that; the one who
 * holds it may claim it again. */
static void test_claim(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t bo = suite_add_agent_as(f, "bo@example.com", "Bo", "admin");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW, NULL);
    assert_int_equal(assignee_of(f, conversation), 0);

    int64_t holder = -1;
    assert_int_equal(claim(f, conversation, ana, &holder), 0);
    seen_t *seen = suite_get_conversation(f, conversation);
    const kf_agent_t *assignee = &last_result(seen)->conversation.assignee;
    assert_int_equal(assignee->id, ana);
    assert_string_equal(assignee->email, "ana@example.com");
    assert_string_equal(assignee->name, "Ana");
    assert_string_equal(assignee->role, "agent");
    assert_string_equal(assignee->password_hash, "");
    seen_free(seen);
    assert_int_equal(claim(f, conversation, ana, NULL), 0);
    assert_int_equal(claim(f, conversation, bo, &holder), KF_ECONFLICT);
    assert_int_equal(holder, ana);
    assert_int_equal(assignee_of(f, conversation), ana);

    /* Resolved: nobody claims it, its holder neither; unassigned, still nobody. */
    assert_int_equal(suite_set_status(f, conversation, "resolved"), 0);
    assert_int_equal(claim(f, conversation, ana, &holder), KF_ECONFLICT);
    assert_int_equal(holder, ana);
    assert_int_equal(assign(f, conversation, 0), 0);
    assert_int_equal(claim(f, conversation, bo, &holder), KF_ECONFLICT);
    assert_int_equal(holder, 0);
    /* Pending or snoozed may be claimed, and the status stays. */
    assert_int_equal(snooze(f, conversation, SUITE_NOW + SUITE_HOUR), 0);
    assert_int_equal(claim(f, conversation, bo, NULL), 0);
    seen = suite_get_conversation(f, conversation);
    assert_string_equal(last_result(seen)->conversation.status, "snoozed");
    assert_int_equal(last_result(seen)->conversation.assignee.id, bo);
    seen_free(seen);

    assert_int_equal(claim(f, conversation + 100, ana, NULL), KF_ENOTFOUND);
    assert_int_equal(claim(f, conversation, ana + bo + 100, NULL), KF_EINVAL);
    kf_agent_change_t off = {.state = KF_AGENT_STATE_DISABLE, .now = SUITE_NOW};
    seen = seen_new();
    assert_int_equal(
        suite_wait(f, f->store->ops->agent_update(f->store, ana, &off, on_done, seen), seen), 0);
    seen_free(seen);
    assert_int_equal(assign(f, conversation, 0), 0);
    assert_int_equal(claim(f, conversation, ana, NULL), KF_EFORBIDDEN);
    assert_int_equal(assignee_of(f, conversation), 0);
}

/* Many claims queued at once, as many agents' requests would be: one wins, in whatever batches
 * the writer makes of them. */
static void test_claim_race(void **state)
{
    suite_fixture_t *f = *state;
    enum { AGENTS = 12 };
    int64_t agents[AGENTS];
    for (int i = 0; i < AGENTS; i++) {
        char email[32];
        snprintf(email, sizeof email, "a%d@example.com", i);
        agents[i] = suite_add_agent(f, email, "A");
    }
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW, NULL);
    seen_t *seen = seen_new();
    for (int i = 0; i < AGENTS; i++)
        assert_int_equal(
            f->store->ops->conversation_claim(f->store, conversation, agents[i], on_done, seen), 0);
    suite_flush(f);
    assert_int_equal(seen->result_count, AGENTS);
    int won = 0;
    int64_t winner = 0;
    for (size_t i = 0; i < seen->result_count; i++) {
        if (seen->results[i].rc == 0) {
            won++;
            winner = agents[i];
        } else {
            assert_int_equal(seen->results[i].rc, KF_ECONFLICT);
        }
    }
    assert_int_equal(won, 1);
    for (size_t i = 0; i < seen->result_count; i++) {
        if (seen->results[i].rc != 0)
            assert_int_equal(seen->results[i].id, winner);
    }
    seen_free(seen);
    assert_int_equal(assignee_of(f, conversation), winner);
}

static void test_assign(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t bo = suite_add_agent_as(f, "bo@example.com", "Bo", "admin");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW, NULL);
    assert_int_equal(assign(f, conversation, ana), 0);
    assert_int_equal(assignee_of(f, conversation), ana);
    assert_int_equal(assign(f, conversation, bo), 0); /* a transfer */
    assert_int_equal(assignee_of(f, conversation), bo);
    assert_int_equal(suite_set_status(f, conversation, "resolved"), 0);
    assert_int_equal(assign(f, conversation, ana), 0); /* whatever its status */
    assert_int_equal(assign(f, conversation, 0), 0);
    assert_int_equal(assignee_of(f, conversation), 0);
    assert_int_equal(assign(f, conversation + 100, ana), KF_ENOTFOUND);
    assert_int_equal(assign(f, conversation, ana + bo + 100), KF_EINVAL);
    kf_agent_change_t off = {.state = KF_AGENT_STATE_DISABLE, .now = SUITE_NOW};
    seen_t *seen = seen_new();
    assert_int_equal(
        suite_wait(f, f->store->ops->agent_update(f->store, ana, &off, on_done, seen), seen), 0);
    seen_free(seen);
    assert_int_equal(assign(f, conversation, ana), KF_EFORBIDDEN);
    assert_int_equal(assignee_of(f, conversation), 0);
}

/* A transfer with a note: one write. Done, the conversation has moved and the note is a private
 * message by the transferring agent; refused, neither happened. */
static void test_assign_with_note(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t bo = suite_add_agent_as(f, "bo@example.com", "Bo", "admin");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW, NULL);
    size_t before = suite_message_count(f);
    seen_t *seen = seen_new();
    kf_conversation_assign_t a = {.conversation_id = conversation,
                                  .set_agent = true,
                                  .agent_id = bo,
                                  .by_agent_id = ana,
                                  .note = "refund over 100: yours",
                                  .now = SUITE_NOW + 5};
    assert_int_equal(
        suite_wait(f, f->store->ops->conversation_assign(f->store, &a, on_done, seen), seen), 0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->has_message);
    assert_true(r->message.is_private);
    assert_int_equal(r->message.agent_id, ana);
    assert_string_equal(r->message.agent_name, "Ana");
    assert_int_equal(r->message.visitor_id, visitor);
    assert_int_equal(r->message.created_at, SUITE_NOW + 5);
    int64_t note = r->message.id;
    seen_free(seen);
    assert_int_equal(assignee_of(f, conversation), bo);
    assert_int_equal(suite_message_count(f), before + 1);
    seen = suite_get_conversation(f, conversation);
    assert_int_equal(last_result(seen)->conversation.last_message.id, note);
    assert_true(last_result(seen)->conversation.last_message.is_private);
    seen_free(seen);
    seen = seen_new();
    assert_int_equal(suite_wait(f,
                                f->store->ops->messages_of_visitor(f->store, visitor, 0, 100,
                                                                   on_message, on_done, seen),
                                seen),
                     0);
    assert_int_equal(seen->message_count, 1); /* the visitor's hello only */
    seen_free(seen);

    /* Refused: to a disabled agent, by an unknown one, in an unknown conversation. Nothing
     * moved, no note. */
    kf_agent_change_t off = {.state = KF_AGENT_STATE_DISABLE, .now = SUITE_NOW};
    seen = seen_new();
    assert_int_equal(
        suite_wait(f, f->store->ops->agent_update(f->store, ana, &off, on_done, seen), seen), 0);
    a = (kf_conversation_assign_t){.conversation_id = conversation,
                                   .set_agent = true,
                                   .agent_id = ana,
                                   .by_agent_id = bo,
                                   .note = "back"};
    assert_int_equal(
        suite_wait(f, f->store->ops->conversation_assign(f->store, &a, on_done, seen), seen),
        KF_EFORBIDDEN);
    a.agent_id = 0;
    a.by_agent_id = ana + bo + 100;
    assert_int_equal(
        suite_wait(f, f->store->ops->conversation_assign(f->store, &a, on_done, seen), seen),
        KF_EINVAL);
    a.by_agent_id = bo;
    a.conversation_id = conversation + 100;
    assert_int_equal(
        suite_wait(f, f->store->ops->conversation_assign(f->store, &a, on_done, seen), seen),
        KF_ENOTFOUND);
    seen_free(seen);
    assert_int_equal(assignee_of(f, conversation), bo);
    assert_int_equal(suite_message_count(f), before + 1);
}

/* snooze_due: the id of the conversation whose snooze ends first, if it has ended by now. */
static int snooze_due(suite_fixture_t *f, int64_t now, int64_t *id)
{
    seen_t *seen = seen_new();
    int rc =
        suite_wait(f, f->store->ops->conversation_snooze_due(f->store, now, on_done, seen), seen);
    *id = last_result(seen)->id;
    seen_free(seen);
    return rc;
}

static int wake(suite_fixture_t *f, int64_t conversation_id, int64_t now)
{
    seen_t *seen = seen_new();
    int rc = suite_wait(
        f, f->store->ops->conversation_wake(f->store, conversation_id, now, on_done, seen), seen);
    seen_free(seen);
    return rc;
}

/* Snoozes end: the earliest due one is found, and woken only while it is still snoozed and
 * due. */
static void test_snooze_wake(void **state)
{
    suite_fixture_t *f = *state;
    int64_t later =
        suite_open_conversation(f, suite_add_visitor(f, "t1", ""), "a", SUITE_NOW, NULL);
    int64_t sooner =
        suite_open_conversation(f, suite_add_visitor(f, "t2", ""), "b", SUITE_NOW, NULL);
    int64_t other =
        suite_open_conversation(f, suite_add_visitor(f, "t3", ""), "c", SUITE_NOW, NULL);
    assert_int_equal(snooze(f, later, SUITE_NOW + 10), 0);
    assert_int_equal(snooze(f, sooner, SUITE_NOW + 5), 0);
    assert_int_equal(suite_set_status(f, other, "resolved"), 0);
    int64_t id = 0;
    assert_int_equal(snooze_due(f, SUITE_NOW + 4, &id), KF_ENOTFOUND);
    assert_int_equal(snooze_due(f, SUITE_NOW + 5, &id), 0);
    assert_int_equal(id, sooner);
    assert_int_equal(snooze_due(f, SUITE_NOW + 20, &id), 0);
    assert_int_equal(id, sooner);                                   /* the earliest first */
    assert_int_equal(wake(f, sooner, SUITE_NOW + 4), KF_ECONFLICT); /* not yet */
    assert_int_equal(wake(f, sooner, SUITE_NOW + 5), 0);
    seen_t *seen = suite_get_conversation(f, sooner);
    assert_string_equal(last_result(seen)->conversation.status, "open");
    assert_int_equal(last_result(seen)->conversation.snoozed_until, 0);
    seen_free(seen);
    assert_int_equal(wake(f, sooner, SUITE_NOW + 20), KF_ECONFLICT); /* woken already */
    assert_int_equal(snooze_due(f, SUITE_NOW + 20, &id), 0);
    assert_int_equal(id, later);
    /* Changed by an agent since: no longer snoozed, not woken. */
    assert_int_equal(suite_set_status(f, later, "pending"), 0);
    assert_int_equal(wake(f, later, SUITE_NOW + 20), KF_ECONFLICT);
    assert_int_equal(snooze_due(f, SUITE_NOW + 20, &id), KF_ENOTFOUND);
    assert_int_equal(wake(f, other, SUITE_NOW + 20), KF_ECONFLICT);
    assert_int_equal(wake(f, other + 100, SUITE_NOW + 20), KF_ENOTFOUND);
}

/* Every view lists what it says, in the list's order, in pages; and the counts agree. */
static void test_views(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    /* Ten conversations, the later the newer; their status and holder by index. */
    enum { N = 10 };
    static const char *const status[N] = {"open",    "open",     "open",     "pending", "pending",
                                          "snoozed", "resolved", "resolved", "open",    "open"};
    static const int holder[N] = {0, 1, 2, 1, 0, 1, 1, 0, 0, 1}; /* 0 nobody, 1 Ana, 2 Bo */
    int64_t ids[N];
    for (int i = 0; i < N; i++) {
        char token[16];
        snprintf(token, sizeof token, "t%d", i);
        int64_t visitor = suite_add_visitor(f, token, "");
        ids[i] = suite_open_conversation(f, visitor, "hi", SUITE_NOW + i, NULL);
        if (holder[i] != 0)
            assert_int_equal(assign(f, ids[i], holder[i] == 1 ? ana : bo), 0);
        if (strcmp(status[i], "snoozed") == 0)
            assert_int_equal(snooze(f, ids[i], SUITE_NOW + SUITE_HOUR), 0);
        else if (strcmp(status[i], "open") != 0)
            assert_int_equal(suite_set_status(f, ids[i], status[i]), 0);
    }
    static const struct {
        kf_conversation_view_t view;
        int64_t agent;     /* 1 Ana, 2 Bo */
        int expect[N + 1]; /* indexes into ids, newest first, -1 ends */
    } cases[] = {
        {KF_VIEW_ALL, 1, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, -1}},
        {KF_VIEW_UNASSIGNED, 1, {8, 0, -1}},
        {KF_VIEW_MINE, 1, {9, 5, 3, 1, -1}},
        {KF_VIEW_MINE, 2, {2, -1}},
        {KF_VIEW_OPEN, 1, {9, 8, 2, 1, 0, -1}},
        {KF_VIEW_PENDING, 1, {4, 3, -1}},
        {KF_VIEW_RESOLVED, 1, {7, 6, -1}},
        {KF_VIEW_SNOOZED, 1, {5, -1}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        /* In pages of two, to cross page boundaries in every view. */
        seen_t *seen = seen_new();
        kf_conversation_page_t page = {
            .limit = 2, .view = cases[k].view, .agent_id = cases[k].agent == 1 ? ana : bo};
        for (;;) {
            size_t before = seen->conversation_count;
            assert_int_equal(list_page(f, seen, &page), 0);
            if (seen->conversation_count == before)
                break;
            const kf_conversation_t *last = &seen->conversations[seen->conversation_count - 1];
            page.before_last_message_id = last->has_last_message ? last->last_message.id : 0;
            page.before_id = last->id;
        }
        size_t expected = 0;
        while (cases[k].expect[expected] >= 0)
            expected++;
        assert_int_equal(seen->conversation_count, expected);
        for (size_t i = 0; i < expected; i++)
            assert_int_equal(seen->conversations[i].id, ids[cases[k].expect[i]]);
        seen_free(seen);
    }
    /* The counts: every view's at once, mine for the agent asked about. */
    int64_t counts[KF_VIEW_COUNT];
    seen_t *seen = seen_new();
    assert_int_equal(suite_wait(f, ops->conversation_counts(f->store, ana, on_done, seen), seen),
                     0);
    memcpy(counts, last_result(seen)->counts, sizeof counts);
    seen_free(seen);
    static const int64_t expected_counts[KF_VIEW_COUNT] = {
        [KF_VIEW_ALL] = 10,    [KF_VIEW_UNASSIGNED] = 2, [KF_VIEW_MINE] = 4,    [KF_VIEW_OPEN] = 5,
        [KF_VIEW_PENDING] = 2, [KF_VIEW_RESOLVED] = 2,   [KF_VIEW_SNOOZED] = 1,
    };
    assert_memory_equal(counts, expected_counts, sizeof counts);
    seen = seen_new();
    assert_int_equal(suite_wait(f, ops->conversation_counts(f->store, bo, on_done, seen), seen), 0);
    assert_int_equal(last_result(seen)->counts[KF_VIEW_MINE], 1);
    seen_free(seen);
}

static void test_durability(void **state)
{
    suite_fixture_t *f = *state;
    seen_t *seen = seen_new();
    assert_int_equal(
        suite_wait(f, f->store->ops->setting_set(f->store, "secret", "s3cr3t", on_done, seen),
                   seen),
        0);
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t first = 0;
    int64_t conversation = suite_open_conversation(f, visitor, "before restart", SUITE_NOW, &first);
    int64_t second = suite_add_message(f, conversation, agent, "answer");
    assert_int_equal(mark_read(f, conversation, KF_SENDER_AGENT, first), 0);

    suite_reopen(f);
    const kf_store_ops_t *ops = f->store->ops;
    assert_int_equal(suite_wait(f, ops->setting_get(f->store, "secret", on_done, seen), seen), 0);
    assert_string_equal(last_result(seen)->value, "s3cr3t");
    assert_int_equal(suite_wait(f, ops->agent_count(f->store, on_done, seen), seen), 0);
    assert_int_equal(last_result(seen)->count, 1);
    assert_int_equal(suite_wait(f, ops->visitor_by_token(f->store, "token-a", on_done, seen), seen),
                     0);
    assert_int_equal(last_result(seen)->visitor.id, visitor);
    assert_int_equal(suite_open_conversation(f, visitor, "after restart", SUITE_NOW, NULL),
                     conversation);
    assert_int_equal(query_visitor(f, seen, visitor, 0, 100), 0);
    assert_int_equal(seen->message_count, 3);
    assert_string_equal(seen->messages[0].body, "before restart");
    assert_string_equal(seen->messages[1].agent_name, "Ana");
    assert_true(seen->messages[2].id > second); /* ids keep increasing across a restart */
    seen_free(seen);
    seen = suite_get_conversation(f, conversation);
    assert_int_equal(last_result(seen)->conversation.agent_read_up_to, first);
    seen_free(seen);
}

static void test_hostile_strings(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    static const char *const hostile[] = {
        "x'); DROP TABLE messages;--",
        "\"; DELETE FROM agents; --",
        "' OR '1'='1",
        "%s%n%x ?1 :name @p $1",
        "Robert'); DROP TABLE visitors;-- \\ \\' \\\"",
        "<script>alert(1)</script>",
    };
    size_t count = sizeof(hostile) / sizeof(hostile[0]);
    seen_t *seen = seen_new();
    for (size_t i = 0; i < count; i++) {
        char email[32], token[32];
        snprintf(email, sizeof(email), "%zu@example.com", i);
        snprintf(token, sizeof(token), "token-%zu", i);
        assert_int_equal(
            suite_wait(f, ops->setting_set(f->store, hostile[i], hostile[i], on_done, seen), seen),
            0);
        assert_int_equal(suite_wait(f, ops->setting_get(f->store, hostile[i], on_done, seen), seen),
                         0);
        assert_string_equal(last_result(seen)->value, hostile[i]);
        int64_t agent = suite_add_agent(f, email, hostile[i]);
        int64_t visitor = suite_add_visitor(f, token, hostile[i]);
        kf_message_new_t m = {.visitor_id = visitor,
                              .body = hostile[i],
                              .now = SUITE_NOW,
                              .idempotency_key = hostile[i]};
        assert_int_equal(suite_send(f, seen, &m), 0);
        int64_t conversation = last_result(seen)->message.conversation_id;
        suite_add_message(f, conversation, agent, hostile[i]);
        seen_t *rows = seen_new();
        assert_int_equal(query_conversation(f, rows, conversation, 0, 10), 0);
        assert_int_equal(rows->message_count, 2);
        assert_string_equal(rows->messages[0].body, hostile[i]);
        assert_string_equal(rows->messages[1].agent_name, hostile[i]);
        seen_free(rows);
        rows = suite_get_conversation(f, conversation);
        assert_string_equal(last_result(rows)->conversation.visitor_name, hostile[i]);
        seen_free(rows);
        /* Hostile lookup keys find nothing rather than everything. */
        assert_int_equal(
            suite_wait(f, ops->visitor_by_token(f->store, hostile[i], on_done, seen), seen),
            KF_ENOTFOUND);
        assert_int_equal(
            suite_wait(f, ops->session_get(f->store, hostile[i], SUITE_NOW, on_done, seen), seen),
            KF_ENOTFOUND);
    }
    assert_int_equal(suite_message_count(f), 2 * count);
    assert_int_equal(suite_wait(f, ops->agent_count(f->store, on_done, seen), seen), 0);
    assert_int_equal(last_result(seen)->count, (int64_t)count);
    seen_free(seen);
}

static void test_long_utf8_body(void **state)
{
    suite_fixture_t *f = *state;
    /* 4000 code points of 1, 2, 3 and 4 bytes: "a", "é", "中", "😀" (U+1F600) in turn. */
    static const char *const glyphs[] = {"a", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80"};
    char *body = malloc(4000 * 4 + 1);
    assert_non_null(body);
    size_t len = 0;
    for (int i = 0; i < 4000; i++) {
        size_t glyph_len = strlen(glyphs[i % 4]);
        memcpy(body + len, glyphs[i % 4], glyph_len);
        len += glyph_len;
    }
    body[len] = '\0';
    assert_int_equal(len, 1000 * (1 + 2 + 3 + 4));

    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t id = 0;
    int64_t conversation = suite_open_conversation(f, visitor, body, SUITE_NOW, &id);
    suite_reopen(f);
    seen_t *seen = seen_new();
    assert_int_equal(query_visitor(f, seen, visitor, 0, 10), 0);
    assert_int_equal(seen->message_count, 1);
    assert_int_equal(seen->messages[0].id, id);
    assert_memory_equal(seen->messages[0].body, body, len + 1);
    seen_free(seen);
    seen = suite_get_conversation(f, conversation);
    assert_string_equal(last_result(seen)->conversation.last_message.body, body);
    seen_free(seen);
    free(body);
}

/* Adds a private note by agent_id to the conversation; its id. */
static int64_t add_note(suite_fixture_t *f, int64_t conversation_id, int64_t agent_id,
                        const char *body)
{
    kf_message_new_t m = {.conversation_id = conversation_id,
                          .sender = KF_SENDER_AGENT,
                          .agent_id = agent_id,
                          .body = body,
                          .now = SUITE_NOW,
                          .is_private = true};
    seen_t *seen = seen_new();
    assert_int_equal(suite_send(f, seen, &m), 0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->message.is_private);
    assert_false(r->conversation_reopened);
    int64_t id = r->message.id;
    seen_free(seen);
    return id;
}

/* Private notes: the agents' reads yield them, flagged; the visitor's read never does, from any
 * cursor (one on a note's id included); the visitor's unread count does not count them, and a
 * note reopens nothing. */
/* Since when the visitor waits: their first message after the last reply; a note is no reply;
 * a reply ends the wait; a resolved conversation has nobody waiting. */
static int64_t waiting_since(suite_fixture_t *f, int64_t conversation_id)
{
    seen_t *seen = suite_get_conversation(f, conversation_id);
    int64_t since = last_result(seen)->conversation.waiting_since;
    seen_free(seen);
    return since;
}

static void test_waiting_since(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW + 10, NULL);
    assert_int_equal(waiting_since(f, conversation), SUITE_NOW + 10);
    suite_add_message_at(f, conversation, 0, "anyone?", SUITE_NOW + 20);
    assert_int_equal(waiting_since(f, conversation), SUITE_NOW + 10);
    add_note(f, conversation, ana, "who takes this one?");
    assert_int_equal(waiting_since(f, conversation), SUITE_NOW + 10);
    suite_add_message_at(f, conversation, ana, "hi, I'm here", SUITE_NOW + 30);
    assert_int_equal(waiting_since(f, conversation), 0);
    suite_add_message_at(f, conversation, 0, "my order is late", SUITE_NOW + 40);
    suite_add_message_at(f, conversation, 0, "order 1234", SUITE_NOW + 50);
    assert_int_equal(waiting_since(f, conversation), SUITE_NOW + 40);
    assert_int_equal(suite_set_status(f, conversation, "pending"), 0);
    assert_int_equal(waiting_since(f, conversation), 0);
    assert_int_equal(suite_set_status(f, conversation, "open"), 0);
    assert_int_equal(waiting_since(f, conversation), SUITE_NOW + 40);
    assert_int_equal(suite_set_status(f, conversation, "resolved"), 0);
    assert_int_equal(waiting_since(f, conversation), 0);
}

/* An agent's message addressed by visitor (an invitation, chat/invite_api.c) opens the visitor's
 * conversation when they have none, and reopens their last one when it was resolved: the
 * invitation is an agent message of it, in the visitor's history. */
static void test_invitation(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    kf_message_new_t invitation = {.visitor_id = visitor,
                                   .sender = KF_SENDER_AGENT,
                                   .agent_id = ana,
                                   .body = "Can I help?",
                                   .now = SUITE_NOW};
    seen_t *seen = seen_new();
    assert_int_equal(suite_send(f, seen, &invitation), 0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->conversation_opened);
    assert_false(r->conversation_reopened);
    int64_t conversation = r->message.conversation_id;
    assert_true(conversation > 0);
    assert_int_equal(r->message.visitor_id, visitor);
    assert_int_equal(r->message.sender, KF_SENDER_AGENT);
    assert_int_equal(r->message.agent_id, ana);
    seen_free(seen);

    assert_int_equal(suite_set_status(f, conversation, "resolved"), 0);
    invitation.body = "Anything else?";
    invitation.now = SUITE_NOW + 10;
    seen = seen_new();
    assert_int_equal(suite_send(f, seen, &invitation), 0);
    r = last_result(seen);
    assert_false(r->conversation_opened);
    assert_true(r->conversation_reopened);
    assert_int_equal(r->message.conversation_id, conversation);
    seen_free(seen);
    seen = suite_get_conversation(f, conversation);
    assert_string_equal(last_result(seen)->conversation.status, "open");
    seen_free(seen);

    /* Both are the visitor's to read; a visitor who is not there is refused. */
    seen = seen_new();
    assert_int_equal(query_visitor(f, seen, visitor, 0, 100), 0);
    assert_int_equal(seen->message_count, 2);
    seen_free(seen);
    invitation.visitor_id = visitor + 100;
    seen = seen_new();
    assert_int_equal(suite_send(f, seen, &invitation), KF_ENOTFOUND);
    seen_free(seen);
}

static void test_private_notes(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t first = 0;
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW, &first);
    int64_t reply = suite_add_message(f, conversation, ana, "hi there");
    int64_t note = add_note(f, conversation, ana, "VIP customer, be nice");
    int64_t second = suite_add_message(f, conversation, ana, "how can I help?");
    int64_t last_note = add_note(f, conversation, ana, "@Bo can you take this?");

    /* The visitor's read, whole and a row at a time from every cursor. */
    int64_t public_ids[] = {first, reply, second};
    seen_t *seen = seen_new();
    assert_int_equal(query_visitor(f, seen, visitor, 0, 100), 0);
    assert_ids(seen, public_ids, 3);
    for (size_t i = 0; i < seen->message_count; i++)
        assert_false(seen->messages[i].is_private);
    seen_free(seen);
    for (int64_t cursor = 0; cursor <= last_note; cursor++) {
        seen = seen_new();
        assert_int_equal(query_visitor(f, seen, visitor, cursor, 1), 0);
        int64_t expected = cursor < first    ? first
                           : cursor < reply  ? reply
                           : cursor < second ? second
                                             : 0;
        if (expected == 0) {
            assert_int_equal(seen->message_count, 0);
        } else {
            assert_int_equal(seen->message_count, 1);
            assert_int_equal(seen->messages[0].id, expected);
        }
        seen_free(seen);
    }

    /* The agents' reads: every message, the notes flagged. */
    int64_t all_ids[] = {first, reply, note, second, last_note};
    seen = seen_new();
    assert_int_equal(query_conversation(f, seen, conversation, 0, 100), 0);
    assert_ids(seen, all_ids, 5);
    assert_false(seen->messages[1].is_private);
    assert_true(seen->messages[2].is_private);
    assert_string_equal(seen->messages[2].agent_name, "Ana");
    assert_true(seen->messages[4].is_private);
    seen_free(seen);
    seen = seen_new();
    assert_int_equal(query_all(f, seen, 0, 100), 0);
    assert_ids(seen, all_ids, 5);
    assert_true(seen->messages[2].is_private);
    seen_free(seen);

    /* The agents' newest message is the note; the visitor has two replies unread, not four. */
    seen = suite_get_conversation(f, conversation);
    const kf_conversation_t *c = &last_result(seen)->conversation;
    assert_true(c->has_last_message);
    assert_int_equal(c->last_message.id, last_note);
    assert_true(c->last_message.is_private);
    assert_int_equal(c->unread_for_visitor, 2);
    assert_int_equal(c->unread_for_agents, 1);
    seen_free(seen);

    /* A note in a resolved conversation leaves it resolved. */
    assert_int_equal(suite_set_status(f, conversation, "resolved"), 0);
    add_note(f, conversation, ana, "closing note");
    seen = suite_get_conversation(f, conversation);
    assert_string_equal(last_result(seen)->conversation.status, "resolved");
    seen_free(seen);

    /* Visitors write no notes; a key used for a reply is not a note's. */
    kf_message_new_t m = {.visitor_id = visitor,
                          .sender = KF_SENDER_VISITOR,
                          .body = "x",
                          .now = SUITE_NOW,
                          .is_private = true};
    seen = seen_new();
    assert_int_equal(f->store->ops->message_add(f->store, &m, on_done, seen), KF_EINVAL);
    m = (kf_message_new_t){.conversation_id = conversation,
                           .sender = KF_SENDER_AGENT,
                           .agent_id = ana,
                           .body = "same",
                           .now = SUITE_NOW,
                           .idempotency_key = "k-note"};
    assert_int_equal(suite_send(f, seen, &m), 0);
    m.is_private = true;
    assert_int_equal(suite_send(f, seen, &m), KF_ECONFLICT);
    seen_free(seen);

    /* Kept across a restart. */
    suite_reopen(f);
    seen = seen_new();
    assert_int_equal(query_visitor(f, seen, visitor, 0, 100), 0);
    assert_int_equal(seen->message_count, 4); /* the three, and the keyed reply */
    for (size_t i = 0; i < seen->message_count; i++)
        assert_false(seen->messages[i].is_private);
    seen_free(seen);
}

/* The newest message's id, where a process's loops start their id order: 0 on an empty store,
 * a note's id when it is the newest, and the same after a restart. */
static void test_message_newest(void **state)
{
    suite_fixture_t *f = *state;
    int64_t newest = -1;
    assert_int_equal(kf_store_sync_message_newest(f->store, &newest), 0);
    assert_int_equal(newest, 0);
    assert_int_equal(f->store->ops->message_newest(f->store, NULL, NULL), KF_EINVAL);
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t first = 0;
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW, &first);
    assert_int_equal(kf_store_sync_message_newest(f->store, &newest), 0);
    assert_int_equal(newest, first);
    suite_add_message(f, conversation, ana, "hi there");
    int64_t note = add_note(f, conversation, ana, "VIP customer");
    assert_int_equal(kf_store_sync_message_newest(f->store, &newest), 0);
    assert_int_equal(newest, note);
    suite_reopen(f);
    assert_int_equal(kf_store_sync_message_newest(f->store, &newest), 0);
    assert_int_equal(newest, note);
}

#define SUITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

const struct CMUnitTest store_suite_message_tests[] = {
    SUITE_TEST(test_conversations),
    SUITE_TEST(test_message_add),
    SUITE_TEST(test_message_queries),
    SUITE_TEST(test_each_stops_early),
    SUITE_TEST(test_unread_and_mark_read),
    SUITE_TEST(test_conversation_list),
    SUITE_TEST(test_conversation_pages),
    SUITE_TEST(test_set_status),
    SUITE_TEST(test_claim),
    SUITE_TEST(test_claim_race),
    SUITE_TEST(test_assign),
    SUITE_TEST(test_views),
    SUITE_TEST(test_snooze_wake),
    SUITE_TEST(test_durability),
    SUITE_TEST(test_hostile_strings),
    SUITE_TEST(test_long_utf8_body),
    SUITE_TEST(test_private_notes),
    SUITE_TEST(test_message_newest),
    SUITE_TEST(test_invitation),
    SUITE_TEST(test_assign_with_note),
    SUITE_TEST(test_waiting_since),
};

const size_t store_suite_message_test_count =
    sizeof store_suite_message_tests / sizeof store_suite_message_tests[0];
