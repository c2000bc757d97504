/* test_visitor_details_api.c: visitor details over a real server (src/chat/visitor_details_api.c,
 * tests/unit/support/chat_fixture.h): a page report's checks (400 for a bad URL, scheme, size,
 * language, zone or offset, none of which reaches the store), the panel that shows what was
 * reported, the name and e-mail by the visitor and by an agent (400 for a bad e-mail), the
 * typing preview setting (admins only, 400 for anything but a boolean, not taken when its write
 * fails) and the draft that goes with typing only while it is on. */
#include "support/chat_fixture.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The fixture's conversation's panel. */
static cf_response_t *panel(void)
{
    char path[96];
    snprintf(path, sizeof path, "/api/conversations/%lld/visitor", (long long)cf->conversation_id);
    cf_response_t *r = cf_request(AS_AGENT, "GET", path, NULL);
    assert_int_equal(r->status, 200);
    return r;
}

static const char *field(json_t *object, const char *name)
{
    return json_string_value(json_object_get(object, name));
}

static void test_page_checks(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "{}",
        "{\"url\":7}",
        "{\"url\":\"javascript:alert(1)\"}",
        "{\"url\":\"/relative\"}",
        "{\"url\":\"https://x.example/\\n\"}",
        "{\"url\":\"https://x.example/\",\"title\":5}",
        "{\"url\":\"https://x.example/\",\"referrer\":\"data:text/html,x\"}",
        "{\"url\":\"https://x.example/\",\"language\":\"en GB\"}",
        "{\"url\":\"https://x.example/\",\"timezone\":\"Europe/<b>\"}",
        "{\"url\":\"https://x.example/\",\"utc_offset\":900}",
        "{\"url\":\"https://x.example/\",\"utc_offset\":\"60\"}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect(cf_request(AS_VISITOR, "POST", "/api/visitor/page", refused[i]), 400, "bad_request",
               refused[i]);
    /* Sizes: a URL of 2049 bytes and a title of 301 characters are refused, 2048 and 300 go. */
    char *body = malloc(8192);
    int n = snprintf(body, 8192, "{\"url\":\"https://x.example/");
    memset(body + n, 'a', 2049 - 18);
    strcpy(body + n + 2049 - 18, "\"}");
    expect(cf_request(AS_VISITOR, "POST", "/api/visitor/page", body), 400, "bad_request", "2049");
    strcpy(body + n + 2048 - 18, "\"}");
    expect(cf_request(AS_VISITOR, "POST", "/api/visitor/page", body), 200, "", "2048");
    n = snprintf(body, 8192, "{\"url\":\"https://x.example/\",\"title\":\"");
    for (int i = 0; i < 301; i++)
        n += snprintf(body + n, 8192 - (size_t)n, "é");
    strcpy(body + n, "\"}");
    expect(cf_request(AS_VISITOR, "POST", "/api/visitor/page", body), 400, "bad_request", "301");
    free(body);
    expect(cf_request(AS_AGENT, "POST", "/api/visitor/page", "{\"url\":\"https://x.example/\"}"),
           401, "unauthorized", "an agent");
}

/* A page report over the WebSocket is acked, and reaches the consoles as over HTTP; an agent
 * has no such action. (Its rate limit is test_limits' and abuse-free here: the fixture turns the
 * visitor limits off.) */
static void test_page_over_websocket(void **state)
{
    (void)state;
    kf_buf_t in;
    kf_buf_init(&in);
    int fd = cf_ws_open_as(AS_VISITOR, &in);
    int events = cf->agent_events;
    cf_ws_send(fd, "{\"type\":\"page\",\"ref\":\"p1\",\"url\":\"https://x.example/ws\"}");
    char *reply = cf_ws_read_until(fd, &in, "\"ref\":\"p1\"");
    assert_non_null(strstr(reply, "\"type\":\"ack\""));
    free(reply);
    /* Its "visitor" event, and a "browsing" one: the visitor came online (chat/browsing.h). */
    assert_int_equal(cf->agent_events, events + 2);
    cf_ws_send(fd, "{\"type\":\"page\",\"ref\":\"p2\",\"url\":\"javascript:x\"}");
    reply = cf_ws_read_until(fd, &in, "\"ref\":\"p2\"");
    assert_non_null(strstr(reply, "bad_request"));
    free(reply);
    close(fd);
    kf_buf_free(&in);

    kf_buf_init(&in);
    fd = cf_ws_open_as(AS_AGENT, &in);
    cf_ws_send(fd, "{\"type\":\"page\",\"ref\":\"p3\",\"url\":\"https://x.example/\"}");
    reply = cf_ws_read_until(fd, &in, "\"ref\":\"p3\"");
    assert_non_null(strstr(reply, "unknown action type"));
    free(reply);
    close(fd);
    kf_buf_free(&in);
}

