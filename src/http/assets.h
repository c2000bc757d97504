/* assets.h: the web/ files compiled into the binary (see tools/embed.c). */
#ifndef KF_ASSETS_H
#define KF_ASSETS_H

#include <stddef.h>

typedef struct kf_asset {
    const char *name;          /* file name within web/, e.g. "chat.html"; NULL ends the table */
    const unsigned char *data; /* the bytes (NUL-terminated for convenience) */
    size_t len;                /* byte count, without the NUL */
} kf_asset_t;

extern const kf_asset_t kf_assets[];

/* Returns the asset with that exact name, or NULL. */
const kf_asset_t *kf_asset_find(const char *name, size_t name_len);
/* Returns a Content-Type for a file name by its extension. */
const char *kf_asset_content_type(const char *name);

#endif
