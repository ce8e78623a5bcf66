/* compare.c — `fraudwatch replay --compare OLD_DIR NEW_DIR FILE`: a backtest
 * of a rule change over recorded events.
 *
 * Owns the compare loop, the tally per rule and the report (text or JSON;
 * docs/backtest.md).  Shape: ONE pass over the input, TWO pipelines.  The
 * file is read once, through the same source as `replay` (source_file.c,
 * the driver's input seam), and every message is added to a batch of each
 * pipeline — one matched under the old rule set, one under the new — which
 * are cut at the same message (same batch limits, same bytes) and submitted
 * together.  Both pipelines work at once (their own worker threads, their
 * own key state, so a rule present in both sets with the same id keeps two
 * independent windows), and the feeder retires them in pairs: batch k of
 * the old set next to batch k of the new one, so the alerts of one event
 * sit side by side and are matched by alert_id without any table of the
 * whole run.  A rule fires at most once per event, and alert_id is a
 * function of (rule_id, subject, event_id), so "the same alert in both" is
 * exactly "the same alert_id on the same event"; the rest of the alert line
 * (fields, flags added by later versions) never enters the comparison.
 *
 * Why not one pipeline over a merged rule set, parsing each event once?  A
 * rule kept in both sets has the same id in both, and the state store keys
 * a rule's state by its id-derived signature, so the two copies would
 * share (and corrupt) each other's windows; keeping them apart means a
 * pipeline that matches under two sets into two state stores — changes in
 * the engine's core for one command.  So each pipeline parses the event
 * itself: the input is read and split once, the JSON is parsed twice (on
 * two cores at once when there are two).  bench/README.md ("Backtest
 * compare") has the measured cost against plain `replay`.
 *
 * The report is built in memory and written in one piece at the end: a
 * failure (a rule set or the truth file refused, the input unreadable)
 * prints nothing on `out`. */
#include "fraudwatch/compare.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/buf.h"
#include "fraudwatch/clock.h"
#include "fraudwatch/hash.h"
#include "fraudwatch/driver.h"
#include "fraudwatch/pipeline.h"
#include "fraudwatch/rulefiles.h"
#include "fraudwatch/ruleset.h"
#include "ruleset_impl.h"
#include "source_file.h"
#include "truth.h"

enum { BEFORE = 0, AFTER = 1 };
enum { EX_BOTH = 0, EX_ONLY_BEFORE = 1, EX_ONLY_AFTER = 2 };
static const char *const ex_name[3] = { "both", "only_before", "only_after" };

struct examples {
    char **line;               /* without the newline */
    uint32_t n;
};

struct cmp_rule {
    const char *id;            /* owned by a rule set */
    const char *name[2];       /* NULL: not in that set */
    bool in[2];
    bool changed;              /* in both, with a different definition */
    uint64_t alerts[2];
    uint64_t both, only[2];
    struct examples ex[3];
    fw_hmap *subjects;         /* struct subj: which sets alerted on each subject */
    uint64_t subj_both, subj_only[2];
    /* truth */
    uint64_t fraud;            /* fraud entries attributed to the rule */
    uint64_t tp[2], fp[2], unlabelled[2];
};

struct side {
    const char *dir;
    fw_ruleset *rs;
    fw_pipeline *p;
    uint32_t *map;             /* rule index in the set -> cmp_rule index */
    uint64_t faults, evictions;
};

struct galert {
    fw_alert_view v;
    const char *id;            /* its alert_id, in v.json */
    size_t idlen;
};

typedef struct cmp {
    const fw_compare_opts *o;
    struct side s[2];
    struct cmp_rule *rules;
    size_t nrules;
    fw_truth *truth;
    int32_t *attr;             /* per truth entry: the cmp_rule its alert belongs to, or -1 */
    uint64_t malformed;
    /* alerts of one event, per side (reused) */
    struct galert *grp[2];
    size_t ngrp[2], capgrp[2];
    bool *matched;
    size_t capmatched;
    /* watchlists that differ, by name */
    fw_buf lists_added, lists_removed, lists_changed;   /* JSON string lists, comma-separated */
} cmp;

