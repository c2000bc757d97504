/* blobs.c: attachments' bytes as files in one directory, each named by the SHA-256 of its
 * content, so that a file is written once however often it is sent, and a name says nothing
 * about whose it is. A blob is durable before its name is: written to a temporary file, synced,
 * renamed into place and the directory synced, so that no row can name a file a crash lost or
 * left half written. */
#include "store/blobs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "base/buf.h"
#include "base/err.h"

/* A full disk or a read-only file system passes (KF_EUNAVAIL); the rest is a failure. */
static int map_errno(int err)
{
    if (err == ENOSPC || err == EDQUOT || err == EROFS)
        return KF_EUNAVAIL;
    if (err == ENOENT)
        return KF_ENOTFOUND;
    return KF_EIO;
}

static bool is_hex_name(const char *sha256)
{
    if (strlen(sha256) != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        char c = sha256[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static int write_all(int fd, const void *bytes, size_t len)
{
    const char *p = bytes;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return map_errno(errno);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return map_errno(errno);
    int rc = fsync(fd) == 0 ? 0 : map_errno(errno);
    close(fd);
    return rc;
}

int kf_blob_write(const char *dir, const void *bytes, size_t len, char sha256[KF_BLOB_NAME_SIZE])
{
    kf_auth_sha256_hex(bytes, len, sha256);
    char path[4096];
    char temp[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, sha256) >= sizeof path)
        return KF_EINVAL;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == (uint64_t)len)
        return 0; /* the same content, written (and synced) before */
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return map_errno(errno);
    if ((size_t)snprintf(temp, sizeof temp, "%s/.%s.%ld.tmp", dir, sha256, (long)getpid()) >=
        sizeof temp)
        return KF_EINVAL;
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return map_errno(errno);
    int rc = write_all(fd, bytes, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = map_errno(errno);
    if (close(fd) != 0 && rc == 0)
        rc = map_errno(errno);
    if (rc == 0 && rename(temp, path) != 0)
        rc = map_errno(errno);
    if (rc != 0) {
        unlink(temp);
        return rc;
    }
    return sync_dir(dir);
}

int kf_blob_read(const char *dir, const char *sha256, size_t size, void **out)
{
    *out = NULL;
    if (!is_hex_name(sha256))
        return KF_ENOTFOUND;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, sha256) >= sizeof path)
        return KF_ENOTFOUND;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return map_errno(errno);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = map_errno(errno);
    else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != (uint64_t)size)
        rc = KF_ENOTFOUND; /* not the file the row names */
    char *bytes = NULL;
    if (rc == 0) {
        bytes = kf_xmalloc(size > 0 ? size : 1);
        size_t got = 0;
        while (rc == 0 && got < size) {
            ssize_t n = read(fd, bytes + got, size - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                rc = n == 0 ? KF_ENOTFOUND : map_errno(errno);
            else
                got += (size_t)n;
        }
    }
    close(fd);
    if (rc != 0) {
        free(bytes);
        return rc;
    }
    *out = bytes;
    return 0;
}
