/* teams_api.c: teams (docs/API.md, "Teams"): every agent reads them, admins make and change them
 * and set their members. The form of a name and of the settings is checked here; a name's
 * uniqueness and the members' standing in the store's write (store/store.h), so that two
 * requests at once cannot both take one name. Every change is pushed to every console as a
 * "team" event, and may start automatic assignment (chat/autoassign.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/str.h"
#include "chat/events.h"
#include "chat/handlers.h"
#include "chat/internal.h"

/* Longest team name, in code points. */
#define MAX_TEAM_NAME_CHARS 80
/* The longest reassign_after: a day; past that, nobody is waiting. */
#define MAX_REASSIGN_AFTER (24 * 3600)
/* The most members one request may set: past any team. */
#define MAX_MEMBERS 1000

#define NAME_RULE "name must be 1 to 80 characters"
#define MODE_RULE "auto_assign must be one of off, round_robin, least_busy"
#define REASSIGN_RULE "reassign_after must be a whole number of seconds from 0 (never) to 86400"
#define MEMBERS_RULE "agent_ids must be an array of agents' ids"

/* A team as the API shows it: its members as agent ids. */
static json_t *team_json(const kf_team_t *team)
{
    json_t *members = json_array();
    for (size_t i = 0; i < team->member_count; i++)
        json_array_append_new(members, json_integer((json_int_t)team->member_ids[i]));
    return json_pack("{s:I,s:s,s:s,s:I,s:o,s:I}", "id", (json_int_t)team->id, "name", team->name,
                     "auto_assign", team->auto_assign, "reassign_after",
                     (json_int_t)team->reassign_after, "members", members, "created_at",
                     (json_int_t)team->created_at);
}

/* ---- the list ---- */

static int listed_cb(void *ctx, const kf_team_t *team)
{
    kf_list_wait_t *w = ctx;
    json_array_append_new(w->items, team_json(team));
    return 0;
}

void kf_teams_get(const kf_call_t *call)
{
    kf_store_t *store = call->app->store;
    kf_list_wait_t *w = kf_call_list_new("teams", NULL);
    kf_call_list_hold(call->req, w, store->ops->team_list(store, listed_cb, kf_call_list_done, w));
}

/* ---- changes ---- */

/* A write on its way: what to answer with (201 for a new team), and the name it asked for, to
 * name in a conflict. */
typedef struct change_wait {
    kf_wait_t base;
    kf_app_t *app;
    int status;
    char name[4 * MAX_TEAM_NAME_CHARS + 1];
} change_wait_t;

/* Stored, the team is news for every console whether the caller still waits or not. */
static void changed_cb(void *ctx, const kf_store_result_t *r)
{
    change_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (r->rc == 0 && r->team != NULL) {
        json_t *event = json_pack("{s:s,s:o}", "type", "team", "team", team_json(r->team));
        kf_chat_publish(w->app->hub, 0, true, kf_chat_event(0, event));
        kf_autoassign_teams_changed(w->app->autoassign);
    }
    if (req != NULL && r->rc == KF_EEXISTS) {
        char message[400];
        snprintf(message, sizeof message, "a team named \"%s\" exists", w->name);
        kf_call_fail(req, KF_EEXISTS, message);
    } else if (req != NULL && r->rc == KF_ENOTFOUND) {
        kf_call_fail(req, KF_ENOTFOUND, "no such team");
    } else if (req != NULL && r->rc == KF_EINVAL) {
        kf_call_fail(req, KF_EINVAL, "every member must be an enabled agent");
    } else if (req != NULL && r->rc != 0) {
        kf_call_fail(req, r->rc, NULL);
    } else if (req != NULL) {
        kf_resp_json(req, w->status, json_pack("{s:o}", "team", team_json(r->team)));
    }
    free(w);
}

/* The first field of root not in fields (NULL-terminated), or NULL. */
static const char *unknown_field(json_t *root, const char *const *fields)
{
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        bool known = false;
        for (size_t i = 0; fields[i] != NULL; i++)
            known = known || strcmp(key, fields[i]) == 0;
        if (!known)
            return key;
    }
    return NULL;
}

/* Reads a team's fields from root into change (the name trimmed into *name_out, which the caller
 * frees): NULL, or why not (the code in *rc; an unknown field's message is written in message). */
