/* redis.c: the Redis bus: Redis pub/sub through hiredis's asynchronous API on the libuv loop. Two
 * connections, since a subscribed connection may send nothing but (un)subscriptions: one
 * publishes, one is subscribed to the one channel every node shares. Either failing takes both
 * down and a timer brings them back, with backoff. */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "bus/internal.h"
#include "bus/order.h"

/* Every node publishes to and listens on this one channel: each node hears every event, also
 * those for topics it has no subscriber on. Simple, and right while nodes are few (Redis sends
 * each message once per node); a channel per topic, subscribed while a local subscriber is on
 * it, is the step after (docs/ARCHITECTURE.md). */
#define CHANNEL "kefu:events"
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
/* A connection that has not come up by then is given up and tried again: hiredis's
 * asynchronous connect has no time-out of its own, and a dropped SYN would wait minutes. */
#define CONNECT_TIMEOUT_MS 5000
/* A lower message id not seen by then was never published (order.h): on without it. Far above
 * Redis's delivery time (well under a millisecond on a LAN), far below a person's patience. */
#define HOLE_MS 250
/* Where the nodes say they are alive: node id -> kf_clock_wall_ms of its latest heartbeat. */
#define NODES_KEY "kefu:nodes"
/* A node silent for this long is dead: its live_only counts no longer count. */
#define DEAD_MS (4 * KF_BUS_HEARTBEAT_MS)

typedef struct redis_bus {
    kf_bus_t base;
    uv_loop_t *loop;
    kf_bus_url_t url;
    char address[256];              /* url.host resolved (an IP address), for hiredis */
    uv_getaddrinfo_t *resolving;    /* the name being resolved, or NULL */
    char node[KF_BUS_NODE_LEN + 1]; /* this node's id, hex: its own echo is skipped */
    /* This connection's id, hex, new each time the bus becomes ready: the field of live_only
     * counters and what the heartbeat says is alive. */
    char session[KF_BUS_NODE_LEN + 1];
    kf_bus_notify_fn notify;
    void *notify_ctx;
    redisAsyncContext *pub; /* publishes; NULL while down */
    redisAsyncContext *sub; /* subscribed to CHANNEL; NULL while down */
    bool pub_up;            /* pub is connected */
    bool sub_up;            /* sub's SUBSCRIBE is confirmed */
    bool ready;             /* both: events cross nodes */
    bool down_reported;     /* KF_BUS_DOWN told for this outage */
    bool lost;              /* an event of ours was lost since the last ready: others resync */
    uint64_t lost_floor;    /* ... from this id: below every message lost (UINT64_MAX: none) */
    uint64_t newest_id;     /* the newest message id this node has seen, its own or another's
                             * (the store's at the start): one below it that comes is late */
    uint64_t gap_floor;     /* where our clients resync from: the order's newest when the bus
                             * went down (the store's at the start) */
    /* A message of ours went to our clients while the bus was not ready, ahead of any lower id
     * of another node's that could not reach us meanwhile: our clients resync from gap_floor,
     * after the first connection as after any other. */
    bool passed;
    bool freeing;          /* kf_bus_free under way: no more reconnects */
    uint64_t backoff_ms;   /* the wait before the next attempt */
    uv_timer_t *timer;     /* the next attempt, or a connect's time-out */
    kf_buf_t out;          /* the message being encoded */
    kf_bus_order_t *order; /* message events, ours and others', to our subscribers in id order */
    /* What we published and have not sent yet: one event on every topic it was published to
     * one after the other (a message on its visitor's topic and the agents'), sent as one Redis
     * message with the topics joined by commas, so that the other nodes deliver them together
     * (order.h: none of them late). Sent at kf_hub_publish_end, the loop's next turn, or when
     * another event comes. */
    kf_event_t *pending; /* a reference, or NULL */
    kf_buf_t pending_topics;
    /* The request whose work published pending ("" when none): it goes with the event, for the
     * other nodes' log lines (bus.h). Copied when published: sent a loop turn later. */
    char pending_request_id[KF_LOG_REQUEST_ID_SIZE];
    bool pending_prefix;
    uv_timer_t *flush;
    /* Shared counters (kf_bus_count): the sessions alive by the last heartbeat's answer, each
     * KF_BUS_NODE_LEN bytes, ours among them. */
    char (*live)[KF_BUS_NODE_LEN];
    size_t live_count;
    uv_timer_t *heartbeat; /* every KF_BUS_HEARTBEAT_MS while ready */
} redis_bus_t;

static void attempt_cb(uv_timer_t *timer);

