/* reports_api.c: GET /api/reports (docs/API.md, "Reports"): a period's figures per day, agent or
 * team, as JSON or as a CSV download. Admins see every figure; an agent sees only their own
 * (the store's agent_id: what they answered first, resolved, hold unanswered and wrote), whatever
 * they ask for. The store does the counting; this file reads the query and writes the answer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/tz.h"
#include "chat/handlers.h"

#define DAY_MS 86400000LL

typedef struct report_wait {
    kf_wait_t base;
    kf_report_query_t query;
    bool csv;
    bool own; /* an agent's own figures, not the whole desk's */
    json_t *rows;
    kf_tz_t *tz;         /* owned: the zone ?tz= names, or NULL (days at utc_offset) */
    char tz_name[72];    /* its name */
    int64_t *day_starts; /* owned: with tz and per day, the days the store counts in */
} report_wait_t;

static void wait_free(report_wait_t *w)
{
    json_decref(w->rows);
    kf_tz_free(w->tz);
    free(w->day_starts);
    free(w);
}

static const char *const group_names[] = {
    [KF_REPORT_DAY] = "day",
    [KF_REPORT_AGENT] = "agent",
    [KF_REPORT_TEAM] = "team",
};

/* The local date (YYYY-MM-DD) of time, UTC ms, in the report's zone or at its offset. */
static void day_text(const report_wait_t *w, int64_t time, char out[32])
{
    int64_t offset = w->tz != NULL ? kf_tz_offset(w->tz, time) : w->query.utc_offset * 60000;
    int64_t local = time + offset;
    time_t seconds = (time_t)(local / 1000 - (local % 1000 < 0 ? 1 : 0));
    struct tm tm;
    gmtime_r(&seconds, &tm);
    snprintf(out, 32, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* A duration in ms, or null for none (-1). */
static json_t *duration(int64_t ms)
{
    return ms < 0 ? json_null() : json_integer((json_int_t)ms);
}

/* The visitors' ratings of a row's conversations: good, bad, and the share of good ones among
 * the rated (0 to 1, four decimals; null when none is rated). */
static json_t *satisfaction(const kf_report_row_t *row)
{
    int64_t rated = row->rated_good + row->rated_bad;
    json_t *share = json_null();
    if (rated > 0)
        share = json_real((double)((row->rated_good * 10000 + rated / 2) / rated) / 10000.0);
    return json_pack("{s:I,s:I,s:o}", "good", (json_int_t)row->rated_good, "bad",
                     (json_int_t)row->rated_bad, "share_good", share);
}

static json_t *figures(const kf_report_row_t *row)
{
    json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:I,s:o,s:o,s:I,s:o}", "conversations",
                          (json_int_t)row->conversations, "visitor_messages",
                          (json_int_t)row->visitor_messages, "agent_messages",
                          (json_int_t)row->agent_messages, "notes", (json_int_t)row->notes,
                          "answered", (json_int_t)row->answered, "first_response_median_ms",
                          duration(row->first_response_median), "first_response_p90_ms",
                          duration(row->first_response_p90), "resolved", (json_int_t)row->resolved,
                          "resolution_median_ms", duration(row->resolution_median),
                          "resolution_p90_ms", duration(row->resolution_p90), "unanswered",
                          (json_int_t)row->unanswered, "satisfaction", satisfaction(row));
    return o;
}

static int row_cb(void *ctx, const kf_report_row_t *row)
{
    report_wait_t *w = ctx;
    if (w->base.req == NULL)
        return KF_EINVAL; /* the client has gone: stop */
    json_t *o = figures(row);
    if (o == NULL)
        return KF_ENOMEM;
    if (w->query.group == KF_REPORT_DAY) {
        char day[32];
        day_text(w, row->key, day);
        json_object_set_new(o, "day", json_string(day));
        json_object_set_new(o, "start", json_integer((json_int_t)row->key));
    } else {
        const char *id = w->query.group == KF_REPORT_AGENT ? "agent_id" : "team_id";
        json_object_set_new(o, id,
                            row->key != 0 ? json_integer((json_int_t)row->key) : json_null());
        json_object_set_new(o, "name", row->key != 0 ? json_string(row->name) : json_null());
    }
    json_array_append_new(w->rows, o);
    return 0;
}

