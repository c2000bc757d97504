/* fill.c: see fill.h. */
#include "load/fill.h"

#include <stdlib.h>
#include <time.h>

#include "load/tool.h"

double fill_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fill_die(const char *what, sqlite3 *db)
{
    load_progress("%s%s%s", what, db != NULL ? ": " : "", db != NULL ? sqlite3_errmsg(db) : "");
    exit(1);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

uint32_t fill_random(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Du) >> 33) % n;
}

void fill_exec(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fill_die(sql, db);
}

sqlite3_stmt *fill_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fill_die(sql, db);
    return st;
}

void fill_step(sqlite3 *db, sqlite3_stmt *st)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        fill_die("step", db);
    sqlite3_reset(st);
}
