/* test_faults.c: the SQLite store when SQLite cannot allocate. SQLite's allocator is
 * replaced by one that fails its nth allocation; each operation is run with every allocation in
 * turn failing. The store must answer 0 or KF_ESTORE (never crash), leave the database whole (the
 * integrity check passes, what was written before is still there, the store works again once
 * memory is back) and leak nothing (LeakSanitizer, in the ASan build). Only allocations made on
 * the test's thread and on the store's writer thread fail (the test waits while the writer
 * works): the background checkpointer keeps its memory, so that which allocation fails does not
 * depend on timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "store/store.h"

#define NOW INT64_C(1764100000000)
#define MAX_ALLOCATIONS 20000

/* ---- SQLite's allocator, failing on demand ---- */

static sqlite3_mem_methods real_methods;
static pthread_t test_thread;
static unsigned long countdown; /* allocations before the failure; 0 when disarmed */
static bool fired;

/* True on the store's writer thread (by its name; looked up once per thread). */
static bool on_writer_thread(void)
{
    static _Thread_local int writer = -1;
    if (writer < 0) {
        char name[16] = "";
        prctl(PR_GET_NAME, name);
        writer = strcmp(name, "kefu-writer") == 0;
    }
    return writer == 1;
}

static bool fail_now(void)
{
    if (countdown == 0 || (!pthread_equal(pthread_self(), test_thread) && !on_writer_thread()))
        return false;
    if (--countdown > 0)
        return false;
    fired = true;
    return true;
}

static void *failing_malloc(int size)
{
    return fail_now() ? NULL : real_methods.xMalloc(size);
}

static void *failing_realloc(void *p, int size)
{
    return fail_now() ? NULL : real_methods.xRealloc(p, size);
}

static void arm(unsigned long nth)
{
    countdown = nth;
    fired = false;
}

/* ---- fixture ---- */

typedef struct fixture {
    char dir[64];
    char path[128];
    kf_store_t *store;
    int64_t visitor_id;
    int64_t conversation_id;
} fixture_t;

static void remove_dir(const fixture_t *f)
{
    static const char *const files[] = {"kefu.db", "kefu.db-wal", "kefu.db-shm", "kefu.db-journal"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s/%s", f->dir, files[i]);
        unlink(path);
    }
    rmdir(f->dir);
}

/* SQLite's own checks on the closed database, on a connection of its own. */
static void check_integrity(const fixture_t *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/kefu-test-faults-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/kefu.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    arm(0);
    kf_store_close(f->store);
    check_integrity(f);
    remove_dir(f);
    free(f);
    return 0;
}

/* Counts rows. */
static int count_cb(void *ctx, const void *row)
{
    (void)row;
    (*(int *)ctx)++;
    return 0;
}

static int count_message_cb(void *ctx, const kf_message_t *m)
{
    return count_cb(ctx, m);
}
static int count_conversation_cb(void *ctx, const kf_conversation_t *c)
{
    return count_cb(ctx, c);
}
static int count_agent_cb(void *ctx, const kf_agent_t *a)
{
    return count_cb(ctx, a);
}

/* Opens the store with memory to spare and gives it a visitor with a conversation and a message. */
static void open_with_data(fixture_t *f)
{
    assert_int_equal(kf_store_open_sqlite(f->path, "OFF", &f->store), 0);
    const kf_store_ops_t *ops = f->store->ops;
    assert_int_equal(ops->visitor_create(f->store, "hash-v", "Vera", NOW, &f->visitor_id), 0);
    kf_store_sync_t first;
    assert_int_equal(kf_store_message_add_sync(f->store, 0, f->visitor_id, KF_SENDER_VISITOR, 0,
                                               "first", NOW, &first),
                     0);
    f->conversation_id = first.conversation_id;
}

/* ---- opening ---- */

/* Opening (creating the schema, preparing every statement) fails cleanly at each allocation, and
 * whatever a failed open left behind, the next one completes. */
static void test_open(void **state)
{
    fixture_t *f = *state;
    unsigned long nth;
    for (nth = 1; nth < MAX_ALLOCATIONS; nth++) {
        kf_store_t *store = NULL;
        arm(nth);
        int rc = kf_store_open_sqlite(f->path, "OFF", &store);
        bool failed_allocation = fired;
        arm(0);
        if (rc == 0) {
            kf_store_close(store);
        } else {
            assert_int_equal(rc, KF_ESTORE);
            assert_null(store);
        }
        if (!failed_allocation) {
            assert_int_equal(rc, 0);
            break;
        }
    }
    print_message("open: %lu allocations failed in turn\n", nth - 1);
    assert_true(nth > 10);
    open_with_data(f);
}

/* ---- operations ---- */

/* One store operation, run again and again with a different allocation failing each time. */
typedef int (*operation_fn)(fixture_t *f, unsigned long round);

static int op_send(fixture_t *f, unsigned long round)
{
    char body[32];
    snprintf(body, sizeof body, "message %lu", round);
    return kf_store_message_add_sync(f->store, f->conversation_id, 0, KF_SENDER_VISITOR, 0, body,
                                     NOW + (int64_t)round, NULL);
}

