/* server_int.h: what http/conn.c, http/response.c and http/admit.c share and no one else sees: the
 * server and connection structs, a connection's states and the one function that moves it between
 * them, and what each of the three files offers the other two.
 *
 * A connection's states (conn_set_state asserts every move):
 *
 *   accept -> HEAD --output queued past the limit--> PAUSED --the peer read it--> HEAD
 *   HEAD --request parsed--> DISPATCH --handler answers (keep-alive)--> HEAD
 *              |                        |  |  |--kf_req_hold / handler returns--> HELD
 *              |                        |  |--kf_resp_stream_start--> STREAMING
 *              |                        |--kf_req_upgrade--> UPGRADED
 *              |             HELD --kf_req_resume--> DISPATCH;  HELD --answered--> HEAD
 *              |             HELD --kf_resp_stream_start--> STREAMING --stream ended--> HEAD
 *   any state but CLOSING --Connection: close answered, kf_conn_close(flush), stop--> LINGERING
 *   any state --peer gone, error, timeout, dropped--> CLOSING;  LINGERING --FIN out and peer's
 *   EOF, or 2 s--> CLOSING --uv_close done--> freed
 *
 * The peer's EOF (peer_eof) is no state of its own: reading stops, the requests already read are
 * answered in order as usual, and in HEAD with nothing complete left the connection closes
 * gracefully (LINGERING); STREAMING, UPGRADED and a HELD request marked kf_req_end_on_eof go to
 * CLOSING at once, as on an error.
 *
 * DISPATCH, HELD, STREAMING and UPGRADED have a request in hand (conn->req); HEAD has none.
 * Whether a handler's frame is on the stack is in_handler, across states: a handler that answers
 * at once leaves the connection in HEAD while it still runs. */
#ifndef KF_HTTP_SERVER_INT_H
#define KF_HTTP_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "base/list.h"
#include "base/map.h"
#include "http/server.h"

typedef enum conn_state {
    CONN_HEAD,      /* waiting for a request, or reading its head and body */
    CONN_PAUSED,    /* a request may be in the buffer, but parsing (and reading) waits until the
                     * peer has read most of the output queued for it */
    CONN_DISPATCH,  /* a handler has the request and has not answered, held or streamed it */
    CONN_HELD,      /* the request waits to be answered (a long poll, a store read) */
    CONN_STREAMING, /* a chunked (or, for HTTP/1.0, close-delimited) response is under way */
    CONN_UPGRADED,  /* after a 101: bytes go to the new protocol's reader */
    CONN_LINGERING, /* closing gracefully: our FIN goes after the queued output, and the peer's
                     * input is read and dropped until its EOF or linger_until_ms, so that
                     * closing with unread input does not reset the connection and destroy our
                     * last bytes in flight (a WebSocket close frame, a Connection: close answer) */
    CONN_CLOSING,   /* uv_close was called; the handle's close callback frees the connection */
} conn_state_t;

/* The response to the request in hand: the server's business, not the handler's. */
typedef struct resp {
    kf_buf_t headers;  /* extra header lines added with kf_resp_header */
    int status;        /* status sent, 0 before */
    int minor_version; /* of the request */
    bool head_only;    /* a HEAD request: the response has no body */
    kf_req_abort_cb abort_cb;
    void *abort_data;
    kf_req_end_cb end_cb; /* kf_req_on_end's callback; cleared when it has run */
    void *end_data;
    bool end_on_eof; /* kf_req_end_on_eof: held for news only, ended by the peer's EOF */
} resp_t;

/* Per-address connection counts (admit.c's): one entry per client address with connections
 * open. */
typedef struct address_entry address_entry_t;

struct kf_conn {
    uv_tcp_t tcp; /* first member: the handle's address is the connection's */
    kf_server_t *server;
    kf_list_t link;     /* in the server's list of connections */
    conn_state_t state; /* changed only by conn_set_state */
    bool in_handler;    /* a handler runs (dispatch or resume): head and body views are valid, a
                         * stream's head waits for its first bytes, answering must not parse the
                         * next request from inside it */
    bool close_after;   /* close once the current response has been written */
    bool reading;       /* uv_read_start is in effect (what conn_update_reading last decided) */
    bool fin_sent;      /* LINGERING: our FIN is out */
    bool peer_eof;      /* the peer's EOF (or an error) came: nothing more is read; LINGERING:
                         * also set when the peer's EOF is not waited for */
    bool continue_sent; /* HEAD: 100 Continue went out for the request being read */
    bool served;        /* a request has been handed to the handler (or refused) */
    kf_buf_t rbuf;      /* bytes read and not yet consumed; freed whenever empty */
    kf_buf_t deferred;  /* the head of a stream or upgrade that a handler started: it goes out
                         * with the first bytes that follow, in one write, or when the handler
                         * returns */
    kf_req_t req;       /* the request in hand (states DISPATCH to UPGRADED) */
    resp_t resp;        /* its response */
    size_t req_bytes;   /* head + body bytes of that request, consumed when it ends */
    kf_raw_read_cb raw_read; /* UPGRADED: the new protocol's reader */
    void *raw_data;          /* its first argument */
    /* HEAD: when the wait began (kf_clock_mono_ms): for an empty buffer the connection is idle
     * since then, else the request being read started then (its first byte, or the end of the
     * request before it when the two came together). PAUSED: when the pause began. */
    uint64_t since_ms;
    /* HEAD: time the request being read has beyond header_timeout_ms: a body larger than
     * max_body (an upload, as body_limit allowed) gets a second per UPLOAD_MIN_RATE bytes. */
    uint64_t body_grace_ms;
    uint64_t linger_until_ms; /* LINGERING: closed at this time at the latest */
    char peer[KF_PEER_SIZE];  /* the peer's address, for logs */
    bool via_proxy;           /* the peer is a trusted proxy (config.trusted_proxies) */
    char *forwarded; /* via_proxy: the client the request in hand came from, or NULL (the peer) */
    address_entry_t *address; /* its entry in the per-address table, or NULL when not counted */
};

