/* kf_load.c: a single-threaded libuv load generator that opens N push connections to kefu (or,
 * for comparison, to Nchan), sends messages at a fixed rate over HTTP and measures their delivery
 * (latency, loss, duplicates), the connection set-up and the server's memory and CPU. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* Bounds: one process never holds more connections than this, nor runs longer. */
#define MAX_CONNECTIONS 19000
#define MAX_DURATION_S 600
#define MAX_RATE 50000
#define MAX_MESSAGES 10000000 /* rate × duration */
#define MAX_HTTP_CONNS 512
#define DRAIN_MS 5000           /* after the last send: how long to wait for deliveries */
#define SETUP_TIMEOUT_MS 300000 /* sessions, first messages and login */
#define CLOSE_TIMEOUT_MS 10000
#define TICK_MS 20          /* phase checks and short-poll scheduling */
#define MAX_ATTEMPTS 3      /* connection attempts per subscriber, requests per setup step */
#define MAX_HEAD 8192       /* bytes of a response head */
#define MAX_API_FAILURES 50 /* connection failures before the HTTP pool gives up */
#define READ_CHUNK 65536
#define TOKEN_MAX 64

/* Every message body carries "kf<run>:<sequence>:<send time in monotonic ns>", where <run> is
 * eight hex digits drawn at start, so that messages of an earlier run (Nchan keeps a few per
 * channel) are never taken for this run's. */
#define MARKER_LEN 11
static char MARKER[MARKER_LEN + 1] = "kf00000000:";
/* kefu's message events carry their cursor as "id":"<digits>" (docs/PROTOCOL.md). */
static const char ID_KEY[] = "\"id\":\"";
#define ID_KEY_LEN (sizeof ID_KEY - 1)

/* ---- options ---- */

typedef enum { T_WS, T_SSE, T_LONGPOLL, T_IFRAME, T_POLL } transport_t;
static const char *const TRANSPORT_NAMES[] = {"ws", "sse", "longpoll", "iframe", "poll"};

/* Where requests go: a loopback IPv4 address and a path (or a path template with {channel}). */
typedef struct target {
    struct sockaddr_in addr; /* resolved address and port */
    char host[128];          /* the Host header: host[:port] as given */
    char path[1024];         /* path and query; "/" when the URL has none */
} target_t;

typedef struct options {
    target_t server;    /* --url (kefu) */
    target_t publish;   /* --publish-url (pubsub) */
    target_t subscribe; /* --subscribe-url (pubsub) */
    transport_t transport;
    unsigned visitors;   /* push connections: visitors (kefu) or subscribers (pubsub) */
    double rate;         /* messages per second */
    unsigned duration_s; /* sending (or, with --connect-only, holding) time */
    const char *agent_email;
    const char *agent_password;
    uint32_t source_first; /* first source address (host order); 0: the kernel's choice */
    uint32_t source_count; /* addresses in the range */
    bool connect_only;
    bool pubsub;
    unsigned channels;   /* pubsub: subscriber i listens to channel i % channels */
    pid_t server_pid;    /* 0 when not given: no server figures */
    unsigned http_conns; /* keep-alive connections for the API and for publishing */
    unsigned pipeline;   /* requests in flight on each of them */
    unsigned connect_concurrency;
    unsigned connect_timeout_s;
    unsigned poll_interval_ms;
    const char *label;
} options_t;

static void usage(FILE *out)
{
    fputs("usage: kf_load --url http://127.0.0.1:8080 --transport ws|sse|longpoll|iframe|poll\n"
          "               --visitors N --rate R --duration S [options]\n"
          "       kf_load --pubsub --publish-url URL --subscribe-url URL --transport ws|sse\n"
          "               --visitors N --rate R --duration S [--channels N] [options]\n"
          "\n"
          "kefu mode: creates N visitor sessions through the API, each sends a first message,\n"
          "then opens N push connections with the visitor tokens; an agent logs in and replies to\n"
          "random conversations at R messages/s for S seconds; each reply's delivery is timed.\n"
          "Pubsub mode (Nchan): N subscribers over --channels channels; messages are published by\n"
          "HTTP POST to random channels. URL templates take {channel}, e.g.\n"
          "  --publish-url 'http://127.0.0.1:8081/pub?id={channel}'\n"
          "  --subscribe-url 'http://127.0.0.1:8081/sub/{channel}'\n"
          "\n"
          "options:\n"
          "  --url URL                 kefu's address (loopback only)\n"
          "  --transport T             ws, sse, longpoll, iframe or poll (pubsub: ws or sse)\n"
          "  --visitors N              push connections, at most 19000\n"
          "  --rate R                  messages per second (default 100)\n"
          "  --duration S              seconds of sending, or of holding with --connect-only\n"
          "                            (default 10, at most 600)\n"
          "  --agent-email E           the agent who replies (kefu mode, unless --connect-only)\n"
          "  --agent-password P\n"
          "  --source-ips A-B          spread connections over source addresses, e.g.\n"
          "                            127.0.0.2-127.0.0.200 (default for loopback targets:\n"
          "                            127.0.0.2-127.0.0.101; 'none' for the kernel's choice)\n"
          "  --connect-only            open N connections, hold them S seconds idle, close\n"
          "  --pubsub                  Nchan-style publish/subscribe instead of kefu's API\n"
          "  --publish-url URL         POST target template\n"
          "  --subscribe-url URL       subscription template\n"
          "  --channels N              pubsub channels (default N: one per subscriber)\n"
          "  --server-pid PID          the server process (its children are counted too):\n"
          "                            memory and CPU figures\n"
          "  --http-conns N            keep-alive connections for API calls and sends (default 4)\n"
          "  --pipeline N              requests in flight per such connection (default 16)\n"
          "  --connect-concurrency N   connection attempts at once (default 256)\n"
          "  --connect-timeout S       give up establishing after S seconds (default 120)\n"
          "  --poll-interval MS        short polling interval (default 2000)\n"
          "  --label TEXT              a name for this run in the output\n"
          "  -h, --help                this text\n"
          "\n"
          "Prints a table and, last, one JSON line with the same figures.\n",
          out);
}

/* Parses "http://HOST[:PORT][/path]" where HOST is localhost or an address in 127.0.0.0/8. */
static int target_parse(const char *url, target_t *out)
{
    static const char scheme[] = "http://";
    memset(out, 0, sizeof *out);
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        return -1;
    const char *host = url + sizeof scheme - 1;
    const char *slash = strchr(host, '/');
    size_t authority_len = slash != NULL ? (size_t)(slash - host) : strlen(host);
    if (authority_len == 0 || authority_len >= sizeof out->host)
        return -1;
    memcpy(out->host, host, authority_len);
    out->host[authority_len] = '\0';
    snprintf(out->path, sizeof out->path, "%s", slash != NULL ? slash : "/");
    char name[128];
    snprintf(name, sizeof name, "%s", out->host);
    int port = 80;
    char *colon = strchr(name, ':');
    if (colon != NULL) {
        char *end;
        long value = strtol(colon + 1, &end, 10);
        if (*end != '\0' || end == colon + 1 || value < 1 || value > 65535)
            return -1;
        port = (int)value;
        *colon = '\0';
    }
    if (strcmp(name, "localhost") == 0)
        snprintf(name, sizeof name, "127.0.0.1");
    if (uv_ip4_addr(name, port, &out->addr) != 0)
        return -1;
    /* Load goes to this machine's loopback only. */
    if ((ntohl(out->addr.sin_addr.s_addr) >> 24) != 127)
        return -2;
    return 0;
}

/* Parses "A-B" (two loopback addresses, A <= B) or a single address. */
static int source_parse(const char *value, options_t *opts)
{
    if (strcmp(value, "none") == 0) {
        opts->source_first = 0;
        opts->source_count = 0;
        return 0;
    }
    char first[64], last[64];
    const char *dash = strchr(value, '-');
    size_t first_len = dash != NULL ? (size_t)(dash - value) : strlen(value);
    if (first_len >= sizeof first)
        return -1;
    memcpy(first, value, first_len);
    first[first_len] = '\0';
    snprintf(last, sizeof last, "%s", dash != NULL ? dash + 1 : value);
    struct in_addr a, b;
    if (inet_pton(AF_INET, first, &a) != 1 || inet_pton(AF_INET, last, &b) != 1)
        return -1;
    uint32_t lo = ntohl(a.s_addr), hi = ntohl(b.s_addr);
    if (lo > hi || (lo >> 24) != 127 || (hi >> 24) != 127)
        return -1;
    opts->source_first = lo;
    opts->source_count = hi - lo + 1;
    return 0;
}

static bool parse_unsigned(const char *value, unsigned long max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(value, &end, 10);
    if (errno != 0 || *end != '\0' || end == value || value[0] == '-' || n > max)
        return false;
    *out = (unsigned)n;
    return true;
}

/* ---- process figures from /proc ---- */

typedef struct proc_stat {
    bool ok;      /* the figures could be read */
    long rss_kb;  /* VmRSS, summed over the process and its children */
    double cpu_s; /* user + system CPU seconds, summed likewise */
} proc_stat_t;

/* Reads one process's VmRSS and CPU time; false when it is gone. */
static bool proc_read_one(pid_t pid, long *rss_kb, double *cpu_s)
{
    char path[64];
    char line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    *rss_kb = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            *rss_kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return false;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after the last ')'. */
    const char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return false;
    *cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    return true;
}

/* The process and its direct children (nginx's master and workers; kefu has none). */
static proc_stat_t proc_sample(pid_t pid)
{
    proc_stat_t stat = {0};
    if (pid <= 0 || !proc_read_one(pid, &stat.rss_kb, &stat.cpu_s))
        return stat;
    stat.ok = true;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return stat;
    int child;
    while (fscanf(f, "%d", &child) == 1) {
        long rss;
        double cpu;
        if (proc_read_one(child, &rss, &cpu)) {
            stat.rss_kb += rss;
            stat.cpu_s += cpu;
        }
    }
    fclose(f);
    return stat;
}

static proc_stat_t self_sample(void)
{
    proc_stat_t stat = {.ok = true};
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    stat.cpu_s = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
                 (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
    double ignored;
    proc_read_one(getpid(), &stat.rss_kb, &ignored);
    return stat;
}

/* ---- HTTP responses ---- */

/* What the client needs from a response head. */
typedef struct resp_head {
    int status;
    int64_t content_length; /* -1 when absent */
    bool chunked;
    bool close; /* Connection: close */
} resp_head_t;

/* True when the header line [line, end) is "name: ..." (case-insensitive); sets *value. */
static bool header_is(const char *line, const char *end, const char *name, kf_str_t *value)
{
    size_t name_len = strlen(name);
    if ((size_t)(end - line) <= name_len || line[name_len] != ':' ||
        strncasecmp(line, name, name_len) != 0)
        return false;
    const char *v = line + name_len + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    const char *v_end = end;
    while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t' || v_end[-1] == '\r'))
        v_end--;
    *value = (kf_str_t){v, (size_t)(v_end - v)};
    return true;
}

static bool str_contains_ci(kf_str_t s, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= s.len; i++) {
        if (strncasecmp(s.ptr + i, needle, n) == 0)
            return true;
    }
    return false;
}

/* Finds the end of a response head ("\r\n\r\n") in buf; returns its length or 0. */
static size_t head_end(const char *buf, size_t len, size_t from)
{
    for (size_t i = from; i + 4 <= len; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
            return i + 4;
    }
    return 0;
}

