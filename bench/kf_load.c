/* kf_load.c: a single-threaded libuv load generator that opens N push connections to kefu (or,
 * for comparison, to Nchan), sends messages at a fixed rate over HTTP and measures their delivery
 * (latency, loss, duplicates), the connection set-up and the server's memory and CPU. The HTTP
 * client, the push connections and the figures are bench/load/'s, shared with kf_soak. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "load/http.h"
#include "load/kefu.h"
#include "load/proc.h"
#include "load/push.h"
#include "load/stats.h"
#include "load/tool.h"

/* Bounds: one process never holds more connections than this, nor runs longer. */
#define MAX_CONNECTIONS 19000
#define MAX_DURATION_S 600
#define MAX_RATE 50000
#define MAX_MESSAGES 10000000 /* rate × duration */
#define MAX_HTTP_CONNS 512
#define DRAIN_MS 5000           /* after the last send: how long to wait for deliveries */
#define SETUP_TIMEOUT_MS 300000 /* sessions, first messages and login */
#define TICK_MS 20              /* phase checks and short-poll scheduling */

/* ---- options ---- */

typedef struct options {
    load_target_t server;    /* --url (kefu) */
    load_target_t push_at;   /* --push-url (kefu): another node for the push connections */
    bool other_push_node;    /* push_at was given: sends and push go to different nodes */
    load_target_t publish;   /* --publish-url (pubsub) */
    load_target_t subscribe; /* --subscribe-url (pubsub) */
    load_transport_t transport;
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
    const char *latencies_path; /* --latencies: every delivery latency written here */
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
          "  --push-url URL            open the push connections to this kefu node instead\n"
          "                            (another node of the same cluster: --url is where\n"
          "                            sessions are made and messages posted, so the latency\n"
          "                            is node to node)\n"
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
          "  --latencies FILE          write every delivery latency (microseconds, one a line)\n"
          "                            to FILE and every send's time to its 2xx to FILE.ack,\n"
          "                            for percentiles over several kf_load processes\n"
          "  -h, --help                this text\n"
          "\n"
          "Prints a table and, last, one JSON line with the same figures.\n",
          out);
}

/* ---- the run's state ---- */

typedef enum { PH_SETUP, PH_CONNECT, PH_RUN, PH_DRAIN, PH_CLOSE } phase_t;

/* One message sent. */
typedef struct msg_rec {
    uint32_t channel;  /* the visitor (kefu) or channel (pubsub) it went to */
    uint32_t sent_us;  /* send time, microseconds after the run started */
    uint16_t received; /* times it arrived */
    uint8_t state;     /* MSG_* */
} msg_rec_t;

enum { MSG_UNSENT = 0, MSG_SENT, MSG_ACKED, MSG_FAILED };

typedef struct load {
    options_t opts;
    uv_loop_t *loop;
    phase_t phase;
    bool kefu; /* kefu's API, not pubsub */
    int exit_code;
    bool interrupted;
    const char *abort_reason;
    load_tool_t tool;  /* the tick (phase checks, short polls), the deadline, signals */
    uv_timer_t sender; /* 1 ms: sends what the rate says is due */
    load_pool_t api;   /* kefu's API, or the publish target */
    uint64_t phase_start_ns;
    /* kefu set-up */
    load_kefu_t setup;        /* visitors and the agent's login */
    load_visitor_t *visitors; /* setup's */
    load_agent_t agent;       /* who replies */
    /* push connections: visitors (kefu) or subscribers (pubsub); their figures are push's */
    load_push_t push;
    uint64_t connect_start_ns;
    /* messages */
    uint32_t *targets; /* channels (or visitors) that may be sent to */
    uint32_t target_count;
    uint32_t *subs_per_channel; /* established subscribers per channel at the start of the run */
    msg_rec_t *msgs;
    uint64_t msg_capacity;
    uint64_t planned, sent, acked, send_failed, received, unknown, misdelivered;
    uint64_t expected_acked;  /* deliveries owed for acked messages */
    uint64_t good_receptions; /* deliveries up to what each message owes */
    load_samples_t latency;   /* one per good reception */
    load_samples_t ack;       /* send to 2xx, per acked message */
    uint64_t run_start_ns, run_end_ns, drain_end_ns;
    uint32_t rng;
    /* figures */
    load_proc_stat_t server_before, server_connected, server_end;
    load_proc_stat_t server_connect_start, server_run_start, server_run_end;
    load_threads_t server_threads_start, server_threads_end; /* the run's, by thread name */
    load_proc_stat_t self_before, self_run_start, self_run_end, self_connected;
    double connect_s;
} load_t;

