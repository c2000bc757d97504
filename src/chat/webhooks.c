/* webhooks.c: the webhook dispatcher: pending deliveries read from the store, sent by libcurl's
 * multi interface on the loop's own sockets and timer, and each attempt's outcome written back
 * (the log, and the delivery over or due again). */
#include "chat/webhooks.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/identity.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"

/* Transfers at once, and deliveries read per look: a slow receiver holds one slot, not the
 * loop. */
#define MAX_IN_FLIGHT 16
/* How often the store is asked for deliveries that have come due. */
#define LOOK_MS 1000
/* A receiver gets this long to answer, and this long to accept the connection. */
#define TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 5000
/* The longest error text kept in the log. */
#define ERROR_MAX 200

const char *const kf_webhook_events[] = {
    "message.created",       "conversation.created", "conversation.assigned",
    "conversation.resolved", "rating.created",       NULL,
};

bool kf_webhook_event_known(const char *name)
{
    for (size_t i = 0; kf_webhook_events[i] != NULL; i++) {
        if (strcmp(kf_webhook_events[i], name) == 0)
            return true;
    }
    return false;
}

/* ---- the pure parts ---- */

int kf_webhook_sign(const char *secret, const char *timestamp, const char *body, size_t body_len,
                    char out[KF_WEBHOOK_SIGNATURE_SIZE])
{
    size_t ts_len = strlen(timestamp);
    char *message = malloc(ts_len + 1 + body_len);
    if (message == NULL)
        abort();
    memcpy(message, timestamp, ts_len);
    message[ts_len] = '.';
    memcpy(message + ts_len + 1, body, body_len);
    char hex[KF_IDENTITY_SIG_SIZE];
    int rc = kf_identity_hmac_hex(secret, strlen(secret), message, ts_len + 1 + body_len, hex);
    free(message);
    if (rc != 0)
        return rc;
    snprintf(out, KF_WEBHOOK_SIGNATURE_SIZE, "sha256=%s", hex);
    return 0;
}

int64_t kf_webhook_next_at(int64_t created_at, int64_t now, int64_t attempts, int64_t base_ms)
{
    int64_t delay = base_ms;
    for (int64_t i = 1; i < attempts && delay < KF_WEBHOOK_RETRY_MAX_MS; i++)
        delay *= 2;
    if (delay > KF_WEBHOOK_RETRY_MAX_MS)
        delay = KF_WEBHOOK_RETRY_MAX_MS;
    int64_t next = now + delay;
    return next > created_at + KF_WEBHOOK_RETRY_FOR_MS ? 0 : next;
}

/* Whether the IPv4 address (network order bytes) is one a webhook may call. */
static bool ipv4_public(const uint8_t *a)
{
    return !(a[0] == 0 || a[0] == 10 || a[0] == 127 ||  /* this network, private, loopback */
             (a[0] == 100 && (a[1] & 0xC0) == 64) ||    /* shared (carrier NAT) */
             (a[0] == 169 && a[1] == 254) ||            /* link-local (cloud metadata) */
             (a[0] == 172 && (a[1] & 0xF0) == 16) ||    /* private */
             (a[0] == 192 && a[1] == 168) ||            /* private */
             (a[0] == 192 && a[1] == 0 && a[2] == 0) || /* protocol assignments */
             (a[0] == 198 && (a[1] & 0xFE) == 18) ||    /* benchmarking */
             a[0] >= 224);                              /* multicast, reserved, broadcast */
}

bool kf_webhook_address_public(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)addr;
        return ipv4_public((const uint8_t *)&in->sin_addr);
    }
    if (addr->sa_family != AF_INET6)
        return false;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;
    const uint8_t *a = in6->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    static const uint8_t zero[15] = {0};
    if (memcmp(a, mapped, 12) == 0)
        return ipv4_public(a + 12);
    if (memcmp(a, zero, 15) == 0)
        return false;                                   /* :: and ::1 */
    return !((a[0] & 0xFE) == 0xFC ||                   /* unique local */
             (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) || /* link-local */
             a[0] == 0xFF);                             /* multicast */
}

