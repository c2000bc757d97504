/* test_search_text.c: the search's text handling (store/search_text.h): the index's text for
 * each script, the FTS5 expression a query becomes, and snippets with their marks. Table-driven;
 * what SQLite does with them is the store suite's (store_suite_search.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "store/search_text.h"

static void test_index_text(void **state)
{
    (void)state;
    static const struct {
        const char *text, *indexed;
    } cases[] = {
        {"", ""},
        {"Refund? please", "Refund? please"},
        {"我要退款了", " 我要 要退 退款 款了 了 "},
        {"退", " 退 "},
        {"订单Order#123已发货", " 订单 单 Order#123 已发 发货 货 "},
        {"返金を", " 返金 金を を "},
        {"환불이 필요", " 환불 불이 이   필요 요 "},
        {"ア・イ", " ア ・ イ "}, /* the middle dot separates */
        {"a\xff"
         "b",
         "ab"}, /* a byte that is not UTF-8 is dropped */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = kf_search_index_text(cases[i].text);
        assert_string_equal(got, cases[i].indexed);
        free(got);
    }
}

/* What a word holds for the PostgreSQL store's own words: letters, digits and the unspaced
 * scripts; not punctuation, symbols or emoji, which unicode61's categories leave out too. */
static void test_is_word(void **state)
{
    (void)state;
    static const uint32_t words[] = {'a', 'Z', '7', 0xE9, 0x416, 0x5D0, 0x4E00, 0xAC00, 0x1F100};
    static const uint32_t others[] = {' ',     '-',     0xD7,    0x2014,  0x222F, 0x3002,
                                      0x1F64F, 0x1F600, 0x1F3FB, 0x1F1E8, 0x1FAE0};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        assert_true(kf_search_is_word(words[i]));
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        assert_false(kf_search_is_word(others[i]));
}

static void test_match(void **state)
{
    (void)state;
    static const struct {
        const char *query, *match;
    } cases[] = {
        {"refund", "\"refund\"*"},
        {"  Refund   please ", "\"Refund\"* \"please\"*"},
        {"退款", "\"退款\""},
        {"物流信息", "\"物流 流信 信息\""},
        {"退 款", "\"退\"* \"款\"*"},
        {"订单order", "\"订单\" \"order\"*"},
        {"re\"fund", "\"re\"\"fund\"*"},
        {"a OR b", "\"a\"* \"OR\"* \"b\"*"},
        {"?! ...", ""},
        {"?! x", "\"x\"*"},
        {"退款。", "\"退款\" \"。\"*"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = NULL;
        assert_int_equal(kf_search_match(cases[i].query, &got), 0);
        assert_string_equal(got, cases[i].match);
        free(got);
    }
    static const char *const refused[] = {"", " ", "a", " a ", "退", "\xc3", "a\xff"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char *got = (char *)"untouched";
        assert_int_equal(kf_search_match(refused[i], &got), KF_EINVAL);
        assert_null(got);
        assert_false(kf_search_query_valid(refused[i]));
    }
    assert_false(kf_search_query_valid(NULL));
}

/* The snippet of text for query: its text and marks as "start+len" joined by spaces. */
static void expect_snippet(const char *text, const char *query, const char *want,
                           const char *want_marks)
{
    kf_search_snippet_t s;
    kf_search_snippet(text, query, &s);
    assert_string_equal(s.text, want);
    char marks[256] = "";
    for (size_t i = 0; i < s.count; i++) {
        char one[32];
        snprintf(one, sizeof one, "%s%u+%u", i > 0 ? " " : "", s.highlights[i][0],
                 s.highlights[i][1]);
        strcat(marks, one);
    }
    assert_string_equal(marks, want_marks);
    kf_search_snippet_free(&s);
}

static void test_snippet(void **state)
{
    (void)state;
    expect_snippet("I want a Refund? please", "refund", "I want a Refund? please", "9+6");
    expect_snippet("我要退款了", "退款", "我要退款了", "2+2");
    expect_snippet("Le café était froid", "CAFE etait", "Le café était froid", "3+4 8+5");
    expect_snippet("refunded, refund", "ref", "refunded, refund", "0+3 10+3");
    expect_snippet("prefund", "refund", "prefund", ""); /* words match from their start */
    expect_snippet("line one\nline two", "two", "line one line two", "14+3");
    expect_snippet("退款退款", "退款 款退", "退款退款", "0+4"); /* overlaps merge */
    expect_snippet("no match here", "zz", "no match here", "");
    expect_snippet("anything", "a", "anything", ""); /* a refused query marks nothing */

    /* A long text is cut around the first match, with ellipses, at most 160 characters. */
    char text[1024] = "";
    for (int i = 0; i < 40; i++)
        strcat(text, "blah ");
    strcat(text, "物流 is here");
    for (int i = 0; i < 40; i++)
        strcat(text, " more");
    kf_search_snippet_t s;
    kf_search_snippet(text, "物流", &s);
    assert_true(strncmp(s.text, "\xe2\x80\xa6", 3) == 0); /* … */
    assert_true(strcmp(s.text + strlen(s.text) - 3, "\xe2\x80\xa6") == 0);
    assert_int_equal(s.count, 1);
    assert_int_equal(s.highlights[0][0], 31); /* 30 before it, after the ellipsis */
    assert_int_equal(s.highlights[0][1], 2);
    size_t chars = 0;
    for (const char *p = s.text; *p != '\0'; p++)
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    assert_int_equal(chars, KF_SEARCH_SNIPPET_MAX);
    kf_search_snippet_free(&s);
    /* A match near the start needs no leading ellipsis. */
    kf_search_snippet(text, "blah", &s);
    assert_true(strncmp(s.text, "blah", 4) == 0);
    assert_int_equal(s.count, KF_SEARCH_HIGHLIGHTS_MAX);
    kf_search_snippet_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_text),
        cmocka_unit_test(test_is_word),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_snippet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