/* Parses a complete head of head_len bytes. Returns 0, or -1 when it is not HTTP. */
static int resp_head_parse(const char *buf, size_t head_len, resp_head_t *out)
{
    out->status = 0;
    out->content_length = -1;
    out->chunked = false;
    out->close = false;
    if (head_len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        out->status = out->status * 10 + (buf[i] - '0');
    }
    if (buf[7] == '0')
        out->close = true;
    const char *end = buf + head_len;
    const char *line = memchr(buf, '\n', head_len);
    while (line != NULL && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            break;
        kf_str_t value;
        if (header_is(line, eol, "Content-Length", &value)) {
            out->content_length = strtoll(value.ptr, NULL, 10);
        } else if (header_is(line, eol, "Transfer-Encoding", &value)) {
            out->chunked = str_contains_ci(value, "chunked");
        } else if (header_is(line, eol, "Connection", &value)) {
            if (str_contains_ci(value, "close"))
                out->close = true;
            else if (str_contains_ci(value, "keep-alive"))
                out->close = false;
        }
        line = eol;
    }
    return 0;
}

/* Finds header name in a complete head; returns true and its value. */
static bool head_find(const char *head, size_t head_len, const char *name, kf_str_t *value)
{
    const char *end = head + head_len;
    const char *line = memchr(head, '\n', head_len);
    while (line != NULL && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            return false;
        if (header_is(line, eol, name, value))
            return true;
        line = eol;
    }
    return false;
}

/* Decodes a chunked body held whole in buf, in place. Returns 1 when complete (*consumed bytes of
 * buf, *decoded bytes of body at buf), 0 when more bytes are needed, -1 when malformed. */
static int dechunk(char *buf, size_t len, size_t *consumed, size_t *decoded)
{
    /* First pass: is it all there? Second pass: move the data together. */
    for (int pass = 0; pass < 2; pass++) {
        size_t pos = 0, out = 0;
        for (;;) {
            const char *eol = memchr(buf + pos, '\n', len - pos);
            if (eol == NULL)
                return 0;
            char *hex_end;
            unsigned long long size = strtoull(buf + pos, &hex_end, 16);
            if (hex_end == buf + pos)
                return -1;
            pos = (size_t)(eol - buf) + 1;
            if (size == 0) {
                /* Trailers, then an empty line. */
                for (;;) {
                    const char *line_end = memchr(buf + pos, '\n', len - pos);
                    if (line_end == NULL)
                        return 0;
                    bool empty =
                        line_end == buf + pos || (line_end == buf + pos + 1 && buf[pos] == '\r');
                    pos = (size_t)(line_end - buf) + 1;
                    if (empty)
                        break;
                }
                if (pass == 1) {
                    *consumed = pos;
                    *decoded = out;
                }
                break;
            }
            if (size > len || len - pos < size + 2)
                return 0;
            if (pass == 1)
                memmove(buf + out, buf + pos, (size_t)size);
            out += (size_t)size;
            pos += (size_t)size;
            if (buf[pos] == '\r')
                pos++;
            if (buf[pos] != '\n')
                return -1;
            pos++;
        }
    }
    return 1;
}

/* ---- writes ---- */

typedef struct write_req {
    uv_write_t req;
    char *data; /* owned; freed when written */
} write_req_t;

static void write_done_cb(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as a failed read */
    write_req_t *w = (write_req_t *)req;
    free(w->data);
    free(w);
}

/* Writes data (takes ownership, also on error). Returns 0 or a libuv error. */
static int stream_write_owned(uv_stream_t *stream, char *data, size_t len)
{
    write_req_t *w = kf_xmalloc(sizeof *w);
    w->data = data;
    uv_buf_t buf = uv_buf_init(data, (unsigned)len);
    int rc = uv_write(&w->req, stream, &buf, 1, write_done_cb);
    if (rc != 0) {
        free(data);
        free(w);
    }
    return rc;
}

static int stream_write_copy(uv_stream_t *stream, const void *data, size_t len)
{
    char *copy = kf_xmalloc(len > 0 ? len : 1);
    memcpy(copy, data, len);
    return stream_write_owned(stream, copy, len);
}

/* Every read goes into one shared chunk (one thread): an idle connection holds no buffer. */
static char read_chunk[READ_CHUNK];

static void shared_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init(read_chunk, sizeof read_chunk);
}

/* ---- the HTTP request pool (API calls, agent replies, publishing) ---- */

/* Called once per request: status 0 when no answer came (the connection failed). head and body
 * are valid only during the call. */
typedef void (*api_done_fn)(uint64_t tag, int status, const char *head, size_t head_len,
                            const char *body, size_t body_len);

typedef struct api_req {
    struct api_req *next;
    char *text; /* the request bytes until written (owned) */
    size_t len;
    api_done_fn done;
    uint64_t tag; /* the caller's number: a visitor or a message sequence */
} api_req_t;

typedef enum { API_CLOSED, API_CONNECTING, API_OPEN, API_CLOSING } api_state_t;

typedef struct api_pool api_pool_t;

typedef struct api_conn {
    uv_tcp_t tcp;
    api_pool_t *pool;
    api_state_t state;
    kf_buf_t rbuf;          /* bytes of answers not yet complete */
    api_req_t *head, *tail; /* written requests, answered in this order */
    size_t inflight;
} api_conn_t;

struct api_pool {
    uv_loop_t *loop;
    const target_t *target;
    api_conn_t *conns;
    size_t count;
    size_t depth;                       /* requests in flight per connection */
    api_req_t *queue_head, *queue_tail; /* waiting for room on a connection */
    size_t queued;
    size_t inflight;
    unsigned failures; /* connections lost or refused */
    bool stopped;      /* closing: nothing new starts */
};

static void api_pump(api_pool_t *pool);

static void api_pool_init(api_pool_t *pool, uv_loop_t *loop, const target_t *target, size_t count,
                          size_t depth)
{
    memset(pool, 0, sizeof *pool);
    pool->loop = loop;
    pool->target = target;
    pool->count = count;
    pool->depth = depth;
    pool->conns = kf_xcalloc(count, sizeof *pool->conns);
    for (size_t i = 0; i < count; i++) {
        pool->conns[i].pool = pool;
        pool->conns[i].state = API_CLOSED;
        kf_buf_init(&pool->conns[i].rbuf);
    }
}

/* Queues a request (takes ownership of text). done is called exactly once, never from here. */
static void api_submit(api_pool_t *pool, char *text, size_t len, api_done_fn done, uint64_t tag)
{
    if (pool->stopped) {
        /* Only callbacks run by api_pool_stop get here, and they do not resubmit: see the
         * phase checks in the set-up callbacks. */
        free(text);
        return;
    }
    api_req_t *req = kf_xcalloc(1, sizeof *req);
    req->text = text;
    req->len = len;
    req->done = done;
    req->tag = tag;
    if (pool->queue_tail != NULL)
        pool->queue_tail->next = req;
    else
        pool->queue_head = req;
    pool->queue_tail = req;
    pool->queued++;
    api_pump(pool);
}

static void api_req_fail(api_req_t *req)
{
    req->done(req->tag, 0, "", 0, "", 0);
    free(req->text);
    free(req);
}

static void api_close_cb(uv_handle_t *handle)
{
    api_conn_t *conn = handle->data;
    conn->state = API_CLOSED;
    kf_buf_free(&conn->rbuf);
    api_pump(conn->pool);
}

/* Closes the connection; its unanswered requests fail (their callbacks may resubmit). */
static void api_conn_fail(api_conn_t *conn, bool counts)
{
    if (conn->state == API_CLOSED || conn->state == API_CLOSING)
        return;
    api_pool_t *pool = conn->pool;
    if (counts)
        pool->failures++;
    conn->state = API_CLOSING;
    uv_close((uv_handle_t *)&conn->tcp, api_close_cb);
    api_req_t *req = conn->head;
    conn->head = conn->tail = NULL;
    pool->inflight -= conn->inflight;
    conn->inflight = 0;
    while (req != NULL) {
        api_req_t *next = req->next;
        api_req_fail(req);
        req = next;
    }
}

/* Hands complete answers to their requests, in order. */
static void api_parse(api_conn_t *conn)
{
    api_pool_t *pool = conn->pool;
    while (conn->state == API_OPEN && conn->head != NULL && conn->rbuf.len > 0) {
        size_t head_len = head_end(conn->rbuf.data, conn->rbuf.len, 0);
        if (head_len == 0) {
            if (conn->rbuf.len > MAX_HEAD)
                api_conn_fail(conn, true);
            return;
        }
        resp_head_t head;
        if (resp_head_parse(conn->rbuf.data, head_len, &head) != 0) {
            api_conn_fail(conn, true);
            return;
        }
        char *body = conn->rbuf.data + head_len;
        size_t available = conn->rbuf.len - head_len;
        size_t body_len, total;
        if (head.chunked) {
            size_t consumed = 0;
            int rc = dechunk(body, available, &consumed, &body_len);
            if (rc == 0)
                return;
            if (rc < 0) {
                api_conn_fail(conn, true);
                return;
            }
            total = head_len + consumed;
        } else {
            body_len = head.content_length > 0 ? (size_t)head.content_length : 0;
            if (available < body_len)
                return;
            total = head_len + body_len;
        }
        api_req_t *req = conn->head;
        conn->head = req->next;
        if (conn->head == NULL)
            conn->tail = NULL;
        conn->inflight--;
        pool->inflight--;
        req->done(req->tag, head.status, conn->rbuf.data, head_len, body, body_len);
        free(req);
        if (conn->state != API_OPEN)
            return;
        kf_buf_consume(&conn->rbuf, total);
        if (head.close) {
            api_conn_fail(conn, false);
            return;
        }
    }
    if (conn->state == API_OPEN)
        api_pump(pool);
}

static void api_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    api_conn_t *conn = stream->data;
    if (nread < 0) {
        /* An idle keep-alive connection closed by the server is no failure. */
        api_conn_fail(conn, conn->inflight > 0);
        return;
    }
    if (nread == 0)
        return;
    kf_buf_append(&conn->rbuf, buf->base, (size_t)nread);
    api_parse(conn);
}

static void load_note_api_error(int status);

static void api_connect_cb(uv_connect_t *req, int status)
{
    api_conn_t *conn = req->handle->data;
    free(req);
    if (conn->state != API_CONNECTING)
        return;
    if (status != 0) {
        load_note_api_error(status);
        api_conn_fail(conn, true);
        return;
    }
    conn->state = API_OPEN;
    uv_tcp_nodelay(&conn->tcp, 1);
    if (uv_read_start((uv_stream_t *)&conn->tcp, shared_alloc_cb, api_read_cb) != 0) {
        api_conn_fail(conn, true);
        return;
    }
    api_pump(conn->pool);
}

static void api_conn_open(api_conn_t *conn)
{
    api_pool_t *pool = conn->pool;
    uv_tcp_init(pool->loop, &conn->tcp);
    conn->tcp.data = conn;
    conn->state = API_CONNECTING;
    kf_buf_init(&conn->rbuf);
    uv_connect_t *req = kf_xmalloc(sizeof *req);
    int rc = uv_tcp_connect(req, &conn->tcp, (const struct sockaddr *)&pool->target->addr,
                            api_connect_cb);
    if (rc != 0) {
        free(req);
        api_conn_fail(conn, true);
    }
}

