/* iframe.c: the forever iframe: a chunked HTML document, padded so that browsers render it at
 * once, with one <script>parent.kefuPush(...)</script> per event and per heartbeat, ended with a
 * reconnect event after iframe_max_bytes (so that a page does not grow without bound), at
 * shutdown, at logout or when the replay fails. */
#include <string.h>

#include "base/err.h"
#include "push/transport.h"

#define PADDING 4096

typedef struct iframe {
    size_t bytes_written; /* for the forced reconnect */
} iframe_t;

/* Appends json as one <script> call into the parent page. '<' and '>' (possible only inside JSON
 * strings) are escaped, so no "</script>" or "<!--" in a message can end the script. */
static void encode_script(kf_buf_t *out, const char *json, size_t len)
{
    kf_buf_append_str(out, "<script>parent.kefuPush(");
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (json[i] != '<' && json[i] != '>')
            continue;
        kf_buf_append(out, json + start, i - start);
        kf_buf_append_str(out, json[i] == '<' ? "\\u003c" : "\\u003e");
        start = i + 1;
    }
    kf_buf_append(out, json + start, len - start);
    kf_buf_append_str(out, ");</script>\n");
}

static void encode_event(kf_buf_t *out, const kf_event_t *event)
{
    encode_script(out, event->json, event->len);
}

/* Non-zero: the client is killed (kf__push_stream_write). */
static int iframe_write(kf_push_client_t *client, const void *data, size_t len)
{
    KF_PUSH_STATE(client, iframe_t)->bytes_written += len;
    return kf__push_stream_write(client, data, len);
}

/* Writes one script call of a constant JSON text. */
static int iframe_write_script(kf_push_client_t *client, const char *json)
{
    kf_buf_t out;
    kf_buf_init(&out);
    encode_script(&out, json, strlen(json));
    int rc = iframe_write(client, out.data, out.len);
    kf_buf_free(&out);
    return rc;
}

static int iframe_start(kf_push_client_t *client, kf_req_t *req, uint64_t hold_ms)
{
    (void)hold_ms;
    kf_resp_header(req, "Cache-Control", "no-store");
    kf_resp_header(req, "X-Frame-Options", "SAMEORIGIN");
    kf_resp_header(req, "Content-Security-Policy",
                   "default-src 'none'; script-src 'unsafe-inline'; frame-ancestors 'self'");
    if (kf__push_stream_start(client, "text/html; charset=utf-8") != 0)
        return KF_EINVAL;
    /* Browsers render a streamed document only after some bytes; the padding gets the first
     * script run at once. */
    kf_buf_t head;
    kf_buf_init(&head);
    kf_buf_append_str(&head,
                      "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>kefu push</title>"
                      "</head><body><!--");
    while (head.len < PADDING)
        kf_buf_append_str(&head,
                          "                                                                ");
    kf_buf_append_str(&head, "-->\n");
    encode_script(&head, KF_PUSH_HEARTBEAT_JSON, sizeof KF_PUSH_HEARTBEAT_JSON - 1);
    int rc = iframe_write(client, head.data, head.len);
    kf_buf_free(&head);
    return rc;
}

static void iframe_end(kf_push_client_t *client, kf_push_end_t why)
{
    (void)why; /* whatever the reason, the page comes back with its cursor */
    if (iframe_write_script(client, "{\"type\":\"reconnect\"}") == 0)
        kf__push_stream_end(client);
}

/* Past its byte limit the document ends: a long history goes over several documents. Checked at
 * every event, not after a batch, so that a replay of 500 long messages stops near the limit too
 * (the event that crossed it is the document's last). */
static int iframe_deliver(kf_push_client_t *client, kf_event_t *event)
{
    size_t len;
    const char *data = kf__push_event_encoding(client, event, encode_event, &len);
    int rc = iframe_write(client, data, len);
    if (rc != 0 ||
        KF_PUSH_STATE(client, iframe_t)->bytes_written < client->config->iframe_max_bytes)
        return rc;
    iframe_end(client, KF_PUSH_END_LIMIT);
    return KF_ELIMIT;
}

static void iframe_heartbeat(kf_push_client_t *client, uint64_t now)
{
    if (now - client->last_write_ms >= client->config->heartbeat_ms)
        iframe_write_script(client, KF_PUSH_HEARTBEAT_JSON);
}

const kf_push_transport_ops_t kf__push_iframe_ops = {
    .follows = true,
    .state_size = sizeof(iframe_t),
    .start = iframe_start,
    .deliver = iframe_deliver,
    .heartbeat = iframe_heartbeat,
    .end = iframe_end,
};
