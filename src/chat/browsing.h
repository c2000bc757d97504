/* browsing.h: the visitors browsing the site now, for the consoles' "Visitors online" list and
 * proactive invitations (docs/API.md, "Visitors online and invitations"). A visitor comes online
 * with a page report (the chat page, or the widget's frame on the host page, reports where it
 * is) and stays online while a push connection of theirs is open, or while their last push
 * request or page report is less than offline_after_ms old (a short poll comes every few
 * seconds); a closed tab goes offline by itself at the next sweep. Kept in memory only: after a
 * restart the list fills again as pages report. The loops of one process (kefu --loops) share
 * one table, each through its own handle (kf_browsing_share), so that a visitor whose page report
 * and push connection landed on different loops is one visitor online, listed whichever loop a
 * console asks. Any loop thread, each with its own handle; changed is called on the thread that
 * made the change, under the table's lock: it must not call back into the table. */
#ifndef KF_CHAT_BROWSING_H
#define KF_CHAT_BROWSING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Invitation rules one visitor's online stretch remembers as fired (a rule fires once each). */
#define KF_BROWSING_MAX_FIRED 16

/* One visitor online, as the list shows them. Strings are owned by the table. */
typedef struct kf_browsing_visitor {
    int64_t visitor_id;
    char *name;         /* their name when known ("" otherwise) */
    char *url;          /* the page they are on */
    char *title;        /* its title */
    int64_t since;      /* wall ms: when this online stretch began (time on site) */
    int64_t page_since; /* wall ms: when they came to this page */
    int64_t invited_at; /* wall ms of the last invitation in this stretch, 0: none */
    uint64_t seen;      /* monotonic ms of the last page report or push request */
    int64_t fired[KF_BROWSING_MAX_FIRED]; /* ids of the rules fired for them in this stretch */
    size_t fired_count;
} kf_browsing_visitor_t;

typedef struct kf_browsing kf_browsing_t;

/* Told of each visitor who came online or changed page (online true), or went offline (false:
 * v is valid during the call only, and gone after it). */
typedef void (*kf_browsing_changed_fn)(void *ctx, const kf_browsing_visitor_t *v, bool online);
/* How many push connections the visitor holds open now. */
typedef size_t (*kf_browsing_open_fn)(void *ctx, int64_t visitor_id);

kf_browsing_t *kf_browsing_new(uint64_t offline_after_ms, kf_browsing_changed_fn changed,
                               void *ctx);
/* Another handle on browsing's table, whose changes are told to changed(ctx): for another loop
 * (made before that loop's thread runs). */
kf_browsing_t *kf_browsing_share(kf_browsing_t *browsing, kf_browsing_changed_fn changed,
                                 void *ctx);
/* Frees the handle; the table goes with the last one. */
void kf_browsing_free(kf_browsing_t *browsing);
/* The visitor's page reported itself at wall ms now_wall (monotonic now): online from now on, on
 * this page (changed is told when they came online or the page's address changed). name may be
 * NULL (not known to the caller: the name the table has stays). */
void kf_browsing_page(kf_browsing_t *browsing, int64_t visitor_id, const char *name,
                      const char *url, const char *title, int64_t now_wall, uint64_t now);
/* A push request of the visitor at now (monotonic): keeps an online visitor online (a visitor
 * who has not reported a page is not listed: no page, nothing to show). */
void kf_browsing_seen(kf_browsing_t *browsing, int64_t visitor_id, uint64_t now);
/* The visitor's name changed (nothing when they are not online). */
void kf_browsing_rename(kf_browsing_t *browsing, int64_t visitor_id, const char *name);
/* Every few seconds: visitors with a connection open count as seen now; those seen last
 * offline_after_ms ago or more go offline. */
void kf_browsing_sweep(kf_browsing_t *browsing, uint64_t now, kf_browsing_open_fn open, void *ctx);
/* The visitor if online now, else NULL: between kf_browsing_lock and kf_browsing_unlock, and
 * valid until the unlock (no other kf_browsing_* call in between: they lock). */
kf_browsing_visitor_t *kf_browsing_find(kf_browsing_t *browsing, int64_t visitor_id);
void kf_browsing_lock(kf_browsing_t *browsing);
void kf_browsing_unlock(kf_browsing_t *browsing);
/* Marks the online visitor invited at wall ms now_wall, and tells changed: false when they are
 * not online. */
bool kf_browsing_invited(kf_browsing_t *browsing, int64_t visitor_id, int64_t now_wall);
/* Records that rule rule_id fired for the online visitor: false when it had fired already in
 * this stretch (or the visitor is not online, or has fired KF_BROWSING_MAX_FIRED rules). */
bool kf_browsing_fire(kf_browsing_t *browsing, int64_t visitor_id, int64_t rule_id);
/* Calls fn for every visitor online, in no set order. fn must not change the table. */
void kf_browsing_each(kf_browsing_t *browsing,
                      void (*fn)(void *ctx, const kf_browsing_visitor_t *v), void *ctx);
/* How many visitors are online. */
size_t kf_browsing_count(kf_browsing_t *browsing);

#endif
