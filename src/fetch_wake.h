/* fetch_wake.h — when to wake librdkafka's fetchers after a full queue
 * (internal; see fetch_wake.c). */
#ifndef FRAUDWATCH_FETCH_WAKE_H
#define FRAUDWATCH_FETCH_WAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t cap_msgs;       /* queued.min.messages */
    uint64_t cap_bytes;      /* queued.max.messages.kbytes × 1024 */
    uint64_t taken;          /* messages taken from the queue */
    uint64_t taken_bytes;    /* and their payload bytes (the mean size) */
    uint32_t every;          /* look at the queue every this many messages */
    uint32_t until_look;
    bool full;               /* seen near a cap since the last wake-up */
} fw_fetch_wake;

/* The consumer's two caps, as librdkafka was configured (0: none). */
void fw_fetch_wake_init(fw_fetch_wake *w, uint64_t cap_msgs, uint64_t cap_bytes);

/* A message of `len` payload bytes was taken from the queue: true when the
 * caller should now read the queue's length and pass it to
 * fw_fetch_wake_look(). */
static inline bool fw_fetch_wake_taken(fw_fetch_wake *w, size_t len)
{
    w->taken++;
    w->taken_bytes += len;
    if (--w->until_look)
        return false;
    w->until_look = w->every;
    return true;
}

/* The queue holds `queued` messages: true when the fetchers should be woken
 * now (at most once per time the queue was seen full). */
bool fw_fetch_wake_look(fw_fetch_wake *w, size_t queued);

#endif
