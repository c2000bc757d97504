/* sync.c: the store's blocking wrappers (sync.h): one done callback copies what every wrapper
 * may want out of the borrowed result, and flush() waits for it. */
#include "store/sync.h"

#include "base/err.h"

#include <assert.h>
#include <string.h>

/* One blocking call: where its done callback copies the result. */
typedef struct call {
    bool done;
    int rc;
    int64_t id; /* result->id, or the looked-up agent's id, or the session's agent */
    int64_t count;
    kf_store_sync_message_t message;
    char *text_out; /* where setting_get's value or session_get's CSRF token goes, or NULL */
    size_t text_size;
} call_t;

/* Copies text into the call's buffer; KF_ETOOBIG (and "") when it does not fit. */
static int copy_text(call_t *call, const char *text)
{
    size_t len = strlen(text);
    if (len >= call->text_size) {
        if (call->text_size > 0)
            call->text_out[0] = '\0';
        return KF_ETOOBIG;
    }
    memcpy(call->text_out, text, len + 1);
    return 0;
}

static void call_done_cb(void *ctx, const kf_store_result_t *result)
{
    call_t *call = ctx;
    call->done = true;
    call->rc = result->rc;
    call->id = result->id;
    call->count = result->count;
    if (result->rc != 0)
        return;
    if (result->agent != NULL)
        call->id = result->agent->id;
    if (result->message != NULL) {
        call->message = (kf_store_sync_message_t){
            .id = result->message->id,
            .conversation_id = result->message->conversation_id,
            .visitor_id = result->message->visitor_id,
            .conversation_opened = result->conversation_opened,
            .duplicate = result->duplicate,
        };
    }
    const char *text = result->value;
    if (result->session != NULL) {
        call->id = result->session->agent_id;
        text = result->session->csrf;
    }
    if (text != NULL && call->text_out != NULL)
        call->rc = copy_text(call, text);
}

/* Waits for the call whose queueing returned queued_rc; returns its result code. */
static int wait_for(kf_store_t *store, int queued_rc, const call_t *call)
{
    if (queued_rc != 0)
        return queued_rc;
    store->ops->flush(store);
    assert(call->done);
    return call->rc;
}

/* Stores the call's id in *id_out (when wanted) after a success; returns rc. */
static int give_id(int rc, const call_t *call, int64_t *id_out)
{
    if (rc == 0 && id_out != NULL)
        *id_out = call->id;
    return rc;
}

int kf_store_sync_setting_get(kf_store_t *store, const char *key, char *value_out,
                              size_t value_size)
{
    call_t call = {.text_out = value_out, .text_size = value_size};
    return wait_for(store, store->ops->setting_get(store, key, call_done_cb, &call), &call);
}

int kf_store_sync_setting_set(kf_store_t *store, const char *key, const char *value)
{
    call_t call = {0};
    return wait_for(store, store->ops->setting_set(store, key, value, call_done_cb, &call), &call);
}

int kf_store_sync_agent_create(kf_store_t *store, const char *email, const char *name,
                               const char *role, const char *password_hash, int64_t now,
                               int64_t *id_out)
{
    call_t call = {0};
    int rc =
        store->ops->agent_create(store, email, name, role, password_hash, now, call_done_cb, &call);
    return give_id(wait_for(store, rc, &call), &call, id_out);
}

int kf_store_sync_agent_count(kf_store_t *store, int64_t *count_out)
{
    call_t call = {0};
    int rc = wait_for(store, store->ops->agent_count(store, call_done_cb, &call), &call);
    if (rc == 0 && count_out != NULL)
        *count_out = call.count;
    return rc;
}

int kf_store_sync_message_newest(kf_store_t *store, int64_t *id_out)
{
    call_t call = {0};
    int rc = store->ops->message_newest(store, call_done_cb, &call);
    return give_id(wait_for(store, rc, &call), &call, id_out);
}

int kf_store_sync_agent_by_email(kf_store_t *store, const char *email, int64_t *id_out)
{
    call_t call = {0};
    int rc = wait_for(store, store->ops->agent_by_email(store, email, call_done_cb, &call), &call);
    return give_id(rc, &call, id_out);
}

int kf_store_sync_visitor_create(kf_store_t *store, const char *token_hash, const char *name,
                                 int64_t now, int64_t *id_out)
{
    call_t call = {0};
    int rc = store->ops->visitor_create(store, token_hash, name, now, call_done_cb, &call);
    return give_id(wait_for(store, rc, &call), &call, id_out);
}

int kf_store_sync_session_create(kf_store_t *store, const char *token_hash, int64_t agent_id,
                                 const char *csrf, int64_t now, int64_t expires_at)
{
    call_t call = {0};
    int rc = store->ops->session_create(store, token_hash, agent_id, csrf, now, expires_at,
                                        call_done_cb, &call);
    return wait_for(store, rc, &call);
}

int kf_store_sync_session_get(kf_store_t *store, const char *token_hash, int64_t now,
                              int64_t *agent_id_out, char *csrf_out, size_t csrf_size)
{
    call_t call = {.text_out = csrf_out, .text_size = csrf_size};
    int rc = store->ops->session_get(store, token_hash, now, call_done_cb, &call);
    return give_id(wait_for(store, rc, &call), &call, agent_id_out);
}

int kf_store_sync_session_delete(kf_store_t *store, const char *token_hash)
{
    call_t call = {0};
    return wait_for(store, store->ops->session_delete(store, token_hash, call_done_cb, &call),
                    &call);
}

int kf_store_sync_message_add(kf_store_t *store, const kf_message_new_t *message,
                              kf_store_sync_message_t *out)
{
    call_t call = {0};
    int rc = wait_for(store, store->ops->message_add(store, message, call_done_cb, &call), &call);
    if (rc == 0 && out != NULL)
        *out = call.message;
    return rc;
}

int kf_store_sync_mark_read(kf_store_t *store, int64_t conversation_id, kf_sender_t reader,
                            int64_t up_to)
{
    call_t call = {0};
    int rc = store->ops->conversation_mark_read(store, conversation_id, reader, up_to, call_done_cb,
                                                &call);
    return wait_for(store, rc, &call);
}

int kf_store_sync_set_status(kf_store_t *store, int64_t conversation_id, const char *status,
                             int64_t now)
{
    call_t call = {0};
    int rc = store->ops->conversation_set_status(store, conversation_id, status, 0, now,
                                                 call_done_cb, &call);
    return wait_for(store, rc, &call);
}
