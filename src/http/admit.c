/* admit.c: which accepted connections may stay: at most max_connections in all, and at most
 * max_connections_per_address from one client address, counted in a table of the addresses with
 * connections open (one for every loop of the process: a lock, held for one count). */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server_int.h"

/* Connections open from one client address: an IPv4 address (also when mapped into IPv6), or an
 * IPv6 /64, since one host usually holds a whole /64 and could otherwise pick a fresh address for
 * every connection. An entry lives while its address has a connection open, so the table is
 * bounded by the connections. */
struct address_entry {
    kf_map_node_t node;
    unsigned char key[9]; /* the IPv4 address or the IPv6 address's first 64 bits, then 4 or 6 */
    size_t connections;   /* connections open from it, >= 1 */
};

struct kf_addresses {
    kf_map_t entries;     /* address_entry_t by key */
    pthread_mutex_t lock; /* the loops of one process share the table (kefu --loops) */
};

kf_addresses_t *kf_addresses_new(void)
{
    kf_addresses_t *addresses = kf_xcalloc(1, sizeof *addresses);
    kf_map_init(&addresses->entries);
    pthread_mutex_init(&addresses->lock, NULL);
    return addresses;
}

void kf_addresses_free(kf_addresses_t *addresses)
{
    if (addresses == NULL)
        return;
    kf_map_free(&addresses->entries);
    pthread_mutex_destroy(&addresses->lock);
    free(addresses);
}

/* The per-address key of a peer; false for a family without one (never counted). */
static bool address_key(const struct sockaddr_storage *addr, unsigned char key[9])
{
    const unsigned char *bytes;
    bool v6;
    if (addr->ss_family == AF_INET) {
        bytes = (const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr;
        v6 = false;
    } else if (addr->ss_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        bytes = (const unsigned char *)in6;
        v6 = !IN6_IS_ADDR_V4MAPPED(in6); /* ::ffff:a.b.c.d is the IPv4 client a.b.c.d */
        if (!v6)
            bytes += 12;
    } else {
        return false;
    }
    memset(key, 0, 9);
    memcpy(key, bytes, v6 ? 8 : 4);
    key[8] = v6 ? 6 : 4;
    return true;
}

/* A key as text: "192.0.2.1", or "2001:db8:0:1::/64" for an IPv6 /64. */
static void key_text(const unsigned char key[9], char *out, size_t size)
{
    if (key[8] == 4) {
        snprintf(out, size, "%u.%u.%u.%u", key[0], key[1], key[2], key[3]);
        return;
    }
    snprintf(out, size, "%x:%x:%x:%x::/64", key[0] << 8 | key[1], key[2] << 8 | key[3],
             key[4] << 8 | key[5], key[6] << 8 | key[7]);
}

bool admit_peer_key(const struct sockaddr_storage *addr, char *out, size_t size)
{
    unsigned char key[9];
    if (!address_key(addr, key))
        return false;
    key_text(key, out, size);
    return true;
}

static bool entry_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    const address_entry_t *entry = KF_CONTAINER_OF(node, address_entry_t, node);
    return len == sizeof entry->key && memcmp(entry->key, key, len) == 0;
}

/* Counts conn against its address; false when the address is at limit. */
static bool admit_address(kf_server_t *server, kf_conn_t *conn, const struct sockaddr_storage *addr)
{
    size_t limit = server->config.max_connections_per_address;
    unsigned char key[9];
    if (limit == 0 || !address_key(addr, key))
        return true;
    kf_addresses_t *addresses = server->addresses;
    pthread_mutex_lock(&addresses->lock);
    uint64_t hash = kf_map_hash(&addresses->entries, key, sizeof key);
    kf_map_node_t *node = kf_map_find(&addresses->entries, hash, key, sizeof key, entry_eq);
    address_entry_t *entry = node != NULL ? KF_CONTAINER_OF(node, address_entry_t, node) : NULL;
    bool admitted = entry == NULL || entry->connections < limit;
    if (admitted && entry == NULL) {
        entry = kf_xcalloc(1, sizeof *entry);
        memcpy(entry->key, key, sizeof key);
        kf_map_insert(&addresses->entries, &entry->node, hash);
    }
    if (admitted) {
        entry->connections++;
        conn->address = entry;
    }
    pthread_mutex_unlock(&addresses->lock);
    return admitted;
}

bool admit_connection(kf_server_t *server, kf_conn_t *conn)
{
    if (server->conn_count > server->config.max_connections)
        return false;
    struct sockaddr_storage addr;
    int addr_len = sizeof addr;
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&addr, &addr_len) != 0)
        return true; /* gone already: the first read says so */
    if (addr.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&addr, conn->peer, sizeof conn->peer);
    else
        uv_ip4_name((struct sockaddr_in *)&addr, conn->peer, sizeof conn->peer);
    conn->via_proxy = kf_addr_prefixes_match(server->config.trusted_proxies,
                                             server->config.trusted_proxy_count, conn->peer);
    if (conn->via_proxy)
        return true; /* it carries every client's connections: counted per client, not here */
    return admit_address(server, conn, &addr);
}

void admit_release(kf_server_t *server, kf_conn_t *conn)
{
    address_entry_t *entry = conn->address;
    if (entry == NULL)
        return;
    conn->address = NULL;
    kf_addresses_t *addresses = server->addresses;
    pthread_mutex_lock(&addresses->lock);
    assert(entry->connections > 0);
    bool last = --entry->connections == 0;
    if (last)
        kf_map_remove(&addresses->entries, &entry->node);
    pthread_mutex_unlock(&addresses->lock);
    if (last)
        free(entry);
}
