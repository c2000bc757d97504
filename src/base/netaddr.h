/* netaddr.h: IP address prefixes ("10.0.0.0/8", "::1", "192.0.2.7"), for the allow-list of
 * GET /metrics (--metrics-allow). */
#ifndef KF_NETADDR_H
#define KF_NETADDR_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kf_addr_prefix {
    bool v6;           /* an IPv6 prefix (else IPv4) */
    uint8_t bytes[16]; /* the address, network order (4 used for IPv4) */
    unsigned bits;     /* the prefix length: 0 to 32, or 0 to 128 */
} kf_addr_prefix_t;

/* Parses an address with an optional /BITS (a plain address is the one host). Returns 0, or
 * KF_EINVAL for anything else (a host name, bits out of range, spaces). */
int kf_addr_prefix_parse(const char *text, kf_addr_prefix_t *out);
/* Whether the address (text, as kf_req_peer gives it) is within the prefix. An IPv4-mapped IPv6
 * address (::ffff:192.0.2.7) is taken as its IPv4 address. False for text that is no address. */
bool kf_addr_prefix_match(const kf_addr_prefix_t *prefix, const char *address);

#endif
