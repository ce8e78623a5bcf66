/* repart_out.c — ha.mode = scaleout, stage A: the input partitions this
 * daemon owns in the input group, forwarded by key into the repartition
 * topic (repart.h has the record layout, docs/scaling.md the design).
 *
 * Owns the input consumer (kafka.group.id, cooperative-sticky, so a daemon
 * joining or leaving moves only the partitions it must) and the
 * repartition producer (idempotent, acks=all: per partition, records land
 * in the order sent, without gaps).  For each input message it runs the
 * rules' matching (engine.c, the same scan as the units) only to learn the
 * keys the event updates, and produces the message once to each
 * repartition partition that owns one of those keys (fw_part_of).  An
 * event no rule matches goes nowhere — most events — and a malformed one
 * goes to one partition, whose owner dead-letters it.  Matching happens
 * again in the unit: the unit must see the rules it applies, and a
 * re-scan of the few matched events is cheaper than shipping the updates.
 *
 * Progress marks: every scale.mark_interval_ms, for every input partition
 * it owns, one mark into every repartition partition (the next offset to
 * forward, and whether that is the partition's end).  A unit merges its
 * partition's events by time across input partitions (repart_in.c) and
 * uses the marks to know when an input partition has nothing older to
 * come, and when its reader has gone silent.
 *
 * Input positions are committed only for what the repartition topic has
 * acknowledged (a flush, then a synchronous commit, every second and
 * before a revocation): a restart or a new owner forwards again from
 * there, and the units drop what they already have (by input offset).
 * Single-threaded: fw_forwarder_run's thread does everything but
 * fw_forwarder_swap_rules, which only hands a pointer over under a mutex. */
#include "repart.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "fraudwatch/alloc.h"
#include "fraudwatch/arena.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/event.h"
#include "fraudwatch/log.h"
#include "fraudwatch/pipeline.h"
#include "kafka.h"

#define COMMIT_EVERY_MS 1000
#define FLUSH_TIMEOUT_MS 30000

struct src {
    char *topic;
    int32_t partition;
    bool owned;
    int64_t next;            /* the next offset to forward; -1: not known yet */
    int64_t max_ts;          /* the latest message time read from it; -1: none */
    bool fetched;            /* a message or its end came since it was assigned: the
                                cached high watermark is this assignment's */
    int64_t epoch;           /* fw_wall_ms() when this daemon was assigned it */
};

struct fw_forwarder {
    const fw_settings *s;
    rd_kafka_t *in;          /* consumer */
    bool assigned_once;      /* its first assignment came (kafka.h: joining) */
    fw_rejoin_guard rejoin;  /* the periodic commit waits while the group
                                rebalances (kafka.h) */
    rd_kafka_t *out;         /* producer */
    rd_kafka_topic_t *rt;    /* the repartition topic */
    char rtopic[300];
    uint32_t nparts;
    struct src *srcs;
    uint32_t nsrcs, cap;
    fw_scanner *scanner;
    fw_arena *arena, *parse_arena;
    fw_updvec upd;
    uint8_t *hit;            /* per repartition partition, this event */
    fw_ruleset *rs;          /* the run thread's */
    pthread_mutex_t mu;
    fw_ruleset *next_rs;     /* handed over by fw_forwarder_swap_rules */
    int64_t mark_at, commit_at;

    atomic_int dr_failed;
    char dr_err[256];
    char fatal[512];
    fw_counter *read, *forwarded, *records, *marks;
    fw_kafka_waker waker;    /* wakes the consumer's fetchers after a full queue */
};

/* ---- the input partitions --------------------------------------------------- */

static struct src *src_of(fw_forwarder *f, const char *topic, int32_t partition)
{
    for (uint32_t i = 0; i < f->nsrcs; i++)
        if (f->srcs[i].partition == partition && strcmp(f->srcs[i].topic, topic) == 0)
            return &f->srcs[i];
    if (f->nsrcs == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->srcs = fw_xrealloc(f->srcs, f->cap * sizeof *f->srcs);
    }
    struct src *x = &f->srcs[f->nsrcs++];
    *x = (struct src){ .topic = fw_xstrdup(topic), .partition = partition, .next = -1,
                       .max_ts = -1 };
    return x;
}

