/* console_ingest.c — the alert topic into Redis.
 *
 * One thread: a librdkafka consumer in the console's own group
 * (kafka.group.id, default "fraudwatch-console"; auto.offset.reset
 * earliest, so a new console stores what the topic still holds) and one
 * Redis connection.  Messages come in batches of up to BATCH; each live
 * alert is routed (console_route.c) and the batch is stored with one call
 * of the ingest script (one round trip, the script's overhead paid once).
 * One batch is in flight while the next is polled and parsed, so Redis
 * (the bottleneck) is not idle while the console works; its reply is read
 * after the next call is written.  An offset is stored for commit only after every alert up to
 * it is stored (at-least-once; storing is idempotent on alert_id, so a
 * re-read adds nothing).  When Redis fails mid-batch, each partition is
 * sought back to its first alert not stored and the thread waits for
 * Redis, polling the consumer meanwhile so it keeps its group membership:
 * nothing is lost and it catches up when Redis is back.  A message that is
 * not an alert is logged and skipped (its offset is stored); shadow and
 * snoozed alerts are not for the queues and are skipped too.
 *
 * The routing table is re-read when fw:con:routes:version changes
 * (checked once a second), so `routes load` is live in every console.
 * Once every RETENTION_EVERY_MS, closed alerts detected more than
 * console.retention_days ago are deleted with their history. */
#include "console.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "kafka.h"

#define BATCH FW_CON_BATCH_MAX
#define RETENTION_EVERY_MS (5 * 60 * 1000)

struct fw_con_ingest {
    rd_kafka_t *rk;
    bool assigned_once;      /* its first assignment came (kafka.h: joining) */
    fw_con_store *st;
    pthread_t thread;
    atomic_bool stop;
    atomic_uint_fast64_t stored, skipped;
    char *topic;
    int64_t retention_ms;
    fw_con_routes *routes;
    long long routes_version;
    fw_counter *m_stored, *m_dup, *m_garbage, *m_notlive, *m_redis_err;
    fw_gauge *m_lag;
    fw_con_batch *batch;
};

uint64_t fw_con_ingest_stored(const fw_con_ingest *in)
{
    return in ? atomic_load(&in->stored) : 0;
}

static void reload_routes(fw_con_ingest *in, redisContext *c)
{
    redisReply *r = redisCommand(c, "GET fw:con:routes:version");
    if (!r)
        return;
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    if (v == in->routes_version)
        return;
    r = redisCommand(c, "GET fw:con:routes");
    if (!r)
        return;
    char err[512];
    fw_con_routes *nr = r->type == REDIS_REPLY_STRING
                            ? fw_con_routes_parse(r->str, r->len, err, sizeof err)
                            : fw_con_routes_parse("", 0, err, sizeof err);
    freeReplyObject(r);
    if (!nr) {
        fw_log(FW_LOG_ERROR, "console", "routes in Redis refused; keeping the previous ones",
               "version=%lld reason=\"%s\"", v, err);
        in->routes_version = v;
        return;
    }
    fw_con_routes_free(in->routes);
    in->routes = nr;
    in->routes_version = v;
    fw_log(FW_LOG_INFO, "console", "routes loaded", "version=%lld rows=%zu", v,
           fw_con_routes_count(nr));
}

static void retention(fw_con_ingest *in, redisContext *c)
{
    char cut[32];
    snprintf(cut, sizeof cut, "(%lld", (long long)(fw_wall_ms() - in->retention_ms));
    size_t removed = 0;
    for (int round = 0; round < 100; round++) {
        redisReply *r = redisCommand(c, "ZRANGEBYSCORE fw:con:idx:all -inf %s LIMIT 0 500", cut);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            if (r)
                freeReplyObject(r);
            break;
        }
        size_t got = 0;
        for (size_t i = 0; i < r->elements; i++) {
            const char *v[1] = { r->element[i]->str };
            redisReply *x = fw_con_eval(c, FW_CON_LUA_EXPIRE, 1, v, NULL);
            if (x && x->type == REDIS_REPLY_INTEGER && x->integer == 1)
                got++;
            if (x)
                freeReplyObject(x);
        }
        freeReplyObject(r);
        removed += got;
        if (got == 0)
            break;      /* the old ones left are still open */
    }
    if (removed)
        fw_log(FW_LOG_INFO, "console", "retention: closed alerts deleted", "count=%zu", removed);
}

