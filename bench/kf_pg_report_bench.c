/* kf_pg_report_bench.c: kf_report_bench's reports on the PostgreSQL store: how long GET
 * /api/reports's read takes there. It makes a database on the server conninfo names, opens the
 * store on it (the real schema, migrated), fills it in the server with N messages over D days
 * shaped as kf_report_bench's (conversations of 10 messages, visitor and agent in turn, a note
 * in ten of the agents', one conversation in twenty never answered, eight in ten resolved, 20
 * agents, 3 teams), with the report columns set as the writer's trigger would have, then times
 * the same reports through the store's own read path (queue, then flush). The database is
 * dropped after, unless --keep.
 *
 *   build/kf_pg_report_bench --conninfo 'host=... port=... user=...' [--messages N] [--days D]
 *                            [--runs R] [--keep]
 *     conninfo: libpq key=value words of a role that may create databases (scripts/pg_cluster.sh
 *     writes one); N messages (default 1,000,000; at most 5,000,000) over D days (default 90),
 *     R runs of each report (default 5). */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define MAX_MESSAGES 5000000L
#define DAY_MS INT64_C(86400000)
/* kf_report_bench's "now", so that both fill the same period. */
#define END_MS INT64_C(1764028800000)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, PGconn *c)
{
    fprintf(stderr, "kf_pg_report_bench: %s%s%s\n", what, c != NULL ? ": " : "",
            c != NULL ? PQerrorMessage(c) : "");
    exit(1);
}

