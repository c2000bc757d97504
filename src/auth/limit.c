/* limit.c: token buckets keyed by strings, in a chained hash table keyed with SipHash, with an LRU
 * list that bounds the keys held and a sweep that drops idle ones. */
#include "auth/limit.h"

#include "base/buf.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* One key's bucket. Its memory never moves while it is in the table. */
struct entry {
    struct entry *chain; /* next entry in the same hash bucket */
    struct entry *newer; /* neighbour towards limit->newest, or NULL when this is the newest */
    struct entry *older; /* neighbour towards limit->oldest, or NULL when this is the oldest */
    uint64_t hash;       /* keyed hash of key, kept so that resizing never rehashes strings */
    double tokens;       /* tokens at updated_ms, at most burst; below 0 only as the debt of
                          * kf_limit_charge */
    int64_t updated_ms;  /* latest time seen for this key; never moves backwards */
    unsigned strikes;    /* kf_limit_charge: times the bucket was emptied since it was last full */
    char key[];          /* a copy of the key, NUL-terminated */
};

struct kf_limit {
    double per_minute;      /* refill rate, > 0 and finite */
    double burst;           /* bucket size, >= 1 and finite */
    size_t max_keys;        /* most entries held at once, >= 1 */
    uint64_t hash_key[2];   /* SipHash key from RAND_bytes, secret from clients */
    struct entry **buckets; /* bucket_count chains */
    size_t bucket_count;    /* a power of two, at least MIN_BUCKETS */
    size_t count;           /* entries in the table (and in the LRU list) */
    struct entry *newest;   /* most recently taken from; head of the LRU list */
    struct entry *oldest;   /* least recently taken from; the next one evicted */
};

/* Smallest table; also the size below which it never shrinks. */
#define MIN_BUCKETS 16

/* Token amounts within this of a whole token count as reaching it, so that rounding in the refill
 * arithmetic never makes a caller who waited exactly retry_after_ms wait one more millisecond. */
#define TOKEN_EPSILON 1e-9

#define MS_PER_MINUTE 60000.0

/* ---- SipHash-2-4 ----
 * Keys come from clients (addresses, e-mails), so the hash is a keyed PRF with a secret 128-bit
 * random key, the usual defence against hash flooding (Redis, Python and Rust use SipHash for it).
 * A seeded FNV-1a is not built to keep its seed secret from chosen inputs, and the low bits that
 * pick a bucket depend only on the seed's low bits. Verified against the reference test vectors. */

static uint64_t rotl(uint64_t x, int bits)
{
    return (x << bits) | (x >> (64 - bits));
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl(v[2], 32);
}

