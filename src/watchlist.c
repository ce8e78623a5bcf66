/* watchlist.c — a watchlist's entries, shared between rule sets, and
 * changed by a delta instead of a copy.
 *
 * A rule set is immutable and a new one is built for every change.  A
 * watchlist can hold ten million numbers, and in Redis it changes one
 * number at a time (`lists add`, issue 10.4): a rule set built for such a
 * change must cost the change, not the list.  So a list (fw_list, in
 * ruleset_impl.h) is made of two immutable, reference-counted parts that
 * rule sets share:
 *
 *   base    the entries as last read whole: a hash set (fw_hmap) over
 *           length-prefixed strings kept in a chunked pool;
 *   delta   the changes since: values added (absent from base) and entries
 *           of base removed, two small hash sets; NULL when there are none.
 *
 * A builder (fw_listbuild) makes either: from scratch (a .list text, a full
 * read from Redis), or on top of a list of an existing set, sharing its base
 * and copying its delta, which is bounded (see fold_due()): when the delta
 * outgrows it, finishing the build folds it into a new base — one copy of
 * the list per that many changed entries, instead of one per change.
 *
 * A look-up (fw_list_contains, on the event path) is one probe of the base
 * for a list without a delta, at most three (added, base, removed) with one.
 *
 * Entries that expire (SPEC §2, "Watchlist entries that expire").  An item
 * is a 32-bit length, the bytes, and — only when the entry has an UNTIL —
 * the UNTIL (int64 epoch ms) after them; the length's top bit says so.  A
 * list without expiries costs exactly what it did (no byte more per entry,
 * one more bit test per hit), and a hit on an entry that expires reads 8
 * bytes next to the ones it just compared.  Membership is by event time:
 * an entry with UNTIL T matches events with ts < T, so replay and the
 * daemon agree and nothing needs a reload when T passes.  A changed UNTIL
 * in a delta is the old item in `removed` and the new one in `added`
 * (added is looked at first).  The reason is not kept here: matching never
 * needs it (Redis keeps it, `lists show` prints it).
 * Values go into a builder as .list lines do (trimmed, '#' and blank lines
 * skipped, a line break separates values; rulefiles.c), so a list read from
 * Redis and the same list read from a file hold the same entries. */
#include "ruleset_impl.h"

#include <stdlib.h>
#include <string.h>

#include "fraudwatch/alloc.h"
#include "fraudwatch/rulefiles.h"
#include "fraudwatch/timetext.h"

#define LIST_SEED 0x11
#define POOL_FIRST 4096
#define POOL_MAX_CHUNK ((size_t)1 << 20)
#define DELTA_MIN 4096        /* a delta may always hold this many entries */
#define DELTA_SHARE 64        /* ... or 1/64 of the base, whichever is more */

/* ---- items: [u32 length | HAS_UNTIL][bytes][i64 until, if HAS_UNTIL] ------- */

#define HAS_UNTIL 0x80000000u
#define SEEN 0x40000000u      /* a full read: the entry is in the set (builder only) */
#define LEN_MASK 0x3fffffffu  /* an entry is at most FW_LIST_ENTRY_MAX bytes */

static inline uint32_t item_len(const void *item)
{
    uint32_t n;
    memcpy(&n, item, sizeof n);
    return n & LEN_MASK;
}

static inline int64_t item_until(const void *item)
{
    uint32_t n;
    memcpy(&n, item, sizeof n);
    if (!(n & HAS_UNTIL))
        return FW_UNTIL_NEVER;
    int64_t u;
    memcpy(&u, (const char *)item + sizeof n + (n & LEN_MASK), sizeof u);
    return u;
}

static inline const char *item_str(const void *item)
{
    return (const char *)item + sizeof(uint32_t);
}

/* Is the entry a member for an event at ts?  (ts < UNTIL) */
static inline bool item_live(const void *item, int64_t ts)
{
    uint32_t n;
    memcpy(&n, item, sizeof n);
    if (__builtin_expect(!(n & HAS_UNTIL), 1))
        return true;
    int64_t u;
    memcpy(&u, (const char *)item + sizeof n + (n & LEN_MASK), sizeof u);
    return ts < u;
}

