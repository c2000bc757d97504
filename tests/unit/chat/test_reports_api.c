/* test_reports_api.c: GET /api/reports (src/chat/reports_api.c) over a real server
 * (tests/unit/support/chat_fixture.h): an admin sees every agent's figures, an agent only their
 * own whatever they ask; the CSV download (type, file name, quoting, a name a spreadsheet would
 * run as a formula); 400 naming what is allowed for each bad parameter, none of which reaches
 * the store; out of memory while answering is a 500, never a crash. */
#include "support/chat_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"

static int64_t agent_id, admin_id;
static char period[96]; /* from=...&to=...: a day either side of now */

static int64_t my_id(cf_who_t who)
{
    cf_response_t *r = cf_request(who, "GET", "/api/agent/me", NULL);
    assert_int_equal(r->status, 200);
    int64_t id = json_integer_value(json_object_get(json_object_get(r->json, "agent"), "id"));
    cf_response_free(r);
    return id;
}

static void reply(cf_who_t who, const char *body)
{
    char path[96];
    cf_expand("/api/conversations/{c}/messages", path, sizeof path);
    cf_response_t *r = cf_request(who, "POST", path, body);
    assert_int_equal(r->status, 201);
    cf_response_free(r);
}

/* The fixture's visitor wrote once; the agent answers first, the admin then writes a reply and a
 * note. The agent's name needs quoting in a CSV, and starts as a formula would. */
static int group_setup(void **state)
{
    cf_group_setup(state);
    cf_log_in_admin();
    agent_id = my_id(AS_AGENT);
    admin_id = my_id(AS_ADMIN);
    reply(AS_AGENT, "{\"body\":\"hello\"}");
    reply(AS_ADMIN, "{\"body\":\"and hello from me\"}");
    reply(AS_ADMIN, "{\"body\":\"a note\",\"private\":true}");
    char path[64];
    snprintf(path, sizeof path, "/api/agents/%lld", (long long)agent_id);
    cf_response_t *r = cf_request(AS_ADMIN, "PATCH", path, "{\"name\":\"=Doe, \\\"J\\\"\"}");
    assert_int_equal(r->status, 200);
    cf_response_free(r);
    long long now = (long long)time(NULL) * 1000;
    snprintf(period, sizeof period, "from=%lld&to=%lld", now - 86400000LL, now + 86400000LL);
    return 0;
}

static cf_response_t *report(cf_who_t who, const char *rest)
{
    char path[256];
    snprintf(path, sizeof path, "/api/reports?%s%s", period, rest);
    return cf_request(who, "GET", path, NULL);
}

