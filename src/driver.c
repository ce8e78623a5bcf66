/* driver.c — the one loop between a source, the pipeline and a sink, and
 * the checkpoints that make it exact across restarts (include/fraudwatch/
 * driver.h says who uses it and how a source or a sink plugs in).
 *
 * Owns the thread that calls fw_driver_run(): it takes messages from the
 * source, packs them into batches, submits them to the workers, retires
 * finished batches in order — alerts and dead letters to the sink, each
 * message then reported done to the source — and drives the checkpoints.
 * Nothing here runs per event on another thread, and nothing takes a lock
 * per event.  Message provenance (stream, offset, timestamp) lives in a ring
 * indexed by the batch tag, so the source's message is let go as soon as
 * its bytes are copied into a batch.
 *
 * At-least-once, with window state, through checkpoints: a checkpoint is
 * the state of every key together with the source positions it
 * corresponds to, in one file.  After kill -9 a restart loads the last
 * checkpoint and the source resumes at its positions: the state is exactly
 * the state those events built, so every output of an uninterrupted run is
 * produced again (those after the checkpoint twice, with the same ids).
 *
 * Every checkpoint_interval the stream is *cut* without stopping it
 * (pipeline.c): the next batch is marked; each worker, right after applying
 * it, lists its shard's items and encodes them into memory over the next
 * batches (an item about to change first).  When the loop retires the cut
 * batch it takes the snapshot, the source's positions (everything retired
 * so far: exactly the cut) and a delivery mark of the sink; once every
 * shard is in, the writer thread (snapshot.c) writes and fsyncs the file
 * beside the one in place.  The loop carries on.  Once the file is durable
 * AND everything handed to the sink before the cut is delivered, the
 * writer renames it into place, and only then are the positions committed
 * to the source.  Both conditions come before the rename because the file
 * in place is what a restart resumes from: resuming after a cut whose
 * alerts were never delivered would lose them.  One checkpoint is in
 * flight at a time; the stream stands still only while the workers list
 * their items, and for a slice of encoding per batch.
 *
 * fw_driver_checkpoint() — a revocation, the shutdown — does the same
 * synchronously (a hand-over must be exact): the cut, every batch retired,
 * every delivery awaited, the file written and published, the positions
 * committed.  A periodic checkpoint still in flight then is dropped
 * unpublished (or finished, if it is already in place).
 *
 * The file: CHECKPOINT_MAGIC, the source's positions (its own encoding),
 * then the pipeline's snapshot — the same bytes the daemon always wrote. */
#include "fraudwatch/driver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_store.h"
#include "codec.h"
#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "rule_stats.h"
#include "snapshot.h"

#define CHECKPOINT_MAGIC UINT64_C(0x3130545043574633) /* "3FWCPT01" */
#define FEED_BURST 64           /* messages fed between two turns of housekeeping */

struct origin {
    uint32_t stream;
    int64_t offset;
    int64_t ts;
    int64_t polled_ms;        /* wall clock when fed (fw_origin; latency stamps) */
};

/* The checkpoint in flight (one at a time). */
enum ck_phase {
    CK_NONE,
    CK_CUT,          /* cut batch submitted, not retired yet */
    CK_SHARDS,       /* retired; the workers are still encoding their shards */
    CK_WRITING,      /* snapshot with the writer; waiting for it and the acks */
    CK_PUBLISHING,   /* durable and delivered: being renamed into place */
};

struct ckpt {
    enum ck_phase phase;
    bool sync;                /* fw_driver_checkpoint */
    uint64_t cut_msgno;       /* msgno at the cut: messages before it are in */
    uint64_t mark;            /* the sink's mark at the cut */
    fw_snapshot *snap;
    void *pos;                /* the source's positions at the cut */
    int64_t t_cut;            /* fw_fw_mono_ns() when cut */
    int64_t main_ns;          /* the loop's own time spent on it */
};

struct fw_driver {
    fw_driver_opts o;
    fw_pipeline *p;
    fw_ruleset *rs;
    const fw_source_ops *src;
    void *srcself;
    const fw_sink_ops *sink;
    void *sinkself;

