/* ckpt_kafka.h — checkpoints in a compacted Kafka topic (ckpt_kafka.c):
 * `state.store = kafka`.  docs/scaling.md has the record layout and the
 * guarantees. */
#ifndef FRAUDWATCH_CKPT_KAFKA_H
#define FRAUDWATCH_CKPT_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ckpt_store.h"
#include "fraudwatch/config.h"
#include "fraudwatch/metrics.h"

typedef struct fw_ckpt_kafka fw_ckpt_kafka;

/* The state topic's name: state.topic, or "<kafka.group.id>.state". */
void fw_ckpt_kafka_topic(const fw_settings *s, char *out, size_t outlen);
/* The producer of the store (no broker round trip yet).  m may be NULL. */
fw_ckpt_kafka *fw_ckpt_kafka_new(const fw_settings *s, fw_metrics *m, char *err, size_t errlen);
/* A store over one partition of a state topic that must have `nparts`
 * (ha.mode = scaleout: partition p holds repartition partition p's
 * checkpoints; scale.c). */
fw_ckpt_kafka *fw_ckpt_kafka_new_part(const fw_settings *s, const char *topic, int32_t partition,
                                      int32_t nparts, fw_metrics *m, char *err, size_t errlen);
void fw_ckpt_kafka_free(fw_ckpt_kafka *k);
/* The lost-state check's question, "are there positions a checkpoint
 * should go with?": 1, 0, or -1 with err.  Default: has the input's
 * consumer group committed any. */
typedef int (*fw_ckpt_positions_fn)(void *ctx, char *err, size_t errlen);
void fw_ckpt_kafka_set_positions_check(fw_ckpt_kafka *k, fw_ckpt_positions_fn fn, void *ctx,
                                       const char *group);
/* A check made right before a manifest is published (the daemon's role:
 * a daemon that lost the active role must not publish); NULL: none.
 * Returns false with why filled to refuse. */
typedef bool (*fw_ckpt_fence_fn)(void *ctx, char *why, size_t whylen);
void fw_ckpt_kafka_set_fence(fw_ckpt_kafka *k, fw_ckpt_fence_fn fn, void *ctx);
/* Finds the checkpoint to restore now (reading the state topic; the
 * lost-state check), before the daemon joins its consumer group; the
 * driver's restore then takes that answer.  0, or -1 with err. */
int fw_ckpt_kafka_prepare(fw_ckpt_kafka *k, char *err, size_t errlen);
/* The table for fw_driver_opts.ckpt_store (self: an fw_ckpt_kafka). */
extern const fw_ckpt_store_ops fw_ckpt_kafka_ops;

/* Creates the state topic with its configs unless it exists; *created
 * says which.  0, or -1 with err. */
int fw_ckpt_kafka_init(const fw_settings *s, bool *created, char *err, size_t errlen);

/* The same for any topic: state true gives the state topic's configs,
 * false a plain one-partition topic (the control topic). */
int fw_kafka_ensure_topic(const fw_settings *s, const char *topic, bool state, bool *created,
                          char *err, size_t errlen);
/* The same with `nparts` partitions (an existing topic with another count
 * is an error). */
int fw_kafka_ensure_topic_n(const fw_settings *s, const char *topic, bool state, int nparts,
                            bool *created, char *err, size_t errlen);

/* What `fraudwatch state status` shows of the state topic. */
typedef struct fw_ckpt_info {
    uint64_t id;
    char instance[128];
    int64_t created_ms;      /* wall clock, epoch ms */
    uint64_t bytes;
    uint32_t chunks, chunks_present;
    bool manifest, complete; /* complete: every chunk there and the checksum right */
} fw_ckpt_info;
/* Reads the whole state topic: up to max checkpoints, newest first, into
 * out; *n their number.  -1 with err (a missing topic says so). */
int fw_ckpt_kafka_scan(const fw_settings *s, fw_ckpt_info *out, size_t max, size_t *n,
                       char *err, size_t errlen);
int fw_ckpt_kafka_scan_part(const fw_settings *s, const char *topic, int32_t partition,
                            int32_t nparts, fw_ckpt_info *out, size_t max, size_t *n,
                            char *err, size_t errlen);

#endif
