/* state.c — all per-key state owned by one shard, and the apply step.
 *
 * Owns the items keyed by (rule state signature, key text), in SUBS hash
 * tables chosen by four bits of the key's hash.  One table would double
 * in one step as the keys grow — at 512k slots that held the worker for
 * 18 ms, the tail of a fresh daemon's first second at 200k events/s — while
 * SUBS tables cross their thresholds at different moments, so each
 * doubling is a sixteenth of the size and they are spread over many
 * batches.
 * An item carries what every stateful rule needs (fw_keystate: the key's
 * high-water mark m, the time of its last alert for suppression, how long
 * it matters) plus its kind's own data — a window (threshold rules) or
 * chains (sequence rules).  What an update does is the rule kind's apply
 * (rule_kinds.h); saving, loading and freeing the kind's data is its row
 * too, so nothing here names a kind.  Keying by the rule's
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
 * pause until the snapshot is complete (a listed item must not be freed), so
 * the snapshot holds exactly the items of the cut, each as it was then.
 * Memory stays bounded: a window drops its expired events as it goes, and
 * fw_state_gc_slice() drops whole keys that have been idle for longer than their
 * window (or suppression) plus the configured lateness; each worker
 * sweeps its tables in slices, each batch its events' share of a pass,
 * since a whole sweep of a few hundred thousand keys held a worker for
 * tens of milliseconds: the p99 at 200k events/s.  Each key the sweep
 * looks at is a cache miss, so a pass that found almost nothing idle
 * (under 1/64 of its keys) makes the next one twice as long, up to 8
 * times; one that found more halves it again.  A pass is stretched only
 * while what it leaves behind is a few per cent of the keys; a stream
 * whose keys do not expire (a backlog drained in minutes of event time)
 * stops paying for a sweep that frees nothing. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "alert.h"
#include "alert_fields.h"
#include "codec.h"
#include "state.h"
#include "rule_kinds.h"

struct item {
    uint64_t sig;
    uint64_t khash;
    fw_keystate k;        /* m, last alert, life, suppression, the kind's data */
    uint32_t snap_gen;    /* the snapshot generation it is accounted for in */
    uint32_t klen;
    uint8_t kind;         /* whose data k.data is (rule_kinds.h) */
    char key[];
};

/* An item's allocation: the key starts at offsetof, not sizeof (the 7
 * bytes of tail padding hold the first of it), which puts an item with an
 * 11-to-14-byte key (a phone number) in an 80-byte malloc chunk, not 96:
 * 16 bytes a live key (bench/README.md, "Memory per key"). */
#define ITEM_SIZE(klen) (offsetof(struct item, key) + (size_t)(klen))

#define SUB_BITS 4
#define SUBS (1 << SUB_BITS)   /* hash tables per shard (see the top) */

struct fw_state {
    fw_hmap *items[SUBS];   /* by bits 28-31 of the key hash (table_of) */
    fw_buf evidence;
    fw_buf fields;          /* fw_state_fields */
    fw_fields_ix *fix;

    /* the snapshot in progress, if any */
    uint32_t gen;
    bool snapping;
    struct item **todo;   /* the items at the cut */
    size_t ntodo, next, todo_cap;
    fw_buf *out;
    size_t early;         /* items encoded before a change */
    size_t gc_pos;        /* where the sweep's next slice starts: a slot ... */
    uint32_t gc_sub;      /* ... of this table */
    uint32_t gc_stretch;  /* this pass takes gc_stretch times pass_events */
    uint64_t gc_seen, gc_freed;   /* keys looked at and dropped in this pass */
    uint64_t gc_visits;           /* keys looked at, in all */

    /* the budget (fw_state_set_budget): keys beyond it evict others */
    size_t max_keys;      /* 0: none */
    uint64_t evictions;
    uint64_t rng;
    struct item **evicted;   /* out of the table, freed when the snapshot ends */
    size_t nevicted, evicted_cap;

    struct fw_state *left_next;   /* fw_state_leave's list */
};

static void snap_item(fw_state *st, struct item *it);

/* Bits 28-31 of the key hash: the shard is chosen by bits 32-63
 * (fw_shard_of) and the slot in a table by the low bits, so these are
 * independent of both for tables up to 2^28 slots. */
static inline fw_hmap *table_of(const fw_state *st, uint64_t khash)
{
    return st->items[(khash >> 28) & (SUBS - 1)];
}

