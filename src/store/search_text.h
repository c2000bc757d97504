/* search_text.h: the text of the full-text search, apart from any database: what the index holds
 * for a message (kf_search_index_text), the query it is asked (kf_search_match) and the snippet
 * a hit is shown with (kf_search_snippet). No I/O; a client's query is untrusted input (fuzzed:
 * fuzz/fuzz_search_query.c).
 *
 * Why: SQLite's FTS5 tokenizers split words at spaces and punctuation (unicode61) or index every
 * three characters (trigram). Chinese, Japanese, Korean, Thai and their neighbours write words
 * without spaces, and their words are often two characters long (退款, 物流), below trigram's
 * reach. So runs of those scripts are rewritten before the tokenizer sees them, as their
 * overlapping pairs of characters (bigrams) and the run's last character alone:
 * "我要退款了" -> "我要 要退 退款 款了 了". A query's run becomes the phrase of its bigrams
 * ("退款" -> "退款"; "要退款" -> "要退 退款", which only consecutive pairs match: a substring
 * match), and a single character a prefix term ("退"* matches every pair it starts, and the run's
 * last character). Everything else passes through to unicode61, which folds case and diacritics;
 * its words are matched as prefixes ("refund" finds "Refunded?"). Terms are ANDed. */
#ifndef KF_STORE_SEARCH_TEXT_H
#define KF_STORE_SEARCH_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A query is 2 to 200 characters (Unicode code points) once surrounding white space is trimmed. */
#define KF_SEARCH_QUERY_MIN 2
#define KF_SEARCH_QUERY_MAX 200
/* A snippet holds at most this many characters, its two ellipses included. */
#define KF_SEARCH_SNIPPET_MAX 160
/* A snippet marks at most this many matched ranges. */
#define KF_SEARCH_HIGHLIGHTS_MAX 16

/* The FTS5 tokenizer the index tables are made with: unicode61 folding case and diacritics, and
 * combining marks kept inside words (Thai vowels, Devanagari signs) rather than splitting them. */
#define KF_SEARCH_TOKENIZE "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"

/* True for a character of the scripts written without spaces between words (Han, kana, Hangul,
 * Thai, Lao, Khmer, Myanmar), whose runs are indexed as bigrams. */
bool kf_search_is_unspaced(uint32_t cp);

/* For an index that is not SQLite's (the PostgreSQL store builds its own words from
 * kf_search_index_text's text): whether cp belongs inside a word, and cp folded as the snippets
 * fold it (lower case, without its diacritic: Latin-1, Latin Extended-A, Greek, Cyrillic). */
bool kf_search_is_word(uint32_t cp);
uint32_t kf_search_fold(uint32_t cp);

/* The text the index holds for text (NUL-terminated; bytes that are not UTF-8 count as one
 * character each and are dropped). Returns a new string for the caller to free; aborts when out
 * of memory, like every small allocation. */
char *kf_search_index_text(const char *text);

/* Whether query is one the search takes: valid UTF-8, 2 to 200 characters after trimming. */
bool kf_search_query_valid(const char *query);

/* The FTS5 match expression for query into *out (a new string for the caller to free): each
 * term a quoted string, so nothing in a query is FTS5 syntax. "" when the query has no term that
 * can match (only punctuation): the search then finds nothing. Returns 0, or KF_EINVAL for a
 * query kf_search_query_valid refuses (*out is then NULL). */
int kf_search_match(const char *query, char **out);

/* A snippet: at most KF_SEARCH_SNIPPET_MAX characters of a text around the query's first match,
 * with "…" where it was cut, line breaks as spaces, and the ranges the query matched, in
 * characters (code points) from the snippet's start, in order, not overlapping. */
typedef struct kf_search_snippet {
    char *text;                                       /* new, NUL-terminated; free with _free */
    size_t count;                                     /* ranges in highlights */
    uint32_t highlights[KF_SEARCH_HIGHLIGHTS_MAX][2]; /* start, length */
} kf_search_snippet_t;

/* Makes the snippet of text for query (any query: one kf_search_query_valid refuses just marks
 * nothing). The ranges are found by the same rules as the index, with case and diacritics folded
 * for Latin, Greek and Cyrillic letters only; elsewhere a hit may show without its mark. Aborts
 * when out of memory. */
void kf_search_snippet(const char *text, const char *query, kf_search_snippet_t *out);
void kf_search_snippet_free(kf_search_snippet_t *snippet);

#endif
