/* sqlite.c: the SQLite backend's front: opening (schema and migrations, three connections, two
 * threads) and closing, the table of operations, running what is ready (complete, flush), and
 * the statement and row helpers the reads and the writer share. */
#include "store/sqlite_internal.h"

#include "base/buf.h"
#include "base/err.h"
#include "store/search_text.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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
    /* 2: idempotency keys (exactly-once sending). A message may carry its sender's key, unique per
     * sender: idempotency_owner is the visitor's id for a visitor's message and the agent's for
     * an agent's, both NULL without a key. The index is partial, so that messages without a key
     * cost nothing; keys stay as long as their messages. */
    "ALTER TABLE messages ADD COLUMN idempotency_key TEXT;"
    "ALTER TABLE messages ADD COLUMN idempotency_owner INTEGER;"
    "CREATE UNIQUE INDEX messages_by_idempotency_key "
    "  ON messages (sender, idempotency_owner, idempotency_key) "
    "  WHERE idempotency_key IS NOT NULL;",
    /* 3: disabled agents. An admin takes an agent's access away (disabled_at, NULL while enabled)
     * without deleting the row, so that the agent's messages keep their author. Disabling deletes
     * the agent's sessions, hence their index by agent. (Parenthesised: clang takes two literals
     * side by side in an array for a missing comma.) */
    ("ALTER TABLE agents ADD COLUMN disabled_at INTEGER;"
     "CREATE INDEX sessions_by_agent ON sessions (agent_id);"),
    /* 4: the team desk. A conversation is open, pending, resolved (what "closed" was) or snoozed
     * (until snoozed_until, set exactly then), and may be held by an agent (assignee_id). SQLite
     * cannot change a CHECK in place, so the table is built again (migrate runs with foreign keys
     * off and checks them after), keeping ids: messages refer to them. One index per view of the
     * list (docs/API.md), each in the list's order so that a page is a range of it: by status
     * (open, pending, resolved, snoozed), by status and assignee (the unassigned: open and NULL;
     * a partial index of those alone loses to the status index in the planner's eyes), an
     * agent's unresolved ones. And the snoozed by the end of their snooze, for the loop that
     * wakes them. */
    ("CREATE TABLE conversations_v4 ("
     "  id INTEGER PRIMARY KEY,"
     "  visitor_id INTEGER NOT NULL REFERENCES visitors (id),"
     "  status TEXT NOT NULL CHECK (status IN ('open', 'pending', 'resolved', 'snoozed')),"
     "  assignee_id INTEGER REFERENCES agents (id),"
     "  snoozed_until INTEGER,"
     "  created_at INTEGER NOT NULL,"
     "  updated_at INTEGER NOT NULL,"
     "  agent_read_up_to INTEGER NOT NULL DEFAULT 0,"
     "  visitor_read_up_to INTEGER NOT NULL DEFAULT 0,"
     "  CHECK ((status = 'snoozed') = (snoozed_until IS NOT NULL))"
     ");"
     "INSERT INTO conversations_v4 (id, visitor_id, status, created_at, updated_at,"
     "  agent_read_up_to, visitor_read_up_to) "
     "SELECT id, visitor_id, CASE status WHEN 'closed' THEN 'resolved' ELSE status END,"
     "  created_at, updated_at, agent_read_up_to, visitor_read_up_to FROM conversations;"
     "DROP TABLE conversations;"
     "ALTER TABLE conversations_v4 RENAME TO conversations;"
     "CREATE INDEX conversations_by_visitor ON conversations (visitor_id);"
     "CREATE INDEX conversations_by_activity ON conversations (updated_at DESC, id DESC);"
     "CREATE INDEX conversations_by_status ON conversations (status, updated_at DESC, id DESC);"
     "CREATE INDEX conversations_by_status_assignee ON conversations "
     "  (status, assignee_id, updated_at DESC, id DESC);"
     "CREATE INDEX conversations_by_assignee ON conversations "
     "  (assignee_id, updated_at DESC, id DESC) WHERE status != 'resolved';"
     "CREATE INDEX conversations_snoozed ON conversations (snoozed_until) "
     "  WHERE status = 'snoozed';"),
    /* 5: the full-text search (store/search_text.h), filled from what is there already. Two
     * contentless FTS5 tables, keyed by rowid: a message's id, a visitor's id. Contentless, since
     * the text is in messages and visitors already (and the index holds a rewritten text that
     * nobody reads back); columnsize=0, since hits are ordered by id, not ranked. The text goes
     * through kefu_search_text, which every connection of the store defines. Visitors without a
     * name have no row. */
    ("CREATE VIRTUAL TABLE message_search USING fts5(text, content='', columnsize=0, "
     "tokenize=\"" KF_SEARCH_TOKENIZE "\");"
     "INSERT INTO message_search (rowid, text) SELECT id, kefu_search_text(body) FROM messages;"
     "CREATE VIRTUAL TABLE visitor_search USING fts5(text, content='', columnsize=0, "
     "tokenize=\"" KF_SEARCH_TOKENIZE "\");"
     "INSERT INTO visitor_search (rowid, text) "
     "SELECT id, kefu_search_text(name) FROM visitors WHERE name != '';"),
    /* 6: canned replies. owner_id is the agent of a personal one, NULL for a team one (shared by
     * every agent until teams exist; then a team_id joins it). The shortcut ignores ASCII case
     * (COLLATE NOCASE) in comparisons and the order. The unique index holds within one owner
     * (the team, or one agent); that a personal one also differs from the team's is the
     * writer's check, in the write's own turn. */
    ("CREATE TABLE canned_replies ("
     "  id INTEGER PRIMARY KEY,"
     "  owner_id INTEGER REFERENCES agents (id),"
     "  shortcut TEXT NOT NULL COLLATE NOCASE,"
     "  body TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  updated_at INTEGER NOT NULL"
     ");"
     "CREATE UNIQUE INDEX canned_by_owner ON canned_replies (COALESCE(owner_id, 0), shortcut);"),
    /* 7: private notes: agents' messages the visitor never sees (docs/SECURITY.md). The index
     * replaces messages_by_conversation with private added, so that the visitor's unread count
     * and their reads still come from the index alone. */
    ("ALTER TABLE messages ADD COLUMN private INTEGER NOT NULL DEFAULT 0;"
     "CREATE INDEX messages_by_conversation_audience ON messages "
     "(conversation_id, id, sender, private);"
     "DROP INDEX messages_by_conversation;"),
    /* 8: teams, capacity and automatic assignment. A team's name is unique ignoring ASCII case;
     * auto_assign says how its unassigned open conversations find an agent, reassign_after (s, 0:
     * never) when an assignee who has not answered loses one to the next. agents.capacity caps
     * an agent's unresolved conversations for automatic assignment (0: no cap). A conversation
     * may belong to one team (team_id). The team indexes mirror migration 4's, with team_id
     * first, so that each view of one team is a range too; partial, since most conversations of
     * a small desk have no team. conversations.team_id names a team without a foreign key: teams
     * are never deleted, and a column with one could not be dropped again (the migration tests
     * do). */
    ("CREATE TABLE teams ("
     "  id INTEGER PRIMARY KEY,"
     "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
     "  auto_assign TEXT NOT NULL DEFAULT 'off' "
     "    CHECK (auto_assign IN ('off', 'round_robin', 'least_busy')),"
     "  reassign_after INTEGER NOT NULL DEFAULT 0 CHECK (reassign_after >= 0),"
     "  created_at INTEGER NOT NULL"
     ");"
     "CREATE TABLE team_members ("
     "  team_id INTEGER NOT NULL REFERENCES teams (id),"
     "  agent_id INTEGER NOT NULL REFERENCES agents (id),"
     "  PRIMARY KEY (team_id, agent_id)"
     ") WITHOUT ROWID;"
     "ALTER TABLE agents ADD COLUMN capacity INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE conversations ADD COLUMN team_id INTEGER;"
     "CREATE INDEX conversations_by_team ON conversations "
     "  (team_id, updated_at DESC, id DESC) WHERE team_id IS NOT NULL;"
     "CREATE INDEX conversations_by_team_status ON conversations "
     "  (team_id, status, updated_at DESC, id DESC) WHERE team_id IS NOT NULL;"
     "CREATE INDEX conversations_by_team_status_assignee ON conversations "
     "  (team_id, status, assignee_id, updated_at DESC, id DESC) WHERE team_id IS NOT NULL;"
     "CREATE INDEX conversations_by_team_assignee ON conversations "
     "  (team_id, assignee_id, updated_at DESC, id DESC) "
     "  WHERE team_id IS NOT NULL AND status != 'resolved';"),
    /* 9: visitor details. The e-mail a visitor (or an agent) gives, indexed where given for the
     * earlier conversations of the same person. visitor_pages holds what the visitor's page
     * reported of itself, one row per page seen, the newest last; the writer keeps each
     * visitor's newest KF_STORE_VISITOR_PAGES_MAX, and the newest row is also the visitor's
     * latest browser, language and time zone. */
    ("ALTER TABLE visitors ADD COLUMN email TEXT NOT NULL DEFAULT '';"
     "CREATE INDEX visitors_by_email ON visitors (email) WHERE email != '';"
     "CREATE TABLE visitor_pages ("
     "  id INTEGER PRIMARY KEY,"
     "  visitor_id INTEGER NOT NULL REFERENCES visitors (id),"
     "  url TEXT NOT NULL,"
     "  title TEXT NOT NULL,"
     "  referrer TEXT NOT NULL,"
     "  user_agent TEXT NOT NULL,"
     "  language TEXT NOT NULL,"
     "  timezone TEXT NOT NULL,"
     "  utc_offset INTEGER NOT NULL,"
     "  seen_at INTEGER NOT NULL"
     ");"
     "CREATE INDEX visitor_pages_by_visitor ON visitor_pages (visitor_id, id);"),
    /* 10: reports (store/store.h, report). A report reads conversations and messages of a period
     * without walking each conversation's messages: the conversation keeps when its visitor first
     * wrote, when and by whom it was first answered (an agent's message that is not a private
     * note, at or after that), and when and in whose hands it was resolved (cleared by a
     * reopen). The first two are kept by a trigger, so that every write that adds a message
     * (message_add, conversation_assign's note) keeps them in its own transaction; the resolution
     * by the status writes themselves, which know the time. Existing rows are filled from their
     * messages; a conversation resolved before this migration counts as resolved at its last
     * message, by its assignee, the best the rows can tell. messages_by_time covers what the
     * message counts read, so that they are a range of one index. */
    ("ALTER TABLE conversations ADD COLUMN first_visitor_at INTEGER;"
     "ALTER TABLE conversations ADD COLUMN first_reply_at INTEGER;"
     "ALTER TABLE conversations ADD COLUMN first_reply_agent_id INTEGER;"
     "ALTER TABLE conversations ADD COLUMN resolved_at INTEGER;"
     "ALTER TABLE conversations ADD COLUMN resolved_by INTEGER;"
     "UPDATE conversations SET first_visitor_at = (SELECT min(m.created_at) FROM messages m "
     "  WHERE m.conversation_id = conversations.id AND m.sender = 0);"
     "UPDATE conversations SET (first_reply_at, first_reply_agent_id) = (SELECT m.created_at, "
     "  m.agent_id FROM messages m WHERE m.conversation_id = conversations.id AND m.sender = 1 "
     "  AND m.private = 0 AND m.created_at >= conversations.first_visitor_at "
     "  ORDER BY m.id LIMIT 1) WHERE first_visitor_at IS NOT NULL;"
     "UPDATE conversations SET resolved_at = updated_at, resolved_by = assignee_id "
     "  WHERE status = 'resolved';"
     "CREATE INDEX conversations_by_created ON conversations (created_at);"
     "CREATE INDEX messages_by_time ON messages "
     "  (created_at, sender, private, agent_id, conversation_id);"
     "CREATE TRIGGER messages_first_reply AFTER INSERT ON messages BEGIN "
     "  UPDATE conversations SET first_visitor_at = NEW.created_at "
     "    WHERE id = NEW.conversation_id AND NEW.sender = 0 AND first_visitor_at IS NULL;"
     "  UPDATE conversations SET first_reply_at = NEW.created_at, "
     "    first_reply_agent_id = NEW.agent_id "
     "    WHERE id = NEW.conversation_id AND NEW.sender = 1 AND NEW.private = 0 "
     "    AND first_visitor_at IS NOT NULL AND first_reply_at IS NULL "
     "    AND NEW.created_at >= first_visitor_at;"
     "END;"),
    /* 11: ratings (store.h, conversation_rate). A conversation keeps its visitor's latest rating
     * of a resolution: good or bad, a comment ('' for none) and when. A reopen keeps it, so the
     * agents still see how the last resolution went and reports still count it; rating a later
     * resolution replaces it (one rating per conversation, the newest). rating_agent_id is who
     * held it when the rated resolution came (resolved_by then), whose it is in a report, since
     * a reopen clears resolved_by. */
    ("ALTER TABLE conversations ADD COLUMN rating TEXT CHECK (rating IN ('good', 'bad'));"
     "ALTER TABLE conversations ADD COLUMN rating_comment TEXT;"
     "ALTER TABLE conversations ADD COLUMN rated_at INTEGER;"
     "ALTER TABLE conversations ADD COLUMN rating_agent_id INTEGER;"),
    /* 12: verified visitors (docs/IDENTITY.md). One visitor row per site user_id, unique where
     * set; a device after the first gets its own token in visitor_tokens, so that every device
     * of one user reads and writes the same conversations. identity_nonces holds each accepted
     * signature's nonce until its window ends, so that neither a replay nor a restart within
     * the window lets one be used twice. */
    ("ALTER TABLE visitors ADD COLUMN user_id TEXT;"
     "CREATE UNIQUE INDEX visitors_by_user ON visitors (user_id) WHERE user_id IS NOT NULL;"
     "CREATE TABLE visitor_tokens ("
     "  token_hash TEXT PRIMARY KEY,"
     "  visitor_id INTEGER NOT NULL REFERENCES visitors (id),"
     "  created_at INTEGER NOT NULL"
     ") WITHOUT ROWID;"
     "CREATE TABLE identity_nonces ("
     "  nonce TEXT PRIMARY KEY,"
     "  expires_at INTEGER NOT NULL"
     ") WITHOUT ROWID;"
     "CREATE INDEX identity_nonces_by_expiry ON identity_nonces (expires_at);"),
    /* 13: the view counts kept on write. Counting the views on read walked every conversation
     * of a team, resolved ones included, so the counts' cost grew with the whole history (a
     * second on a million conversations, docs/PERFORMANCE.md). conversation_counts holds how
     * many conversations are in each (team, status, holder); every view's count is a sum over
     * its few rows. team_id is 0 for none; assignee_id is 0 for nobody, and for every resolved
     * conversation, since no view counts the resolved by holder: the table stays at teams x
     * statuses x agents holding work, whatever the history. Triggers keep it, so that every
     * write of a status, a holder, a team or a new conversation (the writer's statements today,
     * any added later) changes it in its own transaction; rows that fall to 0 stay (there are
     * few). A migration that builds conversations again must create the triggers again.
     * last_message_id is each conversation's newest message (0 while it has none), kept by a
     * trigger as each message is stored, so that a search's name hits can be walked newest
     * first from conversations_by_last_message and cut at the page (KF_SQLITE_SEARCH_MANY)
     * instead of looking up every matching visitor's newest message; the index carries
     * visitor_id, so the walk tests a visitor without reading the row. message_search_terms
     * reads the words of the messages' index (it holds nothing itself), so that a search can
     * ask for a word prefix's few words by a seek (store: expand_prefixes in sqlite_reads.c). */
    ("CREATE TABLE conversation_counts ("
     "  team_id INTEGER NOT NULL,"
     "  status TEXT NOT NULL,"
     "  assignee_id INTEGER NOT NULL,"
     "  n INTEGER NOT NULL,"
     "  PRIMARY KEY (team_id, status, assignee_id)"
     ") WITHOUT ROWID;"
     "INSERT INTO conversation_counts (team_id, status, assignee_id, n) "
     "SELECT " KF_SQLITE_COUNTS_KEY_COLUMNS ", count(*) FROM conversations GROUP BY 1, 2, 3;"
     "CREATE TRIGGER conversation_counts_insert AFTER INSERT ON conversations "
     "BEGIN " KF_SQLITE_COUNTS_ADD_NEW " END;"
     "CREATE TRIGGER conversation_counts_update "
     "  AFTER UPDATE OF status, assignee_id, team_id ON conversations "
     "  WHEN " KF_SQLITE_COUNTS_KEY_CHANGED " "
     "BEGIN " KF_SQLITE_COUNTS_SUBTRACT_OLD " " KF_SQLITE_COUNTS_ADD_NEW " END;"
     "CREATE TRIGGER conversation_counts_delete AFTER DELETE ON conversations "
     "BEGIN " KF_SQLITE_COUNTS_SUBTRACT_OLD " END;"
     "ALTER TABLE conversations ADD COLUMN last_message_id INTEGER NOT NULL DEFAULT 0;"
     "UPDATE conversations SET last_message_id = COALESCE((SELECT max(m.id) FROM messages m "
     "  WHERE m.conversation_id = conversations.id), 0);"
     "CREATE INDEX conversations_by_last_message ON conversations (last_message_id, visitor_id);"
     "CREATE TRIGGER messages_last AFTER INSERT ON messages BEGIN "
     "  UPDATE conversations SET last_message_id = NEW.id WHERE id = NEW.conversation_id;"
     "END;"
     "CREATE VIRTUAL TABLE message_search_terms USING fts5vocab(message_search, instance);"),
    /* 14: integrations (docs/API.md, "API tokens" and "Webhooks"). An API token is kept as its
     * SHA-256 only; revoking deletes it. A webhook's events are ",a,b," (one instr() finds a
     * name whole); its secret is kept as it is, since every request is signed with it.
     * webhook_deliveries holds the pending ones only, so that a restart resumes them; a
     * delivery that went or was given up leaves only its attempts in webhook_attempts, the
     * log, which keeps each webhook's newest few. */
    ("CREATE TABLE api_tokens ("
     "  id INTEGER PRIMARY KEY,"
     "  name TEXT NOT NULL,"
     "  scope TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),"
     "  token_hash TEXT NOT NULL UNIQUE,"
     "  created_by INTEGER REFERENCES agents (id),"
     "  created_at INTEGER NOT NULL,"
     "  last_used_at INTEGER"
     ");"
     "CREATE TABLE webhooks ("
     "  id INTEGER PRIMARY KEY,"
     "  url TEXT NOT NULL,"
     "  events TEXT NOT NULL,"
     "  secret TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL"
     ");"
     "CREATE TABLE webhook_deliveries ("
     "  id INTEGER PRIMARY KEY,"
     "  webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,"
     "  event TEXT NOT NULL,"
     "  body TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL,"
     "  attempts INTEGER NOT NULL,"
     "  next_at INTEGER NOT NULL"
     ");"
     "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at);"
     "CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id);"
     "CREATE TABLE webhook_attempts ("
     "  id INTEGER PRIMARY KEY,"
     "  webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,"
     "  delivery_id INTEGER NOT NULL,"
     "  event TEXT NOT NULL,"
     "  attempt INTEGER NOT NULL,"
     "  at INTEGER NOT NULL,"
     "  status INTEGER NOT NULL,"
     "  error TEXT NOT NULL,"
     "  next_at INTEGER NOT NULL"
     ");"
     "CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, id);"),
    /* 15: attachments (store.h, message_add and attachment_get). The bytes live in a blob file
     * named by sha256 beside the database (sqlite_writer.c writes it before the row commits);
     * the row says whose it is and what it is. A message names its file by attachment_id, so
     * that every message read carries it without a join of its own. */
    ("CREATE TABLE attachments ("
     "  id INTEGER PRIMARY KEY,"
     "  conversation_id INTEGER NOT NULL REFERENCES conversations (id),"
     "  sender INTEGER NOT NULL,"
     "  uploader_id INTEGER REFERENCES agents (id),"
     "  name TEXT NOT NULL,"
     "  type TEXT NOT NULL,"
     "  size INTEGER NOT NULL,"
     "  sha256 TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL"
     ");"
     "ALTER TABLE messages ADD COLUMN attachment_id INTEGER REFERENCES attachments (id);"
     "CREATE INDEX messages_by_attachment ON messages (attachment_id) "
     "  WHERE attachment_id IS NOT NULL;"),
    /* 16: the views ordered by the newest message's id, one index entry per view. Every message
     * moved its conversation in each index keyed on updated_at: nine for a conversation of a
     * team, five without (the activity, status, status and holder, holder, and last message
     * indexes), most of the writer's time per message beside the commit (docs/PERFORMANCE.md,
     * "The write path"). last_message_id orders as updated_at does (both are the newest
     * message's, and ids follow commits), and the store keeps it anyway, so the list is ordered
     * by it: conversations_by_last_message serves the whole list as well as the search, with id
     * to break ties among conversations without a message, and visitor_id for the search. A
     * view's index holds only the conversations in that view: unassigned ones only those open
     * and held by nobody, an agent's only those they hold and not resolved, so a conversation
     * is in three indexes (six with a team), one per view it is in, each moved once. The trigger
     * that keeps last_message_id moves updated_at (the newest message's time) in the same
     * update, which the writer did with a second one. */
    (KF_SQLITE_ACTIVITY_INDEXES_DROP KF_SQLITE_ACTIVITY_INDEXES
     "DROP TRIGGER messages_last;"
     "CREATE TRIGGER messages_last AFTER INSERT ON messages BEGIN "
     "  UPDATE conversations SET last_message_id = NEW.id, updated_at = NEW.created_at "
     "  WHERE id = NEW.conversation_id;"
     "END;"),
    /* 17: the search index fed in batches (KF_SQLITE_SEARCH_BATCH): the ids of the messages whose
     * text is not in message_search yet. A message's id goes in with the message; the writer
     * indexes them all at once and empties it. Not exported (transfer.c): an import indexes
     * every message it writes. */
    ("CREATE TABLE search_pending (id INTEGER PRIMARY KEY);"),
    /* 18: the words of the names' index, read as message_search_terms is (it holds nothing
     * itself), so that a name's prefix is asked as its few words and a common name's matching
     * visitors can be read newest first a few at a time (KF_SQLITE_SEARCH_MANY). */
    ("CREATE VIRTUAL TABLE visitor_search_terms USING fts5vocab(visitor_search, instance);"),
    /* 19: the messages' words that a prefix is asked as (expand_prefixes), kept in a table of our
     * own instead of read from the index (message_search_terms): to find the words after a
     * common one, FTS5 walks every page of that word's hits (1 ms for "refund" in 20 million
     * messages). Filled from the index once, then kept as the writer indexes
     * (SEARCH_PENDING_WORDS). A word whose messages are gone stays: asked for, it finds nothing. */
    ("CREATE TABLE search_words (word TEXT PRIMARY KEY) WITHOUT ROWID;" KF_SQLITE_SEARCH_WORDS_FILL
     "DROP TABLE message_search_terms;"),
    /* 20: search_words also holds the words that go on in other letters after two ASCII ones
     * ("straße"), so that it holds every word an ASCII prefix stands for: a prefix of no listed
     * word is asked as its exact word, which FTS5 finds absent at once, where the prefix made it
     * walk the pages of the word before it ("olga"* after "ok": 800 pages in 20 million
     * messages). The same fill again: INSERT OR IGNORE adds only the new ones. */
    (KF_SQLITE_SEARCH_WORDS_FILL),
    /* 21: the names' words, as 19 and 20 made the messages': the seek in visitor_search_terms
     * walked every page of the hits of the word before (the term before "refund" among the names
     * is "olga": 81 pages read by a first search on a million visitors). Kept as the writer
     * indexes a visitor (NAME_WORDS_OF_VISITOR); a word whose visitors changed stays. */
    ("CREATE TABLE name_words (word TEXT PRIMARY KEY) WITHOUT ROWID;" KF_SQLITE_NAME_WORDS_FILL
     "DROP TABLE visitor_search_terms;"),
    /* 22: what a message changes in its conversation is the writer's statement, not triggers
     * (KF_SQLITE_MESSAGE_STAMP says why): 9 % less of the writer's CPU per message at 10,000
     * msg/s (docs/PERFORMANCE.md). An import runs the same statement for each message. */
    ("DROP TRIGGER messages_first_reply;"
     "DROP TRIGGER messages_last;"),
    /* 23: the writer's idle merge (KF_SQLITE_MERGE_IDLE_MS) merges any level of either search
     * index that holds two segments or more, not four (FTS5's default usermerge): a search looks
     * its words up in each segment. Kept in the indexes' own configuration. */
    ("INSERT INTO message_search (message_search, rank) VALUES ('usermerge', 2);"
     "INSERT INTO visitor_search (visitor_search, rank) VALUES ('usermerge', 2);"),
};

