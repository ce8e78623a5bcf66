/* daemon.c — `fraudwatch run`: Kafka in, engine, Kafka out, around the clock.
 *
 * Owns the main thread's loop and the checkpoints.  The main thread is the
 * pipeline's feeder: it polls the consumer, packs messages into batches,
 * submits them to the workers, retires finished batches in order — alerts
 * to the alert topic, malformed events to the dead-letter topic — and
 * serves the producer's delivery reports.  Nothing here runs per event on
 * another thread, and nothing takes a lock per event.
 *
 * At-least-once, with window state, through checkpoints: a checkpoint is
 * the state of every key together with the partition positions it
 * corresponds to, in one file.  After kill -9 the daemon reloads the last
 * checkpoint and resumes each partition at the checkpoint's position: the
 * state is exactly the state those events built, so every alert of an
 * uninterrupted run is produced again (alerts after the checkpoint are
 * produced twice, with the same alert_id).
 *
 * Every checkpoint_interval the stream is *cut* without stopping it
 * (pipeline.c): the next batch is marked; each worker, right after applying
 * it, lists its shard's items and encodes them into memory over the next
 * batches (an item about to change first).  When the main loop retires the
 * cut batch it takes the snapshot, the positions of everything retired so
 * far (exactly the cut) and a delivery mark (kafka_out.c); once every
 * shard is in, it hands the snapshot to the writer thread (snapshot.c),
 * which writes and fsyncs `checkpoint.tmp`.  The loop carries on.  Once
 * the file is durable AND every alert and dead letter produced before the
 * cut is acknowledged, the writer renames it into place, and only then are
 * the positions committed to the group.  Both conditions come before the rename because the file
 * in place is what a restart resumes from: resuming after a cut whose
 * alerts were never delivered would lose them.  One checkpoint is in
 * flight at a time; the stream stands still only while the workers list
 * their items, and for a slice of encoding per batch
 * (fraudwatch_checkpoint_pause_seconds).
 *
 * A revocation and SIGTERM checkpoint synchronously before letting go (a
 * hand-over must be exact): the same cut, then every batch retired, every
 * delivery awaited, the file written and published, the offsets committed.
 * A periodic checkpoint still in flight then is dropped unpublished (or
 * finished, if it is already in place).
 *
 * The shutdown (SIGTERM, SIGINT, a fatal error, a failed start) ends within
 * shutdown.timeout_s + SHUTDOWN_GRACE_MS, whatever the broker or the disk
 * do, because a daemon that hangs is worse than one that exits uncleanly:
 * the checkpoint on disk stays what a restart resumes from.  The final
 * checkpoint's waits (acknowledgements, the offset commit) share one
 * deadline, shutdown.timeout_s after the signal; leaving the consumer
 * group gets CLOSE_WAIT_MS more.  The exit status is 0 only if the final
 * checkpoint was written and its offsets committed; otherwise an error line
 * says why ("final checkpoint failed").  What cannot be bounded from here
 * (a disk that does not answer fsync, librdkafka inside rd_kafka_destroy)
 * is bounded by a watchdog thread, armed by the first signal, which logs
 * what the shutdown was doing and _exit()s non-zero once the grace is up.
 *
 * Teardown order matters: once the final checkpoint has been attempted
 * (or skipped, after a fatal error), nothing checkpoints any more, so the
 * revocation that closing the consumer runs does not write a second one;
 * and the consumer is closed before the checkpoint writer is freed.  The
 * reverse order (issue 10) let that revocation start a checkpoint on the
 * freed writer: a heap-use-after-free under ASan, and in the plain build a
 * spin at 100 % CPU for good — glibc had marked the freed writer's mutex
 * destroyed, so pthread_cond_wait() returned EINVAL at once, and the state
 * it waited on (WRITING, set on the freed memory) had no thread left to
 * change it.
 *
 * Message provenance (partition, offset, timestamp) lives in a ring indexed
 * by the batch tag, so the librdkafka message is freed as soon as its bytes
 * are copied into a batch. */
#include "fraudwatch/daemon.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "snapshot.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/ruleset.h"
#include "kafka.h"
#include "reload.h"

#define CHECKPOINT_FILE "checkpoint"
#define CHECKPOINT_MAGIC UINT64_C(0x3130545043574633) /* "3FWCPT01" */

/* How long the shutdown may take past shutdown.timeout_s before the
 * watchdog ends the process (docs/faults.md): leaving the consumer group
 * (CLOSE_WAIT_MS of it), then stopping the writer (a local disk), the rule
 * reloader (a Redis call in flight ends within its own timeout), the
 * producer (rd_kafka_destroy() does not wait for the broker) and the
 * workers. */
#define SHUTDOWN_GRACE_MS 10000
#define CLOSE_WAIT_MS 5000

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t hard_stop;
static volatile sig_atomic_t hup_requested;

