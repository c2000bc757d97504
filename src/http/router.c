/* router.c: a linear route table; the table is short, so a scan beats any index. */
#include "http/router.h"

#include <string.h>

#include "base/err.h"

#define MAX_ROUTE_ID ((int64_t)1 << 53)

/* Matches path against pattern, filling ids; true on a match. */
static bool match_pattern(const char *pattern, kf_str_t path, kf_route_match_t *match)
{
    size_t pi = 0;
    const char *p = pattern;
    match->id_count = 0;
    while (*p != '\0') {
        if (strncmp(p, "{id}", 4) == 0) {
            int64_t value = 0;
            size_t digits = 0;
            while (pi < path.len && path.ptr[pi] >= '0' && path.ptr[pi] <= '9') {
                if (value > MAX_ROUTE_ID / 10)
                    return false;
                value = value * 10 + (path.ptr[pi] - '0');
                pi++;
                digits++;
            }
            if (digits == 0 || value < 1 || value > MAX_ROUTE_ID ||
                match->id_count == KF_ROUTE_MAX_IDS)
                return false;
            match->ids[match->id_count++] = value;
            p += 4;
            continue;
        }
        if (pi >= path.len || path.ptr[pi] != *p)
            return false;
        pi++;
        p++;
    }
    return pi == path.len;
}

/* Whether method is one the server recognises: RFC 9110's (§9), PATCH (RFC 5789), or one a
 * route takes. Anything else is a method it cannot serve on any resource (501, not 405). */
/* The route of entry i of a table of stride-byte entries. */
static const kf_route_t *route_at(const void *table, size_t stride, size_t i)
{
    return (const kf_route_t *)(const void *)((const char *)table + i * stride);
}

static bool method_known(const void *table, size_t count, size_t stride, kf_str_t method)
{
    static const char *const standard[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                           "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (size_t i = 0; i < sizeof standard / sizeof standard[0]; i++) {
        if (kf_str_eq(method, standard[i]))
            return true;
    }
    for (size_t i = 0; i < count; i++) {
        if (kf_str_eq(method, route_at(table, stride, i)->method))
            return true;
    }
    return false;
}

/* Adds method to the Allow value in allow (of KF_ROUTE_ALLOW_SIZE bytes) unless it is there. */
static void allow_add(char *allow, const char *method)
{
    size_t method_len = strlen(method);
    for (const char *at = allow; *at != '\0';) {
        const char *end = strchr(at, ',');
        size_t len = end != NULL ? (size_t)(end - at) : strlen(at);
        if (len == method_len && memcmp(at, method, len) == 0)
            return;
        at = end != NULL ? end + 2 : at + len;
    }
    size_t used = strlen(allow);
    size_t need = (used > 0 ? 2 : 0) + method_len + 1;
    if (used + need > KF_ROUTE_ALLOW_SIZE)
        return; /* no route table here comes near; a longer one gets a shorter list */
    if (used > 0)
        memcpy(allow + used, ", ", 2);
    memcpy(allow + used + (used > 0 ? 2 : 0), method, method_len + 1);
}

int kf_router_match(const void *table, size_t count, size_t stride, kf_str_t method, kf_str_t path,
                    kf_route_match_t *match)
{
    match->allow[0] = '\0';
    if (!method_known(table, count, stride, method))
        return KF_EPROTO;
    bool path_known = false;
    for (size_t i = 0; i < count; i++) {
        const kf_route_t *route = route_at(table, stride, i);
        if (!match_pattern(route->pattern, path, match))
            continue;
        path_known = true;
        bool head_as_get = kf_str_eq(method, "HEAD") && strcmp(route->method, "GET") == 0;
        if (kf_str_eq(method, route->method) || head_as_get) {
            match->index = i;
            return 0;
        }
        allow_add(match->allow, route->method);
        if (strcmp(route->method, "GET") == 0)
            allow_add(match->allow, "HEAD");
    }
    return path_known ? KF_EINVAL : KF_ENOTFOUND;
}
