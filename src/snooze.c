/* snooze.c — an immutable set of snoozes, its look-up, and the snooze file
 * replay reads (include/fraudwatch/snooze.h).
 *
 * Owns the copies of the snoozes it is built from, sorted by (rule,
 * subject) so that a look-up is two binary searches (the rule's own
 * snoozes, then "*"): it runs only when a rule fires — alerts are rare next
 * to events — on the worker that owns the key, so a sorted array is enough
 * and keeps the set one allocation of pointers.  Sets are shared by
 * reference between the batches in flight (pipeline.c) and freed by the
 * last of them, as rule sets are. */
#include "fraudwatch/snooze.h"

#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/buf.h"
#include "fraudwatch/timetext.h"

#define FILE_MAX (64u << 20)     /* a snooze file larger than this is refused */
#define MAX_REPORTED 20          /* bad lines listed one by one */

struct fw_snoozes {
    atomic_uint refs;
    size_t n;
    fw_snooze *v;
};

static int cmp_key(const char *ra, const char *sa, size_t la, const char *rb,
                   const char *sb, size_t lb)
{
    int c = strcmp(ra, rb);
    if (c)
        return c;
    c = memcmp(sa, sb, la < lb ? la : lb);
    if (c)
        return c;
    return (la > lb) - (la < lb);
}

static int cmp_snooze(const void *a, const void *b)
{
    const fw_snooze *x = a, *y = b;
    return cmp_key(x->rule, x->subject, x->subject_len, y->rule, y->subject,
                   y->subject_len);
}

static char *dup_or_null(const char *s)
{
    return s && *s ? fw_xstrdup(s) : NULL;
}

fw_snoozes *fw_snoozes_new(const fw_snooze *v, size_t n)
{
    fw_snoozes *s = fw_xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->n = n;
    s->v = fw_xcalloc(n ? n : 1, sizeof *s->v);
    for (size_t i = 0; i < n; i++) {
        fw_snooze *d = &s->v[i];
        d->rule = fw_xstrdup(v[i].rule);
        char *subj = fw_xmalloc(v[i].subject_len + 1);
        memcpy(subj, v[i].subject, v[i].subject_len);
        subj[v[i].subject_len] = '\0';
        d->subject = subj;
        d->subject_len = v[i].subject_len;
        d->until = v[i].until;
        d->reason = dup_or_null(v[i].reason);
        d->by = dup_or_null(v[i].by);
        d->at = v[i].at;
    }
    qsort(s->v, n, sizeof *s->v, cmp_snooze);
    return s;
}

fw_snoozes *fw_snoozes_ref(fw_snoozes *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void fw_snoozes_unref(fw_snoozes *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->v[i].rule);
        free((char *)s->v[i].subject);
        free((char *)s->v[i].reason);
        free((char *)s->v[i].by);
    }
    free(s->v);
    free(s);
}

size_t fw_snoozes_count(const fw_snoozes *s) { return s ? s->n : 0; }
const fw_snooze *fw_snoozes_at(const fw_snoozes *s, size_t i) { return &s->v[i]; }

