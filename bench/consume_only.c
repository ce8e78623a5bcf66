/* consume_only.c — the real ceiling for `fraudwatch run`: consume and commit,
 * nothing else.
 *
 *   consume_only -b BROKERS -g GROUP -i IN_TOPIC --count N
 *                [--commit-ms MS] [--idle-timeout-ms MS] [-X key=value]
 *
 * A librdkafka consumer with the daemon's consumer settings (src/kafka_in.c),
 * which reads every message and does nothing with it: no parsing, no
 * matching, no output.  What the daemon does on top of this is its own work
 * (parse, match, checkpoint, produce alerts), so daemon / consume-only is the
 * share of the broker-and-client ceiling the daemon reaches (issue 16, item
 * 3); bench/passthrough, which also produces a copy of every message, does
 * more work than the daemon and is no ceiling.
 *
 *   consumer  group GROUP, partition.assignment.strategy=cooperative-sticky
 *             (incremental assign/unassign in the rebalance callback),
 *             auto.offset.reset=earliest, queued.min.messages=1000000,
 *             queued.max.messages.kbytes=16384, enable.auto.commit=false,
 *             enable.auto.offset.store=false, enable.partition.eof=false;
 *             -X key=value overrides the first five (the daemon's
 *             kafka.consumer.* settings), not the last three;
 *             rd_kafka_consumer_poll() one message at a time, 0 ms timeout
 *             while messages flow (20 ms when idle), as the daemon's driver;
 *             the fetchers woken when the queue, once full, is half empty
 *             (the daemon's own fw_kafka_waker, src/kafka_common.c; with
 *             nothing to do between polls this consumer seldom fills its
 *             queue);
 *   commits   every --commit-ms (default 5000, the daemon's
 *             state.checkpoint_interval_ms) the next offset of each partition,
 *             synchronously (the daemon waits for its commit's answer too).
 *
 * Exits after N messages (and a final commit), or with status 1 when nothing
 * arrives for --idle-timeout-ms (default 60 s), printing on stdout:
 *   consume_only: N messages, S s, R msg/s (first -> last consumed), join J s,
 *   C commits, E consumer errors, cpu U s, maxrss K KiB, W fetch wake-ups
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

#include "kafka.h"

static volatile sig_atomic_t stop;

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
        fputs("consume_only: too many partitions\n", stderr);
        exit(1);
    }
    struct part *p = &parts[nparts++];
    snprintf(p->topic, sizeof p->topic, "%s", topic);
    p->partition = partition;
    p->next = -1;
    return p;
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
        fprintf(stderr, "consume_only: rebalance error: %s\n", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
    if (e) {
        fprintf(stderr, "consume_only: rebalance: %s\n", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
}

static int set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char e[512];
    if (rd_kafka_conf_set(c, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "consume_only: %s=%s: %s\n", k, v, e);
        return -1;
    }
    return 0;
}

static int commit(rd_kafka_t *cons, uint64_t *commits)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)nparts + 1);
    for (size_t i = 0; i < nparts; i++)
        if (parts[i].next >= 0)
            rd_kafka_topic_partition_list_add(l, parts[i].topic, parts[i].partition)
                ->offset = parts[i].next;
    int rc = 0;
    if (l->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_commit(cons, l, 0);
        if (err) {
            fprintf(stderr, "consume_only: commit failed: %s\n", rd_kafka_err2str(err));
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
    fputs("usage: consume_only -b BROKERS -g GROUP -i IN_TOPIC --count N\n"
          "                    [--commit-ms MS] [--idle-timeout-ms MS] [-X KEY=VALUE]\n"
          "\n"
          "Reads N messages of IN_TOPIC (consumer group GROUP) with the daemon's\n"
          "consumer settings and does nothing with them; commits every MS ms\n"
          "(default 5000).  Gives up (exit 1) when no message arrives for\n"
          "--idle-timeout-ms (60000).\n",
          f);
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *group = NULL, *in_topic = NULL;
    uint64_t count = 0;
    long commit_ms = 5000, idle_ms = 60000, batch = 0;
    char *xs[64];
    size_t nx = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "consume_only: %s: missing value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-b"))
            brokers = v;
        else if (!strcmp(a, "-g"))
            group = v;
        else if (!strcmp(a, "-i"))
            in_topic = v;
        else if (!strcmp(a, "--count"))
            count = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--commit-ms"))
            commit_ms = strtol(v, NULL, 10);
        else if (!strcmp(a, "--idle-timeout-ms"))
            idle_ms = strtol(v, NULL, 10);
        else if (!strcmp(a, "--batch"))
            batch = strtol(v, NULL, 10);
        else if (!strcmp(a, "-X") && nx < sizeof xs / sizeof xs[0] && strchr(v, '='))
            xs[nx++] = argv[i];
        else {
            fprintf(stderr, "consume_only: bad option %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    if (!brokers || !group || !in_topic || count == 0 || commit_ms <= 0) {
        usage(stderr);
        return 2;
    }

    /* The daemon's defaults (src/kafka_in.c), -X, then its fixed keys. */
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    if (set(cc, "bootstrap.servers", brokers) ||
        set(cc, "auto.offset.reset", "earliest") ||
        set(cc, "partition.assignment.strategy", "cooperative-sticky") ||
        set(cc, "queued.min.messages", "1000000") ||
        set(cc, "queued.max.messages.kbytes", "16384"))
        return 2;
    for (size_t i = 0; i < nx; i++) {
        char *eq = strchr(xs[i], '=');
        *eq = '\0';
        if (set(cc, xs[i], eq + 1))
            return 2;
    }
    if (set(cc, "group.id", group) ||
        set(cc, "client.id", "fw-bench-consume-only") ||
        set(cc, "enable.auto.commit", "false") ||
        set(cc, "enable.auto.offset.store", "false") ||
        set(cc, "enable.partition.eof", "false"))
        return 2;
    rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
    fw_kafka_waker waker;
    char e[512];
    if (fw_kafka_waker_caps(&waker, cc, "consume_only", e, sizeof e)) {
        fprintf(stderr, "consume_only: %s\n", e);
        return 2;
    }
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof e);
    if (!cons) {
        fprintf(stderr, "consume_only: consumer: %s\n", e);
        return 1;
    }
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, in_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(cons, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (serr) {
        fprintf(stderr, "consume_only: subscribe: %s\n", rd_kafka_err2str(serr));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    uint64_t consumed = 0, errors = 0, commits = 0, bytes = 0, wakeups = 0;
    double t_start = mono_s(), t_first = 0, t_last = 0, last_cp = t_start, last_msg = t_start;
    bool idle_out = false, busy = false;
    rd_kafka_queue_t *cq = rd_kafka_queue_get_consumer(cons);
    fw_kafka_waker_start(&waker, cons, NULL);
    rd_kafka_message_t *got[1024];
    ssize_t ngot = 0, igot = 0;
    if (batch > 1024)
        batch = 1024;
    while (consumed < count && !stop) {
        rd_kafka_message_t *m;
        if (batch > 0) {
            if (igot == ngot) {
                ngot = rd_kafka_consume_batch_queue(cq, busy ? 0 : 20, got, (size_t)batch);
                igot = 0;
                if (ngot < 0)
                    ngot = 0;
            }
            m = igot < ngot ? got[igot++] : NULL;
        } else {
            m = rd_kafka_consumer_poll(cons, busy ? 0 : 20);
        }
        busy = m != NULL;
        if (!m && (mono_s() - last_msg) * 1000 > (double)idle_ms) {
            fprintf(stderr, "consume_only: no message for %ld ms, giving up at %" PRIu64
                            " of %" PRIu64 "\n", idle_ms, consumed, count);
            idle_out = true;
            break;
        }
        if (m) {
            last_msg = t_last = mono_s();
            if (m->err) {
                if (errors++ < 5)
                    fprintf(stderr, "consume_only: consumer: %s\n", rd_kafka_message_errstr(m));
            } else {
                if (!t_first)
                    t_first = t_last;
                consumed++;
                bytes += m->len;
                struct part *p = part_of(rd_kafka_topic_name(m->rkt), m->partition);
                if (m->offset + 1 > p->next)
                    p->next = m->offset + 1;
                if (fw_kafka_waker_taken(&waker, m->len))
                    wakeups++;
            }
            rd_kafka_message_destroy(m);
        }
        if ((mono_s() - last_cp) * 1000 >= (double)commit_ms) {
            commit(cons, &commits);
            last_cp = mono_s();
        }
    }
    int rc = commit(cons, &commits) == 0 && !stop && !idle_out ? 0 : 1;
    fw_kafka_waker_stop(&waker);
    rd_kafka_queue_destroy(cq);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double span = t_last - t_first;
    printf("consume_only: %" PRIu64 " messages, %.3f s, %.0f msg/s (first -> last consumed),"
           " join %.3f s, %" PRIu64 " bytes, %" PRIu64 " commits, %" PRIu64 " consumer errors,"
           " cpu %.2f s, maxrss %ld KiB, %" PRIu64 " fetch wake-ups\n",
           consumed, span, span > 0 ? (double)(consumed - 1) / span : 0.0,
           t_first ? t_first - t_start : 0.0, bytes, commits, errors, cpu, ru.ru_maxrss,
           wakeups);
    return rc;
}
