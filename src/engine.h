/* engine.h — stage 1 (any worker): an event → the rules and steps it
 * matches → updates (update.h), binned by the shard that owns each key.
 * Stage 2 is state.h. */
#ifndef FRAUDWATCH_ENGINE_H
#define FRAUDWATCH_ENGINE_H

#include "fraudwatch/arena.h"
#include "fraudwatch/event.h"
#include "fraudwatch/pipeline.h"
#include "update.h"

typedef struct fw_scanner fw_scanner;
fw_scanner *fw_scanner_new(void);
void fw_scanner_free(fw_scanner *s);
uint64_t fw_scanner_faults(const fw_scanner *s);

/* Appends the event's updates to out[shard], shard = fw_shard_of(khash, n).
 * counts (NULL: none): per rule, stride FW_RC_N (pipeline.h), the events
 * that satisfied its conditions (FW_RC_MATCHED, once per event) and its
 * regex searches stopped by a limit (FW_RC_FAULTS). */
void fw_engine_scan(fw_scanner *s, const fw_ruleset *rs, const fw_event *ev,
                    uint32_t seq, fw_arena *arena, fw_updvec *out,
                    uint32_t nshards, uint32_t *counts);

static inline uint32_t fw_shard_of(uint64_t khash, uint32_t nshards)
{
    return (uint32_t)(((khash >> 32) * nshards) >> 32);
}

/* The repartition partition that owns a key (ha.mode = scaleout): from the
 * hash's low half, so that the workers' shards (its high half) still
 * spread a partition's keys. */
static inline uint32_t fw_part_of(uint64_t khash, uint32_t nparts)
{
    return (uint32_t)(((khash & 0xffffffffu) * nparts) >> 32);
}

/* Only updates of keys in repartition partition `part` of `parts` are
 * kept from now on (parts 0: every key). */
void fw_scanner_set_owner(fw_scanner *s, uint32_t parts, uint32_t part);

#endif
