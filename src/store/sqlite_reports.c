/* sqlite_reports.c: the report read (store.h, report): a period's conversations and messages
 * summed per day, agent or team, with the medians and 90th percentiles of first response and
 * resolution, and the visitors' ratings. It reads one range of conversations_by_created and one
 * of messages_by_time (migration "reports"), never a conversation's messages one by one, and does
 * the grouping here in C, where a day at a UTC offset is arithmetic and the percentiles need the
 * values sorted. Trade-off: it runs on the loop's connection as every read does, so a report over a
 * year of a busy desk holds the loop for its duration (docs/PERFORMANCE.md has the figures). */
#include "store/sqlite_internal.h"

#include "base/err.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define MINUTE_MS 60000LL

/* A growing list of durations (ms), to be sorted for its percentiles. */
typedef struct durations {
    int64_t *values;
    size_t count;
    size_t capacity;
} durations_t;

/* One group's running sums. */
typedef struct group {
    kf_report_row_t row; /* the sums; the percentiles are filled at the end */
    durations_t first_response;
    durations_t resolution;
    char *name; /* owned: the agent's or team's name row.name points at */
} group_t;

/* The report being made. */
typedef struct report {
    const kf_report_query_t *query;
    group_t *groups; /* by key, ascending */
    size_t group_count;
    size_t group_capacity;
    group_t totals;
    int64_t first_day; /* KF_REPORT_DAY: the key of the period's first day */
    int64_t *team_of;  /* with teams: pairs of (conversation id, team id), by id */
    size_t team_of_count;
} report_t;

static void durations_add(durations_t *d, int64_t value)
{
    if (d->count == d->capacity) {
        d->capacity = d->capacity == 0 ? 16 : d->capacity * 2;
        d->values = realloc(d->values, d->capacity * sizeof *d->values);
        if (d->values == NULL)
            abort();
    }
    d->values[d->count++] = value;
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile of sorted values: the value at rank ceil(p * n / 100), -1 for
 * none. */
static int64_t percentile(const durations_t *d, int p)
{
    if (d->count == 0)
        return -1;
    size_t rank = ((size_t)p * d->count + 99) / 100;
    return d->values[rank > 0 ? rank - 1 : 0];
}

static void group_finish(group_t *g)
{
    if (g->first_response.count > 1)
        qsort(g->first_response.values, g->first_response.count, sizeof(int64_t), compare_int64);
    if (g->resolution.count > 1)
        qsort(g->resolution.values, g->resolution.count, sizeof(int64_t), compare_int64);
    g->row.first_response_median = percentile(&g->first_response, 50);
    g->row.first_response_p90 = percentile(&g->first_response, 90);
    g->row.resolution_median = percentile(&g->resolution, 50);
    g->row.resolution_p90 = percentile(&g->resolution, 90);
}

static void group_free(group_t *g)
{
    free(g->name);
    free(g->first_response.values);
    free(g->resolution.values);
}

/* The UTC ms of the local midnight that starts the day time falls in. */
static int64_t day_of(const kf_report_query_t *query, int64_t time)
{
    int64_t shift = query->utc_offset * MINUTE_MS;
    int64_t local = time + shift;
    int64_t day = local / DAY_MS;
    if (local % DAY_MS < 0)
        day--;
    return day * DAY_MS - shift;
}

/* The day time falls in: the last whose start is at or before it (days are all there from the
 * start, and the first starts at or before the period). */
static group_t *day_at(report_t *r, int64_t time)
{
    size_t low = 0;
    size_t high = r->group_count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (r->groups[middle].row.key <= time)
            low = middle + 1;
        else
            high = middle;
    }
    assert(low > 0);
    return &r->groups[low - 1];
}

/* The group with key, added (zeroed) when absent. */
static group_t *group_at(report_t *r, int64_t key)
{
    size_t low = 0;
    size_t high = r->group_count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (r->groups[middle].row.key < key)
            low = middle + 1;
        else
            high = middle;
    }
    if (low < r->group_count && r->groups[low].row.key == key)
        return &r->groups[low];
    if (r->group_count == r->group_capacity) {
        r->group_capacity = r->group_capacity == 0 ? 16 : r->group_capacity * 2;
        r->groups = realloc(r->groups, r->group_capacity * sizeof *r->groups);
        if (r->groups == NULL)
            abort();
    }
    memmove(&r->groups[low + 1], &r->groups[low], (r->group_count - low) * sizeof *r->groups);
    r->group_count++;
    memset(&r->groups[low], 0, sizeof r->groups[low]);
    r->groups[low].row.key = key;
    r->groups[low].row.name = "";
    return &r->groups[low];
}

