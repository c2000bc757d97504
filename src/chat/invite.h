/* invite.h: proactive invitations' part of the application (chat/invite_api.c): the visitors
 * online now (chat/browsing.h) and the invitation rules, kept in step with what the pages report.
 * Loop thread only. */
#ifndef KF_CHAT_INVITE_H
#define KF_CHAT_INVITE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "chat/app.h"

/* At start-up (it waits for the store): the table of visitors online, and the rules read from
 * the store. 0, or the store's failure, or KF_EINVAL for a stored document that is no list. */
int kf_invite_start(kf_app_t *app);
/* Frees what kf_invite_start made (safe on a part never started). */
void kf_invite_stop(kf_app_t *app);
/* The visitor's page reported itself (stored): they are online, on url. */
void kf_invite_page(kf_app_t *app, int64_t visitor_id, const char *url, const char *title);
/* A push request of the visitor, who is called name (NULL or "": not known here). */
void kf_invite_seen(kf_app_t *app, int64_t visitor_id, const char *name);
/* Every few seconds: visitors gone quiet go offline. */
void kf_invite_sweep(kf_app_t *app);
/* Another node or loop changed the rules to rules (a list; what is not a valid rule in it is
 * left out): this one's follow, and its next rule id comes after theirs. */
void kf_invite_take_rules(kf_app_t *app, json_t *rules);
/* Whether a rule's path pattern (a glob: '*' any characters) matches the start of path. */
bool kf_invite_path_matches(const char *pattern, const char *path);

#endif