/* ---- the alert_id of an alert line ----------------------------------------- */

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at an opening quote: just past the closing one (e if unterminated). */
static const char *skip_string(const char *p, const char *e)
{
    for (p++; p < e; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return e;
}

static const char *skip_value(const char *p, const char *e)
{
    if (p < e && *p == '"')
        return skip_string(p, e);
    if (p < e && (*p == '{' || *p == '[')) {
        int depth = 0;
        while (p < e) {
            if (*p == '"') {
                p = skip_string(p, e);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return e;
    }
    while (p < e && *p != ',' && *p != '}')
        p++;
    return p;
}

/* The value of the top-level string member `alert_id` of an alert line
 * (members of nested objects — an event field of that name in `fields` —
 * are skipped, not mistaken for it). */
static bool alert_id_of(const char *j, size_t n, const char **id, size_t *idlen)
{
    static const char key[] = "\"alert_id\"";
    const char *p = j, *e = j + n;
    p = skip_ws(p, e);
    if (p >= e || *p != '{')
        return false;
    p++;
    for (;;) {
        p = skip_ws(p, e);
        if (p >= e || *p != '"')
            return false;
        const char *k = p;
        p = skip_string(p, e);
        bool hit = (size_t)(p - k) == sizeof key - 1 && memcmp(k, key, sizeof key - 1) == 0;
        p = skip_ws(p, e);
        if (p >= e || *p != ':')
            return false;
        p = skip_ws(p + 1, e);
        const char *v = p;
        p = skip_value(p, e);
        if (hit) {
            if (*v != '"' || p - v < 2)
                return false;
            *id = v + 1;
            *idlen = (size_t)(p - v - 2);
            return true;
        }
        p = skip_ws(p, e);
        if (p >= e || *p != ',')
            return false;
        p++;
    }
}

/* ---- the rule table ------------------------------------------------------------ */

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct cmp_rule *)a)->id, ((const struct cmp_rule *)b)->id);
}

static long find_rule(const cmp *c, const char *id)
{
    size_t lo = 0, hi = c->nrules;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int d = strcmp(c->rules[mid].id, id);
        if (d == 0)
            return (long)mid;
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void build_rules(cmp *c)
{
    size_t cap = (size_t)c->s[0].rs->nrules + c->s[1].rs->nrules;
    c->rules = fw_xcalloc(cap ? cap : 1, sizeof *c->rules);
    for (int side = 0; side < 2; side++) {
        const fw_ruleset *rs = c->s[side].rs;
        for (uint32_t i = 0; i < rs->nrules; i++)
            c->rules[c->nrules++].id = rs->rules[i].id;
    }
    qsort(c->rules, c->nrules, sizeof *c->rules, by_id);
    size_t n = 0;            /* an id in both sets once */
    for (size_t i = 0; i < c->nrules; i++)
        if (n == 0 || strcmp(c->rules[n - 1].id, c->rules[i].id) != 0)
            c->rules[n++] = c->rules[i];
    c->nrules = n;
    for (int side = 0; side < 2; side++) {
        const fw_ruleset *rs = c->s[side].rs;
        c->s[side].map = fw_xcalloc(rs->nrules ? rs->nrules : 1, sizeof *c->s[side].map);
        for (uint32_t i = 0; i < rs->nrules; i++) {
            long k = find_rule(c, rs->rules[i].id);
            c->s[side].map[i] = (uint32_t)k;
            c->rules[k].in[side] = true;
            c->rules[k].name[side] = rs->rules[i].name;
        }
    }
}

/* The rule set as written: rule id -> its JSON object, and the watchlists'
 * text, from the directory's files (already validated by the loader). */
struct defs {
    fw_rulefile *files;
    size_t nfiles;
    cJSON **docs;
};

static int read_defs(const char *dir, struct defs *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (fw_rulefiles_read_dir(dir, &d->files, &d->nfiles, err, errlen) != 0)
        return -1;
    d->docs = fw_xcalloc(d->nfiles ? d->nfiles : 1, sizeof *d->docs);
    for (size_t i = 0; i < d->nfiles; i++)
        if (fw_rulefiles_is_rules(d->files[i].name))
            d->docs[i] = cJSON_ParseWithLength(d->files[i].data, d->files[i].len);
    return 0;
}

static void free_defs(struct defs *d)
{
    for (size_t i = 0; i < d->nfiles; i++)
        cJSON_Delete(d->docs[i]);
    free(d->docs);
    fw_rulefiles_free(d->files, d->nfiles);
}

static const cJSON *def_of(const struct defs *d, const char *id)
{
    for (size_t i = 0; i < d->nfiles; i++) {
        const cJSON *arr = d->docs[i];
        if (cJSON_IsObject(arr))
            arr = cJSON_GetObjectItemCaseSensitive(arr, "rules");
        const cJSON *r;
        cJSON_ArrayForEach(r, arr) {
            const cJSON *rid = cJSON_GetObjectItemCaseSensitive(r, "id");
            if (cJSON_IsString(rid) && strcmp(rid->valuestring, id) == 0)
                return r;
        }
    }
    return NULL;
}

static const fw_rulefile *list_of(const struct defs *d, const char *name)
{
    for (size_t i = 0; i < d->nfiles; i++)
        if (fw_rulefiles_is_list(d->files[i].name) && strcmp(d->files[i].name, name) == 0)
            return &d->files[i];
    return NULL;
}

static void add_name(fw_buf *b, const char *file)
{
    size_t n = strlen(file) - strlen(".list");
    if (b->len)
        fw_buf_putc(b, ',');
    fw_buf_json_str(b, file, n, SIZE_MAX);
}

/* Which rules kept their id but changed their definition (their JSON
 * object, members in any order), and which watchlists differ. */
static int mark_changes(cmp *c, char *err, size_t errlen)
{
    struct defs d[2];
    if (read_defs(c->s[BEFORE].dir, &d[BEFORE], err, errlen) != 0)
        return -1;
    if (read_defs(c->s[AFTER].dir, &d[AFTER], err, errlen) != 0) {
        free_defs(&d[BEFORE]);
        return -1;
    }
    for (size_t i = 0; i < c->nrules; i++) {
        struct cmp_rule *r = &c->rules[i];
        if (r->in[BEFORE] && r->in[AFTER]) {
            const cJSON *a = def_of(&d[BEFORE], r->id), *b = def_of(&d[AFTER], r->id);
            r->changed = !a || !b || !cJSON_Compare(a, b, true);
        }
    }
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < d[side].nfiles; i++) {
            const fw_rulefile *f = &d[side].files[i];
            if (!fw_rulefiles_is_list(f->name))
                continue;
            const fw_rulefile *o = list_of(&d[!side], f->name);
            if (!o)
                add_name(side == BEFORE ? &c->lists_removed : &c->lists_added, f->name);
            else if (side == BEFORE && (o->len != f->len || memcmp(o->data, f->data, f->len)))
                add_name(&c->lists_changed, f->name);
        }
    free_defs(&d[BEFORE]);
    free_defs(&d[AFTER]);
    return 0;
}

