/* test_cache.c: the credential cache: hits and misses, expiry, removal, a slot shared by two
 * keys (the newer wins), values of different lengths, malformed keys, the size bound, and a visit
 * of every entry that changes some and removes others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/cache.h"

/* The SHA-256 hex of text, as callers key the cache. */
static void hash_of(const char *text, char out[KF_HASH_HEX_SIZE])
{
    kf_auth_sha256_hex(text, strlen(text), out);
}

static void test_get_put_remove(void **state)
{
    (void)state;
    kf_auth_cache_t *cache = kf_auth_cache_new(16, 32);
    char a[KF_HASH_HEX_SIZE], b[KF_HASH_HEX_SIZE];
    hash_of("token-a", a);
    hash_of("token-b", b);
    char out[32];
    assert_int_equal(kf_auth_cache_get(cache, a, 0, out), 0); /* nothing allocated yet */
    kf_auth_cache_put(cache, a, 1000, "alpha", 6);
    assert_int_equal(kf_auth_cache_get(cache, a, 999, out), 6);
    assert_string_equal(out, "alpha");
    assert_int_equal(kf_auth_cache_get(cache, b, 999, out), 0);
    assert_int_equal(kf_auth_cache_count(cache), 1);

    /* Replacing a key's value keeps one entry. */
    kf_auth_cache_put(cache, a, 2000, "alpha-2", 8);
    assert_int_equal(kf_auth_cache_get(cache, a, 1500, out), 8);
    assert_string_equal(out, "alpha-2");
    assert_int_equal(kf_auth_cache_count(cache), 1);

    kf_auth_cache_remove(cache, b); /* absent: nothing happens */
    assert_int_equal(kf_auth_cache_count(cache), 1);
    kf_auth_cache_remove(cache, a);
    assert_int_equal(kf_auth_cache_get(cache, a, 1500, out), 0);
    assert_int_equal(kf_auth_cache_count(cache), 0);
    kf_auth_cache_free(cache);
}

/* An entry is gone at its expiry, not a millisecond later; INT64_MAX never expires. */
static void test_expiry(void **state)
{
    (void)state;
    kf_auth_cache_t *cache = kf_auth_cache_new(1024, 8); /* the two keys get slots 575 and 95 */
    char a[KF_HASH_HEX_SIZE], b[KF_HASH_HEX_SIZE];
    hash_of("session", a);
    hash_of("visitor", b);
    char out[8];
    kf_auth_cache_put(cache, a, 5000, "x", 2);
    kf_auth_cache_put(cache, b, INT64_MAX, "y", 2);
    assert_int_equal(kf_auth_cache_get(cache, a, 4999, out), 2);
    assert_int_equal(kf_auth_cache_get(cache, a, 5000, out), 0);
    assert_int_equal(kf_auth_cache_get(cache, a, 4000, out), 0); /* dropped when found expired */
    assert_int_equal(kf_auth_cache_get(cache, b, INT64_MAX - 1, out), 2);
    kf_auth_cache_free(cache);
}

/* A table of one slot: every key shares it, the newest wins, and a miss never returns another
 * key's value. */
static void test_shared_slot(void **state)
{
    (void)state;
    kf_auth_cache_t *cache = kf_auth_cache_new(1, 16);
    char keys[50][KF_HASH_HEX_SIZE];
    char out[16];
    for (int i = 0; i < 50; i++) {
        char token[16];
        snprintf(token, sizeof token, "t%d", i);
        hash_of(token, keys[i]);
        kf_auth_cache_put(cache, keys[i], 100, token, strlen(token) + 1);
        assert_int_equal(kf_auth_cache_get(cache, keys[i], 0, out), strlen(token) + 1);
        assert_string_equal(out, token);
        if (i > 0)
            assert_int_equal(kf_auth_cache_get(cache, keys[i - 1], 0, out), 0);
        assert_int_equal(kf_auth_cache_count(cache), 1);
    }
    /* Removing a key that lost its slot leaves the holder alone. */
    kf_auth_cache_remove(cache, keys[0]);
    assert_int_equal(kf_auth_cache_get(cache, keys[49], 0, out), 4);
    kf_auth_cache_free(cache);
}

/* Thousands of keys in a bounded table: the count never passes the slots, and every hit is the
 * right value. */
