/* state.c — all per-key state owned by one shard, and the apply step.
 *
 * Owns one hash table of items keyed by (rule state signature, key text).
 * An item carries what every stateful rule needs — the key's high-water mark
 * m and the time of its last alert for suppression — plus the window
 * (threshold rules) or chain state (sequence rules).  Keying by the rule's
 * state signature instead of its index is what lets state survive a rule
 * reload when SPEC §4 says it must: an unchanged rule in a new set computes
 * the same signature and finds its old items.
 *
 * One shard = one worker thread; nothing here is shared or locked.
 *
 * Snapshots without stopping the shard (copy before write, per item): at a
 * cut, fw_state_snap_begin() only lists the items that exist (pointers, a
 * sequential walk of the table) and stamps a new generation; the worker
 * then encodes them a slice at a time between batches
 * (fw_state_snap_step).  An item about to change that is not encoded yet is
 * encoded first, as it was at the cut (get_item); an item created after
 * the cut carries the new generation and is left out.  Sweeps of idle keys
 * wait until the snapshot is complete (a listed item must not be freed), so
 * the snapshot holds exactly the items of the cut, each as it was then.
 * Memory stays bounded: a window drops its expired events as it goes, and
 * fw_state_gc() drops whole keys that have been idle for longer than their
 * window (or suppression) plus the configured lateness. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

struct item {
    uint64_t sig;
    uint64_t khash;
    int64_t m;            /* high-water mark of the key's counted events */
    int64_t last_fire;    /* FW_TS_NONE: never fired */
    int64_t life_ms;      /* window / within: how long m matters */
    int64_t suppress_ms;
    fw_window *win;
    fw_seqstate *seq;
    uint32_t snap_gen;    /* the snapshot generation it is accounted for in */
    uint32_t klen;
    char key[];
};

struct fw_state {
    fw_hmap *items;
    fw_buf evidence;

    /* the snapshot in progress, if any */
    uint32_t gen;
    bool snapping;
    struct item **todo;   /* the items at the cut */
    size_t ntodo, next, todo_cap;
    fw_buf *out;
    size_t early;         /* items encoded before a change */
    bool gc_due;          /* a sweep postponed by the snapshot */
    int64_t gc_clock, gc_lateness;
};

static void snap_item(fw_state *st, struct item *it);

struct lookup {
    uint64_t sig;
    const char *key;
};

static bool item_eq(const void *it, const void *key, size_t len)
{
    const struct item *i = it;
    const struct lookup *l = key;
    return i->sig == l->sig && i->klen == len && memcmp(i->key, l->key, len) == 0;
}

fw_state *fw_state_new(void)
{
    fw_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->items = fw_hmap_new(1024);
    if (!st->items) {
        free(st);
        return NULL;
    }
    return st;
}

static void item_free(struct item *it)
{
    fw_window_free(it->win);
    fw_seqstate_free(it->seq);
    free(it);
}

void fw_state_free(fw_state *st)
{
    if (!st)
        return;
    size_t pos = 0;
    struct item *it;
    while ((it = fw_hmap_next(st->items, &pos)))
        item_free(it);
    fw_hmap_free(st->items);
    fw_buf_free(&st->evidence);
    free(st->todo);
    free(st);
}

size_t fw_state_keys(const fw_state *st) { return fw_hmap_count(st->items); }

static struct item *get_item(fw_state *st, const fw_rule *r, const fw_update *u)
{
    struct lookup l = { r->state_sig, u->key };
    struct item *it = fw_hmap_find(st->items, u->khash, &l, u->klen, item_eq);
    if (it) {
        if (st->snapping && it->snap_gen != st->gen)
            snap_item(st, it);          /* as it was at the cut, before the change */
        return it;
    }
    it = calloc(1, sizeof *it + u->klen);
    if (!it) {
        fputs("fraudwatch: out of memory\n", stderr);
        abort();
    }
    it->sig = r->state_sig;
    it->khash = u->khash;
    it->m = FW_TS_NONE;
    it->last_fire = FW_TS_NONE;
    it->klen = u->klen;
    it->snap_gen = st->gen;             /* born after any cut in progress */
    memcpy(it->key, u->key, u->klen);
    if (fw_hmap_insert(st->items, u->khash, it) != 0) {
        fputs("fraudwatch: out of memory\n", stderr);
        abort();
    }
    return it;
}

static void emit(fw_alert_out *out, const fw_rule *r, uint64_t version,
                 const fw_update *u, const char *ev, size_t evlen)
{
    size_t off = out->text.len;
    fw_alert_render(&out->text, r, version, u->key, u->klen, u, ev, evlen);
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 16;
        out->refs = realloc(out->refs, out->cap * sizeof *out->refs);
        if (!out->refs) {
            fputs("fraudwatch: out of memory\n", stderr);
            abort();
        }
    }
    size_t len = out->text.len - off;
    size_t subject_off = out->text.len;
    fw_buf_put(&out->text, u->key, u->klen);
    out->refs[out->n++] = (fw_alert_ref){ u->seq, u->rule, off, len,
                                          subject_off, u->klen };
}

