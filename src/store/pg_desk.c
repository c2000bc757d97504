/* pg_desk.c: the PostgreSQL backend's desk and integration operations (store.h): canned replies,
 * teams, visitor details, reports, API tokens and webhooks. Each is the SQL of its SQLite twin
 * (sqlite_writer.c, sqlite_reads.c, sqlite_reports.c, sqlite_integrations.c) in PostgreSQL's
 * dialect, run where pg.c says: kf_pg_desk_read on the reader thread (its results kept in the
 * op), kf_pg_desk_deliver on the loop (rows to callbacks), kf_pg_desk_apply on the writer thread
 * inside the batch's transaction, after the write's savepoint (a failure here is undone by pg.c,
 * so a write may fail after its first change without leaving half of itself behind).
 *
 * SQLite compares and orders team names and canned shortcuts COLLATE NOCASE: ASCII letters
 * folded, then bytes. FOLD (kefu_nocase, pg_schema.c: what the unique indexes of both are
 * over) and BYTES say the same here, whatever the database's collation. */
#include "store/pg_internal.h"

#include "base/buf.h"
#include "base/err.h"

#include <stdlib.h>
#include <string.h>

#define FOLD(x) "kefu_nocase(" x ")"
#define BYTES " COLLATE \"C\""

#define DAY_MS 86400000LL
#define MINUTE_MS 60000LL

/* ---- the SQL ---- */

/* Canned writes take this transaction-scoped advisory lock before their checks: a shortcut must
 * differ from the team's and its owner's own, which no unique index can say, so two nodes
 * writing one at once must take turns (SQLite's one writer does that by itself). Writes of
 * canned replies are rare; the lock is held to the batch's commit. Its key is an arbitrary
 * constant ("kefucann" in ASCII). */
#define CANNED_LOCK "SELECT pg_advisory_xact_lock(7738704189070601838)"
#define CANNED_LIST                                                                                \
    "SELECT " KF_PG_CANNED_COLUMNS " FROM canned_replies "                                         \
    "WHERE COALESCE(owner_id, 0) IN (0, $1::bigint) ORDER BY " FOLD("shortcut") BYTES ", id"
#define CANNED_BY_ID "SELECT " KF_PG_CANNED_COLUMNS " FROM canned_replies WHERE id = $1::bigint"
#define CANNED_TAKEN                                                                               \
    "SELECT 1 FROM canned_replies WHERE COALESCE(owner_id, 0) IN (0, $2::bigint) "                 \
    "AND " FOLD("shortcut") " = " FOLD("$1::text") " AND id != $3::bigint"
#define CANNED_CREATE                                                                              \
    "INSERT INTO canned_replies (owner_id, shortcut, body, created_at, updated_at) "               \
    "VALUES ($1::bigint, $2::text, $3::text, $4::bigint, $4::bigint) RETURNING id"
#define CANNED_UPDATE                                                                              \
    "UPDATE canned_replies SET shortcut = COALESCE($2::text, shortcut), "                          \
    "body = COALESCE($3::text, body), updated_at = $4::bigint WHERE id = $1::bigint"
#define CANNED_DELETE "DELETE FROM canned_replies WHERE id = $1::bigint"

#define TEAM_LIST                                                                                  \
    "SELECT " KF_PG_TEAM_COLUMNS " FROM teams t ORDER BY " FOLD("t.name") BYTES ", t.id"
#define TEAM_BY_ID "SELECT " KF_PG_TEAM_COLUMNS " FROM teams t WHERE t.id = $1::bigint"
/* Checked before the insert or change, so that a taken name is KF_EEXISTS whatever the unique
 * index folds (it stays the guard against two nodes taking one name at once). */
#define TEAM_TAKEN                                                                                 \
    "SELECT 1 FROM teams WHERE " FOLD("name") " = " FOLD("$1::text") " AND id != $2::bigint"
#define TEAM_CREATE                                                                                \
    "INSERT INTO teams (name, auto_assign, reassign_after, created_at) VALUES ($1::text, "         \
    "COALESCE($2::text, 'off'), GREATEST($3::bigint, 0), $4::bigint) RETURNING id"
#define TEAM_UPDATE                                                                                \
    "UPDATE teams SET name = COALESCE($2::text, name), "                                           \
    "auto_assign = COALESCE($3::text, auto_assign), "                                              \
    "reassign_after = CASE WHEN $4::bigint >= 0 THEN $4::bigint ELSE reassign_after END "          \
    "WHERE id = $1::bigint"
#define TEAM_EXISTS "SELECT 1 FROM teams WHERE id = $1::bigint"
#define TEAM_MEMBERS_CLEAR "DELETE FROM team_members WHERE team_id = $1::bigint"
#define TEAM_MEMBER_ADD                                                                            \
    "INSERT INTO team_members (team_id, agent_id) VALUES ($1::bigint, $2::bigint) "                \
    "ON CONFLICT DO NOTHING"
/* Whether an agent may be made a member: 1 enabled, 0 disabled, no row for none. */
#define AGENT_ENABLED "SELECT (disabled_at IS NULL)::int FROM agents WHERE id = $1::bigint"

#define VISITOR_GET "SELECT " KF_PG_VISITOR_COLUMNS " FROM visitors WHERE id = $1::bigint"
#define VISITOR_EXISTS "SELECT 1 FROM visitors WHERE id = $1::bigint"
#define VISITOR_UPDATE                                                                             \
    "UPDATE visitors SET name = COALESCE($2::text, name), email = COALESCE($3::text, email) "      \
    "WHERE id = $1::bigint"
/* The search's index of visitors (pg_schema.c): a tsvector the writer makes (kf_pg_search_vector).
 */
#define VISITOR_SEARCH_DELETE "DELETE FROM visitor_search WHERE id = $1::bigint"
#define VISITOR_SEARCH_INSERT                                                                      \
    "INSERT INTO visitor_search (id, text) VALUES ($1::bigint, $2::text::tsvector)"
#define VISITOR_PAGES                                                                              \
    "SELECT " KF_PG_VISITOR_PAGE_COLUMNS " FROM visitor_pages WHERE visitor_id = $1::bigint "      \
    "ORDER BY id DESC LIMIT $2::bigint"
#define VISITOR_PAGE_INSERT                                                                        \
    "INSERT INTO visitor_pages (visitor_id, url, title, referrer, user_agent, language, "          \
    "timezone, utc_offset, seen_at) VALUES ($1::bigint, $2::text, $3::text, $4::text, $5::text, "  \
    "$6::text, $7::text, $8::bigint, $9::bigint) RETURNING id"
/* Keeps the newest $2 rows: deletes from the ($2 + 1)-th newest down, a range of the index. */
#define VISITOR_PAGES_TRIM                                                                         \
    "DELETE FROM visitor_pages WHERE visitor_id = $1::bigint AND id <= "                           \
    "(SELECT id FROM visitor_pages WHERE visitor_id = $1::bigint "                                 \
    "ORDER BY id DESC LIMIT 1 OFFSET $2::bigint)"
/* The visitor's conversations and those of every visitor with their e-mail (the partial index
 * visitors_by_email), newest activity first. */
#define VISITOR_CONVERSATIONS                                                                      \
    KF_PG_CONVERSATION_SELECT                                                                      \
    "WHERE c.visitor_id = $1::bigint OR c.visitor_id IN (SELECT o.id FROM visitors o "             \
    "  JOIN visitors me ON me.id = $1::bigint AND me.email != '' WHERE o.email = me.email "        \
    "  AND o.email != '') ORDER BY c.updated_at DESC, c.id DESC LIMIT $2::bigint"
