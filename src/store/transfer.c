/* transfer.c: the export format (docs/DEPLOY.md, "Moving between backends") and the table list
 * both backends share, and the two walks over them: export (a backend's snapshot to JSON lines)
 * and import (JSON lines into an empty store, in batches). The backends' sides are
 * transfer_sqlite.c and transfer_pg.c. */
#include "store/transfer.h"

#include "base/buf.h"
#include "base/err.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table list ---- */

#define COLUMNS(array) array, (int)(sizeof(array) / sizeof(array[0]))
#define REQUIRED(name, type)                                                                       \
    {                                                                                              \
        name, type, false, NULL                                                                    \
    }
#define NULLABLE(name, type)                                                                       \
    {                                                                                              \
        name, type, true, NULL                                                                     \
    }
#define DEFAULTS(name, type, fallback)                                                             \
    {                                                                                              \
        name, type, false, fallback                                                                \
    }

static const char *const by_id[] = {"id", NULL};

static const kf_transfer_column_t settings_columns[] = {
    REQUIRED("key", 't'),
    REQUIRED("value", 't'),
};
static const char *const settings_order[] = {"key", NULL};

static const kf_transfer_column_t agents_columns[] = {
    REQUIRED("id", 'i'),          REQUIRED("email", 't'),         REQUIRED("name", 't'),
    REQUIRED("role", 't'),        REQUIRED("password_hash", 't'), REQUIRED("created_at", 'i'),
    NULLABLE("disabled_at", 'i'), DEFAULTS("capacity", 'i', "0"),
};

static const kf_transfer_column_t visitors_columns[] = {
    REQUIRED("id", 'i'),         REQUIRED("token_hash", 't'), REQUIRED("name", 't'),
    REQUIRED("created_at", 'i'), DEFAULTS("email", 't', ""),  NULLABLE("user_id", 't'),
};

static const kf_transfer_column_t teams_columns[] = {
    REQUIRED("id", 'i'),
    REQUIRED("name", 't'),
    DEFAULTS("auto_assign", 't', "off"),
    DEFAULTS("reassign_after", 'i', "0"),
    REQUIRED("created_at", 'i'),
};

static const kf_transfer_column_t team_members_columns[] = {
    REQUIRED("team_id", 'i'),
    REQUIRED("agent_id", 'i'),
};
static const char *const team_members_order[] = {"team_id", "agent_id", NULL};

static const kf_transfer_column_t sessions_columns[] = {
    REQUIRED("token_hash", 't'), REQUIRED("agent_id", 'i'),   REQUIRED("csrf", 't'),
    REQUIRED("created_at", 'i'), REQUIRED("expires_at", 'i'),
};
static const char *const by_token_hash[] = {"token_hash", NULL};

static const kf_transfer_column_t conversations_columns[] = {
    REQUIRED("id", 'i'),
    REQUIRED("visitor_id", 'i'),
    REQUIRED("status", 't'),
    NULLABLE("assignee_id", 'i'),
    NULLABLE("snoozed_until", 'i'),
    REQUIRED("created_at", 'i'),
    REQUIRED("updated_at", 'i'),
    DEFAULTS("agent_read_up_to", 'i', "0"),
    DEFAULTS("visitor_read_up_to", 'i', "0"),
    NULLABLE("team_id", 'i'),
    NULLABLE("first_visitor_at", 'i'),
    NULLABLE("first_reply_at", 'i'),
    NULLABLE("first_reply_agent_id", 'i'),
    NULLABLE("resolved_at", 'i'),
    NULLABLE("resolved_by", 'i'),
    NULLABLE("rating", 't'),
    NULLABLE("rating_comment", 't'),
    NULLABLE("rated_at", 'i'),
    NULLABLE("rating_agent_id", 'i'),
    DEFAULTS("last_message_id", 'i', "0"),
};

