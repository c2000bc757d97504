/* sqlite_writer.c: the SQLite backend's writes: every one is queued by the owner thread and
 * applied by the writer thread, which takes everything queued so far as one batch: one
 * transaction, one sync (group commit). While it commits the next batch queues, so the sync rate
 * bounds the batches, not the writes. Finished writes go back to the owner thread, in order,
 * through complete(); batches commit one after another, so message ids commit in order. */
#include "store/sqlite_internal.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/metrics.h"
#include "store/blobs.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest idempotency key, in bytes. */
#define MAX_KEY_BYTES 255

/* ---- queueing (the owner thread) ---- */

/* Every handle's writes go to the root's one queue (attach): one writer, one batch, one commit
 * for every loop. */
static int queue_write(sqlite_store_t *s, op_t *op)
{
    if (s->base.queue != NULL)
        return s->base.queue(&s->base, op); /* another backend's store (kf_store_t.queue) */
    sqlite_store_t *root = kf_sqlite_root(s);
    op->origin = s;
    pthread_mutex_lock(&root->queue_lock);
    kf_sqlite_list_append(&root->queued, op, op);
    s->in_flight++;
    pthread_cond_signal(&root->queue_wake);
    pthread_mutex_unlock(&root->queue_lock);
    return 0;
}

int kf_sqlite_queue_write(sqlite_store_t *s, op_t *op)
{
    return queue_write(s, op);
}

