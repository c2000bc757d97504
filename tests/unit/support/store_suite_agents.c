/* store_suite_agents.c: the store test suite's tests of agents' accounts: the list, changes of
 * name and role, disabling (its sessions are refused with it and deleted when it is enabled
 * again, no new session or message is taken, the history stays) and enabling again, and the rule
 * that the desk keeps an enabled admin, also between two changes queued together. */
#include "support/store_suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* ---- helpers ---- */

static int update(suite_fixture_t *f, seen_t *seen, int64_t id, kf_agent_change_t change)
{
    return suite_wait(f, f->store->ops->agent_update(f->store, id, &change, on_done, seen), seen);
}

static int list(suite_fixture_t *f, seen_t *seen)
{
    seen->agent_count = 0;
    return suite_wait(f, f->store->ops->agent_list(f->store, on_agent, on_done, seen), seen);
}

static int new_session(suite_fixture_t *f, seen_t *seen, const char *hash, int64_t agent)
{
    return suite_wait(f,
                      f->store->ops->session_create(f->store, hash, agent, "csrf", SUITE_NOW,
                                                    SUITE_NOW + SUITE_HOUR, on_done, seen),
                      seen);
}

static int get_session(suite_fixture_t *f, seen_t *seen, const char *hash)
{
    return suite_wait(f, f->store->ops->session_get(f->store, hash, SUITE_NOW, on_done, seen),
                      seen);
}

/* An agent's message in conversation_id, waited for: its result code. */
static int agent_says(suite_fixture_t *f, seen_t *seen, int64_t conversation_id, int64_t agent,
                      const char *body)
{
    kf_message_new_t m = {.conversation_id = conversation_id,
                          .sender = KF_SENDER_AGENT,
                          .agent_id = agent,
                          .body = body,
                          .now = SUITE_NOW};
    return suite_send(f, seen, &m);
}

static const kf_agent_change_t disable = {.state = KF_AGENT_STATE_DISABLE, .now = SUITE_NOW + 5};
static const kf_agent_change_t enable = {.state = KF_AGENT_STATE_ENABLE};

/* ---- the list ---- */

static void test_agent_list(void **state)
{
    suite_fixture_t *f = *state;
    seen_t *seen = seen_new();
    assert_int_equal(list(f, seen), 0);
    assert_int_equal(seen->agent_count, 0);
    assert_int_equal(last_result(seen)->count, 0);

    int64_t ana = suite_add_agent_as(f, "ana@example.com", "Ana", "admin");
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    int64_t cy = suite_add_agent(f, "cy@example.com", "Cy");
    assert_int_equal(update(f, seen, bo, disable), 0);
    assert_int_equal(list(f, seen), 0);
    assert_int_equal(last_result(seen)->count, 3);
    assert_int_equal(seen->agent_count, 3);
    const int64_t ids[] = {ana, bo, cy};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(seen->agents[i].id, ids[i]);
    const kf_agent_t *a = &seen->agents[0];
    assert_string_equal(a->email, "ana@example.com");
    assert_string_equal(a->name, "Ana");
    assert_string_equal(a->role, "admin");
    assert_string_equal(a->password_hash, "scrypt$hash");
    assert_int_equal(a->created_at, SUITE_NOW);
    assert_int_equal(a->disabled_at, 0);
    assert_int_equal(seen->agents[1].disabled_at, SUITE_NOW + 5);
    assert_int_equal(seen->agents[2].disabled_at, 0);

    /* each stops it early, and its value is the result's. */
    seen->stop_at = seen->calls + 2;
    seen->stop_value = 7;
    assert_int_equal(list(f, seen), 7);
    assert_int_equal(seen->agent_count, 2);
    assert_int_equal(last_result(seen)->count, 2);
    seen->stop_at = 0;

    /* Refused at once: no callback. */
    size_t results = seen->result_count;
    assert_int_equal(f->store->ops->agent_list(f->store, NULL, on_done, seen), KF_EINVAL);
    assert_int_equal(f->store->ops->agent_list(f->store, on_agent, NULL, seen), KF_EINVAL);
    suite_flush(f);
    assert_int_equal(seen->result_count, results);
    seen_free(seen);
}

