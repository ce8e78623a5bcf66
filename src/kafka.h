/* kafka.h — the daemon's two Kafka ends (internal).
 *
 *   kafka_in.c   consumer: group membership, cooperative rebalances, the
 *                positions the daemon has processed, offset commits;
 *   kafka_out.c  producer: alerts and dead letters, delivery reports,
 *                re-sending what failed (nothing is ever dropped).
 *
 * Both are driven from the daemon's main thread only. */
#ifndef FRAUDWATCH_KAFKA_H
#define FRAUDWATCH_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "fetch_wake.h"
#include "fraudwatch/config.h"
#include "fraudwatch/driver.h"
#include "fraudwatch/metrics.h"

/* ---- shared (kafka_common.c) ---- */
/* librdkafka's log lines into ours, at the matching level. */
void fw_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
/* rd_kafka_conf_set() with an error naming the client, key and value. */
int fw_kafka_set(rd_kafka_conf_t *c, const char *client, const char *key,
                 const char *value, char *err, size_t errlen);

/* librdkafka 2.0.2 aborts in rd_kafka_destroy() (an assertion in
 * rd_kafka_sticky_assignor_state_destroy; fixed in librdkafka 2.3.0) when a
 * cooperative-sticky group member is destroyed after its JoinGroup was
 * answered and before its first assignment arrived: the assignor's state
 * is still NULL.  Every group consumer of the daemon is cooperative-sticky
 * and can be stopped while joining (a SIGTERM, a daemon leaving while
 * another joins).  `assigned_once` is what the consumer's rebalance
 * callback sets on its first assignment (an empty one included).
 *
 * True while destroying `rk` would abort. */
bool fw_kafka_joining(rd_kafka_t *rk, const bool *assigned_once);
/* Serves `rk` (from the thread that polls it, which must be the caller)
 * until its first assignment has come, or until a second before until_ms;
 * the messages polled meanwhile are dropped unprocessed (whoever reads the
 * partition next reads them again).  `client` names it in the log.  True
 * when `rk` may be closed and destroyed; false when it must be left alone
 * (the process is about to exit; the group drops the member after its
 * session timeout, and it held no partition). */
bool fw_kafka_await_first_assignment(rd_kafka_t *rk, const bool *assigned_once,
                                     int64_t until_ms, const char *client);

/* Commits held while the group rebalances.
 *
 * librdkafka 2.0.2 takes an OffsetCommit answered ILLEGAL_GENERATION for a
 * lost assignment: it revokes every partition of the member as lost and
 * joins again (librdkafka #4059, fixed in 2.10).  A commit sent while the
 * member's own JoinGroup waits at the coordinator gets that answer: the
 * broker handles one request of a connection at a time, so the commit
 * waits behind the JoinGroup and is checked against the generation the
 * join has just made.  Under the cooperative protocol a revocation is
 * followed by an assignment from the same round ("assign after revoke",
 * delivered even when empty), then a JoinGroup for a second round that
 * waits for the other members (up to their heartbeat interval), then that
 * round's assignment.  Committing in that wait made a daemon joining the
 * group take every partition from the others (scale-out units stopped
 * without a checkpoint and restored again from older ones).
 *
 * So every group consumer of the daemon holds its commits from a
 * revocation it handled until the assignment of the round that follows,
 * and commits what it held then.  Commits inside the revocation callback
 * itself go out before any JoinGroup and are safe.  The hold ends anyway
 * after FW_REJOIN_HOLD_MAX_MS (a revocation that starts no second round,
 * such as a poll interval exceeded, would otherwise hold commits until the
 * next rebalance).  Set from the rebalance callbacks; read from any
 * thread. */
#define FW_REJOIN_HOLD_MAX_MS 15000
enum { FW_REJOIN_STEADY, FW_REJOIN_AFTER_REVOKE, FW_REJOIN_NEXT_ROUND };
typedef struct {
    _Atomic int state;           /* FW_REJOIN_STEADY; awaiting the assignment
                                    after the revocation; awaiting the next
                                    round's assignment */
    _Atomic long long since_ms;  /* fw_mono_ms() of the last change */
} fw_rejoin_guard;
/* From the revocation callback, before it returns. */
void fw_rejoin_revoked(fw_rejoin_guard *g, rd_kafka_t *rk, bool lost);
/* From the assignment callback. */
void fw_rejoin_assigned(fw_rejoin_guard *g);
/* True while a commit must wait. */
bool fw_rejoin_holding(fw_rejoin_guard *g);

/* What librdkafka does with a rebalance when no callback is set, for a
 * callback that only needs to see it: assign or revoke `parts`,
 * incrementally under the cooperative protocol, whole under the eager one. */
void fw_kafka_rebalance_apply(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts);

/* Wakes a consumer's fetchers once its queue, after being full, has drained
 * to half (librdkafka 2.0.2 would look again only up to a second later;
 * fetch_wake.c decides when).  Driven by the thread that polls. */
typedef struct {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;   /* the consumer queue, for its length */
    fw_fetch_wake when;
    fw_counter *wakeups;       /* may be NULL */
} fw_kafka_waker;
/* Before rd_kafka_new(): the queue's caps as `c` will apply them. */
int fw_kafka_waker_caps(fw_kafka_waker *w, rd_kafka_conf_t *c, const char *client,
                        char *err, size_t errlen);
/* After rd_kafka_poll_set_consumer(). */
void fw_kafka_waker_start(fw_kafka_waker *w, rd_kafka_t *rk, fw_counter *wakeups);
/* Before the consumer is closed (drops the queue reference). */
void fw_kafka_waker_stop(fw_kafka_waker *w);
/* Reads the queue's length and wakes the fetchers when it is time: true
 * when it did (counted in `wakeups`). */
