/* hub.c: reference-counted events and the topic table that fans them out to subscribers. */
#include "push/hub.h"

#include "base/buf.h"
#include "base/map.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A publish walking a topic's subscribers. Unsubscribing moves next past the one that leaves,
 * so that any subscriber may leave during any callback. */
typedef struct walk {
    kf_list_t *next;    /* the next subscriber to look at, or the list head at the end */
    struct walk *outer; /* a publish on the same topic that this one runs inside, or NULL */
} walk_t;

/* A topic exists while it has subscribers; it is freed with its last one (or, when that one
 * leaves during a publish on it, when the publish ends). Its memory never moves, so subscribers
 * point at it. */
struct kf_topic {
    kf_map_node_t node; /* in hub->topics */
    kf_list_t subs;     /* subscribers in subscription order */
    size_t count;       /* subscribers in the list */
    uint64_t joins;     /* subscriptions so far: a subscriber's stamp */
    walk_t *walks;      /* publishes under way on this topic, innermost first */
    size_t name_len;    /* bytes of name */
    char name[];        /* the topic, NUL-terminated */
};

struct kf_hub {
    kf_map_t topics;               /* name -> topic */
    kf_hub_relay_fn relay;         /* what carries published events to other nodes, or NULL */
    kf_hub_relay_end_fn relay_end; /* the end of a publish, or NULL */
    void *relay_ctx;               /* relay's and relay_end's */
};

kf_event_t *kf_event_new(uint64_t id, const char *json, size_t len)
{
    if (len > SIZE_MAX - sizeof(kf_event_t) - 1)
        abort();
    kf_event_t *event = kf_xmalloc(sizeof(kf_event_t) + len + 1);
    event->refs = 1;
    event->id = id;
    event->born_ms = 0;
    event->eseq = 0;
    event->late = false;
    event->len = len;
    for (int i = 0; i < KF_EVENT_ENCODINGS; i++) {
        event->encoded[i] = NULL;
        event->encoded_len[i] = 0;
    }
    if (json != NULL && len > 0)
        memcpy(event->json, json, len);
    event->json[len] = '\0';
    return event;
}

kf_event_t *kf_event_ref(kf_event_t *event)
{
    assert(event->refs > 0);
    event->refs++;
    return event;
}

void kf_event_unref(kf_event_t *event)
{
    if (event == NULL)
        return;
    assert(event->refs > 0);
    event->refs--;
    if (event->refs == 0) {
        for (int i = 0; i < KF_EVENT_ENCODINGS; i++)
            free(event->encoded[i]);
        free(event);
    }
}

void kf_sub_init(kf_sub_t *sub, kf_sub_cb cb, void *data)
{
    sub->cb = cb;
    sub->data = data;
    sub->topic = NULL;
    kf_list_init(&sub->link);
}

static bool topic_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    const struct kf_topic *topic = KF_CONTAINER_OF(node, struct kf_topic, node);
    return topic->name_len == len && memcmp(topic->name, key, len) == 0;
}

kf_hub_t *kf_hub_new(void)
{
    kf_hub_t *hub = kf_xcalloc(1, sizeof *hub);
    kf_map_init(&hub->topics);
    return hub;
}

/* Detaches every subscriber of a topic and frees it (kf_hub_free). */
static void drop_topic_cb(kf_map_node_t *node, void *ctx)
{
    kf_hub_t *hub = ctx;
    struct kf_topic *topic = KF_CONTAINER_OF(node, struct kf_topic, node);
    /* The contract says every subscriber has left; should one remain, detach it so that its
     * owner's later unsubscribe is a harmless no-op rather than a use after free. */
    KF_LIST_FOREACH(it, next, &topic->subs) {
        kf_sub_t *sub = KF_CONTAINER_OF(it, kf_sub_t, link);
        kf_list_remove(&sub->link);
        sub->topic = NULL;
    }
    kf_map_remove(&hub->topics, node);
    free(topic);
}

void kf_hub_free(kf_hub_t *hub)
{
    if (hub == NULL)
        return;
    kf_map_each(&hub->topics, drop_topic_cb, hub);
    kf_map_free(&hub->topics);
    free(hub);
}

static struct kf_topic *find_topic(const kf_hub_t *hub, const char *name, size_t len)
{
    kf_map_node_t *node =
        kf_map_find(&hub->topics, kf_map_hash(&hub->topics, name, len), name, len, topic_eq);
    return node != NULL ? KF_CONTAINER_OF(node, struct kf_topic, node) : NULL;
}

static struct kf_topic *find_or_add_topic(kf_hub_t *hub, const char *name)
{
    size_t len = strlen(name);
    struct kf_topic *topic = find_topic(hub, name, len);
    if (topic != NULL)
        return topic;
    topic = kf_xmalloc(sizeof *topic + len + 1);
    memcpy(topic->name, name, len + 1);
    topic->name_len = len;
    topic->count = 0;
    topic->joins = 0;
    topic->walks = NULL;
    kf_list_init(&topic->subs);
    kf_map_insert(&hub->topics, &topic->node, kf_map_hash(&hub->topics, name, len));
    return topic;
}

/* Takes an empty topic out of the table and frees it, unless a publish is walking it (that
 * publish does it when it ends). */
static void remove_topic(kf_hub_t *hub, struct kf_topic *topic)
{
    assert(topic->count == 0);
    if (topic->walks != NULL)
        return;
    kf_map_remove(&hub->topics, &topic->node);
    free(topic);
}

