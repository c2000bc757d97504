/* fuzz_sniff.c: libFuzzer target for the attachment allow-list (base/sniff.h): whatever the
 * bytes, the sniffer reads only them (ASan checks) and answers one of the allowed types or NULL;
 * what it calls text is valid UTF-8 without NUL, and what it calls an image starts with that
 * image's signature.
 *
 * Input: the file's bytes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sniff.h"

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

static const char *const allowed[] = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes: a read past it is a heap overflow ASan reports. */
    uint8_t *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    const char *type = kf_sniff_type(copy, size);
    if (type != NULL) {
        bool known = false;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
            known = known || strcmp(type, allowed[i]) == 0;
        check(known, "the type is one of the allow-list");
        check(size > 0, "nothing is no type");
        if (strcmp(type, "text/plain") == 0)
            check(memchr(copy, 0, size) == NULL, "text has no NUL");
        if (strcmp(type, "image/png") == 0)
            check(size >= 8 && memcmp(copy, "\x89PNG", 4) == 0, "a PNG starts with its signature");
        check(kf_sniff_is_image(type) == (strncmp(type, "image/", 6) == 0), "images are images");
    }
    free(copy);
    return 0;
}
