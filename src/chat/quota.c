/* quota.c: a table of listeners with push connections open (base/map.h), each entry counting
 * them until the last ends. */
#include "chat/quota.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/map.h"

/* A listener with push connections open; an entry lives while connections > 0. */
typedef struct holder {
    kf_map_node_t node;
    kf_quota_t *quota;
    unsigned char key[9]; /* kind, then the subject's 8 bytes */
    size_t connections;   /* held long polls, streams and WebSockets open now */
} holder_t;

struct kf_quota {
    size_t per_visitor, per_agent;
    kf_map_t holders;
    /* The loops of one process share one table (kefu --loops): a lock, held for a lookup or a
     * count, since a budget per loop would multiply each person's by the loops. Uncontended
     * with one loop. */
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
    pthread_mutex_init(&quota->lock, NULL);
    return quota;
}

static void free_holder(kf_map_node_t *node)
{
    free(KF_CONTAINER_OF(node, holder_t, node));
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

bool kf_quota_allows(const kf_quota_t *quota, char kind, int64_t subject, size_t *open)
{
    size_t max = kind == 'v' ? quota->per_visitor : quota->per_agent;
    unsigned char key[9];
    holder_key(kind, subject, key);
    lock(quota);
    const holder_t *holder = find(quota, key, NULL);
    *open = holder != NULL ? holder->connections : 0;
    unlock(quota);
    return max == 0 || *open < max;
}

static void holder_end_cb(kf_req_t *req, void *data)
{
    (void)req;
    holder_t *holder = data;
    kf_quota_t *quota = holder->quota;
    lock(quota);
    if (--holder->connections == 0)
        remove_holder(quota, holder);
    unlock(quota);
}

void kf_quota_count(kf_quota_t *quota, kf_req_t *req, char kind, int64_t subject)
{
    /* Counted with no limit too: an agent's open connections are its presence (chat/presence.h). */
    unsigned char key[9];
    holder_key(kind, subject, key);
    uint64_t hash;
    lock(quota);
    holder_t *holder = find(quota, key, &hash);
    bool added = holder == NULL;
    if (added) {
        holder = kf_xcalloc(1, sizeof *holder);
        holder->quota = quota;
        memcpy(holder->key, key, sizeof key);
        kf_map_insert(&quota->holders, &holder->node, hash);
    }
    if (kf_req_on_end(req, holder_end_cb, holder) == 0)
        holder->connections++;
    else if (added)
        remove_holder(quota, holder);
    unlock(quota);
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
