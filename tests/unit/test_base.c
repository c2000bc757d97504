/* test_base.c: buffers, string views, error messages and log levels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"

static void test_buf_append_and_consume(void **state)
{
    (void)state;
    kf_buf_t b;
    kf_buf_init(&b);
    kf_buf_append_str(&b, "hello");
    kf_buf_printf(&b, " %d %s", 42, "world");
    assert_string_equal(b.data, "hello 42 world");
    assert_int_equal(b.len, 14);
    kf_buf_consume(&b, 6);
    assert_string_equal(b.data, "42 world");
    kf_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    kf_buf_free(&b);
    assert_null(b.data);
}

static void test_buf_growth(void **state)
{
    (void)state;
    kf_buf_t b;
    kf_buf_init(&b);
    for (int i = 0; i < 100000; i++)
        kf_buf_append(&b, "x", 1);
    assert_int_equal(b.len, 100000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    size_t len;
    char *stolen = kf_buf_steal(&b, &len);
    assert_int_equal(len, 100000);
    assert_null(b.data);
    free(stolen);
    stolen = kf_buf_steal(&b, &len);
    assert_string_equal(stolen, "");
    free(stolen);
}

static void test_buf_binary(void **state)
{
    (void)state;
    kf_buf_t b;
    kf_buf_init(&b);
    kf_buf_append(&b, "a\0b", 3);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 3);
    kf_buf_reset(&b);
    assert_int_equal(b.len, 0);
    kf_buf_free(&b);
}

static void test_str(void **state)
{
    (void)state;
    kf_str_t s = KF_STR_LIT("Content-Type");
    assert_true(kf_str_eq(s, "Content-Type"));
    assert_false(kf_str_eq(s, "content-type"));
    assert_true(kf_str_ieq(s, "content-type"));
    assert_false(kf_str_ieq(s, "content-typ"));
    kf_str_t absent = {NULL, 0};
    assert_false(kf_str_eq(absent, ""));
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(kf_strerror(0), "success");
    assert_string_equal(kf_strerror(KF_ENOMEM), "out of memory");
    assert_string_equal(kf_strerror(KF_ENOTFOUND), "not found");
    assert_string_equal(kf_strerror(KF_ELIMIT), "limit reached");
    assert_string_equal(kf_strerror(-1000), "unknown error");
    assert_string_equal(kf_strerror(5), "unknown error");
    /* Codes are distinct and negative. */
    assert_true(KF_ENOMEM < 0 && KF_EINVAL < 0 && KF_ENOMEM != KF_EINVAL);
}

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_and_consume), cmocka_unit_test(test_buf_growth),
        cmocka_unit_test(test_buf_binary),             cmocka_unit_test(test_str),
        cmocka_unit_test(test_strerror),               cmocka_unit_test(test_log_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
