/* fault.c: a counting allocator for jansson that can fail its nth allocation (fault.h). */
#include "support/fault.h"

#include <jansson.h>
#include <stdlib.h>

static unsigned long countdown; /* allocations before the failure; 0 when disarmed */
static unsigned long calls;     /* allocations since arming */
static bool fired;

static void *counting_malloc(size_t size)
{
    calls++;
    if (countdown > 0 && --countdown == 0) {
        fired = true;
        return NULL;
    }
    return malloc(size);
}

void fault_jansson_install(void)
{
    json_set_alloc_funcs(counting_malloc, free);
}

void fault_jansson_fail_nth(unsigned long nth)
{
    countdown = nth;
    calls = 0;
    fired = false;
}

bool fault_jansson_fired(void)
{
    return fired;
}

unsigned long fault_jansson_calls(void)
{
    return calls;
}
