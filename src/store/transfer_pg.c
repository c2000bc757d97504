/* transfer_pg.c: the PostgreSQL backend's side of export and import (store/transfer.h): one
 * connection of its own; an export reads in one REPEATABLE READ snapshot, row by row (libpq's
 * single-row mode, so a table of any size takes one row's memory); an import inserts through
 * prepared statements in pipeline mode (hundreds of rows a round trip), ids as they are, and
 * sets each identity's sequence past them. */
#include "store/pg_internal.h"
#include "store/transfer.h"

#include "base/buf.h"
#include "base/err.h"

#include <endian.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TABLES 32
/* Statements an import sends before it reads their results (one round trip for them all):
 * their results (a few dozen bytes each) stay far below a socket's buffer, so neither side
 * blocks writing while the other is not reading. */
#define MAX_QUEUED 512

typedef struct pg_side {
    kf_transfer_backend_t base;
    PGconn *conn;
    bool prepared[MAX_TABLES]; /* the table's insert is prepared as kefu_import_<index> */
    size_t queued;             /* statements sent in pipeline mode, results not yet read */
    size_t tags[MAX_QUEUED];   /* the row each queued statement belongs to */
} pg_side_t;

/* Fills the side's error from the result (or the connection when res is NULL). */
static int side_error(pg_side_t *s, const PGresult *res)
{
    const char *message = res != NULL ? PQresultErrorMessage(res) : "";
    if (message[0] == '\0')
        message = PQerrorMessage(s->conn);
    snprintf(s->base.error, sizeof s->base.error, "%s", message);
    size_t len = strlen(s->base.error);
    while (len > 0 && s->base.error[len - 1] == '\n')
        s->base.error[--len] = '\0';
    return kf_pg_map_error(s->conn, res);
}

/* Reads the results of the statements sent in pipeline mode, up to a sync, and leaves the
 * mode: 0, or the first failure's code with failed_tag naming its row (the ones after it were
 * skipped by the server, and the transaction is aborted). */
static int settle(pg_side_t *s)
{
    if (PQpipelineStatus(s->conn) == PQ_PIPELINE_OFF)
        return 0;
    int rc = PQpipelineSync(s->conn) == 1 ? 0 : side_error(s, NULL);
    int failed = 0;
    /* Without a sync sent, no end would come to wait for. */
    for (size_t next = 0; rc == 0 && PQstatus(s->conn) == CONNECTION_OK;) {
        PGresult *res = PQgetResult(s->conn);
        if (res == NULL)
            continue; /* the end of one statement's results */
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (failed == 0 && status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            failed = side_error(s, res);
            s->base.failed_tag = next < s->queued ? s->tags[next] : 0;
        }
        next++;
        PQclear(res);
    }
    if (rc == 0)
        rc = failed;
    if (rc == 0 && PQstatus(s->conn) != CONNECTION_OK)
        rc = side_error(s, NULL);
    s->queued = 0;
    if (PQexitPipelineMode(s->conn) != 1 && rc == 0)
        rc = side_error(s, NULL);
    return rc;
}

/* Runs sql (no parameters); *res (unless NULL) gets its rows, as text. */
static int run(pg_side_t *s, const char *sql, PGresult **res)
{
    int settled = settle(s);
    if (settled != 0)
        return settled;
    PGresult *r = PQexec(s->conn, sql);
    ExecStatusType status = PQresultStatus(r);
    int rc = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? 0 : side_error(s, r);
    if (rc == 0 && res != NULL) {
        *res = r;
        return 0;
    }
    PQclear(r);
    return rc;
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
    return run((pg_side_t *)b, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL);
}

/* One row of a binary result into values: integers are BIGINT (8 bytes, network order), text
 * and bytea their bytes (libpq ends each with a NUL). */
static void read_row(const PGresult *res, const kf_transfer_table_t *table,
                     kf_transfer_value_t *values)
{
    for (int i = 0; i < table->column_count; i++) {
        kf_transfer_value_t *value = &values[i];
        memset(value, 0, sizeof(*value));
        if (PQgetisnull(res, 0, i)) {
            value->null = true;
        } else if (table->columns[i].type == 'i') {
            uint64_t big = 0;
            memcpy(&big, PQgetvalue(res, 0, i), sizeof big);
            value->integer = (int64_t)be64toh(big);
        } else {
            value->data = PQgetvalue(res, 0, i);
            value->len = (size_t)PQgetlength(res, 0, i);
        }
    }
}

