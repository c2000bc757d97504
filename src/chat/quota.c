/* quota.c: a table of listeners with push connections open (base/map.h), each entry counting
 * them until the last ends; with several nodes, each count also kept in Redis and the other
 * nodes' counts cached (kf_quota_share). */
#include "chat/quota.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/map.h"

/* How long the other nodes' count for a listener is trusted without a new answer: every open
 * and close here brings one, so a listener active here stays known; one not seen for longer
 * is read again (kf_quota_fetch) before its next connection. */
#define OTHERS_FRESH_MS 2000
/* The shared counts' keys expire when nothing changed them for this long: a node's count of a
 * connection held longer than that is forgotten (the others then allow too many, not too
 * few). Dead nodes' counts are dropped sooner, by the bus's heartbeats (live_only). */
#define SHARED_TTL_MS (24 * 3600 * 1000LL)

/* A listener with push connections open; an entry lives while connections > 0. */
typedef struct holder {
    kf_map_node_t node;
    kf_quota_t *quota;
    unsigned char key[9]; /* kind, then the subject's 8 bytes */
    size_t connections;   /* held long polls, streams and WebSockets open now */
} holder_t;

/* What the other nodes hold of one listener, as Redis last answered. */
typedef struct others {
    kf_map_node_t node;
    unsigned char key[9];
    int64_t connections;  /* open on other live nodes */
    uint64_t answered_ms; /* kf_clock_mono_ms of the answer */
} others_t;

struct kf_quota {
    size_t per_visitor, per_agent;
    kf_map_t holders;
    kf_bus_t *bus;   /* where counts are shared, or NULL */
    kf_map_t others; /* key -> others_t: answers kept OTHERS_FRESH_MS (kf_quota_sweep) */
    /* The loops of one process share one table (kefu --loops, without a bus: main.c): a lock,
     * held for a lookup or a count (never around the bus), since a budget per loop would
     * multiply each person's by the loops. Uncontended with one loop. */
    pthread_mutex_t lock;
};

static void lock(const kf_quota_t *quota)
{
    pthread_mutex_lock((pthread_mutex_t *)&quota->lock);
}

static void unlock(const kf_quota_t *quota)
{
    pthread_mutex_unlock((pthread_mutex_t *)&quota->lock);
}

kf_quota_t *kf_quota_new(size_t per_visitor, size_t per_agent)
{
    kf_quota_t *quota = kf_xcalloc(1, sizeof *quota);
    quota->per_visitor = per_visitor;
    quota->per_agent = per_agent;
    kf_map_init(&quota->holders);
    kf_map_init(&quota->others);
    pthread_mutex_init(&quota->lock, NULL);
    return quota;
}

static void free_holder(kf_map_node_t *node)
{
    free(KF_CONTAINER_OF(node, holder_t, node));
}

static void free_others(kf_map_node_t *node)
{
    free(KF_CONTAINER_OF(node, others_t, node));
}

/* An emptied holder goes. */
static void remove_holder(kf_quota_t *quota, holder_t *holder)
{
    kf_map_remove(&quota->holders, &holder->node);
    free(holder);
}

void kf_quota_free(kf_quota_t *quota)
{
    if (quota == NULL)
        return;
    kf_map_clear(&quota->holders, free_holder);
    kf_map_clear(&quota->others, free_others);
    pthread_mutex_destroy(&quota->lock);
    free(quota);
}

static void holder_key(char kind, int64_t subject, unsigned char key[9])
{
    key[0] = (unsigned char)kind;
    memcpy(key + 1, &subject, sizeof subject);
}

static bool holder_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    const holder_t *holder = KF_CONTAINER_OF(node, holder_t, node);
    return len == sizeof holder->key && memcmp(holder->key, key, len) == 0;
}

static holder_t *find(const kf_quota_t *quota, const unsigned char key[9], uint64_t *hash_out)
{
    uint64_t hash = kf_map_hash(&quota->holders, key, 9);
    if (hash_out != NULL)
        *hash_out = hash;
    kf_map_node_t *node = kf_map_find(&quota->holders, hash, key, 9, holder_eq);
    return node != NULL ? KF_CONTAINER_OF(node, holder_t, node) : NULL;
}

static bool others_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    const others_t *others = KF_CONTAINER_OF(node, others_t, node);
    return len == sizeof others->key && memcmp(others->key, key, len) == 0;
}

static others_t *find_others(const kf_quota_t *quota, const unsigned char key[9],
                             uint64_t *hash_out)
{
    uint64_t hash = kf_map_hash(&quota->others, key, 9);
    if (hash_out != NULL)
        *hash_out = hash;
    kf_map_node_t *node = kf_map_find(&quota->others, hash, key, 9, others_eq);
    return node != NULL ? KF_CONTAINER_OF(node, others_t, node) : NULL;
}

static bool fresh(const others_t *others, uint64_t now_ms)
{
    return now_ms - others->answered_ms <= OTHERS_FRESH_MS;
}

/* Other nodes' connections of the listener, as last answered (0 when not known). */
static size_t others_of(const kf_quota_t *quota, const unsigned char key[9])
{
    const others_t *others = quota->bus != NULL ? find_others(quota, key, NULL) : NULL;
    return others != NULL && fresh(others, kf_clock_mono_ms()) ? (size_t)others->connections : 0;
}

/* ---- shared with the other nodes ---- */

/* An answer from Redis about one listener, or a caller waiting for one. */
typedef struct answer {
    kf_quota_t *quota;
    unsigned char key[9];
    kf_quota_fetched_fn fetched; /* kf_quota_fetch's caller, or NULL */
    void *data;
} answer_t;

