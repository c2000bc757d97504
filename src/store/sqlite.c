/* sqlite.c: the SQLite backend of the store interface: schema and migrations, and every operation
 * as a statement prepared once at open and kept for the life of the connection. */
#include "store/store.h"

#include "base/buf.h"
#include "base/err.h"

#include <assert.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Migrations, in order: entry i moves the schema from version i to version i + 1. Append new
 * entries; never edit a released one, since databases in the field have already run it. The
 * settings table (which holds schema_version) is created before any migration runs. */
static const char *const migrations[] = {
    /* 1: the first schema. Visitor messages have agent_id NULL; agent messages name their agent.
     * messages.id is AUTOINCREMENT so that an id is never reused, even after a delete: ids are
     * resume cursors. The messages index carries sender so that unread counts are answered from
     * the index alone. There is no index on messages.agent_id or sessions.agent_id because
     * nothing deletes agents yet; add them with the operation that does. */
    "CREATE TABLE agents ("
    "  id INTEGER PRIMARY KEY,"
    "  email TEXT UNIQUE NOT NULL,"
    "  name TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  password_hash TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE sessions ("
    "  token_hash TEXT PRIMARY KEY,"
    "  agent_id INTEGER NOT NULL REFERENCES agents (id),"
    "  csrf TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX sessions_by_expiry ON sessions (expires_at);"
    "CREATE TABLE visitors ("
    "  id INTEGER PRIMARY KEY,"
    "  token_hash TEXT UNIQUE NOT NULL,"
    "  name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE conversations ("
    "  id INTEGER PRIMARY KEY,"
    "  visitor_id INTEGER NOT NULL REFERENCES visitors (id),"
    "  status TEXT NOT NULL CHECK (status IN ('open', 'closed')),"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  agent_read_up_to INTEGER NOT NULL DEFAULT 0,"
    "  visitor_read_up_to INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX conversations_by_visitor ON conversations (visitor_id);"
    "CREATE INDEX conversations_by_activity ON conversations (updated_at DESC, id DESC);"
    "CREATE TABLE messages ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  conversation_id INTEGER NOT NULL REFERENCES conversations (id),"
    "  sender INTEGER NOT NULL CHECK (sender IN (0, 1)),"
    "  agent_id INTEGER REFERENCES agents (id),"
    "  body TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  CHECK ((sender = 0) = (agent_id IS NULL))"
    ");"
    "CREATE INDEX messages_by_conversation ON messages (conversation_id, id, sender);",
};

#define MIGRATION_COUNT ((int64_t)(sizeof(migrations) / sizeof(migrations[0])))

/* The settings key that holds the schema version; reserved, setting_set refuses it. */
#define SCHEMA_VERSION_KEY "schema_version"

/* The columns of a message row (read by read_message) over messages m, conversations c and
 * agents a (LEFT JOINed: NULL for visitor messages). */
#define MESSAGE_COLUMNS                                                                            \
    "m.id, m.conversation_id, c.visitor_id, m.sender, COALESCE(m.agent_id, 0), "                   \
    "COALESCE(a.name, ''), m.body, m.created_at"

/* A conversation row (read by read_conversation): the conversation, its visitor's name, the two
 * unread counts and the newest message (all NULL when it has none).
 * Trade-off: unread counts are counted on every read, by a range scan of the covering index
 * messages_by_conversation (conversation_id, id, sender) past the read mark. That costs
 * O(unread messages) per conversation, which is small while people read their chats; keep
 * counters in the conversations row if lists of long-unread conversations get slow. */
#define CONVERSATION_SELECT                                                                        \
    "SELECT c.id, c.visitor_id, v.name, c.status, c.created_at, c.updated_at, "                    \
    "c.agent_read_up_to, c.visitor_read_up_to, "                                                   \
    "(SELECT count(*) FROM messages u WHERE u.conversation_id = c.id "                             \
    "  AND u.id > c.agent_read_up_to AND u.sender = 0), "                                          \
    "(SELECT count(*) FROM messages u WHERE u.conversation_id = c.id "                             \
    "  AND u.id > c.visitor_read_up_to AND u.sender = 1), " MESSAGE_COLUMNS " "                    \
    "FROM conversations c JOIN visitors v ON v.id = c.visitor_id "                                 \
    "LEFT JOIN messages m ON m.id = (SELECT l.id FROM messages l WHERE l.conversation_id = c.id "  \
    "  ORDER BY l.id DESC LIMIT 1) "                                                               \
    "LEFT JOIN agents a ON a.id = m.agent_id "
#define CONVERSATION_LAST_MESSAGE_COLUMN 10

/* Raises a read mark, never lowering it and never past the conversation's newest message (so a
 * mark sent too high cannot pre-read messages that do not exist yet). */
#define MARK_READ(column)                                                                          \
    "UPDATE conversations SET " column " = MAX(" column ", MIN(?2, COALESCE("                      \
    "(SELECT id FROM messages WHERE conversation_id = ?1 ORDER BY id DESC LIMIT 1), 0))) "         \
    "WHERE id = ?1"

