/* agent_api.c: agents' sessions (login, the current agent, logout, push tickets), presence, and
 * accounts (every agent lists them; an admin creates, changes, disables and enables agents).
 * Password hashing runs on the hasher's worker threads (auth/hasher.h), never on the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "chat/events.h"
#include "chat/handlers.h"
#include "chat/internal.h"
#include "chat/nodes.h"

/* The highest capacity an agent may be given: past any person's desk, short of overflow. */
#define MAX_CAPACITY 10000
#define CAPACITY_RULE "capacity must be a whole number from 0 (no limit) to 10000"

/* An agent as admins see it: the agent, when it was created and whether it is disabled. */
static json_t *account_json(const kf_agent_t *agent)
{
    json_t *json = kf_chat_agent_json(agent->id, agent->email, agent->name, agent->role);
    json_object_set_new(json, "created_at", json_integer((json_int_t)agent->created_at));
    json_object_set_new(json, "disabled", json_boolean(agent->disabled_at != 0));
    json_object_set_new(json, "capacity", json_integer((json_int_t)agent->capacity));
    json_object_set_new(json, "open_conversations",
                        json_integer((json_int_t)agent->open_conversations));
    return json;
}

/* Tells every console that an account was added or changed (its name, role, or whether it may
 * sign in), so that their team lists follow without a reload. */
static void publish_account(kf_app_t *app, const kf_agent_t *agent)
{
    json_t *event = json_pack("{s:s,s:o}", "type", "agent", "agent", account_json(agent));
    kf_chat_publish(app->hub, 0, true, kf_chat_event(0, event));
}

/* A login with the right password for a disabled account: told why (the password is right, so
 * this tells nobody anything they could not know), but no session. */
static void refuse_disabled(kf_req_t *req)
{
    kf_resp_error(req, 403, "disabled", "this account is disabled");
}

static void set_session_cookie(kf_req_t *req, kf_app_t *app, const char *token, int64_t max_age_s)
{
    char cookie[256];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s",
             kf_authn_cookie_name(app->authn), token, (long long)max_age_s,
             app->config.secure_cookies ? "; Secure" : "");
    kf_resp_header(req, "Set-Cookie", cookie);
}

/* Whether value is a display name that fits: a string of at most KF_MAX_NAME_CHARS characters. */
static bool is_name(json_t *value)
{
    return json_is_string(value) && kf_utf8_length(json_string_value(value)) <= KF_MAX_NAME_CHARS;
}

static bool is_role(json_t *value)
{
    const char *role = json_string_value(value);
    return role != NULL && (strcmp(role, "admin") == 0 || strcmp(role, "agent") == 0);
}

/* An e-mail from a JSON string, lower-cased, into out; false when it is not one that fits. */
static bool read_email(json_t *value, char out[KF_MAX_EMAIL_BYTES + 1])
{
    if (!json_is_string(value) || json_string_length(value) > KF_MAX_EMAIL_BYTES)
        return false;
    snprintf(out, KF_MAX_EMAIL_BYTES + 1, "%s", json_string_value(value));
    kf_ascii_lower(out);
    return true;
}

/* ---- login ---- */

/* A login on its way: the account's row, the password's check on the hasher, the new session. */
typedef struct login_wait {
    kf_wait_t base;
    kf_app_t *app;
    char email[KF_MAX_EMAIL_BYTES + 1]; /* lower-cased */
    char address[KF_PEER_SIZE];         /* the client's, for the failure limit */
    char *password;                     /* a copy, wiped when freed */
    bool known;                         /* the e-mail is an account's */
    kf_agent_auth_t agent;
    char token[KF_TOKEN_SIZE];
} login_wait_t;

static void login_wait_free(login_wait_t *w)
{
    explicit_bzero(w->password, strlen(w->password));
    free(w->password);
    free(w);
}

