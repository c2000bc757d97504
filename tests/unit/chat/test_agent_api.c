/* test_agent_api.c: agents' accounts as admins see and change them (src/chat/agent_api.c), over
 * a real server (tests/unit/support/chat_fixture.h): the list; a change's checks (400 for a field
 * it does not know, 422 for a bad value, 404, 409 for disabling oneself or the last admin), none
 * of which reaches the store; a rename that the agent's cached session sees at once; and
 * disabling, which holds everywhere at once: the agent's WebSocket closes (1008), its cached
 * session answers 401 `disabled` without a store read and its session is gone from the store, its
 * push ticket opens nothing, its login is 403 with the right password and 401 with a wrong one;
 * enabling lets it log in again. Presence: online with a console, away by choice, offline when
 * disabled, each change heard by the other consoles; across nodes, what is told and heard
 * (chat/nodes.c). A store that fails the change: 503, and
 * nothing changed. */
#include "support/chat_fixture.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "chat/nodes.h"
#include "support/failing_store.h"

/* The fixture's agent's id and the admin's, from the list. */
static int64_t agent_id, admin_id;

static int group_setup(void **state)
{
    cf_group_setup(state);
    cf_log_in_admin();
    cf_response_t *r = cf_request(AS_ADMIN, "GET", "/api/agents", NULL);
    assert_int_equal(r->status, 200);
    json_t *agents = json_object_get(r->json, "agents");
    assert_int_equal(json_array_size(agents), 2);
    agent_id = json_integer_value(json_object_get(json_array_get(agents, 0), "id"));
    admin_id = json_integer_value(json_object_get(json_array_get(agents, 1), "id"));
    cf_response_free(r);
    return 0;
}

/* PATCH /api/agents/<id> with body as the admin: the answer. */
static cf_response_t *patch(int64_t id, const char *body)
{
    char path[64];
    snprintf(path, sizeof path, "/api/agents/%lld", (long long)id);
    return cf_request(AS_ADMIN, "PATCH", path, body);
}

/* The answer's status and error code are these (code "" for a success). */
static void expect(cf_response_t *r, int status, const char *code, const char *what)
{
    if (r->status != status || strcmp(cf_error_code(r), code) != 0)
        fail_msg("%s: %d %s (%s)", what, r->status, cf_error_code(r), r->body);
    cf_response_free(r);
}

static void test_list_and_checks(void **state)
{
    (void)state;
    cf_response_t *r = cf_request(AS_ADMIN, "GET", "/api/agents", NULL);
    assert_int_equal(r->status, 200);
    json_t *agent = json_array_get(json_object_get(r->json, "agents"), 0);
    assert_string_equal(json_string_value(json_object_get(agent, "email")), AGENT_EMAIL);
    assert_string_equal(json_string_value(json_object_get(agent, "name")), "Agnes");
    assert_string_equal(json_string_value(json_object_get(agent, "role")), "agent");
    assert_true(json_integer_value(json_object_get(agent, "created_at")) > 0);
    assert_true(json_is_false(json_object_get(agent, "disabled")));
    assert_null(json_object_get(agent, "password_hash"));
    cf_response_free(r);

    static const struct {
        const char *body;
        int status;
        const char *code;
    } refused[] = {
        {"{\"disable\":true}", 400, "bad_request"},
        {"{\"name\":\"x\",\"email\":\"x@example.com\"}", 400, "bad_request"},
        {"{}", 422, "invalid"},
        {"{\"disabled\":\"yes\"}", 422, "invalid"},
        {"{\"disabled\":null}", 422, "invalid"},
        {"{\"name\":42}", 422, "invalid"},
        {"{\"role\":\"owner\"}", 422, "invalid"},
        {"{\"role\":null}", 422, "invalid"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect(patch(agent_id, refused[i].body), refused[i].status, refused[i].code,
               refused[i].body);
    char long_name[128];
    snprintf(long_name, sizeof long_name, "{\"name\":\"%081d\"}", 0);
    expect(patch(agent_id, long_name), 422, "invalid", "81 characters");
    expect(patch(admin_id, "{\"disabled\":true}"), 409, "conflict", "disabling oneself");
    assert_int_equal(failing_store_calls(cf->store, FS_OP(agent_update)), 0);
    /* These need the store: an unknown agent, the last admin. */
    expect(patch(agent_id + admin_id + 100, "{\"name\":\"x\"}"), 404, "not_found", "unknown");
    r = patch(admin_id, "{\"role\":\"agent\"}");
    assert_non_null(strstr(r->body, "enabled admin"));
    expect(r, 409, "conflict", "the last admin");

    /* A rename: the agent's cached session shows it at once. */
    r = cf_request(AS_AGENT, "GET", "/api/agent/me", NULL);
    cf_response_free(r);
    r = patch(agent_id, "{\"name\":\"  Agnes A.  \"}");
    assert_int_equal(r->status, 200);
    agent = json_object_get(r->json, "agent");
    assert_string_equal(json_string_value(json_object_get(agent, "name")), "Agnes A.");
    assert_int_equal(json_integer_value(json_object_get(agent, "id")), agent_id);
    cf_response_free(r);
    r = cf_request(AS_AGENT, "GET", "/api/agent/me", NULL);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r->json, "agent"), "name")), "Agnes A.");
    cf_response_free(r);
    expect(patch(agent_id, "{\"name\":\"Agnes\"}"), 200, "", "the name back");
}

