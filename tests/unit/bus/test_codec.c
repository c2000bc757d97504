/* test_codec.c: unit tests for bus/codec.c (the bus's messages as bytes) and the bus address
 * parser of bus/bus.c: round trips, every message fed whole and cut short at every byte, and
 * hostile bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "bus/bus.h"

#include <stdio.h>
#include <string.h>

#define NODE "0123456789abcdef"

typedef struct good {
    kf_bus_kind_t kind;
    uint64_t id;
    int64_t born_ms;
    const char *topic;
    const char *request_id; /* NULL: none */
    const char *json;
    const char *wire; /* what it encodes to */
} good_t;

static const good_t goods[] = {
    {KF_BUS_EVENT, 42, 1700000000000, "visitor:7", NULL, "{\"type\":\"message\",\"id\":\"42\"}",
     "kf1 e " NODE " 42 1700000000000 visitor:7\n{\"type\":\"message\",\"id\":\"42\"}"},
    {KF_BUS_EVENT, 0, 0, "agents", NULL, "{\"type\":\"typing\"}",
     "kf1 e " NODE " 0 0 agents\n{\"type\":\"typing\"}"},
    {KF_BUS_PREFIX, 0, 0, "visitor:", NULL, "{\"type\":\"settings\"}",
     "kf1 p " NODE " 0 0 visitor:\n{\"type\":\"settings\"}"},
    {KF_BUS_RESYNC, UINT64_MAX, INT64_MAX, "-", NULL, "{}",
     "kf1 r " NODE " 18446744073709551615 9223372036854775807 -\n{}"},
    /* JSON may hold newlines and spaces (only the header is line-based), and any UTF-8. */
    {KF_BUS_EVENT, 7, 1, "agents", NULL, "{\"body\":\"a\\nb \xe4\xbd\xa0\xe5\xa5\xbd\"}",
     "kf1 e " NODE " 7 1 agents\n{\"body\":\"a\\nb \xe4\xbd\xa0\xe5\xa5\xbd\"}"},
    {KF_BUS_EVENT, 1, 1, "a", NULL, "{\n}", "kf1 e " NODE " 1 1 a\n{\n}"},
    /* The request that caused an event: the last of its topics, after ",@". */
    {KF_BUS_EVENT, 9, 1, "visitor:7,agents", "068c817b00000007", "{}",
     "kf1 e " NODE " 9 1 visitor:7,agents,@068c817b00000007\n{}"},
    {KF_BUS_EVENT, 9, 1, "a", "x.Y_z:1-2", "{}", "kf1 e " NODE " 9 1 a,@x.Y_z:1-2\n{}"},
    /* "@..." elsewhere, alone, or not an id: a topic. */
    {KF_BUS_EVENT, 9, 1, "a,@b,c", NULL, "{}", "kf1 e " NODE " 9 1 a,@b,c\n{}"},
    {KF_BUS_EVENT, 9, 1, "@b", NULL, "{}", "kf1 e " NODE " 9 1 @b\n{}"},
    {KF_BUS_EVENT, 9, 1, "a,@b/c", NULL, "{}", "kf1 e " NODE " 9 1 a,@b/c\n{}"},
    {KF_BUS_EVENT, 9, 1, "a,@", NULL, "{}", "kf1 e " NODE " 9 1 a,@\n{}"},
};

