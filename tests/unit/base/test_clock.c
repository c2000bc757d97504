/* test_clock.c: the two clocks: wall time near the system's, monotonic time never going back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "base/clock.h"

static void test_wall_is_the_epoch_in_ms(void **state)
{
    (void)state;
    int64_t ms = kf_clock_wall_ms();
    int64_t s = (int64_t)time(NULL);
    assert_true(ms / 1000 >= s - 1 && ms / 1000 <= s + 1);
}

static void test_monotonic_never_goes_back(void **state)
{
    (void)state;
    uint64_t last = kf_clock_mono_ms();
    for (int i = 0; i < 100000; i++) {
        uint64_t now = kf_clock_mono_ms();
        assert_true(now >= last);
        last = now;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wall_is_the_epoch_in_ms),
        cmocka_unit_test(test_monotonic_never_goes_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
