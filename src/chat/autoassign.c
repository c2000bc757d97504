/* autoassign.c: automatic assignment (chat/autoassign.h): the choice, and the engine that looks
 * at the desk. A look is a chain of store callbacks: the agents, the teams, each automatic team's
 * unassigned open conversations; then one conditional write per conversation, one after another
 * (each moves an agent's count, which the next choice needs). Looks never overlap: a kick during
 * one asks for another after it. What the engine keeps in memory (each team's last choice, the
 * assignees whose answer is awaited) is lost on a restart: the turn starts again at the lowest
 * id, and a conversation assigned before the restart keeps its assignee. */
#include "chat/autoassign.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "chat/events.h"
#include "chat/internal.h"
#include "chat/nodes.h"

/* How often the engine looks while it has something to watch. */
#define LOOK_MS 1000
/* Conversations one look takes from one team: the rest wait for the next look, a second on. */
#define PER_TEAM 50

int kf_autoassign_parse(const char *name, kf_autoassign_mode_t *out)
{
    static const char *const names[] = {"off", "round_robin", "least_busy"};
    for (int i = 0; name != NULL && i < 3; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (kf_autoassign_mode_t)i;
            return 0;
        }
    }
    return KF_EINVAL;
}

/* Whether a is before b in the turn that starts after last: ids above last ascending, then the
 * rest ascending. */
static bool before_in_turn(int64_t a, int64_t b, int64_t last)
{
    bool a_after = a > last, b_after = b > last;
    if (a_after != b_after)
        return a_after;
    return a < b;
}

int64_t kf_autoassign_pick(kf_autoassign_mode_t mode, const kf_autoassign_candidate_t *candidates,
                           size_t count, int64_t last_agent_id, int64_t exclude_agent_id)
{
    const kf_autoassign_candidate_t *best = NULL;
    if (mode == KF_AUTOASSIGN_OFF)
        return 0;
    for (size_t i = 0; i < count; i++) {
        const kf_autoassign_candidate_t *c = &candidates[i];
        bool eligible = c->online && c->agent_id > 0 && c->agent_id != exclude_agent_id &&
                        (c->capacity <= 0 || c->open < c->capacity);
        if (!eligible)
            continue;
        if (best == NULL || (mode == KF_AUTOASSIGN_LEAST_BUSY && c->open < best->open)) {
            best = c;
        } else if ((mode == KF_AUTOASSIGN_ROUND_ROBIN || c->open == best->open) &&
                   before_in_turn(c->agent_id, best->agent_id, last_agent_id)) {
            best = c;
        }
    }
    return best != NULL ? best->agent_id : 0;
}

/* ---- the engine ---- */

typedef struct agent_row {
    int64_t id;
    bool disabled;
    int64_t open;
    int64_t capacity;
} agent_row_t;

typedef struct team_row {
    int64_t id;
    kf_autoassign_mode_t mode;
    int64_t reassign_after_ms; /* 0: never */
    int64_t *members;
    size_t member_count;
} team_row_t;

/* A conversation to assign, or to take from an assignee who has not answered. */
typedef struct job {
    int64_t conversation_id;
    int64_t team_id;
    int64_t from_agent_id; /* 0: it is unassigned */
} job_t;

/* An automatic assignee whose answer is awaited. */
typedef struct awaited {
    int64_t conversation_id;
    int64_t team_id;
    int64_t agent_id;
    uint64_t since; /* monotonic ms */
} awaited_t;

/* A team's last choice, where its next turn starts. */
typedef struct turn {
    int64_t team_id;
    int64_t last_agent_id;
} turn_t;

/* Whether some team assigns automatically or an answer is awaited, so that news is worth
 * passing on: set by the engine that looks, read by the other loops' (each loop frees its own
 * engine when it stops, in any order: the last one frees this). */
typedef struct activity {
    atomic_bool active;
    atomic_int refs;
} activity_t;

struct kf_autoassign {
    kf_app_t *app;
    /* Passes its news on to the engine of another loop of the process, which looks at the desk
     * for every loop (chat/nodes.h), and keeps nothing itself; false: this engine looks. */
    bool passes_on;
    activity_t *activity; /* the looking engine's, shared with the others */
    uv_timer_t *timer;
    bool looking;  /* a look is under way */
    bool again;    /* a kick came during it */
    bool watching; /* the last look saw an automatic team: look every LOOK_MS */
    bool kicked;   /* a look is due in a moment (a kick's) */
    /* The look under way. */
    agent_row_t *agents;
    size_t agent_count, agent_cap;
    team_row_t *teams;
    size_t team_count, team_cap;
    size_t team_at; /* the team whose conversations are being listed */
    job_t *jobs;
    size_t job_count, job_cap;
    size_t job_at;     /* the job being written */
    int64_t job_agent; /* whom it went to */
    /* Kept between looks. */
    awaited_t *awaited;
    size_t awaited_count, awaited_cap;
    turn_t *turns;
    size_t turn_count, turn_cap;
};

