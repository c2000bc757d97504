/* pg_internal.h: what the PostgreSQL backend's files share, not an interface. The backend reuses
 * the SQLite backend's queue side unchanged: the kf_sqlite_* front functions check arguments and
 * copy them into an op_t (sqlite_internal.h), and their last step hands the op to the store's
 * queue hook (kf_store_t.queue), which for this backend is kf_pg_queue. So one set of checks
 * serves both backends, and a read or a write means the same to each.
 *
 * Threads (pg.c): reads run on a reader thread with its own connection; its PGresults stay in
 * the op (op->pg_read) until complete() turns them into rows (kf_agent_t, kf_message_t, ...) on
 * the loop thread and calls each/done there, so the borrowed-row contract of store.h holds.
 * Writes run on one writer thread with its own connection, a batch per transaction (group
 * commit), a savepoint per write so that a failed write leaves the rest of its batch standing.
 * libpq is never called on the loop thread.
 *
 * Files: pg.c (open, close, threads, complete, flush, the helpers below), pg_schema.c (the
 * migrations), pg_reads.c (the reads of the chat path), pg_writer.c (its writes), pg_desk.c
 * (canned replies, teams, visitor details, reports, API tokens, webhooks: the kf_pg_desk_*
 * functions). */
#ifndef KF_STORE_PG_INTERNAL_H
#define KF_STORE_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/sqlite_internal.h"
#include "store/store.h"

/* The most results one read keeps for complete() (a read of several queries in one snapshot). */
#define KF_PG_READ_RESULTS 4

/* What a read got on the reader thread, turned into rows on the loop (op->pg_read). */
typedef struct kf_pg_read {
    PGresult *res[KF_PG_READ_RESULTS]; /* in the order the read ran them; NULL past count */
    int count;
    int rc; /* 0, or the KF_E* code of the query that failed (the read's result->rc) */
} kf_pg_read_t;

/* The transaction-scoped advisory lock every transaction that inserts messages takes first
 * (docs/ARCHITECTURE.md, "Message ids on PostgreSQL"): message inserts are serialized across
 * every node from the id's assignment to the commit, so ids become visible in id order and a
 * message id stays a resume cursor. Its key is an arbitrary constant ('kefu' 'msgs'). */
#define KF_PG_MESSAGE_LOCK "SELECT pg_advisory_xact_lock(7018492417296839027)"

/* ---- pg.c: running statements (any thread, on its own connection) ---- */

/* Runs sql with parameters $1, $2, ... given as types says (as kf_sqlite_bind: 't' a string,
 * NULL as ""; 'T' a string or SQL NULL for NULL; 'i' an int64_t; 'I' an int64_t or SQL NULL for
 * 0; 'n' a row limit (size_t); 'b' bytes: a const void * and a size_t, sent as bytea). Returns 0
 * and *res (a command's or a query's result; the caller PQclears it), or a KF_E* code
 * (kf_pg_map_error) and *res NULL. Every result column is asked for as text. The statement is
 * prepared on c the first time the thread runs it there (at most 256 a connection; past that,
 * parsed each time). */
int kf_pg_exec(PGconn *c, PGresult **res, const char *sql, const char *types, ...);
/* Forgets which statements the calling thread prepared on its connection: called whenever the
 * thread's connection is made or dropped (kf_pg_exec prepares each statement once per
 * connection, named by its text's hash). */
void kf_pg_forget_prepared(void);
/* kf_pg_exec for a statement whose rows nobody reads; *changed (unless NULL) gets how many rows
 * it inserted, updated or deleted. */
int kf_pg_run(PGconn *c, int64_t *changed, const char *sql, const char *types, ...);
/* kf_pg_exec for the first column of the first row, as an int64_t (0 for NULL): KF_ENOTFOUND
 * when there is no row. */
int kf_pg_one(PGconn *c, int64_t *value, const char *sql, const char *types, ...);
/* The KF_E* code of a failed result (NULL: libpq could not even make one): KF_EEXISTS for a
 * unique violation, KF_EUNAVAIL for a lost connection, a read-only or shut-down server, a full
 * disk or too many connections (class 08, 25006, 53, 57P), else KF_ESTORE. */