/* ---- tally ---------------------------------------------------------------------- */

static void keep_example(cmp *c, struct cmp_rule *r, int cat, const fw_alert_view *v)
{
    struct examples *x = &r->ex[cat];
    if (x->n >= c->o->examples)
        return;
    if (!x->line)
        x->line = fw_xcalloc(c->o->examples, sizeof *x->line);
    size_t len = v->len;
    while (len && (v->json[len - 1] == '\n' || v->json[len - 1] == '\r'))
        len--;
    x->line[x->n++] = fw_xstrndup(v->json, len);
}

struct subj {
    uint8_t sides;             /* bit 1 << BEFORE, 1 << AFTER */
    size_t len;
    char s[];
};

static bool subj_eq(const void *item, const void *key, size_t len)
{
    const struct subj *x = item;
    return x->len == len && memcmp(x->s, key, len) == 0;
}

/* Which sets alerted on a subject (any event): a firing that moved to
 * another event of the same subject is "only before" + "only after" by
 * alert_id, but the subject is in both. */
static void note_subject(struct cmp_rule *r, int side, const fw_alert_view *v)
{
    if (!r->subjects && !(r->subjects = fw_hmap_new(64)))
        fw_oom();
    uint64_t h = fw_hash64(v->subject, v->subject_len, 0);
    struct subj *x = fw_hmap_find(r->subjects, h, v->subject, v->subject_len, subj_eq);
    if (!x) {
        x = fw_xmalloc(sizeof *x + v->subject_len + 1);
        x->sides = 0;
        x->len = v->subject_len;
        memcpy(x->s, v->subject, v->subject_len);
        x->s[x->len] = '\0';
        if (fw_hmap_insert(r->subjects, h, x) != 0)
            fw_oom();
    }
    x->sides |= (uint8_t)(1u << side);
}

/* Counts the subjects per category and frees the map. */
static void count_subjects(struct cmp_rule *r)
{
    if (!r->subjects)
        return;
    size_t pos = 0;
    struct subj *x;
    while ((x = fw_hmap_next(r->subjects, &pos))) {
        if (x->sides == 3)
            r->subj_both++;
        else
            r->subj_only[x->sides == 1 ? BEFORE : AFTER]++;
        free(x);
    }
    fw_hmap_free(r->subjects);
    r->subjects = NULL;
}

static void count_truth(cmp *c, int side, uint32_t ri, const char *id, size_t idlen)
{
    if (!c->truth)
        return;
    struct cmp_rule *r = &c->rules[ri];
    long e = fw_truth_find(c->truth, id, idlen);
    if (e < 0) {
        r->unlabelled[side]++;
        return;
    }
    c->attr[e] = (int32_t)ri;
    if (fw_truth_at(c->truth, (size_t)e)->fraud)
        r->tp[side]++;
    else
        r->fp[side]++;
}

static void group(cmp *c, int side, const fw_alert_view *v)
{
    if (c->ngrp[side] == c->capgrp[side]) {
        c->capgrp[side] = c->capgrp[side] ? c->capgrp[side] * 2 : 16;
        c->grp[side] = fw_xrealloc(c->grp[side], c->capgrp[side] * sizeof *c->grp[side]);
    }
    struct galert *g = &c->grp[side][c->ngrp[side]++];
    g->v = *v;
    if (!alert_id_of(v->json, v->len, &g->id, &g->idlen)) {
        g->id = NULL;       /* not expected: every alert line has one */
        g->idlen = 0;
    }
}

