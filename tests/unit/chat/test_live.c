/* test_live.c: the chat layer's push endpoints and WebSocket actions (src/chat/live.c) over a
 * real server and a store that fails on demand (tests/unit/support/chat_fixture.h): an action's
 * store failure is an error reply, logged, with nothing published, and the socket goes on; a
 * replay is skipped for a current cursor and never for a message stored but not published. */
#include "support/chat_fixture.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "support/failing_store.h"

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
        fds[i] = cf_ws_open_as(i == 0 ? AS_VISITOR : AS_AGENT, &in[i]);
    }
    static const struct {
        int socket; /* 0: the visitor's, 1: the agent's */
        size_t op;
        const char *action; /* {c}: the conversation */
    } cases[] = {
        {0, FS_OP(message_add), "{\"type\":\"send\",\"ref\":\"s1\",\"body\":\"lost\"}"},
        {0, FS_OP(complete), "{\"type\":\"send\",\"ref\":\"s1\",\"body\":\"lost\"}"},
        {0, FS_OP(messages_of_visitor), "{\"type\":\"read\",\"ref\":\"s1\",\"up_to\":1}"},
        {0, FS_OP(conversation_of_visitor), "{\"type\":\"typing\",\"ref\":\"s1\",\"typing\":true}"},
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
        cf_expand(cases[i].action, action, sizeof action);
        cf->agent_events = cf->visitor_events = 0;
        failing_store_fail_nth(cf->store, cases[i].op, 1, KF_ESTORE);
        cf_capture_t capture;
        char log[4096];
        cf_capture_begin(&capture);
        cf_ws_send(fd, action);
        char *reply = cf_ws_read_until(fd, &in[cases[i].socket], "\"s1\"");
        cf_capture_end(&capture, log, sizeof log);
        assert_int_equal(failing_store_failures(cf->store), 1);
        failing_store_reset(cf->store);
        json_t *json = json_loads(reply, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(json, "type")), "error");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(json, "error"), "code")), "internal");
        assert_non_null(strstr(log, "store"));
        assert_int_equal(cf->agent_events + cf->visitor_events, 0);
        json_decref(json);
        free(reply);
    }
    /* The connections survive: the next action works (and the agent's typing shows their name). */
    cf_ws_send(fds[0], "{\"type\":\"send\",\"ref\":\"ok\",\"body\":\"kept\"}");
    char *ack = cf_ws_read_until(fds[0], &in[0], "\"ack\"");
    assert_non_null(strstr(ack, "\"ok\""));
    free(ack);
    char action[160];
    cf_expand("{\"type\":\"typing\",\"conversation_id\":{c},\"typing\":true}", action,
              sizeof action);
    cf_ws_send(fds[1], action);
    char *typing = cf_ws_read_until(fds[1], &in[1], "\"agent_name\"");
    assert_non_null(strstr(typing, "\"agent_name\":\"Agnes\""));
    free(typing);
    for (int i = 0; i < 2; i++) {
        close(fds[i]);
        kf_buf_free(&in[i]);
    }
    /* Let the server see the closes. */
    for (int i = 0; i < 50; i++) {
        uv_run(&cf->loop, UV_RUN_NOWAIT);
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
    int fd = cf_ws_open(&in);
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
        cf_ws_send(fd, cases[i].action);
        char *reply = cf_ws_read_until(fd, &in, "\"error\"");
        if (strstr(reply, cases[i].reply) == NULL)
            fail_msg("%s: %s", cases[i].action, reply);
        free(reply);
    }
    cf_ws_send(fd, "{\"type\":\"ping\",\"ref\":\"p\"}");
    char *pong = cf_ws_read_until(fd, &in, "\"pong\"");
    assert_non_null(strstr(pong, "\"ref\":\"p\""));
    free(pong);
    close(fd);
    kf_buf_free(&in);
    for (int i = 0; i < 50; i++) {
        uv_run(&cf->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

/* A stream that opens with a current cursor (a page load, a reconnect) is not replayed from the
 * store: the server knows nothing is stored above it. An older cursor, or a stream it knows
 * nothing about, is replayed as ever. */
static void test_replay_skipped_for_current_cursor(void **state)
{
    (void)state;
    char path[64];
    cf_response_t *r =
        cf_request(AS_VISITOR, "POST", "/api/visitor/messages", "{\"body\":\"two\"}");
    assert_int_equal(r->status, 201);
    int64_t second = json_integer_value(json_object_get(json_object_get(r->json, "message"), "id"));
    cf_response_free(r);

    static const struct {
        cf_who_t who;
        size_t op;
    } streams[] = {{AS_VISITOR, FS_OP(messages_of_visitor)}, {AS_AGENT, FS_OP(messages_all)}};
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        failing_store_reset(cf->store);
        snprintf(path, sizeof path, "/push/poll?after=%lld", (long long)second);
        r = cf_request(streams[i].who, "GET", path, NULL);
        assert_int_equal(r->status, 200);
        assert_int_equal(cf_poll_events(r), 0);
        cf_response_free(r);
        /* Known from the messages published since the start: no query. */
        unsigned long asked = failing_store_calls(cf->store, streams[i].op);
        assert_int_equal(asked, 0);
        r = cf_request(streams[i].who, "GET", path, NULL);
        assert_int_equal(cf_poll_events(r), 0);
        cf_response_free(r);
        assert_int_equal(failing_store_calls(cf->store, streams[i].op), asked);

        snprintf(path, sizeof path, "/push/poll?after=%lld", (long long)second - 1);
        r = cf_request(streams[i].who, "GET", path, NULL);
        assert_int_equal(cf_poll_events(r), 1); /* the second message, from the store */
        cf_response_free(r);
        assert_int_equal(failing_store_calls(cf->store, streams[i].op), asked + 1);
    }
    /* A newer message moves the mark: the old current cursor is replayed again. */
    snprintf(path, sizeof path, "/api/conversations/%lld/messages", (long long)cf->conversation_id);
    r = cf_request(AS_AGENT, "POST", path, "{\"body\":\"three\"}");
    assert_int_equal(r->status, 201);
    cf_response_free(r);
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        snprintf(path, sizeof path, "/push/poll?after=%lld", (long long)second);
        r = cf_request(streams[i].who, "GET", path, NULL);
        assert_int_equal(cf_poll_events(r), 1);
        cf_response_free(r);
    }
    /* Forgotten (a new app knows nothing): replayed from the store. */
    cf_forget_credentials();
    kf_replay_forget(cf->app->replay);
    failing_store_reset(cf->store);
    snprintf(path, sizeof path, "/push/poll?after=%lld", (long long)second + 1);
    r = cf_request(AS_VISITOR, "GET", path, NULL);
    assert_int_equal(cf_poll_events(r), 0);
    cf_response_free(r);
    assert_int_equal(failing_store_calls(cf->store, FS_OP(messages_of_visitor)), 1);
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
    assert_int_equal(cf->store->ops->messages_of_visitor(cf->store, cf->visitor_id, after, 1000,
                                                         newest_id_cb, query_done_cb, &newest),
                     0);
    kf_app_commit(cf->app);
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
        cf_response_t *r = cf_request_ex(AS_VISITOR, "POST", "/api/visitor/messages",
                                         "{\"body\":\"maybe\"}", nth, &fired);
        int status = r->status;
        cf_response_free(r);
        int64_t newest = newest_message(cursor);
        snprintf(path, sizeof path, "/push/poll?after=%lld", (long long)cursor);
        r = cf_request(AS_VISITOR, "GET", path, NULL);
        assert_int_equal(r->status, 200);
        assert_int_equal(cf_poll_events(r), newest > cursor ? 1 : 0);
        cf_response_free(r);
        if (newest > cursor && status == 500)
            unpublished++;
        cursor = newest;
        if (!fired)
            break;
        assert_true(nth < 1000);
    }
    assert_true(unpublished > 0); /* the case under test did happen */
}

