/* alert_fields.c — the values of the event an alert shows (SPEC §3).
 *
 * Owns the "fields" member of alerts and of sequence steps: which values
 * (the rule's alert_fields, or the event's top-level strings, numbers and
 * booleans), their limits (alert_fields.h), and the exact text of numbers.
 * It runs in stage 2 (state.c fw_state_fields) on the event's message,
 * which the batch holds until it retires, only for an update that fires or
 * that a sequence chain keeps: rendering it for every counted event at
 * scan time cost 13 % of replay's instructions (bench/README.md).  What a
 * chain keeps is the finished JSON text.
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
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alert_fields.h"
#include "fraudwatch/alloc.h"

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
    const char *q = c->p + 1;
    for (;;) {
        q = memchr(q, '"', (size_t)(c->end - q));
        if (!q)
            return false;
        /* Escaped when preceded by an odd number of backslashes. */
        size_t bs = 0;
        while (q - bs > c->p + 1 && q[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            break;
        q++;
    }
    c->p = q + 1;
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

/* ---- the event's top-level members, indexed ------------------------------ *
 * One pass over the members and the message: each member's name hash, node
 * and value text.  Looking each path up with cJSON (a strcmp per member)
 * and finding each number's text from the start of the message would walk
 * the event once per path. */

#define IX_MAX 256    /* members indexed; an event with more uses the slow path */

struct ixent {
    uint64_t h;
    const cJSON *node;
    const char *raw;      /* the value's text; NULL: not found */
    uint32_t rawlen;
};

struct fw_fields_ix {
    const fw_event *ev;   /* whose index it is; NULL: none yet */
    bool usable;          /* false: more members than IX_MAX */
    uint32_t n;
    struct ixent e[IX_MAX];
};

fw_fields_ix *fw_fields_ix_new(void)
{
    return calloc(1, sizeof(fw_fields_ix));
}

void fw_fields_ix_free(fw_fields_ix *ix) { free(ix); }

void fw_fields_ix_reset(fw_fields_ix *ix) { ix->ev = NULL; }

uint64_t fw_fields_name_hash(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(0x100000001b3);
    return h;
}

static void ix_build(fw_fields_ix *ix, const fw_event *ev)
{
    ix->ev = ev;
    ix->n = 0;
    ix->usable = true;
    rawcur c;
    bool raw_ok = raw_open(ev, &c);
    if (raw_ok) {
        c.p++;
        ws(&c);
    }
    for (const cJSON *m = ev->root->child; m; m = m->next) {
        if (ix->n == IX_MAX || !m->string) {
            ix->usable = false;
            return;
        }
        struct ixent *x = &ix->e[ix->n++];
        x->h = fw_fields_name_hash(m->string);
        x->node = m;
        x->raw = NULL;
        x->rawlen = 0;
        if (!raw_ok)
            continue;
        raw_ok = skip_string(&c);
        ws(&c);
        raw_ok = raw_ok && c.p < c.end && *c.p == ':';
        if (!raw_ok)
            continue;
        c.p++;
        ws(&c);
        const char *v = c.p;
        raw_ok = skip_value(&c, 1);
        if (raw_ok) {
            x->raw = v;
            x->rawlen = (uint32_t)(c.p - v);
        }
        ws(&c);
        if (raw_ok && c.p < c.end && *c.p == ',') {
            c.p++;
            ws(&c);
        }
    }
}

/* The first top-level member called `name`, as cJSON finds it. */
static const struct ixent *ix_find(const fw_fields_ix *ix, const char *name, uint64_t h)
{
    for (uint32_t i = 0; i < ix->n; i++)
        if (ix->e[i].h == h && strcmp(ix->e[i].node->string, name) == 0)
            return &ix->e[i];
    return NULL;
}

static bool scalar(const cJSON *v)
{
    return cJSON_IsString(v) || cJSON_IsNumber(v) || cJSON_IsBool(v);
}

/* The rule's values as a selection of top-level members: a bit per index
 * entry.  False when that cannot say it (a nested path, an entry past the
 * first 64, an event with more members than indexed). */
static bool select_members(const fw_fields_ix *ix, const fw_rule *r, uint64_t *mask,
                           bool *cut)
{
    *mask = 0;
    if (!ix->usable)
        return false;
    if (r->nalert_fields) {
        for (uint32_t i = 0; i < r->nalert_fields; i++) {
            const fw_path *p = &r->alert_fields[i];
            if (p->nparts != 1)
                return false;
            const struct ixent *x = ix_find(ix, p->parts[0], r->alert_fields_h[i]);
            if (!x || !scalar(x->node))
                continue;
            uint32_t k = (uint32_t)(x - ix->e);
            if (k >= 64)
                return false;
            *mask |= UINT64_C(1) << k;
        }
        return true;
    }
    uint32_t shown = 0;
    for (uint32_t i = 0; i < ix->n; i++) {
        const struct ixent *x = &ix->e[i];
        if (!scalar(x->node) || ix_find(ix, x->node->string, x->h) != x)
            continue;   /* not a scalar, or a repeated name: its first value */
        if (shown == FW_FIELDS_MAX) {
            *cut = true;
            break;
        }
        if (i >= 64)
            return false;
        *mask |= UINT64_C(1) << i;
        shown++;
    }
    return true;
}

/* The selected members, in the event's order. */
static void render_mask(fw_buf *out, size_t start, const fw_fields_ix *ix, uint64_t mask,
                        bool *cut)
{
    size_t shown = 0;
    bool full = false;
    for (uint32_t i = 0; mask && !full; i++, mask >>= 1) {
        if (!(mask & 1))
            continue;
        const struct ixent *x = &ix->e[i];
        const char *raw = NULL;
        if (cJSON_IsNumber(x->node) && x->raw && json_number(x->raw, x->rawlen))
            raw = x->raw;
        put_member(out, start, &shown, x->node->string, x->node, raw, x->rawlen, cut, &full);
    }
}

/* The general way, for what a selection cannot say: each path through
 * cJSON in the rule's order; without alert_fields the indexed members. */
static void render_slow(fw_buf *out, size_t start, const fw_event *ev, const fw_rule *r,
                        const fw_fields_ix *ix, bool *cut)
{
    size_t shown = 0;
    bool full = false;
    if (!r->nalert_fields) {
        for (uint32_t i = 0; i < ix->n && !full; i++) {
            const struct ixent *x = &ix->e[i];
            if (!scalar(x->node) || ix_find(ix, x->node->string, x->h) != x)
                continue;
            if (shown == FW_FIELDS_MAX) {
                *cut = true;
                break;
            }
            const char *raw = NULL;
            if (cJSON_IsNumber(x->node) && x->raw && json_number(x->raw, x->rawlen))
                raw = x->raw;
            put_member(out, start, &shown, x->node->string, x->node, raw, x->rawlen, cut,
                       &full);
        }
        if (!ix->usable)
            *cut = true;   /* more members than indexed (a hostile event) */
        return;
    }
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

static void render(fw_buf *out, fw_fields_ix *ix, const fw_event *ev, const fw_rule *r,
                   bool selectable, uint64_t mask, bool cut)
{
    fw_buf_puts(out, "\"fields\":{");
    size_t start = out->len - 1;
    if (selectable)
        render_mask(out, start, ix, mask, &cut);
    else
        render_slow(out, start, ev, r, ix, &cut);
    fw_buf_putc(out, '}');
    if (cut)
        fw_buf_puts(out, ",\"fields_cut\":true");
}

void fw_fields_put(fw_fields_ix *ix, const fw_event *ev, const fw_rule *r, fw_buf *out)
{
    if (ix->ev != ev)
        ix_build(ix, ev);
    uint64_t mask;
    bool cut = false;
    bool selectable = select_members(ix, r, &mask, &cut);
    render(out, ix, ev, r, selectable, mask, cut);
}

void fw_fields_render(fw_buf *out, const fw_event *ev, const fw_rule *r)
{
    fw_fields_ix *ix = fw_fields_ix_new();
    if (!ix)
        fw_oom();
    fw_fields_put(ix, ev, r, out);
    fw_fields_ix_free(ix);
}