/* A new store's page size, in bytes (conn_open). */
#define KF_SQLITE_PAGE_SIZE "1024"

#define MIGRATION_COUNT ((int64_t)(sizeof(migrations) / sizeof(migrations[0])))

static const char *const statement_sql[STMT_COUNT] = {
#define KF_SQLITE_STMT_SQL(name, sql) sql,
    KF_SQLITE_STATEMENTS(KF_SQLITE_STMT_SQL)
#undef KF_SQLITE_STMT_SQL
};

/* ---- statements and rows ---- */

/* A callback may queue other operations, but it never runs a statement itself: every statement
 * is stepped and reset by the operation that owns it. */
sqlite3_stmt *kf_sqlite_statement(conn_t *c, stmt_id_t id)
{
    sqlite3_stmt *st = c->statements[id];
    assert(!sqlite3_stmt_busy(st));
    return st;
}

void kf_sqlite_finish(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* A full disk or a read-only database is a state the database leaves by itself (space is freed,
 * the file system is remounted): the caller is told to come back (KF_EUNAVAIL); anything else is
 * a failure (KF_ESTORE). A WAL index that cannot grow is the disk filling just as the log needs
 * the index's next 32 KiB: the unix VFS reports it as SQLITE_IOERR_SHMSIZE, not SQLITE_FULL. */
int kf_sqlite_map_error(int code)
{
    if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY)
        return KF_EEXISTS;
    if ((code & 0xff) == SQLITE_FULL || (code & 0xff) == SQLITE_READONLY ||
        code == SQLITE_IOERR_SHMSIZE)
        return KF_EUNAVAIL;
    return KF_ESTORE;
}

