/* diag_api.c: the connection check (/diag, docs/API.md "The connection check"): a page that tries
 * each of the five push transports from the visitor's or agent's network and times each. Its
 * push endpoints are anonymous on purpose: a throw-away visitor session would write a visitor row
 * (and need cleaning up) for every check, while a check needs no one's events. Each connection
 * follows a topic nobody publishes to, and its "replay" is one diag event made on the spot, so
 * that every transport delivers one event at once (the round trip the page times) and nothing
 * else but heartbeats. Nothing is written: no visitor, conversation or message. A WebSocket of
 * the check may only ping (chat/ws_actions.c); the origin check and the per-address connection
 * limit apply as to any push request. */
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "chat/events.h"
#include "chat/handlers.h"

/* The listener kind of a check's connections ('v' visitor and 'a' agent are the others). */
#define DIAG_KIND 'd'
#define DIAG_TOPIC "diag"

void kf_page_diag(const kf_call_t *call)
{
    kf_page_static(call->req, "diag.html", 9);
}

bool kf_diag_check(kf_req_t *req)
{
    return kf_live_check(req);
}

/* The source's replay: the one event of a check (kf_push_source_t allows emitting before the
 * call returns). */
static int diag_replay_cb(void *ctx, char kind, int64_t subject, uint64_t after, size_t limit,
                          kf_push_emit_fn emit, kf_push_replayed_fn replayed, void *emit_ctx)
{
    (void)ctx;
    (void)kind;
    (void)subject;
    (void)limit;
    /* A poll that comes back with its cursor has had it: the check asks once per transport. */
    if (after == 0) {
        kf_event_t *event = kf_chat_event(0, json_pack("{s:s,s:I}", "type", "diag", "server_time",
                                                       (json_int_t)kf_clock_wall_ms()));
        if (event != NULL) {
            emit(emit_ctx, event);
            kf_event_unref(event);
        }
    }
    replayed(emit_ctx, 0, false);
    return 0;
}

void kf_diag_push(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    static const struct {
        const char *path;
        kf_push_transport_t transport;
    } transports[] = {
        {"/diag/push/poll", KF_PUSH_POLL},     {"/diag/push/longpoll", KF_PUSH_LONGPOLL},
        {"/diag/push/iframe", KF_PUSH_IFRAME}, {"/diag/push/sse", KF_PUSH_SSE},
        {"/diag/push/ws", KF_PUSH_WS},
    };
    uint64_t after;
    if (!kf_call_after(req, &after))
        return; /* kf_live_check has seen it: never */
    for (size_t i = 0; i < sizeof transports / sizeof transports[0]; i++) {
        if (!kf_str_eq(req->head->path, transports[i].path))
            continue;
        kf_push_source_t source = {.topic = DIAG_TOPIC,
                                   .replay = diag_replay_cb,
                                   .ctx = NULL,
                                   .kind = DIAG_KIND,
                                   .subject = 0};
        /* A long poll of the check is answered by its one event at once; the hold is only a
         * bound for one that comes back with its cursor. */
        kf_push_serve(call->app->push, req, transports[i].transport, &source, after, 5000);
        return;
    }
    kf_resp_error(req, 404, "not_found", "no such endpoint");
}