/* The team a conversation is in now (0: none). */
static int64_t team_of(const report_t *r, int64_t conversation_id)
{
    size_t low = 0;
    size_t high = r->team_of_count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        int64_t id = r->team_of[2 * middle];
        if (id == conversation_id)
            return r->team_of[2 * middle + 1];
        if (id < conversation_id)
            low = middle + 1;
        else
            high = middle;
    }
    return 0;
}

/* Where a figure whose agent is agent_id goes, beside the totals: NULL when it goes nowhere
 * else (an agent's own report and another agent's figure come here too, with *counts false). */
static group_t *figure_group(report_t *r, int64_t agent_id, int64_t time, int64_t team_id,
                             bool *counts)
{
    *counts = r->query->agent_id == 0 || agent_id == r->query->agent_id;
    if (!*counts)
        return NULL;
    switch (r->query->group) {
    case KF_REPORT_DAY: return day_at(r, time);
    case KF_REPORT_AGENT: return agent_id != 0 ? group_at(r, agent_id) : NULL;
    default: return group_at(r, team_id);
    }
}

typedef enum {
    FIGURE_CONVERSATION,
    FIGURE_FIRST,
    FIGURE_RESOLVED,
    FIGURE_UNANSWERED,
    FIGURE_GOOD,
    FIGURE_BAD,
} figure_t;

static void add_figure(group_t *g, figure_t figure, int64_t duration)
{
    switch (figure) {
    case FIGURE_CONVERSATION: g->row.conversations++; break;
    case FIGURE_FIRST:
        g->row.answered++;
        durations_add(&g->first_response, duration);
        break;
    case FIGURE_RESOLVED:
        g->row.resolved++;
        durations_add(&g->resolution, duration);
        break;
    case FIGURE_GOOD: g->row.rated_good++; break;
    case FIGURE_BAD: g->row.rated_bad++; break;
    default: g->row.unanswered++; break;
    }
}

static void count(report_t *r, figure_t figure, int64_t agent_id, int64_t time, int64_t team_id,
                  int64_t duration)
{
    bool counts = false;
    group_t *g = figure_group(r, agent_id, time, team_id, &counts);
    if (!counts)
        return;
    add_figure(&r->totals, figure, duration);
    if (g != NULL)
        add_figure(g, figure, duration);
}

static int prepare(sqlite_store_t *s, const char *sql, sqlite3_stmt **st)
{
    int code = sqlite3_prepare_v2(s->main.db, sql, -1, st, NULL);
    return code == SQLITE_OK ? 0 : kf_sqlite_map_error(code);
}

/* Steps st to its end, calling row for each; 0 or a KF_E* code. The statement is finalized. */
static int each_row(sqlite3_stmt *st, report_t *r, void (*row)(report_t *r, sqlite3_stmt *st))
{
    int code;
    while ((code = sqlite3_step(st)) == SQLITE_ROW)
        row(r, st);
    sqlite3_finalize(st);
    return code == SQLITE_DONE ? 0 : kf_sqlite_map_error(code);
}

static void team_row(report_t *r, sqlite3_stmt *st)
{
    r->team_of = realloc(r->team_of, (r->team_of_count + 1) * 2 * sizeof(int64_t));
    if (r->team_of == NULL)
        abort();
    r->team_of[2 * r->team_of_count] = sqlite3_column_int64(st, 0);
    r->team_of[2 * r->team_of_count + 1] = sqlite3_column_int64(st, 1);
    r->team_of_count++;
}

/* A conversation of the period: created_at, first_visitor_at, first_reply_at,
 * first_reply_agent_id, resolved_at, resolved_by, assignee_id, team_id, rating (NULL: none),
 * rating_agent_id (NULLs as 0). */
