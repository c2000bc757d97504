/* kf_fsync.c: the physical floor of a push that waits for durability: how long one 4 KiB write
 * followed by fdatasync takes in a directory (give it kefu's data directory, or one on the same
 * filesystem). A commit in kefu's writer thread is at least this: SQLite appends the batch's pages
 * to the WAL and syncs it before the loop answers and publishes. Issue 17's first target allows
 * kefu's p99 to exceed Nchan's (which syncs nothing) by this figure's p99, measured in the same
 * run because the disk's speed moves with what else the machine is doing.
 *
 *   build/kf_fsync [--count N] [DIR]
 *     N pairs (default 1,000; 10 to 100,000); DIR: where the scratch file goes (default /tmp). The
 *     file is created, appended to (as a growing log is: each sync also has the new size to
 *     write), and removed.
 *
 * Progress on stderr; a small table, then, as the last line on stdout, one JSON object:
 * {"label":"fsync","count":N,"bytes":4096,"fsync_p50_ms":..,"fsync_p90_ms":..,"fsync_p99_ms":..,
 *  "fsync_max_ms":..,"dir":"DIR"}. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int usage(void)
{
    fprintf(stderr, "usage: kf_fsync [--count N] [DIR]   (N from %d to %d, default 1000)\n",
            MIN_COUNT, MAX_COUNT);
    return 2;
}

/* Times count write+fdatasync pairs on fd into samples; 0, or -1 after saying what failed. */
static int measure(int fd, long count, load_samples_t *samples)
{
    static char page[WRITE_BYTES];
    memset(page, 'k', sizeof page);
    for (long i = 0; i < count; i++) {
        uint64_t start = now_us();
        ssize_t n = write(fd, page, sizeof page);
        if (n != (ssize_t)sizeof page) {
            fprintf(stderr, "kf_fsync: write: %s\n", n < 0 ? strerror(errno) : "short write");
            return -1;
        }
        if (fdatasync(fd) != 0) {
            fprintf(stderr, "kf_fsync: fdatasync: %s\n", strerror(errno));
            return -1;
        }
        load_samples_add(samples, now_us() - start);
        if ((i + 1) % 250 == 0)
            load_progress("%ld of %ld synced", i + 1, count);
    }
    return 0;
}

int main(int argc, char **argv)
{
    load_tool_name("kf_fsync");
    long count = 1000;
    const char *dir = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            char *end;
            count = strtol(argv[++i], &end, 10);
            if (*end != '\0' || count < MIN_COUNT || count > MAX_COUNT)
                return usage();
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
    int rc = measure(fd, count, &samples);
    close(fd);
    unlink(path);
    if (rc != 0) {
        load_samples_free(&samples);
        return 1;
    }
    load_samples_sort(&samples);
    double p50 = load_percentile_ms(&samples, 0.50), p90 = load_percentile_ms(&samples, 0.90);
    double p99 = load_percentile_ms(&samples, 0.99), max = load_percentile_ms(&samples, 1.0);
    printf("%ld x (write 4 KiB + fdatasync) in %s\n", count, dir);
    printf("p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n", p50, p90, p99, max);
    kf_buf_t json = {0};
    kf_buf_printf(&json, "{\"label\":\"fsync\",\"count\":%ld,\"bytes\":%d", count, WRITE_BYTES);
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
