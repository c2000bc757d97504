/* test_map.c: the hash table: find, insert, remove, growth and shrinking, iteration that removes,
 * and colliding keys kept apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/map.h"

typedef struct item {
    kf_map_node_t node;
    int value;
    char name[24];
} item_t;

static bool item_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    const item_t *item = KF_CONTAINER_OF(node, item_t, node);
    return strlen(item->name) == len && memcmp(item->name, key, len) == 0;
}

static item_t *find(kf_map_t *map, const char *name)
{
    size_t len = strlen(name);
    kf_map_node_t *node = kf_map_find(map, kf_map_hash(map, name, len), name, len, item_eq);
    return node != NULL ? KF_CONTAINER_OF(node, item_t, node) : NULL;
}

static item_t *add(kf_map_t *map, const char *name, int value)
{
    item_t *item = calloc(1, sizeof *item);
    snprintf(item->name, sizeof item->name, "%s", name);
    item->value = value;
    kf_map_insert(map, &item->node, kf_map_hash(map, name, strlen(name)));
    return item;
}

static void test_empty_map_finds_nothing(void **state)
{
    (void)state;
    kf_map_t map;
    kf_map_init(&map);
    assert_null(find(&map, "x"));
    assert_int_equal(kf_map_count(&map), 0);
    kf_map_free(&map);
}

static void free_cb(kf_map_node_t *node, void *ctx)
{
    kf_map_remove(ctx, node);
    free(KF_CONTAINER_OF(node, item_t, node));
}

static void test_insert_find_remove_many(void **state)
{
    (void)state;
    kf_map_t map;
    kf_map_init(&map);
    char name[24];
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof name, "key-%d", i);
        add(&map, name, i);
    }
    assert_int_equal(kf_map_count(&map), 10000);
    assert_true(map.bucket_count >= 10000);
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof name, "key-%d", i);
        item_t *item = find(&map, name);
        assert_non_null(item);
        assert_int_equal(item->value, i);
    }
    assert_null(find(&map, "key-10000"));
    /* Removing most of them shrinks the table: a burst does not pin its memory. */
    for (int i = 0; i < 9990; i++) {
        snprintf(name, sizeof name, "key-%d", i);
        item_t *item = find(&map, name);
        kf_map_remove(&map, &item->node);
        free(item);
    }
    assert_int_equal(kf_map_count(&map), 10);
    assert_true(map.bucket_count <= 128);
    assert_non_null(find(&map, "key-9995"));
    assert_null(find(&map, "key-5"));
    kf_map_each(&map, free_cb, &map);
    assert_int_equal(kf_map_count(&map), 0);
    kf_map_free(&map);
}

static void sum_cb(kf_map_node_t *node, void *ctx)
{
    *(int *)ctx += KF_CONTAINER_OF(node, item_t, node)->value;
}

static void test_each_visits_every_node_once(void **state)
{
    (void)state;
    kf_map_t map;
    kf_map_init(&map);
    int expected = 0;
    for (int i = 1; i <= 300; i++) {
        char name[24];
        snprintf(name, sizeof name, "%d", i);
        add(&map, name, i);
        expected += i;
    }
    int sum = 0;
    kf_map_each(&map, sum_cb, &sum);
    assert_int_equal(sum, expected);
    /* Removing every node from inside the iteration: each is still visited once, and the table
     * shrinks only once the walk is over. */
    kf_map_each(&map, free_cb, &map);
    assert_int_equal(kf_map_count(&map), 0);
    assert_int_equal(map.bucket_count, 16);
    kf_map_free(&map);
}

static bool never_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    (void)node;
    (void)key;
    (void)len;
    return false;
}

static void test_same_hash_different_keys(void **state)
{
    (void)state;
    kf_map_t map;
    kf_map_init(&map);
    /* Two nodes filed under one hash (as a collision would): eq tells them apart. */
    item_t a = {.value = 1, .name = "a"};
    item_t b = {.value = 2, .name = "b"};
    kf_map_insert(&map, &a.node, 42);
    kf_map_insert(&map, &b.node, 42);
    assert_ptr_equal(kf_map_find(&map, 42, "a", 1, item_eq), &a.node);
    assert_ptr_equal(kf_map_find(&map, 42, "b", 1, item_eq), &b.node);
    assert_null(kf_map_find(&map, 42, "a", 1, never_eq));
    kf_map_remove(&map, &a.node);
    assert_null(kf_map_find(&map, 42, "a", 1, item_eq));
    assert_ptr_equal(kf_map_find(&map, 42, "b", 1, item_eq), &b.node);
    kf_map_remove(&map, &b.node);
    kf_map_free(&map);
}

static void test_tables_have_their_own_keys(void **state)
{
    (void)state;
    kf_map_t a, b;
    kf_map_init(&a);
    kf_map_init(&b);
    /* Which keys share a bucket in one table says nothing about another (or another process). */
    assert_int_not_equal(kf_map_hash(&a, "10.0.0.1", 8), kf_map_hash(&b, "10.0.0.1", 8));
    kf_map_free(&a);
    kf_map_free(&b);
}

static int freed;

static void count_free(kf_map_node_t *node)
{
    freed++;
    free(KF_CONTAINER_OF(node, item_t, node));
}

static void test_clear_frees_every_node(void **state)
{
    (void)state;
    kf_map_t map;
    kf_map_init(&map);
    char name[24];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "k%d", i);
        add(&map, name, i);
    }
    freed = 0;
    kf_map_clear(&map, count_free);
    assert_int_equal(freed, 100);
    assert_int_equal(kf_map_count(&map), 0);
    assert_null(find(&map, "k1"));
    add(&map, "again", 1); /* usable after */
    kf_map_clear(&map, count_free);
    assert_int_equal(freed, 101);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_map_finds_nothing),
        cmocka_unit_test(test_insert_find_remove_many),
        cmocka_unit_test(test_each_visits_every_node_once),
        cmocka_unit_test(test_same_hash_different_keys),
        cmocka_unit_test(test_tables_have_their_own_keys),
        cmocka_unit_test(test_clear_frees_every_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
