/* test_log.c: log levels, and records that stay one line whatever a client sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_log_long_and_hostile_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
