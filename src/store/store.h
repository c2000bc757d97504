/* store.h: the storage interface. The chat layer talks to kf_store_t only; a backend (sqlite.c
 * now, PostgreSQL later) fills in kf_store_ops_t. The store knows rows, not HTTP or JSON.
 *
 * Conventions for every operation:
 * - returns 0 or a negative KF_E* code (KF_ENOTFOUND when a looked-up row is absent,
 *   KF_EEXISTS on a unique violation, KF_ESTORE on any other database failure);
 * - strings passed in are NUL-terminated UTF-8 and are only borrowed;
 * - rows handed to a callback (or filled into a struct with const char * fields) stay valid only
 *   until the callback returns (or until the next call on the same store); copy what you keep;
 * - a callback returning non-zero stops the iteration, and the operation returns that value;
 * - times are milliseconds since the Unix epoch (int64_t);
 * - message ids are assigned in commit order, strictly increasing across the whole store, so a
 *   message id is a valid resume cursor for any reader;
 * - group commit: the batched writes (message_add, conversation_mark_read) are queued and return
 *   at once; a writer thread applies whatever is queued in one transaction with one sync, while
 *   the next batch queues. Their done callbacks run later, on the caller's thread, from
 *   complete(), once the write is durable or has failed. The caller neither acknowledges nor
 *   publishes a write before its done callback says it is durable, and every read sees only
 *   committed rows: nothing shown to anyone can be undone by a failed commit. */
#ifndef KF_STORE_H
#define KF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { KF_SENDER_VISITOR = 0, KF_SENDER_AGENT = 1 } kf_sender_t;

typedef struct kf_agent {
    int64_t id;
    const char *email;         /* unique, stored lower-case by the caller */
    const char *name;          /* display name */
    const char *role;          /* "admin" or "agent" */
    const char *password_hash; /* encoded scrypt hash (auth/auth.h) */
    int64_t created_at;
} kf_agent_t;

typedef struct kf_visitor {
    int64_t id;
    const char *name; /* display name chosen by the visitor, or "" */
    int64_t created_at;
} kf_visitor_t;

typedef struct kf_message {
    int64_t id;
    int64_t conversation_id;
    int64_t visitor_id; /* the conversation's visitor */
    kf_sender_t sender;
    int64_t agent_id;       /* the agent who wrote it; 0 when sender is the visitor */
    const char *agent_name; /* that agent's display name, "" for visitor messages */
    const char *body;
    int64_t created_at;
} kf_message_t;

typedef struct kf_conversation {
    int64_t id;
    int64_t visitor_id;
    const char *visitor_name; /* "" when the visitor gave none */
    const char *status;       /* "open" or "closed" */
    int64_t created_at;
    int64_t updated_at;         /* time of the last message, or created_at */
    int64_t agent_read_up_to;   /* highest message id the agents have marked read */
    int64_t visitor_read_up_to; /* highest message id the visitor has marked read */
    int64_t unread_for_agents;  /* visitor messages with id > agent_read_up_to */
    int64_t unread_for_visitor; /* agent messages with id > visitor_read_up_to */
    bool has_last_message;
    kf_message_t last_message; /* valid when has_last_message */
} kf_conversation_t;

typedef int (*kf_store_message_cb)(void *ctx, const kf_message_t *message);

/* What a batched write came to, handed to its done callback. */
typedef struct kf_store_result {
    int rc;                   /* 0: durable; else why it is not stored */
    kf_message_t message;     /* message_add: the stored row (valid during the callback) */
    bool conversation_opened; /* message_add: it opened the visitor's conversation */
} kf_store_result_t;

typedef void (*kf_store_done_cb)(void *ctx, const kf_store_result_t *result);
typedef int (*kf_store_conversation_cb)(void *ctx, const kf_conversation_t *conversation);
typedef int (*kf_store_agent_cb)(void *ctx, const kf_agent_t *agent);

typedef struct kf_store kf_store_t;

