/* arena.c — chunked bump allocator (see include/fraudwatch/arena.h).
 *
 * Owns a list of malloc'd chunks.  An allocation larger than the chunk size
 * gets a chunk of its own, so one megabyte event does not make every later
 * chunk a megabyte.  Reset frees all chunks but the first. */
#include "fraudwatch/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct chunk {
    struct chunk *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

struct fw_arena {
    struct chunk *head;  /* current chunk; the list ends with the first one */
    size_t chunk_size;
    size_t bytes;
};

static struct chunk *chunk_new(size_t size)
{
    struct chunk *c = malloc(sizeof *c + size);
    if (!c)
        return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

fw_arena *fw_arena_new(size_t chunk_size)
{
    fw_arena *a = malloc(sizeof *a);
    if (!a)
        return NULL;
    a->chunk_size = chunk_size < 256 ? 256 : chunk_size;
    a->head = chunk_new(a->chunk_size);
    if (!a->head) {
        free(a);
        return NULL;
    }
    a->bytes = a->chunk_size;
    return a;
}

void fw_arena_free(fw_arena *a)
{
    if (!a)
        return;
    for (struct chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(a);
}

void fw_arena_reset(fw_arena *a)
{
    struct chunk *c = a->head;
    while (c->next) {
        struct chunk *n = c->next;
        free(c);
        c = n;
    }
    c->used = 0;
    a->head = c;
    a->bytes = c->size;
}

/* The current chunk, with at least n (a multiple of 16) bytes free. */
static struct chunk *room(fw_arena *a, size_t n)
{
    struct chunk *c = a->head;
    if (c->size - c->used < n) {
        size_t size = n > a->chunk_size ? n : a->chunk_size;
        struct chunk *nc = chunk_new(size);
        if (!nc)
            return NULL;
        /* Keep the first chunk last so that reset can find it. */
        nc->next = c;
        a->head = nc;
        a->bytes += size;
        c = nc;
    }
    return c;
}

void *fw_arena_alloc(fw_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct chunk *c = room(a, n);
    if (!c)
        return NULL;
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

void *fw_arena_window(fw_arena *a, size_t min, size_t *len)
{
    struct chunk *c = room(a, (min + 15) & ~(size_t)15);
    if (!c)
        return NULL;
    *len = c->size - c->used;
    return c->data + c->used;
}

void fw_arena_commit(fw_arena *a, const void *end)
{
    struct chunk *c = a->head;
    size_t used = (size_t)((const unsigned char *)end - c->data);
    used = (used + 15) & ~(size_t)15;     /* the next start stays aligned */
    c->used = used < c->size ? used : c->size;
}

char *fw_arena_strndup(fw_arena *a, const char *s, size_t n)
{
    char *p = fw_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

size_t fw_arena_bytes(const fw_arena *a) { return a->bytes; }
