/* ruleset.c — life cycle and read-only views of a compiled rule set.
 *
 * Owns: the reference count (a set is shared by every worker that has a
 * batch in flight under it, and freed by whoever drops the last reference),
 * the per-event-type index that tells the matcher which rules and sequence
 * steps an event can touch, read-only views (rules, watchlists), and the
 * human-readable description printed by `fraudwatch rules check`.  A
 * set's watchlists hold parts shared with other sets (watchlist.c): freeing
 * a set drops its references to them. */
#include "cond_forms.h"
#include "rule_kinds.h"
#include "regex_literals.h"
#include "ruleset_impl.h"

#include <stdlib.h>
#include <string.h>

static const char *const severity_names[] = { "low", "medium", "high",
                                              "critical" };

const char *fw_severity_name(enum fw_severity s) { return severity_names[s]; }

const char *fw_op_name(enum fw_op op)
{
    static const char *const names[] = { "<", "<=", ">", ">=", "==", "!=" };
    return names[op];
}

static void path_free(fw_path *p)
{
    for (uint32_t i = 0; i < p->nparts; i++)
        free(p->parts[i]);
    free(p->parts);
    free(p->text);
}

void fw_conds_free(fw_cond *c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        path_free(&c[i].path);
        if (c[i].form)
            c[i].form->free(&c[i]);
    }
    free(c);
}

static void rule_free(fw_rule *r)
{
    free(r->id);
    free(r->name);
    free(r->file);
    path_free(&r->subject);
    for (uint32_t i = 0; i < r->ngroup; i++)
        path_free(&r->group_by[i]);
    free(r->group_by);
    path_free(&r->agg_field);
    for (uint32_t i = 0; i < r->nsteps; i++) {
        free(r->steps[i].event);
        fw_conds_free(r->steps[i].where, r->steps[i].nwhere);
        path_free(&r->steps[i].key);
    }
    free(r->steps);
    free(r->description);
    free(r->action);
    for (uint32_t i = 0; i < r->ntags; i++)
        free(r->tags[i]);
    free(r->tags);
    for (uint32_t i = 0; i < r->nalert_fields; i++)
        path_free(&r->alert_fields[i]);
    free(r->alert_fields);
    free(r->alert_fields_h);
}

static void ruleset_free(fw_ruleset *rs)
{
    for (uint32_t i = 0; i < rs->nrules; i++)
        rule_free(&rs->rules[i]);
    free(rs->rules);
    for (uint32_t i = 0; i < rs->nlists; i++)
        fw_list_release(&rs->lists[i]);   /* its parts may live on in other sets */
    free(rs->lists);
    for (uint32_t i = 0; i < rs->ntypes; i++) {
        free(rs->types[i].type);
        free(rs->types[i].targets);
    }
    free(rs->types);
    free(rs->other.targets);
    free(rs->filters);
    for (uint32_t i = 0; i < rs->nscans; i++)
        fw_litscan_free(rs->scans[i]);
    free(rs->scans);
    free(rs);
}

fw_ruleset *fw_ruleset_ref(fw_ruleset *rs)
{
    atomic_fetch_add_explicit(&rs->refs, 1, memory_order_relaxed);
    return rs;
}

void fw_ruleset_unref(fw_ruleset *rs)
{
    if (rs && atomic_fetch_sub_explicit(&rs->refs, 1, memory_order_acq_rel) == 1)
        ruleset_free(rs);
}

uint64_t fw_ruleset_version(const fw_ruleset *rs) { return rs->version; }
size_t fw_ruleset_rule_count(const fw_ruleset *rs) { return rs->nrules; }
const char *fw_ruleset_rule_id(const fw_ruleset *rs, size_t i)
{
    return rs->rules[i].id;
}

const char *fw_ruleset_rule_severity(const fw_ruleset *rs, size_t i)
{
    return fw_severity_name(rs->rules[i].severity);
}

const char *fw_ruleset_rule_mode(const fw_ruleset *rs, size_t i)
{
    return rs->rules[i].shadow ? "shadow" : "live";
}

bool fw_ruleset_has_rule(const fw_ruleset *rs, const char *id)
{
    for (uint32_t i = 0; i < rs->nrules; i++)
        if (strcmp(rs->rules[i].id, id) == 0)
            return true;
    return false;
}

static const fw_list *list_named(const fw_ruleset *rs, const char *name)
{
    for (uint32_t i = 0; i < rs->nlists; i++)
        if (strcmp(rs->lists[i].name, name) == 0)
            return &rs->lists[i];
    return NULL;
}

bool fw_ruleset_list_info(const fw_ruleset *rs, const char *name,
                          uint64_t *version, size_t *count)
{
    const fw_list *l = list_named(rs, name);
    if (!l)
        return false;
    if (version)
        *version = l->version;
    if (count)
        *count = l->count;
    return true;
}

bool fw_ruleset_list_has(const fw_ruleset *rs, const char *name, const char *value)
{
    const fw_list *l = list_named(rs, name);
    return l && fw_list_contains(l, value, strlen(value), INT64_MIN);
}

bool fw_ruleset_list_has_at(const fw_ruleset *rs, const char *name, const char *value,
                            int64_t ts)
{
    const fw_list *l = list_named(rs, name);
    return l && fw_list_contains(l, value, strlen(value), ts);
}

static bool type_matches(const char *want, const char *type)
{
    return strcmp(want, "*") == 0 || (type && strcmp(want, type) == 0);
}

