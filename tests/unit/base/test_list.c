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

/* Slices of a tenth of the length, each taken with kf_list_rotate, see every node once in ten
 * slices, also when nodes leave and come between slices (as a sweep's clients do): one that
 * comes is seen within ten slices of coming. */
static void test_rotate_in_slices(void **state)
{
    (void)state;
    kf_list_t head;
    kf_list_init(&head);
    assert_null(kf_list_rotate(&head));
    enum { N = 25, SLICES = 10 };
    item_t items[N + 3];
    int seen[N + 3] = {0};
    for (int i = 0; i < N; i++) {
        items[i].value = i;
        kf_list_push_back(&head, &items[i].link);
    }
    size_t count = N;
    for (int round = 0; round < 2; round++) {
        for (int s = 0; s < SLICES; s++) {
            size_t slice = (count + SLICES - 1) / SLICES;
            for (size_t i = 0; i < slice; i++)
                seen[value_of(kf_list_rotate(&head))]++;
            if (round == 0 && s == 3) {
                kf_list_remove(&items[24].link); /* one leaves before it is seen */
                count--;
                for (int i = N; i < N + 3; i++) { /* and three come */
                    items[i].value = i;
                    kf_list_push_back(&head, &items[i].link);
                    count++;
                }
            }
        }
        for (int i = 0; i < N - 1; i++)
            assert_true(seen[i] >= round + 1);
        for (int i = N; i < N + 3; i++) /* seen within ten slices of coming */
            assert_true(seen[i] >= round);
    }
    assert_int_equal(seen[24], 0);
    item_t one = {.value = 7};
    kf_list_init(&head);
    kf_list_push_back(&head, &one.link);
    assert_ptr_equal(kf_list_rotate(&head), &one.link);
    assert_ptr_equal(kf_list_first(&head), &one.link);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_removal),
        cmocka_unit_test(test_foreach_may_remove_current),
        cmocka_unit_test(test_rotate_in_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
