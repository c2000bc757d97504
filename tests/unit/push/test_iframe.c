/* test_iframe.c: the forever iframe (push/iframe.c): padding, <script> calls that no message
 * text can end, heartbeats, and the reconnect event at its byte limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "http/ws.h"
#include "support/push_fixture.h"

static void test_iframe(void **state)
{
    (void)state;
    lc_client_t *c;
    for (int i = 0; i < 7; i++)
        pf_store("old");
    c = lc_get("/iframe?after=0", "");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"7\"}"));
    assert_true(lc_seen(c, "Transfer-Encoding: chunked"));
    assert_true(lc_seen(c, "frame-ancestors 'self'"));
    long first_script = lc_find(c, "<script>parent.kefuPush(");
    assert_true(first_script - lc_find(c, "<!DOCTYPE") >= 4096); /* padding first */
    assert_true(first_script < lc_find(c, "\"id\":\"1\"}"));     /* then the heartbeat */
    pf_check_events(c, 1, 7);                                    /* replayed over three batches */
    /* Nothing in a message can end the script. */
    pf_store_publish("</script><!--");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"8\"}"));
    assert_false(lc_seen(c, "</script><!--"));
    assert_true(lc_seen(c, "\\u003c/script\\u003e\\u003c!--"));
    /* A quiet stream gets a heartbeat each heartbeat_ms (the tick's granularity: 1 s). */
    size_t heartbeats = lc_count(c, "kefuPush({\"type\":\"heartbeat\"})");
    LC_RUN_UNTIL(lc_count(c, "kefuPush({\"type\":\"heartbeat\"})") > heartbeats);
    lc_close(c);
}

static void test_iframe_byte_limit(void **state)
{
    (void)state;
    char big[200];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    lc_client_t *c;
    c = lc_get("/iframe?after=0", "");
    LC_RUN_UNTIL(lc_seen(c, "kefuPush({\"type\":\"heartbeat\"})") && pf->pending_count == 0);
    for (int i = 0; i < 40 && !lc_seen(c, "0\r\n\r\n"); i++) {
        pf_store_publish(big);
        uv_run(&pf->loop, UV_RUN_NOWAIT);
    }
    LC_RUN_UNTIL(lc_seen(c, "0\r\n\r\n"));
    assert_true(lc_seen(c, "kefuPush({\"type\":\"reconnect\"})"));
    assert_int_equal(kf_push_client_count(pf->push), 0);
    lc_close(c);
    /* A long history goes over several documents: a batch, then the end. */
    c = lc_get("/iframe?after=0", "");
    LC_RUN_UNTIL(lc_seen(c, "0\r\n\r\n"));
    assert_true(lc_seen(c, "kefuPush({\"type\":\"reconnect\"})"));
    assert_true(lc_seen(c, "\"id\":\"1\"}"));
    assert_false(lc_seen(c, "\"id\":\"40\"}"));
    lc_close(c);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, push_fixture_setup, push_fixture_teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_iframe),
        TEST(test_iframe_byte_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
