/* test_widget_api.c: the widget's settings over a real server (src/chat/widget_api.c,
 * tests/unit/support/chat_fixture.h): the public copy the loader reads from another origin, an
 * admin's change (stored, read back as a restart reads it, pushed to consoles and visitors),
 * an agent's refused (403), a bad value and a failed write that change nothing. */
#include "support/chat_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "chat/internal.h"
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

/* The widget's colour as GET /api/widget tells anyone. */
static char *public_color(void)
{
    cf_response_t *r = cf_request(AS_NOBODY, "GET", "/api/widget", NULL);
    assert_int_equal(r->status, 200);
    char *color =
        strdup(json_string_value(json_object_get(json_object_get(r->json, "widget"), "color")));
    cf_response_free(r);
    return color;
}

static void test_public_copy(void **state)
{
    (void)state;
    cf_response_t *r = cf_request(AS_NOBODY, "GET", "/api/widget", NULL);
    assert_int_equal(r->status, 200);
    /* Any site's page reads it, with no credentials. */
    assert_non_null(strstr(r->raw, "Access-Control-Allow-Origin: *\r\n"));
    json_t *widget = json_object_get(r->json, "widget");
    assert_string_equal(json_string_value(json_object_get(widget, "position")), "bottom-right");
    assert_true(json_is_null(json_object_get(widget, "hours")));
    json_t *availability = json_object_get(r->json, "availability");
    /* Nobody's console is open: no one to answer, though the desk is open (no hours set). */
    assert_true(json_is_false(json_object_get(availability, "online")));
    assert_true(json_is_true(json_object_get(availability, "open_now")));
    assert_true(json_is_false(json_object_get(availability, "available")));
    assert_true(json_is_null(json_object_get(availability, "changes_at")));
    cf_response_free(r);
    /* The visitor's own page reads the same with its details. */
    r = cf_request(AS_VISITOR, "GET", "/api/visitor", NULL);
    assert_non_null(json_object_get(json_object_get(r->json, "settings"), "widget"));
    assert_non_null(json_object_get(r->json, "availability"));
    expect(r, 200, "", "the visitor's details");
}

static void test_change(void **state)
{
    (void)state;
    const char *change = "{\"widget\":{\"color\":\"#C0FFEE\",\"title\":\"Shop help\","
                         "\"time_zone\":\"Europe/Berlin\",\"hours\":{\"sat\":{\"open\":\"10:00\","
                         "\"close\":\"14:00\"}}}}";
    expect(cf_request(AS_AGENT, "PATCH", "/api/settings", change), 403, "forbidden", "an agent");
    static const char *const refused[] = {
        "{\"widget\":{\"color\":\"teal\"}}",
        "{\"widget\":{}}",
        "{\"widget\":7}",
        "{\"widget\":{\"time_zone\":\"Nowhere/Atlantis\"}}",
        "{\"widget\":{\"sound\":true}}",
        "{\"widget\":{\"color\":\"#fff\"},\"typing_preview\":true}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect(cf_request(AS_ADMIN, "PATCH", "/api/settings", refused[i]), 400, "bad_request",
               refused[i]);
    failing_store_fail_nth(cf->store, FS_OP(setting_set), 1, KF_EUNAVAIL);
    expect(cf_request(AS_ADMIN, "PATCH", "/api/settings", change), 503, "unavailable",
           "a failed write");
    char *color = public_color();
    assert_string_equal(color, "#2159cc");
    free(color);

    int agent_events = cf->agent_events;
    int visitor_events = cf->visitor_events;
    cf_response_t *r = cf_request(AS_ADMIN, "PATCH", "/api/settings", change);
    json_t *widget = json_object_get(json_object_get(r->json, "settings"), "widget");
    assert_string_equal(json_string_value(json_object_get(widget, "color")), "#c0ffee");
    assert_string_equal(json_string_value(json_object_get(widget, "title")), "Shop help");
    assert_string_equal(json_string_value(json_object_get(widget, "position")), "bottom-right");
    expect(r, 200, "", "an admin's change");
    assert_int_equal(cf->agent_events, agent_events + 1);
    assert_int_equal(cf->visitor_events, visitor_events + 1);
    color = public_color();
    assert_string_equal(color, "#c0ffee");
    free(color);
    /* A later change keeps what it does not name. */
    expect(cf_request(AS_ADMIN, "PATCH", "/api/settings", "{\"widget\":{\"color\":\"#123\"}}"), 200,
           "", "a second change");
    r = cf_request(AS_AGENT, "GET", "/api/settings", NULL);
    widget = json_object_get(json_object_get(r->json, "settings"), "widget");
    assert_string_equal(json_string_value(json_object_get(widget, "title")), "Shop help");
    expect(r, 200, "", "an agent reads them");

    /* What a restart reads. */
    kf_widget_settings_free(cf->app);
    assert_int_equal(kf_widget_settings_load(cf->app), 0);
    assert_string_equal(json_string_value(json_object_get(cf->app->widget, "color")), "#123");
    assert_string_equal(json_string_value(json_object_get(cf->app->widget, "time_zone")),
                        "Europe/Berlin");
    assert_non_null(json_object_get(json_object_get(cf->app->widget, "hours"), "sat"));
}