/* X(name, sql): every statement the store runs, prepared once at open. */
#define KF_SQLITE_STATEMENTS(X)                                                                    \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                    \
    X(COMMIT, "COMMIT")                                                                            \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    X(SETTING_GET, "SELECT value FROM settings WHERE key = ?1")                                    \
    X(SETTING_SET, "INSERT INTO settings (key, value) VALUES (?1, ?2) "                            \
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value")                       \
    X(AGENT_CREATE, "INSERT INTO agents (email, name, role, password_hash, created_at) "           \
                    "VALUES (?1, ?2, ?3, ?4, ?5)")                                                 \
    X(AGENT_COUNT, "SELECT count(*) FROM agents")                                                  \
    X(AGENT_BY_EMAIL, "SELECT id, email, name, role, password_hash, created_at FROM agents "       \
                      "WHERE email = ?1")                                                          \
    X(AGENT_BY_ID, "SELECT id, email, name, role, password_hash, created_at FROM agents "          \
                   "WHERE id = ?1")                                                                \
    X(AGENT_NAME, "SELECT name FROM agents WHERE id = ?1")                                         \
    X(SESSION_PURGE, "DELETE FROM sessions WHERE expires_at <= ?1")                                \
    X(SESSION_CREATE, "INSERT INTO sessions (token_hash, agent_id, csrf, created_at, expires_at) " \
                      "VALUES (?1, ?2, ?3, ?4, ?5)")                                               \
    X(SESSION_GET, "SELECT agent_id, csrf, expires_at FROM sessions "                              \
                   "WHERE token_hash = ?1 AND expires_at > ?2")                                    \
    X(SESSION_DELETE, "DELETE FROM sessions WHERE token_hash = ?1")                                \
    X(VISITOR_CREATE, "INSERT INTO visitors (token_hash, name, created_at) VALUES (?1, ?2, ?3)")   \
    X(VISITOR_BY_TOKEN, "SELECT id, name FROM visitors WHERE token_hash = ?1")                     \
    X(VISITOR_EXISTS, "SELECT 1 FROM visitors WHERE id = ?1")                                      \
    X(CONVERSATION_FIND_OPEN, "SELECT id FROM conversations WHERE visitor_id = ?1 "                \
                              "AND status = 'open' ORDER BY id DESC LIMIT 1")                      \
    X(CONVERSATION_CREATE, "INSERT INTO conversations (visitor_id, status, created_at, "           \
                           "updated_at, agent_read_up_to, visitor_read_up_to) "                    \
                           "VALUES (?1, 'open', ?2, ?2, 0, 0)")                                    \
    X(CONVERSATION_GET, CONVERSATION_SELECT "WHERE c.id = ?1")                                     \
    X(CONVERSATION_LIST, CONVERSATION_SELECT "ORDER BY c.updated_at DESC, c.id DESC LIMIT ?1")     \
    X(CONVERSATION_SET_STATUS, "UPDATE conversations SET status = ?2 WHERE id = ?1")               \
    X(CONVERSATION_MARK_READ_AGENTS, MARK_READ("agent_read_up_to"))                                \
    X(CONVERSATION_MARK_READ_VISITOR, MARK_READ("visitor_read_up_to"))                             \
    X(CONVERSATION_VISITOR, "SELECT visitor_id FROM conversations WHERE id = ?1")                  \
    X(CONVERSATION_TOUCH, "UPDATE conversations SET updated_at = ?2 WHERE id = ?1")                \
    X(MESSAGE_INSERT, "INSERT INTO messages "                                                      \
                      "(conversation_id, sender, agent_id, body, created_at) "                     \
                      "VALUES (?1, ?2, ?3, ?4, ?5)")                                               \
    X(MESSAGES_IN_CONVERSATION,                                                                    \
      "SELECT " MESSAGE_COLUMNS " FROM messages m "                                                \
      "JOIN conversations c ON c.id = m.conversation_id LEFT JOIN agents a ON a.id = m.agent_id "  \
      "WHERE m.conversation_id = ?1 AND m.id > ?2 ORDER BY m.id LIMIT ?3")                         \
    /* CROSS JOIN pins the loop order: the visitor's few conversations outside, then a range of    \
     * messages_by_conversation in each, then a sort of just those rows. Left to itself the        \
     * planner may walk every message in id order to avoid the sort. */                            \
    X(MESSAGES_OF_VISITOR,                                                                         \
      "SELECT " MESSAGE_COLUMNS " FROM conversations c "                                           \
      "CROSS JOIN messages m ON m.conversation_id = c.id LEFT JOIN agents a ON a.id = m.agent_id " \
      "WHERE c.visitor_id = ?1 AND m.id > ?2 ORDER BY m.id LIMIT ?3")                              \
    X(MESSAGES_ALL,                                                                                \
      "SELECT " MESSAGE_COLUMNS " FROM messages m "                                                \
      "JOIN conversations c ON c.id = m.conversation_id LEFT JOIN agents a ON a.id = m.agent_id "  \
      "WHERE m.id > ?1 ORDER BY m.id LIMIT ?2")

typedef enum {
#define KF_SQLITE_STMT_ENUM(name, sql) STMT_##name,
    KF_SQLITE_STATEMENTS(KF_SQLITE_STMT_ENUM)
#undef KF_SQLITE_STMT_ENUM
        STMT_COUNT
} stmt_id_t;

static const char *const statement_sql[STMT_COUNT] = {
#define KF_SQLITE_STMT_SQL(name, sql) sql,
    KF_SQLITE_STATEMENTS(KF_SQLITE_STMT_SQL)
#undef KF_SQLITE_STMT_SQL
};

/* One connection and its statements. A connection is used by one thread only. */
typedef struct conn {
    sqlite3 *db;
    sqlite3_stmt *statements[STMT_COUNT]; /* prepared at open, finalized at close */
} conn_t;

typedef enum { WRITE_MESSAGE, WRITE_MARK_READ } write_kind_t;

/* A batched write, queued by the caller's thread, applied by the writer's, handed back to the
 * caller's by complete(). */
typedef struct write {
    struct write *next;
    write_kind_t kind;
    int64_t conversation_id; /* 0: the visitor's open conversation (WRITE_MESSAGE) */
    int64_t visitor_id;      /* with conversation_id 0 */
    kf_sender_t sender;      /* the author; the reader for WRITE_MARK_READ */
    int64_t agent_id;
    int64_t up_to;
    int64_t now;
    char *body; /* a copy, freed with the write */
    kf_store_done_cb done;
    void *ctx;
    kf_store_result_t result; /* filled by the writer */
    char *agent_name;         /* result.message.agent_name's storage */
} write_t;

typedef struct write_list {
    write_t *head;
    write_t *tail;
} write_list_t;

/* The SQLite store handle. The caller's thread (the event loop) owns main: reads and the rare
 * unbatched writes. The writer thread owns writer: it applies the batched writes, a batch per
 * transaction, so that the loop never waits for a commit's sync. */
typedef struct sqlite_store {
    kf_store_t base; /* first, so a kf_store_t * is a sqlite_store_t * */
    conn_t main;
    conn_t writer;
    pthread_t writer_thread;
    bool writer_running;
    pthread_mutex_t queue_lock; /* guards the lists, the flags and notify below */
    pthread_cond_t queue_wake;  /* the writer waits here for writes */
    pthread_cond_t queue_idle;  /* flush waits here for the writer */
    write_list_t queued;        /* waiting for the writer, in order */
    write_list_t finished;      /* applied (or failed), waiting for complete() */
    bool writing;               /* the writer is applying a batch it took off queued */
    bool writer_stopping;
    void (*notify)(void *data);
    void *notify_data;
    /* The write lock between the two connections: the loop's unbatched writes take it rather
     * than spin in SQLite's busy handler while the writer holds the database's. gate_waiting
     * lets the loop in between two batches. */
    pthread_mutex_t gate;
    atomic_int gate_waiting;
    /* The checkpointer: a thread with its own connection that copies the WAL back into the
     * database, so that no writer pays for it inside a commit. */
    pthread_t checkpointer;
    bool checkpointer_running;
    sqlite3 *checkpoint_db; /* the thread's connection */
    pthread_mutex_t lock;   /* guards the two flags below */
    pthread_cond_t wake;
    bool checkpoint_wanted; /* the WAL has grown past checkpoint_pages */
    bool stopping;
    atomic_int checkpoint_pages; /* see CHECKPOINT_PAGES */
} sqlite_store_t;

/* WAL pages after which a checkpoint is asked for, unless set otherwise. Well above SQLite's
 * automatic 1000: a page rewritten many times between two checkpoints (a busy conversation's row,
 * the index leaves of recent activity) is copied back once, and the log starts over (holding the
 * writer for a few milliseconds, see the checkpointer) less often: at 10,000 msg/s, p99 went from
 * 6.2-6.9 ms with 4,000 pages to 4.8-5.5 ms with 16,000. The log file keeps its largest size,
 * about 4120 bytes per page (66 MB here), so that later commits overwrite it rather than grow
 * it. */
#define CHECKPOINT_PAGES 16000
#define MAX_CHECKPOINT_PAGES (1 << 24) /* a 64 GiB log: past any sense, short of overflow */

/* Pages copied by the last passive checkpoint of a chase under which the checkpointer holds the
 * writer back to copy the rest and let the log start over; see checkpoint_round. */
#define RESTART_TAIL_PAGES 64

/* Passive checkpoints tried, chasing the writer, before giving up on a restart for this round. */
#define CHASE_ROUNDS 8

static sqlite_store_t *from_base(kf_store_t *store)
{
    return (sqlite_store_t *)store;
}

/* Returns a kept statement, ready for binding. A callback may call other operations on the
 * store, but not the operation it is called from: that would reset the statement under it. */
static sqlite3_stmt *statement(conn_t *c, stmt_id_t id)
{
    sqlite3_stmt *st = c->statements[id];
    assert(!sqlite3_stmt_busy(st));
    return st;
}

/* Resets a statement after use and drops its bindings, which may point at borrowed strings. */
static void finish(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Maps a failed SQLite result code (extended codes are on) to a KF_E* code. */
static int map_error(int code)
{
    if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY)
        return KF_EEXISTS;
    return KF_ESTORE;
}

/* Binds text without copying: the string must outlive the step, which it does, since every
 * operation steps and resets before returning. NULL binds "" (columns are NOT NULL). */
static int bind_text(sqlite3_stmt *st, int index, const char *text)
{
    int code = sqlite3_bind_text(st, index, text != NULL ? text : "", -1, SQLITE_STATIC);
    return code == SQLITE_OK ? 0 : map_error(code);
}

static int bind_int64(sqlite3_stmt *st, int index, int64_t value)
{
    int code = sqlite3_bind_int64(st, index, value);
    return code == SQLITE_OK ? 0 : map_error(code);
}

/* Binds a row limit; LIMIT takes a signed 64-bit integer. */
static int bind_limit(sqlite3_stmt *st, int index, size_t limit)
{
    return bind_int64(st, index, limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit);
}

/* Steps a statement that returns no rows and resets it. Returns 0 or a KF_E* code. */
static int run(sqlite3_stmt *st)
{
    int code = sqlite3_step(st);
    finish(st);
    return code == SQLITE_DONE ? 0 : map_error(code);
}

/* Steps a statement to its first row: 0 on a row (the statement stays positioned on it; the
 * caller finishes it), KF_ENOTFOUND when there is none, else a KF_E* code. */
static int step_row(sqlite3_stmt *st)
{
    int code = sqlite3_step(st);
    if (code == SQLITE_ROW)
        return 0;
    if (code == SQLITE_DONE)
        return KF_ENOTFOUND;
    return map_error(code);
}

/* A text column, "" for NULL. The pointer is valid until the statement steps or resets. */
static const char *column_text(sqlite3_stmt *st, int column)
{
    const char *text = (const char *)sqlite3_column_text(st, column);
    return text != NULL ? text : "";
}

/* Copies a text column into out (NUL-terminated); KF_ETOOBIG when it does not fit. */
static int copy_column(sqlite3_stmt *st, int column, char *out, size_t size)
{
    const char *text = column_text(st, column);
    size_t len = (size_t)sqlite3_column_bytes(st, column);
    if (len >= size) {
        if (size > 0)
            out[0] = '\0';
        return KF_ETOOBIG;
    }
    memcpy(out, text, len);
    out[len] = '\0';
    return 0;
}

static int begin(conn_t *c)
{
    return run(statement(c, STMT_BEGIN));
}

/* Rolls back the open transaction, if SQLite has not already done so after an error. */
static void rollback(conn_t *c)
{
    if (!sqlite3_get_autocommit(c->db))
        run(statement(c, STMT_ROLLBACK));
}

/* Commits, or rolls back when the commit fails. */
static int commit(conn_t *c)
{
    int rc = run(statement(c, STMT_COMMIT));
    if (rc != 0)
        rollback(c);
    return rc;
}

/* The loop's and the checkpointer's side of the write lock: around each of the loop's unbatched
 * writes, and the checkpointer's copy of the log's tail. */
static void gate_enter(sqlite_store_t *s)
{
    atomic_fetch_add(&s->gate_waiting, 1);
    pthread_mutex_lock(&s->gate);
    atomic_fetch_sub(&s->gate_waiting, 1);
}

static void gate_leave(sqlite_store_t *s)
{
    pthread_mutex_unlock(&s->gate);
}

/* run() for one of the loop's unbatched writes (each its own transaction). */
static int run_gated(sqlite_store_t *s, sqlite3_stmt *st)
{
    gate_enter(s);
    int rc = run(st);
    gate_leave(s);
    return rc;
}

/* Fills message from the MESSAGE_COLUMNS that start at column first. */
static void read_message(sqlite3_stmt *st, int first, kf_message_t *message)
{
    message->id = sqlite3_column_int64(st, first);
    message->conversation_id = sqlite3_column_int64(st, first + 1);
    message->visitor_id = sqlite3_column_int64(st, first + 2);
    bool by_agent = sqlite3_column_int64(st, first + 3) == KF_SENDER_AGENT;
    message->sender = by_agent ? KF_SENDER_AGENT : KF_SENDER_VISITOR;
    message->agent_id = sqlite3_column_int64(st, first + 4);
    message->agent_name = column_text(st, first + 5);
    message->body = column_text(st, first + 6);
    message->created_at = sqlite3_column_int64(st, first + 7);
}

static void read_conversation(sqlite3_stmt *st, kf_conversation_t *conversation)
{
    conversation->id = sqlite3_column_int64(st, 0);
    conversation->visitor_id = sqlite3_column_int64(st, 1);
    conversation->visitor_name = column_text(st, 2);
    conversation->status = column_text(st, 3);
    conversation->created_at = sqlite3_column_int64(st, 4);
    conversation->updated_at = sqlite3_column_int64(st, 5);
    conversation->agent_read_up_to = sqlite3_column_int64(st, 6);
    conversation->visitor_read_up_to = sqlite3_column_int64(st, 7);
    conversation->unread_for_agents = sqlite3_column_int64(st, 8);
    conversation->unread_for_visitor = sqlite3_column_int64(st, 9);
    conversation->has_last_message =
        sqlite3_column_type(st, CONVERSATION_LAST_MESSAGE_COLUMN) != SQLITE_NULL;
    if (conversation->has_last_message) {
        read_message(st, CONVERSATION_LAST_MESSAGE_COLUMN, &conversation->last_message);
    } else {
        memset(&conversation->last_message, 0, sizeof(conversation->last_message));
        conversation->last_message.agent_name = "";
        conversation->last_message.body = "";
    }
}

static void read_agent(sqlite3_stmt *st, kf_agent_t *agent)
{
    agent->id = sqlite3_column_int64(st, 0);
    agent->email = column_text(st, 1);
    agent->name = column_text(st, 2);
    agent->role = column_text(st, 3);
    agent->password_hash = column_text(st, 4);
    agent->created_at = sqlite3_column_int64(st, 5);
}

/* Steps a bound message query to the end, calling cb with each row; stops early when cb returns
 * non-zero and returns that value. Finishes the statement. */
static int each_message(sqlite3_stmt *st, kf_store_message_cb cb, void *ctx)
{
    int rc = 0;
    for (;;) {
        int code = sqlite3_step(st);
        if (code == SQLITE_DONE)
            break;
        if (code != SQLITE_ROW) {
            rc = map_error(code);
            break;
        }
        kf_message_t message;
        read_message(st, 0, &message);
        rc = cb(ctx, &message);
        if (rc != 0)
            break;
    }
    finish(st);
    return rc;
}

/* As each_message, for conversation rows. */
static int each_conversation(sqlite3_stmt *st, kf_store_conversation_cb cb, void *ctx)
{
    int rc = 0;
    for (;;) {
        int code = sqlite3_step(st);
        if (code == SQLITE_DONE)
            break;
        if (code != SQLITE_ROW) {
            rc = map_error(code);
            break;
        }
        kf_conversation_t conversation;
        read_conversation(st, &conversation);
        rc = cb(ctx, &conversation);
        if (rc != 0)
            break;
    }
    finish(st);
    return rc;
}

static void checkpointer_stop(sqlite_store_t *s);

static void writer_stop(sqlite_store_t *s);
static void conn_close(conn_t *c);

/* Whatever is queued is committed and its callbacks run before the store goes. */
static void sqlite_close(kf_store_t *store)
{
    sqlite_store_t *s = from_base(store);
    writer_stop(s);
    checkpointer_stop(s);
    conn_close(&s->writer);
    conn_close(&s->main);
    pthread_mutex_destroy(&s->gate);
    free(s);
}

static int sqlite_setting_get(kf_store_t *store, const char *key, char *value_out,
                              size_t value_size)
{
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_SETTING_GET);
    int rc = bind_text(st, 1, key);
    if (rc == 0)
        rc = step_row(st);
    if (rc == 0)
        rc = copy_column(st, 0, value_out, value_size);
    finish(st);
    return rc;
}