static void conversation_row(report_t *r, sqlite3_stmt *st)
{
    int64_t created_at = sqlite3_column_int64(st, 0);
    int64_t first_visitor_at = sqlite3_column_int64(st, 1);
    int64_t first_reply_at = sqlite3_column_int64(st, 2);
    int64_t replier = sqlite3_column_int64(st, 3);
    int64_t resolved_at = sqlite3_column_int64(st, 4);
    int64_t resolver = sqlite3_column_int64(st, 5);
    int64_t assignee = sqlite3_column_int64(st, 6);
    int64_t team_id = sqlite3_column_int64(st, 7);
    bool replied = sqlite3_column_type(st, 2) != SQLITE_NULL;
    count(r, FIGURE_CONVERSATION, replied ? replier : assignee, created_at, team_id, 0);
    if (replied)
        count(r, FIGURE_FIRST, replier, created_at, team_id, first_reply_at - first_visitor_at);
    else if (sqlite3_column_type(st, 1) != SQLITE_NULL)
        count(r, FIGURE_UNANSWERED, assignee, created_at, team_id, 0);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL)
        count(r, FIGURE_RESOLVED, resolver, created_at, team_id, resolved_at - created_at);
    const char *rating = kf_sqlite_column_text(st, 8);
    if (rating[0] != '\0')
        count(r, strcmp(rating, "good") == 0 ? FIGURE_GOOD : FIGURE_BAD,
              sqlite3_column_int64(st, 9), created_at, team_id, 0);
}

static void add_message(kf_report_row_t *row, bool by_agent, bool is_private)
{
    if (!by_agent)
        row->visitor_messages++;
    else if (is_private)
        row->notes++;
    else
        row->agent_messages++;
}

/* A message of the period: created_at, sender, private, agent_id (0 for a visitor's),
 * conversation_id. */
static void message_row(report_t *r, sqlite3_stmt *st)
{
    int64_t created_at = sqlite3_column_int64(st, 0);
    bool by_agent = sqlite3_column_int64(st, 1) == KF_SENDER_AGENT;
    bool is_private = sqlite3_column_int64(st, 2) != 0;
    int64_t agent_id = sqlite3_column_int64(st, 3);
    int64_t team_id = 0;
    if (r->team_of != NULL || r->query->team_id != 0) {
        team_id = team_of(r, sqlite3_column_int64(st, 4));
        if (r->query->team_id != 0 && team_id != r->query->team_id)
            return;
    }
    bool counts = false;
    group_t *g = figure_group(r, agent_id, created_at, team_id, &counts);
    if (!counts)
        return;
    add_message(&r->totals.row, by_agent, is_private);
    if (g != NULL)
        add_message(&g->row, by_agent, is_private);
}

