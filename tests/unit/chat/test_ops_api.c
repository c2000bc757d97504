/* test_ops_api.c: /readyz and /metrics over a real server (src/chat/ops_api.c,
 * tests/unit/support/chat_fixture.h): ready, then 503 naming why (the store refusing writes, a
 * SIGTERM); the metrics' exposition, who may read them (the allow-list, the bearer token, 403
 * for anyone else), and figures that move when a message is stored or a request refused. */
#include "support/chat_fixture.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/metrics.h"

static void test_ready_until_the_store_refuses_or_a_sigterm(void **state)
{
    (void)state;
    cf_response_t *r = cf_request(AS_NOBODY, "GET", "/readyz", NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_string_value(json_object_get(r->json, "status")), "ready");
    cf_response_free(r);

    /* A write refused (a full disk): not ready, while /healthz stays 200. */
    kf_store_note_write(cf->store, KF_EUNAVAIL);
    r = cf_request(AS_NOBODY, "GET", "/readyz", NULL);
    assert_int_equal(r->status, 503);
    assert_string_equal(json_string_value(json_object_get(r->json, "reason")),
                        "store_not_writable");
    assert_non_null(strstr(r->raw, "Retry-After: 5\r\n"));
    cf_response_free(r);
    r = cf_request(AS_NOBODY, "GET", "/healthz", NULL);
    assert_int_equal(r->status, 200);
    cf_response_free(r);
    kf_store_note_write(cf->store, 0);

    r = cf_request(AS_NOBODY, "GET", "/readyz", NULL);
    assert_int_equal(r->status, 200);
    cf_response_free(r);

    /* A SIGTERM: not ready from then on (this app is not used after this test). */
    kf_app_set_shutting_down(cf->app);
    r = cf_request(AS_NOBODY, "GET", "/readyz", NULL);
    assert_int_equal(r->status, 503);
    assert_string_equal(json_string_value(json_object_get(r->json, "reason")), "shutting_down");
    assert_true(json_is_true(json_object_get(r->json, "shutting_down")));
    assert_true(json_is_true(json_object_get(r->json, "writable")));
    cf_response_free(r);
    cf->app->shutting_down = false;
}

/* The value of the sample whose line starts with prefix (name and labels), or -1. */
static double sample(const char *text, const char *prefix)
{
    size_t len = strlen(prefix);
    for (const char *line = text; *line != '\0';) {
        if (strncmp(line, prefix, len) == 0 && line[len] == ' ')
            return strtod(line + len + 1, NULL);
        const char *end = strchr(line, '\n');
        if (end == NULL)
            break;
        line = end + 1;
    }
    return -1;
}

/* Every sample's family has # HELP and # TYPE before it, and every line is one of the three. */
static void check_exposition(const char *text)
{
    char families[64][64];
    size_t family_count = 0;
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        assert_non_null(end); /* every line ends */
        char name[64];
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%63s", name), 1);
            const char *type = end + 1;
            char expected[80];
            snprintf(expected, sizeof expected, "# TYPE %s ", name);
            assert_int_equal(strncmp(type, expected, strlen(expected)), 0);
            assert_true(family_count < 64);
            snprintf(families[family_count++], sizeof families[0], "%s", name);
        } else if (strncmp(line, "# TYPE ", 7) != 0) {
            size_t name_len = strcspn(line, "{ ");
            bool known = false;
            for (size_t i = 0; i < family_count && !known; i++) {
                size_t family_len = strlen(families[i]);
                known = strncmp(line, families[i], family_len) == 0 &&
                        (name_len == family_len || strncmp(line + family_len, "_bucket", 7) == 0 ||
                         strncmp(line + family_len, "_sum", 4) == 0 ||
                         strncmp(line + family_len, "_count", 6) == 0);
            }
            if (!known)
                fail_msg("a sample without its HELP and TYPE: %.*s", (int)(end - line), line);
        }
        line = end + 1;
    }
    assert_true(family_count >= 8); /* kefu_sqlite_wal_bytes only over SQLite itself */
}

