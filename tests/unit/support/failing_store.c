/* failing_store.c: the SQLite store behind a table of operations that fail on demand. */
#include "support/failing_store.h"

#include <stdbool.h>
#include <stdlib.h>

#include "base/buf.h"
#include "base/err.h"

#define OP_COUNT (sizeof(kf_store_ops_t) / sizeof(void (*)(void)))

/* One operation's callbacks, wrapped so that its completion can be counted and failed; or a call
 * failed in its result, waiting for complete(). */
typedef struct fs_pending {
    struct fs_pending *next; /* in failing_t's failed list */
    kf_store_t *store;
    kf_store_done_cb done;
    kf_store_message_cb each_message;
    kf_store_conversation_cb each_conversation;
    kf_store_agent_cb each_agent;
    kf_store_canned_cb each_canned;
    void *ctx;
    int rc; /* a failed call's error */
} fs_pending_t;

typedef struct failing {
    kf_store_ops_t ops;            /* first: the store's ops pointer points here, and so at us */
    const kf_store_ops_t *real;    /* SQLite's table */
    size_t fail_op;                /* the operation to fail (an offset, or FS_ANY) */
    unsigned long countdown;       /* calls of fail_op before the failure; 0 when none is armed */
    bool always;                   /* fail every call of fail_op */
    bool at_once;                  /* the call returns the error (else: in its result) */
    int error;                     /* what a failed call gives */
    unsigned long calls[OP_COUNT]; /* calls of each operation since arming */
    unsigned long total_calls;     /* calls of every operation since arming */
    unsigned long failures;        /* failures injected since arming */
    fs_pending_t *failed;          /* calls failed in their result, for the next complete() */
    fs_pending_t *failed_tail;
    void (*notify)(void *data); /* the caller's, also told of failed calls */
    void *notify_data;
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

/* A completion counts as a call of complete(); a failed one reports the error instead. */
static void fs_done(void *data, const kf_store_result_t *result)
{
    fs_pending_t *p = data;
    kf_store_result_t r = *result;
    int rc = intercept(p->store, FS_OP(complete));
    if (rc != 0)
        r = (kf_store_result_t){.rc = rc};
    p->done(p->ctx, &r);
    free(p);
}

static int fs_each_message(void *data, const kf_message_t *message)
{
    fs_pending_t *p = data;
    return p->each_message(p->ctx, message);
}

static int fs_each_conversation(void *data, const kf_conversation_t *conversation)
{
    fs_pending_t *p = data;
    return p->each_conversation(p->ctx, conversation);
}

static int fs_each_agent(void *data, const kf_agent_t *agent)
{
    fs_pending_t *p = data;
    return p->each_agent(p->ctx, agent);
}

static int fs_each_canned(void *data, const kf_canned_t *canned)
{
    fs_pending_t *p = data;
    return p->each_canned(p->ctx, canned);
}

/* Counts a call of op. Returns the error to refuse it with at once, or 0 with *out the wrapper
 * to hand the real operation: NULL when the call fails in its result (its done then runs from a
 * later complete()). */
static int begin(kf_store_t *store, size_t op, kf_store_done_cb done, void *ctx, fs_pending_t **out)
{
    failing_t *fs = state(store);
    *out = NULL;
    if (done == NULL)
        return KF_EINVAL;
    int error = intercept(store, op);
    if (error != 0 && fs->at_once)
        return error;
    fs_pending_t *p = kf_xcalloc(1, sizeof *p);
    *p = (fs_pending_t){.store = store, .done = done, .ctx = ctx, .rc = error};
    if (error == 0) {
        *out = p;
        return 0;
    }
    if (fs->failed_tail != NULL)
        fs->failed_tail->next = p;
    else
        fs->failed = p;
    fs->failed_tail = p;
    if (fs->notify != NULL)
        fs->notify(fs->notify_data);
    return 0;
}

/* The real operation's return (queued_rc) for the wrapper p. */
static int end(fs_pending_t *p, int queued_rc)
{
    if (queued_rc != 0)
        free(p);
    return queued_rc;
}

/* Hands the calls failed in their result their error. */
static bool deliver_failed(failing_t *fs)
{
    fs_pending_t *p = fs->failed;
    fs->failed = fs->failed_tail = NULL;
    bool any = p != NULL;
    while (p != NULL) {
        fs_pending_t *next = p->next;
        kf_store_result_t r = {.rc = p->rc};
        p->done(p->ctx, &r);
        free(p);
        p = next;
    }
    return any;
}

static void fs_complete(kf_store_t *store)
{
    failing_t *fs = state(store);
    fs->real->complete(store);
    deliver_failed(fs);
}

static void fs_flush(kf_store_t *store)
{
    failing_t *fs = state(store);
    do
        fs->real->flush(store);
    while (deliver_failed(fs));
}

static void fs_set_notify(kf_store_t *store, void (*notify)(void *data), void *data)
{
    failing_t *fs = state(store);
    fs->notify = notify;
    fs->notify_data = data;
    fs->real->set_notify(store, notify, data);
}

static void fs_close(kf_store_t *store)
{
    failing_t *fs = state(store);
    fs_flush(store);
    store->ops = fs->real;
    free(fs);
    store->ops->close(store);
}

/* ---- the operations: each counts, perhaps fails, else runs SQLite's ---- */

#define REAL(store) (state(store)->real)

static int fs_setting_get(kf_store_t *store, const char *key, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(setting_get), done, ctx, &p);
    return rc != 0 || p == NULL ? rc : end(p, REAL(store)->setting_get(store, key, fs_done, p));
}

