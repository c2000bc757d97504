/* test_transfer.c: the export format (store/transfer.h): the table list matches the SQLite
 * schema table for table and column for column (a migration that adds one fails here until the
 * list has it); lines parse, and malformed ones are refused with what is wrong, whole, cut at
 * every byte and with hostile bytes; a SQLite store exported, imported into a new one and
 * exported again gives the same bytes, the search index rebuilt; an export reads one snapshot;
 * an import refuses a store that is not empty and a file of another version, and a failed one
 * leaves the store marked. On PostgreSQL (the cluster CTest starts, scripts/pg_cluster.sh): a
 * snapshot too, and an export imported into PostgreSQL and SQLite exports the same bytes. (The
 * move through kefu, and the imported store served, is tests/e2e/transfer.test.js's.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "store/store.h"
#include "store/sync.h"
#include "store/transfer.h"
#include "support/remove_tree.h"

/* A new directory under /tmp with a fresh SQLite store's kefu.db in path. */
static void new_store(char *dir, size_t dir_len, char *path, size_t path_len, kf_store_t **store)
{
    snprintf(dir, dir_len, "/tmp/kefu-test-transfer-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, path_len, "%s/kefu.db", dir);
    assert_int_equal(kf_store_open_sqlite(path, "OFF", store), 0);
}

static void remove_dir(const char *dir)
{
    assert_int_equal(remove_tree(dir), 0);
}

/* ---- the table list against the schema ---- */

static bool derived(const char *table)
{
    return strncmp(table, "message_search", 14) == 0 || strncmp(table, "visitor_search", 14) == 0 ||
           strcmp(table, "conversation_counts") == 0 || strcmp(table, "search_pending") == 0 ||
           strcmp(table, "search_words") == 0 || strcmp(table, "name_words") == 0 ||
           strncmp(table, "sqlite_", 7) == 0;
}

static void test_table_list_is_the_schema(void **state)
{
    (void)state;
    char dir[64], path[128];
    kf_store_t *store;
    new_store(dir, sizeof dir, path, sizeof path, &store);
    char version[32];
    assert_int_equal(kf_store_sync_setting_get(store, "schema_version", version, sizeof version),
                     0);
    /* A later schema may change only the derived tables (20: search_words' words; 21: the names'
     * words, name_words). */
    assert_true(atoi(version) >= KF_TRANSFER_SCHEMA);
    kf_store_close(store);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *tables;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "ORDER BY name",
                                        -1, &tables, NULL),
                     SQLITE_OK);
    size_t seen = 0;
    while (sqlite3_step(tables) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(tables, 0);
        if (derived(name))
            continue;
        const kf_transfer_table_t *table = kf_transfer_table_named(name);
        if (table == NULL)
            fail_msg("table %s is not in the export's list", name);
        seen++;
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s')", name);
        sqlite3_stmt *columns;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &columns, NULL), SQLITE_OK);
        int count = 0;
        while (sqlite3_step(columns) == SQLITE_ROW) {
            const char *column = (const char *)sqlite3_column_text(columns, 0);
            bool found = false;
            for (int i = 0; i < table->column_count; i++)
                found |= strcmp(table->columns[i].name, column) == 0;
            if (!found)
                fail_msg("column %s.%s is not in the export's list", name, column);
            count++;
        }
        sqlite3_finalize(columns);
        /* attachments.bytes is SQLite's blob file, not a column. */
        assert_int_equal(count + (strcmp(name, "attachments") == 0), table->column_count);
    }
    sqlite3_finalize(tables);
    sqlite3_close(db);
    size_t listed = 0;
    while (kf_transfer_table(listed) != NULL)
        listed++;
    assert_int_equal(seen, listed);
    remove_dir(dir);
}

/* ---- parsing lines ---- */

typedef struct line_case {
    const char *line;
    const char *error; /* a part of why, or NULL: parses */
} line_case_t;