static load_t load;

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

static uint32_t random_u32(void)
{
    return load_random(&load.rng);
}

static void finish(void);
static void enter_connect(void);
static void enter_run(void);

/* ---- received messages ---- */

static uint32_t expected_of(uint32_t channel)
{
    return load.kefu ? 1 : load.subs_per_channel[channel];
}

/* A subscriber saw message seq, sent at send_ns. */
static void message_received(load_sub_t *s, uint64_t seq, uint64_t send_ns)
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
    if (send_ns <= now)
        load_samples_add(&load.latency, (now - send_ns) / 1000);
}

/* ---- push connections ---- */

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
        kf_buf_printf(out, "%.8s_%u", load.push.marker + 2, (unsigned)channel);
        p = hit + sizeof key - 1;
    }
}

/* The request target: kefu's push endpoint with the cursor, or the subscription template. */
static void push_target(load_sub_t *s, kf_buf_t *out)
{
    if (load.kefu)
        load_push_kefu_target(s, out);
    else
        expand_template(out, load.opts.subscribe.path, s->channel);
}

static void push_headers(load_sub_t *s, kf_buf_t *out)
{
    if (load.kefu)
        kf_buf_printf(out, "Authorization: Bearer %s\r\n", load.visitors[s->index].token);
}

static const load_push_ops_t push_ops = {
    .target = push_target,
    .headers = push_headers,
    .message = message_received,
};

/* ---- kefu set-up: sessions, first messages, login ---- */

static void setup_check(void)
{
    const load_kefu_t *setup = &load.setup;
    if (setup->agents_failed > 0) {
        load_progress("agent login failed (HTTP %d): check --agent-email and --agent-password",
                      setup->last_bad_status);
        load.abort_reason = "agent login failed";
        load.exit_code = 1;
        finish();
        return;
    }
    if (!load_kefu_done(setup))
        return;
    double seconds = (double)(now_ns() - load.phase_start_ns) / 1e9;
    load_progress("set-up: %u visitors ready, %u failed, in %.1f s", setup->visitors_ready,
                  setup->visitors_failed, seconds);
    if (setup->visitors_ready == 0) {
        load.abort_reason = "no visitor could be set up";
        load.exit_code = 1;
        finish();
        return;
    }
    enter_connect();
}

/* ---- sending ---- */

static void message_done_cb(void *ctx, uint64_t tag, int status, const char *head, size_t head_len,
                            const char *body, size_t body_len)
{
    (void)ctx;
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
        load_samples_add(&load.ack, now_us - m->sent_us);
    } else {
        m->state = MSG_FAILED;
        load.send_failed++;
        if (status != 0)
            load.setup.last_bad_status = status;
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
    snprintf(marker, sizeof marker, "%s%llu:%llu", load.push.marker, (unsigned long long)seq,
             (unsigned long long)t);
    kf_buf_t req;
    kf_buf_init(&req);
    if (load.kefu) {
        char path[64], extra[512], body[96];
        snprintf(path, sizeof path, "/api/conversations/%lld/messages",
                 (long long)load.visitors[target].conversation_id);
        snprintf(extra, sizeof extra, "Cookie: %s\r\nX-CSRF-Token: %s\r\n", load.agent.cookie,
                 load.agent.csrf);
        snprintf(body, sizeof body, "{\"body\":\"%s\"}", marker);
        load_build_post(&req, &load.opts.server, path, extra, "application/json", body);
    } else {
        kf_buf_t path;
        kf_buf_init(&path);
        expand_template(&path, load.opts.publish.path, target);
        load_build_post(&req, &load.opts.publish, path.data, "", "text/plain", marker);
        kf_buf_free(&path);
    }
    size_t len;
    char *text = kf_buf_steal(&req, &len);
    load_pool_submit(&load.api, text, len, message_done_cb, NULL, seq);
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
    load.setup.retrying = false;
    load.phase_start_ns = now_ns();
    load.server_before = load_proc_sample(o->server_pid);
    load.server_connect_start = load.server_before;
    load.self_before = load_self_sample();
    load_progress("connecting %u %s subscribers (%u at a time)", o->visitors,
                  load_transport_names[o->transport], o->connect_concurrency);
    load.connect_start_ns = now_ns();
    for (uint32_t i = 0; i < o->visitors; i++) {
        load_sub_t *s = &load.push.subs[i];
        s->index = i;
        s->channel = load.kefu ? i : i % o->channels;
        s->transport = (uint8_t)o->transport;
        if (load.kefu) {
            if (load.visitors[i].failed) {
                load.push.failed++;
                continue;
            }
            s->cursor = load.visitors[i].first_message_id;
        }
        load_push_queue(&load.push, s);
    }
}

