/* limit.h: in-memory rate limits keyed by a string (an address, an e-mail, a visitor id): a token
 * bucket per key, in a hash table whose idle entries are swept. Single-threaded; no I/O. */
#ifndef KF_AUTH_LIMIT_H
#define KF_AUTH_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kf_limit kf_limit_t;

/* A bucket holds at most burst tokens and refills at `per_minute` tokens a minute (fractions
 * count). Each key starts full. max_keys bounds memory: when the table is full, the stalest key is
 * dropped to make room (never refusing a new key). */
kf_limit_t *kf_limit_new(double per_minute, double burst, size_t max_keys);
void kf_limit_free(kf_limit_t *limit);

/* Takes one token for key at time now_ms. Returns true when one was available. When not, and
 * retry_after_ms != NULL, sets it to the wait until the next token (>= 1). */
bool kf_limit_take(kf_limit_t *limit, const char *key, int64_t now_ms, int64_t *retry_after_ms);
/* Charges key one token for a failure, even when it has none, with a growing delay: once the
 * bucket is empty, each further charge before it has refilled doubles the wait (1, 2, 4 ... refill
 * periods, up to 256) by putting the bucket into debt. A bucket that refills to full forgets the
 * past failures. Sets *retry_after_ms (when not NULL) to the wait when the bucket is now empty
 * (untouched otherwise). For failed logins, checked before each try with kf_limit_check. */
void kf_limit_charge(kf_limit_t *limit, const char *key, int64_t now_ms, int64_t *retry_after_ms);
/* Like take, but does not consume: true when a token is available now. */
bool kf_limit_check(kf_limit_t *limit, const char *key, int64_t now_ms, int64_t *retry_after_ms);
/* Forgets key (e.g. after a successful login). */
void kf_limit_reset(kf_limit_t *limit, const char *key);
/* Drops keys whose bucket has been full again for a while (idle); returns how many. Call from a
 * coarse timer. */
size_t kf_limit_sweep(kf_limit_t *limit, int64_t now_ms);
/* ---- across nodes (chat/limits.c shares the uses through the bus) ----
 * Each node keeps its own buckets and also counts every use in a counter the nodes share, one per
 * key and window; the answer (the other nodes' uses in that window) is merged into the local
 * bucket as if they had been made here. So each node's bucket approximates the one bucket of
 * the whole cluster, behind by the time an answer takes (docs/SECURITY.md, "Across nodes"). */

/* The window uses are shared in: the time an empty bucket takes to fill (burst / per_minute),
 * from 1 s to 7 days. */
int64_t kf_limit_window_ms(const kf_limit_t *limit);
/* The window wall_ms (kf_clock_wall_ms: the nodes share it) falls in: floor(wall_ms /
 * window_ms). */
int64_t kf_limit_slot(int64_t window_ms, int64_t wall_ms);
/* The merge's arithmetic: others is the other nodes' total in window slot; *seen_slot and *seen
 * what was merged before. Returns the uses not merged yet (>= 0) and moves *seen_slot and *seen
 * on. An answer about an older window is ignored; a total below what was seen starts again
 * from it (the counter was lost). */
int64_t kf_limit_news(int64_t *seen_slot, int64_t *seen, int64_t slot, int64_t others);
/* Charges key's bucket with the other nodes' uses it has not seen yet (kf_limit_news): as
 * failures (kf_limit_charge's growing lock-out) or as takes (never below empty). A key not held
 * is added. Returns how many were charged. A key swept meanwhile forgets what it had merged: it
 * is charged the whole window's again (errs towards refusing, within one window). */
int64_t kf_limit_merge(kf_limit_t *limit, const char *key, int64_t slot, int64_t others,
                       int64_t now_ms, bool as_failures);
/* Keys held now. */
size_t kf_limit_count(const kf_limit_t *limit);

#endif
