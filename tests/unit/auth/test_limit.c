/* test_limit.c: token buckets per key: bursts, continuous refill, check, reset, sweep, LRU
 * eviction under a flood of keys, clocks going backwards, odd keys and bad arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/limit.h"

/* A fresh key allows `takes` takes at one instant, then refuses with retry_after_ms. */
static void test_burst_then_refuse(void **state)
{
    (void)state;
    static const struct {
        double per_minute;
        double burst;
        int takes;
        int64_t retry_after_ms;
    } cases[] = {
        {60, 5, 5, 1000},          /* one a second */
        {1, 1, 1, 60000},          /* one a minute */
        {0.5, 1, 1, 120000},       /* slower than one a minute */
        {120, 3, 3, 500},          /* two a second */
        {7, 2, 2, 8572},           /* 60000 / 7 = 8571.43, rounded up */
        {60, 2.5, 2, 500},         /* a fractional burst leaves half a token */
        {1e6, 1, 1, 1},            /* a wait under a millisecond is still at least 1 */
        {1e-300, 1, 1, INT64_MAX}, /* a wait too long for int64 is clamped */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kf_limit_t *limit = kf_limit_new(cases[i].per_minute, cases[i].burst, 100);
        assert_non_null(limit);
        for (int t = 0; t < cases[i].takes; t++) {
            int64_t retry = -7;
            assert_true(kf_limit_take(limit, "alice@example.com", 1000, &retry));
            assert_int_equal(retry, -7); /* untouched on success */
        }
        int64_t retry = 0;
        assert_false(kf_limit_take(limit, "alice@example.com", 1000, &retry));
        assert_int_equal(retry, cases[i].retry_after_ms);
        /* Refused again at the same instant: same answer; NULL retry is allowed. */
        assert_false(kf_limit_take(limit, "alice@example.com", 1000, &retry));
        assert_int_equal(retry, cases[i].retry_after_ms);
        assert_false(kf_limit_take(limit, "alice@example.com", 1000, NULL));
        assert_int_equal(kf_limit_count(limit), 1);
        kf_limit_free(limit);
    }
}

/* A bucket drained at t=0 is asked again at after_ms. */
static void test_refill(void **state)
{
    (void)state;
    static const struct {
        double per_minute;
        double burst;
        int64_t after_ms;
        bool allowed;
        int64_t retry_after_ms; /* when refused */
    } cases[] = {
        {1, 1, 30000, false, 30000}, /* half a token */
        {1, 1, 59999, false, 1},       {1, 1, 60000, true, 0},
        {1, 1, 3600000, true, 0},  /* capped at burst: only one */
        {60, 5, 3600000, true, 0}, /* capped at burst: five, not 3600 */
        {60, 5, 999, false, 1},        {60, 5, 1000, true, 0},
        {7, 1, 8571, false, 1},        {7, 1, 8572, true, 0},
        {3, 1, 20000, true, 0}, /* 3/60000 is inexact in binary; exactly 20 s still suffices */
        {0.5, 1, 60000, false, 60000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kf_limit_t *limit = kf_limit_new(cases[i].per_minute, cases[i].burst, 100);
        assert_non_null(limit);
        while (kf_limit_take(limit, "k", 0, NULL)) {
        }
        int64_t retry = 0;
        assert_int_equal(kf_limit_take(limit, "k", cases[i].after_ms, &retry), cases[i].allowed);
        if (cases[i].allowed) {
            /* Refill never exceeds burst: a long wait buys at most burst tokens. */
            int extra = 0;
            while (kf_limit_take(limit, "k", cases[i].after_ms, NULL))
                extra++;
            assert_true(extra + 1 <= cases[i].burst);
        } else {
            assert_int_equal(retry, cases[i].retry_after_ms);
        }
        kf_limit_free(limit);
    }
}

/* Waiting exactly retry_after_ms is enough, and one millisecond less is not, for rates whose
 * per-millisecond refill is not exact in binary. */
static void test_retry_after_is_exact(void **state)
{
    (void)state;
    static const double rates[] = {1, 3, 7, 13, 60, 0.3, 1000, 123.456, 17.5};
    static const int64_t first_ms[] = {1, 17, 333, 4999};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        for (size_t f = 0; f < sizeof first_ms / sizeof first_ms[0]; f++) {
            kf_limit_t *limit = kf_limit_new(rates[r], 1, 10);
            assert_non_null(limit);
            assert_true(kf_limit_take(limit, "k", 0, NULL));
            int64_t now = first_ms[f];
            int64_t retry = 0;
            if (kf_limit_take(limit, "k", now, &retry)) {
                kf_limit_free(limit); /* the rate refilled a whole token already */
                continue;
            }
            assert_true(retry >= 1);
            if (retry > 1) {
                int64_t again = 0;
                assert_false(kf_limit_take(limit, "k", now + retry - 1, &again));
                assert_int_equal(again, 1);
            }
            assert_true(kf_limit_take(limit, "k", now + retry, NULL));
            kf_limit_free(limit);
        }
    }
}

