/* authn.h: who a request comes from. Visitors carry a bearer token, agents a session cookie,
 * push connections may carry a short-lived signed ticket instead (EventSource and iframes cannot
 * send headers); each credential is stored only as its SHA-256. Known credentials are answered
 * from two caches without the store; the rest wait for the store, holding their request, and
 * resume it when it answers. Push tickets are checked here too, and revoked when their agent logs
 * out or is disabled. Loop thread only. */
#ifndef KF_CHAT_AUTHN_H
#define KF_CHAT_AUTHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "chat/app.h"

#define KF_MAX_NAME_CHARS 80
#define KF_MAX_EMAIL_BYTES 254

typedef struct kf_visitor_auth {
    int64_t id;
    bool verified;                        /* the site vouched for them (docs/IDENTITY.md) */
    char name[4 * KF_MAX_NAME_CHARS + 1]; /* last: the cache keeps only what the name uses */
} kf_visitor_auth_t;

typedef struct kf_agent_auth {
    int64_t id;
    char email[KF_MAX_EMAIL_BYTES + 1];
    char name[4 * KF_MAX_NAME_CHARS + 1];
    char role[16];
    char csrf[KF_TOKEN_SIZE];
    bool disabled; /* the account is disabled (a session ended by it, kept to say so) */
    /* Set when an API token (not a session) names the caller: 'r' read, 'w' write, 'a' admin
     * (docs/API.md, "API tokens"); 0 for a session. The agent is the token's maker; role is
     * "admin" for an admin token only. */
    char api_scope;
    int64_t api_token_id; /* with api_scope: the token */
} kf_agent_auth_t;

/* Who a request's credential names. From a push ticket, only kind and id are known (the rest is
 * empty, and by_ticket says so). */
typedef struct kf_principal {
    char kind;                 /* 'v' visitor, 'a' agent */
    bool by_ticket;            /* named by a push ticket */
    kf_visitor_auth_t visitor; /* kind 'v' */
    kf_agent_auth_t agent;     /* kind 'a' */
} kf_principal_t;

/* The credentials a route takes (a bit set), tried in this order. */
enum {
    KF_CRED_TICKET = 1, /* ?ticket= of a push request; when present, the only one looked at */
    KF_CRED_BEARER = 2, /* Authorization: Bearer <visitor token> */
    KF_CRED_COOKIE = 4, /* the agent session cookie */
    KF_CRED_API = 8,    /* Authorization: Bearer <API token>; never a visitor's token, and tried
                         * instead of the cookie when the header is there */
};

typedef struct kf_authn kf_authn_t;

/* The end of a lookup that waited for the store, run from inside kf_req_resume (the request's
 * head valid again): rc as kf_authn_identify's, who filled when rc is 0. Not run when the client
 * went away first. */
typedef void (*kf_authn_resume_fn)(kf_req_t *req, int rc, const kf_principal_t *who);

/* Loads the push tickets' key from the store, making one on the first start (waiting for the
 * store: at start-up only). NULL and *err on failure. */
kf_authn_t *kf_authn_new(kf_store_t *store, const kf_app_config_t *config, int *err);
void kf_authn_free(kf_authn_t *authn);
/* Forgets ticket revocations older than any ticket (a coarse timer calls it). */
void kf_authn_sweep(kf_authn_t *authn);

/* Who req's credentials among creds name. Returns 0 with *who filled when no store read was
 * needed (a cached credential, a ticket); KF_EAUTH when none of them is there or the first one
 * there is unknown (a bad ticket: KF_EEXPIRED when it is genuine but expired); KF_EFORBIDDEN
 * when it is a session of an agent who is disabled (the client is told 401 all the same, and
 * why); KF_EAGAIN when it asked the store: req is held, and resume runs later; or the store's
 * error (no answer about the credential: the client must not be told 401 and drop it). A bearer
 * token the store does not know makes way for the cookie, when creds has both. */
int kf_authn_identify(kf_authn_t *authn, kf_req_t *req, unsigned creds, kf_principal_t *who,
                      kf_authn_resume_fn resume);

/* The session cookie's name: "__Host-kefu_session" when cookies are Secure (a sibling subdomain
 * then cannot plant one), else "kefu_session". */
const char *kf_authn_cookie_name(const kf_authn_t *authn);
/* The SHA-256 (hex) of req's session token, or KF_ENOTFOUND when it carries none. */
int kf_authn_session_hash(const kf_authn_t *authn, kf_req_t *req, char hash[KF_HASH_HEX_SIZE]);
/* Remembers a new visitor's token (by its hash), so that their next requests need no lookup. */
void kf_authn_remember_visitor(kf_authn_t *authn, const char *token_hash,
                               const kf_visitor_auth_t *visitor);
/* Forgets every cached credential, as a restarted server would (tests). */
void kf_authn_forget_all(kf_authn_t *authn);
/* Forgets a session (by its token's hash): its agent logged out. */
void kf_authn_forget_session(kf_authn_t *authn, const char *token_hash);
/* An admin changed agent_id's account (its store write is done): the agent's cached sessions
 * are forgotten, so that their next request reads the change; or, when the account is now
 * disabled (its sessions deleted with it), kept, marked, to answer that they were ended by it
 * until they would have expired. O(cached sessions); agents are few. */
void kf_authn_agent_changed(kf_authn_t *authn, int64_t agent_id, bool disabled);
/* A visitor's name changed (its store write is done): their cached tokens are forgotten, so
 * that the next request reads it. O(cache slots); names change rarely. */
void kf_authn_visitor_changed(kf_authn_t *authn, int64_t visitor_id);

/* Signs a push ticket for kind and subject, valid for the configured ticket lifetime. */
int kf_authn_ticket(kf_authn_t *authn, char kind, int64_t subject, char out[KF_TICKET_SIZE]);
/* Refuses from now on every ticket signed for kind and subject until now (a logout, a disabled
 * agent: a ticket fetched before must not open a stream after). */
void kf_authn_revoke_tickets(kf_authn_t *authn, char kind, int64_t subject);
/* The tickets' lifetime in seconds, as the API tells clients. */
int64_t kf_authn_ticket_seconds(const kf_authn_t *authn);

#endif