/* ---- hiredis on libuv ----
 * Our own adapter rather than the libuv one hiredis ships: that one drops a poll's error status,
 * and libuv reports a refused connect (POLLERR) as just that, stopping the handle, so a refused
 * connection was never noticed. Here an error hands the socket back to hiredis, whose read or
 * connect check then finds the error and fails the connection. */
typedef struct poller {
    redisAsyncContext *ctx; /* NULL once hiredis has let go (cleanup) */
    uv_poll_t handle;
    int events; /* UV_READABLE | UV_WRITABLE wanted */
} poller_t;

static void poll_cb(uv_poll_t *handle, int status, int events)
{
    poller_t *p = handle->data;
    if (status < 0) /* the handle is stopped: let hiredis find the error */
        events =
            (p->ctx != NULL && (p->ctx->c.flags & REDIS_CONNECTED)) ? UV_READABLE : UV_WRITABLE;
    if (p->ctx != NULL && (events & UV_READABLE))
        redisAsyncHandleRead(p->ctx);
    if (p->ctx != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ctx);
}

static void poll_update(poller_t *p, int events)
{
    p->events = events;
    if (events != 0)
        uv_poll_start(&p->handle, events, poll_cb);
    else
        uv_poll_stop(&p->handle);
}

static void add_read(void *data)
{
    poller_t *p = data;
    poll_update(p, p->events | UV_READABLE);
}

static void del_read(void *data)
{
    poller_t *p = data;
    poll_update(p, p->events & ~UV_READABLE);
}

static void add_write(void *data)
{
    poller_t *p = data;
    poll_update(p, p->events | UV_WRITABLE);
}

static void del_write(void *data)
{
    poller_t *p = data;
    poll_update(p, p->events & ~UV_WRITABLE);
}

static void poller_closed_cb(uv_handle_t *handle)
{
    free(handle->data);
}

static void cleanup(void *data)
{
    poller_t *p = data;
    p->ctx = NULL;
    uv_close((uv_handle_t *)&p->handle, poller_closed_cb);
}

/* Watches ctx's socket on loop. Returns 0 or KF_EIO. */
static int attach(redisAsyncContext *ctx, uv_loop_t *loop)
{
    poller_t *p = kf_xcalloc(1, sizeof *p);
    if (uv_poll_init(loop, &p->handle, ctx->c.fd) != 0) {
        free(p);
        return KF_EIO;
    }
    p->handle.data = p;
    p->ctx = ctx;
    ctx->ev.data = p;
    ctx->ev.addRead = add_read;
    ctx->ev.delRead = del_read;
    ctx->ev.addWrite = add_write;
    ctx->ev.delWrite = del_write;
    ctx->ev.cleanup = cleanup;
    return 0;
}

static void notify(redis_bus_t *bus, kf_bus_change_t change, const char *detail, uint64_t after)
{
    if (bus->notify != NULL && !bus->freeing)
        bus->notify(bus->notify_ctx, change, detail, after);
}

/* The order gave up a hole (a node that died between its commit and its publish): our clients
 * replay from below it for a while. */
static void gave_up_cb(void *ctx, uint64_t floor)
{
    notify(ctx, KF_BUS_HOLE, "", floor);
}

/* An event of ours that did not reach Redis. */
static void lose(redis_bus_t *bus, uint64_t id)
{
    bus->base.stats.lost++;
    bus->lost = true;
    if (id != 0 && id - 1 < bus->lost_floor)
        bus->lost_floor = id - 1;
}

static int send_message(redis_bus_t *bus, kf_bus_kind_t kind, uint64_t id, int64_t born_ms,
                        const char *topic, const char *request_id, const char *json,
                        size_t json_len);

/* Sends what waits in pending (lost when the bus cannot take it). */
static void flush_pending(redis_bus_t *bus)
{
    kf_event_t *event = bus->pending;
    if (event == NULL)
        return;
    bus->pending = NULL;
    uv_timer_stop(bus->flush);
    kf_buf_append(&bus->pending_topics, "", 1); /* NUL-terminated */
    int rc = !bus->ready ? KF_EUNAVAIL
                         : send_message(bus, bus->pending_prefix ? KF_BUS_PREFIX : KF_BUS_EVENT,
                                        event->id, event->born_ms, bus->pending_topics.data,
                                        bus->pending_request_id, event->json, event->len);
    if (rc == 0)
        bus->base.stats.sent++;
    else if (rc == KF_EUNAVAIL)
        lose(bus, event->id);
    else
        bus->base.stats.lost++; /* one the decoder would refuse: nobody could take it */
    bus->pending_topics.len = 0;
    kf_event_unref(event);
}

static void flush_cb(uv_timer_t *timer)
{
    flush_pending(timer->data);
}