static void test_bounded(void **state)
{
    (void)state;
    kf_auth_cache_t *cache = kf_auth_cache_new(100, sizeof(int)); /* rounded up to 128 */
    char keys[4000][KF_HASH_HEX_SIZE];
    for (int i = 0; i < 4000; i++) {
        char token[16];
        snprintf(token, sizeof token, "k%d", i);
        hash_of(token, keys[i]);
        kf_auth_cache_put(cache, keys[i], 100, &i, sizeof i);
        assert_true(kf_auth_cache_count(cache) <= 128);
    }
    int hits = 0;
    for (int i = 0; i < 4000; i++) {
        int value = -1;
        if (kf_auth_cache_get(cache, keys[i], 0, &value) > 0) {
            assert_int_equal(value, i);
            hits++;
        }
    }
    assert_int_equal(hits, (int)kf_auth_cache_count(cache));
    assert_true(hits > 64);
    kf_auth_cache_clear(cache);
    assert_int_equal(kf_auth_cache_count(cache), 0);
    int value;
    assert_int_equal(kf_auth_cache_get(cache, keys[3999], 0, &value), 0);
    kf_auth_cache_free(cache);
}

/* Keys that are not a lower-case SHA-256 hex, and values of a bad size, are never kept. */
static void test_refusals(void **state)
{
    (void)state;
    kf_auth_cache_t *cache = kf_auth_cache_new(8, 4);
    char good[KF_HASH_HEX_SIZE];
    hash_of("good", good);
    char upper[KF_HASH_HEX_SIZE];
    memcpy(upper, good, sizeof upper);
    upper[0] = 'A';
    char longer[KF_HASH_HEX_SIZE + 1];
    memcpy(longer, good, KF_HASH_HEX_SIZE - 1);
    longer[KF_HASH_HEX_SIZE - 1] = '0';
    longer[KF_HASH_HEX_SIZE] = '\0';
    const char *bad[] = {NULL, "", "abc", upper, longer, "zz"};
    char out[4];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kf_auth_cache_put(cache, bad[i], 100, "v", 2);
        assert_int_equal(kf_auth_cache_get(cache, bad[i], 0, out), 0);
        kf_auth_cache_remove(cache, bad[i]);
    }
    kf_auth_cache_put(cache, good, 100, "", 0);      /* empty */
    kf_auth_cache_put(cache, good, 100, "12345", 5); /* over value_max */
    assert_int_equal(kf_auth_cache_count(cache), 0);
    kf_auth_cache_put(cache, good, 100, "1234", 4);
    assert_int_equal(kf_auth_cache_get(cache, good, 0, out), 4);
    kf_auth_cache_free(cache);
    kf_auth_cache_free(NULL);
}

/* Marks the entries whose first byte is ctx's, removes those whose first byte is '-'. */
static bool mark_or_drop(void *value, size_t len, void *ctx)
{
    char *text = value;
    assert_true(len >= 2);
    if (text[0] == '-')
        return true;
    if (text[0] == *(const char *)ctx)
        text[1] = '!';
    return false;
}

static void test_each(void **state)
{
    (void)state;
    kf_auth_cache_t *cache = kf_auth_cache_new(64, 8);
    char target = 'a';
    kf_auth_cache_each(cache, mark_or_drop, &target); /* nothing allocated yet: nothing to visit */
    char keys[4][KF_HASH_HEX_SIZE];
    static const char *const values[] = {"a.", "b.", "-.", "a."};
    for (int i = 0; i < 4; i++) {
        char token[16];
        snprintf(token, sizeof token, "token-%d", i);
        hash_of(token, keys[i]);
        kf_auth_cache_put(cache, keys[i], 1000, values[i], 3);
    }
    assert_int_equal(kf_auth_cache_count(cache), 4);
    kf_auth_cache_each(cache, mark_or_drop, &target);
    assert_int_equal(kf_auth_cache_count(cache), 3);
    char out[8];
    static const char *const after[] = {"a!", "b.", NULL, "a!"};
    for (int i = 0; i < 4; i++) {
        if (after[i] == NULL) {
            assert_int_equal(kf_auth_cache_get(cache, keys[i], 0, out), 0);
        } else {
            assert_int_equal(kf_auth_cache_get(cache, keys[i], 0, out), 3);
            assert_string_equal(out, after[i]);
        }
    }
    kf_auth_cache_free(cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_put_remove), cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_shared_slot),    cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_refusals),       cmocka_unit_test(test_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
