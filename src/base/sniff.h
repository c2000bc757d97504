/* sniff.h: what kind of file a byte string is, judged from its content (magic bytes), never from
 * a name or a type a client claims: the allow-list of attachments (docs/API.md, "Attachments").
 * Pure functions over a buffer; any thread. */
#ifndef KF_BASE_SNIFF_H
#define KF_BASE_SNIFF_H

#include <stdbool.h>
#include <stddef.h>

/* The media type of bytes when it is one attachments allow (image/png, image/jpeg, image/gif,
 * image/webp, application/pdf, the zip-based Office documents docx and xlsx, text/plain), else
 * NULL. A static string. text/plain is valid UTF-8 without NUL or other control bytes than
 * tab, CR, LF and form feed; an empty buffer is nothing. Reads at most len bytes: O(len) for
 * text and Office documents, O(1) for the rest. */
const char *kf_sniff_type(const void *bytes, size_t len);

/* Whether a sniffed type is shown inline (an image: a preview) rather than downloaded. */
bool kf_sniff_is_image(const char *type);

#endif
