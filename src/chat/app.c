/* app.c: the chat application's life cycle: its parts made and freed in order, the store's
 * wake-up on the loop, the minute's sweep, the snoozes that end, and agent accounts for the
 * command line. Requests come
 * in through the route table (chat/routes.c). */
#include "chat/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "chat/events.h"
#include "chat/handlers.h"
#include "chat/internal.h"
#include "chat/invite.h"
#include "chat/nodes.h"
#include "store/sync.h"

/* Password hashes on worker threads at once, and waiting: each hash takes 32 MiB and tens of
 * milliseconds, so two keep both cores of a small machine for the rest; 64 waiting logins are
 * past any team's, and a flood past that is refused at once (503) rather than queued. */
#define HASHES_RUNNING 2
#define HASHES_WAITING 64

/* How often idle rate-limit buckets and stale ticket revocations go. */
#define SWEEP_MS 60000
/* An agent with no console open this long is offline (the minute); checked this often, so
 * a closed console shows offline within a minute and five seconds. */
#define PRESENCE_OFFLINE_MS 60000
#define PRESENCE_SWEEP_MS 5000

/* How often snoozes that have ended are looked for. A snooze is "until tomorrow morning": a few
 * seconds late is on time, and a look is one read of an index of the snoozed conversations
 * alone (a write only when one is due, so a full disk is not retried every few seconds for
 * nothing, nor does an idle server write). */
#define SNOOZE_CHECK_MS 5000

void kf_app_config_default(kf_app_config_t *config)
{
    memset(config, 0, sizeof *config);
    config->max_message_chars = 4000;
    config->max_upload_bytes = 10 * 1024 * 1024;
    config->session_ttl_ms = 7LL * 24 * 3600 * 1000;
    config->ticket_ttl_ms = 60 * 1000;
    config->secure_cookies = false;
    config->login_failures_per_account = 5;
    config->login_failures_per_address = 20;
    /* A person polls every 2 s at most, types and reads; a script is what goes past these. */
    config->visitor_requests_per_minute = 120;
    config->visitor_requests_burst = 60;
    config->visitor_messages_per_minute = 30;
    config->visitor_messages_burst = 20;
    config->visitor_sessions_per_minute = 60;
    config->visitor_sessions_burst = 60;
    config->max_push_per_visitor = 8;
    config->max_push_per_agent = 32;
    config->loop_count = 1;
}

/* How long after a gap on the bus clients that come back replay from before it: longer than a
 * browser's reconnect backoff (15 s and jitter) and a long poll's hold. */
#define BUS_REWIND_MS (120 * 1000)

/* A read of where the store stands for one connection of the bus (KF_BUS_UP). */
typedef struct bus_start {
    kf_app_t *app;
    uint64_t connection;
} bus_start_t;

static void bus_newest_cb(void *ctx, const kf_store_result_t *r)
{
    bus_start_t *start = ctx;
    kf_app_t *app = start->app;
    if (r->rc != 0)
        kf_warn("bus: cannot read the newest message's id (%s); on this connection message "
                "events are ordered from the next one on",
                kf_strerror(r->rc));
    kf_bus_started(app->bus, start->connection, r->rc == 0, r->rc == 0 ? (uint64_t)r->id : 0);
    free(start);
}

/* The bus asks where the store stands now that it is subscribed (bus.h, kf_bus_started). */
static void read_bus_start(kf_app_t *app, uint64_t connection)
{
    bus_start_t *start = kf_xmalloc(sizeof *start);
    start->app = app;
    start->connection = connection;
    int rc = app->store->ops->message_newest(app->store, bus_newest_cb, start);
    if (rc != 0) {
        kf_store_result_t failed = {.rc = rc};
        bus_newest_cb(start, &failed);
    }
}

/* The edge of the bus: it says what happened, the application logs it and, when events from
 * other nodes may have been missed, sends every push client back to replay from its cursor. */
