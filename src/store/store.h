/* store.h: the storage interface. The chat layer talks to kf_store_t only; a backend (sqlite.c
 * now, PostgreSQL next) fills in kf_store_ops_t. The store knows rows, not HTTP or JSON.
 * store/sync.h wraps the operations in blocking calls for start-up, tools and tests.
 *
 * Every operation is asynchronous, with one shape for every backend, so that a backend whose
 * database is across a network (libpq's asynchronous API on the loop, or a pool of connections
 * on threads) changes no caller:
 * - an operation copies its arguments, queues the work and returns 0; its done callback then
 *   runs exactly once, later, on the loop thread, from complete() (never from inside the call);
 * - or it returns a negative KF_E* code at once for arguments it refuses (KF_EINVAL), and done
 *   never runs;
 * - a query that yields many rows also takes an `each` callback, called once per row, in order,
 *   before done; a non-zero return from each stops the query, and done then gets that value as
 *   its result's rc (and count includes the row that stopped it);
 * - a callback may queue further operations (their callbacks run later, as always), but never
 *   calls flush() or close();
 * - rows and strings in a result or a row (kf_message_t, kf_conversation_t, ...) are borrowed:
 *   valid only during the callback they are handed to; copy what you keep;
 * - result->rc is 0, or KF_ENOTFOUND (a looked-up row is absent), KF_EEXISTS (a unique value is
 *   taken: an e-mail, a canned shortcut), KF_ECONFLICT (an idempotency key reused with another
 *   body; a change that would leave no enabled admin), KF_EFORBIDDEN (a session or a message for
 *   a disabled agent; a team canned reply changed by an agent who is not an admin), KF_EUNAVAIL
 *   (the database cannot take writes now: disk full, read-only, connection lost; the caller
 *   answers 503 and may retry), or KF_ESTORE (any other failure);
 * - strings passed in are NUL-terminated UTF-8; times are milliseconds since the Unix epoch;
 * - message ids are assigned in commit order, strictly increasing across the whole store, so a
 *   message id is a valid resume cursor for any reader;
 * - a write's done runs once it is durable (or has failed); the caller neither acknowledges nor
 *   publishes a write before that, and every read sees only committed rows, so nothing shown to
 *   anyone can be undone by a failed commit.
 *
 * ## Threads
 * The store has one owner thread: the thread that calls complete() (the event loop). Every
 * operation, complete(), flush(), set_notify() and close() are called from that thread only;
 * set_notify's callback is the one thing called from elsewhere (the SQLite backend calls it from
 * the writer thread after each batch, and from the owner thread when it queues a read). No
 * operation blocks the caller: each queues its work and returns. What runs where, in the SQLite
 * backend:
 *
 * | operation      | runs on                                      | can block its thread        |
 * | -------------- | -------------------------------------------- | --------------------------- |
 * | reads (1)      | the loop thread, inside complete(), on the   | no: WAL readers never wait  |
 * |                | loop's own connection                        | for the writer              |
 * | writes (2)     | the writer thread, in batches: one           | yes, the writer thread, for |
 * |                | transaction and one sync per batch (group    | the sync; never the loop    |
 * |                | commit)                                      |                             |
 * | checkpoints    | the checkpointer thread (copying the WAL     | yes, the checkpointer; it   |
 * |                | back into the database)                      | holds the writer back for a |
 * |                |                                              | few ms now and then         |
 * | complete()     | the loop thread: the callbacks of finished   | no longer than the reads it |
 * |                | writes, then the reads queued before it      | runs                        |
 * | set_notify()   | the loop thread                              | no                          |
 * | flush(),       | the calling thread                           | yes: for start-up, tools,   |
 * | close()        |                                              | tests and shutdown, never   |
 * |                |                                              | while serving               |
 *
 * (1) setting_get, agent_count, message_newest, agent_list, agent_by_email, agent_by_id,
 * session_get, visitor_by_token, conversation_get, conversation_visitor, conversation_list,
 * conversation_counts, conversation_of_visitor, conversation_snooze_due, messages_in_conversation,
 *     messages_of_visitor, messages_all, search, canned_list, conversation_team_counts,
 *     team_list, visitor_get, visitor_pages, visitor_conversations, report (a scan of the
 *     period's rows: tens of ms a month, docs/PERFORMANCE.md), api_token_list,
 *     api_token_by_hash, webhook_list, webhook_due, webhook_attempts.
 * (2) setting_set, agent_create, agent_update, session_create, session_delete, visitor_create,
 *     conversation_set_status, conversation_claim, conversation_assign, conversation_wake,
 *     conversation_mark_read, conversation_rate, message_add, canned_create, canned_update,
 *     canned_delete, conversation_autoassign, team_create, team_update, team_set_members,
 *     visitor_update, visitor_page_add, visitor_identify, api_token_create, api_token_delete,
 *     api_token_touch, webhook_create, webhook_delete, webhook_enqueue, webhook_attempted. A
 *     message_add with an attachment also writes its blob file there (written, synced and
 *     renamed into place before the transaction that names it), holding the batch back for that
 *     file's sync.
 *
 * Order: the done callbacks of writes run in the order the writes were queued, and a write sees
 * every write queued before it. A read never waits for a write: one queued after a write may
 * complete before it, so a caller that must read its own write reads from the write's done. */
#ifndef KF_STORE_H
#define KF_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef enum { KF_SENDER_VISITOR = 0, KF_SENDER_AGENT = 1 } kf_sender_t;

typedef struct kf_agent {
    int64_t id;
    const char *email;         /* unique, stored lower-case by the caller */
    const char *name;          /* display name */
    const char *role;          /* "admin" or "agent" */
    const char *password_hash; /* encoded scrypt hash (auth/auth.h) */
    int64_t created_at;
    int64_t disabled_at; /* when an admin disabled the account; 0 while it is enabled */
    int64_t capacity;    /* most unresolved conversations automatic assignment gives the agent;
                          * 0: no cap */
    int64_t open_conversations; /* unresolved conversations the agent holds now (agent_by_*,
                                 * agent_list, agent_update; 0 in a conversation's assignee) */
} kf_agent_t;

/* What agent_update does to an agent's access. */
typedef enum {
    KF_AGENT_STATE_KEEP = 0, /* leaves it as it is */
    KF_AGENT_STATE_ENABLE,
    KF_AGENT_STATE_DISABLE,
} kf_agent_state_t;

/* A change to an agent's account for agent_update; what is NULL (or KEEP) stays as it is. */
typedef struct kf_agent_change {
    const char *name;          /* a new display name, or NULL */
    const char *role;          /* "admin" or "agent", or NULL */
    kf_agent_state_t state;    /* enable or disable the account, or keep */
    int64_t now;               /* disabled_at, when it disables an enabled account */
    const char *password_hash; /* a new password's encoded hash, or NULL */
    const char *keep_session;  /* with a new password: the session (token hash) that stays, or
                                * NULL; every other session of the agent is deleted */
    bool set_capacity;         /* capacity changes */
    int64_t capacity;          /* with set_capacity: the new one, >= 0 (0: no cap) */
} kf_agent_change_t;

