/* ruleset_impl.h — the inside of a compiled rule set, shared by the modules
 * that build it (rules_load.c, ruleset.c) and the ones that read it
 * (match.c, engine.c, window.c, sequence.c, alert.c).  Everything here is
 * immutable once fw_ruleset_load_*() returns. */
#ifndef FRAUDWATCH_RULESET_IMPL_H
#define FRAUDWATCH_RULESET_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "fraudwatch/event.h"
#include "fraudwatch/hash.h"
#include "fraudwatch/ruleset.h"

#define FW_WINDOW_MAX_S 604800

/* A dotted field path, split once at load time. */
typedef struct fw_path {
    char *text;      /* "payer.account" */
    char **parts;    /* {"payer", "account"} */
    uint32_t nparts;
    uint32_t slot;   /* 1 + its index among the set's distinct paths, the
                      * matcher's per-event cache of look-ups (match.c);
                      * 0: not cached */
} fw_path;

/* A watchlist: its entries are two immutable parts that rule sets share
 * (watchlist.c), so a set built for a change of a few entries of a big list
 * costs the change, not the list. */
struct fw_listbase;    /* the entries as last read whole */
struct fw_listdelta;   /* the changes since: added and removed entries */
typedef struct fw_list {
    char *name;
    uint64_t version;             /* the source's version of it (Redis); 0 from files */
    struct fw_listbase *base;
    const fw_hmap *set;           /* base's hash set, for one load less per look-up */
    struct fw_listdelta *delta;   /* NULL: none */
    size_t count;
} fw_list;

enum fw_op { FW_OP_LT, FW_OP_LE, FW_OP_GT, FW_OP_GE, FW_OP_EQ, FW_OP_NE };

/* A row of the condition-form table (cond_forms.c). */
typedef struct fw_cond_form fw_cond_form;

/* One condition.  `form` says which members mean something. */
typedef struct fw_cond {
    const fw_cond_form *form;
    fw_path path;            /* forms with a field */
    /* regex, not_regex */
    char *pattern;
    pcre2_code *re;
    bool caseless;
    uint32_t search; /* 1 + its index among the set's distinct (field,
                      * pattern, flags): the matcher's per-event cache of
                      * search results (match.c); 0: not cached */
    /* op: a number, or a string (str != NULL) */
    enum fw_op op;
    double num;
    char *str;
    size_t str_len;
    /* lists */
    const fw_list *list;
    /* any */
    struct fw_cond *any;
    uint32_t nany;
} fw_cond;

/* The kinds' codes are hashed into state signatures: never renumber
 * (rule_kinds.h has the table). */
enum fw_rule_kind { FW_RULE_PLAIN, FW_RULE_THRESHOLD, FW_RULE_SEQUENCE, FW_RULE_NKINDS };
enum fw_agg { FW_AGG_COUNT, FW_AGG_SUM, FW_AGG_DISTINCT };
enum fw_severity { FW_SEV_LOW, FW_SEV_MEDIUM, FW_SEV_HIGH, FW_SEV_CRITICAL };

/* What an event must be to count for a rule: a plain or threshold rule
 * has one step, a sequence rule two or more. */
typedef struct fw_step {
    char *event;     /* type, or "*" */
    fw_cond *where;
    uint32_t nwhere;
    fw_path key;     /* sequence steps: the field naming the person */
} fw_step;

typedef struct fw_rule {
    char *id;
    char *name;
    char *file;
    enum fw_severity severity;
    bool enabled;
    /* "mode": "shadow" (SPEC §2, Shadow rules): evaluated like a live rule,
     * its alerts flagged and sent to the shadow output.  Not part of the
     * state signature: changing a rule's mode keeps its state. */
    bool shadow;
    enum fw_rule_kind kind;

    /* every kind: the steps an event can match (the index's targets) */
    fw_step *steps;
    uint32_t nsteps;

    /* plain */
    fw_path subject;         /* nparts == 0: none */

    /* threshold */
    fw_path *group_by;
    uint32_t ngroup;
    int64_t window_ms;
    enum fw_agg agg;
    fw_path agg_field;       /* sum, distinct */
    enum fw_op agg_op;
    double limit;
    int64_t limit_micro;     /* sum: limit in micro-units */

    /* sequence */
    int64_t within_ms;

    /* what the alert tells the officer (SPEC §3); none is part of the
     * state signature */
    char *description;       /* NULL: none */
    char *action;            /* NULL: none */
    char **tags;
    uint32_t ntags;
    fw_path *alert_fields;   /* nalert_fields == 0: the event's top-level scalars */
    uint32_t nalert_fields;
    uint64_t *alert_fields_h;  /* each path's first part hashed (alert_fields.c) */

    int64_t suppress_ms;
    bool stateful;           /* needs per-key state in a shard */
    /* Identity of the rule's window/sequence state: equal signatures across
     * two rule sets mean the state carries over (SPEC §4). */
    uint64_t state_sig;
} fw_rule;