/* Binds text without copying (the string must outlive the step); NULL binds "". */
static int bind_text(sqlite3_stmt *st, int index, const char *text)
{
    int code = sqlite3_bind_text(st, index, text != NULL ? text : "", -1, SQLITE_STATIC);
    return code == SQLITE_OK ? 0 : kf_sqlite_map_error(code);
}

static int bind_int64(sqlite3_stmt *st, int index, int64_t value)
{
    int code = sqlite3_bind_int64(st, index, value);
    return code == SQLITE_OK ? 0 : kf_sqlite_map_error(code);
}

/* Binds a row limit; LIMIT takes a signed 64-bit integer. */
static int bind_limit(sqlite3_stmt *st, int index, size_t limit)
{
    return bind_int64(st, index, limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit);
}

/* Binds SQL NULL. */
static int bind_null(sqlite3_stmt *st, int index)
{
    int code = sqlite3_bind_null(st, index);
    return code == SQLITE_OK ? 0 : kf_sqlite_map_error(code);
}

int kf_sqlite_bind(sqlite3_stmt *st, const char *types, ...)
{
    va_list args;
    va_start(args, types);
    int rc = 0;
    for (int i = 0; rc == 0 && types[i] != '\0'; i++) {
        int index = i + 1;
        if (types[i] == 't' || types[i] == 'T') {
            const char *text = va_arg(args, const char *);
            rc =
                text == NULL && types[i] == 'T' ? bind_null(st, index) : bind_text(st, index, text);
        } else if (types[i] == 'n') {
            rc = bind_limit(st, index, va_arg(args, size_t));
        } else {
            int64_t value = va_arg(args, int64_t);
            rc =
                value == 0 && types[i] == 'I' ? bind_null(st, index) : bind_int64(st, index, value);
        }
    }
    va_end(args);
    return rc;
}