static void test_check_does_not_consume(void **state)
{
    (void)state;
    kf_limit_t *limit = kf_limit_new(60, 3, 100);
    /* An unknown key is allowed and not added. */
    assert_true(kf_limit_check(limit, "bob", 0, NULL));
    assert_int_equal(kf_limit_count(limit), 0);
    assert_true(kf_limit_take(limit, "bob", 0, NULL));
    assert_true(kf_limit_take(limit, "bob", 0, NULL));
    for (int i = 0; i < 10; i++)
        assert_true(kf_limit_check(limit, "bob", 0, NULL));
    assert_true(kf_limit_take(limit, "bob", 0, NULL));
    int64_t retry = 0;
    assert_false(kf_limit_check(limit, "bob", 250, &retry));
    assert_int_equal(retry, 750);
    assert_false(kf_limit_check(limit, "bob", 250, NULL));
    /* Check at a later time did not move the bucket: take sees the same state. */
    assert_false(kf_limit_take(limit, "bob", 250, &retry));
    assert_int_equal(retry, 750);
    assert_true(kf_limit_check(limit, "bob", 1000, NULL));
    assert_true(kf_limit_check(limit, "bob", 1000, NULL));
    assert_true(kf_limit_take(limit, "bob", 1000, NULL));
    assert_false(kf_limit_check(limit, "bob", 1000, NULL));
    kf_limit_free(limit);
}

static void test_reset_forgets(void **state)
{
    (void)state;
    kf_limit_t *limit = kf_limit_new(1, 2, 100);
    assert_true(kf_limit_take(limit, "carol", 0, NULL));
    assert_true(kf_limit_take(limit, "carol", 0, NULL));
    assert_true(kf_limit_take(limit, "dave", 0, NULL));
    assert_false(kf_limit_take(limit, "carol", 0, NULL));
    assert_int_equal(kf_limit_count(limit), 2);
    kf_limit_reset(limit, "carol");
    assert_int_equal(kf_limit_count(limit), 1);
    assert_true(kf_limit_take(limit, "carol", 0, NULL));
    assert_true(kf_limit_take(limit, "carol", 0, NULL));
    assert_false(kf_limit_take(limit, "carol", 0, NULL));
    /* Unknown keys and repeated resets are harmless. */
    kf_limit_reset(limit, "nobody");
    kf_limit_reset(limit, "dave");
    kf_limit_reset(limit, "dave");
    assert_int_equal(kf_limit_count(limit), 1);
    kf_limit_free(limit);
}

static void test_keys_independent(void **state)
{
    (void)state;
    kf_limit_t *limit = kf_limit_new(1, 1, 100);
    static const char *const keys[] = {"10.0.0.1", "10.0.0.2", "10.0.0.10", "a", "A", "a "};
    size_t n = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < n; i++) {
        assert_true(kf_limit_take(limit, keys[i], 0, NULL));
        for (size_t j = i + 1; j < n; j++)
            assert_true(kf_limit_check(limit, keys[j], 0, NULL));
        assert_false(kf_limit_take(limit, keys[i], 0, NULL));
    }
    assert_int_equal(kf_limit_count(limit), n);
    kf_limit_free(limit);
}

