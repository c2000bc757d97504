/* routes.c: the route table, and the dispatcher that enforces it. Each route declares who may call
 * it and whether it needs the session's CSRF token; the dispatcher finds the caller
 * (chat/authn.h), refuses who may not (401, 403, 429), and only then runs the handler, with the
 * caller in a typed context (chat/call.h): a handler cannot forget a check. The top of the chat
 * layer: routes -> handlers -> actions -> events. */
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "chat/handlers.h"

/* One route: its method and pattern, who may call it, and what runs. */
typedef struct endpoint {
    kf_route_t route;             /* first: the router matches on it */
    kf_access_t access;           /* who may call it */
    bool csrf;                    /* the agent session's X-CSRF-Token is required (state changes) */
    bool (*check)(kf_req_t *req); /* the request's shape, checked before the caller is looked
                                   * up (answers and returns false when it is wrong), or NULL */
    kf_call_fn handler;
} endpoint_t;

/* Every route. A GET route also answers HEAD. Agent routes that change state (any method but
 * GET) carry csrf. */
static const endpoint_t endpoints[] = {
    {{"GET", "/"}, KF_ACCESS_PUBLIC, false, NULL, kf_page_root},
    {{"GET", "/chat"}, KF_ACCESS_PUBLIC, false, NULL, kf_page_chat},
    {{"GET", "/agent"}, KF_ACCESS_PUBLIC, false, NULL, kf_page_agent},
    {{"GET", "/healthz"}, KF_ACCESS_PUBLIC, false, NULL, kf_page_health},
    {{"GET", "/diag"}, KF_ACCESS_PUBLIC, false, NULL, kf_page_diag},
    {{"GET", "/widget"}, KF_ACCESS_PUBLIC, false, NULL, kf_page_widget},
    {{"GET", "/widget.js"}, KF_ACCESS_PUBLIC, false, NULL, kf_page_widget_loader},
    {{"GET", "/api/widget"}, KF_ACCESS_PUBLIC, false, NULL, kf_widget_get},
    {{"GET", "/readyz"}, KF_ACCESS_PUBLIC, false, NULL, kf_ops_ready},
    /* Public to the dispatcher; its check admits allow-listed addresses or the token. */
    {{"GET", "/metrics"}, KF_ACCESS_PUBLIC, false, kf_ops_metrics_check, kf_ops_metrics},
    {{"POST", "/api/visitor/session"}, KF_ACCESS_PUBLIC, false, NULL, kf_visitor_session_create},
    {{"GET", "/api/visitor/session"}, KF_ACCESS_VISITOR, false, NULL, kf_visitor_session_get},
    {{"POST", "/api/visitor/messages"}, KF_ACCESS_VISITOR, false, NULL, kf_visitor_message_post},
    {{"GET", "/api/visitor/messages"}, KF_ACCESS_VISITOR, false, NULL, kf_visitor_messages_get},
    {{"POST", "/api/visitor/read"}, KF_ACCESS_VISITOR, false, NULL, kf_visitor_read_post},
    {{"POST", "/api/visitor/typing"}, KF_ACCESS_VISITOR, false, NULL, kf_visitor_typing_post},
    {{"POST", "/api/visitor/push-ticket"}, KF_ACCESS_VISITOR, false, NULL, kf_visitor_ticket_post},
    {{"POST", "/api/visitor/page"}, KF_ACCESS_VISITOR, false, NULL, kf_visitor_page_post},
    {{"POST", "/api/visitor/rating"}, KF_ACCESS_VISITOR, false, NULL, kf_visitor_rating_post},
    /* Uploads: the body is the file, up to --max-upload-bytes (kf_app_body_limit). */
    {{"POST", "/api/visitor/attachments"},
     KF_ACCESS_VISITOR,
     false,
     NULL,
     kf_visitor_attachment_post},
    {{"POST", "/api/conversations/{id}/attachments"},
     KF_ACCESS_AGENT,
     true,
     NULL,
     kf_conversation_attachment_post},
    /* A listener's credentials: an <img> cannot send a bearer token, so a visitor's page puts a
     * push ticket in its URL; agents send their cookie. The handler lets a visitor see only
     * their own conversation's files. */
    {{"GET", "/api/attachments/{id}"}, KF_ACCESS_LISTENER, false, NULL, kf_attachment_get},
    {{"GET", "/api/visitor"}, KF_ACCESS_VISITOR, false, NULL, kf_visitor_get},
    {{"GET", "/api/visitor/invite-rules"},
     KF_ACCESS_VISITOR,
     false,
     NULL,
     kf_visitor_invite_rules_get},
    {{"POST", "/api/visitor/invite-rules/{id}/fire"},
     KF_ACCESS_VISITOR,
     false,
     NULL,
     kf_visitor_invite_rule_fire},
    {{"GET", "/api/visitors/online"}, KF_ACCESS_AGENT, false, NULL, kf_visitors_online_get},
    {{"POST", "/api/visitors/{id}/invite"}, KF_ACCESS_AGENT, true, NULL, kf_visitor_invite_post},
    {{"GET", "/api/invite-rules"}, KF_ACCESS_AGENT, false, NULL, kf_invite_rules_get},
    {{"POST", "/api/invite-rules"}, KF_ACCESS_ADMIN, true, NULL, kf_invite_rules_post},
    {{"DELETE", "/api/invite-rules/{id}"}, KF_ACCESS_ADMIN, true, NULL, kf_invite_rule_delete},
    {{"PATCH", "/api/visitor"}, KF_ACCESS_VISITOR, false, NULL, kf_visitor_patch},
    {{"PUT", "/api/visitor/form"}, KF_ACCESS_VISITOR, false, NULL, kf_visitor_form_put},
    {{"GET", "/api/conversations/{id}/visitor"},
     KF_ACCESS_AGENT,
     false,
     NULL,
     kf_conversation_visitor_get},
    {{"PATCH", "/api/conversations/{id}/visitor"},
     KF_ACCESS_AGENT,
     true,
     NULL,
     kf_conversation_visitor_patch},
    {{"GET", "/api/settings"}, KF_ACCESS_AGENT, false, NULL, kf_settings_get},
    {{"PATCH", "/api/settings"}, KF_ACCESS_ADMIN, true, NULL, kf_settings_patch},
    {{"GET", "/api/settings/site-secret"}, KF_ACCESS_ADMIN, false, NULL, kf_site_secret_get},
    {{"POST", "/api/agent/login"}, KF_ACCESS_PUBLIC, false, NULL, kf_agent_login},
    {{"GET", "/api/agent/me"}, KF_ACCESS_AGENT, false, NULL, kf_agent_me},
    {{"POST", "/api/agent/logout"}, KF_ACCESS_AGENT, true, NULL, kf_agent_logout},
    {{"POST", "/api/agent/push-ticket"}, KF_ACCESS_AGENT, true, NULL, kf_agent_ticket_post},
    {{"POST", "/api/agent/status"}, KF_ACCESS_AGENT, true, NULL, kf_agent_status_post},
    {{"GET", "/api/agents"}, KF_ACCESS_AGENT, false, NULL, kf_agents_get},
    {{"POST", "/api/agents"}, KF_ACCESS_ADMIN, true, NULL, kf_agents_create},
    {{"PATCH", "/api/agents/{id}"}, KF_ACCESS_AGENT, true, NULL, kf_agents_patch},
    {{"GET", "/api/teams"}, KF_ACCESS_AGENT, false, NULL, kf_teams_get},
    {{"POST", "/api/teams"}, KF_ACCESS_ADMIN, true, NULL, kf_teams_post},
    {{"PATCH", "/api/teams/{id}"}, KF_ACCESS_ADMIN, true, NULL, kf_teams_patch},
    {{"PUT", "/api/teams/{id}/members"}, KF_ACCESS_ADMIN, true, NULL, kf_team_members_put},
    {{"GET", "/api/tokens"}, KF_ACCESS_ADMIN, false, NULL, kf_tokens_get},
    {{"POST", "/api/tokens"}, KF_ACCESS_ADMIN, true, NULL, kf_tokens_post},
    {{"DELETE", "/api/tokens/{id}"}, KF_ACCESS_ADMIN, true, NULL, kf_tokens_delete},
    {{"GET", "/api/webhooks"}, KF_ACCESS_ADMIN, false, NULL, kf_webhooks_get},
    {{"POST", "/api/webhooks"}, KF_ACCESS_ADMIN, true, NULL, kf_webhooks_post},
    {{"DELETE", "/api/webhooks/{id}"}, KF_ACCESS_ADMIN, true, NULL, kf_webhooks_delete},
    {{"GET", "/api/webhooks/{id}/deliveries"},
     KF_ACCESS_ADMIN,
     false,
     NULL,
     kf_webhook_deliveries_get},
    {{"GET", "/api/canned"}, KF_ACCESS_AGENT, false, NULL, kf_canned_get},
    {{"POST", "/api/canned"}, KF_ACCESS_AGENT, true, NULL, kf_canned_post},
    {{"PATCH", "/api/canned/{id}"}, KF_ACCESS_AGENT, true, NULL, kf_canned_patch},
    {{"DELETE", "/api/canned/{id}"}, KF_ACCESS_AGENT, true, NULL, kf_canned_delete},
    {{"GET", "/api/conversations"}, KF_ACCESS_AGENT, false, NULL, kf_conversations_get},
    {{"GET", "/api/conversations/counts"},
     KF_ACCESS_AGENT,
     false,
     NULL,
     kf_conversation_counts_get},
    {{"GET", "/api/conversations/{id}"}, KF_ACCESS_AGENT, false, NULL, kf_conversation_get},
    {{"GET", "/api/conversations/{id}/messages"},
     KF_ACCESS_AGENT,
     false,
     NULL,
     kf_conversation_messages_get},
    {{"GET", "/api/conversations/{id}/transcript"},
     KF_ACCESS_AGENT,
     false,
     NULL,
     kf_conversation_transcript_get},
    {{"POST", "/api/conversations/{id}/messages"},
     KF_ACCESS_AGENT,
     true,
     NULL,
     kf_conversation_message_post},
    {{"POST", "/api/conversations/{id}/read"},
     KF_ACCESS_AGENT,
     true,
     NULL,
     kf_conversation_read_post},
    {{"POST", "/api/conversations/{id}/typing"},
     KF_ACCESS_AGENT,
     true,
     NULL,
     kf_conversation_typing_post},
    {{"POST", "/api/conversations/{id}/status"},
     KF_ACCESS_AGENT,
     true,
     NULL,
     kf_conversation_status_post},
    {{"POST", "/api/conversations/{id}/claim"},
     KF_ACCESS_AGENT,
     true,
     NULL,
     kf_conversation_claim_post},
    {{"POST", "/api/conversations/{id}/assign"},
     KF_ACCESS_AGENT,
     true,
     NULL,
     kf_conversation_assign_post},
    {{"GET", "/api/search"}, KF_ACCESS_AGENT, false, NULL, kf_search_get},
    /* Agents see their own figures only (reports_api.c), admins everyone's. */
    {{"GET", "/api/reports"}, KF_ACCESS_AGENT, false, NULL, kf_reports_get},
    {{"GET", "/push/poll"}, KF_ACCESS_LISTENER, false, kf_live_check, kf_live_poll},
    {{"GET", "/push/longpoll"}, KF_ACCESS_LISTENER, false, kf_live_check, kf_live_longpoll},
    {{"GET", "/push/iframe"}, KF_ACCESS_LISTENER, false, kf_live_check, kf_live_iframe},
    {{"GET", "/push/sse"}, KF_ACCESS_LISTENER, false, kf_live_check, kf_live_sse},
    {{"GET", "/push/ws"}, KF_ACCESS_LISTENER, false, kf_live_check, kf_live_ws},
    /* The connection check's: anonymous, a topic nobody publishes to (chat/diag_api.c). */
    {{"GET", "/diag/push/poll"}, KF_ACCESS_PUBLIC, false, kf_diag_check, kf_diag_push},
    {{"GET", "/diag/push/longpoll"}, KF_ACCESS_PUBLIC, false, kf_diag_check, kf_diag_push},
    {{"GET", "/diag/push/iframe"}, KF_ACCESS_PUBLIC, false, kf_diag_check, kf_diag_push},
    {{"GET", "/diag/push/sse"}, KF_ACCESS_PUBLIC, false, kf_diag_check, kf_diag_push},
    {{"GET", "/diag/push/ws"}, KF_ACCESS_PUBLIC, false, kf_diag_check, kf_diag_push},
};

