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

#include <stdbool.h>
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

/* ---- watchlists built piece by piece (the Redis rules source) -------------
 *
 * A watchlist in Redis can hold millions of entries and change one at a
 * time.  A new set built for such a change shares the list's entries with
 * the set it replaces and records only what changed (src/watchlist.c), so
 * it costs the change, not the list.  A builder holds the entries of one
 * list: empty (to be filled by a full read), or on top of a list of an
 * existing set (to be changed).  Values go in as .list lines do: trimmed,
 * blank and '#' lines skipped, a line break separates values; a value that
 * could never match (fw_list_entry_ok) is counted, and the set that would
 * hold it is refused.  A builder is used by one thread. */
typedef struct fw_listbuild fw_listbuild;

/* An empty list (hint: entries expected, 0 if unknown). */
fw_listbuild *fw_listbuild_new(size_t hint);
/* The watchlist NAME of rs, to be changed; NULL when rs has no such list.
 * Costs the changes rs's list already carries on top of its last full
 * read (bounded: see src/watchlist.c), never the list. */
fw_listbuild *fw_listbuild_from(const fw_ruleset *rs, const char *name);
void fw_listbuild_add(fw_listbuild *b, const char *value, size_t len);
/* Entries as .list lines with their columns (VALUE[<TAB>UNTIL[<TAB>REASON]],
 * rulefiles.h): each put with its UNTIL (replacing an entry's UNTIL); a
 * line whose UNTIL does not parse counts as a refused value. */
void fw_listbuild_add_entries(fw_listbuild *b, const char *text, size_t len);
/* Sets the UNTIL of an entry the list holds (nothing when it holds none). */
void fw_listbuild_expire(fw_listbuild *b, const char *value, size_t len, int64_t until);
/* One value (a Redis member, cleaned like a .list value; no columns),
 * with its UNTIL; and one that never expires, put only when the list does
 * not hold it yet (a full read takes the UNTILs first, then the set, so an
 * entry is stored once). */
void fw_listbuild_add_until(fw_listbuild *b, const char *value, size_t len, int64_t until);
void fw_listbuild_add_missing(fw_listbuild *b, const char *value, size_t len);
/* After a full read (UNTILs, then every member with add_missing): drops
 * the entries that came only with an UNTIL and are not members (left by a
 * writer that changed the set alone, e.g. an older fraudwatch). */
void fw_listbuild_keep_seen(fw_listbuild *b);
void fw_listbuild_remove(fw_listbuild *b, const char *value, size_t len);
/* Entries in the list as built so far. */
size_t fw_listbuild_count(const fw_listbuild *b);
/* Values refused so far, and the first one with the reason. */
size_t fw_listbuild_bad(const fw_listbuild *b, const char **first);
void fw_listbuild_free(fw_listbuild *b);

/* One watchlist of fw_ruleset_load_parts(). */
typedef struct fw_listpart {
    const char *name;
    uint64_t version;        /* the source's version of it, kept with the list */
    fw_listbuild *entries;   /* its entries (moved into the set: the builder
                                is empty afterwards, free it); NULL: the list
                                exactly as `prev` holds it, shared */
} fw_listpart;

/* A rule set from rule files (the *.json of `files`; any NAME.list among
 * them is ignored) and the watchlists in `lists`, validated exactly as
 * fw_ruleset_load_files() does.  0 and *out, or -1 with the errors. */
int fw_ruleset_load_parts(const fw_rulefile *files, size_t nfiles,
                          const fw_listpart *lists, size_t nlists,
                          const fw_ruleset *prev, uint64_t version,
                          fw_ruleset **out, char *err, size_t errlen);

/* Watchlist NAME of rs: true, with its source version (0 when it came from
 * a file) and its entry count; false when rs has no such list. */
bool fw_ruleset_list_info(const fw_ruleset *rs, const char *name,
                          uint64_t *version, size_t *count);
/* Is `value` (exactly, untrimmed) an entry of watchlist NAME of rs, at any
 * time (whatever its UNTIL)? */
bool fw_ruleset_list_has(const fw_ruleset *rs, const char *name, const char *value);
/* ... for an event at time ts: an entry with UNTIL T is one for ts < T. */
bool fw_ruleset_list_has_at(const fw_ruleset *rs, const char *name, const char *value,
                            int64_t ts);

fw_ruleset *fw_ruleset_ref(fw_ruleset *rs);
void fw_ruleset_unref(fw_ruleset *rs);

uint64_t fw_ruleset_version(const fw_ruleset *rs);
size_t fw_ruleset_rule_count(const fw_ruleset *rs);
const char *fw_ruleset_rule_id(const fw_ruleset *rs, size_t i);
const char *fw_ruleset_rule_severity(const fw_ruleset *rs, size_t i);
/* "live" or "shadow" (the rule's "mode"). */
const char *fw_ruleset_rule_mode(const fw_ruleset *rs, size_t i);
/* Does rs hold a rule with this id (enabled or not)? */
bool fw_ruleset_has_rule(const fw_ruleset *rs, const char *id);

/* Prints what was loaded: lists with sizes, rules with kind and summary,
 * and the cost per event type. */
void fw_ruleset_describe(const fw_ruleset *rs, FILE *out);
/* Per watchlist: entries, those with an UNTIL, how many of them are past
 * at `now` (epoch ms), the next and the last UNTIL (rules check -v). */
void fw_ruleset_describe_expiry(const fw_ruleset *rs, int64_t now, FILE *out);

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
