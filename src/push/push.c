/* push.c: what the five push transports share: the list of clients, the cursor that drops an
 * event a client already has, the subscription and the asynchronous replay that opens every
 * connection (live events held back while it runs), the catching up of poll and long-poll
 * clients on their topic's ephemeral window, client references, the one coarse tick, and drain
 * and end-by-subject. Each transport's own code is in its file, behind the table in
 * transport.h. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/map.h"
#include "base/metrics.h"
#include "push/transport.h"

#define TICK_MS 1000

static const kf_push_transport_ops_t *const transports[] = {
#define KF__PUSH_TABLE_ENTRY(id, ops) [id] = &ops,
    KF_PUSH_TRANSPORTS(KF__PUSH_TABLE_ENTRY)
#undef KF__PUSH_TABLE_ENTRY
};

#define TRANSPORT_COUNT (sizeof transports / sizeof transports[0])
_Static_assert(TRANSPORT_COUNT <= KF_EVENT_ENCODINGS,
               "each transport owns a kf_event_t.encoded slot: raise KF_EVENT_ENCODINGS");

struct kf_push {
    uv_loop_t *loop;
    kf_hub_t *hub;
    kf_push_config_t config;
    uv_timer_t tick;   /* one coarse timer for every client's timeout and heartbeat */
    kf_list_t clients; /* every client not dead, newest last */
    /* kf_push_rewind's: clients that start before rewind_until_ms (monotonic) replay from
     * rewind_floor at the latest */
    uint64_t rewind_floor;
    uint64_t rewind_until_ms;
    /* The poll and long-poll listeners rewound in this window, each with the cursor it came
     * with: one that comes back with the same cursor has had the replay from the floor, and is
     * not rewound again (a long poll would otherwise be answered at once, with the same
     * messages, until the window ends). Streams stay connected, so each is rewound once anyway.
     * Emptied when the window ends or a rewind begins a new one. */
    kf_map_t rewound;
    size_t client_count;
    size_t transport_count[KF_PUSH_TRANSPORT_COUNT]; /* of them, by transport */
    kf_push_windows_t *windows;                      /* of the topics windowed clients follow */
};

void kf_push_config_default(kf_push_config_t *config)
{
    memset(config, 0, sizeof *config);
    config->longpoll_hold_ms = 25000;
    config->heartbeat_ms = 20000;
    config->ws_dead_ms = 45000;
    config->iframe_max_bytes = 1024 * 1024;
    config->replay_batch = 500;
    config->ws_max_message = 64 * 1024;
    config->sse_retry_ms = 2000;
    config->ephemeral_window_ms = 30000;
    config->ephemeral_window_events = 64;
    config->ephemeral_window_bytes = 64 * 1024;
}

/* ---- the rewind ---- */

typedef struct rewound {
    kf_map_node_t node;
    struct {
        int64_t subject;
        uint64_t cursor;
        char kind;
    } key;
} rewound_t;

static bool rewound_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    const rewound_t *r = KF_CONTAINER_OF(node, rewound_t, node);
    return len == sizeof r->key && memcmp(&r->key, key, len) == 0;
}

static void rewound_free(kf_map_node_t *node)
{
    free(KF_CONTAINER_OF(node, rewound_t, node));
}

/* Whether a client that starts now with cursor replays from the floor: while the window lasts,
 * a stream always, a poll once for each listener and cursor. */
static bool rewind_due(kf_push_t *push, const kf_push_client_t *client,
                       const kf_push_source_t *source, uint64_t cursor)
{
    if (kf_clock_mono_ms() >= push->rewind_until_ms) {
        if (kf_map_count(&push->rewound) > 0)
            kf_map_clear(&push->rewound, rewound_free); /* the window is over */
        return false;
    }
    if (cursor <= push->rewind_floor)
        return false;
    if (!client->ops->windowed)
        return true;
    rewound_t probe;
    memset(&probe.key, 0, sizeof probe.key); /* the padding is hashed too */
    probe.key.subject = source->subject;
    probe.key.cursor = cursor;
    probe.key.kind = source->kind;
    uint64_t hash = kf_map_hash(&push->rewound, &probe.key, sizeof probe.key);
    if (kf_map_find(&push->rewound, hash, &probe.key, sizeof probe.key, rewound_eq) != NULL)
        return false;
    rewound_t *r = kf_xcalloc(1, sizeof *r);
    memcpy(&r->key, &probe.key, sizeof r->key);
    kf_map_insert(&push->rewound, &r->node, hash);
    return true;
}

/* ---- clients ---- */

static void live_event_cb(kf_sub_t *sub, kf_event_t *event);

