/* test_hub.c: unit tests for push/hub.c: events, topics, subscribers and publishing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "push/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a test subscriber remembers; embeds its kf_sub_t as a real owner would. */
typedef struct listener {
    kf_sub_t sub;          /* the hub's handle */
    kf_hub_t *hub;         /* for callbacks that change their subscription */
    int calls;             /* events received */
    int order;             /* value of *clock at the last call, to check call order */
    int *clock;            /* shared call counter, or NULL */
    uint64_t last_id;      /* id of the last event received */
    int last_refs;         /* references the last event had when it reached us */
    char last_json[64];    /* copy of the last event's JSON (truncated) */
    kf_event_t *kept;      /* a reference the listener took, or NULL */
    const char *move_to;   /* topic to resubscribe to from the callback, or NULL */
    bool unsubscribe_self; /* leave the topic from the callback */
    kf_sub_t *drop[4];     /* other subscribers to unsubscribe from the callback */
    const char *republish; /* a topic to publish on from the callback (once), or NULL */
    bool keep;             /* take a reference to the event */
} listener_t;

static size_t publish_text(kf_hub_t *hub, const char *topic, uint64_t id, const char *json)
{
    kf_event_t *event = kf_event_new(id, json, strlen(json));
    size_t called = kf_hub_publish(hub, topic, event);
    kf_event_unref(event);
    return called;
}

static void listener_cb(kf_sub_t *sub, kf_event_t *event)
{
    listener_t *l = sub->data;
    assert_ptr_equal(&l->sub, sub);
    l->calls++;
    l->last_refs = event->refs;
    if (l->clock != NULL)
        l->order = ++*l->clock;
    l->last_id = event->id;
    snprintf(l->last_json, sizeof l->last_json, "%s", event->json);
    if (l->keep) {
        kf_event_unref(l->kept);
        l->kept = kf_event_ref(event);
    }
    for (size_t i = 0; i < sizeof l->drop / sizeof l->drop[0]; i++) {
        if (l->drop[i] != NULL)
            kf_hub_unsubscribe(l->hub, l->drop[i]);
    }
    if (l->republish != NULL) {
        const char *topic = l->republish;
        l->republish = NULL;
        publish_text(l->hub, topic, 0, "{\"type\":\"inner\"}");
    }
    if (l->unsubscribe_self)
        kf_hub_unsubscribe(l->hub, sub);
    if (l->move_to != NULL)
        kf_hub_subscribe(l->hub, l->move_to, sub);
}

static void listener_init(listener_t *l, kf_hub_t *hub, int *clock)
{
    memset(l, 0, sizeof *l);
    l->hub = hub;
    l->clock = clock;
    kf_sub_init(&l->sub, listener_cb, l);
}

static void test_event_new_copies(void **state)
{
    (void)state;
    char json[] = "{\"type\":\"message\"}";
    kf_event_t *event = kf_event_new(42, json, strlen(json));
    json[2] = 'X';
    assert_int_equal(event->refs, 1);
    assert_int_equal(event->id, 42);
    assert_int_equal(event->len, strlen("{\"type\":\"message\"}"));
    assert_string_equal(event->json, "{\"type\":\"message\"}");
    assert_ptr_equal(kf_event_ref(event), event);
    assert_int_equal(event->refs, 2);
    kf_event_unref(event);
    assert_int_equal(event->refs, 1);
    kf_event_unref(event);

    /* Only len bytes are copied, and the copy is NUL-terminated. */
    event = kf_event_new(0, "{}garbage", 2);
    assert_string_equal(event->json, "{}");
    kf_event_unref(event);
    event = kf_event_new(0, NULL, 0);
    assert_int_equal(event->len, 0);
    assert_string_equal(event->json, "");
    kf_event_unref(event);
    kf_event_unref(NULL);

    /* Encodings start empty, and whatever a transport caches goes with the event (the leak
     * checker sees to that). */
    event = kf_event_new(7, "{}", 2);
    for (int i = 0; i < KF_EVENT_ENCODINGS; i++)
        assert_null(event->encoded[i]);
    event->encoded[1] = strdup("id: 7\n\n");
    event->encoded_len[1] = 7;
    kf_event_unref(event);
}