/* Moves queued requests onto open connections with room; opens connections when work waits. */
static void api_pump(api_pool_t *pool)
{
    if (pool->stopped || pool->queue_head == NULL)
        return;
    if (pool->failures > MAX_API_FAILURES) {
        /* The server is not answering: give up on everything queued. */
        while (pool->queue_head != NULL) {
            api_req_t *req = pool->queue_head;
            pool->queue_head = req->next;
            if (pool->queue_head == NULL)
                pool->queue_tail = NULL;
            pool->queued--;
            api_req_fail(req);
        }
        return;
    }
    for (size_t i = 0; i < pool->count; i++) {
        if (pool->conns[i].state == API_CLOSED)
            api_conn_open(&pool->conns[i]);
    }
    while (pool->queue_head != NULL) {
        api_conn_t *best = NULL;
        for (size_t i = 0; i < pool->count; i++) {
            api_conn_t *conn = &pool->conns[i];
            if (conn->state == API_OPEN && conn->inflight < pool->depth &&
                (best == NULL || conn->inflight < best->inflight))
                best = conn;
        }
        if (best == NULL)
            return;
        api_req_t *req = pool->queue_head;
        pool->queue_head = req->next;
        if (pool->queue_head == NULL)
            pool->queue_tail = NULL;
        pool->queued--;
        req->next = NULL;
        if (best->tail != NULL)
            best->tail->next = req;
        else
            best->head = req;
        best->tail = req;
        best->inflight++;
        pool->inflight++;
        char *text = req->text;
        req->text = NULL;
        if (stream_write_owned((uv_stream_t *)&best->tcp, text, req->len) != 0)
            api_conn_fail(best, true);
    }
}

/* Fails everything queued and closes every connection. */
static void api_pool_stop(api_pool_t *pool)
{
    pool->stopped = true;
    while (pool->queue_head != NULL) {
        api_req_t *req = pool->queue_head;
        pool->queue_head = req->next;
        pool->queued--;
        api_req_fail(req);
    }
    pool->queue_tail = NULL;
    for (size_t i = 0; i < pool->count; i++)
        api_conn_fail(&pool->conns[i], false);
}

/* ---- the run's state ---- */

typedef enum { PH_SETUP, PH_CONNECT, PH_RUN, PH_DRAIN, PH_CLOSE } phase_t;

/* A kefu visitor made through the API. */
typedef struct visitor {
    char token[TOKEN_MAX];     /* bearer token; empty until the session exists */
    int64_t conversation_id;   /* 0 until the first message is stored */
    uint64_t first_message_id; /* the cursor its push connection starts after */
    uint8_t tries;             /* requests made for the current setup step */
    bool failed;
} visitor_t;

/* One message sent. */
typedef struct msg_rec {
    uint32_t channel;  /* the visitor (kefu) or channel (pubsub) it went to */
    uint32_t sent_us;  /* send time, microseconds after the run started */
    uint16_t received; /* times it arrived */
    uint8_t state;     /* MSG_* */
} msg_rec_t;

enum { MSG_UNSENT = 0, MSG_SENT, MSG_ACKED, MSG_FAILED };

typedef enum {
    SUB_IDLE,
    SUB_QUEUED,
    SUB_CONNECTING,
    SUB_HEAD,
    SUB_BODY,
    SUB_WAIT,
    SUB_CLOSING,
    SUB_FAILED,
    SUB_DONE
} sub_state_t;
typedef enum { FRAMING_LENGTH, FRAMING_CHUNKED, FRAMING_EOF, FRAMING_WS } framing_t;
typedef enum {
    CHUNK_SIZE,
    CHUNK_EXT,
    CHUNK_DATA,
    CHUNK_DATA_END,
    CHUNK_TRAILER_START,
    CHUNK_TRAILER_LINE
} chunk_state_t;

/* One push connection (a visitor's or a subscriber's). Kept small: a handle, counters and the
 * state of three little parsers; bytes are buffered only while a response head is incomplete. */
typedef struct sub {
    uv_tcp_t tcp;
    uint32_t index;     /* visitor or subscriber number */
    uint32_t channel;   /* what it listens to: its visitor index, or a pubsub channel */
    uint64_t cursor;    /* kefu: id of the last message event seen, for after= */
    uint64_t remaining; /* bytes left of the response body, the chunk or the frame payload */
    uint64_t kfl_seq;   /* marker being read: sequence number */
    uint64_t kfl_time;  /*   and send time */
    uint64_t id_value;  /* cursor being read */
    char *head;         /* an incomplete response head (NULL otherwise) */
    char *ctrl;         /* WebSocket: the payload of a control frame being read */
    uint32_t head_len;
    uint32_t next_poll_ms; /* short polling: when to ask again (loop time) */
    uint8_t state;         /* SUB_* */
    uint8_t framing;       /* FRAMING_* */
    uint8_t chunk_state;   /* CHUNK_* */
    uint8_t attempts;      /* failed connection attempts in a row */
    uint8_t ws_hdr[14];    /* WebSocket: the frame header being read */
    uint8_t ws_hdr_len;
    uint8_t ws_opcode;
    uint8_t ctrl_len;
    uint8_t kfl_pos; /* marker bytes matched; MARKER_LEN and up: reading numbers */
    uint8_t kfl_digits;
    uint8_t id_pos; /* ID_KEY bytes matched; ID_KEY_LEN: reading digits */
    uint8_t id_digits;
    bool ws_payload; /* WebSocket: reading a payload (else a header) */
    bool ws_fin;
    bool keep_alive;  /* the current response leaves the connection open */
    bool established; /* delivering now */
    bool ever_established;
    bool handle_open; /* tcp is initialised and not yet closed */
    bool pending;     /* counted in load.pending (started, not yet established) */
    bool requeue;     /* connect again once the handle is closed */
} sub_t;

typedef struct load {
    options_t opts;
    uv_loop_t *loop;
    phase_t phase;
    bool kefu; /* kefu's API, not pubsub */
    int exit_code;
    bool interrupted;
    const char *abort_reason;
    uv_timer_t tick;     /* phase checks, short-poll scheduling */
    uv_timer_t sender;   /* 1 ms: sends what the rate says is due */
    uv_timer_t watchdog; /* the whole run's deadline */
    uv_signal_t sigint, sigterm;
    api_pool_t api; /* kefu's API, or the publish target */
    uint64_t phase_start_ns;
    /* kefu set-up */
    visitor_t *visitors;
    unsigned setup_ready, setup_failed;
    bool need_login, logged_in;
    char cookie[256]; /* "kefu_session=..." */
    char csrf[128];
    /* push connections */
    sub_t *subs;
    uint32_t *queue; /* ring of subscriber numbers waiting to connect */
    size_t queue_head, queue_len;
    unsigned pending;           /* attempts under way (not yet established) */
    unsigned live;              /* established now */
    unsigned established_total; /* subscribers that were established at least once */
    unsigned failed;            /* subscribers given up on */
    uint64_t connect_errors;    /* failed attempts (retried or not) */
    uint64_t dropped;           /* established connections that ended */
    uint64_t reconnects;        /* re-established after a drop */
    uint64_t push_requests;     /* push requests sent (polls; streams reopened; connections) */
    int last_bad_status;        /* the last unexpected HTTP status, for the report */
    const char *api_error;      /* why the last HTTP pool connection failed, for the report */
    uint64_t connect_start_ns, connect_last_ns;
    /* messages */
    uint32_t *targets; /* channels (or visitors) that may be sent to */
    uint32_t target_count;
    uint32_t *subs_per_channel; /* established subscribers per channel at the start of the run */
    msg_rec_t *msgs;
    uint64_t msg_capacity;
    uint64_t planned, sent, acked, send_failed, received, unknown, misdelivered;
    uint64_t expected_acked;  /* deliveries owed for acked messages */
    uint64_t good_receptions; /* deliveries up to what each message owes */
    uint32_t *latency_us;     /* one per good reception */
    size_t latency_len, latency_cap;
    uint32_t *ack_us; /* send to 2xx, per acked message */
    size_t ack_len;
    uint64_t run_start_ns, run_end_ns, drain_end_ns;
    uint32_t rng;
    /* figures */
    proc_stat_t server_before, server_connected, server_end;
    proc_stat_t server_connect_start, server_run_start, server_run_end;
    proc_stat_t self_before, self_run_start, self_run_end, self_connected;
    double connect_s;
} load_t;

static load_t load;

static void load_note_api_error(int status)
{
    load.api_error = uv_strerror(status);
}

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

