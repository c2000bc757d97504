/* log.c: one line per record on stderr: UTC time, level, message and the request id, as plain
 * text or a JSON object. */
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
/* A plain line's bytes at most, its line end included; and the room a request id takes. */
#define PLAIN_LINE 2048
#define ID_ROOM 80
/* Set once at start-up, before the store's threads start. */
static kf_log_format_t current_format = KF_LOG_PLAIN;
/* The request this thread serves now (the loop's: the dispatch sets it around a handler). */
static _Thread_local const char *current_request_id;

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

const char *kf_log_set_request_id(const char *id)
{
    const char *before = current_request_id;
    current_request_id = id;
    return before;
}

const char *kf_log_request_id(void)
{
    return current_request_id;
}

void kf_log_set_format(kf_log_format_t format)
{
    current_format = format;
}

int kf_log_parse_format(const char *name, kf_log_format_t *out)
{
    if (strcmp(name, "plain") == 0 || strcmp(name, "json") == 0) {
        *out = name[0] == 'j' ? KF_LOG_JSON : KF_LOG_PLAIN;
        return 0;
    }
    return KF_EINVAL;
}

/* Appends s to line (at *len, within size less room for the end) as JSON string content. */
static void append_json(char *line, size_t *len, size_t size, const char *s)
{
    for (; *s != '\0' && *len + 8 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            line[(*len)++] = '\\';
            line[(*len)++] = (char)c;
        } else if (c < 0x20) {
            *len += (size_t)snprintf(line + *len, size - *len, "\\u%04x", c);
        } else {
            line[(*len)++] = (char)c;
        }
    }
}

/* A JSON line: {"time":...,"level":...,"msg":...,"request_id":...}. The message may be cut at
 * the line's size (inside a character, then: the bytes are a log's, not a document's). */
static size_t json_line(char *line, size_t size, const char *time_text, kf_log_level_t level,
                        const char *message)
{
    size_t len = (size_t)snprintf(line, size, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"",
                                  time_text, level_names[level]);
    append_json(line, &len, size - 100, message); /* room for the request id and the end */
    if (current_request_id != NULL) {
        len += (size_t)snprintf(line + len, size - len, "\",\"request_id\":\"");
        append_json(line, &len, size, current_request_id);
    }
    len += (size_t)snprintf(line + len, size - len, "\"}");
    return len;
}

void kf_log(kf_log_level_t level, const char *fmt, ...)
{
    if (level < current_level || level >= KF_LOG_OFF)
        return;
    int64_t now_ms = kf_clock_wall_ms();
    time_t seconds = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    char time_text[96]; /* room for any int the compiler imagines in each field */
    snprintf(time_text, sizeof time_text, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(now_ms % 1000));
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (m < 0)
        message[0] = '\0';
    char line[4096];
    size_t len;
    if (current_format == KF_LOG_JSON) {
        len = json_line(line, sizeof line - 1, time_text, level, message);
    } else {
        /* A plain line stays under PLAIN_LINE bytes: the message is cut, the request id kept. */
        char suffix[ID_ROOM + 16] = "";
        if (current_request_id != NULL)
            snprintf(suffix, sizeof suffix, " request=%s", current_request_id);
        int n = snprintf(line, PLAIN_LINE, "%s %-5s ", time_text, level_names[level]);
        size_t prefix_len = n < 0 ? 0 : (size_t)n;
        size_t suffix_len = strlen(suffix);
        size_t room = PLAIN_LINE - 2 - prefix_len - suffix_len;
        size_t message_len = strlen(message);
        if (message_len > room)
            message_len = room;
        memcpy(line + prefix_len, message, message_len);
        memcpy(line + prefix_len + message_len, suffix, suffix_len);
        len = prefix_len + message_len + suffix_len;
        /* Log lines never carry raw control characters a client sent. */
        for (size_t i = prefix_len; i < len; i++) {
            if ((unsigned char)line[i] < 0x20)
                line[i] = '?';
        }
    }
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