static void bus_changed_cb(void *ctx, kf_bus_change_t change, const char *detail, uint64_t after)
{
    kf_app_t *app = ctx;
    /* The address as the log shows it: never its password. Made only for what is logged: the
     * loops bus (no address) says something of every event. */
    char shown[600] = "";
    if ((change == KF_BUS_UP || change == KF_BUS_DOWN) && app->config.bus_url != NULL)
        kf_bus_url_redact(app->config.bus_url, shown, sizeof shown);
    switch (change) {
    case KF_BUS_UP:
        kf_info("bus: connected to %s", shown);
        /* Counted under a new session: what this node holds counts again, from now. */
        kf_quota_shared_again(app->quota);
        read_bus_start(app, after);
        break;
    case KF_BUS_DOWN:
        kf_warn("bus: %s unreachable (%s); not ready, retrying", shown, detail);
        break;
    case KF_BUS_GAP:
        if (app->shutting_down)
            break;
        /* Messages other nodes stored meanwhile were never noted here: what replay.c believes
         * is the newest would let a replay skip them. */
        kf_replay_forget(app->replay);
        if (after != UINT64_MAX)
            kf_push_rewind(app->push, after, BUS_REWIND_MS);
        kf_push_drain(app->push);
        break;
    case KF_BUS_HOLE:
        if (app->shutting_down)
            break;
        /* Late, the missing message reaches only the clients connected then. Logged by the
         * loop that gave it up. */
        if (detail[0] == '\0')
            kf_warn(
                "bus: a message above %llu did not come in time; the later ones went first, and "
                "clients that come back in the next %d s replay from it",
                (unsigned long long)after, BUS_REWIND_MS / 1000);
        kf_push_rewind(app->push, after, BUS_REWIND_MS);
        break;
    case KF_BUS_EPHEMERAL:
        if (strcmp(detail, KF_NODES_TOPIC) != 0) /* the loops' own news: no client follows it */
            kf_push_keep_window(app->push, detail);
        break;
    case KF_BUS_MESSAGE: {
        /* As if stored here: the visitor's stream (visitor:N) or the agents' (a note's too). */
        long long visitor_id = 0;
        if (after > INT64_MAX)
            break;
        if (sscanf(detail, "visitor:%lld", &visitor_id) != 1 || visitor_id <= 0)
            visitor_id = 0;
        kf_replay_note_message(app->replay, visitor_id, (int64_t)after);
        break;
    }
    }
}

/* How often a loop's figures are copied for the other loops' scrapes (kf_loop_figures_t). */
#define FIGURES_MS 1000

static void figures_cb(uv_timer_t *timer)
{
    kf_ops_note_figures(timer->data);
}

static void sweep_cb(uv_timer_t *timer)
{
    kf_app_t *app = timer->data;
    kf_limits_sweep(app->limits);
    kf_quota_sweep(app->quota);
    kf_authn_sweep(app->authn);
}

/* An agent's presence changed: every console hears it (an ephemeral event: a console that
 * reconnects reads everyone's from GET /api/agents). */
static void presence_changed_cb(void *ctx, int64_t agent_id, kf_presence_status_t status)
{
    kf_app_t *app = ctx;
    json_t *event = json_pack("{s:s,s:I,s:s}", "type", "presence", "agent_id", (json_int_t)agent_id,
                              "status", kf_presence_name(status));
    kf_chat_publish(app->hub, 0, true, kf_chat_event(0, event));
    if (status == KF_PRESENCE_ONLINE)
        kf_autoassign_kick(app->autoassign);
    kf_widget_presence_changed(app);
}

static size_t agent_connections(void *ctx, int64_t agent_id)
{
    kf_app_t *app = ctx;
    return kf_quota_open(app->quota, 'a', agent_id);
}

static void presence_sweep_cb(uv_timer_t *timer)
{
    kf_app_t *app = timer->data;
    kf_presence_sweep(app->presence, kf_clock_mono_ms(), agent_connections, app);
    /* Seen within two sweeps (timers drift): the others then show an agent whose console went
     * about as long as this node does, a sweep longer at most. */
    kf_nodes_tell_here(app, 2 * PRESENCE_SWEEP_MS);
    kf_invite_sweep(app);
}

