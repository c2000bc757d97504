/* test_chat.c: the chat layer's API (src/chat) over a real server and a store that fails on
 * demand (tests/unit/support/chat_fixture.h): a store failure in any handler answers a 500 (or
 * 503) JSON error, is logged and publishes nothing; an allocation failure inside jansson (fault.h)
 * gives an answer, never a crash; LeakSanitizer (the ASan build) checks that the clean-up paths
 * free everything. The tests look only at what a client sees (status, JSON body) and what the hub
 * publishes, so they hold however the store batches and commits. test_live.c has the push
 * endpoints and WebSocket actions. */
#include "support/chat_fixture.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "store/sync.h"
#include "support/failing_store.h"
#include "support/fault.h"

/* ---- store failures ---- */

typedef struct store_case {
    const char *name;
    cf_who_t who;
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
     FS_OP(conversation_of_visitor), 1, 500},
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
    {"transcript: conversation", AS_AGENT, "GET", "/api/conversations/{c}/transcript", NULL,
     FS_OP(conversation_get), 1, 500},
    {"transcript: messages", AS_AGENT, "GET", "/api/conversations/{c}/transcript?format=txt", NULL,
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
    {"visitor session: the thread", AS_VISITOR, "GET", "/api/visitor/session", NULL,
     FS_OP(conversation_of_visitor), 1, 500},
    {"visitor session: the conversation", AS_VISITOR, "GET", "/api/visitor/session", NULL,
     FS_OP(conversation_get), 1, 500},
    {"conversation counts", AS_AGENT, "GET", "/api/conversations/counts", NULL,
     FS_OP(conversation_counts), 1, 500},
    {"claim", AS_AGENT, "POST", "/api/conversations/{c}/claim", NULL, FS_OP(conversation_claim), 1,
     500},
    {"assign", AS_AGENT, "POST", "/api/conversations/{c}/assign", "{\"agent_id\":null}",
     FS_OP(conversation_assign), 1, 500},
};

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
        cf_expand(c->path, path, sizeof path);
        if (c->body != NULL)
            cf_expand(c->body, body, sizeof body);
        cf->agent_events = cf->visitor_events = 0;
        cf_forget_credentials(); /* each case authenticates through the store */
        if (at_once)
            failing_store_refuse_nth(cf->store, c->op, c->nth, KF_ESTORE);
        else
            failing_store_fail_nth(cf->store, c->op, c->nth, KF_ESTORE);
        cf_response_t *r = cf_request(c->who, c->method, path, c->body != NULL ? body : NULL);
        assert_int_equal(failing_store_failures(cf->store), 1); /* the path was taken */
        failing_store_reset(cf->store);
        assert_int_equal(r->status, c->status);
        assert_non_null(r->json); /* a JSON error, also for the push endpoints */
        assert_string_equal(cf_error_code(r), "internal");
        assert_non_null(strstr(r->raw, "Content-Type: application/json"));
        assert_non_null(strstr(r->log, "error")); /* logged at level error... */
        assert_non_null(strstr(r->log, "store")); /* ...as a store failure */
        assert_int_equal(cf->agent_events, 0);    /* nothing was published */
        assert_int_equal(cf->visitor_events, 0);
        cf_response_free(r);
    }
    /* The server is unharmed: the same requests work again. */
    cf_response_t *r =
        cf_request(AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"after\"}");
    assert_int_equal(r->status, 201);
    cf_response_free(r);
    assert_int_equal(cf->visitor_events, 1);
}

/* A failure after the write has been made does not undo it: the client is told it worked, and
 * only the agents' view of the conversation waits for the next change. */
static void test_store_failure_after_write(void **state)
{
    (void)state;
    char path[64];
    cf_expand("/api/conversations/{c}/status", path, sizeof path);
    /* set_status succeeds; the conversation_get that publishes its state fails; the one that
     * answers succeeds. */
    failing_store_fail_nth(cf->store, FS_OP(conversation_get), 1, KF_ESTORE);
    cf_response_t *r = cf_request(AS_AGENT, "POST", path, "{\"status\":\"open\"}");
    assert_int_equal(failing_store_failures(cf->store), 1);
    assert_int_equal(r->status, 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r->json, "conversation"), "status")),
        "open");
    assert_int_equal(cf->agent_events, 0);
    cf_response_free(r);
}

/* A store failure while authenticating is not a missing credential: the client must not throw
 * its token away (the visitor page would start a new session and lose its history). */
