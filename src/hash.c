/* hash.c — open-addressing hash table with linear probing.
 *
 * Owns: an array of (hash, item) slots, power-of-two sized, at most 5/8 full.
 * Items belong to the caller; the table only points at them.
 *
 * Why this shape: lookups are the per-event cost of watchlists and window
 * state, so a probe touches one 16-byte slot and compares the cached 64-bit
 * hash before it ever looks at the item.  Deletion shifts the following
 * cluster back (no tombstones), so a table that churns for months — window
 * keys come and go all day — never degrades.  Growth doubles the array in
 * one step; the state tables that grow on the event path are per worker and
 * sized from experience, and watchlists are built off the event path. */
#include "fraudwatch/hash.h"

#include <stdlib.h>
#include <string.h>

struct slot {
    uint64_t hash;
    void *item; /* NULL: empty */
};

struct fw_hmap {
    struct slot *slots;
    size_t mask;  /* capacity - 1 */
    size_t count;
};

uint64_t fw_hash64(const void *data, size_t len, uint64_t seed)
{
    const uint64_t m = 0xc6a4a7935bd1e995ULL;
    const int r = 47;
    uint64_t h = seed ^ (len * m);
    const unsigned char *p = data;
    const unsigned char *end = p + (len & ~(size_t)7);

    for (; p != end; p += 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    switch (len & 7) {
    case 7: h ^= (uint64_t)p[6] << 48; /* fall through */
    case 6: h ^= (uint64_t)p[5] << 40; /* fall through */
    case 5: h ^= (uint64_t)p[4] << 32; /* fall through */
    case 4: h ^= (uint64_t)p[3] << 24; /* fall through */
    case 3: h ^= (uint64_t)p[2] << 16; /* fall through */
    case 2: h ^= (uint64_t)p[1] << 8;  /* fall through */
    case 1: h ^= (uint64_t)p[0];
            h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

/* A zeroed slot array whose pages are already the process's own.  A large
 * calloc is fresh mmap'd memory that glibc does not clear: the first probe
 * of each page (a read) maps the kernel's shared zero page, and the first
 * insert into it faults again to copy it, which in a threaded process
 * flushes the page's TLB entry on every core with an IPI.  One volatile
 * store per page, before anything reads it, makes that a single write
 * fault.  (A memset would not do: the compiler turns malloc + memset back
 * into calloc.)  On the daemon's 1.7M drain the copy faults and their IPIs
 * were 4 % of its CPU (bench/README.md). */
static struct slot *zeroed_slots(size_t cap)
{
    struct slot *s = calloc(cap, sizeof *s);
    if (s) {
        volatile unsigned char *b = (volatile unsigned char *)s;
        for (size_t off = 0; off < cap * sizeof *s; off += 4096)
            b[off] = 0;
    }
    return s;
}

static size_t capacity_for(size_t n)
{
    size_t cap = 16;
    while (cap * 5 / 8 < n)
        cap <<= 1;
    return cap;
}

fw_hmap *fw_hmap_new(size_t hint)
{
    fw_hmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    size_t cap = capacity_for(hint);
    m->slots = zeroed_slots(cap);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->mask = cap - 1;
    return m;
}

void fw_hmap_free(fw_hmap *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

size_t fw_hmap_count(const fw_hmap *m) { return m->count; }

size_t fw_hmap_bytes(const fw_hmap *m)
{
    return sizeof *m + (m->mask + 1) * sizeof *m->slots;
}

void *fw_hmap_find(const fw_hmap *m, uint64_t hash, const void *key,
                   size_t len, fw_hmap_eq eq)
{
    for (size_t i = hash & m->mask;; i = (i + 1) & m->mask) {
        const struct slot *s = &m->slots[i];
        if (!s->item)
            return NULL;
        if (s->hash == hash && eq(s->item, key, len))
            return s->item;
    }
}

void fw_hmap_prefetch(const fw_hmap *m, uint64_t hash)
{
    __builtin_prefetch(&m->slots[hash & m->mask]);
}

void *fw_hmap_peek(const fw_hmap *m, uint64_t hash)
{
    const struct slot *s = &m->slots[hash & m->mask];
    return s->hash == hash ? s->item : NULL;
}

static void place(struct slot *slots, size_t mask, uint64_t hash, void *item)
{
    size_t i = hash & mask;
    while (slots[i].item)
        i = (i + 1) & mask;
    slots[i].hash = hash;
    slots[i].item = item;
}

static int grow(fw_hmap *m)
{
    size_t cap = (m->mask + 1) * 2;
    struct slot *ns = zeroed_slots(cap);
    if (!ns)
        return -1;
    for (size_t i = 0; i <= m->mask; i++)
        if (m->slots[i].item)
            place(ns, cap - 1, m->slots[i].hash, m->slots[i].item);
    free(m->slots);
    m->slots = ns;
    m->mask = cap - 1;
    return 0;
}

int fw_hmap_insert(fw_hmap *m, uint64_t hash, void *item)
{
    if ((m->count + 1) > (m->mask + 1) * 5 / 8 && grow(m) != 0)
        return -1;
    place(m->slots, m->mask, hash, item);
    m->count++;
    return 0;
}

/* Empties slot i and shifts the rest of its cluster back so that every item
 * stays reachable from its home slot. */
static void delete_slot(fw_hmap *m, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        if (!m->slots[j].item)
            break;
        size_t home = m->slots[j].hash & m->mask;
        /* Move j into the hole at i unless home lies cyclically in (i, j]. */
        bool stays = (i <= j) ? (i < home && home <= j)
                              : (i < home || home <= j);
        if (!stays) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].item = NULL;
    m->slots[i].hash = 0;
    m->count--;
}

void *fw_hmap_remove(fw_hmap *m, uint64_t hash, const void *key, size_t len,
                     fw_hmap_eq eq)
{
    for (size_t i = hash & m->mask;; i = (i + 1) & m->mask) {
        struct slot *s = &m->slots[i];
        if (!s->item)
            return NULL;
        if (s->hash == hash && eq(s->item, key, len)) {
            void *item = s->item;
            delete_slot(m, i);
            return item;
        }
    }
}

size_t fw_hmap_capacity(const fw_hmap *m) { return m->mask + 1; }

void *fw_hmap_next_upto(const fw_hmap *m, size_t *pos, size_t end)
{
    if (end > m->mask + 1)
        end = m->mask + 1;
    for (size_t i = *pos; i < end; i++) {
        if (m->slots[i].item) {
            *pos = i + 1;
            return m->slots[i].item;
        }
    }
    if (*pos < end)
        *pos = end;
    return NULL;
}

void *fw_hmap_next(const fw_hmap *m, size_t *pos)
{
    return fw_hmap_next_upto(m, pos, m->mask + 1);
}

void *fw_hmap_sample(const fw_hmap *m, uint64_t r)
{
    if (m->count == 0)
        return NULL;
    for (size_t i = (size_t)r & m->mask;; i = (i + 1) & m->mask)
        if (m->slots[i].item)
            return m->slots[i].item;
}

void fw_hmap_remove_at(fw_hmap *m, size_t *pos)
{
    size_t i = *pos - 1;
    delete_slot(m, i);
    *pos = i; /* an item may have moved into the hole: look at it next */
}
