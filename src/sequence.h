/* sequence.h — the per-key chains of a sequence rule (sequence.c), used
 * by its rule kind (kind_sequence.c). */
#ifndef FRAUDWATCH_SEQUENCE_H
#define FRAUDWATCH_SEQUENCE_H

#include <stdbool.h>
#include <stdio.h>

#include "fraudwatch/buf.h"
#include "update.h"

typedef struct fw_seqstate fw_seqstate;
void fw_seqstate_free(fw_seqstate *s);
/* Applies a matched step.  Returns true when the rule fires on this event;
 * then `evidence` holds the chain as a JSON array, and *with_fields the
 * update with its event's fields (fw_state_fields of `st`, which also
 * gives the fields a chain keeps of each step). */
struct fw_state;
bool fw_sequence_apply(fw_seqstate **s, const fw_rule *r, int64_t *m,
                       const fw_update *u, fw_buf *evidence, struct fw_state *st,
                       fw_update *with_fields);

/* Its checkpoint encoding (codec.h); load: 0 or -1. */
void fw_seqstate_save(const fw_seqstate *s, fw_buf *out);
/* with_fields: the encoding that carries each step's fields. */
int fw_seqstate_load(fw_seqstate **s, FILE *f, bool with_fields);

#endif
