/* kafka_in.c — the consumer: group membership, partitions, positions.
 *
 * Owns one librdkafka consumer in a consumer group using the
 * cooperative-sticky assignor, and a table of every partition it has ever
 * been assigned: its index (handed out with each message, so the daemon can
 * tell later which partition an event came from without keeping the
 * librdkafka message), the next offset whose effects are all produced, and
 * whether it is assigned now.
 *
 * Offsets are never stored or committed automatically: the daemon commits
 * the positions of a checkpoint, after every alert up to them has been
 * acknowledged.  On a revocation the daemon is asked to checkpoint first
 * (fw_in_revoke_fn), so the partitions are handed over with everything done
 * committed; a lost assignment is handed over without a commit.
 *
 * A commit that fails (coordinator moving, loading, timing out) is not
 * forgotten: the partition keeps the offset as uncommitted and the commit
 * is tried again about every second from fw_in_poll(), and before the
 * partition is handed over in a revocation.  Otherwise an idle stream or a
 * shutdown right after a failed commit would leave the group's offsets
 * behind the checkpoint, and the next owner of the partition would process
 * again what was done.  The daemon's final checkpoint retries it too
 * (fw_in_commit_pending); the revocation inside fw_in_close() does not.
 * A checkpoint published while the group rebalances (after a revocation,
 * until the next round's assignment) has its commit held back the same
 * way and sent when the round ends: librdkafka 2.0.2 would take a commit
 * sent then for a lost assignment (kafka.h, "Commits held while the group
 * rebalances").
 *
 * Nothing here waits for the broker without a bound the caller chose.
 * librdkafka's synchronous rd_kafka_commit() has none: while the group
 * coordinator cannot be reached it waits for one, for good (a SIGSTOPped
 * broker held a SIGTERMed daemon in it for as long as anyone watched,
 * issue 10).  So a commit is sent asynchronously onto a queue of its own
 * and the answer is awaited until a deadline, or, without one, until the
 * daemon's stop flag is set; on giving up the queue is destroyed
 * (librdkafka drops the late answer) and the partitions count as
 * uncommitted.  The consumer is closed the same way
 * (rd_kafka_consumer_close_queue() served until a deadline).
 *
 * A lost partition (session timed out, member fenced) that comes back to
 * this daemon resumes where its messages stopped being handed to the
 * pipeline, not at the group's committed offset: the window state already
 * holds every event up to there, and the committed offset is that of an
 * older checkpoint, so resuming there would count those events twice
 * (tests/test_faults.c, case "fenced", found alerts lost and invented that
 * way).  Its position keeps following the batches still in flight, so a
 * checkpoint after it is back records exactly what its state holds.  A
 * revoked partition resumes at the committed offset, which the
 * revocation's checkpoint made equal to its state.
 *
 * With input.order_wait_ms > 0 (the default) messages pass through a
 * reorder buffer (kafka_order.c) that hands them over oldest message
 * timestamp first across the assigned partitions, so keys whose events
 * span partitions see them in the order they were produced; `fed` follows
 * what is handed over, `pushed` what is buffered.
 *
 * Messages are taken one rd_kafka_consumer_poll() at a time, not with
 * rd_kafka_consume_batch_queue(), which would cost less per message: in
 * librdkafka 2.0.2 a batch moves the partition's position past each
 * message as it collects it, and the version barrier of the pause that
 * librdkafka puts on every partition at a rebalance then destroys the
 * collected messages; fetching resumes past them, so they are never
 * delivered (fixed in 2.1.0; bench/README.md, "Batch consumption on
 * librdkafka 2.0.2").
 *
 * librdkafka 2.0.2 fetches again after its queue was full only when its
 * broker thread next wakes, up to a second later; the consumer wakes it
 * when the queue has drained to half (fetch_wake.c, fw_kafka_waker in
 * kafka_common.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "kafka.h"
#include "kafka_order.h"

#define COMMIT_RETRY_MS 1000
/* Messages the reorder buffer may hold before it stops waiting for a
 * partition that is behind (docs/limits.md): about 20 MB of references to
 * messages librdkafka already holds. */
#define ORDER_MAX_BUFFERED 200000

struct part {
    char *topic;
    int32_t partition;
    int64_t next;        /* next offset to read; -1: nothing done yet */
    int64_t start;       /* from a checkpoint; -1: none */
    int64_t uncommitted; /* checkpointed, its commit failed; -1: none */
    int64_t fed;         /* after the last message handed out; -1: none */
    int64_t pushed;      /* last offset put in the reorder buffer; -1: none */
    bool lost;           /* taken away without a revocation */
    bool assigned;
    fw_gauge *lag;
};

