/* alert_fields.h — what an alert shows of the event it fired on (SPEC §3,
 * "What an officer needs on the alert"), and the limits of the rule
 * members that say what an officer reads (alert_fields.c, rules_load.c).
 *
 * The values are read from the event's message (which the batch holds
 * until it retires) when an update fires or a sequence chain keeps it
 * (state.c fw_state_fields); what a chain keeps is the finished JSON
 * text.  Every limit here is in docs/limits.md. */
#ifndef FRAUDWATCH_ALERT_FIELDS_H
#define FRAUDWATCH_ALERT_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include "fraudwatch/arena.h"
#include "fraudwatch/buf.h"
#include "fraudwatch/event.h"
#include "ruleset_impl.h"

/* Rule members (rules_load.c). */
#define FW_RULE_TEXT_MAX 4096      /* bytes of description, of action */
#define FW_RULE_TAGS_MAX 16        /* tags of a rule */
#define FW_RULE_TAG_MAX 64         /* bytes of one tag */
#define FW_ALERT_FIELDS_MAX 32     /* paths in alert_fields */
#define FW_FIELD_PATH_MAX 256      /* bytes of one path */

/* An alert's (or a sequence step's) fields. */
#define FW_FIELDS_MAX 32           /* values shown (without alert_fields: the first 32 top-level scalars) */
#define FW_FIELD_TEXT_MAX 256      /* bytes of a string value shown (cut at a character) */
#define FW_FIELDS_BYTES_MAX 4096   /* bytes of the whole "fields" object */

/* A threshold's evidence: window.h (FW_DISTINCT_SHOWN_MAX, FW_SUM_SHOWN_MAX). */

/* Appends `"fields":{...}` — with `alert_fields` the values at those paths
 * (keyed by the path as written; a path the event lacks, or one naming an
 * object, an array or null, is left out), without it the event's top-level
 * strings, numbers and booleans (of a repeated name the first value) — and,
 * when a limit left something out or cut a string, `,"fields_cut":true`.
 * Top-level values come in the event's order, nested paths after them in
 * the rule's order.  A number is written exactly as in the event's text
 * when that text is JSON number syntax, else in its shortest round-trip
 * form. */
void fw_fields_render(fw_buf *out, const fw_event *ev, const fw_rule *r);

/* The same, with an index of the event's top-level members (names, nodes,
 * value texts) kept in `ix` for the calls that follow on the same event;
 * reset it before another event (the same address may hold another).  An
 * event with more than 256 top-level members is rendered from the first
 * 256 (default fields; "fields_cut") or by cJSON look-ups (alert_fields). */
typedef struct fw_fields_ix fw_fields_ix;
fw_fields_ix *fw_fields_ix_new(void);
void fw_fields_ix_free(fw_fields_ix *ix);
void fw_fields_ix_reset(fw_fields_ix *ix);
void fw_fields_put(fw_fields_ix *ix, const fw_event *ev, const fw_rule *r, fw_buf *out);

/* The hash the index keys top-level names by (rules_load.c keeps one per
 * alert_fields path: fw_rule.alert_fields_h). */
uint64_t fw_fields_name_hash(const char *name);

/* The text of a number node exactly as the event wrote it, or false (not
 * found, or not valid JSON number syntax).  `v` must be the node at `p`. */
bool fw_fields_raw_number(const fw_event *ev, const fw_path *p, const cJSON *v,
                          const char **text, size_t *len);

#endif
