/* sse.c: Server-Sent Events: a chunked text/event-stream with a retry: line, then id:/event:/data:
 * per event (id: for message events, so that the browser resumes with Last-Event-ID), comment and
 * event heartbeats; the stream simply ends at shutdown, logout or a failed replay, and the
 * browser reconnects after retry. */
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "push/transport.h"

/* The event's type, from the JSON the chat layer builds with "type" first; "message" otherwise. */
static void event_type(const kf_event_t *event, char *out, size_t size)
{
    static const char prefix[] = "{\"type\":\"";
    snprintf(out, size, "message");
    if (event->len <= sizeof prefix - 1 || memcmp(event->json, prefix, sizeof prefix - 1) != 0)
        return;
    const char *start = event->json + sizeof prefix - 1;
    const char *end = memchr(start, '"', event->len - (sizeof prefix - 1));
    if (end == NULL || (size_t)(end - start) >= size)
        return;
    for (const char *p = start; p < end; p++) {
        if (*p < 'a' || *p > 'z')
            return; /* only plain names go on an event: line */
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
}

/* One SSE event. The JSON is compact (no raw newlines), so one data: line carries it. */
static void encode_event(kf_buf_t *out, const kf_event_t *event)
{
    char type[32];
    event_type(event, type, sizeof type);
    if (event->id != 0)
        kf_buf_printf(out, "id: %llu\n", (unsigned long long)event->id);
    kf_buf_printf(out, "event: %s\ndata: ", type);
    kf_buf_append(out, event->json, event->len);
    kf_buf_append_str(out, "\n\n");
}

static int sse_start(kf_push_client_t *client, kf_req_t *req, uint64_t hold_ms)
{
    (void)hold_ms;
    /* A browser reconnecting on its own sends the last id it saw; that beats the URL's cursor,
     * which is as old as the EventSource. */
    const kf_str_t *last_id = kf_http_header_get(req->head, "Last-Event-ID");
    uint64_t from_header;
    if (last_id != NULL && kf_parse_u64(*last_id, &from_header) == 0 && from_header < (1ULL << 53))
        client->cursor = from_header;
    kf_resp_header(req, "Cache-Control", "no-cache, no-store");
    kf_resp_header(req, "X-Accel-Buffering", "no");
    if (kf__push_stream_start(client, "text/event-stream; charset=utf-8") != 0)
        return KF_EINVAL;
    /* Bytes at once, so that proxies and the browser see a live stream before the first event. */
    char hello[128];
    int n = snprintf(hello, sizeof hello,
                     "retry: %llu\n: connected\n\nevent: heartbeat\ndata: " KF_PUSH_HEARTBEAT_JSON
                     "\n\n",
                     (unsigned long long)client->config->sse_retry_ms);
    return kf__push_stream_write(client, hello, (size_t)n);
}

static int sse_deliver(kf_push_client_t *client, kf_event_t *event)
{
    size_t len;
    const char *data = kf__push_event_encoding(client, event, encode_event, &len);
    return kf__push_stream_write(client, data, len);
}

/* A comment keeps proxies from timing out; the event tells the page the stream is alive. */
static void sse_heartbeat(kf_push_client_t *client, uint64_t now)
{
    static const char beat[] =
        ": heartbeat\n\nevent: heartbeat\ndata: " KF_PUSH_HEARTBEAT_JSON "\n\n";
    if (now - client->last_write_ms >= client->config->heartbeat_ms)
        kf__push_stream_write(client, beat, sizeof beat - 1);
}

static void sse_end(kf_push_client_t *client, kf_push_end_t why)
{
    (void)why; /* the browser reconnects after retry: with Last-Event-ID */
    kf__push_stream_end(client);
}

const kf_push_transport_ops_t kf__push_sse_ops = {
    .follows = true,
    .state_size = 0,
    .start = sse_start,
    .deliver = sse_deliver,
    .heartbeat = sse_heartbeat,
    .end = sse_end,
};
