/* kind_threshold.c — threshold rules: a windowed count, sum or distinct
 * count per key (SPEC §2, "Threshold").
 *
 * Owns the kind's row in the rule-kind table (rule_kinds.h): parsing
 * "threshold", taking the group_by key and the aggregated value from an
 * event, and applying it to the key's window (window.c holds the window
 * itself: entries, running aggregates, expiry, its checkpoint encoding).
 * The evidence names the aggregate, the window and the limit, and what was
 * counted: a distinct's values, a sum's largest contributions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "rule_kinds.h"

#define MAX_GROUP_BY 8

static bool parse_comparator(fw_loader *L, const cJSON *obj,
                             const char *place, bool with_field, fw_rule *r)
{
    static const char *const cmps[] = { ">=", ">", "<=", "<", "==" };
    int found = 0;
    for (const cJSON *m = obj->child; m; m = m->next) {
        if (with_field && strcmp(m->string, "field") == 0)
            continue;
        bool known = false;
        for (size_t i = 0; i < sizeof cmps / sizeof cmps[0]; i++)
            if (strcmp(m->string, cmps[i]) == 0)
                known = true;
        char sub[300];
        snprintf(sub, sizeof sub, "%s.%s", place, m->string);
        if (!known) {
            fw_lx_report(L, sub, "unknown member \"%s\" (comparators: >=, >, <=, "
                           "<, ==%s)", m->string, with_field ? "; and field" : "");
            return false;
        }
        if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble)) {
            fw_lx_report(L, sub, "the limit must be a finite number");
            return false;
        }
        fw_lx_op(m->string, &r->agg_op);
        r->limit = m->valuedouble;
        found++;
    }
    if (found != 1) {
        fw_lx_report(L, place, "needs exactly one comparator (>=, >, <=, <, ==) "
                         "with its limit, e.g. {\">=\": 50}");
        return false;
    }
    if (with_field) {
        char sub[300];
        snprintf(sub, sizeof sub, "%s.field", place);
        const cJSON *f = fw_lx_member(obj, "field");
        if (!f) {
            fw_lx_report(L, sub, "missing (the field to aggregate)");
            return false;
        }
        return fw_lx_path(L, f, sub, &r->agg_field);
    }
    return true;
}

static bool parse_threshold(fw_loader *L, const cJSON *t, fw_rule *r)
{
    static const char *const allowed[] = {
        "group_by", "window_s", "count", "sum", "distinct", NULL
    };
    if (!cJSON_IsObject(t)) {
        fw_lx_report(L, "threshold", "must be an object");
        return false;
    }
    if (!fw_lx_members(L, t, "threshold", allowed))
        return false;
    bool ok = true;

    const cJSON *g = fw_lx_member(t, "group_by");
    if (!g) {
        fw_lx_report(L, "threshold.group_by", "missing (a field, or an array of "
                                        "fields, naming the key)");
        ok = false;
    } else if (cJSON_IsArray(g)) {
        int n = cJSON_GetArraySize(g);
        if (n < 1 || n > MAX_GROUP_BY) {
            fw_lx_report(L, "threshold.group_by", "an array needs 1..%d fields",
                   MAX_GROUP_BY);
            ok = false;
        } else {
            r->group_by = fw_lx_calloc((size_t)n, sizeof *r->group_by);
            int i = 0;
            for (const cJSON *e = g->child; e; e = e->next, i++) {
                char sub[64];
                snprintf(sub, sizeof sub, "threshold.group_by[%d]", i);
                if (!fw_lx_path(L, e, sub, &r->group_by[r->ngroup]))
                    ok = false;
                else
                    r->ngroup++;
            }
        }
    } else {
        r->group_by = fw_lx_calloc(1, sizeof *r->group_by);
        if (fw_lx_path(L, g, "threshold.group_by", &r->group_by[0]))
            r->ngroup = 1;
        else
            ok = false;
    }

    int64_t w = 0;
    if (!fw_lx_member(t, "window_s")) {
        fw_lx_report(L, "threshold.window_s", "missing (seconds, 1..%d)",
               FW_WINDOW_MAX_S);
        ok = false;
    } else if (fw_lx_int(L, t, "window_s", "threshold.window_s", 1,
                       FW_WINDOW_MAX_S, &w)) {
        r->window_ms = w * 1000;
    } else {
        ok = false;
    }

    const cJSON *count = fw_lx_member(t, "count"), *sum = fw_lx_member(t, "sum"),
                *distinct = fw_lx_member(t, "distinct");
    int naggs = !!count + !!sum + !!distinct;
    if (naggs != 1) {
        fw_lx_report(L, "threshold", "needs exactly one of count, sum, distinct");
        return false;
    }
    const cJSON *a = count ? count : sum ? sum : distinct;
    const char *place = count ? "threshold.count" : sum ? "threshold.sum"
                                                        : "threshold.distinct";
    r->agg = count ? FW_AGG_COUNT : sum ? FW_AGG_SUM : FW_AGG_DISTINCT;
    if (!cJSON_IsObject(a)) {
        fw_lx_report(L, place, "must be an object such as %s",
               count ? "{\">=\": 50}" : "{\"field\": \"amount\", \">=\": 50000}");
        return false;
    }
    if (!parse_comparator(L, a, place, !count, r))
        return false;
    if (r->agg == FW_AGG_SUM) {
        if (fabs(r->limit) > 9e12) {
            fw_lx_report(L, place, "the limit must be within ±9e12");
            return false;
        }
        r->limit_micro = llround(r->limit * 1e6);
    }
    return ok;
}


static void threshold_parse(fw_loader *L, const cJSON *obj, fw_rule *r)
{
    fw_lx_one_step(L, obj, r);
    parse_threshold(L, fw_lx_member(obj, "threshold"), r);
    r->suppress_ms = r->window_ms;
}

static bool threshold_scan(fw_scan_ctx *cx, const fw_rule *r, uint32_t step, fw_update *u)
{
    (void)step;
    const cJSON *root = cx->ev->root;
    for (uint32_t g = 0; g < r->ngroup; g++) {
        if (g)
            fw_buf_putc(cx->key, '|');
        if (!fw_scan_key_part(cx->key, root, &r->group_by[g]))
            return false;   /* a group_by field is missing: not counted */
    }
    if (r->agg == FW_AGG_COUNT)
        return true;
    const cJSON *v = fw_path_get(root, &r->agg_field);
    if (r->agg == FW_AGG_SUM) {
        if (!cJSON_IsNumber(v) || !(fabs(v->valuedouble) <= 9e12))
            return false;
        u->vkind = FW_V_MICRO;
        u->micro = llround(v->valuedouble * 1e6);
        return true;
    }
    char num[FW_NUMTEXT_MAX];
    const char *t;
    size_t len;
    if (!fw_value_text(v, num, &t, &len))
        return false;
    u->vkind = FW_V_TEXT;
    u->vtext = fw_arena_strndup(cx->arena, t, len);
    u->vlen = (uint32_t)len;
    if (!u->vtext)
        fw_oom();
    return true;
}

