/* test_presence.c: an agent's presence on a clock the test turns: online at the console's first
 * push request, its choice of away shown and kept, offline a minute after the last request unless
 * a connection stays open, at once when disabled; each change told once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "chat/presence.h"

#define MINUTE 60000

/* The changes told, and the connections each agent holds (agents 1 to 3). */
typedef struct world {
    int changes;
    int64_t last_agent;
    kf_presence_status_t last_status;
    size_t open[4];
} world_t;

static void changed(void *ctx, int64_t agent_id, kf_presence_status_t status)
{
    world_t *w = ctx;
    w->changes++;
    w->last_agent = agent_id;
    w->last_status = status;
}

static size_t open_connections(void *ctx, int64_t agent_id)
{
    world_t *w = ctx;
    return w->open[agent_id];
}

static void test_seen_then_gone_after_a_minute(void **state)
{
    (void)state;
    world_t w = {0};
    kf_presence_t *p = kf_presence_new(MINUTE, changed, &w);
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_OFFLINE);
    kf_presence_seen(p, 1, 1000);
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_ONLINE);
    assert_int_equal(w.changes, 1);
    assert_int_equal(w.last_agent, 1);
    assert_int_equal(w.last_status, KF_PRESENCE_ONLINE);
    /* Polls keep it on; seen again, nothing is told. */
    kf_presence_seen(p, 1, 3000);
    kf_presence_sweep(p, 3000 + MINUTE - 1, open_connections, &w);
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_ONLINE);
    assert_int_equal(w.changes, 1);
    kf_presence_sweep(p, 3000 + MINUTE, open_connections, &w);
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_OFFLINE);
    assert_int_equal(w.changes, 2);
    assert_int_equal(w.last_status, KF_PRESENCE_OFFLINE);
    kf_presence_sweep(p, 10 * MINUTE, open_connections, &w);
    assert_int_equal(w.changes, 2);
    kf_presence_free(p);
}

static void test_open_connection_keeps_it_on(void **state)
{
    (void)state;
    world_t w = {0};
    kf_presence_t *p = kf_presence_new(MINUTE, changed, &w);
    kf_presence_seen(p, 2, 1000);
    w.open[2] = 1; /* a WebSocket, open for an hour */
    for (uint64_t t = 1000; t < 60 * MINUTE; t += 5000)
        kf_presence_sweep(p, t, open_connections, &w);
    assert_int_equal(kf_presence_status(p, 2), KF_PRESENCE_ONLINE);
    /* It closes: offline a minute after the last sweep that saw it open, not at once. */
    uint64_t closed = 60 * MINUTE;
    w.open[2] = 0;
    kf_presence_sweep(p, closed + 5000, open_connections, &w);
    assert_int_equal(kf_presence_status(p, 2), KF_PRESENCE_ONLINE);
    kf_presence_sweep(p, closed + MINUTE, open_connections, &w);
    assert_int_equal(kf_presence_status(p, 2), KF_PRESENCE_OFFLINE);
    assert_int_equal(w.changes, 2);
    kf_presence_free(p);
}

static void test_away_is_shown_and_kept(void **state)
{
    (void)state;
    world_t w = {0};
    kf_presence_t *p = kf_presence_new(MINUTE, changed, &w);
    /* Chosen while offline: kept, not shown. */
    assert_int_equal(kf_presence_choose(p, 3, KF_PRESENCE_AWAY), 0);
    assert_int_equal(kf_presence_status(p, 3), KF_PRESENCE_OFFLINE);
    assert_int_equal(w.changes, 0);
    kf_presence_seen(p, 3, 1000);
    assert_int_equal(kf_presence_status(p, 3), KF_PRESENCE_AWAY);
    assert_int_equal(w.changes, 1);
    assert_int_equal(kf_presence_choose(p, 3, KF_PRESENCE_AWAY), 0);
    assert_int_equal(w.changes, 1);
    assert_int_equal(kf_presence_choose(p, 3, KF_PRESENCE_ONLINE), 0);
    assert_int_equal(kf_presence_status(p, 3), KF_PRESENCE_ONLINE);
    assert_int_equal(w.changes, 2);
    assert_int_equal(kf_presence_choose(p, 3, KF_PRESENCE_OFFLINE), KF_EINVAL);
    assert_int_equal(kf_presence_status(p, 3), KF_PRESENCE_ONLINE);
    /* Away survives going offline and coming back. */
    kf_presence_choose(p, 3, KF_PRESENCE_AWAY);
    kf_presence_sweep(p, 1000 + MINUTE, open_connections, &w);
    assert_int_equal(kf_presence_status(p, 3), KF_PRESENCE_OFFLINE);
    kf_presence_seen(p, 3, 2 * MINUTE);
    assert_int_equal(kf_presence_status(p, 3), KF_PRESENCE_AWAY);
    kf_presence_free(p);
}