static int sqlite_setting_set(kf_store_t *store, const char *key, const char *value)
{
    /* The schema version belongs to the migrations; a caller overwriting it would make the next
     * open skip or repeat them. */
    if (key == NULL || strcmp(key, SCHEMA_VERSION_KEY) == 0)
        return KF_EINVAL;
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_SETTING_SET);
    int rc = bind_text(st, 1, key);
    if (rc == 0)
        rc = bind_text(st, 2, value);
    if (rc == 0)
        return run_gated(from_base(store), st);
    finish(st);
    return rc;
}

static int sqlite_agent_create(kf_store_t *store, const char *email, const char *name,
                               const char *role, const char *password_hash, int64_t now,
                               int64_t *id_out)
{
    sqlite_store_t *s = from_base(store);
    sqlite3_stmt *st = statement(&s->main, STMT_AGENT_CREATE);
    int rc = bind_text(st, 1, email);
    if (rc == 0)
        rc = bind_text(st, 2, name);
    if (rc == 0)
        rc = bind_text(st, 3, role);
    if (rc == 0)
        rc = bind_text(st, 4, password_hash);
    if (rc == 0)
        rc = bind_int64(st, 5, now);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    rc = run_gated(s, st);
    if (rc == 0 && id_out != NULL)
        *id_out = sqlite3_last_insert_rowid(s->main.db);
    return rc;
}