/* The names of the agents' or teams' rows, into strings the op keeps. */
static int name_groups(sqlite_store_t *s, report_t *r)
{
    if (r->query->group == KF_REPORT_DAY)
        return 0;
    sqlite3_stmt *st = NULL;
    int rc = prepare(s,
                     r->query->group == KF_REPORT_AGENT ? "SELECT name FROM agents WHERE id = ?1"
                                                        : "SELECT name FROM teams WHERE id = ?1",
                     &st);
    for (size_t i = 0; rc == 0 && i < r->group_count; i++) {
        if (r->groups[i].row.key == 0)
            continue;
        rc = kf_sqlite_bind(st, "i", r->groups[i].row.key);
        int code = rc == 0 ? sqlite3_step(st) : SQLITE_OK;
        if (code == SQLITE_ROW) {
            r->groups[i].name = strdup(kf_sqlite_column_text(st, 0));
            if (r->groups[i].name == NULL)
                abort();
            r->groups[i].row.name = r->groups[i].name;
        } else if (code != SQLITE_DONE && rc == 0) {
            rc = kf_sqlite_map_error(code);
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Whether a query's own days are ascending and cover its period. */
static bool valid_days(const kf_report_query_t *query)
{
    size_t n = query->day_count;
    if (n == 0 || n > KF_REPORT_MAX_DAYS + 1 || query->day_starts[0] > query->from ||
        query->day_starts[n - 1] >= query->to)
        return false;
    for (size_t i = 1; i < n; i++)
        if (query->day_starts[i] <= query->day_starts[i - 1])
            return false;
    return true;
}

int kf_sqlite_report(kf_store_t *store, const kf_report_query_t *query, kf_store_report_cb each,
                     kf_store_done_cb done, void *ctx)
{
    if (query == NULL || each == NULL || done == NULL || query->from >= query->to ||
        query->to - query->from > KF_REPORT_MAX_DAYS * DAY_MS ||
        query->utc_offset < -KF_REPORT_MAX_OFFSET || query->utc_offset > KF_REPORT_MAX_OFFSET ||
        query->group < KF_REPORT_DAY || query->group > KF_REPORT_TEAM || query->agent_id < 0 ||
        query->team_id < 0)
        return KF_EINVAL;
    if (query->day_starts != NULL && !valid_days(query))
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_REPORT, done, ctx);
    op->each_report = each;
    op->args.report = *query;
    if (query->day_starts != NULL) {
        op->ids = malloc(query->day_count * sizeof *op->ids);
        if (op->ids == NULL)
            abort();
        memcpy(op->ids, query->day_starts, query->day_count * sizeof *op->ids);
        op->id_count = query->day_count;
        op->args.report.day_starts = op->ids;
    }
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

/* Reads the period into r: the conversations' team map when teams matter (a walk of the table in
 * id order, which is the order the map wants: through the team index it would need a sort), the
 * conversations, the messages. */
static int read_period(sqlite_store_t *s, report_t *r)
{
    const kf_report_query_t *query = r->query;
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (query->group == KF_REPORT_TEAM || query->team_id != 0) {
        rc = prepare(s,
                     "SELECT id, team_id FROM conversations NOT INDEXED "
                     "WHERE team_id IS NOT NULL ORDER BY id",
                     &st);
        if (rc == 0)
            rc = each_row(st, r, team_row);
        if (rc == 0 && r->team_of == NULL)
            r->team_of = malloc(2 * sizeof(int64_t)); /* marks the map as read, though empty */
        if (r->team_of == NULL)
            abort();
    }
    if (rc == 0)
        rc = prepare(
            s,
            "SELECT created_at, first_visitor_at, first_reply_at, "
            "COALESCE(first_reply_agent_id, 0), resolved_at, COALESCE(resolved_by, 0), "
            "COALESCE(assignee_id, 0), COALESCE(team_id, 0), rating, "
            "COALESCE(rating_agent_id, 0) FROM conversations INDEXED BY conversations_by_created "
            "WHERE created_at >= ?1 AND created_at < ?2 AND (?3 = 0 OR team_id = ?3)",
            &st);
    if (rc == 0) {
        rc = kf_sqlite_bind(st, "iii", query->from, query->to, query->team_id);
        if (rc == 0)
            rc = each_row(st, r, conversation_row);
        else
            sqlite3_finalize(st);
    }
    if (rc == 0)
        rc = prepare(s,
                     "SELECT created_at, sender, private, COALESCE(agent_id, 0), conversation_id "
                     "FROM messages INDEXED BY messages_by_time "
                     "WHERE created_at >= ?1 AND created_at < ?2",
                     &st);
    if (rc == 0) {
        rc = kf_sqlite_bind(st, "ii", query->from, query->to);
        if (rc == 0)
            rc = each_row(st, r, message_row);
        else
            sqlite3_finalize(st);
    }
    return rc;
}

void kf_sqlite_run_report(sqlite_store_t *s, op_t *op)
{
    report_t r;
    memset(&r, 0, sizeof r);
    r.query = &op->args.report;
    r.totals.row.name = "";
    if (r.query->group == KF_REPORT_DAY) {
        const int64_t *starts = r.query->day_starts;
        int64_t first_day = day_of(r.query, r.query->from);
        r.group_count = starts != NULL
                            ? r.query->day_count
                            : (size_t)((day_of(r.query, r.query->to - 1) - first_day) / DAY_MS + 1);
        r.group_capacity = r.group_count;
        r.groups = calloc(r.group_count, sizeof *r.groups);
        if (r.groups == NULL)
            abort();
        for (size_t i = 0; i < r.group_count; i++) {
            r.groups[i].row.key = starts != NULL ? starts[i] : first_day + (int64_t)i * DAY_MS;
            r.groups[i].row.name = "";
        }
    }
    kf_store_result_t result;
    memset(&result, 0, sizeof result);
    result.rc = read_period(s, &r);
    if (result.rc == 0)
        result.rc = name_groups(s, &r);
    for (size_t i = 0; result.rc == 0 && i < r.group_count; i++) {
        group_finish(&r.groups[i]);
        result.count++;
        int stop = op->each_report(op->ctx, &r.groups[i].row);
        if (stop != 0)
            result.rc = stop;
    }
    group_finish(&r.totals);
    if (result.rc == 0)
        result.report_totals = &r.totals.row;
    op->done(op->ctx, &result);
    for (size_t i = 0; i < r.group_count; i++)
        group_free(&r.groups[i]);
    group_free(&r.totals);
    free(r.groups);
    free(r.team_of);
}
