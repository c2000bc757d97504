/* order.c: message events in id order across nodes (order.h). What waits is a list sorted by id,
 * short in practice: the events of the few milliseconds a lower id takes to come through Redis. */
#include "bus/order.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/list.h"

typedef struct held {
    kf_list_t link;
    kf_event_t *event; /* a reference */
    bool prefix;
    char topic[]; /* copied */
} held_t;

struct kf_bus_order {
    uv_timer_t *timer; /* gives up the hole before the first held event */
    /* Lets out what no lower id holds back any more, at the next turn of the loop rather than at
     * once: one message goes to two topics (its visitor's and the agents') in two adds, one
     * after the other, and a higher id let out between them would make the second one late. */
    uv_timer_t *soon;
    uint64_t hole_ms;
    kf_bus_order_deliver_fn deliver;
    void *ctx;
    kf_list_t held; /* by id, then arrival */
    size_t held_count;
    bool started;            /* newest is known */
    bool waiting;            /* kf_bus_order_wait's: every message event is held until the start */
    uint64_t newest;         /* every id up to it has been delivered (or its hole given up) */
    uint64_t delivered;      /* the highest id delivered: one below it that goes out is late */
    bool draining;           /* inside drain: a nested add only inserts */
    void (*pull)(void *ctx); /* kf_bus_order_set_hooks', or NULL */
    void (*gave_up)(void *ctx, uint64_t floor);
    void *hooks_ctx;
    uint64_t holes;      /* given up since the start */
    uint64_t *holes_out; /* the owner's copy, or NULL */
};

/* Hands event to the owner, marked late when a higher id went out here before it (a hole given
 * up): a client here may have taken that one, and its cursor passed this one without it. Marked
 * as it goes out, not as it comes in: one that waited here for a lower id is not late, though a
 * higher one came in first, and a client whose cursor passed it already has it (from the store's
 * replay, which saw the commit before the event came) must not be sent it again. */
static void order_deliver(kf_bus_order_t *order, const char *topic, bool prefix, kf_event_t *event)
{
    if (event->id != 0) {
        event->late = event->id < order->delivered;
        if (event->id > order->delivered)
            order->delivered = event->id;
    }
    order->deliver(order->ctx, topic, prefix, event);
}

static void deliver_held(kf_bus_order_t *order, held_t *h)
{
    kf_list_remove(&h->link);
    order->held_count--;
    order_deliver(order, h->topic, h->prefix, h->event);
    kf_event_unref(h->event);
    free(h);
}

static held_t *first_held(kf_bus_order_t *order)
{
    kf_list_t *first = kf_list_first(&order->held);
    return first != NULL ? KF_CONTAINER_OF(first, held_t, link) : NULL;
}

static void hole_cb(uv_timer_t *timer);
static void soon_cb(uv_timer_t *timer);

/* Delivers what no lower id holds back any more, then waits for the next hole (or stops
 * waiting). */
static void drain(kf_bus_order_t *order)
{
    if (order->draining)
        return;
    order->draining = true;
    held_t *h;
    while ((h = first_held(order)) != NULL && h->event->id <= order->newest + 1) {
        if (h->event->id > order->newest)
            order->newest = h->event->id;
        deliver_held(order, h);
    }
    order->draining = false;
    if (order->held_count == 0)
        uv_timer_stop(order->timer);
    else if (!uv_is_active((uv_handle_t *)order->timer))
        uv_timer_start(order->timer, hole_cb, order->hole_ms, 0);
}

static void soon_cb(uv_timer_t *timer)
{
    drain(timer->data);
}

/* Drains at the next turn of the loop, when something held may go now. */
static void drain_soon(kf_bus_order_t *order)
{
    held_t *h = first_held(order);
    if (h != NULL && h->event->id <= order->newest + 1 && !uv_is_active((uv_handle_t *)order->soon))
        uv_timer_start(order->soon, soon_cb, 0, 0);
}

static void hole_cb(uv_timer_t *timer)
{
    kf_bus_order_t *order = timer->data;
    if (order->pull != NULL)
        order->pull(order->hooks_ctx);
    held_t *h = first_held(order);
    if (h == NULL)
        return;
    if (h->event->id <= order->newest + 1) { /* what was missing had come */
        drain(order);
        return;
    }
    order->holes++;
    if (order->holes_out != NULL)
        *order->holes_out = order->holes;
    if (order->gave_up != NULL)
        order->gave_up(order->hooks_ctx, order->newest);
    order->newest = h->event->id - 1; /* nobody published what was missing: on without it */
    drain(order);
}

