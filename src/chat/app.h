/* app.h: the chat application: routes every HTTP request (pages, JSON API, push), authorises it,
 * talks to the store and publishes events to the hub. */
#ifndef KF_CHAT_APP_H
#define KF_CHAT_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth/limit.h"
#include "http/server.h"
#include "push/hub.h"
#include "push/push.h"
#include "store/store.h"

typedef struct kf_app_config {
    size_t max_message_chars;    /* longest message body in code points (4000) */
    int64_t session_ttl_ms;      /* agent session lifetime (7 days) */
    int64_t ticket_ttl_ms;       /* push ticket lifetime (60 s) */
    bool secure_cookies;         /* add Secure to cookies (when served behind TLS) */
    const char *const *allowed_origins; /* origins besides our own that may open a WebSocket */
    size_t allowed_origin_count;
    double login_failures_per_account;  /* failed logins allowed per account per 15 min (5) */
    double login_failures_per_address;  /* ... and per client address (20) */
} kf_app_config_t;

typedef struct kf_app {
    uv_loop_t *loop;
    kf_store_t *store;           /* borrowed */
    kf_hub_t *hub;               /* owned */
    kf_push_t *push;             /* owned */
    kf_app_config_t config;
    unsigned char ticket_key[32]; /* HMAC key for push tickets, kept in the store's settings */
    kf_limit_t *login_by_account; /* failed logins per e-mail */
    kf_limit_t *login_by_address; /* failed logins per client address */
} kf_app_t;

void kf_app_config_default(kf_app_config_t *config);
/* Creates the application over an open store (loads or creates the ticket key). Returns NULL and
 * sets *err on failure. */
kf_app_t *kf_app_new(uv_loop_t *loop, kf_store_t *store, const kf_app_config_t *config,
                     const kf_push_config_t *push_config, int *err);
/* The server's request handler; req->app is the kf_app_t. */
void kf_app_handle(kf_req_t *req);
/* Answers held long polls and ends streams (before the server stops). */
void kf_app_drain(kf_app_t *app);
void kf_app_free(kf_app_t *app);

/* Creates an agent account (e-mail lower-cased, password hashed). Returns 0, KF_EEXISTS,
 * KF_EINVAL (bad e-mail, role or empty password) or a store error. */
int kf_app_create_agent(kf_store_t *store, const char *email, const char *name, const char *role,
                        const char *password);

/* Milliseconds since the Unix epoch. */
int64_t kf_now_ms(void);

#endif