static void test_page_shows_in_panel(void **state)
{
    (void)state;
    cf_response_t *r = panel();
    json_t *visitor = json_object_get(r->json, "visitor");
    assert_true(json_is_object(visitor));
    cf_response_free(r);

    int events = cf->agent_events;
    expect(cf_request(AS_VISITOR, "POST", "/api/visitor/page",
                      "{\"url\":\"https://shop.example/\",\"title\":\"Shop\"}"),
           200, "", "the first page");
    expect(cf_request(AS_VISITOR, "POST", "/api/visitor/page",
                      "{\"url\":\"https://shop.example/pricing\",\"title\":\"Pricing\","
                      "\"referrer\":\"https://search.example/?q=shop\","
                      "\"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 "
                      "Safari/537.36\",\"language\":\"de-DE\",\"timezone\":\"Europe/Berlin\","
                      "\"utc_offset\":60}"),
           200, "", "the second page");
    /* A "visitor" event each, and a "browsing" one each (online, then on another page). */
    assert_int_equal(cf->agent_events, events + 4);

    r = panel();
    visitor = json_object_get(r->json, "visitor");
    json_t *page = json_object_get(visitor, "page");
    assert_string_equal(field(page, "url"), "https://shop.example/pricing");
    assert_string_equal(field(page, "title"), "Pricing");
    assert_string_equal(field(visitor, "referrer"), "https://search.example/?q=shop");
    assert_string_equal(field(visitor, "browser"), "Chrome 120 on Linux");
    assert_string_equal(field(visitor, "language"), "de-DE");
    assert_string_equal(field(visitor, "timezone"), "Europe/Berlin");
    assert_int_equal(json_integer_value(json_object_get(visitor, "utc_offset")), 60);
    json_t *pages = json_object_get(visitor, "pages");
    assert_true(json_array_size(pages) >= 2);
    assert_string_equal(field(json_array_get(pages, 0), "url"), "https://shop.example/pricing");
    assert_string_equal(field(json_array_get(pages, 1), "url"), "https://shop.example/");
    assert_true(json_is_array(json_object_get(r->json, "conversations")));
    cf_response_free(r);

    expect(cf_request(AS_AGENT, "GET", "/api/conversations/99999/visitor", NULL), 404, "not_found",
           "an unknown conversation");
    expect(cf_request(AS_VISITOR, "GET", "/api/conversations/1/visitor", NULL), 401, "unauthorized",
           "a visitor");
}

static void test_name_and_email(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "{}",
        "{\"email\":\"no-at-sign.example\"}",
        "{\"email\":\"two@@example.com\"}",
        "{\"email\":\"a@b@example.com\"}",
        "{\"email\":\"ana@localhost\"}",
        "{\"email\":\"@example.com\"}",
        "{\"email\":\"ana@example.\"}",
        "{\"email\":\"ana smith@example.com\"}",
        "{\"email\":7}",
        "{\"name\":false}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect(cf_request(AS_VISITOR, "PATCH", "/api/visitor", refused[i]), 400, "bad_request",
               refused[i]);
    char body[400];
    int n = snprintf(body, sizeof body, "{\"email\":\"");
    memset(body + n, 'a', 250);
    strcpy(body + n + 250, "@x.io\"}");
    expect(cf_request(AS_VISITOR, "PATCH", "/api/visitor", body), 400, "bad_request", "255 bytes");

    int events = cf->agent_events;
    cf_response_t *r = cf_request(AS_VISITOR, "PATCH", "/api/visitor",
                                  "{\"name\":\" Mia Wong \",\"email\":\"mia@shop.example\"}");
    json_t *visitor = json_object_get(r->json, "visitor");
    assert_string_equal(field(visitor, "name"), "Mia Wong");
    assert_string_equal(field(visitor, "email"), "mia@shop.example");
    expect(r, 200, "", "the visitor's details");
    assert_true(cf->agent_events > events);

    /* The session's answer, whose visitor comes from the credential cache, has the new name. */
    r = cf_request(AS_VISITOR, "GET", "/api/visitor/session", NULL);
    assert_string_equal(field(json_object_get(r->json, "visitor"), "name"), "Mia Wong");
    expect(r, 200, "", "the session after a new name");

    r = cf_request(AS_VISITOR, "GET", "/api/visitor", NULL);
    assert_string_equal(field(json_object_get(r->json, "visitor"), "email"), "mia@shop.example");
    assert_true(
        json_is_boolean(json_object_get(json_object_get(r->json, "settings"), "typing_preview")));
    expect(r, 200, "", "the visitor's own read");

    r = cf_request(AS_AGENT, "GET", "/api/search?q=shop.example", NULL);
    assert_int_equal(r->status, 200);
    json_t *hit = json_array_get(json_object_get(r->json, "results"), 0);
    assert_string_equal(field(hit, "field"), "visitor");
    /* The snippet shows what matched: the e-mail beside the name, marked. */
    assert_string_equal(field(hit, "snippet"), "Mia Wong · mia@shop.example");
    assert_true(json_array_size(json_object_get(hit, "highlights")) >= 1);
    cf_response_free(r);

    char path[96];
    snprintf(path, sizeof path, "/api/conversations/%lld/visitor", (long long)cf->conversation_id);
    expect(cf_request(AS_AGENT, "PATCH", path, "{\"email\":\"nope\"}"), 400, "bad_request",
           "an agent's bad e-mail");
    r = cf_request(AS_AGENT, "PATCH", path, "{\"email\":\"MIA@other.example\"}");
    assert_string_equal(field(json_object_get(r->json, "visitor"), "email"), "MIA@other.example");
    assert_string_equal(field(json_object_get(r->json, "visitor"), "name"), "Mia Wong");
    expect(r, 200, "", "an agent's change");
    expect(cf_request(AS_AGENT, "PATCH", "/api/conversations/99999/visitor", "{\"name\":\"X\"}"),
           404, "not_found", "an unknown conversation");
    expect(cf_request(AS_VISITOR, "PATCH", "/api/visitor", "{\"email\":\"\"}"), 200, "",
           "the e-mail cleared");
}

