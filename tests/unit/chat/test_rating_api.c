/* test_rating_api.c: POST /api/visitor/rating (src/chat/rating_api.c) over a real server
 * (tests/unit/support/chat_fixture.h): 409 until the conversation is resolved (and again once
 * the visitor's message reopens it), 422 for a rating other than good or bad or a comment that
 * is no string or too long, none of which reaches the store; the rating shown to agents on the
 * conversation, to the visitor on their session, a "rating" event and the conversation's update
 * published, changed while resolved, counted by the report; 503 when it is not stored, and then
 * nothing published. */
#include "support/chat_fixture.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "support/failing_store.h"

static int group_setup(void **state)
{
    cf_group_setup(state);
    cf_log_in_admin();
    return 0;
}

/* The answer's status and error code are these (code "" for a success); the answer is freed. */
static void expect(cf_response_t *r, int status, const char *code, const char *what)
{
    if (r->status != status || strcmp(cf_error_code(r), code) != 0)
        fail_msg("%s: %d %s (%s)", what, r->status, cf_error_code(r), r->body);
    cf_response_free(r);
}

static cf_response_t *rate(cf_who_t who, const char *body)
{
    return cf_request(who, "POST", "/api/visitor/rating", body);
}

static void set_status(const char *status)
{
    char path[96];
    char body[48];
    cf_expand("/api/conversations/{c}/status", path, sizeof path);
    snprintf(body, sizeof body, "{\"status\":\"%s\"}", status);
    expect(cf_request(AS_AGENT, "POST", path, body), 200, "", status);
}

/* The conversation's "rating" as the agents read it (a new reference, or NULL for null). */
static json_t *agents_rating(void)
{
    char path[96];
    cf_expand("/api/conversations/{c}", path, sizeof path);
    cf_response_t *r = cf_request(AS_AGENT, "GET", path, NULL);
    assert_int_equal(r->status, 200);
    json_t *rating = json_object_get(json_object_get(r->json, "conversation"), "rating");
    assert_non_null(rating);
    json_t *kept = json_is_null(rating) ? NULL : json_incref(rating);
    cf_response_free(r);
    return kept;
}

static const char *text(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

static void test_only_resolved(void **state)
{
    (void)state;
    failing_store_reset(cf->store);
    expect(rate(AS_VISITOR, "{\"rating\":\"good\"}"), 409, "conflict", "an open conversation");
    expect(rate(AS_NEW_VISITOR, "{\"rating\":\"good\"}"), 409, "conflict", "no conversation");
    expect(rate(AS_AGENT, "{\"rating\":\"good\"}"), 401, "unauthorized", "an agent");
    expect(rate(AS_NOBODY, "{\"rating\":\"good\"}"), 401, "unauthorized", "nobody");
    assert_null(agents_rating());
}

static void test_bad_input(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "{}",
        "{\"rating\":null}",
        "{\"rating\":1}",
        "{\"rating\":\"meh\"}",
        "{\"rating\":\"Good\"}",
        "{\"rating\":\"good\",\"comment\":5}",
        "{\"rating\":\"bad\",\"comment\":[\"x\"]}",
    };
    failing_store_reset(cf->store);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect(rate(AS_VISITOR, refused[i]), 422, "invalid", refused[i]);
    expect(rate(AS_VISITOR, "[\"good\"]"), 400, "bad_json", "not an object");
    /* 1001 characters (two bytes each) are too many. */
    char *body = malloc(4096);
    int n = snprintf(body, 4096, "{\"rating\":\"bad\",\"comment\":\"");
    for (int i = 0; i < 1001; i++)
        n += snprintf(body + n, 4096 - (size_t)n, "é");
    strcpy(body + n, "\"}");
    expect(rate(AS_VISITOR, body), 422, "invalid", "1001 characters");
    free(body);
    assert_int_equal(failing_store_calls(cf->store, FS_OP(conversation_rate)), 0);
}

