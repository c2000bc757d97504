/* test_search_api.c: GET /api/search (src/chat/search_api.c) over a real server
 * (tests/unit/support/chat_fixture.h): hits with their snippets and marks, newest first, pages
 * by ?before=, visitors' names; 400 for a query under 2 or over 200 characters, a bad limit or
 * cursor, none of which reaches the store; out of memory while answering is a 500, never a
 * crash. */
#include "support/chat_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* The messages the group's tests search, sent by the fixture's visitor. */
static int64_t refund_id, mixed_id;

static int64_t visitor_sends(const char *body_json)
{
    cf_response_t *r = cf_request(AS_VISITOR, "POST", "/api/visitor/messages", body_json);
    assert_int_equal(r->status, 201);
    int64_t id = json_integer_value(json_object_get(json_object_get(r->json, "message"), "id"));
    cf_response_free(r);
    return id;
}

static int group_setup(void **state)
{
    cf_group_setup(state);
    refund_id = visitor_sends("{\"body\":\"我要退款了\"}");
    mixed_id = visitor_sends("{\"body\":\"退款 <b>refund</b> & \\\"quotes\\\"\"}");
    for (int i = 0; i < 5; i++)
        visitor_sends("{\"body\":\"paging word\"}");
    return 0;
}

static void expect(cf_response_t *r, int status, const char *code, const char *what)
{
    if (r->status != status || strcmp(cf_error_code(r), code) != 0)
        fail_msg("%s: %d %s (%s)", what, r->status, cf_error_code(r), r->body);
    cf_response_free(r);
}

static void test_hits(void **state)
{
    (void)state;
    /* 退款, percent-encoded as a browser sends it. */
    cf_response_t *r = cf_request(AS_AGENT, "GET", "/api/search?q=%E9%80%80%E6%AC%BE", NULL);
    assert_int_equal(r->status, 200);
    json_t *results = json_object_get(r->json, "results");
    assert_int_equal(json_array_size(results), 2);
    assert_true(json_is_null(json_object_get(r->json, "next")));
    json_t *newest = json_array_get(results, 0);
    assert_int_equal(json_integer_value(json_object_get(newest, "message_id")), mixed_id);
    assert_int_equal(json_integer_value(json_object_get(newest, "conversation_id")),
                     cf->conversation_id);
    assert_string_equal(json_string_value(json_object_get(newest, "field")), "message");
    assert_string_equal(json_string_value(json_object_get(newest, "sender")), "visitor");
    /* The text as it was written, HTML and all: the console sets it as text. */
    assert_string_equal(json_string_value(json_object_get(newest, "snippet")),
                        "退款 <b>refund</b> & \"quotes\"");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(newest, "visitor"), "id")),
                     cf->visitor_id);
    assert_true(json_integer_value(json_object_get(newest, "created_at")) > 0);
    json_t *older = json_array_get(results, 1);
    assert_int_equal(json_integer_value(json_object_get(older, "message_id")), refund_id);
    json_t *marks = json_object_get(older, "highlights");
    assert_int_equal(json_array_size(marks), 1);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(marks, 0), 0)), 2);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(marks, 0), 1)), 2);
    cf_response_free(r);

    r = cf_request(AS_AGENT, "GET", "/api/search?q=REFUND+%22quotes", NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(json_array_size(json_object_get(r->json, "results")), 1);
    cf_response_free(r);
    r = cf_request(AS_AGENT, "GET", "/api/search?q=nowhere+to+be+found", NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(json_array_size(json_object_get(r->json, "results")), 0);
    cf_response_free(r);
}

/* Pages of two reach all five, newest first, then say there is no more. */
static void test_paging(void **state)
{
    (void)state;
    char path[128] = "/api/search?q=paging&limit=2";
    int64_t last = INT64_MAX;
    int total = 0;
    for (int page = 0; page < 5; page++) {
        cf_response_t *r = cf_request(AS_AGENT, "GET", path, NULL);
        assert_int_equal(r->status, 200);
        json_t *results = json_object_get(r->json, "results");
        for (size_t i = 0; i < json_array_size(results); i++) {
            int64_t id =
                json_integer_value(json_object_get(json_array_get(results, i), "message_id"));
            assert_true(id < last);
            last = id;
            total++;
        }
        json_t *next = json_object_get(r->json, "next");
        bool more = !json_is_null(next);
        if (more)
            snprintf(path, sizeof path, "/api/search?q=paging&limit=2&before=%s",
                     json_string_value(next));
        cf_response_free(r);
        if (!more)
            break;
    }
    assert_int_equal(total, 5);
}

static void test_bad_requests(void **state)
{
    (void)state;
    char long_query[512] = "/api/search?q=";
    for (int i = 0; i < 201; i++)
        strcat(long_query, "x");
    const char *const bad[] = {
        "/api/search",
        "/api/search?q=",
        "/api/search?q=a",
        "/api/search?q=+a+",
        "/api/search?q=%E9%80%80", /* one character, of three bytes */
        "/api/search?q=%FF%FE",    /* not UTF-8 */
        "/api/search?q=%ZZ",
        "/api/search?q=ab%00cd",
        "/api/search?q=refund&limit=0",
        "/api/search?q=refund&limit=101",
        "/api/search?q=refund&limit=x",
        "/api/search?q=refund&before=0",
        "/api/search?q=refund&before=-1",
        "/api/search?q=refund&before=99999999999999999999",
        long_query,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect(cf_request(AS_AGENT, "GET", bad[i], NULL), 400, "bad_request", bad[i]);
    /* 200 characters are fine, and a page of 100. */
    long_query[strlen(long_query) - 1] = '\0';
    expect(cf_request(AS_AGENT, "GET", long_query, NULL), 200, "", "200 characters");
    expect(cf_request(AS_AGENT, "GET", "/api/search?q=refund&limit=100&before=1", NULL), 200, "",
           "limit 100");
    /* Agents only. */
    expect(cf_request(AS_VISITOR, "GET", "/api/search?q=refund", NULL), 401, "unauthorized",
           "a visitor");
    expect(cf_request(AS_NOBODY, "GET", "/api/search?q=refund", NULL), 401, "unauthorized",
           "nobody");
}

/* Every jansson allocation of an answer failing in turn: a 500 (or the answer, when the one that
 * failed did not matter), never a crash or a leak. */
static void test_out_of_memory(void **state)
{
    (void)state;
    for (unsigned long nth = 1; nth < 200; nth++) {
        bool fired = false;
        cf_response_t *r =
            cf_request_ex(AS_AGENT, "GET", "/api/search?q=%E9%80%80%E6%AC%BE", NULL, nth, &fired);
        assert_true(r->status == 200 || r->status == 500);
        cf_response_free(r);
        if (!fired)
            break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_hits, cf_test_setup),
        cmocka_unit_test_setup(test_paging, cf_test_setup),
        cmocka_unit_test_setup(test_bad_requests, cf_test_setup),
        cmocka_unit_test_setup(test_out_of_memory, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, cf_group_teardown);
}
