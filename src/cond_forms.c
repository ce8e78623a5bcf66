/* cond_forms.c — the condition forms of the rule language, one table row
 * each: regex, not_regex, op, in_list, not_in_list, any (SPEC §2).
 *
 * Owns everything that differs between forms: which members a form takes,
 * how it is parsed and validated, when it holds for an event, how it is
 * explained in an alert's evidence, and what it frees.  Everything that is
 * the same for all of them stays where it was: the loader (rules_load.c)
 * checks the members of a condition against this table, finds the one form
 * it names and its field, and calls the row's parse; the matcher (match.c)
 * reads the field and calls the row's holds or explain; ruleset.c frees
 * the path and calls the row's free.  So a new form is one row here and its
 * four functions, next to the others — docs/hacking.md walks through one.
 *
 * Shaped as Suricata's sigmatch_table[] and this project's config keys[]:
 * a const table walked by generic code, no registration at run time.  The
 * per-event cost is one indirect call per condition, next to a hash look-up
 * or a regex search. */
#include "cond_forms.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/event.h"

/* ---- regex, not_regex -------------------------------------------------- */

static bool regex_parse(fw_loader *L, const cJSON *cond, const cJSON *v,
                        const char *place, int depth, fw_cond *out)
{
    (void)depth;
    char sub[320];
    const cJSON *flags = fw_lx_member(cond, "flags");
    if (flags) {
        if (!cJSON_IsString(flags) ||
            (strcmp(flags->valuestring, "i") != 0 &&
             strcmp(flags->valuestring, "") != 0)) {
            snprintf(sub, sizeof sub, "%s.flags", place);
            fw_lx_report(L, sub, "must be \"i\" (caseless) or \"\"");
            return false;
        }
        out->caseless = flags->valuestring[0] == 'i';
    }
    snprintf(sub, sizeof sub, "%s.%s", place, out->form->name);
    if (!cJSON_IsString(v)) {
        fw_lx_report(L, sub, "must be a string (a PCRE2 pattern)");
        return false;
    }
    out->pattern = fw_xstrdup(v->valuestring);
    if (!fw_lx_regex(L, sub, v->valuestring, out->caseless, &out->re))
        return false;
    out->search = fw_lx_search_slot(L, out);
    return true;
}

static bool regex_holds(fw_matcher *m, const cJSON *root, const fw_cond *c,
                        const cJSON *v)
{
    return fw_matcher_search_cond(m, root, c, v) == 1;
}

static bool not_regex_holds(fw_matcher *m, const cJSON *root, const fw_cond *c,
                            const cJSON *v)
{
    return fw_matcher_search_cond(m, root, c, v) == 0;
}

static void regex_explain(fw_matcher *m, const cJSON *root, const fw_cond *c,
                          const cJSON *v, fw_buf *out)
{
    (void)root;
    bool positive = c->form->holds == regex_holds;
    fw_buf_puts(out, positive ? ",\"regex\":" : ",\"not_regex\":");
    fw_buf_json_str(out, c->pattern, strlen(c->pattern), FW_EVIDENCE_TEXT_MAX);
    if (positive && fw_matcher_search(m, c->re, v) == 1) {
        size_t start, end;
        fw_matcher_last_match(m, &start, &end);
        fw_buf_puts(out, ",\"match\":");
        fw_buf_json_str(out, v->valuestring + start, end - start, FW_EVIDENCE_TEXT_MAX);
    } else {
        fw_match_explain_value(out, v);
    }
}

static void regex_free(fw_cond *c)
{
    free(c->pattern);
    pcre2_code_free(c->re);
}

/* ---- op ------------------------------------------------------------------ */

static bool op_parse(fw_loader *L, const cJSON *cond, const cJSON *v,
                     const char *place, int depth, fw_cond *out)
{
    (void)depth;
    char sub[320];
    snprintf(sub, sizeof sub, "%s.op", place);
    if (!cJSON_IsString(v) || !fw_lx_op(v->valuestring, &out->op)) {
        fw_lx_report(L, sub, "must be one of \"<\", \"<=\", \">\", \">=\", "
                               "\"==\", \"!=\"");
        return false;
    }
    char vp[320];
    snprintf(vp, sizeof vp, "%s.value", place);
    const cJSON *value = fw_lx_member(cond, "value");
    if (!value) {
        fw_lx_report(L, vp, "missing (the number or string to compare with)");
        return false;
    }
    if (cJSON_IsNumber(value)) {
        if (!isfinite(value->valuedouble)) {
            fw_lx_report(L, vp, "must be a finite number");
            return false;
        }
        out->num = value->valuedouble;
        return true;
    }
    if (cJSON_IsString(value)) {
        if (out->op != FW_OP_EQ && out->op != FW_OP_NE) {
            fw_lx_report(L, vp, "a string compares only with \"==\" or \"!=\"");
            return false;
        }
        out->str = fw_xstrdup(value->valuestring);
        out->str_len = strlen(out->str);
        return true;
    }
    fw_lx_report(L, vp, "must be a number or a string");
    return false;
}

static bool op_holds(fw_matcher *m, const cJSON *root, const fw_cond *c,
                     const cJSON *v)
{
    (void)m;
    (void)root;
    if (!c->str)
        return cJSON_IsNumber(v) &&
               fw_op_holds(c->op, (v->valuedouble > c->num) - (v->valuedouble < c->num)) &&
               !isnan(v->valuedouble);
    if (!cJSON_IsString(v) || !v->valuestring)
        return false;
    bool eq = strlen(v->valuestring) == c->str_len &&
              memcmp(v->valuestring, c->str, c->str_len) == 0;
    return c->op == FW_OP_EQ ? eq : !eq;
}