#define ENDPOINT_COUNT (sizeof endpoints / sizeof endpoints[0])

const char *kf_access_name(kf_access_t access)
{
    switch (access) {
    case KF_ACCESS_PUBLIC: return "public";
    case KF_ACCESS_VISITOR: return "visitor";
    case KF_ACCESS_AGENT: return "agent";
    case KF_ACCESS_ADMIN: return "admin";
    case KF_ACCESS_LISTENER: return "listener";
    }
    return "?";
}

const kf_route_t *kf_app_route(size_t i, kf_access_t *access, bool *csrf)
{
    if (i >= ENDPOINT_COUNT)
        return NULL;
    if (access != NULL)
        *access = endpoints[i].access;
    if (csrf != NULL)
        *csrf = endpoints[i].csrf;
    return &endpoints[i].route;
}

/* The credentials an access level takes (chat/authn.h). */
static unsigned credentials(kf_access_t access)
{
    switch (access) {
    case KF_ACCESS_VISITOR: return KF_CRED_BEARER;
    case KF_ACCESS_AGENT:
    case KF_ACCESS_ADMIN: return KF_CRED_API | KF_CRED_COOKIE;
    case KF_ACCESS_LISTENER: return KF_CRED_TICKET | KF_CRED_BEARER | KF_CRED_COOKIE;
    case KF_ACCESS_PUBLIC: break;
    }
    return 0;
}

