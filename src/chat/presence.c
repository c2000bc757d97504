/* presence.c: a table of the agents whose console was seen since the server started (agents are
 * a team, not a crowd: an entry stays until the end), each with its choice, what is shown, and
 * when its console was last seen. */
#include "chat/presence.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/map.h"

typedef struct agent {
    kf_map_node_t node;
    int64_t id;
    kf_presence_status_t chosen; /* online or away */
    kf_presence_status_t shown;
    uint64_t last_seen; /* monotonic ms, here or on another node; 0: not since the last logout */
    uint64_t here_seen; /* monotonic ms, on this node only; 0: never, or not since a logout */
} agent_t;

struct kf_presence {
    kf_map_t agents;
    uint64_t offline_after_ms;
    kf_presence_changed_fn changed;
    void *ctx;
    size_t online; /* agents shown online now: the widget's "someone is here" */
};

kf_presence_t *kf_presence_new(uint64_t offline_after_ms, kf_presence_changed_fn changed, void *ctx)
{
    kf_presence_t *presence = kf_xcalloc(1, sizeof *presence);
    kf_map_init(&presence->agents);
    presence->offline_after_ms = offline_after_ms;
    presence->changed = changed;
    presence->ctx = ctx;
    return presence;
}

static void free_agent(kf_map_node_t *node)
{
    free(KF_CONTAINER_OF(node, agent_t, node));
}

void kf_presence_free(kf_presence_t *presence)
{
    if (presence == NULL)
        return;
    kf_map_clear(&presence->agents, free_agent);
    free(presence);
}

static bool agent_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    return len == sizeof(int64_t) &&
           memcmp(&KF_CONTAINER_OF(node, agent_t, node)->id, key, len) == 0;
}

static agent_t *find(const kf_presence_t *presence, int64_t id)
{
    uint64_t hash = kf_map_hash(&presence->agents, &id, sizeof id);
    kf_map_node_t *node = kf_map_find(&presence->agents, hash, &id, sizeof id, agent_eq);
    return node != NULL ? KF_CONTAINER_OF(node, agent_t, node) : NULL;
}

/* The agent's entry, made (offline, choosing online) when there is none. */
static agent_t *entry(kf_presence_t *presence, int64_t id)
{
    agent_t *agent = find(presence, id);
    if (agent == NULL) {
        agent = kf_xcalloc(1, sizeof *agent);
        agent->id = id;
        agent->chosen = KF_PRESENCE_ONLINE;
        agent->shown = KF_PRESENCE_OFFLINE;
        kf_map_insert(&presence->agents, &agent->node,
                      kf_map_hash(&presence->agents, &id, sizeof id));
    }
    return agent;
}

static void show(kf_presence_t *presence, agent_t *agent, kf_presence_status_t status)
{
    if (agent->shown == status)
        return;
    presence->online -= agent->shown == KF_PRESENCE_ONLINE;
    presence->online += status == KF_PRESENCE_ONLINE;
    agent->shown = status;
    if (presence->changed != NULL)
        presence->changed(presence->ctx, agent->id, status);
}

void kf_presence_seen(kf_presence_t *presence, int64_t agent_id, uint64_t now)
{
    agent_t *agent = entry(presence, agent_id);
    /* 0 means "not seen": a loop that started less than a millisecond ago still counts. */
    agent->last_seen = now > 0 ? now : 1;
    agent->here_seen = agent->last_seen;
    show(presence, agent, agent->chosen);
}

void kf_presence_seen_elsewhere(kf_presence_t *presence, int64_t agent_id, uint64_t now)
{
    agent_t *agent = entry(presence, agent_id);
    agent->last_seen = now > 0 ? now : 1;
    show(presence, agent, agent->chosen);
}

typedef struct each_here {
    uint64_t now;
    uint64_t within_ms;
    kf_presence_each_fn fn;
    void *ctx;
} each_here_t;

static void each_here_agent(kf_map_node_t *node, void *data)
{
    each_here_t *each = data;
    const agent_t *agent = KF_CONTAINER_OF(node, agent_t, node);
    if (agent->here_seen != 0 && agent->shown != KF_PRESENCE_OFFLINE &&
        each->now - agent->here_seen <= each->within_ms)
        each->fn(each->ctx, agent->id);
}

void kf_presence_each_here(kf_presence_t *presence, uint64_t now, uint64_t within_ms,
                           kf_presence_each_fn fn, void *ctx)
{
    each_here_t each = {now, within_ms, fn, ctx};
    kf_map_each(&presence->agents, each_here_agent, &each);
}

int kf_presence_choose(kf_presence_t *presence, int64_t agent_id, kf_presence_status_t status)
{
    if (status != KF_PRESENCE_ONLINE && status != KF_PRESENCE_AWAY)
        return KF_EINVAL;
    agent_t *agent = entry(presence, agent_id);
    agent->chosen = status;
    if (agent->shown != KF_PRESENCE_OFFLINE)
        show(presence, agent, status);
    return 0;
}

void kf_presence_left(kf_presence_t *presence, int64_t agent_id)
{
    agent_t *agent = find(presence, agent_id);
    if (agent != NULL)
        agent->last_seen = agent->here_seen = 0;
}

void kf_presence_drop(kf_presence_t *presence, int64_t agent_id)
{
    agent_t *agent = find(presence, agent_id);
    if (agent == NULL)
        return;
    agent->last_seen = agent->here_seen = 0;
    agent->chosen = KF_PRESENCE_ONLINE;
    show(presence, agent, KF_PRESENCE_OFFLINE);
}

typedef struct sweep {
    kf_presence_t *presence;
    uint64_t now;
    kf_presence_open_fn open;
    void *ctx;
} sweep_t;

static void sweep_agent(kf_map_node_t *node, void *data)
{
    sweep_t *sweep = data;
    agent_t *agent = KF_CONTAINER_OF(node, agent_t, node);
    if (agent->shown == KF_PRESENCE_OFFLINE)
        return;
    /* A stream that ends between two sweeps counts from the last sweep that saw it open: the
     * agent goes offline about offline_after_ms after the console went. */
    if (sweep->open(sweep->ctx, agent->id) > 0)
        agent->last_seen = agent->here_seen = sweep->now;
    bool gone =
        agent->last_seen == 0 || sweep->now - agent->last_seen >= sweep->presence->offline_after_ms;
    if (gone)
        show(sweep->presence, agent, KF_PRESENCE_OFFLINE);
}

void kf_presence_sweep(kf_presence_t *presence, uint64_t now, kf_presence_open_fn open, void *ctx)
{
    sweep_t sweep = {presence, now, open, ctx};
    kf_map_each(&presence->agents, sweep_agent, &sweep);
}

kf_presence_status_t kf_presence_status(const kf_presence_t *presence, int64_t agent_id)
{
    const agent_t *agent = find(presence, agent_id);
    return agent != NULL ? agent->shown : KF_PRESENCE_OFFLINE;
}

size_t kf_presence_online(const kf_presence_t *presence)
{
    return presence->online;
}

const char *kf_presence_name(kf_presence_status_t status)
{
    switch (status) {
    case KF_PRESENCE_ONLINE: return "online";
    case KF_PRESENCE_AWAY: return "away";
    default: return "offline";
    }
}

int kf_presence_parse(const char *name, kf_presence_status_t *out)
{
    if (name != NULL && strcmp(name, "online") == 0)
        *out = KF_PRESENCE_ONLINE;
    else if (name != NULL && strcmp(name, "away") == 0)
        *out = KF_PRESENCE_AWAY;
    else
        return KF_EINVAL;
    return 0;
}
