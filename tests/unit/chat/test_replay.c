/* test_replay.c: the push module's replay source (src/chat/replay.c) over a real SQLite store:
 * stored messages after a cursor come back in order and in pages; a visitor's stream sees only
 * their own; a cursor known to be current costs no query and its end comes later, never from
 * inside the call; forgetting (a restart) queries again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/clock.h"
#include "base/err.h"
#include "chat/replay.h"
#include "store/sync.h"
#include "support/sqlite_db.h"

typedef struct replayed {
    int emitted;
    uint64_t last_id;
    int ends;
    int rc;
    bool more;
} replayed_t;

static int emit_cb(void *ctx, kf_event_t *event)
{
    replayed_t *r = ctx;
    assert_true(event->id > r->last_id); /* in order */
    r->last_id = event->id;
    r->emitted++;
    return 0;
}

static void replayed_cb(void *ctx, int rc, bool more)
{
    replayed_t *r = ctx;
    r->ends++;
    r->rc = rc;
    r->more = more;
}

typedef struct world {
    sqlite_db_t *db;
    kf_store_t *store;
    kf_replay_t *replay;
    int64_t visitors[2];
    int64_t last[2]; /* each visitor's newest message */
} world_t;

/* A fresh store and replay module. */
static void world_open(world_t *w)
{
    memset(w, 0, sizeof *w);
    w->db = sqlite_db_create();
    assert_int_equal(kf_store_open_sqlite(w->db->path, "OFF", &w->store), 0);
    w->replay = kf_replay_new(w->store);
}

static void world_close(world_t *w)
{
    kf_replay_free(w->replay);
    kf_store_close(w->store);
    sqlite_db_check(w->db);
    sqlite_db_destroy(w->db);
}

/* A visitor (n tells their token apart) with count messages, whose ids go to ids[], in one
 * conversation (its id in *conversation unless NULL). */
static int64_t visitor_with_messages(world_t *w, int n, int count, int64_t *ids,
                                     int64_t *conversation)
{
    char hash[65];
    snprintf(hash, sizeof hash, "%064d", n);
    int64_t visitor = 0;
    assert_int_equal(kf_store_sync_visitor_create(w->store, hash, "", 1, &visitor), 0);
    for (int i = 0; i < count; i++) {
        kf_message_new_t m = {.visitor_id = visitor,
                              .sender = KF_SENDER_VISITOR,
                              .body = "hello",
                              .now = kf_clock_wall_ms()};
        kf_store_sync_message_t out;
        assert_int_equal(kf_store_sync_message_add(w->store, &m, &out), 0);
        ids[i] = out.id;
        if (conversation != NULL)
            *conversation = out.conversation_id;
    }
    return visitor;
}

/* Runs the store's callbacks and the deferred replays until nothing is pending. */
static void settle(world_t *w)
{
    w->store->ops->flush(w->store);
    kf_replay_run_deferred(w->replay);
}

/* One replay call, run to its end. */
static replayed_t replay(world_t *w, char kind, int64_t subject, uint64_t after, size_t limit)
{
    replayed_t r = {0};
    kf_push_source_t source = kf_replay_source(w->replay, kind, subject, "t");
    assert_int_equal(
        source.replay(source.ctx, kind, subject, after, limit, emit_cb, replayed_cb, &r), 0);
    assert_int_equal(r.ends, 0); /* never from inside the call */
    settle(w);
    assert_int_equal(r.ends, 1);
    return r;
}

/* A replay known to need no query: it reads nothing, finds nothing, and ends from the deferred
 * run, not inside the call. */
static void replay_without_query(world_t *w, char kind, int64_t subject, uint64_t after)
{
    kf_push_source_t source = kf_replay_source(w->replay, kind, subject, "t");
    replayed_t r = {0};
    assert_int_equal(source.replay(source.ctx, kind, subject, after, 10, emit_cb, replayed_cb, &r),
                     0);
    assert_int_equal(r.ends, 0);
    assert_int_equal(kf_replay_run_deferred(w->replay), 1); /* no store read was queued */
    assert_int_equal(r.ends, 1);
    assert_int_equal(r.emitted, 0);
}