/* ---- changes ---- */

static void test_agent_update(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    seen_t *seen = seen_new();

    assert_int_equal(update(f, seen, bo, (kf_agent_change_t){.name = "Bo Brandt"}), 0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->has_agent);
    assert_int_equal(r->agent.id, bo);
    assert_string_equal(r->agent.name, "Bo Brandt");
    assert_string_equal(r->agent.role, "agent");
    assert_string_equal(r->agent.email, "bo@example.com");
    assert_int_equal(r->agent.disabled_at, 0);
    assert_int_equal(r->count, 0);
    assert_int_equal(update(f, seen, bo, (kf_agent_change_t){.role = "admin", .name = ""}), 0);
    assert_string_equal(last_result(seen)->agent.role, "admin");
    assert_string_equal(last_result(seen)->agent.name, "");
    assert_int_equal(suite_wait(f, ops->agent_by_id(f->store, bo, on_done, seen), seen), 0);
    assert_string_equal(last_result(seen)->agent.role, "admin");

    /* Unknown: KF_ENOTFOUND and no row. */
    assert_int_equal(update(f, seen, bo + 100, (kf_agent_change_t){.name = "x"}), KF_ENOTFOUND);
    assert_false(last_result(seen)->has_agent);
    assert_int_equal(update(f, seen, bo + 100, disable), KF_ENOTFOUND);

    /* Refused at once: a change of nothing, a role that is none, a state that is none, a disable
     * without its time. */
    size_t results = seen->result_count;
    const kf_agent_change_t refused[] = {
        {.name = NULL},
        {.role = "owner"},
        {.role = "Admin"},
        {.state = (kf_agent_state_t)7},
        {.state = KF_AGENT_STATE_DISABLE},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_int_equal(ops->agent_update(f->store, bo, &refused[i], on_done, seen), KF_EINVAL);
    assert_int_equal(ops->agent_update(f->store, bo, NULL, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->agent_update(f->store, bo, &disable, NULL, NULL), KF_EINVAL);
    suite_flush(f);
    assert_int_equal(seen->result_count, results);
    seen_free(seen);
}

/* Disabling ends the agent's sessions (kept, so that every loop and node can say why a cookie is
 * refused: its agent is disabled), refuses new ones and new messages, keeps what the agent wrote;
 * enabling deletes the old sessions and lets the agent in again. Nobody else is touched. */
static void test_disable_and_enable(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    int64_t cy = suite_add_agent(f, "cy@example.com", "Cy");
    int64_t visitor = suite_add_visitor(f, "token-v", "Vera");
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW, NULL);
    int64_t reply = suite_add_message(f, conversation, bo, "an answer from Bo");
    seen_t *seen = seen_new();
    assert_int_equal(new_session(f, seen, "bo-1", bo), 0);
    assert_int_equal(new_session(f, seen, "bo-2", bo), 0);
    assert_int_equal(new_session(f, seen, "cy-1", cy), 0);

    assert_int_equal(update(f, seen, bo, disable), 0);
    const result_copy_t *r = last_result(seen);
    assert_int_equal(r->count, 2);
    assert_int_equal(r->agent.disabled_at, SUITE_NOW + 5);
    assert_string_equal(r->agent.name, "Bo");
    assert_int_equal(get_session(f, seen, "bo-1"), 0);
    assert_int_equal(last_result(seen)->session.agent_id, bo);
    assert_int_equal(get_session(f, seen, "bo-2"), 0);
    assert_int_equal(get_session(f, seen, "cy-1"), 0);
    assert_int_equal(
        suite_wait(f, ops->agent_by_email(f->store, "bo@example.com", on_done, seen), seen), 0);
    assert_int_equal(last_result(seen)->agent.disabled_at, SUITE_NOW + 5);

    /* Nothing new in the agent's name; what they wrote stays theirs. */
    assert_int_equal(new_session(f, seen, "bo-3", bo), KF_EFORBIDDEN);
    assert_int_equal(agent_says(f, seen, conversation, bo, "after"), KF_EFORBIDDEN);
    assert_false(last_result(seen)->has_message);
    assert_int_equal(agent_says(f, seen, conversation, cy, "Cy still can"), 0);
    assert_int_equal(suite_wait(f,
                                ops->messages_in_conversation(f->store, conversation, 0, 10,
                                                              on_message, on_done, seen),
                                seen),
                     0);
    assert_int_equal(seen->message_count, 3);
    assert_int_equal(seen->messages[1].id, reply);
    assert_int_equal(seen->messages[1].agent_id, bo);
    assert_string_equal(seen->messages[1].agent_name, "Bo");

    /* Again: the first time stays, and no session is ended again. A rename keeps it disabled. */
    kf_agent_change_t later = disable;
    later.now += 1000;
    assert_int_equal(update(f, seen, bo, later), 0);
    assert_int_equal(last_result(seen)->count, 0);
    assert_int_equal(last_result(seen)->agent.disabled_at, SUITE_NOW + 5);
    assert_int_equal(update(f, seen, bo, (kf_agent_change_t){.name = "Bo B."}), 0);
    assert_int_equal(last_result(seen)->agent.disabled_at, SUITE_NOW + 5);

    /* Enabled: the old sessions are gone; a login and a message go through again. Cy's session
     * stays, and enabling an agent that is enabled ends nothing. */
    assert_int_equal(update(f, seen, bo, enable), 0);
    assert_int_equal(last_result(seen)->agent.disabled_at, 0);
    assert_int_equal(get_session(f, seen, "bo-1"), KF_ENOTFOUND);
    assert_int_equal(get_session(f, seen, "bo-2"), KF_ENOTFOUND);
    assert_int_equal(get_session(f, seen, "cy-1"), 0);
    assert_int_equal(update(f, seen, cy, enable), 0);
    assert_int_equal(get_session(f, seen, "cy-1"), 0);
    assert_int_equal(new_session(f, seen, "bo-3", bo), 0);
    assert_int_equal(agent_says(f, seen, conversation, bo, "back"), 0);
    assert_string_equal(last_result(seen)->message.agent_name, "Bo B.");

    /* Kept across a restart. */
    assert_int_equal(update(f, seen, bo, disable), 0);
    assert_int_equal(last_result(seen)->count, 1);
    suite_reopen(f);
    assert_int_equal(suite_wait(f, f->store->ops->agent_by_id(f->store, bo, on_done, seen), seen),
                     0);
    assert_int_equal(last_result(seen)->agent.disabled_at, SUITE_NOW + 5);
    assert_int_equal(get_session(f, seen, "bo-3"), 0);

    /* Disabled and given a new password at once: the session is kept as a disabling keeps it
     * (it says why it is refused); the enabling deletes it. */
    assert_int_equal(update(f, seen, bo, enable), 0);
    assert_int_equal(new_session(f, seen, "bo-4", bo), 0);
    kf_agent_change_t both = disable;
    both.password_hash = "scrypt$new";
    assert_int_equal(update(f, seen, bo, both), 0);
    assert_int_equal(last_result(seen)->count, 1);
    assert_int_equal(get_session(f, seen, "bo-4"), 0);
    assert_int_equal(update(f, seen, bo, enable), 0);
    assert_int_equal(get_session(f, seen, "bo-4"), KF_ENOTFOUND);
    seen_free(seen);
}

/* In one batch, a write queued after the disable sees it; one queued before does not. */
static void test_disable_orders_with_other_writes(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    int64_t visitor = suite_add_visitor(f, "token-v", "Vera");
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW, NULL);
    seen_t *seen = seen_new();
    kf_message_new_t m = {.conversation_id = conversation,
                          .sender = KF_SENDER_AGENT,
                          .agent_id = bo,
                          .body = "before",
                          .now = SUITE_NOW};
    assert_int_equal(ops->message_add(f->store, &m, on_done, seen), 0);
    assert_int_equal(ops->session_create(f->store, "bo-1", bo, "c", SUITE_NOW,
                                         SUITE_NOW + SUITE_HOUR, on_done, seen),
                     0);
    assert_int_equal(ops->agent_update(f->store, bo, &disable, on_done, seen), 0);
    m.body = "after";
    assert_int_equal(ops->message_add(f->store, &m, on_done, seen), 0);
    assert_int_equal(ops->session_create(f->store, "bo-2", bo, "c", SUITE_NOW,
                                         SUITE_NOW + SUITE_HOUR, on_done, seen),
                     0);
    suite_flush(f);
    assert_int_equal(seen->result_count, 5);
    static const int expected[] = {0, 0, 0, KF_EFORBIDDEN, KF_EFORBIDDEN};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(seen->results[i].rc, expected[i]);
    assert_int_equal(seen->results[2].count, 1); /* the session created just before */
    assert_int_equal(suite_message_count(f), 2);
    seen_free(seen);
}

