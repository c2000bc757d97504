/* store_suite_reports.c: the store test suite's tests of reports: a hand-made history with
 * known times (conversations, visitor messages, agents' replies, private notes, resolutions, a
 * reopen, a team, ratings), and every figure of every grouping compared with numbers worked out
 * by hand in the comments (nearest-rank percentiles over even and odd counts). */
#include "support/store_suite.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"

#define MIN INT64_C(60000)
#define S INT64_C(1000)
#define H SUITE_HOUR
#define D0 INT64_C(1764028800000) /* 2025-11-25T00:00:00Z */
#define DAY (24 * H)

#define MAX_ROWS 8

typedef struct report_rows {
    size_t count;
    kf_report_row_t rows[MAX_ROWS];
    char names[MAX_ROWS][32];
    int rc;
    bool has_totals;
    kf_report_row_t totals;
} report_rows_t;

static report_rows_t got;

static int on_row(void *ctx, const kf_report_row_t *row)
{
    (void)ctx;
    if (got.count < MAX_ROWS) {
        got.rows[got.count] = *row;
        snprintf(got.names[got.count], sizeof got.names[0], "%s", row->name);
        got.rows[got.count].name = got.names[got.count];
    }
    got.count++;
    return 0;
}

static void on_report(void *ctx, const kf_store_result_t *result)
{
    (void)ctx;
    got.rc = result->rc;
    got.has_totals = result->report_totals != NULL;
    if (got.has_totals) {
        got.totals = *result->report_totals;
        got.totals.name = "";
    }
}

static int run(suite_fixture_t *f, kf_report_query_t query)
{
    memset(&got, 0, sizeof got);
    got.rc = -1;
    int rc = f->store->ops->report(f->store, &query, on_row, on_report, NULL);
    if (rc != 0)
        return rc;
    suite_flush(f);
    return got.rc;
}

/* The expected figures of one row: conversations, visitor messages, agent messages, notes,
 * answered, first response median and p90, resolved, resolution median and p90, unanswered. */
static void expect(const kf_report_row_t *row, int64_t conversations, int64_t visitor_messages,
                   int64_t agent_messages, int64_t notes, int64_t answered, int64_t fr_median,
                   int64_t fr_p90, int64_t resolved, int64_t res_median, int64_t res_p90,
                   int64_t unanswered)
{
    assert_int_equal(row->conversations, conversations);
    assert_int_equal(row->visitor_messages, visitor_messages);
    assert_int_equal(row->agent_messages, agent_messages);
    assert_int_equal(row->notes, notes);
    assert_int_equal(row->answered, answered);
    assert_int_equal(row->first_response_median, fr_median);
    assert_int_equal(row->first_response_p90, fr_p90);
    assert_int_equal(row->resolved, resolved);
    assert_int_equal(row->resolution_median, res_median);
    assert_int_equal(row->resolution_p90, res_p90);
    assert_int_equal(row->unanswered, unanswered);
}

static void note(suite_fixture_t *f, int64_t conversation_id, int64_t agent_id, int64_t now)
{
    seen_t *seen = seen_new();
    kf_message_new_t m = {.conversation_id = conversation_id,
                          .sender = KF_SENDER_AGENT,
                          .agent_id = agent_id,
                          .body = "a note",
                          .now = now,
                          .is_private = true};
    assert_int_equal(suite_send(f, seen, &m), 0);
    seen_free(seen);
}