static int sqlite_agent_count(kf_store_t *store, int64_t *count_out)
{
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_AGENT_COUNT);
    int rc = step_row(st);
    if (rc == 0)
        *count_out = sqlite3_column_int64(st, 0);
    finish(st);
    return rc;
}

/* Calls cb with the one agent row a bound query finds, or returns KF_ENOTFOUND. */
static int one_agent(sqlite3_stmt *st, kf_store_agent_cb cb, void *ctx)
{
    int rc = step_row(st);
    if (rc == 0) {
        kf_agent_t agent;
        read_agent(st, &agent);
        rc = cb(ctx, &agent);
    }
    finish(st);
    return rc;
}

static int sqlite_agent_by_email(kf_store_t *store, const char *email, kf_store_agent_cb cb,
                                 void *ctx)
{
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_AGENT_BY_EMAIL);
    int rc = bind_text(st, 1, email);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    return one_agent(st, cb, ctx);
}

static int sqlite_agent_by_id(kf_store_t *store, int64_t id, kf_store_agent_cb cb, void *ctx)
{
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_AGENT_BY_ID);
    int rc = bind_int64(st, 1, id);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    return one_agent(st, cb, ctx);
}

/* Also deletes every expired session: nothing else ever does, logins are rare, and the expiry
 * index makes it a short range delete. */
static int sqlite_session_create(kf_store_t *store, const char *token_hash, int64_t agent_id,
                                 const char *csrf, int64_t now, int64_t expires_at)
{
    sqlite_store_t *s = from_base(store);
    sqlite3_stmt *purge = statement(&s->main, STMT_SESSION_PURGE);
    int rc = bind_int64(purge, 1, now);
    if (rc == 0)
        rc = run_gated(s, purge);
    else
        finish(purge);
    if (rc != 0)
        return rc;

    sqlite3_stmt *st = statement(&s->main, STMT_SESSION_CREATE);
    rc = bind_text(st, 1, token_hash);
    if (rc == 0)
        rc = bind_int64(st, 2, agent_id);
    if (rc == 0)
        rc = bind_text(st, 3, csrf);
    if (rc == 0)
        rc = bind_int64(st, 4, now);
    if (rc == 0)
        rc = bind_int64(st, 5, expires_at);
    if (rc == 0)
        return run_gated(s, st);
    finish(st);
    return rc;
}

static int sqlite_session_get(kf_store_t *store, const char *token_hash, int64_t now,
                              int64_t *agent_id_out, char *csrf_out, size_t csrf_size,
                              int64_t *expires_at_out)
{
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_SESSION_GET);
    int rc = bind_text(st, 1, token_hash);
    if (rc == 0)
        rc = bind_int64(st, 2, now);
    if (rc == 0)
        rc = step_row(st);
    if (rc == 0)
        rc = copy_column(st, 1, csrf_out, csrf_size);
    if (rc == 0)
        *agent_id_out = sqlite3_column_int64(st, 0);
    if (rc == 0 && expires_at_out != NULL)
        *expires_at_out = sqlite3_column_int64(st, 2);
    finish(st);
    return rc;
}

/* KF_ENOTFOUND when there was no such session (a caller logging out may ignore it). */
static int sqlite_session_delete(kf_store_t *store, const char *token_hash)
{
    sqlite_store_t *s = from_base(store);
    sqlite3_stmt *st = statement(&s->main, STMT_SESSION_DELETE);
    int rc = bind_text(st, 1, token_hash);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    rc = run_gated(s, st);
    if (rc == 0 && sqlite3_changes(s->main.db) == 0)
        rc = KF_ENOTFOUND;
    return rc;
}

static int sqlite_visitor_create(kf_store_t *store, const char *token_hash, const char *name,
                                 int64_t now, int64_t *id_out)
{
    sqlite_store_t *s = from_base(store);
    sqlite3_stmt *st = statement(&s->main, STMT_VISITOR_CREATE);
    int rc = bind_text(st, 1, token_hash);
    if (rc == 0)
        rc = bind_text(st, 2, name);
    if (rc == 0)
        rc = bind_int64(st, 3, now);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    rc = run_gated(s, st);
    if (rc == 0 && id_out != NULL)
        *id_out = sqlite3_last_insert_rowid(s->main.db);
    return rc;
}

static int sqlite_visitor_by_token(kf_store_t *store, const char *token_hash, int64_t *id_out,
                                   char *name_out, size_t name_size)
{
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_VISITOR_BY_TOKEN);
    int rc = bind_text(st, 1, token_hash);
    if (rc == 0)
        rc = step_row(st);
    if (rc == 0)
        rc = copy_column(st, 1, name_out, name_size);
    if (rc == 0)
        *id_out = sqlite3_column_int64(st, 0);
    finish(st);
    return rc;
}

/* Looks up the visitor's newest open conversation into *id_out; KF_ENOTFOUND when none. */
static int find_open_conversation(conn_t *c, int64_t visitor_id, int64_t *id_out)
{
    sqlite3_stmt *st = statement(c, STMT_CONVERSATION_FIND_OPEN);
    int rc = bind_int64(st, 1, visitor_id);
    if (rc == 0)
        rc = step_row(st);
    if (rc == 0)
        *id_out = sqlite3_column_int64(st, 0);
    finish(st);
    return rc;
}

