/* internal.h: what every bus implementation fills in behind bus/bus.h. */
#ifndef KF_BUS_INTERNAL_H
#define KF_BUS_INTERNAL_H

#include "bus/bus.h"

typedef struct kf_bus_ops {
    const char *kind;                   /* kf_bus_kind's answer */
    bool (*ready)(const kf_bus_t *bus); /* kf_bus_ready */
    void (*free)(kf_bus_t *bus);        /* kf_bus_free, after the relay is removed */
    /* kf_bus_count; NULL: counters are not shared (KF_EUNAVAIL). */
    int (*count)(kf_bus_t *bus, const char *key, int64_t delta, int64_t ttl_ms, bool live_only,
                 kf_bus_count_fn cb, void *data);
    int (*forget)(kf_bus_t *bus, const char *key); /* kf_bus_forget; NULL with count */
    /* kf_bus_started; NULL: the bus never says KF_BUS_UP. */
    void (*started)(kf_bus_t *bus, uint64_t connection, bool known, uint64_t newest);
} kf_bus_ops_t;

/* The part every bus shares; an implementation's struct starts with it. */
struct kf_bus {
    const kf_bus_ops_t *ops;
    kf_hub_t *hub;        /* whose publishes it relays (not owned) */
    kf_bus_stats_t stats; /* kept by the implementation */
};

#endif
