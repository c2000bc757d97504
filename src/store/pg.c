/* pg.c: the PostgreSQL backend's front: opening (a first connection that migrates the schema),
 * the reader and writer threads with a connection each, reconnecting with backoff, running what
 * is ready on the loop (complete, flush), and the helpers pg_reads.c, pg_writer.c and pg_desk.c
 * share (statements with parameters, columns, rows, the search's text). The operations' argument
 * checks are the SQLite backend's front functions (pg_internal.h says how). */
#include "store/pg_internal.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/metrics.h"
#include "store/search_text.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Reconnecting: the first retry after this long, doubling to the most. */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
/* What a connection attempt waits for the server at most, unless the conninfo says. */
#define CONNECT_TIMEOUT "5"

/* One thread's connection, and when it may try again after losing it. */
typedef struct link {
    PGconn *conn;      /* NULL while lost */
    uint64_t retry_at; /* kf_clock_mono_ms() of the next attempt */
    int backoff_ms;    /* the wait after the next failed attempt */
} link_t;

/* The PostgreSQL store handle. The owner thread (the loop) queues every operation; the reader
 * thread runs the reads and the writer thread the writes, each on its own connection; both hand
 * finished operations back under lock, and complete() calls their callbacks on the loop. */
typedef struct pg_store {
    kf_store_t base; /* first, so a kf_store_t * is a pg_store_t * */
    char *conninfo;
    pthread_mutex_t lock;       /* guards everything below but completing and the links */
    pthread_cond_t reader_wake; /* reads were queued, or stopping */
    pthread_cond_t writer_wake; /* writes were queued, or stopping */
    pthread_cond_t idle;        /* a thread finished what it took */
    op_list_t reads;            /* waiting for the reader, in order */
    op_list_t reads_done;       /* run, waiting for complete() */
    op_list_t writes;           /* waiting for the writer, in order */
    op_list_t writes_done;      /* applied (or failed), waiting for complete() */
    bool reading;               /* the reader is running what it took */
    bool writing;               /* the writer is applying a batch it took */
    bool writer_back;           /* the writer has its connection again after losing it */
    bool stopping;
    void (*notify)(void *data);
    void *notify_data;
    pthread_t reader, writer;
    bool threads_running;
    link_t reader_link; /* the reader thread's alone */
    link_t writer_link; /* the writer thread's alone */
    bool completing;    /* owner thread: complete() is running callbacks */
} pg_store_t;

/* ---- statements ---- */

int kf_pg_map_error(PGconn *c, const PGresult *res)
{
    if (c != NULL && PQstatus(c) == CONNECTION_BAD)
        return KF_EUNAVAIL;
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL)
        return res == NULL ? KF_EUNAVAIL : KF_ESTORE;
    if (strcmp(state, "23505") == 0)
        return KF_EEXISTS;
    /* A lost or refused connection, a server shutting down or read-only (a standby), a full
     * disk, too many connections: the database cannot take this now, and may later. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "57P", 3) == 0 || strcmp(state, "25006") == 0)
        return KF_EUNAVAIL;
    return KF_ESTORE;
}

/* The most parameters one statement takes. */
#define MAX_PARAMS 16

/* Statements prepared on this thread's connection: each statement is parsed and planned once
 * per connection, not at every run. A statement's name is its text's hash, so the table keeps
 * hashes only (nothing to free when the thread ends). A connection belongs to one thread for its
 * life (pg.c opens each thread its own; the migration's is closed before they start), and
 * kf_pg_forget_prepared clears the table whenever the thread's connection changes. */
#define PREPARED_MAX 256
static _Thread_local struct {
    PGconn *conn;
    size_t count;
    uint64_t hashes[PREPARED_MAX];
} prepared;

void kf_pg_forget_prepared(void)
{
    prepared.conn = NULL;
    prepared.count = 0;
}

/* FNV-1a over the statement's text and its parameter count. */
static uint64_t statement_hash(const char *sql, int count)
{
    uint64_t hash = 14695981039346656037u;
    for (const unsigned char *p = (const unsigned char *)sql; *p != '\0'; p++)
        hash = (hash ^ *p) * 1099511628211u;
    return (hash ^ (uint64_t)count) * 1099511628211u;
}