/* Creates a conversation inside the caller's transaction; KF_ENOTFOUND for an unknown visitor. */
static int create_conversation(conn_t *c, int64_t visitor_id, int64_t now, int64_t *id_out)
{
    sqlite3_stmt *exists = statement(c, STMT_VISITOR_EXISTS);
    int rc = bind_int64(exists, 1, visitor_id);
    if (rc == 0)
        rc = step_row(exists);
    finish(exists);
    if (rc != 0)
        return rc;

    sqlite3_stmt *st = statement(c, STMT_CONVERSATION_CREATE);
    rc = bind_int64(st, 1, visitor_id);
    if (rc == 0)
        rc = bind_int64(st, 2, now);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    rc = run(st);
    if (rc == 0)
        *id_out = sqlite3_last_insert_rowid(c->db);
    return rc;
}

/* Within the caller's transaction: the visitor's open conversation, created when there is none
 * (*created says so). KF_ENOTFOUND for an unknown visitor. */
static int open_conversation(conn_t *c, int64_t visitor_id, int64_t now, int64_t *id_out,
                             bool *created)
{
    *created = false;
    int rc = find_open_conversation(c, visitor_id, id_out);
    if (rc == KF_ENOTFOUND) {
        rc = create_conversation(c, visitor_id, now, id_out);
        *created = rc == 0;
    }
    return rc;
}

/* The common case (the visitor already has an open conversation) is a read without a
 * transaction; only creating one takes the write lock, and looks again under it (the writer may
 * have made one since). */
static int sqlite_conversation_open_for_visitor(kf_store_t *store, int64_t visitor_id, int64_t now,
                                                int64_t *conversation_id_out)
{
    sqlite_store_t *s = from_base(store);
    int64_t id = 0;
    int rc = find_open_conversation(&s->main, visitor_id, &id);
    if (rc == KF_ENOTFOUND) {
        gate_enter(s);
        rc = begin(&s->main);
        if (rc == 0) {
            bool created;
            rc = open_conversation(&s->main, visitor_id, now, &id, &created);
            if (rc == 0)
                rc = commit(&s->main);
            else
                rollback(&s->main);
        }
        gate_leave(s);
    }
    if (rc == 0)
        *conversation_id_out = id;
    return rc;
}

static int sqlite_conversation_find_open(kf_store_t *store, int64_t visitor_id,
                                         int64_t *conversation_id_out)
{
    return find_open_conversation(&from_base(store)->main, visitor_id, conversation_id_out);
}

static int sqlite_conversation_get(kf_store_t *store, int64_t conversation_id,
                                   kf_store_conversation_cb cb, void *ctx)
{
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_CONVERSATION_GET);
    int rc = bind_int64(st, 1, conversation_id);
    if (rc == 0)
        rc = step_row(st);
    if (rc == 0) {
        kf_conversation_t conversation;
        read_conversation(st, &conversation);
        rc = cb(ctx, &conversation);
    }
    finish(st);
    return rc;
}

static int sqlite_conversation_list(kf_store_t *store, size_t limit, kf_store_conversation_cb cb,
                                    void *ctx)
{
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_CONVERSATION_LIST);
    int rc = bind_limit(st, 1, limit);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    return each_conversation(st, cb, ctx);
}

/* KF_EINVAL for a status other than "open" or "closed". updated_at is left alone: it is the time
 * of the last message, so that closing or reopening does not reorder the agents' list; now is
 * unused for that reason. */
static int sqlite_conversation_set_status(kf_store_t *store, int64_t conversation_id,
                                          const char *status, int64_t now)
{
    (void)now;
    if (status == NULL || (strcmp(status, "open") != 0 && strcmp(status, "closed") != 0))
        return KF_EINVAL;
    sqlite_store_t *s = from_base(store);
    sqlite3_stmt *st = statement(&s->main, STMT_CONVERSATION_SET_STATUS);
    int rc = bind_int64(st, 1, conversation_id);
    if (rc == 0)
        rc = bind_text(st, 2, status);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    rc = run_gated(s, st);
    if (rc == 0 && sqlite3_changes(s->main.db) == 0)
        rc = KF_ENOTFOUND;
    return rc;
}

/* Within the caller's transaction: the conversation's visitor into *visitor_id_out, or
 * KF_ENOTFOUND. */
static int conversation_visitor(conn_t *c, int64_t conversation_id, int64_t *visitor_id_out)
{
    sqlite3_stmt *st = statement(c, STMT_CONVERSATION_VISITOR);
    int rc = bind_int64(st, 1, conversation_id);
    if (rc == 0)
        rc = step_row(st);
    if (rc == 0)
        *visitor_id_out = sqlite3_column_int64(st, 0);
    finish(st);
    return rc;
}

/* Within the caller's transaction: a copy of the agent's name (the caller frees it) into
 * *name_out, or KF_EINVAL for an unknown agent (a caller's bug, not a missing row it asked
 * about). */
static int agent_name_copy(conn_t *c, int64_t agent_id, char **name_out)
{
    sqlite3_stmt *st = statement(c, STMT_AGENT_NAME);
    int rc = bind_int64(st, 1, agent_id);
    if (rc == 0)
        rc = step_row(st);
    if (rc == 0)
        *name_out = kf_xstrdup(column_text(st, 0));
    else if (rc == KF_ENOTFOUND)
        rc = KF_EINVAL;
    finish(st);
    return rc;
}

/* Inserts the message and moves the conversation's updated_at, within the caller's transaction.
 * *inserted tells whether the insert went in (when the update then fails). */
static int insert_message(conn_t *c, int64_t conversation_id, kf_sender_t sender, int64_t agent_id,
                          const char *body, int64_t now, int64_t *id_out, bool *inserted)
{
    sqlite3_stmt *st = statement(c, STMT_MESSAGE_INSERT);
    int rc = bind_int64(st, 1, conversation_id);
    if (rc == 0)
        rc = bind_int64(st, 2, sender);
    if (rc == 0 && sender == KF_SENDER_AGENT)
        rc = bind_int64(st, 3, agent_id);
    if (rc == 0)
        rc = bind_text(st, 4, body);
    if (rc == 0)
        rc = bind_int64(st, 5, now);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    rc = run(st);
    if (rc != 0)
        return rc;
    *inserted = true;
    *id_out = sqlite3_last_insert_rowid(c->db);

    sqlite3_stmt *touch = statement(c, STMT_CONVERSATION_TOUCH);
    rc = bind_int64(touch, 1, conversation_id);
    if (rc == 0)
        rc = bind_int64(touch, 2, now);
    if (rc == 0)
        return run(touch);
    finish(touch);
    return rc;
}

static int sqlite_messages_in_conversation(kf_store_t *store, int64_t conversation_id,
                                           int64_t after_id, size_t limit, kf_store_message_cb cb,
                                           void *ctx)
{
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_MESSAGES_IN_CONVERSATION);
    int rc = bind_int64(st, 1, conversation_id);
    if (rc == 0)
        rc = bind_int64(st, 2, after_id);
    if (rc == 0)
        rc = bind_limit(st, 3, limit);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    return each_message(st, cb, ctx);
}

static int sqlite_messages_of_visitor(kf_store_t *store, int64_t visitor_id, int64_t after_id,
                                      size_t limit, kf_store_message_cb cb, void *ctx)
{
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_MESSAGES_OF_VISITOR);
    int rc = bind_int64(st, 1, visitor_id);
    if (rc == 0)
        rc = bind_int64(st, 2, after_id);
    if (rc == 0)
        rc = bind_limit(st, 3, limit);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    return each_message(st, cb, ctx);
}

