/* test_teams_api.c: teams over a real server (src/chat/teams_api.c, the team_id of an assignment,
 * capacity on agents; tests/unit/support/chat_fixture.h): the checks of a team, its members and
 * a capacity (400 for an unknown field, mode or a bad number, 422 for a bad name, 403 for an
 * agent who is not an admin), none of which reaches the store; 409 naming a taken name; 422 for
 * an unknown agent or team; a change pushed to the consoles as one event; a conversation moved to
 * a team, its view and its counts; and a store that fails. */
#include "support/chat_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "support/failing_store.h"

static int group_setup(void **state)
{
    cf_group_setup(state);
    cf_log_in_admin();
    return 0;
}

/* The answer's status and error code are these (code "" for a success). */
static void expect(cf_response_t *r, int status, const char *code, const char *what)
{
    if (r->status != status || strcmp(cf_error_code(r), code) != 0)
        fail_msg("%s: %d %s (%s)", what, r->status, cf_error_code(r), r->body);
    cf_response_free(r);
}

/* POST /api/teams as the admin: the new team's id (asserting 201). */
static int64_t create(const char *body)
{
    cf_response_t *r = cf_request(AS_ADMIN, "POST", "/api/teams", body);
    if (r->status != 201)
        fail_msg("create %s: %d (%s)", body, r->status, r->body);
    int64_t id = json_integer_value(json_object_get(json_object_get(r->json, "team"), "id"));
    cf_response_free(r);
    return id;
}

static size_t store_writes(void)
{
    return failing_store_calls(cf->store, FS_OP(team_create)) +
           failing_store_calls(cf->store, FS_OP(team_update)) +
           failing_store_calls(cf->store, FS_OP(team_set_members)) +
           failing_store_calls(cf->store, FS_OP(agent_update)) +
           failing_store_calls(cf->store, FS_OP(conversation_assign));
}

/* The id of whom who's session is. */
static int64_t my_id(cf_who_t who)
{
    cf_response_t *r = cf_request(who, "GET", "/api/agent/me", NULL);
    assert_int_equal(r->status, 200);
    int64_t id = json_integer_value(json_object_get(json_object_get(r->json, "agent"), "id"));
    cf_response_free(r);
    return id;
}

static void test_checks(void **state)
{
    (void)state;
    static const struct {
        cf_who_t who;
        const char *method;
        const char *path;
        const char *body;
        int status;
        const char *code;
    } refused[] = {
        {AS_AGENT, "POST", "/api/teams", "{\"name\":\"Sales\"}", 403, "forbidden"},
        {AS_AGENT, "PATCH", "/api/teams/1", "{\"name\":\"Sales\"}", 403, "forbidden"},
        {AS_AGENT, "PUT", "/api/teams/1/members", "{\"agent_ids\":[]}", 403, "forbidden"},
        {AS_ADMIN, "POST", "/api/teams", "{\"name\":\"Sales\",\"auto_assign\":\"random\"}", 400,
         "bad_request"},
        {AS_ADMIN, "POST", "/api/teams", "{\"name\":\"Sales\",\"auto_assign\":null}", 400,
         "bad_request"},
        {AS_ADMIN, "POST", "/api/teams", "{\"name\":\"Sales\",\"reassign_after\":-1}", 400,
         "bad_request"},
        {AS_ADMIN, "POST", "/api/teams", "{\"name\":\"Sales\",\"reassign_after\":86401}", 400,
         "bad_request"},
        {AS_ADMIN, "POST", "/api/teams", "{\"name\":\"Sales\",\"reassign_after\":\"5\"}", 400,
         "bad_request"},
        {AS_ADMIN, "POST", "/api/teams", "{\"name\":\"Sales\",\"colour\":\"red\"}", 400,
         "bad_request"},
        {AS_ADMIN, "POST", "/api/teams", "{}", 422, "invalid"},
        {AS_ADMIN, "POST", "/api/teams", "{\"name\":\"   \"}", 422, "invalid"},
        {AS_ADMIN, "POST", "/api/teams", "{\"name\":7}", 422, "invalid"},
        {AS_ADMIN, "PATCH", "/api/teams/1", "{}", 422, "invalid"},
        {AS_ADMIN, "PUT", "/api/teams/1/members", "{\"agent_ids\":[0]}", 400, "bad_request"},
        {AS_ADMIN, "PUT", "/api/teams/1/members", "{\"agent_ids\":\"1\"}", 400, "bad_request"},
        {AS_ADMIN, "PUT", "/api/teams/1/members", "{\"ids\":[1]}", 400, "bad_request"},
        {AS_ADMIN, "PATCH", "/api/agents/1", "{\"capacity\":-1}", 400, "bad_request"},
        {AS_ADMIN, "PATCH", "/api/agents/1", "{\"capacity\":10001}", 400, "bad_request"},
        {AS_ADMIN, "PATCH", "/api/agents/1", "{\"capacity\":\"3\"}", 400, "bad_request"},
        {AS_AGENT, "PATCH", "/api/agents/{a}", "{\"capacity\":3}", 403, "forbidden"},
        {AS_ADMIN, "POST", "/api/conversations/{c}/assign", "{\"team_id\":0}", 422, "invalid"},
        {AS_ADMIN, "POST", "/api/conversations/{c}/assign", "{\"team_id\":\"1\"}", 422, "invalid"},
        {AS_ADMIN, "POST", "/api/conversations/{c}/assign", "{}", 422, "invalid"},
        {AS_ADMIN, "GET", "/api/conversations?team=x", NULL, 400, "bad_request"},
        {AS_ADMIN, "GET", "/api/conversations?team=0", NULL, 400, "bad_request"},
    };
    char agent_path[64];
    snprintf(agent_path, sizeof agent_path, "/api/agents/%lld", (long long)my_id(AS_AGENT));
    size_t writes = store_writes();
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char path[128];
        if (strcmp(refused[i].path, "/api/agents/{a}") == 0)
            snprintf(path, sizeof path, "%s", agent_path);
        else
            cf_expand(refused[i].path, path, sizeof path);
        char what[256];
        snprintf(what, sizeof what, "%s %s %s", refused[i].method, path,
                 refused[i].body != NULL ? refused[i].body : "");
        expect(cf_request(refused[i].who, refused[i].method, path, refused[i].body),
               refused[i].status, refused[i].code, what);
    }
    assert_int_equal(store_writes(), writes);
}

