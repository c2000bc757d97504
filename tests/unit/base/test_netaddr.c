/* test_netaddr.c: address prefixes (src/base/netaddr.c): what parses, what is refused, and which
 * addresses each prefix holds, IPv4-mapped IPv6 peers included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
