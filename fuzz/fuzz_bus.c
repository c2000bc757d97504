/* fuzz_bus.c: libFuzzer target for the decoder of the bus's messages (bus/codec.c): the bytes a
 * node reads from Redis, which anyone who can publish on the channel controls. A message that
 * decodes must hold what bus/bus.h promises (views inside the input, a known kind, a 16-hex node,
 * a topic of printable ASCII, an object without NUL bytes, a request id last among an event's
 * topics), and encoding what was decoded must
 * give back the input byte for byte: the format has one spelling for each message. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "bus/bus.h"

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant failed: %s\n", what);
        abort();
    }
}

static bool inside(const char *p, size_t len, const uint8_t *data, size_t size)
{
    return p >= (const char *)data && p + len <= (const char *)data + size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kf_bus_msg_t msg;
    if (kf_bus_decode((const char *)data, size, &msg) != 0)
        return 0;
    check(msg.kind == KF_BUS_EVENT || msg.kind == KF_BUS_PREFIX || msg.kind == KF_BUS_RESYNC,
          "kind");
    check(inside(msg.node, KF_BUS_NODE_LEN, data, size), "node inside the input");
    check(inside(msg.topic, msg.topic_len, data, size), "topic inside the input");
    check(inside(msg.json, msg.json_len, data, size), "json inside the input");
    check(msg.topic_len >= 1 && msg.topic_len <= KF_BUS_MAX_TOPIC, "topic length");
    check(msg.born_ms >= 0, "born_ms");
    check(msg.json_len >= 2 && msg.json[0] == '{' && msg.json[msg.json_len - 1] == '}',
          "json object");
    check(memchr(msg.json, '\0', msg.json_len) == NULL, "json without NUL");
    for (size_t i = 0; i < msg.topic_len; i++)
        check(msg.topic[i] > ' ' && msg.topic[i] <= '~', "topic printable");

    char node[KF_BUS_NODE_LEN + 1];
    memcpy(node, msg.node, KF_BUS_NODE_LEN);
    node[KF_BUS_NODE_LEN] = '\0';
    char topic[KF_BUS_MAX_TOPIC + 1];
    memcpy(topic, msg.topic, msg.topic_len);
    topic[msg.topic_len] = '\0';
    char request_id[KF_BUS_MAX_TOPIC + 1] = "";
    if (msg.request_id != NULL) {
        check(msg.kind == KF_BUS_EVENT, "a request id on an event only");
        check(inside(msg.request_id, msg.request_id_len, data, size), "request id inside");
        check(msg.request_id_len >= 1 && msg.request_id_len <= 64, "request id length");
        check(msg.topic_len >= 1 && msg.request_id == msg.topic + msg.topic_len + 2,
              "the request id last in the topic list");
        memcpy(request_id, msg.request_id, msg.request_id_len);
        request_id[msg.request_id_len] = '\0';
    }
    kf_buf_t out;
    kf_buf_init(&out);
    check(kf_bus_encode(&out, msg.kind, node, msg.id, msg.born_ms, topic,
                        msg.request_id != NULL ? request_id : NULL, msg.json, msg.json_len) == 0,
          "what decodes encodes");
    check(out.len == size && memcmp(out.data, data, size) == 0, "round trip is exact");
    kf_buf_free(&out);
    return 0;
}
