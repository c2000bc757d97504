/* fuzz_search_query.c: libFuzzer target for the search's text handling (store/search_text.h),
 * which reads a client's query: whatever the bytes, a query is refused or becomes an FTS5
 * expression that SQLite runs without a syntax error (nothing in a query is FTS5 syntax); the
 * index's text and a snippet are valid UTF-8, a snippet is at most KF_SEARCH_SNIPPET_MAX
 * characters, and its marks lie inside it, in order, apart; and a common name's walk, testing
 * one visitor's text apart from the index (kf_sqlite_name_test_match), says what FTS5's MATCH
 * says of the same text; and the words the writer keeps for prefixes (kefu_search_words) are the
 * index's own words that begin with two ASCII letters or digits.
 *
 * Input: up to the first NUL, the query; after it, the text searched (a message). */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "store/search_text.h"
#include "store/sqlite_internal.h"

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

/* Characters in s, or -1 when it is not UTF-8 (RFC 3629). */
static long utf8_chars(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;
    while (*p != '\0') {
        size_t len = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : 4;
        if (*p >= 0x80 && (*p < 0xC2 || *p > 0xF4))
            return -1;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return -1;
        }
        p += len;
        n++;
    }
    return n;
}

/* An in-memory table made as the store makes its own, and the statement that queries it. */
static sqlite3_stmt *match_statement(void)
{
    static sqlite3 *db;
    static sqlite3_stmt *st;
    if (st != NULL)
        return st;
    check(sqlite3_open(":memory:", &db) == SQLITE_OK, "open");
    check(sqlite3_exec(db,
                       "CREATE VIRTUAL TABLE t USING fts5(text, content='', columnsize=0, "
                       "tokenize=\"" KF_SEARCH_TOKENIZE "\");"
                       "INSERT INTO t (rowid, text) VALUES (1, 'refund 我要 要退 退款 款了 了');",
                       NULL, NULL, NULL) == SQLITE_OK,
          "create");
    check(sqlite3_prepare_v2(db, "SELECT rowid FROM t WHERE t MATCH ?1", -1, &st, NULL) ==
              SQLITE_OK,
          "prepare");
    return st;
}

/* A table holding one text (the input's, as the index holds it), with content so that it can
 * be replaced; its database, for the name test's tokenizer. */
static sqlite3 *one_text_db(sqlite3_stmt **replace, sqlite3_stmt **count)
{
    static sqlite3 *db;
    static sqlite3_stmt *put, *matches;
    if (db == NULL) {
        check(sqlite3_open(":memory:", &db) == SQLITE_OK, "open");
        check(kf_sqlite_define_functions(db) == 0, "the store's functions");
        check(sqlite3_exec(db,
                           "CREATE VIRTUAL TABLE u USING fts5(text, tokenize=\"" KF_SEARCH_TOKENIZE
                           "\");"
                           "CREATE VIRTUAL TABLE u_terms USING fts5vocab(u, row);",
                           NULL, NULL, NULL) == SQLITE_OK,
              "create");
        check(sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO u (rowid, text) VALUES (1, ?1)", -1,
                                 &put, NULL) == SQLITE_OK,
              "prepare");
        check(sqlite3_prepare_v2(db, "SELECT count(*) FROM u WHERE u MATCH ?1", -1, &matches,
                                 NULL) == SQLITE_OK,
              "prepare");
    }
    *replace = put;
    *count = matches;
    return db;
}

