/* transport.h: what the push module shares with its transports, private to push/: the table of
 * operations every transport implements, the client struct they all hold, and the calls a
 * transport makes back into push.c. push.c keeps what is common to all (the client list, the
 * cursor and de-duplication, subscription, the replay and the live events held back during it,
 * the tick, drain and end-by-subject, references); each transport's file keeps its own wire
 * format, framing, heartbeat and ending: poll.c, longpoll.c, iframe.c, sse.c, ws.c; window.c keeps
 * the recent ephemeral events that poll and long-poll clients catch up on.
 *
 * How to add a transport: write push/<name>.c defining `const kf_push_transport_ops_t
 * kf__push_<name>_ops` (start, deliver, heartbeat, end; delivered and release where it needs
 * them; state_size for its own per-client state, reached with KF_PUSH_STATE; windowed when it is
 * connected only now and then), add one line to KF_PUSH_TRANSPORTS below, and give it its public
 * name in push.h's kf_push_transport_t (the one the caller asks for). Nothing else changes: push.c
 * reaches it only through the table, and its encoded event bytes go to the kf_event_t.encoded slot
 * of its own index. */
#ifndef KF_PUSH_TRANSPORT_H
#define KF_PUSH_TRANSPORT_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/list.h"
#include "push/push.h"

/* Sent when a stream opens, so that a client sees at once that events get through (a buffering
 * proxy would hold it back), and as a periodic heartbeat where a transport sends events. */
#define KF_PUSH_HEARTBEAT_JSON "{\"type\":\"heartbeat\"}"

/* Why push.c ends a client (kf_push_transport_ops_t.end). */
typedef enum {
    KF_PUSH_END_DRAIN,   /* shutdown: come back to the restarted server with your cursor */
    KF_PUSH_END_SUBJECT, /* the listener logged out (kf_push_end_subject) */
    KF_PUSH_END_FAILED,  /* the replay failed: a poll answers 500, a stream ends */
    KF_PUSH_END_LIMIT,   /* the transport's own limit (the iframe's bytes): come back */
} kf_push_end_t;

typedef struct kf_push_transport_ops {
    bool follows;      /* subscribes to the topic (every transport but the short poll) */
    size_t state_size; /* bytes of the transport's own state in each client, zeroed at first */
    /* Opens the connection: checks the request and holds, streams or upgrades it (with
     * kf__push_client_abort_cb), and writes its opening bytes; it may move client->cursor (SSE's
     * Last-Event-ID). hold_ms is the long poll's (0: the default). Returns 0 when the client is
     * open, then push.c subscribes it (when it follows) and replays; otherwise a KF_E* code
     * (answered with an error, or over already), and push.c ends the client if start has not. */
    int (*start)(kf_push_client_t *client, kf_req_t *req, uint64_t hold_ms);
    /* Delivers one event, replayed or live, that the client does not have yet (push.c has
     * checked the cursor, and moves it after). Returns 0, or a KF_E* code when the client has
     * ended (its connection failed: killed; or the transport's own limit ended it, as an iframe
     * past its byte limit does after the event that crossed it). */
    int (*deliver)(kf_push_client_t *client, kf_event_t *event);
    /* After events were delivered (one replay call's, those held back during the replay, or a
     * live one): a poll answers with them. Returns false when
     * the client has ended. NULL: the client goes on. */
    bool (*delivered)(kf_push_client_t *client);
    /* The 1-second tick (now: kf_clock_mono_ms): keep-alives, dead-peer checks, deadlines. It
     * may end the client. NULL: nothing to do. */
    void (*heartbeat)(kf_push_client_t *client, uint64_t now);
    /* Ends the client for why: it answers, or tells the client to come back, and kills it. */
    void (*end)(kf_push_client_t *client, kf_push_end_t why);
    /* Frees what the transport's state holds, once, when the client is freed. NULL: nothing. */
    void (*release)(kf_push_client_t *client);
    /* Catches up on its topic's recent ephemeral events (window.c) after the messages its replay
     * found, and counts them with client->eseq: the transports connected only now and then, which
     * would otherwise miss those published between two requests (poll, long poll). */
    bool windowed;
} kf_push_transport_ops_t;

/* The table: one line per transport, its public name (push.h) and its operations (its file).
 * push.c indexes an array with it; the index is also the transport's slot in
 * kf_event_t.encoded. */
