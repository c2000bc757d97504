/* store_suite_canned.c: the store test suite's tests of canned replies: what each agent sees
 * (the team's and their own), shortcuts unique ignoring ASCII case among those, also between two
 * creates queued together and between two stores on one database (two nodes), changes and
 * deletes by whom they belong to. */
#include "support/store_suite.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"

/* ---- helpers ---- */

static int create(suite_fixture_t *f, seen_t *seen, int64_t agent, bool team, const char *shortcut,
                  const char *body)
{
    return suite_wait(f,
                      f->store->ops->canned_create(f->store, agent, team, shortcut, body, SUITE_NOW,
                                                   on_done, seen),
                      seen);
}

static int update(suite_fixture_t *f, seen_t *seen, int64_t agent, bool admin, int64_t id,
                  const char *shortcut, const char *body)
{
    return suite_wait(f,
                      f->store->ops->canned_update(f->store, agent, admin, id, shortcut, body,
                                                   SUITE_NOW + 9, on_done, seen),
                      seen);
}

static int delete (suite_fixture_t *f, seen_t *seen, int64_t agent, bool admin, int64_t id)
{
    return suite_wait(f, f->store->ops->canned_delete(f->store, agent, admin, id, on_done, seen),
                      seen);
}

static int list(suite_fixture_t *f, seen_t *seen, int64_t agent)
{
    seen->canned_count = 0;
    return suite_wait(f, f->store->ops->canned_list(f->store, agent, on_canned, on_done, seen),
                      seen);
}

/* ---- tests ---- */

/* A new reply comes back as stored; each agent's list is the team's and their own, by shortcut
 * whatever its case, and survives a restart. */
static void test_canned_create_and_list(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent_as(f, "ana@example.com", "Ana", "admin");
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    seen_t *seen = seen_new();
    assert_int_equal(list(f, seen, bo), 0);
    assert_int_equal(seen->canned_count, 0);

    assert_int_equal(create(f, seen, ana, true, "refund", "Hi {visitor.name}, refunded."), 0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->has_canned);
    int64_t refund = r->canned.id;
    assert_true(refund > 0);
    assert_int_equal(r->canned.owner_id, 0);
    assert_string_equal(r->canned.shortcut, "refund");
    assert_string_equal(r->canned.body, "Hi {visitor.name}, refunded.");
    assert_int_equal(r->canned.created_at, SUITE_NOW);
    assert_int_equal(r->canned.updated_at, SUITE_NOW);
    assert_int_equal(create(f, seen, bo, false, "Bye", "Bye from Bo"), 0);
    assert_int_equal(last_result(seen)->canned.owner_id, bo);
    assert_int_equal(create(f, seen, ana, false, "ana", "Ana's own"), 0);
    assert_int_equal(create(f, seen, bo, false, "alpha", "Bo's first"), 0);

    suite_reopen(f);
    assert_int_equal(list(f, seen, bo), 0);
    assert_int_equal(last_result(seen)->count, 3);
    assert_int_equal(seen->canned_count, 3);
    assert_string_equal(seen->canned[0].shortcut, "alpha");
    assert_string_equal(seen->canned[1].shortcut, "Bye"); /* case ignored in the order */
    assert_string_equal(seen->canned[2].shortcut, "refund");
    assert_int_equal(seen->canned[2].id, refund);
    assert_int_equal(list(f, seen, ana), 0);
    assert_int_equal(seen->canned_count, 2);
    assert_string_equal(seen->canned[0].shortcut, "ana");
    assert_string_equal(seen->canned[1].shortcut, "refund");
    seen_free(seen);
}

/* A shortcut is taken, whatever its case, by a team reply for everyone and by a personal one for
 * its owner; another agent may have the same personal shortcut. */