static int fs_setting_set(kf_store_t *store, const char *key, const char *value,
                          kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(setting_set), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->setting_set(store, key, value, fs_done, p));
}

static int fs_agent_create(kf_store_t *store, const char *email, const char *name, const char *role,
                           const char *password_hash, int64_t now, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(agent_create), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->agent_create(store, email, name, role,
                                                                   password_hash, now, fs_done, p));
}

static int fs_agent_count(kf_store_t *store, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(agent_count), done, ctx, &p);
    return rc != 0 || p == NULL ? rc : end(p, REAL(store)->agent_count(store, fs_done, p));
}

static int fs_agent_by_email(kf_store_t *store, const char *email, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(agent_by_email), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->agent_by_email(store, email, fs_done, p));
}

static int fs_agent_by_id(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(agent_by_id), done, ctx, &p);
    return rc != 0 || p == NULL ? rc : end(p, REAL(store)->agent_by_id(store, id, fs_done, p));
}

static int fs_agent_list(kf_store_t *store, kf_store_agent_cb each, kf_store_done_cb done,
                         void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(agent_list), done, ctx, &p);
    if (rc != 0 || p == NULL)
        return rc;
    p->each_agent = each;
    return end(p, REAL(store)->agent_list(store, fs_each_agent, fs_done, p));
}

static int fs_agent_update(kf_store_t *store, int64_t id, const kf_agent_change_t *change,
                           kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(agent_update), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->agent_update(store, id, change, fs_done, p));
}

static int fs_session_create(kf_store_t *store, const char *token_hash, int64_t agent_id,
                             const char *csrf, int64_t now, int64_t expires_at,
                             kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(session_create), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->session_create(store, token_hash, agent_id, csrf, now,
                                                    expires_at, fs_done, p));
}

static int fs_session_get(kf_store_t *store, const char *token_hash, int64_t now,
                          kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(session_get), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->session_get(store, token_hash, now, fs_done, p));
}

static int fs_session_delete(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                             void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(session_delete), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->session_delete(store, token_hash, fs_done, p));
}

static int fs_visitor_create(kf_store_t *store, const char *token_hash, const char *name,
                             int64_t now, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(visitor_create), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->visitor_create(store, token_hash, name, now, fs_done, p));
}

static int fs_visitor_by_token(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                               void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(visitor_by_token), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->visitor_by_token(store, token_hash, fs_done, p));
}

static int fs_conversation_get(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_get), done, ctx, &p);
    return rc != 0 || p == NULL ? rc : end(p, REAL(store)->conversation_get(store, id, fs_done, p));
}