    fw_batch *cur;           /* being filled */
    uint64_t msgno;          /* tag of the next message */
    uint64_t checkpointed;   /* msgno at the last checkpoint */
    struct origin *ring;     /* provenance by tag */
    size_t ring_mask;
    struct ckpt ck;
    fw_ckpt_writer *writer;  /* NULL: no checkpoints */
    int lock_fd;             /* state_dir/lock, held with flock(LOCK_EX); -1: none */
    bool checkpoints_over;
    int64_t unsaved_since;   /* fw_mono_ms() of the oldest input no checkpoint covers; 0: none */
    atomic_llong unsaved_pub; /* the same, for other threads (fw_driver_unsaved_ms) */
    int64_t last_cut_ms;
    int64_t last_gauges_ms;
    int64_t burst_ms;        /* fw_wall_ms() read once per burst of messages fed */
    fw_driver_stats st;
    fw_rulestats *rstats;    /* per rule and mode (rule_stats.c) */
    char fatal[512];

    /* metrics (NULL when opts.metrics is) */
    fw_counter *events, *regex_faults, *clock_ahead, *clock_behind, *evictions;
    fw_counter *checkpoints, *checkpoint_failures;
    fw_gauge *checkpoint_seconds, *checkpoint_pause, *state_keys, *ruleset_version;
    double keys_shown;       /* this driver's part of state_keys (see ck_done) */
    fw_gauge **queue_depth;
    struct { const char *reason; fw_counter *c; } malformed[16];
    int64_t evict_logged_ms;
};

/* ---- metrics ---------------------------------------------------------------- */

static void add(fw_counter *c, uint64_t n)
{
    if (c && n)
        fw_counter_add(c, n);
}

static void register_metrics(fw_driver *d, fw_metrics *m)
{
    d->events = fw_metrics_counter(m, "fraudwatch_events_total",
                                   "Events consumed and processed (malformed included).", "");
    d->regex_faults = fw_metrics_counter(m, "fraudwatch_regex_faults_total",
                                         "Regex searches stopped by a match, depth or heap "
                                         "limit (counted as no match).", "");
    static const char clock_help[] =
        "Events more than engine.lateness_s ahead of (blinding their own key) or "
        "behind (their key's state may be gone) the stream clock.";
    d->clock_ahead = fw_metrics_counter(m, "fraudwatch_events_off_clock_total", clock_help,
                                        "side=\"ahead\"");
    d->clock_behind = fw_metrics_counter(m, "fraudwatch_events_off_clock_total", clock_help,
                                         "side=\"behind\"");
    d->evictions = fw_metrics_counter(m, "fraudwatch_state_evictions_total",
                                      "Keys whose state was dropped because the key state "
                                      "budget (engine.max_keys) was full.", "");
    d->checkpoints = fw_metrics_counter(m, "fraudwatch_checkpoints_total",
                                        "Checkpoints written and committed.", "");
    d->checkpoint_failures = fw_metrics_counter(m, "fraudwatch_checkpoint_failures_total",
                                                "Checkpoints skipped or failed.", "");
    d->checkpoint_seconds = fw_metrics_gauge(m, "fraudwatch_checkpoint_seconds",
                                             "Duration of the last checkpoint, from its cut to "
                                             "the commit of its offsets.", "");
    d->checkpoint_pause = fw_metrics_gauge(m, "fraudwatch_checkpoint_pause_seconds",
                                           "How long the last checkpoint held the stream "
                                           "(shard serialisation and the main loop's own "
                                           "work on it).", "");
    d->state_keys = fw_metrics_gauge(m, "fraudwatch_state_keys",
                                     "Keys with window, sequence or suppression state.", "");
    d->ruleset_version = fw_metrics_gauge(m, "fraudwatch_ruleset_version",
                                          "Version of the active rule set.", "");
    uint32_t n = fw_pipeline_workers(d->p);
    d->queue_depth = fw_xcalloc(n, sizeof *d->queue_depth);
    for (uint32_t i = 0; i < n; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "worker=\"%u\"", i);
        d->queue_depth[i] = fw_metrics_gauge(m, "fraudwatch_worker_queue_depth",
                                             "Batches waiting for the worker's shard.", labels);
    }
}

static fw_counter *malformed_counter(fw_driver *d, const char *reason)
{
    size_t n = sizeof d->malformed / sizeof d->malformed[0];
    for (size_t i = 0; i < n; i++) {
        if (d->malformed[i].reason == reason)
            return d->malformed[i].c;
        if (!d->malformed[i].reason) {
            char labels[256], esc[200];
            fw_metrics_escape_label(reason, esc, sizeof esc);
            snprintf(labels, sizeof labels, "reason=\"%s\"", esc);
            d->malformed[i].reason = reason;
            d->malformed[i].c = fw_metrics_counter(
                d->o.metrics, "fraudwatch_malformed_total",
                "Malformed events, by reason (each went to the dead-letter topic).", labels);
            return d->malformed[i].c;
        }
    }
    return d->malformed[n - 1].c;
}

