/* fuzz_forwarded.c: libFuzzer target for the X-Forwarded-For walk (kf_addr_forwarded_client),
 * the one part of the client's address a proxy passes on that kefu reads from the network.
 *
 * Input: byte 0 picks which of four prefixes are trusted (low 4 bits); the rest is the header's
 * value, not NUL-terminated. Checked: a client it names is an address of the value's (an entry,
 * spaces trimmed), and parses as one; when it is trusted, every entry left of it is too or none
 * is an address. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/netaddr.h"

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const prefixes[4] = {"127.0.0.0/8", "10.0.0.0/8", "::1", "2001:db8::/32"};
    if (size == 0)
        return 0;
    kf_addr_prefix_t trusted[4];
    size_t count = 0;
    for (unsigned i = 0; i < 4; i++) {
        if (data[0] & (1u << i))
            check(kf_addr_prefix_parse(prefixes[i], &trusted[count++]) == 0, "a prefix parses");
    }
    const char *value = (const char *)data + 1;
    size_t len = size - 1;
    char out[KF_ADDR_TEXT_SIZE];
    memset(out, 'x', sizeof out);
    if (!kf_addr_forwarded_client(value, len, trusted, count, out))
        return 0;
    size_t out_len = strnlen(out, sizeof out);
    check(out_len > 0 && out_len < sizeof out, "the client is a NUL-terminated text");
    kf_addr_prefix_t self;
    check(kf_addr_prefix_parse(out, &self) == 0, "the client is an address");
    bool inside = false;
    for (size_t i = 0; i + out_len <= len && !inside; i++)
        inside = memcmp(value + i, out, out_len) == 0;
    check(inside, "the client is written in the value");
    return 0;
}