static void session_created_cb(void *ctx, const kf_store_result_t *r)
{
    login_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc == KF_EFORBIDDEN) {
        refuse_disabled(req); /* disabled while its password was checked */
    } else if (req != NULL && r->rc != 0) {
        kf_call_fail(req, r->rc, NULL);
    } else if (req != NULL) {
        kf_info("agent %s logged in from %s", w->email, kf_req_peer(req));
        set_session_cookie(req, w->app, w->token, w->app->config.session_ttl_ms / 1000);
        const kf_agent_auth_t *a = &w->agent;
        kf_resp_json(req, 200,
                     json_pack("{s:o,s:s}", "agent",
                               kf_chat_agent_json(a->id, a->email, a->name, a->role), "csrf",
                               a->csrf));
    }
    login_wait_free(w);
}

/* The password was checked (on a worker thread). */
static void verified_cb(void *data, bool match)
{
    login_wait_t *w = data;
    kf_req_t *req = w->base.req;
    kf_app_t *app = w->app;
    bool ok = match && w->known;
    if (!ok) {
        /* Charged with a growing delay: each lock-out after the first lasts twice as long. And
         * charged whether the client waited or not, so that leaving does not save a try. */
        kf_limits_login_failed(app->limits, w->email, w->address);
        kf_info("failed login for %s from %s", w->email, w->address);
        if (req != NULL)
            kf_call_fail(req, KF_EAUTH, "wrong e-mail or password");
        login_wait_free(w);
        return;
    }
    kf_limits_login_succeeded(app->limits, w->email);
    kf_nodes_tell_login(app, w->agent.id, w->email);
    if (w->agent.disabled)
        kf_info("login for %s from %s refused: the account is disabled", w->email, w->address);
    if (req == NULL || w->agent.disabled) {
        if (req != NULL)
            refuse_disabled(req);
        login_wait_free(w);
        return;
    }
    char hash[KF_HASH_HEX_SIZE];
    if (kf_auth_random_token(w->token) != 0 || kf_auth_random_token(w->agent.csrf) != 0) {
        kf_call_fail(req, KF_EIO, NULL);
        login_wait_free(w);
        return;
    }
    kf_auth_sha256_hex(w->token, strlen(w->token), hash);
    /* A fresh token at every login: a session id planted before login is never adopted. */
    int64_t now = kf_clock_wall_ms();
    int rc =
        app->store->ops->session_create(app->store, hash, w->agent.id, w->agent.csrf, now,
                                        now + app->config.session_ttl_ms, session_created_cb, w);
    if (rc != 0) {
        kf_call_fail(req, rc, NULL);
        login_wait_free(w);
    }
}

/* An unknown e-mail costs one hash too, so timing does not tell which accounts exist. */
static const char dummy_hash[] =
    "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static void login_agent_cb(void *ctx, const kf_store_result_t *r)
{
    login_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (r->rc != 0 && r->rc != KF_ENOTFOUND) {
        if (req != NULL)
            kf_call_fail(req, r->rc, NULL);
        login_wait_free(w);
        return;
    }
    w->known = r->rc == 0;
    if (w->known) {
        kf_agent_auth_t *agent = &w->agent;
        agent->id = r->agent->id;
        snprintf(agent->email, sizeof agent->email, "%s", r->agent->email);
        snprintf(agent->name, sizeof agent->name, "%s", r->agent->name);
        snprintf(agent->role, sizeof agent->role, "%s", r->agent->role);
        agent->disabled = r->agent->disabled_at != 0;
    }
    int rc = kf_hasher_verify(w->app->hasher, w->password,
                              w->known ? r->agent->password_hash : dummy_hash, verified_cb, w);
    if (rc != 0) {
        /* Too many logins are being checked at once: refused before any hash, and not counted
         * as a failure (the client may retry). */
        if (req != NULL)
            kf_call_fail(req, KF_EUNAVAIL, "too many logins at once; try again shortly");
        login_wait_free(w);
    }
}

