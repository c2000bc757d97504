/* test_limits.c: the chat layer's abuse limits (src/chat/limits.c): the default per-visitor rates
 * (kf_app_config_default) against traces of what a person does on the chat page and of what a
 * script does — the person is never refused, the script soon is (time simulated, on kf_limit_t as
 * the module makes them) — and the module itself: limits that are off, logins, new visitors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>

#include "auth/limit.h"
#include "chat/app.h"
#include "chat/limits.h"

#define MINUTE_MS (60 * 1000)

typedef struct buckets {
    kf_limit_t *requests;
    kf_limit_t *messages;
    int refused_requests;
    int refused_messages;
    int64_t first_refusal_ms; /* simulated time of the first refusal, -1 before */
} buckets_t;

static void buckets_init(buckets_t *b)
{
    kf_app_config_t config;
    kf_app_config_default(&config);
    b->requests =
        kf_limit_new(config.visitor_requests_per_minute, config.visitor_requests_burst, 16);
    b->messages =
        kf_limit_new(config.visitor_messages_per_minute, config.visitor_messages_burst, 16);
    assert_non_null(b->requests);
    assert_non_null(b->messages);
    b->refused_requests = b->refused_messages = 0;
    b->first_refusal_ms = -1;
}

static void buckets_free(buckets_t *b)
{
    kf_limit_free(b->requests);
    kf_limit_free(b->messages);
}

static void refused(buckets_t *b, int64_t now)
{
    if (b->first_refusal_ms < 0)
        b->first_refusal_ms = now;
}

/* One API or push request, as require_visitor and the push endpoints take it. */
static void request(buckets_t *b, int64_t now)
{
    if (!kf_limit_take(b->requests, "1", now, NULL)) {
        b->refused_requests++;
        refused(b, now);
    }
}

/* One message over HTTP: a request and a message. */
static void message(buckets_t *b, int64_t now)
{
    request(b, now);
    if (!kf_limit_take(b->messages, "1", now, NULL)) {
        b->refused_messages++;
        refused(b, now);
    }
}

/* A person on the slowest transport (a poll every 2 s) for 20 minutes: opens the page (session,
 * history, ticket, probe), fires off 15 short lines within 20 s, then chats at a line every
 * 6 s with a typing start and stop around each and a read receipt for each agent reply, and
 * reloads the page 5 times in one minute. */
static void test_person_is_never_refused(void **state)
{
    (void)state;
    buckets_t b;
    buckets_init(&b);
    int64_t end = 20 * MINUTE_MS;
    int64_t next_line = 10 * 1000;
    int lines = 0;
    for (int64_t t = 0; t < end; t += 100) {
        if (t % 2000 == 0)
            request(&b, t); /* GET /push/poll */
        bool reload = t == 0 || (t >= 5 * MINUTE_MS && t < 6 * MINUTE_MS && t % 12000 == 0);
        if (reload) {
            for (int i = 0; i < 5; i++)
                request(&b, t); /* session, messages, push ticket, probe, first poll */
        }
        if (t == next_line) {
            request(&b, t); /* typing: true */
            message(&b, t);
            request(&b, t); /* typing: false */
            lines++;
            next_line += lines < 15 ? 1300 : 6000;
        }
        if (t % 10000 == 5000)
            request(&b, t); /* read receipt for an agent reply */
    }
    assert_int_equal(b.refused_requests, 0);
    assert_int_equal(b.refused_messages, 0);
    buckets_free(&b);
}

/* A script sending a message every 500 ms: refused within its first minute, and held to the
 * limit's rate after that. */
static void test_message_script_is_refused(void **state)
{
    (void)state;
    kf_app_config_t config;
    kf_app_config_default(&config);
    buckets_t b;
    buckets_init(&b);
    int sent = 0;
    for (int64_t t = 0; t < 10 * MINUTE_MS; t += 500) {
        int before = b.refused_messages;
        message(&b, t);
        sent += b.refused_messages == before;
    }
    assert_true(b.first_refusal_ms >= 0 && b.first_refusal_ms < MINUTE_MS);
    int allowed = (int)(config.visitor_messages_burst + 10 * config.visitor_messages_per_minute);
    assert_true(sent <= allowed + 1);
    buckets_free(&b);
}

/* A script polling as fast as it can (20 requests a second): refused within seconds. */
static void test_request_script_is_refused(void **state)
{
    (void)state;
    buckets_t b;
    buckets_init(&b);
    for (int64_t t = 0; t < MINUTE_MS; t += 50)
        request(&b, t);
    assert_true(b.first_refusal_ms >= 0 && b.first_refusal_ms < 5000);
    assert_true(b.refused_requests > 1000);
    buckets_free(&b);
}

