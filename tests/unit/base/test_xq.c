/* test_xq.c: base/xq.c, the cross-thread queue: empty pops, FIFO order through the stub's
 * comings and goings, a node pushed again after its pop; and producers on their own threads
 * against one consumer, every node popped once, in each producer's order (run under TSan too:
 * make unit-tsan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/xq.h"

typedef struct item {
    kf_xq_node_t node; /* first: a node is an item */
    int producer;
    int seq;
} item_t;

static item_t *pop(kf_xq_t *q)
{
    return (item_t *)kf_xq_pop(q);
}

static void test_empty(void **state)
{
    (void)state;
    kf_xq_t q;
    kf_xq_init(&q);
    assert_null(pop(&q));
    assert_null(pop(&q));
}

static void test_fifo(void **state)
{
    (void)state;
    kf_xq_t q;
    kf_xq_init(&q);
    item_t items[5];
    memset(items, 0, sizeof items);
    /* One, then empty (the stub goes behind it), then several, twice over. */
    kf_xq_push(&q, &items[0].node);
    assert_ptr_equal(pop(&q), &items[0]);
    assert_null(pop(&q));
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 5; i++)
            kf_xq_push(&q, &items[i].node);
        for (int i = 0; i < 5; i++)
            assert_ptr_equal(pop(&q), &items[i]);
        assert_null(pop(&q));
    }
    /* Interleaved: push two, pop one, push one, pop the rest. */
    kf_xq_push(&q, &items[0].node);
    kf_xq_push(&q, &items[1].node);
    assert_ptr_equal(pop(&q), &items[0]);
    kf_xq_push(&q, &items[2].node);
    assert_ptr_equal(pop(&q), &items[1]);
    assert_ptr_equal(pop(&q), &items[2]);
    assert_null(pop(&q));
}

#define PRODUCERS 3
#define PER_PRODUCER 100000

typedef struct producer {
    kf_xq_t *q;
    int index;
    item_t *items;
} producer_t;

static void *produce(void *data)
{
    producer_t *p = data;
    for (int i = 0; i < PER_PRODUCER; i++) {
        p->items[i].producer = p->index;
        p->items[i].seq = i;
        kf_xq_push(p->q, &p->items[i].node);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    kf_xq_t q;
    kf_xq_init(&q);
    producer_t producers[PRODUCERS];
    pthread_t threads[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        producers[i] = (producer_t){&q, i, calloc(PER_PRODUCER, sizeof(item_t))};
        assert_int_equal(pthread_create(&threads[i], NULL, produce, &producers[i]), 0);
    }
    int next[PRODUCERS] = {0};
    long popped = 0;
    while (popped < (long)PRODUCERS * PER_PRODUCER) {
        item_t *item = pop(&q);
        if (item == NULL)
            continue; /* empty, or a push half done: it comes */
        assert_in_range(item->producer, 0, PRODUCERS - 1);
        assert_int_equal(item->seq, next[item->producer]);
        next[item->producer]++;
        popped++;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(next[i], PER_PRODUCER);
    }
    assert_null(pop(&q));
    for (int i = 0; i < PRODUCERS; i++)
        free(producers[i].items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
