/* pg_writer.c: the PostgreSQL backend's writes of the chat path, applied on the writer thread
 * inside its batch's transaction, each after its own savepoint (pg.c): a write that fails is
 * rolled back alone, so unlike sqlite_writer.c no write has to say it failed half-way. Each fills
 * op->result as its SQLite twin does, the statements being the SQLite backend's written for
 * PostgreSQL. */
#include "store/pg_internal.h"

#include "auth/auth.h"
#include "base/buf.h"
#include "base/err.h"

#include <stdlib.h>
#include <string.h>

/* KF_ENOTFOUND when a statement that changes one row changed none. */
static int changed_one(int rc, const int64_t *changed)
{
    return rc == 0 && *changed == 0 ? KF_ENOTFOUND : rc;
}

/* Whether agent_id may still write (sqlite_writer.c's check_agent): 0, KF_EFORBIDDEN for a
 * disabled agent, KF_EINVAL for none; its name kept in op into *name unless name is NULL. */
static int check_agent(PGconn *c, op_t *op, int64_t agent_id, const char **name)
{
    PGresult *res = NULL;
    int rc = kf_pg_exec(c, &res, "SELECT name, disabled_at IS NOT NULL FROM agents WHERE id = $1",
                        "i", agent_id);
    if (rc == 0 && PQntuples(res) == 0)
        rc = KF_EINVAL;
    else if (rc == 0 && kf_pg_int(res, 0, 1) != 0)
        rc = KF_EFORBIDDEN;
    else if (rc == 0 && name != NULL)
        *name = kf_sqlite_op_keep(op, kf_pg_text(res, 0, 0));
    PQclear(res);
    return rc;
}

static int apply_visitor_create(PGconn *c, op_t *op)
{
    int rc =
        kf_pg_one(c, &op->result.id,
                  "INSERT INTO visitors (token_hash, name, created_at) VALUES ($1, $2, $3) "
                  "RETURNING id",
                  "tti", op->args.visitor.token_hash, op->args.visitor.name, op->args.visitor.now);
    if (rc != 0 || op->args.visitor.name[0] == '\0')
        return rc;
    char *vector = kf_pg_search_vector(op->args.visitor.name);
    rc = kf_pg_run(c, NULL, "INSERT INTO visitor_search (id, text) VALUES ($1, $2::tsvector)", "it",
                   op->result.id, vector);
    free(vector);
    return rc;
}

static int apply_session_create(PGconn *c, op_t *op)
{
    int rc = check_agent(c, op, op->args.session.agent_id, NULL);
    if (rc == 0)
        rc = kf_pg_run(c, NULL,
                       "INSERT INTO sessions (token_hash, agent_id, csrf, created_at, expires_at) "
                       "VALUES ($1, $2, $3, $4, $5)",
                       "titii", op->args.session.token_hash, op->args.session.agent_id,
                       op->args.session.csrf, op->args.session.now, op->args.session.expires_at);
    if (rc == 0)
        rc = kf_pg_run(c, NULL, "DELETE FROM sessions WHERE expires_at <= $1", "i",
                       op->args.session.now);
    return rc;
}

/* The visitor's conversation, created when there is none (*created says so); KF_ENOTFOUND for an
 * unknown visitor. */
static int open_conversation(PGconn *c, int64_t visitor_id, int64_t now, int64_t *id_out,
                             bool *created)
{
    int rc = kf_pg_one(c, id_out,
                       "SELECT id FROM conversations WHERE visitor_id = $1 "
                       "ORDER BY id DESC LIMIT 1",
                       "i", visitor_id);
    if (rc != KF_ENOTFOUND)
        return rc;
    int64_t exists = 0;
    rc = kf_pg_one(c, &exists, "SELECT 1 FROM visitors WHERE id = $1", "i", visitor_id);
    if (rc == 0)
        rc = kf_pg_one(c, id_out,
                       "INSERT INTO conversations (visitor_id, status, created_at, updated_at, "
                       "agent_read_up_to, visitor_read_up_to) VALUES ($1, 'open', $2, $2, 0, 0) "
                       "RETURNING id",
                       "ii", visitor_id, now);
    *created = rc == 0;
    return rc;
}

