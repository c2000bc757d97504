/* http.h: the HTTP client pieces the load tools share: loopback targets, response heads and
 * chunked bodies, writes, one shared read buffer, and a pool of keep-alive connections for API
 * calls and sends. One thread: nothing here locks. */
#ifndef KF_LOAD_HTTP_H
#define KF_LOAD_HTTP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"

/* Bytes of a response head a client reads before it gives up on the connection. */
#define LOAD_MAX_HEAD 8192

/* Where requests go: a loopback IPv4 address and a path (or a path template). */
typedef struct load_target {
    struct sockaddr_in addr; /* resolved address and port */
    char host[128];          /* the Host header: host[:port] as given */
    char path[1024];         /* path and query; "/" when the URL has none */
} load_target_t;

/* Parses "http://HOST[:PORT][/path]" where HOST is localhost or an address in 127.0.0.0/8.
 * Returns 0, -1 for a malformed URL, -2 for one that is not on loopback (load stays on this
 * machine). */
int load_target_parse(const char *url, load_target_t *out);

/* Parses "A-B" (two loopback addresses, A <= B), a single address, or "none" (count 0). */
int load_source_parse(const char *value, uint32_t *first, uint32_t *count);

/* A decimal number in [0, max], nothing else. */
bool load_parse_unsigned(const char *value, unsigned long max, unsigned *out);

/* What a client needs from a response head. */
typedef struct load_resp_head {
    int status;
    int64_t content_length; /* -1 when absent */
    bool chunked;
    bool close; /* Connection: close, or HTTP/1.0 */
} load_resp_head_t;

/* The length of the response head ("...\r\n\r\n") at the start of buf, looking from byte from
 * on; 0 when it is not complete yet. */
size_t load_head_end(const char *buf, size_t len, size_t from);

/* Parses a complete head of head_len bytes. Returns 0, or -1 when it is not HTTP/1.x. */
int load_resp_head_parse(const char *buf, size_t head_len, load_resp_head_t *out);

/* Finds header name in a complete head: true and its value (a view into head). */
bool load_head_find(const char *head, size_t head_len, const char *name, kf_str_t *value);

/* Decodes a chunked body held whole in buf, in place. Returns 1 when complete (*consumed bytes
 * of buf, *decoded bytes of body now at buf), 0 when more bytes are needed, -1 when malformed. */
int load_dechunk(char *buf, size_t len, size_t *consumed, size_t *decoded);

/* Appends a whole POST request with this body to out; extra is more header lines, each ending
 * in "\r\n" ("" for none). */
void load_build_post(kf_buf_t *out, const load_target_t *target, const char *path,
                     const char *extra, const char *content_type, const char *body);

/* Appends a whole GET request (no body) to out; extra as for load_build_post. */
void load_build_get(kf_buf_t *out, const load_target_t *target, const char *path,
                    const char *extra);

/* Writes data on stream, taking ownership of it (also on error). Returns 0 or a libuv error; a
 * write that fails later shows up as a failed read. */
int load_write_owned(uv_stream_t *stream, char *data, size_t len);
int load_write_copy(uv_stream_t *stream, const void *data, size_t len);

/* An alloc_cb for uv_read_start: every read goes into one shared 64 KiB buffer, so an idle
 * connection holds none. Callers consume or copy the bytes before returning. */
void load_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

/* ---- the request pool ---- */

/* Called exactly once per request, never from load_pool_submit itself, with the ctx and tag it
 * was submitted with: status 0 when no answer came (the connection failed or the pool stopped).
 * head and body are valid during the call. */
typedef void (*load_done_fn)(void *ctx, uint64_t tag, int status, const char *head, size_t head_len,
                             const char *body, size_t body_len);

typedef struct load_req load_req_t;
typedef struct load_pool load_pool_t;

typedef enum {
    LOAD_CONN_CLOSED,
    LOAD_CONN_CONNECTING,
    LOAD_CONN_OPEN,
    LOAD_CONN_CLOSING
} load_conn_state_t;

/* One keep-alive connection of a pool; answers come back in request order. */
typedef struct load_conn {
    uv_tcp_t tcp;
    load_pool_t *pool;
    load_conn_state_t state;
    kf_buf_t rbuf;           /* bytes of answers not yet complete */
    load_req_t *head, *tail; /* written requests, answered in this order */
    size_t inflight;
} load_conn_t;

/* Requests queue until a connection has room: at most depth in flight on each. */
struct load_pool {
    uv_loop_t *loop;
    const load_target_t *target;
    load_conn_t *conns;
    size_t count;
    size_t depth;
    load_req_t *queue_head, *queue_tail; /* waiting for room on a connection */
    size_t queued;
    size_t inflight;
    unsigned failures;      /* connections lost or refused; past a bound the queue is failed */
    const char *last_error; /* why the last connection attempt failed (libuv's words), or NULL */
    bool stopped;           /* load_pool_stop was called: nothing new starts */
};

/* count connections (opened when work comes), depth requests in flight on each. */
void load_pool_init(load_pool_t *pool, uv_loop_t *loop, const load_target_t *target, size_t count,
                    size_t depth);
/* Queues a request of len bytes (takes ownership of text). done gets ctx and tag back. After
 * load_pool_stop the request is dropped without a call. */
void load_pool_submit(load_pool_t *pool, char *text, size_t len, load_done_fn done, void *ctx,
                      uint64_t tag);
/* Fails everything queued or in flight (status 0) and closes every connection. */
void load_pool_stop(load_pool_t *pool);
/* Frees the connections' memory, once the loop has closed their handles. */
void load_pool_free(load_pool_t *pool);

#endif
