/* authn.c: request authentication: the credential caches, the store lookups behind them, push
 * tickets and their revocation. */
#include "chat/authn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/cache.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/map.h"
#include "store/sync.h"

/* Credential cache sizes: agents are few; visitors' tokens are looked up on every request and
 * push connection, so their table holds about as many as one process holds connections. A slot
 * costs 64 bytes, allocated on first use; a visitor's entry about as much again. */
#define AGENT_SESSION_SLOTS 1024
#define VISITOR_TOKEN_SLOTS 32768

#define SESSION_COOKIE "kefu_session"
#define SECURE_SESSION_COOKIE "__Host-kefu_session"

/* Tickets of one listener refused when signed until revoked_at (a logout). */
typedef struct revocation {
    kf_map_node_t node;
    unsigned char key[9]; /* kind, then the subject's 8 bytes */
    int64_t revoked_at;   /* wall time */
} revocation_t;

struct kf_authn {
    kf_store_t *store;
    int64_t ticket_ttl_ms;
    bool secure_cookies;
    unsigned char ticket_key[32];    /* HMAC key of push tickets, kept in the store's settings */
    kf_auth_cache_t *agent_sessions; /* session token hash -> kf_agent_auth_t */
    kf_auth_cache_t *visitor_tokens; /* visitor token hash -> kf_visitor_auth_t (name cut short) */
    kf_map_t revocations;            /* (kind, subject) -> revocation_t */
};

/* ---- life cycle ---- */

/* The HMAC key of push tickets lives in the store, so tickets survive a restart. */
static int load_ticket_key(kf_authn_t *authn)
{
    char hex[65];
    int rc = kf_store_sync_setting_get(authn->store, "ticket_key", hex, sizeof hex);
    if (rc == KF_ENOTFOUND) {
        char token[KF_TOKEN_SIZE];
        rc = kf_auth_random_token(token);
        if (rc != 0)
            return rc;
        kf_auth_sha256_hex(token, strlen(token), hex);
        rc = kf_store_sync_setting_set(authn->store, "ticket_key", hex);
    }
    if (rc == KF_ETOOBIG)
        return KF_ESTORE; /* not a key we wrote */
    if (rc != 0)
        return rc;
    if (strlen(hex) != 64)
        return KF_ESTORE;
    for (size_t i = 0; i < 32; i++) {
        unsigned int byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
            return KF_ESTORE;
        authn->ticket_key[i] = (unsigned char)byte;
    }
    return 0;
}

kf_authn_t *kf_authn_new(kf_store_t *store, const kf_app_config_t *config, int *err)
{
    kf_authn_t *authn = kf_xcalloc(1, sizeof *authn);
    authn->store = store;
    authn->ticket_ttl_ms = config->ticket_ttl_ms;
    authn->secure_cookies = config->secure_cookies;
    int rc = load_ticket_key(authn);
    if (rc != 0) {
        free(authn);
        *err = rc;
        return NULL;
    }
    authn->agent_sessions = kf_auth_cache_new(AGENT_SESSION_SLOTS, sizeof(kf_agent_auth_t));
    authn->visitor_tokens = kf_auth_cache_new(VISITOR_TOKEN_SLOTS, sizeof(kf_visitor_auth_t));
    kf_map_init(&authn->revocations);
    return authn;
}

static void free_revocation(kf_map_node_t *node)
{
    free(KF_CONTAINER_OF(node, revocation_t, node));
}

void kf_authn_free(kf_authn_t *authn)
{
    if (authn == NULL)
        return;
    kf_map_clear(&authn->revocations, free_revocation);
    kf_auth_cache_free(authn->agent_sessions);
    kf_auth_cache_free(authn->visitor_tokens);
    free(authn);
}

typedef struct sweep {
    kf_authn_t *authn;
    int64_t before; /* revocations up to this are past every ticket they were for */
} sweep_t;

static void sweep_revocation_cb(kf_map_node_t *node, void *ctx)
{
    sweep_t *sweep = ctx;
    if (KF_CONTAINER_OF(node, revocation_t, node)->revoked_at <= sweep->before) {
        kf_map_remove(&sweep->authn->revocations, node);
        free_revocation(node);
    }
}