/* The sender's earlier message with this message's key (sqlite_writer.c's find_keyed). */
static int find_keyed(PGconn *c, op_t *op, int64_t owner, bool *found)
{
    const kf_message_new_t *m = &op->args.message;
    PGresult *res = NULL;
    int rc = kf_pg_exec(c, &res,
                        "SELECT " KF_PG_MESSAGE_COLUMNS KF_PG_MESSAGES_FROM
                        "WHERE m.sender = $1 AND m.idempotency_owner = $2 "
                        "AND m.idempotency_key = $3",
                        "iit", (int64_t)m->sender, owner, m->idempotency_key);
    *found = rc == 0 && PQntuples(res) > 0;
    if (*found) {
        kf_message_t stored;
        kf_pg_read_message(res, 0, 0, &stored);
        if (strcmp(stored.body, m->body) != 0 || stored.is_private != m->is_private ||
            (m->conversation_id != 0 && stored.conversation_id != m->conversation_id)) {
            rc = KF_ECONFLICT;
        } else {
            op->message = stored;
            op->message.agent_name = kf_sqlite_op_keep(op, stored.agent_name);
            op->message.body = m->body;
            op->message.attachment_id = 0;
            op->message.attachment_name = "";
            op->message.attachment_type = "";
            op->message.attachment_size = 0;
            op->result.duplicate = true;
            op->result.message = &op->message;
        }
    }
    PQclear(res);
    return rc;
}

/* Inserts the message, indexes it for search and moves its conversation's updated_at: one
 * statement, one round trip (the triggers of pg_schema.c run after it, and see its changes). */
static int insert_message(PGconn *c, const kf_message_new_t *m, int64_t conversation_id,
                          int64_t owner, int64_t attachment_id, int64_t *id_out)
{
    bool keyed = m->idempotency_key != NULL;
    char *vector = kf_pg_search_vector(m->body);
    int rc = kf_pg_one(c, id_out,
                       "WITH m AS (INSERT INTO messages (conversation_id, sender, agent_id, body, "
                       "created_at, idempotency_key, idempotency_owner, private, attachment_id) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id), "
                       "s AS (INSERT INTO message_search (id, text) "
                       "SELECT id, $10::tsvector FROM m), "
                       "u AS (UPDATE conversations SET updated_at = $5 WHERE id = $1) "
                       "SELECT id FROM m",
                       "iiItiTIiIt", conversation_id, (int64_t)m->sender, m->agent_id, m->body,
                       m->now, m->idempotency_key, keyed ? owner : 0, (int64_t)m->is_private,
                       attachment_id, vector);
    free(vector);
    return rc;
}

