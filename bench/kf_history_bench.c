/* kf_history_bench.c: a desk with years of history: does what agents and visitors do stay as fast
 * as on a young desk? It makes a store (the real schema: kf_store_open_sqlite runs the
 * migrations, and makes the agents who log in), fills it straight through SQLite in big
 * transactions with C conversations and M messages as a desk would have written them over the
 * years (one conversation per visitor; most 5-30 messages, one in 50 a few hundred, one of exactly
 * 1,000 for the replay; mixed Chinese and English; agents, teams, private notes; all but the newest
 * thousand resolved; the search index fed through store/search_text.h as the writer does, and
 * its segments merged as the writer's idle time merges them), then starts the real kefu on it and
 * measures over HTTP: start-up until /healthz answers, the agents' list (the first page of each
 * view, and the view counts) with 20 agents refreshing at once, a visitor's replay from cursor 0
 * and resume from a recent cursor, full-text search, a month's report, the server's memory, and the
 * bytes on disk per message. --compare does it for a 10,000-conversation store and for the one
 * asked for, and prints the ratio of every figure.
 *
 *   build/kf_history_bench [--conversations C] [--messages M] [--per-day D] [--agents A]
 *                          [--teams T] [--seconds S] [--runs R] [--kefu PATH] [--compare]
 *                          [--keep] [--reuse] [DIR]
 *     C conversations (default 10,000; 1,000 to 5,000,000), M messages (default 20 per
 *     conversation; 4 to 100 per conversation), D conversations started a day (default 350: the
 *     10,000 fill a month, a million almost eight years), A agents (200; the first 20 log in), T
 * teams (20), S seconds of the 20 agents refreshing (10), R runs of each single request (20); PATH:
 * the kefu binary (default $KEFU_BIN, else build/kefu); DIR: where the stores go (default a
 * temporary directory under /tmp, removed after unless --keep; DIR/c<C> holds each size's store);
 * --reuse: measure the stores a run with --keep left in DIR again instead of filling them (and keep
 * them).
 *
 * Every visitor's bearer token is "v<visitor id>" (the store keeps its sha256), every agent's
 * password PASSWORD below; agent 1 is an admin. The history ends 12 hours before the fill. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "auth/auth.h"
#include "base/buf.h"
#include "base/clock.h"
#include "load/fill.h"
#include "load/http.h"
#include "load/kefu.h"
#include "load/proc.h"
#include "load/stats.h"
#include "load/tool.h"
#include "store/search_text.h"
#include "store/sqlite_internal.h"
#include "store/store.h"
#include "store/sync.h"

#define PASSWORD "history-bench-password"
#define SMALL_CONVERSATIONS 10000L
#define REPLAY_MESSAGES 1000
#define LOGGED_IN 20        /* agents refreshing the list at once */
#define RECENT 1000         /* the newest conversations, the only ones not resolved */
#define COMMIT_EVERY 200000 /* messages a transaction */
#define RARE_WORD "Zanzibar"
#define RARE_HITS 5 /* messages holding the rare word, spread over the history */
#define DAY_MS INT64_C(86400000)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct config {
    long conversations;
    long messages;
    int per_day;
    int agents;
    int teams;
    int seconds;
    int runs;
    const char *kefu;
} config_t;

/* ---- the figures ---- */

#define MAX_FIGURES 64

typedef struct figure {
    const char *name;
    double value;
    int decimals;
    bool compared; /* in the ratio's 2x target (not the sizes and the fill) */
} figure_t;

typedef struct figures {
    figure_t rows[MAX_FIGURES];
    int count;
} figures_t;

static void figure(figures_t *f, const char *name, double value, int decimals, bool compared)
{
    if (f->count < MAX_FIGURES)
        f->rows[f->count++] = (figure_t){name, value, decimals, compared};
}

/* ---- the fill ---- */

/* A conversation being written: its messages go in, interleaved with its neighbours' in time
 * (message ids follow time, as on a live desk), until its count is reached; then its row. */
typedef struct live {
    int64_t next_at; /* the time of its next message */
    int64_t id;      /* conversation and visitor id */
    int64_t created_at;
    int64_t last_at;
    int64_t last_id;
    int64_t first_reply_at, first_reply_agent;
    int64_t assignee; /* 0: nobody */
    int64_t team;     /* 0: none */
    int64_t gap_ms;   /* the longest wait between two messages */
    uint32_t count, written;
    const char *status;
    bool last_by_agent;
    bool notes; /* may hold private notes (the replay's conversation has none) */
} live_t;

/* A min-heap of the conversations being written, by next_at. */
typedef struct heap {
    live_t *items;
    size_t len, cap;
} heap_t;

static void heap_push(heap_t *h, live_t item)
{
    if (h->len == h->cap) {
        h->cap = h->cap == 0 ? 256 : h->cap * 2;
        h->items = realloc(h->items, h->cap * sizeof *h->items);
        if (h->items == NULL)
            fill_die("out of memory", NULL);
    }
    size_t i = h->len++;
    while (i > 0 && h->items[(i - 1) / 2].next_at > item.next_at) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = item;
}

static live_t heap_pop(heap_t *h)
{
    live_t top = h->items[0];
    live_t last = h->items[--h->len];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && h->items[child + 1].next_at < h->items[child].next_at)
            child++;
        if (h->items[child].next_at >= last.next_at)
            break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (h->len > 0)
        h->items[i] = last;
    return top;
}

typedef struct filler {
    sqlite3 *db;
    sqlite3_stmt *visitor, *visitor_index, *conversation, *message, *message_index;
    const config_t *cfg;
    int64_t now_ms;              /* the fill's wall clock */
    int64_t end_ms;              /* the newest conversation starts before this */
    long written;                /* messages so far */
    long rare_every;             /* a message in this many holds the rare word */
    long replay_index;           /* the conversation of REPLAY_MESSAGES */
    int64_t replay_id;           /* its id (and its visitor's) */
    int64_t replay_resume_after; /* the id of its tenth-newest message: a recent cursor */
    double started;
} filler_t;