static void count_alert(fw_driver *d, const fw_ruleset *rs, uint32_t rule)
{
    /* Alerts are rare next to events: a registry look-up each is fine, and
     * it stays right across rule reloads. */
    char labels[256], esc[160];
    fw_metrics_escape_label(fw_ruleset_rule_id(rs, rule), esc, sizeof esc);
    snprintf(labels, sizeof labels, "rule=\"%s\",severity=\"%s\"", esc,
             fw_ruleset_rule_severity(rs, rule));
    fw_counter_add(fw_metrics_counter(d->o.metrics, "fraudwatch_alerts_total",
                                      "Alerts produced, by rule and severity.", labels),
                   1);
}

static void update_gauges(fw_driver *d)
{
    if (!d->o.metrics)
        return;
    for (uint32_t i = 0; i < fw_pipeline_workers(d->p); i++)
        fw_gauge_set(d->queue_depth[i], fw_pipeline_queue_depth(d->p, i));
}

/* ---- outputs ---------------------------------------------------------------- */

static void origin_of(fw_driver *d, const fw_batch *b, uint32_t seq, fw_origin *from)
{
    const struct origin *o = &d->ring[fw_batch_tag(b, seq) & d->ring_mask];
    from->stream_name = d->src->stream_name ? d->src->stream_name(d->srcself, o->stream) : "";
    from->stream_number = d->src->stream_number ? d->src->stream_number(d->srcself, o->stream)
                                                : 0;
    from->offset = o->offset;
    from->ts_ms = o->ts;
    from->polled_ms = o->polled_ms;
    from->batched_ms = fw_batch_submitted_ms(b);
}

static void cut_retired(fw_driver *d, fw_batch *b);

/* Everything a finished batch caused: alerts, dead letters, positions. */
static void output(fw_driver *d, fw_batch *b)
{
    fw_alert_iter it;
    fw_alert_view a;
    fw_origin from;
    fw_batch_alerts_begin(b, &it);
    while (fw_batch_alerts_next(b, &it, &a)) {
        origin_of(d, b, a.seq, &from);
        d->sink->alert(d->sinkself, &a, &from);
        d->st.alerts++;
        if (d->o.metrics)
            count_alert(d, fw_batch_ruleset(b), a.rule);
    }
    for (uint32_t i = 0; i < fw_batch_malformed_count(b); i++) {
        uint32_t seq;
        const char *reason;
        fw_batch_malformed(b, i, &seq, &reason);
        origin_of(d, b, seq, &from);
        size_t len;
        const char *payload = fw_batch_msg(b, seq, &len);
        d->sink->dead_letter(d->sinkself, payload, len, reason, &from);
        d->st.malformed++;
        if (d->o.metrics)
            fw_counter_add(malformed_counter(d, reason), 1);
    }
    fw_rulestats_add(d->rstats, b);
    uint32_t n = fw_batch_count(b);
    if (d->src->done)
        for (uint32_t i = 0; i < n; i++) {
            const struct origin *o = &d->ring[fw_batch_tag(b, i) & d->ring_mask];
            d->src->done(d->srcself, o->stream, o->offset);
        }
    uint32_t ahead, behind;
    fw_batch_clock_outliers(b, &ahead, &behind);
    uint64_t faults = fw_batch_faults(b), evicted = fw_batch_evictions(b);
    d->st.messages += n;
    d->st.faults += faults;
    d->st.clock_ahead += ahead;
    d->st.clock_behind += behind;
    d->st.evictions += evicted;
    add(d->events, n);
    add(d->regex_faults, faults);
    add(d->clock_ahead, ahead);
    add(d->clock_behind, behind);
    add(d->evictions, evicted);
    if (evicted && d->o.metrics) {
        int64_t now = fw_mono_ms();
        if (!d->evict_logged_ms || now - d->evict_logged_ms >= 60000) {
            d->evict_logged_ms = now;
            fw_log(FW_LOG_WARN, "state", "key state budget reached: evicting the keys "
                                         "whose state ends first (engine.max_keys)",
                   "max_keys=%llu evicted_total=%llu",
                   (unsigned long long)d->o.pipeline.max_keys,
                   (unsigned long long)d->st.evictions);
        }
    }
    if (fw_batch_is_cut(b))
        cut_retired(d, b);
    fw_pipeline_recycle(d->p, b);
}

