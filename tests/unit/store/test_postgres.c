/* test_postgres.c: the PostgreSQL backend: the store suite (tests/unit/support/store_suite.h)
 * through its factory, a fresh database per test on the throw-away cluster CTest starts
 * (scripts/pg_cluster.sh; KEFU_PG_CLUSTER names its directory), then what only PostgreSQL has:
 * two stores writing messages at once while a third reads with a cursor, a server stopped and
 * started under a running store, an unreachable server at open, and a schema newer than the
 * binary. */
#include "support/store_suite.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "store/store.h"

/* The cluster's conninfo (its conninfo file), read once. */
static char cluster[512];

/* One test's database. */
typedef struct pg_db {
    char name[64];
    char conninfo[640];
} pg_db_t;

static void load_cluster(void)
{
    const char *dir = getenv("KEFU_PG_CLUSTER");
    if (dir == NULL) {
        fprintf(stderr, "test_postgres: KEFU_PG_CLUSTER is not set (run it through ctest, which "
                        "starts the cluster: scripts/pg_cluster.sh)\n");
        exit(1);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/conninfo", dir);
    FILE *file = fopen(path, "r");
    if (file == NULL || fgets(cluster, sizeof cluster, file) == NULL) {
        fprintf(stderr, "test_postgres: no cluster at %s\n", dir);
        exit(1);
    }
    fclose(file);
    cluster[strcspn(cluster, "\n")] = '\0';
}

/* Runs sql on the cluster's maintenance database (CREATE and DROP DATABASE). */
static void admin_exec(const char *sql)
{
    PGconn *c = PQconnectdb(cluster);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fprintf(stderr, "test_postgres: %s: %s", sql, PQerrorMessage(c));
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(c);
}

/* Runs sql on a test's database and returns its first column as an integer (0 for none). */
static long long db_int(const pg_db_t *db, const char *sql)
{
    PGconn *c = PQconnectdb(db->conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *res = PQexec(c, sql);
    ExecStatusType status = PQresultStatus(res);
    assert_true(status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK);
    long long value = status == PGRES_TUPLES_OK && PQntuples(res) > 0
                          ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                          : 0;
    PQclear(res);
    PQfinish(c);
    return value;
}

static void *pg_create(void)
{
    static int next;
    pg_db_t *db = calloc(1, sizeof *db);
    snprintf(db->name, sizeof db->name, "kefu_test_%d_%d", (int)getpid(), ++next);
    snprintf(db->conninfo, sizeof db->conninfo, "%s dbname=%s", cluster, db->name);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db->name);
    admin_exec(sql);
    return db;
}

static int pg_open(void *db, kf_store_t **out)
{
    return kf_store_open_postgres(((pg_db_t *)db)->conninfo, out);
}

/* What the triggers keep must equal what the rows say: conversation_counts and each
 * conversation's newest message. */
static void pg_check(void *db)
{
    assert_int_equal(db_int(db,
                            "SELECT count(*) FROM (SELECT COALESCE(team_id, 0) t, status s, "
                            "CASE WHEN status = 'resolved' THEN 0 ELSE COALESCE(assignee_id, 0) "
                            "END a, count(*) n FROM conversations GROUP BY 1, 2, 3) x "
                            "FULL JOIN (SELECT * FROM conversation_counts WHERE n > 0) y "
                            "ON x.t = y.team_id AND x.s = y.status AND x.a = y.assignee_id "
                            "WHERE x.n IS DISTINCT FROM y.n"),
                     0);
    assert_int_equal(db_int(db, "SELECT count(*) FROM conversations c WHERE last_message_id != "
                                "COALESCE((SELECT max(id) FROM messages WHERE conversation_id = "
                                "c.id), 0)"),
                     0);
}

static void pg_destroy(void *db)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", ((pg_db_t *)db)->name);
    admin_exec(sql);
    free(db);
}

static const store_backend_t pg_backend = {
    .name = "postgres",
    .create = pg_create,
    .open = pg_open,
    .check = pg_check,
    .destroy = pg_destroy,
};

/* ---- several writers at once ---- */

/* A reader's pass over messages_all from its cursor. */
typedef struct cursor_read {
    int64_t cursor;
    int64_t *seen;
    size_t count;
    size_t capacity;
    bool out_of_order;
} cursor_read_t;

static int on_cursor_message(void *ctx, const kf_message_t *message)
{
    cursor_read_t *r = ctx;
    if (message->id <= r->cursor)
        r->out_of_order = true;
    r->cursor = message->id;
    if (r->count == r->capacity) {
        r->capacity = r->capacity > 0 ? r->capacity * 2 : 256;
        r->seen = realloc(r->seen, r->capacity * sizeof *r->seen);
        assert_non_null(r->seen);
    }
    r->seen[r->count++] = message->id;
    return 0;
}

