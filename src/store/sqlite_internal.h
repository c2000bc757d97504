/* sqlite_internal.h: what the SQLite backend's files share, not an interface: the handle and its
 * connections, the statements prepared on each, queued operations, and the row helpers.
 * sqlite.c opens and closes the store and runs what is ready (complete, flush); sqlite_reads.c
 * queues the reads and runs them on the loop's connection; sqlite_writer.c queues the writes and
 * applies them in batches on the writer thread; sqlite_checkpointer.c copies the log back. */
#ifndef KF_STORE_SQLITE_INTERNAL_H
#define KF_STORE_SQLITE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/log.h"
#include "store/store.h"

/* The settings key that holds the schema version; reserved, setting_set refuses it. */
#define KF_SQLITE_SCHEMA_VERSION_KEY "schema_version"

/* The columns of an agent row (read by kf_sqlite_read_agent). */
#define KF_SQLITE_AGENT_COLUMNS                                                                    \
    "id, email, name, role, password_hash, created_at, COALESCE(disabled_at, 0), capacity, "       \
    "(SELECT count(*) FROM conversations x WHERE x.assignee_id = agents.id "                       \
    "  AND x.status != 'resolved')"

/* The columns of a team's row (read by kf_sqlite_read_team) over teams t: its members' ids are
 * one text of comma-separated numbers, ascending. */
#define KF_SQLITE_TEAM_COLUMNS                                                                     \
    "t.id, t.name, t.auto_assign, t.reassign_after, t.created_at, "                                \
    "(SELECT group_concat(agent_id) FROM (SELECT agent_id FROM team_members "                      \
    "  WHERE team_id = t.id ORDER BY agent_id))"

/* The columns of a canned reply's row (read by kf_sqlite_read_canned). */
#define KF_SQLITE_CANNED_COLUMNS "id, COALESCE(owner_id, 0), shortcut, body, created_at, updated_at"

/* The columns of a visitor's row (read by kf_sqlite_read_visitor). */
#define KF_SQLITE_VISITOR_COLUMNS "id, name, created_at, email, COALESCE(user_id, '')"
/* The columns of a visitor's page (read by kf_sqlite_read_visitor_page). */
#define KF_SQLITE_VISITOR_PAGE_COLUMNS                                                             \
    "id, visitor_id, url, title, referrer, user_agent, language, timezone, utc_offset, seen_at"
/* What visitor_search holds for a visitor (through kefu_search_text): their name and e-mail.
 * With no e-mail it is the name alone, as migration 5 and visitor_create indexed it, so that the
 * 'delete' a contentless FTS5 table needs is handed the very text it was given. */
#define KF_SQLITE_VISITOR_SEARCH_TEXT                                                              \
    "CASE WHEN email = '' THEN name WHEN name = '' THEN email ELSE name || ' ' || email END"

/* conversation_counts' key (its migration) of a conversation's row, the columns prefixed with
 * row ("NEW.", "OLD." in a trigger): its team (0 for none), status and holder. */
#define KF_SQLITE_COUNTS_HOLDER(row)                                                               \
    "CASE WHEN " row "status = 'resolved' THEN 0 ELSE COALESCE(" row "assignee_id, 0) END"
#define KF_SQLITE_COUNTS_KEY(row)                                                                  \
    "COALESCE(" row "team_id, 0), " row "status, " KF_SQLITE_COUNTS_HOLDER(row)
/* A trigger's statement: one more, one fewer conversation under row's key. */
#define KF_SQLITE_COUNTS_UPSERT_ONE                                                                \
    ", 1) ON CONFLICT (team_id, status, assignee_id) DO UPDATE SET n = n + 1;"
#define KF_SQLITE_COUNTS_ADD(row)                                                                  \
    "INSERT INTO conversation_counts (team_id, status, assignee_id, n) "                           \
    "VALUES (" KF_SQLITE_COUNTS_KEY(row) KF_SQLITE_COUNTS_UPSERT_ONE
#define KF_SQLITE_COUNTS_SUBTRACT(row)                                                             \
    "UPDATE conversation_counts SET n = n - 1 WHERE team_id = COALESCE(" row "team_id, 0) "        \
    "AND status = " row "status AND assignee_id = " KF_SQLITE_COUNTS_HOLDER(row) ";"

/* The same for the migration and its triggers (clang-format cannot lay out a string built of
 * macro calls). */
#define KF_SQLITE_COUNTS_KEY_COLUMNS KF_SQLITE_COUNTS_KEY("")
#define KF_SQLITE_COUNTS_ADD_NEW KF_SQLITE_COUNTS_ADD("NEW.")
#define KF_SQLITE_COUNTS_SUBTRACT_OLD KF_SQLITE_COUNTS_SUBTRACT("OLD.")
#define KF_SQLITE_COUNTS_KEY_CHANGED                                                               \
    "COALESCE(OLD.team_id, 0) != COALESCE(NEW.team_id, 0) OR OLD.status != NEW.status OR "         \
    "" KF_SQLITE_COUNTS_HOLDER("OLD.") " != " KF_SQLITE_COUNTS_HOLDER("NEW.")

/* The conversations' indexes in the list's order (migration 16; PostgreSQL's migration 2 makes
 * the same): the whole list (which the search walks too), each status, the unassigned, an
 * agent's, and the same four within a team. A view's WHERE (sqlite_internal.h's list
 * statements, pg_reads.c's) is written as its index's, so that the planner takes it. */
#define KF_SQLITE_ACTIVITY_INDEXES                                                                 \
    "CREATE INDEX conversations_by_last_message ON conversations "                                 \
    "  (last_message_id, id, visitor_id);"                                                         \
    "CREATE INDEX conversations_by_status ON conversations "                                       \
    "  (status, last_message_id, id);"                                                             \
    "CREATE INDEX conversations_unassigned ON conversations (last_message_id, id) "                \
    "  WHERE status = 'open' AND assignee_id IS NULL;"                                             \
    "CREATE INDEX conversations_by_assignee ON conversations "                                     \
    "  (assignee_id, last_message_id, id) "                                                        \
    "  WHERE status != 'resolved' AND assignee_id IS NOT NULL;"                                    \
    "CREATE INDEX conversations_by_team ON conversations "                                         \
    "  (team_id, last_message_id, id) WHERE team_id IS NOT NULL;"                                  \
    "CREATE INDEX conversations_by_team_status ON conversations "                                  \
    "  (team_id, status, last_message_id, id) WHERE team_id IS NOT NULL;"                          \
    "CREATE INDEX conversations_team_unassigned ON conversations "                                 \
    "  (team_id, last_message_id, id) "                                                            \
    "  WHERE team_id IS NOT NULL AND status = 'open' AND assignee_id IS NULL;"                     \
    "CREATE INDEX conversations_by_team_assignee ON conversations "                                \
    "  (team_id, assignee_id, last_message_id, id) "                                               \
    "  WHERE team_id IS NOT NULL AND status != 'resolved' AND assignee_id IS NOT NULL;"

/* Migration 16's (and PostgreSQL's 2's) removal of the indexes that came before them. */
#define KF_SQLITE_ACTIVITY_INDEXES_DROP                                                            \
    "DROP INDEX conversations_by_activity;"                                                        \
    "DROP INDEX conversations_by_status;"                                                          \
    "DROP INDEX conversations_by_status_assignee;"                                                 \
    "DROP INDEX conversations_by_assignee;"                                                        \
    "DROP INDEX conversations_by_team;"                                                            \
    "DROP INDEX conversations_by_team_status;"                                                     \
    "DROP INDEX conversations_by_team_status_assignee;"                                            \
    "DROP INDEX conversations_by_team_assignee;"                                                   \
    "DROP INDEX conversations_by_last_message;"

/* What a stored message changes in its conversation (migration 22; triggers did it before): the
 * newest message and its time, which order the views; the first visitor message; and the first
 * reply that is no note to come after it, in its agent's name (the reports). ?1 the conversation,
 * ?2 the message, ?3 its time, ?4 its sender (0 visitor, 1 agent), ?5 whether it is a note, ?6
 * its agent. The writer runs it beside the message's insert rather than as a trigger: a trigger
 * makes the insert a statement that may change several rows, and for such a statement, when a
 * check can stop it midway (a foreign key's can), SQLite copies every page it changes to a
 * statement journal, to undo it alone. Two one-row statements need none, and one update stands
 * for the triggers' three. */
#define KF_SQLITE_FIRST_REPLY_DUE                                                                  \
    "?4 = 1 AND ?5 = 0 AND first_visitor_at IS NOT NULL AND first_reply_at IS NULL "               \
    "AND ?3 >= first_visitor_at"
#define KF_SQLITE_MESSAGE_STAMP                                                                    \
    "UPDATE conversations SET last_message_id = ?2, updated_at = ?3, "                             \
    "first_visitor_at = CASE WHEN ?4 = 0 AND first_visitor_at IS NULL THEN ?3 "                    \
    "ELSE first_visitor_at END, "                                                                  \
    "first_reply_at = CASE WHEN " KF_SQLITE_FIRST_REPLY_DUE " THEN ?3 ELSE first_reply_at END, "   \
    "first_reply_agent_id = CASE WHEN " KF_SQLITE_FIRST_REPLY_DUE " THEN ?6 "                      \
    "ELSE first_reply_agent_id END WHERE id = ?1"

/* The columns of a message row (read by kf_sqlite_read_message) over messages m, conversations c
 * and agents a (LEFT JOINed: NULL for visitor messages), then its attachment's id, name, type and
 * size: primary-key lookups that cost nothing for the messages without one, and keep every query
 * that reads messages free of one more join. */
#define KF_SQLITE_MESSAGE_COLUMNS                                                                  \
    "m.id, m.conversation_id, c.visitor_id, m.sender, COALESCE(m.agent_id, 0), "                   \
    "COALESCE(a.name, ''), m.body, m.created_at, m.private, COALESCE(m.attachment_id, 0), "        \
    "(SELECT f.name FROM attachments f WHERE f.id = m.attachment_id), "                            \
    "(SELECT f.type FROM attachments f WHERE f.id = m.attachment_id), "                            \
    "COALESCE((SELECT f.size FROM attachments f WHERE f.id = m.attachment_id), 0)"

/* A conversation row (read by kf_sqlite_read_conversation): the conversation, its visitor's name,
 * the two unread counts and the newest message (all NULL when it has none).
 * Trade-off: unread counts are counted on every read, by a range scan of the covering index
 * messages_by_conversation (conversation_id, id, sender) past the read mark. That costs
 * O(unread messages) per conversation, which is small while people read their chats; keep
 * counters in the conversations row if lists of long-unread conversations get slow. */
#define KF_SQLITE_CONVERSATION_SELECT KF_SQLITE_CONVERSATION_SELECT_FROM("conversations c ")
/* The same from an index asked for by name, where the planner, without statistics, would take
 * another that also serves the order (the status index for the unassigned, which are open). */
