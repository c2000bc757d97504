/* store_suite.h: the store test suite, written once against kf_store_t so that every backend runs
 * it: a backend's test program (tests/unit/store/test_sqlite.c) hands store_suite_run a factory
 * that makes, opens, checks and removes a database, and adds its own tests beside it.
 *
 * The rest of this header is what the suite's files (store_suite.c, store_suite_messages.c,
 * store_suite_agents.c) and
 * a backend's own tests share: a fixture, callbacks that copy what they are handed (rows are
 * borrowed), and helpers that build rows. */
#ifndef KF_TEST_STORE_SUITE_H
#define KF_TEST_STORE_SUITE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdbool.h>

#include "store/store.h"

/* A fixed clock: tests pass times explicitly, so nothing depends on the real one. */
#define SUITE_NOW INT64_C(1764100000000)
#define SUITE_HOUR INT64_C(3600000)

/* How a backend makes the databases its tests run on. */
typedef struct store_backend {
    const char *name;
    /* A new, empty database for one test (the backend's own handle: a directory, a schema). */
    void *(*create)(void);
    /* Opens (or opens again) a store on it. Returns 0 or a KF_E* code. */
    int (*open)(void *db, kf_store_t **out);
    /* After the store is closed: the backend's own consistency checks on what it left. */
    void (*check)(void *db);
    /* Removes the database. */
    void (*destroy)(void *db);
} store_backend_t;

/* One test's database and the store open on it. */
typedef struct suite_fixture {
    const store_backend_t *backend;
    void *db;
    kf_store_t *store;
} suite_fixture_t;

/* Runs the whole suite against backend, and then extra (count tests; may be 0) with the same
 * fixture. Returns the number of failed tests (cmocka's). */
int store_suite_run(const store_backend_t *backend, const struct CMUnitTest *extra, size_t count);
/* The per-test setup and teardown store_suite_run uses, for a backend's own tests: setup makes
 * an empty database and opens a store on it; teardown closes it and checks the database. */
int store_suite_setup(void **state);
int store_suite_teardown(void **state);
/* Closes the store and opens it again on the same data: what a restart does. */
void suite_reopen(suite_fixture_t *f);
/* Waits until everything queued has run and its callbacks have been called. */
void suite_flush(suite_fixture_t *f);

/* ---- recording callbacks ---- */

#define SUITE_MAX_ROWS 300
#define SUITE_MAX_RESULTS 64
#define SUITE_MAX_AGENTS 16

/* A done callback's result, copied (strings point into the owning seen_t). */
typedef struct result_copy {
    int rc;
    int64_t id;
    int64_t count;
    bool conversation_opened;
    bool conversation_reopened;
    bool duplicate;
    bool has_message;
    kf_message_t message;
    bool has_agent;
    kf_agent_t agent;
    bool has_visitor;
    kf_visitor_t visitor;
    bool has_session;
    kf_session_t session;
    bool has_conversation;
    kf_conversation_t conversation;
    const char *value; /* NULL when none */
    bool has_counts;
    int64_t counts[KF_VIEW_COUNT];
    bool has_canned;
    kf_canned_t canned;
    bool has_team;
    kf_team_t team; /* member_ids points at team_members */
    int64_t team_members[SUITE_MAX_AGENTS];
    bool team_missing;
    size_t released_count;
    int64_t released[SUITE_MAX_AGENTS];
} result_copy_t;

/* What callbacks were handed, copied out (rows are only borrowed during the callback). */
typedef struct seen {
    int calls;      /* each and done callbacks so far */
    int stop_at;    /* > 0: the each call with this number returns stop_value */
    int stop_value; /* what that call returns */
    size_t message_count;
    kf_message_t messages[SUITE_MAX_ROWS]; /* rows handed to each */
    size_t conversation_count;
    kf_conversation_t conversations[SUITE_MAX_ROWS];
    size_t agent_count;
    kf_agent_t agents[SUITE_MAX_AGENTS]; /* rows handed to agent_list's each */
    size_t canned_count;
    kf_canned_t canned[SUITE_MAX_AGENTS]; /* rows handed to canned_list's each */
    size_t result_count;
    result_copy_t results[SUITE_MAX_RESULTS]; /* done callbacks, in the order they ran */
    char **strings;                           /* owned copies, freed by seen_free */
    size_t string_count;
    size_t string_capacity;
} seen_t;

