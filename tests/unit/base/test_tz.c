/* test_tz.c: zone offsets from the system's zone files (src/base/tz.c): a zone without daylight
 * saving (Asia/Shanghai), one with it (Europe/Berlin: a 23-hour and a 25-hour day), one west of
 * UTC across its change (America/New_York), names that could leave the directory, and files that
 * are not zone files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/tz.h"

#define H INT64_C(3600000)
#define DAY (24 * H)
/* 2025-03-30T00:00:00Z: Berlin's clocks go from 02:00 to 03:00 at 01:00Z that day. */
#define MAR30 INT64_C(1743292800000)
/* 2025-10-26T00:00:00Z: and back from 03:00 to 02:00 at 01:00Z. */
#define OCT26 INT64_C(1761436800000)

static kf_tz_t *load(const char *name)
{
    kf_tz_t *tz = NULL;
    int rc = kf_tz_load(NULL, name, &tz);
    if (rc != 0)
        fail_msg("%s: %d (is tzdata installed?)", name, rc);
    return tz;
}

static void test_offsets(void **state)
{
    (void)state;
    kf_tz_t *shanghai = load("Asia/Shanghai");
    assert_int_equal(kf_tz_offset(shanghai, MAR30), 8 * H);
    assert_int_equal(kf_tz_offset(shanghai, OCT26 + 100 * DAY), 8 * H);
    kf_tz_free(shanghai);
    kf_tz_t *berlin = load("Europe/Berlin");
    assert_int_equal(kf_tz_offset(berlin, MAR30 + H - 1), 1 * H);
    assert_int_equal(kf_tz_offset(berlin, MAR30 + H), 2 * H);
    assert_int_equal(kf_tz_offset(berlin, OCT26 + H - 1), 2 * H);
    assert_int_equal(kf_tz_offset(berlin, OCT26 + H), 1 * H);
    /* Beyond the file's last transition (2037), its last offset. */
    assert_int_equal(kf_tz_offset(berlin, INT64_C(4102444800000) + 180 * DAY), 1 * H);
    kf_tz_free(berlin);
}

static void test_day_starts(void **state)
{
    (void)state;
    kf_tz_t *berlin = load("Europe/Berlin");
    int64_t *starts = NULL;
    size_t count = 0;
    /* Noon on the 29th to noon on the 31st: three local days; the 30th has 23 hours. */
    assert_int_equal(kf_tz_day_starts(berlin, MAR30 - 12 * H, MAR30 + 36 * H, 366, &starts, &count),
                     0);
    assert_int_equal(count, 3);
    assert_int_equal(starts[0], MAR30 - DAY - H);
    assert_int_equal(starts[1], MAR30 - H);
    assert_int_equal(starts[2], MAR30 + 22 * H);
    free(starts);
    /* The 26th of October has 25 hours. */
    assert_int_equal(kf_tz_day_starts(berlin, OCT26 - 2 * H, OCT26 + 30 * H, 366, &starts, &count),
                     0);
    assert_int_equal(count, 2);
    assert_int_equal(starts[0], OCT26 - 2 * H);
    assert_int_equal(starts[1], OCT26 + 23 * H);
    free(starts);
    /* Too long a period, or none. */
    assert_int_equal(kf_tz_day_starts(berlin, MAR30, MAR30 + 10 * DAY, 5, &starts, &count),
                     KF_EINVAL);
    assert_int_equal(kf_tz_day_starts(berlin, MAR30, MAR30, 5, &starts, &count), KF_EINVAL);
    kf_tz_free(berlin);

    /* West of UTC: New York's 2025-03-09 has 23 hours, starting at 05:00Z. */
    kf_tz_t *new_york = load("America/New_York");
    int64_t mar9 = MAR30 - 21 * DAY;
    assert_int_equal(
        kf_tz_day_starts(new_york, mar9 + 5 * H, mar9 + 5 * H + 1, 366, &starts, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(starts[0], mar9 + 5 * H);
    free(starts);
    assert_int_equal(kf_tz_day_starts(new_york, mar9 + 5 * H, mar9 + 29 * H, 366, &starts, &count),
                     0);
    assert_int_equal(count, 2);
    assert_int_equal(starts[1], mar9 + 28 * H);
    free(starts);
    kf_tz_free(new_york);
}

static void test_bad_names_and_files(void **state)
{
    (void)state;
    const char *const bad[] = {
        "",
        "/etc/passwd",
        "../etc/passwd",
        "Asia/../../etc/passwd",
        "Asia//Shanghai",
        "Asia/",
        ".hidden",
        "Asia/Shang hai",
        "Asia/Shanghai\n",
        "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    kf_tz_t *tz = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(kf_tz_name_valid(bad[i]));
        assert_int_equal(kf_tz_load(NULL, bad[i], &tz), KF_EINVAL);
        assert_null(tz);
    }
    assert_true(kf_tz_name_valid("Etc/GMT+5"));
    assert_true(kf_tz_name_valid("America/Port-au-Prince"));
    assert_int_equal(kf_tz_load(NULL, "Nowhere/Atlantis", &tz), KF_ENOTFOUND);
    /* A file that is not a zone file, and one cut short. */
    char dir[] = "/tmp/kf_tz_test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/Bad", dir);
    FILE *f = fopen(path, "wb");
    fputs("not a zone file at all, but long enough to have a header of forty-four bytes", f);
    fclose(f);
    assert_int_equal(kf_tz_load(dir, "Bad", &tz), KF_EPROTO);
    f = fopen(path, "wb");
    FILE *berlin = fopen(KF_TZ_DIR "/Europe/Berlin", "rb");
    assert_non_null(berlin);
    char head[600];
    size_t n = fread(head, 1, sizeof head, berlin);
    fclose(berlin);
    fwrite(head, 1, n, f);
    fclose(f);
    assert_int_equal(kf_tz_load(dir, "Bad", &tz), KF_EPROTO);
    assert_null(tz);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_day_starts),
        cmocka_unit_test(test_bad_names_and_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
