/* test_assets.c: the table of embedded web files: exact lookup, and the content type of each
 * kind of file it may hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_content_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
