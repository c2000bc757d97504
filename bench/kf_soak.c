/* kf_soak.c: a long load on kefu that looks for what only time shows. Visitors listen over the
 * five transports in turn, drop their connections at random and come back with their cursor;
 * they send messages (over their WebSocket when it is open, else over HTTP, with idempotency
 * keys) which agents, listening too, answer. Every message is counted at each listener it is
 * owed to (its visitor and every agent), across every reconnection: nothing may be lost or
 * doubled. The server's memory, open files and CPU and the delivery latency are sampled at an
 * interval into a CSV file; bench/soak.sh runs this and judges the run. One thread, one libuv
 * loop; the HTTP client and push connections are bench/load/'s. */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "load/http.h"
#include "load/kefu.h"
#include "load/proc.h"
#include "load/push.h"
#include "load/stats.h"
#include "load/tool.h"

/* Bounds: visitors (the server and this process share 20,000 open files), agents (a message's
 * listeners are a 16-bit mask), time. */
#define MAX_VISITORS 5000
#define MAX_AGENTS 8
#define MAX_DURATION_S 7200
#define MAX_RATE 1000
#define SETUP_TIMEOUT_MS 300000
#define TICK_MS 20
#define SEND_TRIES 5               /* HTTP requests per message when connections fail */
#define REPLY_DELAY_MS_MIN 200     /* an agent answers after reading for this long ... */
#define REPLY_DELAY_MS_SPREAD 1800 /* ... plus up to this */
#define DRAIN_CHECK_MS 250

/* ---- options ---- */

typedef struct options {
    load_target_t server;
    unsigned visitors;
    unsigned agents; /* the admin, and agents it creates */
    uint8_t transports[LOAD_TRANSPORTS];
    unsigned transport_count;
    unsigned duration_s;
    double rate;             /* visitors' messages per second, all together */
    double replies;          /* the chance that an agent answers a visitor's message */
    double reconnect_mean_s; /* mean time between one listener's drops; 0: none */
    unsigned sample_s;
    const char *samples_path;
    const char *agent_email; /* an admin */
    const char *agent_password;
    pid_t server_pid;
    unsigned http_conns;
    unsigned pipeline;
    unsigned drain_s;
    unsigned connect_timeout_s;
    uint32_t source_first, source_count;
    const char *label;
} options_t;

static void usage(FILE *out)
{
    fputs("usage: kf_soak --url http://127.0.0.1:8080 --agent-email E --agent-password P\n"
          "               [--visitors N] [--duration S] [options]\n"
          "\n"
          "Visitors listen over the transports in turn and drop their connections at random\n"
          "(coming back with their cursor); they send messages that the agents, listening too,\n"
          "answer. Every message must reach its visitor and every agent once. The server's\n"
          "memory, open files, CPU and the delivery latency go to a CSV file at an interval.\n"
          "\n"
          "options:\n"
          "  --url URL               kefu's address (loopback only)\n"
          "  --agent-email E         an admin: logs in, creates the other agents\n"
          "  --agent-password P\n"
          "  --visitors N            visitors, at most 5000 (default 1000)\n"
          "  --agents N              agents listening and answering, the admin included, 1 to 8\n"
          "                          (default 4)\n"
          "  --transports LIST       visitors' and agents' transports in turn\n"
          "                          (default ws,sse,longpoll,iframe,poll)\n"
          "  --duration S            seconds of load, at most 7200 (default 120)\n"
          "  --rate R                visitors' messages per second, all together (default 10)\n"
          "  --replies P             the chance an agent answers a visitor's message (default 1)\n"
          "  --reconnect-mean S      mean seconds between a listener's drops; 0 for none\n"
          "                          (default 60)\n"
          "  --sample-interval S     seconds between samples (default 60)\n"
          "  --samples FILE          the CSV file of samples (default: none)\n"
          "  --server-pid PID        the server process: memory, open files, CPU\n"
          "  --drain S               after the load, how long deliveries may take (default 30)\n"
          "  --http-conns N          keep-alive connections for sends (default 8)\n"
          "  --pipeline N            requests in flight on each (default 4)\n"
          "  --connect-timeout S     for the listeners' first connections (default 120)\n"
          "  --source-ips A-B        listeners' source addresses (default 127.0.0.2-127.0.0.101)\n"
          "  --label TEXT            a name for this run in the output\n"
          "  -h, --help              this text\n"
          "\n"
          "Prints progress on stderr, then a summary and, last, one JSON line with the figures.\n",
          out);
}

/* ---- the run's state ---- */

typedef enum { PH_SETUP, PH_CONNECT, PH_RUN, PH_DRAIN, PH_CLOSE } phase_t;

enum { MSG_UNSENT = 0, MSG_SENT, MSG_ACKED, MSG_FAILED };
enum { MSG_WS = 1, MSG_ANSWERED = 2 };

/* One message: a visitor's, or an agent's answer in that visitor's conversation. */
typedef struct soak_msg {
    uint64_t send_ns; /* in its marker: latency counts from here, whatever retries followed */
    uint32_t visitor; /* whose conversation */
    uint16_t got;     /* listeners that have it: bit 0 its visitor, bit 1 + k agent k */
    uint16_t status;  /* the last refusal's HTTP status */
    uint8_t state;    /* MSG_* */
    uint8_t author;   /* 0: the visitor; 1 + k: agent k */
    uint8_t tries;    /* requests made */
    uint8_t flags;    /* MSG_WS: on its way over the visitor's WebSocket; MSG_ANSWERED */
    uint64_t id;      /* the message event's id, as first received */
} soak_msg_t;

/* An answer an agent will send. */
typedef struct reply {
    uint64_t due_ms; /* loop time */
    uint32_t seq;    /* the visitor's message it answers */
} reply_t;

