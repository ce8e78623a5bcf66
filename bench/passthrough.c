/* passthrough.c — the ceiling for `fraudwatch run`: consume, copy, commit.
 *
 *   passthrough -b BROKERS -g GROUP -i IN_TOPIC -o OUT_TOPIC --count N
 *               [--commit-ms MS] [-X consumer.key=value] [-X producer.key=value]
 *
 * A consumer-producer built on the same librdkafka settings as the daemon
 * (src/kafka_in.c, src/kafka_out.c), doing no matching:
 *
 *   consumer  group GROUP, partition.assignment.strategy=cooperative-sticky
 *             (incremental assign/unassign in the rebalance callback, as the
 *             daemon does), enable.auto.commit=false,
 *             enable.auto.offset.store=false, enable.partition.eof=false,
 *             auto.offset.reset=earliest; rd_kafka_consumer_poll() one message
 *             at a time, 0 ms timeout while messages flow (20 ms when idle);
 *   producer  linger.ms=2, message.timeout.ms=0, enable.idempotence=true;
 *             every message copied (RD_KAFKA_MSG_F_COPY) with its key and
 *             value unchanged, partitioned by key like the daemon's alerts;
 *             QUEUE_FULL answered by polling for delivery reports;
 *   commits   every --commit-ms (default 5000, the daemon's
 *             state.checkpoint_interval_ms) the loop stops consuming, waits
 *             until every copy produced so far is acknowledged, then commits
 *             the next offset of each partition synchronously — the daemon's
 *             checkpoint without the state file.
 *
 * It exits after N messages are copied and acknowledged (and a final commit),
 * or with status 1 when nothing arrives for --idle-timeout-ms (default 60 s),
 * printing on stdout:
 *   passthrough: N messages, S s, R msg/s (first consumed -> last delivered), ...
 */
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static volatile sig_atomic_t stop;
static uint64_t pending, delivered, failed;
static double t_last_delivery;

/* rd_kafka_produceva, not the producev macros (GNU statement expressions,
 * which clang -Wpedantic refuses); same call underneath. */
