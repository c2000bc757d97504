/* kefu.h: kefu's API as the load tools drive it: visitor sessions, each with a first message
 * (its conversation, and the cursor its push connection starts after), agents created by an
 * admin and their logins. Requests go through a load_pool_t; failed ones are made again, up to
 * three times. */
#ifndef KF_LOAD_KEFU_H
#define KF_LOAD_KEFU_H

#include <stdbool.h>
#include <stdint.h>

#include "load/http.h"

#define LOAD_TOKEN_MAX 64

/* A visitor made through the API. */
typedef struct load_visitor {
    char token[LOAD_TOKEN_MAX]; /* bearer token; empty until the session exists */
    int64_t conversation_id;    /* 0 until the first message is stored */
    uint64_t first_message_id;  /* the cursor its push connection starts after */
    uint8_t tries;              /* requests made for the current step */
    bool failed;
} load_visitor_t;

/* An agent: the credentials, then the session. */
typedef struct load_agent {
    char email[96];
    char name[64];
    char password[64];
    char cookie[256]; /* "kefu_session=..." once logged in */
    char csrf[128];
    int64_t id;
    uint8_t tries;
    bool ready;  /* logged in */
    bool failed; /* could not be created or logged in */
} load_agent_t;

typedef struct load_kefu {
    load_pool_t *pool;
    const load_target_t *target;
    load_visitor_t *visitors;
    uint32_t visitor_count;
    bool first_messages; /* each visitor sends one message (else a session only) */
    load_agent_t *agents;
    uint32_t agent_count;
    bool retrying; /* failed requests are made again; clear it to stop the set-up */
    unsigned visitors_ready, visitors_failed;
    unsigned agents_ready, agents_failed;
    int last_bad_status; /* the last unexpected HTTP status */
} load_kefu_t;

/* Creates every visitor's session (and first message). */
void load_kefu_visitors_start(load_kefu_t *kefu);
/* Logs agents[index] in with its email and password. */
void load_kefu_login(load_kefu_t *kefu, uint32_t index);
/* As the admin (a logged-in agent whose role is admin), creates agents[index] with its email,
 * name and password, then logs it in. */
void load_kefu_agent_create(load_kefu_t *kefu, uint32_t index, const load_agent_t *admin);
/* True once every visitor, and every agent asked for, is ready or failed. */
bool load_kefu_done(const load_kefu_t *kefu);

/* Appends the header lines that authenticate as the agent on a POST: cookie and CSRF token. */
void load_kefu_agent_headers(const load_agent_t *agent, kf_buf_t *out);

/* POSTs body (a JSON object's text) to path with extra header lines (each ending in "\r\n", ""
 * for none); done gets ctx and tag back (load_done_fn). */
void load_kefu_post(load_kefu_t *kefu, const char *path, const char *extra, const char *body,
                    load_done_fn done, void *ctx, uint64_t tag);

/* The message a 200 or 201 answer holds: its id and conversation; false when there is none. */
bool load_kefu_message_of(const char *body, size_t body_len, int64_t *id, int64_t *conversation_id);

#endif