typedef struct soak {
    options_t opts;
    uv_loop_t *loop;
    phase_t phase;
    int exit_code;
    const char *abort_reason;
    char run[9];                /* this run's id: in markers and idempotency keys */
    load_tool_t tool;           /* the tick, the deadline, signals */
    uv_timer_t sender, sampler; /* the visitors' messages; the samples */
    load_pool_t api;
    load_kefu_t setup;
    load_visitor_t *visitors;
    load_agent_t agents[MAX_AGENTS];
    bool agents_asked; /* the admin has been asked to create the others */
    /* listeners: visitors 0 .. V-1, agents V .. V+A-1 */
    load_push_t push;
    uint64_t *drop_at_ms;  /* per listener: when it next drops its connection (loop time) */
    uint32_t *ws_inflight; /* per visitor: 1 + the message on its way over its WebSocket */
    uint16_t owed;         /* the listeners every message is owed to */
    uint64_t phase_start_ns;
    uint64_t run_start_ns, run_end_ns, drain_end_ns;
    uint64_t next_drain_check_ms;
    /* messages */
    soak_msg_t *msgs;
    uint32_t msg_capacity, msg_count;
    uint64_t visitor_msgs; /* visitors' messages made (the rate counts these) */
    reply_t *replies;
    uint32_t reply_count, reply_cap;
    uint64_t acked, send_failed, http_retries, ws_sends, ws_errors, answers, behind, full;
    /* again: a message received once more, with the id it came with, by a request whose cursor
     * was at or past it already. The protocol allows it (docs/PROTOCOL.md, "Cursor": a client
     * drops a message whose id it has): after a message that came too late between loops or
     * nodes, a connection replays from below it whatever its cursor. duplicates: any other
     * repeat, which no client could tell from a new message or which the server should have
     * skipped (a second id for one message, or one above the request's cursor). */
    uint64_t received, again, duplicates, misdelivered, unknown;
    /* latency of live deliveries: over streams, and over short polls (which wait for their
     * interval); for the current sample and the whole run */
    load_samples_t lat_sample, poll_sample, lat_run, poll_run;
    /* samples */
    FILE *csv;
    unsigned samples;
    load_proc_stat_t server_last, self_last, server_first, server_end;
    uint64_t sample_last_ns;
    int fds_first, fds_end;
    uint32_t rng;
} soak_t;

static soak_t soak;

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

static uint32_t random_u32(void)
{
    return load_random(&soak.rng);
}

/* A number in (0, 1]. */
static double random_unit(void)
{
    return ((double)random_u32() + 1.0) / 4294967296.0;
}

static void finish(void);
static void http_send(uint32_t seq);
static void fail_run(const char *why);

static bool is_agent(const load_sub_t *s)
{
    return s->index >= soak.opts.visitors;
}

/* ---- listening ---- */

static void push_target(load_sub_t *s, kf_buf_t *out)
{
    load_push_kefu_target(s, out);
}

static void push_headers(load_sub_t *s, kf_buf_t *out)
{
    if (is_agent(s))
        kf_buf_printf(out, "Cookie: %s\r\n", soak.agents[s->index - soak.opts.visitors].cookie);
    else
        kf_buf_printf(out, "Authorization: Bearer %s\r\n", soak.visitors[s->index].token);
}

/* An agent read a visitor's message: the conversation's agent answers it, now and then. */
static void maybe_answer(uint32_t agent, uint32_t seq)
{
    soak_msg_t *m = &soak.msgs[seq];
    if (m->author != 0 || (m->flags & MSG_ANSWERED) || m->visitor % soak.opts.agents != agent ||
        soak.phase >= PH_CLOSE)
        return;
    m->flags |= MSG_ANSWERED;
    if (random_unit() > soak.opts.replies)
        return;
    if (soak.reply_count == soak.reply_cap) {
        soak.reply_cap = soak.reply_cap == 0 ? 256 : soak.reply_cap * 2;
        soak.replies = kf_xrealloc(soak.replies, soak.reply_cap * sizeof *soak.replies);
    }
    uint64_t delay = REPLY_DELAY_MS_MIN + random_u32() % REPLY_DELAY_MS_SPREAD;
    soak.replies[soak.reply_count++] = (reply_t){uv_now(soak.loop) + delay, seq};
}

static void on_message(load_sub_t *s, uint64_t seq, uint64_t send_ns)
{
    if (seq >= soak.msg_count || soak.msgs[seq].state == MSG_UNSENT) {
        soak.unknown++;
        return;
    }
    soak_msg_t *m = &soak.msgs[seq];
    bool agent = is_agent(s);
    if (!agent && m->visitor != s->index) {
        soak.misdelivered++;
        return;
    }
    uint16_t bit = (uint16_t)(agent ? 1u << (1 + s->index - soak.opts.visitors) : 1u);
    if (m->got & bit) {
        if (s->id_event == m->id && m->id <= s->after)
            soak.again++;
        else
            soak.duplicates++;
        return;
    }
    m->got |= bit;
    m->id = s->id_event;
    soak.received++;
    /* Live deliveries only: a message sent while the listener was away waited for it. */
    if (s->since_ns != 0 && send_ns >= s->since_ns) {
        uint64_t us = (now_ns() - send_ns) / 1000;
        load_samples_add(s->transport == LOAD_POLL ? &soak.poll_sample : &soak.lat_sample, us);
        load_samples_add(s->transport == LOAD_POLL ? &soak.poll_run : &soak.lat_run, us);
    }
    if (agent)
        maybe_answer(s->index - soak.opts.visitors, (uint32_t)seq);
}

static void message_acked(soak_msg_t *m)
{
    if (m->state == MSG_ACKED)
        return;
    m->state = MSG_ACKED;
    soak.acked++;
}

