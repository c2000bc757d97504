/* longpoll.c: the long poll: answered (poll.c's {"events":[...],"cursor":"N","eseq":"S"}) with
 * the events its replay and its topic's ephemeral window found, else with those that arrived
 * meanwhile, else held until the first live event or its deadline (empty). */
#include "base/clock.h"
#include "push/transport.h"

typedef struct longpoll {
    kf_push_batch_t batch; /* first: poll.c's operations use it */
    uint64_t deadline_ms;  /* answer empty at this time (kf_clock_mono_ms) */
} longpoll_t;

static int longpoll_start(kf_push_client_t *client, kf_req_t *req, uint64_t hold_ms)
{
    longpoll_t *state = KF_PUSH_STATE(client, longpoll_t);
    state->deadline_ms =
        kf_clock_mono_ms() + (hold_ms != 0 ? hold_ms : client->config->longpoll_hold_ms);
    return kf__push_batch_open(client, req);
}

static bool longpoll_delivered(kf_push_client_t *client)
{
    if (KF_PUSH_STATE(client, longpoll_t)->batch.count == 0)
        return true; /* nothing yet: held */
    kf__push_batch_answer(client);
    return false;
}

/* At the deadline, answered empty; a replay in flight is waited for (its events answer). */
static void longpoll_heartbeat(kf_push_client_t *client, uint64_t now)
{
    if (now >= KF_PUSH_STATE(client, longpoll_t)->deadline_ms && !client->replaying)
        kf__push_batch_answer(client);
}

const kf_push_transport_ops_t kf__push_longpoll_ops = {
    .follows = true,
    .windowed = true,
    .state_size = sizeof(longpoll_t),
    .start = longpoll_start,
    .deliver = kf__push_batch_deliver,
    .delivered = longpoll_delivered,
    .heartbeat = longpoll_heartbeat,
    .end = kf__push_batch_end,
    .release = kf__push_batch_release,
};
