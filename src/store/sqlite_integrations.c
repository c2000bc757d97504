/* sqlite_integrations.c: the SQLite backend's API tokens and outgoing webhooks (store.h): their
 * reads on the loop's connection and their writes on the writer's, kept apart from the chat's
 * rows because nothing else joins them. */
#include "store/sqlite_internal.h"

#include <string.h>

/* ---- queueing (the owner thread) ---- */

static int queue_read(kf_store_t *store, op_t *op)
{
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

static int queue_write(kf_store_t *store, op_t *op)
{
    return kf_sqlite_queue_write(kf_sqlite_from_base(store), op);
}

static bool empty(const char *text)
{
    return text == NULL || text[0] == '\0';
}

int kf_sqlite_api_token_create(kf_store_t *store, const char *name, const char *scope,
                               const char *token_hash, int64_t created_by, int64_t now,
                               kf_store_done_cb done, void *ctx)
{
    if (empty(name) || empty(token_hash) || scope == NULL || done == NULL ||
        (strcmp(scope, "read") != 0 && strcmp(scope, "write") != 0 && strcmp(scope, "admin") != 0))
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_API_TOKEN_CREATE, done, ctx);
    op->args.integration.name = kf_sqlite_op_keep(op, name);
    op->args.integration.scope = kf_sqlite_op_keep(op, scope);
    op->args.integration.hash = kf_sqlite_op_keep(op, token_hash);
    op->args.integration.agent_id = created_by;
    op->args.integration.now = now;
    return queue_write(store, op);
}

int kf_sqlite_api_token_list(kf_store_t *store, kf_store_api_token_cb each, kf_store_done_cb done,
                             void *ctx)
{
    if (each == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_API_TOKEN_LIST, done, ctx);
    op->each_api_token = each;
    return queue_read(store, op);
}

int kf_sqlite_api_token_by_hash(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                                void *ctx)
{
    if (empty(token_hash) || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_API_TOKEN_BY_HASH, done, ctx);
    op->args.integration.hash = kf_sqlite_op_keep(op, token_hash);
    return queue_read(store, op);
}

/* A write of one id (and a time). */
static int queue_by_id(kf_store_t *store, op_kind_t kind, int64_t id, int64_t now,
                       kf_store_done_cb done, void *ctx)
{
    if (done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(kind, done, ctx);
    op->args.integration.id = id;
    op->args.integration.now = now;
    return queue_write(store, op);
}

int kf_sqlite_api_token_delete(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx)
{
    return queue_by_id(store, OP_API_TOKEN_DELETE, id, 0, done, ctx);
}

int kf_sqlite_api_token_touch(kf_store_t *store, int64_t id, int64_t now, kf_store_done_cb done,
                              void *ctx)
{
    return queue_by_id(store, OP_API_TOKEN_TOUCH, id, now, done, ctx);
}

int kf_sqlite_webhook_create(kf_store_t *store, const char *url, const char *events,
                             const char *secret, int64_t now, kf_store_done_cb done, void *ctx)
{
    if (empty(url) || empty(events) || empty(secret) || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_WEBHOOK_CREATE, done, ctx);
    op->args.integration.name = kf_sqlite_op_keep(op, url);
    op->args.integration.scope = kf_sqlite_op_keep(op, events);
    op->args.integration.hash = kf_sqlite_op_keep(op, secret);
    op->args.integration.now = now;
    return queue_write(store, op);
}

int kf_sqlite_webhook_list(kf_store_t *store, kf_store_webhook_cb each, kf_store_done_cb done,
                           void *ctx)
{
    if (each == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_WEBHOOK_LIST, done, ctx);
    op->each_webhook = each;
    return queue_read(store, op);
}

int kf_sqlite_webhook_delete(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx)
{
    return queue_by_id(store, OP_WEBHOOK_DELETE, id, 0, done, ctx);
}

int kf_sqlite_webhook_enqueue(kf_store_t *store, const char *event, const char *body, int64_t now,
                              kf_store_done_cb done, void *ctx)
{
    if (empty(event) || empty(body) || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_WEBHOOK_ENQUEUE, done, ctx);
    op->args.integration.name = kf_sqlite_op_keep(op, event);
    op->args.integration.scope = kf_sqlite_op_keep(op, body);
    op->args.integration.now = now;
    return queue_write(store, op);
}

int kf_sqlite_webhook_due(kf_store_t *store, int64_t now, size_t limit, kf_store_delivery_cb each,
                          kf_store_done_cb done, void *ctx)
{
    if (each == NULL || done == NULL || limit < 1 || limit > 1000)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_WEBHOOK_DUE, done, ctx);
    op->each_delivery = each;
    op->args.integration.now = now;
    op->args.integration.limit = limit;
    return queue_read(store, op);
}