void kf_authn_sweep(kf_authn_t *authn)
{
    sweep_t sweep = {authn, kf_clock_wall_ms() - authn->ticket_ttl_ms};
    kf_map_each(&authn->revocations, sweep_revocation_cb, &sweep);
}

/* ---- tickets ---- */

static void revocation_key(char kind, int64_t subject, unsigned char key[9])
{
    key[0] = (unsigned char)kind;
    memcpy(key + 1, &subject, sizeof subject);
}

static bool revocation_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    const revocation_t *r = KF_CONTAINER_OF(node, revocation_t, node);
    return len == sizeof r->key && memcmp(r->key, key, len) == 0;
}

static revocation_t *find_revocation(kf_authn_t *authn, char kind, int64_t subject,
                                     uint64_t *hash_out)
{
    unsigned char key[9];
    revocation_key(kind, subject, key);
    uint64_t hash = kf_map_hash(&authn->revocations, key, sizeof key);
    if (hash_out != NULL)
        *hash_out = hash;
    kf_map_node_t *node = kf_map_find(&authn->revocations, hash, key, sizeof key, revocation_eq);
    return node != NULL ? KF_CONTAINER_OF(node, revocation_t, node) : NULL;
}

int kf_authn_ticket(kf_authn_t *authn, char kind, int64_t subject, char out[KF_TICKET_SIZE])
{
    return kf_auth_ticket_sign(authn->ticket_key, sizeof authn->ticket_key, kind, subject,
                               kf_clock_wall_ms() + authn->ticket_ttl_ms, out);
}

void kf_authn_revoke_tickets(kf_authn_t *authn, char kind, int64_t subject)
{
    uint64_t hash;
    revocation_t *r = find_revocation(authn, kind, subject, &hash);
    if (r == NULL) {
        r = kf_xcalloc(1, sizeof *r);
        revocation_key(kind, subject, r->key);
        kf_map_insert(&authn->revocations, &r->node, hash);
    }
    r->revoked_at = kf_clock_wall_ms();
}

int64_t kf_authn_ticket_seconds(const kf_authn_t *authn)
{
    return authn->ticket_ttl_ms / 1000;
}

/* Checks a ?ticket= value: 0 with who filled, KF_EEXPIRED, or KF_EAUTH (malformed, forged, or
 * signed before its listener's tickets were revoked). */
static int check_ticket(kf_authn_t *authn, const char *ticket, size_t len, kf_principal_t *who)
{
    char kind;
    int64_t subject;
    int rc = kf_auth_ticket_verify(authn->ticket_key, sizeof authn->ticket_key, ticket, len,
                                   kf_clock_wall_ms(), &kind, &subject);
    if (rc != 0)
        return rc;
    const revocation_t *r = find_revocation(authn, kind, subject, NULL);
    if (r != NULL && kf_auth_ticket_expiry(ticket, len) - authn->ticket_ttl_ms <= r->revoked_at)
        return KF_EAUTH;
    memset(who, 0, sizeof *who);
    who->kind = kind;
    who->by_ticket = true;
    if (kind == 'v')
        who->visitor.id = subject;
    else
        who->agent.id = subject;
    return 0;
}

/* ---- cookies and caches ---- */

const char *kf_authn_cookie_name(const kf_authn_t *authn)
{
    return authn->secure_cookies ? SECURE_SESSION_COOKIE : SESSION_COOKIE;
}

int kf_authn_session_hash(const kf_authn_t *authn, kf_req_t *req, char hash[KF_HASH_HEX_SIZE])
{
    const kf_str_t *cookies = kf_http_header_get(req->head, "Cookie");
    kf_str_t token;
    if (cookies == NULL || kf_http_cookie_get(*cookies, kf_authn_cookie_name(authn), &token) != 0 ||
        token.len == 0)
        return KF_ENOTFOUND;
    kf_auth_sha256_hex(token.ptr, token.len, hash);
    return 0;
}