/* Takes a nonce in one statement: inserted, or an expired one's row taken over; no row back
 * when an unexpired one holds it. The conflict waits for a node taking the same nonce at once,
 * so of two replays on two nodes one fails. */
#define IDENTITY_NONCE_TAKE                                                                        \
    "INSERT INTO identity_nonces (nonce, expires_at) VALUES ($1::text, $2::bigint) "               \
    "ON CONFLICT (nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at "                          \
    "WHERE identity_nonces.expires_at <= $3::bigint RETURNING 1"
#define IDENTITY_NONCE_PURGE                                                                       \
    "DELETE FROM identity_nonces WHERE expires_at <= $1::bigint AND nonce != $2::text"
#define VISITOR_BY_USER "SELECT id FROM visitors WHERE user_id = $1::text"
/* No row back when another node has just created the user's visitor (the conflict waits for
 * its commit): the caller then finds that one. */
#define VISITOR_CREATE_USER                                                                        \
    "INSERT INTO visitors (token_hash, name, created_at, email, user_id) "                         \
    "VALUES ($1::text, $2::text, $3::bigint, $4::text, $5::text) "                                 \
    "ON CONFLICT (user_id) WHERE user_id IS NOT NULL DO NOTHING RETURNING id"
#define VISITOR_TOKEN_ADD                                                                          \
    "INSERT INTO visitor_tokens (token_hash, visitor_id, created_at) "                             \
    "VALUES ($1::text, $2::bigint, $3::bigint)"

#define API_TOKEN_COLUMNS                                                                          \
    "id, name, scope, COALESCE(created_by, 0), created_at, COALESCE(last_used_at, 0)"
#define WEBHOOK_COLUMNS "id, url, events, secret, created_at"
#define DELIVERY_COLUMNS                                                                           \
    "d.id, d.webhook_id, w.url, w.secret, d.event, d.body, d.created_at, d.attempts, d.next_at"
#define ATTEMPT_COLUMNS "id, webhook_id, delivery_id, event, attempt, at, status, error, next_at"

#define API_TOKEN_CREATE                                                                           \
    "INSERT INTO api_tokens (name, scope, token_hash, created_by, created_at) "                    \
    "VALUES ($1::text, $2::text, $3::text, $4::bigint, $5::bigint) RETURNING id"
#define API_TOKEN_BY_ID "SELECT " API_TOKEN_COLUMNS " FROM api_tokens WHERE id = $1::bigint"
#define API_TOKEN_LIST "SELECT " API_TOKEN_COLUMNS " FROM api_tokens ORDER BY id"
#define API_TOKEN_BY_HASH "SELECT " API_TOKEN_COLUMNS " FROM api_tokens WHERE token_hash = $1::text"
#define API_TOKEN_DELETE "DELETE FROM api_tokens WHERE id = $1::bigint"
#define API_TOKEN_TOUCH "UPDATE api_tokens SET last_used_at = $2::bigint WHERE id = $1::bigint"
/* A webhook's events are kept as ",a,b," (as in SQLite) so that one strpos finds a name whole. */
#define WEBHOOK_CREATE                                                                             \
    "INSERT INTO webhooks (url, events, secret, created_at) "                                      \
    "VALUES ($1::text, ',' || $2::text || ',', $3::text, $4::bigint) RETURNING id"
#define WEBHOOK_BY_ID "SELECT " WEBHOOK_COLUMNS " FROM webhooks WHERE id = $1::bigint"
#define WEBHOOK_LIST "SELECT " WEBHOOK_COLUMNS " FROM webhooks ORDER BY id"
#define WEBHOOK_DELETE "DELETE FROM webhooks WHERE id = $1::bigint"
#define WEBHOOK_ENQUEUE                                                                            \
    "INSERT INTO webhook_deliveries (webhook_id, event, body, created_at, attempts, next_at) "     \
    "SELECT id, $1::text, $2::text, $3::bigint, 0, $3::bigint FROM webhooks "                      \
    "WHERE strpos(events, ',' || $1::text || ',') > 0"
#define WEBHOOK_DUE                                                                                \
    "SELECT " DELIVERY_COLUMNS                                                                     \
    " FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "                           \
    "WHERE d.next_at <= $1::bigint ORDER BY d.next_at, d.id LIMIT $2::bigint"
#define WEBHOOK_OF_DELIVERY "SELECT webhook_id FROM webhook_deliveries WHERE id = $1::bigint"
#define WEBHOOK_ATTEMPT_INSERT                                                                     \
    "INSERT INTO webhook_attempts (webhook_id, delivery_id, event, attempt, at, status, error, "   \
    "next_at) SELECT webhook_id, id, event, attempts + 1, $2::bigint, $3::bigint, $4::text, "      \
    "$5::bigint FROM webhook_deliveries WHERE id = $1::bigint"
#define WEBHOOK_DELIVERY_DONE "DELETE FROM webhook_deliveries WHERE id = $1::bigint"
#define WEBHOOK_DELIVERY_RETRY                                                                     \
    "UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = $2::bigint "                 \
    "WHERE id = $1::bigint"
/* Keeps the newest $2 of a webhook's attempts, as VISITOR_PAGES_TRIM does. */
#define WEBHOOK_ATTEMPTS_TRIM                                                                      \
    "DELETE FROM webhook_attempts WHERE webhook_id = $1::bigint AND id <= "                        \
    "(SELECT id FROM webhook_attempts WHERE webhook_id = $1::bigint "                              \
    "ORDER BY id DESC LIMIT 1 OFFSET $2::bigint)"
#define WEBHOOK_ATTEMPTS                                                                           \
    "SELECT " ATTEMPT_COLUMNS " FROM webhook_attempts WHERE webhook_id = $1::bigint "              \
    "ORDER BY id DESC LIMIT $2::bigint"

/* ---- reads (the reader thread) ---- */

/* Keeps a read's result for deliver (or its failure's code). */
static void keep(op_t *op, int rc, PGresult *res)
{
    kf_pg_read_t *read = op->pg_read;
    if (rc != 0) {
        if (read->rc == 0)
            read->rc = rc;
        return;
    }
    if (read->count < KF_PG_READ_RESULTS)
        read->res[read->count++] = res;
    else
        PQclear(res);
}

/* The UTC ms of the local midnight that starts the day time falls in (sqlite_reports.c's). */
static int64_t day_of(const kf_report_query_t *query, int64_t time)
{
    int64_t shift = query->utc_offset * MINUTE_MS;
    int64_t local = time + shift;
    int64_t day = local / DAY_MS;
    if (local % DAY_MS < 0)
        day--;
    return day * DAY_MS - shift;
}

/* The starts of a report's days (KF_REPORT_DAY): the query's own, or every local midnight at its
 * offset from the one before from to the last before to. A new array for the caller to free. */
static int64_t *day_starts(const kf_report_query_t *query, size_t *count)
{
    if (query->day_starts != NULL) {
        *count = query->day_count;
    } else {
        int64_t first = day_of(query, query->from);
        *count = (size_t)((day_of(query, query->to - 1) - first) / DAY_MS + 1);
    }
    int64_t *starts = malloc(*count * sizeof *starts);
    if (starts == NULL)
        abort();
    for (size_t i = 0; i < *count; i++)
        starts[i] = query->day_starts != NULL ? query->day_starts[i]
                                              : day_of(query, query->from) + (int64_t)i * DAY_MS;
    return starts;
}

