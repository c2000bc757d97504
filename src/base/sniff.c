/* sniff.c: the attachment allow-list, by magic bytes. A type is taken only when its signature is
 * where its format puts it, so that a renamed program (MZ, ELF, a script) matches nothing. */
#include "base/sniff.h"

#include <stdint.h>
#include <string.h>

/* Whether bytes start with the len bytes of magic. */
static bool starts_with(const unsigned char *bytes, size_t len, const char *magic, size_t magic_len)
{
    return len >= magic_len && memcmp(bytes, magic, magic_len) == 0;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Whether a zip's local file headers name an entry starting with prefix ("word/", "xl/"). An
 * Office document is a zip whose entries say what it is; walking the local headers from the
 * start (bounded by len) finds them without trusting the central directory's offsets. At most
 * 64 entries are looked at: Office writes its parts early. */
static bool zip_has_entry(const unsigned char *bytes, size_t len, const char *prefix)
{
    size_t prefix_len = strlen(prefix);
    size_t at = 0;
    for (int entry = 0; entry < 64; entry++) {
        if (len < 30 || at > len - 30 || le32(bytes + at) != 0x04034b50u)
            return false;
        uint16_t flags = le16(bytes + at + 6);
        uint32_t compressed = le32(bytes + at + 18);
        uint16_t name_len = le16(bytes + at + 26);
        uint16_t extra_len = le16(bytes + at + 28);
        size_t name_at = at + 30;
        if (name_len > len - name_at)
            return false;
        if (name_len >= prefix_len && memcmp(bytes + name_at, prefix, prefix_len) == 0)
            return true;
        /* A streamed entry (bit 3) says its size only after its data: the walk cannot go on. */
        if ((flags & 0x08) != 0)
            return false;
        size_t next = name_at + name_len;
        if ((size_t)extra_len > len - next)
            return false;
        next += extra_len;
        if ((size_t)compressed > len - next)
            return false;
        at = next + compressed;
    }
    return false;
}

/* Whether bytes are UTF-8 text a person wrote: valid UTF-8 (no overlongs, no surrogates, nothing
 * past U+10FFFF), and no control bytes but tab, LF, FF and CR. */
static bool is_text(const unsigned char *bytes, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = bytes[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\f' && c != '\r')
                return false;
            if (c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t need;
        uint32_t min;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            min = 0x80;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            min = 0x800;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            min = 0x10000;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (need > len - i - 1)
            return false;
        for (size_t k = 1; k <= need; k++) {
            unsigned char cont = bytes[i + k];
            if ((cont & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (cont & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

const char *kf_sniff_type(const void *data, size_t len)
{
    const unsigned char *bytes = data;
    if (len == 0 || bytes == NULL)
        return NULL;
    if (starts_with(bytes, len, "\x89PNG\r\n\x1a\n", 8))
        return "image/png";
    if (starts_with(bytes, len, "\xff\xd8\xff", 3))
        return "image/jpeg";
    if (starts_with(bytes, len, "GIF87a", 6) || starts_with(bytes, len, "GIF89a", 6))
        return "image/gif";
    if (len >= 12 && memcmp(bytes, "RIFF", 4) == 0 && memcmp(bytes + 8, "WEBP", 4) == 0)
        return "image/webp";
    if (starts_with(bytes, len, "%PDF-", 5))
        return "application/pdf";
    if (starts_with(bytes, len, "PK\x03\x04", 4)) {
        if (zip_has_entry(bytes, len, "word/"))
            return "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        if (zip_has_entry(bytes, len, "xl/"))
            return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
        return NULL; /* another zip: it may hold anything */
    }
    /* A byte-order mark is text's only signature; without one, the whole content decides. */
    size_t skip = starts_with(bytes, len, "\xef\xbb\xbf", 3) ? 3 : 0;
    if (is_text(bytes + skip, len - skip))
        return "text/plain";
    return NULL;
}

bool kf_sniff_is_image(const char *type)
{
    return type != NULL && strncmp(type, "image/", 6) == 0;
}