int kf_sqlite_setting_set(kf_store_t *store, const char *key, const char *value,
                          kf_store_done_cb done, void *ctx)
{
    /* The schema version belongs to the migrations; a caller overwriting it would make the next
     * open skip or repeat them. */
    if (key == NULL || strcmp(key, KF_SQLITE_SCHEMA_VERSION_KEY) == 0 || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_SETTING_SET, done, ctx);
    op->args.setting.key = kf_sqlite_op_keep(op, key);
    op->args.setting.value = kf_sqlite_op_keep(op, value);
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_agent_create(kf_store_t *store, const char *email, const char *name, const char *role,
                           const char *password_hash, int64_t now, kf_store_done_cb done, void *ctx)
{
    if (email == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_AGENT_CREATE, done, ctx);
    op->args.agent.email = kf_sqlite_op_keep(op, email);
    op->args.agent.name = kf_sqlite_op_keep(op, name);
    op->args.agent.role = kf_sqlite_op_keep(op, role);
    op->args.agent.password_hash = kf_sqlite_op_keep(op, password_hash);
    op->args.agent.now = now;
    return queue_write(kf_sqlite_from_base(store), op);
}

/* True when change changes something, and only as agent_update allows: a known role, a state
 * of the enum, a time to disable at. */
static bool valid_change(const kf_agent_change_t *change)
{
    const char *role = change->role;
    bool role_ok = role == NULL || strcmp(role, "admin") == 0 || strcmp(role, "agent") == 0;
    bool state_ok = change->state == KF_AGENT_STATE_KEEP ||
                    change->state == KF_AGENT_STATE_ENABLE ||
                    (change->state == KF_AGENT_STATE_DISABLE && change->now > 0);
    bool something = change->name != NULL || role != NULL || change->state != KF_AGENT_STATE_KEEP ||
                     change->password_hash != NULL || change->set_capacity;
    bool capacity_ok = !change->set_capacity || change->capacity >= 0;
    return role_ok && state_ok && something && capacity_ok;
}

int kf_sqlite_agent_update(kf_store_t *store, int64_t id, const kf_agent_change_t *change,
                           kf_store_done_cb done, void *ctx)
{
    if (change == NULL || !valid_change(change) || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_AGENT_UPDATE, done, ctx);
    op->args.update.id = id;
    op->args.update.change = *change;
    if (change->name != NULL)
        op->args.update.change.name = kf_sqlite_op_keep(op, change->name);
    if (change->role != NULL)
        op->args.update.change.role = kf_sqlite_op_keep(op, change->role);
    if (change->password_hash != NULL)
        op->args.update.change.password_hash = kf_sqlite_op_keep(op, change->password_hash);
    if (change->keep_session != NULL)
        op->args.update.change.keep_session = kf_sqlite_op_keep(op, change->keep_session);
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_session_create(kf_store_t *store, const char *token_hash, int64_t agent_id,
                             const char *csrf, int64_t now, int64_t expires_at,
                             kf_store_done_cb done, void *ctx)
{
    if (token_hash == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_SESSION_CREATE, done, ctx);
    op->args.session.token_hash = kf_sqlite_op_keep(op, token_hash);
    op->args.session.csrf = kf_sqlite_op_keep(op, csrf);
    op->args.session.agent_id = agent_id;
    op->args.session.now = now;
    op->args.session.expires_at = expires_at;
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_session_delete(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                             void *ctx)
{
    if (token_hash == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_SESSION_DELETE, done, ctx);
    op->args.token_hash = kf_sqlite_op_keep(op, token_hash);
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_visitor_create(kf_store_t *store, const char *token_hash, const char *name,
                             int64_t now, kf_store_done_cb done, void *ctx)
{
    if (token_hash == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_VISITOR_CREATE, done, ctx);
    op->args.visitor.token_hash = kf_sqlite_op_keep(op, token_hash);
    op->args.visitor.name = kf_sqlite_op_keep(op, name);
    op->args.visitor.now = now;
    return queue_write(kf_sqlite_from_base(store), op);
}

/* True for a status and snooze time conversation_set_status takes: a snooze ends after now, and
 * only a snooze has an end. */
static bool valid_status(const char *status, int64_t snoozed_until, int64_t now)
{
    if (status == NULL)
        return false;
    if (strcmp(status, "snoozed") == 0)
        return snoozed_until > now;
    return snoozed_until == 0 && (strcmp(status, "open") == 0 || strcmp(status, "pending") == 0 ||
                                  strcmp(status, "resolved") == 0);
}

/* updated_at is left alone: it is the time of the last message, so that resolving or reopening
 * does not reorder the agents' list. */
int kf_sqlite_conversation_set_status(kf_store_t *store, int64_t conversation_id,
                                      const char *status, int64_t snoozed_until, int64_t now,
                                      kf_store_done_cb done, void *ctx)
{
    if (!valid_status(status, snoozed_until, now) || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_SET_STATUS, done, ctx);
    op->args.status.conversation_id = conversation_id;
    op->args.status.status = kf_sqlite_op_keep(op, status);
    op->args.status.snoozed_until = snoozed_until;
    op->args.status.now = now;
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_conversation_claim(kf_store_t *store, int64_t conversation_id, int64_t agent_id,
                                 kf_store_done_cb done, void *ctx)
{
    if (done == NULL || agent_id <= 0)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_CLAIM, done, ctx);
    op->args.assign.conversation_id = conversation_id;
    op->args.assign.agent_id = agent_id;
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_conversation_assign(kf_store_t *store, const kf_conversation_assign_t *assign,
                                  kf_store_done_cb done, void *ctx)
{
    if (done == NULL || assign == NULL || (!assign->set_agent && !assign->set_team) ||
        assign->agent_id < 0 || assign->team_id < 0)
        return KF_EINVAL;
    if (assign->note != NULL && (assign->note[0] == '\0' || assign->by_agent_id <= 0))
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_ASSIGN, done, ctx);
    op->args.transfer = *assign;
    if (assign->note != NULL)
        op->args.transfer.note = kf_sqlite_op_keep(op, assign->note);
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_conversation_autoassign(kf_store_t *store, int64_t conversation_id, int64_t team_id,
                                      int64_t from_agent_id, int64_t agent_id,
                                      kf_store_done_cb done, void *ctx)
{
    if (done == NULL || conversation_id <= 0 || team_id <= 0 || from_agent_id < 0 ||
        agent_id <= 0 || agent_id == from_agent_id)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_AUTOASSIGN, done, ctx);
    op->args.autoassign.conversation_id = conversation_id;
    op->args.autoassign.team_id = team_id;
    op->args.autoassign.from_agent_id = from_agent_id;
    op->args.autoassign.agent_id = agent_id;
    return queue_write(kf_sqlite_from_base(store), op);
}

/* An automatic assignment mode team_create and team_update take (NULL: as it is). */
static bool valid_auto_assign(const char *mode)
{
    return mode == NULL || strcmp(mode, "off") == 0 || strcmp(mode, "round_robin") == 0 ||
           strcmp(mode, "least_busy") == 0;
}

/* Queues a team write, its strings copied. */
static int queue_team(kf_store_t *store, op_kind_t kind, int64_t id, const kf_team_change_t *team,
                      int64_t now, kf_store_done_cb done, void *ctx)
{
    op_t *op = kf_sqlite_op_new(kind, done, ctx);
    op->args.team.id = id;
    op->args.team.change = *team;
    op->args.team.now = now;
    if (team->name != NULL)
        op->args.team.change.name = kf_sqlite_op_keep(op, team->name);
    if (team->auto_assign != NULL)
        op->args.team.change.auto_assign = kf_sqlite_op_keep(op, team->auto_assign);
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_team_create(kf_store_t *store, const kf_team_change_t *team, int64_t now,
                          kf_store_done_cb done, void *ctx)
{
    if (done == NULL || team == NULL || team->name == NULL || team->name[0] == '\0' ||
        !valid_auto_assign(team->auto_assign) || team->reassign_after < -1)
        return KF_EINVAL;
    return queue_team(store, OP_TEAM_CREATE, 0, team, now, done, ctx);
}

int kf_sqlite_team_update(kf_store_t *store, int64_t id, const kf_team_change_t *change,
                          kf_store_done_cb done, void *ctx)
{
    if (done == NULL || change == NULL || id < 1 ||
        (change->name != NULL && change->name[0] == '\0') ||
        !valid_auto_assign(change->auto_assign) || change->reassign_after < -1 ||
        (change->name == NULL && change->auto_assign == NULL && change->reassign_after == -1))
        return KF_EINVAL;
    return queue_team(store, OP_TEAM_UPDATE, id, change, 0, done, ctx);
}

int kf_sqlite_team_set_members(kf_store_t *store, int64_t id, const int64_t *agent_ids,
                               size_t count, kf_store_done_cb done, void *ctx)
{
    if (done == NULL || id < 1 || (count > 0 && agent_ids == NULL))
        return KF_EINVAL;
    for (size_t i = 0; i < count; i++)
        if (agent_ids[i] < 1)
            return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_TEAM_SET_MEMBERS, done, ctx);
    op->args.team.id = id;
    op->ids = kf_xcalloc(count > 0 ? count : 1, sizeof *op->ids);
    if (count > 0)
        memcpy(op->ids, agent_ids, count * sizeof *op->ids);
    op->id_count = count;
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_conversation_wake(kf_store_t *store, int64_t conversation_id, int64_t now,
                                kf_store_done_cb done, void *ctx)
{
    if (done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_WAKE, done, ctx);
    op->args.wake.conversation_id = conversation_id;
    op->args.wake.now = now;
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_conversation_rate(kf_store_t *store, int64_t visitor_id, const char *rating,
                                const char *comment, int64_t now, kf_store_done_cb done, void *ctx)
{
    if (done == NULL || visitor_id < 1 || rating == NULL || comment == NULL ||
        (strcmp(rating, "good") != 0 && strcmp(rating, "bad") != 0))
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_RATE, done, ctx);
    op->args.rate.visitor_id = visitor_id;
    op->args.rate.rating = kf_sqlite_op_keep(op, rating);
    op->args.rate.comment = kf_sqlite_op_keep(op, comment);
    op->args.rate.now = now;
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_conversation_mark_read(kf_store_t *store, int64_t conversation_id, kf_sender_t reader,
                                     int64_t up_to, kf_store_done_cb done, void *ctx)
{
    if ((reader != KF_SENDER_AGENT && reader != KF_SENDER_VISITOR) || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_MARK_READ, done, ctx);
    op->args.mark.conversation_id = conversation_id;
    op->args.mark.reader = reader;
    op->args.mark.up_to = up_to;
    return queue_write(kf_sqlite_from_base(store), op);
}

/* True when the message's author is consistent: an agent's names the agent and its
 * conversation, a visitor's names no agent, and one for the visitor's own conversation names
 * the visitor; its key, if any, is 1 to MAX_KEY_BYTES bytes. */
static bool valid_message(const kf_message_new_t *m)
{
    bool author_ok =
        m->sender == KF_SENDER_AGENT
            ? m->agent_id > 0 && (m->conversation_id != 0 || (m->visitor_id > 0 && !m->is_private))
            : m->sender == KF_SENDER_VISITOR && m->agent_id == 0 &&
                  (m->conversation_id != 0 || m->visitor_id > 0);
    size_t key_len = m->idempotency_key != NULL ? strlen(m->idempotency_key) : 1;
    bool audience_ok = !m->is_private || m->sender == KF_SENDER_AGENT;
    const kf_attachment_new_t *a = m->attachment;
    bool attachment_ok =
        a == NULL || (a->bytes != NULL && a->size > 0 && a->name != NULL && a->name[0] != '\0' &&
                      strlen(a->name) <= 255 && a->type != NULL && a->type[0] != '\0' &&
                      m->idempotency_key == NULL && !m->is_private);
    return author_ok && audience_ok && attachment_ok && key_len >= 1 && key_len <= MAX_KEY_BYTES;
}

int kf_sqlite_message_add(kf_store_t *store, const kf_message_new_t *message, kf_store_done_cb done,
                          void *ctx)
{
    if (message == NULL || !valid_message(message) || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_MESSAGE_ADD, done, ctx);
    op->args.message = *message;
    op->args.message.body = kf_sqlite_op_keep(op, message->body);
    if (message->idempotency_key != NULL)
        op->args.message.idempotency_key = kf_sqlite_op_keep(op, message->idempotency_key);
    if (message->attachment != NULL) {
        const kf_attachment_new_t *a = message->attachment;
        op->blob = kf_xmalloc(a->size);
        memcpy(op->blob, a->bytes, a->size);
        op->blob_len = a->size;
        op->attachment = (kf_attachment_new_t){.name = kf_sqlite_op_keep(op, a->name),
                                               .type = kf_sqlite_op_keep(op, a->type),
                                               .bytes = op->blob,
                                               .size = a->size};
        op->args.message.attachment = &op->attachment;
    }
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_canned_create(kf_store_t *store, int64_t agent_id, bool team, const char *shortcut,
                            const char *body, int64_t now, kf_store_done_cb done, void *ctx)
{
    if (shortcut == NULL || shortcut[0] == '\0' || body == NULL || body[0] == '\0' || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_CANNED_CREATE, done, ctx);
    op->args.canned.agent_id = agent_id;
    op->args.canned.team = team;
    op->args.canned.shortcut = kf_sqlite_op_keep(op, shortcut);
    op->args.canned.body = kf_sqlite_op_keep(op, body);
    op->args.canned.now = now;
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_canned_update(kf_store_t *store, int64_t agent_id, bool admin, int64_t id,
                            const char *shortcut, const char *body, int64_t now,
                            kf_store_done_cb done, void *ctx)
{
    if ((shortcut == NULL && body == NULL) || (shortcut != NULL && shortcut[0] == '\0') ||
        (body != NULL && body[0] == '\0') || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_CANNED_UPDATE, done, ctx);
    op->args.canned.id = id;
    op->args.canned.agent_id = agent_id;
    op->args.canned.admin = admin;
    if (shortcut != NULL)
        op->args.canned.shortcut = kf_sqlite_op_keep(op, shortcut);
    if (body != NULL)
        op->args.canned.body = kf_sqlite_op_keep(op, body);
    op->args.canned.now = now;
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_canned_delete(kf_store_t *store, int64_t agent_id, bool admin, int64_t id,
                            kf_store_done_cb done, void *ctx)
{
    if (done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_CANNED_DELETE, done, ctx);
    op->args.canned.id = id;
    op->args.canned.agent_id = agent_id;
    op->args.canned.admin = admin;
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_visitor_update(kf_store_t *store, int64_t visitor_id, const char *name,
                             const char *email, kf_store_done_cb done, void *ctx)
{
    if ((name == NULL && email == NULL) || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_VISITOR_UPDATE, done, ctx);
    op->args.visitor_change.id = visitor_id;
    if (name != NULL)
        op->args.visitor_change.name = kf_sqlite_op_keep(op, name);
    if (email != NULL)
        op->args.visitor_change.email = kf_sqlite_op_keep(op, email);
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_visitor_identify(kf_store_t *store, const kf_visitor_identity_t *identity,
                               kf_store_done_cb done, void *ctx)
{
    if (identity == NULL || done == NULL || identity->user_id == NULL ||
        identity->user_id[0] == '\0' || identity->email == NULL || identity->name == NULL ||
        identity->token_hash == NULL || identity->token_hash[0] == '\0' ||
        identity->nonce == NULL || identity->nonce[0] == '\0')
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_VISITOR_IDENTIFY, done, ctx);
    kf_visitor_identity_t *copy = &op->args.identity;
    *copy = *identity;
    copy->user_id = kf_sqlite_op_keep(op, identity->user_id);
    copy->email = kf_sqlite_op_keep(op, identity->email);
    copy->name = kf_sqlite_op_keep(op, identity->name);
    copy->token_hash = kf_sqlite_op_keep(op, identity->token_hash);
    copy->nonce = kf_sqlite_op_keep(op, identity->nonce);
    return queue_write(kf_sqlite_from_base(store), op);
}

int kf_sqlite_visitor_page_add(kf_store_t *store, const kf_visitor_page_t *page,
                               kf_store_done_cb done, void *ctx)
{
    if (page == NULL || page->url == NULL || page->title == NULL || page->referrer == NULL ||
        page->user_agent == NULL || page->language == NULL || page->timezone == NULL ||
        done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_VISITOR_PAGE_ADD, done, ctx);
    kf_visitor_page_t *copy = &op->args.page_new;
    *copy = *page;
    copy->url = kf_sqlite_op_keep(op, page->url);
    copy->title = kf_sqlite_op_keep(op, page->title);
    copy->referrer = kf_sqlite_op_keep(op, page->referrer);
    copy->user_agent = kf_sqlite_op_keep(op, page->user_agent);
    copy->language = kf_sqlite_op_keep(op, page->language);
    copy->timezone = kf_sqlite_op_keep(op, page->timezone);
    return queue_write(kf_sqlite_from_base(store), op);
}

/* ---- applying (the writer thread) ----
 *
 * A failed write must not take the rest of its batch with it, nor leave half of itself behind.
 * Each write does its checks (reads) first, and SQLite undoes a failed statement by itself, so a
 * failure before a write's first change, or in its only changing statement, leaves the batch as
 * it was. Only a failure after a write's first change (in practice an I/O error or a full disk)
 * would leave half a write: then the whole batch is rolled back and every write in it fails.
 * That spares a savepoint per write. Each apply_ function says in *half that it failed after a
 * change. */

/* Runs st once binding it went well (bind_rc 0); else resets it and returns bind_rc. */
static int run_bound(sqlite3_stmt *st, int bind_rc)
{
    if (bind_rc != 0) {
        kf_sqlite_finish(st);
        return bind_rc;
    }
    return kf_sqlite_run(st);
}

/* run_bound for a statement that changes one row: KF_ENOTFOUND when it matched none. */
static int change_one(conn_t *c, sqlite3_stmt *st, int bind_rc)
{
    int rc = run_bound(st, bind_rc);
    if (rc == 0 && sqlite3_changes(c->db) == 0)
        rc = KF_ENOTFOUND;
    return rc;
}

/* run_bound for an insert of one row; *id_out gets its rowid. */
static int insert_one(conn_t *c, sqlite3_stmt *st, int bind_rc, int64_t *id_out)
{
    int rc = run_bound(st, bind_rc);
    if (rc == 0)
        *id_out = sqlite3_last_insert_rowid(c->db);
    return rc;
}

/* Looks up one int64 column of a bound statement's first row into *out (KF_ENOTFOUND when
 * there is none). */
static int lookup_int64(sqlite3_stmt *st, int bind_rc, int64_t *out)
{
    int rc = bind_rc != 0 ? bind_rc : kf_sqlite_step_row(st);
    if (rc == 0)
        *out = sqlite3_column_int64(st, 0);
    kf_sqlite_finish(st);
    return rc;
}

/* The simple writes: one changing statement, bound from the op's arguments. */
static int apply_simple(conn_t *c, op_t *op)
{
    sqlite3_stmt *st;
    switch (op->kind) {
    case OP_SETTING_SET:
        st = kf_sqlite_statement(c, STMT_SETTING_SET);
        return run_bound(st,
                         kf_sqlite_bind(st, "tt", op->args.setting.key, op->args.setting.value));
    case OP_AGENT_CREATE:
        st = kf_sqlite_statement(c, STMT_AGENT_CREATE);
        return insert_one(c, st,
                          kf_sqlite_bind(st, "tttti", op->args.agent.email, op->args.agent.name,
                                         op->args.agent.role, op->args.agent.password_hash,
                                         op->args.agent.now),
                          &op->result.id);
    case OP_SESSION_DELETE:
        st = kf_sqlite_statement(c, STMT_SESSION_DELETE);
        return change_one(c, st, kf_sqlite_bind(st, "t", op->args.token_hash));
    case OP_SET_STATUS:
        st = kf_sqlite_statement(c, STMT_CONVERSATION_SET_STATUS);
        return change_one(c, st,
                          kf_sqlite_bind(st, "itIi", op->args.status.conversation_id,
                                         op->args.status.status, op->args.status.snoozed_until,
                                         op->args.status.now));
    default: /* OP_MARK_READ (see KF_SQLITE_MARK_READ) */
        st = kf_sqlite_statement(c, op->args.mark.reader == KF_SENDER_AGENT
                                        ? STMT_CONVERSATION_MARK_READ_AGENTS
                                        : STMT_CONVERSATION_MARK_READ_VISITOR);
        return change_one(
            c, st, kf_sqlite_bind(st, "ii", op->args.mark.conversation_id, op->args.mark.up_to));
    }
}

/* Whether agent_id may still write: 0, KF_EFORBIDDEN for a disabled agent, KF_EINVAL for none
 * (a caller's bug, not a missing row it asked about). Its name goes into *name (kept in op) unless
 * name is NULL. Checked inside the write's transaction, so a write queued after the agent's
 * disabling is refused, however long ago its request was let in. */
static int check_agent(conn_t *c, op_t *op, int64_t agent_id, const char **name)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_AGENT_STANDING);
    int rc = kf_sqlite_bind(st, "i", agent_id);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    if (rc == 0 && sqlite3_column_int64(st, 1) != 0)
        rc = KF_EFORBIDDEN;
    else if (rc == 0 && name != NULL)
        *name = kf_sqlite_op_keep(op, kf_sqlite_column_text(st, 0));
    kf_sqlite_finish(st);
    return rc == KF_ENOTFOUND ? KF_EINVAL : rc;
}

/* Visitor id's words into name_words, once their text is in visitor_search. */
static int add_name_words(conn_t *c, int64_t id)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_NAME_WORDS_OF_VISITOR);
    return run_bound(st, kf_sqlite_bind(st, "i", id));
}

/* Visitor id's name and e-mail into the search index from their row (the caller deleted the old
 * index row before changing it), and their words into name_words: an update's and an
 * identification's, one step so that the two lists cannot drift apart. */
static int reindex_visitor(conn_t *c, int64_t id)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_VISITOR_SEARCH_REINDEX);
    int rc = run_bound(st, kf_sqlite_bind(st, "i", id));
    return rc == 0 ? add_name_words(c, id) : rc;
}

/* The visitor, and their name in the search index (a nameless visitor has no row there). */
static int apply_visitor_create(conn_t *c, op_t *op, bool *half)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_VISITOR_CREATE);
    int rc = insert_one(c, st,
                        kf_sqlite_bind(st, "tti", op->args.visitor.token_hash,
                                       op->args.visitor.name, op->args.visitor.now),
                        &op->result.id);
    if (rc != 0 || op->args.visitor.name[0] == '\0')
        return rc;
    sqlite3_stmt *index = kf_sqlite_statement(c, STMT_VISITOR_SEARCH_INSERT);
    rc = run_bound(index, kf_sqlite_bind(index, "it", op->result.id, op->args.visitor.name));
    if (rc == 0)
        rc = add_name_words(c, op->result.id);
    *half = rc != 0;
    return rc;
}

/* The agent's check, the insert, then the purge of expired sessions: nothing else ever deletes
 * them, logins are rare, and the expiry index makes it a short range delete. A login whose
 * password was checked while its agent was being disabled gets no session. */
static int apply_session_create(conn_t *c, op_t *op, bool *half)
{
    int rc = check_agent(c, op, op->args.session.agent_id, NULL);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_SESSION_CREATE);
    rc = run_bound(st, kf_sqlite_bind(st, "titii", op->args.session.token_hash,
                                      op->args.session.agent_id, op->args.session.csrf,
                                      op->args.session.now, op->args.session.expires_at));
    if (rc != 0)
        return rc;
    sqlite3_stmt *purge = kf_sqlite_statement(c, STMT_SESSION_PURGE);
    rc = run_bound(purge, kf_sqlite_bind(purge, "i", op->args.session.now));
    *half = rc != 0;
    return rc;
}

/* The visitor's conversation, created when there is none (*created says so): a visitor has one
 * thread, whatever its status (a resolved one is reopened by their next message).
 * KF_ENOTFOUND for an unknown visitor. */
static int open_conversation(conn_t *c, int64_t visitor_id, int64_t now, int64_t *id_out,
                             bool *created)
{
    sqlite3_stmt *find = kf_sqlite_statement(c, STMT_CONVERSATION_OF_VISITOR);
    int rc = lookup_int64(find, kf_sqlite_bind(find, "i", visitor_id), id_out);
    if (rc != KF_ENOTFOUND)
        return rc;
    int64_t exists = 0;
    sqlite3_stmt *visitor = kf_sqlite_statement(c, STMT_VISITOR_EXISTS);
    rc = lookup_int64(visitor, kf_sqlite_bind(visitor, "i", visitor_id), &exists);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CONVERSATION_CREATE);
    rc = insert_one(c, st, kf_sqlite_bind(st, "ii", visitor_id, now), id_out);
    *created = rc == 0;
    return rc;
}