static int apply_message(PGconn *c, op_t *op)
{
    const kf_message_new_t *m = &op->args.message;
    int64_t conversation_id = m->conversation_id;
    int64_t visitor_id = m->visitor_id;
    int rc = 0;
    const char *agent_name = "";
    int agent_rc = 0; /* check_agent's answer, judged after the key as sqlite_writer.c does */
    bool agent_known = false;
    if (conversation_id != 0 && m->sender == KF_SENDER_AGENT) {
        /* An agent's reply, the common write: its conversation and its author in one trip. */
        PGresult *res = NULL;
        rc = kf_pg_exec(c, &res,
                        "SELECT (SELECT visitor_id FROM conversations WHERE id = $1), a.name, "
                        "a.disabled_at IS NOT NULL FROM (SELECT 1) one "
                        "LEFT JOIN agents a ON a.id = $2",
                        "ii", conversation_id, m->agent_id);
        if (rc == 0 && kf_pg_null(res, 0, 0))
            rc = KF_ENOTFOUND;
        if (rc == 0) {
            visitor_id = kf_pg_int(res, 0, 0);
            agent_known = true;
            if (kf_pg_null(res, 0, 1))
                agent_rc = KF_EINVAL;
            else if (kf_pg_int(res, 0, 2) != 0)
                agent_rc = KF_EFORBIDDEN;
            else
                agent_name = kf_sqlite_op_keep(op, kf_pg_text(res, 0, 1));
        }
        PQclear(res);
    } else if (conversation_id != 0) {
        rc = kf_pg_one(c, &visitor_id, "SELECT visitor_id FROM conversations WHERE id = $1", "i",
                       conversation_id);
    }
    int64_t owner = m->sender == KF_SENDER_AGENT ? m->agent_id : visitor_id;
    if (rc == 0 && m->idempotency_key != NULL) {
        bool found = false;
        rc = find_keyed(c, op, owner, &found);
        if (rc != 0 || found)
            return rc;
    }
    if (rc == 0 && agent_known)
        rc = agent_rc;
    else if (rc == 0 && m->sender == KF_SENDER_AGENT)
        rc = check_agent(c, op, m->agent_id, &agent_name);
    if (rc == 0 && conversation_id == 0)
        rc = open_conversation(c, visitor_id, m->now, &conversation_id,
                               &op->result.conversation_opened);
    bool reopens = m->sender == KF_SENDER_VISITOR || m->conversation_id == 0;
    if (rc == 0 && reopens && !op->result.conversation_opened) {
        int64_t changed = 0;
        rc = kf_pg_run(c, &changed,
                       "UPDATE conversations SET status = 'open', snoozed_until = NULL, "
                       "resolved_at = NULL, resolved_by = NULL "
                       "WHERE id = $1 AND status IN ('resolved', 'snoozed')",
                       "i", conversation_id);
        op->result.conversation_reopened = rc == 0 && changed > 0;
    }
    /* The bytes go into the row itself (pg_schema.c), named by their SHA-256 as on SQLite. */
    int64_t attachment_id = 0;
    if (rc == 0 && m->attachment != NULL) {
        const kf_attachment_new_t *a = m->attachment;
        kf_auth_sha256_hex(a->bytes, a->size, op->blob_name);
        rc = kf_pg_one(c, &attachment_id,
                       "INSERT INTO attachments (conversation_id, sender, uploader_id, name, type, "
                       "size, sha256, created_at, bytes) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                       "iiIttitib", conversation_id, (int64_t)m->sender, m->agent_id, a->name,
                       a->type, (int64_t)a->size, op->blob_name, m->now, a->bytes, a->size);
    }
    int64_t id = 0;
    if (rc == 0)
        rc = insert_message(c, m, conversation_id, owner, attachment_id, &id);
    if (rc != 0) {
        op->result.conversation_opened = false;
        op->result.conversation_reopened = false;
        return rc;
    }
    kf_sqlite_answer_message(op, m, id, conversation_id, visitor_id, agent_name, attachment_id);
    return 0;
}

/* The agent's row as it is now, into the op's result (its strings kept in the op). */
static int read_back_agent(PGconn *c, op_t *op, int64_t id)
{
    PGresult *res = NULL;
    int rc =
        kf_pg_exec(c, &res, "SELECT " KF_PG_AGENT_COLUMNS " FROM agents WHERE id = $1", "i", id);
    if (rc == 0 && PQntuples(res) == 0)
        rc = KF_ENOTFOUND;
    if (rc == 0) {
        kf_agent_t *agent = &op->agent;
        kf_pg_read_agent(res, 0, agent);
        agent->email = kf_sqlite_op_keep(op, agent->email);
        agent->name = kf_sqlite_op_keep(op, agent->name);
        agent->role = kf_sqlite_op_keep(op, agent->role);
        agent->password_hash = kf_sqlite_op_keep(op, agent->password_hash);
        op->result.agent = agent;
    }
    PQclear(res);
    return rc;
}

/* Whether the change would leave the desk without an enabled admin (sqlite_writer.c's). */
static int check_admins_left(PGconn *c, int64_t id, const kf_agent_change_t *change)
{
    PGresult *res = NULL;
    int rc = kf_pg_exec(c, &res,
                        "SELECT role = 'admin' AND disabled_at IS NULL FROM agents WHERE id = $1",
                        "i", id);
    if (rc == 0 && PQntuples(res) == 0)
        rc = KF_ENOTFOUND;
    bool enabled_admin = rc == 0 && kf_pg_int(res, 0, 0) != 0;
    PQclear(res);
    bool demoted = change->role != NULL && strcmp(change->role, "admin") != 0;
    if (rc != 0 || !enabled_admin || (change->state != KF_AGENT_STATE_DISABLE && !demoted))
        return rc;
    int64_t others = 0;
    rc = kf_pg_one(c, &others,
                   "SELECT count(*) FROM agents WHERE role = 'admin' "
                   "AND disabled_at IS NULL AND id != $1",
                   "i", id);
    return rc == 0 && others == 0 ? KF_ECONFLICT : rc;
}

