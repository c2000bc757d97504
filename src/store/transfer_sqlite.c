/* transfer_sqlite.c: the SQLite backend's side of export and import (store/transfer.h): one
 * connection of its own, a read transaction for an export's snapshot, prepared inserts for an
 * import; attachments' bytes come from and go to the blob files beside the database. */
#include "store/blobs.h"
#include "store/sqlite_internal.h"
#include "store/transfer.h"

#include "base/buf.h"
#include "base/err.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TABLES 32

typedef struct sqlite_side {
    kf_transfer_backend_t base;
    sqlite3 *db;
    char *blob_dir;
    sqlite3_stmt *insert[MAX_TABLES]; /* by the table's index in the list, prepared on first use */
    sqlite3_stmt *message_search;
    sqlite3_stmt *message_words; /* its words into search_words (store: migration 19) */
    sqlite3_stmt *message_stamp; /* its conversation stamped, as the writer does (migration 22) */
    sqlite3_stmt *visitor_search;
    sqlite3_stmt *visitor_words; /* their words into name_words (store: migration 21) */
} sqlite_side_t;

/* Fills the side's error from fmt, or from the connection's last error when fmt is NULL. */
static int side_error(sqlite_side_t *s, int rc, const char *fmt, ...)
{
    if (fmt == NULL) {
        snprintf(s->base.error, sizeof s->base.error, "%s", sqlite3_errmsg(s->db));
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->base.error, sizeof s->base.error, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int exec(sqlite_side_t *s, const char *sql)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return side_error(s, KF_ESTORE, NULL);
    return 0;
}

static int prepare(sqlite_side_t *s, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return side_error(s, KF_ESTORE, NULL);
    return 0;
}

static size_t table_index(const kf_transfer_table_t *table)
{
    size_t i = 0;
    while (kf_transfer_table(i) != table)
        i++;
    return i;
}

static int column_named(const kf_transfer_table_t *table, const char *name)
{
    for (int i = 0; i < table->column_count; i++) {
        if (strcmp(table->columns[i].name, name) == 0)
            return i;
    }
    return -1;
}

/* ---- export ---- */

static int snapshot(kf_transfer_backend_t *b)
{
    sqlite_side_t *s = (sqlite_side_t *)b;
    /* A deferred transaction takes its snapshot at its first read: read at once. */
    int rc = exec(s, "BEGIN");
    if (rc == 0)
        rc = exec(s, "SELECT count(*) FROM settings");
    return rc;
}

static int each_row(kf_transfer_backend_t *b, const kf_transfer_table_t *table,
                    kf_transfer_row_cb row, void *arg)
{
    sqlite_side_t *s = (sqlite_side_t *)b;
    char *sql = kf_transfer_select_sql(table, false, "");
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, sql, &st);
    free(sql);
    kf_transfer_value_t values[32];
    int sha_column = column_named(table, "sha256"), size_column = column_named(table, "size");
    int code;
    while (rc == 0 && (code = sqlite3_step(st)) == SQLITE_ROW) {
        void *bytes = NULL;
        for (int i = 0; rc == 0 && i < table->column_count; i++) {
            kf_transfer_value_t *value = &values[i];
            memset(value, 0, sizeof(*value));
            char type = table->columns[i].type;
            if (type == 'b') {
                const char *sha256 = (const char *)sqlite3_column_text(st, sha_column);
                int64_t size = sqlite3_column_int64(st, size_column);
                rc = kf_blob_read(s->blob_dir, sha256 != NULL ? sha256 : "", (size_t)size, &bytes);
                if (rc != 0)
                    side_error(s, rc, "the file of attachment %lld (%s in %s): %s",
                               (long long)sqlite3_column_int64(st, 0), sha256, s->blob_dir,
                               kf_strerror(rc));
                value->data = bytes;
                value->len = (size_t)size;
            } else if (sqlite3_column_type(st, i) == SQLITE_NULL) {
                value->null = true;
            } else if (type == 'i') {
                value->integer = sqlite3_column_int64(st, i);
            } else {
                value->data = (const char *)sqlite3_column_text(st, i);
                value->len = (size_t)sqlite3_column_bytes(st, i);
            }
        }
        if (rc == 0)
            rc = row(arg, table, values);
        free(bytes);
    }
    if (rc == 0 && code != SQLITE_DONE)
        rc = side_error(s, KF_ESTORE, NULL);
    sqlite3_finalize(st);
    return rc;
}

