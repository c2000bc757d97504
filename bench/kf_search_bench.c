/* kf_search_bench.c: the full-text search on a large store: how big its index grows and how long
 * a search takes. It makes a store (the real schema), fills it straight through SQLite with N
 * messages of mixed Chinese, English and mixed text (as the writer would: each message and its
 * index row, store/search_text.h's rewriting included), measures the tables' sizes (dbstat),
 * then opens the store and times searches through its own asynchronous read path (queue, then
 * flush: what the loop does, without the HTTP around it), by kind of query: p50, p99, max.
 * Optionally it also times the migrations that read the whole index of an existing database.
 *
 *   build/kf_search_bench [--messages N] [--runs R] [--migration] [--prefix-index] [--keep] [DIR]
 *     N messages (default 1,000,000; at most 5,000,000), R searches per kind (default 200);
 *     --migration: take the words list away and time the start-up that makes it again from the
 *     index (migrations 19 and 20: what an upgrade costs at its first start);
 *     --prefix-index: also build the index again with FTS5 prefix indexes of 2 and 3 characters
 *     (not what the store does) and compare its size and its prefix queries with the store's;
 *     DIR: where the database goes (default: a temporary directory under /tmp, removed after,
 *     unless --keep). Bounded: the fill stops after 8 minutes, the searches after 2. */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/search_text.h"
#include "store/sqlite_internal.h" /* kf_sqlite_define_functions, for the comparison */
#include "load/fill.h"
#include "load/tool.h"
#include "store/store.h"