static void test_teams_and_conversations(void **state)
{
    (void)state;
    int before = cf->agent_events;
    int64_t billing = create("{\"name\":\" Billing \",\"auto_assign\":\"least_busy\"}");
    assert_true(cf->agent_events > before); /* the team event */
    cf_response_t *r = cf_request(AS_ADMIN, "POST", "/api/teams", "{\"name\":\"BILLING\"}");
    assert_int_equal(r->status, 409);
    assert_non_null(strstr(r->body, "BILLING"));
    cf_response_free(r);

    /* Members: an unknown agent is 422 and changes nothing. */
    int64_t agent = my_id(AS_AGENT);
    char path[96], body[128];
    snprintf(path, sizeof path, "/api/teams/%lld/members", (long long)billing);
    snprintf(body, sizeof body, "{\"agent_ids\":[%lld,987654]}", (long long)agent);
    expect(cf_request(AS_ADMIN, "PUT", path, body), 422, "invalid", "an unknown member");
    snprintf(body, sizeof body, "{\"agent_ids\":[%lld]}", (long long)agent);
    r = cf_request(AS_ADMIN, "PUT", path, body);
    assert_int_equal(r->status, 200);
    json_t *members = json_object_get(json_object_get(r->json, "team"), "members");
    assert_int_equal(json_array_size(members), 1);
    assert_int_equal(json_integer_value(json_array_get(members, 0)), agent);
    cf_response_free(r);
    expect(cf_request(AS_ADMIN, "PUT", "/api/teams/987654/members", "{\"agent_ids\":[]}"), 404,
           "not_found", "members of an unknown team");

    /* The list, for any agent. */
    r = cf_request(AS_AGENT, "GET", "/api/teams", NULL);
    assert_int_equal(r->status, 200);
    json_t *team = json_array_get(json_object_get(r->json, "teams"), 0);
    assert_string_equal(json_string_value(json_object_get(team, "name")), "Billing");
    assert_string_equal(json_string_value(json_object_get(team, "auto_assign")), "least_busy");
    cf_response_free(r);

    /* A conversation moves to it; a missing team is 422 naming the team. */
    char assign[96];
    cf_expand("/api/conversations/{c}/assign", assign, sizeof assign);
    r = cf_request(AS_ADMIN, "POST", assign, "{\"team_id\":987654}");
    assert_int_equal(r->status, 422);
    assert_non_null(strstr(r->body, "no such team"));
    cf_response_free(r);
    snprintf(body, sizeof body, "{\"team_id\":%lld,\"agent_id\":null}", (long long)billing);
    r = cf_request(AS_ADMIN, "POST", assign, body);
    assert_int_equal(r->status, 200);
    json_t *of = json_object_get(json_object_get(r->json, "conversation"), "team");
    assert_int_equal(json_integer_value(json_object_get(of, "id")), billing);
    assert_string_equal(json_string_value(json_object_get(of, "name")), "Billing");
    cf_response_free(r);
    char list[96];
    snprintf(list, sizeof list, "/api/conversations?view=all&team=%lld", (long long)billing);
    r = cf_request(AS_AGENT, "GET", list, NULL);
    assert_int_equal(json_array_size(json_object_get(r->json, "conversations")), 1);
    cf_response_free(r);
    r = cf_request(AS_AGENT, "GET", "/api/conversations/counts", NULL);
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)billing);
    json_t *counts = json_object_get(json_object_get(r->json, "teams"), key);
    assert_int_equal(json_integer_value(json_object_get(counts, "all")), 1);
    cf_response_free(r);
    /* Out of the team again. */
    r = cf_request(AS_ADMIN, "POST", assign, "{\"team_id\":null}");
    assert_true(json_is_null(json_object_get(json_object_get(r->json, "conversation"), "team")));
    cf_response_free(r);

    /* Capacity, on the account. */
    snprintf(path, sizeof path, "/api/agents/%lld", (long long)agent);
    r = cf_request(AS_ADMIN, "PATCH", path, "{\"capacity\":4}");
    assert_int_equal(r->status, 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r->json, "agent"), "capacity")), 4);
    cf_response_free(r);
}

static void test_store_failures(void **state)
{
    (void)state;
    failing_store_fail_nth(cf->store, FS_OP(team_create), 1, KF_EUNAVAIL);
    expect(cf_request(AS_ADMIN, "POST", "/api/teams", "{\"name\":\"Night\"}"), 503, "unavailable",
           "a full disk");
    failing_store_fail_nth(cf->store, FS_OP(team_set_members), 1, KF_ESTORE);
    int64_t id = create("{\"name\":\"Night\"}");
    char path[96];
    snprintf(path, sizeof path, "/api/teams/%lld/members", (long long)id);
    expect(cf_request(AS_ADMIN, "PUT", path, "{\"agent_ids\":[]}"), 500, "internal",
           "a failed store");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_checks, cf_test_setup),
        cmocka_unit_test_setup(test_teams_and_conversations, cf_test_setup),
        cmocka_unit_test_setup(test_store_failures, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, cf_group_teardown);
}
