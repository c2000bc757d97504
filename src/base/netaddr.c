/* netaddr.c: IP address prefixes and their matching. */
#include "base/netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* An address's bytes: IPv4 in 4, IPv6 in 16 (an IPv4-mapped one turned into its IPv4). */
static int parse_address(const char *text, bool *v6, uint8_t bytes[16])
{
    if (inet_pton(AF_INET, text, bytes) == 1) {
        *v6 = false;
        return 0;
    }
    if (inet_pton(AF_INET6, text, bytes) != 1)
        return KF_EINVAL;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(bytes, mapped, sizeof mapped) == 0) {
        memmove(bytes, bytes + 12, 4);
        *v6 = false;
        return 0;
    }
    *v6 = true;
    return 0;
}

int kf_addr_prefix_parse(const char *text, kf_addr_prefix_t *out)
{
    char address[64];
    const char *slash = strchr(text, '/');
    size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    if (len == 0 || len >= sizeof address)
        return KF_EINVAL;
    memcpy(address, text, len);
    address[len] = '\0';
    kf_addr_prefix_t p = {0};
    if (parse_address(address, &p.v6, p.bytes) != 0)
        return KF_EINVAL;
    unsigned max = p.v6 ? 128 : 32;
    p.bits = max;
    if (slash != NULL) {
        const char *digits = slash + 1;
        char *end;
        unsigned long bits = strtoul(digits, &end, 10);
        if (digits[0] < '0' || digits[0] > '9' || *end != '\0' || bits > max || end - digits > 3)
            return KF_EINVAL;
        p.bits = (unsigned)bits;
    }
    *out = p;
    return 0;
}

bool kf_addr_prefix_match(const kf_addr_prefix_t *prefix, const char *address)
{
    bool v6;
    uint8_t bytes[16];
    if (parse_address(address, &v6, bytes) != 0 || v6 != prefix->v6)
        return false;
    unsigned whole = prefix->bits / 8;
    unsigned rest = prefix->bits % 8;
    if (memcmp(bytes, prefix->bytes, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (bytes[whole] & mask) == (prefix->bytes[whole] & mask);
}

bool kf_addr_prefixes_match(const kf_addr_prefix_t *prefixes, size_t count, const char *address)
{
    for (size_t i = 0; i < count; i++) {
        if (kf_addr_prefix_match(&prefixes[i], address))
            return true;
    }
    return false;
}

/* Copies the entry value[start, end) without surrounding spaces and tabs into out when it is an
 * IP address. */
static bool entry_address(const char *value, size_t start, size_t end, char out[KF_ADDR_TEXT_SIZE])
{
    while (start < end && (value[start] == ' ' || value[start] == '\t'))
        start++;
    while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    if (end == start || end - start >= KF_ADDR_TEXT_SIZE)
        return false;
    char text[KF_ADDR_TEXT_SIZE];
    memcpy(text, value + start, end - start);
    text[end - start] = '\0';
    bool v6;
    uint8_t bytes[16];
    if (parse_address(text, &v6, bytes) != 0)
        return false;
    memcpy(out, text, end - start + 1);
    return true;
}

bool kf_addr_forwarded_client(const char *value, size_t len, const kf_addr_prefix_t *trusted,
                              size_t count, char out[KF_ADDR_TEXT_SIZE])
{
    bool found = false;
    size_t end = len;
    for (;;) {
        size_t start = end;
        while (start > 0 && value[start - 1] != ',')
            start--;
        char entry[KF_ADDR_TEXT_SIZE];
        if (!entry_address(value, start, end, entry))
            return found; /* the last good entry, a proxy we trust, had it from this one */
        memcpy(out, entry, strlen(entry) + 1);
        found = true;
        if (!kf_addr_prefixes_match(trusted, count, entry) || start == 0)
            return true;
        end = start - 1;
    }
}
