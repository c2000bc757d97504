/* tool.c: the load tools' progress lines, random numbers, file limit, URL option and run
 * handles. */
#include "load/tool.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CLOSE_TIMEOUT_MS 10000

static const char *tool_name = "load";

void load_tool_name(const char *name)
{
    tool_name = name;
}

void load_progress(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
}

uint32_t load_random(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

uint32_t load_random_seed(void)
{
    return (uint32_t)(uv_hrtime() ^ ((uint64_t)getpid() << 16)) | 1u;
}

int load_check_files(rlim_t needed, const char *what)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        getrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
        load_progress("%s need %llu open files; the limit is %llu", what,
                      (unsigned long long)needed, (unsigned long long)limit.rlim_cur);
        return 2;
    }
    return 0;
}

int load_url_option(const char *url, load_target_t *out)
{
    int rc = load_target_parse(url, out);
    if (rc == -2)
        load_progress("%s is not on loopback (127.0.0.0/8): refused", url);
    else if (rc != 0)
        load_progress("cannot use %s (http://HOST:PORT/...)", url);
    return rc == 0 ? 0 : 2;
}

static void watchdog_cb(uv_timer_t *timer)
{
    load_tool_t *tool = timer->data;
    if (tool->closing) {
        load_progress("closing took too long; exiting");
        exit(3);
    }
    tool->on_stop("the run's deadline passed", 1);
}

static void signal_cb(uv_signal_t *handle, int signum)
{
    (void)signum;
    load_tool_t *tool = handle->data;
    if (!tool->closing)
        tool->on_stop("interrupted", 130);
}

static void tick_cb(uv_timer_t *timer)
{
    load_tool_t *tool = timer->data;
    tool->on_tick();
}

void load_tool_start(load_tool_t *tool, uv_loop_t *loop, uint64_t tick_ms, uint64_t deadline_ms,
                     void (*on_tick)(void), void (*on_stop)(const char *why, int exit_code))
{
    tool->loop = loop;
    tool->on_tick = on_tick;
    tool->on_stop = on_stop;
    tool->closing = false;
    signal(SIGPIPE, SIG_IGN);
    uv_timer_init(loop, &tool->tick);
    uv_timer_init(loop, &tool->watchdog);
    uv_signal_init(loop, &tool->sigint);
    uv_signal_init(loop, &tool->sigterm);
    tool->tick.data = tool->watchdog.data = tool->sigint.data = tool->sigterm.data = tool;
    uv_signal_start(&tool->sigint, signal_cb, SIGINT);
    uv_signal_start(&tool->sigterm, signal_cb, SIGTERM);
    uv_timer_start(&tool->watchdog, watchdog_cb, deadline_ms, 0);
    uv_timer_start(&tool->tick, tick_cb, tick_ms, tick_ms);
}

static void closed_cb(uv_handle_t *handle)
{
    (void)handle;
}

void load_tool_close(load_tool_t *tool)
{
    if (tool->closing)
        return;
    tool->closing = true;
    uv_close((uv_handle_t *)&tool->tick, closed_cb);
    uv_close((uv_handle_t *)&tool->sigint, closed_cb);
    uv_close((uv_handle_t *)&tool->sigterm, closed_cb);
    /* The watchdog stays, unreferenced: it ends a close that hangs. */
    uv_timer_start(&tool->watchdog, watchdog_cb, CLOSE_TIMEOUT_MS, 0);
    uv_unref((uv_handle_t *)&tool->watchdog);
}