int kf_sqlite_run(sqlite3_stmt *st)
{
    int code = sqlite3_step(st);
    kf_sqlite_finish(st);
    return code == SQLITE_DONE ? 0 : kf_sqlite_map_error(code);
}

int kf_sqlite_step_row(sqlite3_stmt *st)
{
    int code = sqlite3_step(st);
    if (code == SQLITE_ROW)
        return 0;
    if (code == SQLITE_DONE)
        return KF_ENOTFOUND;
    return kf_sqlite_map_error(code);
}

const char *kf_sqlite_column_text(sqlite3_stmt *st, int column)
{
    const char *text = (const char *)sqlite3_column_text(st, column);
    return text != NULL ? text : "";
}

void kf_sqlite_read_message(sqlite3_stmt *st, int first, kf_message_t *message)
{
    message->id = sqlite3_column_int64(st, first);
    message->conversation_id = sqlite3_column_int64(st, first + 1);
    message->visitor_id = sqlite3_column_int64(st, first + 2);
    bool by_agent = sqlite3_column_int64(st, first + 3) == KF_SENDER_AGENT;
    message->sender = by_agent ? KF_SENDER_AGENT : KF_SENDER_VISITOR;
    message->agent_id = sqlite3_column_int64(st, first + 4);
    message->agent_name = kf_sqlite_column_text(st, first + 5);
    message->body = kf_sqlite_column_text(st, first + 6);
    message->created_at = sqlite3_column_int64(st, first + 7);
    message->is_private = sqlite3_column_int64(st, first + 8) != 0;
    message->attachment_id = sqlite3_column_int64(st, first + 9);
    message->attachment_name = kf_sqlite_column_text(st, first + 10);
    message->attachment_type = kf_sqlite_column_text(st, first + 11);
    message->attachment_size = sqlite3_column_int64(st, first + 12);
}