/* ---- snoozes that end: one due conversation at a time is opened and published, until none is
 * due; a failure waits for the next tick ---- */

static void look_for_snoozes(kf_app_t *app);

static void woken_cb(void *ctx, const kf_store_result_t *r)
{
    kf_app_t *app = ctx;
    if (r->rc != 0) {
        /* KF_ECONFLICT: an agent changed it since the look; else the store failed. */
        app->waking = false;
        return;
    }
    kf_info("conversation %lld: its snooze has ended", (long long)app->waking_id);
    kf_chat_publish_conversation(app->store, app->hub, app->waking_id, true);
    look_for_snoozes(app);
}

static void snooze_due_cb(void *ctx, const kf_store_result_t *r)
{
    kf_app_t *app = ctx;
    kf_store_t *store = app->store;
    app->waking = r->rc == 0;
    if (r->rc != 0)
        return; /* none is due (or the read failed: the next tick looks again) */
    app->waking_id = r->id;
    if (store->ops->conversation_wake(store, r->id, kf_clock_wall_ms(), woken_cb, app) != 0)
        app->waking = false;
}

static void look_for_snoozes(kf_app_t *app)
{
    kf_store_t *store = app->store;
    app->waking =
        store->ops->conversation_snooze_due(store, kf_clock_wall_ms(), snooze_due_cb, app) == 0;
}

static void snoozes_cb(uv_timer_t *timer)
{
    kf_app_t *app = timer->data;
    if (!app->waking)
        look_for_snoozes(app);
}

/* The database stopped or started taking writes: said once each way, since every refused write
 * is answered 503 without a line of its own. */
static void store_health_cb(void *data, bool writable, uint64_t refused)
{
    (void)data;
    if (!writable)
        kf_warn("the database refuses writes (a full disk or a read-only file system): sends, "
                "new visitors and logins are answered 503 until it takes them again");
    else
        kf_warn("the database takes writes again, after %llu refused", (unsigned long long)refused);
}

/* The store has work for the loop (finished writes, queued reads), or a replay was deferred:
 * answer and publish. */
static void store_wakeup_cb(uv_async_t *handle)
{
    kf_app_t *app = handle->data;
    app->store->ops->complete(app->store);
    kf_replay_run_deferred(app->replay);
}

/* Called on the writer's thread, or the loop's: uv_async_send is the one libuv call that is safe
 * on any thread. */
static void wake(void *data)
{
    uv_async_send(data);
}

static void free_handle_cb(uv_handle_t *handle)
{
    free(handle);
}

