/* fraudwatch — snoozes: a rule muted for one subject until a time
 * (SPEC §2, "Snoozes"; snooze.c).
 *
 * A snooze is (rule id or "*", subject, UNTIL, reason, who).  When the rule
 * fires for that subject on an event with ts < UNTIL, the alert is not a
 * live warning: it is counted and goes to the shadow output flagged
 * "snoozed": true.  State and suppression advance exactly as if it had
 * fired (the decision is taken when the alert is emitted, after them).
 *
 * A set of snoozes is immutable and reference-counted, like a rule set:
 * each batch holds the set it is applied under, so a new set (a `snooze
 * add` picked up by the daemon, within a second) takes effect between two
 * batches without touching the rule set or any window state.  Any thread
 * may read a set; look-ups take no lock. */
#ifndef FRAUDWATCH_SNOOZE_H
#define FRAUDWATCH_SNOOZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fraudwatch/ruleset.h"

typedef struct fw_snoozes fw_snoozes;

typedef struct fw_snooze {
    const char *rule;        /* a rule id, or "*" for every rule */
    const char *subject;     /* the alert subject, as text */
    size_t subject_len;
    int64_t until;           /* epoch ms: snoozed for events with ts < until */
    const char *reason;      /* NULL or "" when none */
    const char *by;          /* who; NULL or "" when unknown */
    int64_t at;              /* when it was set (epoch ms); 0 unknown */
} fw_snooze;

/* A set holding copies of v[0..n) (n may be 0). */
fw_snoozes *fw_snoozes_new(const fw_snooze *v, size_t n);
fw_snoozes *fw_snoozes_ref(fw_snoozes *s);
/* NULL is fine. */
void fw_snoozes_unref(fw_snoozes *s);
size_t fw_snoozes_count(const fw_snoozes *s);
/* The snoozes in (rule, subject) order. */
const fw_snooze *fw_snoozes_at(const fw_snoozes *s, size_t i);

/* Is an alert of rule `rule_id` for `subject` on an event at `ts` snoozed:
 * a snooze of that rule or of "*" for that subject with ts < until?  s may
 * be NULL (nothing is). */
bool fw_snoozes_match(const fw_snoozes *s, const char *rule_id, const char *subject,
                      size_t subject_len, int64_t ts);

/* What a snooze's rule and subject may be (the CLI and the store use it
 * too): the rule "*" or a rule id (1..64 of A-Z a-z 0-9 _ . -); the subject
 * 1..1024 bytes without a tab, a line break or NUL.  NULL when fine, else
 * a phrase saying what is wrong. */
const char *fw_snooze_check_rule(const char *rule);
const char *fw_snooze_check_subject(const char *subject, size_t len);

/* A snooze file (`fraudwatch replay --snoozes FILE`): TSV, one a line,
 * RULE<TAB>SUBJECT<TAB>UNTIL[<TAB>REASON]; '#' comment lines and blank
 * lines skipped; UNTIL as fw_time_parse() reads it.  A rule that `rs`
 * does not have (when rs is given) is refused like a malformed line.  0
 * and *out; or -1 with every bad line (up to 20) as "FILE:LINE: reason",
 * and nothing loaded. */
int fw_snoozes_load_file(const char *path, const fw_ruleset *rs, fw_snoozes **out,
                         char *err, size_t errlen);
/* The same over text in memory; `name` stands for the file in messages. */
int fw_snoozes_parse(const char *name, const char *data, size_t len, const fw_ruleset *rs,
                     fw_snoozes **out, char *err, size_t errlen);

#endif