static void test_publish_calls_each_in_order(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    int clock = 0;
    listener_t l[3];
    for (int i = 0; i < 3; i++) {
        listener_init(&l[i], hub, &clock);
        kf_hub_subscribe(hub, "conversation:1", &l[i].sub);
    }
    assert_int_equal(publish_text(hub, "conversation:1", 7, "{\"n\":1}"), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(l[i].calls, 1);
        assert_int_equal(l[i].order, i + 1);
        assert_int_equal(l[i].last_id, 7);
        /* The publisher's reference and the hub's own. */
        assert_int_equal(l[i].last_refs, 2);
        assert_string_equal(l[i].last_json, "{\"n\":1}");
    }
    assert_int_equal(publish_text(hub, "conversation:1", 8, "{\"n\":2}"), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(l[i].calls, 2);
    for (int i = 0; i < 3; i++)
        kf_hub_unsubscribe(hub, &l[i].sub);
    kf_hub_free(hub);
}

static void test_topic_isolation(void **state)
{
    (void)state;
    static const char *const topics[] = {
        "conversation:1", "conversation:10", "conversation:", "inbox:1", "", "conversation:1 "};
    enum { TOPICS = sizeof topics / sizeof topics[0] };
    kf_hub_t *hub = kf_hub_new();
    listener_t l[TOPICS];
    for (size_t i = 0; i < TOPICS; i++) {
        listener_init(&l[i], hub, NULL);
        kf_hub_subscribe(hub, topics[i], &l[i].sub);
    }
    for (size_t i = 0; i < TOPICS; i++) {
        assert_int_equal(publish_text(hub, topics[i], i + 1, "{}"), 1);
        for (size_t j = 0; j < TOPICS; j++)
            assert_int_equal(l[j].calls, j <= i ? 1 : 0);
        assert_int_equal(l[i].last_id, i + 1);
    }
    for (size_t i = 0; i < TOPICS; i++)
        kf_hub_unsubscribe(hub, &l[i].sub);
    kf_hub_free(hub);
}

static void test_topic_name_is_copied(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    listener_t l;
    listener_init(&l, hub, NULL);
    char name[] = "conversation:5";
    kf_hub_subscribe(hub, name, &l.sub);
    name[13] = '6';
    assert_int_equal(kf_hub_count(hub, "conversation:5"), 1);
    assert_int_equal(kf_hub_count(hub, "conversation:6"), 0);
    kf_hub_unsubscribe(hub, &l.sub);
    kf_hub_free(hub);
}

/* Enough topics to grow the table many times, then shrink it again while some remain. */
static void test_many_topics(void **state)
{
    (void)state;
    enum { TOPICS = 10000 };
    kf_hub_t *hub = kf_hub_new();
    listener_t *l = calloc(TOPICS, sizeof *l);
    assert_non_null(l);
    char name[32];
    for (int i = 0; i < TOPICS; i++) {
        listener_init(&l[i], hub, NULL);
        snprintf(name, sizeof name, "conversation:%d", i);
        kf_hub_subscribe(hub, name, &l[i].sub);
    }
    for (int i = 0; i < TOPICS; i++) {
        snprintf(name, sizeof name, "conversation:%d", i);
        assert_int_equal(kf_hub_count(hub, name), 1);
        assert_int_equal(publish_text(hub, name, (uint64_t)i, "{}"), 1);
        assert_int_equal(l[i].calls, 1);
        assert_int_equal(l[i].last_id, (uint64_t)i);
    }
    assert_int_equal(kf_hub_count(hub, "conversation:10000"), 0);

    /* Keep every 100th topic; the rest go, and the table shrinks under the survivors. */
    for (int i = 0; i < TOPICS; i++) {
        if (i % 100 != 0)
            kf_hub_unsubscribe(hub, &l[i].sub);
    }
    for (int i = 0; i < TOPICS; i++) {
        snprintf(name, sizeof name, "conversation:%d", i);
        size_t expected = i % 100 == 0 ? 1 : 0;
        assert_int_equal(kf_hub_count(hub, name), expected);
        assert_int_equal(publish_text(hub, name, 1, "{}"), expected);
    }
    for (int i = 0; i < TOPICS; i += 100)
        kf_hub_unsubscribe(hub, &l[i].sub);
    free(l);
    kf_hub_free(hub);
}

/* Each case: which of four subscribers leave from inside their own callback. */
static void test_unsubscribe_in_callback(void **state)
{
    (void)state;
    static const bool cases[][4] = {
        {true, false, false, false}, {false, true, false, false}, {false, false, false, true},
        {true, false, true, false},  {true, true, true, true},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        kf_hub_t *hub = kf_hub_new();
        listener_t l[4];
        size_t staying = 0;
        for (int i = 0; i < 4; i++) {
            listener_init(&l[i], hub, NULL);
            l[i].unsubscribe_self = cases[c][i];
            staying += cases[c][i] ? 0 : 1;
            kf_hub_subscribe(hub, "topic", &l[i].sub);
        }
        assert_int_equal(publish_text(hub, "topic", 1, "{}"), 4);
        assert_int_equal(kf_hub_count(hub, "topic"), staying);
        assert_int_equal(publish_text(hub, "topic", 2, "{}"), staying);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(l[i].calls, cases[c][i] ? 1 : 2);
            if (cases[c][i])
                assert_null(l[i].sub.topic);
            kf_hub_unsubscribe(hub, &l[i].sub);
        }
        assert_int_equal(kf_hub_count(hub, "topic"), 0);
        kf_hub_free(hub);
    }
}

