/* hash.c: SipHash-2-4 (Aumasson and Bernstein), checked against the reference test vectors. */
#include "base/hash.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "base/err.h"

int kf_hash_key_random(kf_hash_key_t *key)
{
    unsigned char seed[16];
    size_t got = 0;
    while (got < sizeof seed) {
        ssize_t n = getrandom(seed + got, sizeof seed - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            key->k[0] = 0x0706050403020100u;
            key->k[1] = 0x0f0e0d0c0b0a0908u;
            return KF_EIO;
        }
        got += (size_t)n;
    }
    memcpy(key->k, seed, sizeof seed);
    memset(seed, 0, sizeof seed);
    return 0;
}

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

uint64_t kf_hash(const kf_hash_key_t *key, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v[4] = {
        key->k[0] ^ 0x736f6d6570736575u,
        key->k[1] ^ 0x646f72616e646f6du,
        key->k[0] ^ 0x6c7967656e657261u,
        key->k[1] ^ 0x7465646279746573u,
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
