/* test_faults.c — fault injection against `fraudwatch run` on librdkafka's
 * mock cluster (issue 6, "fault injection": request errors, coordinator and
 * leader moves, brokers down and up, disk-full-like producer errors).
 *
 * Owns the mock-cluster fault cases; the real-broker cases (broker killed,
 * SIGTERM during a rebalance) are tests/integration/.  docs/faults.md says
 * what each case does and what the daemon does about it.
 *
 * Shape, and why:
 *  - A plain C program, one case per run (`test_faults FW GEN ROOT CASE`),
 *    registered once per case in tests/meson.build: each case owns a mock
 *    cluster and a daemon subprocess and waits for seconds, so a case is the
 *    natural unit of a timeout and of parallelism; cmocka would add nothing.
 *  - The mock cluster lives in this process (rd_kafka_mock_cluster_new() on
 *    a throwaway producer handle).  Its brokers listen on 127.0.0.1 TCP
 *    ports, so the real `fraudwatch run` binary connects to them exactly as
 *    to a broker: the daemon under test is the shipped program, unmodified.
 *  - Three brokers with fixed roles, so an error pushed onto one broker's
 *    stack (rd_kafka_mock_broker_push_request_error_rtts) reaches the daemon
 *    and not this program's own clients: broker 1 leads the input topic
 *    (the daemon's Fetch), broker 2 the alert topic (the daemon's Produce),
 *    broker 3 coordinates the daemon's group (OffsetCommit, JoinGroup,
 *    SyncGroup, Heartbeat).  This program produces the input (to broker 1)
 *    only between faults, reads alerts from broker 2 without a group, and
 *    checks each error stack drained to zero, which proves every injected
 *    error was answered to the daemon.
 *  - The reference is `fraudwatch replay` over the same events (SPEC §5):
 *    the set of alert ids on the alert topic must equal replay's (nothing
 *    lost, nothing invented; a copy has the same alert_id), the daemon must
 *    exit 0 on SIGTERM, its log must hold no sanitizer report, and the
 *    group's committed offsets must reach the end of the input.
 *  - The rules are the shipped set plus two state-heavy rules of our own
 *    (F901: every third call of a caller within 10 min, F902: a payer's
 *    transfers summing to 20000 within an hour, both without suppression):
 *    an event processed twice, or skipped, changes which event crosses
 *    the threshold, so replay equality really checks the window state, and
 *    the ~900 alerts keep the producer busy while its requests fail.
 *  - Events come from bench/gen (4000 events, 1000 subscribers, so keys
 *    repeat): well under the mock's 5 MiB per partition.  They are produced
 *    in 12 chunks with pauses, and each case injects its faults before
 *    chosen chunks, so faults land while the daemon is working.  With
 *    several partitions, messages are keyed by the subscriber and only the
 *    rules keyed by it are compared (SPEC §5), as test_four_partitions_keyed
 *    does against the real broker.
 *  - No timing assertions: every wait is for a condition, with a generous
 *    deadline that only guards against a hang.
 *  - FW_FAULTS_KEEP=1 keeps the case's files (daemon log, events, replay
 *    output) in /tmp; FW_FAULTS_DEBUG=1 turns on librdkafka's debug log
 *    of the input producer (on stderr).
 *
 * librdkafka 2.0.2's mock cluster supports what the daemon uses: the
 * idempotent producer (InitProducerId, sequence checks) and consumer groups
 * with offset commits; the group protocol is passed through, so the
 * cooperative-sticky assignor (client-side) works on it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define IN_TOPIC "fw-in"
#define ALERT_TOPIC "fw-alerts"
#define DLQ_TOPIC "fw-dlq"
#define B_IN 1      /* leads the input topic */
#define B_OUT 2     /* leads the alert and dead-letter topics */
#define B_COORD 3   /* coordinates the daemon's group */
#define NCHUNKS 12
#define NEVENTS 4000

/* ApiKeys (Kafka protocol) */
enum { K_PRODUCE = 0, K_FETCH = 1, K_OFFSET_COMMIT = 8, K_JOIN_GROUP = 11,
       K_HEARTBEAT = 12, K_SYNC_GROUP = 14 };

static const char *FW, *GEN, *ROOT;

struct alert { char id[40]; char rule[72]; };

struct ctx {
    const struct fcase *c;
    char tmp[256];
    char events[512];
    char conf[512];
    char log[512];
    char group[128];
    rd_kafka_t *mrk;                 /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    const char *boot;
    rd_kafka_t *prod;                /* the input's producer */
    rd_kafka_t *reader;              /* the alert topic's reader */
    pid_t daemon;
    char **lines;                    /* the events, one per message */
    size_t nlines;
    struct alert *want;              /* replay's alerts, compared rules only */
    size_t nwant;
    struct alert *got;               /* everything on the alert topic */
    size_t ngot, capgot;
    int64_t read_next;               /* next alert offset to read */
    int produce_failures;
    bool may_exit;                   /* the case expects the daemon to stop by itself */
    int exit_status;                 /* then: its status, 128 + signal, or -1 (running) */
};

struct fcase {
    const char *name;
    int partitions;
    const char *doc;
    void (*before)(struct ctx *);            /* before the daemon starts */
    void (*at_chunk)(struct ctx *, int k);   /* before chunk k is produced */
    void (*after)(struct ctx *);             /* after the last chunk */
    /* stacks that must drain: {broker, apikey} pairs, ended by {0, 0} */
    int drain[8][2];
    const char *conf;                        /* extra configuration lines */
};