void kf_sqlite_read_conversation(sqlite3_stmt *st, kf_conversation_t *conversation)
{
    conversation->id = sqlite3_column_int64(st, 0);
    conversation->visitor_id = sqlite3_column_int64(st, 1);
    conversation->visitor_name = kf_sqlite_column_text(st, 2);
    conversation->status = kf_sqlite_column_text(st, 3);
    conversation->created_at = sqlite3_column_int64(st, 4);
    conversation->updated_at = sqlite3_column_int64(st, 5);
    conversation->agent_read_up_to = sqlite3_column_int64(st, 6);
    conversation->visitor_read_up_to = sqlite3_column_int64(st, 7);
    conversation->unread_for_agents = sqlite3_column_int64(st, 8);
    conversation->unread_for_visitor = sqlite3_column_int64(st, 9);
    int assignee = KF_SQLITE_CONVERSATION_ASSIGNEE_COLUMN;
    conversation->snoozed_until = sqlite3_column_int64(st, assignee - 1);
    conversation->assignee = (kf_agent_t){
        .id = sqlite3_column_int64(st, assignee),
        .email = kf_sqlite_column_text(st, assignee + 1),
        .name = kf_sqlite_column_text(st, assignee + 2),
        .role = kf_sqlite_column_text(st, assignee + 3),
        .password_hash = "",
    };
    conversation->team_id = sqlite3_column_int64(st, KF_SQLITE_CONVERSATION_TEAM_COLUMN);
    conversation->team_name = kf_sqlite_column_text(st, KF_SQLITE_CONVERSATION_TEAM_COLUMN + 1);
    conversation->waiting_since = sqlite3_column_int64(st, KF_SQLITE_CONVERSATION_WAITING_COLUMN);
    int rating = KF_SQLITE_CONVERSATION_RATING_COLUMN;
    conversation->rating = kf_sqlite_column_text(st, rating);
    conversation->rating_comment = kf_sqlite_column_text(st, rating + 1);
    conversation->rated_at = sqlite3_column_int64(st, rating + 2);
    conversation->rating_current = sqlite3_column_int64(st, rating + 3) != 0;
    int last = KF_SQLITE_CONVERSATION_LAST_MESSAGE_COLUMN;
    conversation->has_last_message = sqlite3_column_type(st, last) != SQLITE_NULL;
    if (conversation->has_last_message) {
        kf_sqlite_read_message(st, last, &conversation->last_message);
    } else {
        memset(&conversation->last_message, 0, sizeof(conversation->last_message));
        conversation->last_message.agent_name = "";
        conversation->last_message.body = "";
        conversation->last_message.attachment_name = "";
        conversation->last_message.attachment_type = "";
    }
}

