/* test_sse.c: Server-Sent Events (push/sse.c): the opening lines, id:/event:/data: per event,
 * heartbeats, and Last-Event-ID over the URL's cursor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "http/ws.h"
#include "support/push_fixture.h"

static void test_sse(void **state)
{
    (void)state;
    lc_client_t *c;
    pf_store("one");
    c = lc_get("/sse?after=0", "");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"1\"}"));
    assert_true(lc_seen(c, "Content-Type: text/event-stream"));
    assert_true(lc_seen(c, "X-Accel-Buffering: no"));
    assert_true(lc_seen(c, "retry: 2000\n"));
    assert_true(lc_seen(c, "event: heartbeat\ndata: {\"type\":\"heartbeat\"}\n\n"));
    assert_true(lc_seen(c, "id: 1\nevent: message\ndata: {\"type\":\"message\""));
    pf_store_publish("live");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"2\"}\n\n"));
    assert_true(lc_seen(c, "id: 2\nevent: message\n"));
    pf_publish_typing(); /* an ephemeral event: no id: line, the browser keeps its last id */
    LC_RUN_UNTIL(lc_seen(c, "{\"type\":\"typing\"}"));
    assert_true(lc_seen(c, "\r\nevent: typing\ndata: {\"type\":\"typing\"}\n\n\r\n")); /* a chunk */
    LC_RUN_UNTIL(lc_seen(c, ": heartbeat\n\n")); /* a comment line, and an event for the page */
    lc_close(c);
    /* Last-Event-ID beats the URL's cursor. */
    c = lc_get("/sse?after=0", "Last-Event-ID: 1\r\n");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"2\"}"));
    assert_false(lc_seen(c, "\"id\":\"1\"}"));
    lc_close(c);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, push_fixture_setup, push_fixture_teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_sse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