static void test_store_failure_while_authenticating(void **state)
{
    (void)state;
    static const struct {
        cf_who_t who;
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
        cf_forget_credentials();
        failing_store_fail_nth(cf->store, cases[i].op, 1, KF_ESTORE);
        cf_response_t *r = cf_request(cases[i].who, cases[i].method, cases[i].path, cases[i].body);
        assert_int_equal(failing_store_failures(cf->store), 1);
        failing_store_reset(cf->store);
        assert_int_equal(r->status, 500);
        assert_string_equal(cf_error_code(r), "internal");
        assert_non_null(strstr(r->log, "store"));
        cf_response_free(r);
    }
    assert_int_equal(cf->agent_events + cf->visitor_events, 0);
}

/* Logging out must end the session on the server, or a stolen cookie outlives the logout: when
 * the store cannot delete it the agent is told so. */
static void test_store_failure_on_logout(void **state)
{
    (void)state;
    failing_store_fail_nth(cf->store, FS_OP(session_delete), 1, KF_ESTORE);
    cf_response_t *r = cf_request(AS_AGENT, "POST", "/api/agent/logout", "{}");
    assert_int_equal(failing_store_failures(cf->store), 1);
    assert_int_equal(r->status, 500);
    assert_null(strstr(r->raw, "Max-Age=0")); /* the cookie is kept: the session still works */
    cf_response_free(r);
    r = cf_request(AS_AGENT, "GET", "/api/agent/me", NULL);
    assert_int_equal(r->status, 200);
    cf_response_free(r);
}

/* ---- allocation failures inside jansson ---- */

typedef struct oom_case {
    cf_who_t who;
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
        cf_expand(c->path, path, sizeof path);
        if (c->body != NULL)
            cf_expand(c->body, body, sizeof body);
        unsigned long nth;
        for (nth = 1;; nth++) {
            bool fired = false;
            cf_response_t *r =
                cf_request_ex(c->who, c->method, path, c->body != NULL ? body : NULL, nth, &fired);
            if (!((r->status >= 200 && r->status < 300) || r->status == 400 || r->status == 500 ||
                  r->status == 503))
                fail_msg("%s %s, allocation %lu failing: answered %d\n%s", c->method, path, nth,
                         r->status, r->raw);
            cf_response_free(r);
            if (!fired)
                break;
            assert_true(nth < 1000);
        }
        print_message("jansson failures: %s %s: %lu allocations\n", c->method, c->path, nth - 1);
        assert_true(nth > 1); /* the request did allocate: the test tried something */
    }
    cf_response_t *r = cf_request(AS_NOBODY, "GET", "/healthz", NULL);
    assert_int_equal(r->status, 200);
    cf_response_free(r);
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
        kf_chat_publish(cf->app->hub, 2, true, event); /* takes the reference; NULL is ignored */
        kf_event_unref(conversation_event);
        if (!fired)
            break;
    }
    assert_true(nth > 3);
}

/* ---- WebSocket actions ---- */

/* ---- answers after the commit ---- */

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
                     cf->visitor_token, strlen(body), body);
    int fd = cf_connect();
    cf_send_all(fd, request_text, (size_t)n);
    close(fd); /* before the server has even read it */
    for (int i = 0; i < 200 && cf->visitor_events == 0; i++) {
        uv_run(&cf->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(cf->visitor_events, 1);
    cf_response_t *r = cf_request(AS_VISITOR, "GET", "/api/visitor/messages", NULL);
    assert_non_null(strstr(r->body, "said and gone"));
    cf_response_free(r);
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
                      i == 2 ? "Connection: close\r\n" : "", cf->visitor_token, len, body);
    }
    int fd = cf_connect();
    cf_send_all(fd, out.data, out.len);
    kf_buf_free(&out);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    kf_buf_t in;
    kf_buf_init(&in);
    assert_true(cf_pump(fd, &in, 0));
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
    assert_int_equal(cf->visitor_events, 3);
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
        {"GET", "/healthz", 200, "\"status\":\"ok\",\"writable\":true"},
        {"GET", "/chat", 200, "frame-ancestors 'self';"},
        {"GET", "/chat", 200, "X-Frame-Options: SAMEORIGIN"},
        {"GET", "/widget", 200, "frame-ancestors *;"},
        {"GET", "/widget", 200, "widget_frame.js"},
        {"GET", "/widget.js", 200, "Cache-Control: public, max-age=600"},
        {"HEAD", "/widget.js", 200, "text/javascript"},
        {"GET", "/static/widget.html", 200, "frame-ancestors 'self';"},
    };
    /* An agent naming a conversation that does not exist. */
    cf_response_t *missing = cf_request(AS_AGENT, "POST", "/api/conversations/999999/status",
                                        "{\"status\":\"resolved\"}");
    assert_int_equal(missing->status, 404);
    assert_string_equal(cf_error_code(missing), "not_found");
    cf_response_free(missing);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cf_response_t *r = cf_request(AS_NOBODY, cases[i].method, cases[i].path, NULL);
        if (r->status != cases[i].status || strstr(r->raw, cases[i].has) == NULL)
            fail_msg("%s %s: %d\n%.400s", cases[i].method, cases[i].path, r->status, r->raw);
        cf_response_free(r);
    }
    /* The widget's chat is framed by customers' sites: no X-Frame-Options, which would refuse
     * them whatever the policy says. */
    cf_response_t *widget = cf_request(AS_NOBODY, "GET", "/widget", NULL);
    assert_int_equal(widget->status, 200);
    assert_null(strstr(widget->raw, "X-Frame-Options"));
    cf_response_free(widget);
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