void kf_sqlite_read_agent(sqlite3_stmt *st, kf_agent_t *agent)
{
    agent->id = sqlite3_column_int64(st, 0);
    agent->email = kf_sqlite_column_text(st, 1);
    agent->name = kf_sqlite_column_text(st, 2);
    agent->role = kf_sqlite_column_text(st, 3);
    agent->password_hash = kf_sqlite_column_text(st, 4);
    agent->created_at = sqlite3_column_int64(st, 5);
    agent->disabled_at = sqlite3_column_int64(st, 6);
    agent->capacity = sqlite3_column_int64(st, 7);
    agent->open_conversations = sqlite3_column_int64(st, 8);
}

void kf_sqlite_read_team(sqlite3_stmt *st, kf_team_t *team, int64_t **ids)
{
    team->id = sqlite3_column_int64(st, 0);
    team->name = kf_sqlite_column_text(st, 1);
    team->auto_assign = kf_sqlite_column_text(st, 2);
    team->reassign_after = sqlite3_column_int64(st, 3);
    team->created_at = sqlite3_column_int64(st, 4);
    /* group_concat's "3,5,8": members are a handful, so a text beats a second query per team. */
    const char *members = kf_sqlite_column_text(st, 5);
    size_t count = 0;
    for (const char *p = members; *p != '\0'; p++)
        count += *p == ',';
    count += members[0] != '\0';
    *ids = realloc(*ids, (count > 0 ? count : 1) * sizeof **ids);
    if (*ids == NULL)
        abort();
    size_t n = 0;
    for (const char *p = members; *p != '\0' && n < count;) {
        char *end;
        (*ids)[n++] = strtoll(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
    team->member_ids = *ids;
    team->member_count = n;
}

void kf_sqlite_read_visitor(sqlite3_stmt *st, kf_visitor_t *visitor)
{
    visitor->id = sqlite3_column_int64(st, 0);
    visitor->name = kf_sqlite_column_text(st, 1);
    visitor->created_at = sqlite3_column_int64(st, 2);
    visitor->email = kf_sqlite_column_text(st, 3);
    visitor->user_id = kf_sqlite_column_text(st, 4);
}

void kf_sqlite_read_visitor_page(sqlite3_stmt *st, kf_visitor_page_t *page)
{
    page->id = sqlite3_column_int64(st, 0);
    page->visitor_id = sqlite3_column_int64(st, 1);
    page->url = kf_sqlite_column_text(st, 2);
    page->title = kf_sqlite_column_text(st, 3);
    page->referrer = kf_sqlite_column_text(st, 4);
    page->user_agent = kf_sqlite_column_text(st, 5);
    page->language = kf_sqlite_column_text(st, 6);
    page->timezone = kf_sqlite_column_text(st, 7);
    page->utc_offset = sqlite3_column_int64(st, 8);
    page->seen_at = sqlite3_column_int64(st, 9);
}

void kf_sqlite_read_canned(sqlite3_stmt *st, kf_canned_t *canned)
{
    canned->id = sqlite3_column_int64(st, 0);
    canned->owner_id = sqlite3_column_int64(st, 1);
    canned->shortcut = kf_sqlite_column_text(st, 2);
    canned->body = kf_sqlite_column_text(st, 3);
    canned->created_at = sqlite3_column_int64(st, 4);
    canned->updated_at = sqlite3_column_int64(st, 5);
}

/* ---- operations ---- */

op_t *kf_sqlite_op_new(op_kind_t kind, kf_store_done_cb done, void *ctx)
{
    op_t *op = kf_xcalloc(1, sizeof *op);
    op->kind = kind;
    op->done = done;
    op->ctx = ctx;
    /* Queued on the owner thread, inside a handler (or a store callback that goes on with its
     * request's work): the id set there is the request's. */
    const char *request_id = kf_log_request_id();
    if (request_id != NULL)
        snprintf(op->request_id, sizeof op->request_id, "%s", request_id);
    return op;
}

const char *kf_sqlite_op_keep(op_t *op, const char *text)
{
    assert(op->string_count < OP_MAX_STRINGS);
    char *copy = kf_xstrdup(text != NULL ? text : "");
    op->strings[op->string_count++] = copy;
    return copy;
}

void kf_sqlite_op_free(op_t *op)
{
    for (int i = 0; i < op->string_count; i++)
        free(op->strings[i]);
    free(op->ids);
    free(op->blob);
    free(op);
}

void kf_sqlite_list_append(op_list_t *list, op_t *head, op_t *tail)
{
    if (list->tail != NULL)
        list->tail->next = head;
    else
        list->head = head;
    list->tail = tail;
}

/* ---- running what is ready ---- */

/* The finished writes' callbacks first, in queue order, then the reads queued before this call;
 * what the callbacks queue is left for the next call (queue_read asks notify for it). */
static void sqlite_complete(kf_store_t *store)
{
    sqlite_store_t *s = kf_sqlite_from_base(store);
    if (s->completing)
        return;
    s->completing = true;
    op_t *read = s->reads.head;
    s->reads = (op_list_t){NULL, NULL};
    op_t *write = kf_sqlite_writer_take_finished(s);
    while (write != NULL) {
        op_t *next = write->next;
        /* What is logged about the write's outcome (the database refusing writes, a failure
         * answered 500) and what its callback goes on to queue are the request's. */
        const char *outer =
            kf_log_set_request_id(write->request_id[0] != '\0' ? write->request_id : NULL);
        kf_store_note_write(store, write->result.rc);
        write->done(write->ctx, &write->result);
        kf_log_set_request_id(outer);
        kf_sqlite_op_free(write);
        write = next;
    }
    while (read != NULL) {
        op_t *next = read->next;
        const char *outer =
            kf_log_set_request_id(read->request_id[0] != '\0' ? read->request_id : NULL);
        kf_sqlite_run_read(s, read);
        kf_log_set_request_id(outer);
        kf_sqlite_op_free(read);
        read = next;
    }
    s->completing = false;
}

static void sqlite_flush(kf_store_t *store)
{
    sqlite_store_t *s = kf_sqlite_from_base(store);
    assert(!s->completing); /* not from inside a callback: it would wait for itself */
    for (;;) {
        bool finished = kf_sqlite_writer_wait_idle(s);
        if (!finished && s->reads.head == NULL)
            break;
        sqlite_complete(store);
    }
}

static void sqlite_set_notify(kf_store_t *store, void (*notify)(void *data), void *data)
{
    sqlite_store_t *s = kf_sqlite_from_base(store);
    sqlite_store_t *root = kf_sqlite_root(s);
    pthread_mutex_lock(&root->queue_lock);
    s->notify = notify;
    s->notify_data = data;
    pthread_mutex_unlock(&root->queue_lock);
}

static void conn_close(conn_t *c);

/* Whatever is queued runs, and its callbacks are called, before the store goes. */
static void sqlite_close(kf_store_t *store)
{
    sqlite_store_t *s = kf_sqlite_from_base(store);
    sqlite_flush(store);
    if (s->root != NULL) { /* attached: the root keeps the writer */
        sqlite_set_notify(store, NULL, NULL);
        conn_close(&s->main);
        free(s->blob_dir);
        free(s);
        return;
    }
    kf_sqlite_writer_stop(s);
    kf_sqlite_checkpointer_stop(s);
    conn_close(&s->writer);
    conn_close(&s->main);
    pthread_cond_destroy(&s->gate_changed);
    pthread_mutex_destroy(&s->gate_lock);
    free(s->blob_dir);
    free(s);
}

static int conn_open(conn_t *c, const char *path, const char *synchronous_sql, bool create,
                     const char *vfs);

/* Another loop's handle: a read connection of its own (WAL readers never wait for each other or
 * for the writer), its writes to the root's writer. */
static int sqlite_attach(kf_store_t *store, kf_store_t **out)
{
    sqlite_store_t *root = kf_sqlite_root(kf_sqlite_from_base(store));
    const char *path = sqlite3_db_filename(root->main.db, "main");
    if (path == NULL || path[0] == '\0')
        return KF_EINVAL; /* in memory: another connection would be another database */
    sqlite_store_t *s = kf_xcalloc(1, sizeof *s);
    s->base.ops = root->base.ops;
    s->base.refused = kf__store_refused(&root->base); /* one answer for the process */
    s->root = root;
    s->synchronous_sql = root->synchronous_sql;
    s->blob_dir = kf_xstrdup(root->blob_dir);
    if (conn_open(&s->main, path, root->synchronous_sql, false, NULL) != 0) {
        conn_close(&s->main);
        free(s->blob_dir);
        free(s);
        return KF_ESTORE;
    }
    *out = &s->base;
    return 0;
}

static const kf_store_ops_t sqlite_ops = {
    .close = sqlite_close,
    KF_SQLITE_FRONT_OPS,
    .complete = sqlite_complete,
    .flush = sqlite_flush,
    .set_notify = sqlite_set_notify,
    .attach = sqlite_attach,
};

/* ---- opening: schema and migrations ---- */

/* Runs constant SQL (no user data) that needs no binding: pragmas and DDL. */
static int exec(sqlite3 *db, const char *sql)
{
    int code = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return code == SQLITE_OK ? 0 : kf_sqlite_map_error(code);
}

/* Reads schema_version into *version_out: 0 when absent (a new database), KF_ESTORE when it is
 * not a non-negative integer. */
static int read_schema_version(sqlite3 *db, int64_t *version_out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, statement_sql[STMT_SETTING_GET], -1, &st, NULL) != SQLITE_OK)
        return KF_ESTORE;
    int rc = bind_text(st, 1, KF_SQLITE_SCHEMA_VERSION_KEY);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    if (rc == KF_ENOTFOUND) {
        *version_out = 0;
        rc = 0;
    } else if (rc == 0) {
        const char *text = kf_sqlite_column_text(st, 0);
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
    if (sqlite3_prepare_v2(db, statement_sql[STMT_SETTING_SET], -1, &st, NULL) != SQLITE_OK)
        return KF_ESTORE;
    int rc = bind_text(st, 1, KF_SQLITE_SCHEMA_VERSION_KEY);
    if (rc == 0)
        rc = bind_int64(st, 2, version); /* stored as text by the column's affinity */
    if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
        rc = KF_ESTORE;
    sqlite3_finalize(st);
    return rc;
}

/* The migrations run with foreign keys off (a table built again would otherwise take its
 * referrers' rows with it when the old one is dropped): KF_ESTORE when a row refers to nothing
 * after them. */
static int check_foreign_keys(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK)
        return KF_ESTORE;
    int code = sqlite3_step(st);
    sqlite3_finalize(st);
    return code == SQLITE_DONE ? 0 : KF_ESTORE;
}

