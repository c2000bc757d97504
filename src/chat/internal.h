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
#include "chat/webhooks.h"
#include "chat/replay.h"
#include "bus/bus.h"
#include "push/hub.h"
#include "base/netaddr.h"
#include "base/tz.h"
#include "push/push.h"
#include "store/store.h"

/* Parses config.metrics_allow into app->metrics_allow (ops_api.c). KF_EINVAL for an entry that is
 * no address or prefix. */
int kf_ops_configure(kf_app_t *app);
/* Writes this loop's slot of config.loop_figures (which must be set). */
void kf_ops_note_figures(kf_app_t *app);

/* widget_api.c: the widget's settings read from the store at start (defaults where none are
 * stored; KF_EINVAL when not even UTC's zone file can be read) and freed at the end. */
int kf_widget_settings_load(kf_app_t *app);
void kf_widget_settings_free(kf_app_t *app);
/* The desk's settings as GET /api/settings answers them (a new object). */
json_t *kf_settings_json(const kf_app_t *app);
/* {"online", "open_now", "available", "changes_at"}: whether anyone answers now (a new object). */
json_t *kf_widget_availability_json(const kf_app_t *app);
/* The settings and availability as a "settings" event, to every console and visitor's page. */
void kf_settings_publish(kf_app_t *app);
/* Reads visitor_id's pre-chat answers (setting_get: r->value, the stored JSON, or KF_ENOTFOUND
 * when they gave none). */
int kf_visitor_form_get(kf_app_t *app, int64_t visitor_id, kf_store_done_cb done, void *ctx);
/* An agent's presence changed: visitors hear of it (an "availability" event) when the first comes
 * online or the last goes. */
void kf_widget_presence_changed(kf_app_t *app);
/* What happened to a conversation, for the webhooks (integrations_api.c). */
typedef enum {
    KF_HOOK_CREATED,  /* conversation.created */
    KF_HOOK_ASSIGNED, /* conversation.assigned, when it has an assignee now */
    KF_HOOK_STATUS,   /* conversation.resolved, when it is resolved now */
} kf_hook_change_t;
/* Reads the conversation and hands its event, {conversation}, to the webhooks (nothing when
 * it does not apply or the read fails). */
void kf_chat_hook_conversation(kf_app_t *app, int64_t conversation_id, kf_hook_change_t change);

/* Messages a page of the API holds at most. */
#define KF_PAGE_SIZE 500

struct kf_app {
    uv_loop_t *loop;
    kf_store_t *store; /* borrowed */
    kf_hub_t *hub;
    kf_bus_t *bus;      /* carries the hub's events to other nodes (in-process: nowhere) */
    kf_sub_t nodes_sub; /* what other nodes tell this one (nodes.h) */
    kf_push_t *push;
    kf_app_config_t config;
    kf_authn_t *authn;           /* who requests come from */
    kf_limits_t *limits;         /* the abuse limits */
    kf_replay_t *replay;         /* stored messages for push connections */
    kf_quota_t *quota;           /* push connections per listener */
    kf_hasher_t *hasher;         /* password hashes, off the loop */
    kf_presence_t *presence;     /* the agents' online, away or offline */
    kf_autoassign_t *autoassign; /* the teams' automatic assignment */
    kf_webhooks_t *webhooks;     /* outgoing webhooks (NULL when libcurl could not start) */
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
    uv_timer_t *figures; /* refreshes this loop's config.loop_figures slot (several loops) */
    bool waking;         /* a look for them (and the wakes it led to) is under way */
    int64_t waking_id;   /* the conversation being woken */
    bool typing_preview; /* the setting: agents see a visitor's draft (the store's copy, read at
                          * start and kept in step by PATCH /api/settings) */
    json_t *widget;      /* the widget's settings (chat/widget_settings.h), as stored */
    kf_tz_t *widget_tz;  /* their time_zone's offsets, for the business hours */
    bool widget_online;  /* an agent was online when visitors were last told (widget_api.c) */
    bool shutting_down;  /* a SIGTERM came: /readyz answers 503 (ops_api.c) */
    char site_secret[KF_SITE_SECRET_SIZE]; /* signs verified identities (identity_api.c) */
    kf_addr_prefix_t *metrics_allow;       /* config.metrics_allow, parsed */
    size_t metrics_allow_count;
};

#endif