/* The field of the answer's "conversation" object. */
static json_t *conversation_field(const cf_response_t *r, const char *field)
{
    return json_object_get(json_object_get(r->json, "conversation"), field);
}

/* Sends one request and checks its status (and, for an error, its code and that the message
 * has hint); returns the answer (free it). */
static cf_response_t *expect(cf_who_t who, const char *method, const char *path, const char *body,
                             int status, const char *code, const char *hint)
{
    cf_response_t *r = cf_request(who, method, path, body);
    if (r->status != status)
        fail_msg("%s %s %s: %d\n%.400s", method, path, body != NULL ? body : "", r->status, r->raw);
    if (code != NULL) {
        assert_string_equal(cf_error_code(r), code);
        const char *message =
            json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
        assert_non_null(message);
        if (hint != NULL && strstr(message, hint) == NULL)
            fail_msg("%s %s: \"%s\" does not say \"%s\"", method, path, message, hint);
    }
    return r;
}

/* The conversation id in a list answer, or NULL. */
static json_t *listed(const cf_response_t *r, int64_t id)
{
    json_t *list = json_object_get(r->json, "conversations");
    for (size_t i = 0; i < json_array_size(list); i++) {
        if (json_integer_value(json_object_get(json_array_get(list, i), "id")) == id)
            return json_array_get(list, i);
    }
    return NULL;
}

/* The agent's count of one view. */
static int64_t count_of(const char *view)
{
    cf_response_t *r = expect(AS_AGENT, "GET", "/api/conversations/counts", NULL, 200, NULL, NULL);
    json_t *counts = json_object_get(r->json, "counts");
    assert_int_equal(json_object_size(counts), 7);
    json_t *count = json_object_get(counts, view);
    assert_true(json_is_integer(count));
    int64_t n = json_integer_value(count);
    cf_response_free(r);
    return n;
}

/* The desk over HTTP: views, counts, claims, assignments and statuses, what each refuses, and
 * what each publishes (the agents' topic for every change; the visitor's for a status). */