static void retire_ready(fw_driver *d, bool wait_all)
{
    fw_batch *b;
    while ((b = fw_pipeline_retire(d->p, wait_all)))
        output(d, b);
}

static void submit_current(fw_driver *d)
{
    if (d->cur) {
        fw_pipeline_submit(d->p, d->cur);
        d->cur = NULL;
    }
}

void fw_driver_flush(fw_driver *d)
{
    submit_current(d);
    retire_ready(d, true);
}

static void feed(fw_driver *d, const fw_msg *m)
{
    for (;;) {
        while (!d->cur && !(d->cur = fw_pipeline_acquire(d->p, d->rs)))
            output(d, fw_pipeline_retire(d->p, true));
        if (fw_batch_add(d->cur, m->data ? m->data : "", m->len, d->msgno))
            break;
        submit_current(d);
    }
    d->ring[d->msgno & d->ring_mask] = (struct origin){ m->stream, m->offset,
                                                        m->ts_ms > 0 ? m->ts_ms : 0,
                                                        d->burst_ms };
    d->msgno++;
    if (!d->unsaved_since) {
        d->unsaved_since = fw_mono_ms();
        atomic_store_explicit(&d->unsaved_pub, d->unsaved_since, memory_order_relaxed);
    }
}

void fw_driver_swap_rules(fw_driver *d, fw_ruleset *rs)
{
    submit_current(d);          /* filled under the old set */
    fw_ruleset_unref(d->rs);    /* batches in flight keep their own reference */
    d->rs = rs;
    if (d->ruleset_version)
        fw_gauge_set(d->ruleset_version, (double)fw_ruleset_version(rs));
}

const fw_ruleset *fw_driver_rules(const fw_driver *d) { return d->rs; }

void fw_driver_set_snoozes(fw_driver *d, fw_snoozes *s)
{
    submit_current(d);          /* filled under the old snoozes */
    fw_pipeline_set_snoozes(d->p, s);
}

size_t fw_driver_rule_tally_count(const fw_driver *d) { return fw_rulestats_count(d->rstats); }
const fw_rule_tally *fw_driver_rule_tally(const fw_driver *d, size_t i)
{
    return fw_rulestats_at(d->rstats, i);
}

/* ---- checkpoints ------------------------------------------------------------ */

static bool checkpointing(const fw_driver *d)
{
    return d->writer && d->src->positions && !d->checkpoints_over;
}

/* The file: magic, the source's positions, the pipeline's snapshot.  Runs
 * on the writer thread; the job is not touched by the loop meanwhile. */
static int fill_checkpoint(void *ctx, FILE *f, char *err, size_t errlen)
{
    fw_driver *d = ctx;
    if (fw_put_u64(f, CHECKPOINT_MAGIC)) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    if (d->src->write_positions(d->srcself, d->ck.pos, f, err, errlen) != 0)
        return -1;
    return fw_snapshot_write(d->ck.snap, f, err, errlen);
}

static void ck_clear(fw_driver *d)
{
    fw_snapshot_free(d->ck.snap);
    if (d->ck.pos)
        d->src->free_positions(d->ck.pos);
    d->ck = (struct ckpt){ .phase = CK_NONE };
}

static void ck_failed(fw_driver *d, const char *err)
{
    d->st.checkpoint_failures++;
    add(d->checkpoint_failures, 1);
    char q[1024];
    fw_log(FW_LOG_ERROR, "checkpoint", "failed", "error=\"%s\"", fw_log_quote(err, q, sizeof q));
    fw_ckpt_writer_reset(d->writer);
    ck_clear(d);
}

/* Marks the next batch as the cut and submits it (an empty one if nothing
 * is being filled).  false when no batch slot is free and `wait` is false. */
static bool cut(fw_driver *d, bool wait)
{
    int64_t t0 = fw_mono_ns();
    while (!d->cur && !(d->cur = fw_pipeline_acquire(d->p, d->rs))) {
        if (!wait)
            return false;
        output(d, fw_pipeline_retire(d->p, true));
    }
    if (!fw_batch_set_cut(d->cur))
        return false;
    d->ck.phase = CK_CUT;
    d->ck.cut_msgno = d->msgno;
    d->ck.t_cut = t0;
    submit_current(d);
    d->ck.main_ns += fw_mono_ns() - t0;
    d->last_cut_ms = fw_mono_ms();
    return true;
}

