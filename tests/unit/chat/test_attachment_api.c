/* test_attachment_api.c: attachments over a real server (src/chat/attachment_api.c,
 * tests/unit/support/chat_fixture.h): an upload by the visitor and by the agent, stored and
 * published as a message carrying the file; the download's bytes and headers, for the agent and
 * the conversation's visitor only (another visitor: 404); refusals that never reach the store
 * (415 for a type outside the allow-list or a form's content type, 413 past the limit, 422 for a
 * bad name or an empty file); and a store that fails (503, nothing published). */
#include "support/chat_fixture.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "support/failing_store.h"

static const char PNG[] = "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR-pixels";
static const char EXE[] = "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff";

/* POSTs len bytes as they are to path as who, with content_type (NULL: none), and waits for the
 * answer (free it with cf_response_free). */
static cf_response_t *upload(cf_who_t who, const char *path, const void *bytes, size_t len,
                             const char *content_type)
{
    kf_buf_t out;
    kf_buf_init(&out);
    kf_buf_printf(&out, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", path);
    if (who == AS_VISITOR)
        kf_buf_printf(&out, "Authorization: Bearer %s\r\n", cf->visitor_token);
    else if (who == AS_AGENT)
        kf_buf_printf(&out, "Cookie: %s\r\nX-CSRF-Token: %s\r\n", cf->session_cookie, cf->csrf);
    if (content_type != NULL)
        kf_buf_printf(&out, "Content-Type: %s\r\n", content_type);
    kf_buf_printf(&out, "Content-Length: %zu\r\n\r\n", len);
    kf_buf_append(&out, bytes, len);
    int fd = cf_connect();
    cf_send_all(fd, out.data, out.len);
    kf_buf_free(&out);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    kf_buf_t in;
    kf_buf_init(&in);
    assert_true(cf_pump(fd, &in, 0));
    close(fd);
    cf_response_t *r = calloc(1, sizeof *r);
    r->raw = kf_buf_steal(&in, NULL);
    assert_int_equal(sscanf(r->raw, "HTTP/1.1 %d", &r->status), 1);
    const char *end = strstr(r->raw, "\r\n\r\n");
    assert_non_null(end);
    r->body = end + 4;
    r->json = json_loads(r->body, 0, NULL);
    return r;
}

static void expect(cf_response_t *r, int status, const char *code, const char *what)
{
    if (r->status != status || strcmp(cf_error_code(r), code) != 0)
        fail_msg("%s: %d %s (%s)", what, r->status, cf_error_code(r), r->body);
    cf_response_free(r);
}

/* The head of a raw answer has this header line (name and value as written here). */
static void expect_header(const cf_response_t *r, const char *line)
{
    const char *end = strstr(r->raw, "\r\n\r\n");
    const char *at = strstr(r->raw, line);
    if (at == NULL || at > end)
        fail_msg("no \"%s\" in %.*s", line, (int)(end - r->raw), r->raw);
}

/* The attachment of a 201's message: its id (asserting its fields). */
static int64_t attachment_of(cf_response_t *r, const char *name, const char *type, size_t size)
{
    if (r->status != 201)
        fail_msg("upload: %d (%s)", r->status, r->body);
    json_t *a = json_object_get(json_object_get(r->json, "message"), "attachment");
    assert_string_equal(json_string_value(json_object_get(a, "name")), name);
    assert_string_equal(json_string_value(json_object_get(a, "type")), type);
    assert_int_equal(json_integer_value(json_object_get(a, "size")), size);
    int64_t id = json_integer_value(json_object_get(a, "id"));
    char url[64];
    snprintf(url, sizeof url, "/api/attachments/%lld", (long long)id);
    assert_string_equal(json_string_value(json_object_get(a, "url")), url);
    return id;
}

static void test_upload_and_download(void **state)
{
    (void)state;
    cf_response_t *r = upload(AS_VISITOR, "/api/visitor/attachments?name=photo%20%E5%9B%BE.png",
                              PNG, sizeof PNG - 1, "application/octet-stream");
    int64_t id = attachment_of(r, "photo 图.png", "image/png", sizeof PNG - 1);
    cf_response_free(r);
    assert_true(cf->agent_events >= 1);
    assert_true(cf->visitor_events >= 1);

    char path[64];
    snprintf(path, sizeof path, "/api/attachments/%lld", (long long)id);
    cf_who_t readers[] = {AS_VISITOR, AS_AGENT};
    for (size_t i = 0; i < 2; i++) {
        r = cf_request(readers[i], "GET", path, NULL);
        assert_int_equal(r->status, 200);
        expect_header(r, "Content-Type: image/png\r\n");
        expect_header(r, "Content-Disposition: inline; filename=\"photo _.png\"; "
                         "filename*=UTF-8''photo%20%E5%9B%BE.png\r\n");
        expect_header(r, "X-Content-Type-Options: nosniff\r\n");
        expect_header(
            r, "Content-Security-Policy: default-src 'none'; sandbox; frame-ancestors 'none'\r\n");
        expect_header(r, "Cache-Control: private");
        assert_memory_equal(r->body, PNG, sizeof PNG - 1);
        cf_response_free(r);
    }
    expect(cf_request(AS_NEW_VISITOR, "GET", path, NULL), 404, "not_found", "another visitor");
    expect(cf_request(AS_NOBODY, "GET", path, NULL), 401, "unauthorized", "nobody");
    expect(cf_request(AS_AGENT, "GET", "/api/attachments/99999", NULL), 404, "not_found",
           "unknown");

    /* The agent's PDF: downloaded, never shown inline. */
    static const char PDF[] = "%PDF-1.4\n%%EOF\n";
    char agent_path[96];
    snprintf(agent_path, sizeof agent_path, "/api/conversations/%lld/attachments?name=a.pdf",
             (long long)cf->conversation_id);
    r = upload(AS_AGENT, agent_path, PDF, sizeof PDF - 1, NULL);
    id = attachment_of(r, "a.pdf", "application/pdf", sizeof PDF - 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r->json, "message"), "sender")), "agent");
    cf_response_free(r);
    snprintf(path, sizeof path, "/api/attachments/%lld", (long long)id);
    r = cf_request(AS_VISITOR, "GET", path, NULL);
    assert_int_equal(r->status, 200);
    expect_header(r, "Content-Disposition: attachment; filename=\"a.pdf\"");
    cf_response_free(r);
}

