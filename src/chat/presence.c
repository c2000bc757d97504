/* presence.c: a table of the agents whose console was seen since the server started (agents are
 * a team, not a crowd: an entry stays until the end), each with its choice, what is shown, and
 * when its console was last seen; one table for every loop of the process, each with a handle. */
#include "chat/presence.h"

#include <pthread.h>
#include <stdatomic.h>
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

/* The table, shared by the loops of one process (kf_presence_share): one lock for it, held for
 * a lookup or a sweep (agents are a team: a sweep is short). */
typedef struct table {
    kf_map_t agents;
    uint64_t offline_after_ms;
    size_t online; /* agents shown online now: the widget's "someone is here" */
    pthread_mutex_t lock;
    atomic_int refs; /* the handles on it */
} table_t;

/* One loop's handle: the changes it makes are told to its own application, on its thread. */
struct kf_presence {
    table_t *table;
    kf_presence_changed_fn changed;
    void *ctx;
};

/* What changed under the lock, told once it is let go (a change is published, and what hears it
 * may ask the table again). */
typedef struct change {
    int64_t agent_id;
    kf_presence_status_t status;
} change_t;

typedef struct changes {
    change_t few[8];
    change_t *items; /* few, or malloc'd when more changed at once */
    size_t count, cap;
} changes_t;

static void changes_init(changes_t *c)
{
    c->items = c->few;
    c->count = 0;
    c->cap = sizeof c->few / sizeof c->few[0];
}

static void changes_add(changes_t *c, int64_t agent_id, kf_presence_status_t status)
{
    if (c->count == c->cap) {
        change_t *more = kf_xmalloc(2 * c->cap * sizeof *more);
        memcpy(more, c->items, c->count * sizeof *more);
        if (c->items != c->few)
            free(c->items);
        c->items = more;
        c->cap *= 2;
    }
    c->items[c->count++] = (change_t){agent_id, status};
}

/* Unlocks the table, then tells presence's owner each change. */
static void unlock_and_tell(kf_presence_t *presence, changes_t *c)
{
    pthread_mutex_unlock(&presence->table->lock);
    for (size_t i = 0; i < c->count; i++) {
        if (presence->changed != NULL)
            presence->changed(presence->ctx, c->items[i].agent_id, c->items[i].status);
    }
    if (c->items != c->few)
        free(c->items);
}

static kf_presence_t *handle_on(table_t *table, kf_presence_changed_fn changed, void *ctx)
{
    kf_presence_t *presence = kf_xcalloc(1, sizeof *presence);
    presence->table = table;
    presence->changed = changed;
    presence->ctx = ctx;
    atomic_fetch_add(&table->refs, 1);
    return presence;
}

kf_presence_t *kf_presence_new(uint64_t offline_after_ms, kf_presence_changed_fn changed, void *ctx)
{
    table_t *table = kf_xcalloc(1, sizeof *table);
    kf_map_init(&table->agents);
    table->offline_after_ms = offline_after_ms;
    pthread_mutex_init(&table->lock, NULL);
    atomic_init(&table->refs, 0);
    return handle_on(table, changed, ctx);
}

kf_presence_t *kf_presence_share(kf_presence_t *presence, kf_presence_changed_fn changed, void *ctx)
{
    return handle_on(presence->table, changed, ctx);
}

static void free_agent(kf_map_node_t *node)
{
    free(KF_CONTAINER_OF(node, agent_t, node));
}

void kf_presence_free(kf_presence_t *presence)
{
    if (presence == NULL)
        return;
    table_t *table = presence->table;
    free(presence);
    if (atomic_fetch_sub(&table->refs, 1) > 1)
        return;
    kf_map_clear(&table->agents, free_agent);
    pthread_mutex_destroy(&table->lock);
    free(table);
}

static bool agent_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    return len == sizeof(int64_t) &&
           memcmp(&KF_CONTAINER_OF(node, agent_t, node)->id, key, len) == 0;
}

static agent_t *find(const table_t *table, int64_t id)
{
    uint64_t hash = kf_map_hash(&table->agents, &id, sizeof id);
    kf_map_node_t *node = kf_map_find(&table->agents, hash, &id, sizeof id, agent_eq);
    return node != NULL ? KF_CONTAINER_OF(node, agent_t, node) : NULL;
}

/* The agent's entry, made (offline, choosing online) when there is none. */
static agent_t *entry(table_t *table, int64_t id)
{
    agent_t *agent = find(table, id);
    if (agent == NULL) {
        agent = kf_xcalloc(1, sizeof *agent);
        agent->id = id;
        agent->chosen = KF_PRESENCE_ONLINE;
        agent->shown = KF_PRESENCE_OFFLINE;
        kf_map_insert(&table->agents, &agent->node, kf_map_hash(&table->agents, &id, sizeof id));
    }
    return agent;
}