static const line_case_t line_cases[] = {
    {"{\"table\":\"identity_nonces\",\"nonce\":\"n\",\"expires_at\":5}", NULL},
    {"{\"end\":true,\"rows\":3}", NULL},
    {"{\"sequence\":\"messages\",\"value\":9}", NULL},
    /* an older schema's row: capacity takes its default, disabled_at null */
    {"{\"table\":\"agents\",\"id\":1,\"email\":\"a@b.c\",\"name\":\"\xe5\xbc\xa0\",\"role\":"
     "\"agent\",\"password_hash\":\"h\",\"created_at\":1}",
     NULL},
    {"{\"table\":\"attachments\",\"id\":1,\"conversation_id\":1,\"sender\":0,\"uploader_id\":null,"
     "\"name\":\"a\",\"type\":\"t\",\"size\":2,\"sha256\":\"s\",\"created_at\":1,\"bytes\":\"AP8="
     "\"}",
     NULL},
    {"", "not JSON"},
    {"[1]", "not a JSON object"},
    {"\"text\"", "not JSON"},
    {"{}", "neither a row"},
    {"{\"table\":5}", "neither a row"},
    {"{\"table\":\"nope\"}", "no table is named nope"},
    {"{\"table\":\"identity_nonces\",\"nonce\":\"n\"}",
     "the identity_nonces row has no expires_at"},
    {"{\"table\":\"identity_nonces\",\"nonce\":null,\"expires_at\":5}", "nonce is null"},
    {"{\"table\":\"identity_nonces\",\"nonce\":1,\"expires_at\":5}", "nonce is not a string"},
    {"{\"table\":\"identity_nonces\",\"nonce\":\"n\",\"expires_at\":5.5}", "is not an integer"},
    {"{\"table\":\"identity_nonces\",\"nonce\":\"n\",\"expires_at\":\"5\"}", "is not an integer"},
    {"{\"table\":\"identity_nonces\",\"nonce\":\"a\\u0000b\",\"expires_at\":5}", "NUL"},
    {"{\"table\":\"identity_nonces\",\"nonce\":\"n\",\"expires_at\":5,\"x\":1}", "no column x"},
    {"{\"table\":\"identity_nonces\",\"nonce\":\"n\",\"nonce\":\"m\",\"expires_at\":5}",
     "not JSON"},
    {"{\"table\":\"identity_nonces\",\"nonce\":\"\xff\",\"expires_at\":5}", "not JSON"},
    {"{\"end\":true}", "an end line needs a row count"},
    {"{\"end\":false,\"rows\":1}", "an end line needs a row count"},
    {"{\"end\":true,\"rows\":-1}", "an end line needs a row count"},
    {"{\"end\":true,\"rows\":1,\"more\":1}", "an end line needs a row count"},
    {"{\"sequence\":\"sessions\",\"value\":9}", "a sequence line needs"},
    {"{\"sequence\":\"messages\",\"value\":-9}", "a sequence line needs"},
    {"{\"sequence\":\"messages\"}", "a sequence line needs"},
};

static void test_parse_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
        const line_case_t *c = &line_cases[i];
        kf_transfer_line_t line;
        char why[256] = "";
        int rc = kf_transfer_parse_line(c->line, strlen(c->line), &line, why, sizeof why);
        if (c->error == NULL) {
            if (rc != 0)
                fail_msg("%s: %s", c->line, why);
            kf_transfer_line_free(&line);
        } else {
            assert_int_equal(rc, KF_EPROTO);
            if (strstr(why, c->error) == NULL)
                fail_msg("%s: \"%s\" does not say \"%s\"", c->line, why, c->error);
        }
    }
}