/* Every item, table after table: *t and *pos start at 0. */
static struct item *next_item(const fw_state *st, int *t, size_t *pos)
{
    for (; *t < SUBS; ++*t, *pos = 0) {
        struct item *it = fw_hmap_next(st->items[*t], pos);
        if (it)
            return it;
    }
    return NULL;
}

static size_t count_keys(const fw_state *st)
{
    size_t n = 0;
    for (int i = 0; i < SUBS; i++)
        n += fw_hmap_count(st->items[i]);
    return n;
}

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
    for (int i = 0; i < SUBS; i++)
        if (!(st->items[i] = fw_hmap_new(1024 / SUBS))) {
            while (i--)
                fw_hmap_free(st->items[i]);
            free(st);
            return NULL;
        }
    st->rng = UINT64_C(0x9e3779b97f4a7c15);
    st->gc_stretch = 1;
    return st;
}

void fw_state_set_budget(fw_state *st, size_t max_keys) { st->max_keys = max_keys; }
uint64_t fw_state_evictions(const fw_state *st) { return st->evictions; }

static void item_free(struct item *it)
{
    if (it->k.data)
        fw_rule_kinds[it->kind]->data_free(it->k.data);
    free(it);
}

void fw_state_free(fw_state *st)
{
    if (!st)
        return;
    int t = 0;
    size_t pos = 0;
    struct item *it;
    while ((it = next_item(st, &t, &pos)))
        item_free(it);
    for (int i = 0; i < SUBS; i++)
        fw_hmap_free(st->items[i]);
    for (size_t i = 0; i < st->nevicted; i++)
        item_free(st->evicted[i]);
    free(st->evicted);
    fw_buf_free(&st->evidence);
    fw_buf_free(&st->fields);
    fw_fields_ix_free(st->fix);
    free(st->todo);
    free(st);
}

/* The states left at exit (fw_state_leave), chained through `left_next`.
 * Only a process's last steps add to it, and rarely: a mutex is enough. */
static pthread_mutex_t left_mu = PTHREAD_MUTEX_INITIALIZER;
static fw_state *left;

void fw_state_leave(fw_state *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&left_mu);
    st->left_next = left;
    left = st;
    pthread_mutex_unlock(&left_mu);
}

size_t fw_state_left_keys(void)
{
    size_t n = 0;
    pthread_mutex_lock(&left_mu);
    for (const fw_state *st = left; st; st = st->left_next)
        n += fw_state_keys(st);
    pthread_mutex_unlock(&left_mu);
    return n;
}

size_t fw_state_keys(const fw_state *st) { return count_keys(st); }

/* Until when (event time) the item's state matters: its mark plus its
 * lifetime, or the end of its suppression; the sweep's measure too. */
static int64_t item_until(const struct item *it)
{
    const fw_keystate *k = &it->k;
    int64_t until = k->m == FW_TS_NONE ? FW_TS_NONE : k->m + k->life_ms;
    if (k->last_fire != FW_TS_NONE && k->last_fire + k->suppress_ms > until)
        until = k->last_fire + k->suppress_ms;
    return until;
}

#define EVICT_SAMPLE 8

/* The budget is full: the key whose state ends first among a few sampled
 * (an approximation of the least recently seen, as Redis's allkeys-lru) is
 * dropped.  The sample is drawn from a fixed-seed generator, so the same
 * input and thread count evict the same keys.  While a snapshot is being
 * encoded, the victim is encoded first (as it was at the cut) and freed
 * when the snapshot ends, because the snapshot still points at it. */
static void evict_one(fw_state *st)
{
    struct item *victim = NULL;
    int64_t vuntil = 0;
    for (int i = 0; i < EVICT_SAMPLE; i++) {
        st->rng ^= st->rng << 13;
        st->rng ^= st->rng >> 7;
        st->rng ^= st->rng << 17;
        /* a table by the top bits, the first non-empty one from there */
        struct item *it = NULL;
        for (int t = 0; t < SUBS && !it; t++)
            it = fw_hmap_sample(st->items[((st->rng >> 60) + t) % SUBS], st->rng);
        if (!it)
            return;
        int64_t until = item_until(it);
        if (!victim || until < vuntil) {
            victim = it;
            vuntil = until;
        }
    }
    struct lookup l = { victim->sig, victim->key };
    fw_hmap_remove(table_of(st, victim->khash), victim->khash, &l, victim->klen, item_eq);
    st->evictions++;
    if (!st->snapping) {
        item_free(victim);
        return;
    }
    if (victim->snap_gen != st->gen)
        snap_item(st, victim);          /* the cut's copy, before it goes */
    if (st->nevicted == st->evicted_cap) {
        st->evicted_cap = st->evicted_cap ? 2 * st->evicted_cap : 64;
        st->evicted = fw_xrealloc(st->evicted, st->evicted_cap * sizeof *st->evicted);
    }
    st->evicted[st->nevicted++] = victim;
}

