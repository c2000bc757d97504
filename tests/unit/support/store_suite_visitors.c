/* store_suite_visitors.c: the store test suite's tests of visitor details: name and e-mail
 * changed and found by the search, the pages a visitor's page reports (newest first, the newest
 * KF_STORE_VISITOR_PAGES_MAX kept), the earlier conversations of one person by e-mail, and
 * verified visitors (one row per user_id, a token per device, each nonce taken once). */
#include "support/store_suite.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"

/* ---- helpers ---- */

/* The pages of one visitor_pages call, copied. */
typedef struct pages {
    size_t count;
    int64_t id[KF_STORE_VISITOR_PAGES_MAX];
    char url[KF_STORE_VISITOR_PAGES_MAX][64];
    char timezone[KF_STORE_VISITOR_PAGES_MAX][32];
    int64_t utc_offset[KF_STORE_VISITOR_PAGES_MAX];
    int64_t seen_at[KF_STORE_VISITOR_PAGES_MAX];
    int64_t result_count; /* the done's count */
    int rc;               /* the done's rc */
    bool done;
} pages_t;

static int on_page(void *ctx, const kf_visitor_page_t *page)
{
    pages_t *p = ctx;
    assert_true(p->count < KF_STORE_VISITOR_PAGES_MAX);
    p->id[p->count] = page->id;
    snprintf(p->url[p->count], sizeof p->url[0], "%s", page->url);
    snprintf(p->timezone[p->count], sizeof p->timezone[0], "%s", page->timezone);
    p->utc_offset[p->count] = page->utc_offset;
    p->seen_at[p->count] = page->seen_at;
    p->count++;
    return 0;
}

static void on_pages_done(void *ctx, const kf_store_result_t *result)
{
    pages_t *p = ctx;
    assert_false(p->done);
    p->done = true;
    p->rc = result->rc;
    p->result_count = result->count;
}

static int list_pages(suite_fixture_t *f, pages_t *p, int64_t visitor, size_t limit)
{
    memset(p, 0, sizeof *p);
    int rc = f->store->ops->visitor_pages(f->store, visitor, limit, on_page, on_pages_done, p);
    if (rc != 0)
        return rc;
    assert_false(p->done); /* never from inside the call */
    suite_flush(f);
    assert_true(p->done);
    return p->rc;
}

static int add_page(suite_fixture_t *f, seen_t *seen, int64_t visitor, const char *url, int64_t now)
{
    kf_visitor_page_t page = {
        .visitor_id = visitor,
        .url = url,
        .title = "Pricing",
        .referrer = "https://search.example/?q=kefu",
        .user_agent = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36",
        .language = "de-DE",
        .timezone = "Europe/Berlin",
        .utc_offset = 60,
        .seen_at = now,
    };
    return suite_wait(f, f->store->ops->visitor_page_add(f->store, &page, on_done, seen), seen);
}

static int update(suite_fixture_t *f, seen_t *seen, int64_t visitor, const char *name,
                  const char *email)
{
    return suite_wait(
        f, f->store->ops->visitor_update(f->store, visitor, name, email, on_done, seen), seen);
}

static int count_hit(void *ctx, const kf_search_hit_t *hit)
{
    int64_t *count = ctx;
    assert_int_equal(hit->field, KF_SEARCH_VISITOR);
    (*count)++;
    return 0;
}

static void count_done(void *ctx, const kf_store_result_t *result)
{
    (void)ctx;
    assert_int_equal(result->rc, 0);
}

/* How many search hits query has (each a visitor's, in these tests). */
static int64_t suite_search_count(suite_fixture_t *f, const char *query)
{
    int64_t count = 0;
    assert_int_equal(f->store->ops->search(f->store, query, 0, 20, count_hit, count_done, &count),
                     0);
    suite_flush(f);
    return count;
}

/* ---- tests ---- */

/* Pages come back newest first with what the page said; only the newest 50 stay; an unknown
 * visitor is refused and a bad limit at once. */
