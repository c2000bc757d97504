/* push.h: serves push requests over five transports (poll, long poll, forever iframe, Server-Sent
 * Events, WebSocket) from a replay source and the hub. The caller (the chat layer) authorises the
 * request and says which topic to follow and how to replay stored events after a cursor; this
 * module knows nothing of chat. */
#ifndef KF_PUSH_H
#define KF_PUSH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/server.h"
#include "push/hub.h"

typedef enum {
    KF_PUSH_POLL,
    KF_PUSH_LONGPOLL,
    KF_PUSH_IFRAME,
    KF_PUSH_SSE,
    KF_PUSH_WS,
} kf_push_transport_t;
#define KF_PUSH_TRANSPORT_COUNT 5

/* Receives one replayed event (borrowed: take a reference to keep it). Non-zero stops the
 * replay. */
typedef int (*kf_push_emit_fn)(void *emit_ctx, kf_event_t *event);
/* The end of one replay call: rc is 0 or a KF_E* code (the replay failed: the transport ends or
 * answers 500); more says that stored events remain after the last one emitted. */
typedef void (*kf_push_replayed_fn)(void *emit_ctx, int rc, bool more);

typedef struct kf_push_client kf_push_client_t;

/* Where a push connection's events come from: stored ones after its cursor (the replay), then
 * live ones from a hub topic. A client subscribes to the topic first, then replays; live events
 * that arrive while a replay is in flight are held back (referenced, in order, at most
 * replay_batch of them) and delivered after it, each dropped when its id is not above the cursor
 * the replay reached; when more arrive, those held are dropped and one more replay runs from the
 * cursor (every message event is stored before it is published; an ephemeral one may be lost). */
typedef struct kf_push_source {
    const char *topic; /* hub topic to follow (copied by the push module) */
    /* Replays the listener's stored events with id > after, oldest first, at most limit: emit
     * for each, then replayed once. Asynchronous: returns 0 and calls emit and replayed later,
     * never from inside the call; or returns a KF_E* code at once, and neither runs. (The push
     * module also copes with a source that calls them before returning.) ctx outlives every
     * client (it is the application). */
    int (*replay)(void *ctx, char kind, int64_t subject, uint64_t after, size_t limit,
                  kf_push_emit_fn emit, kf_push_replayed_fn replayed, void *emit_ctx);
    void *ctx;
    char kind;       /* who is listening: 'v' visitor, 'a' agent */
    int64_t subject; /* their id */
} kf_push_source_t;

/* WebSocket only: called with each complete text message a client sends (valid UTF-8, not yet
 * parsed). The callee may answer with kf_push_client_send. */
typedef void (*kf_push_receive_fn)(void *ctx, kf_push_client_t *client, char kind, int64_t subject,
                                   const char *text, size_t len);

typedef struct kf_push_config {
    uint64_t longpoll_hold_ms; /* default hold of a long poll (25 s) */
    uint64_t heartbeat_ms;     /* streaming heartbeat / WebSocket ping interval (20 s) */
    uint64_t ws_dead_ms;       /* a WebSocket silent this long after a ping is dropped (45 s) */
    size_t iframe_max_bytes;   /* an iframe stream ends (reconnect event) after this (1 MiB) */
    size_t replay_batch;       /* events per replay call, and live events held during one (500) */
    uint64_t ws_max_message;   /* largest message a WebSocket client may send (64 KiB) */
    uint64_t sse_retry_ms;     /* the retry: an SSE client waits before reconnecting (2 s) */
    /* The recent ephemeral events (typing, read marks: no id) kept for each topic that poll and
     * long-poll clients follow, for them to catch up on those published between two requests
     * (the answer's "eseq"): the last ephemeral_window_events (64) and at most
     * ephemeral_window_bytes of them (64 KiB, counted as allocated), none older than
     * ephemeral_window_ms (30 s); a topic's window goes ephemeral_window_ms after its last such
     * client. docs/PROTOCOL.md says why these. */
    uint64_t ephemeral_window_ms;
    size_t ephemeral_window_events;
    size_t ephemeral_window_bytes;
    kf_push_receive_fn receive; /* WebSocket messages from clients (NULL: ignored) */
    void *receive_ctx;
    /* Where the clients open now are counted by transport too, as they come and go, for other
     * threads to read (the loops' /metrics: chat/app.h, kf_loop_figures_t); NULL: nowhere. */
    atomic_uint_fast64_t *shared_counts;
} kf_push_config_t;

