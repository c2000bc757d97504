/* fill.h: what the benches that fill a store straight through SQLite share (kf_report_bench,
 * kf_search_bench): a monotonic clock in seconds, a generator that makes the same history on
 * every run, and SQLite calls that end the tool on failure (a bench's store that cannot be
 * filled has nothing to measure). Failures are said through load_progress (bench/load/tool.h). */
#ifndef KF_LOAD_FILL_H
#define KF_LOAD_FILL_H

#include <sqlite3.h>
#include <stdint.h>

/* Seconds on the monotonic clock. */
double fill_now_s(void);
/* Says what failed (and SQLite's message, when db is not NULL), then exits 1. */
_Noreturn void fill_die(const char *what, sqlite3 *db);
/* 0..n-1 from xorshift64*, seeded the same on every run. */
uint32_t fill_random(uint32_t n);
void fill_exec(sqlite3 *db, const char *sql);
sqlite3_stmt *fill_prepare(sqlite3 *db, const char *sql);
/* Steps a statement that returns no rows, then resets it for the next bindings. */
void fill_step(sqlite3 *db, sqlite3_stmt *st);

#endif
