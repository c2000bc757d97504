/* test_invite_api.c: visitors online, invitations and their rules over a real server
 * (src/chat/invite_api.c, tests/unit/support/chat_fixture.h): a page report puts the visitor on
 * the agents' list with a "browsing" event; an invitation becomes an agent message of the
 * visitor's conversation (opened for it) and is refused for a visitor who is not online or a bad
 * body; rules are checked (422, 403), listed to visitors without their text, fired once per
 * visitor on a matching page, deleted; a store that fails leaves the rules as they were; and the
 * path patterns' matching. */
#include "support/chat_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "chat/invite.h"
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

/* The visitor's (AS_NEW_VISITOR's) page report, asserting 200. */
static void report(const char *url)
{
    char body[512];
    snprintf(body, sizeof body, "{\"url\":\"%s\",\"title\":\"A page\"}", url);
    expect(cf_request(AS_NEW_VISITOR, "POST", "/api/visitor/page", body), 200, "", url);
}

/* The id of the one visitor the agents' list has with this URL, or 0. */
static int64_t online_with(const char *url)
{
    cf_response_t *r = cf_request(AS_AGENT, "GET", "/api/visitors/online", NULL);
    assert_int_equal(r->status, 200);
    int64_t id = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r->json, "visitors"), i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "url")), url) == 0)
            id = json_integer_value(json_object_get(v, "visitor_id"));
    }
    cf_response_free(r);
    return id;
}

static void test_online_and_invite(void **state)
{
    (void)state;
    int events = cf->agent_events;
    report("https://shop.example/shoes");
    /* The "visitor" event of the report, and "browsing": they came online. */
    assert_int_equal(cf->agent_events, events + 2);
    int64_t visitor = online_with("https://shop.example/shoes");
    assert_true(visitor > 0);

    char path[64];
    snprintf(path, sizeof path, "/api/visitors/%lld/invite", (long long)visitor);
    static const struct {
        const char *body;
        int status;
        const char *code;
    } refused[] = {
        {"{}", 422, "invalid"},
        {"{\"body\":7}", 422, "invalid"},
        {"{\"body\":\"   \"}", 422, "invalid"},
        {"[1]", 400, "bad_json"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect(cf_request(AS_AGENT, "POST", path, refused[i].body), refused[i].status,
               refused[i].code, refused[i].body);
    expect(cf_request(AS_AGENT, "POST", "/api/visitors/999999/invite", "{\"body\":\"Hi\"}"), 404,
           "not_found", "a visitor who is not online");
    expect(cf_request(AS_NEW_VISITOR, "POST", path, "{\"body\":\"Hi\"}"), 401, "unauthorized",
           "a visitor inviting");

    cf_response_t *r = cf_request(AS_AGENT, "POST", path, "{\"body\":\"  Can I help?  \"}");
    assert_int_equal(r->status, 201);
    json_t *message = json_object_get(r->json, "message");
    assert_string_equal(json_string_value(json_object_get(message, "sender")), "agent");
    assert_string_equal(json_string_value(json_object_get(message, "body")), "Can I help?");
    assert_true(json_integer_value(json_object_get(message, "conversation_id")) > 0);
    cf_response_free(r);

    /* The visitor has it as the first message of their conversation. */
    r = cf_request(AS_NEW_VISITOR, "GET", "/api/visitor/messages?after=0", NULL);
    assert_int_equal(r->status, 200);
    json_t *messages = json_object_get(r->json, "messages");
    assert_int_equal(json_array_size(messages), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(messages, 0), "body")),
                        "Can I help?");
    cf_response_free(r);

    /* The list says they were invited. */
    r = cf_request(AS_AGENT, "GET", "/api/visitors/online", NULL);
    size_t i;
    json_t *v;
    bool invited = false;
    json_array_foreach(json_object_get(r->json, "visitors"), i, v)
    {
        if (json_integer_value(json_object_get(v, "visitor_id")) == visitor)
            invited = json_is_integer(json_object_get(v, "invited_at"));
    }
    assert_true(invited);
    cf_response_free(r);
}

/* POST /api/invite-rules as the admin: the new rule's id (asserting 201). */
static int64_t add_rule(const char *body)
{
    cf_response_t *r = cf_request(AS_ADMIN, "POST", "/api/invite-rules", body);
    if (r->status != 201)
        fail_msg("add %s: %d (%s)", body, r->status, r->body);
    int64_t id = json_integer_value(json_object_get(json_object_get(r->json, "rule"), "id"));
    cf_response_free(r);
    return id;
}

