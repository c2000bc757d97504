/* assets.c: lookup in the embedded web/ files, and serving them with compression and
 * revalidation. */
#include "http/assets.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/server.h"

const kf_asset_t *kf_asset_find(const char *name, size_t name_len)
{
    for (const kf_asset_t *a = kf_assets; a->name != NULL; a++) {
        if (strlen(a->name) == name_len && memcmp(a->name, name, name_len) == 0)
            return a;
    }
    return NULL;
}

const char *kf_asset_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    if (strcmp(dot, ".png") == 0)
        return "image/png";
    if (strcmp(dot, ".ico") == 0)
        return "image/x-icon";
    return "application/octet-stream";
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits off the next comma-separated element of *rest (quoted strings are not split, so a comma
 * inside an entity tag stays in it); false when none is left. */
static bool next_element(kf_str_t *rest, kf_str_t *element)
{
    while (rest->len > 0 && (rest->ptr[0] == ',' || is_ows(rest->ptr[0]))) {
        rest->ptr++;
        rest->len--;
    }
    if (rest->len == 0)
        return false;
    size_t i = 0;
    bool quoted = false;
    while (i < rest->len && (quoted || rest->ptr[i] != ',')) {
        if (rest->ptr[i] == '"')
            quoted = !quoted;
        i++;
    }
    *element = kf_str_trim_ows((kf_str_t){rest->ptr, i});
    rest->ptr += i;
    rest->len -= i;
    return true;
}

/* The weight of one Accept-Encoding element's parameters (after the coding): 1 when there is no
 * q, 0 for q=0 (also written 0.0 and so on), -1 when the parameters are malformed (the element
 * is then ignored). */
static int weight_of(kf_str_t params)
{
    params = kf_str_trim_ows(params);
    if (params.len == 0)
        return 1;
    if (params.ptr[0] != ';')
        return -1;
    kf_str_t q = kf_str_trim_ows((kf_str_t){params.ptr + 1, params.len - 1});
    if (q.len < 3 || (q.ptr[0] != 'q' && q.ptr[0] != 'Q') || q.ptr[1] != '=')
        return -1;
    /* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
    const char *v = q.ptr + 2;
    size_t n = q.len - 2;
    if (n > 5 || (v[0] != '0' && v[0] != '1') || (n > 1 && v[1] != '.'))
        return -1;
    bool nonzero = v[0] == '1';
    for (size_t i = 2; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || (v[0] == '1' && v[i] != '0'))
            return -1;
        nonzero = nonzero || v[i] != '0';
    }
    return nonzero ? 1 : 0;
}

bool kf_http_accepts_gzip(kf_str_t accept_encoding)
{
    int gzip = -1, any = -1;
    kf_str_t rest = accept_encoding, element;
    while (next_element(&rest, &element)) {
        size_t i = 0;
        while (i < element.len && element.ptr[i] != ';' && !is_ows(element.ptr[i]))
            i++;
        kf_str_t coding = {element.ptr, i};
        int weight = weight_of((kf_str_t){element.ptr + i, element.len - i});
        if (weight < 0)
            continue;
        if (kf_str_ieq(coding, "gzip") || kf_str_ieq(coding, "x-gzip"))
            gzip = weight;
        else if (kf_str_eq(coding, "*"))
            any = weight;
    }
    return gzip > 0 || (gzip < 0 && any > 0);
}

/* The opaque part of an entity tag, without W/ (a view into tag); false when malformed. */
static bool opaque_tag(kf_str_t tag, kf_str_t *opaque)
{
    if (tag.len >= 2 && tag.ptr[0] == 'W' && tag.ptr[1] == '/') {
        tag.ptr += 2;
        tag.len -= 2;
    }
    if (tag.len < 2 || tag.ptr[0] != '"' || tag.ptr[tag.len - 1] != '"')
        return false;
    *opaque = (kf_str_t){tag.ptr + 1, tag.len - 2};
    return memchr(opaque->ptr, '"', opaque->len) == NULL;
}

bool kf_http_etag_matches(kf_str_t if_none_match, const char *etag)
{
    kf_str_t ours;
    if (!opaque_tag((kf_str_t){etag, strlen(etag)}, &ours))
        return false;
    kf_str_t value = kf_str_trim_ows(if_none_match);
    if (value.len == 1 && value.ptr[0] == '*')
        return true;
    kf_str_t rest = value, element, theirs;
    while (next_element(&rest, &element)) {
        if (opaque_tag(element, &theirs) && theirs.len == ours.len &&
            memcmp(theirs.ptr, ours.ptr, ours.len) == 0)
            return true;
    }
    return false;
}

void kf_asset_serve(struct kf_req *req, const kf_asset_t *asset)
{
    kf_asset_serve_cached(req, asset, "no-cache");
}

void kf_asset_serve_cached(struct kf_req *req, const kf_asset_t *asset, const char *cache_control)
{
    const kf_str_t *accept = kf_http_header_get(req->head, "Accept-Encoding");
    bool gzip = asset->gz != NULL && accept != NULL && kf_http_accepts_gzip(*accept);
    /* Two encodings are two representations: each has its own strong tag. */
    char etag[32];
    snprintf(etag, sizeof etag, "\"%s%s\"", asset->tag, gzip ? "-gz" : "");
    kf_resp_header(req, "ETag", etag);
    kf_resp_header(req, "Vary", "Accept-Encoding");
    kf_resp_header(req, "Cache-Control", cache_control);
    const kf_str_t *if_none_match = kf_http_header_get(req->head, "If-None-Match");
    if (if_none_match != NULL && kf_http_etag_matches(*if_none_match, etag)) {
        kf_resp_send(req, 304, NULL, NULL, 0);
        return;
    }
    if (gzip)
        kf_resp_header(req, "Content-Encoding", "gzip");
    kf_resp_send(req, 200, kf_asset_content_type(asset->name), gzip ? asset->gz : asset->data,
                 gzip ? asset->gz_len : asset->len);
}
