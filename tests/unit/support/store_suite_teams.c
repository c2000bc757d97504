/* store_suite_teams.c: the store test suite's tests of teams: names unique ignoring ASCII case,
 * changes, members (enabled agents only, nothing half-set), a conversation's team and a team's
 * views and counts, capacity and the open count on agents, a disabled agent's conversations let
 * go in the same write, and automatic assignment's conditional write (never over capacity, never
 * twice, only to a member). */
#include "support/store_suite.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"

/* ---- helpers ---- */

typedef struct team_rows {
    size_t count;
    int64_t ids[SUITE_MAX_AGENTS];
    char names[SUITE_MAX_AGENTS][32];
    size_t members[SUITE_MAX_AGENTS];
} team_rows_t;

static team_rows_t listed;

static int on_team(void *ctx, const kf_team_t *team)
{
    (void)ctx;
    assert_true(listed.count < SUITE_MAX_AGENTS);
    listed.ids[listed.count] = team->id;
    snprintf(listed.names[listed.count], sizeof listed.names[0], "%s", team->name);
    listed.members[listed.count] = team->member_count;
    listed.count++;
    return 0;
}

static int list_teams(suite_fixture_t *f, seen_t *seen)
{
    memset(&listed, 0, sizeof listed);
    return suite_wait(f, f->store->ops->team_list(f->store, on_team, on_done, seen), seen);
}

static int create(suite_fixture_t *f, seen_t *seen, const char *name, const char *mode,
                  int64_t reassign_after)
{
    kf_team_change_t team = {name, mode, reassign_after};
    return suite_wait(f, f->store->ops->team_create(f->store, &team, SUITE_NOW, on_done, seen),
                      seen);
}

static int set_members(suite_fixture_t *f, seen_t *seen, int64_t team, const int64_t *ids,
                       size_t count)
{
    return suite_wait(f, f->store->ops->team_set_members(f->store, team, ids, count, on_done, seen),
                      seen);
}

static int transfer(suite_fixture_t *f, seen_t *seen, const kf_conversation_assign_t *t)
{
    return suite_wait(f, f->store->ops->conversation_assign(f->store, t, on_done, seen), seen);
}

static int autoassign(suite_fixture_t *f, seen_t *seen, int64_t conversation, int64_t team,
                      int64_t from, int64_t agent)
{
    return suite_wait(f,
                      f->store->ops->conversation_autoassign(f->store, conversation, team, from,
                                                             agent, on_done, seen),
                      seen);
}

static int change_agent(suite_fixture_t *f, seen_t *seen, int64_t id, kf_agent_change_t change)
{
    return suite_wait(f, f->store->ops->agent_update(f->store, id, &change, on_done, seen), seen);
}

/* What conversation_team_counts handed over (one team's). */
static struct {
    size_t teams;
    int64_t team_id;
    int64_t counts[KF_VIEW_COUNT];
} counted;

static int on_counts(void *ctx, int64_t team_id, const int64_t *counts)
{
    (void)ctx;
    counted.teams++;
    counted.team_id = team_id;
    memcpy(counted.counts, counts, sizeof counted.counts);
    return 0;
}

/* The conversation's holder's id and team id. */
static void holder_and_team(suite_fixture_t *f, int64_t conversation, int64_t *holder,
                            int64_t *team)
{
    seen_t *seen = suite_get_conversation(f, conversation);
    *holder = last_result(seen)->conversation.assignee.id;
    *team = last_result(seen)->conversation.team_id;
    seen_free(seen);
}

/* ---- tests ---- */

