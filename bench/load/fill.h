/* fill.h: what the benches that fill a store straight through SQLite share (kf_report_bench,
 * kf_search_bench, kf_history_bench): a monotonic clock in seconds, a generator that makes the
 * same history on every run, the text of a shop's support chat (mixed Chinese and English), and
 * SQLite calls that end the tool on failure (a bench's store that cannot be filled has nothing
 * to measure). Failures are said through load_progress (bench/load/tool.h). */
#ifndef KF_LOAD_FILL_H
#define KF_LOAD_FILL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Seconds on the monotonic clock. */
double fill_now_s(void);
/* Says what failed (and SQLite's message, when db is not NULL), then exits 1. */
_Noreturn void fill_die(const char *what, sqlite3 *db);
/* 0..n-1 from xorshift64*, seeded the same on every run. */
uint32_t fill_random(uint32_t n);
/* A message of a shop's support chat into out (size bytes, at least 64): Chinese (half), English
 * (three in ten) or both (the rest), 3 to 14 words, now and then (one in 50) a tracking number
 * "SF" and 7 digits, the rare words. Returns its length in bytes. */
size_t fill_message_body(char *out, size_t size);
/* A visitor's name into out (size bytes, at least 32): a Latin given name, a third of the time
 * followed by a Chinese one. */
void fill_visitor_name(char *out, size_t size);
void fill_exec(sqlite3 *db, const char *sql);
sqlite3_stmt *fill_prepare(sqlite3 *db, const char *sql);
/* Steps a statement that returns no rows, then resets it for the next bindings. */
void fill_step(sqlite3 *db, sqlite3_stmt *st);
/* The writer's stamp of a message's conversation (KF_SQLITE_MESSAGE_STAMP), prepared on db; run
 * by fill_stamp right after each message's insert, as the writer runs it. */
sqlite3_stmt *fill_prepare_stamp(sqlite3 *db);
/* sender 0 for the visitor, 1 for an agent (agent_id; 0 for none); note for a private one. */
void fill_stamp(sqlite3 *db, sqlite3_stmt *stamp, int64_t conversation_id, int64_t created_at,
                int sender, bool note, int64_t agent_id);

#endif