struct fw_in {
    rd_kafka_t *rk;
    struct part *parts;
    uint32_t nparts, cap;
    fw_in_revoke_fn revoke;
    void *ctx;
    fw_metrics *metrics;
    fw_counter *errors;
    fw_counter *rebalances;
    int64_t commit_retry_at; /* fw_mono_ms() of the next retry; 0: none due */
    volatile sig_atomic_t *stop; /* set: unbounded waits give up (may be NULL) */
    bool closing;            /* in fw_in_close(): no commit retry in a revocation */
    fw_rejoin_guard rejoin;  /* commits held while the group rebalances (kafka.h) */
    bool revoking;           /* in the revocation callback: commits go out */
    bool assigned_once;      /* an assignment has reached on_rebalance() */
    fw_order *order;         /* input.order_wait_ms > 0: partitions by time */
    char *group;             /* kafka.group.id: checkpoints belong to it */
    rd_kafka_message_t *held; /* the driver's current message (fw_in_source) */
    int64_t lag_at;          /* fw_mono_ms() of the last lag update */
    fw_kafka_waker waker;    /* wakes the fetchers after a full queue */
    char fatal[512];
};

static uint32_t part_index(fw_in *in, const char *topic, int32_t partition)
{
    for (uint32_t i = 0; i < in->nparts; i++)
        if (in->parts[i].partition == partition &&
            strcmp(in->parts[i].topic, topic) == 0)
            return i;
    if (in->nparts == in->cap) {
        in->cap = in->cap ? in->cap * 2 : 16;
        in->parts = fw_xrealloc(in->parts, in->cap * sizeof *in->parts);
    }
    struct part *p = &in->parts[in->nparts];
    memset(p, 0, sizeof *p);
    p->topic = fw_xstrdup(topic);
    p->partition = partition;
    p->next = -1;
    p->start = -1;
    p->uncommitted = -1;
    p->fed = -1;
    p->pushed = -1;
    char labels[512], esc[400];
    fw_metrics_escape_label(topic, esc, sizeof esc);
    snprintf(labels, sizeof labels, "topic=\"%s\",partition=\"%d\"", esc,
             (int)partition);
    p->lag = fw_metrics_gauge(in->metrics, "fraudwatch_consumer_lag",
                              "Messages in the partition not yet processed.",
                              labels);
    return in->nparts++;
}

/* Commits the offsets whose commit failed, for the partitions still
 * assigned, waiting until `until_ms` (see fw_in_commit).  0, or -1 if some
 * are still uncommitted (`err` says why). */
static int retry_commit(fw_in *in, int64_t until_ms, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (uint32_t i = 0; i < in->nparts; i++)
        if (in->parts[i].assigned && in->parts[i].uncommitted >= 0)
            rd_kafka_topic_partition_list_add(l, in->parts[i].topic, in->parts[i].partition)
                ->offset = in->parts[i].uncommitted;
    int rc = 0;
    if (l->cnt > 0) {
        rc = fw_in_commit(in, l, until_ms, err, errlen);
        if (rc == 0)
            fw_log(FW_LOG_INFO, "kafka", "offset commit retried: committed",
                   "partitions=%d", l->cnt);
    }
    rd_kafka_topic_partition_list_destroy(l);
    in->commit_retry_at = rc ? fw_mono_ms() + COMMIT_RETRY_MS : 0;
    return rc;
}

static void destroy_message(void *m) { rd_kafka_message_destroy(m); }

/* fw_order_behind_fn: does the broker hold messages of partition `src`
 * past the last one buffered?  From the high watermark of the last fetch
 * response (a local lookup); unknown counts as yes, so the stream waits for
 * it (for at most input.order_wait_ms). */
