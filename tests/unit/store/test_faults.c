/* test_faults.c: the SQLite store when SQLite cannot allocate. SQLite's allocator is
 * replaced by one that fails its nth allocation; each operation is run with every allocation in
 * turn failing (opening, with a sample of them: see test_open). The store must answer 0 or
 * KF_ESTORE (never crash), leave the database whole (the integrity check passes, what was written
 * before is still there, the store works again once memory is back) and leak nothing
 * (LeakSanitizer, in the ASan build). Only allocations made on the test's thread and on the store's
 * writer thread fail (the test waits while the writer works): the background checkpointer keeps its
 * memory, so that which allocation fails does not depend on timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "store/store.h"
#include "store/sync.h"
#include "support/sqlite_db.h"

#define NOW INT64_C(1764100000000)
#define MAX_ALLOCATIONS 20000

/* ---- SQLite's allocator, failing on demand ---- */

static sqlite3_mem_methods real_methods;
static pthread_t test_thread;
/* Atomic: the writer thread counts too, and may still be allocating when the test disarms. */
static atomic_ulong countdown; /* allocations before the failure; 0 when disarmed */
static atomic_bool fired;

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
    if (!pthread_equal(pthread_self(), test_thread) && !on_writer_thread())
        return false;
    unsigned long n = atomic_load(&countdown);
    do {
        if (n == 0)
            return false;
    } while (!atomic_compare_exchange_weak(&countdown, &n, n - 1));
    if (n > 1)
        return false;
    atomic_store(&fired, true);
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
    atomic_store(&countdown, nth);
    atomic_store(&fired, false);
}

/* ---- fixture ---- */

typedef struct fixture {
    sqlite_db_t *db;
    kf_store_t *store;
    int64_t visitor_id;
    int64_t conversation_id;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->db = sqlite_db_create();
    assert_non_null(f->db);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    arm(0);
    kf_store_close(f->store);
    sqlite_db_check(f->db);
    sqlite_db_destroy(f->db);
    free(f);
    return 0;
}

/* What one operation came to: its result code and the rows handed to each. */
typedef struct query {
    int rc;
    int rows;
} query_t;

static void rc_cb(void *ctx, const kf_store_result_t *result)
{
    ((query_t *)ctx)->rc = result->rc;
}

static int count_message_cb(void *ctx, const kf_message_t *m)
{
    (void)m;
    ((query_t *)ctx)->rows++;
    return 0;
}

static int count_conversation_cb(void *ctx, const kf_conversation_t *c)
{
    (void)c;
    ((query_t *)ctx)->rows++;
    return 0;
}

static int count_agent_cb(void *ctx, const kf_agent_t *a)
{
    (void)a;
    ((query_t *)ctx)->rows++;
    return 0;
}

/* Waits for an operation whose done is rc_cb(q): its result code, or the code it was refused
 * with. */
static int wait_for(fixture_t *f, int queued, const query_t *q)
{
    if (queued != 0)
        return queued;
    f->store->ops->flush(f->store);
    return q->rc;
}

/* Opens the store with memory to spare and gives it a visitor with a conversation and a message. */
static void open_with_data(fixture_t *f)
{
    assert_int_equal(kf_store_open_sqlite(f->db->path, "OFF", &f->store), 0);
    assert_int_equal(kf_store_sync_visitor_create(f->store, "hash-v", "Vera", NOW, &f->visitor_id),
                     0);
    kf_message_new_t m = {.visitor_id = f->visitor_id, .body = "first", .now = NOW};
    kf_store_sync_message_t first;
    assert_int_equal(kf_store_sync_message_add(f->store, &m, &first), 0);
    f->conversation_id = first.conversation_id;
}

/* ---- opening ---- */

/* Opening (creating the schema, preparing every statement) fails cleanly at each allocation, and
 * whatever a failed open left behind, the next one completes. An open makes tens of thousands of
 * allocations (every migration, every prepared statement), and failing each in turn would cost
 * their square: every one of the first OPEN_EVERY fails in turn (finding the file, reading the
 * schema's version), then one in OPEN_STRIDE (a prime, so that the failures fall at a different
 * place in each statement's preparation), until an open completes with the failure still armed. */
#define OPEN_EVERY 400
#define OPEN_STRIDE 31
static void test_open(void **state)
{
    fixture_t *f = *state;
    unsigned long nth, rounds = 0;
    bool completed = false;
    for (nth = 1; nth < 50 * MAX_ALLOCATIONS; nth += nth < OPEN_EVERY ? 1 : OPEN_STRIDE) {
        kf_store_t *store = NULL;
        arm(nth);
        int rc = kf_store_open_sqlite(f->db->path, "OFF", &store);
        bool failed_allocation = fired;
        arm(0);
        rounds++;
        if (rc == 0) {
            kf_store_close(store);
        } else {
            assert_int_equal(rc, KF_ESTORE);
            assert_null(store);
        }
        if (!failed_allocation) {
            assert_int_equal(rc, 0);
            completed = true;
            break;
        }
    }
    print_message("open: %lu rounds, one of its first %lu allocations failing in each\n", rounds,
                  nth - 1);
    assert_true(completed);
    assert_true(nth > OPEN_EVERY);
    open_with_data(f);
}