static void connect_check(void)
{
    const options_t *o = &load.opts;
    uint64_t now = now_ns();
    bool all = load.push.established_total + load.push.failed >= o->visitors;
    bool timed_out = now - load.phase_start_ns >= (uint64_t)o->connect_timeout_s * 1000000000ULL;
    if (!all && !timed_out)
        return;
    load.connect_s = load.push.established_total > 0
                         ? (double)(load.push.connect_last_ns - load.connect_start_ns) / 1e9
                         : 0;
    load_progress("%u of %u established in %.2f s%s", load.push.established_total, o->visitors,
                  load.connect_s, timed_out && !all ? " (timed out)" : "");
    enter_run();
}

static void enter_run(void)
{
    const options_t *o = &load.opts;
    load.server_connected = load_proc_sample(o->server_pid);
    load.self_connected = load_self_sample();
    /* Whom to send to: kefu visitors with a conversation and a connection; pubsub channels with
     * subscribers. */
    load.targets = kf_xcalloc(o->visitors, sizeof *load.targets);
    if (!load.kefu) {
        load.subs_per_channel = kf_xcalloc(o->channels, sizeof *load.subs_per_channel);
        for (uint32_t i = 0; i < o->visitors; i++) {
            if (load.push.subs[i].established)
                load.subs_per_channel[load.push.subs[i].channel]++;
        }
        for (uint32_t c = 0; c < o->channels; c++) {
            if (load.subs_per_channel[c] > 0)
                load.targets[load.target_count++] = c;
        }
    } else {
        for (uint32_t i = 0; i < o->visitors; i++) {
            if (load.push.subs[i].established && load.visitors[i].conversation_id > 0)
                load.targets[load.target_count++] = i;
        }
    }
    load.phase = PH_RUN;
    load.phase_start_ns = now_ns();
    load.run_start_ns = load.phase_start_ns;
    load.run_end_ns = load.run_start_ns + (uint64_t)o->duration_s * 1000000000ULL;
    load.server_run_start = load_proc_sample(o->server_pid);
    load.server_threads_start = load_proc_threads(o->server_pid);
    load.self_run_start = load_self_sample();
    if (o->connect_only) {
        load_progress("holding %u connections for %u s", load.push.live, o->duration_s);
        return;
    }
    if (load.target_count == 0) {
        load.abort_reason = "no subscriber to send to";
        load.exit_code = 1;
        finish();
        return;
    }
    load_progress("sending %.0f msg/s for %u s to %u %s", o->rate, o->duration_s, load.target_count,
                  load.kefu ? "conversations" : "channels");
    uv_timer_start(&load.sender, sender_cb, 1, 1);
}

/* Deliveries are complete when every acked message arrived as often as it should. */
static bool delivered_all(void)
{
    return load.api.inflight == 0 && load.api.queued == 0 &&
           load.good_receptions >= load.expected_acked;
}

