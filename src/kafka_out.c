/* kafka_out.c — the producer: alerts to the alert topic, malformed events to
 * the dead-letter topic, and the delivery bookkeeping behind at-least-once.
 *
 * Owns one idempotent librdkafka producer.  Every message is copied into
 * librdkafka (RD_KAFKA_MSG_F_COPY), so callers may free their buffers at
 * once.  A delivery report with an error does not lose the message: it is
 * counted, logged and produced again, so a broker outage or a full disk
 * stalls the stream instead of dropping alerts.  The daemon commits input
 * offsets only after fw_out_drain() has seen every report come back clean,
 * which is what makes "commit after the alert is acknowledged" hold.
 *
 * Periodic checkpoints do not drain: they ask for a *mark*
 * (fw_out_mark) at their cut and later whether everything produced before
 * it is acknowledged (fw_out_acked).  Each message carries the number of
 * the epoch it was produced in (the marks split time into epochs) next to
 * its source timestamp in its opaque, and a small ring counts what each
 * epoch still has pending; a re-sent message stays in its epoch.
 *
 * Single-threaded by design: produce, poll and delivery callbacks all run
 * on the daemon's main thread, so the counters here need no locks. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "kafka.h"

#define EPOCHS 64                /* epochs with messages pending at once */
#define TS_BITS 48               /* ms since 1970 fit until the year 10889 */

struct fw_out {
    rd_kafka_t *rk;
    rd_kafka_topic_t *alerts;
    rd_kafka_topic_t *shadow;     /* output.shadow_topic: shadow and snoozed alerts */
    rd_kafka_topic_t *dlq;
    uint64_t pending;            /* produced, no clean report yet */
    uint64_t epoch;              /* of the messages produced now */
    uint64_t epoch_lo;           /* every epoch before it is acknowledged */
    uint64_t epoch_pending[EPOCHS];
    char fatal[512];
    fw_counter *produced;
    fw_counter *errors;
    fw_counter *dead_letters;
    fw_histogram *latency;
    char instance[256];          /* instance.id: the fw.instance header of alerts */
    bool stamps;                 /* output.latency_stamps: fw.t.* headers on alerts */
};

/* The opaque of a message: its source timestamp (ms, or 0) in the low
 * TS_BITS, the low bits of its epoch above. */
static void *msg_opaque(const fw_out *o, int64_t ts)
{
    uint64_t t = ts > 0 && ts < (INT64_C(1) << TS_BITS) ? (uint64_t)ts : 0;
    return (void *)(uintptr_t)(t | (o->epoch << TS_BITS));
}
static int64_t opaque_ts(void *op)
{
    return (int64_t)((uint64_t)(uintptr_t)op & ((UINT64_C(1) << TS_BITS) - 1));
}
static uint64_t *opaque_epoch_pending(fw_out *o, void *op)
{
    return &o->epoch_pending[((uint64_t)(uintptr_t)op >> TS_BITS) % EPOCHS];
}