static bool behind(void *ctx, uint32_t src)
{
    fw_in *in = ctx;
    struct part *p = &in->parts[src];
    int64_t lo, hi;
    if (rd_kafka_get_watermark_offsets(in->rk, p->topic, p->partition, &lo, &hi) ||
        hi < 0)
        return true;
    int64_t next = p->pushed >= 0 ? p->pushed + 1 : p->fed >= 0 ? p->fed : lo;
    return hi > next;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *arg)
{
    fw_in *in = arg;
    fw_counter_add(in->rebalances, 1);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        in->assigned_once = true;
        fw_rejoin_assigned(&in->rejoin);
        if (in->commit_retry_at && !fw_rejoin_holding(&in->rejoin))
            in->commit_retry_at = 1;    /* what was held back: at the next poll */
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            uint32_t ix = part_index(in, tp->topic, tp->partition); /* may grow parts */
            struct part *p = &in->parts[ix];
            p->assigned = true;
            if (p->start >= 0) {
                tp->offset = p->start;  /* resume exactly where the checkpoint is */
                p->start = -1;
            } else if (p->lost && p->fed >= 0) {
                tp->offset = p->fed;    /* where the state is (see the top) */
                fw_log(FW_LOG_INFO, "kafka", "lost partition back: resuming where its "
                                             "state is, not at the committed offset",
                       "topic=%s partition=%d offset=%lld", tp->topic, (int)tp->partition,
                       (long long)p->fed);
            }
            p->lost = false;
            p->pushed = -1;
            if (in->order)
                fw_order_assign(in->order, ix, fw_mono_coarse_ms());
            fw_log(FW_LOG_INFO, "kafka", "partition assigned",
                   "topic=%s partition=%d offset=%lld", tp->topic,
                   (int)tp->partition, (long long)tp->offset);
        }
        rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
        if (e) {
            fw_log(FW_LOG_ERROR, "kafka", "incremental assign failed",
                   "error=\"%s\"", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool lost = rd_kafka_assignment_lost(rk);
        in->revoking = true;
        if (!lost && in->revoke)
            in->revoke(in->ctx);
        /* Last chance while the partitions are ours; but not while closing:
         * the daemon's final checkpoint made the last attempt within its
         * deadline, and another one here could only stretch the shutdown. */
        if (!lost && in->commit_retry_at && !in->closing)
            retry_commit(in, -1, NULL, 0);
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            uint32_t ix = part_index(in, tp->topic, tp->partition);
            struct part *p = &in->parts[ix];
            p->assigned = false;
            p->uncommitted = -1;
            p->lost = lost;
            /* Buffered, not processed: read again by whoever gets it next
             * (this daemon too: a lost partition resumes at `fed`). */
            p->pushed = -1;
            if (in->order)
                fw_order_revoke(in->order, ix, destroy_message);
            if (!lost) {       /* if it comes back, start from the commit */
                p->next = -1;
                p->fed = -1;
            }
            fw_log(lost ? FW_LOG_WARN : FW_LOG_INFO, "kafka",
                   lost ? "partition lost" : "partition revoked",
                   "topic=%s partition=%d", tp->topic, (int)tp->partition);
        }
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e) {
            fw_log(FW_LOG_ERROR, "kafka", "incremental unassign failed",
                   "error=\"%s\"", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        fw_rejoin_revoked(&in->rejoin, rk, lost);
        in->revoking = false;
        return;
    }
    fw_log(FW_LOG_ERROR, "kafka", "rebalance error", "error=\"%s\"",
           rd_kafka_err2str(err));
    for (uint32_t i = 0; in->order && i < in->nparts; i++) {
        in->parts[i].pushed = -1;
        fw_order_revoke(in->order, i, destroy_message);
    }
    rd_kafka_assign(rk, NULL);
}

