/* test_backup.c: the attachments' part of `kefu backup` (store/backup.c, kf_store_blobs_backup):
 * every blob of the directory and nothing else, each file's bytes as they were; no directory
 * when there is nothing to back up; an existing destination is refused. (The database's part,
 * under load, is tests/e2e/backup.test.js's.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "store/backup.h"
#include "store/blobs.h"

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static size_t count_entries(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_blobs_backup(void **state)
{
    (void)state;
    char root[] = "/tmp/kefu-test-backup-XXXXXX";
    assert_non_null(mkdtemp(root));
    char blobs[256], dest[256], path[512];
    snprintf(blobs, sizeof blobs, "%s/attachments", root);
    snprintf(dest, sizeof dest, "%s/copy.db.attachments", root);

    /* Nothing yet: no directory made. */
    size_t files = 99;
    assert_int_equal(kf_store_blobs_backup(blobs, dest, &files), 0);
    assert_int_equal(files, 0);
    struct stat st;
    assert_int_not_equal(stat(dest, &st), 0);

    char a[KF_BLOB_NAME_SIZE], b[KF_BLOB_NAME_SIZE];
    assert_int_equal(kf_blob_write(blobs, "first file", 10, a), 0);
    assert_int_equal(kf_blob_write(blobs, "second, 二", 11, b), 0);
    snprintf(path, sizeof path, "%s/not-a-blob.tmp", blobs); /* a stray file is not copied */
    write_text(path, "x");
    assert_int_equal(kf_store_blobs_backup(blobs, dest, &files), 0);
    assert_int_equal(files, 2);
    assert_int_equal(count_entries(dest), 2);
    assert_int_equal(stat(dest, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    void *bytes = NULL;
    assert_int_equal(kf_blob_read(dest, a, 10, &bytes), 0);
    assert_memory_equal(bytes, "first file", 10);
    free(bytes);
    assert_int_equal(kf_blob_read(dest, b, 11, &bytes), 0);
    assert_memory_equal(bytes, "second, 二", 11);
    free(bytes);

    /* Never over an existing one. */
    assert_int_equal(kf_store_blobs_backup(blobs, dest, &files), KF_EEXISTS);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blobs_backup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
