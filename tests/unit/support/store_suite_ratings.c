/* store_suite_ratings.c: the store test suite's tests of ratings (conversation_rate): only a
 * resolved conversation takes one, the visitor may change it while it stays resolved, a reopen
 * keeps it but it no longer rates the resolution the conversation is in, and what is refused at
 * once. The reports' counts of them are in store_suite_reports.c. */
#include "support/store_suite.h"

#include <string.h>

#include "base/err.h"

#define H SUITE_HOUR

static int rate(suite_fixture_t *f, int64_t visitor_id, const char *rating, const char *comment,
                int64_t now)
{
    seen_t *seen = seen_new();
    int rc = suite_wait(
        f,
        f->store->ops->conversation_rate(f->store, visitor_id, rating, comment, now, on_done, seen),
        seen);
    seen_free(seen);
    return rc;
}

static void set_status_at(suite_fixture_t *f, int64_t conversation_id, const char *status,
                          int64_t now)
{
    seen_t *seen = seen_new();
    assert_int_equal(suite_wait(f,
                                f->store->ops->conversation_set_status(
                                    f->store, conversation_id, status, 0, now, on_done, seen),
                                seen),
                     0);
    seen_free(seen);
}

/* The conversation's rating as conversation_get reads it. */
static void expect_rating(suite_fixture_t *f, int64_t conversation_id, const char *rating,
                          const char *comment, int64_t rated_at, bool current)
{
    seen_t *seen = suite_get_conversation(f, conversation_id);
    const kf_conversation_t *c = &last_result(seen)->conversation;
    assert_string_equal(c->rating, rating);
    assert_string_equal(c->rating_comment, comment);
    assert_int_equal(c->rated_at, rated_at);
    assert_int_equal(c->rating_current, current);
    seen_free(seen);
}

static void test_rate_only_resolved(void **state)
{
    suite_fixture_t *f = *state;
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = suite_add_visitor(f, "token-1", "Zoë");
    /* Nothing to rate yet: no conversation, then an open one. */
    assert_int_equal(rate(f, visitor, "good", "", SUITE_NOW), KF_ENOTFOUND);
    int64_t c = suite_open_conversation(f, visitor, "hi", SUITE_NOW, NULL);
    assert_int_equal(rate(f, visitor, "good", "", SUITE_NOW), KF_ECONFLICT);
    expect_rating(f, c, "", "", 0, false);
    suite_add_message_at(f, c, agent, "hello", SUITE_NOW + 1);

    set_status_at(f, c, "resolved", SUITE_NOW + H);
    seen_t *seen = seen_new();
    assert_int_equal(
        suite_wait(f,
                   f->store->ops->conversation_rate(f->store, visitor, "bad", "Too slow, «sorry»",
                                                    SUITE_NOW + 2 * H, on_done, seen),
                   seen),
        0);
    assert_int_equal(last_result(seen)->id, c);
    seen_free(seen);
    expect_rating(f, c, "bad", "Too slow, «sorry»", SUITE_NOW + 2 * H, true);
    /* Changed while it stays resolved: the newest replaces it, comment and all. */
    assert_int_equal(rate(f, visitor, "good", "", SUITE_NOW + 3 * H), 0);
    expect_rating(f, c, "good", "", SUITE_NOW + 3 * H, true);

    /* The visitor writes again: reopened, the rating stays for the agents but rates nothing
     * current, and cannot be changed until the next resolution. */
    suite_open_conversation(f, visitor, "one more thing", SUITE_NOW + 4 * H, NULL);
    expect_rating(f, c, "good", "", SUITE_NOW + 3 * H, false);
    assert_int_equal(rate(f, visitor, "bad", "", SUITE_NOW + 5 * H), KF_ECONFLICT);
    expect_rating(f, c, "good", "", SUITE_NOW + 3 * H, false);
    /* Resolved again: the old rating is not this resolution's until the visitor rates it. */
    set_status_at(f, c, "resolved", SUITE_NOW + 6 * H);
    expect_rating(f, c, "good", "", SUITE_NOW + 3 * H, false);
    assert_int_equal(rate(f, visitor, "bad", "again", SUITE_NOW + 7 * H), 0);
    expect_rating(f, c, "bad", "again", SUITE_NOW + 7 * H, true);
    /* Snoozed or pending is not resolved either. */
    set_status_at(f, c, "pending", SUITE_NOW + 8 * H);
    assert_int_equal(rate(f, visitor, "good", "", SUITE_NOW + 9 * H), KF_ECONFLICT);
    expect_rating(f, c, "bad", "again", SUITE_NOW + 7 * H, false);
}

static void test_rate_survives_reopen(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-1", "");
    int64_t c = suite_open_conversation(f, visitor, "hi", SUITE_NOW, NULL);
    set_status_at(f, c, "resolved", SUITE_NOW + H);
    assert_int_equal(rate(f, visitor, "good", "thanks", SUITE_NOW + 2 * H), 0);
    suite_reopen(f); /* what is written stays written */
    expect_rating(f, c, "good", "thanks", SUITE_NOW + 2 * H, true);
    /* Another visitor's conversation is not theirs to rate. */
    int64_t other = suite_add_visitor(f, "token-2", "");
    assert_int_equal(rate(f, other, "bad", "", SUITE_NOW + 3 * H), KF_ENOTFOUND);
    expect_rating(f, c, "good", "thanks", SUITE_NOW + 2 * H, true);
}

static void test_rate_refuses_at_once(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-1", "");
    kf_store_t *store = f->store;
    seen_t *seen = seen_new();
    const char *bad[] = {"", "Good", "meh", "good ", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(
            store->ops->conversation_rate(store, visitor, bad[i], "", SUITE_NOW, on_done, seen),
            KF_EINVAL);
    assert_int_equal(
        store->ops->conversation_rate(store, visitor, "good", NULL, SUITE_NOW, on_done, seen),
        KF_EINVAL);
    assert_int_equal(store->ops->conversation_rate(store, 0, "good", "", SUITE_NOW, on_done, seen),
                     KF_EINVAL);
    assert_int_equal(
        store->ops->conversation_rate(store, visitor, "good", "", SUITE_NOW, NULL, NULL),
        KF_EINVAL);
    suite_flush(f);
    assert_int_equal(seen->calls, 0); /* done never runs for a refusal */
    seen_free(seen);
}

#define SUITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

const struct CMUnitTest store_suite_rating_tests[] = {
    SUITE_TEST(test_rate_only_resolved),
    SUITE_TEST(test_rate_survives_reopen),
    SUITE_TEST(test_rate_refuses_at_once),
};

const size_t store_suite_rating_test_count =
    sizeof store_suite_rating_tests / sizeof store_suite_rating_tests[0];