/* A report, summed in the database: one range of conversations_by_created and one of
 * messages_by_time (migration "reports", the indexes sqlite_reports.c reads), grouped by key and
 * rolled up into the totals (key -1), so that a row per group crosses the wire however many
 * messages the period holds. Every row has the same columns (REPORT_KIND ...); a branch fills
 * the figures it sums and leaves 0 in the other counts and -1 in the other percentiles, and the
 * loop adds up a group's rows (add_report_row). Percentiles are nearest-rank: the sorted
 * durations' value at rank ceil(p * n / 100), in integers.
 *
 * The conversations' figures: kf_report_row_t says whose each is (the first reply's, the
 * resolver's, the assignee's, the rater's agent). When that does not matter (per day or team,
 * no agent_id), one pass over the period's conversations sums them all; else one pass per
 * figure over the period's conversations, read once (c), each keyed and filtered by its own
 * agent. One pass is 5 to 8 times cheaper than making a row per figure and grouping those.
 * The text is made per query: the key (a day's number, 1 for the first of $5; an agent; a
 * team) and the messages' source (with their conversation's team when teams matter) differ. */
#define REPORT_CONVERSATIONS                                                                       \
    "SELECT created_at AS at, first_visitor_at AS fv, first_reply_at AS fr, resolved_at AS ra, "   \
    "COALESCE(rating, '') AS rating, COALESCE(first_reply_agent_id, 0) AS replier, "               \
    "COALESCE(resolved_by, 0) AS resolver, COALESCE(assignee_id, 0) AS assignee, "                 \
    "COALESCE(rating_agent_id, 0) AS rater, COALESCE(team_id, 0) AS team FROM conversations "      \
    "WHERE created_at >= $1::bigint AND created_at < $2::bigint "                                  \
    "AND ($3::bigint = 0 OR team_id = $3::bigint)"
#define REPORT_PERCENTILES(value, present, count)                                                  \
    "COALESCE((array_agg(" value " ORDER BY " value ") FILTER (WHERE " present "))"                \
    "[(50 * " count " + 99) / 100], -1), "                                                         \
    "COALESCE((array_agg(" value " ORDER BY " value ") FILTER (WHERE " present "))"                \
    "[(90 * " count " + 99) / 100], -1)"
#define REPORT_FIRST_PERCENTILES REPORT_PERCENTILES("fr - fv", "fr IS NOT NULL", "count(fr)")
#define REPORT_RESOLUTION_PERCENTILES REPORT_PERCENTILES("ra - at", "ra IS NOT NULL", "count(ra)")
#define REPORT_UNANSWERED_SUM "count(*) FILTER (WHERE fr IS NULL AND fv IS NOT NULL)"
#define REPORT_GOOD_BAD                                                                            \
    "count(*) FILTER (WHERE rating = 'good'), count(*) FILTER (WHERE rating NOT IN ('', 'good'))"
/* The columns after the key: conversations, answered and its percentiles, resolved and its,
 * unanswered, rated good, rated bad, visitor messages, agent messages, notes. */
#define REPORT_CONVERSATION_COUNT "count(*), 0, -1, -1, 0, -1, -1, 0, 0, 0, 0, 0, 0"
#define REPORT_FIRST_RESPONSES                                                                     \
    "0, count(fr), " REPORT_FIRST_PERCENTILES ", 0, -1, -1, 0, 0, 0, 0, 0, 0"
#define REPORT_RESOLUTIONS                                                                         \
    "0, 0, -1, -1, count(ra), " REPORT_RESOLUTION_PERCENTILES ", 0, 0, 0, 0, 0, 0"
#define REPORT_UNANSWERED_COUNT "0, 0, -1, -1, 0, -1, -1, " REPORT_UNANSWERED_SUM ", 0, 0, 0, 0, 0"
#define REPORT_RATINGS "0, 0, -1, -1, 0, -1, -1, 0, " REPORT_GOOD_BAD ", 0, 0, 0"
#define REPORT_ALL_FIGURES                                                                         \
    "count(*), count(fr), " REPORT_FIRST_PERCENTILES ", count(ra), "                               \
    "" REPORT_RESOLUTION_PERCENTILES ", " REPORT_UNANSWERED_SUM ", " REPORT_GOOD_BAD ", 0, 0, 0"
#define REPORT_MESSAGE_COUNTS                                                                      \
    "0, 0, -1, -1, 0, -1, -1, 0, 0, 0, count(*) FILTER (WHERE sender = 0), "                       \
    "count(*) FILTER (WHERE sender = 1 AND private = 0), "                                         \
    "count(*) FILTER (WHERE sender = 1 AND private != 0)"
/* The period's messages: alone, or with their conversation's team now when teams matter (a join
 * the planner makes a hash of the conversations). */
#define REPORT_MESSAGES                                                                            \
    "SELECT created_at AS at, sender, private, COALESCE(agent_id, 0) AS agent, 0 AS team "         \
    "FROM messages WHERE created_at >= $1::bigint AND created_at < $2::bigint"
#define REPORT_MESSAGES_TEAMS                                                                      \
    "SELECT m.created_at AS at, m.sender, m.private, COALESCE(m.agent_id, 0) AS agent, "           \
    "COALESCE(x.team_id, 0) AS team FROM messages m JOIN conversations x "                         \
    "ON x.id = m.conversation_id WHERE m.created_at >= $1::bigint AND m.created_at < $2::bigint "  \
    "AND ($3::bigint = 0 OR x.team_id = $3::bigint)"
/* Per day, the messages are counted a day at a time, each day a range of messages_by_time with
 * nothing to group: 0.6 times the cost of grouping each message by its day (measured on a month
 * of 333,000). Kind 2: the row counts into the totals too (there is no rolled-up row). */
#define REPORT_MESSAGES_PER_DAY                                                                    \
    "SELECT 2, d.i, 0, 0, -1, -1, 0, -1, -1, 0, 0, 0, m.v, m.a, m.n, '' FROM (SELECT start, i, "   \
    "lead(start) OVER (ORDER BY i) AS stop FROM unnest($5::bigint[]) WITH ORDINALITY u (start, "   \
    "i)) d CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE sender = 0) AS v, "                   \
    "count(*) FILTER (WHERE sender = 1 AND private = 0) AS a, "                                    \
    "count(*) FILTER (WHERE sender = 1 AND private != 0) AS n FROM messages "                      \
    "WHERE created_at >= GREATEST(d.start, $1::bigint) AND created_at < LEAST(d.stop, $2::bigint)"
/* Settings that last as long as the report's transaction: no JIT (compiling it cost 30 ms of a
 * month's 200 measured), the memory to sort a year's durations without spilling them, and a plan
 * made for this period's values each time (pg.c prepares statements: a generic plan would
 * guess the period's rows, and a month and a year want different plans). */
#define REPORT_SETTINGS                                                                            \
    "SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true), "                \
    "set_config('plan_cache_mode', 'force_custom_plan', true)"

/* The columns of the report's rows. */
enum {
    COL_KIND,
    COL_KEY,
    COL_CONVERSATIONS,
    COL_ANSWERED,
    COL_FIRST_MEDIAN,
    COL_FIRST_P90,
    COL_RESOLVED,
    COL_RESOLUTION_MEDIAN,
    COL_RESOLUTION_P90,
    COL_UNANSWERED,
    COL_GOOD,
    COL_BAD,
    COL_VISITOR_MESSAGES,
    COL_AGENT_MESSAGES,
    COL_NOTES,
    COL_NAME,
};

/* Where no agent is asked for: still $4, which PostgreSQL must see to type it. */
#define REPORT_ANY_AGENT "$4::bigint = 0"

/* Appends one branch: columns summed over source (rows with at, team and agent columns) where
 * present holds and the agent is $4's (when one is asked for), grouped by key and rolled up. */
