/* sqlite_checkpointer.c: the SQLite backend's checkpointer, a thread with its own connection
 * that copies the write-ahead log back into the database so that no commit pays for it, and
 * lets the log start over; and the write gate it shares with the writer.
 *
 * A checkpoint copies the log's frames back into the database; SQLite starts the log over from
 * its first frame only when a write transaction begins with every frame copied. Under steady
 * load the writer always has committed more by the time a passive checkpoint ends, so the log
 * would grow without end (100 MB in 10 s at 20,000 messages a second) and every commit would
 * extend the file, which costs its sync a metadata update too. So each round chases the writer
 * with passive checkpoints, which never block it, until only a short tail is left, and then
 * copies that tail while holding the write gate: the writer waits for a few dozen pages and one
 * sync, and its next transaction starts the log over.
 *
 * KF_SQLITE_CHECKPOINT_PAGES is well above SQLite's automatic 1000: a page rewritten many times
 * between two checkpoints (a busy conversation's row, the index leaves of recent activity) is
 * copied back once, and the log starts over (holding the writer for a few milliseconds) less
 * often: at 10,000 msg/s, p99 went from 6.2-6.9 ms with 4,000 pages to 4.8-5.5 ms with 16,000.
 * The log file keeps its largest size, 24 bytes more than a page per frame (17 MB with a new
 * store's 1 KiB pages, 66 MB with 4 KiB), so that later commits overwrite it rather than grow
 * it. */
#include "store/sqlite_internal.h"

#include "base/metrics.h"

/* Pages copied by the last passive checkpoint of a chase under which the checkpointer holds the
 * writer back to copy the rest and let the log start over; see checkpoint_round. */
#define RESTART_TAIL_PAGES 64

/* Passive checkpoints tried, chasing the writer, before giving up on a restart for this round. */
#define CHASE_ROUNDS 8

/* ---- the gate ---- */

void kf_sqlite_gate_writer_enter(sqlite_store_t *s)
{
    pthread_mutex_lock(&s->gate_lock);
    while (s->gate_checkpointer != GATE_OPEN)
        pthread_cond_wait(&s->gate_changed, &s->gate_lock);
    s->gate_writer = true;
    pthread_mutex_unlock(&s->gate_lock);
}

void kf_sqlite_gate_writer_leave(sqlite_store_t *s)
{
    pthread_mutex_lock(&s->gate_lock);
    s->gate_writer = false;
    pthread_cond_broadcast(&s->gate_changed);
    pthread_mutex_unlock(&s->gate_lock);
}

/* The checkpointer's side: once it wants the gate, the writer starts no new batch, so it gets it
 * as soon as the batch in progress has committed. */
static void gate_checkpointer_enter(sqlite_store_t *s)
{
    pthread_mutex_lock(&s->gate_lock);
    s->gate_checkpointer = GATE_WANTED;
    while (s->gate_writer)
        pthread_cond_wait(&s->gate_changed, &s->gate_lock);
    s->gate_checkpointer = GATE_HELD;
    pthread_mutex_unlock(&s->gate_lock);
}

static void gate_checkpointer_leave(sqlite_store_t *s)
{
    pthread_mutex_lock(&s->gate_lock);
    s->gate_checkpointer = GATE_OPEN;
    pthread_cond_broadcast(&s->gate_changed);
    pthread_mutex_unlock(&s->gate_lock);
}

/* ---- the chase ---- */

/* One passive checkpoint: *log_out is the log's length in frames (when it began), *copied_out
 * how many of them are in the database now. */
static int checkpoint_passive(sqlite_store_t *s, int *log_out, int *copied_out)
{
    int rc = sqlite3_wal_checkpoint_v2(s->checkpoint_db, NULL, SQLITE_CHECKPOINT_PASSIVE, log_out,
                                       copied_out);
    if (rc == SQLITE_OK)
        atomic_fetch_add_explicit(&kf_metrics.checkpoints, 1, memory_order_relaxed);
    return rc;
}

/* A failure is left for the next round: the log only grows meanwhile. Each passive checkpoint
 * copies what the writer committed during the one before, so the chase ends when one copied
 * little: the tail left for the gate is about as short. Should the writer outrun the chase for
 * long, the log's length bounds the wait instead: past twice the threshold the tail is copied
 * under the gate whatever its size. */
static void checkpoint_round(sqlite_store_t *s)
{
    int threshold = atomic_load(&s->checkpoint_pages);
    int limit = 2 * threshold;
    int log = 0;
    int copied = 0;
    int before = 0;
    bool short_tail = false;
    for (int round = 0; round < CHASE_ROUNDS && !short_tail && log < limit; round++) {
        if (checkpoint_passive(s, &log, &copied) != SQLITE_OK)
            return;
        /* The log started over since this round was asked for: nothing to chase. */
        if (round == 0 && log < threshold)
            return;
        short_tail = round > 0 && copied - before <= RESTART_TAIL_PAGES;
        before = copied;
    }
    if (!short_tail && log < limit)
        return;
    gate_checkpointer_enter(s);
    checkpoint_passive(s, &log, &copied);
    gate_checkpointer_leave(s);
}

static void *checkpointer_main(void *data)
{
    sqlite_store_t *s = data;
    pthread_setname_np(pthread_self(), "kefu-checkpoint");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->checkpoint_wanted && !s->stopping)
            pthread_cond_wait(&s->wake, &s->lock);
        if (s->stopping)
            break;
        s->checkpoint_wanted = false;
        pthread_mutex_unlock(&s->lock);
        checkpoint_round(s);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Called by SQLite on the writer's thread after each commit, with the WAL's size in pages. */
static int wal_hook_cb(void *data, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    sqlite_store_t *s = data;
    if (pages < atomic_load(&s->checkpoint_pages))
        return SQLITE_OK;
    pthread_mutex_lock(&s->lock);
    if (!s->checkpoint_wanted) {
        s->checkpoint_wanted = true;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->lock);
    return SQLITE_OK;
}

void kf_sqlite_checkpointer_start(sqlite_store_t *s, const char *path, const char *synchronous_sql)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(db, synchronous_sql, NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return;
    }
    s->checkpoint_db = db;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    if (pthread_create(&s->checkpointer, NULL, checkpointer_main, s) != 0) {
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        sqlite3_close(db);
        s->checkpoint_db = NULL;
        return;
    }
    s->checkpointer_running = true;
    /* Our hook replaces SQLite's automatic checkpoint on commit; the writer's is the only
     * connection that writes. */
    sqlite3_wal_hook(s->writer.db, wal_hook_cb, s);
}

void kf_sqlite_checkpointer_stop(sqlite_store_t *s)
{
    if (!s->checkpointer_running)
        return;
    sqlite3_wal_hook(s->writer.db, NULL, NULL);
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->checkpointer, NULL);
    sqlite3_close(s->checkpoint_db);
    s->checkpointer_running = false;
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
}
