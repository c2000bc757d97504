/* test_buf.c: growable buffers, and the allocation helpers that abort when memory runs out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"

static void test_buf_append_and_consume(void **state)
{
    (void)state;
    kf_buf_t b;
    kf_buf_init(&b);
    kf_buf_append_str(&b, "hello");
    kf_buf_printf(&b, " %d %s", 42, "world");
    assert_string_equal(b.data, "hello 42 world");
    assert_int_equal(b.len, 14);
    kf_buf_consume(&b, 6);
    assert_string_equal(b.data, "42 world");
    kf_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    kf_buf_free(&b);
    assert_null(b.data);
}

static void test_buf_growth(void **state)
{
    (void)state;
    kf_buf_t b;
    kf_buf_init(&b);
    for (int i = 0; i < 100000; i++)
        kf_buf_append(&b, "x", 1);
    assert_int_equal(b.len, 100000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    size_t len;
    char *stolen = kf_buf_steal(&b, &len);
    assert_int_equal(len, 100000);
    assert_null(b.data);
    free(stolen);
    stolen = kf_buf_steal(&b, &len);
    assert_string_equal(stolen, "");
    free(stolen);
}

/* printf into the spare room when the text fits, and growing first when it does not: at every
 * length around the room left, including the one that leaves no byte for the terminator. */
static void test_buf_printf_room(void **state)
{
    (void)state;
    for (size_t fill = 0; fill < 70; fill++) {
        kf_buf_t b;
        kf_buf_init(&b);
        char expect[256];
        memset(expect, 'a', fill);
        kf_buf_append(&b, expect, fill); /* capacity 64 or 128: room around the text below */
        size_t cap = b.cap;
        kf_buf_printf(&b, "%s-%d", "0123456789012345678901234567890123456789", 7);
        snprintf(expect + fill, sizeof expect - fill, "%s-%d",
                 "0123456789012345678901234567890123456789", 7);
        assert_string_equal(b.data, expect);
        assert_int_equal(b.len, strlen(expect));
        assert_true(b.cap > b.len);
        assert_true(b.cap >= cap);
        kf_buf_free(&b);
    }
}

static void test_buf_binary(void **state)
{
    (void)state;
    kf_buf_t b;
    kf_buf_init(&b);
    kf_buf_append(&b, "a\0b", 3);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 3);
    kf_buf_reset(&b);
    assert_int_equal(b.len, 0);
    kf_buf_free(&b);
}

/* ---- out of memory: a small allocation that fails aborts (kf_alloc_fail_nth injects it) ---- */

/* Runs fn in a child process; true when the child died of SIGABRT after saying why. */
static bool aborts_out_of_memory(void (*fn)(void))
{
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipe_fds[1], 2);
        close(pipe_fds[0]);
        fn();
        _exit(0);
    }
    close(pipe_fds[1]);
    char said[256];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof said - 1 && (n = read(pipe_fds[0], said + len, sizeof said - 1 - len)) > 0)
        len += (size_t)n;
    said[len] = '\0';
    close(pipe_fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
           strstr(said, "kefu: out of memory") != NULL;
}

static void first_malloc_fails(void)
{
    kf_alloc_fail_nth(1);
    free(kf_xmalloc(16));
}

static void second_calloc_fails(void)
{
    kf_alloc_fail_nth(2);
    free(kf_xcalloc(4, 4));
    free(kf_xcalloc(4, 4));
}

static void strdup_fails(void)
{
    kf_alloc_fail_nth(1);
    free(kf_xstrdup("copy"));
}

static void buf_growth_fails(void)
{
    kf_buf_t b;
    kf_buf_init(&b);
    kf_buf_append(&b, "x", 1); /* 64 bytes */
    kf_alloc_fail_nth(1);
    char big[200] = {0};
    kf_buf_append(&b, big, sizeof big); /* grows: realloc fails */
    kf_buf_free(&b);
}

static void buf_printf_fails(void)
{
    kf_buf_t b;
    kf_buf_init(&b);
    kf_alloc_fail_nth(1);
    kf_buf_printf(&b, "%d", 42);
    kf_buf_free(&b);
}

static void test_out_of_memory_aborts(void **state)
{
    (void)state;
    assert_true(aborts_out_of_memory(first_malloc_fails));
    assert_true(aborts_out_of_memory(second_calloc_fails));
    assert_true(aborts_out_of_memory(strdup_fails));
    assert_true(aborts_out_of_memory(buf_growth_fails));
    assert_true(aborts_out_of_memory(buf_printf_fails));
}

static void test_alloc_fault_counts_and_disarms(void **state)
{
    (void)state;
    /* Armed for the third allocation, two pass; disarmed, none fails. */
    kf_alloc_fail_nth(3);
    void *a = kf_xmalloc(8);
    void *b = kf_xrealloc(NULL, 8);
    kf_alloc_fail_nth(0);
    void *c = kf_xmalloc(8);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_and_consume),
        cmocka_unit_test(test_buf_growth),
        cmocka_unit_test(test_buf_binary),
        cmocka_unit_test(test_buf_printf_room),
        cmocka_unit_test(test_out_of_memory_aborts),
        cmocka_unit_test(test_alloc_fault_counts_and_disarms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