/* The only subscriber leaves: the topic is freed in the middle of the publish (ASan watches). */
static void test_last_subscriber_leaves_in_callback(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    listener_t l;
    listener_init(&l, hub, NULL);
    l.unsubscribe_self = true;
    kf_hub_subscribe(hub, "topic", &l.sub);
    assert_int_equal(publish_text(hub, "topic", 1, "{}"), 1);
    assert_int_equal(kf_hub_count(hub, "topic"), 0);
    assert_int_equal(publish_text(hub, "topic", 2, "{}"), 0);
    assert_int_equal(l.calls, 1);
    kf_hub_free(hub);
}

/* A callback that resubscribes to its own topic goes to the back and is not called twice. */
static void test_resubscribe_in_callback(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    int clock = 0;
    listener_t l[3];
    for (int i = 0; i < 3; i++) {
        listener_init(&l[i], hub, &clock);
        kf_hub_subscribe(hub, "topic", &l[i].sub);
    }
    l[0].move_to = "topic";
    assert_int_equal(publish_text(hub, "topic", 1, "{}"), 3);
    assert_int_equal(l[0].calls, 1);
    assert_int_equal(kf_hub_count(hub, "topic"), 3);
    /* Now the order is 1, 2, 0. */
    l[0].move_to = NULL;
    assert_int_equal(publish_text(hub, "topic", 2, "{}"), 3);
    assert_int_equal(l[1].order, 4);
    assert_int_equal(l[2].order, 5);
    assert_int_equal(l[0].order, 6);

    /* Moving to another topic from the callback: called once, then found on the other topic. */
    l[1].move_to = "elsewhere";
    assert_int_equal(publish_text(hub, "topic", 3, "{}"), 3);
    assert_int_equal(kf_hub_count(hub, "topic"), 2);
    assert_int_equal(kf_hub_count(hub, "elsewhere"), 1);
    l[1].move_to = NULL;
    assert_int_equal(publish_text(hub, "elsewhere", 4, "{}"), 1);
    assert_int_equal(l[1].last_id, 4);

    /* The only subscriber resubscribes to its own topic. */
    l[1].move_to = "elsewhere";
    assert_int_equal(publish_text(hub, "elsewhere", 5, "{}"), 1);
    assert_int_equal(kf_hub_count(hub, "elsewhere"), 1);

    for (int i = 0; i < 3; i++)
        kf_hub_unsubscribe(hub, &l[i].sub);
    kf_hub_free(hub);
}

/* A subscriber added from a callback waits for the next event. */
static void subscribe_other_cb(kf_sub_t *sub, kf_event_t *event)
{
    (void)event;
    listener_t *newcomer = sub->data;
    kf_hub_subscribe(newcomer->hub, "topic", &newcomer->sub);
}

