/* app_harness.h: the whole application inside one fuzzer process, for the targets that drive real
 * requests (fuzz_api.c, fuzz_ws_actions.c): a SQLite file in a fresh temporary directory, the app
 * and the HTTP server on a loopback port, one libuv loop turned by the fuzzer's own thread, and
 * plain non-blocking client sockets. Not a target itself (CMake builds fuzz/fuzz_*.c only).
 *
 * Everything is made once, by harness_start() from LLVMFuzzerInitialize. State (visitors,
 * messages, read marks, rate limits) carries over from one input to the next as in a live server,
 * so a crash may need the inputs before it: rerun the corpus directory, not only the crash file.
 * The fixture's credentials are fixed strings and the ticket key a fixed setting, so inputs that
 * carry them stay meaningful from one process to the next. */
#ifndef KF_FUZZ_APP_HARNESS_H
#define KF_FUZZ_APP_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "auth/auth.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "chat/app.h"
#include "chat/internal.h"
#include "http/server.h"
#include "store/store.h"
#include "store/sync.h"

/* By a path from this file: the fuzzers build with src/ on their include path only. */
#include "../tests/unit/support/remove_tree.h"

/* Any bytes do as tokens (the store keeps only their SHA-256), but like real ones they are 43
 * characters: the CSRF token must fit in KF_TOKEN_SIZE. */
#define HARNESS_VISITOR_TOKEN "fuzzVisitorToken-0123456789abcdefghijklmnop"
#define HARNESS_SESSION_TOKEN "fuzzAgentSession-0123456789abcdefghijklmnop"
#define HARNESS_CSRF_TOKEN "fuzzCsrfToken-0123456789abcdefghijklmnopqrs"
#define HARNESS_AGENT_EMAIL "agent@example.com"
#define HARNESS_AGENT_PASSWORD "kefu-fuzz"
#define HARNESS_TICKET_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/* Sessions and tickets of the fixture expire on 2100-01-01. */
#define HARNESS_FAR_FUTURE_MS 4102444800000LL
/* Loop turns without a new byte after which a request counts as held (long poll, a body that
 * never comes). Loopback bytes arrive at once, so only a held request ever waits this long. */
#define HARNESS_IDLE_TURNS 8

typedef struct harness {
    uv_loop_t loop;
    kf_store_t *store;
    kf_app_t *app;
    kf_server_t *server;
    int port;
    char dir[64];                        /* the temporary directory of the database */
    int64_t visitor_id;                  /* the fixture visitor (HARNESS_VISITOR_TOKEN) */
    int64_t conversation_id;             /* its conversation, with one message each way */
    int64_t agent_id;                    /* the fixture agent (HARNESS_SESSION_TOKEN) */
    char visitor_ticket[KF_TICKET_SIZE]; /* push tickets of both, valid until 2100 */
    char agent_ticket[KF_TICKET_SIZE];
} harness_t;

static harness_t harness;

/* abort() rather than assert(), so that the check survives -DNDEBUG builds; the message says
 * which invariant failed. */
static inline void harness_check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

/* Every number the server sends is exact in a JavaScript double (|n| <= 2^53), as the ids it
 * takes are (router, after=): browsers would otherwise see a different id. A client's own "ref"
 * is echoed as it came and is not checked. */
static inline void harness_check_numbers(json_t *value)
{
    const char *key;
    json_t *member;
    size_t index;
    if (json_is_integer(value)) {
        json_int_t n = json_integer_value(value);
        harness_check(n >= -((json_int_t)1 << 53) && n <= ((json_int_t)1 << 53),
                      "numbers sent are exact in a double");
    } else if (json_is_object(value)) {
        json_object_foreach(value, key, member)
        {
            if (strcmp(key, "ref") != 0)
                harness_check_numbers(member);
        }
    } else if (json_is_array(value)) {
        json_array_foreach(value, index, member)
        {
            harness_check_numbers(member);
        }
    }
}

/* The harness's directory, with the attachments the fuzzed uploads put in it. */
static inline void harness_remove_files(void)
{
    remove_tree(harness.dir);
}