/* Frees both connections (their pending callbacks run with no reply; their disconnect callbacks
 * find them no longer ours and do nothing). */
static void teardown(redis_bus_t *bus)
{
    flush_pending(bus); /* counted lost when the bus is not ready */
    /* Nothing more comes off the bus now: what waited for a lower id goes out, and our own
     * events are delivered at once until it is back. */
    kf_bus_order_flush(bus->order);
    redisAsyncContext *pub = bus->pub;
    redisAsyncContext *sub = bus->sub;
    bus->pub = bus->sub = NULL;
    bus->pub_up = bus->sub_up = bus->ready = false;
    uv_timer_stop(bus->heartbeat);
    if (pub != NULL)
        redisAsyncFree(pub);
    if (sub != NULL)
        redisAsyncFree(sub);
}

/* One connection failed (to connect, or later): both go, and a later attempt brings them back. */
static void failed(redis_bus_t *bus, const char *why)
{
    bool was_ready = bus->ready;
    /* Where our clients resync from: every id up to the order's newest went out to them in
     * order. Not newest_id: what the order holds above it (ours, or another node's, waiting for a
     * lower id still in Redis) goes out now, at the teardown, and the lower id never comes. An
     * order that has not started since the connection (the store's answer had not come) let
     * nothing out: the floor from before stands. */
    if (was_ready)
        kf_bus_order_newest(bus->order, &bus->gap_floor);
    teardown(bus);
    if (bus->freeing)
        return;
    if (was_ready)
        bus->backoff_ms = BACKOFF_FIRST_MS;
    if (!bus->down_reported) {
        bus->down_reported = true;
        notify(bus, KF_BUS_DOWN, why != NULL ? why : "connection lost", 0);
    }
    uv_timer_start(bus->timer, attempt_cb, bus->backoff_ms, 0);
    bus->backoff_ms = bus->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : bus->backoff_ms * 2;
}

/* The id of what was published travels as the callback's data (no allocation per publish). */
static void publish_cb(redisAsyncContext *ctx, void *reply, void *data)
{
    const redisReply *r = reply;
    redis_bus_t *bus = ctx->data;
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        lose(bus, (uint64_t)(uintptr_t)data);
}

/* Sends one message on pub. Returns 0 or KF_EUNAVAIL. */
static int send_message(redis_bus_t *bus, kf_bus_kind_t kind, uint64_t id, int64_t born_ms,
                        const char *topic, const char *request_id, const char *json,
                        size_t json_len)
{
    if (kf_bus_encode(&bus->out, kind, bus->node, id, born_ms, topic, request_id, json, json_len) !=
        0)
        return KF_EINVAL;
    if (redisAsyncCommand(bus->pub, publish_cb, (void *)(uintptr_t)id, "PUBLISH %s %b", CHANNEL,
                          bus->out.data, bus->out.len) != REDIS_OK)
        return KF_EUNAVAIL;
    return 0;
}

/* ---- shared counters ---- */

/* The heartbeat's answer, or a live_only count's first: the sessions alive now. */
static void live_cb(redisAsyncContext *ctx, void *reply, void *data)
{
    (void)data;
    redis_bus_t *bus = ctx->data;
    const redisReply *r = reply;
    if (r == NULL || ctx != bus->pub || r->type != REDIS_REPLY_ARRAY)
        return;
    bus->live = kf_xrealloc(bus->live, (r->elements + 1) * sizeof *bus->live);
    bus->live_count = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *node = r->element[i];
        if (node->type == REDIS_REPLY_STRING && node->len == KF_BUS_NODE_LEN)
            memcpy(bus->live[bus->live_count++], node->str, KF_BUS_NODE_LEN);
    }
}

/* Says this node is alive, forgets the dead and learns who is alive, in one pipeline. */
static void heartbeat(redis_bus_t *bus)
{
    if (!bus->ready)
        return;
    int64_t now = kf_clock_wall_ms();
    redisAsyncCommand(bus->pub, NULL, NULL, "ZADD %s %lld %s", NODES_KEY, (long long)now,
                      bus->session);
    redisAsyncCommand(bus->pub, NULL, NULL, "ZREMRANGEBYSCORE %s -inf (%lld", NODES_KEY,
                      (long long)(now - DEAD_MS));
    redisAsyncCommand(bus->pub, live_cb, NULL, "ZRANGE %s 0 -1", NODES_KEY);
}

static void heartbeat_cb(uv_timer_t *timer)
{
    heartbeat(timer->data);
}