/* ---- the last admin ---- */

static void test_desk_keeps_an_admin(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t ana = suite_add_agent_as(f, "ana@example.com", "Ana", "admin");
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    seen_t *seen = seen_new();

    /* The only admin: neither disabled nor made an agent, and nothing of the change is made. */
    kf_agent_change_t demote = {.role = "agent", .name = "Renamed"};
    assert_int_equal(update(f, seen, ana, disable), KF_ECONFLICT);
    assert_false(last_result(seen)->has_agent);
    assert_int_equal(update(f, seen, ana, demote), KF_ECONFLICT);
    assert_int_equal(suite_wait(f, ops->agent_by_id(f->store, ana, on_done, seen), seen), 0);
    assert_string_equal(last_result(seen)->agent.name, "Ana");
    assert_string_equal(last_result(seen)->agent.role, "admin");
    assert_int_equal(last_result(seen)->agent.disabled_at, 0);
    /* What leaves the admin one is fine: a rename, "admin" again, enabling, an agent's change. */
    assert_int_equal(update(f, seen, ana, (kf_agent_change_t){.name = "Ana A.", .role = "admin"}),
                     0);
    assert_int_equal(update(f, seen, ana, enable), 0);
    assert_int_equal(update(f, seen, bo, disable), 0);

    /* A disabled admin is no admin to count on: Bo made one while disabled does not count. */
    assert_int_equal(update(f, seen, bo, (kf_agent_change_t){.role = "admin"}), 0);
    assert_int_equal(update(f, seen, ana, demote), KF_ECONFLICT);
    /* Enabled, Bo is one: then either may go, but not both, even queued together. */
    assert_int_equal(update(f, seen, bo, enable), 0);
    assert_int_equal(ops->agent_update(f->store, ana, &disable, on_done, seen), 0);
    assert_int_equal(ops->agent_update(f->store, bo, &demote, on_done, seen), 0);
    suite_flush(f);
    assert_int_equal(seen->results[seen->result_count - 2].rc, 0);
    assert_int_equal(last_result(seen)->rc, KF_ECONFLICT);
    /* An agent who is not an admin may always be disabled, and an admin already disabled may be
     * made an agent. */
    int64_t cy = suite_add_agent(f, "cy@example.com", "Cy");
    assert_int_equal(update(f, seen, cy, disable), 0);
    assert_int_equal(update(f, seen, ana, (kf_agent_change_t){.role = "agent"}), 0);
    seen_free(seen);
}

#define SUITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

const struct CMUnitTest store_suite_agent_tests[] = {
    SUITE_TEST(test_agent_list),          SUITE_TEST(test_agent_update),
    SUITE_TEST(test_disable_and_enable),  SUITE_TEST(test_disable_orders_with_other_writes),
    SUITE_TEST(test_desk_keeps_an_admin),
};

const size_t store_suite_agent_test_count =
    sizeof store_suite_agent_tests / sizeof store_suite_agent_tests[0];