/* The alerts both sets gave on one event, matched by alert_id. */
static void compare_event(cmp *c)
{
    size_t na = c->ngrp[BEFORE], nb = c->ngrp[AFTER];
    if (nb > c->capmatched) {
        c->capmatched = nb * 2;
        c->matched = fw_xrealloc(c->matched, c->capmatched * sizeof *c->matched);
    }
    if (nb)
        memset(c->matched, 0, nb * sizeof *c->matched);
    for (size_t i = 0; i < na; i++) {
        const struct galert *a = &c->grp[BEFORE][i];
        uint32_t ri = c->s[BEFORE].map[a->v.rule];
        struct cmp_rule *r = &c->rules[ri];
        r->alerts[BEFORE]++;
        note_subject(r, BEFORE, &a->v);
        if (a->id)
            count_truth(c, BEFORE, ri, a->id, a->idlen);
        size_t hit = nb;
        for (size_t j = 0; j < nb && a->id; j++) {
            const struct galert *b = &c->grp[AFTER][j];
            if (!c->matched[j] && b->id && b->idlen == a->idlen &&
                memcmp(b->id, a->id, a->idlen) == 0) {
                hit = j;
                break;
            }
        }
        if (hit < nb) {
            c->matched[hit] = true;
            r->both++;
            keep_example(c, r, EX_BOTH, &c->grp[AFTER][hit].v);
        } else {
            r->only[BEFORE]++;
            keep_example(c, r, EX_ONLY_BEFORE, &a->v);
        }
    }
    for (size_t j = 0; j < nb; j++) {
        const struct galert *b = &c->grp[AFTER][j];
        uint32_t ri = c->s[AFTER].map[b->v.rule];
        struct cmp_rule *r = &c->rules[ri];
        r->alerts[AFTER]++;
        note_subject(r, AFTER, &b->v);
        if (b->id)
            count_truth(c, AFTER, ri, b->id, b->idlen);
        if (!c->matched[j]) {
            r->only[AFTER]++;
            keep_example(c, r, EX_ONLY_AFTER, &b->v);
        }
    }
    c->ngrp[BEFORE] = c->ngrp[AFTER] = 0;
}

/* Batch k of each set: the same messages. */
static void compare_batches(cmp *c, fw_batch *a, fw_batch *b)
{
    fw_alert_iter it[2];
    fw_alert_view v[2];
    bool has[2];
    fw_batch *bt[2] = { a, b };
    for (int s = 0; s < 2; s++) {
        fw_batch_alerts_begin(bt[s], &it[s]);
        has[s] = fw_batch_alerts_next(bt[s], &it[s], &v[s]);
    }
    while (has[0] || has[1]) {
        uint32_t seq = UINT32_MAX;
        for (int s = 0; s < 2; s++)
            if (has[s] && v[s].seq < seq)
                seq = v[s].seq;
        for (int s = 0; s < 2; s++)
            while (has[s] && v[s].seq == seq) {
                group(c, s, &v[s]);
                has[s] = fw_batch_alerts_next(bt[s], &it[s], &v[s]);
            }
        compare_event(c);
    }
    /* Malformed lines: the same in both (same bytes, same checks). */
    for (uint32_t i = 0; i < fw_batch_malformed_count(a); i++) {
        uint32_t seq;
        const char *reason;
        fw_batch_malformed(a, i, &seq, &reason);
        if (++c->malformed <= c->o->max_reported)
            fprintf(c->o->log, "fraudwatch: line %llu: malformed event: %s\n",
                    (unsigned long long)fw_batch_tag(a, seq), reason);
    }
    for (int s = 0; s < 2; s++) {
        c->s[s].faults += fw_batch_faults(bt[s]);
        c->s[s].evictions += fw_batch_evictions(bt[s]);
    }
}

/* Retires batch k of both sets (the oldest in flight); false when none
 * is (or, !wait, the old set's is not finished). */
static bool retire_pair(cmp *c, bool wait)
{
    fw_batch *a = fw_pipeline_retire(c->s[BEFORE].p, wait);
    if (!a)
        return false;
    fw_batch *b = fw_pipeline_retire(c->s[AFTER].p, true);
    compare_batches(c, a, b);
    fw_pipeline_recycle(c->s[BEFORE].p, a);
    fw_pipeline_recycle(c->s[AFTER].p, b);
    return true;
}

/* ---- the report ------------------------------------------------------------------- */

static void ratio_text(fw_buf *b, uint64_t num, uint64_t den)
{
    if (den)
        fw_buf_printf(b, "%9.3f", (double)num / (double)den);
    else
        fw_buf_printf(b, "%9s", "-");
}