static void test_desk(void **state)
{
    (void)state;
    cf_log_in_admin();
    char path[96], claim[96], assign[96], status[96];
    cf_expand("/api/conversations/{c}/claim", claim, sizeof claim);
    cf_expand("/api/conversations/{c}/assign", assign, sizeof assign);
    cf_expand("/api/conversations/{c}/status", status, sizeof status);
    cf_response_t *r = expect(AS_ADMIN, "GET", "/api/agent/me", NULL, 200, NULL, NULL);
    int64_t admin = json_integer_value(json_object_get(json_object_get(r->json, "agent"), "id"));
    cf_response_free(r);

    /* Unassigned and open, as every conversation starts. */
    cf_response_free(expect(AS_AGENT, "GET", "/api/conversations?view=closed", NULL, 400,
                            "bad_request", "unassigned, mine, open, pending, resolved, snoozed"));
    r = expect(AS_AGENT, "GET", "/api/conversations?view=unassigned", NULL, 200, NULL, NULL);
    json_t *ours = listed(r, cf->conversation_id);
    assert_non_null(ours);
    assert_string_equal(json_string_value(json_object_get(ours, "status")), "open");
    assert_true(json_is_null(json_object_get(ours, "assignee")));
    assert_true(json_is_null(json_object_get(ours, "snoozed_until")));
    assert_true(json_is_null(json_object_get(r->json, "next")));
    cf_response_free(r);
    int64_t unassigned = count_of("unassigned");
    assert_true(unassigned >= 1);
    assert_int_equal(count_of("mine"), 0);
    assert_true(count_of("all") >= unassigned);

    /* A claim: the agent holds it, every console hears, the visitor does not. */
    cf->agent_events = cf->visitor_events = 0;
    r = expect(AS_AGENT, "POST", claim, NULL, 200, NULL, NULL);
    json_t *assignee = conversation_field(r, "assignee");
    assert_string_equal(json_string_value(json_object_get(assignee, "email")), AGENT_EMAIL);
    assert_string_equal(json_string_value(json_object_get(assignee, "name")), "Agnes");
    assert_string_equal(json_string_value(json_object_get(assignee, "role")), "agent");
    assert_null(json_object_get(assignee, "password_hash"));
    cf_response_free(r);
    assert_int_equal(cf->agent_events, 1);
    assert_int_equal(cf->visitor_events, 0);
    cf_response_free(expect(AS_ADMIN, "POST", claim, NULL, 409, "conflict", "another agent"));
    cf_response_free(expect(AS_AGENT, "POST", claim, NULL, 200, NULL, NULL));
    r = expect(AS_AGENT, "GET", "/api/conversations?view=mine", NULL, 200, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r->json, "conversations")), 1);
    cf_response_free(r);
    r = expect(AS_AGENT, "GET", "/api/conversations?view=unassigned", NULL, 200, NULL, NULL);
    assert_null(listed(r, cf->conversation_id));
    cf_response_free(r);
    assert_int_equal(count_of("mine"), 1);
    assert_int_equal(count_of("unassigned"), unassigned - 1);
    r = expect(AS_ADMIN, "GET", "/api/conversations?view=mine", NULL, 200, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r->json, "conversations")), 0);
    cf_response_free(r);

    /* Assignments: to someone, to nobody; nothing else. */
    cf_response_free(expect(AS_AGENT, "POST", assign, "{\"agent_id\":1,\"colour\":\"x\"}", 400,
                            "bad_request", "\"colour\""));
    cf_response_free(expect(AS_AGENT, "POST", assign, "{\"agent_id\":1,\"note\":5}", 422, "invalid",
                            "note must be a string"));
    cf_response_free(expect(AS_AGENT, "POST", assign, "{\"agent_id\":1,\"note\":\"  \"}", 422,
                            "invalid", "a note has"));
    cf_response_free(expect(AS_AGENT, "POST", assign, "{}", 422, "invalid", "agent_id"));
    cf_response_free(
        expect(AS_AGENT, "POST", assign, "{\"agent_id\":\"1\"}", 422, "invalid", NULL));
    cf_response_free(
        expect(AS_AGENT, "POST", assign, "{\"agent_id\":999}", 422, "invalid", "no such agent"));
    cf_response_free(expect(AS_AGENT, "POST", "/api/conversations/999999/assign",
                            "{\"agent_id\":null}", 404, "not_found", NULL));
    char body[64];
    snprintf(body, sizeof body, "{\"agent_id\":%lld}", (long long)admin);
    r = expect(AS_AGENT, "POST", assign, body, 200, NULL, NULL);
    assert_int_equal(json_integer_value(json_object_get(conversation_field(r, "assignee"), "id")),
                     admin);
    cf_response_free(r);
    r = expect(AS_AGENT, "POST", assign, "{\"agent_id\":null}", 200, NULL, NULL);
    assert_true(json_is_null(conversation_field(r, "assignee")));
    cf_response_free(r);

    /* Statuses: the four; "closed" no more; a snooze with its end in the future. */
    cf_response_free(expect(AS_AGENT, "POST", status, "{\"status\":\"closed\"}", 400, "bad_request",
                            "open, pending, resolved, snoozed"));
    cf_response_free(expect(AS_AGENT, "POST", status, "{\"status\":7}", 400, "bad_request", NULL));
    cf_response_free(expect(AS_AGENT, "POST", status, "{\"status\":\"snoozed\"}", 422, "invalid",
                            "snooze_until"));
    cf_response_free(expect(AS_AGENT, "POST", status,
                            "{\"status\":\"snoozed\",\"snooze_until\":1000}", 422, "invalid",
                            "future"));
    cf_response_free(expect(AS_AGENT, "POST", status,
                            "{\"status\":\"open\",\"snooze_until\":99999999999999}", 422, "invalid",
                            "snoozed only"));
    cf_response_free(expect(AS_AGENT, "POST", status, "{\"status\":\"open\",\"until\":1}", 400,
                            "bad_request", "\"until\""));
    r = expect(AS_AGENT, "POST", status, "{\"status\":\"snoozed\",\"snooze_until\":99999999999999}",
               200, NULL, NULL);
    assert_string_equal(json_string_value(conversation_field(r, "status")), "snoozed");
    assert_int_equal(json_integer_value(conversation_field(r, "snoozed_until")), 99999999999999);
    cf_response_free(r);
    cf->agent_events = cf->visitor_events = 0;
    r = expect(AS_AGENT, "POST", status, "{\"status\":\"resolved\"}", 200, NULL, NULL);
    assert_string_equal(json_string_value(conversation_field(r, "status")), "resolved");
    assert_true(json_is_null(conversation_field(r, "snoozed_until")));
    cf_response_free(r);
    assert_int_equal(cf->agent_events, 1);
    assert_int_equal(cf->visitor_events, 1); /* the visitor's page says it is resolved */
    cf_response_free(expect(AS_AGENT, "POST", claim, NULL, 409, "conflict", "resolved"));
    /* A visitor's page opened now learns it from the session. */
    r = expect(AS_VISITOR, "GET", "/api/visitor/session", NULL, 200, NULL, NULL);
    assert_int_equal(json_integer_value(conversation_field(r, "id")), cf->conversation_id);
    assert_string_equal(json_string_value(conversation_field(r, "status")), "resolved");
    /* id, status, the agents' read mark (seen_up_to) and their own rating (none yet): nothing
     * of the desk. */
    assert_int_equal(json_object_size(json_object_get(r->json, "conversation")), 4);
    assert_true(json_is_integer(conversation_field(r, "seen_up_to")));
    assert_true(json_is_null(conversation_field(r, "rating")));
    cf_response_free(r);
    r = expect(AS_AGENT, "GET", "/api/conversations?view=resolved", NULL, 200, NULL, NULL);
    assert_non_null(listed(r, cf->conversation_id));
    cf_response_free(r);

    /* The visitor writes again: the same conversation, open again, and everyone hears. */
    cf->agent_events = cf->visitor_events = 0;
    r = expect(AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"one more thing\"}", 201,
               NULL, NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r->json, "message"), "conversation_id")),
        cf->conversation_id);
    cf_response_free(r);
    assert_int_equal(cf->agent_events, 2);   /* the message, the conversation */
    assert_int_equal(cf->visitor_events, 2); /* the same, in the visitor's shape */
    cf_expand("/api/conversations/{c}", path, sizeof path);
    r = expect(AS_AGENT, "GET", path, NULL, 200, NULL, NULL);
    assert_string_equal(json_string_value(conversation_field(r, "status")), "open");
    cf_response_free(r);
}