struct kf_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t sweep;
    kf_server_config_t config;
    kf_handler_fn handler;
    void *app;
    kf_list_t conns; /* every open connection */
    size_t conn_count;
    int open_handles; /* listener, sweep timer and connections not yet closed */
    bool stopping;
    void (*done_cb)(void *data);
    void *done_data;
    int port;
    kf_addresses_t *addresses;  /* admit.c's per-address table: its own, or shared */
    uint32_t request_id_prefix; /* random, per server: ids made here differ across restarts */
    uint32_t request_id_count;  /* ... and a count, for the ids made since */
};

/* The connection a request belongs to. */
static inline kf_conn_t *req_conn(const kf_req_t *req)
{
    return KF_CONTAINER_OF(req, kf_conn_t, req);
}

/* conn.c: the state machine, reading and closing. */

/* Sets req's request_id: the client's X-Request-Id in head when it is sane, else a new one (head
 * NULL: always new). */
void conn_set_request_id(kf_conn_t *conn, const kf_http_request_t *head);
/* Sets conn->forwarded for the request in head (NULL: none, the peer is the client). */
void conn_set_client(kf_conn_t *conn, const kf_http_request_t *head);

/* Moves conn to state, asserting that the move is one of those drawn above. */
void conn_set_state(kf_conn_t *conn, conn_state_t state);
/* True in the states with a request in hand. */
bool conn_has_request(const kf_conn_t *conn);
/* True once the connection is closing (LINGERING or CLOSING): nothing more is written. */
bool conn_is_closing(const kf_conn_t *conn);
/* Starts or stops reading the socket as the state and the buffers now call for; called wherever
 * either changes. */
void conn_update_reading(kf_conn_t *conn);
/* The request in hand is answered (or its stream ended): runs its end callback and goes on with
 * the next request, or closes when the response said so. */
void conn_request_done(kf_conn_t *conn);
/* Some queued output was taken by the kernel: parsing may go on if it waited for that. */
void conn_output_drained(kf_conn_t *conn);
/* Closes at once (a peer gone, a write refused, a reader that does not read); the request's abort
 * and end callbacks run first. */
void conn_close(kf_conn_t *conn);
/* Closes after everything queued has been written (a response that says Connection: close). */
void conn_close_gracefully(kf_conn_t *conn);

/* response.c: writing. */

/* Writes len bytes (after a deferred head, in one write); closes the connection when libuv
 * refuses. */
void conn_write(kf_conn_t *conn, const void *data, size_t len);
/* Writes the head a handler deferred, if any: the handler has returned and nothing followed. */
void conn_flush_deferred(kf_conn_t *conn);
/* Bytes queued on conn and not yet taken by the kernel. */
size_t conn_queued(const kf_conn_t *conn);
/* Answers a request that cannot be served (a framing error, a timeout, a failed expectation)
 * with status and an error body, and closes after it. */
void conn_reject(kf_conn_t *conn, int status, const char *code, const char *message);
/* Sends "100 Continue" for the request being read. */
void conn_send_continue(kf_conn_t *conn);
/* A fresh response for a request of that version and method. */
void resp_reset(resp_t *resp, int minor_version, bool head_only);

/* admit.c: connection limits. */

/* The per-address key of a peer as text (kf_req_peer_key): an IPv4 address, also for an
 * IPv4-mapped IPv6 one, or an IPv6 /64 ("2001:db8:0:1::/64"). False for another family. */
bool admit_peer_key(const struct sockaddr_storage *addr, char *out, size_t size);
/* Decides whether an accepted connection may stay: false when the server is at max_connections
 * (conn_count includes conn) or conn's client address at max_connections_per_address; true
 * counts it against its address (admit_release uncounts it). Fills conn->peer. O(1) expected. */
bool admit_connection(kf_server_t *server, kf_conn_t *conn);
/* The connection is gone: uncounts it, forgetting its address when it was the last one. */
void admit_release(kf_server_t *server, kf_conn_t *conn);

#endif
