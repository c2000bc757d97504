/* str.h: borrowed string views and the small string helpers every layer uses: comparison, a
 * strict decimal parser, UTF-8 length, trimming, ASCII lower-casing. */
#ifndef KF_BASE_STR_H
#define KF_BASE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A view into memory someone else owns; not NUL-terminated. */
typedef struct kf_str {
    const char *ptr; /* first byte, or NULL for "absent" */
    size_t len;      /* number of bytes */
} kf_str_t;

#define KF_STR_LIT(s) ((kf_str_t){(s), sizeof(s) - 1})

/* True when the view equals the NUL-terminated string exactly (case-sensitive). */
bool kf_str_eq(kf_str_t a, const char *b);
/* True when the view equals b ignoring ASCII case. */
bool kf_str_ieq(kf_str_t a, const char *b);

/* The view without optional white space (spaces and tabs, HTTP's OWS) at either end. */
kf_str_t kf_str_trim_ows(kf_str_t s);

/* Parses a decimal unsigned 64-bit integer that fills the whole view ("0", "123"; no sign, no
 * spaces, no leading '+'). Returns 0, or KF_EINVAL (empty, other characters, overflow). */
int kf_parse_u64(kf_str_t s, uint64_t *out);

/* The value of a hexadecimal digit (either case), or -1. */
int kf_hex_digit(char c);

/* Code points in s, which is valid UTF-8 (continuation bytes are not counted). */
size_t kf_utf8_length(const char *s);
/* A copy of s without surrounding ASCII whitespace; the caller frees it. */
char *kf_trim_copy(const char *s);
/* Lower-cases the ASCII letters of s in place. */
void kf_ascii_lower(char *s);

#endif