/* Creates the database, the fixture's rows, the app and the server; aborts on any failure. */
static inline void harness_start(void)
{
    char path[128];
    int rc;

    kf_log_set_level(KF_LOG_OFF); /* a log line per refused request would drown the fuzzer */
    /* As kefu's main does: a client that resets its connection (the harness drops held ones)
     * before the server's answer is written must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    const char *tmp = getenv("TMPDIR");
    snprintf(harness.dir, sizeof harness.dir, "%s/kefu-fuzz-XXXXXX",
             tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
    harness_check(mkdtemp(harness.dir) != NULL, "mkdtemp");
    atexit(harness_remove_files);
    snprintf(path, sizeof path, "%s/kefu.db", harness.dir);
    /* synchronous=OFF: durability is not under test, and an fsync per message would cap the
     * fuzzer at a few hundred inputs a second. */
    harness_check(kf_store_open_sqlite(path, "OFF", &harness.store) == 0, "store open");
    kf_store_t *store = harness.store;
    harness_check(kf_store_sync_setting_set(store, "ticket_key", HARNESS_TICKET_KEY) == 0,
                  "ticket key");

    int64_t now = kf_clock_wall_ms();
    char hash[KF_HASH_HEX_SIZE];
    harness_check(kf_app_create_agent(store, HARNESS_AGENT_EMAIL, "Agent", "agent",
                                      HARNESS_AGENT_PASSWORD) == 0,
                  "agent");
    kf_auth_sha256_hex(HARNESS_SESSION_TOKEN, strlen(HARNESS_SESSION_TOKEN), hash);
    harness_check(kf_store_sync_agent_by_email(store, HARNESS_AGENT_EMAIL, &harness.agent_id) == 0,
                  "agent id");
    harness_check(kf_store_sync_session_create(store, hash, harness.agent_id, HARNESS_CSRF_TOKEN,
                                               now, HARNESS_FAR_FUTURE_MS) == 0,
                  "session");
    kf_auth_sha256_hex(HARNESS_VISITOR_TOKEN, strlen(HARNESS_VISITOR_TOKEN), hash);
    harness_check(kf_store_sync_visitor_create(store, hash, "Visitor", now, &harness.visitor_id) ==
                      0,
                  "visitor");
    kf_message_new_t hello = {.visitor_id = harness.visitor_id, .body = "hello", .now = now};
    kf_store_sync_message_t first;
    harness_check(kf_store_sync_message_add(store, &hello, &first) == 0, "conversation");
    harness.conversation_id = first.conversation_id;
    kf_message_new_t answer = {.conversation_id = harness.conversation_id,
                               .sender = KF_SENDER_AGENT,
                               .agent_id = harness.agent_id,
                               .body = "hi, how can I help?",
                               .now = now};
    harness_check(kf_store_sync_message_add(store, &answer, NULL) == 0, "messages");

    harness_check(uv_loop_init(&harness.loop) == 0, "loop");
    kf_app_config_t app_config;
    kf_push_config_t push_config;
    kf_app_config_default(&app_config);
    /* One fixture visitor sends every input: its abuse limits would answer 429 to nearly all of
     * them after the first minute. The login limits stay (they bound how often scrypt runs), and so
     * do the push connection limits (each input's held connection is gone before the next). */
    app_config.visitor_requests_per_minute = 0;
    app_config.visitor_messages_per_minute = 0;
    app_config.visitor_sessions_per_minute = 0;
    /* Tickets made once at start must outlive any fuzzing run. */
    app_config.ticket_ttl_ms = HARNESS_FAR_FUTURE_MS;
    kf_push_config_default(&push_config);
    harness.app = kf_app_new(&harness.loop, store, &app_config, &push_config, &rc);
    harness_check(harness.app != NULL, "app");
    harness_check(
        kf_authn_ticket(harness.app->authn, 'v', harness.visitor_id, harness.visitor_ticket) == 0 &&
            kf_authn_ticket(harness.app->authn, 'a', harness.agent_id, harness.agent_ticket) == 0,
        "tickets");

    kf_server_config_t config;
    kf_server_config_default(&config);
    config.host = "127.0.0.1";
    config.port = 0;
    harness_check(
        kf_server_start(&harness.loop, &config, kf_app_handle, harness.app, &harness.server) == 0,
        "server start");
    harness.port = kf_server_port(harness.server);
}

/* Opens a client connection to the server (non-blocking; the server accepts it on a later turn).
 * Closing it sends a reset, so that thousands of short connections leave no TIME_WAIT behind. */
static inline int harness_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    harness_check(fd >= 0, "socket");
    int one = 1;
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)harness.port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    harness_check(rc == 0 || errno == EINPROGRESS, "connect");
    return fd;
}

/* One turn of the loop without waiting: the server reads what clients sent and answers it. */
static inline void harness_turn(void)
{
    uv_run(&harness.loop, UV_RUN_NOWAIT);
}

/* Waits until the store has run what is queued (reads, and writes on its writer thread), and
 * runs what waits for it (the answers, and what they queue in turn), as the loop does once the
 * store wakes it: without this, how many turns an answer takes would depend on the writer's
 * timing. */
static inline void harness_commit(void)
{
    kf_app_commit(harness.app);
}

/* Sends all of data, turning the loop while the socket is full or not yet connected. Returns 0,
 * or -1 when the server closed the connection. */
static inline int harness_send(int fd, const void *data, size_t len)
{
    const char *at = data;
    int stalls = 0;
    while (len > 0) {
        ssize_t n = send(fd, at, len, MSG_NOSIGNAL);
        if (n > 0) {
            at += n;
            len -= (size_t)n;
            stalls = 0;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN ||
                      errno == EINPROGRESS || errno == EINTR)) {
            harness_check(++stalls < 100000, "send never drains");
            harness_turn();
            continue;
        }
        return -1;
    }
    return 0;
}

/* Turns the loop once and appends every byte now readable on fd to in. Returns the number of
 * bytes added (0 when none yet), or -1 when the server closed the connection. */
static inline long harness_receive(int fd, kf_buf_t *in)
{
    char chunk[16384];
    long total = 0;
    harness_turn();
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n > 0) {
            kf_buf_append(in, chunk, (size_t)n);
            total += n;
            continue;
        }
        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ENOTCONN))
            return total;
        return total > 0 ? total : -1; /* EOF or reset; the next call reports it */
    }
}

/* Turns the loop until it has nothing more to do for a while, so that closed client sockets are
 * seen and their server-side state freed before the next input. */
static inline void harness_settle(void)
{
    for (int i = 0; i < HARNESS_IDLE_TURNS; i++)
        harness_turn();
}

#endif