typedef struct kf_push kf_push_t;

void kf_push_config_default(kf_push_config_t *config);
kf_push_t *kf_push_new(uv_loop_t *loop, kf_hub_t *hub, const kf_push_config_t *config);
/* Answers (or holds, or streams, or upgrades) req over transport, starting after the cursor.
 * source is copied (its topic too); the request is answered once its replay is done, which may
 * be after this returns.
 * hold_ms is the long poll's hold (0 for the default). A poll or long poll reads the request's
 * eseq= itself (the newest ephemeral event the client has; 400 for a bad one), as SSE reads
 * Last-Event-ID. For KF_PUSH_WS the request must be a valid
 * WebSocket handshake (checked here: 400 or 426 otherwise); Origin is the caller's to check. */
void kf_push_serve(kf_push_t *push, kf_req_t *req, kf_push_transport_t transport,
                   const kf_push_source_t *source, uint64_t after, uint64_t hold_ms);
/* Sends one JSON text to one WebSocket client (a reply to what it sent). Returns 0 or KF_ELIMIT
 * (the client was dropped; do not use it again). */
int kf_push_client_send(kf_push_client_t *client, const char *json, size_t len);
/* Keeps the client's memory valid past the end of its connection, for an answer that comes later
 * (after a commit); every ref needs one unref. kf_push_client_send to a client whose connection
 * is gone returns KF_EINVAL and sends nothing. */
void kf_push_client_ref(kf_push_client_t *client);
void kf_push_client_unref(kf_push_client_t *client);
/* For shutdown: answers every held long poll (with no events), ends every iframe and SSE stream
 * with a reconnect hint and closes every WebSocket with 1001, so that clients come back to the
 * restarted server with their cursors. */
void kf_push_drain(kf_push_t *push);
/* For a while after events may have been lost on their way here (the bus between nodes was
 * away): every client that starts within for_ms replays from floor at the latest, whatever
 * cursor it brings, since messages above floor may have passed it by while a newer one reached
 * it. The client de-duplicates what it had by message id (docs/PROTOCOL.md). A poll or long
 * poll is rewound once for each listener and cursor: back with the same cursor, it has had the
 * replay. A second rewind while one is on keeps the lower floor. Pair it with kf_push_drain, which
 * sends every client back now. */
void kf_push_rewind(kf_push_t *push, uint64_t floor, uint64_t for_ms);
/* Ends every push connection of one listener (kind and subject as in kf_push_source_t): long
 * polls are answered, streams end as at shutdown, WebSockets close with 1008. For a logout (the
 * listener's streams must not outlive its session; its other sessions simply reconnect) or a
 * disabled agent (none of its streams may go on). Returns how many were ended. */
size_t kf_push_end_subject(kf_push_t *push, char kind, int64_t subject);
/* Clients held, streaming or connected now. */
size_t kf_push_client_count(const kf_push_t *push);
/* ... over one transport (a short poll's client lives while its answer is made). */
size_t kf_push_transport_client_count(const kf_push_t *push, kf_push_transport_t transport);
/* Topics with an ephemeral window now (those poll and long-poll clients followed in the last
 * ephemeral_window_ms), and in *bytes (unless NULL) the memory the windows hold. O(windows). */
size_t kf_push_window_count(kf_push_t *push, size_t *bytes);
/* Keeps topic's window (transport.h, "window.c") for its ephemeral events as if a windowed
 * client had just left it: with several loops, a poll client's next request may come to any
 * loop, whose window must have kept what was published meanwhile (bus/bus.h, KF_BUS_EPHEMERAL). */
void kf_push_keep_window(kf_push_t *push, const char *topic);
/* Drains and frees the module (its timer handle closes asynchronously). A client whose replay is
 * still in flight is freed when its replayed runs, which the source still owes (the module itself
 * is not touched then). */
void kf_push_free(kf_push_t *push);

#endif