/* Appends one CSV field: quoted when it holds a comma, a quote or a line break (quotes
 * doubled), and a text that a spreadsheet would take for a formula (=, +, -, @ first) led by
 * an apostrophe, so that a name cannot run as one when the file is opened. */
static void csv_field(kf_buf_t *b, const char *text, bool first)
{
    if (!first)
        kf_buf_append_str(b, ",");
    bool formula = strchr("=+-@", text[0]) != NULL && text[0] != '\0';
    bool quote = strpbrk(text, ",\"\r\n") != NULL;
    if (quote)
        kf_buf_append_str(b, "\"");
    if (formula)
        kf_buf_append_str(b, "'");
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '"')
            kf_buf_append_str(b, "\"");
        kf_buf_append(b, p, 1);
    }
    if (quote)
        kf_buf_append_str(b, "\"");
}

/* A JSON value as a CSV field: numbers as they are, durations in seconds (ms / 1000, three
 * decimals), null as empty. */
static void csv_value(kf_buf_t *b, const json_t *value, bool seconds)
{
    kf_buf_append_str(b, ",");
    if (json_is_integer(value) && seconds) {
        long long ms = (long long)json_integer_value(value);
        kf_buf_printf(b, "%lld.%03lld", ms / 1000, ms % 1000);
    } else if (json_is_integer(value)) {
        kf_buf_printf(b, "%lld", (long long)json_integer_value(value));
    }
}

static const char *const csv_columns[] = {
    "conversations",
    "visitor_messages",
    "agent_messages",
    "notes",
    "answered",
    "first_response_median_ms",
    "first_response_p90_ms",
    "resolved",
    "resolution_median_ms",
    "resolution_p90_ms",
    "unanswered",
};
#define CSV_COLUMN_COUNT (sizeof csv_columns / sizeof csv_columns[0])

/* The satisfaction's columns, after csv_columns: good, bad, and the share good (four decimals,
 * empty for none rated). */
#define CSV_SATISFACTION_HEADER ",satisfaction_good,satisfaction_bad,satisfaction_share_good"

static void csv_line(kf_buf_t *b, const json_t *o)
{
    for (size_t i = 0; i < CSV_COLUMN_COUNT; i++)
        csv_value(b, json_object_get(o, csv_columns[i]), strstr(csv_columns[i], "_ms") != NULL);
    const json_t *rated = json_object_get(o, "satisfaction");
    csv_value(b, json_object_get(rated, "good"), false);
    csv_value(b, json_object_get(rated, "bad"), false);
    const json_t *share = json_object_get(rated, "share_good");
    if (json_is_real(share))
        kf_buf_printf(b, ",%.4f", json_real_value(share));
    else
        kf_buf_append_str(b, ",");
    kf_buf_append_str(b, "\r\n");
}

/* The CSV: a header, one line per row, and a last line of totals. Durations are in seconds
 * (their columns end in _s). */
