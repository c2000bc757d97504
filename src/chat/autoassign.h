/* autoassign.h: automatic assignment, a per-team setting (docs/API.md, "Teams"): a team's open,
 * unassigned conversations go to its members who are online and under capacity, in turn
 * (round_robin) or to the one holding fewest (least_busy); an assignee who has not answered within
 * the team's reassign_after seconds loses the conversation to the next eligible member. The
 * choice is a pure function (kf_autoassign_pick) that tests drive directly; the engine reads the
 * desk from the store, and every assignment is the store's conditional write
 * (conversation_autoassign), so that a racing claim or a second engine can neither assign one
 * conversation twice nor push an agent over capacity. Loop thread only (each loop its own handle;
 * the first loop's looks for all). */
#ifndef KF_CHAT_AUTOASSIGN_H
#define KF_CHAT_AUTOASSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    KF_AUTOASSIGN_OFF = 0,
    KF_AUTOASSIGN_ROUND_ROBIN,
    KF_AUTOASSIGN_LEAST_BUSY,
} kf_autoassign_mode_t;

/* The mode named name ("off", "round_robin", "least_busy"), or KF_EINVAL. */
int kf_autoassign_parse(const char *name, kf_autoassign_mode_t *out);

/* One member of a team as the choice sees it. */
typedef struct kf_autoassign_candidate {
    int64_t agent_id;
    bool online;      /* shown online (not away, not offline) and not disabled */
    int64_t open;     /* unresolved conversations the agent holds */
    int64_t capacity; /* the most it may hold; 0: no cap */
} kf_autoassign_candidate_t;

/* Whom a conversation goes to among count candidates (in any order): one who is online and
 * under capacity and is not exclude_agent_id (the assignee it is taken from, 0 for none).
 * round_robin: the first such after last_agent_id (the team's previous choice, 0 for none) in
 * ascending id order, wrapping around; least_busy: the one holding fewest, ties broken in that
 * same order, so that equals take turns. 0 when nobody is eligible (or the mode is off). */
int64_t kf_autoassign_pick(kf_autoassign_mode_t mode, const kf_autoassign_candidate_t *candidates,
                           size_t count, int64_t last_agent_id, int64_t exclude_agent_id);

typedef struct kf_app kf_app_t;
typedef struct kf_autoassign kf_autoassign_t;

/* The engine of app (its loop, store, hub and presence, which must outlive it). It looks at the
 * desk at once, then every second while some team assigns automatically or an assignee's answer
 * is awaited, and soon after each kick. With primary (the first loop's engine, kefu --loops),
 * one for another loop: it never looks, and tells what it hears of (a kick, a team's change, an
 * answer) to the primary through the loops (chat/nodes.h), so that one engine keeps the turns
 * and the awaited answers of the whole process. */
kf_autoassign_t *kf_autoassign_new(kf_app_t *app, kf_autoassign_t *primary);
/* Closes its timer; the store has been flushed (no read or write of its is under way). */
void kf_autoassign_free(kf_autoassign_t *engine);
/* Something that may let a conversation be assigned has happened (a conversation got a team or
 * a visitor's message, an agent came online or freed capacity, a team changed): look soon. */
void kf_autoassign_kick(kf_autoassign_t *engine);
/* A team was made or changed: look soon, even if no team assigned automatically before. */
void kf_autoassign_teams_changed(kf_autoassign_t *engine);
/* agent_id wrote in conversation_id: an automatic assignee who answers keeps the conversation. */
void kf_autoassign_replied(kf_autoassign_t *engine, int64_t conversation_id, int64_t agent_id);
/* What another loop's (or node's) engine passed on: "kick", "teams" or "replied" (with its
 * conversation and agent). Only an engine that looks acts on it. */
void kf_autoassign_heard(kf_autoassign_t *engine, const char *what, int64_t conversation_id,
                         int64_t agent_id);

#endif
