/* sqlite_reads.c: the SQLite backend's reads: each is queued by the owner thread and run on its
 * own connection inside complete(), where its rows are handed to the callbacks straight from
 * the statement (borrowed, no copy). WAL readers see committed rows only and never wait for the
 * writer. */
#include "store/sqlite_internal.h"

#include "store/blobs.h"

#include "base/err.h"
#include "base/buf.h"
#include "store/search_text.h"

#include <stdlib.h>
#include <string.h>

int kf_sqlite_queue_read(sqlite_store_t *s, op_t *op)
{
    if (s->base.queue != NULL)
        return s->base.queue(&s->base, op); /* another backend's store (kf_store_t.queue) */
    bool was_empty = s->reads.head == NULL;
    kf_sqlite_list_append(&s->reads, op, op);
    /* Once per batch of reads: a complete() that is running took the ones before, and the ones
     * queued meanwhile wait for the call this asks for. */
    if (was_empty && s->notify != NULL)
        s->notify(s->notify_data);
    return 0;
}

int kf_sqlite_setting_get(kf_store_t *store, const char *key, kf_store_done_cb done, void *ctx)
{
    if (key == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_SETTING_GET, done, ctx);
    op->args.key = kf_sqlite_op_keep(op, key);
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

int kf_sqlite_agent_count(kf_store_t *store, kf_store_done_cb done, void *ctx)
{
    if (done == NULL)
        return KF_EINVAL;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store),
                                kf_sqlite_op_new(OP_AGENT_COUNT, done, ctx));
}

int kf_sqlite_message_newest(kf_store_t *store, kf_store_done_cb done, void *ctx)
{
    if (done == NULL)
        return KF_EINVAL;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store),
                                kf_sqlite_op_new(OP_MESSAGE_NEWEST, done, ctx));
}

