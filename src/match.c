/* match.c — one condition, one event: regex, compare, watchlist, any.
 *
 * Owns the per-thread PCRE2 resources (match data, a 512 KiB JIT stack, a
 * match context with a low match limit) so that matching takes no lock and
 * one hostile pattern or event costs a bounded amount of work: a limit hit is
 * "no match" plus a counted fault, never a stall.  Type rules are SPEC §2's:
 * a regex never applies to a number, a missing or mistyped field makes a
 * condition false and its not_ form true. */
#include "match.h"

#include <math.h>
#include <string.h>

#include "fraudwatch/event.h"

struct fw_matcher {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    uint64_t faults;
};

fw_matcher *fw_matcher_new(void)
{
    fw_matcher *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->md = pcre2_match_data_create(16, NULL);
    m->mctx = pcre2_match_context_create(NULL);
    m->jit = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);
    if (!m->md || !m->mctx || !m->jit) {
        fw_matcher_free(m);
        return NULL;
    }
    pcre2_set_match_limit(m->mctx, FW_MATCH_LIMIT);
    pcre2_set_depth_limit(m->mctx, 10000);
    /* The interpreter (a pattern JIT could not compile) gets at most this
     * much backtracking memory, in KiB. */
    pcre2_set_heap_limit(m->mctx, FW_MATCH_HEAP_KIB);
    pcre2_jit_stack_assign(m->mctx, NULL, m->jit);
    return m;
}

void fw_matcher_free(fw_matcher *m)
{
    if (!m)
        return;
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mctx);
    pcre2_jit_stack_free(m->jit);
    free(m);
}

uint64_t fw_matcher_faults(const fw_matcher *m) { return m->faults; }

/* 1 match, 0 no match (a limit hit counts as a fault). */
static int regex_search(fw_matcher *m, const fw_cond *c, const cJSON *v)
{
    if (!cJSON_IsString(v) || !v->valuestring)
        return 0;
    const char *s = v->valuestring;
    size_t len = strlen(s);
    /* PCRE2 applies the match limit at each start position, so the work of
     * one search is up to len × limit: scale the limit down for long
     * subjects to bound the work per condition (about 10^7 steps). */
    uint32_t limit = len ? (uint32_t)(FW_MATCH_WORK / len) : FW_MATCH_LIMIT;
    limit = limit < 100 ? 100 : limit > FW_MATCH_LIMIT ? FW_MATCH_LIMIT : limit;
    pcre2_set_match_limit(m->mctx, limit);
    int rc = pcre2_match(c->re, (PCRE2_SPTR)s, len, 0, 0, m->md, m->mctx);
    if (rc >= 0)
        return 1;
    if (rc != PCRE2_ERROR_NOMATCH)
        m->faults++; /* match limit, JIT stack, depth or heap limit */
    return 0;
}

static bool in_list(const fw_cond *c, const cJSON *v)
{
    if (!cJSON_IsString(v) || !v->valuestring)
        return false;
    return fw_list_contains(c->list, v->valuestring, strlen(v->valuestring));
}

static bool match_one(fw_matcher *m, const cJSON *root, const fw_cond *c)
{
    if (c->kind == FW_C_ANY) {
        for (uint32_t i = 0; i < c->nany; i++)
            if (match_one(m, root, &c->any[i]))
                return true;
        return false;
    }
    const cJSON *v = fw_path_get(root, &c->path);
    switch (c->kind) {
    case FW_C_REGEX:
        return regex_search(m, c, v) == 1;
    case FW_C_NOT_REGEX:
        return regex_search(m, c, v) == 0;
    case FW_C_CMP_NUM:
        return cJSON_IsNumber(v) &&
               fw_op_holds(c->op, (v->valuedouble > c->num) - (v->valuedouble < c->num)) &&
               !isnan(v->valuedouble);
    case FW_C_CMP_STR: {
        if (!cJSON_IsString(v) || !v->valuestring)
            return false;
        bool eq = strlen(v->valuestring) == c->str_len &&
                  memcmp(v->valuestring, c->str, c->str_len) == 0;
        return c->op == FW_OP_EQ ? eq : !eq;
    }
    case FW_C_IN_LIST:
        return in_list(c, v);
    case FW_C_NOT_IN_LIST:
        return !in_list(c, v);
    case FW_C_ANY:
        break;
    }
    return false;
}