#define MAX_MESSAGES 5000000L
#define FILL_SECONDS 480
#define SEARCH_SECONDS 120
#define VISITOR_EVERY 20 /* a visitor (and one conversation) per this many messages */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Fills the store's tables with n messages; returns how many went in before the time ran out. */
static long fill(const char *path, long n, double *index_seconds)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        fill_die("open", db);
    fill_exec(db, "PRAGMA synchronous = OFF");
    sqlite3_stmt *visitor = fill_prepare(db, "INSERT INTO visitors (token_hash, name, created_at) "
                                             "VALUES (?1, ?2, ?3)");
    sqlite3_stmt *visitor_index =
        fill_prepare(db, "INSERT INTO visitor_search (rowid, text) VALUES (?1, ?2)");
    sqlite3_stmt *conversation =
        fill_prepare(db, "INSERT INTO conversations (visitor_id, status, created_at, updated_at) "
                         "VALUES (?1, 'open', ?2, ?2)");
    sqlite3_stmt *message = fill_prepare(db, "INSERT INTO messages (conversation_id, sender, body, "
                                             "created_at) VALUES (?1, 0, ?2, ?3)");
    sqlite3_stmt *message_index =
        fill_prepare(db, "INSERT INTO message_search (rowid, text) VALUES (?1, ?2)");
    sqlite3_stmt *stamp = fill_prepare_stamp(db);
    double started = fill_now_s();
    *index_seconds = 0;
    int64_t conversations = 0;
    long i;
    char body[512], token[32], name[64];
    fill_exec(db, "BEGIN");
    for (i = 0; i < n; i++) {
        int64_t at = INT64_C(1700000000000) + i * 1000;
        if (i % VISITOR_EVERY == 0) {
            snprintf(token, sizeof token, "t%ld", i);
            fill_visitor_name(name, sizeof name);
            sqlite3_bind_text(visitor, 1, token, -1, SQLITE_STATIC);
            sqlite3_bind_text(visitor, 2, name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(visitor, 3, at);
            fill_step(db, visitor);
            int64_t visitor_id = sqlite3_last_insert_rowid(db);
            char *indexed = kf_search_index_text(name);
            sqlite3_bind_int64(visitor_index, 1, visitor_id);
            sqlite3_bind_text(visitor_index, 2, indexed, -1, free);
            fill_step(db, visitor_index);
            sqlite3_bind_int64(conversation, 1, visitor_id);
            sqlite3_bind_int64(conversation, 2, at);
            fill_step(db, conversation);
            conversations = sqlite3_last_insert_rowid(db);
        }
        fill_message_body(body, sizeof body);
        /* Mostly the newest conversations, as on a live desk. */
        int64_t c =
            conversations - (int64_t)fill_random(conversations < 50 ? (uint32_t)conversations : 50);
        sqlite3_bind_int64(message, 1, c);
        sqlite3_bind_text(message, 2, body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(message, 3, at);
        fill_step(db, message);
        fill_stamp(db, stamp, c, at, 0, false, 0);
        double t0 = fill_now_s();
        char *indexed = kf_search_index_text(body);
        sqlite3_bind_int64(message_index, 1, sqlite3_last_insert_rowid(db));
        sqlite3_bind_text(message_index, 2, indexed, -1, free);
        fill_step(db, message_index);
        *index_seconds += fill_now_s() - t0;
        if (i % 50000 == 49999) {
            fill_exec(db, "COMMIT");
            double spent = fill_now_s() - started;
            fprintf(stderr, "\r  %ld messages, %.0f s", i + 1, spent);
            if (spent > FILL_SECONDS) {
                i++;
                break;
            }
            fill_exec(db, "BEGIN");
        }
    }
    if (!sqlite3_get_autocommit(db))
        fill_exec(db, "COMMIT");
    fprintf(stderr, "\n");
    sqlite3_finalize(visitor);
    sqlite3_finalize(visitor_index);
    sqlite3_finalize(conversation);
    sqlite3_finalize(message);
    sqlite3_finalize(message_index);
    sqlite3_finalize(stamp);
    /* The prefixes' words, the messages' and the names', as the writer keeps them (this fill
     * indexes without it). */
    fill_exec(db, KF_SQLITE_SEARCH_WORDS_FILL);
    fill_exec(db, KF_SQLITE_NAME_WORDS_FILL);
    fill_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
    return i;
}

/* The bytes of each group of tables with their indexes (dbstat: pages in use). */
static void sizes(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        fill_die("open", db);
    static const char *const groups[][2] = {
        {"messages (rows and indexes)", "messages%"},
        {"message_search (FTS5)", "message_search%"},
        {"visitor_search (FTS5)", "visitor_search%"},
    };
    /* dbstat names a table or an index; sqlite_schema says which table each belongs to. */
    sqlite3_stmt *st = fill_prepare(
        db, "SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_schema s ON s.name = d.name "
            "WHERE s.tbl_name LIKE ?1");
    for (size_t i = 0; i < COUNT(groups); i++) {
        sqlite3_bind_text(st, 1, groups[i][1], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW)
            fill_die("dbstat", db);
        printf("| %s | %.1f MiB |\n", groups[i][0], sqlite3_column_double(st, 0) / 1048576.0);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    struct stat sb;
    if (stat(path, &sb) == 0)
        printf("| the whole file | %.1f MiB |\n", (double)sb.st_size / 1048576.0);
}

/* ---- searches through the store ---- */

typedef struct count {
    long hits;
    int rc;
} count_t;

static int on_hit(void *ctx, const kf_search_hit_t *hit)
{
    (void)hit;
    ((count_t *)ctx)->hits++;
    return 0;
}

static void on_done(void *ctx, const kf_store_result_t *result)
{
    ((count_t *)ctx)->rc = result->rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct kind {
    const char *name;
    const char *const *queries;
    size_t count;
} kind_t;

static void time_kind(kf_store_t *store, const kind_t *k, int runs, int64_t before, double deadline)
{
    double *ms = calloc((size_t)runs, sizeof *ms);
    long hits = 0;
    int done = 0;
    for (int i = 0; i < runs && fill_now_s() < deadline; i++, done++) {
        count_t c = {0, 0};
        double t0 = fill_now_s();
        if (store->ops->search(store, k->queries[(size_t)i % k->count], before, 20, on_hit, on_done,
                               &c) != 0)
            fill_die("search refused", NULL);
        store->ops->flush(store);
        ms[i] = (fill_now_s() - t0) * 1000.0;
        if (c.rc != 0)
            fill_die("search failed", NULL);
        hits += c.hits;
    }
    if (done == 0) { /* out of time before the first */
        free(ms);
        return;
    }
    qsort(ms, (size_t)done, sizeof *ms, cmp_double);
    int p99 = (done * 99) / 100;
    printf("| %s%s | %d | %.2f | %.2f | %.2f | %.1f |\n", k->name,
           before > 0 ? ", a deep page" : "", done, ms[done / 2], ms[p99], ms[done - 1],
           (double)hits / done);
    free(ms);
}

/* Milliseconds of one raw query of the newest 20 hits of match in table (db has it). */
static double raw_search_ms(sqlite3 *db, const char *table, const char *match)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT rowid FROM %s WHERE %s MATCH ?1 ORDER BY rowid DESC LIMIT 20",
             table, table);
    double t0 = fill_now_s();
    sqlite3_stmt *st = fill_prepare(db, sql);
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW)
        ;
    sqlite3_finalize(st);
    return (fill_now_s() - t0) * 1000.0;
}