/* A team of agents (docs/API.md, "Teams"). */
typedef struct kf_team {
    int64_t id;
    const char *name;        /* unique, ignoring ASCII case */
    const char *auto_assign; /* "off", "round_robin" or "least_busy" */
    int64_t reassign_after;  /* seconds an automatic assignee has to answer; 0: forever */
    int64_t created_at;
    const int64_t *member_ids; /* the members' agent ids, ascending */
    size_t member_count;
} kf_team_t;

/* A new team for team_create, or a change for team_update: what is NULL (or -1) stays as it is
 * (team_create: auto_assign "off", reassign_after 0). */
typedef struct kf_team_change {
    const char *name;
    const char *auto_assign;
    int64_t reassign_after; /* seconds, or -1 */
} kf_team_change_t;

typedef struct kf_visitor {
    int64_t id;
    const char *name; /* display name chosen by the visitor, or "" */
    int64_t created_at;
    const char *email;   /* given by the visitor or an agent, or ""; the caller checks its form */
    const char *user_id; /* the site's id of a verified visitor (visitor_identify), or "" */
} kf_visitor_t;

/* A visitor the site vouched for (visitor_identify): its signature already checked. */
typedef struct kf_visitor_identity {
    const char *user_id;      /* the site's id of its user (not "") */
    const char *email;        /* the signed e-mail, or "" */
    const char *name;         /* a display name, or "" to keep the one there is */
    const char *token_hash;   /* the new session's bearer token, as SHA-256 hex */
    const char *nonce;        /* the signature's nonce (not "") */
    int64_t nonce_expires_at; /* until when the nonce is taken */
    int64_t now;
} kf_visitor_identity_t;

/* One page a visitor's browser reported of itself (visitor_page_add), with what it said of the
 * browser then. The newest of a visitor's is their current page and latest details. */
typedef struct kf_visitor_page {
    int64_t id;
    int64_t visitor_id;
    const char *url;        /* the page's address (an embedding widget's host page's, later) */
    const char *title;      /* document.title, or "" */
    const char *referrer;   /* document.referrer, or "" */
    const char *user_agent; /* navigator.userAgent, as the page gave it */
    const char *language;   /* navigator.language, or "" */
    const char *timezone;   /* the IANA time zone, or "" */
    int64_t utc_offset;     /* minutes east of UTC (UTC+02:00 is 120) */
    int64_t seen_at;
} kf_visitor_page_t;

/* The most pages visitor_page_add keeps of one visitor (older ones are deleted). */
#define KF_STORE_VISITOR_PAGES_MAX 50

typedef struct kf_session {
    int64_t agent_id;
    const char *csrf; /* the session's CSRF token */
    int64_t expires_at;
} kf_session_t;

typedef struct kf_message {
    int64_t id;
    int64_t conversation_id;
    int64_t visitor_id; /* the conversation's visitor */
    kf_sender_t sender;
    int64_t agent_id;       /* the agent who wrote it; 0 when sender is the visitor */
    const char *agent_name; /* that agent's display name, "" for visitor messages */
    const char *body;
    int64_t created_at;
    bool is_private;       /* a private note: agents only; no read a visitor's answer comes from
                            * (messages_of_visitor) yields it */
    int64_t attachment_id; /* the file the message carries (attachment_get); 0 for none */
    const char *attachment_name; /* its file name as the uploader gave it; "" for none */
    const char *attachment_type; /* its media type, as sniffed from its bytes; "" for none */
    int64_t attachment_size;     /* its length in bytes; 0 for none */
} kf_message_t;

/* A file a new message carries (message_add): its bytes are stored as a blob beside the
 * database, durable before the message that names it commits. */
typedef struct kf_attachment_new {
    const char *name;  /* the file name to show and download it as (1 to 255 bytes) */
    const char *type;  /* its media type, judged from bytes by the caller (base/sniff.h) */
    const void *bytes; /* its content (copied by message_add) */
    size_t size;       /* > 0 */
} kf_attachment_new_t;

/* A stored attachment, as attachment_get reads it. */
typedef struct kf_attachment {
    int64_t id;
    int64_t conversation_id;
    int64_t visitor_id;  /* the conversation's visitor: the one visitor who may read it */
    int64_t message_id;  /* the message that carries it */
    bool is_private;     /* that message is a private note (agents only) */
    kf_sender_t sender;  /* who uploaded it: the visitor, or uploader_id's agent */
    int64_t uploader_id; /* the agent; 0 for the visitor */
    const char *name;
    const char *type;
    int64_t size;
    const char *sha256; /* the content's SHA-256, hex: the blob's name */
    int64_t created_at;
    const void *bytes; /* the content (size bytes) */
} kf_attachment_t;

typedef struct kf_conversation {
    int64_t id;
    int64_t visitor_id;
    const char *visitor_name; /* "" when the visitor gave none */
    const char *status;       /* "open", "pending", "resolved" or "snoozed" */
    int64_t snoozed_until;    /* when status is "snoozed": until when; else 0 */
    kf_agent_t assignee;      /* the agent who holds it (id, email, name, role; password_hash
                               * ""); id 0 while it is unassigned */
    int64_t team_id;          /* the team it belongs to; 0 for none */
    const char *team_name;    /* that team's name, "" for none */
    int64_t waiting_since;    /* while open: when the visitor's first message after the last
                               * reply (a private note is none) was written; 0 when nobody waits */
    int64_t created_at;
    int64_t updated_at;         /* time of the last message, or created_at */
    int64_t agent_read_up_to;   /* highest message id the agents have marked read */
    int64_t visitor_read_up_to; /* highest message id the visitor has marked read */
    int64_t unread_for_agents;  /* visitor messages with id > agent_read_up_to */
    int64_t unread_for_visitor; /* agent messages with id > visitor_read_up_to, notes not
                                 * counted */
    bool has_last_message;
    kf_message_t last_message;  /* valid when has_last_message */
    const char *rating;         /* the visitor's latest rating, "good" or "bad"; "" for none (a
                                 * reopen keeps it: conversation_rate) */
    const char *rating_comment; /* its comment, "" for none */
    int64_t rated_at;           /* when it was given; 0 for none */
    bool rating_current;        /* it rates the resolution the conversation is in now (false
                                 * while it is not resolved, or was rated before a reopen) */
} kf_conversation_t;

/* A canned reply: text an agent inserts into a reply by its shortcut (docs/API.md). */
typedef struct kf_canned {
    int64_t id;
    int64_t owner_id;     /* the agent whose personal reply it is; 0 for a team one */
    const char *shortcut; /* without the slash; unique, ignoring ASCII case, among the team ones
                           * and each agent's own personal ones */
    const char *body;     /* may hold placeholders ({visitor.name}); the store does not read them */
    int64_t created_at;
    int64_t updated_at;
} kf_canned_t;

/* What a search hit matched: the message's text, or its conversation's visitor's name or e-mail
 * (and the message is then the conversation's newest). */
