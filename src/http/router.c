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

int kf_router_match(const kf_route_t *routes, size_t count, kf_str_t method, kf_str_t path,
                    kf_route_match_t *match)
{
    bool path_known = false;
    for (size_t i = 0; i < count; i++) {
        if (!match_pattern(routes[i].pattern, path, match))
            continue;
        path_known = true;
        bool head_as_get = kf_str_eq(method, "HEAD") && strcmp(routes[i].method, "GET") == 0;
        if (kf_str_eq(method, routes[i].method) || head_as_get) {
            match->route = &routes[i];
            return 0;
        }
    }
    return path_known ? KF_EINVAL : KF_ENOTFOUND;
}
