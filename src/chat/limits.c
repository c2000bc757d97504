/* limits.c: the chat layer's rate limits over auth/limit.h. */
#include "chat/limits.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "auth/limit.h"
#include "base/buf.h"
#include "base/clock.h"

/* Keys the login limits remember at most (the stalest go first): bounds their memory. */
#define LOGIN_KEYS 10000
/* The same for the per-visitor limits: more, so that a busy server (the load benchmark holds
 * 19,000 visitors) does not forget buckets that are still filling up. */
#define VISITOR_KEYS 65536
/* Page reports per visitor (POST /api/visitor/page, the WebSocket page action): each is a write
 * and an event to every console. A person moves through a site at most a page every few seconds;
 * the burst covers a single-page app's quick steps and a few tabs opening at once. Not a flag: on
 * whenever the visitor request limit is. */
#define PAGE_REPORTS_PER_MINUTE 30.0
#define PAGE_REPORTS_BURST 20.0

struct kf_limits {
    kf_limit_t *login_by_account; /* failed logins per e-mail */
    kf_limit_t *login_by_address; /* failed logins per client address */
    kf_limit_t *visitor_requests; /* requests per visitor id (NULL: no limit) */
    kf_limit_t *visitor_messages; /* messages per visitor id (NULL: no limit) */
    kf_limit_t *visitor_sessions; /* new visitor sessions per client address (NULL: no limit) */
    kf_limit_t *visitor_pages;    /* page reports per visitor id (NULL: no limit) */
    /* The loops of one process share the tables (kefu --loops: one budget per client, not one
     * per loop): held for each call, a hash probe and a little arithmetic. */
    pthread_mutex_t lock;
};

/* Makes a limit that may be off (per_minute 0: *limit is NULL). False for a bad rate or burst. */
static bool optional_limit(double per_minute, double burst, kf_limit_t **limit)
{
    *limit = NULL;
    if (per_minute == 0)
        return true;
    *limit = kf_limit_new(per_minute, burst, VISITOR_KEYS);
    return *limit != NULL;
}

kf_limits_t *kf_limits_new(const kf_app_config_t *config)
{
    kf_limits_t *limits = kf_xcalloc(1, sizeof *limits);
    pthread_mutex_init(&limits->lock, NULL);
    /* A bucket of N failures refills over 15 minutes; past it, one more try every 15/N min. */
    limits->login_by_account = kf_limit_new(config->login_failures_per_account / 15.0,
                                            config->login_failures_per_account, LOGIN_KEYS);
    limits->login_by_address = kf_limit_new(config->login_failures_per_address / 15.0,
                                            config->login_failures_per_address, LOGIN_KEYS);
    bool ok = limits->login_by_account != NULL && limits->login_by_address != NULL;
    ok = optional_limit(config->visitor_requests_per_minute, config->visitor_requests_burst,
                        &limits->visitor_requests) &&
         ok;
    ok = optional_limit(config->visitor_messages_per_minute, config->visitor_messages_burst,
                        &limits->visitor_messages) &&
         ok;
    ok = optional_limit(config->visitor_sessions_per_minute, config->visitor_sessions_burst,
                        &limits->visitor_sessions) &&
         ok;
    ok = optional_limit(config->visitor_requests_per_minute != 0 ? PAGE_REPORTS_PER_MINUTE : 0,
                        PAGE_REPORTS_BURST, &limits->visitor_pages) &&
         ok;
    if (!ok) {
        kf_limits_free(limits);
        return NULL;
    }
    return limits;
}

void kf_limits_free(kf_limits_t *limits)
{
    if (limits == NULL)
        return;
    kf_limit_free(limits->login_by_account);
    kf_limit_free(limits->login_by_address);
    kf_limit_free(limits->visitor_requests);
    kf_limit_free(limits->visitor_messages);
    kf_limit_free(limits->visitor_sessions);
    kf_limit_free(limits->visitor_pages);
    pthread_mutex_destroy(&limits->lock);
    free(limits);
}

void kf_limits_sweep(kf_limits_t *limits)
{
    int64_t now = (int64_t)kf_clock_mono_ms();
    kf_limit_t *all[] = {limits->login_by_account, limits->login_by_address,
                         limits->visitor_requests, limits->visitor_messages,
                         limits->visitor_sessions, limits->visitor_pages};
    pthread_mutex_lock(&limits->lock);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (all[i] != NULL)
            kf_limit_sweep(all[i], now);
    }
    pthread_mutex_unlock(&limits->lock);
}

/* Takes a token from a limit that may be off. */
static bool take(kf_limit_t *limit, const char *key, int64_t *retry_after_ms)
{
    return limit == NULL || kf_limit_take(limit, key, (int64_t)kf_clock_mono_ms(), retry_after_ms);
}

static bool take_locked(kf_limits_t *limits, kf_limit_t *limit, const char *key,
                        int64_t *retry_after_ms)
{
    pthread_mutex_lock(&limits->lock);
    bool taken = take(limit, key, retry_after_ms);
    pthread_mutex_unlock(&limits->lock);
    return taken;
}

static bool take_visitor(kf_limits_t *limits, kf_limit_t *limit, int64_t visitor_id,
                         int64_t *retry_after_ms)
{
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)visitor_id);
    return take_locked(limits, limit, key, retry_after_ms);
}

bool kf_limits_visitor_request(kf_limits_t *limits, int64_t visitor_id, int64_t *retry_after_ms)
{
    return take_visitor(limits, limits->visitor_requests, visitor_id, retry_after_ms);
}

bool kf_limits_visitor_message(kf_limits_t *limits, int64_t visitor_id, int64_t *retry_after_ms)
{
    return take_visitor(limits, limits->visitor_messages, visitor_id, retry_after_ms);
}

bool kf_limits_visitor_page(kf_limits_t *limits, int64_t visitor_id, int64_t *retry_after_ms)
{
    return take_visitor(limits, limits->visitor_pages, visitor_id, retry_after_ms);
}

bool kf_limits_new_visitor(kf_limits_t *limits, const char *address, int64_t *retry_after_ms)
{
    return take_locked(limits, limits->visitor_sessions, address, retry_after_ms);
}

bool kf_limits_login_allowed(kf_limits_t *limits, const char *email, const char *address,
                             int64_t *retry_after_ms)
{
    int64_t now = (int64_t)kf_clock_mono_ms();
    int64_t wait_account = 0, wait_address = 0;
    pthread_mutex_lock(&limits->lock);
    bool allowed = kf_limit_check(limits->login_by_account, email, now, &wait_account);
    allowed = kf_limit_check(limits->login_by_address, address, now, &wait_address) && allowed;
    pthread_mutex_unlock(&limits->lock);
    if (!allowed)
        *retry_after_ms = wait_account > wait_address ? wait_account : wait_address;
    return allowed;
}

void kf_limits_login_failed(kf_limits_t *limits, const char *email, const char *address)
{
    int64_t now = (int64_t)kf_clock_mono_ms();
    pthread_mutex_lock(&limits->lock);
    kf_limit_charge(limits->login_by_account, email, now, NULL);
    kf_limit_charge(limits->login_by_address, address, now, NULL);
    pthread_mutex_unlock(&limits->lock);
}

void kf_limits_login_succeeded(kf_limits_t *limits, const char *email)
{
    pthread_mutex_lock(&limits->lock);
    kf_limit_reset(limits->login_by_account, email);
    pthread_mutex_unlock(&limits->lock);
}

int64_t kf_limits_seconds(int64_t retry_after_ms)
{
    return (retry_after_ms + 999) / 1000;
}