typedef enum { KF_SEARCH_MESSAGE = 0, KF_SEARCH_VISITOR = 1 } kf_search_field_t;

/* One hit of search. */
typedef struct kf_search_hit {
    kf_search_field_t field;
    kf_message_t message;      /* the message the hit opens its conversation at */
    const char *visitor_name;  /* the conversation's visitor's name, "" when they gave none */
    const char *visitor_email; /* ... and e-mail, "" when none was given */
} kf_search_hit_t;

/* A new message for message_add. */
typedef struct kf_message_new {
    int64_t conversation_id; /* 0 with a visitor message, or an agent's invitation (not a
                              * note): the visitor's conversation (opened when there is none,
                              * reopened when resolved or snoozed) */
    int64_t visitor_id;      /* the visitor who writes, or is invited (with conversation_id 0) */
    kf_sender_t sender;
    int64_t agent_id;            /* the agent who writes; 0 for a visitor */
    const char *body;            /* the text */
    int64_t now;                 /* created_at */
    const char *idempotency_key; /* the sender's key for this message (1 to 255 bytes), or NULL */
    bool is_private;             /* a private note (an agent's only) */
    const kf_attachment_new_t *attachment; /* a file the message carries, or NULL */
} kf_message_new_t;

/* The conversation lists an agent works from (docs/API.md, "Views"). */
typedef enum {
    KF_VIEW_ALL = 0,    /* every conversation */
    KF_VIEW_UNASSIGNED, /* open and held by nobody */
    KF_VIEW_MINE,       /* held by the page's agent and not resolved */
    KF_VIEW_OPEN,       /* the four statuses, whoever holds them */
    KF_VIEW_PENDING,
    KF_VIEW_RESOLVED,
    KF_VIEW_SNOOZED,
    KF_VIEW_COUNT
} kf_conversation_view_t;

/* Where a page of conversations starts: after the conversation (last message's id, id) in the
 * list's order, most recently active first (the newest message's id descending, then the
 * conversation's id descending); both 0 for the first page. The activity order is the newest
 * message's id, not updated_at (its time): the store keeps that id anyway, and an order on it is
 * one index entry per view a message moves (docs/PERFORMANCE.md, "The write path"). */
typedef struct kf_conversation_page {
    size_t limit;                   /* at most this many */
    int64_t before_last_message_id; /* 0 with before_id 0: from the newest */
    int64_t before_id;
    kf_conversation_view_t view; /* which conversations */
    int64_t agent_id;            /* KF_VIEW_MINE: whose */
    int64_t team_id;             /* only this team's; 0: any team or none */
} kf_conversation_page_t;

/* A transfer for conversation_assign: its holder, its team, or both, and a note with it. A
 * struct, so that what an assignment carries can grow (fields left zero keep their meaning). */
typedef struct kf_conversation_assign {
    int64_t conversation_id;
    bool set_agent;      /* the holder changes */
    int64_t agent_id;    /* with set_agent: the new holder; 0: nobody */
    bool set_team;       /* the team changes */
    int64_t team_id;     /* with set_team: the new team; 0: none */
    int64_t by_agent_id; /* who transfers it: the note's author (needed with a note) */
    const char *note;    /* a private note written with the transfer, or NULL */
    int64_t now;         /* the note's created_at */
} kf_conversation_assign_t;

/* How a report groups its figures (docs/API.md, "Reports"). */
typedef enum {
    KF_REPORT_DAY = 0, /* per local day: midnight to midnight at utc_offset */
    KF_REPORT_AGENT,   /* per agent (see kf_report_row_t for what is whose) */
    KF_REPORT_TEAM,    /* per team the conversation is in now; key 0: in none */
} kf_report_group_t;

/* The longest period one report covers, in days: a year, a leap one too. */
#define KF_REPORT_MAX_DAYS 366
/* The widest utc_offset, in minutes (UTC-14:00 to UTC+14:00 are the zones there are). */
#define KF_REPORT_MAX_OFFSET (14 * 60)

/* What a report covers. A conversation belongs to the period it was created in, with all its
 * figures (first response, resolution, unanswered), whenever those came; a message to the period
 * it was written in. */
typedef struct kf_report_query {
    int64_t from; /* the period [from, to), ms since the epoch; from < to, at most
                   * KF_REPORT_MAX_DAYS days apart */
    int64_t to;
    int64_t utc_offset;        /* minutes east of UTC that a day's midnight is at (KF_REPORT_DAY) */
    const int64_t *day_starts; /* or, for a zone whose offset changes (KF_REPORT_DAY): the UTC ms
                                * each local day starts at (base/tz.h), ascending, the first at or
                                * before from, the last before to, at most KF_REPORT_MAX_DAYS + 1
                                * (copied); utc_offset is then unused. NULL: days at utc_offset */
    size_t day_count;
    kf_report_group_t group;
    int64_t agent_id; /* > 0: only what is this agent's (an agent's own report); 0: all */
    int64_t team_id;  /* > 0: only conversations now in this team, and their messages */
} kf_report_query_t;

/* One group's figures (or the totals). Times are in ms; a median or p90 over no conversation is
 * -1. Percentiles are nearest-rank: the value at rank ceil(p * n / 100) of the n values sorted
 * ascending (the median is p = 50: the lower middle of an even count).
 * Whose is what, per agent: a conversation is the agent's who first answered it, or while
 * unanswered its assignee's; its first response counts for the one who gave it, its resolution
 * for the agent who held it when it was resolved (resolved_by), its "unanswered" for its
 * assignee; a message is its author's (visitor messages are nobody's: 0 in agent rows). The
 * totals of a report restricted to one agent (agent_id) are those same figures. */
typedef struct kf_report_row {
    int64_t key;                   /* KF_REPORT_DAY: the UTC ms of the day's local midnight;
                                    * AGENT: the agent's id; TEAM: the team's id (0: no team) */
    const char *name;              /* the agent's or team's name; "" for a day or no team */
    int64_t conversations;         /* created in the period */
    int64_t visitor_messages;      /* written in the period */
    int64_t agent_messages;        /* agents' replies the visitor sees, notes not counted */
    int64_t notes;                 /* private notes */
    int64_t answered;              /* of conversations: those whose first response counts here */
    int64_t first_response_median; /* first visitor message to first agent reply */
    int64_t first_response_p90;
    int64_t resolved;          /* of conversations: those resolved now (and whose here) */
    int64_t resolution_median; /* created to resolved */
    int64_t resolution_p90;
    int64_t unanswered; /* of conversations: the visitor wrote and no agent has replied yet */
    int64_t rated_good; /* of conversations: those whose visitor's latest rating is good (and
                         * whose here: the agent who held it when the rated resolution came) */
    int64_t rated_bad;  /* ... is bad */
} kf_report_row_t;

/* An API token (docs/API.md, "API tokens"): a credential for scripts, kept as the SHA-256 of
 * its secret only. */
