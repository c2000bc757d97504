/* kf_report_bench.c: reports on a large store: how long GET /api/reports's read takes. It makes
 * a store (the real schema), fills it straight through SQLite with N messages over D days (as
 * the writer would: conversations with their visitor's first message, agents' replies, notes,
 * resolutions, teams; each message stamps its conversation as the writer does), then opens the
 * store and times reports through its own asynchronous read path (queue, then flush: what the loop
 * does, without the HTTP around it): the last 30 days and the whole range, per day, agent and
 * team, and one agent's own. The search index is not filled (reports do not read it).
 *
 *   build/kf_report_bench [--messages N] [--days D] [--runs R] [--keep] [DIR]
 *     N messages (default 1,000,000; at most 5,000,000) over D days (default 90, at most 366),
 *     R runs of each report (default 5); DIR: where the database goes (default: a temporary
 *     directory under /tmp, removed after, unless --keep). */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "load/fill.h"
#include "load/tool.h"
#include "store/store.h"

#define MAX_MESSAGES 5000000L
#define AGENTS 20
#define TEAMS 3
#define DAY_MS INT64_C(86400000)
/* The bench's "now": a fixed time, so that every run fills the same store. */
#define END_MS INT64_C(1764028800000)

/* Conversations of about 10 messages each, started evenly over the days: the visitor's first
 * message, then turns of visitor and agent a few minutes apart, a note now and then; one in
 * twenty never answered; most resolved an hour or so after they started. */
