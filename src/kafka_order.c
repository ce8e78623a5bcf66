/* kafka_order.c — the consumer's partitions interleaved by message time.
 *
 * Owns a reorder buffer between librdkafka's consumer queue and the daemon:
 * one FIFO lane per assigned partition, holding messages the consumer has
 * delivered but the daemon has not taken yet.  The daemon always takes the
 * oldest head (by Kafka message timestamp) across the lanes, and only when
 * every other assigned partition either has a message buffered or has
 * nothing more to give (caught up to its high watermark) — or has been dry
 * for longer than wait_ms, or the buffer is full.  This is Kafka Streams'
 * max.task.idle.ms rule.
 *
 * Why: with several partitions and a backlog, librdkafka hands over whole
 * fetch batches per partition, and partitions drift apart by seconds to
 * minutes.  Keys spread over partitions (a victim's call lands in the
 * caller's partition, their transfer in their own) then reach the engine out
 * of order, and windows and sequences see a different stream than the one
 * that was written (bench/README.md, 4 partitions: 3 of 453 frauds missed).
 * Interleaving by time gives the engine the stream in the order it was
 * produced, up to ties within one millisecond.  A live stream whose
 * partitions are all caught up never waits.
 *
 * Within a partition the order is always the order delivered, so the
 * positions the daemon checkpoints stay exact.  Messages here are not yet
 * processed: a revocation or a crash simply leaves them to be read again.
 * Pure logic over opaque message pointers, driven from the daemon's main
 * thread only (no locks), and unit-tested without Kafka (tests/test_order.c).
 * Each pop looks at every lane: linear in the number of assigned
 * partitions, which is small next to the cost of an event.  With one
 * partition assigned and nothing held, a message does not go through the
 * buffer at all (fw_order_pass: what push and pop would do, without them). */
#include "kafka_order.h"

#include <stdlib.h>
#include <string.h>

struct item {
    void *msg;
    int64_t ts;
    uint64_t seq;   /* push order: ties across lanes */
    int64_t aux[2]; /* the caller's, for its behind callback (repart_in.c) */
};

struct lane {
    struct item *ring;
    size_t cap, head, len;
    bool assigned;
    int64_t dry_since;   /* when it last ran empty (or was assigned) */
};

struct fw_order {
    struct lane *lanes;
    uint32_t nlanes;
    int64_t wait_ms;
    size_t max_buffered;
    size_t buffered;
    uint32_t nassigned;      /* lanes assigned */
    uint64_t seq;
    int64_t head_ts;         /* of the message a pop is deciding about */
    int64_t head_aux[2];
};

fw_order *fw_order_new(int64_t wait_ms, size_t max_buffered)
{
    fw_order *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->wait_ms = wait_ms < 0 ? 0 : wait_ms;
    o->max_buffered = max_buffered ? max_buffered : 1;
    return o;
}

static void lane_clear(struct lane *l, void (*destroy)(void *msg))
{
    for (size_t i = 0; i < l->len; i++) {
        void *m = l->ring[(l->head + i) % l->cap].msg;
        if (destroy)
            destroy(m);
    }
    l->head = l->len = 0;
}

void fw_order_free(fw_order *o, void (*destroy)(void *msg))
{
    if (!o)
        return;
    for (uint32_t i = 0; i < o->nlanes; i++) {
        lane_clear(&o->lanes[i], destroy);
        free(o->lanes[i].ring);
    }
    free(o->lanes);
    free(o);
}

static struct lane *lane_get(fw_order *o, uint32_t src)
{
    if (src >= o->nlanes) {
        uint32_t n = o->nlanes ? o->nlanes : 4;
        while (n <= src)
            n *= 2;
        struct lane *nl = realloc(o->lanes, n * sizeof *nl);
        if (!nl)
            return NULL;
        memset(nl + o->nlanes, 0, (n - o->nlanes) * sizeof *nl);
        o->lanes = nl;
        o->nlanes = n;
    }
    return &o->lanes[src];
}

