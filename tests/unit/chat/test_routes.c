/* test_routes.c: the route table (src/chat/routes.c) and its dispatcher. The table is listed here
 * in full, with each route's declared access and CSRF: a route added, removed or loosened fails
 * this test until it is reviewed here. Then the dispatcher, over a real server
 * (tests/unit/support/chat_fixture.h): each access level refuses whoever it does not admit, with
 * the status and code docs/API.md gives, before the handler runs (nothing reaches the store). */
#include "support/chat_fixture.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "support/failing_store.h"

static const struct {
    const char *method, *pattern;
    kf_access_t access;
    bool csrf;
} expected[] = {
    {"GET", "/", KF_ACCESS_PUBLIC, false},
    {"GET", "/chat", KF_ACCESS_PUBLIC, false},
    {"GET", "/agent", KF_ACCESS_PUBLIC, false},
    {"GET", "/healthz", KF_ACCESS_PUBLIC, false},
    {"GET", "/diag", KF_ACCESS_PUBLIC, false},
    {"GET", "/widget", KF_ACCESS_PUBLIC, false},
    {"GET", "/widget.js", KF_ACCESS_PUBLIC, false},
    {"GET", "/api/widget", KF_ACCESS_PUBLIC, false},
    {"GET", "/readyz", KF_ACCESS_PUBLIC, false},
    {"GET", "/metrics", KF_ACCESS_PUBLIC, false}, /* allow-listed addresses or a token: ops_api.c */
    {"POST", "/api/visitor/session", KF_ACCESS_PUBLIC, false},
    {"GET", "/api/visitor/session", KF_ACCESS_VISITOR, false},
    {"POST", "/api/visitor/messages", KF_ACCESS_VISITOR, false},
    {"GET", "/api/visitor/messages", KF_ACCESS_VISITOR, false},
    {"POST", "/api/visitor/read", KF_ACCESS_VISITOR, false},
    {"POST", "/api/visitor/typing", KF_ACCESS_VISITOR, false},
    {"POST", "/api/visitor/push-ticket", KF_ACCESS_VISITOR, false},
    {"POST", "/api/visitor/page", KF_ACCESS_VISITOR, false},
    {"POST", "/api/visitor/rating", KF_ACCESS_VISITOR, false},
    {"POST", "/api/visitor/attachments", KF_ACCESS_VISITOR, false},
    {"POST", "/api/conversations/{id}/attachments", KF_ACCESS_AGENT, true},
    {"GET", "/api/attachments/{id}", KF_ACCESS_LISTENER, false},
    {"GET", "/api/visitor", KF_ACCESS_VISITOR, false},
    {"GET", "/api/visitor/invite-rules", KF_ACCESS_VISITOR, false},
    {"POST", "/api/visitor/invite-rules/{id}/fire", KF_ACCESS_VISITOR, false},
    {"GET", "/api/visitors/online", KF_ACCESS_AGENT, false},
    {"POST", "/api/visitors/{id}/invite", KF_ACCESS_AGENT, true},
    {"GET", "/api/invite-rules", KF_ACCESS_AGENT, false},
    {"POST", "/api/invite-rules", KF_ACCESS_ADMIN, true},
    {"DELETE", "/api/invite-rules/{id}", KF_ACCESS_ADMIN, true},
    {"PATCH", "/api/visitor", KF_ACCESS_VISITOR, false},
    {"PUT", "/api/visitor/form", KF_ACCESS_VISITOR, false},
    {"GET", "/api/conversations/{id}/visitor", KF_ACCESS_AGENT, false},
    {"PATCH", "/api/conversations/{id}/visitor", KF_ACCESS_AGENT, true},
    {"GET", "/api/settings", KF_ACCESS_AGENT, false},
    {"PATCH", "/api/settings", KF_ACCESS_ADMIN, true},
    {"GET", "/api/settings/site-secret", KF_ACCESS_ADMIN, false},
    {"POST", "/api/agent/login", KF_ACCESS_PUBLIC, false},
    {"GET", "/api/agent/me", KF_ACCESS_AGENT, false},
    {"POST", "/api/agent/logout", KF_ACCESS_AGENT, true},
    {"POST", "/api/agent/push-ticket", KF_ACCESS_AGENT, true},
    {"POST", "/api/agent/status", KF_ACCESS_AGENT, true},
    {"GET", "/api/agents", KF_ACCESS_AGENT, false},
    {"POST", "/api/agents", KF_ACCESS_ADMIN, true},
    {"PATCH", "/api/agents/{id}", KF_ACCESS_AGENT, true},
    {"GET", "/api/teams", KF_ACCESS_AGENT, false},
    {"POST", "/api/teams", KF_ACCESS_ADMIN, true},
    {"PATCH", "/api/teams/{id}", KF_ACCESS_ADMIN, true},
    {"PUT", "/api/teams/{id}/members", KF_ACCESS_ADMIN, true},
    {"GET", "/api/tokens", KF_ACCESS_ADMIN, false},
    {"POST", "/api/tokens", KF_ACCESS_ADMIN, true},
    {"DELETE", "/api/tokens/{id}", KF_ACCESS_ADMIN, true},
    {"GET", "/api/webhooks", KF_ACCESS_ADMIN, false},
    {"POST", "/api/webhooks", KF_ACCESS_ADMIN, true},
    {"DELETE", "/api/webhooks/{id}", KF_ACCESS_ADMIN, true},
    {"GET", "/api/webhooks/{id}/deliveries", KF_ACCESS_ADMIN, false},
    {"GET", "/api/canned", KF_ACCESS_AGENT, false},
    {"POST", "/api/canned", KF_ACCESS_AGENT, true},
    {"PATCH", "/api/canned/{id}", KF_ACCESS_AGENT, true},
    {"DELETE", "/api/canned/{id}", KF_ACCESS_AGENT, true},
    {"GET", "/api/conversations", KF_ACCESS_AGENT, false},
    {"GET", "/api/conversations/counts", KF_ACCESS_AGENT, false},
    {"GET", "/api/conversations/{id}", KF_ACCESS_AGENT, false},
    {"GET", "/api/conversations/{id}/messages", KF_ACCESS_AGENT, false},
    {"GET", "/api/conversations/{id}/transcript", KF_ACCESS_AGENT, false},
    {"POST", "/api/conversations/{id}/messages", KF_ACCESS_AGENT, true},
    {"POST", "/api/conversations/{id}/read", KF_ACCESS_AGENT, true},
    {"POST", "/api/conversations/{id}/typing", KF_ACCESS_AGENT, true},
    {"POST", "/api/conversations/{id}/status", KF_ACCESS_AGENT, true},
    {"POST", "/api/conversations/{id}/claim", KF_ACCESS_AGENT, true},
    {"POST", "/api/conversations/{id}/assign", KF_ACCESS_AGENT, true},
    {"GET", "/api/search", KF_ACCESS_AGENT, false},
    {"GET", "/api/reports", KF_ACCESS_AGENT, false},
    {"GET", "/push/poll", KF_ACCESS_LISTENER, false},
    {"GET", "/push/longpoll", KF_ACCESS_LISTENER, false},
    {"GET", "/push/iframe", KF_ACCESS_LISTENER, false},
    {"GET", "/push/sse", KF_ACCESS_LISTENER, false},
    {"GET", "/push/ws", KF_ACCESS_LISTENER, false},
    {"GET", "/diag/push/poll", KF_ACCESS_PUBLIC, false},
    {"GET", "/diag/push/longpoll", KF_ACCESS_PUBLIC, false},
    {"GET", "/diag/push/iframe", KF_ACCESS_PUBLIC, false},
    {"GET", "/diag/push/sse", KF_ACCESS_PUBLIC, false},
    {"GET", "/diag/push/ws", KF_ACCESS_PUBLIC, false},
};

