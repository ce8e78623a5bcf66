/* loadgen.c — produce the lines of a JSONL event file to a Kafka topic.
 *
 *   loadgen -b BROKERS -t TOPIC [--rate EPS] [--count N] [--side FILE]
 *           [--linger MS] [-X key=value]... [-q] FILE
 *
 * Each non-empty line is one message.  The key is the event's subscriber,
 * found by a cheap scan of the line (no JSON parse): `caller` for a call,
 * `sender` for an SMS, `payer_phone` for a transfer, so the default
 * partitioner sends a subscriber's events to one partition as a real feed
 * would.  The message timestamp (CreateTime) is the wall clock (ms) at the
 * moment the line is handed to librdkafka.
 *
 * Without --rate the lines are produced as fast as librdkafka takes them
 * (preloading a topic).  With --rate EPS the send is paced in 1 ms slices:
 * every millisecond the generator sends the lines that are due by then
 * (EPS x elapsed - sent), so the offered rate is steady at the millisecond
 * scale.  If it falls behind (queue full, a slow slice) it catches up in the
 * next slices; the largest backlog is reported.
 *
 * --side FILE writes "event_id<TAB>send_ts_ms" per line, the input side of
 * the event-to-alert latency (bench/latency).
 *
 * --seq-ts MS stamps the n-th message (from 0) with MS + n instead of the
 * wall clock: message timestamps then follow the file strictly, one
 * millisecond apart, so a consumer that interleaves partitions by timestamp
 * can restore the file's order exactly (tests/integration/test_partitions.py);
 * wall-clock stamps tie by the hundreds within a millisecond at full speed.
 *
 * On exit it prints one summary line on stdout:
 *   loadgen: N messages, S s sending, R msg/s achieved, F s to last ack, ...
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

static uint64_t delivered, failed;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *arg)
{
    (void)rk;
    (void)arg;
    if (m->err) {
        if (failed++ < 5)
            fprintf(stderr, "loadgen: delivery failed: %s\n", rd_kafka_err2str(m->err));
    } else {
        delivered++;
    }
}

/* The string value of "name":"..." in [p, end), or NULL. */
static const char *field(const char *p, const char *end, const char *name,
                         size_t *len)
{
    char pat[64];
    int n = snprintf(pat, sizeof pat, "\"%s\":\"", name);
    if (n <= 0 || (size_t)n >= sizeof pat)
        return NULL;
    const char *f = memmem(p, (size_t)(end - p), pat, (size_t)n);
    if (!f)
        return NULL;
    f += n;
    const char *q = memchr(f, '"', (size_t)(end - f));
    if (!q)
        return NULL;
    *len = (size_t)(q - f);
    return f;
}

static const char *subscriber(const char *p, const char *end, size_t *len)
{
    size_t tl;
    const char *t = field(p, end, "type", &tl);
    if (!t)
        return NULL;
    if (tl == 4 && memcmp(t, "call", 4) == 0)
        return field(p, end, "caller", len);
    if (tl == 3 && memcmp(t, "sms", 3) == 0)
        return field(p, end, "sender", len);
    if (tl == 8 && memcmp(t, "transfer", 8) == 0)
        return field(p, end, "payer_phone", len);
    return NULL;
}

static void usage(FILE *f)
{
    fputs("usage: loadgen -b BROKERS -t TOPIC [--rate EPS] [--count N] [--side FILE]\n"
          "               [--linger MS] [-X key=value]... [-q] FILE\n"
          "\n"
          "Produces each line of FILE (JSONL events) as one message to TOPIC, keyed\n"
          "by the subscriber (caller / sender / payer_phone), timestamp = wall clock\n"
          "at send.\n"
          "\n"
          "  -b, --brokers LIST  bootstrap servers (127.0.0.1:PORT)\n"
          "  -t, --topic NAME    topic to produce to\n"
          "  --rate EPS          offered rate, paced in 1 ms slices (default: as fast\n"
          "                      as possible)\n"
          "  --count N           stop after N lines (default: the whole file)\n"
          "  --side FILE         write \"event_id<TAB>send_ts_ms\" per message\n"
          "  --seq-ts MS         timestamp the n-th message MS + n (ms) instead of the\n"
          "                      wall clock: timestamps in file order, no ties\n"
          "  --linger MS         producer linger.ms (default 2, the daemon's)\n"
          "  -X key=value        any other librdkafka producer property\n"
          "  -q                  no progress on stderr\n",
          f);
}

