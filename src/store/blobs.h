/* blobs.h: content-addressed files for attachments' bytes (store/blobs.c). Blocking file I/O:
 * the writer thread writes them, the reads run where the store runs its reads. Any thread. */
#ifndef KF_STORE_BLOBS_H
#define KF_STORE_BLOBS_H

#include <stdbool.h>
#include <stddef.h>

/* A blob's name: its SHA-256 as lower-case hex, and a NUL. */
#define KF_BLOB_NAME_SIZE 65

/* Makes dir/<sha256 of bytes> hold bytes, durably (temporary file, fsync, rename, fsync of dir;
 * dir is made if missing), and writes the name into sha256. A blob already there is kept.
 * Returns 0, KF_EUNAVAIL (disk full, read-only) or KF_EIO. */
int kf_blob_write(const char *dir, const void *bytes, size_t len, char sha256[KF_BLOB_NAME_SIZE]);
/* Reads dir/<sha256> into *out (malloc'd: the caller frees it), which must be size bytes long.
 * Returns 0, KF_ENOTFOUND (no such blob, or not size bytes), KF_EUNAVAIL or KF_EIO. */
int kf_blob_read(const char *dir, const char *sha256, size_t size, void **out);

#endif