/* The watchdog's arming, done from the signal handler: clock_gettime() and
 * sem_post() are async-signal-safe, and so is a lock-free atomic.  Never
 * destroyed: a signal may still come while the process exits. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "stop_at_ms is set in a signal handler");
static atomic_llong stop_at_ms;   /* fw_mono_ms() when the stop began; 0: not yet */
static sem_t wd_arm;              /* posted when the stop begins */
static sem_t wd_done;             /* posted when fw_daemon_run() is done */

static void arm_watchdog(void)
{
    long long none = 0;
    atomic_compare_exchange_strong(&stop_at_ms, &none, (long long)fw_mono_ms());
    sem_post(&wd_arm);
}

static void on_signal(int sig)
{
    if (sig == SIGHUP) {
        hup_requested = 1;
        return;
    }
    if (stop_requested)
        hard_stop = 1;
    else
        arm_watchdog();
    stop_requested = 1;
}

/* How the final checkpoint went, for the watchdog's last words. */
enum { FINAL_NOT_YET, FINAL_DONE, FINAL_FAILED, FINAL_NONE /* fatal error, failed start */ };

struct src {
    uint32_t part;
    int64_t offset;
    int64_t ts;              /* message timestamp (ms), 0 if none */
};

/* The checkpoint in flight (one at a time). */
enum ck_phase {
    CK_NONE,
    CK_CUT,          /* cut batch submitted, not retired yet */
    CK_SHARDS,       /* retired; the workers are still encoding their shards */
    CK_WRITING,      /* snapshot with the writer; waiting for it and the acks */
    CK_PUBLISHING,   /* durable and acknowledged: being renamed into place */
};

struct ckpt {
    enum ck_phase phase;
    bool sync;                /* revocation / shutdown: no writer start in output() */
    uint64_t cut_msgno;       /* msgno at the cut: messages before it are in */
    uint64_t mark;            /* fw_out_mark() at the cut */
    fw_snapshot *snap;
    rd_kafka_topic_partition_list_t *pos;
    const char *group;
    int64_t t_cut;            /* fw_mono_ns() when cut */
    int64_t main_ns;          /* main loop time spent on it */
};

struct daemon {
    const fw_settings *s;
    fw_ruleset *rs;
    fw_pipeline *p;
    fw_in *in;
    fw_out *out;
    fw_metrics *m;
    fw_http *http;
    fw_reloader *reloader;

    fw_batch *cur;           /* being filled */
    uint64_t msgno;          /* tag of the next message */
    uint64_t checkpointed;   /* msgno at the last checkpoint */
    struct ckpt ck;
    fw_ckpt_writer *writer;
    struct src *ring;        /* provenance by tag */
    size_t ring_mask;

    /* metrics */
    fw_counter *events;
    fw_counter *regex_faults;
    fw_counter *clock_ahead, *clock_behind;
    fw_counter *evictions;
    int64_t evict_logged_ms;     /* last "state budget reached" warning */
    fw_counter *checkpoints;
    fw_counter *checkpoint_failures;
    fw_gauge *checkpoint_seconds;
    fw_gauge *checkpoint_pause;
    fw_gauge *state_keys;
    fw_gauge *ruleset_version;
    fw_gauge **queue_depth;
    struct { const char *reason; fw_counter *c; } malformed[16];

    atomic_llong heartbeat_ms;
    char fatal[512];
    struct timespec last_checkpoint;

    /* the shutdown */
    bool checkpoints_over;        /* final one attempted: a revocation does not */
    pthread_t watchdog;
    bool watchdog_started;
    _Atomic(const char *) step;   /* what the shutdown is doing, for the watchdog */
    atomic_int final;             /* FINAL_* */
    atomic_int exit_status;       /* the watchdog's, if it has to end the process */
};

static bool healthy(void *ctx, char *reason, size_t len)
{
    struct daemon *d = ctx;
    int64_t age = fw_mono_ms() - atomic_load(&d->heartbeat_ms);
    if (age > 10000) {
        snprintf(reason, len, "main loop stalled for %lld ms", (long long)age);
        return false;
    }
    snprintf(reason, len, "ok");
    return true;
}

static fw_counter *malformed_counter(struct daemon *d, const char *reason)
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
                d->m, "fraudwatch_malformed_total",
                "Malformed events, by reason (each went to the dead-letter topic).",
                labels);
            return d->malformed[i].c;
        }
    }
    return d->malformed[n - 1].c;
}

static void count_alert(struct daemon *d, const fw_ruleset *rs, uint32_t rule)
{
    /* Alerts are rare next to events: a registry look-up each is fine, and
     * it stays right across rule reloads. */
    char labels[256], esc[160];
    fw_metrics_escape_label(fw_ruleset_rule_id(rs, rule), esc, sizeof esc);
    snprintf(labels, sizeof labels, "rule=\"%s\",severity=\"%s\"", esc,
             fw_ruleset_rule_severity(rs, rule));
    fw_counter_add(fw_metrics_counter(d->m, "fraudwatch_alerts_total",
                                      "Alerts produced, by rule and severity.", labels),
                   1);
}

