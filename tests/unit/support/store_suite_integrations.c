/* store_suite_integrations.c: the store test suite's tests of API tokens and webhooks: tokens
 * found by their hash until deleted, their last use; webhooks and the deliveries an event makes
 * for those that take it, due and retried or over, the log (newest first, trimmed), and a
 * webhook's deletion taking its deliveries and log with it. */
#include "support/store_suite.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"

/* What the callbacks of one operation saw, copied. */
typedef struct got {
    int rc;
    int64_t id;
    int64_t count;
    int rows;
    char text[8][256]; /* the strings of the last row or result, by field */
    int64_t numbers[8];
    int64_t ids[64];    /* each row's id, in order */
    int64_t owners[64]; /* each delivery's webhook, in order */
} got_t;

static void done_cb(void *ctx, const kf_store_result_t *r)
{
    got_t *g = ctx;
    g->rc = r->rc;
    g->id = r->id;
    g->count = r->count;
    if (r->api_token != NULL) {
        snprintf(g->text[0], sizeof g->text[0], "%s", r->api_token->name);
        snprintf(g->text[1], sizeof g->text[1], "%s", r->api_token->scope);
        g->numbers[0] = r->api_token->id;
        g->numbers[1] = r->api_token->created_by;
        g->numbers[2] = r->api_token->last_used_at;
    }
    if (r->webhook != NULL) {
        snprintf(g->text[0], sizeof g->text[0], "%s", r->webhook->url);
        snprintf(g->text[1], sizeof g->text[1], "%s", r->webhook->events);
        snprintf(g->text[2], sizeof g->text[2], "%s", r->webhook->secret);
        g->numbers[0] = r->webhook->id;
    }
}

static int token_cb(void *ctx, const kf_api_token_t *token)
{
    got_t *g = ctx;
    g->ids[g->rows++] = token->id;
    snprintf(g->text[0], sizeof g->text[0], "%s", token->name);
    return 0;
}

static int webhook_cb(void *ctx, const kf_webhook_t *webhook)
{
    got_t *g = ctx;
    g->ids[g->rows++] = webhook->id;
    snprintf(g->text[1], sizeof g->text[1], "%s", webhook->events);
    return 0;
}

static int delivery_cb(void *ctx, const kf_webhook_delivery_t *d)
{
    got_t *g = ctx;
    g->owners[g->rows] = d->webhook_id;
    g->ids[g->rows++] = d->id;
    snprintf(g->text[0], sizeof g->text[0], "%s", d->url);
    snprintf(g->text[1], sizeof g->text[1], "%s", d->secret);
    snprintf(g->text[2], sizeof g->text[2], "%s", d->event);
    snprintf(g->text[3], sizeof g->text[3], "%s", d->body);
    g->numbers[0] = d->webhook_id;
    g->numbers[1] = d->attempts;
    g->numbers[2] = d->next_at;
    return 0;
}

static int attempt_cb(void *ctx, const kf_webhook_attempt_t *a)
{
    got_t *g = ctx;
    if (g->rows < 64)
        g->ids[g->rows] = a->attempt;
    g->rows++;
    if (g->rows == 1) { /* the newest */
        snprintf(g->text[0], sizeof g->text[0], "%s", a->event);
        snprintf(g->text[1], sizeof g->text[1], "%s", a->error);
        g->numbers[0] = a->status;
        g->numbers[1] = a->next_at;
        g->numbers[2] = a->at;
        g->numbers[3] = a->delivery_id;
    }
    return 0;
}

/* Runs one queued operation to its end: its result code. */
static int run(suite_fixture_t *f, got_t *g, int queued_rc)
{
    assert_int_equal(queued_rc, 0);
    g->rc = 1;
    suite_flush(f);
    assert_int_not_equal(g->rc, 1);
    return g->rc;
}