static int each_row(kf_transfer_backend_t *b, const kf_transfer_table_t *table,
                    kf_transfer_row_cb row, void *arg)
{
    pg_side_t *s = (pg_side_t *)b;
    char *sql = kf_transfer_select_sql(table, true, " COLLATE \"C\"");
    int sent = PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 1);
    free(sql);
    if (!sent || !PQsetSingleRowMode(s->conn))
        return side_error(s, NULL);
    kf_transfer_value_t values[32];
    int rc = 0;
    PGresult *res;
    /* Every result is taken, also after a failure, so that the connection is ready again. */
    while ((res = PQgetResult(s->conn)) != NULL) {
        ExecStatusType status = PQresultStatus(res);
        if (rc == 0 && status == PGRES_SINGLE_TUPLE) {
            read_row(res, table, values);
            rc = row(arg, table, values);
        } else if (rc == 0 && status != PGRES_TUPLES_OK) {
            rc = side_error(s, res);
        }
        PQclear(res);
    }
    return rc;
}

static int scalar(pg_side_t *s, const char *sql, int64_t *value)
{
    PGresult *res = NULL;
    int rc = run(s, sql, &res);
    if (rc == 0)
        *value = PQntuples(res) > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return rc;
}

static int sequence(kf_transfer_backend_t *b, const kf_transfer_table_t *table, int64_t *value)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT GREATEST(COALESCE(pg_sequence_last_value(pg_get_serial_sequence('%s', "
             "'id')::regclass), 0), COALESCE((SELECT max(id) FROM %s), 0))",
             table->name, table->name);
    return scalar((pg_side_t *)b, sql, value);
}

/* ---- import ---- */

static int is_empty(kf_transfer_backend_t *b, bool *empty, const char **what)
{
    pg_side_t *s = (pg_side_t *)b;
    *empty = true;
    const kf_transfer_table_t *table;
    int rc = 0;
    for (size_t i = 0; rc == 0 && *empty && (table = kf_transfer_table(i)) != NULL; i++) {
        char sql[256];
        snprintf(
            sql, sizeof sql, "SELECT count(*) FROM (SELECT 1 FROM %s%s LIMIT 1) x", table->name,
            strcmp(table->name, "settings") == 0 ? " WHERE key NOT IN " KF_TRANSFER_SETTINGS_SKIPPED
                                                 : "");
        int64_t count = 0;
        rc = scalar(s, sql, &count);
        if (rc == 0 && count > 0) {
            *empty = false;
            *what = table->name;
        }
    }
    return rc;
}

/* messages_first_reply (pg_schema.c) stamps a message's conversation as it is stored: an
 * import's conversations come with their stamps already, so each batch turns it off for its own
 * transaction (the change is transactional: a failed batch leaves it on) and saves three
 * updates a message. The counts' triggers stay: their table is not exported. */
static int begin(kf_transfer_backend_t *b)
{
    return run((pg_side_t *)b, "BEGIN; ALTER TABLE messages DISABLE TRIGGER messages_first_reply",
               NULL);
}

static int commit(kf_transfer_backend_t *b)
{
    return run((pg_side_t *)b, "ALTER TABLE messages ENABLE TRIGGER messages_first_reply; COMMIT",
               NULL);
}

static void rollback(kf_transfer_backend_t *b)
{
    pg_side_t *s = (pg_side_t *)b;
    settle(s);
    if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        PQclear(PQexec(s->conn, "ROLLBACK"));
}

/* Sends a statement in pipeline mode (entering it, and reading the results first when
 * MAX_QUEUED are waiting); prepared names a prepared statement, else sql is sent. */
static int queue(pg_side_t *s, size_t tag, const char *prepared, const char *sql, int count,
                 const char *const *params, const int *lengths, const int *formats)
{
    int rc = s->queued == MAX_QUEUED ? settle(s) : 0;
    if (rc == 0 && PQpipelineStatus(s->conn) == PQ_PIPELINE_OFF &&
        PQenterPipelineMode(s->conn) != 1)
        rc = side_error(s, NULL);
    if (rc != 0)
        return rc;
    int sent = prepared != NULL
                   ? PQsendQueryPrepared(s->conn, prepared, count, params, lengths, formats, 0)
                   : PQsendQueryParams(s->conn, sql, count, NULL, params, lengths, formats, 0);
    if (!sent) {
        s->base.failed_tag = tag;
        return side_error(s, NULL);
    }
    s->tags[s->queued++] = tag;
    return 0;
}

/* Sends a statement of two parameters (an id, the tsvector of text). */
static int insert_vector(pg_side_t *s, size_t tag, const char *sql, int64_t id, const char *text)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%lld", (long long)id);
    char *vector = kf_pg_search_vector(text);
    const char *params[2] = {id_text, vector};
    int rc = queue(s, tag, NULL, sql, 2, params, NULL, NULL);
    free(vector);
    return rc;
}

/* The search's index of the row, as the writer feeds it (pg_writer.c, pg_desk.c). */
static int feed_search(pg_side_t *s, const kf_transfer_table_t *table,
                       const kf_transfer_value_t *values, size_t tag)
{
    if (strcmp(table->name, "messages") == 0)
        return insert_vector(s, tag,
                             "INSERT INTO message_search (id, text) VALUES ($1, $2::tsvector)",
                             values[0].integer, values[column_named(table, "body")].data);
    if (strcmp(table->name, "visitors") == 0) {
        const char *name = values[column_named(table, "name")].data;
        const char *email = values[column_named(table, "email")].data;
        if (name[0] == '\0' && email[0] == '\0')
            return 0;
        char *text = kf_pg_visitor_search_text(name, email);
        int rc =
            insert_vector(s, tag, "INSERT INTO visitor_search (id, text) VALUES ($1, $2::tsvector)",
                          values[0].integer, text);
        free(text);
        return rc;
    }
    return 0;
}

static int insert(kf_transfer_backend_t *b, const kf_transfer_table_t *table,
                  const kf_transfer_value_t *values, size_t tag)
{
    pg_side_t *s = (pg_side_t *)b;
    size_t index = table_index(table);
    char name[32];
    snprintf(name, sizeof name, "kefu_import_%zu", index);
    if (index >= MAX_TABLES) {
        snprintf(s->base.error, sizeof s->base.error, "too many tables");
        return KF_EINVAL;
    }
    if (!s->prepared[index]) {
        int settled = settle(s); /* a statement is prepared outside the pipeline */
        if (settled != 0)
            return settled;
        char *sql = kf_transfer_insert_sql(table, true, "$");
        PGresult *res = PQprepare(s->conn, name, sql, 0, NULL);
        free(sql);
        int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : side_error(s, res);
        PQclear(res);
        if (rc != 0)
            return rc;
        s->prepared[index] = true;
    }
    const char *params[32];
    int lengths[32], formats[32];
    char numbers[32][24];
    for (int i = 0; i < table->column_count; i++) {
        const kf_transfer_value_t *value = &values[i];
        formats[i] = table->columns[i].type == 'b'; /* bytes as they are, the rest as text */
        lengths[i] = (int)value->len;
        if (value->null) {
            params[i] = NULL;
        } else if (table->columns[i].type == 'i') {
            snprintf(numbers[i], sizeof numbers[i], "%lld", (long long)value->integer);
            params[i] = numbers[i];
        } else {
            params[i] = value->data;
        }
    }
    int rc = queue(s, tag, name, NULL, table->column_count, params, lengths, formats);
    if (rc == 0)
        rc = feed_search(s, table, values, tag);
    return rc;
}

static int set_sequence(kf_transfer_backend_t *b, const kf_transfer_table_t *table, int64_t value)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT setval(pg_get_serial_sequence('%s', 'id'), GREATEST(%lld, COALESCE(max(id), "
             "0), 1), GREATEST(%lld, COALESCE(max(id), 0)) > 0) FROM %s",
             table->name, (long long)value, (long long)value, table->name);
    return run((pg_side_t *)b, sql, NULL);
}

static int setting(kf_transfer_backend_t *b, const char *key, const char *value)
{
    pg_side_t *s = (pg_side_t *)b;
    int settled = settle(s);
    if (settled != 0)
        return settled;
    const char *params[2] = {key, value};
    PGresult *res = value != NULL
                        ? PQexecParams(s->conn,
                                       "INSERT INTO settings (key, value) VALUES ($1, $2) "
                                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                       2, NULL, params, NULL, NULL, 0)
                        : PQexecParams(s->conn, "DELETE FROM settings WHERE key = $1", 1, NULL,
                                       params, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : side_error(s, res);
    PQclear(res);
    return rc;
}

static int setting_get(kf_transfer_backend_t *b, const char *key, char **value)
{
    pg_side_t *s = (pg_side_t *)b;
    *value = NULL;
    int settled = settle(s);
    if (settled != 0)
        return settled;
    const char *params[1] = {key};
    PGresult *res = PQexecParams(s->conn, "SELECT value FROM settings WHERE key = $1", 1, NULL,
                                 params, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : side_error(s, res);
    if (rc == 0 && PQntuples(res) > 0)
        *value = kf_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

static void side_close(kf_transfer_backend_t *b)
{
    pg_side_t *s = (pg_side_t *)b;
    rollback(b);
    PQfinish(s->conn);
    free(s);
}

kf_transfer_backend_t *kf_transfer_pg_open(const char *conninfo, char *why, size_t why_len)
{
    pg_side_t *s = kf_xcalloc(1, sizeof(*s));
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
    /* Ours first: what the conninfo says takes their place. Text crosses as UTF-8, whatever the
     * server's default. */
    const char *keys[] = {"client_encoding", "options", "dbname", NULL};
    const char *values[] = {"UTF8", "-c jit=off -c client_min_messages=warning", conninfo, NULL};
    s->conn = PQconnectdbParams(keys, values, 1);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        side_error(s, NULL);
        snprintf(why, why_len, "cannot connect to PostgreSQL: %s", s->base.error);
        side_close(&s->base);
        return NULL;
    }
    return &s->base;
}