static void produce(fw_out *o, rd_kafka_topic_t *topic, const void *payload,
                    size_t len, const void *key, size_t klen,
                    rd_kafka_headers_t *hdrs, void *opaque);

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *arg)
{
    fw_out *o = arg;
    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        o->pending--;
        (*opaque_epoch_pending(o, m->_private))--;
        fw_counter_add(o->produced, 1);
        int64_t src = opaque_ts(m->_private);
        int64_t age = fw_wall_ms() - src;  /* a producer's clock may run ahead */
        if (src > 0) /* dead letters carry 0 */
            fw_histogram_observe(o->latency, age > 0 ? (double)age / 1000.0 : 0.0);
        return;
    }
    /* Never drop: count, say so, and send it again. */
    fw_counter_add(o->errors, 1);
    fw_log(FW_LOG_WARN, "kafka", "delivery failed, producing again",
           "topic=%s partition=%d error=\"%s\"", rd_kafka_topic_name(m->rkt),
           (int)m->partition, rd_kafka_err2str(m->err));
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_headers_t *orig = NULL;
    if (rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR)
        hdrs = rd_kafka_headers_copy(orig);
    o->pending--;
    (*opaque_epoch_pending(o, m->_private))--;
    produce(o, m->rkt, m->payload, m->len, m->key, m->key_len, hdrs,
            m->_private);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *arg)
{
    fw_out *o = arg;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[256];
        rd_kafka_fatal_error(rk, buf, sizeof buf);
        snprintf(o->fatal, sizeof o->fatal, "fatal producer error: %s", buf);
        fw_log(FW_LOG_ERROR, "kafka", "fatal producer error", "error=\"%s\"", buf);
        return;
    }
    fw_log(FW_LOG_WARN, "kafka", "producer error", "error=\"%s\" reason=\"%s\"",
           rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void produce(fw_out *o, rd_kafka_topic_t *topic, const void *payload,
                    size_t len, const void *key, size_t klen,
                    rd_kafka_headers_t *hdrs, void *opaque)
{
    for (;;) {
        rd_kafka_resp_err_t err =
            hdrs ? rd_kafka_producev(
                       o->rk, RD_KAFKA_V_RKT(topic),
                       RD_KAFKA_V_VALUE((void *)payload, len),
                       RD_KAFKA_V_KEY(key, klen),
                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                       RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque),
                       RD_KAFKA_V_END)
                 : rd_kafka_producev(
                       o->rk, RD_KAFKA_V_RKT(topic),
                       RD_KAFKA_V_VALUE((void *)payload, len),
                       RD_KAFKA_V_KEY(key, klen),
                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                       RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            o->pending++;
            (*opaque_epoch_pending(o, opaque))++;
            return;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !o->fatal[0]) {
            /* Back-pressure: serve reports until there is room. */
            rd_kafka_poll(o->rk, 10);
            continue;
        }
        /* Anything else is a bug or a fatal state: say it loudly. */
        fw_counter_add(o->errors, 1);
        snprintf(o->fatal, sizeof o->fatal, "produce to %s failed: %s",
                 rd_kafka_topic_name(topic), rd_kafka_err2str(err));
        fw_log(FW_LOG_ERROR, "kafka", "produce failed", "topic=%s error=\"%s\"",
               rd_kafka_topic_name(topic), rd_kafka_err2str(err));
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        return;
    }
}

fw_out *fw_out_new(const fw_settings *s, fw_metrics *m, char *err, size_t errlen)
{
    fw_out *o = calloc(1, sizeof *o);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (!o || !c)
        goto fail;
    /* Defaults first, then the operator's pass-through keys, then what the
     * delivery guarantee needs (config.c refuses overrides of those). */
    if (fw_kafka_set(c, "producer", "bootstrap.servers", s->brokers, err, errlen) ||
        fw_kafka_set(c, "producer", "linger.ms", "2", err, errlen) ||
        fw_kafka_set(c, "producer", "message.timeout.ms", "0", err, errlen)) /* never expire */
        goto fail;
    for (size_t i = 0; i < s->nproducer; i++)
        if (fw_kafka_set(c, "producer", s->producer_keys[i], s->producer_values[i], err, errlen))
            goto fail;
    if (fw_kafka_set(c, "producer", "enable.idempotence", "true", err, errlen) ||
        fw_kafka_set(c, "producer", "client.id", s->instance_id, err, errlen))
        goto fail;
    rd_kafka_conf_set_opaque(c, o);
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_error_cb(c, on_error);
    rd_kafka_conf_set_log_cb(c, fw_kafka_log);
    char e[512];
    o->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!o->rk) {
        snprintf(err, errlen, "cannot create the Kafka producer: %s", e);
        goto fail;
    }
    c = NULL; /* rd_kafka_new() took it */
    snprintf(o->instance, sizeof o->instance, "%s", s->instance_id);
    o->stamps = s->latency_stamps && strcmp(s->latency_stamps, "on") == 0;
    o->alerts = rd_kafka_topic_new(o->rk, s->alert_topic, NULL);
    o->dlq = rd_kafka_topic_new(o->rk, s->dlq_topic, NULL);
    char shadow[512];
    o->shadow = rd_kafka_topic_new(o->rk, fw_config_shadow_topic(s, shadow, sizeof shadow),
                                   NULL);
    if (!o->alerts || !o->dlq || !o->shadow) {
        snprintf(err, errlen, "cannot create producer topics");
        goto fail;
    }
    static const double bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
    o->produced = fw_metrics_counter(m, "fraudwatch_produced_total",
                                     "Messages delivered (alerts and dead letters).", "");
    o->errors = fw_metrics_counter(m, "fraudwatch_produce_errors_total",
                                   "Failed deliveries and produce calls (failed deliveries are retried).", "");
    o->dead_letters = fw_metrics_counter(m, "fraudwatch_dead_letters_total",
                                         "Malformed events sent to the dead-letter topic.", "");
    o->latency = fw_metrics_histogram(m, "fraudwatch_event_to_alert_seconds",
                                      "From the input message timestamp to the alert's delivery.",
                                      "", bounds, sizeof bounds / sizeof bounds[0]);
    return o;
