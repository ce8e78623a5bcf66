/* scale.c — `ha.mode = scaleout`: several active daemons split the work by
 * key (docs/scaling.md, "Scale-out by key").
 *
 * Owns the mode's assembly in one daemon:
 *   - the forwarder (repart_out.c) on a thread of its own: this daemon's
 *     share of the input partitions (the input group), re-keyed into the
 *     repartition topic;
 *   - the ownership of repartition partitions: every daemon joins the group
 *     GROUP.scale-control on the control topic, which has one partition per
 *     repartition partition; the partitions the coordinator assigns to a
 *     daemon are the ones whose state it owns (cooperative-sticky: a daemon
 *     joining or leaving moves only what it must);
 *   - one unit per owned partition, on a thread of its own: a whole driver
 *     (driver.c) whose source is that repartition partition (repart_in.c),
 *     whose pipeline keeps only that partition's keys, whose checkpoints go
 *     to that partition of the state topic (ckpt_kafka.c), and whose alerts
 *     go to the alert topic through a fence.  Assigned: restore its last
 *     checkpoint and resume at its positions.  Revoked: a final checkpoint,
 *     then let go — the next owner restores exactly that; the units of one
 *     revocation stop together, and the rebalance waits for their
 *     hand-overs, not for their keys' state to be freed (a unit on the
 *     retiring list frees it on its own thread).  Lost (the
 *     session expired: kill -9 elsewhere is the others' concern; here, a
 *     pause): no checkpoint, nothing more produced, the daemon exits 3.
 * Why units are whole drivers: the checkpoint protocol, the ordering of
 * outputs, the rule swaps and the restore are the daemon's, tested and
 * exact; a partition moving is then a driver starting or stopping, not a
 * second state machine.  The price is threads (a driver, a worker and a
 * checkpoint writer per owned partition, plus librdkafka's), which bounds
 * sensible scale.partitions per daemon to tens.
 *
 * The fence is the standby mode's (election.c): the ownership is held
 * under a lease renewed by a synchronous commit to the control group,
 * which the coordinator refuses from a member it has evicted; a unit asks
 * before every alert, and before publishing a checkpoint.
 *
 * Threads: the caller's runs the control consumer (rebalance callbacks
 * start and stop units there), renews the lease and hands new rule sets
 * and snoozes over; everything else is per unit or the forwarder's. */
#include "scale.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt_kafka.h"
#include "election.h"
#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/driver.h"
#include "fraudwatch/log.h"
#include "kafka.h"
#include "repart.h"

#define META_TIMEOUT_MS 10000
#define CLOSE_WAIT_MS 5000

struct scale;

struct unit {
    struct scale *sc;
    int32_t p;
    pthread_t th;
    volatile sig_atomic_t stop;
    volatile sig_atomic_t hard;
    atomic_bool owned;           /* false once revoked or lost: the fence refuses */
    atomic_bool lost;            /* lost, not revoked: no final checkpoint */
    atomic_bool handed;          /* all but its memory let go: checkpoint, alerts,
                                    consumer (set under scale.mu) */
    atomic_bool ended;           /* the thread is done */
    bool failed;
    struct unit *next_retiring;  /* scale.retiring: stopped, freeing its state */
    uint64_t rules_gen, snooze_gen;
    fw_driver *drv;
    char err[1024];
};

struct scale {
    const fw_settings *s;
    fw_metrics *m;
    fw_inputs inputs;
    uint32_t nparts;
    char rtopic[300], stopic[300], ctopic[300], cgroup[1100];
    rd_kafka_t *ctl;
    bool ctl_assigned;           /* its first assignment came (kafka.h: joining) */
    bool ctl_closing;            /* leaving: an assignment now starts no unit */
    struct unit **units;         /* by partition; NULL: not owned (caller's thread) */
    struct unit *retiring;       /* handed over, still freeing (caller's thread) */
    atomic_bool *own;            /* by partition, for the lease thread */
    pthread_t lease_th;
    bool lease_started;
    atomic_bool quit;
    atomic_bool exiting;         /* the daemon stops: units leave their keys' state to the exit */
    int64_t session_ms;
    atomic_llong lease_until;
    fw_rejoin_guard rejoin;      /* no renewal while the control group rebalances
                                    (kafka.h) */
    pthread_mutex_t renew_mu;    /* a renewal, or the revocation ending */
    atomic_uint evicted;         /* renew() saw this member evicted: fences close */
    atomic_bool broken;          /* fatal: a unit thread could not start */
    char broken_why[256];
    /* what units take at their next turn */
    pthread_mutex_t mu;
    pthread_cond_t handed_cv;    /* a unit has handed its partition over */
    fw_ruleset *rs;
    fw_snoozes *sn;
    atomic_ullong rules_gen, snooze_gen;
    /* the forwarder */
    fw_forwarder *fwd;
    pthread_t fwd_th;
    bool fwd_started;
    volatile sig_atomic_t fwd_stop;
    atomic_int fwd_rc;
    atomic_bool fwd_done;
    fw_gauge *owned_g;
    fw_counter *restores, *handovers;
    fw_gauge *restore_s;
};

