/* state.h — stage 2 (the owning worker): updates against every key's
 * window, chain and suppression state → alerts; the shard's snapshots and
 * checkpoints; sweeps of idle keys. */
#ifndef FRAUDWATCH_STATE_H
#define FRAUDWATCH_STATE_H

#include <stdbool.h>
#include <stdio.h>

#include "fraudwatch/buf.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/snooze.h"
#include "update.h"

typedef struct fw_state fw_state;

/* Where apply puts alerts: one JSON line each, tagged with (seq, rule). */
typedef struct fw_alert_ref {
    uint32_t seq;
    uint32_t rule;
    size_t off;              /* the JSON line in text */
    size_t len;
    size_t subject_off;      /* the raw subject (the Kafka message key) */
    size_t subject_len;
    bool shadow, snoozed;    /* not a live warning (fw_alert_view) */
} fw_alert_ref;

typedef struct fw_alert_out {
    fw_buf text;
    fw_alert_ref *refs;
    size_t n, cap;
    /* Set by the pipeline for the batch: the snoozes it is applied under
     * (NULL: none), and where the shard counts per rule (fw_rule_count,
     * stride FW_RC_N; NULL: not counted) — `counted` once it did. */
    const fw_snoozes *snoozes;
    uint32_t *counts;
    bool counted;
} fw_alert_out;

fw_state *fw_state_new(void);
void fw_state_free(fw_state *st);
/* For a process about to exit: frees nothing of `st` item by item (at
 * 600,000 keys that is half a second, a third of a replay's run) but keeps
 * it reachable from a list of this file's, so that leak checkers report
 * nothing lost; the exit returns its pages all at once.  The number of keys
 * left so far is fw_state_left_keys(). */
void fw_state_leave(fw_state *st);
size_t fw_state_left_keys(void);
/* A hint that `u` will be applied soon: `stage` 0 starts loading its
 * table slot, 1 (some updates later, the slot likely in cache) its item, 2
 * (later still) the item's window or chains.  No effect on the state. */
void fw_state_prefetch(const fw_state *st, const fw_update *u, int stage);

void fw_state_apply(fw_state *st, const fw_ruleset *rs, const fw_update *u,
                    fw_alert_out *out);
/* Drops the state of keys idle for longer than their window (or
 * suppression) plus `lateness_ms`, judged by the stream clock `clock`, in
 * slices: a call for a batch of `events` sweeps the next
 * events / `pass_events` of the tables (at least one slot when events > 0),
 * so a whole pass takes `pass_events` events, however they are batched —
 * or up to 8 times as many while passes find almost nothing idle (state.c).
 * Nothing while a snapshot is open. */
void fw_state_gc_slice(fw_state *st, int64_t clock, int64_t lateness_ms, uint32_t events,
                       uint32_t pass_events);
/* Keys the sweep has looked at so far. */
uint64_t fw_state_gc_visits(const fw_state *st);
size_t fw_state_keys(const fw_state *st);
/* At most max_keys keys (0: no limit): a new key beyond it evicts the key
 * whose state ends first among a few sampled.  Evictions so far. */
void fw_state_set_budget(fw_state *st, size_t max_keys);
uint64_t fw_state_evictions(const fw_state *st);

/* Checkpoints (snapshot.c): every item, in a portable binary form,
 * appended to `out` (out of memory aborts, like every fw_buf). */
void fw_state_save(const fw_state *st, fw_buf *out);
/* The same, without stopping the shard: begin lists the items at the cut
 * and writes their count (returned); each step encodes up to max_items of
 * them, true once all are in `out`.  Between steps the shard goes on
 * applying updates — an item is encoded as it was at the cut before it
 * changes — and sweeps wait.  The same owner thread throughout. */
size_t fw_state_snap_begin(fw_state *st, fw_buf *out);
bool fw_state_snap_step(fw_state *st, size_t max_items);
/* Items of the last snapshot encoded early, because they were changing. */
size_t fw_state_snap_early(const fw_state *st);
/* Reads items saved by fw_state_save and hands each to `place`, which
 * returns the state that must own it (resharding by the item's hash). */
int fw_state_load(FILE *f, fw_state *(*place)(void *ctx, uint64_t khash),
                  void *ctx, char *err, size_t errlen);

#endif
