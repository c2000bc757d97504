/* ops_api.c: what operators' tools call: the readiness check a load balancer asks before it sends
 * new clients, and the figures Prometheus scrapes (docs/API.md, "Operations"). /healthz, the
 * liveness check, is pages.c's. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "base/err.h"
#include "base/metrics.h"
#include "chat/handlers.h"
#include "chat/limits.h"
#include "chat/internal.h"

int kf_ops_configure(kf_app_t *app)
{
    static const char *const loopback[] = {"127.0.0.0/8", "::1"};
    const char *const *allow = app->config.metrics_allow;
    size_t count = app->config.metrics_allow_count;
    if (allow == NULL) {
        allow = loopback;
        count = sizeof loopback / sizeof loopback[0];
    }
    app->metrics_allow = kf_xcalloc(count > 0 ? count : 1, sizeof *app->metrics_allow);
    for (size_t i = 0; i < count; i++) {
        if (kf_addr_prefix_parse(allow[i], &app->metrics_allow[i]) != 0)
            return KF_EINVAL;
    }
    app->metrics_allow_count = count;
    return 0;
}

/* Ready for new clients: the store takes writes, the bus reaches the other nodes and no SIGTERM
 * has come. Any reason alone answers 503, the first that applies named (shutting down before the
 * rest: it will not pass). */
void kf_ops_ready(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    bool writable = kf_store_writable(app->store);
    bool bus = kf_bus_ready(app->bus);
    const char *reason = app->shutting_down ? "shutting_down"
                         : !writable        ? "store_not_writable"
                         : !bus             ? "bus_unreachable"
                                            : NULL;
    if (reason == NULL) {
        kf_resp_json(call->req, 200, json_pack("{s:s}", "status", "ready"));
        return;
    }
    kf_resp_header(call->req, "Retry-After", "5");
    kf_resp_json(call->req, 503,
                 json_pack("{s:s,s:s,s:b,s:b,s:b}", "status", "not_ready", "reason", reason,
                           "writable", writable, "bus_connected", bus, "shutting_down",
                           app->shutting_down));
}

/* The abuse limits shared with other nodes: what this node counted in Redis, and the other
 * nodes' uses charged to its buckets (0 and 0 with one node). */
static void write_shared_limit_metrics(kf_buf_t *out, const kf_limits_t *limits)
{
    uint64_t shared, merged;
    kf_limits_stats(limits, &shared, &merged);
    kf_metrics_write_head(out, "kefu_limit_uses_shared_total", "counter",
                          "Uses of the abuse limits this node counted in Redis for the others.");
    kf_metrics_write_sample(out, "kefu_limit_uses_shared_total", NULL, (double)shared);
    kf_metrics_write_head(out, "kefu_limit_uses_merged_total", "counter",
                          "Other nodes' uses of the abuse limits charged to this node's buckets.");
    kf_metrics_write_sample(out, "kefu_limit_uses_merged_total", NULL, (double)merged);
}

void kf_ops_note_figures(kf_app_t *app)
{
    kf_loop_figures_t *f = &app->config.loop_figures[app->config.loop_index];
    kf_bus_stats_t stats; /* (the push counts move in f as clients come and go: push.h) */
    kf_bus_stats(app->bus, &stats);
    atomic_store_explicit(&f->bus_sent, stats.sent, memory_order_relaxed);
    atomic_store_explicit(&f->bus_received, stats.received, memory_order_relaxed);
    atomic_store_explicit(&f->bus_lost, stats.lost, memory_order_relaxed);
    atomic_store_explicit(&f->bus_malformed, stats.malformed, memory_order_relaxed);
    atomic_store_explicit(&f->bus_connects, stats.connects, memory_order_relaxed);
    atomic_store_explicit(&f->bus_holes, stats.holes, memory_order_relaxed);
}

