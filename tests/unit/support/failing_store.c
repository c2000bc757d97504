/* failing_store.c: the SQLite store behind a table of operations that fail on demand. */
#include "support/failing_store.h"

#include <stdbool.h>
#include <stdlib.h>

#define OP_COUNT (sizeof(kf_store_ops_t) / sizeof(void (*)(void)))

typedef struct failing {
    kf_store_ops_t ops;            /* first: the store's ops pointer points here, and so at us */
    const kf_store_ops_t *real;    /* SQLite's table */
    size_t fail_op;                /* the operation to fail (an offset, or FS_ANY) */
    unsigned long countdown;       /* calls of fail_op before the failure; 0 when none is armed */
    bool always;                   /* fail every call of fail_op */
    int error;                     /* what a failed call returns */
    unsigned long calls[OP_COUNT]; /* calls of each operation since arming */
    unsigned long total_calls;     /* calls of every operation since arming */
    unsigned long failures;        /* failures injected since arming */
} failing_t;

static failing_t *state(kf_store_t *store)
{
    return (failing_t *)(void *)store->ops;
}

/* Counts a call of op and returns the error to give instead of running it, or 0. */
static int intercept(kf_store_t *store, size_t op)
{
    failing_t *fs = state(store);
    fs->calls[op / sizeof(void (*)(void))]++;
    fs->total_calls++;
    if (fs->fail_op != op && fs->fail_op != FS_ANY)
        return 0;
    if (!fs->always && (fs->countdown == 0 || --fs->countdown > 0))
        return 0;
    fs->failures++;
    return fs->error;
}

static void fs_close(kf_store_t *store)
{
    failing_t *fs = state(store);
    store->ops = fs->real;
    free(fs);
    store->ops->close(store);
}

static int fs_setting_get(kf_store_t *store, const char *key, char *value_out, size_t value_size)
{
    int rc = intercept(store, FS_OP(setting_get));
    return rc != 0 ? rc : state(store)->real->setting_get(store, key, value_out, value_size);
}

static int fs_setting_set(kf_store_t *store, const char *key, const char *value)
{
    int rc = intercept(store, FS_OP(setting_set));
    return rc != 0 ? rc : state(store)->real->setting_set(store, key, value);
}

static int fs_agent_create(kf_store_t *store, const char *email, const char *name, const char *role,
                           const char *password_hash, int64_t now, int64_t *id_out)
{
    int rc = intercept(store, FS_OP(agent_create));
    return rc != 0 ? rc
                   : state(store)->real->agent_create(store, email, name, role, password_hash, now,
                                                      id_out);
}

static int fs_agent_count(kf_store_t *store, int64_t *count_out)
{
    int rc = intercept(store, FS_OP(agent_count));
    return rc != 0 ? rc : state(store)->real->agent_count(store, count_out);
}

static int fs_agent_by_email(kf_store_t *store, const char *email, kf_store_agent_cb cb, void *ctx)
{
    int rc = intercept(store, FS_OP(agent_by_email));
    return rc != 0 ? rc : state(store)->real->agent_by_email(store, email, cb, ctx);
}

static int fs_agent_by_id(kf_store_t *store, int64_t id, kf_store_agent_cb cb, void *ctx)
{
    int rc = intercept(store, FS_OP(agent_by_id));
    return rc != 0 ? rc : state(store)->real->agent_by_id(store, id, cb, ctx);
}

static int fs_session_create(kf_store_t *store, const char *token_hash, int64_t agent_id,
                             const char *csrf, int64_t now, int64_t expires_at)
{
    int rc = intercept(store, FS_OP(session_create));
    return rc != 0 ? rc
                   : state(store)->real->session_create(store, token_hash, agent_id, csrf, now,
                                                        expires_at);
}

static int fs_session_get(kf_store_t *store, const char *token_hash, int64_t now,
                          int64_t *agent_id_out, char *csrf_out, size_t csrf_size,
                          int64_t *expires_at_out)
{
    int rc = intercept(store, FS_OP(session_get));
    return rc != 0 ? rc
                   : state(store)->real->session_get(store, token_hash, now, agent_id_out, csrf_out,
                                                     csrf_size, expires_at_out);
}

