/* test_push.c: what every transport shares (push.c): the asynchronous replay (a source that
 * answers later or at once, live events held back meanwhile, a second replay when they overflow,
 * a client that dies mid-replay, a failed replay), the encodings shared through the event, client
 * references, drain at shutdown and the end of one listener's connections. */
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

/* Opens one client of every held kind for listener who (7 or 8). */
static void open_all(lc_client_t *c[4], int who)
{
    char path[64];
    snprintf(path, sizeof path, "/longpoll?after=0&who=%d", who);
    c[0] = lc_get(path, "");
    snprintf(path, sizeof path, "/sse?after=0&who=%d", who);
    c[1] = lc_get(path, "");
    snprintf(path, sizeof path, "/iframe?after=0&who=%d", who);
    c[2] = lc_get(path, "");
    snprintf(path, sizeof path, "after=0&who=%d", who);
    c[3] = pf_ws_open(path);
}

/* Runs until each of the four has been told to come back; checks how. */
static void expect_ended(lc_client_t *c[4], int ws_code)
{
    LC_RUN_UNTIL(lc_seen(c[0], "\"cursor\"") && lc_seen(c[1], "0\r\n\r\n") &&
                 lc_seen(c[2], "0\r\n\r\n") && lc_ws_close_code(c[3]) != -1);
    assert_true(lc_seen(c[0], "{\"events\":[],\"cursor\":\"0\",\"eseq\":\""));
    assert_true(lc_seen(c[2], "kefuPush({\"type\":\"reconnect\"})"));
    assert_int_equal(lc_ws_close_code(c[3]), ws_code);
}

static void test_replay_live_events_meanwhile(void **state)
{
    (void)state;
    lc_client_t *c;
    pf_store_publish("1");
    kf_event_t *late = pf_store("2"); /* its commit "comes back" after the stream subscribed */
    pf->mode = PF_REPLAY_MANUAL;
    c = lc_get("/sse?after=0", "");
    LC_RUN_UNTIL(pf->pending_count == 1 && lc_seen(c, "event: heartbeat")); /* no wait for those */
    pf_publish(late);
    pf_store_publish("3");
    static const char typing[] = "{\"type\":\"typing\"}";
    kf_event_t *ephemeral = kf_event_new(0, typing, sizeof typing - 1);
    pf_publish(ephemeral);
    kf_event_unref(ephemeral);
    assert_false(lc_seen(c, "\"id\":\"2\"}")); /* held back */
    assert_true(pf_release());                 /* replays 1 and 2 */
    LC_RUN_UNTIL(lc_seen(c, "{\"type\":\"typing\"}"));
    pf_check_events(c, 1, 3);
    assert_true(lc_find(c, "\"id\":\"3\"}") < lc_find(c, "{\"type\":\"typing\"}"));
    /* Then live. */
    pf_store_publish("4");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"4\"}"));
    pf_check_events(c, 1, 4);
    assert_int_equal(pf->replay_calls, 1);
    lc_close(c);
}

static void test_replay_overflow_replays_again(void **state)
{
    (void)state;
    lc_client_t *c;
    pf->mode = PF_REPLAY_MANUAL;
    c = lc_get("/iframe?after=0", "");
    LC_RUN_UNTIL(pf->pending_count == 1);
    for (int i = 0; i < 5; i++) /* batch 3: the fourth overflows */
        pf_store_publish("live");
    assert_true(pf_release()); /* its read saw nothing */
    LC_RUN_UNTIL(pf->pending_count == 1);
    assert_int_equal(pf->replay_calls, 2); /* one more, from the same cursor */
    assert_true(pf_release());             /* 1..3, more */
    LC_RUN_UNTIL(pf->pending_count == 1);
    assert_true(pf_release()); /* 4, 5 */
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"5\"}"));
    pf_check_events(c, 1, 5);
    assert_int_equal(pf->replay_calls, 3);
    pf_store_publish("after");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"6\"}"));
    pf_check_events(c, 1, 6);
    lc_close(c);
}

static void test_replay_synchronous_source(void **state)
{
    (void)state;
    lc_client_t *c;
    for (int i = 0; i < 10; i++)
        pf_store("old");
    pf->mode = PF_REPLAY_SYNC;
    c = lc_get("/sse?after=2", "");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"10\"}"));
    pf_check_events(c, 3, 10);
    assert_false(lc_seen(c, "\"id\":\"2\"}"));
    assert_int_equal(pf->replay_calls, 3); /* 3 + 3 + 2 */
    pf_store_publish("new");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"11\"}"));
    pf_check_events(c, 3, 11);
    lc_close(c);
}