static int set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char e[512];
    if (rd_kafka_conf_set(c, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "loadgen: %s=%s: %s\n", k, v, e);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL, *file = NULL, *side_path = NULL;
    const char *linger = "2";
    double rate = 0;
    uint64_t count = UINT64_MAX;
    bool quiet = false;
    int64_t seq_ts = -1;
    char *xs[64];
    size_t nx = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-q")) {
            quiet = true;
        } else if (a[0] == '-' && a[1] != '\0' && !v) {
            fprintf(stderr, "loadgen: %s needs a value\n", a);
            return 2;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--brokers")) {
            brokers = argv[++i];
        } else if (!strcmp(a, "-t") || !strcmp(a, "--topic")) {
            topic = argv[++i];
        } else if (!strcmp(a, "--rate")) {
            rate = strtod(argv[++i], NULL);
        } else if (!strcmp(a, "--count")) {
            count = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--seq-ts")) {
            seq_ts = strtoll(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--side")) {
            side_path = argv[++i];
        } else if (!strcmp(a, "--linger")) {
            linger = argv[++i];
        } else if (!strcmp(a, "-X")) {
            char *kv = argv[++i];
            if (!strchr(kv, '=') || nx == sizeof xs / sizeof xs[0]) {
                fprintf(stderr, "loadgen: -X %s: expected key=value (at most 64)\n", kv);
                return 2;
            }
            xs[nx++] = kv;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "loadgen: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else {
            file = a;
        }
    }
    if (!brokers || !topic || !file) {
        usage(stderr);
        return 2;
    }

    int fd = open(file, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "loadgen: %s: %s\n", file, strerror(errno));
        return 1;
    }
    size_t size = (size_t)st.st_size;
    const char *data = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0)
                            : NULL;
    if (size && data == MAP_FAILED) {
        fprintf(stderr, "loadgen: mmap %s: %s\n", file, strerror(errno));
        return 1;
    }
    FILE *side = NULL;
    if (side_path) {
        side = fopen(side_path, "w");
        if (!side) {
            fprintf(stderr, "loadgen: %s: %s\n", side_path, strerror(errno));
            return 1;
        }
        setvbuf(side, NULL, _IOFBF, 1 << 20);
    }

    char e[512];
    /* Settings the command line may override come first... */
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (set(c, "bootstrap.servers", brokers) || set(c, "linger.ms", linger) ||
        set(c, "queue.buffering.max.messages", "1000000") ||
        set(c, "queue.buffering.max.kbytes", "1048576"))
        return 2;
    /* ...then -X, in order. */
    for (size_t i = 0; i < nx; i++) {
        char *eq = strchr(xs[i], '=');
        *eq = '\0';
        if (set(c, xs[i], eq + 1))
            return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!rk) {
        fprintf(stderr, "loadgen: producer: %s\n", e);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    /* Connect and learn the partitions before the clock starts, so the first
     * paced messages do not wait for metadata.  A broker that stalls (a
     * shared CI machine saw one silent for 11 s) or a topic created a moment
     * ago without a leader yet is waited for, up to 60 s in all, saying so. */
    double md_t0 = mono_s();
    for (int attempt = 1;; attempt++) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t merr = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (!merr) {
            merr = md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC : md->topics[0].err;
            rd_kafka_metadata_destroy(md);
            if (!merr)
                break;
        }
        bool passing = merr == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                       merr == RD_KAFKA_RESP_ERR__TRANSPORT ||
                       merr == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                       merr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                       merr == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT;
        if (!passing || mono_s() - md_t0 >= 60) {
            fprintf(stderr, "loadgen: topic %s: %s\n", topic, rd_kafka_err2str(merr));
            return 1;
        }
        if (attempt == 1 || attempt % 25 == 0)
            fprintf(stderr, "loadgen: topic %s: %s (attempt %d), asking again\n", topic,
                    rd_kafka_err2str(merr), attempt);
        struct timespec pause = { .tv_nsec = 200 * 1000000L };
        nanosleep(&pause, NULL);
    }

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    const char *p = data, *end = data + size;
    uint64_t sent = 0, nokey = 0, max_backlog = 0, slices = 0, late_slices = 0;
    double t0 = mono_s(), next_report = t0 + 5;
    struct timespec tick;
    clock_gettime(CLOCK_MONOTONIC, &tick);

    while (p < end && sent < count && !stop) {
        uint64_t due = count;
        if (rate > 0) {
            double el = mono_s() - t0;
            due = (uint64_t)(rate * el) + 1;
            if (due > count)
                due = count;
            if (due > sent + 1 && due - sent > max_backlog)
                max_backlog = due - sent;
        }
        while (sent < due && p < end && !stop) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *le = nl ? nl : end;
            if (le == p) { /* empty line */
                p = le + 1;
                continue;
            }
            size_t klen = 0;
            const char *key = subscriber(p, le, &klen);
            if (!key)
                nokey++;
            int64_t ts = seq_ts >= 0 ? seq_ts + (int64_t)sent : wall_ms();
            /* rd_kafka_produceva, not the producev macros (GNU statement
             * expressions, which clang -Wpedantic refuses).  Flags 0: no
             * copy, the mapping outlives the producer. */
            rd_kafka_vu_t vus[4] = {
                { .vtype = RD_KAFKA_VTYPE_RKT, .u.rkt = rkt },
                { .vtype = RD_KAFKA_VTYPE_VALUE,
                  .u.mem = { (void *)p, (size_t)(le - p) } },
                { .vtype = RD_KAFKA_VTYPE_KEY, .u.mem = { (void *)key, klen } },
                { .vtype = RD_KAFKA_VTYPE_TIMESTAMP, .u.i64 = ts },
            };
            for (;;) {
                rd_kafka_error_t *pe = rd_kafka_produceva(rk, vus, 4);
                rd_kafka_resp_err_t err = pe ? rd_kafka_error_code(pe)
                                             : RD_KAFKA_RESP_ERR_NO_ERROR;
                if (pe)
                    rd_kafka_error_destroy(pe);
                if (!err)
                    break;
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    rd_kafka_poll(rk, 5);
                    continue;
                }
                fprintf(stderr, "loadgen: produce: %s\n", rd_kafka_err2str(err));
                return 1;
            }
            if (side) {
                size_t il;
                const char *id = field(p, le, "event_id", &il);
                if (id)
                    fprintf(side, "%.*s\t%" PRId64 "\n", (int)il, id, ts);
            }
            sent++;
            p = le + 1;
            if ((sent & 1023) == 0)
                rd_kafka_poll(rk, 0);
        }
        rd_kafka_poll(rk, 0);
        if (rate > 0 && sent < count && p < end) {
            /* Sleep to the next 1 ms boundary. */
            tick.tv_nsec += 1000000;
            if (tick.tv_nsec >= 1000000000) {
                tick.tv_nsec -= 1000000000;
                tick.tv_sec++;
            }
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            slices++;
            if (now.tv_sec > tick.tv_sec ||
                (now.tv_sec == tick.tv_sec && now.tv_nsec > tick.tv_nsec)) {
                late_slices++;
                tick = now; /* do not try to make up missed ticks one by one */
            } else {
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, NULL);
            }
        }
        if (!quiet && mono_s() >= next_report) {
            fprintf(stderr, "loadgen: %" PRIu64 " sent, %.0f msg/s\n", sent,
                    (double)sent / (mono_s() - t0));
            next_report += 5;
        }
    }
    double t_sent = mono_s();
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_poll(rk, 50);
    double t_acked = mono_s();
    if (side && fclose(side) != 0) {
        fprintf(stderr, "loadgen: %s: %s\n", side_path, strerror(errno));
        return 1;
    }
    double dur = t_sent - t0;
    printf("loadgen: %" PRIu64 " messages, %.3f s sending, %.0f msg/s achieved"
           " (offered %s), %.3f s to last ack (%.0f msg/s acked), %" PRIu64
           " delivered, %" PRIu64 " failed, %" PRIu64 " without key",
           sent, dur, dur > 0 ? (double)sent / dur : 0.0,
           rate > 0 ? "paced" : "max", t_acked - t0,
           t_acked > t0 ? (double)sent / (t_acked - t0) : 0.0, delivered, failed, nokey);
    if (rate > 0)
        printf(", target %.0f msg/s, max backlog %" PRIu64 " msgs, %" PRIu64
               " of %" PRIu64 " 1-ms slices overran",
               rate, max_backlog, late_slices, slices);
    printf("\n");
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    if (size)
        munmap((void *)data, size);
    close(fd);
    return failed || stop ? 1 : 0;
}
