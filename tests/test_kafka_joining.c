/* test_kafka_joining.c — the guard every group consumer of the daemon takes
 * before it is closed (src/kafka_common.c, fw_kafka_await_first_assignment),
 * against librdkafka's mock cluster, whose coordinator can be made to answer
 * the first SyncGroup late: a cooperative-sticky member with its JoinGroup
 * answered and no assignment yet, on demand.
 *
 *  - the window is real: destroying such a member aborts (librdkafka 2.0.2,
 *    rd_kafka_sticky_assignor_state_destroy), in a child process;
 *  - the guard closes it: it waits for the first assignment, after which
 *    close and destroy are clean;
 *  - an empty first assignment (a second member of a one-partition group)
 *    counts: the rebalance callback is called with it (the mock's group
 *    rebalances only once the first member's heartbeat learns of the new
 *    one, hence the short session and heartbeat);
 *    (the first member polled on a thread of its own meanwhile, as a live
 *    member is; on a loaded machine the mock may still hand the partition
 *    over, and that set-up alone is tried again);
 *  - when the assignment does not come before the deadline the guard gives
 *    up a second before it, and says so;
 *  - a rebalance callback after the close, when librdkafka no longer knows
 *    the protocol (NULL), is applied without a crash.
 * Each case runs in a child of its own (the abort, and a handle the guard
 * says to leave alone, end a process). */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fraudwatch/clock.h"
#include "kafka.h"

#define K_SYNC_GROUP 14   /* the SyncGroup API key (no public name in 2.0.2) */
#define TOPIC "joining"
#define GROUP "fw-joining"

static void die(const char *why)
{
    fprintf(stderr, "%s\n", why);
    _exit(2);
}

struct member {
    rd_kafka_t *rk;
    bool assigned_once;
    int assigns;          /* ASSIGN callbacks */
    int last_cnt;         /* partitions in the last one */
};

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct member *m = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        m->assigned_once = true;
        m->assigns++;
        m->last_cnt = parts->cnt;
    }
    fw_kafka_rebalance_apply(rk, err, parts);
}

/* The mock cluster of this child (each case runs in one of its own). */
static rd_kafka_t *owner;
static rd_kafka_mock_cluster_t *mc;
static const char *boot;

static void cluster_up(void)
{
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "2", e, sizeof e);
    owner = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e);
    if (!owner)
        die(e);
    mc = rd_kafka_mock_cluster_new(owner, 1);
    if (!mc)
        die("rd_kafka_mock_cluster_new failed");
    if (rd_kafka_mock_topic_create(mc, TOPIC, 1, 1))
        die("rd_kafka_mock_topic_create failed");
    rd_kafka_mock_coordinator_set(mc, "group", GROUP, 1);
    boot = rd_kafka_mock_cluster_bootstraps(mc);
}

static void cluster_free(void)
{
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(owner);
}

/* The coordinator answers the next SyncGroup `ms` late. */
static void sync_late(int ms)
{
    if (rd_kafka_mock_broker_push_request_error_rtts(mc, 1, K_SYNC_GROUP, 1,
                                                     RD_KAFKA_RESP_ERR_NO_ERROR, ms))
        die("push_request_error_rtts(SyncGroup) failed");
}

static void member_new(struct member *m)
{
    char e[512];
    memset(m, 0, sizeof *m);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", boot, e, sizeof e) ||
        rd_kafka_conf_set(c, "group.id", GROUP, e, sizeof e) ||
        rd_kafka_conf_set(c, "partition.assignment.strategy", "cooperative-sticky", e,
                          sizeof e) ||
        rd_kafka_conf_set(c, "enable.auto.commit", "false", e, sizeof e) ||
        rd_kafka_conf_set(c, "session.timeout.ms", "6000", e, sizeof e) ||
        rd_kafka_conf_set(c, "heartbeat.interval.ms", "500", e, sizeof e) ||
        rd_kafka_conf_set(c, "log_level", "2", e, sizeof e))
        die(e);
    rd_kafka_conf_set_opaque(c, m);
    rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
    m->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e);
    if (!m->rk)
        die(e);
    rd_kafka_poll_set_consumer(m->rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, TOPIC, RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(m->rk, t))
        die("subscribe failed");
    rd_kafka_topic_partition_list_destroy(t);
}

