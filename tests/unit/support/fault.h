/* fault.h: test-only allocation failures for jansson, the library whose allocation failures kefu
 * handles (encoders and decoders return NULL and callers answer 500 or skip an event). Our own
 * small allocations abort instead; src/base/buf.h's kf_alloc_fail_nth injects those. Leaks on
 * the clean-up paths are found by LeakSanitizer (the ASan build runs every unit test). */
#ifndef KF_TEST_FAULT_H
#define KF_TEST_FAULT_H

#include <stdbool.h>

/* Routes jansson's allocations through the counting allocator (idempotent). */
void fault_jansson_install(void);
/* The nth jansson allocation from now (1 = the next) returns NULL; 0 disarms. Fires once. */
void fault_jansson_fail_nth(unsigned long nth);
/* True when the failure armed by the last fault_jansson_fail_nth has happened. */
bool fault_jansson_fired(void);
/* jansson allocations made since the last fault_jansson_fail_nth. */
unsigned long fault_jansson_calls(void);

#endif