typedef struct kf_store_ops {
    void (*close)(kf_store_t *store);

    /* Key-value settings (server secrets and the like). value_out gets a NUL-terminated copy of
     * at most value_size - 1 bytes; KF_ENOTFOUND when the key is absent, KF_ETOOBIG if too small.
     */
    int (*setting_get)(kf_store_t *store, const char *key, char *value_out, size_t value_size);
    int (*setting_set)(kf_store_t *store, const char *key, const char *value);

    /* Agents. agent_create gives KF_EEXISTS when the e-mail is taken. */
    int (*agent_create)(kf_store_t *store, const char *email, const char *name, const char *role,
                        const char *password_hash, int64_t now, int64_t *id_out);
    int (*agent_count)(kf_store_t *store, int64_t *count_out);
    /* Calls cb once with the agent, or returns KF_ENOTFOUND without calling it. */
    int (*agent_by_email)(kf_store_t *store, const char *email, kf_store_agent_cb cb, void *ctx);
    int (*agent_by_id)(kf_store_t *store, int64_t id, kf_store_agent_cb cb, void *ctx);

    /* Agent sessions, keyed by the SHA-256 (hex) of the session token; the store never sees the
     * token. session_get returns KF_ENOTFOUND for an unknown or expired (expires_at <= now)
     * session, else fills agent_id_out, copies the CSRF token (NUL-terminated) into csrf_out, and
     * fills expires_at_out unless it is NULL. */
    int (*session_create)(kf_store_t *store, const char *token_hash, int64_t agent_id,
                          const char *csrf, int64_t now, int64_t expires_at);
    int (*session_get)(kf_store_t *store, const char *token_hash, int64_t now,
                       int64_t *agent_id_out, char *csrf_out, size_t csrf_size,
                       int64_t *expires_at_out);
    int (*session_delete)(kf_store_t *store, const char *token_hash);

    /* Visitors, keyed by the SHA-256 (hex) of their bearer token. visitor_by_token fills id and
     * copies the name (NUL-terminated) into name_out; KF_ENOTFOUND for an unknown token. */
    int (*visitor_create)(kf_store_t *store, const char *token_hash, const char *name, int64_t now,
                          int64_t *id_out);
    int (*visitor_by_token)(kf_store_t *store, const char *token_hash, int64_t *id_out,
                            char *name_out, size_t name_size);

    /* Returns the visitor's open conversation, creating one (status "open") when there is none.
     * Not batched (its own transaction); the chat layer opens conversations with a visitor's
     * first message_add instead. KF_ENOTFOUND for an unknown visitor. */
    int (*conversation_open_for_visitor)(kf_store_t *store, int64_t visitor_id, int64_t now,
                                         int64_t *conversation_id_out);
    /* Calls cb once with the conversation (unread counts and last message filled in). */
    int (*conversation_get)(kf_store_t *store, int64_t conversation_id, kf_store_conversation_cb cb,
                            void *ctx);
    /* Conversations ordered by updated_at descending (then id descending), at most limit. */
    int (*conversation_list)(kf_store_t *store, size_t limit, kf_store_conversation_cb cb,
                             void *ctx);
    /* Sets status to "open" or "closed"; KF_ENOTFOUND for an unknown conversation. */
    int (*conversation_set_status)(kf_store_t *store, int64_t conversation_id, const char *status,
                                   int64_t now);
    /* Batched writes (see group commit above). Each copies its arguments and returns 0, or
     * KF_EINVAL for arguments refused at once (then done is never called); later, done runs
     * exactly once from complete() or flush().
     * conversation_mark_read raises the agents' (or the visitor's) read mark to up_to, never
     * lowering it and never past the conversation's newest message; KF_ENOTFOUND (in the result)
     * for an unknown conversation. */
    int (*conversation_mark_read)(kf_store_t *store, int64_t conversation_id, kf_sender_t reader,
                                  int64_t up_to, kf_store_done_cb done, void *ctx);
    /* Appends a message and moves the conversation's updated_at. conversation_id 0 with a visitor
     * message means the visitor's open conversation (the newest), opened when there is none:
     * result->conversation_opened tells. KF_ENOTFOUND for an unknown conversation or visitor;
     * KF_EINVAL at once for a bad sender, an agent message without an agent, or a visitor
     * message that names one, and in the result for an unknown agent. */
    int (*message_add)(kf_store_t *store, int64_t conversation_id, int64_t visitor_id,
                       kf_sender_t sender, int64_t agent_id, const char *body, int64_t now,
                       kf_store_done_cb done, void *ctx);
    /* Runs the done callbacks of the batched writes that have finished, in the order they were
     * queued. Cheap when none has. */
    void (*complete)(kf_store_t *store);
    /* Waits until every write queued so far has finished, then runs complete(). */
    void (*flush)(kf_store_t *store);
    /* notify(data) is called, from the writer's thread, whenever complete() has work: an event
     * loop wakes itself (uv_async_send) and calls complete(). NULL: nobody is told; call flush. */
    void (*set_notify)(kf_store_t *store, void (*notify)(void *data), void *data);
    /* Messages with id > after_id, oldest first, at most limit, of: one conversation
     * (messages_in_conversation), every conversation of one visitor (messages_of_visitor),
     * or every conversation (messages_all). */
    int (*messages_in_conversation)(kf_store_t *store, int64_t conversation_id, int64_t after_id,
                                    size_t limit, kf_store_message_cb cb, void *ctx);
    int (*messages_of_visitor)(kf_store_t *store, int64_t visitor_id, int64_t after_id,
                               size_t limit, kf_store_message_cb cb, void *ctx);
    int (*messages_all)(kf_store_t *store, int64_t after_id, size_t limit, kf_store_message_cb cb,
                        void *ctx);
    /* The visitor's newest open conversation, without creating one; KF_ENOTFOUND when none. */
    int (*conversation_find_open)(kf_store_t *store, int64_t visitor_id,
                                  int64_t *conversation_id_out);

} kf_store_ops_t;

