/* fraudwatch — the multithreaded engine: batches in, alerts out, in order.
 *
 * One thread (the feeder: replay's reader, the daemon's consumer) fills
 * batches of raw messages, submits them, and retires them in submission
 * order once every worker is done with them; N worker threads do the rest.
 * The set of alerts — and, within a batch, their order — does not depend on
 * N.  Each batch carries a reference to the rule set it is matched under, so
 * a rule reload takes effect between two batches and every event is matched
 * entirely by one set.
 *
 * Usage (feeder thread only):
 *     b = fw_pipeline_acquire(p, rs);          // NULL: ring full, retire first
 *     while (fw_batch_add(b, msg, len, tag)) …; fw_pipeline_submit(p, b);
 *     r = fw_pipeline_retire(p, wait);         // oldest finished batch
 *     … read alerts / malformed of r …; fw_pipeline_recycle(p, r);
 */
#ifndef FRAUDWATCH_PIPELINE_H
#define FRAUDWATCH_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fraudwatch/ruleset.h"
#include "fraudwatch/snooze.h"

typedef struct fw_pipeline fw_pipeline;
typedef struct fw_batch fw_batch;

typedef struct fw_pipeline_opts {
    uint32_t workers;          /* 1.. */
    size_t max_event_bytes;    /* larger messages are malformed */
    int64_t lateness_ms;       /* how long idle key state is kept past its window */
    int64_t max_future_ms;     /* > 0: events with ts further ahead of the wall
                                  clock are malformed (FW_REASON_FUTURE) */
    uint64_t max_keys;         /* key state budget (0: none): beyond it, the
                                  keys whose state ends first are evicted */
    uint32_t batch_events;     /* messages per batch (default 1024) */
    uint32_t snapshot_step;    /* state items encoded per batch while a
                                  snapshot is taken (default 2048) */
    uint32_t gc_pass_events;   /* events per whole sweep of idle keys: each
                                  batch sweeps its share (default 262144; up
                                  to 8 times as many while passes find
                                  almost nothing idle) */
    uint32_t own_parts;        /* ha.mode = scaleout: keep only keys of */
    uint32_t own_part;         /* repartition partition own_part (0: all) */
} fw_pipeline_opts;

/* The engine's limits: one table for replay's flags (main.c) and the
 * daemon's settings (config.c), so that replay equals stream by
 * construction.  tests/test_config.c checks the settings' defaults. */
#define FW_DEFAULT_MAX_EVENT_BYTES (1u << 20)
#define FW_MIN_MAX_EVENT_BYTES 64
#define FW_MAX_MAX_EVENT_BYTES (16u << 20)
#define FW_DEFAULT_LATENESS_MS INT64_C(86400000)
#define FW_MIN_LATENESS_S 1
#define FW_MAX_LATENESS_S 31536000
#define FW_DEFAULT_MAX_KEYS 10000000u    /* ~4-5 GiB at ~450 bytes a key */
#define FW_MIN_MAX_KEYS 1000u
#define FW_MAX_MAX_KEYS 4000000000u
#define FW_REASON_FUTURE "ts is further ahead of the wall clock than limits.max_future_s"

fw_pipeline *fw_pipeline_new(const fw_pipeline_opts *o, char *err, size_t errlen);
/* Stops and joins the workers.  Retire every batch first. */
void fw_pipeline_free(fw_pipeline *p);
/* The same, for a process about to exit (replay, compare): the workers'
 * per-key state is left to the exit (fw_state_leave in state.c), not freed
 * item by item. */
void fw_pipeline_free_at_exit(fw_pipeline *p);

/* A free batch to fill, matched under `rs` (a reference is taken), or NULL
 * when every slot is in flight: retire one and try again. */
fw_batch *fw_pipeline_acquire(fw_pipeline *p, fw_ruleset *rs);
/* The snoozes every batch acquired from now on is applied under (a
 * reference is taken; NULL: none).  Batches in flight keep theirs. */
void fw_pipeline_set_snoozes(fw_pipeline *p, fw_snoozes *s);
/* Adds a message; false (nothing added) when the batch is full. */
bool fw_batch_add(fw_batch *b, const char *data, size_t len, uint64_t tag);
uint32_t fw_batch_count(const fw_batch *b);
void fw_pipeline_submit(fw_pipeline *p, fw_batch *b);

/* The oldest submitted batch once it is finished; NULL when none is in
 * flight, or (wait == false) when the oldest is not finished yet. */
fw_batch *fw_pipeline_retire(fw_pipeline *p, bool wait);
void fw_pipeline_recycle(fw_pipeline *p, fw_batch *b);
/* Batches submitted and not yet retired. */
uint32_t fw_pipeline_in_flight(const fw_pipeline *p);
/* Batches submitted that `worker` has not yet applied (any thread). */
uint32_t fw_pipeline_queue_depth(fw_pipeline *p, uint32_t worker);
/* Messages that can be in flight at once (slots × batch size). */
size_t fw_pipeline_capacity(const fw_pipeline *p);
uint32_t fw_pipeline_workers(const fw_pipeline *p);

