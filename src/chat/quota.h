/* quota.h: push connections per listener. A visitor or an agent may hold at most so many long
 * polls, streams and WebSockets open at once (--max-push-per-visitor, --max-push-per-agent), so
 * that no one holds an unbounded share of the server's connections; past it the new one is
 * refused, not an old one dropped (the old ones may be the person's other tabs). Any loop
 * thread: the loops of one process share one table (a lock), and a request is checked and counted
 * in one step (kf_quota_take), before its answer goes out: a client that opens its next stream as
 * soon as the last one answered, on another loop, finds the last one counted. */
#ifndef KF_CHAT_QUOTA_H
#define KF_CHAT_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "http/server.h"

typedef struct kf_quota kf_quota_t;

/* At most per_visitor and per_agent connections at once; 0 for no limit. */
kf_quota_t *kf_quota_new(size_t per_visitor, size_t per_agent);
/* Frees the table; every counted request has ended by then (the server closed them). */
void kf_quota_free(kf_quota_t *quota);
/* Whether the listener (kind 'v' or 'a', and id) may open one more (*open gets how many it
 * holds), and if so counts req against it until the request ends: called before the request is
 * served, so that it is counted before its answer can reach the client; one the serve answers at
 * once ends, and is uncounted, there. Counted with no limit too. A request already ended is not
 * counted (true all the same). */
bool kf_quota_take(kf_quota_t *quota, kf_req_t *req, char kind, int64_t subject, size_t *open);
/* How many the listener holds open now (counted whatever the limit). */
size_t kf_quota_open(const kf_quota_t *quota, char kind, int64_t subject);
/* ---- across nodes ----
 * With a Redis bus, each node counts its connections per listener in Redis too (kf_bus_count,
 * live nodes only: a crashed node's go with its heartbeat), and the quota is checked against
 * this node's count plus the others' as Redis last answered. Every open and close here brings
 * a new answer; for a listener with no recent answer, the caller reads one first
 * (kf_quota_fetch: one Redis round trip, on that listener's first connection here). */

/* Shares the counts through bus (NULL: stops; before the bus is freed). */
void kf_quota_share(kf_quota_t *quota, kf_bus_t *bus);
/* Whether kf_quota_take knows the other nodes' count of the listener: nothing is shared (or
 * the bus is down: local counts only), no limit applies, or a recent answer is held. */
bool kf_quota_known(const kf_quota_t *quota, char kind, int64_t subject);
/* closing: sharing was stopped meanwhile (kf_quota_share NULL: the application is going), and
 * the caller should not serve what waited. */
typedef void (*kf_quota_fetched_fn)(void *data, bool closing);
/* Asks Redis for the other nodes' count of the listener; fetched runs exactly once, when the
 * answer is in (or the connection went), on the loop, never from inside this call. Returns 0, or
 * KF_EUNAVAIL (not shared, the bus down: fetched never runs). */
int kf_quota_fetch(kf_quota_t *quota, char kind, int64_t subject, kf_quota_fetched_fn fetched,
                   void *data);
/* The bus is (back) up with a new session (kf_bus_count's live_only): counts every listener's
 * open connections there again. */
void kf_quota_shared_again(kf_quota_t *quota);
/* Drops other nodes' counts no longer fresh (a coarse timer calls it). */
void kf_quota_sweep(kf_quota_t *quota);
/* Listeners with connections open now. */
size_t kf_quota_listeners(const kf_quota_t *quota);

#endif
