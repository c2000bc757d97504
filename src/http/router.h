/* router.h: maps a method and a path to a handler. Patterns are literal segments and "{id}",
 * which matches a decimal id (1 to 2^53) and is passed to the handler. */
#ifndef KF_HTTP_ROUTER_H
#define KF_HTTP_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define KF_ROUTE_MAX_IDS 4

struct kf_req;
typedef void (*kf_route_fn)(struct kf_req *req, const int64_t *ids);

typedef struct kf_route {
    const char *method;  /* "GET", "POST", ...; a GET route also answers HEAD */
    const char *pattern; /* e.g. "/api/conversations/{id}/messages" */
    kf_route_fn handler;
} kf_route_t;

/* Room for an Allow field value: every method a path takes, e.g. "GET, HEAD, POST". */
#define KF_ROUTE_ALLOW_SIZE 64

typedef struct kf_route_match {
    const kf_route_t *route;       /* the matched route */
    int64_t ids[KF_ROUTE_MAX_IDS]; /* the {id} values, in order */
    size_t id_count;
    char allow[KF_ROUTE_ALLOW_SIZE]; /* 405: the methods the path takes, as an Allow value */
} kf_route_match_t;

/* Finds the route for method and path (the path without the query, not decoded).
 * Returns 0 and fills match; KF_EPROTO for a method the server does not recognise (501,
 * RFC 9110 §9.1: none of RFC 9110's methods, PATCH, or a method of a route), whatever the path;
 * KF_ENOTFOUND when no pattern matches the path (404); KF_EINVAL when a pattern matches but not
 * with this method (405, RFC 9110 §15.5.6), with match->allow listing the methods the path takes
 * (table order, HEAD after GET) for the Allow field a 405 MUST carry. O(routes). */
int kf_router_match(const kf_route_t *routes, size_t count, kf_str_t method, kf_str_t path,
                    kf_route_match_t *match);

#endif
