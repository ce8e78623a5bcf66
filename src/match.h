/* match.h — conditions against one event (internal to the engine). */
#ifndef FRAUDWATCH_MATCH_H
#define FRAUDWATCH_MATCH_H

#include "fraudwatch/buf.h"
#include "ruleset_impl.h"

/* Per-thread matching resources: PCRE2 match data, JIT stack, limits. */
typedef struct fw_matcher fw_matcher;

#define FW_MATCH_LIMIT 1000000u   /* PCRE2 match limit per start position */
#define FW_MATCH_WORK 10000000u   /* ...scaled so that one search does about this much */
#define FW_MATCH_HEAP_KIB 20000u  /* interpreter backtracking memory per search */

fw_matcher *fw_matcher_new(void);
void fw_matcher_free(fw_matcher *m);

/* Between these two, conditions on `root` read each field of the rule set
 * `rs` at most once and run each distinct search (fw_cond.search) at most
 * once: the event's tree must not change in between.  Outside, every
 * condition looks its field up and searches. */
void fw_matcher_begin_event(fw_matcher *m, const cJSON *root, const fw_ruleset *rs);
void fw_matcher_end_event(fw_matcher *m);

/* True when every condition holds.  A regex that hits a match or JIT-stack
 * limit counts as "no match" and increments fw_matcher_faults(). */
bool fw_match_all(fw_matcher *m, const cJSON *root, const fw_cond *c,
                  uint32_t n);
uint64_t fw_matcher_faults(const fw_matcher *m);
/* The time of the event being matched (its ts): watchlist entries that
 * expire are members by event time.  Set once per event, before matching. */
void fw_matcher_set_event_ts(fw_matcher *m, int64_t ts);
int64_t fw_matcher_event_ts(const fw_matcher *m);

/* The same count, where it lives (valid as long as m): the scanner reads
 * it after each rule to count faults per rule without a call. */
const uint64_t *fw_matcher_faults_at(const fw_matcher *m);

/* For the condition forms (cond_forms.c): a bounded search of `v` (false
 * for anything but a string), 1 match / 0 none; the last match's span. */
int fw_matcher_search(fw_matcher *m, const pcre2_code *re, const cJSON *v);
void fw_matcher_last_match(const fw_matcher *m, size_t *start, size_t *end);
/* A regex condition's search of `v` (its field in `root`): the event's
 * earlier result of the same search when there is one (a limit hit it had
 * counts again).  fw_matcher_last_match() is not valid after it. */
int fw_matcher_search_cond(fw_matcher *m, const cJSON *root, const fw_cond *c,
                           const cJSON *v);
/* ,"value":V — the value a condition saw, for evidence (texts cut at
 * FW_EVIDENCE_TEXT_MAX bytes). */
#define FW_EVIDENCE_TEXT_MAX 256
void fw_match_explain_value(fw_buf *out, const cJSON *v);

/* Appends a JSON array describing why the conditions hold (field, form,
 * operand, the value seen, and the matched text of a regex). */
void fw_match_explain(fw_matcher *m, const cJSON *root, const fw_cond *c,
                      uint32_t n, fw_buf *out);

#endif
