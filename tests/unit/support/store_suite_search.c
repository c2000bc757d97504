/* store_suite_search.c: the store test suite's tests of the full-text search: Latin words (case,
 * diacritics, prefixes), Chinese, Japanese and Korean words of two characters and more, mixed
 * text, visitors' names, newest first, paging without a hit lost or doubled, and the queries
 * refused. */
#include "support/store_suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* ---- helpers ---- */

#define MAX_HITS 128

/* The hits of one search, copied. */
typedef struct hits {
    size_t count;
    int64_t message_id[MAX_HITS];
    int64_t conversation_id[MAX_HITS];
    kf_search_field_t field[MAX_HITS];
    char visitor_name[MAX_HITS][32];
    int rc;
    bool done;
} hits_t;

static int on_hit(void *ctx, const kf_search_hit_t *hit)
{
    hits_t *h = ctx;
    assert_true(h->count < MAX_HITS);
    h->message_id[h->count] = hit->message.id;
    h->conversation_id[h->count] = hit->message.conversation_id;
    h->field[h->count] = hit->field;
    snprintf(h->visitor_name[h->count], sizeof h->visitor_name[0], "%s", hit->visitor_name);
    h->count++;
    return 0;
}

static void on_search_done(void *ctx, const kf_store_result_t *result)
{
    hits_t *h = ctx;
    assert_false(h->done);
    assert_int_equal(result->count, (int64_t)h->count);
    h->rc = result->rc;
    h->done = true;
}

/* Searches and waits: the hits, newest first (asserted), into *h; returns the result code. */
static int search(suite_fixture_t *f, hits_t *h, const char *query, int64_t before, size_t limit)
{
    memset(h, 0, sizeof *h);
    int rc = f->store->ops->search(f->store, query, before, limit, on_hit, on_search_done, h);
    if (rc != 0)
        return rc;
    assert_false(h->done); /* never from inside the call */
    suite_flush(f);
    assert_true(h->done);
    for (size_t i = 1; i < h->count; i++)
        assert_true(h->message_id[i] < h->message_id[i - 1]);
    return h->rc;
}

/* How many hits query has (and that it succeeded). */
static size_t count_hits(suite_fixture_t *f, const char *query)
{
    hits_t h;
    assert_int_equal(search(f, &h, query, 0, KF_STORE_SEARCH_MAX), 0);
    return h.count;
}

/* Whether query finds message id. */
static bool finds(suite_fixture_t *f, const char *query, int64_t id)
{
    hits_t h;
    assert_int_equal(search(f, &h, query, 0, KF_STORE_SEARCH_MAX), 0);
    for (size_t i = 0; i < h.count; i++) {
        if (h.message_id[i] == id)
            return true;
    }
    return false;
}

/* ---- tests ---- */

/* Words in any case and with or without their accents, as prefixes, ANDed; newest first. */
static void test_search_latin(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "");
    int64_t conversation = suite_open_conversation(f, visitor, "Refund? please", SUITE_NOW, NULL);
    int64_t agent = suite_add_agent(f, "ana@example.com", "Ana");
    int64_t second = suite_add_message(f, conversation, agent, "I can refund your order");
    int64_t cafe = suite_add_message(f, conversation, 0, "Le café était froid, ÉNORME problème");
    suite_add_message(f, conversation, 0, "nothing to see here");

    hits_t h;
    assert_int_equal(search(f, &h, "refund", 0, 20), 0);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.message_id[0], second); /* newest first */
    assert_int_equal(h.field[0], KF_SEARCH_MESSAGE);
    assert_int_equal(h.conversation_id[0], conversation);
    assert_int_equal(count_hits(f, "REFUND"), 2);
    assert_int_equal(count_hits(f, "  refund  "), 2);
    assert_int_equal(count_hits(f, "ref"), 2); /* a prefix */
    assert_int_equal(count_hits(f, "refund please"), 1);
    assert_int_equal(count_hits(f, "refund nothing"), 0);
    assert_true(finds(f, "cafe", cafe));
    assert_true(finds(f, "CAFÉ", cafe));
    assert_true(finds(f, "enorme probleme", cafe));
    assert_int_equal(count_hits(f, "efund"), 0); /* words match from their start */
    assert_int_equal(count_hits(f, "?!"), 0);    /* no term at all: nothing, not an error */
    /* Whatever FTS5 would read as syntax is taken as text. */
    static const char *const hostile[] = {
        "\"refund",    "refund\"", "re\"fund OR x", "NEAR(refund please)", "refund*", "* OR *",
        "text:refund", "-refund",  "(refund",       "refund AND",          "^refund", "{text}: x",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++)
        assert_int_equal(search(f, &h, hostile[i], 0, 20), 0);
    assert_int_equal(count_hits(f, "refund*"), 2);
    assert_int_equal(count_hits(f, "NEAR(refund please)"), 0); /* "near" is a word here */
}