kf_app_t *kf_app_new(uv_loop_t *loop, kf_store_t *store, const kf_app_config_t *config,
                     const kf_push_config_t *push_config, int *err)
{
    kf_app_t *app = kf_xcalloc(1, sizeof *app);
    app->loop = loop;
    app->store = store;
    app->config = *config;
    if (kf_ops_configure(app) != 0) {
        *err = KF_EINVAL;
        goto out_free_app;
    }
    app->authn = kf_authn_new(store, config, err);
    if (app->authn == NULL)
        goto out_free_app;
    *err = kf_app_site_secret(store, app->site_secret);
    if (*err != 0)
        goto out_free_authn;
    /* Read once here, while waiting is allowed; PATCH /api/settings keeps it in step after. */
    char preview[8] = "";
    app->typing_preview =
        kf_store_sync_setting_get(store, "typing_preview", preview, sizeof preview) == 0 &&
        strcmp(preview, "true") == 0;
    *err = kf_invite_start(app);
    if (*err != 0)
        goto out_free_invite;
    *err = kf_widget_settings_load(app);
    if (*err != 0)
        goto out_free_invite;
    app->limits = config->shared_limits != NULL ? config->shared_limits : kf_limits_new(config);
    if (app->limits == NULL) {
        *err = KF_EINVAL;
        goto out_free_invite;
    }
    app->replay = kf_replay_new(store);
    app->quota = config->shared_quota != NULL
                     ? config->shared_quota
                     : kf_quota_new(config->max_push_per_visitor, config->max_push_per_agent);
    app->hasher = kf_hasher_new(loop, HASHES_RUNNING, HASHES_WAITING);
    /* Unreferenced: what waits for the store is answered to requests, which keep the loop
     * alive. */
    app->store_wakeup = kf_xcalloc(1, sizeof *app->store_wakeup);
    uv_async_init(loop, app->store_wakeup, store_wakeup_cb);
    app->store_wakeup->data = app;
    uv_unref((uv_handle_t *)app->store_wakeup);
    store->ops->set_notify(store, wake, app->store_wakeup);
    kf_store_set_health(store, store_health_cb, app);
    kf_replay_set_notify(app->replay, wake, app->store_wakeup);
    /* Unreferenced too: it must not keep the loop alive at shutdown. */
    app->sweeper = kf_xcalloc(1, sizeof *app->sweeper);
    uv_timer_init(loop, app->sweeper);
    app->sweeper->data = app;
    uv_timer_start(app->sweeper, sweep_cb, SWEEP_MS, SWEEP_MS);
    uv_unref((uv_handle_t *)app->sweeper);
    app->presence =
        config->shared_presence_of != NULL
            ? kf_presence_share(config->shared_presence_of->presence, presence_changed_cb, app)
            : kf_presence_new(PRESENCE_OFFLINE_MS, presence_changed_cb, app);
    app->presence_sweeper = kf_xcalloc(1, sizeof *app->presence_sweeper);
    uv_timer_init(loop, app->presence_sweeper);
    app->presence_sweeper->data = app;
    uv_timer_start(app->presence_sweeper, presence_sweep_cb, PRESENCE_SWEEP_MS, PRESENCE_SWEEP_MS);
    uv_unref((uv_handle_t *)app->presence_sweeper);
    app->snoozes = kf_xcalloc(1, sizeof *app->snoozes);
    uv_timer_init(loop, app->snoozes);
    app->snoozes->data = app;
    if (config->loop_index == 0)
        uv_timer_start(app->snoozes, snoozes_cb, SNOOZE_CHECK_MS, SNOOZE_CHECK_MS);
    uv_unref((uv_handle_t *)app->snoozes);
    app->hub = kf_hub_new();
    kf_push_config_t push = *push_config;
    push.receive = kf_ws_receive;
    push.receive_ctx = app;
    if (config->loop_figures != NULL) /* a scrape on another loop counts them at once */
        push.shared_counts = config->loop_figures[config->loop_index].push;
    app->push = kf_push_new(loop, app->hub, &push);
    if (config->bus_url != NULL) {
        app->bus = kf_bus_new_redis(loop, app->hub, config->bus_url, config->newest_message,
                                    bus_changed_cb, app);
        if (app->bus == NULL) {
            *err = KF_EINVAL;
            goto out_free_running;
        }
        /* Several nodes: one budget between them, not one each. */
        kf_limits_share(app->limits, app->bus);
        kf_quota_share(app->quota, app->bus);
    } else if (config->loops != NULL) {
        app->bus = kf_bus_new_loops(config->loops, config->loop_index, loop, app->hub,
                                    bus_changed_cb, app);
    } else {
        app->bus = kf_bus_new_local(app->hub);
    }
    kf_nodes_start(app);
    if (config->loop_figures != NULL) {
        app->figures = kf_xcalloc(1, sizeof *app->figures);
        uv_timer_init(loop, app->figures);
        app->figures->data = app;
        uv_timer_start(app->figures, figures_cb, FIGURES_MS, FIGURES_MS);
        uv_unref((uv_handle_t *)app->figures);
    }
    app->autoassign = kf_autoassign_new(
        app, config->shared_presence_of != NULL ? config->shared_presence_of->autoassign : NULL);
    app->webhooks = kf_webhooks_new(loop, store, config->webhooks_allow_private);
    if (app->webhooks == NULL)
        kf_warn("libcurl could not start: webhooks are not sent");
    else if (config->loop_index > 0)
        kf_webhooks_set_sender(app->webhooks, false); /* loop 0's sends what this one queues */
    return app;

out_free_running:
    /* Everything above is the running application's: kf_app_free undoes it in order. */
    kf_app_free(app);
    return NULL;

out_free_invite:
    kf_invite_stop(app);
out_free_authn:
    kf_widget_settings_free(app);
    kf_authn_free(app->authn);
out_free_app:
    free(app->metrics_allow);
    free(app);
    return NULL;
}

