/* test_widget_settings.c: the widget's settings (src/chat/widget_settings.c): a change checked
 * field by field (each refused value leaves the settings as they were), and the business hours
 * read in a zone with daylight saving (Europe/Berlin, across its March change) and one without
 * (Asia/Shanghai). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "chat/widget_settings.h"

#define H INT64_C(3600000)
#define DAY (24 * H)
/* 2025-03-30T00:00:00Z, a Sunday: Berlin's clocks go from 02:00 to 03:00 at 01:00Z that day. */
#define MAR30 INT64_C(1743292800000)
#define FRI28 (MAR30 - 2 * DAY)
#define MON31 (MAR30 + DAY)

/* defaults + change, which must be accepted. */
static json_t *merged(const char *change_text, kf_tz_t **tz)
{
    json_t *defaults = kf_widget_defaults();
    json_t *change = json_loads(change_text, 0, NULL);
    assert_non_null(change);
    json_t *out = NULL;
    const char *why = NULL;
    int rc = kf_widget_settings_merge(defaults, change, NULL, &out, tz, &why);
    if (rc != 0)
        fail_msg("%s: %d %s", change_text, rc, why);
    json_decref(change);
    json_decref(defaults);
    return out;
}

static void test_accepted(void **state)
{
    (void)state;
    kf_tz_t *tz = NULL;
    json_t *s = merged("{\"color\":\"#A1B2C3\",\"position\":\"bottom-left\",\"title\":\"Help\","
                       "\"greeting\":\"Hi!\\nAsk away.\",\"avatar\":\"ML\",\"language\":\"zh-CN\","
                       "\"time_zone\":\"Asia/Shanghai\",\"pages\":[\"/shop\",\"/help/*\"],"
                       "\"offline_form\":true,"
                       "\"hours\":{\"mon\":{\"open\":\"09:00\",\"close\":\"24:00\"}},"
                       "\"prechat\":{\"required\":true,\"fields\":[{\"label\":\"Order\","
                       "\"required\":false}],\"consent\":\"I agree.\"}}",
                       &tz);
    assert_non_null(tz);
    /* Kept lower-case: it goes into style sheets as it is. */
    assert_string_equal(json_string_value(json_object_get(s, "color")), "#a1b2c3");
    assert_string_equal(json_string_value(json_object_get(s, "position")), "bottom-left");
    assert_string_equal(json_string_value(json_object_get(s, "time_zone")), "Asia/Shanghai");
    assert_int_equal(json_array_size(json_object_get(s, "pages")), 2);
    assert_true(json_is_true(json_object_get(json_object_get(s, "prechat"), "required")));
    /* What the change left out keeps its default. */
    json_t *defaults = kf_widget_defaults();
    json_object_del(s, "color");
    assert_int_equal(json_object_size(s), json_object_size(defaults) - 1);
    json_decref(defaults);
    json_decref(s);
    kf_tz_free(tz);

    /* Back to always open, and "#rgb". */
    s = merged("{\"hours\":null,\"color\":\"#fff\"}", &tz);
    assert_true(json_is_null(json_object_get(s, "hours")));
    assert_string_equal(json_string_value(json_object_get(s, "color")), "#fff");
    json_decref(s);
    kf_tz_free(tz);
}

