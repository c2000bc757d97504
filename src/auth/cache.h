/* cache.h: recently verified credentials, so that a request need not read the database to learn
 * who sent it. Keyed by the SHA-256 (hex) of a token, as the store keys them; each entry holds a
 * copy of the caller's value (who the token belongs to) and when it stops being valid.
 * Direct-mapped: a key has one slot, and a newer key that lands there replaces the older, so
 * memory is fixed and a miss costs one store lookup. Single-threaded; no I/O.
 *
 * A cached credential is trusted until it expires or is removed: whoever ends one (a logout)
 * removes it here too, and whatever would change a cached value (renaming an agent, say) must
 * remove or replace its entries. */
#ifndef KF_AUTH_CACHE_H
#define KF_AUTH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kf_auth_cache kf_auth_cache_t;

/* slots is rounded up to a power of two; values are at most value_max bytes. Slots are
 * allocated on first use. */
kf_auth_cache_t *kf_auth_cache_new(size_t slots, size_t value_max);
void kf_auth_cache_free(kf_auth_cache_t *cache);

/* Copies the value of token_hash into out (value_max bytes available) and returns its length, or
 * 0 when it is absent or expired (expires_at <= now_ms). A malformed hash is simply absent. */
size_t kf_auth_cache_get(kf_auth_cache_t *cache, const char *token_hash, int64_t now_ms, void *out);
/* Keeps len bytes of value (1..value_max) for token_hash until expires_at (INT64_MAX: no
 * expiry), replacing whatever held its slot. */
void kf_auth_cache_put(kf_auth_cache_t *cache, const char *token_hash, int64_t expires_at,
                       const void *value, size_t len);
/* Forgets token_hash (nothing happens when it is not there). */
void kf_auth_cache_remove(kf_auth_cache_t *cache, const char *token_hash);
/* Calls visit with the value of every entry held (expired ones too), which it may change in
 * place (not its length); an entry it returns true for is removed. O(slots): for what touches
 * entries whose keys the caller does not know (every session of one agent). */
void kf_auth_cache_each(kf_auth_cache_t *cache, bool (*visit)(void *value, size_t len, void *ctx),
                        void *ctx);
/* Forgets every entry. */
void kf_auth_cache_clear(kf_auth_cache_t *cache);
/* Entries held now (expired ones included until replaced). */
size_t kf_auth_cache_count(const kf_auth_cache_t *cache);

#endif
