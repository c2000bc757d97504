/* mentions.c: finding @mentions in a note, and telling the agents they name. */
#include "chat/mentions.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "chat/events.h"
#include "chat/internal.h"

/* Characters a snippet of the note keeps at most. */
#define SNIPPET_CHARS 140

static bool is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* The length of name when the text at at starts with it (ASCII case ignored) and the name ends
 * there (the end of the text, or a byte that is not a word byte); else 0. */
static size_t match_at(const char *at, const char *name)
{
    size_t i = 0;
    for (; name[i] != '\0'; i++) {
        if (at[i] == '\0' ||
            ascii_lower((unsigned char)at[i]) != ascii_lower((unsigned char)name[i]))
            return 0;
    }
    return i > 0 && !is_word_byte((unsigned char)at[i]) ? i : 0;
}

size_t kf_mentions_find(const char *body, const char *const *names, size_t count, bool *mentioned)
{
    size_t found = 0;
    for (const char *p = body; (p = strchr(p, '@')) != NULL; p++) {
        if (p != body && is_word_byte((unsigned char)p[-1]))
            continue;
        size_t best_len = 0, best = 0;
        for (size_t i = 0; i < count; i++) {
            size_t len = names[i] != NULL ? match_at(p + 1, names[i]) : 0;
            if (len > best_len) {
                best_len = len;
                best = i;
            }
        }
        if (best_len > 0 && !mentioned[best]) {
            mentioned[best] = true;
            found++;
        }
    }
    return found;
}

/* A note on its way through the agents' read. */
typedef struct mentioning {
    kf_app_t *app;
    int64_t conversation_id;
    int64_t message_id;
    int64_t author_id;
    char *author_name;
    char *body;
    size_t count, capacity;
    int64_t *ids; /* the enabled agents but the author */
    char **names;
} mentioning_t;

static void mentioning_free(mentioning_t *w)
{
    for (size_t i = 0; i < w->count; i++)
        free(w->names[i]);
    free(w->names);
    free(w->ids);
    free(w->author_name);
    free(w->body);
    free(w);
}

static int agent_cb(void *ctx, const kf_agent_t *agent)
{
    mentioning_t *w = ctx;
    if (agent->disabled_at != 0 || agent->id == w->author_id)
        return 0;
    if (w->count == w->capacity) {
        w->capacity = w->capacity != 0 ? 2 * w->capacity : 16;
        w->ids = kf_xrealloc(w->ids, w->capacity * sizeof *w->ids);
        w->names = kf_xrealloc(w->names, w->capacity * sizeof *w->names);
    }
    w->ids[w->count] = agent->id;
    w->names[w->count] = kf_xstrdup(agent->name);
    w->count++;
    return 0;
}

/* The note's first SNIPPET_CHARS characters (a UTF-8 boundary), with "…" when cut. */
static json_t *snippet(const char *body)
{
    size_t chars = 0, i = 0;
    for (; body[i] != '\0'; i++) {
        if (((unsigned char)body[i] & 0xC0) != 0x80 && chars++ == SNIPPET_CHARS)
            break;
    }
    if (body[i] == '\0')
        return json_string(body);
    char *cut = kf_xmalloc(i + 4);
    memcpy(cut, body, i);
    memcpy(cut + i, "\xE2\x80\xA6", 4);
    json_t *text = json_string(cut);
    free(cut);
    return text;
}

static void agents_read_cb(void *ctx, const kf_store_result_t *r)
{
    mentioning_t *w = ctx;
    if (r->rc == 0 && w->count > 0) {
        bool *mentioned = kf_xcalloc(w->count, sizeof *mentioned);
        kf_mentions_find(w->body, (const char *const *)w->names, w->count, mentioned);
        for (size_t i = 0; i < w->count; i++) {
            if (!mentioned[i])
                continue;
            /* On the agents' topic, the one every console follows (a stream follows one topic),
             * addressed by agent_id: each console shows the mentions of its own agent. The note
             * is every agent's to read already, so the others learn nothing new. */
            json_t *event = json_pack(
                "{s:s,s:I,s:I,s:I,s:{s:I,s:s},s:o}", "type", "mention", "agent_id",
                (json_int_t)w->ids[i], "conversation_id", (json_int_t)w->conversation_id,
                "message_id", (json_int_t)w->message_id, "author", "id", (json_int_t)w->author_id,
                "name", w->author_name, "snippet", snippet(w->body));
            kf_chat_publish(w->app->hub, 0, true, kf_chat_event(0, event));
        }
        free(mentioned);
    }
    mentioning_free(w);
}

void kf_chat_publish_mentions(kf_app_t *app, const kf_message_t *note)
{
    if (!note->is_private || strchr(note->body, '@') == NULL)
        return;
    mentioning_t *w = kf_xcalloc(1, sizeof *w);
    w->app = app;
    w->conversation_id = note->conversation_id;
    w->message_id = note->id;
    w->author_id = note->agent_id;
    w->author_name = kf_xstrdup(note->agent_name != NULL ? note->agent_name : "");
    w->body = kf_xstrdup(note->body);
    if (app->store->ops->agent_list(app->store, agent_cb, agents_read_cb, w) != 0)
        mentioning_free(w);
}
