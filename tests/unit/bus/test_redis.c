/* test_redis.c: unit tests for bus/redis.c without a Redis server (tests/e2e/bus.test.js runs two
 * nodes over a real one): a bus whose Redis refuses connections says so promptly (a refused
 * connect is noticed, not left to the connect time-out), is not ready, counts what is published
 * meanwhile as lost while local subscribers still get it, retries, and closes every handle when
 * freed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/clock.h"
#include "bus/bus.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

typedef struct seen {
    int up, down, gap;
    char detail[128];
} seen_t;

static void notify_cb(void *ctx, kf_bus_change_t change, const char *detail, uint64_t after)
{
    (void)after;
    seen_t *seen = ctx;
    if (change == KF_BUS_UP)
        seen->up++;
    else if (change == KF_BUS_DOWN)
        seen->down++;
    else
        seen->gap++;
    snprintf(seen->detail, sizeof seen->detail, "%s", detail);
}

/* A loopback port that refuses connections: bound, then closed. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

typedef struct counter {
    kf_sub_t sub;
    int calls;
} counter_t;

static void count_cb(kf_sub_t *sub, kf_event_t *event)
{
    (void)event;
    ((counter_t *)sub->data)->calls++;
}

static void test_unreachable_redis(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    kf_hub_t *hub = kf_hub_new();
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", closed_port());
    seen_t seen = {0};
    kf_bus_t *bus = kf_bus_new_redis(&loop, hub, url, 0, notify_cb, &seen);
    assert_non_null(bus);
    assert_string_equal(kf_bus_kind(bus), "redis");
    assert_false(kf_bus_ready(bus));
    assert_int_equal(seen.down, 0); /* never from inside the call */

    uint64_t start = kf_clock_mono_ms();
    while (seen.down == 0 && kf_clock_mono_ms() - start < 4000)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(seen.down, 1);
    assert_true(kf_clock_mono_ms() - start < 2000); /* well before the 5 s connect time-out */
    assert_true(strstr(seen.detail, "refused") != NULL);
    assert_false(kf_bus_ready(bus));

    /* Published meanwhile: local subscribers hear it, the bus counts it lost. */
    counter_t counter = {0};
    kf_sub_init(&counter.sub, count_cb, &counter);
    kf_hub_subscribe(hub, "agents", &counter.sub);
    kf_event_t *event = kf_event_new(5, "{\"type\":\"message\"}", 18);
    assert_int_equal(kf_hub_publish(hub, "agents", event), 1);
    kf_event_unref(event);
    assert_int_equal(counter.calls, 1);
    kf_bus_stats_t stats;
    kf_bus_stats(bus, &stats);
    assert_true(stats.lost == 1 && stats.sent == 0 && stats.connects == 0);

    /* It keeps trying, and says it is down once per outage, not once per try. */
    start = kf_clock_mono_ms();
    while (kf_clock_mono_ms() - start < 500)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(seen.down, 1);
    assert_int_equal(seen.up + seen.gap, 0);

    kf_hub_unsubscribe(hub, &counter.sub);
    kf_bus_free(bus);
    /* The relay is gone with the bus. */
    event = kf_event_new(0, "{}", 2);
    kf_hub_publish(hub, "agents", event);
    kf_event_unref(event);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    kf_hub_free(hub);
}

/* A host name is resolved off the loop (uv_getaddrinfo) and its address connected to; freeing the
 * bus while the name is being resolved waits for the resolution and leaks nothing. */
static void test_host_name(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    kf_hub_t *hub = kf_hub_new();
    char url[64];
    snprintf(url, sizeof url, "redis://localhost:%d", closed_port());
    seen_t seen = {0};
    kf_bus_t *bus = kf_bus_new_redis(&loop, hub, url, 0, notify_cb, &seen);
    assert_non_null(bus);
    uint64_t start = kf_clock_mono_ms();
    while (seen.down == 0 && kf_clock_mono_ms() - start < 4000)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(seen.down, 1);
    assert_true(strstr(seen.detail, "refused") != NULL); /* resolved, then refused */
    kf_bus_free(bus);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);

    /* Freed with the resolution under way (the first attempt starts it at the loop's first
     * turn). */
    bus = kf_bus_new_redis(&loop, hub, url, 0, notify_cb, &seen);
    uv_run(&loop, UV_RUN_NOWAIT);
    kf_bus_free(bus);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    kf_hub_free(hub);
}

static void test_bad_url(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    kf_hub_t *hub = kf_hub_new();
    assert_null(kf_bus_new_redis(&loop, hub, "http://127.0.0.1:6379", 0, NULL, NULL));
    kf_hub_free(hub);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_local_bus(void **state)
{
    (void)state;
    kf_hub_t *hub = kf_hub_new();
    kf_bus_t *bus = kf_bus_new_local(hub);
    assert_true(kf_bus_ready(bus));
    assert_string_equal(kf_bus_kind(bus), "in-process");
    kf_bus_free(bus);
    kf_bus_free(NULL);
    kf_hub_free(hub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_redis),
        cmocka_unit_test(test_host_name),
        cmocka_unit_test(test_bad_url),
        cmocka_unit_test(test_local_bus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
