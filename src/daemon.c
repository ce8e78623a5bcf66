/* daemon.c — `fraudwatch run`: Kafka in, engine, Kafka out, around the clock.
 *
 * Owns the assembly and the life of the daemon: the settings become a
 * driver (driver.c: the loop, batching, outputs in order, checkpoints)
 * over the consumer as its source (kafka_in.c) and the producer as its
 * sink (kafka_out.c); the rule reloader feeds it new rule sets between two
 * batches; the metrics server answers /metrics and /healthz; signals, the
 * final checkpoint and the teardown are here.
 *
 * A revocation checkpoints synchronously before letting go (a hand-over
 * must be exact), through fw_driver_checkpoint(); so does SIGTERM, as the
 * final checkpoint.
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
 * change it. */
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

#include "fraudwatch/clock.h"
#include "fraudwatch/driver.h"
#include "fraudwatch/log.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/ruleset.h"
#include "ckpt_kafka.h"
#include "election.h"
#include "kafka.h"
#include "reload.h"
#include "scale.h"

#define CHECKPOINT_FILE "checkpoint"

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

struct daemon {
    const fw_settings *s;
    fw_driver *drv;
    fw_in *in;
    fw_out *out;
    fw_metrics *m;
    fw_http *http;
    fw_reloader *reloader;
    fw_ckpt_kafka *ckk;           /* state.store = kafka */
    fw_election *el;              /* ha.mode = standby */
    fw_fence_sink *fence;
    atomic_bool standing_by;      /* /healthz: a standby is healthy while it waits */

    atomic_llong heartbeat_ms;
    _Atomic(fw_driver *) drv_pub; /* d.drv, for the health check's thread */

    /* the shutdown */
    bool checkpoints_over;        /* final one attempted: a revocation does not */
    pthread_t watchdog;
    bool watchdog_started;
    _Atomic(const char *) step;   /* what the shutdown is doing, for the watchdog */
    atomic_int final;             /* FINAL_* */
    atomic_int exit_status;       /* the watchdog's, if it has to end the process */
};

/* How long input may wait for a checkpoint before /healthz says so:
 * metrics.healthz_unsaved_s, or ten intervals and never less than a minute
 * (a large state takes a while to write). */
static int64_t unsaved_limit_ms(const fw_settings *s)
{
    if (s->healthz_unsaved_s > 0)
        return s->healthz_unsaved_s * 1000;
    int64_t l = 10 * s->checkpoint_interval_ms;
    return l > 60000 ? l : 60000;
}

/* /healthz (the metrics server's thread): the loop turns, and what it
 * consumed gets checkpointed — a daemon whose every checkpoint fails
 * commits nothing and would lose its windows in a restart (issue 10). */
static bool healthy(void *ctx, char *reason, size_t len)
{
    struct daemon *d = ctx;
    if (atomic_load(&d->standing_by)) {
        snprintf(reason, len, "ok (standby, or elected and restoring)");
        return true;
    }
    int64_t age = fw_mono_ms() - atomic_load(&d->heartbeat_ms);
    if (age > 10000) {
        snprintf(reason, len, "main loop stalled for %lld ms", (long long)age);
        return false;
    }
    fw_driver *drv = atomic_load(&d->drv_pub);
    int64_t unsaved = drv ? fw_driver_unsaved_ms(drv) : 0;
    if (unsaved > unsaved_limit_ms(d->s)) {
        snprintf(reason, len, "no checkpoint has covered the input for %lld s (checkpoints "
                              "are failing: see the log and "
                              "fraudwatch_checkpoint_failures_total)",
                 (long long)(unsaved / 1000));
        return false;
    }
    snprintf(reason, len, "ok");
    return true;
}

/* SIGTERM: the last checkpoint, and the commit of an earlier one whose
 * commit failed (a checkpoint commits nothing when nothing was consumed
 * since).  0 only when both are done. */
static int final_checkpoint(struct daemon *d, int64_t until_ms, char *why, size_t whylen)
{
    char w[1800];
    if (fw_driver_checkpoint(d->drv, until_ms, &hard_stop, w, sizeof w) != 0) {
        /* The driver's deadline is this setting. */
        snprintf(why, whylen, "%s (the deadline: shutdown.timeout_s = %u s after the signal)",
                 w, d->s->shutdown_timeout_s);
        return -1;
    }
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
    if (d->checkpoints_over || !d->drv) {
        /* Closing the consumer revokes everything: the final checkpoint
         * (or, after a fatal error, deliberately none) already decided what
         * a restart resumes from; another would only repeat or redo it. */
        fw_log(FW_LOG_INFO, "kafka", "rebalance while closing: no checkpoint", NULL);
        return;
    }
    fw_log(FW_LOG_INFO, "kafka", "rebalance: checkpointing before hand-over", NULL);
    char why[1024];
    fw_driver_checkpoint(d->drv, fw_mono_ms() + (int64_t)d->s->shutdown_timeout_s * 1000,
                         &hard_stop, why, sizeof why);
}

