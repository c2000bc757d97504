/* test_chat.c: the chat layer (src/chat) over a real server and a store that fails on demand
 * (failing_store.h): a store failure in any handler answers a 500 JSON error, is logged and
 * publishes nothing; an allocation failure inside jansson (fault.h) gives an answer, never a
 * crash; LeakSanitizer (the ASan build) checks that the clean-up paths free everything. The
 * tests look only at what a client sees (status, JSON body, WebSocket frames) and what the hub
 * publishes, so they hold however the writes are batched and committed.
 *
 * The loop runs on the test's own thread: a request is written whole on a blocking socket, then
 * the loop is turned until the server has answered and closed the connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "chat/chat.h"
#include "store/sync.h"
#include "support/failing_store.h"
#include "support/fault.h"

#define AGENT_EMAIL "agent@example.com"
#define AGENT_PASSWORD "correct horse battery"
#define REQUEST_TIMEOUT_MS 10000

typedef struct fixture {
    uv_loop_t loop;
    char dir[64]; /* temporary directory holding the database */
    char path[128];
    kf_store_t *store; /* a failing store over SQLite */
    kf_app_t *app;
    kf_server_t *server;
    int port;
    kf_sub_t agents_sub;  /* counts the events on the agents' topic */
    kf_sub_t visitor_sub; /* ... and on the visitor's */
    int agent_events;
    int visitor_events;
    char visitor_token[128]; /* a visitor with one conversation and one message */
    int64_t visitor_id;
    int64_t conversation_id;
    int64_t message_id;
    char new_visitor_token[128]; /* a visitor who has no conversation yet */
    char session_cookie[160];    /* the agent's "kefu_session=..." */
    char csrf[128];
} fixture_t;

static fixture_t *fx;

/* What a client saw of one request, and what the server logged meanwhile. */
typedef struct response {
    int status;
    char *raw;        /* status line, headers and body as received */
    const char *body; /* inside raw */
    json_t *json;     /* the body parsed, or NULL */
    char log[8192];
} response_t;

typedef enum { AS_NOBODY, AS_VISITOR, AS_NEW_VISITOR, AS_AGENT } who_t;

static void response_free(response_t *r)
{
    if (r == NULL)
        return;
    json_decref(r->json);
    free(r->raw);
    free(r);
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

static int connect_client(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    return fd;
}

/* Turns the loop until fd has at least want bytes more in *in (want 0: until the peer closes).
 * Returns false on timeout. */
static bool pump(int fd, kf_buf_t *in, size_t want)
{
    size_t start = in->len;
    uint64_t deadline = uv_hrtime() / 1000000 + REQUEST_TIMEOUT_MS;
    while (uv_hrtime() / 1000000 < deadline) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        char chunk[4096];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n > 0) {
            kf_buf_append(in, chunk, (size_t)n);
            if (want > 0 && in->len - start >= want)
                return true;
            continue;
        }
        if (n == 0)
            return want == 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 1);
    }
    return false;
}

/* stderr goes to a temporary file while the server works, so that a test can read the log. */
typedef struct capture {
    int saved_fd;
    FILE *file;
} capture_t;

static void capture_begin(capture_t *c)
{
    fflush(stderr);
    c->saved_fd = dup(2);
    c->file = tmpfile();
    assert_non_null(c->file);
    dup2(fileno(c->file), 2);
}

/* Ends the capture, copies the log into out and echoes it to the real stderr. */
static void capture_end(capture_t *c, char *out, size_t size)
{
    fflush(stderr);
    dup2(c->saved_fd, 2);
    close(c->saved_fd);
    rewind(c->file);
    size_t n = fread(out, 1, size - 1, c->file);
    out[n] = '\0';
    fclose(c->file);
    fputs(out, stderr);
}

/* Sends one request (body, when not NULL, as JSON) and turns the loop until it is answered. With
 * fail_nth > 0 the nth jansson allocation made meanwhile fails; *fired tells whether it did. */
