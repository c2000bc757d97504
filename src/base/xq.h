/* xq.h: a cross-thread queue of intrusive nodes, lock-free (D. Vyukov's non-intrusive-stub MPSC
 * queue): any thread pushes, one thread pops, nobody waits for a lock or allocates. kefu keeps
 * one per pair of loops (bus/loops.c), so each has one producer and one consumer and the
 * exchange in push is never contended. FIFO per producer. The consumer learns of a push some
 * other way (uv_async_send after the push): a pop that runs while a push is half done returns
 * NULL, and the push's wake-up brings the consumer back for it. */
#ifndef KF_BASE_XQ_H
#define KF_BASE_XQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Embedded in what is queued (no allocation per push). */
typedef struct kf_xq_node {
    _Atomic(struct kf_xq_node *) next;
} kf_xq_node_t;

typedef struct kf_xq {
    _Atomic(kf_xq_node_t *) tail; /* the last pushed: producers exchange it */
    kf_xq_node_t *head;           /* the consumer's: the next to pop (or the stub) */
    kf_xq_node_t stub;            /* stands in when the queue is empty */
} kf_xq_t;

/* An empty queue. Call before any thread uses it. */
void kf_xq_init(kf_xq_t *q);
/* Appends node (not on any queue). Any thread. */
void kf_xq_push(kf_xq_t *q, kf_xq_node_t *node);
/* The oldest node, or NULL when the queue is empty or its oldest push is half done (that push's
 * producer wakes the consumer after it). The consumer's thread only. */
kf_xq_node_t *kf_xq_pop(kf_xq_t *q);

#endif
