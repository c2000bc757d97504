/* test_router.c: route matching, ids, 404 against 405 (with its Allow) against 501. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/err.h"
#include "http/router.h"

/* An application's entry: the route first, then what it keeps per route (here a tag), so the
 * stride is not the route's own size. */
typedef struct entry {
    kf_route_t route;
    int tag;
    char padding[13];
} entry_t;

static const entry_t routes[] = {
    {{"GET", "/api/conversations"}, 1, ""},
    {{"GET", "/api/conversations/{id}/messages"}, 2, ""},
    {{"POST", "/api/conversations/{id}/messages"}, 3, ""},
    {{"GET", "/a/{id}/b/{id}"}, 4, ""},
    {{"PURGE", "/cache"}, 5, ""},
};

static int match(const char *method, const char *path, kf_route_match_t *m)
{
    return kf_router_match(routes, sizeof routes / sizeof routes[0], sizeof routes[0],
                           (kf_str_t){method, strlen(method)}, (kf_str_t){path, strlen(path)}, m);
}

static void test_table(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        int rc;
        int tag; /* the entry matched, 0 for none */
        int64_t id0, id1;
        const char *allow; /* KF_EINVAL: the Allow value */
    } cases[] = {
        {"GET", "/api/conversations", 0, 1, 0, 0, NULL},
        {"HEAD", "/api/conversations", 0, 1, 0, 0, NULL},
        {"POST", "/api/conversations", KF_EINVAL, 0, 0, 0, "GET, HEAD"},
        {"GET", "/api/conversations/", KF_ENOTFOUND, 0, 0, 0, NULL},
        {"GET", "/api/conversations/12/messages", 0, 2, 12, 0, NULL},
        {"POST", "/api/conversations/12/messages", 0, 3, 12, 0, NULL},
        {"DELETE", "/api/conversations/12/messages", KF_EINVAL, 0, 0, 0, "GET, HEAD, POST"},
        {"OPTIONS", "/api/conversations/12/messages", KF_EINVAL, 0, 0, 0, "GET, HEAD, POST"},
        {"PATCH", "/a/3/b/4", KF_EINVAL, 0, 0, 0, "GET, HEAD"},
        {"TRACE", "/cache", KF_EINVAL, 0, 0, 0, "PURGE"},
        {"PURGE", "/cache", 0, 5, 0, 0, NULL},
        {"PURGE", "/a/3/b/4", KF_EINVAL, 0, 0, 0, "GET, HEAD"},
        {"PUT", "/nowhere", KF_ENOTFOUND, 0, 0, 0, NULL},
        {"GET", "/api/conversations/0/messages", KF_ENOTFOUND, 0, 0, 0, NULL},
        {"GET", "/api/conversations/-1/messages", KF_ENOTFOUND, 0, 0, 0, NULL},
        {"GET", "/api/conversations/1x/messages", KF_ENOTFOUND, 0, 0, 0, NULL},
        {"GET", "/api/conversations//messages", KF_ENOTFOUND, 0, 0, 0, NULL},
        {"GET", "/api/conversations/99999999999999999999/messages", KF_ENOTFOUND, 0, 0, 0, NULL},
        {"GET", "/api/conversations/9007199254740992/messages", 0, 2, 9007199254740992LL, 0, NULL},
        {"GET", "/api/conversations/9007199254740993/messages", KF_ENOTFOUND, 0, 0, 0, NULL},
        {"GET", "/api/conversations/12/messages/", KF_ENOTFOUND, 0, 0, 0, NULL},
        {"GET", "/api/conversations/12/messagesX", KF_ENOTFOUND, 0, 0, 0, NULL},
        {"GET", "/a/3/b/4", 0, 4, 3, 4, NULL},
        {"GET", "/a/3/b/", KF_ENOTFOUND, 0, 0, 0, NULL},
        {"GET", "", KF_ENOTFOUND, 0, 0, 0, NULL},
        /* Methods the server does not know: 501 whatever the path (RFC 9110 §9.1). */
        {"get", "/api/conversations", KF_EPROTO, 0, 0, 0, NULL},
        {"FOO", "/api/conversations", KF_EPROTO, 0, 0, 0, NULL},
        {"FOO", "/nowhere", KF_EPROTO, 0, 0, 0, NULL},
        {"GETS", "/api/conversations", KF_EPROTO, 0, 0, 0, NULL},
        {"", "/api/conversations", KF_EPROTO, 0, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kf_route_match_t m;
        int rc = match(cases[i].method, cases[i].path, &m);
        if (rc != cases[i].rc)
            fail_msg("%s %s: got %d, want %d", cases[i].method, cases[i].path, rc, cases[i].rc);
        if (rc == KF_EINVAL)
            assert_string_equal(m.allow, cases[i].allow);
        if (rc != 0)
            continue;
        assert_int_equal(routes[m.index].tag, cases[i].tag);
        if (cases[i].id0 != 0)
            assert_int_equal(m.ids[0], cases[i].id0);
        if (cases[i].id1 != 0)
            assert_int_equal(m.ids[1], cases[i].id1);
    }
}

/* Many methods on one path: the Allow value holds each once, and as many as fit. */
static void test_allow_bounded(void **state)
{
    (void)state;
    static const kf_route_t many[] = {
        {"GET", "/x"},
        {"GET", "/x"},
        {"POST", "/x"},
        {"METHOD-ONE", "/x"},
        {"METHOD-TWO", "/x"},
        {"METHOD-THREE", "/x"},
        {"METHOD-FOUR-TOO", "/x"},
        {"PUT", "/x"},
    };
    kf_route_match_t m;
    assert_int_equal(kf_router_match(many, sizeof many / sizeof many[0], sizeof many[0],
                                     KF_STR_LIT("DELETE"), KF_STR_LIT("/x"), &m),
                     KF_EINVAL);
    assert_string_equal(m.allow, "GET, HEAD, POST, METHOD-ONE, METHOD-TWO, METHOD-THREE, PUT");
    assert_true(strlen(m.allow) < KF_ROUTE_ALLOW_SIZE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table),
                                       cmocka_unit_test(test_allow_bounded)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
