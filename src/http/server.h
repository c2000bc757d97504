/* server.h: the HTTP/1.1 server on libuv: accepts connections, parses requests (keep-alive and
 * pipelining, Content-Length bodies, Expect: 100-continue), enforces limits and timeouts, and
 * hands each complete request to one handler. A handler answers at once, holds the request to
 * answer later (long polling), turns the response into a chunked stream (the forever iframe) or
 * upgrades the connection (WebSocket). Requests on one connection are answered strictly in order:
 * the next pipelined request is parsed only when the current one has been answered, and only
 * while the connection's unread output is small, so that what a peer makes the server hold stays
 * bounded whatever it does. A peer's EOF (a half-close) loses no answer: the requests already
 * read are answered, then the connection closes (http/server_int.h has the connection's states). */
#ifndef KF_HTTP_SERVER_H
#define KF_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/netaddr.h"
#include "http/parser.h"

typedef struct kf_server kf_server_t;
typedef struct kf_conn kf_conn_t;
typedef struct kf_req kf_req_t;

typedef void (*kf_handler_fn)(kf_req_t *req);
/* Called once when a held or streaming request ends without the handler finishing it: the client
 * went away, its output buffer overflowed, or the server is shutting down. After it returns the
 * request must not be touched. */
typedef void (*kf_req_abort_cb)(kf_req_t *req, void *data);
/* Called once when a request ends, however it ends: its response is complete (answered, stream
 * ended) or its connection is closing (client gone, dropped, upgraded connection closed, server
 * stopping). For what an application holds for a request's life, such as a count of one user's
 * open push connections. The request must not be answered from inside it. */
typedef void (*kf_req_end_cb)(kf_req_t *req, void *data);

typedef struct kf_server_config {
    const char *host;        /* address to listen on, e.g. "127.0.0.1" */
    int port;                /* 0 picks a free port (see kf_server_port) */
    kf_http_limits_t limits; /* request-line and header limits */
    size_t max_body;         /* largest request body accepted (413 past it) */
    /* The largest body of one request when it is not max_body (an upload route's), or NULL:
     * called with the application pointer once the head is parsed; it answers 0 for max_body,
     * else a limit, which may exceed max_body. Such a body is held in memory whole, like any
     * other, until it is answered. */
    size_t (*body_limit)(void *app, const kf_http_request_t *head);
    uint64_t header_timeout_ms; /* a request head (and its body) must arrive within this */
    uint64_t idle_timeout_ms;   /* a keep-alive connection with no request is closed after */
    /* Bytes queued for a slow reader: a stream or an upgraded connection past it is dropped, and
     * no further pipelined request is parsed while a connection has more than this (or 64 KiB,
     * whichever is less) queued. */
    size_t max_output;
    size_t max_connections; /* accepted at once; further ones are closed at accept */
    /* Open at once from one client address (an IPv4 address or an IPv6 /64); further ones are
     * closed at accept, without an answer. 0: no limit. */
    size_t max_connections_per_address;
    /* Proxies whose X-Forwarded-For names the client (kf_addr_forwarded_client): a request
     * through one is the named client's in kf_req_peer and kf_req_peer_key, and a proxy's own
     * connections are not limited per address (they carry every client's). The array must
     * outlive the server. */
    const kf_addr_prefix_t *trusted_proxies;
    size_t trusted_proxy_count;
    /* Listen with SO_REUSEPORT, so that several servers (one per loop: kefu --loops) listen on
     * the same port and the kernel spreads new connections across them. */
    bool reuse_port;
    /* With reuse_port, the first of those servers: it makes sure first that nothing listens on
     * the port already (a bind without SO_REUSEPORT), so that a second kefu started on the same
     * port fails as it would without reuse_port, rather than sharing the connections. */
    bool reuse_port_first;
    /* The per-address counts those servers share (kf_addresses_new), so that a client's
     * max_connections_per_address holds for the process, not for each loop; NULL: the server's
     * own. Borrowed: it outlives the server. */
    struct kf_addresses *shared_addresses;
} kf_server_config_t;

