/* limit.c: token buckets keyed by strings, in the one hash table (base/map.h, SipHash with a
 * secret key: keys come from clients), with an LRU list that bounds the keys held and a sweep that
 * drops idle ones. */
#include "auth/limit.h"

#include "base/buf.h"
#include "base/list.h"
#include "base/map.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One key's bucket. Its memory never moves while it is in the table. */
struct entry {
    kf_map_node_t node;  /* in limit->table */
    kf_list_t lru;       /* in limit->lru: the front is the most recently used */
    size_t key_len;      /* bytes of key */
    double tokens;       /* tokens at updated_ms, at most burst; below 0 only as the debt of
                          * kf_limit_charge */
    int64_t updated_ms;  /* latest time seen for this key; never moves backwards */
    unsigned strikes;    /* kf_limit_charge: times the bucket was emptied since it was last full */
    int64_t remote_slot; /* kf_limit_merge: the window remote_seen is of */
    int64_t remote_seen; /* ... and the other nodes' uses in it charged here already */
    char key[];          /* a copy of the key, NUL-terminated */
};

struct kf_limit {
    double per_minute; /* refill rate, > 0 and finite */
    double burst;      /* bucket size, >= 1 and finite */
    size_t max_keys;   /* most entries held at once, >= 1 */
    kf_map_t table;    /* key -> entry */
    kf_list_t lru;     /* every entry, most recently taken from first; the last goes first */
};

/* Token amounts within this of a whole token count as reaching it, so that rounding in the refill
 * arithmetic never makes a caller who waited exactly retry_after_ms wait one more millisecond. */
#define TOKEN_EPSILON 1e-9

#define MS_PER_MINUTE 60000.0

/* ---- the table ---- */

static struct entry *entry_of_node(kf_map_node_t *node)
{
    return KF_CONTAINER_OF(node, struct entry, node);
}

static struct entry *entry_of_lru(kf_list_t *link)
{
    return KF_CONTAINER_OF(link, struct entry, lru);
}

static bool entry_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    const struct entry *entry = KF_CONTAINER_OF(node, struct entry, node);
    return entry->key_len == len && memcmp(entry->key, key, len) == 0;
}

kf_limit_t *kf_limit_new(double per_minute, double burst, size_t max_keys)
{
    /* Written so that NaN fails too. */
    if (!(per_minute > 0) || !isfinite(per_minute) || !(burst >= 1) || !isfinite(burst) ||
        max_keys == 0)
        return NULL;
    kf_limit_t *limit = kf_xmalloc(sizeof *limit);
    limit->per_minute = per_minute;
    limit->burst = burst;
    limit->max_keys = max_keys;
    kf_map_init(&limit->table);
    kf_list_init(&limit->lru);
    return limit;
}

void kf_limit_free(kf_limit_t *limit)
{
    if (limit == NULL)
        return;
    KF_LIST_FOREACH(it, next, &limit->lru) {
        free(entry_of_lru(it));
    }
    kf_map_free(&limit->table);
    free(limit);
}

static struct entry *find(const kf_limit_t *limit, const char *key, size_t len)
{
    kf_map_node_t *node =
        kf_map_find(&limit->table, kf_map_hash(&limit->table, key, len), key, len, entry_eq);
    return node != NULL ? entry_of_node(node) : NULL;
}

/* Takes entry out of the table and the LRU list and frees it. */
static void remove_entry(kf_limit_t *limit, struct entry *entry)
{
    kf_map_remove(&limit->table, &entry->node);
    kf_list_remove(&entry->lru);
    free(entry);
}

/* Adds key (len bytes, not yet in the table) with a full bucket as the newest entry, first evicting
 * the oldest entry when the table holds max_keys. */
static struct entry *add(kf_limit_t *limit, const char *key, size_t len, int64_t now_ms)
{
    if (kf_map_count(&limit->table) >= limit->max_keys)
        remove_entry(limit, entry_of_lru(kf_list_last(&limit->lru)));
    if (len > SIZE_MAX - sizeof(struct entry) - 1)
        abort();
    struct entry *entry = kf_xmalloc(sizeof *entry + len + 1);
    memcpy(entry->key, key, len + 1);
    entry->key_len = len;
    entry->tokens = limit->burst;
    entry->updated_ms = now_ms;
    entry->strikes = 0;
    entry->remote_slot = 0;
    entry->remote_seen = 0;
    kf_map_insert(&limit->table, &entry->node, kf_map_hash(&limit->table, key, len));
    kf_list_push_front(&limit->lru, &entry->lru);
    return entry;
}

