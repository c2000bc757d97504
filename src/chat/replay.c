/* replay.c: replays of stored messages for push connections, and the table of what they can
 * skip. */
#include "chat/replay.h"

#include <stdlib.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "chat/events.h"

/* Slots of the per-visitor table: 16 bytes each, allocated on first use. */
#define NEWEST_SLOTS 16384

typedef struct newest {
    int64_t visitor_id; /* 0: an empty slot */
    int64_t message_id; /* none of the visitor's stored messages is above it */
} newest_t;

/* One replay call, on its way through the store (or deferred, when it needs no query). */
typedef struct call {
    struct call *next; /* in replay->deferred */
    kf_replay_t *replay;
    int64_t visitor_id; /* 0 for agents: every conversation */
    uint64_t after;
    size_t limit;
    kf_push_emit_fn emit;
    kf_push_replayed_fn replayed;
    void *emit_ctx;
    int stopped_by;   /* what emit_cb returned to stop the query, or 0 */
    int emit_stopped; /* what emit returned to stop it, or 0 */
} call_t;

struct kf_replay {
    kf_store_t *store;
    newest_t *newest_by_visitor; /* NEWEST_SLOTS, or NULL before the first use */
    int64_t newest_overall;      /* over all messages; -1 until known */
    call_t *deferred, *deferred_tail;
    void (*notify)(void *data);
    void *notify_data;
};

kf_replay_t *kf_replay_new(kf_store_t *store)
{
    kf_replay_t *replay = kf_xcalloc(1, sizeof *replay);
    replay->store = store;
    replay->newest_overall = -1;
    return replay;
}

void kf_replay_free(kf_replay_t *replay)
{
    if (replay == NULL)
        return;
    while (replay->deferred != NULL) {
        call_t *next = replay->deferred->next;
        free(replay->deferred);
        replay->deferred = next;
    }
    free(replay->newest_by_visitor);
    free(replay);
}

void kf_replay_set_notify(kf_replay_t *replay, void (*notify)(void *data), void *data)
{
    replay->notify = notify;
    replay->notify_data = data;
}

static newest_t *newest_slot(kf_replay_t *replay, int64_t visitor_id)
{
    if (replay->newest_by_visitor == NULL)
        replay->newest_by_visitor = kf_xcalloc(NEWEST_SLOTS, sizeof *replay->newest_by_visitor);
    return &replay->newest_by_visitor[(uint64_t)visitor_id % NEWEST_SLOTS];
}

/* No stored message of the visitor is above message_id. Never lowered: notes come in commit
 * order from this loop's own commits, but another loop's commits cross to it a moment later, so
 * a lower id may be noted after a higher one that is delivered already. Lowered to it, the mark
 * would let a stream that comes back with the lower id skip its replay and never get the higher
 * one (a long poll answered with 748 on the other loop, back here after 749 and 750 went out). */
static void remember_visitor(kf_replay_t *replay, int64_t visitor_id, int64_t message_id)
{
    newest_t *slot = newest_slot(replay, visitor_id);
    if (slot->visitor_id == visitor_id && slot->message_id >= message_id)
        return;
    slot->visitor_id = visitor_id;
    slot->message_id = message_id;
}

/* No stored message is above message_id. */
static void remember_overall(kf_replay_t *replay, int64_t message_id)
{
    if (message_id > replay->newest_overall)
        replay->newest_overall = message_id;
}

void kf_replay_note_message(kf_replay_t *replay, int64_t visitor_id, int64_t message_id)
{
    /* Every message stored up to the newest noted is noted before it is delivered here, and one
     * stored since but not yet noted will be delivered after any stream that skips its replay now
     * has subscribed. The notes themselves may come out of order (remember_visitor). */
    if (visitor_id != 0)
        remember_visitor(replay, visitor_id, message_id);
    remember_overall(replay, message_id);
}

void kf_replay_note_new_visitor(kf_replay_t *replay, int64_t visitor_id)
{
    /* A visitor just created has no message: nothing is above 0. Their first stream, which opens
     * with cursor 0, then needs no query; a message stored for them later is noted before it is
     * delivered here. */
    if (visitor_id > 0)
        remember_visitor(replay, visitor_id, 0);
}

