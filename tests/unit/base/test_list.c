/* test_list.c: the intrusive list: order, removal from anywhere (also twice), and iteration that
 * removes the node it is on, and a walk in slices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/list.h"

typedef struct item {
    int value;
    kf_list_t link;
} item_t;

static int value_of(kf_list_t *node)
{
    return KF_CONTAINER_OF(node, item_t, link)->value;
}

static void test_order_and_removal(void **state)
{
    (void)state;
    kf_list_t head;
    kf_list_init(&head);
    assert_true(kf_list_empty(&head));
    assert_null(kf_list_first(&head));
    assert_null(kf_list_last(&head));
    item_t items[5];
    for (int i = 0; i < 5; i++) {
        items[i].value = i;
        kf_list_init(&items[i].link);
        assert_false(kf_list_linked(&items[i].link));
        kf_list_push_back(&head, &items[i].link);
        assert_true(kf_list_linked(&items[i].link));
    }
    item_t front = {.value = -1};
    kf_list_push_front(&head, &front.link);
    assert_int_equal(value_of(kf_list_first(&head)), -1);
    assert_int_equal(value_of(kf_list_last(&head)), 4);
    kf_list_remove(&items[2].link);
    kf_list_remove(&items[2].link); /* a second removal does nothing */
    assert_false(kf_list_linked(&items[2].link));
    int expected[] = {-1, 0, 1, 3, 4};
    int n = 0;
    KF_LIST_FOREACH(it, next, &head) {
        assert_int_equal(value_of(it), expected[n]);
        n++;
    }
    assert_int_equal(n, 5);
}

static void test_foreach_may_remove_current(void **state)
{
    (void)state;
    kf_list_t head;
    kf_list_init(&head);
    item_t items[6];
    for (int i = 0; i < 6; i++) {
        items[i].value = i;
        kf_list_push_back(&head, &items[i].link);
    }
    int seen = 0;
    KF_LIST_FOREACH(it, next, &head) {
        if (value_of(it) % 2 == 0)
            kf_list_remove(it);
        seen++;
    }
    assert_int_equal(seen, 6);
    int left = 0;
    KF_LIST_FOREACH(it, next, &head) {
        assert_int_equal(value_of(it) % 2, 1);
        left++;
    }
    assert_int_equal(left, 3);
    KF_LIST_FOREACH(it, next, &head)
        kf_list_remove(it);
    assert_true(kf_list_empty(&head));
}

/* A sweep in slices (kf_list_sweep_slice, each node taken with kf_list_rotate) sees every node
 * once a round: nodes that come are seen within the next round, a late tick takes more, and
 * nodes that leave as they are seen (as a sweep closes timed-out connections) do not slow the
 * rest of the round down, as a share of the shrinking count would. */
static void test_sweep_in_slices(void **state)
{
    (void)state;
    kf_list_t head;
    kf_list_init(&head);
    assert_null(kf_list_rotate(&head));
    enum { N = 25, MORE = 3, ROUND = 1000, TICK = 100 };
    item_t items[N + MORE];
    int seen[N + MORE] = {0};
    for (int i = 0; i < N; i++) {
        items[i].value = i;
        kf_list_push_back(&head, &items[i].link);
    }
    size_t count = N;
    kf_list_sweep_t sweep = {.start_ms = 0};
    uint64_t now = 0;
    /* The first round began with none: it takes none, and the next takes all. */
    now += TICK;
    assert_int_equal(kf_list_sweep_slice(&sweep, count, now, ROUND), 0);
    for (int tick = 2; tick <= 20; tick++) {
        if (tick == 14 || tick == 15)
            continue; /* late: the tick at 1,600 ms takes three ticks' share */
        now = (uint64_t)tick * TICK;
        size_t slice = kf_list_sweep_slice(&sweep, count, now, ROUND);
        if (tick == 10)
            assert_int_equal(slice, 0); /* a new round with all 25, at its first instant */
        for (size_t i = 0; i < slice; i++)
            seen[value_of(kf_list_rotate(&head))]++;
        if (tick == 13) {
            kf_list_remove(&items[24].link); /* one leaves before this round sees it */
            count--;
            for (int i = N; i < N + MORE; i++) { /* and three come */
                items[i].value = i;
                kf_list_push_back(&head, &items[i].link);
                count++;
            }
        }
    }
    /* The round from 1,000 ms to 2,000 saw every node it began with that stayed (one twice: the
     * share of the one that left went to the next in line), none that came after it began. */
    for (int i = 0; i < N - 1; i++)
        assert_true(seen[i] >= 1 && seen[i] <= 2);
    assert_int_equal(seen[24], 0);
    for (int i = N; i < N + MORE; i++)
        assert_int_equal(seen[i], 0);
    /* The round from 2,000 ms sees those too. */
    size_t slice;
    for (now = 2100; now <= 3000; now += TICK) {
        slice = kf_list_sweep_slice(&sweep, count, now, ROUND);
        for (size_t i = 0; i < slice; i++)
            seen[value_of(kf_list_rotate(&head))]++;
    }
    for (int i = N; i < N + MORE; i++)
        assert_int_equal(seen[i], 1);

    /* Nodes leaving as they are seen: the round still gets to the last of them in time. */
    kf_list_init(&head);
    item_t leaving[100];
    for (int i = 0; i < 100; i++) {
        leaving[i].value = i;
        kf_list_push_back(&head, &leaving[i].link);
    }
    count = 100;
    sweep = (kf_list_sweep_t){.start_ms = 0, .count = 100, .taken = 0};
    int gone = 0;
    for (now = TICK; now <= ROUND && gone < 100; now += TICK) {
        slice = kf_list_sweep_slice(&sweep, count, now, ROUND);
        for (size_t i = 0; i < slice && !kf_list_empty(&head); i++) {
            kf_list_remove(kf_list_rotate(&head));
            count--;
            gone++;
        }
    }
    assert_int_equal(gone, 100);

    /* A list that shrank below its share: each node once, not round again. */
    sweep = (kf_list_sweep_t){.start_ms = 0, .count = 100, .taken = 0};
    assert_int_equal(kf_list_sweep_slice(&sweep, 3, ROUND / 2, ROUND), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_removal),
        cmocka_unit_test(test_foreach_may_remove_current),
        cmocka_unit_test(test_sweep_in_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
