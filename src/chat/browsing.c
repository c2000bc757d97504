/* browsing.c: a table of the visitors online now, by id; an entry lives from a visitor's page
 * report until the sweep finds them gone. One table for every loop of the process, each with a
 * handle, as in presence.c. */
#include "chat/browsing.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/map.h"

typedef struct entry {
    kf_map_node_t node;
    kf_browsing_visitor_t v;
} entry_t;

/* The table, shared by the loops of one process (kf_browsing_share). */
typedef struct table {
    kf_map_t visitors;
    uint64_t offline_after_ms;
    pthread_mutex_t lock;
    atomic_int refs; /* the handles on it */
} table_t;

/* One loop's handle: the changes it makes are told to its own application, on its thread. */
struct kf_browsing {
    table_t *table;
    kf_map_t *visitors; /* &table->visitors */
    uint64_t offline_after_ms;
    kf_browsing_changed_fn changed;
    void *ctx;
};

static kf_browsing_t *handle_on(table_t *table, kf_browsing_changed_fn changed, void *ctx)
{
    kf_browsing_t *browsing = kf_xcalloc(1, sizeof *browsing);
    browsing->table = table;
    browsing->visitors = &table->visitors;
    browsing->offline_after_ms = table->offline_after_ms;
    browsing->changed = changed;
    browsing->ctx = ctx;
    atomic_fetch_add(&table->refs, 1);
    return browsing;
}

kf_browsing_t *kf_browsing_new(uint64_t offline_after_ms, kf_browsing_changed_fn changed, void *ctx)
{
    table_t *table = kf_xcalloc(1, sizeof *table);
    kf_map_init(&table->visitors);
    table->offline_after_ms = offline_after_ms;
    pthread_mutex_init(&table->lock, NULL);
    atomic_init(&table->refs, 0);
    return handle_on(table, changed, ctx);
}

kf_browsing_t *kf_browsing_share(kf_browsing_t *browsing, kf_browsing_changed_fn changed, void *ctx)
{
    return handle_on(browsing->table, changed, ctx);
}

void kf_browsing_lock(kf_browsing_t *browsing)
{
    pthread_mutex_lock(&browsing->table->lock);
}

void kf_browsing_unlock(kf_browsing_t *browsing)
{
    pthread_mutex_unlock(&browsing->table->lock);
}

static void free_entry(kf_map_node_t *node)
{
    entry_t *e = KF_CONTAINER_OF(node, entry_t, node);
    free(e->v.name);
    free(e->v.url);
    free(e->v.title);
    free(e);
}

void kf_browsing_free(kf_browsing_t *browsing)
{
    if (browsing == NULL)
        return;
    table_t *table = browsing->table;
    free(browsing);
    if (atomic_fetch_sub(&table->refs, 1) > 1)
        return;
    kf_map_clear(&table->visitors, free_entry);
    pthread_mutex_destroy(&table->lock);
    free(table);
}

static bool entry_eq(const kf_map_node_t *node, const void *key, size_t len)
{
    return len == sizeof(int64_t) &&
           memcmp(&KF_CONTAINER_OF(node, entry_t, node)->v.visitor_id, key, len) == 0;
}

kf_browsing_visitor_t *kf_browsing_find(kf_browsing_t *browsing, int64_t visitor_id)
{
    uint64_t hash = kf_map_hash(browsing->visitors, &visitor_id, sizeof visitor_id);
    kf_map_node_t *node =
        kf_map_find(browsing->visitors, hash, &visitor_id, sizeof visitor_id, entry_eq);
    return node == NULL ? NULL : &KF_CONTAINER_OF(node, entry_t, node)->v;
}

static void replace(char **field, const char *value)
{
    free(*field);
    *field = kf_xstrdup(value);
}

void kf_browsing_page(kf_browsing_t *browsing, int64_t visitor_id, const char *name,
                      const char *url, const char *title, int64_t now_wall, uint64_t now)
{
    kf_browsing_lock(browsing);
    kf_browsing_visitor_t *v = kf_browsing_find(browsing, visitor_id);
    bool changed = false;
    if (v == NULL) {
        entry_t *e = kf_xcalloc(1, sizeof *e);
        v = &e->v;
        v->visitor_id = visitor_id;
        v->name = kf_xstrdup("");
        v->url = kf_xstrdup("");
        v->title = kf_xstrdup("");
        v->since = now_wall;
        kf_map_insert(browsing->visitors, &e->node,
                      kf_map_hash(browsing->visitors, &visitor_id, sizeof visitor_id));
        changed = true;
    }
    if (strcmp(v->url, url) != 0) {
        replace(&v->url, url);
        v->page_since = now_wall;
        changed = true;
    }
    if (strcmp(v->title, title) != 0) {
        replace(&v->title, title);
        changed = true;
    }
    if (name != NULL && strcmp(v->name, name) != 0) {
        replace(&v->name, name);
        changed = true;
    }
    v->seen = now;
    if (changed && browsing->changed != NULL)
        browsing->changed(browsing->ctx, v, true);
    kf_browsing_unlock(browsing);
}