typedef struct kf_api_token {
    int64_t id;
    const char *name;   /* the admin's label for it */
    const char *scope;  /* "read", "write" or "admin" */
    int64_t created_by; /* the admin who made it (0 when that agent is gone) */
    int64_t created_at;
    int64_t last_used_at; /* 0 until it is first used */
} kf_api_token_t;

/* An outgoing webhook (docs/API.md, "Webhooks"). */
typedef struct kf_webhook {
    int64_t id;
    const char *url;    /* http:// or https:// */
    const char *events; /* the event names it takes, comma-separated ("message.created,...") */
    const char *secret; /* the HMAC key its requests are signed with */
    int64_t created_at;
} kf_webhook_t;

/* A delivery still to make: one event's body for one webhook, with what sending it needs. */
typedef struct kf_webhook_delivery {
    int64_t id;
    int64_t webhook_id;
    const char *url;    /* the webhook's */
    const char *secret; /* the webhook's */
    const char *event;
    const char *body; /* the JSON text sent, as it was when the event happened */
    int64_t created_at;
    int64_t attempts; /* made so far */
    int64_t next_at;  /* when the next one is due */
} kf_webhook_delivery_t;

/* One attempt at a delivery, as the delivery log shows it. */
typedef struct kf_webhook_attempt {
    int64_t id;
    int64_t webhook_id;
    int64_t delivery_id;
    const char *event;
    int64_t attempt;   /* 1 for the first */
    int64_t at;        /* when it was made */
    int64_t status;    /* the HTTP status answered, 0 when none was (refused, unreachable) */
    const char *error; /* "" when it went, else what went wrong */
    int64_t next_at;   /* when the delivery is tried again; 0: it is over (done or given up) */
} kf_webhook_attempt_t;

/* Attempts the delivery log keeps per webhook (the newest). */
#define KF_STORE_WEBHOOK_LOG_MAX 50

/* What an operation came to, handed to its done callback; the fields its operation fills are
 * named beside each, the others are 0 or NULL. */
typedef struct kf_store_result {
    int rc;                      /* 0, or why it failed (see above) */
    int64_t id;                  /* agent_create, visitor_create: the new row's id;
                                  * conversation_visitor: the visitor's id;
                                  * conversation_of_visitor, conversation_snooze_due: the
                                  * conversation's id;
                                  * conversation_claim's KF_ECONFLICT: who holds it (0: nobody,
                                  * the conversation is resolved);
                                  * conversation_rate: the conversation's id;
                                  * message_newest: the newest message's id (0: none) */
    int64_t count;               /* agent_count: agents; list queries: rows handed to each;
                                  * agent_update: the sessions it deleted */
    bool conversation_opened;    /* message_add: it opened the visitor's conversation */
    bool conversation_reopened;  /* message_add: it reopened the visitor's resolved or snoozed
                                  * conversation */
    const int64_t *counts;       /* conversation_counts: KF_VIEW_COUNT numbers, by view */
    bool duplicate;              /* message_add: the key was seen before with this body: message is
                                  * the message stored then, and nothing new was written */
    const kf_message_t *message; /* message_add */
    const kf_agent_t *agent;     /* agent_by_email, agent_by_id, agent_update (as it is after) */
    const kf_visitor_t *visitor; /* visitor_by_token, visitor_get, visitor_update,
                                  * visitor_identify */
    const kf_session_t *session; /* session_get */
    const kf_conversation_t *conversation; /* conversation_get */
    const char *value;                     /* setting_get */
    const kf_canned_t *canned;             /* canned_create, canned_update (as it is after) */
    const kf_team_t *team;   /* team_create, team_update, team_set_members (as it is after) */
    bool team_missing;       /* conversation_assign's KF_EINVAL: the team is unknown (else the
                              * agent is) */
    const int64_t *released; /* agent_update that disables: the unresolved conversations it
                              * took from the agent (now unassigned) */
    size_t released_count;
    const kf_report_row_t *report_totals; /* report: the whole period's figures */
    const kf_api_token_t *api_token;      /* api_token_create, api_token_by_hash */
    const kf_webhook_t *webhook;          /* webhook_create */
    const kf_attachment_t *attachment;    /* attachment_get */
} kf_store_result_t;

/* The most hits one search hands over. */
#define KF_STORE_SEARCH_MAX 100

typedef void (*kf_store_done_cb)(void *ctx, const kf_store_result_t *result);
typedef int (*kf_store_message_cb)(void *ctx, const kf_message_t *message);
typedef int (*kf_store_conversation_cb)(void *ctx, const kf_conversation_t *conversation);
typedef int (*kf_store_agent_cb)(void *ctx, const kf_agent_t *agent);
typedef int (*kf_store_search_cb)(void *ctx, const kf_search_hit_t *hit);
typedef int (*kf_store_canned_cb)(void *ctx, const kf_canned_t *canned);
typedef int (*kf_store_team_cb)(void *ctx, const kf_team_t *team);
typedef int (*kf_store_report_cb)(void *ctx, const kf_report_row_t *row);
/* One team's counts: KF_VIEW_COUNT numbers, by view. */
typedef int (*kf_store_team_counts_cb)(void *ctx, int64_t team_id, const int64_t *counts);
typedef int (*kf_store_visitor_page_cb)(void *ctx, const kf_visitor_page_t *page);
typedef int (*kf_store_api_token_cb)(void *ctx, const kf_api_token_t *token);
typedef int (*kf_store_webhook_cb)(void *ctx, const kf_webhook_t *webhook);
typedef int (*kf_store_delivery_cb)(void *ctx, const kf_webhook_delivery_t *delivery);
typedef int (*kf_store_attempt_cb)(void *ctx, const kf_webhook_attempt_t *attempt);

typedef struct kf_store kf_store_t;

