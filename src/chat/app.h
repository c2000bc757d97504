/* app.h: the chat application: routes every HTTP request (pages, JSON API, push), authorises it,
 * talks to the store and publishes events to the hub. */
#ifndef KF_CHAT_APP_H
#define KF_CHAT_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth/cache.h"
#include "auth/limit.h"
#include "http/server.h"
#include "push/hub.h"
#include "push/push.h"
#include "store/store.h"

typedef struct kf_app_config {
    size_t max_message_chars;           /* longest message body in code points (4000) */
    int64_t session_ttl_ms;             /* agent session lifetime (7 days) */
    int64_t ticket_ttl_ms;              /* push ticket lifetime (60 s) */
    bool secure_cookies;                /* add Secure to cookies (when served behind TLS) */
    const char *const *allowed_origins; /* origins besides our own that may open a WebSocket */
    size_t allowed_origin_count;
    double login_failures_per_account; /* failed logins allowed per account per 15 min (5) */
    double login_failures_per_address; /* ... and per client address (20) */
    /* Abuse limits (docs/SECURITY.md); 0 turns one off. */
    double visitor_requests_per_minute; /* API and push requests per visitor: rate (120) */
    double visitor_requests_burst;      /* ... and bucket size (60) */
    double visitor_messages_per_minute; /* messages a visitor sends, HTTP or WebSocket (30) */
    double visitor_messages_burst;      /* ... and bucket size (20) */
    double visitor_sessions_per_minute; /* new visitor sessions per client address (60) */
    double visitor_sessions_burst;      /* ... and bucket size (60) */
    size_t max_push_per_visitor;        /* held, streaming or WebSocket push connections (8) */
    size_t max_push_per_agent;          /* ... per agent (32) */
} kf_app_config_t;

typedef struct kf_push_holder kf_push_holder_t; /* live.c: one listener's open push connections */
typedef struct kf_live_replay kf_live_replay_t; /* live.c: one replay on its way */

typedef struct kf_app kf_app_t;

typedef struct kf_chat_newest {
    int64_t visitor_id; /* 0: an empty slot */
    int64_t message_id;
} kf_chat_newest_t;

struct kf_app {
    uv_loop_t *loop;
    kf_store_t *store; /* borrowed */
    kf_hub_t *hub;     /* owned */
    kf_push_t *push;   /* owned */
    kf_app_config_t config;
    unsigned char ticket_key[32]; /* HMAC key for push tickets, kept in the store's settings */
    kf_limit_t *login_by_account; /* failed logins per e-mail */
    kf_limit_t *login_by_address; /* failed logins per client address */
    kf_limit_t *visitor_requests; /* requests per visitor id (NULL: no limit) */
    kf_limit_t *visitor_messages; /* messages per visitor id (NULL: no limit) */
    kf_limit_t *visitor_sessions; /* new visitor sessions per client address (NULL: no limit) */
    /* What replays can skip: for each visitor (direct-mapped by id, so a slot may have lost them
     * to another), an id that none of their messages is above, and the same over all messages
     * (-1 until known). A push connection whose cursor is there has nothing stored to replay:
     * whatever is newer is still to be published (live.c). */
    kf_chat_newest_t *newest_by_visitor; /* NEWEST_SLOTS of them, allocated on first use */
    int64_t newest_overall;
    kf_auth_cache_t *agent_sessions; /* session token hash -> kf_agent_auth_t */
    kf_auth_cache_t *visitor_tokens; /* visitor token hash -> kf_visitor_auth_t (name cut short) */
    kf_push_holder_t **push_holders; /* live.c's hash table of listeners with push connections */
    size_t push_holder_buckets;      /* a power of two, or 0 before the first */
    size_t push_holder_count;        /* listeners in it */
    /* The store's wake-up: its writer thread has committed a batch, or the loop has queued reads;
     * the loop then runs its complete() (answers, publishes), and the replays that needed no
     * query (below). */
    uv_async_t *store_wakeup;
    kf_live_replay_t *deferred_replays; /* live.c: replays to end at the next wake-up, in order */
    kf_live_replay_t *deferred_replays_tail;
    uv_timer_t *limit_sweeper; /* drops idle rate-limit buckets once a minute */
};

void kf_app_config_default(kf_app_config_t *config);
/* Creates the application over an open store (loads or creates the ticket key, waiting for the
 * store: at start-up, before the loop serves). Returns NULL and sets *err on failure. */
kf_app_t *kf_app_new(uv_loop_t *loop, kf_store_t *store, const kf_app_config_t *config,
                     const kf_push_config_t *push_config, int *err);
/* The server's request handler; req->app is the kf_app_t. */
void kf_app_handle(kf_req_t *req);
/* Waits until everything queued in the store has run and runs what waits for it (the answers and
 * publishes, and what they queue in turn). Blocks: for shutdown and tests, not while serving. */
void kf_app_commit(kf_app_t *app);
/* Commits and answers what waits for it, answers held long polls and ends streams (before the
 * server stops). */
void kf_app_drain(kf_app_t *app);
void kf_app_free(kf_app_t *app);

/* Creates an agent account (e-mail lower-cased, password hashed), waiting for the store: for
 * start-up and `kefu user add`, never on a serving loop. Returns 0, KF_EEXISTS, KF_EINVAL (bad
 * e-mail, role or empty password) or a store error. */
int kf_app_create_agent(kf_store_t *store, const char *email, const char *name, const char *role,
                        const char *password);

/* Milliseconds since the Unix epoch. */
int64_t kf_now_ms(void);

#endif