static void test_sweep_removes_idle(void **state)
{
    (void)state;
    /* One token a second, two at most. */
    kf_limit_t *limit = kf_limit_new(60, 2, 100);
    assert_true(kf_limit_take(limit, "one", 0, NULL)); /* full again at 1000 */
    assert_true(kf_limit_take(limit, "two", 0, NULL));
    assert_true(kf_limit_take(limit, "two", 0, NULL));     /* full again at 2000 */
    assert_true(kf_limit_take(limit, "late", 1500, NULL)); /* full again at 2500 */
    assert_int_equal(kf_limit_count(limit), 3);
    static const struct {
        int64_t now_ms;
        size_t removed;
        size_t left;
    } steps[] = {
        {0, 0, 3},    {999, 0, 3},  {1000, 1, 2},
        {1999, 0, 2}, {2000, 1, 1}, {500, 0, 1}, /* a clock stepping back makes nothing idle */
        {2499, 0, 1}, {2500, 1, 0}, {9999, 0, 0},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        assert_int_equal(kf_limit_sweep(limit, steps[i].now_ms), steps[i].removed);
        assert_int_equal(kf_limit_count(limit), steps[i].left);
    }
    assert_true(kf_limit_check(limit, "late", 2500, NULL));

    /* Many keys: the table fills to max_keys, sweeps empty it (and shrink it), and it works after.
     */
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "user%d", i);
        assert_true(kf_limit_take(limit, key, 10000 + (i % 2), NULL));
    }
    assert_int_equal(kf_limit_count(limit), 100);
    assert_int_equal(kf_limit_sweep(limit, 10000), 0);
    assert_int_equal(kf_limit_sweep(limit, 11000), 50); /* the ones taken at 10000 */
    assert_int_equal(kf_limit_sweep(limit, 11001), 50);
    assert_int_equal(kf_limit_count(limit), 0);
    assert_true(kf_limit_take(limit, "again", 20000, NULL));
    assert_true(kf_limit_take(limit, "again", 20000, NULL));
    assert_false(kf_limit_take(limit, "again", 20000, NULL));
    assert_int_equal(kf_limit_count(limit), 1);
    kf_limit_free(limit);
}

static void test_evicts_least_recently_used(void **state)
{
    (void)state;
    kf_limit_t *limit = kf_limit_new(1, 1, 3);
    assert_true(kf_limit_take(limit, "a", 0, NULL));
    assert_true(kf_limit_take(limit, "b", 1, NULL));
    assert_true(kf_limit_take(limit, "c", 2, NULL));
    /* A refused take is use too: "a" becomes the newest, "b" the stalest. */
    assert_false(kf_limit_take(limit, "a", 3, NULL));
    /* A check is not use: "b" stays the stalest. */
    assert_false(kf_limit_check(limit, "b", 4, NULL));
    assert_true(kf_limit_take(limit, "d", 5, NULL));
    assert_int_equal(kf_limit_count(limit), 3);
    assert_true(kf_limit_check(limit, "b", 6, NULL)); /* forgotten, so full */
    assert_false(kf_limit_check(limit, "a", 6, NULL));
    assert_false(kf_limit_check(limit, "c", 6, NULL));
    assert_false(kf_limit_check(limit, "d", 6, NULL));
    /* Next out is "c". */
    assert_true(kf_limit_take(limit, "e", 7, NULL));
    assert_true(kf_limit_check(limit, "c", 8, NULL));
    assert_false(kf_limit_check(limit, "a", 8, NULL));
    assert_int_equal(kf_limit_count(limit), 3);
    kf_limit_free(limit);

    /* max_keys 1: every new key replaces the last. */
    limit = kf_limit_new(1, 1, 1);
    assert_true(kf_limit_take(limit, "x", 0, NULL));
    assert_true(kf_limit_take(limit, "y", 0, NULL));
    assert_int_equal(kf_limit_count(limit), 1);
    assert_true(kf_limit_check(limit, "x", 0, NULL));
    assert_false(kf_limit_check(limit, "y", 0, NULL));
    kf_limit_free(limit);
}