/* The cut batch is retired: everything before it is output, nothing after
 * it is, so the positions now are the cut's; the snapshot goes to disk. */
static void cut_retired(fw_driver *d, fw_batch *b)
{
    int64_t t0 = fw_mono_ns();
    fw_snapshot *snap = fw_batch_take_snapshot(b);
    if (d->ck.phase != CK_CUT) {    /* teardown after a fatal error */
        fw_snapshot_free(snap);
        return;
    }
    d->ck.snap = snap;
    d->ck.pos = d->src->positions(d->srcself);
    d->ck.mark = d->sink->mark ? d->sink->mark(d->sinkself) : 0;
    d->ck.phase = CK_SHARDS;
    d->ck.main_ns += fw_mono_ns() - t0;
}

/* Every shard is in: to the writer. */
static void ck_write(fw_driver *d)
{
    d->ck.phase = CK_WRITING;
    if (fw_ckpt_writer_start(d->writer, fill_checkpoint, d) != 0)
        ck_failed(d, "the checkpoint writer is busy");
}

static bool delivered(fw_driver *d, uint64_t mark)
{
    return !d->sink->acked || d->sink->acked(d->sinkself, mark);
}

/* The file is in place: commit its positions (waiting until `until_ms`),
 * count it, say so.  0, or -1 if the commit failed (`why` says what
 * happened, if not NULL). */
static int ck_finish(fw_driver *d, int64_t until_ms, char *why, size_t whylen)
{
    int64_t t0 = fw_mono_ns();
    char err[512];
    int rc = d->src->commit ? d->src->commit(d->srcself, d->ck.pos, until_ms, err, sizeof err)
                            : 0;
    if (rc != 0 && why)
        snprintf(why, whylen, "the checkpoint file is in place, but its positions were not "
                              "committed by the deadline: %s", err);
    int64_t t1 = fw_mono_ns();
    d->ck.main_ns += t1 - t0;
    d->checkpointed = d->ck.cut_msgno;
    if (rc == 0) {
        /* Everything before the cut is saved; what came after it waits
         * for the next one (and has waited since the cut at most). */
        d->unsaved_since = d->msgno > d->ck.cut_msgno ? d->ck.t_cut / 1000000 : 0;
        atomic_store_explicit(&d->unsaved_pub, d->unsaved_since, memory_order_relaxed);
    }
    double listing = fw_snapshot_pause_seconds(d->ck.snap);
    double encode = fw_snapshot_work_seconds(d->ck.snap);
    double pause = (double)d->ck.main_ns / 1e9 + (d->ck.sync ? 0 : listing);
    d->st.checkpoints++;
    add(d->checkpoints, 1);
    if (d->o.metrics) {
        /* The units of a scale-out daemon are drivers sharing one
         * registry: each adds its own change, so the gauge is their sum
         * (and a unit that ends takes its part away, fw_driver_free). */
        double keys = (double)fw_snapshot_keys(d->ck.snap);
        fw_gauge_add(d->state_keys, keys - d->keys_shown);
        d->keys_shown = keys;
        fw_gauge_set(d->checkpoint_seconds, (double)(t1 - d->ck.t_cut) / 1e9);
        fw_gauge_set(d->checkpoint_pause, pause);
    }
    /* ms= is cut to commit (the stream keeps going meanwhile, except in a
     * synchronous one); pause_ms= how long the stream stood still at the
     * cut; encode_ms= the longest shard's encoding, spread over batches. */
    fw_log(FW_LOG_DEBUG, "checkpoint", "written",
           "mode=%s keys=%zu early=%zu bytes=%zu pause_ms=%.1f encode_ms=%.1f "
           "write_ms=%.1f publish_ms=%.1f commit_ms=%.1f ms=%lld",
           d->ck.sync ? "sync" : "background", fw_snapshot_keys(d->ck.snap),
           fw_snapshot_early(d->ck.snap), fw_snapshot_bytes(d->ck.snap), pause * 1e3,
           encode * 1e3, fw_ckpt_writer_write_seconds(d->writer) * 1e3,
           fw_ckpt_writer_publish_seconds(d->writer) * 1e3, (double)(t1 - t0) / 1e6,
           (long long)((t1 - d->ck.t_cut) / 1000000));
    fw_ckpt_writer_reset(d->writer);
    ck_clear(d);
    return rc;
}

