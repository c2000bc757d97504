/* assets.c: lookup in the embedded web/ files. */
#include "http/assets.h"

#include <string.h>

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
