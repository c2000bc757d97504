/* tool.h: what every load tool's main shares: progress lines on stderr, a small random number
 * generator, the open-file limit, the loopback URL option, and the run's handles (a tick, the
 * deadline, SIGINT and SIGTERM), closed together. */
#ifndef KF_LOAD_TOOL_H
#define KF_LOAD_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <uv.h>

#include "load/http.h"

typedef struct load_tool {
    uv_loop_t *loop;
    uv_timer_t tick;     /* the tool's periodic checks */
    uv_timer_t watchdog; /* the run's deadline; then the bound on closing */
    uv_signal_t sigint, sigterm;
    void (*on_tick)(void);
    /* The run must stop: why, and the exit code (1: the deadline passed; 130: a signal). */
    void (*on_stop)(const char *why, int exit_code);
    bool closing;
} load_tool_t;

/* Starts the tick every tick_ms and the deadline after deadline_ms on loop, and ignores
 * SIGPIPE. */
void load_tool_start(load_tool_t *tool, uv_loop_t *loop, uint64_t tick_ms, uint64_t deadline_ms,
                     void (*on_tick)(void), void (*on_stop)(const char *why, int exit_code));
/* Closes the tick and the signal handles; the loop ends once the tool has closed its own. A close
 * that takes more than 10 s ends the process (exit 3). */
void load_tool_close(load_tool_t *tool);

/* The tool's name (a static string), which starts every progress line. */
void load_tool_name(const char *name);
/* "<name>: <text>" on stderr. */
void load_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* xorshift32 over *state (never 0): to pick targets, delays and masks, not for secrets. */
uint32_t load_random(uint32_t *state);
/* A state for load_random from the time and the process id. */
uint32_t load_random_seed(void);

/* Raises the open-file limit to the hard limit; 0 when needed files fit, else 2 after saying so
 * (what: what needs them, e.g. "1000 connections"). */
int load_check_files(rlim_t needed, const char *what);

/* Parses the --url option's value into out; 0, or 2 after saying why not (it must be
 * http://HOST:PORT... on 127.0.0.0/8). */
int load_url_option(const char *url, load_target_t *out);

#endif