static void test_flood_of_keys(void **state)
{
    (void)state;
    enum { MAX_KEYS = 1000, FLOOD = 100000 };
    kf_limit_t *limit = kf_limit_new(1, 1, MAX_KEYS);
    char key[32];
    for (int i = 0; i < FLOOD; i++) {
        snprintf(key, sizeof key, "attacker-%d@example.com", i);
        assert_true(kf_limit_take(limit, key, i, NULL));
        assert_true(kf_limit_count(limit) <= MAX_KEYS);
    }
    assert_int_equal(kf_limit_count(limit), MAX_KEYS);
    /* The newest MAX_KEYS are held (still empty); the ones before were evicted. */
    for (int i = FLOOD - MAX_KEYS; i < FLOOD; i++) {
        snprintf(key, sizeof key, "attacker-%d@example.com", i);
        assert_false(kf_limit_check(limit, key, FLOOD, NULL));
    }
    snprintf(key, sizeof key, "attacker-%d@example.com", FLOOD - MAX_KEYS - 1);
    assert_true(kf_limit_check(limit, key, FLOOD, NULL));
    kf_limit_free(limit);
}

static void test_time_backwards(void **state)
{
    (void)state;
    kf_limit_t *limit = kf_limit_new(60, 2, 100);
    assert_true(kf_limit_take(limit, "k", 10000, NULL));
    /* Earlier than the last update: no time passes, no refill, no corruption. */
    assert_true(kf_limit_take(limit, "k", 5000, NULL));
    int64_t retry = 0;
    assert_false(kf_limit_take(limit, "k", 5000, &retry));
    assert_int_equal(retry, 1000);
    assert_false(kf_limit_check(limit, "k", 0, &retry));
    assert_int_equal(retry, 1000);
    /* The clock did not move back for the bucket: refill counts from 10000, not from 5000. */
    assert_false(kf_limit_take(limit, "k", 10999, &retry));
    assert_int_equal(retry, 1);
    assert_true(kf_limit_take(limit, "k", 11000, NULL));
    kf_limit_free(limit);

    /* The extremes of int64 in both orders. */
    limit = kf_limit_new(60, 1, 100);
    assert_true(kf_limit_take(limit, "hi", INT64_MAX, NULL));
    assert_false(kf_limit_take(limit, "hi", INT64_MIN, &retry));
    assert_int_equal(retry, 1000);
    assert_true(kf_limit_take(limit, "lo", INT64_MIN, NULL));
    assert_false(kf_limit_take(limit, "lo", INT64_MIN, NULL));
    assert_true(kf_limit_take(limit, "lo", INT64_MAX, NULL));
    assert_false(kf_limit_take(limit, "lo", INT64_MAX, NULL));
    /* Both buckets are empty at INT64_MAX and no time passes after it: nothing is idle. */
    assert_int_equal(kf_limit_sweep(limit, INT64_MIN), 0);
    assert_int_equal(kf_limit_sweep(limit, INT64_MAX), 0);
    assert_int_equal(kf_limit_count(limit), 2);
    kf_limit_free(limit);
}

static void test_long_and_empty_keys(void **state)
{
    (void)state;
    kf_limit_t *limit = kf_limit_new(1, 1, 100);
    char *long_key = malloc(1025);
    memset(long_key, 'x', 1024);
    long_key[1024] = '\0';
    char *other = malloc(1025);
    memcpy(other, long_key, 1025);
    other[1023] = 'y'; /* differs only in the last byte */
    assert_true(kf_limit_take(limit, long_key, 0, NULL));
    assert_false(kf_limit_take(limit, long_key, 0, NULL));
    assert_true(kf_limit_check(limit, other, 0, NULL));
    assert_true(kf_limit_take(limit, other, 0, NULL));
    /* The key is copied: the caller's buffer can change or go away. */
    memset(long_key, 'z', 1024);
    assert_true(kf_limit_check(limit, long_key, 0, NULL));
    memset(long_key, 'x', 1024);
    assert_false(kf_limit_check(limit, long_key, 0, NULL));
    free(long_key);
    free(other);

    assert_true(kf_limit_take(limit, "", 0, NULL));
    int64_t retry = 0;
    assert_false(kf_limit_take(limit, "", 0, &retry));
    assert_int_equal(retry, 60000);
    assert_int_equal(kf_limit_count(limit), 3);
    kf_limit_reset(limit, "");
    assert_true(kf_limit_check(limit, "", 0, NULL));
    assert_int_equal(kf_limit_count(limit), 2);
    kf_limit_free(limit);
}

