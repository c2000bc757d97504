/* window.c: the recent ephemeral events of each topic that poll or long-poll clients follow, each
 * with a sequence number of its own, so that a client connected only now and then catches up on
 * what was published between its requests (transport.h, "window.c"). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/map.h"
#include "push/transport.h"

/* One kept event: a copy of the published one's JSON (a kf_event_t with no encodings), so that
 * what the window holds is what it counts: a reference would also keep alive the framings the
 * stream transports attached to the shared event. */
typedef struct entry {
    kf_event_t *event; /* the window's own, one reference */
    uint64_t seq;      /* its sequence number */
    uint64_t at_ms;    /* when it was published (kf_clock_mono_ms) */
} entry_t;

struct kf_push_windows {
    kf_hub_t *hub;
    const kf_push_config_t *config; /* the module's: the bounds */
    kf_map_t topics;                /* topic name -> window */
    uint64_t seq;                   /* the newest sequence number given, by any window */
};

/* A window lives while it has clients, and ephemeral_window_ms after its last one leaves. */
struct kf_push_window {
    kf_map_node_t node; /* in windows->topics */
    kf_push_windows_t *windows;
    kf_sub_t sub;           /* on its topic, before every client that attaches to it */
    size_t clients;         /* attached, not yet detached */
    uint64_t idle_since_ms; /* when the last client detached (kf_clock_mono_ms) */
    uint64_t newest;        /* the sequence number of the newest event seen (kept or not), or 0 */
    entry_t *ring;          /* ephemeral_window_events slots, NULL while it keeps nothing */
    size_t first;           /* the oldest kept event's slot */
    size_t count;           /* events kept */
    size_t event_bytes;     /* their allocations' bytes, at most ephemeral_window_bytes */
    size_t name_len;
    char name[]; /* the topic, NUL-terminated */
};

/* The bytes of one kept event's allocation. */
static size_t entry_bytes(const kf_event_t *event)
{
    return sizeof *event + event->len + 1;
}

/* The bytes a window holds: itself, its ring, its events (malloc's own overhead aside). */
static size_t window_bytes(const kf_push_window_t *window)
{
    size_t ring = window->ring != NULL
                      ? window->windows->config->ephemeral_window_events * sizeof(entry_t)
                      : 0;
    return sizeof *window + window->name_len + 1 + ring + window->event_bytes;
}

static void drop_oldest(kf_push_window_t *window)
{
    assert(window->count > 0);
    entry_t *oldest = &window->ring[window->first];
    window->event_bytes -= entry_bytes(oldest->event);
    kf_event_unref(oldest->event);
    window->first = (window->first + 1) % window->windows->config->ephemeral_window_events;
    window->count--;
}

/* Drops the events older than the age limit. */
/* Whether a stamp is age_ms old by now. A stamp may be later than now: the tick reads the clock
 * once, and a client its heartbeat answers detaches (stamping) after that read. */
static bool aged(uint64_t stamp_ms, uint64_t now, uint64_t age_ms)
{
    return now >= stamp_ms && now - stamp_ms >= age_ms;
}

static void drop_aged(kf_push_window_t *window, uint64_t now)
{
    uint64_t age_ms = window->windows->config->ephemeral_window_ms;
    while (window->count > 0 && aged(window->ring[window->first].at_ms, now, age_ms))
        drop_oldest(window);
}

/* Keeps a copy of an ephemeral event published on the window's topic, within the bounds: the
 * oldest go first, and an event bigger than the byte bound is not kept at all. */
static void keep(kf_push_window_t *window, const kf_event_t *event, uint64_t seq, uint64_t now)
{
    const kf_push_config_t *config = window->windows->config;
    size_t slots = config->ephemeral_window_events;
    drop_aged(window, now);
    if (entry_bytes(event) > config->ephemeral_window_bytes)
        return;
    if (window->ring == NULL)
        window->ring = kf_xcalloc(slots, sizeof *window->ring);
    if (window->count == slots)
        drop_oldest(window);
    kf_event_t *copy = kf_event_new(0, event->json, event->len);
    window->ring[(window->first + window->count) % slots] = (entry_t){copy, seq, now};
    window->count++;
    window->event_bytes += entry_bytes(copy);
    while (window->event_bytes > config->ephemeral_window_bytes)
        drop_oldest(window);
}

static void window_event_cb(kf_sub_t *sub, kf_event_t *event)
{
    if (event->id != 0)
        return; /* a message: stored, and replayed from the store */
    kf_push_window_t *window = sub->data;
    kf_push_windows_t *windows = window->windows;
    /* Numbered where it was published when several loops share the numbers (hub.h, eseq): an
     * event from another loop may come after a higher number, so both counts only go up. */
    uint64_t seq = event->eseq != 0 ? event->eseq : windows->seq + 1;
    if (seq > windows->seq)
        windows->seq = seq;
    if (seq > window->newest)
        window->newest = seq;
    keep(window, event, seq, kf_clock_mono_ms());
}

