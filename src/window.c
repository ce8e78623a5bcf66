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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "alert.h"
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

/* An entry is ts, then for a sum the value in millionths and its event's
 * id (malloc'd, NUL-terminated; NULL when loaded from a checkpoint that
 * did not keep it), for a distinct the value's dval: 8, 24 or 16 bytes
 * (stride). */
struct fw_window {
    unsigned char *e;     /* the entries; inline_e() until the window grows */
    uint32_t head, tail, cap;
    uint8_t agg;          /* enum fw_agg; AGG_UNKNOWN: loaded, not used yet.
                           * The entry size follows from it: stride(w). */
    union {
        uint64_t sum[2];  /* an fw_i128, as two words: sum_of(), sum_add() */
        struct {
            void *set;            /* struct dval list; fw_hmap once is_map */
            uint32_t n;           /* distinct values now */
            bool is_map;          /* after more than SMALL_DISTINCT, for good */
        } d;
    } u;
};
/* 40 bytes (an fw_i128 member would make it 16-aligned: 48), so a window
 * with its FIRST_CAP inline entries fits a 64-byte malloc chunk (count),
 * 80 (distinct) or 96 (sum), 16 bytes less each (bench/README.md, "Memory
 * per key"). */
_Static_assert(sizeof(struct fw_window) == 40, "fw_window grew: see the comment above");

static uint8_t stride_of(uint8_t agg)
{
    return agg == FW_AGG_COUNT ? 8 : agg == FW_AGG_DISTINCT ? 16 : 24;
}

static inline size_t stride(const fw_window *w)
{
    return stride_of(w->agg);
}

/* A sum-shaped window whose aggregate is not known yet: a checkpoint does
 * not say count or sum (see the end of this file). */
#define AGG_UNKNOWN 0xff

static inline int64_t *ts_at(const fw_window *w, uint32_t i)
{
    return (int64_t *)(void *)(w->e + (size_t)i * stride(w));
}

static inline int64_t *micro_at(const fw_window *w, uint32_t i)
{
    return (int64_t *)(void *)(w->e + (size_t)i * stride(w) + 8);
}

static inline struct dval **dv_at(const fw_window *w, uint32_t i)
{
    return (struct dval **)(void *)(w->e + (size_t)i * stride(w) + 8);
}

static inline char **id_at(const fw_window *w, uint32_t i)
{
    return (char **)(void *)(w->e + (size_t)i * stride(w) + 16);
}


static inline fw_i128 sum_of(const fw_window *w)
{
    fw_i128 s;
    memcpy(&s, w->u.sum, sizeof s);
    return s;
}

static inline void sum_set(fw_window *w, fw_i128 s)
{
    memcpy(w->u.sum, &s, sizeof s);
}

static inline void sum_add(fw_window *w, fw_i128 d)
{
    sum_set(w, sum_of(w) + d);
}

static inline fw_hmap *dmap(const fw_window *w)
{
    return w->u.d.is_map ? w->u.d.set : NULL;
}

static inline struct dval *dlist(const fw_window *w)
{
    return w->u.d.is_map ? NULL : w->u.d.set;
}

static bool dval_eq(const void *item, const void *key, size_t len)
{
    const struct dval *d = item;
    return d->len == len && memcmp(d->text, key, len) == 0;
}

/* The first FIRST_CAP entries live in the window's own allocation, right
 * after the struct: most keys of a stream never hold more (a window of one
 * or two events), and one malloc chunk instead of two is 16 bytes a live
 * key (bench/README.md, "Memory per key").  A window that grows moves its
 * entries to an array of their own and leaves this space unused. */
static inline unsigned char *inline_e(fw_window *w)
{
    return (unsigned char *)(w + 1);
}

static fw_window *window_new(uint8_t agg)
{
    fw_window *w = fw_xcalloc(1, sizeof *w + (size_t)FIRST_CAP * stride_of(agg));
    w->agg = agg;
    w->e = inline_e(w);
    w->cap = FIRST_CAP;
    return w;
}

void fw_window_free(fw_window *w)
{
    if (!w)
        return;
    if (stride(w) == 24)
        for (uint32_t i = w->head; i < w->tail; i++)
            free(*id_at(w, i));
    if (w->agg == FW_AGG_DISTINCT) {
        if (dmap(w)) {
            size_t pos = 0;
            void *d;
            while ((d = fw_hmap_next(dmap(w), &pos)))
                free(d);
            fw_hmap_free(dmap(w));
        } else {
            for (struct dval *d = dlist(w), *next; d; d = next) {
                next = d->next;
                free(d);
            }
        }
    }
    if (w->e != inline_e(w))
        free(w->e);
    free(w);
}

static void drop_value(fw_window *w, struct dval *d)
{
    if (--d->count > 0)
        return;
    w->u.d.n--;
    if (dmap(w)) {
        fw_hmap_remove(dmap(w), fw_hash64(d->text, d->len, 7), d->text, d->len, dval_eq);
    } else if (w->u.d.set == d) {
        w->u.d.set = d->next;
    } else {
        struct dval *prev = dlist(w);
        while (prev->next != d)
            prev = prev->next;
        prev->next = d->next;
    }
    free(d);
}

