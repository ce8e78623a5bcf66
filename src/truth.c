/* truth.c — reading a truth file (alert outcomes) for `replay --compare`.
 *
 * Owns the file format (truth.h, docs/backtest.md) and the table of
 * entries keyed by alert_id.  The whole file is read and checked before
 * anything is compared, so a bad line refuses the file and nothing is
 * printed half; up to 10 bad lines are reported at once, each as
 * PATH:LINE so an operator can fix them in one go.  A RULE_ID line is
 * turned into its alert_id with the engine's own function (alert.c), so the
 * two forms name the same alert the same way.  The table is open addressing
 * on the id's first 64 bits (the id is a hash already). */
#include "truth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "fraudwatch/alloc.h"
#include "fraudwatch/buf.h"

#define MAX_REPORTED 10

struct fw_truth {
    fw_truth_entry *e;
    size_t n, cap;
    long *slot;           /* entry index + 1; 0 empty */
    size_t nslots;        /* power of two */
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static uint64_t id_hash(const char *id)
{
    uint64_t h = 0;
    for (int i = 0; i < 16; i++)
        h = h << 4 | (uint64_t)hexval(id[i]);
    return h;
}

static bool is_hex_id(const char *s, size_t n)
{
    if (n != 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (hexval(s[i]) < 0)
            return false;
    return true;
}

static bool valid_rule_id(const char *s, size_t n)
{
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static void grow_slots(fw_truth *t)
{
    size_t ns = t->nslots ? t->nslots * 2 : 1024;
    long *slot = fw_xcalloc(ns, sizeof *slot);
    for (size_t i = 0; i < t->nslots; i++) {
        if (!t->slot[i])
            continue;
        size_t j = (size_t)id_hash(t->e[t->slot[i] - 1].id) & (ns - 1);
        while (slot[j])
            j = (j + 1) & (ns - 1);
        slot[j] = t->slot[i];
    }
    free(t->slot);
    t->slot = slot;
    t->nslots = ns;
}

long fw_truth_find(const fw_truth *t, const char *id, size_t idlen)
{
    if (!t->nslots || !is_hex_id(id, idlen))
        return -1;
    char low[33];
    for (int i = 0; i < 32; i++)
        low[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] - 'A' + 'a' : id[i]);
    low[32] = '\0';
    size_t j = (size_t)id_hash(low) & (t->nslots - 1);
    while (t->slot[j]) {
        if (memcmp(t->e[t->slot[j] - 1].id, low, 32) == 0)
            return t->slot[j] - 1;
        j = (j + 1) & (t->nslots - 1);
    }
    return -1;
}

size_t fw_truth_count(const fw_truth *t) { return t->n; }

const fw_truth_entry *fw_truth_at(const fw_truth *t, size_t i) { return &t->e[i]; }

void fw_truth_free(fw_truth *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->e[i].rule);
    free(t->e);
    free(t->slot);
    free(t);
}

/* Adds (or merges) an entry; NULL, or why it conflicts. */
static const char *add(fw_truth *t, const char *id, bool fraud, const char *rule,
                       size_t rlen, uint32_t line, char *why, size_t whylen)
{
    long at = fw_truth_find(t, id, 32);
    if (at >= 0) {
        fw_truth_entry *e = &t->e[at];
        if (e->fraud != fraud) {
            snprintf(why, whylen, "alert %s is labelled %s here but %s at line %u", e->id,
                     fraud ? "fraud" : "not_fraud", e->fraud ? "fraud" : "not_fraud",
                     e->line);
            return why;
        }
        if (!e->rule && rule)
            e->rule = fw_xstrndup(rule, rlen);
        return NULL;
    }
    if ((t->n + 1) * 2 > t->nslots)
        grow_slots(t);
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->e = fw_xrealloc(t->e, t->cap * sizeof *t->e);
    }
    fw_truth_entry *e = &t->e[t->n];
    for (int i = 0; i < 32; i++)
        e->id[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] - 'A' + 'a' : id[i]);
    e->id[32] = '\0';
    e->fraud = fraud;
    e->rule = rule ? fw_xstrndup(rule, rlen) : NULL;
    e->line = line;
    size_t j = (size_t)id_hash(e->id) & (t->nslots - 1);
    while (t->slot[j])
        j = (j + 1) & (t->nslots - 1);
    t->slot[j] = (long)++t->n;
    return NULL;
}

