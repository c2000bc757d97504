/* str.c: string views and helpers. */
#include "base/str.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/err.h"

bool kf_str_eq(kf_str_t a, const char *b)
{
    size_t n = strlen(b);
    return a.ptr != NULL && a.len == n && memcmp(a.ptr, b, n) == 0;
}

bool kf_str_ieq(kf_str_t a, const char *b)
{
    size_t n = strlen(b);
    return a.ptr != NULL && a.len == n && strncasecmp(a.ptr, b, n) == 0;
}

kf_str_t kf_str_trim_ows(kf_str_t s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

int kf_parse_u64(kf_str_t s, uint64_t *out)
{
    if (s.len == 0)
        return KF_EINVAL;
    uint64_t result = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c < '0' || c > '9')
            return KF_EINVAL;
        uint64_t digit = (uint64_t)(c - '0');
        if (result > (UINT64_MAX - digit) / 10)
            return KF_EINVAL;
        result = result * 10 + digit;
    }
    *out = result;
    return 0;
}

int kf_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t kf_utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    }
    return n;
}

char *kf_trim_copy(const char *s)
{
    while (*s != '\0' && isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    return kf_xstrndup(s, len);
}

void kf_ascii_lower(char *s)
{
    for (; *s != '\0'; s++) {
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
    }
}