/* Runs sql on c, prepared once (while the table has room). */
static PGresult *run_statement(PGconn *c, const char *sql, int count, const char *const *values,
                               const int *lengths, const int *formats)
{
    if (prepared.conn != c) {
        prepared.conn = c;
        prepared.count = 0;
    }
    uint64_t hash = statement_hash(sql, count);
    char name[24];
    snprintf(name, sizeof name, "kf_%016" PRIx64, hash);
    bool known = false;
    for (size_t i = 0; i < prepared.count && !known; i++)
        known = prepared.hashes[i] == hash;
    if (!known && prepared.count < PREPARED_MAX) {
        PGresult *made = PQprepare(c, name, sql, count, NULL);
        bool ok = PQresultStatus(made) == PGRES_COMMAND_OK;
        if (!ok)
            return made; /* the statement's own error (or the connection's) */
        PQclear(made);
        prepared.hashes[prepared.count++] = hash;
        known = true;
    }
    if (!known)
        return PQexecParams(c, sql, count, NULL, values, lengths, formats, 0);
    return PQexecPrepared(c, name, count, values, lengths, formats, 0);
}

/* Runs sql with its parameters (kf_pg_exec's types). */
static int exec_params(PGconn *c, PGresult **out, const char *sql, const char *types, va_list ap)
{
    *out = NULL;
    const char *values[MAX_PARAMS];
    int lengths[MAX_PARAMS];
    int formats[MAX_PARAMS];
    char numbers[MAX_PARAMS][24];
    int count = 0;
    for (const char *t = types; *t != '\0'; t++, count++) {
        assert(count < MAX_PARAMS);
        lengths[count] = 0;
        formats[count] = 0;
        switch (*t) {
        case 't': {
            const char *text = va_arg(ap, const char *);
            values[count] = text != NULL ? text : "";
            break;
        }
        case 'T': values[count] = va_arg(ap, const char *); break;
        case 'i':
        case 'I': {
            int64_t value = va_arg(ap, int64_t);
            snprintf(numbers[count], sizeof numbers[count], "%" PRId64, value);
            values[count] = *t == 'I' && value == 0 ? NULL : numbers[count];
            break;
        }
        case 'n': {
            size_t limit = va_arg(ap, size_t);
            /* A limit past int64 is "no limit", as SQLite takes it. */
            snprintf(numbers[count], sizeof numbers[count], "%" PRId64,
                     limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit);
            values[count] = numbers[count];
            break;
        }
        case 'b': {
            values[count] = va_arg(ap, const char *);
            lengths[count] = (int)va_arg(ap, size_t);
            formats[count] = 1;
            break;
        }
        default: assert(!"a parameter type kf_pg_exec knows"); return KF_EINVAL;
        }
    }
    if (c == NULL)
        return KF_EUNAVAIL;
    PGresult *res = run_statement(c, sql, count, values, lengths, formats);
    ExecStatusType status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        int rc = kf_pg_map_error(c, res);
        PQclear(res);
        return rc;
    }
    *out = res;
    return 0;
}

int kf_pg_exec(PGconn *c, PGresult **res, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    int rc = exec_params(c, res, sql, types, ap);
    va_end(ap);
    return rc;
}

int kf_pg_run(PGconn *c, int64_t *changed, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    PGresult *res;
    int rc = exec_params(c, &res, sql, types, ap);
    va_end(ap);
    if (rc == 0 && changed != NULL) {
        const char *tuples = PQcmdTuples(res);
        *changed = tuples[0] != '\0' ? strtoll(tuples, NULL, 10) : 0;
    }
    PQclear(res);
    return rc;
}

int kf_pg_one(PGconn *c, int64_t *value, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    PGresult *res;
    int rc = exec_params(c, &res, sql, types, ap);
    va_end(ap);
    if (rc == 0 && PQntuples(res) == 0)
        rc = KF_ENOTFOUND;
    if (rc == 0)
        *value = kf_pg_int(res, 0, 0);
    PQclear(res);
    return rc;
}

/* ---- columns and rows ---- */

const char *kf_pg_text(const PGresult *res, int row, int column)
{
    return PQgetisnull(res, row, column) ? "" : PQgetvalue(res, row, column);
}

int64_t kf_pg_int(const PGresult *res, int row, int column)
{
    if (PQgetisnull(res, row, column))
        return 0;
    const char *text = PQgetvalue(res, row, column);
    if (text[0] == 't')
        return 1;
    if (text[0] == 'f')
        return 0;
    return strtoll(text, NULL, 10);
}

bool kf_pg_null(const PGresult *res, int row, int column)
{
    return PQgetisnull(res, row, column) != 0;
}

void kf_pg_read_message(const PGresult *res, int row, int first, kf_message_t *message)
{
    message->id = kf_pg_int(res, row, first);
    message->conversation_id = kf_pg_int(res, row, first + 1);
    message->visitor_id = kf_pg_int(res, row, first + 2);
    message->sender =
        kf_pg_int(res, row, first + 3) == KF_SENDER_AGENT ? KF_SENDER_AGENT : KF_SENDER_VISITOR;
    message->agent_id = kf_pg_int(res, row, first + 4);
    message->agent_name = kf_pg_text(res, row, first + 5);
    message->body = kf_pg_text(res, row, first + 6);
    message->created_at = kf_pg_int(res, row, first + 7);
    message->is_private = kf_pg_int(res, row, first + 8) != 0;
    message->attachment_id = kf_pg_int(res, row, first + 9);
    message->attachment_name = kf_pg_text(res, row, first + 10);
    message->attachment_type = kf_pg_text(res, row, first + 11);
    message->attachment_size = kf_pg_int(res, row, first + 12);
}