static void test_subscribe_in_callback(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    listener_t newcomer;
    listener_init(&newcomer, hub, NULL);
    kf_sub_t host;
    kf_sub_init(&host, subscribe_other_cb, &newcomer);
    kf_hub_subscribe(hub, "topic", &host);
    assert_int_equal(publish_text(hub, "topic", 1, "{}"), 1);
    assert_int_equal(newcomer.calls, 0);
    assert_int_equal(kf_hub_count(hub, "topic"), 2);
    kf_hub_unsubscribe(hub, &host);
    assert_int_equal(publish_text(hub, "topic", 2, "{}"), 1);
    assert_int_equal(newcomer.calls, 1);
    kf_hub_unsubscribe(hub, &newcomer.sub);
    kf_hub_free(hub);
}

static void test_resubscribe_moves(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    int clock = 0;
    listener_t a, b;
    listener_init(&a, hub, &clock);
    listener_init(&b, hub, &clock);
    kf_hub_subscribe(hub, "one", &a.sub);
    kf_hub_subscribe(hub, "one", &b.sub);
    kf_hub_subscribe(hub, "two", &a.sub);
    assert_int_equal(kf_hub_count(hub, "one"), 1);
    assert_int_equal(kf_hub_count(hub, "two"), 1);
    assert_int_equal(publish_text(hub, "one", 1, "{}"), 1);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(publish_text(hub, "two", 2, "{}"), 1);
    assert_int_equal(a.calls, 1);

    /* Moving the last subscriber away frees the old topic. */
    kf_hub_subscribe(hub, "two", &b.sub);
    assert_int_equal(kf_hub_count(hub, "one"), 0);
    assert_int_equal(publish_text(hub, "one", 3, "{}"), 0);
    assert_int_equal(kf_hub_count(hub, "two"), 2);

    /* Subscribing again to the same topic keeps one membership and moves it to the back. */
    kf_hub_subscribe(hub, "two", &a.sub);
    assert_int_equal(kf_hub_count(hub, "two"), 2);
    assert_int_equal(publish_text(hub, "two", 4, "{}"), 2);
    assert_true(b.order < a.order);

    kf_hub_unsubscribe(hub, &a.sub);
    kf_hub_unsubscribe(hub, &b.sub);
    kf_hub_free(hub);
}

static void test_unknown_topic_and_idle_unsubscribe(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    assert_int_equal(publish_text(hub, "nobody", 1, "{}"), 0);
    assert_int_equal(kf_hub_count(hub, "nobody"), 0);
    listener_t l;
    listener_init(&l, hub, NULL);
    /* Never subscribed, then unsubscribed twice: both are no-ops. */
    kf_hub_unsubscribe(hub, &l.sub);
    kf_hub_subscribe(hub, "topic", &l.sub);
    kf_hub_unsubscribe(hub, &l.sub);
    kf_hub_unsubscribe(hub, &l.sub);
    assert_null(l.sub.topic);
    assert_int_equal(kf_hub_count(hub, "topic"), 0);
    assert_int_equal(publish_text(hub, "topic", 1, "{}"), 0);
    assert_int_equal(l.calls, 0);
    kf_hub_free(hub);
}

static void test_count(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    listener_t l[5];
    for (size_t i = 0; i < 5; i++) {
        listener_init(&l[i], hub, NULL);
        kf_hub_subscribe(hub, "topic", &l[i].sub);
        assert_int_equal(kf_hub_count(hub, "topic"), i + 1);
    }
    /* Out of order removal: middle, head, tail. */
    kf_hub_unsubscribe(hub, &l[2].sub);
    assert_int_equal(kf_hub_count(hub, "topic"), 4);
    kf_hub_unsubscribe(hub, &l[0].sub);
    assert_int_equal(kf_hub_count(hub, "topic"), 3);
    kf_hub_unsubscribe(hub, &l[4].sub);
    assert_int_equal(kf_hub_count(hub, "topic"), 2);
    assert_int_equal(publish_text(hub, "topic", 1, "{}"), 2);
    assert_int_equal(l[1].calls, 1);
    assert_int_equal(l[3].calls, 1);
    kf_hub_unsubscribe(hub, &l[1].sub);
    kf_hub_unsubscribe(hub, &l[3].sub);
    assert_int_equal(kf_hub_count(hub, "topic"), 0);
    kf_hub_free(hub);
}

