/* fraudwatch — the two clocks: wall time for timestamps that leave the
 * process (detected_ts, heartbeats), monotonic time for intervals.  Every
 * file reads time through these (nothing else calls clock_gettime but the
 * logger, for its timestamps, and a condition variable's deadline). */
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

/* Nanoseconds on a clock that never jumps (durations). */
static inline int64_t fw_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Milliseconds on a clock that never jumps. */
static inline int64_t fw_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The same clock as of the last timer tick: up to a few milliseconds
 * behind, never ahead, and a fraction of the cost — for a wait counted in
 * milliseconds on a path taken once per message (kafka_in.c). */
static inline int64_t fw_mono_coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
