/* window.c — threshold state of one (rule, key): count, sum or distinct over
 * the sliding window (m − W, t] of SPEC §2.
 *
 * Owns the key's unexpired counted events, kept sorted by ts in an array
 * (head/tail indices, compacted when the head passes half of it), plus
 * running totals: the count is the array length, the sum is kept exactly in
 * millionths (an __int128, so no floating-point drift however long the
 * window lives), and distinct values are interned with an occurrence count.
 *
 * Cost: an event in time order appends, pops what expired from the head and
 * reads the totals — O(1) amortised, whatever the window holds.  A late
 * event (t < m) is inserted in place and the aggregate over ts ≤ t is the
 * total minus the entries newer than t, so its cost is the number of events
 * it arrived behind; nothing ever rescans the window.
 *
 * Memory is shaped for the common key, which is seen once or twice in its
 * window (most callers, most payees): an entry is only what its aggregate
 * needs (a count keeps 8 bytes of ts, a sum or distinct 16), the array
 * starts with room for two, and the distinct values of a small window are
 * a short list searched in place; only a window with more than
 * SMALL_DISTINCT values gets a hash map.  (Before: 24-byte entries, room
 * for four, and a map per distinct window — about twice the bytes per key,
 * bench/README.md.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "codec.h"
#include "window.h"

#define SMALL_DISTINCT 8    /* values kept as a list before a map is built */
#define FIRST_CAP 2         /* entries the array starts with */

struct dval {
    struct dval *next;    /* the small list (unused once in the map) */
    uint32_t count;
    uint32_t len;
    int32_t scratch;      /* used while answering for a late event */
    char text[];
};

/* An entry is ts, then for a sum the value in millionths, for a distinct
 * the value's dval: 8 or 16 bytes (stride). */
struct fw_window {
    unsigned char *e;
    uint32_t head, tail, cap;
    uint32_t ndistinct;   /* distinct values now */
    uint8_t agg;          /* enum fw_agg; AGG_UNKNOWN: loaded, not used yet */
    uint8_t stride;
    union {
        fw_i128 sum;
        struct {
            struct dval *list;    /* while ndistinct has stayed ≤ SMALL_DISTINCT */
            fw_hmap *map;         /* after: text → struct dval */
        } d;
    } u;
};

/* A sum-shaped window whose aggregate is not known yet: a checkpoint does
 * not say count or sum (see the end of this file). */
#define AGG_UNKNOWN 0xff

static inline int64_t *ts_at(const fw_window *w, uint32_t i)
{
    return (int64_t *)(void *)(w->e + (size_t)i * w->stride);
}

static inline int64_t *micro_at(const fw_window *w, uint32_t i)
{
    return (int64_t *)(void *)(w->e + (size_t)i * w->stride + 8);
}

static inline struct dval **dv_at(const fw_window *w, uint32_t i)
{
    return (struct dval **)(void *)(w->e + (size_t)i * w->stride + 8);
}

static bool dval_eq(const void *item, const void *key, size_t len)
{
    const struct dval *d = item;
    return d->len == len && memcmp(d->text, key, len) == 0;
}

static fw_window *window_new(uint8_t agg)
{
    fw_window *w = fw_xcalloc(1, sizeof *w);
    w->agg = agg;
    w->stride = agg == FW_AGG_COUNT ? 8 : 16;
    return w;
}

void fw_window_free(fw_window *w)
{
    if (!w)
        return;
    if (w->agg == FW_AGG_DISTINCT) {
        if (w->u.d.map) {
            size_t pos = 0;
            void *d;
            while ((d = fw_hmap_next(w->u.d.map, &pos)))
                free(d);
            fw_hmap_free(w->u.d.map);
        } else {
            for (struct dval *d = w->u.d.list, *next; d; d = next) {
                next = d->next;
                free(d);
            }
        }
    }
    free(w->e);
    free(w);
}

static void drop_value(fw_window *w, struct dval *d)
{
    if (--d->count > 0)
        return;
    w->ndistinct--;
    if (w->u.d.map) {
        fw_hmap_remove(w->u.d.map, fw_hash64(d->text, d->len, 7), d->text, d->len, dval_eq);
    } else {
        struct dval **p = &w->u.d.list;
        while (*p != d)
            p = &(*p)->next;
        *p = d->next;
    }
    free(d);
}

static void expire(fw_window *w, int64_t cutoff)
{
    while (w->head < w->tail && *ts_at(w, w->head) <= cutoff) {
        uint32_t i = w->head++;
        if (w->agg == FW_AGG_SUM || w->agg == AGG_UNKNOWN)
            w->u.sum -= *micro_at(w, i);
        else if (w->agg == FW_AGG_DISTINCT)
            drop_value(w, *dv_at(w, i));
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
        memmove(w->e, w->e + (size_t)w->head * w->stride,
                (size_t)(w->tail - w->head) * w->stride);
        w->tail -= w->head;
        w->head = 0;
        return;
    }
    uint32_t cap = w->cap ? w->cap * 2 : FIRST_CAP;
    w->e = fw_xrealloc(w->e, (size_t)cap * w->stride);
    w->cap = cap;
}

/* More than SMALL_DISTINCT values: from the list to a map, for good. */
static void promote(fw_window *w)
{
    fw_hmap *map = fw_hmap_new(2 * SMALL_DISTINCT);
    if (!map)
        fw_oom();
    for (struct dval *d = w->u.d.list; d; d = d->next)
        if (fw_hmap_insert(map, fw_hash64(d->text, d->len, 7), d) != 0)
            fw_oom();
    w->u.d.list = NULL;
    w->u.d.map = map;
}