void fw_order_assign(fw_order *o, uint32_t src, int64_t now_ms)
{
    struct lane *l = lane_get(o, src);
    if (!l)
        return;   /* out of memory: the partition is never waited for */
    o->nassigned += !l->assigned;
    l->assigned = true;
    l->dry_since = now_ms;
}

void fw_order_revoke(fw_order *o, uint32_t src, void (*destroy)(void *msg))
{
    if (src >= o->nlanes)
        return;
    struct lane *l = &o->lanes[src];
    o->buffered -= l->len;
    lane_clear(l, destroy);
    o->nassigned -= l->assigned;
    l->assigned = false;
}

int fw_order_push(fw_order *o, uint32_t src, int64_t ts_ms, void *msg)
{
    return fw_order_push_aux(o, src, ts_ms, 0, 0, msg);
}

int fw_order_push_aux(fw_order *o, uint32_t src, int64_t ts_ms, int64_t a0, int64_t a1,
                      void *msg)
{
    struct lane *l = lane_get(o, src);
    if (!l)
        return -1;
    if (l->len == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 256;
        struct item *nr = malloc(ncap * sizeof *nr);
        if (!nr)
            return -1;
        for (size_t i = 0; i < l->len; i++)
            nr[i] = l->ring[(l->head + i) % l->cap];
        free(l->ring);
        l->ring = nr;
        l->cap = ncap;
        l->head = 0;
    }
    /* A message of a partition not (or no longer) assigned is still
     * delivered in order: the lane holds it like any other. */
    l->ring[(l->head + l->len) % l->cap] = (struct item){ msg, ts_ms, o->seq++, { a0, a1 } };
    l->len++;
    o->buffered++;
    return 0;
}

void *fw_order_pop(fw_order *o, int64_t now_ms, fw_order_behind_fn behind,
                   void *ctx, uint32_t *src)
{
    if (!o->buffered)
        return NULL;
    struct lane *best = NULL;
    const struct item *bi = NULL;
    for (uint32_t i = 0; i < o->nlanes; i++) {
        struct lane *l = &o->lanes[i];
        if (!l->len)
            continue;
        const struct item *it = &l->ring[l->head];
        if (!bi || it->ts < bi->ts || (it->ts == bi->ts && it->seq < bi->seq)) {
            best = l;
            bi = it;
        }
    }
    if (!best)
        return NULL;
    o->head_ts = bi->ts;
    o->head_aux[0] = bi->aux[0];
    o->head_aux[1] = bi->aux[1];
    if (o->buffered < o->max_buffered) {
        for (uint32_t i = 0; i < o->nlanes; i++) {
            struct lane *l = &o->lanes[i];
            if (l->assigned && !l->len && now_ms - l->dry_since < o->wait_ms &&
                (!behind || behind(ctx, i)))
                return NULL;   /* it may hold something older: wait for it */
        }
    }
    void *m = bi->msg;
    *src = (uint32_t)(best - o->lanes);
    best->head = (best->head + 1) % best->cap;
    if (--best->len == 0) {
        best->head = 0;
        best->dry_since = now_ms;
    }
    o->buffered--;
    return m;
}

bool fw_order_pass(fw_order *o, uint32_t src, int64_t now_ms)
{
    /* Pushed, the message would be the only one held, so the pop's oldest
     * head; the pop waits only for an assigned lane that is empty, and
     * there is none but its own, which holds it.  What the pop would have
     * left behind: the lane dry since now, one more push counted. */
    if (o->buffered ||
        (o->nassigned && !(o->nassigned == 1 && src < o->nlanes && o->lanes[src].assigned)))
        return false;
    if (src < o->nlanes)
        o->lanes[src].dry_since = now_ms;
    o->seq++;
    return true;
}

size_t fw_order_buffered(const fw_order *o) { return o->buffered; }

int64_t fw_order_head_ts(const fw_order *o) { return o->head_ts; }

int64_t fw_order_head_aux(const fw_order *o, int i) { return o->head_aux[i & 1]; }

