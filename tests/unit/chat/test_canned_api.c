/* test_canned_api.c: canned replies over a real server (src/chat/canned_api.c,
 * tests/unit/support/chat_fixture.h): the checks of a new reply and a change (400 for an unknown
 * field or scope, 422 for a bad shortcut or body, 403 for a team one from an agent who is not an
 * admin), none of which reaches the store; what each agent sees; 409 naming a taken shortcut; a
 * personal reply that is 404 to anyone but its owner; and a store that fails. */
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

/* POST /api/canned as who: the new reply's id (asserting 201). */
static int64_t create(cf_who_t who, const char *body)
{
    cf_response_t *r = cf_request(who, "POST", "/api/canned", body);
    if (r->status != 201)
        fail_msg("create %s: %d (%s)", body, r->status, r->body);
    int64_t id = json_integer_value(json_object_get(json_object_get(r->json, "canned"), "id"));
    cf_response_free(r);
    return id;
}

static size_t store_writes(void)
{
    return failing_store_calls(cf->store, FS_OP(canned_create)) +
           failing_store_calls(cf->store, FS_OP(canned_update)) +
           failing_store_calls(cf->store, FS_OP(canned_delete));
}

static void test_checks(void **state)
{
    (void)state;
    static const struct {
        cf_who_t who;
        const char *body;
        int status;
        const char *code;
    } refused[] = {
        {AS_AGENT, "{\"shortcut\":\"hi\",\"body\":\"Hi\",\"scope\":\"everyone\"}", 400,
         "bad_request"},
        {AS_AGENT, "{\"shortcut\":\"hi\",\"body\":\"Hi\",\"scope\":null}", 400, "bad_request"},
        {AS_AGENT, "{\"shortcut\":\"hi\",\"body\":\"Hi\",\"owner\":1}", 400, "bad_request"},
        {AS_AGENT, "{\"shortcut\":\"hi\",\"body\":\"Hi\",\"scope\":\"team\"}", 403, "forbidden"},
        {AS_AGENT, "{\"body\":\"Hi\"}", 422, "invalid"},
        {AS_AGENT, "{\"shortcut\":\"\",\"body\":\"Hi\"}", 422, "invalid"},
        {AS_AGENT, "{\"shortcut\":\"/hi\",\"body\":\"Hi\"}", 422, "invalid"},
        {AS_AGENT, "{\"shortcut\":\"h i\",\"body\":\"Hi\"}", 422, "invalid"},
        {AS_AGENT, "{\"shortcut\":\"h\\u3000i\",\"body\":\"Hi\"}", 422, "invalid"},
        {AS_AGENT, "{\"shortcut\":\"123456789012345678901234567890123\",\"body\":\"Hi\"}", 422,
         "invalid"},
        {AS_AGENT, "{\"shortcut\":\"hi\",\"body\":\"  \"}", 422, "invalid"},
        {AS_AGENT, "{\"shortcut\":\"hi\",\"body\":7}", 422, "invalid"},
        {AS_ADMIN, "{\"shortcut\":\"hi\"}", 422, "invalid"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect(cf_request(refused[i].who, "POST", "/api/canned", refused[i].body),
               refused[i].status, refused[i].code, refused[i].body);
    char *long_body = malloc(4100);
    int n = snprintf(long_body, 4100, "{\"shortcut\":\"long\",\"body\":\"");
    memset(long_body + n, 'x', 4001);
    strcpy(long_body + n + 4001, "\"}");
    expect(cf_request(AS_AGENT, "POST", "/api/canned", long_body), 422, "invalid", "4001");
    free(long_body);
    expect(cf_request(AS_AGENT, "PATCH", "/api/canned/1", "{\"scope\":\"team\"}"), 400,
           "bad_request", "a change of scope");
    expect(cf_request(AS_AGENT, "PATCH", "/api/canned/1", "{}"), 422, "invalid", "no change");
    expect(cf_request(AS_AGENT, "PATCH", "/api/canned/1", "{\"shortcut\":\"a b\"}"), 422, "invalid",
           "a change to a bad shortcut");
    assert_int_equal(store_writes(), 0);
}

static void test_who_sees_and_changes_what(void **state)
{
    (void)state;
    int64_t team = create(AS_ADMIN, "{\"shortcut\":\"Refund\",\"body\":\" Hi {visitor.name} \","
                                    "\"scope\":\"team\"}");
    int64_t mine =
        create(AS_AGENT,
               "{\"shortcut\":\"退款退款退款退款退款退款退款退款退款退款退款退款退款退款退款退款\","
               "\"body\":\"Agnes's\"}");
    create(AS_ADMIN, "{\"shortcut\":\"admins\",\"body\":\"The admin's own\"}");

    cf_response_t *r = cf_request(AS_AGENT, "GET", "/api/canned", NULL);
    assert_int_equal(r->status, 200);
    json_t *list = json_object_get(r->json, "canned");
    assert_int_equal(json_array_size(list), 2);
    json_t *first = json_array_get(list, 0);
    assert_int_equal(json_integer_value(json_object_get(first, "id")), team);
    assert_string_equal(json_string_value(json_object_get(first, "body")), "Hi {visitor.name}");
    assert_string_equal(json_string_value(json_object_get(first, "scope")), "team");
    assert_true(json_integer_value(json_object_get(first, "created_at")) > 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "scope")),
                        "personal");
    cf_response_free(r);

    r = cf_request(AS_AGENT, "POST", "/api/canned", "{\"shortcut\":\"REFUND\",\"body\":\"x\"}");
    assert_non_null(strstr(r->body, "\\\"REFUND\\\""));
    expect(r, 409, "conflict", "a team shortcut in another case");

    char path[64];
    snprintf(path, sizeof path, "/api/canned/%lld", (long long)team);
    expect(cf_request(AS_AGENT, "PATCH", path, "{\"body\":\"x\"}"), 403, "forbidden",
           "an agent changing a team reply");
    expect(cf_request(AS_AGENT, "DELETE", path, NULL), 403, "forbidden",
           "an agent deleting a team reply");
    r = cf_request(AS_ADMIN, "PATCH", path, "{\"body\":\"Refunded, {visitor.name}.\"}");
    assert_int_equal(r->status, 200);
    json_t *canned = json_object_get(r->json, "canned");
    assert_string_equal(json_string_value(json_object_get(canned, "shortcut")), "Refund");
    assert_string_equal(json_string_value(json_object_get(canned, "body")),
                        "Refunded, {visitor.name}.");
    cf_response_free(r);

    snprintf(path, sizeof path, "/api/canned/%lld", (long long)mine);
    expect(cf_request(AS_ADMIN, "PATCH", path, "{\"body\":\"x\"}"), 404, "not_found",
           "the admin changing the agent's own");
    expect(cf_request(AS_ADMIN, "DELETE", path, NULL), 404, "not_found",
           "the admin deleting the agent's own");
    r = cf_request(AS_AGENT, "DELETE", path, NULL);
    assert_true(json_is_true(json_object_get(r->json, "ok")));
    expect(r, 200, "", "the owner deleting");
    expect(cf_request(AS_AGENT, "DELETE", path, NULL), 404, "not_found", "deleted already");
}

static void test_store_failures(void **state)
{
    (void)state;
    failing_store_fail_nth(cf->store, FS_OP(canned_create), 1, KF_EUNAVAIL);
    expect(cf_request(AS_AGENT, "POST", "/api/canned", "{\"shortcut\":\"x\",\"body\":\"x\"}"), 503,
           "unavailable", "a failed write");
    failing_store_fail_nth(cf->store, FS_OP(canned_list), 1, KF_ESTORE);
    expect(cf_request(AS_AGENT, "GET", "/api/canned", NULL), 500, "internal", "a failed list");
    expect(cf_request(AS_AGENT, "GET", "/api/canned", NULL), 200, "", "the list again");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_checks, cf_test_setup),
        cmocka_unit_test_setup(test_who_sees_and_changes_what, cf_test_setup),
        cmocka_unit_test_setup(test_store_failures, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, cf_group_teardown);
}
