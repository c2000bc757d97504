/* backup.h: an online backup of a SQLite store, taken by another process while the server goes
 * on serving (`kefu backup FILE`). */
#ifndef KF_STORE_BACKUP_H
#define KF_STORE_BACKUP_H

#include <stddef.h>

/* Copies the database at db_path into a new file dest_path with SQLite's backup API: one
 * consistent snapshot (a read transaction in WAL mode, which never blocks the server's writer),
 * every message committed before the call began included. The copy is written beside dest_path
 * under a temporary name, synced and renamed into place, so dest_path is either the whole
 * backup or untouched; it is created readable by its owner only (it holds password and token
 * hashes). Returns 0 and the copied page count in *pages_out (may be NULL); KF_EEXISTS when
 * dest_path exists (nothing is overwritten), KF_EIO when it cannot be written, KF_ESTORE when
 * the database cannot be read. */
int kf_store_sqlite_backup(const char *db_path, const char *dest_path, int *pages_out);
/* Copies the attachments' files (store/blobs.h) in blob_dir into a new directory dest_dir,
 * each a hard link where the file system allows it (a blob never changes once written), else a
 * copy, synced. Taken after the database's backup it holds every file that backup names: a file
 * is in place before the row that names it commits. Returns 0 and the count in *files_out (0,
 * and no directory made, when blob_dir does not exist); KF_EEXISTS when dest_dir exists,
 * KF_EIO when a file cannot be read or written. */
int kf_store_blobs_backup(const char *blob_dir, const char *dest_dir, size_t *files_out);

#endif
