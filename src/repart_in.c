/* repart_in.c — ha.mode = scaleout, stage B: one repartition partition read
 * as a driver source, so that a unit (scale.c) is the daemon's own driver
 * loop, pipeline and checkpoint protocol over the keys of that partition.
 *
 * Owns the unit's consumer (assign()ed to its one partition; the group
 * GROUP.scale-units only keeps its committed position) and the order in
 * which the partition's events reach the engine.  A partition holds, from
 * every forwarder, the events whose keys it owns, each input partition's
 * in their input order, interleaved as they were produced.  The engine
 * must see them as one daemon would: by time across input partitions.  So
 * the records are split by input partition into the lanes of an fw_order
 * (kafka_order.c, the same merge as the daemon's input) and taken oldest
 * first.  An empty lane is waited for unless its marks (repart.h) say it
 * has nothing older to come: its forwarder's last mark is past the next
 * event's time, or it said "caught up" within the last few mark intervals.
 * A lane whose forwarder went silent (a daemon died; its input partitions
 * are not yet taken over) is waited for up to scale.takeover_wait_ms, so
 * that the events it still owes are applied in time order when the new
 * forwarder sends them.
 *
 * Exactly once per input event, through hand-overs: each lane remembers
 * the input offset it last applied; a record at or below it is a copy (a
 * new forwarder starts from the input's committed position, before what
 * the old one had sent) and is dropped.  The checkpoint's positions are
 * those input offsets and the repartition offset to read again from: the
 * oldest record not yet applied (records are applied out of log order, so
 * each lane keeps the log offsets of what it holds).
 *
 * Driven from the unit's driver thread only: no locks. */
#include "repart.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "kafka.h"
#include "kafka_order.h"

#define ORDER_MAX_BUFFERED 200000

struct fifo {                /* repartition offsets of records not yet applied */
    int64_t *v;
    size_t cap, head, len;
};

struct lane {
    int64_t applied;         /* input offset last retired (done); -1 */
    int64_t pushed;          /* input offset last taken in; -1 */
    int64_t mark_ts;         /* the highest message time its marks reported; -1 */
    int64_t mark_wall;       /* its last mark's time: when its forwarder looked (epoch ms) */
    bool caught;             /* the last mark said "caught up", nothing since */
    int64_t epoch;           /* the newest forwarder's: when it was assigned the input
                                partition (marks of an older one are not believed) */
    bool overdue;            /* logged: the takeover wait ran out for it */
    struct fifo held;
};

struct fw_rin {
    const fw_settings *s;
    const fw_inputs *inputs;
    int32_t part;
    char topic[300];
    char group[1100];
    rd_kafka_t *rk;
    fw_order *order;
    struct lane *lanes;
    int64_t start;           /* where to begin: a checkpoint's position; -1 */
    int64_t next_read;       /* repartition offset after the last record read; -1 */
    int64_t grace_ms;        /* 2 × scale.mark_interval_ms: see behind() */
    rd_kafka_message_t *cur; /* the message the driver holds */
    char fatal[512];
    fw_counter *dups, *late;
    fw_gauge *lag;           /* records of the partition not yet read */
    int64_t lag_at;          /* fw_mono_ms() of the next lag update */
};

struct rpos {
    int64_t at;
    uint32_t n;
    int64_t applied[];
};

static void fifo_push(struct fifo *f, int64_t v)
{
    if (f->len == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 256;
        int64_t *nv = fw_xmalloc(ncap * sizeof *nv);
        for (size_t i = 0; i < f->len; i++)
            nv[i] = f->v[(f->head + i) % f->cap];
        free(f->v);
        f->v = nv;
        f->cap = ncap;
        f->head = 0;
    }
    f->v[(f->head + f->len) % f->cap] = v;
    f->len++;
}

static void fifo_pop(struct fifo *f)
{
    if (!f->len)
        return;
    f->head = (f->head + 1) % f->cap;
    f->len--;
}

static void destroy_message(void *m) { rd_kafka_message_destroy(m); }

/* "A\x1fB\x1fC..." → fields; false if fewer than n. */
static bool split(const char *v, size_t len, const char **f, size_t *fl, int n)
{
    int k = 0;
    const char *p = v, *end = v + len;
    while (k < n) {
        const char *q = memchr(p, '\x1f', (size_t)(end - p));
        if (!q)
            q = end;
        f[k] = p;
        fl[k] = (size_t)(q - p);
        k++;
        if (q == end)
            break;
        p = q + 1;
    }
    return k == n;
}