typedef struct kf_store_ops {
    /* Finishes what is queued (its callbacks run), stops the store's threads and frees it. */
    void (*close)(kf_store_t *store);

    /* Key-value settings (server secrets and the like). setting_get: value, or KF_ENOTFOUND.
     * setting_set refuses (KF_EINVAL at once) the reserved key "schema_version". */
    int (*setting_get)(kf_store_t *store, const char *key, kf_store_done_cb done, void *ctx);
    int (*setting_set)(kf_store_t *store, const char *key, const char *value, kf_store_done_cb done,
                       void *ctx);

    /* Agents. agent_create: id, or KF_EEXISTS when the e-mail is taken. agent_by_*: agent
     * (disabled ones too: disabled_at says so), or KF_ENOTFOUND. agent_list: each agent, by id,
     * all of them (agents are a team, not a crowd: no paging). */
    int (*agent_create)(kf_store_t *store, const char *email, const char *name, const char *role,
                        const char *password_hash, int64_t now, kf_store_done_cb done, void *ctx);
    int (*agent_count)(kf_store_t *store, kf_store_done_cb done, void *ctx);
    /* The newest message's id (every message's, notes too), 0 when there is none: the loops of
     * a process start their id order there (bus/bus.h, kf_loops_new). */
    int (*message_newest)(kf_store_t *store, kf_store_done_cb done, void *ctx);
    int (*agent_by_email)(kf_store_t *store, const char *email, kf_store_done_cb done, void *ctx);
    int (*agent_by_id)(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx);
    int (*agent_list)(kf_store_t *store, kf_store_agent_cb each, kf_store_done_cb done, void *ctx);
    /* Applies change to agent id: agent (the row as it is after) and count. Disabling sets
     * disabled_at (kept from the first time when it is disabled already) and deletes every
     * session of the agent in the same transaction, so that none outlives it (count: how many);
     * enabling clears it. A new password hash deletes every session but keep_session, in the
     * same transaction (count: how many). KF_EINVAL at once for a role other than "admin" or
     * "agent", or a change of nothing; in the result, KF_ENOTFOUND for an unknown agent,
     * KF_ECONFLICT when the change would leave no enabled admin (the last one disabled or made an
     * agent): checked in the write's own turn, so two admins cannot each remove the other.
     * Disabling also unassigns the agent's unresolved conversations in the same transaction, so
     * that none waits on someone who is gone (released: which). KF_EINVAL at once for a
     * capacity below 0. */
    int (*agent_update)(kf_store_t *store, int64_t id, const kf_agent_change_t *change,
                        kf_store_done_cb done, void *ctx);

    /* Agent sessions, keyed by the SHA-256 (hex) of the session token; the store never sees the
     * token. session_create also deletes expired sessions; KF_EFORBIDDEN when the agent is
     * disabled (disabled while its password was checked), KF_EINVAL for an unknown agent.
     * session_get: session, or KF_ENOTFOUND for an unknown or expired (expires_at <= now) one.
     * session_delete: KF_ENOTFOUND when there was none. */
    int (*session_create)(kf_store_t *store, const char *token_hash, int64_t agent_id,
                          const char *csrf, int64_t now, int64_t expires_at, kf_store_done_cb done,
                          void *ctx);
    int (*session_get)(kf_store_t *store, const char *token_hash, int64_t now,
                       kf_store_done_cb done, void *ctx);
    int (*session_delete)(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                          void *ctx);

    /* Visitors, keyed by the SHA-256 (hex) of their bearer token. visitor_create: id.
     * visitor_by_token: visitor, or KF_ENOTFOUND. */
    int (*visitor_create)(kf_store_t *store, const char *token_hash, const char *name, int64_t now,
                          kf_store_done_cb done, void *ctx);
    int (*visitor_by_token)(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                            void *ctx);

    /* Conversations. conversation_get: conversation (unread counts, last message and assignee
     * filled in), or KF_ENOTFOUND. conversation_visitor: the conversation's visitor id as id (a
     * narrow read, for when that is all the caller needs), or KF_ENOTFOUND. conversation_list:
     * each conversation of one page of one view, newest activity first (KF_EINVAL at once for a
     * view out of the enum, or KF_VIEW_MINE without an agent). conversation_counts: counts, how
     * many conversations each view holds (mine: agent_id's). conversation_of_visitor: the
     * visitor's conversation's id (their newest, whatever its status: a visitor has one thread),
     * or KF_ENOTFOUND; it opens none. conversation_team_counts: each team's counts (as
     * conversation_counts', of its conversations alone), by team id, teams without
     * conversations left out. */
    int (*conversation_get)(kf_store_t *store, int64_t conversation_id, kf_store_done_cb done,
                            void *ctx);
    int (*conversation_visitor)(kf_store_t *store, int64_t conversation_id, kf_store_done_cb done,
                                void *ctx);
    int (*conversation_list)(kf_store_t *store, const kf_conversation_page_t *page,
                             kf_store_conversation_cb each, kf_store_done_cb done, void *ctx);
    int (*conversation_counts)(kf_store_t *store, int64_t agent_id, kf_store_done_cb done,
                               void *ctx);
    int (*conversation_of_visitor)(kf_store_t *store, int64_t visitor_id, kf_store_done_cb done,
                                   void *ctx);
    int (*conversation_team_counts)(kf_store_t *store, int64_t agent_id,
                                    kf_store_team_counts_cb each, kf_store_done_cb done, void *ctx);
    /* Sets status to "open", "pending", "resolved" or "snoozed"; snoozed_until goes with
     * "snoozed" only, and must be after now (KF_EINVAL at once otherwise, or for another
     * status). KF_ENOTFOUND for an unknown conversation. updated_at stays: it is the time of the
     * last message. */
    int (*conversation_set_status)(kf_store_t *store, int64_t conversation_id, const char *status,
                                   int64_t snoozed_until, int64_t now, kf_store_done_cb done,
                                   void *ctx);
    /* Makes agent_id the conversation's assignee if nobody holds it (or agent_id does already)
     * and it is not resolved, in one conditional write: of many claims at once, one wins. In the
     * result, KF_ECONFLICT when another agent holds it or it is resolved (id says who holds it),
     * KF_ENOTFOUND for an unknown conversation, KF_EFORBIDDEN for a disabled agent, KF_EINVAL for
     * an unknown one. */
    int (*conversation_claim)(kf_store_t *store, int64_t conversation_id, int64_t agent_id,
                              kf_store_done_cb done, void *ctx);
    /* Hands the conversation to assign->agent_id (0: to nobody), whoever held it, whatever its
     * status, and/or moves it to assign->team_id (0: to no team), in one write. With a note,
     * writes it too, as a private note by by_agent_id, in the same transaction: the conversation
     * moves and the note is stored, or neither (message: the note). KF_EINVAL at once for a
     * change of nothing, a negative id, a note that is empty or has no author; in the result,
     * KF_ENOTFOUND for an unknown conversation, KF_EINVAL for an unknown agent (assignee or
     * author) or team (team_missing says which), KF_EFORBIDDEN for a disabled agent; nothing
     * changes then. */
    int (*conversation_assign)(kf_store_t *store, const kf_conversation_assign_t *assign,
                               kf_store_done_cb done, void *ctx);
    /* Automatic assignment's conditional write: makes agent_id the holder only if the
     * conversation is still open, in team_id, held by from_agent_id (0: by nobody), agent_id is
     * an enabled member of the team and holds fewer unresolved conversations than its capacity
     * (or has none), all checked in the write's own turn, so that two engines or a racing claim
     * can neither assign it twice nor push an agent over capacity. KF_ECONFLICT when any of that
     * no longer holds, KF_EINVAL at once for a bad id. */
    int (*conversation_autoassign)(kf_store_t *store, int64_t conversation_id, int64_t team_id,
                                   int64_t from_agent_id, int64_t agent_id, kf_store_done_cb done,
                                   void *ctx);
    /* Snoozes that end. conversation_snooze_due: the id of a snoozed conversation whose
     * snoozed_until is at or before now (the earliest), or KF_ENOTFOUND. conversation_wake: opens
     * it, if it is still snoozed and due (an agent may have changed it since the read), else
     * KF_ECONFLICT; KF_ENOTFOUND for an unknown conversation. */
    int (*conversation_snooze_due)(kf_store_t *store, int64_t now, kf_store_done_cb done,
                                   void *ctx);
    int (*conversation_wake)(kf_store_t *store, int64_t conversation_id, int64_t now,
                             kf_store_done_cb done, void *ctx);
    /* The visitor's rating of their conversation's resolution (their newest conversation: a
     * visitor has one thread): rating is "good" or "bad", comment "" for none (the caller checks
     * its form and length), now its rated_at. Only a resolved conversation takes one, checked in
     * the write's own turn: KF_ECONFLICT when it is not resolved (a message may have reopened
     * it), KF_ENOTFOUND when the visitor has none. While it stays resolved the visitor may change
     * it (the newest replaces it); a reopen keeps it, and rating a later resolution replaces it.
     * Result: id (the conversation). KF_EINVAL at once for another rating, a NULL comment or a
     * visitor id below 1. */
    int (*conversation_rate)(kf_store_t *store, int64_t visitor_id, const char *rating,
                             const char *comment, int64_t now, kf_store_done_cb done, void *ctx);
    /* Raises the agents' (or the visitor's) read mark to up_to, never lowering it and never past
     * the conversation's newest message; KF_ENOTFOUND for an unknown conversation. */
    int (*conversation_mark_read)(kf_store_t *store, int64_t conversation_id, kf_sender_t reader,
                                  int64_t up_to, kf_store_done_cb done, void *ctx);

    /* Appends a message and moves its conversation's updated_at: message (the stored row),
     * conversation_opened and conversation_reopened (a visitor's message, or an agent's addressed
     * by visitor (an invitation), in their resolved or snoozed conversation makes it open again).
     * KF_EINVAL at once for a bad sender, an agent message without an agent or without a
     * conversation or visitor (a note needs a conversation), a visitor message that names an agent,
     * or a key that is empty or longer than 255 bytes; in the result, KF_ENOTFOUND for an unknown
     * conversation or visitor, KF_EINVAL for an unknown agent, KF_EFORBIDDEN for a disabled one (a
     * send queued after the disable is refused). With an idempotency key the sender has used before
     * (per visitor, or per agent): the same body gives the message stored then, with duplicate set,
     * and writes nothing; another body (or, for an agent's message, another conversation) gives
     * KF_ECONFLICT (also when one is a private note and the other not). KF_EINVAL at once for a
     * private note from a visitor. A note moves updated_at (the agents' lists) but reopens
     * nothing. With an attachment (KF_EINVAL at once for an empty one, a name that is empty or
     * longer than 255 bytes, no type, or one with a key or on a private note), its blob is
     * written first, and the attachment row and the message commit together, or neither; a blob
     * that cannot be written fails the message (KF_EUNAVAIL for a full disk). A blob whose
     * message failed stays: blobs are named by their content (SHA-256), so a retry reuses it. */
    int (*message_add)(kf_store_t *store, const kf_message_new_t *message, kf_store_done_cb done,
                       void *ctx);
    /* The attachment id with its bytes (attachment), or KF_ENOTFOUND (also when its blob file is
     * gone); KF_EUNAVAIL when the file cannot be read now. Threads: a read on the loop thread,
     * which also reads the blob file (see the table above). */
    int (*attachment_get)(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx);
    /* Messages with id > after_id, oldest first, at most limit, of: one conversation
     * (messages_in_conversation), every conversation of one visitor (messages_of_visitor),
     * or every conversation (messages_all). count is how many went to each. messages_of_visitor
     * is the visitor's read: it skips private notes (so its rows' ids may jump over a note's, and
     * a cursor there resumes past it); the other two are the agents' and yield them. */
    int (*messages_in_conversation)(kf_store_t *store, int64_t conversation_id, int64_t after_id,
                                    size_t limit, kf_store_message_cb each, kf_store_done_cb done,
                                    void *ctx);
    int (*messages_of_visitor)(kf_store_t *store, int64_t visitor_id, int64_t after_id,
                               size_t limit, kf_store_message_cb each, kf_store_done_cb done,
                               void *ctx);
    int (*messages_all)(kf_store_t *store, int64_t after_id, size_t limit, kf_store_message_cb each,
                        kf_store_done_cb done, void *ctx);
    /* Full-text search over every message's text and every visitor's name (store/search_text.h
     * says how a query matches): each hit whose message id is below before_id (0: from the
     * newest), newest message first, at most limit (1 to KF_STORE_SEARCH_MAX), one per message
     * (a message whose text matches is a KF_SEARCH_MESSAGE hit even when its visitor's name
     * matches too). A visitor's name gives one hit per conversation of theirs, at its newest
     * message, so that paging by message id reaches each once. A message is found as soon as
     * message_add has called done. Private notes are found too (search is the agents').
     * KF_EINVAL at once for a query kf_search_query_valid refuses
     * (under 2 or over 200 characters), a bad limit or a negative before_id. */
    int (*search)(kf_store_t *store, const char *query, int64_t before_id, size_t limit,
                  kf_store_search_cb each, kf_store_done_cb done, void *ctx);

    /* Canned replies. Those agent_id sees are the team ones (owner_id 0: every agent's, until
     * teams exist) and agent_id's own personal ones. canned_list: each of those, by shortcut
     * (ASCII case ignored), then id. canned_create: a team one (team) or agent_id's personal one;
     * canned (the row). canned_update changes shortcut and/or body (NULL: as it is) and
     * updated_at; canned (the row as it is after). canned_delete removes it. The shortcut must
     * differ, ASCII case ignored, from every other one agent_id sees (KF_EEXISTS otherwise),
     * checked in the write's own turn, so of two creates of one shortcut at once one fails.
     * Another agent's personal one is KF_ENOTFOUND, as an unknown id is; a team one changed or
     * deleted without admin is KF_EFORBIDDEN. KF_EINVAL at once for an empty shortcut or body,
     * or a change of nothing. The caller checks the text's form (length, white space). */
    int (*canned_list)(kf_store_t *store, int64_t agent_id, kf_store_canned_cb each,
                       kf_store_done_cb done, void *ctx);
    int (*canned_create)(kf_store_t *store, int64_t agent_id, bool team, const char *shortcut,
                         const char *body, int64_t now, kf_store_done_cb done, void *ctx);
    int (*canned_update)(kf_store_t *store, int64_t agent_id, bool admin, int64_t id,
                         const char *shortcut, const char *body, int64_t now, kf_store_done_cb done,
                         void *ctx);
    int (*canned_delete)(kf_store_t *store, int64_t agent_id, bool admin, int64_t id,
                         kf_store_done_cb done, void *ctx);

    /* Teams. team_list: each team, by name (ASCII case ignored), with its members. team_create:
     * team (the row), KF_EEXISTS when the name is taken (ignoring ASCII case). team_update:
     * team (as it is after), KF_EEXISTS likewise, KF_ENOTFOUND for an unknown team.
     * team_set_members: makes agent_ids (count of them, duplicates ignored) the team's members,
     * team (as it is after); KF_EINVAL for an unknown or disabled agent, KF_ENOTFOUND for an
     * unknown team; nothing changes then. KF_EINVAL at once for an empty name, an auto_assign
     * other than "off", "round_robin", "least_busy", a reassign_after below 0 (but team_update's
     * -1), a change of nothing, or an id below 1. The caller checks the name's form. */
    int (*team_list)(kf_store_t *store, kf_store_team_cb each, kf_store_done_cb done, void *ctx);
    int (*team_create)(kf_store_t *store, const kf_team_change_t *team, int64_t now,
                       kf_store_done_cb done, void *ctx);
    int (*team_update)(kf_store_t *store, int64_t id, const kf_team_change_t *change,
                       kf_store_done_cb done, void *ctx);
    int (*team_set_members)(kf_store_t *store, int64_t id, const int64_t *agent_ids, size_t count,
                            kf_store_done_cb done, void *ctx);
    /* Visitor details. visitor_get: visitor, or KF_ENOTFOUND. visitor_update changes name and/or
     * email (NULL: as it is; "" clears) and keeps the search's index of them current; visitor
     * (the row as it is after), KF_ENOTFOUND for an unknown visitor, KF_EINVAL at once for a
     * change of nothing. visitor_page_add stores one reported page (its id and visitor_id are
     * ignored; seen_at is its time) and deletes that visitor's pages past the newest
     * KF_STORE_VISITOR_PAGES_MAX, in one write; KF_ENOTFOUND for an unknown visitor, KF_EINVAL
     * at once for a NULL string. visitor_pages: each of the visitor's pages, newest first, at
     * most limit (1 to KF_STORE_VISITOR_PAGES_MAX, else KF_EINVAL at once).
     * visitor_conversations: each conversation of the visitor and of every visitor with the same
     * (non-empty) e-mail, newest activity first, at most limit (at least 1). */
    int (*visitor_get)(kf_store_t *store, int64_t visitor_id, kf_store_done_cb done, void *ctx);
    int (*visitor_update)(kf_store_t *store, int64_t visitor_id, const char *name,
                          const char *email, kf_store_done_cb done, void *ctx);
    int (*visitor_page_add)(kf_store_t *store, const kf_visitor_page_t *page, kf_store_done_cb done,
                            void *ctx);
    int (*visitor_pages)(kf_store_t *store, int64_t visitor_id, size_t limit,
                         kf_store_visitor_page_cb each, kf_store_done_cb done, void *ctx);
    int (*visitor_conversations)(kf_store_t *store, int64_t visitor_id, size_t limit,
                                 kf_store_conversation_cb each, kf_store_done_cb done, void *ctx);
    /* A verified session, in one write: takes the nonce (KF_EEXISTS, and nothing written, when
     * an unexpired one is there; expired ones are deleted), then finds the one visitor of
     * user_id, or creates them, and gives them the token (a visitor has one row per user_id and
     * any number of tokens: every device of one user shares their conversations). The e-mail
     * is set to the signed one, the name when one is given, the search's index kept current.
     * visitor (the row as it is after, user_id set) and id; KF_EINVAL at once for a NULL string
     * or an empty user_id, nonce or token_hash. Threads: a write (the writer thread). */
    int (*visitor_identify)(kf_store_t *store, const kf_visitor_identity_t *identity,
                            kf_store_done_cb done, void *ctx);

    /* A report (kf_report_query_t): each group's row that has anything, in order (days and
     * ids ascending; with agent_id, per agent only that agent's), then done with report_totals.
     * Days are every day of the period that has a conversation or a message. KF_EINVAL at once
     * for from >= to, a period over KF_REPORT_MAX_DAYS, an offset beyond KF_REPORT_MAX_OFFSET,
     * a group out of the enum or a negative id. Cost: one range of an index over the period's
     * messages and one over its conversations (migration "reports"), on the loop's connection. */
    int (*report)(kf_store_t *store, const kf_report_query_t *query, kf_store_report_cb each,
                  kf_store_done_cb done, void *ctx);

    /* API tokens, keyed by the SHA-256 (hex) of the token; the store never sees the token.
     * api_token_create: id and api_token (the row); KF_EINVAL at once for an empty name or
     * token_hash, or a scope other than "read", "write", "admin". api_token_list: each token,
     * by id. api_token_by_hash: api_token, or KF_ENOTFOUND (a revoked one is deleted, so it is
     * unknown at once). api_token_delete: KF_ENOTFOUND when there was none. api_token_touch
     * sets last_used_at (KF_ENOTFOUND when it is gone). Threads: api_token_list and
     * api_token_by_hash are reads (the loop's connection), the others writes (the writer). */
    int (*api_token_create)(kf_store_t *store, const char *name, const char *scope,
                            const char *token_hash, int64_t created_by, int64_t now,
                            kf_store_done_cb done, void *ctx);
    int (*api_token_list)(kf_store_t *store, kf_store_api_token_cb each, kf_store_done_cb done,
                          void *ctx);
    int (*api_token_by_hash)(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                             void *ctx);
    int (*api_token_delete)(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx);
    int (*api_token_touch)(kf_store_t *store, int64_t id, int64_t now, kf_store_done_cb done,
                           void *ctx);

    /* Outgoing webhooks. webhook_create: id and webhook (the row); KF_EINVAL at once for an
     * empty url, events or secret. webhook_list: each webhook, by id. webhook_delete removes it
     * with its pending deliveries and its log; KF_ENOTFOUND when there was none.
     * webhook_enqueue: one pending delivery of body, due at now, for every webhook whose events
     * name event (count: how many). webhook_due: each pending delivery due at now or before,
     * soonest first, at most limit (1 to 1000). webhook_attempted records one attempt
     * (attempt->delivery_id, at, status, error, next_at; its webhook, event and number are the
     * delivery's) in the log, trimmed to the newest KF_STORE_WEBHOOK_LOG_MAX of its webhook, and
     * then deletes the delivery (next_at 0: it is over) or makes it due again at next_at;
     * KF_ENOTFOUND when the delivery is gone (its webhook deleted meanwhile). webhook_attempts:
     * each attempt of webhook_id, newest first, at most limit (1 to KF_STORE_WEBHOOK_LOG_MAX).
     * Threads: webhook_list, webhook_due and webhook_attempts are reads (the loop's connection),
     * the others writes (the writer). */
    int (*webhook_create)(kf_store_t *store, const char *url, const char *events,
                          const char *secret, int64_t now, kf_store_done_cb done, void *ctx);
    int (*webhook_list)(kf_store_t *store, kf_store_webhook_cb each, kf_store_done_cb done,
                        void *ctx);
    int (*webhook_delete)(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx);
    int (*webhook_enqueue)(kf_store_t *store, const char *event, const char *body, int64_t now,
                           kf_store_done_cb done, void *ctx);
    int (*webhook_due)(kf_store_t *store, int64_t now, size_t limit, kf_store_delivery_cb each,
                       kf_store_done_cb done, void *ctx);
    int (*webhook_attempted)(kf_store_t *store, const kf_webhook_attempt_t *attempt,
                             kf_store_done_cb done, void *ctx);
    int (*webhook_attempts)(kf_store_t *store, int64_t webhook_id, size_t limit,
                            kf_store_attempt_cb each, kf_store_done_cb done, void *ctx);

    /* Runs what is ready: the reads queued so far, and the done callbacks of the writes that
     * have finished (in queue order). Work that callbacks queue meanwhile runs in a later call
     * (notify says when); called from inside a callback it returns at once. Cheap when nothing
     * is ready. */
    void (*complete)(kf_store_t *store);
    /* Waits until everything queued so far has run and its callbacks have been called (also
     * what they queue in turn). Blocks: never on a serving loop. */
    void (*flush)(kf_store_t *store);
    /* notify(data) is called, from any thread (the loop's too, from inside an operation),
     * whenever complete() has work: an event loop wakes itself (uv_async_send) and calls
     * complete() from its own callback, never from notify. Once set_notify(NULL) returns it is
     * not called again. NULL: nobody is told; call flush. */
    void (*set_notify)(kf_store_t *store, void (*notify)(void *data), void *data);
    /* Several loops on one store (kefu --loops): makes *out, another handle on the same database
     * for another thread, with its own read connection, reads, completions and notify, whose
     * writes go to this store's one writer (one batch, one commit for every loop's writes) and
     * whose finished writes come back to it alone. The attached handle is then used exactly like
     * this one by the thread that owns it (every call above from that thread), and is closed
     * (close(): its own writes finish and its callbacks run) before this store is. Returns 0,
     * KF_EINVAL (a store in memory: nothing to share), KF_ESTORE (the connection did not open).
     * Threads: the caller's, before the new owner thread starts using *out. NULL for a backend
     * without it (kefu then serves on one loop). */
    int (*attach)(kf_store_t *store, kf_store_t **out);
} kf_store_ops_t;