/* One line (no newline); NULL when fine, else why not. */
static const char *parse_line(fw_truth *t, char *s, size_t len, uint32_t lineno, char *why,
                              size_t whylen)
{
    const char *f[5];
    size_t fl[5];
    size_t nf = 0;
    const char *p = s, *end = s + len;
    for (;;) {
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        const char *stop = tab ? tab : end;
        if (nf < 5) {
            f[nf] = p;
            fl[nf] = (size_t)(stop - p);
        }
        nf++;
        if (!tab)
            break;
        p = tab + 1;
    }
    if (nf != 2 && nf != 4) {
        snprintf(why, whylen, "%zu TAB-separated field%s; expected ALERT_ID<TAB>LABEL or "
                              "RULE_ID<TAB>SUBJECT<TAB>EVENT_ID<TAB>LABEL", nf,
                 nf == 1 ? "" : "s");
        return why;
    }
    const char *lab = f[nf - 1];
    size_t ll = fl[nf - 1];
    bool fraud;
    if (ll == 5 && memcmp(lab, "fraud", 5) == 0)
        fraud = true;
    else if (ll == 9 && memcmp(lab, "not_fraud", 9) == 0)
        fraud = false;
    else {
        snprintf(why, whylen, "label '%.*s' is neither fraud nor not_fraud",
                 (int)(ll > 64 ? 64 : ll), lab);
        return why;
    }
    if (nf == 2) {
        if (!is_hex_id(f[0], fl[0])) {
            snprintf(why, whylen, "alert_id '%.*s' is not 32 hex digits",
                     (int)(fl[0] > 64 ? 64 : fl[0]), f[0]);
            return why;
        }
        return add(t, f[0], fraud, NULL, 0, lineno, why, whylen);
    }
    if (!valid_rule_id(f[0], fl[0])) {
        snprintf(why, whylen, "rule id '%.*s' is not 1..64 characters of A-Z a-z 0-9 _ . -",
                 (int)(fl[0] > 64 ? 64 : fl[0]), f[0]);
        return why;
    }
    if (fl[1] == 0) {
        snprintf(why, whylen, "the subject (field 2) is empty");
        return why;
    }
    if (fl[2] == 0) {
        snprintf(why, whylen, "the event_id (field 3) is empty");
        return why;
    }
    char rule[65];
    memcpy(rule, f[0], fl[0]);
    rule[fl[0]] = '\0';
    char id[33];
    fw_alert_id(rule, f[1], fl[1], f[2], fl[2], id);
    return add(t, id, fraud, rule, fl[0], lineno, why, whylen);
}

fw_truth *fw_truth_load(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "truth file %s: %s", path, strerror(errno));
        return NULL;
    }
    fw_truth *t = fw_xcalloc(1, sizeof *t);
    fw_buf msg = { 0 };
    unsigned bad = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    uint32_t lineno = 0;
    char why[512];
    while ((got = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n')
            len--;
        if (len && line[len - 1] == '\r')
            len--;
        const char *reason = NULL;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == len || line[k] == '#')
            continue;
        if (memchr(line, '\0', len))
            reason = "the line holds a NUL byte";
        else
            reason = parse_line(t, line, len, lineno, why, sizeof why);
        if (reason) {
            if (++bad <= MAX_REPORTED)
                fw_buf_printf(&msg, "%s%s:%u: %s", msg.len ? "\n" : "", path, lineno, reason);
        }
    }
    int rerr = ferror(fp) ? errno : 0;
    free(line);
    fclose(fp);
    if (rerr) {
        snprintf(err, errlen, "truth file %s: %s", path, strerror(rerr));
        goto refused;
    }
    if (bad) {
        if (bad > MAX_REPORTED)
            fw_buf_printf(&msg, "\n... and %u more bad lines", bad - MAX_REPORTED);
        snprintf(err, errlen, "truth file refused (lines must be ALERT_ID<TAB>LABEL or "
                              "RULE_ID<TAB>SUBJECT<TAB>EVENT_ID<TAB>LABEL, LABEL fraud or "
                              "not_fraud):\n%.*s", (int)msg.len, msg.p);
        goto refused;
    }
    fw_buf_free(&msg);
    return t;
refused:
    fw_buf_free(&msg);
    fw_truth_free(t);
    return NULL;
}