static void test_encode_decode_round_trip(void **state)
{
    (void)state;
    kf_buf_t out;
    kf_buf_init(&out);
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        const good_t *g = &goods[i];
        assert_int_equal(kf_bus_encode(&out, g->kind, NODE, g->id, g->born_ms, g->topic,
                                       g->request_id, g->json, strlen(g->json)),
                         0);
        assert_int_equal(out.len, strlen(g->wire));
        assert_memory_equal(out.data, g->wire, out.len);
        kf_bus_msg_t msg;
        assert_int_equal(kf_bus_decode(g->wire, strlen(g->wire), &msg), 0);
        assert_int_equal(msg.kind, g->kind);
        assert_memory_equal(msg.node, NODE, KF_BUS_NODE_LEN);
        assert_true(msg.id == g->id);
        assert_true(msg.born_ms == g->born_ms);
        assert_int_equal(msg.topic_len, strlen(g->topic));
        assert_memory_equal(msg.topic, g->topic, msg.topic_len);
        if (g->request_id == NULL) {
            assert_null(msg.request_id);
        } else {
            assert_int_equal(msg.request_id_len, strlen(g->request_id));
            assert_memory_equal(msg.request_id, g->request_id, msg.request_id_len);
        }
        assert_int_equal(msg.json_len, strlen(g->json));
        assert_memory_equal(msg.json, g->json, msg.json_len);
    }
    kf_buf_free(&out);
}

/* No proper prefix of a message is one (the JSON's last '}' comes last), and the decoder never
 * reads past the length it is given: each prefix is decoded from its own exact-size copy. */
static void test_every_prefix_is_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        const char *wire = goods[i].wire;
        size_t len = strlen(wire);
        for (size_t cut = 0; cut < len; cut++) {
            char *copy = test_malloc(cut > 0 ? cut : 1);
            memcpy(copy, wire, cut);
            kf_bus_msg_t msg;
            int rc = kf_bus_decode(copy, cut, &msg);
            test_free(copy);
            assert_int_equal(rc, KF_EPROTO);
        }
    }
}

static void test_hostile_bytes_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "kf1 ",
        "kf2 e " NODE " 1 1 t\n{}",                     /* another version */
        "KF1 e " NODE " 1 1 t\n{}",                     /* magic is lower case */
        "kf1 x " NODE " 1 1 t\n{}",                     /* unknown kind */
        "kf1 E " NODE " 1 1 t\n{}",                     /* kinds are lower case */
        "kf1 e 0123456789ABCDEF 1 1 t\n{}",             /* node in upper case */
        "kf1 e 0123456789abcde 1 1 t\n{}",              /* node too short */
        "kf1 e 0123456789abcdef0 1 1 t\n{}",            /* node too long */
        "kf1 e " NODE "  1 1 t\n{}",                    /* two spaces */
        "kf1 e " NODE " 01 1 t\n{}",                    /* leading zero */
        "kf1 e " NODE " +1 1 t\n{}",                    /* a sign */
        "kf1 e " NODE " -1 1 t\n{}",                    /* negative */
        "kf1 e " NODE " 18446744073709551616 1 t\n{}",  /* past UINT64_MAX */
        "kf1 e " NODE " 99999999999999999999 1 t\n{}",  /* past UINT64_MAX, 20 digits */
        "kf1 e " NODE " 184467440737095516150 1 t\n{}", /* 21 digits */
        "kf1 e " NODE " 1 9223372036854775808 t\n{}",   /* born past INT64_MAX */
        "kf1 e " NODE " 1 -5 t\n{}",                    /* born negative */
        "kf1 e " NODE " 1 1 \n{}",                      /* empty topic */
        "kf1 e " NODE " 1 1 a b\n{}",                   /* a space in the topic */
        "kf1 e " NODE " 1 1 a\tb\n{}",                  /* a tab in the topic */
        "kf1 e " NODE " 1 1 a\x7f\n{}",                 /* DEL in the topic */
        "kf1 e " NODE " 1 1 a\xc3\xa9\n{}",             /* non-ASCII in the topic */
        "kf1 e " NODE " 1 1 t{}",                       /* no line end */
        "kf1 e " NODE " 1 1 t\n",                       /* no JSON */
        "kf1 e " NODE " 1 1 t\n{",                      /* half an object */
        "kf1 e " NODE " 1 1 t\n[]",                     /* not an object */
        "kf1 e " NODE " 1 1 t\n\"{}\"",                 /* a string */
        "kf1 e " NODE " 1 1 t\n {}",                    /* space before */
        "kf1 e " NODE " 1 1 t\n{} ",                    /* space after */
        "kf1 e " NODE " 1 1 t\r\n{}",                   /* CR is not in a topic */
        "kf1 e " NODE " 1\n{}",                         /* born and topic missing */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kf_bus_msg_t msg;
        if (kf_bus_decode(bad[i], strlen(bad[i]), &msg) != KF_EPROTO)
            fail_msg("accepted: %s", bad[i]);
    }
    /* A NUL byte inside the JSON (its length says so) is refused too. */
    static const char with_nul[] = "kf1 e " NODE " 1 1 t\n{\"a\":\"\0\"}";
    kf_bus_msg_t msg;
    assert_int_equal(kf_bus_decode(with_nul, sizeof with_nul - 1, &msg), KF_EPROTO);
    /* The longest topic passes, one more byte does not. */
    char topic[KF_BUS_MAX_TOPIC + 2];
    memset(topic, 'x', sizeof topic - 1);
    topic[KF_BUS_MAX_TOPIC] = '\0';
    char wire[512];
    int n = snprintf(wire, sizeof wire, "kf1 e " NODE " 1 1 %s\n{}", topic);
    assert_int_equal(kf_bus_decode(wire, (size_t)n, &msg), 0);
    assert_int_equal(msg.topic_len, KF_BUS_MAX_TOPIC);
    topic[KF_BUS_MAX_TOPIC] = 'x';
    topic[KF_BUS_MAX_TOPIC + 1] = '\0';
    n = snprintf(wire, sizeof wire, "kf1 e " NODE " 1 1 %s\n{}", topic);
    assert_int_equal(kf_bus_decode(wire, (size_t)n, &msg), KF_EPROTO);
}