/* Turns the loop until the visitor holds want push connections (by the quota's count). */
static bool wait_open(size_t want)
{
    uint64_t deadline = uv_hrtime() / 1000000 + REQUEST_TIMEOUT_MS;
    while (uv_hrtime() / 1000000 < deadline) {
        uv_run(&cf->loop, UV_RUN_NOWAIT);
        if (kf_quota_open(cf->app->quota, 'v', cf->visitor_id) == want)
            return true;
    }
    return false;
}

/* A visitor holds at most 8 push connections (the default): the ninth is refused with 429
 * too_many_connections before anything is held, a short poll is never counted, and one that ends
 * frees its place. */
static void test_push_quota(void **state)
{
    (void)state;
    char request[512];
    snprintf(request, sizeof request,
             "GET /push/longpoll?after=%lld&timeout=30 HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer %s\r\n\r\n",
             (long long)cf->message_id, cf->visitor_token);
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = cf_connect();
        cf_send_all(fds[i], request, strlen(request));
        assert_true(wait_open((size_t)i + 1));
    }
    assert_int_equal(kf_quota_listeners(cf->app->quota), 1);
    cf_response_t *r = cf_request(AS_VISITOR, "GET", "/push/sse?after=0", NULL);
    assert_int_equal(r->status, 429);
    assert_string_equal(cf_error_code(r), "too_many_connections");
    cf_response_free(r);
    r = cf_request(AS_VISITOR, "GET", "/push/poll?after=0", NULL);
    assert_int_equal(r->status, 200); /* a short poll holds nothing */
    cf_response_free(r);
    close(fds[0]);
    assert_true(wait_open(7));
    int again = cf_connect();
    cf_send_all(again, request, strlen(request));
    assert_true(wait_open(8));
    close(again);
    for (int i = 1; i < 8; i++)
        close(fds[i]);
    assert_true(wait_open(0));
    assert_int_equal(kf_quota_listeners(cf->app->quota), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_push_quota, cf_test_setup),
        cmocka_unit_test_setup(test_websocket_store_failures, cf_test_setup),
        cmocka_unit_test_setup(test_websocket_bad_actions, cf_test_setup),
        cmocka_unit_test_setup(test_replay_skipped_for_current_cursor, cf_test_setup),
        cmocka_unit_test_setup(test_unpublished_message_is_replayed, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, cf_group_setup, cf_group_teardown);
}