/* Waits until everything produced is acknowledged, then commits the owned
 * partitions' positions (only those of `only`, when given).  0 or -1. */
static int settle_and_commit(fw_forwarder *f, const rd_kafka_topic_partition_list_t *only,
                             int timeout_ms)
{
    rd_kafka_resp_err_t r = rd_kafka_flush(f->out, timeout_ms);
    if (r || atomic_load(&f->dr_failed)) {
        snprintf(f->fatal, sizeof f->fatal, "the repartition topic %s did not acknowledge "
                 "every record: %s", f->rtopic,
                 atomic_load(&f->dr_failed) ? f->dr_err : rd_kafka_err2str(r));
        return -1;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (uint32_t i = 0; i < f->nsrcs; i++) {
        struct src *x = &f->srcs[i];
        if (!x->owned || x->next < 0)
            continue;
        if (only) {
            bool in = false;
            for (int j = 0; j < only->cnt && !in; j++)
                in = only->elems[j].partition == x->partition &&
                     strcmp(only->elems[j].topic, x->topic) == 0;
            if (!in)
                continue;
        }
        rd_kafka_topic_partition_list_add(l, x->topic, x->partition)->offset = x->next;
    }
    int rc = 0;
    if (l->cnt > 0 && (only || !fw_rejoin_holding(&f->rejoin))) {
        r = rd_kafka_commit(f->in, l, 0);
        if (r && r != RD_KAFKA_RESP_ERR__NO_OFFSET)
            fw_log(FW_LOG_WARN, "scale", "forwarder: input positions not committed (they are "
                                         "forwarded again after a hand-over; the units drop "
                                         "the copies)", "error=\"%s\"", rd_kafka_err2str(r));
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fw_forwarder *f = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        f->assigned_once = true;
        fw_rejoin_assigned(&f->rejoin);
        f->commit_at = 0;    /* what a rebalance held back, at once */
        /* Where each starts: its committed position (the next owner
         * forwards from what the last one had acknowledged). */
        rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
        rd_kafka_resp_err_t r = rd_kafka_committed(rk, c, 10000);
        for (int i = 0; i < parts->cnt; i++) {
            struct src *x = src_of(f, parts->elems[i].topic, parts->elems[i].partition);
            x->owned = true;
            x->fetched = false;
            x->epoch = fw_wall_ms();
            x->next = !r && c->elems[i].offset >= 0 ? c->elems[i].offset : -1;
        }
        rd_kafka_topic_partition_list_destroy(c);
        rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        f->mark_at = 0;      /* tell the units at once */
        fw_log(FW_LOG_INFO, "scale", "forwarder: input partitions assigned", "count=%d",
               parts->cnt);
        return;
    }
    if (!rd_kafka_assignment_lost(rk))
        settle_and_commit(f, parts, FLUSH_TIMEOUT_MS);
    for (int i = 0; i < parts->cnt; i++)
        src_of(f, parts->elems[i].topic, parts->elems[i].partition)->owned = false;
    rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
    fw_rejoin_revoked(&f->rejoin, rk, rd_kafka_assignment_lost(rk));
    fw_log(FW_LOG_INFO, "scale", "forwarder: input partitions revoked", "count=%d lost=%d",
           parts->cnt, (int)rd_kafka_assignment_lost(rk));
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    fw_forwarder *f = opaque;
    if (m->err && atomic_fetch_add(&f->dr_failed, 1) == 0)
        snprintf(f->dr_err, sizeof f->dr_err, "%s", rd_kafka_err2str(m->err));
}

/* ---- producing ---------------------------------------------------------------- */

/* Takes h (destroyed on failure). */
static int produce_h(fw_forwarder *f, int32_t part, const void *v, size_t len, int64_t ts,
                     rd_kafka_headers_t *h)
{
    for (;;) {
        rd_kafka_resp_err_t r = rd_kafka_producev(
            f->out, RD_KAFKA_V_RKT(f->rt), RD_KAFKA_V_PARTITION(part),
            RD_KAFKA_V_VALUE((void *)v, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_TIMESTAMP(ts > 0 ? ts : 0), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (!r)
            return 0;
        if (r == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(f->out, 10);
            continue;
        }
        rd_kafka_headers_destroy(h);
        snprintf(f->fatal, sizeof f->fatal, "producing to the repartition topic %s: %s",
                 f->rtopic, rd_kafka_err2str(r));
        return -1;
    }
}

static int produce(fw_forwarder *f, int32_t part, const void *v, size_t len, int64_t ts,
                   const char *hname, const char *hval)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, hname, -1, hval, -1);
    return produce_h(f, part, v, len, ts, h);
}

static int forward(fw_forwarder *f, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    struct src *x = src_of(f, topic, m->partition);
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    memset(f->hit, 0, f->nparts);
    fw_event ev;
    const char *reason;
    fw_arena *prev = fw_event_swap_arena(f->parse_arena);
    bool ok = fw_event_parse(m->payload ? m->payload : "", m->len, f->s->max_event_bytes, &ev,
                             &reason);
    uint32_t nhit = 0;
    if (!ok) {
        /* one owner dead-letters it */
        f->hit[(uint32_t)m->partition % f->nparts] = 1;
        nhit = 1;
    } else {
        f->upd.n = 0;
        fw_engine_scan(f->scanner, f->rs, &ev, 0, f->arena, &f->upd, 1, NULL);
        for (size_t i = 0; i < f->upd.n; i++) {
            uint32_t p = fw_part_of(f->upd.v[i].khash, f->nparts);
            if (!f->hit[p]) {
                f->hit[p] = 1;
                nhit++;
            }
        }
    }
    fw_event_swap_arena(prev);
    fw_arena_reset(f->parse_arena);
    fw_arena_reset(f->arena);
    if (nhit) {
        char hv[400];
        snprintf(hv, sizeof hv, "%s\x1f%d\x1f%lld", topic, (int)m->partition,
                 (long long)m->offset);
        for (uint32_t p = 0; p < f->nparts; p++)
            if (f->hit[p]) {
                if (produce(f, (int32_t)p, m->payload, m->len, ts, FW_REPART_HDR_IN, hv) != 0)
                    return -1;
                fw_counter_add(f->records, 1);
            }
        fw_counter_add(f->forwarded, 1);
    }
    x->next = m->offset + 1;
    x->fetched = true;
    fw_counter_add(f->read, 1);
    if (ts > x->max_ts)
        x->max_ts = ts;
    return 0;
}

/* One mark record into every repartition partition, with a header per
 * owned input partition. */
static int mark(fw_forwarder *f)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    for (uint32_t i = 0; i < f->nsrcs; i++) {
        struct src *x = &f->srcs[i];
        if (!x->owned)
            continue;
        int64_t lo = -1, hi = -1;
        rd_kafka_get_watermark_offsets(f->in, x->topic, x->partition, &lo, &hi);
        int64_t next = x->next >= 0 ? x->next : lo;
        /* librdkafka keeps a partition's watermarks from an earlier
         * assignment: only one fetched since this one tells the end. */
        bool caught = x->fetched && hi >= 0 && next >= 0 && next >= hi;
        char hv[400];
        snprintf(hv, sizeof hv, "%s\x1f%d\x1f%lld\x1f%d\x1f%lld\x1f%lld", x->topic,
                 (int)x->partition, (long long)next, caught ? 1 : 0, (long long)x->max_ts,
                 (long long)x->epoch);
        rd_kafka_header_add(h, FW_REPART_HDR_MARK, -1, hv, -1);
    }
    int rc = 0;
    if (rd_kafka_header_cnt(h) > 0)
        for (uint32_t p = 0; p < f->nparts && rc == 0; p++) {
            rc = produce_h(f, (int32_t)p, NULL, 0, 0, rd_kafka_headers_copy(h));
            if (rc == 0)
                fw_counter_add(f->marks, 1);
        }
    rd_kafka_headers_destroy(h);
    return rc;
}

