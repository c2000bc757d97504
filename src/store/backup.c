/* backup.c: online backups of the SQLite store with sqlite3_backup. */
#include "store/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "store/blobs.h"

/* Syncs a file (the copy) or a directory (its new name) to disk. */
static int sync_path(const char *path, int flags)
{
    int fd = open(path, flags);
    if (fd < 0)
        return KF_EIO;
    int rc = fsync(fd) == 0 ? 0 : KF_EIO;
    close(fd);
    return rc;
}

/* The directory of path, for syncing the rename. */
static void directory_of(const char *path, char *out, size_t size)
{
    snprintf(out, size, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash == NULL)
        snprintf(out, size, ".");
    else if (slash == out)
        slash[1] = '\0';
    else
        *slash = '\0';
}

int kf_store_sqlite_backup(const char *db_path, const char *dest_path, int *pages_out)
{
    struct stat st;
    if (stat(dest_path, &st) == 0)
        return KF_EEXISTS;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.partial-%ld", dest_path, (long)getpid()) >= (int)sizeof tmp)
        return KF_EINVAL;
    int rc = KF_ESTORE;
    sqlite3 *src = NULL, *dest = NULL;
    sqlite3_backup *backup = NULL;
    /* Read-only: the backup never writes to the server's database, and a missing one is an
     * error rather than a new empty file. */
    if (sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out_close;
    sqlite3_busy_timeout(src, 5000);
    mode_t old_mask = umask(077);
    int opened = sqlite3_open_v2(tmp, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    umask(old_mask);
    if (opened != SQLITE_OK) {
        rc = KF_EIO;
        goto out_close;
    }
    backup = sqlite3_backup_init(dest, "main", src, "main");
    if (backup == NULL)
        goto out_remove;
    /* All pages in one step: one read transaction, so one snapshot. A writer of the server's
     * never blocks it in WAL mode; a checkpoint that holds the write lock for an instant makes
     * it busy, and it tries again. */
    int step;
    for (int tries = 0; tries < 100; tries++) {
        step = sqlite3_backup_step(backup, -1);
        if (step != SQLITE_BUSY && step != SQLITE_LOCKED)
            break;
        sqlite3_sleep(50);
    }
    int pages = sqlite3_backup_pagecount(backup);
    int finished = sqlite3_backup_finish(backup);
    backup = NULL;
    if (finished != SQLITE_OK || step != SQLITE_DONE)
        goto out_remove;
    if (sqlite3_close(dest) != SQLITE_OK) {
        dest = NULL;
        goto out_remove;
    }
    dest = NULL;
    char dir[4096];
    directory_of(dest_path, dir, sizeof dir);
    if (sync_path(tmp, O_RDONLY) != 0 || rename(tmp, dest_path) != 0 ||
        sync_path(dir, O_RDONLY | O_DIRECTORY) != 0) {
        rc = KF_EIO;
        goto out_remove;
    }
    if (pages_out != NULL)
        *pages_out = pages;
    rc = 0;
    goto out_close;
out_remove:
    sqlite3_backup_finish(backup); /* NULL is harmless */
    sqlite3_close(dest);
    dest = NULL;
    unlink(tmp);
out_close:
    sqlite3_close(dest);
    sqlite3_close(src);
    return rc;
}

/* A blob's name: 64 lower-case hex digits (store/blobs.h); anything else there is not ours. */
static bool is_blob_name(const char *name)
{
    size_t i = 0;
    for (; name[i] != '\0'; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return i == KF_BLOB_NAME_SIZE - 1;
}

/* Copies src to dest (a new file, owner only), synced. */
static int copy_file(const char *src, const char *dest)
{
    int in = open(src, O_RDONLY);
    if (in < 0)
        return KF_EIO;
    int out = open(dest, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (out < 0) {
        close(in);
        return KF_EIO;
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            rc = errno == EINTR ? 0 : KF_EIO;
            continue;
        }
        for (ssize_t done = 0; done < n && rc == 0;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno != EINTR)
                rc = KF_EIO;
            else if (w > 0)
                done += w;
        }
    }
    if (rc == 0 && fsync(out) != 0)
        rc = KF_EIO;
    close(in);
    if (close(out) != 0 && rc == 0)
        rc = KF_EIO;
    if (rc != 0)
        unlink(dest);
    return rc;
}

int kf_store_blobs_backup(const char *blob_dir, const char *dest_dir, size_t *files_out)
{
    *files_out = 0;
    DIR *dir = opendir(blob_dir);
    if (dir == NULL)
        return errno == ENOENT ? 0 : KF_EIO; /* no attachment yet: nothing to copy */
    struct stat st;
    if (stat(dest_dir, &st) == 0) {
        closedir(dir);
        return KF_EEXISTS;
    }
    if (mkdir(dest_dir, 0700) != 0) {
        closedir(dir);
        return KF_EIO;
    }
    int rc = 0;
    struct dirent *entry;
    char src[4096], dest[4096];
    while (rc == 0 && (entry = readdir(dir)) != NULL) {
        if (!is_blob_name(entry->d_name))
            continue;
        snprintf(src, sizeof src, "%s/%s", blob_dir, entry->d_name);
        snprintf(dest, sizeof dest, "%s/%s", dest_dir, entry->d_name);
        /* A blob is never changed once in place: a second name for it is a copy in time, and
         * costs no space. Across file systems (or where links are refused), a real copy. */
        if (link(src, dest) != 0 && copy_file(src, dest) != 0)
            rc = KF_EIO;
        else
            (*files_out)++;
    }
    closedir(dir);
    if (rc == 0)
        rc = sync_path(dest_dir, O_RDONLY | O_DIRECTORY);
    return rc;
}