static void test_refused(void **state)
{
    (void)state;
    unsigned long writes = failing_store_calls(cf->store, FS_OP(message_add));
    expect(upload(AS_VISITOR, "/api/visitor/attachments?name=cat.png", EXE, sizeof EXE - 1,
                  "image/png"),
           415, "file_type_not_allowed", "a program named .png");
    static const char *const forms[] = {"text/plain", "TEXT/PLAIN; charset=utf-8",
                                        "application/x-www-form-urlencoded",
                                        "multipart/form-data; boundary=x"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        expect(upload(AS_VISITOR, "/api/visitor/attachments?name=a.png", PNG, sizeof PNG - 1,
                      forms[i]),
               415, "unsupported_media_type", forms[i]);
    static const char *const names[] = {"%01a.png", "a%7F.png", "%C2%85.png", "%FF.png",
                                        "%2F",      "%20%20",   "a%00b.png"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[96];
        snprintf(path, sizeof path, "/api/visitor/attachments?name=%s", names[i]);
        expect(upload(AS_VISITOR, path, PNG, sizeof PNG - 1, NULL), 422, "invalid", names[i]);
    }
    expect(upload(AS_VISITOR, "/api/visitor/attachments?name=a.png", "", 0, NULL), 422, "invalid",
           "an empty file");
    size_t limit = cf->app->config.max_upload_bytes;
    cf->app->config.max_upload_bytes = 8;
    expect(upload(AS_VISITOR, "/api/visitor/attachments?name=a.png", PNG, sizeof PNG - 1, NULL),
           413, "too_large", "past the limit");
    cf->app->config.max_upload_bytes = limit;
    assert_int_equal(failing_store_calls(cf->store, FS_OP(message_add)), writes);
    assert_int_equal(cf->visitor_events, 0);
}

static void test_store_fails(void **state)
{
    (void)state;
    failing_store_fail_nth(cf->store, FS_OP(message_add), 1, KF_EUNAVAIL);
    expect(upload(AS_VISITOR, "/api/visitor/attachments?name=a.png", PNG, sizeof PNG - 1, NULL),
           503, "unavailable", "the store cannot write");
    assert_int_equal(cf->visitor_events, 0);
    assert_int_equal(cf->agent_events, 0);
    failing_store_fail_nth(cf->store, FS_OP(attachment_get), 1, KF_ESTORE);
    expect(cf_request(AS_AGENT, "GET", "/api/attachments/1", NULL), 500, "internal",
           "the store cannot read");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_upload_and_download, cf_test_setup),
        cmocka_unit_test_setup(test_refused, cf_test_setup),
        cmocka_unit_test_setup(test_store_fails, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, cf_group_setup, cf_group_teardown);
}