bool fw_kafka_waker_look(fw_kafka_waker *w);
/* A message of `len` payload bytes was taken from the consumer queue:
 * true when that woke the fetchers. */
static inline bool fw_kafka_waker_taken(fw_kafka_waker *w, size_t len)
{
    return w->queue && fw_fetch_wake_taken(&w->when, len) && fw_kafka_waker_look(w);
}

/* ---- producer ---- */
typedef struct fw_out fw_out;

fw_out *fw_out_new(const fw_settings *s, fw_metrics *m, char *err, size_t errlen);
void fw_out_free(fw_out *o);
/* An alert: key = subject.  src_ts_ms is the input message's timestamp, for
 * the event-to-alert latency histogram (0: unknown).  shadow: to
 * output.shadow_topic instead of output.topic (not a live warning). */
/* The same, with the alert's origin: with output.latency_stamps on, its
 * stamps go in fw.t.* headers. */
void fw_out_alert_from(fw_out *o, const char *json, size_t len, const char *key,
                       size_t klen, int64_t src_ts_ms, bool shadow, const fw_origin *from);
void fw_out_alert(fw_out *o, const char *json, size_t len, const char *key,
                  size_t klen, int64_t src_ts_ms, bool shadow);
/* A dead letter: the original payload (NULL for one too large to keep),
 * with the reason and the source position in headers. */
void fw_out_dead_letter(fw_out *o, const char *payload, size_t len,
                        const char *key, size_t klen, const char *reason,
                        const char *topic, int32_t partition, int64_t offset);
/* Serves delivery reports. */
void fw_out_poll(fw_out *o, int timeout_ms);
/* Waits until every message produced so far is delivered (failed ones are
 * re-sent).  0, or -1 if `stop` became true or the producer failed fatally. */
int fw_out_drain(fw_out *o, volatile sig_atomic_t *stop, int timeout_ms);
/* A mark between what was produced before this call and what comes after;
 * fw_out_acked(mark) becomes true once everything produced before it has
 * been delivered (re-sent failures included).  Marks are cheap and need no
 * release; with very many taken during an outage, a mark may also wait for
 * messages produced just after it (never fewer than it should). */
uint64_t fw_out_mark(fw_out *o);
bool fw_out_acked(fw_out *o, uint64_t mark);
/* Non-NULL after a fatal producer error (the daemon must exit). */
const char *fw_out_fatal(fw_out *o);
uint64_t fw_out_pending(fw_out *o);
/* The producer as the driver's sink (self: an fw_out). */
extern const fw_sink_ops fw_out_sink;

/* ---- consumer ---- */
typedef struct fw_in fw_in;

/* Called inside a rebalance, before partitions are taken away, so that the
 * daemon can finish and checkpoint what it holds (skipped when the
 * assignment was lost: nothing can be committed then). */
typedef void (*fw_in_revoke_fn)(void *ctx);

/* `stop` (may be NULL): once it is set, a commit waiting without a deadline
 * (the loop's) gives up waiting and counts as failed. */
fw_in *fw_in_new(const fw_settings *s, fw_metrics *m, fw_in_revoke_fn revoke,
                 void *ctx, volatile sig_atomic_t *stop, char *err, size_t errlen);
/* Leaves the group (after the final checkpoint) and frees the consumer,
 * waiting for the group coordinator until `until_ms` (fw_mono_ms()).  The
 * revocation this runs calls the revoke callback but retries no commit.
 * 0; or -1 if the consumer had not closed by then (`err` says so): nothing
 * is freed then, because destroying the handle would wait for the same
 * coordinator, and the caller should end the process.  NULL: 0. */
int fw_in_close(fw_in *in, int64_t until_ms, char *err, size_t errlen);

/* Where to start a partition the first time it is assigned (from a
 * checkpoint); otherwise the group's committed offset is used. */
void fw_in_start_at(fw_in *in, const char *topic, int32_t partition,
                    int64_t offset);

/* The next message, or NULL (errors are logged and counted here).  *src
 * receives the partition's index for fw_in_done() and friends. */
rd_kafka_message_t *fw_in_poll(fw_in *in, int timeout_ms, uint32_t *src);
/* Every effect of the message at `offset` of partition `src` is produced. */
void fw_in_done(fw_in *in, uint32_t src, int64_t offset);
const char *fw_in_topic(const fw_in *in, uint32_t src);
int32_t fw_in_partition(const fw_in *in, uint32_t src);

/* Positions of the assigned partitions that have progressed (next offset to
 * read), for a checkpoint; the caller destroys the list. */
rd_kafka_topic_partition_list_t *fw_in_positions(fw_in *in);
/* Commits positions, for the partitions still assigned (one lost since the
 * positions were taken is skipped), and waits for the answer until
 * `until_ms` (fw_mono_ms()), or with until_ms < 0 until it comes or the
 * stop flag is set.  0; or -1 (logged, `err` says why if not NULL): the
 * partitions are then retried about every second from fw_in_poll(). */
int fw_in_commit(fw_in *in, rd_kafka_topic_partition_list_t *pos, int64_t until_ms,
                 char *err, size_t errlen);
/* Retries now the commits that failed (as fw_in_commit); 0 if none is
 * pending. */
int fw_in_commit_pending(fw_in *in, int64_t until_ms, char *err, size_t errlen);
/* Refreshes the per-partition lag gauges (cheap: cached watermarks). */
void fw_in_update_lag(fw_in *in);
const char *fw_in_fatal(fw_in *in);
/* The consumer as the driver's source (self: an fw_in): messages, their
 * positions, and the positions part of checkpoints (the group, then each
 * partition's next offset). */
extern const fw_source_ops fw_in_source;

#endif