/* Suppression (SPEC §2): after firing at t_a, no alert for events with
 * ts < t_a + suppress.  suppress 0 means none at all. */
static bool suppressed(const struct item *it, int64_t suppress_ms, int64_t t)
{
    return suppress_ms > 0 && it->last_fire != FW_TS_NONE &&
           t < it->last_fire + suppress_ms;
}

static const char *agg_name(enum fw_agg a)
{
    return a == FW_AGG_COUNT ? "count" : a == FW_AGG_SUM ? "sum" : "distinct";
}

static void apply_threshold(fw_state *st, const fw_ruleset *rs,
                            const fw_rule *r, const fw_update *u,
                            fw_alert_out *out)
{
    struct item *it = get_item(st, r, u);
    it->life_ms = r->window_ms;
    it->suppress_ms = r->suppress_ms;
    double agg = 0;
    fw_i128 micro = 0;
    if (!fw_window_apply(&it->win, r, &it->m, u, &agg, &micro))
        return;
    int cmp = r->agg == FW_AGG_SUM ? (micro > r->limit_micro) - (micro < r->limit_micro)
                                   : (agg > r->limit) - (agg < r->limit);
    bool fire = fw_op_holds(r->agg_op, cmp);
    if (!fire || suppressed(it, r->suppress_ms, u->ts))
        return;
    it->last_fire = u->ts;

    fw_buf *ev = &st->evidence;
    char num[FW_NUMTEXT_MAX];
    ev->len = 0;
    fw_buf_printf(ev, "{\"%s\":", agg_name(r->agg));
    if (r->agg == FW_AGG_SUM)
        fw_micro_text(ev, micro);
    else
        fw_buf_i64(ev, (int64_t)agg);
    fw_buf_printf(ev, ",\"window_s\":%lld,\"limit\":{\"%s\":",
                  (long long)(r->window_ms / 1000), fw_op_name(r->agg_op));
    fw_numtext(r->limit, num);
    fw_buf_puts(ev, num);
    fw_buf_puts(ev, "}}");
    emit(out, r, rs->version, u, ev->p, ev->len);
}

static void apply_sequence(fw_state *st, const fw_ruleset *rs,
                           const fw_rule *r, const fw_update *u,
                           fw_alert_out *out)
{
    struct item *it = get_item(st, r, u);
    it->life_ms = r->within_ms;
    it->suppress_ms = r->suppress_ms;
    fw_buf chain = { 0 };
    fw_buf *ev = &st->evidence;
    if (!fw_sequence_apply(&it->seq, r, &it->m, u, ev))
        return;
    if (suppressed(it, r->suppress_ms, u->ts))
        return;
    it->last_fire = u->ts;
    /* Wrap the chain: {"within_s": W, "steps": [...]} */
    fw_buf_printf(&chain, "{\"within_s\":%lld,\"steps\":",
                  (long long)(r->within_ms / 1000));
    fw_buf_put(&chain, ev->p, ev->len);
    fw_buf_putc(&chain, '}');
    emit(out, r, rs->version, u, chain.p, chain.len);
    fw_buf_free(&chain);
}

static void apply_plain(fw_state *st, const fw_ruleset *rs, const fw_rule *r,
                        const fw_update *u, fw_alert_out *out)
{
    if (r->suppress_ms > 0) {
        struct item *it = get_item(st, r, u);
        it->life_ms = 0;
        it->suppress_ms = r->suppress_ms;
        if (u->ts > it->m)
            it->m = u->ts;
        if (suppressed(it, r->suppress_ms, u->ts))
            return;
        it->last_fire = u->ts;
    }
    fw_buf *ev = &st->evidence;
    ev->len = 0;
    fw_buf_puts(ev, "{\"matched\":");
    fw_buf_puts(ev, u->evidence ? u->evidence : "[]");
    fw_buf_putc(ev, '}');
    emit(out, r, rs->version, u, ev->p, ev->len);
}

void fw_state_apply(fw_state *st, const fw_ruleset *rs, const fw_update *u,
                    fw_alert_out *out)
{
    const fw_rule *r = &rs->rules[u->rule];
    switch (r->kind) {
    case FW_RULE_THRESHOLD:
        apply_threshold(st, rs, r, u, out);
        break;
    case FW_RULE_SEQUENCE:
        apply_sequence(st, rs, r, u, out);
        break;
    case FW_RULE_PLAIN:
        apply_plain(st, rs, r, u, out);
        break;
    }
}

void fw_state_gc(fw_state *st, int64_t clock, int64_t lateness_ms)
{
    if (st->snapping) {
        /* The snapshot still points at the items of the cut. */
        st->gc_due = true;
        st->gc_clock = clock;
        st->gc_lateness = lateness_ms;
        return;
    }
    size_t pos = 0;
    struct item *it;
    while ((it = fw_hmap_next(st->items, &pos))) {
        int64_t until = it->m == FW_TS_NONE ? FW_TS_NONE : it->m + it->life_ms;
        if (it->last_fire != FW_TS_NONE &&
            it->last_fire + it->suppress_ms > until)
            until = it->last_fire + it->suppress_ms;
        if (until == FW_TS_NONE || until + lateness_ms <= clock) {
            fw_hmap_remove_at(st->items, &pos);
            item_free(it);
        }
    }
}