static bool is_live(const redis_bus_t *bus, const char *node, size_t len)
{
    if (len != KF_BUS_NODE_LEN)
        return false;
    for (size_t i = 0; i < bus->live_count; i++) {
        if (memcmp(bus->live[i], node, KF_BUS_NODE_LEN) == 0)
            return true;
    }
    return false;
}

/* A kf_bus_count waiting for its answer. */
typedef struct count_wait {
    kf_bus_count_fn cb;
    void *data;
    bool live_only;
} count_wait_t;

/* HGETALL's answer: field, value, field, value ... */
static void counted_cb(redisAsyncContext *ctx, void *reply, void *data)
{
    redis_bus_t *bus = ctx->data;
    count_wait_t *wait = data;
    const redisReply *r = reply;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        wait->cb(wait->data, KF_EUNAVAIL, 0);
        free(wait);
        return;
    }
    int64_t others = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *node = r->element[i], *value = r->element[i + 1];
        if (node->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING)
            continue;
        const char *own = wait->live_only ? bus->session : bus->node;
        if (node->len == KF_BUS_NODE_LEN && memcmp(node->str, own, KF_BUS_NODE_LEN) == 0)
            continue;
        if (wait->live_only && !is_live(bus, node->str, node->len))
            continue;
        long long n = strtoll(value->str, NULL, 10);
        if (n > 0 && n < INT32_MAX)
            others += n;
    }
    wait->cb(wait->data, 0, others);
    free(wait);
}

static int redis_count(kf_bus_t *base, const char *key, int64_t delta, int64_t ttl_ms,
                       bool live_only, kf_bus_count_fn cb, void *data)
{
    redis_bus_t *bus = (redis_bus_t *)base;
    if (!bus->ready)
        return KF_EUNAVAIL;
    /* One pipeline on pub, answered in order: only the last answer is waited for. */
    if (delta != 0 &&
        (redisAsyncCommand(bus->pub, NULL, NULL, "HINCRBY %s %s %lld", key,
                           live_only ? bus->session : bus->node, (long long)delta) != REDIS_OK ||
         redisAsyncCommand(bus->pub, NULL, NULL, "PEXPIRE %s %lld", key, (long long)ttl_ms) !=
             REDIS_OK))
        return KF_EUNAVAIL;
    /* Who is alive now, answered just before the counter: a session that began since the last
     * heartbeat counts at once. */
    if (live_only &&
        redisAsyncCommand(bus->pub, live_cb, NULL, "ZRANGEBYSCORE %s %lld +inf", NODES_KEY,
                          (long long)(kf_clock_wall_ms() - DEAD_MS)) != REDIS_OK)
        return KF_EUNAVAIL;
    count_wait_t *wait = kf_xmalloc(sizeof *wait);
    wait->cb = cb;
    wait->data = data;
    wait->live_only = live_only;
    if (redisAsyncCommand(bus->pub, counted_cb, wait, "HGETALL %s", key) != REDIS_OK) {
        free(wait);
        return KF_EUNAVAIL;
    }
    return 0;
}

static int redis_forget(kf_bus_t *base, const char *key)
{
    redis_bus_t *bus = (redis_bus_t *)base;
    if (!bus->ready || redisAsyncCommand(bus->pub, NULL, NULL, "DEL %s", key) != REDIS_OK)
        return KF_EUNAVAIL;
    return 0;
}

/* Writes KF_BUS_NODE_LEN random hex digits and a NUL into id. */
static void random_id(char *id, const void *salt)
{
    unsigned char raw[KF_BUS_NODE_LEN / 2];
    if (uv_random(NULL, NULL, raw, sizeof raw, 0, NULL) != 0) {
        uint64_t fallback = uv_hrtime() ^ (uint64_t)(uintptr_t)salt;
        memcpy(raw, &fallback, sizeof raw);
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw; i++) {
        id[2 * i] = hex[raw[i] >> 4];
        id[2 * i + 1] = hex[raw[i] & 15];
    }
    id[KF_BUS_NODE_LEN] = '\0';
}

static void became_ready(redis_bus_t *bus)
{
    if (bus->ready || !bus->pub_up || !bus->sub_up)
        return;
    bus->ready = true;
    /* Where the order starts is the store's newest id once we are subscribed (kf_bus_started):
     * meanwhile message events wait. With nobody to ask, at the next message. */
    if (bus->notify != NULL)
        kf_bus_order_wait(bus->order);
    else
        kf_bus_order_flush(bus->order);
    bus->down_reported = false;
    bus->backoff_ms = BACKOFF_FIRST_MS;
    uv_timer_stop(bus->timer);
    bus->base.stats.connects++;
    /* A new session: what was counted live_only under the last one (closes lost while Redis
     * was away among it) dies with its heartbeat, and the owner counts afresh (KF_BUS_UP). */
    random_id(bus->session, bus);
    /* Others missed what we published while away: they catch up from the store too. */
    if (bus->lost &&
        send_message(bus, KF_BUS_RESYNC, bus->lost_floor, 0, "-", NULL, "{}", 2) == 0) {
        bus->lost = false;
        bus->lost_floor = UINT64_MAX;
    }
    heartbeat(bus); /* before any count: its answer comes first */
    uv_timer_start(bus->heartbeat, heartbeat_cb, KF_BUS_HEARTBEAT_MS, KF_BUS_HEARTBEAT_MS);
    notify(bus, KF_BUS_UP, "", bus->base.stats.connects);
}