#define KF_SQLITE_CONVERSATION_SELECT_FROM(table)                                                  \
    "SELECT c.id, c.visitor_id, v.name, c.status, c.created_at, c.updated_at, "                    \
    "c.agent_read_up_to, c.visitor_read_up_to, "                                                   \
    "(SELECT count(*) FROM messages u WHERE u.conversation_id = c.id "                             \
    "  AND u.id > c.agent_read_up_to AND u.sender = 0), "                                          \
    "(SELECT count(*) FROM messages u WHERE u.conversation_id = c.id "                             \
    "  AND u.id > c.visitor_read_up_to AND u.sender = 1 AND u.private = "                          \
    "0), " KF_SQLITE_MESSAGE_COLUMNS ", "                                                          \
    "COALESCE(c.snoozed_until, 0), COALESCE(c.assignee_id, 0), ag.email, ag.name, ag.role, "       \
    "COALESCE(c.team_id, 0), tm.name, "                                                            \
    "CASE c.status WHEN 'open' THEN (SELECT min(w.created_at) FROM messages w "                    \
    "  WHERE w.conversation_id = c.id AND w.sender = 0 AND w.id > COALESCE((SELECT max(r.id) "     \
    "  FROM messages r WHERE r.conversation_id = c.id AND r.sender = 1 AND r.private = 0), 0)) "   \
    "END, "                                                                                        \
    "c.rating, c.rating_comment, COALESCE(c.rated_at, 0), "                                        \
    "c.status = 'resolved' AND c.rated_at >= c.resolved_at "                                       \
    "FROM " table "JOIN visitors v ON v.id = c.visitor_id "                                        \
    "LEFT JOIN messages m ON m.id = c.last_message_id "                                            \
    "LEFT JOIN agents a ON a.id = m.agent_id "                                                     \
    "LEFT JOIN agents ag ON ag.id = c.assignee_id LEFT JOIN teams tm ON tm.id = c.team_id "
#define KF_SQLITE_UNASSIGNED_SELECT                                                                \
    KF_SQLITE_CONVERSATION_SELECT_FROM("conversations c INDEXED BY conversations_unassigned ")
#define KF_SQLITE_TEAM_UNASSIGNED_SELECT                                                           \
    KF_SQLITE_CONVERSATION_SELECT_FROM("conversations c INDEXED BY "                               \
                                       "conversations_team_unassigned ")
#define KF_SQLITE_CONVERSATION_LAST_MESSAGE_COLUMN 10
/* Then snoozed_until and the assignee's id, e-mail, name and role (NULL when unassigned), then
 * the team's id and name, then since when the visitor waits: the first of their messages after
 * the last reply (a note is none), while it is open (NULL when nobody waits). Two range scans of
 * the conversation's end in messages_by_conversation_audience, like the unread counts. */
#define KF_SQLITE_CONVERSATION_ASSIGNEE_COLUMN 24
#define KF_SQLITE_CONVERSATION_TEAM_COLUMN 28
#define KF_SQLITE_CONVERSATION_WAITING_COLUMN 30
/* Then the visitor's latest rating (migration "ratings": rating, comment, rated_at; NULLs when
 * there is none) and whether it rates the resolution the conversation is in now. */
#define KF_SQLITE_CONVERSATION_RATING_COLUMN 31

/* Raises a read mark, never lowering it and never past the conversation's newest message (so a
 * mark sent too high cannot pre-read messages that do not exist yet). */
#define KF_SQLITE_MARK_READ(column)                                                                \
    "UPDATE conversations SET " column " = MAX(" column ", MIN(?2, COALESCE("                      \
    "(SELECT id FROM messages WHERE conversation_id = ?1 ORDER BY id DESC LIMIT 1), 0))) "         \
    "WHERE id = ?1"

/* The messages of one query, joined as KF_SQLITE_MESSAGE_COLUMNS wants. */
#define KF_SQLITE_MESSAGES_FROM                                                                    \
    " FROM messages m JOIN conversations c ON c.id = m.conversation_id "                           \
    "LEFT JOIN agents a ON a.id = m.agent_id "

/* The conversation lists' order and page size. */
#define KF_SQLITE_LIST_ORDER "ORDER BY c.last_message_id DESC, c.id DESC LIMIT ?1"

/* A search (?1 the FTS5 expression for the messages, ?2 the message id to stay below, ?3 the
 * limit, ?4 the expression for the names): the newest limit message hits, walked backwards in the
 * index's rowid (message id) order and stopped at the limit, and one hit per conversation of each
 * visitor whose name matches, at the conversation's newest message (last_message_id); one row per
 * message (a text hit before a name hit), newest first. names finds the name hits, two ways.
 * KF_SQLITE_SEARCH_FEW: every matching visitor's conversations, looked up by visitor, all before
 * the page is cut; for a name few visitors bear (fewer than KF_SQLITE_SEARCH_MANY_NAMES, counted
 * first by SEARCH_NAME_HITS). KF_SQLITE_SEARCH_MANY: the conversations newest message first
 * (conversations_by_last_message), stopped at the page, each one's visitor tested by
 * kefu_name_walk (?5, sqlite_names.c): about limit x conversations / matching visitors of them,
 * where the other way looks up thousands. The walk reads the matching visitors newest first
 * (VISITOR_NAME_MATCHES) only as far down as the visitors it is asked about, and tests one far
 * below by the visitor's own text: never every visitor the history holds. A name's ASCII
 * prefixes are asked as their words (expand_prefixes, visitor_search_terms), since FTS5 merges a
 * prefix's whole doclists before it hands over the first row. Private notes are found too: search
 * is for agents only, and each hit's message says whether it is one. */
#define KF_SQLITE_SEARCH(names)                                                                    \
    "SELECT h.field, " KF_SQLITE_MESSAGE_COLUMNS ", v.name, v.email FROM ("                        \
    "  SELECT id, min(field) AS field FROM ("                                                      \
    "    SELECT * FROM (SELECT rowid AS id, 0 AS field FROM message_search "                       \
    "      WHERE message_search MATCH ?1 AND rowid < ?2 ORDER BY rowid DESC LIMIT ?3) "            \
    "    UNION ALL " names "  ) WHERE id < ?2 GROUP BY id ORDER BY id DESC LIMIT ?3"               \
    ") h JOIN messages m ON m.id = h.id JOIN conversations c ON c.id = m.conversation_id "         \
    "JOIN visitors v ON v.id = c.visitor_id LEFT JOIN agents a ON a.id = m.agent_id "              \
    "ORDER BY m.id DESC"
#define KF_SQLITE_SEARCH_FEW                                                                       \
    KF_SQLITE_SEARCH("SELECT n.last_message_id AS id, 1 AS field "                                 \
                     "FROM visitor_search JOIN conversations n "                                   \
                     "  ON n.visitor_id = visitor_search.rowid "                                   \
                     "WHERE visitor_search MATCH ?4 AND n.last_message_id > 0")
#define KF_SQLITE_SEARCH_MANY                                                                      \
    KF_SQLITE_SEARCH("SELECT * FROM (SELECT n.last_message_id AS id, 1 AS field "                  \
                     "FROM conversations n INDEXED BY conversations_by_last_message "              \
                     "WHERE n.last_message_id < ?2 AND n.last_message_id > 0 "                     \
                     "  AND kefu_name_walk(?5, n.visitor_id) "                                     \
                     "ORDER BY n.last_message_id DESC LIMIT ?3)")
/* Matching visitors from which a search takes its name hits the KF_SQLITE_SEARCH_MANY way. */
#define KF_SQLITE_SEARCH_MANY_NAMES 500
/* Fills search_words with the words of the messages' index that begin with two ASCII letters or
 * digits (as kefu_search_words picks them from a text): migrations 19 and 20, and a store filled
 * by other means than the writer (kf_history_bench). A read of the whole index, once. */
#define KF_SQLITE_SEARCH_WORDS_FILL                                                                \
    "CREATE VIRTUAL TABLE temp.message_search_words USING fts5vocab(main, message_search, row);"   \
    "INSERT OR IGNORE INTO search_words (word) SELECT term FROM temp.message_search_words "        \
    "  WHERE term GLOB '[0-9a-z][0-9a-z]*';"                                                       \
    "DROP TABLE temp.message_search_words;"
/* The same for name_words and the names' index: migration 21, and the bench's fills. */
#define KF_SQLITE_NAME_WORDS_FILL                                                                  \
    "CREATE VIRTUAL TABLE temp.visitor_search_words USING fts5vocab(main, visitor_search, row);"   \
    "INSERT OR IGNORE INTO name_words (word) SELECT term FROM temp.visitor_search_words "          \
    "  WHERE term GLOB '[0-9a-z][0-9a-z]*';"                                                       \
    "DROP TABLE temp.visitor_search_words;"
/* A visitor's words (their text as visitor_search holds it) into name_words: ?1 is the visitor's
 * id; a visitor without a name or an e-mail adds none. */
#define KF_SQLITE_NAME_WORDS_OF_VISITOR                                                            \
    "INSERT OR IGNORE INTO name_words (word) SELECT value FROM json_each(("                        \
    "  SELECT kefu_search_words(kefu_search_text(" KF_SQLITE_VISITOR_SEARCH_TEXT "))"              \
    "  FROM visitors WHERE id = ?1 AND (name != '' OR email != '')))"
/* The most words a prefix of the messages' search stands for as an OR of them (expand_prefixes). */
#define KF_SQLITE_SEARCH_PREFIX_WORDS 16

/* The columns of an API token's, a webhook's, a pending delivery's and a logged attempt's rows
 * (read by sqlite_integrations.c). */
#define KF_SQLITE_API_TOKEN_COLUMNS                                                                \
    "id, name, scope, COALESCE(created_by, 0), created_at, COALESCE(last_used_at, 0)"
#define KF_SQLITE_WEBHOOK_COLUMNS "id, url, events, secret, created_at"
#define KF_SQLITE_DELIVERY_COLUMNS                                                                 \
    "d.id, d.webhook_id, w.url, w.secret, d.event, d.body, d.created_at, d.attempts, d.next_at"
#define KF_SQLITE_ATTEMPT_COLUMNS                                                                  \
    "id, webhook_id, delivery_id, event, attempt, at, status, error, next_at"

/* The statements of API tokens and webhooks (sqlite_integrations.c, migration "integrations").
 * A webhook's events are kept as ",a,b," so that one instr() finds a name whole. */