static void test_team_create_update_list(void **state)
{
    suite_fixture_t *f = *state;
    seen_t *seen = seen_new();
    assert_int_equal(create(f, seen, "Billing", NULL, -1), 0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->has_team);
    int64_t billing = r->team.id;
    assert_string_equal(r->team.name, "Billing");
    assert_string_equal(r->team.auto_assign, "off");
    assert_int_equal(r->team.reassign_after, 0);
    assert_int_equal(r->team.member_count, 0);
    assert_int_equal(r->team.created_at, SUITE_NOW);
    assert_int_equal(create(f, seen, "bILLING", "round_robin", 0), KF_EEXISTS);
    assert_int_equal(create(f, seen, "Accounts", "least_busy", 30), 0);
    int64_t accounts = last_result(seen)->team.id;
    assert_string_equal(last_result(seen)->team.auto_assign, "least_busy");

    kf_team_change_t rename = {"accounts", NULL, -1};
    assert_int_equal(
        suite_wait(f, f->store->ops->team_update(f->store, billing, &rename, on_done, seen), seen),
        KF_EEXISTS);
    kf_team_change_t mode = {NULL, "round_robin", 60};
    assert_int_equal(
        suite_wait(f, f->store->ops->team_update(f->store, billing, &mode, on_done, seen), seen),
        0);
    r = last_result(seen);
    assert_string_equal(r->team.name, "Billing");
    assert_string_equal(r->team.auto_assign, "round_robin");
    assert_int_equal(r->team.reassign_after, 60);
    assert_int_equal(
        suite_wait(f, f->store->ops->team_update(f->store, 99, &mode, on_done, seen), seen),
        KF_ENOTFOUND);

    /* Refused at once: a bad mode, an empty name, a change of nothing. */
    const kf_store_ops_t *ops = f->store->ops;
    kf_team_change_t bad_mode = {"X", "random", 0}, empty = {"", NULL, 0},
                     nothing = {NULL, NULL, -1}, negative = {"X", NULL, -2};
    assert_int_equal(ops->team_create(f->store, &bad_mode, SUITE_NOW, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->team_create(f->store, &empty, SUITE_NOW, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->team_create(f->store, &negative, SUITE_NOW, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->team_update(f->store, billing, &nothing, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->team_list(f->store, NULL, on_done, seen), KF_EINVAL);

    assert_int_equal(list_teams(f, seen), 0);
    assert_int_equal(listed.count, 2);
    assert_int_equal(listed.ids[0], accounts); /* by name, case ignored */
    assert_int_equal(listed.ids[1], billing);
    seen_free(seen);
}

static void test_team_members(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent_as(f, "ana@example.com", "Ana", "admin");
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    int64_t cy = suite_add_agent(f, "cy@example.com", "Cy");
    seen_t *seen = seen_new();
    assert_int_equal(create(f, seen, "Billing", NULL, -1), 0);
    int64_t team = last_result(seen)->team.id;
    int64_t members[] = {cy, ana, cy};
    assert_int_equal(set_members(f, seen, team, members, 3), 0);
    const result_copy_t *r = last_result(seen);
    assert_int_equal(r->team.member_count, 2);
    assert_int_equal(r->team.member_ids[0], ana);
    assert_int_equal(r->team.member_ids[1], cy);

    /* An unknown or a disabled agent: nothing changes. */
    int64_t unknown[] = {bo, 999};
    assert_int_equal(set_members(f, seen, team, unknown, 2), KF_EINVAL);
    assert_int_equal(
        change_agent(f, seen, bo,
                     (kf_agent_change_t){.state = KF_AGENT_STATE_DISABLE, .now = SUITE_NOW}),
        0);
    int64_t disabled[] = {bo};
    assert_int_equal(set_members(f, seen, team, disabled, 1), KF_EINVAL);
    assert_int_equal(set_members(f, seen, 999, members, 1), KF_ENOTFOUND);
    assert_int_equal(list_teams(f, seen), 0);
    assert_int_equal(listed.members[0], 2);
    /* Emptied. */
    assert_int_equal(set_members(f, seen, team, NULL, 0), 0);
    assert_int_equal(last_result(seen)->team.member_count, 0);
    int64_t bad[] = {0};
    assert_int_equal(f->store->ops->team_set_members(f->store, team, bad, 1, on_done, seen),
                     KF_EINVAL);
    seen_free(seen);
}

static void test_conversation_team_views_and_counts(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    seen_t *seen = seen_new();
    assert_int_equal(create(f, seen, "Billing", NULL, -1), 0);
    int64_t team = last_result(seen)->team.id;
    int64_t a = suite_open_conversation(f, suite_add_visitor(f, "t1", "A"), "hi", SUITE_NOW, NULL);
    int64_t b =
        suite_open_conversation(f, suite_add_visitor(f, "t2", "B"), "hi", SUITE_NOW + 1, NULL);
    suite_open_conversation(f, suite_add_visitor(f, "t3", "C"), "hi", SUITE_NOW + 2, NULL);

    kf_conversation_assign_t to_team = {.conversation_id = a, .set_team = true, .team_id = team};
    assert_int_equal(transfer(f, seen, &to_team), 0);
    to_team.conversation_id = b;
    to_team.set_agent = true;
    to_team.agent_id = ana;
    assert_int_equal(transfer(f, seen, &to_team), 0);
    int64_t holder, team_of;
    holder_and_team(f, b, &holder, &team_of);
    assert_int_equal(holder, ana);
    assert_int_equal(team_of, team);
    seen_t *got = suite_get_conversation(f, a);
    assert_string_equal(last_result(got)->conversation.team_name, "Billing");
    seen_free(got);

    /* A missing team: nothing changes, and the result says it was the team. */
    kf_conversation_assign_t missing = {
        .conversation_id = a, .set_agent = true, .agent_id = 0, .set_team = true, .team_id = 99};
    assert_int_equal(transfer(f, seen, &missing), KF_EINVAL);
    assert_true(last_result(seen)->team_missing);
    holder_and_team(f, a, &holder, &team_of);
    assert_int_equal(team_of, team);

    /* The team's views. */
    kf_conversation_page_t page = {.limit = 10, .view = KF_VIEW_ALL, .team_id = team};
    assert_int_equal(suite_wait(f,
                                f->store->ops->conversation_list(f->store, &page, on_conversation,
                                                                 on_done, seen),
                                seen),
                     0);
    assert_int_equal(seen->conversation_count, 2);
    assert_int_equal(seen->conversations[0].id, b);
    seen->conversation_count = 0;
    page.view = KF_VIEW_UNASSIGNED;
    assert_int_equal(suite_wait(f,
                                f->store->ops->conversation_list(f->store, &page, on_conversation,
                                                                 on_done, seen),
                                seen),
                     0);
    assert_int_equal(seen->conversation_count, 1);
    assert_int_equal(seen->conversations[0].id, a);
    seen->conversation_count = 0;
    page.view = KF_VIEW_MINE;
    page.agent_id = ana;
    assert_int_equal(suite_wait(f,
                                f->store->ops->conversation_list(f->store, &page, on_conversation,
                                                                 on_done, seen),
                                seen),
                     0);
    assert_int_equal(seen->conversation_count, 1);
    assert_int_equal(seen->conversations[0].id, b);

    /* Its counts: a's unassigned and open, b Ana's. */
    memset(&counted, 0, sizeof counted);
    assert_int_equal(
        suite_wait(f,
                   f->store->ops->conversation_team_counts(f->store, ana, on_counts, on_done, seen),
                   seen),
        0);
    assert_int_equal(counted.teams, 1);
    assert_int_equal(counted.team_id, team);
    assert_int_equal(counted.counts[KF_VIEW_ALL], 2);
    assert_int_equal(counted.counts[KF_VIEW_UNASSIGNED], 1);
    assert_int_equal(counted.counts[KF_VIEW_MINE], 1);
    assert_int_equal(counted.counts[KF_VIEW_OPEN], 2);
    assert_int_equal(counted.counts[KF_VIEW_RESOLVED], 0);
    seen_free(seen);
}

static void test_capacity_release_and_autoassign(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent_as(f, "ana@example.com", "Ana", "admin");
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    int64_t cy = suite_add_agent(f, "cy@example.com", "Cy"); /* not a member */
    seen_t *seen = seen_new();
    assert_int_equal(create(f, seen, "Billing", "round_robin", -1), 0);
    int64_t team = last_result(seen)->team.id;
    int64_t members[] = {ana, bo};
    assert_int_equal(set_members(f, seen, team, members, 2), 0);
    int64_t c[4];
    for (int i = 0; i < 4; i++) {
        char token[8];
        snprintf(token, sizeof token, "t%d", i);
        c[i] =
            suite_open_conversation(f, suite_add_visitor(f, token, ""), "hi", SUITE_NOW + i, NULL);
        kf_conversation_assign_t to_team = {
            .conversation_id = c[i], .set_team = true, .team_id = team};
        assert_int_equal(transfer(f, seen, &to_team), 0);
    }
    assert_int_equal(
        change_agent(f, seen, ana, (kf_agent_change_t){.set_capacity = true, .capacity = 1}), 0);
    assert_int_equal(last_result(seen)->agent.capacity, 1);
    assert_int_equal(f->store->ops->agent_update(
                         f->store, ana, &(kf_agent_change_t){.set_capacity = true, .capacity = -1},
                         on_done, seen),
                     KF_EINVAL);

    /* Ana takes one; a second would put her over capacity. */
    assert_int_equal(autoassign(f, seen, c[0], team, 0, ana), 0);
    assert_int_equal(autoassign(f, seen, c[1], team, 0, ana), KF_ECONFLICT);
    /* Never twice: c[0] is held now. */
    assert_int_equal(autoassign(f, seen, c[0], team, 0, bo), KF_ECONFLICT);
    /* Only to a member, only in its team, only an open one. */
    assert_int_equal(autoassign(f, seen, c[1], team, 0, cy), KF_ECONFLICT);
    assert_int_equal(autoassign(f, seen, c[1], team + 1, 0, bo), KF_ECONFLICT);
    assert_int_equal(suite_set_status(f, c[3], "pending"), 0);
    assert_int_equal(autoassign(f, seen, c[3], team, 0, bo), KF_ECONFLICT);
    assert_int_equal(autoassign(f, seen, c[1], team, 0, bo), 0);
    /* Passed on from a silent assignee: only from the one who holds it. */
    assert_int_equal(autoassign(f, seen, c[1], team, ana, cy), KF_ECONFLICT);
    assert_int_equal(
        change_agent(f, seen, ana, (kf_agent_change_t){.set_capacity = true, .capacity = 0}), 0);
    assert_int_equal(autoassign(f, seen, c[1], team, bo, ana), 0);
    int64_t holder, team_of;
    holder_and_team(f, c[1], &holder, &team_of);
    assert_int_equal(holder, ana);
    assert_int_equal(
        f->store->ops->conversation_autoassign(f->store, c[1], team, ana, ana, on_done, seen),
        KF_EINVAL);

    /* The open count on agents; disabling Ana lets go of hers in the same write. */
    assert_int_equal(suite_wait(f, f->store->ops->agent_by_id(f->store, ana, on_done, seen), seen),
                     0);
    assert_int_equal(last_result(seen)->agent.open_conversations, 2);
    assert_int_equal(change_agent(f, seen, bo, (kf_agent_change_t){.role = "admin"}), 0);
    assert_int_equal(
        change_agent(f, seen, ana,
                     (kf_agent_change_t){.state = KF_AGENT_STATE_DISABLE, .now = SUITE_NOW}),
        0);
    const result_copy_t *r = last_result(seen);
    assert_int_equal(r->released_count, 2);
    assert_int_equal(r->agent.open_conversations, 0);
    holder_and_team(f, c[0], &holder, &team_of);
    assert_int_equal(holder, 0);
    assert_int_equal(team_of, team);
    holder_and_team(f, c[1], &holder, &team_of);
    assert_int_equal(holder, 0);
    seen_free(seen);
}

/* Two stores on one database, as two nodes are: one team name, its case changed, created on
 * both at once, round after round: exactly one of each pair is made, the other is KF_EEXISTS. */
static void test_team_two_stores_at_once(void **state)
{
    suite_fixture_t *f = *state;
    kf_store_t *other = NULL;
    assert_int_equal(f->backend->open(f->db, &other), 0);
    enum { ROUNDS = 12 }; /* a list holds SUITE_MAX_AGENTS */
    char names[ROUNDS][2][16];
    seen_t *seen = seen_new();
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(names[i][0], sizeof names[i][0], "Sales %d", i);
        snprintf(names[i][1], sizeof names[i][1], "SALES %d", i);
        for (int s = 0; s < 2; s++) {
            kf_store_t *store = (i + s) % 2 == 0 ? f->store : other;
            kf_team_change_t team = {names[i][s], NULL, -1};
            assert_int_equal(store->ops->team_create(store, &team, SUITE_NOW, on_done, seen), 0);
        }
    }
    other->ops->flush(other);
    suite_flush(f);
    other->ops->flush(other);
    assert_int_equal(seen->result_count, 2 * ROUNDS);
    int made = 0;
    for (size_t i = 0; i < seen->result_count; i++) {
        assert_true(seen->results[i].rc == 0 || seen->results[i].rc == KF_EEXISTS);
        made += seen->results[i].rc == 0;
    }
    assert_int_equal(made, ROUNDS);
    kf_store_close(other);
    assert_int_equal(list_teams(f, seen), 0);
    assert_int_equal(listed.count, ROUNDS);
    seen_free(seen);
}

#define SUITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

const struct CMUnitTest store_suite_team_tests[] = {
    SUITE_TEST(test_team_create_update_list),
    SUITE_TEST(test_team_members),
    SUITE_TEST(test_conversation_team_views_and_counts),
    SUITE_TEST(test_capacity_release_and_autoassign),
    SUITE_TEST(test_team_two_stores_at_once),
};

const size_t store_suite_team_test_count =
    sizeof store_suite_team_tests / sizeof store_suite_team_tests[0];