/* match with its terms joined by AND, as the store's expand_prefixes joins them (a new string). */
static char *with_and(const char *match)
{
    char *out = malloc(strlen(match) * 5 + 1);
    check(out != NULL, "malloc");
    size_t n = 0;
    bool quoted = false;
    for (const char *p = match; *p != '\0'; p++) {
        quoted = *p == '"' ? !quoted : quoted; /* a doubled quote toggles twice */
        if (*p == ' ' && !quoted) {
            memcpy(out + n, " AND ", 5);
            n += 5;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
    return out;
}

/* The name test against FTS5 on the input's text. */
static void check_name_test(const char *match, const char *indexed)
{
    sqlite3_stmt *put, *count;
    sqlite3 *db = one_text_db(&put, &count);
    sqlite3_bind_text(put, 1, indexed, -1, SQLITE_STATIC);
    check(sqlite3_step(put) == SQLITE_DONE, "the text is stored");
    sqlite3_reset(put);
    sqlite3_bind_text(count, 1, match, -1, SQLITE_STATIC);
    check(sqlite3_step(count) == SQLITE_ROW, "the count runs");
    int want = sqlite3_column_int(count, 0);
    sqlite3_reset(count);
    kf_sqlite_name_test_t *test = NULL;
    check(kf_sqlite_name_test_new(db, match, &test) == 0, "the name test reads every expression");
    int got = kf_sqlite_name_test_match(test, indexed, strlen(indexed));
    if (got != want)
        fprintf(stderr, "%s against %s: FTS5 %d, the name test %d\n", match, indexed, want, got);
    check(got == want, "the name test says what FTS5 says");
    kf_sqlite_name_test_free(test);
}

/* The first column of sql's one row with indexed bound, as a string to free ("" for NULL). */
static char *text_of(sqlite3 *db, const char *sql, const char *indexed)
{
    sqlite3_stmt *st = NULL;
    check(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "prepare");
    sqlite3_bind_text(st, 1, indexed, -1, SQLITE_STATIC);
    check(sqlite3_step(st) == SQLITE_ROW, "a row");
    const char *value = (const char *)sqlite3_column_text(st, 0);
    char *copy = strdup(value != NULL ? value : "");
    check(copy != NULL, "strdup");
    sqlite3_finalize(st);
    return copy;
}

/* The words kefu_search_words picks from the input's text against the index's own. */
static void check_words(const char *indexed)
{
    sqlite3_stmt *put, *count;
    sqlite3 *db = one_text_db(&put, &count);
    sqlite3_bind_text(put, 1, indexed, -1, SQLITE_STATIC);
    check(sqlite3_step(put) == SQLITE_DONE, "the text is stored");
    sqlite3_reset(put);
    char *want = text_of(db,
                         "SELECT group_concat(term, ' ') FROM (SELECT term FROM u_terms "
                         "WHERE term GLOB '[0-9a-z][0-9a-z]*' ORDER BY term)",
                         indexed);
    char *got = text_of(db,
                        "SELECT group_concat(value, ' ') FROM (SELECT value "
                        "FROM json_each(kefu_search_words(?1)) ORDER BY value)",
                        indexed);
    if (strcmp(want, got) != 0)
        fprintf(stderr, "%s: the index's words \"%s\", kefu_search_words' \"%s\"\n", indexed, want,
                got);
    check(strcmp(want, got) == 0, "kefu_search_words gives the index's words");
    free(want);
    free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 2);
    check(copy != NULL, "malloc");
    memcpy(copy, data, size);
    copy[size] = '\0';
    copy[size + 1] = '\0';
    const char *query = copy;
    const char *text = copy + strlen(copy) + 1;

    char *match = NULL;
    int rc = kf_search_match(query, &match);
    check(rc == 0 || rc == KF_EINVAL, "kf_search_match result");
    check((rc == 0) == kf_search_query_valid(query), "kf_search_match agrees with _valid");
    check((rc == 0) == (match != NULL), "an expression exactly when taken");
    if (match != NULL && match[0] != '\0') {
        sqlite3_stmt *st = match_statement();
        sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
        int code;
        do
            code = sqlite3_step(st);
        while (code == SQLITE_ROW);
        if (code != SQLITE_DONE)
            fprintf(stderr, "%s: %s\n", match, sqlite3_errmsg(sqlite3_db_handle(st)));
        check(code == SQLITE_DONE, "the expression runs");
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }

    char *indexed = kf_search_index_text(text);
    check(utf8_chars(indexed) >= 0, "the index's text is UTF-8");
    check_words(indexed);
    if (match != NULL && match[0] != '\0') {
        check_name_test(match, indexed);
        char *joined = with_and(match);
        check_name_test(joined, indexed);
        free(joined);
    }
    free(indexed);
    free(match);

    kf_search_snippet_t snippet;
    kf_search_snippet(text, query, &snippet);
    long chars = utf8_chars(snippet.text);
    check(chars >= 0 && chars <= KF_SEARCH_SNIPPET_MAX, "a snippet is short UTF-8");
    check(snippet.count <= KF_SEARCH_HIGHLIGHTS_MAX, "marks");
    uint32_t end = 0;
    for (size_t i = 0; i < snippet.count; i++) {
        check(snippet.highlights[i][1] > 0, "a mark is not empty");
        check(i == 0 || snippet.highlights[i][0] > end, "marks in order, apart");
        end = snippet.highlights[i][0] + snippet.highlights[i][1];
        check(end <= (uint32_t)chars, "a mark inside the snippet");
    }
    kf_search_snippet_free(&snippet);
    free(copy);
    return 0;
}