/* The sender's earlier message with this message's key: 0 with *found and the stored message in
 * the op's result (duplicate), KF_ECONFLICT when the key went with another message (another body,
 * or for an agent another conversation), 0 without *found when the key is new. owner is the
 * sender's id. */
static int find_keyed(conn_t *c, op_t *op, int64_t owner, bool *found)
{
    const kf_message_new_t *m = &op->args.message;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_MESSAGE_BY_KEY);
    int rc = kf_sqlite_bind(st, "iit", (int64_t)m->sender, owner, m->idempotency_key);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    *found = rc == 0;
    if (rc == 0) {
        kf_message_t stored;
        kf_sqlite_read_message(st, 0, &stored);
        if (strcmp(stored.body, m->body) != 0 || stored.is_private != m->is_private ||
            (m->conversation_id != 0 && stored.conversation_id != m->conversation_id)) {
            rc = KF_ECONFLICT;
        } else {
            op->message = stored;
            op->message.agent_name = kf_sqlite_op_keep(op, stored.agent_name);
            op->message.body = m->body; /* the same text, in memory the op owns */
            /* A keyed message carries no file (message_add refuses both at once). */
            op->message.attachment_id = 0;
            op->message.attachment_name = "";
            op->message.attachment_type = "";
            op->message.attachment_size = 0;
            op->result.duplicate = true;
            op->result.message = &op->message;
        }
    }
    kf_sqlite_finish(st);
    return rc == KF_ENOTFOUND ? 0 : rc;
}

