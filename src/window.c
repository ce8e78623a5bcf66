/* window.c — threshold state of one (rule, key): count, sum or distinct over
 * the sliding window (m − W, t] of SPEC §2.
 *
 * Owns the key's unexpired counted events, kept sorted by ts in an array
 * (head/tail indices, compacted when the head passes half of it), plus
 * running totals: the count is the array length, the sum is kept exactly in
 * millionths (an __int128, so no floating-point drift however long the
 * window lives), and distinct values live in a value → occurrences map.
 *
 * Cost: an event in time order appends, pops what expired from the head and
 * reads the totals — O(1) amortised, whatever the window holds.  A late
 * event (t < m) is inserted in place and the aggregate over ts ≤ t is the
 * total minus the entries newer than t, so its cost is the number of events
 * it arrived behind; nothing ever rescans the window. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "codec.h"
#include "window.h"

struct entry {
    int64_t ts;
    int64_t micro;        /* sum */
    struct dval *dv;      /* distinct */
};

struct dval {
    uint32_t count;
    uint32_t len;
    int32_t scratch;      /* used while answering for a late event */
    char text[];
};

struct fw_window {
    struct entry *e;
    size_t head, tail, cap;
    fw_i128 sum;
    fw_hmap *values;      /* distinct: text → struct dval */
};

static bool dval_eq(const void *item, const void *key, size_t len)
{
    const struct dval *d = item;
    return d->len == len && memcmp(d->text, key, len) == 0;
}

void fw_window_free(fw_window *w)
{
    if (!w)
        return;
    if (w->values) {
        size_t pos = 0;
        void *d;
        while ((d = fw_hmap_next(w->values, &pos)))
            free(d);
        fw_hmap_free(w->values);
    }
    free(w->e);
    free(w);
}

static void drop_value(fw_window *w, struct dval *d)
{
    if (--d->count == 0) {
        fw_hmap_remove(w->values, fw_hash64(d->text, d->len, 7), d->text,
                       d->len, dval_eq);
        free(d);
    }
}

static void expire(fw_window *w, enum fw_agg agg, int64_t cutoff)
{
    while (w->head < w->tail && w->e[w->head].ts <= cutoff) {
        struct entry *x = &w->e[w->head++];
        if (agg == FW_AGG_SUM)
            w->sum -= x->micro;
        else if (agg == FW_AGG_DISTINCT)
            drop_value(w, x->dv);
    }
    if (w->head == w->tail)
        w->head = w->tail = 0;
}

/* Room for one more entry at the tail. */
static void make_room(fw_window *w)
{
    if (w->tail < w->cap)
        return;
    if (w->head > 0 && w->head >= w->cap / 2) {
        memmove(w->e, w->e + w->head, (w->tail - w->head) * sizeof *w->e);
        w->tail -= w->head;
        w->head = 0;
        return;
    }
    size_t cap = w->cap ? w->cap * 2 : 4;
    struct entry *e = fw_xrealloc(w->e, cap * sizeof *e);
    w->e = e;
    w->cap = cap;
}

static struct dval *intern_value(fw_window *w, const char *s, size_t len)
{
    uint64_t h = fw_hash64(s, len, 7);
    struct dval *d = fw_hmap_find(w->values, h, s, len, dval_eq);
    if (!d) {
        d = fw_xmalloc(sizeof *d + len);
        d->count = 0;
        d->len = (uint32_t)len;
        d->scratch = 0;
        memcpy(d->text, s, len);
        if (fw_hmap_insert(w->values, h, d) != 0)
            fw_oom();
    }
    d->count++;
    return d;
}

bool fw_window_apply(fw_window **wp, const fw_rule *r, int64_t *m,
                     const fw_update *u, double *agg, fw_i128 *micro)
{
    int64_t t = u->ts;
    int64_t hw = *m > t ? *m : t;
    int64_t cutoff = hw - r->window_ms;
    if (t <= cutoff)
        return false; /* expired on arrival: skipped */

    fw_window *w = *wp;
    if (!w) {
        w = fw_xcalloc(1, sizeof *w);
        if (r->agg == FW_AGG_DISTINCT && !(w->values = fw_hmap_new(4)))
            fw_oom();
        *wp = w;
    }
    *m = hw;
    expire(w, r->agg, cutoff);

    /* Insert after the last entry with ts <= t (append when in order). */
    make_room(w);
    size_t pos = w->tail;
    while (pos > w->head && w->e[pos - 1].ts > t)
        pos--;
    if (pos < w->tail)
        memmove(&w->e[pos + 1], &w->e[pos], (w->tail - pos) * sizeof *w->e);
    w->tail++;
    struct entry *x = &w->e[pos];
    x->ts = t;
    x->micro = 0;
    x->dv = NULL;
    if (r->agg == FW_AGG_SUM) {
        x->micro = u->micro;
        w->sum += u->micro;
    } else if (r->agg == FW_AGG_DISTINCT) {
        x->dv = intern_value(w, u->vtext, u->vlen);
    }

    /* Entries after pos are newer than t: outside this event's window. */
    size_t n = w->tail - w->head;
    switch (r->agg) {
    case FW_AGG_COUNT:
        *agg = (double)(n - (w->tail - pos - 1));
        break;
    case FW_AGG_SUM: {
        fw_i128 s = w->sum;
        for (size_t i = pos + 1; i < w->tail; i++)
            s -= w->e[i].micro;
        *micro = s;
        break;
    }
    case FW_AGG_DISTINCT: {
        size_t distinct = fw_hmap_count(w->values);
        for (size_t i = pos + 1; i < w->tail; i++)
            if (++w->e[i].dv->scratch == (int32_t)w->e[i].dv->count)
                distinct--;
        for (size_t i = pos + 1; i < w->tail; i++)
            w->e[i].dv->scratch = 0;
        *agg = (double)distinct;
        break;
    }
    }
    return true;
}

/* ---- checkpoints ---------------------------------------------------------- */

void fw_window_save(const fw_window *w, fw_buf *out)
{
    fw_enc_u64(out, w->tail - w->head);
    fw_enc_u64(out, w->values != NULL);
    for (size_t i = w->head; i < w->tail; i++) {
        const struct entry *x = &w->e[i];
        fw_enc_u64(out, (uint64_t)x->ts);
        fw_enc_u64(out, (uint64_t)x->micro);
        if (w->values)
            fw_enc_bytes(out, x->dv->text, x->dv->len);
    }
}

int fw_window_load(fw_window **wp, FILE *f)
{
    uint64_t n, distinct;
    if (fw_get_u64(f, &n) || fw_get_u64(f, &distinct) || n > (1u << 30))
        return -1;
    fw_window *w = fw_xcalloc(1, sizeof *w);
    *wp = w;
    if (distinct && !(w->values = fw_hmap_new((size_t)n)))
        fw_oom();
    w->cap = n ? (size_t)n : 4;
    w->e = fw_xmalloc(w->cap * sizeof *w->e);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t ts, micro;
        if (fw_get_u64(f, &ts) || fw_get_u64(f, &micro))
            return -1;
        struct entry *x = &w->e[w->tail++];
        x->ts = (int64_t)ts;
        x->micro = (int64_t)micro;
        x->dv = NULL;
        w->sum += x->micro;
        if (distinct) {
            char *text;
            uint32_t len;
            if (fw_get_bytes(f, &text, &len, 1u << 24))
                return -1;
            x->dv = intern_value(w, text, len);
            free(text);
        }
    }
    return 0;
}