static int sqlite_messages_all(kf_store_t *store, int64_t after_id, size_t limit,
                               kf_store_message_cb cb, void *ctx)
{
    sqlite3_stmt *st = statement(&from_base(store)->main, STMT_MESSAGES_ALL);
    int rc = bind_int64(st, 1, after_id);
    if (rc == 0)
        rc = bind_limit(st, 2, limit);
    if (rc != 0) {
        finish(st);
        return rc;
    }
    return each_message(st, cb, ctx);
}

/* ---- the writer: group commit on its own thread ----
 *
 * The batched writes are queued by the loop and applied by the writer thread, which takes
 * everything queued so far as one batch: one transaction, one sync. While it commits, the next
 * batch queues, so the sync rate bounds the batch size, not the message rate. Finished writes go
 * back to the loop, in order, through complete(); ids are assigned under the write lock and
 * batches commit one after another, so ids commit in order.
 *
 * A failed write must not take the rest of its batch with it, nor leave half of itself behind.
 * Each write does its checks (reads) first, and SQLite undoes a failed statement by itself, so a
 * failure before a write's first change, or in its only changing statement, leaves the batch as
 * it was. Only a failure between two changing statements of one write (in practice an I/O error)
 * would leave half a write: then the whole batch is rolled back and every write in it fails.
 * That spares a savepoint per write. */

/* Applies a WRITE_MESSAGE in the writer's transaction. *half: it failed after changing something.
 */
static int apply_message(conn_t *c, write_t *w, bool *half)
{
    int64_t conversation_id = w->conversation_id;
    int64_t visitor_id = w->visitor_id;
    int rc = conversation_id == 0 ? open_conversation(c, visitor_id, w->now, &conversation_id,
                                                      &w->result.conversation_opened)
                                  : conversation_visitor(c, conversation_id, &visitor_id);
    if (rc == 0 && w->sender == KF_SENDER_AGENT)
        rc = agent_name_copy(c, w->agent_id, &w->agent_name);
    bool inserted = false;
    int64_t id = 0;
    if (rc == 0)
        rc = insert_message(c, conversation_id, w->sender, w->agent_id, w->body, w->now, &id,
                            &inserted);
    if (rc != 0) {
        *half = inserted || w->result.conversation_opened;
        return rc;
    }
    w->result.message = (kf_message_t){
        .id = id,
        .conversation_id = conversation_id,
        .visitor_id = visitor_id,
        .sender = w->sender,
        .agent_id = w->agent_id,
        .agent_name = w->agent_name != NULL ? w->agent_name : "",
        .body = w->body,
        .created_at = w->now,
    };
    return 0;
}

/* Applies a WRITE_MARK_READ (see MARK_READ): one changing statement. */
static int apply_mark_read(conn_t *c, write_t *w)
{
    sqlite3_stmt *st =
        statement(c, w->sender == KF_SENDER_AGENT ? STMT_CONVERSATION_MARK_READ_AGENTS
                                                  : STMT_CONVERSATION_MARK_READ_VISITOR);
    int rc = bind_int64(st, 1, w->conversation_id);
    if (rc == 0)
        rc = bind_int64(st, 2, w->up_to);
    if (rc == 0)
        rc = run(st);
    else
        finish(st);
    if (rc == 0 && sqlite3_changes(c->db) == 0)
        rc = KF_ENOTFOUND;
    return rc;
}

/* Applies a batch in one transaction and sets every write's result.rc. */
static void apply_batch(sqlite_store_t *s, write_t *batch)
{
    conn_t *c = &s->writer;
    /* Between two batches the loop's unbatched writes go first. */
    while (atomic_load(&s->gate_waiting) > 0)
        sched_yield();
    pthread_mutex_lock(&s->gate);
    int rc = begin(c);
    for (write_t *w = batch; rc == 0 && w != NULL; w = w->next) {
        bool half = false;
        w->result.rc =
            w->kind == WRITE_MESSAGE ? apply_message(c, w, &half) : apply_mark_read(c, w);
        if (half)
            rollback(c);
        /* Rolled back, by us or by SQLite itself on some errors (I/O, disk full): every write
         * of the batch is gone. */
        if (sqlite3_get_autocommit(c->db))
            rc = KF_ESTORE;
    }
    if (rc == 0)
        rc = commit(c);
    pthread_mutex_unlock(&s->gate);
    if (rc != 0) {
        for (write_t *w = batch; w != NULL; w = w->next) {
            if (w->result.rc == 0)
                w->result.rc = rc;
        }
    }
}

static void list_append(write_list_t *list, write_t *head, write_t *tail)
{
    if (list->tail != NULL)
        list->tail->next = head;
    else
        list->head = head;
    list->tail = tail;
}

static void *writer_main(void *data)
{
    sqlite_store_t *s = data;
    /* Named for top -H and perf, and for the allocation-failure test that fails this thread's. */
    pthread_setname_np(pthread_self(), "kefu-writer");
    pthread_mutex_lock(&s->queue_lock);
    for (;;) {
        while (s->queued.head == NULL && !s->writer_stopping)
            pthread_cond_wait(&s->queue_wake, &s->queue_lock);
        if (s->queued.head == NULL)
            break; /* stopping, and nothing is left */
        write_list_t batch = s->queued;
        s->queued = (write_list_t){NULL, NULL};
        s->writing = true;
        pthread_mutex_unlock(&s->queue_lock);

        apply_batch(s, batch.head);

        pthread_mutex_lock(&s->queue_lock);
        list_append(&s->finished, batch.head, batch.tail);
        s->writing = false;
        pthread_cond_broadcast(&s->queue_idle);
        /* Under the lock, so that once set_notify(NULL) returns it is never called again. */
        if (s->notify != NULL)
            s->notify(s->notify_data);
    }
    pthread_mutex_unlock(&s->queue_lock);
    return NULL;
}

static void write_free(write_t *w)
{
    free(w->body);
    free(w->agent_name);
    free(w);
}

static int enqueue(sqlite_store_t *s, write_t *w)
{
    pthread_mutex_lock(&s->queue_lock);
    list_append(&s->queued, w, w);
    pthread_cond_signal(&s->queue_wake);
    pthread_mutex_unlock(&s->queue_lock);
    return 0;
}

/* True when sender is known and agent_id matches it: an agent id for an agent, 0 for a visitor. */
static bool valid_author(kf_sender_t sender, int64_t agent_id)
{
    if (sender == KF_SENDER_AGENT)
        return agent_id > 0;
    return sender == KF_SENDER_VISITOR && agent_id == 0;
}

/* A write of kind for the writer; the caller fills in the rest and enqueues it. */
static write_t *write_new(write_kind_t kind, int64_t conversation_id, kf_sender_t sender,
                          kf_store_done_cb done, void *ctx)
{
    write_t *w = kf_xcalloc(1, sizeof *w);
    w->kind = kind;
    w->conversation_id = conversation_id;
    w->sender = sender;
    w->done = done;
    w->ctx = ctx;
    return w;
}

static int sqlite_message_add(kf_store_t *store, int64_t conversation_id, int64_t visitor_id,
                              kf_sender_t sender, int64_t agent_id, const char *body, int64_t now,
                              kf_store_done_cb done, void *ctx)
{
    if (!valid_author(sender, agent_id) || done == NULL ||
        (conversation_id == 0 && (sender != KF_SENDER_VISITOR || visitor_id <= 0)))
        return KF_EINVAL;
    write_t *w = write_new(WRITE_MESSAGE, conversation_id, sender, done, ctx);
    w->visitor_id = visitor_id;
    w->agent_id = agent_id;
    w->body = kf_xstrdup(body != NULL ? body : "");
    w->now = now;
    return enqueue(from_base(store), w);
}

