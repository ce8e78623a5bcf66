/* stream_clock.h — the stream's idea of "now" in event time, robust to a
 * few absurd timestamps.  See stream_clock.c. */
#ifndef FRAUDWATCH_STREAM_CLOCK_H
#define FRAUDWATCH_STREAM_CLOCK_H

#include <stdint.h>

#define FW_SCLOCK_RING 1024     /* event times the clock is judged on */

typedef struct fw_sclock {
    int64_t ring[FW_SCLOCK_RING];
    uint32_t n;                 /* slots filled, ≤ FW_SCLOCK_RING */
    uint32_t pos;               /* next slot */
    uint32_t fresh;             /* observed since the last update */
    int64_t now;                /* FW_TS_NONE until the first update */
} fw_sclock;

void fw_sclock_init(fw_sclock *c);

/* One event time, in input order. */
static inline void fw_sclock_observe(fw_sclock *c, int64_t ts)
{
    c->ring[c->pos] = ts;
    c->pos = (c->pos + 1) % FW_SCLOCK_RING;
    if (c->n < FW_SCLOCK_RING)
        c->n++;
    c->fresh++;
}

/* Moves the clock forward to the median of the last FW_SCLOCK_RING event
 * times, if that is later, once the ring has been refilled since the last
 * move (cheap to call after every batch).  Returns the clock. */
int64_t fw_sclock_update(fw_sclock *c);

/* The clock now: FW_TS_NONE until FW_SCLOCK_RING events have been seen. */
static inline int64_t fw_sclock_now(const fw_sclock *c) { return c->now; }

#endif