static void tick(void)
{
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
        load_push_pump(&load.push);
        connect_check();
        break;
    case PH_RUN:
        load_push_pump(&load.push);
        if (now >= load.run_end_ns) {
            if (!load.opts.connect_only)
                send_due(load.run_end_ns); /* what the last interval owes */
            uv_timer_stop(&load.sender);
            load.server_run_end = load_proc_sample(load.opts.server_pid);
            load.server_threads_end = load_proc_threads(load.opts.server_pid);
            load.self_run_end = load_self_sample();
            load.phase = PH_DRAIN;
            load.push.retry = false;
            load.drain_end_ns = now + (uint64_t)DRAIN_MS * 1000000;
            if (load.opts.connect_only)
                load.drain_end_ns = now;
        }
        break;
    case PH_DRAIN:
        load_push_pump(&load.push);
        if (now >= load.drain_end_ns || delivered_all()) {
            finish();
            return;
        }
        break;
    default: return;
    }
    if (load.opts.transport == LOAD_POLL)
        load_push_tick(&load.push);
}

/* The deadline passed, or a signal came. */
static void stopped(const char *why, int exit_code)
{
    if (load.phase >= PH_CLOSE)
        return;
    load.interrupted = exit_code == 130;
    load.abort_reason = why;
    load.exit_code = exit_code;
    if (load.interrupted && load.phase == PH_RUN) {
        load.server_run_end = load_proc_sample(load.opts.server_pid);
        load.server_threads_end = load_proc_threads(load.opts.server_pid);
        load.self_run_end = load_self_sample();
    }
    finish();
}

/* ---- the report ---- */

/* The server's CPU seconds over the run by thread name, user and system:
 * ,"server_threads":{"kefu-writer":[user,sys],...} (omitted when not read). */
static void threads_json(kf_buf_t *j, const load_threads_t *start, const load_threads_t *end)
{
    if (!start->ok || !end->ok)
        return;
    kf_buf_printf(j, ",\"server_threads\":{");
    for (size_t i = 0; i < end->count; i++) {
        const load_thread_cpu_t *e = &end->v[i];
        double user = e->user_s, sys = e->sys_s;
        for (size_t k = 0; k < start->count; k++) {
            if (strcmp(start->v[k].name, e->name) == 0) {
                user -= start->v[k].user_s;
                sys -= start->v[k].sys_s;
            }
        }
        char name[sizeof e->name]; /* any name a thread set, safe inside JSON quotes */
        size_t n = 0;
        for (; e->name[n] != '\0' && n + 1 < sizeof name; n++)
            name[n] = isalnum((unsigned char)e->name[n]) || strchr("-_. ", e->name[n]) != NULL
                          ? e->name[n]
                          : '_';
        name[n] = '\0';
        kf_buf_printf(j, "%s\"%s\":[%.2f,%.2f]", i > 0 ? "," : "", name, user, sys);
    }
    kf_buf_printf(j, "}");
}

/* Writes samples, one a line, so that a script can pool several processes' runs (a percentile
 * of percentiles is not one). Returns 0 or -1 (said on stderr). */
