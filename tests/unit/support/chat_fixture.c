/* chat_fixture.c: the chat layer's test fixture (chat_fixture.h). */
#include "support/chat_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "store/sync.h"
#include "support/failing_store.h"
#include "support/fault.h"

chat_fixture_t *cf;

void cf_response_free(cf_response_t *r)
{
    if (r == NULL)
        return;
    json_decref(r->json);
    free(r->raw);
    free(r);
}

void cf_send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

int cf_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cf->port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    return fd;
}

bool cf_pump(int fd, kf_buf_t *in, size_t want)
{
    size_t start = in->len;
    uint64_t deadline = uv_hrtime() / 1000000 + REQUEST_TIMEOUT_MS;
    while (uv_hrtime() / 1000000 < deadline) {
        uv_run(&cf->loop, UV_RUN_NOWAIT);
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

void cf_capture_begin(cf_capture_t *c)
{
    fflush(stderr);
    c->saved_fd = dup(2);
    c->file = tmpfile();
    assert_non_null(c->file);
    dup2(fileno(c->file), 2);
}

void cf_capture_end(cf_capture_t *c, char *out, size_t size)
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

cf_response_t *cf_request_ex(cf_who_t who, const char *method, const char *path, const char *body,
                             unsigned long fail_nth, bool *fired)
{
    kf_buf_t out;
    kf_buf_init(&out);
    kf_buf_printf(&out, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    if (who == AS_VISITOR)
        kf_buf_printf(&out, "Authorization: Bearer %s\r\n", cf->visitor_token);
    else if (who == AS_NEW_VISITOR)
        kf_buf_printf(&out, "Authorization: Bearer %s\r\n", cf->new_visitor_token);
    else if (who == AS_AGENT)
        kf_buf_printf(&out, "Cookie: %s\r\nX-CSRF-Token: %s\r\n", cf->session_cookie, cf->csrf);
    else if (who == AS_ADMIN)
        kf_buf_printf(&out, "Cookie: %s\r\nX-CSRF-Token: %s\r\n", cf->admin_cookie, cf->admin_csrf);
    if (body != NULL)
        kf_buf_printf(&out, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen(body), body);
    else
        kf_buf_append_str(&out, "\r\n");
    int fd = cf_connect();
    cf_send_all(fd, out.data, out.len);
    kf_buf_free(&out);
    fcntl(fd, F_SETFL, O_NONBLOCK);

    cf_response_t *r = calloc(1, sizeof *r);
    kf_buf_t in;
    kf_buf_init(&in);
    cf_capture_t capture;
    cf_capture_begin(&capture);
    fault_jansson_fail_nth(fail_nth);
    bool done = cf_pump(fd, &in, 0);
    if (fired != NULL)
        *fired = fault_jansson_fired();
    fault_jansson_fail_nth(0);
    cf_capture_end(&capture, r->log, sizeof r->log);
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

cf_response_t *cf_request(cf_who_t who, const char *method, const char *path, const char *body)
{
    return cf_request_ex(who, method, path, body, 0, NULL);
}

const char *cf_error_code(const cf_response_t *r)
{
    const char *code =
        json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
    return code != NULL ? code : "";
}

static void agents_cb(kf_sub_t *sub, kf_event_t *event)
{
    /* An agent's presence is told when its console makes a push request, whatever the request
     * comes to; the tests count what requests publish about conversations. */
    if (strstr(event->json, "\"type\":\"presence\"") != NULL)
        return;
    ((chat_fixture_t *)sub->data)->agent_events++;
}

static void visitor_cb(kf_sub_t *sub, kf_event_t *event)
{
    /* Likewise, the first agent's push request tells visitors someone can answer now. */
    if (strstr(event->json, "\"type\":\"availability\"") != NULL) {
        ((chat_fixture_t *)sub->data)->availability_events++;
        return;
    }
    ((chat_fixture_t *)sub->data)->visitor_events++;
}

/* Creates a visitor and copies its token; returns its id. */
static int64_t create_visitor(char *token, size_t size)
{
    cf_response_t *r = cf_request(AS_NOBODY, "POST", "/api/visitor/session", "{\"name\":\"Vera\"}");
    assert_int_equal(r->status, 201);
    snprintf(token, size, "%s", json_string_value(json_object_get(r->json, "token")));
    int64_t id = json_integer_value(json_object_get(json_object_get(r->json, "visitor"), "id"));
    cf_response_free(r);
    assert_true(id > 0);
    return id;
}

/* Logs email in; its cookie and CSRF token go to cookie_out and csrf_out (of the fixture's
 * sizes). */
static void log_in(const char *email, char *cookie_out, char *csrf_out)
{
    char body[160];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" AGENT_PASSWORD "\"}", email);
    cf_response_t *r = cf_request(AS_NOBODY, "POST", "/api/agent/login", body);
    assert_int_equal(r->status, 200);
    const char *cookie = strstr(r->raw, "Set-Cookie: kefu_session=");
    assert_non_null(cookie);
    cookie += strlen("Set-Cookie: ");
    snprintf(cookie_out, sizeof cf->session_cookie, "%.*s", (int)strcspn(cookie, ";\r"), cookie);
    snprintf(csrf_out, sizeof cf->csrf, "%s", json_string_value(json_object_get(r->json, "csrf")));
    cf_response_free(r);
}

void cf_log_in_agent(void)
{
    log_in(AGENT_EMAIL, cf->session_cookie, cf->csrf);
}

void cf_log_in_admin(void)
{
    assert_int_equal(kf_app_create_agent(cf->store, ADMIN_EMAIL, "Ada", "admin", AGENT_PASSWORD),
                     0);
    log_in(ADMIN_EMAIL, cf->admin_cookie, cf->admin_csrf);
}

int cf_group_setup(void **state)
{
    cf = calloc(1, sizeof *cf);
    assert_int_equal(uv_loop_init(&cf->loop), 0);
    cf->db = sqlite_db_create();
    assert_non_null(cf->db);
    assert_int_equal(failing_store_open(cf->db->path, &cf->store), 0);
    fault_jansson_install();
    assert_int_equal(kf_app_create_agent(cf->store, AGENT_EMAIL, "Agnes", "agent", AGENT_PASSWORD),
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
    cf->app = kf_app_new(&cf->loop, cf->store, &config, &push_config, &err);
    assert_non_null(cf->app);
    kf_server_config_t server_config;
    kf_server_config_default(&server_config);
    server_config.host = "127.0.0.1";
    server_config.port = 0;
    server_config.body_limit = kf_app_body_limit; /* as main.c: the upload routes' own limit */
    assert_int_equal(
        kf_server_start(&cf->loop, &server_config, kf_app_handle, cf->app, &cf->server), 0);
    cf->port = kf_server_port(cf->server);

    kf_sub_init(&cf->agents_sub, agents_cb, cf);
    kf_hub_subscribe(cf->app->hub, KF_AGENTS_TOPIC, &cf->agents_sub);
    cf->visitor_id = create_visitor(cf->visitor_token, sizeof cf->visitor_token);
    create_visitor(cf->new_visitor_token, sizeof cf->new_visitor_token);
    char topic[40];
    kf_chat_visitor_topic(cf->visitor_id, topic, sizeof topic);
    kf_sub_init(&cf->visitor_sub, visitor_cb, cf);
    kf_hub_subscribe(cf->app->hub, topic, &cf->visitor_sub);

    cf_response_t *r =
        cf_request(AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"hello\"}");
    assert_int_equal(r->status, 201);
    json_t *message = json_object_get(r->json, "message");
    cf->message_id = json_integer_value(json_object_get(message, "id"));
    cf->conversation_id = json_integer_value(json_object_get(message, "conversation_id"));
    cf_response_free(r);
    assert_true(cf->message_id > 0 && cf->conversation_id > 0);
    cf_log_in_agent();
    *state = cf;
    return 0;
}

static void server_stopped_cb(void *data)
{
    chat_fixture_t *f = data;
    kf_app_free(f->app);
    f->app = NULL;
}

int cf_group_teardown(void **state)
{
    (void)state;
    kf_hub_unsubscribe(cf->app->hub, &cf->agents_sub);
    kf_hub_unsubscribe(cf->app->hub, &cf->visitor_sub);
    kf_app_drain(cf->app);
    kf_server_stop(cf->server, server_stopped_cb, cf);
    uv_run(&cf->loop, UV_RUN_DEFAULT);
    assert_null(cf->app);
    kf_store_close(cf->store);
    assert_int_equal(uv_loop_close(&cf->loop), 0);
    sqlite_db_destroy(cf->db);
    free(cf);
    return 0;
}

int cf_test_setup(void **state)
{
    (void)state;
    failing_store_reset(cf->store);
    cf->agent_events = 0;
    cf->visitor_events = 0;
    return 0;
}

void cf_expand(const char *template, char *out, size_t size)
{
    size_t len = 0;
    for (const char *p = template; *p != '\0' && len + 24 < size; p++) {
        if (strncmp(p, "{c}", 3) == 0 || strncmp(p, "{m}", 3) == 0) {
            int64_t value = p[1] == 'c' ? cf->conversation_id : cf->message_id;
            len += (size_t)snprintf(out + len, size - len, "%lld", (long long)value);
            p += 2;
        } else {
            out[len++] = *p;
        }
    }
    out[len] = '\0';
}

void cf_forget_credentials(void)
{
    kf_authn_forget_all(cf->app->authn);
}

int cf_ws_open_as(cf_who_t who, kf_buf_t *in)
{
    int fd = cf_connect();
    char head[640], credential[320];
    if (who == AS_AGENT)
        snprintf(credential, sizeof credential, "Cookie: %s", cf->session_cookie);
    else if (who == AS_ADMIN)
        snprintf(credential, sizeof credential, "Cookie: %s", cf->admin_cookie);
    else
        snprintf(credential, sizeof credential, "Authorization: Bearer %s", cf->visitor_token);
    int n = snprintf(head, sizeof head,
                     "GET /push/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n\r\n",
                     credential);
    cf_send_all(fd, head, (size_t)n);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (strstr(in->data != NULL ? in->data : "", "\r\n\r\n") == NULL)
        assert_true(cf_pump(fd, in, 1));
    assert_non_null(strstr(in->data, "101 Switching Protocols"));
    kf_buf_consume(in, (size_t)(strstr(in->data, "\r\n\r\n") + 4 - in->data));
    return fd;
}

int cf_ws_open(kf_buf_t *in)
{
    return cf_ws_open_as(AS_VISITOR, in);
}

void cf_ws_send(int fd, const char *text)
{
    size_t len = strlen(text);
    assert_true(len < 126);
    unsigned char frame[140] = {0x81, (unsigned char)(0x80 | len), 1, 2, 3, 4};
    for (size_t i = 0; i < len; i++)
        frame[6 + i] = (unsigned char)text[i] ^ frame[2 + i % 4];
    cf_send_all(fd, (const char *)frame, 6 + len);
}

char *cf_ws_read_until(int fd, kf_buf_t *in, const char *want)
{
    for (;;) {
        while (in->len < 2)
            assert_true(cf_pump(fd, in, 1));
        size_t len = (unsigned char)in->data[1] & 0x7F, header = 2;
        if (len == 126) {
            while (in->len < 4)
                assert_true(cf_pump(fd, in, 1));
            len = (size_t)((unsigned char)in->data[2] << 8 | (unsigned char)in->data[3]);
            header = 4;
        }
        assert_true(len < 65536);
        while (in->len < header + len)
            assert_true(cf_pump(fd, in, 1));
        char *text = kf_xstrndup(in->data + header, len);
        kf_buf_consume(in, header + len);
        if (strstr(text, want) != NULL)
            return text;
        free(text);
    }
}

size_t cf_poll_events(const cf_response_t *r)
{
    return json_array_size(json_object_get(r->json, "events"));
}
