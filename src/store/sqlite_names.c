/* sqlite_names.c: the search's own reading of text with the index's tokenizer: a common name's
 * search, and the words a message adds to search_words.
 *
 * A common name's search (KF_SQLITE_SEARCH_MANY in sqlite_internal.h): the
 * search walks the conversations newest message first and asks kefu_name_walk(walk, visitor_id)
 * of each one's visitor; the answer comes one of two ways, both exact:
 *
 * - From the matching visitors read newest first (VISITOR_NAME_MATCHES), only as far down as the
 *   visitors asked about: a desk's newest conversations are mostly its newer visitors', so a page
 *   reads a few dozen of the thousands a common name has.
 * - For a visitor far below what has been read (a customer back after years), from the visitor's
 *   own indexed text (VISITOR_NAME_TEXT), tokenized by the index's own tokenizer (FTS5's
 *   unicode61, through fts5_api) and tested against the query here. Reading every matching
 *   visitor newer than them costs a fraction of a microsecond each, so a few thousand are worth
 *   the test's few microseconds; FTS5 itself tests one rowid no faster than it reads the term's
 *   whole doclist (a MATCH with rowid = ? took about 100 µs on 100,000 visitors).
 *
 * The query is kf_search_match's, or expand_prefixes' rewrite of it: quoted terms (a '*' after
 * one makes its last token a prefix), groups of them in parentheses joined by OR, and AND or a
 * space between (not both in one query); every group must match. A term is a phrase: its tokens at
 * consecutive positions of the text, as FTS5 matches it. */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "store/search_text.h"
#include "store/sqlite_internal.h"

/* The arguments of KF_SEARCH_TOKENIZE after its name (test_sqlite.c checks the two agree by
 * comparing this file's answers with FTS5's on the same texts). */
static const char *const tokenizer_args[] = {"remove_diacritics", "2", "categories", "L* N* Co M*"};

#define WALK_POINTER "kefu_name_walk"
/* Matching visitors one question may read before the walk tests the visitor's own text instead:
 * reading one costs about a tenth of a test. What was read stays read, for the next questions. */
#define READ_AHEAD_MAX 16

/* A text's tokens: offsets into bytes (copies: the tokenizer's are transient). */
typedef struct tokens {
    kf_buf_t bytes;
    size_t *start, *length;
    size_t count, capacity;
} tokens_t;

/* One quoted term of the query: its tokens, the last one a prefix when prefix. */
typedef struct term {
    tokens_t tokens;
    bool prefix;
    size_t group; /* terms of one group are ORed; groups are ANDed */
} term_t;

struct kf_sqlite_name_test {
    fts5_tokenizer tokenizer;
    Fts5Tokenizer *instance;
    term_t *terms;
    size_t term_count;
    size_t group_count;
    bool explicit_and; /* the groups are joined by AND, not by spaces */
    tokens_t text_tokens;
};

struct kf_sqlite_name_walk {
    sqlite3 *db;
    sqlite3_stmt *matches; /* VISITOR_NAME_MATCHES */
    sqlite3_stmt *text;    /* VISITOR_NAME_TEXT */
    const char *query;     /* the names' FTS5 expression */
    int64_t *ids;          /* the matching visitors read, descending */
    size_t count, capacity;
    int64_t floor; /* every matching visitor with an id of floor or above is in ids */
    bool ended;    /* matches has no more rows: every matching visitor is in ids */
    /* The test of one visitor's text, made at its first use. */
    bool tried;
    kf_sqlite_name_test_t *test;
};

static int add_token(void *ctx, int flags, const char *token, int length, int start, int end)
{
    (void)start;
    (void)end;
    tokens_t *t = ctx;
    /* A colocated token is another form at the same position (a synonym); unicode61 makes
     * none, and the index's positions would not count it. An empty token (a combining mark
     * alone, its diacritic removed) is kept: FTS5 keeps it, and as a prefix it matches any. */
    if ((flags & FTS5_TOKEN_COLOCATED) != 0 || length < 0)
        return SQLITE_OK;
    if (t->count == t->capacity) {
        t->capacity = t->capacity != 0 ? 2 * t->capacity : 8;
        t->start = kf_xrealloc(t->start, t->capacity * sizeof *t->start);
        t->length = kf_xrealloc(t->length, t->capacity * sizeof *t->length);
    }
    t->start[t->count] = t->bytes.len;
    t->length[t->count] = (size_t)length;
    t->count++;
    kf_buf_append(&t->bytes, token, (size_t)length);
    return SQLITE_OK;
}