static bool window_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    const kf_push_window_t *window = KF_CONTAINER_OF(node, kf_push_window_t, node);
    return window->name_len == len && memcmp(window->name, key, len) == 0;
}

kf_push_windows_t *kf__push_windows_new(kf_hub_t *hub, const kf_push_config_t *config)
{
    assert(config->ephemeral_window_events > 0);
    kf_push_windows_t *windows = kf_xcalloc(1, sizeof *windows);
    windows->hub = hub;
    windows->config = config;
    kf_map_init(&windows->topics);
    /* Started from the wall clock in microseconds, so that a restarted server hands out numbers
     * above those of the one before (unless that one gave more than one a microsecond): a client
     * coming back with an old number then gets what the new windows hold. */
    windows->seq = (uint64_t)kf_clock_wall_ms() * 1000;
    return windows;
}

/* Takes a window off its topic and out of the table, and frees it. */
static void window_free(kf_push_window_t *window)
{
    kf_push_windows_t *windows = window->windows;
    assert(window->clients == 0);
    kf_hub_unsubscribe(windows->hub, &window->sub);
    while (window->count > 0)
        drop_oldest(window);
    free(window->ring);
    kf_map_remove(&windows->topics, &window->node);
    free(window);
}

static void window_free_cb(kf_map_node_t *node, void *ctx)
{
    (void)ctx;
    window_free(KF_CONTAINER_OF(node, kf_push_window_t, node));
}

void kf__push_windows_free(kf_push_windows_t *windows)
{
    if (windows == NULL)
        return;
    kf_map_each(&windows->topics, window_free_cb, NULL);
    kf_map_free(&windows->topics);
    free(windows);
}

uint64_t kf__push_windows_seq(const kf_push_windows_t *windows)
{
    return windows->seq;
}

kf_push_window_t *kf__push_window_attach(kf_push_windows_t *windows, const char *topic)
{
    size_t len = strlen(topic);
    uint64_t hash = kf_map_hash(&windows->topics, topic, len);
    kf_map_node_t *node = kf_map_find(&windows->topics, hash, topic, len, window_eq);
    kf_push_window_t *window;
    if (node != NULL) {
        window = KF_CONTAINER_OF(node, kf_push_window_t, node);
    } else {
        window = kf_xcalloc(1, sizeof *window + len + 1);
        window->windows = windows;
        window->name_len = len;
        memcpy(window->name, topic, len + 1);
        kf_sub_init(&window->sub, window_event_cb, window);
        kf_hub_subscribe(windows->hub, topic, &window->sub);
        kf_map_insert(&windows->topics, &window->node, hash);
    }
    window->clients++;
    return window;
}

void kf__push_window_detach(kf_push_window_t *window)
{
    assert(window->clients > 0);
    if (--window->clients == 0)
        window->idle_since_ms = kf_clock_mono_ms();
}

uint64_t kf__push_window_newest(const kf_push_window_t *window)
{
    return window->newest;
}

int kf__push_window_each(kf_push_window_t *window, uint64_t after,
                         int (*emit)(void *ctx, kf_event_t *event, uint64_t seq), void *ctx)
{
    drop_aged(window, kf_clock_mono_ms());
    size_t slots = window->windows->config->ephemeral_window_events;
    /* What emit does cannot drop kept events (only a publish or the tick does), so the ring
     * holds still meanwhile. */
    for (size_t i = 0; i < window->count; i++) {
        entry_t *entry = &window->ring[(window->first + i) % slots];
        if (entry->seq <= after)
            continue;
        int rc = emit(ctx, entry->event, entry->seq);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void window_sweep_cb(kf_map_node_t *node, void *ctx)
{
    kf_push_window_t *window = KF_CONTAINER_OF(node, kf_push_window_t, node);
    uint64_t now = *(const uint64_t *)ctx;
    if (window->clients == 0 &&
        aged(window->idle_since_ms, now, window->windows->config->ephemeral_window_ms)) {
        window_free(window);
        return;
    }
    drop_aged(window, now);
    if (window->count == 0) {
        free(window->ring); /* most topics are quiet most of the time */
        window->ring = NULL;
        window->first = 0;
    }
}

void kf__push_windows_sweep(kf_push_windows_t *windows, uint64_t now)
{
    kf_map_each(&windows->topics, window_sweep_cb, &now);
}

static void window_bytes_cb(kf_map_node_t *node, void *ctx)
{
    *(size_t *)ctx += window_bytes(KF_CONTAINER_OF(node, kf_push_window_t, node));
}

size_t kf__push_windows_count(kf_push_windows_t *windows, size_t *bytes)
{
    if (bytes != NULL) {
        *bytes = 0;
        kf_map_each(&windows->topics, window_bytes_cb, bytes);
    }
    return kf_map_count(&windows->topics);
}
