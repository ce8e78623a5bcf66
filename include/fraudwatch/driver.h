/* fraudwatch — the one driver loop: a source of raw messages, the
 * pipeline, a sink for what comes out, and checkpoints between them.
 *
 * Every program that runs the engine uses it: `fraudwatch run` (Kafka in,
 * Kafka out, checkpoints, reloads), `fraudwatch replay` (a JSONL file in,
 * alert lines out), the test harness, the hostile suite and the fuzz
 * target (messages from memory).  What differs is a source and a sink,
 * each a table of functions over an object of its own — so a new input (a
 * file tail, a second Kafka cluster) or a new output (a shadow topic, a
 * console) is one new file implementing fw_source_ops or fw_sink_ops, and
 * the loop, the batching, the ordering of outputs, the rule swaps and the
 * checkpoint protocol are written once.  Model: Fluent Bit's input and
 * output plugins, Suricata's source-*.c modules.
 *
 * Threads: every function here, and every source and sink callback, runs
 * on the thread that calls fw_driver_run() (the pipeline's feeder), except
 * fw_source_ops.write_positions, which runs on the checkpoint writer's
 * thread while the loop goes on. */
#ifndef FRAUDWATCH_DRIVER_H
#define FRAUDWATCH_DRIVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fraudwatch/metrics.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/ruleset.h"
#include "fraudwatch/snooze.h"

/* A message as a source hands it over.  `stream` names where it came from
 * (a partition index the source hands out; 0 for a file), `offset` its
 * place there (a Kafka offset; a line number).  `data` is valid until the
 * source's next call; a message larger than the pipeline's limit may come
 * as "" with its real `len` (it is malformed, not copied). */
typedef struct fw_msg {
    const char *data;
    size_t len;
    uint32_t stream;
    int64_t offset;
    int64_t ts_ms;           /* the source's timestamp of it; 0: none */
} fw_msg;

/* Where an output came from, for the sink: the message's position and the
 * source's names for it (a topic and partition; the input file). */
typedef struct fw_origin {
    const char *stream_name;
    int32_t stream_number;
    int64_t offset;
    int64_t ts_ms;
    int64_t polled_ms;      /* wall clock when fed to the driver */
    int64_t batched_ms;     /* wall clock when its batch went to the workers; 0: not known */
} fw_origin;

enum fw_next { FW_NEXT_MSG = 1, FW_NEXT_NONE = 0, FW_NEXT_END = -1, FW_NEXT_FATAL = -2 };

typedef struct fw_source_ops {
    const char *name;
    /* The next message into *m (FW_NEXT_MSG), nothing within timeout_ms
     * (FW_NEXT_NONE), the end of the input (FW_NEXT_END: a file), or a
     * fatal error (FW_NEXT_FATAL; fatal() says why). */
    int (*next)(void *self, fw_msg *m, int timeout_ms);
    /* Every output of the message at (stream, offset) has been handed to
     * the sink (NULL: nothing to track). */
    void (*done)(void *self, uint32_t stream, int64_t offset);
    /* Names for a stream (a topic, its partition), for dead letters. */
    const char *(*stream_name)(void *self, uint32_t stream);
    int32_t (*stream_number)(void *self, uint32_t stream);
    /* Once a turn, for the source's own housekeeping (commit retries,
     * gauges); NULL: none. */
    void (*tick)(void *self);
    const char *(*fatal)(void *self);          /* NULL: never fatal */

    /* Checkpoints (all NULL for a source that has none).  positions: what
     * has been done up to now (everything retired), an object of the
     * source's; write_positions writes it into the checkpoint file (on the
     * writer thread); commit makes it the source's truth once the file is
     * in place (waiting until until_ms, fw_mono_ms(); < 0: no deadline);
     * read_positions reads a checkpoint's positions back at start. */
    void *(*positions)(void *self);
    int (*write_positions)(void *self, const void *pos, FILE *f, char *err, size_t errlen);
    int (*commit)(void *self, void *pos, int64_t until_ms, char *err, size_t errlen);
    int (*read_positions)(void *self, FILE *f, const char *path, char *err, size_t errlen);
    void (*free_positions)(void *pos);
} fw_source_ops;

typedef struct fw_sink_ops {
    const char *name;
    /* One alert: a JSON line, and its subject (the Kafka message key). */
    void (*alert)(void *self, const fw_alert_view *a, const fw_origin *from);
    /* A malformed message: its bytes (NULL when too large to have been
     * kept) and why. */
    void (*dead_letter)(void *self, const char *payload, size_t len, const char *reason,
                        const fw_origin *from);
    /* Delivery (all NULL for a sink that is done when a call returns): a
     * mark between what was handed over so far and what comes after;
     * acked(mark) once everything before it is delivered; drain waits for
     * everything, until timeout_ms or *stop (0 or -1); pending counts what
     * is not yet delivered. */
    uint64_t (*mark)(void *self);
    bool (*acked)(void *self, uint64_t mark);
    int (*drain)(void *self, volatile sig_atomic_t *stop, int timeout_ms);
    uint64_t (*pending)(void *self);
    void (*tick)(void *self);                  /* once a turn; NULL: none */
    const char *(*fatal)(void *self);          /* NULL: never fatal */
} fw_sink_ops;

