/* test_loops.c: bus/loops.c, the bus between the loops of one process: an event published on
 * one loop's hub reaches a subscriber on another's (a copy with the same bytes), once, and the
 * publisher's own subscribers at once; message events in id order on every loop, a loop's own
 * waiting for a lower id from another; KF_BUS_MESSAGE for each message from another loop, an
 * ephemeral event numbered once (eseq) and KF_BUS_EPHEMERAL on both loops; an event that crosses
 * at its publish's end; a stalled loop that takes in its queue before it gives up a hole; a hole
 * given up, told on every loop; a loop's own first message after a start waiting for a lower id
 * from another (the group starts at the store's newest id); and a loop on its own thread hearing
 * thousands of events in order (run under TSan too). Every handle is closed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "bus/bus.h"

typedef struct heard {
    kf_sub_t sub;
    char log[512];    /* "id " for each event heard */
    char json[64];    /* the last event's bytes */
    size_t count;     /* events heard */
    uint64_t last_id; /* the last message id heard */
    uint64_t eseq;    /* the last event's number across the loops */
    bool out_of_order;
    bool late;         /* an event heard was marked late */
    size_t stop_after; /* close stop once this many are heard (0: never) */
    uv_async_t *stop;
} heard_t;

static void heard_cb(kf_sub_t *sub, kf_event_t *event)
{
    heard_t *h = sub->data;
    size_t len = strlen(h->log);
    if (len + 24 < sizeof h->log)
        snprintf(h->log + len, sizeof h->log - len, "%llu ", (unsigned long long)event->id);
    snprintf(h->json, sizeof h->json, "%s", event->json);
    h->eseq = event->eseq;
    if (event->late)
        h->late = true;
    if (event->id != 0) {
        if (event->id <= h->last_id)
            h->out_of_order = true;
        h->last_id = event->id;
    }
    h->count++;
    if (h->stop_after != 0 && h->count == h->stop_after)
        uv_close((uv_handle_t *)h->stop, NULL);
}

typedef struct notes {
    size_t holes;      /* KF_BUS_HOLE heard */
    uint64_t hole;     /* the last one's floor */
    size_t messages;   /* KF_BUS_MESSAGE heard */
    size_t ephemerals; /* KF_BUS_EPHEMERAL heard */
    uint64_t last;
    char topic[32];
} notes_t;

static void notify_cb(void *ctx, kf_bus_change_t change, const char *detail, uint64_t after)
{
    notes_t *n = ctx;
    if (change == KF_BUS_EPHEMERAL)
        n->ephemerals++;
    if (change == KF_BUS_HOLE) {
        n->holes++;
        n->hole = after;
    }
    if (change != KF_BUS_MESSAGE)
        return;
    n->messages++;
    n->last = after;
    snprintf(n->topic, sizeof n->topic, "%s", detail);
}

typedef struct two {
    uv_loop_t loops[2];
    kf_hub_t *hubs[2];
    kf_bus_t *buses[2];
    kf_loops_t *group;
    heard_t heard[2];
    notes_t notes[2];
    /* Referenced, as a server's listener is: a loop with none runs nothing (the bus's wake-up is
     * unreferenced) */
    uv_async_t keep[2];
} two_t;

static void two_init(two_t *t)
{
    memset(t, 0, sizeof *t);
    t->group = kf_loops_new(2, 4); /* the store's newest message is 4: the tests' next is 5 */
    for (size_t i = 0; i < 2; i++) {
        uv_loop_init(&t->loops[i]);
        uv_async_init(&t->loops[i], &t->keep[i], NULL);
        t->hubs[i] = kf_hub_new();
        t->buses[i] =
            kf_bus_new_loops(t->group, i, &t->loops[i], t->hubs[i], notify_cb, &t->notes[i]);
        kf_sub_init(&t->heard[i].sub, heard_cb, &t->heard[i]);
        kf_hub_subscribe(t->hubs[i], "v", &t->heard[i].sub);
    }
}

