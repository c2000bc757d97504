/* pg_reads.c: the PostgreSQL backend's reads of the chat path: each runs its one query on the
 * reader thread (kf_pg_chat_read), and its rows go to the callbacks on the loop thread
 * (kf_pg_chat_deliver), borrowed from the PGresult that the op keeps until after done. The
 * queries are the SQLite backend's (sqlite_internal.h), written for PostgreSQL. */
#include "store/pg_internal.h"

#include "base/buf.h"
#include "base/err.h"

#include <stdlib.h>
#include <string.h>

#define LIST_ORDER "ORDER BY c.last_message_id DESC, c.id DESC LIMIT $1"

/* The conversation lists: one per view, each written as its index is (pg_schema.c). $1 the
 * limit, ($2, $3) the keyset, $4 the status or the agent, $5 the team. */
static const char *const sql_list[] = {
    KF_PG_CONVERSATION_SELECT "WHERE (c.last_message_id, c.id) < ($2, $3) " LIST_ORDER,
    KF_PG_CONVERSATION_SELECT
    "WHERE c.status = $4 AND (c.last_message_id, c.id) < ($2, $3) " LIST_ORDER,
    KF_PG_CONVERSATION_SELECT "WHERE c.status = 'open' AND c.assignee_id IS NULL "
                              "AND (c.last_message_id, c.id) < ($2, $3) " LIST_ORDER,
    KF_PG_CONVERSATION_SELECT "WHERE c.assignee_id = $4 AND c.status != 'resolved' "
                              "AND (c.last_message_id, c.id) < ($2, $3) " LIST_ORDER,
    KF_PG_CONVERSATION_SELECT "WHERE c.team_id = $5 AND (c.last_message_id, c.id) < ($2, $3) "
                              "AND $4::text IS NULL " LIST_ORDER,
    KF_PG_CONVERSATION_SELECT "WHERE c.team_id = $5 AND c.status = $4 "
                              "AND (c.last_message_id, c.id) < ($2, $3) " LIST_ORDER,
    KF_PG_CONVERSATION_SELECT "WHERE c.team_id = $5 AND c.status = 'open' "
                              "AND c.assignee_id IS NULL AND (c.last_message_id, c.id) < ($2, $3) "
                              "AND $4::text IS NULL " LIST_ORDER,
    KF_PG_CONVERSATION_SELECT "WHERE c.team_id = $5 AND c.assignee_id = $4 "
                              "AND c.status != 'resolved' AND (c.last_message_id, c.id) < ($2, $3) "
                              "" LIST_ORDER,
};
enum { LIST_ALL, LIST_STATUS, LIST_UNASSIGNED, LIST_MINE, LIST_TEAM };

/* Sums over conversation_counts (pg_schema.c), in kf_conversation_view_t's order. */
#define COUNTS_COLUMNS                                                                             \
    "COALESCE(sum(n) FILTER (WHERE status = 'open' AND assignee_id = 0), 0), "                     \
    "COALESCE(sum(n) FILTER (WHERE assignee_id = $1 AND $1 != 0 AND status != 'resolved'), 0), "   \
    "COALESCE(sum(n) FILTER (WHERE status = 'open'), 0), "                                         \
    "COALESCE(sum(n) FILTER (WHERE status = 'pending'), 0), "                                      \
    "COALESCE(sum(n) FILTER (WHERE status = 'resolved'), 0), "                                     \
    "COALESCE(sum(n) FILTER (WHERE status = 'snoozed'), 0)"

/* A search ($1 the tsquery, $2 the message id to stay below, $3 the limit): the newest message
 * hits and one hit per conversation of each visitor whose name or e-mail matches, at its newest
 * message; one row per message (a text hit before a name hit), newest first. */