/* Moves the checkpoint in flight on, never waiting: publish once written
 * and delivered, commit once published. */
static void ck_poll(fw_driver *d)
{
    char err[1024];
    switch (d->ck.phase) {
    case CK_NONE:
    case CK_CUT:
        return;
    case CK_SHARDS:
        if (fw_snapshot_complete(d->ck.snap))
            ck_write(d);
        return;
    case CK_WRITING:
        switch (fw_ckpt_writer_state(d->writer, err, sizeof err)) {
        case FW_CKPT_FAILED:
            ck_failed(d, err);
            return;
        case FW_CKPT_WRITTEN:
            if (!delivered(d, d->ck.mark))
                return;
            fw_ckpt_writer_publish(d->writer);
            d->ck.phase = CK_PUBLISHING;
            return;
        default:
            return;
        }
    case CK_PUBLISHING:
        switch (fw_ckpt_writer_state(d->writer, err, sizeof err)) {
        case FW_CKPT_FAILED:
            ck_failed(d, err);
            return;
        case FW_CKPT_DONE:
            ck_finish(d, -1, NULL, 0);  /* a failed commit is the source's to retry */
            return;
        default:
            return;
        }
    }
}

/* Every checkpoint_interval: cut, and let the rest happen in the background. */
static void ck_periodic(fw_driver *d)
{
    if (d->ck.phase != CK_NONE)
        return;                 /* the previous one is still on its way */
    if (d->msgno == d->checkpointed) {
        /* Nothing consumed since the last one: state and positions are
         * what it holds (an idle stream). */
        d->last_cut_ms = fw_mono_ms();
        return;
    }
    cut(d, false);              /* no free slot: next time round */
}

int fw_driver_checkpoint(fw_driver *d, int64_t until_ms, volatile sig_atomic_t *cut_short,
                         char *why, size_t whylen)
{
    char err[1024];
    if (!checkpointing(d)) {
        snprintf(why, whylen, "no checkpoints here");
        return -1;
    }
    /* A periodic one in flight: finish it if it is already in place, else
     * drop it unpublished — this one supersedes it. */
    if (d->ck.phase == CK_CUT) {
        submit_current(d);
        retire_ready(d, true);
    }
    if (d->ck.phase == CK_SHARDS)
        ck_clear(d);            /* the workers finish it and let go */
    if (d->ck.phase != CK_NONE) {
        enum fw_ckpt_state st = fw_ckpt_writer_wait(d->writer, err, sizeof err);
        if (d->ck.phase == CK_PUBLISHING && st == FW_CKPT_DONE) {
            ck_finish(d, until_ms, NULL, 0);   /* superseded by this one's commit */
        } else {
            fw_ckpt_writer_reset(d->writer);
            ck_clear(d);
        }
    }
    if (d->msgno == d->checkpointed) {
        /* Nothing consumed since the last one (an idle stream, or a
         * revocation at shutdown). */
        d->last_cut_ms = fw_mono_ms();
        return 0;
    }
    if (!cut(d, true)) {
        ck_failed(d, "out of memory marking the cut");
        snprintf(why, whylen, "out of memory marking the cut");
        return -1;
    }
    d->ck.sync = true;
    retire_ready(d, true);      /* the cut batch is retired: positions, mark */
    if (d->ck.phase != CK_SHARDS) {
        snprintf(why, whylen, "the cut was lost (see the errors above)");
        return -1;
    }
    fw_pipeline_snapshot_wait(d->p, d->ck.snap);
    ck_write(d);
    if (d->ck.phase != CK_WRITING) {
        snprintf(why, whylen, "the checkpoint writer is busy");
        return -1;
    }
    int64_t left = until_ms - fw_mono_ms();
    if (d->sink->drain && d->sink->drain(d->sinkself, cut_short, left > 0 ? (int)left : 0) != 0) {
        /* Not all delivered: the last checkpoint stays the truth. */
        unsigned long long pending =
            d->sink->pending ? (unsigned long long)d->sink->pending(d->sinkself) : 0;
        const char *fatal = d->sink->fatal ? d->sink->fatal(d->sinkself) : NULL;
        if (fatal)
            snprintf(why, whylen, "%llu alerts not acknowledged: %s", pending, fatal);
        else if (cut_short && *cut_short)
            snprintf(why, whylen, "%llu alerts not acknowledged when a second signal cut "
                                  "the wait short", pending);
        else
            snprintf(why, whylen, "%llu alerts not acknowledged by the deadline", pending);
        d->st.checkpoint_failures++;
        add(d->checkpoint_failures, 1);
        fw_log(FW_LOG_WARN, "checkpoint", "skipped: alerts not yet acknowledged",
               "pending=%llu", pending);
        fw_ckpt_writer_reset(d->writer);
        ck_clear(d);
        return -1;
    }
    if (fw_ckpt_writer_wait(d->writer, err, sizeof err) == FW_CKPT_WRITTEN) {
        fw_ckpt_writer_publish(d->writer);
        d->ck.phase = CK_PUBLISHING;
    }
    if (fw_ckpt_writer_wait(d->writer, err, sizeof err) != FW_CKPT_DONE) {
        snprintf(why, whylen, "%s", err);
        ck_failed(d, err);
        return -1;
    }
    d->ck.main_ns = fw_mono_ns() - d->ck.t_cut;   /* it all stood still */
    return ck_finish(d, until_ms, why, whylen);
}

