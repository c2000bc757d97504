/* test_assets.c: the table of embedded web files (exact lookup, the content type of each kind of
 * file, the build's gzip encodings and entity tags) and the two header parsers that choose how
 * one is served: Accept-Encoding and If-None-Match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "http/assets.h"

static void test_find(void **state)
{
    (void)state;
    const kf_asset_t *chat = kf_asset_find("chat.html", 9);
    assert_non_null(chat);
    assert_string_equal(chat->name, "chat.html");
    assert_true(chat->len > 0);
    /* Exact names only: no prefix, no suffix, no path. */
    assert_null(kf_asset_find("chat.htm", 8));
    assert_null(kf_asset_find("chat.html5", 10));
    assert_null(kf_asset_find("../chat.html", 12));
    assert_null(kf_asset_find("", 0));
    assert_null(kf_asset_find("missing.js", 10));
}

static void test_content_types(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *type;
    } cases[] = {
        {"a.html", "text/html; charset=utf-8"},
        {"a.js", "text/javascript; charset=utf-8"},
        {"a.css", "text/css; charset=utf-8"},
        {"a.svg", "image/svg+xml"},
        {"a.png", "image/png"},
        {"a.ico", "image/x-icon"},
        {"a.bin", "application/octet-stream"},
        {"README", "application/octet-stream"},
        {"a.tar.html", "text/html; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(kf_asset_content_type(cases[i].name), cases[i].type);
}

/* Every asset's gzip encoding inflates to its bytes, and its tag is its SHA-256's first 64 bits. */
static void test_encodings_and_tags(void **state)
{
    (void)state;
    size_t with_gzip = 0;
    for (const kf_asset_t *a = kf_assets; a->name != NULL; a++) {
        unsigned char digest[SHA256_DIGEST_LENGTH];
        SHA256(a->data, a->len, digest);
        char hex[17];
        for (int i = 0; i < 8; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        assert_string_equal(a->tag, hex);
        if (a->gz == NULL)
            continue;
        with_gzip++;
        assert_true(a->gz_len < a->len);
        unsigned char *plain = malloc(a->len + 1);
        z_stream z;
        memset(&z, 0, sizeof z);
        assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
        z.next_in = (unsigned char *)a->gz;
        z.avail_in = (uInt)a->gz_len;
        z.next_out = plain;
        z.avail_out = (uInt)a->len + 1;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        assert_int_equal(z.total_out, a->len);
        inflateEnd(&z);
        assert_memory_equal(plain, a->data, a->len);
        free(plain);
    }
    /* The pages, scripts and style sheet all compress. */
    assert_true(with_gzip >= 7);
}

static kf_str_t view(const char *s)
{
    return (kf_str_t){s, strlen(s)};
}

static void test_accepts_gzip(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        bool gzip;
    } cases[] = {
        {"gzip", true},
        {"gzip, deflate, br", true},
        {"br;q=1.0, gzip;q=0.8, *;q=0.1", true},
        {"GZIP", true},
        {"x-gzip", true},
        {"*", true},
        {"deflate, *;q=0.5", true},
        {" gzip ; q=0.001 ", true},
        {"gzip;q=1", true},
        {"gzip;q=1.000", true},
        {"", false},
        {"identity", false},
        {"br", false},
        {"gzip;q=0", false},
        {"gzip;q=0.000", false},
        {"gzip;q=0, *", false},
        {"*;q=0", false},
        {"*, gzip;q=0", false},
        {"gzipx", false},
        {"gzip;q=2", false},
        {"gzip;q=1.5", false},
        {"gzip;q=0.0001", false},
        {"gzip;level=9", false},
        {"gzip;q=", false},
        {",,,", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (kf_http_accepts_gzip(view(cases[i].value)) != cases[i].gzip)
            fail_msg("Accept-Encoding: %s", cases[i].value);
    }
}

static void test_etag_matches(void **state)
{
    (void)state;
    const char *etag = "\"0123456789abcdef\"";
    static const struct {
        const char *value;
        bool match;
    } cases[] = {
        {"\"0123456789abcdef\"", true},
        {"W/\"0123456789abcdef\"", true},
        {"*", true},
        {" * ", true},
        {"\"x\", \"0123456789abcdef\"", true},
        {"\"x\",W/\"0123456789abcdef\" , \"y\"", true},
        {"\"0123456789abcdef-gz\"", false},
        {"0123456789abcdef", false},
        {"\"0123456789abcdef", false},
        {"\"\"", false},
        {"", false},
        {"**", false},
        {"\"a,b\", \"0123456789abcde\"", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (kf_http_etag_matches(view(cases[i].value), etag) != cases[i].match)
            fail_msg("If-None-Match: %s", cases[i].value);
    }
    /* A malformed tag of ours matches nothing. */
    assert_false(kf_http_etag_matches(view("*"), "unquoted"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_content_types),
        cmocka_unit_test(test_encodings_and_tags),
        cmocka_unit_test(test_accepts_gzip),
        cmocka_unit_test(test_etag_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
