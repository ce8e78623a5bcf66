/* console_route.c — the routing table: which unit owns an alert (SPEC §6).
 *
 * Rows in file order, each (field, prefix or regex, unit); the first row
 * whose field holds a string (or number, as text) that matches names the
 * unit.  The field is `subject`, `*` (every alert: a catch-all, to name the
 * default unit) or a dotted path into the alert's `fields` ("caller",
 * "payer.phone").  No match: the unit "default".  The table is parsed from
 * the same TSV the `routes load` command stores in Redis, so every console
 * builds the same table from the same text. */
#include "console.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"

struct row {
    char *field;        /* "subject", "*" or a path into fields */
    char *prefix;       /* or NULL */
    pcre2_code *re;     /* or NULL */
    char *unit;
};

struct fw_con_routes {
    struct row *rows;
    size_t n;
    pcre2_match_data *md;
};

void fw_con_routes_free(fw_con_routes *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->rows[i].field);
        free(r->rows[i].prefix);
        pcre2_code_free(r->rows[i].re);
        free(r->rows[i].unit);
    }
    free(r->rows);
    pcre2_match_data_free(r->md);
    free(r);
}

size_t fw_con_routes_count(const fw_con_routes *r)
{
    return r ? r->n : 0;
}

fw_con_routes *fw_con_routes_parse(const char *text, size_t len, char *err, size_t errlen)
{
    fw_con_routes *r = fw_xcalloc(1, sizeof *r);
    size_t cap = 0, lineno = 0;
    for (size_t off = 0; off < len;) {
        const char *line = text + off;
        const char *nl = memchr(line, '\n', len - off);
        size_t ll = nl ? (size_t)(nl - line) : len - off;
        off += ll + (nl != NULL);
        lineno++;
        char buf[4096];
        if (ll >= sizeof buf) {
            snprintf(err, errlen, "line %zu: longer than %zu bytes", lineno, sizeof buf - 1);
            goto bad;
        }
        memcpy(buf, line, ll);
        buf[ll] = '\0';
        if (ll && buf[ll - 1] == '\r')
            buf[--ll] = '\0';
        size_t lead = strspn(buf, " \t");
        if (!buf[lead] || buf[lead] == '#')
            continue;
        char *f = buf, *t1 = strchr(f, '\t'), *m = t1 ? t1 + 1 : NULL;
        char *t2 = m ? strchr(m, '\t') : NULL, *u = t2 ? t2 + 1 : NULL;
        if (!t1 || !t2 || strchr(u, '\t')) {
            snprintf(err, errlen, "line %zu: expected FIELD<TAB>prefix:TEXT|regex:PATTERN"
                     "<TAB>UNIT (three columns separated by tabs)", lineno);
            goto bad;
        }
        *t1 = *t2 = '\0';
        if (!*f || strspn(f, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-*")
                       != strlen(f)) {
            snprintf(err, errlen, "line %zu: the field \"%.100s\" is not subject, * or a field "
                     "path (letters, digits, '_', '-', '.')", lineno, f);
            goto bad;
        }
        if (!fw_con_name_ok(u)) {
            snprintf(err, errlen, "line %zu: the unit \"%.100s\" is not a name (letters, "
                     "digits, _ . : @ -, at most %d bytes)", lineno, u, FW_CON_ID_MAX);
            goto bad;
        }
        struct row row = { 0 };
        if (strncmp(m, "prefix:", 7) == 0) {
            row.prefix = fw_xstrdup(m + 7);
        } else if (strncmp(m, "regex:", 6) == 0) {
            int ec;
            PCRE2_SIZE eo;
            row.re = pcre2_compile((PCRE2_SPTR)(m + 6), PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
            if (!row.re) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(ec, msg, sizeof msg);
                snprintf(err, errlen, "line %zu: the regex does not compile: %s at offset %zu",
                         lineno, (const char *)msg, (size_t)eo);
                goto bad;
            }
        } else {
            snprintf(err, errlen, "line %zu: the second column must start with prefix: or "
                     "regex:", lineno);
            goto bad;
        }
        if (r->n == FW_CON_ROUTES_MAX) {
            free(row.prefix);
            pcre2_code_free(row.re);
            snprintf(err, errlen, "line %zu: more than %d routes", lineno, FW_CON_ROUTES_MAX);
            goto bad;
        }
        row.field = fw_xstrdup(f);
        row.unit = fw_xstrdup(u);
        if (r->n == cap) {
            cap = cap ? cap * 2 : 16;
            r->rows = fw_xrealloc(r->rows, cap * sizeof *r->rows);
        }
        r->rows[r->n++] = row;
    }
    r->md = pcre2_match_data_create(1, NULL);
    return r;
bad:
    fw_con_routes_free(r);
    return NULL;
}

/* The value at a dotted path in obj, as text into buf, or NULL. */
static const char *value_text(const cJSON *obj, const char *path, char *buf, size_t cap)
{
    const cJSON *v = obj;
    char seg[256];
    for (const char *p = path; v && *p;) {
        size_t n = strcspn(p, ".");
        if (n >= sizeof seg)
            return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, seg) : NULL;
        p += n + (p[n] == '.');
    }
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == (double)(long long)d && d > -9e15 && d < 9e15)
            snprintf(buf, cap, "%lld", (long long)d);
        else
            snprintf(buf, cap, "%.17g", d);
        return buf;
    }
    return NULL;
}

const char *fw_con_route(const fw_con_routes *r, const cJSON *alert)
{
    if (!r)
        return FW_CON_DEFAULT_UNIT;
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(alert, "fields");
    for (size_t i = 0; i < r->n; i++) {
        const struct row *row = &r->rows[i];
        if (strcmp(row->field, "*") == 0)
            return row->unit;
        char buf[64];
        const char *v = strcmp(row->field, "subject") == 0
                            ? value_text(alert, "subject", buf, sizeof buf)
                            : value_text(fields, row->field, buf, sizeof buf);
        if (!v)
            continue;
        if (row->prefix ? strncmp(v, row->prefix, strlen(row->prefix)) == 0
                        : pcre2_match(row->re, (PCRE2_SPTR)v, strlen(v), 0, 0, r->md, NULL) >= 0)
            return row->unit;
    }
    return FW_CON_DEFAULT_UNIT;
}