/* The WebSocket's close frame with this code has arrived in in, and the server closed. */
static void assert_closed_with(int fd, kf_buf_t *in, unsigned code)
{
    assert_true(cf_pump(fd, in, 0));
    const unsigned char want[4] = {0x88, 0, (unsigned char)(code >> 8), (unsigned char)code};
    for (size_t i = 0; i + 4 <= in->len; i++) {
        const unsigned char *p = (const unsigned char *)in->data + i;
        if (p[0] == want[0] && p[1] >= 2 && p[1] < 126 && p[2] == want[2] && p[3] == want[3])
            return;
    }
    fail_msg("no close frame with %u in %zu bytes", code, in->len);
}

static void test_disable_holds_everywhere(void **state)
{
    (void)state;
    /* The agent is at work: a cached session, a ticket, a WebSocket. */
    cf_response_t *r = cf_request(AS_AGENT, "POST", "/api/agent/push-ticket", NULL);
    assert_int_equal(r->status, 201);
    char poll[256];
    snprintf(poll, sizeof poll, "/push/poll?after=0&ticket=%s",
             json_string_value(json_object_get(r->json, "ticket")));
    cf_response_free(r);
    kf_buf_t in;
    kf_buf_init(&in);
    int ws = cf_ws_open_as(AS_AGENT, &in);

    failing_store_reset(cf->store);
    r = patch(agent_id, "{\"disabled\":true}");
    assert_int_equal(r->status, 200);
    assert_true(json_is_true(json_object_get(json_object_get(r->json, "agent"), "disabled")));
    assert_non_null(strstr(r->log, "disabled by " ADMIN_EMAIL
                                   " (sessions ended: 1, push connections ended: 1)"));
    cf_response_free(r);
    assert_closed_with(ws, &in, 1008);
    close(ws);
    kf_buf_free(&in);

    /* The cached session says why, without asking the store; so does the store's, where the
     * session was not cached (another loop, another node), every time (not cached then). */
    r = cf_request(AS_AGENT, "GET", "/api/conversations", NULL);
    assert_non_null(strstr(r->body, "this account is disabled"));
    expect(r, 401, "disabled", "the cached session");
    assert_int_equal(failing_store_calls(cf->store, FS_OP(session_get)), 0);
    cf_forget_credentials();
    expect(cf_request(AS_AGENT, "GET", "/api/agent/me", NULL), 401, "disabled", "the session");
    expect(cf_request(AS_AGENT, "GET", "/api/agent/me", NULL), 401, "disabled", "again");
    assert_int_equal(failing_store_calls(cf->store, FS_OP(session_get)), 2);
    expect(cf_request(AS_NOBODY, "GET", poll, NULL), 401, "unauthorized", "the ticket");

    /* A login: 403 with the right password only. */
    expect(cf_request(AS_NOBODY, "POST", "/api/agent/login",
                      "{\"email\":\"" AGENT_EMAIL "\",\"password\":\"" AGENT_PASSWORD "\"}"),
           403, "disabled", "the right password");
    expect(cf_request(AS_NOBODY, "POST", "/api/agent/login",
                      "{\"email\":\"" AGENT_EMAIL "\",\"password\":\"wrong password\"}"),
           401, "unauthorized", "a wrong password");
    r = cf_request(AS_ADMIN, "GET", "/api/agents", NULL);
    json_t *listed = json_array_get(json_object_get(r->json, "agents"), 0);
    assert_true(json_is_true(json_object_get(listed, "disabled")));
    cf_response_free(r);

    /* Enabled: the old session stays ended (no longer said to be disabled); a login works. */
    expect(patch(agent_id, "{\"disabled\":false}"), 200, "", "enabling");
    expect(cf_request(AS_AGENT, "GET", "/api/agent/me", NULL), 401, "unauthorized", "old session");
    cf_log_in_agent();
    expect(cf_request(AS_AGENT, "GET", "/api/agent/me", NULL), 200, "", "a new session");
}