static void test_metrics_move(void **state)
{
    (void)state;
    cf_response_t *before = cf_request(AS_NOBODY, "GET", "/metrics", NULL);
    assert_int_equal(before->status, 200);
    assert_non_null(strstr(before->raw, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    check_exposition(before->body);
    double stored = sample(before->body, "kefu_messages_stored_total");
    double writes = sample(before->body, "kefu_store_write_seconds_count");
    double not_found =
        sample(before->body, "kefu_http_rejected_total{status=\"404\",code=\"not_found\"}");
    assert_true(stored >= 0 && writes >= 0);
    assert_true(sample(before->body, "kefu_push_connections{transport=\"sse\"}") == 0);
    assert_true(sample(before->body, "kefu_store_write_seconds_bucket{le=\"+Inf\"}") == writes);
    assert_true(sample(before->body, "kefu_ready") == 1);
    cf_response_free(before);

    cf_response_t *r =
        cf_request(AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"count me\"}");
    assert_int_equal(r->status, 201);
    cf_response_free(r);
    r = cf_request(AS_NOBODY, "GET", "/no/such/thing", NULL);
    assert_int_equal(r->status, 404);
    cf_response_free(r);

    cf_response_t *after = cf_request(AS_NOBODY, "GET", "/metrics", NULL);
    assert_true(sample(after->body, "kefu_messages_stored_total") == stored + 1);
    assert_true(sample(after->body, "kefu_store_write_seconds_count") >= writes + 1);
    assert_true(
        sample(after->body, "kefu_http_rejected_total{status=\"404\",code=\"not_found\"}") ==
        (not_found < 0 ? 0 : not_found) + 1);
    cf_response_free(after);
}

/* GET /metrics with an Authorization header (NULL: none); the answer's status. */
static int metrics_with(const char *authorization)
{
    char request[512];
    snprintf(request, sizeof request,
             "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s\r\n",
             authorization != NULL ? "Authorization: " : "",
             authorization != NULL ? authorization : "", authorization != NULL ? "\r\n" : "");
    int fd = cf_connect();
    cf_send_all(fd, request, strlen(request));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    kf_buf_t in;
    kf_buf_init(&in);
    cf_capture_t capture;
    char log[4096];
    cf_capture_begin(&capture);
    assert_true(cf_pump(fd, &in, 0));
    cf_capture_end(&capture, log, sizeof log);
    close(fd);
    int status = 0;
    assert_int_equal(sscanf(in.data, "HTTP/1.1 %d", &status), 1);
    kf_buf_free(&in);
    return status;
}

static void test_who_may_read_metrics(void **state)
{
    (void)state;
    assert_int_equal(metrics_with(NULL), 200); /* loopback, by default */
    /* An allow-list without loopback (--metrics-allow 10.0.0.0/8) and no token: 403 for us. */
    kf_addr_prefix_t *saved = cf->app->metrics_allow;
    size_t saved_count = cf->app->metrics_allow_count;
    kf_addr_prefix_t ten;
    assert_int_equal(kf_addr_prefix_parse("10.0.0.0/8", &ten), 0);
    cf->app->metrics_allow = &ten;
    cf->app->metrics_allow_count = 1;
    assert_int_equal(metrics_with(NULL), 403);
    assert_int_equal(metrics_with("Bearer 0123456789abcdef"), 403);
    /* With a token set, the token (and only it) lets anyone in. */
    cf->app->config.metrics_token = "0123456789abcdef";
    assert_int_equal(metrics_with("Bearer 0123456789abcdef"), 200);
    assert_int_equal(metrics_with("bearer 0123456789abcdef"), 200);
    assert_int_equal(metrics_with("Bearer 0123456789abcdeF"), 403);
    assert_int_equal(metrics_with("Bearer 0123456789abcde"), 403);
    assert_int_equal(metrics_with("Bearer "), 403);
    assert_int_equal(metrics_with("Basic 0123456789abcdef"), 403);
    cf->app->config.metrics_token = NULL;
    cf->app->metrics_allow = saved;
    cf->app->metrics_allow_count = saved_count;
    assert_int_equal(metrics_with(NULL), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_metrics_move, cf_test_setup),
        cmocka_unit_test_setup(test_who_may_read_metrics, cf_test_setup),
        cmocka_unit_test_setup(test_ready_until_the_store_refuses_or_a_sigterm, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, cf_group_setup, cf_group_teardown);
}