static int64_t num(const char *p, size_t n)
{
    char b[32];
    if (n == 0 || n >= sizeof b)
        return -1;
    memcpy(b, p, n);
    b[n] = '\0';
    return strtoll(b, NULL, 10);
}

/* A repartition record in: a mark updates its lane; an event is taken in
 * unless it is a copy.  The message is kept (pushed) or freed. */
static void take(fw_rin *r, rd_kafka_message_t *m)
{
    r->next_read = m->offset + 1;
    rd_kafka_headers_t *h = NULL;
    const void *hv = NULL;
    size_t hl = 0;
    const char *f[6];
    size_t fl[6];
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get(h, 0, FW_REPART_HDR_MARK, &hv, &hl) == 0) {
        for (size_t idx = 0;
             rd_kafka_header_get(h, idx, FW_REPART_HDR_MARK, &hv, &hl) == 0; idx++) {
            if (!hv || !split(hv, hl, f, fl, 6))
                continue;
            uint32_t src = fw_inputs_find(r->inputs, f[0], fl[0], (int32_t)num(f[1], fl[1]));
            if (src == UINT32_MAX)
                continue;
            struct lane *l = &r->lanes[src];
            int64_t ts = num(f[4], fl[4]);
            if (ts > l->mark_ts)
                l->mark_ts = ts;      /* true whoever says it: what it read is in the log */
            int64_t epoch = num(f[5], fl[5]);
            if (epoch < l->epoch)
                continue;             /* a forwarder the partition was taken from */
            l->epoch = epoch;
            l->caught = num(f[3], fl[3]) == 1;
            l->mark_wall = rd_kafka_message_timestamp(m, NULL);
            if (l->caught)
                l->overdue = false;
        }
        rd_kafka_message_destroy(m);
        return;
    }
    if (h && rd_kafka_header_get_last(h, FW_REPART_HDR_IN, &hv, &hl) == 0 && hv &&
        split(hv, hl, f, fl, 3)) {
        uint32_t src = fw_inputs_find(r->inputs, f[0], fl[0], (int32_t)num(f[1], fl[1]));
        int64_t off = num(f[2], fl[2]);
        if (src == UINT32_MAX) {
            fw_log(FW_LOG_WARN, "scale", "a repartition record from an unknown input partition "
                   "(the input topics changed?): dropped", "partition=%d offset=%" PRId64,
                   (int)r->part, m->offset);
            rd_kafka_message_destroy(m);
            return;
        }
        struct lane *l = &r->lanes[src];
        if (off <= l->pushed || off <= l->applied) {
            fw_counter_add(r->dups, 1);
            rd_kafka_message_destroy(m);
            return;
        }
        l->pushed = off;
        l->caught = false;
        fifo_push(&l->held, m->offset);
        if (fw_order_push_aux(r->order, src, rd_kafka_message_timestamp(m, NULL), fw_wall_ms(),
                              fw_mono_ms(), m) != 0) {
            snprintf(r->fatal, sizeof r->fatal, "out of memory");
            rd_kafka_message_destroy(m);
        }
        return;
    }
    rd_kafka_message_destroy(m);   /* not ours */
}

/* Is lane `src` (empty) possibly holding back something older than the
 * next event?  Not if its marks reported a message time past the event's
 * (its forwarder has read past it).  Nor if it said "caught up" in a mark
 * made (the mark's timestamp: when its forwarder looked at the input
 * partition's end) two mark intervals or more after the event reached this
 * unit (the wall clock): the forwarder looked after the event had been
 * forwarded, with that much to spare for the input producer's skew across
 * partitions, the forwarder's fetch delay and the machines' clocks.  Not
 * the time the mark is read: a busy forwarder's producer may hold a mark
 * for seconds behind the events it sends first.  A forwarder that died
 * says neither, so its lanes are waited for until its input partitions'
 * new reader has forwarded them again — at most scale.takeover_wait_ms
 * after the event arrived. */