void kf_app_commit(kf_app_t *app)
{
    do
        app->store->ops->flush(app->store);
    while (kf_replay_run_deferred(app->replay) > 0);
}

void kf_app_set_shutting_down(kf_app_t *app)
{
    app->shutting_down = true;
}

void kf_app_drain(kf_app_t *app)
{
    app->shutting_down = true;
    kf_app_commit(app);
    kf_push_drain(app->push);
}

void kf_app_free(kf_app_t *app)
{
    if (app == NULL)
        return;
    kf_app_commit(app);
    app->store->ops->set_notify(app->store, NULL, NULL);
    kf_store_set_health(app->store, NULL, NULL);
    uv_close((uv_handle_t *)app->store_wakeup, free_handle_cb);
    uv_close((uv_handle_t *)app->sweeper, free_handle_cb);
    uv_close((uv_handle_t *)app->presence_sweeper, free_handle_cb);
    uv_close((uv_handle_t *)app->snoozes, free_handle_cb);
    if (app->figures != NULL) {
        kf_ops_note_figures(app); /* the bus's last figures, for the others' scrapes */
        uv_close((uv_handle_t *)app->figures, free_handle_cb);
    }
    kf_webhooks_free(app->webhooks);
    kf_autoassign_free(app->autoassign);
    kf_push_free(app->push);
    /* Requests still ending (and their quota) must not reach the freed bus. Tables the loops
     * share are never shared over a bus (main.c: only without one): nothing to undo. */
    if (app->limits != app->config.shared_limits)
        kf_limits_share(app->limits, NULL);
    if (app->quota != app->config.shared_quota)
        kf_quota_share(app->quota, NULL);
    kf_bus_free(app->bus);
    if (app->hub != NULL)
        kf_nodes_stop(app);
    kf_hub_free(app->hub);
    kf_hasher_free(app->hasher);
    if (app->quota != app->config.shared_quota)
        kf_quota_free(app->quota);
    kf_presence_free(app->presence);
    kf_invite_stop(app);
    kf_widget_settings_free(app);
    kf_replay_free(app->replay);
    if (app->limits != app->config.shared_limits)
        kf_limits_free(app->limits);
    kf_authn_free(app->authn);
    free(app->metrics_allow);
    free(app);
}

int kf_app_create_agent(kf_store_t *store, const char *email, const char *name, const char *role,
                        const char *password)
{
    if (strcmp(role, "admin") != 0 && strcmp(role, "agent") != 0)
        return KF_EINVAL;
    size_t len = strlen(email);
    const char *at = strchr(email, '@');
    if (len == 0 || len > KF_MAX_EMAIL_BYTES || at == NULL || at == email || at[1] == '\0' ||
        password[0] == '\0' || kf_utf8_length(name) > KF_MAX_NAME_CHARS)
        return KF_EINVAL;
    char lower[KF_MAX_EMAIL_BYTES + 1];
    memcpy(lower, email, len + 1);
    kf_ascii_lower(lower);
    char hash[KF_PASSWORD_HASH_SIZE];
    int rc = kf_auth_password_hash(password, hash);
    if (rc != 0)
        return rc;
    return kf_store_sync_agent_create(store, lower, name, role, hash, kf_clock_wall_ms(), NULL);
}