static void test_visitor_pages(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "Vi");
    int64_t other = suite_add_visitor(f, "token-b", "");
    seen_t *seen = seen_new();
    pages_t p;
    assert_int_equal(list_pages(f, &p, visitor, 10), 0);
    assert_int_equal(p.count, 0);
    assert_int_equal(add_page(f, seen, visitor, "https://shop.example/", SUITE_NOW), 0);
    assert_true(last_result(seen)->id > 0);
    assert_int_equal(add_page(f, seen, visitor, "https://shop.example/pricing", SUITE_NOW + 5), 0);
    assert_int_equal(add_page(f, seen, other, "https://shop.example/other", SUITE_NOW + 6), 0);
    assert_int_equal(list_pages(f, &p, visitor, 10), 0);
    assert_int_equal(p.count, 2);
    assert_string_equal(p.url[0], "https://shop.example/pricing");
    assert_int_equal(p.seen_at[0], SUITE_NOW + 5);
    assert_string_equal(p.timezone[0], "Europe/Berlin");
    assert_int_equal(p.utc_offset[0], 60);
    assert_string_equal(p.url[1], "https://shop.example/");

    for (int i = 0; i < KF_STORE_VISITOR_PAGES_MAX + 5; i++) {
        char url[64];
        snprintf(url, sizeof url, "https://shop.example/p/%d", i);
        assert_int_equal(add_page(f, seen, visitor, url, SUITE_NOW + 10 + i), 0);
    }
    assert_int_equal(list_pages(f, &p, visitor, KF_STORE_VISITOR_PAGES_MAX), 0);
    assert_int_equal(p.count, KF_STORE_VISITOR_PAGES_MAX);
    assert_int_equal(p.result_count, KF_STORE_VISITOR_PAGES_MAX);
    char newest[64];
    snprintf(newest, sizeof newest, "https://shop.example/p/%d", KF_STORE_VISITOR_PAGES_MAX + 4);
    assert_string_equal(p.url[0], newest);
    assert_string_equal(p.url[KF_STORE_VISITOR_PAGES_MAX - 1], "https://shop.example/p/5");
    /* The other visitor's page is theirs alone, untouched by the trim. */
    assert_int_equal(list_pages(f, &p, other, 10), 0);
    assert_int_equal(p.count, 1);

    suite_reopen(f);
    assert_int_equal(list_pages(f, &p, visitor, 1), 0);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.url[0], newest);

    assert_int_equal(add_page(f, seen, 9999, "https://shop.example/", SUITE_NOW), KF_ENOTFOUND);
    assert_int_equal(list_pages(f, &p, visitor, 0), KF_EINVAL);
    assert_int_equal(list_pages(f, &p, visitor, KF_STORE_VISITOR_PAGES_MAX + 1), KF_EINVAL);
    kf_visitor_page_t bad = {.visitor_id = visitor, .url = "https://x.example/"};
    assert_int_equal(f->store->ops->visitor_page_add(f->store, &bad, on_done, seen), KF_EINVAL);
    seen_free(seen);
}

/* Name and e-mail change apart or together, are read back by id and by token, and the search
 * finds the visitor by the new ones and no longer by the old. */