/* Chinese words of two characters are found inside longer runs (and nothing that only shares a
 * character with them), longer words as substrings; Japanese and Korean too. */
static void test_search_unspaced_scripts(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "");
    int64_t refund_id = 0;
    int64_t conversation = suite_open_conversation(f, visitor, "我要退款了", SUITE_NOW, &refund_id);
    int64_t logistics = suite_add_message(f, conversation, 0, "物流信息在哪里？");
    int64_t returns = suite_add_message(f, conversation, 0, "退货");
    int64_t style = suite_add_message(f, conversation, 0, "这个款式很好");
    int64_t japanese = suite_add_message(f, conversation, 0, "返金をお願いします。ありがとう");
    int64_t korean = suite_add_message(f, conversation, 0, "환불이 필요해요");

    hits_t h;
    assert_int_equal(search(f, &h, "退款", 0, 20), 0);
    assert_int_equal(h.count, 1);
    assert_int_equal(h.message_id[0], refund_id);
    assert_true(finds(f, "物流", logistics));
    assert_int_equal(count_hits(f, "物流"), 1);
    assert_true(finds(f, "物流信息", logistics)); /* four characters: three bigrams in a row */
    assert_true(finds(f, "信息在哪里", logistics));
    assert_int_equal(count_hits(f, "物流在哪"), 0); /* not a substring */
    assert_int_equal(count_hits(f, "退款了吗"), 0);
    assert_true(finds(f, "要退款", refund_id));
    assert_true(finds(f, "退货", returns));
    assert_int_equal(count_hits(f, "货退"), 0);
    assert_true(finds(f, "款式", style));
    assert_int_equal(count_hits(f, "款式"), 1);
    /* A lone character (beside another term: one alone is too short a query) is found
     * wherever it stands in a run, the last place included. */
    assert_true(finds(f, "了 要", refund_id));
    assert_true(finds(f, "里 物", logistics));
    assert_true(finds(f, "返金", japanese));
    assert_true(finds(f, "ありがとう", japanese));
    assert_true(finds(f, "お願い", japanese));
    assert_true(finds(f, "환불", korean));
    assert_true(finds(f, "필요", korean));
    /* A query's terms are ANDed whatever their script. */
    assert_int_equal(count_hits(f, "退款 物流"), 0);
}

/* Mixed text: words and runs in one message, and one query. */
static void test_search_mixed(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "");
    int64_t id = 0;
    int64_t conversation =
        suite_open_conversation(f, visitor, "订单Order#123已发货, tracking SF1234", SUITE_NOW, &id);
    suite_add_message(f, conversation, 0, "order cancelled");
    assert_true(finds(f, "order 发货", id));
    assert_int_equal(count_hits(f, "order 发货"), 1);
    assert_true(finds(f, "123", id));
    assert_true(finds(f, "订单order", id));
    assert_true(finds(f, "sf1234 tracking", id));
    assert_true(finds(f, "单 发货", id)); /* a lone character beside a word: a prefix */
    assert_int_equal(count_hits(f, "order"), 2);
}

/* A visitor's name finds their conversation, at its newest message; a message that matches
 * itself is one hit, of its text. */