/* The highest id handed out: AUTOINCREMENT's high-water mark where the table has one. */
static int sequence(kf_transfer_backend_t *b, const kf_transfer_table_t *table, int64_t *value)
{
    sqlite_side_t *s = (sqlite_side_t *)b;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '%s'), 0), "
             "COALESCE((SELECT max(id) FROM %s), 0))",
             table->name, table->name);
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, sql, &st);
    if (rc == 0 && sqlite3_step(st) != SQLITE_ROW)
        rc = side_error(s, KF_ESTORE, NULL);
    if (rc == 0)
        *value = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* ---- import ---- */

static int is_empty(kf_transfer_backend_t *b, bool *empty, const char **what)
{
    sqlite_side_t *s = (sqlite_side_t *)b;
    *empty = true;
    const kf_transfer_table_t *table;
    int rc = 0;
    for (size_t i = 0; rc == 0 && *empty && (table = kf_transfer_table(i)) != NULL; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT 1 FROM %s%s LIMIT 1", table->name,
                 strcmp(table->name, "settings") == 0
                     ? " WHERE key NOT IN " KF_TRANSFER_SETTINGS_SKIPPED
                     : "");
        sqlite3_stmt *st = NULL;
        rc = prepare(s, sql, &st);
        int code = rc == 0 ? sqlite3_step(st) : SQLITE_ERROR;
        if (rc == 0 && code == SQLITE_ROW) {
            *empty = false;
            *what = table->name;
        } else if (rc == 0 && code != SQLITE_DONE) {
            rc = side_error(s, KF_ESTORE, NULL);
        }
        sqlite3_finalize(st);
    }
    return rc;
}

static int begin(kf_transfer_backend_t *b)
{
    return exec((sqlite_side_t *)b, "BEGIN IMMEDIATE");
}

static int commit(kf_transfer_backend_t *b)
{
    return exec((sqlite_side_t *)b, "COMMIT");
}

