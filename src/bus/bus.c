/* bus.c: the bus interface's dispatch, its address parser and the in-process bus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "bus/internal.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies len bytes of a URL's user or password into out (size bytes), undoing %XX escapes.
 * Returns 0 or KF_EINVAL (a bad escape, a NUL, too long). */
static int unescape(const char *in, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            if (len - i < 3)
                return KF_EINVAL;
            int h = hex_value(in[i + 1]), l = hex_value(in[i + 2]);
            if (h < 0 || l < 0)
                return KF_EINVAL;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || n + 1 >= size)
            return KF_EINVAL;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

/* Where the user and password end: the last '@' before the path (a password may hold an
 * escaped '@' only, but be kind to one written plainly). NULL when there is none. */
static const char *credentials_end(const char *authority)
{
    size_t len = strcspn(authority, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < len; i++) {
        if (authority[i] == '@')
            at = authority + i;
    }
    return at;
}

int kf_bus_url_parse(const char *url, kf_bus_url_t *out)
{
    static const char scheme[] = "redis://";
    size_t scheme_len = sizeof scheme - 1;
    if (strncmp(url, scheme, scheme_len) != 0)
        return KF_EINVAL;
    memset(out, 0, sizeof *out);
    const char *host = url + scheme_len;
    const char *at = credentials_end(host);
    if (at != NULL) {
        const char *colon = memchr(host, ':', (size_t)(at - host));
        /* A user alone has nothing to AUTH with. */
        if (colon == NULL || colon + 1 == at ||
            unescape(host, (size_t)(colon - host), out->user, sizeof out->user) != 0 ||
            unescape(colon + 1, (size_t)(at - colon - 1), out->password, sizeof out->password) != 0)
            return KF_EINVAL;
        host = at + 1;
    }
    const char *host_end;
    const char *rest;
    if (host[0] == '[') {
        host++;
        host_end = strchr(host, ']');
        if (host_end == NULL)
            return KF_EINVAL;
        rest = host_end + 1;
    } else {
        host_end = host + strcspn(host, ":/@?#");
        rest = host_end;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len >= sizeof out->host || memchr(host, '@', host_len) != NULL)
        return KF_EINVAL;
    long port = 6379;
    if (rest[0] == ':') {
        char *end;
        port = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || rest[1] < '0' || rest[1] > '9' || port < 1 || port > 65535)
            return KF_EINVAL;
        rest = end;
    }
    long db = 0;
    if (rest[0] == '/' && rest[1] != '\0') {
        char *end;
        db = strtol(rest + 1, &end, 10);
        if (rest[1] < '0' || rest[1] > '9' || db > 1023 || (rest[1] == '0' && end != rest + 2))
            return KF_EINVAL;
        rest = end;
    } else if (rest[0] == '/') {
        rest++;
    }
    /* A query (options such as a time-out): refused rather than ignored, so that nobody believes
     * it took effect. */
    if (rest[0] != '\0')
        return KF_EINVAL;
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = (int)port;
    out->db = (int)db;
    return 0;
}

void kf_bus_url_redact(const char *url, char *out, size_t size)
{
    kf_bus_url_t parsed;
    if (size == 0)
        return;
    if (kf_bus_url_parse(url, &parsed) != 0) {
        snprintf(out, size, "(a bad address)");
        return;
    }
    const char *host = url + strlen("redis://");
    const char *at = credentials_end(host);
    if (at == NULL) {
        snprintf(out, size, "%s", url);
        return;
    }
    const char *colon = memchr(host, ':', (size_t)(at - host));
    snprintf(out, size, "redis://%.*s:***%s", (int)(colon - host), host, at);
}

static bool local_ready(const kf_bus_t *bus)
{
    (void)bus;
    return true;
}

static void local_free(kf_bus_t *bus)
{
    free(bus);
}

/* One node: nothing to share, the local limits are all there is. */
static const kf_bus_ops_t local_ops = {"in-process", local_ready, local_free, NULL, NULL, NULL};

kf_bus_t *kf_bus_new_local(kf_hub_t *hub)
{
    /* The hub's own delivery is all one process needs: no relay. */
    kf_bus_t *bus = kf_xcalloc(1, sizeof *bus);
    bus->ops = &local_ops;
    bus->hub = hub;
    return bus;
}

bool kf_bus_ready(const kf_bus_t *bus)
{
    return bus->ops->ready(bus);
}

const char *kf_bus_kind(const kf_bus_t *bus)
{
    return bus->ops->kind;
}

void kf_bus_stats(const kf_bus_t *bus, kf_bus_stats_t *out)
{
    *out = bus->stats;
}

int kf_bus_count(kf_bus_t *bus, const char *key, int64_t delta, int64_t ttl_ms, bool live_only,
                 kf_bus_count_fn cb, void *data)
{
    if (bus->ops->count == NULL)
        return KF_EUNAVAIL;
    return bus->ops->count(bus, key, delta, ttl_ms, live_only, cb, data);
}

int kf_bus_forget(kf_bus_t *bus, const char *key)
{
    if (bus->ops->forget == NULL)
        return KF_EUNAVAIL;
    return bus->ops->forget(bus, key);
}

void kf_bus_started(kf_bus_t *bus, uint64_t connection, bool known, uint64_t newest)
{
    if (bus->ops->started != NULL)
        bus->ops->started(bus, connection, known, newest);
}

void kf_bus_free(kf_bus_t *bus)
{
    if (bus == NULL)
        return;
    kf_hub_set_relay(bus->hub, NULL, NULL, NULL);
    bus->ops->free(bus);
}