/* Keepers hold the event after publish; it lives until the last of them lets go (ASan flags a
 * double free or a leak). */
static void test_refcounts(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    listener_t keeper1, keeper2, reader;
    listener_init(&keeper1, hub, NULL);
    listener_init(&keeper2, hub, NULL);
    listener_init(&reader, hub, NULL);
    keeper1.keep = true;
    keeper2.keep = true;
    kf_hub_subscribe(hub, "topic", &keeper1.sub);
    kf_hub_subscribe(hub, "topic", &reader.sub);
    kf_hub_subscribe(hub, "topic", &keeper2.sub);

    kf_event_t *event = kf_event_new(9, "{\"type\":\"message\"}", 18);
    assert_int_equal(kf_hub_publish(hub, "topic", event), 3);
    assert_int_equal(event->refs, 3);
    assert_ptr_equal(keeper1.kept, event);
    assert_ptr_equal(keeper2.kept, event);
    kf_event_unref(event); /* the publisher is done with it */
    assert_int_equal(keeper1.kept->refs, 2);
    assert_string_equal(keeper1.kept->json, "{\"type\":\"message\"}");
    kf_event_unref(keeper1.kept);
    keeper1.kept = NULL;
    assert_int_equal(keeper2.kept->refs, 1);
    assert_int_equal(keeper2.kept->id, 9);
    kf_event_unref(keeper2.kept); /* freed here, exactly once */
    keeper2.kept = NULL;

    /* A second event replaces the first in each keeper. */
    assert_int_equal(publish_text(hub, "topic", 10, "{}"), 3);
    assert_int_equal(publish_text(hub, "topic", 11, "{}"), 3);
    assert_int_equal(keeper1.kept->id, 11);
    assert_int_equal(keeper1.kept->refs, 2);
    kf_event_unref(keeper1.kept);
    kf_event_unref(keeper2.kept);

    kf_hub_unsubscribe(hub, &keeper1.sub);
    kf_hub_unsubscribe(hub, &keeper2.sub);
    kf_hub_unsubscribe(hub, &reader.sub);
    kf_hub_free(hub);
}

/* A callback that drops the publisher's reference: the hub's own reference keeps the event
 * readable for the subscribers after it, and it is freed when publish returns. */
static void drop_publisher_ref_cb(kf_sub_t *sub, kf_event_t *event)
{
    (void)sub;
    kf_event_unref(event);
}

static void test_event_alive_during_publish(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    kf_sub_t dropper;
    kf_sub_init(&dropper, drop_publisher_ref_cb, NULL);
    listener_t reader;
    listener_init(&reader, hub, NULL);
    kf_hub_subscribe(hub, "topic", &dropper);
    kf_hub_subscribe(hub, "topic", &reader.sub);
    kf_event_t *event = kf_event_new(3, "{\"still\":\"here\"}", 16);
    assert_int_equal(kf_hub_publish(hub, "topic", event), 2);
    assert_string_equal(reader.last_json, "{\"still\":\"here\"}");
    assert_int_equal(reader.last_refs, 1);
    kf_hub_unsubscribe(hub, &dropper);
    kf_hub_unsubscribe(hub, &reader.sub);
    kf_hub_free(hub);
}

/* Passes the first event it receives on to another topic (or its own), from its callback. */
typedef struct relay {
    kf_sub_t sub;   /* the hub's handle */
    kf_hub_t *hub;  /* where to publish */
    const char *to; /* topic to publish to */
    int calls;      /* events received */
} relay_t;

static void relay_cb(kf_sub_t *sub, kf_event_t *event)
{
    relay_t *relay = sub->data;
    relay->calls++;
    if (relay->calls == 1)
        kf_hub_publish(relay->hub, relay->to, event);
}