static void op_explain(fw_matcher *m, const cJSON *root, const fw_cond *c,
                       const cJSON *v, fw_buf *out)
{
    (void)m;
    (void)root;
    if (!c->str) {
        char num[FW_NUMTEXT_MAX];
        fw_numtext(c->num, num);
        fw_buf_printf(out, ",\"op\":\"%s\",\"limit\":%s", fw_op_name(c->op), num);
    } else {
        fw_buf_printf(out, ",\"op\":\"%s\",\"limit\":", fw_op_name(c->op));
        fw_buf_json_str(out, c->str, c->str_len, FW_EVIDENCE_TEXT_MAX);
    }
    fw_match_explain_value(out, v);
}

static void op_free(fw_cond *c) { free(c->str); }

/* ---- in_list, not_in_list ----------------------------------------------- */

static bool list_parse(fw_loader *L, const cJSON *cond, const cJSON *v,
                       const char *place, int depth, fw_cond *out)
{
    (void)cond;
    (void)depth;
    char sub[320];
    snprintf(sub, sizeof sub, "%s.%s", place, out->form->name);
    if (!cJSON_IsString(v)) {
        fw_lx_report(L, sub, "must be the name of a watchlist");
        return false;
    }
    out->list = fw_lx_list(L, v->valuestring);
    if (!out->list) {
        char names[512];
        fw_lx_list_names(L, names, sizeof names);
        fw_lx_report(L, sub, "unknown watchlist \"%s\" (defined: %s; a list NAME "
                               "comes from a file NAME.list)",
                     v->valuestring, names[0] ? names : "none");
        return false;
    }
    return true;
}

/* By event time: an entry with UNTIL T is a member for events with ts < T
 * (SPEC §2), so an expiry takes effect without a reload, and replay and
 * the daemon agree. */
static bool on_list(fw_matcher *m, const fw_cond *c, const cJSON *v)
{
    return cJSON_IsString(v) && v->valuestring &&
           fw_list_contains(c->list, v->valuestring, strlen(v->valuestring),
                            fw_matcher_event_ts(m));
}

static bool in_list_holds(fw_matcher *m, const cJSON *root, const fw_cond *c,
                          const cJSON *v)
{
    (void)root;
    return on_list(m, c, v);
}

static bool not_in_list_holds(fw_matcher *m, const cJSON *root, const fw_cond *c,
                              const cJSON *v)
{
    (void)root;
    return !on_list(m, c, v);
}

static void list_explain(fw_matcher *m, const cJSON *root, const fw_cond *c,
                         const cJSON *v, fw_buf *out)
{
    (void)m;
    (void)root;
    fw_buf_puts(out, c->form->holds == in_list_holds ? ",\"in_list\":"
                                                     : ",\"not_in_list\":");
    fw_buf_json_str(out, c->list->name, strlen(c->list->name), SIZE_MAX);
    fw_match_explain_value(out, v);
}

static void list_free(fw_cond *c) { (void)c; }  /* the list belongs to the set */

/* ---- any ----------------------------------------------------------------- */

static bool any_parse(fw_loader *L, const cJSON *cond, const cJSON *v,
                      const char *place, int depth, fw_cond *out)
{
    if (cond->child != v || v->next) {
        fw_lx_report(L, place, "\"any\" must be the only member of its condition");
        return false;
    }
    if (depth >= FW_MAX_ANY_DEPTH) {
        fw_lx_report(L, place, "\"any\" nested deeper than %d levels", FW_MAX_ANY_DEPTH);
        return false;
    }
    char sub[320];
    snprintf(sub, sizeof sub, "%s.any", place);
    if (!cJSON_IsArray(v) || !v->child) {
        fw_lx_report(L, sub, "must be a non-empty array of conditions");
        return false;
    }
    return fw_lx_conds(L, v, sub, depth + 1, &out->any, &out->nany);
}

static bool any_holds(fw_matcher *m, const cJSON *root, const fw_cond *c,
                      const cJSON *v)
{
    (void)v;
    for (uint32_t i = 0; i < c->nany; i++)
        if (fw_match_all(m, root, &c->any[i], 1))
            return true;
    return false;
}

static void any_explain(fw_matcher *m, const cJSON *root, const fw_cond *c,
                        const cJSON *v, fw_buf *out)
{
    (void)v;
    /* The first alternative that holds is the reason. */
    fw_buf_puts(out, "\"any\":");
    for (uint32_t i = 0; i < c->nany; i++) {
        if (fw_match_all(m, root, &c->any[i], 1)) {
            fw_match_explain(m, root, &c->any[i], 1, out);
            break;
        }
    }
}

static void any_free(fw_cond *c) { fw_conds_free(c->any, c->nany); }

/* ---- the table ----------------------------------------------------------- */

static const char *const regex_members[] = { "flags", NULL };
static const char *const op_members[] = { "value", NULL };
static const char *const no_members[] = { NULL };

/* The order is the order of the loader's messages ("needs one of regex,
 * not_regex, op, in_list, not_in_list, any"). */
const fw_cond_form fw_cond_forms[] = {
    { "regex", regex_members, true, regex_parse, regex_holds, regex_explain, regex_free },
    { "not_regex", regex_members, true, regex_parse, not_regex_holds, regex_explain,
      regex_free },
    { "op", op_members, true, op_parse, op_holds, op_explain, op_free },
    { "in_list", no_members, true, list_parse, in_list_holds, list_explain, list_free },
    { "not_in_list", no_members, true, list_parse, not_in_list_holds, list_explain,
      list_free },
    { "any", no_members, false, any_parse, any_holds, any_explain, any_free },
};
const size_t fw_cond_nforms = sizeof fw_cond_forms / sizeof fw_cond_forms[0];