static void answered_cb(void *data, int rc, int64_t connections)
{
    answer_t *answer = data;
    kf_quota_t *quota = answer->quota;
    lock(quota);
    if (rc == 0 && quota->bus != NULL) {
        uint64_t hash;
        others_t *others = find_others(quota, answer->key, &hash);
        if (others == NULL) {
            others = kf_xcalloc(1, sizeof *others);
            memcpy(others->key, answer->key, sizeof others->key);
            kf_map_insert(&quota->others, &others->node, hash);
        }
        others->connections = connections;
        others->answered_ms = kf_clock_mono_ms();
    }
    unlock(quota);
    if (answer->fetched != NULL)
        answer->fetched(answer->data, quota->bus == NULL);
    free(answer);
}

/* Adds delta to this node's count of the listener in Redis (0: reads only). Returns 0 when an
 * answer will come. */
static int tell(kf_quota_t *quota, const unsigned char key[9], int64_t delta,
                kf_quota_fetched_fn fetched, void *data)
{
    if (quota->bus == NULL)
        return KF_EUNAVAIL;
    int64_t subject;
    memcpy(&subject, key + 1, sizeof subject);
    char counter[48];
    snprintf(counter, sizeof counter, "kefu:push:%c:%lld", (char)key[0], (long long)subject);
    answer_t *answer = kf_xmalloc(sizeof *answer);
    answer->quota = quota;
    memcpy(answer->key, key, sizeof answer->key);
    answer->fetched = fetched;
    answer->data = data;
    int rc = kf_bus_count(quota->bus, counter, delta, SHARED_TTL_MS, true, answered_cb, answer);
    if (rc != 0)
        free(answer);
    return rc;
}

void kf_quota_share(kf_quota_t *quota, kf_bus_t *bus)
{
    if (quota != NULL)
        quota->bus = bus;
}

bool kf_quota_known(const kf_quota_t *quota, char kind, int64_t subject)
{
    if (quota->bus == NULL || !kf_bus_ready(quota->bus))
        return true;
    if ((kind == 'v' ? quota->per_visitor : quota->per_agent) == 0)
        return true;
    unsigned char key[9];
    holder_key(kind, subject, key);
    lock(quota);
    const others_t *others = find_others(quota, key, NULL);
    bool known = others != NULL && fresh(others, kf_clock_mono_ms());
    unlock(quota);
    return known;
}

int kf_quota_fetch(kf_quota_t *quota, char kind, int64_t subject, kf_quota_fetched_fn fetched,
                   void *data)
{
    unsigned char key[9];
    holder_key(kind, subject, key);
    return tell(quota, key, 0, fetched, data);
}

static void sweep_one(kf_map_node_t *node, void *ctx)
{
    kf_quota_t *quota = ctx;
    others_t *others = KF_CONTAINER_OF(node, others_t, node);
    if (!fresh(others, kf_clock_mono_ms())) {
        kf_map_remove(&quota->others, node);
        free(others);
    }
}

static void count_again(kf_map_node_t *node, void *ctx)
{
    holder_t *holder = KF_CONTAINER_OF(node, holder_t, node);
    tell(ctx, holder->key, (int64_t)holder->connections, NULL, NULL);
}

void kf_quota_shared_again(kf_quota_t *quota)
{
    kf_map_each(&quota->holders, count_again, quota); /* with a bus: one loop's, no lock needed */
}

void kf_quota_sweep(kf_quota_t *quota)
{
    lock(quota);
    kf_map_each(&quota->others, sweep_one, quota);
    unlock(quota);
}

static void holder_end_cb(kf_req_t *req, void *data)
{
    (void)req;
    holder_t *holder = data;
    kf_quota_t *quota = holder->quota;
    tell(quota, holder->key, -1, NULL, NULL);
    lock(quota);
    if (--holder->connections == 0)
        remove_holder(quota, holder);
    unlock(quota);
}

bool kf_quota_take(kf_quota_t *quota, kf_req_t *req, char kind, int64_t subject, size_t *open)
{
    size_t max = kind == 'v' ? quota->per_visitor : quota->per_agent;
    unsigned char key[9];
    holder_key(kind, subject, key);
    uint64_t hash;
    /* The check and the count under one hold of the lock: two loops admitting one person at the
     * same instant would each see room for one more, and both count. */
    lock(quota);
    holder_t *holder = find(quota, key, &hash);
    *open = (holder != NULL ? holder->connections : 0) + others_of(quota, key);
    if (max != 0 && *open >= max) {
        unlock(quota);
        return false;
    }
    /* Counted with no limit too: an agent's open connections are its presence (chat/presence.h). */
    bool added = holder == NULL;
    if (added) {
        holder = kf_xcalloc(1, sizeof *holder);
        holder->quota = quota;
        memcpy(holder->key, key, sizeof key);
        kf_map_insert(&quota->holders, &holder->node, hash);
    }
    bool counted = kf_req_on_end(req, holder_end_cb, holder) == 0;
    if (counted)
        holder->connections++;
    else if (added)
        remove_holder(quota, holder);
    unlock(quota);
    if (counted)
        tell(quota, key, 1, NULL, NULL);
    return true;
}

size_t kf_quota_open(const kf_quota_t *quota, char kind, int64_t subject)
{
    unsigned char key[9];
    holder_key(kind, subject, key);
    lock(quota);
    const holder_t *holder = find(quota, key, NULL);
    size_t open = holder != NULL ? holder->connections : 0;
    unlock(quota);
    return open;
}

size_t kf_quota_listeners(const kf_quota_t *quota)
{
    lock(quota);
    size_t count = kf_map_count(&quota->holders);
    unlock(quota);
    return count;
}