static void test_search_visitor_names(void **state)
{
    suite_fixture_t *f = *state;
    int64_t zhang = suite_add_visitor(f, "token-z", "Zhang Wei 张伟");
    int64_t ming = suite_add_visitor(f, "token-m", "张伟明");
    int64_t other = suite_add_visitor(f, "token-o", "Olga");
    int64_t first = suite_open_conversation(f, zhang, "hello", SUITE_NOW, NULL);
    int64_t first_newest = suite_add_message(f, first, 0, "still there?");
    int64_t second_newest = 0;
    int64_t second = suite_open_conversation(f, ming, "me too", SUITE_NOW + 1, &second_newest);
    assert_true(second != first);
    int64_t mention = 0;
    suite_open_conversation(f, other, "Wei told me to write", SUITE_NOW + 2, &mention);

    hits_t h;
    assert_int_equal(search(f, &h, "张伟", 0, 20), 0);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.message_id[0], second_newest);
    assert_int_equal(h.conversation_id[0], second);
    assert_int_equal(h.message_id[1], first_newest);
    assert_int_equal(h.conversation_id[1], first);
    assert_int_equal(h.field[0], KF_SEARCH_VISITOR);
    assert_string_equal(h.visitor_name[0], "张伟明");
    assert_string_equal(h.visitor_name[1], "Zhang Wei 张伟");
    assert_int_equal(count_hits(f, "伟明"), 1);

    assert_int_equal(search(f, &h, "wei", 0, 20), 0);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.message_id[0], mention);
    assert_int_equal(h.field[0], KF_SEARCH_MESSAGE);
    assert_string_equal(h.visitor_name[0], "Olga");
    assert_int_equal(h.message_id[1], first_newest);
    assert_int_equal(h.field[1], KF_SEARCH_VISITOR);

    /* Text and name hit the same message: one hit, of its text. */
    int64_t both = suite_add_message(f, first, 0, "Zhang here");
    assert_int_equal(search(f, &h, "zhang", 0, 20), 0);
    assert_int_equal(h.count, 1);
    assert_int_equal(h.message_id[0], both);
    assert_int_equal(h.field[0], KF_SEARCH_MESSAGE);
    /* A visitor without a name is in no name's hits. */
    suite_add_visitor(f, "token-n", "");
    assert_int_equal(count_hits(f, "olga"), 1);
}

/* Pages of limit, each below the last hit of the one before, reach every hit once, newest
 * first, with name hits where their message falls. */
static void test_search_paging(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "Refunda");
    int64_t conversation = suite_open_conversation(f, visitor, "start", SUITE_NOW, NULL);
    int64_t ids[25];
    for (int i = 0; i < 25; i++) {
        char body[32];
        snprintf(body, sizeof body, "%s %d", i % 2 == 0 ? "refund" : "other", i);
        ids[i] = suite_add_message(f, conversation, 0, body);
    }
    int64_t other = suite_add_visitor(f, "token-b", "");
    suite_open_conversation(f, other, "no match", SUITE_NOW + 1, NULL);
    /* 13 text hits, and the name's hit at the newest message of the conversation, which is a
     * text hit too: 13 in all. */
    int64_t before = 0;
    size_t seen_total = 0;
    int64_t last = INT64_MAX;
    for (int page = 0; page < 10; page++) {
        hits_t h;
        assert_int_equal(search(f, &h, "refund", before, 5), 0);
        for (size_t i = 0; i < h.count; i++) {
            assert_true(h.message_id[i] < last);
            last = h.message_id[i];
        }
        seen_total += h.count;
        if (h.count < 5)
            break;
        before = h.message_id[h.count - 1];
    }
    assert_int_equal(seen_total, 13);
    assert_int_equal(last, ids[0]);
    /* "refunda" is only the name: its hit is at the conversation's newest message, and moves
     * on with it. */
    hits_t h;
    assert_int_equal(search(f, &h, "refunda", 0, 5), 0);
    assert_int_equal(h.count, 1);
    assert_int_equal(h.message_id[0], ids[24]);
    assert_int_equal(h.field[0], KF_SEARCH_VISITOR);
    int64_t odd = suite_add_message(f, conversation, 0, "last words");
    assert_int_equal(search(f, &h, "refunda", 0, 5), 0);
    assert_int_equal(h.count, 1);
    assert_int_equal(h.message_id[0], odd);
    assert_int_equal(search(f, &h, "refunda", odd, 5), 0);
    assert_int_equal(h.count, 0); /* the name's hit is at the newest message only */
}

/* A name that many visitors bear (more than a store may look up one at a time: 600 Olgas)
 * gives what a rare one does: one hit per conversation at its newest message, newest first
 * whatever order the visitors came in, beside the text hits, paged without a hit lost or
 * doubled, and moving on with a new message; a visitor of another name among them who wrote
 * last is no hit. */
