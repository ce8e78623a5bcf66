/* alert_fields.c — the values of the event an alert shows (SPEC §3).
 *
 * Owns the "fields" member of alerts and of sequence steps: which values
 * (the rule's alert_fields, or the event's top-level strings, numbers and
 * booleans), their limits (alert_fields.h), and the exact text of numbers.
 * It runs at scan time (engine.c), while the event's tree and its message
 * are alive, and writes finished JSON text: stage 2 and the sequence chains
 * only copy bytes.
 *
 * Numbers: cJSON keeps a double, which would turn an account number written
 * as 6222021234567890123 into 6222021234567890000 and 49999.990 into
 * 49999.99.  An officer must see what the event said, so a number is copied
 * from the message text.  cJSON records no positions; the message is
 * walked with a tiny scanner alongside the parsed tree (an object's members
 * are in the tree in the order of the text, repeated names included), up to
 * the member wanted.  The message was parsed by cJSON already, so the
 * scanner only needs cJSON's own rules for where a token ends; a number
 * whose text is not JSON number syntax (cJSON also reads "01" and "1.") is
 * written in its shortest round-trip form instead. */
#include <string.h>

#include "alert_fields.h"

typedef struct rawcur {
    const char *p, *end;
} rawcur;

static void ws(rawcur *c)
{
    while (c->p < c->end && (unsigned char)*c->p <= 32)   /* as cJSON */
        c->p++;
}

static bool skip_string(rawcur *c)
{
    if (c->p >= c->end || *c->p != '"')
        return false;
    c->p++;
    while (c->p < c->end && *c->p != '"')
        c->p += *c->p == '\\' ? 2 : 1;
    if (c->p >= c->end)
        return false;
    c->p++;
    return true;
}

static bool skip_value(rawcur *c, int depth);

static bool skip_container(rawcur *c, char close, bool members, int depth)
{
    if (depth > 1100)            /* cJSON stops at 1000 */
        return false;
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return true;
    }
    for (;;) {
        if (members) {
            if (!skip_string(c))
                return false;
            ws(c);
            if (c->p >= c->end || *c->p != ':')
                return false;
            c->p++;
            ws(c);
        }
        if (!skip_value(c, depth + 1))
            return false;
        ws(c);
        if (c->p >= c->end)
            return false;
        if (*c->p == ',') {
            c->p++;
            ws(c);
            continue;
        }
        if (*c->p != close)
            return false;
        c->p++;
        return true;
    }
}

static bool skip_value(rawcur *c, int depth)
{
    if (c->p >= c->end)
        return false;
    switch (*c->p) {
    case '"': return skip_string(c);
    case '{': return skip_container(c, '}', true, depth);
    case '[': return skip_container(c, ']', false, depth);
    case 't': case 'n': c->p += 4; return c->p <= c->end;
    case 'f': c->p += 5; return c->p <= c->end;
    default: {
        const char *s = c->p;
        while (c->p < c->end && strchr("0123456789+-eE.", *c->p) && *c->p)
            c->p++;
        return c->p > s;
    }
    }
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return false;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    return i == n;
}

/* The cursor at the start of the message's top-level object. */
static bool raw_open(const fw_event *ev, rawcur *c)
{
    if (!ev->raw)
        return false;
    c->p = ev->raw;
    c->end = ev->raw + ev->raw_len;
    if (c->end - c->p >= 3 && memcmp(c->p, "\xEF\xBB\xBF", 3) == 0)
        c->p += 3;               /* cJSON skips a byte-order mark */
    ws(c);
    return c->p < c->end && *c->p == '{';
}

/* Inside an object (the cursor on its '{'), walking its members alongside
 * `obj`'s children: the cursor on the value of `want`. */
static bool raw_member(rawcur *c, const cJSON *obj, const cJSON *want)
{
    if (c->p >= c->end || *c->p != '{')
        return false;
    c->p++;
    ws(c);
    for (const cJSON *m = obj->child; m; m = m->next) {
        if (!skip_string(c))
            return false;
        ws(c);
        if (c->p >= c->end || *c->p != ':')
            return false;
        c->p++;
        ws(c);
        if (m == want)
            return true;
        if (!skip_value(c, 1))
            return false;
        ws(c);
        if (c->p >= c->end || *c->p != ',')
            return false;
        c->p++;
        ws(c);
    }
    return false;
}

static bool raw_token_number(rawcur *c, const char **text, size_t *len)
{
    const char *s = c->p;
    if (!skip_value(c, 1) || !json_number(s, (size_t)(c->p - s)))
        return false;
    *text = s;
    *len = (size_t)(c->p - s);
    return true;
}

bool fw_fields_raw_number(const fw_event *ev, const fw_path *p, const cJSON *v,
                          const char **text, size_t *len)
{
    rawcur c;
    if (!cJSON_IsNumber(v) || !raw_open(ev, &c))
        return false;
    const cJSON *obj = ev->root;
    for (uint32_t i = 0; i < p->nparts; i++) {
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(obj, p->parts[i]);
        if (!next || !raw_member(&c, obj, next))
            return false;
        obj = next;
    }
    return obj == v && raw_token_number(&c, text, len);
}

