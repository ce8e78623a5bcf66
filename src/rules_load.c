/* rules_load.c — rule files and watchlists → a validated, compiled rule set.
 *
 * Owns the rule language's syntax and validation (SPEC §2).  Input is a list
 * of in-memory files, so a directory on disk and a blob from Redis go through
 * the same code; reading a directory (safely: only regular files, sizes
 * checked before reading), file and watchlist names and the .list text
 * belong to rulefiles.c, which the Redis store shares.  Validation never stops at the first problem: every error is
 * collected with its place — "calls.json: rule R101: threshold.window_s: …"
 * — and the set is refused whole if there is any.  Unknown members are
 * errors, so a typo like "treshold" cannot silently disable a threshold.
 *
 * Order of work: watchlists first (rules refer to them), then each rules file
 * in name order, then set-wide checks (duplicate ids), then the per-type
 * index the matcher walks.  Regexes are compiled and JIT-compiled here, once,
 * before anyone else can see the set. */
#include "ruleset_impl.h"
#include "regex_literals.h"
#include "alert_fields.h"
#include "cond_forms.h"
#include "fraudwatch/alloc.h"
#include "fraudwatch/event.h"
#include "rule_kinds.h"
#include "rules_parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ERRORS 50

struct fw_loader {
    char *err;
    size_t errlen;
    size_t used;
    int nerrors;
    const char *file;      /* current file */
    char rule[80];         /* current rule id, or "#3" */
    fw_ruleset *rs;
    size_t rules_cap;
    char **paths;          /* distinct path texts so far: slot i + 1 */
    uint32_t paths_cap;
    struct search_key {         /* each distinct search so far: slot i + 1 */
        uint32_t path;
        bool caseless;
        char *pattern;
    } *searches;
    uint32_t searches_cap;
};

/* The path's slot among the set's distinct paths (fw_path.slot): equal
 * texts share one, so the matcher looks each up once per event. */
static uint32_t path_slot(struct fw_loader *L, const char *text)
{
    fw_ruleset *rs = L->rs;
    for (uint32_t i = 0; i < rs->npaths; i++)
        if (strcmp(L->paths[i], text) == 0)
            return i + 1;
    if (rs->npaths == L->paths_cap) {
        L->paths_cap = L->paths_cap ? L->paths_cap * 2 : 16;
        L->paths = fw_xrealloc(L->paths, L->paths_cap * sizeof *L->paths);
    }
    L->paths[rs->npaths] = fw_xstrdup(text);
    return ++rs->npaths;
}

static void report(struct fw_loader *L, const char *member, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct fw_loader *L, const char *member, const char *fmt, ...)
{
    L->nerrors++;
    if (L->nerrors > MAX_ERRORS || L->used + 1 >= L->errlen)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int n = snprintf(L->err + L->used, L->errlen - L->used, "%s%s%s%s%s%s%s%s",
                     L->used ? "\n" : "", L->file ? L->file : "",
                     L->file ? ": " : "",
                     L->rule[0] ? "rule " : "", L->rule,
                     L->rule[0] ? ": " : "",
                     member ? member : "", member ? ": " : "");
    if (n > 0)
        L->used = (size_t)n + L->used < L->errlen ? L->used + (size_t)n
                                                   : L->errlen - 1;
    n = snprintf(L->err + L->used, L->errlen - L->used, "%s", msg);
    if (n > 0)
        L->used = (size_t)n + L->used < L->errlen ? L->used + (size_t)n
                                                   : L->errlen - 1;
}

/* ---- member bookkeeping ------------------------------------------------ */

/* Reports members of `obj` not in `allowed` (NULL-terminated) and members
 * that appear twice.  Returns false if any. */
static bool check_members(struct fw_loader *L, const cJSON *obj,
                          const char *where, const char *const *allowed)
{
    /* Every object of the language has a dozen members at most; refusing a
     * huge one up front keeps the duplicate check below cheap. */
    int members = cJSON_GetArraySize(obj);
    if (members > 64) {
        report(L, where[0] ? where : NULL, "has %d members; no object of the "
                                          "rule language has more than 12", members);
        return false;
    }
    bool ok = true;
    for (const cJSON *m = obj->child; m; m = m->next) {
        bool known = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, m->string) == 0)
                known = true;
        char place[256];
        snprintf(place, sizeof place, "%s%s%s", where, where[0] ? "." : "",
                 m->string);
        if (!known) {
            report(L, place, "unknown member \"%s\"", m->string);
            ok = false;
        }
        for (const cJSON *n = m->next; n; n = n->next) {
            if (strcmp(n->string, m->string) == 0) {
                report(L, place, "member appears more than once");
                ok = false;
                break;
            }
        }
    }
    return ok;
}

