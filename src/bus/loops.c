/* loops.c: the bus between the event loops of one process (bus/bus.h, "the loops of one
 * process"). Each loop pushes what its hub publishes onto one queue per other loop and wakes that
 * loop; each loop drains its queues in its wake-up's callback and delivers through its own hub. No
 * lock on the way: the queues are lock-free and each has one producer (xq.h). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/xq.h"
#include "bus/internal.h"
#include "bus/order.h"

/* A lower message id not delivered by then was never published (order.h). Between loops of one
 * process the wait is a thread's wake-up, microseconds, but on a machine short of cores a loop's
 * thread may wait for one far longer than Redis's delivery between nodes: given up too soon, the
 * hole would let a later id out first and make the lower one late. A hole that is real (a loop
 * stored a message and never published it) costs this once. */
#define HOLE_MS 1000

typedef struct loops_bus loops_bus_t;

/* One event on its way to another loop: a copy of its own, and every topic it was published to
 * one after the other, each NUL-terminated. */
typedef struct crossing {
    kf_xq_node_t node; /* first: a node is a crossing */
    kf_event_t *event; /* the receiving loop's (one reference); NULL: news of a hole */
    uint64_t floor;    /* with no event: the id below a hole the sending loop gave up */
    bool prefix;       /* the topic is a prefix (kf_hub_publish_prefix): only one then */
    size_t topic_count;
    char topics[];
} crossing_t;

typedef struct member {
    kf_loops_t *group;
    uv_async_t *wake; /* the loop's: its queues have something */
    kf_xq_t *from;    /* from[j]: what loop j sends here (from[index] unused) */
    loops_bus_t *bus; /* NULL once freed (the loop's own field) */
} member_t;

struct kf_loops {
    size_t count;
    uint64_t newest; /* the store's newest message id at the start: every order starts there */
    member_t *members;
    atomic_uint_fast64_t eseq; /* the newest ephemeral event's number given (hub.h, eseq) */
};

struct loops_bus {
    kf_bus_t base;
    kf_loops_t *group;
    size_t index;
    kf_bus_notify_fn notify;
    void *notify_ctx;
    kf_bus_order_t *order; /* message events, this loop's and the others', in id order */
    /* What this loop published and has not sent yet: one event on every topic it was published
     * to one after the other (a message on its visitor's topic, then the agents'). They cross
     * together, so that another loop adds them to its order together: had the first topic
     * crossed alone, that loop could deliver a message of its own with the next id between the
     * two, and the agents would get the lower id late, after the higher. Sent at kf_hub_publish_end
     * (before the answer that says it is stored: hub.h), the loop's next turn, or when another
     * event comes. */
    kf_event_t *pending; /* a reference, or NULL */
    bool pending_prefix;
    size_t pending_count;
    kf_buf_t pending_topics; /* each NUL-terminated */
    uv_timer_t *flush;
};

kf_loops_t *kf_loops_new(size_t count, uint64_t newest)
{
    kf_loops_t *group = kf_xcalloc(1, sizeof *group);
    group->count = count;
    group->newest = newest;
    atomic_init(&group->eseq, 0); /* started by the first event (next_eseq) */
    group->members = kf_xcalloc(count, sizeof *group->members);
    for (size_t i = 0; i < count; i++) {
        group->members[i].group = group;
        group->members[i].from = kf_xcalloc(count, sizeof *group->members[i].from);
        for (size_t j = 0; j < count; j++)
            kf_xq_init(&group->members[i].from[j]);
    }
    return group;
}

static void crossing_free(crossing_t *c)
{
    kf_event_unref(c->event);
    free(c);
}

static void handle_free_cb(uv_handle_t *handle)
{
    free(handle);
}

void kf_loops_close(kf_loops_t *group, size_t index)
{
    member_t *m = &group->members[index];
    if (m->wake != NULL)
        uv_close((uv_handle_t *)m->wake, handle_free_cb);
    m->wake = NULL;
}

void kf_loops_free(kf_loops_t *group)
{
    if (group == NULL)
        return;
    for (size_t i = 0; i < group->count; i++) {
        for (size_t j = 0; j < group->count; j++) {
            kf_xq_node_t *node;
            while ((node = kf_xq_pop(&group->members[i].from[j])) != NULL)
                crossing_free((crossing_t *)node);
        }
        free(group->members[i].from);
    }
    free(group->members);
    free(group);
}

