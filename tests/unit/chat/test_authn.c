/* test_authn.c: request authentication (src/chat/authn.c) in the cases that need no store read:
 * push tickets (valid, expired, forged, of another kind, revoked by a logout, and revocations
 * swept), the caches (a remembered visitor's token answers at once; forgetting them), the session
 * cookie's name and its token's hash, and the key kept in the store across restarts. The lookups
 * that wait for the store run over a real server in test_chat.c and test_routes.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "chat/authn.h"
#include "support/sqlite_db.h"

/* A request as the dispatcher would hand it over: only its head is looked at here. */
typedef struct fake {
    char text[1024];
    kf_http_request_t head;
    kf_req_t req;
} fake_t;

static void fake_request(fake_t *f, const char *target, const char *headers)
{
    snprintf(f->text, sizeof f->text, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", target, headers);
    kf_http_limits_t limits;
    kf_http_limits_default(&limits);
    assert_true(kf_http_parse_request(f->text, strlen(f->text), &limits, &f->head, NULL) > 0);
    memset(&f->req, 0, sizeof f->req);
    f->req.head = &f->head;
}

static void never_resumed(kf_req_t *req, int rc, const kf_principal_t *who)
{
    (void)req;
    (void)rc;
    (void)who;
    fail_msg("a lookup that needs no store was resumed");
}

static int identify(kf_authn_t *authn, const char *target, const char *headers, unsigned creds,
                    kf_principal_t *who)
{
    fake_t f;
    fake_request(&f, target, headers);
    return kf_authn_identify(authn, &f.req, creds, who, never_resumed);
}

static void test_tickets_and_caches(void **state)
{
    (void)state;
    sqlite_db_t *db = sqlite_db_create();
    kf_store_t *store;
    assert_int_equal(kf_store_open_sqlite(db->path, "OFF", &store), 0);
    kf_app_config_t config;
    kf_app_config_default(&config);
    int err = 0;
    kf_authn_t *authn = kf_authn_new(store, &config, &err);
    assert_non_null(authn);
    assert_int_equal(kf_authn_ticket_seconds(authn), 60);
    assert_string_equal(kf_authn_cookie_name(authn), "kefu_session");

    char ticket[KF_TICKET_SIZE], path[256];
    kf_principal_t who;
    assert_int_equal(kf_authn_ticket(authn, 'a', 42, ticket), 0);
    snprintf(path, sizeof path, "/push/poll?ticket=%s", ticket);
    assert_int_equal(identify(authn, path, "", KF_CRED_TICKET, &who), 0);
    assert_int_equal(who.kind, 'a');
    assert_true(who.by_ticket);
    assert_int_equal(who.agent.id, 42);
    /* Not a route that takes tickets: the ticket is not looked at. */
    assert_int_equal(identify(authn, path, "", KF_CRED_COOKIE, &who), KF_EAUTH);
    /* Forged, cut, or none at all. */
    char forged[KF_TICKET_SIZE + 32];
    snprintf(forged, sizeof forged, "/push/poll?ticket=v%s", ticket + 1);
    assert_int_equal(identify(authn, forged, "", KF_CRED_TICKET, &who), KF_EAUTH);
    assert_int_equal(identify(authn, "/push/poll?ticket=", "", KF_CRED_TICKET, &who), KF_EAUTH);
    assert_int_equal(identify(authn, "/push/poll", "", KF_CRED_TICKET, &who), KF_EAUTH);

    /* A logout revokes the tickets signed before it, of that agent only. */
    char other[KF_TICKET_SIZE];
    assert_int_equal(kf_authn_ticket(authn, 'a', 43, other), 0);
    kf_authn_revoke_tickets(authn, 'a', 42);
    assert_int_equal(identify(authn, path, "", KF_CRED_TICKET, &who), KF_EAUTH);
    snprintf(path, sizeof path, "/push/poll?ticket=%s", other);
    assert_int_equal(identify(authn, path, "", KF_CRED_TICKET, &who), 0);
    /* Sweeping keeps a revocation as long as a ticket it refuses may live. */
    kf_authn_sweep(authn);
    snprintf(path, sizeof path, "/push/poll?ticket=%s", ticket);
    assert_int_equal(identify(authn, path, "", KF_CRED_TICKET, &who), KF_EAUTH);

    /* A remembered visitor answers from the cache, with their name; the caches forgotten, the
     * same token would need the store (not exercised here). */
    kf_visitor_auth_t visitor = {.id = 7};
    snprintf(visitor.name, sizeof visitor.name, "Ada");
    char token_hash[KF_HASH_HEX_SIZE];
    kf_auth_sha256_hex("tok", 3, token_hash);
    kf_authn_remember_visitor(authn, token_hash, &visitor);
    assert_int_equal(identify(authn, "/x", "Authorization: Bearer tok\r\n", KF_CRED_BEARER, &who),
                     0);
    assert_int_equal(who.kind, 'v');
    assert_false(who.by_ticket);
    assert_string_equal(who.visitor.name, "Ada");
    assert_int_equal(
        identify(authn, "/x", "Authorization: Basic dG9rOg==\r\n", KF_CRED_BEARER, &who), KF_EAUTH);
    assert_int_equal(identify(authn, "/x", "", KF_CRED_BEARER | KF_CRED_COOKIE, &who), KF_EAUTH);

    /* The session cookie: its token's hash, under the configured name only. */
    fake_t f;
    fake_request(&f, "/x", "Cookie: a=1; kefu_session=secret; b=2\r\n");
    char hash[KF_HASH_HEX_SIZE], want[KF_HASH_HEX_SIZE];
    assert_int_equal(kf_authn_session_hash(authn, &f.req, hash), 0);
    kf_auth_sha256_hex("secret", 6, want);
    assert_string_equal(hash, want);
    fake_request(&f, "/x", "Cookie: kefu_session=\r\n");
    assert_int_equal(kf_authn_session_hash(authn, &f.req, hash), KF_ENOTFOUND);
    kf_authn_free(authn);

    /* With Secure cookies the name has the __Host- prefix, and the plain one is not read; the
     * ticket key is the one kept in the store: a ticket of the first outlives a restart. */
    config.secure_cookies = true;
    authn = kf_authn_new(store, &config, &err);
    assert_string_equal(kf_authn_cookie_name(authn), "__Host-kefu_session");
    fake_request(&f, "/x", "Cookie: kefu_session=secret\r\n");
    assert_int_equal(kf_authn_session_hash(authn, &f.req, hash), KF_ENOTFOUND);
    fake_request(&f, "/x", "Cookie: __Host-kefu_session=secret\r\n");
    assert_int_equal(kf_authn_session_hash(authn, &f.req, hash), 0);
    snprintf(path, sizeof path, "/push/poll?ticket=%s", other);
    assert_int_equal(identify(authn, path, "", KF_CRED_TICKET, &who), 0);
    kf_authn_forget_all(authn);
    kf_authn_free(authn);

    /* A short lifetime: an expired ticket is told apart from a forged one. */
    config.ticket_ttl_ms = 1;
    authn = kf_authn_new(store, &config, &err);
    assert_int_equal(kf_authn_ticket(authn, 'v', 9, ticket), 0);
    uint64_t until = kf_clock_mono_ms() + 5;
    while (kf_clock_mono_ms() < until)
        ;
    snprintf(path, sizeof path, "/push/poll?ticket=%s", ticket);
    assert_int_equal(identify(authn, path, "", KF_CRED_TICKET, &who), KF_EEXPIRED);
    kf_authn_free(authn);

    kf_store_close(store);
    sqlite_db_check(db);
    sqlite_db_destroy(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tickets_and_caches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
