/* election.h — one active daemon among standbys, elected through Kafka
 * (election.c), and the fence that stops a daemon that lost the role
 * before it produces. */
#ifndef FRAUDWATCH_ELECTION_H
#define FRAUDWATCH_ELECTION_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "fraudwatch/config.h"
#include "fraudwatch/driver.h"
#include "fraudwatch/metrics.h"

typedef struct fw_election fw_election;

/* The consumer of a control group (election.c, scale.c), subscribed to
 * `topic` in `group` with ha.session_timeout_ms and cooperative-sticky;
 * NULL with err. */
typedef void (*fw_control_rebalance_fn)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                        rd_kafka_topic_partition_list_t *parts, void *opaque);
rd_kafka_t *fw_control_consumer_new(const fw_settings *s, const char *group, const char *topic,
                                    fw_control_rebalance_fn rebalance, void *opaque, char *err,
                                    size_t errlen);

/* The control topic's name: ha.control_topic, or "<kafka.group.id>.control". */
void fw_election_topic(const fw_settings *s, char *out, size_t outlen);
/* The control group's name: "<kafka.group.id>.control". */
void fw_election_group(const fw_settings *s, char *out, size_t outlen);
/* Joins the control group (creating the control topic if missing) and
 * starts the thread that follows the role.  m may be NULL. */
fw_election *fw_election_new(const fw_settings *s, fw_metrics *m, char *err, size_t errlen);
/* Stands by until this daemon is the active one (1), *stop is set (0), or
 * the election fails (-1, err). */
int fw_election_wait(fw_election *e, volatile sig_atomic_t *stop, char *err, size_t errlen);
/* May this daemon produce now?  true while it holds the role with a fresh
 * lease; with a stale lease (the process was paused, the broker is slow)
 * it waits, up to ha.session_timeout_ms, for the lease to be renewed or
 * the role lost.  false (why filled) once the role is lost.  Any thread. */
bool fw_election_check(fw_election *e, char *why, size_t whylen);
/* Leaves the control group (a standby takes over at once) and frees. */
void fw_election_free(fw_election *e);

/* A sink that asks fw_election_check before every alert and dead letter
 * and hands it to `inner` only if allowed; once refused it produces
 * nothing more and reports itself fatal (the daemon stops, exit 3, no
 * checkpoint). */
typedef struct fw_fence_sink fw_fence_sink;
fw_fence_sink *fw_fence_sink_new(const fw_sink_ops *inner, void *inner_self, fw_election *e);
/* The same over any role: check (may this daemon produce now? false with
 * why once not) and gone (has the role been lost for good?), on ctx.  Used
 * per repartition partition by scale.c. */
typedef bool (*fw_fence_check_fn)(void *ctx, char *why, size_t whylen);
typedef bool (*fw_fence_gone_fn)(void *ctx);
fw_fence_sink *fw_fence_sink_new_fn(const fw_sink_ops *inner, void *inner_self,
                                    fw_fence_check_fn check, fw_fence_gone_fn gone, void *ctx);
const fw_sink_ops *fw_fence_sink_ops(fw_fence_sink *f);
void fw_fence_sink_free(fw_fence_sink *f);

#endif
