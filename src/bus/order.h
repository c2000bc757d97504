/* order.h: message events delivered to this node's subscribers in id order across nodes. With
 * several nodes on one store, ids are given in commit order (SQLite has one writer at a time),
 * but a node hears its own messages at once and other nodes' a moment later, through Redis: had
 * it delivered its own id 11 before another node's 10 reached it, a client could take 11, drop,
 * and come back with cursor 11, and the replay (ids above 11) would never give it 10. So a
 * message event waits here until every lower id has been delivered: its own, or another node's
 * off the bus. A hole that stays open (an id nobody published: a node that died between its
 * commit and its publish) is given up after hole_ms, and what waited behind it goes out.
 *
 * Ephemeral events (id 0) are not ordered: they go out at once. An event with an id at or below
 * the newest delivered (the same message on its second topic, or one that comes after its hole
 * was given up) goes out at once too. The order starts at kf_bus_order_start's id, or else at the
 * first id it sees (nothing below it is waited for); after kf_bus_order_wait, only at the start.
 * The order marks each message event it lets out late (hub.h) when a higher id went out before
 * it, and only then. Single-threaded: the loop's. */
#ifndef KF_BUS_ORDER_H
#define KF_BUS_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "push/hub.h"

typedef struct kf_bus_order kf_bus_order_t;

/* Delivers event on topic (or on every topic starting with it, when prefix is true) to this
 * node's subscribers. It may add to the order again (a subscriber that publishes). */
typedef void (*kf_bus_order_deliver_fn)(void *ctx, const char *topic, bool prefix,
                                        kf_event_t *event);

/* holes (may be NULL) counts the holes given up, for the owner's figures. */
kf_bus_order_t *kf_bus_order_new(uv_loop_t *loop, uint64_t hole_ms, kf_bus_order_deliver_fn deliver,
                                 void *ctx, uint64_t *holes);
/* Hooks for the owner (either may be NULL). pull is called before a hole is given up, to add
 * what has reached this loop meanwhile but is still queued: a loop that stalls runs its timers
 * before its other callbacks when it wakes, and would give up a hole whose event waits in its
 * queue (the loops bus). gave_up is called when a hole is given up anyway, before what waited
 * behind it goes out, with floor the id below the hole: a client that takes an id above the hole
 * now may never be connected when the missing one comes (a long poll between two requests), so
 * the owner has clients replay from floor for a while (kf_push_rewind). */
void kf_bus_order_set_hooks(kf_bus_order_t *order, void (*pull)(void *ctx),
                            void (*gave_up)(void *ctx, uint64_t floor), void *ctx);
/* Starts the order at newest, before any event: every id up to it is delivered already (or was
 * never published: stored before this process started), and the next to go out is newest + 1,
 * whoever publishes first. Without it the first event seen starts the order, and a higher id of
 * this node's own that came first would go out ahead of a lower one still on its way. */
void kf_bus_order_start(kf_bus_order_t *order, uint64_t newest);
/* Flushes (below), then holds every message event, with no hole given up, until
 * kf_bus_order_start, which lets out what was held at or below its id at once and the rest in
 * turn: for a bus that has just subscribed and asks the store where it stands, since the first
 * id heard is not the start (a lower one may have been published before the subscription and
 * one of this node's own may come first). */
void kf_bus_order_wait(kf_bus_order_t *order);
/* Whether the order has started (by kf_bus_order_start or a first event) and, if so, where it
 * stands: every id up to *newest has been delivered (or its hole given up), in order; what it
 * holds is above. */
bool kf_bus_order_newest(const kf_bus_order_t *order, uint64_t *newest);
/* Delivers event now, or holds it (a reference, and a copy of topic) until every lower id has
 * been delivered or its hole given up. */
void kf_bus_order_add(kf_bus_order_t *order, const char *topic, bool prefix, kf_event_t *event);
/* Delivers everything held, in id order, and forgets the newest id: the next event starts the
 * order again (the bus went away, or came back: what is on the way is not known now). */
void kf_bus_order_flush(kf_bus_order_t *order);
/* Events held now. */
size_t kf_bus_order_held(const kf_bus_order_t *order);
/* Whether it waits for kf_bus_order_start (kf_bus_order_wait, and no start or flush since). */
bool kf_bus_order_waiting(const kf_bus_order_t *order);
/* Delivers nothing more: what is held is dropped. Its timer closes asynchronously (run the loop
 * after). NULL is ignored. */
void kf_bus_order_free(kf_bus_order_t *order);

#endif