static int fs_conversation_visitor(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_visitor), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->conversation_visitor(store, id, fs_done, p));
}

static int fs_attachment_get(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(attachment_get), done, ctx, &p);
    return rc != 0 || p == NULL ? rc : end(p, REAL(store)->attachment_get(store, id, fs_done, p));
}

static int fs_conversation_list(kf_store_t *store, const kf_conversation_page_t *page,
                                kf_store_conversation_cb each, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_list), done, ctx, &p);
    if (rc != 0 || p == NULL)
        return rc;
    p->each_conversation = each;
    return end(p, REAL(store)->conversation_list(store, page, fs_each_conversation, fs_done, p));
}

static int fs_conversation_of_visitor(kf_store_t *store, int64_t visitor_id, kf_store_done_cb done,
                                      void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_of_visitor), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->conversation_of_visitor(store, visitor_id, fs_done, p));
}

static int fs_conversation_counts(kf_store_t *store, int64_t agent_id, kf_store_done_cb done,
                                  void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_counts), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->conversation_counts(store, agent_id, fs_done, p));
}

static int fs_conversation_set_status(kf_store_t *store, int64_t conversation_id,
                                      const char *status, int64_t snoozed_until, int64_t now,
                                      kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_set_status), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->conversation_set_status(store, conversation_id, status,
                                                             snoozed_until, now, fs_done, p));
}

static int fs_conversation_snooze_due(kf_store_t *store, int64_t now, kf_store_done_cb done,
                                      void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_snooze_due), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->conversation_snooze_due(store, now, fs_done, p));
}

static int fs_conversation_wake(kf_store_t *store, int64_t conversation_id, int64_t now,
                                kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_wake), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->conversation_wake(store, conversation_id, now, fs_done, p));
}

static int fs_conversation_rate(kf_store_t *store, int64_t visitor_id, const char *rating,
                                const char *comment, int64_t now, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_rate), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->conversation_rate(store, visitor_id, rating,
                                                                        comment, now, fs_done, p));
}

static int fs_conversation_claim(kf_store_t *store, int64_t conversation_id, int64_t agent_id,
                                 kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_claim), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->conversation_claim(store, conversation_id,
                                                                         agent_id, fs_done, p));
}

static int fs_conversation_assign(kf_store_t *store, const kf_conversation_assign_t *assign,
                                  kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_assign), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->conversation_assign(store, assign, fs_done, p));
}

static int fs_conversation_mark_read(kf_store_t *store, int64_t conversation_id, kf_sender_t reader,
                                     int64_t up_to, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(conversation_mark_read), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->conversation_mark_read(
                                             store, conversation_id, reader, up_to, fs_done, p));
}

static int fs_message_add(kf_store_t *store, const kf_message_new_t *message, kf_store_done_cb done,
                          void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(message_add), done, ctx, &p);
    return rc != 0 || p == NULL ? rc : end(p, REAL(store)->message_add(store, message, fs_done, p));
}

static int fs_messages_in_conversation(kf_store_t *store, int64_t conversation_id, int64_t after_id,
                                       size_t limit, kf_store_message_cb each,
                                       kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(messages_in_conversation), done, ctx, &p);
    if (rc != 0 || p == NULL)
        return rc;
    p->each_message = each;
    return end(p, REAL(store)->messages_in_conversation(store, conversation_id, after_id, limit,
                                                        fs_each_message, fs_done, p));
}

static int fs_messages_of_visitor(kf_store_t *store, int64_t visitor_id, int64_t after_id,
                                  size_t limit, kf_store_message_cb each, kf_store_done_cb done,
                                  void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(messages_of_visitor), done, ctx, &p);
    if (rc != 0 || p == NULL)
        return rc;
    p->each_message = each;
    return end(p, REAL(store)->messages_of_visitor(store, visitor_id, after_id, limit,
                                                   fs_each_message, fs_done, p));
}

static int fs_messages_all(kf_store_t *store, int64_t after_id, size_t limit,
                           kf_store_message_cb each, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(messages_all), done, ctx, &p);
    if (rc != 0 || p == NULL)
        return rc;
    p->each_message = each;
    return end(p, REAL(store)->messages_all(store, after_id, limit, fs_each_message, fs_done, p));
}