/* The process's figures: this loop's, or every loop's summed (kf_loop_figures_t). */
static void process_figures(kf_app_t *app, kf_bus_stats_t *stats, uint64_t push[])
{
    if (app->config.loop_figures == NULL) {
        kf_bus_stats(app->bus, stats);
        for (int t = 0; t < KF_PUSH_TRANSPORT_COUNT; t++)
            push[t] = kf_push_transport_client_count(app->push, (kf_push_transport_t)t);
        return;
    }
    kf_ops_note_figures(app);
    memset(stats, 0, sizeof *stats);
    memset(push, 0, KF_PUSH_TRANSPORT_COUNT * sizeof push[0]);
    for (size_t i = 0; i < app->config.loop_count; i++) {
        kf_loop_figures_t *f = &app->config.loop_figures[i];
        for (int t = 0; t < KF_PUSH_TRANSPORT_COUNT; t++)
            push[t] += atomic_load_explicit(&f->push[t], memory_order_relaxed);
        stats->sent += atomic_load_explicit(&f->bus_sent, memory_order_relaxed);
        stats->received += atomic_load_explicit(&f->bus_received, memory_order_relaxed);
        stats->lost += atomic_load_explicit(&f->bus_lost, memory_order_relaxed);
        stats->malformed += atomic_load_explicit(&f->bus_malformed, memory_order_relaxed);
        stats->connects += atomic_load_explicit(&f->bus_connects, memory_order_relaxed);
        stats->holes += atomic_load_explicit(&f->bus_holes, memory_order_relaxed);
    }
}

/* The bus's figures: whether it is ready and what crossed it (stats: the process's). */
static void write_bus_metrics(kf_buf_t *out, const kf_bus_t *bus, const kf_bus_stats_t *summed)
{
    kf_bus_stats_t stats = *summed;
    kf_metrics_write_head(out, "kefu_bus_ready", "gauge",
                          "1 while the bus reaches the other nodes (always, in-process).");
    kf_metrics_write_sample(out, "kefu_bus_ready", NULL, kf_bus_ready(bus));
    kf_metrics_write_head(out, "kefu_bus_connects_total", "counter",
                          "Times the bus (Redis) connected and subscribed.");
    kf_metrics_write_sample(out, "kefu_bus_connects_total", NULL, (double)stats.connects);
    kf_metrics_write_head(out, "kefu_bus_order_holes_total", "counter",
                          "Message ids this node waited for in vain (never published: a node "
                          "died between its commit and its publish) and went on without.");
    kf_metrics_write_sample(out, "kefu_bus_order_holes_total", NULL, (double)stats.holes);
    kf_metrics_write_head(out, "kefu_bus_events_total", "counter",
                          "Events this node sent to the bus, received from other nodes, lost "
                          "(published while the bus was away) or dropped as malformed.");
    static const char *const names[] = {"sent", "received", "lost", "malformed"};
    const uint64_t values[] = {stats.sent, stats.received, stats.lost, stats.malformed};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        kf_buf_t labels;
        kf_buf_init(&labels);
        kf_metrics_label(&labels, "outcome", names[i]);
        kf_metrics_write_sample(out, "kefu_bus_events_total", labels.data, (double)values[i]);
        kf_buf_free(&labels);
    }
}

/* Whether the request carries the metrics token as a bearer token (compared in constant time). */
static bool has_token(kf_req_t *req, const char *token)
{
    static const char scheme[] = "Bearer ";
    const kf_str_t *header = kf_http_header_get(req->head, "Authorization");
    size_t prefix = sizeof scheme - 1;
    if (token == NULL || header == NULL || header->len <= prefix ||
        strncasecmp(header->ptr, scheme, prefix) != 0)
        return false;
    return kf_auth_equal(header->ptr + prefix, header->len - prefix, token, strlen(token));
}

bool kf_ops_metrics_check(kf_req_t *req)
{
    kf_app_t *app = req->app;
    const char *peer = kf_req_peer(req);
    for (size_t i = 0; i < app->metrics_allow_count; i++) {
        if (kf_addr_prefix_match(&app->metrics_allow[i], peer))
            return true;
    }
    if (has_token(req, app->config.metrics_token))
        return true;
    kf_call_log(req, "metrics from an address not allowed, without the token");
    kf_resp_error(req, 403, "forbidden",
                  "metrics are for allow-listed addresses or the metrics token (docs/CONFIG.md)");
    return false;
}

/* The push transports' names in the metrics' labels, in kf_push_transport_t's order. */
static const char *const transport_names[KF_PUSH_TRANSPORT_COUNT] = {"poll", "longpoll", "iframe",
                                                                     "sse", "websocket"};