static void test_rules(void **state)
{
    (void)state;
    static const struct {
        cf_who_t who;
        const char *body;
        int status;
        const char *code;
    } refused[] = {
        {AS_AGENT, "{\"path\":\"/a\",\"seconds\":1,\"body\":\"Hi\"}", 403, "forbidden"},
        {AS_ADMIN, "{\"path\":\"a\",\"seconds\":1,\"body\":\"Hi\"}", 422, "invalid"},
        {AS_ADMIN, "{\"path\":\"/a b\",\"seconds\":1,\"body\":\"Hi\"}", 422, "invalid"},
        {AS_ADMIN, "{\"path\":\"/a#b\",\"seconds\":1,\"body\":\"Hi\"}", 422, "invalid"},
        {AS_ADMIN, "{\"path\":\"/a\",\"seconds\":-1,\"body\":\"Hi\"}", 422, "invalid"},
        {AS_ADMIN, "{\"path\":\"/a\",\"seconds\":3601,\"body\":\"Hi\"}", 422, "invalid"},
        {AS_ADMIN, "{\"path\":\"/a\",\"seconds\":\"1\",\"body\":\"Hi\"}", 422, "invalid"},
        {AS_ADMIN, "{\"path\":\"/a\",\"seconds\":1,\"body\":\"\"}", 422, "invalid"},
        {AS_ADMIN, "{\"path\":\"/a\",\"seconds\":1}", 422, "invalid"},
        {AS_ADMIN, "\"x\"", 400, "bad_json"},
    };
    size_t writes = failing_store_calls(cf->store, FS_OP(setting_set));
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect(cf_request(refused[i].who, "POST", "/api/invite-rules", refused[i].body),
               refused[i].status, refused[i].code, refused[i].body);
    assert_int_equal(failing_store_calls(cf->store, FS_OP(setting_set)), writes);

    int events = cf->agent_events;
    int64_t pricing = add_rule("{\"path\":\"/pricing\",\"seconds\":0,\"body\":\"Plans?\"}");
    int64_t later = add_rule("{\"path\":\"/blog/*/comments\",\"seconds\":600,\"body\":\"Hi\"}");
    assert_true(later > pricing);
    assert_int_equal(cf->agent_events, events + 2); /* an "invite_rule" event each */

    /* Visitors see what to time, not what the rules say. */
    cf_response_t *r = cf_request(AS_NEW_VISITOR, "GET", "/api/visitor/invite-rules", NULL);
    assert_int_equal(r->status, 200);
    json_t *rules = json_object_get(r->json, "rules");
    assert_int_equal(json_array_size(rules), 2);
    assert_null(json_object_get(json_array_get(rules, 0), "body"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 0), "path")),
                        "/pricing");
    cf_response_free(r);

    /* Fired: on a page it is not for, not yet; on one it is for, once. */
    char fire[80];
    snprintf(fire, sizeof fire, "/api/visitor/invite-rules/%lld/fire", (long long)pricing);
    report("https://shop.example/about");
    expect(cf_request(AS_NEW_VISITOR, "POST", fire, NULL), 409, "conflict", "another page");
    report("https://shop.example/pricing/team?x=1");
    r = cf_request(AS_NEW_VISITOR, "POST", fire, NULL);
    assert_int_equal(r->status, 201);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r->json, "message"), "body")), "Plans?");
    cf_response_free(r);
    expect(cf_request(AS_NEW_VISITOR, "POST", fire, NULL), 409, "conflict", "fired twice");
    snprintf(fire, sizeof fire, "/api/visitor/invite-rules/%lld/fire", (long long)later);
    report("https://shop.example/blog/7/comments");
    expect(cf_request(AS_NEW_VISITOR, "POST", fire, NULL), 409, "conflict", "too early");
    expect(cf_request(AS_NEW_VISITOR, "POST", "/api/visitor/invite-rules/999/fire", NULL), 404,
           "not_found", "no such rule");

    /* Deleted, by an admin only. */
    char one[64];
    snprintf(one, sizeof one, "/api/invite-rules/%lld", (long long)later);
    expect(cf_request(AS_AGENT, "DELETE", one, NULL), 403, "forbidden", "an agent deleting");
    expect(cf_request(AS_ADMIN, "DELETE", one, NULL), 200, "", "deleted");
    expect(cf_request(AS_ADMIN, "DELETE", one, NULL), 404, "not_found", "deleted twice");
    r = cf_request(AS_AGENT, "GET", "/api/invite-rules", NULL);
    assert_int_equal(json_array_size(json_object_get(r->json, "rules")), 1);
    cf_response_free(r);

    /* A store that refuses the write: 503, and the rules are as they were. */
    failing_store_fail_nth(cf->store, FS_OP(setting_set), 1, KF_EUNAVAIL);
    expect(cf_request(AS_ADMIN, "POST", "/api/invite-rules",
                      "{\"path\":\"/x\",\"seconds\":1,\"body\":\"Hi\"}"),
           503, "unavailable", "the store refuses");
    r = cf_request(AS_AGENT, "GET", "/api/invite-rules", NULL);
    assert_int_equal(json_array_size(json_object_get(r->json, "rules")), 1);
    cf_response_free(r);
}

static void test_path_matches(void **state)
{
    (void)state;
    static const struct {
        const char *pattern;
        const char *path;
        bool matches;
    } cases[] = {
        {"/", "/", true},
        {"/", "/anything", true},
        {"/pricing", "/pricing", true},
        {"/pricing", "/pricing/team", true},
        {"/pricing", "/pric", false},
        {"/pricing", "/about/pricing", false},
        {"/blog/*/comments", "/blog/7/comments", true},
        {"/blog/*/comments", "/blog/7/8/comments/all", true},
        {"/blog/*/comments", "/blog/7/likes", false},
        {"*", "/x", true},
        {"/a*", "/a", true},
        {"/a**b", "/aXb", true},
        {"/*.pdf", "/docs/guide.pdf", true},
        {"/*.pdf", "/docs/guide.html", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (kf_invite_path_matches(cases[i].pattern, cases[i].path) != cases[i].matches)
            fail_msg("%s against %s", cases[i].pattern, cases[i].path);
    }
    /* A hostile path against many stars stays bounded (pattern x path steps). */
    char path[2049];
    memset(path, 'a', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    assert_false(kf_invite_path_matches("/*a*a*a*a*a*a*a*a*b", path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_matches),
        cmocka_unit_test_setup(test_online_and_invite, cf_test_setup),
        cmocka_unit_test_setup(test_rules, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, cf_group_teardown);
}
