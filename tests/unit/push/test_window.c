/* test_window.c: the ephemeral window (push/window.c) through the poll and the long poll:
 * ephemeral events published between two requests reach the next one (after its messages, in
 * publish order, once), within the window's bounds of count, bytes and age; an eseq older than the
 * window gets what it keeps; the window and its memory go once its clients have been gone for its
 * age. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/push_fixture.h"

/* GET path?after=<after>&eseq=<eseq> to its answer. */
static lc_client_t *poll_from(const char *path, uint64_t after, uint64_t eseq)
{
    char target[128];
    snprintf(target, sizeof target, "%s?after=%llu&eseq=%llu", path, (unsigned long long)after,
             (unsigned long long)eseq);
    return pf_answer(target);
}

/* Checks that the ephemeral events first..last (pf_publish_ephemeral's n) reached c once each, in
 * order, and no other. */
static void check_ephemeral(const lc_client_t *c, unsigned first, unsigned last)
{
    long previous = -1;
    for (unsigned n = first; n <= last; n++) {
        char text[32];
        snprintf(text, sizeof text, "\"n\":\"%u\"", n);
        if (lc_count(c, text) != 1)
            fail_msg("ephemeral event %u came %zu times", n, lc_count(c, text));
        long at = lc_find(c, text);
        if (at <= previous)
            fail_msg("ephemeral event %u came out of order", n);
        previous = at;
    }
    assert_int_equal(lc_count(c, "\"type\":\"typing\""), last >= first ? last - first + 1 : 0);
}

/* The bytes one kept event of pf_publish_ephemeral's costs the window. */
static size_t kept_bytes(size_t json_len)
{
    return sizeof(kf_event_t) + json_len + 1;
}

static void test_typing_between_long_polls(void **state)
{
    (void)state;
    lc_client_t *c;
    /* A long poll, answered by a message: its answer says which ephemeral events it has. */
    c = lc_get("/longpoll?after=0", "Connection: close\r\n");
    LC_RUN_UNTIL(pf_listeners() == 1 && pf->pending_count == 0);
    pf_store_publish("hello");
    LC_RUN_UNTIL(c->eof);
    uint64_t eseq = pf_eseq(c);
    lc_close(c);
    /* Typing while no long poll is held: the next one gets it at once. */
    assert_int_equal(pf_listeners(), 0);
    pf_publish_ephemeral(1, 0);
    c = poll_from("/longpoll", 1, eseq);
    check_ephemeral(c, 1, 1);
    assert_true(lc_seen(c, "\"cursor\":\"1\","));
    assert_int_equal(pf_eseq(c), eseq + 1);
    eseq = pf_eseq(c);
    lc_close(c);
    /* Coming back with it: held (nothing new), then answered by the next one, once. */
    char path[96];
    snprintf(path, sizeof path, "/longpoll?after=1&eseq=%llu", (unsigned long long)eseq);
    c = lc_get(path, "Connection: close\r\n");
    LC_RUN_UNTIL(pf_listeners() == 1 && pf->pending_count == 0);
    assert_int_equal(c->in.len, 0);
    pf_publish_ephemeral(2, 0);
    LC_RUN_UNTIL(c->eof);
    check_ephemeral(c, 2, 2);
    assert_int_equal(pf_eseq(c), eseq + 1);
    lc_close(c);
    /* The same for the short poll, between its requests. */
    c = poll_from("/poll", 1, eseq + 1);
    check_ephemeral(c, 1, 0);
    assert_int_equal(pf_eseq(c), eseq + 1);
    lc_close(c);
    pf_publish_ephemeral(3, 0);
    pf_publish_ephemeral(4, 0);
    c = poll_from("/poll", 1, eseq + 1);
    check_ephemeral(c, 3, 4);
    assert_int_equal(pf_eseq(c), eseq + 3);
    lc_close(c);
    /* A client that brings no eseq starts from now, as a new stream does. */
    c = pf_answer("/poll?after=1");
    check_ephemeral(c, 1, 0);
    assert_int_equal(pf_eseq(c), eseq + 3);
    lc_close(c);
}

