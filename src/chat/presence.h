/* presence.h: whether each agent is online, away or offline, as the team sees it. An agent
 * chooses online or away (POST /api/agent/status); the choice shows while the agent has a
 * console open — a push connection open now, or a push request within the last offline_after_ms
 * (a short poll comes every few seconds) — and offline otherwise, so that a closed tab or a lost
 * laptop goes offline by itself. Kept in memory: after a restart every agent starts offline and
 * online again at its console's first push request (its choice of away is not kept). The loops
 * of one process (kefu --loops) share one table, each through its own handle (kf_presence_share),
 * so that an agent is online whichever loop its console's connections landed on: any loop
 * thread, each with its own handle; changed is called on the thread that made the change, after
 * the table's lock is let go. */
#ifndef KF_CHAT_PRESENCE_H
#define KF_CHAT_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    KF_PRESENCE_OFFLINE,
    KF_PRESENCE_ONLINE,
    KF_PRESENCE_AWAY,
} kf_presence_status_t;

typedef struct kf_presence kf_presence_t;

/* Told each change of an agent's shown status, once. */
typedef void (*kf_presence_changed_fn)(void *ctx, int64_t agent_id, kf_presence_status_t status);
/* How many push connections the agent holds open now. */
typedef size_t (*kf_presence_open_fn)(void *ctx, int64_t agent_id);

kf_presence_t *kf_presence_new(uint64_t offline_after_ms, kf_presence_changed_fn changed,
                               void *ctx);
/* Another handle on presence's table, whose changes are told to changed(ctx): for another loop
 * (made before that loop's thread runs). */
kf_presence_t *kf_presence_share(kf_presence_t *presence, kf_presence_changed_fn changed,
                                 void *ctx);
/* Frees the handle; the table goes with the last one. */
void kf_presence_free(kf_presence_t *presence);
/* The agent's console made a push request at now (monotonic ms): an offline agent shows its
 * choice again. */
void kf_presence_seen(kf_presence_t *presence, int64_t agent_id, uint64_t now);
/* Another node says the agent's console is open there (chat/nodes.c, at each of its sweeps):
 * shown as chosen, as for a push request here, but not told on by this node, so that a console
 * that goes away anywhere goes offline everywhere offline_after_ms after its node last spoke. */
void kf_presence_seen_elsewhere(kf_presence_t *presence, int64_t agent_id, uint64_t now);

/* Told, for kf_presence_each_here, each agent whose console this node has seen. */
typedef void (*kf_presence_each_fn)(void *ctx, int64_t agent_id);

/* Calls fn for each agent shown online or away whose console this node itself saw within
 * within_ms of now (a push request here, or a connection open at a sweep here): what this node
 * tells the others. A window of about one sweep keeps a console that went away on another node
 * shown no longer than one that went away here. */
void kf_presence_each_here(kf_presence_t *presence, uint64_t now, uint64_t within_ms,
                           kf_presence_each_fn fn, void *ctx);

/* The agent chooses online or away (KF_EINVAL for offline: that is not a choice). Shown at once
 * when the agent is not offline. */
int kf_presence_choose(kf_presence_t *presence, int64_t agent_id, kf_presence_status_t status);
/* The agent logged out of one session: from now its open connections alone keep it on. */
void kf_presence_left(kf_presence_t *presence, int64_t agent_id);
/* The agent was disabled: offline at once, and its choice forgotten. */
void kf_presence_drop(kf_presence_t *presence, int64_t agent_id);
/* Every few seconds: agents with a connection open count as seen now; those seen last
 * offline_after_ms ago or more go offline. */
void kf_presence_sweep(kf_presence_t *presence, uint64_t now, kf_presence_open_fn open, void *ctx);
/* What the team sees of the agent now. */
kf_presence_status_t kf_presence_status(const kf_presence_t *presence, int64_t agent_id);
/* How many agents are shown online now (away ones do not count: they are not answering). */
size_t kf_presence_online(const kf_presence_t *presence);
/* "online", "away" or "offline". */
const char *kf_presence_name(kf_presence_status_t status);
/* The status named name (online or away: what an agent may choose), or KF_EINVAL. */
int kf_presence_parse(const char *name, kf_presence_status_t *out);

#endif
