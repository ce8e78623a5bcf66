/* election.c — `ha.mode = standby`: which daemon of the group is active,
 * decided by Kafka, and the fence that keeps a daemon that lost the role
 * from producing (docs/scaling.md, "Failover").
 *
 * The election: every daemon joins the consumer group "<group>.control"
 * subscribed to the one-partition control topic.  The group coordinator
 * gives that partition to exactly one member at a time: that member is the
 * active daemon.  The others stand by (they have not joined the input
 * group, so they read nothing) until a rebalance gives them the partition
 * — when the active daemon leaves (SIGTERM: at once) or its session times
 * out (kill -9, SIGSTOP, a cut connection: ha.session_timeout_ms).  The
 * assignor is cooperative-sticky, so a standby joining or leaving never
 * takes the partition from the active daemon.  No ZooKeeper, no etcd, no
 * shared disk: only the broker the daemon already needs.
 *
 * The fence: a daemon paused past the session timeout (SIGSTOP, a VM
 * freeze, a long GC-like stall) resumes still believing it is active,
 * while another has taken over.  Before every alert and dead letter the
 * sink asks fw_election_check(): the role is held under a lease that only
 * a broker round trip renews — a synchronous offset commit of the control
 * partition, which the coordinator accepts only from a current member of
 * the current generation (a stale one gets UNKNOWN_MEMBER_ID or
 * ILLEGAL_GENERATION).  A successful commit sent at t extends the lease to
 * t + session/2 (the coordinator counts a member's commit as a sign of
 * life, and evicts only after a whole session without one, so the role
 * cannot have moved before then).  Renewals are tried every session/6.
 * After a pause the monotonic clock has moved on, so the lease is stale at
 * the very first check: the sink waits until the thread below renews it
 * (the pause was short: go on) or learns the role is lost (a fenced
 * commit, or the rebalance callback's revocation), and then produces
 * nothing more.  The daemon exits (status 3) without a checkpoint; its
 * input consumer's commits are refused by generation fencing too.  The
 * remaining window — a pause that starts between the check and the
 * producer call, microseconds — is stated in docs/scaling.md; the alerts
 * such a window lets through are copies (same alert_id) of alerts the new
 * active daemon produces from the same checkpoint.  A transactional
 * producer (fencing by epoch in the broker) would close it, at the price
 * of transactions on the alert path; not chosen for now.
 *
 * Threads: one thread of its own polls the control consumer (rebalance
 * callbacks run there) and renews the lease; the state below is under a
 * mutex, read by the daemon's main thread (the fence: an atomic fast path,
 * the mutex only when the lease is stale). */
#include "election.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt_kafka.h"
#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "kafka.h"

#define CLOSE_WAIT_MS 5000   /* leaving the control group while still joining it */

struct fw_election {
    rd_kafka_t *rk;
    bool assigned_once;          /* its first assignment came (kafka.h: joining) */
    char topic[300];
    char group[1100];
    int64_t session_ms;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool quit;
    atomic_bool active;          /* holds the control partition */
    atomic_bool lost;            /* held it, then lost it: for good */
    atomic_llong lease_until;    /* fw_mono_ms() */
    char why[256];               /* how the role was lost (under mu) */
    fw_gauge *role;
    fw_counter *takeovers;
};

void fw_election_topic(const fw_settings *s, char *out, size_t outlen)
{
    if (s->ha_control_topic && *s->ha_control_topic)
        snprintf(out, outlen, "%s", s->ha_control_topic);
    else
        snprintf(out, outlen, "%s.control", s->group_id);
}

void fw_election_group(const fw_settings *s, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s.control", s->group_id);
}