/* ---- operations ---- */

/* One store operation, run again and again with a different allocation failing each time. */
typedef int (*operation_fn)(fixture_t *f, unsigned long round);

static int op_send(fixture_t *f, unsigned long round)
{
    char body[32], key[32];
    snprintf(body, sizeof body, "message %lu", round);
    snprintf(key, sizeof key, "key %lu", round);
    kf_message_new_t m = {.conversation_id = f->conversation_id,
                          .body = body,
                          .now = NOW + (int64_t)round,
                          .idempotency_key = round % 2 ? key : NULL};
    return kf_store_sync_message_add(f->store, &m, NULL);
}

static int op_visitor(fixture_t *f, unsigned long round)
{
    char hash[32];
    snprintf(hash, sizeof hash, "hash-%lu", round);
    int rc = kf_store_sync_visitor_create(f->store, hash, "Round", NOW, NULL);
    query_t q = {0, 0};
    if (rc == 0)
        rc = wait_for(f, f->store->ops->visitor_by_token(f->store, hash, rc_cb, &q), &q);
    return rc;
}

static int op_agent(fixture_t *f, unsigned long round)
{
    char email[48];
    snprintf(email, sizeof email, "agent%lu@example.com", round);
    int64_t id = 0;
    int rc = kf_store_sync_agent_create(f->store, email, "Agnes", "agent", "scrypt$hash", NOW, &id);
    if (rc == 0)
        rc = kf_store_sync_agent_by_email(f->store, email, &id);
    query_t q = {0, 0};
    if (rc == 0)
        rc = wait_for(f, f->store->ops->agent_by_id(f->store, id, rc_cb, &q), &q);
    if (rc == 0)
        rc = kf_store_sync_agent_count(f->store, NULL);
    if (rc == 0)
        rc = wait_for(f, f->store->ops->agent_list(f->store, count_agent_cb, rc_cb, &q), &q);
    /* Disabled with a session (deleted with it), then enabled again. */
    if (rc == 0)
        rc = kf_store_sync_session_create(f->store, email, id, "csrf", NOW, NOW + 1000);
    kf_agent_change_t change = {.name = "Agnes A.", .state = KF_AGENT_STATE_DISABLE, .now = NOW};
    if (rc == 0)
        rc = wait_for(f, f->store->ops->agent_update(f->store, id, &change, rc_cb, &q), &q);
    change.state = KF_AGENT_STATE_ENABLE;
    if (rc == 0)
        rc = wait_for(f, f->store->ops->agent_update(f->store, id, &change, rc_cb, &q), &q);
    return rc;
}

static int op_session(fixture_t *f, unsigned long round)
{
    char hash[32];
    snprintf(hash, sizeof hash, "session-%lu", round);
    int rc = kf_store_sync_session_create(f->store, hash, 1, "csrf", NOW, NOW + 1000);
    char csrf[64];
    if (rc == 0)
        rc = kf_store_sync_session_get(f->store, hash, NOW, NULL, csrf, sizeof csrf);
    if (rc == 0)
        rc = kf_store_sync_session_delete(f->store, hash);
    return rc;
}

static int op_read_and_status(fixture_t *f, unsigned long round)
{
    int rc = kf_store_sync_mark_read(f->store, f->conversation_id, KF_SENDER_AGENT, (int64_t)round);
    if (rc == 0)
        rc = kf_store_sync_set_status(f->store, f->conversation_id, round % 2 ? "resolved" : "open",
                                      NOW);
    if (rc == 0)
        rc = kf_store_sync_set_status(f->store, f->conversation_id, "open", NOW);
    return rc;
}

/* The desk: a claim (agent 1, as op_session's), a snooze and its end, the assignment undone, and
 * the reads of a view and of the counts. */