static void seek_back(rd_kafka_t *rk, rd_kafka_message_t **ms, size_t from, size_t n)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = from; i < n; i++) {
        const char *t = rd_kafka_topic_name(ms[i]->rkt);
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(l, t, ms[i]->partition);
        if (!p)
            rd_kafka_topic_partition_list_add(l, t, ms[i]->partition)->offset = ms[i]->offset;
        else if (ms[i]->offset < p->offset)
            p->offset = ms[i]->offset;
    }
    rd_kafka_error_t *e = rd_kafka_seek_partitions(rk, l, 5000);
    if (e) {
        fw_log(FW_LOG_ERROR, "console", "seek back after a Redis failure failed",
               "reason=\"%s\"", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void store_offset(rd_kafka_t *rk, const rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        m->offset + 1;
    rd_kafka_offsets_store(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* One poll batch on its way into Redis: its messages (destroyed once the
 * reply is in and the offsets stored), and where its live alerts start. */
struct flight {
    rd_kafka_message_t *ms[BATCH];
    size_t n, first;
    int count;          /* live alerts in the script call; 0: no call */
};

/* The connection failed mid-call: closed, not returned to the pool. */
static void redis_lost(fw_con_ingest *in, redisContext **cp)
{
    fw_log(FW_LOG_ERROR, "console", "Redis connection lost while storing alerts; "
           "waiting for it (offsets are not committed past unstored alerts)",
           "where=\"%s\"", fw_con_store_where(in->st));
    fw_con_put(in->st, *cp, false);
    *cp = NULL;
}

/* Parses fl->ms[0..n), adds the live alerts to one call of the ingest
 * script and writes it to Redis without waiting for the reply (the caller
 * reads it after preparing the next batch: Redis stores one batch while
 * the console parses the next).  -1: the write failed (*cp closed). */
static int send_batch(fw_con_ingest *in, redisContext **cp, struct flight *fl)
{
    fw_con_alert *as = fw_xcalloc(fl->n, sizeof *as);
    fl->first = fl->n;
    for (size_t i = 0; i < fl->n; i++) {
        rd_kafka_message_t *m = fl->ms[i];
        char why[256];
        if (fw_con_alert_parse(m->payload, m->len, &as[i], why, sizeof why) != 0) {
            fw_log(FW_LOG_WARN, "console", "message on the alert topic is not an alert; skipped",
                   "partition=%d offset=%" PRId64 " reason=\"%s\"", (int)m->partition,
                   m->offset, why);
            atomic_fetch_add(&in->skipped, 1);
            fw_counter_add(in->m_garbage, 1);
            continue;
        }
        if (!as[i].live) {
            fw_counter_add(in->m_notlive, 1);
            continue;
        }
        if (fl->first == fl->n)
            fl->first = i;
        fw_con_batch_add(in->batch, &as[i], m->payload, m->len,
                         fw_con_route(in->routes, as[i].root));
    }
    fl->count = fw_con_batch_count(in->batch);
    int rc = 0;
    if (fl->count > 0) {
        fw_con_batch_send(*cp, in->batch);  /* hiredis copies the command */
        int done = 0;
        while (!done && rc == 0)
            if (redisBufferWrite(*cp, &done) != REDIS_OK)
                rc = -1;
    }
    fw_con_batch_reset(in->batch);
    for (size_t i = 0; i < fl->n; i++)
        fw_con_alert_free(&as[i]);
    free(as);
    if (rc != 0)
        redis_lost(in, cp);
    return rc;
}

/* Reads the reply of fl's script call; returns how many of its messages
 * (from the start) are done: n, or the index of its first live alert when
 * the call failed (the caller seeks back there). */
static size_t read_reply(fw_con_ingest *in, redisContext **cp, struct flight *fl)
{
    if (fl->count == 0)
        return fl->n;
    if (!*cp)
        return fl->first;
    size_t done = fl->n;
    void *rep = NULL;
    if (redisGetReply(*cp, &rep) != REDIS_OK) {
        done = fl->first;
        redis_lost(in, cp);
    } else {
        redisReply *r = rep;
        if (r->type != REDIS_REPLY_ARRAY || (int)r->elements != fl->count) {
            done = fl->first;
            fw_log(FW_LOG_ERROR, "console", "storing alerts failed; will retry",
                   "reason=\"%.200s\"", r->type == REDIS_REPLY_ERROR ? r->str : "reply");
            if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
                fw_con_load_scripts(*cp);
        } else {
            for (size_t i = 0; i < r->elements; i++) {
                bool fresh = r->element[i]->type == REDIS_REPLY_INTEGER &&
                             r->element[i]->integer == 1;
                if (fresh)
                    atomic_fetch_add(&in->stored, 1);
                fw_counter_add(fresh ? in->m_stored : in->m_dup, 1);
            }
        }
        freeReplyObject(r);
    }
    if (done < fl->n)
        fw_counter_add(in->m_redis_err, 1);
    return done;
}

static void flight_clear(struct flight *fl)
{
    for (size_t i = 0; i < fl->n; i++)
        rd_kafka_message_destroy(fl->ms[i]);
    fl->n = 0;
    fl->count = 0;
}

/* Settles the batch in flight (its reply, its offsets) and, when next is
 * given, the batch sent after it.  When one of them failed, every message
 * from the first not stored on is sought back (the next batch whole: it
 * may have been stored, and storing again is idempotent).  Returns false
 * when something must be read again (the caller waits a second). */
static bool settle(fw_con_ingest *in, redisContext **cp, struct flight *old, struct flight *next,
                   bool next_sent)
{
    size_t done = read_reply(in, cp, old);
    for (size_t i = 0; i < done; i++)
        store_offset(in->rk, old->ms[i]);
    bool ok = done == old->n;
    if (!ok) {
        if (next && next->n) {
            if (next_sent && *cp)
                (void)read_reply(in, cp, next);     /* its reply, dropped */
            rd_kafka_message_t *all[2 * BATCH];
            size_t k = 0;
            for (size_t i = done; i < old->n; i++)
                all[k++] = old->ms[i];
            for (size_t i = 0; i < next->n; i++)
                all[k++] = next->ms[i];
            seek_back(in->rk, all, 0, k);
            flight_clear(next);
        } else {
            seek_back(in->rk, old->ms, done, old->n);
        }
    }
    flight_clear(old);
    return ok;
}

/* Messages behind the end of the assigned partitions (cached watermarks:
 * no request to the broker). */
static void update_lag(fw_con_ingest *in)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(in->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a)
        return;
    rd_kafka_position(in->rk, a);
    double lag = 0;
    for (int i = 0; i < a->cnt; i++) {
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(in->rk, a->elems[i].topic, a->elems[i].partition,
                                           &lo, &hi) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi >= 0 && a->elems[i].offset >= 0 && hi > a->elems[i].offset)
            lag += (double)(hi - a->elems[i].offset);
    }
    rd_kafka_topic_partition_list_destroy(a);
    fw_gauge_set(in->m_lag, lag);
}

static void *run(void *arg)
{
    fw_con_ingest *in = arg;
    redisContext *c = NULL;
    struct flight flights[2];
    memset(flights, 0, sizeof flights);
    struct flight *old = &flights[0], *cur = &flights[1];    /* old: sent, reply not read */
    int64_t last_routes = 0, last_lag = 0, last_retention = fw_mono_ms() - RETENTION_EVERY_MS + 10000;
    int64_t wait_until = 0;
    bool redis_down_logged = false;
    while (!atomic_load(&in->stop)) {
        int64_t now = fw_mono_ms();
        if (now < wait_until) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(in->rk, 100);
            if (m) {    /* after a seek nothing should come; put it back by seeking */
                seek_back(in->rk, &m, 0, 1);
                rd_kafka_message_destroy(m);
            }
            continue;
        }
        bool due = now - last_routes >= 1000 || now - last_lag >= 2000 ||
                   now - last_retention >= RETENTION_EVERY_MS;
        if (old->n && (due || !c)) {    /* the periodic work uses the connection */
            if (!settle(in, &c, old, NULL, false)) {
                wait_until = fw_mono_ms() + 1000;
                continue;
            }
        }
        if (!c) {
            char err[512];
            c = fw_con_get(in->st, err, sizeof err);
            if (!c) {
                if (!redis_down_logged)
                    fw_log(FW_LOG_ERROR, "console", "Redis unreachable; not consuming until "
                           "it is back", "reason=\"%s\"", err);
                redis_down_logged = true;
                wait_until = now + 1000;
                continue;
            }
            if (redis_down_logged)
                fw_log(FW_LOG_INFO, "console", "Redis is back; catching up", NULL);
            redis_down_logged = false;
            in->routes_version = -1;
        }
        if (!old->n) {
            if (now - last_routes >= 1000) {
                reload_routes(in, c);
                last_routes = now;
            }
            if (now - last_lag >= 2000) {
                update_lag(in);
                last_lag = now;
            }
            if (now - last_retention >= RETENTION_EVERY_MS) {
                retention(in, c);
                last_retention = now;
            }
            if (c->err) {
                fw_con_put(in->st, c, false);
                c = NULL;
                continue;
            }
        }
        /* the next batch; no waiting while one is in flight */
        size_t n = 0;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(in->rk, old->n ? 0 : 200);
        while (m) {
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    fw_log(FW_LOG_WARN, "console", "consumer error", "reason=\"%s\"",
                           rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
            } else {
                cur->ms[n++] = m;
            }
            if (n == BATCH)
                break;
            m = rd_kafka_consumer_poll(in->rk, 0);
        }
        cur->n = n;
        bool sent = n && send_batch(in, &c, cur) == 0;
        if (old->n && !settle(in, &c, old, cur, sent)) {
            wait_until = fw_mono_ms() + 1000;
            continue;
        }
        if (n && !sent) {       /* Redis went away under this batch */
            seek_back(in->rk, cur->ms, 0, cur->n);
            flight_clear(cur);
            wait_until = fw_mono_ms() + 1000;
            continue;
        }
        struct flight *t = old;
        old = cur;
        cur = t;
    }
    if (old->n)
        settle(in, &c, old, NULL, false);
    if (c)
        fw_con_put(in->st, c, true);
    return NULL;
}

/* Assigns and revokes what librdkafka would without a callback; it is
 * here to see the first assignment.  The operator may set
 * kafka.consumer.partition.assignment.strategy = cooperative-sticky (the
 * daemon's assignor), and a cooperative-sticky member stopped while still
 * joining would abort in librdkafka 2.0.2 (kafka.h). */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fw_con_ingest *in = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        in->assigned_once = true;
    fw_kafka_rebalance_apply(rk, err, parts);
}