void kf_pg_read_conversation(const PGresult *res, int row, kf_conversation_t *conversation)
{
    conversation->id = kf_pg_int(res, row, 0);
    conversation->visitor_id = kf_pg_int(res, row, 1);
    conversation->visitor_name = kf_pg_text(res, row, 2);
    conversation->status = kf_pg_text(res, row, 3);
    conversation->created_at = kf_pg_int(res, row, 4);
    conversation->updated_at = kf_pg_int(res, row, 5);
    conversation->agent_read_up_to = kf_pg_int(res, row, 6);
    conversation->visitor_read_up_to = kf_pg_int(res, row, 7);
    conversation->unread_for_agents = kf_pg_int(res, row, 8);
    conversation->unread_for_visitor = kf_pg_int(res, row, 9);
    int assignee = KF_SQLITE_CONVERSATION_ASSIGNEE_COLUMN;
    conversation->snoozed_until = kf_pg_int(res, row, assignee - 1);
    conversation->assignee = (kf_agent_t){
        .id = kf_pg_int(res, row, assignee),
        .email = kf_pg_text(res, row, assignee + 1),
        .name = kf_pg_text(res, row, assignee + 2),
        .role = kf_pg_text(res, row, assignee + 3),
        .password_hash = "",
    };
    conversation->team_id = kf_pg_int(res, row, KF_SQLITE_CONVERSATION_TEAM_COLUMN);
    conversation->team_name = kf_pg_text(res, row, KF_SQLITE_CONVERSATION_TEAM_COLUMN + 1);
    conversation->waiting_since = kf_pg_int(res, row, KF_SQLITE_CONVERSATION_WAITING_COLUMN);
    int rating = KF_SQLITE_CONVERSATION_RATING_COLUMN;
    conversation->rating = kf_pg_text(res, row, rating);
    conversation->rating_comment = kf_pg_text(res, row, rating + 1);
    conversation->rated_at = kf_pg_int(res, row, rating + 2);
    conversation->rating_current = kf_pg_int(res, row, rating + 3) != 0;
    int last = KF_SQLITE_CONVERSATION_LAST_MESSAGE_COLUMN;
    conversation->has_last_message = !kf_pg_null(res, row, last);
    if (conversation->has_last_message) {
        kf_pg_read_message(res, row, last, &conversation->last_message);
    } else {
        memset(&conversation->last_message, 0, sizeof(conversation->last_message));
        conversation->last_message.agent_name = "";
        conversation->last_message.body = "";
        conversation->last_message.attachment_name = "";
        conversation->last_message.attachment_type = "";
    }
}

void kf_pg_read_agent(const PGresult *res, int row, kf_agent_t *agent)
{
    agent->id = kf_pg_int(res, row, 0);
    agent->email = kf_pg_text(res, row, 1);
    agent->name = kf_pg_text(res, row, 2);
    agent->role = kf_pg_text(res, row, 3);
    agent->password_hash = kf_pg_text(res, row, 4);
    agent->created_at = kf_pg_int(res, row, 5);
    agent->disabled_at = kf_pg_int(res, row, 6);
    agent->capacity = kf_pg_int(res, row, 7);
    agent->open_conversations = kf_pg_int(res, row, 8);
}

void kf_pg_read_canned(const PGresult *res, int row, kf_canned_t *canned)
{
    canned->id = kf_pg_int(res, row, 0);
    canned->owner_id = kf_pg_int(res, row, 1);
    canned->shortcut = kf_pg_text(res, row, 2);
    canned->body = kf_pg_text(res, row, 3);
    canned->created_at = kf_pg_int(res, row, 4);
    canned->updated_at = kf_pg_int(res, row, 5);
}