#define KF_PUSH_TRANSPORTS(X)                                                                      \
    X(KF_PUSH_POLL, kf__push_poll_ops)                                                             \
    X(KF_PUSH_LONGPOLL, kf__push_longpoll_ops)                                                     \
    X(KF_PUSH_IFRAME, kf__push_iframe_ops)                                                         \
    X(KF_PUSH_SSE, kf__push_sse_ops)                                                               \
    X(KF_PUSH_WS, kf__push_ws_ops)

#define KF__PUSH_DECLARE_OPS(id, ops) extern const kf_push_transport_ops_t ops;
KF_PUSH_TRANSPORTS(KF__PUSH_DECLARE_OPS)
#undef KF__PUSH_DECLARE_OPS

/* One push connection. Transports read the fields above the line and keep their own state in
 * state[]; the rest is push.c's. The state is sized by the table rather than a union of every
 * transport's, so that a client carries only its own transport's bytes (an SSE client none, a
 * WebSocket one its message reassembly) and a new transport touches no shared type. */
struct kf_push_client {
    const kf_push_transport_ops_t *ops;
    const kf_push_config_t *config; /* the module's; read it only while the client is not dead */
    kf_req_t *req;                  /* the held, streaming or upgraded request */
    uint64_t cursor;                /* id of the last message event delivered */
    uint64_t eseq;                  /* windowed: number of the newest ephemeral event it has */
    uint64_t last_write_ms;         /* streams: the last write, for heartbeats */
    int64_t subject;
    kf_push_transport_t transport; /* the index of ops in the table */
    char kind;                     /* who listens ('v' or 'a') */
    bool replaying;                /* a replay is under way (live events are held back meanwhile) */
    bool dead; /* ended: its connection is gone or answered; off the topic and the list */
    /* ---- push.c's (ordered to pack: a client's bytes are multiplied by every connection) ---- */
    bool replay_in_call;  /* inside the source's replay call */
    bool replay_returned; /* replayed ran inside that call: its result waits in replay_rc/more */
    bool replay_again;    /* held[] overflowed: one more replay from the cursor after this one */
    bool replay_more;
    unsigned refs; /* holders besides the connection: freeing waits for them */
    int replay_rc;
    kf_push_t *push;
    kf_sub_t sub;     /* on the source's topic (when ops->follows) */
    kf_list_t link;   /* in the module's list of clients (unlinked once dead) */
    void *replay_ctx; /* the source's replay and ctx (its topic is the hub's copy) */
    int (*replay)(void *ctx, char kind, int64_t subject, uint64_t after, size_t limit,
                  kf_push_emit_fn emit, kf_push_replayed_fn replayed, void *emit_ctx);
    uint64_t replay_from; /* the cursor when the current replay call began */
    /* The newest id a replay from the store delivered: every message of the subject up to it
     * was in the replay (a read's snapshot holds every commit before its newest row, and ids
     * follow commits), so a late event at or below it is one the client has. */
    uint64_t replayed_max;
    kf_event_t **held; /* live events held back during a replay (referenced, in order) */
    size_t held_count; /* at most config->replay_batch */
    /* Its topic's window (when ops->windowed), until it is killed. */
    struct kf_push_window *window;
    /* The transport's own state: ops->state_size bytes. */
    alignas(max_align_t) unsigned char state[];
};

/* The transport's state of a client, as its own type. */
#define KF_PUSH_STATE(client, type) ((type *)(void *)(client)->state)

/* ---- calls into push.c ---- */

/* The client's connection is gone, or it has been answered or ended: takes it off its topic and
 * the module's list and frees it now, or when its last reference goes. Once. */
void kf__push_client_kill(kf_push_client_t *client);
/* The abort callback for kf_req_hold, kf_resp_stream_start and kf_req_upgrade (data: the
 * client): the request died, so the client is killed. */
void kf__push_client_abort_cb(kf_req_t *req, void *data);
/* The event's bytes in the client's transport's framing: encode (which appends them to out) runs
 * for the first subscriber that needs them, and the bytes stay with the event for the others. */
const char *kf__push_event_encoding(const kf_push_client_t *client, kf_event_t *event,
                                    void (*encode)(kf_buf_t *out, const kf_event_t *event),
                                    size_t *len);

/* Chunked streams (iframe and SSE). Starts the 200 response; returns 0, or KF_EINVAL when the
 * request is over already (a HEAD request has had its head). */