/* What passed through (read at any time on the driver's thread). */
typedef struct fw_driver_stats {
    uint64_t messages;
    uint64_t malformed;
    uint64_t alerts;
    uint64_t faults;           /* regex searches stopped by a limit */
    uint64_t clock_ahead, clock_behind;
    uint64_t evictions;
    uint64_t checkpoints, checkpoint_failures;
} fw_driver_stats;

typedef struct fw_driver_opts {
    fw_pipeline_opts pipeline;
    const fw_source_ops *source;
    void *source_self;
    const fw_sink_ops *sink;
    void *sink_self;
    fw_ruleset *rules;               /* the first rule set (a reference is taken) */
    fw_snoozes *snoozes;             /* the first snoozes (a reference is taken;
                                        NULL: none); see fw_driver_set_snoozes */
    /* Checkpoints: a directory to keep them in (NULL: none; one process
     * at a time: it is locked, a second driver on it is refused), the
     * file's name there, and how often to cut one. */
    const char *state_dir;
    const char *checkpoint_file;     /* default "checkpoint" */
    int64_t checkpoint_interval_ms;
    /* Another place for the checkpoints than state_dir's file
     * (src/ckpt_store.h: a `const fw_ckpt_store_ops *` and its object;
     * NULL: the file).  state_dir is still locked: one process per
     * directory. */
    const void *ckpt_store;
    void *ckpt_store_self;
    /* Prometheus metrics of the stream and the checkpoints (NULL: none). */
    fw_metrics *metrics;
    /* Called once a turn of the loop (heartbeats, rule swaps: see
     * fw_driver_swap_rules); NULL: none. */
    void (*tick)(void *ctx);
    void *tick_ctx;
} fw_driver_opts;

typedef struct fw_driver fw_driver;

fw_driver *fw_driver_new(const fw_driver_opts *o, char *err, size_t errlen);
/* Retires what is in flight (outputs included) and frees everything but
 * the source and the sink.  A checkpoint written and not yet published is
 * dropped (the one in place stays the truth). */
void fw_driver_free(fw_driver *d);
/* The same, for a process about to exit: the per-key state is left to the
 * exit (fw_pipeline_free_at_exit). */
void fw_driver_free_at_exit(fw_driver *d);

/* Loads the checkpoint in state_dir if there is one (0 also when none).
 * Call before the first run. */
int fw_driver_restore(fw_driver *d, char *err, size_t errlen);
/* Runs until *stop is set (0), the source ends (0; everything retired and
 * handed to the sink), or a fatal error of the source or the sink (-1;
 * fw_driver_fatal says why). */
int fw_driver_run(fw_driver *d, volatile sig_atomic_t *stop);
const char *fw_driver_fatal(const fw_driver *d);
/* How long input has been waiting for a checkpoint to cover it (0: none
 * waits, or no checkpoints); any thread (the health check reads it). */
int64_t fw_driver_unsaved_ms(const fw_driver *d);
/* A rule set for the batches from now on (the driver takes the
 * reference); batches in flight finish under their own. */
void fw_driver_swap_rules(fw_driver *d, fw_ruleset *rs);
const fw_ruleset *fw_driver_rules(const fw_driver *d);
/* Snoozes for the batches from now on (a reference is taken; NULL: none).
 * Costs a pointer: the rule set and every key's state stay as they are. */
void fw_driver_set_snoozes(fw_driver *d, fw_snoozes *s);

/* What each rule did so far (issue 11.7), one tally per (rule id, mode):
 * a rule whose mode changed by a reload has one of each.  Counts are
 * indexed by enum fw_rule_count (pipeline.h). */
typedef struct fw_rule_tally {
    const char *rule;
    const char *mode;                /* "live" or "shadow" */
    uint64_t n[FW_RC_N];
} fw_rule_tally;
size_t fw_driver_rule_tally_count(const fw_driver *d);
const fw_rule_tally *fw_driver_rule_tally(const fw_driver *d, size_t i);
/* A checkpoint of everything fed so far, finished before returning (a
 * revocation, the shutdown): every batch retired, every output delivered
 * (until until_ms; *cut_short ends the wait early), the file written and
 * published, the positions committed.  0, or -1 with the reason. */
int fw_driver_checkpoint(fw_driver *d, int64_t until_ms, volatile sig_atomic_t *cut_short,
                         char *why, size_t whylen);
/* Retires every batch in flight, handing its outputs to the sink. */
void fw_driver_flush(fw_driver *d);
/* Stops checkpointing for good (the teardown: nothing may checkpoint after
 * the final one), and frees the checkpoint writer. */
void fw_driver_end_checkpoints(fw_driver *d);
const fw_driver_stats *fw_driver_stats_get(const fw_driver *d);
fw_pipeline *fw_driver_pipeline(fw_driver *d);

#endif
