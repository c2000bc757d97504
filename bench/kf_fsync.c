/* kf_fsync.c: the physical floor of a push that waits for durability: how long one 4 KiB write
 * followed by fdatasync takes in a directory (give it kefu's data directory, or one on the same
 * filesystem). A commit in kefu's writer thread is at least this: SQLite appends the batch's pages
 * to the WAL and syncs it before the loop answers and publishes. Issue 17's first target allows
 * kefu's p99 to exceed Nchan's (which syncs nothing) by this figure's p99, measured in the same
 * run because the disk's speed moves with what else the machine is doing.
 *
 *   build/kf_fsync [--count N] [--overwrite] [--pause-us P] [DIR]
 *     N pairs (default 1,000; 10 to 100,000); DIR: where the scratch file goes (default /tmp). The
 *     file is created, appended to (as a growing log is: each sync also has the new size to
 *     write), and removed. --overwrite writes over a file of OVERWRITE_PAGES pages made and synced
 *     first, round and round, as SQLite's log does once it has its size (a sync then has no new
 *     size to write, only what else the file system ties to it: on ext4 without a journal, the
 *     inode whenever its timestamps changed). --pause-us sleeps P microseconds (0 to 1,000,000)
 *     after each pair, as the writer waits between commits at a low rate.
 *
 * Progress on stderr; a small table, then, as the last line on stdout, one JSON object:
 * {"label":"fsync","count":N,"bytes":4096,"overwrite":false,"pause_us":0,"fsync_p50_ms":..,"fsync_p90_ms":..,"fsync_p99_ms":..,
 *  "fsync_max_ms":..,"dir":"DIR"}. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "load/stats.h"
#include "load/tool.h"

#define WRITE_BYTES 4096
#define MIN_COUNT 10
#define MAX_COUNT 100000
#define OVERWRITE_PAGES 256
#define MAX_PAUSE_US 1000000

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: kf_fsync [--count N] [--overwrite] [--pause-us P] [DIR]   (N from %d to %d, "
            "default 1000; P up to %d)\n",
            MIN_COUNT, MAX_COUNT, MAX_PAUSE_US);
    return 2;
}

/* One page written and synced: at offset, or appended when offset is negative. 0, or -1 after
 * saying what failed. */
static int write_sync(int fd, const char *page, off_t offset)
{
    ssize_t n = offset < 0 ? write(fd, page, WRITE_BYTES) : pwrite(fd, page, WRITE_BYTES, offset);
    if (n != WRITE_BYTES) {
        fprintf(stderr, "kf_fsync: write: %s\n", n < 0 ? strerror(errno) : "short write");
        return -1;
    }
    if (fdatasync(fd) != 0) {
        fprintf(stderr, "kf_fsync: fdatasync: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* Times count write+fdatasync pairs on fd into samples (appended, or over the file's first
 * OVERWRITE_PAGES pages, made first), pause_us apart; 0, or -1 after saying what failed. */
static int measure(int fd, long count, bool overwrite, long pause_us, load_samples_t *samples)
{
    static char page[WRITE_BYTES];
    memset(page, 'k', sizeof page);
    for (long i = 0; overwrite && i < OVERWRITE_PAGES; i++)
        if (write_sync(fd, page, -1) != 0)
            return -1;
    for (long i = 0; i < count; i++) {
        uint64_t start = now_us();
        if (write_sync(fd, page, overwrite ? (off_t)(i % OVERWRITE_PAGES) * WRITE_BYTES : -1) != 0)
            return -1;
        load_samples_add(samples, now_us() - start);
        if ((i + 1) % 250 == 0)
            load_progress("%ld of %ld synced", i + 1, count);
        if (pause_us > 0)
            usleep((useconds_t)pause_us);
    }
    return 0;
}

/* A whole number from lo to hi, or -1. */
static long number_arg(const char *text, long lo, long hi)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && n >= lo && n <= hi ? n : -1;
}

int main(int argc, char **argv)
{
    load_tool_name("kf_fsync");
    long count = 1000, pause_us = 0;
    bool overwrite = false;
    const char *dir = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            if ((count = number_arg(argv[++i], MIN_COUNT, MAX_COUNT)) < 0)
                return usage();
        } else if (strcmp(argv[i], "--pause-us") == 0 && i + 1 < argc) {
            if ((pause_us = number_arg(argv[++i], 0, MAX_PAUSE_US)) < 0)
                return usage();
        } else if (strcmp(argv[i], "--overwrite") == 0) {
            overwrite = true;
        } else if (argv[i][0] == '-') {
            return usage();
        } else {
            dir = argv[i];
        }
    }
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/kf-fsync-XXXXXX", dir) >= (int)sizeof path)
        return usage();
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "kf_fsync: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    load_samples_t samples = {0};
    int rc = measure(fd, count, overwrite, pause_us, &samples);
    close(fd);
    unlink(path);
    if (rc != 0) {
        load_samples_free(&samples);
        return 1;
    }
    load_samples_sort(&samples);
    double p50 = load_percentile_ms(&samples, 0.50), p90 = load_percentile_ms(&samples, 0.90);
    double p99 = load_percentile_ms(&samples, 0.99), max = load_percentile_ms(&samples, 1.0);
    printf("%ld x (write 4 KiB %s + fdatasync, %ld us apart) in %s\n", count,
           overwrite ? "over the file" : "appended", pause_us, dir);
    printf("p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n", p50, p90, p99, max);
    kf_buf_t json = {0};
    kf_buf_printf(
        &json, "{\"label\":\"fsync\",\"count\":%ld,\"bytes\":%d,\"overwrite\":%s,\"pause_us\":%ld",
        count, WRITE_BYTES, overwrite ? "true" : "false", pause_us);
    load_json_num(&json, "fsync_p50_ms", p50, 3);
    load_json_num(&json, "fsync_p90_ms", p90, 3);
    load_json_num(&json, "fsync_p99_ms", p99, 3);
    load_json_num(&json, "fsync_max_ms", max, 3);
    /* The directory is the caller's own argument; quotes and backslashes are not expected in it,
     * and a path holding one is written without it rather than escaped. */
    kf_buf_append_str(&json, ",\"dir\":\"");
    for (const char *c = dir; *c != '\0'; c++)
        if (*c != '"' && *c != '\\' && (unsigned char)*c >= 0x20)
            kf_buf_append(&json, c, 1);
    kf_buf_append_str(&json, "\"}");
    printf("%.*s\n", (int)json.len, json.data);
    kf_buf_free(&json);
    load_samples_free(&samples);
    return 0;
}