static void message_failed(soak_msg_t *m, int status)
{
    m->state = MSG_FAILED;
    m->status = (uint16_t)status;
    soak.send_failed++;
}

/* A reply to a send over a visitor's WebSocket. */
static void on_reply(load_sub_t *s, bool ack, uint64_t ref)
{
    if (is_agent(s) || ref >= soak.msg_count || soak.ws_inflight[s->index] != ref + 1)
        return;
    soak.ws_inflight[s->index] = 0;
    soak_msg_t *m = &soak.msgs[ref];
    m->flags &= (uint8_t)~MSG_WS;
    if (ack) {
        message_acked(m);
    } else {
        soak.ws_errors++;
        message_failed(m, 0);
    }
}

/* A visitor's WebSocket ended with a send unanswered: the message may or may not be stored. It
 * goes again over HTTP with the same idempotency key, so that it is stored once either way. */
static void on_ended(load_sub_t *s, bool was_established)
{
    (void)was_established;
    if (is_agent(s) || soak.ws_inflight[s->index] == 0)
        return;
    uint32_t seq = soak.ws_inflight[s->index] - 1;
    soak.ws_inflight[s->index] = 0;
    soak.msgs[seq].flags &= (uint8_t)~MSG_WS;
    soak.http_retries++;
    http_send(seq);
}

static const load_push_ops_t push_ops = {
    .target = push_target,
    .headers = push_headers,
    .message = on_message,
    .reply = on_reply,
    .ended = on_ended,
};

/* ---- sending ---- */

/* A new message in visitor's conversation by author (0 the visitor, 1 + k agent k); UINT32_MAX
 * when the table is full. */
static uint32_t message_new(uint32_t visitor, uint8_t author)
{
    if (soak.msg_count == soak.msg_capacity) {
        soak.full++;
        return UINT32_MAX;
    }
    uint32_t seq = soak.msg_count++;
    soak.msgs[seq] =
        (soak_msg_t){.send_ns = now_ns(), .visitor = visitor, .author = author, .state = MSG_SENT};
    return seq;
}

/* The message's text: its marker. The same at every try, as its idempotency key requires. */
static void message_body(uint32_t seq, char *out, size_t size)
{
    snprintf(out, size, "%s%u:%llu", soak.push.marker, seq,
             (unsigned long long)soak.msgs[seq].send_ns);
}

static void http_done_cb(void *ctx, uint64_t tag, int status, const char *head, size_t head_len,
                         const char *body, size_t body_len)
{
    (void)ctx;
    (void)head;
    (void)head_len;
    (void)body;
    (void)body_len;
    soak_msg_t *m = &soak.msgs[tag];
    if (status == 201 || status == 200) { /* 200: the key's message, stored by an earlier try */
        message_acked(m);
    } else if (status == 0 && m->tries < SEND_TRIES && soak.phase < PH_CLOSE) {
        soak.http_retries++;
        http_send((uint32_t)tag);
    } else {
        message_failed(m, status);
    }
}

static void http_send(uint32_t seq)
{
    soak_msg_t *m = &soak.msgs[seq];
    m->tries++;
    char text[80], body[128], path[64];
    message_body(seq, text, sizeof text);
    snprintf(body, sizeof body, "{\"body\":\"%s\"}", text);
    kf_buf_t headers;
    kf_buf_init(&headers);
    if (m->author == 0) {
        snprintf(path, sizeof path, "/api/visitor/messages");
        kf_buf_printf(&headers, "Authorization: Bearer %s\r\n", soak.visitors[m->visitor].token);
    } else {
        snprintf(path, sizeof path, "/api/conversations/%lld/messages",
                 (long long)soak.visitors[m->visitor].conversation_id);
        load_kefu_agent_headers(&soak.agents[m->author - 1], &headers);
    }
    kf_buf_printf(&headers, "Idempotency-Key: %s-%u\r\n", soak.run, seq);
    load_kefu_post(&soak.setup, path, headers.data, body, http_done_cb, NULL, seq);
    kf_buf_free(&headers);
}

/* A visitor's message: over the visitor's WebSocket when it is open and has no send on its way,
 * else over HTTP. */
static void visitor_send(uint32_t visitor)
{
    uint32_t seq = message_new(visitor, 0);
    if (seq == UINT32_MAX)
        return;
    soak.visitor_msgs++;
    load_sub_t *s = &soak.push.subs[visitor];
    if (s->transport == LOAD_WS && s->established && soak.ws_inflight[visitor] == 0) {
        char text[80], action[256];
        message_body(seq, text, sizeof text);
        int len = snprintf(action, sizeof action,
                           "{\"type\":\"send\",\"ref\":\"%u\",\"key\":\"%s-%u\",\"body\":\"%s\"}",
                           seq, soak.run, seq, text);
        if (load_push_ws_send(s, action, (size_t)len) == 0) {
            soak.msgs[seq].tries++;
            soak.msgs[seq].flags |= MSG_WS;
            soak.ws_inflight[visitor] = seq + 1;
            soak.ws_sends++;
            return;
        }
    }
    http_send(seq);
}

/* Sends what the rate says is due by now, unless too many requests are waiting: a server that
 * cannot keep up lowers the rate achieved (counted in behind) instead of piling them up. */
static void sender_cb(uv_timer_t *timer)
{
    (void)timer;
    uint64_t now = now_ns();
    if (now > soak.run_end_ns)
        now = soak.run_end_ns;
    uint64_t due = (uint64_t)((double)(now - soak.run_start_ns) / 1e9 * soak.opts.rate);
    size_t cap = soak.api.count * soak.api.depth * 4;
    while (soak.visitor_msgs < due) {
        if (soak.api.inflight + soak.api.queued >= cap) {
            soak.behind += due - soak.visitor_msgs;
            soak.visitor_msgs = due; /* not made up later */
            return;
        }
        uint32_t visitor;
        do {
            visitor = random_u32() % soak.opts.visitors;
        } while (soak.visitors[visitor].failed);
        visitor_send(visitor);
        if (soak.msg_count == soak.msg_capacity)
            return;
    }
}