fail:
    if (c)
        rd_kafka_conf_destroy(c);
    fw_out_free(o);
    return NULL;
}

/* No flush here: the daemon's final checkpoint drained what it needed,
 * within shutdown.timeout_s.  Whatever is still queued was never
 * acknowledged, so no checkpoint covers its events and a restart produces
 * it again; rd_kafka_destroy() does not wait for it (it logs how many were
 * left, and returns at once even with the broker SIGSTOPped). */
void fw_out_free(fw_out *o)
{
    if (!o)
        return;
    if (o->alerts)
        rd_kafka_topic_destroy(o->alerts);
    if (o->dlq)
        rd_kafka_topic_destroy(o->dlq);
    if (o->shadow)
        rd_kafka_topic_destroy(o->shadow);
    if (o->rk)
        rd_kafka_destroy(o->rk);
    free(o);
}

void fw_out_alert(fw_out *o, const char *json, size_t len, const char *key,
                  size_t klen, int64_t src_ts_ms, bool shadow)
{
    fw_out_alert_from(o, json, len, key, klen, src_ts_ms, shadow, NULL);
}

void fw_out_alert_from(fw_out *o, const char *json, size_t len, const char *key,
                       size_t klen, int64_t src_ts_ms, bool shadow, const fw_origin *from)
{
    /* The alert line ends with a newline (JSONL); a Kafka message does not. */
    if (len && json[len - 1] == '\n')
        len--;
    /* Which daemon produced it (failover: a fenced daemon must produce no
     * alert after losing the active role; docs/scaling.md). */
    rd_kafka_headers_t *h = rd_kafka_headers_new(o->stamps ? 5 : 1);
    rd_kafka_header_add(h, "fw.instance", -1, o->instance, -1);
    if (o->stamps && from) {    /* output.latency_stamps: where the time went */
        const struct { const char *name; int64_t ms; } st[] = {
            { "fw.t.input_append", from->ts_ms }, { "fw.t.polled", from->polled_ms },
            { "fw.t.batched", from->batched_ms }, { "fw.t.retired", fw_wall_ms() },
        };
        for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
            char num[24];
            if (st[i].ms <= 0)
                continue;
            snprintf(num, sizeof num, "%lld", (long long)st[i].ms);
            rd_kafka_header_add(h, st[i].name, -1, num, -1);
        }
    }
    produce(o, shadow ? o->shadow : o->alerts, json, len, key, klen, h,
            msg_opaque(o, src_ts_ms));
}

void fw_out_dead_letter(fw_out *o, const char *payload, size_t len,
                        const char *key, size_t klen, const char *reason,
                        const char *topic, int32_t partition, int64_t offset)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(5);
    char num[32];
    rd_kafka_header_add(h, "fw.reason", -1, reason, -1);
    rd_kafka_header_add(h, "fw.source.topic", -1, topic, -1);
    snprintf(num, sizeof num, "%d", (int)partition);
    rd_kafka_header_add(h, "fw.source.partition", -1, num, -1);
    snprintf(num, sizeof num, "%lld", (long long)offset);
    rd_kafka_header_add(h, "fw.source.offset", -1, num, -1);
    if (!payload) {
        snprintf(num, sizeof num, "%zu", len);
        rd_kafka_header_add(h, "fw.source.size", -1, num, -1);
        len = 0;
    }
    fw_counter_add(o->dead_letters, 1);
    produce(o, o->dlq, payload, len, key, klen, h, msg_opaque(o, 0));
}