fw_keystate *fw_state_key(fw_state *st, const fw_rule *r, const fw_update *u)
{
    struct lookup l = { r->state_sig, u->key };
    fw_hmap *table = table_of(st, u->khash);
    struct item *it = fw_hmap_find(table, u->khash, &l, u->klen, item_eq);
    if (it) {
        if (st->snapping && it->snap_gen != st->gen)
            snap_item(st, it);          /* as it was at the cut, before the change */
    } else {
        if (st->max_keys && count_keys(st) >= st->max_keys)
            evict_one(st);
        it = fw_xcalloc(1, ITEM_SIZE(u->klen));
        it->sig = r->state_sig;
        it->khash = u->khash;
        it->k.m = FW_TS_NONE;
        it->k.last_fire = FW_TS_NONE;
        it->klen = u->klen;
        it->snap_gen = st->gen;         /* born after any cut in progress */
        memcpy(it->key, u->key, u->klen);
        if (fw_hmap_insert(table, u->khash, it) != 0)
            fw_oom();
    }
    /* A rule reloaded with a new limit or suppression keeps its state
     * (SPEC §4) and takes the new values from here on. */
    it->kind = (uint8_t)r->kind;
    it->k.life_ms = (int32_t)fw_rule_kind(r)->lifetime(r);
    it->k.suppress_ms = (int32_t)r->suppress_ms;
    return &it->k;
}

fw_buf *fw_state_scratch(fw_state *st) { return &st->evidence; }

/* What an alert shows of the update's event (SPEC §3), read from the
 * event's message, which the batch holds until it retires: only for the
 * updates that fire or that a chain keeps, a few in a thousand, instead of
 * for every counted event at scan time (that cost 13 % of replay's
 * instructions).  The same bytes give the same values on any thread.  The
 * tree is parsed with malloc, not the worker's parse arena, which belongs
 * to stage 1's current event. */
const fw_update *fw_state_fields(fw_state *st, const fw_rule *r, const fw_update *u,
                                 fw_update *tmp)
{
    if (u->fields_len || !u->raw)
        return u;
    fw_arena *arena = fw_event_swap_arena(NULL);
    fw_event ev;
    const char *why;
    *tmp = *u;
    if (fw_event_parse(u->raw, u->raw_len, SIZE_MAX, &ev, &why)) {
        if (!st->fix && !(st->fix = fw_fields_ix_new()))
            fw_oom();
        fw_fields_ix_reset(st->fix);
        st->fields.len = 0;
        fw_fields_put(st->fix, &ev, r, &st->fields);
        tmp->fields = st->fields.p;
        tmp->fields_len = (uint32_t)st->fields.len;
        fw_event_release(&ev);
    }
    fw_event_swap_arena(arena);
    return tmp;
}

/* The counts of the rule whose update is being applied on this thread
 * (fw_state_apply sets it), for fw_keystate_suppressed: the kinds decide
 * suppression themselves, and counting it there keeps their signatures.
 * Per thread because every worker applies its own shard. */
static _Thread_local uint32_t *applying_counts;

bool fw_keystate_suppressed(const fw_keystate *k, int64_t suppress_ms, int64_t t)
{
    bool sup = suppress_ms > 0 && k->last_fire != FW_TS_NONE && t < k->last_fire + suppress_ms;
    if (sup && applying_counts)
        applying_counts[FW_RC_SUPPRESSED]++;
    return sup;
}

/* Shadow rules and snoozes (SPEC §2).  The decision comes after the kind
 * has updated the state and its suppression, so both advance exactly as
 * for a live alert; only the alert's output changes.  The flags go at the
 * end of the object rendered by alert.c, which leaves `alert_id` and
 * everything else as they are. */
