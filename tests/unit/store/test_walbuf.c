/* test_walbuf.c: the VFS that gathers the writer's log writes (store/sqlite_walbuf.c), over a
 * VFS of the test's that counts the writes and syncs reaching the log and can fail them as a
 * full disk does. A commit reaches the log as a few large writes before its one sync; another
 * connection, on the plain VFS, reads exactly what was committed after every commit, through
 * rollbacks, transactions larger than the page cache (whose frames the writer reads back) and
 * checkpoints that start the log over; a full disk fails the commit, not the database; and a
 * store opened FULL writes through it, one opened NORMAL does not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "store/sqlite_internal.h"
#include "support/shim_vfs.h"
#include "support/sqlite_db.h"

/* ---- a VFS beneath that counts, and can fail, what reaches a log ---- */

static atomic_int log_writes;
static atomic_int log_syncs;
static atomic_bool disk_full;

static bool is_log(const shim_file_t *file)
{
    return (file->flags & SQLITE_OPEN_WAL) != 0;
}

static int counted_write(const shim_file_t *file)
{
    if (atomic_load(&disk_full))
        return SQLITE_FULL;
    if (is_log(file))
        atomic_fetch_add(&log_writes, 1);
    return SQLITE_OK;
}

static int counted_sync(const shim_file_t *file)
{
    if (is_log(file))
        atomic_fetch_add(&log_syncs, 1);
    return SQLITE_OK;
}

static const shim_hooks_t counted_hooks = {.write = counted_write, .sync = counted_sync};

/* The counting VFS goes in as the default before the gathering VFS registers over it. */
static int install_counted(void **state)
{
    (void)state;
    shim_vfs_install(&counted_hooks);
    return kf_sqlite_walbuf_vfs() != NULL ? 0 : -1;
}

/* ---- helpers ---- */

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *error = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &error);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, error != NULL ? error : sqlite3_errstr(rc));
}

static int64_t int_of(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t value = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return value;
}

/* A connection in WAL mode, synchronous FULL, through vfs (NULL: the default). */
static sqlite3 *open_db(const char *path, const char *vfs)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
                     SQLITE_OK);
    exec_ok(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                "PRAGMA wal_autocheckpoint = 0");
    return db;
}

/* Inserts count rows of about a kilobyte each, ids from first: four to a page. */
static void insert_rows(sqlite3 *db, int first, int count)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "INSERT INTO t (id, body) SELECT i, randomblob(1000) FROM n",
             first, first + count - 1);
    exec_ok(db, sql);
}

/* ---- the tests ---- */

/* A commit of some hundred frames reaches the log as a few writes of up to 120 KiB and one sync;
 * the same commit on the plain VFS is two writes a frame. */
static void test_walbuf_gathers_a_commit(void **state)
{
    (void)state;
    sqlite_db_t *dir = sqlite_db_create();
    assert_non_null(dir);
    sqlite3 *db = open_db(dir->path, kf_sqlite_walbuf_vfs());
    exec_ok(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)");
    atomic_store(&log_writes, 0);
    atomic_store(&log_syncs, 0);
    insert_rows(db, 1, 400); /* 100 pages and more: about 420 KiB of frames */
    int gathered = atomic_load(&log_writes);
    assert_int_equal(atomic_load(&log_syncs), 1);
    assert_in_range(gathered, 1, 5);
    sqlite3_close(db);

    db = open_db(dir->path, NULL);
    atomic_store(&log_writes, 0);
    insert_rows(db, 401, 400);
    assert_true(atomic_load(&log_writes) >= 200); /* a header and a page for each frame */
    assert_int_equal(int_of(db, "SELECT count(*) FROM t"), 800);
    sqlite3_close(db);
    sqlite_db_check(dir);
    sqlite_db_destroy(dir);
}

/* A reader on the plain VFS sees exactly what was committed after each of many transactions:
 * small and large (past the page cache, so the writer reads its own frames back from the log
 * mid-transaction), some rolled back, with checkpoints between them that start the log over.
 * After all that, both connections agree and the database is whole, closed and opened again. */