static void test_api_tokens(void **state)
{
    suite_fixture_t *f = *state;
    kf_store_t *s = f->store;
    int64_t ana = suite_add_agent_as(f, "ana@example.com", "Ana", "admin");
    got_t g;
    memset(&g, 0, sizeof g);
    assert_int_equal(s->ops->api_token_create(s, "x", "root", "h", ana, SUITE_NOW, done_cb, &g),
                     KF_EINVAL);
    assert_int_equal(s->ops->api_token_create(s, "", "read", "h", ana, SUITE_NOW, done_cb, &g),
                     KF_EINVAL);
    assert_int_equal(
        run(f, &g,
            s->ops->api_token_create(s, "export", "read", "hash-1", ana, SUITE_NOW, done_cb, &g)),
        0);
    int64_t first = g.id;
    assert_true(first > 0);
    assert_string_equal(g.text[0], "export");
    assert_string_equal(g.text[1], "read");
    assert_int_equal(g.numbers[1], ana);
    assert_int_equal(g.numbers[2], 0);
    assert_int_equal(
        run(f, &g,
            s->ops->api_token_create(s, "crm", "admin", "hash-2", ana, SUITE_NOW + 1, done_cb, &g)),
        0);
    int64_t second = g.id;

    memset(&g, 0, sizeof g);
    assert_int_equal(run(f, &g, s->ops->api_token_list(s, token_cb, done_cb, &g)), 0);
    assert_int_equal(g.rows, 2);
    assert_int_equal(g.ids[0], first);
    assert_int_equal(g.ids[1], second);

    assert_int_equal(run(f, &g, s->ops->api_token_by_hash(s, "hash-2", done_cb, &g)), 0);
    assert_int_equal(g.numbers[0], second);
    assert_string_equal(g.text[1], "admin");
    assert_int_equal(run(f, &g, s->ops->api_token_by_hash(s, "hash-3", done_cb, &g)), KF_ENOTFOUND);

    assert_int_equal(run(f, &g, s->ops->api_token_touch(s, first, SUITE_NOW + 60, done_cb, &g)), 0);
    assert_int_equal(run(f, &g, s->ops->api_token_by_hash(s, "hash-1", done_cb, &g)), 0);
    assert_int_equal(g.numbers[2], SUITE_NOW + 60);

    /* Deleted: unknown at once. */
    assert_int_equal(run(f, &g, s->ops->api_token_delete(s, first, done_cb, &g)), 0);
    assert_int_equal(run(f, &g, s->ops->api_token_by_hash(s, "hash-1", done_cb, &g)), KF_ENOTFOUND);
    assert_int_equal(run(f, &g, s->ops->api_token_delete(s, first, done_cb, &g)), KF_ENOTFOUND);
    assert_int_equal(run(f, &g, s->ops->api_token_touch(s, first, SUITE_NOW, done_cb, &g)),
                     KF_ENOTFOUND);
    memset(&g, 0, sizeof g);
    assert_int_equal(run(f, &g, s->ops->api_token_list(s, token_cb, done_cb, &g)), 0);
    assert_int_equal(g.rows, 1);
    assert_string_equal(g.text[0], "crm");
}

static int64_t attempted(suite_fixture_t *f, int64_t delivery_id, int64_t at, int64_t status,
                         const char *error, int64_t next_at)
{
    got_t g;
    kf_webhook_attempt_t a = {
        .delivery_id = delivery_id, .at = at, .status = status, .error = error, .next_at = next_at};
    return run(f, &g, f->store->ops->webhook_attempted(f->store, &a, done_cb, &g));
}