/* Every single byte changed to every value: either refused, or a message that encodes back to
 * exactly those bytes. */
static void test_every_byte_flipped(void **state)
{
    (void)state;
    const char *wire = goods[0].wire;
    size_t len = strlen(wire);
    char copy[256];
    kf_buf_t out;
    kf_buf_init(&out);
    for (size_t at = 0; at < len; at++) {
        for (int value = 0; value < 256; value++) {
            memcpy(copy, wire, len);
            copy[at] = (char)value;
            kf_bus_msg_t msg;
            if (kf_bus_decode(copy, len, &msg) != 0)
                continue;
            char node[KF_BUS_NODE_LEN + 1], topic[KF_BUS_MAX_TOPIC + 1];
            memcpy(node, msg.node, KF_BUS_NODE_LEN);
            node[KF_BUS_NODE_LEN] = '\0';
            memcpy(topic, msg.topic, msg.topic_len);
            topic[msg.topic_len] = '\0';
            char request_id[KF_BUS_MAX_TOPIC + 1] = "";
            if (msg.request_id != NULL)
                memcpy(request_id, msg.request_id, msg.request_id_len);
            assert_int_equal(kf_bus_encode(&out, msg.kind, node, msg.id, msg.born_ms, topic,
                                           request_id, msg.json, msg.json_len),
                             0);
            assert_int_equal(out.len, len);
            assert_memory_equal(out.data, copy, len);
        }
    }
    kf_buf_free(&out);
}

