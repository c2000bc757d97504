/* list.h: the one list: intrusive, doubly linked and circular around a head that is a node of
 * its own (as the Linux kernel's list_head), so that insertion and removal are O(1) with no
 * allocation and no special case for the ends. A node embedded in its owner's struct is reached
 * back with KF_CONTAINER_OF (base/map.h). A removed node points at itself, so removing it again,
 * or asking kf_list_linked, is safe. Single-threaded. */
#ifndef KF_BASE_LIST_H
#define KF_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

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

/* Every node of head's list in order, as it; the body may remove it (next is read first). */
#define KF_LIST_FOREACH(it, next, head)                                                            \
    for (kf_list_t *it = (head)->next, *next = it->next; it != (head); it = next, next = it->next)

#endif