/* ---- the dispatcher ---- */

typedef struct transfer transfer_t;

struct kf_webhooks {
    uv_loop_t *loop;
    kf_store_t *store;
    bool allow_private;
    bool not_sender; /* another loop of the process sends (kf_webhooks_set_sender) */
    int64_t retry_base_ms;
    CURLM *multi;
    uv_timer_t *curl_timer; /* libcurl's timeout */
    uv_timer_t *look_timer; /* the look for due deliveries */
    bool looking;           /* a due read is under way */
    unsigned wanted;        /* the events some webhook takes (bit i: kf_webhook_events[i]), as
                             * the last look at the list found them; all until the first */
    unsigned listing;       /* the same, being gathered by a look at the list */
    bool refreshing;        /* a look at the list is under way */
    bool list_stale;        /* ... and it may have been read before a change: read again */
    bool look_again;        /* something came due meanwhile */
    transfer_t *transfers;  /* in flight, and those whose outcome is being written */
    size_t transfer_count;
};

/* One delivery being sent, then recorded. */
struct transfer {
    transfer_t *next;
    kf_webhooks_t *webhooks;
    CURL *easy;
    struct curl_slist *headers;
    int64_t delivery_id;
    int64_t created_at;
    int64_t attempts; /* before this one */
    char *body;
    bool refused; /* the address was not allowed */
    char error[CURL_ERROR_SIZE];
};

/* A socket libcurl watches, and its poll handle. */
typedef struct watch {
    uv_poll_t poll;
    curl_socket_t fd;
    kf_webhooks_t *webhooks;
} watch_t;

static void look(kf_webhooks_t *webhooks);

static void free_handle_cb(uv_handle_t *handle)
{
    free(handle);
}

static void transfer_free(transfer_t *t)
{
    if (t->easy != NULL)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->body);
    free(t);
}

static void transfer_unlink(kf_webhooks_t *webhooks, transfer_t *t)
{
    for (transfer_t **p = &webhooks->transfers; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            webhooks->transfer_count--;
            return;
        }
    }
}

static void recorded_cb(void *ctx, const kf_store_result_t *r)
{
    transfer_t *t = ctx;
    kf_webhooks_t *webhooks = t->webhooks;
    if (r->rc != 0 && r->rc != KF_ENOTFOUND)
        kf_warn("webhook delivery %lld: its attempt could not be recorded: %s",
                (long long)t->delivery_id, kf_strerror(r->rc));
    transfer_unlink(webhooks, t);
    transfer_free(t);
    look(webhooks);
}

/* The transfer has ended: its outcome into the store. */
static void finished(kf_webhooks_t *webhooks, transfer_t *t, CURLcode code)
{
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(webhooks->multi, t->easy);
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
    int64_t now = kf_clock_wall_ms();
    char error[ERROR_MAX + 1] = "";
    bool ok = code == CURLE_OK && status >= 200 && status < 300;
    if (ok)
        error[0] = '\0'; /* another of the name's addresses may have been refused first */
    else if (t->refused)
        snprintf(error, sizeof error, "refused: the address is private, loopback or link-local");
    else if (code != CURLE_OK)
        snprintf(error, sizeof error, "%.200s",
                 t->error[0] != '\0' ? t->error : curl_easy_strerror(code));
    else if (!ok)
        snprintf(error, sizeof error, "HTTP %ld", status);
    kf_webhook_attempt_t attempt = {
        .delivery_id = t->delivery_id,
        .at = now,
        .status = code == CURLE_OK ? status : 0,
        .error = error,
        .next_at =
            ok ? 0
               : kf_webhook_next_at(t->created_at, now, t->attempts + 1, webhooks->retry_base_ms),
    };
    if (!ok)
        kf_info("webhook delivery %lld, attempt %lld: %s%s", (long long)t->delivery_id,
                (long long)(t->attempts + 1), error, attempt.next_at == 0 ? " (given up)" : "");
    int rc = webhooks->store->ops->webhook_attempted(webhooks->store, &attempt, recorded_cb, t);
    if (rc != 0) {
        transfer_unlink(webhooks, t);
        transfer_free(t);
    }
}

