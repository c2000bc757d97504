/* shim_vfs.c: the store's tests' pass-through VFS (shim_vfs.h). */
#include "support/shim_vfs.h"

#include <stdlib.h>

static sqlite3_vfs *beneath;
static sqlite3_vfs shim_vfs;
static const shim_hooks_t *shim_hooks;

static sqlite3_file *real_of(sqlite3_file *file)
{
    return ((shim_file_t *)file)->real;
}

static int shim_close(sqlite3_file *f)
{
    return real_of(f)->pMethods->xClose(real_of(f));
}
static int shim_read(sqlite3_file *f, void *buf, int amount, sqlite3_int64 offset)
{
    return real_of(f)->pMethods->xRead(real_of(f), buf, amount, offset);
}
static int shim_write(sqlite3_file *f, const void *buf, int amount, sqlite3_int64 offset)
{
    int rc = shim_hooks->write != NULL ? shim_hooks->write((shim_file_t *)f) : SQLITE_OK;
    return rc != SQLITE_OK ? rc : real_of(f)->pMethods->xWrite(real_of(f), buf, amount, offset);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
static int shim_sync(sqlite3_file *f, int flags)
{
    int rc = shim_hooks->sync != NULL ? shim_hooks->sync((shim_file_t *)f) : SQLITE_OK;
    return rc != SQLITE_OK ? rc : real_of(f)->pMethods->xSync(real_of(f), flags);
}
static int shim_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
static int shim_lock(sqlite3_file *f, int lock)
{
    return real_of(f)->pMethods->xLock(real_of(f), lock);
}
static int shim_unlock(sqlite3_file *f, int lock)
{
    return real_of(f)->pMethods->xUnlock(real_of(f), lock);
}
static int shim_check_reserved(sqlite3_file *f, int *out)
{
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
static int shim_file_control(sqlite3_file *f, int op, void *arg)
{
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
static int shim_sector_size(sqlite3_file *f)
{
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}
static int shim_device_characteristics(sqlite3_file *f)
{
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
static int shim_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
    shim_file_t *file = (shim_file_t *)f;
    if (extend && page >= file->shm_regions && shim_hooks->shm_grow != NULL) {
        int rc = shim_hooks->shm_grow(file);
        if (rc != SQLITE_OK)
            return rc;
    }
    int rc = real_of(f)->pMethods->xShmMap(real_of(f), page, size, extend, out);
    if (rc == SQLITE_OK && *out != NULL && page >= file->shm_regions)
        file->shm_regions = page + 1;
    return rc;
}
static int shim_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
static void shim_shm_barrier(sqlite3_file *f)
{
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}
static int shim_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}

/* Version 2: WAL's shared memory, no memory-mapped I/O (which kefu does not turn on). */
static const sqlite3_io_methods shim_methods = {
    .iVersion = 2,
    .xClose = shim_close,
    .xRead = shim_read,
    .xWrite = shim_write,
    .xTruncate = shim_truncate,
    .xSync = shim_sync,
    .xFileSize = shim_file_size,
    .xLock = shim_lock,
    .xUnlock = shim_unlock,
    .xCheckReservedLock = shim_check_reserved,
    .xFileControl = shim_file_control,
    .xSectorSize = shim_sector_size,
    .xDeviceCharacteristics = shim_device_characteristics,
    .xShmMap = shim_shm_map,
    .xShmLock = shim_shm_lock,
    .xShmBarrier = shim_shm_barrier,
    .xShmUnmap = shim_shm_unmap,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                     int *out_flags)
{
    (void)vfs;
    shim_file_t *f = (shim_file_t *)file;
    f->real = (sqlite3_file *)(f + 1);
    f->flags = flags;
    f->shm_regions = 0;
    int rc = beneath->xOpen(beneath, name, f->real, flags, out_flags);
    /* A file the VFS beneath did not open has no methods: neither has ours, so nobody closes it. */
    f->base.pMethods = f->real->pMethods != NULL ? &shim_methods : NULL;
    return rc;
}

void shim_vfs_install(const shim_hooks_t *hooks)
{
    shim_hooks = hooks;
    beneath = sqlite3_vfs_find(NULL);
    if (beneath == NULL)
        abort();
    shim_vfs = *beneath;
    shim_vfs.zName = "kefu-test-shim";
    shim_vfs.szOsFile = (int)sizeof(shim_file_t) + beneath->szOsFile;
    shim_vfs.xOpen = shim_open;
    shim_vfs.pNext = NULL;
    if (sqlite3_vfs_register(&shim_vfs, 1) != SQLITE_OK)
        abort();
}