/* Messages per conversation: most 5-30, one in 50 60-300, the replay's exactly 1,000; then
 * nudged one message at a time, at random, until they add up to the total asked for. */
static uint16_t *plan_counts(long conversations, long messages, long replay_index)
{
    uint16_t *counts = calloc((size_t)conversations, sizeof *counts);
    if (counts == NULL)
        fill_die("out of memory", NULL);
    long sum = 0;
    for (long i = 0; i < conversations; i++) {
        if (i == replay_index)
            counts[i] = REPLAY_MESSAGES;
        else if (fill_random(50) == 0)
            counts[i] = (uint16_t)(60 + fill_random(241));
        else
            counts[i] = (uint16_t)(5 + fill_random(26));
        sum += counts[i];
    }
    while (sum != messages) {
        long i = (long)fill_random((uint32_t)conversations);
        if (i == replay_index)
            continue;
        if (sum > messages && counts[i] > 2) {
            counts[i]--;
            sum--;
        } else if (sum < messages && counts[i] < 300) {
            counts[i]++;
            sum++;
        }
    }
    return counts;
}

static void progress(filler_t *f)
{
    double spent = fill_now_s() - f->started;
    double rate = (double)f->written / (spent > 0 ? spent : 1);
    fprintf(stderr, "\r  %ld of %ld messages, %.0f s, %.0f a second, %.0f s to go   ", f->written,
            f->cfg->messages, spent, rate, (double)(f->cfg->messages - f->written) / rate);
}

