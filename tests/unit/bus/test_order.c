/* test_order.c: bus/order.c: message events in id order across nodes; what waited behind an id
 * goes at the next turn of the loop, after that id's other topics; a hole given up after its
 * time, unless the pull brings it in first; ephemeral events, second topics and late ids at once; a
 * flush; a subscriber that publishes while the order delivers; held events freed with the order;
 * an order started at the store's newest id, whose first event waits for the ids between. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "base/clock.h"
#include "bus/order.h"

#define HOLE_MS 30

typedef struct seen {
    char log[512]; /* "id:topic " for each delivery ("id!:topic " marked late) */
    kf_bus_order_t *order;
    uint64_t add_after; /* deliver_cb adds add_id when it delivers this id (0: never) */
    uint64_t add_id;
    uint64_t pull_id; /* what the pull adds, once (0: nothing) */
    int pulls;
} seen_t;

static void deliver_cb(void *ctx, const char *topic, bool prefix, kf_event_t *event)
{
    seen_t *seen = ctx;
    size_t len = strlen(seen->log);
    snprintf(seen->log + len, sizeof seen->log - len, "%llu%s%s%s ", (unsigned long long)event->id,
             event->late ? "!" : "", prefix ? "*" : ":", topic);
    if (seen->add_after != 0 && event->id == seen->add_after) {
        seen->add_after = 0;
        kf_event_t *more = kf_event_new(seen->add_id, "{}", 2);
        kf_bus_order_add(seen->order, "v", false, more);
        kf_event_unref(more);
    }
}

static void add(seen_t *seen, uint64_t id, const char *topic)
{
    kf_event_t *event = kf_event_new(id, "{}", 2);
    kf_bus_order_add(seen->order, topic, false, event);
    kf_event_unref(event);
}

/* One turn of the loop: what waited behind an id that went out goes then. */
static void turn(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
}

static void expect(seen_t *seen, const char *log)
{
    assert_string_equal(seen->log, log);
    seen->log[0] = '\0';
}

/* A loop and an order on it that logs into seen and counts its holes. */
static void start(uv_loop_t *loop, seen_t *seen, uint64_t *holes)
{
    uv_loop_init(loop);
    memset(seen, 0, sizeof *seen);
    *holes = 0;
    seen->order = kf_bus_order_new(loop, HOLE_MS, deliver_cb, seen, holes);
}

/* Runs the loop until the order holds nothing (a hole's time may pass). */
static void until_empty(uv_loop_t *loop, seen_t *seen)
{
    while (kf_bus_order_held(seen->order) > 0)
        uv_run(loop, UV_RUN_ONCE);
}

