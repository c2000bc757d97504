/* test_ws.c: the WebSocket transport (push/ws.c): frames both ways, fragments with control
 * frames between them, pings and pongs, close codes, bad handshakes and dead peers. */
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

/* Sends a frame that must make the server close with code, and checks that it does. */
static void expect_close(unsigned first_byte, const char *payload, size_t len, bool masked,
                         int code)
{
    lc_client_t *c;
    c = pf_ws_open("after=0");
    lc_ws_send(c, first_byte, payload, len, masked);
    LC_RUN_UNTIL(lc_ws_close_code(c) != -1 && c->eof);
    assert_int_equal(lc_ws_close_code(c), code);
    lc_close(c);
}

static void test_ws_frames_both_ways(void **state)
{
    (void)state;
    lc_client_t *c;
    pf_store("old");
    c = pf_ws_open("after=0");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"1\"}"));
    pf_store_publish("live");
    LC_RUN_UNTIL(lc_seen(c, "\"id\":\"2\"}"));
    lc_ws_send(c, 0x81, "{\"hi\":1}", 8, true);
    LC_RUN_UNTIL(lc_seen(c, "{\"echo\":{\"hi\":1}}"));
    /* A fragmented message with a ping between its fragments: the pong comes at once. */
    lc_ws_send(c, 0x01, "{\"part", 6, true);
    lc_ws_send(c, 0x89, "pp", 2, true);
    lc_ws_send(c, 0x80, "\":2}", 4, true);
    LC_RUN_UNTIL(lc_seen(c, "{\"echo\":{\"part\":2}}"));
    assert_true(lc_seen(c, "\x8a\x02pp"));
    assert_true(lc_find(c, "\x8a\x02pp") < lc_find(c, "{\"echo\":{\"part\":2}}"));
    /* A 200-byte message (16-bit length both ways). */
    char big[201];
    memset(big, 'x', sizeof big);
    big[0] = '"';
    big[199] = '"';
    big[200] = '\0';
    lc_ws_send(c, 0x81, big, 200, true);
    LC_RUN_UNTIL(pf->received == 3 && lc_seen(c, "xx\"}"));
    /* The server pings a quiet connection every heartbeat_ms. */
    LC_RUN_UNTIL(lc_ws_count(c, KF_WS_PING) >= 1);
    lc_ws_send(c, 0x8a, "", 0, true); /* our pong */
    lc_ws_send(c, 0x88, "\x03\xe8", 2, true);
    LC_RUN_UNTIL(lc_ws_close_code(c) != -1 && c->eof);
    assert_int_equal(lc_ws_close_code(c), 1000);
    lc_close(c);
    assert_int_equal(kf_push_client_count(pf->push), 0);
}

static void test_ws_close_codes(void **state)
{
    (void)state;
    char big[1500];
    memset(big, 'a', sizeof big);
    expect_close(0x81, "x", 1, false, KF_WS_CLOSE_PROTOCOL);        /* unmasked */
    expect_close(0x81, "\xc3\x28", 2, true, KF_WS_CLOSE_BAD_DATA);  /* invalid UTF-8 */
    expect_close(0x81, big, sizeof big, true, KF_WS_CLOSE_TOO_BIG); /* over ws_max_message */
    expect_close(0x82, "\x01", 1, true, KF_WS_CLOSE_UNSUPPORTED);   /* binary */
    expect_close(0x80, "x", 1, true, KF_WS_CLOSE_PROTOCOL);         /* a stray continuation */
    expect_close(0x88, "\x03", 1, true, KF_WS_CLOSE_PROTOCOL);      /* a bad close payload */
    expect_close(0x88, "", 0, true, KF_WS_CLOSE_NORMAL);            /* no code: 1000 back */
    expect_close(0x88, "\x0f\xa0", 2, true, 4000);                  /* an application's code */
    assert_int_equal(kf_push_client_count(pf->push), 0);
}

static void test_ws_bad_handshakes(void **state)
{
    (void)state;
    static const struct {
        const char *headers, *status;
    } cases[] = {
        {"", "426"},
        {"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
         "426"},
        {"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", "400"},
        {"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Key: short\r\n",
         "400"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lc_client_t *c;
        c = lc_get("/ws", cases[i].headers);
        LC_RUN_UNTIL(lc_seen(c, "}"));
        char status[16];
        snprintf(status, sizeof status, "HTTP/1.1 %s", cases[i].status);
        if (!lc_seen(c, status))
            fail_msg("case %zu: want %s, got %.*s", i, status, (int)c->in.len, c->in.data);
        lc_close(c);
    }
    assert_int_equal(pf->replay_calls, 0);
}

static void test_ws_dead_peer(void **state)
{
    (void)state;
    pf->config.ws_dead_ms = 2500;
    pf_restart();
    lc_client_t *quiet, *alive;
    quiet = pf_ws_open("after=0");
    alive = pf_ws_open("after=0");
    size_t pongs = 0;
    while (!quiet->eof) {
        LC_RUN_UNTIL(lc_ws_count(alive, KF_WS_PING) > pongs || quiet->eof);
        for (; pongs < lc_ws_count(alive, KF_WS_PING); pongs++)
            lc_ws_send(alive, 0x8a, "", 0, true);
    }
    assert_int_equal(lc_ws_close_code(quiet), -1); /* no close frame for a dead peer */
    assert_true(lc_ws_count(quiet, KF_WS_PING) >= 2);
    assert_false(alive->eof);
    assert_int_equal(kf_push_client_count(pf->push), 1);
    lc_close(quiet);
    lc_close(alive);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, push_fixture_setup, push_fixture_teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_ws_frames_both_ways),
        TEST(test_ws_close_codes),
        TEST(test_ws_bad_handshakes),
        TEST(test_ws_dead_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