static uint32_t random_u32(void)
{
    /* xorshift32: good enough to pick targets and masks. */
    uint32_t x = load.rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    load.rng = x;
    return x;
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fputs("kf_load: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
}

static void finish(void);
static void enter_connect(void);
static void enter_run(void);

/* ---- received messages ---- */

static uint32_t expected_of(uint32_t channel)
{
    return load.kefu ? 1 : load.subs_per_channel[channel];
}

static void latency_push(uint32_t us)
{
    if (load.latency_len == load.latency_cap) {
        load.latency_cap = load.latency_cap == 0 ? 4096 : load.latency_cap * 2;
        load.latency_us = kf_xrealloc(load.latency_us, load.latency_cap * sizeof *load.latency_us);
    }
    load.latency_us[load.latency_len++] = us;
}

/* A subscriber saw message seq, sent at send_ns. */
static void message_received(sub_t *s, uint64_t seq, uint64_t send_ns)
{
    uint64_t now = now_ns();
    if (seq >= load.sent || load.msgs[seq].state == MSG_UNSENT) {
        load.unknown++;
        return;
    }
    msg_rec_t *m = &load.msgs[seq];
    load.received++;
    if (m->channel != s->channel)
        load.misdelivered++;
    if (m->received < UINT16_MAX)
        m->received++;
    if (m->received > expected_of(m->channel))
        return; /* a duplicate: counted at the end */
    load.good_receptions++;
    if (send_ns <= now) {
        uint64_t us = (now - send_ns) / 1000;
        latency_push(us > UINT32_MAX ? UINT32_MAX : (uint32_t)us);
    }
}

static bool is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(unsigned c)
{
    if (is_digit(c))
        return (int)(c - '0');
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? (int)(c - 'a' + 10) : -1;
}

/* Feeds message bytes to the two matchers: the "kfl:SEQ:TIME" marker of each sent message and,
 * for kefu, the "id":"N" cursor of each message event. Works across any split of the bytes. */
static void sub_established(sub_t *s);

static void scan(sub_t *s, const char *data, size_t len)
{
    if (!s->established && (load.opts.transport == T_SSE || load.opts.transport == T_IFRAME))
        sub_established(s);
    for (size_t i = 0; i < len; i++) {
        unsigned c = (unsigned char)data[i];
        /* Skip quickly over bytes that neither starts nor continues a match. */
        if (s->kfl_pos == 0 && s->id_pos == 0 && c != 'k' && c != '"')
            continue;
        if (s->kfl_pos < MARKER_LEN) {
            if (c == (unsigned char)MARKER[s->kfl_pos]) {
                if (++s->kfl_pos == MARKER_LEN) {
                    s->kfl_seq = 0;
                    s->kfl_time = 0;
                    s->kfl_digits = 0;
                }
            } else {
                s->kfl_pos = c == (unsigned char)MARKER[0];
            }
        } else if (s->kfl_pos == MARKER_LEN) { /* the sequence number */
            if (is_digit(c) && s->kfl_digits < 18) {
                s->kfl_seq = s->kfl_seq * 10 + (c - '0');
                s->kfl_digits++;
            } else if (c == ':' && s->kfl_digits > 0) {
                s->kfl_pos++;
                s->kfl_digits = 0;
            } else {
                s->kfl_pos = c == (unsigned char)MARKER[0];
            }
        } else { /* the send time */
            if (is_digit(c) && s->kfl_digits < 19) {
                s->kfl_time = s->kfl_time * 10 + (c - '0');
                s->kfl_digits++;
            } else {
                if (s->kfl_digits > 0)
                    message_received(s, s->kfl_seq, s->kfl_time);
                s->kfl_pos = c == (unsigned char)MARKER[0];
            }
        }
        if (!load.kefu)
            continue;
        if (s->id_pos < ID_KEY_LEN) {
            if (c == (unsigned char)ID_KEY[s->id_pos]) {
                if (++s->id_pos == ID_KEY_LEN) {
                    s->id_value = 0;
                    s->id_digits = 0;
                }
            } else {
                s->id_pos = c == '"';
            }
        } else if (is_digit(c) && s->id_digits < 18) {
            s->id_value = s->id_value * 10 + (c - '0');
            s->id_digits++;
        } else {
            if (c == '"' && s->id_digits > 0 && s->id_value > s->cursor)
                s->cursor = s->id_value;
            s->id_pos = c == '"';
        }
    }
}

/* ---- push connections ---- */

static void sub_start(sub_t *s);

static void queue_push(sub_t *s)
{
    size_t n = load.opts.visitors;
    load.queue[(load.queue_head + load.queue_len) % n] = s->index;
    load.queue_len++;
    s->state = SUB_QUEUED;
}

/* Starts queued connection attempts while fewer than the allowed number are under way. */
static void connect_pump(void)
{
    if (load.phase < PH_CONNECT || load.phase >= PH_CLOSE)
        return;
    size_t n = load.opts.visitors;
    while (load.queue_len > 0 && load.pending < load.opts.connect_concurrency) {
        sub_t *s = &load.subs[load.queue[load.queue_head]];
        load.queue_head = (load.queue_head + 1) % n;
        load.queue_len--;
        sub_start(s);
    }
}

static void sub_close_cb(uv_handle_t *handle)
{
    sub_t *s = handle->data;
    s->handle_open = false;
    free(s->head);
    s->head = NULL;
    s->head_len = 0;
    free(s->ctrl);
    s->ctrl = NULL;
    if (s->requeue && load.phase < PH_CLOSE) {
        s->requeue = false;
        queue_push(s);
        connect_pump();
    }
}

static void sub_close_handle(sub_t *s)
{
    if (s->pending) {
        s->pending = false;
        load.pending--;
    }
    if (s->established) {
        s->established = false;
        load.live--;
    }
    if (s->handle_open && !uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, sub_close_cb);
}

/* An attempt that did not establish: try again a few times, then give up on this subscriber. */
static void sub_fail(sub_t *s)
{
    load.connect_errors++;
    s->attempts++;
    bool retry = s->attempts < MAX_ATTEMPTS && load.phase < PH_DRAIN;
    s->state = retry ? SUB_CLOSING : SUB_FAILED;
    s->requeue = retry;
    if (!retry && !s->ever_established)
        load.failed++;
    sub_close_handle(s);
    connect_pump();
}

/* An established connection ended. kefu subscribers come back with their cursor; nothing is lost
 * that way, so a drop costs only time. Pubsub subscribers are not resumed. */
static void sub_drop(sub_t *s)
{
    load.dropped++;
    bool resume = load.kefu && load.phase < PH_CLOSE;
    s->state = resume ? SUB_CLOSING : SUB_DONE;
    s->requeue = resume;
    s->attempts = 0;
    sub_close_handle(s);
}

static void sub_established(sub_t *s)
{
    if (s->established)
        return;
    s->established = true;
    s->attempts = 0;
    load.live++;
    if (s->pending) {
        s->pending = false;
        load.pending--;
    }
    if (s->ever_established) {
        load.reconnects++;
    } else {
        s->ever_established = true;
        load.established_total++;
        load.connect_last_ns = now_ns();
    }
    connect_pump();
}

/* Replaces every "{channel}" in template with the channel's name: the run's id and the number,
 * so that each run has channels of its own. */
static void expand_template(kf_buf_t *out, const char *template, uint32_t channel)
{
    static const char key[] = "{channel}";
    const char *p = template;
    for (;;) {
        const char *hit = strstr(p, key);
        if (hit == NULL) {
            kf_buf_append_str(out, p);
            return;
        }
        kf_buf_append(out, p, (size_t)(hit - p));
        kf_buf_printf(out, "%.8s_%u", MARKER + 2, (unsigned)channel);
        p = hit + sizeof key - 1;
    }
}

/* Sends the subscriber's next request: the stream, or the next poll. */
static void sub_request(sub_t *s)
{
    const options_t *o = &load.opts;
    kf_buf_t req;
    kf_buf_init(&req);
    const target_t *target = load.kefu ? &o->server : &o->subscribe;
    kf_buf_append_str(&req, "GET ");
    if (load.kefu) {
        const char *endpoint = TRANSPORT_NAMES[o->transport];
        /* Long polling opens with a short poll, answered at once, as kefu.js does. */
        if (o->transport == T_LONGPOLL && !s->established)
            endpoint = "poll";
        kf_buf_printf(&req, "/push/%s?after=%llu", endpoint, (unsigned long long)s->cursor);
    } else {
        expand_template(&req, o->subscribe.path, s->channel);
    }
    kf_buf_printf(&req, " HTTP/1.1\r\nHost: %s\r\n", target->host);
    if (o->transport == T_WS)
        kf_buf_append_str(&req, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n");
    else if (o->transport == T_SSE)
        kf_buf_append_str(&req, "Accept: text/event-stream\r\n");
    if (load.kefu)
        kf_buf_printf(&req, "Authorization: Bearer %s\r\n", load.visitors[s->index].token);
    kf_buf_append_str(&req, "\r\n");
    size_t len;
    char *text = kf_buf_steal(&req, &len);
    s->state = SUB_HEAD;
    load.push_requests++;
    if (stream_write_owned((uv_stream_t *)&s->tcp, text, len) != 0) {
        if (s->established)
            sub_drop(s);
        else
            sub_fail(s);
    }
}

static void sub_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void sub_connect_cb(uv_connect_t *req, int status)
{
    sub_t *s = req->handle->data;
    free(req);
    if (s->state != SUB_CONNECTING)
        return; /* closed meanwhile */
    if (status != 0) {
        sub_fail(s);
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    if (uv_read_start((uv_stream_t *)&s->tcp, shared_alloc_cb, sub_read_cb) != 0) {
        sub_fail(s);
        return;
    }
    sub_request(s);
}

static void sub_start(sub_t *s)
{
    const options_t *o = &load.opts;
    s->state = SUB_CONNECTING;
    s->pending = true;
    load.pending++;
    s->head_len = 0;
    s->kfl_pos = 0;
    s->id_pos = 0;
    uv_tcp_init_ex(load.loop, &s->tcp, AF_INET);
    s->tcp.data = s;
    s->handle_open = true;
    int rc = 0;
    if (o->source_count > 0) {
        /* Bind the address only; the port is picked at connect time, per destination, so each
         * source address has the whole ephemeral range towards the server. */
        uv_os_fd_t fd;
        int one = 1;
        if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in source = {0};
        source.sin_family = AF_INET;
        source.sin_addr.s_addr =
            htonl(o->source_first + (s->index + s->attempts) % o->source_count);
        rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&source, 0);
    }
    if (rc == 0) {
        uv_connect_t *req = kf_xmalloc(sizeof *req);
        const target_t *target = load.kefu ? &o->server : &o->subscribe;
        rc = uv_tcp_connect(req, &s->tcp, (const struct sockaddr *)&target->addr, sub_connect_cb);
        if (rc != 0)
            free(req);
    }
    if (rc != 0)
        sub_fail(s);
}

/* A whole response arrived (poll, long poll; or a stream that ended, as the iframe does after
 * 1 MiB): ask again on the same connection, at once or after the poll interval. */
static void sub_response_done(sub_t *s)
{
    if (!s->established)
        sub_established(s);
    if (!s->keep_alive) {
        sub_drop(s);
        return;
    }
    if (load.opts.transport == T_POLL) {
        s->state = SUB_WAIT;
        s->next_poll_ms = (uint32_t)uv_now(load.loop) + load.opts.poll_interval_ms;
        return;
    }
    sub_request(s);
}

static void sub_on_head(sub_t *s, const char *head, size_t head_len)
{
    resp_head_t h;
    bool ws = load.opts.transport == T_WS;
    if (resp_head_parse(head, head_len, &h) != 0 ||
        (ws ? h.status != 101 : (h.status < 200 || h.status > 299))) {
        load.last_bad_status = resp_head_parse(head, head_len, &h) == 0 ? h.status : -1;
        if (s->established)
            sub_drop(s);
        else
            sub_fail(s);
        return;
    }
    s->keep_alive = !h.close;
    s->state = SUB_BODY;
    s->remaining = 0;
    s->kfl_pos = 0;
    s->id_pos = 0;
    if (ws) {
        s->framing = FRAMING_WS;
        s->ws_hdr_len = 0;
        s->ws_payload = false;
    } else if (h.chunked) {
        s->framing = FRAMING_CHUNKED;
        s->chunk_state = CHUNK_SIZE;
    } else if (h.content_length >= 0) {
        s->framing = FRAMING_LENGTH;
        s->remaining = (uint64_t)h.content_length;
    } else {
        s->framing = FRAMING_EOF;
        s->keep_alive = false;
    }
    /* Established: at the 101 of a WebSocket; at the first bytes of a kefu stream (its heartbeat
     * event, in scan); at the 200 of a pubsub stream (Nchan sends nothing before a message);
     * at the first whole answer of a poll. */
    transport_t t = load.opts.transport;
    if (t == T_WS || (!load.kefu && t == T_SSE))
        sub_established(s);
    if (s->framing == FRAMING_LENGTH && s->remaining == 0)
        sub_response_done(s);
}

/* Consumes response-head bytes; returns how many. */
static size_t sub_feed_head(sub_t *s, const char *data, size_t len)
{
    size_t old = s->head_len;
    if (old == 0) {
        size_t end = head_end(data, len, 0);
        if (end > 0) {
            sub_on_head(s, data, end);
            return end;
        }
    }
    if (old + len > MAX_HEAD) {
        sub_fail(s);
        return len;
    }
    s->head = kf_xrealloc(s->head, old + len);
    memcpy(s->head + old, data, len);
    s->head_len = (uint32_t)(old + len);
    size_t end = head_end(s->head, s->head_len, old >= 3 ? old - 3 : 0);
    if (end == 0)
        return len;
    char *head = s->head;
    s->head = NULL;
    s->head_len = 0;
    sub_on_head(s, head, end);
    free(head);
    return end - old;
}

/* Sends a masked WebSocket control frame (pong or close) with payload. */
static void ws_send_control(sub_t *s, unsigned opcode, const char *payload, size_t len)
{
    unsigned char frame[2 + 4 + 125];
    if (len > 125)
        len = 125;
    uint32_t mask = random_u32();
    frame[0] = (unsigned char)(0x80 | opcode);
    frame[1] = (unsigned char)(0x80 | len);
    memcpy(frame + 2, &mask, 4);
    for (size_t i = 0; i < len; i++)
        frame[6 + i] = (unsigned char)payload[i] ^ frame[2 + i % 4];
    stream_write_copy((uv_stream_t *)&s->tcp, frame, 6 + len);
}

/* Bytes of a server frame header once its first bytes are known. */
static size_t ws_header_need(const sub_t *s)
{
    if (s->ws_hdr_len < 2)
        return 2;
    unsigned len7 = s->ws_hdr[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((s->ws_hdr[1] & 0x80) ? 4 : 0);
}

static void ws_frame_done(sub_t *s)
{
    unsigned opcode = s->ws_opcode;
    s->ws_payload = false;
    s->ws_hdr_len = 0;
    if (opcode < 0x8) {
        if (s->ws_fin)
            scan(s, "\n", 1); /* a message ends here: complete a marker at its very end */
        return;
    }
    if (opcode == 0x9) {
        ws_send_control(s, 0xA, s->ctrl, s->ctrl_len);
    } else if (opcode == 0x8) {
        ws_send_control(s, 0x8, s->ctrl, s->ctrl_len >= 2 ? 2 : 0);
        sub_drop(s);
    }
    free(s->ctrl);
    s->ctrl = NULL;
    s->ctrl_len = 0;
}

/* Consumes WebSocket frames from the server (unmasked, RFC 6455). */
static size_t sub_feed_ws(sub_t *s, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len && s->state == SUB_BODY) {
        if (!s->ws_payload) {
            s->ws_hdr[s->ws_hdr_len++] = (uint8_t)data[used++];
            if (s->ws_hdr_len < ws_header_need(s))
                continue;
            if (s->ws_hdr[1] & 0x80) { /* servers never mask */
                sub_drop(s);
                return len;
            }
            unsigned len7 = s->ws_hdr[1] & 0x7f;
            uint64_t payload_len = len7;
            if (len7 == 126)
                payload_len = (uint64_t)s->ws_hdr[2] << 8 | s->ws_hdr[3];
            else if (len7 == 127) {
                payload_len = 0;
                for (int i = 0; i < 8; i++)
                    payload_len = payload_len << 8 | s->ws_hdr[2 + i];
            }
            s->ws_opcode = s->ws_hdr[0] & 0x0f;
            s->ws_fin = (s->ws_hdr[0] & 0x80) != 0;
            if (s->ws_opcode >= 0x8 && payload_len > 125) {
                sub_drop(s);
                return len;
            }
            s->remaining = payload_len;
            s->ws_payload = true;
            s->ctrl_len = 0;
            if (s->remaining == 0)
                ws_frame_done(s);
            continue;
        }
        size_t n = len - used < s->remaining ? len - used : (size_t)s->remaining;
        if (s->ws_opcode < 0x8) {
            scan(s, data + used, n);
        } else {
            if (s->ctrl == NULL)
                s->ctrl = kf_xmalloc(125);
            memcpy(s->ctrl + s->ctrl_len, data + used, n);
            s->ctrl_len = (uint8_t)(s->ctrl_len + n);
        }
        used += n;
        s->remaining -= n;
        if (s->remaining == 0)
            ws_frame_done(s);
    }
    return used;
}

/* Consumes a chunked body, handing the data to the matchers. */
static size_t sub_feed_chunked(sub_t *s, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len && s->state == SUB_BODY) {
        unsigned c = (unsigned char)data[used];
        switch (s->chunk_state) {
        case CHUNK_SIZE:
            used++;
            if (hex_value(c) >= 0 && s->remaining < (1ULL << 40)) {
                s->remaining = s->remaining * 16 + (uint64_t)hex_value(c);
            } else if (c == ';') {
                s->chunk_state = CHUNK_EXT;
            } else if (c == '\n') {
                s->chunk_state = s->remaining == 0 ? CHUNK_TRAILER_START : CHUNK_DATA;
            } else if (c != '\r') {
                sub_drop(s);
                return len;
            }
            break;
        case CHUNK_EXT:
            used++;
            if (c == '\n')
                s->chunk_state = s->remaining == 0 ? CHUNK_TRAILER_START : CHUNK_DATA;
            break;
        case CHUNK_DATA: {
            size_t n = len - used < s->remaining ? len - used : (size_t)s->remaining;
            scan(s, data + used, n);
            used += n;
            s->remaining -= n;
            if (s->remaining == 0)
                s->chunk_state = CHUNK_DATA_END;
            break;
        }
        case CHUNK_DATA_END:
            used++;
            if (c == '\n')
                s->chunk_state = CHUNK_SIZE;
            break;
        case CHUNK_TRAILER_START:
            used++;
            if (c == '\n') {
                s->chunk_state = CHUNK_SIZE;
                sub_response_done(s);
                return used;
            }
            if (c != '\r')
                s->chunk_state = CHUNK_TRAILER_LINE;
            break;
        default: /* CHUNK_TRAILER_LINE */
            used++;
            if (c == '\n')
                s->chunk_state = CHUNK_TRAILER_START;
            break;
        }
    }
    return used;
}

static size_t sub_feed_body(sub_t *s, const char *data, size_t len)
{
    switch (s->framing) {
    case FRAMING_WS: return sub_feed_ws(s, data, len);
    case FRAMING_CHUNKED: return sub_feed_chunked(s, data, len);
    case FRAMING_EOF: scan(s, data, len); return len;
    default: { /* FRAMING_LENGTH */
        size_t n = len < s->remaining ? len : (size_t)s->remaining;
        scan(s, data, n);
        s->remaining -= n;
        if (s->remaining == 0) {
            scan(s, "\n", 1);
            sub_response_done(s);
        }
        return n;
    }
    }
}

static void sub_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sub_t *s = stream->data;
    if (nread < 0) {
        if (s->established || s->state == SUB_WAIT)
            sub_drop(s);
        else
            sub_fail(s);
        return;
    }
    const char *data = buf->base;
    size_t len = (size_t)nread;
    while (len > 0) {
        size_t used;
        if (s->state == SUB_HEAD)
            used = sub_feed_head(s, data, len);
        else if (s->state == SUB_BODY)
            used = sub_feed_body(s, data, len);
        else
            return; /* closing, or bytes while waiting to poll: ignored */
        data += used;
        len -= used;
    }
}