static void show(table_t *table, agent_t *agent, kf_presence_status_t status, changes_t *c)
{
    if (agent->shown == status)
        return;
    table->online -= agent->shown == KF_PRESENCE_ONLINE;
    table->online += status == KF_PRESENCE_ONLINE;
    agent->shown = status;
    changes_add(c, agent->id, status);
}

void kf_presence_seen(kf_presence_t *presence, int64_t agent_id, uint64_t now)
{
    table_t *table = presence->table;
    changes_t c;
    changes_init(&c);
    pthread_mutex_lock(&table->lock);
    agent_t *agent = entry(table, agent_id);
    /* 0 means "not seen": a loop that started less than a millisecond ago still counts. */
    agent->last_seen = now > 0 ? now : 1;
    agent->here_seen = agent->last_seen;
    show(table, agent, agent->chosen, &c);
    unlock_and_tell(presence, &c);
}

void kf_presence_seen_elsewhere(kf_presence_t *presence, int64_t agent_id, uint64_t now)
{
    table_t *table = presence->table;
    changes_t c;
    changes_init(&c);
    pthread_mutex_lock(&table->lock);
    agent_t *agent = entry(table, agent_id);
    agent->last_seen = now > 0 ? now : 1;
    show(table, agent, agent->chosen, &c);
    unlock_and_tell(presence, &c);
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

/* fn runs under the table's lock: it only collects ids (kf_nodes_tell_here). */
void kf_presence_each_here(kf_presence_t *presence, uint64_t now, uint64_t within_ms,
                           kf_presence_each_fn fn, void *ctx)
{
    each_here_t each = {now, within_ms, fn, ctx};
    pthread_mutex_lock(&presence->table->lock);
    kf_map_each(&presence->table->agents, each_here_agent, &each);
    pthread_mutex_unlock(&presence->table->lock);
}

int kf_presence_choose(kf_presence_t *presence, int64_t agent_id, kf_presence_status_t status)
{
    if (status != KF_PRESENCE_ONLINE && status != KF_PRESENCE_AWAY)
        return KF_EINVAL;
    table_t *table = presence->table;
    changes_t c;
    changes_init(&c);
    pthread_mutex_lock(&table->lock);
    agent_t *agent = entry(table, agent_id);
    agent->chosen = status;
    if (agent->shown != KF_PRESENCE_OFFLINE)
        show(table, agent, status, &c);
    unlock_and_tell(presence, &c);
    return 0;
}

void kf_presence_left(kf_presence_t *presence, int64_t agent_id)
{
    pthread_mutex_lock(&presence->table->lock);
    agent_t *agent = find(presence->table, agent_id);
    if (agent != NULL)
        agent->last_seen = agent->here_seen = 0;
    pthread_mutex_unlock(&presence->table->lock);
}

void kf_presence_drop(kf_presence_t *presence, int64_t agent_id)
{
    table_t *table = presence->table;
    changes_t c;
    changes_init(&c);
    pthread_mutex_lock(&table->lock);
    agent_t *agent = find(table, agent_id);
    if (agent != NULL) {
        agent->last_seen = agent->here_seen = 0;
        agent->chosen = KF_PRESENCE_ONLINE;
        show(table, agent, KF_PRESENCE_OFFLINE, &c);
    }
    unlock_and_tell(presence, &c);
}

typedef struct sweep {
    table_t *table;
    uint64_t now;
    kf_presence_open_fn open;
    void *ctx;
    changes_t *changes;
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
        agent->last_seen == 0 || sweep->now - agent->last_seen >= sweep->table->offline_after_ms;
    if (gone)
        show(sweep->table, agent, KF_PRESENCE_OFFLINE, sweep->changes);
}

void kf_presence_sweep(kf_presence_t *presence, uint64_t now, kf_presence_open_fn open, void *ctx)
{
    changes_t c;
    changes_init(&c);
    sweep_t sweep = {presence->table, now, open, ctx, &c};
    pthread_mutex_lock(&presence->table->lock);
    kf_map_each(&presence->table->agents, sweep_agent, &sweep);
    unlock_and_tell(presence, &c);
}

kf_presence_status_t kf_presence_status(const kf_presence_t *presence, int64_t agent_id)
{
    pthread_mutex_lock(&presence->table->lock);
    const agent_t *agent = find(presence->table, agent_id);
    kf_presence_status_t status = agent != NULL ? agent->shown : KF_PRESENCE_OFFLINE;
    pthread_mutex_unlock(&presence->table->lock);
    return status;
}

size_t kf_presence_online(const kf_presence_t *presence)
{
    pthread_mutex_lock(&presence->table->lock);
    size_t online = presence->table->online;
    pthread_mutex_unlock(&presence->table->lock);
    return online;
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