/* Sends the agents' answers that are due. */
static void answers_due(void)
{
    uint64_t now = uv_now(soak.loop);
    for (uint32_t i = 0; i < soak.reply_count;) {
        if (soak.replies[i].due_ms > now) {
            i++;
            continue;
        }
        uint32_t question = soak.replies[i].seq;
        soak.replies[i] = soak.replies[--soak.reply_count];
        const soak_msg_t *q = &soak.msgs[question];
        uint32_t seq = message_new(q->visitor, (uint8_t)(1 + q->visitor % soak.opts.agents));
        if (seq == UINT32_MAX)
            continue;
        soak.answers++;
        http_send(seq);
    }
}

/* ---- drops ---- */

/* An exponential wait with the configured mean, in ms. */
static uint64_t next_drop_in_ms(void)
{
    return (uint64_t)(-log(random_unit()) * soak.opts.reconnect_mean_s * 1000.0);
}

static void drops_due(void)
{
    if (soak.opts.reconnect_mean_s <= 0)
        return;
    uint64_t now = uv_now(soak.loop);
    for (uint32_t i = 0; i < soak.push.count; i++) {
        if (soak.drop_at_ms[i] > now)
            continue;
        load_push_reconnect(&soak.push.subs[i]);
        soak.drop_at_ms[i] = now + next_drop_in_ms();
    }
}

/* ---- samples ---- */

static void csv_header(void)
{
    if (soak.csv == NULL)
        return;
    fputs("t_s,rss_kb,fds,cpu_pct,lat_p50_ms,lat_p99_ms,poll_p99_ms,deliveries,sent,acked,failed,"
          "received,duplicates,reconnects,live,self_rss_kb,self_cpu_pct,load1\n",
          soak.csv);
    fflush(soak.csv);
}

/* The machine's load average over the last minute (the machine is shared), or NAN. */
static double load_average(void)
{
    double load1 = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf", &load1) != 1)
            load1 = NAN;
        fclose(f);
    }
    return load1;
}

/* One sample: the server's figures now, the latency since the last sample. */
static void sample(void)
{
    uint64_t now = now_ns();
    load_proc_stat_t server = load_proc_sample(soak.opts.server_pid);
    load_proc_stat_t self = load_self_sample();
    int fds = load_proc_fds(soak.opts.server_pid);
    double wall = soak.samples > 0 ? (double)(now - soak.sample_last_ns) / 1e9 : NAN;
    double cpu = server.ok && soak.server_last.ok && wall > 0
                     ? (server.cpu_s - soak.server_last.cpu_s) / wall * 100.0
                     : NAN;
    double self_cpu = wall > 0 ? (self.cpu_s - soak.self_last.cpu_s) / wall * 100.0 : NAN;
    load_samples_sort(&soak.lat_sample);
    load_samples_sort(&soak.poll_sample);
    double p50 = load_percentile_ms(&soak.lat_sample, 0.50);
    double p99 = load_percentile_ms(&soak.lat_sample, 0.99);
    double poll99 = load_percentile_ms(&soak.poll_sample, 0.99);
    size_t deliveries = soak.lat_sample.len + soak.poll_sample.len;
    double t = (double)(now - soak.run_start_ns) / 1e9;
    if (soak.samples == 0) {
        soak.server_first = server;
        soak.fds_first = fds;
    }
    soak.server_end = server;
    soak.fds_end = fds;
    if (soak.csv != NULL) {
        char a[32], b[32], c[32], d[32], e[32], f[32];
        fprintf(soak.csv, "%.1f,%ld,%d,%s,%s,%s,%s,%zu,%u,%llu,%llu,%llu,%llu,%llu,%u,%ld,%s,%s\n",
                t, server.ok ? server.rss_kb : -1L, fds, load_fmt(a, sizeof a, cpu, 1),
                load_fmt(b, sizeof b, p50, 3), load_fmt(c, sizeof c, p99, 3),
                load_fmt(d, sizeof d, poll99, 1), deliveries, soak.msg_count,
                (unsigned long long)soak.acked, (unsigned long long)soak.send_failed,
                (unsigned long long)soak.received, (unsigned long long)soak.duplicates,
                (unsigned long long)soak.push.reconnects, soak.push.live, self.rss_kb,
                load_fmt(e, sizeof e, self_cpu, 1), load_fmt(f, sizeof f, load_average(), 2));
        fflush(soak.csv);
    }
    char a[32], b[32];
    load_progress("%5.0f s: server %.1f MiB, %d files, CPU %s %%; p99 %s ms; %u messages, %llu "
                  "reconnects, %u live",
                  t, server.rss_kb / 1024.0, fds, load_fmt(a, sizeof a, cpu, 0),
                  load_fmt(b, sizeof b, p99, 1), soak.msg_count,
                  (unsigned long long)soak.push.reconnects, soak.push.live);
    soak.lat_sample.len = 0;
    soak.poll_sample.len = 0;
    soak.server_last = server;
    soak.self_last = self;
    soak.sample_last_ns = now;
    soak.samples++;
}

static void sampler_cb(uv_timer_t *timer)
{
    (void)timer;
    if (soak.phase == PH_RUN)
        sample();
}

/* ---- phases ---- */