static void test_search_common_name(void **state)
{
    suite_fixture_t *f = *state;
    enum { OLGAS = 600 };
    static int64_t conversations[OLGAS]; /* by visitor, in the order they were made */
    static int64_t newest[OLGAS];
    static int64_t visitors[OLGAS];
    int64_t boris = 0; /* among the Olgas, and the last to write: no name hit */
    for (int i = 0; i < OLGAS; i++) {
        char token[16];
        char name[32];
        snprintf(token, sizeof token, "olga-%d", i);
        snprintf(name, sizeof name, "Olga %d", i);
        visitors[i] = suite_add_visitor(f, token, name);
        if (i == OLGAS / 2)
            boris = suite_add_visitor(f, "boris", "Boris");
    }
    /* Their conversations start in another order than the visitors came. */
    for (int i = 0; i < OLGAS; i++) {
        int k = (i * 7) % OLGAS;
        conversations[k] =
            suite_open_conversation(f, visitors[k], "hello", SUITE_NOW + i, &newest[k]);
    }
    int64_t nadia = suite_add_visitor(f, "nadia", "Nadia");
    int64_t mention = 0;
    suite_open_conversation(f, nadia, "Olga said hi", SUITE_NOW + OLGAS, &mention);
    /* The first Olga whose conversation started writes again: hers is the newest name hit. */
    newest[0] = suite_add_message(f, conversations[0], 0, "me again");
    suite_open_conversation(f, boris, "hello", SUITE_NOW + OLGAS + 1, NULL);

    hits_t h;
    assert_int_equal(search(f, &h, "olga", 0, 20), 0);
    assert_int_equal(h.count, 20);
    assert_int_equal(h.message_id[0], newest[0]);
    assert_int_equal(h.field[0], KF_SEARCH_VISITOR);
    assert_int_equal(h.message_id[1], mention);
    assert_int_equal(h.field[1], KF_SEARCH_MESSAGE);
    /* Every page below the last, to the end: each Olga once, at her newest message. */
    size_t total = 0;
    size_t names = 0;
    int64_t before = 0;
    int64_t last = INT64_MAX;
    for (int page = 0; page < 100; page++) {
        assert_int_equal(search(f, &h, "olga", before, 50), 0);
        for (size_t i = 0; i < h.count; i++) {
            assert_true(h.message_id[i] < last);
            last = h.message_id[i];
            if (h.field[i] == KF_SEARCH_VISITOR) {
                bool found = false;
                for (int k = 0; k < OLGAS; k++)
                    found = found || (newest[k] == h.message_id[i] &&
                                      conversations[k] == h.conversation_id[i]);
                assert_true(found);
                names++;
            }
        }
        total += h.count;
        if (h.count < 50)
            break;
        before = h.message_id[h.count - 1];
    }
    assert_int_equal(names, OLGAS);
    assert_int_equal(total, OLGAS + 1);

    /* A prefix of the name stands for every name it starts: Olgana's conversation, the newest,
     * then the very page "olga" gives. */
    hits_t whole;
    assert_int_equal(search(f, &whole, "olga", 0, 30), 0);
    int64_t olgana = suite_add_visitor(f, "olgana", "Olgana Petrova");
    int64_t hers = 0;
    suite_open_conversation(f, olgana, "hi there", SUITE_NOW + OLGAS + 2, &hers);
    assert_int_equal(search(f, &h, "olg", 0, 31), 0);
    assert_int_equal(h.count, 31);
    assert_int_equal(h.message_id[0], hers);
    assert_int_equal(h.field[0], KF_SEARCH_VISITOR);
    for (size_t i = 0; i < whole.count; i++) {
        assert_int_equal(h.message_id[i + 1], whole.message_id[i]);
        assert_int_equal(h.field[i + 1], whole.field[i]);
    }
}

/* A word prefix finds every word it starts, however many: newest first across them, paged
 * without a hit lost or doubled, whether it stands for a few words (refund, refunds, refunded)
 * or more than a store may spell out (20 words of "zeta"), alone or beside another term, or
 * beside a chunk of no word (a symbol, an emoji). */
