/* test_sqlite.c: the SQLite backend: the store suite (tests/unit/support/store_suite.h) through its
 * factory, then what only SQLite has: the writer thread's batches, reads that see committed rows
 * only while a batch waits, a loop that keeps turning while a batch commits, the checkpointer,
 * opening and migrating, and a full disk (a VFS that fails writes on demand). */
#include "support/store_suite.h"
#include "support/shim_vfs.h"
#include "support/sqlite_db.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/err.h"
#include "store/search_text.h"
#include "store/sqlite_internal.h"

/* ---- a VFS that can run out of space ---- */

/* When set, every write to a database or WAL file fails with SQLITE_FULL, as on a full disk. */
static atomic_bool disk_full;
/* When set, the WAL index (shared memory, mapped 32 KiB at a time) cannot grow: the unix VFS then
 * answers SQLITE_IOERR_SHMSIZE, as it does when the disk is full just as the index must grow. */
static atomic_bool shm_full;

/* A database or its log: its writes fail when the disk is full. */
static int full_write(const shim_file_t *file)
{
    bool counted = (file->flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0;
    return counted && atomic_load(&disk_full) ? SQLITE_FULL : SQLITE_OK;
}

static int full_shm_grow(const shim_file_t *file)
{
    (void)file;
    return atomic_load(&shm_full) ? SQLITE_IOERR_SHMSIZE : SQLITE_OK;
}

static const shim_hooks_t full_hooks = {.write = full_write, .shm_grow = full_shm_grow};

/* ---- the backend under test ---- */

static void *sqlite_create(void)
{
    return sqlite_db_create();
}

static int sqlite_open(void *db, kf_store_t **out)
{
    return kf_store_open_sqlite(((sqlite_db_t *)db)->path, NULL, out);
}

static void sqlite_check(void *db)
{
    sqlite_db_check(db);
}

static void sqlite_destroy(void *db)
{
    sqlite_db_destroy(db);
}

static const store_backend_t sqlite_backend = {
    .name = "sqlite",
    .create = sqlite_create,
    .open = sqlite_open,
    .check = sqlite_check,
    .destroy = sqlite_destroy,
};

static const char *db_path(const suite_fixture_t *f)
{
    return ((const sqlite_db_t *)f->db)->path;
}

/* Runs one SQL text on the database file directly and returns its first column as an integer
 * (0 when it answers no row). */
static int64_t sql_int(const suite_fixture_t *f, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path(f), &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int code = sqlite3_step(st);
    assert_true(code == SQLITE_ROW || code == SQLITE_DONE);
    int64_t value = code == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return value;
}

/* The store's statements, by name (sqlite_internal.h), for their query plans. */
static const struct {
    const char *name;
    const char *sql;
} statements[] = {
#define STATEMENT_ENTRY(name, sql) {#name, sql},
    KF_SQLITE_STATEMENTS(STATEMENT_ENTRY)
#undef STATEMENT_ENTRY
};

/* True when the query plan of the store's statement name mentions what (an index's name). */
static bool plan_uses(const suite_fixture_t *f, const char *name, const char *what)
{
    const char *sql = NULL;
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) {
        if (strcmp(statements[i].name, name) == 0)
            sql = statements[i].sql;
    }
    assert_non_null(sql);
    char explain[4096];
    snprintf(explain, sizeof explain, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path(f), &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(kf_sqlite_define_functions(db), 0);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, explain, -1, &st, NULL), SQLITE_OK);
    bool found = false;
    while (sqlite3_step(st) == SQLITE_ROW)
        found = found || strstr((const char *)sqlite3_column_text(st, 3), what) != NULL;
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return found;
}

/* Another connection holding the database's write lock, as another process could: the writer's
 * next batch waits for it (up to the busy timeout, 5 s) at its BEGIN. */
static sqlite3 *hold_write_lock(const suite_fixture_t *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path(f), &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void release_write_lock(sqlite3 *db)
{
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* Counts notify calls (from the writer's thread, or the owner's). */
static atomic_int notified;

static void count_notify(void *data)
{
    (void)data;
    atomic_fetch_add(&notified, 1);
}

/* ---- batches ---- */

/* Writes queued while the writer waits for its batch's lock all go into the batch after it: a
 * hundred writes, at most two batches (two notifications). Callbacks run only from complete() or
 * flush(), in order; a failed write leaves the rest of its batch alone. */
static void test_sqlite_group_commit(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "first", SUITE_NOW, NULL);
    atomic_store(&notified, 0);
    ops->set_notify(f->store, count_notify, NULL);

    sqlite3 *blocker = hold_write_lock(f);
    seen_t *seen = seen_new();
    enum { WRITES = 50 };
    for (int i = 0; i < WRITES; i++) {
        char body[16];
        snprintf(body, sizeof body, "m%d", i);
        kf_message_new_t m = {.conversation_id = conversation,
                              .sender = i % 2 ? KF_SENDER_AGENT : KF_SENDER_VISITOR,
                              .agent_id = i % 2 ? agent : 0,
                              .body = body,
                              .now = SUITE_NOW + i};
        assert_int_equal(ops->message_add(f->store, &m, on_done, seen), 0);
    }
    /* A write that fails alone, among them. */
    kf_message_new_t lost = {.conversation_id = conversation + 100, .body = "lost"};
    assert_int_equal(ops->message_add(f->store, &lost, on_done, seen), 0);
    assert_int_equal(ops->conversation_mark_read(f->store, conversation, KF_SENDER_AGENT, 1 << 30,
                                                 on_done, seen),
                     0);
    ops->complete(f->store);
    assert_int_equal(seen->result_count, 0);
    assert_int_equal(atomic_load(&notified), 0);
    release_write_lock(blocker);
    suite_flush(f);
    ops->set_notify(f->store, NULL, NULL);
    assert_int_equal(seen->result_count, WRITES + 2);
    int batches = atomic_load(&notified);
    print_message("%d writes in %d batches\n", WRITES + 2, batches);
    assert_true(batches >= 1 && batches <= 2);
    for (int i = 0; i < WRITES; i++) {
        assert_int_equal(seen->results[i].rc, 0);
        if (i > 0)
            assert_true(seen->results[i].message.id > seen->results[i - 1].message.id);
    }
    assert_int_equal(seen->results[WRITES].rc, KF_ENOTFOUND);
    assert_int_equal(seen->results[WRITES + 1].rc, 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM messages"), WRITES + 1);
    assert_int_equal(sql_int(f, "SELECT agent_read_up_to FROM conversations"),
                     seen->results[WRITES - 1].message.id);
    seen_free(seen);
}

/* A read queued after a write that has not committed runs at once and does not see it. */
static void test_sqlite_reads_see_committed_rows_only(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "first", SUITE_NOW, NULL);

    sqlite3 *blocker = hold_write_lock(f);
    seen_t *write = seen_new();
    kf_message_new_t m = {.conversation_id = conversation, .body = "second", .now = SUITE_NOW};
    assert_int_equal(ops->message_add(f->store, &m, on_done, write), 0);
    assert_int_equal(ops->visitor_create(f->store, "token-b", "B", SUITE_NOW, on_done, write), 0);
    seen_t *read = seen_new();
    assert_int_equal(ops->messages_all(f->store, 0, 10, on_message, on_done, read), 0);
    assert_int_equal(ops->visitor_by_token(f->store, "token-b", on_done, read), 0);
    ops->complete(f->store);
    assert_int_equal(read->result_count, 2);
    assert_int_equal(read->message_count, 1);
    assert_int_equal(read->results[1].rc, KF_ENOTFOUND);
    assert_int_equal(write->result_count, 0);

    release_write_lock(blocker);
    suite_flush(f);
    assert_int_equal(write->result_count, 2);
    assert_int_equal(write->results[0].rc, 0);
    assert_int_equal(ops->messages_all(f->store, 0, 10, on_message, on_done, read), 0);
    assert_int_equal(ops->visitor_by_token(f->store, "token-b", on_done, read), 0);
    suite_flush(f);
    assert_int_equal(read->message_count, 3);
    assert_int_equal(read->results[3].rc, 0);
    seen_free(read);
    seen_free(write);
}

/* ---- the loop keeps turning ---- */

/* A loop with a store: a 1 ms timer counts its turns while a batch waits. */
typedef struct turning {
    uv_loop_t loop;
    uv_async_t wakeup; /* the store's notify */
    uv_timer_t timer;
    kf_store_t *store;
    sqlite3 *blocker; /* holds the write lock until RELEASE_AT ticks */
    seen_t *seen;     /* the writes' results */
    int ticks;
    int ticks_while_waiting; /* ticks while neither write had called back */
} turning_t;

#define RELEASE_AT 20

static void turning_wakeup_cb(uv_async_t *handle)
{
    turning_t *t = handle->data;
    t->store->ops->complete(t->store);
}

static void turning_notify(void *data)
{
    uv_async_send(data);
}

static void turning_tick_cb(uv_timer_t *timer)
{
    turning_t *t = timer->data;
    t->ticks++;
    if (t->ticks == 1) {
        /* A new visitor arrives while the writer waits in the middle of its batch. */
        assert_int_equal(t->store->ops->visitor_create(t->store, "token-new", "New", SUITE_NOW,
                                                       on_done, t->seen),
                         0);
    }
    if (t->seen->result_count == 0)
        t->ticks_while_waiting++;
    if (t->ticks == RELEASE_AT) {
        release_write_lock(t->blocker);
        t->blocker = NULL;
    }
    if (t->seen->result_count == 2) {
        uv_timer_stop(timer);
        uv_close((uv_handle_t *)timer, NULL);
        uv_close((uv_handle_t *)&t->wakeup, NULL);
    }
}

/* While the writer is in the middle of a batch (waiting for the write lock: the longest batch
 * there is), a new visitor queues at once and the loop keeps turning; once the lock is free the
 * batch commits, then the visitor, in that order. Before the writer thread took every write, the
 * visitor's insert waited on the loop for the batch. */
static void test_sqlite_loop_turns_while_a_batch_waits(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "first", SUITE_NOW, NULL);
    turning_t t = {.store = f->store, .seen = seen_new()};
    assert_int_equal(uv_loop_init(&t.loop), 0);
    uv_async_init(&t.loop, &t.wakeup, turning_wakeup_cb);
    t.wakeup.data = &t;
    uv_timer_init(&t.loop, &t.timer);
    t.timer.data = &t;
    f->store->ops->set_notify(f->store, turning_notify, &t.wakeup);

    t.blocker = hold_write_lock(f);
    kf_message_new_t m = {.conversation_id = conversation, .body = "batched", .now = SUITE_NOW};
    assert_int_equal(f->store->ops->message_add(f->store, &m, on_done, t.seen), 0);
    uv_timer_start(&t.timer, turning_tick_cb, 1, 1);
    assert_int_equal(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
    f->store->ops->set_notify(f->store, NULL, NULL);
    assert_int_equal(uv_loop_close(&t.loop), 0);

    print_message("%d loop turns while the batch waited\n", t.ticks_while_waiting);
    assert_true(t.ticks_while_waiting >= RELEASE_AT);
    assert_int_equal(t.seen->result_count, 2);
    assert_true(t.seen->results[0].has_message);
    assert_int_equal(t.seen->results[0].rc, 0);
    assert_int_equal(t.seen->results[1].rc, 0);
    assert_true(t.seen->results[1].id > visitor);
    seen_free(t.seen);
}

/* A read's callback that queues another read and calls complete() itself. */
typedef struct nested {
    kf_store_t *store;
    seen_t *seen; /* the inner read's results */
    int calls;
} nested_t;

static void queue_in_callback_cb(void *ctx, const kf_store_result_t *result)
{
    assert_int_equal(result->rc, 0);
    nested_t *n = ctx;
    n->calls++;
    assert_int_equal(n->store->ops->agent_count(n->store, on_done, n->seen), 0);
    n->store->ops->complete(n->store); /* from inside a callback: returns at once */
    assert_int_equal(n->seen->result_count, 0);
}

/* Queueing a read asks for a complete() (notify, here on the owner's thread); one call runs what
 * was queued before it, and what its callbacks queue waits for the next. */
static void test_sqlite_notify_for_reads(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    atomic_store(&notified, 0);
    ops->set_notify(f->store, count_notify, NULL);
    seen_t *seen = seen_new();
    nested_t n = {.store = f->store, .seen = seen_new()};
    assert_int_equal(ops->agent_count(f->store, on_done, seen), 0);
    assert_int_equal(atomic_load(&notified), 1);
    assert_int_equal(ops->agent_count(f->store, queue_in_callback_cb, &n), 0);
    assert_int_equal(atomic_load(&notified), 1); /* one is enough for both */
    assert_int_equal(seen->result_count + (size_t)n.calls, 0);
    ops->complete(f->store);
    assert_int_equal(seen->result_count, 1);
    assert_int_equal(n.calls, 1);
    assert_int_equal(atomic_load(&notified), 2); /* for the read queued inside */
    assert_int_equal(n.seen->result_count, 0);
    ops->complete(f->store);
    assert_int_equal(n.seen->result_count, 1);
    ops->complete(f->store); /* nothing left: nothing runs */
    assert_int_equal(n.seen->result_count + seen->result_count, 2);
    ops->set_notify(f->store, NULL, NULL);
    seen_free(n.seen);
    seen_free(seen);
}

/* ---- the checkpointer ---- */

/* A write's done callback that only counts successes. */
static void on_stored(void *ctx, const kf_store_result_t *result)
{
    assert_int_equal(result->rc, 0);
    (*(int *)ctx)++;
}

/* The WAL file's size in bytes. */
static long wal_size(const suite_fixture_t *f)
{
    char wal[192];
    snprintf(wal, sizeof wal, "%s-wal", db_path(f));
    FILE *file = fopen(wal, "rb");
    assert_non_null(file);
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fclose(file);
    return size;
}

/* The checkpointer keeps the WAL from growing without bound even while the writer never rests:
 * SQLite starts the log over only when a transaction begins with all of it copied back, which
 * steady writes alone never allow. */
static void test_sqlite_checkpointer_bounds_wal(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    assert_int_equal(kf_store_sqlite_set_checkpoint_pages(f->store, 0), KF_EINVAL);
    assert_int_equal(kf_store_sqlite_set_checkpoint_pages(f->store, 1 << 25), KF_EINVAL);
    assert_int_equal(kf_store_sqlite_set_checkpoint_pages(NULL, 1000), KF_EINVAL);
    /* 1,000 pages (4 MiB): the default's 16,000 would need far more writing to show the bound. */
    assert_int_equal(kf_store_sqlite_set_checkpoint_pages(f->store, 1000), 0);
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "first", SUITE_NOW, NULL);
    static char body[12 * 1024 + 1]; /* three overflow pages and a bit */
    memset(body, 'x', sizeof body - 1);
    enum { MESSAGES = 5000, IN_FLIGHT = 200 };
    /* About 80 MiB through the WAL. The next batch is always queued before the writer is done
     * with the one it has, so the writer is never idle. */
    int stored = 0;
    long largest = 0;
    for (int queued = 0; queued < MESSAGES; queued++) {
        while (queued - stored >= IN_FLIGHT) {
            usleep(200);
            ops->complete(f->store);
        }
        kf_message_new_t m = {
            .conversation_id = conversation, .body = body, .now = SUITE_NOW + queued};
        assert_int_equal(ops->message_add(f->store, &m, on_stored, &stored), 0);
        if (queued % 100 == 0) {
            long size = wal_size(f);
            if (size > largest)
                largest = size;
        }
    }
    suite_flush(f);
    assert_int_equal(stored, MESSAGES);
    /* Without the log starting over it would pass 80 MiB. With it, the log reaches the
     * threshold of 1,000 pages (4 MiB), plus what the writer adds while the checkpointer chases;
     * if the writer outruns the chase, the gate is taken at 2,000 pages (8 MiB) plus what is
     * written during that last passive checkpoint: 8-12 MiB measured. */
    print_message("largest WAL: %.1f MiB\n", (double)largest / (1024 * 1024));
    assert_true(largest < 24L * 1024 * 1024);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM messages"), MESSAGES + 1);
}