static void test_messages_first_then_ephemeral_in_order(void **state)
{
    (void)state;
    lc_client_t *c;
    c = pf_answer("/poll?after=0"); /* makes the window */
    uint64_t eseq = pf_eseq(c);
    lc_close(c);
    pf_store_publish("one");
    pf_publish_ephemeral(1, 0);
    pf_store_publish("two");
    pf_publish_ephemeral(2, 0);
    pf_publish_ephemeral(3, 0);
    static const char *const paths[] = {"/poll", "/longpoll"};
    for (size_t i = 0; i < 2; i++) {
        c = poll_from(paths[i], 0, eseq);
        pf_check_events(c, 1, 2);
        check_ephemeral(c, 1, 3);
        assert_true(lc_find(c, "\"id\":\"2\"}") < lc_find(c, "\"n\":\"1\""));
        assert_true(lc_seen(c, "\"cursor\":\"2\","));
        assert_int_equal(pf_eseq(c), eseq + 3);
        lc_close(c);
    }
}

/* Published while a poll's replay is in flight: the window has it when the replay ends, and the
 * answer carries it once, for the poll and for the long poll alike. */
static void test_ephemeral_during_replay(void **state)
{
    (void)state;
    lc_client_t *c;
    pf->mode = PF_REPLAY_MANUAL;
    static const char *const paths[] = {"/poll?after=0", "/longpoll?after=0"};
    for (unsigned i = 0; i < 2; i++) {
        c = lc_get(paths[i], "Connection: close\r\n");
        LC_RUN_UNTIL(pf->pending_count == 1);
        pf_publish_ephemeral(i, 0);
        assert_true(pf_release());
        LC_RUN_UNTIL(c->eof);
        check_ephemeral(c, i, i);
        lc_close(c);
    }
}

static void test_window_keeps_the_last_64(void **state)
{
    (void)state;
    lc_client_t *c;
    c = pf_answer("/poll?after=0");
    uint64_t eseq = pf_eseq(c);
    lc_close(c);
    for (unsigned n = 1; n <= 70; n++)
        pf_publish_ephemeral(n, 0);
    /* Older than the window: what it keeps, the last 64. */
    c = poll_from("/poll", 0, eseq);
    check_ephemeral(c, 7, 70);
    assert_int_equal(pf_eseq(c), eseq + 70);
    lc_close(c);
    c = poll_from("/poll", 0, eseq + 65);
    check_ephemeral(c, 66, 70);
    lc_close(c);
    /* A number the server never gave (a server before a restart, with a clock ahead): all the
     * window keeps. */
    c = poll_from("/poll", 0, eseq + 1000);
    check_ephemeral(c, 7, 70);
    assert_int_equal(pf_eseq(c), eseq + 70);
    lc_close(c);
    /* Bad numbers: 400. */
    static const char *const bad[] = {"/poll?after=0&eseq=x",
                                      "/poll?after=0&eseq=", "/longpoll?after=0&eseq=-1",
                                      "/poll?after=0&eseq=123456789012345678901234567890"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = pf_answer(bad[i]);
        assert_true(lc_seen(c, "HTTP/1.1 400"));
        assert_true(lc_seen(c, "\"bad_request\""));
        lc_close(c);
    }
    assert_int_equal(kf_push_client_count(pf->push), 0);
}