#define SQL_SEARCH                                                                                 \
    "SELECT h.field, " KF_PG_MESSAGE_COLUMNS ", v.name, v.email FROM ("                            \
    "  SELECT id, min(field) AS field FROM ("                                                      \
    "    (SELECT id, 0 AS field FROM message_search WHERE text @@ $1::tsquery AND id < $2 "        \
    "      ORDER BY id DESC LIMIT $3) "                                                            \
    "    UNION ALL "                                                                               \
    "    (SELECT n.last_message_id, 1 FROM visitor_search s "                                      \
    "      JOIN conversations n ON n.visitor_id = s.id "                                           \
    "      WHERE s.text @@ $1::tsquery AND n.last_message_id > 0 AND n.last_message_id < $2 "      \
    "      ORDER BY n.last_message_id DESC LIMIT $3)"                                              \
    "  ) u GROUP BY id ORDER BY id DESC LIMIT $3"                                                  \
    ") h JOIN messages m ON m.id = h.id JOIN conversations c ON c.id = m.conversation_id "         \
    "JOIN visitors v ON v.id = c.visitor_id LEFT JOIN agents a ON a.id = m.agent_id "              \
    "ORDER BY m.id DESC"

/* The status a view of one status lists, else NULL. */
static const char *const view_status[KF_VIEW_COUNT] = {
    [KF_VIEW_OPEN] = "open",
    [KF_VIEW_PENDING] = "pending",
    [KF_VIEW_RESOLVED] = "resolved",
    [KF_VIEW_SNOOZED] = "snoozed",
};

/* Keeps res as op's next result (or its failure as the read's rc). */
static void keep(op_t *op, int rc, PGresult *res)
{
    kf_pg_read_t *read = op->pg_read;
    if (rc != 0) {
        read->rc = rc;
        return;
    }
    read->res[read->count++] = res;
}

static void read_list(PGconn *c, op_t *op)
{
    const kf_conversation_page_t *page = &op->args.page;
    bool first = page->before_last_message_id == 0 && page->before_id == 0;
    int64_t before_at = first ? INT64_MAX : page->before_last_message_id;
    int64_t before_id = first ? INT64_MAX : page->before_id;
    int which = page->view == KF_VIEW_UNASSIGNED  ? LIST_UNASSIGNED
                : page->view == KF_VIEW_MINE      ? LIST_MINE
                : view_status[page->view] != NULL ? LIST_STATUS
                                                  : LIST_ALL;
    PGresult *res = NULL;
    int rc;
    if (page->team_id != 0) {
        /* Every team statement takes $4 (a status, an agent or NULL) and $5. */
        char agent[24];
        snprintf(agent, sizeof agent, "%lld", (long long)page->agent_id);
        const char *fourth = which == LIST_MINE     ? agent
                             : which == LIST_STATUS ? view_status[page->view]
                                                    : NULL;
        rc = kf_pg_exec(c, &res, sql_list[LIST_TEAM + which], "niiTi", page->limit, before_at,
                        before_id, fourth, page->team_id);
    } else if (which == LIST_MINE) {
        rc = kf_pg_exec(c, &res, sql_list[which], "niii", page->limit, before_at, before_id,
                        page->agent_id);
    } else if (which == LIST_STATUS) {
        rc = kf_pg_exec(c, &res, sql_list[which], "niit", page->limit, before_at, before_id,
                        view_status[page->view]);
    } else {
        rc = kf_pg_exec(c, &res, sql_list[which], "nii", page->limit, before_at, before_id);
    }
    keep(op, rc, res);
}

static void read_search(PGconn *c, op_t *op)
{
    char *query = kf_pg_search_query(op->args.search.match);
    if (query[0] == '\0') {
        free(query); /* no term: nothing to find (an empty result, read->count 0) */
        return;
    }
    PGresult *res = NULL;
    int64_t before = op->args.search.before_id > 0 ? op->args.search.before_id : INT64_MAX;
    int rc = kf_pg_exec(c, &res, SQL_SEARCH, "tin", query, before, op->args.search.limit);
    free(query);
    keep(op, rc, res);
}