static void test_webhooks(void **state)
{
    suite_fixture_t *f = *state;
    kf_store_t *s = f->store;
    got_t g;
    memset(&g, 0, sizeof g);
    assert_int_equal(s->ops->webhook_create(s, "", "message.created", "k", SUITE_NOW, done_cb, &g),
                     KF_EINVAL);
    assert_int_equal(
        run(f, &g,
            s->ops->webhook_create(s, "https://a.example/h", "message.created,rating.created",
                                   "key-a", SUITE_NOW, done_cb, &g)),
        0);
    int64_t a = g.id;
    assert_string_equal(g.text[1], "message.created,rating.created");
    assert_string_equal(g.text[2], "key-a");
    assert_int_equal(run(f, &g,
                         s->ops->webhook_create(s, "https://b.example/h", "rating.created", "key-b",
                                                SUITE_NOW, done_cb, &g)),
                     0);
    int64_t b = g.id;
    memset(&g, 0, sizeof g);
    assert_int_equal(run(f, &g, s->ops->webhook_list(s, webhook_cb, done_cb, &g)), 0);
    assert_int_equal(g.rows, 2);
    assert_int_equal(g.ids[0], a);
    assert_string_equal(g.text[1], "rating.created");

    /* An event goes to those that take it, by whole name. */
    assert_int_equal(run(f, &g,
                         s->ops->webhook_enqueue(s, "message.created", "{\"m\":1}", SUITE_NOW + 10,
                                                 done_cb, &g)),
                     0);
    assert_int_equal(g.count, 1);
    assert_int_equal(
        run(f, &g, s->ops->webhook_enqueue(s, "message", "{}", SUITE_NOW, done_cb, &g)), 0);
    assert_int_equal(g.count, 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(
        run(f, &g, s->ops->webhook_due(s, SUITE_NOW + 9, 10, delivery_cb, done_cb, &g)), 0);
    assert_int_equal(g.rows, 0);
    assert_int_equal(
        run(f, &g, s->ops->webhook_due(s, SUITE_NOW + 10, 10, delivery_cb, done_cb, &g)), 0);
    assert_int_equal(g.rows, 1);
    int64_t delivery = g.ids[0];
    assert_string_equal(g.text[0], "https://a.example/h");
    assert_string_equal(g.text[1], "key-a");
    assert_string_equal(g.text[2], "message.created");
    assert_string_equal(g.text[3], "{\"m\":1}");
    assert_int_equal(g.numbers[0], a);
    assert_int_equal(g.numbers[1], 0);

    /* A failure: due again later, one more attempt counted, in the log. */
    assert_int_equal(attempted(f, delivery, SUITE_NOW + 11, 500, "HTTP 500", SUITE_NOW + 100), 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(
        run(f, &g, s->ops->webhook_due(s, SUITE_NOW + 99, 10, delivery_cb, done_cb, &g)), 0);
    assert_int_equal(g.rows, 0);
    assert_int_equal(
        run(f, &g, s->ops->webhook_due(s, SUITE_NOW + 100, 10, delivery_cb, done_cb, &g)), 0);
    assert_int_equal(g.rows, 1);
    assert_int_equal(g.numbers[1], 1);
    /* Then it goes: over, and gone from the pending ones. */
    assert_int_equal(attempted(f, delivery, SUITE_NOW + 101, 204, "", 0), 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(
        run(f, &g, s->ops->webhook_due(s, INT64_MAX / 2, 10, delivery_cb, done_cb, &g)), 0);
    assert_int_equal(g.rows, 0);
    assert_int_equal(attempted(f, delivery, SUITE_NOW + 102, 200, "", 0), KF_ENOTFOUND);
    memset(&g, 0, sizeof g);
    assert_int_equal(run(f, &g, s->ops->webhook_attempts(s, a, 50, attempt_cb, done_cb, &g)), 0);
    assert_int_equal(g.rows, 2);
    assert_int_equal(g.ids[0], 2); /* newest first */
    assert_int_equal(g.ids[1], 1);
    assert_string_equal(g.text[0], "message.created");
    assert_string_equal(g.text[1], "");
    assert_int_equal(g.numbers[0], 204);
    assert_int_equal(g.numbers[1], 0);
    assert_int_equal(g.numbers[3], delivery);
    assert_int_equal(s->ops->webhook_attempts(s, a, 51, attempt_cb, done_cb, &g), KF_EINVAL);
    assert_int_equal(s->ops->webhook_due(s, 0, 0, delivery_cb, done_cb, &g), KF_EINVAL);

    /* The log keeps the newest KF_STORE_WEBHOOK_LOG_MAX. */
    assert_int_equal(
        run(f, &g,
            s->ops->webhook_enqueue(s, "rating.created", "{\"r\":1}", SUITE_NOW, done_cb, &g)),
        0);
    assert_int_equal(g.count, 2);
    memset(&g, 0, sizeof g);
    assert_int_equal(run(f, &g, s->ops->webhook_due(s, SUITE_NOW, 10, delivery_cb, done_cb, &g)),
                     0);
    assert_int_equal(g.rows, 2);
    int64_t to_a = g.owners[0] == a ? g.ids[0] : g.ids[1];
    assert_int_equal(g.owners[0] == a ? g.owners[1] : g.owners[0], b);
    for (int i = 0; i < KF_STORE_WEBHOOK_LOG_MAX + 5; i++)
        assert_int_equal(attempted(f, to_a, SUITE_NOW + i, 0, "refused", SUITE_NOW + 1000), 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(run(f, &g, s->ops->webhook_attempts(s, a, 50, attempt_cb, done_cb, &g)), 0);
    assert_int_equal(g.rows, KF_STORE_WEBHOOK_LOG_MAX);
    assert_int_equal(g.ids[0], KF_STORE_WEBHOOK_LOG_MAX + 5); /* the newest attempt's number */
    assert_string_equal(g.text[1], "refused");
    int64_t owner = a;

    /* Deleting a webhook takes its pending deliveries and log along. */
    assert_int_equal(run(f, &g, s->ops->webhook_delete(s, owner, done_cb, &g)), 0);
    assert_int_equal(run(f, &g, s->ops->webhook_delete(s, owner, done_cb, &g)), KF_ENOTFOUND);
    memset(&g, 0, sizeof g);
    assert_int_equal(run(f, &g, s->ops->webhook_attempts(s, owner, 50, attempt_cb, done_cb, &g)),
                     0);
    assert_int_equal(g.rows, 0);
    memset(&g, 0, sizeof g);
    assert_int_equal(
        run(f, &g, s->ops->webhook_due(s, INT64_MAX / 2, 10, delivery_cb, done_cb, &g)), 0);
    assert_int_equal(g.rows, 1);
    assert_int_equal(g.numbers[0], b);
}

#define SUITE_TEST(fn) cmocka_unit_test_setup_teardown(fn, store_suite_setup, store_suite_teardown)

const struct CMUnitTest store_suite_integration_tests[] = {
    SUITE_TEST(test_api_tokens),
    SUITE_TEST(test_webhooks),
};

const size_t store_suite_integration_test_count =
    sizeof store_suite_integration_tests / sizeof store_suite_integration_tests[0];