/* Writes l's next message (and its row once it has them all); true when it has more. */
static bool write_message(filler_t *f, live_t *l)
{
    bool silent = l->assignee == 0; /* nobody has answered it yet */
    bool by_agent = !silent && l->written > 0 && fill_random(100) < (l->last_by_agent ? 35 : 65);
    bool note = by_agent && l->notes && fill_random(20) == 0;
    int64_t agent =
        by_agent ? (fill_random(5) == 0 ? 1 + fill_random((uint32_t)f->cfg->agents) : l->assignee)
                 : 0;
    char body[600];
    size_t len = fill_message_body(body, sizeof body - 16);
    if (f->written % f->rare_every == f->rare_every / 2)
        snprintf(body + len, sizeof body - len, " %s", RARE_WORD);
    sqlite3_stmt *m = f->message;
    sqlite3_bind_int64(m, 1, l->id);
    sqlite3_bind_int64(m, 2, by_agent ? 1 : 0);
    if (by_agent)
        sqlite3_bind_int64(m, 3, agent);
    else
        sqlite3_bind_null(m, 3);
    sqlite3_bind_text(m, 4, body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(m, 5, l->next_at);
    sqlite3_bind_int64(m, 6, note ? 1 : 0);
    fill_step(f->db, m);
    l->last_id = sqlite3_last_insert_rowid(f->db);
    sqlite3_bind_int64(f->message_index, 1, l->last_id);
    sqlite3_bind_text(f->message_index, 2, kf_search_index_text(body), -1, free);
    fill_step(f->db, f->message_index);
    if (by_agent && !note && l->first_reply_at == 0) {
        l->first_reply_at = l->next_at;
        l->first_reply_agent = agent;
    }
    l->last_at = l->next_at;
    l->last_by_agent = by_agent;
    l->written++;
    if (l->id == f->replay_id && l->written == REPLAY_MESSAGES - 10)
        f->replay_resume_after = l->last_id;
    if (++f->written % COMMIT_EVERY == 0) {
        fill_exec(f->db, "COMMIT; BEGIN");
        progress(f);
    }
    if (l->written < l->count) {
        l->next_at += 10000 + (int64_t)fill_random((uint32_t)l->gap_ms);
        return true;
    }
    /* Its row, with what the writer's stamps would have left in it (the reports', the newest
     * message's); the counts' trigger counts it as it goes in. */
    sqlite3_stmt *c = f->conversation;
    bool resolved = strcmp(l->status, "resolved") == 0;
    bool snoozed = strcmp(l->status, "snoozed") == 0;
    int64_t updated = resolved ? l->last_at + 1000 * (int64_t)fill_random(7200) : l->last_at;
    sqlite3_bind_int64(c, 1, l->id);
    sqlite3_bind_text(c, 2, l->status, -1, SQLITE_STATIC);
    if (l->assignee != 0)
        sqlite3_bind_int64(c, 3, l->assignee);
    else
        sqlite3_bind_null(c, 3);
    if (snoozed)
        sqlite3_bind_int64(c, 4, f->now_ms + DAY_MS + (int64_t)fill_random(2 * DAY_MS));
    else
        sqlite3_bind_null(c, 4);
    sqlite3_bind_int64(c, 5, l->created_at);
    sqlite3_bind_int64(c, 6, updated);
    /* Open ones unread by the agents; everything else read on both sides. */
    sqlite3_bind_int64(c, 7, strcmp(l->status, "open") == 0 ? 0 : l->last_id);
    sqlite3_bind_int64(c, 8, l->last_id);
    if (l->team != 0)
        sqlite3_bind_int64(c, 9, l->team);
    else
        sqlite3_bind_null(c, 9);
    sqlite3_bind_int64(c, 10, l->created_at);
    if (l->first_reply_at != 0) {
        sqlite3_bind_int64(c, 11, l->first_reply_at);
        sqlite3_bind_int64(c, 12, l->first_reply_agent);
    } else {
        sqlite3_bind_null(c, 11);
        sqlite3_bind_null(c, 12);
    }
    if (resolved) {
        sqlite3_bind_int64(c, 13, updated);
        sqlite3_bind_int64(c, 14, l->assignee);
    } else {
        sqlite3_bind_null(c, 13);
        sqlite3_bind_null(c, 14);
    }
    fill_step(f->db, c);
    return false;
}

/* The visitor of conversation i (same id), and the conversation's plan. */
static live_t start_conversation(filler_t *f, long i, uint32_t count, int64_t at)
{
    const config_t *cfg = f->cfg;
    int64_t id = i + 1;
    char token[32], hash[KF_HASH_HEX_SIZE], name[64] = "", email[96] = "";
    snprintf(token, sizeof token, "v%" PRId64, id);
    kf_auth_sha256_hex(token, strlen(token), hash);
    if (fill_random(5) != 0)
        fill_visitor_name(name, sizeof name);
    if (fill_random(2) == 0)
        snprintf(email, sizeof email, "customer%" PRId64 "@example.com", id);
    sqlite3_stmt *v = f->visitor;
    sqlite3_bind_int64(v, 1, id);
    sqlite3_bind_text(v, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(v, 3, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(v, 4, email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(v, 5, at);
    fill_step(f->db, v);
    /* What the writer indexes for a visitor: the name, the e-mail, or both
     * (store/sqlite_internal.h, KF_SQLITE_VISITOR_SEARCH_TEXT). */
    if (name[0] != '\0' || email[0] != '\0') {
        char text[160];
        snprintf(text, sizeof text, "%s%s%s", name, name[0] != '\0' && email[0] != '\0' ? " " : "",
                 email);
        sqlite3_bind_int64(f->visitor_index, 1, id);
        sqlite3_bind_text(f->visitor_index, 2, kf_search_index_text(text), -1, free);
        fill_step(f->db, f->visitor_index);
    }
    live_t l = {.next_at = at, .id = id, .created_at = at, .count = count, .notes = true};
    l.team = fill_random(10) == 0 ? 0 : 1 + fill_random((uint32_t)cfg->teams);
    l.assignee = 1 + fill_random((uint32_t)cfg->agents);
    l.status = "resolved";
    l.gap_ms = 300000; /* up to 5 minutes between two messages */
    if (i >= cfg->conversations - RECENT) {
        /* The desk's open work: the same whatever the history. Quicker exchanges, so that even a
         * long one has ended before the fill's "now". */
        uint32_t r = fill_random(100);
        l.status = r < 40 ? "open" : r < 55 ? "pending" : r < 60 ? "snoozed" : "resolved";
        if (r < 20)
            l.assignee = 0;
        l.gap_ms = 60000;
    }
    if (i == f->replay_index)
        l.notes = false; /* so that its visitor sees all 1,000 */
    return l;
}

/* Fills the store at path: agents and teams, then the history. Returns the seconds it took. */
static double fill(const config_t *cfg, const char *path, filler_t *f)
{
    kf_store_t *store = NULL;
    if (kf_store_open_sqlite(path, "OFF", &store) != 0)
        fill_die("kf_store_open_sqlite", NULL);
    /* The agents through the store, as `kefu user add` makes them; one scrypt hash for all. */
    char hash[KF_PASSWORD_HASH_SIZE];
    if (kf_auth_password_hash(PASSWORD, hash) != 0)
        fill_die("kf_auth_password_hash", NULL);
    for (int i = 1; i <= cfg->agents; i++) {
        char email[64], name[64];
        snprintf(email, sizeof email, "agent%d@example.com", i);
        snprintf(name, sizeof name, "Agent %d", i);
        int64_t id;
        if (kf_store_sync_agent_create(store, email, name, i == 1 ? "admin" : "agent", hash,
                                       kf_clock_wall_ms(), &id) != 0 ||
            id != i)
            fill_die("agent_create", NULL);
    }
    kf_store_close(store);

    memset(f, 0, sizeof *f);
    f->cfg = cfg;
    f->now_ms = kf_clock_wall_ms();
    f->end_ms = f->now_ms - DAY_MS / 2;
    f->rare_every = cfg->messages / RARE_HITS;
    f->replay_index = cfg->conversations / 2;
    f->replay_id = f->replay_index + 1;
    if (sqlite3_open(path, &f->db) != SQLITE_OK)
        fill_die("open", f->db);
    sqlite3 *db = f->db;
    /* Each conversation's row goes in at its end, with what the writer stamps in it as its
     * messages go in (the reports', the newest message's); the counts' trigger counts it. */
    fill_exec(db, "PRAGMA synchronous = OFF; PRAGMA cache_size = -1048576; BEGIN");
    for (int i = 1; i <= cfg->teams; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO teams (name, created_at) VALUES ('Team %d', 0)", i);
        fill_exec(db, sql);
    }
    /* Each agent in one team, every fifth in a second one too. */
    sqlite3_stmt *st =
        fill_prepare(db, "INSERT OR IGNORE INTO team_members (team_id, agent_id) VALUES (?1, ?2)");
    for (int i = 1; i <= cfg->agents; i++) {
        sqlite3_bind_int64(st, 1, 1 + (i - 1) % cfg->teams);
        sqlite3_bind_int64(st, 2, i);
        fill_step(db, st);
        if (i % 5 == 0) {
            sqlite3_bind_int64(st, 1, 1 + (i / 5) % cfg->teams);
            sqlite3_bind_int64(st, 2, i);
            fill_step(db, st);
        }
    }
    sqlite3_finalize(st);
    f->visitor = fill_prepare(db, "INSERT INTO visitors (id, token_hash, name, email, created_at) "
                                  "VALUES (?1, ?2, ?3, ?4, ?5)");
    f->visitor_index = fill_prepare(db, "INSERT INTO visitor_search (rowid, text) VALUES (?1, ?2)");
    f->conversation = fill_prepare(
        db, "INSERT INTO conversations (id, visitor_id, status, assignee_id, snoozed_until, "
            "created_at, updated_at, agent_read_up_to, visitor_read_up_to, team_id, "
            "first_visitor_at, first_reply_at, first_reply_agent_id, resolved_at, resolved_by, "
            "last_message_id) "
            "VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?8)");
    f->message = fill_prepare(db, "INSERT INTO messages (conversation_id, sender, agent_id, body, "
                                  "created_at, private) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    f->message_index = fill_prepare(db, "INSERT INTO message_search (rowid, text) VALUES (?1, ?2)");

    uint16_t *counts = plan_counts(cfg->conversations, cfg->messages, f->replay_index);
    int64_t spacing = DAY_MS / cfg->per_day;
    int64_t start = f->end_ms - (int64_t)cfg->conversations * spacing;
    heap_t heap = {0};
    f->started = fill_now_s();
    for (long i = 0; i < cfg->conversations; i++) {
        int64_t at = start + i * spacing + (int64_t)fill_random((uint32_t)spacing);
        while (heap.len > 0 && heap.items[0].next_at <= at) {
            live_t l = heap_pop(&heap);
            if (write_message(f, &l))
                heap_push(&heap, l);
        }
        heap_push(&heap, start_conversation(f, i, counts[i], at));
    }
    while (heap.len > 0) {
        live_t l = heap_pop(&heap);
        if (write_message(f, &l))
            heap_push(&heap, l);
    }
    free(heap.items);
    free(counts);
    /* The prefixes' words, the messages' and the names', as the writer keeps them (the fill
     * indexes without it). */
    fill_exec(db, KF_SQLITE_SEARCH_WORDS_FILL);
    fill_exec(db, KF_SQLITE_NAME_WORDS_FILL);
    fill_exec(db, "COMMIT");
    progress(f);
    fprintf(stderr, "\n");
    /* The search indexes as the server's idle merge leaves them (KF_SQLITE_MERGE_IDLE_MS, at most
     * one segment on a level): a desk that wrote this for years had quiet hours. Larger steps
     * than the server's, which keeps each short for the writes that may come. */
    load_progress("merging the search indexes' segments");
    static const char *const merges[] = {KF_SQLITE_SEARCH_MERGE("message_search", "4000"),
                                         KF_SQLITE_SEARCH_MERGE("visitor_search", "4000")};
    for (size_t i = 0; i < COUNT(merges); i++) {
        sqlite3_int64 before;
        do {
            before = sqlite3_total_changes64(db);
            fill_exec(db, merges[i]);
        } while (sqlite3_total_changes64(db) - before >= 2);
    }
    double seconds = fill_now_s() - f->started;
    sqlite3_finalize(f->visitor);
    sqlite3_finalize(f->visitor_index);
    sqlite3_finalize(f->conversation);
    sqlite3_finalize(f->message);
    sqlite3_finalize(f->message_index);
    fill_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
    f->db = NULL;
    return seconds;
}

static double file_bytes(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (double)sb.st_size : 0;
}

/* ---- kefu ---- */

/* A free loopback port, for --listen (the server's own port 0 would have to be read from its
 * log). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        fill_die("free port", NULL);
    close(fd);
    return ntohs(addr.sin_port);
}

/* Started with posix_spawn, not fork: after a fill this process holds a gigabyte of SQLite's
 * page cache, and fork copies the page tables of all of it (18-22 ms for 1.2 GB here, and as long
 * again for the child to drop them at exec), which the start-up figure counted as kefu's: the
 * million's starts right after its fill took 0.052 s against 0.023 from a small process. */
static pid_t start_kefu(const config_t *cfg, const char *dir, int port)
{
    char listen[32], log[600];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(log, sizeof log, "%s/kefu.log", dir);
    /* The visitor's limits raised: the replays ask more often than a person does. */
    char *const argv[] = {(char *)cfg->kefu,
                          "--listen",
                          listen,
                          "--data",
                          (char *)dir,
                          "--log-level",
                          "warn",
                          "--visitor-requests-per-minute",
                          "1000000",
                          "--visitor-request-burst",
                          "100000",
                          NULL};
    posix_spawn_file_actions_t files;
    pid_t pid;
    if (posix_spawn_file_actions_init(&files) != 0 ||
        posix_spawn_file_actions_addopen(&files, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644) != 0 ||
        posix_spawn_file_actions_adddup2(&files, 1, 2) != 0 ||
        posix_spawn(&pid, cfg->kefu, &files, NULL, argv, environ) != 0)
        fill_die("spawn kefu", NULL);
    posix_spawn_file_actions_destroy(&files);
    return pid;
}

/* True once GET /healthz answers 200 (one blocking try). */
static bool healthy(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = false;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Connection: close\r\n\r\n";
        char buf[64];
        if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            ok = n >= 12 && memcmp(buf + 9, "200", 3) == 0;
        }
    }
    if (fd >= 0)
        close(fd);
    return ok;
}

/* SIGTERM, then SIGKILL after 15 s; the exit status, or -1. */
static int stop_kefu(pid_t pid)
{
    kill(pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 1500; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* ---- requests ---- */

static uv_loop_t loop;
static load_target_t target;
static load_pool_t one;   /* one connection: the single requests, in turn */
static load_pool_t desks; /* one connection per refreshing agent */

typedef struct answer {
    bool done;
    int status;
    json_t *json; /* the body, when it is JSON */
    double ms;
    double sent;
} answer_t;

static void answer_cb(void *ctx, uint64_t tag, int status, const char *head, size_t head_len,
                      const char *body, size_t body_len)
{
    (void)tag;
    (void)head;
    (void)head_len;
    answer_t *a = ctx;
    a->ms = (fill_now_s() - a->sent) * 1000.0;
    a->status = status;
    json_error_t error;
    a->json = body_len > 0 ? json_loadb(body, body_len, 0, &error) : NULL;
    a->done = true;
}

static void submit_get(load_pool_t *pool, const char *path, const char *extra, load_done_fn done,
                       void *ctx, uint64_t tag)
{
    kf_buf_t req;
    kf_buf_init(&req);
    load_build_get(&req, &target, path, extra);
    size_t len;
    char *text = kf_buf_steal(&req, &len);
    load_pool_submit(pool, text, len, done, ctx, tag);
}

/* One GET on its own, waited for; the caller json_decref()s a.json. Ends the tool when the
 * answer is not 200 (a bench that measured errors would measure nothing). */
static answer_t get(const char *path, const char *extra)
{
    answer_t a = {.sent = fill_now_s()};
    submit_get(&one, path, extra, answer_cb, &a, 0);
    while (!a.done)
        uv_run(&loop, UV_RUN_ONCE);
    if (a.status != 200) {
        load_progress("GET %s: %d", path, a.status);
        exit(1);
    }
    return a;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile p of n sorted values. */
static double percentile(const double *sorted, int n, double p)
{
    int rank = (int)ceil(p * n);
    return sorted[rank < 1 ? 0 : rank > n ? n - 1 : rank - 1];
}

/* Each request's time in order, with KF_HISTORY_SAMPLES set: for telling a first request's cost
 * from the machine's noise. */
static void print_samples(const char *name, const double *ms, int count)
{
    if (getenv("KF_HISTORY_SAMPLES") == NULL)
        return;
    fprintf(stderr, "%s:", name);
    for (int i = 0; i < count; i++)
        fprintf(stderr, " %.2f", ms[i]);
    fprintf(stderr, "\n");
}

/* A GET made runs times: p50 and p99 in ms, into f under name. */
static void time_get(figures_t *f, const config_t *cfg, const char *p50_name, const char *p99_name,
                     const char *path, const char *extra)
{
    double *ms = calloc((size_t)cfg->runs, sizeof *ms);
    for (int i = 0; i < cfg->runs; i++) {
        answer_t a = get(path, extra);
        ms[i] = a.ms;
        json_decref(a.json);
    }
    print_samples(p50_name, ms, cfg->runs);
    qsort(ms, (size_t)cfg->runs, sizeof *ms, compare_double);
    figure(f, p50_name, percentile(ms, cfg->runs, 0.5), 2, true);
    if (p99_name != NULL)
        figure(f, p99_name, percentile(ms, cfg->runs, 0.99), 2, true);
    free(ms);
}

/* ---- the agents refreshing ---- */

static const char *const list_paths[] = {
    "/api/conversations?view=unassigned", "/api/conversations?view=mine",
    "/api/conversations?view=open",       "/api/conversations?view=pending",
    "/api/conversations?view=resolved",   "/api/conversations?view=snoozed",
    "/api/conversations?view=all",        "/api/conversations/counts",
};
static const char *const list_names[][2] = {
    {"list unassigned p50 ms", "list unassigned p99 ms"},
    {"list mine p50 ms", "list mine p99 ms"},
    {"list open p50 ms", "list open p99 ms"},
    {"list pending p50 ms", "list pending p99 ms"},
    {"list resolved p50 ms", "list resolved p99 ms"},
    {"list snoozed p50 ms", "list snoozed p99 ms"},
    {"list all p50 ms", "list all p99 ms"},
    {"view counts p50 ms", "view counts p99 ms"},
};
#define LIST_STEPS COUNT(list_paths)

typedef struct desk {
    load_agent_t *agent;
    char headers[400];
    unsigned step; /* the next of list_paths */
    double sent;
    bool finished;
} desk_t;

static struct {
    desk_t desks[LOGGED_IN];
    load_samples_t samples[LIST_STEPS];
    double deadline;
    unsigned finished;
    unsigned failed; /* answers that were not 200 */
} refresh;

static void desk_next(desk_t *d);

static void desk_done_cb(void *ctx, uint64_t tag, int status, const char *head, size_t head_len,
                         const char *body, size_t body_len)
{
    (void)head;
    (void)head_len;
    (void)body;
    (void)body_len;
    desk_t *d = ctx;
    if (status == 200)
        load_samples_add(&refresh.samples[tag], (uint64_t)((fill_now_s() - d->sent) * 1e6));
    else
        refresh.failed++;
    d->step = (d->step + 1) % LIST_STEPS;
    desk_next(d);
}

static void desk_next(desk_t *d)
{
    if (fill_now_s() >= refresh.deadline) {
        d->finished = true;
        refresh.finished++;
        return;
    }
    d->sent = fill_now_s();
    submit_get(&desks, list_paths[d->step], d->headers, desk_done_cb, d, d->step);
}

/* ---- one size ---- */

static void url_encode(const char *in, char *out, size_t size)
{
    size_t len = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p != '\0' && len + 4 < size; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
            out[len++] = (char)*p;
        else
            len += (size_t)snprintf(out + len, size - len, "%%%02X", *p);
    }
    out[len] = '\0';
}

static void measure(const config_t *cfg, const char *dir, const filler_t *f, figures_t *out)
{
    int port = free_port();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    if (load_target_parse(url, &target) != 0)
        fill_die("target", NULL);
    /* Three starts (the median: a process's start on a shared machine waits for a core now and
     * then); the third one stays up for the rest. */
    double starts[3];
    unsigned long long faults = 0;
    pid_t pid = 0;
    for (int i = 0; i < 3; i++) {
        if (pid != 0 && stop_kefu(pid) != 0)
            load_progress("kefu did not exit 0 on SIGTERM");
        double t0 = fill_now_s();
        pid = start_kefu(cfg, dir, port);
        while (!healthy(port)) {
            if (waitpid(pid, NULL, WNOHANG) == pid)
                fill_die("kefu ended at start (see kefu.log in the store's directory)", NULL);
            if (fill_now_s() - t0 > 120)
                fill_die("kefu did not answer /healthz within 2 minutes", NULL);
            usleep(2000);
        }
        starts[i] = fill_now_s() - t0;
        faults += load_proc_sample(pid).majflt;
    }
    qsort(starts, 3, sizeof starts[0], compare_double);
    figure(out, "start-up until /healthz answers (median of 3), s", starts[1], 3, true);
    /* Pages of kefu's binary, its libraries or the store read from disk while starting: this
     * machine's host pages out what nobody touched for a minute, and a start that reads them back
     * took 0.056-0.071 s here against 0.023, whatever the store's size. */
    figure(out, "start-up: pages read from disk (major faults, the three starts)", (double)faults,
           0, false);
    load_proc_stat_t idle = load_proc_sample(pid);

    uv_loop_init(&loop);
    load_pool_init(&one, &loop, &target, 1, 1);
    load_pool_init(&desks, &loop, &target, LOGGED_IN, 1);
    load_agent_t agents[LOGGED_IN];
    memset(agents, 0, sizeof agents);
    load_kefu_t kefu = {
        .pool = &one, .target = &target, .agents = agents, .agent_count = LOGGED_IN};
    for (uint32_t i = 0; i < LOGGED_IN; i++) {
        snprintf(agents[i].email, sizeof agents[i].email, "agent%u@example.com", i + 1);
        snprintf(agents[i].password, sizeof agents[i].password, "%s", PASSWORD);
        load_kefu_login(&kefu, i);
    }
    while (!load_kefu_done(&kefu))
        uv_run(&loop, UV_RUN_ONCE);
    if (kefu.agents_failed > 0)
        fill_die("an agent could not log in", NULL);

    /* 20 agents refreshing every view and the counts, each in turn, for cfg->seconds. */
    load_progress("%d agents refreshing the list for %d s", LOGGED_IN, cfg->seconds);
    memset(&refresh, 0, sizeof refresh);
    refresh.deadline = fill_now_s() + cfg->seconds;
    for (unsigned i = 0; i < LOGGED_IN; i++) {
        desk_t *d = &refresh.desks[i];
        d->agent = &agents[i];
        d->step = i % LIST_STEPS;
        snprintf(d->headers, sizeof d->headers, "Cookie: %s\r\n", agents[i].cookie);
        desk_next(d);
    }
    while (refresh.finished < LOGGED_IN)
        uv_run(&loop, UV_RUN_ONCE);
    if (refresh.failed > 0)
        fill_die("a list or count request failed", NULL);
    size_t refreshes = 0;
    for (size_t s = 0; s < LIST_STEPS; s++) {
        load_samples_sort(&refresh.samples[s]);
        figure(out, list_names[s][0], load_percentile_ms(&refresh.samples[s], 0.5), 2, true);
        figure(out, list_names[s][1], load_percentile_ms(&refresh.samples[s], 0.99), 2, true);
        refreshes += refresh.samples[s].len;
        load_samples_free(&refresh.samples[s]);
    }
    figure(out, "list and count requests answered a second (20 agents)",
           (double)refreshes / cfg->seconds, 0, false);

    /* The same, one request at a time: what one request costs the server, without the queue. */
    char cookie[300];
    snprintf(cookie, sizeof cookie, "Cookie: %s\r\n", agents[0].cookie);
    time_get(out, cfg, "list all alone (one request at a time), p50 ms", NULL,
             "/api/conversations?view=all", cookie);
    time_get(out, cfg, "view counts alone, p50 ms", NULL, "/api/conversations/counts", cookie);

    /* The visitor of the 1,000-message conversation: its whole history, page by page. */
    char auth[96], path[256];
    snprintf(auth, sizeof auth, "Authorization: Bearer v%" PRId64 "\r\n", f->replay_id);
    double *ms = calloc((size_t)cfg->runs, sizeof *ms);
    long seen = 0;
    int pages = 0;
    for (int run = 0; run < cfg->runs; run++) {
        double began = fill_now_s();
        int64_t after = 0;
        seen = 0;
        pages = 0;
        for (;;) {
            snprintf(path, sizeof path, "/api/visitor/messages?after=%" PRId64, after);
            answer_t a = get(path, auth);
            json_t *messages = json_object_get(a.json, "messages");
            size_t n = json_array_size(messages);
            if (n > 0)
                after = json_integer_value(json_object_get(json_array_get(messages, n - 1), "id"));
            seen += (long)n;
            pages++;
            bool more = json_is_true(json_object_get(a.json, "more"));
            json_decref(a.json);
            if (!more)
                break;
        }
        ms[run] = (fill_now_s() - began) * 1000.0;
    }
    if (seen != REPLAY_MESSAGES)
        load_progress("the replay gave %ld messages, not %d", seen, REPLAY_MESSAGES);
    qsort(ms, (size_t)cfg->runs, sizeof *ms, compare_double);
    figure(out, "visitor replay from 0 (1,000 messages), p50 ms", percentile(ms, cfg->runs, 0.5), 2,
           true);
    figure(out, "visitor replay from 0, p99 ms", percentile(ms, cfg->runs, 0.99), 2, true);
    figure(out, "visitor replay, pages", pages, 0, false);
    free(ms);
    snprintf(path, sizeof path, "/api/visitor/messages?after=%" PRId64, f->replay_resume_after);
    time_get(out, cfg, "visitor resume (the last 10 messages), p50 ms", "visitor resume, p99 ms",
             path, auth);

    /* An agent's replies into an open conversation, one after the other: the write path (the
     * indexes and the search index a message goes into, a synced commit) on this history. */
    answer_t open = get("/api/conversations?view=open&limit=1", cookie);
    int64_t conversation = json_integer_value(
        json_object_get(json_array_get(json_object_get(open.json, "conversations"), 0), "id"));
    json_decref(open.json);
    kf_buf_t headers;
    kf_buf_init(&headers);
    load_kefu_agent_headers(&agents[0], &headers);
    snprintf(path, sizeof path, "/api/conversations/%" PRId64 "/messages", conversation);
    ms = calloc((size_t)cfg->runs, sizeof *ms);
    for (int i = 0; i < cfg->runs; i++) {
        answer_t a = {.sent = fill_now_s()};
        load_kefu_post(&kefu, path, headers.data,
                       "{\"body\":\"Your refund is on its way, 退款已经处理了\"}", answer_cb, &a,
                       0);
        while (!a.done)
            uv_run(&loop, UV_RUN_ONCE);
        if (a.status != 201)
            fill_die("an agent's reply was refused", NULL);
        json_decref(a.json);
        ms[i] = a.ms;
    }
    kf_buf_free(&headers);
    print_samples("an agent's reply", ms, cfg->runs);
    qsort(ms, (size_t)cfg->runs, sizeof *ms, compare_double);
    figure(out, "an agent's reply (POST, stored and synced), p50 ms",
           percentile(ms, cfg->runs, 0.5), 2, true);
    figure(out, "an agent's reply, p99 ms", percentile(ms, cfg->runs, 0.99), 2, true);
    free(ms);

    /* Search and a month's report, as the admin. */
    static const char *const searches[][3] = {
        {RARE_WORD, "search, a rare word (5 hits), p50 ms", "search, rare, p99 ms"},
        {"退款", "search, a common Chinese word (退款), p50 ms", "search, 退款, p99 ms"},
        {"refund", "search, a common English word (refund), p50 ms", "search, refund, p99 ms"},
        {"Olga", "search, a common visitor name (Olga), p50 ms", "search, Olga, p99 ms"},
    };
    for (size_t i = 0; i < COUNT(searches); i++) {
        char q[64];
        url_encode(searches[i][0], q, sizeof q);
        snprintf(path, sizeof path, "/api/search?q=%s", q);
        time_get(out, cfg, searches[i][1], searches[i][2], path, cookie);
    }
    int64_t now = kf_clock_wall_ms();
    snprintf(path, sizeof path, "/api/reports?from=%" PRId64 "&to=%" PRId64 "&group=day",
             now - 30 * DAY_MS, now);
    time_get(out, cfg, "report, the last 30 days per day, p50 ms", "report, p99 ms", path, cookie);

    load_proc_stat_t end = load_proc_sample(pid);
    figure(out, "server RSS after start-up, MiB", (double)idle.rss_kb / 1024.0, 1, true);
    figure(out, "server RSS after all of the above, MiB", (double)end.rss_kb / 1024.0, 1, true);

    load_pool_stop(&one);
    load_pool_stop(&desks);
    uv_run(&loop, UV_RUN_DEFAULT);
    load_pool_free(&one);
    load_pool_free(&desks);
    uv_loop_close(&loop);
    int status = stop_kefu(pid);
    if (status != 0)
        load_progress("kefu exited with %d", status);
}

/* ---- the two halves of the view counts, through the store's own read path ---- */

static int team_counted(void *ctx, int64_t team_id, const int64_t *counts)
{
    (void)team_id;
    (void)counts;
    ++*(int *)ctx;
    return 0;
}

static void counted(void *ctx, const kf_store_result_t *result)
{
    if (result->rc != 0)
        fill_die("a count failed", NULL);
    (void)ctx;
}

/* GET /api/conversations/counts is two reads: the desk's seven counts and every team's. Each
 * timed alone (queued, then flush: the loop's work without the HTTP around it), runs times. */
static void time_counts(const config_t *cfg, const char *path, figures_t *out)
{
    kf_store_t *store = NULL;
    if (kf_store_open_sqlite(path, "NORMAL", &store) != 0)
        fill_die("kf_store_open_sqlite", NULL);
    double *desk = calloc((size_t)cfg->runs, sizeof *desk);
    double *teams = calloc((size_t)cfg->runs, sizeof *teams);
    for (int i = 0; i < cfg->runs; i++) {
        double t0 = fill_now_s();
        if (store->ops->conversation_counts(store, 1, counted, NULL) != 0)
            fill_die("conversation_counts refused", NULL);
        store->ops->flush(store);
        desk[i] = (fill_now_s() - t0) * 1000.0;
        int seen = 0;
        t0 = fill_now_s();
        if (store->ops->conversation_team_counts(store, 1, team_counted, counted, &seen) != 0)
            fill_die("conversation_team_counts refused", NULL);
        store->ops->flush(store);
        teams[i] = (fill_now_s() - t0) * 1000.0;
    }
    kf_store_close(store);
    qsort(desk, (size_t)cfg->runs, sizeof *desk, compare_double);
    qsort(teams, (size_t)cfg->runs, sizeof *teams, compare_double);
    figure(out, "view counts' read, the desk's seven (store), p50 ms",
           percentile(desk, cfg->runs, 0.5), 2, true);
    figure(out, "view counts' read, every team's (store), p50 ms",
           percentile(teams, cfg->runs, 0.5), 2, true);
    free(desk);
    free(teams);
}

/* What a fill leaves beside the store (history.txt), so that --reuse can measure it again. */
static void save_fill(const char *dir, const config_t *cfg, const filler_t *f, double seconds)
{
    char file[600];
    snprintf(file, sizeof file, "%s/history.txt", dir);
    FILE *out = fopen(file, "w");
    if (out == NULL)
        fill_die("history.txt", NULL);
    fprintf(out, "%ld %ld %.3f %" PRId64 " %" PRId64 "\n", cfg->conversations, cfg->messages,
            seconds, f->replay_id, f->replay_resume_after);
    fclose(out);
}

/* The fill's figures from history.txt; false when there is none for this size. */
static bool load_fill(const char *dir, const config_t *cfg, filler_t *f, double *seconds)
{
    char file[600];
    snprintf(file, sizeof file, "%s/history.txt", dir);
    FILE *in = fopen(file, "r");
    if (in == NULL)
        return false;
    long conversations, messages;
    memset(f, 0, sizeof *f);
    bool ok = fscanf(in, "%ld %ld %lf %" SCNd64 " %" SCNd64, &conversations, &messages, seconds,
                     &f->replay_id, &f->replay_resume_after) == 5 &&
              conversations == cfg->conversations && messages == cfg->messages;
    fclose(in);
    return ok;
}

/* Fills a store of cfg's size under root (or, with reuse, takes the one a run with --keep left
 * there) and measures it. */
static void run_size(const config_t *cfg, const char *root, bool keep, bool reuse, figures_t *out)
{
    char dir[512], path[600], wal[620];
    snprintf(dir, sizeof dir, "%s/c%ld", root, cfg->conversations);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        fill_die("mkdir", NULL);
    snprintf(path, sizeof path, "%s/kefu.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    out->count = 0;
    figure(out, "conversations", (double)cfg->conversations, 0, false);
    figure(out, "messages", (double)cfg->messages, 0, false);
    filler_t f;
    double seconds;
    if (reuse && file_bytes(path) > 0) {
        if (!load_fill(dir, cfg, &f, &seconds))
            fill_die("--reuse: the store there is not of this size (see its history.txt)", NULL);
        load_progress("measuring the store filled before in %s", path);
    } else {
        if (file_bytes(path) > 0)
            fill_die("the directory holds a kefu.db already: give an empty one, or --reuse", NULL);
        load_progress("filling %ld conversations, %ld messages into %s", cfg->conversations,
                      cfg->messages, path);
        seconds = fill(cfg, path, &f);
        save_fill(dir, cfg, &f, seconds);
    }
    figure(out, "fill, s", seconds, 1, false);
    figure(out, "fill, messages a second", (double)cfg->messages / seconds, 0, false);
    double bytes = file_bytes(path) + file_bytes(wal);
    figure(out, "database on disk (after a checkpoint), MiB", bytes / 1048576.0, 1, false);
    figure(out, "bytes on disk per message", bytes / (double)cfg->messages, 0, true);
    measure(cfg, dir, &f, out);
    time_counts(cfg, path, out);
    if (!keep) {
        static const char *const files[] = {"kefu.db", "kefu.db-wal", "kefu.db-shm", "kefu.log",
                                            "history.txt"};
        for (size_t i = 0; i < COUNT(files); i++) {
            char file[700];
            snprintf(file, sizeof file, "%s/%s", dir, files[i]);
            unlink(file);
        }
        rmdir(dir);
    }
}

static void print_one(const figures_t *f)
{
    printf("| figure | value |\n| --- | --- |\n");
    for (int i = 0; i < f->count; i++) {
        char v[32];
        printf("| %s | %s |\n", f->rows[i].name,
               load_fmt(v, sizeof v, f->rows[i].value, f->rows[i].decimals));
    }
}

static void print_compare(const figures_t *small, const figures_t *large)
{
    printf("| figure | %.0f conversations | %.0f conversations | large / small |\n"
           "| --- | --- | --- | --- |\n",
           small->rows[0].value, large->rows[0].value);
    int over = 0;
    for (int i = 0; i < small->count && i < large->count; i++) {
        const figure_t *s = &small->rows[i], *l = &large->rows[i];
        char a[32], b[32], r[48] = "";
        double ratio = s->value > 0 ? l->value / s->value : NAN;
        if (s->compared && !isnan(ratio)) {
            bool fails = ratio > 2.0;
            over += fails;
            snprintf(r, sizeof r, "%.2f%s", ratio, fails ? " **over 2×**" : "");
        } else if (!isnan(ratio)) {
            snprintf(r, sizeof r, "(%.1f)", ratio);
        }
        printf("| %s | %s | %s | %s |\n", s->name, load_fmt(a, sizeof a, s->value, s->decimals),
               load_fmt(b, sizeof b, l->value, l->decimals), r);
    }
    printf("\n%d figures over the 2× target\n", over);
}

int main(int argc, char **argv)
{
    load_tool_name("kf_history_bench");
    signal(SIGPIPE, SIG_IGN);
    const char *env = getenv("KEFU_BIN");
    config_t cfg = {.conversations = SMALL_CONVERSATIONS,
                    .messages = 0,
                    .per_day = 350,
                    .agents = 200,
                    .teams = 20,
                    .seconds = 10,
                    .runs = 20,
                    .kefu = env != NULL && env[0] != '\0' ? env : "build/kefu"};
    bool compare = false, keep = false, reuse = false;
    const char *root = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool value = i + 1 < argc;
        if (strcmp(a, "--conversations") == 0 && value)
            cfg.conversations = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--messages") == 0 && value)
            cfg.messages = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--per-day") == 0 && value)
            cfg.per_day = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--agents") == 0 && value)
            cfg.agents = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--teams") == 0 && value)
            cfg.teams = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--seconds") == 0 && value)
            cfg.seconds = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--runs") == 0 && value)
            cfg.runs = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--kefu") == 0 && value)
            cfg.kefu = argv[++i];
        else if (strcmp(a, "--compare") == 0)
            compare = true;
        else if (strcmp(a, "--keep") == 0)
            keep = true;
        else if (strcmp(a, "--reuse") == 0)
            reuse = keep = true;
        else if (a[0] != '-' && root == NULL)
            root = a;
        else
            fill_die("usage: kf_history_bench [--conversations C] [--messages M] [--per-day D] "
                     "[--agents A] [--teams T] [--seconds S] [--runs R] [--kefu PATH] "
                     "[--compare] [--keep] [--reuse] [DIR]",
                     NULL);
    }
    if (cfg.messages == 0)
        cfg.messages = cfg.conversations * 20;
    if (cfg.conversations < 1000 || cfg.conversations > 5000000 ||
        cfg.messages < 4 * cfg.conversations + REPLAY_MESSAGES ||
        cfg.messages > 100 * cfg.conversations || cfg.per_day < 1 || cfg.per_day > 86400 ||
        cfg.agents < LOGGED_IN || cfg.agents > 10000 || cfg.teams < 1 || cfg.teams > 1000 ||
        cfg.seconds < 1 || cfg.seconds > 600 || cfg.runs < 1 || cfg.runs > 1000)
        fill_die("--conversations 1,000 to 5,000,000, --messages 4 to 100 a conversation, "
                 "--per-day 1 to 86,400, --agents 20 to 10,000, --teams 1 to 1,000, "
                 "--seconds 1 to 600, --runs 1 to 1,000",
                 NULL);
    if (access(cfg.kefu, X_OK) != 0)
        fill_die("no kefu binary to run: give --kefu PATH or KEFU_BIN", NULL);
    char tmp[] = "/tmp/kf-history-bench.XXXXXX";
    if (root == NULL && (root = mkdtemp(tmp)) == NULL)
        fill_die("mkdtemp", NULL);
    if (mkdir(root, 0700) != 0 && errno != EEXIST)
        fill_die("mkdir DIR", NULL);
    if (compare && cfg.conversations <= SMALL_CONVERSATIONS)
        fill_die("--compare: give more than 10,000 conversations (the small store has those)",
                 NULL);

    static figures_t small, large;
    if (compare) {
        config_t s = cfg;
        s.conversations = SMALL_CONVERSATIONS;
        s.messages = cfg.messages * SMALL_CONVERSATIONS / cfg.conversations;
        run_size(&s, root, keep, reuse, &small);
    }
    run_size(&cfg, root, keep, reuse, &large);
    printf("\n");
    if (compare)
        print_compare(&small, &large);
    else
        print_one(&large);
    if (!keep && root == tmp)
        rmdir(root);
    return 0;
}