static void enter_connect(void)
{
    const options_t *o = &soak.opts;
    soak.phase = PH_CONNECT;
    soak.setup.retrying = false;
    soak.phase_start_ns = now_ns();
    uint64_t cursor = 0; /* the agents start after every visitor's first message */
    for (uint32_t i = 0; i < o->visitors; i++) {
        if (soak.visitors[i].first_message_id > cursor)
            cursor = soak.visitors[i].first_message_id;
    }
    load_progress("connecting %u visitors and %u agents", o->visitors, o->agents);
    for (uint32_t i = 0; i < soak.push.count; i++) {
        load_sub_t *s = &soak.push.subs[i];
        s->index = i;
        s->transport = o->transports[i % o->transport_count];
        if (i < o->visitors) {
            if (soak.visitors[i].failed) {
                soak.push.failed++;
                continue;
            }
            s->cursor = soak.visitors[i].first_message_id;
        } else {
            s->cursor = cursor;
        }
        load_push_queue(&soak.push, s);
    }
}

static void enter_run(void)
{
    const options_t *o = &soak.opts;
    load_progress("%u of %u listeners established in %.1f s; %.0f s of load", soak.push.live,
                  soak.push.count, (double)(now_ns() - soak.phase_start_ns) / 1e9,
                  (double)o->duration_s);
    soak.phase = PH_RUN;
    soak.run_start_ns = now_ns();
    soak.run_end_ns = soak.run_start_ns + (uint64_t)o->duration_s * 1000000000ULL;
    uint64_t now = uv_now(soak.loop);
    for (uint32_t i = 0; i < soak.push.count; i++)
        soak.drop_at_ms[i] = now + next_drop_in_ms();
    csv_header();
    sample();
    uv_timer_start(&soak.sender, sender_cb, 10, 10);
    uv_timer_start(&soak.sampler, sampler_cb, (uint64_t)o->sample_s * 1000,
                   (uint64_t)o->sample_s * 1000);
}

static void enter_drain(void)
{
    uv_timer_stop(&soak.sender);
    uv_timer_stop(&soak.sampler);
    /* The last sample, unless the sampler has just taken it. */
    if (now_ns() - soak.sample_last_ns >= (uint64_t)soak.opts.sample_s * 500000000ULL)
        sample();
    soak.phase = PH_DRAIN;
    soak.drain_end_ns = now_ns() + (uint64_t)soak.opts.drain_s * 1000000000ULL;
    load_progress("load over: %u messages; draining for up to %u s", soak.msg_count,
                  soak.opts.drain_s);
}

/* Every acknowledged message at every listener it is owed to, and nothing left to send. */
static bool delivered_all(void)
{
    if (soak.api.inflight > 0 || soak.api.queued > 0 || soak.reply_count > 0)
        return false;
    for (uint32_t v = 0; v < soak.opts.visitors; v++) {
        if (soak.ws_inflight[v] != 0)
            return false;
    }
    for (uint32_t i = 0; i < soak.msg_count; i++) {
        const soak_msg_t *m = &soak.msgs[i];
        if (m->state == MSG_SENT || (m->state == MSG_ACKED && (m->got & soak.owed) != soak.owed))
            return false;
    }
    return true;
}

static void setup_check(void)
{
    load_kefu_t *setup = &soak.setup;
    if (soak.agents[0].failed) {
        fail_run("the admin's login failed: check --agent-email and --agent-password");
        return;
    }
    if (soak.agents[0].ready && !soak.agents_asked) {
        soak.agents_asked = true;
        for (uint32_t k = 1; k < soak.opts.agents; k++)
            load_kefu_agent_create(setup, k, &soak.agents[0]);
    }
    if (!load_kefu_done(setup))
        return;
    if (setup->agents_failed > 0) {
        fail_run("an agent could not be created or logged in (POST /api/agents needs an admin)");
        return;
    }
    load_progress("set-up: %u visitors ready, %u failed, %u agents, in %.1f s",
                  setup->visitors_ready, setup->visitors_failed, setup->agents_ready,
                  (double)(now_ns() - soak.phase_start_ns) / 1e9);
    if (setup->visitors_ready == 0) {
        fail_run("no visitor could be set up");
        return;
    }
    enter_connect();
}

static void tick(void)
{
    uint64_t now = now_ns();
    switch (soak.phase) {
    case PH_SETUP:
        if (now - soak.phase_start_ns >= (uint64_t)SETUP_TIMEOUT_MS * 1000000)
            fail_run("set-up timed out");
        else
            setup_check();
        return;
    case PH_CONNECT:
        if (soak.push.established_total + soak.push.failed >= soak.push.count ||
            now - soak.phase_start_ns >= (uint64_t)soak.opts.connect_timeout_s * 1000000000ULL)
            enter_run();
        break;
    case PH_RUN:
        answers_due();
        drops_due();
        if (now >= soak.run_end_ns)
            enter_drain();
        break;
    case PH_DRAIN:
        answers_due();
        if (uv_now(soak.loop) >= soak.next_drain_check_ms) {
            soak.next_drain_check_ms = uv_now(soak.loop) + DRAIN_CHECK_MS;
            if (delivered_all() || now >= soak.drain_end_ns) {
                finish();
                return;
            }
        }
        break;
    default: return;
    }
    load_push_pump(&soak.push);
    load_push_tick(&soak.push);
}

/* The deadline passed, or a signal came. */
static void stopped(const char *why, int exit_code)
{
    if (soak.phase >= PH_CLOSE)
        return;
    soak.abort_reason = why;
    soak.exit_code = exit_code;
    finish();
}

static void fail_run(const char *why)
{
    load_progress("%s", why);
    stopped(why, 1);
}

/* ---- the report ---- */