static void append_branch(kf_buf_t *sql, const kf_report_query_t *query, int kind, const char *key,
                          const char *name, const char *columns, const char *source,
                          const char *agent, const char *present)
{
    if (sql->len > 0)
        kf_buf_append_str(sql, " UNION ALL ");
    kf_buf_printf(sql,
                  "SELECT %d, CASE WHEN GROUPING(k) = 1 THEN -1 ELSE k END, %s, %s "
                  "FROM (SELECT %s AS k, * FROM (%s) s WHERE %s%s%s) g GROUP BY ROLLUP (k)",
                  kind, columns, name, key, source, present, " AND ",
                  query->agent_id > 0 ? agent : REPORT_ANY_AGENT);
}

/* A conversations' figure's branch over c: keyed by its agent per agent, else by key. */
static void append_figure(kf_buf_t *sql, const kf_report_query_t *query, const char *key,
                          const char *name, const char *columns, const char *agent,
                          const char *present)
{
    char filter[128];
    snprintf(filter, sizeof filter, "%s = $4::bigint", agent);
    append_branch(sql, query, 0, query->group == KF_REPORT_AGENT ? agent : key, name, columns,
                  "SELECT * FROM c", filter, present);
}

/* The report's SQL for query; $5 (the days' starts) is used per day only. */
static void report_sql(kf_buf_t *sql, const kf_report_query_t *query)
{
    const char *key = "team";
    const char *name = "(SELECT name FROM teams WHERE id = k)";
    if (query->group == KF_REPORT_DAY) {
        key = "width_bucket(at, $5::bigint[])";
        name = "''";
    } else if (query->group == KF_REPORT_AGENT) {
        key = "agent";
        name = "(SELECT name FROM agents WHERE id = k)";
    }
    kf_buf_t branches;
    kf_buf_init(&branches);
    bool by_agent = query->group == KF_REPORT_AGENT || query->agent_id > 0;
    if (!by_agent) {
        append_branch(&branches, query, 0, key, name, REPORT_ALL_FIGURES, REPORT_CONVERSATIONS, "",
                      "true");
    } else {
        append_figure(&branches, query, key, name, REPORT_CONVERSATION_COUNT,
                      "CASE WHEN fr IS NULL THEN assignee ELSE replier END", "true");
        append_figure(&branches, query, key, name, REPORT_FIRST_RESPONSES, "replier",
                      "fr IS NOT NULL");
        append_figure(&branches, query, key, name, REPORT_RESOLUTIONS, "resolver",
                      "ra IS NOT NULL");
        append_figure(&branches, query, key, name, REPORT_UNANSWERED_COUNT, "assignee",
                      "fr IS NULL AND fv IS NOT NULL");
        append_figure(&branches, query, key, name, REPORT_RATINGS, "rater", "rating != ''");
    }
    bool teams = query->group == KF_REPORT_TEAM || query->team_id != 0;
    if (query->group == KF_REPORT_DAY && !teams) {
        kf_buf_printf(&branches, " UNION ALL " REPORT_MESSAGES_PER_DAY " AND %s) m",
                      query->agent_id > 0 ? "COALESCE(agent_id, 0) = $4::bigint"
                                          : REPORT_ANY_AGENT);
    } else {
        append_branch(&branches, query, 1, key, name, REPORT_MESSAGE_COUNTS,
                      teams ? REPORT_MESSAGES_TEAMS : REPORT_MESSAGES, "agent = $4::bigint",
                      "true");
    }
    if (by_agent)
        kf_buf_append_str(sql, "WITH c AS MATERIALIZED (" REPORT_CONVERSATIONS ") ");
    kf_buf_append(sql, branches.data, branches.len);
    kf_buf_append(sql, "", 1);
    kf_buf_free(&branches);
}

static void read_report(PGconn *c, op_t *op)
{
    const kf_report_query_t *query = &op->args.report;
    kf_buf_t days;
    kf_buf_init(&days);
    if (query->group == KF_REPORT_DAY) {
        size_t count = 0;
        int64_t *starts = day_starts(query, &count);
        kf_buf_append_str(&days, "{");
        for (size_t i = 0; i < count; i++)
            kf_buf_printf(&days, "%s%lld", i > 0 ? "," : "", (long long)starts[i]);
        kf_buf_append_str(&days, "}");
        free(starts);
    }
    kf_buf_append(&days, "", 1);
    kf_buf_t sql;
    kf_buf_init(&sql);
    report_sql(&sql, query);
    /* In a transaction of its own, for REPORT_SETTINGS. */
    PGresult *res = NULL;
    int rc = kf_pg_run(c, NULL, "BEGIN READ ONLY", "");
    if (rc == 0)
        rc = kf_pg_run(c, NULL, REPORT_SETTINGS, "");
    /* $5 only per day: PostgreSQL refuses a parameter the text does not use. */
    if (rc == 0)
        rc = kf_pg_exec(c, &res, sql.data, query->group == KF_REPORT_DAY ? "iiiit" : "iiii",
                        query->from, query->to, query->team_id, query->agent_id, days.data);
    int end_rc = kf_pg_run(c, NULL, rc == 0 ? "COMMIT" : "ROLLBACK", "");
    if (rc == 0 && end_rc != 0) {
        PQclear(res);
        rc = end_rc;
    }
    keep(op, rc, res);
    kf_buf_free(&sql);
    kf_buf_free(&days);
}

bool kf_pg_desk_read(PGconn *c, op_t *op)
{
    PGresult *res = NULL;
    int rc;
    switch (op->kind) {
    case OP_CANNED_LIST:
        rc = kf_pg_exec(c, &res, CANNED_LIST, "i", op->args.canned.agent_id);
        break;
    case OP_TEAM_LIST: rc = kf_pg_exec(c, &res, TEAM_LIST, ""); break;
    case OP_VISITOR_GET: rc = kf_pg_exec(c, &res, VISITOR_GET, "i", op->args.id); break;
    case OP_VISITOR_PAGES:
        rc = kf_pg_exec(c, &res, VISITOR_PAGES, "in", op->args.visitor_change.id,
                        op->args.visitor_change.limit);
        break;
    case OP_VISITOR_CONVERSATIONS:
        rc = kf_pg_exec(c, &res, VISITOR_CONVERSATIONS, "in", op->args.visitor_change.id,
                        op->args.visitor_change.limit);
        break;
    case OP_REPORT: read_report(c, op); return true;
    case OP_API_TOKEN_LIST: rc = kf_pg_exec(c, &res, API_TOKEN_LIST, ""); break;
    case OP_API_TOKEN_BY_HASH:
        rc = kf_pg_exec(c, &res, API_TOKEN_BY_HASH, "t", op->args.integration.hash);
        break;
    case OP_WEBHOOK_LIST: rc = kf_pg_exec(c, &res, WEBHOOK_LIST, ""); break;
    case OP_WEBHOOK_DUE:
        rc = kf_pg_exec(c, &res, WEBHOOK_DUE, "in", op->args.integration.now,
                        op->args.integration.limit);
        break;
    case OP_WEBHOOK_ATTEMPTS:
        rc = kf_pg_exec(c, &res, WEBHOOK_ATTEMPTS, "in", op->args.integration.id,
                        op->args.integration.limit);
        break;
    default: return false;
    }
    keep(op, rc, res);
    return true;
}

/* ---- rows (the loop thread, or the writer's for a write's read-back) ---- */