void fw_out_poll(fw_out *o, int timeout_ms) { rd_kafka_poll(o->rk, timeout_ms); }

int fw_out_drain(fw_out *o, volatile sig_atomic_t *stop, int timeout_ms)
{
    int64_t t0 = fw_mono_ms();
    while (o->pending > 0 && !o->fatal[0]) {
        rd_kafka_poll(o->rk, 50);
        if (stop && *stop)
            return -1;
        if (timeout_ms >= 0 && fw_mono_ms() - t0 >= timeout_ms)
            return -1;
    }
    return o->fatal[0] ? -1 : 0;
}

static void advance_epochs(fw_out *o)
{
    while (o->epoch_lo < o->epoch && o->epoch_pending[o->epoch_lo % EPOCHS] == 0)
        o->epoch_lo++;
}

/* The ring holds the epochs [epoch_lo, epoch]; when it is full (a long
 * outage with marks taken all along), a mark leaves the open epoch open:
 * it then also waits for what is produced after it, which is slower but
 * never wrong, and fw_out_acked() closes the epoch once there is room. */
static bool ring_full(fw_out *o)
{
    advance_epochs(o);
    return o->epoch - o->epoch_lo >= EPOCHS - 1;
}

uint64_t fw_out_mark(fw_out *o)
{
    if (ring_full(o))
        return o->epoch;
    return o->epoch++;
}

bool fw_out_acked(fw_out *o, uint64_t mark)
{
    if (mark == o->epoch) {     /* still open: close it if there is room */
        if (ring_full(o))
            return false;
        o->epoch++;
    }
    advance_epochs(o);
    return o->epoch_lo > mark;
}

const char *fw_out_fatal(fw_out *o) { return o->fatal[0] ? o->fatal : NULL; }
uint64_t fw_out_pending(fw_out *o) { return o->pending; }

/* ---- the driver's sink (driver.h) ----------------------------------------------
 * The producer as fw_sink_ops: alerts keyed by their subject, dead letters
 * with the reason and the source position in headers; delivery marks are
 * what checkpoints wait for. */

static void sink_alert(void *self, const fw_alert_view *a, const fw_origin *from)
{
    /* Not a live warning (a shadow rule's, or snoozed): the shadow topic,
     * never the live one (SPEC §2).  Same delivery guarantees. */
    fw_out_alert_from(self, a->json, a->len, a->subject, a->subject_len, from->ts_ms,
                      a->shadow || a->snoozed, from);
}

static void sink_dead_letter(void *self, const char *payload, size_t len, const char *reason,
                             const fw_origin *from)
{
    fw_out_dead_letter(self, payload, len, NULL, 0, reason, from->stream_name,
                       from->stream_number, from->offset);
}

static uint64_t sink_mark(void *self) { return fw_out_mark(self); }
static bool sink_acked(void *self, uint64_t mark) { return fw_out_acked(self, mark); }
static int sink_drain(void *self, volatile sig_atomic_t *stop, int timeout_ms)
{
    return fw_out_drain(self, stop, timeout_ms);
}
static uint64_t sink_pending(void *self) { return fw_out_pending(self); }
static void sink_tick(void *self) { fw_out_poll(self, 0); }
static const char *sink_fatal(void *self) { return fw_out_fatal(self); }

const fw_sink_ops fw_out_sink = {
    .name = "kafka",
    .alert = sink_alert,
    .dead_letter = sink_dead_letter,
    .mark = sink_mark,
    .acked = sink_acked,
    .drain = sink_drain,
    .pending = sink_pending,
    .tick = sink_tick,
    .fatal = sink_fatal,
};
