/* bus.c: the bus interface's dispatch, its address parser and the in-process bus. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "bus/internal.h"

int kf_bus_url_parse(const char *url, kf_bus_url_t *out)
{
    static const char scheme[] = "redis://";
    size_t scheme_len = sizeof scheme - 1;
    if (strncmp(url, scheme, scheme_len) != 0)
        return KF_EINVAL;
    const char *host = url + scheme_len;
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
    /* A path (a database number means nothing to pub/sub), a user or a query: refused rather
     * than ignored, so that nobody believes they took effect. */
    if (rest[0] != '\0' && strcmp(rest, "/") != 0)
        return KF_EINVAL;
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = (int)port;
    return 0;
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

static const kf_bus_ops_t local_ops = {"in-process", local_ready, local_free};

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

void kf_bus_free(kf_bus_t *bus)
{
    if (bus == NULL)
        return;
    kf_hub_set_relay(bus->hub, NULL, NULL);
    bus->ops->free(bus);
}
