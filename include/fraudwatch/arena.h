/* fraudwatch — bump allocator for data that dies together.
 *
 * A batch of events keeps its keys, event ids and evidence in one arena that
 * is reset when the batch retires; a worker parses each event's JSON into its
 * own arena and resets it after the event.  Allocation is a pointer bump;
 * freeing is wholesale.  The first chunk is kept across resets, so a steady
 * stream allocates nothing from malloc. */
#ifndef FRAUDWATCH_ARENA_H
#define FRAUDWATCH_ARENA_H

#include <stddef.h>

typedef struct fw_arena fw_arena;

fw_arena *fw_arena_new(size_t chunk_size);
void fw_arena_free(fw_arena *a);
/* Frees everything allocated since the last reset (keeps the first chunk). */
void fw_arena_reset(fw_arena *a);
/* 16-byte aligned memory, or NULL on out-of-memory. */
void *fw_arena_alloc(fw_arena *a, size_t n);
/* For a caller that bump-allocates many small pieces itself (the event
 * parser): the free space of the current chunk, *len bytes from a 16-byte
 * aligned start, at least `min` (a new chunk when there is less), or NULL
 * on out-of-memory.  Nothing else may allocate from `a` until
 * fw_arena_commit(a, end) records the window as used up to `end`. */
void *fw_arena_window(fw_arena *a, size_t min, size_t *len);
void fw_arena_commit(fw_arena *a, const void *end);
/* A NUL-terminated copy of n bytes. */
char *fw_arena_strndup(fw_arena *a, const char *s, size_t n);
/* Bytes currently held from malloc. */
size_t fw_arena_bytes(const fw_arena *a);

#endif
