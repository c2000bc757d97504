/* buf.h: a growable byte buffer and a borrowed string view. */
#ifndef KF_BUF_H
#define KF_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "base/str.h"

/* A heap buffer; data is always NUL-terminated after len when cap > 0. Out of memory aborts. */
typedef struct kf_buf {
    char *data; /* owned bytes, or NULL when empty and never grown */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
} kf_buf_t;

void kf_buf_init(kf_buf_t *b);
void kf_buf_free(kf_buf_t *b);
/* Makes room for extra more bytes. */
void kf_buf_reserve(kf_buf_t *b, size_t extra);
void kf_buf_append(kf_buf_t *b, const void *data, size_t len);
void kf_buf_append_str(kf_buf_t *b, const char *s);
void kf_buf_printf(kf_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes, moving the rest to the front. */
void kf_buf_consume(kf_buf_t *b, size_t n);
void kf_buf_reset(kf_buf_t *b);
/* Hands the bytes to the caller (who frees them with free()) and leaves b empty. */
char *kf_buf_steal(kf_buf_t *b, size_t *len);

/* Allocation helpers that abort on out-of-memory, for small allocations. */
void *kf_xmalloc(size_t n);
void *kf_xcalloc(size_t count, size_t n);
void *kf_xrealloc(void *p, size_t n);
char *kf_xstrdup(const char *s);
char *kf_xstrndup(const char *s, size_t n);

/* Fault injection, for tests only: the nth allocation made through the kf_x* helpers (kf_buf
 * included) from now on (1 = the next one) fails as if memory had run out, which aborts as
 * promised above; 0 turns it off. It counts, then stays off once it has fired. The server never
 * calls it. (jansson's allocations, which callers do handle, are failed through
 * json_set_alloc_funcs: tests/unit/support/fault.h.) */
void kf_alloc_fail_nth(unsigned long nth);

#endif