/* ---- checkpoints ---------------------------------------------------------- */

enum { HAS_WINDOW = 1, HAS_SEQUENCE = 2 };

static void save_item(fw_buf *out, const struct item *it)
{
    uint64_t flags = (it->win ? HAS_WINDOW : 0) | (it->seq ? HAS_SEQUENCE : 0);
    fw_enc_u64(out, it->sig);
    fw_enc_u64(out, it->khash);
    fw_enc_u64(out, (uint64_t)it->m);
    fw_enc_u64(out, (uint64_t)it->last_fire);
    fw_enc_u64(out, (uint64_t)it->life_ms);
    fw_enc_u64(out, (uint64_t)it->suppress_ms);
    fw_enc_u64(out, flags);
    fw_enc_bytes(out, it->key, it->klen);
    if (it->win)
        fw_window_save(it->win, out);
    if (it->seq)
        fw_seqstate_save(it->seq, out);
}

void fw_state_save(const fw_state *st, fw_buf *out)
{
    fw_enc_u64(out, fw_hmap_count(st->items));
    size_t pos = 0;
    const struct item *it;
    while ((it = fw_hmap_next(st->items, &pos)))
        save_item(out, it);
}

static void snap_item(fw_state *st, struct item *it)
{
    save_item(st->out, it);
    it->snap_gen = st->gen;
    st->early++;
}

size_t fw_state_snap_begin(fw_state *st, fw_buf *out)
{
    if (st->snapping)                   /* not expected: finish the old one */
        fw_state_snap_step(st, SIZE_MAX);
    size_t n = fw_hmap_count(st->items);
    if (n > st->todo_cap) {
        size_t cap = n + n / 4;
        struct item **t = realloc(st->todo, cap * sizeof *t);
        if (!t) {
            fputs("fraudwatch: out of memory\n", stderr);
            abort();
        }
        st->todo = t;
        st->todo_cap = cap;
    }
    size_t pos = 0, k = 0;
    struct item *it;
    while ((it = fw_hmap_next(st->items, &pos)))
        st->todo[k++] = it;
    st->gen++;
    st->ntodo = k;
    st->next = 0;
    st->out = out;
    st->early = 0;
    st->snapping = true;
    fw_enc_u64(out, k);
    return k;
}

bool fw_state_snap_step(fw_state *st, size_t max_items)
{
    if (!st->snapping)
        return true;
    size_t end = st->ntodo - st->next > max_items ? st->next + max_items : st->ntodo;
    for (; st->next < end; st->next++) {
        struct item *it = st->todo[st->next];
        if (it->snap_gen != st->gen) {
            save_item(st->out, it);
            it->snap_gen = st->gen;
        }
    }
    if (st->next < st->ntodo)
        return false;
    st->snapping = false;
    st->out = NULL;
    if (st->gc_due) {
        st->gc_due = false;
        fw_state_gc(st, st->gc_clock, st->gc_lateness);
    }
    return true;
}

size_t fw_state_snap_early(const fw_state *st) { return st->early; }

int fw_state_load(FILE *f, fw_state *(*place)(void *ctx, uint64_t khash),
                  void *ctx, char *err, size_t errlen)
{
    uint64_t n;
    if (fw_get_u64(f, &n))
        goto bad;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v[7];
        for (int j = 0; j < 7; j++)
            if (fw_get_u64(f, &v[j]))
                goto bad;
        char *key;
        uint32_t klen;
        if (fw_get_bytes(f, &key, &klen, 1u << 24))
            goto bad;
        struct item *it = calloc(1, sizeof *it + klen);
        if (!it) {
            free(key);
            goto bad;
        }
        it->sig = v[0];
        it->khash = v[1];
        it->m = (int64_t)v[2];
        it->last_fire = (int64_t)v[3];
        it->life_ms = (int64_t)v[4];
        it->suppress_ms = (int64_t)v[5];
        it->klen = klen;
        memcpy(it->key, key, klen);
        free(key);
        bool ok = !((v[6] & HAS_WINDOW) && fw_window_load(&it->win, f)) &&
                  !((v[6] & HAS_SEQUENCE) && fw_seqstate_load(&it->seq, f));
        fw_state *st = ok ? place(ctx, it->khash) : NULL;
        struct lookup l = { it->sig, it->key };
        if (!st || fw_hmap_find(st->items, it->khash, &l, it->klen, item_eq) ||
            fw_hmap_insert(st->items, it->khash, it) != 0) {
            item_free(it);
            goto bad;
        }
    }
    return 0;
bad:
    snprintf(err, errlen, "checkpoint is truncated or corrupt");
    return -1;
}
