/* clock.h: the one clock module. Two clocks, for two different questions:
 * - wall time (CLOCK_REALTIME), milliseconds since the Unix epoch: for times that are stored,
 *   shown or compared with stored ones (a message's created_at, a session's expiry);
 * - monotonic time (CLOCK_MONOTONIC), milliseconds since an arbitrary start: for timeouts,
 *   deadlines, rates and durations, which must not jump when the wall clock is set.
 * Both read the clock itself (a vDSO call, tens of nanoseconds), not a cached loop time that lags
 * behind when a callback runs long. */
#ifndef KF_BASE_CLOCK_H
#define KF_BASE_CLOCK_H

#include <stdint.h>

int64_t kf_clock_wall_ms(void);
uint64_t kf_clock_mono_ms(void);
/* The same in microseconds, for latencies (the histograms of base/metrics.h). */
uint64_t kf_clock_mono_us(void);

#endif
