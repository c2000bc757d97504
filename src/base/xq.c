/* xq.c: the cross-thread queue (xq.h). Acquire/release pairs: a push's release store of the link
 * publishes the node's contents to the consumer's acquire load of it. */
#include "base/xq.h"

void kf_xq_init(kf_xq_t *q)
{
    atomic_init(&q->stub.next, NULL);
    atomic_init(&q->tail, &q->stub);
    q->head = &q->stub;
}

void kf_xq_push(kf_xq_t *q, kf_xq_node_t *node)
{
    atomic_store_explicit(&node->next, NULL, memory_order_relaxed);
    kf_xq_node_t *prev = atomic_exchange_explicit(&q->tail, node, memory_order_acq_rel);
    /* Between the exchange and this store the queue is cut in two: pop sees the end early. */
    atomic_store_explicit(&prev->next, node, memory_order_release);
}

kf_xq_node_t *kf_xq_pop(kf_xq_t *q)
{
    kf_xq_node_t *head = q->head;
    kf_xq_node_t *next = atomic_load_explicit(&head->next, memory_order_acquire);
    if (head == &q->stub) {
        if (next == NULL)
            return NULL;
        q->head = next;
        head = next;
        next = atomic_load_explicit(&head->next, memory_order_acquire);
    }
    if (next != NULL) {
        q->head = next;
        return head;
    }
    /* head is the last node linked: it may go only once the stub is behind it, so that the
     * queue is never without a node for producers to link to. */
    if (head != atomic_load_explicit(&q->tail, memory_order_acquire))
        return NULL; /* a push is half done */
    kf_xq_push(q, &q->stub);
    next = atomic_load_explicit(&head->next, memory_order_acquire);
    if (next != NULL) {
        q->head = next;
        return head;
    }
    return NULL;
}