static void test_settings(void **state)
{
    (void)state;
    cf_response_t *r = cf_request(AS_AGENT, "GET", "/api/settings", NULL);
    assert_true(
        json_is_false(json_object_get(json_object_get(r->json, "settings"), "typing_preview")));
    expect(r, 200, "", "off by default");
    expect(cf_request(AS_AGENT, "PATCH", "/api/settings", "{\"typing_preview\":true}"), 403,
           "forbidden", "an agent");
    static const char *const refused[] = {"{}", "{\"typing_preview\":1}",
                                          "{\"typing_preview\":\"true\"}",
                                          "{\"typing_preview\":true,\"other\":1}"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect(cf_request(AS_ADMIN, "PATCH", "/api/settings", refused[i]), 400, "bad_request",
               refused[i]);
    failing_store_fail_nth(cf->store, FS_OP(setting_set), 1, KF_EUNAVAIL);
    expect(cf_request(AS_ADMIN, "PATCH", "/api/settings", "{\"typing_preview\":true}"), 503,
           "unavailable", "a failed write");
    assert_false(cf->app->typing_preview);

    /* Off: the draft is dropped. */
    int events = cf->agent_events;
    expect(cf_request(AS_VISITOR, "POST", "/api/visitor/typing",
                      "{\"typing\":true,\"text\":\"my secret draft\"}"),
           200, "", "typing with a draft, off");
    assert_int_equal(cf->agent_events, events + 1);

    int visitor_events = cf->visitor_events;
    r = cf_request(AS_ADMIN, "PATCH", "/api/settings", "{\"typing_preview\":true}");
    assert_true(
        json_is_true(json_object_get(json_object_get(r->json, "settings"), "typing_preview")));
    expect(r, 200, "", "on");
    assert_true(cf->app->typing_preview);
    assert_int_equal(cf->visitor_events, visitor_events + 1); /* the visitor's page is told */
    expect(cf_request(AS_VISITOR, "POST", "/api/visitor/typing", "{\"typing\":true,\"text\":7}"),
           400, "bad_request", "a draft that is not text");
    expect(cf_request(AS_VISITOR, "POST", "/api/visitor/typing",
                      "{\"typing\":true,\"text\":\"hello th\"}"),
           200, "", "typing with a draft, on");
    expect(cf_request(AS_ADMIN, "PATCH", "/api/settings", "{\"typing_preview\":false}"), 200, "",
           "off again");
    assert_false(cf->app->typing_preview);
}

/* A store that fails: 503 while the database refuses writes, 500 for another failure, and
 * nothing published. */
static void test_store_failures(void **state)
{
    (void)state;
    int events = cf->agent_events;
    failing_store_fail_nth(cf->store, FS_OP(visitor_page_add), 1, KF_EUNAVAIL);
    expect(cf_request(AS_VISITOR, "POST", "/api/visitor/page", "{\"url\":\"https://x.example/\"}"),
           503, "unavailable", "a page report not stored");
    failing_store_fail_nth(cf->store, FS_OP(visitor_update), 1, KF_EUNAVAIL);
    expect(cf_request(AS_VISITOR, "PATCH", "/api/visitor", "{\"name\":\"X\"}"), 503, "unavailable",
           "a name not stored");
    assert_int_equal(cf->agent_events, events);
    failing_store_fail_nth(cf->store, FS_OP(visitor_get), 1, KF_ESTORE);
    char path[96];
    snprintf(path, sizeof path, "/api/conversations/%lld/visitor", (long long)cf->conversation_id);
    expect(cf_request(AS_AGENT, "GET", path, NULL), 500, "internal", "a failed read");
    failing_store_refuse_nth(cf->store, FS_OP(visitor_get), 1, KF_EUNAVAIL);
    expect(cf_request(AS_VISITOR, "GET", "/api/visitor", NULL), 503, "unavailable",
           "a read refused at once");
    expect(cf_request(AS_AGENT, "GET", path, NULL), 200, "", "the panel again");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_page_checks, cf_test_setup),
        cmocka_unit_test_setup(test_page_shows_in_panel, cf_test_setup),
        cmocka_unit_test_setup(test_name_and_email, cf_test_setup),
        cmocka_unit_test_setup(test_settings, cf_test_setup),
        cmocka_unit_test_setup(test_page_over_websocket, cf_test_setup),
        cmocka_unit_test_setup(test_store_failures, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, cf_group_teardown);
}
