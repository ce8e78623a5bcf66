/* fraudwatch — the two clocks: wall time for timestamps that leave the
 * process (detected_ts, heartbeats), monotonic time for intervals. */
#ifndef FRAUDWATCH_CLOCK_H
#define FRAUDWATCH_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Unix epoch milliseconds. */
static inline int64_t fw_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds on a clock that never jumps. */
static inline int64_t fw_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