static void fill(const char *path, long n, int days)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        fill_die("open", db);
    fill_exec(db, "PRAGMA synchronous = OFF; BEGIN");
    sqlite3_stmt *agent = fill_prepare(db, "INSERT INTO agents (email, name, role, password_hash, "
                                           "created_at) VALUES (?1, ?2, 'agent', 'x', 0)");
    for (int i = 1; i <= AGENTS; i++) {
        char email[32];
        char name[32];
        snprintf(email, sizeof email, "agent%d@example.com", i);
        snprintf(name, sizeof name, "Agent %d", i);
        sqlite3_bind_text(agent, 1, email, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(agent, 2, name, -1, SQLITE_TRANSIENT);
        fill_step(db, agent);
    }
    sqlite3_finalize(agent);
    for (int i = 1; i <= TEAMS; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO teams (name, created_at) VALUES ('Team %d', 0)", i);
        fill_exec(db, sql);
    }
    sqlite3_stmt *visitor =
        fill_prepare(db, "INSERT INTO visitors (token_hash, name, created_at) VALUES (?1, '', ?2)");
    sqlite3_stmt *conversation =
        fill_prepare(db, "INSERT INTO conversations (visitor_id, status, assignee_id, team_id, "
                         "created_at, updated_at) VALUES (?1, 'open', ?2, ?3, ?4, ?4)");
    sqlite3_stmt *message =
        fill_prepare(db, "INSERT INTO messages (conversation_id, sender, agent_id, "
                         "body, created_at, private) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    sqlite3_stmt *stamp = fill_prepare_stamp(db);
    sqlite3_stmt *resolve = fill_prepare(db, "UPDATE conversations SET status = 'resolved', "
                                             "resolved_at = ?2, resolved_by = assignee_id, "
                                             "updated_at = ?2 WHERE id = ?1");
    long conversations = n / 10 > 0 ? n / 10 : 1;
    int64_t start = END_MS - (int64_t)days * DAY_MS;
    int64_t spacing = (int64_t)days * DAY_MS / conversations;
    long written = 0;
    for (long c = 0; c < conversations && written < n; c++) {
        int64_t t = start + c * spacing + fill_random((uint32_t)(spacing > 1 ? spacing : 1));
        char token[32];
        snprintf(token, sizeof token, "v%ld", c);
        sqlite3_bind_text(visitor, 1, token, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(visitor, 2, t);
        fill_step(db, visitor);
        int64_t visitor_id = sqlite3_last_insert_rowid(db);
        int64_t holder = 1 + fill_random(AGENTS);
        int64_t team = fill_random(TEAMS + 1); /* 0: none */
        sqlite3_bind_int64(conversation, 1, visitor_id);
        sqlite3_bind_int64(conversation, 2, holder);
        if (team != 0)
            sqlite3_bind_int64(conversation, 3, team);
        else
            sqlite3_bind_null(conversation, 3);
        sqlite3_bind_int64(conversation, 4, t);
        fill_step(db, conversation);
        int64_t id = sqlite3_last_insert_rowid(db);
        bool silent = fill_random(20) == 0;
        long count = n - written < 10 ? n - written : 10;
        for (long m = 0; m < count; m++) {
            bool by_agent = !silent && m % 2 == 1;
            bool note = by_agent && fill_random(10) == 0;
            sqlite3_bind_int64(message, 1, id);
            sqlite3_bind_int64(message, 2, by_agent ? 1 : 0);
            int64_t replier =
                by_agent ? (fill_random(4) == 0 ? 1 + fill_random(AGENTS) : holder) : 0;
            if (by_agent)
                sqlite3_bind_int64(message, 3, replier);
            else
                sqlite3_bind_null(message, 3);
            sqlite3_bind_text(message, 4, by_agent ? "Let me check that for you." : "Hello?", -1,
                              SQLITE_STATIC);
            sqlite3_bind_int64(message, 5, t);
            sqlite3_bind_int64(message, 6, note ? 1 : 0);
            fill_step(db, message);
            fill_stamp(db, stamp, id, t, by_agent ? 1 : 0, note, replier);
            t += 1000 * (int64_t)(10 + fill_random(300));
        }
        written += count;
        if (!silent && fill_random(10) < 8) {
            sqlite3_bind_int64(resolve, 1, id);
            sqlite3_bind_int64(resolve, 2, t + 1000 * (int64_t)fill_random(7200));
            fill_step(db, resolve);
        }
    }
    sqlite3_finalize(visitor);
    sqlite3_finalize(conversation);
    sqlite3_finalize(message);
    sqlite3_finalize(resolve);
    sqlite3_finalize(stamp);
    fill_exec(db, "COMMIT");
    sqlite3_close(db);
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
        double began = fill_now_s();
        if (store->ops->report(store, &query, on_row, on_done, &t) != 0)
            fill_die("report refused", NULL);
        store->ops->flush(store);
        times[i] = fill_now_s() - began;
        if (t.rc != 0)
            fill_die("report failed", NULL);
    }
    qsort(times, (size_t)runs, sizeof times[0], compare_double);
    printf("%-34s %5d rows %9" PRId64 " messages  min %7.1f ms  median %7.1f ms  max %7.1f ms\n",
           what, t.rows, t.messages, times[0] * 1e3, times[runs / 2] * 1e3, times[runs - 1] * 1e3);
}

int main(int argc, char **argv)
{
    load_tool_name("kf_report_bench");
    long n = 1000000;
    int days = 90;
    int runs = 5;
    bool keep = false;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc)
            days = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--keep") == 0)
            keep = true;
        else if (argv[i][0] != '-')
            dir = argv[i];
        else
            fill_die("usage: kf_report_bench [--messages N] [--days D] [--runs R] [--keep] [DIR]",
                     NULL);
    }
    if (n < 1 || n > MAX_MESSAGES || days < 1 || days > KF_REPORT_MAX_DAYS || runs < 1 || runs > 64)
        fill_die("--messages 1 to 5,000,000, --days 1 to 366, --runs 1 to 64", NULL);
    char tmp[] = "/tmp/kf_report_bench.XXXXXX";
    if (dir == NULL && (dir = mkdtemp(tmp)) == NULL)
        fill_die("mkdtemp", NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/kefu.db", dir);
    kf_store_t *store = NULL;
    if (kf_store_open_sqlite(path, "OFF", &store) != 0)
        fill_die("kf_store_open_sqlite", NULL);
    kf_store_close(store);

    double began = fill_now_s();
    fill(path, n, days);
    printf("filled %ld messages over %d days in %.1f s\n", n, days, fill_now_s() - began);

    if (kf_store_open_sqlite(path, "OFF", &store) != 0)
        fill_die("kf_store_open_sqlite", NULL);
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

    if (!keep && strcmp(dir, tmp) == 0) {
        char file[600];
        const char *suffixes[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
            unlink(file);
        }
        rmdir(dir);
    }
    return 0;
}