static int sqlite_conversation_mark_read(kf_store_t *store, int64_t conversation_id,
                                         kf_sender_t reader, int64_t up_to, kf_store_done_cb done,
                                         void *ctx)
{
    if ((reader != KF_SENDER_AGENT && reader != KF_SENDER_VISITOR) || done == NULL)
        return KF_EINVAL;
    write_t *w = write_new(WRITE_MARK_READ, conversation_id, reader, done, ctx);
    w->up_to = up_to;
    return enqueue(from_base(store), w);
}

static void sqlite_complete(kf_store_t *store)
{
    sqlite_store_t *s = from_base(store);
    pthread_mutex_lock(&s->queue_lock);
    write_t *w = s->finished.head;
    s->finished = (write_list_t){NULL, NULL};
    pthread_mutex_unlock(&s->queue_lock);
    while (w != NULL) {
        write_t *next = w->next;
        w->done(w->ctx, &w->result);
        write_free(w);
        w = next;
    }
}

static void sqlite_flush(kf_store_t *store)
{
    sqlite_store_t *s = from_base(store);
    pthread_mutex_lock(&s->queue_lock);
    while (s->queued.head != NULL || s->writing)
        pthread_cond_wait(&s->queue_idle, &s->queue_lock);
    pthread_mutex_unlock(&s->queue_lock);
    sqlite_complete(store);
}

static void sqlite_set_notify(kf_store_t *store, void (*notify)(void *data), void *data)
{
    sqlite_store_t *s = from_base(store);
    pthread_mutex_lock(&s->queue_lock);
    s->notify = notify;
    s->notify_data = data;
    pthread_mutex_unlock(&s->queue_lock);
}

static const kf_store_ops_t sqlite_ops = {
    .close = sqlite_close,
    .setting_get = sqlite_setting_get,
    .setting_set = sqlite_setting_set,
    .agent_create = sqlite_agent_create,
    .agent_count = sqlite_agent_count,
    .agent_by_email = sqlite_agent_by_email,
    .agent_by_id = sqlite_agent_by_id,
    .session_create = sqlite_session_create,
    .session_get = sqlite_session_get,
    .session_delete = sqlite_session_delete,
    .visitor_create = sqlite_visitor_create,
    .visitor_by_token = sqlite_visitor_by_token,
    .conversation_open_for_visitor = sqlite_conversation_open_for_visitor,
    .conversation_get = sqlite_conversation_get,
    .conversation_list = sqlite_conversation_list,
    .conversation_set_status = sqlite_conversation_set_status,
    .conversation_mark_read = sqlite_conversation_mark_read,
    .message_add = sqlite_message_add,
    .messages_in_conversation = sqlite_messages_in_conversation,
    .messages_of_visitor = sqlite_messages_of_visitor,
    .messages_all = sqlite_messages_all,
    .conversation_find_open = sqlite_conversation_find_open,
    .complete = sqlite_complete,
    .flush = sqlite_flush,
    .set_notify = sqlite_set_notify,
};

/* ---- the checkpointer ----
 *
 * A checkpoint copies the log's frames back into the database; SQLite starts the log over from
 * its first frame only when a write transaction begins with every frame copied. Under steady
 * load the writer always has committed more by the time a passive checkpoint ends, so the log
 * would grow without end (100 MB in 10 s at 20,000 messages a second) and every commit would
 * extend the file, which costs its sync a metadata update too. So each round chases the writer
 * with passive checkpoints, which never block it, until only a short tail is left, and then
 * copies that tail while holding the write gate: the writer waits for a few dozen pages and one
 * sync, and its next transaction starts the log over. */

/* One passive checkpoint: *log_out is the log's length in frames (when it began), *copied_out
 * how many of them are in the database now. */
static int checkpoint_passive(sqlite_store_t *s, int *log_out, int *copied_out)
{
    return sqlite3_wal_checkpoint_v2(s->checkpoint_db, NULL, SQLITE_CHECKPOINT_PASSIVE, log_out,
                                     copied_out);
}

/* A failure is left for the next round: the log only grows meanwhile. Each passive checkpoint
 * copies what the writer committed during the one before, so the chase ends when one copied
 * little: the tail left for the gate is about as short. Should the writer outrun the chase for
 * long, the log's length bounds the wait instead: past twice the threshold the tail is copied under
 * the gate whatever its size. */
static void checkpoint_round(sqlite_store_t *s)
{
    int threshold = atomic_load(&s->checkpoint_pages);
    int limit = 2 * threshold;
    int log = 0;
    int copied = 0;
    int before = 0;
    bool short_tail = false;
    for (int round = 0; round < CHASE_ROUNDS && !short_tail && log < limit; round++) {
        if (checkpoint_passive(s, &log, &copied) != SQLITE_OK)
            return;
        /* The log started over since this round was asked for: nothing to chase. */
        if (round == 0 && log < threshold)
            return;
        short_tail = round > 0 && copied - before <= RESTART_TAIL_PAGES;
        before = copied;
    }
    if (!short_tail && log < limit)
        return;
    gate_enter(s);
    checkpoint_passive(s, &log, &copied);
    gate_leave(s);
}

static void *checkpointer_main(void *data)
{
    sqlite_store_t *s = data;
    pthread_setname_np(pthread_self(), "kefu-checkpoint");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->checkpoint_wanted && !s->stopping)
            pthread_cond_wait(&s->wake, &s->lock);
        if (s->stopping)
            break;
        s->checkpoint_wanted = false;
        pthread_mutex_unlock(&s->lock);
        checkpoint_round(s);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Called by SQLite on the writer's thread after each commit, with the WAL's size in pages. */
static int wal_hook_cb(void *data, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    sqlite_store_t *s = data;
    if (pages < atomic_load(&s->checkpoint_pages))
        return SQLITE_OK;
    pthread_mutex_lock(&s->lock);
    if (!s->checkpoint_wanted) {
        s->checkpoint_wanted = true;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->lock);
    return SQLITE_OK;
}

/* Starts the thread; without it (no WAL, or no thread) SQLite checkpoints on commit as usual. */
static void checkpointer_start(sqlite_store_t *s, const char *path, const char *synchronous_sql)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(db, synchronous_sql, NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return;
    }
    s->checkpoint_db = db;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    if (pthread_create(&s->checkpointer, NULL, checkpointer_main, s) != 0) {
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        sqlite3_close(db);
        s->checkpoint_db = NULL;
        return;
    }
    s->checkpointer_running = true;
    /* Our hook replaces SQLite's automatic checkpoint on commit, on both writing connections. */
    sqlite3_wal_hook(s->main.db, wal_hook_cb, s);
    sqlite3_wal_hook(s->writer.db, wal_hook_cb, s);
}

static void checkpointer_stop(sqlite_store_t *s)
{
    if (!s->checkpointer_running)
        return;
    sqlite3_wal_hook(s->main.db, NULL, NULL);
    sqlite3_wal_hook(s->writer.db, NULL, NULL);
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->checkpointer, NULL);
    sqlite3_close(s->checkpoint_db);
    s->checkpointer_running = false;
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
}

/* Runs constant SQL (no user data) that needs no binding: pragmas and DDL. */
static int exec(sqlite3 *db, const char *sql)
{
    int code = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return code == SQLITE_OK ? 0 : map_error(code);
}