static void answer_csv(report_wait_t *w, const json_t *totals)
{
    kf_buf_t b;
    kf_buf_init(&b);
    kf_report_group_t group = w->query.group;
    kf_buf_append_str(&b, group == KF_REPORT_DAY     ? "day"
                          : group == KF_REPORT_AGENT ? "agent_id,agent"
                                                     : "team_id,team");
    for (size_t i = 0; i < CSV_COLUMN_COUNT; i++) {
        kf_buf_append_str(&b, ",");
        const char *name = csv_columns[i];
        size_t len = strlen(name);
        if (len > 3 && strcmp(name + len - 3, "_ms") == 0)
            kf_buf_printf(&b, "%.*s_s", (int)(len - 3), name);
        else
            kf_buf_append_str(&b, name);
    }
    kf_buf_append_str(&b, CSV_SATISFACTION_HEADER "\r\n");
    size_t index;
    const json_t *o;
    json_array_foreach(w->rows, index, o)
    {
        if (group == KF_REPORT_DAY) {
            csv_field(&b, json_string_value(json_object_get(o, "day")), true);
        } else {
            const json_t *id =
                json_object_get(o, group == KF_REPORT_AGENT ? "agent_id" : "team_id");
            if (json_is_integer(id))
                kf_buf_printf(&b, "%lld", (long long)json_integer_value(id));
            const json_t *name = json_object_get(o, "name");
            csv_field(&b, json_is_string(name) ? json_string_value(name) : "", false);
        }
        csv_line(&b, o);
    }
    kf_buf_append_str(&b, group == KF_REPORT_DAY ? "total" : ",total");
    csv_line(&b, totals);
    char from[32];
    char to[32];
    day_text(w, w->query.from, from);
    day_text(w, w->query.to - 1, to);
    char disposition[160];
    snprintf(disposition, sizeof disposition,
             "attachment; filename=\"kefu-report-%s-%s-to-%s.csv\"", group_names[group], from, to);
    kf_resp_header(w->base.req, "Content-Disposition", disposition);
    kf_resp_send(w->base.req, 200, "text/csv; charset=utf-8", b.data, b.len);
    kf_buf_free(&b);
}

static void report_done_cb(void *ctx, const kf_store_result_t *r)
{
    report_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc != 0) {
        kf_call_fail(req, r->rc, NULL);
    } else if (req != NULL) {
        json_t *totals = figures(r->report_totals);
        if (totals == NULL) {
            kf_call_fail(req, KF_ENOMEM, NULL);
        } else if (w->csv) {
            answer_csv(w, totals);
            json_decref(totals);
        } else {
            json_t *body = json_pack(
                "{s:I,s:I,s:s,s:I,s:o,s:o,s:s,s:o,s:O}", "from", (json_int_t)w->query.from, "to",
                (json_int_t)w->query.to, "group", group_names[w->query.group], "utc_offset",
                (json_int_t)w->query.utc_offset, "tz",
                w->tz != NULL ? json_string(w->tz_name) : json_null(), "team_id",
                w->query.team_id != 0 ? json_integer((json_int_t)w->query.team_id) : json_null(),
                "scope", w->own ? "own" : "all", "totals", totals, "rows", w->rows);
            kf_resp_json(req, 200, body);
        }
    }
    wait_free(w);
}

/* Reads an integer parameter (an optional minus sign and digits) into *out. Returns 1 when it
 * is there and well-formed, 0 when absent, -1 when malformed. */
static int read_int(kf_req_t *req, const char *name, int64_t *out)
{
    char value[24];
    int n = kf_http_query_get(req->head->query, name, value, sizeof value);
    if (n == KF_ENOTFOUND)
        return 0;
    if (n <= 0)
        return -1;
    bool negative = value[0] == '-';
    uint64_t parsed;
    kf_str_t digits = {value + negative, (size_t)n - negative};
    if (digits.len == 0 || kf_parse_u64(digits, &parsed) != 0 || parsed > INT64_MAX)
        return -1;
    *out = negative ? -(int64_t)parsed : (int64_t)parsed;
    return 1;
}

/* Reads ?tz=, an IANA zone's name, and the days of the period in it (per day); answers 400 and
 * returns false for a bad one, or one beside utc_offset. The zone file is read on the loop: a
 * few KB, from the page cache after the first time. */
