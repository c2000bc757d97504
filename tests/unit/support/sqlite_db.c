/* sqlite_db.c: temporary SQLite databases for the store's tests (sqlite_db.h). */
#include "support/sqlite_db.h"
#include "support/remove_tree.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

sqlite_db_t *sqlite_db_create(void)
{
    sqlite_db_t *db = calloc(1, sizeof *db);
    if (db == NULL)
        return NULL;
    snprintf(db->dir, sizeof db->dir, "/tmp/kefu-test-store-XXXXXX");
    if (mkdtemp(db->dir) == NULL) {
        free(db);
        return NULL;
    }
    snprintf(db->path, sizeof db->path, "%s/kefu.db", db->dir);
    return db;
}

void sqlite_db_check(const sqlite_db_t *db)
{
    sqlite3 *conn = NULL;
    assert_int_equal(sqlite3_open_v2(db->path, &conn, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(conn, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(conn, "PRAGMA foreign_key_check", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(conn), SQLITE_OK);
}

void sqlite_db_destroy(sqlite_db_t *db)
{
    remove_tree(db->dir);
    free(db);
}