static response_t *request_ex(who_t who, const char *method, const char *path, const char *body,
                              unsigned long fail_nth, bool *fired)
{
    kf_buf_t out;
    kf_buf_init(&out);
    kf_buf_printf(&out, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    if (who == AS_VISITOR)
        kf_buf_printf(&out, "Authorization: Bearer %s\r\n", fx->visitor_token);
    else if (who == AS_NEW_VISITOR)
        kf_buf_printf(&out, "Authorization: Bearer %s\r\n", fx->new_visitor_token);
    else if (who == AS_AGENT)
        kf_buf_printf(&out, "Cookie: %s\r\nX-CSRF-Token: %s\r\n", fx->session_cookie, fx->csrf);
    if (body != NULL)
        kf_buf_printf(&out, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen(body), body);
    else
        kf_buf_append_str(&out, "\r\n");
    int fd = connect_client();
    send_all(fd, out.data, out.len);
    kf_buf_free(&out);
    fcntl(fd, F_SETFL, O_NONBLOCK);

    response_t *r = calloc(1, sizeof *r);
    kf_buf_t in;
    kf_buf_init(&in);
    capture_t capture;
    capture_begin(&capture);
    fault_jansson_fail_nth(fail_nth);
    bool done = pump(fd, &in, 0);
    if (fired != NULL)
        *fired = fault_jansson_fired();
    fault_jansson_fail_nth(0);
    capture_end(&capture, r->log, sizeof r->log);
    close(fd);
    assert_true(done);

    r->raw = kf_buf_steal(&in, NULL);
    assert_int_equal(sscanf(r->raw, "HTTP/1.1 %d", &r->status), 1);
    const char *end = strstr(r->raw, "\r\n\r\n");
    assert_non_null(end);
    r->body = end + 4;
    if (r->body[0] != '\0')
        r->json = json_loads(r->body, 0, NULL);
    return r;
}

static response_t *request(who_t who, const char *method, const char *path, const char *body)
{
    return request_ex(who, method, path, body, 0, NULL);
}

/* The error code of a JSON error answer, or "". */
static const char *error_code(const response_t *r)
{
    const char *code =
        json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
    return code != NULL ? code : "";
}

static void agents_cb(kf_sub_t *sub, kf_event_t *event)
{
    (void)event;
    ((fixture_t *)sub->data)->agent_events++;
}

static void visitor_cb(kf_sub_t *sub, kf_event_t *event)
{
    (void)event;
    ((fixture_t *)sub->data)->visitor_events++;
}

/* Creates a visitor and copies its token; returns its id. */
static int64_t create_visitor(char *token, size_t size)
{
    response_t *r = request(AS_NOBODY, "POST", "/api/visitor/session", "{\"name\":\"Vera\"}");
    assert_int_equal(r->status, 201);
    snprintf(token, size, "%s", json_string_value(json_object_get(r->json, "token")));
    int64_t id = json_integer_value(json_object_get(json_object_get(r->json, "visitor"), "id"));
    response_free(r);
    assert_true(id > 0);
    return id;
}

static void log_in(void)
{
    response_t *r = request(AS_NOBODY, "POST", "/api/agent/login",
                            "{\"email\":\"" AGENT_EMAIL "\",\"password\":\"" AGENT_PASSWORD "\"}");
    assert_int_equal(r->status, 200);
    const char *cookie = strstr(r->raw, "Set-Cookie: kefu_session=");
    assert_non_null(cookie);
    cookie += strlen("Set-Cookie: ");
    snprintf(fx->session_cookie, sizeof fx->session_cookie, "%.*s", (int)strcspn(cookie, ";\r"),
             cookie);
    snprintf(fx->csrf, sizeof fx->csrf, "%s", json_string_value(json_object_get(r->json, "csrf")));
    response_free(r);
}

static int group_setup(void **state)
{
    fx = calloc(1, sizeof *fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/kefu-test-chat-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/kefu.db", fx->dir);
    assert_int_equal(failing_store_open(fx->path, &fx->store), 0);
    fault_jansson_install();
    assert_int_equal(kf_app_create_agent(fx->store, AGENT_EMAIL, "Agnes", "agent", AGENT_PASSWORD),
                     0);

    kf_app_config_t config;
    kf_app_config_default(&config);
    /* The tests send far more than a person would: no abuse limits. */
    config.visitor_requests_per_minute = 0;
    config.visitor_messages_per_minute = 0;
    config.visitor_sessions_per_minute = 0;
    kf_push_config_t push_config;
    kf_push_config_default(&push_config);
    int err = 0;
    fx->app = kf_app_new(&fx->loop, fx->store, &config, &push_config, &err);
    assert_non_null(fx->app);
    kf_server_config_t server_config;
    kf_server_config_default(&server_config);
    server_config.host = "127.0.0.1";
    server_config.port = 0;
    assert_int_equal(
        kf_server_start(&fx->loop, &server_config, kf_app_handle, fx->app, &fx->server), 0);
    fx->port = kf_server_port(fx->server);

    kf_sub_init(&fx->agents_sub, agents_cb, fx);
    kf_hub_subscribe(fx->app->hub, KF_AGENTS_TOPIC, &fx->agents_sub);
    fx->visitor_id = create_visitor(fx->visitor_token, sizeof fx->visitor_token);
    create_visitor(fx->new_visitor_token, sizeof fx->new_visitor_token);
    char topic[40];
    kf_chat_visitor_topic(fx->visitor_id, topic, sizeof topic);
    kf_sub_init(&fx->visitor_sub, visitor_cb, fx);
    kf_hub_subscribe(fx->app->hub, topic, &fx->visitor_sub);

    response_t *r = request(AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"hello\"}");
    assert_int_equal(r->status, 201);
    json_t *message = json_object_get(r->json, "message");
    fx->message_id = json_integer_value(json_object_get(message, "id"));
    fx->conversation_id = json_integer_value(json_object_get(message, "conversation_id"));
    response_free(r);
    assert_true(fx->message_id > 0 && fx->conversation_id > 0);
    log_in();
    *state = fx;
    return 0;
}

static void server_stopped_cb(void *data)
{
    fixture_t *f = data;
    kf_app_free(f->app);
    f->app = NULL;
}

static int group_teardown(void **state)
{
    (void)state;
    kf_hub_unsubscribe(fx->app->hub, &fx->agents_sub);
    kf_hub_unsubscribe(fx->app->hub, &fx->visitor_sub);
    kf_app_drain(fx->app);
    kf_server_stop(fx->server, server_stopped_cb, fx);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_null(fx->app);
    kf_store_close(fx->store);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    static const char *const files[] = {"kefu.db", "kefu.db-wal", "kefu.db-shm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s/%s", fx->dir, files[i]);
        unlink(path);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    failing_store_reset(fx->store);
    fx->agent_events = 0;
    fx->visitor_events = 0;
    return 0;
}

/* Copies template into out with {c} replaced by the conversation id and {m} by the message id. */
static void expand(const char *template, char *out, size_t size)
{
    size_t len = 0;
    for (const char *p = template; *p != '\0' && len + 24 < size; p++) {
        if (strncmp(p, "{c}", 3) == 0 || strncmp(p, "{m}", 3) == 0) {
            int64_t value = p[1] == 'c' ? fx->conversation_id : fx->message_id;
            len += (size_t)snprintf(out + len, size - len, "%lld", (long long)value);
            p += 2;
        } else {
            out[len++] = *p;
        }
    }
    out[len] = '\0';
}

/* ---- store failures ---- */

typedef struct store_case {
    const char *name;
    who_t who;
    const char *method;
    const char *path;  /* {c}: the conversation, {m}: the message */
    const char *body;  /* JSON, or NULL */
    size_t op;         /* the operation that fails... */
    unsigned long nth; /* ...at its nth call during the request */
    int status;        /* what the client is answered */
} store_case_t;

#define LOGIN_BODY "{\"email\":\"" AGENT_EMAIL "\",\"password\":\"" AGENT_PASSWORD "\"}"

/* Every case authenticates through the store (the caches are emptied first), so the
 * completions (FS_OP(complete)) a request waits for are: its credential's (one for a visitor, two
 * for an agent: session, then account), then its own lookups and writes, in order. */
static const store_case_t store_cases[] = {
    {"visitor session", AS_NOBODY, "POST", "/api/visitor/session", "{\"name\":\"Bo\"}",
     FS_OP(visitor_create), 1, 500},
    {"visitor send: new conversation", AS_NEW_VISITOR, "POST", "/api/visitor/messages",
     "{\"body\":\"lost\"}", FS_OP(complete), 2, 500},
    {"visitor send: message insert", AS_VISITOR, "POST", "/api/visitor/messages",
     "{\"body\":\"lost\"}", FS_OP(message_add), 1, 500},
    {"visitor send: commit", AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"lost\"}",
     FS_OP(complete), 2, 500},
    {"visitor history", AS_VISITOR, "GET", "/api/visitor/messages", NULL,
     FS_OP(messages_of_visitor), 1, 500},
    {"visitor read: message lookup", AS_VISITOR, "POST", "/api/visitor/read", "{\"up_to\":{m}}",
     FS_OP(messages_of_visitor), 1, 500},
    {"visitor read: mark", AS_VISITOR, "POST", "/api/visitor/read", "{\"up_to\":{m}}",
     FS_OP(conversation_mark_read), 1, 500},
    {"visitor read: commit", AS_VISITOR, "POST", "/api/visitor/read", "{\"up_to\":{m}}",
     FS_OP(complete), 3, 500},
    {"visitor typing", AS_VISITOR, "POST", "/api/visitor/typing", "{\"typing\":true}",
     FS_OP(conversation_find_open), 1, 500},
    {"visitor poll replay", AS_VISITOR, "GET", "/push/poll", NULL, FS_OP(messages_of_visitor), 1,
     500},
    {"agent poll replay", AS_AGENT, "GET", "/push/poll", NULL, FS_OP(messages_all), 1, 500},
    {"login: agent lookup", AS_NOBODY, "POST", "/api/agent/login", LOGIN_BODY,
     FS_OP(agent_by_email), 1, 500},
    {"login: session insert", AS_NOBODY, "POST", "/api/agent/login", LOGIN_BODY,
     FS_OP(session_create), 1, 500},
    {"conversation list", AS_AGENT, "GET", "/api/conversations", NULL, FS_OP(conversation_list), 1,
     500},
    {"one conversation", AS_AGENT, "GET", "/api/conversations/{c}", NULL, FS_OP(conversation_get),
     1, 500},
    {"conversation messages: lookup", AS_AGENT, "GET", "/api/conversations/{c}/messages", NULL,
     FS_OP(conversation_visitor), 1, 500},
    {"conversation messages: query", AS_AGENT, "GET", "/api/conversations/{c}/messages", NULL,
     FS_OP(messages_in_conversation), 1, 500},
    {"agent send: message insert", AS_AGENT, "POST", "/api/conversations/{c}/messages",
     "{\"body\":\"lost\"}", FS_OP(message_add), 1, 500},
    {"agent send: commit", AS_AGENT, "POST", "/api/conversations/{c}/messages",
     "{\"body\":\"lost\"}", FS_OP(complete), 3, 500},
    {"agent read: message lookup", AS_AGENT, "POST", "/api/conversations/{c}/read",
     "{\"up_to\":{m}}", FS_OP(messages_in_conversation), 1, 500},
    {"agent read: mark", AS_AGENT, "POST", "/api/conversations/{c}/read", "{\"up_to\":{m}}",
     FS_OP(conversation_mark_read), 1, 500},
    {"agent read: commit", AS_AGENT, "POST", "/api/conversations/{c}/read", "{\"up_to\":{m}}",
     FS_OP(complete), 4, 500},
    {"agent read: unknown conversation", AS_AGENT, "POST", "/api/conversations/999999/read",
     "{\"up_to\":1}", FS_OP(conversation_visitor), 1, 500},
    {"agent typing: conversation lookup", AS_AGENT, "POST", "/api/conversations/{c}/typing",
     "{\"typing\":true}", FS_OP(conversation_visitor), 1, 500},
    {"conversation status", AS_AGENT, "POST", "/api/conversations/{c}/status",
     "{\"status\":\"open\"}", FS_OP(conversation_set_status), 1, 500},
};

/* Empties the app's credential caches, so that the next request looks its caller up. */
static void forget_credentials(void)
{
    kf_auth_cache_clear(fx->app->agent_sessions);
    kf_auth_cache_clear(fx->app->visitor_tokens);
}

/* Each case twice: the store's call failing in its result (as a failed query or commit does),
 * and refused at once. */
static void test_store_failures(void **state)
{
    (void)state;
    char path[256], body[256];
    for (size_t i = 0; i < 2 * (sizeof store_cases / sizeof store_cases[0]); i++) {
        const store_case_t *c = &store_cases[i / 2];
        bool at_once = i % 2 == 1;
        print_message("store failure%s: %s\n", at_once ? " at once" : "", c->name);
        expand(c->path, path, sizeof path);
        if (c->body != NULL)
            expand(c->body, body, sizeof body);
        fx->agent_events = fx->visitor_events = 0;
        forget_credentials(); /* each case authenticates through the store */
        if (at_once)
            failing_store_refuse_nth(fx->store, c->op, c->nth, KF_ESTORE);
        else
            failing_store_fail_nth(fx->store, c->op, c->nth, KF_ESTORE);
        response_t *r = request(c->who, c->method, path, c->body != NULL ? body : NULL);
        assert_int_equal(failing_store_failures(fx->store), 1); /* the path was taken */
        failing_store_reset(fx->store);
        assert_int_equal(r->status, c->status);
        assert_non_null(r->json); /* a JSON error, also for the push endpoints */
        assert_string_equal(error_code(r), "internal");
        assert_non_null(strstr(r->raw, "Content-Type: application/json"));
        assert_non_null(strstr(r->log, "error")); /* logged at level error... */
        assert_non_null(strstr(r->log, "store")); /* ...as a store failure */
        assert_int_equal(fx->agent_events, 0);    /* nothing was published */
        assert_int_equal(fx->visitor_events, 0);
        response_free(r);
    }
    /* The server is unharmed: the same requests work again. */
    response_t *r = request(AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"after\"}");
    assert_int_equal(r->status, 201);
    response_free(r);
    assert_int_equal(fx->visitor_events, 1);
}

/* A failure after the write has been made does not undo it: the client is told it worked, and
 * only the agents' view of the conversation waits for the next change. */
static void test_store_failure_after_write(void **state)
{
    (void)state;
    char path[64];
    expand("/api/conversations/{c}/status", path, sizeof path);
    /* set_status succeeds; the conversation_get that publishes its state fails; the one that
     * answers succeeds. */
    failing_store_fail_nth(fx->store, FS_OP(conversation_get), 1, KF_ESTORE);
    response_t *r = request(AS_AGENT, "POST", path, "{\"status\":\"open\"}");
    assert_int_equal(failing_store_failures(fx->store), 1);
    assert_int_equal(r->status, 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r->json, "conversation"), "status")),
        "open");
    assert_int_equal(fx->agent_events, 0);
    response_free(r);
}