static int fs_session_delete(kf_store_t *store, const char *token_hash)
{
    int rc = intercept(store, FS_OP(session_delete));
    return rc != 0 ? rc : state(store)->real->session_delete(store, token_hash);
}

static int fs_visitor_create(kf_store_t *store, const char *token_hash, const char *name,
                             int64_t now, int64_t *id_out)
{
    int rc = intercept(store, FS_OP(visitor_create));
    return rc != 0 ? rc : state(store)->real->visitor_create(store, token_hash, name, now, id_out);
}

static int fs_visitor_by_token(kf_store_t *store, const char *token_hash, int64_t *id_out,
                               char *name_out, size_t name_size)
{
    int rc = intercept(store, FS_OP(visitor_by_token));
    return rc != 0 ? rc
                   : state(store)->real->visitor_by_token(store, token_hash, id_out, name_out,
                                                          name_size);
}

static int fs_conversation_open_for_visitor(kf_store_t *store, int64_t visitor_id, int64_t now,
                                            int64_t *conversation_id_out)
{
    int rc = intercept(store, FS_OP(conversation_open_for_visitor));
    return rc != 0 ? rc
                   : state(store)->real->conversation_open_for_visitor(store, visitor_id, now,
                                                                       conversation_id_out);
}

static int fs_conversation_get(kf_store_t *store, int64_t conversation_id,
                               kf_store_conversation_cb cb, void *ctx)
{
    int rc = intercept(store, FS_OP(conversation_get));
    return rc != 0 ? rc : state(store)->real->conversation_get(store, conversation_id, cb, ctx);
}

static int fs_conversation_list(kf_store_t *store, size_t limit, kf_store_conversation_cb cb,
                                void *ctx)
{
    int rc = intercept(store, FS_OP(conversation_list));
    return rc != 0 ? rc : state(store)->real->conversation_list(store, limit, cb, ctx);
}

static int fs_conversation_set_status(kf_store_t *store, int64_t conversation_id,
                                      const char *status, int64_t now)
{
    int rc = intercept(store, FS_OP(conversation_set_status));
    return rc != 0
               ? rc
               : state(store)->real->conversation_set_status(store, conversation_id, status, now);
}

/* Carries a batched write's callback, so that its completion can be failed too. */
typedef struct fs_pending {
    kf_store_t *store;
    kf_store_done_cb done;
    void *ctx;
} fs_pending_t;

static fs_pending_t *fs_pending_new(kf_store_t *store, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p = calloc(1, sizeof *p);
    if (p != NULL)
        *p = (fs_pending_t){store, done, ctx};
    return p;
}

/* A completion counts as a call of complete(); a failed one reports the error instead. */
static void fs_done(void *data, const kf_store_result_t *result)
{
    fs_pending_t *p = data;
    kf_store_result_t r = *result;
    int rc = intercept(p->store, FS_OP(complete));
    if (rc != 0)
        r.rc = rc;
    p->done(p->ctx, &r);
    free(p);
}

static int fs_conversation_mark_read(kf_store_t *store, int64_t conversation_id, kf_sender_t reader,
                                     int64_t up_to, kf_store_done_cb done, void *ctx)
{
    int rc = intercept(store, FS_OP(conversation_mark_read));
    if (rc != 0)
        return rc;
    fs_pending_t *p = fs_pending_new(store, done, ctx);
    if (p == NULL)
        return -1;
    rc = state(store)->real->conversation_mark_read(store, conversation_id, reader, up_to, fs_done,
                                                    p);
    if (rc != 0)
        free(p);
    return rc;
}

static int fs_message_add(kf_store_t *store, int64_t conversation_id, int64_t visitor_id,
                          kf_sender_t sender, int64_t agent_id, const char *body, int64_t now,
                          kf_store_done_cb done, void *ctx)
{
    int rc = intercept(store, FS_OP(message_add));
    if (rc != 0)
        return rc;
    fs_pending_t *p = fs_pending_new(store, done, ctx);
    if (p == NULL)
        return -1;
    rc = state(store)->real->message_add(store, conversation_id, visitor_id, sender, agent_id, body,
                                         now, fs_done, p);
    if (rc != 0)
        free(p);
    return rc;
}

