/* handlers.h: the handler of every route in the route table (chat/routes.c), by file: pages.c,
 * visitor_api.c, agent_api.c, conversation_api.c, canned_api.c, teams_api.c,
 * visitor_details_api.c, rating_api.c, search_api.c, reports_api.c, ops_api.c, invite_api.c,
 * diag_api.c, integrations_api.c and live.c. Each runs once the dispatcher has checked the
 * route's access (chat/call.h). */
#ifndef KF_CHAT_HANDLERS_H
#define KF_CHAT_HANDLERS_H

#include <stdbool.h>

#include "chat/call.h"

/* pages.c */
void kf_page_root(const kf_call_t *call);
void kf_page_chat(const kf_call_t *call);
void kf_page_agent(const kf_call_t *call);
/* The website widget: its chat page (framed by any site) and the loader a site pastes. */
void kf_page_widget(const kf_call_t *call);
void kf_page_widget_loader(const kf_call_t *call);
void kf_page_health(const kf_call_t *call);
/* A file under /static/ (not a route: a prefix): exact lookup in the embedded table. */
void kf_page_static(kf_req_t *req, const char *name, size_t name_len);

/* ops_api.c: what operators and their load balancers and monitors call */
void kf_ops_ready(const kf_call_t *call);
/* GET /metrics's check (before anything else): the caller is on the allow-list or has the token,
 * else 403 and false. */
bool kf_ops_metrics_check(kf_req_t *req);
void kf_ops_metrics(const kf_call_t *call);

/* visitor_api.c */
void kf_visitor_session_create(const kf_call_t *call);
void kf_visitor_session_get(const kf_call_t *call);
void kf_visitor_message_post(const kf_call_t *call);
void kf_visitor_messages_get(const kf_call_t *call);
void kf_visitor_read_post(const kf_call_t *call);
void kf_visitor_typing_post(const kf_call_t *call);
void kf_visitor_ticket_post(const kf_call_t *call);

/* identity_api.c: verified visitors (docs/IDENTITY.md). A session-creating body that carries
 * a signature goes to kf_visitor_identify; admins read the site secret. */
void kf_visitor_identify(const kf_call_t *call, json_t *root);
void kf_site_secret_get(const kf_call_t *call);
/* visitor_details_api.c: a visitor as the API shows them (id, name, e-mail, verified, user_id). */
json_t *kf_visitor_identity_json(const kf_visitor_t *visitor);

/* agent_api.c */
void kf_agent_login(const kf_call_t *call);
void kf_agent_me(const kf_call_t *call);
void kf_agent_logout(const kf_call_t *call);
void kf_agent_ticket_post(const kf_call_t *call);
void kf_agent_status_post(const kf_call_t *call);
void kf_agents_get(const kf_call_t *call);
void kf_agents_create(const kf_call_t *call);
void kf_agents_patch(const kf_call_t *call);

/* conversation_api.c */
void kf_conversations_get(const kf_call_t *call);
void kf_conversation_counts_get(const kf_call_t *call);
void kf_conversation_get(const kf_call_t *call);
void kf_conversation_messages_get(const kf_call_t *call);
void kf_conversation_transcript_get(const kf_call_t *call);
void kf_conversation_message_post(const kf_call_t *call);
void kf_conversation_read_post(const kf_call_t *call);
void kf_conversation_typing_post(const kf_call_t *call);
void kf_conversation_status_post(const kf_call_t *call);
void kf_conversation_claim_post(const kf_call_t *call);
void kf_conversation_assign_post(const kf_call_t *call);

/* integrations_api.c: API tokens and webhooks, an admin's */
void kf_tokens_get(const kf_call_t *call);
void kf_tokens_post(const kf_call_t *call);
void kf_tokens_delete(const kf_call_t *call);
void kf_webhooks_get(const kf_call_t *call);
void kf_webhooks_post(const kf_call_t *call);
void kf_webhooks_delete(const kf_call_t *call);
void kf_webhook_deliveries_get(const kf_call_t *call);
/* invite_api.c: the visitors browsing now, invitations and their rules */
void kf_visitors_online_get(const kf_call_t *call);
void kf_visitor_invite_post(const kf_call_t *call);
void kf_invite_rules_get(const kf_call_t *call);
void kf_invite_rules_post(const kf_call_t *call);
void kf_invite_rule_delete(const kf_call_t *call);
void kf_visitor_invite_rules_get(const kf_call_t *call);
void kf_visitor_invite_rule_fire(const kf_call_t *call);

/* diag_api.c: the connection check (/diag): its page and the push endpoints it tries, which
 * need no credentials and reach no conversation */
void kf_page_diag(const kf_call_t *call);
bool kf_diag_check(kf_req_t *req);
void kf_diag_push(const kf_call_t *call);
/* attachment_api.c */
void kf_visitor_attachment_post(const kf_call_t *call);
void kf_conversation_attachment_post(const kf_call_t *call);
void kf_attachment_get(const kf_call_t *call);

/* canned_api.c */
void kf_canned_get(const kf_call_t *call);
void kf_canned_post(const kf_call_t *call);
void kf_canned_patch(const kf_call_t *call);
void kf_canned_delete(const kf_call_t *call);

/* teams_api.c */
void kf_teams_get(const kf_call_t *call);
void kf_teams_post(const kf_call_t *call);
void kf_teams_patch(const kf_call_t *call);
void kf_team_members_put(const kf_call_t *call);

/* rating_api.c */
void kf_visitor_rating_post(const kf_call_t *call);

/* visitor_details_api.c */
void kf_visitor_page_post(const kf_call_t *call);
void kf_visitor_get(const kf_call_t *call);
void kf_visitor_patch(const kf_call_t *call);
void kf_conversation_visitor_get(const kf_call_t *call);
void kf_conversation_visitor_patch(const kf_call_t *call);
void kf_settings_get(const kf_call_t *call);
void kf_settings_patch(const kf_call_t *call);

/* widget_api.c: the widget's public settings and availability (the loader's, another origin's);
 * an admin's change of them, the "widget" of a PATCH /api/settings body (change borrowed). */
void kf_widget_get(const kf_call_t *call);
void kf_widget_settings_patch(const kf_call_t *call, const json_t *change);
/* PUT /api/visitor/form: the visitor's answers to the pre-chat form's own fields and consent. */
void kf_visitor_form_put(const kf_call_t *call);
/* A page report (docs/API.md, "Visitor details") from visitor_id, over HTTP or WebSocket: checked
 * at once (KF_EPROTO with err filled; done never runs), else stored, pushed to the consoles as a
 * "visitor" event, then done. */
int kf_visitor_page_report(kf_app_t *app, int64_t visitor_id, json_t *body, kf_chat_done_cb done,
                           void *done_data, kf_chat_error_t *err);
/* search_api.c */
void kf_search_get(const kf_call_t *call);

/* reports_api.c */
void kf_reports_get(const kf_call_t *call);

/* live.c: the push endpoints. Their request's cursor, hold and origin are checked before who
 * sends it is looked up (kf_live_check), so a malformed one costs no store read. */
bool kf_live_check(kf_req_t *req);
void kf_live_poll(const kf_call_t *call);
void kf_live_longpoll(const kf_call_t *call);
void kf_live_iframe(const kf_call_t *call);
void kf_live_sse(const kf_call_t *call);
void kf_live_ws(const kf_call_t *call);

/* ws_actions.c: what WebSocket clients send (kf_push_config_t's receive; ctx is the app). */
void kf_ws_receive(void *ctx, kf_push_client_t *client, char kind, int64_t subject,
                   const char *text, size_t len);

#endif