static void rollback(kf_transfer_backend_t *b)
{
    sqlite_side_t *s = (sqlite_side_t *)b;
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Runs st (bound) to its end and resets it. */
static int step_done(sqlite_side_t *s, sqlite3_stmt *st)
{
    int code = sqlite3_step(st);
    int rc = code == SQLITE_DONE ? 0 : side_error(s, KF_ESTORE, NULL);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Writes an attachment's bytes to its blob file, which must be the one its row names. */
static int write_blob(sqlite_side_t *s, const kf_transfer_table_t *table,
                      const kf_transfer_value_t *values)
{
    const kf_transfer_value_t *bytes = &values[column_named(table, "bytes")];
    const kf_transfer_value_t *sha256 = &values[column_named(table, "sha256")];
    const kf_transfer_value_t *size = &values[column_named(table, "size")];
    char name[KF_BLOB_NAME_SIZE];
    int rc = kf_blob_write(s->blob_dir, bytes->data, bytes->len, name);
    if (rc != 0)
        return side_error(s, rc, "cannot write %s: %s", s->blob_dir, kf_strerror(rc));
    if (strcmp(name, sha256->data) != 0 || (int64_t)bytes->len != size->integer)
        return side_error(s, KF_EPROTO, "the bytes are not the size and sha256 the row says");
    return 0;
}

/* A message's conversation stamped with it (KF_SQLITE_MESSAGE_STAMP): rows exported with their
 * stamps get the same again; an export from before a stamp's column gets it filled, as the
 * triggers that did this before migration 22 filled it. */
static int stamp_conversation(sqlite_side_t *s, const kf_transfer_table_t *table,
                              const kf_transfer_value_t *values)
{
    static const char *const columns[] = {"conversation_id", "id",      "created_at",
                                          "sender",          "private", "agent_id"};
    for (int i = 0; i < (int)(sizeof columns / sizeof columns[0]); i++) {
        const kf_transfer_value_t *value = &values[column_named(table, columns[i])];
        if (value->null)
            sqlite3_bind_null(s->message_stamp, i + 1);
        else
            sqlite3_bind_int64(s->message_stamp, i + 1, value->integer);
    }
    return step_done(s, s->message_stamp);
}

/* What the store keeps beside a row it writes: a message's conversation stamped, its text in
 * the search index; a visitor's name in the names' index. */
static int write_derived(sqlite_side_t *s, const kf_transfer_table_t *table,
                         const kf_transfer_value_t *values)
{
    if (strcmp(table->name, "messages") == 0) {
        int rc = stamp_conversation(s, table, values);
        if (rc != 0)
            return rc;
        sqlite3_bind_int64(s->message_search, 1, values[0].integer);
        const char *body = values[column_named(table, "body")].data;
        sqlite3_bind_text(s->message_search, 2, body, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->message_words, 1, body, -1, SQLITE_STATIC);
        rc = step_done(s, s->message_search);
        return rc == 0 ? step_done(s, s->message_words) : rc;
    }
    if (strcmp(table->name, "visitors") == 0) {
        sqlite3_bind_int64(s->visitor_search, 1, values[0].integer);
        sqlite3_bind_int64(s->visitor_words, 1, values[0].integer);
        int rc = step_done(s, s->visitor_search);
        return rc == 0 ? step_done(s, s->visitor_words) : rc;
    }
    return 0;
}

static int insert(kf_transfer_backend_t *b, const kf_transfer_table_t *table,
                  const kf_transfer_value_t *values, size_t tag)
{
    sqlite_side_t *s = (sqlite_side_t *)b;
    size_t index = table_index(table);
    if (index >= MAX_TABLES)
        return side_error(s, KF_EINVAL, "too many tables");
    int rc = 0;
    if (s->insert[index] == NULL) {
        char *sql = kf_transfer_insert_sql(table, false, "?");
        rc = prepare(s, sql, &s->insert[index]);
        free(sql);
    }
    if (rc == 0 && strcmp(table->name, "attachments") == 0)
        rc = write_blob(s, table, values);
    sqlite3_stmt *st = s->insert[index];
    int n = 0;
    for (int i = 0; rc == 0 && i < table->column_count; i++) {
        const kf_transfer_value_t *value = &values[i];
        char type = table->columns[i].type;
        if (type == 'b')
            continue;
        n++;
        if (value->null)
            sqlite3_bind_null(st, n);
        else if (type == 'i')
            sqlite3_bind_int64(st, n, value->integer);
        else
            sqlite3_bind_text(st, n, value->data, (int)value->len, SQLITE_STATIC);
    }
    if (rc == 0)
        rc = step_done(s, st);
    if (rc == 0)
        rc = write_derived(s, table, values);
    if (rc != 0)
        b->failed_tag = tag;
    return rc;
}

static int set_sequence(kf_transfer_backend_t *b, const kf_transfer_table_t *table, int64_t value)
{
    sqlite_side_t *s = (sqlite_side_t *)b;
    /* INTEGER PRIMARY KEY goes past the highest id by itself; AUTOINCREMENT's mark is raised to
     * the exported one (a message deleted at the top keeps its id taken). */
    if (!table->keep_sequence || value <= 0)
        return 0;
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO sqlite_sequence (name, seq) SELECT '%s', 0 WHERE NOT EXISTS "
             "(SELECT 1 FROM sqlite_sequence WHERE name = '%s')",
             table->name, table->name);
    int rc = exec(s, sql);
    if (rc == 0) {
        snprintf(sql, sizeof sql,
                 "UPDATE sqlite_sequence SET seq = max(seq, %lld) WHERE name = '%s'",
                 (long long)value, table->name);
        rc = exec(s, sql);
    }
    return rc;
}

static int setting(kf_transfer_backend_t *b, const char *key, const char *value)
{
    sqlite_side_t *s = (sqlite_side_t *)b;
    sqlite3_stmt *st = NULL;
    int rc = prepare(s,
                     value != NULL ? "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)"
                                   : "DELETE FROM settings WHERE key = ?1",
                     &st);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (value != NULL)
            sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
        rc = step_done(s, st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int setting_get(kf_transfer_backend_t *b, const char *key, char **value)
{
    sqlite_side_t *s = (sqlite_side_t *)b;
    *value = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prepare(s, "SELECT value FROM settings WHERE key = ?1", &st);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        int code = sqlite3_step(st);
        if (code == SQLITE_ROW)
            *value = kf_xstrdup((const char *)sqlite3_column_text(st, 0));
        else if (code != SQLITE_DONE)
            rc = side_error(s, KF_ESTORE, NULL);
    }
    sqlite3_finalize(st);
    return rc;
}

static void side_close(kf_transfer_backend_t *b)
{
    sqlite_side_t *s = (sqlite_side_t *)b;
    rollback(b);
    for (size_t i = 0; i < MAX_TABLES; i++)
        sqlite3_finalize(s->insert[i]);
    sqlite3_finalize(s->message_search);
    sqlite3_finalize(s->message_words);
    sqlite3_finalize(s->message_stamp);
    sqlite3_finalize(s->visitor_search);
    sqlite3_finalize(s->visitor_words);
    sqlite3_close(s->db);
    free(s->blob_dir);
    free(s);
}

/* "attachments" beside the database, as the store keeps it (sqlite.c). */
static char *blob_dir_beside(const char *db_path)
{
    const char *slash = strrchr(db_path, '/');
    kf_buf_t dir;
    kf_buf_init(&dir);
    if (slash == NULL)
        kf_buf_append_str(&dir, ".");
    else
        kf_buf_append(&dir, db_path, (size_t)(slash - db_path));
    kf_buf_append_str(&dir, "/attachments");
    return kf_buf_steal(&dir, NULL);
}

kf_transfer_backend_t *kf_transfer_sqlite_open(const char *db_path, char *why, size_t why_len)
{
    sqlite_side_t *s = kf_xcalloc(1, sizeof(*s));
    s->base = (kf_transfer_backend_t){
        .snapshot = snapshot,
        .each_row = each_row,
        .sequence = sequence,
        .is_empty = is_empty,
        .begin = begin,
        .insert = insert,
        .commit = commit,
        .rollback = rollback,
        .set_sequence = set_sequence,
        .setting = setting,
        .setting_get = setting_get,
        .close = side_close,
    };
    s->blob_dir = blob_dir_beside(db_path);
    int rc = 0;
    if (sqlite3_open_v2(db_path, &s->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(s->db, 5000) != SQLITE_OK || kf_sqlite_define_functions(s->db) != 0)
        rc = side_error(s, KF_ESTORE, NULL);
    if (rc == 0)
        rc = exec(s, "PRAGMA foreign_keys = ON");
    if (rc == 0)
        rc =
            prepare(s, "INSERT INTO message_search (rowid, text) VALUES (?1, kefu_search_text(?2))",
                    &s->message_search);
    if (rc == 0)
        rc = prepare(s,
                     "INSERT OR IGNORE INTO search_words (word) SELECT value "
                     "FROM json_each(kefu_search_words(kefu_search_text(?1)))",
                     &s->message_words);
    if (rc == 0)
        rc = prepare(s,
                     "INSERT INTO visitor_search (rowid, text) SELECT id, "
                     "kefu_search_text(" KF_SQLITE_VISITOR_SEARCH_TEXT ") FROM visitors "
                     "WHERE id = ?1 AND (name != '' OR email != '')",
                     &s->visitor_search);
    if (rc == 0)
        rc = prepare(s, KF_SQLITE_NAME_WORDS_OF_VISITOR, &s->visitor_words);
    if (rc == 0)
        rc = prepare(s, KF_SQLITE_MESSAGE_STAMP, &s->message_stamp);
    if (rc != 0) {
        snprintf(why, why_len, "cannot open %s: %s", db_path, s->base.error);
        side_close(&s->base);
        return NULL;
    }
    return &s->base;
}