static void check_finished(kf_webhooks_t *webhooks)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(webhooks->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        transfer_t *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode code = msg->data.result;
        finished(webhooks, t, code);
    }
}

static void poll_cb(uv_poll_t *poll, int status, int events)
{
    watch_t *watch = (watch_t *)poll;
    kf_webhooks_t *webhooks = watch->webhooks;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if ((events & UV_READABLE) != 0)
        flags |= CURL_CSELECT_IN;
    if ((events & UV_WRITABLE) != 0)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(webhooks->multi, watch->fd, flags, &running);
    check_finished(webhooks);
}

static void watch_close_cb(uv_handle_t *handle)
{
    free(handle);
}

/* libcurl wants a socket watched (or no longer). */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    kf_webhooks_t *webhooks = userp;
    watch_t *watch = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (watch != NULL) {
            uv_poll_stop(&watch->poll);
            uv_close((uv_handle_t *)&watch->poll, watch_close_cb);
            curl_multi_assign(webhooks->multi, fd, NULL);
        }
        return 0;
    }
    if (watch == NULL) {
        watch = kf_xcalloc(1, sizeof *watch);
        watch->fd = fd;
        watch->webhooks = webhooks;
        if (uv_poll_init_socket(webhooks->loop, &watch->poll, fd) != 0) {
            free(watch);
            return -1;
        }
        curl_multi_assign(webhooks->multi, fd, watch);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&watch->poll, events, poll_cb);
    return 0;
}

static void curl_timer_cb(uv_timer_t *timer)
{
    kf_webhooks_t *webhooks = timer->data;
    int running;
    curl_multi_socket_action(webhooks->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_finished(webhooks);
}

/* libcurl wants to be called back in timeout_ms (-1: never). */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    kf_webhooks_t *webhooks = userp;
    if (timeout_ms < 0)
        uv_timer_stop(webhooks->curl_timer);
    else
        uv_timer_start(webhooks->curl_timer, curl_timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

/* libcurl is about to connect to an address DNS gave: the check that a name cannot get round. */
static curl_socket_t open_socket_cb(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *address)
{
    transfer_t *t = clientp;
    (void)purpose;
    if (!t->webhooks->allow_private && !kf_webhook_address_public(&address->addr)) {
        t->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
}

/* The receiver's answer is not read: only its status counts. */
static size_t discard_cb(char *data, size_t size, size_t count, void *userp)
{
    (void)data;
    (void)userp;
    return size * count;
}

static int send_delivery(kf_webhooks_t *webhooks, const kf_webhook_delivery_t *d)
{
    transfer_t *t = kf_xcalloc(1, sizeof *t);
    t->webhooks = webhooks;
    t->delivery_id = d->id;
    t->created_at = d->created_at;
    t->attempts = d->attempts;
    t->body = kf_xstrdup(d->body);
    char timestamp[24], header[128], signature[KF_WEBHOOK_SIGNATURE_SIZE];
    snprintf(timestamp, sizeof timestamp, "%lld", (long long)(kf_clock_wall_ms() / 1000));
    if (kf_webhook_sign(d->secret, timestamp, t->body, strlen(t->body), signature) != 0) {
        transfer_free(t);
        return KF_EIO;
    }
    t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
    t->headers = curl_slist_append(t->headers, "Expect:");
    snprintf(header, sizeof header, "X-Kefu-Event: %s", d->event);
    t->headers = curl_slist_append(t->headers, header);
    snprintf(header, sizeof header, "X-Kefu-Delivery: %lld", (long long)d->id);
    t->headers = curl_slist_append(t->headers, header);
    snprintf(header, sizeof header, "X-Kefu-Timestamp: %s", timestamp);
    t->headers = curl_slist_append(t->headers, header);
    snprintf(header, sizeof header, "X-Kefu-Signature: %s", signature);
    t->headers = curl_slist_append(t->headers, header);
    CURL *easy = curl_easy_init();
    if (easy == NULL || t->headers == NULL) {
        if (easy != NULL)
            curl_easy_cleanup(easy);
        transfer_free(t);
        return KF_ENOMEM;
    }
    t->easy = easy;
    curl_easy_setopt(easy, CURLOPT_URL, d->url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_PROXY, ""); /* no proxy from the environment: it would connect
                                                * where the address check cannot see */
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "kefu-webhooks/1");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(t->body));
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard_cb);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    t->next = webhooks->transfers;
    webhooks->transfers = t;
    webhooks->transfer_count++;
    if (curl_multi_add_handle(webhooks->multi, easy) != CURLM_OK) {
        transfer_unlink(webhooks, t);
        transfer_free(t);
        return KF_ENOMEM;
    }
    return 0;
}