/* Inserts the message, stamps its conversation with it (KF_SQLITE_MESSAGE_STAMP) and queues it
 * for the search index: the first of the three changes fails alone; *half when a later one
 * fails. owner is the key's owner (unused without a key). */
static int insert_message(conn_t *c, const kf_message_new_t *m, int64_t conversation_id,
                          int64_t owner, int64_t attachment_id, int64_t *id_out, bool *half)
{
    bool keyed = m->idempotency_key != NULL;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_MESSAGE_INSERT);
    int rc = insert_one(c, st,
                        kf_sqlite_bind(st, "iiItiTIiI", conversation_id, (int64_t)m->sender,
                                       m->agent_id, m->body, m->now, m->idempotency_key,
                                       keyed ? owner : 0, (int64_t)m->is_private, attachment_id),
                        id_out);
    if (rc != 0)
        return rc;
    sqlite3_stmt *stamp = kf_sqlite_statement(c, STMT_MESSAGE_STAMP);
    rc = run_bound(stamp, kf_sqlite_bind(stamp, "iiiiiI", conversation_id, *id_out, m->now,
                                         (int64_t)m->sender, (int64_t)m->is_private, m->agent_id));
    sqlite3_stmt *pending = kf_sqlite_statement(c, STMT_SEARCH_PENDING_ADD);
    if (rc == 0)
        rc = run_bound(pending, kf_sqlite_bind(pending, "i", *id_out));
    if (rc == 0)
        c->search_added++;
    *half = rc != 0;
    return rc;
}

void kf_sqlite_answer_message(op_t *op, const kf_message_new_t *m, int64_t id,
                              int64_t conversation_id, int64_t visitor_id, const char *agent_name,
                              int64_t attachment_id)
{
    op->message = (kf_message_t){
        .id = id,
        .conversation_id = conversation_id,
        .visitor_id = visitor_id,
        .sender = m->sender,
        .agent_id = m->agent_id,
        .agent_name = agent_name,
        .body = m->body,
        .created_at = m->now,
        .is_private = m->is_private,
        .attachment_id = attachment_id,
        .attachment_name = m->attachment != NULL ? m->attachment->name : "",
        .attachment_type = m->attachment != NULL ? m->attachment->type : "",
        .attachment_size = m->attachment != NULL ? (int64_t)m->attachment->size : 0,
    };
    op->result.message = &op->message;
}

/* The checks first (the conversation's visitor, or the visitor's conversation; the key; the
 * agent), then at most two changes: the conversation opened or reopened, the message (whose
 * trigger moves the conversation). */
static int apply_message(conn_t *c, op_t *op, bool *half)
{
    const kf_message_new_t *m = &op->args.message;
    int64_t conversation_id = m->conversation_id;
    int64_t visitor_id = m->visitor_id;
    int rc = 0;
    if (conversation_id != 0) {
        sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CONVERSATION_VISITOR);
        rc = lookup_int64(st, kf_sqlite_bind(st, "i", conversation_id), &visitor_id);
    }
    int64_t owner = m->sender == KF_SENDER_AGENT ? m->agent_id : visitor_id;
    if (rc == 0 && m->idempotency_key != NULL) {
        bool found = false;
        rc = find_keyed(c, op, owner, &found);
        if (rc != 0 || found)
            return rc;
    }
    const char *agent_name = "";
    if (rc == 0 && m->sender == KF_SENDER_AGENT)
        rc = check_agent(c, op, m->agent_id, &agent_name);
    if (rc == 0 && conversation_id == 0)
        rc = open_conversation(c, visitor_id, m->now, &conversation_id,
                               &op->result.conversation_opened);
    /* The visitor writes again, or an agent invites them (a message addressed by visitor, not
     * conversation): a resolved or snoozed conversation is open once more. */
    bool reopens = m->sender == KF_SENDER_VISITOR || m->conversation_id == 0;
    if (rc == 0 && reopens && !op->result.conversation_opened) {
        sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CONVERSATION_REOPEN);
        rc = run_bound(st, kf_sqlite_bind(st, "i", conversation_id));
        op->result.conversation_reopened = rc == 0 && sqlite3_changes(c->db) > 0;
    }
    /* The blob is on disk already (write_blobs); its row goes first, for the message to name. */
    int64_t attachment_id = 0;
    bool attached = false;
    if (rc == 0 && m->attachment != NULL) {
        rc = op->blob_rc;
        if (rc == 0) {
            const kf_attachment_new_t *a = m->attachment;
            sqlite3_stmt *st = kf_sqlite_statement(c, STMT_ATTACHMENT_INSERT);
            rc = insert_one(c, st,
                            kf_sqlite_bind(st, "iiIttiti", conversation_id, (int64_t)m->sender,
                                           m->agent_id, a->name, a->type, (int64_t)a->size,
                                           op->blob_name, m->now),
                            &attachment_id);
            attached = rc == 0;
        }
    }
    int64_t id = 0;
    if (rc == 0)
        rc = insert_message(c, m, conversation_id, owner, attachment_id, &id, half);
    if (rc != 0) {
        *half =
            *half || attached || op->result.conversation_opened || op->result.conversation_reopened;
        return rc;
    }
    kf_sqlite_answer_message(op, m, id, conversation_id, visitor_id, agent_name, attachment_id);
    return 0;
}

/* The agent's row as it is now, into the op's result (its strings kept in the op). */
static int read_back_agent(conn_t *c, op_t *op, int64_t id)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_AGENT_BY_ID);
    int rc = kf_sqlite_bind(st, "i", id);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    if (rc == 0) {
        kf_agent_t *agent = &op->agent;
        kf_sqlite_read_agent(st, agent);
        agent->email = kf_sqlite_op_keep(op, agent->email);
        agent->name = kf_sqlite_op_keep(op, agent->name);
        agent->role = kf_sqlite_op_keep(op, agent->role);
        agent->password_hash = kf_sqlite_op_keep(op, agent->password_hash);
        op->result.agent = agent;
    }
    kf_sqlite_finish(st);
    return rc;
}

/* Whether applying change to agent id would leave the desk without an enabled admin: 0, or
 * KF_ECONFLICT, or KF_ENOTFOUND for an unknown agent. */
static int check_admins_left(conn_t *c, int64_t id, const kf_agent_change_t *change)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_AGENT_BY_ID);
    int rc = kf_sqlite_bind(st, "i", id);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    bool enabled_admin = false;
    if (rc == 0) {
        kf_agent_t agent;
        kf_sqlite_read_agent(st, &agent);
        enabled_admin = strcmp(agent.role, "admin") == 0 && agent.disabled_at == 0;
    }
    kf_sqlite_finish(st);
    bool demoted = change->role != NULL && strcmp(change->role, "admin") != 0;
    if (rc != 0 || !enabled_admin || (change->state != KF_AGENT_STATE_DISABLE && !demoted))
        return rc;
    int64_t others = 0;
    st = kf_sqlite_statement(c, STMT_AGENT_OTHER_ADMINS);
    rc = lookup_int64(st, kf_sqlite_bind(st, "i", id), &others);
    return rc == 0 && others == 0 ? KF_ECONFLICT : rc;
}

/* Unassigns every unresolved conversation agent id holds, their ids into the op's result. */
static int release_conversations(conn_t *c, op_t *op, int64_t id)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CONVERSATION_HELD_BY);
    int rc = kf_sqlite_bind(st, "i", id);
    size_t capacity = 0;
    while (rc == 0) {
        int code = sqlite3_step(st);
        if (code == SQLITE_DONE)
            break;
        if (code != SQLITE_ROW) {
            rc = kf_sqlite_map_error(code);
            break;
        }
        if (op->id_count == capacity) {
            capacity = capacity > 0 ? capacity * 2 : 8;
            op->ids = realloc(op->ids, capacity * sizeof *op->ids);
            if (op->ids == NULL)
                abort();
        }
        op->ids[op->id_count++] = sqlite3_column_int64(st, 0);
    }
    kf_sqlite_finish(st);
    if (rc != 0)
        return rc;
    st = kf_sqlite_statement(c, STMT_CONVERSATION_RELEASE_ALL);
    rc = run_bound(st, kf_sqlite_bind(st, "i", id));
    if (rc == 0) {
        op->result.released = op->ids;
        op->result.released_count = op->id_count;
    }
    return rc;
}

/* The statement's CASE reads the state as a number. */
_Static_assert(KF_AGENT_STATE_ENABLE == 1 && KF_AGENT_STATE_DISABLE == 2,
               "STMT_AGENT_UPDATE's numbering of kf_agent_state_t");

/* The checks first (the agent exists; an admin stays), then the sessions (below), the change,
 * and the row as it is after. A disabled agent's sessions are kept, not deleted: a lookup on any
 * loop or node then finds the session and its disabled agent and answers 401 `disabled`, where a
 * deleted one could only say `unauthorized` wherever it was not cached. They go when the agent is
 * enabled again (counted before the change, which is what tells either state from the one
 * before). */