void kf_agent_login(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    login_wait_t *w = kf_xcalloc(1, sizeof *w);
    json_t *password = json_object_get(root, "password");
    if (!read_email(json_object_get(root, "email"), w->email) || !json_is_string(password)) {
        json_decref(root);
        free(w);
        kf_call_fail(req, KF_EINVAL, "email and password are required");
        return;
    }
    w->app = app;
    w->password = kf_xstrdup(json_string_value(password));
    kf_req_peer_key(req, w->address);
    json_decref(root);
    /* Failed logins are limited per account and per address (password guessing); a refused
     * attempt costs no hash either. */
    int64_t wait_ms = 0;
    if (!kf_limits_login_allowed(app->limits, w->email, w->address, &wait_ms)) {
        kf_info("login for %s from %s refused: too many failures", w->email, kf_req_peer(req));
        login_wait_free(w);
        kf_call_rate_limited(req, wait_ms, "failed logins");
        return;
    }
    int rc = app->store->ops->agent_by_email(app->store, w->email, login_agent_cb, w);
    if (rc != 0) {
        login_wait_free(w);
        kf_call_fail(req, rc, NULL);
        return;
    }
    kf_call_hold(req, w, 0);
}

/* ---- the session ---- */

void kf_agent_me(const kf_call_t *call)
{
    const kf_agent_auth_t *a = &call->who->agent;
    kf_resp_json(call->req, 200,
                 json_pack("{s:o,s:s}", "agent",
                           kf_chat_agent_json(a->id, a->email, a->name, a->role), "csrf", a->csrf));
}

/* A logout waiting for its session's delete. */
typedef struct logout_wait {
    kf_wait_t base;
    kf_app_t *app;
    int64_t agent_id;
} logout_wait_t;