/* A new schema's search indexes write leaves that fit the file's pages: FTS5's default (4,050
 * bytes) suits 4 KiB pages, and a leaf larger than a page holds spills into overflow pages, each
 * read and written on its own. The same margin below the page as the default's. A store made
 * before keeps its leaves: changing them would leave its segments of both sizes. */
static int size_search_leaves(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int page_size = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        page_size = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (page_size < 1024)
        return KF_ESTORE;
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO message_search (message_search, rank) VALUES ('pgsz', %d);"
             "INSERT INTO visitor_search (visitor_search, rank) VALUES ('pgsz', %d);",
             page_size - 46, page_size - 46);
    return exec(db, sql);
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
    if (rc == 0 && version == 0)
        rc = size_search_leaves(db);
    if (rc == 0 && version < MIGRATION_COUNT)
        rc = check_foreign_keys(db);
    if (rc == 0 && version < MIGRATION_COUNT)
        rc = write_schema_version(db, MIGRATION_COUNT);
    if (rc == 0)
        rc = exec(db, "COMMIT");
    if (rc != 0 && !sqlite3_get_autocommit(db))
        exec(db, "ROLLBACK");
    return rc != 0 ? KF_ESTORE : 0;
}

/* The pragma for FULL, the one under which every commit syncs the log. */
static const char synchronous_full[] = "PRAGMA synchronous = FULL";

/* The pragma for a synchronous setting, or NULL for an unknown one. Constant strings only: a
 * pragma cannot take a bound parameter. */
static const char *synchronous_pragma(const char *synchronous)
{
    if (synchronous == NULL || strcasecmp(synchronous, "FULL") == 0)
        return synchronous_full;
    if (strcasecmp(synchronous, "NORMAL") == 0)
        return "PRAGMA synchronous = NORMAL";
    if (strcasecmp(synchronous, "OFF") == 0)
        return "PRAGMA synchronous = OFF";
    return NULL;
}

/* kefu_search_text(text): what the search index holds for text (store/search_text.h). */
static void search_text_fn(sqlite3_context *context, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    char *indexed = kf_search_index_text(text != NULL ? text : "");
    sqlite3_result_text(context, indexed, -1, free);
}

/* Defines kefu_search_text on db, for the statements and the migration that feed the index, and
 * kefu_name_walk, for a common name's search. */
int kf_sqlite_define_functions(sqlite3 *db)
{
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    int code =
        sqlite3_create_function(db, "kefu_search_text", 1, flags, NULL, search_text_fn, NULL, NULL);
    /* Not deterministic: it reads the walk it is handed as it goes. Direct only: a schema's
     * trigger or view has no walk to hand it. */
    if (code == SQLITE_OK)
        code = sqlite3_create_function(db, "kefu_name_walk", 2, SQLITE_UTF8 | SQLITE_DIRECTONLY,
                                       NULL, kf_sqlite_name_walk_fn, NULL, NULL);
    if (code == SQLITE_OK)
        code =
            sqlite3_create_function_v2(db, "kefu_search_words", 1, flags, kf_sqlite_words_new(),
                                       kf_sqlite_search_words_fn, NULL, NULL, kf_sqlite_words_free);
    return code == SQLITE_OK ? 0 : KF_ESTORE;
}