static int fs_canned_list(kf_store_t *store, int64_t agent_id, kf_store_canned_cb each,
                          kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(canned_list), done, ctx, &p);
    if (rc != 0 || p == NULL)
        return rc;
    p->each_canned = each;
    return end(p, REAL(store)->canned_list(store, agent_id, fs_each_canned, fs_done, p));
}

static int fs_canned_create(kf_store_t *store, int64_t agent_id, bool team, const char *shortcut,
                            const char *body, int64_t now, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(canned_create), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->canned_create(store, agent_id, team, shortcut,
                                                                    body, now, fs_done, p));
}

static int fs_canned_update(kf_store_t *store, int64_t agent_id, bool admin, int64_t id,
                            const char *shortcut, const char *body, int64_t now,
                            kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(canned_update), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->canned_update(store, agent_id, admin, id, shortcut, body, now,
                                                   fs_done, p));
}

static int fs_canned_delete(kf_store_t *store, int64_t agent_id, bool admin, int64_t id,
                            kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(canned_delete), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->canned_delete(store, agent_id, admin, id, fs_done, p));
}

static int fs_team_create(kf_store_t *store, const kf_team_change_t *team, int64_t now,
                          kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(team_create), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->team_create(store, team, now, fs_done, p));
}

static int fs_team_update(kf_store_t *store, int64_t id, const kf_team_change_t *change,
                          kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(team_update), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->team_update(store, id, change, fs_done, p));
}

static int fs_team_set_members(kf_store_t *store, int64_t id, const int64_t *agent_ids,
                               size_t count, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(team_set_members), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->team_set_members(store, id, agent_ids, count, fs_done, p));
}

static int fs_visitor_get(kf_store_t *store, int64_t visitor_id, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(visitor_get), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->visitor_get(store, visitor_id, fs_done, p));
}

static int fs_visitor_update(kf_store_t *store, int64_t visitor_id, const char *name,
                             const char *email, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(visitor_update), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->visitor_update(store, visitor_id, name, email, fs_done, p));
}

static int fs_visitor_page_add(kf_store_t *store, const kf_visitor_page_t *page,
                               kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(visitor_page_add), done, ctx, &p);
    return rc != 0 || p == NULL ? rc
                                : end(p, REAL(store)->visitor_page_add(store, page, fs_done, p));
}

static int fs_visitor_identify(kf_store_t *store, const kf_visitor_identity_t *identity,
                               kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(visitor_identify), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->visitor_identify(store, identity, fs_done, p));
}

static int fs_api_token_create(kf_store_t *store, const char *name, const char *scope,
                               const char *token_hash, int64_t created_by, int64_t now,
                               kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(api_token_create), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->api_token_create(store, name, scope, token_hash, created_by,
                                                      now, fs_done, p));
}

static int fs_api_token_by_hash(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                                void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(api_token_by_hash), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->api_token_by_hash(store, token_hash, fs_done, p));
}

static int fs_api_token_delete(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(api_token_delete), done, ctx, &p);
    return rc != 0 || p == NULL ? rc : end(p, REAL(store)->api_token_delete(store, id, fs_done, p));
}

static int fs_webhook_create(kf_store_t *store, const char *url, const char *events,
                             const char *secret, int64_t now, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(webhook_create), done, ctx, &p);
    return rc != 0 || p == NULL
               ? rc
               : end(p, REAL(store)->webhook_create(store, url, events, secret, now, fs_done, p));
}

static int fs_webhook_delete(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx)
{
    fs_pending_t *p;
    int rc = begin(store, FS_OP(webhook_delete), done, ctx, &p);
    return rc != 0 || p == NULL ? rc : end(p, REAL(store)->webhook_delete(store, id, fs_done, p));
}

