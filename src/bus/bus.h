/* bus.h: what carries events between kefu nodes. Each node's chat layer publishes on its own hub
 * (push/hub.h); the bus takes what is published there to the other nodes' hubs, which deliver it
 * to their own subscribers. Two kinds: in-process (one node, the default: nothing to carry) and
 * Redis pub/sub (bus/redis.c). Single-threaded: all calls from the loop thread.
 *
 * A node delivers its own events to its own subscribers itself, through its hub, and skips its
 * own echo from Redis (every message names the node that sent it): a node's clients never wait
 * for a round trip to Redis, and keep working while Redis is away. Ephemeral events go at once;
 * message events in id order with the other nodes' (bus/order.h). docs/ARCHITECTURE.md ("Several
 * nodes") says why and what happens when Redis goes away and comes back. */
#ifndef KF_BUS_H
#define KF_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "push/hub.h"

typedef struct kf_bus kf_bus_t;

/* What a bus tells its owner, who decides what to log and what to do. */
typedef enum {
    /* Connected and subscribed: events cross nodes (again). after is the connection's number
     * (kf_bus_stats' connects): the owner reads the store's newest message id now and answers
     * with kf_bus_started. */
    KF_BUS_UP,
    KF_BUS_DOWN, /* the connection failed or was lost (once per outage; retrying meanwhile) */
    /* This node may have missed events from others (the bus was away and is back, or another
     * node says its events were lost on the way): the owner makes its push clients catch up
     * from the store by their cursors (kf_push_drain), since live events alone cannot be
     * trusted now. */
    KF_BUS_GAP,
    /* A message event from another node, about to be delivered here: detail is its topic, after
     * its id. What this node knows of the store (the newest message id, which lets a replay skip
     * its query) must now count it: another process wrote it. */
    KF_BUS_MESSAGE,
    /* An ephemeral event (typing, read, ...) published on this loop or heard from another loop
     * of the process, about to be delivered here (the loops bus only): detail is its topic. A
     * poll client's next request may come to any loop: the owner keeps the topic's window for
     * it (kf_push_keep_window). */
    KF_BUS_EPHEMERAL,
    /* A message id this node waited for did not come in time (bus/order.h) and what came after
     * it went out without it: after is the id below the hole. A client that took a higher id and
     * is not connected when the missing one comes (late) would never get it: the owner has
     * clients that come back replay from after for a while (kf_push_rewind). detail is "" for a
     * hole given up here, "another loop" for one given up by another loop of the process (the
     * loops bus tells every loop: a poll client may come back to any). */
    KF_BUS_HOLE,
} kf_bus_change_t;
/* detail: for KF_BUS_DOWN, why (hiredis's words); for KF_BUS_HOLE, whose; otherwise "". after: for
 * KF_BUS_UP, the connection's number; for KF_BUS_GAP, the message id above which messages may have
 * been missed (kf_push_rewind's floor; UINT64_MAX when only ephemeral events were); for
 * KF_BUS_HOLE, the id below the hole. */
typedef void (*kf_bus_notify_fn)(void *ctx, kf_bus_change_t change, const char *detail,
                                 uint64_t after);

/* A bus address, parsed: "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" (an IPv6 HOST in
 * brackets; PORT 6379 and DB 0 when left out). USER is for Redis 6's ACLs; without it AUTH
 * takes the password alone (requirepass). USER and PASSWORD may carry %XX escapes (an '@' or a
 * ':' in a password). */
typedef struct kf_bus_url {
    char host[256];     /* NUL-terminated, brackets removed */
    int port;           /* 1 to 65535 */
    char user[128];     /* "" when none */
    char password[256]; /* "" when none: no AUTH is sent */
    int db;             /* SELECTed when not 0; 0 to 1023 */
} kf_bus_url_t;

/* Parses url into out. Returns 0 or KF_EINVAL (another scheme, no host, a bad port or database,
 * a user without a password, a query). */
int kf_bus_url_parse(const char *url, kf_bus_url_t *out);
/* Writes url into out (size bytes) with the password replaced by "***", for logs: the password
 * never reaches a log line. A url that does not parse comes out as "(a bad address)". */
void kf_bus_url_redact(const char *url, char *out, size_t size);