static void redis_started(kf_bus_t *base, uint64_t connection, bool known, uint64_t newest)
{
    redis_bus_t *bus = (redis_bus_t *)base;
    /* The order waits from became_ready to here; a teardown's flush ends the wait. */
    if (!bus->ready || !kf_bus_order_waiting(bus->order) || connection != bus->base.stats.connects)
        return; /* the answer for a connection that went since, or a second one */
    /* We missed what others published while we were not subscribed: every client goes back to
     * the store, which has every message up to newest, before anything held goes out. After an
     * outage they replay from where we were when the bus went. Before the first connection
     * nothing came from others, and a client that took none of ours cannot have passed one of
     * theirs: it resumes from its own cursor. One that may have (a message of ours went out
     * meanwhile: Redis was away when we started) replays from where the store stood then. */
    uint64_t floor = bus->base.stats.connects > 1 || bus->passed ? bus->gap_floor : UINT64_MAX;
    bus->passed = false;
    notify(bus, KF_BUS_GAP, "", floor);
    if (!known) {
        kf_bus_order_flush(bus->order); /* the order starts at the next message */
        return;
    }
    if (newest > bus->newest_id)
        bus->newest_id = newest;
    kf_bus_order_start(bus->order, newest);
}

/* Relays one event this node published (the hub's relay). A message event goes to our own
 * subscribers through the order too, behind any lower id still on its way from another node. */
