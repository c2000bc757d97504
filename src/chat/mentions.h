/* mentions.h: @mentions in private notes. "@" followed by an agent's display name notifies that
 * agent with a "mention" event (docs/API.md). The rule, for names that may hold spaces: an "@" at
 * the start of the text or after a character that is not an ASCII letter, digit or "_" (so an
 * e-mail address mentions nobody) is followed by the longest agent name that matches there,
 * ASCII case ignored (other characters must be equal), and that name must end the text or be
 * followed by a character that is not an ASCII letter, digit or "_". Loop thread only. */
#ifndef KF_CHAT_MENTIONS_H
#define KF_CHAT_MENTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "chat/app.h"
#include "store/store.h"

/* Sets mentioned[i] for each of the count names (NULL or "" never match) that body mentions;
 * leaves the others as they are. Returns how many it set (each name once). O(length of body x
 * names at each "@"). */
size_t kf_mentions_find(const char *body, const char *const *names, size_t count, bool *mentioned);

/* Once note (a stored private note) is durable: reads the agents and publishes a "mention" event
 * for each enabled agent the note mentions, but its author. Copies what it keeps of note. A store
 * failure publishes nothing (the note itself is stored and shown all the same). */
void kf_chat_publish_mentions(kf_app_t *app, const kf_message_t *note);

#endif
