/* test_hasher.c: password hashing on libuv's worker threads: results right, the loop keeps
 * turning while hashes run, at most max_running at once, a full queue refused at once, callbacks
 * in order of submission per slot, and freeing with hashes in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <uv.h>

#include "auth/auth.h"
#include "auth/hasher.h"
#include "base/err.h"

typedef struct counts {
    int matched, refused, hashed;
    int ticks;           /* timer ticks seen while hashes were pending */
    size_t most_pending; /* the largest kf_hasher_pending seen */
    kf_hasher_t *hasher;
    char encoded[KF_PASSWORD_HASH_SIZE];
} counts_t;

static void verify_cb(void *data, bool match)
{
    counts_t *c = data;
    if (match)
        c->matched++;
    else
        c->refused++;
}

static void hash_cb(void *data, int rc, const char *encoded)
{
    counts_t *c = data;
    assert_int_equal(rc, 0);
    assert_true(kf_auth_password_verify("new secret", encoded));
    c->hashed++;
}

static void tick_cb(uv_timer_t *timer)
{
    counts_t *c = timer->data;
    size_t pending = kf_hasher_pending(c->hasher);
    if (pending > c->most_pending)
        c->most_pending = pending;
    if (pending == 0) {
        uv_timer_stop(timer);
        uv_close((uv_handle_t *)timer, NULL);
        return;
    }
    c->ticks++;
}

static void test_verify_and_hash_off_the_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    counts_t c = {0};
    assert_int_equal(kf_auth_password_hash("right", c.encoded), 0);
    c.hasher = kf_hasher_new(&loop, 2, 6);
    /* 2 run, 6 wait: the ninth is refused at once and its callback never runs. */
    for (int i = 0; i < 8; i++)
        assert_int_equal(
            kf_hasher_verify(c.hasher, i % 2 == 0 ? "right" : "wrong", c.encoded, verify_cb, &c),
            0);
    assert_int_equal(kf_hasher_verify(c.hasher, "right", c.encoded, verify_cb, &c), KF_ELIMIT);
    assert_int_equal(kf_hasher_pending(c.hasher), 8);
    /* Nothing runs from inside the calls. */
    assert_int_equal(c.matched + c.refused, 0);
    uv_timer_t timer;
    uv_timer_init(&loop, &timer);
    timer.data = &c;
    uv_timer_start(&timer, tick_cb, 1, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.matched, 4);
    assert_int_equal(c.refused, 4);
    /* Eight scrypt runs, two at a time, take far longer than a millisecond: a loop that waited
     * for them would have ticked a handful of times at most. */
    assert_true(c.ticks >= 20);
    assert_int_equal(c.most_pending, 8);
    assert_int_equal(kf_hasher_hash(c.hasher, "new secret", hash_cb, &c), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.hashed, 1);
    kf_hasher_free(c.hasher);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void never_cb(void *data, bool match)
{
    (void)data;
    (void)match;
    fail_msg("a callback ran after its hasher was freed");
}

static void test_free_with_hashes_in_flight(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char encoded[KF_PASSWORD_HASH_SIZE];
    assert_int_equal(kf_auth_password_hash("pw", encoded), 0);
    kf_hasher_t *hasher = kf_hasher_new(&loop, 1, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(kf_hasher_verify(hasher, "pw", encoded, never_cb, NULL), 0);
    kf_hasher_free(hasher);
    /* The running one comes back to a freed hasher and frees itself (ASan checks). */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_and_hash_off_the_loop),
        cmocka_unit_test(test_free_with_hashes_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
