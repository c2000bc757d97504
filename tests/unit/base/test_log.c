/* test_log.c: log levels, records that stay one line whatever a client sent, the request id in
 * them, and JSON lines that parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/err.h"
#include "base/log.h"

static void test_log_levels(void **state)
{
    (void)state;
    kf_log_level_t level;
    assert_int_equal(kf_log_parse_level("warn", &level), 0);
    assert_int_equal(level, KF_LOG_WARN);
    assert_int_equal(kf_log_parse_level("loud", &level), KF_EINVAL);
    kf_log_set_level(KF_LOG_OFF);
    kf_error("not printed %d", 1);
    kf_log_set_level(KF_LOG_INFO);
    assert_int_equal(kf_log_get_level(), KF_LOG_INFO);
    kf_debug("below the level");
}

/* A record longer than a line is cut, still ends with a newline, and carries no control
 * characters a client sent. */
static void test_log_long_and_hostile_lines(void **state)
{
    (void)state;
    char *long_text = malloc(5000);
    memset(long_text, 'x', 4999);
    long_text[4999] = '\0';
    FILE *capture = tmpfile();
    assert_non_null(capture);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(capture), 2);
    kf_info("%s", long_text);
    kf_warn("forged\r\n2026-01-01T00:00:00.000Z error line%c", '\x1b');
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    free(long_text);
    rewind(capture);
    char line[4096];
    assert_non_null(fgets(line, sizeof line, capture));
    assert_true(strlen(line) < 2048);
    assert_int_equal(line[strlen(line) - 1], '\n');
    assert_non_null(strstr(line, " info  xxxx"));
    assert_non_null(fgets(line, sizeof line, capture));
    assert_non_null(strstr(line, "forged??2026-01-01T00:00:00.000Z error line?\n"));
    assert_null(fgets(line, sizeof line, capture)); /* two records, two lines */
    fclose(capture);
}

/* Runs fn with stderr going to a scratch file; returns what it wrote (free it). */
static char *captured(void (*fn)(void))
{
    FILE *capture = tmpfile();
    assert_non_null(capture);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(capture), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(capture);
    char *text = calloc(1, 16384);
    size_t n = fread(text, 1, 16383, capture);
    text[n] = '\0';
    fclose(capture);
    return text;
}

static void log_with_request(void)
{
    kf_info("outside");
    assert_null(kf_log_set_request_id("req-42"));
    kf_warn("say \"hi\"\n\\ %c", '\x01');
    char *long_text = malloc(5000);
    memset(long_text, 'y', 4999);
    long_text[4999] = '\0';
    kf_info("%s", long_text);
    free(long_text);
    assert_string_equal(kf_log_set_request_id(NULL), "req-42");
    kf_info("after");
}

static void test_log_request_ids_plain(void **state)
{
    (void)state;
    char *text = captured(log_with_request);
    char *lines[4];
    size_t count = 0;
    for (char *line = strtok(text, "\n"); line != NULL && count < 4; line = strtok(NULL, "\n"))
        lines[count++] = line;
    assert_int_equal(count, 4);
    assert_null(strstr(lines[0], "request="));
    assert_non_null(strstr(lines[1], " warn  say \"hi\"?\\ ? request=req-42"));
    /* A long message is cut; the id stays, and the line stays under 2048 bytes. */
    assert_true(strlen(lines[2]) < 2047);
    size_t len = strlen(lines[2]);
    assert_string_equal(lines[2] + len - strlen("yyy request=req-42"), "yyy request=req-42");
    assert_null(strstr(lines[3], "request="));
    free(text);
}

static void test_log_json_lines(void **state)
{
    (void)state;
    kf_log_format_t format;
    assert_int_equal(kf_log_parse_format("xml", &format), KF_EINVAL);
    assert_int_equal(kf_log_parse_format("json", &format), 0);
    kf_log_set_format(format);
    char *text = captured(log_with_request);
    kf_log_set_format(KF_LOG_PLAIN);
    size_t count = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"), count++) {
        json_error_t error;
        json_t *record = json_loads(line, 0, &error);
        if (record == NULL)
            fail_msg("not JSON (%s): %s", error.text, line);
        assert_non_null(json_string_value(json_object_get(record, "time")));
        const char *id = json_string_value(json_object_get(record, "request_id"));
        const char *msg = json_string_value(json_object_get(record, "msg"));
        if (count == 0) {
            assert_null(id);
            assert_string_equal(msg, "outside");
        } else if (count == 1) {
            assert_string_equal(id, "req-42");
            assert_string_equal(json_string_value(json_object_get(record, "level")), "warn");
            assert_string_equal(msg, "say \"hi\"\n\\ \x01"); /* escaped, and back */
        } else if (count == 2) {
            assert_string_equal(id, "req-42");
            assert_true(strlen(msg) > 1000);
        }
        json_decref(record);
    }
    assert_int_equal(count, 4);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_log_long_and_hostile_lines),
        cmocka_unit_test(test_log_request_ids_plain),
        cmocka_unit_test(test_log_json_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