static void test_table_as_declared(void **state)
{
    (void)state;
    size_t n = 0;
    kf_access_t access;
    bool csrf;
    const kf_route_t *route;
    for (; (route = kf_app_route(n, &access, &csrf)) != NULL; n++) {
        assert_true(n < sizeof expected / sizeof expected[0]);
        assert_string_equal(route->method, expected[n].method);
        assert_string_equal(route->pattern, expected[n].pattern);
        if (access != expected[n].access || csrf != expected[n].csrf)
            fail_msg("%s %s: declared %s%s", route->method, route->pattern, kf_access_name(access),
                     csrf ? " with CSRF" : "");
        /* The rules a new route must keep: an agent's (or admin's) state change wants the
         * CSRF token, and nothing else does (visitors send a bearer token no cross-site page
         * can, and GETs change nothing). */
        bool agent = access == KF_ACCESS_AGENT || access == KF_ACCESS_ADMIN;
        assert_int_equal(csrf, agent && strcmp(route->method, "GET") != 0);
    }
    assert_int_equal(n, sizeof expected / sizeof expected[0]);
    assert_null(kf_app_route(n + 1, NULL, NULL));
    assert_string_equal(kf_access_name(KF_ACCESS_LISTENER), "listener");
}

/* One refusal: who asks, what, and what they get. */
typedef struct refusal {
    cf_who_t who;
    const char *method;
    const char *path; /* {c}: the fixture's conversation */
    const char *body;
    int status;
    const char *code;
} refusal_t;