static void two_free(two_t *t)
{
    for (size_t i = 0; i < 2; i++) {
        kf_hub_unsubscribe(t->hubs[i], &t->heard[i].sub);
        kf_bus_free(t->buses[i]);
    }
    for (size_t i = 0; i < 2; i++) {
        if (!uv_is_closing((uv_handle_t *)&t->keep[i]))
            uv_close((uv_handle_t *)&t->keep[i], NULL);
        kf_loops_close(t->group, i);
        uv_run(&t->loops[i], UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&t->loops[i]), 0);
        kf_hub_free(t->hubs[i]);
    }
    kf_loops_free(t->group);
}

static void publish(kf_hub_t *hub, uint64_t id, const char *json)
{
    kf_event_t *event = kf_event_new(id, json, strlen(json));
    kf_hub_publish(hub, "v", event);
    kf_event_unref(event);
}

static void turn(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
}

/* A message as the chat layer publishes it: its topics, then the end of the publish. */
static void publish_ended(kf_hub_t *hub, uint64_t id)
{
    publish(hub, id, "{}");
    kf_hub_publish_end(hub);
}

/* Loop 0's 5 heard on loop 1, then loop 1's own 7, held there for 6. */
static void hold_seven(two_t *t)
{
    publish_ended(t->hubs[0], 5);
    turn(&t->loops[1]);
    publish_ended(t->hubs[1], 7);
}

static uint64_t stat_of(two_t *t, size_t loop, bool holes)
{
    kf_bus_stats_t stats;
    kf_bus_stats(t->buses[loop], &stats);
    return holes ? stats.holes : stats.sent;
}

static void test_crosses(void **state)
{
    (void)state;
    two_t t;
    two_init(&t);
    publish(t.hubs[0], 0, "{\"type\":\"typing\"}");
    /* The publisher's own subscriber at once; the other loop's once the publisher's loop has
     * turned (it sends at its next turn) and the other runs. */
    assert_string_equal(t.heard[0].log, "0 ");
    turn(&t.loops[1]);
    assert_int_equal(t.heard[1].count, 0);
    turn(&t.loops[0]);
    turn(&t.loops[1]);
    assert_string_equal(t.heard[1].log, "0 ");
    assert_string_equal(t.heard[1].json, "{\"type\":\"typing\"}");
    assert_int_equal(t.notes[1].messages, 0); /* ephemeral: nothing stored */
    /* Numbered once where published, the same on both loops; each loop told to keep its
     * window. */
    assert_true(t.heard[0].eseq > 0);
    assert_int_equal(t.heard[1].eseq, t.heard[0].eseq);
    assert_int_equal(t.notes[0].ephemerals, 1);
    assert_int_equal(t.notes[1].ephemerals, 1);
    /* Back the other way, and once only: nothing comes round again. */
    publish(t.hubs[1], 0, "{\"b\":1}");
    turn(&t.loops[0]);
    turn(&t.loops[1]);
    turn(&t.loops[0]);
    assert_string_equal(t.heard[0].log, "0 0 ");
    assert_string_equal(t.heard[1].log, "0 0 ");
    kf_bus_stats_t stats;
    kf_bus_stats(t.buses[0], &stats);
    assert_int_equal(stats.sent, 1);
    assert_int_equal(stats.received, 1);
    assert_true(kf_bus_ready(t.buses[0]));
    two_free(&t);
}