static bool relay_cb(void *ctx, const char *topic, bool prefix, kf_event_t *event)
{
    redis_bus_t *bus = ctx;
    bool behind = event->id != 0 && event->id < bus->newest_id;
    if (event->id > bus->newest_id)
        bus->newest_id = event->id;
    if (!bus->ready) {
        /* To our subscribers now, past the order: late when a newer one from another node went
         * out here first (the order's teardown let out what it held). Through the order, the
         * order marks it (order.h). */
        event->late = behind;
        lose(bus, event->id);
        if (event->id != 0)
            bus->passed = true;
        return false;
    }
    size_t len = strlen(topic);
    if (bus->pending == event && !prefix && !bus->pending_prefix &&
        bus->pending_topics.len + 1 + len <= KF_BUS_MAX_TOPIC) {
        kf_buf_append(&bus->pending_topics, ",", 1);
        kf_buf_append(&bus->pending_topics, topic, len);
    } else {
        flush_pending(bus);
        bus->pending = kf_event_ref(event);
        bus->pending_prefix = prefix;
        const char *request_id = kf_log_request_id();
        snprintf(bus->pending_request_id, sizeof bus->pending_request_id, "%s",
                 request_id != NULL ? request_id : "");
        kf_buf_append(&bus->pending_topics, topic, len);
        uv_timer_start(bus->flush, flush_cb, 0, 0);
    }
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

/* Calls fn with each topic of a comma-joined list (one topic: itself). */
static void each_topic(redis_bus_t *bus, const char *topics, uint64_t id, kf_event_t *event,
                       void (*fn)(redis_bus_t *bus, const char *topic, uint64_t id,
                                  kf_event_t *event))
{
    char topic[KF_BUS_MAX_TOPIC + 1];
    for (const char *at = topics;;) {
        const char *comma = strchr(at, ',');
        size_t len = comma != NULL ? (size_t)(comma - at) : strlen(at);
        if (len > 0 && len <= KF_BUS_MAX_TOPIC) {
            memcpy(topic, at, len);
            topic[len] = '\0';
            fn(bus, topic, id, event);
        }
        if (comma == NULL)
            break;
        at = comma + 1;
    }
}

static void deliver_one(redis_bus_t *bus, const char *topic, uint64_t id, kf_event_t *event)
{
    (void)id;
    kf_hub_deliver(bus->base.hub, topic, event);
}

/* What the order lets through, to this node's subscribers: on each of its topics (one, or
 * several joined by commas when it came from another node). */
static void order_deliver_cb(void *ctx, const char *topics, bool prefix, kf_event_t *event)
{
    redis_bus_t *bus = ctx;
    if (prefix)
        kf_hub_deliver_prefix(bus->base.hub, topics, event);
    else
        each_topic(bus, topics, event->id, event, deliver_one);
}

/* Tells the owner of a message stored by another node, once for each of its topics. */
static void note_message(redis_bus_t *bus, const char *topic, uint64_t id, kf_event_t *event)
{
    (void)event;
    notify(bus, KF_BUS_MESSAGE, topic, id);
}

/* One message from the channel: an event for this node's subscribers, unless it is our own. */
static void receive(redis_bus_t *bus, const char *data, size_t len)
{
    kf_bus_msg_t msg;
    if (kf_bus_decode(data, len, &msg) != 0) {
        bus->base.stats.malformed++;
        return;
    }
    if (memcmp(msg.node, bus->node, KF_BUS_NODE_LEN) == 0)
        return;
    bus->base.stats.received++;
    if (msg.kind == KF_BUS_RESYNC) {
        notify(bus, KF_BUS_GAP, "", msg.id);
        return;
    }
    char topic[KF_BUS_MAX_TOPIC + 1];
    memcpy(topic, msg.topic, msg.topic_len);
    topic[msg.topic_len] = '\0';
    /* What this node logs while it takes the event in (delivering it now, the subscribers' own
     * lines) names the request on the node it came from. An event the order holds back for a
     * lower id is delivered later, without it. */
    char request_id[KF_LOG_REQUEST_ID_SIZE];
    const char *outer = NULL;
    if (msg.request_id != NULL) {
        memcpy(request_id, msg.request_id, msg.request_id_len);
        request_id[msg.request_id_len] = '\0';
        outer = kf_log_set_request_id(request_id);
    }
    kf_event_t *event = kf_event_new(msg.id, msg.json, msg.json_len);
    event->born_ms = msg.born_ms;
    /* Late or not is the order's to say, as it goes out (order.h). */
    if (msg.id > bus->newest_id)
        bus->newest_id = msg.id;
    if (msg.id != 0)
        each_topic(bus, topic, msg.id, NULL, note_message);
    kf_bus_order_add(bus->order, topic, msg.kind == KF_BUS_PREFIX, event);
    kf_event_unref(event);
    if (msg.request_id != NULL)
        kf_log_set_request_id(outer);
}

static bool reply_is(const redisReply *r, const char *what)
{
    return r->type == REDIS_REPLY_STRING && strcmp(r->str, what) == 0;
}

/* Every reply on sub: the SUBSCRIBE's confirmation, then each message. */
static void subscribed_cb(redisAsyncContext *ctx, void *reply, void *data)
{
    redis_bus_t *bus = data;
    const redisReply *r = reply;
    if (r == NULL || ctx != bus->sub) /* freed: teardown's */
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        failed(bus, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to SUBSCRIBE");
        return;
    }
    if (reply_is(r->element[0], "subscribe")) {
        bus->sub_up = true;
        became_ready(bus);
    } else if (reply_is(r->element[0], "message") && r->element[2]->type == REDIS_REPLY_STRING) {
        receive(bus, r->element[2]->str, r->element[2]->len);
    }
}

/* The reply to AUTH or SELECT, on either connection; data is non-NULL on pub's last one, after
 * which pub may publish. Whatever Redis answers goes into the log line as it is: it names what
 * went wrong ("WRONGPASS invalid username-password pair") and never holds the password. */
static void setup_cb(redisAsyncContext *ctx, void *reply, void *data)
{
    redis_bus_t *bus = ctx->data;
    const redisReply *r = reply;
    if (r == NULL || (ctx != bus->pub && ctx != bus->sub)) /* freed: teardown's */
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        char why[200];
        snprintf(why, sizeof why, "Redis refused %s: %s",
                 r->str != NULL && strncmp(r->str, "ERR DB", 6) == 0 ? "the database"
                                                                     : "the credentials",
                 r->str != NULL ? r->str : "");
        failed(bus, why);
        return;
    }
    if (data != NULL && ctx == bus->pub) {
        bus->pub_up = true;
        became_ready(bus);
    }
}

/* Queues AUTH and SELECT as the url asks, to go first once connected; last says whether the
 * last of them tells pub is ready. Returns whether any was queued (0: none needed) or -1. */