/* The status agent id shows in the list, as any agent reads it. */
static char *listed_status(int64_t id)
{
    cf_response_t *r = cf_request(AS_AGENT, "GET", "/api/agents", NULL);
    assert_int_equal(r->status, 200);
    char *status = NULL;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(r->json, "agents"), i, a)
    {
        if (json_integer_value(json_object_get(a, "id")) == id)
            status = strdup(json_string_value(json_object_get(a, "status")));
    }
    cf_response_free(r);
    assert_non_null(status);
    return status;
}

static void expect_status(int64_t id, const char *want)
{
    char *status = listed_status(id);
    assert_string_equal(status, want);
    free(status);
}

/* Presence: the agent's console (a WebSocket) makes it online, as every console hears; its
 * choice of away is shown to all; a bad choice is 400; disabling makes it offline at once. */
static void test_presence(void **state)
{
    (void)state;
    kf_buf_t admin_in, agent_in;
    kf_buf_init(&admin_in);
    kf_buf_init(&agent_in);
    int admin_ws = cf_ws_open_as(AS_ADMIN, &admin_in);
    expect_status(admin_id, "online");
    int agent_ws = cf_ws_open_as(AS_AGENT, &agent_in);
    char want[96];
    snprintf(want, sizeof want, "\"agent_id\":%lld,\"status\":\"online\"", (long long)agent_id);
    free(cf_ws_read_until(admin_ws, &admin_in, want));
    expect_status(agent_id, "online");

    cf_response_t *r = cf_request(AS_AGENT, "POST", "/api/agent/status", "{\"status\":\"away\"}");
    assert_int_equal(r->status, 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r->json, "agent"), "status")), "away");
    cf_response_free(r);
    snprintf(want, sizeof want, "\"agent_id\":%lld,\"status\":\"away\"", (long long)agent_id);
    free(cf_ws_read_until(admin_ws, &admin_in, want));
    expect_status(agent_id, "away");

    const char *bad[] = {"{\"status\":\"offline\"}", "{\"status\":\"busy\"}", "{}",
                         "{\"status\":\"away\",\"until\":1}", "{\"status\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = cf_request(AS_AGENT, "POST", "/api/agent/status", bad[i]);
        assert_non_null(strstr(r->body, "online"));
        expect(r, 400, "bad_request", bad[i]);
    }
    expect_status(agent_id, "away");

    expect(patch(agent_id, "{\"disabled\":true}"), 200, "", "disabling");
    snprintf(want, sizeof want, "\"agent_id\":%lld,\"status\":\"offline\"", (long long)agent_id);
    free(cf_ws_read_until(admin_ws, &admin_in, want));
    assert_closed_with(agent_ws, &agent_in, 1008);
    close(agent_ws);
    close(admin_ws);
    kf_buf_free(&admin_in);
    kf_buf_free(&agent_in);
    expect(patch(agent_id, "{\"disabled\":false}"), 200, "", "enabling");
    cf_log_in_agent();
}

/* What the app hands the bus for the other nodes (kf_hub_relay): the last KF_NODES_TOPIC news. */
static char relayed[512];

static bool nodes_relay_cb(void *ctx, const char *topic, bool prefix, kf_event_t *event)
{
    (void)ctx;
    if (!prefix && strcmp(topic, KF_NODES_TOPIC) == 0)
        snprintf(relayed, sizeof relayed, "%s", event->json);
    return false;
}

/* Another node's news, as the bus delivers it. */
static void hear(const char *json)
{
    kf_event_t *event = kf_chat_event(0, json_loads(json, 0, NULL));
    assert_non_null(event);
    kf_hub_deliver(cf->app->hub, KF_NODES_TOPIC, event);
    kf_event_unref(event);
}

/* Whether the last "here" news told names the agent. */
static bool told_here(int64_t id)
{
    json_t *news = json_loads(relayed, 0, NULL);
    bool found = false;
    size_t i;
    json_t *value;
    json_array_foreach(json_object_get(news, "agents"), i, value)
    {
        found = found || json_integer_value(value) == id;
    }
    json_decref(news);
    return found;
}

/* Presence across nodes (chat/nodes.c): a choice made here is told; a choice told by another
 * node shows once the agent's console is said to be open there; what does not parse changes
 * nothing; the agents whose console this node saw are told at each sweep, and not after a
 * logout told by another node. */