/* The index again with prefix indexes ('2 3'): its size, and prefix queries on both. */
static void compare_prefix_index(const char *path, int runs)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK || kf_sqlite_define_functions(db) != 0)
        fill_die("open", db);
    fill_exec(db, "PRAGMA synchronous = OFF");
    double t0 = fill_now_s();
    fill_exec(
        db, "CREATE VIRTUAL TABLE prefixed USING fts5(text, content='', columnsize=0, "
            "prefix='2 3', tokenize=\"" KF_SEARCH_TOKENIZE "\");"
            "INSERT INTO prefixed (rowid, text) SELECT id, kefu_search_text(body) FROM messages;");
    printf(
        "\nthe same index with prefix='2 3': built in %.1f s\n\n| table | size |\n| --- | --- |\n",
        fill_now_s() - t0);
    sqlite3_stmt *st =
        fill_prepare(db, "SELECT sum(d.pgsize) FROM dbstat d "
                         "JOIN sqlite_schema s ON s.name = d.name WHERE s.tbl_name LIKE ?1");
    static const char *const tables[][2] = {{"message_search (the store's)", "message_search%"},
                                            {"with prefix='2 3'", "prefixed%"}};
    for (size_t i = 0; i < COUNT(tables); i++) {
        sqlite3_bind_text(st, 1, tables[i][1], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW)
            fill_die("dbstat", db);
        printf("| %s | %.1f MiB |\n", tables[i][0], sqlite3_column_double(st, 0) / 1048576.0);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    static const char *const queries[] = {"\"ref\"*", "\"wa\"*",     "\"tra\"*",
                                          "\"sh\"*",  "\"refund\"*", "\"delivery\"*"};
    printf(
        "\n| prefix query (raw SQL, newest 20, %d runs) | p50 ms | p99 ms |\n| --- | --- | --- |\n",
        runs);
    double *a = calloc((size_t)runs, sizeof *a), *b = calloc((size_t)runs, sizeof *b);
    for (int i = 0; i < runs; i++) {
        const char *q = queries[(size_t)i % COUNT(queries)];
        a[i] = raw_search_ms(db, "message_search", q);
        b[i] = raw_search_ms(db, "prefixed", q);
    }
    qsort(a, (size_t)runs, sizeof *a, cmp_double);
    qsort(b, (size_t)runs, sizeof *b, cmp_double);
    printf("| the store's index | %.2f | %.2f |\n", a[runs / 2], a[(runs * 99) / 100]);
    printf("| with prefix='2 3' | %.2f | %.2f |\n", b[runs / 2], b[(runs * 99) / 100]);
    free(a);
    free(b);
    fill_exec(db, "DROP TABLE prefixed");
    sqlite3_close(db);
}