static bool behind(void *ctx, uint32_t src)
{
    fw_rin *r = ctx;
    struct lane *l = &r->lanes[src];
    if (l->mark_ts > fw_order_head_ts(r->order))
        return false;
    if (l->caught && l->mark_wall >= fw_order_head_aux(r->order, 0) + r->grace_ms)
        return false;
    if (fw_mono_ms() - fw_order_head_aux(r->order, 1) < r->s->scale_takeover_wait_ms)
        return true;
    if (!l->overdue) {
        l->overdue = true;
        fw_counter_add(r->late, 1);
        fw_log(FW_LOG_WARN, "scale", "unit: going on without an input partition whose reader "
               "has said nothing for scale.takeover_wait_ms; its events may be applied late",
               "partition=%d input=%s[%d]", (int)r->part, r->inputs->topic[src],
               (int)r->inputs->partition[src]);
    }
    return false;
}

/* The partition's high watermark (librdkafka's, from its fetches) less
 * what this unit has read, once a second. */
static void update_lag(fw_rin *r, int64_t now)
{
    if (now < r->lag_at)
        return;
    r->lag_at = now + 1000;
    int64_t lo, hi;
    if (rd_kafka_get_watermark_offsets(r->rk, r->topic, r->part, &lo, &hi) == 0 && hi >= 0) {
        int64_t at = r->next_read >= 0 ? r->next_read : r->start >= 0 ? r->start : lo;
        fw_gauge_set(r->lag, (double)(hi > at ? hi - at : 0));
    }
}

