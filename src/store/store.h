/* store.h: the storage interface. The chat layer talks to kf_store_t only; a backend (sqlite.c
 * now, pg.c later) fills in kf_store_ops_t. The store knows rows, not HTTP or JSON.
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
 * - group commit: the batched writes (message_add, conversation_open_for_visitor,
 *   conversation_mark_read) are durable only after the next commit() returns 0. The caller
 *   neither acknowledges nor publishes them before that. An operation that reads messages or
 *   conversations, and every other write, commits the open batch first, so nothing shown to
 *   anyone can be undone by a failed commit. */
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
    const char *password_hash; /* encoded scrypt hash (auth/password.h) */
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
    int64_t visitor_id;       /* the conversation's visitor */
    kf_sender_t sender;
    int64_t agent_id;         /* the agent who wrote it; 0 when sender is the visitor */
    const char *agent_name;   /* that agent's display name, "" for visitor messages */
    const char *body;
    int64_t created_at;
} kf_message_t;

typedef struct kf_conversation {
    int64_t id;
    int64_t visitor_id;
    const char *visitor_name;   /* "" when the visitor gave none */
    const char *status;         /* "open" or "closed" */
    int64_t created_at;
    int64_t updated_at;         /* time of the last message, or created_at */
    int64_t agent_read_up_to;   /* highest message id the agents have marked read */
    int64_t visitor_read_up_to; /* highest message id the visitor has marked read */
    int64_t unread_for_agents;  /* visitor messages with id > agent_read_up_to */
    int64_t unread_for_visitor; /* agent messages with id > visitor_read_up_to */
    bool has_last_message;
    kf_message_t last_message;  /* valid when has_last_message */
} kf_conversation_t;

typedef int (*kf_store_message_cb)(void *ctx, const kf_message_t *message);
typedef int (*kf_store_conversation_cb)(void *ctx, const kf_conversation_t *conversation);
typedef int (*kf_store_agent_cb)(void *ctx, const kf_agent_t *agent);

typedef struct kf_store kf_store_t;

typedef struct kf_store_ops {
    void (*close)(kf_store_t *store);

    /* Key-value settings (server secrets and the like). value_out gets a NUL-terminated copy of
     * at most value_size - 1 bytes; KF_ENOTFOUND when the key is absent, KF_ETOOBIG if too small. */
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
     * session, else fills agent_id_out and copies the CSRF token (NUL-terminated) into csrf_out. */
    int (*session_create)(kf_store_t *store, const char *token_hash, int64_t agent_id,
                          const char *csrf, int64_t now, int64_t expires_at);
    int (*session_get)(kf_store_t *store, const char *token_hash, int64_t now, int64_t *agent_id_out,
                       char *csrf_out, size_t csrf_size);
    int (*session_delete)(kf_store_t *store, const char *token_hash);

    /* Visitors, keyed by the SHA-256 (hex) of their bearer token. visitor_by_token fills id and
     * copies the name (NUL-terminated) into name_out; KF_ENOTFOUND for an unknown token. */
    int (*visitor_create)(kf_store_t *store, const char *token_hash, const char *name, int64_t now,
                          int64_t *id_out);
    int (*visitor_by_token)(kf_store_t *store, const char *token_hash, int64_t *id_out,
                            char *name_out, size_t name_size);

    /* Returns the visitor's open conversation, creating one (status "open") when there is none.
     * Batched. */
    int (*conversation_open_for_visitor)(kf_store_t *store, int64_t visitor_id, int64_t now,
                                         int64_t *conversation_id_out);
    /* Calls cb once with the conversation (unread counts and last message filled in). */
    int (*conversation_get)(kf_store_t *store, int64_t conversation_id, kf_store_conversation_cb cb,
                            void *ctx);
    /* Conversations ordered by updated_at descending (then id descending), at most limit. */
    int (*conversation_list)(kf_store_t *store, size_t limit, kf_store_conversation_cb cb, void *ctx);
    /* Sets status to "open" or "closed"; KF_ENOTFOUND for an unknown conversation. */
    int (*conversation_set_status)(kf_store_t *store, int64_t conversation_id, const char *status,
                                   int64_t now);
    /* Raises the agents' (or the visitor's) read mark to up_to; never lowers it. Batched. */
    int (*conversation_mark_read)(kf_store_t *store, int64_t conversation_id, kf_sender_t reader,
                                  int64_t up_to);

    /* Appends a message (batched: durable at the next commit) and calls cb once with its row
     * (id assigned). Also updates the conversation's updated_at. KF_ENOTFOUND for an unknown
     * conversation. */
    int (*message_add)(kf_store_t *store, int64_t conversation_id, kf_sender_t sender,
                       int64_t agent_id, const char *body, int64_t now, kf_store_message_cb cb,
                       void *ctx);
    /* Messages with id > after_id, oldest first, at most limit, of: one conversation
     * (messages_in_conversation), every conversation of one visitor (messages_of_visitor),
     * or every conversation (messages_all). */
    int (*messages_in_conversation)(kf_store_t *store, int64_t conversation_id, int64_t after_id,
                                    size_t limit, kf_store_message_cb cb, void *ctx);
    int (*messages_of_visitor)(kf_store_t *store, int64_t visitor_id, int64_t after_id, size_t limit,
                               kf_store_message_cb cb, void *ctx);
    int (*messages_all)(kf_store_t *store, int64_t after_id, size_t limit, kf_store_message_cb cb,
                        void *ctx);
    /* The visitor's newest open conversation, without creating one; KF_ENOTFOUND when none. */
    int (*conversation_find_open)(kf_store_t *store, int64_t visitor_id,
                                  int64_t *conversation_id_out);

    /* Makes every batched write since the last call durable (one transaction, one sync).
     * Returns 0, or an error when some of them are not stored: their callers must be told they
     * failed. Cheap when nothing is pending. */
    int (*commit)(kf_store_t *store);
} kf_store_ops_t;

/* Every backend's handle starts with this. */
struct kf_store {
    const kf_store_ops_t *ops;
};

/* Opens (creating if needed) the SQLite database at path: WAL mode, foreign keys on,
 * synchronous=FULL unless synchronous is "NORMAL" or "OFF" (NULL means FULL), schema created or
 * migrated (a schema_version setting). Returns 0 and *out, or KF_ESTORE / KF_EINVAL. */
int kf_store_open_sqlite(const char *path, const char *synchronous, kf_store_t **out);

static inline void kf_store_close(kf_store_t *store)
{
    if (store != NULL)
        store->ops->close(store);
}

#endif
