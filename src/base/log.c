/* log.c: one line per record on stderr: UTC time, level, message. */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"

/* Atomic: the store's threads log too, and a test may change the level while they run. */
static _Atomic kf_log_level_t current_level = KF_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void kf_log_set_level(kf_log_level_t level)
{
    current_level = level;
}
kf_log_level_t kf_log_get_level(void)
{
    return current_level;
}

int kf_log_parse_level(const char *name, kf_log_level_t *out)
{
    for (int i = 0; i <= KF_LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (kf_log_level_t)i;
            return 0;
        }
    }
    return KF_EINVAL;
}

void kf_log(kf_log_level_t level, const char *fmt, ...)
{
    if (level < current_level || level >= KF_LOG_OFF)
        return;
    int64_t now_ms = kf_clock_wall_ms();
    time_t seconds = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(now_ms % 1000), level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    /* Log lines never carry raw control characters a client sent. */
    for (size_t i = (size_t)n; i < len; i++) {
        if ((unsigned char)line[i] < 0x20)
            line[i] = '?';
    }
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
