/* search_text.c: what the search index holds for a text, the FTS5 query for a client's query,
 * and a hit's snippet with its marks (search_text.h says why runs of unspaced scripts become
 * bigrams). Text is handled as arrays of code points, decoded once. */
#include "store/search_text.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"

/* ---- code points ---- */

/* Decodes one UTF-8 character at s (len bytes left, len >= 1) into *cp: its length in bytes, or 0
 * when the bytes there are not UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above
 * U+10FFFF). */
static size_t decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char b = s[0];
    size_t n;
    uint32_t min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
        n = 2, min = 0x80, *cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3, min = 0x800, *cp = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4, min = 0x10000, *cp = b & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = *cp << 6 | (s[i] & 0x3F);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
        return 0;
    return n;
}

static void encode(kf_buf_t *out, uint32_t cp)
{
    char bytes[4];
    size_t n;
    if (cp < 0x80) {
        bytes[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        bytes[0] = (char)(0xC0 | cp >> 6), bytes[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        bytes[0] = (char)(0xE0 | cp >> 12), bytes[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        bytes[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        bytes[0] = (char)(0xF0 | cp >> 18), bytes[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        bytes[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), bytes[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    kf_buf_append(out, bytes, n);
}

/* The code points of text, into a new array (*count of them). Bytes that are not UTF-8 are
 * dropped when strict is false; with strict, they make it fail (NULL). */
static uint32_t *decode_all(const char *text, bool strict, size_t *count)
{
    size_t len = strlen(text);
    uint32_t *cps = kf_xmalloc((len + 1) * sizeof *cps);
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t step = decode((const unsigned char *)text + i, len - i, &cps[n]);
        if (step == 0 && strict) {
            free(cps);
            return NULL;
        }
        n += step != 0;
        i += step != 0 ? step : 1;
    }
    *count = n;
    return cps;
}

bool kf_search_is_unspaced(uint32_t cp)
{
    static const uint32_t ranges[][2] = {
        {0x0E00, 0x0EFF},   /* Thai, Lao */
        {0x1000, 0x109F},   /* Myanmar */
        {0x1780, 0x17FF},   /* Khmer */
        {0x3040, 0x30FA},   /* Hiragana, Katakana (the middle dot U+30FB separates) */
        {0x30FC, 0x30FF},   /* the prolonged sound mark, iteration marks */
        {0x31F0, 0x31FF},   /* Katakana phonetic extensions */
        {0x3400, 0x4DBF},   /* CJK unified ideographs, extension A */
        {0x4E00, 0x9FFF},   /* CJK unified ideographs */
        {0xAC00, 0xD7AF},   /* Hangul syllables */
        {0xF900, 0xFAFF},   /* CJK compatibility ideographs */
        {0xFF66, 0xFF9F},   /* half-width Katakana */
        {0x20000, 0x3134F}, /* CJK extensions B to G */
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        if (cp >= ranges[i][0] && cp <= ranges[i][1])
            return true;
    }
    return false;
}

static bool is_space(uint32_t cp)
{
    return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* Whether cp can be part of a word of a spaced script, as far as the marks are concerned:
 * ASCII letters and digits, and what lies above ASCII outside the common blocks of punctuation
 * and symbols. (The index's own tokenizer decides for real; this only places marks.) */
static bool is_word(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
    if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7)
        return false;
    if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF20) ||
        (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65) || cp == 0x30FB)
        return false;
    /* Emoji and the other pictographs (symbols, So), as unicode61's categories leave them out;
     * the enclosed digits of U+1F100 to U+1F10C and the digits of U+1FBF0 to U+1FBF9 are
     * numbers (No, Nd). */
    if ((cp >= 0x1F000 && cp <= 0x1F0FF) || (cp >= 0x1F10D && cp <= 0x1FAFF) ||
        (cp >= 0x1FB00 && cp <= 0x1FBEF))
        return false;
    return !kf_search_is_unspaced(cp);
}

/* cp in lower case and without its diacritic, for Latin-1, Latin Extended-A, Greek and Cyrillic
 * (1:1, so that positions carry over); other characters as they are. */
static uint32_t fold(uint32_t cp)
{
    /* U+00C0 to U+00FF without their marks; '*' for the two that are not letters. */
    static const char latin1[] = "aaaaaaaceeeeiiii"
                                 "dnooooo*ouuuuyts"
                                 "aaaaaaaceeeeiiii"
                                 "dnooooo*ouuuuyty";
    /* U+0100 to U+017F, the same way. */
    static const char extended_a[] = "aaaaaaccccccccdd"
                                     "ddeeeeeeeeeegggg"
                                     "gggghhhhiiiiiiii"
                                     "iiiijjkkklllllll"
                                     "lllnnnnnnnnnoooo"
                                     "oooorrrrrrssssss"
                                     "ssttttttuuuuuuuu"
                                     "uuuuwwyyyzzzzzzs";
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + 0x20 : cp;
    if (cp >= 0xC0 && cp <= 0xFF && latin1[cp - 0xC0] != '*')
        return (uint32_t)latin1[cp - 0xC0];
    if (cp >= 0x100 && cp <= 0x17F)
        return (uint32_t)extended_a[cp - 0x100];
    if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2)
        return cp + 0x20; /* Greek capitals */
    if (cp >= 0x410 && cp <= 0x42F)
        return cp + 0x20; /* Cyrillic capitals */
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 0x50;
    return cp;
}

/* ---- the index's text ---- */

char *kf_search_index_text(const char *text)
{
    /* ASCII has no unspaced script: the text as it is (most messages of a Latin desk, and the
     * writer asks for each one twice: the index and its words). */
    const unsigned char *p = (const unsigned char *)text;
    while (*p != '\0' && *p < 0x80)
        p++;
    if (*p == '\0')
        return kf_xstrdup(text);
    size_t count;
    uint32_t *cps = decode_all(text, false, &count);
    kf_buf_t out;
    kf_buf_init(&out);
    kf_buf_reserve(&out, strlen(text) * 3 + 1);
    kf_buf_append(&out, "", 0); /* terminated even when nothing follows */
    for (size_t i = 0; i < count;) {
        if (!kf_search_is_unspaced(cps[i])) {
            encode(&out, cps[i++]);
            continue;
        }
        size_t end = i;
        while (end < count && kf_search_is_unspaced(cps[end]))
            end++;
        kf_buf_append(&out, " ", 1);
        for (size_t j = i; j + 1 < end; j++) {
            encode(&out, cps[j]);
            encode(&out, cps[j + 1]);
            kf_buf_append(&out, " ", 1);
        }
        encode(&out, cps[end - 1]);
        kf_buf_append(&out, " ", 1);
        i = end;
    }
    free(cps);
    size_t len;
    return kf_buf_steal(&out, &len);
}

/* ---- queries ---- */

/* The query's characters, trimmed, into a new array: NULL for a query the search refuses. */
static uint32_t *query_chars(const char *query, size_t *count)
{
    if (query == NULL)
        return NULL;
    size_t n;
    uint32_t *cps = decode_all(query, true, &n);
    if (cps == NULL)
        return NULL;
    size_t start = 0;
    while (start < n && is_space(cps[start]))
        start++;
    while (n > start && is_space(cps[n - 1]))
        n--;
    if (n - start < KF_SEARCH_QUERY_MIN || n - start > KF_SEARCH_QUERY_MAX) {
        free(cps);
        return NULL;
    }
    memmove(cps, cps + start, (n - start) * sizeof *cps);
    *count = n - start;
    return cps;
}

bool kf_search_query_valid(const char *query)
{
    size_t count;
    uint32_t *cps = query_chars(query, &count);
    free(cps);
    return cps != NULL;
}

/* A term of a query: a run of an unspaced script, or a chunk of anything else between spaces
 * and such runs. */
typedef struct term {
    size_t start, len;
    bool unspaced;
} term_t;

/* The next term of cps from *at: false when there is none. */
static bool next_term(const uint32_t *cps, size_t count, size_t *at, term_t *term)
{
    size_t i = *at;
    while (i < count && is_space(cps[i]))
        i++;
    if (i == count)
        return false;
    bool unspaced = kf_search_is_unspaced(cps[i]);
    size_t end = i;
    while (end < count && !is_space(cps[end]) && kf_search_is_unspaced(cps[end]) == unspaced)
        end++;
    *term = (term_t){i, end - i, unspaced};
    *at = end;
    return true;
}

int kf_search_match(const char *query, char **out)
{
    *out = NULL;
    size_t count;
    uint32_t *cps = query_chars(query, &count);
    if (cps == NULL)
        return KF_EINVAL;
    kf_buf_t expr;
    kf_buf_init(&expr);
    kf_buf_append(&expr, "", 0);
    size_t at = 0;
    term_t t;
    while (next_term(cps, count, &at, &t)) {
        const uint32_t *c = cps + t.start;
        if (!t.unspaced) {
            /* A chunk with no character a word can hold would be an empty phrase. */
            bool wordy = false;
            for (size_t j = 0; j < t.len; j++)
                wordy = wordy || is_word(c[j]) || c[j] >= 0x80;
            if (!wordy)
                continue;
        }
        if (expr.len > 0)
            kf_buf_append(&expr, " ", 1);
        kf_buf_append(&expr, "\"", 1);
        if (t.unspaced && t.len == 1) {
            encode(&expr, c[0]);
        } else if (t.unspaced) {
            for (size_t j = 0; j + 1 < t.len; j++) {
                if (j > 0)
                    kf_buf_append(&expr, " ", 1);
                encode(&expr, c[j]);
                encode(&expr, c[j + 1]);
            }
        } else {
            for (size_t j = 0; j < t.len; j++) {
                if (c[j] == '"')
                    kf_buf_append(&expr, "\"", 1); /* doubled inside an FTS5 string */
                encode(&expr, c[j]);
            }
        }
        /* Words are prefixes; so is a lone unspaced character (search_text.h). */
        kf_buf_append_str(&expr, t.unspaced && t.len > 1 ? "\"" : "\"*");
    }
    free(cps);
    size_t len;
    *out = kf_buf_steal(&expr, &len);
    return 0;
}

/* ---- snippets ---- */

typedef struct range {
    size_t start, len;
} range_t;

static int range_cmp(const void *a, const void *b)
{
    const range_t *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

/* Appends to *ranges (growing it) where needle (n characters) occurs in text: anywhere for a run
 * of an unspaced script, at the start of a word for a word (folded, as a prefix). */
static void find_all(const uint32_t *text, size_t count, const uint32_t *needle, size_t n,
                     bool unspaced, range_t **ranges, size_t *found, size_t *cap)
{
    for (size_t i = 0; n > 0 && i + n <= count; i++) {
        if (!unspaced && (!is_word(text[i]) || (i > 0 && is_word(text[i - 1]))))
            continue;
        size_t j = 0;
        while (j < n && (unspaced ? text[i + j] == needle[j] : fold(text[i + j]) == needle[j]))
            j++;
        if (j < n)
            continue;
        if (*found == *cap) {
            *cap = *cap * 2 + 8;
            *ranges = kf_xrealloc(*ranges, *cap * sizeof **ranges);
        }
        (*ranges)[(*found)++] = (range_t){i, n};
    }
}

/* Where the query's terms occur in text, sorted, overlaps merged: *found of them. */
static range_t *match_ranges(const uint32_t *text, size_t count, const char *query, size_t *found)
{
    *found = 0;
    size_t qcount;
    uint32_t *q = query_chars(query, &qcount);
    if (q == NULL)
        return NULL;
    range_t *ranges = NULL;
    size_t cap = 0;
    size_t at = 0;
    term_t t;
    while (next_term(q, qcount, &at, &t)) {
        if (t.unspaced) {
            find_all(text, count, q + t.start, t.len, true, &ranges, found, &cap);
            continue;
        }
        /* A chunk is marked word by word ("e-mail" as "e" and "mail"), as the tokenizer reads it.
         */
        for (size_t j = t.start; j < t.start + t.len;) {
            if (!is_word(q[j])) {
                j++;
                continue;
            }
            size_t end = j;
            while (end < t.start + t.len && is_word(q[end])) {
                q[end] = fold(q[end]);
                end++;
            }
            find_all(text, count, q + j, end - j, false, &ranges, found, &cap);
            j = end;
        }
    }
    free(q);
    if (*found == 0)
        return ranges;
    qsort(ranges, *found, sizeof *ranges, range_cmp);
    size_t merged = 0;
    for (size_t i = 1; i < *found; i++) {
        range_t *last = &ranges[merged];
        if (ranges[i].start <= last->start + last->len) {
            size_t end = ranges[i].start + ranges[i].len;
            if (end > last->start + last->len)
                last->len = end - last->start;
        } else {
            ranges[++merged] = ranges[i];
        }
    }
    *found = merged + 1;
    return ranges;
}

void kf_search_snippet(const char *text, const char *query, kf_search_snippet_t *out)
{
    memset(out, 0, sizeof *out);
    size_t count;
    uint32_t *cps = decode_all(text, false, &count);
    size_t found;
    range_t *ranges = match_ranges(cps, count, query, &found);
    /* The window: the whole text when it fits, else from a little before the first match. */
    size_t start = 0, end = count;
    if (count > KF_SEARCH_SNIPPET_MAX) {
        size_t room = KF_SEARCH_SNIPPET_MAX - 2; /* both ellipses */
        size_t first = found > 0 ? ranges[0].start : 0;
        start = first > 30 ? first - 30 : 0;
        if (start + room > count)
            start = count - room;
        if (start == 0)
            room++; /* no leading ellipsis */
        end = start + room;
    }
    bool before = start > 0, after = end < count;
    kf_buf_t buf;
    kf_buf_init(&buf);
    kf_buf_append(&buf, "", 0);
    if (before)
        encode(&buf, 0x2026);
    for (size_t i = start; i < end; i++)
        encode(&buf, cps[i] == '\n' || cps[i] == '\r' || cps[i] == '\t' ? ' ' : cps[i]);
    if (after)
        encode(&buf, 0x2026);
    size_t len;
    out->text = kf_buf_steal(&buf, &len);
    size_t shift = before ? 1 : 0;
    for (size_t i = 0; i < found && out->count < KF_SEARCH_HIGHLIGHTS_MAX; i++) {
        size_t s = ranges[i].start, e = ranges[i].start + ranges[i].len;
        if (e <= start || s >= end)
            continue;
        s = s < start ? start : s;
        e = e > end ? end : e;
        out->highlights[out->count][0] = (uint32_t)(s - start + shift);
        out->highlights[out->count][1] = (uint32_t)(e - s);
        out->count++;
    }
    free(ranges);
    free(cps);
}

void kf_search_snippet_free(kf_search_snippet_t *snippet)
{
    free(snippet->text);
    snippet->text = NULL;
    snippet->count = 0;
}

/* ---- for an index outside SQLite ---- */

bool kf_search_is_word(uint32_t cp)
{
    return is_word(cp) || kf_search_is_unspaced(cp);
}

uint32_t kf_search_fold(uint32_t cp)
{
    return fold(cp);
}