static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* An integer member in [lo, hi]; *out untouched when absent. */
static bool get_int(struct fw_loader *L, const cJSON *obj, const char *name,
                    const char *place, int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *v = member(obj, name);
    if (!v)
        return true;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) {
        report(L, place, "must be an integer");
        return false;
    }
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi) {
        report(L, place, "%.17g is out of range %lld..%lld", v->valuedouble,
               (long long)lo, (long long)hi);
        return false;
    }
    *out = (int64_t)v->valuedouble;
    return true;
}

static bool parse_path(struct fw_loader *L, const cJSON *v, const char *place,
                       fw_path *out)
{
    if (!cJSON_IsString(v) || !v->valuestring[0]) {
        report(L, place, "must be a field name (a non-empty string)");
        return false;
    }
    const char *s = v->valuestring;
    uint32_t n = 1;
    for (const char *p = s; *p; p++)
        if (*p == '.')
            n++;
    char **parts = fw_xcalloc(n, sizeof *parts);
    const char *start = s;
    uint32_t i = 0;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (p == start) {
                report(L, place, "field path \"%s\" has an empty part", s);
                for (uint32_t j = 0; j < i; j++)
                    free(parts[j]);
                free(parts);
                return false;
            }
            parts[i] = fw_xcalloc((size_t)(p - start) + 1, 1);
            memcpy(parts[i], start, (size_t)(p - start));
            i++;
            start = p + 1;
            if (*p == '\0')
                break;
        }
    }
    out->text = fw_xstrdup(s);
    out->parts = parts;
    out->nparts = n;
    out->slot = path_slot(L, s);
    return true;
}

/* ---- conditions ---------------------------------------------------------- */

static bool parse_op(const char *s, enum fw_op *op)
{
    static const struct { const char *s; enum fw_op op; } ops[] = {
        { "<", FW_OP_LT }, { "<=", FW_OP_LE }, { ">", FW_OP_GT },
        { ">=", FW_OP_GE }, { "==", FW_OP_EQ }, { "!=", FW_OP_NE },
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].s, s) == 0) {
            *op = ops[i].op;
            return true;
        }
    }
    return false;
}

static bool compile_regex(struct fw_loader *L, const char *place,
                          const char *pattern, bool caseless, pcre2_code **out)
{
    size_t len = strlen(pattern);
    if (len > FW_MAX_PATTERN) {
        report(L, place, "pattern is %zu bytes, more than the limit of %d",
               len, FW_MAX_PATTERN);
        return false;
    }
    int code;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    if (caseless)
        opts |= PCRE2_CASELESS;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &code,
                                   &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        report(L, place, "regex \"%.200s%s\" does not compile: %s at offset %zu",
               pattern, len > 200 ? "..." : "", (const char *)msg, (size_t)off);
        return false;
    }
    /* JIT failure (no JIT on this CPU, or a pattern too large for it) is not
     * an error: the interpreter honours the same limits.  FRAUDWATCH_NO_JIT=1
     * turns JIT off, for valgrind, which cannot follow JIT-generated code. */
    const char *nojit = getenv("FRAUDWATCH_NO_JIT");
    if (!nojit || strcmp(nojit, "1") != 0)
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    *out = re;
    return true;
}

/* One condition: its members checked against the condition-form table
 * (cond_forms.c), the one form it names found, its field read, the rest
 * left to the form's row. */
