/* rating_api.c: POST /api/visitor/rating (docs/API.md, "Ratings"): the visitor rates their
 * resolved conversation, good or bad with an optional comment, and may change it while it stays
 * resolved. The agents are told at once (a "rating" event, then the conversation's new state on
 * every console), and reports count it (store/store.h, conversation_rate). */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "chat/events.h"
#include "chat/handlers.h"

/* The longest comment, in characters: a few sentences of feedback, not a transcript. */
#define KF_MAX_RATING_COMMENT_CHARS 1000

typedef struct rating_wait {
    kf_wait_t base;
    kf_app_t *app;
} rating_wait_t;

/* The rated conversation, read back: the agents' event, the conversation on every console and
 * the visitor's other pages, and the answer. The events go out even when the client has gone:
 * the rating stands. */
static void rated_conversation_cb(void *ctx, const kf_store_result_t *r)
{
    rating_wait_t *w = ctx;
    kf_app_t *app = w->app;
    if (r->rc == 0) {
        const kf_conversation_t *c = r->conversation;
        json_t *event =
            json_pack("{s:s,s:I,s:I,s:o}", "type", "rating", "conversation_id", (json_int_t)c->id,
                      "visitor_id", (json_int_t)c->visitor_id, "rating", kf_chat_rating_json(c));
        kf_chat_publish(app->hub, 0, true, kf_chat_event(0, event));
        kf_chat_publish_conversation(app->store, app->hub, c->id, true);
        kf_webhooks_emit(app->webhooks, "rating.created",
                         json_pack("{s:I,s:I,s:o}", "conversation_id", (json_int_t)c->id,
                                   "visitor_id", (json_int_t)c->visitor_id, "rating",
                                   kf_chat_rating_json(c)));
    }
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc != 0)
        kf_call_fail(req, r->rc, NULL);
    else if (req != NULL)
        kf_resp_json(
            req, 200,
            json_pack("{s:o}", "conversation", kf_chat_visitor_conversation_json(r->conversation)));
    free(w);
}

static void rated_cb(void *ctx, const kf_store_result_t *r)
{
    rating_wait_t *w = ctx;
    int rc = r->rc;
    if (rc == 0) {
        kf_store_t *store = w->app->store;
        rc = store->ops->conversation_get(store, r->id, rated_conversation_cb, w);
        if (rc == 0)
            return;
    }
    kf_req_t *req = w->base.req;
    if (req != NULL && (rc == KF_ECONFLICT || rc == KF_ENOTFOUND))
        kf_call_fail(req, KF_ECONFLICT, "only a resolved conversation can be rated");
    else if (req != NULL)
        kf_call_fail(req, rc, NULL);
    free(w);
}

void kf_visitor_rating_post(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    json_t *root = kf_call_json(req);
    if (root == NULL)
        return;
    const char *rating = json_string_value(json_object_get(root, "rating"));
    if (rating == NULL || (strcmp(rating, "good") != 0 && strcmp(rating, "bad") != 0)) {
        json_decref(root);
        kf_call_fail(req, KF_EINVAL, "rating must be \"good\" or \"bad\"");
        return;
    }
    const char *comment = "";
    json_t *comment_json = json_object_get(root, "comment");
    if (comment_json != NULL && !json_is_null(comment_json))
        comment = json_string_value(comment_json);
    /* White space around the text is not counted: a comment box pads easily. */
    char *trimmed = comment != NULL ? kf_trim_copy(comment) : NULL;
    if (trimmed == NULL || kf_utf8_length(trimmed) > KF_MAX_RATING_COMMENT_CHARS) {
        free(trimmed);
        json_decref(root);
        kf_call_fail(req, KF_EINVAL, "comment must be a string of at most 1000 characters");
        return;
    }
    rating_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    kf_store_t *store = call->app->store;
    int rc = store->ops->conversation_rate(store, call->who->visitor.id, rating, trimmed,
                                           kf_clock_wall_ms(), rated_cb, w);
    free(trimmed);
    json_decref(root);
    kf_call_hold(req, w, rc);
}
