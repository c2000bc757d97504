/* test_integrations_api.c: API tokens and webhooks over a real server (src/chat/integrations_api.c,
 * tests/unit/support/chat_fixture.h): the checks of a new token and a new webhook (400 for an
 * unknown field, 422 for a bad name, scope, URL or event list), none of which reaches the store;
 * admins only (403 for an agent); a token used alone as Authorization: Bearer as far as its
 * scope goes, revoked to 401 at once; a visitor's token never taken for one; a webhook listed
 * with its secret, its (empty) delivery log, and deleted; a store that fails: 503 or 500, and
 * nothing made, and a token the store cannot look up is not told 401. */
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

static void expect(cf_response_t *r, int status, const char *code, const char *what)
{
    if (r->status != status || strcmp(cf_error_code(r), code) != 0)
        fail_msg("%s: %d %s (%s)", what, r->status, cf_error_code(r), r->body);
    cf_response_free(r);
}

/* How many rows a list answers (asserting 200). */
static size_t listed(const char *path, const char *field)
{
    cf_response_t *r = cf_request(AS_ADMIN, "GET", path, NULL);
    assert_int_equal(r->status, 200);
    size_t n = json_array_size(json_object_get(r->json, field));
    cf_response_free(r);
    return n;
}

static void test_checks(void **state)
{
    (void)state;
    static const struct {
        cf_who_t who;
        const char *path;
        const char *body;
        int status;
        const char *code;
    } refused[] = {
        {AS_AGENT, "/api/tokens", "{\"name\":\"x\",\"scope\":\"read\"}", 403, "forbidden"},
        {AS_ADMIN, "/api/tokens", "{\"name\":\"x\",\"scope\":\"read\",\"expires\":1}", 400,
         "bad_request"},
        {AS_ADMIN, "/api/tokens", "{\"name\":\"x\",\"scope\":\"root\"}", 422, "invalid"},
        {AS_ADMIN, "/api/tokens", "{\"name\":\"x\"}", 422, "invalid"},
        {AS_ADMIN, "/api/tokens", "{\"name\":\" \",\"scope\":\"read\"}", 422, "invalid"},
        {AS_ADMIN, "/api/tokens", "{\"name\":7,\"scope\":\"read\"}", 422, "invalid"},
        {AS_AGENT, "/api/webhooks",
         "{\"url\":\"https://a.example/\",\"events\":[\"rating.created\"]}", 403, "forbidden"},
        {AS_ADMIN, "/api/webhooks", "{\"url\":\"https://a.example/\",\"events\":[]}", 422,
         "invalid"},
        {AS_ADMIN, "/api/webhooks", "{\"url\":\"https://a.example/\",\"events\":[\"nope\"]}", 422,
         "invalid"},
        {AS_ADMIN, "/api/webhooks",
         "{\"url\":\"https://a.example/\",\"events\":[\"rating.created\",\"rating.created\"]}", 422,
         "invalid"},
        {AS_ADMIN, "/api/webhooks",
         "{\"url\":\"ftp://a.example/\",\"events\":[\"rating.created\"]}", 422, "invalid"},
        {AS_ADMIN, "/api/webhooks", "{\"url\":\"https://a b/\",\"events\":[\"rating.created\"]}",
         422, "invalid"},
        {AS_ADMIN, "/api/webhooks", "{\"url\":\"https://\",\"events\":[\"rating.created\"]}", 422,
         "invalid"},
        {AS_ADMIN, "/api/webhooks",
         "{\"url\":\"https://a.example/\",\"events\":[\"rating.created\"],\"secret\":\"x\"}", 400,
         "bad_request"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect(cf_request(refused[i].who, "POST", refused[i].path, refused[i].body),
               refused[i].status, refused[i].code, refused[i].body);
    assert_int_equal(listed("/api/tokens", "tokens"), 0); /* nothing was written */
    assert_int_equal(listed("/api/webhooks", "webhooks"), 0);
    expect(cf_request(AS_AGENT, "GET", "/api/tokens", NULL), 403, "forbidden", "an agent's list");
    expect(cf_request(AS_ADMIN, "DELETE", "/api/tokens/999", NULL), 404, "not_found", "unknown");
    expect(cf_request(AS_ADMIN, "DELETE", "/api/webhooks/999", NULL), 404, "not_found", "unknown");
}

/* A request with the API token as its bearer (in the new visitor's place). */
static cf_response_t *as_token(const char *token, const char *method, const char *path,
                               const char *body)
{
    char saved[sizeof cf->new_visitor_token];
    memcpy(saved, cf->new_visitor_token, sizeof saved);
    snprintf(cf->new_visitor_token, sizeof cf->new_visitor_token, "%s", token);
    cf_response_t *r = cf_request(AS_NEW_VISITOR, method, path, body);
    memcpy(cf->new_visitor_token, saved, sizeof saved);
    return r;
}

static void test_tokens(void **state)
{
    (void)state;
    cf_response_t *r =
        cf_request(AS_ADMIN, "POST", "/api/tokens", "{\"name\":\" nightly \",\"scope\":\"read\"}");
    assert_int_equal(r->status, 201);
    json_t *token = json_object_get(r->json, "token");
    char secret[128], path[64];
    snprintf(secret, sizeof secret, "%s", json_string_value(json_object_get(token, "token")));
    assert_int_equal(strncmp(secret, "kfat_", 5), 0);
    assert_string_equal(json_string_value(json_object_get(token, "name")), "nightly");
    assert_true(json_is_null(json_object_get(token, "last_used_at")));
    snprintf(path, sizeof path, "/api/tokens/%lld",
             (long long)json_integer_value(json_object_get(token, "id")));
    cf_response_free(r);

    r = cf_request(AS_ADMIN, "GET", "/api/tokens", NULL);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->body, secret));
    assert_int_equal(json_array_size(json_object_get(r->json, "tokens")), 1);
    cf_response_free(r);

    /* Alone, no cookie and no CSRF token: reads, and only reads. */
    r = as_token(secret, "GET", "/api/conversations", NULL);
    assert_int_equal(r->status, 200);
    cf_response_free(r);
    expect(as_token(secret, "POST", "/api/agent/status", "{\"status\":\"away\"}"), 403, "forbidden",
           "a read token writing");
    expect(as_token(secret, "GET", "/api/tokens", NULL), 403, "forbidden", "on an admin route");
    expect(as_token("kfat_unknown", "GET", "/api/conversations", NULL), 401, "unauthorized",
           "an unknown token");
    /* A visitor's token is no API token, and an API token no visitor's. */
    expect(as_token(cf->visitor_token, "GET", "/api/conversations", NULL), 401, "unauthorized",
           "a visitor token");
    expect(as_token(secret, "GET", "/api/visitor/messages", NULL), 401, "unauthorized",
           "an API token on a visitor route");
    cf_forget_credentials(); /* no cache stands between a revocation and the next request */
    r = cf_request(AS_ADMIN, "GET", "/api/tokens", NULL);
    assert_true(json_integer_value(json_object_get(
                    json_array_get(json_object_get(r->json, "tokens"), 0), "last_used_at")) > 0);
    cf_response_free(r);

    expect(cf_request(AS_ADMIN, "DELETE", path, NULL), 200, "", "revoke");
    expect(as_token(secret, "GET", "/api/conversations", NULL), 401, "unauthorized", "revoked");
    expect(cf_request(AS_ADMIN, "DELETE", path, NULL), 404, "not_found", "revoked twice");

    /* An admin token on an admin route; a write token sends without a CSRF token. */
    r = cf_request(AS_ADMIN, "POST", "/api/tokens", "{\"name\":\"all\",\"scope\":\"admin\"}");
    snprintf(secret, sizeof secret, "%s",
             json_string_value(json_object_get(json_object_get(r->json, "token"), "token")));
    cf_response_free(r);
    r = as_token(secret, "GET", "/api/tokens", NULL);
    assert_int_equal(r->status, 200);
    cf_response_free(r);
    char send[96];
    snprintf(send, sizeof send, "/api/conversations/%lld/messages", (long long)cf->conversation_id);
    r = as_token(secret, "POST", send, "{\"body\":\"from a script\"}");
    assert_int_equal(r->status, 201);
    cf_response_free(r);
}

