/* fetch_wake.c — when to wake librdkafka's fetchers after a full queue.
 *
 * Owns only a decision, so it is pure and unit-tested (tests/test_fetch_wake.c);
 * fw_kafka_waker (kafka_common.c) reads the queue and does the waking, for
 * the daemon's consumer (kafka_in.c) and the scale-out forwarder.
 *
 * librdkafka 2.0.2 stops fetching a partition while the consumer's local
 * queue holds queued.min.messages or queued.max.messages.kbytes, and looks
 * again only when its broker thread next wakes up: on an operation or a
 * socket event, else after up to a second.  A daemon draining a backlog
 * empties its queue in a fraction of that and then waits with nothing to
 * do, once per queueful (bench/README.md, "The consumer queue").
 * librdkafka 2.3 added fetch.queue.backoff.ms for this; 2.0.2 has no
 * setting, so the daemon wakes the broker threads itself: once the queue
 * has been seen near a cap and has since drained below half of it,
 * fw_kafka_waker sends the partitions' leaders a small request, whose arrival
 * on their threads makes them decide again, and fetch.
 *
 * The queue's length is read every `every` messages taken (a mutex in
 * librdkafka; every 1024 costs nothing at a million a second), and its size
 * in bytes is estimated from the mean size of the messages taken.  `every`
 * follows the smaller cap in messages, so a small queue is not stepped
 * over between two looks. */
#include "fetch_wake.h"

#define LOOK_MAX 1024u
#define LOOK_MIN 16u

void fw_fetch_wake_init(fw_fetch_wake *w, uint64_t cap_msgs, uint64_t cap_bytes)
{
    *w = (fw_fetch_wake){ .cap_msgs = cap_msgs, .cap_bytes = cap_bytes,
                          .every = LOOK_MIN, .until_look = LOOK_MIN };
}

/* Would `queued` messages of the mean size reach num/den of a cap? */
static bool at_least(const fw_fetch_wake *w, size_t queued, uint64_t num, uint64_t den)
{
    if (w->cap_msgs && (uint64_t)queued * den >= w->cap_msgs * num)
        return true;
    /* queued × mean ≥ cap × num/den, without dividing: the mean is
     * taken_bytes / taken. */
    return w->cap_bytes && w->taken &&
           (double)queued * (double)w->taken_bytes * (double)den >=
               (double)w->cap_bytes * (double)w->taken * (double)num;
}

bool fw_fetch_wake_look(fw_fetch_wake *w, size_t queued)
{
    /* The queue's capacity in messages, the smaller of the two caps. */
    uint64_t cap = w->cap_msgs ? w->cap_msgs : UINT64_MAX;
    if (w->cap_bytes && w->taken_bytes) {
        uint64_t by_bytes = w->cap_bytes / (w->taken_bytes / w->taken + 1);
        if (by_bytes < cap)
            cap = by_bytes;
    }
    uint64_t every = cap / 16;
    w->every = every > LOOK_MAX ? LOOK_MAX : every < LOOK_MIN ? LOOK_MIN : (uint32_t)every;
    if (w->until_look > w->every)
        w->until_look = w->every;
    if (at_least(w, queued, 9, 10)) {
        w->full = true;
        return false;
    }
    if (w->full && !at_least(w, queued, 1, 2)) {
        w->full = false;
        return true;
    }
    return false;
}
