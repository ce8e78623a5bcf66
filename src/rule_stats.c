/* rule_stats.c — what each rule did: events that satisfied its conditions,
 * alerts, suppressed, snoozed, shadow, regex limit hits (issue 11.7).
 *
 * Owns one tally per (rule id, mode) ever seen — a rule reloaded under the
 * same id and mode keeps counting into the same tally, one whose mode
 * changed starts a second — and the Prometheus counters behind them.  The
 * counting on the event path is the pipeline's: plain integers per batch,
 * written by the one worker that parses it (stage 1) or that owns the
 * shard (stage 2), never shared (pipeline.c).  This module sums them once
 * per retired batch on the driver's thread, so no counter is touched per
 * event, no lock is taken, and the registry is looked up only when a batch
 * brings a rule set not seen before. */
#include "rule_stats.h"

#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"

struct tally {
    fw_rule_tally t;
    fw_counter *c[FW_RC_N];
};

struct fw_rulestats {
    fw_metrics *m;
    struct tally **v;
    size_t n, cap;
    const fw_ruleset *rs;     /* the set `map` is for (a reference held) */
    size_t *map;              /* rule index in rs → tally */
    uint64_t *sum;            /* a batch's counts, rule × FW_RC_N */
    size_t sum_cap;
};

static const struct {
    const char *name, *help;
} families[FW_RC_N] = {
    [FW_RC_MATCHED] = { "fraudwatch_rule_events_matched_total",
                        "Events that satisfied a rule's conditions (the event type and "
                        "where of one of its steps), by rule and mode." },
    [FW_RC_FAULTS] = { "fraudwatch_rule_regex_faults_total",
                       "Regex searches of a rule stopped by the match limit (counted as "
                       "no match), by rule and mode." },
    [FW_RC_ALERTS] = { "fraudwatch_rule_alerts_total",
                       "Times a rule fired: every alert, live, shadow or snoozed, by rule "
                       "and mode." },
    [FW_RC_SUPPRESSED] = { "fraudwatch_rule_suppressed_total",
                           "Fires withheld by a rule's suppression (no alert), by rule and "
                           "mode." },
    [FW_RC_SNOOZED] = { "fraudwatch_rule_snoozed_total",
                        "Alerts muted by a snooze (sent to the shadow output flagged "
                        "snoozed), by rule and mode." },
    [FW_RC_SHADOW] = { "fraudwatch_rule_shadow_alerts_total",
                       "Alerts sent to the shadow output (a shadow rule's, or snoozed), by "
                       "rule and mode; live warnings are alerts minus these." },
};

fw_rulestats *fw_rulestats_new(fw_metrics *m)
{
    fw_rulestats *t = fw_xcalloc(1, sizeof *t);
    t->m = m;
    return t;
}

void fw_rulestats_free(fw_rulestats *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free((char *)t->v[i]->t.rule);
        free(t->v[i]);
    }
    free(t->v);
    free(t->map);
    free(t->sum);
    fw_ruleset_unref((fw_ruleset *)t->rs);
    free(t);
}

static size_t tally_of(fw_rulestats *t, const char *id, const char *mode)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i]->t.rule, id) == 0 && strcmp(t->v[i]->t.mode, mode) == 0)
            return i;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->v = fw_xrealloc(t->v, t->cap * sizeof *t->v);
    }
    struct tally *y = fw_xcalloc(1, sizeof *y);
    y->t.rule = fw_xstrdup(id);
    y->t.mode = strcmp(mode, "shadow") == 0 ? "shadow" : "live";
    if (t->m) {
        char labels[256], esc[160];
        fw_metrics_escape_label(id, esc, sizeof esc);
        snprintf(labels, sizeof labels, "rule=\"%s\",mode=\"%s\"", esc, y->t.mode);
        for (int k = 0; k < FW_RC_N; k++)
            y->c[k] = fw_metrics_counter(t->m, families[k].name, families[k].help, labels);
    }
    t->v[t->n] = y;
    return t->n++;
}

void fw_rulestats_add(fw_rulestats *t, const fw_batch *b)
{
    const fw_ruleset *rs = fw_batch_ruleset(b);
    size_t nrules = fw_ruleset_rule_count(rs);
    if (rs != t->rs) {
        fw_ruleset_unref((fw_ruleset *)t->rs);
        t->rs = fw_ruleset_ref((fw_ruleset *)rs);
        t->map = fw_xrealloc(t->map, (nrules ? nrules : 1) * sizeof *t->map);
        for (size_t i = 0; i < nrules; i++)
            t->map[i] = tally_of(t, fw_ruleset_rule_id(rs, i), fw_ruleset_rule_mode(rs, i));
    }
    size_t n = nrules * FW_RC_N;
    if (n == 0)
        return;      /* a set without rules */
    if (n > t->sum_cap) {
        t->sum_cap = n;
        t->sum = fw_xrealloc(t->sum, n * sizeof *t->sum);
    }
    memset(t->sum, 0, n * sizeof *t->sum);
    fw_batch_rule_counts(b, t->sum);
    for (size_t i = 0; i < nrules; i++) {
        struct tally *y = t->v[t->map[i]];
        for (int k = 0; k < FW_RC_N; k++) {
            uint64_t v = t->sum[i * FW_RC_N + (size_t)k];
            if (v) {
                y->t.n[k] += v;
                fw_counter_add(y->c[k], v);
            }
        }
    }
}

size_t fw_rulestats_count(const fw_rulestats *t) { return t->n; }
const fw_rule_tally *fw_rulestats_at(const fw_rulestats *t, size_t i) { return &t->v[i]->t; }