/* A new member whose first SyncGroup is answered `sync_ms` late, polled
 * until it is in the window (JoinGroup answered, no assignment). */
static void join_late(struct member *m, int sync_ms)
{
    sync_late(sync_ms);
    member_new(m);
    int64_t end = fw_mono_ms() + 40000;
    while (!fw_kafka_joining(m->rk, &m->assigned_once)) {
        if (m->assigned_once)
            die("assigned before the window was seen: the SyncGroup was not delayed");
        if (fw_mono_ms() > end)
            die("no JoinGroup answer within 40 s");
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(m->rk, 20);
        if (msg)
            rd_kafka_message_destroy(msg);
    }
}

/* Polls a member until its first assignment (20 s at most). */
static void await_assigned(struct member *m)
{
    int64_t end = fw_mono_ms() + 20000;
    while (!m->assigned_once) {
        if (fw_mono_ms() > end)
            die("a member saw no assignment within 20 s");
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(m->rk, 20);
        if (msg)
            rd_kafka_message_destroy(msg);
    }
}

/* Leaves the group and frees the member. */
static void member_close(struct member *m)
{
    rd_kafka_consumer_close(m->rk);
    rd_kafka_destroy(m->rk);
}

/* ---- the cases, each the body of a child -------------------------------- */

/* Destroyed in the window: librdkafka aborts (the child dies of SIGABRT). */
static int case_window_aborts(void)
{
    cluster_up();
    struct member m;
    join_late(&m, 6000);
    member_close(&m);
    cluster_free();
    return 0;   /* not reached with librdkafka < 2.3.0 */
}

/* The guard waits for the assignment; then close and destroy are clean. */
static int case_guard_waits(void)
{
    cluster_up();
    struct member m;
    join_late(&m, 3000);
    if (!fw_kafka_await_first_assignment(m.rk, &m.assigned_once, fw_mono_ms() + 20000, "test"))
        die("the guard gave up although the assignment was 3 s away");
    if (!m.assigned_once || m.assigns != 1 || m.last_cnt != 1)
        die("the guard returned without the one-partition assignment");
    if (fw_kafka_joining(m.rk, &m.assigned_once))
        die("still joining after the assignment");
    member_close(&m);
    cluster_free();
    return 0;
}

/* The first member, polled on a thread of its own while the second joins,
 * as a live member of the group is (its rebalance callbacks served). */
struct poller {
    struct member *m;
    atomic_bool stop;
};

static void *poll_member(void *arg)
{
    struct poller *p = arg;
    while (!atomic_load(&p->stop)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(p->m->rk, 20);
        if (msg)
            rd_kafka_message_destroy(msg);
    }
    return NULL;
}

/* One try: 0 when the second member's first assignment was empty, 1 when
 * the mock gave it the partition instead (a rebalance that went on
 * without the first member, which happens on a loaded machine). */
static int empty_assignment_once(void)
{
    cluster_up();
    struct member a, b;
    member_new(&a);
    await_assigned(&a);
    struct poller pa = { .m = &a };
    atomic_init(&pa.stop, false);
    pthread_t th;
    if (pthread_create(&th, NULL, poll_member, &pa) != 0)
        die("pthread_create failed");
    join_late(&b, 3000);
    if (!fw_kafka_await_first_assignment(b.rk, &b.assigned_once, fw_mono_ms() + 40000, "b"))
        die("the guard gave up waiting for the second member's assignment");
    atomic_store(&pa.stop, true);
    pthread_join(th, NULL);
    int took = b.last_cnt != 0;
    member_close(&b);
    member_close(&a);
    cluster_free();
    return took;
}