void kf_pg_read_team(const PGresult *res, int row, kf_team_t *team, int64_t **ids)
{
    team->id = kf_pg_int(res, row, 0);
    team->name = kf_pg_text(res, row, 1);
    team->auto_assign = kf_pg_text(res, row, 2);
    team->reassign_after = kf_pg_int(res, row, 3);
    team->created_at = kf_pg_int(res, row, 4);
    const char *members = kf_pg_text(res, row, 5);
    size_t count = members[0] != '\0';
    for (const char *p = members; *p != '\0'; p++)
        count += *p == ',';
    *ids = kf_xrealloc(*ids, (count > 0 ? count : 1) * sizeof **ids);
    size_t n = 0;
    for (const char *p = members; *p != '\0' && n < count;) {
        char *end;
        (*ids)[n++] = strtoll(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
    team->member_ids = *ids;
    team->member_count = n;
}

void kf_pg_read_visitor(const PGresult *res, int row, kf_visitor_t *visitor)
{
    visitor->id = kf_pg_int(res, row, 0);
    visitor->name = kf_pg_text(res, row, 1);
    visitor->created_at = kf_pg_int(res, row, 2);
    visitor->email = kf_pg_text(res, row, 3);
    visitor->user_id = kf_pg_text(res, row, 4);
}

void kf_pg_read_visitor_page(const PGresult *res, int row, kf_visitor_page_t *page)
{
    page->id = kf_pg_int(res, row, 0);
    page->visitor_id = kf_pg_int(res, row, 1);
    page->url = kf_pg_text(res, row, 2);
    page->title = kf_pg_text(res, row, 3);
    page->referrer = kf_pg_text(res, row, 4);
    page->user_agent = kf_pg_text(res, row, 5);
    page->language = kf_pg_text(res, row, 6);
    page->timezone = kf_pg_text(res, row, 7);
    page->utc_offset = kf_pg_int(res, row, 8);
    page->seen_at = kf_pg_int(res, row, 9);
}

/* ---- the search's text ---- */

/* The code point at s (len bytes left) into *cp; returns its length (1 for a byte that starts
 * no valid sequence, which is then no word character). */
static size_t decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char b = s[0];
    size_t n = b < 0x80 ? 1 : b >= 0xF0 && b < 0xF5 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0;
    if (n == 0 || n > len) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t value = n == 1 ? b : b & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        value = value << 6 | (s[i] & 0x3F);
    }
    *cp = value;
    return n;
}