static void test_visitor_update_and_search(void **state)
{
    suite_fixture_t *f = *state;
    int64_t visitor = suite_add_visitor(f, "token-a", "Mia Wong");
    int64_t conversation = suite_open_conversation(f, visitor, "hello there", SUITE_NOW, NULL);
    (void)conversation;
    seen_t *seen = seen_new();

    assert_int_equal(
        suite_wait(f, f->store->ops->visitor_get(f->store, visitor, on_done, seen), seen), 0);
    assert_string_equal(last_result(seen)->visitor.name, "Mia Wong");
    assert_string_equal(last_result(seen)->visitor.email, "");

    assert_int_equal(update(f, seen, visitor, NULL, "mia@shop.example"), 0);
    const result_copy_t *r = last_result(seen);
    assert_true(r->has_visitor);
    assert_int_equal(r->visitor.id, visitor);
    assert_string_equal(r->visitor.name, "Mia Wong");
    assert_string_equal(r->visitor.email, "mia@shop.example");
    assert_int_equal(
        suite_wait(f, f->store->ops->visitor_by_token(f->store, "token-a", on_done, seen), seen),
        0);
    assert_string_equal(last_result(seen)->visitor.email, "mia@shop.example");

    assert_int_equal(suite_search_count(f, "mia@shop.example"), 1);
    assert_int_equal(suite_search_count(f, "shop.example"), 1);
    assert_int_equal(suite_search_count(f, "Wong"), 1);

    assert_int_equal(update(f, seen, visitor, "Mia Chen", "mia.chen@other.example"), 0);
    assert_int_equal(suite_search_count(f, "Wong"), 0);
    assert_int_equal(suite_search_count(f, "shop.example"), 0);
    assert_int_equal(suite_search_count(f, "Chen"), 1);
    assert_int_equal(suite_search_count(f, "other.example"), 1);

    assert_int_equal(update(f, seen, visitor, "", ""), 0);
    assert_int_equal(suite_search_count(f, "Chen"), 0);
    assert_int_equal(suite_search_count(f, "other"), 0);
    /* From nothing indexed back to a name: the 'delete' is skipped, the insert is not. */
    assert_int_equal(update(f, seen, visitor, "Mia", NULL), 0);
    assert_int_equal(suite_search_count(f, "Mia"), 1);

    assert_int_equal(update(f, seen, 9999, "X", NULL), KF_ENOTFOUND);
    assert_int_equal(f->store->ops->visitor_update(f->store, visitor, NULL, NULL, on_done, seen),
                     KF_EINVAL);
    assert_int_equal(suite_wait(f, f->store->ops->visitor_get(f->store, 9999, on_done, seen), seen),
                     KF_ENOTFOUND);
    seen_free(seen);
}

/* A visitor's earlier conversations: their own and those of visitors with the same e-mail,
 * newest activity first; an empty e-mail joins nobody. */
static void test_visitor_conversations(void **state)
{
    suite_fixture_t *f = *state;
    int64_t first = suite_add_visitor(f, "token-a", "Mia");
    int64_t second = suite_add_visitor(f, "token-b", "Mia again");
    int64_t stranger = suite_add_visitor(f, "token-c", "");
    int64_t old = suite_open_conversation(f, first, "first visit", SUITE_NOW, NULL);
    int64_t now = suite_open_conversation(f, second, "second visit", SUITE_NOW + 10, NULL);
    suite_open_conversation(f, stranger, "someone else", SUITE_NOW + 20, NULL);
    seen_t *seen = seen_new();

    assert_int_equal(suite_wait(f,
                                f->store->ops->visitor_conversations(
                                    f->store, second, 10, on_conversation, on_done, seen),
                                seen),
                     0);
    assert_int_equal(seen->conversation_count, 1);
    assert_int_equal(seen->conversations[0].id, now);

    assert_int_equal(update(f, seen, first, NULL, "mia@shop.example"), 0);
    assert_int_equal(update(f, seen, second, NULL, "mia@shop.example"), 0);
    seen->conversation_count = 0;
    assert_int_equal(suite_wait(f,
                                f->store->ops->visitor_conversations(
                                    f->store, second, 10, on_conversation, on_done, seen),
                                seen),
                     0);
    assert_int_equal(seen->conversation_count, 2);
    assert_int_equal(seen->conversations[0].id, now);
    assert_int_equal(seen->conversations[1].id, old);
    assert_string_equal(seen->conversations[1].visitor_name, "Mia");
    assert_int_equal(
        f->store->ops->visitor_conversations(f->store, second, 0, on_conversation, on_done, seen),
        KF_EINVAL);
    seen_free(seen);
}

static int identify(suite_fixture_t *f, seen_t *seen, const char *user_id, const char *token,
                    const char *nonce, const char *name, int64_t now)
{
    kf_visitor_identity_t identity = {
        .user_id = user_id,
        .email = "li@example.com",
        .name = name,
        .token_hash = token,
        .nonce = nonce,
        .nonce_expires_at = now + 300000,
        .now = now,
    };
    return suite_wait(f, f->store->ops->visitor_identify(f->store, &identity, on_done, seen), seen);
}

/* The first sign-in of a user creates their visitor; another device's adds a token to the same
 * row, so both tokens read the same visitor and write into one conversation. */