kf_bus_order_t *kf_bus_order_new(uv_loop_t *loop, uint64_t hole_ms, kf_bus_order_deliver_fn deliver,
                                 void *ctx, uint64_t *holes)
{
    kf_bus_order_t *order = kf_xcalloc(1, sizeof *order);
    order->holes_out = holes;
    order->hole_ms = hole_ms;
    order->deliver = deliver;
    order->ctx = ctx;
    kf_list_init(&order->held);
    order->timer = kf_xcalloc(1, sizeof *order->timer);
    uv_timer_init(loop, order->timer);
    order->timer->data = order;
    order->soon = kf_xcalloc(1, sizeof *order->soon);
    uv_timer_init(loop, order->soon);
    order->soon->data = order;
    return order;
}

void kf_bus_order_set_hooks(kf_bus_order_t *order, void (*pull)(void *ctx),
                            void (*gave_up)(void *ctx, uint64_t floor), void *ctx)
{
    order->pull = pull;
    order->gave_up = gave_up;
    order->hooks_ctx = ctx;
}

void kf_bus_order_wait(kf_bus_order_t *order)
{
    kf_bus_order_flush(order);
    order->waiting = true;
}

void kf_bus_order_start(kf_bus_order_t *order, uint64_t newest)
{
    order->waiting = false;
    order->started = true;
    order->newest = newest;
    drain(order); /* what waited for the start: at or below newest at once, then in turn */
}

void kf_bus_order_add(kf_bus_order_t *order, const char *topic, bool prefix, kf_event_t *event)
{
    uint64_t id = event->id;
    if (id == 0 || (order->started && id <= order->newest)) {
        order_deliver(order, topic, prefix, event);
        return;
    }
    if (!order->started && !order->waiting) {
        order->started = true;
        order->newest = id - 1;
    }
    if (order->started && id == order->newest + 1 && !order->draining) {
        /* Its turn: out at once; what it held back goes at the next turn of the loop. */
        order->newest = id;
        order_deliver(order, topic, prefix, event);
        drain_soon(order);
        return;
    }
    size_t len = strlen(topic);
    held_t *h = kf_xmalloc(sizeof *h + len + 1);
    memcpy(h->topic, topic, len + 1);
    h->prefix = prefix;
    h->event = kf_event_ref(event);
    /* After the last one with an id at or below its own: same ids keep their order. */
    kf_list_t *at = order->held.prev;
    while (at != &order->held && KF_CONTAINER_OF(at, held_t, link)->event->id > id)
        at = at->prev;
    kf_list_push_front(at, &h->link); /* right after at (at is a node or the list's head) */
    order->held_count++;
    if (order->started && !uv_is_active((uv_handle_t *)order->timer))
        uv_timer_start(order->timer, hole_cb, order->hole_ms, 0);
}

void kf_bus_order_flush(kf_bus_order_t *order)
{
    held_t *h;
    while ((h = first_held(order)) != NULL)
        deliver_held(order, h);
    order->started = order->waiting = false;
    uv_timer_stop(order->timer);
    uv_timer_stop(order->soon);
}

bool kf_bus_order_newest(const kf_bus_order_t *order, uint64_t *newest)
{
    if (order->started)
        *newest = order->newest;
    return order->started;
}

bool kf_bus_order_waiting(const kf_bus_order_t *order)
{
    return order->waiting;
}

size_t kf_bus_order_held(const kf_bus_order_t *order)
{
    return order->held_count;
}

static void timer_closed_cb(uv_handle_t *handle)
{
    free(handle);
}

void kf_bus_order_free(kf_bus_order_t *order)
{
    if (order == NULL)
        return;
    held_t *h;
    while ((h = first_held(order)) != NULL) {
        kf_list_remove(&h->link);
        kf_event_unref(h->event);
        free(h);
    }
    uv_timer_stop(order->timer);
    uv_close((uv_handle_t *)order->timer, timer_closed_cb);
    uv_timer_stop(order->soon);
    uv_close((uv_handle_t *)order->soon, timer_closed_cb);
    free(order);
}