void kf_browsing_seen(kf_browsing_t *browsing, int64_t visitor_id, uint64_t now)
{
    kf_browsing_lock(browsing);
    kf_browsing_visitor_t *v = kf_browsing_find(browsing, visitor_id);
    if (v != NULL && now > v->seen)
        v->seen = now;
    kf_browsing_unlock(browsing);
}

void kf_browsing_rename(kf_browsing_t *browsing, int64_t visitor_id, const char *name)
{
    kf_browsing_lock(browsing);
    kf_browsing_visitor_t *v = kf_browsing_find(browsing, visitor_id);
    if (v != NULL && strcmp(v->name, name) != 0) {
        replace(&v->name, name);
        if (browsing->changed != NULL)
            browsing->changed(browsing->ctx, v, true);
    }
    kf_browsing_unlock(browsing);
}

bool kf_browsing_invited(kf_browsing_t *browsing, int64_t visitor_id, int64_t now_wall)
{
    kf_browsing_lock(browsing);
    kf_browsing_visitor_t *v = kf_browsing_find(browsing, visitor_id);
    if (v != NULL) {
        v->invited_at = now_wall;
        if (browsing->changed != NULL)
            browsing->changed(browsing->ctx, v, true);
    }
    kf_browsing_unlock(browsing);
    return v != NULL;
}

bool kf_browsing_fire(kf_browsing_t *browsing, int64_t visitor_id, int64_t rule_id)
{
    bool fired = false;
    kf_browsing_lock(browsing);
    kf_browsing_visitor_t *v = kf_browsing_find(browsing, visitor_id);
    if (v != NULL && v->fired_count < KF_BROWSING_MAX_FIRED) {
        fired = true;
        for (size_t i = 0; i < v->fired_count && fired; i++)
            fired = v->fired[i] != rule_id;
        if (fired)
            v->fired[v->fired_count++] = rule_id;
    }
    kf_browsing_unlock(browsing);
    return fired;
}

typedef struct sweep {
    kf_browsing_t *browsing;
    uint64_t now;
    kf_browsing_open_fn open;
    void *ctx;
} sweep_t;

static void sweep_entry(kf_map_node_t *node, void *data)
{
    sweep_t *sweep = data;
    kf_browsing_t *browsing = sweep->browsing;
    entry_t *e = KF_CONTAINER_OF(node, entry_t, node);
    if (sweep->open != NULL && sweep->open(sweep->ctx, e->v.visitor_id) > 0)
        e->v.seen = sweep->now;
    if (sweep->now < e->v.seen || sweep->now - e->v.seen < browsing->offline_after_ms)
        return;
    kf_map_remove(browsing->visitors, node);
    if (browsing->changed != NULL)
        browsing->changed(browsing->ctx, &e->v, false);
    free_entry(node);
}

void kf_browsing_sweep(kf_browsing_t *browsing, uint64_t now, kf_browsing_open_fn open, void *ctx)
{
    sweep_t sweep = {browsing, now, open, ctx};
    kf_browsing_lock(browsing);
    kf_map_each(browsing->visitors, sweep_entry, &sweep);
    kf_browsing_unlock(browsing);
}

typedef struct each {
    void (*fn)(void *ctx, const kf_browsing_visitor_t *v);
    void *ctx;
} each_t;

static void each_entry(kf_map_node_t *node, void *data)
{
    each_t *each = data;
    each->fn(each->ctx, &KF_CONTAINER_OF(node, entry_t, node)->v);
}

void kf_browsing_each(kf_browsing_t *browsing,
                      void (*fn)(void *ctx, const kf_browsing_visitor_t *v), void *ctx)
{
    each_t each = {fn, ctx};
    kf_browsing_lock(browsing);
    kf_map_each(browsing->visitors, each_entry, &each);
    kf_browsing_unlock(browsing);
}

size_t kf_browsing_count(kf_browsing_t *browsing)
{
    kf_browsing_lock(browsing);
    size_t count = kf_map_count(browsing->visitors);
    kf_browsing_unlock(browsing);
    return count;
}
