/* push_fixture.h: the push module's tests' world: the real HTTP server, a hub and the push module
 * on one loop, a "store" of events with a replay source that answers from inside its call, from
 * an idle callback, or when the test lets it, and a handler that serves every transport:
 * /poll, /longpoll, /short (a long poll held 1 s), /iframe, /sse and /ws, with ?after=N (the
 * cursor) and ?who=S (the listener: visitor 7 unless S says otherwise), all on topic "t".
 * Clients are loop_client.h's. One fixture per test (push_fixture_setup / _teardown). */
#ifndef KF_TEST_PUSH_FIXTURE_H
#define KF_TEST_PUSH_FIXTURE_H

#include "push/push.h"
#include "support/loop_client.h"

#define PF_MAX_EVENTS 128
#define PF_MAX_PENDING 8

/* How the replay source answers. */
typedef enum {
    PF_REPLAY_IDLE,   /* later, from an idle callback: the store's way (the default) */
    PF_REPLAY_SYNC,   /* from inside the call, as chat/live.c does while the store is synchronous */
    PF_REPLAY_MANUAL, /* when the test calls pf_release(): live events can come meanwhile */
} pf_replay_mode_t;

/* One replay call waiting for its answer. */
typedef struct pf_pending {
    uint64_t after;
    size_t limit;
    size_t snapshot; /* events stored when the call was made: what its "read" sees */
    kf_push_emit_fn emit;
    kf_push_replayed_fn replayed;
    void *emit_ctx;
} pf_pending_t;

typedef struct push_fixture {
    uv_loop_t loop;
    uv_idle_t idle; /* answers replay calls in PF_REPLAY_IDLE mode */
    kf_server_t *server;
    kf_hub_t *hub;
    kf_push_t *push;         /* NULL once a test has freed it */
    kf_push_config_t config; /* what push_fixture_setup started it with; see pf_restart */
    pf_replay_mode_t mode;
    int replay_refuse;   /* what replay returns at once (0: it accepts the call) */
    int replay_fail;     /* the rc replayed reports */
    size_t replay_calls; /* calls accepted */
    size_t emit_stops;   /* emits that asked to stop */
    pf_pending_t pending[PF_MAX_PENDING];
    size_t pending_count;
    kf_event_t *stored[PF_MAX_EVENTS]; /* the "store": ids 1..count */
    size_t count;
    size_t received;        /* WebSocket messages seen by the receive callback */
    kf_push_client_t *kept; /* the client that sent "keep", referenced */
} push_fixture_t;

extern push_fixture_t *pf;

/* cmocka setup and teardown: the small test configuration (replay batches of 3, 1 s heartbeats,
 * 8 KiB iframes, 1000-byte WebSocket messages); teardown checks that no replay waits and that
 * every handle closed. WebSocket messages are echoed as {"echo":<message>}; "keep" instead takes
 * a reference on its client (pf->kept). */
int push_fixture_setup(void **state);
int push_fixture_teardown(void **state);
/* Frees the module and starts it again with pf->config (changed by the test). */
void pf_restart(void);

/* Answers the oldest waiting replay call; returns false when none waits. */
bool pf_release(void);
/* Stores an event with the next id (its JSON ends with it: "\"id\":\"N\"}" finds it in every
 * framing) and returns it (the fixture keeps the reference). */
kf_event_t *pf_store(const char *body);
void pf_publish(kf_event_t *event);
/* Stores and publishes, as the chat layer does with a message. */
void pf_store_publish(const char *body);
/* Publishes an ephemeral event (no id): {"type":"typing"}. */
void pf_publish_typing(void);
/* Publishes an ephemeral event named by n, {"type":"typing","n":"<n>"}, with pad bytes of
 * padding in it ("p":"xxx...", left out when 0); returns its JSON's length. */
size_t pf_publish_ephemeral(unsigned n, size_t pad);
/* Subscribers of "t" other than its ephemeral window: the push connections that follow it. */
size_t pf_listeners(void);
/* The "eseq" of a poll's answer in c (fails the test when there is none). */
uint64_t pf_eseq(const lc_client_t *c);

/* A one-shot request: GET path with Connection: close, run until the server has closed. */
lc_client_t *pf_answer(const char *path);
/* Opens /ws?query and waits for its 101 head and first heartbeat. */
lc_client_t *pf_ws_open(const char *query);
/* Checks that events first..last reached c exactly once each, in order. */
void pf_check_events(const lc_client_t *c, uint64_t first, uint64_t last);

#endif
