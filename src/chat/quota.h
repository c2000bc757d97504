/* quota.h: push connections per listener. A visitor or an agent may hold at most so many long
 * polls, streams and WebSockets open at once (--max-push-per-visitor, --max-push-per-agent), so
 * that no one holds an unbounded share of the server's connections; past it the new one is
 * refused, not an old one dropped (the old ones may be the person's other tabs). Any loop
 * thread: the loops of one process share one table (a lock); a check and the count after it are
 * two steps, so loops admitting one person at the same instant may pass the limit by one each. */
#ifndef KF_CHAT_QUOTA_H
#define KF_CHAT_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/server.h"

typedef struct kf_quota kf_quota_t;

/* At most per_visitor and per_agent connections at once; 0 for no limit. */
kf_quota_t *kf_quota_new(size_t per_visitor, size_t per_agent);
/* Frees the table; every counted request has ended by then (the server closed them). */
void kf_quota_free(kf_quota_t *quota);
/* Whether the listener (kind 'v' or 'a', and id) may open one more; *open gets how many are. */
bool kf_quota_allows(const kf_quota_t *quota, char kind, int64_t subject, size_t *open);
/* Counts req against its listener until it ends, if it stays open (held, streaming, upgraded);
 * a request already answered is not counted. Counted with no limit too. */
void kf_quota_count(kf_quota_t *quota, kf_req_t *req, char kind, int64_t subject);
/* How many the listener holds open now (counted whatever the limit). */
size_t kf_quota_open(const kf_quota_t *quota, char kind, int64_t subject);
/* Listeners with connections open now. */
size_t kf_quota_listeners(const kf_quota_t *quota);

#endif