static void order_deliver_cb(void *ctx, const char *topic, bool prefix, kf_event_t *event)
{
    loops_bus_t *bus = ctx;
    if (prefix)
        kf_hub_deliver_prefix(bus->base.hub, topic, event);
    else
        kf_hub_deliver(bus->base.hub, topic, event);
}

/* One event from another loop, for this loop's subscribers on each of its topics. */
static void receive(loops_bus_t *bus, crossing_t *c)
{
    kf_event_t *event = c->event;
    if (event == NULL) { /* another loop gave up a hole: its clients may come here */
        if (bus->notify != NULL)
            bus->notify(bus->notify_ctx, KF_BUS_HOLE, "another loop", c->floor);
        return;
    }
    bus->base.stats.received++;
    const char *topic = c->topics;
    for (size_t i = 0; i < c->topic_count; i++, topic += strlen(topic) + 1) {
        if (event->id != 0 && bus->notify != NULL)
            bus->notify(bus->notify_ctx, KF_BUS_MESSAGE, topic, event->id);
        if (event->id == 0 && !c->prefix && bus->notify != NULL)
            bus->notify(bus->notify_ctx, KF_BUS_EPHEMERAL, topic, 0);
        kf_bus_order_add(bus->order, topic, c->prefix, event);
    }
}

/* Takes in what the other loops have queued for this one. */
static void take_queued(member_t *m)
{
    kf_loops_t *group = m->group;
    for (size_t j = 0; j < group->count; j++) {
        kf_xq_node_t *node;
        while ((node = kf_xq_pop(&m->from[j])) != NULL) {
            crossing_t *c = (crossing_t *)node;
            if (m->bus != NULL) /* else the loop is stopping: nobody here to hear it */
                receive(m->bus, c);
            crossing_free(c);
        }
    }
}

static void wake_cb(uv_async_t *handle)
{
    take_queued(handle->data);
}

/* The order's pull, before it gives up a hole. */
static void pull_cb(void *ctx)
{
    loops_bus_t *bus = ctx;
    take_queued(&bus->group->members[bus->index]);
}

/* The order gave up a hole: every loop's clients replay from below it for a while, since a poll
 * client that takes an id above it here may come back to any loop (where the hole may not have
 * been given up yet: each loop waits on its own). */
static void gave_up_cb(void *ctx, uint64_t floor)
{
    loops_bus_t *bus = ctx;
    kf_loops_t *group = bus->group;
    for (size_t j = 0; j < group->count; j++) {
        if (j == bus->index)
            continue;
        crossing_t *c = kf_xcalloc(1, sizeof *c);
        c->floor = floor;
        kf_xq_push(&group->members[j].from[bus->index], &c->node);
        uv_async_send(group->members[j].wake);
    }
    if (bus->notify != NULL)
        bus->notify(bus->notify_ctx, KF_BUS_HOLE, "", floor);
}

/* Sends what this loop published last to every other loop: a copy of the event each, with its
 * topics. */
static void flush_pending(loops_bus_t *bus)
{
    kf_event_t *event = bus->pending;
    if (event == NULL)
        return;
    kf_loops_t *group = bus->group;
    bus->pending = NULL;
    uv_timer_stop(bus->flush);
    for (size_t j = 0; j < group->count; j++) {
        if (j == bus->index)
            continue;
        crossing_t *c = kf_xmalloc(sizeof *c + bus->pending_topics.len);
        c->event = kf_event_new(event->id, event->json, event->len);
        c->event->born_ms = event->born_ms;
        c->event->eseq = event->eseq;
        c->prefix = bus->pending_prefix;
        c->topic_count = bus->pending_count;
        memcpy(c->topics, bus->pending_topics.data, bus->pending_topics.len);
        kf_xq_push(&group->members[j].from[bus->index], &c->node);
        /* After the push: a wake-up that finds the push half done comes again for it. */
        uv_async_send(group->members[j].wake);
        bus->base.stats.sent++;
    }
    bus->pending_topics.len = 0;
    bus->pending_count = 0;
    kf_event_unref(event);
}