/* A store failure while authenticating is not a missing credential: the client must not throw
 * its token away (the visitor page would start a new session and lose its history). */
static void test_store_failure_while_authenticating(void **state)
{
    (void)state;
    static const struct {
        who_t who;
        const char *method;
        const char *path;
        const char *body;
        size_t op;
    } cases[] = {
        {AS_VISITOR, "GET", "/api/visitor/session", NULL, FS_OP(visitor_by_token)},
        {AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"x\"}", FS_OP(visitor_by_token)},
        {AS_VISITOR, "GET", "/push/poll", NULL, FS_OP(visitor_by_token)},
        {AS_AGENT, "GET", "/api/agent/me", NULL, FS_OP(session_get)},
        {AS_AGENT, "GET", "/api/agent/me", NULL, FS_OP(agent_by_id)},
        {AS_AGENT, "GET", "/api/conversations", NULL, FS_OP(session_get)},
        {AS_AGENT, "GET", "/push/poll", NULL, FS_OP(session_get)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("store failure while authenticating: %s %s\n", cases[i].method,
                      cases[i].path);
        forget_credentials();
        failing_store_fail_nth(fx->store, cases[i].op, 1, KF_ESTORE);
        response_t *r = request(cases[i].who, cases[i].method, cases[i].path, cases[i].body);
        assert_int_equal(failing_store_failures(fx->store), 1);
        failing_store_reset(fx->store);
        assert_int_equal(r->status, 500);
        assert_string_equal(error_code(r), "internal");
        assert_non_null(strstr(r->log, "store"));
        response_free(r);
    }
    assert_int_equal(fx->agent_events + fx->visitor_events, 0);
}

/* Logging out must end the session on the server, or a stolen cookie outlives the logout: when
 * the store cannot delete it the agent is told so. */
static void test_store_failure_on_logout(void **state)
{
    (void)state;
    failing_store_fail_nth(fx->store, FS_OP(session_delete), 1, KF_ESTORE);
    response_t *r = request(AS_AGENT, "POST", "/api/agent/logout", "{}");
    assert_int_equal(failing_store_failures(fx->store), 1);
    assert_int_equal(r->status, 500);
    assert_null(strstr(r->raw, "Max-Age=0")); /* the cookie is kept: the session still works */
    response_free(r);
    r = request(AS_AGENT, "GET", "/api/agent/me", NULL);
    assert_int_equal(r->status, 200);
    response_free(r);
}

/* ---- allocation failures inside jansson ---- */

typedef struct oom_case {
    who_t who;
    const char *method;
    const char *path;
    const char *body;
} oom_case_t;

/* Reads first: every request of the loop over a write stores one more row for them to list. */
static const oom_case_t oom_cases[] = {
    {AS_NOBODY, "GET", "/healthz", NULL},
    {AS_VISITOR, "GET", "/api/visitor/session", NULL},
    {AS_VISITOR, "GET", "/api/visitor/messages", NULL},
    {AS_VISITOR, "GET", "/push/poll", NULL},
    {AS_AGENT, "GET", "/api/agent/me", NULL},
    {AS_AGENT, "GET", "/api/conversations", NULL},
    {AS_AGENT, "GET", "/api/conversations/{c}", NULL},
    {AS_AGENT, "GET", "/api/conversations/{c}/messages", NULL},
    {AS_AGENT, "GET", "/push/poll", NULL},
    {AS_NOBODY, "POST", "/api/visitor/session", "{\"name\":\"Oom\"}"},
    {AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"out of memory\"}"},
    {AS_VISITOR, "POST", "/api/visitor/read", "{\"up_to\":{m}}"},
    {AS_VISITOR, "POST", "/api/visitor/typing", "{\"typing\":true}"},
    {AS_VISITOR, "POST", "/api/visitor/push-ticket", "{}"},
    {AS_AGENT, "POST", "/api/conversations/{c}/messages", "{\"body\":\"out of memory\"}"},
    {AS_AGENT, "POST", "/api/conversations/{c}/read", "{\"up_to\":{m}}"},
    {AS_AGENT, "POST", "/api/conversations/{c}/typing", "{\"typing\":false}"},
    {AS_AGENT, "POST", "/api/conversations/{c}/status", "{\"status\":\"open\"}"},
};

/* Fails each jansson allocation of each request in turn: every answer is a well-formed HTTP
 * response (success, or an error status), and the server goes on serving. */
static void test_jansson_failures(void **state)
{
    (void)state;
    char path[256], body[256];
    for (size_t i = 0; i < sizeof oom_cases / sizeof oom_cases[0]; i++) {
        const oom_case_t *c = &oom_cases[i];
        expand(c->path, path, sizeof path);
        if (c->body != NULL)
            expand(c->body, body, sizeof body);
        unsigned long nth;
        for (nth = 1;; nth++) {
            bool fired = false;
            response_t *r =
                request_ex(c->who, c->method, path, c->body != NULL ? body : NULL, nth, &fired);
            if (!((r->status >= 200 && r->status < 300) || r->status == 400 || r->status == 500 ||
                  r->status == 503))
                fail_msg("%s %s, allocation %lu failing: answered %d\n%s", c->method, path, nth,
                         r->status, r->raw);
            response_free(r);
            if (!fired)
                break;
            assert_true(nth < 1000);
        }
        print_message("jansson failures: %s %s: %lu allocations\n", c->method, c->path, nth - 1);
        assert_true(nth > 1); /* the request did allocate: the test tried something */
    }
    response_t *r = request(AS_NOBODY, "GET", "/healthz", NULL);
    assert_int_equal(r->status, 200);
    response_free(r);
}

/* Agnes's message in conversation 3, visitor 2's. */
static kf_message_t agent_message(int64_t id, const char *agent_name, const char *body)
{
    return (kf_message_t){.id = id,
                          .conversation_id = 3,
                          .visitor_id = 2,
                          .sender = KF_SENDER_AGENT,
                          .agent_id = 1,
                          .agent_name = agent_name,
                          .body = body,
                          .created_at = 1};
}

/* A message event is the message's JSON text inside a few bytes: it must still be one valid JSON
 * object of the documented shape, "type" first (the SSE encoder reads it there), with hostile
 * text in the body kept intact. */
static void test_message_event_shape(void **state)
{
    (void)state;
    /* The id is past a JavaScript number's exact integers. */
    kf_message_t m = agent_message(9007199254740993, "Agnes \"A\"", "}\"],{\\</script>\n\xc3\xa9");
    kf_event_t *event = kf_chat_message_event(&m);
    assert_non_null(event);
    assert_int_equal(event->id, 9007199254740993u);
    assert_int_equal(event->len, strlen(event->json));
    assert_int_equal(strncmp(event->json, "{\"type\":\"message\",", 17), 0);
    json_error_t error;
    json_t *parsed = json_loadb(event->json, event->len, 0, &error);
    assert_non_null(parsed);
    assert_int_equal(json_object_size(parsed), 3);
    assert_string_equal(json_string_value(json_object_get(parsed, "id")), "9007199254740993");
    json_t *message = json_object_get(parsed, "message");
    assert_int_equal(json_integer_value(json_object_get(message, "id")), m.id);
    assert_string_equal(json_string_value(json_object_get(message, "body")), m.body);
    assert_string_equal(json_string_value(json_object_get(message, "agent_name")), m.agent_name);
    assert_string_equal(json_string_value(json_object_get(message, "sender")), "agent");
    /* The text alone is the same message. */
    char *text = kf_chat_message_text(&m);
    json_t *alone = json_loads(text, 0, &error);
    assert_true(json_equal(alone, message));
    json_decref(alone);
    free(text);
    json_decref(parsed);
    kf_event_unref(event);
}

/* The encoders return NULL when jansson cannot allocate, and publishing NULL does nothing. */
static void test_event_encoding_failures(void **state)
{
    (void)state;
    kf_message_t m = agent_message(7, "Agnes", "hi");
    kf_conversation_t c = {.id = 3,
                           .visitor_id = 2,
                           .visitor_name = "Vera",
                           .status = "open",
                           .has_last_message = true,
                           .last_message = m};
    unsigned long nth;
    for (nth = 1;; nth++) {
        fault_jansson_fail_nth(nth);
        kf_event_t *event = kf_chat_message_event(&m);
        json_t *conversation = kf_chat_conversation_json(&c);
        kf_event_t *conversation_event = kf_chat_event(0, conversation);
        bool fired = fault_jansson_fired();
        fault_jansson_fail_nth(0);
        if (event != NULL)
            assert_non_null(strstr(event->json, "\"type\":\"message\""));
        if (!fired) {
            assert_non_null(event);
            assert_non_null(conversation_event);
        }
        kf_chat_publish(fx->app, 2, true, event); /* takes the reference; NULL is ignored */
        kf_event_unref(conversation_event);
        if (!fired)
            break;
    }
    assert_true(nth > 3);
}

/* ---- WebSocket actions ---- */

/* Opens a WebSocket as the visitor (a non-browser client: no Origin, a Bearer token), or as the
 * agent (their session cookie). */
static int ws_open_as(who_t who, kf_buf_t *in)
{
    int fd = connect_client();
    char head[640], credential[320];
    if (who == AS_AGENT)
        snprintf(credential, sizeof credential, "Cookie: %s", fx->session_cookie);
    else
        snprintf(credential, sizeof credential, "Authorization: Bearer %s", fx->visitor_token);
    int n = snprintf(head, sizeof head,
                     "GET /push/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n\r\n",
                     credential);
    send_all(fd, head, (size_t)n);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (strstr(in->data != NULL ? in->data : "", "\r\n\r\n") == NULL)
        assert_true(pump(fd, in, 1));
    assert_non_null(strstr(in->data, "101 Switching Protocols"));
    kf_buf_consume(in, (size_t)(strstr(in->data, "\r\n\r\n") + 4 - in->data));
    return fd;
}

static int ws_open(kf_buf_t *in)
{
    return ws_open_as(AS_VISITOR, in);
}

/* Sends text as one masked text frame. */
static void ws_send(int fd, const char *text)
{
    size_t len = strlen(text);
    assert_true(len < 126);
    unsigned char frame[140] = {0x81, (unsigned char)(0x80 | len), 1, 2, 3, 4};
    for (size_t i = 0; i < len; i++)
        frame[6 + i] = (unsigned char)text[i] ^ frame[2 + i % 4];
    send_all(fd, (const char *)frame, 6 + len);
}

/* Reads text frames until one contains want; returns it (free it). */
static char *ws_read_until(int fd, kf_buf_t *in, const char *want)
{
    for (;;) {
        while (in->len < 2)
            assert_true(pump(fd, in, 1));
        size_t len = (unsigned char)in->data[1] & 0x7F, header = 2;
        if (len == 126) {
            while (in->len < 4)
                assert_true(pump(fd, in, 1));
            len = (size_t)((unsigned char)in->data[2] << 8 | (unsigned char)in->data[3]);
            header = 4;
        }
        assert_true(len < 65536);
        while (in->len < header + len)
            assert_true(pump(fd, in, 1));
        char *text = kf_xstrndup(in->data + header, len);
        kf_buf_consume(in, header + len);
        if (strstr(text, want) != NULL)
            return text;
        free(text);
    }
}

/* A store failure in an action over a WebSocket is an error reply to it (logged, nothing
 * published), and the connection goes on. An agent's socket opened with a cookie knows the agent
 * but not their name, which typing looks up. */
static void test_websocket_store_failures(void **state)
{
    (void)state;
    kf_buf_t in[2];
    int fds[2];
    for (int i = 0; i < 2; i++) {
        kf_buf_init(&in[i]);
        fds[i] = ws_open_as(i == 0 ? AS_VISITOR : AS_AGENT, &in[i]);
    }
    static const struct {
        int socket; /* 0: the visitor's, 1: the agent's */
        size_t op;
        const char *action; /* {c}: the conversation */
    } cases[] = {
        {0, FS_OP(message_add), "{\"type\":\"send\",\"ref\":\"s1\",\"body\":\"lost\"}"},
        {0, FS_OP(complete), "{\"type\":\"send\",\"ref\":\"s1\",\"body\":\"lost\"}"},
        {0, FS_OP(messages_of_visitor), "{\"type\":\"read\",\"ref\":\"s1\",\"up_to\":1}"},
        {0, FS_OP(conversation_find_open), "{\"type\":\"typing\",\"ref\":\"s1\",\"typing\":true}"},
        {1, FS_OP(agent_by_id),
         "{\"type\":\"typing\",\"ref\":\"s1\",\"conversation_id\":{c},\"typing\":true}"},
        {1, FS_OP(conversation_visitor),
         "{\"type\":\"typing\",\"ref\":\"s1\",\"conversation_id\":{c},\"typing\":true}"},
        {1, FS_OP(messages_in_conversation),
         "{\"type\":\"read\",\"ref\":\"s1\",\"conversation_id\":{c},\"up_to\":1}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = fds[cases[i].socket];
        char action[160];
        expand(cases[i].action, action, sizeof action);
        fx->agent_events = fx->visitor_events = 0;
        failing_store_fail_nth(fx->store, cases[i].op, 1, KF_ESTORE);
        capture_t capture;
        char log[4096];
        capture_begin(&capture);
        ws_send(fd, action);
        char *reply = ws_read_until(fd, &in[cases[i].socket], "\"s1\"");
        capture_end(&capture, log, sizeof log);
        assert_int_equal(failing_store_failures(fx->store), 1);
        failing_store_reset(fx->store);
        json_t *json = json_loads(reply, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(json, "type")), "error");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(json, "error"), "code")), "internal");
        assert_non_null(strstr(log, "store"));
        assert_int_equal(fx->agent_events + fx->visitor_events, 0);
        json_decref(json);
        free(reply);
    }
    /* The connections survive: the next action works (and the agent's typing shows their name). */
    ws_send(fds[0], "{\"type\":\"send\",\"ref\":\"ok\",\"body\":\"kept\"}");
    char *ack = ws_read_until(fds[0], &in[0], "\"ack\"");
    assert_non_null(strstr(ack, "\"ok\""));
    free(ack);
    char action[160];
    expand("{\"type\":\"typing\",\"conversation_id\":{c},\"typing\":true}", action, sizeof action);
    ws_send(fds[1], action);
    char *typing = ws_read_until(fds[1], &in[1], "\"agent_name\"");
    assert_non_null(strstr(typing, "\"agent_name\":\"Agnes\""));
    free(typing);
    for (int i = 0; i < 2; i++) {
        close(fds[i]);
        kf_buf_free(&in[i]);
    }
    /* Let the server see the closes. */
    for (int i = 0; i < 50; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

/* Actions that are not actions get an error naming their ref (when it is one), and the
 * connection goes on. */
static void test_websocket_bad_actions(void **state)
{
    (void)state;
    kf_buf_t in;
    kf_buf_init(&in);
    int fd = ws_open(&in);
    static const struct {
        const char *action;
        const char *reply; /* in the error */
    } cases[] = {
        {"not json", "\"bad_json\""},
        {"[1,2]", "\"bad_json\""},
        {"{\"ref\":[1]}", "\"ref\":null"},
        {"{\"ref\":\"t1\"}", "an action needs a"},
        {"{\"type\":\"dance\",\"ref\":5}", "\"ref\":5"},
        {"{\"type\":\"send\",\"ref\":6,\"body\":7}", "\"invalid\""},
        {"{\"type\":\"read\",\"ref\":7,\"up_to\":0}", "\"invalid\""},
        {"{\"type\":\"typing\",\"ref\":8,\"typing\":\"yes\"}", "\"invalid\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ws_send(fd, cases[i].action);
        char *reply = ws_read_until(fd, &in, "\"error\"");
        if (strstr(reply, cases[i].reply) == NULL)
            fail_msg("%s: %s", cases[i].action, reply);
        free(reply);
    }
    ws_send(fd, "{\"type\":\"ping\",\"ref\":\"p\"}");
    char *pong = ws_read_until(fd, &in, "\"pong\"");
    assert_non_null(strstr(pong, "\"ref\":\"p\""));
    free(pong);
    close(fd);
    kf_buf_free(&in);
    for (int i = 0; i < 50; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

/* ---- answers after the commit ---- */

/* Events in a poll answer. */
static size_t poll_events(const response_t *r)
{
    return json_array_size(json_object_get(r->json, "events"));
}

/* A stream that opens with a current cursor (a page load, a reconnect) is not replayed from the
 * store: the server knows nothing is stored above it. An older cursor, or a stream it knows
 * nothing about, is replayed as ever. */
static void test_replay_skipped_for_current_cursor(void **state)
{
    (void)state;
    char path[64];
    response_t *r = request(AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"two\"}");
    assert_int_equal(r->status, 201);
    int64_t second = json_integer_value(json_object_get(json_object_get(r->json, "message"), "id"));
    response_free(r);

    static const struct {
        who_t who;
        size_t op;
    } streams[] = {{AS_VISITOR, FS_OP(messages_of_visitor)}, {AS_AGENT, FS_OP(messages_all)}};
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        failing_store_reset(fx->store);
        snprintf(path, sizeof path, "/push/poll?after=%lld", (long long)second);
        r = request(streams[i].who, "GET", path, NULL);
        assert_int_equal(r->status, 200);
        assert_int_equal(poll_events(r), 0);
        response_free(r);
        /* Known from the messages published since the start: no query. */
        unsigned long asked = failing_store_calls(fx->store, streams[i].op);
        assert_int_equal(asked, 0);
        r = request(streams[i].who, "GET", path, NULL);
        assert_int_equal(poll_events(r), 0);
        response_free(r);
        assert_int_equal(failing_store_calls(fx->store, streams[i].op), asked);

        snprintf(path, sizeof path, "/push/poll?after=%lld", (long long)second - 1);
        r = request(streams[i].who, "GET", path, NULL);
        assert_int_equal(poll_events(r), 1); /* the second message, from the store */
        response_free(r);
        assert_int_equal(failing_store_calls(fx->store, streams[i].op), asked + 1);
    }
    /* A newer message moves the mark: the old current cursor is replayed again. */
    snprintf(path, sizeof path, "/api/conversations/%lld/messages", (long long)fx->conversation_id);
    r = request(AS_AGENT, "POST", path, "{\"body\":\"three\"}");
    assert_int_equal(r->status, 201);
    response_free(r);
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        snprintf(path, sizeof path, "/push/poll?after=%lld", (long long)second);
        r = request(streams[i].who, "GET", path, NULL);
        assert_int_equal(poll_events(r), 1);
        response_free(r);
    }
    /* Forgotten (a new app knows nothing): replayed from the store. */
    forget_credentials();
    kf_chat_newest_t *table = fx->app->newest_by_visitor;
    memset(table, 0, 16384 * sizeof *table);
    failing_store_reset(fx->store);
    snprintf(path, sizeof path, "/push/poll?after=%lld", (long long)second + 1);
    r = request(AS_VISITOR, "GET", path, NULL);
    assert_int_equal(poll_events(r), 0);
    response_free(r);
    assert_int_equal(failing_store_calls(fx->store, FS_OP(messages_of_visitor)), 1);
}

/* Keeps the newest message id seen (a store query's callback). */
static int newest_id_cb(void *ctx, const kf_message_t *m)
{
    int64_t *newest = ctx;
    if (m->id > *newest)
        *newest = m->id;
    return 0;
}

static void query_done_cb(void *ctx, const kf_store_result_t *result)
{
    (void)ctx;
    assert_int_equal(result->rc, 0);
}

/* The newest id of the fixture visitor's messages above after (after when there is none), read
 * straight from the store (the test's thread is the loop's: the store's callbacks run here). */
static int64_t newest_message(int64_t after)
{
    int64_t newest = after;
    assert_int_equal(fx->store->ops->messages_of_visitor(fx->store, fx->visitor_id, after, 1000,
                                                         newest_id_cb, query_done_cb, &newest),
                     0);
    kf_app_commit(fx->app);
    return newest;
}

/* A message stored but not published (jansson could not encode it once committed) is still
 * replayed: a cursor just below it must not pass for current and skip the store. Every jansson
 * allocation of a visitor's send fails in turn; after each, a poll from the cursor before it
 * returns exactly what the store holds past that cursor. */
static void test_unpublished_message_is_replayed(void **state)
{
    (void)state;
    int64_t cursor = newest_message(0);
    char path[64];
    unsigned long nth;
    size_t unpublished = 0;
    for (nth = 1;; nth++) {
        bool fired = false;
        response_t *r = request_ex(AS_VISITOR, "POST", "/api/visitor/messages",
                                   "{\"body\":\"maybe\"}", nth, &fired);
        int status = r->status;
        response_free(r);
        int64_t newest = newest_message(cursor);
        snprintf(path, sizeof path, "/push/poll?after=%lld", (long long)cursor);
        r = request(AS_VISITOR, "GET", path, NULL);
        assert_int_equal(r->status, 200);
        assert_int_equal(poll_events(r), newest > cursor ? 1 : 0);
        response_free(r);
        if (newest > cursor && status == 500)
            unpublished++;
        cursor = newest;
        if (!fired)
            break;
        assert_true(nth < 1000);
    }
    assert_true(unpublished > 0); /* the case under test did happen */
}

/* A client that goes away while its message waits for the commit: the message stands (stored and
 * published), only the answer is dropped. */
static void test_client_gone_before_commit(void **state)
{
    (void)state;
    char request_text[512];
    const char *body = "{\"body\":\"said and gone\"}";
    int n = snprintf(request_text, sizeof request_text,
                     "POST /api/visitor/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     fx->visitor_token, strlen(body), body);
    int fd = connect_client();
    send_all(fd, request_text, (size_t)n);
    close(fd); /* before the server has even read it */
    for (int i = 0; i < 200 && fx->visitor_events == 0; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(fx->visitor_events, 1);
    response_t *r = request(AS_VISITOR, "GET", "/api/visitor/messages", NULL);
    assert_non_null(strstr(r->body, "said and gone"));
    response_free(r);
}

/* Writes pipelined on one connection are answered in order, each after its commit. */
static void test_pipelined_writes(void **state)
{
    (void)state;
    kf_buf_t out;
    kf_buf_init(&out);
    for (int i = 0; i < 3; i++) {
        char body[64];
        int len = snprintf(body, sizeof body, "{\"body\":\"pipelined %d\"}", i);
        kf_buf_printf(&out,
                      "POST /api/visitor/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
                      "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n%s",
                      i == 2 ? "Connection: close\r\n" : "", fx->visitor_token, len, body);
    }
    int fd = connect_client();
    send_all(fd, out.data, out.len);
    kf_buf_free(&out);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    kf_buf_t in;
    kf_buf_init(&in);
    assert_true(pump(fd, &in, 0));
    close(fd);
    const char *first = strstr(in.data, "pipelined 0");
    const char *second = strstr(in.data, "pipelined 1");
    const char *third = strstr(in.data, "pipelined 2");
    assert_non_null(first);
    assert_non_null(second);
    assert_non_null(third);
    assert_true(first < second && second < third);
    int created = 0;
    for (const char *p = strstr(in.data, "HTTP/1.1 201"); p != NULL;
         p = strstr(p + 1, "HTTP/1.1 201"))
        created++;
    assert_int_equal(created, 3);
    assert_int_equal(fx->visitor_events, 3);
    kf_buf_free(&in);
}

/* ---- pages and routing ---- */

static void test_pages(void **state)
{
    (void)state;
    static const struct {
        const char *method;
        const char *path;
        int status;
        const char *has; /* in the head or body */
    } cases[] = {
        {"GET", "/", 302, "Location: /chat"},
        {"GET", "/chat", 200, "Content-Security-Policy: default-src 'self'"},
        {"GET", "/agent", 200, "X-Frame-Options: SAMEORIGIN"},
        {"GET", "/static/kefu.js", 200, "text/javascript"},
        {"HEAD", "/static/kefu.css", 200, "text/css"},
        {"GET", "/static/missing.js", 404, "not_found"},
        {"GET", "/static/../chat.html", 404, "not_found"},
        {"POST", "/static/kefu.js", 405, "method_not_allowed"},
        {"GET", "/no/such/page", 404, "not_found"},
        {"DELETE", "/healthz", 405, "method_not_allowed"},
        {"GET", "/healthz", 200, "\"status\":\"ok\""},
    };
    /* An agent naming a conversation that does not exist. */
    response_t *missing =
        request(AS_AGENT, "POST", "/api/conversations/999999/status", "{\"status\":\"closed\"}");
    assert_int_equal(missing->status, 404);
    assert_string_equal(error_code(missing), "not_found");
    response_free(missing);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        response_t *r = request(AS_NOBODY, cases[i].method, cases[i].path, NULL);
        if (r->status != cases[i].status || strstr(r->raw, cases[i].has) == NULL)
            fail_msg("%s %s: %d\n%.400s", cases[i].method, cases[i].path, r->status, r->raw);
        response_free(r);
    }
}

/* ---- start-up ---- */

static kf_app_t *start_app(uv_loop_t *loop, kf_store_t *store, const kf_app_config_t *config,
                           int *err)
{
    kf_push_config_t push_config;
    kf_push_config_default(&push_config);
    *err = 0;
    return kf_app_new(loop, store, config, &push_config, err);
}

static void stop_app(uv_loop_t *loop, kf_app_t *app)
{
    kf_app_free(app);
    uv_run(loop, UV_RUN_DEFAULT);
}

/* The app does not start without its ticket key (unreadable, unstorable or damaged) or with
 * limits that cannot be built, and says why; it leaves nothing behind. */
static void test_app_start_failures(void **state)
{
    (void)state;
    char dir[64], path[128];
    snprintf(dir, sizeof dir, "/tmp/kefu-test-chat-start-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/kefu.db", dir);
    kf_store_t *store;
    assert_int_equal(failing_store_open(path, &store), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    kf_app_config_t config;
    kf_app_config_default(&config);
    int err;

    failing_store_fail_nth(store, FS_OP(setting_get), 1, KF_ESTORE);
    assert_null(start_app(&loop, store, &config, &err));
    assert_int_equal(err, KF_ESTORE);
    failing_store_fail_nth(store, FS_OP(setting_set), 1, KF_ESTORE); /* a new key, not stored */
    assert_null(start_app(&loop, store, &config, &err));
    assert_int_equal(err, KF_ESTORE);
    failing_store_reset(store);

    static const char *const damaged[] = {
        "abc", "zz00000000000000000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        assert_int_equal(kf_store_sync_setting_set(store, "ticket_key", damaged[i]), 0);
        assert_null(start_app(&loop, store, &config, &err));
        assert_int_equal(err, KF_ESTORE);
    }
    assert_int_equal(kf_store_sync_setting_set(
                         store, "ticket_key",
                         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
                     0);

    kf_app_config_t bad = config;
    bad.login_failures_per_account = 0;
    assert_null(start_app(&loop, store, &bad, &err));
    assert_int_equal(err, KF_EINVAL);
    bad = config;
    bad.visitor_messages_burst = 0.5; /* a limit that is on needs a burst of at least one */
    assert_null(start_app(&loop, store, &bad, &err));
    assert_int_equal(err, KF_EINVAL);

    kf_app_t *app = start_app(&loop, store, &config, &err);
    assert_non_null(app);
    assert_int_equal(app->ticket_key[1], 0x11);
    stop_app(&loop, app);

    /* Accounts: checked before anything is hashed or stored; a store failure is passed on. */
    assert_int_equal(kf_app_create_agent(store, "a@example.com", "A", "owner", "pw"), KF_EINVAL);
    assert_int_equal(kf_app_create_agent(store, "nobody", "A", "agent", "pw"), KF_EINVAL);
    assert_int_equal(kf_app_create_agent(store, "@example.com", "A", "agent", "pw"), KF_EINVAL);
    assert_int_equal(kf_app_create_agent(store, "a@", "A", "agent", "pw"), KF_EINVAL);
    assert_int_equal(kf_app_create_agent(store, "a@example.com", "A", "agent", ""), KF_EINVAL);
    failing_store_fail_nth(store, FS_OP(agent_create), 1, KF_ESTORE);
    assert_int_equal(kf_app_create_agent(store, "a@example.com", "A", "agent", "pw"), KF_ESTORE);

    assert_int_equal(uv_loop_close(&loop), 0);
    kf_store_close(store);
    static const char *const files[] = {"kefu.db", "kefu.db-wal", "kefu.db-shm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char file[160];
        snprintf(file, sizeof file, "%s/%s", dir, files[i]);
        unlink(file);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_store_failures, test_setup),
        cmocka_unit_test_setup(test_store_failure_after_write, test_setup),
        cmocka_unit_test_setup(test_store_failure_while_authenticating, test_setup),
        cmocka_unit_test_setup(test_store_failure_on_logout, test_setup),
        cmocka_unit_test_setup(test_jansson_failures, test_setup),
        cmocka_unit_test(test_message_event_shape),
        cmocka_unit_test_setup(test_event_encoding_failures, test_setup),
        cmocka_unit_test_setup(test_websocket_store_failures, test_setup),
        cmocka_unit_test_setup(test_websocket_bad_actions, test_setup),
        cmocka_unit_test_setup(test_client_gone_before_commit, test_setup),
        cmocka_unit_test_setup(test_replay_skipped_for_current_cursor, test_setup),
        cmocka_unit_test_setup(test_unpublished_message_is_replayed, test_setup),
        cmocka_unit_test_setup(test_pipelined_writes, test_setup),
        cmocka_unit_test_setup(test_pages, test_setup),
        cmocka_unit_test(test_app_start_failures),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