static int queue_setup(redis_bus_t *bus, redisAsyncContext *ctx, bool tell)
{
    int queued = 0;
    bool select = bus->url.db != 0;
    if (bus->url.password[0] != '\0') {
        void *last = tell && !select ? bus : NULL;
        int rc = bus->url.user[0] != '\0'
                     ? redisAsyncCommand(ctx, setup_cb, last, "AUTH %s %s", bus->url.user,
                                         bus->url.password)
                     : redisAsyncCommand(ctx, setup_cb, last, "AUTH %s", bus->url.password);
        if (rc != REDIS_OK)
            return -1;
        queued = 1;
    }
    if (select) {
        if (redisAsyncCommand(ctx, setup_cb, tell ? bus : NULL, "SELECT %d", bus->url.db) !=
            REDIS_OK)
            return -1;
        queued = 1;
    }
    return queued;
}

static void connect_cb(const redisAsyncContext *ctx, int status)
{
    redis_bus_t *bus = ctx->data;
    if (ctx != bus->pub && ctx != bus->sub)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees ctx after this returns: not teardown's to free. */
        if (ctx == bus->pub)
            bus->pub = NULL;
        else
            bus->sub = NULL;
        failed(bus, ctx->errstr);
        return;
    }
    /* With AUTH or SELECT to go first, pub is up once they are answered (setup_cb). */
    if (ctx == bus->pub && bus->url.password[0] == '\0' && bus->url.db == 0) {
        bus->pub_up = true;
        became_ready(bus);
    }
}

static void disconnect_cb(const redisAsyncContext *ctx, int status)
{
    (void)status;
    redis_bus_t *bus = ctx->data;
    if (ctx != bus->pub && ctx != bus->sub) /* teardown's own */
        return;
    /* hiredis frees ctx after this returns. */
    if (ctx == bus->pub)
        bus->pub = NULL;
    else
        bus->sub = NULL;
    failed(bus, ctx->err != 0 ? ctx->errstr : "the server closed the connection");
}

/* Starts one connection. Returns it, or NULL after failed() (which it calls with why). */
static redisAsyncContext *open_connection(redis_bus_t *bus)
{
    redisAsyncContext *ctx = redisAsyncConnect(bus->address, bus->url.port);
    if (ctx == NULL) {
        failed(bus, "out of memory");
        return NULL;
    }
    if (ctx->err != 0) {
        char why[128];
        snprintf(why, sizeof why, "%s", ctx->errstr);
        redisAsyncFree(ctx);
        failed(bus, why);
        return NULL;
    }
    ctx->data = bus;
    if (attach(ctx, bus->loop) != 0) {
        redisAsyncFree(ctx);
        failed(bus, "cannot watch the connection on the loop");
        return NULL;
    }
    redisAsyncSetConnectCallback(ctx, connect_cb);
    redisAsyncSetDisconnectCallback(ctx, disconnect_cb);
    return ctx;
}

static void timeout_cb(uv_timer_t *timer)
{
    redis_bus_t *bus = timer->data;
    if (!bus->ready)
        failed(bus, "timed out connecting");
}

/* Connects both to bus->address, then waits at most CONNECT_TIMEOUT_MS for them. */
static void connect_both(redis_bus_t *bus)
{
    assert(bus->pub == NULL && bus->sub == NULL);
    bus->pub = open_connection(bus);
    if (bus->pub == NULL)
        return;
    bus->sub = open_connection(bus);
    if (bus->sub == NULL)
        return;
    /* Queued now, sent once connected, in this order: nothing is subscribed or published before
     * the server has taken the credentials and the database. */
    if (queue_setup(bus, bus->pub, true) < 0 || queue_setup(bus, bus->sub, false) < 0) {
        failed(bus, "cannot queue AUTH or SELECT");
        return;
    }
    if (redisAsyncCommand(bus->sub, subscribed_cb, bus, "SUBSCRIBE %s", CHANNEL) != REDIS_OK) {
        failed(bus, "cannot subscribe");
        return;
    }
    uv_timer_start(bus->timer, timeout_cb, CONNECT_TIMEOUT_MS, 0);
}

static void free_bus(redis_bus_t *bus)
{
    free(bus->live);
    kf_buf_free(&bus->out);
    kf_buf_free(&bus->pending_topics);
    free(bus);
}

/* A name resolved (off the loop, by libuv's thread pool): connects to its first address. */
static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    redis_bus_t *bus = req->data;
    free(req);
    bus->resolving = NULL;
    if (bus->freeing) { /* redis_free waited for this */
        uv_freeaddrinfo(res);
        if (bus->timer == NULL)
            free_bus(bus);
        return;
    }
    int rc = status;
    if (rc == 0 && res->ai_family == AF_INET6)
        rc = uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, bus->address,
                         sizeof bus->address);
    else if (rc == 0)
        rc = uv_ip4_name((const struct sockaddr_in *)res->ai_addr, bus->address,
                         sizeof bus->address);
    uv_freeaddrinfo(res);
    if (rc != 0) {
        char why[300];
        snprintf(why, sizeof why, "cannot resolve %s: %s", bus->url.host, uv_strerror(rc));
        failed(bus, why);
        return;
    }
    connect_both(bus);
}