int main(int argc, char **argv)
{
    load_tool_name("kf_search_bench");
    long n = 1000000;
    int runs = 200;
    bool keep = false, migration = false, prefix_index = false;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--keep") == 0)
            keep = true;
        else if (strcmp(argv[i], "--migration") == 0)
            migration = true;
        else if (strcmp(argv[i], "--prefix-index") == 0)
            prefix_index = true;
        else if (argv[i][0] != '-')
            dir = argv[i];
        else
            fill_die(
                "usage: kf_search_bench [--messages N] [--runs R] [--migration] [--prefix-index] "
                "[--keep] [DIR]",
                NULL);
    }
    if (n < 1000 || n > MAX_MESSAGES || runs < 1 || runs > 100000)
        fill_die("messages must be 1,000 to 5,000,000 and runs 1 to 100,000", NULL);
    char tmp[] = "/tmp/kefu-search-bench-XXXXXX";
    if (dir == NULL && (dir = mkdtemp(tmp)) == NULL)
        fill_die("mkdtemp", NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/kefu.db", dir);

    kf_store_t *store = NULL;
    if (kf_store_open_sqlite(path, "OFF", &store) != 0)
        fill_die("kf_store_open_sqlite", NULL);
    kf_store_close(store);
    fprintf(stderr, "filling %ld messages into %s\n", n, path);
    double t0 = fill_now_s();
    double index_seconds;
    long filled = fill(path, n, &index_seconds);
    double fill_seconds = fill_now_s() - t0;
    printf("\n%ld messages (%ld visitors), filled in %.1f s, of which %.1f s feeding the index "
           "(%.1f µs a message: rewriting and FTS5 insert)\n\n",
           filled, (filled + VISITOR_EVERY - 1) / VISITOR_EVERY, fill_seconds, index_seconds,
           index_seconds * 1e6 / (double)filled);
    printf("| table | size |\n| --- | --- |\n");
    sizes(path);

    if (migration) {
        sqlite3 *db = NULL;
        if (sqlite3_open(path, &db) != SQLITE_OK)
            fill_die("open", db);
        /* Back to version 18, as migration 19 found it: the indexes' vocabulary tables in
         * place of the words lists. (The index itself is migration 5's, whose tables every
         * migration after it builds on: it cannot be taken away alone.) */
        fill_exec(db, "DROP TABLE search_words; DROP TABLE name_words; "
                      "CREATE VIRTUAL TABLE message_search_terms "
                      "  USING fts5vocab(message_search, instance); "
                      "CREATE VIRTUAL TABLE visitor_search_terms "
                      "  USING fts5vocab(visitor_search, instance); "
                      "UPDATE settings SET value = 18 WHERE key = 'schema_version';");
        sqlite3_close(db);
        t0 = fill_now_s();
        if (kf_store_open_sqlite(path, "OFF", &store) != 0)
            fill_die("reopen", NULL);
        printf("\nthe words lists' migrations (19 to 21: the index of %ld messages and the "
               "names' read at start-up): %.1f s\n",
               filled, fill_now_s() - t0);
        kf_store_close(store);
    }

    if (kf_store_open_sqlite(path, "OFF", &store) != 0)
        fill_die("open the store", NULL);
    static const char *const cjk2[] = {"退款", "物流", "订单", "发货", "快递",
                                       "发票", "破损", "审核", "运费", "售后"};
    static const char *const cjk3[] = {"我要退款", "物流信息", "快递单号", "为什么还没",
                                       "充电器",   "申请退款", "订单取消", "修改地址"};
    static const char *const latin[] = {"refund",          "delivery",       "invoice",
                                        "tracking number", "damaged parcel", "Warranty",
                                        "shipping status"};
    static const char *const prefix[] = {"ref", "del", "tra", "shi", "wa"};
    static const char *const rare[] = {"SF0012345", "SF7654321", "SF5555555", "zzzz nothing"};
    static const char *const mixed[] = {"order 退款", "refund 物流", "王芳 退款", "Zhang 发货"};
    static const char *const name[] = {"王芳", "Olga", "Ahmed 李娜", "Yuki"};
    const kind_t kinds[] = {
        {"2-character Chinese word", cjk2, COUNT(cjk2)},
        {"3 or more Chinese characters", cjk3, COUNT(cjk3)},
        {"Latin words", latin, COUNT(latin)},
        {"short Latin prefixes (2-3 letters)", prefix, COUNT(prefix)},
        {"rare words (few or no hits)", rare, COUNT(rare)},
        {"mixed Chinese and Latin", mixed, COUNT(mixed)},
        {"visitors' names", name, COUNT(name)},
    };
    printf("\n%d searches of each kind, 20 hits a page, through the store's read path "
           "(milliseconds):\n\n",
           runs);
    printf("| query | searches | p50 | p99 | max | hits a search |\n"
           "| --- | --- | --- | --- | --- | --- |\n");
    double deadline = fill_now_s() + SEARCH_SECONDS;
    for (size_t i = 0; i < COUNT(kinds); i++)
        time_kind(store, &kinds[i], runs, 0, deadline);
    time_kind(store, &kinds[0], runs, filled / 2, deadline);
    kf_store_close(store);
    if (prefix_index)
        compare_prefix_index(path, runs);
    if (!keep) {
        char file[600];
        static const char *const suffixes[] = {"", "-wal", "-shm"};
        for (size_t i = 0; i < COUNT(suffixes); i++) {
            snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
            unlink(file);
        }
        if (dir == tmp)
            rmdir(dir);
    } else {
        printf("\nkept: %s\n", path);
    }
    return 0;
}