/* bytes: PostgreSQL keeps them in the row, SQLite in a blob file named by sha256. */
static const kf_transfer_column_t attachments_columns[] = {
    REQUIRED("id", 'i'),         REQUIRED("conversation_id", 'i'),
    REQUIRED("sender", 'i'),     NULLABLE("uploader_id", 'i'),
    REQUIRED("name", 't'),       REQUIRED("type", 't'),
    REQUIRED("size", 'i'),       REQUIRED("sha256", 't'),
    REQUIRED("created_at", 'i'), REQUIRED("bytes", 'b'),
};

static const kf_transfer_column_t messages_columns[] = {
    REQUIRED("id", 'i'),
    REQUIRED("conversation_id", 'i'),
    REQUIRED("sender", 'i'),
    NULLABLE("agent_id", 'i'),
    REQUIRED("body", 't'),
    REQUIRED("created_at", 'i'),
    NULLABLE("idempotency_key", 't'),
    NULLABLE("idempotency_owner", 'i'),
    DEFAULTS("private", 'i', "0"),
    NULLABLE("attachment_id", 'i'),
};

static const kf_transfer_column_t canned_columns[] = {
    REQUIRED("id", 'i'),   NULLABLE("owner_id", 'i'),   REQUIRED("shortcut", 't'),
    REQUIRED("body", 't'), REQUIRED("created_at", 'i'), REQUIRED("updated_at", 'i'),
};

static const kf_transfer_column_t visitor_pages_columns[] = {
    REQUIRED("id", 'i'),       REQUIRED("visitor_id", 'i'), REQUIRED("url", 't'),
    REQUIRED("title", 't'),    REQUIRED("referrer", 't'),   REQUIRED("user_agent", 't'),
    REQUIRED("language", 't'), REQUIRED("timezone", 't'),   REQUIRED("utc_offset", 'i'),
    REQUIRED("seen_at", 'i'),
};

static const kf_transfer_column_t visitor_tokens_columns[] = {
    REQUIRED("token_hash", 't'),
    REQUIRED("visitor_id", 'i'),
    REQUIRED("created_at", 'i'),
};

static const kf_transfer_column_t identity_nonces_columns[] = {
    REQUIRED("nonce", 't'),
    REQUIRED("expires_at", 'i'),
};
static const char *const by_nonce[] = {"nonce", NULL};

static const kf_transfer_column_t api_tokens_columns[] = {
    REQUIRED("id", 'i'),           REQUIRED("name", 't'),       REQUIRED("scope", 't'),
    REQUIRED("token_hash", 't'),   NULLABLE("created_by", 'i'), REQUIRED("created_at", 'i'),
    NULLABLE("last_used_at", 'i'),
};

static const kf_transfer_column_t webhooks_columns[] = {
    REQUIRED("id", 'i'),     REQUIRED("url", 't'),        REQUIRED("events", 't'),
    REQUIRED("secret", 't'), REQUIRED("created_at", 'i'),
};

static const kf_transfer_column_t webhook_deliveries_columns[] = {
    REQUIRED("id", 'i'),      REQUIRED("webhook_id", 'i'), REQUIRED("event", 't'),
    REQUIRED("body", 't'),    REQUIRED("created_at", 'i'), REQUIRED("attempts", 'i'),
    REQUIRED("next_at", 'i'),
};

static const kf_transfer_column_t webhook_attempts_columns[] = {
    REQUIRED("id", 'i'),     REQUIRED("webhook_id", 'i'), REQUIRED("delivery_id", 'i'),
    REQUIRED("event", 't'),  REQUIRED("attempt", 'i'),    REQUIRED("at", 'i'),
    REQUIRED("status", 'i'), REQUIRED("error", 't'),      REQUIRED("next_at", 'i'),
};

/* Derived data is not here: the search's tables (fed by the import's inserts; SQLite's
 * search_pending too, since an import indexes every message it writes at once) and
 * conversation_counts (kept by its triggers as conversations go in). settings leaves out the
 * schema version (the target has its own) and the import marker. */