/* ---- opening and migrating ---- */

static void test_sqlite_open_arguments(void **state)
{
    suite_fixture_t *f = *state;
    kf_store_close(f->store);
    f->store = NULL;
    kf_store_t *store = NULL;
    assert_int_equal(kf_store_open_sqlite(db_path(f), "sometimes", &store), KF_EINVAL);
    assert_null(store);
    assert_int_equal(kf_store_open_sqlite(db_path(f), "FULL; DROP TABLE agents", &store),
                     KF_EINVAL);
    assert_int_equal(kf_store_open_sqlite(NULL, NULL, &store), KF_EINVAL);
    assert_int_equal(kf_store_open_sqlite(db_path(f), NULL, NULL), KF_EINVAL);
    static const char *const accepted[] = {"FULL", "NORMAL", "OFF", "normal"};
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        assert_int_equal(kf_store_open_sqlite(db_path(f), accepted[i], &store), 0);
        assert_non_null(store);
        kf_store_close(store);
        store = NULL;
    }
    /* A path that cannot be a database. */
    char missing[192];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/kefu.db", ((sqlite_db_t *)f->db)->dir);
    assert_int_equal(kf_store_open_sqlite(missing, NULL, &store), KF_ESTORE);
    assert_null(store);
    assert_int_equal(kf_store_open_sqlite(((sqlite_db_t *)f->db)->dir, NULL, &store), KF_ESTORE);
    assert_null(store);
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
}

static void test_sqlite_pragmas_and_schema(void **state)
{
    suite_fixture_t *f = *state;
    seen_t *seen = seen_new();
    assert_int_equal(
        suite_wait(f, f->store->ops->setting_get(f->store, "schema_version", on_done, seen), seen),
        0);
    assert_string_equal(last_result(seen)->value, "23");
    kf_store_close(f->store);
    f->store = NULL;
    /* WAL is a property of the file, so it shows from another connection. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path(f), &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_int_equal(sql_int(f,
                             "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN "
                             "('messages_by_conversation_audience', 'conversations_by_visitor', "
                             "'conversations_by_last_message', 'sessions_by_expiry', "
                             "'messages_by_idempotency_key', 'sessions_by_agent', "
                             "'conversations_by_status', 'conversations_unassigned', "
                             "'conversations_by_assignee', 'conversations_snoozed', "
                             "'canned_by_owner', 'visitors_by_email', 'visitor_pages_by_visitor')"),
                     13);
    /* The list's keyset paging and the key lookup use their indexes. */
    assert_true(plan_uses(f, "CONVERSATION_LIST", "conversations_by_last_message"));
    assert_true(plan_uses(f, "MESSAGE_BY_KEY", "messages_by_idempotency_key"));
    assert_false(plan_uses(f, "CONVERSATION_LIST", "TEMP B-TREE")); /* no sort */
    assert_true(plan_uses(f, "SESSION_COUNT_OF_ENABLED_AGENT", "sessions_by_agent"));
    assert_true(plan_uses(f, "SESSION_DELETE_OF_DISABLED_AGENT", "sessions_by_agent"));
    /* Every view's page is a range of its own index, in order (no sort); its count too. */
    static const struct {
        const char *statement;
        const char *index;
    } views[] = {
        {"CONVERSATION_LIST_STATUS", "conversations_by_status"},
        {"CONVERSATION_LIST_UNASSIGNED", "conversations_unassigned"},
        {"CONVERSATION_LIST_MINE", "conversations_by_assignee"},
        /* One team's: migration 16's, team_id first. */
        {"CONVERSATION_LIST_TEAM", "conversations_by_team "},
        {"CONVERSATION_LIST_TEAM_STATUS", "conversations_by_team_status "},
        {"CONVERSATION_LIST_TEAM_UNASSIGNED", "conversations_team_unassigned"},
        {"CONVERSATION_LIST_TEAM_MINE", "conversations_by_team_assignee "},
    };
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        assert_true(plan_uses(f, views[i].statement, views[i].index));
        assert_false(plan_uses(f, views[i].statement, "TEMP B-TREE"));
    }
    /* The counts read their table, never the conversations (they are kept on write). */
    assert_true(plan_uses(f, "CONVERSATION_COUNTS", "conversation_counts"));
    assert_false(plan_uses(f, "CONVERSATION_COUNTS", "conversations "));
    assert_true(plan_uses(f, "CONVERSATION_TEAM_COUNTS", "conversation_counts"));
    assert_false(plan_uses(f, "CONVERSATION_TEAM_COUNTS", "conversations "));
    assert_false(plan_uses(f, "CONVERSATION_TEAM_COUNTS", "TEMP B-TREE"));
    assert_true(plan_uses(f, "CONVERSATION_OF_VISITOR", "conversations_by_visitor"));
    assert_false(plan_uses(f, "CONVERSATION_SNOOZE_DUE", "TEMP B-TREE"));
    /* A shortcut's check is two lookups of the index, the list two ranges of it. */
    assert_true(plan_uses(f, "CANNED_TAKEN", "canned_by_owner"));
    assert_true(plan_uses(f, "CANNED_LIST", "canned_by_owner"));
    /* An attachment's message is found by its index, not by a scan of every message. */
    assert_true(plan_uses(f, "ATTACHMENT_GET", "messages_by_attachment"));
    /* A message's insert fires no trigger (migration 22): its conversation is stamped by the
     * writer's own one-row update, a lookup by id. */
    assert_true(plan_uses(f, "MESSAGE_STAMP", "INTEGER PRIMARY KEY"));

    /* A new store's pages are 1 KiB, and its search indexes' leaves fit them. */
    assert_int_equal(sql_int(f, "PRAGMA page_size"), 1024);
    assert_int_equal(sql_int(f, "SELECT v FROM message_search_config WHERE k = 'pgsz'"), 978);
    assert_int_equal(sql_int(f, "SELECT v FROM visitor_search_config WHERE k = 'pgsz'"), 978);

    /* Reopening does not migrate again (it would fail on existing tables) nor lose data. */
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    assert_int_equal(
        suite_wait(f, f->store->ops->setting_get(f->store, "schema_version", on_done, seen), seen),
        0);
    assert_string_equal(last_result(seen)->value, "23");
    /* A session for an agent that does not exist is refused (before the foreign key would). */
    assert_int_equal(
        suite_wait(f,
                   f->store->ops->session_create(f->store, "orphan", 12345, "csrf", SUITE_NOW,
                                                 SUITE_NOW + 1, on_done, seen),
                   seen),
        KF_EINVAL);
    seen_free(seen);
}

static void test_sqlite_refuses_newer_schema(void **state)
{
    suite_fixture_t *f = *state;
    kf_store_close(f->store);
    f->store = NULL;
    sql_int(f, "UPDATE settings SET value = '999' WHERE key = 'schema_version'");
    kf_store_t *store = NULL;
    assert_int_equal(kf_store_open_sqlite(db_path(f), NULL, &store), KF_ESTORE);
    assert_null(store);
    sql_int(f, "UPDATE settings SET value = 'x' WHERE key = 'schema_version'");
    assert_int_equal(kf_store_open_sqlite(db_path(f), NULL, &store), KF_ESTORE);
    sql_int(f, "UPDATE settings SET value = '22' WHERE key = 'schema_version'");
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
}

/* The first column of SQL's first row, as a string to free (NULL for none or NULL). */
static char *sql_text(const suite_fixture_t *f, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path(f), &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    char *value = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        value = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return value;
}