static void read_api_token(const PGresult *res, int row, kf_api_token_t *token)
{
    token->id = kf_pg_int(res, row, 0);
    token->name = kf_pg_text(res, row, 1);
    token->scope = kf_pg_text(res, row, 2);
    token->created_by = kf_pg_int(res, row, 3);
    token->created_at = kf_pg_int(res, row, 4);
    token->last_used_at = kf_pg_int(res, row, 5);
}

/* Enough for every event name there is, many times over. */
#define EVENTS_MAX 1024

/* The events as callers gave them: without the commas around (WEBHOOK_CREATE). Points into
 * buffer, which holds the text cut short when it is longer. */
static const char *read_events(const PGresult *res, int row, int column, char *buffer, size_t size)
{
    const char *events = kf_pg_text(res, row, column);
    size_t len = strlen(events);
    if (len >= 2 && events[0] == ',' && events[len - 1] == ',') {
        events++;
        len -= 2;
    }
    if (len >= size)
        len = size - 1;
    memcpy(buffer, events, len);
    buffer[len] = '\0';
    return buffer;
}

static void read_webhook(const PGresult *res, int row, kf_webhook_t *webhook,
                         char events[EVENTS_MAX])
{
    webhook->id = kf_pg_int(res, row, 0);
    webhook->url = kf_pg_text(res, row, 1);
    webhook->events = read_events(res, row, 2, events, EVENTS_MAX);
    webhook->secret = kf_pg_text(res, row, 3);
    webhook->created_at = kf_pg_int(res, row, 4);
}

static void read_delivery(const PGresult *res, int row, kf_webhook_delivery_t *delivery)
{
    delivery->id = kf_pg_int(res, row, 0);
    delivery->webhook_id = kf_pg_int(res, row, 1);
    delivery->url = kf_pg_text(res, row, 2);
    delivery->secret = kf_pg_text(res, row, 3);
    delivery->event = kf_pg_text(res, row, 4);
    delivery->body = kf_pg_text(res, row, 5);
    delivery->created_at = kf_pg_int(res, row, 6);
    delivery->attempts = kf_pg_int(res, row, 7);
    delivery->next_at = kf_pg_int(res, row, 8);
}

static void read_attempt(const PGresult *res, int row, kf_webhook_attempt_t *attempt)
{
    attempt->id = kf_pg_int(res, row, 0);
    attempt->webhook_id = kf_pg_int(res, row, 1);
    attempt->delivery_id = kf_pg_int(res, row, 2);
    attempt->event = kf_pg_text(res, row, 3);
    attempt->attempt = kf_pg_int(res, row, 4);
    attempt->at = kf_pg_int(res, row, 5);
    attempt->status = kf_pg_int(res, row, 6);
    attempt->error = kf_pg_text(res, row, 7);
    attempt->next_at = kf_pg_int(res, row, 8);
}

/* Hands row of a list's result to op's each callback; its return stops the list. */
static int each_row(const op_t *op, const PGresult *res, int row, int64_t **member_ids)
{
    switch (op->kind) {
    case OP_CANNED_LIST: {
        kf_canned_t canned;
        kf_pg_read_canned(res, row, &canned);
        return op->each_canned(op->ctx, &canned);
    }
    case OP_TEAM_LIST: {
        kf_team_t team;
        kf_pg_read_team(res, row, &team, member_ids);
        return op->each_team(op->ctx, &team);
    }
    case OP_VISITOR_PAGES: {
        kf_visitor_page_t page;
        kf_pg_read_visitor_page(res, row, &page);
        return op->each_page(op->ctx, &page);
    }
    case OP_VISITOR_CONVERSATIONS: {
        kf_conversation_t conversation;
        kf_pg_read_conversation(res, row, &conversation);
        return op->each_conversation(op->ctx, &conversation);
    }
    case OP_API_TOKEN_LIST: {
        kf_api_token_t token;
        read_api_token(res, row, &token);
        return op->each_api_token(op->ctx, &token);
    }
    case OP_WEBHOOK_LIST: {
        kf_webhook_t webhook;
        char events[EVENTS_MAX];
        read_webhook(res, row, &webhook, events);
        return op->each_webhook(op->ctx, &webhook);
    }
    case OP_WEBHOOK_DUE: {
        kf_webhook_delivery_t delivery;
        read_delivery(res, row, &delivery);
        return op->each_delivery(op->ctx, &delivery);
    }
    default: {
        kf_webhook_attempt_t attempt;
        read_attempt(res, row, &attempt);
        return op->each_attempt(op->ctx, &attempt);
    }
    }
}

/* ---- the report's rows (the loop thread) ---- */

/* The groups of a report being put together from its rows. */
typedef struct report_groups {
    kf_report_row_t *rows; /* by key, ascending */
    size_t count;
    size_t capacity;
} report_groups_t;

/* The group with key, added (zeroed, percentiles -1) when absent. */
static kf_report_row_t *group_at(report_groups_t *g, int64_t key)
{
    size_t low = 0;
    size_t high = g->count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (g->rows[middle].key < key)
            low = middle + 1;
        else
            high = middle;
    }
    if (low < g->count && g->rows[low].key == key)
        return &g->rows[low];
    if (g->count == g->capacity) {
        g->capacity = g->capacity == 0 ? 16 : g->capacity * 2;
        g->rows = realloc(g->rows, g->capacity * sizeof *g->rows);
        if (g->rows == NULL)
            abort();
    }
    memmove(&g->rows[low + 1], &g->rows[low], (g->count - low) * sizeof *g->rows);
    g->count++;
    g->rows[low] = (kf_report_row_t){.key = key,
                                     .name = "",
                                     .first_response_median = -1,
                                     .first_response_p90 = -1,
                                     .resolution_median = -1,
                                     .resolution_p90 = -1};
    return &g->rows[low];
}

/* Sets a percentile from a row that has it (-1: this row's branch sums other figures). */
static void set_percentile(int64_t *into, const PGresult *res, int r, int column)
{
    int64_t value = kf_pg_int(res, r, column);
    if (value != -1)
        *into = value;
}

/* Adds one of the report's rows into row: its counts, and the percentiles its branch has. */
static void add_report_row(kf_report_row_t *row, const PGresult *res, int r)
{
    row->conversations += kf_pg_int(res, r, COL_CONVERSATIONS);
    row->answered += kf_pg_int(res, r, COL_ANSWERED);
    set_percentile(&row->first_response_median, res, r, COL_FIRST_MEDIAN);
    set_percentile(&row->first_response_p90, res, r, COL_FIRST_P90);
    row->resolved += kf_pg_int(res, r, COL_RESOLVED);
    set_percentile(&row->resolution_median, res, r, COL_RESOLUTION_MEDIAN);
    set_percentile(&row->resolution_p90, res, r, COL_RESOLUTION_P90);
    row->unanswered += kf_pg_int(res, r, COL_UNANSWERED);
    row->rated_good += kf_pg_int(res, r, COL_GOOD);
    row->rated_bad += kf_pg_int(res, r, COL_BAD);
    row->visitor_messages += kf_pg_int(res, r, COL_VISITOR_MESSAGES);
    row->agent_messages += kf_pg_int(res, r, COL_AGENT_MESSAGES);
    row->notes += kf_pg_int(res, r, COL_NOTES);
    if (!kf_pg_null(res, r, COL_NAME))
        row->name = kf_pg_text(res, r, COL_NAME);
}

/* The report's groups and totals from its result, then each and done, as
 * kf_sqlite_run_report hands them: every day per day (the empty ones too); per agent, the
 * agents with a figure (what is nobody's counts in the totals only); per team, the teams and
 * "no team" (key 0). */