int kf_sqlite_webhook_attempted(kf_store_t *store, const kf_webhook_attempt_t *attempt,
                                kf_store_done_cb done, void *ctx)
{
    if (attempt == NULL || done == NULL || attempt->next_at < 0)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_WEBHOOK_ATTEMPTED, done, ctx);
    op->args.integration.id = attempt->delivery_id;
    op->args.integration.now = attempt->at;
    op->args.integration.status = attempt->status;
    op->args.integration.error = kf_sqlite_op_keep(op, attempt->error);
    op->args.integration.next_at = attempt->next_at;
    return queue_write(store, op);
}

int kf_sqlite_webhook_attempts(kf_store_t *store, int64_t webhook_id, size_t limit,
                               kf_store_attempt_cb each, kf_store_done_cb done, void *ctx)
{
    if (each == NULL || done == NULL || limit < 1 || limit > KF_STORE_WEBHOOK_LOG_MAX)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_WEBHOOK_ATTEMPTS, done, ctx);
    op->each_attempt = each;
    op->args.integration.id = webhook_id;
    op->args.integration.limit = limit;
    return queue_read(store, op);
}

/* ---- rows ---- */

static void read_api_token(sqlite3_stmt *st, kf_api_token_t *token)
{
    token->id = sqlite3_column_int64(st, 0);
    token->name = kf_sqlite_column_text(st, 1);
    token->scope = kf_sqlite_column_text(st, 2);
    token->created_by = sqlite3_column_int64(st, 3);
    token->created_at = sqlite3_column_int64(st, 4);
    token->last_used_at = sqlite3_column_int64(st, 5);
}

/* The events as callers gave them: without the commas around (KF_SQLITE_INTEGRATION_STATEMENTS).
 * Points into buffer, which holds the text cut short when it is longer. */
static const char *read_events(sqlite3_stmt *st, int column, char *buffer, size_t size)
{
    const char *events = kf_sqlite_column_text(st, column);
    size_t len = strlen(events);
    if (len >= 2 && events[0] == ',' && events[len - 1] == ',') {
        events++;
        len -= 2;
    }
    if (len >= size)
        len = size - 1;
    memcpy(buffer, events, len);
    buffer[len] = '\0';
    return buffer;
}

/* Enough for every event name there is, many times over. */
#define EVENTS_MAX 1024

static void read_webhook(sqlite3_stmt *st, kf_webhook_t *webhook, char events[EVENTS_MAX])
{
    webhook->id = sqlite3_column_int64(st, 0);
    webhook->url = kf_sqlite_column_text(st, 1);
    webhook->events = read_events(st, 2, events, EVENTS_MAX);
    webhook->secret = kf_sqlite_column_text(st, 3);
    webhook->created_at = sqlite3_column_int64(st, 4);
}

static void read_delivery(sqlite3_stmt *st, kf_webhook_delivery_t *delivery)
{
    delivery->id = sqlite3_column_int64(st, 0);
    delivery->webhook_id = sqlite3_column_int64(st, 1);
    delivery->url = kf_sqlite_column_text(st, 2);
    delivery->secret = kf_sqlite_column_text(st, 3);
    delivery->event = kf_sqlite_column_text(st, 4);
    delivery->body = kf_sqlite_column_text(st, 5);
    delivery->created_at = sqlite3_column_int64(st, 6);
    delivery->attempts = sqlite3_column_int64(st, 7);
    delivery->next_at = sqlite3_column_int64(st, 8);
}

static void read_attempt(sqlite3_stmt *st, kf_webhook_attempt_t *attempt)
{
    attempt->id = sqlite3_column_int64(st, 0);
    attempt->webhook_id = sqlite3_column_int64(st, 1);
    attempt->delivery_id = sqlite3_column_int64(st, 2);
    attempt->event = kf_sqlite_column_text(st, 3);
    attempt->attempt = sqlite3_column_int64(st, 4);
    attempt->at = sqlite3_column_int64(st, 5);
    attempt->status = sqlite3_column_int64(st, 6);
    attempt->error = kf_sqlite_column_text(st, 7);
    attempt->next_at = sqlite3_column_int64(st, 8);
}