/* What a 401 says, by what the route takes. */
static const char *unauthorized_message(kf_req_t *req, kf_access_t access, int rc)
{
    if (access == KF_ACCESS_VISITOR)
        return "a valid visitor token is required (Authorization: Bearer)";
    if ((access == KF_ACCESS_AGENT || access == KF_ACCESS_ADMIN) &&
        kf_http_header_get(req->head, "Authorization") != NULL)
        return "unknown or revoked API token";
    if (access == KF_ACCESS_AGENT || access == KF_ACCESS_ADMIN)
        return "log in as an agent first";
    char ticket[8];
    if (kf_http_query_get(req->head->query, "ticket", ticket, sizeof ticket) != KF_ENOTFOUND)
        return rc == KF_EEXPIRED ? "the push ticket has expired" : "invalid push ticket";
    return "a visitor token, agent session or push ticket is required";
}

/* Whether who may call e (answering the request when not), once who is known. */
static bool allowed(kf_req_t *req, const endpoint_t *e, int rc, const kf_principal_t *who)
{
    kf_app_t *app = req->app;
    if (rc == KF_EAUTH || rc == KF_EEXPIRED) {
        const char *message = unauthorized_message(req, e->access, rc);
        if (strstr(message, "ticket") != NULL && strstr(message, "required") == NULL)
            kf_call_log(req, "bad push ticket");
        kf_call_fail(req, KF_EAUTH, message);
        return false;
    }
    if (rc == KF_EFORBIDDEN) {
        /* A 401 still (the session is over: log in again), saying why, so that the console can
         * tell its agent rather than show them the login form as if nothing had happened. */
        kf_call_log(req, "a session of a disabled agent");
        kf_resp_error(req, 401, "disabled", "this account is disabled");
        return false;
    }
    if (rc != 0) {
        kf_call_fail(req, rc, NULL);
        return false;
    }
    if (e->access == KF_ACCESS_ADMIN && strcmp(who->agent.role, "admin") != 0) {
        kf_call_log(req, "an agent on an admin route");
        kf_call_fail(req, KF_EFORBIDDEN, "this needs an admin");
        return false;
    }
    /* An API token carries no CSRF token: a browser never sends its Authorization header by
     * itself, so a cross-site request cannot borrow it. Its scope is checked instead. */
    char scope = who->kind == 'a' ? who->agent.api_scope : 0;
    bool reads = kf_str_eq(req->head->method, "GET") || kf_str_eq(req->head->method, "HEAD");
    if (scope == 'r' && !reads) {
        kf_call_log(req, "a read-only API token on a write");
        kf_call_fail(req, KF_EFORBIDDEN, "this API token may only read");
        return false;
    }
    if (e->csrf && scope == 0) {
        const char *csrf = who->agent.csrf;
        const kf_str_t *token = kf_http_header_get(req->head, "X-CSRF-Token");
        if (token == NULL || !kf_auth_equal(token->ptr, token->len, csrf, strlen(csrf))) {
            kf_call_log(req, "missing or wrong CSRF token");
            kf_resp_error(req, 403, "csrf", "missing or wrong X-CSRF-Token header");
            return false;
        }
    }
    /* A token from before the setting was turned on is refused too; a push ticket was only ever
     * given to a visitor who passed here. */
    if (who->kind == 'v' && !who->by_ticket && app->config.require_verified &&
        !who->visitor.verified) {
        kf_call_log(req, "an unverified visitor while verification is required");
        kf_resp_error(req, 401, "verification_required",
                      "this site accepts only visitors its own server has signed in");
        return false;
    }
    int64_t wait_ms = 0;
    if (who->kind == 'v' && !kf_limits_visitor_request(app->limits, who->visitor.id, &wait_ms)) {
        kf_call_rate_limited(req, wait_ms, "requests");
        return false;
    }
    return true;
}