void fw_scale_topics(const fw_settings *s, char *repart, char *state, char *control, size_t len)
{
    if (s->scale_topic && *s->scale_topic)
        snprintf(repart, len, "%s", s->scale_topic);
    else
        snprintf(repart, len, "%s.repartition", s->group_id);
    if (s->state_topic && *s->state_topic)
        snprintf(state, len, "%s", s->state_topic);
    else
        snprintf(state, len, "%s.scale-state", s->group_id);
    snprintf(control, len, "%s.scale-control", s->group_id);
}

/* ---- the input partitions -------------------------------------------------- */

int fw_inputs_load(const fw_settings *s, fw_inputs *in, char *err, size_t errlen)
{
    memset(in, 0, sizeof *in);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (fw_kafka_set(c, "metadata client", "bootstrap.servers", s->brokers, err, errlen)) {
        rd_kafka_conf_destroy(c);
        return -1;
    }
    for (size_t i = 0; i < s->nproducer; i++)
        if (fw_kafka_set(c, "metadata client", s->producer_keys[i], s->producer_values[i], err,
                         errlen)) {
            rd_kafka_conf_destroy(c);
            return -1;
        }
    rd_kafka_conf_set_log_cb(c, fw_kafka_log);
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!rk) {
        rd_kafka_conf_destroy(c);
        snprintf(err, errlen, "cannot create a Kafka client: %s", e);
        return -1;
    }
    int rc = 0;
    for (size_t t = 0; t < s->ninput_topics && rc == 0; t++) {
        rd_kafka_topic_t *kt = rd_kafka_topic_new(rk, s->input_topics[t], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t r = rd_kafka_metadata(rk, 0, kt, &md, META_TIMEOUT_MS);
        rd_kafka_topic_destroy(kt);
        if (r || md->topic_cnt != 1 || md->topics[0].err) {
            snprintf(err, errlen, "asking the brokers about input topic %s: %s",
                     s->input_topics[t],
                     rd_kafka_err2str(r ? r : md->topic_cnt ? md->topics[0].err
                                                            : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
            rc = -1;
        } else {
            int n = md->topics[0].partition_cnt;
            in->topic = fw_xrealloc(in->topic, (in->n + (size_t)n) * sizeof *in->topic);
            in->partition = fw_xrealloc(in->partition, (in->n + (size_t)n) * sizeof *in->partition);
            for (int p = 0; p < n; p++) {
                in->topic[in->n] = fw_xstrdup(s->input_topics[t]);
                in->partition[in->n] = p;
                in->n++;
            }
        }
        if (md)
            rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    if (rc == 0 && in->n == 0) {
        snprintf(err, errlen, "the input topics have no partitions (do they exist?)");
        rc = -1;
    }
    return rc;
}

void fw_inputs_free(fw_inputs *in)
{
    for (uint32_t i = 0; i < in->n; i++)
        free(in->topic[i]);
    free(in->topic);
    free(in->partition);
    memset(in, 0, sizeof *in);
}

uint32_t fw_inputs_find(const fw_inputs *in, const char *topic, size_t topic_len,
                        int32_t partition)
{
    for (uint32_t i = 0; i < in->n; i++)
        if (in->partition[i] == partition && strlen(in->topic[i]) == topic_len &&
            memcmp(in->topic[i], topic, topic_len) == 0)
            return i;
    return UINT32_MAX;
}

/* ---- the fence ------------------------------------------------------------- */

static void set_broken(struct scale *sc, const char *why)
{
    if (!atomic_exchange(&sc->broken, true)) {
        snprintf(sc->broken_why, sizeof sc->broken_why, "%s", why);
        fw_log(FW_LOG_ERROR, "scale", "cannot go on: producing nothing more", "why=\"%s\"",
               why);
    }
}

static bool unit_check(void *ctx, char *why, size_t whylen)
{
    struct unit *u = ctx;
    struct scale *sc = u->sc;
    int64_t until = fw_mono_ms() + sc->session_ms;
    for (;;) {
        if (!atomic_load(&sc->own[u->p]))
            atomic_store(&u->owned, false);
        if (atomic_load(&sc->broken) || !atomic_load(&u->owned)) {
            snprintf(why, whylen, "repartition partition %d is no longer this daemon's%s%s",
                     (int)u->p, atomic_load(&sc->broken) ? ": " : "",
                     atomic_load(&sc->broken) ? sc->broken_why : "");
            return false;
        }
        int64_t now = fw_mono_ms();
        if (now < atomic_load(&sc->lease_until))
            return true;
        if (now >= until) {
            snprintf(why, whylen, "the ownership lease was not renewed within "
                                  "ha.session_timeout_ms (control group unreachable)");
            atomic_store(&u->owned, false);   /* this unit stops; see the main loop */
            return false;
        }
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static bool unit_gone(void *ctx)
{
    struct unit *u = ctx;
    return atomic_load(&u->sc->broken) || !atomic_load(&u->owned) ||
           !atomic_load(&u->sc->own[u->p]);
}

/* ---- a unit ----------------------------------------------------------------- */

static void unit_tick(void *ctx)
{
    struct unit *u = ctx;
    struct scale *sc = u->sc;
    uint64_t g = atomic_load(&sc->rules_gen);
    if (g != u->rules_gen) {
        pthread_mutex_lock(&sc->mu);
        fw_ruleset *rs = fw_ruleset_ref(sc->rs);
        g = atomic_load(&sc->rules_gen);
        pthread_mutex_unlock(&sc->mu);
        fw_driver_swap_rules(u->drv, rs);
        u->rules_gen = g;
    }
    g = atomic_load(&sc->snooze_gen);
    if (g != u->snooze_gen) {
        pthread_mutex_lock(&sc->mu);
        fw_snoozes *sn = sc->sn ? fw_snoozes_ref(sc->sn) : NULL;
        g = atomic_load(&sc->snooze_gen);
        pthread_mutex_unlock(&sc->mu);
        fw_driver_set_snoozes(u->drv, sn);
        if (sn)
            fw_snoozes_unref(sn);
        u->snooze_gen = g;
    }
}

static void *unit_main(void *arg)
{
    struct unit *u = arg;
    struct scale *sc = u->sc;
    const fw_settings *s = sc->s;
    char *err = u->err;
    size_t errlen = sizeof u->err;
    fw_ckpt_kafka *ck = NULL;
    fw_rin *in = NULL;
    fw_out *out = NULL;
    fw_fence_sink *fence = NULL;
    int64_t t0 = fw_mono_ms();

    ck = fw_ckpt_kafka_new_part(s, sc->stopic, u->p, (int32_t)sc->nparts, sc->m, err, errlen);
    if (!ck)
        goto out;
    in = fw_rin_new(s, &sc->inputs, u->p, sc->m, err, errlen);
    if (!in)
        goto out;
    char units_group[1100];
    snprintf(units_group, sizeof units_group, "%s.scale-units", s->group_id);
    fw_ckpt_kafka_set_positions_check(ck, fw_rin_has_positions, in, units_group);
    fw_ckpt_kafka_set_fence(ck, unit_check, u);
    if (fw_ckpt_kafka_prepare(ck, err, errlen) != 0)
        goto out;
    out = fw_out_new(s, sc->m, err, errlen);
    if (!out)
        goto out;
    fence = fw_fence_sink_new_fn(&fw_out_sink, out, unit_check, unit_gone, u);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/unit-%d", s->state_dir, (int)u->p);
    pthread_mutex_lock(&sc->mu);
    fw_ruleset *rs = fw_ruleset_ref(sc->rs);
    fw_snoozes *sn = sc->sn ? fw_snoozes_ref(sc->sn) : NULL;
    u->rules_gen = atomic_load(&sc->rules_gen);
    u->snooze_gen = atomic_load(&sc->snooze_gen);
    pthread_mutex_unlock(&sc->mu);
    fw_driver_opts o = {
        .pipeline = { .workers = 1,
                      .max_event_bytes = s->max_event_bytes,
                      .lateness_ms = s->lateness_s * 1000,
                      .max_future_ms = s->max_future_s * 1000,
                      .max_keys = (uint64_t)s->max_keys,
                      .own_parts = sc->nparts,
                      .own_part = (uint32_t)u->p },
        .source = &fw_rin_source,
        .source_self = in,
        .sink = fw_fence_sink_ops(fence),
        .sink_self = fence,
        .ckpt_store = &fw_ckpt_kafka_ops,
        .ckpt_store_self = ck,
        .rules = rs,
        .snoozes = sn,
        .state_dir = dir,
        .checkpoint_file = "checkpoint",
        .checkpoint_interval_ms = s->checkpoint_interval_ms,
        .metrics = sc->m,        /* counters summed over the units */
        .tick = unit_tick,
        .tick_ctx = u,
    };
    if (mkdir(s->state_dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create state.dir %s: %s", s->state_dir, strerror(errno));
        fw_ruleset_unref(rs);
        if (sn)
            fw_snoozes_unref(sn);
        goto out;
    }
    u->drv = fw_driver_new(&o, err, errlen);
    fw_ruleset_unref(rs);
    if (sn)
        fw_snoozes_unref(sn);
    if (!u->drv)
        goto out;
    if (fw_driver_restore(u->drv, err, errlen) != 0 || fw_rin_start(in, err, errlen) != 0)
        goto out;
    fw_counter_add(sc->restores, 1);
    fw_gauge_set(sc->restore_s, (double)(fw_mono_ms() - t0) / 1000.0);
    fw_log(FW_LOG_INFO, "scale", "unit running", "partition=%d restore_ms=%lld", (int)u->p,
           (long long)(fw_mono_ms() - t0));
    if (fw_driver_run(u->drv, &u->stop) != 0) {
        snprintf(err, errlen, "unit %d: %s", (int)u->p, fw_driver_fatal(u->drv));
        goto out;
    }
    if (!atomic_load(&u->lost) && !atomic_load(&sc->broken)) {
        char why[1024];
        int64_t t1 = fw_mono_ms();
        if (fw_driver_checkpoint(u->drv, t1 + (int64_t)s->shutdown_timeout_s * 1000, &u->hard,
                                 why, sizeof why) != 0) {
            snprintf(err, errlen, "unit %d: final checkpoint failed: %s", (int)u->p, why);
            goto out;
        }
        fw_log(FW_LOG_INFO, "scale", "unit handed over: final checkpoint written",
               "partition=%d ms=%lld", (int)u->p, (long long)(fw_mono_ms() - t1));
    }
out:
    if (err[0] && unit_gone(u)) {
        /* fenced: not a failure of the daemon (the main loop restarts the
         * unit if the partition is still, or again, this daemon's) */
        fw_log(FW_LOG_WARN, "scale", "unit fenced: stopped without a checkpoint",
               "partition=%d why=\"%s\"", (int)u->p, err);
        err[0] = '\0';
    }
    if (err[0]) {
        u->failed = true;
        fw_log(FW_LOG_ERROR, "scale", "unit stopped on an error", "partition=%d error=\"%s\"",
               (int)u->p, err);
    }
    if (u->drv) {
        fw_driver_flush(u->drv);
        fw_driver_end_checkpoints(u->drv);
    }
    /* Everything the partition's next owner could meet goes first: the
     * alerts (flushed), the checkpoint writer and the consumer.  The driver
     * calls none of them any more: nothing is in flight. */
    fw_out_free(out);
    fw_fence_sink_free(fence);
    fw_ckpt_kafka_free(ck);
    fw_rin_free(in);
    pthread_mutex_lock(&sc->mu);
    atomic_store(&u->handed, true);
    pthread_cond_broadcast(&sc->handed_cv);
    pthread_mutex_unlock(&sc->mu);
    /* Then the keys' state, which takes most of a second at 600k keys: the
     * rebalance no longer waits for it (unit_stop_wait).  At the daemon's
     * stop the process exits next and the state goes with it. */
    if (atomic_load(&sc->exiting))
        fw_driver_free_at_exit(u->drv);
    else
        fw_driver_free(u->drv);
    u->drv = NULL;
    atomic_store(&u->ended, true);
    return NULL;
}

enum { REAP_DONE = -1, REAP_ALL = -2 };   /* reap_retiring(): no partition of its own */

static void unit_stop(struct scale *sc, int32_t p, bool lost);
static void reap_retiring(struct scale *sc, int32_t p);

static void unit_start(struct scale *sc, int32_t p)
{
    if (p < 0 || (uint32_t)p >= sc->nparts)
        return;
    if (sc->units[p] && atomic_load(&sc->units[p]->ended))
        unit_stop(sc, p, true);    /* a fenced one, done: make room */
    if (sc->units[p])
        return;
    /* A unit of the same partition still freeing its state holds the
     * partition's state directory (driver.c's lock): wait for it. */
    reap_retiring(sc, p);
    struct unit *u = fw_xcalloc(1, sizeof *u);
    u->sc = sc;
    u->p = p;
    atomic_store(&u->owned, true);
    if (pthread_create(&u->th, NULL, unit_main, u) != 0) {
        fw_log(FW_LOG_ERROR, "scale", "cannot start a unit thread", "partition=%d", (int)p);
        free(u);
        set_broken(sc, "cannot start a unit thread");
        return;
    }
    sc->units[p] = u;
    atomic_store(&sc->own[p], true);
    fw_gauge_add(sc->owned_g, 1);
}

/* Stopping a unit is in two steps, so that a rebalance taking several
 * partitions away stops their units together and waits only for their
 * hand-overs (final checkpoint, alerts out, consumer closed), not for
 * their state to be freed:
 *   unit_stop_begin: ask it to stop (lost: the partition may already be
 *     another's: nothing more is produced or checkpointed);
 *   unit_stop_wait: wait until it has handed the partition over, then put
 *     it on the retiring list, joined and freed by reap_retiring(). */
static void unit_stop_begin(struct scale *sc, int32_t p, bool lost)
{
    if (p < 0 || (uint32_t)p >= sc->nparts || !sc->units[p])
        return;
    struct unit *u = sc->units[p];
    if (lost) {
        atomic_store(&u->lost, true);
        atomic_store(&u->owned, false);
    }
    u->stop = 1;
}

static void unit_stop_wait(struct scale *sc, int32_t p)
{
    if (p < 0 || (uint32_t)p >= sc->nparts || !sc->units[p])
        return;
    struct unit *u = sc->units[p];
    pthread_mutex_lock(&sc->mu);
    while (!atomic_load(&u->handed))
        pthread_cond_wait(&sc->handed_cv, &sc->mu);
    pthread_mutex_unlock(&sc->mu);
    atomic_store(&u->owned, false);
    atomic_store(&sc->own[p], false);
    sc->units[p] = NULL;
    u->next_retiring = sc->retiring;
    sc->retiring = u;
    fw_gauge_add(sc->owned_g, -1);
    fw_counter_add(sc->handovers, 1);
}

static void unit_stop(struct scale *sc, int32_t p, bool lost)
{
    unit_stop_begin(sc, p, lost);
    unit_stop_wait(sc, p);
}

/* Joins and frees the retiring units that are done, and those of
 * partition `p` (>= 0) or all of them (REAP_ALL) whether done or not. */
static void reap_retiring(struct scale *sc, int32_t p)
{
    for (struct unit **up = &sc->retiring; *up;) {
        struct unit *u = *up;
        if (atomic_load(&u->ended) || u->p == p || p == REAP_ALL) {
            pthread_join(u->th, NULL);
            *up = u->next_retiring;
            free(u);
        } else {
            up = &u->next_retiring;
        }
    }
}

/* ---- ownership: the control group ------------------------------------------ */

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct scale *sc = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        sc->ctl_assigned = true;
        rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        fw_rejoin_assigned(&sc->rejoin);
        /* From a SyncGroup the coordinator answered, empty or not: this
         * member is current (renewals may have been held for the round). */
        if (!atomic_load(&sc->broken) && !sc->ctl_closing)
            atomic_store(&sc->lease_until, fw_mono_ms() + sc->session_ms / 2);
        if (parts->cnt > 0 && !atomic_load(&sc->broken) && !sc->ctl_closing) {
            atomic_store(&sc->lease_until, fw_mono_ms() + sc->session_ms / 2);
            for (int i = 0; i < parts->cnt; i++) {
                fw_log(FW_LOG_INFO, "scale", "partition assigned: restoring its state",
                       "partition=%d", (int)parts->elems[i].partition);
                unit_start(sc, parts->elems[i].partition);
            }
        }
        return;
    }
    bool lost = rd_kafka_assignment_lost(rk);
    int64_t t_cb = fw_mono_ms();
    for (int i = 0; i < parts->cnt; i++) {
        fw_log(FW_LOG_INFO, "scale", lost ? "partition lost: stopping its unit, no checkpoint"
                                          : "partition revoked: final checkpoint, then hand-over",
               "partition=%d", (int)parts->elems[i].partition);
        unit_stop_begin(sc, parts->elems[i].partition, lost);
    }
    for (int i = 0; i < parts->cnt; i++)
        unit_stop_wait(sc, parts->elems[i].partition);
    if (parts->cnt > 0)
        fw_log(FW_LOG_INFO, "scale", lost ? "partitions let go" : "partitions handed over",
               "count=%d ms=%lld", parts->cnt, (long long)(fw_mono_ms() - t_cb));
    rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
    /* No renewal from here until the next round's assignment: one that
     * waited behind this member's JoinGroup would lose it every partition
     * (kafka.h).  Under the lock, so that a renewal under way is answered
     * first.  The revocation came from a SyncGroup the coordinator answered
     * just before this callback, so the lease runs for the usual half
     * session from the callback's start (renewals during the final
     * checkpoints may have taken it further); the round's assignment
     * renews it. */
    pthread_mutex_lock(&sc->renew_mu);
    fw_rejoin_revoked(&sc->rejoin, rk, lost);
    pthread_mutex_unlock(&sc->renew_mu);
    if (!lost && !atomic_load(&sc->broken) &&
        atomic_load(&sc->lease_until) < t_cb + sc->session_ms / 2)
        atomic_store(&sc->lease_until, t_cb + sc->session_ms / 2);
}

/* One broker round trip that only a current member can make (election.c
 * has the reasoning); on its own thread, so that a unit's final checkpoint
 * in a revocation (the caller's thread waits for it) keeps its lease. */
static void renew_now(struct scale *sc)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (uint32_t p = 0; p < sc->nparts; p++)
        if (atomic_load(&sc->own[p]))
            rd_kafka_topic_partition_list_add(l, sc->ctopic, (int32_t)p)->offset = 0;
    if (l->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(l);
        return;
    }
    int64_t t = fw_mono_ms();
    rd_kafka_resp_err_t r = rd_kafka_commit(sc->ctl, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    if (r == RD_KAFKA_RESP_ERR_NO_ERROR)
        atomic_store(&sc->lease_until, t + sc->session_ms / 2);
    else if (r == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
             r == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID) {
        /* Evicted (a pause past the session): every unit's fence closes
         * now; the rebalance callback then reports the assignment lost and
         * the daemon rejoins as a new member. */
        /* Not ILLEGAL_GENERATION: with several members, every join bumps
         * the generation, and a commit racing the rebalance gets it while
         * the member keeps its partitions.  An evicted member gets
         * UNKNOWN_MEMBER_ID (and its rebalance callback a lost assignment). */
        fw_log(FW_LOG_ERROR, "scale", "the control group refused this member: its partitions "
               "are another's now; producing nothing more for them", "error=\"%s\"",
               rd_kafka_err2str(r));
        for (uint32_t p = 0; p < sc->nparts; p++)
            atomic_store(&sc->own[p], false);
        atomic_fetch_add(&sc->evicted, 1);
    }
}

static void renew(struct scale *sc)
{
    pthread_mutex_lock(&sc->renew_mu);
    if (!fw_rejoin_holding(&sc->rejoin))   /* the group rebalancing (kafka.h) */
        renew_now(sc);
    pthread_mutex_unlock(&sc->renew_mu);
}

static void *lease_main(void *arg)
{
    struct scale *sc = arg;
    int64_t every = sc->session_ms / 6 > 100 ? sc->session_ms / 6 : 100;
    while (!atomic_load(&sc->quit)) {
        renew(sc);
        for (int64_t t = 0; t < every && !atomic_load(&sc->quit); t += 20) {
            struct timespec ts = { 0, 20 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static int control_new(struct scale *sc, char *err, size_t errlen)
{
    sc->ctl = fw_control_consumer_new(sc->s, sc->cgroup, sc->ctopic, on_rebalance, sc, err,
                                      errlen);
    return sc->ctl ? 0 : -1;
}

static bool assigned(struct scale *sc, int32_t p)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    bool yes = false;
    if (rd_kafka_assignment(sc->ctl, &l) == 0 && l) {
        for (int i = 0; i < l->cnt && !yes; i++)
            yes = l->elems[i].partition == p;
    }
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    return yes;
}

static void *forwarder_main(void *arg)
{
    struct scale *sc = arg;
    atomic_store(&sc->fwd_rc, fw_forwarder_run(sc->fwd, &sc->fwd_stop));
    atomic_store(&sc->fwd_done, true);
    return NULL;
}

int fw_scale_topics_init(const fw_settings *s, char *err, size_t errlen)
{
    char r[300], st[300], c[300];
    fw_scale_topics(s, r, st, c, sizeof r);
    const struct { const char *t; bool state; const char *what; } all[] = {
        { r, false, "repartition topic" }, { st, true, "state topic" },
        { c, false, "control topic" } };
    for (size_t i = 0; i < 3; i++) {
        bool created;
        if (fw_kafka_ensure_topic_n(s, all[i].t, all[i].state, s->scale_partitions, &created,
                                    err, errlen) != 0)
            return -1;
        if (created)
            fw_log(FW_LOG_INFO, "scale", "topic created", "what=\"%s\" topic=%s partitions=%d",
                   all[i].what, all[i].t, s->scale_partitions);
    }
    return 0;
}

int fw_scale_run(const fw_settings *s, fw_metrics *m, fw_reloader *rl, fw_ruleset *rs,
                 volatile sig_atomic_t *stop, volatile sig_atomic_t *hup, char *err,
                 size_t errlen)
{
    struct scale sc = { .s = s, .m = m, .nparts = (uint32_t)s->scale_partitions,
                        .session_ms = s->ha_session_timeout_ms };
    int rc = 1;
    pthread_mutex_init(&sc.mu, NULL);
    pthread_cond_init(&sc.handed_cv, NULL);
    pthread_mutex_init(&sc.renew_mu, NULL);
    sc.rs = fw_ruleset_ref(rs);
    sc.sn = fw_reloader_take_snoozes(rl);
    fw_scale_topics(s, sc.rtopic, sc.stopic, sc.ctopic, sizeof sc.rtopic);
    snprintf(sc.cgroup, sizeof sc.cgroup, "%s.scale-control", s->group_id);
    sc.units = fw_xcalloc(sc.nparts, sizeof *sc.units);
    sc.own = fw_xcalloc(sc.nparts, sizeof *sc.own);
    sc.owned_g = fw_metrics_gauge(m, "fraudwatch_scale_partitions_owned",
                                  "Repartition partitions whose state this daemon owns "
                                  "(ha.mode = scaleout).", "");
    sc.restores = fw_metrics_counter(m, "fraudwatch_scale_restores_total",
                                     "Repartition partitions taken over (their last checkpoint "
                                     "restored from the state topic).", "");
    sc.handovers = fw_metrics_counter(m, "fraudwatch_scale_handovers_total",
                                      "Repartition partitions given up (revoked or lost).", "");
    sc.restore_s = fw_metrics_gauge(m, "fraudwatch_scale_restore_seconds",
                                    "Time the last partition taken over took to restore and "
                                    "start.", "");
    fw_gauge_set(sc.owned_g, 0);

    if (fw_scale_topics_init(s, err, errlen) != 0 ||
        fw_inputs_load(s, &sc.inputs, err, errlen) != 0)
        goto out;
    sc.fwd = fw_forwarder_new(s, rs, m, err, errlen);
    if (!sc.fwd)
        goto out;
    if (pthread_create(&sc.fwd_th, NULL, forwarder_main, &sc) != 0) {
        snprintf(err, errlen, "cannot start the forwarder thread");
        goto out;
    }
    sc.fwd_started = true;
    if (control_new(&sc, err, errlen) != 0)
        goto out;
    if (pthread_create(&sc.lease_th, NULL, lease_main, &sc) != 0) {
        snprintf(err, errlen, "cannot start the lease thread");
        goto out;
    }
    sc.lease_started = true;
    fw_log(FW_LOG_INFO, "daemon", "running (ha.mode = scaleout)",
           "instance=%s partitions=%u inputs=%u repartition_topic=%s state_topic=%s group=%s",
           s->instance_id, sc.nparts, sc.inputs.n, sc.rtopic, sc.stopic, s->group_id);

    rc = 0;
    while (!*stop) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(sc.ctl, 100);
        if (msg)
            rd_kafka_message_destroy(msg);
        if (atomic_load(&sc.broken)) {
            snprintf(err, errlen, "%s", sc.broken_why);
            rc = 3;
            break;
        }
        if (atomic_load(&sc.fwd_done)) {
            snprintf(err, errlen, "forwarder: %s", fw_forwarder_fatal(sc.fwd)
                                                       ? fw_forwarder_fatal(sc.fwd) : "stopped");
            rc = 3;
            break;
        }
        for (uint32_t p = 0; p < sc.nparts; p++)
            if (sc.units[p] && atomic_load(&sc.units[p]->ended)) {
                struct unit *u = sc.units[p];
                if (u->failed) {
                    snprintf(err, errlen, "%s", u->err);
                    rc = 3;
                    break;
                }
                /* Fenced while the group may still give it to us: once
                 * the lease is good again and the partition is still
                 * assigned, a new unit restores its last checkpoint. */
                if (fw_mono_ms() < atomic_load(&sc.lease_until) && assigned(&sc, (int32_t)p)) {
                    unit_stop(&sc, (int32_t)p, true);
                    fw_log(FW_LOG_INFO, "scale", "restarting a fenced unit: the partition is "
                                                 "still this daemon's", "partition=%u", p);
                    unit_start(&sc, (int32_t)p);
                }
            }
        if (rc)
            break;
        reap_retiring(&sc, REAP_DONE);
        if (*hup) {
            *hup = 0;
            fw_reloader_hup(rl);
        }
        fw_snoozes *sn = fw_reloader_take_snoozes(rl);
        if (sn) {
            pthread_mutex_lock(&sc.mu);
            if (sc.sn)
                fw_snoozes_unref(sc.sn);
            sc.sn = sn;
            atomic_fetch_add(&sc.snooze_gen, 1);
            pthread_mutex_unlock(&sc.mu);
            fw_log(FW_LOG_INFO, "snooze", "snoozes swapped in", "snoozes=%zu",
                   fw_snoozes_count(sn));
        }
        fw_ruleset *nrs = fw_reloader_take(rl);
        if (nrs) {
            fw_forwarder_swap_rules(sc.fwd, nrs);
            pthread_mutex_lock(&sc.mu);
            fw_ruleset_unref(sc.rs);
            sc.rs = nrs;
            atomic_fetch_add(&sc.rules_gen, 1);
            pthread_mutex_unlock(&sc.mu);
            fw_log(FW_LOG_INFO, "rules", "rule set swapped in", "version=%llu rules=%zu",
                   (unsigned long long)fw_ruleset_version(nrs), fw_ruleset_rule_count(nrs));
        }
    }
out:
    atomic_store(&sc.exiting, true);
    /* The forwarder first (what it sent is acknowledged and committed),
     * then the units: leaving the control group revokes them, each writes
     * its final checkpoint — unless the ownership was lost. */
    if (sc.fwd_started) {
        sc.fwd_stop = 1;
        pthread_join(sc.fwd_th, NULL);
        char cerr[512];
        if (!atomic_load(&sc.broken) && rc == 0 &&
            fw_forwarder_close(sc.fwd, fw_mono_ms() + CLOSE_WAIT_MS, cerr, sizeof cerr) != 0) {
            snprintf(err, errlen, "forwarder: %s", cerr);
            rc = 1;
        }
    }
    if (sc.ctl) {
        bool lost = atomic_load(&sc.broken) || rc != 0;
        for (uint32_t p = 0; p < sc.nparts; p++)
            unit_stop_begin(&sc, (int32_t)p, lost);
        for (uint32_t p = 0; p < sc.nparts; p++)
            unit_stop_wait(&sc, (int32_t)p);
        atomic_store(&sc.quit, true);
        if (sc.lease_started)
            pthread_join(sc.lease_th, NULL);
        /* Still joining the control group, it cannot be destroyed
         * (kafka.h): it waits for its first assignment, starts no unit for
         * it, and the close gives it back.  If that does not come in time,
         * the handle is left as it is: the process is about to exit. */
        sc.ctl_closing = true;
        if (fw_kafka_await_first_assignment(sc.ctl, &sc.ctl_assigned,
                                            fw_mono_ms() + CLOSE_WAIT_MS, "control consumer")) {
            rd_kafka_consumer_close(sc.ctl);
            rd_kafka_destroy(sc.ctl);
        }
    }
    for (uint32_t p = 0; p < sc.nparts; p++)
        unit_stop_begin(&sc, (int32_t)p, true);
    for (uint32_t p = 0; p < sc.nparts; p++)
        unit_stop_wait(&sc, (int32_t)p);
    reap_retiring(&sc, REAP_ALL);
    fw_forwarder_free(sc.fwd);
    fw_inputs_free(&sc.inputs);
    free(sc.units);
    free(sc.own);
    fw_ruleset_unref(sc.rs);
    if (sc.sn)
        fw_snoozes_unref(sc.sn);
    pthread_cond_destroy(&sc.handed_cv);
    pthread_mutex_destroy(&sc.renew_mu);
    pthread_mutex_destroy(&sc.mu);
    return rc;
}