static void test_order(void **state)
{
    (void)state;
    two_t t;
    two_init(&t);
    publish(t.hubs[0], 5, "{}");
    turn(&t.loops[0]);
    turn(&t.loops[1]);
    assert_string_equal(t.heard[1].log, "5 ");
    assert_int_equal(t.notes[1].messages, 1);
    assert_int_equal(t.notes[1].last, 5);
    assert_string_equal(t.notes[1].topic, "v");
    /* Loop 1 commits 7 while loop 0's 6 is on its way: 7 waits for it on loop 1. */
    publish(t.hubs[1], 7, "{}");
    assert_string_equal(t.heard[1].log, "5 ");
    publish(t.hubs[0], 6, "{}");
    for (int i = 0; i < 3; i++) {
        turn(&t.loops[0]);
        turn(&t.loops[1]);
    }
    assert_string_equal(t.heard[1].log, "5 6 7 ");
    /* Loop 0 heard its own 5 and 6 at once, and 7 after them. */
    assert_string_equal(t.heard[0].log, "5 6 7 ");
    two_free(&t);
}

/* A message goes to its visitor's topic, then to the agents' (chat/events.c): both cross
 * together. Were the first to cross alone, the other loop could deliver a message of its own with
 * the next id between them, and its agents would hear the higher id first. */
static void test_topics_together(void **state)
{
    (void)state;
    two_t t;
    two_init(&t);
    heard_t agents = {0};
    kf_sub_init(&agents.sub, heard_cb, &agents);
    kf_hub_subscribe(t.hubs[1], "a", &agents.sub);
    publish(t.hubs[0], 5, "{}");
    turn(&t.loops[0]);
    turn(&t.loops[1]);
    assert_string_equal(t.heard[1].log, "5 ");
    /* Loop 0 publishes 6 on "v"; loop 1 runs before 6 goes to "a" too. */
    kf_event_t *six = kf_event_new(6, "{}", 2);
    kf_hub_publish(t.hubs[0], "v", six);
    turn(&t.loops[1]);
    /* Loop 1's own 7, on both topics: it waits for 6. */
    kf_event_t *seven = kf_event_new(7, "{}", 2);
    kf_hub_publish(t.hubs[1], "v", seven);
    kf_hub_publish(t.hubs[1], "a", seven);
    kf_event_unref(seven);
    kf_hub_publish(t.hubs[0], "a", six);
    kf_event_unref(six);
    for (int i = 0; i < 3; i++) {
        turn(&t.loops[0]);
        turn(&t.loops[1]);
    }
    assert_string_equal(agents.log, "6 7 ");
    assert_false(agents.out_of_order);
    assert_string_equal(t.heard[1].log, "5 6 7 ");
    assert_int_equal(t.notes[1].messages, 3); /* 5, and 6 on each of its topics */
    kf_hub_unsubscribe(t.hubs[1], &agents.sub);
    two_free(&t);
}

/* A message is published to its visitor's topic and the agents', then kf_hub_publish_end: it
 * crosses then, before its publisher's answer, not at the loop's next turn. A client who has the
 * answer and sends the next message through the other loop finds the lower id there first. */
static void test_publish_end(void **state)
{
    (void)state;
    two_t t;
    two_init(&t);
    publish_ended(t.hubs[0], 5);
    turn(&t.loops[1]);
    assert_string_equal(t.heard[1].log, "5 ");
    /* Nothing waits any more: the publisher's turn sends nothing. */
    turn(&t.loops[0]);
    assert_int_equal(stat_of(&t, 0, false), 1);
    two_free(&t);
}

/* Loop 1 holds its own 7 for loop 0's 6, then stalls past the hole's time while 6 reaches its
 * queue. When it runs again its timers come before its wake-up: the order takes in the queue
 * before it gives up anything. */
static void test_stalled_loop(void **state)
{
    (void)state;
    two_t t;
    two_init(&t);
    hold_seven(&t);
    publish_ended(t.hubs[0], 6);
    uv_sleep(1100); /* past loops.c's HOLE_MS */
    turn(&t.loops[1]);
    assert_string_equal(t.heard[1].log, "5 6 7 ");
    assert_false(t.heard[1].out_of_order);
    assert_int_equal(stat_of(&t, 1, true), 0);
    two_free(&t);
}