static rd_kafka_resp_err_t copy(rd_kafka_t *rk, rd_kafka_topic_t *rkt,
                                const void *val, size_t len, const void *key,
                                size_t klen)
{
    rd_kafka_vu_t vus[4] = {
        { .vtype = RD_KAFKA_VTYPE_RKT, .u.rkt = rkt },
        { .vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = { (void *)val, len } },
        { .vtype = RD_KAFKA_VTYPE_KEY, .u.mem = { (void *)key, klen } },
        { .vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY },
    };
    rd_kafka_error_t *e = rd_kafka_produceva(rk, vus, 4);
    rd_kafka_resp_err_t err = e ? rd_kafka_error_code(e) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (e)
        rd_kafka_error_destroy(e);
    return err;
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct part {
    char topic[256];
    int32_t partition;
    int64_t next; /* next offset to commit; -1: nothing yet */
};
static struct part parts[1024];
static size_t nparts;

static struct part *part_of(const char *topic, int32_t partition)
{
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].partition == partition && !strcmp(parts[i].topic, topic))
            return &parts[i];
    if (nparts == sizeof parts / sizeof parts[0]) {
        fputs("passthrough: too many partitions\n", stderr);
        exit(1);
    }
    struct part *p = &parts[nparts++];
    snprintf(p->topic, sizeof p->topic, "%s", topic);
    p->partition = partition;
    p->next = -1;
    return p;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *arg)
{
    (void)arg;
    if (m->err) {
        /* Like the daemon: never drop, produce again. */
        if (failed++ < 5)
            fprintf(stderr, "passthrough: delivery failed (re-sending): %s\n",
                    rd_kafka_err2str(m->err));
        for (;;) {
            rd_kafka_resp_err_t e = copy(rk, m->rkt, m->payload, m->len, m->key,
                                         m->key_len);
            if (!e)
                return;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "passthrough: re-send: %s\n", rd_kafka_err2str(e));
                exit(1);
            }
            rd_kafka_poll(rk, 10);
        }
    }
    pending--;
    delivered++;
    t_last_delivery = mono_s();
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *ps, void *arg)
{
    (void)arg;
    rd_kafka_error_t *e = NULL;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        e = rd_kafka_incremental_assign(rk, ps);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        for (int i = 0; i < ps->cnt; i++)
            part_of(ps->elems[i].topic, ps->elems[i].partition)->next = -1;
        e = rd_kafka_incremental_unassign(rk, ps);
    } else {
        fprintf(stderr, "passthrough: rebalance error: %s\n", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
    if (e) {
        fprintf(stderr, "passthrough: rebalance: %s\n", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
}

static int set(rd_kafka_conf_t *c, const char *who, const char *k, const char *v)
{
    char e[512];
    if (rd_kafka_conf_set(c, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "passthrough: %s %s=%s: %s\n", who, k, v, e);
        return -1;
    }
    return 0;
}

/* Waits for every produced copy's report, then commits what was consumed. */
static int checkpoint(rd_kafka_t *cons, rd_kafka_t *prod, uint64_t *commits)
{
    while (pending > 0 && !stop)
        rd_kafka_poll(prod, 50);
    if (pending > 0)
        return -1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)nparts);
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].next >= 0)
            rd_kafka_topic_partition_list_add(l, parts[i].topic, parts[i].partition)
                ->offset = parts[i].next;
    int rc = 0;
    if (l->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_commit(cons, l, 0);
        if (err) {
            fprintf(stderr, "passthrough: commit failed: %s\n", rd_kafka_err2str(err));
            rc = -1;
        } else {
            (*commits)++;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

static void usage(FILE *f)
{
    fputs("usage: passthrough -b BROKERS -g GROUP -i IN_TOPIC -o OUT_TOPIC --count N\n"
          "                   [--commit-ms MS] [--idle-timeout-ms MS]\n"
          "                   [-X consumer.KEY=VALUE] [-X producer.KEY=VALUE]\n"
          "\n"
          "Copies every message of IN_TOPIC (consumer group GROUP) to OUT_TOPIC with\n"
          "the daemon's librdkafka settings, commits after delivery every MS ms\n"
          "(default 5000), and exits after N messages are copied and acknowledged.\n"
          "Gives up (exit 1) when no message arrives for --idle-timeout-ms (60000).\n",
          f);
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *group = NULL, *in_topic = NULL, *out_topic = NULL;
    uint64_t count = 0;
    long commit_ms = 5000, idle_ms = 60000;
    char *xs[64];
    size_t nx = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "passthrough: %s: missing value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-b"))
            brokers = v;
        else if (!strcmp(a, "-g"))
            group = v;
        else if (!strcmp(a, "-i"))
            in_topic = v;
        else if (!strcmp(a, "-o"))
            out_topic = v;
        else if (!strcmp(a, "--count"))
            count = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--commit-ms"))
            commit_ms = strtol(v, NULL, 10);
        else if (!strcmp(a, "--idle-timeout-ms"))
            idle_ms = strtol(v, NULL, 10);
        else if (!strcmp(a, "-X") && nx < sizeof xs / sizeof xs[0] && strchr(v, '='))
            xs[nx++] = argv[i];
        else {
            fprintf(stderr, "passthrough: bad option %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (!brokers || !group || !in_topic || !out_topic || count == 0 || commit_ms <= 0) {
        usage(stderr);
        return 2;
    }

    char e[512];
    /* Consumer: the daemon's defaults, -X consumer.*, then its fixed keys. */
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    if (set(cc, "consumer", "bootstrap.servers", brokers) ||
        set(cc, "consumer", "auto.offset.reset", "earliest") ||
        set(cc, "consumer", "partition.assignment.strategy", "cooperative-sticky") ||
        /* the daemon's consumer queue (src/kafka_in.c) */
        set(cc, "consumer", "queued.min.messages", "1000000") ||
        set(cc, "consumer", "queued.max.messages.kbytes", "262144"))
        return 2;
    /* Producer: the daemon's defaults, -X producer.*, then its fixed keys. */
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    if (set(pc, "producer", "bootstrap.servers", brokers) ||
        set(pc, "producer", "linger.ms", "2") ||
        set(pc, "producer", "message.timeout.ms", "0"))
        return 2;
    for (size_t i = 0; i < nx; i++) {
        char *eq = strchr(xs[i], '=');
        *eq = '\0';
        if (!strncmp(xs[i], "consumer.", 9)) {
            if (set(cc, "consumer", xs[i] + 9, eq + 1))
                return 2;
        } else if (!strncmp(xs[i], "producer.", 9)) {
            if (set(pc, "producer", xs[i] + 9, eq + 1))
                return 2;
        } else {
            fprintf(stderr, "passthrough: -X %s: prefix consumer. or producer.\n", xs[i]);
            return 2;
        }
    }
    if (set(cc, "consumer", "group.id", group) ||
        set(cc, "consumer", "client.id", "fw-bench-passthrough") ||
        set(cc, "consumer", "enable.auto.commit", "false") ||
        set(cc, "consumer", "enable.auto.offset.store", "false") ||
        set(cc, "consumer", "enable.partition.eof", "false") ||
        set(pc, "producer", "enable.idempotence", "true") ||
        set(pc, "producer", "client.id", "fw-bench-passthrough"))
        return 2;
    rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);

    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof e);
    if (!prod) {
        fprintf(stderr, "passthrough: producer: %s\n", e);
        return 1;
    }
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e);
    if (!cons) {
        fprintf(stderr, "passthrough: consumer: %s\n", e);
        return 1;
    }
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_topic_t *out = rd_kafka_topic_new(prod, out_topic, NULL);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, in_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(cons, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (serr) {
        fprintf(stderr, "passthrough: subscribe: %s\n", rd_kafka_err2str(serr));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    uint64_t copied = 0, consumer_errors = 0, commits = 0, queue_full = 0;
    double t_start = mono_s(), t_first = 0, last_cp = t_start, last_msg = t_start;
    bool idle_out = false;
    bool busy = false;
    while (copied < count && !stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, busy ? 0 : 20);
        busy = m != NULL;
        if (!m && (mono_s() - last_msg) * 1000 > (double)idle_ms) {
            fprintf(stderr, "passthrough: no message for %ld ms, giving up at %" PRIu64
                            " of %" PRIu64 "\n", idle_ms, copied, count);
            idle_out = true;
            break;
        }
        if (m) {
            last_msg = mono_s();
            if (m->err) {
                if (consumer_errors++ < 5)
                    fprintf(stderr, "passthrough: consumer: %s\n",
                            rd_kafka_message_errstr(m));
            } else {
                if (!t_first)
                    t_first = mono_s();
                for (;;) {
                    rd_kafka_resp_err_t err = copy(prod, out, m->payload, m->len,
                                                   m->key, m->key_len);
                    if (!err)
                        break;
                    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        fprintf(stderr, "passthrough: produce: %s\n", rd_kafka_err2str(err));
                        return 1;
                    }
                    queue_full++;
                    rd_kafka_poll(prod, 10);
                }
                pending++;
                copied++;
                struct part *p = part_of(rd_kafka_topic_name(m->rkt), m->partition);
                if (m->offset + 1 > p->next)
                    p->next = m->offset + 1;
            }
            rd_kafka_message_destroy(m);
        }
        rd_kafka_poll(prod, 0);
        double now = mono_s();
        if ((now - last_cp) * 1000 >= (double)commit_ms) {
            checkpoint(cons, prod, &commits);
            last_cp = mono_s();
        }
    }
    int rc = checkpoint(cons, prod, &commits) == 0 && !stop && !idle_out ? 0 : 1;
    double t_end = t_last_delivery;
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_topic_destroy(out);
    rd_kafka_destroy(prod);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double span = t_end - t_first;
    printf("passthrough: %" PRIu64 " messages, %.3f s, %.0f msg/s (first consumed -> last"
           " delivered), join %.3f s, %" PRIu64 " commits, %" PRIu64 " queue-full waits,"
           " %" PRIu64 " failed deliveries, %" PRIu64 " consumer errors, cpu %.2f s,"
           " maxrss %ld KiB\n",
           copied, span, span > 0 ? (double)copied / span : 0.0,
           t_first ? t_first - t_start : 0.0, commits, queue_full, failed,
           consumer_errors, cpu, ru.ru_maxrss);
    (void)delivered;
    return rc;
}
