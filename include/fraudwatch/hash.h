/* fraudwatch — the one hash table of the project, and its hash function.
 *
 * Watchlists, window state, distinct-value maps and suppression all use this
 * table.  It stores (hash, pointer) pairs and nothing else: the caller owns
 * the items and says how an item's key compares (an `eq` callback), so a
 * watchlist can keep its strings in one arena and a window can embed its key
 * at the end of its own struct, with no second copy of either.
 *
 * Not thread-safe: every table has one owner thread (see pipeline.c). */
#ifndef FRAUDWATCH_HASH_H
#define FRAUDWATCH_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* 64-bit hash of a byte string (MurmurHash64A, seeded). */
uint64_t fw_hash64(const void *data, size_t len, uint64_t seed);

typedef struct fw_hmap fw_hmap;

/* Does `item` have the key (key, len)?  Called only when hashes are equal. */
typedef bool (*fw_hmap_eq)(const void *item, const void *key, size_t len);

/* A table sized for about `hint` items.  NULL on out-of-memory. */
fw_hmap *fw_hmap_new(size_t hint);
/* Frees the table, not the items (iterate first to free them). */
void fw_hmap_free(fw_hmap *m);

size_t fw_hmap_count(const fw_hmap *m);
/* Bytes of memory held by the table itself (not the items). */
size_t fw_hmap_bytes(const fw_hmap *m);

/* The item with this key, or NULL. */
void *fw_hmap_find(const fw_hmap *m, uint64_t hash, const void *key,
                   size_t len, fw_hmap_eq eq);

/* Hints for a look-up to come (a loop over many keys overlaps their cache
 * misses): fw_hmap_prefetch() starts loading the slot where `hash` would
 * be; fw_hmap_peek() is the item in that slot if its hash is `hash` — most
 * often the item fw_hmap_find() will return, but only a hint (NULL when
 * the key is absent or further along the probe). */
void fw_hmap_prefetch(const fw_hmap *m, uint64_t hash);
void *fw_hmap_peek(const fw_hmap *m, uint64_t hash);

/* Adds an item the caller knows is absent.  0, or -1 on out-of-memory (the
 * table is then unchanged). */
int fw_hmap_insert(fw_hmap *m, uint64_t hash, void *item);

/* Removes and returns the item with this key, or NULL. */
void *fw_hmap_remove(fw_hmap *m, uint64_t hash, const void *key, size_t len,
                     fw_hmap_eq eq);

/* Iteration: `*pos` starts at 0; returns the next item or NULL at the end.
 * fw_hmap_remove_at() removes the item just returned by fw_hmap_next() and
 * keeps the iteration valid (nothing is skipped or seen twice... except that
 * an item moved back into the hole is visited once more after this call). */
void *fw_hmap_next(const fw_hmap *m, size_t *pos);
/* An item picked by `r` (the first at or after slot r mod capacity,
 * wrapping), or NULL when empty: for sampling, e.g. eviction. */
void *fw_hmap_sample(const fw_hmap *m, uint64_t r);
void fw_hmap_remove_at(fw_hmap *m, size_t *pos);
/* Slots in the table (a power of two). */
size_t fw_hmap_capacity(const fw_hmap *m);
/* fw_hmap_next() that looks at slots before `end` only: NULL (and *pos at
 * end) when none of them holds an item — a sweep in slices. */
void *fw_hmap_next_upto(const fw_hmap *m, size_t *pos, size_t end);

#endif
