/* test_autoassign.c: the choice of automatic assignment, driven directly: only online members
 * under capacity, round-robin's turn after the last choice (wrapping, whatever the order given),
 * least-busy's fewest with ties taken in turn, the assignee a conversation is taken from passed
 * over (a timeout), and the names of the modes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "chat/autoassign.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int64_t pick(kf_autoassign_mode_t mode, const kf_autoassign_candidate_t *c, size_t n,
                    int64_t last, int64_t exclude)
{
    return kf_autoassign_pick(mode, c, n, last, exclude);
}

static void test_only_online_under_capacity(void **state)
{
    (void)state;
    kf_autoassign_candidate_t team[] = {
        {.agent_id = 1, .online = false, .open = 0, .capacity = 0}, /* away or offline */
        {.agent_id = 2, .online = true, .open = 3, .capacity = 3},  /* full */
        {.agent_id = 3, .online = true, .open = 9, .capacity = 0},  /* no cap */
    };
    assert_int_equal(pick(KF_AUTOASSIGN_ROUND_ROBIN, team, COUNT(team), 0, 0), 3);
    assert_int_equal(pick(KF_AUTOASSIGN_LEAST_BUSY, team, COUNT(team), 0, 0), 3);
    team[2].online = false;
    assert_int_equal(pick(KF_AUTOASSIGN_ROUND_ROBIN, team, COUNT(team), 0, 0), 0);
    assert_int_equal(pick(KF_AUTOASSIGN_LEAST_BUSY, team, COUNT(team), 0, 0), 0);
    team[1].open = 2; /* room for one */
    assert_int_equal(pick(KF_AUTOASSIGN_LEAST_BUSY, team, COUNT(team), 0, 0), 2);
    assert_int_equal(pick(KF_AUTOASSIGN_OFF, team, COUNT(team), 0, 0), 0);
    assert_int_equal(pick(KF_AUTOASSIGN_ROUND_ROBIN, NULL, 0, 0, 0), 0);
}

static void test_round_robin_turn(void **state)
{
    (void)state;
    /* Given out of order: the turn is by id. */
    kf_autoassign_candidate_t team[] = {
        {.agent_id = 7, .online = true},
        {.agent_id = 2, .online = true},
        {.agent_id = 5, .online = true},
    };
    int64_t last = 0;
    const int64_t expected[] = {2, 5, 7, 2, 5, 7};
    for (size_t i = 0; i < COUNT(expected); i++) {
        last = pick(KF_AUTOASSIGN_ROUND_ROBIN, team, COUNT(team), last, 0);
        assert_int_equal(last, expected[i]);
    }
    /* Busy or not, each takes its turn; one who is away is skipped, and the turn goes on. */
    team[2].open = 40;
    team[1].online = false;
    assert_int_equal(pick(KF_AUTOASSIGN_ROUND_ROBIN, team, COUNT(team), 2, 0), 5);
    assert_int_equal(pick(KF_AUTOASSIGN_ROUND_ROBIN, team, COUNT(team), 5, 0), 7);
    assert_int_equal(pick(KF_AUTOASSIGN_ROUND_ROBIN, team, COUNT(team), 7, 0), 5);
    /* The last choice left the team: the turn starts after its id all the same. */
    assert_int_equal(pick(KF_AUTOASSIGN_ROUND_ROBIN, team, COUNT(team), 6, 0), 7);
}

static void test_least_busy_and_ties(void **state)
{
    (void)state;
    kf_autoassign_candidate_t team[] = {
        {.agent_id = 1, .online = true, .open = 4},
        {.agent_id = 2, .online = true, .open = 1},
        {.agent_id = 3, .online = true, .open = 1},
        {.agent_id = 4, .online = true, .open = 2},
    };
    /* 2 and 3 hold one each: they take turns. */
    assert_int_equal(pick(KF_AUTOASSIGN_LEAST_BUSY, team, COUNT(team), 0, 0), 2);
    assert_int_equal(pick(KF_AUTOASSIGN_LEAST_BUSY, team, COUNT(team), 2, 0), 3);
    assert_int_equal(pick(KF_AUTOASSIGN_LEAST_BUSY, team, COUNT(team), 3, 0), 2);
    team[1].open = 2; /* after 2 got one */
    assert_int_equal(pick(KF_AUTOASSIGN_LEAST_BUSY, team, COUNT(team), 2, 0), 3);
    team[2].capacity = 1; /* 3 is full now */
    assert_int_equal(pick(KF_AUTOASSIGN_LEAST_BUSY, team, COUNT(team), 3, 0), 4);
}

static void test_timeout_passes_over_the_assignee(void **state)
{
    (void)state;
    kf_autoassign_candidate_t team[] = {
        {.agent_id = 1, .online = true, .open = 1},
        {.agent_id = 2, .online = true, .open = 5},
    };
    /* Taken from 1 (who holds fewest, and whose turn it would be): to 2. */
    assert_int_equal(pick(KF_AUTOASSIGN_LEAST_BUSY, team, COUNT(team), 2, 1), 2);
    assert_int_equal(pick(KF_AUTOASSIGN_ROUND_ROBIN, team, COUNT(team), 0, 1), 2);
    /* Nobody else eligible: nobody (the assignee keeps it meanwhile). */
    team[1].online = false;
    assert_int_equal(pick(KF_AUTOASSIGN_ROUND_ROBIN, team, COUNT(team), 0, 1), 0);
    assert_int_equal(pick(KF_AUTOASSIGN_LEAST_BUSY, team, COUNT(team), 0, 1), 0);
}

static void test_mode_names(void **state)
{
    (void)state;
    kf_autoassign_mode_t mode = KF_AUTOASSIGN_OFF;
    assert_int_equal(kf_autoassign_parse("round_robin", &mode), 0);
    assert_int_equal(mode, KF_AUTOASSIGN_ROUND_ROBIN);
    assert_int_equal(kf_autoassign_parse("least_busy", &mode), 0);
    assert_int_equal(mode, KF_AUTOASSIGN_LEAST_BUSY);
    assert_int_equal(kf_autoassign_parse("off", &mode), 0);
    assert_int_equal(mode, KF_AUTOASSIGN_OFF);
    assert_int_equal(kf_autoassign_parse("Round_Robin", &mode), KF_EINVAL);
    assert_int_equal(kf_autoassign_parse("", &mode), KF_EINVAL);
    assert_int_equal(kf_autoassign_parse(NULL, &mode), KF_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_online_under_capacity),
        cmocka_unit_test(test_round_robin_turn),
        cmocka_unit_test(test_least_busy_and_ties),
        cmocka_unit_test(test_timeout_passes_over_the_assignee),
        cmocka_unit_test(test_mode_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