static void on_cursor_done(void *ctx, const kf_store_result_t *result)
{
    (void)ctx;
    assert_int_equal(result->rc, 0);
}

static void on_write_done(void *ctx, const kf_store_result_t *result)
{
    int *failed = ctx;
    *failed += result->rc != 0;
}

static int compare_ids(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Two stores on one database (two nodes) write messages at once, in many small batches, while a
 * third polls messages_all from its cursor: every message must reach the reader, in id order,
 * none skipped because a higher id committed before a lower one (KF_PG_MESSAGE_LOCK). Without
 * the lock the reader missed messages in three runs of three when this was written. */
static void test_pg_concurrent_writers_keep_cursors(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor_a = suite_add_visitor(f, "token-a", "A");
    int64_t visitor_b = suite_add_visitor(f, "token-b", "B");
    int64_t conversation_a = suite_open_conversation(f, visitor_a, "hello", SUITE_NOW, NULL);
    int64_t conversation_b = suite_open_conversation(f, visitor_b, "hello", SUITE_NOW, NULL);
    kf_store_t *other = NULL, *reader = NULL;
    assert_int_equal(pg_open(f->db, &other), 0);
    assert_int_equal(pg_open(f->db, &reader), 0);

    enum { ROUNDS = 60, PER_ROUND = 5 };
    int failed = 0;
    cursor_read_t r = {0};
    r.cursor = 0;
    /* The two conversations' first messages are the reader's start. */
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < PER_ROUND; i++) {
            kf_message_new_t a = {.conversation_id = conversation_a,
                                  .sender = KF_SENDER_VISITOR,
                                  .body = "from node a",
                                  .now = SUITE_NOW + round};
            kf_message_new_t b = a;
            b.conversation_id = conversation_b;
            b.body = "from node b";
            assert_int_equal(f->store->ops->message_add(f->store, &a, on_write_done, &failed), 0);
            assert_int_equal(other->ops->message_add(other, &b, on_write_done, &failed), 0);
        }
        /* The writers' threads commit while the reader reads. */
        assert_int_equal(reader->ops->messages_all(reader, r.cursor, 1000, on_cursor_message,
                                                   on_cursor_done, &r),
                         0);
        reader->ops->flush(reader);
        f->store->ops->complete(f->store);
        other->ops->complete(other);
    }
    f->store->ops->flush(f->store);
    other->ops->flush(other);
    assert_int_equal(failed, 0);
    /* The rest, now that both have committed everything. */
    assert_int_equal(
        reader->ops->messages_all(reader, r.cursor, 10000, on_cursor_message, on_cursor_done, &r),
        0);
    reader->ops->flush(reader);
    assert_false(r.out_of_order);
    size_t total = (size_t)db_int(f->db, "SELECT count(*) FROM messages");
    assert_int_equal(total, 2 + 2 * ROUNDS * PER_ROUND);
    /* Every message, each once. */
    assert_int_equal(r.count, total);
    qsort(r.seen, r.count, sizeof *r.seen, compare_ids);
    for (size_t i = 1; i < r.count; i++)
        assert_true(r.seen[i] > r.seen[i - 1]);
    free(r.seen);
    kf_store_close(reader);
    kf_store_close(other);
}

/* ---- losing the server ---- */

typedef struct health {
    int down;
    int up;
} health_t;

static void on_health(void *data, bool writable, uint64_t refused)
{
    health_t *h = data;
    (void)refused;
    if (writable)
        h->up++;
    else
        h->down++;
}

static void cluster_command(const char *command)
{
    char line[1024];
    snprintf(line, sizeof line, "%s %s %s >/dev/null", getenv("KEFU_PG_SCRIPT"), command,
             getenv("KEFU_PG_CLUSTER"));
    assert_int_equal(system(line), 0);
}

static int send_one(kf_store_t *store, int64_t conversation_id, const char *body)
{
    seen_t *seen = seen_new();
    kf_message_new_t m = {.conversation_id = conversation_id,
                          .sender = KF_SENDER_VISITOR,
                          .body = body,
                          .now = SUITE_NOW};
    assert_int_equal(store->ops->message_add(store, &m, on_done, seen), 0);
    store->ops->flush(store);
    int rc = last_result(seen)->rc;
    seen_free(seen);
    return rc;
}

/* The server stops under a running store: writes are refused with KF_EUNAVAIL (never
 * acknowledged), the health hook hears it once; the server comes back: the store reconnects by
 * itself and says so without waiting for a write, and writes go again. */