/* A second member of a one-partition group gets an empty first
 * assignment: the rebalance callback is called with it, so the guard
 * ends there too.  The guard's part is checked in every try; only the
 * mock's choice of member is tried again, three times at most. */
static int case_empty_assignment(void)
{
    for (int i = 0; i < 3; i++) {
        if (empty_assignment_once() == 0)
            return 0;
        fprintf(stderr, "the mock gave the second member the partition; trying again\n");
    }
    die("the second member took the partition in three rebalances of three");
    return 2;
}

/* After its close, a member's group is gone: librdkafka answers NULL for
 * the rebalance protocol, and a rebalance callback that still comes (one
 * did, inside rd_kafka_consumer_close, on a loaded machine) must not take
 * that for a string. */
static int case_apply_after_close(void)
{
    cluster_up();
    struct member m;
    member_new(&m);
    await_assigned(&m);
    rd_kafka_consumer_close(m.rk);
    if (rd_kafka_rebalance_protocol(m.rk) != NULL)
        die("the protocol is still known after the close: this case tests nothing");
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, TOPIC, 0);
    fw_kafka_rebalance_apply(m.rk, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, parts);
    fw_kafka_rebalance_apply(m.rk, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(m.rk);
    cluster_free();
    return 0;
}

/* The assignment comes after the deadline: the guard gives up a second
 * before it and says the handle must be left alone. */
static int case_guard_gives_up(void)
{
    cluster_up();
    struct member m;
    join_late(&m, 8000);
    int64_t t0 = fw_mono_ms();
    if (fw_kafka_await_first_assignment(m.rk, &m.assigned_once, t0 + 3000, "test"))
        die("the guard said close although no assignment came");
    int64_t took = fw_mono_ms() - t0;
    if (took < 1900 || took > 6000) {
        fprintf(stderr, "the guard gave up after %lld ms, not about 2000\n", (long long)took);
        _exit(2);
    }
    if (!fw_kafka_joining(m.rk, &m.assigned_once))
        die("not in the window any more, yet the guard gave up");
    _exit(0);   /* the handle left alone, as the daemon leaves it */
}

/* librdkafka 2.3.0 fixed the abort: from there on, the window is harmless. */
#define ABORTS_IN_WINDOW (rd_kafka_version() < 0x02030000 ? SIGABRT : 0)

static const struct {
    const char *name;
    int (*run)(void);
    int want_signal;   /* 0: exit status 0; -1: ABORTS_IN_WINDOW */
} CASES[] = {
    { "window_aborts", case_window_aborts, -1 },
    { "guard_waits", case_guard_waits, 0 },
    { "empty_assignment", case_empty_assignment, 0 },
    { "guard_gives_up", case_guard_gives_up, 0 },
    { "apply_after_close", case_apply_after_close, 0 },
};

int main(void)
{
    int failed = 0, passed = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        int want = CASES[i].want_signal < 0 ? ABORTS_IN_WINDOW : CASES[i].want_signal;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            /* the abort case's core dump and ASan's report on it: not wanted */
            if (want) {
                struct rlimit none = { 0, 0 };
                setrlimit(RLIMIT_CORE, &none);
                if (!freopen("/dev/null", "w", stderr))
                    _exit(2);
            }
            _exit(CASES[i].run());
        }
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        bool ok = want ? WIFSIGNALED(st) && WTERMSIG(st) == want
                                       : WIFEXITED(st) && WEXITSTATUS(st) == 0;
        char how[64];
        if (WIFSIGNALED(st))
            snprintf(how, sizeof how, "signal %d", WTERMSIG(st));
        else
            snprintf(how, sizeof how, "exit %d", WEXITSTATUS(st));
        printf("%s %s (%s)\n", ok ? "ok  " : "FAIL", CASES[i].name, how);
        ok ? passed++ : failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