int kf__push_stream_start(kf_push_client_t *client, const char *content_type);
/* Writes one chunk and notes the time. Returns 0; otherwise the connection is closed and the
 * client killed (KF_ELIMIT for a reader that does not read, KF_EIO, KF_EINVAL). */
int kf__push_stream_write(kf_push_client_t *client, const void *data, size_t len);
/* Ends the response (the client's connection goes on with its next request) and the client. */
void kf__push_stream_end(kf_push_client_t *client);

/* ---- window.c: the recent ephemeral events of the topics windowed clients follow ----
 *
 * Ephemeral events (id 0: typing, read marks, conversation updates) are not stored, so a client
 * that is not connected when one is published never sees it. For windowed transports, each topic
 * they follow gets a window: a subscriber of its own that keeps copies of the topic's latest
 * ephemeral events, each with a sequence number (from one counter per module, never mixed with
 * message ids), at most ephemeral_window_events of them, ephemeral_window_bytes of their
 * allocations, none older than ephemeral_window_ms. A client comes back with the newest number it
 * has (eseq) and gets the kept ones above it. A window lives while clients are attached and
 * ephemeral_window_ms after the last one leaves, so there are at most as many as the topics
 * windowed clients followed in that time, each holding at most its bounds' bytes plus a ring of
 * ephemeral_window_events slots (freed while it keeps nothing). */

typedef struct kf_push_windows kf_push_windows_t;
typedef struct kf_push_window kf_push_window_t;

/* The windows of a module over hub; config (the module's) outlives them. */
kf_push_windows_t *kf__push_windows_new(kf_hub_t *hub, const kf_push_config_t *config);
/* Frees every window (unsubscribing them) and the set; every client has detached. */
void kf__push_windows_free(kf_push_windows_t *windows);
/* The newest sequence number given to an ephemeral event, on any topic: where a client that
 * brings none starts (it has seen nothing before it connected, like a stream). */
uint64_t kf__push_windows_seq(const kf_push_windows_t *windows);
/* The window of topic with one more client; a new one subscribes to the topic now. Attach before
 * the client subscribes: the window, earlier in the topic's list, has then numbered an event by
 * the time the client gets it (kf__push_window_newest). */
kf_push_window_t *kf__push_window_attach(kf_push_windows_t *windows, const char *topic);
/* One client fewer (it is being killed); the last one starts the window's age. */
void kf__push_window_detach(kf_push_window_t *window);
/* The sequence number of the newest ephemeral event published on the topic while the window
 * followed it (kept or not), or 0. */
uint64_t kf__push_window_newest(const kf_push_window_t *window);
/* Calls emit with each kept event numbered above after, oldest first, until one returns
 * non-zero, which is returned (0 otherwise). The event is the window's: take a reference to keep
 * it. emit must not publish. */
int kf__push_window_each(kf_push_window_t *window, uint64_t after,
                         int (*emit)(void *ctx, kf_event_t *event, uint64_t seq), void *ctx);
/* The 1-second tick: drops events past their age, and windows ephemeral_window_ms after their
 * last client. */
void kf__push_windows_sweep(kf_push_windows_t *windows, uint64_t now);
/* Windows now, and in *bytes (unless NULL) what they hold. O(windows). */
size_t kf__push_windows_count(kf_push_windows_t *windows, size_t *bytes);

/* ---- poll.c: the answer of a poll or long poll, {"events":[...],"cursor":"N","eseq":"S"} ---- */

/* The events gathered for the answer. The state of a transport that answers so (poll, long
 * poll) begins with one, which the calls below use. */
typedef struct kf_push_batch {
    kf_buf_t events; /* the events' JSON, comma-separated */
    size_t count;
} kf_push_batch_t;

/* Opens a poll or long poll: reads its eseq (400 for a bad one: returns KF_EINVAL) and holds the
 * request until it is answered. Returns 0 or KF_EINVAL, as start does. */
int kf__push_batch_open(kf_push_client_t *client, kf_req_t *req);
/* Operations such transports share: deliver appends to the batch; end answers with what the
 * batch holds (KF_PUSH_END_FAILED: 500); release frees it. */
int kf__push_batch_deliver(kf_push_client_t *client, kf_event_t *event);
void kf__push_batch_end(kf_push_client_t *client, kf_push_end_t why);
void kf__push_batch_release(kf_push_client_t *client);
/* Answers the client's request with the batch, the client's cursor and eseq, and kills it. */
void kf__push_batch_answer(kf_push_client_t *client);

#endif