static bool in_flight(const kf_webhooks_t *webhooks, int64_t delivery_id)
{
    for (const transfer_t *t = webhooks->transfers; t != NULL; t = t->next) {
        if (t->delivery_id == delivery_id)
            return true;
    }
    return false;
}

static int due_cb(void *ctx, const kf_webhook_delivery_t *delivery)
{
    kf_webhooks_t *webhooks = ctx;
    if (webhooks->transfer_count >= MAX_IN_FLIGHT)
        return 1; /* full: the rest wait for a slot */
    if (!in_flight(webhooks, delivery->id))
        send_delivery(webhooks, delivery);
    return 0;
}

static void looked_cb(void *ctx, const kf_store_result_t *r)
{
    kf_webhooks_t *webhooks = ctx;
    (void)r; /* a failed read: the next tick looks again */
    webhooks->looking = false;
    if (webhooks->look_again) {
        webhooks->look_again = false;
        look(webhooks);
    }
}

static void look(kf_webhooks_t *webhooks)
{
    if (webhooks->looking) {
        webhooks->look_again = true;
        return;
    }
    if (webhooks->transfer_count >= MAX_IN_FLIGHT || webhooks->not_sender)
        return; /* a transfer's end looks again; or another loop sends */
    kf_store_t *store = webhooks->store;
    webhooks->looking = store->ops->webhook_due(store, kf_clock_wall_ms(), MAX_IN_FLIGHT, due_cb,
                                                looked_cb, webhooks) == 0;
}

static unsigned event_bit(const char *name, size_t len)
{
    for (size_t i = 0; kf_webhook_events[i] != NULL; i++) {
        if (strlen(kf_webhook_events[i]) == len && memcmp(kf_webhook_events[i], name, len) == 0)
            return 1u << i;
    }
    return 0;
}

static int listed_cb(void *ctx, const kf_webhook_t *webhook)
{
    kf_webhooks_t *webhooks = ctx;
    for (const char *p = webhook->events; *p != '\0';) {
        size_t len = strcspn(p, ",");
        webhooks->listing |= event_bit(p, len);
        p += len + (p[len] == ',');
    }
    return 0;
}

static void refresh(kf_webhooks_t *webhooks);

static void list_done_cb(void *ctx, const kf_store_result_t *r)
{
    kf_webhooks_t *webhooks = ctx;
    webhooks->refreshing = false;
    if (webhooks->list_stale) {
        webhooks->list_stale = false;
        refresh(webhooks);
        return;
    }
    if (r->rc == 0)
        webhooks->wanted = webhooks->listing;
}

/* Reads which events some webhook takes, so that an event nobody takes costs nothing (the list
 * is read again each tick: another node may have changed it). */
static void refresh(kf_webhooks_t *webhooks)
{
    if (webhooks->refreshing)
        return;
    webhooks->listing = 0;
    kf_store_t *store = webhooks->store;
    webhooks->refreshing = store->ops->webhook_list(store, listed_cb, list_done_cb, webhooks) == 0;
}

static void look_timer_cb(uv_timer_t *timer)
{
    refresh(timer->data);
    look(timer->data);
}