/* Runs SQL (several statements) on the database file directly, foreign keys off. */
static void sql_exec(const suite_fixture_t *f, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path(f), &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* What migration 7 (private notes) added, taken away again (foreign keys off). */
static void rewind_notes(const suite_fixture_t *f)
{
    sql_exec(f, "DROP INDEX messages_by_conversation_audience;"
                "ALTER TABLE messages DROP COLUMN private;"
                "CREATE INDEX messages_by_conversation ON messages (conversation_id, id, sender);");
}

/* Takes the integrations' migration (API tokens and webhooks) away again. */
#define UNDO_INTEGRATIONS                                                                          \
    "DROP TABLE webhook_attempts;"                                                                 \
    "DROP TABLE webhook_deliveries;"                                                               \
    "DROP TABLE webhooks;"                                                                         \
    "DROP TABLE api_tokens;"
/* Takes migration 22 away again: the triggers that stamped a message's conversation, as
 * migrations 10 and 16 made them. */
#define UNDO_STAMPS                                                                                \
    "CREATE TRIGGER messages_first_reply AFTER INSERT ON messages BEGIN "                          \
    "  UPDATE conversations SET first_visitor_at = NEW.created_at "                                \
    "    WHERE id = NEW.conversation_id AND NEW.sender = 0 AND first_visitor_at IS NULL;"          \
    "  UPDATE conversations SET first_reply_at = NEW.created_at, "                                 \
    "    first_reply_agent_id = NEW.agent_id "                                                     \
    "    WHERE id = NEW.conversation_id AND NEW.sender = 1 AND NEW.private = 0 "                   \
    "    AND first_visitor_at IS NOT NULL AND first_reply_at IS NULL "                             \
    "    AND NEW.created_at >= first_visitor_at;"                                                  \
    "END;"                                                                                         \
    "CREATE TRIGGER messages_last AFTER INSERT ON messages BEGIN "                                 \
    "  UPDATE conversations SET last_message_id = NEW.id, updated_at = NEW.created_at "            \
    "  WHERE id = NEW.conversation_id;"                                                            \
    "END;"
/* Takes migrations 22 and 21 away again: the names' words back in the index's vocabulary table
 * too. */
#define UNDO_NAME_WORDS                                                                            \
    UNDO_STAMPS                                                                                    \
    "DROP TABLE name_words;"                                                                       \
    "CREATE VIRTUAL TABLE visitor_search_terms USING fts5vocab(visitor_search, instance);"
/* Takes migrations 21 and 19 away again: the messages' words back in the index's vocabulary
 * table too. */
#define UNDO_SEARCH_WORDS                                                                          \
    UNDO_NAME_WORDS                                                                                \
    "DROP TABLE search_words;"                                                                     \
    "CREATE VIRTUAL TABLE message_search_terms USING fts5vocab(message_search, instance);"
/* Takes migrations 19 to 16 away again: the messages' words, the names' words, the search's
 * queue, then the indexes keyed on updated_at, as migrations 4, 8 and 13 made them. */
#define UNDO_ACTIVITY                                                                              \
    UNDO_SEARCH_WORDS                                                                              \
    "DROP TABLE visitor_search_terms;"                                                             \
    "DROP TABLE search_pending;"                                                                   \
    "DROP INDEX conversations_by_last_message;"                                                    \
    "DROP INDEX conversations_by_status;"                                                          \
    "DROP INDEX conversations_unassigned;"                                                         \
    "DROP INDEX conversations_by_assignee;"                                                        \
    "DROP INDEX conversations_by_team;"                                                            \
    "DROP INDEX conversations_by_team_status;"                                                     \
    "DROP INDEX conversations_team_unassigned;"                                                    \
    "DROP INDEX conversations_by_team_assignee;"                                                   \
    "CREATE INDEX conversations_by_activity ON conversations (updated_at DESC, id DESC);"          \
    "CREATE INDEX conversations_by_status ON conversations (status, updated_at DESC, id DESC);"    \
    "CREATE INDEX conversations_by_status_assignee ON conversations "                              \
    "  (status, assignee_id, updated_at DESC, id DESC);"                                           \
    "CREATE INDEX conversations_by_assignee ON conversations "                                     \
    "  (assignee_id, updated_at DESC, id DESC) WHERE status != 'resolved';"                        \
    "CREATE INDEX conversations_by_team ON conversations "                                         \
    "  (team_id, updated_at DESC, id DESC) WHERE team_id IS NOT NULL;"                             \
    "CREATE INDEX conversations_by_team_status ON conversations "                                  \
    "  (team_id, status, updated_at DESC, id DESC) WHERE team_id IS NOT NULL;"                     \
    "CREATE INDEX conversations_by_team_status_assignee ON conversations "                         \
    "  (team_id, status, assignee_id, updated_at DESC, id DESC) WHERE team_id IS NOT NULL;"        \
    "CREATE INDEX conversations_by_team_assignee ON conversations "                                \
    "  (team_id, assignee_id, updated_at DESC, id DESC) "                                          \
    "  WHERE team_id IS NOT NULL AND status != 'resolved';"                                        \
    "CREATE INDEX conversations_by_last_message ON conversations (last_message_id, visitor_id);"   \
    "DROP TRIGGER messages_last;"                                                                  \
    "CREATE TRIGGER messages_last AFTER INSERT ON messages BEGIN "                                 \
    "  UPDATE conversations SET last_message_id = NEW.id WHERE id = NEW.conversation_id;"          \
    "END;"
/* Takes the attachments' migration away again: every rewind starts from the newest. */
#define UNDO_ATTACHMENTS                                                                           \
    UNDO_ACTIVITY                                                                                  \
    "DROP INDEX messages_by_attachment;"                                                           \
    "ALTER TABLE messages DROP COLUMN attachment_id;"                                              \
    "DROP TABLE attachments;"

/* Takes the migration of the kept counts and each conversation's newest message away again. */
#define UNDO_COUNTS                                                                                \
    "DROP TRIGGER conversation_counts_insert;"                                                     \
    "DROP TRIGGER conversation_counts_update;"                                                     \
    "DROP TRIGGER conversation_counts_delete;"                                                     \
    "DROP TABLE conversation_counts;"                                                              \
    "DROP TRIGGER messages_last;"                                                                  \
    "DROP INDEX conversations_by_last_message;"                                                    \
    "ALTER TABLE conversations DROP COLUMN last_message_id;"                                       \
    "DROP TABLE message_search_terms;"

/* Takes the verified visitors' migration (12) away again, and the kept counts' and the
 * integrations' and attachments' after it. */
#define UNDO_IDENTITY                                                                              \
    UNDO_ATTACHMENTS                                                                               \
    UNDO_INTEGRATIONS                                                                              \
    UNDO_COUNTS                                                                                    \
    "DROP TABLE identity_nonces;"                                                                  \
    "DROP TABLE visitor_tokens;"                                                                   \
    "DROP INDEX visitors_by_user;"                                                                 \
    "ALTER TABLE visitors DROP COLUMN user_id;"

/* Takes the ratings' migration (11) away again, and the verified visitors' after it. */
static void undo_ratings(const suite_fixture_t *f)
{
    sql_exec(f, UNDO_IDENTITY);
    sql_exec(f, "ALTER TABLE conversations DROP COLUMN rating;"
                "ALTER TABLE conversations DROP COLUMN rating_comment;"
                "ALTER TABLE conversations DROP COLUMN rated_at;"
                "ALTER TABLE conversations DROP COLUMN rating_agent_id;");
}

/* Takes the reports' migration (10) away again, and what came after it. */
static void undo_reports(const suite_fixture_t *f)
{
    undo_ratings(f);
    sql_exec(f, "DROP TRIGGER messages_first_reply;"
                "DROP INDEX messages_by_time;"
                "DROP INDEX conversations_by_created;"
                "ALTER TABLE conversations DROP COLUMN first_visitor_at;"
                "ALTER TABLE conversations DROP COLUMN first_reply_at;"
                "ALTER TABLE conversations DROP COLUMN first_reply_agent_id;"
                "ALTER TABLE conversations DROP COLUMN resolved_at;"
                "ALTER TABLE conversations DROP COLUMN resolved_by;");
}

/* Takes migration 8 (teams) away again, and what came after it. */
static void undo_teams(const suite_fixture_t *f)
{
    undo_reports(f);
    sql_exec(f, "DROP INDEX conversations_by_team;"
                "DROP INDEX conversations_by_team_status;"
                "DROP INDEX conversations_by_team_status_assignee;"
                "DROP INDEX conversations_by_team_assignee;"
                "ALTER TABLE conversations DROP COLUMN team_id;"
                "ALTER TABLE agents DROP COLUMN capacity;"
                "DROP TABLE team_members;"
                "DROP TABLE teams;");
}

/* What the visitor details' migration (9) did, undone. */
#define UNDO_VISITOR_DETAILS                                                                       \
    "DROP TABLE visitor_pages;"                                                                    \
    "DROP INDEX visitors_by_email;"                                                                \
    "ALTER TABLE visitors DROP COLUMN email;"

/* What migrations 4 to 10 did, undone: the conversations table as version 3 had it ("open" or
 * "closed", nobody assigned), with the given status for every conversation that is not open, no
 * search index, no canned replies, notes, teams, visitor details or reports. */
static void rewind_to_3(const suite_fixture_t *f)
{
    sql_exec(f, UNDO_VISITOR_DETAILS);
    undo_teams(f);
    rewind_notes(f);
    sql_exec(f,
             "DROP TABLE canned_replies;"
             "DROP TABLE message_search;"
             "DROP TABLE visitor_search;"
             "CREATE TABLE conversations_v3 ("
             "  id INTEGER PRIMARY KEY,"
             "  visitor_id INTEGER NOT NULL REFERENCES visitors (id),"
             "  status TEXT NOT NULL CHECK (status IN ('open', 'closed')),"
             "  created_at INTEGER NOT NULL,"
             "  updated_at INTEGER NOT NULL,"
             "  agent_read_up_to INTEGER NOT NULL DEFAULT 0,"
             "  visitor_read_up_to INTEGER NOT NULL DEFAULT 0"
             ");"
             "INSERT INTO conversations_v3 SELECT id, visitor_id,"
             "  CASE status WHEN 'open' THEN 'open' ELSE 'closed' END, created_at, updated_at,"
             "  agent_read_up_to, visitor_read_up_to FROM conversations;"
             "DROP TABLE conversations;"
             "ALTER TABLE conversations_v3 RENAME TO conversations;"
             "CREATE INDEX conversations_by_visitor ON conversations (visitor_id);"
             "CREATE INDEX conversations_by_activity ON conversations (updated_at DESC, id DESC);"
             "UPDATE settings SET value = '3' WHERE key = 'schema_version';");
}

/* A version 3 database comes to the desk: "closed" is "resolved", nobody holds anything, ids and
 * messages stay. A visitor who had several conversations (version 3 opened a new one after a
 * close) keeps them all; their newest is their thread from now on, reopened when resolved. */
static void test_sqlite_migrates_to_the_desk(void **state)
{
    suite_fixture_t *f = *state;
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t other = suite_add_visitor(f, "token-b", "B");
    int64_t first = suite_open_conversation(f, visitor, "one", SUITE_NOW, NULL);
    suite_add_message(f, first, agent, "answer");
    int64_t lone = suite_open_conversation(f, other, "b", SUITE_NOW, NULL);
    assert_int_equal(suite_set_status(f, first, "resolved"), 0);
    assert_int_equal(suite_set_status(f, lone, "resolved"), 0);
    kf_store_close(f->store);
    f->store = NULL;
    rewind_to_3(f);
    /* As version 3 did it: the visitor's message after the close opened a second conversation. */
    sql_exec(f, "INSERT INTO conversations (id, visitor_id, status, created_at, updated_at) "
                "VALUES (100, (SELECT id FROM visitors WHERE token_hash = 'token-a'), 'open', "
                "1764100000001, 1764100000001);"
                "INSERT INTO messages (conversation_id, sender, body, created_at) "
                "VALUES (100, 0, 'two', 1764100000001);");
    assert_int_equal(sql_int(f, "SELECT count(*) FROM conversations WHERE status = 'closed'"), 2);

    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    assert_int_equal(sql_int(f, "SELECT value FROM settings WHERE key = 'schema_version'"), 23);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM conversations WHERE status = 'resolved'"), 2);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM conversations WHERE assignee_id IS NULL"), 3);
    seen_t *seen = suite_get_conversation(f, first);
    assert_string_equal(last_result(seen)->conversation.status, "resolved");
    assert_int_equal(last_result(seen)->conversation.assignee.id, 0);
    assert_string_equal(last_result(seen)->conversation.last_message.body, "answer");
    seen_free(seen);
    seen = seen_new();
    assert_int_equal(suite_wait(f,
                                f->store->ops->messages_of_visitor(f->store, visitor, 0, 10,
                                                                   on_message, on_done, seen),
                                seen),
                     0);
    assert_int_equal(seen->message_count, 3); /* both conversations' */
    seen_free(seen);
    /* The newest is the thread; resolved, it is reopened, not the older one. */
    assert_int_equal(suite_open_conversation(f, visitor, "three", SUITE_NOW + 2, NULL), 100);
    assert_int_equal(suite_set_status(f, 100, "resolved"), 0);
    assert_int_equal(suite_open_conversation(f, visitor, "four", SUITE_NOW + 3, NULL), 100);
    assert_int_equal(suite_open_conversation(f, other, "again", SUITE_NOW + 3, NULL), lone);
    seen = suite_get_conversation(f, lone);
    assert_string_equal(last_result(seen)->conversation.status, "open");
    seen_free(seen);
    /* The constraints hold on the rebuilt table: a snooze has its end. */
    seen = seen_new();
    assert_int_equal(
        suite_wait(f, f->store->ops->conversation_claim(f->store, first, agent, on_done, seen),
                   seen),
        KF_ECONFLICT);
    seen_free(seen);
    kf_store_close(f->store);
    f->store = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path(f), &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_not_equal(
        sqlite3_exec(db, "UPDATE conversations SET status = 'snoozed'", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_not_equal(
        sqlite3_exec(db, "UPDATE conversations SET status = 'closed'", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
}

/* A database as version 1 (no idempotency keys) or 2 (no disabled agents) left it is brought to
 * the newest version with its rows kept: its messages go on from where they were, its agents are
 * enabled and their sessions live on. */
static void test_sqlite_migrates_older_versions(void **state)
{
    suite_fixture_t *f = *state;
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t first = 0;
    int64_t conversation = suite_open_conversation(f, visitor, "from v1", SUITE_NOW, &first);
    int64_t last = suite_add_message(f, conversation, agent, "answer");
    seen_t *seen = seen_new();
    assert_int_equal(
        suite_wait(f,
                   f->store->ops->session_create(f->store, "s", agent, "c", SUITE_NOW,
                                                 SUITE_NOW + SUITE_HOUR, on_done, seen),
                   seen),
        0);
    for (int from = 2; from >= 1; from--) {
        kf_store_close(f->store);
        f->store = NULL;
        rewind_to_3(f);
        /* What the migrations after from added, taken away again. */
        sql_int(f, "DROP INDEX sessions_by_agent");
        sql_int(f, "ALTER TABLE agents DROP COLUMN disabled_at");
        if (from == 1) {
            sql_int(f, "DROP INDEX messages_by_idempotency_key");
            sql_int(f, "ALTER TABLE messages DROP COLUMN idempotency_owner");
            sql_int(f, "ALTER TABLE messages DROP COLUMN idempotency_key");
        }
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE settings SET value = '%d' WHERE key = 'schema_version'",
                 from);
        sql_int(f, sql);

        assert_int_equal(sqlite_open(f->db, &f->store), 0);
        assert_int_equal(sql_int(f, "SELECT value FROM settings WHERE key = 'schema_version'"), 23);
        assert_int_equal(sql_int(f, "SELECT count(*) FROM agents WHERE disabled_at IS NULL"), 1);
        char key[8];
        snprintf(key, sizeof key, "k%d", from);
        kf_message_new_t m = {
            .visitor_id = visitor, .body = "keyed", .now = SUITE_NOW, .idempotency_key = key};
        for (int i = 0; i < 2; i++) {
            assert_int_equal(
                suite_wait(f, f->store->ops->message_add(f->store, &m, on_done, seen), seen), 0);
            assert_int_equal(last_result(seen)->duplicate, i == 1);
            assert_true(last_result(seen)->message.id > last);
            assert_int_equal(last_result(seen)->message.conversation_id, conversation);
        }
        last = last_result(seen)->message.id;
    }
    assert_int_equal(suite_wait(f,
                                f->store->ops->messages_of_visitor(f->store, visitor, 0, 10,
                                                                   on_message, on_done, seen),
                                seen),
                     0);
    assert_int_equal(seen->message_count, 4);
    assert_int_equal(seen->messages[0].id, first);
    assert_string_equal(seen->messages[0].body, "from v1");
    assert_string_equal(seen->messages[1].agent_name, "Ana");
    /* The new column works on the migrated rows: disabling ends the session kept across. */
    kf_agent_change_t off = {.state = KF_AGENT_STATE_DISABLE, .now = SUITE_NOW};
    assert_int_equal(
        suite_wait(f, f->store->ops->agent_update(f->store, agent, &off, on_done, seen), seen), 0);
    assert_int_equal(last_result(seen)->count, 1);
    seen_free(seen);
}

/* A search over a store's hits, waited for: how many, and the newest's message id. */
typedef struct search_count {
    int64_t count;
    int64_t newest;
    int rc;
} search_count_t;

static int on_search_hit(void *ctx, const kf_search_hit_t *hit)
{
    search_count_t *c = ctx;
    if (c->count++ == 0)
        c->newest = hit->message.id;
    return 0;
}

static void on_search_done(void *ctx, const kf_store_result_t *result)
{
    ((search_count_t *)ctx)->rc = result->rc;
}

static search_count_t search_count(suite_fixture_t *f, const char *query)
{
    search_count_t c = {0};
    assert_int_equal(
        f->store->ops->search(f->store, query, 0, 100, on_search_hit, on_search_done, &c), 0);
    suite_flush(f);
    assert_int_equal(c.rc, 0);
    return c;
}

/* sql's value once it is at most want, or after 10 s of asking again (a bound far past what the
 * writer waits before it works by itself: KF_SQLITE_SEARCH_DELAY_MS, KF_SQLITE_MERGE_IDLE_MS). */
static int64_t sql_int_after_poll(const suite_fixture_t *f, const char *sql, int64_t want)
{
    int64_t value = sql_int(f, sql);
    for (int i = 0; i < 200 && value > want; i++) {
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
        value = sql_int(f, sql);
    }
    return value;
}

/* What waits for the search index once the writer has had 10 s to index it by itself. */
static int64_t search_waiting_after_poll(const suite_fixture_t *f)
{
    return sql_int_after_poll(f, "SELECT count(*) FROM search_pending", 0);
}

/* Messages reach the search index in batches (migration 17): a stored message waits in
 * search_pending, a search indexes what waits before it reads (so it finds every message stored
 * before it), an idle writer indexes what waits by itself after a delay, a full batch's worth is
 * indexed between two batches, and what waits at a stop is indexed after the next start. Never
 * twice: the hits are counted. */
static void test_sqlite_search_index_batches(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "Ann");
    int64_t conversation = suite_open_conversation(f, visitor, "parcel one", SUITE_NOW, NULL);
    suite_add_message(f, conversation, 0, "parcel two");
    assert_true(sql_int(f, "SELECT count(*) FROM search_pending") > 0);
    assert_int_equal(search_count(f, "parcel").count, 2);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM search_pending"), 0);

    /* Idle: the writer indexes by itself. */
    int64_t third = suite_add_message(f, conversation, 0, "parcel three");
    assert_int_equal(search_waiting_after_poll(f), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM message_search WHERE message_search "
                                "MATCH 'parcel'"),
                     3);

    /* A full batch's worth waiting: the writer indexes it between two batches, in a
     * transaction of its own, without a search asking. */
    for (int i = 0; i < KF_SQLITE_SEARCH_BATCH; i++)
        suite_add_message(f, conversation, 0, "crate");
    assert_int_equal(search_waiting_after_poll(f), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM message_search WHERE message_search "
                                "MATCH 'crate'"),
                     KF_SQLITE_SEARCH_BATCH);

    /* A stop with a message waiting, as a crash after its commit leaves it: the next start
     * indexes it, once. */
    kf_store_close(f->store);
    f->store = NULL;
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO messages (conversation_id, sender, body, created_at) "
             "VALUES (%" PRId64 ", 0, 'parcel four', 1764100000000);"
             "INSERT INTO search_pending (id) SELECT max(id) FROM messages;",
             conversation);
    sql_exec(f, sql);
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    search_count_t hits = search_count(f, "parcel");
    assert_int_equal(hits.count, 4);
    assert_int_equal(hits.newest, third + 1 + KF_SQLITE_SEARCH_BATCH);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM search_pending"), 0);
}

