/* sync.h: blocking wrappers of the store's operations, for start-up, command-line tools and tests
 * only. Each queues its operation, waits for it with flush() and copies out what its caller needs
 * from the borrowed result. Never call them on a serving event loop: flush blocks the thread for
 * a commit's sync (with a networked backend, for round trips too) and runs every other callback
 * that is ready meanwhile, and never from inside one of the store's callbacks.
 *
 * Each returns the operation's result code (0, KF_ENOTFOUND, KF_EEXISTS, ...; see store.h), or
 * the code it refused its arguments with. Out-parameters are filled only on success, and may be
 * NULL when the caller does not want them. */
#ifndef KF_STORE_SYNC_H
#define KF_STORE_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* What message_add came to. */
typedef struct kf_store_sync_message {
    int64_t id;
    int64_t conversation_id;
    int64_t visitor_id;
    bool conversation_opened;
    bool duplicate;
} kf_store_sync_message_t;

/* value_out gets a NUL-terminated copy of at most value_size - 1 bytes; KF_ETOOBIG if it does
 * not fit. */
int kf_store_sync_setting_get(kf_store_t *store, const char *key, char *value_out,
                              size_t value_size);
int kf_store_sync_setting_set(kf_store_t *store, const char *key, const char *value);
int kf_store_sync_agent_create(kf_store_t *store, const char *email, const char *name,
                               const char *role, const char *password_hash, int64_t now,
                               int64_t *id_out);
int kf_store_sync_agent_count(kf_store_t *store, int64_t *count_out);
/* The newest message's id, 0 when there is none. */
int kf_store_sync_message_newest(kf_store_t *store, int64_t *id_out);
/* The id of the agent with this e-mail. */
int kf_store_sync_agent_by_email(kf_store_t *store, const char *email, int64_t *id_out);
int kf_store_sync_visitor_create(kf_store_t *store, const char *token_hash, const char *name,
                                 int64_t now, int64_t *id_out);
int kf_store_sync_session_create(kf_store_t *store, const char *token_hash, int64_t agent_id,
                                 const char *csrf, int64_t now, int64_t expires_at);
/* The session's agent, and its CSRF token copied into csrf_out (KF_ETOOBIG if it does not fit). */
int kf_store_sync_session_get(kf_store_t *store, const char *token_hash, int64_t now,
                              int64_t *agent_id_out, char *csrf_out, size_t csrf_size);
int kf_store_sync_session_delete(kf_store_t *store, const char *token_hash);
int kf_store_sync_message_add(kf_store_t *store, const kf_message_new_t *message,
                              kf_store_sync_message_t *out);
int kf_store_sync_mark_read(kf_store_t *store, int64_t conversation_id, kf_sender_t reader,
                            int64_t up_to);
/* A status other than "snoozed" (which needs its end: use the operation). */
int kf_store_sync_set_status(kf_store_t *store, int64_t conversation_id, const char *status,
                             int64_t now);

#endif