/* The in-process bus: one node, nothing to carry; always ready. */
kf_bus_t *kf_bus_new_local(kf_hub_t *hub);
/* A Redis bus on loop, relaying hub's publishes: connects in the background (never blocking on
 * the network: a name is resolved with uv_getaddrinfo, off the loop, before hiredis connects to
 * the address) and reconnects after a loss by itself, with backoff; not ready until connected,
 * authenticated (AUTH, SELECT on both connections) and subscribed. notify (may be NULL) is called
 * on the loop, never from inside this call; KF_BUS_GAP follows every kf_bus_started, since events
 * may have passed while the bus was not ready. newest is the store's newest message id at the
 * start: where this node stands until it delivers a newer one, so that a loss of Redis before then
 * rewinds its clients to it, not to 0 (every agent would replay the whole history), and where its
 * clients replay from after its first connection when messages of its own went out before it
 * (Redis was away when it started). Returns NULL only on a bad url. hub must outlive the bus. */
kf_bus_t *kf_bus_new_redis(uv_loop_t *loop, kf_hub_t *hub, const char *url, uint64_t newest,
                           kf_bus_notify_fn notify, void *notify_ctx);
/* ---- the loops of one process (bus/loops.c) ----
 * kefu --loops N runs N event loops, each with its own hub; a group carries each loop's publishes
 * to the others' hubs (a lock-free queue per pair of loops, base/xq.h, and a uv_async_send), and
 * delivers message events in id order on each loop (bus/order.h) as the Redis bus does across
 * nodes: the same problem at a smaller scale. Each event is copied once per other loop, since an
 * event's reference count belongs to one thread. */
typedef struct kf_loops kf_loops_t;

/* A group of count loops (1 or more). newest is the store's newest message id before any loop
 * runs (store.h, message_newest): each loop's order starts there, so that right after a start a
 * loop's own first message waits for a lower id still crossing from another loop, as it would
 * later (a long poll answered with the higher id would come back past the lower one). */
kf_loops_t *kf_loops_new(size_t count, uint64_t newest);
/* The bus of loop index (each index once): relays hub's publishes to the group's other loops and
 * delivers theirs here; KF_BUS_MESSAGE for each message event from another loop, on this loop.
 * Call every member's before any of the loops runs (their threads then see the group whole). */
kf_bus_t *kf_bus_new_loops(kf_loops_t *group, size_t index, uv_loop_t *loop, kf_hub_t *hub,
                           kf_bus_notify_fn notify, void *notify_ctx);
/* Closes loop index's wake-up handle (run its loop after), on its thread, once no loop publishes
 * any more: every member's bus freed. */
void kf_loops_close(kf_loops_t *group, size_t index);
/* Frees the group and what is still queued in it, after kf_loops_close of every member. NULL is
 * ignored. */
void kf_loops_free(kf_loops_t *group);

/* The owner's answer to KF_BUS_UP (connection: its after): the store's newest message id, read
 * after it (known false when the read failed). A node that has just subscribed hears only what
 * is published from then on, while ids below it may still be on their way and one of its own may
 * come first: so from KF_BUS_UP to this call message events, its own and others', wait (bus/
 * order.h); then every id up to newest counts as delivered (the store has it, and KF_BUS_GAP,
 * said first, sends every client back to the store) and the next to go out is newest + 1,
 * whoever publishes it. Unknown, the order starts at the next message, as it would without an
 * owner. An answer for an earlier connection is ignored; a bus that never says KF_BUS_UP
 * ignores every answer. */
void kf_bus_started(kf_bus_t *bus, uint64_t connection, bool known, uint64_t newest);
/* Whether events published now reach the other nodes (a Redis bus connected and subscribed). */
bool kf_bus_ready(const kf_bus_t *bus);
/* "in-process" or "redis", for /metrics and logs. */
const char *kf_bus_kind(const kf_bus_t *bus);
/* Events this node sent to the bus, received from other nodes, and lost (published while the bus
 * was away, or never confirmed by Redis). */
typedef struct kf_bus_stats {
    uint64_t sent, received, lost;
    uint64_t malformed; /* messages on the channel that did not decode (dropped) */
    uint64_t connects;  /* times the bus became ready */
    uint64_t holes;     /* message ids waited for in vain and given up (bus/order.h) */
} kf_bus_stats_t;
void kf_bus_stats(const kf_bus_t *bus, kf_bus_stats_t *out);
/* ---- counters the nodes share (docs/SECURITY.md, "Across nodes") ----
 * A counter is a Redis hash (key) with one field per node: each node adds to its own field and
 * reads the others'. The owner keeps its own count locally and merges the others' when the
 * answer comes: nothing waits for Redis but the owner's callback. */

/* The answer: rc 0 and others, the sum of the other nodes' fields (live nodes' only when asked:
 * see kf_bus_count); or rc KF_EUNAVAIL when the connection went before the answer came. */
typedef void (*kf_bus_count_fn)(void *data, int rc, int64_t others);