/* Visitor tokens do not expire; only the name's bytes are kept. */
void kf_authn_remember_visitor(kf_authn_t *authn, const char *token_hash,
                               const kf_visitor_auth_t *visitor)
{
    kf_auth_cache_put(authn->visitor_tokens, token_hash, INT64_MAX, visitor,
                      offsetof(kf_visitor_auth_t, name) + strlen(visitor->name) + 1);
}

void kf_authn_forget_all(kf_authn_t *authn)
{
    kf_auth_cache_clear(authn->agent_sessions);
    kf_auth_cache_clear(authn->visitor_tokens);
}

void kf_authn_forget_session(kf_authn_t *authn, const char *token_hash)
{
    kf_auth_cache_remove(authn->agent_sessions, token_hash);
}

/* An agent's change, for a visit of the cached sessions. */
typedef struct agent_change {
    int64_t agent_id;
    bool disabled;
} agent_change_t;

static bool changed_session_cb(void *value, size_t len, void *ctx)
{
    kf_agent_auth_t *agent = value;
    const agent_change_t *change = ctx;
    (void)len; /* sessions are cached whole */
    if (agent->id != change->agent_id)
        return false;
    if (!change->disabled)
        return true; /* read again, with the change */
    agent->disabled = true;
    return false;
}

void kf_authn_agent_changed(kf_authn_t *authn, int64_t agent_id, bool disabled)
{
    agent_change_t change = {agent_id, disabled};
    kf_auth_cache_each(authn->agent_sessions, changed_session_cb, &change);
}

static bool changed_visitor_cb(void *value, size_t len, void *ctx)
{
    const kf_visitor_auth_t *visitor = value;
    (void)len; /* only the id is read */
    return visitor->id == *(const int64_t *)ctx;
}

void kf_authn_visitor_changed(kf_authn_t *authn, int64_t visitor_id)
{
    kf_auth_cache_each(authn->visitor_tokens, changed_visitor_cb, &visitor_id);
}

/* ---- lookups that wait for the store ---- */

/* A credential the caches did not know, waiting for the store. */
typedef struct lookup {
    kf_req_t *req; /* NULL once the client is gone */
    kf_authn_t *authn;
    kf_authn_resume_fn resume;
    unsigned rest; /* credentials to try should this one be unknown */
    char hash[KF_HASH_HEX_SIZE];
    int64_t expires_at; /* an agent's session's */
    int rc;
    kf_principal_t who;
} lookup_t;

static int try_credentials(kf_authn_t *authn, kf_req_t *req, unsigned creds, kf_principal_t *who,
                           kf_authn_resume_fn resume);

static void lookup_abort_cb(kf_req_t *req, void *data)
{
    (void)req;
    ((lookup_t *)data)->req = NULL;
}

/* The request, resumed with its head valid again: on to the next credential, or back to the
 * caller. */
static void resumed_cb(kf_req_t *req, void *data)
{
    lookup_t *lookup = data;
    kf_req_detach(req);
    kf_authn_t *authn = lookup->authn;
    kf_authn_resume_fn resume = lookup->resume;
    unsigned rest = lookup->rest;
    int rc = lookup->rc;
    kf_principal_t who = lookup->who;
    free(lookup);
    if (rc == KF_EAUTH && rest != 0) {
        rc = try_credentials(authn, req, rest, &who, resume);
        if (rc == KF_EAGAIN)
            return;
    }
    resume(req, rc, &who);
}

/* The store has answered about lookup's credential. */
static void answered(lookup_t *lookup, int rc)
{
    lookup->rc = rc == KF_ENOTFOUND ? KF_EAUTH : rc;
    if (lookup->req == NULL)
        free(lookup);
    else
        kf_req_resume(lookup->req, resumed_cb, lookup);
}

static void visitor_found_cb(void *ctx, const kf_store_result_t *r)
{
    lookup_t *lookup = ctx;
    if (r->rc == 0) {
        kf_visitor_auth_t *visitor = &lookup->who.visitor;
        lookup->who.kind = 'v';
        visitor->id = r->visitor->id;
        visitor->verified = r->visitor->user_id != NULL && r->visitor->user_id[0] != '\0';
        snprintf(visitor->name, sizeof visitor->name, "%s", r->visitor->name);
        kf_authn_remember_visitor(lookup->authn, lookup->hash, visitor);
    }
    answered(lookup, r->rc);
}