static void test_nested_publish(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    relay_t relay = {.hub = hub, .to = "other"};
    kf_sub_init(&relay.sub, relay_cb, &relay);
    listener_t other;
    listener_init(&other, hub, NULL);
    kf_hub_subscribe(hub, "topic", &relay.sub);
    kf_hub_subscribe(hub, "other", &other.sub);
    assert_int_equal(publish_text(hub, "topic", 1, "{}"), 1);
    assert_int_equal(other.calls, 1);

    /* Into its own topic: the nested publish reaches relay and other, then the outer one
     * goes on to other. */
    relay.calls = 0;
    relay.to = "topic";
    kf_hub_subscribe(hub, "topic", &other.sub);
    assert_int_equal(publish_text(hub, "topic", 2, "{}"), 2);
    assert_int_equal(relay.calls, 2);
    assert_int_equal(other.calls, 3);

    kf_hub_unsubscribe(hub, &relay.sub);
    kf_hub_unsubscribe(hub, &other.sub);
    kf_hub_free(hub);
}

static void test_free_without_subscribers(void **state)
{
    (void)state;
    kf_hub_free(kf_hub_new());
    kf_hub_free(NULL);

    /* Topics made and emptied leave nothing behind (LeakSanitizer checks at exit). */
    kf_hub_t *hub = kf_hub_new();
    listener_t l;
    listener_init(&l, hub, NULL);
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "topic:%d", i);
        kf_hub_subscribe(hub, name, &l.sub);
    }
    kf_hub_unsubscribe(hub, &l.sub);
    assert_int_equal(kf_hub_count(hub, "topic:99"), 0);
    kf_hub_free(hub);
}

/* Beyond the contract: a subscriber left behind is detached, so its owner's later unsubscribe
 * is harmless. */
static void test_free_detaches_leftovers(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    listener_t l;
    listener_init(&l, hub, NULL);
    kf_hub_subscribe(hub, "topic", &l.sub);
    kf_hub_free(hub);
    assert_null(l.sub.topic);
    assert_false(kf_list_linked(&l.sub.link));
    kf_hub_unsubscribe(NULL, &l.sub);
}

/* A callback may end other subscriptions (answering a request can run the next pipelined one,
 * which may be a logout ending the listener's other streams): those not yet called are passed
 * over, nobody is called twice, and nothing freed is touched (ASan). */
