/* router.h: maps a method and a path to an entry of a route table. Patterns are literal segments
 * and "{id}", which matches a decimal id (1 to 2^53) and is handed back. A table is an array of
 * the application's own structs, each beginning with a kf_route_t, so that a route carries what
 * its application needs of it (a handler, who may call it) in one place. */
#ifndef KF_HTTP_ROUTER_H
#define KF_HTTP_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define KF_ROUTE_MAX_IDS 4

/* The first member of every entry of a route table. */
typedef struct kf_route {
    const char *method;  /* "GET", "POST", ...; a GET route also answers HEAD */
    const char *pattern; /* e.g. "/api/conversations/{id}/messages" */
} kf_route_t;

/* Room for an Allow field value: every method a path takes, e.g. "GET, HEAD, POST". */
#define KF_ROUTE_ALLOW_SIZE 64

typedef struct kf_route_match {
    size_t index;                  /* the matched entry's index in the table */
    int64_t ids[KF_ROUTE_MAX_IDS]; /* the {id} values, in order */
    size_t id_count;
    char allow[KF_ROUTE_ALLOW_SIZE]; /* 405: the methods the path takes, as an Allow value */
} kf_route_match_t;

/* Finds the entry for method and path (the path without the query, not decoded) in table, an
 * array of count entries of stride bytes each, each beginning with a kf_route_t.
 * Returns 0 and fills match; KF_EPROTO for a method the server does not recognise (501,
 * RFC 9110 §9.1: none of RFC 9110's methods, PATCH, or a method of a route), whatever the path;
 * KF_ENOTFOUND when no pattern matches the path (404); KF_EINVAL when a pattern matches but not
 * with this method (405, RFC 9110 §15.5.6), with match->allow listing the methods the path takes
 * (table order, HEAD after GET) for the Allow field a 405 MUST carry. O(routes). */
int kf_router_match(const void *table, size_t count, size_t stride, kf_str_t method, kf_str_t path,
                    kf_route_match_t *match);

#endif