/* An item with a slot for an UNTIL may have it changed in place (only in a
 * pool nobody else reads: a base being built, a builder's own delta). */
static inline bool item_set_until(void *item, int64_t until)
{
    uint32_t n;
    memcpy(&n, item, sizeof n);
    if (!(n & HAS_UNTIL))
        return false;
    memcpy((char *)item + sizeof n + (n & LEN_MASK), &until, sizeof until);
    return true;
}

/* ---- the pool: length-prefixed strings in chunks that never move ---------- */

struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
};

typedef struct pool {
    struct chunk *head;
    size_t next_cap;
} pool;

static void pool_init(pool *p, size_t hint)
{
    p->head = NULL;
    p->next_cap = hint ? hint : POOL_FIRST;
}

static inline const char *pool_put(pool *p, const char *s, size_t n, int64_t until)
{
    bool has = until != FW_UNTIL_NEVER;
    size_t need = sizeof(uint32_t) + n + (has ? sizeof until : 0);
    if (!p->head || p->head->cap - p->head->used < need) {
        size_t cap = p->next_cap > need ? p->next_cap : need;
        struct chunk *c = fw_xmalloc(sizeof *c + cap);
        c->next = p->head;
        c->used = 0;
        c->cap = cap;
        p->head = c;
        p->next_cap = cap * 2 > POOL_MAX_CHUNK ? POOL_MAX_CHUNK : cap * 2;
    }
    char *item = p->head->data + p->head->used;
    uint32_t n32 = (uint32_t)n | (has ? HAS_UNTIL : 0);
    memcpy(item, &n32, sizeof n32);
    memcpy(item + sizeof n32, s, n);
    if (has)
        memcpy(item + sizeof n32 + n, &until, sizeof until);
    p->head->used += need;
    return item;
}

static void pool_free(pool *p)
{
    for (struct chunk *c = p->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    p->head = NULL;
}

static bool item_eq(const void *item, const void *key, size_t len)
{
    return item_len(item) == len && memcmp(item_str(item), key, len) == 0;
}

static uint64_t item_hash(const void *item)
{
    return fw_hash64(item_str(item), item_len(item), LIST_SEED);
}

static void *find(const fw_hmap *m, uint64_t h, const char *s, size_t n)
{
    return m ? fw_hmap_find(m, h, s, n, item_eq) : NULL;
}

static fw_hmap *hmap_new(size_t hint)
{
    fw_hmap *m = fw_hmap_new(hint);
    if (!m)
        fw_oom();
    return m;
}

static void insert(fw_hmap *m, uint64_t h, const void *item)
{
    if (fw_hmap_insert(m, h, (void *)item) != 0)
        fw_oom();
}

/* ---- the parts ---------------------------------------------------------------- */

struct fw_listbase {
    atomic_uint refs;
    fw_hmap *set;        /* items: strings in `pool` */
    pool pool;
};

struct fw_listdelta {
    atomic_uint refs;
    fw_hmap *added;      /* items: strings in `pool`, none of them in the base */
    pool pool;
    fw_hmap *removed;    /* items: the base's own items */
};

static struct fw_listbase *base_new(size_t entries, size_t bytes)
{
    struct fw_listbase *b = fw_xcalloc(1, sizeof *b);
    atomic_init(&b->refs, 1);
    b->set = hmap_new(entries);
    pool_init(&b->pool, bytes);
    return b;
}

static void base_unref(struct fw_listbase *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        fw_hmap_free(b->set);
        pool_free(&b->pool);
        free(b);
    }
}

static struct fw_listdelta *delta_new(size_t hint)
{
    struct fw_listdelta *d = fw_xcalloc(1, sizeof *d);
    atomic_init(&d->refs, 1);
    d->added = hmap_new(hint);
    d->removed = hmap_new(hint);
    pool_init(&d->pool, 0);
    return d;
}