/* Whether anyone is online reaches visitors' pages when the first agent comes, while the
 * leave-a-message form is on (otherwise their push connections are not woken for it). */
static void test_availability(void **state)
{
    (void)state;
    cf_response_t *r = cf_request(AS_NOBODY, "GET", "/api/widget", NULL);
    bool online = json_is_true(json_object_get(json_object_get(r->json, "availability"), "online"));
    cf_response_free(r);
    if (online)
        skip(); /* an agent's console from an earlier test is still counted online */
    expect(cf_request(AS_ADMIN, "PATCH", "/api/settings", "{\"widget\":{\"offline_form\":true}}"),
           200, "", "the form on");
    int told = cf->availability_events;
    expect(cf_request(AS_AGENT, "GET", "/push/poll?after=0", NULL), 200, "", "an agent's console");
    assert_int_equal(cf->availability_events, told + 1);
    r = cf_request(AS_NOBODY, "GET", "/api/widget", NULL);
    assert_true(json_is_true(json_object_get(json_object_get(r->json, "availability"), "online")));
    cf_response_free(r);
    /* Already someone there: nothing new for visitors. */
    expect(cf_request(AS_AGENT, "GET", "/push/poll?after=0", NULL), 200, "", "again");
    assert_int_equal(cf->availability_events, told + 1);
}

/* The pre-chat form's answers: checked against the admin's form, then in the visitor panel. */
static void test_form(void **state)
{
    (void)state;
    expect(cf_request(AS_ADMIN, "PATCH", "/api/settings",
                      "{\"widget\":{\"prechat\":{\"required\":true,\"fields\":[{\"label\":"
                      "\"Order\",\"required\":true},{\"label\":\"Shop\",\"required\":false}],"
                      "\"consent\":\"You may keep my e-mail.\"}}}"),
           200, "", "a form");
    static const char *const refused[] = {
        "{}",
        "{\"fields\":[],\"consent\":true}",
        "{\"fields\":[{\"label\":\"Order\",\"value\":\"\"},{\"label\":\"Shop\","
        "\"value\":\"\"}],\"consent\":true}",
        "{\"fields\":[{\"label\":\"Order\",\"value\":\"7\"},{\"label\":\"Shop\","
        "\"value\":\"\"}],\"consent\":false}",
        "{\"fields\":[{\"label\":\"Shop\",\"value\":\"7\"},{\"label\":\"Order\","
        "\"value\":\"7\"}],\"consent\":true}",
        "{\"fields\":[{\"label\":\"Order\",\"value\":7},{\"label\":\"Shop\","
        "\"value\":\"\"}],\"consent\":true}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect(cf_request(AS_VISITOR, "PUT", "/api/visitor/form", refused[i]), 400, "bad_request",
               refused[i]);
    expect(cf_request(AS_AGENT, "PUT", "/api/visitor/form", "{}"), 401, "unauthorized", "an agent");
    char path[96];
    snprintf(path, sizeof path, "/api/conversations/%lld/visitor", (long long)cf->conversation_id);
    cf_response_t *r = cf_request(AS_AGENT, "GET", path, NULL);
    assert_true(json_is_null(json_object_get(json_object_get(r->json, "visitor"), "form")));
    expect(r, 200, "", "no answers yet");

    int agent_events = cf->agent_events;
    expect(cf_request(AS_VISITOR, "PUT", "/api/visitor/form",
                      "{\"fields\":[{\"label\":\"Order\",\"value\":\"A-17\"},{\"label\":"
                      "\"Shop\",\"value\":\"\"}],\"consent\":true}"),
           200, "", "the answers");
    assert_int_equal(cf->agent_events, agent_events + 1);
    r = cf_request(AS_AGENT, "GET", path, NULL);
    json_t *form = json_object_get(json_object_get(r->json, "visitor"), "form");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(form, "fields"), 0), "value")),
                        "A-17");
    assert_string_equal(json_string_value(json_object_get(form, "consent")),
                        "You may keep my e-mail.");
    expect(r, 200, "", "the panel shows them");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_public_copy, cf_test_setup),
        cmocka_unit_test_setup(test_change, cf_test_setup),
        cmocka_unit_test_setup(test_form, cf_test_setup),
        cmocka_unit_test_setup(test_availability, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, cf_group_teardown);
}
