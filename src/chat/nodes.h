/* nodes.h: what one kefu node (or loop: kefu --loops, where each loop has its own) tells the others
 * so that the state each process keeps for itself follows a change made on another: the credential
 * caches after a logout, an account changed or disabled, a visitor's new name, the desk's settings.
 * Told on the hub's KF_NODES_TOPIC, which the bus carries to the other nodes only (kf_hub_relay:
 * the teller has applied the change itself) and no push client follows. With the in-process bus
 * nobody hears it. */
#ifndef KF_CHAT_NODES_H
#define KF_CHAT_NODES_H

#include <stdbool.h>
#include <stdint.h>

#include "chat/presence.h"

typedef struct kf_app kf_app_t;

#define KF_NODES_TOPIC "kefu:nodes"

/* Starts and stops listening (kf_app_new, kf_app_free). */
void kf_nodes_start(kf_app_t *app);
void kf_nodes_stop(kf_app_t *app);
/* A session (its token's hash) ended: its agent logged out. */
void kf_nodes_tell_logout(kf_app_t *app, const char *token_hash, int64_t agent_id);
/* An admin changed agent_id's account; ended: disabled or given a new password, so that its
 * push connections and tickets end too. */
void kf_nodes_tell_agent_changed(kf_app_t *app, int64_t agent_id, bool disabled, bool ended);
/* agent_id logged in (or proved its password) with email: the others lift its lock-out too. */
void kf_nodes_tell_login(kf_app_t *app, int64_t agent_id, const char *email);
/* A visitor's name (or identity) changed. */
void kf_nodes_tell_visitor_changed(kf_app_t *app, int64_t visitor_id);
/* An agent chose online or away on this node: every node shows the choice. */
void kf_nodes_tell_presence(kf_app_t *app, int64_t agent_id, kf_presence_status_t status);
/* The agents whose console this node has seen within within_ms (kf_presence_each_here), at each
 * presence sweep: each node keeps presence from push connections, and an agent whose connections
 * are on one node must show online on all. Nothing is told when no console was seen here. */
void kf_nodes_tell_here(kf_app_t *app, uint64_t within_ms);
/* The desk's settings changed (PATCH /api/settings): the others take app's typing_preview and
 * widget settings as they are now, as if read from the store at start. */
void kf_nodes_tell_settings(kf_app_t *app);
/* The webhooks changed (one added, changed or deleted): the others' dispatchers read which
 * events some webhook takes again (chat/webhooks.h, kf_webhooks_kick). */
void kf_nodes_tell_webhooks(kf_app_t *app);
/* The invitation rules changed here (stored): the others take the whole list as it is now. */
void kf_nodes_tell_invite_rules(kf_app_t *app);
/* News for the engine of automatic assignment that looks for the process (chat/autoassign.h):
 * "kick", "teams", or "replied" (conversation_id, agent_id). */
void kf_nodes_tell_autoassign(kf_app_t *app, const char *news, int64_t conversation_id,
                              int64_t agent_id);

#endif