int kf_pg_map_error(PGconn *c, const PGresult *res);

/* ---- pg.c: reading columns (the loop thread, in complete()) ---- */

/* A text column, "" for NULL; valid while res is (until the op is freed after done). */
const char *kf_pg_text(const PGresult *res, int row, int column);
/* An integer column, 0 for NULL; a boolean column ('t'/'f') is 1/0. */
int64_t kf_pg_int(const PGresult *res, int row, int column);
bool kf_pg_null(const PGresult *res, int row, int column);

/* Row converters: the same columns, in the same order, as the SQLite backend's
 * KF_SQLITE_*_COLUMNS (KF_PG_*_COLUMNS below), so that each reads what its SQLite twin does. */
void kf_pg_read_message(const PGresult *res, int row, int first, kf_message_t *message);
void kf_pg_read_conversation(const PGresult *res, int row, kf_conversation_t *conversation);
void kf_pg_read_agent(const PGresult *res, int row, kf_agent_t *agent);
void kf_pg_read_canned(const PGresult *res, int row, kf_canned_t *canned);
/* Fills team from KF_PG_TEAM_COLUMNS; its member ids go into *ids (reallocated; the caller
 * frees it). */
void kf_pg_read_team(const PGresult *res, int row, kf_team_t *team, int64_t **ids);
void kf_pg_read_visitor(const PGresult *res, int row, kf_visitor_t *visitor);
void kf_pg_read_visitor_page(const PGresult *res, int row, kf_visitor_page_t *page);

/* The columns of each row, over the same aliases as the SQLite backend's. */
#define KF_PG_AGENT_COLUMNS                                                                        \
    "id, email, name, role, password_hash, created_at, COALESCE(disabled_at, 0), capacity, "       \
    "(SELECT count(*) FROM conversations x WHERE x.assignee_id = agents.id "                       \
    "  AND x.status != 'resolved')"
#define KF_PG_TEAM_COLUMNS                                                                         \
    "t.id, t.name, t.auto_assign, t.reassign_after, t.created_at, "                                \
    "(SELECT string_agg(agent_id::text, ',' ORDER BY agent_id) FROM team_members "                 \
    "  WHERE team_id = t.id)"
#define KF_PG_CANNED_COLUMNS "id, COALESCE(owner_id, 0), shortcut, body, created_at, updated_at"
#define KF_PG_VISITOR_COLUMNS "id, name, created_at, email, COALESCE(user_id, '')"
#define KF_PG_VISITOR_PAGE_COLUMNS                                                                 \
    "id, visitor_id, url, title, referrer, user_agent, language, timezone, utc_offset, seen_at"
#define KF_PG_MESSAGE_COLUMNS                                                                      \
    "m.id, m.conversation_id, c.visitor_id, m.sender, COALESCE(m.agent_id, 0), "                   \
    "COALESCE(a.name, ''), m.body, m.created_at, m.private, COALESCE(m.attachment_id, 0), "        \
    "(SELECT f.name FROM attachments f WHERE f.id = m.attachment_id), "                            \
    "(SELECT f.type FROM attachments f WHERE f.id = m.attachment_id), "                            \
    "COALESCE((SELECT f.size FROM attachments f WHERE f.id = m.attachment_id), 0)"
#define KF_PG_MESSAGES_FROM                                                                        \
    " FROM messages m JOIN conversations c ON c.id = m.conversation_id "                           \
    "LEFT JOIN agents a ON a.id = m.agent_id "
/* A conversation's row, column for column KF_SQLITE_CONVERSATION_SELECT's (its
 * KF_SQLITE_CONVERSATION_*_COLUMN numbers hold here too). */
