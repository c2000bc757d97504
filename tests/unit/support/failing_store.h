/* failing_store.h: a test store that forwards every operation to a real SQLite store, except the
 * calls a test tells to fail. It drives the error paths of the layers above the store: the chat
 * layer's 500s and 503s, its logging and its clean-up.
 *
 * The handle is the SQLite store itself with its table of operations replaced by one that checks
 * the test's failure plan first and then calls SQLite's operation. Operations it does not know
 * (added to kf_store_ops_t after it was written) pass straight through, unfailable.
 *
 * A call can fail three ways, as with a real database:
 * - in its result (failing_store_fail_nth/_always): the operation is not run, and its done gets
 *   the error from a later complete() (notify says when), as a failed query or commit would;
 * - at once (failing_store_refuse_nth): the call returns the error and done never runs;
 * - at its completion (FS_OP(complete) counts completions, one per operation, not calls of
 *   complete()): the operation ran (a write is stored), but its done gets the error instead, as
 *   after a commit whose outcome was lost.
 * Tests look at what clients are answered and what is published, not at the rows. */
#ifndef KF_TEST_FAILING_STORE_H
#define KF_TEST_FAILING_STORE_H

#include <stddef.h>

#include "store/store.h"

/* Names one operation: FS_OP(message_add). FS_ANY counts the calls of every operation. */
#define FS_OP(name) offsetof(kf_store_ops_t, name)
#define FS_ANY ((size_t)-1)

/* Opens (creating) the SQLite database at path and wraps it. Returns 0 or the open error. Close
 * it with kf_store_close as any store. */
int failing_store_open(const char *path, kf_store_t **out);
/* The nth call (1 = the next) of op (or of any operation: FS_ANY) from now on fails with error,
 * in its result; one failure only. Resets the counters. */
void failing_store_fail_nth(kf_store_t *store, size_t op, unsigned long nth, int error);
/* The same, but the call returns error at once. */
void failing_store_refuse_nth(kf_store_t *store, size_t op, unsigned long nth, int error);
/* Every call of op (or of any operation) from now on fails with error, in its result. Resets the
 * counters. */
void failing_store_fail_always(kf_store_t *store, size_t op, int error);
/* Stops failing and resets the counters. */
void failing_store_reset(kf_store_t *store);
/* Calls of op (FS_ANY: of every operation), and failures injected, since the last arming. */
unsigned long failing_store_calls(kf_store_t *store, size_t op);
unsigned long failing_store_failures(kf_store_t *store);

#endif