/* The process stood still (SIGSTOP, a frozen VM) or the loop did (a long
 * flush): librdkafka's cached high watermarks are as old as that, and a
 * mark must not call a partition caught up on them — the partition may
 * even be another daemon's by now.  Ask the brokers. */
static void after_pause(fw_forwarder *f, int64_t gap_ms)
{
    fw_log(FW_LOG_WARN, "scale", "forwarder: the loop stood still; asking the brokers where "
                                 "the input partitions end before saying 'caught up' again",
           "gap_ms=%lld", (long long)gap_ms);
    for (uint32_t i = 0; i < f->nsrcs; i++) {
        struct src *x = &f->srcs[i];
        if (!x->owned)
            continue;
        int64_t lo, hi;
        x->fetched = rd_kafka_query_watermark_offsets(f->in, x->topic, x->partition, &lo, &hi,
                                                      2000) == 0 &&
                     (x->next >= 0 ? x->next : lo) >= hi;
    }
}

/* ---- life --------------------------------------------------------------------- */

fw_forwarder *fw_forwarder_new(const fw_settings *s, fw_ruleset *rules, fw_metrics *m,
                               char *err, size_t errlen)
{
    fw_forwarder *f = fw_xcalloc(1, sizeof *f);
    f->s = s;
    pthread_mutex_init(&f->mu, NULL);
    char st[300], ct[300];
    fw_scale_topics(s, f->rtopic, st, ct, sizeof f->rtopic);
    f->nparts = (uint32_t)s->scale_partitions;
    f->hit = fw_xcalloc(f->nparts, 1);
    f->rs = fw_ruleset_ref(rules);
    f->scanner = fw_scanner_new();
    f->arena = fw_arena_new(64 * 1024);
    f->parse_arena = fw_arena_new(64 * 1024);
    if (!f->scanner || !f->arena || !f->parse_arena) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    char sess[32], hb[32];
    snprintf(sess, sizeof sess, "%d", s->ha_session_timeout_ms);
    snprintf(hb, sizeof hb, "%d",
             s->ha_session_timeout_ms / 5 > 100 ? s->ha_session_timeout_ms / 5 : 100);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int bad = fw_kafka_set(c, "forwarder consumer", "bootstrap.servers", s->brokers, err, errlen) ||
              fw_kafka_set(c, "forwarder consumer", "group.id", s->group_id, err, errlen) ||
              fw_kafka_set(c, "forwarder consumer", "client.id", s->instance_id, err, errlen) ||
              fw_kafka_set(c, "forwarder consumer", "auto.offset.reset", "earliest", err, errlen) ||
              fw_kafka_set(c, "forwarder consumer", "enable.auto.commit", "false", err, errlen) ||
              fw_kafka_set(c, "forwarder consumer", "enable.auto.offset.store", "false", err,
                           errlen) ||
              /* the end of a partition, as an event: "caught up" (mark()) */
              fw_kafka_set(c, "forwarder consumer", "enable.partition.eof", "true", err,
                           errlen) ||
              fw_kafka_set(c, "forwarder consumer", "partition.assignment.strategy",
                           "cooperative-sticky", err, errlen) ||
              fw_kafka_set(c, "forwarder consumer", "session.timeout.ms", sess, err, errlen) ||
              fw_kafka_set(c, "forwarder consumer", "heartbeat.interval.ms", hb, err, errlen) ||
              fw_kafka_set(c, "forwarder consumer", "queued.max.messages.kbytes", "65536", err,
                           errlen);
    for (size_t i = 0; !bad && i < s->nconsumer; i++)
        bad = fw_kafka_set(c, "forwarder consumer", s->consumer_keys[i], s->consumer_values[i],
                           err, errlen);
    if (bad) {
        rd_kafka_conf_destroy(c);
        goto fail;
    }
    if (fw_kafka_waker_caps(&f->waker, c, "forwarder consumer", err, errlen)) {
        rd_kafka_conf_destroy(c);
        goto fail;
    }
    rd_kafka_conf_set_opaque(c, f);
    rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
    rd_kafka_conf_set_log_cb(c, fw_kafka_log);
    char e[512];
    f->in = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    if (!f->in) {
        rd_kafka_conf_destroy(c);
        snprintf(err, errlen, "cannot create the forwarder's consumer: %s", e);
        goto fail;
    }
    rd_kafka_poll_set_consumer(f->in);

    c = rd_kafka_conf_new();
    bad = fw_kafka_set(c, "repartition producer", "bootstrap.servers", s->brokers, err, errlen) ||
          fw_kafka_set(c, "repartition producer", "client.id", s->instance_id, err, errlen) ||
          fw_kafka_set(c, "repartition producer", "enable.idempotence", "true", err, errlen) ||
          fw_kafka_set(c, "repartition producer", "acks", "all", err, errlen) ||
          fw_kafka_set(c, "repartition producer", "linger.ms", "5", err, errlen) ||
          fw_kafka_set(c, "repartition producer", "compression.type", "lz4", err, errlen);
    for (size_t i = 0; !bad && i < s->nproducer; i++)
        bad = fw_kafka_set(c, "repartition producer", s->producer_keys[i], s->producer_values[i],
                           err, errlen);
    if (bad) {
        rd_kafka_conf_destroy(c);
        goto fail;
    }
    rd_kafka_conf_set_opaque(c, f);
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_log_cb(c, fw_kafka_log);
    f->out = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!f->out) {
        rd_kafka_conf_destroy(c);
        snprintf(err, errlen, "cannot create the repartition producer: %s", e);
        goto fail;
    }
    f->rt = rd_kafka_topic_new(f->out, f->rtopic, NULL);

    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < s->ninput_topics; i++)
        rd_kafka_topic_partition_list_add(t, s->input_topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t r = rd_kafka_subscribe(f->in, t);
    rd_kafka_topic_partition_list_destroy(t);
    if (r) {
        snprintf(err, errlen, "cannot subscribe to the input topics: %s", rd_kafka_err2str(r));
        goto fail;
    }
    f->read = fw_metrics_counter(m, "fraudwatch_scale_read_total",
                                 "Input messages this daemon's forwarder read.", "");
    f->forwarded = fw_metrics_counter(m, "fraudwatch_scale_forwarded_total",
                                      "Input events this daemon forwarded into the "
                                      "repartition topic (ha.mode = scaleout).", "");
    f->records = fw_metrics_counter(m, "fraudwatch_scale_repartition_records_total",
                                    "Event records produced into the repartition topic (an "
                                    "event whose keys fall in k partitions counts k).", "");
    f->marks = fw_metrics_counter(m, "fraudwatch_scale_marks_total",
                                  "Progress marks produced into the repartition topic.", "");
    fw_kafka_waker_start(&f->waker, f->in, fw_metrics_counter(
        m, "fraudwatch_scale_fetch_wakeups_total",
        "Times the forwarder woke librdkafka's fetchers after its consumer queue had been "
        "full.", ""));
    return f;
fail:
    fw_forwarder_free(f);
    return NULL;
}

