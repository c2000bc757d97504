/* codec.c: the bus's messages as bytes (the format is bus/bus.h's): a strict decoder, since the
 * bytes come from the network, and its encoder. */
#include <inttypes.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "bus/bus.h"

static const char magic[] = "kf1 ";
#define MAGIC_LEN (sizeof magic - 1)
/* The digits of UINT64_MAX. */
#define MAX_DIGITS 20

static bool is_kind(char c)
{
    return c == KF_BUS_EVENT || c == KF_BUS_PREFIX || c == KF_BUS_RESYNC;
}

static bool is_node(const char *node, size_t len)
{
    if (len != KF_BUS_NODE_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((node[i] >= '0' && node[i] <= '9') || (node[i] >= 'a' && node[i] <= 'f')))
            return false;
    }
    return true;
}

/* Printable ASCII without the space that ends it: the hub's topics ("agents", "visitor:12"). */
static bool is_topic(const char *topic, size_t len)
{
    if (len == 0 || len > KF_BUS_MAX_TOPIC)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (topic[i] <= ' ' || topic[i] > '~')
            return false;
    }
    return true;
}

/* What http/conn.c takes for a request id. */
static bool is_request_id(const char *id, size_t len)
{
    if (len == 0 || len >= KF_LOG_REQUEST_ID_SIZE)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

static bool is_json(const char *json, size_t len)
{
    return len >= 2 && json[0] == '{' && json[len - 1] == '}' && memchr(json, '\0', len) == NULL;
}

int kf_bus_encode(kf_buf_t *out, kf_bus_kind_t kind, const char *node, uint64_t id, int64_t born_ms,
                  const char *topic, const char *request_id, const char *json, size_t json_len)
{
    size_t topic_len = strlen(topic);
    if (!is_kind((char)kind) || !is_node(node, strlen(node)) || !is_topic(topic, topic_len) ||
        born_ms < 0 || !is_json(json, json_len))
        return KF_EINVAL;
    size_t request_id_len = request_id != NULL ? strlen(request_id) : 0;
    bool with_id = kind == KF_BUS_EVENT && is_request_id(request_id, request_id_len) &&
                   topic_len + 2 + request_id_len <= KF_BUS_MAX_TOPIC;
    kf_buf_reset(out);
    kf_buf_printf(out, "%s%c %s %" PRIu64 " %" PRId64 " %s%s%s\n", magic, (char)kind, node, id,
                  born_ms, topic, with_id ? ",@" : "", with_id ? request_id : "");
    kf_buf_append(out, json, json_len);
    return 0;
}

/* Reads a decimal number of 1 to MAX_DIGITS digits at *p (no sign, no leading zero but "0")
 * followed by end, not past limit; moves *p past end. */
static int read_number(const char **p, const char *limit, char end, uint64_t max, uint64_t *out)
{
    const char *s = *p;
    uint64_t value = 0;
    size_t digits = 0;
    while (s < limit && *s >= '0' && *s <= '9') {
        uint64_t digit = (uint64_t)(*s - '0');
        if (digits == MAX_DIGITS || value > (max - digit) / 10)
            return KF_EPROTO;
        value = value * 10 + digit;
        digits++;
        s++;
    }
    if (digits == 0 || (digits > 1 && **p == '0') || s == limit || *s != end)
        return KF_EPROTO;
    *p = s + 1;
    *out = value;
    return 0;
}

int kf_bus_decode(const char *data, size_t len, kf_bus_msg_t *msg)
{
    const char *limit = data + len;
    /* "kf1 " K " " NODE " " at least. */
    if (len < MAGIC_LEN + 2 + KF_BUS_NODE_LEN + 1 || memcmp(data, magic, MAGIC_LEN) != 0)
        return KF_EPROTO;
    const char *p = data + MAGIC_LEN;
    if (!is_kind(p[0]) || p[1] != ' ')
        return KF_EPROTO;
    msg->kind = (kf_bus_kind_t)p[0];
    p += 2;
    if (!is_node(p, KF_BUS_NODE_LEN) || p[KF_BUS_NODE_LEN] != ' ')
        return KF_EPROTO;
    msg->node = p;
    p += KF_BUS_NODE_LEN + 1;
    uint64_t born;
    if (read_number(&p, limit, ' ', UINT64_MAX, &msg->id) != 0 ||
        read_number(&p, limit, ' ', INT64_MAX, &born) != 0)
        return KF_EPROTO;
    msg->born_ms = (int64_t)born;
    const char *newline = memchr(p, '\n', (size_t)(limit - p));
    if (newline == NULL || !is_topic(p, (size_t)(newline - p)))
        return KF_EPROTO;
    msg->topic = p;
    msg->topic_len = (size_t)(newline - p);
    msg->request_id = NULL;
    msg->request_id_len = 0;
    if (msg->kind == KF_BUS_EVENT) {
        /* The last element, after a comma: ",@" and a valid id. */
        const char *at = NULL;
        for (const char *q = newline - 1; q > p; q--) {
            if (*q == ',') {
                at = q;
                break;
            }
        }
        if (at != NULL && at[1] == '@' && is_request_id(at + 2, (size_t)(newline - at - 2))) {
            msg->request_id = at + 2;
            msg->request_id_len = (size_t)(newline - at - 2);
            msg->topic_len = (size_t)(at - p);
        }
    }
    msg->json = newline + 1;
    msg->json_len = (size_t)(limit - msg->json);
    if (!is_json(msg->json, msg->json_len))
        return KF_EPROTO;
    return 0;
}