/* Makes room for one more in an array of n elements of size bytes, cap of them. */
static void *grow(void *array, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return array;
    *cap = *cap > 0 ? *cap * 2 : 8;
    void *bigger = realloc(array, *cap * size);
    if (bigger == NULL)
        abort();
    return bigger;
}

static void look(kf_autoassign_t *e);

static void look_ended(kf_autoassign_t *e)
{
    for (size_t i = 0; i < e->team_count; i++)
        free(e->teams[i].members);
    e->team_count = 0;
    e->agent_count = 0;
    e->job_count = 0;
    e->looking = false;
    if (e->again) {
        e->again = false;
        look(e);
    }
}

static agent_row_t *find_agent(kf_autoassign_t *e, int64_t id)
{
    for (size_t i = 0; i < e->agent_count; i++)
        if (e->agents[i].id == id)
            return &e->agents[i];
    return NULL;
}

static team_row_t *find_team(kf_autoassign_t *e, int64_t id)
{
    for (size_t i = 0; i < e->team_count; i++)
        if (e->teams[i].id == id)
            return &e->teams[i];
    return NULL;
}

static turn_t *find_turn(kf_autoassign_t *e, int64_t team_id)
{
    for (size_t i = 0; i < e->turn_count; i++)
        if (e->turns[i].team_id == team_id)
            return &e->turns[i];
    e->turns = grow(e->turns, e->turn_count, &e->turn_cap, sizeof *e->turns);
    e->turns[e->turn_count] = (turn_t){team_id, 0};
    return &e->turns[e->turn_count++];
}

static void forget_awaited(kf_autoassign_t *e, int64_t conversation_id)
{
    for (size_t i = 0; i < e->awaited_count; i++) {
        if (e->awaited[i].conversation_id == conversation_id) {
            e->awaited[i] = e->awaited[--e->awaited_count];
            return;
        }
    }
}

/* Whom job's conversation goes to now, or 0. */
static int64_t choose(kf_autoassign_t *e, const job_t *job)
{
    team_row_t *team = find_team(e, job->team_id);
    if (team == NULL || team->member_count == 0)
        return 0;
    kf_autoassign_candidate_t *candidates = kf_xcalloc(team->member_count, sizeof *candidates);
    for (size_t i = 0; i < team->member_count; i++) {
        agent_row_t *a = find_agent(e, team->members[i]);
        candidates[i].agent_id = team->members[i];
        if (a == NULL)
            continue;
        candidates[i].online =
            !a->disabled && kf_presence_status(e->app->presence, a->id) == KF_PRESENCE_ONLINE;
        candidates[i].open = a->open;
        candidates[i].capacity = a->capacity;
    }
    int64_t chosen = kf_autoassign_pick(team->mode, candidates, team->member_count,
                                        find_turn(e, team->id)->last_agent_id, job->from_agent_id);
    free(candidates);
    return chosen;
}

static void next_job(kf_autoassign_t *e);

static void assigned_cb(void *ctx, const kf_store_result_t *r)
{
    kf_autoassign_t *e = ctx;
    const job_t *job = &e->jobs[e->job_at];
    if (job->from_agent_id != 0)
        forget_awaited(e, job->conversation_id);
    if (r->rc == 0) {
        agent_row_t *to = find_agent(e, e->job_agent);
        agent_row_t *from = find_agent(e, job->from_agent_id);
        if (to != NULL)
            to->open++;
        if (from != NULL && from->open > 0)
            from->open--;
        find_turn(e, job->team_id)->last_agent_id = e->job_agent;
        team_row_t *team = find_team(e, job->team_id);
        if (team != NULL && team->reassign_after_ms > 0) {
            e->awaited = grow(e->awaited, e->awaited_count, &e->awaited_cap, sizeof *e->awaited);
            e->awaited[e->awaited_count++] =
                (awaited_t){job->conversation_id, job->team_id, e->job_agent, kf_clock_mono_ms()};
        }
        kf_chat_publish_conversation(e->app->store, e->app->hub, job->conversation_id, false);
        kf_chat_hook_conversation(e->app, job->conversation_id, KF_HOOK_ASSIGNED);
    }
    /* KF_ECONFLICT: someone claimed it, it was resolved or moved, the agent filled up meanwhile;
     * the next look sees the desk as it is. */
    e->job_at++;
    next_job(e);
}