static void test_presence_across_nodes(void **state)
{
    (void)state;
    char json[256];
    kf_hub_set_relay(cf->app->hub, nodes_relay_cb, NULL, NULL);
    expect_status(agent_id, "offline");
    snprintf(json, sizeof json,
             "{\"type\":\"node\",\"what\":\"presence\",\"id\":%lld,\"status\":\"away\"}",
             (long long)agent_id);
    hear(json);
    expect_status(agent_id, "offline");
    snprintf(json, sizeof json, "{\"type\":\"node\",\"what\":\"here\",\"agents\":[%lld]}",
             (long long)agent_id);
    hear(json);
    expect_status(agent_id, "away");
    const char *hostile[] = {
        "{\"type\":\"node\",\"what\":\"here\",\"agents\":\"all\"}",
        "{\"type\":\"node\",\"what\":\"here\",\"agents\":[-1,0,\"2\",null,{}]}",
        "{\"type\":\"node\",\"what\":\"here\"}",
        "{\"type\":\"node\",\"what\":\"presence\",\"status\":\"online\"}",
        "{\"type\":\"node\",\"what\":\"presence\",\"id\":\"1\",\"status\":\"online\"}",
        "[]",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        kf_event_t *event = kf_chat_event(0, json_loads(hostile[i], JSON_DECODE_ANY, NULL));
        if (event != NULL) {
            kf_hub_deliver(cf->app->hub, KF_NODES_TOPIC, event);
            kf_event_unref(event);
        }
    }
    snprintf(json, sizeof json,
             "{\"type\":\"node\",\"what\":\"presence\",\"id\":%lld,\"status\":\"busy\"}",
             (long long)agent_id);
    hear(json);
    expect_status(agent_id, "away");

    /* Told here: the choice at once; then, at a sweep, that the agent's console is here. */
    relayed[0] = '\0';
    kf_nodes_tell_here(cf->app, 10000);
    assert_false(told_here(agent_id)); /* seen only elsewhere: not told on */
    cf_response_t *r = cf_request(AS_AGENT, "POST", "/api/agent/status", "{\"status\":\"online\"}");
    assert_int_equal(r->status, 200);
    cf_response_free(r);
    char want[96];
    snprintf(want, sizeof want, "\"what\":\"presence\",\"id\":%lld,\"status\":\"online\"",
             (long long)agent_id);
    assert_non_null(strstr(relayed, want));
    kf_nodes_tell_here(cf->app, 10000);
    assert_true(told_here(agent_id));
    /* Another node says the agent logged out: from then only connections keep it on here. */
    snprintf(json, sizeof json,
             "{\"type\":\"node\",\"what\":\"logout\",\"id\":%lld,\"hash\":\"%064d\"}",
             (long long)agent_id, 0);
    hear(json);
    relayed[0] = '\0';
    kf_nodes_tell_here(cf->app, 10000);
    assert_false(told_here(agent_id));
    kf_hub_set_relay(cf->app->hub, NULL, NULL, NULL);
}

/* A change the store fails, in its result or at once: 503, and the agent works on as before; a
 * list it fails: 500, logged. */
static void test_store_failures(void **state)
{
    (void)state;
    failing_store_fail_nth(cf->store, FS_OP(agent_update), 1, KF_EUNAVAIL);
    expect(patch(agent_id, "{\"disabled\":true}"), 503, "unavailable", "a failed write");
    expect(cf_request(AS_AGENT, "GET", "/api/agent/me", NULL), 200, "", "still at work");
    failing_store_fail_nth(cf->store, FS_OP(agent_list), 1, KF_ESTORE);
    cf_response_t *r = cf_request(AS_ADMIN, "GET", "/api/agents", NULL);
    assert_non_null(strstr(r->log, "failure"));
    expect(r, 500, "internal", "a failed list");
    failing_store_refuse_nth(cf->store, FS_OP(agent_update), 1, KF_EUNAVAIL);
    expect(patch(agent_id, "{\"role\":\"admin\"}"), 503, "unavailable", "refused at once");
    expect(cf_request(AS_AGENT, "GET", "/api/agent/me", NULL), 200, "", "still at work");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_list_and_checks, cf_test_setup),
        cmocka_unit_test_setup(test_disable_holds_everywhere, cf_test_setup),
        cmocka_unit_test_setup(test_presence, cf_test_setup),
        cmocka_unit_test_setup(test_presence_across_nodes, cf_test_setup),
        cmocka_unit_test_setup(test_store_failures, cf_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, cf_group_teardown);
}
