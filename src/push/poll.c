/* poll.c: the short poll, answered once its replay is done with one batch of events and the
 * cursor to come back with, {"events":[...],"cursor":"N"}; and that answer's operations, which
 * the long poll (longpoll.c) shares. */
#include "base/err.h"
#include "push/transport.h"

#define BATCH(client) KF_PUSH_STATE(client, kf_push_batch_t)

int kf__push_batch_deliver(kf_push_client_t *client, kf_event_t *event)
{
    kf_push_batch_t *batch = BATCH(client);
    kf_buf_append_str(&batch->events, batch->count == 0 ? "" : ",");
    kf_buf_append(&batch->events, event->json, event->len);
    batch->count++;
    return 0;
}

void kf__push_batch_answer(kf_push_client_t *client)
{
    kf_push_batch_t *batch = BATCH(client);
    kf_buf_t body;
    kf_buf_init(&body);
    kf_buf_append_str(&body, "{\"events\":[");
    if (batch->events.len > 0)
        kf_buf_append(&body, batch->events.data, batch->events.len);
    kf_buf_printf(&body, "],\"cursor\":\"%llu\"}", (unsigned long long)client->cursor);
    kf_req_t *req = client->req;
    kf_req_detach(req);
    kf__push_client_kill(client);
    kf_resp_json_text(req, 200, body.data, body.len);
    kf_buf_free(&body);
}

void kf__push_batch_end(kf_push_client_t *client, kf_push_end_t why)
{
    if (why != KF_PUSH_END_FAILED) {
        kf__push_batch_answer(client); /* what it has so far: come back with the cursor */
        return;
    }
    kf_req_t *req = client->req;
    kf_req_detach(req);
    kf__push_client_kill(client);
    kf_resp_error(req, 500, "internal", "could not read stored events");
}

void kf__push_batch_release(kf_push_client_t *client)
{
    kf_buf_free(&BATCH(client)->events);
}

static int poll_start(kf_push_client_t *client, kf_req_t *req, uint64_t hold_ms)
{
    (void)hold_ms;
    kf_req_hold(req, kf__push_client_abort_cb, client); /* until its replay is done */
    /* Nothing is in progress that a peer who closed its side must be told: the next poll asks
     * again from the same cursor. */
    kf_req_end_on_eof(req);
    return 0;
}

/* One replay call, one answer: the cursor says where the next poll starts. */
static bool poll_delivered(kf_push_client_t *client)
{
    kf__push_batch_answer(client);
    return false;
}

const kf_push_transport_ops_t kf__push_poll_ops = {
    .follows = false,
    .state_size = sizeof(kf_push_batch_t),
    .start = poll_start,
    .deliver = kf__push_batch_deliver,
    .delivered = poll_delivered,
    .end = kf__push_batch_end,
    .release = kf__push_batch_release,
};