/* ---- kefu set-up: sessions, first messages, login ---- */

static void build_post(kf_buf_t *out, const target_t *target, const char *path, const char *extra,
                       const char *content_type, const char *body)
{
    kf_buf_printf(
        out, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n%s",
        path, target->host, content_type, strlen(body), extra, body);
}

static void session_submit(uint32_t index);
static void first_message_submit(uint32_t index);

static void setup_step_done(uint32_t index, bool ok)
{
    visitor_t *v = &load.visitors[index];
    if (ok) {
        load.setup_ready++;
    } else {
        v->failed = true;
        load.setup_failed++;
    }
}

static json_t *parse_json(const char *body, size_t len)
{
    json_error_t error;
    return json_loadb(body, len, 0, &error);
}

static void session_done_cb(uint64_t tag, int status, const char *head, size_t head_len,
                            const char *body, size_t body_len)
{
    (void)head;
    (void)head_len;
    uint32_t index = (uint32_t)tag;
    visitor_t *v = &load.visitors[index];
    json_t *root = status == 201 ? parse_json(body, body_len) : NULL;
    const char *token = json_string_value(json_object_get(root, "token"));
    if (token != NULL && strlen(token) < sizeof v->token) {
        snprintf(v->token, sizeof v->token, "%s", token);
        v->tries = 0;
        if (load.opts.connect_only)
            setup_step_done(index, true);
        else
            first_message_submit(index);
    } else {
        if (status != 0)
            load.last_bad_status = status;
        if (++v->tries < MAX_ATTEMPTS && load.phase == PH_SETUP)
            session_submit(index);
        else
            setup_step_done(index, false);
    }
    json_decref(root);
}

static void session_submit(uint32_t index)
{
    kf_buf_t req;
    kf_buf_init(&req);
    build_post(&req, &load.opts.server, "/api/visitor/session", "", "application/json", "{}");
    size_t len;
    char *text = kf_buf_steal(&req, &len);
    api_submit(&load.api, text, len, session_done_cb, index);
}

static void first_message_done_cb(uint64_t tag, int status, const char *head, size_t head_len,
                                  const char *body, size_t body_len)
{
    (void)head;
    (void)head_len;
    uint32_t index = (uint32_t)tag;
    visitor_t *v = &load.visitors[index];
    json_t *root = status == 201 ? parse_json(body, body_len) : NULL;
    json_t *message = json_object_get(root, "message");
    json_t *id = json_object_get(message, "id");
    json_t *conversation = json_object_get(message, "conversation_id");
    if (json_is_integer(id) && json_is_integer(conversation)) {
        v->first_message_id = (uint64_t)json_integer_value(id);
        v->conversation_id = json_integer_value(conversation);
        setup_step_done(index, true);
    } else {
        if (status != 0)
            load.last_bad_status = status;
        if (++v->tries < MAX_ATTEMPTS && load.phase == PH_SETUP)
            first_message_submit(index);
        else
            setup_step_done(index, false);
    }
    json_decref(root);
}

static void first_message_submit(uint32_t index)
{
    visitor_t *v = &load.visitors[index];
    char auth[TOKEN_MAX + 32];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", v->token);
    char body[96];
    snprintf(body, sizeof body, "{\"body\":\"Hello, I am load visitor %u\"}", (unsigned)index);
    kf_buf_t req;
    kf_buf_init(&req);
    build_post(&req, &load.opts.server, "/api/visitor/messages", auth, "application/json", body);
    size_t len;
    char *text = kf_buf_steal(&req, &len);
    api_submit(&load.api, text, len, first_message_done_cb, index);
}

static void login_done_cb(uint64_t tag, int status, const char *head, size_t head_len,
                          const char *body, size_t body_len)
{
    (void)tag;
    kf_str_t cookie;
    json_t *root = status == 200 ? parse_json(body, body_len) : NULL;
    const char *csrf = json_string_value(json_object_get(root, "csrf"));
    if (csrf != NULL && head_find(head, head_len, "Set-Cookie", &cookie)) {
        const char *semi = memchr(cookie.ptr, ';', cookie.len);
        size_t len = semi != NULL ? (size_t)(semi - cookie.ptr) : cookie.len;
        if (len < sizeof load.cookie) {
            memcpy(load.cookie, cookie.ptr, len);
            load.cookie[len] = '\0';
            snprintf(load.csrf, sizeof load.csrf, "%s", csrf);
            load.logged_in = true;
        }
    }
    json_decref(root);
    if (!load.logged_in && load.phase == PH_SETUP) {
        progress("agent login failed (HTTP %d): check --agent-email and --agent-password", status);
        load.abort_reason = "agent login failed";
        load.exit_code = 1;
        finish();
    }
}