/* True when nothing stored is above after for this stream, as far as we know without a query. */
static bool nothing_to_replay(kf_replay_t *replay, int64_t visitor_id, uint64_t after)
{
    if (after > INT64_MAX)
        return false;
    if (visitor_id == 0)
        return replay->newest_overall >= 0 && (int64_t)after >= replay->newest_overall;
    newest_t *slot = newest_slot(replay, visitor_id);
    return slot->visitor_id == visitor_id && (int64_t)after >= slot->message_id;
}

/* A query found nothing above after: no stored message of the stream is. (A message committed
 * since is published later, and noted then.) */
static void note_nothing_above(kf_replay_t *replay, int64_t visitor_id, uint64_t after)
{
    if (after > INT64_MAX)
        return;
    if (visitor_id == 0)
        remember_overall(replay, (int64_t)after);
    else
        remember_visitor(replay, visitor_id, (int64_t)after);
}

static int emit_cb(void *ctx, const kf_message_t *m)
{
    call_t *call = ctx;
    /* The visitor's read skips notes already; this is the second lock on that door, so that a
     * store backend that forgot it still leaks nothing to a visitor's stream. */
    if (call->visitor_id != 0 && kf_chat_audience_visitor(m) == 0)
        return 0;
    kf_event_t *event = kf_chat_message_event(m);
    if (event == NULL) {
        call->stopped_by = KF_ENOMEM;
        return KF_ENOMEM;
    }
    int rc = call->emit(call->emit_ctx, event);
    kf_event_unref(event);
    call->stopped_by = rc;
    call->emit_stopped = rc;
    return rc;
}

static void queried_cb(void *ctx, const kf_store_result_t *r)
{
    call_t *call = ctx;
    if (r->rc == 0 && r->count == 0)
        note_nothing_above(call->replay, call->visitor_id, call->after);
    /* The transport decides what to answer; the failure of the store is ours to log. A stop
     * asked for by emit (its client is gone) is no failure. */
    if (r->rc != 0 && r->rc != call->stopped_by)
        kf_error("store failure while replaying: %s", kf_strerror(r->rc));
    call->replayed(call->emit_ctx, r->rc == call->emit_stopped ? 0 : r->rc,
                   r->count >= (int64_t)call->limit);
    free(call);
}

/* The source's replay (kf_push_source_t): a query of the store, whose rows are emitted. */
static int replay_cb(void *ctx, char kind, int64_t subject, uint64_t after, size_t limit,
                     kf_push_emit_fn emit, kf_push_replayed_fn replayed, void *emit_ctx)
{
    kf_replay_t *replay = ctx;
    call_t *call = kf_xcalloc(1, sizeof *call);
    *call = (call_t){.replay = replay,
                     .visitor_id = kind == 'v' ? subject : 0,
                     .after = after,
                     .limit = limit,
                     .emit = emit,
                     .replayed = replayed,
                     .emit_ctx = emit_ctx};
    /* Most streams open with a current cursor (a page load, a reconnect): no query for them. */
    if (nothing_to_replay(replay, call->visitor_id, after)) {
        if (replay->deferred == NULL)
            replay->deferred = call;
        else
            replay->deferred_tail->next = call;
        replay->deferred_tail = call;
        if (replay->notify != NULL)
            replay->notify(replay->notify_data);
        return 0;
    }
    kf_store_t *store = replay->store;
    int64_t from = after > INT64_MAX ? INT64_MAX : (int64_t)after;
    int rc = call->visitor_id != 0
                 ? store->ops->messages_of_visitor(store, call->visitor_id, from, limit, emit_cb,
                                                   queried_cb, call)
                 : store->ops->messages_all(store, from, limit, emit_cb, queried_cb, call);
    if (rc != 0) {
        kf_error("store failure while replaying: %s", kf_strerror(rc));
        free(call);
    }
    return rc;
}

void kf_replay_forget(kf_replay_t *replay)
{
    free(replay->newest_by_visitor);
    replay->newest_by_visitor = NULL;
    replay->newest_overall = -1;
}

size_t kf_replay_run_deferred(kf_replay_t *replay)
{
    call_t *call = replay->deferred;
    replay->deferred = replay->deferred_tail = NULL;
    size_t count = 0;
    while (call != NULL) {
        call_t *next = call->next;
        call->replayed(call->emit_ctx, 0, false);
        free(call);
        call = next;
        count++;
    }
    return count;
}

kf_push_source_t kf_replay_source(kf_replay_t *replay, char kind, int64_t subject,
                                  const char *topic)
{
    return (kf_push_source_t){
        .topic = topic, .replay = replay_cb, .ctx = replay, .kind = kind, .subject = subject};
}