/* ---- reads (the loop's connection) ---- */

/* Binds op's read to its statement. */
static int bind_read(const op_t *op, sqlite3_stmt *st)
{
    switch (op->kind) {
    case OP_API_TOKEN_BY_HASH: return kf_sqlite_bind(st, "t", op->args.integration.hash);
    case OP_WEBHOOK_DUE:
        return kf_sqlite_bind(st, "in", op->args.integration.now, op->args.integration.limit);
    case OP_WEBHOOK_ATTEMPTS:
        return kf_sqlite_bind(st, "in", op->args.integration.id, op->args.integration.limit);
    default: return 0; /* the whole lists */
    }
}

static stmt_id_t read_statement(op_kind_t kind)
{
    switch (kind) {
    case OP_API_TOKEN_LIST: return STMT_API_TOKEN_LIST;
    case OP_API_TOKEN_BY_HASH: return STMT_API_TOKEN_BY_HASH;
    case OP_WEBHOOK_LIST: return STMT_WEBHOOK_LIST;
    case OP_WEBHOOK_DUE: return STMT_WEBHOOK_DUE;
    default: return STMT_WEBHOOK_ATTEMPTS;
    }
}

/* Hands one row of a list to its each callback. */
static int each_row(const op_t *op, sqlite3_stmt *st)
{
    switch (op->kind) {
    case OP_API_TOKEN_LIST: {
        kf_api_token_t token;
        read_api_token(st, &token);
        return op->each_api_token(op->ctx, &token);
    }
    case OP_WEBHOOK_LIST: {
        kf_webhook_t webhook;
        char events[EVENTS_MAX];
        read_webhook(st, &webhook, events);
        return op->each_webhook(op->ctx, &webhook);
    }
    case OP_WEBHOOK_DUE: {
        kf_webhook_delivery_t delivery;
        read_delivery(st, &delivery);
        return op->each_delivery(op->ctx, &delivery);
    }
    default: {
        kf_webhook_attempt_t attempt;
        read_attempt(st, &attempt);
        return op->each_attempt(op->ctx, &attempt);
    }
    }
}

void kf_sqlite_run_integration_read(sqlite_store_t *s, op_t *op)
{
    sqlite3_stmt *st = kf_sqlite_statement(&s->main, read_statement(op->kind));
    kf_store_result_t result;
    memset(&result, 0, sizeof result);
    kf_api_token_t token;
    result.rc = bind_read(op, st);
    if (result.rc == 0 && op->kind == OP_API_TOKEN_BY_HASH) {
        result.rc = kf_sqlite_step_row(st);
        if (result.rc == 0) {
            read_api_token(st, &token);
            result.api_token = &token;
        }
    } else {
        while (result.rc == 0) {
            int code = sqlite3_step(st);
            if (code == SQLITE_DONE)
                break;
            if (code != SQLITE_ROW) {
                result.rc = kf_sqlite_map_error(code);
                break;
            }
            result.count++;
            result.rc = each_row(op, st);
        }
    }
    /* The row stays valid during done: the statement is reset only after it. */
    op->done(op->ctx, &result);
    kf_sqlite_finish(st);
}

/* ---- writes (the writer thread) ---- */

/* Runs st once binding it went well; else resets it and returns bind_rc. */
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

/* The token's row as the op's result, its strings kept with the op. */
static int read_back_token(conn_t *c, op_t *op, int64_t id)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_API_TOKEN_BY_ID);
    int rc = kf_sqlite_bind(st, "i", id);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    if (rc == 0) {
        read_api_token(st, &op->api_token);
        op->api_token.name = kf_sqlite_op_keep(op, op->api_token.name);
        op->api_token.scope = kf_sqlite_op_keep(op, op->api_token.scope);
        op->result.api_token = &op->api_token;
        op->result.id = id;
    }
    kf_sqlite_finish(st);
    return rc;
}

static int read_back_webhook(conn_t *c, op_t *op, int64_t id)
{
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_WEBHOOK_BY_ID);
    int rc = kf_sqlite_bind(st, "i", id);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    if (rc == 0) {
        char events[EVENTS_MAX];
        read_webhook(st, &op->webhook, events);
        op->webhook.url = kf_sqlite_op_keep(op, op->webhook.url);
        op->webhook.events = kf_sqlite_op_keep(op, op->webhook.events);
        op->webhook.secret = kf_sqlite_op_keep(op, op->webhook.secret);
        op->result.webhook = &op->webhook;
        op->result.id = id;
    }
    kf_sqlite_finish(st);
    return rc;
}