/* ---- failing ------------------------------------------------------------ */

static struct ctx *g_ctx;

static void dump_log(const char *path, int last)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    static char ring[64][600];
    int n = 0;
    while (fgets(ring[n % 64], sizeof ring[0], f))
        n++;
    fclose(f);
    if (last > 64)
        last = 64;
    printf("    --- last %d lines of the daemon's log (%s) ---\n", n < last ? n : last, path);
    for (int i = n > last ? n - last : 0; i < n; i++)
        printf("    %s", ring[i % 64]);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", g_ctx && g_ctx->c ? g_ctx->c->name : "setup");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (g_ctx) {
        if (g_ctx->daemon > 0) {
            kill(g_ctx->daemon, SIGKILL);
            waitpid(g_ctx->daemon, NULL, 0);
            g_ctx->daemon = 0;
        }
        dump_log(g_ctx->log, 40);
        printf("    files kept in %s\n", g_ctx->tmp);
    }
    fflush(stdout);
    exit(1);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("    ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

/* ---- processes ---------------------------------------------------------- */

static pid_t spawn(char *const argv[], const char *out, const char *errpath)
{
    pid_t pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = errpath == out ? fo : open(errpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fo < 0 || fe < 0)
            _exit(126);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void run_ok(char *const argv[], const char *out)
{
    char errpath[600];
    snprintf(errpath, sizeof errpath, "%s.stderr", out);
    pid_t pid = spawn(argv, out, errpath);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail("%s exited with status %d (see %s)", argv[0], WIFEXITED(st) ? WEXITSTATUS(st) : -1,
             errpath);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail("cannot read %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        fail("cannot write %s", path);
}

/* ---- alerts ------------------------------------------------------------- */

/* The rules compared with several partitions: keyed by the subscriber, the
 * partition key (SPEC §5). */
static const char *const KEYED[] = { "R101", "R102", "R103", "R104", "R203", "F901", "F902" };

static bool compared(const struct ctx *x, const char *rule)
{
    if (x->c->partitions == 1)
        return true;
    for (size_t i = 0; i < sizeof KEYED / sizeof KEYED[0]; i++)
        if (strcmp(KEYED[i], rule) == 0)
            return true;
    return false;
}

static bool parse_alert(const char *json, size_t len, struct alert *a)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "alert_id");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(o, "rule_id");
    bool ok = cJSON_IsString(id) && cJSON_IsString(rule);
    if (ok) {
        snprintf(a->id, sizeof a->id, "%s", id->valuestring);
        snprintf(a->rule, sizeof a->rule, "%s", rule->valuestring);
    }
    cJSON_Delete(o);
    return ok;
}

static int cmp_alert(const void *a, const void *b)
{
    return strcmp(((const struct alert *)a)->id, ((const struct alert *)b)->id);
}

/* Sorted distinct ids of the compared rules. */
static size_t distinct(const struct ctx *x, const struct alert *in, size_t n, struct alert **out)
{
    struct alert *v = malloc((n + 1) * sizeof *v);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (compared(x, in[i].rule))
            v[m++] = in[i];
    qsort(v, m, sizeof *v, cmp_alert);
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (k == 0 || strcmp(v[k - 1].id, v[i].id) != 0)
            v[k++] = v[i];
    *out = v;
    return k;
}

/* Reads whatever the alert topic has now (up to timeout_ms). */
static void read_alerts(struct ctx *x, int timeout_ms)
{
    double end = now_s() + timeout_ms / 1000.0;
    do {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(x->reader, 100);
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (x->ngot == x->capgot) {
            x->capgot = x->capgot ? x->capgot * 2 : 1024;
            x->got = realloc(x->got, x->capgot * sizeof *x->got);
        }
        if (!parse_alert(m->payload, m->len, &x->got[x->ngot]))
            fail("alert at offset %lld is not an alert: %.*s", (long long)m->offset,
                 (int)(m->len > 200 ? 200 : m->len), (const char *)m->payload);
        x->ngot++;
        x->read_next = m->offset + 1;
        rd_kafka_message_destroy(m);
    } while (now_s() < end);
}

/* Every wanted id seen?  Returns how many are still missing. */
static size_t missing(struct ctx *x)
{
    struct alert *g;
    size_t ng = distinct(x, x->got, x->ngot, &g);
    size_t miss = 0;
    for (size_t i = 0; i < x->nwant; i++)
        if (!bsearch(&x->want[i], g, ng, sizeof *g, cmp_alert))
            miss++;
    free(g);
    return miss;
}

static void check_alive(struct ctx *x)
{
    int st;
    if (x->daemon > 0 && waitpid(x->daemon, &st, WNOHANG) == x->daemon) {
        x->daemon = 0;
        if (x->may_exit) {
            x->exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return;
        }
        fail("the daemon exited on its own (status %d, signal %d)",
             WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
}

/* ---- the cluster and the input ----------------------------------------- */

static void on_input_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

static void setup_cluster(struct ctx *x)
{
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "2", e, sizeof e);
    x->mrk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!x->mrk)
        fail("rd_kafka_new: %s", e);
    x->mc = rd_kafka_mock_cluster_new(x->mrk, 3);
    if (!x->mc)
        fail("rd_kafka_mock_cluster_new failed");
    x->boot = rd_kafka_mock_cluster_bootstraps(x->mc);
    if (rd_kafka_mock_topic_create(x->mc, IN_TOPIC, x->c->partitions, 3) ||
        rd_kafka_mock_topic_create(x->mc, ALERT_TOPIC, 1, 3) ||
        rd_kafka_mock_topic_create(x->mc, DLQ_TOPIC, 1, 3))
        fail("rd_kafka_mock_topic_create failed");
    for (int p = 0; p < x->c->partitions; p++)
        rd_kafka_mock_partition_set_leader(x->mc, IN_TOPIC, p, B_IN);
    rd_kafka_mock_partition_set_leader(x->mc, ALERT_TOPIC, 0, B_OUT);
    rd_kafka_mock_partition_set_leader(x->mc, DLQ_TOPIC, 0, B_OUT);
    rd_kafka_mock_coordinator_set(x->mc, "group", x->group, B_COORD);

    c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", x->boot, e, sizeof e) ||
        rd_kafka_conf_set(c, "enable.idempotence", "true", e, sizeof e) ||
        rd_kafka_conf_set(c, "linger.ms", "5", e, sizeof e) ||
        /* The 2.0.2 mock can leave a connection that was open across
         * rd_kafka_mock_broker_set_down() unanswered after set_up (seen
         * under load: a Produce request sent after "up" waited for the
         * 60 s default request timeout).  A short timeout makes the
         * idempotent producer retry it on a new connection (no copies). */
        rd_kafka_conf_set(c, "socket.timeout.ms", "5000", e, sizeof e) ||
        (getenv("FW_FAULTS_DEBUG") && rd_kafka_conf_set(c, "debug", "broker,eos,msg,protocol", e, sizeof e)) ||
        rd_kafka_conf_set(c, "log_level", getenv("FW_FAULTS_DEBUG") ? "7" : "2", e, sizeof e))
        fail("producer conf: %s", e);
    rd_kafka_conf_set_dr_msg_cb(c, on_input_delivery);
    x->prod = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!x->prod)
        fail("producer: %s", e);

    c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", x->boot, e, sizeof e) ||
        rd_kafka_conf_set(c, "group.id", "fw-faults-reader", e, sizeof e) ||
        rd_kafka_conf_set(c, "socket.timeout.ms", "5000", e, sizeof e) || /* as the producer */
        rd_kafka_conf_set(c, "enable.auto.commit", "false", e, sizeof e) ||
        rd_kafka_conf_set(c, "enable.partition.eof", "false", e, sizeof e) ||
        rd_kafka_conf_set(c, "log_level", "2", e, sizeof e))
        fail("reader conf: %s", e);
    x->reader = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    if (!x->reader)
        fail("reader: %s", e);
    rd_kafka_poll_set_consumer(x->reader);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, ALERT_TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(x->reader, l))
        fail("assign the alert topic");
    rd_kafka_topic_partition_list_destroy(l);
}