#define KF_PG_CONVERSATION_SELECT                                                                  \
    "SELECT c.id, c.visitor_id, v.name, c.status, c.created_at, c.updated_at, "                    \
    "c.agent_read_up_to, c.visitor_read_up_to, "                                                   \
    "(SELECT count(*) FROM messages u WHERE u.conversation_id = c.id "                             \
    "  AND u.id > c.agent_read_up_to AND u.sender = 0), "                                          \
    "(SELECT count(*) FROM messages u WHERE u.conversation_id = c.id "                             \
    "  AND u.id > c.visitor_read_up_to AND u.sender = 1 AND u.private = 0), "                      \
    "" KF_PG_MESSAGE_COLUMNS ", "                                                                  \
    "COALESCE(c.snoozed_until, 0), COALESCE(c.assignee_id, 0), ag.email, ag.name, ag.role, "       \
    "COALESCE(c.team_id, 0), tm.name, "                                                            \
    "CASE c.status WHEN 'open' THEN (SELECT min(w.created_at) FROM messages w "                    \
    "  WHERE w.conversation_id = c.id AND w.sender = 0 AND w.id > COALESCE((SELECT max(r.id) "     \
    "  FROM messages r WHERE r.conversation_id = c.id AND r.sender = 1 AND r.private = 0), 0)) "   \
    "END, "                                                                                        \
    "c.rating, c.rating_comment, COALESCE(c.rated_at, 0), "                                        \
    "(c.status = 'resolved' AND c.rated_at >= c.resolved_at) IS TRUE "                             \
    "FROM conversations c JOIN visitors v ON v.id = c.visitor_id "                                 \
    "LEFT JOIN messages m ON m.id = c.last_message_id "                                            \
    "LEFT JOIN agents a ON a.id = m.agent_id "                                                     \
    "LEFT JOIN agents ag ON ag.id = c.assignee_id LEFT JOIN teams tm ON tm.id = c.team_id "

/* The search's index text of text, as a tsvector literal (a new string, freed by the caller):
 * kf_search_index_text's words, folded as the SQLite index folds them, with their positions.
 * Bound as $n::tsvector into message_search.text and visitor_search.text (pg_schema.c), so that
 * both backends find the same hits; no PostgreSQL text-search parser is involved. */
char *kf_pg_search_vector(const char *text);
/* The tsquery literal of a kf_search_match expression (a new string; "" for none). */
char *kf_pg_search_query(const char *match);
/* The text visitor_search holds for a visitor (KF_SQLITE_VISITOR_SEARCH_TEXT's): name and
 * e-mail; a new string. */
char *kf_pg_visitor_search_text(const char *name, const char *email);

/* ---- pg.c: operations ---- */

/* The store's queue hook (kf_store_t.queue): a read goes to the reader thread, a write to the
 * writer. Owner thread. */
int kf_pg_queue(kf_store_t *store, op_t *op);
/* Keeps a copy of text in op, for a write's result strings (the writer thread, before the op
 * goes back): kf_sqlite_op_keep, which has room for OP_MAX_STRINGS in all. */
#define kf_pg_op_keep kf_sqlite_op_keep

/* ---- pg_schema.c ---- */

/* The schema version this binary's migrations reach. */
int64_t kf_pg_schema_latest(void);
/* Brings c's database to the latest schema (in one transaction, under an advisory lock so that
 * nodes starting together migrate once). KF_ESTORE with *error (static text) for a database
 * newer than this binary or a failed migration. */
int kf_pg_migrate(PGconn *c, const char **error);

/* ---- pg_reads.c (the chat path's reads) ---- */

/* Runs op's queries on the reader thread into op->pg_read; false when op is not one of its
 * kinds. */
bool kf_pg_chat_read(PGconn *c, op_t *op);
/* On the loop: op->pg_read's rows to op's callbacks, then done. False when not one of its
 * kinds. */
bool kf_pg_chat_deliver(op_t *op);

/* ---- pg_writer.c (the chat path's writes) ---- */

/* Applies op inside the writer's transaction (after its savepoint) and returns its result code,
 * filling op->result as sqlite_writer.c does; false (and *rc untouched) when op is not one of
 * its kinds. */
bool kf_pg_chat_apply(PGconn *c, op_t *op, int *rc);

/* ---- pg_desk.c (pgdesk's: canned, teams, visitor details, reports, tokens, webhooks) ---- */

/* As kf_pg_chat_read, kf_pg_chat_deliver and kf_pg_chat_apply, for those kinds. */
bool kf_pg_desk_read(PGconn *c, op_t *op);
bool kf_pg_desk_deliver(op_t *op);
bool kf_pg_desk_apply(PGconn *c, op_t *op, int *rc);

#endif
