/* test_sqlite.c: the store suite, written against kf_store_t alone so that every backend runs it
 * (the backend section at the top says how to open the store under test), then SQLite-only
 * checks (integrity after every test, pragmas, migrations). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "store/store.h"

#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fixed clock: tests pass times explicitly, so nothing depends on the real one. */
#define NOW INT64_C(1764100000000)
#define HOUR INT64_C(3600000)

/* ---- The backend under test ------------------------------------------------------------------ */

/* One test's store and where it lives. */
typedef struct fixture {
    char dir[64];      /* fresh temporary directory holding the database */
    char path[128];    /* the database file inside dir */
    kf_store_t *store; /* the store under test; open for the whole test */
} fixture_t;

/* Opens (or reopens) the store under test on the fixture's database. */
static int backend_open(fixture_t *f, kf_store_t **out)
{
    return kf_store_open_sqlite(f->path, NULL, out);
}

/* Gives the fixture an empty database: a new temporary directory. */
static void backend_create(fixture_t *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/kefu-test-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/kefu.db", f->dir);
}

/* Checks the database file after the store is closed: SQLite's own consistency checks. */
static void backend_check(const fixture_t *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* Removes the temporary directory and everything in it (the database, its WAL and shm files). */
static void backend_destroy(fixture_t *f)
{
    DIR *dir = opendir(f->dir);
    if (dir == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char file[384];
        snprintf(file, sizeof(file), "%s/%s", f->dir, entry->d_name);
        unlink(file);
    }
    closedir(dir);
    rmdir(f->dir);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    backend_create(f);
    if (backend_open(f, &f->store) != 0) {
        backend_destroy(f);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    kf_store_close(f->store);
    f->store = NULL;
    backend_check(f);
    backend_destroy(f);
    free(f);
    return 0;
}

/* Closes the store and opens it again on the same data: what a restart does. */
static void reopen(fixture_t *f)
{
    kf_store_close(f->store);
    f->store = NULL;
    assert_int_equal(backend_open(f, &f->store), 0);
}

/* ---- Recording callbacks --------------------------------------------------------------------- */

#define MAX_ROWS 64
#define MAX_STRINGS (MAX_ROWS * 8)

/* What callbacks were handed, copied out (rows are only borrowed during the callback). */
typedef struct seen {
    int calls;                                 /* callbacks so far, of any kind */
    int stop_at;                               /* > 0: call number stop_at returns stop_value */
    int stop_value;                            /* what that call returns */
    size_t message_count;                      /* rows in messages */
    kf_message_t messages[MAX_ROWS];           /* copies; strings point into strings[] */
    size_t conversation_count;                 /* rows in conversations */
    kf_conversation_t conversations[MAX_ROWS]; /* copies; strings point into strings[] */
    size_t agent_count;                        /* rows in agents */
    kf_agent_t agents[MAX_ROWS];               /* copies; strings point into strings[] */
    size_t result_count;                       /* batched writes' completions */
    int results[MAX_ROWS];                     /* their result codes, in order */
    bool opened[MAX_ROWS];                     /* their conversation_opened */
    size_t string_count;                       /* entries in strings */
    char *strings[MAX_STRINGS];                /* owned copies, freed by seen_free */
} seen_t;

static seen_t *seen_new(void)
{
    seen_t *seen = calloc(1, sizeof(*seen));
    assert_non_null(seen);
    return seen;
}

static void seen_free(seen_t *seen)
{
    for (size_t i = 0; i < seen->string_count; i++)
        free(seen->strings[i]);
    free(seen);
}

/* Copies a borrowed string into seen, which owns the copy. */
static const char *keep(seen_t *seen, const char *text)
{
    assert_non_null(text);
    assert_true(seen->string_count < MAX_STRINGS);
    char *copy = strdup(text);
    assert_non_null(copy);
    seen->strings[seen->string_count++] = copy;
    return copy;
}

/* Counts a call and says what the callback returns. */
static int count_call(seen_t *seen)
{
    seen->calls++;
    return seen->stop_at > 0 && seen->calls == seen->stop_at ? seen->stop_value : 0;
}

static void keep_message(seen_t *seen, const kf_message_t *message, kf_message_t *copy)
{
    *copy = *message;
    copy->agent_name = keep(seen, message->agent_name);
    copy->body = keep(seen, message->body);
}

static int on_message(void *ctx, const kf_message_t *message)
{
    seen_t *seen = ctx;
    assert_true(seen->message_count < MAX_ROWS);
    keep_message(seen, message, &seen->messages[seen->message_count++]);
    return count_call(seen);
}

/* A batched write's done callback: records the result (and the row, when stored). */
static void on_done(void *ctx, const kf_store_result_t *result)
{
    seen_t *seen = ctx;
    assert_true(seen->result_count < MAX_ROWS);
    seen->opened[seen->result_count] = result->conversation_opened;
    seen->results[seen->result_count++] = result->rc;
    if (result->rc == 0 && result->message.id != 0) {
        assert_true(seen->message_count < MAX_ROWS);
        keep_message(seen, &result->message, &seen->messages[seen->message_count++]);
    }
    seen->calls++;
}

static int on_conversation(void *ctx, const kf_conversation_t *conversation)
{
    seen_t *seen = ctx;
    assert_true(seen->conversation_count < MAX_ROWS);
    kf_conversation_t *copy = &seen->conversations[seen->conversation_count++];
    *copy = *conversation;
    copy->visitor_name = keep(seen, conversation->visitor_name);
    copy->status = keep(seen, conversation->status);
    keep_message(seen, &conversation->last_message, &copy->last_message);
    return count_call(seen);
}

static int on_agent(void *ctx, const kf_agent_t *agent)
{
    seen_t *seen = ctx;
    assert_true(seen->agent_count < MAX_ROWS);
    kf_agent_t *copy = &seen->agents[seen->agent_count++];
    *copy = *agent;
    copy->email = keep(seen, agent->email);
    copy->name = keep(seen, agent->name);
    copy->role = keep(seen, agent->role);
    copy->password_hash = keep(seen, agent->password_hash);
    return count_call(seen);
}

/* ---- Helpers that build rows ----------------------------------------------------------------- */

static int64_t add_agent(fixture_t *f, const char *email, const char *name)
{
    int64_t id = 0;
    assert_int_equal(
        f->store->ops->agent_create(f->store, email, name, "agent", "scrypt$hash", NOW, &id), 0);
    assert_true(id > 0);
    return id;
}

static int64_t add_visitor(fixture_t *f, const char *token_hash, const char *name)
{
    int64_t id = 0;
    assert_int_equal(f->store->ops->visitor_create(f->store, token_hash, name, NOW, &id), 0);
    assert_true(id > 0);
    return id;
}

static int64_t open_conversation(fixture_t *f, int64_t visitor_id)
{
    int64_t id = 0;
    assert_int_equal(f->store->ops->conversation_open_for_visitor(f->store, visitor_id, NOW, &id),
                     0);
    assert_true(id > 0);
    return id;
}

/* Adds a message at time now and returns its id (agent_id 0 means a visitor message). */
static int64_t add_message_at(fixture_t *f, int64_t conversation_id, int64_t agent_id,
                              const char *body, int64_t now)
{
    seen_t *seen = seen_new();
    kf_sender_t sender = agent_id != 0 ? KF_SENDER_AGENT : KF_SENDER_VISITOR;
    assert_int_equal(f->store->ops->message_add(f->store, conversation_id, 0, sender, agent_id,
                                                body, now, on_done, seen),
                     0);
    f->store->ops->flush(f->store);
    assert_int_equal(seen->result_count, 1);
    assert_int_equal(seen->results[0], 0);
    assert_int_equal(seen->message_count, 1);
    int64_t id = seen->messages[0].id;
    assert_true(id > 0);
    seen_free(seen);
    return id;
}

static int64_t add_message(fixture_t *f, int64_t conversation_id, int64_t agent_id,
                           const char *body)
{
    return add_message_at(f, conversation_id, agent_id, body, NOW);
}

/* Fetches one conversation into seen->conversations[0]. */
static seen_t *get_conversation(fixture_t *f, int64_t conversation_id)
{
    seen_t *seen = seen_new();
    assert_int_equal(
        f->store->ops->conversation_get(f->store, conversation_id, on_conversation, seen), 0);
    assert_int_equal(seen->conversation_count, 1);
    return seen;
}

/* ---- The suite every backend runs ------------------------------------------------------------ */

static void test_settings(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    char value[16];

    assert_int_equal(ops->setting_get(f->store, "secret", value, sizeof(value)), KF_ENOTFOUND);
    assert_int_equal(ops->setting_set(f->store, "secret", "abc"), 0);
    assert_int_equal(ops->setting_get(f->store, "secret", value, sizeof(value)), 0);
    assert_string_equal(value, "abc");

    assert_int_equal(ops->setting_set(f->store, "secret", "overwritten"), 0);
    assert_int_equal(ops->setting_get(f->store, "secret", value, sizeof(value)), 0);
    assert_string_equal(value, "overwritten");

    /* "overwritten" is 11 bytes: 12 fit exactly, 11 do not. */
    char small[12];
    assert_int_equal(ops->setting_get(f->store, "secret", small, 12), 0);
    assert_string_equal(small, "overwritten");
    assert_int_equal(ops->setting_get(f->store, "secret", small, 11), KF_ETOOBIG);
    assert_int_equal(ops->setting_get(f->store, "secret", small, 0), KF_ETOOBIG);

    assert_int_equal(ops->setting_set(f->store, "empty", ""), 0);
    assert_int_equal(ops->setting_get(f->store, "empty", value, sizeof(value)), 0);
    assert_string_equal(value, "");
    assert_int_equal(ops->setting_get(f->store, "Secret", value, sizeof(value)), KF_ENOTFOUND);
}

static void test_agents(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t count = -1;

    assert_int_equal(ops->agent_count(f->store, &count), 0);
    assert_int_equal(count, 0);

    int64_t ana = 0;
    assert_int_equal(
        ops->agent_create(f->store, "ana@example.com", "Ana", "admin", "hash-ana", NOW, &ana), 0);
    int64_t bo = add_agent(f, "bo@example.com", "Bo");
    assert_true(bo != ana);

    int64_t unused = 0;
    assert_int_equal(
        ops->agent_create(f->store, "ana@example.com", "Other", "agent", "h", NOW, &unused),
        KF_EEXISTS);
    assert_int_equal(ops->agent_count(f->store, &count), 0);
    assert_int_equal(count, 2);

    seen_t *seen = seen_new();
    assert_int_equal(ops->agent_by_email(f->store, "ana@example.com", on_agent, seen), 0);
    assert_int_equal(seen->agent_count, 1);
    assert_int_equal(seen->agents[0].id, ana);
    assert_string_equal(seen->agents[0].email, "ana@example.com");
    assert_string_equal(seen->agents[0].name, "Ana");
    assert_string_equal(seen->agents[0].role, "admin");
    assert_string_equal(seen->agents[0].password_hash, "hash-ana");
    assert_int_equal(seen->agents[0].created_at, NOW);

    assert_int_equal(ops->agent_by_id(f->store, bo, on_agent, seen), 0);
    assert_int_equal(seen->agent_count, 2);
    assert_int_equal(seen->agents[1].id, bo);
    assert_string_equal(seen->agents[1].email, "bo@example.com");
    assert_string_equal(seen->agents[1].name, "Bo");

    /* Unknown rows: KF_ENOTFOUND and the callback is not called. */
    assert_int_equal(ops->agent_by_email(f->store, "nobody@example.com", on_agent, seen),
                     KF_ENOTFOUND);
    assert_int_equal(ops->agent_by_id(f->store, bo + 100, on_agent, seen), KF_ENOTFOUND);
    assert_int_equal(seen->calls, 2);
    seen_free(seen);
}

static void test_sessions(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t agent = add_agent(f, "ana@example.com", "Ana");
    int64_t agent_id = 0;
    char csrf[64];

    assert_int_equal(ops->session_create(f->store, "hash-1", agent, "csrf-1", NOW, NOW + HOUR), 0);
    int64_t expires_at = 0;
    assert_int_equal(
        ops->session_get(f->store, "hash-1", NOW, &agent_id, csrf, sizeof(csrf), &expires_at), 0);
    assert_int_equal(agent_id, agent);
    assert_string_equal(csrf, "csrf-1");
    assert_int_equal(expires_at, NOW + HOUR);

    /* Valid up to the last millisecond before expires_at, not at it. */
    assert_int_equal(
        ops->session_get(f->store, "hash-1", NOW + HOUR - 1, &agent_id, csrf, sizeof(csrf), NULL),
        0);
    assert_int_equal(
        ops->session_get(f->store, "hash-1", NOW + HOUR, &agent_id, csrf, sizeof(csrf), NULL),
        KF_ENOTFOUND);
    assert_int_equal(
        ops->session_get(f->store, "hash-1", NOW + 2 * HOUR, &agent_id, csrf, sizeof(csrf), NULL),
        KF_ENOTFOUND);

    assert_int_equal(
        ops->session_get(f->store, "unknown", NOW, &agent_id, csrf, sizeof(csrf), NULL),
        KF_ENOTFOUND);
    assert_int_equal(ops->session_get(f->store, "hash-1", NOW, &agent_id, csrf, 6, NULL),
                     KF_ETOOBIG);
    assert_int_equal(ops->session_get(f->store, "hash-1", NOW, &agent_id, csrf, 7, NULL), 0);
    assert_string_equal(csrf, "csrf-1");

    assert_int_equal(ops->session_create(f->store, "hash-1", agent, "again", NOW, NOW + HOUR),
                     KF_EEXISTS);
    assert_int_equal(ops->session_create(f->store, "hash-2", agent, "csrf-2", NOW, NOW + HOUR), 0);

    assert_int_equal(ops->session_delete(f->store, "hash-1"), 0);
    assert_int_equal(ops->session_get(f->store, "hash-1", NOW, &agent_id, csrf, sizeof(csrf), NULL),
                     KF_ENOTFOUND);
    assert_int_equal(ops->session_delete(f->store, "hash-1"), KF_ENOTFOUND);
    assert_int_equal(ops->session_delete(f->store, "unknown"), KF_ENOTFOUND);

    /* The other session is untouched. */
    assert_int_equal(ops->session_get(f->store, "hash-2", NOW, &agent_id, csrf, sizeof(csrf), NULL),
                     0);
    assert_string_equal(csrf, "csrf-2");

    /* A later login still works when older sessions have expired by then. */
    assert_int_equal(
        ops->session_create(f->store, "hash-3", agent, "csrf-3", NOW + 3 * HOUR, NOW + 4 * HOUR),
        0);
    assert_int_equal(
        ops->session_get(f->store, "hash-3", NOW + 3 * HOUR, &agent_id, csrf, sizeof(csrf), NULL),
        0);
    assert_string_equal(csrf, "csrf-3");
    assert_int_equal(
        ops->session_get(f->store, "hash-2", NOW + 3 * HOUR, &agent_id, csrf, sizeof(csrf), NULL),
        KF_ENOTFOUND);
}

static void test_visitors(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t id = 0;
    char name[32];

    int64_t named = add_visitor(f, "token-a", "Zoë");
    int64_t anonymous = add_visitor(f, "token-b", "");
    assert_true(named != anonymous);

    assert_int_equal(ops->visitor_by_token(f->store, "token-a", &id, name, sizeof(name)), 0);
    assert_int_equal(id, named);
    assert_string_equal(name, "Zoë");
    assert_int_equal(ops->visitor_by_token(f->store, "token-b", &id, name, sizeof(name)), 0);
    assert_int_equal(id, anonymous);
    assert_string_equal(name, "");

    assert_int_equal(ops->visitor_by_token(f->store, "token-c", &id, name, sizeof(name)),
                     KF_ENOTFOUND);
    assert_int_equal(ops->visitor_create(f->store, "token-a", "Again", NOW, &id), KF_EEXISTS);
    /* "Zoë" is 4 bytes of UTF-8. */
    assert_int_equal(ops->visitor_by_token(f->store, "token-a", &id, name, 4), KF_ETOOBIG);
    assert_int_equal(ops->visitor_by_token(f->store, "token-a", &id, name, 5), 0);
}

static void test_conversation_open_for_visitor(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t visitor = add_visitor(f, "token-a", "Zoë");
    int64_t other = add_visitor(f, "token-b", "");
    int64_t found = 0;
    assert_int_equal(ops->conversation_find_open(f->store, visitor, &found), KF_ENOTFOUND);

    int64_t first = open_conversation(f, visitor);
    assert_int_equal(ops->conversation_find_open(f->store, visitor, &found), 0);
    assert_int_equal(found, first);
    assert_int_equal(open_conversation(f, visitor), first);
    int64_t others = open_conversation(f, other);
    assert_true(others != first);

    seen_t *seen = get_conversation(f, first);
    assert_int_equal(seen->conversations[0].visitor_id, visitor);
    assert_string_equal(seen->conversations[0].visitor_name, "Zoë");
    assert_string_equal(seen->conversations[0].status, "open");
    assert_int_equal(seen->conversations[0].created_at, NOW);
    assert_int_equal(seen->conversations[0].updated_at, NOW);
    assert_false(seen->conversations[0].has_last_message);
    assert_int_equal(seen->conversations[0].unread_for_agents, 0);
    seen_free(seen);

    assert_int_equal(ops->conversation_set_status(f->store, first, "closed", NOW), 0);
    assert_int_equal(ops->conversation_find_open(f->store, visitor, &found), KF_ENOTFOUND);
    int64_t second = open_conversation(f, visitor);
    assert_true(second != first);
    assert_int_equal(open_conversation(f, visitor), second);
    assert_int_equal(open_conversation(f, other), others);

    int64_t id = 0;
    assert_int_equal(ops->conversation_open_for_visitor(f->store, other + 100, NOW, &id),
                     KF_ENOTFOUND);
}

static void test_message_add(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t agent = add_agent(f, "ana@example.com", "Ana");
    int64_t visitor_a = add_visitor(f, "token-a", "A");
    int64_t visitor_b = add_visitor(f, "token-b", "B");
    int64_t conversation_a = open_conversation(f, visitor_a);
    int64_t conversation_b = open_conversation(f, visitor_b);

    /* Ids strictly increase across the whole store, whichever conversation a message is in. */
    int64_t last = 0;
    for (int i = 0; i < 10; i++) {
        int64_t conversation = i % 3 == 0 ? conversation_b : conversation_a;
        int64_t id = add_message(f, conversation, i % 2 == 0 ? 0 : agent, "hello");
        assert_true(id > last);
        last = id;
    }

    /* The row handed to the callback is the stored row; nothing is visible before the commit
     * that the callback reports, and callbacks run only from complete() or flush(). */
    seen_t *seen = seen_new();
    assert_int_equal(ops->message_add(f->store, conversation_a, 0, KF_SENDER_AGENT, agent,
                                      "Hi there", NOW + 5, on_done, seen),
                     0);
    assert_int_equal(ops->message_add(f->store, conversation_b, 0, KF_SENDER_VISITOR, 0, "Hello?",
                                      NOW + 6, on_done, seen),
                     0);
    assert_int_equal(seen->result_count, 0);
    ops->flush(f->store);
    assert_int_equal(seen->result_count, 2);
    assert_int_equal(seen->message_count, 2);
    const kf_message_t *by_agent = &seen->messages[0];
    assert_true(by_agent->id > last);
    assert_int_equal(by_agent->conversation_id, conversation_a);
    assert_int_equal(by_agent->visitor_id, visitor_a);
    assert_int_equal(by_agent->sender, KF_SENDER_AGENT);
    assert_int_equal(by_agent->agent_id, agent);
    assert_string_equal(by_agent->agent_name, "Ana");
    assert_string_equal(by_agent->body, "Hi there");
    assert_int_equal(by_agent->created_at, NOW + 5);
    assert_false(seen->opened[0]);
    const kf_message_t *by_visitor = &seen->messages[1];
    assert_true(by_visitor->id > by_agent->id);
    assert_int_equal(by_visitor->visitor_id, visitor_b);
    assert_int_equal(by_visitor->sender, KF_SENDER_VISITOR);
    assert_int_equal(by_visitor->agent_id, 0);
    assert_string_equal(by_visitor->agent_name, "");

    /* Stored exactly as handed over. */
    seen_t *stored = seen_new();
    assert_int_equal(ops->messages_all(f->store, last, 10, on_message, stored), 0);
    assert_int_equal(stored->message_count, 2);
    assert_int_equal(stored->messages[0].id, by_agent->id);
    assert_int_equal(stored->messages[0].conversation_id, conversation_a);
    assert_int_equal(stored->messages[0].visitor_id, visitor_a);
    assert_int_equal(stored->messages[0].sender, KF_SENDER_AGENT);
    assert_int_equal(stored->messages[0].agent_id, agent);
    assert_string_equal(stored->messages[0].agent_name, "Ana");
    assert_string_equal(stored->messages[0].body, "Hi there");
    assert_int_equal(stored->messages[0].created_at, NOW + 5);
    assert_int_equal(stored->messages[1].id, by_visitor->id);
    seen_free(stored);

    /* The conversation moved: updated_at is the last message's time. */
    seen_t *conversation = get_conversation(f, conversation_a);
    assert_int_equal(conversation->conversations[0].updated_at, NOW + 5);
    seen_free(conversation);

    /* Refusals: bad arguments at once, without a callback; rows that are not there in the
     * result. Either way nothing is stored. */
    size_t results = seen->result_count;
    assert_int_equal(ops->message_add(f->store, conversation_a, 0, KF_SENDER_AGENT, 0, "no agent",
                                      NOW, on_done, seen),
                     KF_EINVAL);
    assert_int_equal(ops->message_add(f->store, conversation_a, 0, KF_SENDER_VISITOR, agent,
                                      "visitor naming an agent", NOW, on_done, seen),
                     KF_EINVAL);
    assert_int_equal(ops->message_add(f->store, conversation_a, 0, (kf_sender_t)7, 0, "bad sender",
                                      NOW, on_done, seen),
                     KF_EINVAL);
    assert_int_equal(
        ops->message_add(f->store, 0, 0, KF_SENDER_VISITOR, 0, "whose?", NOW, on_done, seen),
        KF_EINVAL);
    assert_int_equal(ops->message_add(f->store, 0, visitor_a, KF_SENDER_AGENT, agent,
                                      "agents name the conversation", NOW, on_done, seen),
                     KF_EINVAL);
    assert_int_equal(ops->message_add(f->store, conversation_a, 0, KF_SENDER_VISITOR, 0, "no done",
                                      NOW, NULL, NULL),
                     KF_EINVAL);
    ops->flush(f->store);
    assert_int_equal(seen->result_count, results);
    assert_int_equal(ops->message_add(f->store, conversation_b + 100, 0, KF_SENDER_VISITOR, 0,
                                      "lost", NOW, on_done, seen),
                     0);
    assert_int_equal(ops->message_add(f->store, conversation_a, 0, KF_SENDER_AGENT, agent + 100,
                                      "unknown agent", NOW, on_done, seen),
                     0);
    assert_int_equal(ops->message_add(f->store, 0, visitor_b + 100, KF_SENDER_VISITOR, 0,
                                      "unknown visitor", NOW, on_done, seen),
                     0);
    /* A good write among them is stored: one write's failure is its own. */
    assert_int_equal(ops->message_add(f->store, conversation_a, 0, KF_SENDER_VISITOR, 0, "stored",
                                      NOW, on_done, seen),
                     0);
    ops->flush(f->store);
    assert_int_equal(seen->result_count, results + 4);
    assert_int_equal(seen->results[results], KF_ENOTFOUND);
    assert_int_equal(seen->results[results + 1], KF_EINVAL);
    assert_int_equal(seen->results[results + 2], KF_ENOTFOUND);
    assert_int_equal(seen->results[results + 3], 0);
    int64_t stopped_id = seen->messages[seen->message_count - 1].id;
    seen_t *check = seen_new();
    assert_int_equal(ops->messages_all(f->store, by_visitor->id, 10, on_message, check), 0);
    assert_int_equal(check->message_count, 1);
    assert_int_equal(check->messages[0].id, stopped_id);
    seen_free(check);
    seen_free(seen);

    /* A later id is still greater after a failed attempt. */
    assert_true(add_message(f, conversation_b, 0, "after") > stopped_id);
}

/* Builds two visitors with interleaved messages: A in two conversations, B in one. The ids of
 * each visitor's messages, oldest first, go into a_ids (6) and b_ids (4). */
static void build_two_visitors(fixture_t *f, int64_t *visitor_a, int64_t *visitor_b,
                               int64_t a_ids[6], int64_t b_ids[4], int64_t *first_a_conversation)
{
    int64_t agent = add_agent(f, "ana@example.com", "Ana");
    *visitor_a = add_visitor(f, "token-a", "A");
    *visitor_b = add_visitor(f, "token-b", "B");
    int64_t a1 = open_conversation(f, *visitor_a);
    int64_t b1 = open_conversation(f, *visitor_b);
    *first_a_conversation = a1;

    a_ids[0] = add_message(f, a1, 0, "a: one");
    b_ids[0] = add_message(f, b1, 0, "b: one");
    a_ids[1] = add_message(f, a1, agent, "a: two");
    a_ids[2] = add_message(f, a1, 0, "a: three");
    b_ids[1] = add_message(f, b1, agent, "b: two");
    assert_int_equal(f->store->ops->conversation_set_status(f->store, a1, "closed", NOW), 0);
    int64_t a2 = open_conversation(f, *visitor_a);
    assert_true(a2 != a1);
    a_ids[3] = add_message(f, a2, 0, "a: four");
    b_ids[2] = add_message(f, b1, 0, "b: three");
    a_ids[4] = add_message(f, a2, agent, "a: five");
    b_ids[3] = add_message(f, b1, 0, "b: four");
    a_ids[5] = add_message(f, a2, 0, "a: six");
}

static void assert_ids(const seen_t *seen, const int64_t *ids, size_t count)
{
    assert_int_equal(seen->message_count, count);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(seen->messages[i].id, ids[i]);
}

static void test_messages_in_conversation(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t visitor_a, visitor_b, a_ids[6], b_ids[4], a1;
    build_two_visitors(f, &visitor_a, &visitor_b, a_ids, b_ids, &a1);

    seen_t *seen = seen_new();
    assert_int_equal(ops->messages_in_conversation(f->store, a1, 0, 100, on_message, seen), 0);
    assert_ids(seen, a_ids, 3);
    assert_string_equal(seen->messages[0].body, "a: one");
    assert_string_equal(seen->messages[1].agent_name, "Ana");
    assert_int_equal(seen->messages[1].sender, KF_SENDER_AGENT);
    for (size_t i = 0; i < seen->message_count; i++) {
        assert_int_equal(seen->messages[i].conversation_id, a1);
        assert_int_equal(seen->messages[i].visitor_id, visitor_a);
    }
    seen_free(seen);

    /* after_id is exclusive; limit caps the page; paging resumes after the last id. */
    seen = seen_new();
    assert_int_equal(ops->messages_in_conversation(f->store, a1, a_ids[0], 1, on_message, seen), 0);
    assert_ids(seen, &a_ids[1], 1);
    assert_int_equal(ops->messages_in_conversation(f->store, a1, a_ids[1], 1, on_message, seen), 0);
    assert_int_equal(seen->messages[1].id, a_ids[2]);
    seen_free(seen);

    seen = seen_new();
    assert_int_equal(ops->messages_in_conversation(f->store, a1, a_ids[2], 100, on_message, seen),
                     0);
    assert_int_equal(seen->message_count, 0);
    assert_int_equal(ops->messages_in_conversation(f->store, a1 + 100, 0, 100, on_message, seen),
                     0);
    assert_int_equal(ops->messages_in_conversation(f->store, a1, 0, 0, on_message, seen), 0);
    assert_int_equal(seen->calls, 0);
    seen_free(seen);
}

static void test_messages_of_visitor(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t visitor_a, visitor_b, a_ids[6], b_ids[4], a1;
    build_two_visitors(f, &visitor_a, &visitor_b, a_ids, b_ids, &a1);

    /* Across both of A's conversations, oldest first, and none of B's. */
    seen_t *seen = seen_new();
    assert_int_equal(ops->messages_of_visitor(f->store, visitor_a, 0, 100, on_message, seen), 0);
    assert_ids(seen, a_ids, 6);
    for (size_t i = 0; i < seen->message_count; i++) {
        assert_int_equal(seen->messages[i].visitor_id, visitor_a);
        assert_true(strncmp(seen->messages[i].body, "a: ", 3) == 0);
    }
    seen_free(seen);

    seen = seen_new();
    assert_int_equal(ops->messages_of_visitor(f->store, visitor_b, 0, 100, on_message, seen), 0);
    assert_ids(seen, b_ids, 4);
    for (size_t i = 0; i < seen->message_count; i++)
        assert_int_equal(seen->messages[i].visitor_id, visitor_b);
    seen_free(seen);

    /* Paging two at a time from a cursor that is B's id still yields only A's messages. */
    seen = seen_new();
    int64_t cursor = b_ids[0];
    for (;;) {
        size_t before = seen->message_count;
        assert_int_equal(ops->messages_of_visitor(f->store, visitor_a, cursor, 2, on_message, seen),
                         0);
        size_t got = seen->message_count - before;
        assert_true(got <= 2);
        if (got == 0)
            break;
        cursor = seen->messages[seen->message_count - 1].id;
    }
    assert_ids(seen, &a_ids[1], 5);
    seen_free(seen);

    seen = seen_new();
    assert_int_equal(ops->messages_of_visitor(f->store, visitor_b + 100, 0, 100, on_message, seen),
                     0);
    assert_int_equal(seen->calls, 0);
    seen_free(seen);
}

static void test_messages_all(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t visitor_a, visitor_b, a_ids[6], b_ids[4], a1;
    build_two_visitors(f, &visitor_a, &visitor_b, a_ids, b_ids, &a1);

    seen_t *seen = seen_new();
    assert_int_equal(ops->messages_all(f->store, 0, 100, on_message, seen), 0);
    assert_int_equal(seen->message_count, 10);
    for (size_t i = 1; i < seen->message_count; i++)
        assert_true(seen->messages[i].id > seen->messages[i - 1].id);
    assert_int_equal(seen->messages[0].id, a_ids[0]);
    assert_int_equal(seen->messages[1].id, b_ids[0]);
    assert_int_equal(seen->messages[1].visitor_id, visitor_b);
    assert_int_equal(seen->messages[9].id, a_ids[5]);
    seen_free(seen);

    seen = seen_new();
    assert_int_equal(ops->messages_all(f->store, b_ids[0], 3, on_message, seen), 0);
    int64_t expected[] = {a_ids[1], a_ids[2], b_ids[1]};
    assert_ids(seen, expected, 3);
    seen_free(seen);

    seen = seen_new();
    assert_int_equal(ops->messages_all(f->store, a_ids[5], 100, on_message, seen), 0);
    assert_int_equal(seen->calls, 0);
    seen_free(seen);
}

static void test_callbacks_stop_early(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t visitor_a, visitor_b, a_ids[6], b_ids[4], a1;
    build_two_visitors(f, &visitor_a, &visitor_b, a_ids, b_ids, &a1);

    seen_t *seen = seen_new();
    seen->stop_at = 2;
    seen->stop_value = 7;
    assert_int_equal(ops->messages_all(f->store, 0, 100, on_message, seen), 7);
    assert_int_equal(seen->calls, 2);
    seen_free(seen);

    seen = seen_new();
    seen->stop_at = 3;
    seen->stop_value = -1;
    assert_int_equal(ops->messages_of_visitor(f->store, visitor_a, 0, 100, on_message, seen), -1);
    assert_int_equal(seen->calls, 3);
    seen_free(seen);

    seen = seen_new();
    seen->stop_at = 1;
    seen->stop_value = KF_ELIMIT;
    assert_int_equal(ops->messages_in_conversation(f->store, a1, 0, 100, on_message, seen),
                     KF_ELIMIT);
    assert_int_equal(seen->calls, 1);
    seen_free(seen);

    seen = seen_new();
    seen->stop_at = 1;
    seen->stop_value = 3;
    assert_int_equal(ops->conversation_list(f->store, 100, on_conversation, seen), 3);
    assert_int_equal(ops->conversation_get(f->store, a1, on_conversation, seen), 0);
    assert_int_equal(seen->calls, 2);
    seen_free(seen);

    seen = seen_new();
    seen->stop_at = 1;
    seen->stop_value = 9;
    assert_int_equal(ops->agent_by_email(f->store, "ana@example.com", on_agent, seen), 9);
    seen_free(seen);

    /* The store is usable after an iteration stopped halfway. */
    seen = seen_new();
    assert_int_equal(ops->messages_all(f->store, 0, 100, on_message, seen), 0);
    assert_int_equal(seen->calls, 10);
    seen_free(seen);
}

static void test_unread_and_mark_read(void **state)
{
    fixture_t *f = *state;
    int64_t agent = add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = add_visitor(f, "token-a", "A");
    int64_t conversation = open_conversation(f, visitor);

    int64_t v1 = add_message(f, conversation, 0, "v1");
    int64_t v2 = add_message(f, conversation, 0, "v2");
    int64_t g1 = add_message(f, conversation, agent, "g1");
    int64_t v3 = add_message(f, conversation, 0, "v3");

    seen_t *seen = get_conversation(f, conversation);
    assert_int_equal(seen->conversations[0].unread_for_agents, 3);
    assert_int_equal(seen->conversations[0].unread_for_visitor, 1);
    assert_int_equal(seen->conversations[0].agent_read_up_to, 0);
    assert_int_equal(seen->conversations[0].visitor_read_up_to, 0);
    seen_free(seen);

    assert_int_equal(kf_store_mark_read_sync(f->store, conversation, KF_SENDER_AGENT, v2), 0);
    seen = get_conversation(f, conversation);
    assert_int_equal(seen->conversations[0].agent_read_up_to, v2);
    assert_int_equal(seen->conversations[0].unread_for_agents, 1);
    assert_int_equal(seen->conversations[0].unread_for_visitor, 1);
    seen_free(seen);

    /* Never lowered. */
    assert_int_equal(kf_store_mark_read_sync(f->store, conversation, KF_SENDER_AGENT, v1), 0);
    seen = get_conversation(f, conversation);
    assert_int_equal(seen->conversations[0].agent_read_up_to, v2);
    assert_int_equal(seen->conversations[0].unread_for_agents, 1);
    seen_free(seen);

    assert_int_equal(kf_store_mark_read_sync(f->store, conversation, KF_SENDER_VISITOR, g1), 0);
    assert_int_equal(kf_store_mark_read_sync(f->store, conversation, KF_SENDER_AGENT, v3), 0);
    seen = get_conversation(f, conversation);
    assert_int_equal(seen->conversations[0].visitor_read_up_to, g1);
    assert_int_equal(seen->conversations[0].unread_for_visitor, 0);
    assert_int_equal(seen->conversations[0].agent_read_up_to, v3);
    assert_int_equal(seen->conversations[0].unread_for_agents, 0);
    seen_free(seen);

    /* A mark past the newest message stops at it, so later messages still count as unread. */
    assert_int_equal(kf_store_mark_read_sync(f->store, conversation, KF_SENDER_AGENT, v3 + 1000),
                     0);
    int64_t v4 = add_message(f, conversation, 0, "v4");
    assert_true(v4 <= v3 + 1000);
    seen = get_conversation(f, conversation);
    assert_int_equal(seen->conversations[0].agent_read_up_to, v3);
    assert_int_equal(seen->conversations[0].unread_for_agents, 1);
    seen_free(seen);

    assert_int_equal(kf_store_mark_read_sync(f->store, conversation + 100, KF_SENDER_AGENT, 1),
                     KF_ENOTFOUND);
    assert_int_equal(kf_store_mark_read_sync(f->store, conversation, (kf_sender_t)5, v4),
                     KF_EINVAL);
}

static void test_conversation_list(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t agent = add_agent(f, "ana@example.com", "Ana");
    int64_t visitor_a = add_visitor(f, "token-a", "A");
    int64_t visitor_b = add_visitor(f, "token-b", "B");
    int64_t visitor_c = add_visitor(f, "token-c", "");
    int64_t a = open_conversation(f, visitor_a);
    int64_t b = open_conversation(f, visitor_b);
    int64_t c = open_conversation(f, visitor_c); /* no messages: updated_at = created_at = NOW */

    add_message_at(f, a, 0, "a: first", NOW + 10);
    int64_t b_last = add_message_at(f, b, agent, "b: from Ana", NOW + 20);
    int64_t a_last = add_message_at(f, a, 0, "a: latest", NOW + 30);

    seen_t *seen = seen_new();
    assert_int_equal(ops->conversation_list(f->store, 100, on_conversation, seen), 0);
    assert_int_equal(seen->conversation_count, 3);
    const kf_conversation_t *first = &seen->conversations[0];
    assert_int_equal(first->id, a);
    assert_int_equal(first->updated_at, NOW + 30);
    assert_string_equal(first->visitor_name, "A");
    assert_true(first->has_last_message);
    assert_int_equal(first->last_message.id, a_last);
    assert_string_equal(first->last_message.body, "a: latest");
    assert_int_equal(first->last_message.visitor_id, visitor_a);
    assert_int_equal(first->unread_for_agents, 2);
    const kf_conversation_t *second = &seen->conversations[1];
    assert_int_equal(second->id, b);
    assert_true(second->has_last_message);
    assert_int_equal(second->last_message.id, b_last);
    assert_int_equal(second->last_message.sender, KF_SENDER_AGENT);
    assert_int_equal(second->last_message.agent_id, agent);
    assert_string_equal(second->last_message.agent_name, "Ana");
    assert_int_equal(second->unread_for_visitor, 1);
    const kf_conversation_t *third = &seen->conversations[2];
    assert_int_equal(third->id, c);
    assert_false(third->has_last_message);
    assert_string_equal(third->visitor_name, "");
    seen_free(seen);

    /* limit, and ties on updated_at broken by the newer id first. */
    seen = seen_new();
    assert_int_equal(ops->conversation_list(f->store, 1, on_conversation, seen), 0);
    assert_int_equal(seen->conversation_count, 1);
    assert_int_equal(seen->conversations[0].id, a);
    seen_free(seen);

    int64_t visitor_d = add_visitor(f, "token-d", "D");
    int64_t d = open_conversation(f, visitor_d); /* also updated_at = NOW, newer id than c */
    seen = seen_new();
    assert_int_equal(ops->conversation_list(f->store, 100, on_conversation, seen), 0);
    assert_int_equal(seen->conversation_count, 4);
    assert_int_equal(seen->conversations[2].id, d);
    assert_int_equal(seen->conversations[3].id, c);
    seen_free(seen);

    /* A new message moves a conversation to the top. */
    add_message_at(f, c, 0, "c: hello", NOW + 40);
    seen = seen_new();
    assert_int_equal(ops->conversation_list(f->store, 2, on_conversation, seen), 0);
    assert_int_equal(seen->conversations[0].id, c);
    assert_int_equal(seen->conversations[1].id, a);
    seen_free(seen);

    seen = seen_new();
    assert_int_equal(ops->conversation_list(f->store, 0, on_conversation, seen), 0);
    assert_int_equal(seen->calls, 0);
    assert_int_equal(ops->conversation_get(f->store, d + 100, on_conversation, seen), KF_ENOTFOUND);
    assert_int_equal(seen->calls, 0);
    seen_free(seen);
}

static void test_set_status(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t visitor = add_visitor(f, "token-a", "A");
    int64_t conversation = open_conversation(f, visitor);
    add_message_at(f, conversation, 0, "hello", NOW + 10);

    assert_int_equal(ops->conversation_set_status(f->store, conversation, "closed", NOW + 20), 0);
    seen_t *seen = get_conversation(f, conversation);
    assert_string_equal(seen->conversations[0].status, "closed");
    assert_int_equal(seen->conversations[0].updated_at, NOW + 10);
    seen_free(seen);

    assert_int_equal(ops->conversation_set_status(f->store, conversation, "closed", NOW + 30), 0);
    assert_int_equal(ops->conversation_set_status(f->store, conversation, "open", NOW + 40), 0);
    seen = get_conversation(f, conversation);
    assert_string_equal(seen->conversations[0].status, "open");
    seen_free(seen);
    assert_int_equal(open_conversation(f, visitor), conversation);

    assert_int_equal(ops->conversation_set_status(f->store, conversation + 100, "closed", NOW),
                     KF_ENOTFOUND);
    assert_int_equal(ops->conversation_set_status(f->store, conversation, "archived", NOW),
                     KF_EINVAL);
    assert_int_equal(ops->conversation_set_status(f->store, conversation, "Open", NOW), KF_EINVAL);
    seen = get_conversation(f, conversation);
    assert_string_equal(seen->conversations[0].status, "open");
    seen_free(seen);
}

static void test_durability(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    assert_int_equal(ops->setting_set(f->store, "secret", "s3cr3t"), 0);
    int64_t agent = add_agent(f, "ana@example.com", "Ana");
    assert_int_equal(ops->session_create(f->store, "session", agent, "csrf", NOW, NOW + HOUR), 0);
    int64_t visitor = add_visitor(f, "token-a", "A");
    int64_t conversation = open_conversation(f, visitor);
    int64_t first = add_message(f, conversation, 0, "before restart");
    int64_t second = add_message(f, conversation, agent, "answer");
    assert_int_equal(kf_store_mark_read_sync(f->store, conversation, KF_SENDER_AGENT, first), 0);

    reopen(f);
    ops = f->store->ops;

    char value[32];
    assert_int_equal(ops->setting_get(f->store, "secret", value, sizeof(value)), 0);
    assert_string_equal(value, "s3cr3t");
    int64_t count = 0;
    assert_int_equal(ops->agent_count(f->store, &count), 0);
    assert_int_equal(count, 1);
    int64_t id = 0;
    assert_int_equal(ops->session_get(f->store, "session", NOW, &id, value, sizeof(value), NULL),
                     0);
    assert_int_equal(id, agent);
    assert_int_equal(ops->visitor_by_token(f->store, "token-a", &id, value, sizeof(value)), 0);
    assert_int_equal(id, visitor);
    assert_int_equal(open_conversation(f, visitor), conversation);

    seen_t *seen = seen_new();
    assert_int_equal(ops->messages_of_visitor(f->store, visitor, 0, 100, on_message, seen), 0);
    assert_int_equal(seen->message_count, 2);
    assert_string_equal(seen->messages[0].body, "before restart");
    assert_string_equal(seen->messages[1].agent_name, "Ana");
    seen_free(seen);

    seen = get_conversation(f, conversation);
    assert_int_equal(seen->conversations[0].agent_read_up_to, first);
    assert_int_equal(seen->conversations[0].last_message.id, second);
    seen_free(seen);

    /* Ids keep increasing across a restart. */
    assert_true(add_message(f, conversation, 0, "after restart") > second);
    reopen(f);
    seen = seen_new();
    assert_int_equal(f->store->ops->messages_all(f->store, second, 100, on_message, seen), 0);
    assert_int_equal(seen->message_count, 1);
    assert_string_equal(seen->messages[0].body, "after restart");
    seen_free(seen);
}

static void test_hostile_strings(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    static const char *const hostile[] = {
        "x'); DROP TABLE messages;--",
        "\"; DELETE FROM agents; --",
        "' OR '1'='1",
        "%s%n%x ?1 :name @p $1",
        "Robert'); DROP TABLE visitors;-- \\ \\' \\\"",
        "<script>alert(1)</script>",
    };
    size_t count = sizeof(hostile) / sizeof(hostile[0]);

    for (size_t i = 0; i < count; i++) {
        char email[32], token[32], value[128];
        snprintf(email, sizeof(email), "%zu@example.com", i);
        snprintf(token, sizeof(token), "token-%zu", i);

        assert_int_equal(ops->setting_set(f->store, hostile[i], hostile[i]), 0);
        assert_int_equal(ops->setting_get(f->store, hostile[i], value, sizeof(value)), 0);
        assert_string_equal(value, hostile[i]);

        int64_t agent = add_agent(f, email, hostile[i]);
        int64_t visitor = add_visitor(f, token, hostile[i]);
        int64_t id = 0;
        assert_int_equal(ops->visitor_by_token(f->store, token, &id, value, sizeof(value)), 0);
        assert_string_equal(value, hostile[i]);

        int64_t conversation = open_conversation(f, visitor);
        add_message(f, conversation, 0, hostile[i]);
        add_message(f, conversation, agent, hostile[i]);

        seen_t *seen = seen_new();
        assert_int_equal(
            ops->messages_in_conversation(f->store, conversation, 0, 10, on_message, seen), 0);
        assert_int_equal(seen->message_count, 2);
        assert_string_equal(seen->messages[0].body, hostile[i]);
        assert_string_equal(seen->messages[1].body, hostile[i]);
        assert_string_equal(seen->messages[1].agent_name, hostile[i]);
        seen_free(seen);

        seen = get_conversation(f, conversation);
        assert_string_equal(seen->conversations[0].visitor_name, hostile[i]);
        seen_free(seen);

        /* Hostile lookup keys find nothing rather than everything. */
        assert_int_equal(ops->visitor_by_token(f->store, hostile[i], &id, value, sizeof(value)),
                         KF_ENOTFOUND);
        assert_int_equal(
            ops->session_get(f->store, hostile[i], NOW, &id, value, sizeof(value), NULL),
            KF_ENOTFOUND);
    }

    /* Every table is still there and whole. */
    seen_t *seen = seen_new();
    assert_int_equal(ops->messages_all(f->store, 0, 100, on_message, seen), 0);
    assert_int_equal(seen->message_count, 2 * count);
    seen_free(seen);
    int64_t agents = 0;
    assert_int_equal(ops->agent_count(f->store, &agents), 0);
    assert_int_equal(agents, (int64_t)count);
}

static void test_long_utf8_body(void **state)
{
    fixture_t *f = *state;
    /* 4000 code points of 1, 2, 3 and 4 bytes: "a", "é", "中", "😀" (U+1F600) in turn. */
    static const char *const glyphs[] = {"a", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80"};
    size_t size = 4000 * 4 + 1;
    char *body = malloc(size);
    assert_non_null(body);
    size_t len = 0;
    for (int i = 0; i < 4000; i++) {
        const char *glyph = glyphs[i % 4];
        memcpy(body + len, glyph, strlen(glyph));
        len += strlen(glyph);
    }
    body[len] = '\0';
    assert_int_equal(len, 1000 * (1 + 2 + 3 + 4));

    int64_t visitor = add_visitor(f, "token-a", "A");
    int64_t conversation = open_conversation(f, visitor);
    int64_t id = add_message(f, conversation, 0, body);
    reopen(f);

    seen_t *seen = seen_new();
    assert_int_equal(f->store->ops->messages_of_visitor(f->store, visitor, 0, 10, on_message, seen),
                     0);
    assert_int_equal(seen->message_count, 1);
    assert_int_equal(seen->messages[0].id, id);
    assert_int_equal(strlen(seen->messages[0].body), len);
    assert_memory_equal(seen->messages[0].body, body, len + 1);
    seen_free(seen);

    seen = get_conversation(f, conversation);
    assert_string_equal(seen->conversations[0].last_message.body, body);
    seen_free(seen);
    free(body);
}

/* ---- SQLite only ----------------------------------------------------------------------------- */

/* Runs one SQL statement on the database file directly and returns its first column as an
 * integer (0 when it answers no row). */
static int64_t sqlite_query_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int code = sqlite3_step(st);
    assert_true(code == SQLITE_ROW || code == SQLITE_DONE);
    int64_t value = code == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return value;
}

/* Counts the store's notify calls (from the writer's thread). */
typedef struct notified {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int count;
} notified_t;

static void on_notify(void *data)
{
    notified_t *n = data;
    pthread_mutex_lock(&n->lock);
    n->count++;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

/* Group commit on the writer thread: writes return at once, even while another connection holds
 * the write lock; the caller's reads go on meanwhile; callbacks run only on the caller's thread
 * (complete or flush), in order, after the commit; a failed write leaves the rest of its batch
 * alone; closing commits what is queued. */
static void test_sqlite_group_commit(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    int64_t agent = add_agent(f, "ana@example.com", "Ana");
    int64_t visitor = add_visitor(f, "token-a", "A");
    notified_t n = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    ops->set_notify(f->store, on_notify, &n);

    /* Another connection holds the write lock: the writer waits, the caller does not. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    seen_t *seen = seen_new();
    assert_int_equal(
        ops->message_add(f->store, 0, visitor, KF_SENDER_VISITOR, 0, "one", NOW + 1, on_done, seen),
        0);
    assert_int_equal(
        ops->message_add(f->store, 0, visitor, KF_SENDER_VISITOR, 0, "two", NOW + 2, on_done, seen),
        0);
    int64_t found = 0;
    assert_int_equal(ops->conversation_find_open(f->store, visitor, &found), KF_ENOTFOUND);
    usleep(20 * 1000);
    ops->complete(f->store);
    assert_int_equal(seen->result_count, 0);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    /* The writer tells when there is something to complete; complete runs the callbacks. */
    pthread_mutex_lock(&n.lock);
    while (n.count == 0)
        pthread_cond_wait(&n.cond, &n.lock);
    pthread_mutex_unlock(&n.lock);
    ops->flush(f->store);
    assert_int_equal(seen->result_count, 2);
    assert_int_equal(seen->results[0], 0);
    assert_int_equal(seen->results[1], 0);
    /* The first message opened the visitor's conversation; the second went into it. */
    assert_true(seen->opened[0]);
    assert_false(seen->opened[1]);
    int64_t conversation = seen->messages[0].conversation_id;
    assert_int_equal(seen->messages[1].conversation_id, conversation);
    assert_true(seen->messages[1].id > seen->messages[0].id);
    assert_int_equal(sqlite_query_int(f->path, "SELECT count(*) FROM messages"), 2);
    assert_int_equal(ops->conversation_find_open(f->store, visitor, &found), 0);
    assert_int_equal(found, conversation);

    /* A write that fails inside a batch takes nothing else with it. */
    assert_int_equal(ops->message_add(f->store, conversation, 0, KF_SENDER_VISITOR, 0, "three",
                                      NOW + 3, on_done, seen),
                     0);
    assert_int_equal(ops->message_add(f->store, conversation + 100, 0, KF_SENDER_VISITOR, 0, "lost",
                                      NOW + 4, on_done, seen),
                     0);
    assert_int_equal(ops->message_add(f->store, conversation, 0, KF_SENDER_AGENT, agent, "four",
                                      NOW + 5, on_done, seen),
                     0);
    assert_int_equal(
        ops->conversation_mark_read(f->store, conversation, KF_SENDER_AGENT, 1000, on_done, seen),
        0);
    ops->flush(f->store);
    assert_int_equal(seen->result_count, 6);
    assert_int_equal(seen->results[2], 0);
    assert_int_equal(seen->results[3], KF_ENOTFOUND);
    assert_int_equal(seen->results[4], 0);
    assert_int_equal(seen->results[5], 0);
    assert_int_equal(seen->message_count, 4);
    assert_true(seen->messages[3].id > seen->messages[2].id);
    assert_int_equal(sqlite_query_int(f->path, "SELECT count(*) FROM messages"), 4);
    assert_int_equal(sqlite_query_int(f->path, "SELECT agent_read_up_to FROM conversations"),
                     seen->messages[3].id);
    ops->flush(f->store); /* nothing queued: returns at once */
    assert_int_equal(seen->result_count, 6);

    /* Closing commits what is queued and runs its callbacks. */
    ops->set_notify(f->store, NULL, NULL);
    assert_int_equal(ops->message_add(f->store, conversation, 0, KF_SENDER_VISITOR, 0, "five",
                                      NOW + 6, on_done, seen),
                     0);
    reopen(f);
    assert_int_equal(seen->result_count, 7);
    assert_int_equal(seen->results[6], 0);
    assert_int_equal(sqlite_query_int(f->path, "SELECT count(*) FROM messages"), 5);
    seen_free(seen);
}

/* A batched write's done callback that only counts successes. */
static void on_stored(void *ctx, const kf_store_result_t *result)
{
    assert_int_equal(result->rc, 0);
    (*(int *)ctx)++;
}

/* The WAL file's size in bytes. */
static long wal_size(const fixture_t *f)
{
    char wal[192];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    FILE *file = fopen(wal, "rb");
    assert_non_null(file);
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fclose(file);
    return size;
}

/* The checkpointer keeps the WAL from growing without bound even while the writer never rests:
 * SQLite starts the log over only when a transaction begins with all of it copied back, which
 * steady writes alone never allow. */
static void test_sqlite_checkpointer_bounds_wal(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    assert_int_equal(kf_store_sqlite_set_checkpoint_pages(f->store, 0), KF_EINVAL);
    assert_int_equal(kf_store_sqlite_set_checkpoint_pages(f->store, 1 << 25), KF_EINVAL);
    assert_int_equal(kf_store_sqlite_set_checkpoint_pages(NULL, 1000), KF_EINVAL);
    /* 1,000 pages (4 MiB): the default's 16,000 would need far more writing to show the bound. */
    assert_int_equal(kf_store_sqlite_set_checkpoint_pages(f->store, 1000), 0);
    int64_t visitor = add_visitor(f, "token-a", "A");
    int64_t conversation = open_conversation(f, visitor);
    static char body[12 * 1024 + 1]; /* three overflow pages and a bit */
    memset(body, 'x', sizeof body - 1);
    enum { MESSAGES = 5000, IN_FLIGHT = 200 };
    /* About 80 MiB through the WAL. The next batch is always queued before the writer is done
     * with the one it has, so the writer is never idle. */
    int stored = 0;
    long largest = 0;
    for (int queued = 0; queued < MESSAGES; queued++) {
        while (queued - stored >= IN_FLIGHT) {
            usleep(200);
            ops->complete(f->store);
        }
        assert_int_equal(ops->message_add(f->store, conversation, 0, KF_SENDER_VISITOR, 0, body,
                                          NOW + queued, on_stored, &stored),
                         0);
        if (queued % 100 == 0) {
            long size = wal_size(f);
            if (size > largest)
                largest = size;
        }
    }
    ops->flush(f->store);
    assert_int_equal(stored, MESSAGES);
    /* Without the log starting over it would pass 80 MiB. With it, the log reaches the
     * threshold of 1,000 pages (4 MiB), plus what the writer adds while the checkpointer chases;
     * if the writer outruns the chase, the gate is taken at 2,000 pages (8 MiB) plus what is
     * written during that last passive checkpoint: 8-12 MiB measured. */
    assert_true(largest < 24L * 1024 * 1024);
    assert_int_equal(sqlite_query_int(f->path, "SELECT count(*) FROM messages"), MESSAGES);
}

static void test_sqlite_open_arguments(void **state)
{
    fixture_t *f = *state;
    kf_store_close(f->store);
    f->store = NULL;
    kf_store_t *store = NULL;

    assert_int_equal(kf_store_open_sqlite(f->path, "sometimes", &store), KF_EINVAL);
    assert_null(store);
    assert_int_equal(kf_store_open_sqlite(f->path, "FULL; DROP TABLE agents", &store), KF_EINVAL);
    assert_int_equal(kf_store_open_sqlite(NULL, NULL, &store), KF_EINVAL);
    assert_int_equal(kf_store_open_sqlite(f->path, NULL, NULL), KF_EINVAL);

    static const char *const accepted[] = {"FULL", "NORMAL", "OFF", "normal"};
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        assert_int_equal(kf_store_open_sqlite(f->path, accepted[i], &store), 0);
        assert_non_null(store);
        kf_store_close(store);
        store = NULL;
    }

    /* A path that cannot be a database. */
    char missing[192];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/kefu.db", f->dir);
    assert_int_equal(kf_store_open_sqlite(missing, NULL, &store), KF_ESTORE);
    assert_null(store);
    assert_int_equal(kf_store_open_sqlite(f->dir, NULL, &store), KF_ESTORE);
    assert_null(store);

    assert_int_equal(backend_open(f, &f->store), 0);
}

static void test_sqlite_pragmas_and_schema(void **state)
{
    fixture_t *f = *state;
    const kf_store_ops_t *ops = f->store->ops;
    char value[16];
    assert_int_equal(ops->setting_get(f->store, "schema_version", value, sizeof(value)), 0);
    assert_string_equal(value, "1");
    assert_int_equal(ops->setting_set(f->store, "schema_version", "0"), KF_EINVAL);

    kf_store_close(f->store);
    f->store = NULL;
    /* WAL is a property of the file, so it shows from another connection. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    assert_int_equal(
        sqlite_query_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                                  "name IN ('messages_by_conversation', 'conversations_by_visitor',"
                                  " 'conversations_by_activity', 'sessions_by_expiry')"),
        4);

    /* Reopening does not migrate again (it would fail on existing tables) nor lose data. */
    assert_int_equal(backend_open(f, &f->store), 0);
    assert_int_equal(f->store->ops->setting_get(f->store, "schema_version", value, sizeof(value)),
                     0);
    assert_string_equal(value, "1");

    /* Foreign keys are enforced: a session for an agent that does not exist is refused. */
    assert_int_equal(
        f->store->ops->session_create(f->store, "orphan", 12345, "csrf", NOW, NOW + HOUR),
        KF_ESTORE);
}

static void test_sqlite_refuses_newer_schema(void **state)
{
    fixture_t *f = *state;
    kf_store_close(f->store);
    f->store = NULL;
    sqlite_query_int(f->path, "UPDATE settings SET value = '999' WHERE key = 'schema_version'");
    kf_store_t *store = NULL;
    assert_int_equal(kf_store_open_sqlite(f->path, NULL, &store), KF_ESTORE);
    assert_null(store);

    sqlite_query_int(f->path, "UPDATE settings SET value = 'x' WHERE key = 'schema_version'");
    assert_int_equal(kf_store_open_sqlite(f->path, NULL, &store), KF_ESTORE);

    sqlite_query_int(f->path, "UPDATE settings SET value = '1' WHERE key = 'schema_version'");
    assert_int_equal(backend_open(f, &f->store), 0);
}

#define STORE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_settings),
        STORE_TEST(test_agents),
        STORE_TEST(test_sessions),
        STORE_TEST(test_visitors),
        STORE_TEST(test_conversation_open_for_visitor),
        STORE_TEST(test_message_add),
        STORE_TEST(test_messages_in_conversation),
        STORE_TEST(test_messages_of_visitor),
        STORE_TEST(test_messages_all),
        STORE_TEST(test_callbacks_stop_early),
        STORE_TEST(test_unread_and_mark_read),
        STORE_TEST(test_conversation_list),
        STORE_TEST(test_set_status),
        STORE_TEST(test_durability),
        STORE_TEST(test_hostile_strings),
        STORE_TEST(test_long_utf8_body),
        STORE_TEST(test_sqlite_group_commit),
        STORE_TEST(test_sqlite_checkpointer_bounds_wal),
        STORE_TEST(test_sqlite_open_arguments),
        STORE_TEST(test_sqlite_pragmas_and_schema),
        STORE_TEST(test_sqlite_refuses_newer_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