/* Connects both, after resolving the host when it is a name: hiredis would resolve it itself,
 * synchronously, stopping the loop for as long as DNS takes. */
static void attempt_cb(uv_timer_t *timer)
{
    redis_bus_t *bus = timer->data;
    if (bus->resolving != NULL)
        return;
    unsigned char raw[16];
    if (uv_inet_pton(AF_INET, bus->url.host, raw) == 0 ||
        uv_inet_pton(AF_INET6, bus->url.host, raw) == 0) {
        snprintf(bus->address, sizeof bus->address, "%s", bus->url.host);
        connect_both(bus);
        return;
    }
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    uv_getaddrinfo_t *req = kf_xcalloc(1, sizeof *req);
    req->data = bus;
    if (uv_getaddrinfo(bus->loop, req, resolved_cb, bus->url.host, NULL, &hints) != 0) {
        free(req);
        failed(bus, "cannot start resolving the host name");
        return;
    }
    bus->resolving = req;
}

static bool redis_ready(const kf_bus_t *base)
{
    return ((const redis_bus_t *)base)->ready;
}

static void flush_closed_cb(uv_handle_t *handle)
{
    free(handle);
}

static void timer_closed_cb(uv_handle_t *handle)
{
    redis_bus_t *bus = handle->data;
    free(handle);
    bus->timer = NULL;
    /* A resolution under way cannot always be cancelled: its callback frees the bus then. */
    if (bus->resolving == NULL)
        free_bus(bus);
}

static void redis_free(kf_bus_t *base)
{
    redis_bus_t *bus = (redis_bus_t *)base;
    bus->freeing = true;
    teardown(bus);
    kf_bus_order_free(bus->order);
    bus->order = NULL;
    uv_timer_stop(bus->flush);
    uv_close((uv_handle_t *)bus->flush, flush_closed_cb);
    uv_close((uv_handle_t *)bus->heartbeat, flush_closed_cb);
    if (bus->resolving != NULL)
        uv_cancel((uv_req_t *)bus->resolving);
    uv_timer_stop(bus->timer);
    uv_close((uv_handle_t *)bus->timer, timer_closed_cb);
}

static const kf_bus_ops_t redis_ops = {"redis",     redis_ready,  redis_free,
                                       redis_count, redis_forget, redis_started};

kf_bus_t *kf_bus_new_redis(uv_loop_t *loop, kf_hub_t *hub, const char *url, uint64_t newest,
                           kf_bus_notify_fn notify_fn, void *notify_ctx)
{
    kf_bus_url_t parsed;
    if (kf_bus_url_parse(url, &parsed) != 0)
        return NULL;
    redis_bus_t *bus = kf_xcalloc(1, sizeof *bus);
    bus->base.ops = &redis_ops;
    bus->base.hub = hub;
    bus->loop = loop;
    bus->url = parsed;
    bus->notify = notify_fn;
    bus->notify_ctx = notify_ctx;
    bus->backoff_ms = BACKOFF_FIRST_MS;
    bus->lost_floor = UINT64_MAX;
    bus->newest_id = bus->gap_floor = newest;
    kf_buf_init(&bus->out);
    bus->order = kf_bus_order_new(loop, HOLE_MS, order_deliver_cb, bus, &bus->base.stats.holes);
    kf_bus_order_set_hooks(bus->order, NULL, gave_up_cb, bus);
    kf_buf_init(&bus->pending_topics);
    bus->flush = kf_xcalloc(1, sizeof *bus->flush);
    uv_timer_init(loop, bus->flush);
    bus->flush->data = bus;
    bus->heartbeat = kf_xcalloc(1, sizeof *bus->heartbeat);
    uv_timer_init(loop, bus->heartbeat);
    bus->heartbeat->data = bus;
    uv_unref((uv_handle_t *)bus->heartbeat);
    /* A fresh id each start: a restarted node is a new sender (its old echo, if any were still on
     * the way, is simply another node's). */
    random_id(bus->node, bus);
    bus->timer = kf_xcalloc(1, sizeof *bus->timer);
    uv_timer_init(loop, bus->timer);
    bus->timer->data = bus;
    /* The first attempt from the loop, so that notify never runs inside this call. */
    uv_timer_start(bus->timer, attempt_cb, 0, 0);
    kf_hub_set_relay(hub, relay_cb, relay_end_cb, bus);
    return &bus->base;
}