static bool parse_cond(struct fw_loader *L, const cJSON *c, const char *place,
                       int depth, fw_cond *out)
{
    /* Every member any form accepts ("field", the forms' names and their
     * own members), and the names of the forms, for the messages. */
    const char *allowed[64];
    size_t nallowed = 0;
    char field_forms[256] = "", all_forms[256] = "";
    allowed[nallowed++] = "field";
    for (size_t i = 0; i < fw_cond_nforms; i++) {
        const fw_cond_form *f = &fw_cond_forms[i];
        allowed[nallowed++] = f->name;
        for (const char *const *m = f->members; *m; m++) {
            bool seen = false;
            for (size_t j = 0; j < nallowed; j++)
                seen = seen || strcmp(allowed[j], *m) == 0;
            if (!seen)
                allowed[nallowed++] = *m;
        }
        if (f->has_field)
            snprintf(field_forms + strlen(field_forms),
                     sizeof field_forms - strlen(field_forms), "%s%s",
                     field_forms[0] ? ", " : "", f->name);
        snprintf(all_forms + strlen(all_forms), sizeof all_forms - strlen(all_forms),
                 "%s%s", all_forms[0] ? ", " : "", f->name);
    }
    allowed[nallowed] = NULL;
    if (!cJSON_IsObject(c)) {
        report(L, place, "a condition must be an object");
        return false;
    }
    if (!check_members(L, c, place, allowed))
        return false;

    /* A form without a field ("any") stands alone: its row says so. */
    for (size_t i = 0; i < fw_cond_nforms; i++) {
        const fw_cond_form *f = &fw_cond_forms[i];
        const cJSON *v = member(c, f->name);
        if (!f->has_field && v) {
            out->form = f;
            return f->parse(L, c, v, place, depth, out);
        }
    }
    int nforms = 0;
    const fw_cond_form *form = NULL;
    for (size_t i = 0; i < fw_cond_nforms; i++) {
        if (fw_cond_forms[i].has_field && member(c, fw_cond_forms[i].name)) {
            nforms++;
            form = &fw_cond_forms[i];
        }
    }
    if (nforms != 1) {
        if (nforms)
            report(L, place, "has more than one of %s", field_forms);
        else
            report(L, place, "needs one of %s", all_forms);
        return false;
    }
    char sub[300];
    snprintf(sub, sizeof sub, "%s.field", place);
    const cJSON *field = member(c, "field");
    if (!field) {
        report(L, sub, "missing (the event field the condition reads)");
        return false;
    }
    if (!parse_path(L, field, sub, &out->path))
        return false;

    /* A member another form takes, given to this one. */
    for (const cJSON *m = c->child; m; m = m->next) {
        bool mine = strcmp(m->string, "field") == 0 || strcmp(m->string, form->name) == 0;
        for (const char *const *a = form->members; *a && !mine; a++)
            mine = strcmp(*a, m->string) == 0;
        if (mine)
            continue;
        char owners[128] = "";
        int nowners = 0;
        for (size_t i = 0; i < fw_cond_nforms; i++)
            for (const char *const *a = fw_cond_forms[i].members; *a; a++)
                if (strcmp(*a, m->string) == 0)
                    snprintf(owners + strlen(owners), sizeof owners - strlen(owners),
                             "%s%s", nowners++ ? " and " : "", fw_cond_forms[i].name);
        report(L, place, "\"%s\" applies only to %s", m->string, owners);
        return false;
    }
    out->form = form;
    return form->parse(L, c, member(c, form->name), place, depth, out);
}

static bool parse_conds(struct fw_loader *L, const cJSON *arr, const char *place,
                        int depth, fw_cond **out, uint32_t *nout)
{
    if (!cJSON_IsArray(arr)) {
        report(L, place, "must be an array of conditions");
        return false;
    }
    uint32_t n = (uint32_t)cJSON_GetArraySize(arr);
    fw_cond *conds = fw_xcalloc(n, sizeof *conds);
    bool ok = true;
    uint32_t i = 0;
    for (const cJSON *c = arr->child; c; c = c->next, i++) {
        char sub[300];
        snprintf(sub, sizeof sub, "%s[%u]", place, i);
        if (!parse_cond(L, c, sub, depth, &conds[i]))
            ok = false;
    }
    *out = conds;
    *nout = n;
    return ok;
}

/* ---- for the condition forms (rules_parse.h) ---------------------------- */

void fw_lx_report(fw_loader *L, const char *place, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report(L, place, "%s", msg);
}

const cJSON *fw_lx_member(const cJSON *obj, const char *name) { return member(obj, name); }

bool fw_lx_path(fw_loader *L, const cJSON *v, const char *place, fw_path *out)
{
    return parse_path(L, v, place, out);
}

/* Each distinct search whose literals are known (regex_literals.c) gets
 * the bits of its literals in one scan of its field, shared with the other
 * searches on that field while the scan has room: match.c runs a search
 * only when the event's scan of that field found one of its literals. */
static void plan_literal_scans(fw_ruleset *rs, const struct search_key *keys)
{
    if (!rs->nsearches)
        return;
    rs->filters = fw_xcalloc(rs->nsearches, sizeof *rs->filters);
    uint32_t *field_of = fw_xcalloc(rs->nsearches, sizeof *field_of);
    for (uint32_t i = 0; i < rs->nsearches; i++) {
        fw_litset set;
        if (!keys[i].path || !fw_regex_literals(keys[i].pattern, keys[i].caseless, &set))
            continue;
        uint64_t mask = 0;
        uint32_t at = 0;                    /* the scan it joins */
        for (uint32_t s = 0; s < rs->nscans && !mask; s++)
            if (field_of[s] == keys[i].path && (mask = fw_litscan_add(rs->scans[s], &set)))
                at = s;
        if (!mask) {                        /* a first scan of this field, or one more */
            rs->scans = fw_xrealloc(rs->scans, (rs->nscans + 1) * sizeof *rs->scans);
            at = rs->nscans++;
            rs->scans[at] = fw_litscan_new();
            field_of[at] = keys[i].path;
            mask = fw_litscan_add(rs->scans[at], &set);
        }
        rs->filters[i] = (struct fw_search_filter){ at, mask };
        fw_litset_clear(&set);
    }
    free(field_of);
}

