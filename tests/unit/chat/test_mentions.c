/* test_mentions.c: the @mention rule (src/chat/mentions.c): the longest agent name after an "@"
 * that starts a word, ASCII case ignored, ending where a word ends; names with spaces and
 * non-ASCII names; e-mail addresses and partial words mention nobody. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "chat/mentions.h"

static const char *const names[] = {"Ana", "Ana Lima", "Bo", "李娜", "", NULL, "o'Neil"};
#define NAME_COUNT (sizeof names / sizeof names[0])

static void test_rule(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *expected; /* one letter per name: 'x' mentioned, '.' not */
    } cases[] = {
        {"@Ana please look", "x......"},
        {"@ana lima can you?", ".x....."}, /* the longest name wins, case ignored */
        {"@Ana Limas", "x......"},         /* "Ana Lima" does not end there: Ana */
        {"@Anabel", "......."},            /* a longer word is not Ana */
        {"ask @Bo, and @ANA.", "x.x...."}, /* punctuation ends a name */
        {"bo@bo.com", "......."},          /* an e-mail address */
        {"x_@Bo", "......."},              /* inside a word */
        {"(@Bo)", "..x...."},
        {"@李娜 看一下", "...x..."},
        {"@李娜看一下", "...x..."}, /* no spaces in Chinese: the name ends at any non-word */
        {"@ @@ @", "......."},      /* an empty name never matches */
        {"@O'NEIL and @bo @bo", "..x...x"}, /* each once */
        {"", "......."},
        {"@", "......."},
        {"@Bo", "..x...."},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bool mentioned[NAME_COUNT] = {false};
        size_t found = kf_mentions_find(cases[c].body, names, NAME_COUNT, mentioned);
        size_t expected = 0;
        for (size_t i = 0; i < NAME_COUNT; i++) {
            bool want = cases[c].expected[i] == 'x';
            expected += want;
            if (mentioned[i] != want)
                fail_msg("\"%s\": name %zu (%s) %s", cases[c].body, i,
                         names[i] != NULL ? names[i] : "NULL",
                         want ? "not mentioned" : "mentioned");
        }
        assert_int_equal(found, expected);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
