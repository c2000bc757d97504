/* internal.h: the application's parts, for the files of src/chat only (and their tests): outside
 * the chat layer kf_app_t is opaque (chat/app.h). Each part is a module of its own; the app holds
 * them and the handles that drive them. */
#ifndef KF_CHAT_INTERNAL_H
#define KF_CHAT_INTERNAL_H

#include <jansson.h>
#include <uv.h>

#include "auth/hasher.h"
#include "chat/app.h"
#include "chat/authn.h"
#include "chat/autoassign.h"
#include "chat/browsing.h"
#include "chat/limits.h"
#include "chat/presence.h"
#include "chat/quota.h"
#include "chat/replay.h"
#include "push/hub.h"
#include "base/netaddr.h"
#include "push/push.h"
#include "store/store.h"

/* Parses config.metrics_allow into app->metrics_allow (ops_api.c). KF_EINVAL for an entry that is
 * no address or prefix. */
int kf_ops_configure(kf_app_t *app);

/* Messages a page of the API holds at most. */
#define KF_PAGE_SIZE 500

struct kf_app {
    uv_loop_t *loop;
    kf_store_t *store; /* borrowed */
    kf_hub_t *hub;
    kf_push_t *push;
    kf_app_config_t config;
    kf_authn_t *authn;           /* who requests come from */
    kf_limits_t *limits;         /* the abuse limits */
    kf_replay_t *replay;         /* stored messages for push connections */
    kf_quota_t *quota;           /* push connections per listener */
    kf_hasher_t *hasher;         /* password hashes, off the loop */
    kf_presence_t *presence;     /* the agents' online, away or offline */
    kf_autoassign_t *autoassign; /* the teams' automatic assignment */
    kf_browsing_t *browsing;     /* the visitors online now (chat/invite_api.c) */
    json_t *invite_rules;        /* the invitation rules, as stored (chat/invite_api.c) */
    int64_t invite_rule_next;    /* the id the next rule gets */
    /* The store's wake-up: its writer thread has committed a batch, or the loop has queued reads
     * or deferred a replay; the loop then runs the store's complete() (answers, publishes) and
     * the deferred replays. */
    uv_async_t *store_wakeup;
    uv_timer_t *sweeper; /* once a minute: idle rate-limit buckets, old ticket revocations */
    uv_timer_t *presence_sweeper; /* every few seconds: agents whose console went go offline */
    uv_timer_t *snoozes; /* every few seconds: snoozed conversations whose snooze has ended */
    bool waking;         /* a look for them (and the wakes it led to) is under way */
    int64_t waking_id;   /* the conversation being woken */
    bool typing_preview; /* the setting: agents see a visitor's draft (the store's copy, read at
                          * start and kept in step by PATCH /api/settings) */
    bool shutting_down;  /* a SIGTERM came: /readyz answers 503 (ops_api.c) */
    char site_secret[KF_SITE_SECRET_SIZE]; /* signs verified identities (identity_api.c) */
    kf_addr_prefix_t *metrics_allow;       /* config.metrics_allow, parsed */
    size_t metrics_allow_count;
};

#endif