static void tokens_free(tokens_t *t)
{
    kf_buf_free(&t->bytes);
    free(t->start);
    free(t->length);
}

static int tokenize(kf_sqlite_name_test_t *w, int flags, const char *text, size_t length,
                    tokens_t *out)
{
    kf_buf_reset(&out->bytes);
    out->count = 0;
    int code = w->tokenizer.xTokenize(w->instance, out, flags, text, (int)length, add_token);
    return code == SQLITE_OK ? 0 : KF_ESTORE;
}

/* The fts5_api of db (SQLite's documented way: the fts5() function hands it over). */
static fts5_api *fts5_of(sqlite3 *db)
{
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL) == SQLITE_OK)
        sqlite3_step(st);
    sqlite3_finalize(st);
    return api;
}

/* Reads the query into terms (see the top of the file); KF_EINVAL for anything else. */
static int parse(kf_sqlite_name_test_t *w, const char *query)
{
    const char *p = query;
    bool in_group = false;
    kf_buf_t text;
    kf_buf_init(&text);
    int rc = 0;
    while (rc == 0 && *p != '\0') {
        if (*p == ' ') {
            p++;
        } else if (strncmp(p, "AND ", 4) == 0 && !in_group) {
            w->explicit_and = true;
            p += 4;
        } else if (strncmp(p, "OR ", 3) == 0 && in_group) {
            p += 3;
        } else if (*p == '(' && !in_group) {
            in_group = true;
            p++;
        } else if (*p == ')' && in_group) {
            in_group = false;
            w->group_count++;
            p++;
        } else if (*p == '"') {
            kf_buf_reset(&text);
            for (p++; *p != '\0' && !(p[0] == '"' && p[1] != '"'); p += p[0] == '"' ? 2 : 1)
                kf_buf_append(&text, p, 1);
            if (*p == '\0') {
                rc = KF_EINVAL;
                break;
            }
            p++;
            bool prefix = *p == '*';
            p += prefix ? 1 : 0;
            w->terms = kf_xrealloc(w->terms, (w->term_count + 1) * sizeof *w->terms);
            term_t *t = &w->terms[w->term_count++];
            memset(t, 0, sizeof *t);
            kf_buf_init(&t->tokens.bytes);
            t->prefix = prefix;
            t->group = w->group_count;
            rc = tokenize(w, FTS5_TOKENIZE_QUERY | (prefix ? FTS5_TOKENIZE_PREFIX : 0),
                          text.len > 0 ? text.data : "", text.len, &t->tokens);
            if (!in_group)
                w->group_count++;
        } else {
            rc = KF_EINVAL;
        }
    }
    kf_buf_free(&text);
    return rc == 0 && in_group ? KF_EINVAL : rc;
}

void kf_sqlite_name_test_free(kf_sqlite_name_test_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->term_count; i++)
        tokens_free(&t->terms[i].tokens);
    free(t->terms);
    tokens_free(&t->text_tokens);
    if (t->instance != NULL)
        t->tokenizer.xDelete(t->instance);
    free(t);
}

/* A test with the index's tokenizer and no terms yet (NULL when db has none: KF_ESTORE). */
static kf_sqlite_name_test_t *test_open(sqlite3 *db)
{
    kf_sqlite_name_test_t *t = kf_xcalloc(1, sizeof *t);
    kf_buf_init(&t->text_tokens.bytes);
    fts5_api *api = fts5_of(db);
    void *user = NULL;
    if (api == NULL || api->xFindTokenizer(api, "unicode61", &user, &t->tokenizer) != SQLITE_OK ||
        t->tokenizer.xCreate(user, (const char **)tokenizer_args,
                             (int)(sizeof tokenizer_args / sizeof tokenizer_args[0]),
                             &t->instance) != SQLITE_OK) {
        t->instance = NULL;
        kf_sqlite_name_test_free(t);
        return NULL;
    }
    return t;
}

int kf_sqlite_term_has_tokens(sqlite3 *db, const char *text, size_t length)
{
    kf_sqlite_name_test_t *t = test_open(db);
    if (t == NULL)
        return KF_ESTORE;
    int rc = tokenize(t, FTS5_TOKENIZE_QUERY, text, length, &t->text_tokens);
    if (rc == 0)
        rc = t->text_tokens.count > 0;
    kf_sqlite_name_test_free(t);
    return rc;
}