static void test_visitor_identify_shares_one_visitor(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    seen_t *seen = seen_new();
    int64_t anonymous = suite_add_visitor(f, "token-anon", "Anon");
    assert_int_equal(identify(f, seen, "user-42", "token-laptop", "nonce-0001", "Li", SUITE_NOW),
                     0);
    const result_copy_t *r = last_result(seen);
    int64_t li = r->id;
    assert_true(li > 0 && li != anonymous);
    assert_true(r->has_visitor);
    assert_int_equal(r->visitor.id, li);
    assert_string_equal(r->visitor.name, "Li");
    assert_string_equal(r->visitor.email, "li@example.com");
    assert_string_equal(r->visitor.user_id, "user-42");
    /* Another device, no name given: the same visitor, the name kept. */
    assert_int_equal(identify(f, seen, "user-42", "token-phone", "nonce-0002", "", SUITE_NOW + 1),
                     0);
    assert_int_equal(last_result(seen)->id, li);
    assert_string_equal(last_result(seen)->visitor.name, "Li");
    for (int i = 0; i < 2; i++) {
        const char *token = i == 0 ? "token-laptop" : "token-phone";
        assert_int_equal(suite_wait(f, ops->visitor_by_token(f->store, token, on_done, seen), seen),
                         0);
        assert_int_equal(last_result(seen)->visitor.id, li);
        assert_string_equal(last_result(seen)->visitor.user_id, "user-42");
    }
    assert_int_equal(
        suite_wait(f, ops->visitor_by_token(f->store, "token-anon", on_done, seen), seen), 0);
    assert_string_equal(last_result(seen)->visitor.user_id, "");
    /* A message from the laptop is the phone's history: one conversation. */
    int64_t first = 0;
    int64_t conversation = suite_open_conversation(f, li, "from the laptop", SUITE_NOW + 2, &first);
    assert_int_equal(suite_wait(f, ops->conversation_of_visitor(f->store, li, on_done, seen), seen),
                     0);
    assert_int_equal(last_result(seen)->id, conversation);
    /* A new name from a later sign-in shows, and the search finds it. */
    assert_int_equal(
        identify(f, seen, "user-42", "token-tablet", "nonce-0003", "Li Na", SUITE_NOW + 3), 0);
    assert_string_equal(last_result(seen)->visitor.name, "Li Na");
    assert_int_equal(suite_search_count(f, "Li Na"), 1);
    /* A change of details keeps the user id. */
    assert_int_equal(update(f, seen, li, "Li", NULL), 0);
    assert_string_equal(last_result(seen)->visitor.user_id, "user-42");
    /* Another user is another visitor. */
    assert_int_equal(identify(f, seen, "user-43", "token-other", "nonce-0004", "", SUITE_NOW), 0);
    assert_true(last_result(seen)->id != li);
    seen_free(seen);
}

/* A nonce is taken once while unexpired (a replay writes nothing: no token); once expired it is
 * purged and may come again. Bad arguments are refused at once. */
static void test_visitor_identify_nonces(void **state)
{
    suite_fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    seen_t *seen = seen_new();
    assert_int_equal(identify(f, seen, "user-42", "token-1", "nonce-0001", "Li", SUITE_NOW), 0);
    assert_int_equal(
        identify(f, seen, "user-42", "token-2", "nonce-0001", "Li", SUITE_NOW + 299999),
        KF_EEXISTS);
    assert_false(last_result(seen)->has_visitor);
    assert_int_equal(suite_wait(f, ops->visitor_by_token(f->store, "token-2", on_done, seen), seen),
                     KF_ENOTFOUND);
    /* A replay by another user id is refused all the same: the nonce is the site's. */
    assert_int_equal(identify(f, seen, "user-43", "token-3", "nonce-0001", "", SUITE_NOW + 1),
                     KF_EEXISTS);
    /* Expired (its expiry is now + 300 s): taken again. */
    assert_int_equal(
        identify(f, seen, "user-42", "token-4", "nonce-0001", "Li", SUITE_NOW + 300000), 0);
    assert_int_equal(suite_wait(f, ops->visitor_by_token(f->store, "token-4", on_done, seen), seen),
                     0);
    kf_visitor_identity_t bad = {.user_id = "",
                                 .email = "",
                                 .name = "",
                                 .token_hash = "t",
                                 .nonce = "nonce-0009",
                                 .now = SUITE_NOW};
    assert_int_equal(ops->visitor_identify(f->store, &bad, on_done, seen), KF_EINVAL);
    bad.user_id = "u";
    bad.nonce = "";
    assert_int_equal(ops->visitor_identify(f->store, &bad, on_done, seen), KF_EINVAL);
    bad.nonce = "nonce-0009";
    bad.email = NULL;
    assert_int_equal(ops->visitor_identify(f->store, &bad, on_done, seen), KF_EINVAL);
    assert_int_equal(ops->visitor_identify(f->store, NULL, on_done, seen), KF_EINVAL);
    seen_free(seen);
}