static void delta_unref(struct fw_listdelta *d)
{
    if (d && atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) == 1) {
        fw_hmap_free(d->added);
        fw_hmap_free(d->removed);
        pool_free(&d->pool);
        free(d);
    }
}

static size_t delta_size(const struct fw_listdelta *d)
{
    return d ? fw_hmap_count(d->added) + fw_hmap_count(d->removed) : 0;
}

/* A list with a delta: the entry as added, or as in the base and not
 * removed; NULL when it has none. */
__attribute__((noinline)) static const void *find_changed(const fw_list *l, uint64_t h,
                                                          const char *s, size_t len)
{
    const struct fw_listdelta *d = l->delta;
    const void *it = fw_hmap_find(d->added, h, s, len, item_eq);
    if (it)
        return it;
    it = fw_hmap_find(l->set, h, s, len, item_eq);
    return it && !fw_hmap_find(d->removed, h, s, len, item_eq) ? it : NULL;
}

static inline const void *list_find(const fw_list *l, const char *s, size_t len)
{
    uint64_t h = fw_hash64(s, len, LIST_SEED);
    if (l->delta)
        return find_changed(l, h, s, len);
    return fw_hmap_find(l->set, h, s, len, item_eq);   /* one probe */
}

bool fw_list_contains(const fw_list *l, const char *s, size_t len, int64_t ts)
{
    const void *it = list_find(l, s, len);
    return it && item_live(it, ts);
}

bool fw_list_entry_until(const fw_list *l, const char *s, size_t len, int64_t *until)
{
    const void *it = list_find(l, s, len);
    if (it && until)
        *until = item_until(it);
    return it != NULL;
}

/* Each entry of the list, as it is (base minus removed, plus added). */
static void each_entry(const fw_list *l, void (*fn)(void *ctx, const void *item),
                       void *ctx)
{
    const struct fw_listdelta *d = l->delta;
    void *it;
    size_t pos = 0;
    while ((it = fw_hmap_next(l->set, &pos)))
        if (!d || !fw_hmap_find(d->removed, item_hash(it), item_str(it), item_len(it),
                                item_eq))
            fn(ctx, it);
    pos = 0;
    while (d && (it = fw_hmap_next(d->added, &pos)))
        fn(ctx, it);
}

struct stats_ctx {
    int64_t now;
    fw_list_expiry_stats *st;
};

static void count_entry(void *ctx, const void *item)
{
    struct stats_ctx *c = ctx;
    int64_t u = item_until(item);
    if (u == FW_UNTIL_NEVER)
        return;
    c->st->with_until++;
    if (u <= c->now) {
        c->st->expired++;
    } else if (c->st->next_until == FW_UNTIL_NEVER || u < c->st->next_until) {
        c->st->next_until = u;
    }
    if (u > c->st->last_until || c->st->with_until == 1)
        c->st->last_until = u;
}

void fw_list_expiry(const fw_list *l, int64_t now, fw_list_expiry_stats *st)
{
    memset(st, 0, sizeof *st);
    st->next_until = FW_UNTIL_NEVER;
    struct stats_ctx c = { now, st };
    each_entry(l, count_entry, &c);
}

void fw_list_share(const fw_list *from, fw_list *to)
{
    to->name = fw_xstrdup(from->name);
    to->version = from->version;
    to->count = from->count;
    to->base = from->base;
    to->set = from->set;
    atomic_fetch_add_explicit(&to->base->refs, 1, memory_order_relaxed);
    to->delta = from->delta;
    if (to->delta)
        atomic_fetch_add_explicit(&to->delta->refs, 1, memory_order_relaxed);
}

void fw_list_release(fw_list *l)
{
    free(l->name);
    base_unref(l->base);
    delta_unref(l->delta);
    memset(l, 0, sizeof *l);
}

size_t fw_list_delta_size(const fw_list *l) { return delta_size(l->delta); }

