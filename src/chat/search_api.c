/* search_api.c: GET /api/search (docs/API.md): the agents' full-text search over every message
 * and every visitor's name, newest first, in pages. Each hit carries a snippet as plain text and
 * the ranges to mark in it (code points), never HTML: the console marks them with DOM nodes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "chat/handlers.h"
#include "store/search_text.h"

/* A page holds this many hits unless ?limit= says otherwise (1 to KF_STORE_SEARCH_MAX). */
#define SEARCH_DEFAULT 20
/* Room for the longest query a client may send: 200 characters of up to 4 bytes, and some
 * surrounding white space; a longer one is refused without being read further. */
#define QUERY_BYTES 1024

typedef struct search_wait {
    kf_wait_t base;
    json_t *results;
    char *query; /* for the snippets' marks */
    size_t limit;
    int64_t last_id; /* the page's last message: where the next page starts */
} search_wait_t;

static int hit_cb(void *ctx, const kf_search_hit_t *hit)
{
    search_wait_t *w = ctx;
    if (w->base.req == NULL)
        return KF_EINVAL; /* the client has gone: stop the query */
    const kf_message_t *m = &hit->message;
    bool by_name = hit->field == KF_SEARCH_VISITOR;
    kf_search_snippet_t snippet;
    /* A visitor hit may have matched the name or the e-mail: the snippet shows both. */
    const char *email = hit->visitor_email != NULL ? hit->visitor_email : "";
    char *who = NULL;
    if (by_name && email[0] != '\0' && hit->visitor_name[0] != '\0') {
        size_t size = strlen(hit->visitor_name) + strlen(email) + 8;
        who = kf_xmalloc(size);
        snprintf(who, size, "%s · %s", hit->visitor_name, email);
    }
    const char *text = !by_name                       ? m->body
                       : who != NULL                  ? who
                       : hit->visitor_name[0] != '\0' ? hit->visitor_name
                                                      : email;
    kf_search_snippet(text, w->query, &snippet);
    free(who);
    json_t *highlights = json_array();
    for (size_t i = 0; i < snippet.count; i++)
        json_array_append_new(highlights, json_pack("[I,I]", (json_int_t)snippet.highlights[i][0],
                                                    (json_int_t)snippet.highlights[i][1]));
    json_t *result =
        json_pack("{s:I,s:I,s:s,s:s,s:o,s:s,s:I,s:{s:I,s:s}}", "conversation_id",
                  (json_int_t)m->conversation_id, "message_id", (json_int_t)m->id, "field",
                  by_name ? "visitor" : "message", "snippet", snippet.text, "highlights",
                  highlights, "sender", m->sender == KF_SENDER_AGENT ? "agent" : "visitor",
                  "created_at", (json_int_t)m->created_at, "visitor", "id",
                  (json_int_t)m->visitor_id, "name", hit->visitor_name);
    kf_search_snippet_free(&snippet);
    if (result == NULL)
        return KF_ENOMEM;
    /* Search is for agents only (routes.c); the mark tells them a hit is not the visitor's to
     * see. */
    json_object_set_new(result, "private", json_boolean(m->is_private));
    json_array_append_new(w->results, result);
    w->last_id = m->id;
    return 0;
}

static void search_done_cb(void *ctx, const kf_store_result_t *r)
{
    search_wait_t *w = ctx;
    kf_req_t *req = w->base.req;
    if (req != NULL && r->rc != 0) {
        kf_call_fail(req, r->rc, NULL);
    } else if (req != NULL) {
        json_t *body = json_pack("{s:O}", "results", w->results);
        /* A full page may have more behind it: the next is below its last hit. */
        if (json_array_size(w->results) == w->limit) {
            char next[24];
            snprintf(next, sizeof next, "%lld", (long long)w->last_id);
            json_object_set_new(body, "next", json_string(next));
        } else {
            json_object_set_new(body, "next", json_null());
        }
        kf_resp_json(req, 200, body);
    }
    json_decref(w->results);
    free(w->query);
    free(w);
}

/* Reads ?q=, ?limit= and ?before=; answers 400 and returns false for a bad one. */
static bool read_search(kf_req_t *req, char *query, size_t *limit, int64_t *before)
{
    kf_str_t params = req->head->query;
    int n = kf_http_query_get(params, "q", query, QUERY_BYTES);
    if (n == KF_ENOTFOUND) {
        kf_call_fail(req, KF_EPROTO, "q (what to search for) is required");
        return false;
    }
    if (n < 0 || !kf_search_query_valid(query)) {
        kf_call_fail(req, KF_EPROTO, "q must be 2 to 200 characters of UTF-8");
        return false;
    }
    char value[24];
    *limit = SEARCH_DEFAULT;
    n = kf_http_query_get(params, "limit", value, sizeof value);
    if (n != KF_ENOTFOUND) {
        uint64_t parsed;
        if (n < 0 || kf_parse_u64((kf_str_t){value, (size_t)n}, &parsed) != 0 || parsed < 1 ||
            parsed > KF_STORE_SEARCH_MAX) {
            kf_call_fail(req, KF_EPROTO, "limit must be 1 to 100");
            return false;
        }
        *limit = (size_t)parsed;
    }
    *before = 0;
    n = kf_http_query_get(params, "before", value, sizeof value);
    if (n != KF_ENOTFOUND) {
        uint64_t parsed;
        if (n < 0 || kf_parse_u64((kf_str_t){value, (size_t)n}, &parsed) != 0 || parsed < 1 ||
            parsed > INT64_MAX) {
            kf_call_fail(req, KF_EPROTO, "before must be the next of a page");
            return false;
        }
        *before = (int64_t)parsed;
    }
    return true;
}

void kf_search_get(const kf_call_t *call)
{
    kf_app_t *app = call->app;
    char *query = kf_xmalloc(QUERY_BYTES);
    size_t limit;
    int64_t before;
    if (!read_search(call->req, query, &limit, &before)) {
        free(query);
        return;
    }
    search_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->results = json_array();
    w->query = query;
    w->limit = limit;
    int rc = app->store->ops->search(app->store, query, before, limit, hit_cb, search_done_cb, w);
    if (rc != 0) {
        json_decref(w->results);
        free(w->query);
    }
    kf_call_hold(call->req, w, rc);
}