static void cut_retired(struct daemon *d, fw_batch *b);

/* Everything a finished batch caused: alerts, dead letters, positions. */
static void output(struct daemon *d, fw_batch *b)
{
    fw_alert_iter it;
    fw_alert_view a;
    fw_batch_alerts_begin(b, &it);
    while (fw_batch_alerts_next(b, &it, &a)) {
        const struct src *sr = &d->ring[fw_batch_tag(b, a.seq) & d->ring_mask];
        fw_out_alert(d->out, a.json, a.len, a.subject, a.subject_len, sr->ts);
        count_alert(d, fw_batch_ruleset(b), a.rule);
    }
    for (uint32_t i = 0; i < fw_batch_malformed_count(b); i++) {
        uint32_t seq;
        const char *reason;
        fw_batch_malformed(b, i, &seq, &reason);
        const struct src *sr = &d->ring[fw_batch_tag(b, seq) & d->ring_mask];
        size_t len;
        const char *payload = fw_batch_msg(b, seq, &len);
        fw_out_dead_letter(d->out, payload, len, NULL, 0, reason,
                           fw_in_topic(d->in, sr->part),
                           fw_in_partition(d->in, sr->part), sr->offset);
        fw_counter_add(malformed_counter(d, reason), 1);
    }
    uint32_t n = fw_batch_count(b);
    for (uint32_t i = 0; i < n; i++) {
        const struct src *sr = &d->ring[fw_batch_tag(b, i) & d->ring_mask];
        fw_in_done(d->in, sr->part, sr->offset);
    }
    fw_counter_add(d->events, n);
    fw_counter_add(d->regex_faults, fw_batch_faults(b));
    uint32_t ahead, behind;
    fw_batch_clock_outliers(b, &ahead, &behind);
    fw_counter_add(d->clock_ahead, ahead);
    fw_counter_add(d->clock_behind, behind);
    uint64_t evicted = fw_batch_evictions(b);
    if (evicted) {
        fw_counter_add(d->evictions, evicted);
        int64_t now = fw_mono_ms();
        if (!d->evict_logged_ms || now - d->evict_logged_ms >= 60000) {
            d->evict_logged_ms = now;
            fw_log(FW_LOG_WARN, "state", "key state budget reached: evicting the keys "
                                         "whose state ends first (engine.max_keys)",
                   "max_keys=%lld evicted_total=%llu", (long long)d->s->max_keys,
                   (unsigned long long)fw_counter_get(d->evictions));
        }
    }
    if (fw_batch_is_cut(b))
        cut_retired(d, b);
    fw_pipeline_recycle(d->p, b);
}

static void retire_ready(struct daemon *d, bool wait_all)
{
    fw_batch *b;
    while ((b = fw_pipeline_retire(d->p, wait_all)))
        output(d, b);
}

static void submit_current(struct daemon *d)
{
    if (d->cur) {
        fw_pipeline_submit(d->p, d->cur);
        d->cur = NULL;
    }
}

/* ---- checkpoints ---------------------------------------------------------- */

static int64_t fw_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The file: magic, group, positions, then the pipeline's snapshot.  Runs
 * on the writer thread; the job is not touched by the loop meanwhile. */
static int fill_checkpoint(void *ctx, FILE *f, char *err, size_t errlen)
{
    const struct ckpt *ck = ctx;
    const rd_kafka_topic_partition_list_t *pos = ck->pos;
    if (fw_put_u64(f, CHECKPOINT_MAGIC) ||
        fw_put_bytes(f, ck->group, (uint32_t)strlen(ck->group)) ||
        fw_put_u64(f, (uint64_t)pos->cnt))
        goto io;
    for (int i = 0; i < pos->cnt; i++)
        if (fw_put_bytes(f, pos->elems[i].topic, (uint32_t)strlen(pos->elems[i].topic)) ||
            fw_put_u64(f, (uint64_t)pos->elems[i].partition) ||
            fw_put_u64(f, (uint64_t)pos->elems[i].offset))
            goto io;
    return fw_snapshot_write(ck->snap, f, err, errlen);
io:
    snprintf(err, errlen, "%s", strerror(errno));
    return -1;
}

static void ck_clear(struct daemon *d)
{
    fw_snapshot_free(d->ck.snap);
    if (d->ck.pos)
        rd_kafka_topic_partition_list_destroy(d->ck.pos);
    d->ck = (struct ckpt){ .phase = CK_NONE };
}

static void ck_failed(struct daemon *d, const char *err)
{
    fw_counter_add(d->checkpoint_failures, 1);
    char q[1024];
    fw_log(FW_LOG_ERROR, "checkpoint", "failed", "error=\"%s\"",
           fw_log_quote(err, q, sizeof q));
    fw_ckpt_writer_reset(d->writer);
    ck_clear(d);
}