static void test_replays(void **state)
{
    (void)state;
    world_t w;
    world_open(&w);
    for (int v = 0; v < 2; v++) {
        int64_t ids[5];
        w.visitors[v] = visitor_with_messages(&w, v + 1, 5, ids, NULL);
        w.last[v] = ids[4];
    }
    /* Agents see every message; a visitor their own; pages of limit with more. */
    replayed_t r = replay(&w, 'a', 1, 0, 100);
    assert_int_equal(r.emitted, 10);
    assert_false(r.more);
    r = replay(&w, 'v', w.visitors[0], 0, 100);
    assert_int_equal(r.emitted, 5);
    assert_true(r.last_id == (uint64_t)w.last[0]);
    r = replay(&w, 'v', w.visitors[1], 0, 3);
    assert_int_equal(r.emitted, 3);
    assert_true(r.more);
    r = replay(&w, 'v', w.visitors[1], r.last_id, 3);
    assert_int_equal(r.emitted, 2);
    assert_int_equal(r.rc, 0);

    /* A query that found nothing above a cursor taught the module: the same cursor again needs no
     * query, and still ends later. And a noted message moves the mark. */
    r = replay(&w, 'v', w.visitors[1], (uint64_t)w.last[1], 10);
    assert_int_equal(r.emitted, 0);
    kf_replay_note_message(w.replay, w.visitors[1], w.last[1] + 100);
    replay_without_query(&w, 'v', w.visitors[1], (uint64_t)w.last[1] + 100);
    /* A cursor below the noted id is not known to be current: it queries (and finds nothing:
     * the note is ahead of what is stored). */
    r = replay(&w, 'v', w.visitors[1], (uint64_t)w.last[1], 10);
    assert_int_equal(r.emitted, 0);

    /* Forgotten (a restarted server): queried again, and found. */
    kf_replay_forget(w.replay);
    r = replay(&w, 'a', 1, (uint64_t)w.last[0], 100);
    assert_int_equal(r.emitted, 5);

    world_close(&w);
}

/* Two loops: this one notes its own commits 4 and 5 at once, and the other loop's 3 only when it
 * crosses, after them. A stream back with cursor 3 (it took 3 on the other loop) missed 4 and 5,
 * which went out here before it came: it must replay them. Lowered to 3 by the late note, the
 * mark made that replay a no-query one, and a long poll then answered with 6 and lost 4 and 5 (CI's
 * burst through nginx, a message or two in a thousand). */
static void test_replays_after_notes_out_of_order(void **state)
{
    (void)state;
    world_t w;
    world_open(&w);
    int64_t ids[5];
    w.visitors[0] = visitor_with_messages(&w, 3, 5, ids, NULL);
    kf_replay_note_message(w.replay, w.visitors[0], ids[3]);
    kf_replay_note_message(w.replay, w.visitors[0], ids[4]);
    kf_replay_note_message(w.replay, w.visitors[0], ids[2]);
    kf_replay_note_message(w.replay, 0, ids[4]);
    kf_replay_note_message(w.replay, 0, ids[2]);
    replayed_t r = replay(&w, 'v', w.visitors[0], (uint64_t)ids[2], 100);
    assert_int_equal(r.emitted, 2);
    assert_true(r.last_id == (uint64_t)ids[4]);
    r = replay(&w, 'a', 1, (uint64_t)ids[2], 100);
    assert_int_equal(r.emitted, 2);
    /* The mark stays at the newest: a stream back with it needs no query. */
    replay_without_query(&w, 'v', w.visitors[0], (uint64_t)ids[4]);

    world_close(&w);
}

/* A store whose visitor read forgot to skip private notes (it answers with the agents' read of
 * everything), to show that the replay keeps them from a visitor's stream all the same. */
typedef struct leaky_store {
    kf_store_t base;
    kf_store_t *real;
    kf_store_ops_t ops;
} leaky_store_t;

static leaky_store_t *leaky_of(kf_store_t *store)
{
    return (leaky_store_t *)store;
}

static int leaky_messages_of_visitor(kf_store_t *store, int64_t visitor_id, int64_t after_id,
                                     size_t limit, kf_store_message_cb each, kf_store_done_cb done,
                                     void *ctx)
{
    (void)visitor_id;
    kf_store_t *real = leaky_of(store)->real;
    return real->ops->messages_all(real, after_id, limit, each, done, ctx);
}

static int leaky_messages_all(kf_store_t *store, int64_t after_id, size_t limit,
                              kf_store_message_cb each, kf_store_done_cb done, void *ctx)
{
    kf_store_t *real = leaky_of(store)->real;
    return real->ops->messages_all(real, after_id, limit, each, done, ctx);
}

/* A visitor's replay never carries a private note, from any cursor, and a note does not move the
 * visitor's "nothing above" mark; the agents' replay carries every note. */