seen_t *seen_new(void);
void seen_free(seen_t *seen);
/* The callbacks, each taking a seen_t as ctx. */
void on_done(void *ctx, const kf_store_result_t *result);
int on_message(void *ctx, const kf_message_t *message);
int on_conversation(void *ctx, const kf_conversation_t *conversation);
int on_agent(void *ctx, const kf_agent_t *agent);
int on_canned(void *ctx, const kf_canned_t *canned);
/* The only (or the last) result seen; fails the test when there is none. */
const result_copy_t *last_result(const seen_t *seen);

/* ---- helpers that build and fetch rows (each asserts it worked) ---- */

int64_t suite_add_agent(suite_fixture_t *f, const char *email, const char *name);
/* The same with a role ("admin" or "agent"). */
int64_t suite_add_agent_as(suite_fixture_t *f, const char *email, const char *name,
                           const char *role);
int64_t suite_add_visitor(suite_fixture_t *f, const char *token_hash, const char *name);
/* A message at time now (agent_id 0: a visitor's); returns its id. */
int64_t suite_add_message_at(suite_fixture_t *f, int64_t conversation_id, int64_t agent_id,
                             const char *body, int64_t now);
int64_t suite_add_message(suite_fixture_t *f, int64_t conversation_id, int64_t agent_id,
                          const char *body);
/* A visitor's message in their conversation, opening one when there is none; returns the
 * conversation, and the message's id in *message_id (may be NULL). */
int64_t suite_open_conversation(suite_fixture_t *f, int64_t visitor_id, const char *body,
                                int64_t now, int64_t *message_id);
/* One conversation (its result's conversation). Free with seen_free. */
seen_t *suite_get_conversation(suite_fixture_t *f, int64_t conversation_id);
/* Runs one operation: asserts it was queued, flushes, and returns its result code. seen gets
 * the copies. */
int suite_wait(suite_fixture_t *f, int queued_rc, seen_t *seen);
/* message_add of m, waited for: its result code; the result is seen's last. */
int suite_send(suite_fixture_t *f, seen_t *seen, const kf_message_new_t *m);
/* How many messages the store holds (at most SUITE_MAX_ROWS). */
size_t suite_message_count(suite_fixture_t *f);
/* conversation_set_status, waited for: its result code. */
int suite_set_status(suite_fixture_t *f, int64_t conversation_id, const char *status);

/* ---- the suite's tests of message and conversation operations (store_suite_messages.c) ---- */

extern const struct CMUnitTest store_suite_message_tests[];
extern const size_t store_suite_message_test_count;

/* ---- ... and of agents' accounts: the list, changes, disabling (store_suite_agents.c) ---- */

extern const struct CMUnitTest store_suite_agent_tests[];
extern const size_t store_suite_agent_test_count;

/* ---- ... and of the full-text search (store_suite_search.c) ---- */

extern const struct CMUnitTest store_suite_search_tests[];
extern const size_t store_suite_search_test_count;

/* ---- ... and of API tokens and webhooks (store_suite_integrations.c) ---- */

extern const struct CMUnitTest store_suite_integration_tests[];
extern const size_t store_suite_integration_test_count;

/* ---- ... and of canned replies (store_suite_canned.c) ---- */

extern const struct CMUnitTest store_suite_canned_tests[];
extern const size_t store_suite_canned_test_count;

/* ---- ... and of teams, capacity and automatic assignment's write (store_suite_teams.c) ---- */

extern const struct CMUnitTest store_suite_team_tests[];
extern const size_t store_suite_team_test_count;

/* ---- ... and of visitor details (store_suite_visitors.c) ---- */

extern const struct CMUnitTest store_suite_visitor_tests[];
extern const size_t store_suite_visitor_test_count;

/* ---- ... and of reports (store_suite_reports.c) ---- */

extern const struct CMUnitTest store_suite_report_tests[];
extern const size_t store_suite_report_test_count;

/* ---- ... and of ratings (store_suite_ratings.c) ---- */

extern const struct CMUnitTest store_suite_rating_tests[];
extern const size_t store_suite_rating_test_count;

/* ---- ... and of attachments (store_suite_attachments.c) ---- */

extern const struct CMUnitTest store_suite_attachment_tests[];
extern const size_t store_suite_attachment_test_count;

#endif
