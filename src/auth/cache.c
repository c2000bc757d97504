/* cache.c: the credential cache: a direct-mapped table of token hashes and copied values. */
#include "auth/cache.h"

#include "base/buf.h"
#include "base/str.h"

#include <stdlib.h>
#include <string.h>

#define HASH_BYTES 32

typedef struct entry {
    unsigned char key[HASH_BYTES]; /* the token hash, binary; all zero when the slot is empty */
    int64_t expires_at;
    size_t len;           /* of value */
    unsigned char *value; /* owned; NULL when empty */
} entry_t;

struct kf_auth_cache {
    entry_t *slots; /* NULL until the first put */
    size_t mask;    /* slot count - 1 */
    size_t value_max;
    size_t count;
};

kf_auth_cache_t *kf_auth_cache_new(size_t slots, size_t value_max)
{
    size_t n = 1;
    while (n < slots)
        n <<= 1;
    kf_auth_cache_t *cache = kf_xcalloc(1, sizeof *cache);
    cache->mask = n - 1;
    cache->value_max = value_max;
    return cache;
}

void kf_auth_cache_free(kf_auth_cache_t *cache)
{
    if (cache == NULL)
        return;
    if (cache->slots != NULL) {
        for (size_t i = 0; i <= cache->mask; i++)
            free(cache->slots[i].value);
        free(cache->slots);
    }
    free(cache);
}

/* The binary form of a lower-case hex SHA-256; false for anything else. */
static bool parse_key(const char *token_hash, unsigned char key[HASH_BYTES])
{
    if (token_hash == NULL)
        return false;
    for (size_t i = 0; i < HASH_BYTES; i++) {
        char h = token_hash[2 * i];
        char l = h == '\0' ? '\0' : token_hash[2 * i + 1];
        int high = kf_hex_digit(h);
        int low = kf_hex_digit(l);
        /* Lower case only: one hash has one spelling, so it has one slot. */
        if (high < 0 || low < 0 || (h >= 'A' && h <= 'F') || (l >= 'A' && l <= 'F'))
            return false;
        key[i] = (unsigned char)(high << 4 | low);
    }
    return token_hash[2 * HASH_BYTES] == '\0';
}

/* The key's slot: its first bytes are as random as any hash of them would be. */
static entry_t *slot_of(const kf_auth_cache_t *cache, const unsigned char key[HASH_BYTES])
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return &cache->slots[h & cache->mask];
}

static void clear(kf_auth_cache_t *cache, entry_t *e)
{
    if (e->value == NULL)
        return;
    free(e->value);
    memset(e, 0, sizeof *e);
    cache->count--;
}

size_t kf_auth_cache_get(kf_auth_cache_t *cache, const char *token_hash, int64_t now_ms, void *out)
{
    unsigned char key[HASH_BYTES];
    if (cache->slots == NULL || !parse_key(token_hash, key))
        return 0;
    entry_t *e = slot_of(cache, key);
    if (e->value == NULL || memcmp(e->key, key, HASH_BYTES) != 0)
        return 0;
    if (e->expires_at <= now_ms) {
        clear(cache, e);
        return 0;
    }
    memcpy(out, e->value, e->len);
    return e->len;
}

void kf_auth_cache_put(kf_auth_cache_t *cache, const char *token_hash, int64_t expires_at,
                       const void *value, size_t len)
{
    unsigned char key[HASH_BYTES];
    if (len == 0 || len > cache->value_max || !parse_key(token_hash, key))
        return;
    if (cache->slots == NULL)
        cache->slots = kf_xcalloc(cache->mask + 1, sizeof *cache->slots);
    entry_t *e = slot_of(cache, key);
    clear(cache, e);
    memcpy(e->key, key, HASH_BYTES);
    e->expires_at = expires_at;
    e->len = len;
    e->value = kf_xmalloc(len);
    memcpy(e->value, value, len);
    cache->count++;
}

void kf_auth_cache_remove(kf_auth_cache_t *cache, const char *token_hash)
{
    unsigned char key[HASH_BYTES];
    if (cache->slots == NULL || !parse_key(token_hash, key))
        return;
    entry_t *e = slot_of(cache, key);
    if (e->value != NULL && memcmp(e->key, key, HASH_BYTES) == 0)
        clear(cache, e);
}

void kf_auth_cache_each(kf_auth_cache_t *cache, bool (*visit)(void *value, size_t len, void *ctx),
                        void *ctx)
{
    for (size_t i = 0; cache->slots != NULL && i <= cache->mask; i++) {
        entry_t *e = &cache->slots[i];
        if (e->value != NULL && visit(e->value, e->len, ctx))
            clear(cache, e);
    }
}

void kf_auth_cache_clear(kf_auth_cache_t *cache)
{
    for (size_t i = 0; cache->slots != NULL && i <= cache->mask; i++)
        clear(cache, &cache->slots[i]);
}

size_t kf_auth_cache_count(const kf_auth_cache_t *cache)
{
    return cache->count;
}
