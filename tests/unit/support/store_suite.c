/* store_suite.c: the store test suite's frame (fixture, recording callbacks, row helpers) and its
 * tests of settings, agents, sessions, visitors, idempotency keys, and the asynchronous contract
 * itself: callbacks run exactly once, later, in order for writes; refused arguments never call
 * back. */
#include "support/store_suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* The backend store_suite_run was given, for the per-test setup. */
static const store_backend_t *suite_backend;

/* ---- fixture ---- */

int store_suite_setup(void **state)
{
    suite_fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->backend = suite_backend;
    f->db = f->backend->create();
    if (f->db == NULL || f->backend->open(f->db, &f->store) != 0) {
        if (f->db != NULL)
            f->backend->destroy(f->db);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int store_suite_teardown(void **state)
{
    suite_fixture_t *f = *state;
    kf_store_close(f->store);
    f->store = NULL;
    f->backend->check(f->db);
    f->backend->destroy(f->db);
    free(f);
    return 0;
}

void suite_reopen(suite_fixture_t *f)
{
    kf_store_close(f->store);
    f->store = NULL;
    assert_int_equal(f->backend->open(f->db, &f->store), 0);
}

void suite_flush(suite_fixture_t *f)
{
    f->store->ops->flush(f->store);
}

/* ---- recording callbacks ---- */

seen_t *seen_new(void)
{
    seen_t *seen = calloc(1, sizeof(*seen));
    assert_non_null(seen);
    return seen;
}

void seen_free(seen_t *seen)
{
    for (size_t i = 0; i < seen->string_count; i++)
        free(seen->strings[i]);
    free(seen->strings);
    free(seen);
}

/* Copies a borrowed string into seen, which owns the copy. */
static const char *keep(seen_t *seen, const char *text)
{
    assert_non_null(text);
    if (seen->string_count == seen->string_capacity) {
        seen->string_capacity = seen->string_capacity == 0 ? 64 : 2 * seen->string_capacity;
        seen->strings = realloc(seen->strings, seen->string_capacity * sizeof *seen->strings);
        assert_non_null(seen->strings);
    }
    char *copy = strdup(text);
    assert_non_null(copy);
    seen->strings[seen->string_count++] = copy;
    return copy;
}

static void keep_message(seen_t *seen, const kf_message_t *message, kf_message_t *copy)
{
    *copy = *message;
    copy->agent_name = keep(seen, message->agent_name);
    copy->body = keep(seen, message->body);
    copy->attachment_name = keep(seen, message->attachment_name);
    copy->attachment_type = keep(seen, message->attachment_type);
}

static void keep_conversation(seen_t *seen, const kf_conversation_t *conversation,
                              kf_conversation_t *copy)
{
    *copy = *conversation;
    copy->visitor_name = keep(seen, conversation->visitor_name);
    copy->status = keep(seen, conversation->status);
    copy->assignee.email = keep(seen, conversation->assignee.email);
    copy->assignee.name = keep(seen, conversation->assignee.name);
    copy->assignee.role = keep(seen, conversation->assignee.role);
    copy->assignee.password_hash = keep(seen, conversation->assignee.password_hash);
    copy->team_name = keep(seen, conversation->team_name);
    copy->rating = keep(seen, conversation->rating);
    copy->rating_comment = keep(seen, conversation->rating_comment);
    keep_message(seen, &conversation->last_message, &copy->last_message);
}

static void keep_agent(seen_t *seen, const kf_agent_t *agent, kf_agent_t *copy)
{
    *copy = *agent;
    copy->email = keep(seen, agent->email);
    copy->name = keep(seen, agent->name);
    copy->role = keep(seen, agent->role);
    copy->password_hash = keep(seen, agent->password_hash);
}

/* Counts a call of each and says what it returns. */
static int count_each(seen_t *seen)
{
    seen->calls++;
    return seen->stop_at > 0 && seen->calls == seen->stop_at ? seen->stop_value : 0;
}

int on_message(void *ctx, const kf_message_t *message)
{
    seen_t *seen = ctx;
    assert_true(seen->message_count < SUITE_MAX_ROWS);
    keep_message(seen, message, &seen->messages[seen->message_count++]);
    return count_each(seen);
}

int on_conversation(void *ctx, const kf_conversation_t *conversation)
{
    seen_t *seen = ctx;
    assert_true(seen->conversation_count < SUITE_MAX_ROWS);
    keep_conversation(seen, conversation, &seen->conversations[seen->conversation_count++]);
    return count_each(seen);
}

int on_agent(void *ctx, const kf_agent_t *agent)
{
    seen_t *seen = ctx;
    assert_true(seen->agent_count < SUITE_MAX_AGENTS);
    keep_agent(seen, agent, &seen->agents[seen->agent_count++]);
    return count_each(seen);
}

static void keep_canned(seen_t *seen, const kf_canned_t *canned, kf_canned_t *copy)
{
    *copy = *canned;
    copy->shortcut = keep(seen, canned->shortcut);
    copy->body = keep(seen, canned->body);
}

int on_canned(void *ctx, const kf_canned_t *canned)
{
    seen_t *seen = ctx;
    assert_true(seen->canned_count < SUITE_MAX_AGENTS);
    keep_canned(seen, canned, &seen->canned[seen->canned_count++]);
    return count_each(seen);
}

void on_done(void *ctx, const kf_store_result_t *result)
{
    seen_t *seen = ctx;
    assert_true(seen->result_count < SUITE_MAX_RESULTS);
    result_copy_t *copy = &seen->results[seen->result_count++];
    seen->calls++;
    copy->rc = result->rc;
    copy->id = result->id;
    copy->count = result->count;
    copy->conversation_opened = result->conversation_opened;
    copy->duplicate = result->duplicate;
    copy->has_message = result->message != NULL;
    if (copy->has_message)
        keep_message(seen, result->message, &copy->message);
    copy->has_agent = result->agent != NULL;
    if (copy->has_agent)
        keep_agent(seen, result->agent, &copy->agent);
    copy->has_visitor = result->visitor != NULL;
    if (copy->has_visitor) {
        copy->visitor = *result->visitor;
        copy->visitor.name = keep(seen, result->visitor->name);
        copy->visitor.email = keep(seen, result->visitor->email);
        copy->visitor.user_id =
            result->visitor->user_id != NULL ? keep(seen, result->visitor->user_id) : NULL;
    }
    copy->has_session = result->session != NULL;
    if (copy->has_session) {
        copy->session = *result->session;
        copy->session.csrf = keep(seen, result->session->csrf);
    }
    copy->has_counts = result->counts != NULL;
    if (copy->has_counts)
        memcpy(copy->counts, result->counts, sizeof copy->counts);
    copy->conversation_reopened = result->conversation_reopened;
    copy->has_conversation = result->conversation != NULL;
    if (copy->has_conversation)
        keep_conversation(seen, result->conversation, &copy->conversation);
    copy->value = result->value != NULL ? keep(seen, result->value) : NULL;
    copy->has_canned = result->canned != NULL;
    if (copy->has_canned)
        keep_canned(seen, result->canned, &copy->canned);
    copy->has_team = result->team != NULL;
    if (copy->has_team) {
        copy->team = *result->team;
        copy->team.name = keep(seen, result->team->name);
        copy->team.auto_assign = keep(seen, result->team->auto_assign);
        assert_true(result->team->member_count <= SUITE_MAX_AGENTS);
        for (size_t i = 0; i < result->team->member_count; i++)
            copy->team_members[i] = result->team->member_ids[i];
        copy->team.member_ids = copy->team_members;
    }
    copy->team_missing = result->team_missing;
    assert_true(result->released_count <= SUITE_MAX_AGENTS);
    copy->released_count = result->released_count;
    for (size_t i = 0; i < result->released_count; i++)
        copy->released[i] = result->released[i];
}

const result_copy_t *last_result(const seen_t *seen)
{
    assert_true(seen->result_count > 0);
    return &seen->results[seen->result_count - 1];
}

int suite_wait(suite_fixture_t *f, int queued_rc, seen_t *seen)
{
    assert_int_equal(queued_rc, 0);
    size_t before = seen->result_count;
    suite_flush(f);
    assert_int_equal(seen->result_count, before + 1);
    return last_result(seen)->rc;
}

/* ---- row helpers ---- */

int64_t suite_add_agent(suite_fixture_t *f, const char *email, const char *name)
{
    return suite_add_agent_as(f, email, name, "agent");
}

int64_t suite_add_agent_as(suite_fixture_t *f, const char *email, const char *name,
                           const char *role)
{
    seen_t *seen = seen_new();
    assert_int_equal(
        suite_wait(f,
                   f->store->ops->agent_create(f->store, email, name, role, "scrypt$hash",
                                               SUITE_NOW, on_done, seen),
                   seen),
        0);
    int64_t id = last_result(seen)->id;
    seen_free(seen);
    assert_true(id > 0);
    return id;
}

int64_t suite_add_visitor(suite_fixture_t *f, const char *token_hash, const char *name)
{
    seen_t *seen = seen_new();
    assert_int_equal(suite_wait(f,
                                f->store->ops->visitor_create(f->store, token_hash, name, SUITE_NOW,
                                                              on_done, seen),
                                seen),
                     0);
    int64_t id = last_result(seen)->id;
    seen_free(seen);
    assert_true(id > 0);
    return id;
}

/* Adds a message and returns its stored row's id and conversation. */
static void add_message(suite_fixture_t *f, const kf_message_new_t *m, int64_t *id,
                        int64_t *conversation_id)
{
    seen_t *seen = seen_new();
    assert_int_equal(suite_wait(f, f->store->ops->message_add(f->store, m, on_done, seen), seen),
                     0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->has_message);
    assert_true(r->message.id > 0);
    *id = r->message.id;
    *conversation_id = r->message.conversation_id;
    seen_free(seen);
}

int64_t suite_add_message_at(suite_fixture_t *f, int64_t conversation_id, int64_t agent_id,
                             const char *body, int64_t now)
{
    kf_message_new_t m = {
        .conversation_id = conversation_id,
        .sender = agent_id != 0 ? KF_SENDER_AGENT : KF_SENDER_VISITOR,
        .agent_id = agent_id,
        .body = body,
        .now = now,
    };
    int64_t id, conversation;
    add_message(f, &m, &id, &conversation);
    assert_int_equal(conversation, conversation_id);
    return id;
}

int64_t suite_add_message(suite_fixture_t *f, int64_t conversation_id, int64_t agent_id,
                          const char *body)
{
    return suite_add_message_at(f, conversation_id, agent_id, body, SUITE_NOW);
}

int64_t suite_open_conversation(suite_fixture_t *f, int64_t visitor_id, const char *body,
                                int64_t now, int64_t *message_id)
{
    kf_message_new_t m = {
        .visitor_id = visitor_id, .sender = KF_SENDER_VISITOR, .body = body, .now = now};
    int64_t id, conversation;
    add_message(f, &m, &id, &conversation);
    assert_true(conversation > 0);
    if (message_id != NULL)
        *message_id = id;
    return conversation;
}

seen_t *suite_get_conversation(suite_fixture_t *f, int64_t conversation_id)
{
    seen_t *seen = seen_new();
    assert_int_equal(
        suite_wait(f, f->store->ops->conversation_get(f->store, conversation_id, on_done, seen),
                   seen),
        0);
    assert_true(last_result(seen)->has_conversation);
    return seen;
}

int suite_send(suite_fixture_t *f, seen_t *seen, const kf_message_new_t *m)
{
    return suite_wait(f, f->store->ops->message_add(f->store, m, on_done, seen), seen);
}

size_t suite_message_count(suite_fixture_t *f)
{
    seen_t *seen = seen_new();
    assert_int_equal(suite_wait(f,
                                f->store->ops->messages_all(f->store, 0, SUITE_MAX_ROWS, on_message,
                                                            on_done, seen),
                                seen),
                     0);
    size_t count = seen->message_count;
    assert_int_equal(last_result(seen)->count, (int64_t)count);
    seen_free(seen);
    return count;
}

int suite_set_status(suite_fixture_t *f, int64_t conversation_id, const char *status)
{
    seen_t *seen = seen_new();
    int rc = suite_wait(f,
                        f->store->ops->conversation_set_status(f->store, conversation_id, status, 0,
                                                               SUITE_NOW, on_done, seen),
                        seen);
    seen_free(seen);
    return rc;
}

/* ---- settings, agents, sessions, visitors ---- */

/* setting_get's result code, and the value in *value (a copy owned by seen). */
static int get_setting(suite_fixture_t *f, seen_t *seen, const char *key, const char **value)
{
    int rc = suite_wait(f, f->store->ops->setting_get(f->store, key, on_done, seen), seen);
    *value = last_result(seen)->value;
    return rc;
}

static int set_setting(suite_fixture_t *f, seen_t *seen, const char *key, const char *value)
{
    return suite_wait(f, f->store->ops->setting_set(f->store, key, value, on_done, seen), seen);
}

static void test_settings(void **state)
{
    suite_fixture_t *f = *state;
    seen_t *seen = seen_new();
    const char *value = NULL;

    assert_int_equal(get_setting(f, seen, "secret", &value), KF_ENOTFOUND);
    assert_null(value);
    assert_int_equal(set_setting(f, seen, "secret", "abc"), 0);
    assert_int_equal(get_setting(f, seen, "secret", &value), 0);
    assert_string_equal(value, "abc");
    assert_int_equal(set_setting(f, seen, "secret", "overwritten"), 0);
    assert_int_equal(get_setting(f, seen, "secret", &value), 0);
    assert_string_equal(value, "overwritten");
    assert_int_equal(set_setting(f, seen, "empty", ""), 0);
    assert_int_equal(get_setting(f, seen, "empty", &value), 0);
    assert_string_equal(value, "");
    assert_int_equal(get_setting(f, seen, "Secret", &value), KF_ENOTFOUND);

    /* The schema's version is the migrations' to set. */
    size_t results = seen->result_count;
    const kf_store_ops_t *ops = f->store->ops;
    assert_int_equal(ops->setting_set(f->store, "schema_version", "0", on_done, seen), KF_EINVAL);
    assert_int_equal(ops->setting_set(f->store, NULL, "x", on_done, seen), KF_EINVAL);
    assert_int_equal(ops->setting_get(f->store, NULL, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->setting_get(f->store, "secret", NULL, NULL), KF_EINVAL);
    suite_flush(f);
    assert_int_equal(seen->result_count, results);
    seen_free(seen);
}

static void test_agents(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    seen_t *seen = seen_new();

    assert_int_equal(suite_wait(f, ops->agent_count(f->store, on_done, seen), seen), 0);
    assert_int_equal(last_result(seen)->count, 0);

    assert_int_equal(suite_wait(f,
                                ops->agent_create(f->store, "ana@example.com", "Ana", "admin",
                                                  "hash-ana", SUITE_NOW, on_done, seen),
                                seen),
                     0);
    int64_t ana = last_result(seen)->id;
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    assert_true(ana > 0 && bo != ana);
    assert_int_equal(suite_wait(f,
                                ops->agent_create(f->store, "ana@example.com", "Other", "agent",
                                                  "h", SUITE_NOW, on_done, seen),
                                seen),
                     KF_EEXISTS);
    assert_int_equal(suite_wait(f, ops->agent_count(f->store, on_done, seen), seen), 0);
    assert_int_equal(last_result(seen)->count, 2);

    assert_int_equal(
        suite_wait(f, ops->agent_by_email(f->store, "ana@example.com", on_done, seen), seen), 0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->has_agent);
    assert_int_equal(r->agent.id, ana);
    assert_string_equal(r->agent.email, "ana@example.com");
    assert_string_equal(r->agent.name, "Ana");
    assert_string_equal(r->agent.role, "admin");
    assert_string_equal(r->agent.password_hash, "hash-ana");
    assert_int_equal(r->agent.created_at, SUITE_NOW);

    assert_int_equal(suite_wait(f, ops->agent_by_id(f->store, bo, on_done, seen), seen), 0);
    assert_int_equal(last_result(seen)->agent.id, bo);
    assert_string_equal(last_result(seen)->agent.name, "Bo");

    /* Unknown rows: KF_ENOTFOUND and no row. */
    assert_int_equal(
        suite_wait(f, ops->agent_by_email(f->store, "nobody@example.com", on_done, seen), seen),
        KF_ENOTFOUND);
    assert_false(last_result(seen)->has_agent);
    assert_int_equal(suite_wait(f, ops->agent_by_id(f->store, bo + 100, on_done, seen), seen),
                     KF_ENOTFOUND);
    seen_free(seen);
}

/* session_get's result code; the session in seen's last result. */
static int get_session(suite_fixture_t *f, seen_t *seen, const char *hash, int64_t now)
{
    return suite_wait(f, f->store->ops->session_get(f->store, hash, now, on_done, seen), seen);
}

static int create_session(suite_fixture_t *f, seen_t *seen, const char *hash, int64_t agent,
                          const char *csrf, int64_t now, int64_t expires_at)
{
    return suite_wait(
        f,
        f->store->ops->session_create(f->store, hash, agent, csrf, now, expires_at, on_done, seen),
        seen);
}

static int delete_session(suite_fixture_t *f, seen_t *seen, const char *hash)
{
    return suite_wait(f, f->store->ops->session_delete(f->store, hash, on_done, seen), seen);
}

static void test_sessions(void **state)
{
    suite_fixture_t *f = *state;
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    seen_t *seen = seen_new();
    const int64_t now = SUITE_NOW, hour = SUITE_HOUR;

    assert_int_equal(create_session(f, seen, "hash-1", agent, "csrf-1", now, now + hour), 0);
    assert_int_equal(get_session(f, seen, "hash-1", now), 0);
    assert_true(last_result(seen)->has_session);
    assert_int_equal(last_result(seen)->session.agent_id, agent);
    assert_string_equal(last_result(seen)->session.csrf, "csrf-1");
    assert_int_equal(last_result(seen)->session.expires_at, now + hour);

    /* Valid up to the last millisecond before expires_at, not at it. */
    assert_int_equal(get_session(f, seen, "hash-1", now + hour - 1), 0);
    assert_int_equal(get_session(f, seen, "hash-1", now + hour), KF_ENOTFOUND);
    assert_false(last_result(seen)->has_session);
    assert_int_equal(get_session(f, seen, "unknown", now), KF_ENOTFOUND);

    assert_int_equal(create_session(f, seen, "hash-1", agent, "again", now, now + hour),
                     KF_EEXISTS);
    assert_int_equal(create_session(f, seen, "hash-2", agent, "csrf-2", now, now + hour), 0);
    assert_int_equal(delete_session(f, seen, "hash-1"), 0);
    assert_int_equal(get_session(f, seen, "hash-1", now), KF_ENOTFOUND);
    assert_int_equal(delete_session(f, seen, "hash-1"), KF_ENOTFOUND);
    assert_int_equal(delete_session(f, seen, "unknown"), KF_ENOTFOUND);
    assert_int_equal(get_session(f, seen, "hash-2", now), 0);
    assert_string_equal(last_result(seen)->session.csrf, "csrf-2");

    /* A later login purges the sessions that have expired by then. */
    assert_int_equal(
        create_session(f, seen, "hash-3", agent, "csrf-3", now + 3 * hour, now + 4 * hour), 0);
    assert_int_equal(get_session(f, seen, "hash-3", now + 3 * hour), 0);
    assert_int_equal(delete_session(f, seen, "hash-2"), KF_ENOTFOUND); /* purged */
    seen_free(seen);
}

static void test_visitors(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    seen_t *seen = seen_new();

    int64_t named = suite_add_visitor(f, "token-a", "Zoë");
    int64_t anonymous = suite_add_visitor(f, "token-b", "");
    assert_true(named != anonymous);
    assert_int_equal(suite_wait(f, ops->visitor_by_token(f->store, "token-a", on_done, seen), seen),
                     0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->has_visitor);
    assert_int_equal(r->visitor.id, named);
    assert_string_equal(r->visitor.name, "Zoë");
    assert_int_equal(r->visitor.created_at, SUITE_NOW);
    assert_int_equal(suite_wait(f, ops->visitor_by_token(f->store, "token-b", on_done, seen), seen),
                     0);
    assert_string_equal(last_result(seen)->visitor.name, "");
    assert_int_equal(suite_wait(f, ops->visitor_by_token(f->store, "token-c", on_done, seen), seen),
                     KF_ENOTFOUND);
    assert_int_equal(
        suite_wait(f, ops->visitor_create(f->store, "token-a", "Again", SUITE_NOW, on_done, seen),
                   seen),
        KF_EEXISTS);
    seen_free(seen);
}

/* ---- the asynchronous contract ---- */

/* Nothing calls back from inside the call; writes call back in the order they were queued, each
 * seeing the ones before it (even inside one batch); refused arguments never call back. */
static void test_callbacks_later_and_in_order(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    seen_t *seen = seen_new();

    assert_int_equal(ops->setting_set(f->store, "k", "one", on_done, seen), 0);
    assert_int_equal(ops->session_create(f->store, "s", agent, "c", SUITE_NOW,
                                         SUITE_NOW + SUITE_HOUR, on_done, seen),
                     0);
    assert_int_equal(ops->visitor_create(f->store, "v", "V", SUITE_NOW, on_done, seen), 0);
    assert_int_equal(ops->session_delete(f->store, "s", on_done, seen), 0); /* sees the create */
    assert_int_equal(ops->setting_set(f->store, "k", "two", on_done, seen), 0);
    assert_int_equal(ops->visitor_create(f->store, "v", "Again", SUITE_NOW, on_done, seen), 0);
    seen_t *read = seen_new(); /* reads are not ordered against writes: a seen of their own */
    assert_int_equal(ops->agent_count(f->store, on_done, read), 0);
    assert_int_equal(seen->calls + read->calls, 0);
    suite_flush(f);
    assert_int_equal(read->result_count, 1);
    assert_int_equal(last_result(read)->count, 1);
    seen_free(read);
    static const int expected[] = {0, 0, 0, 0, 0, KF_EEXISTS};
    assert_int_equal(seen->result_count, 6);
    for (size_t i = 0; i < seen->result_count; i++)
        assert_int_equal(seen->results[i].rc, expected[i]);
    assert_true(seen->results[2].id > 0); /* the visitor */
    const char *value = NULL;
    assert_int_equal(get_setting(f, seen, "k", &value), 0);
    assert_string_equal(value, "two");

    /* Refused at once: no callback, ever. */
    size_t results = seen->result_count;
    assert_int_equal(ops->agent_count(f->store, NULL, NULL), KF_EINVAL);
    assert_int_equal(ops->agent_by_email(f->store, NULL, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->session_get(f->store, NULL, SUITE_NOW, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->visitor_by_token(f->store, NULL, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->visitor_create(f->store, NULL, "x", SUITE_NOW, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->session_create(f->store, "h", agent, "c", 0, 0, NULL, NULL), KF_EINVAL);
    assert_int_equal(ops->session_delete(f->store, "h", NULL, NULL), KF_EINVAL);
    /* Statuses: the four, "closed" no more; a snooze ends later than now, and only a snooze. */
    static const struct {
        const char *status;
        int64_t until;
    } bad_statuses[] = {{"archived", 0},         {"Open", 0},
                        {"closed", 0},           {NULL, 0},
                        {"snoozed", 0},          {"snoozed", SUITE_NOW},
                        {"open", SUITE_NOW + 1}, {"resolved", SUITE_NOW + 1}};
    for (size_t i = 0; i < sizeof bad_statuses / sizeof bad_statuses[0]; i++)
        assert_int_equal(ops->conversation_set_status(f->store, 1, bad_statuses[i].status,
                                                      bad_statuses[i].until, SUITE_NOW, on_done,
                                                      seen),
                         KF_EINVAL);
    assert_int_equal(ops->conversation_claim(f->store, 1, 0, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->conversation_claim(f->store, 1, agent, NULL, NULL), KF_EINVAL);
    kf_conversation_assign_t bad_transfers[] = {
        {.conversation_id = 1, .set_agent = true, .agent_id = -1},
        {.conversation_id = 1, .set_team = true, .team_id = -1},
        {.conversation_id = 1}, /* a change of nothing */
        {.conversation_id = 1, .set_agent = true, .by_agent_id = agent, .note = ""},
        {.conversation_id = 1, .set_agent = true, .note = "n"}, /* a note without its author */
    };
    for (size_t i = 0; i < sizeof bad_transfers / sizeof bad_transfers[0]; i++)
        assert_int_equal(ops->conversation_assign(f->store, &bad_transfers[i], on_done, seen),
                         KF_EINVAL);
    assert_int_equal(ops->conversation_assign(f->store, NULL, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->conversation_counts(f->store, agent, NULL, NULL), KF_EINVAL);
    assert_int_equal(ops->conversation_snooze_due(f->store, SUITE_NOW, NULL, NULL), KF_EINVAL);
    assert_int_equal(ops->conversation_wake(f->store, 1, SUITE_NOW, NULL, NULL), KF_EINVAL);
    kf_conversation_page_t bad_view = {.limit = 10, .view = KF_VIEW_COUNT};
    assert_int_equal(ops->conversation_list(f->store, &bad_view, on_conversation, on_done, seen),
                     KF_EINVAL);
    bad_view.view = KF_VIEW_MINE; /* whose? */
    assert_int_equal(ops->conversation_list(f->store, &bad_view, on_conversation, on_done, seen),
                     KF_EINVAL);
    assert_int_equal(ops->conversation_mark_read(f->store, 1, (kf_sender_t)5, 1, on_done, seen),
                     KF_EINVAL);
    assert_int_equal(ops->conversation_list(f->store, NULL, on_conversation, on_done, seen),
                     KF_EINVAL);
    kf_conversation_page_t page = {.limit = 10};
    assert_int_equal(ops->conversation_list(f->store, &page, NULL, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->messages_all(f->store, 0, 10, NULL, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->messages_all(f->store, 0, 10, on_message, NULL, seen), KF_EINVAL);
    suite_flush(f);
    assert_int_equal(seen->result_count, results);
    seen_free(seen);
}

/* A read's rows and a write's result are handed over only once it is done: a store that closes
 * runs and calls back everything queued first. */
static void test_close_runs_what_is_queued(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    seen_t *seen = seen_new();
    assert_int_equal(ops->setting_set(f->store, "k", "v", on_done, seen), 0);
    assert_int_equal(ops->setting_get(f->store, "k", on_done, seen), 0);
    assert_int_equal(ops->visitor_create(f->store, "v", "V", SUITE_NOW, on_done, seen), 0);
    suite_reopen(f);
    assert_int_equal(seen->result_count, 3);
    const char *value = NULL;
    assert_int_equal(get_setting(f, seen, "k", &value), 0);
    assert_string_equal(value, "v");
    seen_free(seen);
}

/* Exactly-once sending: a sender's key comes back with the message it first went with. */
static void test_idempotency_keys(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    int64_t vera = suite_add_visitor(f, "token-v", "Vera");
    int64_t walt = suite_add_visitor(f, "token-w", "Walt");
    seen_t *seen = seen_new();

    kf_message_new_t m = {
        .visitor_id = vera, .body = "hello", .now = SUITE_NOW, .idempotency_key = "k1"};
    assert_int_equal(suite_send(f, seen, &m), 0);
    kf_message_t first = last_result(seen)->message;
    assert_false(last_result(seen)->duplicate);
    assert_true(last_result(seen)->conversation_opened);
    size_t stored = suite_message_count(f);

    /* The same again (a retry, later): the message stored then, and nothing written. */
    m.now = SUITE_NOW + 50;
    assert_int_equal(suite_send(f, seen, &m), 0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->duplicate);
    assert_false(r->conversation_opened);
    assert_int_equal(r->message.id, first.id);
    assert_int_equal(r->message.conversation_id, first.conversation_id);
    assert_int_equal(r->message.visitor_id, vera);
    assert_int_equal(r->message.created_at, SUITE_NOW);
    assert_string_equal(r->message.body, "hello");
    assert_int_equal(suite_message_count(f), stored);
    /* Named by its conversation, the same. Another body: a conflict. */
    m.conversation_id = first.conversation_id;
    assert_int_equal(suite_send(f, seen, &m), 0);
    assert_true(last_result(seen)->duplicate);
    m.body = "something else";
    assert_int_equal(suite_send(f, seen, &m), KF_ECONFLICT);
    assert_false(last_result(seen)->has_message);

    /* Keys are per sender: another visitor's, an agent's. */
    kf_message_new_t other = {
        .visitor_id = walt, .body = "hello", .now = SUITE_NOW, .idempotency_key = "k1"};
    assert_int_equal(suite_send(f, seen, &other), 0);
    assert_false(last_result(seen)->duplicate);
    kf_message_new_t by_ana = {.conversation_id = first.conversation_id,
                               .sender = KF_SENDER_AGENT,
                               .agent_id = ana,
                               .body = "hello",
                               .now = SUITE_NOW,
                               .idempotency_key = "k1"};
    assert_int_equal(suite_send(f, seen, &by_ana), 0);
    int64_t ana_id = last_result(seen)->message.id;
    assert_false(last_result(seen)->duplicate);
    assert_int_equal(suite_send(f, seen, &by_ana), 0);
    assert_true(last_result(seen)->duplicate);
    assert_int_equal(last_result(seen)->message.id, ana_id);
    assert_string_equal(last_result(seen)->message.agent_name, "Ana");
    kf_message_new_t elsewhere = by_ana; /* the same key and text, another conversation */
    elsewhere.conversation_id = suite_open_conversation(f, walt, "x", SUITE_NOW, NULL);
    assert_int_equal(suite_send(f, seen, &elsewhere), KF_ECONFLICT);
    kf_message_new_t by_bo = by_ana;
    by_bo.agent_id = bo;
    assert_int_equal(suite_send(f, seen, &by_bo), 0);
    assert_false(last_result(seen)->duplicate);

    /* Twice in one batch: the second sees the first. */
    m.body = "twice";
    m.idempotency_key = "k2";
    assert_int_equal(ops->message_add(f->store, &m, on_done, seen), 0);
    assert_int_equal(ops->message_add(f->store, &m, on_done, seen), 0);
    suite_flush(f);
    r = last_result(seen);
    assert_true(r->duplicate);
    assert_int_equal(r->message.id, r[-1].message.id);
    assert_false(r[-1].duplicate);

    /* Kept across a restart and after the conversation closed; 255 bytes is a key. */
    assert_int_equal(suite_set_status(f, first.conversation_id, "resolved"), 0);
    suite_reopen(f);
    m = (kf_message_new_t){
        .visitor_id = vera, .body = "hello", .now = SUITE_NOW, .idempotency_key = "k1"};
    assert_int_equal(suite_send(f, seen, &m), 0);
    assert_true(last_result(seen)->duplicate);
    assert_int_equal(last_result(seen)->message.id, first.id);
    char key[256];
    memset(key, 'k', 255);
    key[255] = '\0';
    m.idempotency_key = key;
    assert_int_equal(suite_send(f, seen, &m), 0);
    assert_false(last_result(seen)->duplicate);
    /* Without a key, the same text twice is two messages. */
    m.idempotency_key = NULL;
    stored = suite_message_count(f);
    assert_int_equal(suite_send(f, seen, &m), 0);
    assert_int_equal(suite_send(f, seen, &m), 0);
    assert_int_equal(suite_message_count(f), stored + 2);
    seen_free(seen);
}

static const struct CMUnitTest base_tests[] = {
    cmocka_unit_test_setup_teardown(test_settings, store_suite_setup, store_suite_teardown),
    cmocka_unit_test_setup_teardown(test_agents, store_suite_setup, store_suite_teardown),
    cmocka_unit_test_setup_teardown(test_sessions, store_suite_setup, store_suite_teardown),
    cmocka_unit_test_setup_teardown(test_visitors, store_suite_setup, store_suite_teardown),
    cmocka_unit_test_setup_teardown(test_callbacks_later_and_in_order, store_suite_setup,
                                    store_suite_teardown),
    cmocka_unit_test_setup_teardown(test_close_runs_what_is_queued, store_suite_setup,
                                    store_suite_teardown),
    cmocka_unit_test_setup_teardown(test_idempotency_keys, store_suite_setup, store_suite_teardown),
};

int store_suite_run(const store_backend_t *backend, const struct CMUnitTest *extra, size_t count)
{
    suite_backend = backend;
    char name[64];
    snprintf(name, sizeof name, "store (%s)", backend->name);
    int failed = _cmocka_run_group_tests(name, base_tests, sizeof base_tests / sizeof base_tests[0],
                                         NULL, NULL);
    snprintf(name, sizeof name, "store messages (%s)", backend->name);
    failed += _cmocka_run_group_tests(name, store_suite_message_tests,
                                      store_suite_message_test_count, NULL, NULL);
    snprintf(name, sizeof name, "store agents (%s)", backend->name);
    failed += _cmocka_run_group_tests(name, store_suite_agent_tests, store_suite_agent_test_count,
                                      NULL, NULL);
    snprintf(name, sizeof name, "store search (%s)", backend->name);
    failed += _cmocka_run_group_tests(name, store_suite_search_tests, store_suite_search_test_count,
                                      NULL, NULL);
    snprintf(name, sizeof name, "store canned replies (%s)", backend->name);
    failed += _cmocka_run_group_tests(name, store_suite_canned_tests, store_suite_canned_test_count,
                                      NULL, NULL);
    snprintf(name, sizeof name, "store teams (%s)", backend->name);
    failed += _cmocka_run_group_tests(name, store_suite_team_tests, store_suite_team_test_count,
                                      NULL, NULL);
    snprintf(name, sizeof name, "store visitors (%s)", backend->name);
    failed += _cmocka_run_group_tests(name, store_suite_visitor_tests,
                                      store_suite_visitor_test_count, NULL, NULL);
    snprintf(name, sizeof name, "store reports (%s)", backend->name);
    failed += _cmocka_run_group_tests(name, store_suite_report_tests, store_suite_report_test_count,
                                      NULL, NULL);
    snprintf(name, sizeof name, "store attachments (%s)", backend->name);
    failed += _cmocka_run_group_tests(name, store_suite_attachment_tests,
                                      store_suite_attachment_test_count, NULL, NULL);
    snprintf(name, sizeof name, "store ratings (%s)", backend->name);
    failed += _cmocka_run_group_tests(name, store_suite_rating_tests, store_suite_rating_test_count,
                                      NULL, NULL);
    snprintf(name, sizeof name, "store integrations (%s)", backend->name);
    failed += _cmocka_run_group_tests(name, store_suite_integration_tests,
                                      store_suite_integration_test_count, NULL, NULL);
    if (count > 0) {
        snprintf(name, sizeof name, "%s only", backend->name);
        failed += _cmocka_run_group_tests(name, extra, count, NULL, NULL);
    }
    return failed;
}