/* Told on the owner thread when the database starts refusing writes (writable false: the first
 * write answered KF_EUNAVAIL after one that went) and when it takes them again (writable true,
 * refused: how many were refused meanwhile). The edge logs the change once, where a log line per
 * refused write would bury it. */
typedef void (*kf_store_health_fn)(void *data, bool writable, uint64_t refused);

struct op; /* a queued operation of the SQLite backend's front functions (sqlite_internal.h) */

/* Every backend's handle starts with this. The health fields are the store's account of whether
 * it takes writes, kept by kf_store_note_write; zeroed with the handle. */
struct kf_store {
    const kf_store_ops_t *ops;
    /* Writes answered KF_EUNAVAIL since the last that went, by every handle of the process:
     * points at own_refused, or at the handle's it was attached to (the loops share one writer,
     * so whether the database takes writes is the process's answer, given once). */
    atomic_uint_fast64_t *refused;
    atomic_uint_fast64_t own_refused;
    kf_store_health_fn health_fn;
    void *health_data;
    /* Where the SQLite backend's argument checks (its kf_sqlite_* front functions) hand an
     * operation they have copied, for a backend that reuses them (the PostgreSQL one,
     * store/pg_internal.h); NULL for the SQLite backend, which queues its own. */
    int (*queue)(kf_store_t *store, struct op *op);
};