void fw_forwarder_swap_rules(fw_forwarder *f, fw_ruleset *rs)
{
    fw_ruleset_ref(rs);
    pthread_mutex_lock(&f->mu);
    fw_ruleset *old = f->next_rs;
    f->next_rs = rs;
    pthread_mutex_unlock(&f->mu);
    if (old)
        fw_ruleset_unref(old);
}

int fw_forwarder_run(fw_forwarder *f, volatile sig_atomic_t *stop)
{
    int64_t last_turn = fw_mono_ms();
    while (!*stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->in, 20);
        int64_t turn = fw_mono_ms();
        if (turn - last_turn > f->s->ha_session_timeout_ms / 2)
            after_pause(f, turn - last_turn);
        last_turn = turn;
        if (m) {
            int rc = 0;
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->rkt) {
                src_of(f, rd_kafka_topic_name(m->rkt), m->partition)->fetched = true;
            } else if (m->err) {
                fw_log(FW_LOG_WARN, "scale", "forwarder: consumer error", "error=\"%s\"",
                       rd_kafka_message_errstr(m));
            } else {
                fw_kafka_waker_taken(&f->waker, m->len);
                rc = forward(f, m);
            }
            rd_kafka_message_destroy(m);
            if (rc)
                return -1;
        }
        rd_kafka_poll(f->out, 0);
        if (atomic_load(&f->dr_failed)) {
            snprintf(f->fatal, sizeof f->fatal, "the repartition topic %s refused a record: %s",
                     f->rtopic, f->dr_err);
            return -1;
        }
        int64_t now = fw_mono_ms();
        /* A mark every interval, moving input or not: a unit waits for an
         * idle input partition until a mark made after the event it holds
         * says "caught up" (repart_in.c). */
        if (now >= f->mark_at) {
            if (mark(f) != 0)
                return -1;
            f->mark_at = now + f->s->scale_mark_interval_ms;
        }
        if (now >= f->commit_at) {
            if (settle_and_commit(f, NULL, FLUSH_TIMEOUT_MS) != 0)
                return -1;
            f->commit_at = fw_mono_ms() + COMMIT_EVERY_MS;
        }
        pthread_mutex_lock(&f->mu);
        fw_ruleset *rs = f->next_rs;
        f->next_rs = NULL;
        pthread_mutex_unlock(&f->mu);
        if (rs) {
            fw_ruleset_unref(f->rs);
            f->rs = rs;
        }
    }
    return 0;
}