static int op_desk(fixture_t *f, unsigned long round)
{
    const kf_store_ops_t *ops = f->store->ops;
    int64_t id = f->conversation_id;
    query_t q = {0, 0};
    int rc = wait_for(f, ops->conversation_claim(f->store, id, 1, rc_cb, &q), &q);
    if (rc == 0)
        rc = wait_for(f,
                      ops->conversation_set_status(f->store, id, "snoozed",
                                                   NOW + 1000 + (int64_t)round, NOW, rc_cb, &q),
                      &q);
    if (rc == 0)
        rc = wait_for(f, ops->conversation_snooze_due(f->store, NOW + 2000000, rc_cb, &q), &q);
    if (rc == 0)
        rc = wait_for(f, ops->conversation_wake(f->store, id, NOW + 2000000, rc_cb, &q), &q);
    if (rc == 0)
        rc = wait_for(f,
                      ops->conversation_assign(f->store,
                                               &(kf_conversation_assign_t){.conversation_id = id,
                                                                           .set_agent = true,
                                                                           .agent_id = 0},
                                               rc_cb, &q),
                      &q);
    if (rc == 0)
        rc = kf_store_sync_set_status(f->store, id, "open", NOW);
    kf_conversation_page_t page = {.limit = 10, .view = KF_VIEW_UNASSIGNED};
    if (rc == 0)
        rc = wait_for(f, ops->conversation_list(f->store, &page, count_conversation_cb, rc_cb, &q),
                      &q);
    if (rc == 0)
        rc = wait_for(f, ops->conversation_counts(f->store, 1, rc_cb, &q), &q);
    return rc;
}

static int op_queries(fixture_t *f, unsigned long round)
{
    (void)round;
    const kf_store_ops_t *ops = f->store->ops;
    query_t q = {0, 0};
    kf_conversation_page_t page = {.limit = 50};
    int rc =
        wait_for(f, ops->conversation_list(f->store, &page, count_conversation_cb, rc_cb, &q), &q);
    if (rc == 0)
        rc = wait_for(f, ops->conversation_get(f->store, f->conversation_id, rc_cb, &q), &q);
    if (rc == 0)
        rc = wait_for(f, ops->conversation_visitor(f->store, f->conversation_id, rc_cb, &q), &q);
    /* Several queries at once: one complete() runs them all. */
    query_t queries[4];
    memset(queries, 0, sizeof queries);
    assert_int_equal(ops->messages_in_conversation(f->store, f->conversation_id, 0, 100,
                                                   count_message_cb, rc_cb, &queries[0]),
                     0);
    assert_int_equal(ops->messages_of_visitor(f->store, f->visitor_id, 0, 100, count_message_cb,
                                              rc_cb, &queries[1]),
                     0);
    assert_int_equal(ops->messages_all(f->store, 0, 100, count_message_cb, rc_cb, &queries[2]), 0);
    assert_int_equal(ops->conversation_of_visitor(f->store, f->visitor_id, rc_cb, &queries[3]), 0);
    ops->flush(f->store);
    for (int i = 0; rc == 0 && i < 4; i++)
        rc = queries[i].rc;
    return rc;
}

static int op_settings(fixture_t *f, unsigned long round)
{
    char value[32];
    snprintf(value, sizeof value, "value-%lu", round);
    int rc = kf_store_sync_setting_set(f->store, "fault-test", value);
    char got[32];
    if (rc == 0)
        rc = kf_store_sync_setting_get(f->store, "fault-test", got, sizeof got);
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
    {"claims, assignments, views and counts", op_desk},
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
        assert_true(nth > 1 && nth < MAX_ALLOCATIONS); /* it completed */
    }
    /* What was there before is still there, and the store works. */
    query_t q = {-1, 0};
    assert_int_equal(wait_for(f,
                              f->store->ops->messages_in_conversation(
                                  f->store, f->conversation_id, 0, 1, count_message_cb, rc_cb, &q),
                              &q),
                     0);
    assert_int_equal(q.rows, 1);
    assert_int_equal(op_send(f, ++round), 0);
}

/* A write that fails on the writer's thread is logged there with the id of the request that
 * queued it, and nothing else is; the lines name no request once none is set. */
static void test_failure_names_the_request(void **state)
{
    fixture_t *f = *state;
    open_with_data(f);
    FILE *capture = tmpfile();
    assert_non_null(capture);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(capture), 2);
    const char *outer = kf_log_set_request_id("req-7f3a");
    bool failed = false;
    for (unsigned long nth = 1; nth < MAX_ALLOCATIONS && !failed; nth++) {
        arm(nth);
        failed = op_send(f, 1000 + nth) == KF_ESTORE;
        arm(0);
    }
    kf_log_set_request_id(outer);
    assert_int_equal(op_send(f, 99999), 0); /* no failure: no line */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_true(failed);
    rewind(capture);
    char line[512];
    int lines = 0;
    while (fgets(line, sizeof line, capture) != NULL) {
        assert_non_null(strstr(line, "store: a write failed"));
        assert_non_null(strstr(line, "request=req-7f3a"));
        lines++;
    }
    fclose(capture);
    assert_int_equal(lines, 1);
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
        cmocka_unit_test_setup_teardown(test_failure_names_the_request, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