static void test_parse_values(void **state)
{
    (void)state;
    const char *text =
        "{\"table\":\"agents\",\"id\":7,\"email\":\"a@b.c\",\"name\":\"\xe5\xbc\xa0\","
        "\"role\":\"agent\",\"password_hash\":\"h\",\"created_at\":1}";
    kf_transfer_line_t line;
    char why[256];
    assert_int_equal(kf_transfer_parse_line(text, strlen(text), &line, why, sizeof why), 0);
    assert_int_equal(line.kind, KF_TRANSFER_LINE_ROW);
    assert_string_equal(line.table->name, "agents");
    assert_int_equal(line.values[0].integer, 7);
    assert_string_equal(line.values[2].data, "\xe5\xbc\xa0");
    assert_true(line.values[6].null);            /* disabled_at */
    assert_int_equal(line.values[7].integer, 0); /* capacity's default */
    kf_transfer_line_free(&line);

    const char *bytes = "{\"table\":\"attachments\",\"id\":1,\"conversation_id\":1,\"sender\":0,"
                        "\"uploader_id\":null,\"name\":\"a\",\"type\":\"t\",\"size\":4,"
                        "\"sha256\":\"s\",\"created_at\":1,\"bytes\":\"AP8ACg==\"}";
    assert_int_equal(kf_transfer_parse_line(bytes, strlen(bytes), &line, why, sizeof why), 0);
    assert_int_equal(line.values[9].len, 4);
    assert_memory_equal(line.values[9].data, "\x00\xff\x00\n", 4);
    kf_transfer_line_free(&line);

    /* Base64 that is not: each refused. */
    const char *bad[] = {"AP8", "AP8*", "A=P8", "AP8ACg=\\u003d=", "====", "AP 8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char line_text[512];
        snprintf(line_text, sizeof line_text,
                 "{\"table\":\"attachments\",\"id\":1,\"conversation_id\":1,\"sender\":0,"
                 "\"uploader_id\":null,\"name\":\"a\",\"type\":\"t\",\"size\":4,"
                 "\"sha256\":\"s\",\"created_at\":1,\"bytes\":\"%s\"}",
                 bad[i]);
        assert_int_equal(
            kf_transfer_parse_line(line_text, strlen(line_text), &line, why, sizeof why),
            KF_EPROTO);
        assert_non_null(strstr(why, "is not base64"));
    }
}

/* Every prefix of valid lines, and each with every byte replaced by hostile ones: refused or
 * parsed, never a crash (ASan and valgrind see the rest). */
static void test_parse_cut_and_hostile(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
        const char *text = line_cases[i].line;
        size_t len = strlen(text);
        char *copy = malloc(len + 1);
        for (size_t cut = 0; cut <= len; cut++) {
            kf_transfer_line_t line;
            char why[256];
            if (kf_transfer_parse_line(text, cut, &line, why, sizeof why) == 0)
                kf_transfer_line_free(&line);
        }
        const char hostile[] = {'\0', '\xff', '"', '\\', '{', '9'};
        for (size_t at = 0; at < len; at++) {
            for (size_t h = 0; h < sizeof hostile; h++) {
                memcpy(copy, text, len);
                copy[at] = hostile[h];
                kf_transfer_line_t line;
                char why[256];
                if (kf_transfer_parse_line(copy, len, &line, why, sizeof why) == 0)
                    kf_transfer_line_free(&line);
            }
        }
        free(copy);
    }
}

/* ---- a round trip on SQLite ---- */

static void fill(kf_store_t *store)
{
    int64_t agent = 0, visitor = 0;
    assert_int_equal(kf_store_sync_agent_create(store, "li@example.com", "李", "admin",
                                                "scrypt$hash", 1000, &agent),
                     0);
    assert_int_equal(
        kf_store_sync_session_create(store, "session-hash", agent, "csrf", 1000, 99999999999999),
        0);
    assert_int_equal(kf_store_sync_visitor_create(store, "visitor-hash", "王小明", 1000, &visitor),
                     0);
    const char *bodies[] = {"你好，我的订单还没到", "Where is my refund?", "内部备注"};
    for (int i = 0; i < 3; i++) {
        kf_message_new_t message = {
            .sender = i == 0 ? KF_SENDER_VISITOR : KF_SENDER_AGENT,
            .visitor_id = visitor,
            .agent_id = i == 0 ? 0 : agent,
            .body = bodies[i],
            .now = 2000 + i,
            .is_private = i == 2,
        };
        kf_store_sync_message_t out;
        if (i > 0)
            message.conversation_id = 1;
        assert_int_equal(kf_store_sync_message_add(store, &message, &out), 0);
    }
    assert_int_equal(kf_store_sync_setting_set(store, "site_secret", "s3cret"), 0);
}

