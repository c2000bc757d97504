/* replay.h: the push module's replay source (push/push.h, kf_push_source_t): the messages a
 * listener missed after its cursor, read from the store. And what lets most streams skip that
 * read: for each visitor (a direct-mapped table, so one may lose their slot to another) and over
 * all messages, an id that no stored message is above. A stream that opens with a current cursor
 * (a page load, a reconnect) then needs no query; anything newer is still to be published.
 * Loop thread only. */
#ifndef KF_CHAT_REPLAY_H
#define KF_CHAT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "push/push.h"
#include "store/store.h"

typedef struct kf_replay kf_replay_t;

kf_replay_t *kf_replay_new(kf_store_t *store);
/* Frees the module; replays still deferred are dropped without their end (run
 * kf_replay_run_deferred first while their clients still live). */
void kf_replay_free(kf_replay_t *replay);
/* A source for the listener (kind, subject) following topic; the source borrows replay and
 * topic, which must outlive the call that uses it (kf_push_serve copies what it keeps). */
kf_push_source_t kf_replay_source(kf_replay_t *replay, char kind, int64_t subject,
                                  const char *topic);
/* A message is stored. Called before this loop delivers it (its own, before it is published, or
 * when it cannot be; another loop's or node's, as it arrives), so not always in id order: a
 * stream whose cursor is at or above the newest noted id needs no replay. visitor_id 0 (a private
 * note: kf_chat_audience_visitor) tells the agents' streams only. */
void kf_replay_note_message(kf_replay_t *replay, int64_t visitor_id, int64_t message_id);
/* A visitor was created on this loop, with no message yet: their first stream (cursor 0) needs
 * no query here. Only for a new visitor: one found again (an identified user) may have messages. */
void kf_replay_note_new_visitor(kf_replay_t *replay, int64_t visitor_id);
/* Forgets what it knows of stored messages, as a restarted server would: for tests, and after a
 * gap on the bus between nodes (chat/app.c), when other nodes may have stored messages unseen. */
void kf_replay_forget(kf_replay_t *replay);
/* Ends the replays that needed no query, from the loop's store wake-up: a replay's end never
 * comes from inside the call that started it. Returns how many it ended. */
size_t kf_replay_run_deferred(kf_replay_t *replay);
/* Asks to be woken for kf_replay_run_deferred: notify(data) when a replay is deferred. */
void kf_replay_set_notify(kf_replay_t *replay, void (*notify)(void *data), void *data);

#endif