static void assign(suite_fixture_t *f, int64_t conversation_id, int64_t agent_id, int64_t team_id)
{
    seen_t *seen = seen_new();
    kf_conversation_assign_t a = {.conversation_id = conversation_id,
                                  .set_agent = true,
                                  .agent_id = agent_id,
                                  .set_team = team_id != 0,
                                  .team_id = team_id};
    assert_int_equal(
        suite_wait(f, f->store->ops->conversation_assign(f->store, &a, on_done, seen), seen), 0);
    seen_free(seen);
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

static int64_t make_team(suite_fixture_t *f, const char *name)
{
    seen_t *seen = seen_new();
    kf_team_change_t team = {.name = name, .reassign_after = -1};
    assert_int_equal(
        suite_wait(f, f->store->ops->team_create(f->store, &team, SUITE_NOW, on_done, seen), seen),
        0);
    int64_t id = last_result(seen)->team.id;
    seen_free(seen);
    return id;
}

typedef struct history {
    int64_t ana, bo, team;
    int64_t visitors[7]; /* v1 to v6 */
} history_t;

/* Day 0 (D0, UTC):
 * - c1 (v1, team T, held by Ana): v1 at 01:00; Ana replies at 01:01 (first response 60 s);
 *   v1 at 01:02; Ana's note at 01:03; Ana at 01:04; resolved at 02:00 (1 h).
 * - c2 (v2, held by Bo): v2 at 03:00; Ana's note at 03:00:30 (a note is no answer); Bo at
 *   03:02 (120 s); resolved at 05:00, reopened by v2 at 06:00, resolved at 07:00 (4 h).
 * - c3 (v3, held by Bo): v3 at 04:00, never answered.
 * Day 1:
 * - c4 (v4, team T, held by Ana): v4 at 01:00; Bo at 01:05 (300 s); resolved at 03:00 (2 h).
 * - c5 (v5, nobody's): v5 at 02:00; Ana at 02:10 (600 s).
 * - c6 (v6, nobody's): v6 at 23:30 (day 2 at UTC+1), never answered.
 * Totals: 6 conversations; 8 visitor messages, 5 agent messages, 2 notes; first responses
 * [60, 120, 300, 600] s: median (rank 2) 120 s, p90 (rank ceil(3.6) = 4) 600 s; resolutions
 * [1, 2, 4] h: median (rank 2) 2 h, p90 (rank ceil(2.7) = 3) 4 h; unanswered 2. */
static history_t make_history(suite_fixture_t *f)
{
    history_t h;
    h.ana = suite_add_agent(f, "ana@example.com", "Ana, \"the first\"");
    h.bo = suite_add_agent(f, "bo@example.com", "Bo");
    h.team = make_team(f, "Sales");
    int64_t v[7];
    for (int i = 1; i <= 6; i++) {
        char token[16];
        snprintf(token, sizeof token, "token-%d", i);
        v[i] = suite_add_visitor(f, token, "");
        h.visitors[i] = v[i];
    }
    int64_t c1 = suite_open_conversation(f, v[1], "hi", D0 + 1 * H, NULL);
    assign(f, c1, h.ana, h.team);
    suite_add_message_at(f, c1, h.ana, "hello", D0 + 1 * H + 1 * MIN);
    suite_add_message_at(f, c1, 0, "thanks", D0 + 1 * H + 2 * MIN);
    note(f, c1, h.ana, D0 + 1 * H + 3 * MIN);
    suite_add_message_at(f, c1, h.ana, "bye", D0 + 1 * H + 4 * MIN);
    set_status_at(f, c1, "resolved", D0 + 2 * H);

    int64_t c2 = suite_open_conversation(f, v[2], "hi", D0 + 3 * H, NULL);
    assign(f, c2, h.bo, 0);
    note(f, c2, h.ana, D0 + 3 * H + 30 * S);
    suite_add_message_at(f, c2, h.bo, "hello", D0 + 3 * H + 2 * MIN);
    set_status_at(f, c2, "resolved", D0 + 5 * H);
    assert_int_equal(suite_open_conversation(f, v[2], "again", D0 + 6 * H, NULL), c2);
    /* Reopened: c2 is not resolved now, only c1 is. */
    assert_int_equal(run(f, (kf_report_query_t){.from = D0, .to = D0 + DAY}), 0);
    assert_int_equal(got.totals.resolved, 1);
    assert_int_equal(got.totals.resolution_median, 1 * H);
    set_status_at(f, c2, "resolved", D0 + 7 * H);

    int64_t c3 = suite_open_conversation(f, v[3], "hi", D0 + 4 * H, NULL);
    assign(f, c3, h.bo, 0);

    int64_t c4 = suite_open_conversation(f, v[4], "hi", D0 + DAY + 1 * H, NULL);
    assign(f, c4, h.ana, h.team);
    suite_add_message_at(f, c4, h.bo, "hello", D0 + DAY + 1 * H + 5 * MIN);
    set_status_at(f, c4, "resolved", D0 + DAY + 3 * H);

    int64_t c5 = suite_open_conversation(f, v[5], "hi", D0 + DAY + 2 * H, NULL);
    suite_add_message_at(f, c5, h.ana, "hello", D0 + DAY + 2 * H + 10 * MIN);

    suite_open_conversation(f, v[6], "hi", D0 + DAY + 23 * H + 30 * MIN, NULL);
    return h;
}

static void test_report_by_day(void **state)
{
    suite_fixture_t *f = *state;
    make_history(f);
    assert_int_equal(run(f, (kf_report_query_t){.from = D0, .to = D0 + 3 * DAY}), 0);
    assert_true(got.has_totals);
    expect(&got.totals, 6, 8, 5, 2, 4, 120 * S, 600 * S, 3, 2 * H, 4 * H, 2);
    assert_int_equal(got.count, 3); /* every day, the empty one too */
    assert_int_equal(got.rows[0].key, D0);
    assert_string_equal(got.rows[0].name, "");
    /* Day 0: c1, c2, c3; first responses [60, 120]: median rank 1, p90 rank 2; resolutions
     * [1 h, 4 h]. */
    expect(&got.rows[0], 3, 5, 3, 2, 2, 60 * S, 120 * S, 2, 1 * H, 4 * H, 1);
    assert_int_equal(got.rows[1].key, D0 + DAY);
    expect(&got.rows[1], 3, 3, 2, 0, 2, 300 * S, 600 * S, 1, 2 * H, 2 * H, 1);
    assert_int_equal(got.rows[2].key, D0 + 2 * DAY);
    expect(&got.rows[2], 0, 0, 0, 0, 0, -1, -1, 0, -1, -1, 0);

    /* At UTC+1 days start at 23:00 UTC: the period's first hour is the first day's, c6 is day
     * 2's, and the last hour starts a fourth day. */
    assert_int_equal(run(f, (kf_report_query_t){.from = D0, .to = D0 + 3 * DAY, .utc_offset = 60}),
                     0);
    assert_int_equal(got.count, 4);
    assert_int_equal(got.rows[0].key, D0 - H);
    expect(&got.rows[1], 2, 2, 2, 0, 2, 300 * S, 600 * S, 1, 2 * H, 2 * H, 0);
    expect(&got.rows[2], 1, 1, 0, 0, 0, -1, -1, 0, -1, -1, 1);
    assert_int_equal(got.rows[3].key, D0 + 3 * DAY - H);

    /* Days a zone gives (a 23-hour one first, as where clocks go forward): c6 (day 1, 23:30)
     * falls in the third. */
    const int64_t starts[] = {D0, D0 + 23 * H, D0 + 47 * H};
    assert_int_equal(run(f, (kf_report_query_t){.from = D0,
                                                .to = D0 + 3 * DAY,
                                                .utc_offset = 600,
                                                .day_starts = starts,
                                                .day_count = 3}),
                     0);
    assert_int_equal(got.count, 3);
    assert_int_equal(got.rows[1].key, D0 + 23 * H);
    assert_int_equal(got.rows[0].conversations, 3);
    assert_int_equal(got.rows[1].conversations, 2);
    assert_int_equal(got.rows[2].conversations, 1);
    assert_int_equal(got.rows[2].unanswered, 1);

    /* A period of part of day 0: the conversations created in it, with all their figures
     * whenever those came (c2's reply and resolutions are after the period), and the messages
     * written in it: c1's five (01:00 to 01:04) and c2's first (03:00). */
    assert_int_equal(run(f, (kf_report_query_t){.from = D0 + H, .to = D0 + 3 * H + S}), 0);
    expect(&got.totals, 2, 3, 2, 1, 2, 60 * S, 120 * S, 2, 1 * H, 4 * H, 0);
}

static void test_report_by_agent(void **state)
{
    suite_fixture_t *f = *state;
    history_t h = make_history(f);
    assert_int_equal(
        run(f, (kf_report_query_t){.from = D0, .to = D0 + 3 * DAY, .group = KF_REPORT_AGENT}), 0);
    expect(&got.totals, 6, 8, 5, 2, 4, 120 * S, 600 * S, 3, 2 * H, 4 * H, 2);
    assert_int_equal(got.count, 2);
    /* Ana: first answered c1 and c5 ([60, 600] s), wrote 3 replies and both notes, held c1 and
     * c4 when they were resolved ([1, 2] h). */
    assert_int_equal(got.rows[0].key, h.ana);
    assert_string_equal(got.rows[0].name, "Ana, \"the first\"");
    expect(&got.rows[0], 2, 0, 3, 2, 2, 60 * S, 600 * S, 2, 1 * H, 2 * H, 0);
    /* Bo: first answered c2 and c4 ([120, 300] s), holds c3 unanswered, resolved c2 (4 h). */
    assert_int_equal(got.rows[1].key, h.bo);
    assert_string_equal(got.rows[1].name, "Bo");
    expect(&got.rows[1], 3, 0, 2, 0, 2, 120 * S, 300 * S, 1, 4 * H, 4 * H, 1);

    /* An agent's own report: only their row, and totals that are theirs. */
    assert_int_equal(run(f, (kf_report_query_t){.from = D0,
                                                .to = D0 + 3 * DAY,
                                                .group = KF_REPORT_AGENT,
                                                .agent_id = h.bo}),
                     0);
    assert_int_equal(got.count, 1);
    assert_int_equal(got.rows[0].key, h.bo);
    expect(&got.totals, 3, 0, 2, 0, 2, 120 * S, 300 * S, 1, 4 * H, 4 * H, 1);
    /* ... by day: Ana's day 0 is c1 (and both her notes), day 1 c5 and c4's resolution. */
    assert_int_equal(run(f, (kf_report_query_t){.from = D0, .to = D0 + 2 * DAY, .agent_id = h.ana}),
                     0);
    assert_int_equal(got.count, 2);
    expect(&got.rows[0], 1, 0, 2, 2, 1, 60 * S, 60 * S, 1, 1 * H, 1 * H, 0);
    expect(&got.rows[1], 1, 0, 1, 0, 1, 600 * S, 600 * S, 1, 2 * H, 2 * H, 0);
}

static void test_report_by_team(void **state)
{
    suite_fixture_t *f = *state;
    history_t h = make_history(f);
    assert_int_equal(
        run(f, (kf_report_query_t){.from = D0, .to = D0 + 3 * DAY, .group = KF_REPORT_TEAM}), 0);
    assert_int_equal(got.count, 2);
    /* No team: c2, c3, c5, c6. */
    assert_int_equal(got.rows[0].key, 0);
    assert_string_equal(got.rows[0].name, "");
    expect(&got.rows[0], 4, 5, 2, 1, 2, 120 * S, 600 * S, 1, 4 * H, 4 * H, 2);
    /* Sales: c1 and c4. */
    assert_int_equal(got.rows[1].key, h.team);
    assert_string_equal(got.rows[1].name, "Sales");
    expect(&got.rows[1], 2, 3, 3, 1, 2, 60 * S, 300 * S, 2, 1 * H, 2 * H, 0);
    /* One team's report: its conversations and their messages alone. */
    assert_int_equal(run(f, (kf_report_query_t){.from = D0, .to = D0 + 3 * DAY, .team_id = h.team}),
                     0);
    expect(&got.totals, 2, 3, 3, 1, 2, 60 * S, 300 * S, 2, 1 * H, 2 * H, 0);
    expect(&got.rows[0], 1, 2, 2, 1, 1, 60 * S, 60 * S, 1, 1 * H, 1 * H, 0);
}

static void rate(suite_fixture_t *f, int64_t visitor_id, const char *rating, int64_t now)
{
    seen_t *seen = seen_new();
    assert_int_equal(suite_wait(f,
                                f->store->ops->conversation_rate(f->store, visitor_id, rating, "",
                                                                 now, on_done, seen),
                                seen),
                     0);
    seen_free(seen);
}

/* Ratings on the history: c1 (v1, Ana's resolution, Sales) good, then reopened by v1 (it stays
 * counted, and Ana's, though resolved_by is cleared); c2 (v2, Bo's resolution, no team) bad;
 * c4 (v4, Ana's, Sales) bad, changed to good. c3 is open: no rating. Each counts on the day its
 * conversation was created, as every conversation figure does. */
static void test_report_ratings(void **state)
{
    suite_fixture_t *f = *state;
    history_t h = make_history(f);
    rate(f, h.visitors[1], "good", D0 + DAY + 5 * H);
    suite_open_conversation(f, h.visitors[1], "one more thing", D0 + DAY + 6 * H, NULL);
    rate(f, h.visitors[2], "bad", D0 + DAY + 5 * H);
    rate(f, h.visitors[4], "bad", D0 + DAY + 5 * H);
    rate(f, h.visitors[4], "good", D0 + DAY + 6 * H);
    seen_t *seen = seen_new();
    assert_int_equal(suite_wait(f,
                                f->store->ops->conversation_rate(f->store, h.visitors[3], "bad", "",
                                                                 D0 + DAY + 5 * H, on_done, seen),
                                seen),
                     KF_ECONFLICT);
    seen_free(seen);

    assert_int_equal(run(f, (kf_report_query_t){.from = D0, .to = D0 + 3 * DAY}), 0);
    assert_int_equal(got.totals.rated_good, 2);
    assert_int_equal(got.totals.rated_bad, 1);
    assert_int_equal(got.rows[0].rated_good, 1); /* c1 */
    assert_int_equal(got.rows[0].rated_bad, 1);  /* c2 */
    assert_int_equal(got.rows[1].rated_good, 1); /* c4 */
    assert_int_equal(got.rows[1].rated_bad, 0);
    assert_int_equal(got.rows[2].rated_good + got.rows[2].rated_bad, 0);

    assert_int_equal(
        run(f, (kf_report_query_t){.from = D0, .to = D0 + 3 * DAY, .group = KF_REPORT_AGENT}), 0);
    assert_int_equal(got.rows[0].key, h.ana);
    assert_int_equal(got.rows[0].rated_good, 2);
    assert_int_equal(got.rows[0].rated_bad, 0);
    assert_int_equal(got.rows[1].key, h.bo);
    assert_int_equal(got.rows[1].rated_good, 0);
    assert_int_equal(got.rows[1].rated_bad, 1);
    /* Bo's own report: only his. */
    assert_int_equal(run(f, (kf_report_query_t){.from = D0, .to = D0 + 3 * DAY, .agent_id = h.bo}),
                     0);
    assert_int_equal(got.totals.rated_good, 0);
    assert_int_equal(got.totals.rated_bad, 1);

    assert_int_equal(
        run(f, (kf_report_query_t){.from = D0, .to = D0 + 3 * DAY, .group = KF_REPORT_TEAM}), 0);
    assert_int_equal(got.rows[0].key, 0);
    assert_int_equal(got.rows[0].rated_good, 0);
    assert_int_equal(got.rows[0].rated_bad, 1);
    assert_int_equal(got.rows[1].key, h.team);
    assert_int_equal(got.rows[1].rated_good, 2);
    assert_int_equal(got.rows[1].rated_bad, 0);
    /* A period that holds day 1 only: c4. */
    assert_int_equal(run(f, (kf_report_query_t){.from = D0 + DAY, .to = D0 + 2 * DAY}), 0);
    assert_int_equal(got.totals.rated_good, 1);
    assert_int_equal(got.totals.rated_bad, 0);
}

static void test_report_refuses_bad_queries(void **state)
{
    suite_fixture_t *f = *state;
    kf_report_query_t bad[] = {
        {.from = D0, .to = D0},
        {.from = D0 + 1, .to = D0},
        {.from = D0, .to = D0 + 367 * DAY},
        {.from = D0, .to = D0 + DAY, .utc_offset = 14 * 60 + 1},
        {.from = D0, .to = D0 + DAY, .utc_offset = -14 * 60 - 1},
        {.from = D0, .to = D0 + DAY, .group = (kf_report_group_t)3},
        {.from = D0, .to = D0 + DAY, .agent_id = -1},
        {.from = D0, .to = D0 + DAY, .team_id = -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(f->store->ops->report(f->store, &bad[i], on_row, on_report, NULL),
                         KF_EINVAL);
    /* Days that start after the period, go backwards, or start at its end. */
    const int64_t late[] = {D0 + 1, D0 + H};
    const int64_t backwards[] = {D0, D0 + 2 * H, D0 + H};
    const int64_t at_end[] = {D0, D0 + DAY};
    const struct {
        const int64_t *starts;
        size_t count;
    } days[] = {{late, 2}, {backwards, 3}, {at_end, 2}, {late, 0}};
    for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
        kf_report_query_t q = {
            .from = D0, .to = D0 + DAY, .day_starts = days[i].starts, .day_count = days[i].count};
        assert_int_equal(f->store->ops->report(f->store, &q, on_row, on_report, NULL), KF_EINVAL);
    }
    /* A year, a leap one, is the most. */
    assert_int_equal(run(f, (kf_report_query_t){.from = D0, .to = D0 + 366 * DAY}), 0);
    assert_int_equal(got.count, 366);
}

#define SUITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

const struct CMUnitTest store_suite_report_tests[] = {
    SUITE_TEST(test_report_by_day),
    SUITE_TEST(test_report_by_agent),
    SUITE_TEST(test_report_by_team),
    SUITE_TEST(test_report_ratings),
    SUITE_TEST(test_report_refuses_bad_queries),
};

const size_t store_suite_report_test_count =
    sizeof store_suite_report_tests / sizeof store_suite_report_tests[0];