static void login_submit(void)
{
    json_t *credentials = json_pack("{s:s,s:s}", "email", load.opts.agent_email, "password",
                                    load.opts.agent_password);
    char *body = json_dumps(credentials, JSON_COMPACT);
    json_decref(credentials);
    kf_buf_t req;
    kf_buf_init(&req);
    build_post(&req, &load.opts.server, "/api/agent/login", "", "application/json", body);
    free(body);
    size_t len;
    char *text = kf_buf_steal(&req, &len);
    api_submit(&load.api, text, len, login_done_cb, 0);
}

static void setup_check(void)
{
    unsigned n = load.opts.visitors;
    if (load.setup_ready + load.setup_failed < n || (load.need_login && !load.logged_in))
        return;
    double seconds = (double)(now_ns() - load.phase_start_ns) / 1e9;
    progress("set-up: %u visitors ready, %u failed, in %.1f s", load.setup_ready, load.setup_failed,
             seconds);
    if (load.setup_ready == 0) {
        load.abort_reason = "no visitor could be set up";
        load.exit_code = 1;
        finish();
        return;
    }
    enter_connect();
}

/* ---- sending ---- */

static void message_done_cb(uint64_t tag, int status, const char *head, size_t head_len,
                            const char *body, size_t body_len)
{
    (void)head;
    (void)head_len;
    (void)body;
    (void)body_len;
    msg_rec_t *m = &load.msgs[tag];
    if (status >= 200 && status <= 299) {
        m->state = MSG_ACKED;
        load.acked++;
        load.expected_acked += expected_of(m->channel);
        uint64_t now_us = (now_ns() - load.run_start_ns) / 1000;
        load.ack_us[load.ack_len++] = (uint32_t)(now_us - m->sent_us);
    } else {
        m->state = MSG_FAILED;
        load.send_failed++;
        if (status != 0)
            load.last_bad_status = status;
    }
}

static void send_one(void)
{
    uint64_t seq = load.sent;
    uint32_t target = load.targets[random_u32() % load.target_count];
    uint64_t t = now_ns();
    msg_rec_t *m = &load.msgs[seq];
    m->channel = target;
    m->sent_us = (uint32_t)((t - load.run_start_ns) / 1000);
    m->state = MSG_SENT;
    load.sent++;
    char marker[64];
    snprintf(marker, sizeof marker, "%s%llu:%llu", MARKER, (unsigned long long)seq,
             (unsigned long long)t);
    kf_buf_t req;
    kf_buf_init(&req);
    if (load.kefu) {
        char path[64], extra[512], body[96];
        snprintf(path, sizeof path, "/api/conversations/%lld/messages",
                 (long long)load.visitors[target].conversation_id);
        snprintf(extra, sizeof extra, "Cookie: %s\r\nX-CSRF-Token: %s\r\n", load.cookie, load.csrf);
        snprintf(body, sizeof body, "{\"body\":\"%s\"}", marker);
        build_post(&req, &load.opts.server, path, extra, "application/json", body);
    } else {
        kf_buf_t path;
        kf_buf_init(&path);
        expand_template(&path, load.opts.publish.path, target);
        build_post(&req, &load.opts.publish, path.data, "", "text/plain", marker);
        kf_buf_free(&path);
    }
    size_t len;
    char *text = kf_buf_steal(&req, &len);
    api_submit(&load.api, text, len, message_done_cb, seq);
}

/* Sends what the rate says is due by time now, unless the server is too far behind: requests in
 * flight are capped, so a slow server lowers the achieved rate instead of piling up requests. */
static void send_due(uint64_t now)
{
    if (now > load.run_end_ns)
        now = load.run_end_ns;
    double due_f = (double)(now - load.run_start_ns) / 1e9 * load.opts.rate;
    uint64_t due = now == load.run_end_ns ? (uint64_t)floor(due_f + 1e-6) : (uint64_t)due_f + 1;
    if (due > load.msg_capacity)
        due = load.msg_capacity;
    if (due > load.planned)
        load.planned = due;
    size_t cap = load.api.count * load.api.depth;
    while (load.sent < due && load.api.inflight + load.api.queued < cap)
        send_one();
}

static void sender_cb(uv_timer_t *timer)
{
    (void)timer;
    send_due(now_ns());
}

/* ---- phases ---- */

static void enter_connect(void)
{
    const options_t *o = &load.opts;
    load.phase = PH_CONNECT;
    load.phase_start_ns = now_ns();
    load.server_before = proc_sample(o->server_pid);
    load.server_connect_start = load.server_before;
    load.self_before = self_sample();
    for (uint32_t i = 0; i < o->visitors; i++) {
        sub_t *s = &load.subs[i];
        s->index = i;
        s->channel = load.kefu ? i : i % o->channels;
        if (load.kefu) {
            if (load.visitors[i].failed) {
                s->state = SUB_FAILED;
                load.failed++;
                continue;
            }
            s->cursor = load.visitors[i].first_message_id;
        }
        queue_push(s);
    }
    progress("connecting %u %s subscribers (%u at a time)", o->visitors,
             TRANSPORT_NAMES[o->transport], o->connect_concurrency);
    load.connect_start_ns = now_ns();
    connect_pump();
}

static void connect_check(void)
{
    const options_t *o = &load.opts;
    uint64_t now = now_ns();
    bool all = load.established_total + load.failed >= o->visitors;
    bool timed_out = now - load.phase_start_ns >= (uint64_t)o->connect_timeout_s * 1000000000ULL;
    if (!all && !timed_out)
        return;
    load.connect_s = load.established_total > 0
                         ? (double)(load.connect_last_ns - load.connect_start_ns) / 1e9
                         : 0;
    progress("%u of %u established in %.2f s%s", load.established_total, o->visitors,
             load.connect_s, timed_out && !all ? " (timed out)" : "");
    enter_run();
}

static void enter_run(void)
{
    const options_t *o = &load.opts;
    load.server_connected = proc_sample(o->server_pid);
    load.self_connected = self_sample();
    /* Whom to send to: kefu visitors with a conversation and a connection; pubsub channels with
     * subscribers. */
    load.targets = kf_xcalloc(o->visitors, sizeof *load.targets);
    if (!load.kefu) {
        load.subs_per_channel = kf_xcalloc(o->channels, sizeof *load.subs_per_channel);
        for (uint32_t i = 0; i < o->visitors; i++) {
            if (load.subs[i].established)
                load.subs_per_channel[load.subs[i].channel]++;
        }
        for (uint32_t c = 0; c < o->channels; c++) {
            if (load.subs_per_channel[c] > 0)
                load.targets[load.target_count++] = c;
        }
    } else {
        for (uint32_t i = 0; i < o->visitors; i++) {
            if (load.subs[i].established && load.visitors[i].conversation_id > 0)
                load.targets[load.target_count++] = i;
        }
    }
    load.phase = PH_RUN;
    load.phase_start_ns = now_ns();
    load.run_start_ns = load.phase_start_ns;
    load.run_end_ns = load.run_start_ns + (uint64_t)o->duration_s * 1000000000ULL;
    load.server_run_start = proc_sample(o->server_pid);
    load.self_run_start = self_sample();
    if (o->connect_only) {
        progress("holding %u connections for %u s", load.live, o->duration_s);
        return;
    }
    if (load.target_count == 0) {
        load.abort_reason = "no subscriber to send to";
        load.exit_code = 1;
        finish();
        return;
    }
    progress("sending %.0f msg/s for %u s to %u %s", o->rate, o->duration_s, load.target_count,
             load.kefu ? "conversations" : "channels");
    uv_timer_start(&load.sender, sender_cb, 1, 1);
}

/* Deliveries are complete when every acked message arrived as often as it should. */
static bool delivered_all(void)
{
    return load.api.inflight == 0 && load.api.queued == 0 &&
           load.good_receptions >= load.expected_acked;
}

static void tick_cb(uv_timer_t *timer)
{
    (void)timer;
    uint64_t now = now_ns();
    switch (load.phase) {
    case PH_SETUP:
        if (now - load.phase_start_ns >= (uint64_t)SETUP_TIMEOUT_MS * 1000000) {
            load.abort_reason = "set-up timed out";
            load.exit_code = 1;
            finish();
            return;
        }
        setup_check();
        return;
    case PH_CONNECT:
        connect_pump();
        connect_check();
        break;
    case PH_RUN:
        connect_pump();
        if (now >= load.run_end_ns) {
            if (!load.opts.connect_only)
                send_due(load.run_end_ns); /* what the last interval owes */
            uv_timer_stop(&load.sender);
            load.server_run_end = proc_sample(load.opts.server_pid);
            load.self_run_end = self_sample();
            load.phase = PH_DRAIN;
            load.drain_end_ns = now + (uint64_t)DRAIN_MS * 1000000;
            if (load.opts.connect_only)
                load.drain_end_ns = now;
        }
        break;
    case PH_DRAIN:
        connect_pump();
        if (now >= load.drain_end_ns || delivered_all()) {
            finish();
            return;
        }
        break;
    default: return;
    }
    if (load.opts.transport == T_POLL) {
        uint32_t now_ms = (uint32_t)uv_now(load.loop);
        for (uint32_t i = 0; i < load.opts.visitors; i++) {
            sub_t *s = &load.subs[i];
            if (s->state == SUB_WAIT && (int32_t)(now_ms - s->next_poll_ms) >= 0)
                sub_request(s);
        }
    }
}

static void watchdog_cb(uv_timer_t *timer)
{
    (void)timer;
    if (load.phase >= PH_CLOSE) {
        progress("closing took too long; exiting");
        exit(3);
    }
    load.abort_reason = "the run's deadline passed";
    load.exit_code = 1;
    finish();
}

static void signal_cb(uv_signal_t *handle, int signum)
{
    (void)handle;
    (void)signum;
    if (load.phase >= PH_CLOSE)
        return;
    load.interrupted = true;
    load.abort_reason = "interrupted";
    load.exit_code = 130;
    if (load.phase == PH_RUN) {
        load.server_run_end = proc_sample(load.opts.server_pid);
        load.self_run_end = self_sample();
    }
    finish();
}

