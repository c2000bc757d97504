/* test_netaddr.c: address prefixes (src/base/netaddr.c): what parses, what is refused, and which
 * addresses each prefix holds, IPv4-mapped IPv6 peers included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <string.h>
#include <stdio.h>

#include "base/netaddr.h"

static void test_parse(void **state)
{
    (void)state;
    static const char *const good[] = {"127.0.0.1", "127.0.0.0/8",   "0.0.0.0/0",   "::1",
                                       "::/0",      "2001:db8::/32", "10.1.2.3/32", "fe80::1/128"};
    static const char *const bad[] = {"",
                                      "/8",
                                      "localhost",
                                      "127.0.0.1/33",
                                      "::1/129",
                                      "127.0.0.1/",
                                      "127.0.0.1/x",
                                      "127.0.0.1/-1",
                                      " 127.0.0.1",
                                      "127.0.0.1 ",
                                      "127.0.0.1/8/8",
                                      "127.1",
                                      "10.0.0.0/0008"};
    kf_addr_prefix_t p;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (kf_addr_prefix_parse(good[i], &p) != 0)
            fail_msg("refused %s", good[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (kf_addr_prefix_parse(bad[i], &p) == 0)
            fail_msg("took %s", bad[i]);
    }
    assert_int_equal(kf_addr_prefix_parse("::1", &p), 0);
    assert_true(p.v6);
    assert_int_equal(p.bits, 128);
    assert_int_equal(kf_addr_prefix_parse("::ffff:10.0.0.0/8", &p), 0);
    assert_false(p.v6); /* an IPv4-mapped address is its IPv4 one */
}

static void test_match(void **state)
{
    (void)state;
    static const struct {
        const char *prefix, *address;
        bool in;
    } cases[] = {
        {"127.0.0.0/8", "127.0.0.1", true},
        {"127.0.0.0/8", "127.255.1.2", true},
        {"127.0.0.0/8", "128.0.0.1", false},
        {"127.0.0.0/8", "::ffff:127.0.0.1", true},
        {"127.0.0.0/8", "::1", false},
        {"::1", "::1", true},
        {"::1", "::2", false},
        {"::1", "127.0.0.1", false},
        {"10.0.0.0/9", "10.127.255.255", true},
        {"10.0.0.0/9", "10.128.0.0", false},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"2001:db8::/33", "2001:db8:7fff::1", true},
        {"2001:db8::/33", "2001:db8:8000::1", false},
        {"192.0.2.7", "192.0.2.7", true},
        {"192.0.2.7", "192.0.2.8", false},
        {"192.0.2.7", "not an address", false},
        {"192.0.2.7", "", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kf_addr_prefix_t p;
        assert_int_equal(kf_addr_prefix_parse(cases[i].prefix, &p), 0);
        if (kf_addr_prefix_match(&p, cases[i].address) != cases[i].in)
            fail_msg("%s in %s: expected %d", cases[i].address, cases[i].prefix, cases[i].in);
    }
}

/* The client of an X-Forwarded-For value behind proxies 127.0.0.0/8 and 10.0.0.0/8. */
static void test_forwarded_client(void **state)
{
    (void)state;
    static const struct {
        const char *value, *client; /* client NULL: none named (the peer is the client) */
    } cases[] = {
        {"192.0.2.1", "192.0.2.1"},
        {" 192.0.2.1 ", "192.0.2.1"},
        {"192.0.2.1, 10.0.0.5", "192.0.2.1"},       /* through an inner proxy we trust */
        {"203.0.113.9, 192.0.2.1", "192.0.2.1"},    /* the client's own entry is not believed */
        {"evil, 192.0.2.1,127.0.0.1", "192.0.2.1"}, /* left of the client: anything */
        {"10.0.0.1, 127.0.0.1", "10.0.0.1"},        /* every hop trusted: the farthest */
        {"2001:db8::1", "2001:db8::1"},
        {"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
        {"192.0.2.1, junk, 10.0.0.5",
         "10.0.0.5"}, /* the walk stops at junk: the proxy that saw it */
        {"", NULL},
        {"unknown", NULL},
        {"192.0.2.1,", NULL}, /* an empty last entry names nobody */
        {"[2001:db8::1]:443", NULL},
        {"192.0.2.1:80", NULL},
        {"0000000000000000000000000000000000000000000000000000192.0.2.1", NULL}, /* too long */
    };
    kf_addr_prefix_t trusted[2];
    assert_int_equal(kf_addr_prefix_parse("127.0.0.0/8", &trusted[0]), 0);
    assert_int_equal(kf_addr_prefix_parse("10.0.0.0/8", &trusted[1]), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[KF_ADDR_TEXT_SIZE] = "";
        bool named =
            kf_addr_forwarded_client(cases[i].value, strlen(cases[i].value), trusted, 2, out);
        if (named != (cases[i].client != NULL) || (named && strcmp(out, cases[i].client) != 0))
            fail_msg("\"%s\": got %s, expected %s", cases[i].value, named ? out : "none",
                     cases[i].client != NULL ? cases[i].client : "none");
    }
    /* With no proxy trusted beyond the peer, the last entry is the client. */
    char out[KF_ADDR_TEXT_SIZE];
    assert_true(kf_addr_forwarded_client("192.0.2.1, 127.0.0.1", 20, NULL, 0, out));
    assert_string_equal(out, "127.0.0.1");
    /* The value is not NUL-terminated: len bounds it. */
    assert_true(kf_addr_forwarded_client("192.0.2.1, 192.0.2.2", 9, trusted, 2, out));
    assert_string_equal(out, "192.0.2.1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_forwarded_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