/* attachment_get: the row with its bytes, decoded here (off the loop) into op->blob. */
static void read_attachment(PGconn *c, op_t *op)
{
    PGresult *res = NULL;
    int rc = kf_pg_exec(
        c, &res,
        "SELECT f.id, f.conversation_id, c.visitor_id, COALESCE(m.id, 0), COALESCE(m.private, 0), "
        "f.sender, COALESCE(f.uploader_id, 0), f.name, f.type, f.size, f.sha256, f.created_at, "
        "f.bytes FROM attachments f JOIN conversations c ON c.id = f.conversation_id "
        "LEFT JOIN messages m ON m.attachment_id = f.id WHERE f.id = $1",
        "i", op->args.id);
    if (rc == 0 && PQntuples(res) == 1) {
        size_t len = 0;
        unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 12), &len);
        if (bytes == NULL) {
            PQclear(res);
            keep(op, KF_ESTORE, NULL);
            return;
        }
        op->blob = kf_xmalloc(len > 0 ? len : 1);
        memcpy(op->blob, bytes, len);
        op->blob_len = len;
        PQfreemem(bytes);
    }
    keep(op, rc, res);
}

bool kf_pg_chat_read(PGconn *c, op_t *op)
{
    PGresult *res = NULL;
    int rc;
    switch (op->kind) {
    case OP_SETTING_GET:
        rc = kf_pg_exec(c, &res, "SELECT value FROM settings WHERE key = $1", "t", op->args.key);
        break;
    case OP_AGENT_COUNT: rc = kf_pg_exec(c, &res, "SELECT count(*) FROM agents", ""); break;
    case OP_MESSAGE_NEWEST:
        rc = kf_pg_exec(c, &res, "SELECT COALESCE(max(id), 0) FROM messages", "");
        break;
    case OP_AGENT_BY_EMAIL:
        rc = kf_pg_exec(c, &res, "SELECT " KF_PG_AGENT_COLUMNS " FROM agents WHERE email = $1", "t",
                        op->args.email);
        break;
    case OP_AGENT_BY_ID:
        rc = kf_pg_exec(c, &res, "SELECT " KF_PG_AGENT_COLUMNS " FROM agents WHERE id = $1", "i",
                        op->args.id);
        break;
    case OP_AGENT_LIST:
        rc = kf_pg_exec(c, &res, "SELECT " KF_PG_AGENT_COLUMNS " FROM agents ORDER BY id", "");
        break;
    case OP_SESSION_GET:
        rc = kf_pg_exec(c, &res,
                        "SELECT agent_id, csrf, expires_at FROM sessions "
                        "WHERE token_hash = $1 AND expires_at > $2",
                        "ti", op->args.session.token_hash, op->args.session.now);
        break;
    case OP_VISITOR_BY_TOKEN:
        rc = kf_pg_exec(c, &res,
                        "(SELECT " KF_PG_VISITOR_COLUMNS " FROM visitors WHERE token_hash = $1) "
                        "UNION ALL (SELECT " KF_PG_VISITOR_COLUMNS " FROM visitors WHERE id = "
                        "(SELECT visitor_id FROM visitor_tokens WHERE token_hash = $1)) LIMIT 1",
                        "t", op->args.token_hash);
        break;
    case OP_CONVERSATION_GET:
        rc = kf_pg_exec(c, &res, KF_PG_CONVERSATION_SELECT "WHERE c.id = $1", "i", op->args.id);
        break;
    case OP_CONVERSATION_VISITOR:
        rc = kf_pg_exec(c, &res, "SELECT visitor_id FROM conversations WHERE id = $1", "i",
                        op->args.id);
        break;
    case OP_CONVERSATION_OF_VISITOR:
        rc = kf_pg_exec(c, &res,
                        "SELECT id FROM conversations WHERE visitor_id = $1 "
                        "ORDER BY id DESC LIMIT 1",
                        "i", op->args.id);
        break;
    case OP_CONVERSATION_SNOOZE_DUE:
        rc = kf_pg_exec(c, &res,
                        "SELECT id FROM conversations WHERE status = 'snoozed' "
                        "AND snoozed_until <= $1 ORDER BY snoozed_until LIMIT 1",
                        "i", op->args.id);
        break;
    case OP_CONVERSATION_COUNTS:
        rc = kf_pg_exec(c, &res,
                        "SELECT COALESCE(sum(n), 0), " COUNTS_COLUMNS " FROM conversation_counts",
                        "i", op->args.id);
        break;
    case OP_TEAM_COUNTS:
        rc = kf_pg_exec(c, &res,
                        "SELECT team_id, sum(n), " COUNTS_COLUMNS " FROM conversation_counts "
                        "WHERE team_id > 0 GROUP BY team_id HAVING sum(n) > 0 ORDER BY team_id",
                        "i", op->args.id);
        break;
    case OP_MESSAGES_IN_CONVERSATION:
        rc = kf_pg_exec(c, &res,
                        "SELECT " KF_PG_MESSAGE_COLUMNS KF_PG_MESSAGES_FROM
                        "WHERE m.conversation_id = $1 AND m.id > $2 ORDER BY m.id LIMIT $3",
                        "iin", op->args.messages.subject, op->args.messages.after_id,
                        op->args.messages.limit);
        break;
    case OP_MESSAGES_OF_VISITOR:
        /* The visitor's read: private notes never leave it (docs/SECURITY.md). */
        rc = kf_pg_exec(c, &res,
                        "SELECT " KF_PG_MESSAGE_COLUMNS KF_PG_MESSAGES_FROM
                        "WHERE c.visitor_id = $1 AND m.id > $2 AND m.private = 0 "
                        "ORDER BY m.id LIMIT $3",
                        "iin", op->args.messages.subject, op->args.messages.after_id,
                        op->args.messages.limit);
        break;
    case OP_MESSAGES_ALL:
        rc = kf_pg_exec(c, &res,
                        "SELECT " KF_PG_MESSAGE_COLUMNS KF_PG_MESSAGES_FROM
                        "WHERE m.id > $1 ORDER BY m.id LIMIT $2",
                        "in", op->args.messages.after_id, op->args.messages.limit);
        break;
    case OP_CONVERSATION_LIST: read_list(c, op); return true;
    case OP_SEARCH: read_search(c, op); return true;
    case OP_ATTACHMENT_GET: read_attachment(c, op); return true;
    default: return false;
    }
    keep(op, rc, res);
    return true;
}