static void test_pg_server_lost_and_back(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "A");
    int64_t conversation = suite_open_conversation(f, visitor, "before", SUITE_NOW, NULL);
    health_t h = {0};
    kf_store_set_health(f->store, on_health, &h);

    cluster_command("stop");
    assert_int_equal(send_one(f->store, conversation, "while down"), KF_EUNAVAIL);
    assert_int_equal(send_one(f->store, conversation, "still down"), KF_EUNAVAIL);
    assert_int_equal(h.down, 1);
    assert_false(kf_store_writable(f->store));
    /* A read that cannot run says so too, rather than waiting. */
    seen_t *seen = seen_new();
    assert_int_equal(f->store->ops->conversation_get(f->store, conversation, on_done, seen), 0);
    f->store->ops->flush(f->store);
    assert_int_equal(last_result(seen)->rc, KF_EUNAVAIL);
    seen_free(seen);

    cluster_command("start");
    /* Back by itself: the writer reconnects within its backoff and tells the loop. */
    for (int i = 0; i < 200 && h.up == 0; i++) {
        usleep(50 * 1000);
        f->store->ops->complete(f->store);
    }
    assert_int_equal(h.up, 1);
    assert_true(kf_store_writable(f->store));
    assert_int_equal(send_one(f->store, conversation, "after"), 0);
    /* The reader reconnects too, and nothing refused was stored. */
    seen = seen_new();
    assert_int_equal(f->store->ops->messages_in_conversation(f->store, conversation, 0, 100,
                                                             on_message, on_done, seen),
                     0);
    for (int i = 0; i < 100 && seen->result_count == 0; i++) {
        f->store->ops->flush(f->store);
        if (seen->result_count == 0)
            usleep(50 * 1000);
    }
    if (last_result(seen)->rc == KF_EUNAVAIL) {
        /* The reader's backoff had not passed yet: once more. */
        seen_free(seen);
        usleep(300 * 1000);
        seen = seen_new();
        assert_int_equal(f->store->ops->messages_in_conversation(f->store, conversation, 0, 100,
                                                                 on_message, on_done, seen),
                         0);
        f->store->ops->flush(f->store);
    }
    assert_int_equal(last_result(seen)->rc, 0);
    assert_int_equal(seen->message_count, 2);
    assert_string_equal(seen->messages[0].body, "before");
    assert_string_equal(seen->messages[1].body, "after");
    seen_free(seen);
}

/* ---- opening ---- */

/* A server nobody answers at: a clear message (which address, what failed), no store. */
static void test_pg_unreachable_at_open(void **state)
{
    (void)state;
    kf_store_t *store = (kf_store_t *)1;
    char why[512];
    int rc = kf_store_open_postgres_why("host=127.0.0.1 port=1 dbname=nothing connect_timeout=2",
                                        &store, why, sizeof why);
    assert_int_equal(rc, KF_EUNAVAIL);
    assert_null(store);
    assert_non_null(strstr(why, "cannot connect to PostgreSQL"));
    assert_non_null(strstr(why, "port=1"));
    assert_non_null(strstr(why, "127.0.0.1"));
    assert_int_equal(kf_store_open_postgres_why("host='unterminated", &store, why, sizeof why),
                     KF_EINVAL);
}

/* A database migrated by a newer kefu is refused, and left as it is. */
static void test_pg_refuses_newer_schema(void **state)
{
    suite_fixture_t *f = *state;
    kf_store_close(f->store);
    f->store = NULL;
    db_int(f->db, "UPDATE settings SET value = '999' WHERE key = 'schema_version'");
    char why[512];
    kf_store_t *store = NULL;
    assert_int_equal(
        kf_store_open_postgres_why(((pg_db_t *)f->db)->conninfo, &store, why, sizeof why),
        KF_ESTORE);
    assert_null(store);
    assert_non_null(strstr(why, "newer than this kefu"));
    assert_int_equal(db_int(f->db, "SELECT value FROM settings WHERE key = 'schema_version'"), 999);
    db_int(f->db, "UPDATE settings SET value = '2' WHERE key = 'schema_version'");
    assert_int_equal(pg_open(f->db, &f->store), 0);
}

/* Opening twice (a restart; two nodes) migrates once and keeps what is there. */
static void test_pg_reopen_keeps_rows(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "Ann");
    suite_open_conversation(f, visitor, "kept", SUITE_NOW, NULL);
    suite_reopen(f);
    assert_int_equal(suite_message_count(f), 1);
    assert_int_equal(db_int(f->db, "SELECT value FROM settings WHERE key = 'schema_version'"), 2);
}

#define PG_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

int main(void)
{
    load_cluster();
    static const struct CMUnitTest pg_tests[] = {
        PG_TEST(test_pg_concurrent_writers_keep_cursors),
        PG_TEST(test_pg_server_lost_and_back),
        PG_TEST(test_pg_unreachable_at_open),
        PG_TEST(test_pg_refuses_newer_schema),
        PG_TEST(test_pg_reopen_keeps_rows),
    };
    return store_suite_run(&pg_backend, pg_tests, sizeof pg_tests / sizeof pg_tests[0]);
}