/* The delivery's webhook looked up (KF_ENOTFOUND when it is gone), the attempt in the log
 * (trimmed), then the delivery over or due again. */
static int apply_attempted(conn_t *c, op_t *op, bool *half)
{
    int64_t id = op->args.integration.id;
    sqlite3_stmt *st = kf_sqlite_statement(c, STMT_WEBHOOK_OF_DELIVERY);
    int rc = kf_sqlite_bind(st, "i", id);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    int64_t webhook_id = rc == 0 ? sqlite3_column_int64(st, 0) : 0;
    kf_sqlite_finish(st);
    if (rc != 0)
        return rc;
    st = kf_sqlite_statement(c, STMT_WEBHOOK_ATTEMPT_INSERT);
    rc = change_one(c, st,
                    kf_sqlite_bind(st, "iiiti", id, op->args.integration.now,
                                   op->args.integration.status, op->args.integration.error,
                                   op->args.integration.next_at));
    if (rc != 0)
        return rc;
    *half = true;
    st = kf_sqlite_statement(c, STMT_WEBHOOK_ATTEMPTS_TRIM);
    rc = run_bound(st, kf_sqlite_bind(st, "ii", webhook_id, (int64_t)KF_STORE_WEBHOOK_LOG_MAX));
    if (rc == 0 && op->args.integration.next_at == 0) {
        st = kf_sqlite_statement(c, STMT_WEBHOOK_DELIVERY_DONE);
        rc = change_one(c, st, kf_sqlite_bind(st, "i", id));
    } else if (rc == 0) {
        st = kf_sqlite_statement(c, STMT_WEBHOOK_DELIVERY_RETRY);
        rc = change_one(c, st, kf_sqlite_bind(st, "ii", id, op->args.integration.next_at));
    }
    *half = rc != 0;
    return rc;
}

int kf_sqlite_apply_integration(conn_t *c, op_t *op, bool *half)
{
    sqlite3_stmt *st;
    int rc;
    int64_t id = 0;
    switch (op->kind) {
    case OP_API_TOKEN_CREATE:
        st = kf_sqlite_statement(c, STMT_API_TOKEN_CREATE);
        rc = run_bound(st, kf_sqlite_bind(st, "tttIi", op->args.integration.name,
                                          op->args.integration.scope, op->args.integration.hash,
                                          op->args.integration.agent_id, op->args.integration.now));
        if (rc != 0)
            return rc == KF_EEXISTS ? KF_EINVAL : rc;
        id = sqlite3_last_insert_rowid(c->db);
        rc = read_back_token(c, op, id);
        *half = rc != 0;
        return rc;
    case OP_API_TOKEN_DELETE:
        st = kf_sqlite_statement(c, STMT_API_TOKEN_DELETE);
        return change_one(c, st, kf_sqlite_bind(st, "i", op->args.integration.id));
    case OP_API_TOKEN_TOUCH:
        st = kf_sqlite_statement(c, STMT_API_TOKEN_TOUCH);
        return change_one(
            c, st, kf_sqlite_bind(st, "ii", op->args.integration.id, op->args.integration.now));
    case OP_WEBHOOK_CREATE:
        st = kf_sqlite_statement(c, STMT_WEBHOOK_CREATE);
        rc = run_bound(st, kf_sqlite_bind(st, "ttti", op->args.integration.name,
                                          op->args.integration.scope, op->args.integration.hash,
                                          op->args.integration.now));
        if (rc != 0)
            return rc;
        id = sqlite3_last_insert_rowid(c->db);
        rc = read_back_webhook(c, op, id);
        *half = rc != 0;
        return rc;
    case OP_WEBHOOK_DELETE:
        st = kf_sqlite_statement(c, STMT_WEBHOOK_DELETE);
        return change_one(c, st, kf_sqlite_bind(st, "i", op->args.integration.id));
    case OP_WEBHOOK_ENQUEUE:
        st = kf_sqlite_statement(c, STMT_WEBHOOK_ENQUEUE);
        rc = run_bound(st, kf_sqlite_bind(st, "tti", op->args.integration.name,
                                          op->args.integration.scope, op->args.integration.now));
        if (rc == 0)
            op->result.count = sqlite3_changes(c->db);
        return rc;
    default: return apply_attempted(c, op, half);
    }
}