/* Finds the route of req, answering 501, 404 or 405 (and serving /static/) when there is none.
 * Returns it, with the path's ids in match, or NULL when it answered. */
static const endpoint_t *route_of(kf_req_t *req, kf_route_match_t *match)
{
    kf_str_t path = req->head->path;
    int rc = kf_router_match(endpoints, ENDPOINT_COUNT, sizeof endpoints[0], req->head->method,
                             path, match);
    if (rc == KF_EPROTO) {
        kf_resp_error(req, 501, "method_not_implemented", "unknown method");
        return NULL;
    }
    static const char static_prefix[] = "/static/";
    size_t prefix_len = sizeof static_prefix - 1;
    if (path.len > prefix_len && memcmp(path.ptr, static_prefix, prefix_len) == 0) {
        if (!kf_str_eq(req->head->method, "GET") && !kf_str_eq(req->head->method, "HEAD")) {
            kf_resp_header(req, "Allow", "GET, HEAD");
            kf_resp_error(req, 405, "method_not_allowed", "static files are read-only");
            return NULL;
        }
        /* Exact lookup in the embedded table: no path ever reaches the file system. */
        kf_page_static(req, path.ptr + prefix_len, path.len - prefix_len);
        return NULL;
    }
    if (rc == KF_ENOTFOUND) {
        kf_resp_error(req, 404, "not_found", "no such endpoint");
        return NULL;
    }
    if (rc != 0) {
        kf_resp_header(req, "Allow", match->allow);
        kf_resp_error(req, 405, "method_not_allowed", "method not allowed on this endpoint");
        return NULL;
    }
    return &endpoints[match->index];
}