static void ratio_json(fw_buf *b, uint64_t num, uint64_t den)
{
    if (den)
        fw_buf_printf(b, "%.6g", (double)num / (double)den);
    else
        fw_buf_puts(b, "null");
}

static const char *status_of(const struct cmp_rule *r)
{
    if (!r->in[BEFORE])
        return "added";
    if (!r->in[AFTER])
        return "removed";
    return r->changed ? "changed" : "unchanged";
}

static const char *name_of(const struct cmp_rule *r)
{
    return r->name[AFTER] ? r->name[AFTER] : r->name[BEFORE];
}

struct truth_totals {
    uint64_t fraud, not_fraud, unmatched, other_rules;
};

static void attribute_truth(cmp *c, struct truth_totals *tt)
{
    memset(tt, 0, sizeof *tt);
    if (!c->truth)
        return;
    for (size_t i = 0; i < fw_truth_count(c->truth); i++) {
        const fw_truth_entry *e = fw_truth_at(c->truth, i);
        if (!e->fraud) {
            tt->not_fraud++;
            continue;
        }
        tt->fraud++;
        long ri = c->attr[i];
        if (e->rule) {
            ri = find_rule(c, e->rule);
            if (ri < 0) {
                tt->other_rules++;
                continue;
            }
        } else if (ri < 0) {
            tt->unmatched++;
            continue;
        }
        c->rules[ri].fraud++;
    }
}

static void lists_text(fw_buf *b, const char *what, const fw_buf *names)
{
    if (!names->len)
        return;
    fw_buf_printf(b, "watchlists %s: ", what);
    /* the names are JSON strings: print them without the quotes */
    for (size_t i = 0; i < names->len; i++)
        if (names->p[i] == ',')
            fw_buf_puts(b, ", ");
        else if (names->p[i] != '"')
            fw_buf_putc(b, names->p[i]);
    fw_buf_putc(b, '\n');
}

static void report_text(cmp *c, fw_buf *b, uint64_t events, const struct truth_totals *tt)
{
    const fw_compare_opts *o = c->o;
    uint64_t tot[2] = { 0, 0 }, both = 0, only[2] = { 0, 0 };
    for (size_t i = 0; i < c->nrules; i++) {
        const struct cmp_rule *r = &c->rules[i];
        for (int s = 0; s < 2; s++) {
            tot[s] += r->alerts[s];
            only[s] += r->only[s];
        }
        both += r->both;
    }
    fw_buf_printf(b, "before: %s (%u rules)\n", o->before_dir, c->s[BEFORE].rs->nrules);
    fw_buf_printf(b, "after:  %s (%u rules)\n", o->after_dir, c->s[AFTER].rs->nrules);
    lists_text(b, "added", &c->lists_added);
    lists_text(b, "removed", &c->lists_removed);
    lists_text(b, "changed", &c->lists_changed);
    fw_buf_printf(b, "events: %llu (%llu malformed)\n", (unsigned long long)events,
                  (unsigned long long)c->malformed);
    fw_buf_printf(b, "alerts: before %llu, after %llu; in both %llu, only before %llu, "
                     "only after %llu\n\n",
                  (unsigned long long)tot[0], (unsigned long long)tot[1],
                  (unsigned long long)both, (unsigned long long)only[0],
                  (unsigned long long)only[1]);
    fw_buf_printf(b, "%-16s %-9s %8s %8s %8s %11s %10s\n", "rule", "status", "before", "after",
                  "both", "only_before", "only_after");
    for (size_t i = 0; i < c->nrules; i++) {
        const struct cmp_rule *r = &c->rules[i];
        fw_buf_printf(b, "%-16s %-9s %8llu %8llu %8llu %11llu %10llu\n", r->id, status_of(r),
                      (unsigned long long)r->alerts[0], (unsigned long long)r->alerts[1],
                      (unsigned long long)r->both, (unsigned long long)r->only[0],
                      (unsigned long long)r->only[1]);
    }
    if (c->truth) {
        fw_buf_printf(b, "\ntruth: %s: %llu fraud, %llu not_fraud", o->truth,
                      (unsigned long long)tt->fraud, (unsigned long long)tt->not_fraud);
        if (tt->unmatched)
            fw_buf_printf(b, "; %llu fraud by alert_id that neither set alerted on "
                             "(no rule to attribute them to)",
                          (unsigned long long)tt->unmatched);
        if (tt->other_rules)
            fw_buf_printf(b, "; %llu fraud naming a rule in neither set",
                          (unsigned long long)tt->other_rules);
        fw_buf_puts(b, "\n");
        fw_buf_printf(b, "%-16s %6s | %6s %6s %10s %9s %9s | %6s %6s %10s %9s %9s\n", "rule",
                      "fraud", "tp", "fp", "unlabelled", "precision", "recall", "tp", "fp",
                      "unlabelled", "precision", "recall");
        fw_buf_printf(b, "%-16s %6s | %-45s | %s\n", "", "", "before", "after");
        for (size_t i = 0; i < c->nrules; i++) {
            const struct cmp_rule *r = &c->rules[i];
            fw_buf_printf(b, "%-16s %6llu", r->id, (unsigned long long)r->fraud);
            for (int s = 0; s < 2; s++) {
                fw_buf_printf(b, " | %6llu %6llu %10llu ", (unsigned long long)r->tp[s],
                              (unsigned long long)r->fp[s],
                              (unsigned long long)r->unlabelled[s]);
                ratio_text(b, r->tp[s], r->tp[s] + r->fp[s]);
                fw_buf_putc(b, ' ');
                ratio_text(b, r->tp[s], r->fraud);
            }
            fw_buf_putc(b, '\n');
        }
    }
    static const char *const title[3] = { "in both", "only before", "only after" };
    for (size_t i = 0; i < c->nrules; i++) {
        const struct cmp_rule *r = &c->rules[i];
        fw_buf_printf(b, "\n== %s (%s) %s\n", r->id, status_of(r), name_of(r));
        fw_buf_printf(b, "  subjects: in both %llu, only before %llu, only after %llu\n",
                      (unsigned long long)r->subj_both, (unsigned long long)r->subj_only[BEFORE],
                      (unsigned long long)r->subj_only[AFTER]);
        uint64_t n[3] = { r->both, r->only[BEFORE], r->only[AFTER] };
        for (int k = 0; k < 3; k++) {
            fw_buf_printf(b, "  %s: %llu", title[k], (unsigned long long)n[k]);
            if (n[k] > r->ex[k].n && r->ex[k].n)
                fw_buf_printf(b, " (first %u shown)", r->ex[k].n);
            fw_buf_putc(b, '\n');
            for (uint32_t j = 0; j < r->ex[k].n; j++)
                fw_buf_printf(b, "    %s\n", r->ex[k].line[j]);
        }
    }
}