static void test_webhooks(void **state)
{
    (void)state;
    cf_response_t *r = cf_request(AS_ADMIN, "POST", "/api/webhooks",
                                  "{\"url\":\"https://hooks.example/"
                                  "kefu\",\"events\":[\"rating.created\",\"message.created\"]}");
    assert_int_equal(r->status, 201);
    json_t *hook = json_object_get(r->json, "webhook");
    int64_t id = json_integer_value(json_object_get(hook, "id"));
    assert_int_equal(strlen(json_string_value(json_object_get(hook, "secret"))), 64);
    json_t *events = json_object_get(hook, "events");
    assert_int_equal(json_array_size(events), 2);
    assert_string_equal(json_string_value(json_array_get(events, 0)), "rating.created");
    assert_true(cf->agent_events > 0); /* the consoles heard of it */
    cf_response_free(r);

    r = cf_request(AS_ADMIN, "GET", "/api/webhooks", NULL);
    assert_int_equal(json_array_size(json_object_get(r->json, "webhooks")), 1);
    cf_response_free(r);
    char path[64];
    snprintf(path, sizeof path, "/api/webhooks/%lld/deliveries", (long long)id);
    r = cf_request(AS_ADMIN, "GET", path, NULL);
    assert_int_equal(r->status, 200);
    assert_true(json_is_array(json_object_get(r->json, "deliveries")));
    cf_response_free(r);
    snprintf(path, sizeof path, "/api/webhooks/%lld", (long long)id);
    expect(cf_request(AS_ADMIN, "DELETE", path, NULL), 200, "", "delete");
    r = cf_request(AS_ADMIN, "GET", "/api/webhooks", NULL);
    assert_int_equal(json_array_size(json_object_get(r->json, "webhooks")), 0);
    cf_response_free(r);
}

