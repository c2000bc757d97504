/* test_browsing.c: the table of visitors online (src/chat/browsing.c): a page report brings a
 * visitor online and a change of page is told, a push request or an open connection keeps them
 * online, silence past offline_after_ms takes them off (told once), a rule fires once per online
 * stretch, and a name change is told; two loops' handles share one table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "chat/browsing.h"

#define OFFLINE_MS 30000

typedef struct told {
    int online;  /* changes told with online true */
    int offline; /* ... and false */
    int64_t last_id;
    char last_url[64];
} told_t;

static void changed_cb(void *ctx, const kf_browsing_visitor_t *v, bool online)
{
    told_t *told = ctx;
    if (online)
        told->online++;
    else
        told->offline++;
    told->last_id = v->visitor_id;
    snprintf(told->last_url, sizeof told->last_url, "%s", v->url);
}

static size_t open_connections; /* what connections_cb answers for visitor 7 */

static size_t connections_cb(void *ctx, int64_t visitor_id)
{
    (void)ctx;
    return visitor_id == 7 ? open_connections : 0;
}

static void test_online_moves_and_goes(void **state)
{
    (void)state;
    told_t told = {0};
    kf_browsing_t *b = kf_browsing_new(OFFLINE_MS, changed_cb, &told);
    assert_null(kf_browsing_find(b, 5));
    kf_browsing_seen(b, 5, 1000); /* no page yet: not listed */
    assert_int_equal(kf_browsing_count(b), 0);

    kf_browsing_page(b, 5, NULL, "https://x.example/", "Home", 1700000000000, 1000);
    assert_int_equal(told.online, 1);
    kf_browsing_visitor_t *v = kf_browsing_find(b, 5);
    assert_non_null(v);
    assert_string_equal(v->url, "https://x.example/");
    assert_string_equal(v->name, "");
    assert_int_equal(v->since, 1700000000000);
    assert_int_equal(v->page_since, 1700000000000);

    /* The same page again is no news; another page is, and keeps when they came. */
    kf_browsing_page(b, 5, NULL, "https://x.example/", "Home", 1700000001000, 2000);
    assert_int_equal(told.online, 1);
    kf_browsing_page(b, 5, NULL, "https://x.example/pricing", "Pricing", 1700000002000, 3000);
    assert_int_equal(told.online, 2);
    assert_string_equal(told.last_url, "https://x.example/pricing");
    v = kf_browsing_find(b, 5);
    assert_int_equal(v->since, 1700000000000);
    assert_int_equal(v->page_since, 1700000002000);

    /* A name, once. */
    kf_browsing_rename(b, 5, "Mia");
    kf_browsing_rename(b, 5, "Mia");
    assert_int_equal(told.online, 3);
    assert_string_equal(kf_browsing_find(b, 5)->name, "Mia");

    /* Push requests keep them; silence takes them off, told once. */
    kf_browsing_seen(b, 5, 20000);
    kf_browsing_sweep(b, 20000 + OFFLINE_MS - 1, connections_cb, NULL);
    assert_int_equal(kf_browsing_count(b), 1);
    kf_browsing_sweep(b, 20000 + OFFLINE_MS, connections_cb, NULL);
    assert_int_equal(kf_browsing_count(b), 0);
    assert_int_equal(told.offline, 1);
    assert_int_equal(told.last_id, 5);
    kf_browsing_sweep(b, 90000, connections_cb, NULL);
    assert_int_equal(told.offline, 1);
    kf_browsing_free(b);
}

static void test_open_connection_keeps_online(void **state)
{
    (void)state;
    told_t told = {0};
    kf_browsing_t *b = kf_browsing_new(OFFLINE_MS, changed_cb, &told);
    kf_browsing_page(b, 7, "Li", "https://x.example/", "", 1, 1000);
    kf_browsing_page(b, 8, NULL, "https://x.example/", "", 1, 1000);
    open_connections = 1;
    kf_browsing_sweep(b, 1000 + OFFLINE_MS * 3, connections_cb, NULL);
    assert_non_null(kf_browsing_find(b, 7));
    assert_null(kf_browsing_find(b, 8));
    /* Closed: online until offline_after_ms after the last sweep that saw it open. */
    open_connections = 0;
    kf_browsing_sweep(b, 1000 + OFFLINE_MS * 3 + 5000, connections_cb, NULL);
    assert_non_null(kf_browsing_find(b, 7));
    kf_browsing_sweep(b, 1000 + OFFLINE_MS * 4, connections_cb, NULL);
    assert_null(kf_browsing_find(b, 7));
    assert_int_equal(told.offline, 2);
    kf_browsing_free(b);
}

static void test_rules_fire_once_a_stretch(void **state)
{
    (void)state;
    kf_browsing_t *b = kf_browsing_new(OFFLINE_MS, NULL, NULL);
    assert_false(kf_browsing_fire(b, 5, 1)); /* not online */
    kf_browsing_page(b, 5, NULL, "https://x.example/", "", 1, 1000);
    assert_true(kf_browsing_fire(b, 5, 1));
    assert_false(kf_browsing_fire(b, 5, 1));
    assert_true(kf_browsing_fire(b, 5, 2));
    for (int64_t rule = 3; rule <= KF_BROWSING_MAX_FIRED; rule++)
        assert_true(kf_browsing_fire(b, 5, rule));
    assert_false(kf_browsing_fire(b, 5, 100)); /* the table is full: no more this stretch */
    /* Gone and back: a new stretch. */
    kf_browsing_sweep(b, 1000 + OFFLINE_MS, NULL, NULL);
    kf_browsing_page(b, 5, NULL, "https://x.example/", "", 2, 1000 + OFFLINE_MS);
    assert_true(kf_browsing_fire(b, 5, 1));
    kf_browsing_free(b);
}

/* Two loops' handles on one table: a visitor reported through one is online through the other,
 * each handle's changes are told to its own owner, an invitation marks them for both, and the
 * table outlives the first handle freed. */
static void test_shared_between_loops(void **state)
{
    (void)state;
    told_t first = {0}, second = {0};
    kf_browsing_t *a = kf_browsing_new(OFFLINE_MS, changed_cb, &first);
    kf_browsing_t *b = kf_browsing_share(a, changed_cb, &second);
    kf_browsing_page(a, 5, "Mia", "https://shop.example/", "Shop", 1000, 1000);
    assert_int_equal(first.online, 1);
    assert_int_equal(second.online, 0);
    assert_int_equal(kf_browsing_count(b), 1);
    assert_true(kf_browsing_invited(b, 5, 2000));
    assert_int_equal(second.online, 1);
    assert_false(kf_browsing_invited(b, 6, 2000));
    kf_browsing_lock(a);
    assert_int_equal(kf_browsing_find(a, 5)->invited_at, 2000);
    kf_browsing_unlock(a);
    assert_true(kf_browsing_fire(a, 5, 3));
    assert_false(kf_browsing_fire(b, 5, 3)); /* once, whichever loop asks */
    kf_browsing_free(a);
    kf_browsing_sweep(b, 1000 + OFFLINE_MS, NULL, NULL);
    assert_int_equal(second.offline, 1);
    assert_int_equal(kf_browsing_count(b), 0);
    kf_browsing_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_online_moves_and_goes),
        cmocka_unit_test(test_open_connection_keeps_online),
        cmocka_unit_test(test_rules_fire_once_a_stretch),
        cmocka_unit_test(test_shared_between_loops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
