/* test_redis.c: unit tests for bus/redis.c. Without a Redis server: a bus whose Redis refuses
 * connections says so promptly (a refused connect is noticed, not left to the connect time-out),
 * is not ready, counts what is published meanwhile as lost while local subscribers still get it,
 * retries, and closes every handle when freed. Over a real one (a throw-away redis-server on a
 * loopback port, nothing saved; tests/e2e/bus.test.js runs whole nodes over one): where a node's
 * order starts once it has subscribed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/clock.h"
#include "bus/bus.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

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

/* ---- over a real Redis: two nodes on one loop, one already on the channel and publishing, one
 * just subscribed. The newcomer's first message of its own must not go out ahead of a lower id
 * the other published a moment before, still on its way through Redis: a long poll answered with
 * the higher id would come back past the lower one for good. So from KF_BUS_UP until the owner
 * says where the store stands (kf_bus_started) message events wait, then go out in id order. */

static bool accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close(fd);
    return ok;
}

/* One node: its bus, its hub, a subscriber on "t" that writes down the ids it gets in order. */
typedef struct node {
    kf_hub_t *hub;
    kf_bus_t *bus;
    bool answer;         /* answer KF_BUS_UP at once (else the test does, later) */
    uint64_t store_at;   /* what the answer says the store's newest id is */
    uint64_t connection; /* the last KF_BUS_UP's */
    int up, gap;
    uint64_t gap_after; /* the last KF_BUS_GAP's floor */
    kf_sub_t sub;
    uint64_t got[8];
    size_t got_count;
} node_t;

/* A throw-away redis-server, a loop and the nodes on it, for one test. */
typedef struct live {
    pid_t redis; /* 0 while stopped */
    int port;
    char url[64];
    uv_loop_t loop;
    node_t nodes[2];
    size_t node_count;
} live_t;

static void node_stop(node_t *node);

/* Starts live's redis-server on its port and waits until it takes connections. */
static void redis_start(live_t *live)
{
    const char *bin = getenv("REDIS_SERVER") != NULL ? getenv("REDIS_SERVER") : "redis-server";
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", live->port);
    char *argv[] = {(char *)bin, "--port",       port_text, "--bind",     "127.0.0.1", "--save",
                    "",          "--appendonly", "no",      "--loglevel", "warning",   NULL};
    posix_spawn_file_actions_t quiet; /* its start-up lines are not the test's */
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&quiet, 1, 2);
    assert_int_equal(posix_spawnp(&live->redis, bin, &quiet, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&quiet);
    uint64_t start = kf_clock_mono_ms();
    while (!accepts(live->port)) {
        assert_true(kf_clock_mono_ms() - start < 10000);
        usleep(10000);
    }
}

static void redis_stop(live_t *live)
{
    if (live->redis == 0)
        return;
    kill(live->redis, SIGKILL);
    int status;
    waitpid(live->redis, &status, 0);
    live->redis = 0;
}

static int live_setup(void **state)
{
    live_t *live = calloc(1, sizeof *live);
    live->port = closed_port();
    redis_start(live);
    snprintf(live->url, sizeof live->url, "redis://127.0.0.1:%d", live->port);
    assert_int_equal(uv_loop_init(&live->loop), 0);
    *state = live;
    return 0;
}

/* Stops the nodes a test left, then checks that nothing of theirs is left on the loop. */
static int live_teardown(void **state)
{
    live_t *live = *state;
    for (size_t i = 0; i < live->node_count; i++) /* a test that failed left them */
        node_stop(&live->nodes[i]);
    assert_int_equal(uv_run(&live->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&live->loop), 0);
    redis_stop(live);
    free(live);
    return 0;
}

static void node_notify_cb(void *ctx, kf_bus_change_t change, const char *detail, uint64_t after)
{
    (void)detail;
    node_t *node = ctx;
    if (change == KF_BUS_UP) {
        node->up++;
        node->connection = after;
        if (node->answer)
            kf_bus_started(node->bus, after, true, node->store_at);
    } else if (change == KF_BUS_GAP) {
        node->gap++;
        node->gap_after = after;
    }
}

static void got_cb(kf_sub_t *sub, kf_event_t *event)
{
    node_t *node = sub->data;
    if (node->got_count < sizeof node->got / sizeof node->got[0])
        node->got[node->got_count++] = event->id;
}

static node_t *node_start(live_t *live, bool answer)
{
    assert_true(live->node_count < sizeof live->nodes / sizeof live->nodes[0]);
    node_t *node = &live->nodes[live->node_count++];
    node->hub = kf_hub_new();
    node->answer = answer;
    node->store_at = 10;
    node->bus = kf_bus_new_redis(&live->loop, node->hub, live->url, 10, node_notify_cb, node);
    assert_non_null(node->bus);
    kf_sub_init(&node->sub, got_cb, node);
    kf_hub_subscribe(node->hub, "t", &node->sub);
    return node;
}

static void node_stop(node_t *node)
{
    if (node->bus == NULL)
        return;
    kf_hub_unsubscribe(node->hub, &node->sub);
    kf_bus_free(node->bus);
    kf_hub_free(node->hub); /* the bus's handles close without it */
    node->bus = NULL;
}

/* A message event published on a node's hub, as the chat layer does after its commit. */
static void publish(node_t *node, uint64_t id)
{
    kf_event_t *event = kf_event_new(id, "{\"type\":\"message\"}", 18);
    kf_hub_publish(node->hub, "t", event);
    kf_hub_publish_end(node->hub);
    kf_event_unref(event);
}

static uint64_t received(const node_t *node)
{
    kf_bus_stats_t stats;
    kf_bus_stats(node->bus, &stats);
    return stats.received;
}

