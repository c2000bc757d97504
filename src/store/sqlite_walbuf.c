/* sqlite_walbuf.c: a VFS over the default one that gathers the writes SQLite makes to a
 * write-ahead log and hands them to the kernel as one write when the log is synced.
 *
 * SQLite writes each frame of a commit as two pwrites, its 24-byte header and then its page, so
 * each 4,120-byte frame costs two system calls and three page-cache folios (the page straddles
 * two). The writer commits about seven frames per message at 10,000 msg/s, and those writes were
 * 31 % of its CPU time (perf, docs/PERFORMANCE.md, "The log's writes gathered"). Gathered, a
 * commit is one write over consecutive folios, and the sync that follows has the same pages to
 * write back.
 *
 * Only where every commit syncs the log: the writer's connection under `--synchronous FULL`.
 * There SQLite publishes a commit (the WAL index's header, in shared memory, which the other
 * connections read) only after the log's xSync, and flushing there keeps every frame that a
 * reader or the checkpointer may read on disk first. Under NORMAL a commit is published without
 * a sync, and a frame still in the buffer would be read as garbage, so NORMAL connections do not
 * use this VFS. Anything else that touches the log (a read of a frame the writer spilled, a
 * truncation, its size, a write that does not follow the buffer, closing it) flushes first, and
 * a failed flush is that call's error: a full disk fails the commit's sync as it failed the
 * write before, and the commit is not published. */
#include "store/sqlite_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The most a log file holds back, and so the most one write carries: the unix VFS takes at most
 * 128 KiB - 1 in one call (it masks the length with 0x1ffff and answers SQLITE_FULL to a write
 * it could not make), so a commit's frames go out in writes of 29 frames (a busy commit is a
 * few hundred KiB). */
#define WALBUF_BYTES (120 * 1024)

typedef struct walbuf_file {
    sqlite3_file base;
    sqlite3_file *real;  /* the file of the VFS beneath, right after this struct */
    bool log;            /* a write-ahead log: its writes are gathered */
    unsigned char *data; /* what waits (allocated at the first write) */
    size_t length;
    sqlite3_int64 offset; /* where data[0] goes in the file */
} walbuf_file_t;

static sqlite3_vfs *beneath;
static sqlite3_vfs walbuf_vfs;
static pthread_once_t registered = PTHREAD_ONCE_INIT;

static sqlite3_file *real_of(sqlite3_file *file)
{
    return ((walbuf_file_t *)file)->real;
}

/* Writes what waits; on failure it still waits, for the next flush (SQLite rewrites the frames
 * of a failed commit anyway). */
static int flush(walbuf_file_t *f)
{
    if (f->length == 0)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->data, (int)f->length, f->offset);
    if (rc == SQLITE_OK)
        f->length = 0;
    return rc;
}

static int walbuf_close(sqlite3_file *file)
{
    walbuf_file_t *f = (walbuf_file_t *)file;
    int rc = flush(f);
    int closed = f->real->pMethods->xClose(f->real);
    free(f->data);
    f->data = NULL;
    return rc != SQLITE_OK ? rc : closed;
}

static int walbuf_read(sqlite3_file *file, void *out, int amount, sqlite3_int64 offset)
{
    int rc = flush((walbuf_file_t *)file);
    return rc != SQLITE_OK ? rc
                           : real_of(file)->pMethods->xRead(real_of(file), out, amount, offset);
}

static int walbuf_write(sqlite3_file *file, const void *in, int amount, sqlite3_int64 offset)
{
    walbuf_file_t *f = (walbuf_file_t *)file;
    if (!f->log)
        return f->real->pMethods->xWrite(f->real, in, amount, offset);
    bool follows = f->length > 0 && offset == f->offset + (sqlite3_int64)f->length;
    if ((f->length > 0 && !follows) || f->length + (size_t)amount > WALBUF_BYTES) {
        int rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if ((size_t)amount > WALBUF_BYTES)
        return f->real->pMethods->xWrite(f->real, in, amount, offset);
    if (f->data == NULL) {
        f->data = malloc(WALBUF_BYTES);
        if (f->data == NULL)
            return SQLITE_NOMEM;
    }
    if (f->length == 0)
        f->offset = offset;
    memcpy(f->data + f->length, in, (size_t)amount);
    f->length += (size_t)amount;
    return SQLITE_OK;
}

static int walbuf_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    int rc = flush((walbuf_file_t *)file);
    return rc != SQLITE_OK ? rc : real_of(file)->pMethods->xTruncate(real_of(file), size);
}