static uint64_t siphash24(const uint64_t key[2], const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v[4] = {
        key[0] ^ 0x736f6d6570736575u,
        key[1] ^ 0x646f72616e646f6du,
        key[0] ^ 0x6c7967656e657261u,
        key[1] ^ 0x7465646279746573u,
    };
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(p + i);
        v[3] ^= m;
        sip_round(v);
        sip_round(v);
        v[0] ^= m;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++)
        last |= (uint64_t)p[whole + i] << (8 * i);
    v[3] ^= last;
    sip_round(v);
    sip_round(v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- the table ---- */

kf_limit_t *kf_limit_new(double per_minute, double burst, size_t max_keys)
{
    /* Written so that NaN fails too. */
    if (!(per_minute > 0) || !isfinite(per_minute) || !(burst >= 1) || !isfinite(burst) ||
        max_keys == 0)
        return NULL;
    unsigned char seed[16];
    if (RAND_bytes(seed, sizeof seed) != 1)
        return NULL;
    kf_limit_t *limit = kf_xmalloc(sizeof *limit);
    limit->per_minute = per_minute;
    limit->burst = burst;
    limit->max_keys = max_keys;
    limit->hash_key[0] = load_le64(seed);
    limit->hash_key[1] = load_le64(seed + 8);
    OPENSSL_cleanse(seed, sizeof seed);
    limit->bucket_count = MIN_BUCKETS;
    limit->buckets = kf_xcalloc(limit->bucket_count, sizeof *limit->buckets);
    limit->count = 0;
    limit->newest = NULL;
    limit->oldest = NULL;
    return limit;
}

void kf_limit_free(kf_limit_t *limit)
{
    if (limit == NULL)
        return;
    struct entry *entry = limit->newest;
    while (entry != NULL) {
        struct entry *older = entry->older;
        free(entry);
        entry = older;
    }
    free(limit->buckets);
    OPENSSL_cleanse(limit->hash_key, sizeof limit->hash_key);
    free(limit);
}

/* Moves every entry into a table of bucket_count buckets (a power of two). */
static void resize(kf_limit_t *limit, size_t bucket_count)
{
    struct entry **buckets = kf_xcalloc(bucket_count, sizeof *buckets);
    for (struct entry *entry = limit->newest; entry != NULL; entry = entry->older) {
        size_t b = (size_t)(entry->hash & (bucket_count - 1));
        entry->chain = buckets[b];
        buckets[b] = entry;
    }
    free(limit->buckets);
    limit->buckets = buckets;
    limit->bucket_count = bucket_count;
}

/* Halves a mostly empty table until it is at least 1/8 full, so that a burst of keys does not pin
 * its memory forever. */
static void maybe_shrink(kf_limit_t *limit)
{
    size_t bucket_count = limit->bucket_count;
    while (bucket_count > MIN_BUCKETS && limit->count < bucket_count / 8)
        bucket_count /= 2;
    if (bucket_count != limit->bucket_count)
        resize(limit, bucket_count);
}

static struct entry *find(const kf_limit_t *limit, const char *key, uint64_t hash)
{
    struct entry *entry = limit->buckets[hash & (limit->bucket_count - 1)];
    while (entry != NULL) {
        if (entry->hash == hash && strcmp(entry->key, key) == 0)
            return entry;
        entry = entry->chain;
    }
    return NULL;
}

static void lru_unlink(kf_limit_t *limit, struct entry *entry)
{
    if (entry->newer != NULL)
        entry->newer->older = entry->older;
    else
        limit->newest = entry->older;
    if (entry->older != NULL)
        entry->older->newer = entry->newer;
    else
        limit->oldest = entry->newer;
    entry->newer = NULL;
    entry->older = NULL;
}

static void lru_push_newest(kf_limit_t *limit, struct entry *entry)
{
    entry->newer = NULL;
    entry->older = limit->newest;
    if (limit->newest != NULL)
        limit->newest->newer = entry;
    else
        limit->oldest = entry;
    limit->newest = entry;
}

/* Unlinks entry from its chain and the LRU list and frees it. O(chain length). Does not shrink. */
static void remove_entry(kf_limit_t *limit, struct entry *entry)
{
    struct entry **link = &limit->buckets[entry->hash & (limit->bucket_count - 1)];
    while (*link != entry)
        link = &(*link)->chain;
    *link = entry->chain;
    lru_unlink(limit, entry);
    free(entry);
    assert(limit->count > 0);
    limit->count--;
}

/* Adds key (len bytes, not yet in the table) with a full bucket as the newest entry, first evicting
 * the oldest entry when the table holds max_keys. */
static struct entry *add(kf_limit_t *limit, const char *key, size_t len, uint64_t hash,
                         int64_t now_ms)
{
    if (limit->count >= limit->max_keys)
        remove_entry(limit, limit->oldest);
    /* Load factor at most 1: chains stay about one entry long. */
    if (limit->count + 1 > limit->bucket_count)
        resize(limit, limit->bucket_count * 2);
    if (len > SIZE_MAX - sizeof(struct entry) - 1)
        abort();
    struct entry *entry = kf_xmalloc(sizeof *entry + len + 1);
    memcpy(entry->key, key, len + 1);
    entry->hash = hash;
    entry->tokens = limit->burst;
    entry->updated_ms = now_ms;
    entry->strikes = 0;
    size_t b = (size_t)(hash & (limit->bucket_count - 1));
    entry->chain = limit->buckets[b];
    limit->buckets[b] = entry;
    lru_push_newest(limit, entry);
    limit->count++;
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

static uint64_t hash_of(const kf_limit_t *limit, const char *key, size_t *len)
{
    *len = strlen(key);
    return siphash24(limit->hash_key, key, *len);
}

/* The key's entry, added or refilled to now_ms and made the newest. */
static struct entry *touch(kf_limit_t *limit, const char *key, int64_t now_ms)
{
    size_t len;
    uint64_t hash = hash_of(limit, key, &len);
    struct entry *entry = find(limit, key, hash);
    if (entry == NULL)
        return add(limit, key, len, hash, now_ms);
    /* Refused attempts count as use too: a key being hammered stays held (and empty). */
    entry->tokens = tokens_at(limit, entry, now_ms);
    if (now_ms > entry->updated_ms)
        entry->updated_ms = now_ms;
    lru_unlink(limit, entry);
    lru_push_newest(limit, entry);
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

void kf_limit_charge(kf_limit_t *limit, const char *key, int64_t now_ms, int64_t *retry_after_ms)
{
    assert(limit != NULL && key != NULL);
    struct entry *entry = touch(limit, key, now_ms);
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
    size_t len;
    uint64_t hash = hash_of(limit, key, &len);
    const struct entry *entry = find(limit, key, hash);
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
    size_t len;
    uint64_t hash = hash_of(limit, key, &len);
    struct entry *entry = find(limit, key, hash);
    if (entry == NULL)
        return;
    remove_entry(limit, entry);
    maybe_shrink(limit);
}

size_t kf_limit_sweep(kf_limit_t *limit, int64_t now_ms)
{
    assert(limit != NULL);
    /* O(keys held): when a bucket refills is not ordered by last use, so every entry is looked at.
     * Meant for a coarse timer, and max_keys bounds the walk. */
    size_t removed = 0;
    struct entry *entry = limit->oldest;
    while (entry != NULL) {
        struct entry *newer = entry->newer;
        if (tokens_at(limit, entry, now_ms) >= limit->burst - TOKEN_EPSILON) {
            remove_entry(limit, entry);
            removed++;
        }
        entry = newer;
    }
    maybe_shrink(limit);
    return removed;
}

size_t kf_limit_count(const kf_limit_t *limit)
{
    return limit->count;
}