fw_in *fw_in_new(const fw_settings *s, fw_metrics *m, fw_in_revoke_fn revoke,
                 void *ctx, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    fw_in *in = calloc(1, sizeof *in);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *topics = NULL;
    if (!in || !c)
        goto fail;
    in->revoke = revoke;
    in->ctx = ctx;
    in->stop = stop;
    in->metrics = m;
    in->group = strdup(s->group_id);
    if (!in->group) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (s->order_wait_ms > 0 &&
        !(in->order = fw_order_new(s->order_wait_ms, ORDER_MAX_BUFFERED))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (fw_kafka_set(c, "consumer", "bootstrap.servers", s->brokers, err, errlen) ||
        fw_kafka_set(c, "consumer", "auto.offset.reset", "earliest", err, errlen) ||
        fw_kafka_set(c, "consumer", "partition.assignment.strategy", "cooperative-sticky", err, errlen) ||
        /* librdkafka 2.0.2 stops fetching when its local queue holds
         * queued.min.messages, or queued.max.messages.kbytes, and looks again
         * only when its broker thread wakes; the daemon wakes it as soon as
         * the queue is half empty (fetch_wake.c), so the queue need only
         * cover the time a fetch takes.  The cap in bytes is most of the
         * daemon's memory while it drains a backlog: with the wake-up, 16 MiB
         * drains as fast as 64 or 128 MiB (~700k events/s here) with a peak
         * RSS of ~200 MiB instead of ~320 or ~490 (bench/queue_curve.py,
         * bench/README.md "The consumer queue"). */
        fw_kafka_set(c, "consumer", "queued.min.messages", "1000000", err, errlen) ||
        fw_kafka_set(c, "consumer", "queued.max.messages.kbytes", "16384", err, errlen))
        goto fail;
    if (strcmp(s->ha_mode, "standby") == 0) {
        /* Failover (docs/scaling.md): a dead active daemon's input
         * partitions must come free as soon as its role does, not after
         * librdkafka's default 45 s; the operator's keys below still win. */
        char sess[32], hb[32];
        snprintf(sess, sizeof sess, "%d", s->ha_session_timeout_ms);
        snprintf(hb, sizeof hb, "%d", s->ha_session_timeout_ms / 5 > 100
                                          ? s->ha_session_timeout_ms / 5 : 100);
        if (fw_kafka_set(c, "consumer", "session.timeout.ms", sess, err, errlen) ||
            fw_kafka_set(c, "consumer", "heartbeat.interval.ms", hb, err, errlen))
            goto fail;
    }
    for (size_t i = 0; i < s->nconsumer; i++)
        if (fw_kafka_set(c, "consumer", s->consumer_keys[i], s->consumer_values[i], err, errlen))
            goto fail;
    /* What the delivery guarantee needs; config.c refuses overrides. */
    if (fw_kafka_set(c, "consumer", "group.id", s->group_id, err, errlen) ||
        fw_kafka_set(c, "consumer", "client.id", s->instance_id, err, errlen) ||
        /* Static membership (KIP-345) when the operator named the instance:
         * a restart takes its partitions back without a rebalance. */
        (s->instance_id_given &&
         fw_kafka_set(c, "consumer", "group.instance.id", s->instance_id, err, errlen)) ||
        fw_kafka_set(c, "consumer", "enable.auto.commit", "false", err, errlen) ||
        fw_kafka_set(c, "consumer", "enable.auto.offset.store", "false", err, errlen) ||
        fw_kafka_set(c, "consumer", "enable.partition.eof", "false", err, errlen))
        goto fail;
    if (fw_kafka_waker_caps(&in->waker, c, "consumer", err, errlen))
        goto fail;
    rd_kafka_conf_set_opaque(c, in);
    rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
    rd_kafka_conf_set_log_cb(c, fw_kafka_log);
    char e[512];
    in->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    if (!in->rk) {
        snprintf(err, errlen, "cannot create the Kafka consumer: %s", e);
        goto fail;
    }
    c = NULL;
    rd_kafka_poll_set_consumer(in->rk);
    in->errors = fw_metrics_counter(m, "fraudwatch_consumer_errors_total",
                                    "Consumer errors (reconnects, fetch errors).", "");
    fw_kafka_waker_start(&in->waker, in->rk, fw_metrics_counter(
        m, "fraudwatch_consumer_fetch_wakeups_total",
        "Times the consumer woke librdkafka's fetchers after its queue had been full.", ""));
    /* The caps librdkafka was given, defaults and operator's keys resolved:
     * what bounds the daemon's memory while it drains a backlog. */
    fw_gauge_set(fw_metrics_gauge(m, "fraudwatch_consumer_queue_max_messages",
                                  "The consumer queue's cap in messages "
                                  "(queued.min.messages, as librdkafka was given it).", ""),
                 (double)in->waker.when.cap_msgs);
    fw_gauge_set(fw_metrics_gauge(m, "fraudwatch_consumer_queue_max_bytes",
                                  "The consumer queue's cap in bytes "
                                  "(queued.max.messages.kbytes times 1024, as librdkafka was "
                                  "given it).", ""),
                 (double)in->waker.when.cap_bytes);
    in->rebalances = fw_metrics_counter(m, "fraudwatch_rebalances_total",
                                        "Partition assignments and revocations.", "");
    topics = rd_kafka_topic_partition_list_new((int)s->ninput_topics);
    for (size_t i = 0; i < s->ninput_topics; i++)
        rd_kafka_topic_partition_list_add(topics, s->input_topics[i],
                                          RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t r = rd_kafka_subscribe(in->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (r) {
        snprintf(err, errlen, "cannot subscribe: %s", rd_kafka_err2str(r));
        goto fail;
    }
    return in;
fail:
    if (c)
        rd_kafka_conf_destroy(c);
    if (in)
        fw_kafka_waker_stop(&in->waker);
    if (in && in->rk) {
        rd_kafka_destroy(in->rk);
        in->rk = NULL;
    }
    if (in) {
        fw_order_free(in->order, NULL);
        free(in->group);
    }
    free(in);
    return NULL;
}

int fw_in_close(fw_in *in, int64_t until_ms, char *err, size_t errlen)
{
    if (!in)
        return 0;
    /* Messages still buffered go back first: librdkafka does not finish
     * closing while the application holds any of its messages. */
    if (in->held) {
        rd_kafka_message_destroy(in->held);
        in->held = NULL;
    }
    fw_order_free(in->order, destroy_message);
    in->order = NULL;
    fw_kafka_waker_stop(&in->waker);
    if (in->rk) {
        /* rd_kafka_consumer_close() would wait for the group coordinator
         * (the revocation, an outstanding commit, LeaveGroup) without a
         * bound; the queue form is served here until the deadline.  Served
         * as events, not with rd_kafka_queue_poll_callback(): messages
         * still in the consumer queue are moved onto this queue too, and
         * that function aborts on a message (librdkafka asserts that every
         * op it serves has a callback).  A message is dropped here (never
         * processed: whoever reads the partition next reads it again); the
         * revocation reaches on_rebalance() either through the callback,
         * from inside rd_kafka_queue_poll(), or as an event. */
        in->closing = true;
        /* A member still joining cannot be destroyed (kafka.h): it waits
         * for its first assignment, which the close then gives back. */
        if (!fw_kafka_await_first_assignment(in->rk, &in->assigned_once, until_ms,
                                             "consumer")) {
            snprintf(err, errlen, "closing while joining: the first assignment did not "
                                  "come in time; exiting without leaving the group (the "
                                  "group drops this member after its session timeout)");
            return -1;
        }
        rd_kafka_queue_t *q = rd_kafka_queue_new(in->rk);
        rd_kafka_error_t *e = rd_kafka_consumer_close_queue(in->rk, q);
        if (e) {
            fw_log(FW_LOG_WARN, "kafka", "consumer close failed", "error=\"%s\"",
                   rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        } else {
            while (!rd_kafka_consumer_closed(in->rk)) {
                int64_t left = until_ms - fw_mono_ms();
                if (left <= 0)
                    break;
                rd_kafka_event_t *ev = rd_kafka_queue_poll(q, left < 100 ? (int)left : 100);
                if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                    on_rebalance(in->rk, rd_kafka_event_error(ev),
                                 rd_kafka_event_topic_partition_list(ev), in);
                if (ev)
                    rd_kafka_event_destroy(ev);
            }
        }
        bool closed = e || rd_kafka_consumer_closed(in->rk);
        rd_kafka_queue_destroy(q);
        if (!closed) {
            /* rd_kafka_destroy() would wait for the same coordinator. */
            snprintf(err, errlen, "the consumer did not leave the group in time (the "
                                  "group coordinator does not answer)");
            return -1;
        }
        /* After a failed close (a fatal consumer error), plain
         * rd_kafka_destroy() would try the blocking close again. */
        rd_kafka_destroy_flags(in->rk, e ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE : 0);
    }
    for (uint32_t i = 0; i < in->nparts; i++)
        free(in->parts[i].topic);
    free(in->parts);
    free(in->group);
    free(in);
    return 0;
}

void fw_in_start_at(fw_in *in, const char *topic, int32_t partition,
                    int64_t offset)
{
    uint32_t ix = part_index(in, topic, partition);
    in->parts[ix].start = offset;
}

/* One message from librdkafka's consumer queue (errors logged and counted,
 * not returned), with its partition's index. */
static rd_kafka_message_t *poll_one(fw_in *in, int timeout_ms, uint32_t *src)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(in->rk, timeout_ms);
    if (!m)
        return NULL;
    if (m->err) {
        fw_counter_add(in->errors, 1);
        if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
            char buf[256];
            rd_kafka_fatal_error(in->rk, buf, sizeof buf);
            snprintf(in->fatal, sizeof in->fatal, "fatal consumer error: %s", buf);
        }
        fw_log(FW_LOG_WARN, "kafka", "consumer error", "topic=%s error=\"%s\"",
               m->rkt ? rd_kafka_topic_name(m->rkt) : "-",
               rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return NULL;
    }
    *src = part_index(in, rd_kafka_topic_name(m->rkt), m->partition);
    fw_kafka_waker_taken(&in->waker, m->len);
    return m;
}

rd_kafka_message_t *fw_in_poll(fw_in *in, int timeout_ms, uint32_t *src)
{
    if (in->commit_retry_at && fw_mono_ms() >= in->commit_retry_at)
        retry_commit(in, -1, NULL, 0);
    rd_kafka_message_t *m;
    if (!in->order) {
        if ((m = poll_one(in, timeout_ms, src)))
            in->parts[*src].fed = m->offset + 1;   /* the daemon feeds every message */
        return m;
    }
    /* By time across partitions (kafka_order.c): buffer what librdkafka
     * delivers until the buffer lets the oldest head go.  While it waits for
     * a partition that is behind, librdkafka is polled in short slices so
     * the wait ends on time even with no message coming. */
    /* One clock read per call, again only after a poll that waited, and
     * the coarse clock (the reorder buffer's times are all read from it):
     * the clock was a third of the main thread's work at 600k events/s, a
     * message taken without waiting moves time on by microseconds, and the
     * waits here are counted in milliseconds. */
    int64_t now = fw_mono_coarse_ms(), deadline = now + timeout_ms;
    for (;;) {
        m = fw_order_pop(in->order, now, behind, in, src);
        if (m) {
            in->parts[*src].fed = m->offset + 1;
            return m;
        }
        int64_t left = deadline - now;
        uint32_t from;
        rd_kafka_message_t *n = poll_one(in, left <= 0 ? 0 : left < 10 ? (int)left : 10, &from);
        if (!n || left > 0)
            now = fw_mono_coarse_ms();
        if (n && fw_order_pass(in->order, from, now)) {
            in->parts[from].pushed = n->offset;
            in->parts[from].fed = n->offset + 1;
            *src = from;
            return n;
        }
        if (n) {
            if (fw_order_push(in->order, from, rd_kafka_message_timestamp(n, NULL), n) != 0) {
                /* Handing it over out of turn could put it before older
                 * messages of its own partition: stop instead (a restart
                 * resumes from the checkpoint). */
                rd_kafka_message_destroy(n);
                snprintf(in->fatal, sizeof in->fatal,
                         "out of memory in the partition reorder buffer");
                return NULL;
            }
            in->parts[from].pushed = n->offset;
            continue;
        }
        if (left <= 0)
            return NULL;
    }
}

void fw_in_done(fw_in *in, uint32_t src, int64_t offset)
{
    struct part *p = &in->parts[src];
    if ((p->assigned || p->lost) && offset + 1 > p->next)
        p->next = offset + 1;
}

const char *fw_in_topic(const fw_in *in, uint32_t src) { return in->parts[src].topic; }
int32_t fw_in_partition(const fw_in *in, uint32_t src) { return in->parts[src].partition; }

rd_kafka_topic_partition_list_t *fw_in_positions(fw_in *in)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)in->nparts);
    for (uint32_t i = 0; i < in->nparts; i++)
        if (in->parts[i].assigned && in->parts[i].next >= 0)
            rd_kafka_topic_partition_list_add(l, in->parts[i].topic,
                                              in->parts[i].partition)->offset =
                in->parts[i].next;
    return l;
}