/* The segments of the messages' index (one b-tree each; every one has a row in its _idx table)
 * once the writer has had 10 s to merge them by itself down to want. */
static int64_t segments_after_poll(const suite_fixture_t *f, int64_t want)
{
    return sql_int_after_poll(f, "SELECT count(DISTINCT segid) FROM message_search_idx", want);
}

/* Each index batch writes a segment of its own; once the writer is idle it merges them (two on a
 * level are enough: usermerge 2, migration 23), and every message is found as before. */
static void test_sqlite_search_merge_idle(void **state)
{
    suite_fixture_t *f = *state;
    assert_int_equal(sql_int(f, "SELECT v FROM message_search_config WHERE k = 'usermerge'"), 2);
    assert_int_equal(sql_int(f, "SELECT v FROM visitor_search_config WHERE k = 'usermerge'"), 2);
    int64_t visitor = suite_add_visitor(f, "token-a", "Ann");
    int64_t conversation = suite_open_conversation(f, visitor, "lantern 0", SUITE_NOW, NULL);
    /* A search before each message makes the writer index what waits: a batch, a segment. */
    for (int i = 1; i <= 6; i++) {
        assert_int_equal(search_count(f, "lantern").count, i);
        char body[32];
        snprintf(body, sizeof body, "lantern %d", i);
        suite_add_message(f, conversation, 0, body);
    }
    search_count_t hits = search_count(f, "lantern");
    assert_int_equal(hits.count, 7);
    assert_int_equal(segments_after_poll(f, 1), 1);
    search_count_t merged = search_count(f, "lantern");
    assert_int_equal(merged.count, 7);
    assert_int_equal(merged.newest, hits.newest);
    /* A write after the merge: its own segment again, merged once two are on a level. */
    suite_add_message(f, conversation, 0, "lantern 7");
    assert_int_equal(search_count(f, "lantern").count, 8);
    suite_add_message(f, conversation, 0, "lantern 8");
    assert_int_equal(search_count(f, "lantern").count, 9);
    assert_int_equal(segments_after_poll(f, 1), 1);
    assert_int_equal(search_count(f, "lantern").count, 9);
}

/* A database from before the search (version 5 is its migration's) gets its index at the next
 * start, filled with the messages and visitors' names it holds, and goes on indexing what comes
 * after. */