static int64_t field(const json_t *o, const char *name)
{
    const json_t *v = json_object_get(o, name);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void test_admin_sees_everyone(void **state)
{
    (void)state;
    cf_response_t *r = report(AS_ADMIN, "&group=agent");
    assert_int_equal(r->status, 200);
    assert_string_equal(json_string_value(json_object_get(r->json, "scope")), "all");
    assert_string_equal(json_string_value(json_object_get(r->json, "group")), "agent");
    json_t *totals = json_object_get(r->json, "totals");
    assert_int_equal(field(totals, "conversations"), 1);
    assert_int_equal(field(totals, "visitor_messages"), 1);
    assert_int_equal(field(totals, "agent_messages"), 2);
    assert_int_equal(field(totals, "notes"), 1);
    assert_int_equal(field(totals, "answered"), 1);
    assert_int_equal(field(totals, "unanswered"), 0);
    assert_true(field(totals, "first_response_median_ms") >= 0);
    assert_true(json_is_null(json_object_get(totals, "resolution_median_ms")));
    /* Nobody has rated: zeros, and no share of none. */
    json_t *rated = json_object_get(totals, "satisfaction");
    assert_int_equal(field(rated, "good"), 0);
    assert_int_equal(field(rated, "bad"), 0);
    assert_true(json_is_null(json_object_get(rated, "share_good")));
    json_t *rows = json_object_get(r->json, "rows");
    assert_int_equal(json_array_size(rows), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *row = json_array_get(rows, i);
        bool agent = field(row, "agent_id") == agent_id;
        assert_true(agent || field(row, "agent_id") == admin_id);
        assert_int_equal(field(row, "conversations"), agent ? 1 : 0);
        assert_int_equal(field(row, "agent_messages"), 1);
        assert_int_equal(field(row, "notes"), agent ? 0 : 1);
        if (agent)
            assert_string_equal(json_string_value(json_object_get(row, "name")), "=Doe, \"J\"");
    }
    cf_response_free(r);

    /* By day (the default): every local day of the period, at the offset asked. */
    r = report(AS_ADMIN, "&utc_offset=480");
    assert_int_equal(r->status, 200);
    rows = json_object_get(r->json, "rows");
    assert_true(json_array_size(rows) >= 2 && json_array_size(rows) <= 3);
    const char *day = json_string_value(json_object_get(json_array_get(rows, 0), "day"));
    assert_non_null(day);
    assert_int_equal(strlen(day), 10);
    cf_response_free(r);
}

static void test_agent_sees_own(void **state)
{
    (void)state;
    const char *groups[] = {"&group=agent", "&group=day", "&group=team"};
    for (size_t g = 0; g < 3; g++) {
        cf_response_t *r = report(AS_AGENT, groups[g]);
        assert_int_equal(r->status, 200);
        assert_string_equal(json_string_value(json_object_get(r->json, "scope")), "own");
        json_t *totals = json_object_get(r->json, "totals");
        /* The conversation they answered first, their one reply; not the admin's reply or note,
         * nor the visitor's messages (nobody's). */
        assert_int_equal(field(totals, "conversations"), 1);
        assert_int_equal(field(totals, "agent_messages"), 1);
        assert_int_equal(field(totals, "notes"), 0);
        assert_int_equal(field(totals, "visitor_messages"), 0);
        json_t *rows = json_object_get(r->json, "rows");
        if (g == 0) {
            assert_int_equal(json_array_size(rows), 1);
            assert_int_equal(field(json_array_get(rows, 0), "agent_id"), agent_id);
        }
        cf_response_free(r);
    }
}

/* Days in a zone: Berlin's 2025-03-30 has 23 hours (clocks forward at 01:00 UTC). */
static void test_zone_days(void **state)
{
    (void)state;
    /* 2025-03-29T12:00Z to 2025-03-31T12:00Z. */
    cf_response_t *r =
        cf_request(AS_ADMIN, "GET",
                   "/api/reports?from=1743249600000&to=1743422400000&tz=Europe%2FBerlin", NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_string_value(json_object_get(r->json, "tz")), "Europe/Berlin");
    json_t *rows = json_object_get(r->json, "rows");
    assert_int_equal(json_array_size(rows), 3);
    const char *days[] = {"2025-03-29", "2025-03-30", "2025-03-31"};
    const int64_t starts[] = {1743202800000, 1743289200000, 1743372000000};
    for (size_t i = 0; i < 3; i++) {
        json_t *row = json_array_get(rows, i);
        assert_string_equal(json_string_value(json_object_get(row, "day")), days[i]);
        assert_int_equal(field(row, "start"), starts[i]);
    }
    cf_response_free(r);
    /* Without a zone: the fixed offset, days of 24 hours. */
    r = cf_request(AS_ADMIN, "GET",
                   "/api/reports?from=1743249600000&to=1743422400000&utc_offset=60", NULL);
    assert_int_equal(r->status, 200);
    assert_true(json_is_null(json_object_get(r->json, "tz")));
    assert_int_equal(field(json_array_get(json_object_get(r->json, "rows"), 2), "start"),
                     1743375600000);
    cf_response_free(r);
}

static void test_csv(void **state)
{
    (void)state;
    cf_response_t *r = report(AS_ADMIN, "&group=agent&format=csv");
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->raw, "Content-Type: text/csv; charset=utf-8\r\n"));
    assert_non_null(
        strstr(r->raw, "Content-Disposition: attachment; filename=\"kefu-report-agent-"));
    const char *header = "agent_id,agent,conversations,visitor_messages,agent_messages,notes,"
                         "answered,first_response_median_s,first_response_p90_s,resolved,"
                         "resolution_median_s,resolution_p90_s,unanswered,satisfaction_good,"
                         "satisfaction_bad,satisfaction_share_good\r\n";
    assert_true(strncmp(r->body, header, strlen(header)) == 0);
    char line[96];
    /* Quoted (a comma, quotes doubled) and led by an apostrophe (it starts with =). */
    snprintf(line, sizeof line, "\r\n%lld,\"'=Doe, \"\"J\"\"\",1,0,1,0,1,", (long long)agent_id);
    assert_non_null(strstr(r->body, line));
    assert_non_null(strstr(r->body, "\r\n,total,1,1,2,1,1,"));
    cf_response_free(r);
}

