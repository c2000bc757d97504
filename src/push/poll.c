/* poll.c: the short poll, answered once its replay is done with one batch of events and the
 * cursor and ephemeral sequence number to come back with, {"events":[...],"cursor":"N",
 * "eseq":"S"}; and that answer's operations, which the long poll (longpoll.c) shares. */
#include "base/err.h"
#include "http/parser.h"
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
    kf_buf_printf(&body, "],\"cursor\":\"%llu\",\"eseq\":\"%llu\"}",
                  (unsigned long long)client->cursor, (unsigned long long)client->eseq);
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

int kf__push_batch_open(kf_push_client_t *client, kf_req_t *req)
{
    char value[24];
    int n = kf_http_query_get(req->head->query, "eseq", value, sizeof value);
    if (n != KF_ENOTFOUND) {
        uint64_t eseq;
        if (n < 0 || kf_parse_u64((kf_str_t){value, (size_t)n}, &eseq) != 0) {
            kf_resp_error(req, 400, "bad_request", "eseq must be the number an answer gave");
            return KF_EINVAL;
        }
        /* client->eseq is the newest number given so far: one above it was given by a server
         * before a restart (whose clock was ahead): the client gets all that the window keeps. */
        client->eseq = eseq <= client->eseq ? eseq : 0;
    }
    kf_req_hold(req, kf__push_client_abort_cb, client); /* until it is answered */
    /* It only asks for news: a peer that closes its side is gone for it (the next request asks
     * again from the same cursor), and a long poll must not keep a place among its listener's
     * push connections until the deadline. */
    kf_req_end_on_eof(req);
    return 0;
}

static int poll_start(kf_push_client_t *client, kf_req_t *req, uint64_t hold_ms)
{
    (void)hold_ms;
    return kf__push_batch_open(client, req);
}

/* One replay call, one answer: the cursor says where the next poll starts. */
static bool poll_delivered(kf_push_client_t *client)
{
    kf__push_batch_answer(client);
    return false;
}

const kf_push_transport_ops_t kf__push_poll_ops = {
    .follows = false,
    .windowed = true,
    .state_size = sizeof(kf_push_batch_t),
    .start = poll_start,
    .deliver = kf__push_batch_deliver,
    .delivered = poll_delivered,
    .end = kf__push_batch_end,
    .release = kf__push_batch_release,
};