static const char *subscriber(const char *line, char *buf, size_t len)
{
    cJSON *o = cJSON_Parse(line);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    const char *field = !cJSON_IsString(t) ? NULL
                        : strcmp(t->valuestring, "call") == 0     ? "caller"
                        : strcmp(t->valuestring, "sms") == 0      ? "sender"
                        : strcmp(t->valuestring, "transfer") == 0 ? "payer_phone"
                                                                  : NULL;
    const cJSON *v = field ? cJSON_GetObjectItemCaseSensitive(o, field) : NULL;
    snprintf(buf, len, "%s", cJSON_IsString(v) ? v->valuestring : "x");
    cJSON_Delete(o);
    return buf;
}

static void on_input_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        g_ctx->produce_failures++;
}

static void produce_chunk(struct ctx *x, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        char key[64];
        subscriber(x->lines[i], key, sizeof key);
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                x->prod, RD_KAFKA_V_TOPIC(IN_TOPIC),
                RD_KAFKA_V_VALUE(x->lines[i], strlen(x->lines[i])),
                RD_KAFKA_V_KEY(key, strlen(key)),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (!err)
                break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                fail("producing the input: %s", rd_kafka_err2str(err));
            rd_kafka_poll(x->prod, 10);
        }
    }
    if (rd_kafka_flush(x->prod, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail("the input was not delivered within 60 s");
    if (x->produce_failures)
        fail("%d input messages failed", x->produce_failures);
}

/* ---- injection helpers -------------------------------------------------- */

static void push(struct ctx *x, int broker, int apikey, const rd_kafka_resp_err_t *errs, size_t n,
                 int rtt_ms)
{
    /* The API takes (error, rtt) pairs as varargs: push them one by one. */
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_mock_broker_push_request_error_rtts(x->mc, broker, (int16_t)apikey, 1,
                                                         errs[i], rtt_ms))
            fail("push_request_error_rtts(broker %d, api %d)", broker, apikey);
}

static size_t stack_cnt(struct ctx *x, int broker, int apikey)
{
    size_t n = 0;
    rd_kafka_mock_broker_error_stack_cnt(x->mc, broker, (int16_t)apikey, &n);
    return n;
}

#define ERRS(...) ((const rd_kafka_resp_err_t[]){ __VA_ARGS__ }), \
    (sizeof((const rd_kafka_resp_err_t[]){ __VA_ARGS__ }) / sizeof(rd_kafka_resp_err_t))

#define E(x) RD_KAFKA_RESP_ERR_##x

/* ---- the cases ---------------------------------------------------------- */