static void agent_found_cb(void *ctx, const kf_store_result_t *r)
{
    lookup_t *lookup = ctx;
    /* A disabled agent's sessions stay in the store until it is enabled, refused here on every
     * loop and node alike. Not cached: an enabling's callback may already have run, and the
     * refusal would outlive it. */
    if (r->rc == 0 && r->agent->disabled_at != 0) {
        answered(lookup, KF_EFORBIDDEN);
        return;
    }
    if (r->rc == 0) {
        kf_agent_auth_t *agent = &lookup->who.agent;
        lookup->who.kind = 'a';
        agent->id = r->agent->id;
        snprintf(agent->email, sizeof agent->email, "%s", r->agent->email);
        snprintf(agent->name, sizeof agent->name, "%s", r->agent->name);
        snprintf(agent->role, sizeof agent->role, "%s", r->agent->role);
        /* Kept until the session expires, its agent logs out (kf_authn_forget_session) or an
         * admin changes the account (kf_authn_agent_changed). */
        kf_auth_cache_put(lookup->authn->agent_sessions, lookup->hash, lookup->expires_at, agent,
                          sizeof *agent);
    }
    answered(lookup, r->rc);
}

static void session_found_cb(void *ctx, const kf_store_result_t *r)
{
    lookup_t *lookup = ctx;
    int rc = r->rc;
    if (rc == 0 && lookup->req != NULL) {
        snprintf(lookup->who.agent.csrf, sizeof lookup->who.agent.csrf, "%s", r->session->csrf);
        lookup->expires_at = r->session->expires_at;
        kf_store_t *store = lookup->authn->store;
        rc = store->ops->agent_by_id(store, r->session->agent_id, agent_found_cb, lookup);
        if (rc == 0)
            return;
    }
    answered(lookup, rc);
}

/* ---- API tokens ---- */

/* How often last_used_at is written for one token at most: a write per request would be a
 * write per script call. */
#define API_TOKEN_TOUCH_MS 60000

static void api_token_touched_cb(void *ctx, const kf_store_result_t *r)
{
    (void)ctx;
    (void)r; /* a lost last-used time is harmless; the next use writes it */
}

static void api_maker_found_cb(void *ctx, const kf_store_result_t *r)
{
    lookup_t *lookup = ctx;
    /* A token speaks for its maker: when they are disabled, it is refused with them. */
    if (r->rc == 0 && r->agent->disabled_at != 0) {
        answered(lookup, KF_EAUTH);
        return;
    }
    if (r->rc == 0) {
        kf_agent_auth_t *agent = &lookup->who.agent;
        agent->id = r->agent->id;
        snprintf(agent->email, sizeof agent->email, "%s", r->agent->email);
        snprintf(agent->name, sizeof agent->name, "%s", r->agent->name);
        /* The role a token acts with is its scope's, whatever its maker's is now; a maker who
         * is no longer an admin keeps no admin token working. */
        bool admin = agent->api_scope == 'a' && strcmp(r->agent->role, "admin") == 0;
        snprintf(agent->role, sizeof agent->role, "%s", admin ? "admin" : "agent");
        if (agent->api_scope == 'a' && !admin)
            agent->api_scope = 'w';
    }
    answered(lookup, r->rc);
}

static void api_token_found_cb(void *ctx, const kf_store_result_t *r)
{
    lookup_t *lookup = ctx;
    int rc = r->rc;
    if (rc == 0 && lookup->req != NULL) {
        const kf_api_token_t *token = r->api_token;
        kf_agent_auth_t *agent = &lookup->who.agent;
        lookup->who.kind = 'a';
        agent->api_token_id = token->id;
        agent->api_scope = token->scope[0] == 'r' ? 'r' : token->scope[0] == 'w' ? 'w' : 'a';
        kf_store_t *store = lookup->authn->store;
        int64_t now = kf_clock_wall_ms();
        if (now - token->last_used_at >= API_TOKEN_TOUCH_MS)
            store->ops->api_token_touch(store, token->id, now, api_token_touched_cb, NULL);
        rc = token->created_by > 0
                 ? store->ops->agent_by_id(store, token->created_by, api_maker_found_cb, lookup)
                 : KF_ENOTFOUND;
        if (rc == 0)
            return;
    }
    answered(lookup, rc);
}