static const kf_transfer_table_t tables[] = {
    {"settings", COLUMNS(settings_columns), settings_order, false, false},
    {"agents", COLUMNS(agents_columns), by_id, true, false},
    {"visitors", COLUMNS(visitors_columns), by_id, true, false},
    {"teams", COLUMNS(teams_columns), by_id, true, false},
    {"team_members", COLUMNS(team_members_columns), team_members_order, false, false},
    {"sessions", COLUMNS(sessions_columns), by_token_hash, false, false},
    {"conversations", COLUMNS(conversations_columns), by_id, true, false},
    {"attachments", COLUMNS(attachments_columns), by_id, true, false},
    /* Message ids are resume cursors: the high-water mark travels, so that an id a deleted
     * message had is never handed out again. */
    {"messages", COLUMNS(messages_columns), by_id, true, true},
    {"canned_replies", COLUMNS(canned_columns), by_id, true, false},
    {"visitor_pages", COLUMNS(visitor_pages_columns), by_id, true, false},
    {"visitor_tokens", COLUMNS(visitor_tokens_columns), by_token_hash, false, false},
    {"identity_nonces", COLUMNS(identity_nonces_columns), by_nonce, false, false},
    {"api_tokens", COLUMNS(api_tokens_columns), by_id, true, false},
    {"webhooks", COLUMNS(webhooks_columns), by_id, true, false},
    {"webhook_deliveries", COLUMNS(webhook_deliveries_columns), by_id, true, false},
    {"webhook_attempts", COLUMNS(webhook_attempts_columns), by_id, true, false},
};

#define TABLE_COUNT (sizeof(tables) / sizeof(tables[0]))

const kf_transfer_table_t *kf_transfer_table(size_t index)
{
    return index < TABLE_COUNT ? &tables[index] : NULL;
}

const kf_transfer_table_t *kf_transfer_table_named(const char *name)
{
    for (size_t i = 0; i < TABLE_COUNT; i++) {
        if (strcmp(tables[i].name, name) == 0)
            return &tables[i];
    }
    return NULL;
}

char *kf_transfer_select_sql(const kf_transfer_table_t *table, bool bytes, const char *text_order)
{
    kf_buf_t sql;
    kf_buf_init(&sql);
    kf_buf_append_str(&sql, "SELECT ");
    for (int i = 0; i < table->column_count; i++) {
        bool elsewhere = table->columns[i].type == 'b' && !bytes;
        kf_buf_printf(&sql, "%s%s", i > 0 ? ", " : "", elsewhere ? "NULL" : table->columns[i].name);
    }
    kf_buf_printf(&sql, " FROM %s", table->name);
    if (strcmp(table->name, "settings") == 0)
        kf_buf_append_str(&sql, " WHERE key NOT IN " KF_TRANSFER_SETTINGS_SKIPPED);
    for (int k = 0; table->order[k] != NULL; k++) {
        bool text = false;
        for (int i = 0; i < table->column_count; i++)
            text |= strcmp(table->columns[i].name, table->order[k]) == 0 &&
                    table->columns[i].type == 't';
        kf_buf_printf(&sql, "%s%s%s", k == 0 ? " ORDER BY " : ", ", table->order[k],
                      text ? text_order : "");
    }
    return kf_buf_steal(&sql, NULL);
}

char *kf_transfer_insert_sql(const kf_transfer_table_t *table, bool bytes, const char *prefix)
{
    kf_buf_t sql;
    kf_buf_init(&sql);
    kf_buf_printf(&sql, "INSERT INTO %s (", table->name);
    int n = 0;
    for (int i = 0; i < table->column_count; i++) {
        if (table->columns[i].type != 'b' || bytes)
            kf_buf_printf(&sql, "%s%s", n++ > 0 ? ", " : "", table->columns[i].name);
    }
    kf_buf_append_str(&sql, ") VALUES (");
    for (int i = 1; i <= n; i++)
        kf_buf_printf(&sql, "%s%s%d", i > 1 ? ", " : "", prefix, i);
    kf_buf_append_str(&sql, ")");
    return kf_buf_steal(&sql, NULL);
}