/* One value: a string (cut), a number (exact), a boolean; false for
 * anything else (nothing written). */
static bool put_value(fw_buf *out, const cJSON *v, const char *raw, size_t rawlen,
                      bool *cut)
{
    if (cJSON_IsString(v) && v->valuestring) {
        size_t n = strlen(v->valuestring);
        if (n > FW_FIELD_TEXT_MAX)
            *cut = true;
        fw_buf_json_str(out, v->valuestring, n, FW_FIELD_TEXT_MAX);
        return true;
    }
    if (cJSON_IsNumber(v)) {
        if (raw) {
            fw_buf_put(out, raw, rawlen);
        } else {
            char num[FW_NUMTEXT_MAX];
            size_t n = fw_numtext(v->valuedouble, num);
            /* Not JSON either way ("Infinity"): as a string. */
            if (json_number(num, n))
                fw_buf_put(out, num, n);
            else
                fw_buf_json_str(out, num, n, SIZE_MAX);
        }
        return true;
    }
    if (cJSON_IsBool(v)) {
        fw_buf_puts(out, cJSON_IsTrue(v) ? "true" : "false");
        return true;
    }
    return false;
}

/* A member "name":value; rolled back when the object would grow past its
 * limit (then *full). */
static bool put_member(fw_buf *out, size_t start, size_t *shown, const char *name,
                       const cJSON *v, const char *raw, size_t rawlen, bool *cut,
                       bool *full)
{
    size_t mark = out->len;
    if (*shown)
        fw_buf_putc(out, ',');
    size_t nlen = strlen(name);
    if (nlen > FW_FIELD_PATH_MAX)
        *cut = true;
    fw_buf_json_str(out, name, nlen, FW_FIELD_PATH_MAX);
    fw_buf_putc(out, ':');
    if (!put_value(out, v, raw, rawlen, cut)) {
        out->len = mark;
        return false;
    }
    if (out->len - start + 1 > FW_FIELDS_BYTES_MAX) {
        out->len = mark;
        *cut = *full = true;
        return false;
    }
    (*shown)++;
    return true;
}

static void render_paths(fw_buf *out, size_t start, const fw_event *ev,
                         const fw_rule *r, bool *cut)
{
    size_t shown = 0;
    bool full = false;
    for (uint32_t i = 0; i < r->nalert_fields && !full; i++) {
        const fw_path *p = &r->alert_fields[i];
        const cJSON *v = fw_path_get(ev->root, p);
        if (!v)
            continue;
        const char *raw = NULL;
        size_t rawlen = 0;
        if (cJSON_IsNumber(v) && !fw_fields_raw_number(ev, p, v, &raw, &rawlen))
            raw = NULL;
        put_member(out, start, &shown, p->text, v, raw, rawlen, cut, &full);
    }
}

static bool shown_before(const fw_buf *out, size_t start, const char *name,
                         const char *const *names, size_t n)
{
    (void)out;
    (void)start;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static void render_top(fw_buf *out, size_t start, const fw_event *ev, bool *cut)
{
    const char *names[FW_FIELDS_MAX];
    size_t shown = 0;
    bool full = false;
    rawcur c;
    bool raw_ok = raw_open(ev, &c);
    if (raw_ok) {
        c.p++;
        ws(&c);
    }
    for (const cJSON *m = ev->root->child; m; m = m->next) {
        /* The cursor follows the members: on m's value. */
        const char *vstart = NULL;
        size_t vlen = 0;
        if (raw_ok) {
            raw_ok = skip_string(&c);
            ws(&c);
            raw_ok = raw_ok && c.p < c.end && *c.p == ':';
            if (raw_ok) {
                c.p++;
                ws(&c);
                vstart = c.p;
                raw_ok = skip_value(&c, 1);
                vlen = (size_t)(c.p - vstart);
                ws(&c);
                if (raw_ok && c.p < c.end && *c.p == ',') {
                    c.p++;
                    ws(&c);
                }
            }
        }
        if (!m->string || !(cJSON_IsString(m) || cJSON_IsNumber(m) || cJSON_IsBool(m)))
            continue;
        if (shown_before(out, start, m->string, names, shown))
            continue;   /* a repeated name: its first value only */
        if (full || shown == FW_FIELDS_MAX) {
            *cut = true;
            break;
        }
        const char *raw = NULL;
        if (cJSON_IsNumber(m) && raw_ok && json_number(vstart, vlen))
            raw = vstart;
        size_t before = shown;
        put_member(out, start, &shown, m->string, m, raw, vlen, cut, &full);
        if (shown > before)
            names[before] = m->string;
        if (full)
            break;
    }
}

void fw_fields_render(fw_buf *out, const fw_event *ev, const fw_rule *r)
{
    bool cut = false;
    fw_buf_puts(out, "\"fields\":{");
    size_t start = out->len - 1;
    if (r->nalert_fields)
        render_paths(out, start, ev, r, &cut);
    else
        render_top(out, start, ev, &cut);
    fw_buf_putc(out, '}');
    if (cut)
        fw_buf_puts(out, ",\"fields_cut\":true");
}