/* Sends the commit and waits for its answer (see the top): until `until_ms`,
 * or with until_ms < 0 until the answer comes or *in->stop is set.  NULL
 * when it gave up waiting, else the answer (per-partition errors in it),
 * with *errp its overall error. */
static rd_kafka_event_t *commit_wait(fw_in *in, const rd_kafka_topic_partition_list_t *pos,
                                     int64_t until_ms, rd_kafka_resp_err_t *errp)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(in->rk);
    rd_kafka_event_t *ev = NULL;
    *errp = rd_kafka_commit_queue(in->rk, pos, q, NULL, NULL);
    while (!*errp && !ev) {
        int slice = 100;
        if (until_ms >= 0) {
            int64_t left = until_ms - fw_mono_ms();
            if (left <= 0)
                break;
            if (left < slice)
                slice = (int)left;
        } else if (in->stop && *in->stop) {
            break;
        }
        ev = rd_kafka_queue_poll(q, slice);
        if (ev && rd_kafka_event_type(ev) != RD_KAFKA_EVENT_OFFSET_COMMIT) {
            rd_kafka_event_destroy(ev);
            ev = NULL;
        }
    }
    if (ev)
        *errp = rd_kafka_event_error(ev);
    rd_kafka_queue_destroy(q);
    return ev;
}

