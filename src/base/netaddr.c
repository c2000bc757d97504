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