static int write_samples(const char *path, const load_samples_t *samples)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        load_progress("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < samples->len; i++)
        fprintf(f, "%u\n", (unsigned)samples->us[i]);
    if (fclose(f) != 0) {
        load_progress("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* --latencies: the deliveries to path, the acknowledgements to path.ack. */
static int write_latencies(const char *path)
{
    char ack_path[PATH_MAX];
    if (snprintf(ack_path, sizeof ack_path, "%s.ack", path) >= (int)sizeof ack_path) {
        load_progress("--latencies: the name is too long");
        return -1;
    }
    int rc = write_samples(path, &load.latency);
    return write_samples(ack_path, &load.ack) != 0 ? -1 : rc;
}

static void report(void)
{
    const options_t *o = &load.opts;
    bool have_server = load.server_before.ok && load.server_connected.ok;
    load_proc_stat_t run_start = load.server_run_start, run_end = load.server_run_end;
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
    load_samples_sort(&load.latency);
    load_samples_sort(&load.ack);
    if (o->latencies_path != NULL && write_latencies(o->latencies_path) != 0 && load.exit_code == 0)
        load.exit_code = 1;
    double p50 = load_percentile_ms(&load.latency, 0.50);
    double p90 = load_percentile_ms(&load.latency, 0.90);
    double p99 = load_percentile_ms(&load.latency, 0.99);
    double p999 = load_percentile_ms(&load.latency, 0.999);
    double pmax = load_percentile_ms(&load.latency, 1.0);
    double ack50 = load_percentile_ms(&load.ack, 0.50);
    double ack99 = load_percentile_ms(&load.ack, 0.99);
    double ackmax = load_percentile_ms(&load.ack, 1.0);
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
    double per_conn = have_server && load.push.established_total > 0
                          ? (double)(load.server_connected.rss_kb - load.server_before.rss_kb) *
                                1024.0 / load.push.established_total
                          : NAN;
    double self_per_conn = load.push.established_total > 0 && load.self_connected.ok
                               ? (double)(load.self_connected.rss_kb - load.self_before.rss_kb) *
                                     1024.0 / load.push.established_total
                               : NAN;
    const char *what = load.kefu ? "kefu" : "pubsub";
    char a[32], b[32], c[32], d[32], e[32];

    printf("kf_load%s%s: %s over %s, %u %s, %s\n", o->label != NULL ? " " : "",
           o->label != NULL ? o->label : "", what, load_transport_names[o->transport], o->visitors,
           load.kefu ? "visitors" : "subscribers", o->connect_only ? "connect-only" : "chat load");
    if (load.abort_reason != NULL)
        printf("  STOPPED EARLY: %s%s%s\n", load.abort_reason,
               load.api.last_error != NULL ? "; the server's HTTP connections: " : "",
               load.api.last_error != NULL ? load.api.last_error : "");
    printf("  %-18s %u of %u established in %s s (%s/s); %u failed, %llu errors, "
           "%llu dropped, %llu reconnects; %llu push requests\n",
           "connections", load.push.established_total, o->visitors,
           load_fmt(a, sizeof a, load.connect_s, 2),
           load_fmt(b, sizeof b,
                    load.connect_s > 0 ? load.push.established_total / load.connect_s : NAN, 0),
           load.push.failed, (unsigned long long)load.push.connect_errors,
           (unsigned long long)load.push.dropped, (unsigned long long)load.push.reconnects,
           (unsigned long long)load.push.push_requests);
    if (!o->connect_only) {
        printf("  %-18s target %.0f/s for %u s: planned %llu, sent %llu, acked %llu, failed %llu\n",
               "messages", o->rate, o->duration_s, (unsigned long long)load.planned,
               (unsigned long long)load.sent, (unsigned long long)load.acked,
               (unsigned long long)load.send_failed);
        printf("  %-18s %s msg/s acked\n", "achieved rate",
               load_fmt(a, sizeof a, rate_achieved, 1));
        printf("  %-18s received %llu; lost %llu; duplicates %llu; misdelivered %llu; "
               "unknown %llu\n",
               "delivery", (unsigned long long)load.received, (unsigned long long)lost,
               (unsigned long long)duplicates, (unsigned long long)load.misdelivered,
               (unsigned long long)load.unknown);
        printf("  %-18s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", "latency ms",
               load_fmt(a, sizeof a, p50, 2), load_fmt(b, sizeof b, p90, 2),
               load_fmt(c, sizeof c, p99, 2), load_fmt(d, sizeof d, p999, 2),
               load_fmt(e, sizeof e, pmax, 2));
        printf("  %-18s p50 %s  p99 %s  max %s\n", "send->2xx ms", load_fmt(a, sizeof a, ack50, 2),
               load_fmt(b, sizeof b, ack99, 2), load_fmt(c, sizeof c, ackmax, 2));
    }
    if (have_server) {
        printf(
            "  %-18s before %s MiB, connected %s MiB (%s bytes/connection), end %s MiB\n",
            "server RSS", load_fmt(a, sizeof a, load.server_before.rss_kb / 1024.0, 1),
            load_fmt(b, sizeof b, load.server_connected.rss_kb / 1024.0, 1),
            load_fmt(c, sizeof c, per_conn, 0),
            load_fmt(d, sizeof d, load.server_end.ok ? load.server_end.rss_kb / 1024.0 : NAN, 1));
        printf("  %-18s connecting %s s (%s us/connection); %s %s %% of one core\n", "server CPU",
               load_fmt(a, sizeof a, connect_cpu, 2),
               load_fmt(b, sizeof b,
                        load.push.established_total > 0
                            ? connect_cpu * 1e6 / load.push.established_total
                            : NAN,
                        0),
               o->connect_only ? "idle" : "under load", load_fmt(c, sizeof c, server_cpu, 1));
    } else {
        printf("  %-18s n/a (give --server-pid)\n", "server RSS, CPU");
    }
    printf("  %-18s RSS %s MiB (%s bytes/connection); CPU %s %% of one core\n", "kf_load",
           load_fmt(a, sizeof a, load.self_connected.ok ? load.self_connected.rss_kb / 1024.0 : NAN,
                    1),
           load_fmt(b, sizeof b, self_per_conn, 0), load_fmt(c, sizeof c, self_cpu, 1));

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
                  what, load_transport_names[o->transport], o->connect_only ? "connect" : "chat",
                  load.abort_reason == NULL ? "true" : "false");
    kf_buf_printf(&j, ",\"connections\":%u,\"established\":%u,\"connect_failed\":%u", o->visitors,
                  load.push.established_total, load.push.failed);
    kf_buf_printf(&j, ",\"connect_errors\":%llu,\"dropped\":%llu,\"reconnects\":%llu",
                  (unsigned long long)load.push.connect_errors,
                  (unsigned long long)load.push.dropped, (unsigned long long)load.push.reconnects);
    kf_buf_printf(&j, ",\"push_requests\":%llu", (unsigned long long)load.push.push_requests);
    load_json_num(&j, "connect_s", load.connect_s, 3);
    load_json_num(&j, "connect_per_s",
                  load.connect_s > 0 ? load.push.established_total / load.connect_s : NAN, 0);
    kf_buf_printf(&j, ",\"duration_s\":%u", o->duration_s);
    load_json_num(&j, "rate_target", o->connect_only ? NAN : o->rate, 1);
    kf_buf_printf(&j, ",\"planned\":%llu,\"sent\":%llu,\"acked\":%llu,\"send_failed\":%llu",
                  (unsigned long long)load.planned, (unsigned long long)load.sent,
                  (unsigned long long)load.acked, (unsigned long long)load.send_failed);
    load_json_num(&j, "rate_achieved", rate_achieved, 1);
    kf_buf_printf(&j, ",\"received\":%llu,\"lost\":%llu,\"duplicates\":%llu,\"misdelivered\":%llu",
                  (unsigned long long)load.received, (unsigned long long)lost,
                  (unsigned long long)duplicates, (unsigned long long)load.misdelivered);
    kf_buf_printf(&j, ",\"unacked_delivered\":%llu,\"unknown\":%llu",
                  (unsigned long long)unacked_delivered, (unsigned long long)load.unknown);
    load_json_num(&j, "lat_p50_ms", p50, 3);
    load_json_num(&j, "lat_p90_ms", p90, 3);
    load_json_num(&j, "lat_p99_ms", p99, 3);
    load_json_num(&j, "lat_p999_ms", p999, 3);
    load_json_num(&j, "lat_max_ms", pmax, 3);
    load_json_num(&j, "ack_p50_ms", ack50, 3);
    load_json_num(&j, "ack_p99_ms", ack99, 3);
    load_json_num(&j, "ack_max_ms", ackmax, 3);
    load_json_num(&j, "server_rss_before_kb", have_server ? (double)load.server_before.rss_kb : NAN,
                  0);
    load_json_num(&j, "server_rss_connected_kb",
                  have_server ? (double)load.server_connected.rss_kb : NAN, 0);
    load_json_num(&j, "server_rss_end_kb",
                  load.server_end.ok ? (double)load.server_end.rss_kb : NAN, 0);
    load_json_num(&j, "server_bytes_per_conn", per_conn, 0);
    load_json_num(&j, "server_connect_cpu_s", connect_cpu, 2);
    load_json_num(&j, "server_cpu_pct", server_cpu, 1);
    load_json_num(&j, "self_rss_kb",
                  load.self_connected.ok ? (double)load.self_connected.rss_kb : NAN, 0);
    load_json_num(&j, "self_bytes_per_conn", self_per_conn, 0);
    load_json_num(&j, "self_cpu_pct", self_cpu, 1);
    threads_json(&j, &load.server_threads_start, &load.server_threads_end);
    kf_buf_printf(&j, ",\"last_bad_status\":%d}",
                  load.push.last_bad_status != 0 ? load.push.last_bad_status
                                                 : load.setup.last_bad_status);
    printf("%s\n", j.data);
    kf_buf_free(&j);
    fflush(stdout);
}

/* ---- the end ---- */

static void closed_cb(uv_handle_t *handle)
{
    (void)handle;
}

/* Reports and closes everything; the loop then ends by itself. */
static void finish(void)
{
    if (load.phase >= PH_CLOSE)
        return;
    uv_timer_stop(&load.sender);
    load.server_end = load_proc_sample(load.opts.server_pid);
    if (load.self_run_end.cpu_s == 0 && load.self_run_start.ok && load.phase == PH_RUN)
        load.self_run_end = load_self_sample();
    report();
    load.phase = PH_CLOSE;
    load.setup.retrying = false;
    load_push_close(&load.push);
    load_pool_stop(&load.api);
    uv_close((uv_handle_t *)&load.sender, closed_cb);
    load_tool_close(&load.tool);
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
        O_LABEL,
        O_PUSH_URL,
        O_LATENCIES
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
        {"push-url", required_argument, NULL, O_PUSH_URL},
        {"latencies", required_argument, NULL, O_LATENCIES},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *push_url = NULL, *publish_url = NULL, *subscribe_url = NULL,
               *sources = NULL;
    bool have_transport = false, have_visitors = false;
    unsigned value;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_URL: url = optarg; break;
        case O_TRANSPORT:
            ok = false;
            if (load_transport_parse(optarg) >= 0) {
                o->transport = (load_transport_t)load_transport_parse(optarg);
                ok = have_transport = true;
            }
            break;
        case O_VISITORS:
            ok = load_parse_unsigned(optarg, UINT_MAX, &o->visitors) && o->visitors > 0;
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
            ok = load_parse_unsigned(optarg, UINT_MAX, &o->duration_s) && o->duration_s > 0;
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
            ok = load_parse_unsigned(optarg, MAX_CONNECTIONS, &o->channels) && o->channels > 0;
            break;
        case O_PID:
            ok = load_parse_unsigned(optarg, INT_MAX, &value) && value > 0;
            o->server_pid = (pid_t)value;
            break;
        case O_HTTP_CONNS:
            ok = load_parse_unsigned(optarg, MAX_HTTP_CONNS, &o->http_conns) && o->http_conns > 0;
            break;
        case O_PIPELINE:
            ok = load_parse_unsigned(optarg, 1024, &o->pipeline) && o->pipeline > 0;
            break;
        case O_CONCURRENCY:
            ok = load_parse_unsigned(optarg, MAX_CONNECTIONS, &o->connect_concurrency) &&
                 o->connect_concurrency > 0;
            break;
        case O_CONNECT_TIMEOUT:
            ok = load_parse_unsigned(optarg, MAX_DURATION_S, &o->connect_timeout_s) &&
                 o->connect_timeout_s > 0;
            break;
        case O_POLL_INTERVAL:
            ok =
                load_parse_unsigned(optarg, 60000, &o->poll_interval_ms) && o->poll_interval_ms > 0;
            break;
        case O_LABEL: o->label = optarg; break;
        case O_PUSH_URL: push_url = optarg; break;
        case O_LATENCIES: o->latencies_path = optarg; break;
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
    if (o->pubsub) {
        if (publish_url == NULL || subscribe_url == NULL) {
            fprintf(stderr, "kf_load: --pubsub needs --publish-url and --subscribe-url\n");
            return 2;
        }
        if (o->transport != LOAD_WS && o->transport != LOAD_SSE) {
            fprintf(stderr, "kf_load: --pubsub subscribes over ws or sse\n");
            return 2;
        }
        if (load_url_option(publish_url, &o->publish) != 0 ||
            load_url_option(subscribe_url, &o->subscribe) != 0)
            return 2;
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
        if (load_url_option(url, &o->server) != 0)
            return 2;
        if (push_url != NULL) {
            if (load_url_option(push_url, &o->push_at) != 0)
                return 2;
            o->other_push_node = true;
        }
        if (!o->connect_only && (o->agent_email == NULL || o->agent_password == NULL)) {
            fprintf(stderr, "kf_load: the chat load needs --agent-email and --agent-password\n");
            return 2;
        }
    }
    if (!o->connect_only && o->rate * o->duration_s > MAX_MESSAGES) {
        fprintf(stderr, "kf_load: --rate × --duration is at most %d messages\n", MAX_MESSAGES);
        return 2;
    }
    if (push_url != NULL && o->pubsub) {
        fprintf(stderr, "kf_load: --push-url is for kefu mode (pubsub has --subscribe-url)\n");
        return 2;
    }
    if (sources != NULL) {
        if (load_source_parse(sources, &o->source_first, &o->source_count) != 0) {
            fprintf(stderr, "kf_load: --source-ips takes A-B, two addresses in 127.0.0.0/8\n");
            return 2;
        }
    } else {
        o->source_first = (127u << 24) | 2; /* 127.0.0.2 ... 127.0.0.101 */
        o->source_count = 100;
    }
    return 0;
}

int main(int argc, char **argv)
{
    load_tool_name("kf_load");
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
    char what[64];
    snprintf(what, sizeof what, "%u connections", o->visitors);
    rc = load_check_files((rlim_t)o->visitors + o->http_conns + 32, what);
    if (rc != 0)
        return rc;
    load.kefu = !o->pubsub;
    load.rng = load_random_seed();
    char run_id[9];
    snprintf(run_id, sizeof run_id, "%08x", (unsigned)random_u32());
    load.loop = uv_default_loop();
    const load_target_t *push_to = !load.kefu           ? &o->subscribe
                                   : o->other_push_node ? &o->push_at
                                                        : &o->server;
    load_push_init(&load.push, load.loop, push_to, &push_ops, o->visitors, run_id);
    load.push.kefu = load.kefu;
    load.push.resume = load.kefu; /* Nchan's subscribers have no cursor to come back with */
    load.push.connect_concurrency = o->connect_concurrency;
    load.push.source_first = o->source_first;
    load.push.source_count = o->source_count;
    load.push.poll_interval_ms = o->poll_interval_ms;
    if (!o->connect_only) {
        load.msg_capacity = (uint64_t)ceil(o->rate * o->duration_s) + 1;
        load.msgs = kf_xcalloc(load.msg_capacity, sizeof *load.msgs);
    }
    load_pool_init(&load.api, load.loop, load.kefu ? &o->server : &o->publish, o->http_conns,
                   o->pipeline);
    uv_timer_init(load.loop, &load.sender);
    /* Every phase has its own bound; this one catches anything else. */
    uint64_t deadline_ms = SETUP_TIMEOUT_MS + (uint64_t)o->connect_timeout_s * 1000 +
                           (uint64_t)o->duration_s * 1000 + DRAIN_MS + 30000;
    load_tool_start(&load.tool, load.loop, TICK_MS, deadline_ms, tick, stopped);

    load.phase = PH_SETUP;
    load.phase_start_ns = now_ns();
    if (load.kefu) {
        load.visitors = kf_xcalloc(o->visitors, sizeof *load.visitors);
        load.setup = (load_kefu_t){.pool = &load.api,
                                   .target = &o->server,
                                   .visitors = load.visitors,
                                   .visitor_count = o->visitors,
                                   .first_messages = !o->connect_only,
                                   .agents = &load.agent,
                                   .retrying = true};
        load_progress("creating %u visitor sessions%s", o->visitors,
                      o->connect_only ? "" : " with a first message each");
        if (!o->connect_only) {
            snprintf(load.agent.email, sizeof load.agent.email, "%s", o->agent_email);
            snprintf(load.agent.password, sizeof load.agent.password, "%s", o->agent_password);
            load.setup.agent_count = 1;
            load_kefu_login(&load.setup, 0);
        }
        load_kefu_visitors_start(&load.setup);
    } else {
        enter_connect();
    }
    uv_run(load.loop, UV_RUN_DEFAULT);
    uv_loop_close(load.loop);
    load_push_free(&load.push);
    free(load.visitors);
    free(load.msgs);
    load_samples_free(&load.ack);
    load_samples_free(&load.latency);
    free(load.targets);
    free(load.subs_per_channel);
    load_pool_free(&load.api);
    return load.exit_code;
}