static int apply_agent_update(conn_t *c, op_t *op, bool *half)
{
    int64_t id = op->args.update.id;
    const kf_agent_change_t *change = &op->args.update.change;
    int rc = check_admins_left(c, id, change);
    if (rc != 0)
        return rc;
    int64_t ended = 0;
    sqlite3_stmt *st;
    if (change->state == KF_AGENT_STATE_DISABLE) {
        st = kf_sqlite_statement(c, STMT_SESSION_COUNT_OF_ENABLED_AGENT);
        rc = lookup_int64(st, kf_sqlite_bind(st, "ii", id, change->now), &ended);
    } else if (change->state == KF_AGENT_STATE_ENABLE) {
        st = kf_sqlite_statement(c, STMT_SESSION_DELETE_OF_DISABLED_AGENT);
        rc = run_bound(st, kf_sqlite_bind(st, "i", id));
    }
    if (rc != 0)
        return rc;
    st = kf_sqlite_statement(c, STMT_AGENT_UPDATE);
    rc = run_bound(st, kf_sqlite_bind(st, "iTTiiT", id, change->name, change->role,
                                      (int64_t)change->state, change->now, change->password_hash));
    if (rc != 0) {
        *half = change->state == KF_AGENT_STATE_ENABLE; /* its sessions are gone already */
        return rc;
    }
    if (change->password_hash != NULL && change->state != KF_AGENT_STATE_DISABLE) {
        /* Whoever held a session on the old password holds nothing now, but the one who set it.
         * Not with a disabling: its sessions are refused already, and say why until an enabling
         * deletes them. */
        st = kf_sqlite_statement(c, STMT_SESSION_DELETE_OTHERS_OF_AGENT);
        rc = run_bound(st, kf_sqlite_bind(st, "iT", id, change->keep_session));
        if (rc == 0)
            ended = sqlite3_changes(c->db);
    }
    if (rc == 0 && (change->state == KF_AGENT_STATE_DISABLE || change->password_hash != NULL))
        op->result.count = ended;
    if (rc == 0 && change->set_capacity) {
        st = kf_sqlite_statement(c, STMT_AGENT_SET_CAPACITY);
        rc = run_bound(st, kf_sqlite_bind(st, "ii", id, change->capacity));
    }
    if (rc == 0 && change->state == KF_AGENT_STATE_DISABLE)
        rc = release_conversations(c, op, id);
    if (rc == 0)
        rc = read_back_agent(c, op, id);
    *half = rc != 0;
    return rc;
}

/* A claim: the claimer may still write, then the conditional change; when it changed nothing,
 * why (KF_ENOTFOUND, or KF_ECONFLICT with the holder in the result's id). */
static int apply_claim(conn_t *c, op_t *op)
{
    int64_t conversation_id = op->args.assign.conversation_id;
    int64_t agent_id = op->args.assign.agent_id;
    int rc = check_agent(c, op, agent_id, NULL);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CONVERSATION_CLAIM);
    rc = run_bound(st, kf_sqlite_bind(st, "ii", conversation_id, agent_id));
    if (rc != 0 || sqlite3_changes(c->db) > 0)
        return rc;
    st = kf_sqlite_statement(c, STMT_CONVERSATION_HOLDER);
    rc = lookup_int64(st, kf_sqlite_bind(st, "i", conversation_id), &op->result.id);
    return rc == 0 ? KF_ECONFLICT : rc;
}

/* A transfer: to an agent who may still write (or to nobody) and/or a team that exists (or
 * none); with a note, every check first (its author, the conversation's visitor); then the
 * change, in one statement, and the note after it, whose failure takes the change with it
 * (*half). */
static int apply_assign(conn_t *c, op_t *op, bool *half)
{
    const kf_conversation_assign_t *t = &op->args.transfer;
    int rc = t->set_agent && t->agent_id != 0 ? check_agent(c, op, t->agent_id, NULL) : 0;
    if (rc == 0 && t->set_team && t->team_id != 0) {
        int64_t exists = 0;
        sqlite3_stmt *st = kf_sqlite_statement(c, STMT_TEAM_EXISTS);
        rc = lookup_int64(st, kf_sqlite_bind(st, "i", t->team_id), &exists);
        if (rc == KF_ENOTFOUND) {
            op->result.team_missing = true;
            rc = KF_EINVAL;
        }
    }
    const char *author_name = "";
    int64_t visitor_id = 0;
    if (rc == 0 && t->note != NULL)
        rc = check_agent(c, op, t->by_agent_id, &author_name);
    if (rc == 0 && t->note != NULL) {
        sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CONVERSATION_VISITOR);
        rc = lookup_int64(st, kf_sqlite_bind(st, "i", t->conversation_id), &visitor_id);
    }
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CONVERSATION_ASSIGN);
    rc = change_one(c, st,
                    kf_sqlite_bind(st, "iIiIi", t->conversation_id, t->agent_id,
                                   (int64_t)t->set_agent, t->team_id, (int64_t)t->set_team));
    if (rc != 0 || t->note == NULL)
        return rc;
    kf_message_new_t m = {.conversation_id = t->conversation_id,
                          .sender = KF_SENDER_AGENT,
                          .agent_id = t->by_agent_id,
                          .body = t->note,
                          .now = t->now,
                          .is_private = true};
    int64_t id = 0;
    rc = insert_message(c, &m, t->conversation_id, 0, 0, &id, half);
    *half = *half || rc != 0; /* the conversation has moved already */
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

/* Automatic assignment's conditional write: KF_ECONFLICT when it changed nothing (the
 * conversation is gone too: the engine just looks again). */
static int apply_autoassign(conn_t *c, op_t *op)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CONVERSATION_AUTOASSIGN);
    int rc =
        run_bound(st, kf_sqlite_bind(st, "iiIi", op->args.autoassign.conversation_id,
                                     op->args.autoassign.team_id, op->args.autoassign.from_agent_id,
                                     op->args.autoassign.agent_id));
    if (rc == 0 && sqlite3_changes(c->db) == 0)
        rc = KF_ECONFLICT;
    return rc;
}

/* The team's row as it is now, into the op's result (its strings kept in the op, its members
 * in op->ids). */
static int read_back_team(conn_t *c, op_t *op, int64_t id)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_TEAM_BY_ID);
    int rc = kf_sqlite_bind(st, "i", id);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    if (rc == 0) {
        kf_team_t *team = &op->team;
        kf_sqlite_read_team(st, team, &op->ids);
        team->name = kf_sqlite_op_keep(op, team->name);
        team->auto_assign = kf_sqlite_op_keep(op, team->auto_assign);
        op->id_count = team->member_count;
        op->result.team = team;
    }
    kf_sqlite_finish(st);
    return rc;
}

/* A new team (the name's uniqueness is the index's: KF_EEXISTS), read back. */
static int apply_team_create(conn_t *c, op_t *op, bool *half)
{
    const kf_team_change_t *t = &op->args.team.change;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_TEAM_CREATE);
    int64_t id = 0;
    int rc = insert_one(
        c, st,
        kf_sqlite_bind(st, "tTii", t->name, t->auto_assign, t->reassign_after, op->args.team.now),
        &id);
    if (rc != 0)
        return rc;
    rc = read_back_team(c, op, id);
    *half = rc != 0;
    return rc;
}

static int apply_team_update(conn_t *c, op_t *op, bool *half)
{
    const kf_team_change_t *t = &op->args.team.change;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_TEAM_UPDATE);
    int rc = change_one(
        c, st,
        kf_sqlite_bind(st, "iTTi", op->args.team.id, t->name, t->auto_assign, t->reassign_after));
    if (rc != 0)
        return rc;
    rc = read_back_team(c, op, op->args.team.id);
    *half = rc != 0;
    return rc;
}

/* The checks first (the team, each agent enabled), then the members replaced, read back. */
static int apply_team_set_members(conn_t *c, op_t *op, bool *half)
{
    int64_t id = op->args.team.id;
    int64_t exists = 0;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_TEAM_EXISTS);
    int rc = lookup_int64(st, kf_sqlite_bind(st, "i", id), &exists);
    for (size_t i = 0; rc == 0 && i < op->id_count; i++)
        rc = check_agent(c, op, op->ids[i], NULL) != 0 ? KF_EINVAL : 0;
    if (rc != 0)
        return rc;
    st = kf_sqlite_statement(c, STMT_TEAM_MEMBERS_CLEAR);
    rc = run_bound(st, kf_sqlite_bind(st, "i", id));
    for (size_t i = 0; rc == 0 && i < op->id_count; i++) {
        st = kf_sqlite_statement(c, STMT_TEAM_MEMBER_ADD);
        rc = run_bound(st, kf_sqlite_bind(st, "ii", id, op->ids[i]));
    }
    if (rc == 0)
        rc = read_back_team(c, op, id);
    *half = rc != 0;
    return rc;
}

/* A wake: the conditional change; when it changed nothing, KF_ECONFLICT for a conversation that
 * is no longer snoozed and due, KF_ENOTFOUND for an unknown one. */
static int apply_wake(conn_t *c, op_t *op)
{
    int64_t conversation_id = op->args.wake.conversation_id;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CONVERSATION_WAKE);
    int rc = run_bound(st, kf_sqlite_bind(st, "ii", conversation_id, op->args.wake.now));
    if (rc != 0 || sqlite3_changes(c->db) > 0)
        return rc;
    int64_t exists = 0;
    st = kf_sqlite_statement(c, STMT_CONVERSATION_EXISTS);
    rc = lookup_int64(st, kf_sqlite_bind(st, "i", conversation_id), &exists);
    return rc == 0 ? KF_ECONFLICT : rc;
}