static void test_sqlite_migration_fills_search(void **state)
{
    suite_fixture_t *f = *state;
    int64_t latest = sql_int(f, "SELECT value FROM settings WHERE key = 'schema_version'");
    int64_t visitor = suite_add_visitor(f, "token-a", "Li Na 李娜");
    suite_add_visitor(f, "token-b", "");
    int64_t first = 0;
    int64_t conversation = suite_open_conversation(f, visitor, "我要退款", SUITE_NOW, &first);
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t answer = suite_add_message(f, conversation, agent, "Your refund is on its way");
    kf_store_close(f->store);
    f->store = NULL;
    sql_exec(f, UNDO_VISITOR_DETAILS);
    undo_teams(f);
    rewind_notes(f);
    sql_int(f, "DROP TABLE canned_replies");
    sql_int(f, "DROP TABLE message_search");
    sql_int(f, "DROP TABLE visitor_search");
    sql_int(f, "UPDATE settings SET value = '4' WHERE key = 'schema_version'");

    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    assert_int_equal(sql_int(f, "SELECT value FROM settings WHERE key = 'schema_version'"), latest);
    search_count_t c = search_count(f, "退款");
    assert_int_equal(c.count, 1);
    assert_int_equal(c.newest, first);
    c = search_count(f, "refund");
    assert_int_equal(c.count, 1);
    assert_int_equal(c.newest, answer);
    c = search_count(f, "李娜");
    assert_int_equal(c.count, 1);
    assert_int_equal(c.newest, answer); /* the conversation's newest message */
    int64_t later = suite_add_message(f, conversation, 0, "退款到了吗");
    c = search_count(f, "退款");
    assert_int_equal(c.count, 2);
    assert_int_equal(c.newest, later);
}

/* A file made with SQLite's 4 KiB pages keeps them (WAL mode fixes the size; changing it would
 * take a VACUUM out of WAL mode), and its search indexes' leaves are sized to them. */
static void test_sqlite_keeps_the_page_size_of_a_file(void **state)
{
    suite_fixture_t *f = *state;
    kf_store_close(f->store);
    f->store = NULL;
    assert_int_equal(truncate(db_path(f), 0), 0); /* an empty file: a database with no pages */
    sql_exec(f, "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; "
                "CREATE TABLE made_before (x INTEGER)");
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    assert_int_equal(sql_int(f, "PRAGMA page_size"), 4096);
    assert_int_equal(sql_int(f, "SELECT v FROM message_search_config WHERE k = 'pgsz'"), 4050);
    /* It works as any store: its messages go in and are found. */
    int64_t visitor = suite_add_visitor(f, "kept-pages", "Kept");
    int64_t conversation = suite_open_conversation(f, visitor, "parcel one", SUITE_NOW, NULL);
    for (int i = 0; i < 60; i++)
        suite_add_message(f, conversation, 0, "parcel again, in a store of 4 KiB pages");
    assert_int_equal(search_count(f, "parcel").count, 61);
    kf_store_close(f->store);
    f->store = NULL;
    sqlite_db_check(f->db);
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    assert_int_equal(sql_int(f, "PRAGMA page_size"), 4096);
}

/* The words a prefix is asked as (search_words, migration 19): the writer keeps them as it
 * indexes, through kefu_search_words' own tokenizing, and the migration fills them from the
 * index; both give the index's words of ASCII letters and digits, two or more, folded as it
 * folds them. */
static void test_sqlite_search_words(void **state)
{
    suite_fixture_t *f = *state;
    static const char *const expected = "2fa abc au cafe is its lait on refund refunded way your";
    static const char *const words_sql =
        "SELECT group_concat(word, ' ') FROM (SELECT word FROM search_words ORDER BY word)";
    int64_t visitor = suite_add_visitor(f, "token-a", "Li Na");
    int64_t conversation = suite_open_conversation(f, visitor, "我要退款", SUITE_NOW, NULL);
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    suite_add_message(f, conversation, agent, "Your refund is on its way");
    suite_add_message(f, conversation, 0, "Refunded! Café au lait, abc中文 x 2FA refund");
    assert_int_equal(search_count(f, "refun").count, 2); /* indexes what waits, then asks */
    char *kept = sql_text(f, words_sql);
    assert_string_equal(kept, expected);
    free(kept);

    kf_store_close(f->store);
    f->store = NULL;
    sql_exec(f, UNDO_SEARCH_WORDS "UPDATE settings SET value = '18' WHERE key = 'schema_version';");
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    char *filled = sql_text(f, words_sql);
    assert_string_equal(filled, expected);
    free(filled);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM sqlite_master WHERE name = "
                                "'message_search_terms'"),
                     0);
    assert_int_equal(search_count(f, "refun").count, 2);
    assert_int_equal(search_count(f, "caf").count, 1);
    suite_add_message(f, conversation, agent, "Refundable, as said");
    assert_int_equal(search_count(f, "refun").count, 3);
    char *more = sql_text(f, words_sql);
    assert_string_equal(more, "2fa abc as au cafe is its lait on refund refundable refunded said "
                              "way your");
    free(more);
}

/* A prefix of ASCII letters and digits is asked as the words it starts (expand_prefixes), or as
 * its exact word when it starts none: for each query here the search finds the messages FTS5's
 * own prefix finds, words that go on in other letters ("straße" for "stra") and prefixes of no
 * word at all included; and the list holds the words with such tails, from the writer and from
 * the migration that adds them. */
static void test_sqlite_prefix_words_agree_with_fts5(void **state)
{
    suite_fixture_t *f = *state;
    static const char *const texts[] = {
        "Die Straße ist lang", "a strange strap", "øre and ørsted", "naïve café",
        "refund2ø please",     "ok ok ok",        "Olga wrote",     "2fa code 2fø",
        "straßenbahn, stray",  "我要退款 refund", "Łódź lodz",      "xyz"};
    static const char *const queries[] = {"stra", "stras", "straß",   "str",     "olg", "olga",
                                          "ok",   "oka",   "refund2", "refund3", "2f",  "lod",
                                          "naiv", "caf",   "stra ok", "xy",      "zz"};
    int64_t visitor = suite_add_visitor(f, "token-a", "Li Na");
    int64_t conversation = suite_open_conversation(f, visitor, "hello", SUITE_NOW, NULL);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        suite_add_message(f, conversation, 0, texts[i]);
    assert_int_equal(search_count(f, "zz").count, 0); /* indexes what waits */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++) {
            char *match = NULL;
            assert_int_equal(kf_search_match(queries[q], &match), 0);
            char sql[512];
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM message_search WHERE message_search MATCH '%s'", match);
            free(match);
            int64_t want = sql_int(f, sql);
            int64_t got = search_count(f, queries[q]).count;
            if (got != want)
                fail_msg("%s: FTS5 finds %lld, the search %lld", queries[q], (long long)want,
                         (long long)got);
        }
        char *words = sql_text(f, "SELECT group_concat(word, ' ') FROM (SELECT word FROM "
                                  "search_words WHERE word GLOB '*[^0-9a-z]*' ORDER BY word)");
        assert_string_equal(words, "2fø refund2ø straße straßenbahn");
        free(words);
        /* Again after a store from before migration 20, whose list held ASCII words alone. */
        kf_store_close(f->store);
        f->store = NULL;
        sql_exec(f,
                 UNDO_NAME_WORDS "DELETE FROM search_words WHERE word GLOB '*[^0-9a-z]*';"
                                 "UPDATE settings SET value = '19' WHERE key = 'schema_version';");
        assert_int_equal(sqlite_open(f->db, &f->store), 0);
    }
}

/* The names' words (name_words, migration 21), as the messages' above: the writer keeps them when
 * a visitor is created or their name or e-mail changes, the migration fills them from the index,
 * and a name's prefix finds the visitors FTS5's own prefix finds, a prefix of no word included
 * (the word before it, "olga", no longer walked). */
static void test_sqlite_name_words_agree_with_fts5(void **state)
{
    suite_fixture_t *f = *state;
    static const char *const names[] = {
        "Olga Smith", "Olga Straße", "Ørsted Lund", "李娜",       "olga",
        "Li Na",      "Stray Cat",   "Łódź Olgas",  "Refundo Ng", ""};
    static const char *const queries[] = {"olg", "olga", "olgas",  "olgb", "stra",     "str", "ng",
                                          "li",  "lod",  "refund", "cust", "customer", "zz"};
    static const char *const words_sql =
        "SELECT group_concat(word, ' ') FROM (SELECT word FROM name_words ORDER BY word)";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char token[16];
        snprintf(token, sizeof token, "token-%zu", i);
        int64_t visitor = suite_add_visitor(f, token, names[i]);
        suite_open_conversation(f, visitor, "hello", SUITE_NOW + (int64_t)i, NULL);
        if (names[i][0] == '\0') {
            /* A nameless visitor who leaves an e-mail. */
            seen_t *seen = seen_new();
            assert_int_equal(
                suite_wait(f,
                           f->store->ops->visitor_update(f->store, visitor, NULL,
                                                         "customer7@example.com", on_done, seen),
                           seen),
                0);
            seen_free(seen);
        }
    }
    static const char *const expected =
        "cat com customer7 example li lund na ng olga olgas refundo smith stray straße";
    for (int round = 0; round < 2; round++) {
        char *words = sql_text(f, words_sql);
        assert_string_equal(words, expected);
        free(words);
        for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++) {
            char sql[160];
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM visitor_search WHERE visitor_search MATCH '\"%s\"*'",
                     queries[q]);
            int64_t want = sql_int(f, sql);
            int64_t got = search_count(f, queries[q]).count;
            if (got != want)
                fail_msg("%s: FTS5 finds %lld visitors, the search %lld", queries[q],
                         (long long)want, (long long)got);
        }
        /* Again after a store from before migration 21: the list filled from the index. */
        kf_store_close(f->store);
        f->store = NULL;
        sql_exec(f,
                 UNDO_NAME_WORDS "UPDATE settings SET value = '20' WHERE key = 'schema_version';");
        assert_int_equal(sqlite_open(f->db, &f->store), 0);
        assert_int_equal(sql_int(f, "SELECT count(*) FROM sqlite_master WHERE name = "
                                    "'visitor_search_terms'"),
                         0);
    }
}

/* The conversation's columns a message's statement keeps, from a store of version 21 (whose
 * triggers kept them) on: migration 22 drops the triggers, and the writer's statement stamps as
 * they did. A note is no reply, an agent's message before the visitor's is none either, and a
 * reply stays the first. */