static void side_json(cmp *c, fw_buf *b, int s, uint64_t alerts)
{
    fw_buf_puts(b, "{\"rules_dir\":");
    fw_buf_json_str(b, c->s[s].dir, strlen(c->s[s].dir), SIZE_MAX);
    fw_buf_printf(b, ",\"rules\":%u,\"alerts\":%llu,\"regex_limit_hits\":%llu,"
                     "\"evicted_keys\":%llu}",
                  c->s[s].rs->nrules, (unsigned long long)alerts,
                  (unsigned long long)c->s[s].faults, (unsigned long long)c->s[s].evictions);
}

static void report_json(cmp *c, fw_buf *b, uint64_t events, const struct truth_totals *tt)
{
    const fw_compare_opts *o = c->o;
    uint64_t tot[2] = { 0, 0 }, both = 0, only[2] = { 0, 0 };
    for (size_t i = 0; i < c->nrules; i++) {
        const struct cmp_rule *r = &c->rules[i];
        for (int s = 0; s < 2; s++) {
            tot[s] += r->alerts[s];
            only[s] += r->only[s];
        }
        both += r->both;
    }
    fw_buf_puts(b, "{\"before\":");
    side_json(c, b, BEFORE, tot[0]);
    fw_buf_puts(b, ",\"after\":");
    side_json(c, b, AFTER, tot[1]);
    const char *in = o->input && strcmp(o->input, "-") != 0 ? o->input : "-";
    fw_buf_puts(b, ",\"input\":");
    fw_buf_json_str(b, in, strlen(in), SIZE_MAX);
    fw_buf_printf(b, ",\"events\":%llu,\"malformed\":%llu,\"both\":%llu,\"only_before\":%llu,"
                     "\"only_after\":%llu,\"examples_per_category\":%u",
                  (unsigned long long)events, (unsigned long long)c->malformed,
                  (unsigned long long)both, (unsigned long long)only[0],
                  (unsigned long long)only[1], o->examples);
    fw_buf_printf(b, ",\"lists\":{\"added\":[%.*s],\"removed\":[%.*s],\"changed\":[%.*s]}",
                  (int)c->lists_added.len, c->lists_added.p ? c->lists_added.p : "",
                  (int)c->lists_removed.len, c->lists_removed.p ? c->lists_removed.p : "",
                  (int)c->lists_changed.len, c->lists_changed.p ? c->lists_changed.p : "");
    if (c->truth) {
        fw_buf_puts(b, ",\"truth\":{\"file\":");
        fw_buf_json_str(b, o->truth, strlen(o->truth), SIZE_MAX);
        fw_buf_printf(b, ",\"fraud\":%llu,\"not_fraud\":%llu,\"fraud_unmatched\":%llu,"
                         "\"fraud_other_rules\":%llu}",
                      (unsigned long long)tt->fraud, (unsigned long long)tt->not_fraud,
                      (unsigned long long)tt->unmatched, (unsigned long long)tt->other_rules);
    } else {
        fw_buf_puts(b, ",\"truth\":null");
    }
    fw_buf_puts(b, ",\"rules\":[");
    for (size_t i = 0; i < c->nrules; i++) {
        const struct cmp_rule *r = &c->rules[i];
        const char *name = name_of(r);
        fw_buf_puts(b, i ? ",\n{\"rule_id\":" : "\n{\"rule_id\":");
        fw_buf_json_str(b, r->id, strlen(r->id), SIZE_MAX);
        fw_buf_puts(b, ",\"name\":");
        fw_buf_json_str(b, name, strlen(name), SIZE_MAX);
        fw_buf_printf(b, ",\"status\":\"%s\",\"before\":%llu,\"after\":%llu,\"both\":%llu,"
                         "\"only_before\":%llu,\"only_after\":%llu,",
                      status_of(r), (unsigned long long)r->alerts[0],
                      (unsigned long long)r->alerts[1], (unsigned long long)r->both,
                      (unsigned long long)r->only[0], (unsigned long long)r->only[1]);
        fw_buf_printf(b, "\"subjects\":{\"both\":%llu,\"only_before\":%llu,"
                         "\"only_after\":%llu},\"examples\":{",
                      (unsigned long long)r->subj_both, (unsigned long long)r->subj_only[0],
                      (unsigned long long)r->subj_only[1]);
        for (int k = 0; k < 3; k++) {
            fw_buf_printf(b, "%s\"%s\":[", k ? "," : "", ex_name[k]);
            for (uint32_t j = 0; j < r->ex[k].n; j++) {
                if (j)
                    fw_buf_putc(b, ',');
                fw_buf_puts(b, r->ex[k].line[j]);
            }
            fw_buf_putc(b, ']');
        }
        fw_buf_putc(b, '}');
        if (c->truth) {
            fw_buf_printf(b, ",\"truth\":{\"fraud\":%llu", (unsigned long long)r->fraud);
            for (int s = 0; s < 2; s++) {
                fw_buf_printf(b, ",\"%s\":{\"tp\":%llu,\"fp\":%llu,\"unlabelled\":%llu,"
                                 "\"precision\":",
                              s == BEFORE ? "before" : "after", (unsigned long long)r->tp[s],
                              (unsigned long long)r->fp[s],
                              (unsigned long long)r->unlabelled[s]);
                ratio_json(b, r->tp[s], r->tp[s] + r->fp[s]);
                fw_buf_puts(b, ",\"recall\":");
                ratio_json(b, r->tp[s], r->fraud);
                fw_buf_putc(b, '}');
            }
            fw_buf_putc(b, '}');
        }
        fw_buf_putc(b, '}');
    }
    fw_buf_puts(b, "]}\n");
}