fw_con_ingest *fw_con_ingest_start(const fw_settings *cfg, fw_con_store *st, fw_metrics *m,
                                   char *err, size_t errlen)
{
    fw_con_ingest *in = fw_xcalloc(1, sizeof *in);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[512];
    struct { const char *k, *v; } fixed[] = {
        { "bootstrap.servers", cfg->brokers },
        { "group.id", cfg->group_id },
        { "client.id", cfg->instance_id },
        { "enable.auto.commit", "true" },
        { "auto.commit.interval.ms", "1000" },
        { "enable.auto.offset.store", "false" },
        { "auto.offset.reset", "earliest" },
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (rd_kafka_conf_set(conf, fixed[i].k, fixed[i].v, e, sizeof e) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "kafka: %s: %s", fixed[i].k, e);
            rd_kafka_conf_destroy(conf);
            free(in);
            return NULL;
        }
    for (size_t i = 0; i < cfg->nconsumer; i++)
        if (rd_kafka_conf_set(conf, cfg->consumer_keys[i], cfg->consumer_values[i], e,
                              sizeof e) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "kafka.consumer.%s: %s", cfg->consumer_keys[i], e);
            rd_kafka_conf_destroy(conf);
            free(in);
            return NULL;
        }
    rd_kafka_conf_set_opaque(conf, in);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!rk) {
        snprintf(err, errlen, "kafka: %s", e);
        rd_kafka_conf_destroy(conf);
        free(in);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, cfg->console_alerts_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rc = rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (rc) {
        snprintf(err, errlen, "kafka: subscribe to %s: %s", cfg->console_alerts_topic,
                 rd_kafka_err2str(rc));
        rd_kafka_destroy(rk);
        free(in);
        return NULL;
    }
    in->rk = rk;
    in->st = st;
    in->topic = fw_xstrdup(cfg->console_alerts_topic);
    in->retention_ms = (int64_t)cfg->console_retention_days * 86400000LL;
    in->routes_version = -1;
    in->batch = fw_con_batch_new();
    in->m_stored = fw_metrics_counter(m, "fraudwatch_console_alerts_stored_total",
                                      "Alerts stored in Redis for the first time.", NULL);
    in->m_dup = fw_metrics_counter(m, "fraudwatch_console_alerts_already_stored_total",
                                   "Alerts read again (re-read, another console): nothing changed.",
                                   NULL);
    in->m_garbage = fw_metrics_counter(m, "fraudwatch_console_messages_skipped_total",
                                       "Messages on the alert topic not stored.",
                                       "reason=\"not_an_alert\"");
    in->m_notlive = fw_metrics_counter(m, "fraudwatch_console_messages_skipped_total",
                                       "Messages on the alert topic not stored.",
                                       "reason=\"shadow_or_snoozed\"");
    in->m_redis_err = fw_metrics_counter(m, "fraudwatch_console_store_failures_total",
                                         "Batches of alerts Redis did not take whole (retried).",
                                         NULL);
    in->m_lag = fw_metrics_gauge(m, "fraudwatch_console_lag_messages",
                                 "Messages of the alert topic not yet read (assigned partitions).",
                                 NULL);
    if (pthread_create(&in->thread, NULL, run, in) != 0) {
        snprintf(err, errlen, "cannot start the ingest thread");
        if (!fw_kafka_joining(rk, &in->assigned_once))   /* else left alone: kafka.h */
            rd_kafka_destroy(rk);
        free(in->topic);
        free(in);
        return NULL;
    }
    return in;
}

void fw_con_ingest_stop(fw_con_ingest *in)
{
    if (!in)
        return;
    atomic_store(&in->stop, true);
    pthread_join(in->thread, NULL);
    rd_kafka_commit(in->rk, NULL, 0);   /* the stored offsets, now */
    /* With the cooperative-sticky assignor and still joining, the consumer
     * cannot be destroyed (kafka.h): it waits for its first assignment, or
     * is left as it is (the console is exiting). */
    if (fw_kafka_await_first_assignment(in->rk, &in->assigned_once, fw_mono_ms() + 5000,
                                        "console consumer")) {
        rd_kafka_consumer_close(in->rk);
        rd_kafka_destroy(in->rk);
    }
    fw_con_routes_free(in->routes);
    fw_con_batch_free(in->batch);
    free(in->topic);
    free(in);
}