/* Unassigns every unresolved conversation agent id holds, their ids into the op's result. */
static int release_conversations(PGconn *c, op_t *op, int64_t id)
{
    PGresult *res = NULL;
    int rc = kf_pg_exec(c, &res,
                        "UPDATE conversations SET assignee_id = NULL "
                        "WHERE assignee_id = $1 AND status != 'resolved' RETURNING id",
                        "i", id);
    if (rc != 0)
        return rc;
    int rows = PQntuples(res);
    op->ids = kf_xrealloc(op->ids, (size_t)(rows > 0 ? rows : 1) * sizeof *op->ids);
    op->id_count = 0;
    for (int row = 0; row < rows; row++)
        op->ids[op->id_count++] = kf_pg_int(res, row, 0);
    PQclear(res);
    /* In id order, as SQLite's walk of the table gives them. */
    for (size_t i = 1; i < op->id_count; i++) {
        for (size_t j = i; j > 0 && op->ids[j - 1] > op->ids[j]; j--) {
            int64_t swap = op->ids[j];
            op->ids[j] = op->ids[j - 1];
            op->ids[j - 1] = swap;
        }
    }
    op->result.released = op->ids;
    op->result.released_count = op->id_count;
    return 0;
}

static int apply_agent_update(PGconn *c, op_t *op)
{
    int64_t id = op->args.update.id;
    const kf_agent_change_t *change = &op->args.update.change;
    int rc = check_admins_left(c, id, change);
    /* A disabled agent's sessions are kept, refused with their agent, until it is enabled again
     * (the SQLite writer's apply_agent_update says why); counted or deleted before the change,
     * which is what tells either state from the one before. */
    int64_t ended = 0;
    if (rc == 0 && change->state == KF_AGENT_STATE_DISABLE)
        rc = kf_pg_one(c, &ended,
                       "SELECT count(*) FROM sessions WHERE agent_id = $1 AND expires_at > $2 "
                       "AND (SELECT disabled_at FROM agents WHERE id = $1) IS NULL",
                       "ii", id, change->now);
    else if (rc == 0 && change->state == KF_AGENT_STATE_ENABLE)
        rc = kf_pg_run(c, NULL,
                       "DELETE FROM sessions WHERE agent_id = $1 "
                       "AND (SELECT disabled_at FROM agents WHERE id = $1) IS NOT NULL",
                       "i", id);
    if (rc == 0)
        rc = kf_pg_run(c, NULL,
                       "UPDATE agents SET name = COALESCE($2, name), role = COALESCE($3, role), "
                       "disabled_at = CASE $4::int WHEN 1 THEN NULL "
                       "WHEN 2 THEN COALESCE(disabled_at, $5) ELSE disabled_at END, "
                       "password_hash = COALESCE($6, password_hash) WHERE id = $1",
                       "iTTiiT", id, change->name, change->role, (int64_t)change->state,
                       change->now, change->password_hash);
    if (rc != 0)
        return rc;
    if (change->password_hash != NULL && change->state != KF_AGENT_STATE_DISABLE)
        rc = kf_pg_run(c, &ended,
                       "DELETE FROM sessions WHERE agent_id = $1 "
                       "AND token_hash IS DISTINCT FROM $2",
                       "iT", id, change->keep_session);
    if (rc == 0 && (change->state == KF_AGENT_STATE_DISABLE || change->password_hash != NULL))
        op->result.count = ended;
    if (rc == 0 && change->set_capacity)
        rc = kf_pg_run(c, NULL, "UPDATE agents SET capacity = $2 WHERE id = $1", "ii", id,
                       change->capacity);
    if (rc == 0 && change->state == KF_AGENT_STATE_DISABLE)
        rc = release_conversations(c, op, id);
    if (rc == 0)
        rc = read_back_agent(c, op, id);
    return rc;
}

static int apply_claim(PGconn *c, op_t *op)
{
    int64_t conversation_id = op->args.assign.conversation_id;
    int64_t agent_id = op->args.assign.agent_id;
    int rc = check_agent(c, op, agent_id, NULL);
    if (rc != 0)
        return rc;
    int64_t changed = 0;
    rc = kf_pg_run(c, &changed,
                   "UPDATE conversations SET assignee_id = $2 WHERE id = $1 "
                   "AND status != 'resolved' AND (assignee_id IS NULL OR assignee_id = $2)",
                   "ii", conversation_id, agent_id);
    if (rc != 0 || changed > 0)
        return rc;
    rc = kf_pg_one(c, &op->result.id,
                   "SELECT COALESCE(assignee_id, 0) FROM conversations WHERE id = $1", "i",
                   conversation_id);
    return rc == 0 ? KF_ECONFLICT : rc;
}

