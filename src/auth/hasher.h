/* hasher.h: password hashing off the event loop. scrypt is slow and memory-hard by design (tens
 * of milliseconds and 32 MiB a hash at kefu's parameters); on the loop, 40 failed logins made
 * every other request wait seconds. Here a hash runs on libuv's worker threads (uv_queue_work):
 * at most max_running at once, so logins never take all the workers or more than max_running
 * times 32 MiB, and at most max_queued waiting, so a flood of logins is refused at once (the
 * caller answers 503) instead of queueing without end. Loop thread only. */
#ifndef KF_AUTH_HASHER_H
#define KF_AUTH_HASHER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "auth/auth.h"

typedef struct kf_hasher kf_hasher_t;

/* The end of a verify: match says whether the password fits the encoded hash. */
typedef void (*kf_hasher_verify_cb)(void *data, bool match);
/* The end of a hash: rc 0 and encoded (borrowed for the call), or the KF_E* code of
 * kf_auth_password_hash and encoded NULL. */
typedef void (*kf_hasher_hash_cb)(void *data, int rc, const char *encoded);

/* A hasher on loop; max_running >= 1. */
kf_hasher_t *kf_hasher_new(uv_loop_t *loop, size_t max_running, size_t max_queued);
/* Checks password against encoded (kf_auth_password_verify) on a worker thread; cb runs later on
 * the loop, exactly once, never from inside this call. Both strings are copied (the copy of the
 * password is wiped after use). Returns 0, or KF_ELIMIT when max_queued hashes already wait: cb
 * never runs then. */
int kf_hasher_verify(kf_hasher_t *hasher, const char *password, const char *encoded,
                     kf_hasher_verify_cb cb, void *data);
/* Hashes password (kf_auth_password_hash) on a worker thread; as kf_hasher_verify. */
int kf_hasher_hash(kf_hasher_t *hasher, const char *password, kf_hasher_hash_cb cb, void *data);
/* Hashes running and waiting now. */
size_t kf_hasher_pending(const kf_hasher_t *hasher);
/* Frees the hasher. What waits is dropped without its callback; what runs on a worker finishes
 * there (libuv cannot stop it) and its callback is not called: the memory goes when it ends, so
 * the loop must run until then (uv_run does: a running job keeps it alive). */
void kf_hasher_free(kf_hasher_t *hasher);

#endif