static void test_sqlite_migrates_to_stamps(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t bo = suite_add_agent(f, "bo@example.com", "Bo");
    int64_t visitor = suite_add_visitor(f, "token-a", "");
    int64_t before = suite_open_conversation(f, visitor, "hi", SUITE_NOW, NULL);
    kf_store_close(f->store);
    f->store = NULL;
    sql_exec(f, UNDO_STAMPS "UPDATE settings SET value = '21' WHERE key = 'schema_version';");
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    assert_int_equal(sql_int(f, "SELECT value FROM settings WHERE key = 'schema_version'"), 23);
    assert_int_equal(
        sql_int(f, "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = "
                   "'messages'"),
        0);

    /* An agent writes first (an invitation): no visitor message yet, so no reply. */
    int64_t other = suite_add_visitor(f, "token-b", "");
    seen_t *seen = seen_new();
    kf_message_new_t invite = {.visitor_id = other,
                               .sender = KF_SENDER_AGENT,
                               .agent_id = bo,
                               .body = "can I help?",
                               .now = SUITE_NOW + 100};
    assert_int_equal(suite_send(f, seen, &invite), 0);
    int64_t invited = last_result(seen)->message.conversation_id;
    int64_t invite_id = last_result(seen)->message.id;
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT last_message_id = %" PRId64 " AND updated_at = %" PRId64
             " AND first_visitor_at IS NULL AND first_reply_at IS NULL FROM conversations "
             "WHERE id = %" PRId64,
             invite_id, SUITE_NOW + 100, invited);
    assert_int_equal(sql_int(f, sql), 1);
    suite_open_conversation(f, other, "yes please", SUITE_NOW + 200, NULL);
    suite_add_message_at(f, invited, ana, "here I am", SUITE_NOW + 300);

    /* In the conversation from before: a note, then two replies. */
    kf_message_new_t note = {.conversation_id = before,
                             .sender = KF_SENDER_AGENT,
                             .agent_id = bo,
                             .body = "a note",
                             .now = SUITE_NOW + 1000,
                             .is_private = true};
    assert_int_equal(suite_send(f, seen, &note), 0);
    suite_add_message_at(f, before, ana, "hello", SUITE_NOW + 2000);
    int64_t last = suite_add_message_at(f, before, bo, "more", SUITE_NOW + 3000);
    snprintf(sql, sizeof sql,
             "SELECT first_visitor_at = %" PRId64 " AND first_reply_at = %" PRId64
             " AND first_reply_agent_id = %" PRId64 " AND last_message_id = %" PRId64
             " AND updated_at = %" PRId64 " FROM conversations WHERE id = %" PRId64,
             SUITE_NOW, SUITE_NOW + 2000, ana, last, SUITE_NOW + 3000, before);
    assert_int_equal(sql_int(f, sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT first_visitor_at = %" PRId64 " AND first_reply_at = %" PRId64
             " AND first_reply_agent_id = %" PRId64 " FROM conversations WHERE id = %" PRId64,
             SUITE_NOW + 200, SUITE_NOW + 300, ana, invited);
    assert_int_equal(sql_int(f, sql), 1);
    seen_free(seen);
}

/* A database from before reports (version 8) gets the conversations' report columns filled from
 * their messages: the first visitor message, the first reply that is no note, and a resolved
 * conversation stamped at its last message in its holder's name; the trigger keeps them after. */
static void test_sqlite_migrates_to_reports(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = suite_add_visitor(f, "token-a", "");
    int64_t other = suite_add_visitor(f, "token-b", "");
    int64_t answered = suite_open_conversation(f, visitor, "hi", SUITE_NOW, NULL);
    seen_t *seen = seen_new();
    kf_message_new_t note = {.conversation_id = answered,
                             .sender = KF_SENDER_AGENT,
                             .agent_id = ana,
                             .body = "note",
                             .now = SUITE_NOW + 1000,
                             .is_private = true};
    assert_int_equal(suite_send(f, seen, &note), 0);
    suite_add_message_at(f, answered, ana, "hello", SUITE_NOW + 5000);
    suite_add_message_at(f, answered, ana, "more", SUITE_NOW + 9000);
    kf_conversation_assign_t hold = {
        .conversation_id = answered, .set_agent = true, .agent_id = ana};
    assert_int_equal(
        suite_wait(f, f->store->ops->conversation_assign(f->store, &hold, on_done, seen), seen), 0);
    assert_int_equal(suite_set_status(f, answered, "resolved"), 0);
    int64_t waiting = suite_open_conversation(f, other, "anyone?", SUITE_NOW + 2000, NULL);
    kf_store_close(f->store);
    f->store = NULL;
    undo_ratings(f);
    sql_exec(f, "DROP TRIGGER messages_first_reply;"
                "DROP INDEX messages_by_time;"
                "DROP INDEX conversations_by_created;"
                "ALTER TABLE conversations DROP COLUMN first_visitor_at;"
                "ALTER TABLE conversations DROP COLUMN first_reply_at;"
                "ALTER TABLE conversations DROP COLUMN first_reply_agent_id;"
                "ALTER TABLE conversations DROP COLUMN resolved_at;"
                "ALTER TABLE conversations DROP COLUMN resolved_by;"
                "UPDATE settings SET value = '9' WHERE key = 'schema_version';");
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT first_visitor_at = %" PRId64 " AND first_reply_at = %" PRId64
             " AND first_reply_agent_id = %" PRId64 " AND resolved_at = %" PRId64
             " AND resolved_by = %" PRId64 " FROM conversations WHERE id = %" PRId64,
             SUITE_NOW, SUITE_NOW + 5000, ana, SUITE_NOW + 9000, ana, answered);
    assert_int_equal(sql_int(f, sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT first_visitor_at = %" PRId64 " AND first_reply_at IS NULL AND resolved_at "
             "IS NULL FROM conversations WHERE id = %" PRId64,
             SUITE_NOW + 2000, waiting);
    assert_int_equal(sql_int(f, sql), 1);
    suite_add_message_at(f, waiting, ana, "here", SUITE_NOW + 7000);
    snprintf(sql, sizeof sql,
             "SELECT first_reply_at = %" PRId64 " FROM conversations WHERE id = %" PRId64,
             SUITE_NOW + 7000, waiting);
    assert_int_equal(sql_int(f, sql), 1);
    seen_free(seen);
}

/* A database from before canned replies (version 5) gets their table at the next start, with its
 * rules: each agent's shortcuts unique whatever their case, kept across restarts. */
static void test_sqlite_migrates_to_canned(void **state)
{
    suite_fixture_t *f = *state;
    int64_t ana = suite_add_agent_as(f, "ana@example.com", "Ana", "admin");
    kf_store_close(f->store);
    f->store = NULL;
    sql_exec(f, UNDO_VISITOR_DETAILS);
    undo_teams(f);
    rewind_notes(f);
    sql_int(f, "DROP TABLE canned_replies");
    sql_int(f, "UPDATE settings SET value = '5' WHERE key = 'schema_version'");

    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    assert_int_equal(sql_int(f, "SELECT value FROM settings WHERE key = 'schema_version'"), 23);
    seen_t *seen = seen_new();
    const kf_store_ops_t *ops = f->store->ops;
    assert_int_equal(
        suite_wait(f,
                   ops->canned_create(f->store, ana, true, "hi", "Hi!", SUITE_NOW, on_done, seen),
                   seen),
        0);
    assert_int_equal(
        suite_wait(f, ops->canned_create(f->store, ana, false, "HI", "x", SUITE_NOW, on_done, seen),
                   seen),
        KF_EEXISTS);
    suite_reopen(f);
    seen->canned_count = 0;
    assert_int_equal(suite_wait(f, ops->canned_list(f->store, ana, on_canned, on_done, seen), seen),
                     0);
    assert_int_equal(seen->canned_count, 1);
    assert_string_equal(seen->canned[0].body, "Hi!");
    seen_free(seen);
    /* The index holds within the team even for a writer that skips the store's check. */
    kf_store_close(f->store);
    f->store = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path(f), &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO canned_replies (shortcut, body, created_at, "
                                      "updated_at) VALUES ('hI', 'again', 1, 1)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
}

/* The search walks the index in message id order and stops at the limit: no sort of every hit. */
static void test_sqlite_search_plan(void **state)
{
    suite_fixture_t *f = *state;
    assert_true(plan_uses(f, "SEARCH", "VIRTUAL TABLE INDEX"));
    assert_true(plan_uses(f, "SEARCH", "conversations_by_visitor"));
    /* A common name's hits: the conversations newest message first, no sort of them, and no
     * set of every matching visitor made first (kefu_name_walk reads them as it goes). */
    assert_true(plan_uses(f, "SEARCH_MANY", "COVERING INDEX conversations_by_last_message"));
    assert_false(plan_uses(f, "SEARCH_MANY", "LIST SUBQUERY"));
    /* A prefix's next word: one seek of the words' own key. */
    assert_true(plan_uses(f, "SEARCH_TERM_NEXT", "SEARCH search_words USING PRIMARY KEY"));
}

/* A common name's walk tests a visitor far below those it has read by the visitor's text alone
 * (sqlite_names.c): for every name and query here, kf_sqlite_name_test_match says what FTS5's
 * own MATCH of the visitor says, for the queries as kf_search_match makes them and as
 * expand_prefixes rewrites them. */
static void test_sqlite_name_test_agrees_with_fts5(void **state)
{
    suite_fixture_t *f = *state;
    static const char *const names[] = {
        "Olga",          "Olga Petrova", "Olgana",        "olga5",
        "Olga 5",        "Min-jun Kim",  "王芳",          "王芳芳",
        "李娜 Li",       "José Álvarez", "Zoë O'Brien",   "ana.lee@example.com",
        "Ana Lee",       "Łukasz Żółw",  "Ольга",         "สมชาย ใจดี",
        "佐藤 さくら",   "김민준",       "Nguyễn Văn An", "x",
        "A-B-C",         "Ümit",         "Muller Müller", "test123 abc",
        "Olga's friend", "我要退款了"};
    static const char *const queries[] = {
        "olga",    "Olga Petrova", "petrova olga", "olg",         "ol",     "min-jun",  "jun kim",
        "王芳",    "芳 li",        "王 li",        "李娜 li",     "jose",   "josé álv", "zoe",
        "o'brien", "brien",        "ana.lee",      "example.com", "lukasz", "ольга",    "ольг",
        "สมชาย",   "さくら",       "민준",         "nguyen van",  "a-b",    "umit",     "muller",
        "test12",  "friend",       "s friend",     "要退款",      "退 ana", "5 olga",   "olga 5"};
    static const char *const expanded[] = {
        "(\"olga\" OR \"olgana\")", "(\"olga\" OR \"olgana\") AND \"petrova\"*",
        "\"olga\" AND (\"5\" OR \"olga5\")", "(\"muller\") AND \"muller\"", "\"olga\"* \"friend\""};
    size_t count = sizeof names / sizeof names[0];
    for (size_t i = 0; i < count; i++) {
        char token[16];
        snprintf(token, sizeof token, "agree-%zu", i);
        suite_add_visitor(f, token, names[i]);
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path(f), &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(kf_sqlite_define_functions(db), 0);
    sqlite3_stmt *text = NULL;
    sqlite3_stmt *fts = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT id, kefu_search_text(" KF_SQLITE_VISITOR_SEARCH_TEXT
                                        ") FROM visitors WHERE name != '' ORDER BY id",
                                        -1, &text, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM visitor_search "
                                        "WHERE visitor_search MATCH ?1 AND rowid = ?2",
                                        -1, &fts, NULL),
                     SQLITE_OK);
    size_t query_count = sizeof queries / sizeof queries[0];
    size_t total = query_count + sizeof expanded / sizeof expanded[0];
    int matched = 0;
    int missed = 0;
    for (size_t q = 0; q < total; q++) {
        char *match = NULL;
        if (q < query_count)
            assert_int_equal(kf_search_match(queries[q], &match), 0);
        else
            match = strdup(expanded[q - query_count]);
        assert_non_null(match);
        if (match[0] == '\0') {
            free(match);
            continue;
        }
        kf_sqlite_name_test_t *test = NULL;
        assert_int_equal(kf_sqlite_name_test_new(db, match, &test), 0);
        while (sqlite3_step(text) == SQLITE_ROW) {
            sqlite3_bind_text(fts, 1, match, -1, SQLITE_STATIC);
            sqlite3_bind_int64(fts, 2, sqlite3_column_int64(text, 0));
            assert_int_equal(sqlite3_step(fts), SQLITE_ROW);
            int want = sqlite3_column_int(fts, 0);
            sqlite3_reset(fts);
            int got = kf_sqlite_name_test_match(test, (const char *)sqlite3_column_text(text, 1),
                                                (size_t)sqlite3_column_bytes(text, 1));
            if (got != want)
                fail_msg("%s against %s: FTS5 says %d, the test %d", match,
                         (const char *)sqlite3_column_text(text, 1), want, got);
            matched += want;
            missed += !want;
        }
        sqlite3_reset(text);
        kf_sqlite_name_test_free(test);
        free(match);
    }
    /* Both answers were given many times. */
    assert_true(matched > 40);
    assert_true(missed > 500);
    /* An expression of another form is refused, not guessed at. */
    kf_sqlite_name_test_t *test = NULL;
    assert_int_equal(kf_sqlite_name_test_new(db, "olga NOT petrova", &test), KF_EINVAL);
    assert_int_equal(kf_sqlite_name_test_new(db, "(\"olga\"", &test), KF_EINVAL);
    assert_null(test);
    sqlite3_finalize(text);
    sqlite3_finalize(fts);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* ---- a full disk ---- */

/* What the store's health account told (kf_store_set_health). */
typedef struct health_log {
    int calls;
    bool writable;
    uint64_t refused;
} health_log_t;

static void health_cb(void *data, bool writable, uint64_t refused)
{
    health_log_t *log = data;
    log->calls++;
    log->writable = writable;
    log->refused = refused;
}

/* With no space left every write fails with KF_EUNAVAIL (a 503 for the client, who may retry),
 * reads go on, and once space is back the store writes again by itself, its database whole. The
 * store's account says so once each way, not once per refused write. */
static void test_sqlite_disk_full(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "before", SUITE_NOW, NULL);
    static char body[64 * 1024]; /* several pages: the log must grow */
    memset(body, 'x', sizeof body - 1);
    health_log_t health = {0};
    kf_store_set_health(f->store, health_cb, &health);
    assert_true(kf_store_writable(f->store));

    atomic_store(&disk_full, true);
    seen_t *seen = seen_new();
    kf_message_new_t m = {.conversation_id = conversation, .body = body, .now = SUITE_NOW};
    assert_int_equal(ops->message_add(f->store, &m, on_done, seen), 0);
    assert_int_equal(ops->visitor_create(f->store, "token-b", "B", SUITE_NOW, on_done, seen), 0);
    assert_int_equal(ops->setting_set(f->store, "k", "v", on_done, seen), 0);
    suite_flush(f);
    assert_int_equal(seen->result_count, 3);
    for (size_t i = 0; i < seen->result_count; i++)
        assert_int_equal(seen->results[i].rc, KF_EUNAVAIL);
    assert_int_equal(
        suite_wait(f, ops->messages_all(f->store, 0, 10, on_message, on_done, seen), seen), 0);
    assert_int_equal(seen->message_count, 1);
    assert_int_equal(health.calls, 1);
    assert_false(health.writable);
    assert_false(kf_store_writable(f->store));

    atomic_store(&disk_full, false);
    assert_int_equal(suite_wait(f, ops->message_add(f->store, &m, on_done, seen), seen), 0);
    assert_int_equal(health.calls, 2);
    assert_true(health.writable);
    assert_int_equal(health.refused, 3);
    assert_true(kf_store_writable(f->store));
    assert_int_equal(
        suite_wait(f, ops->visitor_create(f->store, "token-b", "B", SUITE_NOW, on_done, seen),
                   seen),
        0);
    seen_free(seen);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM messages"), 2);
    /* The teardown checks the database's integrity. */
}

/* The disk fills just as the WAL index must grow (its first region indexes 4,062 frames): the
 * commit that needs the next region is refused with KF_EUNAVAIL like any write on a full disk,
 * not as a failure of the store, and once there is space the next one commits. */
static void test_sqlite_wal_index_full(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "before", SUITE_NOW, NULL);
    /* 17 frames of 1 KiB a message and about as many for its search index: a hundred or more
     * reach the edge */
    static char body[16 * 1024];
    memset(body, 'y', sizeof body - 1);
    kf_message_new_t m = {.conversation_id = conversation, .body = body, .now = SUITE_NOW};

    atomic_store(&shm_full, true);
    int rc = 0;
    int stored = 0;
    while (rc == 0) {
        assert_true(stored < 1000); /* the log must have reached the index's edge by now */
        seen_t *one = seen_new();
        rc = suite_wait(f, ops->message_add(f->store, &m, on_done, one), one);
        seen_free(one);
        if (rc == 0)
            stored++;
    }
    assert_int_equal(rc, KF_EUNAVAIL);
    seen_t *seen = seen_new();
    assert_true(stored > 60);
    assert_int_equal(suite_wait(f, ops->message_add(f->store, &m, on_done, seen), seen),
                     KF_EUNAVAIL);

    atomic_store(&shm_full, false);
    assert_int_equal(suite_wait(f, ops->message_add(f->store, &m, on_done, seen), seen), 0);
    seen_free(seen);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM messages"), stored + 2);
}

