/* stream_clock.c — the stream clock that decides when idle keys are dropped.
 *
 * Owns one thing: an estimate of "now" in event time, taken from the events
 * themselves so that replay and stream agree.  The engine keeps each key's
 * state for its window (or suppression) plus engine.lateness_s past the
 * key's own last event, and drops it once this clock has passed that point
 * (state.c, fw_state_gc_slice).  Dropping is the only way one key's events can
 * affect another key, so the clock must not believe a handful of events:
 * an event stamped in year 9999 (or 1.5 days ahead) used to drag it forward
 * and every key of the stream was swept.
 *
 * Shape, and why: the clock is the median of the last FW_SCLOCK_RING event
 * times, and only ever moves forward.  It moves to a time only when at
 * least half of the last 1024 events are at or after it, so fewer than 512
 * absurd timestamps among any 1024 consecutive events — far future, far
 * past, 0 — cannot move it at all; late events only hold it back (which
 * keeps state longer, never shorter).  It starts once the ring is full:
 * until then nothing is swept.  The median is taken by quickselect on a
 * copy once per refill of the ring (about 10 ns per event), not per event.
 * Every worker keeps its own (each sees every batch's times in input
 * order), so all compute the same clock without sharing anything, and the
 * thread count cannot change it. */
#include "stream_clock.h"

#include <string.h>

#include "update.h"

void fw_sclock_init(fw_sclock *c)
{
    memset(c, 0, sizeof *c);
    c->now = FW_TS_NONE;
}

static void swap(int64_t *a, int64_t *b)
{
    int64_t t = *a;
    *a = *b;
    *b = t;
}

/* The k-th smallest of v[0..n) (v is reordered): Hoare's selection with a
 * median-of-three pivot; expected linear time. */
static int64_t select_kth(int64_t *v, uint32_t n, uint32_t k)
{
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo])
            swap(&v[mid], &v[lo]);
        if (v[hi] < v[lo])
            swap(&v[hi], &v[lo]);
        if (v[hi] < v[mid])
            swap(&v[hi], &v[mid]);
        int64_t pivot = v[mid];
        uint32_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                swap(&v[i], &v[j]);
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

int64_t fw_sclock_update(fw_sclock *c)
{
    if (c->n < FW_SCLOCK_RING || c->fresh < FW_SCLOCK_RING)
        return c->now;
    c->fresh = 0;
    int64_t v[FW_SCLOCK_RING];
    memcpy(v, c->ring, sizeof v);
    int64_t median = select_kth(v, FW_SCLOCK_RING, FW_SCLOCK_RING / 2);
    if (c->now == FW_TS_NONE || median > c->now)
        c->now = median;
    return c->now;
}
