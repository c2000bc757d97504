/* fuzz_router.c: libFuzzer target for the router (http/router.c): a method and a raw path
 * against the application's route patterns (its own table, chat/routes.c) and a few more
 * that test the limits, compared with a reference that splits path and pattern into segments.
 * The path params it hands on must be the ids the path spells: decimal, 1 to 2^53; a method it
 * does not know is refused whatever the path (501), and a 405's Allow lists the path's methods.
 *
 * Input: byte 0 picks the method (low 3 bits) and the table (bit 3: the extra patterns); the
 * rest is the path, as it comes after the parser (not decoded, any bytes). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "chat/app.h"
#include "http/router.h"

/* The application's routes, read from its table (chat/app.h) at the first input. */
static kf_route_t app_routes[64];
static size_t app_route_count;

static void load_app_routes(void)
{
    const kf_route_t *route;
    while (app_route_count < sizeof app_routes / sizeof app_routes[0] &&
           (route = kf_app_route(app_route_count, NULL, NULL)) != NULL)
        app_routes[app_route_count++] = *route;
}

/* Adjacent ids, the most ids a match may carry, one more than that, an id at the root. */
static const kf_route_t extra_routes[] = {
    {"GET", "/{id}"},
    {"PUT", "/a/{id}/{id}"},
    {"GET", "/b/{id}/{id}/{id}/{id}"},
    {"GET", "/c/{id}/{id}/{id}/{id}/{id}"},
    {"POST", "/a/{id}/{id}"},
    {"GET", "/a/x/{id}"},
};

static const char *const methods[8] = {"GET", "HEAD", "POST", "PUT", "OPTIONS", "get", "", "GETS"};
/* What the router must know besides its routes' methods (RFC 9110 §9, RFC 5789). */
static const char *const standard_methods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                               "CONNECT", "OPTIONS", "TRACE", "PATCH"};

#define MAX_ID ((uint64_t)1 << 53)

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

/* Splits at '/': the segments of "/a/b" are "", "a", "b". */
static size_t segment_end(const char *s, size_t len, size_t start)
{
    const char *slash = memchr(s + start, '/', len - start);
    return slash != NULL ? (size_t)(slash - s) : len;
}

/* A whole segment of digits, 1 to 2^53 (leading zeros allowed). */
static bool parse_id(const char *s, size_t len, int64_t *out)
{
    uint64_t value = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        value = value * 10 + (uint64_t)(s[i] - '0');
        if (value > MAX_ID)
            return false;
    }
    *out = (int64_t)value;
    return value >= 1;
}

/* The reference: pattern and path have the same segments, each literal equal or an {id} that is
 * an id; at most KF_ROUTE_MAX_IDS of them. */
static bool ref_match(const char *pattern, const char *path, size_t path_len, int64_t *ids,
                      size_t *id_count)
{
    size_t pattern_len = strlen(pattern);
    size_t p = 0, q = 0;
    *id_count = 0;
    for (;;) {
        size_t p_end = segment_end(pattern, pattern_len, p);
        size_t q_end = segment_end(path, path_len, q);
        const char *seg = pattern + p;
        size_t seg_len = p_end - p;
        if (seg_len == 4 && memcmp(seg, "{id}", 4) == 0) {
            if (*id_count == KF_ROUTE_MAX_IDS || !parse_id(path + q, q_end - q, &ids[*id_count]))
                return false;
            (*id_count)++;
        } else if (seg_len != q_end - q || memcmp(seg, path + q, seg_len) != 0) {
            return false;
        }
        bool pattern_done = p_end == pattern_len;
        bool path_done = q_end == path_len;
        if (pattern_done || path_done)
            return pattern_done && path_done;
        p = p_end + 1;
        q = q_end + 1;
    }
}

static bool ref_known(const kf_route_t *routes, size_t count, const char *method)
{
    for (size_t i = 0; i < sizeof standard_methods / sizeof standard_methods[0]; i++) {
        if (strcmp(method, standard_methods[i]) == 0)
            return true;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(method, routes[i].method) == 0)
            return true;
    }
    return false;
}

/* Appends method to the reference Allow value unless it is in it. */
static void ref_allow_add(char *allow, size_t size, const char *method)
{
    char item[64];
    snprintf(item, sizeof item, ", %s,", method);
    char listed[256];
    snprintf(listed, sizeof listed, ", %s,", allow);
    if (strstr(listed, item) != NULL)
        return;
    size_t used = strlen(allow);
    snprintf(allow + used, size - used, "%s%s", used > 0 ? ", " : "", method);
}

static void compare(const kf_route_t *routes, size_t count, const char *method, const char *path,
                    size_t path_len)
{
    kf_route_match_t match;
    memset(&match, 0xAA, sizeof match);
    int rc = kf_router_match(routes, count, sizeof routes[0], (kf_str_t){method, strlen(method)},
                             (kf_str_t){path, path_len}, &match);

    int want = KF_ENOTFOUND;
    const kf_route_t *want_route = NULL;
    int64_t ids[KF_ROUTE_MAX_IDS];
    size_t id_count = 0;
    char allow[256] = "";
    for (size_t i = 0; i < count && want_route == NULL; i++) {
        if (!ref_match(routes[i].pattern, path, path_len, ids, &id_count))
            continue;
        want = KF_EINVAL;
        if (strcmp(method, routes[i].method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
            want = 0;
            want_route = &routes[i];
        } else {
            ref_allow_add(allow, sizeof allow, routes[i].method);
            if (strcmp(routes[i].method, "GET") == 0)
                ref_allow_add(allow, sizeof allow, "HEAD");
        }
    }
    if (!ref_known(routes, count, method))
        want = KF_EPROTO;
    check(rc == want, "kf_router_match result");
    if (rc == KF_EINVAL)
        check(strcmp(match.allow, allow) == 0, "the Allow value");
    if (rc != 0)
        return;
    check(&routes[match.index] == want_route, "the first route that matches");
    check(match.id_count == id_count, "id count");
    for (size_t i = 0; i < id_count; i++)
        check(match.ids[i] == ids[i], "ids");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return -1;
    if (app_route_count == 0)
        load_app_routes();
    /* A copy exactly as long as the path, so that a read past it is caught. */
    size_t path_len = size - 1;
    char *path = malloc(path_len > 0 ? path_len : 1);
    check(path != NULL, "malloc");
    memcpy(path, data + 1, path_len);
    const char *method = methods[data[0] & 7];
    if (data[0] & 8)
        compare(extra_routes, sizeof extra_routes / sizeof extra_routes[0], method, path, path_len);
    else
        compare(app_routes, app_route_count, method, path, path_len);
    free(path);
    return 0;
}