uint32_t fw_lx_search_slot(fw_loader *L, const fw_cond *c)
{
    fw_ruleset *rs = L->rs;
    for (uint32_t i = 0; i < rs->nsearches; i++) {
        const struct search_key *k = &L->searches[i];
        if (k->path == c->path.slot && k->caseless == c->caseless &&
            strcmp(k->pattern, c->pattern) == 0)
            return i + 1;
    }
    if (rs->nsearches == L->searches_cap) {
        L->searches_cap = L->searches_cap ? L->searches_cap * 2 : 16;
        L->searches = fw_xrealloc(L->searches, L->searches_cap * sizeof *L->searches);
    }
    L->searches[rs->nsearches] = (struct search_key){ c->path.slot, c->caseless,
                                                      fw_xstrdup(c->pattern) };
    return ++rs->nsearches;
}

bool fw_lx_regex(fw_loader *L, const char *place, const char *pattern, bool caseless,
                 pcre2_code **out)
{
    return compile_regex(L, place, pattern, caseless, out);
}

bool fw_lx_conds(fw_loader *L, const cJSON *arr, const char *place, int depth,
                 fw_cond **out, uint32_t *nout)
{
    return parse_conds(L, arr, place, depth, out, nout);
}

bool fw_lx_op(const char *s, enum fw_op *op) { return parse_op(s, op); }

bool fw_lx_int(fw_loader *L, const cJSON *obj, const char *name, const char *place,
               int64_t lo, int64_t hi, int64_t *out)
{
    return get_int(L, obj, name, place, lo, hi, out);
}

bool fw_lx_members(fw_loader *L, const cJSON *obj, const char *place,
                   const char *const *allowed)
{
    return check_members(L, obj, place, allowed);
}

char *fw_lx_strdup(const char *s) { return fw_xstrdup(s); }
void *fw_lx_calloc(size_t n, size_t size) { return fw_xcalloc(n, size); }

void fw_lx_one_step(fw_loader *L, const cJSON *obj, fw_rule *r)
{
    if (member(obj, "within_s"))
        report(L, "within_s", "only a sequence rule has within_s");
    r->steps = fw_xcalloc(1, sizeof *r->steps);
    r->nsteps = 1;
    const cJSON *ev = member(obj, "event");
    if (!ev)
        report(L, "event", "missing (an event type, or \"*\" for any)");
    else if (!cJSON_IsString(ev) || !ev->valuestring[0])
        report(L, "event", "must be an event type, or \"*\" for any");
    else
        r->steps[0].event = fw_xstrdup(ev->valuestring);
    const cJSON *w = member(obj, "where");
    if (w)
        parse_conds(L, w, "where", 0, &r->steps[0].where, &r->steps[0].nwhere);
}

const fw_list *fw_lx_list(fw_loader *L, const char *name)
{
    for (uint32_t i = 0; i < L->rs->nlists; i++)
        if (strcmp(L->rs->lists[i].name, name) == 0)
            return &L->rs->lists[i];
    return NULL;
}

void fw_lx_list_names(fw_loader *L, char *names, size_t cap)
{
    size_t used = 0;
    names[0] = '\0';
    for (uint32_t i = 0; i < L->rs->nlists && used < cap - 1; i++) {
        int n = snprintf(names + used, cap - used, "%s%s", i ? ", " : "",
                         L->rs->lists[i].name);
        if (n > 0)
            used += (size_t)n;
    }
}

/* ---- one rule ------------------------------------------------------------- */

static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
            return false;
    return true;
}

static uint64_t signature(const fw_rule *r, const cJSON *obj)
{
    /* The parts of a rule that define its state (SPEC §4): id, event,
     * where, group_by/keys, window and aggregate.  Not the limit, severity,
     * name or suppression. */
    char *parts[6] = { 0 };
    const char *names[] = { "event", "where", "sequence" };
    for (int i = 0; i < 3; i++) {
        const cJSON *m = member(obj, names[i]);
        parts[i] = m ? cJSON_PrintUnformatted(m) : NULL;
    }
    const cJSON *t = member(obj, "threshold");
    if (t) {
        parts[3] = cJSON_PrintUnformatted(member(t, "group_by"));
        const cJSON *a = member(t, "sum") ? member(t, "sum")
                         : member(t, "distinct");
        if (a)
            parts[4] = cJSON_PrintUnformatted(member(a, "field"));
    }
    if (fw_rule_kind(r)->subject_is_key && r->subject.nparts)
        parts[5] = fw_xstrdup(r->subject.text);

    uint64_t h = fw_hash64(r->id, strlen(r->id), 0x5eed);
    uint64_t fixed[4] = { (uint64_t)r->kind, (uint64_t)r->agg,
                          (uint64_t)r->window_ms, (uint64_t)r->within_ms };
    h = fw_hash64(fixed, sizeof fixed, h);
    for (int i = 0; i < 6; i++) {
        const char *p = parts[i] ? parts[i] : "";
        h = fw_hash64(p, strlen(p) + 1, h);
        if (i < 5)
            cJSON_free(parts[i]);
        else
            free(parts[i]);
    }
    return h;
}

