/* err.h: the one list of kefu error codes; every function that can fail returns 0 or one of these.
 */
#ifndef KF_ERR_H
#define KF_ERR_H

/* X(name, message): codes are negative, numbered in list order from -1. */
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
    X(LIMIT, "limit reached")

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