/* The encoder refuses what the decoder would, so that a node never sends what others drop. */
static void test_encode_refuses(void **state)
{
    (void)state;
    kf_buf_t out;
    kf_buf_init(&out);
    assert_int_equal(kf_bus_encode(&out, KF_BUS_EVENT, "short", 1, 1, "t", NULL, "{}", 2),
                     KF_EINVAL);
    assert_int_equal(kf_bus_encode(&out, KF_BUS_EVENT, NODE, 1, 1, "a b", NULL, "{}", 2),
                     KF_EINVAL);
    assert_int_equal(kf_bus_encode(&out, KF_BUS_EVENT, NODE, 1, 1, "", NULL, "{}", 2), KF_EINVAL);
    assert_int_equal(kf_bus_encode(&out, KF_BUS_EVENT, NODE, 1, -1, "t", NULL, "{}", 2), KF_EINVAL);
    assert_int_equal(kf_bus_encode(&out, KF_BUS_EVENT, NODE, 1, 1, "t", NULL, "[]", 2), KF_EINVAL);
    assert_int_equal(kf_bus_encode(&out, KF_BUS_EVENT, NODE, 1, 1, "t", NULL, "{\0}", 3),
                     KF_EINVAL);
    assert_int_equal(kf_bus_encode(&out, (kf_bus_kind_t)'x', NODE, 1, 1, "t", NULL, "{}", 2),
                     KF_EINVAL);
    kf_buf_free(&out);
}

static void test_url_parse(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        const char *host; /* NULL: refused */
        int port;
    } cases[] = {
        {"redis://127.0.0.1:6379", "127.0.0.1", 6379},
        {"redis://127.0.0.1", "127.0.0.1", 6379},
        {"redis://localhost:7000/", "localhost", 7000},
        {"redis://[::1]:6380", "::1", 6380},
        {"redis://[::1]", "::1", 6379},
        {"redis://redis.internal:1", "redis.internal", 1},
        {"redis://h:65535", "h", 65535},
        {"redis://h:65536", NULL, 0},
        {"redis://h:0", NULL, 0},
        {"redis://h:", NULL, 0},
        {"redis://h:-1", NULL, 0},
        {"redis://h:+1", NULL, 0},
        {"redis://h:12x", NULL, 0},
        {"redis://h/0", "h", 6379},
        {"redis://h:7/15", "h", 7},
        {"redis://:pw@h", "h", 6379},
        {"redis://u:pw@h:7/3", "h", 7},
        {"redis://:p%40ss%3a@[::1]:9/1", "::1", 9},
        {"redis://h/1024", NULL, 0},
        {"redis://h/01", NULL, 0},
        {"redis://h/x", NULL, 0},
        {"redis://h/1/", NULL, 0},
        {"redis://u@h", NULL, 0},    /* a user alone: nothing to AUTH with */
        {"redis://u:@h", NULL, 0},   /* an empty password */
        {"redis://:p%4@h", NULL, 0}, /* a bad escape */
        {"redis://:p%00@h", NULL, 0},
        {"redis://h?x=1", NULL, 0},
        {"redis://", NULL, 0},
        {"redis://:6379", NULL, 0},
        {"redis://[::1", NULL, 0},
        {"rediss://h", NULL, 0},
        {"http://h:6379", NULL, 0},
        {"127.0.0.1:6379", NULL, 0},
        {"", NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kf_bus_url_t url;
        int rc = kf_bus_url_parse(cases[i].url, &url);
        if (cases[i].host == NULL) {
            if (rc != KF_EINVAL)
                fail_msg("accepted: %s", cases[i].url);
            continue;
        }
        if (rc != 0)
            fail_msg("refused: %s", cases[i].url);
        assert_string_equal(url.host, cases[i].host);
        assert_int_equal(url.port, cases[i].port);
    }
    /* What AUTH and SELECT get. */
    static const struct {
        const char *url, *user, *password;
        int db;
    } credentials[] = {
        {"redis://h", "", "", 0},
        {"redis://h/", "", "", 0},
        {"redis://:pw@h/2", "", "pw", 2},
        {"redis://u:pw@h:7/3", "u", "pw", 3},
        {"redis://:p%40ss%3a@[::1]:9/1", "", "p@ss:", 1},
        {"redis://:a@b@h", "", "a@b", 0}, /* the last '@' ends the password */
    };
    for (size_t i = 0; i < sizeof credentials / sizeof credentials[0]; i++) {
        kf_bus_url_t url;
        assert_int_equal(kf_bus_url_parse(credentials[i].url, &url), 0);
        assert_string_equal(url.user, credentials[i].user);
        assert_string_equal(url.password, credentials[i].password);
        assert_int_equal(url.db, credentials[i].db);
    }
    /* A host too long for the buffer is refused, not cut. */
    char url[400] = "redis://";
    memset(url + 8, 'h', 300);
    url[308] = '\0';
    kf_bus_url_t parsed;
    assert_int_equal(kf_bus_url_parse(url, &parsed), KF_EINVAL);
}

