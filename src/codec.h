/* codec.h — the byte encoding of checkpoints (codec.c): little-endian
 * u64s and length-prefixed bytes, appended to memory, read from a FILE. */
#ifndef FRAUDWATCH_CODEC_H
#define FRAUDWATCH_CODEC_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fraudwatch/buf.h"

/*
 * Saving appends to a memory buffer (fw_enc_*: a bounds check and a store
 * per field, so a large state is encoded at memory speed); the same bytes
 * are read back from a FILE (fw_get_*).  fw_put_* write the daemon's small
 * file header. */
static inline void fw_enc_u64(fw_buf *b, uint64_t v)
{
    if (b->cap - b->len < 9)
        fw_buf_reserve(b, 8);
    unsigned char *q = (unsigned char *)b->p + b->len;
    for (int i = 0; i < 8; i++)
        q[i] = (unsigned char)(v >> (8 * i));
    b->len += 8;
}
static inline void fw_enc_bytes(fw_buf *b, const void *p, uint32_t n)
{
    fw_enc_u64(b, n);
    if (b->cap - b->len < (size_t)n + 1)
        fw_buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}
int fw_put_u64(FILE *f, uint64_t v);
int fw_put_bytes(FILE *f, const void *p, uint32_t n);   /* length-prefixed */
int fw_get_u64(FILE *f, uint64_t *v);
/* Length-prefixed bytes into a malloc'd NUL-terminated buffer. */
int fw_get_bytes(FILE *f, char **p, uint32_t *n, uint32_t max);

#endif