static void run(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType status = PQresultStatus(res);
    PQclear(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        die(sql, c);
}

/* The fill, in the server: triggers off (session_replication_role), so the report columns are
 * set from the messages afterwards, as messages_first_reply and the status writes keep them. */
static void fill(PGconn *c, long n, int days)
{
    long conversations = n / 10 > 0 ? n / 10 : 1;
    int64_t start = END_MS - (int64_t)days * DAY_MS;
    int64_t spacing = (int64_t)days * DAY_MS / conversations;
    char sql[2048];
    run(c, "SET session_replication_role = replica");
    run(c, "BEGIN");
    run(c, "SELECT setseed(0.5)");
    run(c, "INSERT INTO agents (id, email, name, role, password_hash, created_at) "
           "SELECT g, 'agent' || g || '@example.com', 'Agent ' || g, 'agent', 'x', 0 "
           "FROM generate_series(1, 20) g");
    run(c, "INSERT INTO teams (id, name, created_at) SELECT g, 'Team ' || g, 0 "
           "FROM generate_series(1, 3) g");
    snprintf(sql, sizeof sql,
             "CREATE TEMP TABLE plan AS SELECT g AS id, %" PRId64 " + (g - 1) * %" PRId64
             "::bigint + floor(random() * %" PRId64 ")::bigint AS t, "
             "1 + floor(random() * 20)::bigint AS holder, floor(random() * 4)::bigint AS team, "
             "random() < 0.05 AS silent, random() < 0.8 AS resolves "
             "FROM generate_series(1, %ld) g",
             start, spacing, spacing > 1 ? spacing : 1, conversations);
    run(c, sql);
    run(c, "INSERT INTO visitors (id, token_hash, name, created_at) "
           "SELECT id, 'v' || id, '', t FROM plan");
    run(c, "INSERT INTO conversations (id, visitor_id, status, assignee_id, team_id, created_at, "
           "updated_at, agent_read_up_to, visitor_read_up_to) SELECT id, id, 'open', holder, "
           "NULLIF(team, 0), t, t, 0, 0 FROM plan");
    snprintf(sql, sizeof sql,
             "INSERT INTO messages (id, conversation_id, sender, agent_id, body, created_at, "
             "private) SELECT (p.id - 1) * 10 + k + 1, p.id, "
             "CASE WHEN NOT p.silent AND k %% 2 = 1 THEN 1 ELSE 0 END, "
             "CASE WHEN NOT p.silent AND k %% 2 = 1 THEN CASE WHEN random() < 0.25 "
             "  THEN 1 + floor(random() * 20)::bigint ELSE p.holder END END, "
             "CASE WHEN NOT p.silent AND k %% 2 = 1 THEN 'Let me check that for you.' "
             "  ELSE 'Hello?' END, p.t + k * 160000 + floor(random() * 100000)::bigint, "
             "CASE WHEN NOT p.silent AND k %% 2 = 1 AND random() < 0.1 THEN 1 ELSE 0 END "
             "FROM plan p, generate_series(0, 9) k WHERE (p.id - 1) * 10 + k < %ld",
             n);
    run(c, sql);
    run(c, "UPDATE conversations c SET first_visitor_at = f.visitor_at, "
           "first_reply_at = f.reply_at, first_reply_agent_id = f.reply_agent, "
           "updated_at = f.last_at, last_message_id = f.last_id FROM (SELECT conversation_id, "
           "min(created_at) FILTER (WHERE sender = 0) AS visitor_at, "
           "min(created_at) FILTER (WHERE sender = 1 AND private = 0) AS reply_at, "
           "(array_agg(agent_id ORDER BY id) FILTER (WHERE sender = 1 AND private = 0))[1] "
           "  AS reply_agent, max(created_at) AS last_at, max(id) AS last_id "
           "FROM messages GROUP BY conversation_id) f WHERE c.id = f.conversation_id");
    run(c, "UPDATE conversations c SET status = 'resolved', resolved_by = assignee_id, "
           "resolved_at = updated_at + floor(random() * 7200000)::bigint "
           "FROM plan p WHERE p.id = c.id AND p.resolves AND NOT p.silent");
    run(c, "COMMIT");
    run(c, "SET session_replication_role = origin");
    /* What autovacuum does to a table this size soon after: the visibility map that lets the
     * counts be index-only scans, and the statistics. */
    run(c, "VACUUM ANALYZE");
}

typedef struct tally {
    int rows;
    int rc;
    int64_t messages;
} tally_t;

static int on_row(void *ctx, const kf_report_row_t *row)
{
    (void)row;
    ((tally_t *)ctx)->rows++;
    return 0;
}

static void on_done(void *ctx, const kf_store_result_t *result)
{
    tally_t *t = ctx;
    t->rc = result->rc;
    if (result->rc == 0)
        t->messages = result->report_totals->visitor_messages +
                      result->report_totals->agent_messages + result->report_totals->notes;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static void time_report(kf_store_t *store, const char *what, kf_report_query_t query, int runs)
{
    double times[64];
    tally_t t = {0};
    for (int i = 0; i < runs; i++) {
        memset(&t, 0, sizeof t);
        double began = now_s();
        if (store->ops->report(store, &query, on_row, on_done, &t) != 0)
            die("report refused", NULL);
        store->ops->flush(store);
        times[i] = now_s() - began;
        if (t.rc != 0)
            die("report failed", NULL);
    }
    qsort(times, (size_t)runs, sizeof times[0], compare_double);
    printf("%-34s %5d rows %9" PRId64 " messages  min %7.1f ms  median %7.1f ms  max %7.1f ms\n",
           what, t.rows, t.messages, times[0] * 1e3, times[runs / 2] * 1e3, times[runs - 1] * 1e3);
}

int main(int argc, char **argv)
{
    long n = 1000000;
    int days = 90;
    int runs = 5;
    bool keep = false;
    const char *conninfo = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc)
            days = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
            conninfo = argv[++i];
        else if (strcmp(argv[i], "--keep") == 0)
            keep = true;
        else
            die("usage: kf_pg_report_bench --conninfo CONNINFO [--messages N] [--days D] "
                "[--runs R] [--keep]",
                NULL);
    }
    if (conninfo == NULL || n < 1 || n > MAX_MESSAGES || days < 1 || days > KF_REPORT_MAX_DAYS ||
        runs < 1 || runs > 64)
        die("--conninfo, --messages 1 to 5,000,000, --days 1 to 366, --runs 1 to 64", NULL);
    PGconn *admin = PQconnectdb(conninfo);
    if (PQstatus(admin) != CONNECTION_OK)
        die("connect", admin);
    char name[64];
    snprintf(name, sizeof name, "kf_report_bench_%ld", (long)getpid());
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    run(admin, sql);
    /* Later words of a conninfo override earlier ones. */
    char db_conninfo[1024];
    snprintf(db_conninfo, sizeof db_conninfo, "%s dbname=%s", conninfo, name);

    kf_store_t *store = NULL;
    if (kf_store_open_postgres(db_conninfo, &store) != 0)
        die("kf_store_open_postgres", NULL);
    PGconn *c = PQconnectdb(db_conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", c);
    double began = now_s();
    fill(c, n, days);
    PQfinish(c);
    printf("filled %ld messages over %d days in %.1f s\n", n, days, now_s() - began);

    int64_t month = END_MS - 30 * DAY_MS;
    int64_t all = END_MS - (int64_t)days * DAY_MS;
    kf_report_query_t q = {.from = month, .to = END_MS, .utc_offset = 480};
    time_report(store, "last 30 days, per day", q, runs);
    q.group = KF_REPORT_AGENT;
    time_report(store, "last 30 days, per agent", q, runs);
    q.group = KF_REPORT_TEAM;
    time_report(store, "last 30 days, per team", q, runs);
    q = (kf_report_query_t){.from = all, .to = END_MS + DAY_MS, .utc_offset = 480};
    time_report(store, "whole range, per day", q, runs);
    q.group = KF_REPORT_AGENT;
    time_report(store, "whole range, per agent", q, runs);
    q.group = KF_REPORT_TEAM;
    time_report(store, "whole range, per team", q, runs);
    q = (kf_report_query_t){.from = all, .to = END_MS + DAY_MS, .agent_id = 1};
    time_report(store, "whole range, one agent's own", q, runs);
    kf_store_close(store);

    if (!keep) {
        snprintf(sql, sizeof sql, "DROP DATABASE %s", name);
        run(admin, sql);
    }
    PQfinish(admin);
    return 0;
}
