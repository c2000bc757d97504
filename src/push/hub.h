/* hub.h: topics and subscribers. A publisher hands the hub an event (bytes already encoded once,
 * reference counted) and the hub calls every subscriber of that topic, synchronously, in
 * subscription order. The hub knows nothing of chat, HTTP or transports. Single-threaded: all
 * calls from the loop thread. */
#ifndef KF_HUB_H
#define KF_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/list.h"

/* Slots for encodings of an event that its subscribers share (a transport's framing, built once
 * by the first subscriber that needs it), one per push transport with room to spare (push.c
 * checks that there are enough); the hub only frees them with the event. */
#define KF_EVENT_ENCODINGS 8

/* One event, shared by every subscriber that receives it. */
typedef struct kf_event {
    int refs;    /* reference count; the event is freed when it drops to 0 */
    uint64_t id; /* resume cursor (a message id), or 0 for an ephemeral event (typing, read) */
    char *encoded[KF_EVENT_ENCODINGS]; /* malloc'd, or NULL until first needed */
    size_t encoded_len[KF_EVENT_ENCODINGS];
    /* A message that went out here after a newer one had (its hole given up: bus/order.h): it
     * goes even to clients whose cursor is past it (bus/bus.h), who drop it if they have it */
    bool late;
    /* An ephemeral event's number across the loops of one process (kefu --loops), given once
     * where it is published, so that every loop's window (push/window.c) numbers it alike and a
     * poll client's eseq means the same on each; 0: none (one loop numbers its own). */
    uint64_t eseq;
    int64_t born_ms; /* wall-clock ms its news began (a new message's created_at), for the delivery
                      * latency (base/metrics.h); 0 for one not measured (replayed, ephemeral) */
    size_t len;      /* bytes of json */
    char json[];     /* the event as a JSON object, e.g. {"type":"message","message":{...}},
                        NUL-terminated */
} kf_event_t;

/* Makes an event with one reference, copying len bytes of json; with json NULL, the caller fills
 * the len bytes of event->json itself. Out of memory aborts. */
kf_event_t *kf_event_new(uint64_t id, const char *json, size_t len);
kf_event_t *kf_event_ref(kf_event_t *event);
void kf_event_unref(kf_event_t *event);

typedef struct kf_sub kf_sub_t;
typedef struct kf_hub kf_hub_t;

/* Called for each event published on the subscriber's topic. The callee may take a reference.
 * It may subscribe and unsubscribe anyone, itself included, from inside the callback (answering a
 * request can run the next pipelined one on the same connection, which may end other
 * subscriptions): the publish still calls each subscriber present when it began and still
 * subscribed when its turn comes, once. */
typedef void (*kf_sub_cb)(kf_sub_t *sub, kf_event_t *event);

/* A subscriber is embedded in its owner's struct (no allocation per subscription).
 * Fields after data are the hub's; zero them (or use kf_sub_init) before the first subscribe. */
struct kf_sub {
    kf_sub_cb cb;           /* set by the owner */
    void *data;             /* the owner's pointer */
    struct kf_topic *topic; /* the hub's: NULL when not subscribed */
    kf_list_t link;         /* the hub's: in the topic's list of subscribers */
    uint64_t stamp;         /* the hub's: when it joined its topic (the topic's count of joins) */
};

void kf_sub_init(kf_sub_t *sub, kf_sub_cb cb, void *data);

kf_hub_t *kf_hub_new(void);
/* Frees the hub; every subscriber must have unsubscribed. */
void kf_hub_free(kf_hub_t *hub);

/* Adds sub to topic (a NUL-terminated name, copied). A sub is on at most one topic: subscribing
 * again moves it. */
void kf_hub_subscribe(kf_hub_t *hub, const char *topic, kf_sub_t *sub);
/* Removes sub from its topic; does nothing when it is not subscribed. Empty topics are freed. */
void kf_hub_unsubscribe(kf_hub_t *hub, kf_sub_t *sub);
/* Hands event to the relay (if set), then calls every subscriber of topic with it (unless the
 * relay delivers it itself); returns how many subscribers were called now. O(subscribers of that
 * topic); a topic lookup is a hash-table probe.
 */
size_t kf_hub_publish(kf_hub_t *hub, const char *topic, kf_event_t *event);
/* kf_hub_publish to every topic whose name starts with prefix (each visitor's, for a change that
 * concerns them all); returns how many subscribers were called. O(topics): for rare events. The
 * topics' names are listed before the first is called, and each is then published as
 * kf_hub_publish does: a topic emptied meanwhile is passed over, and a subscriber that moves to a
 * later one of them meanwhile hears the event there again. */
size_t kf_hub_publish_prefix(kf_hub_t *hub, const char *prefix, kf_event_t *event);
/* What a publish hands on beyond this process (bus/bus.h): called before the local subscribers
 * (it may mark the event late), with the topic (or prefix, when prefix is true) and the event,
 * borrowed. It must not publish on this hub. Returns true when it delivers the event to this
 * process's subscribers itself (kf_hub_deliver, now or later: bus/order.h puts message events
 * in id order across nodes); false: the publish delivers it now. */
typedef bool (*kf_hub_relay_fn)(void *ctx, const char *topic, bool prefix, kf_event_t *event);
/* kf_hub_publish_end's: what the relay holds back to send with the event's next topic leaves
 * now. */
typedef void (*kf_hub_relay_end_fn)(void *ctx);
/* Sets (or, with NULL, removes) the relay every kf_hub_publish and kf_hub_publish_prefix calls,
 * and what kf_hub_publish_end calls (may be NULL): the callers of publish need not know whether
 * other nodes exist. */
void kf_hub_set_relay(kf_hub_t *hub, kf_hub_relay_fn relay, kf_hub_relay_end_fn end, void *ctx);
/* kf_hub_publish and kf_hub_publish_prefix to this process's subscribers only, without the relay:
 * for events that came from another node, which must not go round again. */
size_t kf_hub_deliver(kf_hub_t *hub, const char *topic, kf_event_t *event);
size_t kf_hub_deliver_prefix(kf_hub_t *hub, const char *prefix, kf_event_t *event);
/* The event published last has no more topics: the relay sends it on now rather than at the
 * loop's next turn. Called before the answer that says it is stored, so that a client who has the
 * answer and stores the next message through another loop cannot find it there first: that loop
 * would wait for the lower id (bus/order.h), and had this loop stalled, give it up. */
void kf_hub_publish_end(kf_hub_t *hub);
/* Hands event to the relay only (nothing when none is set): for news of a change this process
 * has applied already, that other nodes must apply too (chat/nodes.h). */
void kf_hub_relay(kf_hub_t *hub, const char *topic, kf_event_t *event);
/* Subscribers on topic now (0 for an unknown topic). */
size_t kf_hub_count(const kf_hub_t *hub, const char *topic);

#endif