static void set_lost(fw_election *e, const char *why)
{
    pthread_mutex_lock(&e->mu);
    if (atomic_load(&e->active) && !atomic_load(&e->lost)) {
        snprintf(e->why, sizeof e->why, "%s", why);
        atomic_store(&e->lost, true);
        atomic_store(&e->active, false);
        fw_log(FW_LOG_ERROR, "ha", "lost the active role: producing nothing more", "why=\"%s\"",
               why);
        if (e->role)
            fw_gauge_set(e->role, 0);
    }
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fw_election *e = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        e->assigned_once = true;
        fw_kafka_rebalance_apply(rk, err, parts);
        /* While leaving (fw_election_free), an assignment elects nobody. */
        if (parts->cnt > 0 && !atomic_load(&e->lost) && !atomic_load(&e->quit)) {
            pthread_mutex_lock(&e->mu);
            atomic_store(&e->lease_until, fw_mono_ms() + e->session_ms / 2);
            atomic_store(&e->active, true);
            pthread_cond_broadcast(&e->cv);
            pthread_mutex_unlock(&e->mu);
            if (e->role)
                fw_gauge_set(e->role, 1);
            if (e->takeovers)
                fw_counter_add(e->takeovers, 1);
            fw_log(FW_LOG_INFO, "ha", "elected: this daemon is now the active one",
                   "control_topic=%s group=%s", e->topic, e->group);
        }
        return;
    }
    if (parts->cnt > 0)
        set_lost(e, rd_kafka_assignment_lost(rk) ? "the control partition's assignment was lost "
                                                   "(session timed out)"
                                                 : "the control partition was revoked");
    fw_kafka_rebalance_apply(rk, err, parts);
}

/* One broker round trip that only a current member can make. */
static void renew(fw_election *e)
{
    int64_t t = fw_mono_ms();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, e->topic, 0)->offset = 0;
    rd_kafka_resp_err_t r = rd_kafka_commit(e->rk, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    switch (r) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        pthread_mutex_lock(&e->mu);
        if (atomic_load(&e->active))
            atomic_store(&e->lease_until, t + e->session_ms / 2);
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        return;
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID: {
        char why[200];
        snprintf(why, sizeof why, "the control group refused this member: %s",
                 rd_kafka_err2str(r));
        set_lost(e, why);
        return;
    }
    default:
        /* A rebalance in progress, a broker away: not proof either way;
         * the lease runs out if this goes on. */
        fw_log(FW_LOG_DEBUG, "ha", "lease not renewed", "error=\"%s\"", rd_kafka_err2str(r));
        return;
    }
}

static void *election_main(void *arg)
{
    fw_election *e = arg;
    int64_t every = e->session_ms / 6 > 100 ? e->session_ms / 6 : 100;
    int64_t next = 0;
    while (!atomic_load(&e->quit)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(e->rk, 100);
        if (m)
            rd_kafka_message_destroy(m);
        int64_t now = fw_mono_ms();
        if (atomic_load(&e->active) && now >= next) {
            renew(e);
            next = now + every;
        }
    }
    return NULL;
}

/* The consumer of a control group (here, and scale.c's ownership of
 * repartition partitions): the operator's pass-through keys, then the
 * session of ha.session_timeout_ms, cooperative-sticky, no auto commit;
 * subscribed to `topic`, its rebalances to `rebalance` with `opaque`. */
