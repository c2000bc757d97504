/* test_longpoll.c: the long poll (push/longpoll.c): a backlog answered at once, otherwise held
 * until an event (a live one, or one that came during its replay) or its deadline. */
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

static void test_longpoll(void **state)
{
    (void)state;
    lc_client_t *c;
    /* A backlog is answered at once, one batch of it. */
    for (int i = 0; i < 4; i++)
        pf_store("old");
    c = pf_answer("/longpoll?after=0");
    pf_check_events(c, 1, 3);
    assert_true(lc_seen(c, "\"cursor\":\"3\""));
    lc_close(c);
    /* Nothing after the cursor: held, subscribed, until an event. */
    c = lc_get("/longpoll?after=4", "Connection: close\r\n");
    LC_RUN_UNTIL(pf_listeners() == 1 && pf->pending_count == 0);
    assert_int_equal(kf_push_client_count(pf->push), 1);
    assert_int_equal(c->in.len, 0);
    pf_store_publish("wake");
    LC_RUN_UNTIL(c->eof);
    pf_check_events(c, 5, 5);
    assert_true(lc_seen(c, "\"cursor\":\"5\","));
    lc_close(c);
    /* An ephemeral event (no id) answers it too, and keeps the cursor. */
    c = lc_get("/longpoll?after=5", "Connection: close\r\n");
    LC_RUN_UNTIL(pf_listeners() == 1 && pf->pending_count == 0);
    static const char typing[] = "{\"type\":\"typing\"}";
    kf_event_t *event = kf_event_new(0, typing, sizeof typing - 1);
    pf_publish(event);
    kf_event_unref(event);
    LC_RUN_UNTIL(c->eof);
    assert_true(lc_seen(c, "{\"events\":[{\"type\":\"typing\"}],\"cursor\":\"5\",\"eseq\":\""));
    lc_close(c);
    assert_int_equal(kf_push_client_count(pf->push), 0);
    assert_int_equal(pf_listeners(), 0);
}

static void test_longpoll_deadline(void **state)
{
    (void)state;
    lc_client_t *c;
    pf_store("old");
    uint64_t start = uv_hrtime();
    c = pf_answer("/short?after=1"); /* held 1 s, then answered empty by the tick */
    uint64_t waited_ms = (uv_hrtime() - start) / 1000000;
    assert_true(waited_ms >= 1000);
    assert_true(lc_seen(c, "{\"events\":[],\"cursor\":\"1\",\"eseq\":\""));
    lc_close(c);
    assert_int_equal(pf_listeners(), 0);
}

static void test_longpoll_live_during_replay(void **state)
{
    (void)state;
    lc_client_t *c;
    pf->mode = PF_REPLAY_MANUAL;
    c = lc_get("/longpoll?after=0", "Connection: close\r\n");
    LC_RUN_UNTIL(pf->pending_count == 1);
    pf_store_publish("meanwhile");
    assert_int_equal(c->in.len, 0);
    assert_true(pf_release()); /* its read was before the event: it finds nothing */
    LC_RUN_UNTIL(c->eof);
    pf_check_events(c, 1, 1);
    assert_true(lc_seen(c, "\"cursor\":\"1\","));
    lc_close(c);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, push_fixture_setup, push_fixture_teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_longpoll),
        TEST(test_longpoll_deadline),
        TEST(test_longpoll_live_during_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