static void test_replay_client_dies(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        pf_store("old");
    pf->mode = PF_REPLAY_MANUAL;
    static const char *const paths[] = {"/sse?after=0", "/ws?after=0", "/longpoll?after=0",
                                        "/poll?after=0"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        lc_client_t *c;
        c = lc_get(paths[i], strncmp(paths[i], "/ws", 3) == 0 ? lc_ws_upgrade : "");
        LC_RUN_UNTIL(pf->pending_count == 1);
        assert_int_equal(kf_push_client_count(pf->push), 1);
        lc_close(c);
        LC_RUN_UNTIL(kf_push_client_count(pf->push) == 0); /* the server saw it go */
        assert_int_equal(pf_listeners(), 0);
        size_t stops = pf->emit_stops;
        assert_true(pf_release());
        assert_int_equal(pf->emit_stops, stops + 1);
    }
    /* The module freed with a replay in flight: the long poll is answered, its client freed when
     * replayed runs. */
    lc_client_t *c;
    c = lc_get("/longpoll?after=3", "Connection: close\r\n");
    LC_RUN_UNTIL(pf->pending_count == 1);
    kf_push_free(pf->push);
    pf->push = NULL;
    LC_RUN_UNTIL(c->eof);
    assert_true(lc_seen(c, "{\"events\":[],\"cursor\":\"3\",\"eseq\":\""));
    assert_true(pf_release());
    lc_close(c);
}

static void test_replay_failure_ends_streams(void **state)
{
    (void)state;
    lc_client_t *sse, *iframe, *ws;
    pf->replay_fail = KF_ESTORE;
    sse = lc_get("/sse?after=0", "");
    iframe = lc_get("/iframe?after=0", "");
    ws = pf_ws_open("after=0");
    LC_RUN_UNTIL(lc_seen(sse, "0\r\n\r\n") && lc_seen(iframe, "0\r\n\r\n") &&
                 lc_ws_close_code(ws) != -1);
    assert_true(lc_seen(iframe, "kefuPush({\"type\":\"reconnect\"})"));
    assert_int_equal(lc_ws_close_code(ws), KF_WS_CLOSE_INTERNAL);
    lc_close(sse);
    lc_close(iframe);
    lc_close(ws);
    assert_int_equal(kf_push_client_count(pf->push), 0);
}

static void test_shared_encodings(void **state)
{
    (void)state;
    lc_client_t *a, *b, *ws;
    a = lc_get("/sse?after=0", "");
    b = lc_get("/sse?after=0", "");
    ws = pf_ws_open("after=0");
    LC_RUN_UNTIL(kf_hub_count(pf->hub, "t") == 3 && pf->pending_count == 0);
    kf_event_t *event = pf_store("shared");
    pf_publish(event);
    LC_RUN_UNTIL(lc_seen(a, "\"id\":\"1\"}\n\n") && lc_seen(b, "\"id\":\"1\"}\n\n") &&
                 lc_ws_count(ws, KF_WS_TEXT) == 2);
    assert_true(lc_seen(a, "id: 1\nevent: message\ndata: {\"type\":\"message\""));
    assert_false(lc_seen(ws, "event: message"));
    size_t encodings = 0;
    for (int i = 0; i < KF_EVENT_ENCODINGS; i++)
        encodings += event->encoded[i] != NULL;
    assert_int_equal(encodings, 2); /* SSE's and WebSocket's */
    lc_close(a);
    lc_close(b);
    lc_close(ws);
}

static void test_ws_client_ref(void **state)
{
    (void)state;
    lc_client_t *c;
    c = pf_ws_open("after=0");
    lc_ws_send(c, 0x81, "keep", 4, true);
    LC_RUN_UNTIL(pf->kept != NULL);
    lc_close(c);
    LC_RUN_UNTIL(kf_push_client_count(pf->push) == 0);
    assert_int_equal(kf_push_client_send(pf->kept, "{}", 2), KF_EINVAL);
    kf_push_client_unref(pf->kept);
}

static void test_drain(void **state)
{
    (void)state;
    lc_client_t *c[4];
    open_all(c, 7);
    LC_RUN_UNTIL(kf_push_client_count(pf->push) == 4 && pf->pending_count == 0);
    kf_push_drain(pf->push);
    assert_int_equal(kf_push_client_count(pf->push), 0);
    assert_int_equal(pf_listeners(), 0);
    expect_ended(c, KF_WS_CLOSE_GOING_AWAY);
    for (int i = 0; i < 4; i++)
        lc_close(c[i]);
}

/* Publishes a message event of id with x as its marker, late or not. */
static void publish_marked(uint64_t id, const char *x, bool late)
{
    char json[96];
    int n = snprintf(json, sizeof json, "{\"type\":\"message\",\"x\":\"%s\",\"id\":\"%llu\"}", x,
                     (unsigned long long)id);
    kf_event_t *event = kf_event_new(id, json, (size_t)n);
    event->late = late;
    pf_publish(event);
    kf_event_unref(event);
}

/* An event marked late (bus/bus.h: another node's message that came after a newer one) reaches
 * a client whose cursor a live event moved past it; the same id unmarked does not. */
