/* test_err.c: the error list and its messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