static void test_rate_change_and_reopen(void **state)
{
    (void)state;
    set_status("resolved");
    int agent_events = cf->agent_events;
    int visitor_events = cf->visitor_events;
    /* 1000 characters are allowed; the comment is trimmed. */
    char *body = malloc(4096);
    int n = snprintf(body, 4096, "{\"rating\":\"bad\",\"comment\":\"  ");
    for (int i = 0; i < 1000; i++)
        n += snprintf(body + n, 4096 - (size_t)n, "é");
    strcpy(body + n, " \"}");
    cf_response_t *r = rate(AS_VISITOR, body);
    free(body);
    assert_int_equal(r->status, 200);
    json_t *mine = json_object_get(json_object_get(r->json, "conversation"), "rating");
    assert_string_equal(text(mine, "rating"), "bad");
    assert_int_equal(strlen(text(mine, "comment")), 2000);
    assert_true(json_integer_value(json_object_get(mine, "rated_at")) > 0);
    cf_response_free(r);
    /* The agents: the "rating" event, then the conversation; the visitor's other pages: the
     * conversation (a request more lets the read behind the update finish). */
    expect(cf_request(AS_VISITOR, "GET", "/api/visitor/session", NULL), 200, "", "a session");
    assert_int_equal(cf->agent_events, agent_events + 2);
    assert_int_equal(cf->visitor_events, visitor_events + 1);
    json_t *rating = agents_rating();
    assert_string_equal(text(rating, "rating"), "bad");
    json_decref(rating);

    /* Changed while resolved. */
    expect(rate(AS_VISITOR, "{\"rating\":\"good\",\"comment\":null}"), 200, "", "changed");
    rating = agents_rating();
    assert_string_equal(text(rating, "rating"), "good");
    assert_string_equal(text(rating, "comment"), "");
    json_decref(rating);

    /* The report counts it: one good, all of them. */
    char path[128];
    long long now = (long long)time(NULL) * 1000;
    snprintf(path, sizeof path, "/api/reports?from=%lld&to=%lld", now - 86400000LL,
             now + 86400000LL);
    r = cf_request(AS_ADMIN, "GET", path, NULL);
    assert_int_equal(r->status, 200);
    json_t *satisfaction = json_object_get(json_object_get(r->json, "totals"), "satisfaction");
    assert_int_equal(json_integer_value(json_object_get(satisfaction, "good")), 1);
    assert_int_equal(json_integer_value(json_object_get(satisfaction, "bad")), 0);
    assert_true(json_real_value(json_object_get(satisfaction, "share_good")) == 1.0);
    cf_response_free(r);
    snprintf(path + strlen(path), sizeof path - strlen(path), "&format=csv");
    r = cf_request(AS_ADMIN, "GET", path, NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, ",1,0,1.0000\r\n")); /* the total line ends so */
    cf_response_free(r);

    /* The visitor writes again: reopened, so the page asks nothing and a rating is refused;
     * the agents still see the last one. */
    expect(cf_request(AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"one more\"}"), 201,
           "", "a message");
    r = cf_request(AS_VISITOR, "GET", "/api/visitor/session", NULL);
    assert_int_equal(r->status, 200);
    json_t *conversation = json_object_get(r->json, "conversation");
    assert_string_equal(text(conversation, "status"), "open");
    assert_true(json_is_null(json_object_get(conversation, "rating")));
    cf_response_free(r);
    expect(rate(AS_VISITOR, "{\"rating\":\"bad\"}"), 409, "conflict", "reopened");
    rating = agents_rating();
    assert_string_equal(text(rating, "rating"), "good");
    json_decref(rating);
}

static void test_store_failures(void **state)
{
    (void)state;
    set_status("resolved");
    int events = cf->agent_events;
    failing_store_fail_nth(cf->store, FS_OP(conversation_rate), 1, KF_EUNAVAIL);
    expect(rate(AS_VISITOR, "{\"rating\":\"bad\"}"), 503, "unavailable", "not stored");
    failing_store_refuse_nth(cf->store, FS_OP(conversation_rate), 1, KF_ESTORE);
    expect(rate(AS_VISITOR, "{\"rating\":\"bad\"}"), 500, "internal", "refused at once");
    assert_int_equal(cf->agent_events, events);
    json_t *rating = agents_rating();
    assert_string_equal(text(rating, "rating"), "good");
    json_decref(rating);
    /* Stored, but the read back fails: the rating stands, the visitor is told of the failure. */
    failing_store_fail_nth(cf->store, FS_OP(conversation_get), 1, KF_ESTORE);
    expect(rate(AS_VISITOR, "{\"rating\":\"bad\"}"), 500, "internal", "read back failed");
    rating = agents_rating();
    assert_string_equal(text(rating, "rating"), "bad");
    json_decref(rating);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_only_resolved, cf_test_setup),
        cmocka_unit_test_setup(test_bad_input, cf_test_setup),
        cmocka_unit_test_setup(test_rate_change_and_reopen, cf_test_setup),
        cmocka_unit_test_setup(test_store_failures, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, cf_group_teardown);
}