static void report(void)
{
    const options_t *o = &soak.opts;
    uint64_t lost = 0, unacked_delivered = 0, pending = 0;
    for (uint32_t i = 0; i < soak.msg_count; i++) {
        const soak_msg_t *m = &soak.msgs[i];
        if (m->state == MSG_ACKED)
            lost += (uint64_t)__builtin_popcount(soak.owed & ~m->got);
        else if (m->got != 0)
            unacked_delivered++;
        if (m->state == MSG_SENT)
            pending++;
    }
    load_samples_sort(&soak.lat_run);
    load_samples_sort(&soak.poll_run);
    double p50 = load_percentile_ms(&soak.lat_run, 0.50);
    double p99 = load_percentile_ms(&soak.lat_run, 0.99);
    double pmax = load_percentile_ms(&soak.lat_run, 1.0);
    double poll99 = load_percentile_ms(&soak.poll_run, 0.99);
    char a[32], b[32], c[32], d[32];
    printf("kf_soak%s%s: %u visitors, %u agents, %.0f s\n", o->label != NULL ? " " : "",
           o->label != NULL ? o->label : "", o->visitors, o->agents,
           soak.run_start_ns > 0 ? (double)((soak.phase >= PH_DRAIN ? soak.run_end_ns : now_ns()) -
                                            soak.run_start_ns) /
                                       1e9
                                 : 0.0);
    if (soak.abort_reason != NULL)
        printf("  STOPPED EARLY: %s\n", soak.abort_reason);
    printf(
        "  %-14s %u messages (%llu by visitors, %llu answers): %llu acked, %llu failed, %llu "
        "unanswered; %llu over WebSockets, %llu HTTP retries; %llu behind, %llu past the table\n",
        "sent", soak.msg_count, (unsigned long long)(soak.msg_count - soak.answers),
        (unsigned long long)soak.answers, (unsigned long long)soak.acked,
        (unsigned long long)soak.send_failed, (unsigned long long)pending,
        (unsigned long long)soak.ws_sends, (unsigned long long)soak.http_retries,
        (unsigned long long)soak.behind, (unsigned long long)soak.full);
    printf("  %-14s received %llu; lost %llu; duplicates %llu (and %llu again below the cursor, "
           "dropped by id); misdelivered %llu; unknown %llu; unacked delivered %llu\n",
           "delivery", (unsigned long long)soak.received, (unsigned long long)lost,
           (unsigned long long)soak.duplicates, (unsigned long long)soak.again,
           (unsigned long long)soak.misdelivered, (unsigned long long)soak.unknown,
           (unsigned long long)unacked_delivered);
    printf("  %-14s %u listeners, %u never established; %llu drops (%llu ours), %llu reconnects, "
           "%llu failed attempts\n",
           "connections", soak.push.count, soak.push.failed, (unsigned long long)soak.push.dropped,
           (unsigned long long)soak.push.forced, (unsigned long long)soak.push.reconnects,
           (unsigned long long)soak.push.connect_errors);
    printf("  %-14s streams p50 %s p99 %s max %s; short polls p99 %s\n", "latency ms",
           load_fmt(a, sizeof a, p50, 2), load_fmt(b, sizeof b, p99, 2),
           load_fmt(c, sizeof c, pmax, 2), load_fmt(d, sizeof d, poll99, 0));
    printf("  %-14s RSS %s -> %s MiB, open files %d -> %d\n", "server",
           load_fmt(a, sizeof a, soak.server_first.ok ? soak.server_first.rss_kb / 1024.0 : NAN, 1),
           load_fmt(b, sizeof b, soak.server_end.ok ? soak.server_end.rss_kb / 1024.0 : NAN, 1),
           soak.fds_first, soak.fds_end);

    kf_buf_t j;
    kf_buf_init(&j);
    kf_buf_printf(&j, "{\"tool\":\"kf_soak\",\"complete\":%s,\"visitors\":%u,\"agents\":%u",
                  soak.abort_reason == NULL ? "true" : "false", o->visitors, o->agents);
    kf_buf_printf(&j, ",\"duration_s\":%u,\"samples\":%u,\"messages\":%u,\"answers\":%llu",
                  o->duration_s, soak.samples, soak.msg_count, (unsigned long long)soak.answers);
    kf_buf_printf(&j, ",\"acked\":%llu,\"send_failed\":%llu,\"unanswered\":%llu",
                  (unsigned long long)soak.acked, (unsigned long long)soak.send_failed,
                  (unsigned long long)pending);
    kf_buf_printf(&j, ",\"ws_sends\":%llu,\"ws_errors\":%llu,\"http_retries\":%llu",
                  (unsigned long long)soak.ws_sends, (unsigned long long)soak.ws_errors,
                  (unsigned long long)soak.http_retries);
    kf_buf_printf(&j, ",\"behind\":%llu,\"table_full\":%llu", (unsigned long long)soak.behind,
                  (unsigned long long)soak.full);
    kf_buf_printf(&j, ",\"received\":%llu,\"lost\":%llu,\"duplicates\":%llu,\"again\":%llu",
                  (unsigned long long)soak.received, (unsigned long long)lost,
                  (unsigned long long)soak.duplicates, (unsigned long long)soak.again);
    kf_buf_printf(&j, ",\"misdelivered\":%llu,\"unknown\":%llu,\"unacked_delivered\":%llu",
                  (unsigned long long)soak.misdelivered, (unsigned long long)soak.unknown,
                  (unsigned long long)unacked_delivered);
    kf_buf_printf(&j, ",\"listeners\":%u,\"never_established\":%u,\"drops\":%llu", soak.push.count,
                  soak.push.failed, (unsigned long long)soak.push.dropped);
    kf_buf_printf(&j, ",\"forced_drops\":%llu,\"reconnects\":%llu,\"connect_errors\":%llu",
                  (unsigned long long)soak.push.forced, (unsigned long long)soak.push.reconnects,
                  (unsigned long long)soak.push.connect_errors);
    load_json_num(&j, "lat_p50_ms", p50, 3);
    load_json_num(&j, "lat_p99_ms", p99, 3);
    load_json_num(&j, "lat_max_ms", pmax, 3);
    load_json_num(&j, "poll_p99_ms", poll99, 1);
    load_json_num(&j, "server_rss_first_kb",
                  soak.server_first.ok ? (double)soak.server_first.rss_kb : NAN, 0);
    load_json_num(&j, "server_rss_end_kb",
                  soak.server_end.ok ? (double)soak.server_end.rss_kb : NAN, 0);
    kf_buf_printf(&j, ",\"fds_first\":%d,\"fds_end\":%d,\"last_bad_status\":%d}", soak.fds_first,
                  soak.fds_end,
                  soak.push.last_bad_status != 0 ? soak.push.last_bad_status
                                                 : soak.setup.last_bad_status);
    printf("%s\n", j.data);
    kf_buf_free(&j);
    fflush(stdout);
}