static void test_window_bytes(void **state)
{
    (void)state;
    lc_client_t *c;
    size_t json_len = strlen("{\"type\":\"typing\",\"n\":\"1\",\"p\":\"\"}") + 100;
    pf->config.ephemeral_window_bytes = 3 * kept_bytes(json_len);
    pf_restart();
    c = pf_answer("/poll?after=0");
    uint64_t eseq = pf_eseq(c);
    lc_close(c);
    size_t empty, first, bytes;
    assert_int_equal(kf_push_window_count(pf->push, &empty), 1);
    assert_int_equal(pf_publish_ephemeral(1, 100), json_len);
    assert_int_equal(kf_push_window_count(pf->push, &first), 1);
    assert_true(first > empty + kept_bytes(json_len)); /* and its ring */
    for (unsigned n = 2; n <= 5; n++)
        assert_int_equal(pf_publish_ephemeral(n, 100), json_len);
    assert_int_equal(kf_push_window_count(pf->push, &bytes), 1);
    assert_int_equal(bytes, first + 2 * kept_bytes(json_len)); /* three kept */
    c = poll_from("/poll", 0, eseq);
    check_ephemeral(c, 3, 5);
    lc_close(c);
    /* One bigger than the bound is not kept, and the others stay. */
    pf_publish_ephemeral(6, pf->config.ephemeral_window_bytes);
    assert_int_equal(kf_push_window_count(pf->push, &bytes), 1);
    assert_int_equal(bytes, first + 2 * kept_bytes(json_len));
    c = poll_from("/poll", 0, eseq);
    check_ephemeral(c, 3, 5);
    assert_int_equal(pf_eseq(c), eseq + 6); /* the client has all there is to have */
    lc_close(c);
}

/* Events older than the age go (while a client keeps the window), then the window itself, its
 * age after the last client: nothing is held for a topic nobody polls. */
static void test_window_age_and_memory(void **state)
{
    (void)state;
    lc_client_t *c;
    pf->config.ephemeral_window_ms = 300;
    pf_restart();
    pf->mode = PF_REPLAY_MANUAL;
    c = lc_get("/poll?after=0", "Connection: close\r\n"); /* attached until its replay ends */
    LC_RUN_UNTIL(pf->pending_count == 1);
    size_t empty, bytes;
    assert_int_equal(kf_push_window_count(pf->push, &empty), 1);
    pf_publish_ephemeral(1, 0);
    assert_int_equal(kf_push_window_count(pf->push, &bytes), 1);
    assert_true(bytes > empty);
    uint64_t published = uv_hrtime();
    LC_RUN_UNTIL(kf_push_window_count(pf->push, &bytes) == 1 && bytes == empty); /* the tick */
    assert_true((uv_hrtime() - published) / 1000000 >= 300);
    pf_publish_ephemeral(2, 0);
    assert_true(pf_release());
    LC_RUN_UNTIL(c->eof);
    check_ephemeral(c, 2, 2);
    lc_close(c);
    /* No client: gone after its age, off the topic. */
    assert_int_equal(kf_hub_count(pf->hub, "t"), 1);
    LC_RUN_UNTIL(kf_push_window_count(pf->push, &bytes) == 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(kf_hub_count(pf->hub, "t"), 0);
    /* Published now, with no window, it reaches no poll. */
    pf_publish_ephemeral(3, 0);
    pf->mode = PF_REPLAY_IDLE;
    c = poll_from("/poll", 0, 0);
    check_ephemeral(c, 1, 0);
    lc_close(c);
    /* A long poll held keeps the window however long it waits: the ticks during its second pass
     * it by (detaching from a freed window would be a use after free). */
    c = lc_get("/short?after=0", "Connection: close\r\n"); /* answered empty after 1 s */
    LC_RUN_UNTIL(kf_push_client_count(pf->push) == 1);
    uint64_t held = uv_hrtime();
    /* Checked after every turn of the loop, so after every tick, while the server holds the poll
     * (not the client's view of it, which lags): a slow machine stalls the loop but cannot make
     * a tick's sweep go unseen. */
    LC_RUN_UNTIL(kf_push_client_count(pf->push) == 0 || kf_push_window_count(pf->push, NULL) != 1);
    assert_int_equal(kf_push_window_count(pf->push, NULL), 1);
    assert_true((uv_hrtime() - held) / 1000000 >= 600); /* held past twice the window's age */
    LC_RUN_UNTIL(c->eof);
    assert_true(lc_seen(c, "{\"events\":[],"));
    lc_close(c);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, push_fixture_setup, push_fixture_teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_typing_between_long_polls),
        TEST(test_messages_first_then_ephemeral_in_order),
        TEST(test_ephemeral_during_replay),
        TEST(test_window_keeps_the_last_64),
        TEST(test_window_bytes),
        TEST(test_window_age_and_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