static void test_canned_unique_shortcuts(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent_as(f, "ana@example.com", "Ana", "admin");
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    seen_t *seen = seen_new();
    assert_int_equal(create(f, seen, ana, true, "Refund", "team"), 0);
    assert_int_equal(create(f, seen, ana, true, "refund", "again"), KF_EEXISTS);
    assert_false(last_result(seen)->has_canned);
    assert_int_equal(create(f, seen, bo, false, "REFUND", "mine"), KF_EEXISTS);
    assert_int_equal(create(f, seen, bo, false, "hello", "Bo's"), 0);
    assert_int_equal(create(f, seen, ana, false, "Hello", "Ana's"), 0);
    assert_int_equal(create(f, seen, bo, false, "HELLO", "Bo's again"), KF_EEXISTS);
    /* A team one may not take its creator's own personal shortcut. */
    assert_int_equal(create(f, seen, ana, true, "hello", "team hello"), KF_EEXISTS);
    assert_int_equal(list(f, seen, bo), 0);
    assert_int_equal(seen->canned_count, 2);

    /* Two creates queued together, as two requests at once: the first goes, the second finds
     * the shortcut taken. */
    assert_int_equal(
        f->store->ops->canned_create(f->store, ana, true, "ship", "one", SUITE_NOW, on_done, seen),
        0);
    assert_int_equal(
        f->store->ops->canned_create(f->store, bo, false, "Ship", "two", SUITE_NOW, on_done, seen),
        0);
    suite_flush(f);
    assert_int_equal(seen->results[seen->result_count - 2].rc, 0);
    assert_int_equal(last_result(seen)->rc, KF_EEXISTS);
    seen_free(seen);
}

/* A change: to the owner of a personal one (another agent finds nothing), to an admin for a team
 * one; a shortcut changed to one taken is refused, to its own in another case is not. */
static void test_canned_update(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent_as(f, "ana@example.com", "Ana", "admin");
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    seen_t *seen = seen_new();
    assert_int_equal(create(f, seen, ana, true, "refund", "team"), 0);
    int64_t team = last_result(seen)->canned.id;
    assert_int_equal(create(f, seen, bo, false, "mine", "Bo's"), 0);
    int64_t mine = last_result(seen)->canned.id;

    assert_int_equal(update(f, seen, bo, false, mine, NULL, "Bo's, better"), 0);
    const result_copy_t *r = last_result(seen);
    assert_string_equal(r->canned.shortcut, "mine");
    assert_string_equal(r->canned.body, "Bo's, better");
    assert_int_equal(r->canned.created_at, SUITE_NOW);
    assert_int_equal(r->canned.updated_at, SUITE_NOW + 9);
    assert_int_equal(update(f, seen, bo, false, mine, "MINE", NULL), 0);
    assert_string_equal(last_result(seen)->canned.shortcut, "MINE");
    assert_int_equal(update(f, seen, bo, false, mine, "Refund", NULL), KF_EEXISTS);
    /* Someone else's personal reply is not there for Ana, admin or not. */
    assert_int_equal(update(f, seen, ana, true, mine, NULL, "x"), KF_ENOTFOUND);
    assert_int_equal(update(f, seen, bo, false, team, NULL, "x"), KF_EFORBIDDEN);
    assert_int_equal(update(f, seen, ana, true, team, "refunds", "Refunded."), 0);
    assert_string_equal(last_result(seen)->canned.shortcut, "refunds");
    assert_int_equal(update(f, seen, ana, true, team + 100, NULL, "x"), KF_ENOTFOUND);
    assert_int_equal(f->store->ops->canned_update(f->store, ana, true, team, NULL, NULL, SUITE_NOW,
                                                  on_done, seen),
                     KF_EINVAL);
    assert_int_equal(
        f->store->ops->canned_update(f->store, ana, true, team, "", NULL, SUITE_NOW, on_done, seen),
        KF_EINVAL);
    assert_int_equal(
        f->store->ops->canned_create(f->store, ana, true, "x", "", SUITE_NOW, on_done, seen),
        KF_EINVAL);

    assert_int_equal(list(f, seen, bo), 0);
    assert_int_equal(seen->canned_count, 2);
    assert_string_equal(seen->canned[0].body, "Bo's, better");
    assert_string_equal(seen->canned[1].body, "Refunded.");
    seen_free(seen);
}