/* A table of connections open per client address that several servers on several threads share
 * (a lock around each count). */
typedef struct kf_addresses kf_addresses_t;
kf_addresses_t *kf_addresses_new(void);
/* Frees it; every connection counted in it has closed. NULL is ignored. */
void kf_addresses_free(kf_addresses_t *addresses);

/* Room for a request id and its NUL. */
#define KF_REQUEST_ID_SIZE 65

/* A request, as a handler sees it. Its response state is the server's own (http/server_int.h). */
struct kf_req {
    void *app; /* the application pointer given to kf_server_start */
    /* head (and the views in it) and body are valid only while the handler runs: a handler that
     * holds or streams copies what it needs first (kf_req_resume makes them valid again). The
     * parsed head lives on the stack of the dispatch, so an idle or held connection does not
     * carry its 3 KiB. */
    const kf_http_request_t *head;
    const char *body; /* Content-Length bytes (NULL when there is no body) */
    size_t body_len;
    uint64_t started_ms; /* kf_clock_mono_ms when the request was complete */
    /* The client's X-Request-Id when it is sane (1 to 64 of A-Z a-z 0-9 and . _ : -), else one
     * made here; sent back in the response's X-Request-Id, and in every log line the loop writes
     * while a handler of the request runs (base/log.h). */
    char request_id[KF_REQUEST_ID_SIZE];
};

/* Starts listening. Returns 0, or KF_EADDRINUSE, KF_EACCESS (e.g. a privileged port) or KF_EIO
 * (any other failure: host not an IP address, an address not on this machine). */
int kf_server_start(uv_loop_t *loop, const kf_server_config_t *config, kf_handler_fn handler,
                    void *app, kf_server_t **out);
/* The port actually bound. */
int kf_server_port(const kf_server_t *server);
/* Stops accepting, aborts every held and streaming request (their abort callbacks run), closes
 * idle connections and then frees the server once all handles are closed; done_cb (may be NULL)
 * runs after that. Connections in the middle of a response are closed after the response. */
void kf_server_stop(kf_server_t *server, void (*done_cb)(void *data), void *data);
/* Connections open now. */
size_t kf_server_connection_count(const kf_server_t *server);
void kf_server_config_default(kf_server_config_t *config);

/* Adds a response header line ("Name: value"). value must not contain CR or LF (checked: such a
 * header is dropped and KF_EINVAL returned). */
int kf_resp_header(kf_req_t *req, const char *name, const char *value);
/* Sends a complete response. content_type may be NULL when len is 0. */
void kf_resp_send(kf_req_t *req, int status, const char *content_type, const void *body,
                  size_t len);
/* Sends body (takes the reference, also on error) as JSON with Cache-Control: no-store. */
void kf_resp_json(kf_req_t *req, int status, json_t *body);
/* The same for a body already encoded as JSON (len bytes). */
void kf_resp_json_text(kf_req_t *req, int status, const char *text, size_t len);
/* Sends {"error": {"code": code, "message": message}} with status. */
void kf_resp_error(kf_req_t *req, int status, const char *code, const char *message);

/* Asks for end_cb when the request ends (see kf_req_end_cb); one callback per request, a second
 * call replaces the first. Returns 0, or KF_EINVAL when the request has already ended (answered,
 * or its connection closing): end_cb then never runs. */
int kf_req_on_end(kf_req_t *req, kf_req_end_cb end_cb, void *data);
/* Marks the request as answered later: the handler returns without answering and calls
 * kf_resp_* from another callback. abort_cb runs if the request dies first. A peer that ends
 * its side of the connection (EOF: it may still read, RFC 9293 §3.6) does not end a held
 * request: its answer still goes out (and then the answers to the requests read after it),
 * unless kf_req_end_on_eof says otherwise. */
void kf_req_hold(kf_req_t *req, kf_req_abort_cb abort_cb, void *data);
/* Marks the request (held, or about to be) as one that only waits for news, such as a long poll:
 * the peer's EOF then ends it (abort_cb runs and the connection closes), as it ends streams and
 * upgraded connections, since nothing is in progress that the peer must be told about. */