static inline atomic_uint_fast64_t *kf__store_refused(kf_store_t *store)
{
    return store->refused != NULL ? store->refused : &store->own_refused;
}

/* Whether the last completed write went (or none was refused since), on any loop: the health
 * check's answer. */
static inline bool kf_store_writable(kf_store_t *store)
{
    return atomic_load(kf__store_refused(store)) == 0;
}

/* Who is told when the database stops or starts taking writes (NULL: nobody). Owner thread. */
static inline void kf_store_set_health(kf_store_t *store, kf_store_health_fn fn, void *data)
{
    store->health_fn = fn;
    store->health_data = data;
}

/* For backends: every completed write's result code, on the owner thread, before its done runs.
 * Only KF_EUNAVAIL and success move the account: a write refused for its own reasons (a taken
 * e-mail, an unknown conversation) says nothing about the database. */
static inline void kf_store_note_write(kf_store_t *store, int rc)
{
    atomic_uint_fast64_t *refused = kf__store_refused(store);
    if (rc == KF_EUNAVAIL) {
        /* The loop whose refusal is the first tells; the one whose write goes first after them
         * tells how many there were, on every loop. */
        if (atomic_fetch_add(refused, 1) == 0 && store->health_fn != NULL)
            store->health_fn(store->health_data, false, 0);
    } else if (rc == 0 && atomic_load(refused) > 0) {
        uint64_t count = atomic_exchange(refused, 0);
        if (count > 0 && store->health_fn != NULL)
            store->health_fn(store->health_data, true, count);
    }
}

