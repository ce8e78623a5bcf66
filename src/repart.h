/* repart.h — ha.mode = scaleout: the repartition topic between the daemons
 * that read the input (repart_out.c, the forwarder) and the daemons that
 * own a partition's state (repart_in.c, a unit's source; scale.c runs
 * both).  docs/scaling.md, "Scale-out by key", has the design.
 *
 * Records of the repartition topic, every one in the partition it is for:
 *   an event:  the input message's bytes as they were, its timestamp, and
 *              the header fw.in = "TOPIC\x1fPARTITION\x1fOFFSET" (where it
 *              was read: duplicates after a hand-over are told by it);
 *   a mark:    no value, one header fw.mark per input partition the
 *              forwarder owns =
 *              "TOPIC\x1fPARTITION\x1fNEXT\x1fCAUGHT\x1fTS\x1fEPOCH" — the
 *              forwarder of that input partition has forwarded everything
 *              before offset NEXT, the latest message time among them is TS
 *              (-1: none yet), CAUGHT (1/0) says whether that was all the
 *              partition held when it looked, and EPOCH is when it was
 *              assigned the partition (wall clock, ms): a unit believes
 *              CAUGHT only from the newest forwarder (a paused one may
 *              resume and mark before it learns the partition is gone). */
#ifndef FRAUDWATCH_REPART_H
#define FRAUDWATCH_REPART_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fraudwatch/config.h"
#include "fraudwatch/driver.h"
#include "fraudwatch/metrics.h"
#include "fraudwatch/ruleset.h"

#define FW_REPART_HDR_IN "fw.in"
#define FW_REPART_HDR_MARK "fw.mark"


/* The topics of the mode: scale.topic or GROUP.repartition; state.topic or
 * GROUP.scale-state; GROUP.scale-control (its partitions' owners in the
 * group GROUP.scale-control own the repartition partitions). */
void fw_scale_topics(const fw_settings *s, char *repart, char *state, char *control,
                     size_t len);

/* Every input partition, in a fixed order (topic as configured, then
 * partition number): the units' streams.  0, or -1 with err. */
typedef struct fw_inputs {
    char **topic;
    int32_t *partition;
    uint32_t n;
} fw_inputs;
int fw_inputs_load(const fw_settings *s, fw_inputs *in, char *err, size_t errlen);
void fw_inputs_free(fw_inputs *in);
/* Index of (topic, partition); UINT32_MAX if unknown. */
uint32_t fw_inputs_find(const fw_inputs *in, const char *topic, size_t topic_len,
                        int32_t partition);

/* ---- the forwarder (repart_out.c) ------------------------------------------ */

typedef struct fw_forwarder fw_forwarder;
/* Joins the input group (kafka.group.id) and produces into the
 * repartition topic.  rules: the first rule set (a reference is taken). */
fw_forwarder *fw_forwarder_new(const fw_settings *s, fw_ruleset *rules, fw_metrics *m,
                               char *err, size_t errlen);
/* A new rule set (a reference is taken); any thread. */
void fw_forwarder_swap_rules(fw_forwarder *f, fw_ruleset *rs);
/* Runs until *stop (0) or a fatal error (-1, fw_forwarder_fatal). */
int fw_forwarder_run(fw_forwarder *f, volatile sig_atomic_t *stop);
const char *fw_forwarder_fatal(const fw_forwarder *f);
/* Everything forwarded is acknowledged, its input positions committed,
 * the group left (until until_ms).  0 or -1 (err). */
int fw_forwarder_close(fw_forwarder *f, int64_t until_ms, char *err, size_t errlen);
void fw_forwarder_free(fw_forwarder *f);

/* ---- a unit's source (repart_in.c) ----------------------------------------- */

typedef struct fw_rin fw_rin;
fw_rin *fw_rin_new(const fw_settings *s, const fw_inputs *inputs, int32_t part,
                   fw_metrics *m, char *err, size_t errlen);
/* Starts reading: at the restored checkpoint's position, else at the
 * group's committed one, else at the beginning.  0 or -1 (err). */
int fw_rin_start(fw_rin *r, char *err, size_t errlen);
/* Has the units' group committed a position for this partition (the
 * lost-state check)?  1, 0, or -1 (err). */
int fw_rin_has_positions(void *r, char *err, size_t errlen);
void fw_rin_free(fw_rin *r);
extern const fw_source_ops fw_rin_source;

#endif