/* ---- on the loop ---- */

/* Hands each row of a list to its each callback, stopping at a non-zero return (the result's
 * rc); count is how many rows it was handed. */
static void each_row(op_t *op, const PGresult *res, kf_store_result_t *result)
{
    int rows = res != NULL ? PQntuples(res) : 0;
    for (int row = 0; row < rows && result->rc == 0; row++) {
        result->count++;
        if (op->kind == OP_TEAM_COUNTS) {
            int64_t counts[KF_VIEW_COUNT];
            for (int view = 0; view < KF_VIEW_COUNT; view++)
                counts[view] = kf_pg_int(res, row, view + 1);
            result->rc = op->each_team_counts(op->ctx, kf_pg_int(res, row, 0), counts);
        } else if (op->kind == OP_CONVERSATION_LIST) {
            kf_conversation_t conversation;
            kf_pg_read_conversation(res, row, &conversation);
            result->rc = op->each_conversation(op->ctx, &conversation);
        } else if (op->kind == OP_SEARCH) {
            kf_search_hit_t hit;
            hit.field =
                kf_pg_int(res, row, 0) == KF_SEARCH_VISITOR ? KF_SEARCH_VISITOR : KF_SEARCH_MESSAGE;
            kf_pg_read_message(res, row, 1, &hit.message);
            hit.visitor_name = kf_pg_text(res, row, 14);
            hit.visitor_email = kf_pg_text(res, row, 15);
            result->rc = op->each_hit(op->ctx, &hit);
        } else if (op->kind == OP_AGENT_LIST) {
            kf_agent_t agent;
            kf_pg_read_agent(res, row, &agent);
            result->rc = op->each_agent(op->ctx, &agent);
        } else {
            kf_message_t message;
            kf_pg_read_message(res, row, 0, &message);
            result->rc = op->each_message(op->ctx, &message);
        }
    }
}

