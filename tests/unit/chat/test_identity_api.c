/* test_identity_api.c: verified visitors over a real server (src/chat/identity_api.c,
 * tests/unit/support/chat_fixture.h): a signed session is the user's one visitor on every
 * device; wrong, stale and replayed signatures get their own 401 codes and malformed bodies 400,
 * none of which reaches the store (a replay reaches it and writes nothing); the site secret is
 * an admin's to read; --require-verified refuses anonymous sessions and unverified tokens; a
 * store that fails answers 503 and remembers no token. */
#include "support/chat_fixture.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "auth/identity.h"
#include "base/clock.h"
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

/* A body signed with the app's secret (or secret, when not NULL), at ts. */
static void signed_body(char *out, size_t size, const char *secret, const char *user_id,
                        const char *email, int64_t ts, const char *nonce)
{
    char msg[512], sig[KF_IDENTITY_SIG_SIZE];
    int len = snprintf(msg, sizeof msg, "%s\n%s\n%" PRId64 "\n%s", user_id, email, ts, nonce);
    const char *key = secret != NULL ? secret : cf->app->site_secret;
    assert_int_equal(kf_identity_hmac_hex(key, strlen(key), msg, (size_t)len, sig), 0);
    snprintf(out, size,
             "{\"user_id\":\"%s\",\"email\":\"%s\",\"name\":\"Li\",\"ts\":%" PRId64
             ",\"nonce\":\"%s\",\"sig\":\"%s\"}",
             user_id, email, ts, nonce, sig);
}

static int64_t now_s(void)
{
    return kf_clock_wall_ms() / 1000;
}

/* POST /api/visitor/session with body: the visitor's id (asserting 201 and verified). */
static int64_t sign_in(const char *body, char token[128])
{
    cf_response_t *r = cf_request(AS_NOBODY, "POST", "/api/visitor/session", body);
    if (r->status != 201)
        fail_msg("sign in %s: %d (%s)", body, r->status, r->body);
    json_t *visitor = json_object_get(r->json, "visitor");
    assert_true(json_is_true(json_object_get(visitor, "verified")));
    int64_t id = json_integer_value(json_object_get(visitor, "id"));
    if (token != NULL)
        snprintf(token, 128, "%s", json_string_value(json_object_get(r->json, "token")));
    cf_response_free(r);
    return id;
}

static void test_one_visitor_per_user(void **state)
{
    (void)state;
    char body[512], laptop[128], phone[128];
    signed_body(body, sizeof body, NULL, "user-1", "li@example.com", now_s(), "nonce-aaaa-0001");
    int events = cf->agent_events;
    int64_t id = sign_in(body, laptop);
    assert_int_equal(cf->agent_events, events + 1); /* the consoles hear of the visitor */
    signed_body(body, sizeof body, NULL, "user-1", "li@example.com", now_s(), "nonce-aaaa-0002");
    assert_int_equal(sign_in(body, phone), id);
    assert_string_not_equal(laptop, phone);
    /* The same body again: replayed, and no third token. */
    size_t writes = failing_store_calls(cf->store, FS_OP(visitor_identify));
    expect(cf_request(AS_NOBODY, "POST", "/api/visitor/session", body), 401, "replayed", "replay");
    assert_int_equal(failing_store_calls(cf->store, FS_OP(visitor_identify)), writes + 1);
    /* Another user is another visitor. */
    signed_body(body, sizeof body, NULL, "user-2", "", now_s(), "nonce-aaaa-0003");
    assert_true(sign_in(body, NULL) != id);
}