/* A rating: the visitor's thread, then the conditional change; when it changed nothing, the
 * conversation is not resolved (KF_ECONFLICT). */
static int apply_rate(conn_t *c, op_t *op)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CONVERSATION_OF_VISITOR);
    int64_t conversation_id = 0;
    int rc = lookup_int64(st, kf_sqlite_bind(st, "i", op->args.rate.visitor_id), &conversation_id);
    if (rc != 0)
        return rc;
    st = kf_sqlite_statement(c, STMT_CONVERSATION_RATE);
    rc = run_bound(st, kf_sqlite_bind(st, "itti", conversation_id, op->args.rate.rating,
                                      op->args.rate.comment, op->args.rate.now));
    if (rc != 0)
        return rc;
    op->result.id = conversation_id;
    return sqlite3_changes(c->db) > 0 ? 0 : KF_ECONFLICT;
}

/* Whether shortcut is free for agent_id: different from every team reply's and agent_id's own
 * (ASCII case ignored), but the reply except_id's. 0 or KF_EEXISTS. */
static int check_shortcut_free(conn_t *c, const char *shortcut, int64_t agent_id, int64_t except_id)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CANNED_TAKEN);
    int64_t taken = 0;
    int rc = lookup_int64(st, kf_sqlite_bind(st, "tii", shortcut, agent_id, except_id), &taken);
    return rc == 0 ? KF_EEXISTS : rc == KF_ENOTFOUND ? 0 : rc;
}

/* The reply's row as it is now, into the op's result (its strings kept in the op). */
static int read_back_canned(conn_t *c, op_t *op, int64_t id)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CANNED_BY_ID);
    int rc = kf_sqlite_bind(st, "i", id);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    if (rc == 0) {
        kf_canned_t *canned = &op->canned;
        kf_sqlite_read_canned(st, canned);
        canned->shortcut = kf_sqlite_op_keep(op, canned->shortcut);
        canned->body = kf_sqlite_op_keep(op, canned->body);
        op->result.canned = canned;
    }
    kf_sqlite_finish(st);
    return rc;
}

/* Whether the op's agent may change reply id: 0, KF_ENOTFOUND for an unknown one or another
 * agent's personal one (which must look absent), KF_EFORBIDDEN for a team one without admin. */
static int check_canned_access(conn_t *c, op_t *op)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CANNED_BY_ID);
    int rc = kf_sqlite_bind(st, "i", op->args.canned.id);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    if (rc == 0) {
        int64_t owner_id = sqlite3_column_int64(st, 1);
        if (owner_id != 0 && owner_id != op->args.canned.agent_id)
            rc = KF_ENOTFOUND;
        else if (owner_id == 0 && !op->args.canned.admin)
            rc = KF_EFORBIDDEN;
    }
    kf_sqlite_finish(st);
    return rc;
}

/* A new reply: its shortcut free, then the row, read back. */
static int apply_canned_create(conn_t *c, op_t *op, bool *half)
{
    int64_t agent_id = op->args.canned.agent_id;
    int rc = check_shortcut_free(c, op->args.canned.shortcut, agent_id, 0);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CANNED_CREATE);
    int64_t id = 0;
    rc = insert_one(c, st,
                    kf_sqlite_bind(st, "Itti", op->args.canned.team ? 0 : agent_id,
                                   op->args.canned.shortcut, op->args.canned.body,
                                   op->args.canned.now),
                    &id);
    if (rc != 0)
        return rc;
    rc = read_back_canned(c, op, id);
    *half = rc != 0;
    return rc;
}

/* A change: who may make it, a new shortcut free, then the change, read back. */
static int apply_canned_update(conn_t *c, op_t *op, bool *half)
{
    int64_t id = op->args.canned.id;
    int rc = check_canned_access(c, op);
    if (rc == 0 && op->args.canned.shortcut != NULL)
        rc = check_shortcut_free(c, op->args.canned.shortcut, op->args.canned.agent_id, id);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CANNED_UPDATE);
    rc = run_bound(st, kf_sqlite_bind(st, "iTTi", id, op->args.canned.shortcut,
                                      op->args.canned.body, op->args.canned.now));
    if (rc != 0)
        return rc;
    rc = read_back_canned(c, op, id);
    *half = rc != 0;
    return rc;
}

static int apply_canned_delete(conn_t *c, op_t *op)
{
    int rc = check_canned_access(c, op);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_CANNED_DELETE);
    return change_one(c, st, kf_sqlite_bind(st, "i", op->args.canned.id));
}

/* The visitor row st has stepped to, as the op's result (its strings kept with the op). */
static void answer_visitor(op_t *op, sqlite3_stmt *st)
{
    kf_sqlite_read_visitor(st, &op->visitor);
    op->visitor.name = kf_sqlite_op_keep(op, op->visitor.name);
    op->visitor.email = kf_sqlite_op_keep(op, op->visitor.email);
    op->visitor.user_id = kf_sqlite_op_keep(op, op->visitor.user_id);
    op->result.visitor = &op->visitor;
}
/* The old text out of the search's index, the change, the new text in, the row read back. */
static int apply_visitor_update(conn_t *c, op_t *op, bool *half)
{
    int64_t id = op->args.visitor_change.id;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_VISITOR_EXISTS);
    int64_t exists = 0;
    int rc = lookup_int64(st, kf_sqlite_bind(st, "i", id), &exists);
    if (rc != 0)
        return rc;
    st = kf_sqlite_statement(c, STMT_VISITOR_SEARCH_DELETE);
    rc = run_bound(st, kf_sqlite_bind(st, "i", id));
    if (rc == 0) {
        st = kf_sqlite_statement(c, STMT_VISITOR_UPDATE);
        rc = change_one(c, st,
                        kf_sqlite_bind(st, "iTT", id, op->args.visitor_change.name,
                                       op->args.visitor_change.email));
    }
    if (rc == 0)
        rc = reindex_visitor(c, id);
    if (rc == 0) {
        st = kf_sqlite_statement(c, STMT_VISITOR_GET);
        rc = kf_sqlite_bind(st, "i", id);
        if (rc == 0)
            rc = kf_sqlite_step_row(st);
        if (rc == 0) {
            answer_visitor(op, st);
        }
        kf_sqlite_finish(st);
    }
    *half = rc != 0;
    return rc;
}

/* The nonce checked before anything is written (a replay changes nothing), then taken; then the
 * user's visitor found or created, the token added, the details set and indexed, the row read
 * back. */
static int apply_visitor_identify(conn_t *c, op_t *op, bool *half)
{
    const kf_visitor_identity_t *identity = &op->args.identity;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_IDENTITY_NONCE_SEEN);
    int64_t seen = 0;
    int rc = lookup_int64(st, kf_sqlite_bind(st, "ti", identity->nonce, identity->now), &seen);
    if (rc == 0)
        return KF_EEXISTS;
    if (rc != KF_ENOTFOUND)
        return rc;
    *half = true; /* from here on, a failure leaves a write behind */
    st = kf_sqlite_statement(c, STMT_IDENTITY_NONCE_PURGE);
    rc = run_bound(st, kf_sqlite_bind(st, "i", identity->now));
    if (rc == 0) {
        st = kf_sqlite_statement(c, STMT_IDENTITY_NONCE_INSERT);
        rc = run_bound(st, kf_sqlite_bind(st, "ti", identity->nonce, identity->nonce_expires_at));
    }
    if (rc != 0)
        return rc;
    int64_t id = 0;
    st = kf_sqlite_statement(c, STMT_VISITOR_BY_USER);
    rc = lookup_int64(st, kf_sqlite_bind(st, "t", identity->user_id), &id);
    if (rc == KF_ENOTFOUND) {
        st = kf_sqlite_statement(c, STMT_VISITOR_CREATE_USER);
        rc = insert_one(c, st,
                        kf_sqlite_bind(st, "ttitt", identity->token_hash, identity->name,
                                       identity->now, identity->email, identity->user_id),
                        &id);
    } else if (rc == 0) {
        st = kf_sqlite_statement(c, STMT_VISITOR_TOKEN_ADD);
        rc = run_bound(st, kf_sqlite_bind(st, "tii", identity->token_hash, id, identity->now));
        if (rc == 0) {
            st = kf_sqlite_statement(c, STMT_VISITOR_SEARCH_DELETE);
            rc = run_bound(st, kf_sqlite_bind(st, "i", id));
        }
        if (rc == 0) {
            st = kf_sqlite_statement(c, STMT_VISITOR_UPDATE);
            rc = change_one(c, st,
                            kf_sqlite_bind(st, "iTt", id,
                                           identity->name[0] != '\0' ? identity->name : NULL,
                                           identity->email));
        }
    }
    if (rc == 0)
        rc = reindex_visitor(c, id);
    if (rc == 0) {
        st = kf_sqlite_statement(c, STMT_VISITOR_GET);
        rc = kf_sqlite_bind(st, "i", id);
        if (rc == 0)
            rc = kf_sqlite_step_row(st);
        if (rc == 0) {
            answer_visitor(op, st);
            op->result.id = id;
        }
        kf_sqlite_finish(st);
    }
    *half = rc != 0;
    return rc;
}