static void expect(cf_response_t *r, int status, const char *code, const char *message,
                   const char *what)
{
    if (r->status != status || strcmp(cf_error_code(r), code) != 0 ||
        (message != NULL && strstr(r->body, message) == NULL))
        fail_msg("%s: %d %s (%s)", what, r->status, cf_error_code(r), r->body);
    cf_response_free(r);
}

static void test_bad_requests(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        const char *message;
    } bad[] = {
        {"/api/reports", "from and to are required"},
        {"/api/reports?from=1000", "from and to are required"},
        {"/api/reports?from=x&to=2", "from and to are required"},
        {"/api/reports?from=-5&to=2", "from and to are required"},
        {"/api/reports?from=5&to=5", "from must be before to"},
        {"/api/reports?from=6&to=5", "from must be before to"},
        {"/api/reports?from=0&to=31622400001", "at most 366 days"},
        {"/api/reports?from=0&to=1000&group=week", "group must be day, agent or team"},
        {"/api/reports?from=0&to=1000&group=", "group must be day, agent or team"},
        {"/api/reports?from=0&to=1000&utc_offset=841", "utc_offset must be"},
        {"/api/reports?from=0&to=1000&utc_offset=-841", "utc_offset must be"},
        {"/api/reports?from=0&to=1000&utc_offset=8h", "utc_offset must be"},
        {"/api/reports?from=0&to=1000&tz=Nowhere%2FAtlantis", "tz must be the IANA name"},
        {"/api/reports?from=0&to=1000&tz=..%2F..%2Fetc%2Fpasswd", "tz must be the IANA name"},
        {"/api/reports?from=0&to=1000&tz=", "tz must be the IANA name"},
        {"/api/reports?from=0&to=1000&tz=Asia%2FShanghai&utc_offset=480", "not both"},
        {"/api/reports?from=0&to=1000&team=0", "team must be"},
        {"/api/reports?from=0&to=1000&team=x", "team must be"},
        {"/api/reports?from=0&to=1000&format=xml", "format must be json or csv"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect(cf_request(AS_ADMIN, "GET", bad[i].path, NULL), 400, "bad_request", bad[i].message,
               bad[i].path);
    /* 366 days is the most, an offset of 840 too; a team that has nothing has nothing. */
    expect(cf_request(AS_ADMIN, "GET",
                      "/api/reports?from=0&to=31622400000&utc_offset=-840&team=99&format=json",
                      NULL),
           200, "", NULL, "366 days");
    expect(cf_request(AS_VISITOR, "GET", "/api/reports?from=0&to=1", NULL), 401, "unauthorized",
           NULL, "a visitor");
    expect(cf_request(AS_NOBODY, "GET", "/api/reports?from=0&to=1", NULL), 401, "unauthorized",
           NULL, "nobody");
}

/* Every jansson allocation of an answer failing in turn: a 500 (or the answer, when the one that
 * failed did not matter), never a crash or a leak. */
static void test_out_of_memory(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "/api/reports?%s&group=agent", period);
    for (unsigned long nth = 1; nth < 300; nth++) {
        bool fired = false;
        cf_response_t *r = cf_request_ex(AS_ADMIN, "GET", path, NULL, nth, &fired);
        assert_true(r->status == 200 || r->status == 500);
        cf_response_free(r);
        if (!fired)
            break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_admin_sees_everyone, cf_test_setup),
        cmocka_unit_test_setup(test_agent_sees_own, cf_test_setup),
        cmocka_unit_test_setup(test_csv, cf_test_setup),
        cmocka_unit_test_setup(test_zone_days, cf_test_setup),
        cmocka_unit_test_setup(test_bad_requests, cf_test_setup),
        cmocka_unit_test_setup(test_out_of_memory, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, cf_group_teardown);
}