static void test_walbuf_readers_see_every_commit(void **state)
{
    (void)state;
    sqlite_db_t *dir = sqlite_db_create();
    assert_non_null(dir);
    sqlite3 *writer = open_db(dir->path, kf_sqlite_walbuf_vfs());
    exec_ok(writer, "PRAGMA cache_size = 20"); /* 20 pages: a large transaction spills */
    exec_ok(writer, "CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)");
    sqlite3 *reader = open_db(dir->path, NULL);
    srand(17);
    int64_t rows = 0, sum = 0;
    int next = 1;
    for (int round = 0; round < 120; round++) {
        int count = rand() % 8 == 0 ? 150 + rand() % 200 : 1 + rand() % 12;
        bool rollback = rand() % 6 == 0;
        exec_ok(writer, "BEGIN");
        insert_rows(writer, next, count);
        if (rand() % 3 == 0) /* rewrite pages the transaction wrote already */
            exec_ok(writer, "UPDATE t SET body = randomblob(1000) WHERE id % 7 = 0");
        /* The writer reads what it wrote, spilled or not. */
        assert_int_equal(int_of(writer, "SELECT count(*) FROM t"), rows + count);
        exec_ok(writer, rollback ? "ROLLBACK" : "COMMIT");
        if (!rollback) {
            sum += (int64_t)count * (2 * next + count - 1) / 2;
            rows += count;
            next += count;
        }
        assert_int_equal(int_of(reader, "SELECT count(*) FROM t"), rows);
        assert_int_equal(int_of(reader, "SELECT COALESCE(sum(id), 0) FROM t"), sum);
        assert_int_equal(int_of(reader, "SELECT count(*) FROM t WHERE length(body) != 1000"), 0);
        if (round % 10 == 9) /* as the checkpointer does: copy back, let the log start over */
            exec_ok(reader, "PRAGMA wal_checkpoint(RESTART)");
    }
    assert_int_equal(int_of(writer, "SELECT count(*) FROM t"), rows);
    sqlite3_close(reader);
    sqlite3_close(writer);
    sqlite_db_check(dir);
    sqlite3 *again = open_db(dir->path, NULL);
    assert_int_equal(int_of(again, "SELECT count(*) FROM t"), rows);
    assert_int_equal(int_of(again, "SELECT COALESCE(sum(id), 0) FROM t"), sum);
    sqlite3_close(again);
    sqlite_db_destroy(dir);
}

/* A full disk fails the commit (its sync, where the gathered frames are written) with
 * SQLITE_FULL; the reader still sees what was there, and once space is back the next commit
 * succeeds and the database is whole. */
static void test_walbuf_full_disk_fails_the_commit(void **state)
{
    (void)state;
    sqlite_db_t *dir = sqlite_db_create();
    assert_non_null(dir);
    sqlite3 *writer = open_db(dir->path, kf_sqlite_walbuf_vfs());
    exec_ok(writer, "CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)");
    insert_rows(writer, 1, 10);
    sqlite3 *reader = open_db(dir->path, NULL);

    atomic_store(&disk_full, true);
    int rc =
        sqlite3_exec(writer, "INSERT INTO t (id, body) SELECT id + 100, body FROM t WHERE id <= 10",
                     NULL, NULL, NULL);
    atomic_store(&disk_full, false);
    assert_int_equal(rc & 0xff, SQLITE_FULL);
    assert_int_equal(int_of(reader, "SELECT count(*) FROM t"), 10);
    assert_int_equal(int_of(writer, "SELECT count(*) FROM t"), 10);

    insert_rows(writer, 11, 30);
    assert_int_equal(int_of(reader, "SELECT count(*) FROM t"), 40);
    sqlite3_close(reader);
    sqlite3_close(writer);
    sqlite_db_check(dir);
    sqlite_db_destroy(dir);
}

/* The VFS a store's writer opened its database through. */
static const char *writer_vfs(kf_store_t *store)
{
    sqlite3_vfs *vfs = NULL;
    assert_int_equal(sqlite3_file_control(kf_sqlite_from_base(store)->writer.db, "main",
                                          SQLITE_FCNTL_VFS_POINTER, &vfs),
                     SQLITE_OK);
    return vfs->zName;
}

/* A store opened FULL (the default) writes through the gathering VFS, and its messages reach the
 * log in gathered writes; one opened NORMAL (no sync per commit) does not use it. */
static void test_walbuf_store_full_only(void **state)
{
    (void)state;
    sqlite_db_t *dir = sqlite_db_create();
    assert_non_null(dir);
    kf_store_t *store = NULL;
    assert_int_equal(kf_store_open_sqlite(dir->path, NULL, &store), 0);
    assert_string_equal(writer_vfs(store), KF_SQLITE_WALBUF_VFS);
    kf_store_close(store);
    assert_int_equal(kf_store_open_sqlite(dir->path, "NORMAL", &store), 0);
    assert_string_not_equal(writer_vfs(store), KF_SQLITE_WALBUF_VFS);
    kf_store_close(store);
    sqlite_db_check(dir);
    sqlite_db_destroy(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walbuf_gathers_a_commit),
        cmocka_unit_test(test_walbuf_readers_see_every_commit),
        cmocka_unit_test(test_walbuf_full_disk_fails_the_commit),
        cmocka_unit_test(test_walbuf_store_full_only),
    };
    return cmocka_run_group_tests(tests, install_counted, NULL);
}