static void request_errors_before(struct ctx *x)
{
    /* The first join meets a coordinator that is loading and then one that
     * is not the coordinator any more; the first sync, one still loading. */
    push(x, B_COORD, K_JOIN_GROUP, ERRS(E(COORDINATOR_LOAD_IN_PROGRESS), E(NOT_COORDINATOR)), 0);
    push(x, B_COORD, K_SYNC_GROUP, ERRS(E(COORDINATOR_LOAD_IN_PROGRESS)), 0);
}

static void request_errors_at(struct ctx *x, int k)
{
    if (k == 2) {
        push(x, B_IN, K_FETCH, ERRS(E(NOT_LEADER_FOR_PARTITION), E(REQUEST_TIMED_OUT),
                                    E(NOT_LEADER_FOR_PARTITION), E(_TRANSPORT)), 0);
        push(x, B_OUT, K_PRODUCE, ERRS(E(NOT_LEADER_FOR_PARTITION), E(REQUEST_TIMED_OUT),
                                       E(NOT_LEADER_FOR_PARTITION), E(REQUEST_TIMED_OUT)), 0);
        push(x, B_COORD, K_OFFSET_COMMIT, ERRS(E(NOT_COORDINATOR), E(COORDINATOR_LOAD_IN_PROGRESS),
                                               E(REQUEST_TIMED_OUT)), 0);
        push(x, B_COORD, K_HEARTBEAT, ERRS(E(NOT_COORDINATOR), E(COORDINATOR_LOAD_IN_PROGRESS)), 0);
    }
    if (k == 6) {
        /* A rebalance the coordinator asks for, and a rejoin that fails
         * before it succeeds: the partition stays with the daemon. */
        push(x, B_COORD, K_HEARTBEAT, ERRS(E(REBALANCE_IN_PROGRESS)), 0);
        push(x, B_COORD, K_JOIN_GROUP, ERRS(E(COORDINATOR_LOAD_IN_PROGRESS)), 0);
        push(x, B_OUT, K_PRODUCE, ERRS(E(_TRANSPORT), E(NOT_LEADER_FOR_PARTITION)), 0);
    }
}

static void storage_errors_at(struct ctx *x, int k)
{
    /* The broker's disk is full / replicas are missing for a few seconds:
     * every Produce is refused (slowly), then the broker recovers. */
    if (k == 2)
        push(x, B_OUT, K_PRODUCE, ERRS(E(KAFKA_STORAGE_ERROR), E(KAFKA_STORAGE_ERROR),
                                       E(KAFKA_STORAGE_ERROR), E(KAFKA_STORAGE_ERROR),
                                       E(KAFKA_STORAGE_ERROR), E(KAFKA_STORAGE_ERROR),
                                       E(NOT_ENOUGH_REPLICAS), E(NOT_ENOUGH_REPLICAS),
                                       E(NOT_ENOUGH_REPLICAS), E(NOT_ENOUGH_REPLICAS),
                                       E(NOT_ENOUGH_REPLICAS_AFTER_APPEND),
                                       E(NOT_ENOUGH_REPLICAS_AFTER_APPEND),
                                       E(NOT_ENOUGH_REPLICAS_AFTER_APPEND),
                                       E(NOT_ENOUGH_REPLICAS_AFTER_APPEND)), 250);
    if (k == 7)
        push(x, B_OUT, K_PRODUCE, ERRS(E(NOT_ENOUGH_REPLICAS_AFTER_APPEND), E(KAFKA_STORAGE_ERROR),
                                       E(NOT_ENOUGH_REPLICAS), E(KAFKA_STORAGE_ERROR),
                                       E(NOT_ENOUGH_REPLICAS_AFTER_APPEND),
                                       E(NOT_ENOUGH_REPLICAS)), 250);
}

static void timeouts_at(struct ctx *x, int k)
{
    /* Produce requests answered late, past the message timeout the
     * operator configured (kafka.producer.message.timeout.ms): librdkafka
     * fails the alerts with _MSG_TIMED_OUT and the daemon produces them
     * again (kafka_out.c), so the checkpoint waits and nothing is lost. */
    if (k == 2 || k == 7)
        push(x, B_OUT, K_PRODUCE, ERRS(E(REQUEST_TIMED_OUT), E(REQUEST_TIMED_OUT),
                                       E(NOT_ENOUGH_REPLICAS), E(KAFKA_STORAGE_ERROR)), 1500);
}

static void coordinator_move_at(struct ctx *x, int k)
{
    static const int to[NCHUNKS] = { [3] = 1, [6] = 2, [9] = 3 };
    if (to[k]) {
        note("chunk %d: group coordinator -> broker %d", k, to[k]);
        rd_kafka_mock_coordinator_set(x->mc, "group", x->group, to[k]);
    }
}

static void leader_moves_at(struct ctx *x, int k)
{
    static const int in[NCHUNKS][4] = { [3] = { 2, 3, 1, 2 }, [6] = { 3, 1, 2, 3 },
                                        [9] = { 1, 1, 1, 1 } };
    static const int out[NCHUNKS] = { [3] = 3, [6] = 1, [9] = 2 };
    if (!out[k])
        return;
    note("chunk %d: input leaders -> %d %d %d %d, alert leader -> %d", k, in[k][0], in[k][1],
         in[k][2], in[k][3], out[k]);
    for (int p = 0; p < x->c->partitions; p++)
        rd_kafka_mock_partition_set_leader(x->mc, IN_TOPIC, p, in[k][p]);
    rd_kafka_mock_partition_set_leader(x->mc, ALERT_TOPIC, 0, out[k]);
    rd_kafka_mock_partition_set_leader(x->mc, DLQ_TOPIC, 0, out[k]);
    if (k == 6)
        rd_kafka_mock_coordinator_set(x->mc, "group", x->group, 1);
}