static int fs_messages_in_conversation(kf_store_t *store, int64_t conversation_id, int64_t after_id,
                                       size_t limit, kf_store_message_cb cb, void *ctx)
{
    int rc = intercept(store, FS_OP(messages_in_conversation));
    return rc != 0 ? rc
                   : state(store)->real->messages_in_conversation(store, conversation_id, after_id,
                                                                  limit, cb, ctx);
}

static int fs_messages_of_visitor(kf_store_t *store, int64_t visitor_id, int64_t after_id,
                                  size_t limit, kf_store_message_cb cb, void *ctx)
{
    int rc = intercept(store, FS_OP(messages_of_visitor));
    return rc != 0 ? rc
                   : state(store)->real->messages_of_visitor(store, visitor_id, after_id, limit, cb,
                                                             ctx);
}

static int fs_messages_all(kf_store_t *store, int64_t after_id, size_t limit,
                           kf_store_message_cb cb, void *ctx)
{
    int rc = intercept(store, FS_OP(messages_all));
    return rc != 0 ? rc : state(store)->real->messages_all(store, after_id, limit, cb, ctx);
}

static int fs_conversation_find_open(kf_store_t *store, int64_t visitor_id,
                                     int64_t *conversation_id_out)
{
    int rc = intercept(store, FS_OP(conversation_find_open));
    return rc != 0
               ? rc
               : state(store)->real->conversation_find_open(store, visitor_id, conversation_id_out);
}

int failing_store_open(const char *path, kf_store_t **out)
{
    kf_store_t *store;
    int rc = kf_store_open_sqlite(path, "OFF", &store);
    if (rc != 0)
        return rc;
    failing_t *fs = calloc(1, sizeof *fs);
    if (fs == NULL) {
        kf_store_close(store);
        return -1;
    }
    fs->real = store->ops;
    fs->ops = *store->ops; /* operations added later pass through */
    fs->ops.close = fs_close;
    fs->ops.setting_get = fs_setting_get;
    fs->ops.setting_set = fs_setting_set;
    fs->ops.agent_create = fs_agent_create;
    fs->ops.agent_count = fs_agent_count;
    fs->ops.agent_by_email = fs_agent_by_email;
    fs->ops.agent_by_id = fs_agent_by_id;
    fs->ops.session_create = fs_session_create;
    fs->ops.session_get = fs_session_get;
    fs->ops.session_delete = fs_session_delete;
    fs->ops.visitor_create = fs_visitor_create;
    fs->ops.visitor_by_token = fs_visitor_by_token;
    fs->ops.conversation_open_for_visitor = fs_conversation_open_for_visitor;
    fs->ops.conversation_get = fs_conversation_get;
    fs->ops.conversation_list = fs_conversation_list;
    fs->ops.conversation_set_status = fs_conversation_set_status;
    fs->ops.conversation_mark_read = fs_conversation_mark_read;
    fs->ops.message_add = fs_message_add;
    fs->ops.messages_in_conversation = fs_messages_in_conversation;
    fs->ops.messages_of_visitor = fs_messages_of_visitor;
    fs->ops.messages_all = fs_messages_all;
    fs->ops.conversation_find_open = fs_conversation_find_open;
    fs->fail_op = FS_ANY;
    store->ops = &fs->ops;
    *out = store;
    return 0;
}

static void arm(kf_store_t *store, size_t op, unsigned long nth, bool always, int error)
{
    failing_t *fs = state(store);
    fs->fail_op = op;
    fs->countdown = nth;
    fs->always = always;
    fs->error = error;
    for (size_t i = 0; i < OP_COUNT; i++)
        fs->calls[i] = 0;
    fs->total_calls = 0;
    fs->failures = 0;
}

void failing_store_fail_nth(kf_store_t *store, size_t op, unsigned long nth, int error)
{
    arm(store, op, nth, false, error);
}

void failing_store_fail_always(kf_store_t *store, size_t op, int error)
{
    arm(store, op, 0, true, error);
}

void failing_store_reset(kf_store_t *store)
{
    arm(store, FS_ANY, 0, false, 0);
}

unsigned long failing_store_calls(kf_store_t *store, size_t op)
{
    failing_t *fs = state(store);
    return op == FS_ANY ? fs->total_calls : fs->calls[op / sizeof(void (*)(void))];
}

unsigned long failing_store_failures(kf_store_t *store)
{
    return state(store)->failures;
}