static void expire(fw_window *w, int64_t cutoff)
{
    while (w->head < w->tail && *ts_at(w, w->head) <= cutoff) {
        uint32_t i = w->head++;
        if (w->agg == FW_AGG_SUM || w->agg == AGG_UNKNOWN) {
            sum_add(w, -(fw_i128)*micro_at(w, i));
            free(*id_at(w, i));
        }
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
        memmove(w->e, w->e + (size_t)w->head * stride(w),
                (size_t)(w->tail - w->head) * stride(w));
        w->tail -= w->head;
        w->head = 0;
        return;
    }
    uint32_t cap = w->cap * 2;
    if (w->e == inline_e(w)) {
        unsigned char *e = fw_xmalloc((size_t)cap * stride(w));
        memcpy(e, w->e, (size_t)w->tail * stride(w));
        w->e = e;
    } else {
        w->e = fw_xrealloc(w->e, (size_t)cap * stride(w));
    }
    w->cap = cap;
}

/* More than SMALL_DISTINCT values: from the list to a map, for good. */
static void promote(fw_window *w)
{
    fw_hmap *map = fw_hmap_new(2 * SMALL_DISTINCT);
    if (!map)
        fw_oom();
    for (struct dval *d = dlist(w); d; d = d->next)
        if (fw_hmap_insert(map, fw_hash64(d->text, d->len, 7), d) != 0)
            fw_oom();
    w->u.d.set = map;
    w->u.d.is_map = true;
}

