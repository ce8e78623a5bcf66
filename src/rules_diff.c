/* rules_diff.c — the canonical form of a rule set's files (what the rule
 * history hashes and keeps) and the rule-by-rule comparison of two sets
 * (`rules diff`).  No Redis here: the history (rstore_history.c) and the
 * CLI (cli_history.c) hand it files, from Redis or from a directory.
 *
 * Why a canonical form for lists: a .list file's comments, blank lines,
 * order and repeats do not change what the loader (and Redis, a set) holds,
 * and a list read back from Redis comes in SSCAN order; sorting the
 * entries once each makes "the same list" the same hash wherever it came
 * from.  Rule files are hashed byte for byte: they are stored so.
 *
 * Why rule by rule: an operator asks "what does this push change", and the
 * answer is rules (by id) and their members, not lines of JSON.  Members
 * are compared as JSON values (cJSON_Compare), so key order and spacing do
 * not count. */
#include "fraudwatch/rulehistory.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/buf.h"
#include "sha256.h"

void fw_rhist_sha256_hex(const void *data, size_t len, char out[65])
{
    fw_sha256 s;
    unsigned char d[32];
    fw_sha256_init(&s);
    fw_sha256_update(&s, data, len);
    fw_sha256_final(&s, d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

struct span {
    const char *p;
    size_t n;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* An entry to sort: its first 8 bytes big-endian (zero-padded) as a key,
 * so most comparisons are one integer comparison; ties go to memcmp. */
struct keyed {
    uint64_t key;
    const char *p;
    size_t n;
};

static int keyed_cmp(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return span_cmp(&(struct span){ x->p, x->n }, &(struct span){ y->p, y->n });
}

char *fw_rhist_list_canonical(const char *data, size_t len, size_t *outlen,
                              size_t *entries)
{
    size_t cap = 1024, n = 0, bytes = 0;
    struct keyed *v = fw_xmalloc(cap * sizeof *v);
    fw_listtext it;
    const char *s;
    size_t sl;
    fw_listtext_init(&it, data ? data : "", data ? len : 0);
    while (fw_listtext_next(&it, &s, &sl)) {
        if (n == cap) {
            cap *= 2;
            v = fw_xrealloc(v, cap * sizeof *v);
        }
        uint64_t k = 0;
        for (size_t i = 0; i < 8; i++)
            k = k << 8 | (i < sl ? (unsigned char)s[i] : 0);
        v[n++] = (struct keyed){ k, s, sl };
        bytes += sl + 1;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, keyed_cmp);
    char *out = fw_xmalloc(bytes + 1);
    size_t w = 0, u = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && v[i - 1].n == v[i].n && memcmp(v[i - 1].p, v[i].p, v[i].n) == 0)
            continue;
        memcpy(out + w, v[i].p, v[i].n);
        w += v[i].n;
        out[w++] = '\n';
        u++;
    }
    out[w] = '\0';
    free(v);
    *entries = u;
    *outlen = w;
    return out;
}

static int file_cmp(const void *a, const void *b)
{
    const fw_rhist_file *x = a, *y = b;
    if (x->is_list != y->is_list)
        return x->is_list ? 1 : -1;
    return strcmp(x->name, y->name);
}

void fw_rhist_files_from(const fw_rulefile *files, size_t n, fw_rhist_file **out,
                         size_t *nout)
{
    fw_rhist_file *f = fw_xcalloc(n + 1, sizeof *f);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const fw_rulefile *in = &files[i];
        fw_rhist_file *o = &f[k];
        if (fw_rulefiles_is_rules(in->name)) {
            o->name = fw_xstrdup(in->name);
            o->data = fw_xstrndup(in->data, in->len);
            o->len = o->bytes = in->len;
        } else if (fw_rulefiles_is_list(in->name)) {
            o->name = fw_xstrndup(in->name, strlen(in->name) - 5);
            o->is_list = true;
            o->data = fw_rhist_list_canonical(in->data, in->len, &o->len, &o->entries);
            o->bytes = o->len;
        } else {
            continue;
        }
        fw_rhist_sha256_hex(o->data, o->len, o->sha256);
        o->kept = true;
        k++;
    }
    if (k > 1)
        qsort(f, k, sizeof *f, file_cmp);
    *out = f;
    *nout = k;
}