/* Opens a connection to path through vfs (NULL: the default) and prepares every statement. The
 * main connection (create) also sets WAL mode and migrates the schema first. */
static int conn_open(conn_t *c, const char *path, const char *synchronous_sql, bool create,
                     const char *vfs)
{
    /* sqlite3_open_v2 may hand back a connection even when it fails; conn_close closes it. */
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &c->db, flags, vfs) != SQLITE_OK)
        return KF_ESTORE;
    sqlite3_extended_result_codes(c->db, 1);
    if (sqlite3_busy_timeout(c->db, 5000) != SQLITE_OK || kf_sqlite_define_functions(c->db) != 0)
        return KF_ESTORE;
    /* A new store's pages are 1 KiB: a message dirties about six pages in random places (its
     * conversation's row, each index's old and new entries), each written whole to the log,
     * checksummed and synced, so small pages write a quarter of the bytes (docs/PERFORMANCE.md,
     * "What the writer writes for a message"). Set before WAL mode, which fixes the size; a
     * no-op on a store that exists. journal_mode answers with the mode it got; a file system
     * without WAL support keeps a rollback journal, which is slower but just as safe, so it is
     * not an error. */
    if ((create && exec(c->db, "PRAGMA page_size = " KF_SQLITE_PAGE_SIZE) != 0) ||
        (create && exec(c->db, "PRAGMA journal_mode = WAL") != 0) ||
        exec(c->db, synchronous_sql) != 0)
        return KF_ESTORE;
    /* Foreign keys go on after the migrations (see check_foreign_keys); the pragma is a no-op
     * inside a transaction, so it is set outside migrate's. */
    if (create && (exec(c->db, "PRAGMA foreign_keys = OFF") != 0 || migrate(c->db) != 0))
        return KF_ESTORE;
    if (exec(c->db, "PRAGMA foreign_keys = ON") != 0)
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

/* True when the database at db runs in WAL mode (a file system without it keeps a journal). */
static bool in_wal_mode(sqlite3 *db)
{
    char journal_mode[16] = "";
    sqlite3_stmt *mode = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &mode, NULL) == SQLITE_OK &&
        sqlite3_step(mode) == SQLITE_ROW)
        snprintf(journal_mode, sizeof journal_mode, "%s",
                 (const char *)sqlite3_column_text(mode, 0));
    sqlite3_finalize(mode);
    return strcasecmp(journal_mode, "wal") == 0;
}

int kf_store_sqlite_set_checkpoint_pages(kf_store_t *store, int pages)
{
    if (store == NULL || store->ops != &sqlite_ops || pages < 1 ||
        pages > KF_SQLITE_MAX_CHECKPOINT_PAGES)
        return KF_EINVAL;
    atomic_store(&kf_sqlite_from_base(store)->checkpoint_pages, pages);
    return 0;
}

int kf_store_sqlite_wal_bytes(kf_store_t *store, uint64_t *bytes)
{
    if (store == NULL || store->ops != &sqlite_ops)
        return KF_EINVAL;
    const char *db_path = sqlite3_db_filename(kf_sqlite_from_base(store)->main.db, "main");
    if (db_path == NULL || db_path[0] == '\0')
        return KF_EINVAL; /* in memory */
    char wal_path[4096];
    if ((size_t)snprintf(wal_path, sizeof wal_path, "%s-wal", db_path) >= sizeof wal_path)
        return KF_EIO;
    struct stat st;
    if (stat(wal_path, &st) != 0) {
        *bytes = 0;
        return errno == ENOENT ? 0 : KF_EIO;
    }
    *bytes = (uint64_t)st.st_size;
    return 0;
}

/* "attachments" in the database file's directory. */
static char *blob_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    int dir_len = slash != NULL ? (int)(slash - path) : 1;
    const char *dir = slash != NULL ? path : ".";
    if (slash == path)
        dir_len = 0; /* the root: "/attachments" */
    size_t size = (size_t)dir_len + sizeof "/attachments";
    char *blob_dir = kf_xmalloc(size);
    snprintf(blob_dir, size, "%.*s/attachments", dir_len, dir);
    return blob_dir;
}

int kf_store_open_sqlite(const char *path, const char *synchronous, kf_store_t **out)
{
    const char *synchronous_sql = synchronous_pragma(synchronous);
    if (path == NULL || out == NULL || synchronous_sql == NULL)
        return KF_EINVAL;
    *out = NULL;

    sqlite_store_t *s = kf_xcalloc(1, sizeof(*s));
    s->base.ops = &sqlite_ops;
    pthread_mutex_init(&s->gate_lock, NULL);
    pthread_cond_init(&s->gate_changed, NULL);
    atomic_init(&s->checkpoint_pages, KF_SQLITE_CHECKPOINT_PAGES);
    s->blob_dir = blob_dir_of(path);
    s->synchronous_sql = synchronous_sql;
    /* The writer's log writes are gathered where each commit syncs (sqlite_walbuf.c). Its
     * statement journals stay in memory: a statement that fires triggers keeps a copy of each
     * page it changes, to undo itself alone should it fail. Once one statement's copy passed
     * 64 KiB (the search index's batch does) SQLite moved the journal to a temporary file for
     * the rest of the transaction, and every later statement wrote each page there in two
     * writes: seven writes a message at 10,000 msg/s (docs/PERFORMANCE.md, "The log's writes
     * gathered"). The copy is bounded by what one statement changes. */
    const char *writer_vfs = synchronous_sql == synchronous_full ? kf_sqlite_walbuf_vfs() : NULL;
    if (conn_open(&s->main, path, synchronous_sql, true, NULL) != 0 ||
        conn_open(&s->writer, path, synchronous_sql, false, writer_vfs) != 0 ||
        exec(s->writer.db, "PRAGMA temp_store = MEMORY") != 0 || kf_sqlite_writer_start(s) != 0)
        goto out_close;
    if (in_wal_mode(s->main.db))
        kf_sqlite_checkpointer_start(s, path, synchronous_sql);
    *out = &s->base;
    return 0;

out_close:
    conn_close(&s->writer);
    conn_close(&s->main);
    pthread_cond_destroy(&s->gate_changed);
    pthread_mutex_destroy(&s->gate_lock);
    free(s->blob_dir);
    free(s);
    return KF_ESTORE;
}