static struct dval *intern_value(fw_window *w, const char *s, size_t len)
{
    struct dval *d = NULL;
    uint64_t h = 0;
    if (dmap(w)) {
        h = fw_hash64(s, len, 7);
        d = fw_hmap_find(dmap(w), h, s, len, dval_eq);
    } else {
        for (d = dlist(w); d && !dval_eq(d, s, len); d = d->next)
            ;
    }
    if (!d) {
        d = fw_xmalloc(sizeof *d + len);
        d->next = NULL;
        d->count = 0;
        d->len = (uint32_t)len;
        d->scratch = 0;
        memcpy(d->text, s, len);
        w->u.d.n++;
        if (dmap(w)) {
            if (fw_hmap_insert(dmap(w), h, d) != 0)
                fw_oom();
        } else {
            d->next = dlist(w);
            w->u.d.set = d;
            if (w->u.d.n > SMALL_DISTINCT)
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
        w->cap *= 3;      /* the same bytes hold three times the 8-byte entries */
        sum_set(w, 0);
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
        memmove(w->e + (size_t)(pos + 1) * stride(w), w->e + (size_t)pos * stride(w),
                (size_t)(w->tail - pos) * stride(w));
    w->tail++;
    *ts_at(w, pos) = t;
    if (r->agg == FW_AGG_SUM) {
        *micro_at(w, pos) = u->micro;
        *id_at(w, pos) = fw_xstrndup(u->event_id, u->event_id_len);
        sum_add(w, u->micro);
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
        fw_i128 s = sum_of(w);
        for (uint32_t i = pos + 1; i < w->tail; i++)
            s -= *micro_at(w, i);
        *micro = s;
        break;
    }
    case FW_AGG_DISTINCT: {
        uint32_t distinct = w->u.d.n;
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

/* ---- what the window counted (evidence) ------------------------------------ */

/* The last entry with ts <= t: the end of the aggregate of an event at t. */
static uint32_t end_of(const fw_window *w, int64_t t)
{
    uint32_t end = w->tail;
    while (end > w->head && *ts_at(w, end - 1) > t)
        end--;
    return end;
}

static void explain_distinct(fw_window *w, int64_t t, uint64_t total, fw_buf *out)
{
    struct dval *shown[FW_DISTINCT_SHOWN_MAX];
    uint32_t n = 0;
    /* Most recently seen first: newest entries of (m − W, t] backwards. */
    for (uint32_t i = end_of(w, t); i > w->head && n < FW_DISTINCT_SHOWN_MAX; i--) {
        struct dval *d = *dv_at(w, i - 1);
        if (d->scratch)
            continue;
        d->scratch = 1;
        shown[n++] = d;
    }
    fw_buf_puts(out, ",\"values\":[");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            fw_buf_putc(out, ',');
        fw_buf_json_str(out, shown[i]->text, shown[i]->len, FW_EVIDENCE_VALUE_MAX);
        shown[i]->scratch = 0;
    }
    fw_buf_printf(out, "],\"values_cut\":%s", total > n ? "true" : "false");
}

static void explain_sum(const fw_window *w, int64_t t, fw_buf *out)
{
    uint32_t top[FW_SUM_SHOWN_MAX], n = 0, end = end_of(w, t);
    /* The largest values; of equal ones the earliest (in ts, then arrival). */
    for (uint32_t i = w->head; i < end; i++) {
        int64_t v = *micro_at(w, i);
        if (n == FW_SUM_SHOWN_MAX && v <= *micro_at(w, top[n - 1]))
            continue;
        uint32_t k = n < FW_SUM_SHOWN_MAX ? n++ : n - 1;
        while (k > 0 && *micro_at(w, top[k - 1]) < v) {
            top[k] = top[k - 1];
            k--;
        }
        top[k] = i;
    }
    fw_buf_printf(out, ",\"events\":%u,\"largest\":[", end - w->head);
    for (uint32_t i = 0; i < n; i++) {
        const char *id = *id_at(w, top[i]);
        fw_buf_puts(out, i ? ",{\"event_id\":" : "{\"event_id\":");
        if (id)
            fw_buf_json_str(out, id, strlen(id), SIZE_MAX);
        else
            fw_buf_puts(out, "null");
        fw_buf_puts(out, ",\"value\":");
        fw_micro_text(out, *micro_at(w, top[i]));
        fw_buf_putc(out, '}');
    }
    fw_buf_printf(out, "],\"largest_cut\":%s", end - w->head > n ? "true" : "false");
}

void fw_window_explain(fw_window *w, enum fw_agg agg, int64_t t, uint64_t total,
                       fw_buf *out)
{
    if (agg == FW_AGG_DISTINCT)
        explain_distinct(w, t, total, out);
    else if (agg == FW_AGG_SUM)
        explain_sum(w, t, out);
}

/* ---- checkpoints ---------------------------------------------------------- *
 * Flag 8 (kind_threshold.c): n, the aggregate (0 count, 1 sum, 2 distinct),
 * then n entries: a count's ts; a sum's ts, value in millionths and event
 * id (empty: not known); a distinct's ts and value text.
 * Flag 1, the encoding of earlier versions, still loads: n, whether the
 * values are distinct texts, then n × (ts, micro, [value text]), a count
 * with micro 0.  It does not say count or sum: such a window is sum-shaped
 * until its rule's first event says (adopt), and its sums' event ids are
 * not known (the evidence shows null). */

void fw_window_save(const fw_window *w, fw_buf *out)
{
    /* Loaded from flag 1 and not used since: still sum-shaped, unknown ids. */
    uint8_t agg = w->agg == AGG_UNKNOWN ? FW_AGG_SUM : w->agg;
    fw_enc_u64(out, w->tail - w->head);
    fw_enc_u64(out, agg);
    for (uint32_t i = w->head; i < w->tail; i++) {
        fw_enc_u64(out, (uint64_t)*ts_at(w, i));
        if (agg == FW_AGG_DISTINCT) {
            const struct dval *d = *dv_at(w, i);
            fw_enc_bytes(out, d->text, d->len);
        } else if (agg == FW_AGG_SUM) {
            const char *id = *id_at(w, i);
            fw_enc_u64(out, (uint64_t)*micro_at(w, i));
            fw_enc_bytes(out, id ? id : "", id ? (uint32_t)strlen(id) : 0);
        }
    }
}

int fw_window_load(fw_window **wp, FILE *f, bool with_agg)
{
    uint64_t n, kind;
    if (fw_get_u64(f, &n) || fw_get_u64(f, &kind) || n > (1u << 30) ||
        kind > (with_agg ? 2u : 1u))
        return -1;
    uint8_t agg = with_agg ? (uint8_t)kind : kind ? FW_AGG_DISTINCT : FW_AGG_SUM;
    fw_window *w = window_new(agg);
    if (!with_agg && !kind)
        w->agg = AGG_UNKNOWN;     /* sum-shaped until the rule says (adopt) */
    *wp = w;
    if (n > FIRST_CAP) {    /* else the entries fit in the window's own space */
        w->cap = (uint32_t)n;
        w->e = fw_xmalloc((size_t)w->cap * stride(w));
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t ts, mic = 0;
        if (fw_get_u64(f, &ts))
            return -1;
        if (!with_agg || agg == FW_AGG_SUM)
            if (fw_get_u64(f, &mic))
                return -1;
        uint32_t k = w->tail++;
        *ts_at(w, k) = (int64_t)ts;
        if (agg == FW_AGG_DISTINCT) {
            char *text;
            uint32_t len;
            if (fw_get_bytes(f, &text, &len, 1u << 24)) {
                w->tail--;
                return -1;
            }
            *dv_at(w, k) = intern_value(w, text, len);
            free(text);
        } else if (agg == FW_AGG_SUM) {
            *micro_at(w, k) = (int64_t)mic;
            *id_at(w, k) = NULL;
            sum_add(w, (int64_t)mic);
            if (with_agg) {
                char *id;
                uint32_t len;
                if (fw_get_bytes(f, &id, &len, 1u << 20))
                    return -1;
                if (len)
                    *id_at(w, k) = id;
                else
                    free(id);
            }
        }
    }
    return 0;
}