/* ---- errors for a person ---- */

static int fail(char *why, size_t why_len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t why_len, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- base64 (RFC 4648, padded, no line breaks) ---- */

static char *base64_encode(const void *bytes, size_t len)
{
    char *out = kf_xmalloc(4 * ((len + 2) / 3) + 1);
    /* EVP_EncodeBlock takes an int: blocks of 3 * 2^20 keep it far from the limit. */
    size_t done = 0, written = 0;
    while (done < len) {
        size_t chunk = len - done < 3u << 20 ? len - done : 3u << 20;
        written += (size_t)EVP_EncodeBlock((unsigned char *)out + written,
                                           (const unsigned char *)bytes + done, (int)chunk);
        done += chunk;
    }
    out[written] = '\0';
    return out;
}

static bool base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Decodes text (len a multiple of 4, padding only at its end) into a new buffer: NULL for
 * anything else. EVP_DecodeBlock alone would pass over blanks and count padding as bytes. */
static char *base64_decode(const char *text, size_t len, size_t *out_len)
{
    if (len % 4 != 0)
        return NULL;
    size_t pad = 0;
    if (len > 0 && text[len - 1] == '=')
        pad = len > 1 && text[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++) {
        if (!base64_char(text[i]))
            return NULL;
    }
    char *out = kf_xmalloc(len / 4 * 3 + 1);
    size_t written = 0;
    for (size_t done = 0; done < len;) {
        size_t chunk = len - done < 4u << 20 ? len - done : 4u << 20;
        int n = EVP_DecodeBlock((unsigned char *)out + written, (const unsigned char *)text + done,
                                (int)chunk);
        if (n < 0) {
            free(out);
            return NULL;
        }
        written += (size_t)n;
        done += chunk;
    }
    *out_len = written - pad;
    return out;
}

/* ---- export ---- */

typedef struct export_state {
    FILE *out;
    size_t rows;
    char *why;
    size_t why_len;
} export_state_t;

/* Writes one JSON value and a line end; json is consumed. */
static int write_line(export_state_t *state, json_t *json)
{
    char *text = json_dumps(json, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(json);
    if (text == NULL)
        return fail(state->why, state->why_len, KF_EPROTO,
                    "a row holds text that is not UTF-8; it cannot be exported");
    int rc = fputs(text, state->out) < 0 || fputc('\n', state->out) == EOF ? KF_EIO : 0;
    free(text);
    if (rc != 0)
        return fail(state->why, state->why_len, rc, "cannot write the export: %s", strerror(errno));
    return 0;
}

static int export_row(void *arg, const kf_transfer_table_t *table,
                      const kf_transfer_value_t *values)
{
    export_state_t *state = arg;
    json_t *line = json_object();
    json_object_set_new(line, "table", json_string(table->name));
    for (int i = 0; i < table->column_count; i++) {
        const kf_transfer_column_t *column = &table->columns[i];
        const kf_transfer_value_t *value = &values[i];
        json_t *json;
        if (value->null) {
            json = json_null();
        } else if (column->type == 'i') {
            json = json_integer(value->integer);
        } else if (column->type == 't') {
            json = json_stringn(value->data, value->len);
        } else {
            char *text = base64_encode(value->data, value->len);
            json = json_string(text);
            free(text);
        }
        if (json == NULL) {
            json_decref(line);
            return fail(state->why, state->why_len, KF_EPROTO,
                        "%s.%s holds text that is not UTF-8; it cannot be exported", table->name,
                        column->name);
        }
        json_object_set_new(line, column->name, json);
    }
    state->rows++;
    return write_line(state, line);
}

int kf_transfer_export(kf_transfer_backend_t *b, FILE *out, size_t *rows_out, char *why,
                       size_t why_len)
{
    export_state_t state = {.out = out, .why = why, .why_len = why_len};
    int rc = b->snapshot(b);
    if (rc != 0)
        return fail(why, why_len, rc, "cannot read the store: %s", b->error);
    char *marker = NULL;
    rc = b->setting_get(b, KF_TRANSFER_INCOMPLETE_KEY, &marker);
    if (rc != 0)
        return fail(why, why_len, rc, "cannot read the store: %s", b->error);
    if (marker != NULL) {
        free(marker);
        return fail(why, why_len, KF_ECONFLICT,
                    "the store holds an import that did not finish; there is nothing whole to "
                    "export");
    }
    json_t *header =
        json_pack("{s:s, s:I, s:I}", "format", "kefu-export", "version",
                  (json_int_t)KF_TRANSFER_FORMAT_VERSION, "schema", (json_int_t)KF_TRANSFER_SCHEMA);
    rc = write_line(&state, header);
    for (size_t i = 0; rc == 0 && i < TABLE_COUNT; i++) {
        rc = b->each_row(b, &tables[i], export_row, &state);
        if (rc != 0 && why[0] == '\0')
            fail(why, why_len, rc, "cannot read %s: %s", tables[i].name, b->error);
    }
    for (size_t i = 0; rc == 0 && i < TABLE_COUNT; i++) {
        if (!tables[i].keep_sequence)
            continue;
        int64_t value = 0;
        rc = b->sequence(b, &tables[i], &value);
        if (rc != 0) {
            fail(why, why_len, rc, "cannot read %s's ids: %s", tables[i].name, b->error);
            break;
        }
        rc = write_line(&state, json_pack("{s:s, s:I}", "sequence", tables[i].name, "value",
                                          (json_int_t)value));
    }
    if (rc == 0)
        rc = write_line(&state, json_pack("{s:b, s:I}", "end", 1, "rows", (json_int_t)state.rows));
    if (rc == 0 && fflush(out) != 0)
        rc = fail(why, why_len, KF_EIO, "cannot write the export: %s", strerror(errno));
    if (rc == 0 && rows_out != NULL)
        *rows_out = state.rows;
    return rc;
}

/* ---- parsing a line ---- */

void kf_transfer_line_free(kf_transfer_line_t *line)
{
    if (line->decoded != NULL && line->table != NULL) {
        for (int i = 0; i < line->table->column_count; i++)
            free(line->decoded[i]);
    }
    free(line->decoded);
    free(line->values);
    json_decref(line->json);
    memset(line, 0, sizeof(*line));
}

/* A column absent from the row (a file of an older schema): its fallback. */
static int fallback_value(const kf_transfer_column_t *column, kf_transfer_value_t *value, char *why,
                          size_t why_len, const char *table)
{
    if (column->fallback == NULL) {
        if (!column->nullable)
            return fail(why, why_len, KF_EPROTO, "the %s row has no %s", table, column->name);
        value->null = true;
        return 0;
    }
    if (column->type == 'i') {
        value->integer = strtoll(column->fallback, NULL, 10);
    } else {
        value->data = column->fallback;
        value->len = strlen(column->fallback);
    }
    return 0;
}

static int parse_value(const kf_transfer_column_t *column, json_t *json, kf_transfer_value_t *value,
                       char **decoded, char *why, size_t why_len, const char *table)
{
    if (json_is_null(json)) {
        if (!column->nullable)
            return fail(why, why_len, KF_EPROTO, "%s.%s is null, which it may not be", table,
                        column->name);
        value->null = true;
        return 0;
    }
    if (column->type == 'i') {
        if (!json_is_integer(json))
            return fail(why, why_len, KF_EPROTO, "%s.%s is not an integer", table, column->name);
        value->integer = (int64_t)json_integer_value(json);
        return 0;
    }
    if (!json_is_string(json))
        return fail(why, why_len, KF_EPROTO, "%s.%s is not a string", table, column->name);
    const char *text = json_string_value(json);
    size_t len = json_string_length(json);
    if (column->type == 't') {
        if (memchr(text, '\0', len) != NULL)
            return fail(why, why_len, KF_EPROTO, "%s.%s holds a NUL character", table,
                        column->name);
        value->data = text;
        value->len = len;
        return 0;
    }
    *decoded = base64_decode(text, len, &value->len);
    if (*decoded == NULL)
        return fail(why, why_len, KF_EPROTO, "%s.%s is not base64", table, column->name);
    value->data = *decoded;
    return 0;
}

static int parse_row(json_t *json, kf_transfer_line_t *out, char *why, size_t why_len)
{
    const char *name = json_string_value(json_object_get(json, "table"));
    out->table = name != NULL ? kf_transfer_table_named(name) : NULL;
    if (name == NULL)
        return fail(why, why_len, KF_EPROTO, "neither a row, a sequence nor an end line");
    if (out->table == NULL)
        return fail(why, why_len, KF_EPROTO, "no table is named %.64s", name);
    const kf_transfer_table_t *table = out->table;
    out->kind = KF_TRANSFER_LINE_ROW;
    out->values = kf_xcalloc((size_t)table->column_count, sizeof(*out->values));
    out->decoded = kf_xcalloc((size_t)table->column_count, sizeof(*out->decoded));
    size_t known = 1; /* "table" */
    for (int i = 0; i < table->column_count; i++) {
        const kf_transfer_column_t *column = &table->columns[i];
        json_t *value = json_object_get(json, column->name);
        int rc = value == NULL ? fallback_value(column, &out->values[i], why, why_len, name)
                               : parse_value(column, value, &out->values[i], &out->decoded[i], why,
                                             why_len, name);
        if (rc != 0)
            return rc;
        known += value != NULL;
    }
    if (json_object_size(json) != known) {
        const char *key;
        json_t *value;
        json_object_foreach(json, key, value)
        {
            bool found = strcmp(key, "table") == 0;
            for (int i = 0; !found && i < table->column_count; i++)
                found = strcmp(key, table->columns[i].name) == 0;
            if (!found)
                return fail(why, why_len, KF_EPROTO, "%s has no column %.64s", name, key);
        }
    }
    return 0;
}

int kf_transfer_parse_line(const char *line, size_t len, kf_transfer_line_t *out, char *why,
                           size_t why_len)
{
    memset(out, 0, sizeof(*out));
    json_error_t error;
    json_t *json = json_loadb(line, len, JSON_REJECT_DUPLICATES, &error);
    if (json == NULL)
        return fail(why, why_len, KF_EPROTO, "not JSON (%s, column %d)", error.text, error.column);
    out->json = json;
    int rc = 0;
    json_t *sequence = json_object_get(json, "sequence");
    json_t *end = json_object_get(json, "end");
    if (!json_is_object(json)) {
        rc = fail(why, why_len, KF_EPROTO, "not a JSON object");
    } else if (sequence != NULL) {
        json_t *value = json_object_get(json, "value");
        out->kind = KF_TRANSFER_LINE_SEQUENCE;
        out->table =
            json_is_string(sequence) ? kf_transfer_table_named(json_string_value(sequence)) : NULL;
        if (out->table == NULL || !out->table->id_sequence || !json_is_integer(value) ||
            json_integer_value(value) < 0 || json_object_size(json) != 2)
            rc = fail(why, why_len, KF_EPROTO,
                      "a sequence line needs a table with ids and a value >= 0");
        else
            out->number = (int64_t)json_integer_value(value);
    } else if (end != NULL) {
        json_t *rows = json_object_get(json, "rows");
        out->kind = KF_TRANSFER_LINE_END;
        if (!json_is_true(end) || !json_is_integer(rows) || json_integer_value(rows) < 0 ||
            json_object_size(json) != 2)
            rc = fail(why, why_len, KF_EPROTO, "an end line needs a row count");
        else
            out->number = (int64_t)json_integer_value(rows);
    } else {
        rc = parse_row(json, out, why, why_len);
    }
    if (rc != 0)
        kf_transfer_line_free(out);
    return rc;
}

/* ---- import ---- */

/* Reads one line into *line (without its end); false at the end of the file. A last line
 * without its line end is a truncated file: *complete says whether it had one. */
static bool read_line(FILE *in, char **line, size_t *cap, size_t *len, bool *complete)
{
    ssize_t n = getline(line, cap, in);
    if (n <= 0)
        return false;
    *complete = (*line)[n - 1] == '\n';
    *len = (size_t)n - *complete;
    return true;
}

int kf_transfer_read_header(FILE *in, char *why, size_t why_len)
{
    char *line = NULL;
    size_t cap = 0, len = 0;
    bool complete = false;
    if (!read_line(in, &line, &cap, &len, &complete)) {
        free(line);
        return fail(why, why_len, KF_EPROTO, "the file is empty: it is not a kefu export");
    }
    json_t *json = json_loadb(line, len, 0, NULL);
    free(line);
    const char *format = json_string_value(json_object_get(json, "format"));
    json_t *version = json_object_get(json, "version");
    json_t *schema = json_object_get(json, "schema");
    int rc = 0;
    if (format == NULL || strcmp(format, "kefu-export") != 0 || !json_is_integer(version) ||
        !json_is_integer(schema))
        rc = fail(why, why_len, KF_EPROTO, "line 1 is not a kefu export's header");
    else if (json_integer_value(version) != KF_TRANSFER_FORMAT_VERSION)
        rc = fail(why, why_len, KF_EPROTO,
                  "the file is in export format %" JSON_INTEGER_FORMAT
                  "; this kefu reads format %d only",
                  json_integer_value(version), KF_TRANSFER_FORMAT_VERSION);
    else if (json_integer_value(schema) > KF_TRANSFER_SCHEMA)
        rc = fail(why, why_len, KF_EPROTO,
                  "the file holds schema %" JSON_INTEGER_FORMAT
                  ", newer than this kefu's (%d): import it with a newer kefu",
                  json_integer_value(schema), KF_TRANSFER_SCHEMA);
    json_decref(json);
    return rc;
}

/* Says why the store refused a row, or a batch's commit; *line_number becomes the refused
 * row's when the backend learnt of it after reading on (failed_tag). */
static void refused(kf_transfer_backend_t *b, int rc, size_t *line_number, char *why,
                    size_t why_len)
{
    if (b->failed_tag != 0) {
        *line_number = b->failed_tag;
        fail(why, why_len, rc, "the store refused the row: %s", b->error);
    } else {
        fail(why, why_len, rc, "the store refused a write: %s", b->error);
    }
}

/* Imports the rows; *line_number follows the file (the header is line 1). */
static int import_lines(kf_transfer_backend_t *b, FILE *in, size_t *rows_out, size_t *line_number,
                        char *why, size_t why_len)
{
    char *line = NULL;
    size_t cap = 0, len = 0, rows = 0, in_batch = 0;
    bool complete = false, ended = false;
    int64_t sequences[TABLE_COUNT] = {0};
    int rc = 0;
    while (rc == 0 && read_line(in, &line, &cap, &len, &complete)) {
        ++*line_number;
        if (ended) {
            rc = fail(why, why_len, KF_EPROTO, "there is more after the end line");
            break;
        }
        if (!complete) {
            rc = fail(why, why_len, KF_EPROTO, "the line is cut short: the file is truncated");
            break;
        }
        kf_transfer_line_t parsed;
        rc = kf_transfer_parse_line(line, len, &parsed, why, why_len);
        if (rc != 0)
            break;
        if (parsed.kind == KF_TRANSFER_LINE_ROW && strcmp(parsed.table->name, "settings") == 0 &&
            (strcmp(parsed.values[0].data, "schema_version") == 0 ||
             strcmp(parsed.values[0].data, KF_TRANSFER_INCOMPLETE_KEY) == 0)) {
            /* The target's own: a file that names them would misstate its schema or state. */
            rc = fail(why, why_len, KF_EPROTO, "the settings row %s is the store's own",
                      parsed.values[0].data);
        } else if (parsed.kind == KF_TRANSFER_LINE_ROW) {
            rc = b->insert(b, parsed.table, parsed.values, *line_number);
            rows++;
            if (rc == 0 && ++in_batch == KF_TRANSFER_BATCH_ROWS) {
                in_batch = 0;
                rc = b->commit(b);
                if (rc == 0)
                    rc = b->begin(b);
            }
            if (rc != 0)
                refused(b, rc, line_number, why, why_len);
        } else if (parsed.kind == KF_TRANSFER_LINE_SEQUENCE) {
            sequences[parsed.table - tables] = parsed.number;
        } else if ((size_t)parsed.number != rows) {
            rc = fail(why, why_len, KF_EPROTO,
                      "the end line counts %" PRId64 " rows, the file holds %zu", parsed.number,
                      rows);
        } else {
            ended = true;
        }
        kf_transfer_line_free(&parsed);
    }
    free(line);
    if (rc == 0 && ferror(in))
        rc = fail(why, why_len, KF_EIO, "cannot read the file: %s", strerror(errno));
    if (rc == 0 && !ended) {
        ++*line_number;
        rc = fail(why, why_len, KF_EPROTO, "the file ends without its end line: it is truncated");
    }
    for (size_t i = 0; rc == 0 && i < TABLE_COUNT; i++) {
        if (tables[i].id_sequence) {
            rc = b->set_sequence(b, &tables[i], sequences[i]);
            if (rc != 0)
                refused(b, rc, line_number, why, why_len);
        }
    }
    *rows_out = rows;
    return rc;
}

int kf_transfer_import(kf_transfer_backend_t *b, FILE *in, size_t *rows_out, char *why,
                       size_t why_len)
{
    why[0] = '\0';
    bool empty = false;
    const char *what = NULL;
    int rc = b->is_empty(b, &empty, &what);
    if (rc != 0)
        return fail(why, why_len, rc, "cannot read the store: %s", b->error);
    if (!empty)
        return fail(why, why_len, KF_EEXISTS,
                    "the store is not empty (%s has rows): import only into a new, empty store",
                    what);
    rc = b->begin(b);
    if (rc == 0)
        rc = b->setting(b, KF_TRANSFER_INCOMPLETE_KEY, "1");
    if (rc == 0)
        rc = b->commit(b);
    if (rc == 0)
        rc = b->begin(b);
    if (rc != 0)
        return fail(why, why_len, rc, "cannot write the store: %s", b->error);
    size_t rows = 0, line_number = 1;
    rc = import_lines(b, in, &rows, &line_number, why, why_len);
    if (rc == 0) {
        rc = b->setting(b, KF_TRANSFER_INCOMPLETE_KEY, NULL);
        if (rc == 0)
            rc = b->commit(b);
        if (rc != 0)
            refused(b, rc, &line_number, why, why_len);
    }
    if (rc != 0) {
        b->rollback(b);
        char reason[512];
        snprintf(reason, sizeof reason, "%s", why);
        fail(why, why_len, rc,
             "line %zu: %s. The store keeps the batches before it and is marked as an "
             "unfinished import (kefu will not serve it): empty the store and run kefu import "
             "again",
             line_number, reason);
        return rc;
    }
    if (rows_out != NULL)
        *rows_out = rows;
    return 0;
}