static kf_push_client_t *client_new(kf_push_t *push, kf_req_t *req, kf_push_transport_t transport,
                                    const kf_push_source_t *source, uint64_t cursor)
{
    const kf_push_transport_ops_t *ops = transports[transport];
    kf_push_client_t *client = kf_xcalloc(1, sizeof *client + ops->state_size);
    client->ops = ops;
    client->transport = transport;
    client->config = &push->config;
    client->req = req;
    client->cursor = cursor;
    client->eseq = kf__push_windows_seq(push->windows); /* until start reads the client's */
    client->last_write_ms = kf_clock_mono_ms();
    client->kind = source->kind;
    client->subject = source->subject;
    client->replaying = true; /* until its replay has caught up */
    client->push = push;
    client->replay = source->replay;
    client->replay_ctx = source->ctx;
    kf_sub_init(&client->sub, live_event_cb, client);
    kf_list_push_back(&push->clients, &client->link);
    push->client_count++;
    push->transport_count[transport]++;
    if (push->config.shared_counts != NULL)
        atomic_fetch_add_explicit(&push->config.shared_counts[transport], 1, memory_order_relaxed);
    return client;
}

/* Lets go of the live events held back during a replay. */
static void held_drop(kf_push_client_t *client)
{
    for (size_t i = 0; i < client->held_count; i++)
        kf_event_unref(client->held[i]);
    client->held_count = 0;
}

static void client_free(kf_push_client_t *client)
{
    if (client->ops->release != NULL)
        client->ops->release(client);
    free(client->held);
    free(client);
}

/* After this the client no longer touches the module, which may be freed before the client's
 * last reference goes (a replay still in flight). */
void kf__push_client_kill(kf_push_client_t *client)
{
    assert(!client->dead);
    client->dead = true;
    kf_push_t *push = client->push;
    kf_hub_unsubscribe(push->hub, &client->sub);
    if (client->window != NULL) {
        kf__push_window_detach(client->window);
        client->window = NULL;
    }
    kf_list_remove(&client->link);
    push->client_count--;
    push->transport_count[client->transport]--;
    if (push->config.shared_counts != NULL)
        atomic_fetch_sub_explicit(&push->config.shared_counts[client->transport], 1,
                                  memory_order_relaxed);
    held_drop(client);
    if (client->refs == 0)
        client_free(client);
}

void kf__push_client_abort_cb(kf_req_t *req, void *data)
{
    (void)req;
    kf__push_client_kill(data);
}

void kf_push_client_ref(kf_push_client_t *client)
{
    client->refs++;
}

void kf_push_client_unref(kf_push_client_t *client)
{
    assert(client->refs > 0);
    if (--client->refs == 0 && client->dead)
        client_free(client);
}

/* ---- shared by the transports ---- */

const char *kf__push_event_encoding(const kf_push_client_t *client, kf_event_t *event,
                                    void (*encode)(kf_buf_t *out, const kf_event_t *event),
                                    size_t *len)
{
    size_t slot = (size_t)client->transport;
    if (event->encoded[slot] == NULL) {
        kf_buf_t out;
        kf_buf_init(&out);
        encode(&out, event);
        event->encoded[slot] = kf_buf_steal(&out, &event->encoded_len[slot]);
    }
    *len = event->encoded_len[slot];
    return event->encoded[slot];
}

int kf__push_stream_start(kf_push_client_t *client, const char *content_type)
{
    return kf_resp_stream_start(client->req, 200, content_type, kf__push_client_abort_cb, client);
}

int kf__push_stream_write(kf_push_client_t *client, const void *data, size_t len)
{
    int rc = kf_resp_stream_write(client->req, data, len);
    client->last_write_ms = kf_clock_mono_ms();
    if (rc != 0)
        kf__push_client_kill(client); /* the server closed the connection: no abort follows */
    return rc;
}

void kf__push_stream_end(kf_push_client_t *client)
{
    kf_req_t *req = client->req;
    kf_req_detach(req);
    kf__push_client_kill(client);
    kf_resp_stream_end(req);
}

/* ---- delivery ---- */

/* Delivers one event, replayed or live, unless the cursor shows the client has it. Non-zero: the
 * client has ended. */
static int client_deliver(kf_push_client_t *client, kf_event_t *event)
{
    if (event->id != 0 && event->id <= client->cursor &&
        (!event->late || event->id <= client->replayed_max))
        return 0;
    int rc = client->ops->deliver(client, event);
    if (rc != 0)
        return rc;
    if (event->born_ms != 0) {
        int64_t age_ms = kf_clock_wall_ms() - event->born_ms;
        kf_histogram_observe_us(&kf_metrics.push_delivery,
                                age_ms > 0 ? (uint64_t)age_ms * 1000 : 0);
    }
    if (event->id > client->cursor)
        client->cursor = event->id;
    return 0;
}