/* The sites that may show the widget become its frame's frame-ancestors; none: any site. */
static void test_sites(void **state)
{
    (void)state;
    kf_tz_t *tz = NULL;
    json_t *s = merged("{\"sites\":[\"https://shop.example.com\",\"http://localhost:8081\","
                       "\"https://*.example.org\",\"http://[::1]:9000\"]}",
                       &tz);
    kf_tz_free(tz);
    kf_buf_t out;
    kf_buf_init(&out);
    kf_widget_frame_ancestors(s, &out);
    kf_buf_append(&out, "", 1);
    assert_string_equal(out.data, "frame-ancestors 'self' https://shop.example.com "
                                  "http://localhost:8081 https://*.example.org http://[::1]:9000");
    json_decref(s);
    out.len = 0;
    json_t *d = kf_widget_defaults();
    kf_widget_frame_ancestors(d, &out);
    kf_buf_append(&out, "", 1);
    assert_string_equal(out.data, "frame-ancestors *");
    json_decref(d);
    kf_buf_free(&out);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "{}",
        "{\"colour\":\"#fff\"}",
        "{\"color\":\"red\"}",
        "{\"color\":\"#ffff\"}",
        "{\"color\":\"#ggg\"}",
        "{\"color\":\"#fff;x\"}",
        "{\"color\":1}",
        "{\"position\":\"top-left\"}",
        "{\"title\":\"a\\nb\"}",
        "{\"title\":\"" /* 81 bytes */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        "{\"greeting\":\"a\\u0001\"}",
        "{\"avatar\":null}",
        "{\"language\":\"de\"}",
        "{\"time_zone\":\"../etc/passwd\"}",
        "{\"time_zone\":\"\"}",
        "{\"hours\":[]}",
        "{\"hours\":{\"monday\":{\"open\":\"09:00\",\"close\":\"17:00\"}}}",
        "{\"hours\":{\"mon\":{\"open\":\"17:00\",\"close\":\"09:00\"}}}",
        "{\"hours\":{\"mon\":{\"open\":\"09:00\",\"close\":\"09:00\"}}}",
        "{\"hours\":{\"mon\":{\"open\":\"24:00\",\"close\":\"24:00\"}}}",
        "{\"hours\":{\"mon\":{\"open\":\"9:00\",\"close\":\"17:00\"}}}",
        "{\"hours\":{\"mon\":{\"open\":\"09:60\",\"close\":\"17:00\"}}}",
        "{\"hours\":{\"mon\":{\"open\":\"09:00\",\"close\":\"24:01\"}}}",
        "{\"hours\":{\"mon\":{\"open\":\"09:00\"}}}",
        "{\"hours\":{\"mon\":{\"open\":\"09:00\",\"close\":\"17:00\",\"x\":1}}}",
        "{\"offline_form\":1}",
        "{\"pages\":\"/shop\"}",
        "{\"pages\":[\"shop\"]}",
        "{\"pages\":[\"/a b\"]}",
        "{\"pages\":[\"\"]}",
        "{\"pages\":[\"/1\",\"/2\",\"/3\",\"/4\",\"/5\",\"/6\",\"/7\",\"/8\",\"/9\",\"/10\",\"/"
        "11\","
        "\"/12\",\"/13\",\"/14\",\"/15\",\"/16\",\"/17\",\"/18\",\"/19\",\"/20\",\"/21\"]}",
        "{\"prechat\":{\"required\":true}}",
        "{\"prechat\":{\"required\":1,\"fields\":[],\"consent\":\"\"}}",
        "{\"prechat\":{\"required\":true,\"fields\":[{\"label\":\"\",\"required\":true}],"
        "\"consent\":\"\"}}",
        "{\"prechat\":{\"required\":true,\"fields\":[{\"label\":\"x\"}],\"consent\":\"\"}}",
        "{\"prechat\":{\"required\":true,\"fields\":[\"x\"],\"consent\":\"\"}}",
        "{\"sites\":\"https://shop.example\"}",
        "{\"sites\":[\"shop.example\"]}",
        "{\"sites\":[\"ftp://shop.example\"]}",
        "{\"sites\":[\"https://shop.example/path\"]}",
        "{\"sites\":[\"https://Shop.example\"]}",
        "{\"sites\":[\"https://shop.example; script-src *\"]}",
        "{\"sites\":[\"https://shop.example,https://evil.example\"]}",
        "{\"sites\":[\"https://shop.example'\"]}",
        "{\"sites\":[\"https://\"]}",
        "{\"sites\":[\"https://.example\"]}",
        "{\"sites\":[\"https://shop.example:0\"]}",
        "{\"sites\":[\"https://shop.example:65536\"]}",
        "{\"sites\":[\"https://shop.example:\"]}",
        "{\"sites\":[\"https://*\"]}",
        "{\"sites\":[\"https://[::1\"]}",
        "{\"sites\":[\"*\"]}",
        /* one good field does not carry a bad one */
        "{\"title\":\"Fine\",\"color\":\"blue\"}",
    };
    json_t *defaults = kf_widget_defaults();
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        json_t *change = json_loads(refused[i], 0, NULL);
        if (change == NULL)
            fail_msg("not JSON: %s", refused[i]);
        json_t *out = NULL;
        kf_tz_t *tz = NULL;
        const char *why = NULL;
        if (kf_widget_settings_merge(defaults, change, NULL, &out, &tz, &why) != KF_EPROTO)
            fail_msg("accepted: %s", refused[i]);
        assert_null(out);
        assert_null(tz);
        assert_non_null(why);
        json_decref(change);
    }
    json_t *change = json_pack("{s:s}", "time_zone", "Nowhere/Atlantis");
    json_t *out = NULL;
    kf_tz_t *tz = NULL;
    const char *why = NULL;
    assert_int_equal(kf_widget_settings_merge(defaults, change, NULL, &out, &tz, &why),
                     KF_ENOTFOUND);
    assert_null(out);
    json_decref(change);
    /* Nothing was changed in place. */
    json_t *fresh = kf_widget_defaults();
    assert_true(json_equal(defaults, fresh));
    json_decref(fresh);
    json_decref(defaults);
}