const char *fw_forwarder_fatal(const fw_forwarder *f) { return f->fatal[0] ? f->fatal : NULL; }

int fw_forwarder_close(fw_forwarder *f, int64_t until_ms, char *err, size_t errlen)
{
    int64_t left = until_ms - fw_mono_ms();
    if (settle_and_commit(f, NULL, (int)(left > 1000 ? left : 1000)) != 0) {
        snprintf(err, errlen, "%s", f->fatal);
        return -1;
    }
    fw_kafka_waker_stop(&f->waker);
    /* Still joining the input group, the consumer cannot be destroyed
     * (kafka.h): it waits for its first assignment, which the close gives
     * back (committing where the previous owner's commit left it). */
    if (!fw_kafka_await_first_assignment(f->in, &f->assigned_once, until_ms,
                                         "forwarder consumer"))
        return 0;   /* fw_forwarder_free() leaves it alone */
    rd_kafka_consumer_close(f->in);   /* the revocation commits again: harmless */
    return 0;
}

void fw_forwarder_free(fw_forwarder *f)
{
    if (!f)
        return;
    fw_kafka_waker_stop(&f->waker);
    /* Not closed while joining (an error path, or the close gave up
     * waiting): destroying it would abort (kafka.h), so it is left as it
     * is; the process is about to exit. */
    if (f->in && fw_kafka_joining(f->in, &f->assigned_once))
        fw_log(FW_LOG_WARN, "scale", "forwarder: consumer left unclosed: it was still joining "
                                     "its group (the group drops it after its session timeout)",
               NULL);
    else if (f->in)
        rd_kafka_destroy(f->in);
    if (f->rt)
        rd_kafka_topic_destroy(f->rt);
    if (f->out) {
        rd_kafka_flush(f->out, 5000);
        rd_kafka_destroy(f->out);
    }
    for (uint32_t i = 0; i < f->nsrcs; i++)
        free(f->srcs[i].topic);
    free(f->srcs);
    fw_scanner_free(f->scanner);
    fw_arena_free(f->arena);
    fw_arena_free(f->parse_arena);
    free(f->upd.v);
    free(f->hit);
    if (f->rs)
        fw_ruleset_unref(f->rs);
    if (f->next_rs)
        fw_ruleset_unref(f->next_rs);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