/* After events were delivered: false when the transport has ended the client. */
static bool client_delivered(kf_push_client_t *client)
{
    return client->ops->delivered == NULL || client->ops->delivered(client);
}

/* The client has every ephemeral event its window has seen. */
static void window_noted(kf_push_client_t *client)
{
    uint64_t newest = kf__push_window_newest(client->window);
    if (newest > client->eseq)
        client->eseq = newest;
}

static int window_emit_cb(void *ctx, kf_event_t *event, uint64_t seq)
{
    kf_push_client_t *client = ctx;
    int rc = client->ops->deliver(client, event);
    if (rc == 0)
        client->eseq = seq;
    return rc;
}

/* Delivers the ephemeral events of the client's window that it does not have (numbered above its
 * eseq), after the messages its replay delivered. Non-zero: the client has ended. */
static int window_catch_up(kf_push_client_t *client)
{
    int rc = kf__push_window_each(client->window, client->eseq, window_emit_cb, client);
    if (rc == 0)
        window_noted(client);
    return rc;
}

static void live_event_cb(kf_sub_t *sub, kf_event_t *event)
{
    kf_push_client_t *client = sub->data;
    if (event->id == 0 && client->window != NULL) {
        /* During the replay the window keeps it, and the catching up at the replay's end
         * delivers it; after, the window (ahead of the client on the topic) has numbered it. */
        if (client->replaying || client_deliver(client, event) != 0)
            return;
        window_noted(client);
        client_delivered(client);
        return;
    }
    if (client->replaying) {
        /* Held back until the replay is done. Past a batch's worth, one more replay call is
         * cheaper than holding more: it finds every message among them in the store. */
        size_t max = client->config->replay_batch;
        if (client->held_count == max) {
            held_drop(client);
            client->replay_again = true;
            return;
        }
        if (client->held == NULL)
            client->held = kf_xcalloc(max, sizeof *client->held);
        client->held[client->held_count++] = kf_event_ref(event);
        return;
    }
    if (client_deliver(client, event) == 0)
        client_delivered(client);
}

/* ---- the replay ---- */

static int replay_emit_cb(void *ctx, kf_event_t *event)
{
    kf_push_client_t *client = ctx;
    if (client->dead)
        return KF_EINVAL; /* nobody wants the rest */
    int rc = client_deliver(client, event);
    if (rc == 0 && event->id > client->replayed_max)
        client->replayed_max = event->id;
    return rc;
}

/* Delivers the live events held back during the replay, in order (each dropped when the replay
 * sent it already), and lets live events through from now on. */
static void replay_caught_up(kf_push_client_t *client)
{
    kf_push_client_ref(client); /* delivering may kill it, which drops held[] */
    for (size_t i = 0; i < client->held_count && !client->dead; i++)
        client_deliver(client, client->held[i]);
    held_drop(client);
    client->replaying = false;
    bool dead = client->dead;
    kf_push_client_unref(client);
    if (!dead)
        client_delivered(client);
}

/* One replay call has ended (rc, more as in kf_push_replayed_fn); its reference on the client
 * goes here. Returns true when another call should start. */
static bool replay_ended(kf_push_client_t *client, int rc, bool more)
{
    bool dead = client->dead;
    kf_push_client_unref(client); /* frees it only when dead */
    if (dead)
        return false;
    if (rc != 0) {
        held_drop(client);
        client->ops->end(client, KF_PUSH_END_FAILED);
        return false;
    }
    if (client->window != NULL && window_catch_up(client) != 0)
        return false;
    if (!client_delivered(client))
        return false; /* a poll answered, an iframe full */
    if (client->replay_again) {
        client->replay_again = false;
        return true;
    }
    if (more && client->cursor > client->replay_from)
        return true;
    replay_caught_up(client);
    return false;
}

static void replayed_cb(void *ctx, int rc, bool more);

/* Runs replay calls from the client's cursor until one is in flight or the replay is done. A
 * source that calls replayed before returning is looped here, not recursed into. */
static void replay_run(kf_push_client_t *client)
{
    bool again = true;
    while (again) {
        client->replay_in_call = true;
        client->replay_returned = false;
        client->replay_from = client->cursor;
        kf_push_client_ref(client); /* until replayed: the connection may die meanwhile */
        int rc = client->replay(client->replay_ctx, client->kind, client->subject, client->cursor,
                                client->config->replay_batch, replay_emit_cb, replayed_cb, client);
        client->replay_in_call = false;
        if (rc != 0)
            again = replay_ended(client, rc, false); /* replayed will not run */
        else if (client->replay_returned)
            again = replay_ended(client, client->replay_rc, client->replay_more);
        else
            return;
    }
}