int kf_sqlite_name_test_new(sqlite3 *db, const char *names, kf_sqlite_name_test_t **out)
{
    *out = NULL;
    kf_sqlite_name_test_t *t = test_open(db);
    if (t == NULL)
        return KF_ESTORE;
    int rc = parse(t, names);
    if (rc != 0) {
        kf_sqlite_name_test_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static bool same(const tokens_t *a, size_t i, const tokens_t *b, size_t j, bool prefix)
{
    if (prefix ? a->length[i] < b->length[j] : a->length[i] != b->length[j])
        return false;
    return memcmp(a->bytes.data + a->start[i], b->bytes.data + b->start[j], b->length[j]) == 0;
}

/* Whether the term's tokens stand at consecutive positions of text (a term without a token, all
 * punctuation, matches nothing, as in FTS5). */
static bool term_matches(const term_t *t, const tokens_t *text)
{
    size_t n = t->tokens.count;
    for (size_t at = 0; n > 0 && at + n <= text->count; at++) {
        size_t k = 0;
        while (k < n && same(text, at + k, &t->tokens, k, t->prefix && k == n - 1))
            k++;
        if (k == n)
            return true;
    }
    return false;
}

int kf_sqlite_name_test_match(kf_sqlite_name_test_t *t, const char *text, size_t length)
{
    int rc = tokenize(t, FTS5_TOKENIZE_DOCUMENT, text, length, &t->text_tokens);
    if (rc != 0)
        return rc;
    /* Every group needs a term that matches, as FTS5 reads an empty phrase (a term without a
     * token): it never matches; beside an implicit AND it is dropped, unless every group is
     * empty; beside an explicit one it fails the whole. */
    bool all = true;
    size_t counted = 0;
    for (size_t g = 0; all && g < t->group_count; g++) {
        bool empty = true;
        bool any = false;
        for (size_t i = 0; i < t->term_count; i++) {
            if (t->terms[i].group != g)
                continue;
            empty = empty && t->terms[i].tokens.count == 0;
            any = any || term_matches(&t->terms[i], &t->text_tokens);
        }
        if (empty && !t->explicit_and)
            continue;
        all = any;
        counted++;
    }
    return all && counted > 0;
}

/* Tests one visitor's indexed text against the walk's names: 1 or 0, or a KF_E* code. */
static int test_visitor(kf_sqlite_name_walk_t *w, int64_t visitor)
{
    if (!w->tried) {
        w->tried = true;
        kf_sqlite_name_test_new(w->db, w->query, &w->test);
    }
    if (w->test == NULL)
        return KF_ESTORE;
    if (kf_sqlite_bind(w->text, "i", visitor) != 0)
        return KF_ESTORE;
    int code = sqlite3_step(w->text);
    int rc = 0; /* no row: a visitor without a name or e-mail matches nothing */
    if (code == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(w->text, 0);
        rc = kf_sqlite_name_test_match(w->test, text != NULL ? text : "",
                                       (size_t)sqlite3_column_bytes(w->text, 0));
    } else if (code != SQLITE_DONE) {
        rc = kf_sqlite_map_error(code);
    }
    kf_sqlite_finish(w->text);
    return rc;
}

int kf_sqlite_name_walk_start(conn_t *c, const char *names, sqlite3_stmt *st, int index,
                              kf_sqlite_name_walk_t **out)
{
    kf_sqlite_name_walk_t *w = kf_xcalloc(1, sizeof *w);
    w->db = c->db;
    w->query = names;
    w->floor = INT64_MAX;
    w->matches = kf_sqlite_statement(c, STMT_VISITOR_NAME_MATCHES);
    w->text = kf_sqlite_statement(c, STMT_VISITOR_NAME_TEXT);
    *out = w;
    if (kf_sqlite_bind(w->matches, "t", names) != 0)
        return KF_ESTORE;
    return sqlite3_bind_pointer(st, index, w, WALK_POINTER, NULL) == SQLITE_OK ? 0 : KF_ESTORE;
}

void kf_sqlite_name_walk_end(kf_sqlite_name_walk_t *w)
{
    if (w == NULL)
        return;
    kf_sqlite_finish(w->matches);
    kf_sqlite_name_test_free(w->test);
    free(w->ids);
    free(w);
}

/* Reads the next matching visitor into ids: 0, or a SQLite error code. */
static int read_one(kf_sqlite_name_walk_t *w)
{
    int code = sqlite3_step(w->matches);
    if (code == SQLITE_DONE) {
        w->ended = true;
        return SQLITE_OK;
    }
    if (code != SQLITE_ROW)
        return code;
    if (w->count == w->capacity) {
        w->capacity = w->capacity != 0 ? 2 * w->capacity : 64;
        w->ids = kf_xrealloc(w->ids, w->capacity * sizeof *w->ids);
    }
    w->floor = sqlite3_column_int64(w->matches, 0);
    w->ids[w->count++] = w->floor;
    return SQLITE_OK;
}

void kf_sqlite_name_walk_fn(sqlite3_context *context, int argc, sqlite3_value **argv)
{
    (void)argc;
    kf_sqlite_name_walk_t *w = sqlite3_value_pointer(argv[0], WALK_POINTER);
    if (w == NULL) {
        sqlite3_result_error(context, "kefu_name_walk: no walk", -1);
        return;
    }
    int64_t visitor = sqlite3_value_int64(argv[1]);
    for (int budget = READ_AHEAD_MAX; !w->ended && w->floor > visitor; budget--) {
        if (budget == 0) {
            int matched = test_visitor(w, visitor);
            if (matched < 0)
                sqlite3_result_error_code(context, SQLITE_ERROR);
            else
                sqlite3_result_int(context, matched);
            return;
        }
        int code = read_one(w);
        if (code != SQLITE_OK) {
            sqlite3_result_error_code(context, code);
            return;
        }
    }
    /* ids descends: a binary search. */
    size_t low = 0;
    size_t high = w->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (w->ids[middle] > visitor)
            low = middle + 1;
        else
            high = middle;
    }
    sqlite3_result_int(context, low < w->count && w->ids[low] == visitor);
}

/* ---- kefu_search_words ---- */

/* A word of a text: where it is in the tokens' bytes. */
typedef struct word {
    const char *at;
    size_t length;
} word_t;

static int word_order(const void *a, const void *b)
{
    const word_t *x = a, *y = b;
    int c = memcmp(x->at, y->at, x->length < y->length ? x->length : y->length);
    return c != 0 ? c : (x->length > y->length) - (x->length < y->length);
}

/* A word an ASCII prefix can stand for (expand_prefixes): one that begins with two ASCII letters
 * or digits, whatever follows ("straße" for "stra"). With every such word listed, a prefix of
 * none is a prefix of no word at all. */
static bool listed(const char *token, size_t length)
{
    if (length < 2)
        return false;
    for (size_t i = 0; i < 2; i++) {
        char c = token[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')))
            return false;
    }
    return true;
}

struct kf_sqlite_words {
    kf_sqlite_name_test_t *test; /* the tokenizer, made at the first use */
    word_t *words;
    size_t capacity;
};

kf_sqlite_words_t *kf_sqlite_words_new(void)
{
    return kf_xcalloc(1, sizeof(kf_sqlite_words_t));
}

void kf_sqlite_words_free(void *words)
{
    kf_sqlite_words_t *w = words;
    if (w == NULL)
        return;
    kf_sqlite_name_test_free(w->test);
    free(w->words);
    free(w);
}

void kf_sqlite_search_words_fn(sqlite3_context *context, int argc, sqlite3_value **argv)
{
    (void)argc;
    kf_sqlite_words_t *w = sqlite3_user_data(context);
    if (w->test == NULL)
        w->test = test_open(sqlite3_context_db_handle(context));
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    tokens_t *t = w->test != NULL ? &w->test->text_tokens : NULL;
    if (t == NULL || tokenize(w->test, FTS5_TOKENIZE_DOCUMENT, text != NULL ? text : "",
                              (size_t)sqlite3_value_bytes(argv[0]), t) != 0) {
        sqlite3_result_error_code(context, SQLITE_ERROR);
        return;
    }
    if (w->capacity < t->count) {
        w->capacity = t->count;
        w->words = kf_xrealloc(w->words, w->capacity * sizeof *w->words);
    }
    size_t count = 0;
    for (size_t i = 0; i < t->count; i++) {
        if (listed(t->bytes.data + t->start[i], t->length[i]))
            w->words[count++] = (word_t){t->bytes.data + t->start[i], t->length[i]};
    }
    if (count > 1)
        qsort(w->words, count, sizeof *w->words, word_order);
    /* A JSON array of the distinct words, which need no escaping. */
    kf_buf_t out;
    kf_buf_init(&out);
    kf_buf_append_str(&out, "[");
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && word_order(&w->words[i - 1], &w->words[i]) == 0)
            continue;
        kf_buf_append_str(&out, out.len > 1 ? ",\"" : "\"");
        kf_buf_append(&out, w->words[i].at, w->words[i].length);
        kf_buf_append_str(&out, "\"");
    }
    kf_buf_append_str(&out, "]");
    size_t length;
    char *json = kf_buf_steal(&out, &length);
    sqlite3_result_text(context, json, (int)length, free);
}