/* The latest until among the snoozes of (rule, subject); INT64_MIN: none. */
static int64_t until_of(const fw_snoozes *s, const char *rule, const char *subj, size_t len)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const fw_snooze *m = &s->v[mid];
        if (cmp_key(m->rule, m->subject, m->subject_len, rule, subj, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    int64_t until = INT64_MIN;
    for (; lo < s->n; lo++) {
        const fw_snooze *m = &s->v[lo];
        if (cmp_key(m->rule, m->subject, m->subject_len, rule, subj, len) != 0)
            break;
        if (m->until > until)
            until = m->until;
    }
    return until;
}

bool fw_snoozes_match(const fw_snoozes *s, const char *rule_id, const char *subject,
                      size_t subject_len, int64_t ts)
{
    if (!s || !s->n)
        return false;
    return ts < until_of(s, rule_id, subject, subject_len) ||
           ts < until_of(s, "*", subject, subject_len);
}

const char *fw_snooze_check_rule(const char *rule)
{
    if (strcmp(rule, "*") == 0)
        return NULL;
    size_t n = strlen(rule);
    if (n < 1 || n > 64)
        return "the rule must be a rule id (1..64 characters of A-Z a-z 0-9 _ . -) or *";
    for (const char *p = rule; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return "the rule must be a rule id (1..64 characters of A-Z a-z 0-9 _ . -) or *";
    return NULL;
}

const char *fw_snooze_check_subject(const char *subject, size_t len)
{
    if (len == 0)
        return "the subject is empty";
    if (len > 1024)
        return "the subject is longer than 1024 bytes";
    for (size_t i = 0; i < len; i++)
        if (subject[i] == '\t' || subject[i] == '\n' || subject[i] == '\r' ||
            subject[i] == '\0')
            return "the subject holds a tab, a line break or a NUL";
    return NULL;
}

/* ---- the snooze file --------------------------------------------------------- */

struct parse {
    fw_buf err;
    size_t nbad;
    const char *name;
};

static void bad(struct parse *P, size_t line, const char *msg)
{
    if (P->nbad++ >= MAX_REPORTED)
        return;
    if (P->err.len)
        fw_buf_putc(&P->err, '\n');
    fw_buf_printf(&P->err, "%s:%zu: %s", P->name, line, msg);
}

/* Spaces around a field that cannot hold them (the rule, UNTIL). */
static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        s[--n] = '\0';
    return s;
}

int fw_snoozes_parse(const char *name, const char *data, size_t len, const fw_ruleset *rs,
                     fw_snoozes **out, char *err, size_t errlen)
{
    struct parse P = { .name = name };
    fw_snooze *v = NULL;
    char **owned = NULL;      /* the NUL-terminated copies v points into */
    size_t n = 0, cap = 0;
    size_t line = 0;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *e = eol ? eol : end;
        line++;
        size_t ll = (size_t)(e - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        char *l = fw_xmalloc(ll + 1);
        memcpy(l, p, ll);
        l[ll] = '\0';
        p = eol ? eol + 1 : end;
        if (memchr(l, '\0', ll) != NULL) {
            bad(&P, line, "the line holds a NUL byte");
            free(l);
            continue;
        }
        const char *s = l;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#') {
            free(l);
            continue;
        }
        char *f[4] = { l, NULL, NULL, NULL };
        int nf = 1;
        for (char *q = l; *q && nf <= 4; q++)
            if (*q == '\t') {
                *q = '\0';
                if (nf == 4) {
                    nf = 5;
                    break;
                }
                f[nf++] = q + 1;
            }
        if (nf < 3 || nf > 4) {
            bad(&P, line, "expected RULE<TAB>SUBJECT<TAB>UNTIL[<TAB>REASON], "
                                "fields separated by one tab each");
            free(l);
            continue;
        }
        const char *why;
        char terr[256];
        int64_t until;
        f[0] = trim(f[0]);
        f[2] = trim(f[2]);
        if ((why = fw_snooze_check_rule(f[0]))) {
            bad(&P, line, why);
        } else if (rs && strcmp(f[0], "*") != 0 && !fw_ruleset_has_rule(rs, f[0])) {
            char msg[200];
            snprintf(msg, sizeof msg, "no rule \"%s\" in the rule set (a snooze names a "
                                      "rule id of the set, or *)", f[0]);
            bad(&P, line, msg);
        } else if ((why = fw_snooze_check_subject(f[1], strlen(f[1])))) {
            bad(&P, line, why);
        } else if (fw_time_parse(f[2], &until, terr, sizeof terr) != 0) {
            char msg[400];
            snprintf(msg, sizeof msg, "UNTIL: %s", terr);
            bad(&P, line, msg);
        } else {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                v = fw_xrealloc(v, cap * sizeof *v);
                owned = fw_xrealloc(owned, cap * sizeof *owned);
            }
            v[n] = (fw_snooze){ .rule = f[0], .subject = f[1], .subject_len = strlen(f[1]),
                                .until = until, .reason = nf == 4 ? f[3] : NULL };
            owned[n++] = l;
            continue;
        }
        free(l);
    }
    int rc = 0;
    if (P.nbad) {
        if (P.nbad > MAX_REPORTED)
            fw_buf_printf(&P.err, "\n... %zu more bad lines", P.nbad - MAX_REPORTED);
        snprintf(err, errlen, "%.*s\nno snooze was loaded", (int)P.err.len, P.err.p);
        rc = -1;
    } else {
        *out = fw_snoozes_new(v, n);
    }
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
    free(v);
    fw_buf_free(&P.err);
    return rc;
}

int fw_snoozes_load_file(const char *path, const fw_ruleset *rs, fw_snoozes **out,
                         char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    fw_buf b = { 0 };
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + got > FILE_MAX) {
            fclose(f);
            fw_buf_free(&b);
            snprintf(err, errlen, "%s: larger than %u MiB; not a snooze file?", path,
                     FILE_MAX >> 20);
            return -1;
        }
        fw_buf_put(&b, chunk, got);
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        fw_buf_free(&b);
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    int rc = fw_snoozes_parse(path, b.p ? b.p : "", b.len, rs, out, err, errlen);
    fw_buf_free(&b);
    return rc;
}