int kf_sqlite_agent_by_email(kf_store_t *store, const char *email, kf_store_done_cb done, void *ctx)
{
    if (email == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_AGENT_BY_EMAIL, done, ctx);
    op->args.email = kf_sqlite_op_keep(op, email);
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

/* The reads that look up one row by its id. */
static int queue_by_id(kf_store_t *store, op_kind_t kind, int64_t id, kf_store_done_cb done,
                       void *ctx)
{
    if (done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(kind, done, ctx);
    op->args.id = id;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

int kf_sqlite_agent_by_id(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx)
{
    return queue_by_id(store, OP_AGENT_BY_ID, id, done, ctx);
}

int kf_sqlite_agent_list(kf_store_t *store, kf_store_agent_cb each, kf_store_done_cb done,
                         void *ctx)
{
    if (each == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_AGENT_LIST, done, ctx);
    op->each_agent = each;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

int kf_sqlite_session_get(kf_store_t *store, const char *token_hash, int64_t now,
                          kf_store_done_cb done, void *ctx)
{
    if (token_hash == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_SESSION_GET, done, ctx);
    op->args.session.token_hash = kf_sqlite_op_keep(op, token_hash);
    op->args.session.now = now;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

int kf_sqlite_visitor_by_token(kf_store_t *store, const char *token_hash, kf_store_done_cb done,
                               void *ctx)
{
    if (token_hash == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_VISITOR_BY_TOKEN, done, ctx);
    op->args.token_hash = kf_sqlite_op_keep(op, token_hash);
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

int kf_sqlite_conversation_get(kf_store_t *store, int64_t conversation_id, kf_store_done_cb done,
                               void *ctx)
{
    return queue_by_id(store, OP_CONVERSATION_GET, conversation_id, done, ctx);
}

int kf_sqlite_conversation_visitor(kf_store_t *store, int64_t conversation_id,
                                   kf_store_done_cb done, void *ctx)
{
    return queue_by_id(store, OP_CONVERSATION_VISITOR, conversation_id, done, ctx);
}

int kf_sqlite_attachment_get(kf_store_t *store, int64_t id, kf_store_done_cb done, void *ctx)
{
    return queue_by_id(store, OP_ATTACHMENT_GET, id, done, ctx);
}

int kf_sqlite_conversation_of_visitor(kf_store_t *store, int64_t visitor_id, kf_store_done_cb done,
                                      void *ctx)
{
    return queue_by_id(store, OP_CONVERSATION_OF_VISITOR, visitor_id, done, ctx);
}

int kf_sqlite_conversation_counts(kf_store_t *store, int64_t agent_id, kf_store_done_cb done,
                                  void *ctx)
{
    return queue_by_id(store, OP_CONVERSATION_COUNTS, agent_id, done, ctx);
}

int kf_sqlite_conversation_snooze_due(kf_store_t *store, int64_t now, kf_store_done_cb done,
                                      void *ctx)
{
    return queue_by_id(store, OP_CONVERSATION_SNOOZE_DUE, now, done, ctx);
}

int kf_sqlite_conversation_list(kf_store_t *store, const kf_conversation_page_t *page,
                                kf_store_conversation_cb each, kf_store_done_cb done, void *ctx)
{
    if (page == NULL || each == NULL || done == NULL || page->view < KF_VIEW_ALL ||
        page->view >= KF_VIEW_COUNT || (page->view == KF_VIEW_MINE && page->agent_id <= 0) ||
        page->team_id < 0)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_CONVERSATION_LIST, done, ctx);
    op->each_conversation = each;
    op->args.page = *page;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

/* The three message queries. */
static int queue_messages(kf_store_t *store, op_kind_t kind, int64_t subject, int64_t after_id,
                          size_t limit, kf_store_message_cb each, kf_store_done_cb done, void *ctx)
{
    if (each == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(kind, done, ctx);
    op->each_message = each;
    op->args.messages.subject = subject;
    op->args.messages.after_id = after_id;
    op->args.messages.limit = limit;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

int kf_sqlite_messages_in_conversation(kf_store_t *store, int64_t conversation_id, int64_t after_id,
                                       size_t limit, kf_store_message_cb each,
                                       kf_store_done_cb done, void *ctx)
{
    return queue_messages(store, OP_MESSAGES_IN_CONVERSATION, conversation_id, after_id, limit,
                          each, done, ctx);
}

int kf_sqlite_messages_of_visitor(kf_store_t *store, int64_t visitor_id, int64_t after_id,
                                  size_t limit, kf_store_message_cb each, kf_store_done_cb done,
                                  void *ctx)
{
    return queue_messages(store, OP_MESSAGES_OF_VISITOR, visitor_id, after_id, limit, each, done,
                          ctx);
}

int kf_sqlite_messages_all(kf_store_t *store, int64_t after_id, size_t limit,
                           kf_store_message_cb each, kf_store_done_cb done, void *ctx)
{
    return queue_messages(store, OP_MESSAGES_ALL, 0, after_id, limit, each, done, ctx);
}

/* A search waiting for the writer to index what waits for the search index (migration 17). */
typedef struct search_wait {
    sqlite_store_t *s;
    op_t *read;
} search_wait_t;

/* The index has caught up (or could not: a full disk): the search reads what it has. */
static void search_indexed(void *ctx, const kf_store_result_t *result)
{
    (void)result;
    search_wait_t *w = ctx;
    op_t *read = w->read;
    sqlite_store_t *s = w->s;
    free(w);
    kf_sqlite_queue_read(s, read);
}

int kf_sqlite_search(kf_store_t *store, const char *query, int64_t before_id, size_t limit,
                     kf_store_search_cb each, kf_store_done_cb done, void *ctx)
{
    if (each == NULL || done == NULL || limit < 1 || limit > KF_STORE_SEARCH_MAX || before_id < 0)
        return KF_EINVAL;
    char *match = NULL;
    if (kf_search_match(query, &match) != 0)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_SEARCH, done, ctx);
    op->each_hit = each;
    op->args.search.match = kf_sqlite_op_keep(op, match);
    free(match);
    op->args.search.before_id = before_id;
    op->args.search.limit = limit;
    /* Messages reach the search index in batches (KF_SQLITE_SEARCH_BATCH): the writer indexes
     * what waits first, so that a search finds every message stored before it was asked. */
    sqlite_store_t *s = kf_sqlite_from_base(store);
    if (s->base.queue == NULL &&
        atomic_load_explicit(&kf_sqlite_root(s)->search_waiting, memory_order_acquire) == 0)
        return kf_sqlite_queue_read(s, op);
    search_wait_t *w = kf_xcalloc(1, sizeof *w);
    w->s = s;
    w->read = op;
    int rc = kf_sqlite_queue_write(s, kf_sqlite_op_new(OP_SEARCH_INDEX, search_indexed, w));
    if (rc != 0) {
        free(w);
        kf_sqlite_op_free(op);
    }
    return rc;
}

/* ---- running them ---- */

/* The status a view of one status lists (CONVERSATION_LIST_STATUS), else NULL. */
static const char *const view_status[KF_VIEW_COUNT] = {
    [KF_VIEW_OPEN] = "open",
    [KF_VIEW_PENDING] = "pending",
    [KF_VIEW_RESOLVED] = "resolved",
    [KF_VIEW_SNOOZED] = "snoozed",
};

int kf_sqlite_canned_list(kf_store_t *store, int64_t agent_id, kf_store_canned_cb each,
                          kf_store_done_cb done, void *ctx)
{
    if (each == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_CANNED_LIST, done, ctx);
    op->each_canned = each;
    op->args.canned.agent_id = agent_id;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

int kf_sqlite_visitor_get(kf_store_t *store, int64_t visitor_id, kf_store_done_cb done, void *ctx)
{
    return queue_by_id(store, OP_VISITOR_GET, visitor_id, done, ctx);
}

int kf_sqlite_visitor_pages(kf_store_t *store, int64_t visitor_id, size_t limit,
                            kf_store_visitor_page_cb each, kf_store_done_cb done, void *ctx)
{
    if (each == NULL || done == NULL || limit < 1 || limit > KF_STORE_VISITOR_PAGES_MAX)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_VISITOR_PAGES, done, ctx);
    op->each_page = each;
    op->args.visitor_change.id = visitor_id;
    op->args.visitor_change.limit = limit;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

int kf_sqlite_visitor_conversations(kf_store_t *store, int64_t visitor_id, size_t limit,
                                    kf_store_conversation_cb each, kf_store_done_cb done, void *ctx)
{
    if (each == NULL || done == NULL || limit < 1)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_VISITOR_CONVERSATIONS, done, ctx);
    op->each_conversation = each;
    op->args.visitor_change.id = visitor_id;
    op->args.visitor_change.limit = limit;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

int kf_sqlite_conversation_team_counts(kf_store_t *store, int64_t agent_id,
                                       kf_store_team_counts_cb each, kf_store_done_cb done,
                                       void *ctx)
{
    if (each == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_TEAM_COUNTS, done, ctx);
    op->each_team_counts = each;
    op->args.id = agent_id;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

int kf_sqlite_team_list(kf_store_t *store, kf_store_team_cb each, kf_store_done_cb done, void *ctx)
{
    if (each == NULL || done == NULL)
        return KF_EINVAL;
    op_t *op = kf_sqlite_op_new(OP_TEAM_LIST, done, ctx);
    op->each_team = each;
    return kf_sqlite_queue_read(kf_sqlite_from_base(store), op);
}

/* The statement of a page of one team's view. */
static stmt_id_t team_list_statement(kf_conversation_view_t view)
{
    if (view == KF_VIEW_UNASSIGNED)
        return STMT_CONVERSATION_LIST_TEAM_UNASSIGNED;
    if (view == KF_VIEW_MINE)
        return STMT_CONVERSATION_LIST_TEAM_MINE;
    return view_status[view] != NULL ? STMT_CONVERSATION_LIST_TEAM_STATUS
                                     : STMT_CONVERSATION_LIST_TEAM;
}

/* The statement of a page of a view. */
static stmt_id_t list_statement(kf_conversation_view_t view, int64_t team_id)
{
    if (team_id != 0)
        return team_list_statement(view);
    if (view == KF_VIEW_UNASSIGNED)
        return STMT_CONVERSATION_LIST_UNASSIGNED;
    if (view == KF_VIEW_MINE)
        return STMT_CONVERSATION_LIST_MINE;
    return view_status[view] != NULL ? STMT_CONVERSATION_LIST_STATUS : STMT_CONVERSATION_LIST;
}

/* The FTS5 expression a search asks the names' index. */
static const char *names_of(const op_t *op)
{
    return op->args.search.names != NULL ? op->args.search.names : op->args.search.match;
}

/* Binds a read's arguments to st (its statement). */
static int bind_read(const op_t *op, sqlite3_stmt *st)
{
    const kf_conversation_page_t *page = &op->args.page;
    bool first_page = page->before_last_message_id == 0 && page->before_id == 0;
    switch (op->kind) {
    case OP_SETTING_GET: return kf_sqlite_bind(st, "t", op->args.key);
    case OP_AGENT_COUNT:
    case OP_MESSAGE_NEWEST:
    case OP_AGENT_LIST:
    case OP_TEAM_LIST: return 0;
    case OP_TEAM_COUNTS: return kf_sqlite_bind(st, "I", op->args.id);
    case OP_AGENT_BY_EMAIL: return kf_sqlite_bind(st, "t", op->args.email);
    case OP_VISITOR_BY_TOKEN: return kf_sqlite_bind(st, "t", op->args.token_hash);
    case OP_SESSION_GET:
        return kf_sqlite_bind(st, "ti", op->args.session.token_hash, op->args.session.now);
    case OP_CONVERSATION_LIST: {
        /* The first page starts above every row: (0, 0) means "from the newest". */
        int rc = kf_sqlite_bind(st, "nii", page->limit,
                                first_page ? INT64_MAX : page->before_last_message_id,
                                first_page ? INT64_MAX : page->before_id);
        if (rc == 0 && page->view == KF_VIEW_MINE)
            rc = sqlite3_bind_int64(st, 4, page->agent_id) == SQLITE_OK ? 0 : KF_ESTORE;
        else if (rc == 0 && view_status[page->view] != NULL)
            rc = sqlite3_bind_text(st, 4, view_status[page->view], -1, SQLITE_STATIC) == SQLITE_OK
                     ? 0
                     : KF_ESTORE;
        if (rc == 0 && page->team_id != 0)
            rc = sqlite3_bind_int64(st, 5, page->team_id) == SQLITE_OK ? 0 : KF_ESTORE;
        return rc;
    }
    case OP_MESSAGES_IN_CONVERSATION:
    case OP_MESSAGES_OF_VISITOR:
        return kf_sqlite_bind(st, "iin", op->args.messages.subject, op->args.messages.after_id,
                              op->args.messages.limit);
    case OP_MESSAGES_ALL:
        return kf_sqlite_bind(st, "in", op->args.messages.after_id, op->args.messages.limit);
    case OP_CANNED_LIST: return kf_sqlite_bind(st, "i", op->args.canned.agent_id);
    case OP_VISITOR_PAGES:
    case OP_VISITOR_CONVERSATIONS:
        return kf_sqlite_bind(st, "in", op->args.visitor_change.id, op->args.visitor_change.limit);
    case OP_SEARCH:
        return kf_sqlite_bind(st, "tint",
                              op->args.search.words != NULL ? op->args.search.words
                                                            : op->args.search.match,
                              op->args.search.before_id > 0 ? op->args.search.before_id : INT64_MAX,
                              op->args.search.limit, names_of(op));
    default: return kf_sqlite_bind(st, "i", op->args.id); /* the lookups by id */
    }
}

/* The statement of each read. */
static const stmt_id_t read_statements[OP_READ_COUNT] = {
    [OP_SETTING_GET] = STMT_SETTING_GET,
    [OP_AGENT_COUNT] = STMT_AGENT_COUNT,
    [OP_MESSAGE_NEWEST] = STMT_MESSAGE_NEWEST,
    [OP_AGENT_BY_EMAIL] = STMT_AGENT_BY_EMAIL,
    [OP_AGENT_BY_ID] = STMT_AGENT_BY_ID,
    [OP_AGENT_LIST] = STMT_AGENT_LIST,
    [OP_SESSION_GET] = STMT_SESSION_GET,
    [OP_VISITOR_BY_TOKEN] = STMT_VISITOR_BY_TOKEN,
    [OP_CONVERSATION_GET] = STMT_CONVERSATION_GET,
    [OP_CONVERSATION_VISITOR] = STMT_CONVERSATION_VISITOR,
    [OP_CONVERSATION_LIST] = STMT_CONVERSATION_LIST,
    [OP_CONVERSATION_COUNTS] = STMT_CONVERSATION_COUNTS,
    [OP_CONVERSATION_OF_VISITOR] = STMT_CONVERSATION_OF_VISITOR,
    [OP_CONVERSATION_SNOOZE_DUE] = STMT_CONVERSATION_SNOOZE_DUE,
    [OP_MESSAGES_IN_CONVERSATION] = STMT_MESSAGES_IN_CONVERSATION,
    [OP_MESSAGES_OF_VISITOR] = STMT_MESSAGES_OF_VISITOR,
    [OP_MESSAGES_ALL] = STMT_MESSAGES_ALL,
    [OP_SEARCH] = STMT_SEARCH,
    [OP_CANNED_LIST] = STMT_CANNED_LIST,
    [OP_TEAM_COUNTS] = STMT_CONVERSATION_TEAM_COUNTS,
    [OP_TEAM_LIST] = STMT_TEAM_LIST,
    [OP_VISITOR_GET] = STMT_VISITOR_GET,
    [OP_VISITOR_PAGES] = STMT_VISITOR_PAGES,
    [OP_VISITOR_CONVERSATIONS] = STMT_VISITOR_CONVERSATIONS,
    [OP_ATTACHMENT_GET] = STMT_ATTACHMENT_GET,
};

/* Hands every row of a list query to its each callback, stopping early when it returns
 * non-zero (which becomes result->rc); result->count is how many rows it was handed. */
static void each_row(const op_t *op, sqlite3_stmt *st, kf_store_result_t *result)
{
    int64_t *member_ids = NULL;
    for (;;) {
        int code = sqlite3_step(st);
        if (code == SQLITE_DONE)
            break;
        if (code != SQLITE_ROW) {
            result->rc = kf_sqlite_map_error(code);
            break;
        }
        result->count++;
        if (op->kind == OP_TEAM_LIST) {
            kf_team_t team;
            kf_sqlite_read_team(st, &team, &member_ids);
            result->rc = op->each_team(op->ctx, &team);
        } else if (op->kind == OP_TEAM_COUNTS) {
            int64_t counts[KF_VIEW_COUNT];
            for (int view = 0; view < KF_VIEW_COUNT; view++)
                counts[view] = sqlite3_column_int64(st, view + 1);
            result->rc = op->each_team_counts(op->ctx, sqlite3_column_int64(st, 0), counts);
        } else if (op->kind == OP_CONVERSATION_LIST || op->kind == OP_VISITOR_CONVERSATIONS) {
            kf_conversation_t conversation;
            kf_sqlite_read_conversation(st, &conversation);
            result->rc = op->each_conversation(op->ctx, &conversation);
        } else if (op->kind == OP_SEARCH) {
            kf_search_hit_t hit;
            hit.field = sqlite3_column_int64(st, 0) == KF_SEARCH_VISITOR ? KF_SEARCH_VISITOR
                                                                         : KF_SEARCH_MESSAGE;
            kf_sqlite_read_message(st, 1, &hit.message);
            hit.visitor_name = kf_sqlite_column_text(st, 14);
            hit.visitor_email = kf_sqlite_column_text(st, 15);
            result->rc = op->each_hit(op->ctx, &hit);
        } else if (op->kind == OP_VISITOR_PAGES) {
            kf_visitor_page_t page;
            kf_sqlite_read_visitor_page(st, &page);
            result->rc = op->each_page(op->ctx, &page);
        } else if (op->kind == OP_CANNED_LIST) {
            kf_canned_t canned;
            kf_sqlite_read_canned(st, &canned);
            result->rc = op->each_canned(op->ctx, &canned);
        } else if (op->kind == OP_AGENT_LIST) {
            kf_agent_t agent;
            kf_sqlite_read_agent(st, &agent);
            result->rc = op->each_agent(op->ctx, &agent);
        } else {
            kf_message_t message;
            kf_sqlite_read_message(st, 0, &message);
            result->rc = op->each_message(op->ctx, &message);
        }
        if (result->rc != 0)
            break;
    }
    free(member_ids);
}

/* Steps a lookup to its one row and points result at it (the row lives in the statement until
 * it is finished, after done). */
static void one_row(const op_t *op, sqlite3_stmt *st, kf_store_result_t *result, kf_agent_t *agent,
                    kf_visitor_t *visitor, kf_session_t *session, kf_conversation_t *conversation,
                    int64_t *counts)
{
    result->rc = kf_sqlite_step_row(st);
    if (result->rc != 0)
        return;
    switch (op->kind) {
    case OP_SETTING_GET: result->value = kf_sqlite_column_text(st, 0); break;
    case OP_AGENT_COUNT: result->count = sqlite3_column_int64(st, 0); break;
    case OP_MESSAGE_NEWEST: result->id = sqlite3_column_int64(st, 0); break;
    case OP_AGENT_BY_EMAIL:
    case OP_AGENT_BY_ID:
        kf_sqlite_read_agent(st, agent);
        result->agent = agent;
        break;
    case OP_SESSION_GET:
        session->agent_id = sqlite3_column_int64(st, 0);
        session->csrf = kf_sqlite_column_text(st, 1);
        session->expires_at = sqlite3_column_int64(st, 2);
        result->session = session;
        break;
    case OP_VISITOR_BY_TOKEN:
    case OP_VISITOR_GET:
        kf_sqlite_read_visitor(st, visitor);
        result->visitor = visitor;
        break;
    case OP_CONVERSATION_GET:
        kf_sqlite_read_conversation(st, conversation);
        result->conversation = conversation;
        break;
    case OP_CONVERSATION_COUNTS:
        for (int view = 0; view < KF_VIEW_COUNT; view++)
            counts[view] = sqlite3_column_int64(st, view);
        result->counts = counts;
        break;
    default: result->id = sqlite3_column_int64(st, 0); break; /* a visitor, a conversation */
    }
}

/* Appends the first word of an index (terms: SEARCH_TERM_NEXT, the messages', or
 * VISITOR_TERM_NEXT, the names') from from (inclusive) below below into *word (reset first):
 * 0, KF_ENOTFOUND when there is none, or the read's error. */
static int next_word(sqlite_store_t *s, stmt_id_t terms, const char *from, const char *below,
                     kf_buf_t *word)
{
    sqlite3_stmt *st = kf_sqlite_statement(&s->main, terms);
    int rc = kf_sqlite_bind(st, "tt", from, below);
    if (rc == 0)
        rc = kf_sqlite_step_row(st);
    kf_buf_reset(word);
    if (rc == 0)
        kf_buf_append_str(word, kf_sqlite_column_text(st, 0));
    kf_buf_append(word, "", 1);
    kf_sqlite_finish(st);
    return rc;
}

/* Appends for the ASCII word prefix (lower case, length letters and digits) the OR of the
 * index's words (terms, as next_word) that start with it, when there are 1 to
 * KF_SQLITE_SEARCH_PREFIX_WORDS of them, or the prefix as an exact word when there is none (both
 * lists hold every word an ASCII prefix can start: it finds nothing, as the prefix would, without
 * FTS5's seek past the word before it): true then, false (nothing appended) otherwise. */
static bool append_words(sqlite_store_t *s, stmt_id_t terms, const char *prefix, size_t length,
                         kf_buf_t *out)
{
    char from[KF_SEARCH_QUERY_MAX + 3]; /* a word of words[] and a byte */
    char below[KF_SEARCH_QUERY_MAX + 1];
    memcpy(from, prefix, length);
    from[length] = '\0';
    memcpy(below, prefix, length);
    below[length - 1]++; /* every word that starts with prefix sorts before this */
    below[length] = '\0';
    char words[KF_SQLITE_SEARCH_PREFIX_WORDS][KF_SEARCH_QUERY_MAX + 2];
    size_t count = 0;
    bool many = false; /* or unknown: the prefix stays */
    kf_buf_t word;
    kf_buf_init(&word);
    int rc;
    while ((rc = next_word(s, terms, from, below, &word)) == 0) {
        /* A word longer than a query can be cannot be one the query's prefix needs spelled out:
         * give up on the expansion (the prefix still finds it). */
        if (count == KF_SQLITE_SEARCH_PREFIX_WORDS || word.len > sizeof words[0] - 1) {
            many = true;
            break;
        }
        memcpy(words[count], word.data, word.len);
        /* The next probe starts just past this word: no word holds a byte below 0x01. */
        size_t word_length = strlen(words[count]);
        memcpy(from, words[count], word_length);
        from[word_length] = '\x01';
        from[word_length + 1] = '\0';
        count++;
    }
    kf_buf_free(&word);
    if (many || (rc != 0 && rc != KF_ENOTFOUND))
        return false;
    if (count == 0) {
        kf_buf_printf(out, "\"%.*s\"", (int)length, prefix);
        return true;
    }
    kf_buf_append_str(out, "(");
    for (size_t i = 0; i < count; i++)
        kf_buf_printf(out, "%s\"%s\"", i > 0 ? " OR " : "", words[i]);
    kf_buf_append_str(out, ")");
    return true;
}

/* Rewrites a search's FTS5 expression (kf_search_match's: quoted terms, a prefix one followed by
 * '*') for an index (terms, as next_word): each prefix of ASCII letters and digits becomes the OR
 * of the few words it stands for. Why: FTS5 answers a prefix by merging the doclists of every word
 * that starts with it, every hit of "refund" and "refunds" in the whole history, before it can hand
 * over the newest 20; an OR of words is walked newest first and stops at the page. The words
 * are the index's own (message_search_terms), folded as it folds them, so the hits are the same.
 * A prefix of more words (a short one, "re"), or of other scripts, stays a prefix. Returns a new
 * string, or NULL when nothing changes. */
static char *expand_prefixes(sqlite_store_t *s, stmt_id_t terms, const char *match)
{
    /* Each term as it stands (start, length, with its '*'), or as its words (in words, from
     * word_at); the spaces between are the implicit AND. */
    struct item {
        const char *start;
        size_t length;
        size_t text_length; /* between its quotes */
        size_t word_at, word_length;
        bool unspaced; /* holds a byte of another script than ASCII */
    } items[KF_SEARCH_QUERY_MAX];
    size_t count = 0;
    kf_buf_t words;
    kf_buf_init(&words);
    bool changed = false;
    const char *p = match;
    while (*p != '\0' && count < KF_SEARCH_QUERY_MAX) {
        if (*p != '"') {
            p++;
            continue;
        }
        /* A quoted term: to its closing quote ("" is a quote inside). */
        const char *end = p + 1;
        while (*end != '\0' && !(end[0] == '"' && end[1] != '"')) {
            end += end[0] == '"' ? 2 : 1;
        }
        if (*end == '\0')
            break; /* not kf_search_match's: left as it is */
        size_t length = (size_t)(end - p - 1);
        bool prefix = end[1] == '*';
        const char *next = end + 1 + (prefix ? 1 : 0);
        bool ascii = length >= 2 && length <= KF_SEARCH_QUERY_MAX;
        bool unspaced = false;
        char lower[KF_SEARCH_QUERY_MAX + 1];
        for (size_t i = 0; i < length; i++) {
            unsigned char c = (unsigned char)p[1 + i];
            unspaced = unspaced || c >= 0x80;
            ascii = ascii &&
                    ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
            if (ascii)
                lower[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        }
        struct item *it = &items[count++];
        *it = (struct item){
            .start = p, .length = (size_t)(next - p), .text_length = length, .unspaced = unspaced};
        it->word_at = words.len;
        if (prefix && ascii && append_words(s, terms, lower, length, &words)) {
            changed = true;
            it->word_length = words.len - it->word_at;
        }
        p = next;
    }
    if (!changed || *p != '\0') {
        kf_buf_free(&words);
        return NULL;
    }
    /* FTS5 takes a group in parentheses beside another term only with an explicit AND. A term
     * of no word for the index's tokenizer (kf_search_match keeps any chunk of another script
     * than ASCII: a symbol, an emoji) is an empty phrase, which FTS5 drops beside an implicit
     * AND but which makes an explicit one match nothing: it is left out, as FTS5 left it. */
    kf_buf_t out;
    kf_buf_init(&out);
    bool first = true;
    for (size_t i = 0; i < count; i++) {
        const struct item *it = &items[i];
        if (it->word_length == 0 && it->unspaced &&
            kf_sqlite_term_has_tokens(s->main.db, it->start + 1, it->text_length) == 0)
            continue;
        if (!first)
            kf_buf_append_str(&out, " AND ");
        first = false;
        if (it->word_length > 0)
            kf_buf_append(&out, words.data + it->word_at, it->word_length);
        else
            kf_buf_append(&out, it->start, it->length);
    }
    kf_buf_append(&out, "", 1);
    kf_buf_free(&words);
    size_t len;
    return kf_buf_steal(&out, &len);
}

/* Whether a search's query matches so many visitors' names that their hits are best walked
 * newest first (KF_SQLITE_SEARCH in sqlite_internal.h says both ways). A failed count says no:
 * the search then runs the other way, correct either way. */
static bool common_name(sqlite_store_t *s, const op_t *op)
{
    sqlite3_stmt *st = kf_sqlite_statement(&s->main, STMT_SEARCH_NAME_HITS);
    bool common =
        kf_sqlite_bind(st, "ti", names_of(op), (int64_t)KF_SQLITE_SEARCH_MANY_NAMES) == 0 &&
        kf_sqlite_step_row(st) == 0 && sqlite3_column_int64(st, 0) >= KF_SQLITE_SEARCH_MANY_NAMES;
    kf_sqlite_finish(st);
    return common;
}

/* Steps attachment_get's row and reads its blob into the op (freed with it). A row whose blob is
 * gone is no attachment (KF_ENOTFOUND): nothing can be served for it. */
static void read_attachment(sqlite_store_t *s, op_t *op, sqlite3_stmt *st,
                            kf_store_result_t *result, kf_attachment_t *attachment)
{
    result->rc = kf_sqlite_step_row(st);
    if (result->rc != 0)
        return;
    *attachment = (kf_attachment_t){
        .id = sqlite3_column_int64(st, 0),
        .conversation_id = sqlite3_column_int64(st, 1),
        .visitor_id = sqlite3_column_int64(st, 2),
        .message_id = sqlite3_column_int64(st, 3),
        .is_private = sqlite3_column_int64(st, 4) != 0,
        .sender =
            sqlite3_column_int64(st, 5) == KF_SENDER_AGENT ? KF_SENDER_AGENT : KF_SENDER_VISITOR,
        .uploader_id = sqlite3_column_int64(st, 6),
        .name = kf_sqlite_column_text(st, 7),
        .type = kf_sqlite_column_text(st, 8),
        .size = sqlite3_column_int64(st, 9),
        .sha256 = kf_sqlite_column_text(st, 10),
        .created_at = sqlite3_column_int64(st, 11),
    };
    if (attachment->size < 0) {
        result->rc = KF_ESTORE;
        return;
    }
    int rc = kf_blob_read(s->blob_dir, attachment->sha256, (size_t)attachment->size, &op->blob);
    if (rc != 0) {
        result->rc = rc == KF_ENOTFOUND || rc == KF_EUNAVAIL ? rc : KF_ESTORE;
        return;
    }
    op->blob_len = (size_t)attachment->size;
    attachment->bytes = op->blob;
    result->attachment = attachment;
}

void kf_sqlite_run_read(sqlite_store_t *s, op_t *op)
{
    if (op->kind == OP_REPORT) {
        kf_sqlite_run_report(s, op);
        return;
    }
    if (kf_sqlite_is_integration(op)) {
        kf_sqlite_run_integration_read(s, op);
        return;
    }
    stmt_id_t id = op->kind == OP_CONVERSATION_LIST
                       ? list_statement(op->args.page.view, op->args.page.team_id)
                       : read_statements[op->kind];
    /* A search reads the index's words, then the hits: one snapshot, so that a message stored
     * between the two cannot be a hit of a word the expansion did not see. */
    bool snapshot = op->kind == OP_SEARCH && op->args.search.match[0] != '\0' &&
                    kf_sqlite_run(kf_sqlite_statement(&s->main, STMT_READ_BEGIN)) == 0;
    if (op->kind == OP_SEARCH && op->args.search.match[0] != '\0') {
        char *words = expand_prefixes(s, STMT_SEARCH_TERM_NEXT, op->args.search.match);
        if (words != NULL) {
            op->args.search.words = kf_sqlite_op_keep(op, words);
            free(words);
        }
        char *names = expand_prefixes(s, STMT_VISITOR_TERM_NEXT, op->args.search.match);
        if (names != NULL) {
            op->args.search.names = kf_sqlite_op_keep(op, names);
            free(names);
        }
        if (common_name(s, op))
            id = STMT_SEARCH_MANY;
    }
    sqlite3_stmt *st = kf_sqlite_statement(&s->main, id);
    kf_sqlite_name_walk_t *walk = NULL;
    int64_t counts[KF_VIEW_COUNT];
    kf_store_result_t result;
    memset(&result, 0, sizeof result);
    kf_agent_t agent;
    kf_visitor_t visitor;
    kf_session_t session;
    kf_conversation_t conversation;
    kf_attachment_t attachment;
    result.rc = bind_read(op, st);
    if (result.rc == 0 && id == STMT_SEARCH_MANY)
        result.rc = kf_sqlite_name_walk_start(&s->main, names_of(op), st, 5, &walk);
    /* A query of punctuation alone has no term (an empty FTS5 expression): it finds nothing. */
    bool nothing = op->kind == OP_SEARCH && op->args.search.match[0] == '\0';
    if (result.rc == 0 && !nothing) {
        bool list = op->kind == OP_AGENT_LIST || op->kind == OP_CONVERSATION_LIST ||
                    op->kind == OP_MESSAGES_IN_CONVERSATION || op->kind == OP_MESSAGES_OF_VISITOR ||
                    op->kind == OP_MESSAGES_ALL || op->kind == OP_SEARCH ||
                    op->kind == OP_CANNED_LIST || op->kind == OP_TEAM_LIST ||
                    op->kind == OP_TEAM_COUNTS || op->kind == OP_VISITOR_PAGES ||
                    op->kind == OP_VISITOR_CONVERSATIONS;
        if (list)
            each_row(op, st, &result);
        else if (op->kind == OP_ATTACHMENT_GET)
            read_attachment(s, op, st, &result, &attachment);
        else
            one_row(op, st, &result, &agent, &visitor, &session, &conversation, counts);
    }
    /* The row stays valid during done: the statement is reset only after it. */
    op->done(op->ctx, &result);
    kf_sqlite_finish(st);
    kf_sqlite_name_walk_end(walk);
    if (snapshot)
        kf_sqlite_run(kf_sqlite_statement(&s->main, STMT_COMMIT));
}