/* Marks the next batch as the cut and submits it (an empty one if nothing
 * is being filled).  false when no batch slot is free and `wait` is false. */
static bool cut(struct daemon *d, bool wait)
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
    d->ck.group = d->s->group_id;
    d->ck.t_cut = t0;
    submit_current(d);
    d->ck.main_ns += fw_mono_ns() - t0;
    clock_gettime(CLOCK_MONOTONIC, &d->last_checkpoint);
    return true;
}

/* The cut batch is retired: everything before it is output, nothing after
 * it is, so the positions now are the cut's; the snapshot goes to disk. */
static void cut_retired(struct daemon *d, fw_batch *b)
{
    int64_t t0 = fw_mono_ns();
    fw_snapshot *snap = fw_batch_take_snapshot(b);
    if (d->ck.phase != CK_CUT) {    /* teardown after a fatal error */
        fw_snapshot_free(snap);
        return;
    }
    d->ck.snap = snap;
    d->ck.pos = fw_in_positions(d->in);
    d->ck.mark = fw_out_mark(d->out);
    d->ck.phase = CK_SHARDS;
    d->ck.main_ns += fw_mono_ns() - t0;
}

/* Every shard is in: to the writer. */
static void ck_write(struct daemon *d)
{
    d->ck.phase = CK_WRITING;
    if (fw_ckpt_writer_start(d->writer, fill_checkpoint, &d->ck) != 0)
        ck_failed(d, "the checkpoint writer is busy");
}

/* The file is in place: commit its positions (waiting until `until_ms`,
 * see fw_in_commit), count it, say so.  0, or -1 if the commit failed
 * (kafka_in.c retries it; `why` says what happened, if not NULL). */
static int ck_finish(struct daemon *d, int64_t until_ms, char *why, size_t whylen)
{
    int64_t t0 = fw_mono_ns();
    char err[512];
    int rc = fw_in_commit(d->in, d->ck.pos, until_ms, err, sizeof err);
    if (rc != 0 && why)
        snprintf(why, whylen, "the checkpoint file is in place, but its offsets were not "
                              "committed within shutdown.timeout_s = %u s: %s",
                 d->s->shutdown_timeout_s, err);
    int64_t t1 = fw_mono_ns();
    d->ck.main_ns += t1 - t0;
    d->checkpointed = d->ck.cut_msgno;
    double listing = fw_snapshot_pause_seconds(d->ck.snap);
    double encode = fw_snapshot_work_seconds(d->ck.snap);
    double pause = (double)d->ck.main_ns / 1e9 + (d->ck.sync ? 0 : listing);
    fw_counter_add(d->checkpoints, 1);
    fw_gauge_set(d->state_keys, (double)fw_snapshot_keys(d->ck.snap));
    fw_gauge_set(d->checkpoint_seconds, (double)(t1 - d->ck.t_cut) / 1e9);
    fw_gauge_set(d->checkpoint_pause, pause);
    /* ms= is cut to commit (the stream keeps going meanwhile, except in a
     * synchronous one); pause_ms= how long the stream stood still at the
     * cut; encode_ms= the longest shard's encoding, spread over batches. */
    fw_log(FW_LOG_DEBUG, "checkpoint", "written",
           "mode=%s partitions=%d keys=%zu early=%zu bytes=%zu pause_ms=%.1f "
           "encode_ms=%.1f write_ms=%.1f publish_ms=%.1f commit_ms=%.1f ms=%lld",
           d->ck.sync ? "sync" : "background", d->ck.pos->cnt,
           fw_snapshot_keys(d->ck.snap), fw_snapshot_early(d->ck.snap),
           fw_snapshot_bytes(d->ck.snap), pause * 1e3,
           encode * 1e3, fw_ckpt_writer_write_seconds(d->writer) * 1e3,
           fw_ckpt_writer_publish_seconds(d->writer) * 1e3, (double)(t1 - t0) / 1e6,
           (long long)((t1 - d->ck.t_cut) / 1000000));
    fw_ckpt_writer_reset(d->writer);
    ck_clear(d);
    return rc;
}

/* Moves the checkpoint in flight on, never waiting: publish once written
 * and acknowledged, commit once published. */
static void ck_poll(struct daemon *d)
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
            if (!fw_out_acked(d->out, d->ck.mark))
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
            ck_finish(d, -1, NULL, 0);  /* gives up on SIGTERM; retried by kafka_in.c */
            return;
        default:
            return;
        }
    }
}

