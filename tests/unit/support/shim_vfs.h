/* shim_vfs.h: a VFS for the store's tests that passes every call to the default VFS beneath it,
 * with hooks that may answer a write, a sync or a growing WAL index first: a full disk, a count
 * of what reaches a log. Installed as the default, so that the stores a test opens use it. */
#ifndef KF_TEST_SHIM_VFS_H
#define KF_TEST_SHIM_VFS_H

#include <sqlite3.h>

typedef struct shim_file {
    sqlite3_file base;
    sqlite3_file *real; /* the file of the VFS beneath, right after this struct */
    int flags;          /* as opened: SQLITE_OPEN_MAIN_DB, SQLITE_OPEN_WAL, ... */
    int shm_regions;    /* regions of the WAL index mapped so far */
} shim_file_t;

/* Each, when set, is called before the call it names reaches the file beneath; a result other
 * than SQLITE_OK is that call's, and the file beneath is not called. */
typedef struct shim_hooks {
    int (*write)(const shim_file_t *file);
    int (*sync)(const shim_file_t *file);
    int (*shm_grow)(const shim_file_t *file); /* the WAL index is to map a new region */
} shim_hooks_t;

/* Installs the VFS as the default over the default of that moment, with hooks (kept, not
 * copied); once per program. Aborts when SQLite refuses it. */
void shim_vfs_install(const shim_hooks_t *hooks);

#endif