/* ---- the report ---- */

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in ms; NAN when empty. */
static double percentile_ms(const uint32_t *sorted, size_t n, double p)
{
    if (n == 0)
        return NAN;
    size_t rank = (size_t)ceil(p * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

/* Appends "key":value, or null when the value is not a number. */
static void json_num(kf_buf_t *out, const char *key, double value, int decimals)
{
    if (isnan(value) || isinf(value))
        kf_buf_printf(out, ",\"%s\":null", key);
    else
        kf_buf_printf(out, ",\"%s\":%.*f", key, decimals, value);
}

/* Formats a figure for the table: "-" when it is unknown. */
static const char *fmt(char *out, size_t size, double value, int decimals)
{
    if (isnan(value) || isinf(value))
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%.*f", decimals, value);
    return out;
}

static void report(void)
{
    const options_t *o = &load.opts;
    bool have_server = load.server_before.ok && load.server_connected.ok;
    proc_stat_t run_start = load.server_run_start, run_end = load.server_run_end;
    double run_wall =
        load.run_end_ns > load.run_start_ns && load.phase_start_ns >= load.run_start_ns
            ? (double)o->duration_s
            : NAN;
    if (load.interrupted && load.run_start_ns > 0)
        run_wall = (double)(now_ns() - load.run_start_ns) / 1e9;
    /* Losses and duplicates, from every message's count. */
    uint64_t lost = 0, duplicates = 0, unacked_delivered = 0;
    for (uint64_t i = 0; i < load.sent; i++) {
        const msg_rec_t *m = &load.msgs[i];
        uint32_t expected = expected_of(m->channel);
        if (m->received > expected)
            duplicates += m->received - expected;
        if (m->state == MSG_ACKED && m->received < expected)
            lost += expected - m->received;
        if (m->state != MSG_ACKED && m->received > 0)
            unacked_delivered++;
    }
    if (load.latency_len > 0)
        qsort(load.latency_us, load.latency_len, sizeof *load.latency_us, compare_u32);
    if (load.ack_len > 0)
        qsort(load.ack_us, load.ack_len, sizeof *load.ack_us, compare_u32);
    double p50 = percentile_ms(load.latency_us, load.latency_len, 0.50);
    double p90 = percentile_ms(load.latency_us, load.latency_len, 0.90);
    double p99 = percentile_ms(load.latency_us, load.latency_len, 0.99);
    double p999 = percentile_ms(load.latency_us, load.latency_len, 0.999);
    double pmax = percentile_ms(load.latency_us, load.latency_len, 1.0);
    double ack50 = percentile_ms(load.ack_us, load.ack_len, 0.50);
    double ack99 = percentile_ms(load.ack_us, load.ack_len, 0.99);
    double ackmax = percentile_ms(load.ack_us, load.ack_len, 1.0);
    double rate_achieved = !isnan(run_wall) && run_wall > 0 ? (double)load.acked / run_wall : NAN;
    double server_cpu = run_start.ok && run_end.ok && !isnan(run_wall) && run_wall > 0
                            ? (run_end.cpu_s - run_start.cpu_s) / run_wall * 100.0
                            : NAN;
    double self_cpu = load.self_run_end.ok && !isnan(run_wall) && run_wall > 0
                          ? (load.self_run_end.cpu_s - load.self_run_start.cpu_s) / run_wall * 100.0
                          : NAN;
    double connect_cpu = load.server_connect_start.ok && load.server_connected.ok
                             ? load.server_connected.cpu_s - load.server_connect_start.cpu_s
                             : NAN;
    double per_conn = have_server && load.established_total > 0
                          ? (double)(load.server_connected.rss_kb - load.server_before.rss_kb) *
                                1024.0 / load.established_total
                          : NAN;
    double self_per_conn = load.established_total > 0 && load.self_connected.ok
                               ? (double)(load.self_connected.rss_kb - load.self_before.rss_kb) *
                                     1024.0 / load.established_total
                               : NAN;
    const char *what = load.kefu ? "kefu" : "pubsub";
    char a[32], b[32], c[32], d[32], e[32];

    printf("kf_load%s%s: %s over %s, %u %s, %s\n", o->label != NULL ? " " : "",
           o->label != NULL ? o->label : "", what, TRANSPORT_NAMES[o->transport], o->visitors,
           load.kefu ? "visitors" : "subscribers", o->connect_only ? "connect-only" : "chat load");
    if (load.abort_reason != NULL)
        printf("  STOPPED EARLY: %s%s%s\n", load.abort_reason,
               load.api_error != NULL ? "; the server's HTTP connections: " : "",
               load.api_error != NULL ? load.api_error : "");
    printf("  %-18s %u of %u established in %s s (%s/s); %u failed, %llu errors, "
           "%llu dropped, %llu reconnects; %llu push requests\n",
           "connections", load.established_total, o->visitors, fmt(a, sizeof a, load.connect_s, 2),
           fmt(b, sizeof b, load.connect_s > 0 ? load.established_total / load.connect_s : NAN, 0),
           load.failed, (unsigned long long)load.connect_errors, (unsigned long long)load.dropped,
           (unsigned long long)load.reconnects, (unsigned long long)load.push_requests);
    if (!o->connect_only) {
        printf("  %-18s target %.0f/s for %u s: planned %llu, sent %llu, acked %llu, failed %llu\n",
               "messages", o->rate, o->duration_s, (unsigned long long)load.planned,
               (unsigned long long)load.sent, (unsigned long long)load.acked,
               (unsigned long long)load.send_failed);
        printf("  %-18s %s msg/s acked\n", "achieved rate", fmt(a, sizeof a, rate_achieved, 1));
        printf("  %-18s received %llu; lost %llu; duplicates %llu; misdelivered %llu; "
               "unknown %llu\n",
               "delivery", (unsigned long long)load.received, (unsigned long long)lost,
               (unsigned long long)duplicates, (unsigned long long)load.misdelivered,
               (unsigned long long)load.unknown);
        printf("  %-18s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", "latency ms",
               fmt(a, sizeof a, p50, 2), fmt(b, sizeof b, p90, 2), fmt(c, sizeof c, p99, 2),
               fmt(d, sizeof d, p999, 2), fmt(e, sizeof e, pmax, 2));
        printf("  %-18s p50 %s  p99 %s  max %s\n", "send->2xx ms", fmt(a, sizeof a, ack50, 2),
               fmt(b, sizeof b, ack99, 2), fmt(c, sizeof c, ackmax, 2));
    }
    if (have_server) {
        printf("  %-18s before %s MiB, connected %s MiB (%s bytes/connection), end %s MiB\n",
               "server RSS", fmt(a, sizeof a, load.server_before.rss_kb / 1024.0, 1),
               fmt(b, sizeof b, load.server_connected.rss_kb / 1024.0, 1),
               fmt(c, sizeof c, per_conn, 0),
               fmt(d, sizeof d, load.server_end.ok ? load.server_end.rss_kb / 1024.0 : NAN, 1));
        printf("  %-18s connecting %s s (%s us/connection); %s %s %% of one core\n", "server CPU",
               fmt(a, sizeof a, connect_cpu, 2),
               fmt(b, sizeof b,
                   load.established_total > 0 ? connect_cpu * 1e6 / load.established_total : NAN,
                   0),
               o->connect_only ? "idle" : "under load", fmt(c, sizeof c, server_cpu, 1));
    } else {
        printf("  %-18s n/a (give --server-pid)\n", "server RSS, CPU");
    }
    printf("  %-18s RSS %s MiB (%s bytes/connection); CPU %s %% of one core\n", "kf_load",
           fmt(a, sizeof a, load.self_connected.ok ? load.self_connected.rss_kb / 1024.0 : NAN, 1),
           fmt(b, sizeof b, self_per_conn, 0), fmt(c, sizeof c, self_cpu, 1));

    kf_buf_t j;
    kf_buf_init(&j);
    kf_buf_printf(&j, "{\"tool\":\"kf_load\",\"label\":");
    if (o->label != NULL) {
        json_t *label = json_string(o->label);
        char *text = json_dumps(label, JSON_ENCODE_ANY);
        kf_buf_append_str(&j, text != NULL ? text : "null");
        free(text);
        json_decref(label);
    } else {
        kf_buf_append_str(&j, "null");
    }
    kf_buf_printf(&j, ",\"target\":\"%s\",\"transport\":\"%s\",\"mode\":\"%s\",\"complete\":%s",
                  what, TRANSPORT_NAMES[o->transport], o->connect_only ? "connect" : "chat",
                  load.abort_reason == NULL ? "true" : "false");
    kf_buf_printf(&j, ",\"connections\":%u,\"established\":%u,\"connect_failed\":%u", o->visitors,
                  load.established_total, load.failed);
    kf_buf_printf(&j, ",\"connect_errors\":%llu,\"dropped\":%llu,\"reconnects\":%llu",
                  (unsigned long long)load.connect_errors, (unsigned long long)load.dropped,
                  (unsigned long long)load.reconnects);
    kf_buf_printf(&j, ",\"push_requests\":%llu", (unsigned long long)load.push_requests);
    json_num(&j, "connect_s", load.connect_s, 3);
    json_num(&j, "connect_per_s",
             load.connect_s > 0 ? load.established_total / load.connect_s : NAN, 0);
    kf_buf_printf(&j, ",\"duration_s\":%u", o->duration_s);
    json_num(&j, "rate_target", o->connect_only ? NAN : o->rate, 1);
    kf_buf_printf(&j, ",\"planned\":%llu,\"sent\":%llu,\"acked\":%llu,\"send_failed\":%llu",
                  (unsigned long long)load.planned, (unsigned long long)load.sent,
                  (unsigned long long)load.acked, (unsigned long long)load.send_failed);
    json_num(&j, "rate_achieved", rate_achieved, 1);
    kf_buf_printf(&j, ",\"received\":%llu,\"lost\":%llu,\"duplicates\":%llu,\"misdelivered\":%llu",
                  (unsigned long long)load.received, (unsigned long long)lost,
                  (unsigned long long)duplicates, (unsigned long long)load.misdelivered);
    kf_buf_printf(&j, ",\"unacked_delivered\":%llu,\"unknown\":%llu",
                  (unsigned long long)unacked_delivered, (unsigned long long)load.unknown);
    json_num(&j, "lat_p50_ms", p50, 3);
    json_num(&j, "lat_p90_ms", p90, 3);
    json_num(&j, "lat_p99_ms", p99, 3);
    json_num(&j, "lat_p999_ms", p999, 3);
    json_num(&j, "lat_max_ms", pmax, 3);
    json_num(&j, "ack_p50_ms", ack50, 3);
    json_num(&j, "ack_p99_ms", ack99, 3);
    json_num(&j, "ack_max_ms", ackmax, 3);
    json_num(&j, "server_rss_before_kb", have_server ? (double)load.server_before.rss_kb : NAN, 0);
    json_num(&j, "server_rss_connected_kb",
             have_server ? (double)load.server_connected.rss_kb : NAN, 0);
    json_num(&j, "server_rss_end_kb", load.server_end.ok ? (double)load.server_end.rss_kb : NAN, 0);
    json_num(&j, "server_bytes_per_conn", per_conn, 0);
    json_num(&j, "server_connect_cpu_s", connect_cpu, 2);
    json_num(&j, "server_cpu_pct", server_cpu, 1);
    json_num(&j, "self_rss_kb", load.self_connected.ok ? (double)load.self_connected.rss_kb : NAN,
             0);
    json_num(&j, "self_bytes_per_conn", self_per_conn, 0);
    json_num(&j, "self_cpu_pct", self_cpu, 1);
    kf_buf_printf(&j, ",\"last_bad_status\":%d}", load.last_bad_status);
    printf("%s\n", j.data);
    kf_buf_free(&j);
    fflush(stdout);
}

/* ---- the end ---- */

static void handle_closed_noop(uv_handle_t *handle)
{
    (void)handle;
}

/* Reports and closes everything; the loop then ends by itself. */
static void finish(void)
{
    if (load.phase >= PH_CLOSE)
        return;
    uv_timer_stop(&load.sender);
    load.server_end = proc_sample(load.opts.server_pid);
    if (load.self_run_end.cpu_s == 0 && load.self_run_start.ok && load.phase == PH_RUN)
        load.self_run_end = self_sample();
    report();
    load.phase = PH_CLOSE;
    for (uint32_t i = 0; i < load.opts.visitors; i++) {
        sub_t *s = &load.subs[i];
        s->requeue = false;
        sub_close_handle(s);
    }
    load.queue_len = 0;
    api_pool_stop(&load.api);
    uv_timer_stop(&load.tick);
    uv_close((uv_handle_t *)&load.tick, handle_closed_noop);
    uv_close((uv_handle_t *)&load.sender, handle_closed_noop);
    uv_close((uv_handle_t *)&load.sigint, handle_closed_noop);
    uv_close((uv_handle_t *)&load.sigterm, handle_closed_noop);
    /* The watchdog stays: it ends a close that hangs. */
    uv_timer_start(&load.watchdog, watchdog_cb, CLOSE_TIMEOUT_MS, 0);
    uv_unref((uv_handle_t *)&load.watchdog);
}

/* ---- main ---- */

static int parse_options(int argc, char **argv, options_t *o)
{
    enum {
        O_URL = 256,
        O_TRANSPORT,
        O_VISITORS,
        O_RATE,
        O_DURATION,
        O_EMAIL,
        O_PASSWORD,
        O_SOURCES,
        O_CONNECT_ONLY,
        O_PUBSUB,
        O_PUBLISH,
        O_SUBSCRIBE,
        O_CHANNELS,
        O_PID,
        O_HTTP_CONNS,
        O_PIPELINE,
        O_CONCURRENCY,
        O_CONNECT_TIMEOUT,
        O_POLL_INTERVAL,
        O_LABEL
    };
    static const struct option long_options[] = {
        {"url", required_argument, NULL, O_URL},
        {"transport", required_argument, NULL, O_TRANSPORT},
        {"visitors", required_argument, NULL, O_VISITORS},
        {"rate", required_argument, NULL, O_RATE},
        {"duration", required_argument, NULL, O_DURATION},
        {"agent-email", required_argument, NULL, O_EMAIL},
        {"agent-password", required_argument, NULL, O_PASSWORD},
        {"source-ips", required_argument, NULL, O_SOURCES},
        {"connect-only", no_argument, NULL, O_CONNECT_ONLY},
        {"pubsub", no_argument, NULL, O_PUBSUB},
        {"publish-url", required_argument, NULL, O_PUBLISH},
        {"subscribe-url", required_argument, NULL, O_SUBSCRIBE},
        {"channels", required_argument, NULL, O_CHANNELS},
        {"server-pid", required_argument, NULL, O_PID},
        {"http-conns", required_argument, NULL, O_HTTP_CONNS},
        {"pipeline", required_argument, NULL, O_PIPELINE},
        {"connect-concurrency", required_argument, NULL, O_CONCURRENCY},
        {"connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT},
        {"poll-interval", required_argument, NULL, O_POLL_INTERVAL},
        {"label", required_argument, NULL, O_LABEL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *publish_url = NULL, *subscribe_url = NULL, *sources = NULL;
    bool have_transport = false, have_visitors = false;
    unsigned value;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_URL: url = optarg; break;
        case O_TRANSPORT:
            ok = false;
            for (int t = 0; t < 5; t++) {
                if (strcmp(optarg, TRANSPORT_NAMES[t]) == 0) {
                    o->transport = (transport_t)t;
                    ok = have_transport = true;
                }
            }
            break;
        case O_VISITORS:
            ok = parse_unsigned(optarg, UINT_MAX, &o->visitors) && o->visitors > 0;
            have_visitors = ok;
            if (ok && o->visitors > MAX_CONNECTIONS) {
                fprintf(stderr, "kf_load: at most %d connections per process\n", MAX_CONNECTIONS);
                return 2;
            }
            break;
        case O_RATE: {
            char *end;
            o->rate = strtod(optarg, &end);
            ok = *end == '\0' && end != optarg && o->rate > 0 && o->rate <= MAX_RATE;
            break;
        }
        case O_DURATION:
            ok = parse_unsigned(optarg, UINT_MAX, &o->duration_s) && o->duration_s > 0;
            if (ok && o->duration_s > MAX_DURATION_S) {
                fprintf(stderr, "kf_load: --duration is at most %d s\n", MAX_DURATION_S);
                return 2;
            }
            break;
        case O_EMAIL: o->agent_email = optarg; break;
        case O_PASSWORD: o->agent_password = optarg; break;
        case O_SOURCES: sources = optarg; break;
        case O_CONNECT_ONLY: o->connect_only = true; break;
        case O_PUBSUB: o->pubsub = true; break;
        case O_PUBLISH: publish_url = optarg; break;
        case O_SUBSCRIBE: subscribe_url = optarg; break;
        case O_CHANNELS:
            ok = parse_unsigned(optarg, MAX_CONNECTIONS, &o->channels) && o->channels > 0;
            break;
        case O_PID:
            ok = parse_unsigned(optarg, INT_MAX, &value) && value > 0;
            o->server_pid = (pid_t)value;
            break;
        case O_HTTP_CONNS:
            ok = parse_unsigned(optarg, MAX_HTTP_CONNS, &o->http_conns) && o->http_conns > 0;
            break;
        case O_PIPELINE: ok = parse_unsigned(optarg, 1024, &o->pipeline) && o->pipeline > 0; break;
        case O_CONCURRENCY:
            ok = parse_unsigned(optarg, MAX_CONNECTIONS, &o->connect_concurrency) &&
                 o->connect_concurrency > 0;
            break;
        case O_CONNECT_TIMEOUT:
            ok = parse_unsigned(optarg, MAX_DURATION_S, &o->connect_timeout_s) &&
                 o->connect_timeout_s > 0;
            break;
        case O_POLL_INTERVAL:
            ok = parse_unsigned(optarg, 60000, &o->poll_interval_ms) && o->poll_interval_ms > 0;
            break;
        case O_LABEL: o->label = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return 2;
        }
        if (!ok) {
            fprintf(stderr, "kf_load: bad value for --%s: %s\n", long_options[c - O_URL].name,
                    optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kf_load: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    if (!have_transport || !have_visitors) {
        fprintf(stderr, "kf_load: --transport and --visitors are required (see --help)\n");
        return 2;
    }
    const char *which = NULL;
    int rc = 0;
    if (o->pubsub) {
        if (publish_url == NULL || subscribe_url == NULL) {
            fprintf(stderr, "kf_load: --pubsub needs --publish-url and --subscribe-url\n");
            return 2;
        }
        if (o->transport != T_WS && o->transport != T_SSE) {
            fprintf(stderr, "kf_load: --pubsub subscribes over ws or sse\n");
            return 2;
        }
        if ((rc = target_parse(publish_url, &o->publish)) != 0)
            which = publish_url;
        else if ((rc = target_parse(subscribe_url, &o->subscribe)) != 0)
            which = subscribe_url;
        if (o->channels == 0)
            o->channels = o->visitors;
        if (o->channels > o->visitors) {
            fprintf(stderr, "kf_load: --channels is at most --visitors\n");
            return 2;
        }
    } else {
        if (url == NULL) {
            fprintf(stderr, "kf_load: --url is required (see --help)\n");
            return 2;
        }
        if ((rc = target_parse(url, &o->server)) != 0)
            which = url;
        if (!o->connect_only && (o->agent_email == NULL || o->agent_password == NULL)) {
            fprintf(stderr, "kf_load: the chat load needs --agent-email and --agent-password\n");
            return 2;
        }
    }
    if (which != NULL) {
        fprintf(stderr,
                rc == -2 ? "kf_load: %s is not on loopback (127.0.0.0/8): refused\n"
                         : "kf_load: cannot use %s (http://HOST:PORT/...)\n",
                which);
        return 2;
    }
    if (!o->connect_only && o->rate * o->duration_s > MAX_MESSAGES) {
        fprintf(stderr, "kf_load: --rate × --duration is at most %d messages\n", MAX_MESSAGES);
        return 2;
    }
    if (sources != NULL) {
        if (source_parse(sources, o) != 0) {
            fprintf(stderr, "kf_load: --source-ips takes A-B, two addresses in 127.0.0.0/8\n");
            return 2;
        }
    } else {
        o->source_first = (127u << 24) | 2; /* 127.0.0.2 ... 127.0.0.101 */
        o->source_count = 100;
    }
    return 0;
}

/* Raises the open-file limit to the hard limit and checks that the run fits. */
static int check_files(const options_t *o)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        getrlimit(RLIMIT_NOFILE, &limit);
    }
    rlim_t needed = (rlim_t)o->visitors + o->http_conns + 32;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
        fprintf(stderr, "kf_load: %u connections need %llu open files; the limit is %llu\n",
                o->visitors, (unsigned long long)needed, (unsigned long long)limit.rlim_cur);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options_t *o = &load.opts;
    o->rate = 100;
    o->duration_s = 10;
    o->http_conns = 4;
    o->pipeline = 16;
    o->connect_concurrency = 256;
    o->connect_timeout_s = 120;
    o->poll_interval_ms = 2000;
    int rc = parse_options(argc, argv, o);
    if (rc != 0)
        return rc;
    rc = check_files(o);
    if (rc != 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    load.kefu = !o->pubsub;
    load.rng = (uint32_t)(uv_hrtime() ^ ((uint64_t)getpid() << 16)) | 1u;
    char run_id[9];
    snprintf(run_id, sizeof run_id, "%08x", (unsigned)random_u32());
    memcpy(MARKER + 2, run_id, 8);
    load.loop = uv_default_loop();
    load.subs = kf_xcalloc(o->visitors, sizeof *load.subs);
    load.queue = kf_xcalloc(o->visitors, sizeof *load.queue);
    if (!o->connect_only) {
        load.msg_capacity = (uint64_t)ceil(o->rate * o->duration_s) + 1;
        load.msgs = kf_xcalloc(load.msg_capacity, sizeof *load.msgs);
        load.ack_us = kf_xcalloc(load.msg_capacity, sizeof *load.ack_us);
    }
    api_pool_init(&load.api, load.loop, load.kefu ? &o->server : &o->publish, o->http_conns,
                  o->pipeline);
    uv_timer_init(load.loop, &load.tick);
    uv_timer_init(load.loop, &load.sender);
    uv_timer_init(load.loop, &load.watchdog);
    uv_signal_init(load.loop, &load.sigint);
    uv_signal_init(load.loop, &load.sigterm);
    uv_signal_start(&load.sigint, signal_cb, SIGINT);
    uv_signal_start(&load.sigterm, signal_cb, SIGTERM);
    /* Every phase has its own bound; this one catches anything else. */
    uint64_t deadline_ms = SETUP_TIMEOUT_MS + (uint64_t)o->connect_timeout_s * 1000 +
                           (uint64_t)o->duration_s * 1000 + DRAIN_MS + 30000;
    uv_timer_start(&load.watchdog, watchdog_cb, deadline_ms, 0);
    uv_timer_start(&load.tick, tick_cb, TICK_MS, TICK_MS);

    load.phase = PH_SETUP;
    load.phase_start_ns = now_ns();
    if (load.kefu) {
        load.visitors = kf_xcalloc(o->visitors, sizeof *load.visitors);
        progress("creating %u visitor sessions%s", o->visitors,
                 o->connect_only ? "" : " with a first message each");
        load.need_login = !o->connect_only;
        if (load.need_login)
            login_submit();
        for (uint32_t i = 0; i < o->visitors; i++)
            session_submit(i);
    } else {
        enter_connect();
    }
    uv_run(load.loop, UV_RUN_DEFAULT);
    uv_loop_close(load.loop);
    free(load.subs);
    free(load.queue);
    free(load.visitors);
    free(load.msgs);
    free(load.ack_us);
    free(load.latency_us);
    free(load.targets);
    free(load.subs_per_channel);
    free(load.api.conns);
    return load.exit_code;
}