/* The caller is known (rc 0) or refused: run the handler if they may. */
static void admitted(kf_req_t *req, const endpoint_t *e, const int64_t *ids, int rc,
                     const kf_principal_t *who)
{
    if (!allowed(req, e, rc, who))
        return;
    kf_call_t call = {.req = req, .app = req->app, .ids = ids, .who = who};
    e->handler(&call);
}

/* A caller the store had to look up: the request is back, its head valid again. */
static void identified(kf_req_t *req, int rc, const kf_principal_t *who)
{
    kf_route_match_t match;
    const endpoint_t *e = route_of(req, &match);
    if (e != NULL) /* the same request, the same route */
        admitted(req, e, match.ids, rc, who);
}

void kf_app_handle(kf_req_t *req)
{
    kf_app_t *app = req->app;
    kf_route_match_t match;
    const endpoint_t *e = route_of(req, &match);
    if (e == NULL)
        return;
    if (e->check != NULL && !e->check(req))
        return;
    if (e->access == KF_ACCESS_PUBLIC) {
        kf_call_t call = {.req = req, .app = app, .ids = match.ids, .who = NULL};
        e->handler(&call);
        return;
    }
    kf_principal_t who;
    int rc = kf_authn_identify(app->authn, req, credentials(e->access), &who, identified);
    if (rc == KF_EAGAIN)
        return; /* the store looks the credential up; identified() goes on */
    admitted(req, e, match.ids, rc, &who);
}