static int apply_assign(PGconn *c, op_t *op)
{
    const kf_conversation_assign_t *t = &op->args.transfer;
    int rc = t->set_agent && t->agent_id != 0 ? check_agent(c, op, t->agent_id, NULL) : 0;
    if (rc == 0 && t->set_team && t->team_id != 0) {
        int64_t exists = 0;
        rc = kf_pg_one(c, &exists, "SELECT 1 FROM teams WHERE id = $1", "i", t->team_id);
        if (rc == KF_ENOTFOUND) {
            op->result.team_missing = true;
            rc = KF_EINVAL;
        }
    }
    const char *author_name = "";
    int64_t visitor_id = 0;
    if (rc == 0 && t->note != NULL)
        rc = check_agent(c, op, t->by_agent_id, &author_name);
    if (rc == 0 && t->note != NULL)
        rc = kf_pg_one(c, &visitor_id, "SELECT visitor_id FROM conversations WHERE id = $1", "i",
                       t->conversation_id);
    if (rc != 0)
        return rc;
    int64_t changed = 0;
    rc = kf_pg_run(c, &changed,
                   "UPDATE conversations SET "
                   "assignee_id = CASE WHEN $3::int != 0 THEN $2 ELSE assignee_id END, "
                   "team_id = CASE WHEN $5::int != 0 THEN $4 ELSE team_id END WHERE id = $1",
                   "iIiIi", t->conversation_id, t->agent_id, (int64_t)t->set_agent, t->team_id,
                   (int64_t)t->set_team);
    rc = changed_one(rc, &changed);
    if (rc != 0 || t->note == NULL)
        return rc;
    kf_message_new_t m = {.conversation_id = t->conversation_id,
                          .sender = KF_SENDER_AGENT,
                          .agent_id = t->by_agent_id,
                          .body = t->note,
                          .now = t->now,
                          .is_private = true};
    int64_t id = 0;
    rc = insert_message(c, &m, t->conversation_id, 0, 0, &id);
    if (rc != 0)
        return rc;
    op->message = (kf_message_t){
        .id = id,
        .conversation_id = t->conversation_id,
        .visitor_id = visitor_id,
        .sender = KF_SENDER_AGENT,
        .agent_id = m.agent_id,
        .agent_name = author_name,
        .body = t->note,
        .created_at = m.now,
        .is_private = true,
        .attachment_name = "",
        .attachment_type = "",
    };
    op->result.message = &op->message;
    return 0;
}

static int apply_autoassign(PGconn *c, op_t *op)
{
    int64_t changed = 0;
    int rc =
        kf_pg_run(c, &changed,
                  "UPDATE conversations SET assignee_id = $4 WHERE id = $1 AND status = 'open' "
                  "AND team_id = $2 AND assignee_id IS NOT DISTINCT FROM $3 "
                  "AND EXISTS (SELECT 1 FROM team_members WHERE team_id = $2 AND agent_id = $4) "
                  "AND EXISTS (SELECT 1 FROM agents a WHERE a.id = $4 AND a.disabled_at IS NULL "
                  "  AND (a.capacity = 0 OR (SELECT count(*) FROM conversations x "
                  "    WHERE x.assignee_id = $4 AND x.status != 'resolved') < a.capacity))",
                  "iiIi", op->args.autoassign.conversation_id, op->args.autoassign.team_id,
                  op->args.autoassign.from_agent_id, op->args.autoassign.agent_id);
    return rc == 0 && changed == 0 ? KF_ECONFLICT : rc;
}

static int apply_wake(PGconn *c, op_t *op)
{
    int64_t conversation_id = op->args.wake.conversation_id;
    int64_t changed = 0;
    int rc = kf_pg_run(c, &changed,
                       "UPDATE conversations SET status = 'open', snoozed_until = NULL "
                       "WHERE id = $1 AND status = 'snoozed' AND snoozed_until <= $2",
                       "ii", conversation_id, op->args.wake.now);
    if (rc != 0 || changed > 0)
        return rc;
    int64_t exists = 0;
    rc = kf_pg_one(c, &exists, "SELECT 1 FROM conversations WHERE id = $1", "i", conversation_id);
    return rc == 0 ? KF_ECONFLICT : rc;
}

