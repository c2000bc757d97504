/* test_sniff.c: the attachment allow-list by magic bytes (base/sniff.h): each allowed format
 * from its signature, whatever the rest; programs, archives and binary data refused whatever they
 * are called; text as valid UTF-8 only; truncated signatures and zips; every prefix of every
 * sample read without going past it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/sniff.h"

typedef struct sample {
    const char *what;
    const char *bytes;
    size_t len;
    const char *type; /* NULL: refused */
} sample_t;

#define S(what, lit, type)                                                                         \
    {                                                                                              \
        what, lit, sizeof lit - 1, type                                                            \
    }

#define DOCX "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
#define XLSX "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

/* A zip local file header for an entry called name with size bytes of data (stored). */
#define ZIP_ENTRY(name_len, size, name)                                                            \
    "PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" size                      \
    "\x00\x00\x00\x00" name_len "\x00\x00\x00" name

static const sample_t samples[] = {
    S("PNG", "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "image/png"),
    S("JPEG (JFIF)", "\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    S("JPEG (Exif)",
      "\xff\xd8\xff\xe1\x00\x10"
      "Exif",
      "image/jpeg"),
    S("GIF87a", "GIF87a\x01\x00\x01\x00", "image/gif"),
    S("GIF89a", "GIF89a\x01\x00\x01\x00", "image/gif"),
    S("WebP", "RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    S("PDF", "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
    S("docx",
      ZIP_ENTRY("\x13", "\x00\x00\x00\x00", "[Content_Types].xml")
          ZIP_ENTRY("\x11", "\x00\x00\x00\x00", "word/document.xml"),
      DOCX),
    S("xlsx", ZIP_ENTRY("\x0f", "\x00\x00\x00\x00", "xl/workbook.xml"), XLSX),
    S("text", "Order 42 arrived broken.\r\n\tPlease help.\f", "text/plain"),
    S("UTF-8 text", "\xe6\x88\x91\xe8\xa6\x81\xe9\x80\x80\xe6\xac\xbe \xf0\x9f\x98\x80\n",
      "text/plain"),
    S("a BOM and text", "\xef\xbb\xbfhello", "text/plain"),
    /* Refused: programs, whatever their name; other archives; binary and broken text. */
    S("Windows program", "MZ\x90\x00\x03\x00\x00\x00\x04\x00", NULL),
    S("ELF program",
      "\x7f"
      "ELF\x02\x01\x01\x00",
      NULL),
    S("Mach-O program", "\xcf\xfa\xed\xfe\x07\x00\x00\x01", NULL),
    S("a zip of something else", ZIP_ENTRY("\x07", "\x00\x00\x00\x00", "run.exe"), NULL),
    S("a zip whose entry runs past the end", ZIP_ENTRY("\x09", "\xff\xff\x00\x00", "data.bin"),
      NULL),
    S("a zip header cut short", "PK\x03\x04\x14\x00", NULL),
    S("a streamed zip entry",
      "PK\x03\x04\x14\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
      "\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00x",
      NULL),
    S("RIFF but not WebP (a WAV)", "RIFF\x24\x00\x00\x00WAVEfmt ", NULL),
    S("a PNG signature cut short", "\x89PNG\r\n", NULL),
    S("HTML", "<html><script>alert(1)</script>", "text/plain"), /* served as text, never HTML */
    S("NUL in text", "hello\x00world", NULL),
    S("ESC in text", "hello \x1b[31mred", NULL),
    S("DEL in text", "hello\x7f", NULL),
    S("Latin-1 text", "caf\xe9", NULL),
    S("overlong UTF-8", "\xc0\xaf", NULL),
    S("a UTF-16 surrogate in UTF-8", "\xed\xa0\x80", NULL),
    S("past U+10FFFF", "\xf4\x90\x80\x80", NULL),
    S("a sequence cut short", "ok \xe6\x88", NULL),
    S("a lone continuation byte", "\x80", NULL),
};

static void test_samples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        const sample_t *s = &samples[i];
        const char *got = kf_sniff_type(s->bytes, s->len);
        if (s->type == NULL && got != NULL)
            fail_msg("%s: refused expected, got %s", s->what, got);
        if (s->type != NULL && (got == NULL || strcmp(got, s->type) != 0))
            fail_msg("%s: %s expected, got %s", s->what, s->type, got != NULL ? got : "(refused)");
    }
}

/* Every prefix of every sample is read within its length: copied to a buffer of exactly that
 * size, so that ASan sees a read past it. */
static void test_prefixes_stay_inside(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        for (size_t len = 0; len <= samples[i].len; len++) {
            char *copy = malloc(len > 0 ? len : 1);
            assert_non_null(copy);
            memcpy(copy, samples[i].bytes, len);
            (void)kf_sniff_type(copy, len);
            free(copy);
        }
    }
}

static void test_empty_and_images(void **state)
{
    (void)state;
    assert_null(kf_sniff_type("", 0));
    assert_null(kf_sniff_type(NULL, 0));
    assert_true(kf_sniff_is_image("image/png"));
    assert_true(kf_sniff_is_image("image/webp"));
    assert_false(kf_sniff_is_image("application/pdf"));
    assert_false(kf_sniff_is_image("text/plain"));
    assert_false(kf_sniff_is_image(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_prefixes_stay_inside),
        cmocka_unit_test(test_empty_and_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
