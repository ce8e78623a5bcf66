/* daemon.c — `fraudwatch run`: Kafka in, engine, Kafka out, around the clock.
 *
 * Owns the main thread's loop and the checkpoint.  The main thread is the
 * pipeline's feeder: it polls the consumer, packs messages into batches,
 * submits them to the workers, retires finished batches in order — alerts
 * to the alert topic, malformed events to the dead-letter topic — and
 * serves the producer's delivery reports.  Nothing here runs per event on
 * another thread, and nothing takes a lock per event.
 *
 * At-least-once, with window state: every checkpoint_interval the loop
 * stops feeding, retires every batch, waits until the broker has
 * acknowledged every alert and dead letter, then writes the state of every
 * key together with the partition positions it corresponds to (one file,
 * written aside and renamed into place) and commits those positions to the
 * group.  After kill -9 the daemon reloads the last checkpoint and resumes
 * each partition at the checkpoint's position: the state is exactly the
 * state those events built, so every alert of an uninterrupted run is
 * produced again (alerts after the checkpoint are produced twice, with the
 * same alert_id).  A revocation or SIGTERM checkpoints before letting go.
 *
 * Message provenance (partition, offset, timestamp) lives in a ring indexed
 * by the batch tag, so the librdkafka message is freed as soon as its bytes
 * are copied into a batch. */
#include "fraudwatch/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/ruleset.h"
#include "kafka.h"
#include "reload.h"

#define CHECKPOINT_FILE "checkpoint"
#define CHECKPOINT_MAGIC UINT64_C(0x3130545043574633) /* "3FWCPT01" */

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t hard_stop;
static volatile sig_atomic_t hup_requested;

static void on_signal(int sig)
{
    if (sig == SIGHUP) {
        hup_requested = 1;
        return;
    }
    if (stop_requested)
        hard_stop = 1;
    stop_requested = 1;
}

struct src {
    uint32_t part;
    int64_t offset;
    int64_t ts;              /* message timestamp (ms), 0 if none */
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
    struct src *ring;        /* provenance by tag */
    size_t ring_mask;

    /* metrics */
    fw_counter *events;
    fw_counter *regex_faults;
    fw_counter *checkpoints;
    fw_counter *checkpoint_failures;
    fw_gauge *checkpoint_seconds;
    fw_gauge *state_keys;
    fw_gauge *ruleset_version;
    fw_gauge **queue_depth;
    struct { const char *reason; fw_counter *c; } malformed[16];