static int read_checkpoint(struct daemon *d, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", d->s->state_dir, CHECKPOINT_FILE);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    uint64_t magic, n;
    char *group = NULL;
    uint32_t glen;
    int rc = -1;
    if (fw_get_u64(f, &magic) || magic != CHECKPOINT_MAGIC ||
        fw_get_bytes(f, &group, &glen, 4096) || fw_get_u64(f, &n) || n > 100000) {
        snprintf(err, errlen, "%s: not a fraudwatch checkpoint (move it away to "
                              "start without state)", path);
        goto out;
    }
    if (strcmp(group, d->s->group_id) != 0) {
        snprintf(err, errlen, "%s belongs to group \"%s\", not \"%s\" (point "
                              "state.dir elsewhere or remove the file)",
                 path, group, d->s->group_id);
        goto out;
    }
    for (uint64_t i = 0; i < n; i++) {
        char *topic;
        uint32_t tlen;
        uint64_t part, off;
        if (fw_get_bytes(f, &topic, &tlen, 4096) || fw_get_u64(f, &part) ||
            fw_get_u64(f, &off)) {
            snprintf(err, errlen, "%s: truncated", path);
            goto out;
        }
        fw_in_start_at(d->in, topic, (int32_t)part, (int64_t)off);
        fw_log(FW_LOG_INFO, "checkpoint", "resume position", "topic=%s partition=%d offset=%lld",
               topic, (int)part, (long long)off);
        free(topic);
    }
    if (fw_pipeline_load(d->p, f, err, errlen) != 0)
        goto out;
    fw_log(FW_LOG_INFO, "checkpoint", "state loaded", "path=%s keys=%zu", path,
           fw_pipeline_keys(d->p));
    rc = 0;
out:
    free(group);
    fclose(f);
    return rc;
}

/* Every checkpoint_interval: cut, and let the rest happen in the background. */
static void ck_periodic(struct daemon *d)
{
    if (d->ck.phase != CK_NONE)
        return;                 /* the previous one is still on its way */
    if (d->msgno == d->checkpointed) {
        /* Nothing consumed since the last one: state and positions are
         * what it holds (an idle daemon). */
        clock_gettime(CLOCK_MONOTONIC, &d->last_checkpoint);
        return;
    }
    cut(d, false);              /* no free slot: next time round */
}

/* Revocation and shutdown: a checkpoint of everything consumed, finished
 * before returning.  The waits for acknowledgements and for the offset
 * commit end at `until_ms` (fw_mono_ms()).  0, or -1 with the reason in
 * `why`. */