/* Targets for events of `type` (NULL: a type no rule names). */
static void build_targets(const fw_ruleset *rs, const char *type,
                          fw_type_index *ix)
{
    uint32_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        n = 0;
        for (uint32_t r = 0; r < rs->nrules; r++) {
            const fw_rule *rule = &rs->rules[r];
            if (!rule->enabled)
                continue;
            /* Last step first: one event never advances a chain twice. */
            for (uint32_t s = rule->nsteps; s-- > 0;) {
                if (type_matches(rule->steps[s].event, type)) {
                    if (pass)
                        ix->targets[n] = (fw_target){ r, s };
                    n++;
                }
            }
        }
        if (!pass)
            ix->targets = calloc(n ? n : 1, sizeof *ix->targets);
    }
    ix->ntargets = n;
    ix->type = type ? strdup(type) : NULL;
}

void fw_ruleset_build_index(fw_ruleset *rs)
{
    /* Every distinct event type some rule or step names. */
    size_t cap = 8;
    const char **types = malloc(cap * sizeof *types);
    uint32_t nt = 0;
    for (uint32_t r = 0; r < rs->nrules; r++) {
        const fw_rule *rule = &rs->rules[r];
        for (uint32_t s = 0; s < rule->nsteps; s++) {
            const char *t = rule->steps[s].event;
            if (strcmp(t, "*") == 0)
                continue;
            bool seen = false;
            for (uint32_t i = 0; i < nt; i++)
                if (strcmp(types[i], t) == 0)
                    seen = true;
            if (seen)
                continue;
            if (nt == cap)
                types = realloc(types, (cap *= 2) * sizeof *types);
            types[nt++] = t;
        }
    }
    rs->types = calloc(nt ? nt : 1, sizeof *rs->types);
    rs->ntypes = nt;
    for (uint32_t i = 0; i < nt; i++)
        build_targets(rs, types[i], &rs->types[i]);
    build_targets(rs, NULL, &rs->other);
    free(types);
}

const fw_type_index *fw_ruleset_targets(const fw_ruleset *rs, const char *type)
{
    for (uint32_t i = 0; i < rs->ntypes; i++)
        if (rs->types[i].type[0] == type[0] && strcmp(rs->types[i].type, type) == 0)
            return &rs->types[i];
    return &rs->other;
}


/* ---- cost ------------------------------------------------------------------ */

/* Regex searches the conditions may run on one event (each regex and
 * not_regex, inside "any" too): the unit of per-event work that grows with
 * a rule set (issue 10: 5 000 regex rules on calls gave 6 700 events/s). */
static uint32_t regex_searches(const fw_cond *c, uint32_t n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        k += (c[i].re ? 1 : 0) + regex_searches(c[i].any, c[i].nany);
    return k;
}

static void index_cost(const fw_ruleset *rs, const fw_type_index *ix, fw_ruleset_cost *c)
{
    c->steps = ix->ntargets;
    c->conditions = 0;
    c->regexes = 0;
    for (uint32_t i = 0; i < ix->ntargets; i++) {
        const fw_step *st = &rs->rules[ix->targets[i].rule].steps[ix->targets[i].step];
        c->conditions += st->nwhere;
        c->regexes += regex_searches(st->where, st->nwhere);
    }
}

size_t fw_ruleset_cost_count(const fw_ruleset *rs) { return rs->ntypes + 1; }

void fw_ruleset_cost_at(const fw_ruleset *rs, size_t i, fw_ruleset_cost *c)
{
    const fw_type_index *ix = i < rs->ntypes ? &rs->types[i] : &rs->other;
    c->type = ix->type;
    index_cost(rs, ix, c);
}

static _Atomic uint32_t max_regexes = FW_DEFAULT_MAX_REGEX_PER_EVENT;

void fw_ruleset_set_max_regexes(uint32_t n) { max_regexes = n; }
uint32_t fw_ruleset_max_regexes(void) { return max_regexes; }

void fw_ruleset_describe(const fw_ruleset *rs, FILE *out)
{
    fprintf(out, "rule set version %llu: %u rules, %u watchlists\n",
            (unsigned long long)rs->version, rs->nrules, rs->nlists);
    for (uint32_t i = 0; i < rs->nlists; i++)
        fprintf(out, "  list %-24s %zu entries\n", rs->lists[i].name,
                rs->lists[i].count);
    for (uint32_t i = 0; i < rs->nrules; i++) {
        const fw_rule *r = &rs->rules[i];
        fprintf(out, "  %-8s %-8s %-9s", r->id, fw_severity_name(r->severity),
                !r->enabled ? "disabled" : r->shadow ? "shadow" : "");
        fw_rule_kind(r)->describe(r, out);
        fprintf(out, " suppress=%llds  # %s\n", (long long)(r->suppress_ms / 1000),
                r->name);
    }
    fprintf(out, "cost per event (rules and steps tried, conditions, regex searches; "
                 "limit %u regex searches):\n", fw_ruleset_max_regexes());
    for (size_t i = 0; i < fw_ruleset_cost_count(rs); i++) {
        fw_ruleset_cost c;
        fw_ruleset_cost_at(rs, i, &c);
        fprintf(out, "  %-16s %u steps, %u conditions, %u regex searches\n",
                c.type ? c.type : "(other types)", c.steps, c.conditions, c.regexes);
    }
}
