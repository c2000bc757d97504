/* push.h: a load tool's push connections, any number of them over the five transports (kefu's
 * WebSocket, SSE, long poll, forever iframe and short poll, or Nchan's WebSocket and
 * EventSource): connecting a bounded number at a time, reading every transport's framing,
 * finding the message markers and kefu's cursors in the bytes without parsing JSON, and coming
 * back with the cursor after a drop. Its owner says what to request and hears of each marker.
 *
 * A connection costs about 380 bytes here (a libuv handle and the parsers' state); bytes are
 * copied only while a response head is incomplete. */
#ifndef KF_LOAD_PUSH_H
#define KF_LOAD_PUSH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "load/http.h"

/* Every message body a load tool sends starts with a marker "kf<run>:<sequence>:<send time in
 * monotonic ns>", where <run> is eight hex digits drawn at start, so that messages of an earlier
 * run are never taken for this run's. LOAD_MARKER_LEN counts "kf<run>:". */
#define LOAD_MARKER_LEN 11

typedef enum {
    LOAD_WS,
    LOAD_SSE,
    LOAD_LONGPOLL,
    LOAD_IFRAME,
    LOAD_POLL,
    LOAD_TRANSPORTS
} load_transport_t;

extern const char *const load_transport_names[LOAD_TRANSPORTS];

/* The transport called name, or -1. */
int load_transport_parse(const char *name);

typedef struct load_push load_push_t;

/* One push connection (a visitor's, an agent's or a subscriber's). The owner sets index,
 * channel, transport and (kefu) cursor before queueing it; the rest is this module's. */
typedef struct load_sub {
    uv_tcp_t tcp;
    load_push_t *push;
    uint32_t index;     /* the owner's number for it */
    uint32_t channel;   /* what it listens to, for the owner */
    uint64_t cursor;    /* kefu: id of the last message event read whole: the next after= */
    uint64_t after;     /* kefu: the after= of the current request (its cursor then) */
    uint64_t since_ns;  /* when the current connection was established; 0 while it is not */
    uint64_t remaining; /* bytes left of the response body, the chunk or the frame payload */
    uint64_t kfl_seq;   /* marker being read: sequence number */
    uint64_t kfl_time;  /*   and send time */
    uint64_t id_value;  /* cursor being read */
    uint64_t id_event;  /* the id of the message event being read, until its marker ends */
    char *head;         /* an incomplete response head (NULL otherwise) */
    char *ctrl;         /* WebSocket: the payload of a control frame being read */
    uint32_t head_len;
    uint32_t next_poll_ms; /* short polling: when to ask again (loop time) */
    uint32_t reply_ref;    /* WebSocket: the ref of the reply being read */
    uint8_t transport;     /* load_transport_t */
    uint8_t state;         /* SUB_* in push.c */
    uint8_t framing;
    uint8_t chunk_state;
    uint8_t attempts; /* failed connection attempts in a row */
    uint8_t ws_hdr[14];
    uint8_t ws_hdr_len;
    uint8_t ws_opcode;
    uint8_t ctrl_len;
    uint8_t kfl_pos; /* marker bytes matched; LOAD_MARKER_LEN and up: reading numbers */
    uint8_t kfl_digits;
    uint8_t id_pos; /* bytes of "id":" matched */
    uint8_t id_digits;
    uint8_t reply_pos;  /* WebSocket: bytes of a reply's start matched at a frame's start */
    uint8_t reply_kind; /* WebSocket: what the frame is, as far as its start tells */
    bool ws_payload;    /* WebSocket: reading a payload (else a header) */
    bool ws_fin;
    bool keep_alive;  /* the current response leaves the connection open */
    bool established; /* delivering now */
    bool ever_established;
    bool handle_open; /* tcp is initialised and not yet closed */
    bool pending;     /* counted in push->pending (started, not yet established) */
    bool requeue;     /* connect again once the handle is closed */
} load_sub_t;