void fw_rhist_files_free(fw_rhist_file *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++) {
        free(f[i].name);
        free(f[i].data);
    }
    free(f);
}

/* ---- diff ------------------------------------------------------------------ */

struct rule {
    const char *id;
    const char *file;
    const cJSON *json;
};

struct side {
    cJSON **roots;        /* one per rule file, NULL when it does not parse */
    struct rule *rules;
    size_t n;
};

static void side_load(const fw_rhist_file *f, size_t nf, struct side *s, FILE *out,
                      const char *label, size_t *problems)
{
    memset(s, 0, sizeof *s);
    s->roots = fw_xcalloc(nf + 1, sizeof *s->roots);
    size_t cap = 0;
    for (size_t i = 0; i < nf; i++) {
        if (f[i].is_list)
            continue;
        if (!f[i].data) {
            fprintf(out, "file %s (%s): contents not at hand; its rules are not "
                         "compared\n", f[i].name, label);
            (*problems)++;
            continue;
        }
        cJSON *root = cJSON_ParseWithLength(f[i].data, f[i].len);
        const cJSON *rules = root ? cJSON_GetObjectItemCaseSensitive(root, "rules") : NULL;
        if (!cJSON_IsArray(rules)) {
            fprintf(out, "file %s (%s): not a rule file (no \"rules\" array); its "
                         "rules are not compared\n", f[i].name, label);
            (*problems)++;
            cJSON_Delete(root);
            continue;
        }
        s->roots[i] = root;
        const cJSON *r;
        cJSON_ArrayForEach(r, rules) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
            if (!cJSON_IsString(id))
                continue;
            if (s->n == cap) {
                cap = cap ? cap * 2 : 64;
                s->rules = fw_xrealloc(s->rules, cap * sizeof *s->rules);
            }
            s->rules[s->n++] = (struct rule){ id->valuestring, f[i].name, r };
        }
    }
}

static void side_free(struct side *s, size_t nf)
{
    for (size_t i = 0; i < nf; i++)
        cJSON_Delete(s->roots[i]);
    free(s->roots);
    free(s->rules);
}

static const struct rule *find_rule(const struct side *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->rules[i].id, id) == 0)
            return &s->rules[i];
    return NULL;
}

/* "member (added), member2 (removed), member3" into b. */
static size_t members_changed(const cJSON *a, const cJSON *b, fw_buf *out)
{
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, a) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(b, m->string);
        if (o && cJSON_Compare(m, o, true))
            continue;
        fw_buf_printf(out, "%s%s%s", n ? ", " : "", m->string, o ? "" : " (removed)");
        n++;
    }
    cJSON_ArrayForEach(m, b) {
        if (cJSON_GetObjectItemCaseSensitive(a, m->string))
            continue;
        fw_buf_printf(out, "%s%s (added)", n ? ", " : "", m->string);
        n++;
    }
    return n;
}

static const fw_rhist_file *find_file(const fw_rhist_file *f, size_t n, const char *name,
                                      bool is_list)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].is_list == is_list && strcmp(f[i].name, name) == 0)
            return &f[i];
    return NULL;
}