void fw_driver_end_checkpoints(fw_driver *d)
{
    d->checkpoints_over = true;
    if (d->writer) {
        fw_ckpt_writer_free(d->writer);   /* an unpublished checkpoint is dropped */
        d->writer = NULL;
    }
    ck_clear(d);
}

int fw_driver_restore(fw_driver *d, char *err, size_t errlen)
{
    if (!d->o.state_dir || !d->src->read_positions)
        return 0;
    char path[4096];
    FILE *f;
    if (d->o.ckpt_store) {
        /* The store finds its newest complete checkpoint (ckpt_store.h). */
        const fw_ckpt_store_ops *ops = d->o.ckpt_store;
        if (ops->open_latest(d->o.ckpt_store_self, &f, path, sizeof path, err, errlen) != 0)
            return -1;
        if (!f)
            return 0;
    } else {
        snprintf(path, sizeof path, "%s/%s", d->o.state_dir,
                 d->o.checkpoint_file ? d->o.checkpoint_file : "checkpoint");
        f = fopen(path, "rb");
        if (!f) {
            if (errno == ENOENT)
                return 0;
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
    }
    uint64_t magic;
    int rc = -1;
    if (fw_get_u64(f, &magic) || magic != CHECKPOINT_MAGIC) {
        snprintf(err, errlen, "%s: not a fraudwatch checkpoint (move it away to "
                              "start without state)", path);
        goto out;
    }
    if (d->src->read_positions(d->srcself, f, path, err, errlen) != 0)
        goto out;
    if (fw_pipeline_load(d->p, f, err, errlen) != 0)
        goto out;
    fw_log(FW_LOG_INFO, "checkpoint", "state loaded", "path=%s keys=%zu", path,
           fw_pipeline_keys(d->p));
    rc = 0;
out:
    fclose(f);
    return rc;
}

/* ---- the loop --------------------------------------------------------------- */

static const char *fatal_now(fw_driver *d)
{
    const char *f = d->sink->fatal ? d->sink->fatal(d->sinkself) : NULL;
    if (!f && d->src->fatal)
        f = d->src->fatal(d->srcself);
    return f;
}

int fw_driver_run(fw_driver *d, volatile sig_atomic_t *stop)
{
    while (!stop || !*stop) {
        if (d->o.tick)
            d->o.tick(d->o.tick_ctx);
        bool busy = d->cur && fw_batch_count(d->cur) > 0;
        fw_msg m;
        int got = d->src->next(d->srcself, &m, busy ? 0 : 20);
        if (got == FW_NEXT_MSG)
            d->burst_ms = fw_wall_ms();
        /* A burst of what is there, then the housekeeping below (retiring,
         * delivery reports, the clock) once for the burst, not per message. */
        for (int fed = 0; got == FW_NEXT_MSG;) {
            feed(d, &m);
            if (++fed == FEED_BURST)
                break;
            got = d->src->next(d->srcself, &m, 0);
        }
        if (got == FW_NEXT_END) {
            fw_driver_flush(d);
            return 0;
        }
        if (got != FW_NEXT_MSG && d->cur && fw_batch_count(d->cur) > 0) {
            /* Nothing more right now: let the workers have what we have. */
            submit_current(d);
        }
        retire_ready(d, false);
        if (d->sink->tick)
            d->sink->tick(d->sinkself);
        if (d->src->tick)
            d->src->tick(d->srcself);

        const char *fatal = fatal_now(d);
        if (!fatal && got == FW_NEXT_FATAL)
            fatal = "the source failed";
        if (fatal) {
            snprintf(d->fatal, sizeof d->fatal, "%s", fatal);
            return -1;
        }
        int64_t now = fw_mono_ms();
        if (now - d->last_gauges_ms >= 1000) {
            update_gauges(d);
            d->last_gauges_ms = now;
        }
        if (checkpointing(d)) {
            if (now - d->last_cut_ms >= d->o.checkpoint_interval_ms)
                ck_periodic(d);
            ck_poll(d);
        }
    }
    return 0;
}

const char *fw_driver_fatal(const fw_driver *d) { return d->fatal; }

int64_t fw_driver_unsaved_ms(const fw_driver *d)
{
    int64_t since = atomic_load_explicit(&((fw_driver *)d)->unsaved_pub, memory_order_relaxed);
    return since ? fw_mono_ms() - since : 0;
}
const fw_driver_stats *fw_driver_stats_get(const fw_driver *d) { return &d->st; }
fw_pipeline *fw_driver_pipeline(fw_driver *d) { return d->p; }

/* ---- life ------------------------------------------------------------------- */

/* One process per state directory: two daemons checkpointing into one
 * directory overwrite each other's files (issue 10: rename errors, then a
 * checkpoint holding only one daemon's keys).  flock() on state_dir/lock,
 * held for the driver's life and released by the kernel if the process
 * dies; the holder's pid is written in it for the message. */
static int lock_state_dir(fw_driver *d, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            snprintf(err, errlen, "state.dir %s is in use by another fraudwatch process%s%s%s: "
                                  "give each daemon a state.dir of its own",
                     dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        else
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
        return -1;
    }
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
        /* The pid is only for the message; the lock is what counts. */
    }
    d->lock_fd = fd;
    return 0;
}

