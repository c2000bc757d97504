/* app.h: the chat application, as the rest of kefu sees it: a request handler for the HTTP
 * server (pages, the JSON API, push), its configuration and life cycle, agent accounts for the
 * command line, and the route table with who may call each route. */
#ifndef KF_CHAT_APP_H
#define KF_CHAT_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/router.h"
#include "http/server.h"
#include "push/push.h"
#include "store/store.h"

/* What one loop counts that GET /metrics sums over the loops of the process (kefu --loops): the
 * push connections as they come and go; the bus's figures refreshed every second, and a scrape
 * on any loop reads them all (its own fresh, the others' at most a second old). */
typedef struct kf_loop_figures {
    atomic_uint_fast64_t push[KF_PUSH_TRANSPORT_COUNT]; /* push connections open, by transport */
    atomic_uint_fast64_t bus_sent, bus_received, bus_lost, bus_malformed, bus_connects, bus_holes;
} kf_loop_figures_t;

typedef struct kf_app_config {
    size_t max_message_chars;           /* longest message body in code points (4000) */
    int64_t session_ttl_ms;             /* agent session lifetime (7 days) */
    int64_t ticket_ttl_ms;              /* push ticket lifetime (60 s) */
    bool secure_cookies;                /* add Secure to cookies (when served behind TLS) */
    const char *const *allowed_origins; /* origins besides our own that may open a WebSocket */
    size_t allowed_origin_count;
    double login_failures_per_account; /* failed logins allowed per account per 15 min (5) */
    double login_failures_per_address; /* ... and per client address (20) */
    /* Abuse limits (docs/SECURITY.md); 0 turns one off. */
    double visitor_requests_per_minute; /* API and push requests per visitor: rate (120) */
    double visitor_requests_burst;      /* ... and bucket size (60) */
    double visitor_messages_per_minute; /* messages a visitor sends, HTTP or WebSocket (30) */
    double visitor_messages_burst;      /* ... and bucket size (20) */
    double visitor_sessions_per_minute; /* new visitor sessions per client address (60) */
    double visitor_sessions_burst;      /* ... and bucket size (60) */
    size_t max_push_per_visitor;        /* held, streaming or WebSocket push connections (8) */
    size_t max_push_per_agent;          /* ... per agent (32) */
    /* Who may read GET /metrics (chat/ops_api.c): addresses or ADDRESS/BITS prefixes
     * (base/netaddr.h); NULL for loopback only (127.0.0.0/8 and ::1), an empty list for none. */
    const char *const *metrics_allow;
    size_t metrics_allow_count;
    const char *metrics_token;   /* a bearer token that may read it from anywhere, or NULL */
    bool webhooks_allow_private; /* webhooks may call private and loopback addresses (tests) */
    bool require_verified; /* refuse visitors the site has not vouched for (docs/IDENTITY.md) */
    /* The bus between nodes: "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" (bus/bus.h), or NULL
     * for in-process (one node). Holds a password: logs show it through kf_bus_url_redact. */
    const char *bus_url;
    /* The store's newest message id when the process started (store.h, message_newest): where
     * the Redis bus stands until it delivers a newer one (bus/bus.h). */
    uint64_t newest_message;
    size_t max_upload_bytes; /* largest attachment (10 MiB): the upload routes' body limit */
    /* kefu --loops N: the group of loops this application's loop is one of (bus/bus.h: events
     * cross between them), or NULL for one loop; and its index in it. Loop 0 alone sends
     * webhooks and wakes snoozed conversations: one sender and one look per process. */
    struct kf_loops *loops;
    size_t loop_index;
    size_t loop_count;               /* the loops of the process (1 for one) */
    kf_loop_figures_t *loop_figures; /* loop_count slots (NULL for one loop), the process's */
    /* The abuse limits' tables and the push quota, shared by every loop of the process (one
     * budget per client, not one per loop), or NULL: the application makes its own. Borrowed:
     * they outlive the application. */
    struct kf_limits *shared_limits;
    struct kf_quota *shared_quota;
    /* Another loop's application whose agents' presence and visitors online this one shares
     * (chat/presence.h, chat/browsing.h), or NULL: its own. */
    struct kf_app *shared_presence_of;
} kf_app_config_t;

/* The application: opaque outside src/chat (chat/internal.h holds it). */
typedef struct kf_app kf_app_t;

/* Who may call a route; the route table declares one for each (chat/routes.c), and the
 * dispatcher checks it before the handler runs, so that no handler can forget to. */
typedef enum {
    KF_ACCESS_PUBLIC,   /* anyone: pages, the health check, starting a visitor session, login */
    KF_ACCESS_VISITOR,  /* a visitor's bearer token (and within the visitor's request limit) */
    KF_ACCESS_AGENT,    /* an agent's session cookie */
    KF_ACCESS_ADMIN,    /* an agent's session cookie, of an agent whose role is admin */
    KF_ACCESS_LISTENER, /* a push ticket, a visitor's bearer token or an agent's session cookie */
} kf_access_t;

/* The name of an access level, as `kefu routes` and docs/API.md write it. */
const char *kf_access_name(kf_access_t access);

void kf_app_config_default(kf_app_config_t *config);
/* Creates the application over an open store (loads or creates the ticket key, waiting for the
 * store: at start-up, before the loop serves). Returns NULL and sets *err on failure. */
kf_app_t *kf_app_new(uv_loop_t *loop, kf_store_t *store, const kf_app_config_t *config,
                     const kf_push_config_t *push_config, int *err);
/* The server's request handler; req->app is the kf_app_t. */
void kf_app_handle(kf_req_t *req);
/* The server's body_limit (http/server.h): max_upload_bytes for the attachment upload routes,
 * else 0 (the server's own limit). app is the kf_app_t. */
size_t kf_app_body_limit(void *app, const kf_http_request_t *head);
/* Entry i of the route table: its method and pattern, who may call it and whether it needs the
 * session's CSRF token; NULL past the last. For `kefu routes`, tests and fuzzers. */
const kf_route_t *kf_app_route(size_t i, kf_access_t *access, bool *csrf);
/* Waits until everything queued in the store has run and runs what waits for it (the answers and
 * publishes, and what they queue in turn). Blocks: for shutdown and tests, not while serving. */
void kf_app_commit(kf_app_t *app);
/* Commits and answers what waits for it, answers held long polls and ends streams (before the
 * server stops). */
void kf_app_drain(kf_app_t *app);
/* From now on /readyz answers 503 shutting_down (the server goes on serving until drained). */
void kf_app_set_shutting_down(kf_app_t *app);
void kf_app_free(kf_app_t *app);

/* The site secret as 64 hex characters (docs/IDENTITY.md), made on the first call and kept in
 * the store's settings, waiting for the store: for start-up and `kefu site-secret`. Returns 0 or
 * a store error. */
#define KF_SITE_SECRET_SIZE 65
int kf_app_site_secret(kf_store_t *store, char out[KF_SITE_SECRET_SIZE]);

/* Creates an agent account (e-mail lower-cased, password hashed), waiting for the store: for
 * start-up and `kefu user add`, never on a serving loop. Returns 0, KF_EEXISTS, KF_EINVAL (bad
 * e-mail, role or empty password) or a store error. */
int kf_app_create_agent(kf_store_t *store, const char *email, const char *name, const char *role,
                        const char *password);

#endif