void kf_req_end_on_eof(kf_req_t *req);
/* Hands a held request back to a handler, for one that waited for something (a store read)
 * between two steps: fn(req, data) runs at once with head, body and body_len valid again, as
 * during dispatch (the request's bytes are still in the connection's buffer and are parsed
 * again: nothing is kept while it waits), and answers, holds again, streams or upgrades as a
 * handler does. Only for a held request that has not answered, streamed or upgraded, and not
 * from inside a handler; the abort callback stays set until fn replaces or detaches it. */
void kf_req_resume(kf_req_t *req, void (*fn)(kf_req_t *req, void *data), void *data);
/* The caller takes the request back from the server: its abort callback will not run. For an
 * owner about to answer or end the request itself, which frees what it held for it first
 * (answering moves on to the next pipelined request at once). */
void kf_req_detach(kf_req_t *req);
/* Starts a chunked response (HTTP/1.1; for HTTP/1.0 the body is raw until close). Implies hold.
 * Returns 0 while the stream is open; otherwise (KF_EINVAL) the request is over: it was answered
 * or its connection is closing, or it is a HEAD request, whose head is then sent alone and which
 * ends there (no HEAD response carries a body). abort_cb then never runs, and the caller drops
 * what it made for it. */
int kf_resp_stream_start(kf_req_t *req, int status, const char *content_type,
                         kf_req_abort_cb abort_cb, void *data);
/* Writes one chunk. Returns 0, or KF_ELIMIT when the client's queued output went past
 * max_output: the connection is then closed and the abort callback runs (after this returns). */
int kf_resp_stream_write(kf_req_t *req, const void *data, size_t len);
/* Ends the chunked response; the connection goes on with its next request. */
void kf_resp_stream_end(kf_req_t *req);
/* Receives bytes of an upgraded connection (everything unconsumed so far, in order); returns how
 * many it used (0 when it needs more). It may call kf_conn_close. */
typedef size_t (*kf_raw_read_cb)(void *data, char *buf, size_t len);

/* Answers 101 Switching Protocols (with the headers added by kf_resp_header) and hands the
 * connection to another protocol: every later byte goes to read_cb (data is its first argument),
 * and abort_cb runs if the connection dies (peer gone, server stopping). Returns 0, or KF_EINVAL
 * when the request was already answered or asked to close. */
int kf_req_upgrade(kf_req_t *req, kf_raw_read_cb read_cb, kf_req_abort_cb abort_cb, void *data);
kf_conn_t *kf_req_conn(kf_req_t *req);
/* Writes raw bytes on an upgraded connection. Returns 0; KF_ELIMIT when the peer's unread output
 * is over max_output (the connection is then closed and abort_cb does not run: the caller cleans
 * up as on abort); KF_EINVAL when it is closing. */
int kf_conn_write(kf_conn_t *conn, const void *data, size_t len);
size_t kf_conn_queued(const kf_conn_t *conn);
/* Closes an upgraded connection (flush: after queued writes); abort_cb does not run. */
void kf_conn_close(kf_conn_t *conn, bool flush);

/* Bytes queued on the request's connection and not yet taken by the kernel. */
size_t kf_req_output_queued(const kf_req_t *req);
/* The client's address as text (for logs): the peer's, or through a trusted proxy
 * (kf_server_config_t.trusted_proxies) the client its X-Forwarded-For names. */
const char *kf_req_peer(const kf_req_t *req);
/* Room for kf_req_peer and kf_req_peer_key's text. */
#define KF_PEER_SIZE 46 /* INET6_ADDRSTRLEN */
/* Writes the peer's address as the per-address limits count it into out: an IPv4 address
 * ("192.0.2.1", also for an IPv4-mapped IPv6 peer), or an IPv6 /64 ("2001:db8:0:1::/64"), since
 * one host usually holds a whole /64 and could otherwise pick a fresh address for every try.
 * Formatted on demand rather than kept: a connection carries no bytes for it. */
void kf_req_peer_key(const kf_req_t *req, char out[KF_PEER_SIZE]);

#endif
