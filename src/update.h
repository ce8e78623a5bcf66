/* update.h — what stage 1 hands stage 2: one instruction "apply this to
 * the state of (rule, key)", and the shard that owns the key.  See
 * engine.h (stage 1, scan) and state.h (stage 2, apply); splitting there is
 * what lets parsing and matching run on every core while each key's state
 * has exactly one owner and sees its events in input order (pipeline.c). */
#ifndef FRAUDWATCH_UPDATE_H
#define FRAUDWATCH_UPDATE_H

#include <stdint.h>

#include "ruleset_impl.h"

__extension__ typedef __int128 fw_i128;
__extension__ typedef unsigned __int128 fw_u128;

#define FW_TS_NONE INT64_MIN

enum fw_vkind { FW_V_NONE, FW_V_MICRO, FW_V_TEXT };

typedef struct fw_update {
    uint32_t seq;            /* event's index in its batch */
    uint32_t rule;           /* index in the rule set */
    uint32_t step;           /* sequence step, 0-based */
    uint32_t klen;
    uint64_t khash;          /* hash of key, seeded with the rule's state_sig */
    int64_t ts;
    const char *key;         /* subject / group key (batch arena) */
    const char *event_id;    /* batch arena */
    uint32_t event_id_len;
    uint8_t vkind;
    uint32_t vlen;
    int64_t micro;           /* sum: the value in millionths */
    const char *vtext;       /* distinct: the value as text */
    const char *evidence;    /* plain rules: JSON array of matched conditions */
    /* The event's message, in the batch (valid until the batch retires):
     * what an alert shows of the event is read from it when needed
     * (fw_state_fields, state.c). */
    const char *raw;
    uint32_t raw_len;
    /* What the alert shows of the event (alert_fields.h): members to splice
     * into an object, `"fields":{...}` (and `,"fields_cut":true`); set by
     * fw_state_fields; fields_len 0: none. */
    const char *fields;
    uint32_t fields_len;
} fw_update;

typedef struct fw_updvec {
    fw_update *v;
    size_t n, cap;
} fw_updvec;

#endif