static void closed_cb(uv_handle_t *handle)
{
    (void)handle;
}

/* Reports and closes everything; the loop then ends by itself. */
static void finish(void)
{
    if (soak.phase >= PH_CLOSE)
        return;
    if (soak.phase == PH_RUN)
        enter_drain(); /* the last sample */
    report();
    soak.phase = PH_CLOSE;
    soak.setup.retrying = false;
    load_push_close(&soak.push);
    load_pool_stop(&soak.api);
    uv_close((uv_handle_t *)&soak.sender, closed_cb);
    uv_close((uv_handle_t *)&soak.sampler, closed_cb);
    load_tool_close(&soak.tool);
}

/* ---- main ---- */

static bool parse_transports(const char *list, options_t *o)
{
    o->transport_count = 0;
    char copy[128];
    snprintf(copy, sizeof copy, "%s", list);
    char *save = NULL;
    for (char *name = strtok_r(copy, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
        int t = load_transport_parse(name);
        if (t < 0 || o->transport_count == LOAD_TRANSPORTS)
            return false;
        o->transports[o->transport_count++] = (uint8_t)t;
    }
    return o->transport_count > 0;
}

static bool parse_double(const char *value, double min, double max, double *out)
{
    char *end;
    *out = strtod(value, &end);
    return *end == '\0' && end != value && *out >= min && *out <= max;
}

static int parse_options(int argc, char **argv, options_t *o)
{
    enum {
        O_URL = 256,
        O_EMAIL,
        O_PASSWORD,
        O_VISITORS,
        O_AGENTS,
        O_TRANSPORTS,
        O_DURATION,
        O_RATE,
        O_REPLIES,
        O_RECONNECT,
        O_SAMPLE,
        O_SAMPLES,
        O_PID,
        O_DRAIN,
        O_HTTP_CONNS,
        O_PIPELINE,
        O_CONNECT_TIMEOUT,
        O_SOURCES,
        O_LABEL
    };
    static const struct option long_options[] = {
        {"url", required_argument, NULL, O_URL},
        {"agent-email", required_argument, NULL, O_EMAIL},
        {"agent-password", required_argument, NULL, O_PASSWORD},
        {"visitors", required_argument, NULL, O_VISITORS},
        {"agents", required_argument, NULL, O_AGENTS},
        {"transports", required_argument, NULL, O_TRANSPORTS},
        {"duration", required_argument, NULL, O_DURATION},
        {"rate", required_argument, NULL, O_RATE},
        {"replies", required_argument, NULL, O_REPLIES},
        {"reconnect-mean", required_argument, NULL, O_RECONNECT},
        {"sample-interval", required_argument, NULL, O_SAMPLE},
        {"samples", required_argument, NULL, O_SAMPLES},
        {"server-pid", required_argument, NULL, O_PID},
        {"drain", required_argument, NULL, O_DRAIN},
        {"http-conns", required_argument, NULL, O_HTTP_CONNS},
        {"pipeline", required_argument, NULL, O_PIPELINE},
        {"connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT},
        {"source-ips", required_argument, NULL, O_SOURCES},
        {"label", required_argument, NULL, O_LABEL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL;
    unsigned value;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_URL: url = optarg; break;
        case O_EMAIL: o->agent_email = optarg; break;
        case O_PASSWORD: o->agent_password = optarg; break;
        case O_VISITORS:
            ok = load_parse_unsigned(optarg, MAX_VISITORS, &o->visitors) && o->visitors > 0;
            break;
        case O_AGENTS:
            ok = load_parse_unsigned(optarg, MAX_AGENTS, &o->agents) && o->agents > 0;
            break;
        case O_TRANSPORTS: ok = parse_transports(optarg, o); break;
        case O_DURATION:
            ok = load_parse_unsigned(optarg, MAX_DURATION_S, &o->duration_s) && o->duration_s > 0;
            break;
        case O_RATE: ok = parse_double(optarg, 0.001, MAX_RATE, &o->rate); break;
        case O_REPLIES: ok = parse_double(optarg, 0, 1, &o->replies); break;
        case O_RECONNECT: ok = parse_double(optarg, 0, 86400, &o->reconnect_mean_s); break;
        case O_SAMPLE:
            ok = load_parse_unsigned(optarg, 3600, &o->sample_s) && o->sample_s > 0;
            break;
        case O_SAMPLES: o->samples_path = optarg; break;
        case O_PID:
            ok = load_parse_unsigned(optarg, INT_MAX, &value) && value > 0;
            o->server_pid = (pid_t)value;
            break;
        case O_DRAIN: ok = load_parse_unsigned(optarg, 600, &o->drain_s); break;
        case O_HTTP_CONNS:
            ok = load_parse_unsigned(optarg, 256, &o->http_conns) && o->http_conns > 0;
            break;
        case O_PIPELINE:
            ok = load_parse_unsigned(optarg, 64, &o->pipeline) && o->pipeline > 0;
            break;
        case O_CONNECT_TIMEOUT:
            ok =
                load_parse_unsigned(optarg, 600, &o->connect_timeout_s) && o->connect_timeout_s > 0;
            break;
        case O_SOURCES:
            ok = load_source_parse(optarg, &o->source_first, &o->source_count) == 0;
            break;
        case O_LABEL: o->label = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return 2;
        }
        if (!ok) {
            fprintf(stderr, "kf_soak: bad value for --%s: %s\n", long_options[c - O_URL].name,
                    optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kf_soak: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    if (url == NULL || o->agent_email == NULL || o->agent_password == NULL) {
        fprintf(stderr, "kf_soak: --url, --agent-email and --agent-password are required\n");
        return 2;
    }
    return load_url_option(url, &o->server);
}

int main(int argc, char **argv)
{
    load_tool_name("kf_soak");
    options_t *o = &soak.opts;
    *o = (options_t){.visitors = 1000,
                     .agents = 4,
                     .transports = {LOAD_WS, LOAD_SSE, LOAD_LONGPOLL, LOAD_IFRAME, LOAD_POLL},
                     .transport_count = LOAD_TRANSPORTS,
                     .duration_s = 120,
                     .rate = 10,
                     .replies = 1,
                     .reconnect_mean_s = 60,
                     .sample_s = 60,
                     .http_conns = 8,
                     .pipeline = 4,
                     .drain_s = 30,
                     .connect_timeout_s = 120,
                     .source_first = (127u << 24) | 2, /* 127.0.0.2 ... 127.0.0.101 */
                     .source_count = 100};
    int rc = parse_options(argc, argv, o);
    if (rc != 0)
        return rc;
    char what[64];
    snprintf(what, sizeof what, "%u listeners", o->visitors + o->agents);
    rc = load_check_files((rlim_t)o->visitors + o->agents + o->http_conns + 32, what);
    if (rc != 0)
        return rc;
    if (o->samples_path != NULL) {
        soak.csv = fopen(o->samples_path, "w");
        if (soak.csv == NULL) {
            fprintf(stderr, "kf_soak: cannot write %s\n", o->samples_path);
            return 2;
        }
    }
    soak.rng = load_random_seed();
    snprintf(soak.run, sizeof soak.run, "%08x", (unsigned)random_u32());
    soak.loop = uv_default_loop();
    uint32_t listeners = o->visitors + o->agents;
    load_push_init(&soak.push, soak.loop, &o->server, &push_ops, listeners, soak.run);
    soak.push.kefu = true;
    soak.push.source_first = o->source_first;
    soak.push.source_count = o->source_count;
    soak.owed = (uint16_t)((1u << (1 + o->agents)) - 1);
    soak.drop_at_ms = kf_xcalloc(listeners, sizeof *soak.drop_at_ms);
    soak.ws_inflight = kf_xcalloc(o->visitors, sizeof *soak.ws_inflight);
    soak.msg_capacity = (uint32_t)ceil(o->rate * o->duration_s * (1 + o->replies) * 1.2) + 1000;
    soak.msgs = kf_xcalloc(soak.msg_capacity, sizeof *soak.msgs);
    soak.visitors = kf_xcalloc(o->visitors, sizeof *soak.visitors);
    load_pool_init(&soak.api, soak.loop, &o->server, o->http_conns, o->pipeline);
    /* Agent 0 is the admin given; it creates the others, with passwords of this run. */
    for (uint32_t k = 0; k < o->agents; k++) {
        load_agent_t *agent = &soak.agents[k];
        if (k == 0) {
            snprintf(agent->email, sizeof agent->email, "%s", o->agent_email);
            snprintf(agent->password, sizeof agent->password, "%s", o->agent_password);
        } else {
            snprintf(agent->email, sizeof agent->email, "soak-%s-%u@example.com", soak.run, k);
            snprintf(agent->name, sizeof agent->name, "Soak agent %u", k);
            snprintf(agent->password, sizeof agent->password, "soak-%s-%08x", soak.run,
                     (unsigned)random_u32());
        }
    }
    soak.setup = (load_kefu_t){.pool = &soak.api,
                               .target = &o->server,
                               .visitors = soak.visitors,
                               .visitor_count = o->visitors,
                               .first_messages = true,
                               .agents = soak.agents,
                               .agent_count = o->agents,
                               .retrying = true};
    uv_timer_init(soak.loop, &soak.sender);
    uv_timer_init(soak.loop, &soak.sampler);
    uint64_t deadline_ms = SETUP_TIMEOUT_MS + (uint64_t)o->connect_timeout_s * 1000 +
                           (uint64_t)o->duration_s * 1000 + (uint64_t)o->drain_s * 1000 + 60000;
    load_tool_start(&soak.tool, soak.loop, TICK_MS, deadline_ms, tick, stopped);

    soak.phase = PH_SETUP;
    soak.phase_start_ns = now_ns();
    load_progress("run %s: %u visitors, %u agents; setting up", soak.run, o->visitors, o->agents);
    load_kefu_login(&soak.setup, 0);
    load_kefu_visitors_start(&soak.setup);
    uv_run(soak.loop, UV_RUN_DEFAULT);
    uv_loop_close(soak.loop);
    if (soak.csv != NULL)
        fclose(soak.csv);
    load_push_free(&soak.push);
    load_pool_free(&soak.api);
    load_samples_free(&soak.lat_sample);
    load_samples_free(&soak.poll_sample);
    load_samples_free(&soak.lat_run);
    load_samples_free(&soak.poll_run);
    free(soak.drop_at_ms);
    free(soak.ws_inflight);
    free(soak.msgs);
    free(soak.visitors);
    free(soak.replies);
    return soak.exit_code;
}
