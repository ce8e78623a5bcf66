/* match.c — conditions against one event.
 *
 * What each condition form means is its row in cond_forms.c; this file
 * walks the conditions (reading each field once per event) and owns the
 * per-thread PCRE2 resources (match data, a 512 KiB JIT stack, a
 * match context with a low match limit) so that matching takes no lock and
 * one hostile pattern or event costs a bounded amount of work: a limit hit is
 * "no match" plus a counted fault, never a stall.  Type rules are SPEC §2's:
 * a regex never applies to a number, a missing or mistyped field makes a
 * condition false and its not_ form true. */
#include "match.h"
#include "cond_forms.h"
#include "regex_literals.h"

#include <math.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/event.h"

struct fw_matcher {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    uint64_t faults;
    int64_t event_ts;     /* of the event being matched (lists that expire) */

    /* The event's fields as looked up so far (fw_matcher_begin_event): a
     * field is found once per event however many conditions read it — a
     * look-up walks the event's members comparing names, and fifteen
     * rules read the same few fields. */
    const cJSON *root;    /* the event's; NULL: outside an event, no caching */
    const cJSON **field;  /* by fw_path.slot - 1 ... */
    uint32_t *field_gen;  /* ... valid where field_gen == gen */
    uint32_t nfield, gen;
    /* and the searches done so far (one pattern on one field, read by
     * several rules: R201 and R402 share theirs): 1 match, 0 none, | 2
     * when the search hit a limit — by fw_cond.search - 1 */
    uint8_t *found;
    uint32_t *found_gen;
    uint32_t nfound;
    /* and the literal scans of fields done so far (regex_literals.c): the
     * literals found, by scan */
    const fw_ruleset *rs;
    uint64_t *lits;
    uint32_t *lits_gen;
    uint32_t nlits;
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
    free(m->field);
    free(m->field_gen);
    free(m->found);
    free(m->found_gen);
    free(m->lits);
    free(m->lits_gen);
    free(m);
}

/* Grows one of the per-event caches (values and their generations) to
 * `want` entries, the new ones invalid (generation 0). */
#define CACHE_GROW(vals, gens, have, want)                                  \
    do {                                                                    \
        if ((want) > (have)) {                                              \
            (vals) = fw_xrealloc((vals), (want) * sizeof *(vals));          \
            (gens) = fw_xrealloc((gens), (want) * sizeof *(gens));          \
            memset((gens) + (have), 0, ((want) - (have)) * sizeof *(gens)); \
            (have) = (want);                                                \
        }                                                                   \
    } while (0)

void fw_matcher_begin_event(fw_matcher *m, const cJSON *root, const fw_ruleset *rs)
{
    CACHE_GROW(m->field, m->field_gen, m->nfield, rs->npaths);
    CACHE_GROW(m->found, m->found_gen, m->nfound, rs->nsearches);
    CACHE_GROW(m->lits, m->lits_gen, m->nlits, rs->nscans);
    if (++m->gen == 0) {       /* after 2^32 events: forget every entry */
        memset(m->field_gen, 0, m->nfield * sizeof *m->field_gen);
        memset(m->found_gen, 0, m->nfound * sizeof *m->found_gen);
        memset(m->lits_gen, 0, m->nlits * sizeof *m->lits_gen);
        m->gen = 1;
    }
    m->root = root;
    m->rs = rs;
}

void fw_matcher_end_event(fw_matcher *m) { m->root = NULL; }

/* A condition's field: from the event's cache when `root` is the event
 * begun (a path without a slot, or another tree, is looked up). */
static const cJSON *field(fw_matcher *m, const cJSON *root, const fw_path *p)
{
    uint32_t i = p->slot - 1;   /* slot 0 wraps: never below nfield */
    if (root != m->root || i >= m->nfield)
        return fw_path_get(root, p);
    if (m->field_gen[i] != m->gen) {
        m->field_gen[i] = m->gen;
        m->field[i] = fw_path_get(root, p);
    }
    return m->field[i];
}

uint64_t fw_matcher_faults(const fw_matcher *m) { return m->faults; }
void fw_matcher_set_event_ts(fw_matcher *m, int64_t ts) { m->event_ts = ts; }
int64_t fw_matcher_event_ts(const fw_matcher *m) { return m->event_ts; }

