/* hash.h: SipHash-2-4, a keyed hash for tables whose keys clients can choose (addresses, e-mails,
 * ids in URLs): with a secret random key, nobody outside can pick many keys that share a bucket
 * (hash flooding). Redis, Python and Rust hash their tables with it for that reason. */
#ifndef KF_BASE_HASH_H
#define KF_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A 128-bit secret. */
typedef struct kf_hash_key {
    uint64_t k[2];
} kf_hash_key_t;

/* Fills key from the kernel's random source (getrandom). Returns 0, or KF_EIO when the kernel
 * gives none (the key is then a fixed value: still a correct hash, only not secret). */
int kf_hash_key_random(kf_hash_key_t *key);

/* SipHash-2-4 of len bytes at data under key. */
uint64_t kf_hash(const kf_hash_key_t *key, const void *data, size_t len);

#endif