static int apply_rate(PGconn *c, op_t *op)
{
    int64_t conversation_id = 0;
    int rc = kf_pg_one(c, &conversation_id,
                       "SELECT id FROM conversations WHERE visitor_id = $1 "
                       "ORDER BY id DESC LIMIT 1",
                       "i", op->args.rate.visitor_id);
    if (rc != 0)
        return rc;
    int64_t changed = 0;
    rc = kf_pg_run(c, &changed,
                   "UPDATE conversations SET rating = $2, rating_comment = $3, rated_at = $4, "
                   "rating_agent_id = resolved_by WHERE id = $1 AND status = 'resolved'",
                   "itti", conversation_id, op->args.rate.rating, op->args.rate.comment,
                   op->args.rate.now);
    if (rc != 0)
        return rc;
    op->result.id = conversation_id;
    return changed > 0 ? 0 : KF_ECONFLICT;
}

/* Raises a read mark, never lowering it and never past the conversation's newest message. */
#define MARK_READ(column)                                                                          \
    "UPDATE conversations SET " column " = GREATEST(" column ", LEAST($2, COALESCE("               \
    "(SELECT id FROM messages WHERE conversation_id = $1 ORDER BY id DESC LIMIT 1), 0))) "         \
    "WHERE id = $1"

bool kf_pg_chat_apply(PGconn *c, op_t *op, int *rc)
{
    int64_t changed = 0;
    switch (op->kind) {
    case OP_SETTING_SET:
        *rc = kf_pg_run(c, NULL,
                        "INSERT INTO settings (key, value) VALUES ($1, $2) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        "tt", op->args.setting.key, op->args.setting.value);
        return true;
    case OP_AGENT_CREATE:
        *rc = kf_pg_one(c, &op->result.id,
                        "INSERT INTO agents (email, name, role, password_hash, created_at) "
                        "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                        "tttti", op->args.agent.email, op->args.agent.name, op->args.agent.role,
                        op->args.agent.password_hash, op->args.agent.now);
        return true;
    case OP_SESSION_DELETE:
        *rc = changed_one(kf_pg_run(c, &changed, "DELETE FROM sessions WHERE token_hash = $1", "t",
                                    op->args.token_hash),
                          &changed);
        return true;
    case OP_SET_STATUS:
        *rc = changed_one(
            kf_pg_run(c, &changed,
                      "UPDATE conversations SET status = $2, snoozed_until = $3, "
                      "resolved_at = CASE WHEN $2 != 'resolved' THEN NULL "
                      "  WHEN status = 'resolved' THEN resolved_at ELSE $4 END, "
                      "resolved_by = CASE WHEN $2 != 'resolved' THEN NULL "
                      "  WHEN status = 'resolved' THEN resolved_by ELSE assignee_id END "
                      "WHERE id = $1",
                      "itIi", op->args.status.conversation_id, op->args.status.status,
                      op->args.status.snoozed_until, op->args.status.now),
            &changed);
        return true;
    case OP_MARK_READ:
        *rc = changed_one(kf_pg_run(c, &changed,
                                    op->args.mark.reader == KF_SENDER_AGENT
                                        ? MARK_READ("agent_read_up_to")
                                        : MARK_READ("visitor_read_up_to"),
                                    "ii", op->args.mark.conversation_id, op->args.mark.up_to),
                          &changed);
        return true;
    case OP_AGENT_UPDATE: *rc = apply_agent_update(c, op); return true;
    case OP_VISITOR_CREATE: *rc = apply_visitor_create(c, op); return true;
    case OP_SESSION_CREATE: *rc = apply_session_create(c, op); return true;
    case OP_MESSAGE_ADD: *rc = apply_message(c, op); return true;
    case OP_CLAIM: *rc = apply_claim(c, op); return true;
    case OP_ASSIGN: *rc = apply_assign(c, op); return true;
    case OP_AUTOASSIGN: *rc = apply_autoassign(c, op); return true;
    case OP_WAKE: *rc = apply_wake(c, op); return true;
    case OP_RATE: *rc = apply_rate(c, op); return true;
    default: return false;
    }
}