static void logged_out(kf_req_t *req, kf_app_t *app, int64_t agent_id)
{
    /* Its streams end too (a WebSocket could otherwise still send as the agent), and a ticket
     * fetched before may open none any more; the agent's other sessions, if any, reconnect with
     * their own cookies. */
    kf_authn_revoke_tickets(app->authn, 'a', agent_id);
    kf_push_end_subject(app->push, 'a', agent_id);
    kf_presence_left(app->presence, agent_id);
    set_session_cookie(req, app, "", 0);
    kf_resp_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static void session_deleted_cb(void *ctx, const kf_store_result_t *r)
{
    logout_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    kf_app_t *app = w->app;
    int64_t agent_id = w->agent_id;
    free(w);
    /* Told it is logged out, the agent must be: the session may not outlive a failure. */
    if (req != NULL && r->rc != 0 && r->rc != KF_ENOTFOUND)
        kf_call_fail(req, r->rc, NULL);
    else if (req != NULL)
        logged_out(req, app, agent_id);
}

void kf_agent_logout(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    char hash[KF_HASH_HEX_SIZE];
    if (kf_authn_session_hash(app->authn, call->req, hash) != 0) {
        logged_out(call->req, app, call->who->agent.id);
        return;
    }
    kf_authn_forget_session(app->authn, hash);
    kf_nodes_tell_logout(app, hash, call->who->agent.id);
    logout_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    w->agent_id = call->who->agent.id;
    kf_call_hold(call->req, w,
                 app->store->ops->session_delete(app->store, hash, session_deleted_cb, w));
}

void kf_agent_ticket_post(const kf_call_t *call)
{
    kf_call_ticket(call);
}

/* ---- accounts (admins) ---- */

#define NAME_RULE "name must be a string of at most 80 characters"
#define ROLE_RULE "role must be \"admin\" or \"agent\""

/* The account list: agents are few, so all of them in one answer, each with its presence. */
static int listed_agent_cb(void *ctx, const kf_agent_t *agent)
{
    kf_list_wait_t *w = ctx;
    json_t *json = account_json(agent);
    json_object_set_new(json, "status",
                        json_string(kf_presence_name(kf_presence_status(w->ctx, agent->id))));
    json_array_append_new(w->items, json);
    return 0;
}

void kf_agents_get(const kf_call_t *call)
{
    kf_store_t *store = call->app->store;
    kf_list_wait_t *w = kf_call_list_new("agents", call->app->presence);
    kf_call_list_hold(call->req, w,
                      store->ops->agent_list(store, listed_agent_cb, kf_call_list_done, w));
}

/* A new agent on its way: the password's hash on the hasher, then the row. */
typedef struct create_wait {
    kf_wait_t base;
    kf_app_t *app;
    char email[KF_MAX_EMAIL_BYTES + 1];
    char name[4 * KF_MAX_NAME_CHARS + 1];
    char role[16];
    int64_t created_at;
} create_wait_t;

static void agent_created_cb(void *ctx, const kf_store_result_t *r)
{
    create_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    kf_agent_t created = {.id = r->id,
                          .email = w->email,
                          .name = w->name,
                          .role = w->role,
                          .created_at = w->created_at};
    if (r->rc == 0) {
        kf_info("agent %s (%s) created", w->email, w->role);
        publish_account(w->app, &created);
    }
    if (req != NULL && r->rc == KF_EEXISTS)
        kf_call_fail(req, KF_EEXISTS, "an agent with this e-mail exists");
    else if (req != NULL && r->rc != 0)
        kf_call_fail(req, r->rc, NULL);
    else if (req != NULL)
        kf_resp_json(req, 201, json_pack("{s:o}", "agent", account_json(&created)));
    free(w);
}

/* The password is hashed: the account is created, whether its creator still waits or not (as
 * any write a client asked for). */
static void hashed_cb(void *data, int rc, const char *encoded)
{
    create_wait_t *w = data;
    kf_app_t *app = w->app;
    if (rc == 0)
        rc = app->store->ops->agent_create(app->store, w->email, w->name, w->role, encoded,
                                           w->created_at, agent_created_cb, w);
    if (rc == 0)
        return;
    if (w->base.req != NULL)
        kf_call_fail(w->base.req, rc, NULL);
    free(w);
}

void kf_agents_create(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    create_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    json_t *name = json_object_get(root, "name");
    json_t *role = json_object_get(root, "role");
    json_t *password = json_object_get(root, "password");
    const char *why = NULL;
    if (!read_email(json_object_get(root, "email"), w->email) || strchr(w->email, '@') == NULL ||
        w->email[0] == '@' || w->email[strlen(w->email) - 1] == '@')
        why = "email must be an address (name@host)";
    else if (!is_name(name))
        why = NAME_RULE;
    else if (role != NULL && !json_is_null(role) && !is_role(role))
        why = ROLE_RULE;
    else if (!json_is_string(password) || json_string_length(password) < 8)
        why = "password must be a string of at least 8 characters";
    if (why != NULL) {
        json_decref(root);
        free(w);
        kf_call_fail(req, KF_EINVAL, why);
        return;
    }
    char *trimmed = kf_trim_copy(json_string_value(name));
    snprintf(w->name, sizeof w->name, "%s", trimmed);
    free(trimmed);
    snprintf(w->role, sizeof w->role, "%s",
             json_is_string(role) ? json_string_value(role) : "agent");
    w->created_at = kf_clock_wall_ms();
    int rc = kf_hasher_hash(call->app->hasher, json_string_value(password), hashed_cb, w);
    json_decref(root);
    if (rc == KF_ELIMIT)
        rc = KF_EUNAVAIL;
    kf_call_hold(req, w, rc);
}

/* A change to an account on its way: for a password, the current one's check and the new one's
 * hash on the hasher first; then the store. */
typedef struct change_wait {
    kf_wait_t base;
    kf_app_t *app;
    int64_t id;
    char by[KF_MAX_EMAIL_BYTES + 1];    /* who asked, for the log */
    char address[KF_PEER_SIZE];         /* theirs, for the failure limit */
    kf_agent_state_t state;             /* what it does to the agent's access, for the log */
    char *name;                         /* the new name, trimmed, or NULL */
    char role[16];                      /* the new role, or "" */
    char *password;                     /* the new password, until it is hashed, or NULL */
    char *current;                      /* the agent's current one, when it changes its own */
    char email[KF_MAX_EMAIL_BYTES + 1]; /* the agent's, for the failure limit */
    bool own;                           /* the agent changes its own password */
    bool keep_session;                  /* the caller's session survives a password change */
    char session[KF_HASH_HEX_SIZE];     /* which one that is */
    bool set_capacity;                  /* capacity changes */
    int64_t capacity;                   /* to this */
} change_wait_t;

/* A password's copy goes with its bytes wiped, as the login's does. */
static void free_secret(char *secret)
{
    if (secret == NULL)
        return;
    explicit_bzero(secret, strlen(secret));
    free(secret);
}

static void change_wait_free(change_wait_t *w)
{
    free(w->name);
    free_secret(w->password);
    free_secret(w->current);
    free(w);
}

/* The change is stored. Whether its caller still waits or not, it holds everywhere from now on:
 * a disabled agent's cached sessions answer 401, its tickets open nothing, its push connections
 * (a WebSocket that could still send) end; a new password ends every other session and every
 * push connection (the caller's console reconnects with its own cookie); any other change is
 * read again by the agent's sessions. */
static void agent_changed_cb(void *ctx, const kf_store_result_t *r)
{
    change_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    kf_app_t *app = w->app;
    if (r->rc == 0) {
        const kf_agent_t *a = r->agent;
        bool disabled = a->disabled_at != 0;
        kf_authn_agent_changed(app->authn, a->id, disabled);
        kf_nodes_tell_agent_changed(app, a->id, disabled, disabled || w->password != NULL);
        publish_account(app, a);
        if (disabled || w->password != NULL) {
            kf_authn_revoke_tickets(app->authn, 'a', a->id);
            size_t ended = kf_push_end_subject(app->push, 'a', a->id);
            if (disabled)
                kf_presence_drop(app->presence, a->id);
            kf_info("agent %s %s by %s (sessions ended: %lld, push connections ended: %zu)",
                    a->email, disabled ? "disabled" : "given a new password", w->by,
                    (long long)r->count, ended);
            /* What it held is unassigned now: every console's lists follow. */
            for (size_t i = 0; i < r->released_count; i++)
                kf_chat_publish_conversation(app->store, app->hub, r->released[i], false);
        } else if (w->state == KF_AGENT_STATE_ENABLE) {
            kf_info("agent %s enabled by %s", a->email, w->by);
        } else {
            kf_info("agent %s changed by %s (role %s)", a->email, w->by, a->role);
        }
        /* Released conversations, or room under a new capacity: automatic assignment may act. */
        if (disabled || w->set_capacity)
            kf_autoassign_kick(app->autoassign);
    }
    if (req != NULL && r->rc == KF_ENOTFOUND)
        kf_call_fail(req, KF_ENOTFOUND, "no such agent");
    else if (req != NULL && r->rc == KF_ECONFLICT)
        kf_call_fail(req, KF_ECONFLICT,
                     "the desk needs an enabled admin: make another agent an admin first");
    else if (req != NULL && r->rc != 0)
        kf_call_fail(req, r->rc, NULL);
    else if (req != NULL)
        kf_resp_json(req, 200, json_pack("{s:o}", "agent", account_json(r->agent)));
    change_wait_free(w);
}

/* Hands the change to the store, with the new password's hash (or NULL). */
static void store_change(change_wait_t *w, const char *password_hash)
{
    kf_store_t *store = w->app->store;
    kf_agent_change_t change = {
        .name = w->name,
        .role = w->role[0] != '\0' ? w->role : NULL,
        .state = w->state,
        .now = kf_clock_wall_ms(),
        .password_hash = password_hash,
        .keep_session = w->keep_session ? w->session : NULL,
        .set_capacity = w->set_capacity,
        .capacity = w->capacity,
    };
    int rc = store->ops->agent_update(store, w->id, &change, agent_changed_cb, w);
    if (rc == 0)
        return;
    if (w->base.req != NULL)
        kf_call_fail(w->base.req, rc, NULL);
    change_wait_free(w);
}

/* The new password's hash is made (on a worker thread). */
static void new_password_hashed_cb(void *data, int rc, const char *encoded)
{
    change_wait_t *w = data;
    if (rc == 0) {
        store_change(w, encoded);
        return;
    }
    if (w->base.req != NULL)
        kf_call_fail(w->base.req, rc == KF_ELIMIT ? KF_EUNAVAIL : rc, NULL);
    change_wait_free(w);
}

static void hash_new_password(change_wait_t *w)
{
    int rc = kf_hasher_hash(w->app->hasher, w->password, new_password_hashed_cb, w);
    if (rc == 0)
        return;
    if (w->base.req != NULL)
        kf_call_fail(w->base.req, KF_EUNAVAIL, "too many passwords are being checked; try again");
    change_wait_free(w);
}

/* The agent's current password was checked (on a worker thread). A wrong one is a failed login:
 * a stolen session must not be a way to guess the password behind it. */
static void current_checked_cb(void *data, bool match)
{
    change_wait_t *w = data;
    kf_app_t *app = w->app;
    if (!match) {
        kf_limits_login_failed(app->limits, w->email, w->address);
        kf_info("password change for %s from %s refused: wrong current password", w->email,
                w->address);
        if (w->base.req != NULL)
            kf_call_fail(w->base.req, KF_EFORBIDDEN, "the current password is wrong");
        change_wait_free(w);
        return;
    }
    kf_limits_login_succeeded(app->limits, w->email);
    kf_nodes_tell_login(app, w->id, w->email);
    hash_new_password(w);
}

static void own_account_cb(void *ctx, const kf_store_result_t *r)
{
    change_wait_t *w = ctx;
    int rc = r->rc;
    if (rc == 0)
        rc = kf_hasher_verify(w->app->hasher, w->current, r->agent->password_hash,
                              current_checked_cb, w);
    if (rc == 0)
        return;
    if (w->base.req != NULL)
        kf_call_fail(w->base.req, rc == KF_ELIMIT ? KF_EUNAVAIL : rc, NULL);
    change_wait_free(w);
}

/* The fields a change may hold. */
static const char *const change_fields[] = {"disabled",         "name",    "role", "password",
                                            "current_password", "capacity"};

/* What is wrong with a change's fields, or NULL; the first field it does not know in *unknown. */
static const char *check_change(json_t *root, const char **unknown)
{
    const char *key;
    json_t *value;
    *unknown = NULL;
    json_object_foreach(root, key, value)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof change_fields / sizeof change_fields[0]; i++)
            known = known || strcmp(key, change_fields[i]) == 0;
        if (!known) {
            *unknown = key;
            return "unknown field";
        }
    }
    json_t *disabled = json_object_get(root, "disabled");
    json_t *name = json_object_get(root, "name");
    json_t *role = json_object_get(root, "role");
    json_t *password = json_object_get(root, "password");
    json_t *current = json_object_get(root, "current_password");
    if (disabled == NULL && name == NULL && role == NULL && password == NULL &&
        json_object_get(root, "capacity") == NULL)
        return "nothing to change: give disabled, name, role, password or capacity";
    if (disabled != NULL && !json_is_boolean(disabled))
        return "disabled must be true or false";
    if (name != NULL && !is_name(name))
        return NAME_RULE;
    if (role != NULL && !is_role(role))
        return ROLE_RULE;
    if (password != NULL && (!json_is_string(password) || json_string_length(password) < 8))
        return "password must be a string of at least 8 characters";
    if (current != NULL && (password == NULL || !json_is_string(current)))
        return "current_password goes with a new password, as a string";
    return NULL;
}