static void next_job(kf_autoassign_t *e)
{
    kf_store_t *store = e->app->store;
    for (; e->job_at < e->job_count; e->job_at++) {
        const job_t *job = &e->jobs[e->job_at];
        e->job_agent = choose(e, job);
        if (e->job_agent == 0)
            continue; /* nobody eligible: an awaited assignee keeps it meanwhile */
        if (store->ops->conversation_autoassign(store, job->conversation_id, job->team_id,
                                                job->from_agent_id, e->job_agent, assigned_cb,
                                                e) == 0)
            return;
    }
    look_ended(e);
}

static void list_team(kf_autoassign_t *e);

static int unassigned_cb(void *ctx, const kf_conversation_t *c)
{
    kf_autoassign_t *e = ctx;
    e->jobs = grow(e->jobs, e->job_count, &e->job_cap, sizeof *e->jobs);
    e->jobs[e->job_count++] = (job_t){c->id, c->team_id, 0};
    return 0;
}

static void unassigned_done_cb(void *ctx, const kf_store_result_t *r)
{
    kf_autoassign_t *e = ctx;
    (void)r; /* a failed read: that team waits for the next look */
    e->team_at++;
    list_team(e);
}

/* Lists the next automatic team's unassigned conversations, then writes the jobs. */
static void list_team(kf_autoassign_t *e)
{
    kf_store_t *store = e->app->store;
    for (; e->team_at < e->team_count; e->team_at++) {
        kf_conversation_page_t page = {
            .limit = PER_TEAM,
            .view = KF_VIEW_UNASSIGNED,
            .team_id = e->teams[e->team_at].id,
        };
        if (store->ops->conversation_list(store, &page, unassigned_cb, unassigned_done_cb, e) == 0)
            return;
    }
    /* The awaited assignees whose time is up go to someone else, after the unassigned ones. */
    uint64_t now = kf_clock_mono_ms();
    for (size_t i = 0; i < e->awaited_count; i++) {
        const awaited_t *a = &e->awaited[i];
        team_row_t *team = find_team(e, a->team_id);
        if (team == NULL || team->reassign_after_ms == 0) {
            e->awaited[i--] = e->awaited[--e->awaited_count]; /* no longer automatic */
            continue;
        }
        if (now - a->since < (uint64_t)team->reassign_after_ms)
            continue;
        e->jobs = grow(e->jobs, e->job_count, &e->job_cap, sizeof *e->jobs);
        e->jobs[e->job_count++] = (job_t){a->conversation_id, a->team_id, a->agent_id};
    }
    e->job_at = 0;
    next_job(e);
}

static int team_cb(void *ctx, const kf_team_t *team)
{
    kf_autoassign_t *e = ctx;
    kf_autoassign_mode_t mode;
    if (kf_autoassign_parse(team->auto_assign, &mode) != 0 || mode == KF_AUTOASSIGN_OFF)
        return 0;
    e->teams = grow(e->teams, e->team_count, &e->team_cap, sizeof *e->teams);
    team_row_t *row = &e->teams[e->team_count++];
    row->id = team->id;
    row->mode = mode;
    row->reassign_after_ms = team->reassign_after * 1000;
    row->member_count = team->member_count;
    row->members =
        kf_xcalloc(team->member_count > 0 ? team->member_count : 1, sizeof *row->members);
    if (team->member_count > 0)
        memcpy(row->members, team->member_ids, team->member_count * sizeof *row->members);
    return 0;
}

static void teams_done_cb(void *ctx, const kf_store_result_t *r)
{
    kf_autoassign_t *e = ctx;
    e->watching = r->rc != 0 || e->team_count > 0 || e->awaited_count > 0;
    atomic_store(&e->activity->active, e->watching);
    if (r->rc != 0) {
        look_ended(e);
        return;
    }
    e->team_at = 0;
    list_team(e);
}

static int agent_cb(void *ctx, const kf_agent_t *agent)
{
    kf_autoassign_t *e = ctx;
    e->agents = grow(e->agents, e->agent_count, &e->agent_cap, sizeof *e->agents);
    e->agents[e->agent_count++] = (agent_row_t){agent->id, agent->disabled_at != 0,
                                                agent->open_conversations, agent->capacity};
    return 0;
}