/* The page, then the visitor's pages past the newest KF_STORE_VISITOR_PAGES_MAX deleted. */
static int apply_visitor_page_add(conn_t *c, op_t *op, bool *half)
{
    const kf_visitor_page_t *page = &op->args.page_new;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_VISITOR_EXISTS);
    int64_t exists = 0;
    int rc = lookup_int64(st, kf_sqlite_bind(st, "i", page->visitor_id), &exists);
    if (rc != 0)
        return rc;
    st = kf_sqlite_statement(c, STMT_VISITOR_PAGE_INSERT);
    rc = insert_one(c, st,
                    kf_sqlite_bind(st, "ittttttii", page->visitor_id, page->url, page->title,
                                   page->referrer, page->user_agent, page->language, page->timezone,
                                   page->utc_offset, page->seen_at),
                    &op->result.id);
    if (rc != 0)
        return rc;
    st = kf_sqlite_statement(c, STMT_VISITOR_PAGES_TRIM);
    rc = run_bound(st,
                   kf_sqlite_bind(st, "ii", page->visitor_id, (int64_t)KF_STORE_VISITOR_PAGES_MAX));
    *half = rc != 0;
    return rc;
}

static int apply(conn_t *c, op_t *op, bool *half)
{
    switch (op->kind) {
    case OP_WAKE: return apply_wake(c, op);
    case OP_SEARCH_INDEX: return 0; /* apply_batch indexes what waits, this op or not */
    case OP_RATE: return apply_rate(c, op);
    case OP_CLAIM: return apply_claim(c, op);
    case OP_ASSIGN: return apply_assign(c, op, half);
    case OP_MESSAGE_ADD: return apply_message(c, op, half);
    case OP_AGENT_UPDATE: return apply_agent_update(c, op, half);
    case OP_SESSION_CREATE: return apply_session_create(c, op, half);
    case OP_VISITOR_CREATE: return apply_visitor_create(c, op, half);
    case OP_CANNED_CREATE: return apply_canned_create(c, op, half);
    case OP_CANNED_UPDATE: return apply_canned_update(c, op, half);
    case OP_CANNED_DELETE: return apply_canned_delete(c, op);
    case OP_AUTOASSIGN: return apply_autoassign(c, op);
    case OP_TEAM_CREATE: return apply_team_create(c, op, half);
    case OP_TEAM_UPDATE: return apply_team_update(c, op, half);
    case OP_TEAM_SET_MEMBERS: return apply_team_set_members(c, op, half);
    case OP_VISITOR_UPDATE: return apply_visitor_update(c, op, half);
    case OP_VISITOR_PAGE_ADD: return apply_visitor_page_add(c, op, half);
    case OP_VISITOR_IDENTIFY: return apply_visitor_identify(c, op, half);
    case OP_API_TOKEN_CREATE:
    case OP_API_TOKEN_DELETE:
    case OP_API_TOKEN_TOUCH:
    case OP_WEBHOOK_CREATE:
    case OP_WEBHOOK_DELETE:
    case OP_WEBHOOK_ENQUEUE:
    case OP_WEBHOOK_ATTEMPTED: return kf_sqlite_apply_integration(c, op, half);
    default: return apply_simple(c, op);
    }
}

/* Rolls back the open transaction, if SQLite has not already done so after an error. */
static void rollback(conn_t *c)
{
    if (!sqlite3_get_autocommit(c->db))
        kf_sqlite_run(kf_sqlite_statement(c, STMT_ROLLBACK));
}

/* Applies a batch in one transaction and sets every write's result.rc: its own failure, or the
 * batch's (a failed BEGIN or COMMIT, or a rollback) for those that had none. */
/* Writes the blobs of the batch's attachments before its transaction begins, so that the
 * write lock is not held through their syncs; a message whose blob failed fails alone (its
 * apply returns blob_rc). */
static void write_blobs(sqlite_store_t *s, op_t *batch)
{
    for (op_t *op = batch; op != NULL; op = op->next) {
        if (op->kind != OP_MESSAGE_ADD || op->args.message.attachment == NULL)
            continue;
        int rc = kf_blob_write(s->blob_dir, op->blob, op->blob_len, op->blob_name);
        op->blob_rc = rc == 0 || rc == KF_EUNAVAIL ? rc : KF_ESTORE;
    }
}

/* The database's own failures (KF_ESTORE: I/O, corruption, out of memory; not a write refused
 * for its own reasons, nor a full disk, which the owner reports once: kf_store_health_fn) get a
 * line each, naming the request that queued the write; rare, and each one matters. A write taken
 * down by its batch's failure is named too. batch_rc: the batch's outcome. */
static void log_failures(const op_t *batch, int batch_rc)
{
    for (const op_t *op = batch; op != NULL; op = op->next) {
        int rc = op->result.rc != 0 ? op->result.rc : batch_rc;
        if (rc != KF_ESTORE)
            continue;
        const char *outer =
            kf_log_set_request_id(op->request_id[0] != '\0' ? op->request_id : NULL);
        kf_error("store: a write failed (%s)%s", kf_strerror(rc),
                 op->result.rc == 0 ? ", with the rest of its batch" : "");
        kf_log_set_request_id(outer);
    }
}

/* Whether a search in the batch asked for the index (OP_SEARCH_INDEX): it is then indexed in the
 * batch, before the search reads. */
static bool search_index_asked(const sqlite_store_t *s, const op_t *batch, size_t added)
{
    if (s->search_pending + added == 0)
        return false;
    for (const op_t *op = batch; op != NULL; op = op->next) {
        if (op->kind == OP_SEARCH_INDEX)
            return true;
    }
    return false;
}

/* When what waits for the search index is due, in a transaction of its own (monotonic µs;
 * UINT64_MAX when nothing waits): at once when enough waits (KF_SQLITE_SEARCH_BATCH), else once the
 * first has waited KF_SQLITE_SEARCH_DELAY_MS, and never within the delay after an attempt failed.
 * The writer runs it between batches, after handing the last one back: in a batch's own
 * transaction, that batch's writes waited for the index, about half a millisecond for 128
 * messages, which made the tail of the latency (docs/PERFORMANCE.md, "The search index between
 * batches"). */
static uint64_t search_index_due_us(const sqlite_store_t *s)
{
    if (s->search_pending == 0)
        return UINT64_MAX;
    uint64_t due_us = s->search_pending >= KF_SQLITE_SEARCH_BATCH
                          ? 0
                          : s->search_pending_since_us + (uint64_t)KF_SQLITE_SEARCH_DELAY_MS * 1000;
    return due_us < s->search_retry_us ? s->search_retry_us : due_us;
}

/* Indexes every message waiting in search_pending, and empties it. */
static int search_index(conn_t *c)
{
    int rc = kf_sqlite_run(kf_sqlite_statement(c, STMT_SEARCH_PENDING_INDEX));
    if (rc == 0)
        rc = kf_sqlite_run(kf_sqlite_statement(c, STMT_SEARCH_PENDING_WORDS));
    return rc == 0 ? kf_sqlite_run(kf_sqlite_statement(c, STMT_SEARCH_PENDING_CLEAR)) : rc;
}

/* After a batch's commit (rc its outcome): what waits for the search index now. */
static void search_pending_after(sqlite_store_t *s, int rc, bool indexed, size_t added,
                                 uint64_t began_us)
{
    if (rc != 0) {
        /* Nothing of the batch stayed; what waited still does, and a failed index is tried again
         * a delay later, not at once. */
        if (indexed)
            s->search_retry_us = began_us + (uint64_t)KF_SQLITE_SEARCH_DELAY_MS * 1000;
        return;
    }
    if (indexed) {
        s->search_pending = 0;
        return;
    }
    if (s->search_pending == 0 && added > 0)
        s->search_pending_since_us = began_us;
    s->search_pending += added;
}

static void apply_batch(sqlite_store_t *s, op_t *batch)
{
    conn_t *c = &s->writer;
    uint64_t began_us = kf_clock_mono_us();
    write_blobs(s, batch);
    kf_sqlite_gate_writer_enter(s);
    c->search_added = 0;
    bool indexed = false;
    int rc = kf_sqlite_run(kf_sqlite_statement(c, STMT_BEGIN));
    for (op_t *op = batch; rc == 0 && op != NULL; op = op->next) {
        bool half = false;
        op->result.rc = apply(c, op, &half);
        if (half)
            rollback(c);
        /* Rolled back, by us or by SQLite itself on some errors (I/O, disk full): every write
         * of the batch is gone. */
        if (sqlite3_get_autocommit(c->db))
            rc = op->result.rc != 0 ? op->result.rc : KF_ESTORE;
    }
    /* Alone (batch NULL) the writer indexes what is due; in a batch, only what a search asks. */
    if (rc == 0 &&
        (batch == NULL ? s->search_pending > 0 : search_index_asked(s, batch, c->search_added))) {
        indexed = true;
        rc = search_index(c);
        if (rc != 0)
            rollback(c);
    }
    if (rc == 0) {
        rc = kf_sqlite_run(kf_sqlite_statement(c, STMT_COMMIT));
        if (rc != 0)
            rollback(c);
    }
    kf_sqlite_gate_writer_leave(s);
    s->merge_wanted |= rc == 0;
    s->last_batch_us = kf_clock_mono_us();
    search_pending_after(s, rc, indexed, c->search_added, began_us);
    atomic_store_explicit(&s->search_waiting, s->search_pending, memory_order_release);
    log_failures(batch, rc);
    if (rc != 0) {
        for (op_t *op = batch; op != NULL; op = op->next) {
            if (op->result.rc == 0) {
                op->result.rc = rc;
                op->result.message = NULL;
                op->result.agent = NULL;
                op->result.canned = NULL;
                op->result.team = NULL;
                op->result.released = NULL;
                op->result.released_count = 0;
                op->result.visitor = NULL;
                op->result.api_token = NULL;
                op->result.webhook = NULL;
                op->result.count = 0;
                op->result.duplicate = false;
                op->result.conversation_opened = false;
                op->result.conversation_reopened = false;
            }
        }
    }
}