static void test_replays_skip_notes(void **state)
{
    (void)state;
    world_t w;
    world_open(&w);
    int64_t agent = 0;
    assert_int_equal(
        kf_store_sync_agent_create(w.store, "ana@example.com", "Ana", "agent", "x", 1, &agent), 0);
    int64_t hello, conversation;
    w.visitors[0] = visitor_with_messages(&w, 7, 1, &hello, &conversation);
    /* reply, note, note, reply, note: ids[0..4] */
    static const bool notes[] = {false, true, true, false, true};
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        kf_message_new_t m = (kf_message_new_t){.conversation_id = conversation,
                                                .sender = KF_SENDER_AGENT,
                                                .agent_id = agent,
                                                .body = notes[i] ? "a note" : "a reply",
                                                .now = kf_clock_wall_ms(),
                                                .is_private = notes[i]};
        kf_store_sync_message_t added;
        assert_int_equal(kf_store_sync_message_add(w.store, &m, &added), 0);
        ids[i] = added.id;
    }
    replayed_t r = replay(&w, 'v', w.visitors[0], 0, 100);
    assert_int_equal(r.emitted, 3); /* hello and the two replies */
    assert_true(r.last_id == (uint64_t)ids[3]);
    for (int i = 0; i < 5; i++) { /* resuming from any cursor: only the replies after it */
        r = replay(&w, 'v', w.visitors[0], (uint64_t)ids[i], 100);
        assert_int_equal(r.emitted, i < 3 ? 1 : 0);
    }
    r = replay(&w, 'a', agent, 0, 100);
    assert_int_equal(r.emitted, 6);
    assert_true(r.last_id == (uint64_t)ids[4]);

    /* The live path notes a note for the agents only: a visitor whose cursor is their newest
     * message still needs no query, and finds nothing. */
    kf_replay_note_message(w.replay, w.visitors[0], ids[3]);
    kf_replay_note_message(w.replay, 0, ids[4]);
    replay_without_query(&w, 'v', w.visitors[0], (uint64_t)ids[3]);

    /* A backend whose visitor read leaks notes still leaks nothing to the visitor's stream. */
    leaky_store_t leaky = {.real = w.store, .ops = *w.store->ops};
    leaky.ops.messages_of_visitor = leaky_messages_of_visitor;
    leaky.ops.messages_all = leaky_messages_all;
    leaky.base.ops = &leaky.ops;
    kf_replay_t *second = kf_replay_new(&leaky.base);
    kf_replay_t *kept = w.replay;
    w.replay = second;
    r = replay(&w, 'v', w.visitors[0], 0, 100);
    assert_int_equal(r.emitted, 3);
    r = replay(&w, 'v', w.visitors[0], (uint64_t)ids[3], 100);
    assert_int_equal(r.emitted, 0);
    w.replay = kept;
    kf_replay_free(second);

    world_close(&w);
}

/* A visitor created on this loop has no message: their first stream, from cursor 0, needs no
 * query. Their first message, noted, takes that back for cursor 0; and a later note of 0 (the
 * creation heard late) does not lower the mark. */
static void test_replays_new_visitor(void **state)
{
    (void)state;
    world_t w;
    world_open(&w);
    int64_t none;
    w.visitors[0] = visitor_with_messages(&w, 9, 0, &none, NULL);
    kf_replay_note_new_visitor(w.replay, w.visitors[0]);
    replay_without_query(&w, 'v', w.visitors[0], 0);
    int64_t ids[1];
    kf_message_new_t m = {.visitor_id = w.visitors[0],
                          .sender = KF_SENDER_VISITOR,
                          .body = "hello",
                          .now = kf_clock_wall_ms()};
    kf_store_sync_message_t out;
    assert_int_equal(kf_store_sync_message_add(w.store, &m, &out), 0);
    ids[0] = out.id;
    kf_replay_note_message(w.replay, w.visitors[0], ids[0]);
    kf_replay_note_new_visitor(w.replay, w.visitors[0]);
    replayed_t r = replay(&w, 'v', w.visitors[0], 0, 100);
    assert_int_equal(r.emitted, 1);
    replay_without_query(&w, 'v', w.visitors[0], (uint64_t)ids[0]);

    world_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replays),
        cmocka_unit_test(test_replays_skip_notes),
        cmocka_unit_test(test_replays_after_notes_out_of_order),
        cmocka_unit_test(test_replays_new_visitor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
