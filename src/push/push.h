/* push.h: serves push requests (poll, long poll, forever iframe) from a replay source and the hub.
 * The caller (the chat layer) authorises the request and says which topic to follow and how to
 * replay stored events after a cursor; this module knows nothing of chat. */
#ifndef KF_PUSH_H
#define KF_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/server.h"
#include "push/hub.h"

typedef enum { KF_PUSH_POLL, KF_PUSH_LONGPOLL, KF_PUSH_IFRAME } kf_push_transport_t;

/* Receives one replayed event (borrowed: take a reference to keep it). Non-zero stops replay. */
typedef int (*kf_push_emit_fn)(void *emit_ctx, kf_event_t *event);

typedef struct kf_push_source {
    const char *topic; /* hub topic to follow after the replay */
    /* Calls emit for each stored event with id > after, oldest first, at most limit; sets *more
     * when there are further ones. Returns 0 or a KF_E* code. Only called during kf_push_serve. */
    int (*replay)(void *ctx, uint64_t after, size_t limit, kf_push_emit_fn emit, void *emit_ctx,
                  bool *more);
    void *ctx;
} kf_push_source_t;

typedef struct kf_push_config {
    uint64_t longpoll_hold_ms;   /* default hold of a long poll (25 s) */
    uint64_t heartbeat_ms;       /* streaming heartbeat interval (20 s) */
    size_t iframe_max_bytes;     /* an iframe stream ends (reconnect event) after this (1 MiB) */
    size_t replay_batch;         /* events per replay call (500) */
} kf_push_config_t;

typedef struct kf_push kf_push_t;

void kf_push_config_default(kf_push_config_t *config);
kf_push_t *kf_push_new(uv_loop_t *loop, kf_hub_t *hub, const kf_push_config_t *config);
/* Answers (or holds, or streams) req over transport, starting after the cursor. hold_ms is the
 * long poll's hold (0 for the default). On a replay failure it answers 500. */
void kf_push_serve(kf_push_t *push, kf_req_t *req, kf_push_transport_t transport,
                   const kf_push_source_t *source, uint64_t after, uint64_t hold_ms);
/* For shutdown: answers every held long poll (with no events) and ends every stream with a
 * reconnect event, so that clients come back to the restarted server with their cursors. */
void kf_push_drain(kf_push_t *push);
/* Clients held or streaming now. */
size_t kf_push_client_count(const kf_push_t *push);
/* Frees the module after kf_push_drain; done_cb runs when its timer handle is closed. */
void kf_push_free(kf_push_t *push);

#endif