/* Every limit is on by default and has a burst of at least one whole request. */
static void test_defaults_are_on(void **state)
{
    (void)state;
    kf_app_config_t config;
    kf_app_config_default(&config);
    assert_true(config.visitor_requests_per_minute > 0 && config.visitor_requests_burst >= 1);
    assert_true(config.visitor_messages_per_minute > 0 && config.visitor_messages_burst >= 1);
    assert_true(config.visitor_messages_per_minute <= config.visitor_requests_per_minute);
    assert_true(config.max_push_per_visitor > 0);
    assert_true(config.max_push_per_agent >= config.max_push_per_visitor);
}

static void test_module(void **state)
{
    (void)state;
    kf_app_config_t config;
    kf_app_config_default(&config);
    config.visitor_messages_burst = 2;
    config.visitor_sessions_burst = 1;
    config.login_failures_per_account = 2;
    kf_limits_t *limits = kf_limits_new(&config);
    assert_non_null(limits);
    int64_t wait = 0;
    /* Messages: the burst, then a refusal with a wait; another visitor has a bucket of their own.
     */
    assert_true(kf_limits_visitor_message(limits, 7, &wait));
    assert_true(kf_limits_visitor_message(limits, 7, &wait));
    assert_false(kf_limits_visitor_message(limits, 7, &wait));
    assert_true(wait >= 1 && wait <= 2000);
    assert_int_equal(kf_limits_seconds(wait), (wait + 999) / 1000);
    assert_true(kf_limits_visitor_message(limits, 8, &wait));
    /* Page reports: a burst of 20 per visitor, then a wait of about 2 s (30 a minute). */
    for (int i = 0; i < 20; i++)
        assert_true(kf_limits_visitor_page(limits, 7, &wait));
    assert_false(kf_limits_visitor_page(limits, 7, &wait));
    assert_true(wait >= 1 && wait <= 2000);
    assert_true(kf_limits_visitor_page(limits, 8, &wait));
    /* New visitors per address. */
    assert_true(kf_limits_new_visitor(limits, "192.0.2.1", &wait));
    assert_false(kf_limits_new_visitor(limits, "192.0.2.1", &wait));
    assert_true(kf_limits_new_visitor(limits, "2001:db8::/64", &wait));
    /* Logins: a look takes nothing; two failures lock the account, not another; a success
     * forgives the account. */
    assert_true(kf_limits_login_allowed(limits, "a@x", "192.0.2.9", &wait));
    kf_limits_login_failed(limits, "a@x", "192.0.2.9");
    assert_true(kf_limits_login_allowed(limits, "a@x", "192.0.2.9", &wait));
    kf_limits_login_failed(limits, "a@x", "192.0.2.9");
    assert_false(kf_limits_login_allowed(limits, "a@x", "192.0.2.10", &wait));
    assert_true(wait > 60000);
    assert_true(kf_limits_login_allowed(limits, "b@x", "192.0.2.9", &wait));
    kf_limits_login_succeeded(limits, "a@x");
    assert_true(kf_limits_login_allowed(limits, "a@x", "192.0.2.10", &wait));
    kf_limits_sweep(limits);
    kf_limits_free(limits);

    /* Limits set to 0 are off: never refused. */
    config.visitor_requests_per_minute = 0;
    config.visitor_messages_per_minute = 0;
    config.visitor_sessions_per_minute = 0;
    limits = kf_limits_new(&config);
    for (int i = 0; i < 1000; i++) {
        assert_true(kf_limits_visitor_request(limits, 1, &wait));
        assert_true(kf_limits_visitor_message(limits, 1, &wait));
        assert_true(kf_limits_new_visitor(limits, "192.0.2.1", &wait));
        assert_true(kf_limits_visitor_page(limits, 1, &wait)); /* off with the request limit */
    }
    kf_limits_free(limits);
    /* A limit that is on needs a bucket of at least one. */
    config.visitor_messages_per_minute = 30;
    config.visitor_messages_burst = 0.5;
    assert_null(kf_limits_new(&config));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_module),
        cmocka_unit_test(test_person_is_never_refused),
        cmocka_unit_test(test_message_script_is_refused),
        cmocka_unit_test(test_request_script_is_refused),
        cmocka_unit_test(test_defaults_are_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
