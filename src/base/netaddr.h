/* netaddr.h: IP address prefixes ("10.0.0.0/8", "::1", "192.0.2.7"), for the allow-list of
 * GET /metrics (--metrics-allow) and the trusted proxies (--trusted-proxy), and the client a
 * trusted proxy's X-Forwarded-For names. */
#ifndef KF_NETADDR_H
#define KF_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
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
/* Whether address is within any of the count prefixes. */
bool kf_addr_prefixes_match(const kf_addr_prefix_t *prefixes, size_t count, const char *address);

/* Room for an address kf_addr_forwarded_client writes, and its NUL. */
#define KF_ADDR_TEXT_SIZE 46

/* The client an X-Forwarded-For value (len bytes, not NUL-terminated) names, as a request from a
 * trusted proxy carries it: its entries read from the right, each proxy appending the address it
 * had the request from, the first one not within trusted is the client (what is left of it may
 * be anything the client sent). An entry that is not an IP address stops the walk: the client is
 * then the entry right of it. Writes the address into out and returns true; false when the value
 * names no address (empty, or its last entry is none): the peer itself is the client then. */
bool kf_addr_forwarded_client(const char *value, size_t len, const kf_addr_prefix_t *trusted,
                              size_t count, char out[KF_ADDR_TEXT_SIZE]);

#endif
