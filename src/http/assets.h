/* assets.h: the web/ files compiled into the binary (see tools/embed.c), and how they are served:
 * gzip-encoded when the client accepts it (encoded once, at build time), with an entity tag from
 * their content so that a browser revalidates its copy with a 304 instead of a download. */
#ifndef KF_ASSETS_H
#define KF_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/str.h"

struct kf_req;

typedef struct kf_asset {
    const char *name;          /* file name within web/, e.g. "chat.html"; NULL ends the table */
    const unsigned char *data; /* the bytes (NUL-terminated for convenience) */
    size_t len;                /* byte count, without the NUL */
    const unsigned char *gz;   /* the gzip encoding of data, or NULL when it would not be smaller */
    size_t gz_len;
    const char *tag; /* 16 hex digits of the content's SHA-256: the entity tag's opaque part */
} kf_asset_t;

extern const kf_asset_t kf_assets[];

/* Returns the asset with that exact name, or NULL. */
const kf_asset_t *kf_asset_find(const char *name, size_t name_len);
/* Returns a Content-Type for a file name by its extension. */
const char *kf_asset_content_type(const char *name);

/* Answers req with asset (200, or 304 when If-None-Match names its current entity tag), in gzip
 * when Accept-Encoding allows it, with ETag, Vary: Accept-Encoding and Cache-Control: no-cache
 * (a browser keeps the copy and asks each time whether it is still good). Headers the caller
 * added before (a page's Content-Security-Policy) go out too. */
void kf_asset_serve(struct kf_req *req, const kf_asset_t *asset);
/* The same with another Cache-Control value (the widget's loader: every page of a customer's site
 * loads it, so a browser keeps it a while without asking). */
void kf_asset_serve_cached(struct kf_req *req, const kf_asset_t *asset, const char *cache_control);

/* True when an Accept-Encoding value (RFC 9110 §12.5.3) accepts gzip: "gzip" or "x-gzip" with
 * a weight above 0, or "*" above 0 without gzip itself refused. */
bool kf_http_accepts_gzip(kf_str_t accept_encoding);
/* True when an If-None-Match value (RFC 9110 §13.1.2) is "*" or lists etag (a quoted entity tag,
 * compared weakly: a W/ prefix on either side does not matter). */
bool kf_http_etag_matches(kf_str_t if_none_match, const char *etag);

#endif