static void test_logout_and_disable(void **state)
{
    (void)state;
    world_t w = {0};
    kf_presence_t *p = kf_presence_new(MINUTE, changed, &w);
    kf_presence_seen(p, 1, 1000);
    kf_presence_seen(p, 2, 1000);
    /* Logged out with no other console: offline at the next sweep, not a minute later. */
    kf_presence_left(p, 1);
    kf_presence_sweep(p, 2000, open_connections, &w);
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_OFFLINE);
    /* Logged out of one session while another console streams: still on. */
    kf_presence_seen(p, 1, 3000);
    w.open[1] = 1;
    kf_presence_left(p, 1);
    kf_presence_sweep(p, 4000, open_connections, &w);
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_ONLINE);
    /* Disabled: offline at once, its away forgotten. */
    kf_presence_choose(p, 2, KF_PRESENCE_AWAY);
    int before = w.changes;
    kf_presence_drop(p, 2);
    assert_int_equal(kf_presence_status(p, 2), KF_PRESENCE_OFFLINE);
    assert_int_equal(w.changes, before + 1);
    kf_presence_seen(p, 2, 5000);
    assert_int_equal(kf_presence_status(p, 2), KF_PRESENCE_ONLINE);
    kf_presence_drop(p, 99); /* never seen: nothing */
    kf_presence_left(p, 99);
    kf_presence_free(p);
}

static void test_names(void **state)
{
    (void)state;
    kf_presence_status_t s;
    assert_int_equal(kf_presence_parse("online", &s), 0);
    assert_int_equal(s, KF_PRESENCE_ONLINE);
    assert_int_equal(kf_presence_parse("away", &s), 0);
    assert_int_equal(s, KF_PRESENCE_AWAY);
    assert_int_equal(kf_presence_parse("offline", &s), KF_EINVAL);
    assert_int_equal(kf_presence_parse("Online", &s), KF_EINVAL);
    assert_int_equal(kf_presence_parse(NULL, &s), KF_EINVAL);
    assert_string_equal(kf_presence_name(KF_PRESENCE_OFFLINE), "offline");
    assert_string_equal(kf_presence_name(KF_PRESENCE_AWAY), "away");
    assert_string_equal(kf_presence_name(KF_PRESENCE_ONLINE), "online");
}

/* The agents each_here tells, in a bit set (agents 1 to 3). */
static void collect_here(void *ctx, int64_t agent_id)
{
    unsigned *set = ctx;
    *set |= 1u << agent_id;
}

/* Another node's word keeps an agent on here, but only what this node saw itself is told on, so
 * that a console closed anywhere goes offline everywhere a minute after its node last spoke. */
static void test_seen_elsewhere(void **state)
{
    (void)state;
    world_t w = {0};
    kf_presence_t *p = kf_presence_new(MINUTE, changed, &w);
    kf_presence_seen_elsewhere(p, 1, 1000); /* agent 1's console is on another node */
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_ONLINE);
    assert_int_equal(w.changes, 1);
    kf_presence_seen(p, 2, 1000); /* agent 2's is here */
    w.open[2] = 1;
    unsigned here = 0;
    kf_presence_each_here(p, 2000, 10000, collect_here, &here);
    assert_int_equal(here, 1u << 2);
    /* The other node speaks every 5 s: agent 1 stays on as long as it does. */
    for (uint64_t t = 5000; t <= 10 * MINUTE; t += 5000) {
        kf_presence_seen_elsewhere(p, 1, t);
        kf_presence_sweep(p, t, open_connections, &w);
    }
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_ONLINE);
    here = 0;
    kf_presence_each_here(p, 10 * MINUTE, 10000, collect_here, &here);
    assert_int_equal(here, 1u << 2);
    /* Agent 2's console goes: still shown for a minute, but told on for one window only. */
    w.open[2] = 0;
    kf_presence_sweep(p, 10 * MINUTE + 5000, open_connections, &w);
    here = 0;
    kf_presence_each_here(p, 10 * MINUTE + 10000, 10000, collect_here, &here);
    assert_int_equal(here, 1u << 2);
    here = 0;
    kf_presence_each_here(p, 10 * MINUTE + 10001, 10000, collect_here, &here);
    assert_int_equal(here, 0);
    assert_int_equal(kf_presence_status(p, 2), KF_PRESENCE_ONLINE);
    /* It stops: offline a minute later. */
    kf_presence_sweep(p, 11 * MINUTE - 1, open_connections, &w);
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_ONLINE);
    kf_presence_sweep(p, 11 * MINUTE, open_connections, &w);
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_OFFLINE);
    /* A choice told by another node shows once the agent is seen, and while it is. */
    kf_presence_choose(p, 1, KF_PRESENCE_AWAY);
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_OFFLINE);
    kf_presence_seen_elsewhere(p, 1, 11 * MINUTE + 1);
    assert_int_equal(kf_presence_status(p, 1), KF_PRESENCE_AWAY);
    /* Agent 2 comes back here and logs out: no longer told on. */
    kf_presence_seen(p, 2, 11 * MINUTE + 2);
    here = 0;
    kf_presence_each_here(p, 11 * MINUTE + 2, 10000, collect_here, &here);
    assert_int_equal(here, 1u << 2);
    kf_presence_left(p, 2);
    here = 0;
    kf_presence_each_here(p, 11 * MINUTE + 3, 10000, collect_here, &here);
    assert_int_equal(here, 0);
    kf_presence_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seen_then_gone_after_a_minute),
        cmocka_unit_test(test_open_connection_keeps_it_on),
        cmocka_unit_test(test_away_is_shown_and_kept),
        cmocka_unit_test(test_logout_and_disable),
        cmocka_unit_test(test_seen_elsewhere),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