void fw_ruleset_describe_expiry(const fw_ruleset *rs, int64_t now, FILE *out)
{
    char at[FW_TIMETEXT_MAX];
    fw_time_format(now, at, sizeof at);
    fprintf(out, "watchlist entries that expire (as of %s; an entry is a member for "
                 "events before its UNTIL):\n", at);
    for (uint32_t i = 0; i < rs->nlists; i++) {
        const fw_list *l = &rs->lists[i];
        fw_list_expiry_stats st;
        fw_list_expiry(l, now, &st);
        fprintf(out, "  list %-24s %zu entries, %zu with an UNTIL", l->name, l->count,
                st.with_until);
        if (st.with_until) {
            fprintf(out, ", %zu of them past", st.expired);
            if (st.next_until != FW_UNTIL_NEVER) {
                fw_time_format(st.next_until, at, sizeof at);
                fprintf(out, ", next ends %s", at);
            }
            fw_time_format(st.last_until, at, sizeof at);
            fprintf(out, ", last ends %s", at);
        }
        fputc('\n', out);
    }
}

/* ---- building ---------------------------------------------------------------- */

struct fw_listbuild {
    struct fw_listbase *base;
    bool shared;                  /* base belongs to a rule set: change delta */
    struct fw_listdelta *delta;   /* shared: the changes, private until done */
    size_t bad;                   /* values refused (fw_list_entry_ok) */
    bool seen;                    /* entries marked SEEN (fw_listbuild_keep_seen) */
    char first_bad[256];
};

fw_listbuild *fw_listbuild_sized(size_t entries, size_t bytes)
{
    fw_listbuild *b = fw_xcalloc(1, sizeof *b);
    b->base = base_new(entries, bytes);
    return b;
}

fw_listbuild *fw_listbuild_new(size_t hint)
{
    return fw_listbuild_sized(hint, 0);
}

fw_listbuild *fw_listbuild_from(const fw_ruleset *rs, const char *name)
{
    const fw_list *l = NULL;
    for (uint32_t i = 0; rs && i < rs->nlists && !l; i++)
        if (strcmp(rs->lists[i].name, name) == 0)
            l = &rs->lists[i];
    if (!l)
        return NULL;
    fw_listbuild *b = fw_xcalloc(1, sizeof *b);
    b->base = l->base;
    atomic_fetch_add_explicit(&b->base->refs, 1, memory_order_relaxed);
    b->shared = true;
    /* The old delta, copied: its added strings into a pool of our own (the
     * old one stays with the old set), its removed items as they are (they
     * are the shared base's). */
    size_t n = delta_size(l->delta);
    b->delta = delta_new(n + 16);
    if (l->delta) {
        void *it;
        size_t pos = 0;
        while ((it = fw_hmap_next(l->delta->added, &pos)))
            insert(b->delta->added, item_hash(it),
                   pool_put(&b->delta->pool, item_str(it), item_len(it),
                            item_until(it)));
        pos = 0;
        while ((it = fw_hmap_next(l->delta->removed, &pos)))
            insert(b->delta->removed, item_hash(it), it);
    }
    return b;
}

/* The item for s in a private map/pool: made, or its UNTIL changed (in
 * place when it has a slot, else replaced; the old bytes stay in the pool). */
static inline void put_private(fw_hmap *m, pool *p, uint64_t h, const char *s,
                               size_t n, int64_t until)
{
    void *it = find(m, h, s, n);
    if (it) {
        if (item_until(it) == until || item_set_until(it, until))
            return;
        fw_hmap_remove(m, h, s, n, item_eq);
    }
    insert(m, h, pool_put(p, s, n, until));
}

void fw_listbuild_put(fw_listbuild *b, const char *s, size_t n, int64_t until)
{
    uint64_t h = fw_hash64(s, n, LIST_SEED);
    if (!b->shared) {
        put_private(b->base->set, &b->base->pool, h, s, n, until);
        return;
    }
    struct fw_listdelta *d = b->delta;
    if (find(d->added, h, s, n)) {
        put_private(d->added, &d->pool, h, s, n, until);
        return;
    }
    const void *in_base = find(b->base->set, h, s, n);
    if (in_base) {
        bool removed = find(d->removed, h, s, n) != NULL;
        if (item_until(in_base) == until) {
            if (removed)   /* a removed entry of the base is back, as it was */
                fw_hmap_remove(d->removed, h, s, n, item_eq);
            return;
        }
        if (!removed)      /* the base's item is replaced by a new one */
            insert(d->removed, h, in_base);
    }
    insert(d->added, h, pool_put(&d->pool, s, n, until));
}