static void deliver_report(op_t *op, const PGresult *res, kf_store_result_t *result)
{
    const kf_report_query_t *query = &op->args.report;
    report_groups_t groups = {0};
    kf_report_row_t totals = {.name = "",
                              .first_response_median = -1,
                              .first_response_p90 = -1,
                              .resolution_median = -1,
                              .resolution_p90 = -1};
    size_t day_count = 0;
    int64_t *starts = NULL;
    if (query->group == KF_REPORT_DAY) {
        starts = day_starts(query, &day_count);
        for (size_t i = 0; i < day_count; i++)
            group_at(&groups, (int64_t)i + 1);
    }
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t key = kf_pg_int(res, r, COL_KEY);
        if (key == -1) {
            add_report_row(&totals, res, r);
            continue;
        }
        if (query->group == KF_REPORT_AGENT && key == 0)
            continue;
        if (query->group == KF_REPORT_DAY && (key < 1 || (size_t)key > day_count))
            continue; /* before the first day or after the last: none, from the query's range */
        add_report_row(group_at(&groups, key), res, r);
        if (kf_pg_int(res, r, COL_KIND) == 2)
            add_report_row(&totals, res, r);
    }
    for (size_t i = 0; i < groups.count; i++) {
        if (query->group == KF_REPORT_DAY)
            groups.rows[i].key = starts[i];
        result->count++;
        int stop = op->each_report(op->ctx, &groups.rows[i]);
        if (stop != 0) {
            result->rc = stop;
            break;
        }
    }
    if (result->rc == 0)
        result->report_totals = &totals;
    op->done(op->ctx, result);
    free(groups.rows);
    free(starts);
}

bool kf_pg_desk_deliver(op_t *op)
{
    switch (op->kind) {
    case OP_CANNED_LIST:
    case OP_TEAM_LIST:
    case OP_VISITOR_GET:
    case OP_VISITOR_PAGES:
    case OP_VISITOR_CONVERSATIONS:
    case OP_REPORT:
    case OP_API_TOKEN_LIST:
    case OP_API_TOKEN_BY_HASH:
    case OP_WEBHOOK_LIST:
    case OP_WEBHOOK_DUE:
    case OP_WEBHOOK_ATTEMPTS: break;
    default: return false;
    }
    kf_store_result_t result;
    memset(&result, 0, sizeof result);
    const kf_pg_read_t *read = op->pg_read;
    result.rc = read->rc;
    const PGresult *res = read->count > 0 ? read->res[0] : NULL;
    if (result.rc == 0 && res == NULL)
        result.rc = KF_ESTORE;
    if (result.rc != 0) {
        op->done(op->ctx, &result);
        return true;
    }
    if (op->kind == OP_REPORT) {
        deliver_report(op, res, &result);
        return true;
    }
    kf_visitor_t visitor;
    kf_api_token_t token;
    if (op->kind == OP_VISITOR_GET || op->kind == OP_API_TOKEN_BY_HASH) {
        if (PQntuples(res) == 0) {
            result.rc = KF_ENOTFOUND;
        } else if (op->kind == OP_VISITOR_GET) {
            kf_pg_read_visitor(res, 0, &visitor);
            result.visitor = &visitor;
        } else {
            read_api_token(res, 0, &token);
            result.api_token = &token;
        }
        op->done(op->ctx, &result);
        return true;
    }
    int64_t *member_ids = NULL;
    for (int row = 0; row < PQntuples(res); row++) {
        result.count++;
        result.rc = each_row(op, res, row, &member_ids);
        if (result.rc != 0)
            break;
    }
    op->done(op->ctx, &result);
    free(member_ids);
    return true;
}

/* ---- writes (the writer thread, inside the batch's transaction) ---- */

/* kf_pg_one's answer as whether a row is there: 0 (*found), or a failure's code. */
static int exists(PGconn *c, bool *found, const char *sql, int64_t id)
{
    int64_t value = 0;
    int rc = kf_pg_one(c, &value, sql, "i", id);
    *found = rc == 0;
    return rc == KF_ENOTFOUND ? 0 : rc;
}

/* The team's row as it is now, into the op's result (its strings kept in the op, its members in
 * op->ids). */
static int read_back_team(PGconn *c, op_t *op, int64_t id)
{
    PGresult *res = NULL;
    int rc = kf_pg_exec(c, &res, TEAM_BY_ID, "i", id);
    if (rc == 0 && PQntuples(res) == 0)
        rc = KF_ENOTFOUND;
    if (rc == 0) {
        kf_team_t *team = &op->team;
        kf_pg_read_team(res, 0, team, &op->ids);
        team->name = kf_pg_op_keep(op, team->name);
        team->auto_assign = kf_pg_op_keep(op, team->auto_assign);
        team->member_ids = op->ids;
        op->id_count = team->member_count;
        op->result.team = team;
    }
    PQclear(res);
    return rc;
}

/* Whether name is free for a team other than except_id: 0 or KF_EEXISTS. */
static int check_team_name(PGconn *c, const char *name, int64_t except_id)
{
    if (name == NULL)
        return 0;
    int64_t taken = 0;
    int rc = kf_pg_one(c, &taken, TEAM_TAKEN, "ti", name, except_id);
    return rc == 0 ? KF_EEXISTS : rc == KF_ENOTFOUND ? 0 : rc;
}

static int apply_team_create(PGconn *c, op_t *op)
{
    const kf_team_change_t *t = &op->args.team.change;
    int rc = check_team_name(c, t->name, 0);
    int64_t id = 0;
    if (rc == 0)
        rc = kf_pg_one(c, &id, TEAM_CREATE, "tTii", t->name, t->auto_assign, t->reassign_after,
                       op->args.team.now);
    return rc != 0 ? rc : read_back_team(c, op, id);
}

static int apply_team_update(PGconn *c, op_t *op)
{
    const kf_team_change_t *t = &op->args.team.change;
    int64_t id = op->args.team.id;
    int rc = check_team_name(c, t->name, id);
    int64_t changed = 0;
    if (rc == 0)
        rc = kf_pg_run(c, &changed, TEAM_UPDATE, "iTTi", id, t->name, t->auto_assign,
                       t->reassign_after);
    if (rc == 0 && changed == 0)
        rc = KF_ENOTFOUND;
    return rc != 0 ? rc : read_back_team(c, op, id);
}

/* The checks first (the team, each agent enabled), then the members replaced, read back. */
static int apply_team_set_members(PGconn *c, op_t *op)
{
    int64_t id = op->args.team.id;
    bool found = false;
    int rc = exists(c, &found, TEAM_EXISTS, id);
    if (rc == 0 && !found)
        rc = KF_ENOTFOUND;
    for (size_t i = 0; rc == 0 && i < op->id_count; i++) {
        int64_t enabled = 0;
        rc = kf_pg_one(c, &enabled, AGENT_ENABLED, "i", op->ids[i]);
        if (rc == KF_ENOTFOUND || (rc == 0 && enabled == 0))
            rc = KF_EINVAL;
    }
    if (rc == 0)
        rc = kf_pg_run(c, NULL, TEAM_MEMBERS_CLEAR, "i", id);
    for (size_t i = 0; rc == 0 && i < op->id_count; i++)
        rc = kf_pg_run(c, NULL, TEAM_MEMBER_ADD, "ii", id, op->ids[i]);
    return rc != 0 ? rc : read_back_team(c, op, id);
}

/* Whether shortcut is free for agent_id: different from every team reply's and agent_id's own
 * (ASCII case ignored), but the reply except_id's. 0 or KF_EEXISTS. */
