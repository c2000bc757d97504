/* kf_store_stall.c: how long the event loop is held when a new visitor arrives while the store's
 * writer thread is busy. The loop keeps 64 messages queued (the writer never rests: batch after
 * batch, each with its sync), creates a visitor every 20 ms, and a 1 ms timer records the loop's
 * turns. It prints, for the visitor_create call, how long the loop waited in it and how long until
 * its done callback ran, and the gaps between the timer's turns.
 *
 *   build/kf_store_stall [DIR]   (a database in DIR, created and removed; default: a temporary
 *                                 directory under /tmp; synchronous=FULL, so put it on a disk) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "store/store.h"

#define IN_FLIGHT 64
#define SECONDS 5
#define MAX_SAMPLES 10000
#define MAX_VISITORS 1000

static kf_store_t *store;
static int64_t conversation_id;
static int in_flight;
static long stored;
static uv_async_t wakeup;
static uv_timer_t tick, stop;
static uint64_t last_tick_ns;
static double gaps[MAX_SAMPLES], calls[MAX_VISITORS], dones[MAX_VISITORS];
static int gap_count, call_count, done_count;
static uint64_t started_ns[MAX_VISITORS];
static char body[2048];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void stored_cb(void *ctx, const kf_store_result_t *result)
{
    (void)ctx;
    if (result->rc == 0 && result->message != NULL)
        conversation_id = result->message->conversation_id;
    in_flight--;
    stored++;
}

/* Keeps the writer busy. */
static void fill(void)
{
    while (in_flight < IN_FLIGHT) {
        kf_message_new_t m = {.conversation_id = conversation_id, .body = body, .now = 1};
        if (store->ops->message_add(store, &m, stored_cb, NULL) != 0)
            abort();
        in_flight++;
    }
}

static void wakeup_cb(uv_async_t *handle)
{
    (void)handle;
    store->ops->complete(store);
    fill();
}

static void notify(void *data)
{
    uv_async_send(data);
}

static void visitor_done_cb(void *ctx, const kf_store_result_t *result)
{
    (void)result;
    dones[done_count++] = (double)(now_ns() - started_ns[(intptr_t)ctx]) / 1e6;
}

static void tick_cb(uv_timer_t *timer)
{
    (void)timer;
    uint64_t now = now_ns();
    if (last_tick_ns != 0 && gap_count < MAX_SAMPLES)
        gaps[gap_count++] = (double)(now - last_tick_ns) / 1e6;
    last_tick_ns = now;
    static int turns;
    if (++turns % 20 == 0 && call_count < MAX_VISITORS) {
        char hash[32];
        snprintf(hash, sizeof hash, "visitor-%d", call_count);
        started_ns[call_count] = now_ns();
        if (store->ops->visitor_create(store, hash, "New", 1, visitor_done_cb,
                                       (void *)(intptr_t)call_count) != 0)
            abort();
        calls[call_count] = (double)(now_ns() - started_ns[call_count]) / 1e6;
        call_count++;
        last_tick_ns = now_ns(); /* the call's own time is in calls, not in gaps */
    }
    fill();
}

static void stop_cb(uv_timer_t *timer)
{
    (void)timer;
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_close((uv_handle_t *)&stop, NULL);
    uv_close((uv_handle_t *)&wakeup, NULL);
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *samples, int count)
{
    if (count == 0)
        return;
    qsort(samples, (size_t)count, sizeof *samples, compare);
    printf("%-36s n=%5d  median %8.3f ms  p99 %8.3f ms  max %8.3f ms\n", what, count,
           samples[count / 2], samples[(int)(count * 0.99)], samples[count - 1]);
}

int main(int argc, char **argv)
{
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/kefu-stall-XXXXXX", argc > 1 ? argv[1] : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/kefu.db", dir);
    memset(body, 'x', sizeof body - 1);
    if (kf_store_open_sqlite(path, "FULL", &store) != 0)
        return 1;
    /* A visitor and their conversation, before the loop runs. */
    kf_message_new_t first = {.visitor_id = 1, .body = "hi", .now = 1};
    store->ops->visitor_create(store, "first", "V", 1, stored_cb, NULL);
    store->ops->message_add(store, &first, stored_cb, NULL);
    in_flight = 2;
    store->ops->flush(store);
    uv_loop_t *loop = uv_default_loop();
    uv_async_init(loop, &wakeup, wakeup_cb);
    store->ops->set_notify(store, notify, &wakeup);
    uv_timer_init(loop, &tick);
    uv_timer_init(loop, &stop);
    uv_timer_start(&tick, tick_cb, 1, 1);
    uv_timer_start(&stop, stop_cb, SECONDS * 1000, 0);
    fill();
    uv_run(loop, UV_RUN_DEFAULT);
    store->ops->set_notify(store, NULL, NULL);
    kf_store_close(store);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char file[320];
        snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
        unlink(file);
    }
    rmdir(dir);
    printf("%ld messages stored in %d s while %d visitors arrived\n", stored, SECONDS, call_count);
    report("visitor_create: the loop waits", calls, call_count);
    report("visitor_create: until its done", dones, done_count);
    report("loop turns (1 ms timer): gaps", gaps, gap_count);
    return 0;
}