/* Is s an entry of the list being built (at any time)? */
static bool build_has(const fw_listbuild *b, const char *s, size_t n)
{
    uint64_t h = fw_hash64(s, n, LIST_SEED);
    if (!b->shared)
        return find(b->base->set, h, s, n) != NULL;
    if (find(b->delta->added, h, s, n))
        return true;
    return find(b->base->set, h, s, n) && !find(b->delta->removed, h, s, n);
}

void fw_listbuild_expire(fw_listbuild *b, const char *s, size_t n, int64_t until)
{
    if (build_has(b, s, n))
        fw_listbuild_put(b, s, n, until);
}



static void take_out(fw_listbuild *b, const char *s, size_t n)
{
    uint64_t h = fw_hash64(s, n, LIST_SEED);
    if (!b->shared) {
        fw_hmap_remove(b->base->set, h, s, n, item_eq);   /* its bytes stay in the pool */
        return;
    }
    struct fw_listdelta *d = b->delta;
    fw_hmap_remove(d->added, h, s, n, item_eq);
    const void *it = find(b->base->set, h, s, n);
    if (it && !find(d->removed, h, s, n))
        insert(d->removed, h, it);
}

enum { TAKE_OUT, PUT, PUT_MISSING };

/* Each value of `value` read as .list lines, checked like the loader does;
 * put with `until`, taken out, or put only when not there yet. */
static void each_value(fw_listbuild *b, const char *value, size_t len, int mode,
                       int64_t until)
{
    fw_listtext it;
    const char *s, *why;
    size_t n;
    fw_listtext_init(&it, value, len);
    while (fw_listtext_next(&it, &s, &n)) {
        if (!fw_list_entry_ok(s, n, &why)) {
            if (b->bad++ == 0)
                snprintf(b->first_bad, sizeof b->first_bad, "\"%.60s%s\": the entry %s",
                         s, n > 60 ? "..." : "", why);
            continue;
        }
        if (mode == PUT_MISSING && !b->shared) {
            /* A full read: the UNTILs came first; mark what the set holds. */
            uint64_t h = fw_hash64(s, n, LIST_SEED);
            void *item = find(b->base->set, h, s, n);
            if (!item) {
                item = (void *)pool_put(&b->base->pool, s, n, FW_UNTIL_NEVER);
                insert(b->base->set, h, item);
            }
            uint32_t f;
            memcpy(&f, item, sizeof f);
            f |= SEEN;
            memcpy(item, &f, sizeof f);
            b->seen = true;
        } else if (mode == PUT || (mode == PUT_MISSING && !build_has(b, s, n))) {
            fw_listbuild_put(b, s, n, until);
        } else if (mode == TAKE_OUT) {
            take_out(b, s, n);
        }
    }
}

void fw_listbuild_add_until(fw_listbuild *b, const char *value, size_t len, int64_t until)
{
    each_value(b, value, len, PUT, until);
}

void fw_listbuild_add_missing(fw_listbuild *b, const char *value, size_t len)
{
    each_value(b, value, len, PUT_MISSING, FW_UNTIL_NEVER);
}

void fw_listbuild_keep_seen(fw_listbuild *b)
{
    if (b->shared || !b->seen)
        return;
    fw_hmap *m = b->base->set;
    void *it;
    size_t pos = 0;
    /* Two passes: removing shifts items back into holes, and an item seen
     * twice must still carry its mark the second time. */
    while ((it = fw_hmap_next(m, &pos))) {
        uint32_t f;
        memcpy(&f, it, sizeof f);
        if (!(f & SEEN))   /* an UNTIL of an entry the set no longer has */
            fw_hmap_remove_at(m, &pos);
    }
    pos = 0;
    while ((it = fw_hmap_next(m, &pos))) {
        uint32_t f;
        memcpy(&f, it, sizeof f);
        f &= ~SEEN;
        memcpy(it, &f, sizeof f);
    }
    b->seen = false;
}