/* A delete, by the same rules as a change; the shortcut is free again after it. */
static void test_canned_delete(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent_as(f, "ana@example.com", "Ana", "admin");
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    seen_t *seen = seen_new();
    assert_int_equal(create(f, seen, ana, true, "refund", "team"), 0);
    int64_t team = last_result(seen)->canned.id;
    assert_int_equal(create(f, seen, bo, false, "mine", "Bo's"), 0);
    int64_t mine = last_result(seen)->canned.id;

    assert_int_equal(delete (f, seen, bo, false, team), KF_EFORBIDDEN);
    assert_int_equal(delete (f, seen, ana, true, mine), KF_ENOTFOUND);
    assert_int_equal(delete (f, seen, bo, false, mine), 0);
    assert_int_equal(delete (f, seen, bo, false, mine), KF_ENOTFOUND);
    assert_int_equal(delete (f, seen, ana, true, team), 0);
    assert_int_equal(list(f, seen, bo), 0);
    assert_int_equal(seen->canned_count, 0);
    assert_int_equal(create(f, seen, bo, false, "refund", "now mine"), 0);
    seen_free(seen);
}

/* Two stores on one database, as two nodes are: a team reply on one and the same shortcut as a
 * personal reply on the other, queued at once, round after round. No unique index can tell
 * those two apart (their owners differ), so only the check in the write's own turn can: exactly
 * one of each pair is stored, the other is KF_EEXISTS. */
static void test_canned_two_stores_at_once(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent_as(f, "ana@example.com", "Ana", "admin");
    kf_store_t *other = NULL;
    assert_int_equal(f->backend->open(f->db, &other), 0);
    enum { ROUNDS = 12 }; /* a list holds SUITE_MAX_AGENTS */
    char shortcuts[ROUNDS][2][16];
    seen_t *seen = seen_new();
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(shortcuts[i][0], sizeof shortcuts[i][0], "greet%d", i);
        snprintf(shortcuts[i][1], sizeof shortcuts[i][1], "GREET%d", i);
        /* Which store goes first alternates, so neither always wins. */
        kf_store_t *first = i % 2 == 0 ? f->store : other;
        kf_store_t *second = i % 2 == 0 ? other : f->store;
        assert_int_equal(first->ops->canned_create(first, ana, true, shortcuts[i][0], "Hello!",
                                                   SUITE_NOW, on_done, seen),
                         0);
        assert_int_equal(second->ops->canned_create(second, ana, false, shortcuts[i][1], "Hi!",
                                                    SUITE_NOW, on_done, seen),
                         0);
    }
    other->ops->flush(other);
    suite_flush(f);
    other->ops->flush(other);
    assert_int_equal(seen->result_count, 2 * ROUNDS);
    int stored = 0;
    for (size_t i = 0; i < seen->result_count; i++) {
        int rc = seen->results[i].rc;
        assert_true(rc == 0 || rc == KF_EEXISTS);
        stored += rc == 0;
    }
    assert_int_equal(stored, ROUNDS);
    kf_store_close(other);
    assert_int_equal(list(f, seen, ana), 0);
    assert_int_equal(seen->canned_count, ROUNDS);
    seen_free(seen);
}

#define SUITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

const struct CMUnitTest store_suite_canned_tests[] = {
    SUITE_TEST(test_canned_create_and_list),
    SUITE_TEST(test_canned_unique_shortcuts),
    SUITE_TEST(test_canned_update),
    SUITE_TEST(test_canned_delete),
    SUITE_TEST(test_canned_two_stores_at_once),
};

const size_t store_suite_canned_test_count =
    sizeof store_suite_canned_tests / sizeof store_suite_canned_tests[0];