/* Takes sub out of its topic's list, leaving the topic in the table even when empty. */
static void unlink_sub(kf_sub_t *sub)
{
    for (walk_t *walk = sub->topic->walks; walk != NULL; walk = walk->outer) {
        if (walk->next == &sub->link)
            walk->next = sub->link.next;
    }
    kf_list_remove(&sub->link);
    sub->topic->count--;
    sub->topic = NULL;
}

void kf_hub_subscribe(kf_hub_t *hub, const char *topic_name, kf_sub_t *sub)
{
    assert(sub->cb != NULL);
    /* Find the new topic first, so that moving within one topic does not free and remake it. */
    struct kf_topic *topic = find_or_add_topic(hub, topic_name);
    struct kf_topic *old = sub->topic;
    if (old != NULL) {
        unlink_sub(sub);
        if (old != topic && old->count == 0)
            remove_topic(hub, old);
    }
    sub->topic = topic;
    sub->stamp = ++topic->joins;
    kf_list_push_back(&topic->subs, &sub->link);
    topic->count++;
}

void kf_hub_unsubscribe(kf_hub_t *hub, kf_sub_t *sub)
{
    struct kf_topic *topic = sub->topic;
    if (topic == NULL)
        return;
    unlink_sub(sub);
    if (topic->count == 0)
        remove_topic(hub, topic);
}

void kf_hub_set_relay(kf_hub_t *hub, kf_hub_relay_fn relay, kf_hub_relay_end_fn end, void *ctx)
{
    hub->relay = relay;
    hub->relay_end = relay != NULL ? end : NULL;
    hub->relay_ctx = ctx;
}

size_t kf_hub_publish(kf_hub_t *hub, const char *topic_name, kf_event_t *event)
{
    if (hub->relay != NULL && hub->relay(hub->relay_ctx, topic_name, false, event))
        return 0;
    return kf_hub_deliver(hub, topic_name, event);
}

void kf_hub_publish_end(kf_hub_t *hub)
{
    if (hub->relay_end != NULL)
        hub->relay_end(hub->relay_ctx);
}

void kf_hub_relay(kf_hub_t *hub, const char *topic_name, kf_event_t *event)
{
    if (hub->relay != NULL)
        (void)hub->relay(hub->relay_ctx, topic_name, false, event); /* news, not for here */
}

size_t kf_hub_deliver(kf_hub_t *hub, const char *topic_name, kf_event_t *event)
{
    struct kf_topic *topic = find_topic(hub, topic_name, strlen(topic_name));
    if (topic == NULL)
        return 0;
    size_t called = 0;
    /* Subscribers present now are called once each: those that join meanwhile (and one that
     * leaves and joins again, which moves it behind the last) have a later stamp and wait for
     * the next event, and one that leaves before its turn is passed over (unlink_sub moves the
     * walk on). */
    uint64_t present = topic->joins;
    walk_t walk = {kf_list_first(&topic->subs), topic->walks};
    if (walk.next == NULL)
        return 0;
    topic->walks = &walk;
    kf_event_ref(event);
    while (walk.next != &topic->subs) {
        kf_sub_t *sub = KF_CONTAINER_OF(walk.next, kf_sub_t, link);
        walk.next = walk.next->next;
        if (sub->stamp > present)
            continue;
        sub->cb(sub, event);
        called++;
    }
    topic->walks = walk.outer;
    kf_event_unref(event);
    if (topic->count == 0)
        remove_topic(hub, topic);
    return called;
}

size_t kf_hub_count(const kf_hub_t *hub, const char *topic_name)
{
    const struct kf_topic *topic = find_topic(hub, topic_name, strlen(topic_name));
    return topic != NULL ? topic->count : 0;
}

/* The names of the topics kf_hub_publish_prefix is to publish on. */
typedef struct prefix_walk {
    const char *prefix;
    size_t prefix_len;
    char **names;
    size_t count;
    size_t capacity;
} prefix_walk_t;

static void collect_topic_cb(kf_map_node_t *node, void *ctx)
{
    prefix_walk_t *walk = ctx;
    const struct kf_topic *topic = KF_CONTAINER_OF(node, struct kf_topic, node);
    if (topic->name_len < walk->prefix_len ||
        memcmp(topic->name, walk->prefix, walk->prefix_len) != 0)
        return;
    if (walk->count == walk->capacity) {
        walk->capacity = walk->capacity == 0 ? 16 : walk->capacity * 2;
        walk->names = kf_xrealloc(walk->names, walk->capacity * sizeof *walk->names);
    }
    walk->names[walk->count++] = kf_xstrdup(topic->name);
}

size_t kf_hub_publish_prefix(kf_hub_t *hub, const char *prefix, kf_event_t *event)
{
    if (hub->relay != NULL && hub->relay(hub->relay_ctx, prefix, true, event))
        return 0;
    return kf_hub_deliver_prefix(hub, prefix, event);
}

size_t kf_hub_deliver_prefix(kf_hub_t *hub, const char *prefix, kf_event_t *event)
{
    prefix_walk_t walk = {prefix, strlen(prefix), NULL, 0, 0};
    kf_map_each(&hub->topics, collect_topic_cb, &walk);
    size_t called = 0;
    for (size_t i = 0; i < walk.count; i++) {
        called += kf_hub_deliver(hub, walk.names[i], event);
        free(walk.names[i]);
    }
    free(walk.names);
    return called;
}