/* ---- buckets ---- */

/* The tokens entry holds at now_ms. A now_ms before the entry's last update counts as no time
 * passing, so a clock stepping back neither refills nor corrupts a bucket. */
static double tokens_at(const kf_limit_t *limit, const struct entry *entry, int64_t now_ms)
{
    if (now_ms <= entry->updated_ms)
        return entry->tokens;
    /* The unsigned difference is exact even when the signed one would overflow. */
    double elapsed_ms = (double)((uint64_t)now_ms - (uint64_t)entry->updated_ms);
    double tokens = entry->tokens + elapsed_ms * limit->per_minute / MS_PER_MINUTE;
    return tokens < limit->burst ? tokens : limit->burst;
}

static bool has_token(double tokens)
{
    return tokens >= 1 - TOKEN_EPSILON;
}

/* Milliseconds until a bucket holding tokens (< 1) holds one: ceil((1 - tokens) * 60000 /
 * per_minute), at least 1, at most INT64_MAX. The deficit aims half an epsilon short of a whole
 * token, so that rounding neither turns an exact 1000 ms into 1001 nor leaves the bucket short when
 * the caller comes back after exactly that wait. Rounds up by hand so as not to need libm. */
static int64_t retry_after(const kf_limit_t *limit, double tokens)
{
    double wait_ms = (1 - TOKEN_EPSILON / 2 - tokens) * MS_PER_MINUTE / limit->per_minute;
    if (!(wait_ms > 1))
        return 1;
    if (wait_ms >= 9.2e18)
        return INT64_MAX;
    int64_t whole = (int64_t)wait_ms;
    return (double)whole < wait_ms ? whole + 1 : whole;
}

/* The key's entry, added or refilled to now_ms and made the newest. */
static struct entry *touch(kf_limit_t *limit, const char *key, int64_t now_ms)
{
    size_t len = strlen(key);
    struct entry *entry = find(limit, key, len);
    if (entry == NULL)
        return add(limit, key, len, now_ms);
    /* Refused attempts count as use too: a key being hammered stays held (and empty). */
    entry->tokens = tokens_at(limit, entry, now_ms);
    if (now_ms > entry->updated_ms)
        entry->updated_ms = now_ms;
    kf_list_remove(&entry->lru);
    kf_list_push_front(&limit->lru, &entry->lru);
    return entry;
}

bool kf_limit_take(kf_limit_t *limit, const char *key, int64_t now_ms, int64_t *retry_after_ms)
{
    assert(limit != NULL && key != NULL);
    struct entry *entry = touch(limit, key, now_ms);
    if (has_token(entry->tokens)) {
        entry->tokens = entry->tokens > 1 ? entry->tokens - 1 : 0;
        return true;
    }
    if (retry_after_ms != NULL)
        *retry_after_ms = retry_after(limit, entry->tokens);
    return false;
}

/* Doublings of the wait at most: 2^8 refill periods (for 5 logins per 15 minutes, 12.8 hours). */
#define MAX_STRIKES 8

static void charge_entry(kf_limit_t *limit, struct entry *entry, int64_t *retry_after_ms);

void kf_limit_charge(kf_limit_t *limit, const char *key, int64_t now_ms, int64_t *retry_after_ms)
{
    assert(limit != NULL && key != NULL);
    charge_entry(limit, touch(limit, key, now_ms), retry_after_ms);
}

static void charge_entry(kf_limit_t *limit, struct entry *entry, int64_t *retry_after_ms)
{
    if (entry->tokens >= limit->burst - TOKEN_EPSILON)
        entry->strikes = 0; /* full again: earlier failures are forgiven */
    entry->tokens -= 1;
    if (has_token(entry->tokens))
        return;
    /* Empty: the next try waits one refill period the first time, then 2, 4, 8 ... — the bucket
     * goes into debt by 2^strikes - 1 tokens. */
    if (entry->strikes > 0)
        entry->tokens -= (double)((1u << entry->strikes) - 1);
    if (entry->strikes < MAX_STRIKES)
        entry->strikes++;
    if (retry_after_ms != NULL)
        *retry_after_ms = retry_after(limit, entry->tokens);
}