void fw_listbuild_add_entries(fw_listbuild *b, const char *text, size_t len)
{
    fw_listtext it;
    fw_listentry e;
    char why[300];
    const char *bad;
    int rc;
    fw_listtext_init(&it, text, len);
    while ((rc = fw_listtext_entry(&it, &e, why, sizeof why)) != 0) {
        if (rc > 0 && fw_list_entry_ok(e.value, e.n, &bad)) {
            fw_listbuild_put(b, e.value, e.n, e.until);
            continue;
        }
        if (b->bad++ == 0) {
            if (rc < 0)
                snprintf(b->first_bad, sizeof b->first_bad, "%s", why);
            else
                snprintf(b->first_bad, sizeof b->first_bad, "\"%.60s%s\": the entry %s",
                         e.value, e.n > 60 ? "..." : "", bad);
        }
    }
}

void fw_listbuild_add(fw_listbuild *b, const char *value, size_t len)
{
    each_value(b, value, len, PUT, FW_UNTIL_NEVER);
}

void fw_listbuild_remove(fw_listbuild *b, const char *value, size_t len)
{
    each_value(b, value, len, TAKE_OUT, FW_UNTIL_NEVER);
}

size_t fw_listbuild_count(const fw_listbuild *b)
{
    size_t n = fw_hmap_count(b->base->set);
    if (b->delta)
        n = n + fw_hmap_count(b->delta->added) - fw_hmap_count(b->delta->removed);
    return n;
}

size_t fw_listbuild_bad(const fw_listbuild *b, const char **first)
{
    if (first)
        *first = b->first_bad;
    return b->bad;
}

void fw_listbuild_free(fw_listbuild *b)
{
    if (!b)
        return;
    base_unref(b->base);
    delta_unref(b->delta);
    free(b);
}

/* Is the delta too big to be copied by every later change?  It may hold
 * DELTA_MIN entries, or 1/DELTA_SHARE of the base: copying it costs at most
 * that per change, and folding it (a copy of the whole list) comes once per
 * that many changed entries. */
static bool fold_due(size_t delta, size_t base)
{
    return delta > DELTA_MIN && delta > base / DELTA_SHARE;
}

/* A new base: the old one without the removed entries, plus the added. */
static struct fw_listbase *fold(const struct fw_listbase *old,
                                const struct fw_listdelta *d)
{
    size_t n = fw_hmap_count(old->set) + fw_hmap_count(d->added);
    struct fw_listbase *b = base_new(n, 0);
    void *it;
    size_t pos = 0;
    const fw_hmap *srcs[2] = { old->set, d->added };
    for (int k = 0; k < 2; k++) {
        pos = 0;
        while ((it = fw_hmap_next(srcs[k], &pos))) {
            uint32_t len = item_len(it);
            const char *s = item_str(it);
            uint64_t h = item_hash(it);
            if (k == 0 && find(d->removed, h, s, len))
                continue;
            insert(b->set, h, pool_put(&b->pool, s, len, item_until(it)));
        }
    }
    return b;
}

void fw_listbuild_finish(fw_listbuild *b, fw_list *out)
{
    out->count = fw_listbuild_count(b);
    if (b->shared && fold_due(delta_size(b->delta), fw_hmap_count(b->base->set))) {
        struct fw_listbase *nb = fold(b->base, b->delta);
        base_unref(b->base);
        delta_unref(b->delta);
        b->base = nb;
        b->delta = NULL;
    }
    if (b->delta && delta_size(b->delta) == 0) {
        delta_unref(b->delta);
        b->delta = NULL;
    }
    out->base = b->base;
    out->set = b->base->set;
    out->delta = b->delta;
    b->base = base_new(0, 0);   /* the builder is empty again */
    b->shared = false;
    b->delta = NULL;
}