/* The export of the store at path, as a string. */
static char *export_of(const char *path)
{
    char why[512] = "";
    kf_transfer_backend_t *b = kf_transfer_sqlite_open(path, why, sizeof why);
    assert_non_null(b);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    size_t rows = 0;
    int rc = kf_transfer_export(b, out, &rows, why, sizeof why);
    b->close(b);
    fclose(out);
    if (rc != 0)
        fail_msg("export: %s", why);
    assert_true(rows > 0);
    return text;
}

/* Imports text into the store at path: the result code, why filled. */
static int import_into(const char *path, const char *text, char *why, size_t why_len)
{
    FILE *in = fmemopen((void *)text, strlen(text), "r");
    int rc = kf_transfer_read_header(in, why, why_len);
    if (rc == 0) {
        kf_transfer_backend_t *b = kf_transfer_sqlite_open(path, why, why_len);
        assert_non_null(b);
        rc = kf_transfer_import(b, in, NULL, why, why_len);
        b->close(b);
    }
    fclose(in);
    return rc;
}

/* The integer sql's one row gives in the database at path. */
static int count_of(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_sqlite_round_trip(void **state)
{
    (void)state;
    char dir[64], path[128], dir2[64], path2[128];
    kf_store_t *store;
    new_store(dir, sizeof dir, path, sizeof path, &store);
    fill(store);
    kf_store_close(store);
    char *first = export_of(path);
    assert_non_null(strstr(first, "\"body\":\"你好，我的订单还没到\""));
    assert_non_null(strstr(first, "\"key\":\"site_secret\",\"value\":\"s3cret\""));
    assert_null(strstr(first, "schema_version"));

    new_store(dir2, sizeof dir2, path2, sizeof path2, &store);
    kf_store_close(store);
    char why[1024];
    if (import_into(path2, first, why, sizeof why) != 0)
        fail_msg("import: %s", why);
    char *second = export_of(path2);
    assert_string_equal(first, second);

    /* The search's index is rebuilt, and the import's mark gone: the store serves. */
    assert_int_equal(kf_store_open_sqlite(path2, "OFF", &store), 0);
    char value[16];
    assert_int_equal(
        kf_store_sync_setting_get(store, KF_TRANSFER_INCOMPLETE_KEY, value, sizeof value),
        KF_ENOTFOUND);
    kf_store_close(store);
    assert_int_equal(count_of(path2, "SELECT count(*) FROM message_search WHERE "
                                     "message_search MATCH 'refund'"),
                     1);
    /* And the words a prefix is asked as (store: search_words). */
    assert_int_equal(count_of(path2, "SELECT count(*) FROM search_words WHERE word = 'refund'"), 1);

    /* Into a store that has rows: refused, nothing written. */
    assert_int_equal(import_into(path2, first, why, sizeof why), KF_EEXISTS);
    assert_non_null(strstr(why, "not empty"));
    free(second);
    second = export_of(path2);
    assert_string_equal(first, second);
    free(second);
    free(first);
    remove_dir(dir);
    remove_dir(dir2);
}

static int count_row(void *arg, const kf_transfer_table_t *table, const kf_transfer_value_t *values)
{
    (void)table;
    (void)values;
    ++*(int *)arg;
    return 0;
}

/* An export reads one snapshot: rows the server commits after it began are not in it, whatever
 * table the export has reached. */
static void test_snapshot(void **state)
{
    (void)state;
    char dir[64], path[128];
    kf_store_t *store;
    new_store(dir, sizeof dir, path, sizeof path, &store);
    fill(store);
    char why[512];
    kf_transfer_backend_t *b = kf_transfer_sqlite_open(path, why, sizeof why);
    assert_non_null(b);
    assert_int_equal(b->snapshot(b), 0);
    kf_message_new_t message = {
        .sender = KF_SENDER_VISITOR, .visitor_id = 1, .body = "after the snapshot", .now = 9000};
    kf_store_sync_message_t out;
    assert_int_equal(kf_store_sync_message_add(store, &message, &out), 0);
    int64_t visitor = 0;
    assert_int_equal(kf_store_sync_visitor_create(store, "later-hash", "Later", 9000, &visitor), 0);
    int messages = 0, visitors = 0;
    assert_int_equal(b->each_row(b, kf_transfer_table_named("messages"), count_row, &messages), 0);
    assert_int_equal(b->each_row(b, kf_transfer_table_named("visitors"), count_row, &visitors), 0);
    assert_int_equal(messages, 3);
    assert_int_equal(visitors, 1);
    b->close(b);
    kf_store_close(store);
    remove_dir(dir);
}

/* ---- PostgreSQL (the cluster CTest starts: KEFU_PG_CLUSTER) ---- */

/* A new database on the cluster: its conninfo in out. */
static void new_pg_database(char *out, size_t out_len)
{
    static int next;
    char cluster[512], path[512];
    const char *dir = getenv("KEFU_PG_CLUSTER");
    assert_non_null(dir);
    snprintf(path, sizeof path, "%s/conninfo", dir);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    assert_non_null(fgets(cluster, sizeof cluster, file));
    fclose(file);
    cluster[strcspn(cluster, "\n")] = '\0';
    char name[64], sql[128];
    snprintf(name, sizeof name, "kefu_transfer_%d_%d", (int)getpid(), ++next);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    PGconn *c = PQconnectdb(cluster);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *res = PQexec(c, sql);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(c);
    snprintf(out, out_len, "%s dbname=%s", cluster, name);
}

/* The export of b's store, as a string. */
static char *export_with(kf_transfer_backend_t *b)
{
    char why[512] = "";
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int rc = kf_transfer_export(b, out, NULL, why, sizeof why);
    b->close(b);
    fclose(out);
    if (rc != 0)
        fail_msg("export: %s", why);
    return text;
}

/* A PostgreSQL store filled through the store, exported, imported into another PostgreSQL
 * database and into SQLite, each exported again: the same bytes. And its export reads one
 * REPEATABLE READ snapshot. */
static void test_postgres(void **state)
{
    (void)state;
    if (getenv("KEFU_PG_CLUSTER") == NULL)
        skip();
    char source[768], target[768], why[1024];
    new_pg_database(source, sizeof source);
    new_pg_database(target, sizeof target);
    kf_store_t *store;
    assert_int_equal(kf_store_open_postgres(source, &store), 0);
    fill(store);

    kf_transfer_backend_t *b = kf_transfer_pg_open(source, why, sizeof why);
    assert_non_null(b);
    assert_int_equal(b->snapshot(b), 0);
    int before = 0;
    assert_int_equal(b->each_row(b, kf_transfer_table_named("agents"), count_row, &before), 0);
    kf_message_new_t message = {
        .sender = KF_SENDER_VISITOR, .visitor_id = 1, .body = "after the snapshot", .now = 9000};
    kf_store_sync_message_t out;
    assert_int_equal(kf_store_sync_message_add(store, &message, &out), 0);
    int messages = 0;
    assert_int_equal(b->each_row(b, kf_transfer_table_named("messages"), count_row, &messages), 0);
    assert_int_equal(messages, 3);
    b->close(b);
    kf_store_close(store);

    b = kf_transfer_pg_open(source, why, sizeof why);
    char *first = export_with(b);
    assert_non_null(strstr(first, "\"body\":\"after the snapshot\""));

    assert_int_equal(kf_store_open_postgres(target, &store), 0); /* the schema */
    kf_store_close(store);
    FILE *in = fmemopen(first, strlen(first), "r");
    assert_int_equal(kf_transfer_read_header(in, why, sizeof why), 0);
    b = kf_transfer_pg_open(target, why, sizeof why);
    if (kf_transfer_import(b, in, NULL, why, sizeof why) != 0)
        fail_msg("import into PostgreSQL: %s", why);
    b->close(b);
    fclose(in);
    char *second = export_with(kf_transfer_pg_open(target, why, sizeof why));
    assert_string_equal(first, second);

    char dir[64], path[128];
    new_store(dir, sizeof dir, path, sizeof path, &store);
    kf_store_close(store);
    if (import_into(path, second, why, sizeof why) != 0)
        fail_msg("import into SQLite: %s", why);
    char *third = export_of(path);
    assert_string_equal(first, third);

    /* The imported store goes on from the highest message id. */
    assert_int_equal(kf_store_open_postgres(target, &store), 0);
    message.body = "next";
    assert_int_equal(kf_store_sync_message_add(store, &message, &out), 0);
    assert_int_equal(out.id, 5);
    kf_store_close(store);
    free(first);
    free(second);
    free(third);
    remove_dir(dir);
}

static void test_refusals(void **state)
{
    (void)state;
    char dir[64], path[128];
    kf_store_t *store;
    new_store(dir, sizeof dir, path, sizeof path, &store);
    fill(store);
    kf_store_close(store);
    char *good = export_of(path);
    char why[1024];

    /* Headers: another version, a newer schema, not an export. */
    const char *headers[][2] = {
        {"{\"format\":\"kefu-export\",\"version\":2,\"schema\":17}\n", "format 2"},
        {"{\"format\":\"kefu-export\",\"version\":1,\"schema\":20}\n", "newer than this kefu's"},
        {"{\"format\":\"other\",\"version\":1,\"schema\":17}\n", "not a kefu export's header"},
        {"", "the file is empty"},
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        FILE *in = fmemopen((void *)headers[i][0], strlen(headers[i][0]), "r");
        assert_int_equal(kf_transfer_read_header(in, why, sizeof why), KF_EPROTO);
        if (strstr(why, headers[i][1]) == NULL)
            fail_msg("%s: \"%s\"", headers[i][0], why);
        fclose(in);
    }

    /* Truncated (no end line) and a bad line: refused with the line, the store marked. */
    size_t len = strlen(good);
    char *cut = strdup(good);
    cut[len - 1] = '\0';
    *strrchr(cut, '\n') = '\0';
    strcat(cut, "\n");
    /* The second line (the first row) replaced by a row of no table. */
    const char *second_line = strchr(good, '\n') + 1;
    const char *third_line = strchr(second_line, '\n') + 1;
    char *bad = malloc(len + 16);
    snprintf(bad, len + 16, "%.*s{\"table\":7}\n%s", (int)(second_line - good), good, third_line);
    char *own = malloc(len + 64);
    snprintf(own, len + 64,
             "%.*s{\"table\":\"settings\",\"key\":\"schema_version\",\"value\":\"1\"}\n%s",
             (int)(second_line - good), good, second_line);
    struct {
        const char *text, *error;
    } files[] = {
        {cut, "ends without its end line"},
        {bad, "line 2: neither a row"},
        {own, "line 2: the settings row schema_version is the store's own"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char target_dir[64], target[128];
        new_store(target_dir, sizeof target_dir, target, sizeof target, &store);
        kf_store_close(store);
        assert_int_equal(import_into(target, files[i].text, why, sizeof why), KF_EPROTO);
        if (strstr(why, files[i].error) == NULL || strstr(why, "unfinished import") == NULL)
            fail_msg("\"%s\" does not say \"%s\"", why, files[i].error);
        assert_int_equal(kf_store_open_sqlite(target, "OFF", &store), 0);
        char value[16];
        assert_int_equal(
            kf_store_sync_setting_get(store, KF_TRANSFER_INCOMPLETE_KEY, value, sizeof value), 0);
        kf_store_close(store);
        kf_transfer_backend_t *b = kf_transfer_sqlite_open(target, why, sizeof why);
        FILE *out = fopen("/dev/null", "w");
        assert_int_equal(kf_transfer_export(b, out, NULL, why, sizeof why), KF_ECONFLICT);
        fclose(out);
        b->close(b);
        remove_dir(target_dir);
    }
    free(cut);
    free(bad);
    free(own);
    free(good);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_list_is_the_schema),
        cmocka_unit_test(test_parse_lines),
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_parse_cut_and_hostile),
        cmocka_unit_test(test_sqlite_round_trip),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_postgres),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
