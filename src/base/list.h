/* list.h: the one list: intrusive, doubly linked and circular around a head that is a node of
 * its own (as the Linux kernel's list_head), so that insertion and removal are O(1) with no
 * allocation and no special case for the ends. A node embedded in its owner's struct is reached
 * back with KF_CONTAINER_OF (base/map.h). A removed node points at itself, so removing it again,
 * or asking kf_list_linked, is safe. Single-threaded. */
#ifndef KF_BASE_LIST_H
#define KF_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/map.h"

typedef struct kf_list {
    struct kf_list *prev, *next;
} kf_list_t;

/* An empty list, or an unlinked node. */
static inline void kf_list_init(kf_list_t *node)
{
    node->prev = node->next = node;
}
static inline bool kf_list_empty(const kf_list_t *head)
{
    return head->next == head;
}
/* True when node is on a list (false for an initialised or removed node). */
static inline bool kf_list_linked(const kf_list_t *node)
{
    return node->next != node;
}

static inline void kf__list_between(kf_list_t *node, kf_list_t *prev, kf_list_t *next)
{
    node->prev = prev;
    node->next = next;
    prev->next = node;
    next->prev = node;
}

/* Adds node (not on any list) at the end / the front of head's list. */
static inline void kf_list_push_back(kf_list_t *head, kf_list_t *node)
{
    kf__list_between(node, head->prev, head);
}
static inline void kf_list_push_front(kf_list_t *head, kf_list_t *node)
{
    kf__list_between(node, head, head->next);
}

/* Takes node off its list (nothing happens when it is on none). */
static inline void kf_list_remove(kf_list_t *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    kf_list_init(node);
}

/* The first / last node, or NULL for an empty list. */
static inline kf_list_t *kf_list_first(const kf_list_t *head)
{
    return head->next == head ? NULL : head->next;
}
static inline kf_list_t *kf_list_last(const kf_list_t *head)
{
    return head->prev == head ? NULL : head->prev;
}

/* Moves the first node to the back and returns it, or NULL for an empty list. A walk that takes
 * its share of a list at a time this way (kf_list_sweep_slice) sees every node once a round, in
 * spite of removals and additions in between: a sweep spread over time. */
static inline kf_list_t *kf_list_rotate(kf_list_t *head)
{
    kf_list_t *node = kf_list_first(head);
    if (node != NULL) {
        kf_list_remove(node);
        kf_list_push_back(head, node);
    }
    return node;
}

/* A sweep that goes round a list once every round of time, a slice at a time: the round began at
 * start_ms with count nodes, of which taken have been looked at. */
typedef struct kf_list_sweep {
    uint64_t start_ms;
    size_t count, taken;
} kf_list_sweep_t;

/* How many nodes to take from the front (kf_list_rotate) at now_ms, for a list of count nodes that
 * is gone round once every round_ms: what the round's time so far is due, of the nodes the round
 * began with, less what was taken; at a round's end, what it left, and a new round begins. The
 * share is of the count at the round's start, so that nodes leaving as they are looked at (a
 * sweep closes some) do not shrink the rest of the round; a tick that comes late (a busy loop's
 * timer) takes more. So a node is looked at within a round and a tick of coming, and of its last
 * look. */
static inline size_t kf_list_sweep_slice(kf_list_sweep_t *sweep, size_t count, uint64_t now_ms,
                                         uint64_t round_ms)
{
    size_t slice = 0;
    if (now_ms - sweep->start_ms >= round_ms) {
        slice = sweep->count - sweep->taken;
        sweep->start_ms = now_ms;
        sweep->count = count;
        sweep->taken = 0;
    }
    uint64_t elapsed = now_ms - sweep->start_ms;
    size_t due = (size_t)(((uint64_t)sweep->count * elapsed + round_ms - 1) / round_ms);
    slice += due - sweep->taken;
    sweep->taken = due;
    /* A list that shrank since the round began: each node once, not round again. */
    return slice < count ? slice : count;
}

/* Every node of head's list in order, as it; the body may remove it (next is read first). */
#define KF_LIST_FOREACH(it, next, head)                                                            \
    for (kf_list_t *it = (head)->next, *next = it->next; it != (head); it = next, next = it->next)

#endif