static bool read_zone(kf_req_t *req, report_wait_t *w, bool with_offset)
{
    int n = kf_http_query_get(req->head->query, "tz", w->tz_name, sizeof w->tz_name);
    if (n == KF_ENOTFOUND)
        return true;
    if (with_offset) {
        kf_call_fail(req, KF_EPROTO, "give tz or utc_offset, not both");
        return false;
    }
    if (n <= 0 || kf_tz_load(NULL, w->tz_name, &w->tz) != 0) {
        kf_call_fail(req, KF_EPROTO,
                     "tz must be the IANA name of a time zone this server knows, such as "
                     "Asia/Shanghai");
        return false;
    }
    kf_report_query_t *q = &w->query;
    if (q->group != KF_REPORT_DAY)
        return true;
    size_t count = 0;
    if (kf_tz_day_starts(w->tz, q->from, q->to, KF_REPORT_MAX_DAYS, &w->day_starts, &count) != 0) {
        kf_call_fail(req, KF_EPROTO, "the period may be at most 366 days");
        return false;
    }
    q->day_starts = w->day_starts;
    q->day_count = count;
    return true;
}

/* Reads the query into w's; answers 400 naming what is allowed and returns false for a bad
 * one. */
static bool read_query(kf_req_t *req, report_wait_t *w)
{
    kf_report_query_t *q = &w->query;
    if (read_int(req, "from", &q->from) != 1 || read_int(req, "to", &q->to) != 1 || q->from < 0) {
        kf_call_fail(req, KF_EPROTO, "from and to are required: ms since the epoch");
        return false;
    }
    if (q->from >= q->to) {
        kf_call_fail(req, KF_EPROTO, "from must be before to");
        return false;
    }
    if (q->to - q->from > KF_REPORT_MAX_DAYS * DAY_MS) {
        kf_call_fail(req, KF_EPROTO, "the period may be at most 366 days");
        return false;
    }
    char value[16];
    int n = kf_http_query_get(req->head->query, "group", value, sizeof value);
    q->group = KF_REPORT_DAY;
    if (n != KF_ENOTFOUND) {
        size_t i = 0;
        while (i < 3 && (n < 0 || strcmp(value, group_names[i]) != 0))
            i++;
        if (i == 3) {
            kf_call_fail(req, KF_EPROTO, "group must be day, agent or team");
            return false;
        }
        q->group = (kf_report_group_t)i;
    }
    int rc = read_int(req, "utc_offset", &q->utc_offset);
    if (rc < 0 || q->utc_offset < -KF_REPORT_MAX_OFFSET || q->utc_offset > KF_REPORT_MAX_OFFSET) {
        kf_call_fail(req, KF_EPROTO, "utc_offset must be minutes east of UTC, -840 to 840");
        return false;
    }
    if (!read_zone(req, w, rc == 1))
        return false;
    rc = read_int(req, "team", &q->team_id);
    if (rc < 0 || (rc == 1 && q->team_id < 1)) {
        kf_call_fail(req, KF_EPROTO, "team must be a team's id");
        return false;
    }
    n = kf_http_query_get(req->head->query, "format", value, sizeof value);
    if (n != KF_ENOTFOUND && (n < 0 || (strcmp(value, "json") != 0 && strcmp(value, "csv") != 0))) {
        kf_call_fail(req, KF_EPROTO, "format must be json or csv");
        return false;
    }
    w->csv = n > 0 && strcmp(value, "csv") == 0;
    return true;
}

void kf_reports_get(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    report_wait_t *w = kf_xcalloc(1, sizeof *w);
    if (!read_query(call->req, w)) {
        wait_free(w);
        return;
    }
    w->own = strcmp(call->who->agent.role, "admin") != 0;
    if (w->own)
        w->query.agent_id = call->who->agent.id;
    w->rows = json_array();
    int rc = app->store->ops->report(app->store, &w->query, row_cb, report_done_cb, w);
    if (rc != 0) {
        /* kf_call_hold frees w itself; what w owns goes first. */
        json_decref(w->rows);
        kf_tz_free(w->tz);
        free(w->day_starts);
    }
    kf_call_hold(call->req, w, rc);
}