/* Adds delta (may be 0: a read) to this node's field of the counter key, makes the key expire
 * ttl_ms from now (when delta is not 0), and answers cb(data, ...) with the others' sum, once,
 * on the loop, never from inside this call. live_only: for counts of things a node holds (push
 * connections), which a crashed node no longer holds: the field is this connection's to Redis
 * (a new one each KF_BUS_UP, when the owner counts what it holds again: changes made while Redis
 * was away are lost), and only sessions alive now count (a heartbeat every KF_BUS_HEARTBEAT_MS,
 * dead after 4 missed). Without it the field is the node's for as long as it runs, and every
 * field counts until the key expires (uses within a window, which a crash does not undo). Returns
 * 0, or KF_EUNAVAIL (an in-process bus, a Redis bus not ready: cb is never called). key is copied.
 */
int kf_bus_count(kf_bus_t *bus, const char *key, int64_t delta, int64_t ttl_ms, bool live_only,
                 kf_bus_count_fn cb, void *data);
#define KF_BUS_HEARTBEAT_MS 5000
/* Deletes the counter key, every node's field (a lock-out lifted by a successful login). Sent
 * and forgotten: returns 0 when sent, or KF_EUNAVAIL. */
int kf_bus_forget(kf_bus_t *bus, const char *key);

/* Stops relaying and frees the bus (a Redis bus's connections and timer close asynchronously: run
 * the loop after). NULL is ignored. */
void kf_bus_free(kf_bus_t *bus);

/* ---- the bytes on the wire (bus/codec.c) ----
 * One Redis message is one line of header, then the event's JSON:
 *   "kf1 " KIND " " NODE " " ID " " BORN " " TOPIC "\n" JSON
 * KIND is 'e' (an event on TOPIC), 'p' (an event on every topic starting with TOPIC) or 'r' (the
 * sender lost events on their way: every other node resyncs from ID, the newest message id below
 * every lost one, or UINT64_MAX when none was a message; TOPIC "-" and JSON "{}"); NODE is
 * the sender's id, 16 lower-case hex digits; ID the event's cursor (a message's store id, 0 for an
 * ephemeral event) and BORN its born_ms, decimal; TOPIC 1 to KF_BUS_MAX_TOPIC printable ASCII
 * bytes without spaces (for 'e', one or more topics joined by commas: one event published to
 * each, delivered together); JSON an object ('{' to '}') without NUL bytes.
 *
 * The request that caused an 'e' event rides as one more element of its topic list, last:
 * ",@" and its id (1 to 64 of A-Z a-z 0-9 . _ : -), when it fits in KF_BUS_MAX_TOPIC. No hub
 * topic starts with '@', so a node that predates it delivers the event as before (to the real
 * topics, and to an "@..." topic nobody follows): the change needs no new version. An "@..."
 * element that is not last, alone, or not a valid id is a topic like any other. */
#define KF_BUS_NODE_LEN 16
#define KF_BUS_MAX_TOPIC 200

typedef enum {
    KF_BUS_EVENT = 'e',
    KF_BUS_PREFIX = 'p',
    KF_BUS_RESYNC = 'r',
} kf_bus_kind_t;

/* A decoded message: views into the bytes it was decoded from. */
typedef struct kf_bus_msg {
    kf_bus_kind_t kind;
    const char *node; /* KF_BUS_NODE_LEN bytes, not NUL-terminated */
    uint64_t id;
    int64_t born_ms;
    const char *topic; /* topic_len bytes, not NUL-terminated (the request id's element left out) */
    size_t topic_len;
    const char *request_id; /* request_id_len bytes, not NUL-terminated; NULL when none */
    size_t request_id_len;
    const char *json; /* json_len bytes */
    size_t json_len;
} kf_bus_msg_t;

/* Appends the message to out (base/buf.h; cleared first). topic and json as above: the caller's
 * (an event's json is an object without NUL bytes, the hub's topics are short). request_id (NULL
 * or "": none) goes with an 'e' event when it is a valid id and fits; it is left out otherwise.
 * Returns 0 or KF_EINVAL (a topic or node that the decoder would refuse: nothing is sent). */
int kf_bus_encode(kf_buf_t *out, kf_bus_kind_t kind, const char *node, uint64_t id, int64_t born_ms,
                  const char *topic, const char *request_id, const char *json, size_t json_len);
/* Decodes len bytes (any bytes: they come from the network) into msg. Returns 0 or KF_EPROTO. */
int kf_bus_decode(const char *data, size_t len, kf_bus_msg_t *msg);

#endif
