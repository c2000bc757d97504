/* loop_client.c: a test's TCP and WebSocket clients on the server's own loop (loop_client.h). */
#include "support/loop_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_loop_t *client_loop;
static int server_port;
static uv_timer_t guard;
static bool guard_fired_flag;
static lc_client_t *open_clients; /* opened and not yet closed */

static void closed_free_cb(uv_handle_t *handle);

void lc_init(uv_loop_t *loop, int port)
{
    client_loop = loop;
    server_port = port;
    uv_timer_init(loop, &guard);
}

size_t lc_done(void)
{
    uv_close((uv_handle_t *)&guard, NULL);
    size_t left = 0;
    lc_client_t *next;
    for (lc_client_t *c = open_clients; c != NULL; c = next) {
        next = c->next;
        uv_close((uv_handle_t *)&c->tcp, closed_free_cb);
        left++;
    }
    open_clients = NULL;
    return left;
}

static void guard_cb(uv_timer_t *timer)
{
    (void)timer;
    guard_fired_flag = true;
}

void lc_guard_start(void)
{
    guard_fired_flag = false;
    uv_timer_start(&guard, guard_cb, LC_WAIT_MS, 0);
}

bool lc_guard_fired(void)
{
    return guard_fired_flag;
}

void lc_guard_stop(void)
{
    uv_timer_stop(&guard);
}

uv_loop_t *lc_loop(void)
{
    return client_loop;
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle;
    buf->base = kf_xmalloc(suggested);
    buf->len = suggested;
}

static void read_cb(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    lc_client_t *c = stream->data;
    if (n > 0)
        kf_buf_append(&c->in, buf->base, (size_t)n);
    else if (n < 0)
        c->eof = true;
    free(buf->base);
}

static void connect_cb(uv_connect_t *req, int status)
{
    lc_client_t *c = req->data;
    assert_int_equal(status, 0);
    c->connected = true;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

lc_client_t *lc_open(void)
{
    lc_client_t *c = kf_xcalloc(1, sizeof *c);
    kf_buf_init(&c->in);
    uv_tcp_init(client_loop, &c->tcp);
    c->tcp.data = c;
    c->next = open_clients;
    open_clients = c;
    c->connect.data = c;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", server_port, &addr);
    assert_int_equal(
        uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, connect_cb), 0);
    LC_RUN_UNTIL(c->connected);
    return c;
}

typedef struct write_req {
    uv_write_t req;
    char data[];
} write_req_t;

static void write_cb(uv_write_t *req, int status)
{
    (void)status; /* a write to a connection the server closed may fail: tests look at replies */
    free(req);
}

void lc_write(lc_client_t *c, const void *data, size_t len)
{
    write_req_t *w = kf_xmalloc(sizeof *w + len);
    memcpy(w->data, data, len);
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    assert_int_equal(uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_cb), 0);
}

lc_client_t *lc_get(const char *path, const char *headers)
{
    lc_client_t *c = lc_open();
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n", path, headers);
    assert_true(n > 0 && (size_t)n < sizeof req);
    lc_write(c, req, (size_t)n);
    return c;
}

static void closed_cb(uv_handle_t *handle)
{
    ((lc_client_t *)handle->data)->closed = true;
}

static void closed_free_cb(uv_handle_t *handle)
{
    lc_client_t *c = handle->data;
    kf_buf_free(&c->in);
    free(c);
}

void lc_close(lc_client_t *c)
{
    lc_client_t **link = &open_clients;
    while (*link != c)
        link = &(*link)->next;
    *link = c->next;
    uv_close((uv_handle_t *)&c->tcp, closed_cb);
    LC_RUN_UNTIL(c->closed);
    kf_buf_free(&c->in);
    free(c);
}

size_t lc_count(const lc_client_t *c, const char *text)
{
    size_t n = 0, len = strlen(text);
    const char *at = c->in.data, *end = c->in.data + c->in.len;
    while (at != NULL && at < end) {
        at = memmem(at, (size_t)(end - at), text, len);
        if (at != NULL) {
            n++;
            at += len;
        }
    }
    return n;
}

bool lc_seen(const lc_client_t *c, const char *text)
{
    return lc_find(c, text) >= 0;
}

long lc_find(const lc_client_t *c, const char *text)
{
    const char *at = c->in.len > 0 ? memmem(c->in.data, c->in.len, text, strlen(text)) : NULL;
    return at != NULL ? at - c->in.data : -1;
}

/* ---- WebSocket ---- */

const char lc_ws_upgrade[] = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n";

void lc_ws_send(lc_client_t *c, unsigned first_byte, const char *payload, size_t len, bool masked)
{
    unsigned char frame[2048];
    size_t n = 0;
    assert_true(len <= 2000);
    frame[n++] = (unsigned char)first_byte;
    if (len < 126) {
        frame[n++] = (unsigned char)((masked ? 0x80 : 0) | len);
    } else {
        frame[n++] = (unsigned char)((masked ? 0x80 : 0) | 126);
        frame[n++] = (unsigned char)(len >> 8);
        frame[n++] = (unsigned char)len;
    }
    static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    if (masked) {
        memcpy(frame + n, mask, 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++)
        frame[n++] = (unsigned char)(masked ? payload[i] ^ mask[i % 4] : payload[i]);
    lc_write(c, frame, n);
}

bool lc_ws_next_frame(const lc_client_t *c, size_t *at, unsigned *opcode, const char **payload,
                      size_t *len)
{
    if (*at == 0) {
        long head_end = lc_find(c, "\r\n\r\n");
        if (head_end < 0)
            return false;
        *at = (size_t)head_end + 4;
    }
    const unsigned char *b = (const unsigned char *)c->in.data + *at;
    size_t avail = c->in.len - *at;
    if (avail < 2)
        return false;
    assert_int_equal(b[1] & 0x80, 0); /* server frames are not masked */
    assert_true(b[0] & 0x80);         /* nor fragmented */
    size_t header = 2;
    uint64_t n = b[1] & 0x7f;
    if (n == 127) {
        if (avail < 10)
            return false;
        n = 0;
        for (int i = 2; i < 10; i++)
            n = n << 8 | b[i];
        header = 10;
    } else if (n == 126) {
        if (avail < 4)
            return false;
        n = (uint64_t)b[2] << 8 | b[3];
        header = 4;
    }
    if (avail - header < n)
        return false;
    *opcode = b[0] & 0x0f;
    *payload = (const char *)b + header;
    *len = (size_t)n;
    *at += header + (size_t)n;
    return true;
}

int lc_ws_close_code(const lc_client_t *c)
{
    size_t at = 0, len;
    unsigned opcode;
    const char *payload;
    while (lc_ws_next_frame(c, &at, &opcode, &payload, &len)) {
        if (opcode == 0x8) {
            assert_int_equal(len, 2);
            return (unsigned char)payload[0] << 8 | (unsigned char)payload[1];
        }
    }
    return -1;
}

size_t lc_ws_count(const lc_client_t *c, unsigned wanted)
{
    size_t at = 0, len, n = 0;
    unsigned opcode;
    const char *payload;
    while (lc_ws_next_frame(c, &at, &opcode, &payload, &len))
        n += opcode == wanted;
    return n;
}