const uint64_t *fw_matcher_faults_at(const fw_matcher *m) { return &m->faults; }

/* 1 match, 0 no match (a limit hit counts as a fault). */
int fw_matcher_search(fw_matcher *m, const pcre2_code *re, const cJSON *v)
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
    /* The JIT's fast path: what pcre2_match() calls for a JIT-compiled
     * pattern, without its option checks and its UTF-8 check of the subject
     * (an event's strings are valid UTF-8: the message was checked whole
     * and a \u escape cannot make a surrogate).  A pattern the JIT could not
     * compile (or FRAUDWATCH_NO_JIT) goes to the interpreter as before. */
    int rc = pcre2_jit_match(re, (PCRE2_SPTR)s, len, 0, 0, m->md, m->mctx);
    if (rc == PCRE2_ERROR_JIT_BADOPTION)
        rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, m->md, m->mctx);
    if (rc >= 0)
        return 1;
    if (rc != PCRE2_ERROR_NOMATCH)
        m->faults++; /* match limit, JIT stack, depth or heap limit */
    return 0;
}

/* Search i (of the event's set) cannot match v: its field's literal scan,
 * done once per event, found none of its literals.  Then the regex need
 * not run (and cannot hit a limit). */
static bool ruled_out(fw_matcher *m, uint32_t i, const cJSON *v)
{
    const fw_ruleset *rs = m->rs;
    if (!rs->filters || !rs->filters[i].mask || !cJSON_IsString(v) || !v->valuestring)
        return false;
    uint32_t s = rs->filters[i].scan;
    if (m->lits_gen[s] != m->gen) {
        m->lits_gen[s] = m->gen;
        m->lits[s] = fw_litscan_run(rs->scans[s], v->valuestring, strlen(v->valuestring));
    }
    return !(m->lits[s] & rs->filters[i].mask);
}

int fw_matcher_search_cond(fw_matcher *m, const cJSON *root, const fw_cond *c,
                           const cJSON *v)
{
    uint32_t i = c->search - 1;   /* search 0 wraps: never below nfound */
    if (root != m->root || i >= m->nfound)
        return fw_matcher_search(m, c->re, v);
    if (m->found_gen[i] == m->gen) {
        m->faults += m->found[i] >> 1;   /* a limit hit counts for each rule */
        return m->found[i] & 1;
    }
    uint64_t faults = m->faults;
    int r = ruled_out(m, i, v) ? 0 : fw_matcher_search(m, c->re, v);
    m->found_gen[i] = m->gen;
    m->found[i] = (uint8_t)(r | (m->faults != faults) << 1);
    return r;
}

void fw_matcher_last_match(const fw_matcher *m, size_t *start, size_t *end)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
    *start = ov[0];
    *end = ov[1];
}

/* The form decides (cond_forms.c); the field is read here, once. */
static bool holds(fw_matcher *m, const cJSON *root, const fw_cond *c)
{
    const cJSON *v = c->form->has_field ? field(m, root, &c->path) : NULL;
    return c->form->holds(m, root, c, v);
}

bool fw_match_all(fw_matcher *m, const cJSON *root, const fw_cond *c,
                  uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!holds(m, root, &c[i]))
            return false;
    return true;
}

void fw_match_explain_value(fw_buf *out, const cJSON *v)
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
        fw_buf_json_str(out, t, len, FW_EVIDENCE_TEXT_MAX);
    } else {
        fw_buf_printf(out, ",\"value\":%s",
                      cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? "true" : "false")
                                      : "null");
    }
}

void fw_match_explain(fw_matcher *m, const cJSON *root, const fw_cond *c,
                      uint32_t n, fw_buf *out)
{
    fw_buf_putc(out, '[');
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            fw_buf_putc(out, ',');
        const fw_cond_form *f = c[i].form;
        const cJSON *v = NULL;
        fw_buf_putc(out, '{');
        if (f->has_field) {
            v = fw_path_get(root, &c[i].path);
            fw_buf_puts(out, "\"field\":");
            fw_buf_json_str(out, c[i].path.text, strlen(c[i].path.text), SIZE_MAX);
        }
        f->explain(m, root, &c[i], v, out);
        fw_buf_putc(out, '}');
    }
    fw_buf_putc(out, ']');
}
