/* hub.c: reference-counted events and the topic table that fans them out to subscribers. */
#include "push/hub.h"

#include "base/buf.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A topic exists while it has subscribers; it is freed with its last one. */
struct kf_topic {
    struct kf_topic *chain; /* next topic in the same hash bucket */
    uint64_t hash;          /* FNV-1a of name, kept so that growing never rehashes strings */
    size_t count;           /* subscribers in the list */
    kf_sub_t *head, *tail;  /* subscribers in subscription order */
    char name[];            /* the topic, NUL-terminated */
};

/* A chained hash table: a topic's memory never moves, so subscribers can point at it. */
struct kf_hub {
    struct kf_topic **buckets; /* bucket_count chains */
    size_t bucket_count;       /* a power of two */
    size_t topic_count;        /* topics in the table */
};

/* Smallest table; also the size below which it never shrinks. */
#define MIN_BUCKETS 16

kf_event_t *kf_event_new(uint64_t id, const char *json, size_t len)
{
    if (len > SIZE_MAX - sizeof(kf_event_t) - 1)
        abort();
    kf_event_t *event = kf_xmalloc(sizeof(kf_event_t) + len + 1);
    event->refs = 1;
    event->id = id;
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
    sub->prev = NULL;
    sub->next = NULL;
}

/* FNV-1a, 64-bit: short topic names, no adversary able to choose many colliding ones cheaply
 * (topic names are made by the server from ids). */
static uint64_t hash_name(const char *name)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        h ^= *p;
        h *= 0x100000001b3u;
    }
    return h;
}

kf_hub_t *kf_hub_new(void)
{
    kf_hub_t *hub = kf_xmalloc(sizeof *hub);
    hub->bucket_count = MIN_BUCKETS;
    hub->buckets = kf_xcalloc(hub->bucket_count, sizeof *hub->buckets);
    hub->topic_count = 0;
    return hub;
}

void kf_hub_free(kf_hub_t *hub)
{
    if (hub == NULL)
        return;
    /* The contract says every subscriber has left; should one remain, detach it so that its
     * owner's later unsubscribe is a harmless no-op rather than a use after free. */
    for (size_t i = 0; i < hub->bucket_count; i++) {
        struct kf_topic *topic = hub->buckets[i];
        while (topic != NULL) {
            struct kf_topic *chain = topic->chain;
            kf_sub_t *sub = topic->head;
            while (sub != NULL) {
                kf_sub_t *next = sub->next;
                sub->topic = NULL;
                sub->prev = NULL;
                sub->next = NULL;
                sub = next;
            }
            free(topic);
            topic = chain;
        }
    }
    free(hub->buckets);
    free(hub);
}

/* Moves every topic into a table of bucket_count buckets (a power of two). */
static void resize(kf_hub_t *hub, size_t bucket_count)
{
    struct kf_topic **buckets = kf_xcalloc(bucket_count, sizeof *buckets);
    for (size_t i = 0; i < hub->bucket_count; i++) {
        struct kf_topic *topic = hub->buckets[i];
        while (topic != NULL) {
            struct kf_topic *chain = topic->chain;
            size_t b = (size_t)(topic->hash & (bucket_count - 1));
            topic->chain = buckets[b];
            buckets[b] = topic;
            topic = chain;
        }
    }
    free(hub->buckets);
    hub->buckets = buckets;
    hub->bucket_count = bucket_count;
}

static struct kf_topic *find_topic(const kf_hub_t *hub, const char *name, uint64_t hash)
{
    struct kf_topic *topic = hub->buckets[hash & (hub->bucket_count - 1)];
    while (topic != NULL) {
        if (topic->hash == hash && strcmp(topic->name, name) == 0)
            return topic;
        topic = topic->chain;
    }
    return NULL;
}

static struct kf_topic *find_or_add_topic(kf_hub_t *hub, const char *name)
{
    uint64_t hash = hash_name(name);
    struct kf_topic *topic = find_topic(hub, name, hash);
    if (topic != NULL)
        return topic;
    /* Load factor at most 1: chains stay about one topic long. */
    if (hub->topic_count + 1 > hub->bucket_count)
        resize(hub, hub->bucket_count * 2);
    size_t name_len = strlen(name);
    topic = kf_xmalloc(sizeof *topic + name_len + 1);
    memcpy(topic->name, name, name_len + 1);
    topic->hash = hash;
    topic->count = 0;
    topic->head = NULL;
    topic->tail = NULL;
    size_t b = (size_t)(hash & (hub->bucket_count - 1));
    topic->chain = hub->buckets[b];
    hub->buckets[b] = topic;
    hub->topic_count++;
    return topic;
}

/* Unlinks an empty topic from its chain and frees it; shrinks a mostly empty table so that a
 * burst of topics does not pin its memory forever. */
static void remove_topic(kf_hub_t *hub, struct kf_topic *topic)
{
    assert(topic->count == 0);
    struct kf_topic **link = &hub->buckets[topic->hash & (hub->bucket_count - 1)];
    while (*link != topic)
        link = &(*link)->chain;
    *link = topic->chain;
    free(topic);
    hub->topic_count--;
    if (hub->bucket_count > MIN_BUCKETS && hub->topic_count < hub->bucket_count / 8)
        resize(hub, hub->bucket_count / 2);
}

/* Takes sub out of its topic's list, leaving the topic in the table even when empty. */
static void unlink_sub(kf_sub_t *sub)
{
    struct kf_topic *topic = sub->topic;
    if (sub->prev != NULL)
        sub->prev->next = sub->next;
    else
        topic->head = sub->next;
    if (sub->next != NULL)
        sub->next->prev = sub->prev;
    else
        topic->tail = sub->prev;
    topic->count--;
    sub->topic = NULL;
    sub->prev = NULL;
    sub->next = NULL;
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
    sub->prev = topic->tail;
    sub->next = NULL;
    if (topic->tail != NULL)
        topic->tail->next = sub;
    else
        topic->head = sub;
    topic->tail = sub;
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

size_t kf_hub_publish(kf_hub_t *hub, const char *topic_name, kf_event_t *event)
{
    struct kf_topic *topic = find_topic(hub, topic_name, hash_name(topic_name));
    if (topic == NULL)
        return 0;
    size_t called = 0;
    /* Subscribers present now are called once each: a callback may unsubscribe itself (which
     * can free the topic, so the topic is not touched again) or resubscribe itself (which moves
     * it behind last), and subscribers added meanwhile wait for the next event. */
    kf_sub_t *sub = topic->head;
    kf_sub_t *last = topic->tail;
    kf_event_ref(event);
    while (sub != NULL) {
        kf_sub_t *next = sub->next;
        bool was_last = sub == last;
        sub->cb(sub, event);
        called++;
        if (was_last)
            break;
        sub = next;
    }
    kf_event_unref(event);
    return called;
}

size_t kf_hub_count(const kf_hub_t *hub, const char *topic_name)
{
    const struct kf_topic *topic = find_topic(hub, topic_name, hash_name(topic_name));
    return topic != NULL ? topic->count : 0;
}
