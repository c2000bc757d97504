/* test_str.c: string views, the strict decimal parser, UTF-8 length, trimming, lower-casing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/str.h"

static void test_views(void **state)
{
    (void)state;
    kf_str_t s = KF_STR_LIT("Content-Type");
    assert_true(kf_str_eq(s, "Content-Type"));
    assert_false(kf_str_eq(s, "content-type"));
    assert_true(kf_str_eq(KF_STR_LIT("abc"), "abc"));
    assert_false(kf_str_eq(KF_STR_LIT("abc"), "ABC"));
    assert_true(kf_str_ieq(KF_STR_LIT("Keep-Alive"), "keep-alive"));
    assert_false(kf_str_eq((kf_str_t){NULL, 0}, ""));
    kf_str_t t = kf_str_trim_ows(KF_STR_LIT(" \t gzip ;q=1\t "));
    assert_int_equal(t.len, 9);
    assert_memory_equal(t.ptr, "gzip ;q=1", 9);
    assert_int_equal(kf_str_trim_ows(KF_STR_LIT(" \t ")).len, 0);
}

static void test_parse_u64(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(kf_parse_u64(KF_STR_LIT("0"), &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(kf_parse_u64(KF_STR_LIT("18446744073709551615"), &v), 0);
    assert_true(v == UINT64_MAX);
    const char *bad[] = {"", "18446744073709551616", "-1", "+1", " 1", "1 ", "0x10", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(kf_parse_u64((kf_str_t){bad[i], __builtin_strlen(bad[i])}, &v), KF_EINVAL);
}

static void test_hex_digit(void **state)
{
    (void)state;
    assert_int_equal(kf_hex_digit('0'), 0);
    assert_int_equal(kf_hex_digit('9'), 9);
    assert_int_equal(kf_hex_digit('a'), 10);
    assert_int_equal(kf_hex_digit('F'), 15);
    assert_int_equal(kf_hex_digit('g'), -1);
    assert_int_equal(kf_hex_digit('/'), -1);
    assert_int_equal(kf_hex_digit('\0'), -1);
}

static void test_utf8_trim_lower(void **state)
{
    (void)state;
    assert_int_equal(kf_utf8_length(""), 0);
    assert_int_equal(kf_utf8_length("你好, kefu 👋"), 10);
    char *t = kf_trim_copy(" \t\n 客服 \r\n");
    assert_string_equal(t, "客服");
    free(t);
    t = kf_trim_copy("   ");
    assert_string_equal(t, "");
    free(t);
    char s[] = "Ana@Example.COM ÄÖ";
    kf_ascii_lower(s);
    assert_string_equal(s, "ana@example.com ÄÖ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_hex_digit),
        cmocka_unit_test(test_utf8_trim_lower),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