bool kf_limit_check(kf_limit_t *limit, const char *key, int64_t now_ms, int64_t *retry_after_ms)
{
    assert(limit != NULL && key != NULL);
    const struct entry *entry = find(limit, key, strlen(key));
    /* A pure look: an unknown key is not added (its bucket would be full, and burst >= 1), and a
     * known one is neither refilled in place nor moved in the LRU order. */
    if (entry == NULL)
        return true;
    double tokens = tokens_at(limit, entry, now_ms);
    if (has_token(tokens))
        return true;
    if (retry_after_ms != NULL)
        *retry_after_ms = retry_after(limit, tokens);
    return false;
}

void kf_limit_reset(kf_limit_t *limit, const char *key)
{
    assert(limit != NULL && key != NULL);
    struct entry *entry = find(limit, key, strlen(key));
    if (entry != NULL)
        remove_entry(limit, entry);
}

size_t kf_limit_sweep(kf_limit_t *limit, int64_t now_ms)
{
    assert(limit != NULL);
    /* O(keys held): when a bucket refills is not ordered by last use, so every entry is looked at.
     * Meant for a coarse timer, and max_keys bounds the walk. */
    size_t removed = 0;
    KF_LIST_FOREACH(it, next, &limit->lru) {
        struct entry *entry = entry_of_lru(it);
        if (tokens_at(limit, entry, now_ms) >= limit->burst - TOKEN_EPSILON) {
            remove_entry(limit, entry);
            removed++;
        }
    }
    return removed;
}

int64_t kf_limit_window_ms(const kf_limit_t *limit)
{
    double window_ms = limit->burst * MS_PER_MINUTE / limit->per_minute;
    if (window_ms < 1000)
        return 1000;
    if (window_ms > 7 * 24 * 3600 * 1000.0)
        return 7 * 24 * 3600 * 1000LL;
    return (int64_t)window_ms;
}

int64_t kf_limit_slot(int64_t window_ms, int64_t wall_ms)
{
    assert(window_ms > 0);
    /* Floor division: a clock before 1970 still gives ordered slots. */
    int64_t slot = wall_ms / window_ms;
    return wall_ms % window_ms < 0 ? slot - 1 : slot;
}

int64_t kf_limit_news(int64_t *seen_slot, int64_t *seen, int64_t slot, int64_t others)
{
    if (slot < *seen_slot || others < 0)
        return 0; /* a late answer about a window gone by: its uses have refilled */
    if (slot > *seen_slot) {
        *seen_slot = slot;
        *seen = 0;
    }
    if (others <= *seen) {
        /* Fewer than seen: the counter went (expired early, Redis restarted); start from it. */
        *seen = others;
        return 0;
    }
    int64_t news = others - *seen;
    *seen = others;
    return news;
}

/* Others' charges taken at most per answer, so that a hostile or broken counter cannot make a
 * loop of millions: far past any budget, and MAX_STRIKES caps the debt anyway. */
#define MAX_MERGED 1000

int64_t kf_limit_merge(kf_limit_t *limit, const char *key, int64_t slot, int64_t others,
                       int64_t now_ms, bool as_failures)
{
    assert(limit != NULL && key != NULL);
    struct entry *entry = touch(limit, key, now_ms);
    int64_t news = kf_limit_news(&entry->remote_slot, &entry->remote_seen, slot, others);
    if (news > MAX_MERGED)
        news = MAX_MERGED;
    if (as_failures) {
        for (int64_t i = 0; i < news; i++)
            charge_entry(limit, entry, NULL);
    } else {
        /* As takes: one bucket never goes below empty, and neither does its copy here. */
        entry->tokens -= (double)news;
        if (entry->tokens < 0)
            entry->tokens = 0;
    }
    return news;
}

size_t kf_limit_count(const kf_limit_t *limit)
{
    return kf_map_count(&limit->table);
}