/* With ha.mode = standby, a manifest is published only by the active daemon. */
static bool fence_publish(void *ctx, char *why, size_t whylen)
{
    return fw_election_check(ctx, why, whylen);
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

/* ---- the loop (driver.c) ------------------------------------------------------ */

/* Once a turn of the driver's loop: the heartbeat /healthz reads, and a
 * new rule set from the reloader, which takes effect from the next batch. */
static void tick(void *ctx)
{
    struct daemon *d = ctx;
    atomic_store(&d->heartbeat_ms, fw_mono_ms());
    if (hup_requested) {
        hup_requested = 0;
        fw_reloader_hup(d->reloader);
    }
    fw_snoozes *sn = fw_reloader_take_snoozes(d->reloader);
    if (sn) {
        /* A pointer for the next batches: no rule swap, no state touched. */
        fw_driver_set_snoozes(d->drv, sn);
        fw_log(FW_LOG_INFO, "snooze", "snoozes swapped in", "snoozes=%zu",
               fw_snoozes_count(sn));
        fw_snoozes_unref(sn);
    }
    fw_ruleset *rs = fw_reloader_take(d->reloader);
    if (!rs)
        return;
    uint64_t old = fw_ruleset_version(fw_driver_rules(d->drv));
    fw_driver_swap_rules(d->drv, rs);
    fw_log(FW_LOG_INFO, "rules", "rule set swapped in", "version=%llu previous=%llu rules=%zu",
           (unsigned long long)fw_ruleset_version(rs), (unsigned long long)old,
           fw_ruleset_rule_count(rs));
}

static bool scale_healthy(void *ctx, char *reason, size_t len)
{
    (void)ctx;
    snprintf(reason, len, "ok (ha.mode = scaleout)");
    return true;
}

/* ha.mode = scaleout (scale.c): its own loop; the signals, the watchdog,
 * the metrics server and the rule reloader are the daemon's. */
static int run_scaleout(struct daemon *d, fw_ruleset *rs, char *err, size_t errlen)
{
    const fw_settings *s = d->s;
    int rc = 1;
    if (strcmp(s->metrics_listen, "off") != 0) {
        fw_http_opts ho = { s->metrics_tls_cert_file, s->metrics_tls_key_file,
                            s->metrics_auth_user, s->metrics_auth_password_file };
        d->http = fw_http_start_opts(s->metrics_listen, &ho, d->m, scale_healthy, d, err,
                                     errlen);
        if (!d->http)
            goto out;
        fw_log(FW_LOG_INFO, "metrics", "serving /metrics and /healthz",
               "listen=%s port=%d", s->metrics_listen, fw_http_port(d->http));
    }
    err[0] = '\0';
    rc = fw_scale_run(s, d->m, d->reloader, rs, &stop_requested, &hup_requested, err, errlen);
out:
    atomic_store(&d->exit_status, rc ? rc : 1);
    arm_watchdog();
    if (err[0])
        fw_log(FW_LOG_ERROR, "daemon", err, NULL);
    fw_http_stop(d->http);
    fw_reloader_stop(d->reloader);
    fw_ruleset_unref(rs);
    fw_metrics_free(d->m);
    watchdog_stop(d);
    if (rc == 0)
        fw_log(FW_LOG_INFO, "daemon", "stopped cleanly", NULL);
    return rc;
}

/* One function on purpose (about 150 lines): the start-up order and the
 * teardown order below it are the contract (see the top of this file), and
 * they are only checkable read side by side. */
int fw_daemon_run(const fw_settings *s)
{
    struct daemon d = { .s = s };
    fw_ruleset *rs = NULL;
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
    if (fw_reloader_start(s, d.m, &rs, &d.reloader, err, sizeof err) != 0) {
        fprintf(stderr, "fraudwatch run: %s\n", err);
        fw_metrics_free(d.m);
        watchdog_stop(&d);
        return 1;
    }
    err[0] = '\0';
    if (strcmp(s->ha_mode, "scaleout") == 0)
        return run_scaleout(&d, rs, err, sizeof err);
    if (strcmp(s->ha_mode, "standby") == 0) {
        /* Stand by until elected (docs/scaling.md): nothing is consumed
         * before, and a stop while standing by is clean. */
        d.el = fw_election_new(s, d.m, err, sizeof err);
        if (!d.el)
            goto out;
        atomic_store(&d.standing_by, true);
        if (strcmp(s->metrics_listen, "off") != 0) {
            /* A standby serves /metrics (fraudwatch_ha_active) and /healthz too. */
            d.http = fw_http_start(s->metrics_listen, d.m, healthy, &d, err, sizeof err);
            if (!d.http)
                goto out;
            fw_log(FW_LOG_INFO, "metrics", "serving /metrics and /healthz",
                   "listen=%s port=%d", s->metrics_listen, fw_http_port(d.http));
        }
        if (fw_election_wait(d.el, &stop_requested, err, sizeof err) != 1) {
            rc = err[0] ? 1 : 0;
            goto out;
        }

    }
    if (strcmp(s->state_store, "kafka") == 0) {
        d.ckk = fw_ckpt_kafka_new(s, d.m, err, sizeof err);
        if (!d.ckk)
            goto out;
        if (d.el)
            fw_ckpt_kafka_set_fence(d.ckk, fence_publish, d.el);
        if (fw_ckpt_kafka_prepare(d.ckk, err, sizeof err) != 0)
            goto out;
    }
    d.out = fw_out_new(s, d.m, err, sizeof err);
    if (!d.out)
        goto out;
    d.in = fw_in_new(s, d.m, on_revoke, &d, &stop_requested, err, sizeof err);
    if (!d.in)
        goto out;
    const fw_sink_ops *sink = &fw_out_sink;
    void *sink_self = d.out;
    if (d.el) {
        d.fence = fw_fence_sink_new(sink, sink_self, d.el);
        sink = fw_fence_sink_ops(d.fence);
        sink_self = d.fence;
    }
    fw_driver_opts o = {
        .pipeline = { .workers = s->threads,
                      .max_event_bytes = s->max_event_bytes,
                      .lateness_ms = s->lateness_s * 1000,
                      .max_future_ms = s->max_future_s * 1000,
                      .max_keys = (uint64_t)s->max_keys },
        .source = &fw_in_source,
        .source_self = d.in,
        .sink = sink,
        .sink_self = sink_self,
        .ckpt_store = d.ckk ? &fw_ckpt_kafka_ops : NULL,
        .ckpt_store_self = d.ckk,
        .rules = rs,
        .snoozes = fw_reloader_take_snoozes(d.reloader),
        .state_dir = s->state_dir,
        .checkpoint_file = CHECKPOINT_FILE,
        .checkpoint_interval_ms = s->checkpoint_interval_ms,
        .metrics = d.m,
        .tick = tick,
        .tick_ctx = &d,
    };
    d.drv = fw_driver_new(&o, err, sizeof err);
    fw_snoozes_unref(o.snoozes);     /* the driver took its own reference */
    if (!d.drv)
        goto out;
    atomic_store(&d.drv_pub, d.drv);
    if (fw_driver_restore(d.drv, err, sizeof err) != 0)
        goto out;
    atomic_store(&d.heartbeat_ms, fw_mono_ms());
    atomic_store(&d.standing_by, false);    /* elected and restored: the loop's health */
    if (!d.http && strcmp(s->metrics_listen, "off") != 0) {
        atomic_store(&d.heartbeat_ms, fw_mono_ms());
        fw_http_opts ho = { s->metrics_tls_cert_file, s->metrics_tls_key_file,
                            s->metrics_auth_user, s->metrics_auth_password_file };
        d.http = fw_http_start_opts(s->metrics_listen, &ho, d.m, healthy, &d, err, sizeof err);
        if (!d.http)
            goto out;
        fw_log(FW_LOG_INFO, "metrics", "serving /metrics and /healthz",
               "listen=%s port=%d", s->metrics_listen, fw_http_port(d.http));
    }
    fw_log(FW_LOG_INFO, "daemon", "running",
           "instance=%s threads=%u rules=%zu group=%s alerts=%s", s->instance_id,
           s->threads, fw_ruleset_rule_count(rs), s->group_id, s->alert_topic);

    if (fw_driver_run(d.drv, &stop_requested) != 0) {
        char q[600];
        fw_log(FW_LOG_ERROR, "daemon", "stopping on a fatal error", "error=\"%s\"",
               fw_log_quote(fw_driver_fatal(d.drv), q, sizeof q));
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
    if (d.drv) {
        set_step(&d, "retiring the batches in flight");
        fw_driver_flush(d.drv);
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
    if (d.drv)
        fw_driver_end_checkpoints(d.drv);
    set_step(&d, "stopping the metrics server and the rule reloader");
    fw_http_stop(d.http);
    atomic_store(&d.drv_pub, NULL);
    fw_reloader_stop(d.reloader);
    set_step(&d, "closing the producer");
    fw_out_free(d.out);
    set_step(&d, "stopping the workers");
    /* The process exits next: the keys' state goes with it, not item by
     * item (half a second at 600,000 keys, before the standby can take
     * over). */
    fw_driver_free_at_exit(d.drv);
    fw_fence_sink_free(d.fence);
    fw_ckpt_kafka_free(d.ckk);
    set_step(&d, "leaving the control group");
    fw_election_free(d.el);     /* last: a standby takes over from the final checkpoint */
    fw_ruleset_unref(rs);
    fw_metrics_free(d.m);
    watchdog_stop(&d);
    if (rc == 0)
        fw_log(FW_LOG_INFO, "daemon", "stopped cleanly", "ms=%lld",
               (long long)(fw_mono_ms() - t0));
    return rc;
}