#define WEEKDAYS                                                                                   \
    "\"mon\":{\"open\":\"09:00\",\"close\":\"17:00\"},"                                            \
    "\"tue\":{\"open\":\"09:00\",\"close\":\"17:00\"},"                                            \
    "\"wed\":{\"open\":\"09:00\",\"close\":\"17:00\"},"                                            \
    "\"thu\":{\"open\":\"09:00\",\"close\":\"17:00\"},"                                            \
    "\"fri\":{\"open\":\"09:00\",\"close\":\"17:00\"}"

static void test_hours_berlin(void **state)
{
    (void)state;
    kf_tz_t *tz = NULL;
    json_t *s = merged("{\"time_zone\":\"Europe/Berlin\",\"hours\":{" WEEKDAYS "}}", &tz);
    int64_t changes_at = -1;
    /* Friday 08:30Z is 09:30 in winter time (UTC+1): open until 17:00 there, 16:00Z. */
    assert_true(kf_widget_open_at(s, tz, FRI28 + 8 * H + 30 * 60000, &changes_at));
    assert_int_equal(changes_at, FRI28 + 16 * H);
    /* 07:30Z is 08:30 there: not yet. */
    assert_false(kf_widget_open_at(s, tz, FRI28 + 7 * H + 30 * 60000, &changes_at));
    assert_int_equal(changes_at, FRI28 + 8 * H);
    /* Friday 16:30Z (17:30): closed over the weekend, in which the clocks go forward, so Monday's
     * 09:00 is 07:00Z (UTC+2), not 08:00Z. */
    assert_false(kf_widget_open_at(s, tz, FRI28 + 16 * H + 30 * 60000, &changes_at));
    assert_int_equal(changes_at, MON31 + 7 * H);
    /* Sunday, the day of the change. */
    assert_false(kf_widget_open_at(s, tz, MAR30 + 12 * H, &changes_at));
    assert_int_equal(changes_at, MON31 + 7 * H);
    /* Monday 07:30Z is 09:30 in summer time: open (in winter time it would have been 08:30). */
    assert_true(kf_widget_open_at(s, tz, MON31 + 7 * H + 30 * 60000, &changes_at));
    assert_int_equal(changes_at, MON31 + 15 * H);
    assert_false(kf_widget_open_at(s, tz, MON31 + 6 * H + 59 * 60000, &changes_at));
    assert_true(kf_widget_open_at(s, tz, MON31 + 7 * H, &changes_at));
    assert_false(kf_widget_open_at(s, tz, MON31 + 15 * H, &changes_at));
    json_decref(s);
    kf_tz_free(tz);
}

static void test_hours_other(void **state)
{
    (void)state;
    kf_tz_t *tz = NULL;
    /* Shanghai, UTC+8 all year; open on Sundays only, all day. */
    json_t *s = merged("{\"time_zone\":\"Asia/Shanghai\","
                       "\"hours\":{\"sun\":{\"open\":\"00:00\",\"close\":\"24:00\"}}}",
                       &tz);
    int64_t changes_at;
    /* Saturday 16:00Z is Sunday 00:00 there. */
    assert_true(kf_widget_open_at(s, tz, MAR30 - 8 * H, &changes_at));
    assert_int_equal(changes_at, MAR30 + 16 * H);
    assert_false(kf_widget_open_at(s, tz, MAR30 - 8 * H - 1, &changes_at));
    assert_int_equal(changes_at, MAR30 - 8 * H);
    json_decref(s);
    kf_tz_free(tz);

    /* No hours: always open, and nothing to wait for. */
    s = merged("{\"hours\":null}", &tz);
    assert_true(kf_widget_open_at(s, tz, MAR30, &changes_at));
    assert_int_equal(changes_at, 0);
    json_decref(s);
    kf_tz_free(tz);

    /* Every day closed: never open, never changing. */
    s = merged("{\"hours\":{}}", &tz);
    assert_false(kf_widget_open_at(s, tz, MAR30, &changes_at));
    assert_int_equal(changes_at, 0);
    json_decref(s);
    kf_tz_free(tz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),    cmocka_unit_test(test_refused),
        cmocka_unit_test(test_sites),       cmocka_unit_test(test_hours_berlin),
        cmocka_unit_test(test_hours_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