/* Two stores on one database, as two nodes are, each queueing a sign-in at once, round after
 * round. One nonce sent to both: exactly one takes it (the other is KF_EEXISTS, and its token
 * is nowhere). A new user's first sign-in on both (two devices, two nonces): both go, into one
 * visitor. */
static void test_visitor_identify_two_stores_at_once(void **state)
{
    suite_fixture_t *f = *state;
    kf_store_t *other = NULL;
    assert_int_equal(f->backend->open(f->db, &other), 0);
    kf_store_t *stores[2] = {f->store, other};
    enum { ROUNDS = 10 };
    char text[ROUNDS][2][4][32]; /* per round and store: user id, token, nonce, its copy */
    seen_t *seen[ROUNDS][2];     /* one each: two stores' callbacks run in their own order */
    for (int i = 0; i < ROUNDS; i++) {
        for (int s = 0; s < 2; s++) {
            seen[i][s] = seen_new();
            /* Even rounds replay one nonce; odd ones sign one new user in twice. */
            snprintf(text[i][s][0], sizeof text[i][s][0], "user-%d", i);
            snprintf(text[i][s][1], sizeof text[i][s][1], "token-%d-%d", i, s);
            snprintf(text[i][s][2], sizeof text[i][s][2], "nonce-%d-%d", i, i % 2 == 0 ? 0 : s);
            kf_visitor_identity_t identity = {.user_id = text[i][s][0],
                                              .email = "",
                                              .name = "",
                                              .token_hash = text[i][s][1],
                                              .nonce = text[i][s][2],
                                              .nonce_expires_at = SUITE_NOW + 300000,
                                              .now = SUITE_NOW};
            kf_store_t *store = stores[(i + s) % 2];
            assert_int_equal(store->ops->visitor_identify(store, &identity, on_done, seen[i][s]),
                             0);
        }
    }
    other->ops->flush(other);
    suite_flush(f);
    other->ops->flush(other);
    for (int i = 0; i < ROUNDS; i++) {
        const result_copy_t *a = last_result(seen[i][0]);
        const result_copy_t *b = last_result(seen[i][1]);
        if (i % 2 == 0) {
            assert_true((a->rc == 0 && b->rc == KF_EEXISTS) || (a->rc == KF_EEXISTS && b->rc == 0));
            const char *lost = a->rc == 0 ? text[i][1][1] : text[i][0][1];
            seen_t *lookup = seen_new();
            assert_int_equal(
                suite_wait(f, f->store->ops->visitor_by_token(f->store, lost, on_done, lookup),
                           lookup),
                KF_ENOTFOUND);
            seen_free(lookup);
        } else {
            assert_int_equal(a->rc, 0);
            assert_int_equal(b->rc, 0);
            assert_int_equal(a->id, b->id);
        }
        seen_free(seen[i][0]);
        seen_free(seen[i][1]);
    }
    kf_store_close(other);
}

#define SUITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

const struct CMUnitTest store_suite_visitor_tests[] = {
    SUITE_TEST(test_visitor_pages),           SUITE_TEST(test_visitor_update_and_search),
    SUITE_TEST(test_visitor_conversations),   SUITE_TEST(test_visitor_identify_shares_one_visitor),
    SUITE_TEST(test_visitor_identify_nonces), SUITE_TEST(test_visitor_identify_two_stores_at_once),
};

const size_t store_suite_visitor_test_count =
    sizeof store_suite_visitor_tests / sizeof store_suite_visitor_tests[0];