/* A hole nobody fills (a loop stored 6 and never published it): loop 1 gives it up after the
 * hole's time and lets 7 out; both loops hear of it, with the id below it, so that their clients
 * replay from there (a poll client that took 7 on one loop may come back to the other). */
static void test_hole_news(void **state)
{
    (void)state;
    two_t t;
    two_init(&t);
    hold_seven(&t);
    uv_sleep(1100);
    turn(&t.loops[1]);
    assert_string_equal(t.heard[1].log, "5 7 ");
    assert_int_equal(t.notes[1].holes, 1);
    assert_int_equal(t.notes[1].hole, 5);
    /* Loop 0 hears the news; 7 waits there for 6 too, and goes once its own wait is over. */
    turn(&t.loops[0]);
    assert_int_equal(t.notes[0].holes, 1);
    assert_int_equal(t.notes[0].hole, 5);
    assert_string_equal(t.heard[0].log, "5 ");
    uv_sleep(1100);
    turn(&t.loops[0]);
    assert_string_equal(t.heard[0].log, "5 7 ");
    assert_int_equal(t.notes[0].holes, 2);
    turn(&t.loops[1]);
    assert_int_equal(t.notes[1].holes, 2);
    assert_int_equal(t.notes[1].hole, 5);
    assert_int_equal(stat_of(&t, 1, true), 1); /* its own */
    two_free(&t);
}

/* Right after a start, loop 1's first message is its own 6 while loop 0's 5 is still on its way:
 * 6 waits for it, since the group started at the store's newest (4). Had loop 1's order started
 * at the first id it saw, 6 would go out first and 5 after it, late: a long poll answered with 6
 * would come back with cursor 6 and never get 5. */
static void test_first_message_waits(void **state)
{
    (void)state;
    two_t t;
    two_init(&t);
    publish_ended(t.hubs[1], 6);
    assert_string_equal(t.heard[1].log, "");
    publish_ended(t.hubs[0], 5);
    for (int i = 0; i < 3; i++) {
        turn(&t.loops[0]);
        turn(&t.loops[1]);
    }
    assert_string_equal(t.heard[1].log, "5 6 ");
    assert_string_equal(t.heard[0].log, "5 6 ");
    assert_false(t.heard[1].out_of_order);
    /* Neither is late: 5 came into loop 1 after 6, but went out before it. Marked late, 5 would
     * reach a client whose cursor passed it with the store's replay (which saw its commit
     * first) a second time. */
    assert_false(t.heard[0].late);
    assert_false(t.heard[1].late);
    assert_int_equal(stat_of(&t, 1, true), 0);
    two_free(&t);
}

#define THREAD_EVENTS 20000

static void *run_loop(void *data)
{
    uv_run(data, UV_RUN_DEFAULT);
    return NULL;
}

static void test_thread(void **state)
{
    (void)state;
    two_t t;
    two_init(&t);
    /* Loop 1 runs until it has heard them all. */
    t.heard[1].stop = &t.keep[1];
    t.heard[1].stop_after = THREAD_EVENTS;
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, run_loop, &t.loops[1]), 0);
    for (uint64_t id = 1; id <= THREAD_EVENTS; id++)
        publish(t.hubs[0], id, "{\"type\":\"message\"}");
    turn(&t.loops[0]); /* the last one is sent at the loop's turn */
    pthread_join(thread, NULL);
    assert_int_equal(t.heard[1].count, THREAD_EVENTS);
    assert_false(t.heard[1].out_of_order);
    assert_int_equal(t.heard[1].last_id, THREAD_EVENTS);
    assert_int_equal(t.notes[1].messages, THREAD_EVENTS);
    two_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crosses),         cmocka_unit_test(test_order),
        cmocka_unit_test(test_topics_together), cmocka_unit_test(test_publish_end),
        cmocka_unit_test(test_stalled_loop),    cmocka_unit_test(test_hole_news),
        cmocka_unit_test(test_thread),          cmocka_unit_test(test_first_message_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