/* ---- the view counts kept on write (migration "kept counts") ---- */

/* The counts' key of a conversation row, as the migration writes it, for the recounts below. */
#define COUNTS_KEY                                                                                 \
    "COALESCE(team_id, 0) AS t, status AS s, "                                                     \
    "CASE WHEN status = 'resolved' THEN 0 ELSE COALESCE(assignee_id, 0) END AS a"

/* How many (team, status, holder) keys conversation_counts has wrong: a key of the conversations
 * counted differently there, or a row there that the conversations do not bear out. */
static int64_t counts_table_errors(const suite_fixture_t *f)
{
    return sql_int(f, "SELECT (SELECT count(*) FROM (SELECT " COUNTS_KEY ", count(*) AS c "
                      "  FROM conversations GROUP BY 1, 2, 3) r WHERE r.c IS NOT (SELECT n "
                      "  FROM conversation_counts k WHERE k.team_id = r.t AND k.status = r.s "
                      "  AND k.assignee_id = r.a)) + (SELECT count(*) FROM conversation_counts k "
                      "  WHERE k.n != (SELECT count(*) FROM (SELECT " COUNTS_KEY
                      "  FROM conversations) r WHERE r.t = k.team_id AND r.s = k.status "
                      "  AND r.a = k.assignee_id))");
}

/* One team's counts, as conversation_team_counts hands them over. */
typedef struct team_counts {
    int64_t team_id[8];
    int64_t counts[8][KF_VIEW_COUNT];
    size_t count;
    int rc;
    bool done;
} team_counts_t;

static int on_team_counts(void *ctx, int64_t team_id, const int64_t *counts)
{
    team_counts_t *seen = ctx;
    assert_true(seen->count < 8);
    seen->team_id[seen->count] = team_id;
    memcpy(seen->counts[seen->count], counts, sizeof seen->counts[0]);
    seen->count++;
    return 0;
}

static void on_team_counts_done(void *ctx, const kf_store_result_t *result)
{
    team_counts_t *seen = ctx;
    seen->rc = result->rc;
    seen->done = true;
}

/* Each view's WHERE over the conversations, written apart from the store's statements so the
 * checks below count what the views should hold (%1$ is the agent, for mine). */
static const char *const view_where[KF_VIEW_COUNT] = {
    [KF_VIEW_ALL] = "1",
    [KF_VIEW_UNASSIGNED] = "status = 'open' AND assignee_id IS NULL",
    [KF_VIEW_MINE] = "assignee_id = %1$" PRId64 " AND status != 'resolved'",
    [KF_VIEW_OPEN] = "status = 'open'",
    [KF_VIEW_PENDING] = "status = 'pending'",
    [KF_VIEW_RESOLVED] = "status = 'resolved'",
    [KF_VIEW_SNOOZED] = "status = 'snoozed'",
};

/* What the views held, counted over the conversations themselves (each view's own WHERE, as
 * the lists select it), agent's mine included, within one team (team 0: the whole desk). */
static void recount(const suite_fixture_t *f, int64_t agent, int64_t team, int64_t *counts)
{
    for (int view = 0; view < KF_VIEW_COUNT; view++) {
        char condition[128];
        char sql[256];
        snprintf(condition, sizeof condition, view_where[view], agent);
        if (team != 0)
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM conversations WHERE %s AND team_id = %" PRId64,
                     condition, team);
        else
            snprintf(sql, sizeof sql, "SELECT count(*) FROM conversations WHERE %s", condition);
        counts[view] = sql_int(f, sql);
    }
}

/* The store's counts for each agent, the desk's and every team's, against a recount. */
static void check_counts(suite_fixture_t *f, const int64_t *agents, size_t agent_count,
                         const int64_t *teams, size_t team_count)
{
    for (size_t i = 0; i < agent_count; i++) {
        int64_t expected[KF_VIEW_COUNT];
        recount(f, agents[i], 0, expected);
        seen_t *seen = seen_new();
        assert_int_equal(
            suite_wait(f, f->store->ops->conversation_counts(f->store, agents[i], on_done, seen),
                       seen),
            0);
        assert_memory_equal(last_result(seen)->counts, expected, sizeof expected);
        seen_free(seen);
        team_counts_t got = {0};
        assert_int_equal(f->store->ops->conversation_team_counts(
                             f->store, agents[i], on_team_counts, on_team_counts_done, &got),
                         0);
        suite_flush(f);
        assert_true(got.done);
        assert_int_equal(got.rc, 0);
        /* Every team with a conversation, in id order; none without. */
        size_t next = 0;
        for (size_t t = 0; t < team_count; t++) {
            recount(f, agents[i], teams[t], expected);
            if (expected[KF_VIEW_ALL] == 0)
                continue;
            assert_true(next < got.count);
            assert_int_equal(got.team_id[next], teams[t]);
            assert_memory_equal(got.counts[next], expected, sizeof expected);
            next++;
        }
        assert_int_equal(got.count, next);
    }
}

/* Every view's list for each agent, the desk's and every team's, paged three at a time through
 * the store, against the conversations ordered by their newest message counted from the messages
 * themselves (not last_message_id, which the lists read), then by id. */
static void check_lists(suite_fixture_t *f, const int64_t *agents, size_t agent_count,
                        const int64_t *teams, size_t team_count)
{
    for (size_t a = 0; a < agent_count; a++) {
        for (size_t t = 0; t <= team_count; t++) {
            int64_t team = t == 0 ? 0 : teams[t - 1];
            for (int view = 0; view < KF_VIEW_COUNT; view++) {
                if (view == KF_VIEW_MINE && agents[a] == 0)
                    continue; /* nobody's: refused */
                char condition[128], sql[512];
                snprintf(condition, sizeof condition, view_where[view], agents[a]);
                snprintf(sql, sizeof sql,
                         "SELECT group_concat(id) FROM (SELECT id FROM conversations c WHERE %s "
                         "AND (%" PRId64 " = 0 OR team_id = %" PRId64 ") ORDER BY "
                         "COALESCE((SELECT max(m.id) FROM messages m "
                         "  WHERE m.conversation_id = c.id), 0) DESC, id DESC)",
                         condition, team, team);
                char *expected = sql_text(f, sql);
                seen_t *seen = seen_new();
                kf_conversation_page_t page = {.limit = 3,
                                               .view = (kf_conversation_view_t)view,
                                               .agent_id = agents[a],
                                               .team_id = team};
                for (;;) {
                    size_t before = seen->conversation_count;
                    assert_int_equal(
                        suite_wait(f,
                                   f->store->ops->conversation_list(f->store, &page,
                                                                    on_conversation, on_done, seen),
                                   seen),
                        0);
                    if (seen->conversation_count == before)
                        break;
                    const kf_conversation_t *last =
                        &seen->conversations[seen->conversation_count - 1];
                    page.before_last_message_id =
                        last->has_last_message ? last->last_message.id : 0;
                    page.before_id = last->id;
                }
                char got[SUITE_MAX_ROWS * 8] = "";
                for (size_t i = 0; i < seen->conversation_count; i++)
                    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%" PRId64,
                             i > 0 ? "," : "", seen->conversations[i].id);
                assert_string_equal(got, expected != NULL ? expected : "");
                free(expected);
                seen_free(seen);
            }
        }
    }
}

/* The desk the random writes work on. */
typedef struct counts_desk {
    int64_t agents[4];
    int64_t teams[3];
    int64_t visitors[40];
    size_t visitor_count;
    int64_t conversations[40];
    size_t conversation_count;
    uint32_t random;
} counts_desk_t;