void fw_state_emit(fw_alert_out *out, const fw_rule *r, uint64_t version,
                   const fw_update *u, const char *ev, size_t evlen)
{
    size_t off = out->text.len;
    fw_alert_render(&out->text, r, version, u->key, u->klen, u, ev, evlen);
    bool snoozed = fw_snoozes_match(out->snoozes, r->id, u->key, u->klen, u->ts);
    if ((r->shadow || snoozed) && out->text.len >= off + 2 &&
        memcmp(out->text.p + out->text.len - 2, "}\n", 2) == 0) {
        /* "...}\n" → "...,\"shadow\":true,\"snoozed\":true}\n" */
        out->text.len -= 2;
        if (r->shadow)
            fw_buf_puts(&out->text, ",\"shadow\":true");
        if (snoozed)
            fw_buf_puts(&out->text, ",\"snoozed\":true");
        fw_buf_puts(&out->text, "}\n");
    }
    if (out->counts) {
        uint32_t *c = out->counts + (size_t)u->rule * FW_RC_N;
        c[FW_RC_ALERTS]++;
        c[FW_RC_SNOOZED] += snoozed;
        c[FW_RC_SHADOW] += r->shadow || snoozed;
        out->counted = true;
    }
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 16;
        out->refs = fw_xrealloc(out->refs, out->cap * sizeof *out->refs);
    }
    size_t len = out->text.len - off;
    size_t subject_off = out->text.len;
    fw_buf_put(&out->text, u->key, u->klen);
    out->refs[out->n++] = (fw_alert_ref){ u->seq, u->rule, off, len,
                                          subject_off, u->klen, r->shadow, snoozed };
}

void fw_state_prefetch(const fw_state *st, const fw_update *u, int stage)
{
    if (stage == 0) {
        fw_hmap_prefetch(table_of(st, u->khash), u->khash);
        return;
    }
    const struct item *it = fw_hmap_peek(table_of(st, u->khash), u->khash);
    if (!it)
        return;
    if (stage == 1)
        __builtin_prefetch(it);
    else if (it->k.data)
        __builtin_prefetch(it->k.data);
}

void fw_state_apply(fw_state *st, const fw_ruleset *rs, const fw_update *u,
                    fw_alert_out *out)
{
    const fw_rule *r = &rs->rules[u->rule];
    applying_counts = out->counts ? out->counts + (size_t)u->rule * FW_RC_N : NULL;
    uint32_t before = applying_counts ? applying_counts[FW_RC_SUPPRESSED] : 0;
    fw_rule_kind(r)->apply(st, rs, r, u, out);
    if (applying_counts && applying_counts[FW_RC_SUPPRESSED] != before)
        out->counted = true;
    applying_counts = NULL;
}

static bool idle(const struct item *it, int64_t clock, int64_t lateness_ms)
{
    int64_t until = item_until(it);
    return until == FW_TS_NONE || until + lateness_ms <= clock;
}

#define GC_FEW_IDLE 64       /* a pass that dropped under 1/64 of its keys ... */
#define GC_STRETCH_MAX 8     /* ... makes the next twice as long, up to 8 times */

/* The end of a pass: the next one's length (see the top). */
static void gc_pass_done(fw_state *st)
{
    if (st->gc_freed * GC_FEW_IDLE < st->gc_seen) {
        if (st->gc_stretch < GC_STRETCH_MAX)
            st->gc_stretch *= 2;
    } else if (st->gc_stretch > 1) {
        st->gc_stretch /= 2;
    }
    st->gc_visits += st->gc_seen;
    st->gc_seen = st->gc_freed = 0;
}

void fw_state_gc_slice(fw_state *st, int64_t clock, int64_t lateness_ms, uint32_t events,
                       uint32_t pass_events)
{
    if (st->snapping || !events || !pass_events)
        return;           /* the snapshot still points at the items of the cut */
    /* The tables one after another, as if end to end: events/pass of
     * their slots in all per call, rounded up. */
    uint64_t total = 0, pass = (uint64_t)pass_events * st->gc_stretch;
    for (int i = 0; i < SUBS; i++)
        total += fw_hmap_capacity(st->items[i]);
    uint64_t share = (total * events + pass - 1) / pass;
    size_t budget = (size_t)(share < total ? share : total);
    while (budget) {
        fw_hmap *m = st->items[st->gc_sub];
        size_t cap = fw_hmap_capacity(m);
        if (st->gc_pos >= cap) {    /* this table is done (or shrank under it) */
            st->gc_pos = 0;
            st->gc_sub = (st->gc_sub + 1) % SUBS;
            if (st->gc_sub == 0)
                gc_pass_done(st);
            continue;
        }
        size_t n = cap - st->gc_pos < budget ? cap - st->gc_pos : budget;
        size_t end = st->gc_pos + n;
        struct item *it;
        while ((it = fw_hmap_next_upto(m, &st->gc_pos, end))) {
            st->gc_seen++;
            if (idle(it, clock, lateness_ms)) {
                fw_hmap_remove_at(m, &st->gc_pos);
                item_free(it);
                st->gc_freed++;
            }
        }
        budget -= n;
    }
}