static int check_shortcut_free(PGconn *c, const char *shortcut, int64_t agent_id, int64_t except_id)
{
    int64_t taken = 0;
    int rc = kf_pg_one(c, &taken, CANNED_TAKEN, "tii", shortcut, agent_id, except_id);
    return rc == 0 ? KF_EEXISTS : rc == KF_ENOTFOUND ? 0 : rc;
}

/* The reply's row as it is now, into the op's result (its strings kept in the op). */
static int read_back_canned(PGconn *c, op_t *op, int64_t id)
{
    PGresult *res = NULL;
    int rc = kf_pg_exec(c, &res, CANNED_BY_ID, "i", id);
    if (rc == 0 && PQntuples(res) == 0)
        rc = KF_ENOTFOUND;
    if (rc == 0) {
        kf_canned_t *canned = &op->canned;
        kf_pg_read_canned(res, 0, canned);
        canned->shortcut = kf_pg_op_keep(op, canned->shortcut);
        canned->body = kf_pg_op_keep(op, canned->body);
        op->result.canned = canned;
    }
    PQclear(res);
    return rc;
}

/* Whether the op's agent may change reply id: 0, KF_ENOTFOUND for an unknown one or another
 * agent's personal one (which must look absent), KF_EFORBIDDEN for a team one without admin. */
static int check_canned_access(PGconn *c, op_t *op)
{
    PGresult *res = NULL;
    int rc = kf_pg_exec(c, &res, CANNED_BY_ID, "i", op->args.canned.id);
    if (rc == 0 && PQntuples(res) == 0)
        rc = KF_ENOTFOUND;
    if (rc == 0) {
        int64_t owner_id = kf_pg_int(res, 0, 1);
        if (owner_id != 0 && owner_id != op->args.canned.agent_id)
            rc = KF_ENOTFOUND;
        else if (owner_id == 0 && !op->args.canned.admin)
            rc = KF_EFORBIDDEN;
    }
    PQclear(res);
    return rc;
}

static int apply_canned_create(PGconn *c, op_t *op)
{
    int64_t agent_id = op->args.canned.agent_id;
    int rc = kf_pg_run(c, NULL, CANNED_LOCK, "");
    if (rc == 0)
        rc = check_shortcut_free(c, op->args.canned.shortcut, agent_id, 0);
    int64_t id = 0;
    if (rc == 0)
        rc = kf_pg_one(c, &id, CANNED_CREATE, "Itti", op->args.canned.team ? 0 : agent_id,
                       op->args.canned.shortcut, op->args.canned.body, op->args.canned.now);
    return rc != 0 ? rc : read_back_canned(c, op, id);
}

static int apply_canned_update(PGconn *c, op_t *op)
{
    int64_t id = op->args.canned.id;
    int rc = kf_pg_run(c, NULL, CANNED_LOCK, "");
    if (rc == 0)
        rc = check_canned_access(c, op);
    if (rc == 0 && op->args.canned.shortcut != NULL)
        rc = check_shortcut_free(c, op->args.canned.shortcut, op->args.canned.agent_id, id);
    if (rc == 0)
        rc = kf_pg_run(c, NULL, CANNED_UPDATE, "iTTi", id, op->args.canned.shortcut,
                       op->args.canned.body, op->args.canned.now);
    return rc != 0 ? rc : read_back_canned(c, op, id);
}

static int apply_canned_delete(PGconn *c, op_t *op)
{
    int rc = check_canned_access(c, op);
    int64_t changed = 0;
    if (rc == 0)
        rc = kf_pg_run(c, &changed, CANNED_DELETE, "i", op->args.canned.id);
    return rc == 0 && changed == 0 ? KF_ENOTFOUND : rc;
}

/* The visitor's row as it is now, as the op's result (its strings kept with the op). */
static int read_back_visitor(PGconn *c, op_t *op, int64_t id)
{
    PGresult *res = NULL;
    int rc = kf_pg_exec(c, &res, VISITOR_GET, "i", id);
    if (rc == 0 && PQntuples(res) == 0)
        rc = KF_ENOTFOUND;
    if (rc == 0) {
        kf_pg_read_visitor(res, 0, &op->visitor);
        op->visitor.name = kf_pg_op_keep(op, op->visitor.name);
        op->visitor.email = kf_pg_op_keep(op, op->visitor.email);
        op->visitor.user_id = kf_pg_op_keep(op, op->visitor.user_id);
        op->result.visitor = &op->visitor;
    }
    PQclear(res);
    return rc;
}

/* Feeds the search's index the visitor's name and e-mail as they are now (op->visitor, read
 * back): the old entry out, the new one in; none for a visitor with neither, as
 * KF_SQLITE_VISITOR_SEARCH_TEXT leaves them out. */
static int reindex_visitor(PGconn *c, const op_t *op)
{
    const kf_visitor_t *v = &op->visitor;
    int rc = kf_pg_run(c, NULL, VISITOR_SEARCH_DELETE, "i", v->id);
    if (rc != 0 || (v->name[0] == '\0' && v->email[0] == '\0'))
        return rc;
    char *text = kf_pg_visitor_search_text(v->name, v->email);
    char *vector = kf_pg_search_vector(text);
    rc = kf_pg_run(c, NULL, VISITOR_SEARCH_INSERT, "it", v->id, vector);
    free(vector);
    free(text);
    return rc;
}

/* The change, the row read back, the search's index of it fed again. */
static int apply_visitor_update(PGconn *c, op_t *op)
{
    int64_t id = op->args.visitor_change.id;
    int64_t changed = 0;
    int rc = kf_pg_run(c, &changed, VISITOR_UPDATE, "iTT", id, op->args.visitor_change.name,
                       op->args.visitor_change.email);
    if (rc == 0 && changed == 0)
        rc = KF_ENOTFOUND;
    if (rc == 0)
        rc = read_back_visitor(c, op, id);
    return rc != 0 ? rc : reindex_visitor(c, op);
}

/* The visitor of identity's user into *id: found, or created with the token and details
 * (*created). A visitor another node created a moment ago is found. */
static int find_or_create_user(PGconn *c, const kf_visitor_identity_t *identity, int64_t *id,
                               bool *created)
{
    *created = false;
    int rc = kf_pg_one(c, id, VISITOR_BY_USER, "t", identity->user_id);
    if (rc != KF_ENOTFOUND)
        return rc;
    rc = kf_pg_one(c, id, VISITOR_CREATE_USER, "ttitt", identity->token_hash, identity->name,
                   identity->now, identity->email, identity->user_id);
    *created = rc == 0;
    if (rc != KF_ENOTFOUND)
        return rc;
    return kf_pg_one(c, id, VISITOR_BY_USER, "t", identity->user_id);
}

/* The nonce taken first (a replay changes nothing), then the user's visitor found or created,
 * the token added, the details set and indexed, the row read back. */
static int apply_visitor_identify(PGconn *c, op_t *op)
{
    const kf_visitor_identity_t *identity = &op->args.identity;
    int64_t taken = 0;
    int rc = kf_pg_one(c, &taken, IDENTITY_NONCE_TAKE, "tii", identity->nonce,
                       identity->nonce_expires_at, identity->now);
    if (rc == KF_ENOTFOUND)
        return KF_EEXISTS;
    if (rc == 0)
        rc = kf_pg_run(c, NULL, IDENTITY_NONCE_PURGE, "it", identity->now, identity->nonce);
    int64_t id = 0;
    bool created = false;
    if (rc == 0)
        rc = find_or_create_user(c, identity, &id, &created);
    if (rc == 0 && !created) {
        rc = kf_pg_run(c, NULL, VISITOR_TOKEN_ADD, "tii", identity->token_hash, id, identity->now);
        if (rc == 0)
            rc = kf_pg_run(c, NULL, VISITOR_UPDATE, "iTt", id,
                           identity->name[0] != '\0' ? identity->name : NULL, identity->email);
    }
    if (rc == 0)
        rc = read_back_visitor(c, op, id);
    if (rc == 0)
        rc = reindex_visitor(c, op);
    if (rc == 0)
        op->result.id = id;
    return rc;
}