fw_driver *fw_driver_new(const fw_driver_opts *o, char *err, size_t errlen)
{
    fw_driver *d = fw_xcalloc(1, sizeof *d);
    d->o = *o;
    d->src = o->source;
    d->srcself = o->source_self;
    d->sink = o->sink;
    d->sinkself = o->sink_self;
    d->p = fw_pipeline_new(&o->pipeline, err, errlen);
    if (!d->p) {
        free(d);
        return NULL;
    }
    d->rs = fw_ruleset_ref(o->rules);
    fw_pipeline_set_snoozes(d->p, o->snoozes);
    d->rstats = fw_rulestats_new(o->metrics);
    size_t cap = 1;
    while (cap < fw_pipeline_capacity(d->p))
        cap <<= 1;
    d->ring = fw_xcalloc(cap, sizeof *d->ring);
    d->ring_mask = cap - 1;
    if (o->metrics) {
        register_metrics(d, o->metrics);
        fw_gauge_set(d->ruleset_version, (double)fw_ruleset_version(d->rs));
    }
    d->lock_fd = -1;
    if (o->state_dir && o->source->positions) {
        if (mkdir(o->state_dir, 0750) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create state.dir %s: %s", o->state_dir,
                     strerror(errno));
            fw_driver_free(d);
            return NULL;
        }
        if (lock_state_dir(d, o->state_dir, err, errlen) != 0) {
            fw_driver_free(d);
            return NULL;
        }
        d->writer = o->ckpt_store
                        ? fw_ckpt_writer_new_store(o->ckpt_store, o->ckpt_store_self)
                        : fw_ckpt_writer_new(o->state_dir,
                                             o->checkpoint_file ? o->checkpoint_file
                                                                : "checkpoint");
        if (!d->writer) {
            snprintf(err, errlen, "cannot start the checkpoint writer thread");
            fw_driver_free(d);
            return NULL;
        }
    }
    d->last_cut_ms = fw_mono_ms();
    return d;
}

static void driver_free(fw_driver *d, bool at_exit)
{
    if (!d)
        return;
    if (d->p)
        fw_driver_flush(d);
    fw_driver_end_checkpoints(d);
    if (d->o.metrics)
        fw_gauge_add(d->state_keys, -d->keys_shown);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    if (at_exit)
        fw_pipeline_free_at_exit(d->p);
    else
        fw_pipeline_free(d->p);
    fw_ruleset_unref(d->rs);
    fw_rulestats_free(d->rstats);
    free(d->ring);
    free(d->queue_depth);
    free(d);
}

void fw_driver_free(fw_driver *d) { driver_free(d, false); }
void fw_driver_free_at_exit(fw_driver *d) { driver_free(d, true); }
