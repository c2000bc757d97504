/* test_metrics.c: the histograms' buckets and the Prometheus text format (src/base/metrics.c):
 * cumulative buckets ending at +Inf, _sum in seconds, _count, label escaping, whole numbers
 * written without a fraction, and the bounded table of rejections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/metrics.h"

static void test_histogram_exposition(void **state)
{
    (void)state;
    static kf_histogram_t h;               /* zeroed */
    kf_histogram_observe_us(&h, 0);        /* <= 0.0005 */
    kf_histogram_observe_us(&h, 500);      /* on the bound: in it */
    kf_histogram_observe_us(&h, 501);      /* the next one */
    kf_histogram_observe_us(&h, 3000000);  /* <= 5 */
    kf_histogram_observe_us(&h, 60000000); /* past every bound */
    kf_buf_t out;
    kf_buf_init(&out);
    kf_metrics_write_histogram(&out, "kefu_x_seconds", "What x takes.", &h);
    static const char expected[] = "# HELP kefu_x_seconds What x takes.\n"
                                   "# TYPE kefu_x_seconds histogram\n"
                                   "kefu_x_seconds_bucket{le=\"0.0005\"} 2\n"
                                   "kefu_x_seconds_bucket{le=\"0.001\"} 3\n"
                                   "kefu_x_seconds_bucket{le=\"0.0025\"} 3\n"
                                   "kefu_x_seconds_bucket{le=\"0.005\"} 3\n"
                                   "kefu_x_seconds_bucket{le=\"0.01\"} 3\n"
                                   "kefu_x_seconds_bucket{le=\"0.025\"} 3\n"
                                   "kefu_x_seconds_bucket{le=\"0.05\"} 3\n"
                                   "kefu_x_seconds_bucket{le=\"0.1\"} 3\n"
                                   "kefu_x_seconds_bucket{le=\"0.25\"} 3\n"
                                   "kefu_x_seconds_bucket{le=\"0.5\"} 3\n"
                                   "kefu_x_seconds_bucket{le=\"1\"} 3\n"
                                   "kefu_x_seconds_bucket{le=\"2.5\"} 3\n"
                                   "kefu_x_seconds_bucket{le=\"5\"} 4\n"
                                   "kefu_x_seconds_bucket{le=\"10\"} 4\n"
                                   "kefu_x_seconds_bucket{le=\"+Inf\"} 5\n"
                                   "kefu_x_seconds_sum 63.001001\n"
                                   "kefu_x_seconds_count 5\n";
    assert_string_equal(out.data, expected);
    kf_buf_free(&out);
}

static void test_samples_and_labels(void **state)
{
    (void)state;
    kf_buf_t labels, out;
    kf_buf_init(&labels);
    kf_buf_init(&out);
    kf_metrics_label(&labels, "code", "a\"b\\c\nd");
    kf_metrics_label(&labels, "status", "400");
    kf_metrics_write_head(&out, "kefu_y_total", "counter", "Ys.");
    kf_metrics_write_sample(&out, "kefu_y_total", labels.data, 12);
    kf_metrics_write_sample(&out, "kefu_y_total", NULL, 0.25);
    kf_metrics_write_sample(&out, "kefu_y_total", "", 1e15 + 1);
    assert_string_equal(out.data, "# HELP kefu_y_total Ys.\n"
                                  "# TYPE kefu_y_total counter\n"
                                  "kefu_y_total{code=\"a\\\"b\\\\c\\nd\",status=\"400\"} 12\n"
                                  "kefu_y_total 0.25\n"
                                  "kefu_y_total 1e+15\n");
    kf_buf_free(&labels);
    kf_buf_free(&out);
}

static void test_rejections_are_bounded(void **state)
{
    (void)state;
    kf_metrics.rejection_count = 0;
    kf_metrics_reject(404, "not_found");
    kf_metrics_reject(404, "not_found");
    kf_metrics_reject(429, "rate_limited");
    kf_metrics_reject(400, "a_code_much_longer_than_the_thirty_one_bytes_kept");
    assert_int_equal(kf_metrics.rejection_count, 3);
    assert_int_equal(kf_metrics.rejections[0].count, 2);
    assert_string_equal(kf_metrics.rejections[2].code, "a_code_much_longer_than_the_thi");
    char code[16];
    for (int i = 0; i < 200; i++) {
        snprintf(code, sizeof code, "code%d", i);
        kf_metrics_reject(400, code);
    }
    assert_int_equal(kf_metrics.rejection_count, KF_METRICS_MAX_REJECTIONS);
    const kf_rejection_t *last = &kf_metrics.rejections[KF_METRICS_MAX_REJECTIONS - 1];
    assert_int_equal(last->status, 0);
    assert_string_equal(last->code, "other");
    /* 3 slots taken before, 60 more named, the rest in "other". */
    assert_int_equal(last->count, 200 - (KF_METRICS_MAX_REJECTIONS - 1 - 3));
    kf_metrics_reject(404, "not_found"); /* a known pair still counts as itself */
    assert_int_equal(kf_metrics.rejections[0].count, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_exposition),
        cmocka_unit_test(test_samples_and_labels),
        cmocka_unit_test(test_rejections_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