static void down_for(struct ctx *x, int broker, int ms)
{
    note("broker %d down for %d ms", broker, ms);
    rd_kafka_mock_broker_set_down(x->mc, broker);
    double end = now_s() + ms / 1000.0;
    while (now_s() < end) {
        read_alerts(x, 100);   /* the reader's broker may be the one down: fine */
        check_alive(x);
    }
    rd_kafka_mock_broker_set_up(x->mc, broker);
}

static void broker_down_at(struct ctx *x, int k)
{
    /* Each broker in turn, while the daemon has work: the alert leader (its
     * producer queues, checkpoints wait), the coordinator (commits and
     * heartbeats fail), the input leader (fetches fail). */
    if (k == 3) {
        rd_kafka_mock_broker_set_down(x->mc, B_OUT);
        note("broker %d down while chunk 3 arrives", B_OUT);
    }
    if (k == 4) {
        sleep_ms(2000);
        rd_kafka_mock_broker_set_up(x->mc, B_OUT);
        note("broker %d up", B_OUT);
    }
    if (k == 6)
        down_for(x, B_COORD, 4000);
    if (k == 9) {
        sleep_ms(50);  /* the daemon is fetching chunk 8 */
        down_for(x, B_IN, 3000);
    }
}

/* Waits until the daemon has produced `n` alerts: it is mid-stream. */
static void wait_working(struct ctx *x, size_t n)
{
    double end = now_s() + 120;
    while (x->ngot < n) {
        if (now_s() > end)
            fail("only %zu alerts after 120 s, waiting for %zu", x->ngot, n);
        read_alerts(x, 100);
        check_alive(x);
    }
}

static void fenced_at(struct ctx *x, int k)
{
    /* The coordinator forgets the member: the assignment is lost (not
     * revoked), so the daemon cannot commit before letting go; it must not
     * count again what its window state already holds.  Injected once the
     * daemon is busy, so state and in-flight events exist. */
    if (k == 5) {
        wait_working(x, x->nwant / 6);
        push(x, B_COORD, K_HEARTBEAT, ERRS(E(UNKNOWN_MEMBER_ID)), 0);
    }
    if (k == 9) {
        wait_working(x, x->nwant / 3);
        push(x, B_COORD, K_HEARTBEAT, ERRS(E(ILLEGAL_GENERATION)), 0);
    }
}

static void start_daemon(struct ctx *x);
static int stop_daemon(struct ctx *x);
static void check_log(struct ctx *x);

/* The stopped daemon's log renamed to LOG.suffix (its name in `old`), so a
 * restart writes a fresh one. */
static void log_aside(struct ctx *x, const char *suffix, char *old, size_t oldlen)
{
    snprintf(old, oldlen, "%s.%s", x->log, suffix);
    if (rename(x->log, old) != 0)
        fail("rename %s: %s", x->log, strerror(errno));
}

static void fatal_at(struct ctx *x, int k)
{
    /* A fatal producer error while the daemon works: a Produce request at
     * the head of the line answered OUT_OF_ORDER_SEQUENCE_NUMBER, which the
     * idempotent producer cannot recover from.  The daemon must stop by
     * itself with status 3 and must not checkpoint on the way out (no
     * checkpoint after a fatal error; before issue 10's fix the revocation
     * run by closing the consumer did, on the freed checkpoint writer).
     * Injected when the daemon is idle between chunks, so the next Produce
     * is the head of the line; then a restart finishes the stream. */
    if (k == 4) {
        wait_working(x, x->nwant / 8);
        x->may_exit = true;
        x->exit_status = -1;
        push(x, B_OUT, K_PRODUCE, ERRS(E(OUT_OF_ORDER_SEQUENCE_NUMBER)), 0);
        note("chunk 4: the next Produce is answered OUT_OF_ORDER_SEQUENCE_NUMBER (fatal)");
    }
    if (k == 6) {
        double end = now_s() + 120;
        while (x->exit_status < 0) {
            if (now_s() > end)
                fail("the daemon did not stop within 120 s of a fatal producer error");
            read_alerts(x, 100);
            check_alive(x);
        }
        x->may_exit = false;
        if (x->exit_status != 3)
            fail("exit status %d after a fatal producer error, not 3", x->exit_status);
        check_log(x);
        char *text = slurp(x->log, NULL);
        const char *at = strstr(text, "stopping on a fatal error");
        if (!at)
            fail("the log does not say \"stopping on a fatal error\"");
        if (strstr(at, "rebalance: checkpointing before hand-over"))
            fail("a checkpoint was started after the fatal error");
        free(text);
        char old[600];
        log_aside(x, "fatal", old, sizeof old);
        note("stopped by itself, status 3, no checkpoint after the error (log: %s); restarted",
             old);
        start_daemon(x);
    }
}

