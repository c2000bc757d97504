/* test_list.c: the intrusive list: order, removal from anywhere (also twice), and iteration that
 * removes the node it is on. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_removal),
        cmocka_unit_test(test_foreach_may_remove_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