/* ---- what the alert tells the officer (SPEC §2, §3) ------------------------ */

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static char *parse_text(struct fw_loader *L, const cJSON *obj, const char *name)
{
    const cJSON *v = member(obj, name);
    if (!v)
        return NULL;
    if (!cJSON_IsString(v)) {
        report(L, name, "must be a string");
        return NULL;
    }
    size_t n = strlen(v->valuestring);
    if (n > FW_RULE_TEXT_MAX) {
        report(L, name, "is %zu bytes, more than the limit of %d", n, FW_RULE_TEXT_MAX);
        return NULL;
    }
    return fw_xstrdup(v->valuestring);
}

static void parse_tags(struct fw_loader *L, const cJSON *obj, fw_rule *r)
{
    const cJSON *v = member(obj, "tags");
    if (!v)
        return;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 0 || n > FW_RULE_TAGS_MAX) {
        report(L, "tags", "must be an array of at most %d strings", FW_RULE_TAGS_MAX);
        return;
    }
    r->tags = fw_xcalloc((size_t)n + 1, sizeof *r->tags);
    int i = 0;
    for (const cJSON *t = v->child; t; t = t->next, i++) {
        char place[32];
        snprintf(place, sizeof place, "tags[%d]", i);
        if (!cJSON_IsString(t) || !t->valuestring[0] ||
            strlen(t->valuestring) > FW_RULE_TAG_MAX || has_control(t->valuestring)) {
            report(L, place, "must be a non-empty string of at most %d bytes without "
                             "control characters", FW_RULE_TAG_MAX);
            continue;
        }
        bool dup = false;
        for (uint32_t j = 0; j < r->ntags && !dup; j++)
            dup = strcmp(r->tags[j], t->valuestring) == 0;
        if (dup) {
            report(L, place, "\"%s\" is listed twice", t->valuestring);
            continue;
        }
        r->tags[r->ntags++] = fw_xstrdup(t->valuestring);
    }
}

static void parse_alert_fields(struct fw_loader *L, const cJSON *obj, fw_rule *r)
{
    const cJSON *v = member(obj, "alert_fields");
    if (!v)
        return;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1 || n > FW_ALERT_FIELDS_MAX) {
        report(L, "alert_fields", "must be an array of 1..%d field paths (leave it "
                                  "out to show the event's top-level values)",
               FW_ALERT_FIELDS_MAX);
        return;
    }
    r->alert_fields = fw_xcalloc((size_t)n, sizeof *r->alert_fields);
    r->alert_fields_h = fw_xcalloc((size_t)n, sizeof *r->alert_fields_h);
    int i = 0;
    for (const cJSON *f = v->child; f; f = f->next, i++) {
        char place[40];
        snprintf(place, sizeof place, "alert_fields[%d]", i);
        if (cJSON_IsString(f) && strlen(f->valuestring) > FW_FIELD_PATH_MAX) {
            report(L, place, "a field path is at most %d bytes", FW_FIELD_PATH_MAX);
            continue;
        }
        if (cJSON_IsString(f) && has_control(f->valuestring)) {
            report(L, place, "field path \"%s\" has a control character",
                   f->valuestring);
            continue;
        }
        if (cJSON_IsString(f) && (isspace((unsigned char)f->valuestring[0]) ||
                                  (f->valuestring[0] &&
                                   isspace((unsigned char)f->valuestring[strlen(f->valuestring) - 1])))) {
            report(L, place, "field path \"%s\" starts or ends with white space",
                   f->valuestring);
            continue;
        }
        fw_path p = { 0 };
        if (!parse_path(L, f, place, &p))
            continue;
        bool dup = false;
        for (uint32_t j = 0; j < r->nalert_fields && !dup; j++)
            dup = strcmp(r->alert_fields[j].text, p.text) == 0;
        if (dup) {
            report(L, place, "\"%s\" is listed twice", p.text);
            for (uint32_t k = 0; k < p.nparts; k++)
                free(p.parts[k]);
            free(p.parts);
            free(p.text);
            continue;
        }
        r->alert_fields_h[r->nalert_fields] = fw_fields_name_hash(p.parts[0]);
        r->alert_fields[r->nalert_fields++] = p;
    }
}

static void parse_alert_content(struct fw_loader *L, const cJSON *obj, fw_rule *r)
{
    r->description = parse_text(L, obj, "description");
    r->action = parse_text(L, obj, "action");
    parse_tags(L, obj, r);
    parse_alert_fields(L, obj, r);
}