static void test_late_event_passes_the_cursor(void **state)
{
    (void)state;
    pf_store_publish("m");
    lc_client_t *c = lc_get("/sse?after=0", "");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"1\"}"));
    publish_marked(3, "three", false); /* live, ahead of 2 */
    LC_RUN_UNTIL(lc_seen(c, "\"x\":\"three\""));
    publish_marked(2, "again", false);
    publish_marked(2, "late", true);
    publish_marked(4, "four", false);
    LC_RUN_UNTIL(lc_seen(c, "\"x\":\"four\""));
    assert_false(lc_seen(c, "\"x\":\"again\""));
    assert_true(lc_seen(c, "\"x\":\"late\""));
    assert_true(lc_find(c, "\"x\":\"late\"") < lc_find(c, "\"x\":\"four\""));
    lc_close(c);
}

/* A late event the client had from its replay is not sent again: a client that reconnected on
 * another loop (or node) read it from the store before its event came over the bus. The 2-minute
 * soak on two loops caught one such message delivered twice. */
static void test_late_event_replayed_is_not_repeated(void **state)
{
    (void)state;
    for (int i = 1; i <= 3; i++)
        pf_store_publish("m");
    lc_client_t *c = lc_get("/sse?after=0", "");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"3\"}"));
    publish_marked(2, "late", true);
    publish_marked(4, "four", false);
    LC_RUN_UNTIL(lc_seen(c, "\"x\":\"four\""));
    assert_false(lc_seen(c, "\"x\":\"late\""));
    lc_close(c);
}

/* After kf_push_rewind, clients that start replay from the floor whatever cursor they bring
 * (the URL's or SSE's Last-Event-ID), until the time is up; a second rewind keeps the lower
 * floor. A poll that comes back with the cursor it was rewound from is not rewound again: it
 * has had the replay (a long poll would otherwise be answered at once until the time is up). */
static void test_rewind(void **state)
{
    (void)state;
    for (int i = 1; i <= 4; i++)
        pf_store_publish("m");
    kf_push_rewind(pf->push, 3, 60000);
    kf_push_rewind(pf->push, 2, 60000);
    kf_push_rewind(pf->push, 3, 60000); /* the lower one holds */
    lc_client_t *c = lc_get("/sse?after=0", "Last-Event-ID: 4\r\n");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"4\"}"));
    pf_check_events(c, 3, 4);
    assert_false(lc_seen(c, "\"id\":\"2\"}"));
    lc_client_t *polled = pf_answer("/poll?after=4");
    assert_true(lc_seen(polled, "\"id\":\"3\"}") && lc_seen(polled, "\"id\":\"4\"}"));
    lc_close(polled);
    polled = pf_answer("/poll?after=4");
    assert_false(lc_seen(polled, "\"id\":\"3\"}") || lc_seen(polled, "\"id\":\"4\"}"));
    assert_true(lc_seen(polled, "\"cursor\":\"4\""));
    lc_close(polled);
    lc_client_t *again = lc_get("/sse?after=4", ""); /* a stream: rewound all the same */
    LC_RUN_UNTIL(lc_seen(again, "\"id\":\"4\"}"));
    pf_check_events(again, 3, 4);
    lc_close(again);
    polled = pf_answer("/poll?after=3"); /* another cursor: once more */
    assert_true(lc_seen(polled, "\"id\":\"3\"}") && lc_seen(polled, "\"id\":\"4\"}"));
    lc_close(polled);
    /* Over: a client past everything is replayed nothing. */
    kf_push_rewind(pf->push, 1, 0);
    polled = pf_answer("/poll?after=4");
    assert_false(lc_seen(polled, "\"id\":\"3\"}") || lc_seen(polled, "\"id\":\"4\"}"));
    assert_true(lc_seen(polled, "\"cursor\":\"4\""));
    lc_close(polled);
    lc_close(c);
}

static void test_end_subject(void **state)
{
    (void)state;
    lc_client_t *mine[4], *theirs[4];
    open_all(mine, 7);
    open_all(theirs, 8);
    LC_RUN_UNTIL(kf_push_client_count(pf->push) == 8 && pf->pending_count == 0);
    assert_int_equal(kf_push_end_subject(pf->push, 'v', 8), 4);
    assert_int_equal(kf_push_end_subject(pf->push, 'a', 7), 0);
    expect_ended(theirs, KF_WS_CLOSE_POLICY);
    assert_int_equal(kf_push_client_count(pf->push), 4);
    pf_store_publish("still here");
    LC_RUN_UNTIL(lc_seen(mine[1], "\"id\":\"1\"}") && lc_seen(mine[0], "\"cursor\":\"1\""));
    for (int i = 0; i < 4; i++) {
        lc_close(mine[i]);
        lc_close(theirs[i]);
    }
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, push_fixture_setup, push_fixture_teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_replay_live_events_meanwhile),
        TEST(test_replay_overflow_replays_again),
        TEST(test_replay_synchronous_source),
        TEST(test_replay_client_dies),
        TEST(test_replay_failure_ends_streams),
        TEST(test_shared_encodings),
        TEST(test_ws_client_ref),
        TEST(test_drain),
        TEST(test_late_event_passes_the_cursor),
        TEST(test_late_event_replayed_is_not_repeated),
        TEST(test_rewind),
        TEST(test_end_subject),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