/* Reading a retired batch. */
uint64_t fw_batch_tag(const fw_batch *b, uint32_t seq);
/* The message as added (NULL, with its size in *len, for an oversize one). */
const char *fw_batch_msg(const fw_batch *b, uint32_t seq, size_t *len);
const fw_ruleset *fw_batch_ruleset(const fw_batch *b);
uint64_t fw_batch_faults(const fw_batch *b);      /* regex limit hits */
/* Events more than the lateness ahead of / behind the stream clock when
 * they were applied (none until the clock has started): a far-future event
 * blinds its own key, a far-late one may find its key's state dropped. */
void fw_batch_clock_outliers(const fw_batch *b, uint32_t *ahead, uint32_t *behind);
/* Keys evicted by the state budget while the batch was applied. */
uint64_t fw_batch_evictions(const fw_batch *b);
uint32_t fw_batch_malformed_count(const fw_batch *b);
void fw_batch_malformed(const fw_batch *b, uint32_t i, uint32_t *seq,
                        const char **reason);

typedef struct fw_alert_iter {
    size_t pos[64];
} fw_alert_iter;

typedef struct fw_alert_view {
    const char *json;      /* one JSON object and a newline */
    size_t len;
    const char *subject;   /* raw subject (not NUL-terminated) */
    size_t subject_len;
    uint32_t seq;          /* event's index in the batch */
    uint32_t rule;         /* rule index in the batch's rule set */
    /* Not a live warning (SPEC §2): the rule is in shadow mode, or a
     * snooze muted it; the JSON carries "shadow": true / "snoozed": true.
     * Either one sends it to the shadow output. */
    bool shadow;
    bool snoozed;
} fw_alert_view;

/* Per-rule counts of a batch (the per-rule metrics; replay's summary). */
enum fw_rule_count {
    FW_RC_MATCHED,      /* events that satisfied the rule's conditions (the
                           event type and where of one of its steps) */
    FW_RC_FAULTS,       /* its regex searches stopped by a limit */
    FW_RC_ALERTS,       /* times it fired: every alert, whatever its output */
    FW_RC_SUPPRESSED,   /* fires withheld by suppression (no alert) */
    FW_RC_SNOOZED,      /* alerts a snooze muted */
    FW_RC_SHADOW,       /* alerts to the shadow output (shadow mode, or snoozed) */
    FW_RC_N
};
/* Adds the retired batch's counts to sum[rule * FW_RC_N + k], for every
 * rule of its rule set (sum has room for them all). */
void fw_batch_rule_counts(const fw_batch *b, uint64_t *sum);

/* Alerts of a retired batch in event order, then rule order. */
void fw_batch_alerts_begin(const fw_batch *b, fw_alert_iter *it);
bool fw_batch_alerts_next(const fw_batch *b, fw_alert_iter *it,
                          fw_alert_view *a);

/* Checkpoints at a cut, without stopping the stream (feeder thread).  Mark
 * a batch — it may hold no message — before submitting it; every worker,
 * right after applying it, lists the items of its own shard and then
 * encodes them into memory a slice per later batch (and whenever it is
 * idle), each as it was at the cut.  The batch, once retired, hands over
 * the snapshot: once complete, the state of every key after exactly the
 * batches up to and including the cut.  false: out of memory. */
typedef struct fw_snapshot fw_snapshot;
bool fw_batch_set_cut(fw_batch *b);
bool fw_batch_is_cut(const fw_batch *b);
/* Wall-clock epoch ms when the batch was submitted (0: not yet). */
int64_t fw_batch_submitted_ms(const fw_batch *b);
/* The cut's snapshot (the caller frees it, complete or not), or NULL if `b`
 * is no cut. */
fw_snapshot *fw_batch_take_snapshot(fw_batch *b);
/* Every shard is in (any thread; never blocks). */
bool fw_snapshot_complete(const fw_snapshot *s);
/* Blocks until complete (the workers finish it even with nothing to do). */
void fw_pipeline_snapshot_wait(fw_pipeline *p, const fw_snapshot *s);
/* Once complete: the bytes fw_pipeline_save() would have written at the
 * cut, items in another order (any thread; the snapshot no longer changes). */
int fw_snapshot_write(const fw_snapshot *s, FILE *f, char *err, size_t errlen);
size_t fw_snapshot_keys(const fw_snapshot *s);
size_t fw_snapshot_bytes(const fw_snapshot *s);
/* Items encoded ahead of their turn because a batch was about to change them. */
size_t fw_snapshot_early(const fw_snapshot *s);
/* The longest a worker spent listing its shard at the cut (the stream
 * stood still for it), and the longest a worker spent on the snapshot in
 * all (spread over the batches after the cut). */
double fw_snapshot_pause_seconds(const fw_snapshot *s);
double fw_snapshot_work_seconds(const fw_snapshot *s);
/* Drops the caller's reference; workers still filling it keep theirs. */
void fw_snapshot_free(fw_snapshot *s);

/* Checkpoints: the state of every key, written and read while no batch is
 * in flight.  A checkpoint loads into any number of workers. */
int fw_pipeline_save(fw_pipeline *p, FILE *f, char *err, size_t errlen);
int fw_pipeline_load(fw_pipeline *p, FILE *f, char *err, size_t errlen);
/* Keys held (sum over workers); read while no batch is in flight. */
size_t fw_pipeline_keys(fw_pipeline *p);
/* Keys the idle-key sweep has looked at (sum over workers); read while no
 * batch is in flight. */
uint64_t fw_pipeline_sweep_visits(fw_pipeline *p);

#define FW_MAX_WORKERS 64

#endif
