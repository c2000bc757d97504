/* log.h: levelled logging to stderr, as plain text or JSON lines, with the id of the request
 * being served when there is one. Only the edge (handlers, main) logs; lower layers return
 * codes. */
#ifndef KF_LOG_H
#define KF_LOG_H

typedef enum {
    KF_LOG_DEBUG = 0,
    KF_LOG_INFO,
    KF_LOG_WARN,
    KF_LOG_ERROR,
    KF_LOG_OFF
} kf_log_level_t;

typedef enum {
    KF_LOG_PLAIN = 0, /* "TIME LEVEL message [request=ID]" */
    KF_LOG_JSON,      /* one JSON object a line: time, level, msg, request_id (when there is one) */
} kf_log_format_t;

/* Messages below this level are dropped. Default KF_LOG_INFO. */
void kf_log_set_level(kf_log_level_t level);
kf_log_level_t kf_log_get_level(void);
/* Parses "debug", "info", "warn", "error", "off"; returns 0 or KF_EINVAL. */
int kf_log_parse_level(const char *name, kf_log_level_t *out);
/* The lines' format (default plain); set once at start-up, before other threads log. */
void kf_log_set_format(kf_log_format_t format);
/* Parses "plain" or "json"; returns 0 or KF_EINVAL. */
int kf_log_parse_format(const char *name, kf_log_format_t *out);
/* The request whose work the calling thread does now (NULL: none): its id goes into every line
 * the thread logs meanwhile. id is borrowed until it is set again. Returns the one before, for
 * the caller to put back. Per thread. */
const char *kf_log_set_request_id(const char *id);
/* The calling thread's request id now, or NULL. For work that goes on elsewhere (the store's
 * writer, another node): it copies the id (at most KF_LOG_REQUEST_ID_SIZE bytes with its NUL)
 * and sets it where that work is done, so that the lines there name the request too. */
const char *kf_log_request_id(void);
#define KF_LOG_REQUEST_ID_SIZE 65

void kf_log(kf_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kf_debug(...) kf_log(KF_LOG_DEBUG, __VA_ARGS__)
#define kf_info(...) kf_log(KF_LOG_INFO, __VA_ARGS__)
#define kf_warn(...) kf_log(KF_LOG_WARN, __VA_ARGS__)
#define kf_error(...) kf_log(KF_LOG_ERROR, __VA_ARGS__)

#endif