static void replayed_cb(void *ctx, int rc, bool more)
{
    kf_push_client_t *client = ctx;
    if (client->replay_in_call) {
        client->replay_returned = true;
        client->replay_rc = rc;
        client->replay_more = more;
        return;
    }
    if (replay_ended(client, rc, more))
        replay_run(client);
}

/* ---- entry points ---- */

void kf_push_serve(kf_push_t *push, kf_req_t *req, kf_push_transport_t transport,
                   const kf_push_source_t *source, uint64_t after, uint64_t hold_ms)
{
    assert((size_t)transport < TRANSPORT_COUNT && transports[transport] != NULL);
    kf_push_client_t *client = client_new(push, req, transport, source, after);
    kf_push_client_ref(client); /* start may end it */
    int rc = client->ops->start(client, req, hold_ms);
    bool dead = client->dead;
    if (rc != 0 && !dead)
        kf__push_client_kill(client);
    kf_push_client_unref(client);
    if (rc != 0 || dead)
        return;
    /* After start, which may have taken the cursor from Last-Event-ID. */
    if (rewind_due(push, client, source, client->cursor))
        client->cursor = push->rewind_floor;
    if (client->ops->windowed) /* first: see kf__push_window_attach */
        client->window = kf__push_window_attach(push->windows, source->topic);
    if (client->ops->follows)
        kf_hub_subscribe(push->hub, source->topic, &client->sub);
    replay_run(client);
}

void kf_push_keep_window(kf_push_t *push, const char *topic)
{
    kf__push_window_detach(kf__push_window_attach(push->windows, topic));
}

static void tick_cb(uv_timer_t *timer)
{
    kf_push_t *push = timer->data;
    uint64_t now = kf_clock_mono_ms();
    KF_LIST_FOREACH(it, next, &push->clients) {
        kf_push_client_t *client = KF_CONTAINER_OF(it, kf_push_client_t, link);
        if (client->ops->heartbeat != NULL)
            client->ops->heartbeat(client, now);
    }
    kf__push_windows_sweep(push->windows, now);
}

kf_push_t *kf_push_new(uv_loop_t *loop, kf_hub_t *hub, const kf_push_config_t *config)
{
    assert(config->replay_batch > 0);
    kf_push_t *push = kf_xcalloc(1, sizeof *push);
    push->loop = loop;
    push->hub = hub;
    push->config = *config;
    push->windows = kf__push_windows_new(hub, &push->config);
    kf_map_init(&push->rewound);
    kf_list_init(&push->clients);
    uv_timer_init(loop, &push->tick);
    push->tick.data = push;
    uv_timer_start(&push->tick, tick_cb, TICK_MS, TICK_MS);
    return push;
}

void kf_push_rewind(kf_push_t *push, uint64_t floor, uint64_t for_ms)
{
    uint64_t now = kf_clock_mono_ms();
    if (now >= push->rewind_until_ms || floor < push->rewind_floor) {
        push->rewind_floor = floor;
        kf_map_clear(&push->rewound, rewound_free); /* from a new floor, everyone again */
    }
    push->rewind_until_ms = now + for_ms;
}

void kf_push_drain(kf_push_t *push)
{
    /* Each end kills its client, which leaves the list. */
    while (!kf_list_empty(&push->clients)) {
        kf_push_client_t *client =
            KF_CONTAINER_OF(kf_list_first(&push->clients), kf_push_client_t, link);
        client->ops->end(client, KF_PUSH_END_DRAIN);
    }
}

size_t kf_push_end_subject(kf_push_t *push, char kind, int64_t subject)
{
    size_t ended = 0;
    KF_LIST_FOREACH(it, next, &push->clients) {
        kf_push_client_t *client = KF_CONTAINER_OF(it, kf_push_client_t, link);
        if (client->kind != kind || client->subject != subject)
            continue;
        ended++;
        client->ops->end(client, KF_PUSH_END_SUBJECT);
    }
    return ended;
}

size_t kf_push_transport_client_count(const kf_push_t *push, kf_push_transport_t transport)
{
    return push->transport_count[transport];
}

size_t kf_push_client_count(const kf_push_t *push)
{
    return push->client_count;
}

size_t kf_push_window_count(kf_push_t *push, size_t *bytes)
{
    return kf__push_windows_count(push->windows, bytes);
}

static void tick_closed_cb(uv_handle_t *handle)
{
    free(handle->data);
}

void kf_push_free(kf_push_t *push)
{
    kf_push_drain(push);
    kf__push_windows_free(push->windows);
    push->windows = NULL;
    kf_map_clear(&push->rewound, rewound_free);
    uv_timer_stop(&push->tick);
    uv_close((uv_handle_t *)&push->tick, tick_closed_cb);
}