static void test_callback_unsubscribes_others(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    int clock = 0;
    listener_t a, b, c, d;
    listener_init(&a, hub, &clock);
    listener_init(&b, hub, &clock);
    listener_init(&c, hub, &clock);
    listener_init(&d, hub, &clock);
    kf_hub_subscribe(hub, "t", &a.sub);
    kf_hub_subscribe(hub, "t", &b.sub);
    kf_hub_subscribe(hub, "t", &c.sub);
    kf_hub_subscribe(hub, "t", &d.sub);
    a.drop[0] = &b.sub; /* the very next one */
    a.drop[1] = &d.sub; /* and the last */
    assert_int_equal(publish_text(hub, "t", 1, "{}"), 2);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(d.calls, 0);
    assert_int_equal(kf_hub_count(hub, "t"), 2);
    /* Everyone leaves from the first callback, itself included: the topic goes once the
     * publish is over, not under it. */
    memset(a.drop, 0, sizeof a.drop);
    a.drop[0] = &c.sub;
    a.unsubscribe_self = true;
    assert_int_equal(publish_text(hub, "t", 2, "{}"), 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(kf_hub_count(hub, "t"), 0);
    assert_int_equal(publish_text(hub, "t", 3, "{}"), 0);
    kf_hub_free(hub);
}

/* A callback that publishes on its own topic: the inner publish reaches everyone present, the
 * outer one goes on where it was, and a subscriber that leaves inside the inner one is passed
 * over by both. */
static void test_nested_publish_on_one_topic(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    listener_t a, b, c;
    listener_init(&a, hub, NULL);
    listener_init(&b, hub, NULL);
    listener_init(&c, hub, NULL);
    kf_hub_subscribe(hub, "t", &a.sub);
    kf_hub_subscribe(hub, "t", &b.sub);
    kf_hub_subscribe(hub, "t", &c.sub);
    a.republish = "t"; /* a's first call publishes again; b then drops c */
    b.drop[0] = &c.sub;
    assert_int_equal(publish_text(hub, "t", 1, "{}"), 2);
    /* inner: a, b (which drops c); outer: a (before), b; c never */
    assert_int_equal(a.calls, 2);
    assert_int_equal(b.calls, 2);
    assert_int_equal(c.calls, 0);
    kf_hub_unsubscribe(hub, &a.sub);
    kf_hub_unsubscribe(hub, &b.sub);
    kf_hub_free(hub);
}

/* A publish to every topic of a prefix reaches those and no other, once each, also when a
 * subscriber drops the only one of a later topic (freed before its turn: ASan watches). */
static void test_publish_prefix(void **state)
{
    (void)state;
    static const char *const topics[] = {"visitor:1", "visitor:22", "agents",
                                         "visitor",   "visito:3",   "visitor:3"};
    enum { TOPICS = sizeof topics / sizeof topics[0] };
    kf_hub_t *hub = kf_hub_new();
    listener_t l[TOPICS];
    for (size_t i = 0; i < TOPICS; i++) {
        listener_init(&l[i], hub, NULL);
        kf_hub_subscribe(hub, topics[i], &l[i].sub);
    }
    const char *json = "{\"type\":\"settings\"}";
    kf_event_t *event = kf_event_new(0, json, strlen(json));
    assert_int_equal(kf_hub_publish_prefix(hub, "visitor:", event), 3);
    for (size_t i = 0; i < TOPICS; i++)
        assert_int_equal(l[i].calls, strncmp(topics[i], "visitor:", 8) == 0 ? 1 : 0);
    assert_string_equal(l[0].last_json, "{\"type\":\"settings\"}");
    /* Each of the three drops the others: whichever is called first, it alone hears it. */
    l[0].drop[0] = &l[1].sub;
    l[0].drop[1] = &l[5].sub;
    l[1].drop[0] = &l[0].sub;
    l[1].drop[1] = &l[5].sub;
    l[5].drop[0] = &l[0].sub;
    l[5].drop[1] = &l[1].sub;
    assert_int_equal(kf_hub_publish_prefix(hub, "visitor:", event), 1);
    assert_int_equal(l[0].calls + l[1].calls + l[5].calls, 4);
    assert_int_equal(kf_hub_publish_prefix(hub, "nobody:", event), 0);
    assert_int_equal(event->refs, 1);
    kf_event_unref(event);
    for (size_t i = 0; i < TOPICS; i++)
        kf_hub_unsubscribe(hub, &l[i].sub);
    kf_hub_free(hub);
}

/* What the relay heard, and whether it came before the subscribers. */
typedef struct relayed {
    int calls;
    int ends; /* kf_hub_publish_end's calls */
    char topic[32];
    bool prefix;
    int subscriber_calls_before; /* the listener's count when the relay ran */
    listener_t *listener;
    bool takes; /* the relay's answer */
} relayed_t;

static bool hub_relay_cb(void *ctx, const char *topic, bool prefix, kf_event_t *event)
{
    relayed_t *r = ctx;
    r->calls++;
    snprintf(r->topic, sizeof r->topic, "%s", topic);
    r->prefix = prefix;
    r->subscriber_calls_before = r->listener->calls;
    event->late = true; /* the relay may mark it; the subscribers see the mark */
    return r->takes;    /* true: it delivers the event itself (bus/order.h), the publish does not */
}

static void hub_relay_end_cb(void *ctx)
{
    relayed_t *r = ctx;
    r->ends++;
}

static void test_relay(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    listener_t l;
    listener_init(&l, hub, NULL);
    kf_hub_subscribe(hub, "visitor:1", &l.sub);
    relayed_t r = {.listener = &l};
    kf_hub_set_relay(hub, hub_relay_cb, hub_relay_end_cb, &r);

    /* Relayed once per publish, before the subscribers, also with none on the topic. */
    assert_int_equal(publish_text(hub, "visitor:1", 3, "{\"type\":\"message\"}"), 1);
    assert_int_equal(r.calls, 1);
    assert_string_equal(r.topic, "visitor:1");
    assert_false(r.prefix);
    assert_int_equal(r.subscriber_calls_before, 0);
    assert_int_equal(l.calls, 1);
    assert_int_equal(publish_text(hub, "nobody", 0, "{}"), 0);
    assert_int_equal(r.calls, 2);
    kf_event_t *event = kf_event_new(0, "{}", 2);
    assert_false(event->late);
    assert_int_equal(kf_hub_publish_prefix(hub, "visitor:", event), 1);
    assert_true(event->late);
    assert_int_equal(r.calls, 3);
    assert_string_equal(r.topic, "visitor:");
    assert_true(r.prefix);

    /* Delivering (what came from another node) calls the subscribers only. */
    assert_int_equal(kf_hub_deliver(hub, "visitor:1", event), 1);
    assert_int_equal(kf_hub_deliver_prefix(hub, "visitor:", event), 1);
    assert_int_equal(r.calls, 3);
    assert_int_equal(l.calls, 4);
    kf_event_unref(event);

    /* Relaying (news for other nodes only) calls the relay only. */
    event = kf_event_new(0, "{}", 2);
    kf_hub_relay(hub, "visitor:1", event);
    kf_event_unref(event);
    assert_int_equal(r.calls, 4);
    assert_false(r.prefix);
    assert_int_equal(l.calls, 4);

    /* A relay that delivers events itself: the publish calls no subscriber. */
    r.takes = true;
    assert_int_equal(publish_text(hub, "visitor:1", 5, "{\"type\":\"message\"}"), 0);
    event = kf_event_new(0, "{}", 2);
    assert_int_equal(kf_hub_publish_prefix(hub, "visitor:", event), 0);
    kf_event_unref(event);
    assert_int_equal(r.calls, 6);
    assert_int_equal(l.calls, 4);
    r.takes = false;

    /* The end of a publish is the relay's news alone. */
    kf_hub_publish_end(hub);
    assert_int_equal(r.ends, 1);
    assert_int_equal(r.calls, 6);
    assert_int_equal(l.calls, 4);

    /* A relay without an end: the end of a publish is nobody's news. */
    kf_hub_set_relay(hub, hub_relay_cb, NULL, &r);
    kf_hub_publish_end(hub);
    assert_int_equal(r.ends, 1);
    assert_int_equal(r.calls, 6);

    /* Removed: publishing is local again, and relaying does nothing. */
    kf_hub_set_relay(hub, NULL, NULL, NULL);
    kf_hub_publish_end(hub);
    assert_int_equal(r.ends, 1);
    publish_text(hub, "visitor:1", 0, "{}");
    event = kf_event_new(0, "{}", 2);
    kf_hub_relay(hub, "visitor:1", event);
    kf_event_unref(event);
    assert_int_equal(r.calls, 6);
    assert_int_equal(l.calls, 5);
    kf_hub_unsubscribe(hub, &l.sub);
    kf_hub_free(hub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_new_copies),
        cmocka_unit_test(test_callback_unsubscribes_others),
        cmocka_unit_test(test_nested_publish_on_one_topic),
        cmocka_unit_test(test_publish_calls_each_in_order),
        cmocka_unit_test(test_topic_isolation),
        cmocka_unit_test(test_topic_name_is_copied),
        cmocka_unit_test(test_many_topics),
        cmocka_unit_test(test_unsubscribe_in_callback),
        cmocka_unit_test(test_last_subscriber_leaves_in_callback),
        cmocka_unit_test(test_resubscribe_in_callback),
        cmocka_unit_test(test_subscribe_in_callback),
        cmocka_unit_test(test_resubscribe_moves),
        cmocka_unit_test(test_unknown_topic_and_idle_unsubscribe),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_refcounts),
        cmocka_unit_test(test_event_alive_during_publish),
        cmocka_unit_test(test_nested_publish),
        cmocka_unit_test(test_free_without_subscribers),
        cmocka_unit_test(test_free_detaches_leftovers),
        cmocka_unit_test(test_publish_prefix),
        cmocka_unit_test(test_relay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