/* Rules (and sequence steps) to try for one event type, in rule order and,
 * within a sequence rule, from the last step to the first. */
typedef struct fw_target {
    uint32_t rule;
    uint32_t step;
} fw_target;

typedef struct fw_type_index {
    char *type;          /* NULL for the wildcard-only list */
    fw_target *targets;
    uint32_t ntargets;
} fw_type_index;

struct fw_ruleset {
    atomic_uint refs;
    uint64_t version;
    fw_rule *rules;
    uint32_t nrules;
    fw_list *lists;
    uint32_t nlists;
    fw_type_index *types;    /* one per event type named by a rule */
    uint32_t ntypes;
    fw_type_index other;     /* targets for types no rule names ("*" only) */
    uint32_t npaths;         /* distinct field paths: fw_path.slot <= npaths */
    uint32_t nsearches;      /* distinct regex searches: fw_cond.search <= nsearches */
    /* Per distinct search, the literal scan of its field that can rule it
     * out (regex_literals.c, match.c): mask 0 when none can. */
    struct fw_search_filter {
        uint32_t scan;
        uint64_t mask;
    } *filters;              /* nsearches entries, or NULL */
    struct fw_litscan **scans;
    uint32_t nscans;
};

/* Does `a OP b` hold, given cmp = (a > b) - (a < b)?  One definition for
 * conditions (doubles) and threshold limits (doubles or exact sums). */
static inline bool fw_op_holds(enum fw_op op, int cmp)
{
    switch (op) {
    case FW_OP_LT: return cmp < 0;
    case FW_OP_LE: return cmp <= 0;
    case FW_OP_GT: return cmp > 0;
    case FW_OP_GE: return cmp >= 0;
    case FW_OP_EQ: return cmp == 0;
    case FW_OP_NE: return cmp != 0;
    }
    return false;
}

/* Look-up of a field by path; NULL when absent. */
static inline const cJSON *fw_path_get(const cJSON *root, const fw_path *p)
{
    const cJSON *v = root;
    for (uint32_t i = 0; i < p->nparts && v; i++) {
        if (!cJSON_IsObject(v))
            return NULL;
        v = fw_member(v, p->parts[i]);
    }
    return v;
}

/* Is s an entry of l for an event at ts (ts < its UNTIL)?  INT64_MIN: an
 * entry at any time. */
bool fw_list_contains(const fw_list *l, const char *s, size_t len, int64_t ts);
/* Is s an entry of l at any time; *until its UNTIL (FW_UNTIL_NEVER). */
bool fw_list_entry_until(const fw_list *l, const char *s, size_t len, int64_t *until);
/* Entries with an UNTIL, of them the ones with UNTIL <= now, the earliest
 * UNTIL after now (FW_UNTIL_NEVER: none) and the latest (rules check). */
typedef struct fw_list_expiry_stats {
    size_t with_until, expired;
    int64_t next_until, last_until;
} fw_list_expiry_stats;
void fw_list_expiry(const fw_list *l, int64_t now, fw_list_expiry_stats *st);
/* watchlist.c: `to` shares the parts of `from` (a new set keeping a list
 * unchanged); release drops a set's hold on them. */
void fw_list_share(const fw_list *from, fw_list *to);
void fw_list_release(fw_list *l);
size_t fw_list_delta_size(const fw_list *l);
/* A builder sized for a .list text; put adds one value already checked
 * (fw_list_entry_ok); finish moves the entries into `out` (base, delta,
 * count; name and version are the caller's) and empties the builder. */
fw_listbuild *fw_listbuild_sized(size_t entries, size_t bytes);
void fw_listbuild_put(fw_listbuild *b, const char *s, size_t n, int64_t until);
void fw_listbuild_finish(fw_listbuild *b, fw_list *out);
/* Frees n conditions and the array (ruleset.c). */
void fw_conds_free(fw_cond *c, uint32_t n);
/* Builds the per-type index (rules_load.c calls it on a valid set). */
void fw_ruleset_build_index(fw_ruleset *rs);
const fw_type_index *fw_ruleset_targets(const fw_ruleset *rs, const char *type);
const char *fw_severity_name(enum fw_severity s);
const char *fw_op_name(enum fw_op op);

#endif