/* Starts a lookup of hash in the store (the store's queueing result in queued_rc): the request
 * waits for it, and KF_EAGAIN says so; or the queueing failed, and that is the answer. */
static int wait_for(kf_req_t *req, lookup_t *lookup, int queued_rc)
{
    if (queued_rc != 0) {
        free(lookup);
        return queued_rc;
    }
    kf_req_hold(req, lookup_abort_cb, lookup);
    return KF_EAGAIN;
}

static lookup_t *lookup_new(kf_authn_t *authn, kf_req_t *req, const char *hash, unsigned rest,
                            kf_authn_resume_fn resume)
{
    lookup_t *lookup = kf_xcalloc(1, sizeof *lookup);
    lookup->req = req;
    lookup->authn = authn;
    lookup->resume = resume;
    lookup->rest = rest;
    snprintf(lookup->hash, sizeof lookup->hash, "%s", hash);
    return lookup;
}

/* The bearer token, then the session cookie, of those in creds. */
static int try_credentials(kf_authn_t *authn, kf_req_t *req, unsigned creds, kf_principal_t *who,
                           kf_authn_resume_fn resume)
{
    char hash[KF_HASH_HEX_SIZE];
    memset(who, 0, sizeof *who);
    const kf_str_t *header = kf_http_header_get(req->head, "Authorization");
    /* Not cached: a revoked token must fail on its next request, on every node. */
    if ((creds & KF_CRED_API) != 0 && header != NULL && header->len > 7 &&
        strncasecmp(header->ptr, "Bearer ", 7) == 0) {
        kf_auth_sha256_hex(header->ptr + 7, header->len - 7, hash);
        lookup_t *lookup = lookup_new(authn, req, hash, 0, resume);
        return wait_for(
            req, lookup,
            authn->store->ops->api_token_by_hash(authn->store, hash, api_token_found_cb, lookup));
    }
    if ((creds & KF_CRED_BEARER) != 0 && header != NULL && header->len > 7 &&
        strncasecmp(header->ptr, "Bearer ", 7) == 0) {
        kf_auth_sha256_hex(header->ptr + 7, header->len - 7, hash);
        if (kf_auth_cache_get(authn->visitor_tokens, hash, kf_clock_wall_ms(), &who->visitor) > 0) {
            who->kind = 'v';
            return 0;
        }
        lookup_t *lookup = lookup_new(authn, req, hash, creds & KF_CRED_COOKIE, resume);
        return wait_for(
            req, lookup,
            authn->store->ops->visitor_by_token(authn->store, hash, visitor_found_cb, lookup));
    }
    if ((creds & KF_CRED_COOKIE) != 0 && kf_authn_session_hash(authn, req, hash) == 0) {
        int64_t now = kf_clock_wall_ms();
        if (kf_auth_cache_get(authn->agent_sessions, hash, now, &who->agent) > 0) {
            who->kind = 'a';
            return who->agent.disabled ? KF_EFORBIDDEN : 0;
        }
        lookup_t *lookup = lookup_new(authn, req, hash, 0, resume);
        return wait_for(
            req, lookup,
            authn->store->ops->session_get(authn->store, hash, now, session_found_cb, lookup));
    }
    return KF_EAUTH;
}

int kf_authn_identify(kf_authn_t *authn, kf_req_t *req, unsigned creds, kf_principal_t *who,
                      kf_authn_resume_fn resume)
{
    if ((creds & KF_CRED_TICKET) != 0) {
        char ticket[KF_TICKET_SIZE];
        int n = kf_http_query_get(req->head->query, "ticket", ticket, sizeof ticket);
        if (n != KF_ENOTFOUND)
            return n < 0 ? KF_EAUTH : check_ticket(authn, ticket, (size_t)n, who);
    }
    return try_credentials(authn, req, creds, who, resume);
}