/* Frees the order and closes its loop (the order's timers close asynchronously). */
static void finish(uv_loop_t *loop, seen_t *seen)
{
    kf_bus_order_free(seen->order);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_order(void **state)
{
    (void)state;
    uv_loop_t loop;
    seen_t seen;
    uint64_t holes;
    start(&loop, &seen, &holes);

    /* The first id starts the order; in order, each goes at once. */
    add(&seen, 5, "v");
    add(&seen, 6, "v");
    expect(&seen, "5:v 6:v ");
    /* 8 waits for 7; the same message on its second topic waits with it; 7 lets both out. */
    add(&seen, 8, "v");
    add(&seen, 8, "a");
    expect(&seen, "");
    assert_int_equal(kf_bus_order_held(seen.order), 2);
    add(&seen, 0, "t"); /* ephemeral: at once */
    expect(&seen, "0:t ");
    add(&seen, 7, "v");
    add(&seen, 7, "a"); /* its second topic, at once too: 8 waits for the loop's next turn */
    expect(&seen, "7:v 7:a ");
    turn(&loop);
    expect(&seen, "8:v 8:a ");
    assert_int_equal(kf_bus_order_held(seen.order), 0);

    /* Out of order by more than one: 11 and 10 wait for 9. */
    add(&seen, 11, "v");
    add(&seen, 10, "v");
    expect(&seen, "");
    add(&seen, 9, "v");
    expect(&seen, "9:v ");
    turn(&loop);
    expect(&seen, "10:v 11:v ");

    /* A hole nobody fills: given up after HOLE_MS, and what came after goes out. */
    add(&seen, 14, "v");
    add(&seen, 13, "v");
    expect(&seen, "");
    uint64_t t0 = uv_now(&loop);
    until_empty(&loop, &seen);
    uv_update_time(&loop);
    assert_true(uv_now(&loop) - t0 >= HOLE_MS - 1);
    expect(&seen, "13:v 14:v ");
    assert_int_equal(holes, 1);
    add(&seen, 12, "v"); /* late: at once, and marked so, since 13 and 14 went out before it */
    expect(&seen, "12!:v ");
    add(&seen, 12, "a"); /* on its second topic too */
    expect(&seen, "12!:a ");

    /* A subscriber that publishes while the order delivers: its event goes after those before. */
    add(&seen, 17, "v");
    add(&seen, 16, "v");
    seen.add_after = 16;
    seen.add_id = 18;
    add(&seen, 15, "v");
    turn(&loop);
    expect(&seen, "15:v 16:v 17:v 18:v ");

    /* A flush lets everything out and forgets the order: the next id starts it again. */
    add(&seen, 21, "v");
    expect(&seen, "");
    kf_bus_order_flush(seen.order);
    expect(&seen, "21:v ");
    add(&seen, 30, "v");
    expect(&seen, "30:v ");

    /* Freed with events held: they are dropped (and their references let go). */
    add(&seen, 40, "v");
    assert_int_equal(kf_bus_order_held(seen.order), 1);
    kf_bus_order_free(seen.order);
    uv_run(&loop, UV_RUN_DEFAULT);
    expect(&seen, "");
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* What the pull hands in when the hole's time is up: 20, queued meanwhile. */
static void pull_cb(void *ctx)
{
    seen_t *seen = ctx;
    seen->pulls++;
    if (seen->pull_id != 0)
        add(seen, seen->pull_id, "v");
    seen->pull_id = 0;
}

static void gave_up_cb(void *ctx, uint64_t floor)
{
    seen_t *seen = ctx;
    size_t len = strlen(seen->log);
    snprintf(seen->log + len, sizeof seen->log - len, "hole>%llu ", (unsigned long long)floor);
}

/* Before a hole is given up, the pull brings in what had come meanwhile: no hole, the order
 * kept. A pull that brings nothing: given up as before, and the owner told. */
static void test_pull(void **state)
{
    (void)state;
    uv_loop_t loop;
    seen_t seen;
    uint64_t holes;
    start(&loop, &seen, &holes);
    kf_bus_order_set_hooks(seen.order, pull_cb, gave_up_cb, &seen);
    add(&seen, 19, "v");
    add(&seen, 21, "v");
    add(&seen, 22, "v");
    expect(&seen, "19:v ");
    seen.pull_id = 20;
    until_empty(&loop, &seen);
    expect(&seen, "20:v 21:v 22:v ");
    assert_int_equal(seen.pulls, 1);
    assert_int_equal(holes, 0);

    /* The owner hears of the hole, with the id below it, before what waited goes out. */
    add(&seen, 24, "v");
    until_empty(&loop, &seen);
    expect(&seen, "hole>22 24:v ");
    assert_int_equal(seen.pulls, 2);
    assert_int_equal(holes, 1);
    finish(&loop, &seen);
}

/* Started at the store's newest (30): the first id seen, 32, waits for 31 as any later one would;
 * an id at or below 30 goes at once. A flush forgets the start as it forgets the newest: the next
 * id starts the order again. */
static void test_start(void **state)
{
    (void)state;
    uv_loop_t loop;
    seen_t seen;
    uint64_t holes;
    start(&loop, &seen, &holes);
    kf_bus_order_start(seen.order, 30);
    add(&seen, 32, "v");
    expect(&seen, "");
    add(&seen, 30, "v");
    expect(&seen, "30:v ");
    add(&seen, 31, "v");
    expect(&seen, "31:v ");
    turn(&loop);
    expect(&seen, "32:v ");
    assert_int_equal(holes, 0);
    /* A hole right above the start is given up after its time, as any other. */
    kf_bus_order_flush(seen.order);
    kf_bus_order_start(seen.order, 40);
    add(&seen, 42, "v");
    until_empty(&loop, &seen);
    expect(&seen, "42:v ");
    assert_int_equal(holes, 1);
    kf_bus_order_flush(seen.order);
    add(&seen, 50, "v");
    expect(&seen, "50:v ");
    finish(&loop, &seen);
}

/* Waiting for the start: everything is held, however long, then what is at or below the start
 * goes out at once in id order and the rest in turn. */
static void test_wait(void **state)
{
    (void)state;
    uv_loop_t loop;
    seen_t seen;
    uint64_t holes;
    start(&loop, &seen, &holes);
    add(&seen, 7, "v");
    kf_bus_order_wait(seen.order); /* a flush first: 7 goes */
    expect(&seen, "7:v ");
    assert_true(kf_bus_order_waiting(seen.order));
    add(&seen, 12, "v");
    add(&seen, 11, "v");
    add(&seen, 14, "v");
    add(&seen, 0, "typing");
    expect(&seen, "0:typing ");
    /* Longer than a hole's time: nothing is given up before the start. */
    uint64_t began = kf_clock_mono_ms();
    while (kf_clock_mono_ms() - began < 3 * HOLE_MS)
        uv_run(&loop, UV_RUN_NOWAIT);
    expect(&seen, "");
    assert_int_equal(kf_bus_order_held(seen.order), 3);
    kf_bus_order_start(seen.order, 11);
    assert_false(kf_bus_order_waiting(seen.order));
    expect(&seen, "11:v 12:v ");
    add(&seen, 13, "v");
    expect(&seen, "13:v ");
    turn(&loop);
    expect(&seen, "14:v ");
    assert_int_equal(holes, 0);
    /* A flush ends the wait: the next one starts the order, as without it. */
    kf_bus_order_wait(seen.order);
    add(&seen, 20, "v");
    kf_bus_order_flush(seen.order);
    expect(&seen, "20:v ");
    add(&seen, 30, "v");
    expect(&seen, "30:v ");
    finish(&loop, &seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_pull),
        cmocka_unit_test(test_start),
        cmocka_unit_test(test_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