int fw_in_commit(fw_in *in, rd_kafka_topic_partition_list_t *all_pos, int64_t until_ms,
                 char *err, size_t errlen)
{
    /* Only the partitions still held: positions are taken at a checkpoint's
     * cut and committed when it is published, and a partition lost in
     * between belongs to another member now; committing this older position
     * would move its committed offset backwards (duplicates for the new
     * owner).  A revocation checkpoints before the partitions are let go. */
    rd_kafka_topic_partition_list_t *pos =
        rd_kafka_topic_partition_list_new(all_pos->cnt > 0 ? all_pos->cnt : 1);
    for (int i = 0; i < all_pos->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &all_pos->elems[i];
        if (in->parts[part_index(in, tp->topic, tp->partition)].assigned)
            rd_kafka_topic_partition_list_add(pos, tp->topic, tp->partition)->offset =
                tp->offset;
    }
    if (pos->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(pos);
        return 0;
    }
    if (!in->revoking && !(in->stop && *in->stop) && fw_rejoin_holding(&in->rejoin)) {
        /* Held back until the round's assignment (kafka.h), then retried
         * like a commit that failed.  Not when stopping: the final
         * checkpoint's commit is tried as it always was (held, it would
         * only fail). */
        for (int i = 0; i < pos->cnt; i++)
            in->parts[part_index(in, pos->elems[i].topic, pos->elems[i].partition)]
                .uncommitted = pos->elems[i].offset;
        if (!in->commit_retry_at)
            in->commit_retry_at = fw_mono_ms() + COMMIT_RETRY_MS;
        rd_kafka_topic_partition_list_destroy(pos);
        fw_log(FW_LOG_INFO, "kafka", "offset commit held back: the group is rebalancing "
                                     "(committed when the rebalance ends)", NULL);
        if (err)
            snprintf(err, errlen, "offset commit held back while the group rebalances");
        return -1;
    }
    int64_t t0 = fw_mono_ms();
    rd_kafka_resp_err_t all;
    rd_kafka_event_t *ev = commit_wait(in, pos, until_ms, &all);
    /* The answer lists the partitions with their own errors; without one,
     * every partition of the request counts as uncommitted. */
    const rd_kafka_topic_partition_list_t *res =
        ev ? rd_kafka_event_topic_partition_list(ev) : NULL;
    if (!res)
        res = pos;
    rd_kafka_resp_err_t first = all;
    for (int i = 0; i < res->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &res->elems[i];
        struct part *p = &in->parts[part_index(in, tp->topic, tp->partition)];
        if (!ev || all || tp->err) {
            p->uncommitted = tp->offset;    /* tried again later */
            if (!first)
                first = tp->err;
        } else {
            p->uncommitted = -1;
        }
    }
    char why[256];
    if (!ev && !all)
        snprintf(why, sizeof why, "%s after %lld ms (the group coordinator does not answer)",
                 in->stop && *in->stop && until_ms < 0 ? "given up on stop" : "no answer",
                 (long long)(fw_mono_ms() - t0));
    else
        snprintf(why, sizeof why, "%s", first ? rd_kafka_err2str(first) : "");
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_topic_partition_list_destroy(pos);
    if (!ev || first) {
        if (!in->commit_retry_at)
            in->commit_retry_at = fw_mono_ms() + COMMIT_RETRY_MS;
        fw_counter_add(in->errors, 1);
        fw_log(FW_LOG_WARN, "kafka", "offset commit failed (the checkpoint on "
                                     "disk still holds the positions)",
               "error=\"%s\"", why);
        if (err)
            snprintf(err, errlen, "offset commit failed: %s", why);
        return -1;
    }
    return 0;
}

