/* err.c: messages for the kefu error codes. */
#include "base/err.h"

static const char *const messages[KF__ERR_COUNT] = {
#define KF_ERR_MSG(name, msg) msg,
    KF_ERR_MAP(KF_ERR_MSG)
#undef KF_ERR_MSG
};

const char *kf_strerror(int code)
{
    if (code == 0)
        return "success";
    if (code < 0 && -code <= KF__ERR_COUNT)
        return messages[-code - 1];
    return "unknown error";
}