static int walbuf_sync(sqlite3_file *file, int flags)
{
    int rc = flush((walbuf_file_t *)file);
    return rc != SQLITE_OK ? rc : real_of(file)->pMethods->xSync(real_of(file), flags);
}

static int walbuf_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    int rc = flush((walbuf_file_t *)file);
    return rc != SQLITE_OK ? rc : real_of(file)->pMethods->xFileSize(real_of(file), size);
}

static int walbuf_file_control(sqlite3_file *file, int op, void *arg)
{
    int rc = flush((walbuf_file_t *)file);
    return rc != SQLITE_OK ? rc : real_of(file)->pMethods->xFileControl(real_of(file), op, arg);
}

/* The rest is the file beneath's. */
static int walbuf_lock(sqlite3_file *file, int lock)
{
    return real_of(file)->pMethods->xLock(real_of(file), lock);
}
static int walbuf_unlock(sqlite3_file *file, int lock)
{
    return real_of(file)->pMethods->xUnlock(real_of(file), lock);
}
static int walbuf_check_reserved(sqlite3_file *file, int *out)
{
    return real_of(file)->pMethods->xCheckReservedLock(real_of(file), out);
}
static int walbuf_sector_size(sqlite3_file *file)
{
    return real_of(file)->pMethods->xSectorSize(real_of(file));
}
static int walbuf_device_characteristics(sqlite3_file *file)
{
    return real_of(file)->pMethods->xDeviceCharacteristics(real_of(file));
}
static int walbuf_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out)
{
    return real_of(file)->pMethods->xShmMap(real_of(file), page, size, extend, out);
}
static int walbuf_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    return real_of(file)->pMethods->xShmLock(real_of(file), offset, n, flags);
}
static void walbuf_shm_barrier(sqlite3_file *file)
{
    real_of(file)->pMethods->xShmBarrier(real_of(file));
}
static int walbuf_shm_unmap(sqlite3_file *file, int delete_flag)
{
    return real_of(file)->pMethods->xShmUnmap(real_of(file), delete_flag);
}

/* Version 2: WAL's shared memory, no memory-mapped I/O (which kefu does not turn on). */
static const sqlite3_io_methods walbuf_methods = {
    .iVersion = 2,
    .xClose = walbuf_close,
    .xRead = walbuf_read,
    .xWrite = walbuf_write,
    .xTruncate = walbuf_truncate,
    .xSync = walbuf_sync,
    .xFileSize = walbuf_file_size,
    .xLock = walbuf_lock,
    .xUnlock = walbuf_unlock,
    .xCheckReservedLock = walbuf_check_reserved,
    .xFileControl = walbuf_file_control,
    .xSectorSize = walbuf_sector_size,
    .xDeviceCharacteristics = walbuf_device_characteristics,
    .xShmMap = walbuf_shm_map,
    .xShmLock = walbuf_shm_lock,
    .xShmBarrier = walbuf_shm_barrier,
    .xShmUnmap = walbuf_shm_unmap,
};

static int walbuf_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                       int *out_flags)
{
    (void)vfs;
    walbuf_file_t *f = (walbuf_file_t *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    f->log = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = beneath->xOpen(beneath, name, f->real, flags, out_flags);
    /* A file the VFS beneath did not open has no methods: neither has ours, so nobody closes
     * it. One with fewer than version 2's gets none either (no VFS SQLite ships is so old). */
    const sqlite3_io_methods *real = f->real->pMethods;
    if (real == NULL || real->iVersion < 2) {
        if (real != NULL)
            real->xClose(f->real);
        f->base.pMethods = NULL;
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    }
    f->base.pMethods = &walbuf_methods;
    return rc;
}

static void walbuf_register(void)
{
    beneath = sqlite3_vfs_find(NULL);
    if (beneath == NULL)
        return;
    walbuf_vfs = *beneath;
    walbuf_vfs.zName = KF_SQLITE_WALBUF_VFS;
    walbuf_vfs.szOsFile = (int)sizeof(walbuf_file_t) + beneath->szOsFile;
    walbuf_vfs.xOpen = walbuf_open;
    walbuf_vfs.pNext = NULL;
    if (sqlite3_vfs_register(&walbuf_vfs, 0) != SQLITE_OK)
        beneath = NULL;
}

const char *kf_sqlite_walbuf_vfs(void)
{
    pthread_once(&registered, walbuf_register);
    return beneath != NULL ? KF_SQLITE_WALBUF_VFS : NULL;
}