static struct dval *intern_value(fw_window *w, const char *s, size_t len)
{
    struct dval *d = NULL;
    uint64_t h = 0;
    if (w->u.d.map) {
        h = fw_hash64(s, len, 7);
        d = fw_hmap_find(w->u.d.map, h, s, len, dval_eq);
    } else {
        for (d = w->u.d.list; d && !dval_eq(d, s, len); d = d->next)
            ;
    }
    if (!d) {
        d = fw_xmalloc(sizeof *d + len);
        d->next = NULL;
        d->count = 0;
        d->len = (uint32_t)len;
        d->scratch = 0;
        memcpy(d->text, s, len);
        w->ndistinct++;
        if (w->u.d.map) {
            if (fw_hmap_insert(w->u.d.map, h, d) != 0)
                fw_oom();
        } else {
            d->next = w->u.d.list;
            w->u.d.list = d;
            if (w->ndistinct > SMALL_DISTINCT)
                promote(w);
        }
    }
    d->count++;
    return d;
}

/* A window loaded from a checkpoint takes the rule's aggregate the first
 * time it is used (a count drops the zero sums it was loaded with). */
static void adopt(fw_window *w, enum fw_agg agg)
{
    if (agg == FW_AGG_COUNT) {
        for (uint32_t i = w->head; i < w->tail; i++)
            ((int64_t *)(void *)w->e)[i - w->head] = *ts_at(w, i);
        w->tail -= w->head;
        w->head = 0;
        w->cap *= 2;      /* the same bytes hold twice the 8-byte entries */
        w->stride = 8;
        w->u.sum = 0;
    }
    w->agg = (uint8_t)agg;
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
    if (!w)
        *wp = w = window_new((uint8_t)r->agg);
    else if (w->agg == AGG_UNKNOWN)
        adopt(w, r->agg);
    *m = hw;
    expire(w, cutoff);

    /* Insert after the last entry with ts <= t (append when in order). */
    make_room(w);
    uint32_t pos = w->tail;
    while (pos > w->head && *ts_at(w, pos - 1) > t)
        pos--;
    if (pos < w->tail)
        memmove(w->e + (size_t)(pos + 1) * w->stride, w->e + (size_t)pos * w->stride,
                (size_t)(w->tail - pos) * w->stride);
    w->tail++;
    *ts_at(w, pos) = t;
    if (r->agg == FW_AGG_SUM) {
        *micro_at(w, pos) = u->micro;
        w->u.sum += u->micro;
    } else if (r->agg == FW_AGG_DISTINCT) {
        *dv_at(w, pos) = intern_value(w, u->vtext, u->vlen);
    }

    /* Entries after pos are newer than t: outside this event's window. */
    uint32_t n = w->tail - w->head;
    switch (r->agg) {
    case FW_AGG_COUNT:
        *agg = (double)(n - (w->tail - pos - 1));
        break;
    case FW_AGG_SUM: {
        fw_i128 s = w->u.sum;
        for (uint32_t i = pos + 1; i < w->tail; i++)
            s -= *micro_at(w, i);
        *micro = s;
        break;
    }
    case FW_AGG_DISTINCT: {
        uint32_t distinct = w->ndistinct;
        for (uint32_t i = pos + 1; i < w->tail; i++) {
            struct dval *d = *dv_at(w, i);
            if (++d->scratch == (int32_t)d->count)
                distinct--;
        }
        for (uint32_t i = pos + 1; i < w->tail; i++)
            (*dv_at(w, i))->scratch = 0;
        *agg = (double)distinct;
        break;
    }
    }
    return true;
}

/* ---- checkpoints ---------------------------------------------------------- *
 * n, then whether the values are distinct texts, then n × (ts, micro,
 * [value text]); a count writes micro 0.  The format does not say count or
 * sum: a loaded window is sum-shaped until its rule's first event says
 * (adopt), so the encoding is the one every earlier checkpoint has. */

void fw_window_save(const fw_window *w, fw_buf *out)
{
    fw_enc_u64(out, w->tail - w->head);
    fw_enc_u64(out, w->agg == FW_AGG_DISTINCT);
    for (uint32_t i = w->head; i < w->tail; i++) {
        fw_enc_u64(out, (uint64_t)*ts_at(w, i));
        if (w->agg == FW_AGG_DISTINCT) {
            const struct dval *d = *dv_at(w, i);
            fw_enc_u64(out, 0);
            fw_enc_bytes(out, d->text, d->len);
        } else {
            fw_enc_u64(out, w->stride == 16 ? (uint64_t)*micro_at(w, i) : 0);
        }
    }
}

int fw_window_load(fw_window **wp, FILE *f)
{
    uint64_t n, distinct;
    if (fw_get_u64(f, &n) || fw_get_u64(f, &distinct) || n > (1u << 30) || distinct > 1)
        return -1;
    fw_window *w = window_new(distinct ? FW_AGG_DISTINCT : FW_AGG_SUM);
    if (!distinct)
        w->agg = AGG_UNKNOWN;     /* sum-shaped until the rule says (adopt) */
    *wp = w;
    w->cap = n ? (uint32_t)n : FIRST_CAP;
    w->e = fw_xmalloc((size_t)w->cap * w->stride);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t ts, mic;
        if (fw_get_u64(f, &ts) || fw_get_u64(f, &mic))
            return -1;
        uint32_t k = w->tail++;
        *ts_at(w, k) = (int64_t)ts;
        if (distinct) {
            char *text;
            uint32_t len;
            if (fw_get_bytes(f, &text, &len, 1u << 24))
                return -1;
            *dv_at(w, k) = intern_value(w, text, len);
            free(text);
        } else {
            *micro_at(w, k) = (int64_t)mic;
            w->u.sum += (int64_t)mic;
        }
    }
    return 0;
}