int fw_in_commit_pending(fw_in *in, int64_t until_ms, char *err, size_t errlen)
{
    return in->commit_retry_at ? retry_commit(in, until_ms, err, errlen) : 0;
}

void fw_in_update_lag(fw_in *in)
{
    for (uint32_t i = 0; i < in->nparts; i++) {
        struct part *p = &in->parts[i];
        int64_t lo, hi;
        if (!p->assigned) {
            fw_gauge_set(p->lag, 0);
            continue;
        }
        if (rd_kafka_get_watermark_offsets(in->rk, p->topic, p->partition, &lo,
                                           &hi) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi >= 0)
            fw_gauge_set(p->lag, (double)(hi - (p->next >= 0 ? p->next : lo)));
    }
}

const char *fw_in_fatal(fw_in *in) { return in->fatal[0] ? in->fatal : NULL; }

/* ---- the driver's source (driver.h) --------------------------------------------
 * The consumer as fw_source_ops: a message is held until the next call (its
 * bytes are copied into a batch by then); positions are a librdkafka
 * partition list; the checkpoint file's positions part is the group (a
 * checkpoint is refused under another group) and topic, partition, offset
 * of each partition. */

static int src_next(void *self, fw_msg *m, int timeout_ms)
{
    fw_in *in = self;
    if (in->held) {
        rd_kafka_message_destroy(in->held);
        in->held = NULL;
    }
    uint32_t part = 0;
    rd_kafka_message_t *km = fw_in_poll(in, timeout_ms, &part);
    if (!km)
        return in->fatal[0] ? FW_NEXT_FATAL : FW_NEXT_NONE;
    in->held = km;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(km, &tstype);
    *m = (fw_msg){ km->payload ? km->payload : "", km->len, part, km->offset,
                   ts > 0 ? ts : 0 };
    return FW_NEXT_MSG;
}