/* Entries of canonical text a not in canonical text b (both sorted). */
static void list_delta(const fw_rhist_file *a, const fw_rhist_file *b, size_t *added,
                       size_t *removed)
{
    *added = *removed = 0;
    const char *p = a->data, *pe = a->data + a->len;
    const char *q = b->data, *qe = b->data + b->len;
    while (p < pe || q < qe) {
        const char *pn = p < pe ? memchr(p, '\n', (size_t)(pe - p)) : NULL;
        const char *qn = q < qe ? memchr(q, '\n', (size_t)(qe - q)) : NULL;
        if (p < pe && !pn)
            pn = pe;
        if (q < qe && !qn)
            qn = qe;
        int c;
        if (p >= pe)
            c = 1;
        else if (q >= qe)
            c = -1;
        else
            c = span_cmp(&(struct span){ p, (size_t)(pn - p) },
                         &(struct span){ q, (size_t)(qn - q) });
        if (c < 0) {
            (*removed)++;
            p = pn + 1;
        } else if (c > 0) {
            (*added)++;
            q = qn + 1;
        } else {
            p = pn + 1;
            q = qn + 1;
        }
    }
}

size_t fw_rhist_diff(const fw_rhist_file *a, size_t na, const fw_rhist_file *b,
                     size_t nb, FILE *out, fw_rhist_diff_stats *st)
{
    fw_rhist_diff_stats dummy;
    if (!st)
        st = &dummy;
    memset(st, 0, sizeof *st);
    size_t problems = 0;
    struct side sa, sb;
    side_load(a, na, &sa, out, "before", &problems);
    side_load(b, nb, &sb, out, "after", &problems);
    for (size_t i = 0; i < sa.n; i++) {
        const struct rule *ra = &sa.rules[i], *rb = find_rule(&sb, ra->id);
        if (!rb) {
            fprintf(out, "rule %s (%s): removed\n", ra->id, ra->file);
            st->rules_removed++;
            continue;
        }
        fw_buf m = { 0 };
        size_t n = members_changed(ra->json, rb->json, &m);
        bool moved = strcmp(ra->file, rb->file) != 0;
        if (n || moved) {
            fprintf(out, "rule %s (%s): changed:", ra->id, rb->file);
            if (moved)
                fprintf(out, " moved from %s%s", ra->file, n ? ";" : "");
            if (n)
                fprintf(out, " %s", m.p);
            fputc('\n', out);
            st->rules_changed++;
        }
        fw_buf_free(&m);
    }
    for (size_t i = 0; i < sb.n; i++)
        if (!find_rule(&sa, sb.rules[i].id)) {
            fprintf(out, "rule %s (%s): added\n", sb.rules[i].id, sb.rules[i].file);
            st->rules_added++;
        }
    for (size_t i = 0; i < na; i++) {
        if (!a[i].is_list)
            continue;
        const fw_rhist_file *o = find_file(b, nb, a[i].name, true);
        if (!o) {
            fprintf(out, "list %s: removed (%zu entr%s)\n", a[i].name, a[i].entries,
                    a[i].entries == 1 ? "y" : "ies");
            st->lists_removed++;
        } else if (strcmp(a[i].sha256, o->sha256) != 0) {
            st->lists_changed++;
            if (a[i].data && o->data) {
                size_t add, rem;
                list_delta(&a[i], o, &add, &rem);
                fprintf(out, "list %s: %zu entr%s added, %zu removed (%zu -> %zu)\n",
                        a[i].name, add, add == 1 ? "y" : "ies", rem, a[i].entries,
                        o->entries);
            } else {
                fprintf(out, "list %s: changed (%zu -> %zu entries; the contents of "
                             "the %s side were kept by hash only, so the entries "
                             "are not compared)\n",
                        a[i].name, a[i].entries, o->entries,
                        !a[i].data ? "before" : "after");
                st->unknown++;
            }
        }
    }
    for (size_t i = 0; i < nb; i++)
        if (b[i].is_list && !find_file(a, na, b[i].name, true)) {
            fprintf(out, "list %s: added (%zu entr%s)\n", b[i].name, b[i].entries,
                    b[i].entries == 1 ? "y" : "ies");
            st->lists_added++;
        }
    side_free(&sa, na);
    side_free(&sb, nb);
    return st->rules_added + st->rules_removed + st->rules_changed + st->lists_added +
           st->lists_removed + st->lists_changed + problems;
}