static void parse_rule(struct fw_loader *L, const cJSON *obj, int index)
{
    static const char *const allowed[] = {
        "id", "name", "description", "severity", "enabled", "event", "where",
        "threshold", "subject", "suppress_s", "sequence", "within_s",
        "action", "tags", "alert_fields", "mode", NULL
    };
    snprintf(L->rule, sizeof L->rule, "#%d", index + 1);
    if (!cJSON_IsObject(obj)) {
        report(L, NULL, "a rule must be a JSON object");
        return;
    }
    const cJSON *id = member(obj, "id");
    if (!id) {
        report(L, "id", "missing");
        return;
    }
    if (!cJSON_IsString(id) || !valid_id(id->valuestring)) {
        report(L, "id", "must be 1..64 characters of A-Z a-z 0-9 _ . -");
        return;
    }
    snprintf(L->rule, sizeof L->rule, "%s", id->valuestring);

    int before = L->nerrors;
    check_members(L, obj, "", allowed);

    fw_rule r = { 0 };
    r.id = fw_xstrdup(id->valuestring);
    r.file = fw_xstrdup(L->file);
    r.severity = FW_SEV_MEDIUM;
    r.enabled = true;

    const cJSON *v;
    if ((v = member(obj, "name")) && !cJSON_IsString(v))
        report(L, "name", "must be a string");
    r.name = fw_xstrdup(cJSON_IsString(v) ? v->valuestring : r.id);
    parse_alert_content(L, obj, &r);
    if ((v = member(obj, "severity"))) {
        static const char *const sev[] = { "low", "medium", "high",
                                           "critical" };
        bool found = false;
        for (int i = 0; i < 4 && cJSON_IsString(v); i++) {
            if (strcmp(v->valuestring, sev[i]) == 0) {
                r.severity = (enum fw_severity)i;
                found = true;
            }
        }
        if (!found)
            report(L, "severity", "must be low, medium, high or critical");
    }
    if ((v = member(obj, "enabled"))) {
        if (!cJSON_IsBool(v))
            report(L, "enabled", "must be true or false");
        else
            r.enabled = cJSON_IsTrue(v);
    }
    if ((v = member(obj, "mode"))) {
        /* live (default) | shadow; deliberately not in signature(). */
        if (cJSON_IsString(v) && strcmp(v->valuestring, "shadow") == 0)
            r.shadow = true;
        else if (!cJSON_IsString(v) || strcmp(v->valuestring, "live") != 0)
            report(L, "mode", "must be \"live\" or \"shadow\"");
    }
    if ((v = member(obj, "subject")))
        parse_path(L, v, "subject", &r.subject);

    /* The kind: the last row of the table whose selecting member is there
     * (so "sequence" wins over "threshold"), else the default (plain). */
    const fw_rule_kind_ops *kind = NULL;
    for (uint32_t k = FW_RULE_NKINDS; k-- > 0 && !kind;)
        if (fw_rule_kinds[k]->selector && member(obj, fw_rule_kinds[k]->selector))
            kind = fw_rule_kinds[k];
    for (uint32_t k = 0; k < FW_RULE_NKINDS && !kind; k++)
        if (!fw_rule_kinds[k]->selector)
            kind = fw_rule_kinds[k];
    r.kind = kind->code;
    kind->parse(L, obj, &r);
    int64_t sup = -1;
    if (get_int(L, obj, "suppress_s", "suppress_s", 0, FW_WINDOW_MAX_S, &sup) &&
        sup >= 0)
        r.suppress_ms = sup * 1000;
    r.stateful = kind->lifetime(&r) > 0 || r.suppress_ms > 0;
    r.state_sig = signature(&r, obj);

    fw_ruleset *rs = L->rs;
    if (rs->nrules == L->rules_cap) {
        L->rules_cap = L->rules_cap ? L->rules_cap * 2 : 16;
        rs->rules = fw_xrealloc(rs->rules, L->rules_cap * sizeof *rs->rules);
    }
    /* Keep even a rule with errors, so that freeing is one code path. */
    rs->rules[rs->nrules++] = r;
    (void)before;
}

/* ---- files ---------------------------------------------------------------- */