    atomic_llong heartbeat_ms;
    char fatal[512];
    struct timespec last_checkpoint;
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

static int write_checkpoint(struct daemon *d, rd_kafka_topic_partition_list_t *pos,
                            char *err, size_t errlen)
{
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", d->s->state_dir, CHECKPOINT_FILE);
    snprintf(final, sizeof final, "%s/%s", d->s->state_dir, CHECKPOINT_FILE);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    static char buf[1 << 16];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    int rc = -1;
    if (fw_put_u64(f, CHECKPOINT_MAGIC) ||
        fw_put_bytes(f, d->s->group_id, (uint32_t)strlen(d->s->group_id)) ||
        fw_put_u64(f, (uint64_t)pos->cnt))
        goto io;
    for (int i = 0; i < pos->cnt; i++)
        if (fw_put_bytes(f, pos->elems[i].topic, (uint32_t)strlen(pos->elems[i].topic)) ||
            fw_put_u64(f, (uint64_t)pos->elems[i].partition) ||
            fw_put_u64(f, (uint64_t)pos->elems[i].offset))
            goto io;
    if (fw_pipeline_save(d->p, f, err, errlen) != 0)
        goto out;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        goto io;
    if (fclose(f) != 0) {
        f = NULL;
        goto io;
    }
    f = NULL;
    if (rename(tmp, final) != 0)
        goto io;
    return 0;
io:
    snprintf(err, errlen, "writing %s: %s", tmp, strerror(errno));
out:
    if (f)
        fclose(f);
    unlink(tmp);
    return rc;
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

/* Finishes everything in flight, waits for every acknowledgement, writes the
 * checkpoint and commits its positions.  `deadline_ms` < 0: no limit. */
static int checkpoint(struct daemon *d, int deadline_ms)
{
    int64_t t0 = fw_mono_ms();
    char err[1024];
    if (d->msgno == d->checkpointed) {
        /* Nothing consumed since the last one: state and positions are
         * what it holds (an idle daemon, or a revocation at shutdown). */
        clock_gettime(CLOCK_MONOTONIC, &d->last_checkpoint);
        return 0;
    }
    submit_current(d);
    retire_ready(d, true);
    if (fw_out_drain(d->out, deadline_ms < 0 ? &stop_requested : &hard_stop,
                     deadline_ms) != 0) {
        /* Not all acknowledged: the last checkpoint stays the truth. */
        fw_counter_add(d->checkpoint_failures, 1);
        fw_log(FW_LOG_WARN, "checkpoint", "skipped: alerts not yet acknowledged",
               "pending=%llu", (unsigned long long)fw_out_pending(d->out));
        return -1;
    }
    rd_kafka_topic_partition_list_t *pos = fw_in_positions(d->in);
    int rc = write_checkpoint(d, pos, err, sizeof err);
    if (rc == 0) {
        d->checkpointed = d->msgno;
        fw_in_commit(d->in, pos);
        fw_counter_add(d->checkpoints, 1);
        fw_gauge_set(d->state_keys, (double)fw_pipeline_keys(d->p));
        fw_gauge_set(d->checkpoint_seconds, (double)(fw_mono_ms() - t0) / 1000.0);
        fw_log(FW_LOG_DEBUG, "checkpoint", "written", "partitions=%d ms=%lld",
               pos->cnt, (long long)(fw_mono_ms() - t0));
    } else {
        fw_counter_add(d->checkpoint_failures, 1);
        char q[1024];
        fw_log(FW_LOG_ERROR, "checkpoint", "failed", "error=\"%s\"",
               fw_log_quote(err, q, sizeof q));
    }
    rd_kafka_topic_partition_list_destroy(pos);
    clock_gettime(CLOCK_MONOTONIC, &d->last_checkpoint);
    return rc;
}

static void on_revoke(void *ctx)
{
    struct daemon *d = ctx;
    fw_log(FW_LOG_INFO, "kafka", "rebalance: checkpointing before hand-over", NULL);
    checkpoint(d, (int)d->s->shutdown_timeout_s * 1000);
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
            checkpoint(d, -1);
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

    enum fw_log_level lvl;
    if (fw_log_parse_level(s->log_level, &lvl) == 0)
        fw_log_set_level(lvl);
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
        return 1;
    }
    if (make_state_dir(s->state_dir, err, sizeof err) != 0)
        goto out;

    d.events = fw_metrics_counter(d.m, "fraudwatch_events_total",
                                  "Events consumed and processed (malformed included).", "");
    d.regex_faults = fw_metrics_counter(d.m, "fraudwatch_regex_faults_total",
                                        "Regex searches stopped by a match, depth or heap "
                                        "limit (counted as no match).", "");
    d.checkpoints = fw_metrics_counter(d.m, "fraudwatch_checkpoints_total",
                                       "Checkpoints written and committed.", "");
    d.checkpoint_failures = fw_metrics_counter(d.m, "fraudwatch_checkpoint_failures_total",
                                               "Checkpoints skipped or failed.", "");
    d.checkpoint_seconds = fw_metrics_gauge(d.m, "fraudwatch_checkpoint_seconds",
                                            "Duration of the last checkpoint.", "");
    d.state_keys = fw_metrics_gauge(d.m, "fraudwatch_state_keys",
                                    "Keys with window, sequence or suppression state.", "");
    d.ruleset_version = fw_metrics_gauge(d.m, "fraudwatch_ruleset_version",
                                         "Version of the active rule set.", "");
    fw_gauge_set(d.ruleset_version, (double)fw_ruleset_version(d.rs));

    fw_pipeline_opts po = { .workers = s->threads,
                            .max_event_bytes = s->max_event_bytes,
                            .lateness_ms = s->lateness_s * 1000 };
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
    d.in = fw_in_new(s, d.m, on_revoke, &d, err, sizeof err);
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
    fw_log(FW_LOG_INFO, "daemon", "shutting down: finishing in-flight events", NULL);
    int64_t t0 = fw_mono_ms();
    if (checkpoint(&d, (int)s->shutdown_timeout_s * 1000) == 0) {
        rc = 0;
        fw_log(FW_LOG_INFO, "daemon", "stopped cleanly", "ms=%lld",
               (long long)(fw_mono_ms() - t0));
    } else {
        fw_log(FW_LOG_ERROR, "daemon", "stopped without a final checkpoint "
                                       "(a restart resumes from the previous one)", NULL);
        rc = 1;
    }
    err[0] = '\0';
out:
    if (err[0])
        fw_log(FW_LOG_ERROR, "daemon", err, NULL);
    if (d.p) {
        submit_current(&d);
        retire_ready(&d, true);
    }
    fw_http_stop(d.http);
    fw_reloader_stop(d.reloader);
    fw_in_close(d.in);
    fw_out_free(d.out);
    fw_pipeline_free(d.p);
    fw_ruleset_unref(d.rs);
    fw_metrics_free(d.m);
    free(d.ring);
    free(d.queue_depth);
    return rc;
}