/* What the owner says and hears. target and message are required. */
typedef struct load_push_ops {
    /* Appends the request target (path and query) of s's next request. */
    void (*target)(load_sub_t *s, kf_buf_t *out);
    /* Appends the header lines that authenticate s, each ending in "\r\n" (may be NULL). */
    void (*headers)(load_sub_t *s, kf_buf_t *out);
    /* A marker was read whole on s: the message's sequence number and send time. */
    void (*message)(load_sub_t *s, uint64_t seq, uint64_t send_ns);
    /* A WebSocket frame {"type":"ack"|"error","ref":"<digits>",...} came on s (may be NULL). Such
     * a frame is not scanned for markers: an ack carries the message it acknowledges. */
    void (*reply)(load_sub_t *s, bool ack, uint64_t ref);
    /* s's connection or attempt ended; was_established says whether it had delivered (may be
     * NULL). Called before s is queued again. */
    void (*ended)(load_sub_t *s, bool was_established);
} load_push_ops_t;

struct load_push {
    uv_loop_t *loop;
    const load_target_t *target;
    const load_push_ops_t *ops;
    void *data; /* the owner's */
    load_sub_t *subs;
    uint32_t count;
    uint32_t *queue; /* ring of subscriber numbers waiting to connect */
    size_t queue_head, queue_len;
    char marker[LOAD_MARKER_LEN + 1]; /* "kf<run>:" */
    bool kefu; /* kefu's events: "id" cursors; streams established at their first bytes */
    unsigned connect_concurrency;
    uint32_t source_first; /* first source address (host order); 0: the kernel's choice */
    uint32_t source_count;
    unsigned poll_interval_ms;
    bool retry;  /* attempts that fail are made again, up to three in a row */
    bool resume; /* established connections that end come back with their cursor */
    bool open;   /* cleared by load_push_close: nothing connects any more */
    /* figures */
    unsigned pending;           /* attempts under way (not yet established) */
    unsigned live;              /* established now */
    unsigned established_total; /* subscribers established at least once */
    unsigned failed;            /* subscribers given up on before they were ever established */
    uint64_t connect_errors;    /* failed attempts (retried or not) */
    uint64_t dropped;           /* established connections that ended */
    uint64_t forced;            /* ... of which load_push_reconnect ended */
    uint64_t reconnects;        /* re-established after a drop */
    uint64_t push_requests;     /* push requests sent (polls; streams reopened; connections) */
    int last_bad_status;        /* the last unexpected HTTP status */
    uint64_t connect_last_ns;   /* when the last subscriber was established the first time */
};

/* count subscribers, all idle; run is the run's eight hex digits for the marker. Defaults:
 * 256 attempts at a time, the kernel's source addresses, short polls every 2 s, retry and
 * resume on, open. */
void load_push_init(load_push_t *push, uv_loop_t *loop, const load_target_t *target,
                    const load_push_ops_t *ops, uint32_t count, const char *run);
/* Connects s now, or when fewer than connect_concurrency attempts are under way. */
void load_push_queue(load_push_t *push, load_sub_t *s);
/* Starts queued attempts there is room for (call after raising connect_concurrency). */
void load_push_pump(load_push_t *push);
/* Sends the short polls that are due; call every few milliseconds. */
void load_push_tick(load_push_t *push);
/* Ends s's connection as a client that goes away does, and connects it again with its cursor
 * (a subscriber waiting to connect is left alone). */
void load_push_reconnect(load_sub_t *s);
/* Sends text as a masked WebSocket text frame on s, which must be an established WebSocket.
 * Returns 0 or a libuv error. */
int load_push_ws_send(load_sub_t *s, const char *text, size_t len);
/* Closes every connection; nothing reconnects. The loop then ends once the handles are closed. */
void load_push_close(load_push_t *push);
/* Frees what init allocated, once the loop has closed every handle. */
void load_push_free(load_push_t *push);

/* kefu's push request target for s: /push/<transport>?after=<cursor> (long polling opens with
 * a short poll, answered at once, as kefu.js does). */
void load_push_kefu_target(const load_sub_t *s, kf_buf_t *out);

#endif