static void agents_done_cb(void *ctx, const kf_store_result_t *r)
{
    kf_autoassign_t *e = ctx;
    kf_store_t *store = e->app->store;
    if (r->rc != 0 || store->ops->team_list(store, team_cb, teams_done_cb, e) != 0)
        look_ended(e);
}

static void look(kf_autoassign_t *e)
{
    if (e->looking) {
        e->again = true;
        return;
    }
    kf_store_t *store = e->app->store;
    e->looking = store->ops->agent_list(store, agent_cb, agents_done_cb, e) == 0;
}

static void timer_cb(uv_timer_t *timer)
{
    kf_autoassign_t *e = timer->data;
    e->kicked = false;
    if (e->watching || e->awaited_count > 0)
        look(e);
}

kf_autoassign_t *kf_autoassign_new(kf_app_t *app, kf_autoassign_t *primary)
{
    kf_autoassign_t *e = kf_xcalloc(1, sizeof *e);
    e->app = app;
    if (primary != NULL) {
        e->passes_on = true;
        e->activity = primary->activity;
        atomic_fetch_add(&e->activity->refs, 1);
        return e;
    }
    e->activity = kf_xcalloc(1, sizeof *e->activity);
    atomic_init(&e->activity->active, true);
    atomic_init(&e->activity->refs, 1);
    e->watching = true; /* at start: whatever waits from before */
    e->timer = kf_xcalloc(1, sizeof *e->timer);
    uv_timer_init(app->loop, e->timer);
    e->timer->data = e;
    uv_timer_start(e->timer, timer_cb, 0, LOOK_MS);
    uv_unref((uv_handle_t *)e->timer);
    return e;
}

static void free_timer_cb(uv_handle_t *handle)
{
    free(handle);
}

void kf_autoassign_free(kf_autoassign_t *e)
{
    if (e == NULL)
        return;
    if (e->timer != NULL)
        uv_close((uv_handle_t *)e->timer, free_timer_cb);
    if (atomic_fetch_sub(&e->activity->refs, 1) == 1)
        free(e->activity);
    for (size_t i = 0; i < e->team_count; i++)
        free(e->teams[i].members);
    free(e->agents);
    free(e->teams);
    free(e->jobs);
    free(e->awaited);
    free(e->turns);
    free(e);
}

/* A look in a moment: a burst of kicks (a team's members set, then its mode) is one look, and
 * a steady stream of them (visitors writing) cannot put it off, since a kick already due stays
 * due. */
static void look_soon(kf_autoassign_t *e)
{
    if (e->kicked)
        return;
    e->kicked = true;
    uv_timer_start(e->timer, timer_cb, 10, LOOK_MS);
}

/* Passes news on to the primary engine, when it wants it (always, for a team's change). */
static bool passed_on(kf_autoassign_t *e, const char *what, int64_t conversation_id,
                      int64_t agent_id, bool always)
{
    if (!e->passes_on)
        return false;
    if (always || atomic_load(&e->activity->active))
        kf_nodes_tell_autoassign(e->app, what, conversation_id, agent_id);
    return true;
}

void kf_autoassign_kick(kf_autoassign_t *e)
{
    /* Without an automatic team nothing but a team's change can make a look useful: a desk
     * without them pays nothing per message. */
    if (e == NULL || passed_on(e, "kick", 0, 0, false))
        return;
    if (e->watching || e->awaited_count > 0)
        look_soon(e);
}

void kf_autoassign_teams_changed(kf_autoassign_t *e)
{
    if (e == NULL || passed_on(e, "teams", 0, 0, true))
        return;
    e->watching = true;
    atomic_store(&e->activity->active, true);
    look_soon(e);
}

void kf_autoassign_heard(kf_autoassign_t *e, const char *what, int64_t conversation_id,
                         int64_t agent_id)
{
    if (e == NULL || e->passes_on)
        return; /* news for the engine that looks */
    if (strcmp(what, "kick") == 0)
        kf_autoassign_kick(e);
    else if (strcmp(what, "teams") == 0)
        kf_autoassign_teams_changed(e);
    else if (strcmp(what, "replied") == 0)
        kf_autoassign_replied(e, conversation_id, agent_id);
}

void kf_autoassign_replied(kf_autoassign_t *e, int64_t conversation_id, int64_t agent_id)
{
    if (e == NULL || passed_on(e, "replied", conversation_id, agent_id, false))
        return;
    for (size_t i = 0; i < e->awaited_count; i++) {
        if (e->awaited[i].conversation_id == conversation_id &&
            e->awaited[i].agent_id == agent_id) {
            e->awaited[i] = e->awaited[--e->awaited_count];
            return;
        }
    }
}