int failing_store_open(const char *path, kf_store_t **out)
{
    kf_store_t *store;
    int rc = kf_store_open_sqlite(path, "OFF", &store);
    if (rc != 0)
        return rc;
    failing_t *fs = kf_xcalloc(1, sizeof *fs);
    fs->real = store->ops;
    fs->ops = *store->ops; /* operations added later pass through */
    fs->ops.close = fs_close;
    fs->ops.complete = fs_complete;
    fs->ops.flush = fs_flush;
    fs->ops.set_notify = fs_set_notify;
    fs->ops.setting_get = fs_setting_get;
    fs->ops.setting_set = fs_setting_set;
    fs->ops.agent_create = fs_agent_create;
    fs->ops.agent_count = fs_agent_count;
    fs->ops.agent_by_email = fs_agent_by_email;
    fs->ops.agent_by_id = fs_agent_by_id;
    fs->ops.agent_list = fs_agent_list;
    fs->ops.agent_update = fs_agent_update;
    fs->ops.session_create = fs_session_create;
    fs->ops.session_get = fs_session_get;
    fs->ops.session_delete = fs_session_delete;
    fs->ops.visitor_create = fs_visitor_create;
    fs->ops.visitor_by_token = fs_visitor_by_token;
    fs->ops.conversation_get = fs_conversation_get;
    fs->ops.conversation_visitor = fs_conversation_visitor;
    fs->ops.attachment_get = fs_attachment_get;
    fs->ops.conversation_list = fs_conversation_list;
    fs->ops.conversation_of_visitor = fs_conversation_of_visitor;
    fs->ops.conversation_counts = fs_conversation_counts;
    fs->ops.conversation_set_status = fs_conversation_set_status;
    fs->ops.conversation_claim = fs_conversation_claim;
    fs->ops.conversation_assign = fs_conversation_assign;
    fs->ops.conversation_snooze_due = fs_conversation_snooze_due;
    fs->ops.conversation_wake = fs_conversation_wake;
    fs->ops.conversation_rate = fs_conversation_rate;
    fs->ops.conversation_mark_read = fs_conversation_mark_read;
    fs->ops.message_add = fs_message_add;
    fs->ops.messages_in_conversation = fs_messages_in_conversation;
    fs->ops.messages_of_visitor = fs_messages_of_visitor;
    fs->ops.messages_all = fs_messages_all;
    fs->ops.canned_list = fs_canned_list;
    fs->ops.canned_create = fs_canned_create;
    fs->ops.canned_update = fs_canned_update;
    fs->ops.canned_delete = fs_canned_delete;
    fs->ops.team_create = fs_team_create;
    fs->ops.team_update = fs_team_update;
    fs->ops.team_set_members = fs_team_set_members;
    fs->ops.visitor_get = fs_visitor_get;
    fs->ops.visitor_update = fs_visitor_update;
    fs->ops.visitor_page_add = fs_visitor_page_add;
    fs->ops.visitor_identify = fs_visitor_identify;
    fs->ops.api_token_create = fs_api_token_create;
    fs->ops.api_token_by_hash = fs_api_token_by_hash;
    fs->ops.api_token_delete = fs_api_token_delete;
    fs->ops.webhook_create = fs_webhook_create;
    fs->ops.webhook_delete = fs_webhook_delete;
    fs->fail_op = FS_ANY;
    store->ops = &fs->ops;
    *out = store;
    return 0;
}

static void arm(kf_store_t *store, size_t op, unsigned long nth, bool always, bool at_once,
                int error)
{
    failing_t *fs = state(store);
    fs->fail_op = op;
    fs->countdown = nth;
    fs->always = always;
    fs->at_once = at_once;
    fs->error = error;
    for (size_t i = 0; i < OP_COUNT; i++)
        fs->calls[i] = 0;
    fs->total_calls = 0;
    fs->failures = 0;
}

void failing_store_fail_nth(kf_store_t *store, size_t op, unsigned long nth, int error)
{
    arm(store, op, nth, false, false, error);
}

void failing_store_refuse_nth(kf_store_t *store, size_t op, unsigned long nth, int error)
{
    arm(store, op, nth, false, true, error);
}

void failing_store_fail_always(kf_store_t *store, size_t op, int error)
{
    arm(store, op, 0, true, false, error);
}

void failing_store_reset(kf_store_t *store)
{
    arm(store, FS_ANY, 0, false, false, 0);
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