static void src_done(void *self, uint32_t stream, int64_t offset)
{
    fw_in_done(self, stream, offset);
}

static const char *src_stream_name(void *self, uint32_t stream)
{
    return fw_in_topic(self, stream);
}

static int32_t src_stream_number(void *self, uint32_t stream)
{
    return fw_in_partition(self, stream);
}

static void src_tick(void *self)
{
    fw_in *in = self;
    int64_t now = fw_mono_ms();
    if (now - in->lag_at >= 1000) {
        in->lag_at = now;
        fw_in_update_lag(in);
    }
}

static const char *src_fatal(void *self) { return fw_in_fatal(self); }

static void *src_positions(void *self) { return fw_in_positions(self); }

static int src_write_positions(void *self, const void *pos, FILE *f, char *err, size_t errlen)
{
    const fw_in *in = self;
    const rd_kafka_topic_partition_list_t *l = pos;
    if (fw_put_bytes(f, in->group, (uint32_t)strlen(in->group)) ||
        fw_put_u64(f, (uint64_t)l->cnt))
        goto io;
    for (int i = 0; i < l->cnt; i++)
        if (fw_put_bytes(f, l->elems[i].topic, (uint32_t)strlen(l->elems[i].topic)) ||
            fw_put_u64(f, (uint64_t)l->elems[i].partition) ||
            fw_put_u64(f, (uint64_t)l->elems[i].offset))
            goto io;
    return 0;
io:
    snprintf(err, errlen, "%s", strerror(errno));
    return -1;
}

static int src_commit(void *self, void *pos, int64_t until_ms, char *err, size_t errlen)
{
    return fw_in_commit(self, pos, until_ms, err, errlen);
}

static int src_read_positions(void *self, FILE *f, const char *path, char *err, size_t errlen)
{
    fw_in *in = self;
    char *group = NULL;
    uint32_t glen;
    uint64_t n;
    int rc = -1;
    if (fw_get_bytes(f, &group, &glen, 4096) || fw_get_u64(f, &n) || n > 100000) {
        snprintf(err, errlen, "%s: not a fraudwatch checkpoint (move it away to "
                              "start without state)", path);
        goto out;
    }
    if (strcmp(group, in->group) != 0) {
        snprintf(err, errlen, "%s belongs to group \"%s\", not \"%s\" (point "
                              "state.dir elsewhere or remove the file)",
                 path, group, in->group);
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
        fw_in_start_at(in, topic, (int32_t)part, (int64_t)off);
        fw_log(FW_LOG_INFO, "checkpoint", "resume position", "topic=%s partition=%d offset=%lld",
               topic, (int)part, (long long)off);
        free(topic);
    }
    rc = 0;
out:
    free(group);
    return rc;
}

static void src_free_positions(void *pos) { rd_kafka_topic_partition_list_destroy(pos); }

const fw_source_ops fw_in_source = {
    .name = "kafka",
    .next = src_next,
    .done = src_done,
    .stream_name = src_stream_name,
    .stream_number = src_stream_number,
    .tick = src_tick,
    .fatal = src_fatal,
    .positions = src_positions,
    .write_positions = src_write_positions,
    .commit = src_commit,
    .read_positions = src_read_positions,
    .free_positions = src_free_positions,
};
