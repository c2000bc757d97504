/* err.h: the one list of kefu error codes, and the one convention for failing.
 *
 * - A function that can fail returns 0 on success (or a count or length >= 0 where its header
 *   says so) and a negative KF_E* code from this list on failure. Nothing else is negative:
 *   no -1 for an error, no libuv or errno codes, no HTTP statuses; a layer that calls libuv,
 *   SQLite or OpenSSL maps their codes to these at its edge. (A lookup of a small value, such as
 *   kf_hex_digit, may answer -1 for "none": that is a value, not a failure, and its comment says
 *   so.)
 * - Where a failure must carry more than its code for the caller to answer it (the HTTP status a
 *   malformed request maps to, the WebSocket close code a bad frame calls for, a message for a
 *   person), the function fills an out-parameter its header names, and still returns a KF_E*
 *   code. The edge (an HTTP handler, main) turns codes into statuses and log lines; lower layers
 *   never log.
 * - Predicates (is_, has_, *_allowed, *_eq) return bool; functions that return a pointer return
 *   NULL on failure, and say in their header what failure means (out of memory aborts instead:
 *   base/buf.h).
 * - A function that owns several resources releases them through one forward chain of goto
 *   labels named after what they undo (out_free_buf:), so every exit path is the same one.
 * - Asynchronous operations (the store, password hashing) return 0 having queued the work, and
 *   their callback then runs exactly once, later, never from inside the call; or they return a
 *   KF_E* code at once, and the callback never runs. */
#ifndef KF_ERR_H
#define KF_ERR_H

/* X(name, message): codes are negative, numbered in list order from -1. Append only: tests and
 * logs read the messages, not the numbers, but nothing gains from renumbering. */
#define KF_ERR_MAP(X)                                                                              \
    X(NOMEM, "out of memory")                                                                      \
    X(INVAL, "invalid argument")                                                                   \
    X(NOTFOUND, "not found")                                                                       \
    X(EXISTS, "already exists")                                                                    \
    X(TOOBIG, "too large")                                                                         \
    X(IO, "input/output error")                                                                    \
    X(STORE, "store error")                                                                        \
    X(AUTH, "not authorised")                                                                      \
    X(AGAIN, "incomplete, more input needed")                                                      \
    X(PROTO, "protocol error")                                                                     \
    X(EXPIRED, "expired")                                                                          \
    X(LIMIT, "limit reached")                                                                      \
    X(FORBIDDEN, "not allowed")                                                                    \
    X(UNAVAIL, "temporarily unavailable")                                                          \
    X(ADDRINUSE, "address already in use")                                                         \
    X(ACCESS, "permission denied")                                                                 \
    X(CONFLICT, "conflicts with the current state")

/* Indices first, so that the codes can be written as -(index + 1). */
enum {
#define KF_ERR_IDX(name, msg) KF__ERR_IDX_##name,
    KF_ERR_MAP(KF_ERR_IDX) KF__ERR_COUNT
#undef KF_ERR_IDX
};

enum {
    KF_OK = 0,
#define KF_ERR_ENUM(name, msg) KF_E##name = -(KF__ERR_IDX_##name + 1),
    KF_ERR_MAP(KF_ERR_ENUM)
#undef KF_ERR_ENUM
};

/* Returns a static English message for a code (also for 0 and unknown codes). */
const char *kf_strerror(int code);

#endif
