/* fraudwatch — a compiled, validated, immutable rule set.
 *
 * A rule set is built whole from a rules directory (fw_ruleset_load_dir) or
 * from in-memory files (fw_ruleset_load_files, used by the Redis store), and
 * is either valid in every part or refused with every error found, each
 * naming the file, the rule id and the member.  Once built it never changes:
 * workers share it without locks, each holding a reference; the last
 * fw_ruleset_unref() frees it.  Regexes are JIT-compiled before the set is
 * returned, so nothing writes into it after publication. */
#ifndef FRAUDWATCH_RULESET_H
#define FRAUDWATCH_RULESET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fraudwatch/rulefiles.h"   /* fw_rulefile, reading a directory */

typedef struct fw_ruleset fw_ruleset;

/* Loads every *.json and NAME.list in `dir` (files in name order), read as
 * fw_rulefiles_read_dir() reads them.  Returns 0 and sets *out, or -1 with a
 * message (possibly several lines, one per error) in err. */
int fw_ruleset_load_dir(const char *dir, uint64_t version, fw_ruleset **out,
                        char *err, size_t errlen);
int fw_ruleset_load_files(const fw_rulefile *files, size_t nfiles,
                          uint64_t version, fw_ruleset **out, char *err,
                          size_t errlen);

fw_ruleset *fw_ruleset_ref(fw_ruleset *rs);
void fw_ruleset_unref(fw_ruleset *rs);

uint64_t fw_ruleset_version(const fw_ruleset *rs);
size_t fw_ruleset_rule_count(const fw_ruleset *rs);
const char *fw_ruleset_rule_id(const fw_ruleset *rs, size_t i);
const char *fw_ruleset_rule_severity(const fw_ruleset *rs, size_t i);

/* Prints what was loaded: lists with sizes, rules with kind and summary,
 * and the cost per event type. */
void fw_ruleset_describe(const fw_ruleset *rs, FILE *out);

/* What one event of a type costs at most: the rules and sequence steps it
 * is tried against, their conditions, and the regex searches among them
 * (regex and not_regex, inside "any" too).  Entry i < count - 1 is a type
 * some rule names; the last is every other type (type NULL). */
typedef struct fw_ruleset_cost {
    const char *type;
    uint32_t steps, conditions, regexes;
} fw_ruleset_cost;
size_t fw_ruleset_cost_count(const fw_ruleset *rs);
void fw_ruleset_cost_at(const fw_ruleset *rs, size_t i, fw_ruleset_cost *c);

/* A set whose events of some type would run more regex searches than this
 * is refused by the loader (rules.max_regex_per_event, the CLI's
 * --max-regex-per-event).  Process-wide; set it before loading. */
#define FW_DEFAULT_MAX_REGEX_PER_EVENT 1000u
void fw_ruleset_set_max_regexes(uint32_t n);
uint32_t fw_ruleset_max_regexes(void);

#endif