static void test_store_failures(void **state)
{
    (void)state;
    failing_store_fail_nth(cf->store, FS_OP(api_token_create), 1, KF_EUNAVAIL);
    expect(cf_request(AS_ADMIN, "POST", "/api/tokens", "{\"name\":\"x\",\"scope\":\"read\"}"), 503,
           "unavailable", "a refused token write");
    failing_store_fail_nth(cf->store, FS_OP(webhook_create), 1, KF_ESTORE);
    expect(cf_request(AS_ADMIN, "POST", "/api/webhooks",
                      "{\"url\":\"https://a.example/\",\"events\":[\"rating.created\"]}"),
           500, "internal", "a failed webhook write");
    assert_int_equal(listed("/api/webhooks", "webhooks"), 0);
    failing_store_fail_nth(cf->store, FS_OP(api_token_delete), 1, KF_EUNAVAIL);
    expect(cf_request(AS_ADMIN, "DELETE", "/api/tokens/1", NULL), 503, "unavailable",
           "a refused revocation");
    /* A lookup that failed says nothing about the token: 500, never 401 (a client would drop
     * a good token). */
    failing_store_fail_nth(cf->store, FS_OP(api_token_by_hash), 1, KF_ESTORE);
    expect(as_token("kfat_whatever", "GET", "/api/conversations", NULL), 500, "internal",
           "a failed lookup");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_checks, cf_test_setup),
        cmocka_unit_test_setup(test_tokens, cf_test_setup),
        cmocka_unit_test_setup(test_webhooks, cf_test_setup),
        cmocka_unit_test_setup(test_store_failures, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, cf_group_teardown);
}