static void test_search_prefix_words(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "Otto");
    int64_t conversation = suite_open_conversation(f, visitor, "start", SUITE_NOW, NULL);
    static const char *const forms[] = {"refund", "Refunds", "REFUNDED", "refundable"};
    int64_t refund_ids[40];
    int64_t zeta_ids[40];
    for (int i = 0; i < 40; i++) {
        char body[64];
        snprintf(body, sizeof body, "%s order %d", forms[i % 4], i);
        refund_ids[i] = suite_add_message(f, conversation, 0, body);
        snprintf(body, sizeof body, "zeta%d", i % 20);
        zeta_ids[i] = suite_add_message(f, conversation, 0, body);
    }
    suite_add_message(f, conversation, 0, "thanks \xf0\x9f\x99\x8f\xf0\x9f\x91\x8d");
    const struct {
        const char *query;
        const int64_t *ids; /* every hit, oldest first */
        size_t count;
    } cases[] = {
        {"refund", refund_ids, 40},
        {"REFUNDE", NULL, 10}, /* refunded only */
        {"refund order", refund_ids, 40},
        /* A chunk with no word (a symbol, an emoji) asks for nothing, beside a prefix too. */
        {"refund \xe2\x88\xaf", refund_ids, 40},
        {"refund \xf0\x9f\x99\x8f", refund_ids, 40},
        {"\xf0\x9f\x99\x8f\xf0\x9f\x91\x8d", NULL, 0}, /* emoji alone: nothing */
        {"\xe2\x88\xaf refund order", refund_ids, 40},
        {"zeta", zeta_ids, 40},
        {"zeta1", NULL, 22}, /* zeta1, zeta10 to zeta19 */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        hits_t h;
        size_t total = 0;
        int64_t before = 0;
        for (int page = 0; page < 20; page++) {
            assert_int_equal(search(f, &h, cases[k].query, before, 7), 0);
            for (size_t i = 0; i < h.count; i++) {
                if (cases[k].ids != NULL)
                    assert_int_equal(h.message_id[i], cases[k].ids[cases[k].count - 1 - total]);
                total++;
            }
            if (h.count < 7)
                break;
            before = h.message_id[h.count - 1];
        }
        assert_int_equal(total, cases[k].count);
    }
}

/* Queries out of bounds, bad limits and cursors are refused at once. */
static void test_search_refuses(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "");
    suite_open_conversation(f, visitor, "退款 refund", SUITE_NOW, NULL);
    hits_t h;
    char query[1024];
    assert_int_equal(search(f, &h, "a", 0, 20), KF_EINVAL);
    assert_int_equal(search(f, &h, "退", 0, 20), KF_EINVAL);
    assert_int_equal(search(f, &h, "  a \t", 0, 20), KF_EINVAL);
    assert_int_equal(search(f, &h, "", 0, 20), KF_EINVAL);
    assert_int_equal(search(f, &h, NULL, 0, 20), KF_EINVAL);
    assert_int_equal(search(f, &h, "\xff\xfe", 0, 20), KF_EINVAL); /* not UTF-8 */
    assert_int_equal(search(f, &h, "re\xc3", 0, 20), KF_EINVAL);
    memset(query, 'a', 201);
    query[201] = '\0';
    assert_int_equal(search(f, &h, query, 0, 20), KF_EINVAL);
    query[200] = '\0';
    assert_int_equal(search(f, &h, query, 0, 20), 0);
    /* Characters, not bytes: 200 of three bytes each are fine. */
    query[0] = '\0';
    for (int i = 0; i < 200; i++)
        strcat(query, "退");
    assert_int_equal(search(f, &h, query, 0, 20), 0);
    strcat(query, "款");
    assert_int_equal(search(f, &h, query, 0, 20), KF_EINVAL);
    assert_int_equal(search(f, &h, "refund", 0, 0), KF_EINVAL);
    assert_int_equal(search(f, &h, "refund", 0, KF_STORE_SEARCH_MAX + 1), KF_EINVAL);
    assert_int_equal(search(f, &h, "refund", -1, 20), KF_EINVAL);
    assert_int_equal(f->store->ops->search(f->store, "refund", 0, 20, NULL, on_search_done, &h),
                     KF_EINVAL);
    assert_int_equal(search(f, &h, "re", 0, 20), 0);
    assert_int_equal(h.count, 1);
    assert_int_equal(search(f, &h, "退款", 0, KF_STORE_SEARCH_MAX), 0);
    assert_int_equal(h.count, 1);
}

/* A message is found once its message_add is done, and stays found across a restart. */
static void test_search_sees_writes_at_once(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "Mei");
    assert_int_equal(count_hits(f, "物流"), 0);
    int64_t id = 0;
    suite_open_conversation(f, visitor, "物流到哪了", SUITE_NOW, &id);
    assert_true(finds(f, "物流", id));
    suite_reopen(f);
    assert_true(finds(f, "物流", id));
    assert_true(finds(f, "mei", id));
}

#define SUITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

const struct CMUnitTest store_suite_search_tests[] = {
    SUITE_TEST(test_search_latin),
    SUITE_TEST(test_search_unspaced_scripts),
    SUITE_TEST(test_search_mixed),
    SUITE_TEST(test_search_visitor_names),
    SUITE_TEST(test_search_paging),
    SUITE_TEST(test_search_common_name),
    SUITE_TEST(test_search_prefix_words),
    SUITE_TEST(test_search_refuses),
    SUITE_TEST(test_search_sees_writes_at_once),
};

const size_t store_suite_search_test_count =
    sizeof store_suite_search_tests / sizeof store_suite_search_tests[0];