/* The app does not start without its ticket key (unreadable, unstorable or damaged) or with
 * limits that cannot be built, and says why; it leaves nothing behind. */
static void test_app_start_failures(void **state)
{
    (void)state;
    sqlite_db_t *db = sqlite_db_create();
    assert_non_null(db);
    const char *path = db->path;
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
    /* The key it loaded signs its tickets. */
    static const unsigned char key[32] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                          0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
                                          0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                          0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    char ticket[KF_TICKET_SIZE];
    assert_int_equal(kf_authn_ticket(app->authn, 'v', 7, ticket), 0);
    assert_int_equal(kf_auth_ticket_verify(key, sizeof key, ticket, strlen(ticket), 0, NULL, NULL),
                     0);
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
    sqlite_db_destroy(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_store_failures, cf_test_setup),
        cmocka_unit_test_setup(test_store_failure_after_write, cf_test_setup),
        cmocka_unit_test_setup(test_store_failure_while_authenticating, cf_test_setup),
        cmocka_unit_test_setup(test_store_failure_on_logout, cf_test_setup),
        cmocka_unit_test_setup(test_jansson_failures, cf_test_setup),
        cmocka_unit_test(test_message_event_shape),
        cmocka_unit_test_setup(test_event_encoding_failures, cf_test_setup),
        cmocka_unit_test_setup(test_client_gone_before_commit, cf_test_setup),
        cmocka_unit_test_setup(test_pipelined_writes, cf_test_setup),
        cmocka_unit_test_setup(test_pages, cf_test_setup),
        cmocka_unit_test_setup(test_desk, cf_test_setup),
        cmocka_unit_test(test_app_start_failures),
    };
    return cmocka_run_group_tests(tests, cf_group_setup, cf_group_teardown);
}