static int checkpoint(struct daemon *d, int64_t until_ms, char *why, size_t whylen)
{
    char err[1024];
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
        /* Nothing consumed since the last one (an idle daemon, or a
         * revocation at shutdown). */
        clock_gettime(CLOCK_MONOTONIC, &d->last_checkpoint);
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
    if (fw_out_drain(d->out, &hard_stop, left > 0 ? (int)left : 0) != 0) {
        /* Not all acknowledged: the last checkpoint stays the truth. */
        unsigned long long pending = (unsigned long long)fw_out_pending(d->out);
        if (fw_out_fatal(d->out))
            snprintf(why, whylen, "%llu alerts not acknowledged: %s", pending,
                     fw_out_fatal(d->out));
        else if (hard_stop)
            snprintf(why, whylen, "%llu alerts not acknowledged when a second signal cut "
                                  "the wait short", pending);
        else
            snprintf(why, whylen, "%llu alerts not acknowledged by the broker within "
                                  "shutdown.timeout_s = %u s", pending,
                     d->s->shutdown_timeout_s);
        fw_counter_add(d->checkpoint_failures, 1);
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

/* SIGTERM: the last checkpoint, and the commit of an earlier one whose
 * commit failed (checkpoint() commits nothing when nothing was consumed
 * since).  0 only when both are done. */
static int final_checkpoint(struct daemon *d, int64_t until_ms, char *why, size_t whylen)
{
    if (checkpoint(d, until_ms, why, whylen) != 0)
        return -1;
    char err[512];
    if (fw_in_commit_pending(d->in, until_ms, err, sizeof err) != 0) {
        snprintf(why, whylen, "the checkpoint file is in place, but its offsets were not "
                              "committed within shutdown.timeout_s = %u s: %s",
                 d->s->shutdown_timeout_s, err);
        return -1;
    }
    return 0;
}

static void on_revoke(void *ctx)
{
    struct daemon *d = ctx;
    if (d->checkpoints_over) {
        /* Closing the consumer revokes everything: the final checkpoint
         * (or, after a fatal error, deliberately none) already decided what
         * a restart resumes from; another would only repeat or redo it. */
        fw_log(FW_LOG_INFO, "kafka", "rebalance while closing: no checkpoint", NULL);
        return;
    }
    fw_log(FW_LOG_INFO, "kafka", "rebalance: checkpointing before hand-over", NULL);
    char why[1024];
    checkpoint(d, fw_mono_ms() + (int64_t)d->s->shutdown_timeout_s * 1000, why, sizeof why);
}

/* ---- the shutdown watchdog ------------------------------------------------ */

static void set_step(struct daemon *d, const char *what) { atomic_store(&d->step, what); }

/* Waits for the stop to begin, then for fw_daemon_run() to finish, until
 * shutdown.timeout_s + SHUTDOWN_GRACE_MS after the stop; past that it says
 * what the shutdown was stuck in and ends the process. */
static void *watchdog_main(void *arg)
{
    struct daemon *d = arg;
    while (sem_wait(&wd_arm) != 0 && errno == EINTR)
        ;
    int64_t until = (int64_t)atomic_load(&stop_at_ms) +
                    (int64_t)d->s->shutdown_timeout_s * 1000 + SHUTDOWN_GRACE_MS;
    struct timespec ts = { (time_t)(until / 1000), (long)(until % 1000) * 1000000 };
    int r;
    while ((r = sem_clockwait(&wd_done, CLOCK_MONOTONIC, &ts)) != 0 && errno == EINTR)
        ;
    if (r == 0 || errno != ETIMEDOUT)
        return NULL;
    int status = atomic_load(&d->exit_status);
    char msg[256];
    snprintf(msg, sizeof msg, "%sthe shutdown did not finish within shutdown.timeout_s + %d s; "
                              "exiting now%s",
             atomic_load(&d->final) == FINAL_NOT_YET ? "final checkpoint failed: " : "",
             SHUTDOWN_GRACE_MS / 1000,
             atomic_load(&d->final) == FINAL_NOT_YET
                 ? " (a restart resumes from the previous checkpoint)" : "");
    fw_log(FW_LOG_ERROR, "daemon", msg, "shutdown.timeout_s=%u step=\"%s\" status=%d",
           d->s->shutdown_timeout_s, atomic_load(&d->step), status);
    _exit(status);
}

static int watchdog_start(struct daemon *d)
{
    atomic_store(&d->step, "main loop");
    atomic_store(&d->exit_status, 1);
    if (pthread_create(&d->watchdog, NULL, watchdog_main, d) != 0)
        return -1;
    d->watchdog_started = true;
    return 0;
}

static void watchdog_stop(struct daemon *d)
{
    if (!d->watchdog_started)
        return;
    arm_watchdog();             /* if it never was: let it see it is done */
    sem_post(&wd_done);
    pthread_join(d->watchdog, NULL);
}

/* ---- the loop ----------------------------------------------------------- */

static void feed(struct daemon *d, rd_kafka_message_t *m, uint32_t part)
{
    for (;;) {
        while (!d->cur && !(d->cur = fw_pipeline_acquire(d->p, d->rs))) {
            fw_batch *b = fw_pipeline_retire(d->p, true);
            output(d, b);
        }
        if (fw_batch_add(d->cur, m->payload ? m->payload : "", m->len, d->msgno))
            break;
        submit_current(d);
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    d->ring[d->msgno & d->ring_mask] = (struct src){ part, m->offset, ts > 0 ? ts : 0 };
    d->msgno++;
}

static void update_gauges(struct daemon *d)
{
    for (uint32_t i = 0; i < fw_pipeline_workers(d->p); i++)
        fw_gauge_set(d->queue_depth[i], fw_pipeline_queue_depth(d->p, i));
    fw_in_update_lag(d->in);
}

/* A new rule set from the reloader takes effect from the next batch. */
static void swap_rules(struct daemon *d)
{
    if (hup_requested) {
        hup_requested = 0;
        fw_reloader_hup(d->reloader);
    }
    fw_ruleset *rs = fw_reloader_take(d->reloader);
    if (!rs)
        return;
    submit_current(d);          /* filled under the old set */
    uint64_t old = fw_ruleset_version(d->rs);
    fw_ruleset_unref(d->rs);    /* batches in flight keep their own reference */
    d->rs = rs;
    fw_gauge_set(d->ruleset_version, (double)fw_ruleset_version(rs));
    fw_log(FW_LOG_INFO, "rules", "rule set swapped in", "version=%llu previous=%llu rules=%zu",
           (unsigned long long)fw_ruleset_version(rs), (unsigned long long)old,
           fw_ruleset_rule_count(rs));
}

static int loop(struct daemon *d)
{
    int64_t last_gauges = 0;
    int64_t interval = d->s->checkpoint_interval_ms;
    while (!stop_requested) {
        atomic_store(&d->heartbeat_ms, fw_mono_ms());
        swap_rules(d);
        bool busy = d->cur && fw_batch_count(d->cur) > 0;
        uint32_t part = 0;
        rd_kafka_message_t *m = fw_in_poll(d->in, busy ? 0 : 20, &part);
        if (m) {
            feed(d, m, part);
            rd_kafka_message_destroy(m);
        } else if (busy) {
            /* Nothing more right now: let the workers have what we have. */
            submit_current(d);
        }
        retire_ready(d, false);
        fw_out_poll(d->out, 0);

        const char *fatal = fw_out_fatal(d->out);
        if (!fatal)
            fatal = fw_in_fatal(d->in);
        if (fatal) {
            snprintf(d->fatal, sizeof d->fatal, "%s", fatal);
            return -1;
        }
        int64_t now = fw_mono_ms();
        if (now - last_gauges >= 1000) {
            update_gauges(d);
            last_gauges = now;
        }
        int64_t since = now - ((int64_t)d->last_checkpoint.tv_sec * 1000 +
                               d->last_checkpoint.tv_nsec / 1000000);
        if (since >= interval)
            ck_periodic(d);
        ck_poll(d);
    }
    return 0;
}

static int make_state_dir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create state.dir %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int fw_daemon_run(const fw_settings *s)
{
    struct daemon d = { .s = s };
    char err[8192];
    int rc = 1;
    int64_t t0 = 0;             /* when the final checkpoint began */

    enum fw_log_level lvl;
    if (fw_log_parse_level(s->log_level, &lvl) == 0)
        fw_log_set_level(lvl);
    sem_init(&wd_arm, 0, 0);
    sem_init(&wd_done, 0, 0);
    atomic_store(&stop_at_ms, 0);
    if (watchdog_start(&d) != 0) {
        fprintf(stderr, "fraudwatch run: cannot start the shutdown watchdog thread\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    d.m = fw_metrics_new();
    if (fw_reloader_start(s, d.m, &d.rs, &d.reloader, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch run: %s\n", err);
        fw_metrics_free(d.m);
        watchdog_stop(&d);
        return 1;
    }
    if (make_state_dir(s->state_dir, err, sizeof err) != 0)
        goto out;
    d.writer = fw_ckpt_writer_new(s->state_dir, CHECKPOINT_FILE);
    if (!d.writer) {
        snprintf(err, sizeof err, "cannot start the checkpoint writer thread");
        goto out;
    }

    d.events = fw_metrics_counter(d.m, "fraudwatch_events_total",
                                  "Events consumed and processed (malformed included).", "");
    d.regex_faults = fw_metrics_counter(d.m, "fraudwatch_regex_faults_total",
                                        "Regex searches stopped by a match, depth or heap "
                                        "limit (counted as no match).", "");
    static const char clock_help[] =
        "Events more than engine.lateness_s ahead of (blinding their own key) or "
        "behind (their key's state may be gone) the stream clock.";
    d.clock_ahead = fw_metrics_counter(d.m, "fraudwatch_events_off_clock_total", clock_help,
                                       "side=\"ahead\"");
    d.clock_behind = fw_metrics_counter(d.m, "fraudwatch_events_off_clock_total", clock_help,
                                        "side=\"behind\"");
    d.evictions = fw_metrics_counter(d.m, "fraudwatch_state_evictions_total",
                                     "Keys whose state was dropped because the key state "
                                     "budget (engine.max_keys) was full.", "");
    d.checkpoints = fw_metrics_counter(d.m, "fraudwatch_checkpoints_total",
                                       "Checkpoints written and committed.", "");
    d.checkpoint_failures = fw_metrics_counter(d.m, "fraudwatch_checkpoint_failures_total",
                                               "Checkpoints skipped or failed.", "");
    d.checkpoint_seconds = fw_metrics_gauge(d.m, "fraudwatch_checkpoint_seconds",
                                            "Duration of the last checkpoint, from its cut to "
                                            "the commit of its offsets.", "");
    d.checkpoint_pause = fw_metrics_gauge(d.m, "fraudwatch_checkpoint_pause_seconds",
                                          "How long the last checkpoint held the stream "
                                          "(shard serialisation and the main loop's own "
                                          "work on it).", "");
    d.state_keys = fw_metrics_gauge(d.m, "fraudwatch_state_keys",
                                    "Keys with window, sequence or suppression state.", "");
    d.ruleset_version = fw_metrics_gauge(d.m, "fraudwatch_ruleset_version",
                                         "Version of the active rule set.", "");
    fw_gauge_set(d.ruleset_version, (double)fw_ruleset_version(d.rs));

    fw_pipeline_opts po = { .workers = s->threads,
                            .max_event_bytes = s->max_event_bytes,
                            .lateness_ms = s->lateness_s * 1000,
                            .max_future_ms = s->max_future_s * 1000,
                            .max_keys = (uint64_t)s->max_keys };
    d.p = fw_pipeline_new(&po, err, sizeof err);
    if (!d.p)
        goto out;
    d.queue_depth = calloc(s->threads, sizeof *d.queue_depth);
    for (uint32_t i = 0; i < s->threads; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "worker=\"%u\"", i);
        d.queue_depth[i] = fw_metrics_gauge(d.m, "fraudwatch_worker_queue_depth",
                                            "Batches waiting for the worker's shard.", labels);
    }
    size_t cap = 1;
    while (cap < fw_pipeline_capacity(d.p))
        cap <<= 1;
    d.ring = calloc(cap, sizeof *d.ring);
    d.ring_mask = cap - 1;

    d.out = fw_out_new(s, d.m, err, sizeof err);
    if (!d.out)
        goto out;
    d.in = fw_in_new(s, d.m, on_revoke, &d, &stop_requested, err, sizeof err);
    if (!d.in)
        goto out;
    if (read_checkpoint(&d, err, sizeof err) != 0)
        goto out;
    if (strcmp(s->metrics_listen, "off") != 0) {
        atomic_store(&d.heartbeat_ms, fw_mono_ms());
        d.http = fw_http_start(s->metrics_listen, d.m, healthy, &d, err, sizeof err);
        if (!d.http)
            goto out;
        fw_log(FW_LOG_INFO, "metrics", "serving /metrics and /healthz",
               "listen=%s port=%d", s->metrics_listen, fw_http_port(d.http));
    }
    clock_gettime(CLOCK_MONOTONIC, &d.last_checkpoint);
    fw_log(FW_LOG_INFO, "daemon", "running",
           "instance=%s threads=%u rules=%zu group=%s alerts=%s", s->instance_id,
           s->threads, fw_ruleset_rule_count(d.rs), s->group_id, s->alert_topic);

    if (loop(&d) != 0) {
        fw_log(FW_LOG_ERROR, "daemon", "stopping on a fatal error", "error=\"%s\"",
               d.fatal);
        /* No checkpoint: restart resumes from the last good one. */
        rc = 3;
        err[0] = '\0';
        goto out;
    }
    arm_watchdog();             /* the signal did; this only reads the time */
    t0 = fw_mono_ms();
    int64_t until = (int64_t)atomic_load(&stop_at_ms) + (int64_t)s->shutdown_timeout_s * 1000;
    fw_log(FW_LOG_INFO, "daemon", "shutting down: finishing in-flight events",
           "shutdown.timeout_s=%u", s->shutdown_timeout_s);
    set_step(&d, "final checkpoint");
    char why[2048];
    if (final_checkpoint(&d, until, why, sizeof why) == 0) {
        rc = 0;
        atomic_store(&d.final, FINAL_DONE);
        fw_log(FW_LOG_INFO, "daemon", "final checkpoint written and committed", "ms=%lld",
               (long long)(fw_mono_ms() - t0));
    } else {
        rc = 1;
        atomic_store(&d.final, FINAL_FAILED);
        char q[2200];
        fw_log(FW_LOG_ERROR, "daemon", "final checkpoint failed: the stop is not clean (a "
                                       "restart resumes from the previous checkpoint)",
               "error=\"%s\" ms=%lld", fw_log_quote(why, q, sizeof q),
               (long long)(fw_mono_ms() - t0));
    }
    err[0] = '\0';
out:
    /* Nothing checkpoints from here on (see the top), and the whole of it
     * is bounded by the watchdog. */
    d.checkpoints_over = true;
    int none = FINAL_NOT_YET;
    atomic_compare_exchange_strong(&d.final, &none, FINAL_NONE);
    atomic_store(&d.exit_status, rc ? rc : 1);
    arm_watchdog();
    if (err[0])
        fw_log(FW_LOG_ERROR, "daemon", err, NULL);
    if (d.p) {
        set_step(&d, "retiring the batches in flight");
        submit_current(&d);
        retire_ready(&d, true);
    }
    set_step(&d, "leaving the consumer group");
    char cerr[256];
    if (fw_in_close(d.in, fw_mono_ms() + CLOSE_WAIT_MS, cerr, sizeof cerr) != 0) {
        /* Destroying anything Kafka now would wait for the same broker.
         * The checkpoint on disk is settled (an unpublished one is only a
         * .tmp file), and what the producer still holds is unacknowledged,
         * so not covered by any checkpoint: exiting loses nothing.  The
         * status stays the final checkpoint's; the group notices the
         * missing member when its session times out. */
        fw_log(rc ? FW_LOG_ERROR : FW_LOG_WARN, "daemon",
               "exiting without leaving the consumer group", "error=\"%s\" wait_ms=%d "
               "status=%d", cerr, CLOSE_WAIT_MS, rc);
        _exit(rc);
    }
    d.in = NULL;
    set_step(&d, "stopping the checkpoint writer");
    fw_ckpt_writer_free(d.writer);   /* an unpublished checkpoint is dropped */
    ck_clear(&d);
    set_step(&d, "stopping the metrics server and the rule reloader");
    fw_http_stop(d.http);
    fw_reloader_stop(d.reloader);
    set_step(&d, "closing the producer");
    fw_out_free(d.out);
    set_step(&d, "stopping the workers");
    fw_pipeline_free(d.p);
    fw_ruleset_unref(d.rs);
    fw_metrics_free(d.m);
    free(d.ring);
    free(d.queue_depth);
    watchdog_stop(&d);
    if (rc == 0)
        fw_log(FW_LOG_INFO, "daemon", "stopped cleanly", "ms=%lld",
               (long long)(fw_mono_ms() - t0));
    return rc;
}
