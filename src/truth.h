/* truth.h — a file of alert outcomes for `replay --compare --truth` (truth.c).
 *
 * One line per outcome, TAB-separated, as the console exports them:
 *
 *     ALERT_ID<TAB>LABEL
 *     RULE_ID<TAB>SUBJECT<TAB>EVENT_ID<TAB>LABEL
 *
 * LABEL is `fraud` or `not_fraud`; `#` lines and blank lines are skipped.
 * The second form is turned into the alert_id the engine gives that triple
 * (alert.c), so every entry is keyed by an alert_id; it also names the rule
 * the outcome belongs to (docs/backtest.md, "Truth files"). */
#ifndef FRAUDWATCH_TRUTH_H
#define FRAUDWATCH_TRUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fw_truth fw_truth;

typedef struct fw_truth_entry {
    char id[33];          /* the alert_id, 32 lowercase hex digits */
    bool fraud;           /* label: fraud (true) or not_fraud */
    char *rule;           /* the rule a RULE_ID line names; NULL for ALERT_ID lines */
    uint32_t line;        /* first line that gave it */
} fw_truth_entry;

/* Reads and checks the whole file.  The same alert twice with the same
 * label is one entry; with different labels, or any line that is not one
 * of the two forms, the file is refused: NULL, and "PATH:LINE: what is
 * wrong" for each bad line (the first 10) in err. */
fw_truth *fw_truth_load(const char *path, char *err, size_t errlen);
void fw_truth_free(fw_truth *t);

size_t fw_truth_count(const fw_truth *t);
const fw_truth_entry *fw_truth_at(const fw_truth *t, size_t i);
/* The entry of an alert_id (32 hex digits, not NUL-terminated), or -1. */
long fw_truth_find(const fw_truth *t, const char *id, size_t idlen);

#endif