static void write_rejections(kf_buf_t *out)
{
    kf_metrics_write_head(out, "kefu_http_rejected_total", "counter",
                          "Error answers by HTTP status and error code (the JSON body's).");
    for (size_t i = 0; i < kf_metrics.rejection_count; i++) {
        const kf_rejection_t *r = &kf_metrics.rejections[i];
        char status[16];
        snprintf(status, sizeof status, "%d", r->status);
        kf_buf_t labels;
        kf_buf_init(&labels);
        kf_metrics_label(&labels, "status", r->status != 0 ? status : "other");
        kf_metrics_label(&labels, "code", r->code);
        kf_metrics_write_sample(out, "kefu_http_rejected_total", labels.data, (double)r->count);
        kf_buf_free(&labels);
    }
}

void kf_ops_metrics(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    kf_buf_t out;
    kf_buf_init(&out);
    kf_metrics_write_head(&out, "kefu_ready", "gauge",
                          "1 while /readyz answers 200: the store takes writes, the bus reaches "
                          "the other nodes, no SIGTERM came.");
    bool writable = kf_store_writable(app->store);
    kf_metrics_write_sample(&out, "kefu_ready", NULL,
                            writable && kf_bus_ready(app->bus) && !app->shutting_down);
    kf_bus_stats_t stats;
    uint64_t push[KF_PUSH_TRANSPORT_COUNT];
    process_figures(app, &stats, push);
    kf_metrics_write_head(&out, "kefu_loops", "gauge",
                          "Event loops serving (--loops); the figures below are all of theirs.");
    kf_metrics_write_sample(&out, "kefu_loops", NULL, (double)app->config.loop_count);
    kf_metrics_write_head(&out, "kefu_loop", "gauge",
                          "The loop (0 to kefu_loops - 1) that answered this scrape: the one "
                          "its connection landed on.");
    kf_metrics_write_sample(&out, "kefu_loop", NULL, (double)app->config.loop_index);
    write_bus_metrics(&out, app->bus, &stats);
    write_shared_limit_metrics(&out, app->limits);
    kf_metrics_write_head(&out, "kefu_store_writable", "gauge",
                          "1 while the database takes writes (0: a full disk, a read-only file).");
    kf_metrics_write_sample(&out, "kefu_store_writable", NULL, writable);
    kf_metrics_write_head(&out, "kefu_push_connections", "gauge",
                          "Push connections open now (held, streaming or upgraded), by transport.");
    for (int t = 0; t < KF_PUSH_TRANSPORT_COUNT; t++) {
        kf_buf_t labels;
        kf_buf_init(&labels);
        kf_metrics_label(&labels, "transport", transport_names[t]);
        kf_metrics_write_sample(&out, "kefu_push_connections", labels.data, (double)push[t]);
        kf_buf_free(&labels);
    }
    kf_metrics_write_head(&out, "kefu_messages_stored_total", "counter",
                          "Messages committed to the store (rate() of it: messages per second).");
    kf_metrics_write_sample(
        &out, "kefu_messages_stored_total", NULL,
        (double)atomic_load_explicit(&kf_metrics.messages_stored, memory_order_relaxed));
    kf_metrics_write_histogram(&out, "kefu_push_delivery_seconds",
                               "From a message's creation to its delivery to a live push "
                               "connection (one observation per connection).",
                               &kf_metrics.push_delivery);
    kf_metrics_write_histogram(&out, "kefu_store_write_seconds",
                               "One batch of store writes, BEGIN to COMMIT (its fsync included).",
                               &kf_metrics.store_write);
    uint64_t wal_bytes = 0;
    if (kf_store_sqlite_wal_bytes(app->store, &wal_bytes) == 0) {
        kf_metrics_write_head(&out, "kefu_sqlite_wal_bytes", "gauge",
                              "The SQLite write-ahead log's file size.");
        kf_metrics_write_sample(&out, "kefu_sqlite_wal_bytes", NULL, (double)wal_bytes);
    }
    kf_metrics_write_head(&out, "kefu_sqlite_checkpoints_total", "counter",
                          "Checkpoints that copied the write-ahead log back into the database.");
    kf_metrics_write_sample(
        &out, "kefu_sqlite_checkpoints_total", NULL,
        (double)atomic_load_explicit(&kf_metrics.checkpoints, memory_order_relaxed));
    write_rejections(&out);
    kf_resp_header(call->req, "Cache-Control", "no-store");
    kf_resp_send(call->req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    kf_buf_free(&out);
}