/* The page, then the visitor's pages past the newest KF_STORE_VISITOR_PAGES_MAX deleted. */
static int apply_visitor_page_add(PGconn *c, op_t *op)
{
    const kf_visitor_page_t *page = &op->args.page_new;
    bool found = false;
    int rc = exists(c, &found, VISITOR_EXISTS, page->visitor_id);
    if (rc == 0 && !found)
        rc = KF_ENOTFOUND;
    if (rc == 0)
        rc = kf_pg_one(c, &op->result.id, VISITOR_PAGE_INSERT, "ittttttii", page->visitor_id,
                       page->url, page->title, page->referrer, page->user_agent, page->language,
                       page->timezone, page->utc_offset, page->seen_at);
    if (rc == 0)
        rc = kf_pg_run(c, NULL, VISITOR_PAGES_TRIM, "ii", page->visitor_id,
                       (int64_t)KF_STORE_VISITOR_PAGES_MAX);
    return rc;
}

/* The token's row as the op's result, its strings kept with the op. */
static int read_back_token(PGconn *c, op_t *op, int64_t id)
{
    PGresult *res = NULL;
    int rc = kf_pg_exec(c, &res, API_TOKEN_BY_ID, "i", id);
    if (rc == 0 && PQntuples(res) == 0)
        rc = KF_ENOTFOUND;
    if (rc == 0) {
        read_api_token(res, 0, &op->api_token);
        op->api_token.name = kf_pg_op_keep(op, op->api_token.name);
        op->api_token.scope = kf_pg_op_keep(op, op->api_token.scope);
        op->result.api_token = &op->api_token;
        op->result.id = id;
    }
    PQclear(res);
    return rc;
}

static int read_back_webhook(PGconn *c, op_t *op, int64_t id)
{
    PGresult *res = NULL;
    int rc = kf_pg_exec(c, &res, WEBHOOK_BY_ID, "i", id);
    if (rc == 0 && PQntuples(res) == 0)
        rc = KF_ENOTFOUND;
    if (rc == 0) {
        char events[EVENTS_MAX];
        read_webhook(res, 0, &op->webhook, events);
        op->webhook.url = kf_pg_op_keep(op, op->webhook.url);
        op->webhook.events = kf_pg_op_keep(op, op->webhook.events);
        op->webhook.secret = kf_pg_op_keep(op, op->webhook.secret);
        op->result.webhook = &op->webhook;
        op->result.id = id;
    }
    PQclear(res);
    return rc;
}

/* The delivery's webhook looked up (KF_ENOTFOUND when it is gone), the attempt in the log
 * (trimmed), then the delivery over or due again. */
static int apply_attempted(PGconn *c, op_t *op)
{
    int64_t id = op->args.integration.id;
    int64_t webhook_id = 0;
    int rc = kf_pg_one(c, &webhook_id, WEBHOOK_OF_DELIVERY, "i", id);
    if (rc == 0)
        rc = kf_pg_run(c, NULL, WEBHOOK_ATTEMPT_INSERT, "iiiti", id, op->args.integration.now,
                       op->args.integration.status, op->args.integration.error,
                       op->args.integration.next_at);
    if (rc == 0)
        rc = kf_pg_run(c, NULL, WEBHOOK_ATTEMPTS_TRIM, "ii", webhook_id,
                       (int64_t)KF_STORE_WEBHOOK_LOG_MAX);
    int64_t changed = 0;
    if (rc == 0 && op->args.integration.next_at == 0)
        rc = kf_pg_run(c, &changed, WEBHOOK_DELIVERY_DONE, "i", id);
    else if (rc == 0)
        rc = kf_pg_run(c, &changed, WEBHOOK_DELIVERY_RETRY, "ii", id, op->args.integration.next_at);
    return rc == 0 && changed == 0 ? KF_ENOTFOUND : rc;
}

/* A write of one changed row by id: KF_ENOTFOUND when there was none. */
static int change_one(PGconn *c, const char *sql, const char *types, int64_t id, int64_t now)
{
    int64_t changed = 0;
    int rc = kf_pg_run(c, &changed, sql, types, id, now);
    return rc == 0 && changed == 0 ? KF_ENOTFOUND : rc;
}

static int apply_integration(PGconn *c, op_t *op)
{
    int64_t id = 0;
    int rc;
    switch (op->kind) {
    case OP_API_TOKEN_CREATE:
        rc = kf_pg_one(c, &id, API_TOKEN_CREATE, "tttIi", op->args.integration.name,
                       op->args.integration.scope, op->args.integration.hash,
                       op->args.integration.agent_id, op->args.integration.now);
        if (rc != 0)
            return rc == KF_EEXISTS ? KF_EINVAL : rc;
        return read_back_token(c, op, id);
    case OP_API_TOKEN_DELETE:
        return change_one(c, API_TOKEN_DELETE, "i", op->args.integration.id, 0);
    case OP_API_TOKEN_TOUCH:
        return change_one(c, API_TOKEN_TOUCH, "ii", op->args.integration.id,
                          op->args.integration.now);
    case OP_WEBHOOK_CREATE:
        rc = kf_pg_one(c, &id, WEBHOOK_CREATE, "ttti", op->args.integration.name,
                       op->args.integration.scope, op->args.integration.hash,
                       op->args.integration.now);
        return rc != 0 ? rc : read_back_webhook(c, op, id);
    case OP_WEBHOOK_DELETE: return change_one(c, WEBHOOK_DELETE, "i", op->args.integration.id, 0);
    case OP_WEBHOOK_ENQUEUE:
        rc = kf_pg_run(c, &op->result.count, WEBHOOK_ENQUEUE, "tti", op->args.integration.name,
                       op->args.integration.scope, op->args.integration.now);
        return rc;
    default: return apply_attempted(c, op);
    }
}

bool kf_pg_desk_apply(PGconn *c, op_t *op, int *rc)
{
    switch (op->kind) {
    case OP_CANNED_CREATE: *rc = apply_canned_create(c, op); return true;
    case OP_CANNED_UPDATE: *rc = apply_canned_update(c, op); return true;
    case OP_CANNED_DELETE: *rc = apply_canned_delete(c, op); return true;
    case OP_TEAM_CREATE: *rc = apply_team_create(c, op); return true;
    case OP_TEAM_UPDATE: *rc = apply_team_update(c, op); return true;
    case OP_TEAM_SET_MEMBERS: *rc = apply_team_set_members(c, op); return true;
    case OP_VISITOR_UPDATE: *rc = apply_visitor_update(c, op); return true;
    case OP_VISITOR_PAGE_ADD: *rc = apply_visitor_page_add(c, op); return true;
    case OP_VISITOR_IDENTIFY: *rc = apply_visitor_identify(c, op); return true;
    case OP_API_TOKEN_CREATE:
    case OP_API_TOKEN_DELETE:
    case OP_API_TOKEN_TOUCH:
    case OP_WEBHOOK_CREATE:
    case OP_WEBHOOK_DELETE:
    case OP_WEBHOOK_ENQUEUE:
    case OP_WEBHOOK_ATTEMPTED: *rc = apply_integration(c, op); return true;
    default: return false;
    }
}