static void joining_before(struct ctx *x)
{
    /* The daemon's first SyncGroup is answered 6 s late: from its JoinGroup
     * answer (the mock answers a new group's first join after about 3 s)
     * until then it is a cooperative-sticky member with a protocol and no
     * assignment, the window in which librdkafka 2.0.2 aborts in
     * rd_kafka_destroy() (rd_kafka_sticky_assignor_state_destroy). */
    push(x, B_COORD, K_SYNC_GROUP, ERRS(E(NO_ERROR)), 6000);
}

static void joining_at(struct ctx *x, int k)
{
    /* SIGTERM inside that window: exit 0 (the daemon waits for its first
     * assignment before it leaves the group), then a restart finishes the
     * stream. */
    if (k != 1)
        return;
    double end = now_s() + 30;
    for (;;) {
        char *text = slurp(x->log, NULL);
        bool running = strstr(text, "msg=\"running\"") != NULL;
        free(text);
        if (running)
            break;
        if (now_s() > end)
            fail("the daemon did not start within 30 s");
        check_alive(x);
        sleep_ms(20);
    }
    sleep_ms(5000);            /* JoinGroup answered, SyncGroup not yet */
    int rc = stop_daemon(x);
    if (rc != 0)
        fail("exit status %d on SIGTERM while joining, not 0", rc);
    check_log(x);
    char *text = slurp(x->log, NULL);
    bool waited = strstr(text, "closing while joining") != NULL;
    bool gave_up = strstr(text, "the first assignment did not come in time") != NULL;
    free(text);
    char old[600];
    log_aside(x, "joining", old, sizeof old);
    note("SIGTERM while joining: exit 0, %s (log: %s); restarted",
         gave_up  ? "the assignment did not come in time, left without closing"
         : waited ? "after waiting for the first assignment"
                  : "not in the window this time",
         old);
    if (!waited)
        dump_log(old, 20);
    start_daemon(x);
}

static const struct fcase CASES[] = {
    { "request-errors", 1,
      "retriable errors on Fetch, Produce, OffsetCommit, JoinGroup, SyncGroup, Heartbeat",
      request_errors_before, request_errors_at, NULL,
      { { B_IN, K_FETCH }, { B_OUT, K_PRODUCE }, { B_COORD, K_OFFSET_COMMIT },
        { B_COORD, K_HEARTBEAT }, { B_COORD, K_JOIN_GROUP }, { B_COORD, K_SYNC_GROUP } }, NULL },
    { "storage-errors", 1,
      "Produce answered with KAFKA_STORAGE_ERROR / NOT_ENOUGH_REPLICAS(_AFTER_APPEND) for seconds",
      NULL, storage_errors_at, NULL, { { B_OUT, K_PRODUCE } }, NULL },
    { "produce-timeouts", 1,
      "Produce answered after the message timeout: alerts fail and are produced again",
      NULL, timeouts_at, NULL, { { B_OUT, K_PRODUCE } },
      "kafka.producer.message.timeout.ms = 1000\n" },
    { "coordinator-move", 1, "the group coordinator moves to another broker three times",
      NULL, coordinator_move_at, NULL, { { 0, 0 } }, NULL },
    { "leader-moves", 4, "4 keyed partitions; input and alert partition leaders move, "
                          "and the coordinator once",
      NULL, leader_moves_at, NULL, { { 0, 0 } }, NULL },
    { "broker-down", 1, "the alert leader, the coordinator and the input leader down and up",
      NULL, broker_down_at, NULL, { { 0, 0 } },
      /* see socket.timeout.ms in setup_cluster(): the mock can strand a
       * connection across down/up, and the default 60 s request timeout
       * is how long the daemon would wait before using a new one */
      "kafka.consumer.socket.timeout.ms = 10000\nkafka.producer.socket.timeout.ms = 10000\n" },
    { "fenced", 1, "heartbeats answered UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION: assignment lost",
      NULL, fenced_at, NULL, { { B_COORD, K_HEARTBEAT } },
      /* the default interval: events done since the last checkpoint exist */
      "state.checkpoint_interval_ms = 5000\n" },
    { "sigterm-joining", 1, "SIGTERM between the JoinGroup answer and the first assignment: exit 0",
      joining_before, joining_at, NULL, { { B_COORD, K_SYNC_GROUP } }, NULL },
    { "fatal", 1, "a fatal producer error mid-stream: exit 3 without a checkpoint, then a restart",
      NULL, fatal_at, NULL, { { B_OUT, K_PRODUCE } },
      /* as in fenced: events done since the last checkpoint exist */
      "state.checkpoint_interval_ms = 5000\n" },
};

/* ---- the run ------------------------------------------------------------ */