rd_kafka_t *fw_control_consumer_new(const fw_settings *s, const char *group, const char *topic,
                                    fw_control_rebalance_fn rebalance, void *opaque, char *err,
                                    size_t errlen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    /* Heartbeats every session/10: a member learns from its heartbeat that
     * the group rebalances, and a scale-out hand-over's second round waits
     * for every member to learn it (1.44 s with session/5, 1.00 s with
     * session/10 at the default 6 s session; librdkafka 2.0.2 serves the
     * group about once a second, so less would not help). */
    char sess[32], hb[32];
    snprintf(sess, sizeof sess, "%d", s->ha_session_timeout_ms);
    snprintf(hb, sizeof hb, "%d", s->ha_session_timeout_ms / 10 > 100 ? s->ha_session_timeout_ms / 10
                                                                      : 100);
    int bad = fw_kafka_set(c, "control consumer", "bootstrap.servers", s->brokers, err, errlen);
    for (size_t i = 0; !bad && i < s->nconsumer; i++)
        bad = fw_kafka_set(c, "control consumer", s->consumer_keys[i], s->consumer_values[i], err,
                           errlen);
    if (bad || fw_kafka_set(c, "control consumer", "group.id", group, err, errlen) ||
        fw_kafka_set(c, "control consumer", "client.id", s->instance_id, err, errlen) ||
        fw_kafka_set(c, "control consumer", "session.timeout.ms", sess, err, errlen) ||
        fw_kafka_set(c, "control consumer", "heartbeat.interval.ms", hb, err, errlen) ||
        fw_kafka_set(c, "control consumer", "partition.assignment.strategy",
                     "cooperative-sticky", err, errlen) ||
        fw_kafka_set(c, "control consumer", "enable.auto.commit", "false", err, errlen) ||
        fw_kafka_set(c, "control consumer", "enable.partition.eof", "false", err, errlen) ||
        fw_kafka_set(c, "control consumer", "auto.offset.reset", "latest", err, errlen)) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_conf_set_opaque(c, opaque);
    rd_kafka_conf_set_rebalance_cb(c, rebalance);
    rd_kafka_conf_set_log_cb(c, fw_kafka_log);
    char ebuf[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, ebuf, sizeof ebuf);
    if (!rk) {
        rd_kafka_conf_destroy(c);
        snprintf(err, errlen, "cannot create the Kafka control consumer: %s", ebuf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t r = rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    if (r) {
        snprintf(err, errlen, "cannot subscribe to the control topic %s: %s", topic,
                 rd_kafka_err2str(r));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

fw_election *fw_election_new(const fw_settings *s, fw_metrics *m, char *err, size_t errlen)
{
    fw_election *e = fw_xcalloc(1, sizeof *e);
    fw_election_topic(s, e->topic, sizeof e->topic);
    fw_election_group(s, e->group, sizeof e->group);
    e->session_ms = s->ha_session_timeout_ms;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    bool created;
    if (fw_kafka_ensure_topic(s, e->topic, false, &created, err, errlen) != 0)
        goto fail;
    if (created)
        fw_log(FW_LOG_INFO, "ha", "control topic created", "topic=%s", e->topic);
    e->rk = fw_control_consumer_new(s, e->group, e->topic, on_rebalance, e, err, errlen);
    if (!e->rk)
        goto fail;
    if (m) {
        e->role = fw_metrics_gauge(m, "fraudwatch_ha_active",
                                   "1 while this daemon is the active one of its group "
                                   "(ha.mode = standby), 0 while it stands by.", "");
        e->takeovers = fw_metrics_counter(m, "fraudwatch_ha_elections_total",
                                          "Times this daemon was elected active.", "");
        fw_gauge_set(e->role, 0);
    }
    if (pthread_create(&e->thread, NULL, election_main, e) != 0) {
        snprintf(err, errlen, "cannot start the election thread");
        goto fail;
    }
    e->thread_started = true;
    return e;
fail:
    fw_election_free(e);
    return NULL;
}

int fw_election_wait(fw_election *e, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    fw_log(FW_LOG_INFO, "ha", "standing by: waiting to be elected active",
           "control_topic=%s group=%s", e->topic, e->group);
    pthread_mutex_lock(&e->mu);
    while (!atomic_load(&e->active) && !(stop && *stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 200000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_clockwait(&e->cv, &e->mu, CLOCK_MONOTONIC, &ts);
    }
    int rc = atomic_load(&e->active) ? 1 : 0;
    pthread_mutex_unlock(&e->mu);
    (void)err;
    (void)errlen;
    return rc;
}

bool fw_election_check(fw_election *e, char *why, size_t whylen)
{
    if (atomic_load_explicit(&e->active, memory_order_acquire) &&
        fw_mono_ms() < atomic_load_explicit(&e->lease_until, memory_order_acquire))
        return true;
    /* Stale: wait for the thread to renew it or to learn the role is gone. */
    int64_t until = fw_mono_ms() + e->session_ms;
    bool ok = false;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        if (atomic_load(&e->lost) || !atomic_load(&e->active)) {
            snprintf(why, whylen, "lost the active role: %s", e->why[0] ? e->why : "not elected");
            break;
        }
        int64_t now = fw_mono_ms();
        if (now < atomic_load(&e->lease_until)) {
            ok = true;
            break;
        }
        if (now >= until) {
            snprintf(why, whylen, "the active role's lease was not renewed within "
                                  "ha.session_timeout_ms = %lld ms (control group unreachable): "
                                  "the role may have moved", (long long)e->session_ms);
            pthread_mutex_unlock(&e->mu);
            set_lost(e, why);
            return false;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 50000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_clockwait(&e->cv, &e->mu, CLOCK_MONOTONIC, &ts);
    }
    pthread_mutex_unlock(&e->mu);
    return ok;
}

void fw_election_free(fw_election *e)
{
    if (!e)
        return;
    atomic_store(&e->quit, true);
    if (e->thread_started)
        pthread_join(e->thread, NULL);
    /* Still joining the control group, the consumer cannot be destroyed
     * (kafka.h): it waits for its first assignment, and the close gives it
     * back; if that does not come in time it is left as it is (the process
     * is about to exit). */
    if (e->rk && fw_kafka_await_first_assignment(e->rk, &e->assigned_once,
                                                 fw_mono_ms() + CLOSE_WAIT_MS,
                                                 "control consumer")) {
        rd_kafka_consumer_close(e->rk);   /* leave: a standby takes over now */
        rd_kafka_destroy(e->rk);
    }
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

/* ---- the fenced sink ------------------------------------------------------- */

struct fw_fence_sink {
    fw_sink_ops ops;
    const fw_sink_ops *inner;
    void *self;
    fw_fence_check_fn check;
    fw_fence_gone_fn gone;
    void *ctx;
    bool refused;
    char fatal[512];
};

static bool allowed(fw_fence_sink *f)
{
    if (f->refused)
        return false;
    char why[400];
    if (f->check(f->ctx, why, sizeof why))
        return true;
    f->refused = true;
    snprintf(f->fatal, sizeof f->fatal, "fenced: %s (stopping before producing; another "
                                        "daemon has taken over from the last checkpoint)", why);
    return false;
}

static void fs_alert(void *self, const fw_alert_view *a, const fw_origin *from)
{
    fw_fence_sink *f = self;
    if (allowed(f))
        f->inner->alert(f->self, a, from);
}

static void fs_dead_letter(void *self, const char *payload, size_t len, const char *reason,
                           const fw_origin *from)
{
    fw_fence_sink *f = self;
    if (allowed(f))
        f->inner->dead_letter(f->self, payload, len, reason, from);
}

static uint64_t fs_mark(void *self)
{
    fw_fence_sink *f = self;
    return f->inner->mark(f->self);
}
static bool fs_acked(void *self, uint64_t mark)
{
    fw_fence_sink *f = self;
    return f->inner->acked(f->self, mark);
}
static int fs_drain(void *self, volatile sig_atomic_t *stop, int timeout_ms)
{
    fw_fence_sink *f = self;
    return f->inner->drain(f->self, stop, timeout_ms);
}
static uint64_t fs_pending(void *self)
{
    fw_fence_sink *f = self;
    return f->inner->pending(f->self);
}
static void fs_tick(void *self)
{
    fw_fence_sink *f = self;
    f->inner->tick(f->self);
}
static const char *fs_fatal(void *self)
{
    fw_fence_sink *f = self;
    if (!f->refused && f->gone(f->ctx))
        allowed(f);             /* lost with nothing to produce: stop all the same */
    if (f->refused)
        return f->fatal;
    return f->inner->fatal ? f->inner->fatal(f->self) : NULL;
}

static bool election_check(void *ctx, char *why, size_t whylen)
{
    return fw_election_check(ctx, why, whylen);
}

static bool election_gone(void *ctx)
{
    fw_election *e = ctx;
    return atomic_load(&e->lost);
}

fw_fence_sink *fw_fence_sink_new(const fw_sink_ops *inner, void *inner_self, fw_election *e)
{
    return fw_fence_sink_new_fn(inner, inner_self, election_check, election_gone, e);
}

fw_fence_sink *fw_fence_sink_new_fn(const fw_sink_ops *inner, void *inner_self,
                                    fw_fence_check_fn check, fw_fence_gone_fn gone, void *ctx)
{
    fw_fence_sink *f = fw_xcalloc(1, sizeof *f);
    f->inner = inner;
    f->self = inner_self;
    f->check = check;
    f->gone = gone;
    f->ctx = ctx;
    f->ops = (fw_sink_ops){
        .name = "fenced",
        .alert = fs_alert,
        .dead_letter = fs_dead_letter,
        .mark = inner->mark ? fs_mark : NULL,
        .acked = inner->acked ? fs_acked : NULL,
        .drain = inner->drain ? fs_drain : NULL,
        .pending = inner->pending ? fs_pending : NULL,
        .tick = inner->tick ? fs_tick : NULL,
        .fatal = fs_fatal,
    };
    return f;
}

const fw_sink_ops *fw_fence_sink_ops(fw_fence_sink *f) { return &f->ops; }

void fw_fence_sink_free(fw_fence_sink *f) { free(f); }
