/* transcript.c: a conversation's whole thread in one answer, for keeping or sending on:
 * GET /api/conversations/{id}/transcript?format=json|txt. The conversation is read first, then its
 * messages a page at a time (the store's pages, oldest first) until the last, up to a bound: one
 * answer is held whole in memory, so a thread past it is cut, and the answer says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "chat/events.h"
#include "chat/handlers.h"
#include "chat/internal.h"
#include "http/parser.h"

/* At most this many messages in one transcript (about 40 MB of text at worst, 4,000 characters
 * each; a support conversation is a few dozen). */
#define TRANSCRIPT_MAX_MESSAGES 10000

typedef struct transcript_wait {
    kf_wait_t base;
    kf_app_t *app;
    int64_t id;
    bool text; /* format=txt */
    json_t *conversation;
    json_t *messages;  /* format=json */
    kf_buf_t body;     /* format=txt */
    int64_t after;     /* the last message id read */
    size_t count;      /* messages read */
    size_t page_count; /* rows of the page being read */
    bool cut;          /* stopped at TRANSCRIPT_MAX_MESSAGES */
} transcript_wait_t;

static void transcript_free(transcript_wait_t *w)
{
    json_decref(w->conversation);
    json_decref(w->messages);
    kf_buf_free(&w->body);
    free(w);
}

/* A wall-clock time in ms as "2026-12-05 03:06:12 UTC". */
static void format_utc(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* One message as a line of text; the lines of a body after its first are indented. */
static void append_text(kf_buf_t *b, const kf_message_t *m, const char *visitor_name)
{
    char when[32];
    format_utc(m->created_at, when);
    const char *who = m->sender == KF_SENDER_AGENT ? m->agent_name : visitor_name;
    /* The transcript is the agents' (its route is agent-only): notes stay in it, marked so that
     * nobody pastes one to the visitor by mistake. */
    kf_buf_printf(b, "[%s] %s%s: ", when, who,
                  m->is_private                  ? " (agent, private note)"
                  : m->sender == KF_SENDER_AGENT ? " (agent)"
                                                 : "");
    for (const char *p = m->body; *p != '\0'; p++) {
        kf_buf_append(b, p, 1);
        if (*p == '\n')
            kf_buf_append_str(b, "    ");
    }
    kf_buf_append_str(b, "\n");
}

static int message_row_cb(void *ctx, const kf_message_t *m)
{
    transcript_wait_t *w = ctx;
    w->page_count++;
    w->after = m->id;
    if (w->count == TRANSCRIPT_MAX_MESSAGES) {
        w->cut = true;
        return 1;
    }
    w->count++;
    if (w->text) {
        const char *visitor =
            json_string_value(json_object_get(json_object_get(w->conversation, "visitor"), "name"));
        char fallback[40];
        if (visitor == NULL || visitor[0] == '\0') {
            snprintf(fallback, sizeof fallback, "Visitor #%lld", (long long)m->visitor_id);
            visitor = fallback;
        }
        append_text(&w->body, m, visitor);
    } else {
        json_array_append_new(w->messages, kf_chat_message_json(m));
    }
    return 0;
}

static void answer(transcript_wait_t *w)
{
    kf_req_t *req = w->base.req;
    if (w->text) {
        if (w->cut)
            kf_buf_printf(&w->body,
                          "\n(cut at %d messages: read the rest with GET "
                          "/api/conversations/%lld/messages?after=%lld)\n",
                          TRANSCRIPT_MAX_MESSAGES, (long long)w->id, (long long)w->after);
        char disposition[96];
        snprintf(disposition, sizeof disposition,
                 "attachment; filename=\"kefu-conversation-%lld.txt\"", (long long)w->id);
        kf_resp_header(req, "Content-Disposition", disposition);
        kf_resp_send(req, 200, "text/plain; charset=utf-8", w->body.data, w->body.len);
    } else {
        kf_resp_json(req, 200,
                     json_pack("{s:O,s:O,s:b}", "conversation", w->conversation, "messages",
                               w->messages, "complete", !w->cut));
    }
}

static void messages_done_cb(void *ctx, const kf_store_result_t *r);

static int read_page(transcript_wait_t *w)
{
    kf_store_t *store = w->app->store;
    w->page_count = 0;
    return store->ops->messages_in_conversation(store, w->id, w->after, KF_PAGE_SIZE,
                                                message_row_cb, messages_done_cb, w);
}

static void messages_done_cb(void *ctx, const kf_store_result_t *r)
{
    transcript_wait_t *w = ctx;
    int rc = r->rc;
    if (w->base.req == NULL) {
        transcript_free(w);
        return;
    }
    /* A full page may have more behind it; a short one is the last. */
    if (rc == 0 && !w->cut && w->page_count == KF_PAGE_SIZE) {
        rc = read_page(w);
        if (rc == 0)
            return;
    }
    if (rc != 0)
        kf_call_fail(w->base.req, rc, NULL);
    else
        answer(w);
    transcript_free(w);
}

static void conversation_cb(void *ctx, const kf_store_result_t *r)
{
    transcript_wait_t *w = ctx;
    int rc = r->rc;
    if (w->base.req != NULL && rc == 0) {
        const kf_conversation_t *c = r->conversation;
        w->conversation = kf_chat_conversation_json(c);
        if (w->text) {
            char started[32];
            format_utc(c->created_at, started);
            const char *name = c->visitor_name[0] != '\0' ? c->visitor_name : "a visitor";
            kf_buf_printf(&w->body,
                          "Conversation %lld with %s (visitor #%lld)\nStarted %s; status: %s\n\n",
                          (long long)c->id, name, (long long)c->visitor_id, started, c->status);
        }
        rc = read_page(w);
        if (rc == 0)
            return;
    }
    if (w->base.req != NULL)
        kf_call_fail(w->base.req, rc, rc == KF_ENOTFOUND ? "no such conversation" : NULL);
    transcript_free(w);
}

void kf_conversation_transcript_get(const kf_call_t *call)
{
    kf_req_t *req = call->req;
    char format[8];
    int n = kf_http_query_get(req->head->query, "format", format, sizeof format);
    bool text = n == 3 && memcmp(format, "txt", 3) == 0;
    if (n != KF_ENOTFOUND && !text && !(n == 4 && memcmp(format, "json", 4) == 0)) {
        kf_call_fail(req, KF_EPROTO, "format must be json or txt");
        return;
    }
    transcript_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->app = call->app;
    w->id = call->ids[0];
    w->text = text;
    w->messages = json_array();
    kf_buf_init(&w->body);
    kf_store_t *store = call->app->store;
    int rc = store->ops->conversation_get(store, w->id, conversation_cb, w);
    if (rc != 0) {
        kf_call_fail(req, rc, NULL);
        transcript_free(w);
        return;
    }
    kf_call_hold(req, w, 0);
}
