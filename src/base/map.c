/* map.c: the chained hash table of map.h. */
#include "base/map.h"

#include <assert.h>
#include <stdlib.h>

#include "base/buf.h"

/* Smallest bucket array; it never shrinks below this. */
#define MIN_BUCKETS 16

void kf_map_init(kf_map_t *map)
{
    map->buckets = NULL;
    map->bucket_count = 0;
    map->count = 0;
    map->iterating = 0;
    /* Without the kernel's randomness the key is fixed: lookups stay correct, only predictable. */
    (void)kf_hash_key_random(&map->key);
}

void kf_map_free(kf_map_t *map)
{
    free(map->buckets);
    map->buckets = NULL;
    map->bucket_count = 0;
    map->count = 0;
}

uint64_t kf_map_hash(const kf_map_t *map, const void *key, size_t len)
{
    return kf_hash(&map->key, key, len);
}

kf_map_node_t *kf_map_find(const kf_map_t *map, uint64_t hash, const void *key, size_t len,
                           kf_map_eq_fn eq)
{
    if (map->bucket_count == 0)
        return NULL;
    for (kf_map_node_t *node = map->buckets[hash & (map->bucket_count - 1)]; node != NULL;
         node = node->chain) {
        if (node->hash == hash && eq(node, key, len))
            return node;
    }
    return NULL;
}

/* Moves every node into a new array of bucket_count buckets (a power of two). */
static void resize(kf_map_t *map, size_t bucket_count)
{
    kf_map_node_t **buckets = kf_xcalloc(bucket_count, sizeof *buckets);
    for (size_t i = 0; i < map->bucket_count; i++) {
        kf_map_node_t *next;
        for (kf_map_node_t *node = map->buckets[i]; node != NULL; node = next) {
            next = node->chain;
            size_t b = (size_t)(node->hash & (bucket_count - 1));
            node->chain = buckets[b];
            buckets[b] = node;
        }
    }
    free(map->buckets);
    map->buckets = buckets;
    map->bucket_count = bucket_count;
}

void kf_map_insert(kf_map_t *map, kf_map_node_t *node, uint64_t hash)
{
    assert(map->iterating == 0);
    if (map->bucket_count == 0)
        resize(map, MIN_BUCKETS);
    else if (map->count + 1 > map->bucket_count)
        resize(map, map->bucket_count * 2);
    size_t b = (size_t)(hash & (map->bucket_count - 1));
    node->hash = hash;
    node->chain = map->buckets[b];
    map->buckets[b] = node;
    map->count++;
}

void kf_map_remove(kf_map_t *map, kf_map_node_t *node)
{
    assert(map->count > 0);
    kf_map_node_t **link = &map->buckets[node->hash & (map->bucket_count - 1)];
    while (*link != node) {
        assert(*link != NULL); /* the node is in the table */
        link = &(*link)->chain;
    }
    *link = node->chain;
    node->chain = NULL;
    map->count--;
    if (map->iterating == 0 && map->bucket_count > MIN_BUCKETS &&
        map->count < map->bucket_count / 8)
        resize(map, map->bucket_count / 2);
}

void kf_map_clear(kf_map_t *map, void (*free_node)(kf_map_node_t *node))
{
    for (size_t i = 0; i < map->bucket_count; i++) {
        kf_map_node_t *next;
        for (kf_map_node_t *node = map->buckets[i]; node != NULL; node = next) {
            next = node->chain;
            node->chain = NULL;
            if (free_node != NULL)
                free_node(node);
        }
    }
    kf_map_free(map);
}

void kf_map_each(kf_map_t *map, void (*fn)(kf_map_node_t *node, void *ctx), void *ctx)
{
    map->iterating++;
    for (size_t i = 0; i < map->bucket_count; i++) {
        kf_map_node_t *next;
        for (kf_map_node_t *node = map->buckets[i]; node != NULL; node = next) {
            next = node->chain;
            fn(node, ctx);
        }
    }
    map->iterating--;
    if (map->iterating == 0 && map->bucket_count > MIN_BUCKETS) {
        size_t bucket_count = map->bucket_count;
        while (bucket_count > MIN_BUCKETS && map->count < bucket_count / 8)
            bucket_count /= 2;
        if (bucket_count != map->bucket_count)
            resize(map, bucket_count);
    }
}