kf_webhooks_t *kf_webhooks_new(uv_loop_t *loop, kf_store_t *store, bool allow_private)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    kf_webhooks_t *webhooks = kf_xcalloc(1, sizeof *webhooks);
    webhooks->loop = loop;
    webhooks->store = store;
    webhooks->allow_private = allow_private;
    webhooks->retry_base_ms = KF_WEBHOOK_RETRY_BASE_MS;
    webhooks->wanted = ~0u;
    webhooks->multi = curl_multi_init();
    if (webhooks->multi == NULL) {
        free(webhooks);
        curl_global_cleanup();
        return NULL;
    }
    curl_multi_setopt(webhooks->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(webhooks->multi, CURLMOPT_SOCKETDATA, webhooks);
    curl_multi_setopt(webhooks->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(webhooks->multi, CURLMOPT_TIMERDATA, webhooks);
    webhooks->curl_timer = kf_xcalloc(1, sizeof *webhooks->curl_timer);
    uv_timer_init(loop, webhooks->curl_timer);
    webhooks->curl_timer->data = webhooks;
    /* Unreferenced: deliveries must not keep a stopping server alive (they resume on restart). */
    uv_unref((uv_handle_t *)webhooks->curl_timer);
    webhooks->look_timer = kf_xcalloc(1, sizeof *webhooks->look_timer);
    uv_timer_init(loop, webhooks->look_timer);
    webhooks->look_timer->data = webhooks;
    uv_timer_start(webhooks->look_timer, look_timer_cb, LOOK_MS, LOOK_MS);
    uv_unref((uv_handle_t *)webhooks->look_timer);
    refresh(webhooks);
    return webhooks;
}

void kf_webhooks_free(kf_webhooks_t *webhooks)
{
    if (webhooks == NULL)
        return;
    while (webhooks->transfers != NULL) {
        transfer_t *t = webhooks->transfers;
        webhooks->transfers = t->next;
        if (t->easy != NULL)
            curl_multi_remove_handle(webhooks->multi, t->easy);
        transfer_free(t); /* one whose outcome is being written: the store was flushed first */
    }
    curl_multi_cleanup(webhooks->multi);
    uv_close((uv_handle_t *)webhooks->curl_timer, free_handle_cb);
    uv_close((uv_handle_t *)webhooks->look_timer, free_handle_cb);
    free(webhooks);
    curl_global_cleanup();
}

void kf_webhooks_set_retry_base(kf_webhooks_t *webhooks, int64_t base_ms)
{
    webhooks->retry_base_ms = base_ms;
}

void kf_webhooks_set_sender(kf_webhooks_t *webhooks, bool sender)
{
    webhooks->not_sender = !sender;
}

void kf_webhooks_kick(kf_webhooks_t *webhooks)
{
    if (webhooks == NULL)
        return;
    webhooks->wanted = ~0u; /* until the list is read again */
    webhooks->list_stale = webhooks->refreshing;
    refresh(webhooks);
    look(webhooks);
}

bool kf_webhooks_wants(const kf_webhooks_t *webhooks, const char *event)
{
    return webhooks != NULL && (webhooks->wanted & event_bit(event, strlen(event))) != 0;
}

static void enqueued_cb(void *ctx, const kf_store_result_t *r)
{
    kf_webhooks_t *webhooks = ctx;
    if (r->rc != 0)
        kf_warn("a webhook event could not be stored: %s", kf_strerror(r->rc));
    else if (r->count > 0)
        look(webhooks);
}

void kf_webhooks_emit(kf_webhooks_t *webhooks, const char *event, json_t *data)
{
    if (!kf_webhooks_wants(webhooks, event) || data == NULL) {
        json_decref(data);
        return;
    }
    int64_t now = kf_clock_wall_ms();
    json_t *body =
        json_pack("{s:s,s:I,s:o}", "event", event, "created_at", (json_int_t)now, "data", data);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return;
    kf_store_t *store = webhooks->store;
    store->ops->webhook_enqueue(store, event, text, now, enqueued_cb, webhooks);
    free(text);
}