/* ---- the run ----------------------------------------------------------------------- */

static void cmp_free(cmp *c)
{
    for (int s = 0; s < 2; s++) {
        if (c->s[s].p) {
            fw_batch *b;
            while ((b = fw_pipeline_retire(c->s[s].p, true)))
                fw_pipeline_recycle(c->s[s].p, b);
            fw_pipeline_free_at_exit(c->s[s].p);   /* the command exits next */
        }
        fw_ruleset_unref(c->s[s].rs);
        free(c->s[s].map);
        free(c->grp[s]);
    }
    for (size_t i = 0; i < c->nrules; i++)
        count_subjects(&c->rules[i]);
    for (size_t i = 0; i < c->nrules; i++)
        for (int k = 0; k < 3; k++) {
            for (uint32_t j = 0; j < c->rules[i].ex[k].n; j++)
                free(c->rules[i].ex[k].line[j]);
            free(c->rules[i].ex[k].line);
        }
    free(c->rules);
    free(c->matched);
    free(c->attr);
    fw_truth_free(c->truth);
    fw_buf_free(&c->lists_added);
    fw_buf_free(&c->lists_removed);
    fw_buf_free(&c->lists_changed);
}

int fw_compare_run(const fw_compare_opts *o, char *err, size_t errlen)
{
    cmp c = { .o = o };
    c.s[BEFORE].dir = o->before_dir;
    c.s[AFTER].dir = o->after_dir;
    fw_file_source *src = NULL;
    fw_batch *cur[2] = { NULL, NULL };
    fw_buf rep = { 0 };
    int rc = -1;
    char sub[16384];

    /* Everything that can be refused is checked before the first event. */
    if (o->truth) {
        c.truth = fw_truth_load(o->truth, err, errlen);
        if (!c.truth)
            return -1;
        c.attr = fw_xmalloc((fw_truth_count(c.truth) + 1) * sizeof *c.attr);
        for (size_t i = 0; i < fw_truth_count(c.truth); i++)
            c.attr[i] = -1;
    }
    for (int s = 0; s < 2; s++)
        if (fw_ruleset_load_dir(c.s[s].dir, 1, &c.s[s].rs, sub, sizeof sub) != 0) {
            snprintf(err, errlen, "%s rules %s refused:\n%s", s == BEFORE ? "before (OLD_DIR)"
                                                                          : "after (NEW_DIR)",
                     c.s[s].dir, sub);
            goto out;
        }
    build_rules(&c);
    if (mark_changes(&c, err, errlen) != 0)
        goto out;
    src = fw_file_source_open(o->input, o->max_event_bytes, err, errlen);
    if (!src)
        goto out;
    fw_pipeline_opts po = { .workers = o->threads,
                            .max_event_bytes = o->max_event_bytes,
                            .lateness_ms = o->lateness_ms,
                            .max_keys = o->max_keys };
    for (int s = 0; s < 2; s++) {
        c.s[s].p = fw_pipeline_new(&po, err, errlen);
        if (!c.s[s].p)
            goto out;
    }

    int64_t t0 = fw_mono_ns();
    for (;;) {
        fw_msg m;
        int r = fw_file_source_ops.next(src, &m, 1000);
        if (r == FW_NEXT_END)
            break;
        if (r == FW_NEXT_FATAL) {
            snprintf(err, errlen, "%s", fw_file_source_ops.fatal(src));
            goto out;
        }
        if (r != FW_NEXT_MSG)
            continue;
        const char *data = m.data ? m.data : "";
        for (;;) {
            for (int s = 0; s < 2; s++)
                while (!cur[s] && !(cur[s] = fw_pipeline_acquire(c.s[s].p, c.s[s].rs)))
                    if (!retire_pair(&c, true)) {
                        snprintf(err, errlen, "internal error: no free batch");
                        goto out;
                    }
            if (fw_batch_add(cur[BEFORE], data, m.len, (uint64_t)m.offset)) {
                if (!fw_batch_add(cur[AFTER], data, m.len, (uint64_t)m.offset)) {
                    snprintf(err, errlen, "internal error: the two sets' batches are out "
                                          "of step");
                    goto out;
                }
                break;
            }
            for (int s = 0; s < 2; s++) {
                fw_pipeline_submit(c.s[s].p, cur[s]);
                cur[s] = NULL;
            }
            while (retire_pair(&c, false))
                ;
        }
    }
    for (int s = 0; s < 2; s++)
        if (cur[s]) {
            fw_pipeline_submit(c.s[s].p, cur[s]);
            cur[s] = NULL;
        }
    while (retire_pair(&c, true))
        ;
    double seconds = (double)(fw_mono_ns() - t0) / 1e9;
    uint64_t events = fw_file_source_events(src);

    struct truth_totals tt;
    attribute_truth(&c, &tt);
    for (size_t i = 0; i < c.nrules; i++)
        count_subjects(&c.rules[i]);
    if (o->json)
        report_json(&c, &rep, events, &tt);
    else
        report_text(&c, &rep, events, &tt);
    if ((rep.len && fwrite(rep.p, 1, rep.len, o->out) != rep.len) || fflush(o->out) != 0) {
        snprintf(err, errlen, "writing the report failed: %s", strerror(errno));
        goto out;
    }
    if (c.malformed > o->max_reported)
        fprintf(o->log, "fraudwatch: ... %llu more malformed lines not shown\n",
                (unsigned long long)(c.malformed - o->max_reported));
    fprintf(o->log,
            "fraudwatch replay --compare: %llu events (%llu malformed) in %.3f s, "
            "%.0f events/s, %u thread%s per rule set\n",
            (unsigned long long)events, (unsigned long long)c.malformed, seconds,
            seconds > 0 ? (double)events / seconds : 0.0, o->threads,
            o->threads == 1 ? "" : "s");
    for (int s = 0; s < 2; s++) {
        if (c.s[s].faults)
            fprintf(o->log, "%s: regex limit hits (counted as no match): %llu\n",
                    s == BEFORE ? "before" : "after", (unsigned long long)c.s[s].faults);
        if (c.s[s].evictions)
            fprintf(o->log, "%s: keys evicted by the state budget (--max-keys %llu): %llu "
                            "(docs/limits.md, \"Key state budget\")\n",
                    s == BEFORE ? "before" : "after", (unsigned long long)o->max_keys,
                    (unsigned long long)c.s[s].evictions);
    }
    rc = 0;
out:
    for (int s = 0; s < 2; s++)
        if (cur[s] && c.s[s].p)
            fw_pipeline_submit(c.s[s].p, cur[s]);
    fw_buf_free(&rep);
    cmp_free(&c);
    fw_file_source_close(src);
    return rc;
}
