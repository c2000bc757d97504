/* chat_fixture.h: the chat layer's test fixture (tests/unit/chat): a real server and the app
 * over a store that fails on demand (failing_store.h), a visitor with a conversation, a visitor
 * without one, a logged-in agent, and subscribers counting what the hub publishes; requests as a
 * client sends them, WebSockets, and the server's log captured.
 *
 * The loop runs on the test's own thread: a request is written whole on a blocking socket, then
 * the loop is turned until the server has answered and closed the connection. */
#ifndef KF_TEST_CHAT_FIXTURE_H
#define KF_TEST_CHAT_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>

#include "base/buf.h"
#include "chat/events.h"
#include "chat/internal.h"
#include "support/sqlite_db.h"

#define AGENT_EMAIL "agent@example.com"
#define AGENT_PASSWORD "correct horse battery"
#define ADMIN_EMAIL "admin@example.com"
#define REQUEST_TIMEOUT_MS 10000

/* The server, the app over a failing store, and the rows every test starts with. */
typedef struct chat_fixture {
    uv_loop_t loop;
    sqlite_db_t *db;   /* the temporary database */
    kf_store_t *store; /* a failing store over SQLite */
    kf_app_t *app;
    kf_server_t *server;
    int port;
    kf_sub_t agents_sub;  /* counts the events on the agents' topic */
    kf_sub_t visitor_sub; /* ... and on the visitor's */
    int agent_events;
    int visitor_events;
    int availability_events; /* "availability" events to visitors, not counted above */
    char visitor_token[128]; /* a visitor with one conversation and one message */
    int64_t visitor_id;
    int64_t conversation_id;
    int64_t message_id;
    char new_visitor_token[128]; /* a visitor who has no conversation yet */
    char session_cookie[160];    /* the agent's "kefu_session=..." */
    char csrf[128];
    char admin_cookie[160]; /* an admin's, once cf_log_in_admin has made one */
    char admin_csrf[128];
} chat_fixture_t;

/* What a client saw of one request, and what the server logged meanwhile. */
typedef struct cf_response {
    int status;
    char *raw;        /* status line, headers and body as received */
    const char *body; /* inside raw */
    json_t *json;     /* the body parsed, or NULL */
    char log[8192];
} cf_response_t;

/* Whose credentials a request carries. */
typedef enum { AS_NOBODY, AS_VISITOR, AS_NEW_VISITOR, AS_AGENT, AS_ADMIN } cf_who_t;

/* stderr goes to a temporary file while the server works, so that a test can read the log. */
typedef struct cf_capture {
    int saved_fd;
    FILE *file;
} cf_capture_t;

/* The fixture of the running group (cf_group_setup makes it, cf_group_teardown frees it). */
extern chat_fixture_t *cf;

/* cmocka's group setup and teardown, and the per-test setup (stops failing, zeroes the
 * counters). */
int cf_group_setup(void **state);
int cf_group_teardown(void **state);
int cf_test_setup(void **state);

/* Sends one request as who (body, when not NULL, as JSON) and turns the loop until it is
 * answered. With fail_nth > 0 the nth jansson allocation made meanwhile fails; *fired tells
 * whether it did. Free the answer with cf_response_free. */
cf_response_t *cf_request_ex(cf_who_t who, const char *method, const char *path, const char *body,
                             unsigned long fail_nth, bool *fired);
cf_response_t *cf_request(cf_who_t who, const char *method, const char *path, const char *body);
void cf_response_free(cf_response_t *r);
/* The error code of a JSON error answer, or "". */
const char *cf_error_code(const cf_response_t *r);
/* Events in a poll answer. */
size_t cf_poll_events(const cf_response_t *r);
/* Copies template into out with {c} replaced by the conversation id and {m} by the message id. */
void cf_expand(const char *template, char *out, size_t size);
/* Empties the app's credential caches, so that the next request looks its caller up. */
void cf_forget_credentials(void);
/* Logs the agent in again (a new session: after the last one was ended). */
void cf_log_in_agent(void);
/* Creates an admin (ADMIN_EMAIL, AGENT_PASSWORD) and logs them in, for AS_ADMIN. Once a group. */
void cf_log_in_admin(void);

/* A connected client socket (blocking), and all of data written to it. */
int cf_connect(void);
void cf_send_all(int fd, const char *data, size_t len);
/* Turns the loop until fd has at least want bytes more in *in (want 0: until the peer closes).
 * Returns false on timeout. */
bool cf_pump(int fd, kf_buf_t *in, size_t want);
/* stderr goes to a temporary file between the two; cf_capture_end copies the log into out and
 * echoes it to the real stderr. */
void cf_capture_begin(cf_capture_t *c);
void cf_capture_end(cf_capture_t *c, char *out, size_t size);

/* Opens a WebSocket as the visitor (a non-browser client: no Origin, a Bearer token), or as the
 * agent or the admin (their session cookie); in gets what follows the handshake. */
int cf_ws_open_as(cf_who_t who, kf_buf_t *in);
int cf_ws_open(kf_buf_t *in);
/* Sends text (under 126 bytes) as one masked text frame. */
void cf_ws_send(int fd, const char *text);
/* Reads text frames until one contains want; returns it (free it). */
char *cf_ws_read_until(int fd, kf_buf_t *in, const char *want);

#endif