static void prepare(struct ctx *x)
{
    char *argv[16];
    char path[700], rules[600];
    snprintf(x->tmp, sizeof x->tmp, "/tmp/fw-faults-%s-XXXXXX", x->c->name);
    if (!mkdtemp(x->tmp))
        fail("mkdtemp: %s", strerror(errno));
    snprintf(x->log, sizeof x->log, "%s/daemon.log", x->tmp);

    /* The rules: the shipped set plus F901/F902 (see the top comment). */
    snprintf(rules, sizeof rules, "%s/rules", x->tmp);
    snprintf(path, sizeof path, "%s/rules", ROOT);
    char out[600];
    snprintf(out, sizeof out, "%s/cp.out", x->tmp);
    run_ok((char *[]){ "/bin/cp", "-r", path, rules, NULL }, out);
    snprintf(path, sizeof path, "%s/faults.json", rules);
    write_file(path,
               "{\"rules\": [\n"
               " {\"id\": \"F901\", \"name\": \"every third call of a caller in 10 min\",\n"
               "  \"event\": \"call\", \"where\": [], \"suppress_s\": 0,\n"
               "  \"threshold\": {\"group_by\": \"caller\", \"window_s\": 600, \"count\": {\">=\": 3}}},\n"
               " {\"id\": \"F902\", \"name\": \"a payer's transfers over an hour\",\n"
               "  \"event\": \"transfer\", \"where\": [], \"suppress_s\": 0,\n"
               "  \"threshold\": {\"group_by\": \"payer_phone\", \"window_s\": 3600,\n"
               "                \"sum\": {\"field\": \"amount\", \">=\": 20000}}}\n"
               "]}\n");

    /* The events, and replay's alerts for them. */
    snprintf(x->events, sizeof x->events, "%s/events.jsonl", x->tmp);
    snprintf(path, sizeof path, "%s/rules", ROOT);
    int i = 0;
    argv[i++] = (char *)GEN;
    argv[i++] = "--events"; argv[i++] = "4000";
    argv[i++] = "--seed"; argv[i++] = "61";
    argv[i++] = "--subscribers"; argv[i++] = "1000";
    argv[i++] = "--fraud-rate"; argv[i++] = "5";
    argv[i++] = "--lists"; argv[i++] = path;
    argv[i++] = "-q"; argv[i++] = "-o"; argv[i++] = x->events;
    argv[i] = NULL;
    snprintf(out, sizeof out, "%s/gen.out", x->tmp);
    run_ok(argv, out);
    snprintf(out, sizeof out, "%s/replay.jsonl", x->tmp);
    run_ok((char *[]){ (char *)FW, "replay", "--rules", rules, "--threads", "2", x->events, NULL },
           out);

    char *text = slurp(out, NULL);
    struct alert *all = NULL;
    size_t nall = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        all = realloc(all, (nall + 1) * sizeof *all);
        if (!parse_alert(line, strlen(line), &all[nall]))
            fail("replay wrote something that is not an alert: %.100s", line);
        nall++;
    }
    free(text);
    x->nwant = distinct(x, all, nall, &x->want);
    free(all);
    if (x->nwant < 100)
        fail("only %zu alerts expected: the traffic does not exercise the rules", x->nwant);

    text = slurp(x->events, NULL);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        x->lines = realloc(x->lines, (x->nlines + 1) * sizeof *x->lines);
        x->lines[x->nlines++] = line;   /* into `text`, kept for the run */
    }

    snprintf(x->conf, sizeof x->conf, "%s/fraudwatch.conf", x->tmp);
    char conf[4096];
    snprintf(conf, sizeof conf,
             "# written by test_faults.c (case %s)\n"
             "kafka.bootstrap.servers = %s\n"
             "input.topics = " IN_TOPIC "\n"
             "kafka.group.id = %s\n"
             "output.topic = " ALERT_TOPIC "\n"
             "deadletter.topic = " DLQ_TOPIC "\n"
             "engine.threads = 2\n"
             "rules.source = dir:%s\n"
             "state.dir = %s/state\n"
             "state.checkpoint_interval_ms = 200\n"
             "metrics.listen = off\n"
             "log.level = info\n"
             "shutdown.timeout_s = 30\n"
             "instance.id = fw-faults-%s\n"
             "kafka.consumer.heartbeat.interval.ms = 500\n"
             "kafka.consumer.session.timeout.ms = 10000\n"
             "%s",
             x->c->name, x->boot, x->group, rules, x->tmp, x->c->name,
             x->c->conf ? x->c->conf : "");
    write_file(x->conf, conf);
}

static void start_daemon(struct ctx *x)
{
    x->daemon = spawn((char *[]){ (char *)FW, "run", "-c", x->conf, NULL }, x->log, x->log);
}

static int stop_daemon(struct ctx *x)
{
    kill(x->daemon, SIGTERM);
    double end = now_s() + 90;
    int st;
    for (;;) {
        pid_t r = waitpid(x->daemon, &st, WNOHANG);
        if (r == x->daemon)
            break;
        if (now_s() > end)
            fail("the daemon did not exit within 90 s of SIGTERM");
        read_alerts(x, 100);
    }
    x->daemon = 0;
    if (!WIFEXITED(st))
        fail("the daemon died of signal %d on SIGTERM", WTERMSIG(st));
    return WEXITSTATUS(st);
}

static void wait_for_alerts(struct ctx *x, double seconds)
{
    double end = now_s() + seconds;
    size_t miss;
    while ((miss = missing(x)) > 0) {
        if (now_s() > end)
            fail("%zu of %zu alerts still missing after %.0f s", miss, x->nwant, seconds);
        read_alerts(x, 500);
        check_alive(x);
    }
}

static void wait_drained(struct ctx *x, double seconds)
{
    double end = now_s() + seconds;
    for (int i = 0; i < 8 && x->c->drain[i][0]; i++) {
        int b = x->c->drain[i][0], api = x->c->drain[i][1];
        size_t n;
        while ((n = stack_cnt(x, b, api)) > 0) {
            if (now_s() > end)
                fail("%zu injected errors (broker %d, ApiKey %d) never reached the daemon", n, b,
                     api);
            read_alerts(x, 200);
            check_alive(x);
        }
    }
}

/* The group's committed offsets: the final checkpoint committed the end of
 * every partition (all events processed). */