/* Who may change what: an admin anything of anyone (but not disable themselves); an agent its own
 * name and password. Changing one's own password takes the current one. 0, or the error and why. */
static int allowed_change(const kf_call_t *call, int64_t id, json_t *root, const char **why)
{
    const kf_agent_auth_t *me = &call->who->agent;
    bool admin = strcmp(me->role, "admin") == 0;
    bool own = id == me->id;
    if (!admin &&
        (!own || json_object_get(root, "disabled") != NULL ||
         json_object_get(root, "role") != NULL || json_object_get(root, "capacity") != NULL)) {
        *why = "an agent may change only its own name and password; the rest is an admin's";
        return KF_EFORBIDDEN;
    }
    if (own && json_is_true(json_object_get(root, "disabled"))) {
        *why = "you cannot disable your own account"; /* nor lock the desk out by a slip */
        return KF_ECONFLICT;
    }
    if (own && json_object_get(root, "password") != NULL &&
        json_object_get(root, "current_password") == NULL) {
        *why = "current_password is required to change your own password";
        return KF_EINVAL;
    }
    return 0;
}

void kf_agents_patch(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    kf_app_t *app = call->app;
    int64_t id = call->ids[0];
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    const char *unknown;
    const char *why = check_change(root, &unknown);
    /* An unknown field is a malformed request: a typo ("disable") must not pass for a change
     * that did nothing. */
    int rc = why == NULL ? 0 : unknown != NULL ? KF_EPROTO : KF_EINVAL;
    json_t *capacity = json_object_get(root, "capacity");
    if (rc == 0 && capacity != NULL &&
        (!json_is_integer(capacity) || json_integer_value(capacity) < 0 ||
         json_integer_value(capacity) > MAX_CAPACITY)) {
        rc = KF_EPROTO;
        why = CAPACITY_RULE;
    }
    if (rc == 0)
        rc = allowed_change(call, id, root, &why);
    if (rc != 0) {
        char message[128];
        if (unknown != NULL) {
            snprintf(message, sizeof message,
                     "unknown field \"%.32s\": a change takes disabled, name, role, password, "
                     "current_password and capacity",
                     unknown);
            why = message;
        }
        json_decref(root);
        kf_call_fail(req, rc, why);
        return;
    }
    json_t *disabled = json_object_get(root, "disabled");
    json_t *name = json_object_get(root, "name");
    json_t *password = json_object_get(root, "password");
    json_t *current = json_object_get(root, "current_password");
    change_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    w->id = id;
    snprintf(w->by, sizeof w->by, "%s", call->who->agent.email);
    kf_req_peer_key(req, w->address);
    w->state = disabled == NULL         ? KF_AGENT_STATE_KEEP
               : json_is_true(disabled) ? KF_AGENT_STATE_DISABLE
                                        : KF_AGENT_STATE_ENABLE;
    w->name = name != NULL ? kf_trim_copy(json_string_value(name)) : NULL;
    snprintf(w->role, sizeof w->role, "%s",
             json_is_string(json_object_get(root, "role"))
                 ? json_string_value(json_object_get(root, "role"))
                 : "");
    w->password = password != NULL ? kf_xstrdup(json_string_value(password)) : NULL;
    w->current = current != NULL ? kf_xstrdup(json_string_value(current)) : NULL;
    w->own = id == call->who->agent.id;
    w->set_capacity = capacity != NULL;
    w->capacity = capacity != NULL ? json_integer_value(capacity) : 0;
    w->keep_session = w->own && kf_authn_session_hash(app->authn, req, w->session) == 0;
    snprintf(w->email, sizeof w->email, "%s", call->who->agent.email);
    json_decref(root);
    kf_call_hold(req, w, 0);
    if (w->password == NULL) {
        store_change(w, NULL);
    } else if (w->current == NULL) {
        hash_new_password(w); /* an admin sets another agent's password */
    } else {
        int64_t wait_ms = 0;
        if (!kf_limits_login_allowed(app->limits, w->email, w->address, &wait_ms)) {
            kf_call_rate_limited(req, wait_ms, "failed password checks");
            change_wait_free(w);
            return;
        }
        rc = app->store->ops->agent_by_id(app->store, id, own_account_cb, w);
        if (rc != 0) {
            kf_call_fail(req, rc, NULL);
            change_wait_free(w);
        }
    }
}

/* ---- presence ---- */

void kf_agent_status_post(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    kf_presence_status_t status;
    const char *unknown = NULL;
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        if (strcmp(key, "status") != 0)
            unknown = key;
    }
    int rc = kf_presence_parse(json_string_value(json_object_get(root, "status")), &status);
    json_decref(root);
    if (unknown != NULL || rc != 0) {
        /* A typo must not pass for a change, and the answer names what is allowed. */
        kf_call_fail(req, KF_EPROTO, "status must be \"online\" or \"away\" (the only field)");
        return;
    }
    const kf_agent_auth_t *a = &call->who->agent;
    /* Choosing is activity, as a push request is: the answer shows the choice, and without a
     * console the agent goes offline a minute later like any other. */
    kf_presence_choose(call->app->presence, a->id, status);
    kf_presence_seen(call->app->presence, a->id, kf_clock_mono_ms());
    json_t *agent = kf_chat_agent_json(a->id, a->email, a->name, a->role);
    json_object_set_new(
        agent, "status",
        json_string(kf_presence_name(kf_presence_status(call->app->presence, a->id))));
    kf_resp_json(req, 200, json_pack("{s:o}", "agent", agent));
}