/* Reads schema_version into *version_out: 0 when absent (a new database), KF_ESTORE when it is
 * not a non-negative integer. */
static int read_schema_version(sqlite3 *db, int64_t *version_out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return KF_ESTORE;
    int rc = bind_text(st, 1, SCHEMA_VERSION_KEY);
    if (rc == 0)
        rc = step_row(st);
    if (rc == KF_ENOTFOUND) {
        *version_out = 0;
        rc = 0;
    } else if (rc == 0) {
        const char *text = column_text(st, 0);
        char *end = NULL;
        long long version = strtoll(text, &end, 10);
        if (end == text || *end != '\0' || version < 0)
            rc = KF_ESTORE;
        else
            *version_out = version;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Sets schema_version, within migrate's transaction. */
static int write_schema_version(sqlite3 *db, int64_t version)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO settings (key, value) VALUES (?1, ?2) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           -1, &st, NULL) != SQLITE_OK)
        return KF_ESTORE;
    int rc = bind_text(st, 1, SCHEMA_VERSION_KEY);
    if (rc == 0)
        rc = bind_int64(st, 2, version); /* stored as text by the column's affinity */
    if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
        rc = KF_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

/* Brings the schema to the newest version in one transaction, so a failed migration leaves the
 * database as it was. KF_ESTORE for a database written by a newer kefu (its schema_version is
 * above ours): better to refuse than to run on a schema we do not know. */
static int migrate(sqlite3 *db)
{
    int rc = exec(db, "BEGIN IMMEDIATE");
    if (rc != 0)
        return rc;
    rc = exec(db, "CREATE TABLE IF NOT EXISTS settings "
                  "(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    int64_t version = 0;
    if (rc == 0)
        rc = read_schema_version(db, &version);
    if (rc == 0 && version > MIGRATION_COUNT)
        rc = KF_ESTORE;
    for (int64_t next = version; rc == 0 && next < MIGRATION_COUNT; next++)
        rc = exec(db, migrations[next]);
    if (rc == 0 && version < MIGRATION_COUNT)
        rc = write_schema_version(db, MIGRATION_COUNT);
    if (rc == 0)
        rc = exec(db, "COMMIT");
    if (rc != 0 && !sqlite3_get_autocommit(db))
        exec(db, "ROLLBACK");
    return rc != 0 ? KF_ESTORE : 0;
}

/* The pragma for a synchronous setting, or NULL for an unknown one. Constant strings only: a
 * pragma cannot take a bound parameter. */
static const char *synchronous_pragma(const char *synchronous)
{
    if (synchronous == NULL || strcasecmp(synchronous, "FULL") == 0)
        return "PRAGMA synchronous = FULL";
    if (strcasecmp(synchronous, "NORMAL") == 0)
        return "PRAGMA synchronous = NORMAL";
    if (strcasecmp(synchronous, "OFF") == 0)
        return "PRAGMA synchronous = OFF";
    return NULL;
}

/* Opens a connection to path and prepares every statement. The main connection (create) also
 * sets WAL mode and migrates the schema first. */
static int conn_open(conn_t *c, const char *path, const char *synchronous_sql, bool create)
{
    /* sqlite3_open_v2 may hand back a connection even when it fails; conn_close closes it. */
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK)
        return KF_ESTORE;
    sqlite3_extended_result_codes(c->db, 1);
    if (sqlite3_busy_timeout(c->db, 5000) != SQLITE_OK)
        return KF_ESTORE;
    /* journal_mode answers with the mode it got; a file system without WAL support keeps a
     * rollback journal, which is slower but just as safe, so it is not an error. */
    if ((create && exec(c->db, "PRAGMA journal_mode = WAL") != 0) ||
        exec(c->db, synchronous_sql) != 0 || exec(c->db, "PRAGMA foreign_keys = ON") != 0)
        return KF_ESTORE;
    if (create && migrate(c->db) != 0)
        return KF_ESTORE;
    for (int i = 0; i < STMT_COUNT; i++) {
        if (sqlite3_prepare_v3(c->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &c->statements[i], NULL) != SQLITE_OK)
            return KF_ESTORE;
    }
    return 0;
}

static void conn_close(conn_t *c)
{
    for (int i = 0; i < STMT_COUNT; i++)
        sqlite3_finalize(c->statements[i]);
    sqlite3_close(c->db);
}

static int writer_start(sqlite_store_t *s)
{
    pthread_mutex_init(&s->queue_lock, NULL);
    pthread_cond_init(&s->queue_wake, NULL);
    pthread_cond_init(&s->queue_idle, NULL);
    if (pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
        pthread_cond_destroy(&s->queue_idle);
        pthread_cond_destroy(&s->queue_wake);
        pthread_mutex_destroy(&s->queue_lock);
        return KF_ESTORE;
    }
    s->writer_running = true;
    return 0;
}

/* Lets the writer finish what is queued, runs the callbacks, and joins it. */
static void writer_stop(sqlite_store_t *s)
{
    if (!s->writer_running)
        return;
    sqlite_flush(&s->base);
    pthread_mutex_lock(&s->queue_lock);
    s->writer_stopping = true;
    s->notify = NULL;
    pthread_cond_signal(&s->queue_wake);
    pthread_mutex_unlock(&s->queue_lock);
    pthread_join(s->writer_thread, NULL);
    s->writer_running = false;
    sqlite_complete(&s->base);
    pthread_cond_destroy(&s->queue_idle);
    pthread_cond_destroy(&s->queue_wake);
    pthread_mutex_destroy(&s->queue_lock);
}

int kf_store_sqlite_set_checkpoint_pages(kf_store_t *store, int pages)
{
    if (store == NULL || store->ops != &sqlite_ops || pages < 1 || pages > MAX_CHECKPOINT_PAGES)
        return KF_EINVAL;
    atomic_store(&from_base(store)->checkpoint_pages, pages);
    return 0;
}

int kf_store_open_sqlite(const char *path, const char *synchronous, kf_store_t **out)
{
    const char *synchronous_sql = synchronous_pragma(synchronous);
    if (path == NULL || out == NULL || synchronous_sql == NULL)
        return KF_EINVAL;
    *out = NULL;

    sqlite_store_t *s = kf_xcalloc(1, sizeof(*s));
    s->base.ops = &sqlite_ops;
    pthread_mutex_init(&s->gate, NULL);
    atomic_init(&s->gate_waiting, 0);
    atomic_init(&s->checkpoint_pages, CHECKPOINT_PAGES);
    if (conn_open(&s->main, path, synchronous_sql, true) != 0 ||
        conn_open(&s->writer, path, synchronous_sql, false) != 0 || writer_start(s) != 0)
        goto out_close;
    char journal_mode[16] = "";
    sqlite3_stmt *mode = NULL;
    if (sqlite3_prepare_v2(s->main.db, "PRAGMA journal_mode", -1, &mode, NULL) == SQLITE_OK &&
        sqlite3_step(mode) == SQLITE_ROW)
        snprintf(journal_mode, sizeof journal_mode, "%s",
                 (const char *)sqlite3_column_text(mode, 0));
    sqlite3_finalize(mode);
    if (strcasecmp(journal_mode, "wal") == 0)
        checkpointer_start(s, path, synchronous_sql);
    *out = &s->base;
    return 0;

out_close:
    conn_close(&s->writer);
    conn_close(&s->main);
    pthread_mutex_destroy(&s->gate);
    free(s);
    return KF_ESTORE;
}