static void test_dispatcher_refuses_before_the_handler(void **state)
{
    (void)state;
    static const refusal_t cases[] = {
        /* A visitor route: the bearer token only. */
        {AS_NOBODY, "GET", "/api/visitor/messages", NULL, 401, "unauthorized"},
        {AS_AGENT, "GET", "/api/visitor/messages", NULL, 401, "unauthorized"},
        {AS_AGENT, "POST", "/api/visitor/messages", "{\"body\":\"x\"}", 401, "unauthorized"},
        /* An agent route: the session cookie only, and its CSRF token for a change. */
        {AS_NOBODY, "GET", "/api/conversations", NULL, 401, "unauthorized"},
        {AS_VISITOR, "GET", "/api/conversations/{c}", NULL, 401, "unauthorized"},
        {AS_VISITOR, "POST", "/api/conversations/{c}/messages", "{\"body\":\"x\"}", 401,
         "unauthorized"},
        {AS_VISITOR, "GET", "/api/search?q=refund", NULL, 401, "unauthorized"},
        {AS_NOBODY, "GET", "/api/search?q=refund", NULL, 401, "unauthorized"},
        {AS_VISITOR, "GET", "/api/reports?from=0&to=1", NULL, 401, "unauthorized"},
        {AS_NOBODY, "GET", "/api/reports?from=0&to=1", NULL, 401, "unauthorized"},
        /* An admin route: an agent who is not one gets 403 (the fixture's agent is an
         * agent). */
        {AS_NOBODY, "POST", "/api/agents", "{}", 401, "unauthorized"},
        {AS_VISITOR, "POST", "/api/agents", "{}", 401, "unauthorized"},
        {AS_AGENT, "POST", "/api/agents",
         "{\"email\":\"x@example.com\",\"name\":\"X\",\"password\":\"long enough\"}", 403,
         "forbidden"},
        {AS_NOBODY, "POST", "/api/agent/status", "{\"status\":\"away\"}", 401, "unauthorized"},
        {AS_VISITOR, "POST", "/api/agent/status", "{\"status\":\"away\"}", 401, "unauthorized"},
        {AS_AGENT, "PATCH", "/api/agents/1", "{\"disabled\":true}", 403, "forbidden"},
        {AS_NOBODY, "PATCH", "/api/agents/1", "{\"disabled\":true}", 401, "unauthorized"},
        {AS_VISITOR, "GET", "/api/agents", NULL, 401, "unauthorized"},
        {AS_NOBODY, "GET", "/api/canned", NULL, 401, "unauthorized"},
        {AS_VISITOR, "POST", "/api/canned", "{\"shortcut\":\"hi\",\"body\":\"Hi\"}", 401,
         "unauthorized"},
        {AS_VISITOR, "PATCH", "/api/canned/1", "{\"body\":\"Hi\"}", 401, "unauthorized"},
        {AS_NOBODY, "DELETE", "/api/canned/1", NULL, 401, "unauthorized"},
        {AS_NOBODY, "GET", "/api/teams", NULL, 401, "unauthorized"},
        {AS_VISITOR, "GET", "/api/teams", NULL, 401, "unauthorized"},
        {AS_AGENT, "POST", "/api/teams", "{\"name\":\"Billing\"}", 403, "forbidden"},
        {AS_AGENT, "PATCH", "/api/teams/1", "{\"name\":\"Billing\"}", 403, "forbidden"},
        {AS_AGENT, "PUT", "/api/teams/1/members", "{\"agent_ids\":[]}", 403, "forbidden"},
        {AS_VISITOR, "PUT", "/api/teams/1/members", "{\"agent_ids\":[]}", 401, "unauthorized"},
        {AS_AGENT, "POST", "/api/visitor/page", "{\"url\":\"https://x.example/\"}", 401,
         "unauthorized"},
        {AS_AGENT, "PATCH", "/api/visitor", "{\"name\":\"X\"}", 401, "unauthorized"},
        {AS_VISITOR, "GET", "/api/conversations/{c}/visitor", NULL, 401, "unauthorized"},
        {AS_VISITOR, "PATCH", "/api/conversations/{c}/visitor", "{\"name\":\"X\"}", 401,
         "unauthorized"},
        {AS_VISITOR, "GET", "/api/settings", NULL, 401, "unauthorized"},
        {AS_AGENT, "PATCH", "/api/settings", "{\"typing_preview\":true}", 403, "forbidden"},
        {AS_AGENT, "GET", "/api/settings/site-secret", NULL, 403, "forbidden"},
        {AS_VISITOR, "GET", "/api/settings/site-secret", NULL, 401, "unauthorized"},
        /* A push route: a ticket, a token or a cookie; a bad ticket is 401 with no fallback. */
        {AS_NOBODY, "GET", "/push/poll?after=0", NULL, 401, "unauthorized"},
        {AS_VISITOR, "GET", "/push/poll?after=0&ticket=v.1.1.AAAA", NULL, 401, "unauthorized"},
        /* Its request's shape is checked before who sends it. */
        {AS_NOBODY, "GET", "/push/poll?after=x", NULL, 400, "bad_request"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        cf_expand(cases[i].path, path, sizeof path);
        failing_store_reset(cf->store);
        size_t writes = failing_store_calls(cf->store, FS_OP(message_add)) +
                        failing_store_calls(cf->store, FS_OP(agent_create)) +
                        failing_store_calls(cf->store, FS_OP(agent_update)) +
                        failing_store_calls(cf->store, FS_OP(canned_create)) +
                        failing_store_calls(cf->store, FS_OP(canned_update)) +
                        failing_store_calls(cf->store, FS_OP(canned_delete)) +
                        failing_store_calls(cf->store, FS_OP(team_create)) +
                        failing_store_calls(cf->store, FS_OP(team_update)) +
                        failing_store_calls(cf->store, FS_OP(team_set_members));
        cf_response_t *r = cf_request(cases[i].who, cases[i].method, path, cases[i].body);
        if (r->status != cases[i].status || strcmp(cf_error_code(r), cases[i].code) != 0)
            fail_msg("%s %s as %d: %d %s", cases[i].method, path, (int)cases[i].who, r->status,
                     cf_error_code(r));
        cf_response_free(r);
        assert_int_equal(failing_store_calls(cf->store, FS_OP(message_add)) +
                             failing_store_calls(cf->store, FS_OP(agent_create)) +
                             failing_store_calls(cf->store, FS_OP(agent_update)) +
                             failing_store_calls(cf->store, FS_OP(canned_create)) +
                             failing_store_calls(cf->store, FS_OP(canned_update)) +
                             failing_store_calls(cf->store, FS_OP(canned_delete)) +
                             failing_store_calls(cf->store, FS_OP(team_create)) +
                             failing_store_calls(cf->store, FS_OP(team_update)) +
                             failing_store_calls(cf->store, FS_OP(team_set_members)),
                         writes);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_as_declared),
        cmocka_unit_test_setup(test_dispatcher_refuses_before_the_handler, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, cf_group_setup, cf_group_teardown);
}
