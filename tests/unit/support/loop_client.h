/* loop_client.h: a test's clients as TCP handles on the loop of the server under test, so that a
 * test runs in one thread: it writes, then runs the loop until what it waits for has come
 * (LC_RUN_UNTIL), never sleeping; and WebSocket framing on the client's side (masked frames out,
 * the server's frames read back). Each client is closed by the test (lc_close), so that the loop
 * closes with no handle left. */
#ifndef KF_TEST_LOOP_CLIENT_H
#define KF_TEST_LOOP_CLIENT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <uv.h>

#include "base/buf.h"

/* A wait in LC_RUN_UNTIL that takes longer than this fails the test. */
#define LC_WAIT_MS 10000

typedef struct lc_client {
    uv_tcp_t tcp;
    struct lc_client *next; /* in the list of clients not yet closed (lc_done) */
    uv_connect_t connect;
    kf_buf_t in;    /* every byte received */
    bool connected; /* the connection is up */
    bool eof;       /* the server closed it (or reset it) */
    bool closed;    /* our handle is closed */
} lc_client_t;

/* Clients connect to 127.0.0.1:port over loop; starts the guard timer's handle (lc_done closes
 * it). */
void lc_init(uv_loop_t *loop, int port);
/* Closes the guard timer, and every client the test left open (a test that failed half-way: they
 * are freed once closed), so that the loop can close; returns how many were left open. */
size_t lc_done(void);

/* For LC_RUN_UNTIL: arms the guard timer / says whether it fired / disarms it. */
void lc_guard_start(void);
bool lc_guard_fired(void);
void lc_guard_stop(void);
uv_loop_t *lc_loop(void);

/* Runs the loop until cond holds; fails the test when LC_WAIT_MS pass first. */
#define LC_RUN_UNTIL(cond)                                                                         \
    do {                                                                                           \
        lc_guard_start();                                                                          \
        while (!(cond) && !lc_guard_fired())                                                       \
            uv_run(lc_loop(), UV_RUN_ONCE);                                                        \
        lc_guard_stop();                                                                           \
        if (!(cond))                                                                               \
            fail_msg("%s:%d: waited in vain for %s", __FILE__, __LINE__, #cond);                   \
    } while (0)

/* Connects (running the loop until the connection is up) and starts reading. The client is the
 * caller's to close (lc_close, which frees it). */
lc_client_t *lc_open(void);
/* Queues bytes (copied) for the server. */
void lc_write(lc_client_t *c, const void *data, size_t len);
/* Connects and sends GET path with extra header lines (each ending in CRLF; "" for none). */
lc_client_t *lc_get(const char *path, const char *headers);
/* Closes the handle (running the loop until it is) and frees the client. */
void lc_close(lc_client_t *c);

/* How many times text occurs in what the client received. */
size_t lc_count(const lc_client_t *c, const char *text);
bool lc_seen(const lc_client_t *c, const char *text);
/* Where text first occurs in what the client received, or -1. */
long lc_find(const lc_client_t *c, const char *text);

/* The header lines of a valid WebSocket handshake (RFC 6455's sample key). */
extern const char lc_ws_upgrade[];
/* Sends one client frame (first_byte: FIN and opcode), masked unless masked is false; payloads
 * up to 2000 bytes. */
void lc_ws_send(lc_client_t *c, unsigned first_byte, const char *payload, size_t len, bool masked);
/* Steps through the frames the server sent after its 101 head: start with *at = 0; each call
 * gives the next whole frame's opcode and payload, or returns false when none is left. Fails the
 * test on a masked or fragmented server frame. */
bool lc_ws_next_frame(const lc_client_t *c, size_t *at, unsigned *opcode, const char **payload,
                      size_t *len);
/* The code of the server's close frame, or -1 while none has come. */
int lc_ws_close_code(const lc_client_t *c);
/* How many frames of opcode the server sent. */
size_t lc_ws_count(const lc_client_t *c, unsigned opcode);

#endif