static void flush_cb(uv_timer_t *timer)
{
    flush_pending(timer->data);
}

/* The next ephemeral event's number. Started at the first from the wall clock in microseconds,
 * as each loop's windows start theirs (push/window.c) when the loop is made, before any event:
 * above every number a loop's window handed out as its own, and above those of a server that
 * ran before. */
static uint64_t next_eseq(kf_loops_t *group)
{
    uint_fast64_t none = 0;
    atomic_compare_exchange_strong(&group->eseq, &none, (uint_fast64_t)kf_clock_wall_ms() * 1000);
    return atomic_fetch_add(&group->eseq, 1) + 1;
}

static bool relay_cb(void *ctx, const char *topic, bool prefix, kf_event_t *event)
{
    loops_bus_t *bus = ctx;
    kf_loops_t *group = bus->group;
    if (event->id == 0 && event->eseq == 0)
        event->eseq = next_eseq(group);
    /* Before this loop's own subscribers get it: its window, made now if there was none, too. */
    if (event->id == 0 && !prefix && bus->notify != NULL)
        bus->notify(bus->notify_ctx, KF_BUS_EPHEMERAL, topic, 0);
    if (bus->pending != event || prefix || bus->pending_prefix) {
        flush_pending(bus);
        bus->pending = kf_event_ref(event);
        bus->pending_prefix = prefix;
        uv_timer_start(bus->flush, flush_cb, 0, 0);
    }
    kf_buf_append(&bus->pending_topics, topic, strlen(topic) + 1);
    bus->pending_count++;
    if (event->id == 0)
        return false;
    kf_bus_order_add(bus->order, topic, prefix, event);
    return true;
}

/* The event published last has no more topics (kf_hub_publish_end): it leaves now. */
static void relay_end_cb(void *ctx)
{
    flush_pending(ctx);
}

static bool loops_ready(const kf_bus_t *bus)
{
    (void)bus;
    return true;
}

static void loops_free(kf_bus_t *base)
{
    loops_bus_t *bus = (loops_bus_t *)base;
    /* The other loops' wake-ups close only once every loop's bus is freed (main.c): still
     * there to hear it. */
    flush_pending(bus);
    uv_close((uv_handle_t *)bus->flush, handle_free_cb);
    kf_buf_free(&bus->pending_topics);
    bus->group->members[bus->index].bus = NULL;
    kf_bus_order_free(bus->order);
    free(bus);
}

/* The same kind as one loop's: what a process has in it is its own business, not the bus's. */
static const kf_bus_ops_t loops_ops = {"in-process", loops_ready, loops_free, NULL, NULL, NULL};

kf_bus_t *kf_bus_new_loops(kf_loops_t *group, size_t index, uv_loop_t *loop, kf_hub_t *hub,
                           kf_bus_notify_fn notify, void *notify_ctx)
{
    loops_bus_t *bus = kf_xcalloc(1, sizeof *bus);
    bus->base.ops = &loops_ops;
    bus->base.hub = hub;
    bus->group = group;
    bus->index = index;
    bus->notify = notify;
    bus->notify_ctx = notify_ctx;
    bus->order = kf_bus_order_new(loop, HOLE_MS, order_deliver_cb, bus, &bus->base.stats.holes);
    kf_bus_order_set_hooks(bus->order, pull_cb, gave_up_cb, bus);
    kf_bus_order_start(bus->order, group->newest);
    kf_buf_init(&bus->pending_topics);
    bus->flush = kf_xmalloc(sizeof *bus->flush);
    uv_timer_init(loop, bus->flush);
    bus->flush->data = bus;
    member_t *m = &group->members[index];
    m->bus = bus;
    m->wake = kf_xmalloc(sizeof *m->wake);
    uv_async_init(loop, m->wake, wake_cb);
    m->wake->data = m;
    /* Unreferenced: what is on its way is answered to requests, which keep the loop alive. */
    uv_unref((uv_handle_t *)m->wake);
    kf_hub_set_relay(hub, relay_cb, relay_end_cb, bus);
    return &bus->base;
}
