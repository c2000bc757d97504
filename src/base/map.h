/* map.h: the one hash table: chained, intrusive (a node is embedded in its owner's struct, so a
 * node never moves and adding one allocates nothing but, now and then, a bigger bucket array),
 * hashed with a random SipHash key per table, so that keys a client chooses cannot flood one
 * bucket. The table neither copies nor frees keys or nodes: the owner keeps the key in its
 * struct and compares it in an eq callback.
 *
 *   typedef struct topic { kf_map_node_t node; char name[]; } topic_t;
 *   uint64_t h = kf_map_hash(&map, name, len);
 *   kf_map_node_t *n = kf_map_find(&map, h, name, len, topic_eq);
 *   if (n == NULL) kf_map_insert(&map, &new_topic->node, h);
 *   topic_t *t = KF_CONTAINER_OF(n, topic_t, node);
 *
 * Load factor at most 1 (it doubles) and at least 1/8 (it halves, not below 16 buckets), so
 * lookups are O(1) expected and a burst of keys does not pin its memory. Single-threaded. */
#ifndef KF_BASE_MAP_H
#define KF_BASE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/hash.h"

/* The owner's struct that embeds member, from a pointer to that member. */
#define KF_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

typedef struct kf_map_node {
    struct kf_map_node *chain; /* the table's: next node in the same bucket */
    uint64_t hash;             /* the table's: the key's hash, so that growing never rehashes */
} kf_map_node_t;

typedef struct kf_map {
    kf_map_node_t **buckets; /* bucket_count chains; NULL before the first insert */
    size_t bucket_count;     /* a power of two, or 0 */
    size_t count;            /* nodes in the table */
    unsigned iterating;      /* kf_map_each calls under way: no shrinking meanwhile */
    kf_hash_key_t key;       /* random, per table */
} kf_map_t;

/* True when node's key is the len bytes at key. */
typedef bool (*kf_map_eq_fn)(const kf_map_node_t *node, const void *key, size_t len);

/* An empty table with a fresh random key; allocates nothing yet. */
void kf_map_init(kf_map_t *map);
/* Frees the bucket array (the nodes are their owners'); the table is empty and usable after. */
void kf_map_free(kf_map_t *map);
/* The table's hash of a key; pass it to find and insert. */
uint64_t kf_map_hash(const kf_map_t *map, const void *key, size_t len);
/* The node whose key is key (eq decides), or NULL. */
kf_map_node_t *kf_map_find(const kf_map_t *map, uint64_t hash, const void *key, size_t len,
                           kf_map_eq_fn eq);
/* Adds node under hash. The caller has made sure the key is not there yet. */
void kf_map_insert(kf_map_t *map, kf_map_node_t *node, uint64_t hash);
/* Takes node (which is in the table) out. O(chain length). */
void kf_map_remove(kf_map_t *map, kf_map_node_t *node);
static inline size_t kf_map_count(const kf_map_t *map)
{
    return map->count;
}
/* Takes every node out, calling free_node (may be NULL) on each after it is out, then frees the
 * bucket array: the table is empty, and usable after. */
void kf_map_clear(kf_map_t *map, void (*free_node)(kf_map_node_t *node));
/* Calls fn for every node, in no set order; fn may remove the node it is given (and only that
 * one), not insert. */
void kf_map_each(kf_map_t *map, void (*fn)(kf_map_node_t *node, void *ctx), void *ctx);

#endif