static uint32_t desk_random(counts_desk_t *desk, uint32_t below)
{
    desk->random = desk->random * 1664525u + 1013904223u; /* Numerical Recipes' LCG */
    return (desk->random >> 8) % below;
}

static void desk_setup(suite_fixture_t *f, counts_desk_t *desk, uint32_t seed)
{
    memset(desk, 0, sizeof *desk);
    desk->random = seed;
    static const char *const emails[] = {"a@example.com", "b@example.com", "c@example.com",
                                         "d@example.com"};
    for (size_t i = 0; i < 4; i++)
        desk->agents[i] = suite_add_agent(f, emails[i], emails[i]);
    seen_t *seen = seen_new();
    static const char *const names[] = {"Billing", "Sales", "Support"};
    for (size_t i = 0; i < 3; i++) {
        kf_team_change_t team = {.name = names[i], .auto_assign = "off", .reassign_after = 0};
        assert_int_equal(
            suite_wait(f, f->store->ops->team_create(f->store, &team, SUITE_NOW, on_done, seen),
                       seen),
            0);
        desk->teams[i] = last_result(seen)->team.id;
        int64_t members[] = {desk->agents[i], desk->agents[i + 1]};
        assert_int_equal(suite_wait(f,
                                    f->store->ops->team_set_members(f->store, desk->teams[i],
                                                                    members, 2, on_done, seen),
                                    seen),
                         0);
    }
    seen_free(seen);
}

/* One write chosen at random among those that change a conversation's status, holder or team,
 * or make one; refusals (a claim of a held one, a wake of an open one) are part of the mix. */
static void desk_random_write(suite_fixture_t *f, counts_desk_t *desk, int step)
{
    const kf_store_ops_t *ops = f->store->ops;
    int64_t now = SUITE_NOW + step;
    int64_t agent = desk->agents[desk_random(desk, 4)];
    int64_t team = desk->teams[desk_random(desk, 3)];
    uint32_t kind = desk->conversation_count == 0 ? 0 : desk_random(desk, 9);
    int64_t conversation =
        desk->conversation_count == 0
            ? 0
            : desk->conversations[desk_random(desk, (uint32_t)desk->conversation_count)];
    seen_t *seen = seen_new();
    if (kind == 0 && desk->visitor_count < 40) {
        char token[16];
        snprintf(token, sizeof token, "token-%zu", desk->visitor_count);
        int64_t visitor = suite_add_visitor(f, token, "");
        desk->visitors[desk->visitor_count++] = visitor;
        desk->conversations[desk->conversation_count++] =
            suite_open_conversation(f, visitor, "hello", now, NULL);
    } else if (kind <= 1) {
        /* A visitor writes again: a resolved or snoozed thread opens. */
        int64_t visitor = desk->visitors[desk_random(desk, (uint32_t)desk->visitor_count)];
        suite_open_conversation(f, visitor, "again", now, NULL);
    } else if (kind == 2) {
        static const char *const statuses[] = {"open", "pending", "resolved", "snoozed"};
        const char *status = statuses[desk_random(desk, 4)];
        int64_t until = strcmp(status, "snoozed") == 0 ? now + SUITE_HOUR : 0;
        suite_wait(
            f,
            ops->conversation_set_status(f->store, conversation, status, until, now, on_done, seen),
            seen);
    } else if (kind == 3) {
        suite_wait(f, ops->conversation_claim(f->store, conversation, agent, on_done, seen), seen);
    } else if (kind == 4) {
        kf_conversation_assign_t assign = {.conversation_id = conversation,
                                           .set_agent = desk_random(desk, 2) == 0,
                                           .agent_id = desk_random(desk, 3) == 0 ? 0 : agent,
                                           .set_team = true,
                                           .team_id = desk_random(desk, 3) == 0 ? 0 : team,
                                           .now = now};
        suite_wait(f, ops->conversation_assign(f->store, &assign, on_done, seen), seen);
    } else if (kind == 5) {
        /* Disabling lets go of everything the agent held; it comes back at once. */
        kf_agent_change_t off = {.state = KF_AGENT_STATE_DISABLE, .now = now};
        kf_agent_change_t on = {.state = KF_AGENT_STATE_ENABLE, .now = now};
        assert_int_equal(
            suite_wait(f, ops->agent_update(f->store, agent, &off, on_done, seen), seen), 0);
        assert_int_equal(
            suite_wait(f, ops->agent_update(f->store, agent, &on, on_done, seen), seen), 0);
    } else if (kind == 6) {
        suite_wait(
            f, ops->conversation_wake(f->store, conversation, now + 2 * SUITE_HOUR, on_done, seen),
            seen);
    } else if (kind == 7) {
        suite_wait(
            f, ops->conversation_autoassign(f->store, conversation, team, 0, agent, on_done, seen),
            seen);
    } else {
        kf_message_new_t reply = {.conversation_id = conversation,
                                  .sender = KF_SENDER_AGENT,
                                  .agent_id = agent,
                                  .body = "reply",
                                  .now = now};
        suite_send(f, seen, &reply);
    }
    seen_free(seen);
}

/* After any sequence of writes, the counts kept on write are what counting the conversations
 * gives, for every view, agent and team. */
static void test_sqlite_counts_kept_on_write(void **state)
{
    suite_fixture_t *f = *state;
    counts_desk_t desk;
    desk_setup(f, &desk, 20261205u);
    int64_t askers[5] = {0, desk.agents[0], desk.agents[1], desk.agents[2], desk.agents[3]};
    check_counts(f, askers, 5, desk.teams, 3);
    for (int step = 1; step <= 400; step++) {
        desk_random_write(f, &desk, step);
        suite_flush(f);
        assert_int_equal(counts_table_errors(f), 0);
        if (step % 25 == 0) {
            check_counts(f, askers, 5, desk.teams, 3);
            check_lists(f, askers, 5, desk.teams, 3);
        }
    }
    /* Every status and team came up: the mix reached each key. */
    assert_int_equal(sql_int(f, "SELECT count(DISTINCT status) FROM conversations"), 4);
    assert_true(sql_int(f, "SELECT count(DISTINCT team_id) FROM conversations") >= 2);
    /* A restart keeps them. */
    suite_reopen(f);
    check_counts(f, askers, 5, desk.teams, 3);
}

/* Conversations whose last_message_id is not their newest message's id (0 for none). */
#define NEWEST_MESSAGE_ERRORS                                                                      \
    "SELECT count(*) FROM conversations c WHERE c.last_message_id != "                             \
    "COALESCE((SELECT max(m.id) FROM messages m WHERE m.conversation_id = c.id), 0)"

/* A database from before the kept counts gets them at the next start, and each conversation its
 * newest message, from its rows, and both are kept from then on. */
static void test_sqlite_migration_counts(void **state)
{
    suite_fixture_t *f = *state;
    counts_desk_t desk;
    desk_setup(f, &desk, 7u);
    for (int step = 1; step <= 120; step++)
        desk_random_write(f, &desk, step);
    suite_flush(f);
    kf_store_close(f->store);
    f->store = NULL;
    sql_exec(f, UNDO_ATTACHMENTS UNDO_INTEGRATIONS UNDO_COUNTS
             "UPDATE settings SET value = '12' WHERE key = 'schema_version';");
    assert_int_equal(
        sql_int(f, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'conversation_counts%'"), 0);
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    assert_int_equal(sql_int(f, "SELECT value FROM settings WHERE key = 'schema_version'"), 23);
    assert_true(sql_int(f, "SELECT sum(n) FROM conversation_counts") > 0);
    assert_int_equal(counts_table_errors(f), 0);
    assert_int_equal(sql_int(f, NEWEST_MESSAGE_ERRORS), 0);
    int64_t askers[5] = {0, desk.agents[0], desk.agents[1], desk.agents[2], desk.agents[3]};
    check_counts(f, askers, 5, desk.teams, 3);
    for (int step = 121; step <= 200; step++)
        desk_random_write(f, &desk, step);
    suite_flush(f);
    assert_int_equal(counts_table_errors(f), 0);
    assert_int_equal(sql_int(f, NEWEST_MESSAGE_ERRORS), 0);
    check_counts(f, askers, 5, desk.teams, 3);
}

/* A database from before the views were ordered by the newest message (migration 16) lists the
 * same conversations in the same order after it, and keeps them so through more writes. */
static void test_sqlite_migration_activity(void **state)
{
    suite_fixture_t *f = *state;
    counts_desk_t desk;
    desk_setup(f, &desk, 16u);
    for (int step = 1; step <= 150; step++)
        desk_random_write(f, &desk, step);
    suite_flush(f);
    kf_store_close(f->store);
    f->store = NULL;
    sql_exec(f, UNDO_ACTIVITY "UPDATE settings SET value = '15' WHERE key = 'schema_version';");
    assert_int_equal(sql_int(f, "SELECT count(*) FROM sqlite_master WHERE name = "
                                "'conversations_unassigned'"),
                     0);
    assert_int_equal(sqlite_open(f->db, &f->store), 0);
    assert_int_equal(sql_int(f, "SELECT value FROM settings WHERE key = 'schema_version'"), 23);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                "('conversations_by_activity', "
                                "'conversations_by_status_assignee', "
                                "'conversations_by_team_status_assignee')"),
                     0);
    int64_t askers[5] = {0, desk.agents[0], desk.agents[1], desk.agents[2], desk.agents[3]};
    check_lists(f, askers, 5, desk.teams, 3);
    for (int step = 151; step <= 220; step++)
        desk_random_write(f, &desk, step);
    suite_flush(f);
    check_lists(f, askers, 5, desk.teams, 3);
}

#define SQLITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

int main(void)
{
    shim_vfs_install(&full_hooks); /* every store of this program uses it */
    static const struct CMUnitTest sqlite_tests[] = {
        SQLITE_TEST(test_sqlite_group_commit),
        SQLITE_TEST(test_sqlite_migration_fills_search),
        SQLITE_TEST(test_sqlite_search_words),
        SQLITE_TEST(test_sqlite_name_words_agree_with_fts5),
        SQLITE_TEST(test_sqlite_prefix_words_agree_with_fts5),
        SQLITE_TEST(test_sqlite_search_plan),
        SQLITE_TEST(test_sqlite_name_test_agrees_with_fts5),
        SQLITE_TEST(test_sqlite_reads_see_committed_rows_only),
        SQLITE_TEST(test_sqlite_loop_turns_while_a_batch_waits),
        SQLITE_TEST(test_sqlite_notify_for_reads),
        SQLITE_TEST(test_sqlite_checkpointer_bounds_wal),
        SQLITE_TEST(test_sqlite_open_arguments),
        SQLITE_TEST(test_sqlite_pragmas_and_schema),
        SQLITE_TEST(test_sqlite_keeps_the_page_size_of_a_file),
        SQLITE_TEST(test_sqlite_refuses_newer_schema),
        SQLITE_TEST(test_sqlite_migrates_older_versions),
        SQLITE_TEST(test_sqlite_migrates_to_the_desk),
        SQLITE_TEST(test_sqlite_counts_kept_on_write),
        SQLITE_TEST(test_sqlite_migration_counts),
        SQLITE_TEST(test_sqlite_migration_activity),
        SQLITE_TEST(test_sqlite_search_index_batches),
        SQLITE_TEST(test_sqlite_search_merge_idle),
        SQLITE_TEST(test_sqlite_migrates_to_canned),
        SQLITE_TEST(test_sqlite_migrates_to_stamps),
        SQLITE_TEST(test_sqlite_migrates_to_reports),
        SQLITE_TEST(test_sqlite_disk_full),
        SQLITE_TEST(test_sqlite_wal_index_full),
    };
    return store_suite_run(&sqlite_backend, sqlite_tests,
                           sizeof sqlite_tests / sizeof sqlite_tests[0]);
}