bool fw_match_all(fw_matcher *m, const cJSON *root, const fw_cond *c,
                  uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!match_one(m, root, &c[i]))
            return false;
    return true;
}

#define EVIDENCE_TEXT_MAX 256

static void explain_value(fw_buf *out, const cJSON *v)
{
    char num[FW_NUMTEXT_MAX];
    const char *t;
    size_t len;
    if (!v) {
        fw_buf_puts(out, ",\"value\":null");
    } else if (cJSON_IsNumber(v)) {
        fw_numtext(v->valuedouble, num);
        /* JSON has no Infinity: a non-finite number is shown as text. */
        fw_buf_printf(out, isfinite(v->valuedouble) ? ",\"value\":%s"
                                                    : ",\"value\":\"%s\"", num);
    } else if (fw_value_text(v, num, &t, &len)) {
        fw_buf_puts(out, ",\"value\":");
        fw_buf_json_str(out, t, len, EVIDENCE_TEXT_MAX);
    } else {
        fw_buf_printf(out, ",\"value\":%s",
                      cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? "true" : "false")
                                      : "null");
    }
}

static void explain_one(fw_matcher *m, const cJSON *root, const fw_cond *c,
                        fw_buf *out)
{
    if (c->kind == FW_C_ANY) {
        /* The first alternative that holds is the reason. */
        fw_buf_puts(out, "{\"any\":");
        for (uint32_t i = 0; i < c->nany; i++) {
            if (match_one(m, root, &c->any[i])) {
                fw_match_explain(m, root, &c->any[i], 1, out);
                break;
            }
        }
        fw_buf_putc(out, '}');
        return;
    }
    const cJSON *v = fw_path_get(root, &c->path);
    fw_buf_puts(out, "{\"field\":");
    fw_buf_json_str(out, c->path.text, strlen(c->path.text), SIZE_MAX);
    switch (c->kind) {
    case FW_C_REGEX:
    case FW_C_NOT_REGEX:
        fw_buf_puts(out, c->kind == FW_C_REGEX ? ",\"regex\":" : ",\"not_regex\":");
        fw_buf_json_str(out, c->pattern, strlen(c->pattern), EVIDENCE_TEXT_MAX);
        if (c->kind == FW_C_REGEX && regex_search(m, c, v) == 1) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
            fw_buf_puts(out, ",\"match\":");
            fw_buf_json_str(out, v->valuestring + ov[0], ov[1] - ov[0],
                            EVIDENCE_TEXT_MAX);
        } else {
            explain_value(out, v);
        }
        break;
    case FW_C_CMP_NUM:
        fw_buf_printf(out, ",\"op\":\"%s\"", fw_op_name(c->op));
        {
            char num[FW_NUMTEXT_MAX];
            fw_numtext(c->num, num);
            fw_buf_printf(out, ",\"limit\":%s", num);
        }
        explain_value(out, v);
        break;
    case FW_C_CMP_STR:
        fw_buf_printf(out, ",\"op\":\"%s\",\"limit\":", fw_op_name(c->op));
        fw_buf_json_str(out, c->str, c->str_len, EVIDENCE_TEXT_MAX);
        explain_value(out, v);
        break;
    case FW_C_IN_LIST:
    case FW_C_NOT_IN_LIST:
        fw_buf_puts(out, c->kind == FW_C_IN_LIST ? ",\"in_list\":"
                                                 : ",\"not_in_list\":");
        fw_buf_json_str(out, c->list->name, strlen(c->list->name), SIZE_MAX);
        explain_value(out, v);
        break;
    case FW_C_ANY:
        break;
    }
    fw_buf_putc(out, '}');
}

void fw_match_explain(fw_matcher *m, const cJSON *root, const fw_cond *c,
                      uint32_t n, fw_buf *out)
{
    fw_buf_putc(out, '[');
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            fw_buf_putc(out, ',');
        explain_one(m, root, &c[i], out);
    }
    fw_buf_putc(out, ']');
}
