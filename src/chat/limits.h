/* limits.h: the chat layer's abuse limits (docs/SECURITY.md, "Abuse limits"), each a table of
 * token buckets (auth/limit.h): failed logins per account and per client address, and per visitor
 * their requests, their messages and new visitor sessions per client address. A limit set to 0
 * in the configuration is off. Any loop thread: the loops of one process share one set (a lock);
 * times are kf_clock_mono_ms. */
#ifndef KF_CHAT_LIMITS_H
#define KF_CHAT_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"
#include "chat/app.h"

/* The longest part of a key the shared counters name (an e-mail is at most 254 bytes). */
#define KF_LIMITS_MAX_KEY 320

typedef struct kf_limits kf_limits_t;

/* The limits config asks for; NULL when a rate or burst is out of range. */
kf_limits_t *kf_limits_new(const kf_app_config_t *config);
void kf_limits_free(kf_limits_t *limits);
/* Shares every use with the other nodes through bus (kf_bus_count; a bus that cannot share is
 * harmless): each use is also counted in Redis, and the other nodes' uses there are charged to
 * the local buckets as the answers come, so N nodes hold about one budget, not N
 * (docs/SECURITY.md, "Across nodes"). Nothing waits for Redis. bus outlives limits' use of it. */
void kf_limits_share(kf_limits_t *limits, kf_bus_t *bus);
/* Uses counted in Redis, and other nodes' uses charged here, since the start (/metrics). */
void kf_limits_stats(const kf_limits_t *limits, uint64_t *shared, uint64_t *merged);
/* Drops buckets that have been full for a while (a coarse timer calls it). */
void kf_limits_sweep(kf_limits_t *limits);

/* Each takes one token for its key, and is false when there was none: *retry_after_ms (>= 1)
 * says how long until there is. address is a client address key (kf_req_peer_key). */
bool kf_limits_visitor_request(kf_limits_t *limits, int64_t visitor_id, int64_t *retry_after_ms);
bool kf_limits_visitor_message(kf_limits_t *limits, int64_t visitor_id, int64_t *retry_after_ms);
/* Page reports: 30 a minute, bursts of 20, while the visitor request limit is on. */
bool kf_limits_visitor_page(kf_limits_t *limits, int64_t visitor_id, int64_t *retry_after_ms);
bool kf_limits_new_visitor(kf_limits_t *limits, const char *address, int64_t *retry_after_ms);

/* Whether a login for email from address may try (a refused one costs no password hash); false
 * with the longer of the two waits. Looks, takes nothing. */
bool kf_limits_login_allowed(kf_limits_t *limits, const char *email, const char *address,
                             int64_t *retry_after_ms);
/* A failed login: charged to the account and the address, each lock-out longer than the last. */
void kf_limits_login_failed(kf_limits_t *limits, const char *email, const char *address);
/* A login that succeeded: the account's failures are forgotten (the address's are not), here and
 * in Redis; the caller tells the other nodes (kf_nodes_tell_login). */
void kf_limits_login_succeeded(kf_limits_t *limits, const char *email);
/* The same told by another node: forgotten here only. */
void kf_limits_login_succeeded_elsewhere(kf_limits_t *limits, const char *email);

/* A wait in whole seconds, rounded up (for Retry-After). */
int64_t kf_limits_seconds(int64_t retry_after_ms);

#endif