/* When the idle merge of the search indexes is due (monotonic µs; UINT64_MAX when nothing
 * asks for one): KF_SQLITE_MERGE_IDLE_MS after the last batch. */
static uint64_t search_merge_due_us(const sqlite_store_t *s)
{
    return s->merge_wanted ? s->last_batch_us + (uint64_t)KF_SQLITE_MERGE_IDLE_MS * 1000
                           : UINT64_MAX;
}

/* One step of the idle merge, in a transaction of its own: the messages' index first, the names'
 * once it has nothing to merge. Whether FTS5 merged anything is told by the rows it changed (its
 * documented way: two or more). Nothing merged, or a failure (logged): no more steps until a
 * batch commits. */
static void search_merge_step(sqlite_store_t *s)
{
    conn_t *c = &s->writer;
    bool merged = false;
    kf_sqlite_gate_writer_enter(s);
    int rc = kf_sqlite_run(kf_sqlite_statement(c, STMT_BEGIN));
    static const stmt_id_t steps[] = {STMT_SEARCH_MERGE_MESSAGES, STMT_SEARCH_MERGE_VISITORS};
    for (size_t i = 0; rc == 0 && !merged && i < sizeof steps / sizeof steps[0]; i++) {
        int64_t before = sqlite3_total_changes64(c->db);
        rc = kf_sqlite_run(kf_sqlite_statement(c, steps[i]));
        merged = rc == 0 && sqlite3_total_changes64(c->db) - before >= 2;
    }
    if (rc == 0)
        rc = kf_sqlite_run(kf_sqlite_statement(c, STMT_COMMIT));
    if (rc != 0)
        rollback(c);
    kf_sqlite_gate_writer_leave(s);
    if (rc != 0)
        kf_error("store: merging the search index failed (%s); tried again after the next write",
                 kf_strerror(rc));
    s->merge_wanted = rc == 0 && merged;
}

void kf_sqlite_count_messages(const op_t *batch)
{
    uint64_t stored = 0;
    for (const op_t *op = batch; op != NULL; op = op->next)
        stored += op->result.rc == 0 && op->result.message != NULL && !op->result.duplicate;
    if (stored > 0)
        atomic_fetch_add_explicit(&kf_metrics.messages_stored, stored, memory_order_relaxed);
}

/* Each write of the batch goes back to the handle that queued it, in queue order, and each
 * handle that had none waiting is told once (under the root's queue_lock, so that once
 * set_notify(NULL) returns it is never called again). One loop: one list, one notify, as
 * before. */
static void hand_back(op_t *batch)
{
    op_t *op = batch;
    while (op != NULL) {
        op_t *next = op->next;
        sqlite_store_t *origin = op->origin;
        bool was_empty = origin->finished.head == NULL;
        op->next = NULL;
        kf_sqlite_list_append(&origin->finished, op, op);
        origin->in_flight--;
        if (was_empty && origin->notify != NULL)
            origin->notify(origin->notify_data);
        op = next;
    }
}

static void *writer_main(void *data)
{
    sqlite_store_t *s = data;
    /* Named for top -H and perf, and for the allocation-failure test that fails this thread's. */
    pthread_setname_np(pthread_self(), "kefu-writer");
    /* What a crash left waiting for the search index goes in with the first batch, or after a
     * delay if none comes. */
    int64_t waiting = 0;
    sqlite3_stmt *count = kf_sqlite_statement(&s->writer, STMT_SEARCH_PENDING_COUNT);
    if (sqlite3_step(count) == SQLITE_ROW)
        waiting = sqlite3_column_int64(count, 0);
    kf_sqlite_finish(count);
    s->search_pending = waiting > 0 ? (size_t)waiting : 0;
    s->search_pending_since_us = kf_clock_mono_us();
    atomic_store_explicit(&s->search_waiting, s->search_pending, memory_order_release);
    /* A store from before, or left with a merge half done: merged once idle. */
    s->merge_wanted = true;
    s->last_batch_us = s->search_pending_since_us;
    pthread_mutex_lock(&s->queue_lock);
    for (;;) {
        bool index_alone = kf_clock_mono_us() >= search_index_due_us(s);
        bool merge = false;
        while (s->queued.head == NULL && !s->writer_stopping && !index_alone && !merge) {
            uint64_t index_us = search_index_due_us(s);
            uint64_t merge_us = search_merge_due_us(s);
            uint64_t due_us = index_us < merge_us ? index_us : merge_us;
            if (due_us == UINT64_MAX) {
                pthread_cond_wait(&s->queue_wake, &s->queue_lock);
                continue;
            }
            /* Idle with messages waiting for the search index, or a merge wanted: do it once
             * due, unless a write comes first. */
            uint64_t now_us = kf_clock_mono_us();
            if (now_us >= due_us) {
                index_alone = now_us >= index_us;
                merge = !index_alone;
                break;
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            uint64_t ns = (uint64_t)until.tv_nsec + (due_us - now_us) * 1000;
            until.tv_sec += (time_t)(ns / 1000000000u);
            until.tv_nsec = (long)(ns % 1000000000u);
            pthread_cond_timedwait(&s->queue_wake, &s->queue_lock, &until);
        }
        if (index_alone || merge) {
            s->writing = true;
            pthread_mutex_unlock(&s->queue_lock);
            if (index_alone)
                apply_batch(s, NULL);
            else
                search_merge_step(s);
            pthread_mutex_lock(&s->queue_lock);
            s->writing = false;
            pthread_cond_broadcast(&s->queue_idle);
            continue;
        }
        if (s->queued.head == NULL)
            break; /* stopping, and nothing is left */
        op_list_t batch = s->queued;
        s->queued = (op_list_t){NULL, NULL};
        s->writing = true;
        pthread_mutex_unlock(&s->queue_lock);

        uint64_t began_us = kf_clock_mono_us();
        apply_batch(s, batch.head);
        kf_histogram_observe_us(&kf_metrics.store_write, kf_clock_mono_us() - began_us);
        kf_sqlite_count_messages(batch.head);

        pthread_mutex_lock(&s->queue_lock);
        hand_back(batch.head);
        s->writing = false;
        pthread_cond_broadcast(&s->queue_idle);
    }
    pthread_mutex_unlock(&s->queue_lock);
    return NULL;
}

bool kf_sqlite_writer_wait_idle(sqlite_store_t *s)
{
    /* This handle's writes only: other loops keep the writer busy while they serve. */
    sqlite_store_t *root = kf_sqlite_root(s);
    pthread_mutex_lock(&root->queue_lock);
    while (s->in_flight > 0)
        pthread_cond_wait(&root->queue_idle, &root->queue_lock);
    bool finished = s->finished.head != NULL;
    pthread_mutex_unlock(&root->queue_lock);
    return finished;
}

op_t *kf_sqlite_writer_take_finished(sqlite_store_t *s)
{
    sqlite_store_t *root = kf_sqlite_root(s);
    pthread_mutex_lock(&root->queue_lock);
    op_t *finished = s->finished.head;
    s->finished = (op_list_t){NULL, NULL};
    pthread_mutex_unlock(&root->queue_lock);
    return finished;
}

int kf_sqlite_writer_start(sqlite_store_t *s)
{
    pthread_mutex_init(&s->queue_lock, NULL);
    pthread_cond_init(&s->queue_wake, NULL);
    pthread_cond_init(&s->queue_idle, NULL);
    /* Unknown until the writer has counted what a crash left: searches ask it first. */
    atomic_init(&s->search_waiting, SIZE_MAX);
    if (pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
        pthread_cond_destroy(&s->queue_idle);
        pthread_cond_destroy(&s->queue_wake);
        pthread_mutex_destroy(&s->queue_lock);
        return KF_ESTORE;
    }
    s->writer_running = true;
    return 0;
}

void kf_sqlite_writer_stop(sqlite_store_t *s)
{
    if (!s->writer_running)
        return;
    pthread_mutex_lock(&s->queue_lock);
    s->writer_stopping = true;
    s->notify = NULL;
    pthread_cond_signal(&s->queue_wake);
    pthread_mutex_unlock(&s->queue_lock);
    pthread_join(s->writer_thread, NULL);
    s->writer_running = false;
    pthread_cond_destroy(&s->queue_idle);
    pthread_cond_destroy(&s->queue_wake);
    pthread_mutex_destroy(&s->queue_lock);
}