#define KF_SQLITE_INTEGRATION_STATEMENTS(X)                                                        \
    X(API_TOKEN_CREATE, "INSERT INTO api_tokens (name, scope, token_hash, created_by, "            \
                        "created_at) VALUES (?1, ?2, ?3, ?4, ?5)")                                 \
    X(API_TOKEN_BY_ID, "SELECT " KF_SQLITE_API_TOKEN_COLUMNS " FROM api_tokens WHERE id = ?1")     \
    X(API_TOKEN_LIST, "SELECT " KF_SQLITE_API_TOKEN_COLUMNS " FROM api_tokens ORDER BY id")        \
    X(API_TOKEN_BY_HASH,                                                                           \
      "SELECT " KF_SQLITE_API_TOKEN_COLUMNS " FROM api_tokens WHERE token_hash = ?1")              \
    X(API_TOKEN_DELETE, "DELETE FROM api_tokens WHERE id = ?1")                                    \
    X(API_TOKEN_TOUCH, "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1")                    \
    X(WEBHOOK_CREATE, "INSERT INTO webhooks (url, events, secret, created_at) "                    \
                      "VALUES (?1, ',' || ?2 || ',', ?3, ?4)")                                     \
    X(WEBHOOK_BY_ID, "SELECT " KF_SQLITE_WEBHOOK_COLUMNS " FROM webhooks WHERE id = ?1")           \
    X(WEBHOOK_LIST, "SELECT " KF_SQLITE_WEBHOOK_COLUMNS " FROM webhooks ORDER BY id")              \
    X(WEBHOOK_DELETE, "DELETE FROM webhooks WHERE id = ?1")                                        \
    X(WEBHOOK_ENQUEUE, "INSERT INTO webhook_deliveries (webhook_id, event, body, created_at, "     \
                       "attempts, next_at) SELECT id, ?1, ?2, ?3, 0, ?3 FROM webhooks "            \
                       "WHERE instr(events, ',' || ?1 || ',') > 0")                                \
    X(WEBHOOK_DUE, "SELECT " KF_SQLITE_DELIVERY_COLUMNS " FROM webhook_deliveries d "              \
                   "JOIN webhooks w ON w.id = d.webhook_id WHERE d.next_at <= ?1 "                 \
                   "ORDER BY d.next_at, d.id LIMIT ?2")                                            \
    X(WEBHOOK_ATTEMPT_INSERT,                                                                      \
      "INSERT INTO webhook_attempts (webhook_id, delivery_id, event, attempt, at, status, error, " \
      "next_at) SELECT webhook_id, id, event, attempts + 1, ?2, ?3, ?4, ?5 "                       \
      "FROM webhook_deliveries WHERE id = ?1")                                                     \
    X(WEBHOOK_OF_DELIVERY, "SELECT webhook_id FROM webhook_deliveries WHERE id = ?1")              \
    X(WEBHOOK_DELIVERY_DONE, "DELETE FROM webhook_deliveries WHERE id = ?1")                       \
    X(WEBHOOK_DELIVERY_RETRY, "UPDATE webhook_deliveries SET attempts = attempts + 1, "            \
                              "next_at = ?2 WHERE id = ?1")                                        \
    /* Keeps the newest ?2 of a webhook's attempts, as VISITOR_PAGES_TRIM does. */                 \
    X(WEBHOOK_ATTEMPTS_TRIM, "DELETE FROM webhook_attempts WHERE webhook_id = ?1 AND id <= "       \
                             "(SELECT id FROM webhook_attempts WHERE webhook_id = ?1 "             \
                             "ORDER BY id DESC LIMIT 1 OFFSET ?2)")                                \
    X(WEBHOOK_ATTEMPTS, "SELECT " KF_SQLITE_ATTEMPT_COLUMNS " FROM webhook_attempts "              \
                        "WHERE webhook_id = ?1 ORDER BY id DESC LIMIT ?2")