static void line_col(const char *data, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = data; p < at; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void load_rules_file(struct fw_loader *L, const fw_rulefile *f)
{
    L->file = f->name;
    L->rule[0] = '\0';
    /* Names, fields and strings of a rule end up in alerts: they must be
     * text an alert consumer can read. */
    if (!fw_utf8_valid(f->data, f->len)) {
        report(L, NULL, "not valid UTF-8");
        return;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(f->data, f->len, &end, 0);
    if (!root) {
        int line, col;
        const char *at = end ? end : cJSON_GetErrorPtr();
        if (!at || at < f->data || at > f->data + f->len)
            at = f->data;
        line_col(f->data, at, &line, &col);
        report(L, NULL, "not valid JSON (error near line %d, column %d)", line,
               col);
        return;
    }
    for (const char *q = end; q < f->data + f->len; q++) {
        if (!isspace((unsigned char)*q)) {
            int line, col;
            line_col(f->data, q, &line, &col);
            report(L, NULL, "unexpected text after the JSON value at line %d, "
                            "column %d", line, col);
            cJSON_Delete(root);
            return;
        }
    }
    const cJSON *rules = root;
    if (cJSON_IsObject(root)) {
        static const char *const allowed[] = { "rules", NULL };
        if (!check_members(L, root, "", allowed)) {
            cJSON_Delete(root);
            return;
        }
        rules = member(root, "rules");
    }
    if (!cJSON_IsArray(rules)) {
        report(L, NULL, "must be an array of rules or an object "
                        "{\"rules\": [...]}");
        cJSON_Delete(root);
        return;
    }
    int i = 0;
    for (const cJSON *r = rules->child; r; r = r->next, i++)
        parse_rule(L, r, i);
    L->rule[0] = '\0';
    cJSON_Delete(root);
}

static void load_list_file(struct fw_loader *L, const fw_rulefile *f)
{
    L->file = f->name;
    L->rule[0] = '\0';
    size_t nlen = strlen(f->name) - strlen(".list");
    if (!fw_rulefiles_valid_list_name(f->name, nlen)) {
        report(L, NULL, "a watchlist name must be " FW_LIST_NAME_RULE);
        return;
    }
    /* Count lines for sizing; the pool holds each value with a length. */
    size_t lines = 1;
    for (size_t i = 0; i < f->len; i++)
        if (f->data[i] == '\n')
            lines++;
    fw_list *l = &L->rs->lists[L->rs->nlists];
    l->name = fw_xcalloc(nlen + 1, 1);
    memcpy(l->name, f->name, nlen);
    L->rs->nlists++;

    fw_listbuild *b = fw_listbuild_sized(lines, f->len + lines * sizeof(uint32_t) + 1);
    fw_listtext it;
    fw_listentry e;
    char bad[400];
    int rc;
    fw_listtext_init(&it, f->data, f->len);
    while ((rc = fw_listtext_entry(&it, &e, bad, sizeof bad)) != 0) {
        const char *why;
        if (rc < 0) {   /* VALUE<TAB>UNTIL[<TAB>REASON] with a bad column */
            report(L, NULL, "%s", bad);
            continue;
        }
        if (!fw_list_entry_ok(e.value, e.n, &why)) {
            report(L, NULL, "line %zu: the entry %s", it.lineno, why);
            continue;
        }
        /* A repeated value is harmless; its last line's UNTIL wins. */
        fw_listbuild_put(b, e.value, e.n, e.until);
    }
    fw_listbuild_finish(b, l);
    fw_listbuild_free(b);
}

/* A watchlist given as a part (fw_ruleset_load_parts): built, or shared
 * with `prev`. */
static void load_list_part(struct fw_loader *L, const fw_listpart *p,
                           const fw_ruleset *prev)
{
    char file[96];
    snprintf(file, sizeof file, "%.64s.list", p->name ? p->name : "");
    L->file = file;
    L->rule[0] = '\0';
    if (!p->name || !fw_rulefiles_valid_list_name(p->name, strlen(p->name))) {
        report(L, NULL, "a watchlist name must be " FW_LIST_NAME_RULE);
        L->file = NULL;
        return;
    }
    fw_list *l = &L->rs->lists[L->rs->nlists];
    if (!p->entries) {
        const fw_list *old = NULL;
        for (uint32_t i = 0; prev && i < prev->nlists && !old; i++)
            if (strcmp(prev->lists[i].name, p->name) == 0)
                old = &prev->lists[i];
        if (!old) {
            report(L, NULL, "no earlier copy of this watchlist to keep (read it whole)");
            L->file = NULL;
            return;
        }
        fw_list_share(old, l);
        l->version = p->version;
        L->rs->nlists++;
        L->file = NULL;
        return;
    }
    const char *first;
    size_t bad = fw_listbuild_bad(p->entries, &first);
    if (bad)
        report(L, NULL, "%zu entr%s could never match an event, the first %s",
               bad, bad == 1 ? "y" : "ies", first);
    l->name = fw_xstrdup(p->name);
    l->version = p->version;
    fw_listbuild_finish(p->entries, l);
    L->rs->nlists++;
    L->file = NULL;
}
static bool id_eq(const void *item, const void *key, size_t len)
{
    const fw_rule *r = item;
    return strlen(r->id) == len && memcmp(r->id, key, len) == 0;
}

/* The whole load: lists from `files` (NAME.list) or from `parts` (when
 * given), then the rules of `files`. */
static int load(const fw_rulefile *files, size_t nfiles, const fw_listpart *parts,
                size_t nparts, const fw_ruleset *prev, uint64_t version,
                fw_ruleset **out, char *err, size_t errlen)
{
    char dummy[1];
    struct fw_loader L = { .err = errlen ? err : dummy,
                        .errlen = errlen ? errlen : 1 };
    L.err[0] = '\0';
    fw_ruleset *rs = fw_xcalloc(1, sizeof *rs);
    atomic_init(&rs->refs, 1);
    rs->version = version;
    rs->lists = fw_xcalloc(parts ? nparts + 1 : nfiles + 1, sizeof *rs->lists);
    L.rs = rs;

    size_t nrulefiles = 0;
    if (parts)
        for (size_t i = 0; i < nparts; i++)
            load_list_part(&L, &parts[i], prev);
    else
        for (size_t i = 0; i < nfiles; i++)
            if (fw_rulefiles_is_list(files[i].name))
                load_list_file(&L, &files[i]);
    for (uint32_t i = 0; i < rs->nlists; i++)
        for (uint32_t j = i + 1; j < rs->nlists; j++)
            if (strcmp(rs->lists[i].name, rs->lists[j].name) == 0) {
                L.file = NULL;
                report(&L, NULL, "watchlist \"%s\" is defined twice",
                       rs->lists[i].name);
            }
    for (size_t i = 0; i < nfiles; i++) {
        if (fw_rulefiles_is_rules(files[i].name)) {
            /* A directory was checked before it was read (rulefiles.c);
             * this is for files from elsewhere (Redis, a caller). */
            if (files[i].len > FW_RULEFILE_MAX_BYTES) {
                L.file = files[i].name;
                report(&L, NULL, "file is larger than %zu MiB",
                       FW_RULEFILE_MAX_BYTES >> 20);
                continue;
            }
            load_rules_file(&L, &files[i]);
            nrulefiles++;
        }
    }
    L.file = NULL;
    L.rule[0] = '\0';
    if (nrulefiles == 0)
        report(&L, NULL, "no rules files (*.json) found");

    /* Rule ids are unique across the whole set. */
    fw_hmap *ids = fw_hmap_new(rs->nrules);
    for (uint32_t i = 0; ids && i < rs->nrules; i++) {
        fw_rule *r = &rs->rules[i];
        uint64_t h = fw_hash64(r->id, strlen(r->id), 0);
        const fw_rule *first = fw_hmap_find(ids, h, r->id, strlen(r->id), id_eq);
        if (first) {
            L.file = r->file;
            snprintf(L.rule, sizeof L.rule, "%s", r->id);
            report(&L, "id", "duplicate rule id (first defined in %s)",
                   first->file);
        } else {
            fw_hmap_insert(ids, h, r);
        }
    }
    fw_hmap_free(ids);
    for (uint32_t i = 0; i < rs->npaths; i++)
        free(L.paths[i]);
    free(L.paths);
    plan_literal_scans(rs, L.searches);
    for (uint32_t i = 0; i < rs->nsearches; i++)
        free(L.searches[i].pattern);
    free(L.searches);

    if (L.nerrors) {
        if (L.nerrors > MAX_ERRORS && L.used + 40 < L.errlen)
            snprintf(L.err + L.used, L.errlen - L.used, "\n... and %d more errors",
                     L.nerrors - MAX_ERRORS);
        fw_ruleset_unref(rs);
        return -1;
    }
    fw_ruleset_build_index(rs);
    /* The cost ceiling: every regex on a type is a search per event of it. */
    uint32_t limit = fw_ruleset_max_regexes();
    L.file = NULL;
    L.rule[0] = '\0';
    for (size_t i = 0; i < fw_ruleset_cost_count(rs); i++) {
        fw_ruleset_cost c;
        fw_ruleset_cost_at(rs, i, &c);
        if (c.regexes > limit)
            report(&L, NULL, "too costly: an event of type %s%s%s would run %u regex "
                             "searches (limit %u, rules.max_regex_per_event or "
                             "--max-regex-per-event); merge patterns on the same field "
                             "into one alternation, or raise the limit knowingly",
                   c.type ? "\"" : "", c.type ? c.type : "(any other)", c.type ? "\"" : "",
                   c.regexes, limit);
    }
    if (L.nerrors) {
        fw_ruleset_unref(rs);
        return -1;
    }
    *out = rs;
    return 0;
}

int fw_ruleset_load_files(const fw_rulefile *files, size_t nfiles,
                          uint64_t version, fw_ruleset **out, char *err,
                          size_t errlen)
{
    return load(files, nfiles, NULL, 0, NULL, version, out, err, errlen);
}

int fw_ruleset_load_parts(const fw_rulefile *files, size_t nfiles,
                          const fw_listpart *lists, size_t nlists,
                          const fw_ruleset *prev, uint64_t version,
                          fw_ruleset **out, char *err, size_t errlen)
{
    static const fw_listpart none;
    return load(files, nfiles, lists ? lists : &none, lists ? nlists : 0, prev,
                version, out, err, errlen);
}

int fw_ruleset_load_dir(const char *dir, uint64_t version, fw_ruleset **out,
                        char *err, size_t errlen)
{
    fw_rulefile *files;
    size_t n;
    if (fw_rulefiles_read_dir(dir, &files, &n, err, errlen) != 0)
        return -1;
    int rc = fw_ruleset_load_files(files, n, version, out, err, errlen);
    fw_rulefiles_free(files, n);
    return rc;
}