static int op_visitor(fixture_t *f, unsigned long round)
{
    char hash[32];
    snprintf(hash, sizeof hash, "hash-%lu", round);
    int64_t id;
    int rc = f->store->ops->visitor_create(f->store, hash, "Round", NOW, &id);
    char name[64];
    if (rc == 0)
        rc = f->store->ops->visitor_by_token(f->store, hash, &id, name, sizeof name);
    return rc;
}

static int op_agent(fixture_t *f, unsigned long round)
{
    char email[48];
    snprintf(email, sizeof email, "agent%lu@example.com", round);
    int64_t id;
    int rc =
        f->store->ops->agent_create(f->store, email, "Agnes", "agent", "scrypt$hash", NOW, &id);
    int seen = 0;
    if (rc == 0)
        rc = f->store->ops->agent_by_email(f->store, email, count_agent_cb, &seen);
    if (rc == 0)
        rc = f->store->ops->agent_by_id(f->store, id, count_agent_cb, &seen);
    int64_t count;
    if (rc == 0)
        rc = f->store->ops->agent_count(f->store, &count);
    return rc;
}

static int op_session(fixture_t *f, unsigned long round)
{
    char hash[32];
    snprintf(hash, sizeof hash, "session-%lu", round);
    int rc = f->store->ops->session_create(f->store, hash, 1, "csrf", NOW, NOW + 1000);
    int64_t agent_id;
    char csrf[64];
    if (rc == 0)
        rc = f->store->ops->session_get(f->store, hash, NOW, &agent_id, csrf, sizeof csrf, NULL);
    if (rc == 0)
        rc = f->store->ops->session_delete(f->store, hash);
    return rc;
}

static int op_read_and_status(fixture_t *f, unsigned long round)
{
    int rc = kf_store_mark_read_sync(f->store, f->conversation_id, KF_SENDER_AGENT, (int64_t)round);
    if (rc == 0)
        rc = f->store->ops->conversation_set_status(f->store, f->conversation_id,
                                                    round % 2 ? "closed" : "open", NOW);
    if (rc == 0)
        rc = f->store->ops->conversation_set_status(f->store, f->conversation_id, "open", NOW);
    return rc;
}

static int op_queries(fixture_t *f, unsigned long round)
{
    (void)round;
    int seen = 0;
    int rc = f->store->ops->conversation_list(f->store, 50, count_conversation_cb, &seen);
    if (rc == 0)
        rc = f->store->ops->conversation_get(f->store, f->conversation_id, count_conversation_cb,
                                             &seen);
    if (rc == 0)
        rc = f->store->ops->messages_in_conversation(f->store, f->conversation_id, 0, 100,
                                                     count_message_cb, &seen);
    if (rc == 0)
        rc = f->store->ops->messages_of_visitor(f->store, f->visitor_id, 0, 100, count_message_cb,
                                                &seen);
    if (rc == 0)
        rc = f->store->ops->messages_all(f->store, 0, 100, count_message_cb, &seen);
    int64_t conversation_id;
    if (rc == 0)
        rc = f->store->ops->conversation_find_open(f->store, f->visitor_id, &conversation_id);
    return rc;
}

static int op_settings(fixture_t *f, unsigned long round)
{
    char value[32];
    snprintf(value, sizeof value, "value-%lu", round);
    int rc = f->store->ops->setting_set(f->store, "fault-test", value);
    char got[32];
    if (rc == 0)
        rc = f->store->ops->setting_get(f->store, "fault-test", got, sizeof got);
    return rc;
}

static const struct {
    const char *name;
    operation_fn run;
} operations[] = {
    {"send (the writer thread)", op_send},
    {"visitors", op_visitor},
    {"agents", op_agent},
    {"sessions", op_session},
    {"read marks and status", op_read_and_status},
    {"queries", op_queries},
    {"settings", op_settings},
};

static void test_operations(void **state)
{
    fixture_t *f = *state;
    open_with_data(f);
    unsigned long round = 0;
    for (size_t i = 0; i < sizeof operations / sizeof operations[0]; i++) {
        unsigned long nth;
        for (nth = 1; nth < MAX_ALLOCATIONS; nth++) {
            arm(nth);
            int rc = operations[i].run(f, ++round);
            bool failed_allocation = fired;
            arm(0);
            if (rc != 0)
                assert_int_equal(rc, KF_ESTORE);
            if (!failed_allocation) {
                assert_int_equal(rc, 0);
                break;
            }
        }
        print_message("%s: %lu allocations failed in turn\n", operations[i].name, nth - 1);
        assert_true(nth > 1);
    }
    /* What was there before is still there, and the store works. */
    int seen = 0;
    assert_int_equal(f->store->ops->messages_in_conversation(f->store, f->conversation_id, 0, 1,
                                                             count_message_cb, &seen),
                     0);
    assert_int_equal(seen, 1);
    assert_int_equal(op_send(f, ++round), 0);
}

int main(void)
{
    /* Before SQLite is first used: its allocator can only be swapped before initialisation. */
    test_thread = pthread_self();
    sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_methods);
    sqlite3_mem_methods methods = real_methods;
    methods.xMalloc = failing_malloc;
    methods.xRealloc = failing_realloc;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) != SQLITE_OK) {
        fprintf(stderr, "cannot replace SQLite's allocator\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operations, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
