/* buf.c: growable buffers and allocation wrappers. */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void out_of_memory(void)
{
    fputs("kefu: out of memory\n", stderr);
    abort();
}

/* Allocations left before the injected failure (kf_alloc_fail_nth); 0 when none is armed. */
static unsigned long fail_countdown;

void kf_alloc_fail_nth(unsigned long nth)
{
    fail_countdown = nth;
}

/* True when this allocation is the one a test asked to fail. */
static bool injected_failure(void)
{
    return fail_countdown > 0 && --fail_countdown == 0;
}

void *kf_xmalloc(size_t n)
{
    void *p = injected_failure() ? NULL : malloc(n == 0 ? 1 : n);
    if (p == NULL)
        out_of_memory();
    return p;
}

void *kf_xcalloc(size_t count, size_t n)
{
    void *p = injected_failure() ? NULL : calloc(count == 0 ? 1 : count, n == 0 ? 1 : n);
    if (p == NULL)
        out_of_memory();
    return p;
}

void *kf_xrealloc(void *p, size_t n)
{
    void *q = injected_failure() ? NULL : realloc(p, n == 0 ? 1 : n);
    if (q == NULL)
        out_of_memory();
    return q;
}

char *kf_xstrdup(const char *s)
{
    return kf_xstrndup(s, strlen(s));
}

char *kf_xstrndup(const char *s, size_t n)
{
    char *p = kf_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void kf_buf_init(kf_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void kf_buf_free(kf_buf_t *b)
{
    free(b->data);
    kf_buf_init(b);
}

void kf_buf_reserve(kf_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap *= 2;
    b->data = kf_xrealloc(b->data, cap);
    b->cap = cap;
}

void kf_buf_append(kf_buf_t *b, const void *data, size_t len)
{
    kf_buf_reserve(b, len);
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void kf_buf_append_str(kf_buf_t *b, const char *s)
{
    kf_buf_append(b, s, strlen(s));
}

void kf_buf_printf(kf_buf_t *b, const char *fmt, ...)
{
    /* Formats straight into the spare room when it fits, as it mostly does: one pass, not two. */
    size_t room = b->cap - b->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->cap > 0 ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (b->cap > 0)
            b->data[b->len] = '\0';
        return;
    }
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return;
    }
    kf_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void kf_buf_consume(kf_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data != NULL)
        b->data[b->len] = '\0';
}

void kf_buf_reset(kf_buf_t *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

char *kf_buf_steal(kf_buf_t *b, size_t *len)
{
    char *p = b->data;
    if (len != NULL)
        *len = b->len;
    if (p == NULL)
        p = kf_xstrdup("");
    kf_buf_init(b);
    return p;
}