static void encode(kf_buf_t *out, uint32_t cp)
{
    char bytes[4];
    size_t n;
    if (cp < 0x80) {
        bytes[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        bytes[0] = (char)(0xC0 | cp >> 6);
        bytes[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        bytes[0] = (char)(0xE0 | cp >> 12);
        bytes[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        bytes[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        bytes[0] = (char)(0xF0 | cp >> 18);
        bytes[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        bytes[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        bytes[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    kf_buf_append(out, bytes, n);
}

/* Appends the words of text[0, len), folded, each as a quoted tsvector/tsquery lexeme followed
 * by suffix (a position, a prefix mark, an operator) as each() writes it; returns how many. */
static size_t append_words(kf_buf_t *out, const char *text, size_t len,
                           void (*each)(kf_buf_t *out, size_t index, void *data), void *data)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t words = 0;
    bool in_word = false;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += decode(p + i, len - i, &cp);
        bool word = cp != 0xFFFD && kf_search_is_word(cp);
        if (word && !in_word) {
            if (words > 0)
                each(out, words, data);
            kf_buf_append(out, "'", 1);
        } else if (!word && in_word) {
            kf_buf_append(out, "'", 1);
            words++;
        }
        in_word = word;
        if (word) {
            uint32_t folded = kf_search_fold(cp);
            if (folded == '\'' || folded == '\\')
                kf_buf_append(out, folded == '\'' ? "'" : "\\", 1); /* doubled: literal */
            encode(out, folded);
        }
    }
    if (in_word) {
        kf_buf_append(out, "'", 1);
        words++;
    }
    return words;
}

/* tsvector: each word followed by its position (from 1; PostgreSQL keeps up to 16383), so that
 * a query's phrase matches words in a row only. */
static void vector_position(kf_buf_t *out, size_t index, void *data)
{
    (void)data;
    kf_buf_printf(out, ":%zu ", index < 16383 ? index : 16383);
}

char *kf_pg_search_vector(const char *text)
{
    char *index = kf_search_index_text(text != NULL ? text : "");
    kf_buf_t out;
    kf_buf_init(&out);
    size_t words = append_words(&out, index, strlen(index), vector_position, NULL);
    if (words > 0)
        vector_position(&out, words, NULL);
    free(index);
    kf_buf_append(&out, "", 1);
    size_t len;
    return kf_buf_steal(&out, &len);
}

/* Between a phrase's words: the next one must follow at once. */
static void query_follows(kf_buf_t *out, size_t index, void *data)
{
    (void)index;
    (void)data;
    kf_buf_append_str(out, " <-> ");
}

char *kf_pg_search_query(const char *match)
{
    kf_buf_t out;
    kf_buf_init(&out);
    kf_buf_t term;
    kf_buf_init(&term);
    const char *p = match;
    size_t terms = 0;
    while (*p != '\0') {
        if (*p != '"') {
            p++;
            continue;
        }
        /* A quoted term to its closing quote ("" is a quote inside), then a '*' for a prefix. */
        kf_buf_reset(&term);
        p++;
        while (*p != '\0' && !(p[0] == '"' && p[1] != '"')) {
            kf_buf_append(&term, p, 1);
            p += p[0] == '"' ? 2 : 1;
        }
        if (*p == '"')
            p++;
        bool prefix = *p == '*';
        if (prefix)
            p++;
        size_t mark = out.len;
        kf_buf_append_str(&out, terms > 0 ? " & (" : "(");
        size_t words =
            append_words(&out, term.data != NULL ? term.data : "", term.len, query_follows, NULL);
        if (words == 0) {
            /* No word in it (FTS5 would find an empty phrase everywhere): it asks nothing. */
            out.len = mark;
            continue;
        }
        kf_buf_append_str(&out, prefix ? ":*)" : ")");
        terms++;
    }
    kf_buf_free(&term);
    kf_buf_append(&out, "", 1);
    size_t len;
    return kf_buf_steal(&out, &len);
}

char *kf_pg_visitor_search_text(const char *name, const char *email)
{
    kf_buf_t out;
    kf_buf_init(&out);
    kf_buf_printf(&out, "%s%s%s", name, name[0] != '\0' && email[0] != '\0' ? " " : "", email);
    kf_buf_append(&out, "", 1);
    size_t len;
    return kf_buf_steal(&out, &len);
}

/* ---- connections ---- */

/* A new connection to conninfo (blocking: a store thread's, or start-up's). NULL with *error
 * (a copy of libpq's message, for the caller to free) when it failed. */
static PGconn *connect_to(const char *conninfo, char **error)
{
    /* Ours first: what the conninfo says takes their place. JIT off: compiling a plan costs
     * tens of ms, and the store's queries are short ones that never gain it back. */
    const char *const keys[] = {"connect_timeout", "application_name", "options", "dbname", NULL};
    const char *const values[] = {CONNECT_TIMEOUT, "kefu",
                                  "-c jit=off -c client_min_messages=warning", conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    if (c != NULL && PQstatus(c) == CONNECTION_OK)
        return c;
    if (error != NULL) {
        const char *message = c != NULL ? PQerrorMessage(c) : "out of memory";
        *error = kf_xstrdup(message);
        /* libpq's message runs over lines (a hint indented below): one line for the log. */
        for (char *p = *error; *p != '\0'; p++) {
            if (*p == '\n' || *p == '\t')
                *p = ' ';
        }
        size_t len = strlen(*error);
        while (len > 0 && ((*error)[len - 1] == '\n' || (*error)[len - 1] == ' '))
            (*error)[--len] = '\0';
    }
    PQfinish(c);
    return NULL;
}

/* The thread's connection, reconnecting when it was lost and its backoff is over: NULL while
 * the server cannot be reached. */
static PGconn *link_get(pg_store_t *s, link_t *link)
{
    if (link->conn != NULL)
        return link->conn;
    uint64_t now = kf_clock_mono_ms();
    if (now < link->retry_at)
        return NULL;
    kf_pg_forget_prepared();
    link->conn = connect_to(s->conninfo, NULL);
    if (link->conn != NULL) {
        link->backoff_ms = BACKOFF_FIRST_MS;
        return link->conn;
    }
    link->retry_at = now + (uint64_t)link->backoff_ms;
    link->backoff_ms =
        link->backoff_ms * 2 < BACKOFF_MAX_MS ? link->backoff_ms * 2 : BACKOFF_MAX_MS;
    return NULL;
}

/* After a failure: drops the connection if it is lost, so that the next link_get reconnects. */
static void link_check(link_t *link)
{
    if (link->conn != NULL && PQstatus(link->conn) == CONNECTION_BAD) {
        kf_pg_forget_prepared();
        PQfinish(link->conn);
        link->conn = NULL;
        link->retry_at = kf_clock_mono_ms() + (uint64_t)link->backoff_ms;
    }
}

/* ---- the reader thread ---- */

/* Runs one read's queries into op->pg_read. */
static void run_read(pg_store_t *s, op_t *op)
{
    kf_pg_read_t *read = kf_xcalloc(1, sizeof *read);
    op->pg_read = read;
    PGconn *c = link_get(s, &s->reader_link);
    if (c == NULL) {
        read->rc = KF_EUNAVAIL;
        return;
    }
    if (!kf_pg_chat_read(c, op) && !kf_pg_desk_read(c, op))
        read->rc = KF_ESTORE;
    if (read->rc != 0)
        link_check(&s->reader_link);
}

static void *reader_main(void *data)
{
    pg_store_t *s = data;
    pthread_setname_np(pthread_self(), "kefu-pg-reader");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->reads.head == NULL && !s->stopping)
            pthread_cond_wait(&s->reader_wake, &s->lock);
        if (s->reads.head == NULL)
            break;
        op_list_t batch = s->reads;
        s->reads = (op_list_t){NULL, NULL};
        s->reading = true;
        pthread_mutex_unlock(&s->lock);
        for (op_t *op = batch.head; op != NULL; op = op->next)
            run_read(s, op);
        pthread_mutex_lock(&s->lock);
        kf_sqlite_list_append(&s->reads_done, batch.head, batch.tail);
        s->reading = false;
        pthread_cond_broadcast(&s->idle);
        if (s->notify != NULL)
            s->notify(s->notify_data);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- the writer thread ---- */

/* Whether op inserts a message (and so needs KF_PG_MESSAGE_LOCK first). */
static bool inserts_message(const op_t *op)
{
    return op->kind == OP_MESSAGE_ADD || (op->kind == OP_ASSIGN && op->args.transfer.note != NULL);
}

/* Runs constant SQL of several statements in one round trip (the simple query protocol). */
static int run_script(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType status = PQresultStatus(res);
    int rc = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? 0 : kf_pg_map_error(c, res);
    PQclear(res);
    return rc;
}

/* Applies a batch in one transaction, a savepoint per write so that a write's failure leaves the
 * others; sets every write's result.rc: its own failure, or the batch's (a failed BEGIN, lock or
 * COMMIT, a lost connection) for those that had none. Round trips are what a write costs beside
 * the commit's sync, so the batch spends few: BEGIN and the message lock go together, a write
 * alone in its batch needs no savepoint (its failure rolls the transaction back), and between
 * two writes one trip releases the last savepoint and sets the next (a rolled-back one stays
 * set for the next write). */
static void apply_batch(pg_store_t *s, op_t *batch)
{
    PGconn *c = link_get(s, &s->writer_link);
    bool messages = false;
    for (op_t *op = batch; op != NULL; op = op->next)
        messages = messages || inserts_message(op);
    bool lone = batch->next == NULL;
    /* Message ids become visible in id order (docs/ARCHITECTURE.md): the lock is taken before
     * the first id is drawn and held until the commit, on every node. */
    int rc = c == NULL  ? KF_EUNAVAIL
             : messages ? run_script(c, lone ? "BEGIN; " KF_PG_MESSAGE_LOCK
                                             : "BEGIN; " KF_PG_MESSAGE_LOCK "; SAVEPOINT w")
                        : run_script(c, lone ? "BEGIN" : "BEGIN; SAVEPOINT w");
    bool failed_alone = false;
    for (op_t *op = batch; rc == 0 && op != NULL; op = op->next) {
        int op_rc = KF_ESTORE;
        if (!kf_pg_chat_apply(c, op, &op_rc) && !kf_pg_desk_apply(c, op, &op_rc))
            op_rc = KF_ESTORE;
        op->result.rc = op_rc;
        if (lone)
            failed_alone = op_rc != 0;
        else if (op_rc != 0)
            rc = run_script(c, "ROLLBACK TO SAVEPOINT w");
        else if (op->next != NULL)
            rc = run_script(c, "RELEASE SAVEPOINT w; SAVEPOINT w");
    }
    if (rc == 0 && failed_alone) {
        /* Nothing of the batch is left to commit; a lost connection is found by link_check. */
        if (PQtransactionStatus(c) != PQTRANS_IDLE)
            run_script(c, "ROLLBACK");
        link_check(&s->writer_link);
        return;
    }
    if (rc == 0)
        rc = run_script(c, "COMMIT");
    if (rc != 0) {
        if (c != NULL && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
            run_script(c, "ROLLBACK");
        link_check(&s->writer_link);
        for (op_t *op = batch; op != NULL; op = op->next) {
            if (op->result.rc == 0) {
                op->result = (kf_store_result_t){.rc = rc};
            }
        }
    }
}

/* Waits for writes; while the connection is lost, wakes at its retry time to reconnect, so that
 * the store says it takes writes again without waiting for one (writer_back). */
static void writer_wait(pg_store_t *s)
{
    while (s->writes.head == NULL && !s->stopping) {
        if (s->writer_link.conn != NULL) {
            pthread_cond_wait(&s->writer_wake, &s->lock);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t now = kf_clock_mono_ms();
        uint64_t wait_ms = s->writer_link.retry_at > now ? s->writer_link.retry_at - now : 0;
        until.tv_sec += (time_t)(wait_ms / 1000);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (wait_ms > 0)
            pthread_cond_timedwait(&s->writer_wake, &s->lock, &until);
        if (s->writes.head != NULL || s->stopping)
            break;
        pthread_mutex_unlock(&s->lock);
        bool back = link_get(s, &s->writer_link) != NULL;
        pthread_mutex_lock(&s->lock);
        if (back) {
            s->writer_back = true;
            if (s->notify != NULL)
                s->notify(s->notify_data);
        }
    }
}

static void *writer_main(void *data)
{
    pg_store_t *s = data;
    pthread_setname_np(pthread_self(), "kefu-pg-writer");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        writer_wait(s);
        if (s->writes.head == NULL)
            break; /* stopping, and nothing is left */
        op_list_t batch = s->writes;
        s->writes = (op_list_t){NULL, NULL};
        s->writing = true;
        pthread_mutex_unlock(&s->lock);

        uint64_t began_us = kf_clock_mono_us();
        apply_batch(s, batch.head);
        kf_histogram_observe_us(&kf_metrics.store_write, kf_clock_mono_us() - began_us);
        kf_sqlite_count_messages(batch.head);

        pthread_mutex_lock(&s->lock);
        kf_sqlite_list_append(&s->writes_done, batch.head, batch.tail);
        s->writing = false;
        pthread_cond_broadcast(&s->idle);
        if (s->notify != NULL)
            s->notify(s->notify_data);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- the owner thread ---- */

int kf_pg_queue(kf_store_t *store, op_t *op)
{
    pg_store_t *s = (pg_store_t *)store;
    pthread_mutex_lock(&s->lock);
    if (op->kind < OP_READ_COUNT) {
        kf_sqlite_list_append(&s->reads, op, op);
        pthread_cond_signal(&s->reader_wake);
    } else {
        kf_sqlite_list_append(&s->writes, op, op);
        pthread_cond_signal(&s->writer_wake);
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static void free_op(op_t *op)
{
    if (op->pg_read != NULL) {
        for (int i = 0; i < op->pg_read->count; i++)
            PQclear(op->pg_read->res[i]);
        free(op->pg_read);
    }
    kf_sqlite_op_free(op);
}

/* The finished writes' callbacks first, in queue order, then the finished reads'. */
static void pg_complete(kf_store_t *store)
{
    pg_store_t *s = (pg_store_t *)store;
    if (s->completing)
        return;
    s->completing = true;
    pthread_mutex_lock(&s->lock);
    op_t *write = s->writes_done.head;
    op_t *read = s->reads_done.head;
    s->writes_done = (op_list_t){NULL, NULL};
    s->reads_done = (op_list_t){NULL, NULL};
    bool back = s->writer_back;
    s->writer_back = false;
    pthread_mutex_unlock(&s->lock);
    if (back)
        kf_store_note_write(store, 0);
    while (write != NULL) {
        op_t *next = write->next;
        kf_store_note_write(store, write->result.rc);
        write->done(write->ctx, &write->result);
        free_op(write);
        write = next;
    }
    while (read != NULL) {
        op_t *next = read->next;
        if (read->pg_read->rc != 0 || !kf_pg_chat_deliver(read)) {
            if (read->pg_read->rc != 0 || !kf_pg_desk_deliver(read)) {
                kf_store_result_t result = {.rc = read->pg_read->rc != 0 ? read->pg_read->rc
                                                                         : KF_ESTORE};
                read->done(read->ctx, &result);
            }
        }
        free_op(read);
        read = next;
    }
    s->completing = false;
}

static void pg_flush(kf_store_t *store)
{
    pg_store_t *s = (pg_store_t *)store;
    assert(!s->completing);
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (s->reads.head != NULL || s->writes.head != NULL || s->reading || s->writing)
            pthread_cond_wait(&s->idle, &s->lock);
        bool finished = s->reads_done.head != NULL || s->writes_done.head != NULL;
        pthread_mutex_unlock(&s->lock);
        if (!finished)
            break;
        pg_complete(store);
    }
}

static void pg_set_notify(kf_store_t *store, void (*notify)(void *data), void *data)
{
    pg_store_t *s = (pg_store_t *)store;
    pthread_mutex_lock(&s->lock);
    s->notify = notify;
    s->notify_data = data;
    pthread_mutex_unlock(&s->lock);
}

static void stop_threads(pg_store_t *s)
{
    if (!s->threads_running)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    s->notify = NULL;
    pthread_cond_broadcast(&s->reader_wake);
    pthread_cond_broadcast(&s->writer_wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->reader, NULL);
    pthread_join(s->writer, NULL);
    s->threads_running = false;
}

static void destroy(pg_store_t *s)
{
    PQfinish(s->reader_link.conn);
    PQfinish(s->writer_link.conn);
    pthread_cond_destroy(&s->idle);
    pthread_cond_destroy(&s->writer_wake);
    pthread_cond_destroy(&s->reader_wake);
    pthread_mutex_destroy(&s->lock);
    free(s->conninfo);
    free(s);
}

/* Whatever is queued runs, and its callbacks are called, before the store goes. */
static void pg_close(kf_store_t *store)
{
    pg_store_t *s = (pg_store_t *)store;
    pg_flush(store);
    stop_threads(s);
    destroy(s);
}

static const kf_store_ops_t pg_ops = {
    .close = pg_close,
    KF_SQLITE_FRONT_OPS,
    .complete = pg_complete,
    .flush = pg_flush,
    .set_notify = pg_set_notify,
};

/* ---- opening ---- */

/* "host:port/db" of a connection, for a message (never the password). */
static void describe(PGconn *c, const char *conninfo, char *out, size_t len)
{
    if (c != NULL && PQhost(c) != NULL)
        snprintf(out, len, "%s:%s/%s", PQhost(c), PQport(c) != NULL ? PQport(c) : "",
                 PQdb(c) != NULL ? PQdb(c) : "");
    else
        snprintf(out, len, "%s", conninfo);
}

int kf_store_open_postgres_why(const char *conninfo, kf_store_t **out, char *why, size_t why_len)
{
    if (conninfo == NULL || out == NULL)
        return KF_EINVAL;
    *out = NULL;
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    /* Checked before anything connects: a bad conninfo says so, not "could not connect". */
    char *parse_error = NULL;
    PQconninfoOption *options = PQconninfoParse(conninfo, &parse_error);
    if (options == NULL) {
        if (why != NULL)
            snprintf(why, why_len, "PostgreSQL address %s: %s", "(as given)",
                     parse_error != NULL ? parse_error : "cannot be parsed");
        PQfreemem(parse_error);
        return KF_EINVAL;
    }
    PQconninfoFree(options);

    pg_store_t *s = kf_xcalloc(1, sizeof *s);
    s->base.ops = &pg_ops;
    s->base.queue = kf_pg_queue;
    s->conninfo = kf_xstrdup(conninfo);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->reader_wake, NULL);
    pthread_cond_init(&s->writer_wake, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->reader_link.backoff_ms = BACKOFF_FIRST_MS;
    s->writer_link.backoff_ms = BACKOFF_FIRST_MS;

    char *error = NULL;
    PQconninfoOption *parsed = PQconninfoParse(conninfo, NULL);
    char where[256] = "";
    for (PQconninfoOption *o = parsed; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "port") == 0 ||
            strcmp(o->keyword, "dbname") == 0) {
            size_t used = strlen(where);
            snprintf(where + used, sizeof where - used, "%s%s=%s", used > 0 ? " " : "", o->keyword,
                     o->val != NULL ? o->val : "(default)");
        }
    }
    PQconninfoFree(parsed);
    /* The migration's connection is its own, closed before the threads' are made: a connection
     * stays with one thread for its life (the prepared statements' table is per thread). */
    PGconn *setup = connect_to(conninfo, &error);
    if (setup == NULL) {
        if (why != NULL)
            snprintf(why, why_len, "cannot connect to PostgreSQL (%s): %s", where, error);
        free(error);
        destroy(s);
        return KF_EUNAVAIL;
    }
    kf_pg_forget_prepared();
    const char *migrate_error = NULL;
    int rc = kf_pg_migrate(setup, &migrate_error);
    if (rc != 0) {
        char name[256];
        describe(setup, conninfo, name, sizeof name);
        if (why != NULL)
            snprintf(why, why_len, "PostgreSQL database %s: %s (%s)", name,
                     migrate_error != NULL ? migrate_error : "cannot be prepared",
                     PQerrorMessage(setup));
    }
    kf_pg_forget_prepared();
    PQfinish(setup);
    if (rc != 0) {
        destroy(s);
        return rc == KF_EUNAVAIL ? KF_EUNAVAIL : KF_ESTORE;
    }
    s->writer_link.conn = connect_to(conninfo, &error);
    if (s->writer_link.conn != NULL)
        s->reader_link.conn = connect_to(conninfo, &error);
    if (s->reader_link.conn == NULL) {
        if (why != NULL)
            snprintf(why, why_len, "cannot connect to PostgreSQL (%s): %s", where, error);
        free(error);
        destroy(s);
        return KF_EUNAVAIL;
    }
    if (pthread_create(&s->reader, NULL, reader_main, s) != 0) {
        destroy(s);
        return KF_ESTORE;
    }
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_broadcast(&s->reader_wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->reader, NULL);
        destroy(s);
        return KF_ESTORE;
    }
    s->threads_running = true;
    *out = &s->base;
    return 0;
}

int kf_store_open_postgres(const char *conninfo, kf_store_t **out)
{
    return kf_store_open_postgres_why(conninfo, out, NULL, 0);
}
