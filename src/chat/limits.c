/* limits.c: the chat layer's rate limits over auth/limit.h. */
#include "chat/limits.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/limit.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"

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
    kf_bus_t *bus;                /* where the uses are shared with other nodes, or NULL */
    uint64_t shared, merged;      /* uses counted in Redis; others' uses charged here */
    /* The loops of one process share the tables (kefu --loops: one budget per client, not one
     * per loop; without a bus, main.c): held for each call, a hash probe and a little
     * arithmetic. */
    pthread_mutex_t lock;
};

/* Each limit's name in the shared counters' keys. */
static const char *name_of(const kf_limits_t *limits, const kf_limit_t *limit)
{
    if (limit == limits->login_by_account)
        return "login-account";
    if (limit == limits->login_by_address)
        return "login-address";
    if (limit == limits->visitor_requests)
        return "requests";
    if (limit == limits->visitor_messages)
        return "messages";
    if (limit == limits->visitor_sessions)
        return "sessions";
    return "pages";
}

#define COUNTER_SIZE (64 + KF_LIMITS_MAX_KEY)

/* The shared counter of key in window slot: kefu:limit:NAME:SLOT:KEY (the window after it still
 * reads it for a moment: late answers). */
static void counter_key(const kf_limits_t *limits, const kf_limit_t *limit, int64_t slot,
                        const char *key, char out[COUNTER_SIZE])
{
    snprintf(out, COUNTER_SIZE, "kefu:limit:%s:%lld:%.*s", name_of(limits, limit), (long long)slot,
             KF_LIMITS_MAX_KEY, key);
}

/* One use counted in Redis, waiting for the others' count. */
typedef struct shared_use {
    kf_limits_t *limits;
    kf_limit_t *limit;
    int64_t slot;     /* the window it was counted in */
    bool as_failures; /* a failed login: others' are charged as failures too */
    char key[];       /* the limit's key (an e-mail, an address, a visitor id) */
} shared_use_t;

static void shared_cb(void *data, int rc, int64_t others)
{
    shared_use_t *use = data;
    if (rc == 0) {
        pthread_mutex_lock(&use->limits->lock);
        use->limits->merged += (uint64_t)kf_limit_merge(
            use->limit, use->key, use->slot, others, (int64_t)kf_clock_mono_ms(), use->as_failures);
        pthread_mutex_unlock(&use->limits->lock);
    }
    free(use);
}

/* Counts one use of key in the limit's current window in Redis, and merges the other nodes'
 * uses when the answer comes. Nothing waits for it: with Redis away it is simply not counted
 * (each node then holds its own budget, as one node does). */
static void share(kf_limits_t *limits, kf_limit_t *limit, const char *key, bool as_failures)
{
    if (limits->bus == NULL)
        return;
    int64_t window_ms = kf_limit_window_ms(limit);
    int64_t slot = kf_limit_slot(window_ms, kf_clock_wall_ms());
    size_t len = strlen(key);
    shared_use_t *use = kf_xmalloc(sizeof *use + len + 1);
    use->limits = limits;
    use->limit = limit;
    use->slot = slot;
    use->as_failures = as_failures;
    memcpy(use->key, key, len + 1);
    char counter[COUNTER_SIZE];
    counter_key(limits, limit, slot, key, counter);
    if (kf_bus_count(limits->bus, counter, 1, 2 * window_ms, false, shared_cb, use) != 0) {
        free(use);
        return;
    }
    limits->shared++;
}

void kf_limits_share(kf_limits_t *limits, kf_bus_t *bus)
{
    if (limits != NULL)
        limits->bus = bus;
}

void kf_limits_stats(const kf_limits_t *limits, uint64_t *shared, uint64_t *merged)
{
    *shared = limits->shared;
    *merged = limits->merged;
}

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

/* Takes a token from a limit that may be off; a token taken is a use the other nodes hear of
 * (a refused try takes nothing, here or there). */
static bool take(kf_limits_t *limits, kf_limit_t *limit, const char *key, int64_t *retry_after_ms)
{
    if (limit == NULL)
        return true;
    pthread_mutex_lock(&limits->lock);
    bool taken = kf_limit_take(limit, key, (int64_t)kf_clock_mono_ms(), retry_after_ms);
    pthread_mutex_unlock(&limits->lock);
    if (taken)
        share(limits, limit, key, false);
    return taken;
}

static bool take_visitor(kf_limits_t *limits, kf_limit_t *limit, int64_t visitor_id,
                         int64_t *retry_after_ms)
{
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)visitor_id);
    return take(limits, limit, key, retry_after_ms);
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
    return take(limits, limits->visitor_sessions, address, retry_after_ms);
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
    share(limits, limits->login_by_account, email, true);
    share(limits, limits->login_by_address, address, true);
}

void kf_limits_login_succeeded(kf_limits_t *limits, const char *email)
{
    pthread_mutex_lock(&limits->lock);
    kf_limit_reset(limits->login_by_account, email);
    pthread_mutex_unlock(&limits->lock);
    if (limits->bus == NULL)
        return;
    /* The window's failures go for every node: this one must not charge them again at its next
     * failure, having forgotten them (the other nodes forget theirs when told: nodes.h). */
    char counter[COUNTER_SIZE];
    int64_t window_ms = kf_limit_window_ms(limits->login_by_account);
    counter_key(limits, limits->login_by_account, kf_limit_slot(window_ms, kf_clock_wall_ms()),
                email, counter);
    kf_bus_forget(limits->bus, counter);
}

void kf_limits_login_succeeded_elsewhere(kf_limits_t *limits, const char *email)
{
    pthread_mutex_lock(&limits->lock);
    kf_limit_reset(limits->login_by_account, email);
    pthread_mutex_unlock(&limits->lock);
}

int64_t kf_limits_seconds(int64_t retry_after_ms)
{
    return (retry_after_ms + 999) / 1000;
}
