/* test_attach.c: the SQLite store's attached handles (store.h, attach), what kefu --loops gives
 * each loop: a write through one handle is read through another; a database file that is gone
 * is refused; and two threads, each owning a handle on the one writer, write at once: every write
 * is applied once, with distinct ids, and each done callback runs on the thread whose handle
 * queued it, woken by that handle's notify alone (run under TSan too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "store/store.h"
#include "store/sync.h"
#include "support/sqlite_db.h"

#define NOW 1764547200000LL

static void test_read_each_others_writes(void **state)
{
    (void)state;
    sqlite_db_t *db = sqlite_db_create();
    assert_non_null(db);
    kf_store_t *root = NULL, *other = NULL;
    assert_int_equal(kf_store_open_sqlite(db->path, NULL, &root), 0);
    assert_int_equal(root->ops->attach(root, &other), 0);
    int64_t visitor = 0, agent = 0;
    assert_int_equal(
        kf_store_sync_visitor_create(other, "hash-of-a-token", "Wang Lei", NOW, &visitor), 0);
    assert_int_equal(
        kf_store_sync_agent_create(root, "ana@example.com", "Ana", "admin", "x", NOW, &agent), 0);
    /* Each reads what the other wrote: one database, one writer. */
    int64_t found = 0;
    assert_int_equal(kf_store_sync_agent_by_email(other, "ana@example.com", &found), 0);
    assert_int_equal(found, agent);
    kf_message_new_t m = {.visitor_id = visitor, .body = "hello", .now = NOW};
    kf_store_sync_message_t first, second;
    assert_int_equal(kf_store_sync_message_add(root, &m, &first), 0);
    assert_int_equal(kf_store_sync_message_add(other, &m, &second), 0);
    assert_int_equal(second.id, first.id + 1);
    assert_int_equal(second.conversation_id, first.conversation_id);
    /* An attached handle attaches to the root's writer too. */
    kf_store_t *third = NULL;
    assert_int_equal(other->ops->attach(other, &third), 0);
    int64_t count = 0;
    assert_int_equal(kf_store_sync_agent_count(third, &count), 0);
    assert_int_equal(count, 1);
    kf_store_close(third);
    kf_store_close(other);
    kf_store_close(root);
    sqlite_db_check(db);
    sqlite_db_destroy(db);
}

static void test_missing_file_refuses(void **state)
{
    (void)state;
    sqlite_db_t *db = sqlite_db_create();
    assert_non_null(db);
    kf_store_t *root = NULL, *other = (kf_store_t *)&root;
    assert_int_equal(kf_store_open_sqlite(db->path, NULL, &root), 0);
    /* The file gone from under the open store: another connection cannot open it (attach never
     * creates one), and *out is left alone. The store itself keeps its open file. */
    char moved[160];
    snprintf(moved, sizeof moved, "%s.moved", db->path);
    assert_int_equal(rename(db->path, moved), 0);
    assert_int_equal(root->ops->attach(root, &other), KF_ESTORE);
    assert_ptr_equal(other, (kf_store_t *)&root);
    assert_int_equal(rename(moved, db->path), 0);
    int64_t count = -1;
    assert_int_equal(kf_store_sync_agent_count(root, &count), 0);
    assert_int_equal(count, 0);
    kf_store_close(root);
    sqlite_db_destroy(db);
}

#define WRITES 300

/* One thread's handle and what its callbacks saw. */
typedef struct owner {
    kf_store_t *store;
    int64_t visitor_id;
    pthread_t thread;
    atomic_int notified; /* notify calls: from the writer's thread, or this one's */
    int done;            /* callbacks run */
    int elsewhere;       /* callbacks run on another thread than this owner's */
    int failed;
    int64_t ids[WRITES];
} owner_t;

static void notify_cb(void *data)
{
    owner_t *o = data;
    atomic_fetch_add(&o->notified, 1);
}

static void added_cb(void *ctx, const kf_store_result_t *r)
{
    owner_t *o = ctx;
    if (!pthread_equal(pthread_self(), o->thread))
        o->elsewhere++;
    if (r->rc != 0 || r->message == NULL)
        o->failed++;
    else
        o->ids[o->done] = r->message->id;
    o->done++;
}

static void *write_all(void *data)
{
    owner_t *o = data;
    o->thread = pthread_self();
    for (int i = 0; i < WRITES; i++) {
        char body[32];
        snprintf(body, sizeof body, "message %d", i);
        kf_message_new_t m = {.visitor_id = o->visitor_id, .body = body, .now = NOW + i};
        assert_int_equal(o->store->ops->message_add(o->store, &m, added_cb, o), 0);
        if (i % 50 == 49)
            o->store->ops->complete(o->store); /* what is finished so far, as a loop would */
    }
    o->store->ops->flush(o->store); /* its own writes only: the other thread's are not waited for */
    return NULL;
}

static int compare_ids(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_two_threads_one_writer(void **state)
{
    (void)state;
    sqlite_db_t *db = sqlite_db_create();
    assert_non_null(db);
    owner_t owners[2];
    memset(owners, 0, sizeof owners);
    assert_int_equal(kf_store_open_sqlite(db->path, "NORMAL", &owners[0].store), 0);
    assert_int_equal(owners[0].store->ops->attach(owners[0].store, &owners[1].store), 0);
    for (int i = 0; i < 2; i++) {
        char token[32];
        snprintf(token, sizeof token, "token-%d", i);
        assert_int_equal(
            kf_store_sync_visitor_create(owners[i].store, token, "", NOW, &owners[i].visitor_id),
            0);
        owners[i].store->ops->set_notify(owners[i].store, notify_cb, &owners[i]);
    }
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, write_all, &owners[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    int64_t all[2 * WRITES];
    for (int i = 0; i < 2; i++) {
        owner_t *o = &owners[i];
        assert_int_equal(o->done, WRITES);
        assert_int_equal(o->failed, 0);
        assert_int_equal(o->elsewhere, 0);
        assert_true(atomic_load(&o->notified) > 0);
        /* A thread's own writes in its order. */
        for (int k = 1; k < WRITES; k++)
            assert_true(o->ids[k] > o->ids[k - 1]);
        memcpy(all + i * WRITES, o->ids, sizeof o->ids);
        o->store->ops->set_notify(o->store, NULL, NULL);
    }
    qsort(all, 2 * WRITES, sizeof all[0], compare_ids);
    for (int k = 1; k < 2 * WRITES; k++)
        assert_true(all[k] > all[k - 1]); /* every id once */
    kf_store_close(owners[1].store);
    kf_store_close(owners[0].store);
    sqlite_db_check(db);
    sqlite_db_destroy(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_each_others_writes),
        cmocka_unit_test(test_missing_file_refuses),
        cmocka_unit_test(test_two_threads_one_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