/* Every backend's handle starts with this. */
struct kf_store {
    const kf_store_ops_t *ops;
};

/* Opens (creating if needed) the SQLite database at path: WAL mode, foreign keys on,
 * synchronous=FULL unless synchronous is "NORMAL" or "OFF" (NULL means FULL), schema created or
 * migrated (a schema_version setting). Returns 0 and *out, or KF_ESTORE / KF_EINVAL. */
int kf_store_open_sqlite(const char *path, const char *synchronous, kf_store_t **out);
/* The SQLite store's WAL pages after which it checkpoints (16,000 unless set). The log file
 * grows to about 4 KiB a page, and to two to four times as many pages while the writer outruns
 * the checkpoints; tests set a small one. KF_EINVAL for another backend or pages outside 1 to 2^24.
 */
int kf_store_sqlite_set_checkpoint_pages(kf_store_t *store, int pages);

/* What a synchronous batched write came to (kf_store_*_sync). */
typedef struct kf_store_sync {
    int rc;
    int64_t message_id;
    int64_t conversation_id;
    bool conversation_opened;
} kf_store_sync_t;

static inline void kf_store_sync_cb(void *ctx, const kf_store_result_t *result)
{
    kf_store_sync_t *sync = (kf_store_sync_t *)ctx;
    sync->rc = result->rc;
    sync->message_id = result->rc == 0 ? result->message.id : 0;
    sync->conversation_id = result->rc == 0 ? result->message.conversation_id : 0;
    sync->conversation_opened = result->conversation_opened;
}

/* message_add, waiting for its commit: for start-up, tools and tests, never on the event loop
 * (flush also runs every other finished write's callback). Returns the write's result code;
 * *out (may be NULL) gets the rest. */
static inline int kf_store_message_add_sync(kf_store_t *store, int64_t conversation_id,
                                            int64_t visitor_id, kf_sender_t sender,
                                            int64_t agent_id, const char *body, int64_t now,
                                            kf_store_sync_t *out)
{
    kf_store_sync_t sync = {0, 0, 0, false};
    int rc = store->ops->message_add(store, conversation_id, visitor_id, sender, agent_id, body,
                                     now, kf_store_sync_cb, &sync);
    if (rc == 0) {
        store->ops->flush(store);
        rc = sync.rc;
    }
    if (out != NULL)
        *out = sync;
    return rc;
}

/* conversation_mark_read, waiting for its commit (as kf_store_message_add_sync). */
static inline int kf_store_mark_read_sync(kf_store_t *store, int64_t conversation_id,
                                          kf_sender_t reader, int64_t up_to)
{
    kf_store_sync_t sync = {0, 0, 0, false};
    int rc = store->ops->conversation_mark_read(store, conversation_id, reader, up_to,
                                                kf_store_sync_cb, &sync);
    if (rc == 0) {
        store->ops->flush(store);
        rc = sync.rc;
    }
    return rc;
}

static inline void kf_store_close(kf_store_t *store)
{
    if (store != NULL)
        store->ops->close(store);
}

#endif