static void test_refused(void **state)
{
    (void)state;
    char body[600];
    signed_body(body, sizeof body, "not the secret", "user-1", "", now_s(), "nonce-bbbb-0001");
    expect(cf_request(AS_NOBODY, "POST", "/api/visitor/session", body), 401, "bad_signature",
           "another secret");
    signed_body(body, sizeof body, NULL, "user-1", "", now_s() - KF_IDENTITY_WINDOW_S - 5,
                "nonce-bbbb-0002");
    expect(cf_request(AS_NOBODY, "POST", "/api/visitor/session", body), 401, "stale_signature",
           "stale");
    signed_body(body, sizeof body, NULL, "user-1", "", now_s() + KF_IDENTITY_WINDOW_S + 5,
                "nonce-bbbb-0003");
    expect(cf_request(AS_NOBODY, "POST", "/api/visitor/session", body), 401, "stale_signature",
           "from the future");
    static const char *const malformed[] = {
        "{\"user_id\":\"u\",\"ts\":1,\"nonce\":\"nonce-0001\"}",
        "{\"user_id\":\"u\",\"ts\":\"1\",\"nonce\":\"nonce-0001\",\"sig\":\"00\"}",
        "{\"user_id\":\"u\",\"ts\":1.5,\"nonce\":\"nonce-0001\",\"sig\":\"00\"}",
        "{\"user_id\":\"\",\"ts\":1,\"nonce\":\"nonce-0001\",\"sig\":\"00\"}",
        "{\"user_id\":7,\"ts\":1,\"nonce\":\"nonce-0001\",\"sig\":\"00\"}",
        "{\"user_id\":\"a\\nb\",\"ts\":1,\"nonce\":\"nonce-0001\",\"sig\":\"00\"}",
        "{\"user_id\":\"u\",\"ts\":1,\"nonce\":\"short\",\"sig\":\"00\"}",
        "{\"user_id\":\"u\",\"email\":[],\"ts\":1,\"nonce\":\"nonce-0001\",\"sig\":\"00\"}",
        "{\"sig\":\"00\"}",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        expect(cf_request(AS_NOBODY, "POST", "/api/visitor/session", malformed[i]), 400,
               "bad_request", malformed[i]);
    char long_id[300];
    memset(long_id, 'u', 256);
    long_id[256] = '\0';
    signed_body(body, sizeof body, NULL, long_id, "", now_s(), "nonce-bbbb-0004");
    expect(cf_request(AS_NOBODY, "POST", "/api/visitor/session", body), 400, "bad_request",
           "a user id of 256 bytes");
    assert_int_equal(failing_store_calls(cf->store, FS_OP(visitor_identify)), 0);
}

static void test_site_secret(void **state)
{
    (void)state;
    cf_response_t *r = cf_request(AS_ADMIN, "GET", "/api/settings/site-secret", NULL);
    assert_int_equal(r->status, 200);
    const char *secret = json_string_value(json_object_get(r->json, "site_secret"));
    assert_non_null(secret);
    assert_int_equal(strlen(secret), 64);
    assert_string_equal(secret, cf->app->site_secret);
    assert_true(json_is_false(json_object_get(r->json, "require_verified")));
    cf_response_free(r);
    expect(cf_request(AS_AGENT, "GET", "/api/settings/site-secret", NULL), 403, "forbidden",
           "an agent");
    /* The store's copy is the one the app holds: a restart reads it back. */
    char stored[KF_SITE_SECRET_SIZE];
    assert_int_equal(kf_app_site_secret(cf->store, stored), 0);
    assert_string_equal(stored, cf->app->site_secret);
}

static void test_require_verified(void **state)
{
    (void)state;
    cf->app->config.require_verified = true;
    expect(cf_request(AS_NOBODY, "POST", "/api/visitor/session", "{}"), 401,
           "verification_required", "an anonymous session");
    expect(cf_request(AS_VISITOR, "GET", "/api/visitor/session", NULL), 401,
           "verification_required", "an unverified token (cached)");
    cf_forget_credentials();
    expect(cf_request(AS_VISITOR, "GET", "/api/visitor/session", NULL), 401,
           "verification_required", "an unverified token (read from the store)");
    char body[512], token[128];
    signed_body(body, sizeof body, NULL, "user-9", "", now_s(), "nonce-cccc-0001");
    sign_in(body, token);
    cf->app->config.require_verified = false;
}

static void test_store_fails(void **state)
{
    (void)state;
    char body[512];
    signed_body(body, sizeof body, NULL, "user-3", "", now_s(), "nonce-dddd-0001");
    failing_store_fail_nth(cf->store, FS_OP(visitor_identify), 1, KF_EUNAVAIL);
    expect(cf_request(AS_NOBODY, "POST", "/api/visitor/session", body), 503, "unavailable",
           "a store that cannot write");
    failing_store_reset(cf->store);
    /* Nothing was written: the same signature is taken now. */
    sign_in(body, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_one_visitor_per_user, cf_test_setup),
        cmocka_unit_test_setup(test_refused, cf_test_setup),
        cmocka_unit_test_setup(test_site_secret, cf_test_setup),
        cmocka_unit_test_setup(test_require_verified, cf_test_setup),
        cmocka_unit_test_setup(test_store_fails, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, cf_group_teardown);
}