/* Runs the loop until done(node) or 5 s. */
static void run_until(uv_loop_t *loop, const node_t *node, bool (*done)(const node_t *node))
{
    uint64_t start = kf_clock_mono_ms();
    while (!done(node)) {
        assert_true(kf_clock_mono_ms() - start < 5000);
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static bool is_up(const node_t *node)
{
    return node->up > 0 && kf_bus_ready(node->bus);
}

static bool heard_one(const node_t *node)
{
    return received(node) >= 1;
}

static bool got_four(const node_t *node)
{
    return node->got_count >= 4;
}

static void test_first_message_waits_for_the_store(void **state)
{
    live_t *live = *state;
    uv_loop_t *loop = &live->loop;
    node_t *old = node_start(live, true);
    run_until(loop, old, is_up);
    node_t *fresh = node_start(live, false);
    run_until(loop, fresh, is_up);
    assert_int_equal(fresh->gap, 0); /* said after the answer, not before */

    /* The old node commits 11 and publishes it; before it comes through Redis, the fresh node
     * commits 12 of its own. Neither goes out to the fresh node's subscribers yet. */
    publish(old, 11);
    publish(fresh, 12);
    run_until(loop, fresh, heard_one);
    assert_int_equal(fresh->got_count, 0);

    /* An answer for another connection changes nothing. */
    kf_bus_started(fresh->bus, fresh->connection + 1, true, 10);
    assert_int_equal(fresh->got_count, 0);
    assert_int_equal(fresh->gap, 0);

    /* The store stood at 10 when it was read: 11, then 12. */
    kf_bus_started(fresh->bus, fresh->connection, true, 10);
    assert_int_equal(fresh->gap, 1);
    assert_true(fresh->gap_after == UINT64_MAX); /* none of its clients passed anything */
    assert_int_equal(fresh->got_count, 2);
    assert_int_equal(fresh->got[0], 11);
    assert_int_equal(fresh->got[1], 12);
    /* Answered twice, the second is ignored. */
    kf_bus_started(fresh->bus, fresh->connection, true, 10);
    assert_int_equal(fresh->gap, 1);
    assert_true(fresh->gap_after == UINT64_MAX); /* none of its clients passed anything */

    /* From now on the order runs as usual: the fresh node's 14 waits for the old node's 13. */
    publish(old, 13);
    publish(fresh, 14);
    assert_int_equal(fresh->got_count, 2);
    run_until(loop, fresh, got_four);
    assert_int_equal(fresh->got[2], 13);
    assert_int_equal(fresh->got[3], 14);
    kf_bus_stats_t stats;
    kf_bus_stats(fresh->bus, &stats);
    assert_int_equal(stats.holes, 0);

    node_stop(fresh);
    node_stop(old);
}

/* When the owner cannot tell (its read failed), what waited goes out at once and the next
 * message starts the order, as it did before the owner was asked. */
static void test_unknown_start(void **state)
{
    live_t *live = *state;
    node_t *node = node_start(live, false);
    run_until(&live->loop, node, is_up);
    publish(node, 12);
    assert_int_equal(node->got_count, 0);
    kf_bus_started(node->bus, node->connection, false, 0);
    assert_int_equal(node->gap, 1);
    assert_int_equal(node->got_count, 1);
    publish(node, 13);
    assert_int_equal(node->got_count, 2);
    assert_int_equal(node->got[1], 13);

    node_stop(node);
}

/* Redis was away when the node started, and a message of its own went to its clients at once:
 * one of them may have passed a lower id of another node's that could not come. So after the
 * first connection its clients replay from where the store stood at the start. */
static void test_passed_before_the_first_connection(void **state)
{
    live_t *live = *state;
    node_t *node = node_start(live, false);
    publish(node, 12);
    assert_int_equal(node->got_count, 1);
    run_until(&live->loop, node, is_up);
    kf_bus_started(node->bus, node->connection, true, 12);
    assert_int_equal(node->gap, 1);
    assert_int_equal(node->gap_after, 10);
    node_stop(node);
}

static bool is_down(const node_t *node)
{
    return !kf_bus_ready(node->bus);
}

static bool is_up_again(const node_t *node)
{
    return node->up == 2 && kf_bus_ready(node->bus);
}

/* Redis goes away while the node's own 13 waits for another node's 12, which never comes: 13
 * goes out to its clients then (nothing more comes off the bus), so when Redis is back they
 * replay from 11, where the order stood, not from 13 (the newest id it had seen), which would
 * pass 12 for good. */
static void test_floor_below_what_waited(void **state)
{
    live_t *live = *state;
    node_t *node = node_start(live, false);
    run_until(&live->loop, node, is_up);
    kf_bus_started(node->bus, node->connection, true, 11);
    publish(node, 13);
    assert_int_equal(node->got_count, 0);
    redis_stop(live);
    run_until(&live->loop, node, is_down);
    assert_int_equal(node->got_count, 1);
    redis_start(live);
    run_until(&live->loop, node, is_up_again);
    kf_bus_started(node->bus, node->connection, true, 13);
    assert_int_equal(node->gap, 2);
    assert_int_equal(node->gap_after, 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_redis),
        cmocka_unit_test(test_host_name),
        cmocka_unit_test(test_bad_url),
        cmocka_unit_test(test_local_bus),
        cmocka_unit_test_setup_teardown(test_first_message_waits_for_the_store, live_setup,
                                        live_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_start, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_passed_before_the_first_connection, live_setup,
                                        live_teardown),
        cmocka_unit_test_setup_teardown(test_floor_below_what_waited, live_setup, live_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