static const char *agg_name(enum fw_agg a)
{
    return a == FW_AGG_COUNT ? "count" : a == FW_AGG_SUM ? "sum" : "distinct";
}

static void threshold_apply(fw_state *st, const fw_ruleset *rs, const fw_rule *r,
                            const fw_update *u, fw_alert_out *out)
{
    fw_keystate *k = fw_state_key(st, r, u);
    double agg = 0;
    fw_i128 micro = 0;
    if (!fw_window_apply((fw_window **)&k->data, r, &k->m, u, &agg, &micro))
        return;
    int cmp = r->agg == FW_AGG_SUM ? (micro > r->limit_micro) - (micro < r->limit_micro)
                                   : (agg > r->limit) - (agg < r->limit);
    if (!fw_op_holds(r->agg_op, cmp) || fw_keystate_suppressed(k, r->suppress_ms, u->ts))
        return;
    k->last_fire = u->ts;

    fw_buf *ev = fw_state_scratch(st);
    char num[FW_NUMTEXT_MAX];
    ev->len = 0;
    fw_buf_printf(ev, "{\"%s\":", agg_name(r->agg));
    if (r->agg == FW_AGG_SUM)
        fw_micro_text(ev, micro);
    else
        fw_buf_i64(ev, (int64_t)agg);
    fw_buf_printf(ev, ",\"window_s\":%lld,\"limit\":{\"%s\":",
                  (long long)(r->window_ms / 1000), fw_op_name(r->agg_op));
    fw_numtext(r->limit, num);
    fw_buf_puts(ev, num);
    fw_buf_putc(ev, '}');
    /* What it counted (SPEC §3): the distinct values, the largest sums. */
    fw_window_explain(k->data, r->agg, u->ts, (uint64_t)agg, ev);
    fw_buf_putc(ev, '}');
    fw_update tmp;
    fw_state_emit(out, r, rs->version, fw_state_fields(st, r, u, &tmp), ev->p, ev->len);
}

static int64_t threshold_lifetime(const fw_rule *r) { return r->window_ms; }

static void threshold_describe(const fw_rule *r, FILE *out)
{
    fprintf(out, "threshold event=%s conditions=%u %s%s%s %s %.17g window=%llds by=",
            r->steps[0].event, r->steps[0].nwhere, agg_name(r->agg),
            r->agg == FW_AGG_COUNT ? "" : ":",
            r->agg == FW_AGG_COUNT ? "" : r->agg_field.text, fw_op_name(r->agg_op),
            r->limit, (long long)(r->window_ms / 1000));
    for (uint32_t g = 0; g < r->ngroup; g++)
        fprintf(out, "%s%s", g ? "|" : "", r->group_by[g].text);
}

static void window_save(const void *data, fw_buf *out) { fw_window_save(data, out); }
/* 1: windows of earlier versions; 8: with the aggregate and a sum's event
 * ids (window.c). */
#define WINDOW_FLAG_V1 1
#define WINDOW_FLAG_AGG 8
static int window_load(void **data, FILE *f, uint64_t flag)
{
    return fw_window_load((fw_window **)data, f, flag == WINDOW_FLAG_AGG);
}
static void window_free(void *data) { fw_window_free(data); }

const fw_rule_kind_ops fw_kind_threshold = {
    .name = "threshold",
    .code = FW_RULE_THRESHOLD,
    .selector = "threshold",
    .parse = threshold_parse,
    .scan = threshold_scan,
    .apply = threshold_apply,
    .lifetime = threshold_lifetime,
    .describe = threshold_describe,
    .ckpt_flag = WINDOW_FLAG_AGG,
    .ckpt_flag_old = WINDOW_FLAG_V1,
    .data_save = window_save,
    .data_load = window_load,
    .data_free = window_free,
};