static void check_committed(struct ctx *x)
{
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", x->boot, e, sizeof e) ||
        rd_kafka_conf_set(c, "group.id", x->group, e, sizeof e) ||
        rd_kafka_conf_set(c, "enable.auto.commit", "false", e, sizeof e) ||
        rd_kafka_conf_set(c, "log_level", "2", e, sizeof e))
        fail("conf: %s", e);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    if (!rk)
        fail("consumer: %s", e);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(x->c->partitions);
    for (int p = 0; p < x->c->partitions; p++)
        rd_kafka_topic_partition_list_add(l, IN_TOPIC, p);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, l, 30000);
    if (err)
        fail("reading the committed offsets: %s", rd_kafka_err2str(err));
    for (int p = 0; p < x->c->partitions; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, IN_TOPIC, p, &lo, &hi, 30000))
            fail("watermarks of partition %d", p);
        if (l->elems[p].offset != hi)
            fail("partition %d: committed offset %lld, end of the partition %lld", p,
                 (long long)l->elems[p].offset, (long long)hi);
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

static void drain_reader(struct ctx *x)
{
    int64_t lo, hi;
    if (rd_kafka_query_watermark_offsets(x->reader, ALERT_TOPIC, 0, &lo, &hi, 30000))
        fail("watermarks of the alert topic");
    double end = now_s() + 60;
    while (x->read_next < hi) {
        if (now_s() > end)
            fail("read alerts up to offset %lld of %lld", (long long)x->read_next,
                 (long long)hi);
        read_alerts(x, 200);
    }
}

static void check_log(struct ctx *x)
{
    char *text = slurp(x->log, NULL);
    /* Sanitizer reports only: librdkafka logs a refused connection at
     * error level, which is what a broker that is down looks like. */
    const char *bad[] = { "Sanitizer", "runtime error:" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *at = strstr(text, bad[i]);
        if (at) {
            const char *bol = at;
            while (bol > text && bol[-1] != '\n')
                bol--;
            fail("the daemon's log has \"%s\": %.300s", bad[i], bol);
        }
    }
    free(text);
}

static int run_case(const struct fcase *c)
{
    struct ctx x = { .c = c };
    g_ctx = &x;
    double t0 = now_s();
    printf("case %s: %s\n", c->name, c->doc);
    snprintf(x.group, sizeof x.group, "fw-faults-%s", c->name);
    setup_cluster(&x);
    prepare(&x);
    note("%zu events, %zu distinct alerts expected, mock cluster %s", x.nlines, x.nwant, x.boot);

    if (c->before)
        c->before(&x);
    start_daemon(&x);
    size_t per = (x.nlines + NCHUNKS - 1) / NCHUNKS;
    for (int k = 0; k < NCHUNKS; k++) {
        if (c->at_chunk)
            c->at_chunk(&x, k);
        size_t from = (size_t)k * per, to = from + per < x.nlines ? from + per : x.nlines;
        produce_chunk(&x, from, to);
        read_alerts(&x, 300);
        check_alive(&x);
    }
    if (c->after)
        c->after(&x);
    wait_for_alerts(&x, 180);
    wait_drained(&x, 120);
    int rc = stop_daemon(&x);
    if (rc != 0)
        fail("exit status %d on SIGTERM, not 0", rc);
    drain_reader(&x);

    struct alert *g;
    size_t ng = distinct(&x, x.got, x.ngot, &g);
    size_t extra = 0;
    for (size_t i = 0; i < ng; i++)
        if (!bsearch(&g[i], x.want, x.nwant, sizeof *g, cmp_alert)) {
            if (extra < 5)
                note("not in replay: %s %s", g[i].rule, g[i].id);
            extra++;
        }
    if (extra)
        fail("%zu alerts that an uninterrupted run does not produce", extra);
    if (missing(&x))
        fail("%zu alerts lost", missing(&x));
    check_committed(&x);
    check_log(&x);
    size_t copies = 0;
    for (size_t i = 0; i < x.ngot; i++)
        copies += compared(&x, x.got[i].rule);
    note("%zu alerts as replay, %zu messages (%zu copies), exit 0, %.1f s", x.nwant, x.ngot,
         copies - ng, now_s() - t0);
    free(g);

    rd_kafka_consumer_close(x.reader);
    rd_kafka_destroy(x.reader);
    rd_kafka_destroy(x.prod);
    rd_kafka_mock_cluster_destroy(x.mc);
    rd_kafka_destroy(x.mrk);
    free(x.want);
    free(x.got);
    if (x.nlines)
        free(x.lines[0]);
    free(x.lines);
    if (getenv("FW_FAULTS_KEEP")) {
        note("files kept in %s (FW_FAULTS_KEEP)", x.tmp);
    } else {
        char *rm[] = { "/bin/rm", "-rf", x.tmp, NULL };
        pid_t pid = fork();
        if (pid == 0) {
            execv(rm[0], rm);
            _exit(127);
        }
        waitpid(pid, NULL, 0);
    }
    printf("ok   %s\n", c->name);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: test_faults FRAUDWATCH GEN SOURCE_ROOT CASE\ncases:");
        for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
            fprintf(stderr, " %s", CASES[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    FW = argv[1];
    GEN = argv[2];
    ROOT = argv[3];
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        if (strcmp(CASES[i].name, argv[4]) == 0)
            return run_case(&CASES[i]);
    fprintf(stderr, "test_faults: no case %s\n", argv[4]);
    return 2;
}