static int rin_next(void *self, fw_msg *out, int timeout_ms)
{
    fw_rin *r = self;
    if (r->cur) {
        rd_kafka_message_destroy(r->cur);
        r->cur = NULL;
    }
    update_lag(r, fw_mono_ms());
    int64_t until = fw_mono_ms() + timeout_ms;
    for (;;) {
        if (r->fatal[0])
            return FW_NEXT_FATAL;
        int64_t now = fw_mono_ms();
        uint32_t src;
        rd_kafka_message_t *m = fw_order_pop(r->order, now, behind, r, &src);
        if (m) {
            r->cur = m;
            const void *hv = NULL;
            size_t hl = 0;
            rd_kafka_headers_t *h = NULL;
            const char *f[3];
            size_t fl[3];
            int64_t off = -1;
            if (rd_kafka_message_headers(m, &h) == 0 &&
                rd_kafka_header_get_last(h, FW_REPART_HDR_IN, &hv, &hl) == 0 &&
                split(hv, hl, f, fl, 3))
                off = num(f[2], fl[2]);
            int64_t ts = rd_kafka_message_timestamp(m, NULL);
            *out = (fw_msg){ .data = m->payload ? m->payload : "", .len = m->len,
                             .stream = src, .offset = off, .ts_ms = ts > 0 ? ts : 0 };
            return FW_NEXT_MSG;
        }
        int left = (int)(until - now);
        rd_kafka_message_t *n = rd_kafka_consumer_poll(r->rk, left > 0 ? (left < 20 ? left : 20)
                                                                       : 0);
        if (n) {
            if (n->err) {
                if (n->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    fw_log(FW_LOG_WARN, "scale", "unit: consumer error", "partition=%d "
                           "error=\"%s\"", (int)r->part, rd_kafka_message_errstr(n));
                rd_kafka_message_destroy(n);
            } else {
                take(r, n);
                /* drain what is already here before deciding */
                while ((n = rd_kafka_consumer_poll(r->rk, 0)) != NULL) {
                    if (n->err)
                        rd_kafka_message_destroy(n);
                    else
                        take(r, n);
                }
            }
            continue;
        }
        if (fw_mono_ms() >= until)
            return FW_NEXT_NONE;
    }
}

static void rin_done(void *self, uint32_t stream, int64_t offset)
{
    fw_rin *r = self;
    if (stream < r->inputs->n) {
        fifo_pop(&r->lanes[stream].held);
        r->lanes[stream].applied = offset;
    }
}

static const char *rin_stream_name(void *self, uint32_t stream)
{
    fw_rin *r = self;
    return stream < r->inputs->n ? r->inputs->topic[stream] : "";
}

static int32_t rin_stream_number(void *self, uint32_t stream)
{
    fw_rin *r = self;
    return stream < r->inputs->n ? r->inputs->partition[stream] : -1;
}

static const char *rin_fatal(void *self)
{
    fw_rin *r = self;
    return r->fatal[0] ? r->fatal : NULL;
}

/* Everything retired: every lane's held records above what is in flight
 * were not; the oldest of them is where a restart reads again. */
static void *rin_positions(void *self)
{
    fw_rin *r = self;
    struct rpos *p = fw_xmalloc(sizeof *p + r->inputs->n * sizeof p->applied[0]);
    p->n = r->inputs->n;
    int64_t at = r->next_read >= 0 ? r->next_read : r->start;
    for (uint32_t i = 0; i < p->n; i++) {
        struct lane *l = &r->lanes[i];
        if (l->held.len) {
            int64_t o = l->held.v[l->held.head];
            if (at < 0 || o < at)
                at = o;
        }
        p->applied[i] = l->applied;
    }
    p->at = at;
    return p;
}

static int rin_write_positions(void *self, const void *pos, FILE *f, char *err, size_t errlen)
{
    fw_rin *r = self;
    const struct rpos *p = pos;
    if (fprintf(f, "repart %d %" PRId64 " %u\n", (int)r->part, p->at, p->n) < 0)
        goto fail;
    for (uint32_t i = 0; i < p->n; i++)
        if (fprintf(f, "%s %d %" PRId64 "\n", r->inputs->topic[i], (int)r->inputs->partition[i],
                    p->applied[i]) < 0)
            goto fail;
    return 0;
fail:
    snprintf(err, errlen, "writing the repartition positions failed");
    return -1;
}

static int rin_commit(void *self, void *pos, int64_t until_ms, char *err, size_t errlen)
{
    fw_rin *r = self;
    struct rpos *p = pos;
    (void)until_ms;
    (void)err;
    (void)errlen;
    if (p->at < 0)
        return 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, r->topic, r->part)->offset = p->at;
    rd_kafka_resp_err_t e = rd_kafka_commit(r->rk, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        fw_log(FW_LOG_WARN, "scale", "unit: position not committed (the checkpoint holds it)",
               "partition=%d error=\"%s\"", (int)r->part, rd_kafka_err2str(e));
    return 0;
}

static int rin_read_positions(void *self, FILE *f, const char *path, char *err, size_t errlen)
{
    fw_rin *r = self;
    int part;
    int64_t at;
    unsigned n;
    if (fscanf(f, "repart %d %" SCNd64 " %u\n", &part, &at, &n) != 3 || part != r->part) {
        snprintf(err, errlen, "%s: not a checkpoint of repartition partition %d", path,
                 (int)r->part);
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        char topic[300];
        int pn;
        int64_t applied;
        if (fscanf(f, "%299s %d %" SCNd64 "\n", topic, &pn, &applied) != 3) {
            snprintf(err, errlen, "%s: repartition positions cut short", path);
            return -1;
        }
        uint32_t src = fw_inputs_find(r->inputs, topic, strlen(topic), pn);
        if (src != UINT32_MAX)
            r->lanes[src].applied = r->lanes[src].pushed = applied;
    }
    r->start = at;
    return 0;
}

static void rin_free_positions(void *pos) { free(pos); }

const fw_source_ops fw_rin_source = {
    .name = "repartition",
    .next = rin_next,
    .done = rin_done,
    .stream_name = rin_stream_name,
    .stream_number = rin_stream_number,
    .fatal = rin_fatal,
    .positions = rin_positions,
    .write_positions = rin_write_positions,
    .commit = rin_commit,
    .read_positions = rin_read_positions,
    .free_positions = rin_free_positions,
};

/* ---- life --------------------------------------------------------------------- */

fw_rin *fw_rin_new(const fw_settings *s, const fw_inputs *inputs, int32_t part, fw_metrics *m,
                   char *err, size_t errlen)
{
    fw_rin *r = fw_xcalloc(1, sizeof *r);
    r->s = s;
    r->inputs = inputs;
    r->part = part;
    r->start = -1;
    r->next_read = -1;
    r->grace_ms = 2 * (int64_t)s->scale_mark_interval_ms;
    char state[300], control[300];
    fw_scale_topics(s, r->topic, state, control, sizeof r->topic);
    snprintf(r->group, sizeof r->group, "%s.scale-units", s->group_id);
    r->lanes = fw_xcalloc(inputs->n ? inputs->n : 1, sizeof *r->lanes);
    /* behind() bounds the wait itself, from the event's arrival */
    r->order = fw_order_new(INT64_MAX / 4, ORDER_MAX_BUFFERED);
    if (!r->order) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int64_t now = fw_mono_ms();
    for (uint32_t i = 0; i < inputs->n; i++) {
        r->lanes[i] = (struct lane){ .applied = -1, .pushed = -1, .mark_ts = -1 };
        fw_order_assign(r->order, i, now);
    }
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int bad = fw_kafka_set(c, "unit consumer", "bootstrap.servers", s->brokers, err, errlen);
    for (size_t i = 0; !bad && i < s->nconsumer; i++)
        bad = fw_kafka_set(c, "unit consumer", s->consumer_keys[i], s->consumer_values[i], err,
                           errlen);
    if (bad || fw_kafka_set(c, "unit consumer", "group.id", r->group, err, errlen) ||
        fw_kafka_set(c, "unit consumer", "client.id", s->instance_id, err, errlen) ||
        fw_kafka_set(c, "unit consumer", "enable.auto.commit", "false", err, errlen) ||
        fw_kafka_set(c, "unit consumer", "enable.auto.offset.store", "false", err, errlen) ||
        fw_kafka_set(c, "unit consumer", "auto.offset.reset", "earliest", err, errlen) ||
        fw_kafka_set(c, "unit consumer", "queued.max.messages.kbytes", "16384", err, errlen) ||
        fw_kafka_set(c, "unit consumer", "fetch.wait.max.ms", "100", err, errlen)) {
        rd_kafka_conf_destroy(c);
        goto fail;
    }
    rd_kafka_conf_set_log_cb(c, fw_kafka_log);
    char e[512];
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    if (!r->rk) {
        rd_kafka_conf_destroy(c);
        snprintf(err, errlen, "cannot create the unit's consumer: %s", e);
        goto fail;
    }
    rd_kafka_poll_set_consumer(r->rk);
    r->dups = fw_metrics_counter(m, "fraudwatch_scale_copies_dropped_total",
                                 "Repartition records dropped as copies of events already "
                                 "applied (forwarded again after a hand-over).", "");
    char labels[64];
    snprintf(labels, sizeof labels, "partition=\"%d\"", (int)part);
    r->lag = fw_metrics_gauge(m, "fraudwatch_scale_repartition_lag",
                              "Records of a repartition partition this daemon owns not yet "
                              "read by its unit (0 once the partition is no longer owned).",
                              labels);
    r->late = fw_metrics_counter(m, "fraudwatch_scale_takeover_waits_expired_total",
                                 "Times a unit went on without an input partition after "
                                 "scale.takeover_wait_ms (its later events may be applied "
                                 "out of time order).", "");
    return r;
fail:
    fw_rin_free(r);
    return NULL;
}

int fw_rin_has_positions(void *self, char *err, size_t errlen)
{
    fw_rin *r = self;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, r->topic, r->part);
    rd_kafka_resp_err_t e = rd_kafka_committed(r->rk, l, 10000);
    int rc = e ? -1 : l->elems[0].offset >= 0;
    if (e)
        snprintf(err, errlen, "reading the committed position of %s[%d] in group %s: %s",
                 r->topic, (int)r->part, r->group, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

int fw_rin_start(fw_rin *r, char *err, size_t errlen)
{
    int64_t at = r->start;
    if (at < 0) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, r->topic, r->part);
        if (rd_kafka_committed(r->rk, l, 10000) == 0 && l->elems[0].offset >= 0)
            at = l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, r->topic, r->part)->offset =
        at >= 0 ? at : RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(r->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        snprintf(err, errlen, "reading repartition partition %s[%d]: %s", r->topic,
                 (int)r->part, rd_kafka_err2str(e));
        return -1;
    }
    fw_log(FW_LOG_INFO, "scale", "unit reading its partition", "partition=%d from=%lld",
           (int)r->part, (long long)at);
    return 0;
}

void fw_rin_free(fw_rin *r)
{
    if (!r)
        return;
    fw_gauge_set(r->lag, 0);
    if (r->cur)
        rd_kafka_message_destroy(r->cur);
    if (r->order)
        fw_order_free(r->order, destroy_message);
    if (r->rk) {
        rd_kafka_assign(r->rk, NULL);
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    if (r->lanes)
        for (uint32_t i = 0; i < r->inputs->n; i++)
            free(r->lanes[i].held.v);
    free(r->lanes);
    free(r);
}