static void deliver_attachment(op_t *op, const PGresult *res)
{
    kf_store_result_t result = {.rc = PQntuples(res) == 1 ? 0 : KF_ENOTFOUND};
    kf_attachment_t attachment;
    if (result.rc == 0) {
        attachment = (kf_attachment_t){
            .id = kf_pg_int(res, 0, 0),
            .conversation_id = kf_pg_int(res, 0, 1),
            .visitor_id = kf_pg_int(res, 0, 2),
            .message_id = kf_pg_int(res, 0, 3),
            .is_private = kf_pg_int(res, 0, 4) != 0,
            .sender = kf_pg_int(res, 0, 5) == KF_SENDER_AGENT ? KF_SENDER_AGENT : KF_SENDER_VISITOR,
            .uploader_id = kf_pg_int(res, 0, 6),
            .name = kf_pg_text(res, 0, 7),
            .type = kf_pg_text(res, 0, 8),
            .size = kf_pg_int(res, 0, 9),
            .sha256 = kf_pg_text(res, 0, 10),
            .created_at = kf_pg_int(res, 0, 11),
            .bytes = op->blob,
        };
        if (attachment.size < 0 || (size_t)attachment.size != op->blob_len)
            result.rc = KF_ESTORE;
        else
            result.attachment = &attachment;
    }
    op->done(op->ctx, &result);
}

bool kf_pg_chat_deliver(op_t *op)
{
    bool list = false;
    switch (op->kind) {
    case OP_AGENT_LIST:
    case OP_CONVERSATION_LIST:
    case OP_MESSAGES_IN_CONVERSATION:
    case OP_MESSAGES_OF_VISITOR:
    case OP_MESSAGES_ALL:
    case OP_SEARCH:
    case OP_TEAM_COUNTS: list = true; break;
    case OP_SETTING_GET:
    case OP_AGENT_COUNT:
    case OP_MESSAGE_NEWEST:
    case OP_AGENT_BY_EMAIL:
    case OP_AGENT_BY_ID:
    case OP_SESSION_GET:
    case OP_VISITOR_BY_TOKEN:
    case OP_CONVERSATION_GET:
    case OP_CONVERSATION_VISITOR:
    case OP_CONVERSATION_OF_VISITOR:
    case OP_CONVERSATION_SNOOZE_DUE:
    case OP_CONVERSATION_COUNTS:
    case OP_ATTACHMENT_GET: break;
    default: return false;
    }
    const PGresult *res = op->pg_read->count > 0 ? op->pg_read->res[0] : NULL;
    kf_store_result_t result;
    memset(&result, 0, sizeof result);
    if (list) {
        each_row(op, res, &result);
        op->done(op->ctx, &result);
        return true;
    }
    if (op->kind == OP_ATTACHMENT_GET) {
        deliver_attachment(op, res);
        return true;
    }
    kf_agent_t agent;
    kf_visitor_t visitor;
    kf_session_t session;
    kf_conversation_t conversation;
    int64_t counts[KF_VIEW_COUNT];
    if (res == NULL || PQntuples(res) == 0) {
        result.rc = KF_ENOTFOUND;
        op->done(op->ctx, &result);
        return true;
    }
    switch (op->kind) {
    case OP_SETTING_GET: result.value = kf_pg_text(res, 0, 0); break;
    case OP_AGENT_COUNT: result.count = kf_pg_int(res, 0, 0); break;
    case OP_MESSAGE_NEWEST: result.id = kf_pg_int(res, 0, 0); break;
    case OP_AGENT_BY_EMAIL:
    case OP_AGENT_BY_ID:
        kf_pg_read_agent(res, 0, &agent);
        result.agent = &agent;
        break;
    case OP_SESSION_GET:
        session.agent_id = kf_pg_int(res, 0, 0);
        session.csrf = kf_pg_text(res, 0, 1);
        session.expires_at = kf_pg_int(res, 0, 2);
        result.session = &session;
        break;
    case OP_VISITOR_BY_TOKEN:
        kf_pg_read_visitor(res, 0, &visitor);
        result.visitor = &visitor;
        break;
    case OP_CONVERSATION_GET:
        kf_pg_read_conversation(res, 0, &conversation);
        result.conversation = &conversation;
        break;
    case OP_CONVERSATION_COUNTS:
        for (int view = 0; view < KF_VIEW_COUNT; view++)
            counts[view] = kf_pg_int(res, 0, view);
        result.counts = counts;
        break;
    default: result.id = kf_pg_int(res, 0, 0); break; /* a visitor, a conversation */
    }
    op->done(op->ctx, &result);
    return true;
}
