/* fuzz_headers.c: libFuzzer target for the header values that choose how an embedded file is
 * served (http/assets.h): Accept-Encoding and If-None-Match. Beyond never reading out of bounds,
 * it checks what must hold whatever precedes or follows: an explicit refusal of gzip placed last
 * wins, a matching tag placed first matches, and "*" alone always matches.
 *
 * Input: the header value. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/assets.h"

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return -1;
    const char *value = (const char *)data;
    bool gzip = kf_http_accepts_gzip((kf_str_t){value, size});
    check(gzip == kf_http_accepts_gzip((kf_str_t){value, size}), "accepts_gzip is a function");
    (void)kf_http_etag_matches((kf_str_t){value, size}, "\"0123456789abcdef\"");

    /* Without quotes in the input, elements cannot swallow what follows: a refusal placed last
     * decides. */
    if (memchr(value, '"', size) == NULL) {
        char buf[4200];
        int n = snprintf(buf, sizeof buf, "%.*s, gzip;q=0", (int)size, value);
        check(!kf_http_accepts_gzip((kf_str_t){buf, (size_t)n}), "gzip;q=0 last refuses gzip");
    }
    char first[4200];
    int n = snprintf(first, sizeof first, "\"0123456789abcdef\", %.*s", (int)size, value);
    check(kf_http_etag_matches((kf_str_t){first, (size_t)n}, "\"0123456789abcdef\""),
          "a matching tag first matches");
    check(kf_http_etag_matches((kf_str_t){"*", 1}, "\"x\""), "* matches");
    return 0;
}
