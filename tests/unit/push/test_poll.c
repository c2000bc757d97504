/* test_poll.c: the short poll (push/poll.c): answered once its replay is done, one batch per
 * answer, 500 when the replay fails. */
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

static void test_poll(void **state)
{
    (void)state;
    lc_client_t *c;
    pf->mode = PF_REPLAY_SYNC; /* answered from inside kf_push_serve */
    c = pf_answer("/poll?after=0");
    assert_true(lc_seen(c, "HTTP/1.1 200 OK"));
    assert_true(lc_seen(c, "{\"events\":[],\"cursor\":\"0\",\"eseq\":\""));
    lc_close(c);
    pf_store_publish("a"); /* a poll is not subscribed: only the replay finds it */
    pf_store_publish("b");
    pf->mode = PF_REPLAY_IDLE;
    c = pf_answer("/poll?after=0");
    pf_check_events(c, 1, 2);
    assert_true(lc_seen(c, "\"cursor\":\"2\","));
    lc_close(c);
    c = pf_answer("/poll?after=1");
    assert_false(lc_seen(c, "\"body\":\"a\""));
    pf_check_events(c, 2, 2);
    lc_close(c);
    /* One batch per answer; the cursor says where the next starts. */
    for (int i = 0; i < 5; i++)
        pf_store("more");
    c = pf_answer("/poll?after=0");
    pf_check_events(c, 1, 3);
    assert_false(lc_seen(c, "\"id\":\"4\"}"));
    assert_true(lc_seen(c, "\"cursor\":\"3\","));
    lc_close(c);
    assert_int_equal(kf_push_client_count(pf->push), 0);
}

static void test_poll_replay_failure(void **state)
{
    (void)state;
    lc_client_t *c;
    pf->replay_fail = KF_ESTORE; /* reported by replayed */
    c = pf_answer("/poll?after=0");
    assert_true(lc_seen(c, "HTTP/1.1 500"));
    assert_true(lc_seen(c, "\"internal\""));
    lc_close(c);
    pf->replay_fail = 0;
    pf->replay_refuse = KF_ESTORE; /* refused at once */
    c = pf_answer("/longpoll?after=0");
    assert_true(lc_seen(c, "HTTP/1.1 500"));
    lc_close(c);
    assert_int_equal(kf_push_client_count(pf->push), 0);
    assert_int_equal(pf_listeners(), 0);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, push_fixture_setup, push_fixture_teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_poll),
        TEST(test_poll_replay_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