/* Failed logins: 5 per 15 minutes (one refill every 3 minutes), then lock-outs that double. */
static void test_charge_grows_the_delay(void **state)
{
    (void)state;
    const int64_t period = 3 * 60000;
    kf_limit_t *limit = kf_limit_new(5.0 / 15.0, 5, 16);
    int64_t now = 1000000, wait = 0;
    for (int i = 0; i < 4; i++) {
        assert_true(kf_limit_check(limit, "ana", now, NULL));
        wait = -1;
        kf_limit_charge(limit, "ana", now, &wait);
        assert_int_equal(wait, -1); /* not empty yet: untouched */
    }
    assert_true(kf_limit_check(limit, "ana", now, NULL));
    kf_limit_charge(limit, "ana", now, &wait);
    /* The fifth failure empties it: one period, then two, four, eight. */
    for (int64_t periods = 1; periods <= 8; periods *= 2) {
        assert_int_equal(wait, periods * period);
        assert_false(kf_limit_check(limit, "ana", now + wait - 1, NULL));
        now += wait;
        assert_true(kf_limit_check(limit, "ana", now, NULL));
        kf_limit_charge(limit, "ana", now, &wait);
    }
    assert_int_equal(wait, 16 * period);
    /* Once the debt is paid and the bucket full again, the past is forgiven. */
    now += wait + 5 * period;
    for (int i = 0; i < 5; i++)
        kf_limit_charge(limit, "ana", now, &wait);
    assert_int_equal(wait, period);
    /* The growth stops at 256 periods. */
    for (int i = 0; i < 20; i++) {
        now += wait;
        kf_limit_charge(limit, "ana", now, &wait);
    }
    assert_int_equal(wait, 256 * period);
    /* Other keys are unaffected, and a success (reset) forgets at once. */
    assert_true(kf_limit_check(limit, "bob", now, NULL));
    kf_limit_reset(limit, "ana");
    assert_true(kf_limit_check(limit, "ana", now, NULL));
    kf_limit_free(limit);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    static const struct {
        double per_minute;
        double burst;
        size_t max_keys;
    } cases[] = {
        {0, 1, 10}, {-1, 1, 10},  {NAN, 1, 10},      {INFINITY, 1, 10}, {1, 0.5, 10},
        {1, 0, 10}, {1, NAN, 10}, {1, INFINITY, 10}, {1, 1, 0},         {-INFINITY, 1, 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_null(kf_limit_new(cases[i].per_minute, cases[i].burst, cases[i].max_keys));
    kf_limit_free(NULL);
}

/* The window uses are shared in: the bucket's refill time, from 1 s to 7 days; slots are floor
 * divisions of the wall clock (ordered before 1970 too). */
static void test_window_arithmetic(void **state)
{
    (void)state;
    kf_limit_t *login = kf_limit_new(5 / 15.0, 5, 10);
    assert_int_equal(kf_limit_window_ms(login), 15 * 60 * 1000);
    kf_limit_t *fast = kf_limit_new(6000, 10, 10); /* 100 ms to refill: at least 1 s */
    assert_int_equal(kf_limit_window_ms(fast), 1000);
    kf_limit_t *slow = kf_limit_new(1e-9, 1e6, 10);
    assert_int_equal(kf_limit_window_ms(slow), 7 * 24 * 3600 * 1000LL);
    kf_limit_free(login);
    kf_limit_free(fast);
    kf_limit_free(slow);

    static const struct {
        int64_t window_ms, wall_ms, slot;
    } cases[] = {
        {1000, 0, 0},
        {1000, 999, 0},
        {1000, 1000, 1},
        {1000, 1999, 1},
        {1000, -1, -1},
        {1000, -1000, -1},
        {1000, -1001, -2},
        {900000, 1764946800000, 1961052},
        {7, INT64_MAX, INT64_MAX / 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(kf_limit_slot(cases[i].window_ms, cases[i].wall_ms), cases[i].slot);
}

/* What the other nodes used that was not merged yet: the difference in one window, all of it in
 * a new one, nothing for an old one or a total that went down (then counted from there). */
static void test_news(void **state)
{
    (void)state;
    static const struct {
        int64_t seen_slot, seen, slot, others;
        int64_t news, new_slot, new_seen;
    } cases[] = {
        {0, 0, 5, 3, 3, 5, 3},  /* first answer: all of it */
        {5, 3, 5, 3, 0, 5, 3},  /* nothing new */
        {5, 3, 5, 7, 4, 5, 7},  /* four more */
        {5, 7, 6, 2, 2, 6, 2},  /* a new window */
        {6, 2, 5, 9, 0, 6, 2},  /* a late answer about the window before */
        {6, 9, 6, 4, 0, 6, 4},  /* the counter went: from 4 on */
        {6, 4, 6, -1, 0, 6, 4}, /* nonsense */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t slot = cases[i].seen_slot, seen = cases[i].seen;
        assert_int_equal(kf_limit_news(&slot, &seen, cases[i].slot, cases[i].others),
                         cases[i].news);
        assert_int_equal(slot, cases[i].new_slot);
        assert_int_equal(seen, cases[i].new_seen);
    }
}

/* Merging others' uses into the local bucket: as takes they empty it but never below empty; as
 * failures they lock out with the growing delay; the same total twice is charged once. */
static void test_merge(void **state)
{
    (void)state;
    kf_limit_t *limit = kf_limit_new(60, 10, 100); /* 1 a second, bursts of 10 */
    int64_t now = 1000, wait = 0;
    assert_true(kf_limit_take(limit, "v1", now, NULL));                 /* 9 left here */
    assert_int_equal(kf_limit_merge(limit, "v1", 7, 6, now, false), 6); /* 3 left */
    assert_int_equal(kf_limit_merge(limit, "v1", 7, 6, now, false), 0); /* seen: still 3 */
    for (int i = 0; i < 3; i++)
        assert_true(kf_limit_take(limit, "v1", now, NULL));
    assert_false(kf_limit_take(limit, "v1", now, &wait));
    assert_int_equal(wait, 1000);
    /* More than there is: empty, not in debt (one bucket cannot go below empty either). */
    assert_int_equal(kf_limit_merge(limit, "v1", 7, 50, now, false), 44);
    assert_false(kf_limit_take(limit, "v1", now, &wait));
    assert_int_equal(wait, 1000);
    assert_true(kf_limit_take(limit, "v1", now + 1000, NULL));
    /* A key this node never saw: added, and charged. */
    assert_int_equal(kf_limit_merge(limit, "v2", 7, 10, now, false), 10);
    assert_false(kf_limit_take(limit, "v2", now, NULL));
    kf_limit_free(limit);

    /* As failures: 5 allowed per 15 min; 3 here and 3 elsewhere lock the account. */
    kf_limit_t *login = kf_limit_new(5 / 15.0, 5, 100);
    for (int i = 0; i < 3; i++)
        kf_limit_charge(login, "a@x", now, NULL);
    assert_true(kf_limit_check(login, "a@x", now, NULL));
    assert_int_equal(kf_limit_merge(login, "a@x", 1, 3, now, true), 3);
    assert_false(kf_limit_check(login, "a@x", now, &wait));
    /* Past empty, each failure doubles the wait: longer than one refill period (3 min). */
    assert_true(wait > 3 * 60 * 1000);
    /* A huge total from a broken counter is capped, not looped over for ever. */
    assert_int_equal(kf_limit_merge(login, "a@x", 1, INT64_MAX, now, true), 1000);
    kf_limit_free(login);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refuse),
        cmocka_unit_test(test_refill),
        cmocka_unit_test(test_retry_after_is_exact),
        cmocka_unit_test(test_check_does_not_consume),
        cmocka_unit_test(test_reset_forgets),
        cmocka_unit_test(test_keys_independent),
        cmocka_unit_test(test_sweep_removes_idle),
        cmocka_unit_test(test_evicts_least_recently_used),
        cmocka_unit_test(test_flood_of_keys),
        cmocka_unit_test(test_time_backwards),
        cmocka_unit_test(test_long_and_empty_keys),
        cmocka_unit_test(test_charge_grows_the_delay),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_window_arithmetic),
        cmocka_unit_test(test_news),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
