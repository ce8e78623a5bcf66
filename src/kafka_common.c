/* kafka_common.c — what the consumers and the producers share: librdkafka's
 * log routed into ours, configuration with errors that name the key, the
 * group consumers' guard against librdkafka's abort while joining, their
 * commit hold while the group rebalances, and the consumers' fetch
 * wake-up. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/clock.h"
#include "fraudwatch/log.h"
#include "fraudwatch/secret.h"
#include "kafka.h"

void fw_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* syslog levels: 0..3 error, 4 warning, 5..6 notice/info, 7 debug */
    fw_log(level <= 3 ? FW_LOG_ERROR : level <= 4 ? FW_LOG_WARN
                                     : level <= 6 ? FW_LOG_INFO : FW_LOG_DEBUG,
           "librdkafka", buf, "facility=%s", fac);
}

int fw_kafka_set(rd_kafka_conf_t *c, const char *client, const char *key,
                 const char *value, char *err, size_t errlen)
{
    char e[512];
    if (rd_kafka_conf_set(c, key, value, e, sizeof e) != RD_KAFKA_CONF_OK) {
        /* A secret's value never goes into a message (nor, since it may
         * quote it, librdkafka's own error text). */
        if (fw_secret_name(key))
            snprintf(err, errlen, "%s setting %s: refused (the value is a secret and is "
                                  "not shown)", client, key);
        else
            snprintf(err, errlen, "%s setting %s=%s: %s", client, key, value, e);
        return -1;
    }
    return 0;
}

bool fw_kafka_joining(rd_kafka_t *rk, const bool *assigned_once)
{
    if (*assigned_once)
        return false;
    /* The protocol is known once the JoinGroup answer has set the
     * assignor; before that there is nothing to trip over. */
    const char *proto = rd_kafka_rebalance_protocol(rk);
    return proto && strcmp(proto, "COOPERATIVE") == 0;
}

void fw_kafka_rebalance_apply(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts)
{
    /* NULL: the group handle has terminated (a close under way, its queue
     * of group operations shut): nothing can be assigned or revoked any
     * more, and librdkafka would refuse any call. */
    const char *proto = rd_kafka_rebalance_protocol(rk);
    if (!proto)
        return;
    bool coop = strcmp(proto, "COOPERATIVE") == 0;
    bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    if (coop)
        rd_kafka_error_destroy(assign ? rd_kafka_incremental_assign(rk, parts)
                                      : rd_kafka_incremental_unassign(rk, parts));
    else
        rd_kafka_assign(rk, assign ? parts : NULL);
}

void fw_rejoin_revoked(fw_rejoin_guard *g, rd_kafka_t *rk, bool lost)
{
    /* Cooperative and not lost: the assignment of the same round comes
     * first, then the JoinGroup of the next; otherwise the next assignment
     * ends the round (kafka.h). */
    const char *proto = rd_kafka_rebalance_protocol(rk);
    bool coop = proto && strcmp(proto, "COOPERATIVE") == 0;
    atomic_store(&g->state, coop && !lost ? FW_REJOIN_AFTER_REVOKE : FW_REJOIN_NEXT_ROUND);
    atomic_store(&g->since_ms, fw_mono_ms());
}

void fw_rejoin_assigned(fw_rejoin_guard *g)
{
    int st = atomic_load(&g->state);
    atomic_store(&g->state, st == FW_REJOIN_AFTER_REVOKE ? FW_REJOIN_NEXT_ROUND : FW_REJOIN_STEADY);
    atomic_store(&g->since_ms, fw_mono_ms());
}

bool fw_rejoin_holding(fw_rejoin_guard *g)
{
    if (atomic_load(&g->state) == FW_REJOIN_STEADY)
        return false;
    if (fw_mono_ms() - atomic_load(&g->since_ms) < FW_REJOIN_HOLD_MAX_MS)
        return true;
    atomic_store(&g->state, FW_REJOIN_STEADY);
    return false;
}

bool fw_kafka_await_first_assignment(rd_kafka_t *rk, const bool *assigned_once,
                                     int64_t until_ms, const char *client)
{
    if (!fw_kafka_joining(rk, assigned_once))
        return true;
    fw_log(FW_LOG_INFO, "kafka", "closing while joining: waiting for the first "
                                 "assignment before leaving the group", "client=\"%s\"", client);
    int64_t wait_until = until_ms - 1000;
    /* The rebalance callback runs inside rd_kafka_consumer_poll(), on this
     * thread: the flag is read again after each call. */
    while (!*assigned_once && fw_mono_ms() < wait_until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
    if (*assigned_once)
        return true;
    fw_log(FW_LOG_WARN, "kafka", "closing while joining: the first assignment did not come "
                                 "in time; leaving the consumer as it is (the group drops "
                                 "this member after its session timeout)",
           "client=\"%s\"", client);
    return false;
}

int fw_kafka_waker_caps(fw_kafka_waker *w, rd_kafka_conf_t *c, const char *client,
                        char *err, size_t errlen)
{
    static const char *const keys[2] = { "queued.min.messages", "queued.max.messages.kbytes" };
    uint64_t caps[2];
    for (int i = 0; i < 2; i++) {
        char v[32], *end;
        size_t n = sizeof v;
        if (rd_kafka_conf_get(c, keys[i], v, &n) != RD_KAFKA_CONF_OK ||
            (caps[i] = strtoull(v, &end, 10), *end != '\0')) {
            snprintf(err, errlen, "%s setting %s: cannot read it back", client, keys[i]);
            return -1;
        }
    }
    *w = (fw_kafka_waker){ 0 };
    fw_fetch_wake_init(&w->when, caps[0], caps[1] * 1024);
    return 0;
}

void fw_kafka_waker_start(fw_kafka_waker *w, rd_kafka_t *rk, fw_counter *wakeups)
{
    w->rk = rk;
    w->queue = rd_kafka_queue_get_consumer(rk);
    w->wakeups = wakeups;
}

void fw_kafka_waker_stop(fw_kafka_waker *w)
{
    if (w->queue)
        rd_kafka_queue_destroy(w->queue);
    w->queue = NULL;
}

/* A request to the leaders of the assigned partitions wakes their broker
 * threads, which then decide again and fetch: a ListOffsets for the latest
 * offset, whose answer is not needed.  The 1 ms timeout is what this thread
 * may wait for it; a later answer is dropped by librdkafka.
 * rd_kafka_offsets_for_times() keeps to its timeout;
 * rd_kafka_query_watermark_offsets() in 2.0.2 waited the request's own 60 s
 * with the broker stopped (bench/README.md, "The consumer queue"). */
bool fw_kafka_waker_look(fw_kafka_waker *w)
{
    if (!fw_fetch_wake_look(&w->when, (size_t)rd_kafka_queue_length(w->queue)))
        return false;
    rd_kafka_topic_partition_list_t *l = NULL;
    bool woke = false;
    if (rd_kafka_assignment(w->rk, &l) == RD_KAFKA_RESP_ERR_NO_ERROR && l->cnt) {
        for (int i = 0; i < l->cnt; i++)
            l->elems[i].offset = RD_KAFKA_OFFSET_END;
        rd_kafka_offsets_for_times(w->rk, l, 1);
        if (w->wakeups)
            fw_counter_add(w->wakeups, 1);
        woke = true;
    }
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    return woke;
}