/* Opens (creating if needed) the SQLite database at path: WAL mode, foreign keys on,
 * synchronous=FULL unless synchronous is "NORMAL" or "OFF" (NULL means FULL), schema created or
 * migrated (a schema_version setting). Returns 0 and *out, or KF_ESTORE / KF_EINVAL. */
int kf_store_open_sqlite(const char *path, const char *synchronous, kf_store_t **out);
/* The SQLite store's WAL pages after which it checkpoints (16,000 unless set). The log file
 * grows to about 4 KiB a page, and to two to four times as many pages while the writer outruns
 * the checkpoints; tests set a small one. KF_EINVAL for another backend or pages outside 1 to
 * 2^24. */
int kf_store_sqlite_set_checkpoint_pages(kf_store_t *store, int pages);
/* The SQLite store's WAL file's size in bytes now (0 when there is none), for /metrics. Threads:
 * the owner's (a stat of the file). KF_EINVAL for another backend, KF_EIO when the file cannot
 * be looked at. */
int kf_store_sqlite_wal_bytes(kf_store_t *store, uint64_t *bytes);

/* Opens a PostgreSQL store on conninfo (libpq's "postgres://user@host/db" or "key=value" form):
 * connects, brings the schema up to date (pg_schema.c; a database whose schema is newer than
 * this binary's is refused), and starts a reader and a writer thread, each with its own
 * connection. While serving, a lost server makes writes answer KF_EUNAVAIL (never acknowledged
 * and then lost) and reads that cannot run too; both threads reconnect with backoff, and the
 * store is writable again by itself (kf_store_set_health hears both edges). Returns 0 and *out;
 * KF_EINVAL for a conninfo libpq cannot parse, KF_EUNAVAIL when the server cannot be reached,
 * KF_ESTORE for a database it cannot use. Blocks while it connects and migrates (start-up). */
int kf_store_open_postgres(const char *conninfo, kf_store_t **out);
/* The same, with why (why_len bytes) filled on failure with one line for a person: which server
 * (host, port, database; never the password) and what failed. */
int kf_store_open_postgres_why(const char *conninfo, kf_store_t **out, char *why, size_t why_len);

static inline void kf_store_close(kf_store_t *store)
{
    if (store != NULL)
        store->ops->close(store);
}

#endif