static const char *read_team(json_t *root, kf_team_change_t *change, char **name_out, int *rc,
                             char message[128])
{
    static const char *const fields[] = {"name", "auto_assign", "reassign_after", NULL};
    const char *unknown = unknown_field(root, fields);
    *rc = KF_EPROTO;
    if (unknown != NULL) {
        snprintf(message, 128,
                 "unknown field \"%.32s\": a team takes name, auto_assign and reassign_after",
                 unknown);
        return message;
    }
    json_t *name = json_object_get(root, "name");
    json_t *mode = json_object_get(root, "auto_assign");
    json_t *after = json_object_get(root, "reassign_after");
    kf_autoassign_mode_t parsed;
    if (mode != NULL && kf_autoassign_parse(json_string_value(mode), &parsed) != 0)
        return MODE_RULE;
    if (after != NULL && (!json_is_integer(after) || json_integer_value(after) < 0 ||
                          json_integer_value(after) > MAX_REASSIGN_AFTER))
        return REASSIGN_RULE;
    *rc = KF_EINVAL;
    if (name != NULL) {
        if (!json_is_string(name))
            return NAME_RULE;
        *name_out = kf_trim_copy(json_string_value(name));
        size_t chars = kf_utf8_length(*name_out);
        if (chars == 0 || chars > MAX_TEAM_NAME_CHARS)
            return NAME_RULE;
    }
    change->name = *name_out;
    change->auto_assign = json_string_value(mode);
    change->reassign_after = after != NULL ? json_integer_value(after) : -1;
    *rc = 0;
    return NULL;
}

/* A team write's common path: fields read, then queue (create or update). */
static void team_write(const kf_call_t *call, bool create)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    kf_team_change_t change = {.reassign_after = -1};
    char *name = NULL;
    int rc = 0;
    char message[128];
    const char *why = read_team(root, &change, &name, &rc, message);
    if (why == NULL && create && change.name == NULL) {
        rc = KF_EINVAL;
        why = NAME_RULE;
    } else if (why == NULL && !create && change.name == NULL && change.auto_assign == NULL &&
               change.reassign_after == -1) {
        rc = KF_EINVAL;
        why = "nothing to change: give name, auto_assign or reassign_after";
    }
    if (why != NULL) {
        free(name);
        json_decref(root);
        kf_call_fail(req, rc, why);
        return;
    }
    change_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    w->status = create ? 201 : 200;
    snprintf(w->name, sizeof w->name, "%s", name != NULL ? name : "");
    if (create)
        rc = app->store->ops->team_create(app->store, &change, kf_clock_wall_ms(), changed_cb, w);
    else
        rc = app->store->ops->team_update(app->store, call->ids[0], &change, changed_cb, w);
    free(name);
    json_decref(root);
    kf_call_hold(req, w, rc);
}

void kf_teams_post(const kf_call_t *call)
{
    team_write(call, true);
}

void kf_teams_patch(const kf_call_t *call)
{
    team_write(call, false);
}

void kf_team_members_put(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    static const char *const fields[] = {"agent_ids", NULL};
    json_t *ids = json_object_get(root, "agent_ids");
    const char *why = NULL;
    if (unknown_field(root, fields) != NULL || !json_is_array(ids) ||
        json_array_size(ids) > MAX_MEMBERS)
        why = MEMBERS_RULE;
    size_t count = json_is_array(ids) ? json_array_size(ids) : 0;
    int64_t *agent_ids = kf_xcalloc(count > 0 ? count : 1, sizeof *agent_ids);
    for (size_t i = 0; why == NULL && i < count; i++) {
        json_t *id = json_array_get(ids, i);
        if (!json_is_integer(id) || json_integer_value(id) < 1)
            why = MEMBERS_RULE;
        else
            agent_ids[i] = json_integer_value(id);
    }
    json_decref(root);
    if (why != NULL) {
        free(agent_ids);
        kf_call_fail(req, KF_EPROTO, why);
        return;
    }
    change_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    w->status = 200;
    int rc = app->store->ops->team_set_members(app->store, call->ids[0], agent_ids, count,
                                               changed_cb, w);
    free(agent_ids);
    kf_call_hold(req, w, rc);
}