uint64_t fw_state_gc_visits(const fw_state *st) { return st->gc_visits + st->gc_seen; }

/* ---- checkpoints ---------------------------------------------------------- */

/* An item: sig, khash, m, last alert, life, suppression, flags, key, then
 * the kind's data.  flags is the kind's ckpt_flag when it has data (1: a
 * window, 2: chains — both still read —; 4: chains with each step's
 * fields, 8: a window with its aggregate and a sum's event ids — fixed,
 * they are in checkpoints on disk), else 0. */
static void save_item(fw_buf *out, const struct item *it)
{
    const fw_rule_kind_ops *kind = fw_rule_kinds[it->kind];
    uint64_t flags = it->k.data ? kind->ckpt_flag : 0;
    fw_enc_u64(out, it->sig);
    fw_enc_u64(out, it->khash);
    fw_enc_u64(out, (uint64_t)it->k.m);
    fw_enc_u64(out, (uint64_t)it->k.last_fire);
    fw_enc_u64(out, (uint64_t)it->k.life_ms);
    fw_enc_u64(out, (uint64_t)it->k.suppress_ms);
    fw_enc_u64(out, flags);
    fw_enc_bytes(out, it->key, it->klen);
    if (it->k.data)
        kind->data_save(it->k.data, out);
}

void fw_state_save(const fw_state *st, fw_buf *out)
{
    fw_enc_u64(out, count_keys(st));
    int t = 0;
    size_t pos = 0;
    const struct item *it;
    while ((it = next_item(st, &t, &pos)))
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
    size_t n = count_keys(st);
    if (n > st->todo_cap) {
        size_t cap = n + n / 4;
        struct item **t = fw_xrealloc(st->todo, cap * sizeof *t);
        st->todo = t;
        st->todo_cap = cap;
    }
    int t = 0;
    size_t pos = 0, k = 0;
    struct item *it;
    while ((it = next_item(st, &t, &pos)))
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
    for (size_t i = 0; i < st->nevicted; i++)
        item_free(st->evicted[i]);
    st->nevicted = 0;
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
        struct item *it = calloc(1, ITEM_SIZE(klen));
        if (!it) {
            free(key);
            goto bad;
        }
        it->sig = v[0];
        it->khash = v[1];
        it->k.m = (int64_t)v[2];
        it->k.last_fire = (int64_t)v[3];
        if (v[4] > (uint64_t)INT32_MAX || v[5] > (uint64_t)INT32_MAX) {
            free(key);
            free(it);
            goto bad;
        }
        it->k.life_ms = (int32_t)v[4];
        it->k.suppress_ms = (int32_t)v[5];
        it->klen = klen;
        memcpy(it->key, key, klen);
        free(key);
        bool ok = v[6] == 0;
        for (uint32_t kd = 0; kd < FW_RULE_NKINDS && !ok; kd++) {
            const fw_rule_kind_ops *kind = fw_rule_kinds[kd];
            if (kind->ckpt_flag && (kind->ckpt_flag == v[6] ||
                                    (kind->ckpt_flag_old && kind->ckpt_flag_old == v[6]))) {
                it->kind = (uint8_t)kd;
                ok = kind->data_load(&it->k.data, f, v[6]) == 0;
                break;
            }
        }
        fw_state *st = ok ? place(ctx, it->khash) : NULL;
        struct lookup l = { it->sig, it->key };
        if (!st || fw_hmap_find(table_of(st, it->khash), it->khash, &l, it->klen, item_eq) ||
            fw_hmap_insert(table_of(st, it->khash), it->khash, it) != 0) {
            item_free(it);
            goto bad;
        }
    }
    return 0;
bad:
    snprintf(err, errlen, "checkpoint is truncated or corrupt");
    return -1;
}