/* X(name, sql): every statement the store runs, prepared once on each connection at open. */
#define KF_SQLITE_STATEMENTS(X)                                                                    \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                    \
    X(COMMIT, "COMMIT")                                                                            \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    /* A read's snapshot across several statements (the loop's connection: it never writes). */    \
    X(READ_BEGIN, "BEGIN DEFERRED")                                                                \
    X(SETTING_GET, "SELECT value FROM settings WHERE key = ?1")                                    \
    X(SETTING_SET, "INSERT INTO settings (key, value) VALUES (?1, ?2) "                            \
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value")                       \
    X(AGENT_CREATE, "INSERT INTO agents (email, name, role, password_hash, created_at) "           \
                    "VALUES (?1, ?2, ?3, ?4, ?5)")                                                 \
    X(AGENT_COUNT, "SELECT count(*) FROM agents")                                                  \
    X(MESSAGE_NEWEST, "SELECT COALESCE(max(id), 0) FROM messages")                                 \
    X(AGENT_BY_EMAIL, "SELECT " KF_SQLITE_AGENT_COLUMNS " FROM agents WHERE email = ?1")           \
    X(AGENT_BY_ID, "SELECT " KF_SQLITE_AGENT_COLUMNS " FROM agents WHERE id = ?1")                 \
    X(AGENT_LIST, "SELECT " KF_SQLITE_AGENT_COLUMNS " FROM agents ORDER BY id")                    \
    /* What a write in an agent's name needs: the name, and whether the agent may still write. */  \
    X(AGENT_STANDING, "SELECT name, disabled_at IS NOT NULL FROM agents WHERE id = ?1")            \
    X(AGENT_OTHER_ADMINS, "SELECT count(*) FROM agents WHERE role = 'admin' "                      \
                          "AND disabled_at IS NULL AND id != ?1")                                  \
    /* ?4 is the kf_agent_state_t: 1 enables, 2 disables (keeping the first disabled_at). */       \
    X(AGENT_UPDATE,                                                                                \
      "UPDATE agents SET name = COALESCE(?2, name), role = COALESCE(?3, role), "                   \
      "disabled_at = CASE ?4 WHEN 1 THEN NULL WHEN 2 THEN COALESCE(disabled_at, ?5) "              \
      "ELSE disabled_at END, password_hash = COALESCE(?6, password_hash) WHERE id = ?1")           \
    X(SESSION_PURGE, "DELETE FROM sessions WHERE expires_at <= ?1")                                \
    X(SESSION_CREATE, "INSERT INTO sessions (token_hash, agent_id, csrf, created_at, expires_at) " \
                      "VALUES (?1, ?2, ?3, ?4, ?5)")                                               \
    X(SESSION_GET, "SELECT agent_id, csrf, expires_at FROM sessions "                              \
                   "WHERE token_hash = ?1 AND expires_at > ?2")                                    \
    X(SESSION_DELETE, "DELETE FROM sessions WHERE token_hash = ?1")                                \
    /* A disabled agent's sessions stay (refused with their agent) until it is enabled again. */   \
    X(SESSION_COUNT_OF_ENABLED_AGENT,                                                              \
      "SELECT count(*) FROM sessions WHERE agent_id = ?1 AND expires_at > ?2 "                     \
      "AND (SELECT disabled_at FROM agents WHERE id = ?1) IS NULL")                                \
    X(SESSION_DELETE_OF_DISABLED_AGENT,                                                            \
      "DELETE FROM sessions WHERE agent_id = ?1 "                                                  \
      "AND (SELECT disabled_at FROM agents WHERE id = ?1) IS NOT NULL")                            \
    X(SESSION_DELETE_OTHERS_OF_AGENT,                                                              \
      "DELETE FROM sessions WHERE agent_id = ?1 AND token_hash IS NOT ?2")                         \
    X(VISITOR_CREATE, "INSERT INTO visitors (token_hash, name, created_at) VALUES (?1, ?2, ?3)")   \
    /* A visitor's first token is in their row; a verified visitor's later ones (another device)   \
     * in visitor_tokens. */                                                                       \
    X(VISITOR_BY_TOKEN,                                                                            \
      "SELECT " KF_SQLITE_VISITOR_COLUMNS " FROM visitors WHERE token_hash = ?1 "                  \
      "UNION ALL SELECT " KF_SQLITE_VISITOR_COLUMNS " FROM visitors WHERE id = "                   \
      "(SELECT visitor_id FROM visitor_tokens WHERE token_hash = ?1) LIMIT 1")                     \
    X(VISITOR_EXISTS, "SELECT 1 FROM visitors WHERE id = ?1")                                      \
    /* A visitor's thread is their newest conversation (older ones are from before schema 4). */   \
    X(CONVERSATION_OF_VISITOR, "SELECT id FROM conversations WHERE visitor_id = ?1 "               \
                               "ORDER BY id DESC LIMIT 1")                                         \
    X(CONVERSATION_REOPEN, "UPDATE conversations SET status = 'open', snoozed_until = NULL, "      \
                           "resolved_at = NULL, resolved_by = NULL "                               \
                           "WHERE id = ?1 AND status IN ('resolved', 'snoozed')")                  \
    X(CONVERSATION_CREATE, "INSERT INTO conversations (visitor_id, status, created_at, "           \
                           "updated_at, agent_read_up_to, visitor_read_up_to) "                    \
                           "VALUES (?1, 'open', ?2, ?2, 0, 0)")                                    \
    X(CONVERSATION_GET, KF_SQLITE_CONVERSATION_SELECT "WHERE c.id = ?1")                           \
    /* Keyset paging: the row value comparison is a range of conversations_by_last_message.        \
     * The order is the newest message's id, which a message moves in one entry of each index      \
     * its conversation is in (migration 16). */                                                   \
    X(CONVERSATION_LIST, KF_SQLITE_CONVERSATION_SELECT                                             \
      "WHERE (c.last_message_id, c.id) < (?2, ?3) " KF_SQLITE_LIST_ORDER)                          \
    /* The views: each WHERE is written as its index's (migration 16) so that the planner takes    \
     * it, and each is a range of that index in the list's order, without a sort. */               \
    X(CONVERSATION_LIST_STATUS, KF_SQLITE_CONVERSATION_SELECT                                      \
      "WHERE c.status = ?4 AND (c.last_message_id, c.id) < (?2, ?3) " KF_SQLITE_LIST_ORDER)        \
    X(CONVERSATION_LIST_UNASSIGNED, KF_SQLITE_UNASSIGNED_SELECT                                    \
      "WHERE c.status = 'open' AND c.assignee_id IS NULL "                                         \
      "AND (c.last_message_id, c.id) < (?2, ?3) " KF_SQLITE_LIST_ORDER)                            \
    X(CONVERSATION_LIST_MINE, KF_SQLITE_CONVERSATION_SELECT                                        \
      "WHERE c.assignee_id = ?4 AND c.status != 'resolved' "                                       \
      "AND (c.last_message_id, c.id) < (?2, ?3) " KF_SQLITE_LIST_ORDER)                            \
    /* Every view's count, in kf_conversation_view_t's order: sums over conversation_counts (its   \
     * migration), a table of teams x statuses x agents holding work, not of conversations. ?1 0   \
     * is no agent: nothing is its. */                                                             \
    X(CONVERSATION_COUNTS,                                                                         \
      "SELECT ifnull(sum(n), 0), "                                                                 \
      "ifnull(sum(n) FILTER (WHERE status = 'open' AND assignee_id = 0), 0), "                     \
      "ifnull(sum(n) FILTER (WHERE assignee_id = ?1 AND ?1 != 0 AND status != 'resolved'), 0), "   \
      "ifnull(sum(n) FILTER (WHERE status = 'open'), 0), "                                         \
      "ifnull(sum(n) FILTER (WHERE status = 'pending'), 0), "                                      \
      "ifnull(sum(n) FILTER (WHERE status = 'resolved'), 0), "                                     \
      "ifnull(sum(n) FILTER (WHERE status = 'snoozed'), 0) FROM conversation_counts")              \
    /* One team's views (migration 16's indexes, team_id first), ?5 the team. */                   \
    X(CONVERSATION_LIST_TEAM, KF_SQLITE_CONVERSATION_SELECT                                        \
      "WHERE c.team_id = ?5 AND (c.last_message_id, c.id) < (?2, ?3) " KF_SQLITE_LIST_ORDER)       \
    X(CONVERSATION_LIST_TEAM_STATUS, KF_SQLITE_CONVERSATION_SELECT                                 \
      "WHERE c.team_id = ?5 AND c.status = ?4 AND (c.last_message_id, "                            \
      "c.id) < (?2, ?3) " KF_SQLITE_LIST_ORDER)                                                    \
    X(CONVERSATION_LIST_TEAM_UNASSIGNED, KF_SQLITE_TEAM_UNASSIGNED_SELECT                          \
      "WHERE c.team_id = ?5 AND c.status = 'open' AND c.assignee_id IS NULL "                      \
      "AND (c.last_message_id, c.id) < (?2, ?3) " KF_SQLITE_LIST_ORDER)                            \
    X(CONVERSATION_LIST_TEAM_MINE, KF_SQLITE_CONVERSATION_SELECT                                   \
      "WHERE c.team_id = ?5 AND c.assignee_id = ?4 AND c.status != 'resolved' "                    \
      "AND (c.last_message_id, c.id) < (?2, ?3) " KF_SQLITE_LIST_ORDER)                            \
    /* Every team's counts, in kf_conversation_view_t's order, from conversation_counts' rows of   \
     * teams (team_id first in its key: a range, in team order); a team whose conversations all    \
     * left it has none. ?1 NULL (no agent): nothing is its. */                                    \
    X(CONVERSATION_TEAM_COUNTS,                                                                    \
      "SELECT team_id, sum(n), "                                                                   \
      "ifnull(sum(n) FILTER (WHERE status = 'open' AND assignee_id = 0), 0), "                     \
      "ifnull(sum(n) FILTER (WHERE assignee_id = ?1 AND status != 'resolved'), 0), "               \
      "ifnull(sum(n) FILTER (WHERE status = 'open'), 0), "                                         \
      "ifnull(sum(n) FILTER (WHERE status = 'pending'), 0), "                                      \
      "ifnull(sum(n) FILTER (WHERE status = 'resolved'), 0), "                                     \
      "ifnull(sum(n) FILTER (WHERE status = 'snoozed'), 0) FROM conversation_counts "              \
      "WHERE team_id > 0 GROUP BY team_id HAVING sum(n) > 0 ORDER BY team_id")                     \
    /* Resolving stamps when and in whose hands (a resolved one resolved again keeps its first     \
     * stamp); any other status clears them (a report's resolution time, migration "reports"). */  \
    X(CONVERSATION_SET_STATUS,                                                                     \
      "UPDATE conversations SET status = ?2, snoozed_until = ?3, "                                 \
      "resolved_at = CASE WHEN ?2 != 'resolved' THEN NULL WHEN status = 'resolved' "               \
      "  THEN resolved_at ELSE ?4 END, "                                                           \
      "resolved_by = CASE WHEN ?2 != 'resolved' THEN NULL WHEN status = 'resolved' "               \
      "  THEN resolved_by ELSE assignee_id END WHERE id = ?1")                                     \
    /* A claim is one conditional write: of claims racing for one conversation, the first to       \
     * commit changes the row and the others find it held (changes() == 0). */                     \
    X(CONVERSATION_CLAIM,                                                                          \
      "UPDATE conversations SET assignee_id = ?2 WHERE id = ?1 "                                   \
      "AND status != 'resolved' AND (assignee_id IS NULL OR assignee_id = ?2)")                    \
    X(CONVERSATION_HOLDER, "SELECT COALESCE(assignee_id, 0) FROM conversations WHERE id = ?1")     \
    /* ?3 and ?5 say whether the holder (?2) and the team (?4) change. */                          \
    X(CONVERSATION_ASSIGN, "UPDATE conversations SET "                                             \
                           "assignee_id = CASE WHEN ?3 THEN ?2 ELSE assignee_id END, "             \
                           "team_id = CASE WHEN ?5 THEN ?4 ELSE team_id END WHERE id = ?1")        \
    /* Automatic assignment (store.h: conversation_autoassign): one conditional write, the         \
     * capacity counted in it. */                                                                  \
    X(CONVERSATION_AUTOASSIGN,                                                                     \
      "UPDATE conversations SET assignee_id = ?4 WHERE id = ?1 AND status = 'open' "               \
      "AND team_id = ?2 AND assignee_id IS ?3 "                                                    \
      "AND EXISTS (SELECT 1 FROM team_members WHERE team_id = ?2 AND agent_id = ?4) "              \
      "AND EXISTS (SELECT 1 FROM agents a WHERE a.id = ?4 AND a.disabled_at IS NULL "              \
      "  AND (a.capacity = 0 OR (SELECT count(*) FROM conversations x "                            \
      "    WHERE x.assignee_id = ?4 AND x.status != 'resolved') < a.capacity))")                   \
    /* Disabling an agent: what it held, then letting go of it. */                                 \
    X(CONVERSATION_HELD_BY, "SELECT id FROM conversations WHERE assignee_id = ?1 "                 \
                            "AND status != 'resolved'")                                            \
    X(CONVERSATION_RELEASE_ALL, "UPDATE conversations SET assignee_id = NULL "                     \
                                "WHERE assignee_id = ?1 AND status != 'resolved'")                 \
    X(AGENT_SET_CAPACITY, "UPDATE agents SET capacity = ?2 WHERE id = ?1")                         \
    X(TEAM_LIST, "SELECT " KF_SQLITE_TEAM_COLUMNS " FROM teams t ORDER BY t.name, t.id")           \
    X(TEAM_BY_ID, "SELECT " KF_SQLITE_TEAM_COLUMNS " FROM teams t WHERE t.id = ?1")                \
    X(TEAM_EXISTS, "SELECT 1 FROM teams WHERE id = ?1")                                            \
    X(TEAM_CREATE, "INSERT INTO teams (name, auto_assign, reassign_after, created_at) "            \
                   "VALUES (?1, COALESCE(?2, 'off'), MAX(?3, 0), ?4)")                             \
    X(TEAM_UPDATE, "UPDATE teams SET name = COALESCE(?2, name), "                                  \
                   "auto_assign = COALESCE(?3, auto_assign), "                                     \
                   "reassign_after = CASE WHEN ?4 >= 0 THEN ?4 ELSE reassign_after END "           \
                   "WHERE id = ?1")                                                                \
    X(TEAM_MEMBERS_CLEAR, "DELETE FROM team_members WHERE team_id = ?1")                           \
    X(TEAM_MEMBER_ADD, "INSERT OR IGNORE INTO team_members (team_id, agent_id) VALUES (?1, ?2)")   \
    X(CONVERSATION_SNOOZE_DUE, "SELECT id FROM conversations INDEXED BY conversations_snoozed "    \
                               "WHERE status = 'snoozed' AND snoozed_until <= ?1 "                 \
                               "ORDER BY snoozed_until LIMIT 1")                                   \
    X(CONVERSATION_WAKE, "UPDATE conversations SET status = 'open', snoozed_until = NULL "         \
                         "WHERE id = ?1 AND status = 'snoozed' AND snoozed_until <= ?2")           \
    X(CONVERSATION_EXISTS, "SELECT 1 FROM conversations WHERE id = ?1")                            \
    /* A rating is one conditional write: only a resolved conversation takes one (migration        \
     * "ratings"), and it is the resolver's. */                                                    \
    X(CONVERSATION_RATE, "UPDATE conversations SET rating = ?2, rating_comment = ?3, "             \
                         "rated_at = ?4, rating_agent_id = resolved_by "                           \
                         "WHERE id = ?1 AND status = 'resolved'")                                  \
    X(CONVERSATION_MARK_READ_AGENTS, KF_SQLITE_MARK_READ("agent_read_up_to"))                      \
    X(CONVERSATION_MARK_READ_VISITOR, KF_SQLITE_MARK_READ("visitor_read_up_to"))                   \
    X(CONVERSATION_VISITOR, "SELECT visitor_id FROM conversations WHERE id = ?1")                  \
    X(MESSAGE_INSERT,                                                                              \
      "INSERT INTO messages (conversation_id, sender, agent_id, body, created_at, "                \
      "idempotency_key, idempotency_owner, private, attachment_id) "                               \
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")                                               \
    X(MESSAGE_STAMP, KF_SQLITE_MESSAGE_STAMP)                                                      \
    X(ATTACHMENT_INSERT,                                                                           \
      "INSERT INTO attachments (conversation_id, sender, uploader_id, name, type, size, sha256, "  \
      "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")                                       \
    /* An attachment, with what says who may read it: its conversation's visitor and whether its   \
     * message is a private note. */                                                               \
    X(ATTACHMENT_GET,                                                                              \
      "SELECT f.id, f.conversation_id, c.visitor_id, COALESCE(m.id, 0), COALESCE(m.private, 0), "  \
      "f.sender, COALESCE(f.uploader_id, 0), f.name, f.type, f.size, f.sha256, f.created_at "      \
      "FROM attachments f JOIN conversations c ON c.id = f.conversation_id "                       \
      "LEFT JOIN messages m ON m.attachment_id = f.id WHERE f.id = ?1")                            \
    /* A sender's earlier message with the same idempotency key (messages_by_idempotency_key). */  \
    X(MESSAGE_BY_KEY, "SELECT " KF_SQLITE_MESSAGE_COLUMNS KF_SQLITE_MESSAGES_FROM                  \
                      "WHERE m.sender = ?1 AND m.idempotency_owner = ?2 "                          \
                      "AND m.idempotency_key = ?3")                                                \
    X(MESSAGES_IN_CONVERSATION, "SELECT " KF_SQLITE_MESSAGE_COLUMNS KF_SQLITE_MESSAGES_FROM        \
                                "WHERE m.conversation_id = ?1 AND m.id > ?2 ORDER BY m.id "        \
                                "LIMIT ?3")                                                        \
    /* CROSS JOIN pins the loop order: the visitor's few conversations outside, then a range of    \
     * messages_by_conversation in each, then a sort of just those rows. Left to itself the        \
     * planner may walk every message in id order to avoid the sort. This is the visitor's read:   \
     * private notes never leave it (docs/SECURITY.md), whoever asks, from any cursor. */          \
    X(MESSAGES_OF_VISITOR,                                                                         \
      "SELECT " KF_SQLITE_MESSAGE_COLUMNS " FROM conversations c "                                 \
      "CROSS JOIN messages m ON m.conversation_id = c.id LEFT JOIN agents a ON a.id = m.agent_id " \
      "WHERE c.visitor_id = ?1 AND m.id > ?2 AND m.private = 0 ORDER BY m.id LIMIT ?3")            \
    X(MESSAGES_ALL, "SELECT " KF_SQLITE_MESSAGE_COLUMNS KF_SQLITE_MESSAGES_FROM                    \
                    "WHERE m.id > ?1 ORDER BY m.id LIMIT ?2")                                      \
    /* The search index fed in batches (migration 17, KF_SQLITE_SEARCH_BATCH). */                  \
    X(SEARCH_PENDING_ADD, "INSERT INTO search_pending (id) VALUES (?1)")                           \
    X(SEARCH_PENDING_INDEX, "INSERT INTO message_search (rowid, text) "                            \
                            "SELECT m.id, kefu_search_text(m.body) FROM search_pending p "         \
                            "JOIN messages m ON m.id = p.id ORDER BY p.id")                        \
    /* The words of what SEARCH_PENDING_INDEX indexes, into search_words (migration 19). */        \
    X(SEARCH_PENDING_WORDS, "INSERT OR IGNORE INTO search_words (word) SELECT w.value "            \
                            "FROM search_pending p JOIN messages m ON m.id = p.id, "               \
                            "json_each(kefu_search_words(kefu_search_text(m.body))) w")            \
    X(SEARCH_PENDING_CLEAR, "DELETE FROM search_pending")                                          \
    X(SEARCH_PENDING_COUNT, "SELECT count(*) FROM search_pending")                                 \
    /* A step of the indexes' merge in idle time (KF_SQLITE_MERGE_PAGES_SQL, migration 23). */     \
    X(SEARCH_MERGE_MESSAGES, KF_SQLITE_SEARCH_MERGE("message_search", KF_SQLITE_MERGE_PAGES_SQL))  \
    X(SEARCH_MERGE_VISITORS, KF_SQLITE_SEARCH_MERGE("visitor_search", KF_SQLITE_MERGE_PAGES_SQL))  \
    X(VISITOR_SEARCH_INSERT, "INSERT INTO visitor_search (rowid, text) "                           \
                             "VALUES (?1, kefu_search_text(?2))")                                  \
    X(SEARCH, KF_SQLITE_SEARCH_FEW)                                                                \
    X(SEARCH_MANY, KF_SQLITE_SEARCH_MANY)                                                          \
    /* The first term of the messages' index from ?1 (inclusive) below ?2, in the index's order    \
     * (bytes): a seek, whatever the term's hits (store: expand_prefixes). */                      \
    X(SEARCH_TERM_NEXT, "SELECT word FROM search_words WHERE word >= ?1 AND word < ?2 LIMIT 1")    \
    /* The first word of the names' index from ?1 (inclusive) below ?2 (as SEARCH_TERM_NEXT). */   \
    X(VISITOR_TERM_NEXT, "SELECT word FROM name_words WHERE word >= ?1 AND word < ?2 LIMIT 1")     \
    X(NAME_WORDS_OF_VISITOR, KF_SQLITE_NAME_WORDS_OF_VISITOR)                                      \
    /* The visitors whose name matches ?1, newest first: read by kefu_name_walk as it needs them.  \
     */                                                                                            \
    X(VISITOR_NAME_MATCHES, "SELECT rowid FROM visitor_search WHERE visitor_search MATCH ?1 "      \
                            "ORDER BY rowid DESC")                                                 \
    /* A visitor's text as visitor_search holds it (sqlite_names.c tests it). */                   \
    X(VISITOR_NAME_TEXT, "SELECT kefu_search_text(" KF_SQLITE_VISITOR_SEARCH_TEXT ") "             \
                         "FROM visitors WHERE id = ?1 AND (name != '' OR email != '')")            \
    /* Whether a name is common: its matching visitors, counted up to ?2. */                       \
    X(SEARCH_NAME_HITS, "SELECT count(*) FROM (SELECT 1 FROM visitor_search "                      \
                        "WHERE visitor_search MATCH ?1 LIMIT ?2)")                                 \
    /* Canned replies (migration 6): what one agent sees is the team's (owner_id NULL) and their   \
     * own, written as canned_by_owner's expression so that both are ranges of it; shortcut is     \
     * COLLATE NOCASE, so = and ORDER BY ignore ASCII case. */                                     \
    X(CANNED_LIST, "SELECT " KF_SQLITE_CANNED_COLUMNS " FROM canned_replies "                      \
                   "WHERE COALESCE(owner_id, 0) IN (0, ?1) ORDER BY shortcut, id")                 \
    X(CANNED_BY_ID, "SELECT " KF_SQLITE_CANNED_COLUMNS " FROM canned_replies WHERE id = ?1")       \
    X(CANNED_TAKEN, "SELECT 1 FROM canned_replies WHERE COALESCE(owner_id, 0) IN (0, ?2) "         \
                    "AND shortcut = ?1 AND id != ?3")                                              \
    X(CANNED_CREATE, "INSERT INTO canned_replies (owner_id, shortcut, body, created_at, "          \
                     "updated_at) VALUES (?1, ?2, ?3, ?4, ?4)")                                    \
    X(CANNED_UPDATE, "UPDATE canned_replies SET shortcut = COALESCE(?2, shortcut), "               \
                     "body = COALESCE(?3, body), updated_at = ?4 WHERE id = ?1")                   \
    X(CANNED_DELETE, "DELETE FROM canned_replies WHERE id = ?1")                                   \
    /* Visitor details (migration 7). */                                                           \
    X(VISITOR_GET, "SELECT " KF_SQLITE_VISITOR_COLUMNS " FROM visitors WHERE id = ?1")             \
    X(VISITOR_UPDATE, "UPDATE visitors SET name = COALESCE(?2, name), "                            \
                      "email = COALESCE(?3, email) WHERE id = ?1")                                 \
    /* Run before and after VISITOR_UPDATE: the old text out of the index, the new one in. */      \
    X(VISITOR_SEARCH_DELETE,                                                                       \
      "INSERT INTO visitor_search (visitor_search, rowid, text) "                                  \
      "SELECT 'delete', id, kefu_search_text(" KF_SQLITE_VISITOR_SEARCH_TEXT                       \
      ") FROM visitors WHERE id = ?1 AND (name != '' OR email != '')")                             \
    X(VISITOR_SEARCH_REINDEX, "INSERT INTO visitor_search (rowid, text) "                          \
                              "SELECT id, kefu_search_text(" KF_SQLITE_VISITOR_SEARCH_TEXT         \
                              ") FROM visitors WHERE id = ?1 AND (name != '' OR email != '')")     \
    /* Verified identities (docs/IDENTITY.md): a nonce is taken while it is unexpired. */          \
    X(IDENTITY_NONCE_SEEN, "SELECT 1 FROM identity_nonces WHERE nonce = ?1 AND expires_at > ?2")   \
    X(IDENTITY_NONCE_PURGE, "DELETE FROM identity_nonces WHERE expires_at <= ?1")                  \
    X(IDENTITY_NONCE_INSERT, "INSERT OR REPLACE INTO identity_nonces (nonce, expires_at) "         \
                             "VALUES (?1, ?2)")                                                    \
    X(VISITOR_BY_USER, "SELECT id FROM visitors WHERE user_id = ?1")                               \
    X(VISITOR_CREATE_USER, "INSERT INTO visitors (token_hash, name, created_at, email, user_id) "  \
                           "VALUES (?1, ?2, ?3, ?4, ?5)")                                          \
    X(VISITOR_TOKEN_ADD, "INSERT INTO visitor_tokens (token_hash, visitor_id, created_at) "        \
                         "VALUES (?1, ?2, ?3)")                                                    \
    X(VISITOR_PAGE_INSERT, "INSERT INTO visitor_pages (visitor_id, url, title, referrer, "         \
                           "user_agent, language, timezone, utc_offset, seen_at) "                 \
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")                          \
    /* Keeps the newest ?2 rows: deletes from the (?2 + 1)-th newest down, a range of the index.   \
     */                                                                                            \
    X(VISITOR_PAGES_TRIM, "DELETE FROM visitor_pages WHERE visitor_id = ?1 AND id <= "             \
                          "(SELECT id FROM visitor_pages WHERE visitor_id = ?1 "                   \
                          "ORDER BY id DESC LIMIT 1 OFFSET ?2)")                                   \
    X(VISITOR_PAGES, "SELECT " KF_SQLITE_VISITOR_PAGE_COLUMNS " FROM visitor_pages "               \
                     "WHERE visitor_id = ?1 ORDER BY id DESC LIMIT ?2")                            \
    /* The visitor's conversations and those of every visitor with their e-mail (the partial       \
     * index visitors_by_email), newest activity first. */                                         \
    X(VISITOR_CONVERSATIONS, KF_SQLITE_CONVERSATION_SELECT                                         \
      "WHERE c.visitor_id = ?1 OR c.visitor_id IN (SELECT o.id FROM visitors o "                   \
      "  JOIN visitors me ON me.id = ?1 AND me.email != '' WHERE o.email = me.email "              \
      "  AND o.email != '') ORDER BY c.updated_at DESC, c.id DESC LIMIT ?2")                       \
    KF_SQLITE_INTEGRATION_STATEMENTS(X)

typedef enum {
#define KF_SQLITE_STMT_ENUM(name, sql) STMT_##name,
    KF_SQLITE_STATEMENTS(KF_SQLITE_STMT_ENUM)
#undef KF_SQLITE_STMT_ENUM
        STMT_COUNT
} stmt_id_t;

/* One connection and its statements. A connection is used by one thread only. */
typedef struct conn {
    sqlite3 *db;
    sqlite3_stmt *statements[STMT_COUNT]; /* prepared at open, finalized at close */
    size_t search_added; /* the writer's: messages its batch queued for the search index */
} conn_t;

/* What an operation does. The reads run on the loop's connection inside complete(); the writes
 * on the writer's, in batches. */
typedef enum {
    OP_SETTING_GET,
    OP_AGENT_COUNT,
    OP_MESSAGE_NEWEST,
    OP_AGENT_BY_EMAIL,
    OP_AGENT_BY_ID,
    OP_AGENT_LIST,
    OP_SESSION_GET,
    OP_VISITOR_BY_TOKEN,
    OP_CONVERSATION_GET,
    OP_CONVERSATION_VISITOR,
    OP_CONVERSATION_LIST,
    OP_CONVERSATION_COUNTS,
    OP_CONVERSATION_OF_VISITOR,
    OP_CONVERSATION_SNOOZE_DUE,
    OP_MESSAGES_IN_CONVERSATION,
    OP_MESSAGES_OF_VISITOR,
    OP_MESSAGES_ALL,
    OP_SEARCH,
    OP_CANNED_LIST,
    OP_TEAM_COUNTS,
    OP_TEAM_LIST,
    OP_VISITOR_GET,
    OP_VISITOR_PAGES,
    OP_VISITOR_CONVERSATIONS,
    OP_ATTACHMENT_GET,
    OP_REPORT,         /* sqlite_reports.c runs it */
    OP_API_TOKEN_LIST, /* sqlite_integrations.c runs these, to OP_WEBHOOK_ATTEMPTS */
    OP_API_TOKEN_BY_HASH,
    OP_WEBHOOK_LIST,
    OP_WEBHOOK_DUE,
    OP_WEBHOOK_ATTEMPTS,
    OP_READ_COUNT, /* the reads come before it, the writes after */
    OP_SETTING_SET = OP_READ_COUNT,
    OP_AGENT_CREATE,
    OP_AGENT_UPDATE,
    OP_SESSION_CREATE,
    OP_SESSION_DELETE,
    OP_VISITOR_CREATE,
    OP_SET_STATUS,
    OP_CLAIM,
    OP_ASSIGN,
    OP_WAKE,
    OP_SEARCH_INDEX, /* index what waits in search_pending now (a search is about to read) */
    OP_MARK_READ,
    OP_MESSAGE_ADD,
    OP_CANNED_CREATE,
    OP_CANNED_UPDATE,
    OP_CANNED_DELETE,
    OP_AUTOASSIGN,
    OP_TEAM_CREATE,
    OP_TEAM_UPDATE,
    OP_TEAM_SET_MEMBERS,
    OP_VISITOR_UPDATE,
    OP_VISITOR_PAGE_ADD,
    OP_RATE,
    OP_VISITOR_IDENTIFY,
    OP_API_TOKEN_CREATE, /* sqlite_integrations.c applies these, to OP_WEBHOOK_ATTEMPTED */
    OP_API_TOKEN_DELETE,
    OP_API_TOKEN_TOUCH,
    OP_WEBHOOK_CREATE,
    OP_WEBHOOK_DELETE,
    OP_WEBHOOK_ENQUEUE,
    OP_WEBHOOK_ATTEMPTED,
} op_kind_t;

/* At most this many strings an operation copies (agent_update's four, and the four of the row it
 * answers). */
#define OP_MAX_STRINGS 8

/* A queued operation: its arguments (strings are copies it owns), its callbacks, and for a write
 * the result the writer fills in. Queued and completed on the loop thread; a write is applied on
 * the writer's in between (the queue lock hands it over both ways). */
typedef struct op {
    struct op *next;
    struct sqlite_store
        *origin; /* the handle whose thread queued it (a write's comes back to it) */
    op_kind_t kind;
    kf_store_done_cb done;
    void *ctx;
    kf_store_message_cb each_message;           /* the messages_* queries */
    kf_store_conversation_cb each_conversation; /* conversation_list */
    kf_store_agent_cb each_agent;               /* agent_list */
    kf_store_search_cb each_hit;                /* search */
    kf_store_canned_cb each_canned;             /* canned_list */
    kf_store_team_cb each_team;                 /* team_list */
    kf_store_team_counts_cb each_team_counts;   /* conversation_team_counts */
    kf_store_visitor_page_cb each_page;         /* visitor_pages */
    kf_store_report_cb each_report;             /* report */
    kf_store_api_token_cb each_api_token;       /* api_token_list */
    kf_store_webhook_cb each_webhook;           /* webhook_list */
    kf_store_delivery_cb each_delivery;         /* webhook_due */
    kf_store_attempt_cb each_attempt;           /* webhook_attempts */
    union {
        const char *key;             /* setting_get */
        const char *email;           /* agent_by_email */
        const char *token_hash;      /* session_get, session_delete, visitor_by_token */
        int64_t id;                  /* agent_by_id, conversation_get/_visitor */
        int64_t visitor_id;          /* conversation_of_visitor */
        kf_conversation_page_t page; /* conversation_list */
        struct {
            const char *match; /* the FTS5 expression (store/search_text.h) */
            const char *words; /* match with words for prefixes (expand_prefixes), or NULL */
            const char *names; /* the same for the names' index, or NULL */
            int64_t before_id;
            size_t limit;
        } search;
        struct {
            int64_t subject; /* the conversation or the visitor; unused for messages_all */
            int64_t after_id;
            size_t limit;
        } messages;
        struct {
            const char *key;
            const char *value;
        } setting;
        struct {
            const char *email;
            const char *name;
            const char *role;
            const char *password_hash;
            int64_t now;
        } agent;
        struct {
            int64_t id;
            kf_agent_change_t change;
        } update; /* agent_update */
        struct {
            const char *token_hash;
            const char *csrf;
            int64_t agent_id;
            int64_t now;
            int64_t expires_at;
        } session;
        struct {
            const char *token_hash;
            const char *name;
            int64_t now;
        } visitor;
        struct {
            int64_t conversation_id;
            const char *status;
            int64_t snoozed_until; /* 0 unless status is "snoozed" */
            int64_t now;           /* resolved_at, when it resolves */
        } status;
        struct {
            int64_t conversation_id;
            int64_t agent_id;              /* 0: nobody (assign only) */
        } assign;                          /* conversation_claim */
        kf_conversation_assign_t transfer; /* conversation_assign */
        struct {
            int64_t conversation_id;
            int64_t team_id;
            int64_t from_agent_id;
            int64_t agent_id;
        } autoassign; /* conversation_autoassign */
        struct {
            int64_t id;              /* update, set_members */
            kf_team_change_t change; /* create, update */
            int64_t now;             /* create */
        } team;                      /* team_create, team_update, team_set_members (ids below) */
        struct {
            int64_t conversation_id;
            int64_t now;
        } wake; /* conversation_wake */
        struct {
            int64_t visitor_id;
            const char *rating;  /* "good" or "bad" */
            const char *comment; /* "" for none */
            int64_t now;
        } rate; /* conversation_rate */
        struct {
            int64_t conversation_id;
            kf_sender_t reader;
            int64_t up_to;
        } mark;
        kf_message_new_t message; /* message_add */
        kf_report_query_t report; /* report */
        struct {
            int64_t id;           /* update, delete: the reply */
            int64_t agent_id;     /* who acts: the owner of a new personal one */
            bool team;            /* create: a team one */
            bool admin;           /* update, delete: agent_id may change team ones */
            const char *shortcut; /* create, update (NULL: as it is) */
            const char *body;     /* create, update (NULL: as it is) */
            int64_t now;
        } canned; /* canned_create, canned_update, canned_delete; canned_list's agent_id */
        struct {
            int64_t id;                 /* the visitor */
            const char *name;           /* NULL: as it is */
            const char *email;          /* NULL: as it is */
            size_t limit;               /* visitor_pages, visitor_conversations */
        } visitor_change;               /* visitor_update, visitor_pages, visitor_conversations */
        kf_visitor_page_t page_new;     /* visitor_page_add */
        kf_visitor_identity_t identity; /* visitor_identify */
        struct {
            int64_t id;        /* the token, the webhook, the delivery */
            int64_t agent_id;  /* api_token_create: who makes it */
            int64_t now;       /* the time written (webhook_attempted: the attempt's) */
            int64_t status;    /* webhook_attempted */
            int64_t next_at;   /* webhook_attempted (0: over) */
            size_t limit;      /* webhook_due, webhook_attempts */
            const char *name;  /* api_token_create; webhook_create's url; the enqueued event */
            const char *scope; /* api_token_create; webhook_create's events; enqueued body */
            const char *hash;  /* api_token_create, api_token_by_hash; webhook_create's secret */
            const char *error; /* webhook_attempted */
        } integration;         /* API tokens and webhooks (sqlite_integrations.c) */
    } args;
    kf_store_result_t result; /* a write's, filled by the writer */
    /* The request whose work queued it ("" when none: a timer's, start-up's), for the lines
     * logged about it on the writer's thread and while its done runs. */
    char request_id[KF_LOG_REQUEST_ID_SIZE];
    kf_message_t message;     /* message_add: result.message points here */
    kf_agent_t agent;         /* agent_update: result.agent points here */
    kf_canned_t canned;       /* canned_create, canned_update: result.canned points here */
    kf_team_t team;           /* the team writes: result.team points here */
    kf_visitor_t visitor;     /* visitor_update, visitor_identify: result.visitor points here */
    kf_api_token_t api_token; /* api_token_create: result.api_token points here */
    kf_webhook_t webhook;     /* webhook_create: result.webhook points here */
    int64_t *ids;             /* owned: team_set_members' agent ids, then the read-back
                               * team's members; agent_update's released conversations */
    size_t id_count;
    int64_t counts[KF_VIEW_COUNT];  /* conversation_counts: result.counts points here */
    char *strings[OP_MAX_STRINGS];  /* the copies the arguments and message point into */
    kf_attachment_new_t attachment; /* message_add: args.message.attachment points here */
    void *blob;                     /* owned: message_add's attachment bytes, attachment_get's */
    size_t blob_len;
    char blob_name[65]; /* message_add: the blob's name (its SHA-256), once written */
    int blob_rc;        /* message_add: how writing the blob went (0, KF_EUNAVAIL, KF_ESTORE) */
    int string_count;
    struct kf_pg_read *pg_read; /* the PostgreSQL backend's results of a read (pg_internal.h) */
} op_t;

typedef struct op_list {
    op_t *head;
    op_t *tail;
} op_list_t;

/* The checkpointer's side of the gate (see kf_sqlite_gate_enter). */
typedef enum { GATE_OPEN, GATE_WANTED, GATE_HELD } gate_state_t;

/* The SQLite store handle. The owner thread (the event loop) queues every operation; it runs the
 * reads on main inside complete(), and the writer thread applies the writes on writer, a batch
 * per transaction, so that the loop never waits for a commit's sync or for the write lock. */
typedef struct sqlite_store {
    kf_store_t base; /* first, so a kf_store_t * is a sqlite_store_t * */
    conn_t main;     /* the owner thread's: reads only */
    conn_t writer;   /* the writer thread's: every write */
    /* Reads: queued and run on the owner thread only, so without a lock. */
    op_list_t reads;
    bool completing; /* complete() is running callbacks; a nested call returns at once */
    /* Writes: handed to the writer thread and back. */
    pthread_t writer_thread;
    bool writer_running;
    pthread_mutex_t queue_lock; /* guards queued, finished, writing, writer_stopping, notify */
    pthread_cond_t queue_wake;  /* the writer waits here for writes */
    pthread_cond_t queue_idle;  /* flush waits here for the writer */
    op_list_t queued;           /* waiting for the writer, in order */
    /* Applied (or failed), waiting for this handle's complete(). An attached handle's is
     * guarded by its root's queue_lock, like in_flight and notify below. */
    op_list_t finished;
    size_t in_flight; /* this handle's writes queued or being applied */
    /* The handle with the writer and the checkpointer when this one is attached to it (attach),
     * else NULL: an attached handle has only main, reads, finished and notify of its own. */
    struct sqlite_store *root;
    bool writing; /* the writer is applying a batch it took off queued */
    bool writer_stopping;
    /* Written on the owner thread under queue_lock; read there without it, and by the writer
     * under it. */
    void (*notify)(void *data);
    void *notify_data;
    /* The write gate between the writer (a batch) and the checkpointer (the log's tail). */
    pthread_mutex_t gate_lock;
    pthread_cond_t gate_changed;
    bool gate_writer;               /* the writer is in a batch */
    gate_state_t gate_checkpointer; /* the checkpointer wants or holds the gate */
    /* The checkpointer: a thread with its own connection that copies the WAL back into the
     * database, so that no writer pays for it inside a commit. */
    pthread_t checkpointer;
    bool checkpointer_running;
    sqlite3 *checkpoint_db; /* the thread's connection */
    pthread_mutex_t lock;   /* guards the two flags below */
    pthread_cond_t wake;
    bool checkpoint_wanted; /* the WAL has grown past checkpoint_pages */
    bool stopping;
    atomic_int checkpoint_pages; /* see KF_SQLITE_CHECKPOINT_PAGES */
    const char *synchronous_sql; /* the PRAGMA the connections were opened with (attach's) */
    /* The writer thread's own: messages stored and committed whose text waits in search_pending
     * for the search index, and since when (monotonic µs) the first of them waits. */
    size_t search_pending;
    uint64_t search_pending_since_us;
    uint64_t search_retry_us; /* after an index that failed, none before this (monotonic µs) */
    /* search_pending as the loops see it, set by the writer after each batch and before its
     * writes are handed back: 0 lets a search read at once, without asking the writer to index
     * first (a message acknowledged before the search is counted here already). */
    atomic_size_t search_waiting;
    /* The writer thread's own: whether the search indexes may have segments to merge (set by
     * every committed batch, cleared by a merge step that found nothing), and when the last batch
     * ended (monotonic µs): the idle merge waits KF_SQLITE_MERGE_IDLE_MS after it. */
    bool merge_wanted;
    uint64_t last_batch_us;
    char *blob_dir; /* where attachments' blob files live: "attachments" beside the database
                     * file (made by the writer on its first blob) */
} sqlite_store_t;

static inline sqlite_store_t *kf_sqlite_from_base(kf_store_t *store)
{
    return (sqlite_store_t *)store;
}

/* The handle that owns the writer: s itself, or the one s is attached to. */
static inline sqlite_store_t *kf_sqlite_root(sqlite_store_t *s)
{
    return s->root != NULL ? s->root : s;
}

/* ---- sqlite_walbuf.c: the log's writes gathered ---- */

/* The VFS whose write-ahead logs hold their writes back until the log is synced, then write them
 * as one; for a connection that syncs the log at every commit (synchronous FULL) only. */
#define KF_SQLITE_WALBUF_VFS "kefu-walbuf"
/* Registers that VFS (once, over the default VFS of that moment) and gives its name, or NULL if
 * there is no default VFS. */
const char *kf_sqlite_walbuf_vfs(void);

/* ---- sqlite.c: statements, rows and operations ---- */

/* Defines the store's SQL functions (kefu_search_text) on a connection: every connection that
 * runs the store's statements or migrations needs them. */
int kf_sqlite_define_functions(sqlite3 *db);
/* A kept statement, ready for binding. */
sqlite3_stmt *kf_sqlite_statement(conn_t *c, stmt_id_t id);
/* Resets a statement after use and drops its bindings, which may point at borrowed strings. */
void kf_sqlite_finish(sqlite3_stmt *st);
/* Maps a failed SQLite result code (extended codes are on) to a KF_E* code. */
int kf_sqlite_map_error(int code);
/* Binds the arguments to st's parameters 1, 2, ... in order, as types says: 't' a string (const
 * char *, not copied: it must outlive the step; NULL binds ""), 'T' a string or SQL NULL for
 * NULL, 'i' an int64_t, 'I' an int64_t or SQL NULL for 0, 'n' a row limit (size_t). Returns 0 or
 * the first failure's KF_E* code. */
int kf_sqlite_bind(sqlite3_stmt *st, const char *types, ...);
/* Steps a statement that returns no rows and resets it. Returns 0 or a KF_E* code. */
int kf_sqlite_run(sqlite3_stmt *st);
/* Steps a statement to its first row: 0 on a row (the statement stays on it; the caller finishes
 * it), KF_ENOTFOUND when there is none, else a KF_E* code. */
int kf_sqlite_step_row(sqlite3_stmt *st);
/* A text column, "" for NULL; valid until the statement steps or resets. */
const char *kf_sqlite_column_text(sqlite3_stmt *st, int column);
/* Fills message from the KF_SQLITE_MESSAGE_COLUMNS that start at column first. */
void kf_sqlite_read_message(sqlite3_stmt *st, int first, kf_message_t *message);
void kf_sqlite_read_conversation(sqlite3_stmt *st, kf_conversation_t *conversation);
void kf_sqlite_read_agent(sqlite3_stmt *st, kf_agent_t *agent);
void kf_sqlite_read_canned(sqlite3_stmt *st, kf_canned_t *canned);
/* Fills team from the KF_SQLITE_TEAM_COLUMNS; its member ids go into *ids (reallocated, the
 * caller frees it). */
void kf_sqlite_read_team(sqlite3_stmt *st, kf_team_t *team, int64_t **ids);
void kf_sqlite_read_visitor(sqlite3_stmt *st, kf_visitor_t *visitor);
void kf_sqlite_read_visitor_page(sqlite3_stmt *st, kf_visitor_page_t *page);

/* The operations both backends take through the same front functions (they check and copy the
 * arguments, then queue the op: kf_store_t.queue hands it to a backend other than SQLite), for
 * the initializer of each backend's kf_store_ops_t. */
#define KF_SQLITE_FRONT_OPS                                                                        \
    .setting_get = kf_sqlite_setting_get, .setting_set = kf_sqlite_setting_set,                    \
    .agent_create = kf_sqlite_agent_create, .agent_count = kf_sqlite_agent_count,                  \
    .message_newest = kf_sqlite_message_newest, .agent_by_email = kf_sqlite_agent_by_email,        \
    .agent_by_id = kf_sqlite_agent_by_id, .agent_list = kf_sqlite_agent_list,                      \
    .agent_update = kf_sqlite_agent_update, .session_create = kf_sqlite_session_create,            \
    .session_get = kf_sqlite_session_get, .session_delete = kf_sqlite_session_delete,              \
    .visitor_create = kf_sqlite_visitor_create, .visitor_by_token = kf_sqlite_visitor_by_token,    \
    .conversation_get = kf_sqlite_conversation_get,                                                \
    .conversation_visitor = kf_sqlite_conversation_visitor,                                        \
    .conversation_list = kf_sqlite_conversation_list,                                              \
    .conversation_counts = kf_sqlite_conversation_counts,                                          \
    .conversation_of_visitor = kf_sqlite_conversation_of_visitor,                                  \
    .conversation_set_status = kf_sqlite_conversation_set_status,                                  \
    .conversation_claim = kf_sqlite_conversation_claim,                                            \
    .conversation_assign = kf_sqlite_conversation_assign,                                          \
    .conversation_snooze_due = kf_sqlite_conversation_snooze_due,                                  \
    .conversation_wake = kf_sqlite_conversation_wake,                                              \
    .conversation_rate = kf_sqlite_conversation_rate,                                              \
    .conversation_mark_read = kf_sqlite_conversation_mark_read,                                    \
    .message_add = kf_sqlite_message_add, .attachment_get = kf_sqlite_attachment_get,              \
    .messages_in_conversation = kf_sqlite_messages_in_conversation,                                \
    .messages_of_visitor = kf_sqlite_messages_of_visitor, .messages_all = kf_sqlite_messages_all,  \
    .search = kf_sqlite_search, .report = kf_sqlite_report, .canned_list = kf_sqlite_canned_list,  \
    .canned_create = kf_sqlite_canned_create, .canned_update = kf_sqlite_canned_update,            \
    .canned_delete = kf_sqlite_canned_delete,                                                      \
    .conversation_team_counts = kf_sqlite_conversation_team_counts,                                \
    .conversation_autoassign = kf_sqlite_conversation_autoassign,                                  \
    .team_list = kf_sqlite_team_list, .team_create = kf_sqlite_team_create,                        \
    .team_update = kf_sqlite_team_update, .team_set_members = kf_sqlite_team_set_members,          \
    .visitor_get = kf_sqlite_visitor_get, .visitor_update = kf_sqlite_visitor_update,              \
    .visitor_page_add = kf_sqlite_visitor_page_add,                                                \
    .visitor_identify = kf_sqlite_visitor_identify, .visitor_pages = kf_sqlite_visitor_pages,      \
    .visitor_conversations = kf_sqlite_visitor_conversations,                                      \
    .api_token_create = kf_sqlite_api_token_create, .api_token_list = kf_sqlite_api_token_list,    \
    .api_token_by_hash = kf_sqlite_api_token_by_hash,                                              \
    .api_token_delete = kf_sqlite_api_token_delete, .api_token_touch = kf_sqlite_api_token_touch,  \
    .webhook_create = kf_sqlite_webhook_create, .webhook_list = kf_sqlite_webhook_list,            \
    .webhook_delete = kf_sqlite_webhook_delete, .webhook_enqueue = kf_sqlite_webhook_enqueue,      \
    .webhook_due = kf_sqlite_webhook_due, .webhook_attempted = kf_sqlite_webhook_attempted,        \
    .webhook_attempts = kf_sqlite_webhook_attempts

/* A write's new message, as the writer stored it, into the op's result (both backends' writers:
 * the row is the op's arguments and what the transaction gave it). */
void kf_sqlite_answer_message(op_t *op, const kf_message_new_t *m, int64_t id,
                              int64_t conversation_id, int64_t visitor_id, const char *agent_name,
                              int64_t attachment_id);
/* Adds the batch's new messages (a send, a transfer's note; not a resend's duplicate) to the
 * process's count, once they are committed (both backends' writer threads). */
void kf_sqlite_count_messages(const op_t *batch);
/* A new operation of kind for done(ctx). */
op_t *kf_sqlite_op_new(op_kind_t kind, kf_store_done_cb done, void *ctx);
/* Copies text (NULL as "") into op, which owns the copy until it is freed. */
const char *kf_sqlite_op_keep(op_t *op, const char *text);
void kf_sqlite_op_free(op_t *op);
void kf_sqlite_list_append(op_list_t *list, op_t *head, op_t *tail);

/* ---- sqlite_reads.c ---- */

/* Queues a read to run in the next complete(); asks notify for one when the queue was empty. */
int kf_sqlite_queue_read(sqlite_store_t *s, op_t *op);
/* Runs a read on the loop's connection and calls its callbacks. */
void kf_sqlite_run_read(sqlite_store_t *s, op_t *op);

/* ---- sqlite_names.c: a common name's search ---- */

typedef struct kf_sqlite_name_walk kf_sqlite_name_walk_t;
/* A walk for names (the names' FTS5 expression, borrowed until _end), bound as st's parameter
 * index for kefu_name_walk. *out is set even on failure; end it. */
int kf_sqlite_name_walk_start(conn_t *c, const char *names, sqlite3_stmt *st, int index,
                              kf_sqlite_name_walk_t **out);
void kf_sqlite_name_walk_end(kf_sqlite_name_walk_t *walk);
/* The test of one text against names apart from the index, as kefu_name_walk makes it for a
 * visitor far below those it has read: _new reads names with db's FTS5 tokenizer (KF_EINVAL for
 * an expression of another form than the top of sqlite_names.c says); _match says whether text,
 * as the index holds it (kefu_search_text's), matches: 1 or 0, or a KF_E* code. */
typedef struct kf_sqlite_name_test kf_sqlite_name_test_t;
int kf_sqlite_name_test_new(sqlite3 *db, const char *names, kf_sqlite_name_test_t **out);
int kf_sqlite_name_test_match(kf_sqlite_name_test_t *test, const char *text, size_t length);
void kf_sqlite_name_test_free(kf_sqlite_name_test_t *test);
/* Whether a query term's text (between its quotes) holds a token for the index's tokenizer: 1 or
 * 0, or a KF_E* code. */
int kf_sqlite_term_has_tokens(sqlite3 *db, const char *text, size_t length);
/* kefu_name_walk(walk, visitor_id): whether the visitor's name matches (the walk, a pointer
 * bound by kf_sqlite_name_walk_start; KF_SQLITE_SEARCH_MANY). Defined on every connection. */
void kf_sqlite_name_walk_fn(sqlite3_context *context, int argc, sqlite3_value **argv);
/* kefu_search_words(text): the distinct words of text (as the index holds it: kefu_search_text's)
 * that go into search_words, as a JSON array, for json_each. Its user data is a
 * kf_sqlite_words_t of the connection's own (the tokenizer, kept between calls); _free is the
 * function's destructor. */
typedef struct kf_sqlite_words kf_sqlite_words_t;
kf_sqlite_words_t *kf_sqlite_words_new(void);
void kf_sqlite_words_free(void *words);
void kf_sqlite_search_words_fn(sqlite3_context *context, int argc, sqlite3_value **argv);

/* ---- sqlite_reports.c ---- */

int kf_sqlite_report(kf_store_t *store, const kf_report_query_t *query, kf_store_report_cb each,
                     kf_store_done_cb done, void *ctx);
/* Runs a report (OP_REPORT) on the loop's connection and calls its callbacks. */
void kf_sqlite_run_report(sqlite_store_t *s, op_t *op);

int kf_sqlite_setting_get(kf_store_t *store, const char *key, kf_store_done_cb done, void *ctx);
int kf_sqlite_agent_count(kf_store_t *store, kf_store_done_cb done, void *ctx);
int kf_sqlite_message_newest(kf_store_t *store, kf_store_done_cb done, void *ctx);
int kf_sqlite_agent_by_email(kf_store_t *store, const char *email, kf_store_done_cb done,
                             void *ctx);
int kf_sqlite_agent_by_id(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx);
int kf_sqlite_agent_list(kf_store_t *store, kf_store_agent_cb each, kf_store_done_cb done,
                         void *ctx);
int kf_sqlite_session_get(kf_store_t *store, const char *token_hash, int64_t now,
                          kf_store_done_cb done, void *ctx);
int kf_sqlite_visitor_by_token(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                               void *ctx);
int kf_sqlite_conversation_get(kf_store_t *store, int64_t conversation_id, kf_store_done_cb done,
                               void *ctx);
int kf_sqlite_attachment_get(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx);
int kf_sqlite_conversation_visitor(kf_store_t *store, int64_t conversation_id,
                                   kf_store_done_cb done, void *ctx);
int kf_sqlite_conversation_list(kf_store_t *store, const kf_conversation_page_t *page,
                                kf_store_conversation_cb each, kf_store_done_cb done, void *ctx);
int kf_sqlite_conversation_counts(kf_store_t *store, int64_t agent_id, kf_store_done_cb done,
                                  void *ctx);
int kf_sqlite_conversation_of_visitor(kf_store_t *store, int64_t visitor_id, kf_store_done_cb done,
                                      void *ctx);
int kf_sqlite_conversation_snooze_due(kf_store_t *store, int64_t now, kf_store_done_cb done,
                                      void *ctx);
int kf_sqlite_messages_in_conversation(kf_store_t *store, int64_t conversation_id, int64_t after_id,
                                       size_t limit, kf_store_message_cb each,
                                       kf_store_done_cb done, void *ctx);
int kf_sqlite_messages_of_visitor(kf_store_t *store, int64_t visitor_id, int64_t after_id,
                                  size_t limit, kf_store_message_cb each, kf_store_done_cb done,
                                  void *ctx);
int kf_sqlite_messages_all(kf_store_t *store, int64_t after_id, size_t limit,
                           kf_store_message_cb each, kf_store_done_cb done, void *ctx);
int kf_sqlite_search(kf_store_t *store, const char *query, int64_t before_id, size_t limit,
                     kf_store_search_cb each, kf_store_done_cb done, void *ctx);
int kf_sqlite_canned_list(kf_store_t *store, int64_t agent_id, kf_store_canned_cb each,
                          kf_store_done_cb done, void *ctx);
int kf_sqlite_conversation_team_counts(kf_store_t *store, int64_t agent_id,
                                       kf_store_team_counts_cb each, kf_store_done_cb done,
                                       void *ctx);
int kf_sqlite_team_list(kf_store_t *store, kf_store_team_cb each, kf_store_done_cb done, void *ctx);
int kf_sqlite_visitor_get(kf_store_t *store, int64_t visitor_id, kf_store_done_cb done, void *ctx);
int kf_sqlite_visitor_pages(kf_store_t *store, int64_t visitor_id, size_t limit,
                            kf_store_visitor_page_cb each, kf_store_done_cb done, void *ctx);
int kf_sqlite_visitor_conversations(kf_store_t *store, int64_t visitor_id, size_t limit,
                                    kf_store_conversation_cb each, kf_store_done_cb done,
                                    void *ctx);

/* ---- sqlite_writer.c ---- */

int kf_sqlite_writer_start(sqlite_store_t *s);
/* Queues a write for the writer thread (for the files that define writes outside this one). */
int kf_sqlite_queue_write(sqlite_store_t *s, op_t *op);
/* Lets the writer finish what is queued and joins it (the caller has flushed). */
void kf_sqlite_writer_stop(sqlite_store_t *s);
/* Waits until the writer has nothing queued and is not applying a batch; true when finished
 * writes wait for complete(). */
bool kf_sqlite_writer_wait_idle(sqlite_store_t *s);
/* Takes the finished writes, in queue order. */
op_t *kf_sqlite_writer_take_finished(sqlite_store_t *s);

int kf_sqlite_setting_set(kf_store_t *store, const char *key, const char *value,
                          kf_store_done_cb done, void *ctx);
int kf_sqlite_agent_create(kf_store_t *store, const char *email, const char *name, const char *role,
                           const char *password_hash, int64_t now, kf_store_done_cb done,
                           void *ctx);
int kf_sqlite_agent_update(kf_store_t *store, int64_t id, const kf_agent_change_t *change,
                           kf_store_done_cb done, void *ctx);
int kf_sqlite_session_create(kf_store_t *store, const char *token_hash, int64_t agent_id,
                             const char *csrf, int64_t now, int64_t expires_at,
                             kf_store_done_cb done, void *ctx);
int kf_sqlite_session_delete(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                             void *ctx);
int kf_sqlite_visitor_create(kf_store_t *store, const char *token_hash, const char *name,
                             int64_t now, kf_store_done_cb done, void *ctx);
int kf_sqlite_conversation_set_status(kf_store_t *store, int64_t conversation_id,
                                      const char *status, int64_t snoozed_until, int64_t now,
                                      kf_store_done_cb done, void *ctx);
int kf_sqlite_conversation_claim(kf_store_t *store, int64_t conversation_id, int64_t agent_id,
                                 kf_store_done_cb done, void *ctx);
int kf_sqlite_conversation_assign(kf_store_t *store, const kf_conversation_assign_t *assign,
                                  kf_store_done_cb done, void *ctx);
int kf_sqlite_conversation_autoassign(kf_store_t *store, int64_t conversation_id, int64_t team_id,
                                      int64_t from_agent_id, int64_t agent_id,
                                      kf_store_done_cb done, void *ctx);
int kf_sqlite_team_create(kf_store_t *store, const kf_team_change_t *team, int64_t now,
                          kf_store_done_cb done, void *ctx);
int kf_sqlite_team_update(kf_store_t *store, int64_t id, const kf_team_change_t *change,
                          kf_store_done_cb done, void *ctx);
int kf_sqlite_team_set_members(kf_store_t *store, int64_t id, const int64_t *agent_ids,
                               size_t count, kf_store_done_cb done, void *ctx);
int kf_sqlite_conversation_rate(kf_store_t *store, int64_t visitor_id, const char *rating,
                                const char *comment, int64_t now, kf_store_done_cb done, void *ctx);
int kf_sqlite_conversation_wake(kf_store_t *store, int64_t conversation_id, int64_t now,
                                kf_store_done_cb done, void *ctx);
int kf_sqlite_conversation_mark_read(kf_store_t *store, int64_t conversation_id, kf_sender_t reader,
                                     int64_t up_to, kf_store_done_cb done, void *ctx);
int kf_sqlite_message_add(kf_store_t *store, const kf_message_new_t *message, kf_store_done_cb done,
                          void *ctx);
int kf_sqlite_canned_create(kf_store_t *store, int64_t agent_id, bool team, const char *shortcut,
                            const char *body, int64_t now, kf_store_done_cb done, void *ctx);
int kf_sqlite_canned_update(kf_store_t *store, int64_t agent_id, bool admin, int64_t id,
                            const char *shortcut, const char *body, int64_t now,
                            kf_store_done_cb done, void *ctx);
int kf_sqlite_canned_delete(kf_store_t *store, int64_t agent_id, bool admin, int64_t id,
                            kf_store_done_cb done, void *ctx);
int kf_sqlite_visitor_update(kf_store_t *store, int64_t visitor_id, const char *name,
                             const char *email, kf_store_done_cb done, void *ctx);
int kf_sqlite_visitor_page_add(kf_store_t *store, const kf_visitor_page_t *page,
                               kf_store_done_cb done, void *ctx);
int kf_sqlite_visitor_identify(kf_store_t *store, const kf_visitor_identity_t *identity,
                               kf_store_done_cb done, void *ctx);

/* ---- sqlite_integrations.c: API tokens and webhooks ---- */

/* Whether op is one of sqlite_integrations.c's. */
static inline bool kf_sqlite_is_integration(const op_t *op)
{
    return (op->kind >= OP_API_TOKEN_LIST && op->kind <= OP_WEBHOOK_ATTEMPTS) ||
           (op->kind >= OP_API_TOKEN_CREATE && op->kind <= OP_WEBHOOK_ATTEMPTED);
}
/* Runs one of its reads on the loop's connection and calls its callbacks. */
void kf_sqlite_run_integration_read(sqlite_store_t *s, op_t *op);
/* Applies one of its writes inside the writer's transaction (*half as apply's). */
int kf_sqlite_apply_integration(conn_t *c, op_t *op, bool *half);

int kf_sqlite_api_token_create(kf_store_t *store, const char *name, const char *scope,
                               const char *token_hash, int64_t created_by, int64_t now,
                               kf_store_done_cb done, void *ctx);
int kf_sqlite_api_token_list(kf_store_t *store, kf_store_api_token_cb each, kf_store_done_cb done,
                             void *ctx);
int kf_sqlite_api_token_by_hash(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                                void *ctx);
int kf_sqlite_api_token_delete(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx);
int kf_sqlite_api_token_touch(kf_store_t *store, int64_t id, int64_t now, kf_store_done_cb done,
                              void *ctx);
int kf_sqlite_webhook_create(kf_store_t *store, const char *url, const char *events,
                             const char *secret, int64_t now, kf_store_done_cb done, void *ctx);
int kf_sqlite_webhook_list(kf_store_t *store, kf_store_webhook_cb each, kf_store_done_cb done,
                           void *ctx);
int kf_sqlite_webhook_delete(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx);
int kf_sqlite_webhook_enqueue(kf_store_t *store, const char *event, const char *body, int64_t now,
                              kf_store_done_cb done, void *ctx);
int kf_sqlite_webhook_due(kf_store_t *store, int64_t now, size_t limit, kf_store_delivery_cb each,
                          kf_store_done_cb done, void *ctx);
int kf_sqlite_webhook_attempted(kf_store_t *store, const kf_webhook_attempt_t *attempt,
                                kf_store_done_cb done, void *ctx);
int kf_sqlite_webhook_attempts(kf_store_t *store, int64_t webhook_id, size_t limit,
                               kf_store_attempt_cb each, kf_store_done_cb done, void *ctx);

/* The search index is fed in batches: a message's text waits in search_pending (its id, in the
 * message's own transaction, so that a crash loses nothing) until this many wait, or the first of
 * them has waited KF_SQLITE_SEARCH_DELAY_MS, and then a transaction of the writer's own between
 * two batches indexes them all in one statement and empties the table; or a search asks for them,
 * and the batch its ask is in does that (sqlite_writer.c). Indexing
 * a message with each commit made FTS5 write a segment of its own per commit, about six pages,
 * a quarter of the writer's time at 5,000 msg/s (docs/PERFORMANCE.md, "The write path"). */
#define KF_SQLITE_SEARCH_BATCH 128
#define KF_SQLITE_SEARCH_DELAY_MS 250

/* The search indexes' segments are merged while the writer is idle: once no batch has come for
 * KF_SQLITE_MERGE_IDLE_MS, a step at a time (FTS5's 'merge' of about KF_SQLITE_MERGE_PAGES_SQL
 * pages, a transaction of its own), until a step finds nothing to merge. FTS5 merges by itself as
 * it writes, but only every 64 pages written and only levels of four segments or more, so a
 * quiet desk's small index batches leave up to fifteen one-page segments, and a large index three
 * on each level; a search looks its words up in every segment. With usermerge 2 (migration 23)
 * the idle merge leaves at most one on each level (docs/PERFORMANCE.md, "The search index's
 * segments"). A step ends at a word's end, so a common word's list on the largest level makes a
 * long one: a write that comes during it waits for it. */
#define KF_SQLITE_MERGE_IDLE_MS 1000
#define KF_SQLITE_MERGE_PAGES_SQL "32"
/* One step of FTS5's merge of index (a table name) for about pages (SQL text) pages. */
#define KF_SQLITE_SEARCH_MERGE(index, pages)                                                       \
    "INSERT INTO " index " (" index ", rank) VALUES ('merge', " pages ")"

/* ---- sqlite_checkpointer.c ---- */

/* WAL pages after which a checkpoint is asked for, unless set otherwise (see the file). */
#define KF_SQLITE_CHECKPOINT_PAGES 16000
#define KF_SQLITE_MAX_CHECKPOINT_PAGES                                                             \
    (1 << 24) /* a 16 GiB log of 1 KiB pages: past any sense, short of overflow */

/* The write gate. The writer holds it around each batch (BEGIN to COMMIT, sync included); the
 * checkpointer holds it while it copies the log's tail, so that the writer's next transaction
 * can start the log over. A checkpointer that wants it goes before the writer's next batch. */
void kf_sqlite_gate_writer_enter(sqlite_store_t *s);
void kf_sqlite_gate_writer_leave(sqlite_store_t *s);
/* Starts the thread on its own connection to path; without it (no thread) SQLite checkpoints on
 * commit as usual. */
void kf_sqlite_checkpointer_start(sqlite_store_t *s, const char *path, const char *synchronous_sql);
void kf_sqlite_checkpointer_stop(sqlite_store_t *s);

#endif