/* The password never reaches a log line. */
static void test_url_redact(void **state)
{
    (void)state;
    static const struct {
        const char *url, *shown;
    } cases[] = {
        {"redis://127.0.0.1:6379", "redis://127.0.0.1:6379"},
        {"redis://:secret@h:7/1", "redis://:***@h:7/1"},
        {"redis://kefu:secret@h", "redis://kefu:***@h"},
        {"redis://:a@b@h", "redis://:***@h"},
        {"redis://u@h", "(a bad address)"},
        {"redis://:secret@h?x", "(a bad address)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[128];
        kf_bus_url_redact(cases[i].url, out, sizeof out);
        assert_string_equal(out, cases[i].shown);
    }
    char small[12];
    kf_bus_url_redact("redis://:secretpassword@h", small, sizeof small);
    assert_null(strstr(small, "secret"));
}

/* A request id goes with an event only, when it is a valid id and fits; otherwise the message is
 * sent without it (never refused for it). */
static void test_request_id_left_out(void **state)
{
    (void)state;
    kf_buf_t out;
    kf_buf_init(&out);
    static const struct {
        kf_bus_kind_t kind;
        const char *topic, *request_id, *wire;
    } cases[] = {
        {KF_BUS_PREFIX, "visitor:", "r1", "kf1 p " NODE " 1 1 visitor:\n{}"},
        {KF_BUS_RESYNC, "-", "r1", "kf1 r " NODE " 1 1 -\n{}"},
        {KF_BUS_EVENT, "t", "", "kf1 e " NODE " 1 1 t\n{}"},
        {KF_BUS_EVENT, "t", "a b", "kf1 e " NODE " 1 1 t\n{}"},
        {KF_BUS_EVENT, "t", "a,b", "kf1 e " NODE " 1 1 t\n{}"},
        {KF_BUS_EVENT, "t",
         "12345678901234567890123456789012345678901234567890123456789012345", /* 65 */
         "kf1 e " NODE " 1 1 t\n{}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(kf_bus_encode(&out, cases[i].kind, NODE, 1, 1, cases[i].topic,
                                       cases[i].request_id, "{}", 2),
                         0);
        assert_int_equal(out.len, strlen(cases[i].wire));
        assert_memory_equal(out.data, cases[i].wire, out.len);
    }
    /* A topic list that leaves no room: the event goes, without the id. */
    char topic[KF_BUS_MAX_TOPIC + 1];
    memset(topic, 'x', KF_BUS_MAX_TOPIC - 3);
    topic[KF_BUS_MAX_TOPIC - 3] = '\0';
    assert_int_equal(kf_bus_encode(&out, KF_BUS_EVENT, NODE, 1, 1, topic, "ab", "{}", 2), 0);
    assert_null(memchr(out.data, '@', out.len));
    assert_int_equal(kf_bus_encode(&out, KF_BUS_EVENT, NODE, 1, 1, topic, "a", "{}", 2), 0);
    kf_bus_msg_t msg;
    assert_int_equal(kf_bus_decode(out.data, out.len, &msg), 0);
    assert_int_equal(msg.request_id_len, 1);
    assert_int_equal(msg.topic_len, KF_BUS_MAX_TOPIC - 3);
    kf_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_decode_round_trip),
        cmocka_unit_test(test_every_prefix_is_refused),
        cmocka_unit_test(test_hostile_bytes_are_refused),
        cmocka_unit_test(test_every_byte_flipped),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_request_id_left_out),
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_url_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
