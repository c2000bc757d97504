/* webhooks.h: outgoing webhooks (docs/API.md, "Webhooks"): events go into the store as pending
 * deliveries, one per subscribed webhook, so that a restart resumes them; a dispatcher on the
 * loop sends them with libcurl's multi interface driven by libuv (no thread, no blocking call),
 * each signed with its webhook's secret, and retries a failure with exponential backoff for up
 * to a day. Addresses that are private, loopback or link-local are refused once DNS has
 * resolved them (a name that resolves to 127.0.0.1 too) unless the server allows them. Loop
 * thread only, but for the pure functions. */
#ifndef KF_CHAT_WEBHOOKS_H
#define KF_CHAT_WEBHOOKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "store/store.h"

/* "sha256=" and 64 hex digits, plus NUL. */
#define KF_WEBHOOK_SIGNATURE_SIZE 72
/* How long a delivery is retried for, from its event. */
#define KF_WEBHOOK_RETRY_FOR_MS (24LL * 3600 * 1000)
/* The first retry's wait; each next one doubles, up to KF_WEBHOOK_RETRY_MAX_MS. */
#define KF_WEBHOOK_RETRY_BASE_MS 30000
#define KF_WEBHOOK_RETRY_MAX_MS (3600LL * 1000)

/* The events a webhook may take, NULL-terminated. */
extern const char *const kf_webhook_events[];
bool kf_webhook_event_known(const char *name);

/* X-Kefu-Signature's value: "sha256=" and the hex HMAC-SHA256, under secret, of the timestamp
 * (X-Kefu-Timestamp's decimal text), ".", and the body. Returns 0 or KF_EIO. */
int kf_webhook_sign(const char *secret, const char *timestamp, const char *body, size_t body_len,
                    char out[KF_WEBHOOK_SIGNATURE_SIZE]);
/* When a delivery whose event came at created_at is tried next, after its attempts-th attempt
 * failed at now: base_ms * 2^(attempts - 1), capped at KF_WEBHOOK_RETRY_MAX_MS; or 0 (give up)
 * when that would be past KF_WEBHOOK_RETRY_FOR_MS after created_at. */
int64_t kf_webhook_next_at(int64_t created_at, int64_t now, int64_t attempts, int64_t base_ms);
/* Whether a webhook may connect to addr: false for private, loopback, link-local, shared,
 * multicast, reserved and unspecified addresses (IPv4-mapped IPv6 ones as their IPv4). */
bool kf_webhook_address_public(const struct sockaddr *addr);

typedef struct kf_webhooks kf_webhooks_t;

/* The dispatcher, on loop, over store (borrowed: it outlives the dispatcher). allow_private
 * lets it call any address. NULL when libcurl cannot start. */
kf_webhooks_t *kf_webhooks_new(uv_loop_t *loop, kf_store_t *store, bool allow_private);
/* Stops every transfer (an unfinished one is tried again after a restart) and frees it; its
 * handles close on the loop's next turn. */
void kf_webhooks_free(kf_webhooks_t *webhooks);
/* The first retry's wait (tests make it short). */
void kf_webhooks_set_retry_base(kf_webhooks_t *webhooks, int64_t base_ms);
/* An event for the webhooks that take it: {event, created_at, data} is stored as a pending
 * delivery for each, and sent as soon as it is committed; nothing when none takes it. Takes the
 * reference to data. */
void kf_webhooks_emit(kf_webhooks_t *webhooks, const char *event, json_t *data);
/* Whether this dispatcher sends the deliveries that are due (true from the start). With several
 * loops in one process one sends and the others only queue (kf_webhooks_emit): two senders would
 * send each delivery twice. */
void kf_webhooks_set_sender(kf_webhooks_t *webhooks, bool sender);
/* The webhooks changed (one added or deleted): reads which events they take again, and looks
 * for deliveries that are due now. */
void kf_webhooks_kick(kf_webhooks_t *webhooks);
/* Whether some webhook takes event, as far as the dispatcher knows (it reads the list each
 * second; a change made on another node shows within that). False for NULL. */
bool kf_webhooks_wants(const kf_webhooks_t *webhooks, const char *event);

#endif
